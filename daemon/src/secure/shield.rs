//! Tokens kept encrypted while the vault is unlocked.
//!
//! As OpenSSH shields private keys, every stored token is sealed with
//! AES-256-GCM under an ephemeral key that exists only in this process: 256
//! bits from the system RNG, drawn at start, held in a locked, undumpable
//! page outside the heap. A token is opened into a short-lived zeroizing
//! buffer for the one job that needs it. A read of the daemon's heap (a
//! disclosure bug, a swapped-out page, a stray log of a struct) finds only
//! ciphertext.
//!
//! OpenSSH goes further and hashes a 16 KiB prekey on every use, so that a
//! partial read of memory is not enough. Measured here, that hash was 13%
//! of the daemon's CPU under load; vaultd keeps the key itself in the
//! locked page instead. `ring` builds the AES key schedule on the stack for
//! each operation and does not wipe it: it is the schedule of the ephemeral
//! key, never a token.

use std::fmt;
use std::sync::OnceLock;

use proto::Secret;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::pinned::PinnedPages;

/// Length of the shielding key.
pub const KEY_LEN: usize = 32;

const AAD: &[u8] = b"tokenvault shield v1";

/// Why a value could not be shielded or opened: the RNG failed, the key
/// page could not be mapped, or a sealed value was damaged in memory.
#[derive(Debug, thiserror::Error)]
#[error("cannot protect a secret in memory: {0}")]
pub struct ShieldError(&'static str);

struct ShieldKey(PinnedPages);

static KEY: OnceLock<Result<ShieldKey, &'static str>> = OnceLock::new();

fn shield_key() -> Result<&'static ShieldKey, ShieldError> {
    KEY.get_or_init(|| {
        let mut page = PinnedPages::new(KEY_LEN).map_err(|_| "cannot map the key page")?;
        SystemRandom::new()
            .fill(&mut page.bytes_mut()[..KEY_LEN])
            .map_err(|_| "the system random number generator failed")?;
        Ok(ShieldKey(page))
    })
    .as_ref()
    .map_err(|e| ShieldError(e))
}

/// Draws the key now, so its one-time warning (if the page cannot be
/// locked) appears at start rather than at the first `add`. Returns whether
/// the page is locked in memory.
pub fn init() -> Result<bool, ShieldError> {
    shield_key().map(|k| k.0.is_locked())
}

impl ShieldKey {
    /// A `ring` key object for one operation.
    fn key(&self) -> Result<LessSafeKey, ShieldError> {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.0.bytes()[..KEY_LEN])
            .map_err(|_| ShieldError("aead key"))?;
        Ok(LessSafeKey::new(unbound))
    }
}

/// A secret sealed under the process's shielding key: nonce, ciphertext,
/// tag. Holds no plaintext, so cloning or moving it copies nothing secret.
/// Serializes as the plain bytes (for the encrypted vault file only) and
/// shields again as it is deserialized.
#[derive(Clone, PartialEq, Eq)]
pub struct Shielded(Box<[u8]>);

impl Shielded {
    /// Seals `plain`; the caller drops (and so zeroizes) its own copy.
    pub fn seal(plain: &[u8]) -> Result<Shielded, ShieldError> {
        let key = shield_key()?.key()?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ShieldError("the system random number generator failed"))?;
        let mut buf = Vec::with_capacity(NONCE_LEN + plain.len() + AES_256_GCM.tag_len());
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| {
                // Never leave the plaintext copy behind.
                zeroize::Zeroize::zeroize(&mut buf[..]);
                ShieldError("seal")
            })?;
        buf.extend_from_slice(tag.as_ref());
        Ok(Shielded(buf.into_boxed_slice()))
    }

    /// Opens into a fresh zeroizing buffer, for one job.
    pub fn open(&self) -> Result<Secret, ShieldError> {
        let key = shield_key()?.key()?;
        let (nonce, sealed) = self
            .0
            .split_at_checked(NONCE_LEN)
            .ok_or(ShieldError("damaged"))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ShieldError("damaged"))?;
        let mut out = Secret::new(sealed.to_vec());
        let len = key
            .open_in_place(nonce, Aad::from(AAD), out.expose_mut())
            .map_err(|_| ShieldError("damaged"))?
            .len();
        out.truncate(len);
        Ok(out)
    }

    /// Length of the plaintext, without opening it.
    pub fn len(&self) -> usize {
        self.0
            .len()
            .saturating_sub(NONCE_LEN + AES_256_GCM.tag_len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TryFrom<&Secret> for Shielded {
    type Error = ShieldError;
    fn try_from(s: &Secret) -> Result<Shielded, ShieldError> {
        Shielded::seal(s.expose())
    }
}

impl fmt::Debug for Shielded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Shielded {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let plain = self.open().map_err(serde::ser::Error::custom)?;
        plain.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Shielded {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let plain = Secret::deserialize(d)?;
        Shielded::seal(plain.expose()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_no_plaintext_inside() {
        let s = Shielded::seal(b"tok-1234567890abcdef").unwrap();
        assert_eq!(s.len(), 20);
        assert!(!s.0.windows(4).any(|w| w == b"tok-"));
        assert_eq!(s.open().unwrap().expose(), b"tok-1234567890abcdef");
        assert_eq!(format!("{s:?}"), "[redacted]");
        // Fresh nonce per seal: equal plaintexts, different ciphertexts.
        assert_ne!(Shielded::seal(b"x").unwrap(), Shielded::seal(b"x").unwrap());
    }

    #[test]
    fn damage_is_detected() {
        let mut s = Shielded::seal(b"token").unwrap();
        s.0[NONCE_LEN] ^= 1;
        assert!(s.open().is_err());
        assert!(Shielded(Box::new([1, 2])).open().is_err());
    }

    #[test]
    fn serializes_as_plain_bytes_like_secret() {
        let s = Shielded::seal(b"abc").unwrap();
        let bytes = proto::codec::encode(&s).unwrap();
        assert_eq!(
            bytes,
            proto::codec::encode(&Secret::from_slice(b"abc")).unwrap()
        );
        let back: Shielded = proto::codec::decode(&bytes).unwrap();
        assert_eq!(back.open().unwrap().expose(), b"abc");
    }
}
