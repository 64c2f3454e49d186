//! The audit line of a job (`audit = true`): who asked, with which
//! credential, for what, and how it ended. Never a value, header or query.

use proto::ErrorCode;

use crate::peer::Peer;
use crate::state::State;
use crate::text::log_field;

/// What the audit line of a job names (never a value).
pub struct Audit {
    pub(super) credential: String,
    pub(super) method: String,
    pub(super) origin: String,
    pub(super) path: String,
}

impl Audit {
    /// What can be said of a job before (or without) its policy check: the
    /// URL as the client sent it, parsed best effort (never its query or
    /// userinfo), for the line of a refused job.
    pub(super) fn unchecked(credential: &str, method: &str, url: &str) -> Audit {
        let (origin, path) = match url::Url::parse(url) {
            Ok(u) => (u.origin().ascii_serialization(), u.path().to_owned()),
            Err(_) => ("?".to_owned(), "?".to_owned()),
        };
        Audit {
            credential: log_field(credential),
            method: log_field(method),
            origin: log_field(&origin),
            path: log_field(&path),
        }
    }

    /// One line per job when `audit = true`: who asked (pid, uid,
    /// executable), with which credential, for what (method, origin, path)
    /// and how it ended: the HTTP status, `refused(Code)` when nothing was
    /// sent, `failed(Code)` when sending failed. Never a value, header or
    /// query.
    pub fn log(&self, state: &State, peer: &Peer, outcome: Result<u16, ErrorCode>) {
        let status = match outcome {
            Ok(s) => s.to_string(),
            Err(code) => format!("failed({code:?})"),
        };
        self.line(state, peer, &status);
    }

    /// The line of a job refused before anything was sent.
    pub(super) fn log_refused(&self, state: &State, peer: &Peer, code: ErrorCode) {
        self.line(state, peer, &format!("refused({code:?})"));
    }

    fn line(&self, state: &State, peer: &Peer, status: &str) {
        if !state.config.audit {
            return;
        }
        tracing::info!(
            target: "audit",
            "audit: job pid={} uid={} exe={} credential={} method={} origin={} path={} status={status}",
            peer.pid_str(),
            peer.uid,
            log_field(&peer.exe()),
            self.credential,
            self.method,
            self.origin,
            self.path,
        );
    }
}
