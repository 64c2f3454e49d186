//! Where the socket, vault and config live (DESIGN.md, "CLI contract").

use std::path::PathBuf;

/// `$XDG_RUNTIME_DIR/vaultd/vaultd.sock`. Without `XDG_RUNTIME_DIR` (a
/// root shell in a container, `su`, cron), the directory it would name,
/// `/run/user/UID`, when that exists and is this user's own: vaultctl
/// resolves it the same way, so the two still meet.
pub fn default_socket() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(own_run_user_dir)
        .map(|d| d.join("vaultd").join("vaultd.sock"))
}

/// `/run/user/UID` if it is a directory owned by this uid and closed to
/// others (only root can create entries in `/run/user`).
fn own_run_user_dir() -> Option<PathBuf> {
    own_dir_under("/run/user".as_ref(), rustix::process::getuid().as_raw())
}

/// `base/UID` if it is a directory (not a symlink) owned by `uid`, mode
/// 0700 or tighter.
fn own_dir_under(base: &std::path::Path, uid: u32) -> Option<PathBuf> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = base.join(uid.to_string());
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0).then_some(dir)
}

/// `$XDG_DATA_HOME/vaultd/vault`, else `~/.local/share/vaultd/vault`.
pub fn default_vault() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.data_dir().join("vaultd").join("vault"))
}

/// `$XDG_CONFIG_HOME/vaultd/config.toml`, else `~/.config/vaultd/config.toml`.
pub fn default_config() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|b| b.config_dir().join("vaultd").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn run_user_fallback_only_for_an_own_private_directory() {
        let base = tempfile::tempdir().unwrap();
        let uid = rustix::process::getuid().as_raw();
        assert_eq!(own_dir_under(base.path(), uid), None, "missing");
        let dir = base.path().join(uid.to_string());
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(own_dir_under(base.path(), uid), None, "open to others");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(own_dir_under(base.path(), uid), Some(dir.clone()));
        assert_eq!(
            own_dir_under(base.path(), uid + 1),
            None,
            "another uid's name"
        );
        let link = base.path().join((uid + 2).to_string());
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert_eq!(own_dir_under(base.path(), uid + 2), None, "a symlink");
    }
}
