//! The same client for async programs (feature `tokio`): one connection per
//! task, so a program can keep many jobs in flight on a few threads, where
//! the blocking [`crate::Client`] would need a thread per job. `vaultctl`
//! itself does not use it and does not build tokio.

use std::path::{Path, PathBuf};

use proto::frame::{read_frame_async, write_frame_async};
use proto::{Hello, Request, Response};
use tokio::net::UnixStream;

use crate::{ClientError, peer_uid, trust};

/// One connection to the daemon, after the hello exchange.
pub struct AsyncClient {
    stream: UnixStream,
    path: PathBuf,
    /// The socket's peer uid, read once at connect (see [`crate::Client`]).
    peer: Option<u32>,
}

impl AsyncClient {
    pub async fn connect(path: &Path) -> Result<AsyncClient, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| ClientError::connect(path, e))?;
        let peer = peer_uid(&stream);
        let mut client = AsyncClient {
            stream,
            path: path.to_owned(),
            peer,
        };
        // As the blocking client: a refused peer gets the daemon's hello and
        // an error without the daemon reading ours.
        let _ = write_frame_async(
            &mut client.stream,
            &Hello {
                version: proto::PROTOCOL_VERSION,
            },
        )
        .await;
        let theirs: Hello = read_frame_async(&mut client.stream)
            .await?
            .ok_or(ClientError::Closed)?;
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
    pub async fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        if req.carries_secret() {
            trust(&self.path, self.peer)?;
        }
        let sent = write_frame_async(&mut self.stream, req).await;
        let resp: Option<Response> = match (sent, read_frame_async(&mut self.stream).await) {
            (_, Ok(r)) => r,
            (Err(e), Err(_)) | (Ok(()), Err(e)) => return Err(e.into()),
        };
        match resp.ok_or(ClientError::Closed)? {
            Response::Error(e) => Err(ClientError::Daemon(e)),
            other => Ok(other),
        }
    }
}
