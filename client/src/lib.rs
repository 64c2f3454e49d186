//! A small blocking client for vaultd. No crypto, no HTTP, no runtime:
//! `vaultctl` starts, sends one request, prints, exits.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use proto::frame::{FrameError, read_frame, write_frame};
use proto::{ErrorReply, Hello, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (exit code 2).
    #[error(
        "cannot reach vaultd at {path} ({source}); start it with `systemctl --user start vaultd.socket` or run `vaultd &`"
    )]
    NotRunning { path: PathBuf, source: io::Error },
    #[error(
        "vaultd speaks protocol {theirs}, vaultctl speaks {ours}: restart vaultd after upgrading"
    )]
    VersionMismatch { ours: u32, theirs: u32 },
    #[error("lost connection to vaultd: {0}")]
    Frame(#[from] FrameError),
    #[error("vaultd closed the connection without answering")]
    Closed,
    #[error("{0}")]
    Daemon(ErrorReply),
}

/// One connection to the daemon, after the hello exchange.
pub struct Client {
    stream: UnixStream,
}

/// Resolves the socket as DESIGN.md says: flag, `$VAULTD_SOCKET`,
/// `$XDG_RUNTIME_DIR/vaultd/vaultd.sock`.
pub fn socket_path(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_owned());
    }
    if let Some(v) = std::env::var_os("VAULTD_SOCKET").filter(|v| !v.is_empty()) {
        return Some(v.into());
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(|d| PathBuf::from(d).join("vaultd").join("vaultd.sock"))
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::NotRunning {
            path: path.to_owned(),
            source,
        })?;
        let mut client = Client { stream };
        // A refused peer gets the daemon's hello and an error without the
        // daemon reading ours, so a failed write is not yet a failure.
        let _ = write_frame(
            &mut client.stream,
            &Hello {
                version: proto::PROTOCOL_VERSION,
            },
        );
        let theirs: Hello = read_frame(&mut client.stream)?.ok_or(ClientError::Closed)?;
        if theirs.version != proto::PROTOCOL_VERSION {
            return Err(ClientError::VersionMismatch {
                ours: proto::PROTOCOL_VERSION,
                theirs: theirs.version,
            });
        }
        Ok(client)
    }

    /// Sends one request and waits for its answer; an error answer becomes
    /// `ClientError::Daemon`.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let sent = write_frame(&mut self.stream, req);
        let resp: Option<Response> = match (sent, read_frame(&mut self.stream)) {
            (_, Ok(r)) => r,
            (Err(e), Err(_)) => return Err(e.into()),
            (Ok(()), Err(e)) => return Err(e.into()),
        };
        match resp.ok_or(ClientError::Closed)? {
            Response::Error(e) => Err(ClientError::Daemon(e)),
            other => Ok(other),
        }
    }
}
