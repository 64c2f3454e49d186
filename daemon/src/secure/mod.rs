//! Memory that holds secrets: where it lives and how it is wiped.
//!
//! - [`alloc`]: the daemon's global allocator, which wipes every block as it
//!   is freed, so copies made by code we do not own (hyper's header
//!   buffers, rustls records, bincode's growing vectors) do not outlive
//!   their use in freed heap memory.
//! - [`pinned`]: a few pages outside the heap, pinned in RAM (mlock) and left out
//!   of core dumps, for the shielding key.
//! - [`shield`]: tokens kept encrypted in memory under an ephemeral key
//!   held in such a page, and decrypted only for the one job that
//!   needs them, as OpenSSH shields private keys.

pub mod alloc;
pub mod pinned;
pub mod shield;

pub use shield::Shielded;
