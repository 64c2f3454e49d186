//! The one type that carries secret bytes over the socket.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use zeroize::Zeroizing;

/// Secret bytes (a passphrase, a token value, a key file) on their way *into*
/// the daemon. Zeroized on drop, never printed: `Debug` and `Display` both
/// show `[redacted]`, so a stray `{:?}` in a log line cannot leak it.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes ownership of the bytes; the caller should not keep a copy.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// Copies a slice into a fresh, exactly sized buffer.
    pub fn from_slice(bytes: &[u8]) -> Self {
        let mut v = Vec::with_capacity(bytes.len());
        v.extend_from_slice(bytes);
        Secret::new(v)
    }

    /// The secret bytes. Named so that every use is easy to find in review.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Mutable access, for decrypting in place without another copy.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Shortens the secret; the dropped tail is wiped with the rest on drop.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("secret bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Secret, E> {
        check_len(v.len())?;
        Ok(Secret::from_slice(v))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Secret, E> {
        // Wrap first so the buffer is wiped even when the length is refused.
        let s = Secret::new(v);
        check_len(s.len())?;
        Ok(s)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Secret, A::Error> {
        let cap = seq.size_hint().unwrap_or(0).min(crate::MAX_SECRET);
        let mut out = Secret::new(Vec::with_capacity(cap));
        while let Some(b) = seq.next_element::<u8>()? {
            check_len(out.len() + 1)?;
            out.0.push(b);
        }
        Ok(out)
    }
}

fn check_len<E: de::Error>(len: usize) -> Result<(), E> {
    if len > crate::MAX_SECRET {
        return Err(E::custom("secret too long"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::from_slice(b"hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), b"hunter2");
    }

    #[test]
    fn round_trips_and_refuses_oversize() {
        let s = Secret::from_slice(b"abc");
        let bytes = crate::codec::encode(&s).unwrap();
        let back: Secret = crate::codec::decode(&bytes).unwrap();
        assert_eq!(back.expose(), b"abc");
        let big = Secret::new(vec![7u8; crate::MAX_SECRET + 1]);
        let bytes = crate::codec::encode(&big).unwrap();
        assert!(crate::codec::decode::<Secret>(&bytes).is_err());
    }
}
