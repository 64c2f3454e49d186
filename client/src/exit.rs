//! Exit codes and the one line a failing `vaultctl` prints.

use vaultctl::ClientError;

pub const USAGE: u8 = 1;
pub const NOT_RUNNING: u8 = 2;
/// `scan` found stored values in files.
pub const FOUND: u8 = 8;
pub const HTTP_ERROR: u8 = 22;

/// A failed command: the exit code and one line for stderr (no secrets).
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let code = match &e {
            // Not reachable for this user: as a missing daemon, for scripts.
            // An impostor on the socket: our own vaultd is not reachable there.
            ClientError::NotRunning { .. }
            | ClientError::NotAllowed { .. }
            | ClientError::UntrustedPeer { .. } => NOT_RUNNING,
            ClientError::Daemon(reply) => reply.code.exit_code(),
            _ => USAGE,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}
