//! The one pooled HTTP client and the exchange itself, redirects included.
//!
//! reqwest's own redirect handling is off: it keeps custom headers such as
//! `Access-Token` on cross-origin redirects. We follow redirects here, only
//! to the same origin, re-checking the policy at every hop.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use proto::{Header, Injection, JobResponse, Secret};

use super::error::{JobError, SetupError};
use super::listener::Untrusted;
use super::listener_layer::CheckListenerLayer;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use zeroize::Zeroizing;

use super::policy::{Origin, Policy, PolicyError};
use super::redact::{Redactor, WeakRedactor};
use super::sign;
use crate::config::Config;

/// Redirect hops followed with `-L` before giving up (curl's default is 50;
/// a loop to the same origin gains nothing from more).
const MAX_REDIRECTS: usize = 20;

/// The daemon's HTTP client: shared by every job, so TLS sessions and
/// connections stay warm. Rebuilt (see [`HttpPool::reset`]) when the vault
/// locks or a value is removed or rotated, because pooled connections keep
/// the last request's headers, the injected token among them, in their
/// buffers until they are dropped.
pub struct HttpPool {
    client: RwLock<reqwest::Client>,
    settings: ClientSettings,
    max_body: usize,
    timeout: Duration,
    /// The redactors of running jobs, shared by the jobs of one credential
    /// (see [`HttpPool::redactor`]).
    redactors: std::sync::Mutex<std::collections::HashMap<String, (u64, WeakRedactor)>>,
}

/// What a client is built from: parsed once at start, so a rebuild cannot
/// fail on a file that changed since.
struct ClientSettings {
    proxy: Option<reqwest::Proxy>,
    certs: Vec<reqwest::Certificate>,
    /// `loopback_listener_uids` (see [`super::listener`]).
    listener_uids: Vec<u32>,
}

impl ClientSettings {
    fn build(&self) -> Result<reqwest::Client, SetupError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // No automatic decoding: reqwest's reads only the first
            // `Content-Encoding` line and then deletes them all, so two
            // `gzip` lines left a compressed echo that looked plain to the
            // redactor (`redteam_front.rs`). vaultd asks for `identity`
            // and refuses any coded answer, seeing every line.
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .connect_timeout(Duration::from_secs(15))
            // Plain-http connections to loopback are checked for who
            // accepted them before anything is written; TLS ones are told
            // apart by the `TlsInfo` this adds (see `listener_layer`).
            .tls_info(true)
            .connector_layer(CheckListenerLayer::new(&self.listener_uids));
        if let Some(p) = &self.proxy {
            builder = builder.proxy(p.clone());
        }
        if !self.certs.is_empty() {
            builder = builder.tls_certs_merge(self.certs.clone());
        }
        builder
            .build()
            .map_err(|e| SetupError::Client(root_cause(&e)))
    }
}

/// The configured `proxy`, applied only where it cannot read the token:
/// https requests to hosts off loopback. A plain-http request carries the
/// credential in cleartext, which the proxy would read (and, for a loopback
/// origin, the bound service would never get), and a loopback origin is
/// this machine, which no proxy needs to reach; both go direct.
fn https_off_loopback(proxy: &str) -> Result<reqwest::Proxy, SetupError> {
    // Never the URL itself in the message: it may carry a password.
    reqwest::Proxy::https(proxy).map_err(|e| SetupError::Proxy(e.to_string()))?;
    let target = Url::parse(proxy).map_err(|e| SetupError::Proxy(e.to_string()))?;
    Ok(reqwest::Proxy::custom(move |url: &Url| {
        (url.scheme() == "https" && !is_loopback_host(url)).then(|| target.clone())
    }))
}

/// Whether `url`'s host is this machine's loopback: 127.0.0.0/8, any IPv6
/// loopback, `localhost` and names under it (RFC 6761), matched more widely
/// than the policy's [`Origin::is_loopback`] because here a false positive
/// only means a direct connection.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => true,
    }
}

