//! What can go wrong in a job after its request has been accepted: while
//! sending, following redirects, reading the response, and on the
//! client's side of a streamed job.
//!
//! Messages built from upstream text (a host, a TLS or transport error)
//! pass through the job's redactor before they leave the job layer
//! (`http::redacted`); until then they are typed.

use std::time::Duration;

use proto::ErrorCode;

use super::listener::Untrusted;
use super::policy::Origin;
use super::sign::SignError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    // ---- the request was accepted but is refused on the way ----
    #[error(
        "redirect from {origin} to another origin not followed: a credential is only sent to the origin it was used for (the target is not shown: it comes from the upstream; -i shows the Location)"
    )]
    CrossOriginRedirect { origin: Origin },
    /// A redirect's target is upstream text: the refusal names the rule,
    /// never any part of the target (see `http::redirect_refused`).
    #[error(
        "redirect not followed: {why} (the target is not shown: it comes from the upstream; -i shows the Location)"
    )]
    RedirectRefused { why: &'static str },
    #[error("redirect Location is not valid text; not followed")]
    LocationNotText,
    #[error("redirect Location is not a valid URL; not followed")]
    LocationNotUrl,
    #[error("invalid header name {name:?}")]
    HeaderName { name: String },
    #[error("invalid value for header {name}")]
    HeaderValue { name: String },
    #[error(transparent)]
    Listener(#[from] Untrusted),
    #[error(transparent)]
    Sign(#[from] SignError),

    // ---- the upstream, or the time allowed ----
    #[error("request timed out after {}", humantime::format_duration(*limit))]
    Timeout { limit: Duration },
    #[error("more than {max} redirects; giving up")]
    TooManyRedirects { max: usize },
    #[error(
        "a {status} redirect would send the streamed body again; request its target directly (-i shows the Location)"
    )]
    RedirectResend { status: u16 },
    #[error(
        "the response uses a Transfer-Encoding other than chunked, which vaultd does not decode; nothing of it was returned"
    )]
    TransferCoding,
    #[error(
        "the response body is compressed (Content-Encoding), though vaultd asked for identity: the redactor reads only plain bodies, so nothing of it was returned"
    )]
    ContentEncoding,
    /// `detail` is the transport's own words (redacted before it leaves).
    #[error("{detail}")]
    Transport { detail: String },

    // ---- sizes ----
    #[error("{which} body exceeds max_body ({max} bytes)")]
    TooLarge { which: &'static str, max: usize },
    #[error("a signed request body is held in memory: at most {max} bytes")]
    SignedBodyTooLarge { max: usize },

    // ---- the client's side of a streamed job ----
    #[error("expected a body chunk")]
    ExpectedChunk,
    #[error("client went away mid-upload")]
    ClientGone,
    #[error("the streamed body was not the {declared} bytes announced; nothing more was sent")]
    UploadLength { declared: u64 },
    #[error("invalid method {method:?}")]
    BadMethod { method: String },

    // ---- lock ----
    #[error(
        "the vault was locked before this request was sent (nothing more was sent): run `vaultctl unlock`"
    )]
    LockedBeforeSend,
    #[error(
        "the vault was locked during this transfer, which was cut short: run `vaultctl unlock`"
    )]
    LockedMeanwhile,

    // ---- vaultd's own faults ----
    #[error("{0}")]
    Internal(&'static str),

    /// Any of the above after the job's redactor has seen its message.
    #[error("{message}")]
    Redacted { code: ErrorCode, message: String },
}

/// Why the HTTP side cannot start. Never quotes the proxy URL (it may
/// carry a password) or a certificate file's bytes.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the configured proxy is not a usable URL: {0}")]
    Proxy(String),
    #[error("extra_ca {}: {source}", path.display())]
    CaRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("extra_ca {}: not a PEM certificate bundle: {reason}", path.display())]
    CaParse {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("extra_ca {}: no certificate found", path.display())]
    CaEmpty { path: std::path::PathBuf },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}
