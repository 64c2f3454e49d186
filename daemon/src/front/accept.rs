//! The front's listener: the same socket rules and peer check as the main
//! socket (`server::bind`: 0600 in a 0700 directory; SO_PEERCRED, own uid
//! or `allow_uids`), decided at accept, before a byte of the request is
//! read; a cap on connections; and hyper's limits on what one connection
//! may send (head size, header count, how long a head may take).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use interprocess::local_socket::tokio::{Listener, Stream};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::framing::{Verdicts, Watched};
use super::problem::{FrontError, Problem};
use super::relay;
use crate::peer::{self, Peer, Refusal};
use crate::state::State;

/// Largest request head (request line and headers) hyper buffers; a longer
/// one is answered 431 by hyper. Twice what the socket protocol allows
/// all `-H` headers together, so anything `vaultctl` can send fits.
const MAX_HEAD: usize = 64 * 1024;

/// Most header fields in one request.
const MAX_HEADERS: usize = 100;

/// Accepts front connections until `shutdown` completes.
pub async fn serve(listener: Listener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(state.config.max_connections));
    let own_uid = rustix::process::getuid().as_raw();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            s = peer::accept_retrying(&listener, "http front: ") => s,
        };
        let peer = match peer::admit(&stream, own_uid, &state.config.allow_uids) {
            Ok(p) => p,
            Err(Refusal::NoCredentials(e)) => {
                tracing::warn!("http front: refused a connection: no peer credentials: {e}");
                continue;
            }
            Err(Refusal::ForeignUid(peer)) => {
                tracing::warn!(
                    "http front: refused a connection from uid {} (pid {}): only uid {own_uid} and allow_uids may connect",
                    peer.uid,
                    peer.pid_str()
                );
                let p = Problem::front(&FrontError::ForeignUid {
                    uid: peer.uid,
                    owner: own_uid,
                });
                tokio::spawn(refuse(stream, p));
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(
                "http front: connection limit ({}, max_connections) reached; refusing pid {}",
                state.config.max_connections,
                peer.pid_str()
            );
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            connection(stream, state, peer).await;
            drop(permit);
        });
    }
}

/// Answers a refused peer and closes, without reading anything it sent.
/// The socket stays open a moment after the answer: closing a Unix socket
/// with unread data in it resets the peer's side, which could then lose
/// the answer before reading it.
async fn refuse(mut stream: Stream, p: Problem) {
    let write = async {
        stream.write_all(&p.raw()).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(2), write).await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Serves one connection: HTTP/1.1 with keep-alive and pipelining, no
/// upgrades (hyper refuses them unless asked, and `request` refuses the
/// headers). A head must arrive within `hello_timeout` of the connection
/// or of the previous response (slowloris, and idle keep-alive).
async fn connection(stream: Stream, state: Arc<State>, peer: Peer) {
    let verdicts = Verdicts::default();
    let stream = Watched::new(stream, verdicts.clone());
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        let peer = peer.clone();
        // Taken now, in request order (hyper calls the service once per
        // request, in the order the heads arrived).
        let ambiguous = verdicts.ambiguous();
        async move {
            if ambiguous {
                return Ok::<_, Infallible>(Problem::front(&FrontError::Framing).response());
            }
            Ok(relay::handle(req, &state, &peer).await)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_header_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    if let Err(e) = builder
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!("http front: connection ended: {e}");
    }
}

/// How long a request head may take to arrive.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
