//! vaultd's command line. In the library, not in `main.rs`, so the man page
//! can be generated from the same definition at packaging time
//! (`packaging/man`) without vaultd growing a flag for it.

use std::path::PathBuf;

use clap::Parser;

/// tokenvault daemon: keeps API tokens encrypted and performs HTTP requests
/// with them for `vaultctl`, so scripts never see a token.
///
/// Runs in the foreground and logs to stderr (set VAULTD_LOG=debug for
/// more). Usually started by systemd through its socket, enabled once per
/// user with `systemctl --user enable --now vaultd.socket`.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
pub struct Args {
    /// Socket path [default: $VAULTD_SOCKET, else the config's `socket`,
    /// else $XDG_RUNTIME_DIR/vaultd/vaultd.sock, else
    /// /run/user/UID/vaultd/vaultd.sock if that directory is yours]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Vault file [default: the config's `vault`, else
    /// $XDG_DATA_HOME/vaultd/vault]
    #[arg(long, value_name = "PATH")]
    pub vault: Option<PathBuf>,
    /// The HTTP front's socket: HTTP/1.1 for any client that can speak it
    /// over a Unix socket; an empty PATH turns it off [default: the
    /// config's `http_socket`, else http.sock beside the main socket]
    #[arg(long, value_name = "PATH")]
    pub http_socket: Option<PathBuf>,
    /// Config file [default: $XDG_CONFIG_HOME/vaultd/config.toml, optional]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}
