//! Why a value could not be had from OpenBao. Every message names the node
//! and OpenBao's own reason; none carries a value, a token or a secret_id
//! (OpenBao's error texts never echo them, and they are clipped to one
//! printable line anyway).

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error(
        "no [openbao] table in config.toml: add one with the cluster's addrs (README: \"Many machines: OpenBao\")"
    )]
    NotConfigured,
    #[error("vaultd has no OpenBao login: run `vaultctl openbao login`")]
    NoLogin,
    #[error("OpenBao unreachable (last tried {node}: {reason})")]
    Unreachable { node: String, reason: String },
    #[error("OpenBao at {node} refused the login: {reason}")]
    LoginRefused { node: String, reason: String },
    #[error("OpenBao at {node} denied reading {path}: {reason}")]
    Denied {
        node: String,
        path: String,
        reason: String,
    },
    #[error("OpenBao at {node} has no secret at {path}")]
    NotFound { node: String, path: String },
    #[error("OpenBao at {node}: the current version ({version}) of {path} is deleted")]
    Deleted {
        node: String,
        path: String,
        version: u64,
    },
    #[error("OpenBao at {node}: {path} has no field {field:?}")]
    NoField {
        node: String,
        path: String,
        field: String,
    },
    #[error("OpenBao at {node}: the field {field:?} of {path} is not a usable value: {reason}")]
    BadValue {
        node: String,
        path: String,
        field: String,
        reason: String,
    },
    #[error(
        "OpenBao at {node} answered {path} with something that is not a KV v2 secret: {reason}"
    )]
    Malformed {
        node: String,
        path: String,
        reason: String,
    },
    #[error(
        "the cached value of {name:?} was last read {} ago, longer than max_stale ({}); {last}",
        humantime::format_duration(*age),
        humantime::format_duration(*max_stale)
    )]
    Stale {
        name: String,
        age: Duration,
        max_stale: Duration,
        last: Box<SourceError>,
    },
    #[error("the value of {name:?} has not been read from OpenBao yet ({reason})")]
    NotRead { name: String, reason: String },
    #[error(
        "refused: {name:?} is sent to the same host and its value has not been read from OpenBao, so vaultd could not redact it from the answer; retry when OpenBao answers (vaultctl refresh {name})"
    )]
    NeighbourUnknown { name: String },
    #[error("vaultd could not talk to OpenBao: {0}")]
    Client(String),
}

impl SourceError {
    /// OpenBao answered, and the answer is no (a denied path, a missing
    /// field or secret, a deleted version, an unusable value): a cached
    /// value is dropped at once rather than served until `max_stale`, since
    /// the team's admin took it away. Only an OpenBao that cannot answer
    /// leaves the cache serving.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SourceError::Denied { .. }
                | SourceError::NotFound { .. }
                | SourceError::Deleted { .. }
                | SourceError::NoField { .. }
                | SourceError::BadValue { .. }
        )
    }
}

/// OpenBao's reason, from its `{"errors": [...]}` body, as one printable
/// line of at most 200 characters.
pub fn reason_of(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let text = serde_json::from_slice::<Errors>(body)
        .ok()
        .map(|e| e.errors.join("; "))
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    one_line(&text)
}

/// Printable, one line, clipped.
pub fn one_line(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}
