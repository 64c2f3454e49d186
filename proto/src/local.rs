//! What vaultd and vaultctl must agree on besides the messages: where the
//! socket is by default, and what a key file is. Each is decided here once,
//! so the two sides cannot drift apart.

use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Secret;

/// `$XDG_RUNTIME_DIR/vaultd/vaultd.sock`. Without `XDG_RUNTIME_DIR` (a
/// root shell in a container, `su`, cron): the directory it would name,
/// `/run/user/UID`, when that exists and is this user's own, so that a
/// socket found there was made by this user's own vaultd.
pub fn default_socket() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| own_dir_under(Path::new("/run/user"), rustix::process::getuid().as_raw()))
        .map(|d| d.join("vaultd").join("vaultd.sock"))
}

/// `base/UID` if it is a directory (not a symlink) owned by `uid`, mode
/// 0700 or tighter (only root can create entries in `/run/user`).
pub fn own_dir_under(base: &Path, uid: u32) -> Option<PathBuf> {
    let dir = base.join(uid.to_string());
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0).then_some(dir)
}

/// Size of a key file: 32 random bytes, as `vaultctl keyfile create`
/// writes it.
pub const KEYFILE_LEN: usize = 32;

/// Why a key file could not be used. Never carries the file's bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot open: {0}")]
    Open(io::Error),
    #[error("cannot read: {0}")]
    Read(io::Error),
    #[error(
        "not a key file (expected {KEYFILE_LEN} raw bytes, as written by `vaultctl keyfile create`)"
    )]
    WrongSize,
}

/// Reads a key file: exactly [`KEYFILE_LEN`] bytes, straight into a
/// zeroizing buffer (never more is read, so a wrong path to a huge file
/// costs nothing).
pub fn read_keyfile(path: &Path) -> Result<Secret, KeyFileError> {
    let f = std::fs::File::open(path).map_err(KeyFileError::Open)?;
    let mut buf = zeroize::Zeroizing::new([0u8; KEYFILE_LEN + 1]);
    let mut n = 0;
    let mut limited = f.take((KEYFILE_LEN + 1) as u64);
    loop {
        match limited.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(KeyFileError::Read(e)),
        }
        if n == buf.len() {
            break;
        }
    }
    if n != KEYFILE_LEN {
        return Err(KeyFileError::WrongSize);
    }
    Ok(Secret::from_slice(&buf[..KEYFILE_LEN]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyfile_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, [7u8; 32]).unwrap();
        assert_eq!(read_keyfile(&p).unwrap().expose(), &[7u8; 32]);
        std::fs::write(&p, [7u8; 33]).unwrap();
        assert!(matches!(read_keyfile(&p), Err(KeyFileError::WrongSize)));
        std::fs::write(&p, [7u8; 31]).unwrap();
        assert!(matches!(read_keyfile(&p), Err(KeyFileError::WrongSize)));
        assert!(matches!(
            read_keyfile(&dir.path().join("missing")),
            Err(KeyFileError::Open(_))
        ));
    }

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
