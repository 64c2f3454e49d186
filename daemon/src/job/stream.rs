//! Running a job on the client's connection, buffered or streamed.
//!
//! A streamed job is three named steps: [`gather_body_to_sign`] (a signed
//! request's body must be whole before its headers are written),
//! [`pump_upload`] (client chunks to the upstream) and [`relay_download`]
//! (the redacted response back in chunks). The whole job, every read from
//! and write to the client included, ends at its deadline and when the
//! vault locks: a client that stops reading cannot keep the job, its
//! upstream connection and its token alive.

use std::time::Duration;

use bytes::Bytes;
use proto::frame::{encode_frame, read_frame_async, write_frame_async};
use proto::{ErrorReply, JobRequest, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use zeroize::Zeroizing;

use super::audit::Audit;
use super::epoch::Epoch;
use super::error::JobError;
use super::http::{ChannelBody, Prepared, REDACT_INLINE_MAX, Started, within};
use super::prepare::prepare_job;
use super::redact::StreamRedactor;
use crate::error::reply;
use crate::peer::Peer;
use crate::state::State;

/// How long vaultd tries to tell a client that its job was cut short. The
/// job (and its token) is gone by then; this only bounds the connection.
const FAREWELL: Duration = Duration::from_secs(2);

fn too_large(which: &'static str, max: usize) -> JobError {
    JobError::TooLarge { which, max }
}

/// Runs a buffered job. The job ends when the vault locks, and its reply
/// must be written within the job's deadline and before a lock: a client
/// that never reads cannot hold the connection, and one that asked before
/// a `lock` gets `Locked` rather than the body. Returns whether the
/// connection can carry on.
pub async fn buffered<S>(stream: &mut S, state: &State, peer: &Peer, job: JobRequest) -> bool
where
    S: AsyncWrite + Unpin,
{
    let (prepared, audit) = match prepare_job(state, peer, job).await {
        Ok(v) => v,
        Err(e) => {
            return write_frame_async(stream, &Response::Error(e.into()))
                .await
                .is_ok();
        }
    };
    let limit = state.http.limit(&prepared);
    let deadline = Instant::now() + limit;
    let epoch = prepared.epoch.clone();
    let result = tokio::select! {
        r = state.http.run(prepared) => r,
        () = epoch.ended() => Err(JobError::LockedMeanwhile),
    };
    let result = match result {
        Ok(_) if !epoch.is_current() => Err(JobError::LockedMeanwhile),
        other => other,
    };
    let resp = match result {
        Ok(r) => {
            audit.log(state, peer, Ok(r.status));
            Response::Job(r)
        }
        Err(e) => {
            let e = reply(e);
            audit.log(state, peer, Err(e.code));
            Response::Error(e)
        }
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
pub async fn streamed<S>(
    stream: &mut S,
    state: &State,
    peer: &Peer,
    job: JobRequest,
    body_follows: bool,
    body_len: Option<u64>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (prepared, audit) = match prepare_job(state, peer, job).await {
        Ok(v) => v,
        Err(e) => {
            let _ = write_frame_async(stream, &Response::Error(e.into())).await;
            return !body_follows;
        }
    };
    let limit = state.http.limit(&prepared);
    let deadline = Instant::now() + limit;
    let epoch = prepared.epoch.clone();
    let (rd, wr) = tokio::io::split(stream);
    let mut out = Replies::new(wr);
    let job = Streamed {
        state,
        peer,
        audit: &audit,
        max: state.http.max_body(),
        deadline,
        body_len,
    };
    let result = tokio::select! {
        r = job.run(prepared, body_follows, rd, &mut out) => r,
        () = epoch.ended() => Err(Failed::logged(&job, JobError::LockedMeanwhile)),
        () = tokio::time::sleep_until(deadline) => {
            Err(Failed::logged(&job, JobError::Timeout { limit }))
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

/// What every step of a streamed job needs.
struct Streamed<'a> {
    state: &'a State,
    peer: &'a Peer,
    audit: &'a Audit,
    max: usize,
    deadline: Instant,
    /// The length the client announced for its streamed body.
    body_len: Option<u64>,
}

/// A streamed job that ended in an error reply.
struct Failed {
    reply: ErrorReply,
    /// Whether the connection is still in step (no body left unread).
    carry_on: bool,
}

impl Failed {
    fn closing(e: JobError) -> Failed {
        Failed {
            reply: reply(e),
            carry_on: false,
        }
    }

    /// With the job's audit line (a failure after the policy let it go).
    fn logged(job: &Streamed<'_>, e: JobError) -> Failed {
        let f = Failed::closing(e);
        job.audit.log(job.state, job.peer, Err(f.reply.code));
        f
    }
}

impl Streamed<'_> {
    /// The steps in order; cancelled from outside by lock or deadline.
    async fn run<R, W>(
        &self,
        mut prepared: Prepared,
        mut body_follows: bool,
        mut rd: R,
        out: &mut Replies<W>,
    ) -> Result<bool, Failed>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        if body_follows && matches!(prepared.injection, proto::Injection::Sign { .. }) {
            let body = gather_body_to_sign(&mut Frames(&mut rd), self.max.min(proto::MAX_BODY))
                .await
                .map_err(Failed::closing)?;
            prepared.body = Some(body);
            body_follows = false;
        }
        let epoch = prepared.epoch.clone();
        let (started, uploaded) = self.send(prepared, body_follows, rd).await?;
        let carry_on = self.relay_download(started, &epoch, out).await?;
        Ok(carry_on && uploaded)
    }

    /// Sends the request, pumping the client's upload into it when a body
    /// follows, until the response's head arrives. Also returns whether the
    /// upload was read to its end (if the upstream answered first, the
    /// connection is closed after the response rather than read on).
    async fn send<R>(
        &self,
        prepared: Prepared,
        body_follows: bool,
        rd: R,
    ) -> Result<(Started, bool), Failed>
    where
        R: AsyncRead + Unpin,
    {
        let limit = self.deadline.saturating_duration_since(Instant::now());
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let body = body_follows.then(|| ChannelBody::sized(rx, self.body_len));
        let epoch = prepared.epoch.clone();
        let max = self.max;
        let body_len = self.body_len;
        let pump = async move {
            match (body_follows, body_len) {
                (true, Some(declared)) => {
                    let src = Declared {
                        inner: Frames(rd),
                        declared,
                        seen: 0,
                    };
                    pump_upload(src, tx, max, epoch).await
                }
                (true, None) => pump_upload(Frames(rd), tx, max, epoch).await,
                (false, _) => Ok(()),
            }
        };
        let send = within(limit, self.state.http.send(prepared, body));
        tokio::pin!(pump, send);
        let mut uploaded = !body_follows;
        let started = loop {
            tokio::select! {
                r = &mut pump, if !uploaded => {
                    uploaded = true;
                    if let Err(e) = r {
                        tracing::debug!("pid {}: streamed upload failed: {e}", self.peer.pid_str());
                        return Err(Failed::closing(e));
                    }
                }
                r = &mut send => break r,
            }
        };
        match started {
            Ok(s) => Ok((s, uploaded)),
            Err(e) => {
                let e = reply(e);
                self.audit.log(self.state, self.peer, Err(e.code));
                Err(Failed {
                    reply: e,
                    carry_on: uploaded,
                })
            }
        }
    }

    /// The head, then the redacted body in chunks, then `End`.
    async fn relay_download<W>(
        &self,
        started: Started,
        epoch: &Epoch,
        out: &mut Replies<W>,
    ) -> Result<bool, Failed>
    where
        W: AsyncWrite + Unpin,
    {
        let status = started.head.status;
        if !out.send(&Response::Head(started.head.clone())).await {
            return Ok(false);
        }
        let mut download = Download::new(started, epoch.clone(), self.max);
        let mut pending: Vec<u8> = Vec::new();
        loop {
            match download.next().await {
                Ok(Some(piece)) => {
                    pending.extend(piece);
                    if pending.len() >= proto::CHUNK {
                        let chunk = std::mem::take(&mut pending);
                        if !out.send(&Response::Chunk(chunk)).await {
                            // The client went away: dropping the response
                            // cancels the upstream.
                            return Ok(false);
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(Failed::logged(self, e)),
            }
        }
        if !pending.is_empty() && !out.send(&Response::Chunk(pending)).await {
            return Ok(false);
        }
        self.audit.log(self.state, self.peer, Ok(status));
        Ok(out.send(&Response::End).await)
    }
}

/// A response body on its way to a client, redacted piece by piece: the
/// one path every front (the socket protocol, the HTTP front) takes a
/// download through, so each gets the same held-back window, size cap and
/// end at `lock`.
pub struct Download {
    started: Started,
    redactor: StreamRedactor,
    epoch: Epoch,
    max: usize,
    total: usize,
    done: bool,
}

impl Download {
    pub fn new(started: Started, epoch: Epoch, max: usize) -> Download {
        let redactor = StreamRedactor::new(started.redactor.clone());
        Download {
            started,
            redactor,
            epoch,
            max,
            total: 0,
            done: false,
        }
    }

    /// The redacted bytes of the next upstream piece (possibly empty: the
    /// redactor holds back a window that could start an echo), the held-back
    /// tail at the end, then `None`. Large pieces are searched off the async
    /// workers, so the other clients they serve are not kept waiting.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, JobError> {
        if self.done {
            return Ok(None);
        }
        match self.started.chunk().await? {
            Some(_) if !self.epoch.is_current() => Err(JobError::LockedMeanwhile),
            Some(piece) => {
                self.total += piece.len();
                if self.total > self.max {
                    return Err(too_large("response", self.max));
                }
                if self.redactor.pending_len(piece.len()) > REDACT_INLINE_MAX
                    && tokio::runtime::Handle::current().runtime_flavor()
                        == tokio::runtime::RuntimeFlavor::MultiThread
                {
                    Ok(Some(tokio::task::block_in_place(|| {
                        self.redactor.push(&piece)
                    })))
                } else {
                    Ok(Some(self.redactor.push(&piece)))
                }
            }
            None => {
                self.done = true;
                Ok(Some(self.redactor.finish()))
            }
        }
    }
}

/// Where a streamed upload's pieces come from: the socket protocol's
/// `Chunk` frames, or an HTTP request body on the front. `Ok(None)` is the
/// client's explicit end; a client that goes away first is an error, so a
/// body cut short never reaches the upstream as a complete one.
pub trait UploadSource {
    fn piece(&mut self) -> impl std::future::Future<Output = Result<Option<Bytes>, JobError>>;
}

/// The socket protocol's upload: `Chunk` frames until `End`.
struct Frames<R>(R);

impl<R: AsyncRead + Unpin> UploadSource for Frames<R> {
    async fn piece(&mut self) -> Result<Option<Bytes>, JobError> {
        match read_frame_async::<_, Request>(&mut self.0).await {
            Ok(Some(Request::Chunk(c))) => Ok(Some(Bytes::from(c))),
            Ok(Some(Request::End)) => Ok(None),
            Ok(Some(_)) => Err(JobError::ExpectedChunk),
            Ok(None) | Err(_) => Err(JobError::ClientGone),
        }
    }
}

/// An upload held to the length its client announced: upstream it goes
/// with that `Content-Length`, so a byte more would be read by the
/// upstream as the start of another request on the (pooled) connection,
/// and a byte less would leave it waiting. Either fails the job before
/// the offending piece is passed on.
struct Declared<S> {
    inner: S,
    declared: u64,
    seen: u64,
}

impl<S: UploadSource> UploadSource for Declared<S> {
    async fn piece(&mut self) -> Result<Option<Bytes>, JobError> {
        let piece = self.inner.piece().await?;
        let fail = JobError::UploadLength {
            declared: self.declared,
        };
        match piece {
            Some(c) => {
                self.seen += c.len() as u64;
                if self.seen > self.declared {
                    return Err(fail);
                }
                Ok(Some(c))
            }
            None if self.seen != self.declared => Err(fail),
            None => Ok(None),
        }
    }
}

/// Client to upstream: pieces until the client's end (dropping `tx`
/// ends the body); an error aborts the upstream request through the body.
/// A `lock` while the body flows ends it: the token's copies (in the
/// redactor, in the connection) go with the job.
pub async fn pump_upload<S: UploadSource>(
    mut src: S,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    max: usize,
    epoch: Epoch,
) -> Result<(), JobError> {
    let mut total = 0usize;
    loop {
        let fail = match src.piece().await {
            Ok(Some(_)) if !epoch.is_current() => JobError::LockedMeanwhile,
            Ok(Some(c)) => {
                total += c.len();
                if total > max {
                    too_large("request", max)
                } else {
                    // An empty piece would read as the end (ChannelBody::END).
                    if !c.is_empty() {
                        // The upstream may stop reading (early response): fine.
                        let _ = tx.send(Ok(c)).await;
                    }
                    continue;
                }
            }
            Ok(None) => {
                let _ = tx.send(Ok(ChannelBody::END)).await;
                return Ok(());
            }
            Err(e) => e,
        };
        let _ = tx.send(Err(std::io::Error::other("upload aborted"))).await;
        return Err(fail);
    }
}

/// A signed request's body, whole: Content-Digest covers it and goes in
/// the headers. Held in memory, so at most `max` bytes.
pub async fn gather_body_to_sign<S: UploadSource>(
    src: &mut S,
    max: usize,
) -> Result<Bytes, JobError> {
    let mut body = Vec::new();
    loop {
        match src.piece().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > max {
                    return Err(JobError::SignedBodyTooLarge { max });
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(_) => return Err(JobError::ClientGone),
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

impl<W: AsyncWrite + Unpin> Replies<W> {
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
