//! Where the socket, vault and config live (DESIGN.md, "CLI contract").

use std::path::PathBuf;

/// `$XDG_RUNTIME_DIR/vaultd/vaultd.sock`. Without `XDG_RUNTIME_DIR` (a
/// root shell in a container, `su`, cron), the directory it would name,
/// `/run/user/UID`, when that exists and is this user's own: vaultctl
/// resolves it the same way, so the two still meet.
pub fn default_socket() -> Option<PathBuf> {
    proto::local::default_socket()
}

/// `$XDG_DATA_HOME/vaultd/vault`, else `~/.local/share/vaultd/vault`.
pub fn default_vault() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.data_dir().join("vaultd").join("vault"))
}

/// `$XDG_CONFIG_HOME/vaultd/config.toml`, else `~/.config/vaultd/config.toml`.
pub fn default_config() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.config_dir().join("vaultd").join("config.toml"))
}
