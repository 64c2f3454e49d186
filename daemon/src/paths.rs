//! Where the socket, vault and config live (DESIGN.md, "CLI contract").

use std::path::PathBuf;

/// `$XDG_RUNTIME_DIR/vaultd/vaultd.sock`.
pub fn default_socket() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(|d| PathBuf::from(d).join("vaultd").join("vaultd.sock"))
}

/// `$XDG_DATA_HOME/vaultd/vault`, else `~/.local/share/vaultd/vault`.
pub fn default_vault() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.data_dir().join("vaultd").join("vault"))
}

/// `$XDG_CONFIG_HOME/vaultd/config.toml`, else `~/.config/vaultd/config.toml`.
pub fn default_config() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.config_dir().join("vaultd").join("config.toml"))
}
