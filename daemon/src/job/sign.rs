//! HTTP Message Signatures (RFC 9421) for signing credentials: the
//! signature base, `Signature-Input` / `Signature`, `Content-Digest`
//! (RFC 9530), and the key material behind them.
//!
//! Why sign instead of attaching a token: the key never crosses the network,
//! so an upstream log, a TLS-terminating proxy or an echoing endpoint sees
//! only a signature bound to one method, URL, body and time window.
//!
//! Key storage (the credential's zeroized `value`):
//! - `hmac-sha256`: the raw shared secret, at least [`MIN_HMAC_KEY`] bytes.
//! - `ed25519`: a PKCS#8 DER document (v1 or ring's v2). Imports may also be
//!   PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey` writes) or the
//!   bare 32-byte RFC 8032 seed; both are normalized to DER before storing.
//!
//! Only `ring` does crypto here. ring does not wipe its own key schedules, so
//! key objects live for one signature and are dropped at once.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proto::{Injection, Secret, SigAlg};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use ring::signature::{Ed25519KeyPair, KeyPair};
use ring::{digest, hmac, rand};
use url::Url;
use zeroize::Zeroizing;

use crate::text::{clip, is_tchar};

/// The signature label on every request (`sig1=...`).
pub const LABEL: &str = "sig1";

/// Shorter HMAC secrets are refused: they can be brute-forced from a single
/// signed request an attacker captured.
pub const MIN_HMAC_KEY: usize = 16;

/// Most components one credential may cover; keeps the stored spec and the
/// headers small.
const MAX_COMPONENTS: usize = 32;

/// Longest `keyid` accepted.
const MAX_KEYID: usize = 256;

/// Longest `--sig-ttl`: a year. A signature valid for longer is a token.
const MAX_TTL: u64 = 365 * 24 * 3600;

/// Derived components (RFC 9421 §2.2) that can be computed for a request.
/// `@query-param` needs a parameter and `@status` is for responses: neither
/// is offered.
pub const DERIVED: [&str; 7] = [
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@request-target",
    "@path",
    "@query",
];

/// Fields a credential may not cover: the signature's own headers, and
/// `host`, which reqwest writes from the URL (cover `@authority` instead).
const NOT_COVERABLE: [&str; 3] = ["signature", "signature-input", "host"];

/// Headers the daemon writes for a signing credential; a client may not set
/// them (they would contradict or shadow the daemon's).
pub const SIGNING_HEADERS: [&str; 3] = ["signature", "signature-input", "content-digest"];

/// PKCS#8 v1 header of an Ed25519 private key (RFC 8410), before the seed.
const PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A covered component the request does not carry: the request cannot
    /// be signed as the credential requires, so it is refused (nothing sent).
    #[error(
        "the credential's signature covers {component:?}, which this request does not carry{hint}"
    )]
    Missing {
        component: String,
        hint: &'static str,
    },
    /// RFC 9421 §2.5: the signature base is US-ASCII. A covered field with
    /// other bytes would be signed as bytes no conforming verifier rebuilds,
    /// so the request is refused rather than sent with a signature that
    /// means something different to each side.
    #[error(
        "header {header:?} is covered by the signature but holds bytes outside printable US-ASCII (RFC 9421 §2.5)"
    )]
    NonAscii { header: String },
    /// A URL character outside RFC 3986 (`{ } | ^ [ ] \` and backtick),
    /// which the WHATWG parser leaves raw: servers and proxies re-encode it
    /// differently, so the signed URI would not be the one verified.
    #[error(
        "the URL holds {ch:?}, which RFC 3986 does not allow unencoded; a signed request needs it percent-encoded ({})",
        percent(*ch)
    )]
    UnsafeUrl { ch: char },
    /// The stored key does not load. Never says more: the message must not
    /// describe key bytes.
    #[error("the credential's signing key is unusable")]
    Key,
    /// Signing settings given at `add` that do not hold.
    #[error("{reason}")]
    BadSpec { reason: String },
    /// Key material given at `add` that is not a key of its algorithm
    /// (the message never describes the bytes).
    #[error("{reason}")]
    BadKey { reason: String },
}

