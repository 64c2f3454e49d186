//! A real HTTP upstream on 127.0.0.1 (plain or TLS with an rcgen test CA)
//! that records every request it receives, so tests can prove what was (and
//! was not) sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

use crate::sigverify::VerifyKey;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub tls: bool,
    /// PEM of the test CA (TLS only).
    pub ca_pem: Option<String>,
    log: Arc<Mutex<Vec<Recorded>>>,
    /// Bytes `/source` has produced so far (to see a cancelled download stop).
    pub produced: Arc<std::sync::atomic::AtomicU64>,
    /// The key `/verify` checks RFC 9421 signatures with.
    verify_key: Arc<Mutex<Option<VerifyKey>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    pub fn plain() -> Upstream {
        Upstream::start(None, "127.0.0.1:0")
    }

    /// Plain HTTP on a fixed loopback address, for credentials whose origin
    /// is fixed in advance (the vault fixtures).
    pub fn plain_at(addr: &str) -> Upstream {
        Upstream::start(None, addr)
    }

    /// TLS with a fresh CA; the leaf is valid for `localhost` and 127.0.0.1.
    pub fn tls() -> Upstream {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tokenvault test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca cert");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf cert");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("server config");
        let mut cfg = cfg;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut up = Upstream::start(Some(Arc::new(cfg)), "127.0.0.1:0");
        up.ca_pem = Some(ca.pem());
        up
    }

    fn start(tls: Option<Arc<rustls::ServerConfig>>, bind: &str) -> Upstream {
        let bind = bind.to_owned();
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let produced: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let produced2 = produced.clone();
        let verify_key: Arc<Mutex<Option<VerifyKey>>> = Arc::default();
        let verify_key2 = verify_key.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let is_tls = tls.is_some();
        let log2 = log.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&bind)
                    .await
                    .unwrap_or_else(|e| panic!("upstream cannot bind {bind}: {e}"));
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                let accept_loop = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        let log = log2.clone();
                        let produced = produced2.clone();
                        let key = verify_key2.clone();
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| {
                                handle(req, log.clone(), produced.clone(), key.clone(), is_tls)
                            });
                            let builder = auto::Builder::new(TokioExecutor::new());
                            match acceptor {
                                Some(a) => {
                                    if let Ok(s) = a.accept(tcp).await {
                                        let _ =
                                            builder.serve_connection(TokioIo::new(s), svc).await;
                                    }
                                }
                                None => {
                                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept_loop => {}
                    _ = stop_rx => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("upstream address");
        Upstream {
            addr,
            tls: is_tls,
            ca_pem: None,
            log,
            produced,
            verify_key,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` (or the fixed address) or `https://localhost:PORT`.
    pub fn origin(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://{}:{}", self.addr.ip(), self.addr.port())
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin(), path)
    }

    /// Writes the CA to `path` (for `extra_ca`).
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, self.ca_pem.as_ref().expect("TLS upstream")).expect("write CA");
    }

    /// Sets the key `/verify` and `/verify-tampered` check signatures with.
    pub fn set_verify_key(&self, key: VerifyKey) {
        *self.verify_key.lock().expect("key") = Some(key);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// Forgets the requests recorded so far (`/flaky` counts from here).
    pub fn clear(&self) {
        self.log.lock().expect("log").clear();
    }

    /// Whether any request, in any header or body, carried `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        self.requests().iter().any(|r| {
            r.target.contains(needle)
                || crate::count(&r.body, needle.as_bytes()) > 0
                || r.headers
                    .iter()
                    .any(|(_, v)| crate::count(v, needle.as_bytes()) > 0)
        })
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A redirect to `to`, with the status from the `code` query (302 by default).
fn redirect(target: &str, to: &str) -> Response<Body> {
    let code: u16 = query_param(target, "code")
        .and_then(|v| v.parse().ok())
        .unwrap_or(302);
    Response::builder()
        .status(code)
        .header("location", to)
        .body(Full::new(Bytes::from_static(b"redirecting")).boxed())
        .expect("response")
}

