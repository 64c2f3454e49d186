//! systemd glue: socket activation (`LISTEN_FDS`/`LISTEN_PID`), readiness
//! and shutdown notification (`NOTIFY_SOCKET`), and unattended unlock from a
//! key file (`$CREDENTIALS_DIRECTORY/vaultd.key` or the config's
//! `unlock_keyfile`).
//!
//! Everything here is a no-op outside systemd: without `LISTEN_FDS` vaultd
//! binds its own socket, without `NOTIFY_SOCKET` notifications are dropped,
//! and without a key file the vault stays locked until `vaultctl unlock`.

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use interprocess::local_socket::tokio::Listener;
use sd_notify::NotifyState;

use crate::config::Config;
use crate::state::{State, Unlocker};

/// Name of the credential (`LoadCredential[Encrypted]=vaultd.key:...`) that
/// vaultd unlocks with at start.
pub const CREDENTIAL_NAME: &str = "vaultd.key";

/// Why the socket the service manager passed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error("bad socket activation environment: {0}")]
    Environment(io::Error),
    #[error(
        "socket activation passed {0} sockets; vaultd.socket declares at most two ListenStream= (the main socket and FileDescriptorName=http)"
    )]
    Several(usize),
    #[error(
        "socket activation passed two sockets and neither is the HTTP front's (bound to its http_socket path, or named by FileDescriptorName=http)"
    )]
    Unnamed,
    #[error("the socket passed by systemd is not usable: {0}")]
    Unusable(&'static str),
    #[error("the socket passed by systemd is not usable: {0}")]
    Unreadable(io::Error),
}

/// The `FileDescriptorName=` that marks the HTTP front's socket.
pub const FRONT_FD_NAME: &str = "http";

/// The listening sockets passed by the service manager, checked and
/// owned, each with its `LISTEN_FDNAMES` name; [`Inherited::sort`] tells
/// the main socket from the front's once the front's path is known.
#[derive(Default)]
pub struct Inherited(Vec<(OwnedFd, Option<String>)>);

/// The inherited sockets, told apart.
#[derive(Default)]
pub struct Sorted {
    /// The main (vaultctl) socket.
    pub main: Option<OwnedFd>,
    /// The HTTP front's socket.
    pub front: Option<OwnedFd>,
}

/// The listening sockets passed by the service manager, if any (at most
/// two: the main socket and the HTTP front's). Call it once, before the
/// runtime starts threads; each descriptor is checked to be a listening
/// Unix stream socket so that a stray fd is never mistaken for one.
pub fn take_listen_fds() -> Result<Inherited, ActivationError> {
    let fds: Vec<RawFd> = sd_notify::listen_fds()
        .map_err(ActivationError::Environment)?
        .collect();
    if fds.len() > 2 {
        return Err(ActivationError::Several(fds.len()));
    }
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|v| v.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    // Checked while only borrowed: a descriptor that is not what systemd
    // promised is left alone (not closed), whatever it is.
    for fd in &fds {
        check_listening_unix_stream(borrow_inherited_fd(*fd))?;
    }
    Ok(Inherited(
        fds.iter()
            .enumerate()
            .map(|(i, fd)| (own_inherited_fd(*fd), names.get(i).cloned()))
            .collect(),
    ))
}

impl Inherited {
    /// Which is which. `FileDescriptorName=` names every socket of a
    /// unit alike, so two `ListenStream=` lines in vaultd.socket arrive
    /// with the same name: the front's is the one named
    /// [`FRONT_FD_NAME`] (a socket unit of its own), else the one bound to
    /// the front's path. One socket alone is the main one unless it is
    /// either.
    pub fn sort(self, front_path: Option<&Path>) -> Result<Sorted, ActivationError> {
        let mut sorted = Sorted::default();
        for (fd, name) in self.0 {
            let is_front = name.as_deref() == Some(FRONT_FD_NAME)
                || front_path.is_some_and(|p| bound_path(&fd).as_deref() == Some(p));
            let slot = if is_front {
                &mut sorted.front
            } else {
                &mut sorted.main
            };
            if slot.replace(fd).is_some() {
                return Err(ActivationError::Unnamed);
            }
        }
        Ok(sorted)
    }
}

/// The path a Unix socket is bound to.
fn bound_path(fd: &OwnedFd) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let addr = rustix::net::getsockname(fd).ok()?;
    let unix = rustix::net::SocketAddrUnix::try_from(addr).ok()?;
    unix.path_bytes()
        .map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(b)))
}