fn bad_spec(reason: impl Into<String>) -> SignError {
    SignError::BadSpec {
        reason: reason.into(),
    }
}

fn bad_key(reason: impl Into<String>) -> SignError {
    SignError::BadKey {
        reason: reason.into(),
    }
}

/// The signing settings of a credential, taken from its `Injection::Sign`.
#[derive(Debug, Clone, Copy)]
pub struct SignSpec<'a> {
    pub alg: SigAlg,
    pub keyid: Option<&'a str>,
    pub ttl_secs: Option<u64>,
    /// Empty: the default set (see [`covered`]).
    pub components: &'a [String],
}

impl<'a> SignSpec<'a> {
    pub fn of(injection: &'a Injection) -> Option<SignSpec<'a>> {
        match injection {
            Injection::Sign {
                alg,
                keyid,
                ttl_secs,
                components,
            } => Some(SignSpec {
                alg: *alg,
                keyid: keyid.as_deref(),
                ttl_secs: *ttl_secs,
                components,
            }),
            _ => None,
        }
    }
}

/// The request being signed, as it will go on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub method: &'a str,
    /// Normalized, without fragment: exactly what reqwest sends.
    pub url: &'a Url,
    pub headers: &'a HeaderMap,
    pub body: Option<&'a [u8]>,
}

/// Signature parameters (RFC 9421 §2.3), serialized in this order.
#[derive(Debug, Clone, Default)]
pub struct Params<'a> {
    pub created: u64,
    pub expires: Option<u64>,
    pub keyid: Option<&'a str>,
    pub alg: Option<&'a str>,
}

/// Checks and normalizes a signing injection at `add` time: covered
/// components lower-cased, each one that can be computed for a request, no
/// duplicates; a `keyid` that serializes as a plain sf-string; a sane TTL.
pub fn normalize(injection: Injection) -> Result<Injection, SignError> {
    let Injection::Sign {
        alg,
        keyid,
        ttl_secs,
        components,
    } = injection
    else {
        return Ok(injection);
    };
    if let Some(k) = &keyid {
        let printable = k
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if k.is_empty() || k.len() > MAX_KEYID || !printable {
            return Err(bad_spec(format!(
                "invalid --keyid: 1-{MAX_KEYID} printable ASCII characters, without '\"' or '\\'"
            )));
        }
    }
    if let Some(t) = ttl_secs {
        if t == 0 || t > MAX_TTL {
            return Err(bad_spec(format!(
                "invalid --sig-ttl {t}: between 1 and {MAX_TTL} seconds"
            )));
        }
    }
    if components.len() > MAX_COMPONENTS {
        return Err(bad_spec(format!(
            "at most {MAX_COMPONENTS} covered components"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(components.len());
    for c in components {
        let c = c.to_ascii_lowercase();
        if let Some(derived) = c.strip_prefix('@') {
            if !DERIVED.contains(&c.as_str()) {
                return Err(bad_spec(format!(
                    "cannot cover @{}: supported derived components are {}",
                    clip(derived),
                    DERIVED.join(" ")
                )));
            }
        } else if c.is_empty() || c.len() > 256 || !c.bytes().all(is_tchar) {
            return Err(bad_spec(format!(
                "cannot cover \"{}\": not a header name or derived component",
                clip(&c)
            )));
        } else if NOT_COVERABLE.contains(&c.as_str()) {
            return Err(bad_spec(format!(
                "cannot cover {c}: the daemon controls it (cover @authority for the host)"
            )));
        }
        if out.contains(&c) {
            return Err(bad_spec(format!("component {c} is listed twice")));
        }
        out.push(c);
    }
    Ok(Injection::Sign {
        alg,
        keyid,
        ttl_secs,
        components: out,
    })
}

/// The components covered on one request. A credential's own list is used
/// as is (every entry required); the default is `@method`, `@target-uri`,
/// then `content-digest` when there is a body and `content-type` when the
/// request has one, so an unsigned header can never be slipped in beside a
/// signed body.
pub fn covered(configured: &[String], has_body: bool, has_content_type: bool) -> Vec<String> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let mut v = vec!["@method".to_owned(), "@target-uri".to_owned()];
    if has_body {
        v.push("content-digest".into());
    }
    if has_content_type {
        v.push("content-type".into());
    }
    v
}

/// `sha-256=:<base64>:` (RFC 9530) of a body.
pub fn content_digest(body: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, body);
    format!("sha-256=:{}:", STANDARD.encode(d.as_ref()))
}

/// The inner list with parameters, e.g.
/// `("@method" "@target-uri");created=1;keyid="k";alg="ed25519"`: the value
/// of `Signature-Input` after `sig1=`, and of the `@signature-params` line.
pub fn signature_params(components: &[String], p: &Params<'_>) -> String {
    let mut s = String::from("(");
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push('"');
        s.push_str(c);
        s.push('"');
    }
    s.push(')');
    s.push_str(&format!(";created={}", p.created));
    if let Some(e) = p.expires {
        s.push_str(&format!(";expires={e}"));
    }
    if let Some(k) = p.keyid {
        s.push_str(&format!(";keyid=\"{k}\""));
    }
    if let Some(a) = p.alg {
        s.push_str(&format!(";alg=\"{a}\""));
    }
    s
}

/// The signature base (RFC 9421 §2.5): one `"name": value` line per
/// covered component, then the `@signature-params` line, no final newline.
pub fn signature_base(
    components: &[String],
    msg: &Message<'_>,
    params: &str,
) -> Result<Vec<u8>, SignError> {
    let mut base = Vec::with_capacity(256);
    for c in components {
        base.push(b'"');
        base.extend_from_slice(c.as_bytes());
        base.extend_from_slice(b"\": ");
        base.extend_from_slice(&component_value(c, msg)?);
        base.push(b'\n');
    }
    base.extend_from_slice(b"\"@signature-params\": ");
    base.extend_from_slice(params.as_bytes());
    Ok(base)
}

fn component_value(name: &str, msg: &Message<'_>) -> Result<Vec<u8>, SignError> {
    let url = msg.url;
    let v = match name {
        "@method" => msg.method.to_owned(),
        "@target-uri" => url.as_str().to_owned(),
        "@authority" => authority(url),
        "@scheme" => url.scheme().to_owned(),
        "@request-target" => match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        },
        "@path" => url.path().to_owned(),
        "@query" => format!("?{}", url.query().unwrap_or("")),
        field => return field_value(field, msg),
    };
    Ok(v.into_bytes())
}

