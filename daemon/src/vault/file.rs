//! Reading the vault file and replacing it atomically and durably: a crash
//! at any point leaves either the old or the new file, never a broken one.

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::VaultError;

fn io_err(path: &Path, op: &'static str, source: io::Error) -> VaultError {
    VaultError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// The whole file, or `Ok(None)` if it does not exist. Errors carry the
/// path in the message (never file contents).
pub fn read_vault(path: &Path) -> Result<Option<Vec<u8>>, VaultError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, "read", e)),
    }
}

/// Atomic, durable replace: create the parent directory (0700) if missing;
/// write `<name>.tmp` in the same directory (mode 0600, truncating a stale
/// one), `write_all`, `sync_all`, rename over `path`, then fsync the
/// directory. On any error before the rename the tmp file is removed and
/// `path` is left untouched. An error from the final directory fsync means
/// the new file is in place but its durability is not confirmed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let name = path.file_name().ok_or_else(|| {
        io_err(
            path,
            "write",
            io::Error::new(io::ErrorKind::InvalidInput, "path does not name a file"),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, "create directory", e))?;

    let mut tmp_name = OsString::from(name);
    tmp_name.push(".tmp");
    let tmp: PathBuf = dir.join(tmp_name);

    let replaced = write_tmp(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| io_err(path, "replace", e)));
    if let Err(e) = replaced {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }

    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, "sync directory", e))
}

fn write_tmp(tmp: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| io_err(tmp, "create", e))?;
    // `mode` applies only when the file is created; a stale tmp file keeps
    // its old permissions unless they are reset.
    f.set_permissions(Permissions::from_mode(0o600))
        .map_err(|e| io_err(tmp, "set permissions on", e))?;
    f.write_all(bytes).map_err(|e| io_err(tmp, "write", e))?;
    f.sync_all().map_err(|e| io_err(tmp, "sync", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn creates_replaces_and_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let path = dir.join("vault");
        assert!(read_vault(&path).unwrap().is_none());

        write_atomic(&path, b"first").unwrap();
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names(&dir), ["vault"]);
        assert_eq!(read_vault(&path).unwrap().unwrap(), b"first");

        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(read_vault(&path).unwrap().unwrap(), b"second, longer");
        write_atomic(&path, b"3").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"3");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names(&dir), ["vault"]);
    }

    #[test]
    fn existing_parent_keeps_its_mode() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), Permissions::from_mode(0o755)).unwrap();
        write_atomic(&tmp.path().join("vault"), b"x").unwrap();
        assert_eq!(mode(tmp.path()), 0o755);
    }

    #[test]
    fn stale_tmp_is_replaced_with_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("vault");
        let stale = tmp.path().join("vault.tmp");
        fs::write(&stale, b"stale junk that is longer than the new content").unwrap();
        fs::set_permissions(&stale, Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names(tmp.path()), ["vault"]);
    }

    #[test]
    fn failed_rename_removes_tmp_and_keeps_target() {
        // The target is a non-empty directory: the rename fails (also as root).
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("vault");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"keep").unwrap();
        let e = write_atomic(&path, b"new").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot replace {}: ", path.display())),
            "{msg}"
        );
        assert_eq!(names(tmp.path()), ["vault"]);
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"keep");
    }

    #[test]
    fn read_error_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let e = read_vault(tmp.path()).unwrap_err();
        assert!(matches!(e, VaultError::Io { op: "read", .. }));
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read {}: ", tmp.path().display())),
            "{e}"
        );
    }

    #[test]
    fn no_file_name_is_an_error() {
        assert!(write_atomic(Path::new("/"), b"x").is_err());
    }

    #[test]
    fn read_only_dir_fails_and_keeps_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ro");
        let path = dir.join("vault");
        write_atomic(&path, b"old").unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o500)).unwrap();

        // Root (or CAP_DAC_OVERRIDE) ignores directory permissions: probe.
        let probe = dir.join("probe");
        if fs::write(&probe, b"").is_ok() {
            let _ = fs::remove_file(&probe);
            fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
            eprintln!(
                "skipping read_only_dir_fails_and_keeps_old_file: running with \
                 permission to write a read-only directory (root or CAP_DAC_OVERRIDE)"
            );
            return;
        }

        let result = write_atomic(&path, b"new");
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        let e = result.unwrap_err();
        let msg = e.to_string();
        let tmp_path = dir.join("vault.tmp");
        assert!(
            msg.starts_with(&format!("cannot create {}: ", tmp_path.display())),
            "{msg}"
        );
        assert!(
            matches!(&e, VaultError::Io { source, .. } if source.kind() == io::ErrorKind::PermissionDenied)
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(&dir), ["vault"]);
    }
}
