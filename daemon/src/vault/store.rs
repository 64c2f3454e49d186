//! The decrypted contents of the vault: credentials and their policies.

use std::collections::BTreeMap;

use proto::CredentialInfo;

use super::spec::{StoredSpec, StoredSpecV1};

use crate::secure::Shielded;
use serde::{Deserialize, Serialize};

/// Everything inside the ciphertext. Serialized with `proto::codec`; a new
/// field is a new format version (see `spec.rs`).
#[derive(Serialize, Deserialize, Clone, Default, Debug)]
pub struct Contents {
    pub credentials: BTreeMap<String, StoredCredential>,
    /// How vaultd logs in to OpenBao (format 2): a secret like a token,
    /// kept here so it is never in the config, argv or the environment.
    pub openbao_login: Option<StoredLogin>,
}

/// OpenBao login material, as stored. Variant order is the file format.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum StoredLogin {
    /// AppRole: the role_id is not meant to be secret, but together with
    /// the secret_id it is a login, so both are shielded.
    AppRole {
        role_id: Shielded,
        secret_id: Shielded,
    },
    /// A client token given by the admin (`auth = "token"`).
    Token(Shielded),
}

/// Decodes the contents of a file of format `version` (already checked by
/// `VaultFile::parse` to be one this code reads).
pub fn decode_contents(
    version: u16,
    plaintext: &[u8],
) -> Result<Contents, proto::codec::CodecError> {
    if version == 1 {
        let old: ContentsV1 = proto::codec::decode(plaintext)?;
        return Ok(old.into());
    }
    proto::codec::decode(plaintext)
}

/// Format 1's contents: credentials only, specs without a source.
#[derive(Deserialize)]
struct ContentsV1 {
    credentials: BTreeMap<String, StoredCredentialV1>,
}

#[derive(Deserialize)]
struct StoredCredentialV1 {
    spec: StoredSpecV1,
    value: Shielded,
    created: u64,
    last_used: Option<u64>,
    use_count: u64,
}

impl From<ContentsV1> for Contents {
    fn from(old: ContentsV1) -> Contents {
        Contents {
            credentials: old
                .credentials
                .into_iter()
                .map(|(name, c)| {
                    (
                        name,
                        StoredCredential {
                            spec: c.spec.into(),
                            value: c.value,
                            created: c.created,
                            last_used: c.last_used,
                            use_count: c.use_count,
                        },
                    )
                })
                .collect(),
            openbao_login: None,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct StoredCredential {
    pub spec: StoredSpec,
    /// Sealed under the process's shielding key while in memory; plain
    /// bytes inside the (encrypted) vault file.
    pub value: Shielded,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub last_used: Option<u64>,
    pub use_count: u64,
}

impl StoredCredential {
    pub fn info(&self, name: &str) -> CredentialInfo {
        CredentialInfo {
            name: name.to_owned(),
            spec: (&self.spec).into(),
            created: self.created,
            last_used: self.last_used,
            use_count: self.use_count,
            source_state: None,
        }
    }
}

/// A credential name that scripts and log lines could not use plainly.
#[derive(Debug, thiserror::Error)]
#[error(
    "credential names are 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit"
)]
pub struct InvalidName;

/// Names are used in scripts and log lines: keep them plain.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    let ok_len = (1..=64).contains(&name.len());
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ok_start = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start {
        Ok(())
    } else {
        Err(InvalidName)
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("microreact").is_ok());
        assert!(validate_name("a.b-c_1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn contents_round_trip_keeps_values() {
        let mut c = Contents::default();
        c.credentials.insert(
            "m".into(),
            StoredCredential {
                spec: StoredSpec::default(),
                value: Shielded::seal(b"tok").unwrap(),
                created: 1,
                last_used: None,
                use_count: 0,
            },
        );
        let bytes = proto::codec::encode(&c).unwrap();
        let back: Contents = proto::codec::decode(&bytes).unwrap();
        assert_eq!(back.credentials["m"].value.open().unwrap().expose(), b"tok");
    }
}
