//! One client connection: the hello exchange, then requests in turn.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use interprocess::local_socket::tokio::Stream;
use proto::frame::{FrameError, read_frame_async, write_frame_async};
use proto::{ErrorCode, ErrorReply, Hello, JobRequest, Request, Response};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};

use crate::job::http::{ChannelBody, within};
use crate::job::redact::StreamRedactor;

use crate::handlers;
use crate::server::Peer;
use crate::state::State;

/// A client must say hello this quickly after connecting (default of the
/// `hello_timeout` config key).
pub const HELLO_TIMEOUT: Duration = crate::config::DEFAULT_HELLO_TIMEOUT;
/// An idle connection (or one sending a frame very slowly) is closed after
/// this (default of the `idle_timeout` config key).
pub const IDLE_TIMEOUT: Duration = crate::config::DEFAULT_IDLE_TIMEOUT;

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
        if let Request::StreamJob { job, body_follows } = req {
            if stream_job(&mut stream, &state, &peer, job, body_follows).await {
                continue;
            }
            return;
        }
        let resp = handlers::handle(&state, &peer, req).await;
        if write_frame_async(&mut stream, &resp).await.is_err() {
            return;
        }
    }
}

/// Runs a streamed job: the request body (if any) flows from the socket to
/// the upstream and the response body back, in chunks, so memory stays flat
/// whatever the size. Returns whether the connection can carry on; after an
/// error mid-stream it is closed, which is also how either side cancels.
async fn stream_job(
    stream: &mut Stream,
    state: &State,
    peer: &Peer,
    job: JobRequest,
    body_follows: bool,
) -> bool {
    let (prepared, audit) = match handlers::prepare_job(state, peer, job) {
        Ok(v) => v,
        Err(e) => {
            let _ = write_frame_async(stream, &Response::Error(e)).await;
            return !body_follows;
        }
    };
    let max = state.upstream.max_body();
    let limit = state.upstream.limit(&prepared);
    let deadline = Instant::now() + limit;
    let (mut prepared, mut body_follows) = (prepared, body_follows);
    if body_follows && matches!(prepared.injection, proto::Injection::Sign { .. }) {
        // Content-Digest covers the whole body and goes in the headers, so a
        // signed request's body is gathered (within the frame limit) first.
        // Within the job's deadline: a client that stalls here must not keep
        // the signing key open past it (or past `lock`) indefinitely.
        let gathered = timeout_at(deadline, gather_body(stream, max.min(proto::MAX_BODY)))
            .await
            .unwrap_or_else(|_| {
                Err(ErrorReply::new(
                    ErrorCode::Upstream,
                    format!(
                        "request timed out after {} while receiving the body to sign",
                        humantime::format_duration(limit)
                    ),
                ))
            });
        match gathered {
            Ok(b) => prepared.body = Some(b),
            Err(e) => {
                let _ = write_frame_async(stream, &Response::Error(e)).await;
                return false;
            }
        }
        body_follows = false;
    }
    // A `lock` while the body flows ends the job: the token's copies (in
    // the redactor, in the connection) go with it.
    let epoch = prepared.epoch.clone();
    let locked_meanwhile = || {
        ErrorReply::new(
            ErrorCode::Locked,
            "the vault was locked during this transfer, which was cut short: run `vaultctl unlock`",
        )
    };
    let upload_epoch = epoch.clone();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = body_follows.then(|| ChannelBody::body(rx));
    // Client -> upstream. Ends at the client's `End` (dropping `tx` ends
    // the body); an error aborts the upstream request through the body.
    let pump = async move {
        if !body_follows {
            return Ok(());
        }
        let mut total = 0usize;
        loop {
            let fail = match read_frame_async::<_, Request>(&mut rd).await {
                Ok(Some(Request::Chunk(_))) if !upload_epoch.is_current() => locked_meanwhile(),
                Ok(Some(Request::Chunk(c))) => {
                    total += c.len();
                    if total > max {
                        ErrorReply::new(
                            ErrorCode::TooLarge,
                            format!("request body exceeds max_body ({max} bytes)"),
                        )
                    } else {
                        // The upstream may stop reading (early response): fine.
                        let _ = tx.send(Ok(Bytes::from(c))).await;
                        continue;
                    }
                }
                Ok(Some(Request::End)) => return Ok(()),
                Ok(Some(_)) => ErrorReply::new(ErrorCode::BadRequest, "expected a body chunk"),
                Ok(None) | Err(_) => {
                    ErrorReply::new(ErrorCode::BadRequest, "client went away mid-upload")
                }
            };
            let _ = tx.send(Err(std::io::Error::other("upload aborted"))).await;
            return Err(fail);
        }
    };
    let send = within(limit, state.upstream.send(prepared, body));
    tokio::pin!(pump, send);
    let mut uploaded = !body_follows;
    let started = loop {
        tokio::select! {
            r = &mut pump, if !uploaded => {
                uploaded = true;
                if let Err(e) = r {
                    tracing::debug!("pid {}: streamed upload failed: {}", peer.pid_str(), e.message);
                    let _ = write_frame_async(&mut wr, &Response::Error(e)).await;
                    return false;
                }
            }
            r = &mut send => break r,
        }
    };
    // If the upstream answered before the upload ended, carry on with the
    // response and close afterwards rather than read the rest.
    let mut started = match started {
        Ok(s) => s,
        Err(e) => {
            audit.log(state, peer, Err(&e));
            let _ = write_frame_async(&mut wr, &Response::Error(e)).await;
            return uploaded;
        }
    };
    let status = started.head.status;
    if write_frame_async(&mut wr, &Response::Head(started.head.clone()))
        .await
        .is_err()
    {
        return false;
    }
    let mut redactor = StreamRedactor::new(started.redactor.clone());
    let mut pending: Vec<u8> = Vec::new();
    let mut total = 0usize;
    let outcome = loop {
        let next = match timeout_at(deadline, started.chunk()).await {
            Ok(r) => r,
            Err(_) => Err(ErrorReply::new(
                ErrorCode::Upstream,
                format!(
                    "request timed out after {}",
                    humantime::format_duration(limit)
                ),
            )),
        };
        match next {
            Ok(Some(_)) if !epoch.is_current() => break Err(locked_meanwhile()),
            Ok(Some(piece)) => {
                total += piece.len();
                if total > max {
                    break Err(ErrorReply::new(
                        ErrorCode::TooLarge,
                        format!("response body exceeds max_body ({max} bytes)"),
                    ));
                }
                pending.extend(redactor.push(&piece));
                if pending.len() >= proto::CHUNK {
                    let out = std::mem::take(&mut pending);
                    if write_frame_async(&mut wr, &Response::Chunk(out))
                        .await
                        .is_err()
                    {
                        // The client went away: dropping the response cancels the upstream.
                        return false;
                    }
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = outcome {
        audit.log(state, peer, Err(&e));
        let _ = write_frame_async(&mut wr, &Response::Error(e)).await;
        return false;
    }
    pending.extend(redactor.finish());
    if !pending.is_empty()
        && write_frame_async(&mut wr, &Response::Chunk(pending))
            .await
            .is_err()
    {
        return false;
    }
    audit.log(state, peer, Ok(status));
    write_frame_async(&mut wr, &Response::End).await.is_ok() && uploaded
}

/// Reads a streamed request body into memory, refusing more than `max`.
async fn gather_body(stream: &mut Stream, max: usize) -> Result<Bytes, ErrorReply> {
    let mut body = Vec::new();
    loop {
        match read_frame_async::<_, Request>(stream).await {
            Ok(Some(Request::Chunk(c))) => {
                if body.len() + c.len() > max {
                    return Err(ErrorReply::new(
                        ErrorCode::TooLarge,
                        format!("a signed request body is held in memory: at most {max} bytes"),
                    ));
                }
                body.extend_from_slice(&c);
            }
            Ok(Some(Request::End)) => return Ok(Bytes::from(body)),
            _ => {
                return Err(ErrorReply::new(
                    ErrorCode::BadRequest,
                    "client went away mid-upload",
                ));
            }
        }
    }
}