/// `host[:port]`, lower case, default port omitted (as `Url` keeps it).
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// RFC 9421 §2.1: each field line's value trimmed, lines joined by ", ".
/// `content-length` is written by hyper from the body, so it is computed
/// when the request does not carry one.
fn field_value(name: &str, msg: &Message<'_>) -> Result<Vec<u8>, SignError> {
    let mut out = Vec::new();
    let mut found = false;
    for v in msg.headers.get_all(name) {
        if !v
            .as_bytes()
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(SignError::NonAscii {
                header: name.to_owned(),
            });
        }
        if found {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(v.as_bytes().trim_ascii());
        found = true;
    }
    if found {
        return Ok(out);
    }
    if name == "content-length" {
        if let Some(b) = msg.body {
            return Ok(b.len().to_string().into_bytes());
        }
    }
    let hint = match name {
        "content-length" => " (it is only sent with a body)",
        "content-digest" => "",
        _ => " (add it with -H)",
    };
    Err(SignError::Missing {
        component: name.to_owned(),
        hint,
    })
}

/// Signs a signature base with the credential's key.
pub fn sign_base(alg: SigAlg, key: &[u8], base: &[u8]) -> Result<Vec<u8>, SignError> {
    match alg {
        SigAlg::HmacSha256 => {
            let k = hmac::Key::new(hmac::HMAC_SHA256, key);
            Ok(hmac::sign(&k, base).as_ref().to_vec())
        }
        SigAlg::Ed25519 => {
            let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key).map_err(|_| SignError::Key)?;
            Ok(kp.sign(base).as_ref().to_vec())
        }
    }
}

/// A request made ready to sign: `Content-Digest` in place, base computed.
/// Splitting this from [`ToSign::sign`] lets `explain` run every check
/// without touching the key.
#[derive(Debug)]
pub struct ToSign {
    pub alg: SigAlg,
    /// `(...)`;params, as in `Signature-Input` after the label.
    pub params: String,
    pub base: Vec<u8>,
    /// The `Content-Digest` value added, if any.
    pub digest: Option<String>,
}

