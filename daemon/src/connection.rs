//! One client connection: the hello exchange, then requests in turn.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use interprocess::local_socket::tokio::Stream;
use proto::frame::{FrameError, encode_frame, read_frame_async, write_frame_async};
use proto::{ErrorCode, ErrorReply, Hello, JobRequest, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use zeroize::Zeroizing;

use crate::job::http::{ChannelBody, REDACT_INLINE_MAX, within};
use crate::job::redact::StreamRedactor;

use crate::handlers;
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
        if let Request::Job(job) = req {
            if buffered_job(&mut stream, &state, &peer, job).await {
                continue;
            }
            return;
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

/// The replies of a streamed job. Cancel-safe: the frame being written
/// and how much of it has gone are kept here, so when lock or the deadline
/// cancels the job mid-write, the frame can still be finished (it holds
/// only redacted bytes) and followed by the error that says why.
struct Replies<W> {
    wr: W,
    frame: Zeroizing<Vec<u8>>,
    sent: usize,
}

impl<W: tokio::io::AsyncWrite + Unpin> Replies<W> {
    fn new(wr: W) -> Replies<W> {
        Replies {
            wr,
            frame: Zeroizing::new(Vec::new()),
            sent: 0,
        }
    }

    async fn send(&mut self, resp: &Response) -> bool {
        match encode_frame(resp) {
            Ok(frame) => self.frame = frame,
            Err(_) => return false,
        }
        self.sent = 0;
        self.finish().await
    }

    /// Writes what is left of the current frame.
    async fn finish(&mut self) -> bool {
        while self.sent < self.frame.len() {
            match self.wr.write(&self.frame[self.sent..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.sent += n,
            }
        }
        self.wr.flush().await.is_ok()
    }
}

/// How long vaultd tries to tell a client that its job was cut short. The
/// job (and its token) is gone by then; this only bounds the connection.
const FAREWELL: Duration = Duration::from_secs(2);

fn locked_meanwhile() -> ErrorReply {
    ErrorReply::new(
        ErrorCode::Locked,
        "the vault was locked during this transfer, which was cut short: run `vaultctl unlock`",
    )
}

fn timed_out(limit: Duration) -> ErrorReply {
    ErrorReply::new(
        ErrorCode::Upstream,
        format!(
            "request timed out after {}",
            humantime::format_duration(limit)
        ),
    )
}

/// Runs a buffered job. The job ends when the vault locks, and its reply
/// must be written within the job's deadline and before a lock: a client
/// that never reads cannot hold the connection, and one that asked before
/// a `lock` gets `Locked` rather than the body.
async fn buffered_job(stream: &mut Stream, state: &State, peer: &Peer, job: JobRequest) -> bool {
    let (prepared, audit) = match handlers::prepare_job(state, peer, job) {
        Ok(v) => v,
        Err(e) => return write_frame_async(stream, &Response::Error(e)).await.is_ok(),
    };
    let limit = state.upstream.limit(&prepared);
    let deadline = Instant::now() + limit;
    let epoch = prepared.epoch.clone();
    let result = tokio::select! {
        r = state.upstream.run(prepared) => r,
        () = epoch.ended() => Err(locked_meanwhile()),
    };
    audit.log(state, peer, result.as_ref().map(|r| r.status));
    let resp = match result {
        Ok(_) if !epoch.is_current() => Response::Error(locked_meanwhile()),
        Ok(r) => Response::Job(r),
        Err(e) => Response::Error(e),
    };
    // A body whose write meets a lock is cut off mid-frame: finishing it
    // would deliver it. (An error reply, `Locked` included, is let through.)
    let body = matches!(resp, Response::Job(_));
    tokio::select! {
        r = write_frame_async(stream, &resp) => r.is_ok(),
        () = epoch.ended(), if body => false,
        () = tokio::time::sleep_until(deadline) => false,
    }
}

/// Runs a streamed job: the request body (if any) flows from the socket to
/// the upstream and the response body back, in chunks, so memory stays flat
/// whatever the size. Returns whether the connection can carry on; after an
/// error mid-stream it is closed, which is also how either side cancels.
///
/// The whole job, every read from and write to the client included, ends
/// at its deadline and when the vault locks: a client that stops reading
/// cannot keep the job, its upstream connection and its token alive.
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
    let limit = state.upstream.limit(&prepared);
    let deadline = Instant::now() + limit;
    let epoch = prepared.epoch.clone();
    let (rd, wr) = tokio::io::split(stream);
    let mut out = Replies::new(wr);
    let result = tokio::select! {
        r = relay(state, peer, &audit, prepared, body_follows, deadline, rd, &mut out) => r,
        () = epoch.ended() => Err(Failed::logged(state, peer, &audit, locked_meanwhile())),
        () = tokio::time::sleep_until(deadline) => {
            Err(Failed::logged(state, peer, &audit, timed_out(limit)))
        }
    };
    match result {
        Ok(carry_on) => carry_on,
        Err(f) => {
            // The job, its upstream connection and its token are gone; a
            // client that stopped reading gets FAREWELL to take the rest of
            // the frame it was in and the error, and is then cut off.
            let farewell =
                async { out.finish().await && out.send(&Response::Error(f.reply)).await };
            let said = matches!(timeout(FAREWELL, farewell).await, Ok(true));
            said && f.carry_on
        }
    }
}

/// A streamed job that ended in an error reply.
struct Failed {
    reply: ErrorReply,
    /// Whether the connection is still in step (no body left unread).
    carry_on: bool,
}

impl Failed {
    fn closing(reply: ErrorReply) -> Failed {
        Failed {
            reply,
            carry_on: false,
        }
    }

    fn logged(state: &State, peer: &Peer, audit: &handlers::Audit, reply: ErrorReply) -> Failed {
        audit.log(state, peer, Err(&reply));
        Failed::closing(reply)
    }
}

/// The body of [`stream_job`], cancelled from outside by lock or deadline.
#[allow(clippy::too_many_arguments)]
async fn relay<R, W>(
    state: &State,
    peer: &Peer,
    audit: &handlers::Audit,
    prepared: crate::job::http::Prepared,
    body_follows: bool,
    deadline: Instant,
    mut rd: R,
    out: &mut Replies<W>,
) -> Result<bool, Failed>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let max = state.upstream.max_body();
    let limit = deadline.saturating_duration_since(Instant::now());
    let (mut prepared, mut body_follows) = (prepared, body_follows);
    if body_follows && matches!(prepared.injection, proto::Injection::Sign { .. }) {
        // Content-Digest covers the whole body and goes in the headers, so a
        // signed request's body is gathered (within the frame limit) first.
        prepared.body = Some(
            gather_body(&mut rd, max.min(proto::MAX_BODY))
                .await
                .map_err(Failed::closing)?,
        );
        body_follows = false;
    }
    // A `lock` while the body flows ends the job: the token's copies (in
    // the redactor, in the connection) go with it.
    let epoch = prepared.epoch.clone();
    let upload_epoch = epoch.clone();
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
                    return Err(Failed::closing(e));
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
            return Err(Failed {
                reply: e,
                carry_on: uploaded,
            });
        }
    };
    let status = started.head.status;
    if !out.send(&Response::Head(started.head.clone())).await {
        return Ok(false);
    }
    let mut redactor = StreamRedactor::new(started.redactor.clone());
    let mut pending: Vec<u8> = Vec::new();
    let mut total = 0usize;
    loop {
        match started.chunk().await {
            Ok(Some(_)) if !epoch.is_current() => {
                return Err(Failed::logged(state, peer, audit, locked_meanwhile()));
            }
            Ok(Some(piece)) => {
                total += piece.len();
                if total > max {
                    return Err(Failed::logged(
                        state,
                        peer,
                        audit,
                        ErrorReply::new(
                            ErrorCode::TooLarge,
                            format!("response body exceeds max_body ({max} bytes)"),
                        ),
                    ));
                }
                // A large piece is searched off the async workers, so the
                // other clients they serve are not kept waiting.
                if redactor.pending_len(piece.len()) > REDACT_INLINE_MAX
                    && tokio::runtime::Handle::current().runtime_flavor()
                        == tokio::runtime::RuntimeFlavor::MultiThread
                {
                    pending.extend(tokio::task::block_in_place(|| redactor.push(&piece)));
                } else {
                    pending.extend(redactor.push(&piece));
                }
                if pending.len() >= proto::CHUNK {
                    let out_chunk = std::mem::take(&mut pending);
                    if !out.send(&Response::Chunk(out_chunk)).await {
                        // The client went away: dropping the response cancels the upstream.
                        return Ok(false);
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return Err(Failed::logged(state, peer, audit, e)),
        }
    }
    pending.extend(redactor.finish());
    if !pending.is_empty() && !out.send(&Response::Chunk(pending)).await {
        return Ok(false);
    }
    audit.log(state, peer, Ok(status));
    Ok(out.send(&Response::End).await && uploaded)
}

/// Reads a streamed request body into memory, refusing more than `max`.
async fn gather_body<R>(stream: &mut R, max: usize) -> Result<Bytes, ErrorReply>
where
    R: tokio::io::AsyncRead + Unpin,
{
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
