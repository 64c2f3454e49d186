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
    /// As `Job`, but the response comes back as a [`Response::Head`], then
    /// [`Response::Chunk`]s, then [`Response::End`]; with `body_follows` the
    /// request body comes after this frame as [`Request::Chunk`]s ended by
    /// [`Request::End`] (`job.body` must then be `None`). Memory stays flat
    /// whatever the size of either body.
    StreamJob {
        job: JobRequest,
        body_follows: bool,
        /// The streamed body's length when the client knows it (a file):
        /// vaultd sends it as `Content-Length` rather than chunked, as curl
        /// does, since many servers refuse chunked uploads. A body that
        /// turns out longer or shorter fails the job.
        body_len: Option<u64>,
    },
    /// A piece of a streamed request body.
    Chunk(#[serde(with = "crate::codec::bytes")] Vec<u8>),
    /// The end of a streamed request body.
    End,
    /// Add a signing credential whose key the daemon generates itself, so
    /// the private key never exists outside it. Only for `SigAlg::Ed25519`:
    /// an HMAC secret must be shared with the upstream, so it is imported
    /// with `Add` instead.
    AddGenerated {
        name: String,
        spec: CredentialSpec,
    },
    /// The public half of an Ed25519 signing credential, to register with
    /// the upstream. Never anything secret.
    PublicKey {
        name: String,
    },
    /// What the daemon would do with this job (policy verdict, headers it
    /// would add), without sending anything. The same message as `Job` so
    /// the verdict is computed from exactly what a real job would carry.
    Explain(JobRequest),
    /// The vault file as it is on disk (still encrypted), for `vaultctl
    /// backup`. Needs no key: it works while the vault is locked.
    Backup,
    /// Drops the key-file slot and re-keys the vault (the passphrase slot
    /// is re-wrapped, so the passphrase is needed), so the old key file
    /// opens nothing saved afterwards.
    RemoveKeyfile {
        passphrase: Secret,
    },
    /// Store how vaultd logs in to OpenBao, after checking that it works.
    OpenBaoLogin(OpenBaoLogin),
    /// The OpenBao connection's state, never a value or token.
    OpenBaoStatus,
    /// Re-read OpenBao-sourced values now: one credential, or all of them.
    Refresh {
        name: Option<String>,
    },
    /// Add a credential whose value lives in OpenBao (`spec.source`). It
    /// needs the vault's passphrase: binding a value that vaultd can fetch
    /// by name to origins of the caller's choice would otherwise let any
    /// script of the owner's uid send the team's token to its own server.
    AddSourced {
        name: String,
        spec: CredentialSpec,
        passphrase: Secret,
    },
    /// Many credentials at once (`vaultctl import`): every entry is checked
    /// as `Add` checks one, then all are stored in one durable save, or none
    /// is. One save instead of one per entry is what makes 10,000 entries
    /// take seconds. The whole import is one frame, so [`crate::MAX_FRAME`]
    /// bounds it (tens of thousands of real tokens fit).
    Import {
        entries: Vec<ImportEntry>,
        /// Replace credentials of the same name; without it an existing
        /// name refuses the whole import.
        replace: bool,
    },
    /// Opens a scan session (`vaultctl scan`) on this connection: the
    /// daemon answers [`Response::Done`] once it holds its matcher, then
    /// takes [`Request::ScanFile`]s until an [`Request::End`]. One matcher
    /// serves every file, so 10,000 small files cost one build.
    Scan,
    /// One file of a scan session: its contents follow as
    /// [`Request::Chunk`]s ended by [`Request::End`], and the daemon
    /// answers [`Response::ScanFindings`] (or an error for this file
    /// alone). The daemon never learns the path: `id` is the client's.
    ScanFile {
        id: u64,
    },
}

/// OpenBao login material (`vaultctl openbao login`).
#[derive(Serialize, Deserialize, Debug)]
pub enum OpenBaoLogin {
    /// AppRole: `role_id` is an identifier, `secret_id` the secret.
    AppRole { role_id: String, secret_id: Secret },
    /// A client token made by the admin.
    Token(Secret),
}

