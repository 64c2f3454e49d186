//! Who is on the other end of a connection: what the server learns at
//! accept and every later layer uses for its checks and the audit log.

/// Who is on the other end of a connection (SO_PEERCRED).
#[derive(Debug, Clone)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<u32>,
}

impl Peer {
    pub fn pid_str(&self) -> String {
        self.pid.map_or_else(|| "?".into(), |p| p.to_string())
    }

    /// The caller's executable, for the audit log (best effort).
    pub fn exe(&self) -> String {
        self.pid
            .and_then(|p| std::fs::read_link(format!("/proc/{p}/exe")).ok())
            .map_or_else(|| "?".into(), |p| p.display().to_string())
    }
}

/// Why a new connection is not served.
pub enum Refusal {
    /// SO_PEERCRED could not be read: nobody to check, nobody served.
    NoCredentials(std::io::Error),
    /// A uid other than vaultd's own and those in `allow_uids`.
    ForeignUid(Peer),
}

/// Who connected, and whether they may be served: vaultd's own uid and
/// `allow_uids` only, decided before a byte is read. One rule for both
/// sockets (the protocol's and the HTTP front's).
pub fn admit(
    stream: &interprocess::local_socket::tokio::Stream,
    own_uid: u32,
    allow_uids: &[u32],
) -> Result<Peer, Refusal> {
    use interprocess::local_socket::traits::StreamCommon as _;
    let c = stream.peer_creds().map_err(Refusal::NoCredentials)?;
    let peer = Peer {
        uid: c.euid().unwrap_or(u32::MAX),
        pid: c.pid().map(|p| p as u32),
    };
    if peer.uid != own_uid && !allow_uids.contains(&peer.uid) {
        return Err(Refusal::ForeignUid(peer));
    }
    Ok(peer)
}

/// The next connection; a failed `accept` (EMFILE and friends) is logged
/// and retried after a growing pause, rather than spun on. Cancel-safe.
pub async fn accept_retrying(
    listener: &interprocess::local_socket::tokio::Listener,
    what: &str,
) -> interprocess::local_socket::tokio::Stream {
    use interprocess::local_socket::traits::tokio::Listener as _;
    let mut backoff = std::time::Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok(s) => return s,
            Err(e) => {
                tracing::warn!("{what}accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
            }
        }
    }
}
