//! vaultd: keeps API tokens encrypted at rest and zeroized in memory, and
//! performs HTTP requests with them on behalf of local scripts, which never
//! see the token. `main.rs` only parses flags and builds the runtime; all of
//! this is a library so tests can run a real server on a temporary socket.

mod args;
mod config;
mod connection;
mod dispatch;
mod error;
mod front;
mod harden;
mod job;
mod openbao;
mod paths;
mod peer;
mod scan;
mod secure;
mod server;
mod state;
mod systemd;
mod text;
mod vault;

// The library's surface: what `main.rs`, the integration tests and the
// fuzz targets use. Everything else is private, so the compiler reports
// what nothing uses.
pub use args::Args;
pub use config::{Config, FrontSocket};
pub use dispatch::handle;
pub use front::serve as serve_front;
pub use harden::harden_process;
pub use paths::{default_config, default_socket, default_vault};
pub use peer::Peer;
pub use server::{bind, serve};
pub use state::State;
pub use systemd::{
    auto_unlock, key_source, listener_from_fd, notify_ready, notify_stopping, take_listen_fds,
};
pub use vault::instance::SoleInstance;
pub use vault::{DataKey, KdfParams, VaultFile};

/// Every freed block is wiped (see [`secure::alloc`]); declared here so the
/// daemon's binary and its unit tests both run on it. The feature that turns
/// it off exists only so `bench/run.sh` can measure what it costs.
#[cfg(not(feature = "bench-unwiped-heap"))]
#[global_allocator]
static ALLOC: secure::alloc::Wiping = secure::alloc::Wiping(std::alloc::System);
