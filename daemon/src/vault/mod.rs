//! The vault file: its on-disk format, the cryptography that protects it and
//! the atomic write that replaces it.
//!
//! - [`format`]: the byte layout (magic, version, key slots, nonce,
//!   ciphertext), parsing without crypto, sealing and opening.
//! - [`crypto`]: the data key, key-slot wrapping (Argon2id / HKDF-SHA256 +
//!   AES-256-GCM) and content encryption. Only `ring` and `argon2` do crypto.
//! - [`file`]: reading the file and replacing it atomically and durably.
//! - [`instance`]: one daemon per vault (an exclusive lock on `<vault>.lock`).
//! - [`spec`]: the stored form of a credential's policy, independent of
//!   the protocol's types.
//!
//! Errors never carry secret bytes or file bytes, only fixed messages and
//! paths.

use std::path::PathBuf;

pub mod crypto;
pub mod file;
#[cfg(test)]
mod fixtures;
pub mod format;
pub mod instance;
mod kdf_gate;
pub mod spec;
pub mod store;

pub use crypto::{DataKey, KdfParams};
pub use file::{read_vault, write_atomic};
pub use format::VaultFile;

/// Why a vault could not be read, unlocked, sealed or written.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// A filesystem operation failed. `op` is a verb phrase ("read",
    /// "write", "replace", ...), `path` the file or directory it acted on.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
    #[error("not a tokenvault vault file (bad magic)")]
    BadMagic,
    #[error("vault file was created by a newer tokenvault (format version {0}); upgrade vaultd")]
    NewerVersion(u16),
    #[error("vault file is truncated")]
    Truncated,
    #[error("vault file is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("wrong key file")]
    WrongKeyfile,
    #[error("the vault has no key-file slot")]
    NoKeyfileSlot,
    /// Caller-supplied Argon2id parameters outside [`KdfParams::is_valid`]
    /// (parameters read from a file are reported as [`VaultError::Corrupt`]).
    #[error(
        "invalid Argon2id parameters (need m_cost_kib 8..=262144 and >= 8 * p_cost, t_cost 1..=16, p_cost 1..=8)"
    )]
    InvalidKdfParams,
    /// `ring` or `argon2` failed (e.g. the system RNG is unavailable).
    #[error("cryptographic failure (ring, argon2 or the system random number generator)")]
    Crypto,
}