/// A job that passed the policy, ready to send.
pub struct Prepared {
    pub url: Url,
    pub origin: Origin,
    pub method: Method,
    pub headers: Vec<Header>,
    pub body: Option<Bytes>,
    pub follow_redirects: bool,
    pub timeout: Option<Duration>,
    pub policy: Arc<Policy>,
    pub injection: Injection,
    pub token: Secret,
    /// Other tokens sent to the same hosts: redacted too.
    pub neighbours: Vec<Secret>,
    /// The pool this job's connections go to, taken with the token (see
    /// [`crate::state::Lease::client`]).
    pub client: reqwest::Client,
    /// Checked before every hop: nothing is sent once the vault has locked.
    pub epoch: super::epoch::Epoch,
    /// The credential and the contents' generation: jobs with the same key
    /// redact the same tokens and may share one redactor.
    pub redactor_key: (String, u64),
}

impl HttpPool {
    pub fn new(config: &Config) -> Result<HttpPool, SetupError> {
        // Several daemons may share a test process; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut settings = ClientSettings {
            proxy: None,
            certs: Vec::new(),
            listener_uids: config.loopback_listener_uids.clone(),
        };
        if let Some(proxy) = &config.proxy {
            settings.proxy = Some(https_off_loopback(proxy)?);
        }
        for path in &config.extra_ca {
            let pem = std::fs::read(path).map_err(|source| SetupError::CaRead {
                path: path.clone(),
                source,
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| SetupError::CaParse {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if certs.is_empty() {
                return Err(SetupError::CaEmpty { path: path.clone() });
            }
            settings.certs.extend(certs);
        }
        let client = settings.build()?;
        Ok(HttpPool {
            client: RwLock::new(client),
            settings,
            max_body: config.max_body,
            timeout: config.request_timeout,
            redactors: Default::default(),
        })
    }

    /// The current client (a cheap handle on the shared pool).
    pub fn client(&self) -> reqwest::Client {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the client, dropping its idle pooled connections and their
    /// buffers (the allocator wipes them as they are freed). Jobs in flight
    /// keep the old client until they finish.
    /// The job's redactor. Building one costs far more than a small job
    /// (an automaton over every form of every token it knows), so the jobs
    /// of one credential that run at the same time share it; it lives only
    /// as long as one of them does (the map keeps a weak reference), so
    /// between jobs no token is held in plaintext, as before.
    fn redactor(&self, job: &Prepared) -> Redactor {
        let (name, generation) = &job.redactor_key;
        let map = self.redactors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = map
            .get(name)
            .filter(|(g, _)| g == generation)
            .and_then(|(_, w)| w.upgrade())
        {
            return r;
        }
        drop(map);
        let r = build_redactor(job.token.expose(), &job.neighbours);
        let mut map = self.redactors.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, w)| w.is_alive());
        map.insert(name.clone(), (*generation, r.downgrade()));
        r
    }

    pub fn reset(&self) {
        self.redactors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        match self.settings.build() {
            Ok(c) => *self.client.write().unwrap_or_else(|p| p.into_inner()) = c,
            Err(e) => tracing::warn!("keeping the old HTTP client: {e}"),
        }
    }

    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// How long the whole job may take (`--max-time`, else `request_timeout`).
    pub fn limit(&self, job: &Prepared) -> Duration {
        job.timeout.unwrap_or(self.timeout)
    }

    /// Runs a buffered job to completion within its deadline.
    pub async fn run(&self, job: Prepared) -> Result<JobResponse, JobError> {
        let limit = self.limit(&job);
        within(limit, async {
            let started = self.send(job, None).await?;
            self.collect(started).await
        })
        .await
    }

    /// Sends the request (following same-origin redirects with `-L`) and
    /// returns once the final response's head has arrived. `streamed` is a
    /// request body that arrives in pieces; it cannot be sent twice, so a
    /// 307/308 redirect that would repeat it is an error.
    ///
    /// Every error is passed through the job's redactor: redirect targets,
    /// policy refusals and transport errors are built from upstream text.
    pub async fn send(
        &self,
        job: Prepared,
        streamed: Option<reqwest::Body>,
    ) -> Result<Started, JobError> {
        let redactor = self.redactor(&job);
        let result = self.send_hops(job, streamed, redactor.clone()).await;
        result.map_err(|e| redacted(e, &redactor))
    }

    async fn send_hops(
        &self,
        job: Prepared,
        mut streamed: Option<reqwest::Body>,
        redactor: Redactor,
    ) -> Result<Started, JobError> {
        let Prepared {
            mut url,
            mut origin,
            mut method,
            headers,
            mut body,
            follow_redirects,
            policy,
            injection,
            token,
            client,
            epoch,
            redactor_key: (credential, _),
            ..
        } = job;
        let mut header_map = build_headers(&headers, &injection, &token)?;
        // A signing key is needed again at every hop; any other token is
        // already in the (sensitive) header and dropped here.
        let signing = sign::SignSpec::of(&injection).map(|cfg| (cfg, token));
        if signing.is_some() && streamed.is_some() {
            return Err(JobError::Internal(
                "a signed request needs its whole body before sending",
            ));
        }
        let mut stream_sent = false;
        let mut hops = 0;
        loop {
            if !epoch.is_current() {
                return Err(JobError::LockedBeforeSend);
            }
            let mut hop_headers = header_map.clone();
            if let Some((cfg, key)) = &signing {
                // Each hop is signed for its own method, URL and body.
                sign::prepare(
                    cfg,
                    method.as_str(),
                    &url,
                    &mut hop_headers,
                    body.as_deref(),
                    crate::vault::store::now_secs(),
                )
                .and_then(|p| p.sign(key.expose(), &mut hop_headers))?;
            }
            let sent = sent_request(
                &method,
                &url,
                &hop_headers,
                body.as_ref().map(|b| b.len() as u64).or_else(|| {
                    streamed
                        .as_ref()
                        .and_then(|s| http_body::Body::size_hint(s).exact())
                }),
                streamed.is_some(),
                (&injection, &credential),
                &redactor,
            );
            let mut req = client
                .request(method.clone(), url.clone())
                .headers(hop_headers);
            if let Some(b) = &body {
                req = req.body(b.clone());
            } else if let Some(s) = streamed.take() {
                req = req.body(s);
                stream_sent = true;
            }
            let mut resp = req.send().await.map_err(|e| upstream_error(&e, &origin))?;
            let status = resp.status();
            if follow_redirects && status.is_redirection() {
                if let Some(next) = redirect_target(&resp, &url)? {
                    hops += 1;
                    if hops > MAX_REDIRECTS {
                        return Err(JobError::TooManyRedirects { max: MAX_REDIRECTS });
                    }
                    // The Location is upstream text: no message below quotes
                    // any part of it (see `redirect_refused`).
                    let next_origin = Origin::of_url(&next).map_err(|e| redirect_refused(&e))?;
                    if next_origin != origin {
                        return Err(JobError::CrossOriginRedirect { origin });
                    }
                    if redirect_drops_body(status, &method) {
                        method = Method::GET;
                        body = None;
                        // The body's type goes with the body, as curl does
                        // for the type -d adds (and fetch for any).
                        header_map.remove(reqwest::header::CONTENT_TYPE);
                    } else if stream_sent {
                        return Err(JobError::RedirectResend {
                            status: status.as_u16(),
                        });
                    }
                    let (checked, o) = policy
                        .check(method.as_str(), next.as_str())
                        .map_err(|e| redirect_refused(&e))?;
                    url = checked;
                    origin = o;
                    continue;
                }
            }
            refuse_undecoded(&resp)?;
            let mut head = head_of(&mut resp, &url, &redactor);
            head.redirects = hops as u32;
            head.sent = Some(proto::SentRequest {
                http_version: head.http_version.clone(),
                ..sent
            });
            return Ok(Started {
                head,
                resp,
                redactor,
                origin,
            });
        }
    }

    /// Reads the whole body (bounded) into a buffered response.
    pub async fn collect(&self, started: Started) -> Result<JobResponse, JobError> {
        let redactor = started.redactor.clone();
        self.collect_body(started)
            .await
            .map_err(|e| redacted(e, &redactor))
    }

    async fn collect_body(&self, started: Started) -> Result<JobResponse, JobError> {
        let Started {
            mut head,
            mut resp,
            redactor,
            origin,
        } = started;
        let max = self.max_body.min(proto::MAX_BODY);
        let expected = resp.content_length().unwrap_or(0) as usize;
        if expected > max {
            return Err(too_large(max));
        }
        let mut body = Vec::with_capacity(expected);
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| upstream_error(&e, &origin))?
        {
            if body.len() + chunk.len() > max {
                return Err(too_large(max));
            }
            body.extend_from_slice(&chunk);
        }
        head.body = redact_off_workers(&redactor, body).await;
        // The whole body is known here: announce its redacted length (the
        // upstream's would reveal how long the removed echoes were).
        if !head.body.is_empty() {
            head.headers.push(Header {
                name: "content-length".to_owned(),
                value: head.body.len().to_string().into_bytes(),
            });
        }
        Ok(head)
    }
}

