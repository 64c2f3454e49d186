//! One client connection: the hello exchange, then requests in turn.

use std::sync::Arc;
use std::time::Duration;

use interprocess::local_socket::tokio::Stream;
use proto::frame::{FrameError, read_frame_async, write_frame_async};
use proto::{ErrorCode, ErrorReply, Hello, Request, Response};
use tokio::time::timeout;

use crate::handlers;
use crate::server::Peer;
use crate::state::State;

/// A client must say hello this quickly after connecting.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection (or one sending a frame very slowly) is closed after this.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(mut stream: Stream, state: Arc<State>, peer: Peer) {
    let hello: Hello = match timeout(HELLO_TIMEOUT, read_frame_async(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!("pid {}: bad hello: {e}", peer.pid_str());
            return;
        }
        Err(_) => {
            tracing::debug!("pid {}: no hello within {HELLO_TIMEOUT:?}", peer.pid_str());
            return;
        }
    };
    let ours = Hello {
        version: proto::PROTOCOL_VERSION,
    };
    if write_frame_async(&mut stream, &ours).await.is_err() {
        return;
    }
    if hello.version != proto::PROTOCOL_VERSION {
        tracing::warn!(
            "pid {} speaks protocol {}, vaultd speaks {}; closing",
            peer.pid_str(),
            hello.version,
            proto::PROTOCOL_VERSION
        );
        let reply = ErrorReply::new(
            ErrorCode::VersionMismatch,
            format!(
                "vaultd speaks protocol {}, the client {}: use matching versions",
                proto::PROTOCOL_VERSION,
                hello.version
            ),
        );
        let _ = write_frame_async(&mut stream, &Response::Error(reply)).await;
        return;
    }
    loop {
        let req: Request = match timeout(IDLE_TIMEOUT, read_frame_async(&mut stream)).await {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(FrameError::Codec(e))) => {
                // The frame boundary is intact: answer and carry on, as
                // ssh-agent answers an unknown request with a failure.
                tracing::debug!("pid {}: {e}", peer.pid_str());
                let reply =
                    Response::Error(ErrorReply::new(ErrorCode::BadRequest, "malformed request"));
                if write_frame_async(&mut stream, &reply).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Err(e)) => {
                tracing::debug!("pid {}: closing: {e}", peer.pid_str());
                return;
            }
        };
        if !matches!(req, Request::Status) {
            state.touch();
        }
        let resp = handlers::handle(&state, &peer, req).await;
        if write_frame_async(&mut stream, &resp).await.is_err() {
            return;
        }
    }
}