/// Characters the WHATWG URL parser may leave raw in a path, query or
/// fragment although RFC 3986 has no place for them there.
const NOT_RFC3986: &[char] = &['{', '}', '|', '^', '[', ']', '\\', '`', '"', '<', '>', ' '];

fn percent(ch: char) -> String {
    format!("%{:02X}", ch as u32)
}

/// Adds `Content-Digest` (when covered) to `headers`, after removing any
/// signing header a previous hop left, and builds the signature base.
pub fn prepare(
    cfg: &SignSpec<'_>,
    method: &str,
    url: &Url,
    headers: &mut HeaderMap,
    body: Option<&[u8]>,
    now: u64,
) -> Result<ToSign, SignError> {
    if let Some(ch) = url[url::Position::BeforePath..]
        .chars()
        .find(|c| NOT_RFC3986.contains(c))
    {
        return Err(SignError::UnsafeUrl { ch });
    }
    for h in SIGNING_HEADERS {
        headers.remove(h);
    }
    let components = covered(
        cfg.components,
        body.is_some(),
        headers.contains_key(CONTENT_TYPE),
    );
    let digest = components
        .iter()
        .any(|c| c == "content-digest")
        .then(|| content_digest(body.unwrap_or_default()));
    if let Some(d) = &digest {
        headers.insert(
            HeaderName::from_static("content-digest"),
            HeaderValue::from_str(d).map_err(|_| SignError::Key)?,
        );
    }
    let p = Params {
        created: now,
        expires: cfg.ttl_secs.map(|t| now.saturating_add(t)),
        keyid: cfg.keyid,
        alg: Some(cfg.alg.as_str()),
    };
    let params = signature_params(&components, &p);
    let msg = Message {
        method,
        url,
        headers,
        body,
    };
    let base = signature_base(&components, &msg, &params)?;
    Ok(ToSign {
        alg: cfg.alg,
        params,
        base,
        digest,
    })
}

impl ToSign {
    /// Signs and adds `Signature-Input` and `Signature`.
    pub fn sign(self, key: &[u8], headers: &mut HeaderMap) -> Result<(), SignError> {
        let sig = sign_base(self.alg, key, &self.base)?;
        let input = format!("{LABEL}={}", self.params);
        let value = format!("{LABEL}=:{}:", STANDARD.encode(sig));
        for (name, v) in [("signature-input", input), ("signature", value)] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(&v).map_err(|_| SignError::Key)?,
            );
        }
        Ok(())
    }

    /// What `explain` shows: the headers that would be added, with the
    /// parameters known in advance and placeholders for the timestamps
    /// (taken when the request is sent) and for every computed value.
    pub fn describe(&self, cfg: &SignSpec<'_>) -> Vec<String> {
        let mut out = Vec::new();
        if self.digest.is_some() {
            out.push("Content-Digest: sha-256=:<SHA-256 of the body>:".to_owned());
        }
        // Component names are tokens or `@name`: no ';' inside the list.
        let list = &self.params[..self.params.find(";created=").unwrap_or(self.params.len())];
        let mut line = format!("Signature-Input: {LABEL}={list};created=<time of sending>");
        if let Some(t) = cfg.ttl_secs {
            line.push_str(&format!(";expires=<created+{t}>"));
        }
        if let Some(k) = cfg.keyid {
            line.push_str(&format!(";keyid=\"{k}\""));
        }
        line.push_str(&format!(";alg=\"{}\"", self.alg.as_str()));
        out.push(line);
        out.push(format!(
            "Signature: {LABEL}=:<{} signature of the signature base>:",
            self.alg.as_str()
        ));
        out
    }
}

/// A new Ed25519 key made in the daemon, as PKCS#8 DER. An HMAC secret is
/// never generated: the upstream must know it, and secrets only ever enter
/// the daemon, they do not leave it.
pub fn generate(alg: SigAlg) -> Result<Secret, SignError> {
    match alg {
        SigAlg::Ed25519 => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rand::SystemRandom::new()).map_err(|_| {
                bad_key("cannot generate a key: the system random generator failed")
            })?;
            Ok(Secret::from_slice(doc.as_ref()))
        }
        SigAlg::HmacSha256 => Err(bad_key(
            "an hmac-sha256 secret is shared with the upstream: import the one it issued with --import",
        )),
    }
}