/// Bodies larger than this are redacted on tokio's blocking pool: the
/// search is linear, but tens of MiB still take long enough to delay the
/// other clients the async workers answer (`status`, `lock`).
pub const REDACT_INLINE_MAX: usize = 64 * 1024;

/// Tokens longer than this have their redactor built off the async
/// workers: the automaton grows with the token (about 20 ms for 1 KiB,
/// 1.5 s for the 64 KiB maximum, in a debug build).
const BUILD_INLINE_MAX_TOKEN: usize = 512;

/// The job's redactor; `block_in_place` (not the blocking pool) for a long
/// token, so the token is borrowed rather than copied into another task.
fn build_redactor(token: &[u8], neighbours: &[Secret]) -> Redactor {
    let mut tokens: Vec<&[u8]> = vec![token];
    tokens.extend(neighbours.iter().map(Secret::expose));
    let total: usize = tokens.iter().map(|t| t.len()).sum();
    if total > BUILD_INLINE_MAX_TOKEN
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
    {
        tokio::task::block_in_place(|| Redactor::for_tokens(&tokens))
    } else {
        Redactor::for_tokens(&tokens)
    }
}

/// Redacts a whole body, on the blocking pool when it is large.
async fn redact_off_workers(redactor: &Redactor, body: Vec<u8>) -> Vec<u8> {
    if body.len() <= REDACT_INLINE_MAX {
        return redactor.redact(body);
    }
    let r = redactor.clone();
    match tokio::task::spawn_blocking(move || r.redact(body)).await {
        Ok(out) => out,
        // Only a panic in the redactor gets here; pass it on.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Runs `f` within `limit`; running out is an upstream timeout (exit 6).
pub async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or(Err(JobError::Timeout { limit }))
}

/// A response whose head has arrived and whose body has not been read.
pub struct Started {
    /// Status and (redacted) headers; `body` empty.
    pub head: JobResponse,
    pub resp: reqwest::Response,
    pub redactor: Redactor,
    pub origin: Origin,
}

impl Started {
    /// The next piece of the body, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, JobError> {
        self.resp
            .chunk()
            .await
            .map_err(|e| redacted(upstream_error(&e, &self.origin), &self.redactor))
    }
}

