//! One request on the front, run as the same job `vaultctl request` runs:
//! `prepare_job` (policy, lease, neighbours, audit), `HttpPool::send`
//! with the upload streamed in through `job::stream::pump_upload`, and the
//! response streamed back through `job::stream::Download` (the redactor's
//! held-back window, the size cap, `lock`). Only the head is converted
//! here: hop-by-hop and `Tokenvault-*` headers dropped, a `Location` into
//! the job's origin pointed back at the front.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use proto::JobResponse;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::body::OutBody;
use super::problem::{FrontError, Problem};
use super::request::{self, Mapped};
use crate::job::error::JobError;
use crate::job::http::{ChannelBody, Started, within};
use crate::job::policy::Origin;
use crate::job::prepare::prepare_job;
use crate::job::stream::{Download, UploadSource, gather_body_to_sign, pump_upload};
use crate::peer::Peer;
use crate::state::State;

/// Largest upstream body (by its Content-Length) read whole before the
/// head is answered; anything larger, or of unknown length, streams.
const SMALL_BODY: u64 = 64 * 1024;

/// Response headers that describe the upstream's connection (RFC 9110
/// §7.6.1); hyper frames the front's side itself.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "content-length",
];

/// Answers one request.
pub async fn handle(req: Request<Incoming>, state: &Arc<State>, peer: &Peer) -> Response<OutBody> {
    let (parts, body) = req.into_parts();
    let mapped = match request::map(&parts, state) {
        Ok(m) => m,
        Err(p) => return refused(peer, p),
    };
    match run(mapped, body, state, peer).await {
        Ok(resp) => resp,
        Err(p) => p.response(),
    }
}

/// A request refused before `prepare_job` saw it (shape, Host, unknown
/// credential, locked): logged, so a script's mistakes show in the log.
fn refused(peer: &Peer, p: Problem) -> Response<OutBody> {
    tracing::info!(
        "http front: refused a request from pid {}: {}",
        peer.pid_str(),
        p.code()
    );
    p.response()
}

async fn run(
    mapped: Mapped,
    body: Incoming,
    state: &Arc<State>,
    peer: &Peer,
) -> Result<Response<OutBody>, Problem> {
    let Mapped {
        job,
        name,
        content_length,
    } = mapped;
    let (mut prepared, audit) = prepare_job(state, peer, job)
        .await
        .map_err(Problem::error)?;
    let limit = state.http.limit(&prepared);
    let deadline = Instant::now() + limit;
    let is_head = prepared.method == reqwest::Method::HEAD;
    let epoch = prepared.epoch.clone();
    let max = state.http.max_body();
    let fail = |e: JobError| {
        let p = Problem::error(e);
        audit.log(state, peer, Err(p_code(&p)));
        p
    };
    let mut upload = Upload(body);
    let mut body_follows = !hyper::body::Body::is_end_stream(&upload.0);
    if body_follows && matches!(prepared.injection, proto::Injection::Sign { .. }) {
        let whole = gather_body_to_sign(&mut upload, max.min(proto::MAX_BODY))
            .await
            .map_err(fail)?;
        prepared.body = Some(whole);
        body_follows = false;
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let upstream_body = body_follows.then(|| ChannelBody::sized(rx, content_length));
    let mut pump = Box::pin(pump_upload(upload, tx, max, epoch.clone()));
    let send = within(limit, state.http.send(prepared, upstream_body));
    tokio::pin!(send);
    let mut uploaded = !body_follows;
    let started = loop {
        tokio::select! {
            r = &mut pump, if !uploaded => {
                uploaded = true;
                r.map_err(fail)?;
            }
            r = &mut send => break r.map_err(fail)?,
            () = epoch.ended() => return Err(fail(JobError::LockedMeanwhile)),
        }
    };
    if started.head.status == 101 {
        return Err(Problem::front(&FrontError::Switching));
    }
    if !uploaded {
        // The upstream answered before taking the whole body: the rest
        // still flows (or fails) beside the download, within the job.
        let ep = epoch.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = pump => {}
                () = ep.ended() => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        });
    }
    let head = response_head(&started, &name);
    let status = started.head.status;
    // A small body (most API answers) is read and redacted whole before
    // the head goes: one task instead of two, a true Content-Length for
    // the client, and a lock or deadline meanwhile is a clean 423/504.
    let small = uploaded
        && !is_head
        && !matches!(status, 204 | 304)
        && started
            .resp
            .content_length()
            .is_some_and(|n| n <= SMALL_BODY);
    if small {
        let mut download = Download::new(started, epoch.clone(), max);
        let mut body = Vec::new();
        loop {
            let piece = tokio::select! {
                r = download.next() => r,
                () = epoch.ended() => Err(JobError::LockedMeanwhile),
                () = tokio::time::sleep_until(deadline) => Err(JobError::Timeout { limit }),
            };
            match piece.map_err(fail)? {
                Some(p) => body.extend_from_slice(&p),
                None => break,
            }
        }
        audit.log(state, peer, Ok(status));
        let mut resp = Response::new(OutBody::full(Bytes::from(body)));
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        *resp.headers_mut() = head;
        return Ok(resp);
    }
    let (out_tx, out_rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let mut download = Download::new(started, epoch.clone(), max);
    let relay = async move {
        loop {
            let piece = tokio::select! {
                r = download.next() => r,
                () = epoch.ended() => Err(JobError::LockedMeanwhile),
                () = tokio::time::sleep_until(deadline) => Err(JobError::Timeout { limit }),
            };
            match piece {
                Ok(Some(p)) if p.is_empty() => {}
                Ok(Some(p)) => {
                    // A client that stops reading stops hyper polling the
                    // body, and this send waits: lock and the deadline end
                    // it too, so a stalled reader cannot keep the job (its
                    // redactor holds the token) alive. What is left in the
                    // channel is redacted.
                    let sent = tokio::select! {
                        r = out_tx.send(Ok(Bytes::from(p))) => r.map_err(|_| JobError::ClientGone),
                        () = epoch.ended() => Err(JobError::LockedMeanwhile),
                        () = tokio::time::sleep_until(deadline) => Err(JobError::Timeout { limit }),
                    };
                    // On ClientGone, dropping the download cancels the
                    // upstream.
                    sent?;
                }
                Ok(None) => {
                    let _ = out_tx.send(Ok(OutBody::END)).await;
                    return Ok(());
                }
                Err(e) => {
                    // The body ends in an error: hyper cuts the connection
                    // mid-body, so the client cannot take it as complete.
                    let _ = out_tx.send(Err(std::io::Error::other("job ended"))).await;
                    return Err(e);
                }
            }
        }
    };
    let mut resp = Response::new(OutBody::channel(out_rx));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    *resp.headers_mut() = head;
    // The relay runs on its own task: hyper needs the head back before it
    // polls the body. The audit line is written when the body has gone.
    let state = state.clone();
    let peer = peer.clone();
    tokio::spawn(async move {
        let outcome = relay.await;
        audit.log(
            &state,
            &peer,
            outcome
                .map(|()| status)
                .map_err(|e| crate::error::job_code(&e)),
        );
    });
    Ok(resp)
}