/// Validates imported key material and normalizes it for storage (see the
/// module doc). Messages never describe the bytes.
pub fn import(alg: SigAlg, raw: Secret) -> Result<Secret, SignError> {
    match alg {
        SigAlg::HmacSha256 => {
            if raw.len() < MIN_HMAC_KEY {
                return Err(bad_key(format!(
                    "an hmac-sha256 secret needs at least {MIN_HMAC_KEY} bytes"
                )));
            }
            Ok(raw)
        }
        SigAlg::Ed25519 => {
            let der = if looks_like_pem(raw.expose()) {
                pem_to_der(raw.expose())?
            } else if raw.len() == 32 {
                let mut v = Vec::with_capacity(PKCS8_V1_PREFIX.len() + 32);
                v.extend_from_slice(&PKCS8_V1_PREFIX);
                v.extend_from_slice(raw.expose());
                Secret::new(v)
            } else {
                raw
            };
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.expose()).map_err(|_| {
                bad_key(
                    "not an Ed25519 private key: expected PKCS#8 (DER or PEM) or a 32-byte seed",
                )
            })?;
            Ok(der)
        }
    }
}

/// The raw Ed25519 public key (32 bytes) of a stored private key.
pub fn public_key(key: &[u8]) -> Result<Vec<u8>, SignError> {
    let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key).map_err(|_| SignError::Key)?;
    Ok(kp.public_key().as_ref().to_vec())
}

fn looks_like_pem(b: &[u8]) -> bool {
    b.trim_ascii_start().starts_with(b"-----BEGIN ")
}

/// The DER inside `-----BEGIN PRIVATE KEY-----`, decoded into buffers that
/// are zeroized and never reallocated.
fn pem_to_der(pem: &[u8]) -> Result<Secret, SignError> {
    const BEGIN: &[u8] = b"-----BEGIN PRIVATE KEY-----";
    const END: &[u8] = b"-----END PRIVATE KEY-----";
    let text = pem.trim_ascii();
    let inner = text
        .strip_prefix(BEGIN)
        .and_then(|t| t.strip_suffix(END))
        .ok_or_else(|| {
            bad_key("expected an unencrypted PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----)")
        })?;
    let mut b64 = Zeroizing::new(Vec::with_capacity(inner.len()));
    b64.extend(inner.iter().copied().filter(|b| !b.is_ascii_whitespace()));
    let mut der = Vec::with_capacity(b64.len());
    let ok = STANDARD.decode_vec(&b64[..], &mut der).is_ok();
    let der = Secret::new(der);
    if !ok {
        return Err(bad_key("the PEM key is not valid base64"));
    }
    Ok(der)
}

/// RFC 9110 tchar.
#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9421 §B.1.5 `test-shared-secret`, base64 as printed in the RFC.
    const RFC_SHARED_SECRET: &str =
        "uzvJfB4u3N0Jy4T7NZ75MDVcr8zSTInedJtkgcu46YW4XByzNJjxBdtjUkdJPBtbmHhIDi6pcl8jsasjlTMtDQ==";

    /// RFC 9421 §B.1.4 `test-key-ed25519`, the private key as printed.
    const RFC_ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