/// The daemon owns the response encoding: it asks for `identity` and
/// decodes nothing, so any `Content-Encoding` other than `identity`, on any
/// of its lines, is a body the redactor cannot read. Such a body could hide
/// an echo, so none of it is passed on.
fn refuse_undecoded(resp: &reqwest::Response) -> Result<(), JobError> {
    // hyper removes `chunked` and nothing else: any other transfer-coding
    // (gzip, deflate, compress) would reach the client still coded, past
    // the redactor.
    let coded = resp
        .headers()
        .get_all(reqwest::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|c| {
            let c = c.trim_ascii();
            !c.is_empty() && !c.eq_ignore_ascii_case(b"chunked")
        });
    if coded {
        return Err(JobError::TransferCoding);
    }
    let encoded = resp
        .headers()
        .get_all(reqwest::header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Err(JobError::ContentEncoding);
    }
    Ok(())
}

/// Response headers computed over the body as the upstream sent it: after
/// redaction they no longer describe it, and over an echo they would give
/// the token's length and a way to check a guess at it offline (Express's
/// default `ETag` is `W/"len-sha1"`). Dropped from every response, since a
/// streamed head leaves before the body shows whether redaction changes it.
/// Storage services name theirs too (S3's `x-amz-checksum-*`, GCS's
/// `x-goog-hash` and the stored, compressed `x-goog-stored-content-length`,
/// Azure's `x-ms-content-crc64`): matched by these prefixes.
const OF_THE_BODY: [&str; 13] = [
    "etag",
    "content-md5",
    "digest",
    "content-digest",
    "repr-digest",
    "want-content-digest",
    "x-amz-checksum-",
    "x-amz-meta-md5",
    "x-goog-hash",
    "x-goog-stored-content-",
    "x-ms-content-crc64",
    "x-ms-content-md5",
    "x-ms-blob-content-md5",
];

