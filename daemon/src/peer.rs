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