";

    /// Its public key (SubjectPublicKeyInfo), as printed.
    const RFC_ED25519_SPKI_B64: &str =
        "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";

    /// The `test-request` of RFC 9421 §B.2.
    fn rfc_request() -> (Url, HeaderMap, &'static [u8]) {
        let url = Url::parse("https://example.com/foo?param=Value&Pet=dog").unwrap();
        let mut h = HeaderMap::new();
        let mut add = |n: &'static str, v: &'static str| {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        };
        add("host", "example.com");
        add("date", "Tue, 20 Apr 2021 02:07:55 GMT");
        add("content-type", "application/json");
        add(
            "content-digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        );
        add("content-length", "18");
        (url, h, br#"{"hello": "world"}"#)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rfc9421_b_2_5_hmac_sha256() {
        let (url, headers, body) = rfc_request();
        let msg = Message {
            method: "POST",
            url: &url,
            headers: &headers,
            body: Some(body),
        };
        let components = strings(&["date", "@authority", "content-type"]);
        let params = signature_params(
            &components,
            &Params {
                created: 1618884473,
                keyid: Some("test-shared-secret"),
                ..Params::default()
            },
        );
        // Signature-Input, as the RFC prints it (RFC 8792 wrapping undone).
        assert_eq!(
            format!("sig-b25={params}"),
            r#"sig-b25=("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret""#
        );
        let base = signature_base(&components, &msg, &params).unwrap();
        let expected = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
                        \"@authority\": example.com\n\
                        \"content-type\": application/json\n\
                        \"@signature-params\": (\"date\" \"@authority\" \"content-type\");created=1618884473;keyid=\"test-shared-secret\"";
        assert_eq!(String::from_utf8(base.clone()).unwrap(), expected);
        let key = Zeroizing::new(STANDARD.decode(RFC_SHARED_SECRET).unwrap());
        let key = import(SigAlg::HmacSha256, Secret::from_slice(&key)).unwrap();
        let sig = sign_base(SigAlg::HmacSha256, key.expose(), &base).unwrap();
        assert_eq!(
            STANDARD.encode(sig),
            "pxcQw6G3AjtMBQjwo8XzkZf/bws5LelbaMk5rGIGtE8="
        );
    }

    #[test]
    fn rfc9421_b_2_6_ed25519() {
        let (url, headers, body) = rfc_request();
        let msg = Message {
            method: "POST",
            url: &url,
            headers: &headers,
            body: Some(body),
        };
        let components = strings(&[
            "date",
            "@method",
            "@path",
            "@authority",
            "content-type",
            "content-length",
        ]);
        let params = signature_params(
            &components,
            &Params {
                created: 1618884473,
                keyid: Some("test-key-ed25519"),
                ..Params::default()
            },
        );
        assert_eq!(
            format!("sig-b26={params}"),
            r#"sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#
        );
        let base = signature_base(&components, &msg, &params).unwrap();
        let expected = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\
                        \"@method\": POST\n\
                        \"@path\": /foo\n\
                        \"@authority\": example.com\n\
                        \"content-type\": application/json\n\
                        \"content-length\": 18\n\
                        \"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
        assert_eq!(String::from_utf8(base.clone()).unwrap(), expected);
        // The RFC's key, imported the way a user would (PEM on stdin).
        let key = import(
            SigAlg::Ed25519,
            Secret::from_slice(RFC_ED25519_PEM.as_bytes()),
        )
        .unwrap();
        let sig = sign_base(SigAlg::Ed25519, key.expose(), &base).unwrap();
        // Ed25519 is deterministic: the RFC's exact bytes.
        assert_eq!(
            STANDARD.encode(&sig),
            "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
        );
        // And the public key matches the RFC's SubjectPublicKeyInfo.
        let spki = STANDARD.decode(RFC_ED25519_SPKI_B64).unwrap();
        assert_eq!(public_key(key.expose()).unwrap(), spki[12..]);
        // Verifies with the public key alone.
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &spki[12..])
            .verify(&base, &sig)
            .unwrap();
    }

    #[test]
    fn ed25519_import_forms_agree() {
        let pem_der = import(
            SigAlg::Ed25519,
            Secret::from_slice(RFC_ED25519_PEM.as_bytes()),
        )
        .unwrap();
        // The RFC key's seed is the last 32 bytes of its v1 PKCS#8.
        let seed = &pem_der.expose()[16..];
        let from_seed = import(SigAlg::Ed25519, Secret::from_slice(seed)).unwrap();
        assert_eq!(from_seed.expose(), pem_der.expose());
        let from_der = import(SigAlg::Ed25519, Secret::from_slice(pem_der.expose())).unwrap();
        assert_eq!(from_der.expose(), pem_der.expose());
        // Garbage and the wrong PEM type are refused without echoing bytes.
        for bad in [
            &b"not a key"[..],
            b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----",
            &[7u8; 31],
        ] {
            let e = import(SigAlg::Ed25519, Secret::from_slice(bad))
                .unwrap_err()
                .to_string();
            assert!(!e.contains("AAAA") && !e.contains("!!!!"), "{e}");
        }
        // Generated keys load and sign.
        let k = generate(SigAlg::Ed25519).unwrap();
        import(SigAlg::Ed25519, Secret::from_slice(k.expose())).unwrap();
        assert_eq!(public_key(k.expose()).unwrap().len(), 32);
        assert!(generate(SigAlg::HmacSha256).is_err());
        assert!(import(SigAlg::HmacSha256, Secret::from_slice(b"short")).is_err());
    }

    #[test]
    fn content_digest_matches_rfc9530() {
        // RFC 9530 §B.1's sha-256 example body.
        assert_eq!(
            content_digest(br#"{"hello": "world"}"#),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
    }

    #[test]
    fn default_components_and_headers() {
        let url = Url::parse("http://127.0.0.1:8080/api/x?y=1").unwrap();
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // Stale signing headers from a previous hop are replaced.
        h.insert("signature", HeaderValue::from_static("sig1=:old:"));
        let cfg = SignSpec {
            alg: SigAlg::HmacSha256,
            keyid: Some("k1"),
            ttl_secs: Some(60),
            components: &[],
        };
        let p = prepare(&cfg, "POST", &url, &mut h, Some(b"{}"), 100).unwrap();
        assert_eq!(
            p.params,
            r#"("@method" "@target-uri" "content-digest" "content-type");created=100;expires=160;keyid="k1";alg="hmac-sha256""#
        );
        let base = String::from_utf8(p.base.clone()).unwrap();
        assert!(base.starts_with(
            "\"@method\": POST\n\"@target-uri\": http://127.0.0.1:8080/api/x?y=1\n\"content-digest\": sha-256=:"
        ), "{base}");
        assert_eq!(
            p.describe(&cfg),
            [
                "Content-Digest: sha-256=:<SHA-256 of the body>:",
                r#"Signature-Input: sig1=("@method" "@target-uri" "content-digest" "content-type");created=<time of sending>;expires=<created+60>;keyid="k1";alg="hmac-sha256""#,
                "Signature: sig1=:<hmac-sha256 signature of the signature base>:",
            ]
        );
        p.sign(&[9u8; 32], &mut h).unwrap();
        assert!(h["signature"].to_str().unwrap().starts_with("sig1=:"));
        assert!(
            h["signature-input"]
                .to_str()
                .unwrap()
                .starts_with("sig1=(\"@method\"")
        );
        assert_eq!(h.get_all("signature").iter().count(), 1);
        // No body, no content type: just method and URI.
        let mut h = HeaderMap::new();
        let p = prepare(&cfg, "GET", &url, &mut h, None, 5).unwrap();
        assert!(
            p.params
                .starts_with(r#"("@method" "@target-uri");created=5"#)
        );
        assert!(!h.contains_key("content-digest"));
    }

    #[test]
    fn derived_components() {
        let url = Url::parse("https://Example.COM:8443/a%20b?q=1&r").unwrap();
        let h = HeaderMap::new();
        let msg = Message {
            method: "GET",
            url: &url,
            headers: &h,
            body: None,
        };
        let v = |c: &str| String::from_utf8(component_value(c, &msg).unwrap()).unwrap();
        assert_eq!(v("@authority"), "example.com:8443");
        assert_eq!(v("@scheme"), "https");
        assert_eq!(v("@path"), "/a%20b");
        assert_eq!(v("@query"), "?q=1&r");
        assert_eq!(v("@request-target"), "/a%20b?q=1&r");
        assert_eq!(v("@target-uri"), "https://example.com:8443/a%20b?q=1&r");
        let url = Url::parse("https://example.com/").unwrap();
        let msg = Message { url: &url, ..msg };
        assert_eq!(
            String::from_utf8(component_value("@query", &msg).unwrap()).unwrap(),
            "?"
        );
    }

    #[test]
    fn covered_headers_must_be_printable_ascii() {
        let url = Url::parse("https://example.com/").unwrap();
        let comps = strings(&["@method", "x-name"]);
        let cfg = SignSpec {
            alg: SigAlg::HmacSha256,
            keyid: None,
            ttl_secs: None,
            components: &comps,
        };
        let mut h = HeaderMap::new();
        h.insert("x-name", HeaderValue::from_bytes("Zoë".as_bytes()).unwrap());
        let e = prepare(&cfg, "GET", &url, &mut h, None, 1).unwrap_err();
        assert!(matches!(e, SignError::NonAscii { .. }), "{e}");
        assert!(e.to_string().contains("x-name"), "{e}");
        // Not covered: not part of the base, so not refused.
        let cfg = SignSpec {
            components: &[],
            ..cfg
        };
        prepare(&cfg, "GET", &url, &mut h, None, 1).unwrap();
    }

    #[test]
    fn urls_with_characters_outside_rfc3986_are_refused() {
        let cfg = SignSpec {
            alg: SigAlg::HmacSha256,
            keyid: None,
            ttl_secs: None,
            components: &[],
        };
        for (raw, ch) in [
            ("https://example.com/a?q={b}", '{'),
            ("https://example.com/a|b", '|'),
            ("https://example.com/a^b", '^'),
            ("https://example.com/a?q=[1]", '['),
            ("https://example.com/a?q=`b", '`'),
            ("https://example.com/a?x=b\\c", '\\'),
        ] {
            let url = Url::parse(raw).unwrap();
            let e = prepare(&cfg, "GET", &url, &mut HeaderMap::new(), None, 1).unwrap_err();
            match e {
                SignError::UnsafeUrl { ch: got } => assert_eq!(got, ch, "{raw}"),
                e => panic!("{raw}: {e}"),
            }
        }
        // Encoded forms and an IPv6 authority are fine.
        for ok in [
            "https://example.com/a%7Bb%7D?q=%5B1%5D",
            "https://[::1]:8443/x",
        ] {
            let url = Url::parse(ok).unwrap();
            prepare(&cfg, "GET", &url, &mut HeaderMap::new(), None, 1).unwrap();
        }
    }

    #[test]
    fn covered_headers_must_be_present() {
        let url = Url::parse("https://example.com/").unwrap();
        let comps = strings(&["@method", "date"]);
        let cfg = SignSpec {
            alg: SigAlg::HmacSha256,
            keyid: None,
            ttl_secs: None,
            components: &comps,
        };
        let e = prepare(&cfg, "GET", &url, &mut HeaderMap::new(), None, 1).unwrap_err();
        assert!(matches!(e, SignError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("date") && e.to_string().contains("-H"));
        // Multiple field lines are trimmed and joined.
        let mut h = HeaderMap::new();
        h.append("date", HeaderValue::from_static(" a "));
        h.append("date", HeaderValue::from_static("b"));
        let p = prepare(&cfg, "GET", &url, &mut h, None, 1).unwrap();
        assert!(
            String::from_utf8(p.base)
                .unwrap()
                .contains("\"date\": a, b\n")
        );
    }

    #[test]
    fn spec_normalization() {
        let sign = |c: &[&str], keyid: Option<&str>, ttl: Option<u64>| {
            normalize(Injection::Sign {
                alg: SigAlg::Ed25519,
                keyid: keyid.map(str::to_owned),
                ttl_secs: ttl,
                components: strings(c),
            })
        };
        let Ok(Injection::Sign { components, .. }) =
            sign(&["@Method", "Content-Type", "date"], Some("k-1"), Some(30))
        else {
            panic!("valid spec refused");
        };
        assert_eq!(components, ["@method", "content-type", "date"]);
        for bad in [
            &["@status"][..],
            &["@query-param"],
            &["host"],
            &["Signature"],
            &["signature-input"],
            &["a b"],
            &[""],
            &["date", "Date"],
        ] {
            assert!(sign(bad, None, None).is_err(), "{bad:?}");
        }
        assert!(sign(&[], Some("a\"b"), None).is_err());
        assert!(sign(&[], Some(""), None).is_err());
        assert!(sign(&[], None, Some(0)).is_err());
        assert!(sign(&[], None, Some(MAX_TTL + 1)).is_err());
        assert!(normalize(Injection::Bearer).is_ok());
    }
}