/// Whether a response header is computed over the body (see [`OF_THE_BODY`]).
fn of_the_body(name: &str) -> bool {
    OF_THE_BODY.iter().any(|p| {
        if p.ends_with('-') {
            name.starts_with(p)
        } else {
            name == *p
        }
    })
}

/// A redirect's target is upstream text: a refusal names the rule that
/// refused it, never any part of the target. A reflecting upstream could
/// put the token there, and a part of it (clipped, or a host cut at the
/// token's first '/') would escape the redactor, which knows only whole
/// echoes.
fn redirect_refused(e: &PolicyError) -> JobError {
    let why = match e {
        PolicyError::OriginNotAllowed { .. } => "it leads to another origin",
        PolicyError::PathNotAllowed { .. } => "its path is outside the credential's --path-prefix",
        PolicyError::MethodNotAllowed { .. } => {
            "its method is outside the credential's --method rules"
        }
        PolicyError::InsecureHttp { .. } => "it leads to plain http off loopback",
        PolicyError::Userinfo => "it carries userinfo",
        PolicyError::AmbiguousPath { .. } => "its path has an encoded slash or dot segment",
        _ => "its target is refused by the credential's policy",
    };
    JobError::RedirectRefused { why }
}

fn head_of(resp: &mut reqwest::Response, url: &Url, redactor: &Redactor) -> JobResponse {
    let version = match resp.version() {
        reqwest::Version::HTTP_09 => "HTTP/0.9",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    };
    let status = resp.status();
    // Content-Length is dropped: after decoding and redaction it no longer
    // describes the body, and would reveal the removed echoes' length.
    // `collect` adds the true length of a buffered body. Validators and
    // digests of the body go too (see `OF_THE_BODY`).
    let headers = std::mem::take(resp.headers_mut())
        .iter()
        .filter(|(name, _)| *name != reqwest::header::CONTENT_LENGTH && !of_the_body(name.as_str()))
        .map(|(name, value)| Header {
            name: redactor.redact_message(name.as_str()),
            value: redact_value(redactor, value.as_bytes()),
        })
        .collect();
    JobResponse {
        status: status.as_u16(),
        http_version: version.to_owned(),
        reason: status.canonical_reason().unwrap_or("").to_owned(),
        headers,
        body: Vec::new(),
        url: redactor.redact_message(url.as_str()),
        redirects: 0,
        sent: None,
    }
}

/// What vaultd asks for: a plain body, the only kind the redactor reads
/// (see `refuse_undecoded`); the client's own Accept-Encoding is dropped
/// (`build_headers`).
const SENT_ACCEPT_ENCODING: &str = "identity";