fn query_param(target: &str, key: &str) -> Option<String> {
    let q = target.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The credential the request carried: `Access-Token`, or a bearer value.
fn presented_token(r: &Recorded) -> Option<String> {
    r.header("access-token").or_else(|| {
        r.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
    })
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn reply(status: u16, ctype: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("status"))
        .header("content-type", ctype)
        .body(Full::new(body.into()).boxed())
        .expect("response")
}

async fn handle(
    req: Request<Incoming>,
    log: Arc<Mutex<Vec<Recorded>>>,
    produced: Arc<std::sync::atomic::AtomicU64>,
    verify_key: Arc<Mutex<Option<VerifyKey>>>,
    tls: bool,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().to_string();
    if req.uri().path() == "/sink" {
        return Ok(sink(req, log).await);
    }
    if req.uri().path() == "/source" {
        let n: u64 = req
            .uri()
            .query()
            .and_then(|q| query_param(&format!("?{q}"), "n"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let r = Response::builder()
            .status(200)
            .header("content-type", "application/octet-stream")
            .header("content-length", n.to_string())
            .body(Generated::counted(n, produced).boxed())
            .expect("response");
        return Ok(r);
    }
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.to_string());
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let rec = Recorded {
        method,
        target: target.clone(),
        headers,
        body,
    };
    log.lock().expect("log").push(rec.clone());
    let path = target.split('?').next().unwrap_or("/");
    let resp = match path {
        "/api/projects/create" => match (rec.method.as_str(), rec.header("access-token")) {
            ("POST", Some(_)) => reply(
                200,
                "application/json",
                r#"{"id":"p123","url":"https://microreact.org/project/p123"}"#,
            ),
            (_, None) => reply(
                401,
                "application/json",
                r#"{"error":"missing Access-Token"}"#,
            ),
            _ => reply(405, "text/plain", "method not allowed"),
        },
        "/user" => match rec.header("authorization") {
            Some(v) if v.starts_with("Bearer ") => {
                reply(200, "application/json", r#"{"id":"u1","name":"Ada"}"#)
            }
            _ => reply(401, "application/json", r#"{"error":"unauthorized"}"#),
        },
        "/echo" => {
            let mut text = String::new();
            for (n, v) in &rec.headers {
                text.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v)));
            }
            text.push('\n');
            let mut out = text.into_bytes();
            out.extend_from_slice(&rec.body);
            let mut r = reply(200, "text/plain", out);
            if let Some(t) = presented_token(&rec) {
                r.headers_mut()
                    .insert("x-echo-token", t.parse().expect("header value"));
            }
            r
        }
        "/echo-encoded" => {
            let t = presented_token(&rec).unwrap_or_default();
            let b64 = base64::engine::general_purpose::STANDARD.encode(t.as_bytes());
            let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.as_bytes());
            // As RFC 3986 component encoding does (Python's quote(safe="")).
            let pct: String = t
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            reply(
                200,
                "text/plain",
                format!("raw={t}\nb64={b64}\nb64url={b64url}\npct={pct}\n"),
            )
        }
        // The token echoed in one everyday encoding (issue #11 item 4), as
        // `echo=<form>;end`; `form` names it (see `echo_form`).
        "/echo-form" => {
            let t = presented_token(&rec).unwrap_or_default();
            let form = query_param(&target, "form").unwrap_or_default();
            let mut out = b"echo=".to_vec();
            out.extend(echo_form(&t, &form));
            out.extend_from_slice(b";end");
            reply(200, "application/octet-stream", out)
        }
        "/bytes" => reply(200, "application/octet-stream", rec.body.clone()),
        // The token echoed in a compressed body, as nginx with `gzip on`
        // does. `enc`: gzip, deflate, br, zstd; `compress` (sent raw under a
        // label nobody decodes) or `gzip, gzip` (stacked) test refusal.
        "/echo-compressed" => {
            let t = presented_token(&rec).unwrap_or_default();
            // Repeated, so the compressed form no longer holds the token raw.
            let plain = format!("invalid token {t}\n").repeat(4).into_bytes();
            let enc = query_param(&target, "enc").unwrap_or_else(|| "gzip".into());
            let body = match enc.as_str() {
                "gzip" => compress::gzip(&plain),
                "deflate" => compress::zlib(&plain),
                "br" => compress::brotli(&plain),
                "zstd" => compress::zstd(&plain),
                "gzip, gzip" => compress::gzip(&compress::gzip(&plain)),
                _ => plain,
            };
            Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .header("content-encoding", enc)
                .header("content-length", body.len().to_string())
                .body(Full::new(Bytes::from(body)).boxed())
                .expect("response")
        }
        // A fixed text (no token) compressed with `enc`, for comparing
        // curl --compressed with vaultctl side by side.
        // Compressed as a well-behaved server does: only when the client's
        // Accept-Encoding names `enc` (vaultd asks for `identity`).
        "/compressed" => {
            let plain = "compressed text, no secret in it\n".repeat(8).into_bytes();
            let want = query_param(&target, "enc").unwrap_or_else(|| "gzip".into());
            let accepted = rec
                .header("accept-encoding")
                .is_some_and(|a| a.split(',').any(|c| c.trim().eq_ignore_ascii_case(&want)));
            let enc = if accepted { want } else { "identity".into() };
            let body = match enc.as_str() {
                "gzip" => compress::gzip(&plain),
                "deflate" => compress::zlib(&plain),
                "br" => compress::brotli(&plain),
                "zstd" => compress::zstd(&plain),
                _ => plain,
            };
            Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .header("content-encoding", enc)
                .header("content-length", body.len().to_string())
                .body(Full::new(Bytes::from(body)).boxed())
                .expect("response")
        }
        // A redirect whose Location carries the token: `to` is a template in
        // which `TOKEN` is replaced by the presented credential.
        "/redirect-echo" => {
            let t = presented_token(&rec).unwrap_or_default();
            let to = query_param(&target, "to")
                .unwrap_or_else(|| "/echo?t=TOKEN".into())
                .replace("TOKEN", &t);
            redirect(&target, &to)
        }
        "/big" => {
            let n: usize = query_param(&target, "n")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            // `c`: the byte to repeat (default `x`), e.g. `a` for a body
            // that is one long run of a periodic token.
            let c = query_param(&target, "c")
                .and_then(|v| v.bytes().next())
                .unwrap_or(b'x');
            reply(200, "application/octet-stream", vec![c; n])
        }
        "/slow" => {
            let ms: u64 = query_param(&target, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(200, "text/plain", "slow")
        }
        "/redirect" => {
            // `ms`: wait that long before answering (a slow first hop).
            if let Some(ms) = query_param(&target, "ms").and_then(|v| v.parse().ok()) {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let to = query_param(&target, "to").unwrap_or_else(|| "/echo".into());
            redirect(&target, &to)
        }
        // RFC 9421: 200 when the signature verifies, 401 naming the failed
        // check otherwise. `-tampered` alters one body byte first, as a
        // man in the middle would.
        "/verify" | "/verify-tampered" => {
            let key = verify_key.lock().expect("key").clone();
            let mut seen = rec.clone();
            if path == "/verify-tampered" {
                match seen.body.first_mut() {
                    Some(b) => *b ^= 0x20,
                    None => seen.body.push(b'x'),
                }
            }
            let scheme = if tls { "https" } else { "http" };
            match key.map(|k| crate::sigverify::verify(&seen, scheme, &k)) {
                Some(Ok(v)) => reply(
                    200,
                    "text/plain",
                    format!("verified: {}", v.components.join(" ")),
                ),
                Some(Err(e)) => reply(401, "text/plain", format!("signature rejected: {e}")),
                None => reply(500, "text/plain", "no verify key set"),
            }
        }
        // Fails the first `n` requests to this target since the last
        // `clear` with `status` (default 503) and, given `after`, a
        // `Retry-After: after`; then answers 200 (curl's --retry tests).
        "/flaky" => {
            let n: usize = query_param(&target, "n")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let seen = log
                .lock()
                .expect("log")
                .iter()
                .filter(|r| r.target == target)
                .count();
            if seen <= n {
                let code: u16 = query_param(&target, "status")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(503);
                let mut r = reply(code, "text/plain", format!("try {seen} failed\n"));
                if let Some(after) = query_param(&target, "after") {
                    r.headers_mut()
                        .insert("retry-after", after.parse().expect("header value"));
                }
                r
            } else {
                reply(200, "text/plain", format!("ok after {n}\n"))
            }
        }
        p if p.starts_with("/status/") => {
            let code: u16 = p["/status/".len()..].parse().unwrap_or(500);
            reply(code, "text/plain", format!("status {code}"))
        }
        _ => reply(404, "text/plain", "not found"),
    };
    Ok(resp)
}

/// `t` as a real server or framework writes it back, by `form`.
fn echo_form(t: &str, form: &str) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    let wrap = |width: usize, eol: &str| -> Vec<u8> {
        let b = STANDARD.encode(t);
        let lines: Vec<&str> = b
            .as_bytes()
            .chunks(width)
            .map(|c| std::str::from_utf8(c).expect("base64"))
            .collect();
        // The final line break stays outside the match: not the token's.
        lines.join(eol).into_bytes()
    };
    match form {
        "upper" => t.to_uppercase().into_bytes(),
        "lower" => t.to_lowercase().into_bytes(),
        // PHP json_encode: '/' as '\/'.
        "json-php" => t.replace('/', "\\/").into_bytes(),
        "json-b64" => STANDARD.encode(t).replace('/', "\\/").into_bytes(),
        // Python urllib.parse.quote (safe='/').
        "quote" => t
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
            .into_bytes(),
        // Python base64.encodebytes, MIME mail, PEM.
        "mime-lf" => wrap(76, "\n"),
        "mime-crlf" => wrap(76, "\r\n"),
        "pem" => wrap(64, "\n"),
        "hex" => t
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into_bytes(),
        "hex-upper" => t
            .bytes()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
            .into_bytes(),
        // Every character as \uXXXX.
        "json-u" => t
            .encode_utf16()
            .map(|u| format!("\\u{u:04x}"))
            .collect::<String>()
            .into_bytes(),
        "utf16le" => t.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "utf16be" => t.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        _ => t.as_bytes().to_vec(),
    }
}

/// Consumes a body of any size without keeping it: answers its length and
/// SHA-256, and records the request with an empty body.
async fn sink(req: Request<Incoming>, log: Arc<Mutex<Vec<Recorded>>>) -> Response<Body> {
    let headers: Vec<(String, Vec<u8>)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let method = req.method().to_string();
    let mut body = req.into_body();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            ctx.update(&data);
        }
    }
    log.lock().expect("log").push(Recorded {
        method,
        target: "/sink".into(),
        headers,
        body: Vec::new(),
    });
    let hex: String = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    reply(
        200,
        "application/json",
        format!("{{\"len\":{len},\"sha256\":\"{hex}\"}}"),
    )
}

