//! The only place that calls bincode. Every decode runs on a complete,
//! size-checked slice with bincode's own limit set: bincode 2's default
//! config has none, and an 11-byte message declaring a 2^40-byte string
//! would abort the process.

use bincode::config::{self, Configuration, Limit, LittleEndian, Varint};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::MAX_FRAME;

type Config = Configuration<LittleEndian, Varint, Limit<MAX_FRAME>>;

fn config() -> Config {
    config::standard().with_limit::<MAX_FRAME>()
}

/// Why a payload could not be encoded or decoded. Deliberately carries no
/// detail from the input: a decode error must never echo the bytes it saw
/// (they may hold a secret), and it is logged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("message could not be encoded")]
    Encode,
    #[error("malformed message")]
    Decode,
    #[error("message has {0} trailing bytes")]
    Trailing(usize),
}

/// Exact encoded size, so callers allocate once (no reallocation leaving
/// copies of secrets in freed memory).
pub fn encoded_len<T: Serialize>(value: &T) -> Result<usize, CodecError> {
    let mut w = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut w, config()).map_err(|_| CodecError::Encode)?;
    Ok(w.bytes_written)
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, config()).map_err(|_| CodecError::Encode)?;
    Ok(())
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(encoded_len(value)?);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes one whole value; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_FRAME {
        return Err(CodecError::Decode);
    }
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|_| CodecError::Decode)?;
    if used != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - used));
    }
    Ok(value)
}

/// `#[serde(with)]` helper: a byte vector as one length-prefixed run of
/// bytes instead of a sequence of individually encoded `u8`s.
pub mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(super::ByteBufVisitor)
    }
}

/// As [`bytes`], for `Option<Vec<u8>>`.
pub mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    struct Wrap(#[serde(with = "super::bytes")] Vec<u8>);

    struct WrapRef<'a>(&'a [u8]);

    impl Serialize for WrapRef<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&WrapRef(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

struct ByteBufVisitor;

impl<'de> serde::de::Visitor<'de> for ByteBufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}
