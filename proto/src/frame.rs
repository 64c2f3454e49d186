//! Framing: a u32 big-endian length, then one bincode payload.
//!
//! Reading checks the length against [`MAX_FRAME`] before allocating, grows
//! the buffer only as bytes actually arrive (a peer that announces 64 MiB and
//! sends nothing costs nothing), and wipes every payload buffer after
//! decoding, since request frames carry passphrases and tokens. A clean close
//! between frames is `Ok(None)`, as in mini-redis.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::MAX_FRAME;
use crate::codec::{self, CodecError};

/// Read in steps of at most this much, so memory follows the bytes received.
const READ_STEP: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME} bytes")]
    TooLarge(u64),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// Encodes `value` as one complete frame (prefix included), allocated once
/// at its exact size and wiped on drop.
pub fn encode_frame<T: Serialize>(value: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let len = codec::encoded_len(value)?;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len as u64));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(4 + len));
    out.extend_from_slice(&(len as u32).to_be_bytes());
    codec::encode_into(value, &mut out)?;
    Ok(out)
}

/// As [`write_frame`], encoding into `buf` (kept for the next frame): a
/// stream of chunks reuses one buffer instead of allocating, and faulting
/// in, a fresh one per frame. `buf` is replaced, never reallocated, when it
/// is too small, so no copy is left behind in freed memory; the caller
/// wipes it when done (it is `Zeroizing`).
pub fn write_frame_with<W: Write, T: Serialize>(
    w: &mut W,
    value: &T,
    buf: &mut Zeroizing<Vec<u8>>,
) -> Result<(), FrameError> {
    let len = codec::encoded_len(value)?;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len as u64));
    }
    if buf.capacity() < 4 + len {
        *buf = Zeroizing::new(Vec::with_capacity(4 + len));
    }
    buf.clear();
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    codec::encode_into(value, buf)?;
    w.write_all(buf)?;
    w.flush()?;
    Ok(())
}

/// Parses a length prefix, refusing oversize frames before any allocation.
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as u64;
    if len > MAX_FRAME as u64 {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len as usize)
}

/// Decodes a complete payload, then wipes it.
pub fn decode_payload<T: DeserializeOwned>(payload: Zeroizing<Vec<u8>>) -> Result<T, FrameError> {
    Ok(codec::decode(&payload)?)
}

pub fn write_frame<W: Write, T: Serialize>(w: &mut W, value: &T) -> Result<(), FrameError> {
    let frame = encode_frame(value)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; `Ok(None)` on a clean close before its first byte.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = frame_len(prefix)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(len.min(READ_STEP)));
    while buf.len() < len {
        let step = (len - buf.len()).min(READ_STEP);
        grow(&mut buf, step);
        let start = buf.len();
        buf.resize(start + step, 0);
        let n = read_some(r, &mut buf[start..])?;
        buf.truncate(start + n);
        if n == 0 {
            return Err(FrameError::Truncated);
        }
    }
    decode_payload(buf).map(Some)
}

fn read_some<R: Read>(r: &mut R, dst: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(dst) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Grows a secret-bearing buffer without leaving the old contents behind in
/// freed memory: copy into a larger buffer, wipe the old one.
fn grow(buf: &mut Zeroizing<Vec<u8>>, additional: usize) {
    if buf.capacity() - buf.len() >= additional {
        return;
    }
    let new_cap = (buf.len() + additional).max(buf.capacity() * 2);
    let mut bigger = Zeroizing::new(Vec::with_capacity(new_cap));
    bigger.extend_from_slice(buf);
    *buf = bigger;
}

#[cfg(feature = "tokio")]
mod nonblocking {
    use super::*;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    pub async fn write_frame_async<W, T>(w: &mut W, value: &T) -> Result<(), FrameError>
    where
        W: AsyncWrite + Unpin,
        T: Serialize,
    {
        let frame = encode_frame(value)?;
        w.write_all(&frame).await?;
        w.flush().await?;
        Ok(())
    }

    /// As [`read_frame`]. Cancel-safe only between frames: callers that
    /// time out a read must drop the connection.
    pub async fn read_frame_async<R, T>(r: &mut R) -> Result<Option<T>, FrameError>
    where
        R: AsyncRead + Unpin,
        T: DeserializeOwned,
    {
        let mut prefix = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match r.read(&mut prefix[got..]).await? {
                0 if got == 0 => return Ok(None),
                0 => return Err(FrameError::Truncated),
                n => got += n,
            }
        }
        let len = frame_len(prefix)?;
        let mut buf = Zeroizing::new(Vec::with_capacity(len.min(READ_STEP)));
        while buf.len() < len {
            let step = (len - buf.len()).min(READ_STEP);
            grow(&mut buf, step);
            let start = buf.len();
            buf.resize(start + step, 0);
            let n = r.read(&mut buf[start..]).await?;
            buf.truncate(start + n);
            if n == 0 {
                return Err(FrameError::Truncated);
            }
        }
        decode_payload(buf).map(Some)
    }
}

#[cfg(feature = "tokio")]
pub use nonblocking::{read_frame_async, write_frame_async};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Hello, Request};

    #[test]
    fn round_trip() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &Hello { version: 7 }).unwrap();
        write_frame(&mut wire, &Request::Status).unwrap();
        let mut r = &wire[..];
        let h: Hello = read_frame(&mut r).unwrap().unwrap();
        assert_eq!(h.version, 7);
        let q: Request = read_frame(&mut r).unwrap().unwrap();
        assert!(matches!(q, Request::Status));
        assert!(read_frame::<_, Request>(&mut r).unwrap().is_none());
    }

    #[test]
    fn huge_prefix_refused_before_allocation() {
        let wire = [0xff, 0xff, 0xff, 0xff, 0];
        let err = read_frame::<_, Request>(&mut &wire[..]).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(0xffff_ffff)));
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &Hello { version: 1 }).unwrap();
        for cut in 1..wire.len() {
            let err = read_frame::<_, Hello>(&mut &wire[..cut]).unwrap_err();
            assert!(matches!(err, FrameError::Truncated), "cut at {cut}: {err}");
        }
    }

    #[test]
    fn trailing_bytes_refused() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &Request::Status).unwrap();
        wire[3] += 1;
        wire.push(0);
        assert!(read_frame::<_, Request>(&mut &wire[..]).is_err());
    }

    #[test]
    fn bincode_length_bomb_in_payload_is_refused() {
        // A Request::Remove whose name claims 2^40 bytes: bincode's own limit
        // must stop it, not the allocator.
        let mut payload = vec![8u8]; // variant index of Remove
        payload.push(253); // varint u64 marker
        payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let mut wire = (payload.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(&payload);
        assert!(read_frame::<_, Request>(&mut &wire[..]).is_err());
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn async_round_trip() {
        let mut wire = Vec::new();
        write_frame_async(&mut wire, &Hello { version: 3 })
            .await
            .unwrap();
        let mut r = &wire[..];
        let h: Hello = read_frame_async(&mut r).await.unwrap().unwrap();
        assert_eq!(h.version, 3);
        assert!(
            read_frame_async::<_, Hello>(&mut r)
                .await
                .unwrap()
                .is_none()
        );
    }
}
