//! A small blocking client for vaultd. No crypto, no HTTP, no runtime:
//! `vaultctl` starts, sends one request, prints, exits. Async programs get
//! [`nonblocking::AsyncClient`] with the `tokio` feature.

#[cfg(feature = "tokio")]
pub mod nonblocking;
pub mod scan_session;

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use proto::frame::{FrameError, read_frame, write_frame};
use std::io::Read;

use proto::{ErrorReply, Hello, JobRequest, JobResponse, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (exit code 2). Names the one line a
    /// user types once after installing (the package enables nothing by
    /// itself; see README "Install"), and the way without systemd.
    #[error(
        "cannot reach vaultd at {path} ({source}); start it with `systemctl --user enable --now vaultd.socket` (once; it then starts at each login), or run `vaultd &` without systemd"
    )]
    NotRunning { path: PathBuf, source: io::Error },
    /// The socket (or its directory) may not be opened by this user.
    #[error("permission denied on {path}{}", match owner {
        Some(uid) => format!(
            " (owned by uid {uid}): a vaultd serves only its own uid and its allow_uids; use your own with --socket or $VAULTD_SOCKET"
        ),
        None => ": check the permissions of the socket and its directory".to_owned(),
    })]
    NotAllowed { path: PathBuf, owner: Option<u32> },
    #[error(
        "vaultd speaks protocol {theirs}, vaultctl speaks {ours}: restart vaultd after upgrading"
    )]
    VersionMismatch { ours: u32, theirs: u32 },
    #[error("lost connection to vaultd: {0}")]
    Frame(#[from] FrameError),
    #[error("vaultd closed the connection without answering")]
    Closed,
    #[error("{0}")]
    Daemon(ErrorReply),
    /// The socket is served by a uid that is neither the caller's nor
    /// root's (or one that could not be learnt): it may be another user's
    /// impostor, so no passphrase, key or token is sent to it (exit 2).
    #[error("refusing to send a secret to {path}: it is served by {}, not by your uid {own} or root; point --socket or $VAULTD_SOCKET at your own vaultd", match peer {
        Some(uid) => format!("uid {uid}"),
        None => "a process whose uid cannot be read".to_owned(),
    })]
    UntrustedPeer {
        path: PathBuf,
        peer: Option<u32>,
        own: u32,
    },
}

/// Who serves the socket, from SO_PEERCRED on the connected stream (the
/// uid of the process that called `listen`, as the kernel recorded it).
/// `None` when the kernel would not say.
fn peer_uid(fd: impl std::os::fd::AsFd) -> Option<u32> {
    rustix::net::sockopt::socket_peercred(fd)
        .ok()
        .map(|c| c.uid.as_raw())
}

/// Refuses a peer that is neither this process's effective uid nor root:
/// only they can be the caller's own vaultd (root can read its secrets
/// anyway). Checked before anything secret, and for vaultctl's secret
/// commands before any byte at all, is written.
fn trust(path: &Path, peer: Option<u32>) -> Result<(), ClientError> {
    let own = rustix::process::geteuid().as_raw();
    match peer {
        Some(uid) if uid == own || uid == 0 => Ok(()),
        peer => Err(ClientError::UntrustedPeer {
            path: path.to_owned(),
            peer,
            own,
        }),
    }
}

/// One connection to the daemon, after the hello exchange.
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    /// The socket's peer uid, read once at connect.
    peer: Option<u32>,
}

/// Resolves the socket as DESIGN.md says: flag, `$VAULTD_SOCKET`,
/// `$XDG_RUNTIME_DIR/vaultd/vaultd.sock`; without `XDG_RUNTIME_DIR`, the
/// directory it would name (`/run/user/UID`) when that exists and is this
/// user's own, as vaultd does.
pub fn socket_path(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_owned());
    }
    if let Some(v) = std::env::var_os("VAULTD_SOCKET").filter(|v| !v.is_empty()) {
        return Some(v.into());
    }
    proto::local::default_socket()
}