/// One hop's request as `vaultctl request -v` shows it: the request line,
/// `Host`, the headers vaultd set (the client's, a signature's), those the
/// HTTP client adds, and the credential's header with a placeholder
/// instead of its value (SECURITY.md property 7: nothing a client sees may
/// hold a byte of the token). Every other value passes the redactor too,
/// as a redirect's target is upstream text.
fn sent_request(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    body_len: Option<u64>,
    streamed: bool,
    (injection, credential): (&Injection, &str),
    redactor: &Redactor,
) -> proto::SentRequest {
    let mut out = Vec::with_capacity(headers.len() + 4);
    let mut add = |name: &str, value: Vec<u8>| {
        out.push(Header {
            name: name.to_owned(),
            value,
        })
    };
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => String::new(),
    };
    add("host", redactor.redact_message(&host).into_bytes());
    for (name, value) in headers {
        let value = if value.is_sensitive() {
            let placeholder = format!("<credential {credential}>");
            match injection {
                Injection::Bearer => format!("Bearer {placeholder}"),
                _ => placeholder,
            }
            .into_bytes()
        } else {
            redact_value(redactor, value.as_bytes())
        };
        add(name.as_str(), value);
    }
    if !headers.contains_key(reqwest::header::ACCEPT) {
        add("accept", b"*/*".to_vec());
    }
    if !headers.contains_key(reqwest::header::ACCEPT_ENCODING) {
        add("accept-encoding", SENT_ACCEPT_ENCODING.as_bytes().to_vec());
    }
    if let Some(n) = body_len {
        add("content-length", n.to_string().into_bytes());
    } else if streamed {
        add("transfer-encoding", b"chunked".to_vec());
    }
    let mut target = url.path().to_owned();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    proto::SentRequest {
        method: method.to_string(),
        target: redactor.redact_message(&target),
        // The response's, once it has come (`send_hops`).
        http_version: String::new(),
        headers: out,
    }
}

/// A header value: redacted as bytes, and (when it is text) also ignoring
/// case, as a `Location` may carry the token in a lower-cased host.
fn redact_value(redactor: &Redactor, value: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(value) {
        Ok(s) => redactor.redact_message(s).into_bytes(),
        Err(_) => redactor.redact(value.to_vec()),
    }
}

/// The client's headers plus the credential, which is marked sensitive so
/// hyper's HPACK never indexes it and `Debug` never shows it. A signing
/// credential adds nothing here: its headers depend on each hop.
fn build_headers(
    headers: &[Header],
    injection: &Injection,
    token: &Secret,
) -> Result<HeaderMap, JobError> {
    let mut map = HeaderMap::with_capacity(headers.len() + 2);
    // Without it any coding is acceptable (RFC 9110 §12.5.3).
    map.insert(
        reqwest::header::ACCEPT_ENCODING,
        HeaderValue::from_static(SENT_ACCEPT_ENCODING),
    );
    for h in headers {
        // The daemon owns the response encoding: it asks for `identity`,
        // and a client's own Accept-Encoding or TE could ask for an
        // encoding the redactor cannot read. Dropped, not refused: the body
        // arrives plain either way.
        if h.name.eq_ignore_ascii_case("accept-encoding") || h.name.eq_ignore_ascii_case("te") {
            continue;
        }
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| JobError::HeaderName {
            name: h.name.clone(),
        })?;
        let value = HeaderValue::from_bytes(&h.value).map_err(|_| JobError::HeaderValue {
            name: name.to_string(),
        })?;
        map.append(name, value);
    }
    let (name, raw): (HeaderName, Zeroizing<Vec<u8>>) = match injection {
        Injection::Bearer => {
            let mut v = Zeroizing::new(Vec::with_capacity(7 + token.len()));
            v.extend_from_slice(b"Bearer ");
            v.extend_from_slice(token.expose());
            (reqwest::header::AUTHORIZATION, v)
        }
        Injection::Header { name } => {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| JobError::Internal("stored header name is invalid"))?;
            (n, Zeroizing::new(token.expose().to_vec()))
        }
        // Signed per hop in `exchange`; the key itself is never a header.
        Injection::Sign { .. } => return Ok(map),
    };
    let mut value = HeaderValue::from_bytes(&raw)
        .map_err(|_| JobError::Internal("stored token is not a valid header value"))?;
    value.set_sensitive(true);
    map.insert(name, value);
    Ok(map)
}

fn redirect_target(resp: &reqwest::Response, base: &Url) -> Result<Option<Url>, JobError> {
    let Some(loc) = resp.headers().get(reqwest::header::LOCATION) else {
        return Ok(None);
    };
    let loc = loc.to_str().map_err(|_| JobError::LocationNotText)?;
    base.join(loc)
        .map(Some)
        .map_err(|_| JobError::LocationNotUrl)
}

