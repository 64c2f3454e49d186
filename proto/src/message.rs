//! Every message on the socket, in one place (as rbw's `protocol.rs`).
//!
//! Enums use serde's default, externally tagged representation: bincode
//! cannot decode internally tagged enums. Variants are encoded by index, so
//! new ones only ever go at the end; `tests/golden` pins the bytes.

use serde::{Deserialize, Serialize};

use crate::error::ErrorReply;
use crate::secret::Secret;

/// First frame in each direction. A version mismatch ends the connection
/// with a clear error on both sides.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub version: u32,
}

/// What a client asks of the daemon, one variant per command.
#[derive(Serialize, Deserialize, Debug)]
pub enum Request {
    Status,
    /// Create a new, empty vault and leave it unlocked.
    Init {
        passphrase: Secret,
    },
    Unlock {
        passphrase: Secret,
    },
    /// Unlock with the 32 bytes of a key file; the client reads the file so
    /// a sandboxed daemon need not see the caller's paths.
    UnlockKeyfile {
        key: Secret,
    },
    Lock,
    /// Rewrap the data key under a new passphrase.
    Passwd {
        old: Secret,
        new: Secret,
    },
    Add {
        name: String,
        spec: CredentialSpec,
        value: Secret,
    },
    /// Replace a credential's value, keeping its policy.
    Rotate {
        name: String,
        value: Secret,
    },
    Remove {
        name: String,
    },
    List,
    /// Add (or replace) the key-file slot. The passphrase is required so a
    /// process that finds the vault unlocked cannot grant itself a way back in.
    AddKeyfile {
        passphrase: Secret,
        key: Secret,
    },
    /// Perform an HTTP request with a credential attached.
    Job(JobRequest),
    /// The vault file as it is on disk (still encrypted), for `vaultctl
    /// backup`. Needs no key: it works while the vault is locked.
    Backup,
}

/// What the daemon answers, one variant per kind of result.
#[derive(Serialize, Deserialize, Debug)]
pub enum Response {
    Status(StatusInfo),
    /// The command succeeded and, if it changed the vault, the change is on disk.
    Done,
    List(Vec<CredentialInfo>),
    Job(JobResponse),
    Error(ErrorReply),
    /// Answer to `Backup`: the sealed vault file, byte for byte as on disk
    /// at one moment between two saves (same format, restorable by copying).
    Backup {
        #[serde(with = "crate::codec::bytes")]
        sealed: Vec<u8>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultState {
    /// No vault file yet: run `vaultctl init`.
    Uninitialized,
    Locked,
    Unlocked,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StatusInfo {
    pub daemon_version: String,
    pub protocol: u32,
    pub state: VaultState,
    /// Known only while unlocked: the count lives inside the ciphertext.
    pub credentials: Option<u32>,
    pub uptime_secs: u64,
    pub pid: u32,
    pub vault_path: String,
}

/// How the token is attached to a request.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// `NAME: <token>`, e.g. Microreact's `Access-Token`.
    Header { name: String },
    /// `Authorization: Bearer <token>`, e.g. Access Protocol's JWT.
    Bearer,
}

/// A credential's policy: where and how its token may be used.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialSpec {
    pub injection: Option<Injection>,
    /// `scheme://host[:port]`, at least one.
    pub origins: Vec<String>,
    /// Allow plain `http://` origins that are not loopback.
    pub allow_insecure_http: bool,
    /// Allowed methods (upper case); empty means any.
    pub methods: Vec<String>,
    /// Allowed path prefixes; empty means any.
    pub path_prefixes: Vec<String>,
}

/// A credential as `list` shows it: everything but the value.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    pub name: String,
    pub spec: CredentialSpec,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub last_used: Option<u64>,
    pub use_count: u64,
}

/// One header; the value is bytes because HTTP allows non-UTF-8 values.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    #[serde(with = "crate::codec::bytes")]
    pub value: Vec<u8>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub credential: String,
    pub method: String,
    pub url: String,
    pub headers: Vec<Header>,
    #[serde(with = "crate::codec::opt_bytes")]
    pub body: Option<Vec<u8>>,
    /// Follow same-origin redirects (`-L`).
    pub follow_redirects: bool,
    /// Overall deadline (`--max-time`), milliseconds.
    pub timeout_ms: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct JobResponse {
    pub status: u16,
    /// As curl prints it: `HTTP/1.1`, `HTTP/2`.
    pub http_version: String,
    /// The status line's reason phrase, if the status code has one.
    pub reason: String,
    pub headers: Vec<Header>,
    #[serde(with = "crate::codec::bytes")]
    pub body: Vec<u8>,
    /// The URL that produced this response (differs after redirects).
    pub url: String,
}
