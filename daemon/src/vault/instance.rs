//! One daemon per vault: an exclusive `flock` on `<vault>.lock`, held for
//! the daemon's whole life.
//!
//! Two daemons saving the same vault would each write from their own
//! in-memory copy, and the later save would silently drop the other's
//! acknowledged changes. The lock lives on a separate file next to the
//! vault, not on the vault itself, because every save renames a new file
//! over `vault`: a lock on the old inode would stop protecting anything
//! after the first save. `flock` locks belong to the open file description,
//! so the kernel releases them when the daemon exits, even on `kill -9`;
//! the lock file itself is left in place (removing it would race with a
//! daemon that just opened it).
//!
//! The holder writes its pid and socket path into the file so that a
//! refused second daemon can say which daemon is in the way.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, OFlags, flock};

/// Why the vault lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Another process holds the lock. `socket` is what the holder wrote
    /// into the lock file, if it got that far.
    #[error(
        "vault {} is in use by another vaultd ({}); stop that daemon first or pass another --vault",
        vault.display(),
        holder_text(*pid, socket.as_deref())
    )]
    InUse {
        vault: PathBuf,
        pid: Option<u32>,
        socket: Option<PathBuf>,
    },
    /// A filesystem operation on the lock file or its directory failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

fn holder_text(pid: Option<u32>, socket: Option<&Path>) -> String {
    let pid = pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
    match socket {
        Some(s) => format!("{pid}, socket {}", s.display()),
        None => format!("{pid}, socket unknown"),
    }
}

/// The held lock. Dropping it closes the file and releases the lock.
#[derive(Debug)]
pub struct SoleInstance {
    _file: File,
    path: PathBuf,
}

/// `<vault>.lock` in the vault's directory (`vault` -> `vault.lock`).
pub fn lock_path(vault: &Path) -> PathBuf {
    let mut name = vault.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    vault.with_file_name(name)
}

impl SoleInstance {
    /// Takes the lock for `vault` without waiting, creating the vault's
    /// directory (0700) and the lock file (0600) if needed, and records this
    /// daemon's pid and `socket` in it.
    pub fn acquire(vault: &Path, socket: &Path) -> Result<SoleInstance, InstanceError> {
        let path = lock_path(vault);
        let io_err = |path: &Path, op, source| InstanceError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_err(dir, "create directory", e))?;
        }
        // Read-write to record who holds the lock. On a read-only vault
        // directory (read-only mount, no write permission) an existing lock
        // file is still lockable read-only: the daemon can serve from a
        // vault it cannot change, and its saves fail with a clear error.
        let (mut file, writable) = match open(&path, true) {
            Ok(f) => (f, true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
                ) =>
            {
                match open(&path, false) {
                    Ok(f) => (f, false),
                    Err(_) => return Err(io_err(&path, "open lock file", e)),
                }
            }
            Err(e) => return Err(io_err(&path, "open lock file", e)),
        };
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let (pid, socket) = read_holder(&mut file);
                return Err(InstanceError::InUse {
                    vault: vault.to_owned(),
                    pid,
                    socket,
                });
            }
            Err(e) => return Err(io_err(&path, "lock", e.into())),
        }
        if writable {
            let socket = std::path::absolute(socket).unwrap_or_else(|_| socket.to_owned());
            let record = format!("pid={}\nsocket={}\n", std::process::id(), socket.display());
            // Informational only: the lock is held either way, so a full
            // disk must not stop the daemon from starting.
            if let Err(e) = file
                .set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(record.as_bytes()))
            {
                tracing::warn!("cannot record pid and socket in {}: {e}", path.display());
            }
        }
        Ok(SoleInstance { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating 0600 when `write`) without following a symlink: one
/// planted in place of the lock file must not make us truncate whatever it
/// points to.
fn open(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .create(write)
        .truncate(false)
        .mode(0o600)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// What the holder wrote; best effort (it may not have written yet).
fn read_holder(file: &mut File) -> (Option<u32>, Option<PathBuf>) {
    let mut text = String::new();
    if file.take(8192).read_to_string(&mut text).is_err() {
        return (None, None);
    }
    let mut pid = None;
    let mut socket = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("pid=") {
            pid = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("socket=") {
            socket = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
    }
    (pid, socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_path_is_next_to_the_vault() {
        assert_eq!(
            lock_path(Path::new("/a/b/vault")),
            Path::new("/a/b/vault.lock")
        );
        assert_eq!(lock_path(Path::new("v")), Path::new("v.lock"));
    }

    #[test]
    fn second_lock_is_refused_naming_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let vault = tmp.path().join("data").join("vault");
        let held = SoleInstance::acquire(&vault, Path::new("/run/one.sock")).unwrap();
        assert_eq!(held.path(), tmp.path().join("data").join("vault.lock"));
        // flock conflicts between open file descriptions, also in one process.
        let e = SoleInstance::acquire(&vault, Path::new("/run/two.sock")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&vault.display().to_string()), "{msg}");
        assert!(msg.contains("socket /run/one.sock"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        // Released on drop; the next holder rewrites the record.
        drop(held);
        let again = SoleInstance::acquire(&vault, Path::new("/run/two.sock")).unwrap();
        let text = std::fs::read_to_string(again.path()).unwrap();
        assert!(text.ends_with("socket=/run/two.sock\n"), "{text}");
    }

    #[test]
    fn existing_lock_file_in_a_read_only_dir_still_locks() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let vault = tmp.path().join("vault");
        drop(SoleInstance::acquire(&vault, Path::new("/s")).unwrap());
        let lock = lock_path(&vault);
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o400)).unwrap();
        // Root ignores permissions; then this is the ordinary path again.
        let held = SoleInstance::acquire(&vault, Path::new("/t")).unwrap();
        assert!(matches!(
            SoleInstance::acquire(&vault, Path::new("/u")),
            Err(InstanceError::InUse { .. })
        ));
        drop(held);
    }

    #[test]
    fn symlinked_lock_file_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("precious");
        std::fs::write(&target, b"keep").unwrap();
        let vault = tmp.path().join("vault");
        std::os::unix::fs::symlink(&target, lock_path(&vault)).unwrap();
        let e = SoleInstance::acquire(&vault, Path::new("/s")).unwrap_err();
        assert!(e.to_string().starts_with("cannot open lock file"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn unknown_holder_is_said_so() {
        assert_eq!(holder_text(None, None), "pid unknown, socket unknown");
    }
}
