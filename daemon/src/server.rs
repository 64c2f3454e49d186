//! The socket: binding it safely, accepting, checking who is on the other
//! end, and capping how many connections are served at once.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::{Listener, Stream};
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use proto::{ErrorReply, Hello, Response};
use tokio::sync::Semaphore;

use crate::connection;
use crate::error::{RequestError, reply};
use crate::peer::{self, Refusal};
use crate::state::State;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "another vaultd is already serving {0}; stop it first (`vaultctl status` shows its pid)"
    )]
    AlreadyRunning(PathBuf),
    #[error("{0} exists and is not a socket; remove it or choose another --socket")]
    NotASocket(PathBuf),
    #[error("{path} is owned by uid {owner}, not by this user; choose another --socket")]
    ForeignDir { path: PathBuf, owner: u32 },
    #[error("cannot create socket {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Creates the socket's directory (0700) and the socket (0600, mode set
/// before bind). A live daemon on the path is an error; a stale socket file
/// left by a crash is replaced.
pub fn bind(path: &Path) -> Result<Listener, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
        let meta = std::fs::metadata(dir).map_err(io_err)?;
        let me = rustix::process::getuid().as_raw();
        if meta.uid() != me {
            return Err(BindError::ForeignDir {
                path: dir.to_owned(),
                owner: meta.uid(),
            });
        }
        if meta.permissions().mode() & 0o077 != 0 && dir.file_name() == Some("vaultd".as_ref()) {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err)?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(BindError::NotASocket(path.to_owned()));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(BindError::AlreadyRunning(path.to_owned())),
            Err(_) => {
                tracing::info!("replacing stale socket {}", path.display());
                std::fs::remove_file(path).map_err(io_err)?;
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let name = path.to_fs_name::<GenericFilePath>().map_err(io_err)?;
    ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .reclaim_name(true)
        .create_tokio()
        .map_err(io_err)
}

/// Accepts connections until `shutdown` completes. Lives in the library so
/// tests can run a real server on a temporary socket.
pub async fn serve(listener: Listener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(state.config.max_connections));
    let own_uid = rustix::process::getuid().as_raw();
    let timers = tokio::spawn(lock_timers(state.clone()));
    let sources = state
        .has_openbao()
        .then(|| tokio::spawn(read_sources(state.clone())));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            s = peer::accept_retrying(&listener, "") => s,
        };
        let peer = match peer::admit(&stream, own_uid, &state.config.allow_uids) {
            Ok(p) => p,
            Err(Refusal::NoCredentials(e)) => {
                tracing::warn!("refused a connection: cannot read peer credentials: {e}");
                continue;
            }
            Err(Refusal::ForeignUid(peer)) => {
                tracing::warn!(
                    "refused a connection from uid {} (pid {}): only uid {own_uid} and allow_uids may connect",
                    peer.uid,
                    peer.pid_str()
                );
                tokio::spawn(refuse(
                    stream,
                    reply(RequestError::ForeignUid {
                        uid: peer.uid,
                        owner: own_uid,
                    }),
                ));
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(
                "connection limit ({}, max_connections) reached; refusing pid {}",
                state.config.max_connections,
                peer.pid_str()
            );
            tokio::spawn(refuse(stream, reply(RequestError::Busy)));
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            connection::run(stream, state, peer).await;
            drop(permit);
        });
    }
    timers.abort();
    if let Some(s) = sources {
        s.abort();
    }
}

/// Tells a refused peer why, without reading anything it sent.
async fn refuse(mut stream: Stream, reply: ErrorReply) {
    let hello = Hello {
        version: proto::PROTOCOL_VERSION,
    };
    let write = async {
        proto::frame::write_frame_async(&mut stream, &hello).await?;
        proto::frame::write_frame_async(&mut stream, &Response::Error(reply)).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// Reads OpenBao-sourced values that are due, once a second or at once
/// when unlock, login or add asks (see `state/source.rs`).
async fn read_sources(state: Arc<State>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = state.sources_kicked() => {}
        }
        state.refresh_due().await;
    }
}

async fn lock_timers(state: Arc<State>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        if let Some(reason) = state.check_timers() {
            tracing::info!("vault locked ({reason} elapsed)");
        }
    }
}