/// Deterministic pseudo-random bytes (xorshift64), the same sequence that
/// [`generated_bytes`] writes, so large transfers can be checked by hash.
pub struct Generated {
    remaining: u64,
    state: u64,
    counter: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Generated {
    pub fn new(n: u64) -> Generated {
        Generated {
            remaining: n,
            state: 0x9E37_79B9_7F4A_7C15,
            counter: None,
        }
    }

    fn counted(n: u64, counter: Arc<std::sync::atomic::AtomicU64>) -> Generated {
        Generated {
            counter: Some(counter),
            ..Generated::new(n)
        }
    }

    /// Fills `buf` with the next bytes of the sequence.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.state;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
    }
}

impl hyper::body::Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.remaining.min(256 * 1024) as usize;
        let mut buf = vec![0u8; n];
        self.fill(&mut buf);
        self.remaining -= n as u64;
        if let Some(c) = &self.counter {
            c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(buf)))))
    }
}

/// Writes `n` generated bytes to `path` and returns their SHA-256 (hex).
pub fn generated_file(path: &Path, n: u64) -> String {
    use std::io::Write;
    let mut g = Generated::new(n);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut left = n;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        g.fill(&mut buf[..k]);
        ctx.update(&buf[..k]);
        f.write_all(&buf[..k]).expect("write");
        left -= k as u64;
    }
    f.flush().expect("flush");
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 (hex) of a file, read in pieces.
pub fn file_sha256(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).expect("open");
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encoders for compressed echoes, with the same crates real servers'
/// stacks use.
mod compress {
    use std::io::Write;

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    /// HTTP `deflate` is the zlib format (RFC 9110 §8.4.1.2).
    pub fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("deflate");
        e.finish().expect("deflate")
    }

    pub fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).expect("brotli");
        }
        out
    }

    pub fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::encode_all(data, 3).expect("zstd")
    }
}
