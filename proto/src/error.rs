//! Error codes shared by daemon and client. Each maps to one `vaultctl` exit
//! code, so scripts can tell "locked" from "refused" from "upstream down".

use serde::{Deserialize, Serialize};

/// Why the daemon refused or failed a request. Encoded by variant index:
/// new variants only ever go at the end (the golden-bytes test pins this).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A bug or an unexpected OS failure in the daemon.
    Internal,
    /// The request is malformed (bad name, bad header, bad URL...).
    BadRequest,
    /// The vault is locked (or not created yet) and the request needs keys.
    Locked,
    /// No credential by that name.
    NoSuchCredential,
    /// The request policy refused the job; nothing was sent upstream.
    PolicyRefused,
    /// The upstream could not be reached, TLS failed, or it timed out.
    Upstream,
    /// `init` on a vault that already exists.
    VaultExists,
    /// `unlock` with a wrong passphrase or key file.
    BadPassphrase,
    /// `add` of a name that already exists.
    AlreadyExists,
    /// A body or field over its size limit.
    TooLarge,
    /// The vault file could not be read or written; nothing was changed.
    Storage,
    /// The peers speak different protocol versions.
    VersionMismatch,
    /// The vault file is damaged, tampered with or from a newer version.
    VaultCorrupt,
    /// The caller's uid may not use this daemon.
    PermissionDenied,
    /// The credential's source (OpenBao) is unreachable past `max_stale`,
    /// or refused the read (denied path, missing field, deleted version).
    SourceUnavailable,
}

impl ErrorCode {
    /// The `vaultctl` exit code for this error (DESIGN.md, "Exit codes").
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorCode::Locked => 3,
            ErrorCode::NoSuchCredential => 4,
            ErrorCode::PolicyRefused => 5,
            ErrorCode::Upstream => 6,
            ErrorCode::SourceUnavailable => 7,
            _ => 1,
        }
    }
}

/// An error answer: a stable code plus one human line. The line is written
/// by the daemon for the user and never contains a secret.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorReply {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorReply {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorReply {}
