//! Why the state could not do what was asked. Messages name files and
//! credentials, never a value.

use std::path::PathBuf;

use crate::vault::VaultError;

/// Why the state could not do what was asked. Messages name files and
/// credentials, never a value.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// A save failed; unless the rename had happened, nothing changed.
    #[error("{source}{}", if *.replaced { "" } else { "; the vault was not changed" })]
    Save { source: VaultError, replaced: bool },
    #[error("the vault is locked: run `vaultctl unlock`")]
    Locked,
    #[error("no vault at {}: run `vaultctl init` first", path.display())]
    NoVault { path: PathBuf },
    #[error("a vault already exists at {}", path.display())]
    VaultExists { path: PathBuf },
    #[error("vault contents are malformed")]
    Malformed,
    #[error("no vault at {}: nothing to back up", path.display())]
    NothingToBackUp { path: PathBuf },
    #[error(
        "{} is larger than one message can carry ({max} bytes); copy it while vaultd is stopped",
        path.display()
    )]
    BackupTooLarge { path: PathBuf, max: usize },
    #[error("no credential named {name:?} (see `vaultctl list`)")]
    NoSuchCredential { name: String },
    #[error(
        "a credential named {name:?} already exists (use `vaultctl rotate` to change its value)"
    )]
    AlreadyExists { name: String },
    #[error("the passphrase must not be empty")]
    EmptyPassphrase,
    #[error(transparent)]
    BadName(#[from] crate::vault::store::InvalidName),
    /// A stored spec that no longer compiles (a vault written by another
    /// version).
    #[error("the stored credential's policy is invalid: {0}")]
    Spec(crate::job::policy::PolicyError),
    /// The credential's value could not be had from OpenBao (exit 7).
    #[error(transparent)]
    Source(crate::openbao::SourceError),
    #[error(
        "{name:?} takes its value from OpenBao ({at}): write a new version there, then run `vaultctl refresh {name}`"
    )]
    SourceManaged { name: String, at: String },
    #[error("{name:?} does not take its value from OpenBao: nothing to refresh")]
    NotSourced { name: String },
    #[error(
        "refused: {origin} is one of this credential's origins, but OpenBao's tokenvault_origins on {at} narrows them to {}",
        effective.join(", ")
    )]
    NarrowedOut {
        origin: String,
        at: String,
        effective: Vec<String>,
    },
    #[error("refused: OpenBao's tokenvault_origins on {at} allows none of {name:?}'s origins")]
    NarrowedAway { name: String, at: String },
    /// vaultd's own fault (a task that panicked, the shielding key).
    #[error("internal error: {0}")]
    Internal(String),
}

pub(super) fn internal(e: impl std::fmt::Display) -> StateError {
    StateError::Internal(e.to_string())
}

/// Why the daemon cannot start serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot set up the shielding key: {0}")]
    Shield(String),
    #[error(transparent)]
    Http(#[from] crate::job::error::SetupError),
    #[error("[openbao]: {0}")]
    OpenBao(crate::openbao::SourceError),
}