/// One credential of a [`Request::Import`].
#[derive(Serialize, Deserialize, Debug)]
pub struct ImportEntry {
    pub name: String,
    pub spec: CredentialSpec,
    pub value: Secret,
    /// Where the entry came from, e.g. `line 12 (MICROREACT_TOKEN)`: the
    /// daemon names it when it refuses the import, so the user finds the
    /// bad line. Never the value.
    pub source: String,
}

impl Request {
    /// Whether this request carries a passphrase, key or token: a client
    /// must then be sure who it is talking to before sending it (vaultctl
    /// checks the socket's peer uid). Exhaustive, so a new variant has to
    /// say.
    pub fn carries_secret(&self) -> bool {
        match self {
            Request::Init { .. }
            | Request::Unlock { .. }
            | Request::UnlockKeyfile { .. }
            | Request::Passwd { .. }
            | Request::Add { .. }
            | Request::Rotate { .. }
            | Request::AddKeyfile { .. }
            | Request::RemoveKeyfile { .. }
            | Request::OpenBaoLogin(_)
            | Request::AddSourced { .. }
            | Request::Import { .. } => true,
            Request::Status
            | Request::Lock
            | Request::Remove { .. }
            | Request::List
            | Request::Job(_)
            | Request::StreamJob { .. }
            | Request::Chunk(_)
            | Request::End
            | Request::AddGenerated { .. }
            | Request::PublicKey { .. }
            | Request::Explain(_)
            | Request::Backup
            | Request::OpenBaoStatus
            | Request::Refresh { .. }
            | Request::Scan
            | Request::ScanFile { .. } => false,
        }
    }
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
    /// The status and headers of a streamed job; `body` is empty.
    Head(JobResponse),
    /// A piece of a streamed response body.
    Chunk(#[serde(with = "crate::codec::bytes")] Vec<u8>),
    /// The streamed body is complete.
    End,
    /// Answer to `Request::PublicKey`.
    PublicKey(PublicKeyInfo),
    /// Answer to `Request::Explain`.
    Explain(Explanation),
    /// Answer to `Backup`: the sealed vault file, byte for byte as on disk
    /// at one moment between two saves (same format, restorable by copying).
    Backup {
        #[serde(with = "crate::codec::bytes")]
        sealed: Vec<u8>,
    },
    /// Answer to `OpenBaoStatus`.
    OpenBaoStatus(OpenBaoStatus),
    /// Answer to one `ScanFile`: where stored values occur in it, never
    /// a value or a matched byte.
    ScanFindings(ScanReport),
}

/// The OpenBao connection as `vaultctl openbao status` shows it. Never a
/// value, token or secret_id.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OpenBaoStatus {
    /// Whether `config.toml` has an `[openbao]` table.
    pub configured: bool,
    /// The configured nodes, in the order they are tried.
    pub addrs: Vec<String>,
    /// The node that answered last.
    pub node: Option<String>,
    /// "approle" or "token".
    pub auth: String,
    /// Whether login material is stored in the vault.
    pub has_login: bool,
    /// Whether vaultd holds a client token now.
    pub logged_in: bool,
    /// The client token's remaining time to live, seconds (`None`: no
    /// token, or one that does not expire).
    pub token_ttl_secs: Option<u64>,
    /// The last failure talking to OpenBao, one line.
    pub last_error: Option<String>,
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
    /// `None` when no `[openbao]` table is configured.
    pub openbao: Option<OpenBaoStatus>,
    /// The HTTP front's socket; `None` when it is off.
    pub http_socket: Option<String>,
}

/// How the token is attached to a request.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// `NAME: <token>`, e.g. Microreact's `Access-Token`.
    Header { name: String },
    /// `Authorization: Bearer <token>`, e.g. Access Protocol's JWT.
    Bearer,
    /// No token is sent at all: each request is signed per RFC 9421 (HTTP
    /// Message Signatures) with the credential's key, which is its stored
    /// value. A captured request then reveals nothing reusable elsewhere.
    Sign {
        alg: SigAlg,
        /// The `keyid` signature parameter, telling the upstream which key
        /// to verify with.
        keyid: Option<String>,
        /// Adds an `expires` parameter this many seconds after `created`,
        /// bounding how long a captured signature could be replayed.
        ttl_secs: Option<u64>,
        /// Covered components in order (`"@method"`, `"content-type"`...).
        /// Empty means the default set: `@method`, `@target-uri`, plus
        /// `content-digest` with a body and `content-type` when present.
        components: Vec<String>,
    },
}