fn p_code(p: &Problem) -> proto::ErrorCode {
    match p.code() {
        "locked" => proto::ErrorCode::Locked,
        "unknown-credential" => proto::ErrorCode::NoSuchCredential,
        "refused" => proto::ErrorCode::PolicyRefused,
        "bad-request" => proto::ErrorCode::BadRequest,
        "too-large" => proto::ErrorCode::TooLarge,
        "source-unreachable" => proto::ErrorCode::SourceUnavailable,
        "internal" => proto::ErrorCode::Internal,
        _ => proto::ErrorCode::Upstream,
    }
}

/// The response head for the client: the upstream's (already redacted by
/// `job::http`), minus hop-by-hop and `Tokenvault-*` headers, with a
/// `Location` into the job's origin rewritten to `http://NAME/...`.
fn response_head(started: &Started, name: &str) -> hyper::HeaderMap {
    let JobResponse { headers, .. } = &started.head;
    let connection_named: Vec<String> = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| {
            String::from_utf8_lossy(&h.value)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut map = hyper::HeaderMap::new();
    for h in headers {
        let lower = h.name.to_ascii_lowercase();
        if HOP_BY_HOP.contains(&lower.as_str())
            || lower.starts_with("tokenvault-")
            || connection_named.contains(&lower)
        {
            continue;
        }
        // A name the redactor changed is no longer a header name: dropped.
        let Ok(n) = HeaderName::from_bytes(h.name.as_bytes()) else {
            continue;
        };
        let value = if n == hyper::header::LOCATION {
            relocated(&h.value, &started.origin, name).unwrap_or_else(|| h.value.clone())
        } else {
            h.value.clone()
        };
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            map.append(n, v);
        }
    }
    map
}

/// A (redacted) absolute `Location` into the job's origin, as the front's
/// `http://NAME/path?query`, so a client that follows redirects stays on
/// the vault. Only the origin prefix is replaced; the rest is passed byte
/// for byte, never parsed and re-serialized: a URL parser drops tabs and
/// newlines, resolves dot segments and turns `\` into `/`, which could
/// rejoin a token the upstream echoed in pieces that no redactor pattern
/// matches (red team). A relative `Location` is passed as it is (the
/// client resolves it against `http://NAME/`), and so is any other.
fn relocated(value: &[u8], origin: &Origin, name: &str) -> Option<Vec<u8>> {
    let prefix = origin.to_string();
    let head = value.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
        return None;
    }
    let rest = &value[prefix.len()..];
    if !(rest.is_empty() || matches!(rest[0], b'/' | b'?' | b'#')) {
        return None;
    }
    let mut out = format!("http://{name}").into_bytes();
    if rest.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The request body as an upload source: data frames until the end; a
/// client that goes away mid-body is `ClientGone`, never a short body.
struct Upload(Incoming);

impl UploadSource for Upload {
    async fn piece(&mut self) -> Result<Option<Bytes>, JobError> {
        loop {
            match self.0.frame().await {
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => return Ok(Some(d)),
                    // Trailers are the client's framing: not forwarded.
                    Err(_) => continue,
                },
                Some(Err(_)) => return Err(JobError::ClientGone),
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_origin_prefix_of_a_location_is_rewritten() {
        let o = Origin::parse("http://127.0.0.1:8080").unwrap();
        let r = |v: &[u8]| relocated(v, &o, "mr").map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            r(b"http://127.0.0.1:8080/a?b#c").as_deref(),
            Some("http://mr/a?b#c")
        );
        assert_eq!(r(b"HTTP://127.0.0.1:8080").as_deref(), Some("http://mr/"));
        // Verbatim: a tab or dot segments stay as the upstream sent them.
        assert_eq!(
            r(b"http://127.0.0.1:8080/x/TO\tKEN/zz/../y").as_deref(),
            Some("http://mr/x/TO\tKEN/zz/../y")
        );
        for other in [
            &b"/relative"[..],
            b"http://127.0.0.1:8080@evil/",
            b"http://127.0.0.1:80801/",
            b"https://127.0.0.1:8080/",
            b"//127.0.0.1:8080/",
        ] {
            assert_eq!(r(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