impl ClientError {
    /// Why connecting failed: nothing there, or not ours to use.
    pub fn connect(path: &Path, source: io::Error) -> ClientError {
        if source.kind() == io::ErrorKind::PermissionDenied {
            use std::os::unix::fs::MetadataExt;
            // The socket itself, else the nearest directory above it that
            // can be looked at (another user's 0700 directory hides what is
            // inside from `stat` too). Ours or root's names nobody.
            let owner = path
                .ancestors()
                .find_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.uid())
                .filter(|&uid| uid != 0 && uid != rustix::process::getuid().as_raw());
            ClientError::NotAllowed {
                path: path.to_owned(),
                owner,
            }
        } else {
            ClientError::NotRunning {
                path: path.to_owned(),
                source,
            }
        }
    }
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| ClientError::connect(path, e))?;
        let peer = peer_uid(&stream);
        Client::hello(stream, path, peer)
    }

    /// As [`Client::connect`], for a command that will send a secret: the
    /// peer's uid is checked before a single byte is written, so an
    /// impostor learns nothing, not even that a client came.
    pub fn connect_for_secret(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| ClientError::connect(path, e))?;
        let peer = peer_uid(&stream);
        trust(path, peer)?;
        Client::hello(stream, path, peer)
    }

    fn hello(stream: UnixStream, path: &Path, peer: Option<u32>) -> Result<Client, ClientError> {
        let mut client = Client {
            stream,
            path: path.to_owned(),
            peer,
        };
        // A refused peer gets the daemon's hello and an error without the
        // daemon reading ours, so a failed write is not yet a failure.
        let _ = write_frame(
            &mut client.stream,
            &Hello {
                version: proto::PROTOCOL_VERSION,
            },
        );
        let theirs: Hello = read_frame(&mut client.stream)?.ok_or(ClientError::Closed)?;
        if theirs.version != proto::PROTOCOL_VERSION {
            return Err(ClientError::VersionMismatch {
                ours: proto::PROTOCOL_VERSION,
                theirs: theirs.version,
            });
        }
        Ok(client)
    }

    /// Sends one request and waits for its answer; an error answer becomes
    /// `ClientError::Daemon`.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        if req.carries_secret() {
            trust(&self.path, self.peer)?;
        }
        let sent = write_frame(&mut self.stream, req);
        let resp: Option<Response> = match (sent, read_frame(&mut self.stream)) {
            (_, Ok(r)) => r,
            (Err(e), Err(_)) => return Err(e.into()),
            (Ok(()), Err(e)) => return Err(e.into()),
        };
        match resp.ok_or(ClientError::Closed)? {
            Response::Error(e) => Err(ClientError::Daemon(e)),
            other => Ok(other),
        }
    }
}

/// A streamed job in progress: the head has arrived, the body follows.
pub struct Streamed<'a> {
    client: &'a mut Client,
    pub head: JobResponse,
    uploader: Option<std::thread::JoinHandle<Result<(), FrameError>>>,
    done: bool,
}

impl Client {
    /// Starts a streamed job. `body`, if given, is sent in chunks from a
    /// second thread while this one waits for the answer, so an upstream
    /// that answers early never deadlocks the two.
    pub fn stream_job(
        &mut self,
        job: JobRequest,
        body: Option<Box<dyn Read + Send>>,
    ) -> Result<Streamed<'_>, ClientError> {
        self.stream_job_sized(job, body, None)
    }

    /// As [`Client::stream_job`], announcing the body's length, which
    /// vaultd then sends as `Content-Length` (not chunked). The reader must
    /// yield exactly that many bytes, or the job fails.
    pub fn stream_job_sized(
        &mut self,
        job: JobRequest,
        body: Option<Box<dyn Read + Send>>,
        body_len: Option<u64>,
    ) -> Result<Streamed<'_>, ClientError> {
        let body_follows = body.is_some();
        let body_len = body_len.filter(|_| body_follows);
        write_frame(
            &mut self.stream,
            &Request::StreamJob {
                job,
                body_follows,
                body_len,
            },
        )?;
        let uploader = match body {
            Some(mut reader) => {
                let mut out = self.stream.try_clone().map_err(FrameError::from)?;
                Some(std::thread::spawn(move || {
                    let mut buf = vec![0u8; proto::CHUNK];
                    loop {
                        let n = match reader.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(FrameError::Io(e)),
                        };
                        write_frame(&mut out, &Request::Chunk(buf[..n].to_vec()))?;
                    }
                    write_frame(&mut out, &Request::End)
                }))
            }
            None => None,
        };
        let head = match read_frame(&mut self.stream)? {
            Some(Response::Head(h)) => h,
            Some(Response::Error(e)) => return Err(ClientError::Daemon(e)),
            Some(_) => return Err(ClientError::Closed),
            None => {
                // The daemon may have refused while we uploaded; our reader
                // error (e.g. an unreadable file) is the better message.
                if let Some(Ok(Err(e))) = uploader.map(|u| u.join()) {
                    return Err(e.into());
                }
                return Err(ClientError::Closed);
            }
        };
        Ok(Streamed {
            client: self,
            head,
            uploader,
            done: false,
        })
    }
}

impl Streamed<'_> {
    /// The next piece of the body; `None` once it is complete.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        if self.done {
            return Ok(None);
        }
        match read_frame(&mut self.client.stream)? {
            Some(Response::Chunk(c)) => Ok(Some(c)),
            Some(Response::End) => {
                self.done = true;
                if let Some(u) = self.uploader.take() {
                    // The answer is complete; an upload cut short by an early
                    // answer is not an error.
                    let _ = u.join();
                }
                Ok(None)
            }
            Some(Response::Error(e)) => Err(ClientError::Daemon(e)),
            Some(_) | None => Err(ClientError::Closed),
        }
    }
}
