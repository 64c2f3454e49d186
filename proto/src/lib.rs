//! The vaultd wire contract: every message that crosses the socket, its
//! framing and its limits. Both `vaultd` and `vaultctl` depend on this crate
//! and nothing else about each other, so a change here is a protocol change.
//!
//! All bincode calls live in [`codec`]: swapping the serialization format
//! (bincode 2 is unmaintained, RUSTSEC-2025-0141) touches one file.
#![forbid(unsafe_code)]

pub mod codec;
pub mod error;
pub mod frame;
pub mod local;
pub mod message;
pub mod secret;

pub use error::{ErrorCode, ErrorReply};
pub use frame::FrameError;
pub use message::*;
pub use secret::Secret;

/// Bumped by hand on every incompatible change. A literal, not the crate
/// version: rbw derived it from Cargo's version and stopped telling
/// releases apart.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest request or response body carried in one `Job` frame. Streamed
/// jobs carry bodies of any size in chunks of at most [`CHUNK`] bytes.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Size of the body chunks of a streamed job: large enough that framing
/// costs nothing, small enough that memory stays flat.
pub const CHUNK: usize = 256 * 1024;

/// Largest frame accepted on the socket, checked against the length prefix
/// before any buffer is allocated. A body plus room for headers and names.
pub const MAX_FRAME: usize = MAX_BODY + 1024 * 1024;

/// Largest secret (token, passphrase, key) accepted. Real tokens are a few
/// hundred bytes; the cap keeps a secret inside one small, exact buffer.
pub const MAX_SECRET: usize = 64 * 1024;
