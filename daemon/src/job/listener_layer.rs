//! Runs the loopback listener check ([`super::listener`]) inside reqwest's
//! connector, on the connection itself: after the TCP connect and before
//! hyper writes a byte on it. Checking here, rather than before sending,
//! closes the window between a check and the connect, and each pooled
//! connection is checked once, when it is made.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use tower_service::Service;

use super::listener;

/// reqwest's connector error type.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Added to every client with `ClientBuilder::connector_layer`. `trusted`
/// is `loopback_listener_uids`.
#[derive(Clone)]
pub struct CheckListenerLayer {
    trusted: Arc<[u32]>,
}

impl CheckListenerLayer {
    pub fn new(trusted: &[u32]) -> Self {
        CheckListenerLayer {
            trusted: trusted.into(),
        }
    }
}

impl<S> tower_layer::Layer<S> for CheckListenerLayer {
    type Service = CheckListener<S>;

    fn layer(&self, inner: S) -> CheckListener<S> {
        CheckListener {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// reqwest's connector service with the check on what it returns. Generic
/// over the request and connection types because reqwest does not name
/// them; all it needs is hyper-util's [`Connection`].
#[derive(Clone)]
pub struct CheckListener<S> {
    inner: S,
    trusted: Arc<[u32]>,
}

impl<S, R> Service<R> for CheckListener<S>
where
    S: Service<R, Error = BoxError>,
    S::Response: Connection + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let connecting = self.inner.call(req);
        let trusted = self.trusted.clone();
        Box::pin(async move {
            let conn = connecting.await?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            // TLS has already checked who the server is (the client is
            // built with `tls_info`, so every TLS connection says so).
            if extras.get::<reqwest::tls::TlsInfo>().is_some() {
                return Ok(conn);
            }
            // hyper-util leaves the addresses out when the socket has no
            // peer any more (reset): nothing could be sent on it anyway,
            // and nothing is told about who served it, so refuse.
            let Some(info) = extras.get::<HttpInfo>() else {
                return Err("the connection closed before its peer could be checked".into());
            };
            // This machine: a loopback address, or one of its own addresses
            // (a LAN address, with --allow-insecure-http), which connects
            // from itself.
            let remote = info.remote_addr().ip();
            if listener::is_loopback(remote) || remote == info.local_addr().ip() {
                listener::check_connected(info.local_addr(), info.remote_addr(), &trusted).await?;
            }
            Ok(conn)
        })
    }
}
