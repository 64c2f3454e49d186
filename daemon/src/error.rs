//! The daemon's errors, one enum per layer, and the one place that turns
//! them into the wire's [`ErrorReply`]: its code (which is the client's
//! exit code) and its one-line message. Refusals (exit 5) are decided by
//! type here, and get their `refused: ` prefix here too.

use proto::{ErrorCode, ErrorReply};

use crate::job::error::JobError;
use crate::job::policy::PolicyError;
use crate::job::sign::SignError;
use crate::scan::ScanError;
use crate::state::StateError;
use crate::vault::VaultError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A job refused by its credential's policy, or a malformed request.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A credential spec (at `add`) that does not hold: always the input's
    /// fault, never a refusal.
    #[error("{0}")]
    Spec(PolicyError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Request(#[from] RequestError),
    /// One entry of an import refused the whole import. `entry` is the
    /// client's label for it (its line), so the user finds it; the code is
    /// the inner error's.
    #[error("{entry}: {inner}; nothing was imported")]
    Import { entry: String, inner: Box<Error> },
    #[error(transparent)]
    Scan(#[from] ScanError),
}

/// What is wrong with a request as such, before any layer below looks at
/// it.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("malformed request")]
    Malformed,
    #[error("vaultd speaks protocol {ours}, the client {theirs}: use matching versions")]
    VersionMismatch { ours: u32, theirs: u32 },
    #[error(
        "vaultd serves uid {owner} only; uid {uid} is not allowed (its owner can list it in allow_uids)"
    )]
    ForeignUid { uid: u32, owner: u32 },
    #[error(
        "uid {uid} may only use credentials here (request, explain, list, status, pubkey); `{what}` is for uid {owner}, the vault's owner"
    )]
    OwnerOnly {
        uid: u32,
        owner: u32,
        what: &'static str,
    },
    #[error("vaultd is busy (too many connections); retry")]
    Busy,
    #[error("body chunk outside a streamed job")]
    StrayChunk,
    #[error("a job reached the wrong handler")]
    MisroutedJob,
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The code the client sees (and exits with).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Vault(e) => vault_code(e),
            Error::Policy(e) if e.is_refusal() => ErrorCode::PolicyRefused,
            Error::Policy(_) | Error::Spec(_) => ErrorCode::BadRequest,
            Error::Sign(e) => sign_code(e),
            Error::Job(e) => job_code(e),
            Error::State(e) => state_code(e),
            Error::Import { inner, .. } => inner.code(),
            Error::Scan(e) => e.code(),
            Error::Request(e) => match e {
                RequestError::VersionMismatch { .. } => ErrorCode::VersionMismatch,
                RequestError::ForeignUid { .. } => ErrorCode::PermissionDenied,
                RequestError::OwnerOnly { .. } => ErrorCode::PolicyRefused,
                RequestError::Busy | RequestError::MisroutedJob => ErrorCode::Internal,
                RequestError::Malformed | RequestError::StrayChunk | RequestError::Invalid(_) => {
                    ErrorCode::BadRequest
                }
            },
        }
    }
}

impl From<Error> for ErrorReply {
    fn from(e: Error) -> ErrorReply {
        let code = e.code();
        let message = match &e {
            // A refusal says so; the error's own text is the rule alone,
            // as `explain` shows it.
            Error::Policy(p) if p.is_refusal() => format!("refused: {p}"),
            Error::Sign(s) if sign_code(s) == ErrorCode::PolicyRefused => format!("refused: {s}"),
            Error::Job(j) => job_message(j),
            _ => e.to_string(),
        };
        ErrorReply::new(code, message)
    }
}

fn vault_code(e: &VaultError) -> ErrorCode {
    match e {
        VaultError::WrongPassphrase | VaultError::WrongKeyfile => ErrorCode::BadPassphrase,
        VaultError::NoKeyfileSlot => ErrorCode::BadRequest,
        VaultError::Io { .. } => ErrorCode::Storage,
        VaultError::Crypto => ErrorCode::Internal,
        _ => ErrorCode::VaultCorrupt,
    }
}

/// A request that cannot be signed as its credential requires is refused
/// (nothing was sent); an unusable stored key is the daemon's problem, a
/// bad key given at `add` the input's.
fn sign_code(e: &SignError) -> ErrorCode {
    match e {
        SignError::Key => ErrorCode::Internal,
        SignError::BadKey { .. } | SignError::BadSpec { .. } => ErrorCode::BadRequest,
        _ => ErrorCode::PolicyRefused,
    }
}

/// A job error's one line, `refused: ` first when it is a refusal that
/// does not say so itself.
pub fn job_message(e: &JobError) -> String {
    match e {
        JobError::Sign(s) if sign_code(s) == ErrorCode::PolicyRefused => format!("refused: {e}"),
        JobError::RedirectRefused { .. } | JobError::Listener(_) => format!("refused: {e}"),
        _ => e.to_string(),
    }
}

pub fn job_code(e: &JobError) -> ErrorCode {
    match e {
        JobError::CrossOriginRedirect { .. }
        | JobError::RedirectRefused { .. }
        | JobError::LocationNotText
        | JobError::LocationNotUrl
        | JobError::HeaderName { .. }
        | JobError::HeaderValue { .. }
        | JobError::Listener(_) => ErrorCode::PolicyRefused,
        JobError::Sign(s) => sign_code(s),
        JobError::Timeout { .. }
        | JobError::TooManyRedirects { .. }
        | JobError::RedirectResend { .. }
        | JobError::TransferCoding
        | JobError::ContentEncoding
        | JobError::Transport { .. } => ErrorCode::Upstream,
        JobError::TooLarge { .. } | JobError::SignedBodyTooLarge { .. } => ErrorCode::TooLarge,
        JobError::ExpectedChunk
        | JobError::ClientGone
        | JobError::UploadLength { .. }
        | JobError::BadMethod { .. } => ErrorCode::BadRequest,
        JobError::LockedBeforeSend | JobError::LockedMeanwhile => ErrorCode::Locked,
        JobError::Internal(_) => ErrorCode::Internal,
        JobError::Redacted { code, .. } => *code,
    }
}

fn state_code(e: &StateError) -> ErrorCode {
    match e {
        StateError::Vault(v) | StateError::Save { source: v, .. } => vault_code(v),
        StateError::Locked | StateError::NoVault { .. } => ErrorCode::Locked,
        StateError::VaultExists { .. } => ErrorCode::VaultExists,
        StateError::NoSuchCredential { .. } => ErrorCode::NoSuchCredential,
        StateError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
        StateError::Malformed => ErrorCode::VaultCorrupt,
        StateError::NothingToBackUp { .. }
        | StateError::EmptyPassphrase
        | StateError::BadName(_) => ErrorCode::BadRequest,
        StateError::BackupTooLarge { .. } => ErrorCode::TooLarge,
        StateError::Spec(_) => ErrorCode::BadRequest,
        StateError::Source(_) => ErrorCode::SourceUnavailable,
        StateError::SourceManaged { .. } | StateError::NotSourced { .. } => ErrorCode::BadRequest,
        StateError::NarrowedOut { .. } | StateError::NarrowedAway { .. } => {
            ErrorCode::PolicyRefused
        }
        StateError::Internal(_) => ErrorCode::Internal,
    }
}

/// The reply for any layer's error.
pub fn reply(e: impl Into<Error>) -> ErrorReply {
    e.into().into()
}
