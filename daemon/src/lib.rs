//! vaultd: keeps API tokens encrypted at rest and zeroized in memory, and
//! performs HTTP requests with them on behalf of local scripts, which never
//! see the token. `main.rs` only parses flags and builds the runtime; all of
//! this is a library so tests can run a real server on a temporary socket.

pub mod config;
pub mod connection;
pub mod handlers;
pub mod harden;
pub mod job;
pub mod paths;
pub mod peer;
pub mod secure;
pub mod server;
pub mod state;
pub mod systemd;
pub mod vault;

pub use server::{bind, serve};
pub use state::State;

/// Every freed block is wiped (see [`secure::alloc`]); declared here so the
/// daemon's binary and its unit tests both run on it. The feature that turns
/// it off exists only so `bench/run.sh` can measure what it costs.
#[cfg(not(feature = "bench-unwiped-heap"))]
#[global_allocator]
static ALLOC: secure::alloc::Wiping = secure::alloc::Wiping(std::alloc::System);