/// As curl -L: 303 turns any method but HEAD into GET; 301 and 302 turn POST
/// into GET. 307 and 308 keep method and body.
fn redirect_drops_body(status: StatusCode, method: &Method) -> bool {
    match status.as_u16() {
        303 => *method != Method::HEAD,
        301 | 302 => *method == Method::POST,
        _ => false,
    }
}

/// The same error with every echo of the job's tokens removed from its
/// message, the code decided first, by type: an error built from upstream
/// text (a redirect, a host, a transport error) leaves the job layer only
/// this way.
fn redacted(e: JobError, redactor: &Redactor) -> JobError {
    match e {
        r @ JobError::Redacted { .. } => r,
        other => JobError::Redacted {
            code: crate::error::job_code(&other),
            message: redactor.redact_message(&crate::error::job_message(&other)),
        },
    }
}

fn too_large(max: usize) -> JobError {
    JobError::TooLarge {
        which: "response",
        max,
    }
}

/// One line for the user: what failed, against which origin, and why,
/// without reqwest's URL (it may carry a query the user considers private).
fn upstream_error(e: &reqwest::Error, origin: &Origin) -> JobError {
    if let Some(u) = find_in_chain::<Untrusted>(e) {
        return JobError::Listener(u.clone());
    }
    let msg = if e.is_timeout() {
        format!("request to {origin} timed out")
    } else if let Some(tls) = find_tls_error(e) {
        let hint = match tls {
            rustls::Error::InvalidCertificate(_) => {
                " (the certificate is not trusted: add its CA to extra_ca in the config)"
            }
            _ => "",
        };
        format!("TLS failure talking to {origin}: {tls}{hint}")
    } else if e.is_connect() {
        format!("cannot connect to {origin}: {}", root_cause(e))
    } else {
        format!("request to {origin} failed: {}", root_cause(e))
    };
    JobError::Transport { detail: msg }
}

/// The first error of type `T` in `e`'s source chain.
fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        // io::Error's source() skips the error it wraps: look inside.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            return find_tls_error(inner);
        }
        cur = err.source();
    }
    None
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// A request body fed piece by piece from the client's socket. Bounded
/// channel: the client is read no faster than the upstream takes the body.
/// The sender ends it with an empty piece ([`ChannelBody::END`]).
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    /// The length the client announced, if any: sent upstream as
    /// `Content-Length` (hyper takes it from the size hint), since many
    /// servers refuse a chunked upload. The client's framing has already
    /// held it to that length, and hyper checks it again.
    len: Option<u64>,
}

impl ChannelBody {
    /// The piece that ends the body.
    pub const END: Bytes = Bytes::new();

    /// The body fed by `rx`, of a known length when `len` says it (then
    /// sent with a `Content-Length`, else chunked).
    pub fn sized(
        rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
        len: Option<u64>,
    ) -> reqwest::Body {
        reqwest::Body::wrap(ChannelBody { rx, len })
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        // An empty piece is the sender's explicit end; a channel closed
        // without one is an upload cut short (the job ended first), which
        // must not reach the upstream as a complete body.
        self.rx.poll_recv(cx).map(|item| match item {
            Some(Ok(b)) if b.is_empty() => None,
            Some(r) => Some(r.map(http_body::Frame::data)),
            None => Some(Err(std::io::Error::other("the upload was cut short"))),
        })
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.len.map_or_else(
            http_body::SizeHint::default,
            http_body::SizeHint::with_exact,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hosts the proxy is never used for, and a few it is.
    #[test]
    fn loopback_hosts_are_never_proxied() {
        for (url, lo) in [
            ("https://127.0.0.1/", true),
            ("https://127.9.9.9:8443/", true),
            ("https://[::1]/", true),
            ("https://[::ffff:127.0.0.1]/", true),
            ("https://localhost/", true),
            ("https://LOCALHOST./", true),
            ("https://api.localhost/", true),
            ("https://example.org/", false),
            ("https://localhost.example/", false),
            ("https://10.0.0.1/", false),
            ("https://[2001:db8::1]/", false),
        ] {
            let u = Url::parse(url).unwrap();
            assert_eq!(is_loopback_host(&u), lo, "{url}");
        }
    }
}
