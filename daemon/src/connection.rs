//! One client connection: the hello exchange, then request frames in
//! turn, each handed to [`dispatch`]. Frames and timeouts only.

use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;
use proto::frame::{FrameError, read_frame_async, write_frame_async};
use proto::{Hello, Request, Response};
use tokio::time::timeout;

use crate::dispatch;
use crate::error::{RequestError, reply};
use crate::peer::Peer;
use crate::state::State;

pub async fn run(mut stream: Stream, state: Arc<State>, peer: Peer) {
    let hello_timeout = state.config.hello_timeout;
    let idle_timeout = state.config.idle_timeout;
    let hello: Hello = match timeout(hello_timeout, read_frame_async(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!("pid {}: bad hello: {e}", peer.pid_str());
            return;
        }
        Err(_) => {
            tracing::debug!(
                "pid {}: no hello within {}; closing",
                peer.pid_str(),
                humantime::format_duration(hello_timeout)
            );
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
        let reply = reply(RequestError::VersionMismatch {
            ours: proto::PROTOCOL_VERSION,
            theirs: hello.version,
        });
        let _ = write_frame_async(&mut stream, &Response::Error(reply)).await;
        return;
    }
    loop {
        let req: Request = match timeout(idle_timeout, read_frame_async(&mut stream)).await {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) => return,
            Err(_) => {
                tracing::debug!(
                    "pid {}: idle for {}; closing",
                    peer.pid_str(),
                    humantime::format_duration(idle_timeout)
                );
                return;
            }
            Ok(Err(FrameError::Codec(e))) => {
                // The frame boundary is intact: answer and carry on, as
                // ssh-agent answers an unknown request with a failure.
                tracing::debug!("pid {}: {e}", peer.pid_str());
                let reply = Response::Error(reply(RequestError::Malformed));
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
        if !dispatch::serve(&state, &peer, req, &mut stream).await {
            return;
        }
    }
}