/// A signature algorithm from the RFC 9421 registry that the daemon
/// implements with `ring`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigAlg {
    /// `hmac-sha256`: a secret shared with the upstream.
    HmacSha256,
    /// `ed25519`: the upstream holds only the public key.
    Ed25519,
}

impl SigAlg {
    /// The `alg` parameter value as RFC 9421 registers it.
    pub fn as_str(self) -> &'static str {
        match self {
            SigAlg::HmacSha256 => "hmac-sha256",
            SigAlg::Ed25519 => "ed25519",
        }
    }
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
    /// Where the value lives when it is not stored in the vault.
    pub source: Option<Source>,
}

/// A credential's value kept outside the vault file, fetched by vaultd.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `PATH#FIELD` of a KV v2 secret in the configured OpenBao cluster.
    OpenBao { path: String, field: String },
}

/// The state of a fetched value, as `list` shows it (never the value).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SourceState {
    /// The KV version of the cached value.
    pub version: Option<u64>,
    /// Seconds since the last good read.
    pub age_secs: Option<u64>,
    /// The last failed read, one line.
    pub last_error: Option<String>,
    /// The origins jobs may use: the local ones narrowed by the secret's
    /// `tokenvault_origins` metadata (`None`: not narrowed, or not read yet).
    pub effective_origins: Option<Vec<String>>,
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
    /// For a credential with a `source`: its cached value's state.
    pub source_state: Option<SourceState>,
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
    /// Redirects followed (`-L`) before this response, for `-w
    /// '%{num_redirects}'`.
    pub redirects: u32,
    /// The request that produced this response as vaultd sent it, for
    /// `vaultctl request -v`.
    pub sent: Option<SentRequest>,
}

/// A request as vaultd sent it upstream (`-v`): the request line and the
/// headers on the wire, in order. The credential's header carries a
/// placeholder naming the credential (`<credential NAME>`) instead of its
/// value, and every value has passed the job's redactor: never a byte of a
/// token or key. Signature headers are shown as sent: they are not secret.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The HTTP version it went over, as curl -v prints it: `HTTP/1.1`.
    pub http_version: String,
    pub headers: Vec<Header>,
}

/// The public key of a signing credential (`vaultctl pubkey`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub alg: SigAlg,
    pub keyid: Option<String>,
    /// The raw key: 32 bytes for Ed25519 (RFC 8032 `A`). The client wraps it
    /// in PEM and JWK, which needs no crypto.
    #[serde(with = "crate::codec::bytes")]
    pub public_key: Vec<u8>,
}

/// The daemon's verdict on a job it was asked to explain (`vaultctl explain`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub method: String,
    /// The URL as it would be sent (normalized), or as given when it was
    /// refused before it could be normalized.
    pub url: String,
    /// The rule that refuses the job, one line; `None` when it would be sent.
    pub refused: Option<String>,
    /// What the daemon would add to the request, one `Name: description`
    /// line per header. Descriptions name what the value is made of, never
    /// the value of a secret.
    pub adds: Vec<String>,
}

/// The findings in one scanned file (`Request::ScanFile`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// The `id` of the `ScanFile` this answers.
    pub id: u64,
    pub findings: Vec<ScanFinding>,
}

/// One copy of a stored value in a scanned file. The offset and length
/// tell `scan --redact` which bytes to replace: they reveal where and how
/// long an encoded copy is, which the client's own file already shows,
/// and nothing of the value.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ScanFinding {
    pub credential: String,
    /// How the value is written there: `raw`, `base64`, `base64url`,
    /// `percent`, `json-escape`, ... (see docs/json.md). A string, so a new
    /// form is not a protocol change.
    pub form: String,
    /// 1-based line of the copy's first byte.
    pub line: u64,
    /// Byte offset of the copy's first byte in the file.
    pub offset: u64,
    /// Bytes the copy covers in the file, escapes included.
    pub len: u64,
}