/// A look at an inherited descriptor without taking it.
#[allow(unsafe_code)]
fn borrow_inherited_fd(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: `fd` comes from `sd_notify::listen_fds()` (LISTEN_PID is this
    // process), and `take_listen_fds` runs first thing in `main`, before vaultd
    // opens any file: the number refers to the descriptor the service
    // manager passed, which stays open for the whole check.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// Takes ownership of the checked listening socket.
#[allow(unsafe_code)]
fn own_inherited_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: as `borrow_inherited_fd`; it was just checked to be a listening
    // Unix stream socket, and this is the only place that takes ownership of
    // it (`take_listen_fds` is called once, from `main`).
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn check_listening_unix_stream(fd: BorrowedFd<'_>) -> Result<(), ActivationError> {
    use rustix::net::{AddressFamily, SocketType, sockopt};
    let unreadable = |e: rustix::io::Errno| ActivationError::Unreadable(e.into());
    let ty = sockopt::socket_type(fd).map_err(|_| ActivationError::Unusable("not a socket"))?;
    if ty != SocketType::STREAM {
        return Err(ActivationError::Unusable(
            "not a stream socket (use ListenStream=)",
        ));
    }
    let domain = sockopt::socket_domain(fd).map_err(unreadable)?;
    if domain != AddressFamily::UNIX {
        return Err(ActivationError::Unusable(
            "not a Unix socket (ListenStream= must be a path)",
        ));
    }
    if !sockopt::socket_acceptconn(fd).map_err(unreadable)? {
        return Err(ActivationError::Unusable("not listening"));
    }
    Ok(())
}

/// Wraps an inherited descriptor in the listener `server::serve` takes.
/// Must run inside the tokio runtime. The listener never unlinks the path
/// on drop: the socket file belongs to the service manager.
pub fn listener_from_fd(fd: OwnedFd) -> io::Result<Listener> {
    let uds = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(fd)?;
    Ok(Listener::from(uds))
}

/// `READY=1` (plus a status line), once the socket is served and any
/// key-file unlock is done.
pub fn notify_ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STOPPING=1`, as soon as shutdown begins.
pub fn notify_stopping() {
    notify(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("cannot notify the service manager (NOTIFY_SOCKET): {e}");
    }
}

/// Where the unattended-unlock key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `$CREDENTIALS_DIRECTORY/vaultd.key` (systemd `LoadCredential*=`).
    Credential(PathBuf),
    /// The config's `unlock_keyfile`.
    Config(PathBuf),
}

impl KeySource {
    pub fn path(&self) -> &Path {
        match self {
            KeySource::Credential(p) | KeySource::Config(p) => p,
        }
    }

    fn describe(&self) -> String {
        match self {
            KeySource::Credential(p) => format!("credential {}", p.display()),
            KeySource::Config(p) => format!("unlock_keyfile {}", p.display()),
        }
    }
}

/// The key file to unlock with: the systemd credential when it exists, else
/// the config's `unlock_keyfile` (which is reported even if missing, so a
/// typo in the config gives a warning rather than silence).
pub fn key_source(config: &Config, credentials_dir: Option<&Path>) -> Option<KeySource> {
    if let Some(dir) = credentials_dir.filter(|d| !d.as_os_str().is_empty()) {
        let p = dir.join(CREDENTIAL_NAME);
        if p.exists() {
            return Some(KeySource::Credential(p));
        }
        tracing::info!(
            "no {CREDENTIAL_NAME} credential in {} (CREDENTIALS_DIRECTORY); not unlocking from it",
            dir.display()
        );
    }
    config.unlock_keyfile.clone().map(KeySource::Config)
}

/// Unlocks `state` with the key file from [`key_source`], if there is one.
/// Any failure is one warning line (never the key) and the daemon keeps
/// running locked. Returns whether the vault is now unlocked by this call.
pub async fn auto_unlock(state: &State, source: Option<KeySource>) -> bool {
    let Some(source) = source else {
        return false;
    };
    let what = source.describe();
    let secret = match proto::local::read_keyfile(source.path()).map_err(|e| e.to_string()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "automatic unlock skipped: {what}: {e}; vaultd stays locked (use `vaultctl unlock`)"
            );
            return false;
        }
    };
    match state.unlock(Unlocker::KeyFile(secret)).await {
        Ok(_) => {
            tracing::info!("vault unlocked with {what}");
            true
        }
        Err(e) => {
            tracing::warn!(
                "automatic unlock with {what} failed: {e}; vaultd stays locked (use `vaultctl unlock`)"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_wins_over_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            unlock_keyfile: Some("/etc/other.key".into()),
            ..Config::default()
        };
        assert_eq!(
            key_source(&config, Some(dir.path())),
            Some(KeySource::Config("/etc/other.key".into()))
        );
        std::fs::write(dir.path().join(CREDENTIAL_NAME), [1u8; 32]).unwrap();
        assert_eq!(
            key_source(&config, Some(dir.path())),
            Some(KeySource::Credential(dir.path().join(CREDENTIAL_NAME)))
        );
        assert_eq!(key_source(&Config::default(), None), None);
    }
}
