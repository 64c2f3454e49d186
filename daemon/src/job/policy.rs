//! A credential's request policy: which origins, methods and paths its token
//! may be sent to, and which client headers may travel with it.
//!
//! The origin check runs on the URL as `url::Url` parses it (WHATWG rules:
//! scheme and host lower-cased, host percent-decoded and IDNA-mapped to
//! punycode, IPv4 spellings such as `2130706433` or `0x7f.0.0.1` turned into
//! dotted quads, default ports dropped, dot segments removed). The daemon
//! must send the [`Url`] that [`Policy::check`] returns, never the client's
//! string, so the host that was checked is the host that is connected to.
//!
//! Before parsing, the raw string is screened for spellings that different
//! parsers read differently (compare curl CVE-2022-27780 and the
//! `user@host` / backslash confusions). Those are refused rather than
//! normalized: whitespace or control characters anywhere, a backslash before
//! the query, anything but `scheme://` after the scheme, any `@` (userinfo)
//! or `%` in the authority, and a host ending in a dot.

use std::fmt;
use std::net::Ipv6Addr;

use proto::{CredentialSpec, Header, Injection};
use url::{Host, Url};

use crate::text::{clip, is_token};

/// Header names a client may never set, whatever the credential injects:
/// they change where or how the request is framed and routed.
const ALWAYS_FORBIDDEN: [&str; 5] = [
    "host",
    "proxy-authorization",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// Headers that ask for a slice of the response: an upstream that echoes the
/// token would hand it back in pieces shorter than the token, which no
/// redaction can recognise, and the client could join them.
const SLICE_HEADERS: [&str; 2] = ["range", "if-range"];

/// Headers many servers (and frameworks) read as the real method, which
/// would sidestep a credential's `--method` list.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Longest header name, method or path accepted before refusing; keeps error
/// messages (which name them) to one line.
const MAX_NAME: usize = 256;

/// The scheme of an origin; only plain and TLS HTTP exist for a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn from_str(s: &str) -> Option<Scheme> {
        if s.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else if s.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else {
            None
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// scheme + host + port (default port filled in). Display: "https://host" /
/// "http://127.0.0.1:8080" (port omitted when default; IPv6 in brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: Host<String>,
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Host`'s Display puts IPv6 addresses in brackets.
        write!(f, "{}://{}", self.scheme, self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl Origin {
    /// Parses a credential origin "scheme://host[:port]" (a trailing "/" is
    /// tolerated). Refuses: other schemes, userinfo, any path/query/fragment,
    /// empty host, host with trailing dot. Also refuses the spellings that
    /// [`Policy::check`] refuses in a request URL (percent-encoded host,
    /// backslashes, whitespace) and port 0. The host is normalized as
    /// `url::Url` does (lower case, punycode, canonical IP address).
    pub fn parse(s: &str) -> Result<Origin, PolicyError> {
        let bad = |reason: String| PolicyError::BadOrigin {
            origin: shown(s),
            reason,
        };
        let raw = screen_raw(s).map_err(|e| bad(e.reason()))?;
        if !(raw.rest.is_empty() || raw.rest == "/") {
            return Err(bad(
                "an origin is scheme://host[:port], with no path, query or fragment".into(),
            ));
        }
        let url = Url::parse(s).map_err(|e| bad(e.to_string()))?;
        let origin = Origin::of_url(&url).map_err(|e| bad(e.reason()))?;
        if origin.port == 0 {
            return Err(bad("port 0 is not a usable port".into()));
        }
        // Belt and braces: screen_raw has already ruled these out.
        if has_userinfo(&url) || url.path() != "/" || url.query().is_some() {
            return Err(bad(
                "an origin is scheme://host[:port], with no userinfo, path or query".into(),
            ));
        }
        Ok(origin)
    }

    /// The origin of a parsed URL. Refuses schemes other than http and https,
    /// a missing host, and a domain ending in a dot. Does not look at
    /// userinfo, path or query: [`Policy::check`] does.
    pub fn of_url(url: &Url) -> Result<Origin, PolicyError> {
        let scheme = Scheme::from_str(url.scheme()).ok_or_else(|| PolicyError::Scheme {
            scheme: clip(url.scheme()),
        })?;
        let host = match url.host() {
            Some(h) => h.to_owned(),
            None => return Err(PolicyError::NoHost),
        };
        if let Host::Domain(d) = &host {
            if d.is_empty() {
                return Err(PolicyError::NoHost);
            }
            if d.ends_with('.') {
                return Err(PolicyError::TrailingDot { host: clip(d) });
            }
        }
        let port = url.port().unwrap_or(scheme.default_port());
        Ok(Origin { scheme, host, port })
    }

    /// 127.0.0.0/8, ::1, and the name "localhost" (not its subdomains, and
    /// not IPv4-mapped IPv6 such as ::ffff:127.0.0.1).
    pub fn is_loopback(&self) -> bool {
        match &self.host {
            Host::Ipv4(a) => a.is_loopback(),
            Host::Ipv6(a) => *a == Ipv6Addr::LOCALHOST,
            Host::Domain(d) => d == "localhost",
        }
    }
}

/// A credential's compiled policy, built once when the credential is added/loaded.
#[derive(Debug, Clone)]
pub struct Policy {
    pub origins: Vec<Origin>,
    pub allow_insecure_http: bool,
    /// Upper case; empty means any method.
    pub methods: Vec<String>,
    /// In the form `Url::path` serializes; empty means any path.
    pub path_prefixes: Vec<String>,
}

impl Policy {
    /// Validates a spec at `add` time: >= 1 origin; each parses; an http
    /// origin that is not loopback needs allow_insecure_http; methods are
    /// HTTP tokens, stored upper-case; path prefixes start with '/', contain
    /// no '?' '#' or "..", and are already in the normalized form a request
    /// path is compared in. An injected header name must pass
    /// [`validate_header_name`].
    pub fn from_spec(spec: &CredentialSpec) -> Result<Policy, PolicyError> {
        if spec.origins.is_empty() {
            return Err(PolicyError::NoOrigins);
        }
        if let Some(Injection::Header { name }) = &spec.injection {
            validate_header_name(name)?;
        }
        let mut origins: Vec<Origin> = Vec::with_capacity(spec.origins.len());
        for s in &spec.origins {
            let o = Origin::parse(s)?;
            if o.scheme == Scheme::Http && matches!(&o.host, Host::Domain(d) if d == "localhost") {
                return Err(PolicyError::LocalhostHttp { port: o.port });
            }
            if o.scheme == Scheme::Http && !o.is_loopback() && !spec.allow_insecure_http {
                return Err(PolicyError::InsecureOrigin { origin: o });
            }
            if !origins.contains(&o) {
                origins.push(o);
            }
        }
        let mut methods: Vec<String> = Vec::with_capacity(spec.methods.len());
        for m in &spec.methods {
            if !is_token(m) || m.len() > MAX_NAME {
                return Err(PolicyError::BadMethod { method: shown(m) });
            }
            let m = m.to_ascii_uppercase();
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        let mut path_prefixes: Vec<String> = Vec::with_capacity(spec.path_prefixes.len());
        for p in &spec.path_prefixes {
            validate_prefix(p)?;
            if !path_prefixes.contains(p) {
                path_prefixes.push(p.clone());
            }
        }
        Ok(Policy {
            origins,
            allow_insecure_http: spec.allow_insecure_http,
            methods,
            path_prefixes,
        })
    }

    /// Parse the request URL with url::Url, then refuse: non-http(s);
    /// userinfo; trailing-dot host; origin not in self.origins; http to a
    /// non-loopback host unless allow_insecure_http; method not in methods
    /// (when non-empty; compared case-insensitively); path not under a prefix
    /// (when non-empty; "/api" allows "/api" and "/api/x" but not "/apix"; a
    /// prefix ending in '/' is a plain prefix; with prefixes set, a path
    /// segment that decodes to a dot segment or holds an encoded '/' or '\'
    /// is refused as ambiguous). Raw spellings that parsers disagree on are
    /// refused before parsing (see the module doc).
    ///
    /// The fragment is dropped from the returned URL. Returns the normalized
    /// URL, which is what must be sent, and its origin. A string that is not
    /// an absolute URL at all is [`PolicyError::InvalidUrl`] (not a refusal);
    /// every other error is a refusal.
    pub fn check(&self, method: &str, url: &str) -> Result<(Url, Origin), PolicyError> {
        if !is_token(method) || method.len() > MAX_NAME {
            return Err(PolicyError::InvalidMethod);
        }
        screen_raw(url)?;
        let mut parsed = Url::parse(url).map_err(|e| PolicyError::InvalidUrl {
            reason: e.to_string(),
        })?;
        if has_userinfo(&parsed) {
            return Err(PolicyError::Userinfo);
        }
        let origin = Origin::of_url(&parsed)?;
        if !self.origins.contains(&origin) {
            return Err(PolicyError::OriginNotAllowed {
                origin,
                allowed: self.origins.clone(),
            });
        }
        if origin.scheme == Scheme::Http && !origin.is_loopback() && !self.allow_insecure_http {
            return Err(PolicyError::InsecureHttp { origin });
        }
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        {
            return Err(PolicyError::MethodNotAllowed {
                method: method.to_owned(),
                allowed: self.methods.clone(),
            });
        }
        if !self.path_prefixes.is_empty() {
            let path = parsed.path();
            if is_ambiguous_path(path) {
                return Err(PolicyError::AmbiguousPath { path: clip(path) });
            }
            if !self.path_prefixes.iter().any(|p| under_prefix(path, p)) {
                return Err(PolicyError::PathNotAllowed {
                    path: clip(path),
                    allowed: self.path_prefixes.clone(),
                });
            }
        }
        parsed.set_fragment(None);
        Ok((parsed, origin))
    }

    /// Client-supplied headers: names must be valid HTTP tokens; names and
    /// values must not contain CR, LF or NUL (nor other control bytes but
    /// tab, which no header value may hold); refuse (case-insensitive) the
    /// injected header name (Injection::Header{name}), "authorization" when
    /// Injection::Bearer, "signature", "signature-input" and
    /// "content-digest" when Injection::Sign, and always "host",
    /// "proxy-authorization", "content-length", "transfer-encoding",
    /// "connection". Messages name the header, never its value.
    pub fn check_headers(injection: &Injection, headers: &[Header]) -> Result<(), PolicyError> {
        for h in headers {
            let name = h.name.as_str();
            if name.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(PolicyError::HeaderInjection { name: shown(name) });
            }
            if !is_token(name) || name.len() > MAX_NAME {
                return Err(PolicyError::InvalidHeaderName { name: shown(name) });
            }
            if h.value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(PolicyError::HeaderInjection { name: name.into() });
            }
            if h.value.iter().any(|&b| is_bad_value_byte(b)) {
                return Err(PolicyError::InvalidHeaderValue { name: name.into() });
            }
            if let Some(reason) = forbidden_header(injection, name) {
                return Err(PolicyError::ForbiddenHeader {
                    name: name.into(),
                    reason,
                });
            }
        }
        Ok(())
    }

    /// With a `--method` list, refuses the method-override headers: a server
    /// that honours them would run a method the list does not allow.
    pub fn check_method_overrides(&self, headers: &[Header]) -> Result<(), PolicyError> {
        if self.methods.is_empty() {
            return Ok(());
        }
        match headers.iter().find(|h| {
            METHOD_OVERRIDES
                .iter()
                .any(|m| h.name.eq_ignore_ascii_case(m))
        }) {
            Some(h) => Err(PolicyError::MethodOverride {
                name: shown(&h.name),
            }),
            None => Ok(()),
        }
    }
}

/// Checks the header name a credential injects (at add time): a valid HTTP
/// token, not one of the always-forbidden names, and not "authorization"
/// (a bearer token is added with `--bearer`).
pub fn validate_header_name(name: &str) -> Result<(), PolicyError> {
    let bad = |reason: &str| PolicyError::BadHeaderName {
        name: shown(name),
        reason: reason.into(),
    };
    if name.is_empty() {
        return Err(bad("a header name cannot be empty"));
    }
    if !is_token(name) || name.len() > MAX_NAME {
        return Err(bad("not a valid HTTP header name"));
    }
    if name.eq_ignore_ascii_case("authorization") {
        return Err(bad(
            "use --bearer for an `Authorization: Bearer` token instead of --header Authorization",
        ));
    }
    if ALWAYS_FORBIDDEN
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
    {
        return Err(bad(
            "this header controls routing or framing and cannot carry a token",
        ));
    }
    Ok(())
}

/// Checks a token value (at add or rotate time): non-empty, at most
/// `proto::MAX_SECRET` bytes, and a valid header value: no CR, LF, NUL or
/// other control byte except tab, and no leading or trailing space or tab
/// (HTTP strips those). The message never includes the value.
pub fn validate_token(value: &[u8]) -> Result<(), PolicyError> {
    let reason = if value.is_empty() {
        "the token is empty"
    } else if value.len() > proto::MAX_SECRET {
        "the token is longer than the 64 KiB limit"
    } else if value.iter().any(|b| matches!(b, b'\r' | b'\n')) {
        "the token contains a line break (a trailing newline from a file or echo?)"
    } else if value.contains(&0) {
        "the token contains a NUL byte"
    } else if value.iter().any(|&b| is_bad_value_byte(b)) {
        "the token contains a control character"
    } else if matches!(value.first(), Some(b' ' | b'\t'))
        || matches!(value.last(), Some(b' ' | b'\t'))
    {
        "the token starts or ends with whitespace"
    } else {
        return Ok(());
    };
    Err(PolicyError::BadToken { reason })
}

/// Why a credential spec, request or header was not accepted. Messages are
/// one line and never carry userinfo, header values or the token.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    // ---- the input itself is malformed (not a refusal) ----
    #[error("a credential needs at least one origin (--origin scheme://host[:port])")]
    NoOrigins,
    #[error("invalid origin {origin}: {reason}")]
    BadOrigin { origin: String, reason: String },
    #[error(
        "origin {origin} uses plain http to a host that is not loopback; add --allow-insecure-http to allow it"
    )]
    InsecureOrigin { origin: Origin },
    #[error("invalid method {method}: not an HTTP token")]
    BadMethod { method: String },
    #[error("invalid path prefix {prefix}: {reason}")]
    BadPathPrefix { prefix: String, reason: String },
    #[error("invalid header name {name} for the token: {reason}")]
    BadHeaderName { name: String, reason: String },
    #[error("invalid token: {reason}")]
    BadToken { reason: &'static str },
    #[error("invalid URL: {reason}")]
    InvalidUrl { reason: String },

    // ---- the request was refused by policy ----
    #[error("refused: {reason}")]
    AmbiguousUrl { reason: &'static str },
    #[error("scheme {scheme} is not allowed: only http and https")]
    Scheme { scheme: String },
    #[error("refused: the URL has no host")]
    NoHost,
    #[error(
        "refused: the URL carries userinfo (user:password@); a credential is never sent with it"
    )]
    Userinfo,
    #[error("refused: host {host} ends with a dot; write it without the trailing dot")]
    TrailingDot { host: String },
    #[error(
        "origin {origin} is not allowed for this credential (allowed: {})",
        list(allowed)
    )]
    OriginNotAllowed {
        origin: Origin,
        allowed: Vec<Origin>,
    },
    #[error(
        "refused: plain http to {origin}, which is not loopback, needs a credential added with --allow-insecure-http"
    )]
    InsecureHttp { origin: Origin },
    /// `localhost` resolves to 127.0.0.1, ::1 or both, and the job connects
    /// to whichever answers first: another local user listening on the
    /// address the service does not use would get the token in cleartext.
    /// An address literal says which one is meant; https is not affected,
    /// because TLS checks the server before the token is sent. Refused at
    /// `add`, and at job time for a credential stored before this rule.
    #[error(
        "refused: http://localhost:{port} may connect to 127.0.0.1 or ::1, and another local user can listen on the one your service does not use; bind the credential to http://127.0.0.1:{port} or http://[::1]:{port}"
    )]
    LocalhostHttp { port: u16 },
    #[error("refused: the method is not a valid HTTP token")]
    InvalidMethod,
    #[error("method {method} is not allowed for this credential (allowed: {})", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        allowed: Vec<String>,
    },
    #[error("path {path} is not allowed for this credential (allowed prefixes: {})", allowed.join(", "))]
    PathNotAllowed { path: String, allowed: Vec<String> },
    #[error(
        "refused: path {path} has an encoded slash or dot segment, which servers may read differently"
    )]
    AmbiguousPath { path: String },
    #[error("refused: header {name} contains CR, LF or NUL")]
    HeaderInjection { name: String },
    #[error("refused: header name {name} is not a valid HTTP token")]
    InvalidHeaderName { name: String },
    #[error("refused: the value of header {name} contains a control character")]
    InvalidHeaderValue { name: String },
    #[error("refused: header {name} may not be set by the client ({reason})")]
    ForbiddenHeader { name: String, reason: &'static str },
    #[error(
        "refused: header {name} may not be set for a credential with --method rules (servers read it as the method)"
    )]
    MethodOverride { name: String },
}

impl PolicyError {
    /// true when the *request* was refused by policy (exit 5); false when the
    /// input itself is malformed: a bad spec, header name or token at add
    /// time, or a request URL that does not parse at all (exit 1).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            PolicyError::NoOrigins
                | PolicyError::BadOrigin { .. }
                | PolicyError::InsecureOrigin { .. }
                | PolicyError::BadMethod { .. }
                | PolicyError::BadPathPrefix { .. }
                | PolicyError::BadHeaderName { .. }
                | PolicyError::BadToken { .. }
                | PolicyError::InvalidUrl { .. }
        )
    }

    /// The message without the variant's framing, for wrapping in BadOrigin.
    fn reason(&self) -> String {
        match self {
            PolicyError::AmbiguousUrl { reason } => (*reason).to_owned(),
            PolicyError::Scheme { .. } => "only http:// and https:// origins are supported".into(),
            PolicyError::Userinfo => "an origin may not carry userinfo (user:password@)".into(),
            PolicyError::TrailingDot { .. } => "the host ends with a dot".into(),
            PolicyError::NoHost => "the host is empty".into(),
            PolicyError::InvalidUrl { reason } => reason.clone(),
            other => other.to_string(),
        }
    }
}

fn list(origins: &[Origin]) -> String {
    let v: Vec<String> = origins.iter().map(Origin::to_string).collect();
    v.join(", ")
}

/// The parts of a raw URL string that the screen located.
struct Raw<'a> {
    /// Everything after the authority (path, query, fragment).
    rest: &'a str,
}

/// Refuses spellings that parsers disagree on, before `Url::parse` gets to
/// normalize them away.
fn screen_raw(s: &str) -> Result<Raw<'_>, PolicyError> {
    let amb = |reason| Err(PolicyError::AmbiguousUrl { reason });
    if s.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return amb("the URL contains whitespace or control characters");
    }
    let Some((scheme, after)) = split_scheme(s) else {
        return Err(PolicyError::InvalidUrl {
            reason: "not an absolute http:// or https:// URL".into(),
        });
    };
    if Scheme::from_str(scheme).is_none() {
        return Err(PolicyError::Scheme {
            scheme: clip(&scheme.to_ascii_lowercase()),
        });
    }
    let Some(after) = after.strip_prefix("//") else {
        return amb("the scheme must be followed by \"//\" and the host");
    };
    if after.starts_with(['/', '\\']) {
        return amb("the scheme must be followed by exactly \"//\" and the host");
    }
    let before_query = after.split(['?', '#']).next().unwrap_or("");
    if before_query.contains('\\') {
        return amb("the URL contains a backslash before the query");
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    if authority.contains('@') {
        return Err(PolicyError::Userinfo);
    }
    if authority.contains('%') {
        return amb("the host is percent-encoded");
    }
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    if host.ends_with('.') {
        return Err(PolicyError::TrailingDot { host: clip(host) });
    }
    Ok(Raw { rest })
}

/// Splits "scheme:rest" when `scheme` is a syntactically valid scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    let valid = first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    valid.then_some((scheme, rest))
}

fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Bytes no header value may contain (as `http::HeaderValue` checks).
fn is_bad_value_byte(b: u8) -> bool {
    (b < b' ' && b != b'\t') || b == 0x7f
}

fn forbidden_header(injection: &Injection, name: &str) -> Option<&'static str> {
    match injection {
        Injection::Header { name: injected } if name.eq_ignore_ascii_case(injected) => {
            return Some("the credential injects it");
        }
        Injection::Bearer if name.eq_ignore_ascii_case("authorization") => {
            return Some("the credential injects it");
        }
        // A client-made signature or digest would travel beside (or instead
        // of) the daemon's and could vouch for a body the key never signed.
        Injection::Sign { .. }
            if super::sign::SIGNING_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h)) =>
        {
            return Some("the daemon signs the request and sets it");
        }
        _ => {}
    }
    // The token is a header value for these two, so an echo of it is likely.
    if matches!(injection, Injection::Header { .. } | Injection::Bearer)
        && SLICE_HEADERS.iter().any(|f| name.eq_ignore_ascii_case(f))
    {
        return Some("an echo of the token could come back in slices too short to redact");
    }
    if name.eq_ignore_ascii_case("proxy-authorization") {
        return Some("it could shadow or leak the credential");
    }
    ALWAYS_FORBIDDEN
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
        .then_some("the daemon sets it")
}

fn validate_prefix(p: &str) -> Result<(), PolicyError> {
    let bad = |reason: &str| {
        Err(PolicyError::BadPathPrefix {
            prefix: shown(p),
            reason: reason.into(),
        })
    };
    if !p.starts_with('/') {
        return bad("a path prefix starts with '/'");
    }
    if p.contains(['?', '#']) {
        return bad("a path prefix cannot contain '?' or '#'");
    }
    if p.contains("..") {
        return bad("a path prefix cannot contain \"..\"");
    }
    if p.len() > 4096 {
        return bad("too long");
    }
    if p.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
        return bad("a path prefix cannot contain whitespace, control characters or '\\'");
    }
    if is_ambiguous_path(p) {
        return bad("a path prefix cannot contain an encoded '/' or '\\' or a dot segment");
    }
    // Request paths are compared as `Url::path` serializes them: the prefix
    // must already be in that form or it could never match.
    let base = Url::parse("http://prefix.invalid/").map_err(|_| PolicyError::BadPathPrefix {
        prefix: shown(p),
        reason: "internal error".into(),
    })?;
    match base.join(p) {
        Ok(u) if u.path() == p => Ok(()),
        Ok(u) => Err(PolicyError::BadPathPrefix {
            prefix: shown(p),
            reason: format!("not in normalized form; write it as {}", clip(u.path())),
        }),
        Err(e) => Err(PolicyError::BadPathPrefix {
            prefix: shown(p),
            reason: e.to_string(),
        }),
    }
}

/// "/api" allows "/api" and "/api/..." but not "/apix"; "/api/" is a plain
/// prefix.
fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// A normalized path still holding something a server may resolve as a
/// traversal: a segment that percent-decodes to "." or ".." (with any
/// ";params" removed, as Tomcat does) or that contains an encoded '/' or '\'.
fn is_ambiguous_path(path: &str) -> bool {
    path.split('/').any(|seg| {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
        if decoded.contains(&b'/') || decoded.contains(&b'\\') {
            return true;
        }
        let bare = decoded.split(|&b| b == b';').next().unwrap_or(&[]);
        bare == b"." || bare == b".."
    })
}

/// A caller-supplied string fit for a one-line message: escaped, clipped,
/// and left out entirely when it could hold userinfo.
fn shown(s: &str) -> String {
    if s.contains('@') {
        return "(not shown: it contains '@')".into();
    }
    clip(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(origins: &[&str]) -> CredentialSpec {
        CredentialSpec {
            injection: Some(Injection::Header {
                name: "Access-Token".into(),
            }),
            origins: origins.iter().map(|s| s.to_string()).collect(),
            ..CredentialSpec::default()
        }
    }

    fn policy(origins: &[&str]) -> Policy {
        Policy::from_spec(&spec(origins)).unwrap()
    }

    const ALLOW: bool = true;
    const REFUSE: bool = false;

    /// (origins, URL, verdict, why)
    #[rustfmt::skip]
    const CASES: &[(&[&str], &str, bool, &str)] = &[
        // --- the plain cases
        (MR, "https://microreact.org/", ALLOW, "exact origin"),
        (MR, "https://microreact.org", ALLOW, "no path"),
        (MR, "https://microreact.org/api/project?id=1", ALLOW, "path and query"),
        (MR, "https://microreact.org/x#frag", ALLOW, "fragment is dropped"),
        (MR, "HTTPS://MICROREACT.ORG/", ALLOW, "scheme and host case"),
        (MR, "https://MicroReact.Org/Path", ALLOW, "mixed case host"),
        (MR, "https://microreact.org:443/", ALLOW, "explicit default port"),
        (MR, "https://microreact.org:0443/", ALLOW, "port with leading zero is 443"),
        (MR, "https://microreact.org:/", ALLOW, "empty port is the default"),
        (MR, "https://microreact.org:444/", REFUSE, "other port"),
        (MR, "https://microreact.org:80/", REFUSE, "port 80 on https"),
        (MR, "http://microreact.org/", REFUSE, "scheme http"),
        (MR, "http://microreact.org:443/", REFUSE, "http on 443"),
        (MR, "ftp://microreact.org/", REFUSE, "ftp"),
        (MR, "ws://microreact.org/", REFUSE, "websocket"),
        (MR, "file:///etc/passwd", REFUSE, "file"),
        (MR, "javascript:alert(1)", REFUSE, "javascript"),
        (MR, "https://microreact.org/@evil.com", ALLOW, "@ in the path is just a path"),
        (MR, "https://microreact.org#@evil.com", ALLOW, "@ in the fragment"),
        (MR, "https://microreact.org?@evil.com", ALLOW, "@ in the query"),
        // --- other hosts
        (MR, "https://evil.com/", REFUSE, "other host"),
        (MR, "https://microreact.org.evil.com/", REFUSE, "suffix domain"),
        (MR, "https://evilmicroreact.org/", REFUSE, "prefix glued"),
        (MR, "https://sub.microreact.org/", REFUSE, "subdomain"),
        (MR, "https://evil.com#@microreact.org", REFUSE, "fragment hides real host"),
        (MR, "https://evil.com?@microreact.org", REFUSE, "query hides real host"),
        (MR, "https://evil.com/@microreact.org", REFUSE, "path hides real host"),
        // --- userinfo
        (MR, "https://microreact.org@evil.com/", REFUSE, "userinfo, host evil.com"),
        (MR, "https://user:pw@microreact.org/", REFUSE, "userinfo with password"),
        (MR, "https://user@microreact.org/", REFUSE, "username only"),
        (MR, "https://:pw@microreact.org/", REFUSE, "password only"),
        (MR, "https://@microreact.org/", REFUSE, "empty userinfo (url drops it)"),
        (MR, "https://microreact.org:443@evil.com/", REFUSE, "port-looking userinfo"),
        (MR, "https://evil.com%2f@microreact.org/", REFUSE, "encoded slash in userinfo"),
        (MR, "https://microreact.org%40evil.com/", REFUSE, "encoded @ in host"),
        // --- percent-encoded hosts: refused, not normalized
        (MR, "https://microreact%2eorg/", REFUSE, "encoded dot"),
        (MR, "https://microreact.org%2f.evil.com/", REFUSE, "encoded slash in host"),
        (MR, "https://%6dicroreact.org/", REFUSE, "encoded letter"),
        // --- trailing dots
        (MR, "https://microreact.org./", REFUSE, "trailing dot"),
        (MR, "https://microreact.org.:443/", REFUSE, "trailing dot with port"),
        (MR, "https://microreact.org\u{3002}/", REFUSE, "ideographic full stop maps to a trailing dot"),
        (MR, "https://microreact.org../", REFUSE, "two trailing dots"),
        // --- IDN and lookalikes
        (MR, "https://microre\u{0430}ct.org/", REFUSE, "Cyrillic a"),
        (MR, "https://xn--microrect-6yh.org/", REFUSE, "punycode of the Cyrillic lookalike"),
        (MR, "https://\u{ff4d}icroreact.org/", ALLOW, "fullwidth m maps to microreact.org (IDNA)"),
        (MR, "https://micro\u{00ad}react.org/", ALLOW, "soft hyphen is removed by IDNA"),
        // --- raw spellings parsers disagree on
        (MR, "https://microreact.org\\@evil.com", REFUSE, "backslash"),
        (MR, "https:\\\\microreact.org/", REFUSE, "backslashes for slashes"),
        (MR, "https://microreact.org\\", REFUSE, "trailing backslash"),
        (MR, "https:microreact.org/", REFUSE, "no slashes"),
        (MR, "https:/microreact.org/", REFUSE, "one slash"),
        (MR, "https:///microreact.org/", REFUSE, "three slashes"),
        (MR, "//microreact.org/x", REFUSE, "relative, scheme-less"),
        (MR, "/x", REFUSE, "relative path"),
        (MR, "microreact.org", REFUSE, "no scheme"),
        (MR, "", REFUSE, "empty"),
        (MR, "https://", REFUSE, "no host"),
        (MR, "https://:443/", REFUSE, "empty host with port"),
        (MR, "https://micro\treact.org/", REFUSE, "tab in host"),
        (MR, "https://microreact.org/\n", REFUSE, "newline at end"),
        (MR, "https://evil.com\n.microreact.org/", REFUSE, "newline in host"),
        (MR, "https://microreact.org\r\nX: y", REFUSE, "CRLF"),
        (MR, " https://microreact.org/", REFUSE, "leading space"),
        (MR, "https://microreact.org/ ", REFUSE, "trailing space"),
        (MR, "https://microreact.org/a b", REFUSE, "space in path"),
        (MR, "https://microreact.org/\0", REFUSE, "NUL"),
        // --- IP spellings against a hostname origin
        (MR, "https://0x7f.0.0.1/", REFUSE, "hex IPv4"),
        (MR, "https://127.0.0.1/", REFUSE, "IPv4"),
        (MR, "https://[::1]/", REFUSE, "IPv6"),
        (MR, "https://2130706433/", REFUSE, "decimal IPv4"),
        // --- loopback IPv4 origin
        (LO4, "http://127.0.0.1:8080/", ALLOW, "exact"),
        (LO4, "http://127.0.0.1:8080", ALLOW, "no path"),
        (LO4, "http://127.0.0.1/", REFUSE, "default port 80 is not 8080"),
        (LO4, "http://127.0.0.1:80/", REFUSE, "port 80"),
        (LO4, "https://127.0.0.1:8080/", REFUSE, "https is another origin"),
        (LO4, "http://2130706433:8080/", ALLOW, "decimal IPv4 normalizes to 127.0.0.1"),
        (LO4, "http://0x7f.0.0.1:8080/", ALLOW, "hex IPv4 normalizes to 127.0.0.1"),
        (LO4, "http://0177.0.0.1:8080/", ALLOW, "octal IPv4 normalizes to 127.0.0.1"),
        (LO4, "http://127.1:8080/", ALLOW, "short IPv4 normalizes to 127.0.0.1"),
        (LO4, "http://127.0.0.2:8080/", REFUSE, "other loopback address"),
        (LO4, "http://localhost:8080/", REFUSE, "a name is not its address"),
        (LO4, "http://127.0.0.1.:8080/", REFUSE, "trailing dot on an IPv4"),
        (LO4, "http://[::ffff:127.0.0.1]:8080/", REFUSE, "IPv4-mapped IPv6"),
        (LO4, "http://[::1]:8080/", REFUSE, "IPv6 loopback is another host"),
        (LO4, "http://127.0.0.1%3a8080/", REFUSE, "encoded colon"),
        // --- loopback IPv6 origin
        (LO6, "https://[::1]:8443/", ALLOW, "exact"),
        (LO6, "https://[0:0:0:0:0:0:0:1]:8443/x", ALLOW, "long form"),
        (LO6, "https://[0000::0001]:8443/", ALLOW, "zero padded"),
        (LO6, "https://[::1]/", REFUSE, "default port"),
        (LO6, "https://[::1]:8444/", REFUSE, "other port"),
        (LO6, "https://[::2]:8443/", REFUSE, "other address"),
        (LO6, "https://127.0.0.1:8443/", REFUSE, "IPv4 loopback"),
        (LO6, "https://[::ffff:7f00:1]:8443/", REFUSE, "IPv4-mapped"),
        (LO6, "https://[::1%25lo]:8443/", REFUSE, "zone id"),
        (LO6, "https://::1:8443/", REFUSE, "no brackets"),
        (LO6, "https://[::1]:8443@evil.com/", REFUSE, "userinfo"),
    ];
    const MR: &[&str] = &["https://microreact.org"];
    const LO4: &[&str] = &["http://127.0.0.1:8080"];
    const LO6: &[&str] = &["https://[::1]:8443"];

    #[test]
    fn hostile_urls() {
        let mut failures = Vec::new();
        for (origins, url, allow, why) in CASES {
            let got = policy(origins).check("GET", url);
            if got.is_ok() != *allow {
                failures.push(format!(
                    "{url:?} ({why}): expected allow={allow}, got {got:?}"
                ));
            }
            // What was allowed stays allowed, unchanged, when checked again
            // in its normalized form (as a followed redirect is).
            if let Ok((u, o)) = &got {
                let again = policy(origins).check("GET", u.as_str());
                assert!(
                    matches!(&again, Ok((u2, o2)) if u2 == u && o2 == o),
                    "{url:?} -> {u} -> {again:?}"
                );
                assert!(u.fragment().is_none() && u.username().is_empty());
            }
            if let Err(e) = &got {
                let msg = e.to_string();
                assert!(
                    !msg.contains('\n') && !msg.contains('\r'),
                    "{url:?}: {msg:?}"
                );
                assert!(
                    !msg.contains("pw"),
                    "{url:?}: message echoes userinfo: {msg}"
                );
            }
        }
        assert!(CASES.len() >= 30);
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn allowed_url_is_normalized_and_fragment_dropped() {
        let p = policy(MR);
        let (u, o) = p
            .check("GET", "HTTPS://MicroReact.ORG:443/a/./b/../c?q=1#frag")
            .unwrap();
        assert_eq!(u.as_str(), "https://microreact.org/a/c?q=1");
        assert_eq!(o.to_string(), "https://microreact.org");
        let (u, _) = p.check("GET", "https://\u{ff4d}icroreact.org/").unwrap();
        assert_eq!(u.host_str(), Some("microreact.org"));

        // The address that was checked is the one in the URL to send.
        let p = policy(LO4);
        let (u, o) = p.check("GET", "http://2130706433:8080/x").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/x");
        assert!(o.is_loopback());
    }

    #[test]
    fn refusal_messages() {
        let p = policy(&["https://microreact.org", "http://127.0.0.1:8080"]);
        let e = p.check("GET", "https://evil.example/x").unwrap_err();
        assert!(e.is_refusal());
        assert_eq!(
            e.to_string(),
            "origin https://evil.example is not allowed for this credential \
             (allowed: https://microreact.org, http://127.0.0.1:8080)"
        );
        let e = p
            .check("GET", "https://user:hunter2@microreact.org/")
            .unwrap_err();
        assert!(matches!(e, PolicyError::Userinfo), "{e:?}");
        assert!(!e.to_string().contains("hunter2"));
        let e = p.check("GET", "https://microreact.org./").unwrap_err();
        assert!(e.to_string().contains("microreact.org."), "{e}");
        let e = p.check("GET", "ftp://microreact.org/").unwrap_err();
        assert!(e.is_refusal() && e.to_string().contains("ftp"), "{e}");
        // Not a URL at all: a usage error, not a policy refusal.
        let e = p.check("GET", "//microreact.org/x").unwrap_err();
        assert!(!e.is_refusal(), "{e:?}");
        let e = p.check("GET", "https://exa mple.com").unwrap_err();
        assert!(e.is_refusal(), "{e:?}");
        let e = p.check("GET", "https://user:hunter2@[bad/").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn origin_parse() {
        let ok = [
            ("https://microreact.org", "https://microreact.org", 443),
            ("https://microreact.org/", "https://microreact.org", 443),
            ("HTTPS://MicroReact.org:443", "https://microreact.org", 443),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080", 8080),
            ("http://localhost", "http://localhost", 80),
            ("https://[::1]:8443", "https://[::1]:8443", 8443),
            ("https://[0::1]:443/", "https://[::1]", 443),
            (
                "https://b\u{fc}cher.example",
                "https://xn--bcher-kva.example",
                443,
            ),
        ];
        for (s, shown, port) in ok {
            let o = Origin::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(o.to_string(), shown);
            assert_eq!(o.port, port);
        }
        let bad = [
            "",
            "microreact.org",
            "ftp://microreact.org",
            "https://",
            "https:///x",
            "https://user:secretpw@microreact.org",
            "https://microreact.org/api",
            "https://microreact.org//",
            "https://microreact.org?x",
            "https://microreact.org/?x",
            "https://microreact.org#x",
            "https://microreact.org.",
            "https://microreact.org.:443",
            "https://microreact%2eorg",
            "https://microreact.org:0",
            "https://microreact.org:99999",
            "https:microreact.org",
            " https://microreact.org",
            "https://microreact.org\\",
        ];
        for s in bad {
            let e = Origin::parse(s).expect_err(s);
            assert!(!e.is_refusal(), "{s}: {e:?}");
            assert!(!e.to_string().contains("secretpw"), "{e}");
        }
    }

    #[test]
    fn loopback() {
        let lo = |s: &str| Origin::parse(s).unwrap().is_loopback();
        assert!(lo("http://127.0.0.1"));
        assert!(lo("http://127.255.0.9:1"));
        assert!(lo("http://[::1]"));
        assert!(lo("http://localhost:3000"));
        assert!(lo("http://LOCALHOST"));
        assert!(!lo("http://128.0.0.1"));
        assert!(!lo("http://sub.localhost"));
        assert!(!lo("http://localhost.example"));
        assert!(!lo("http://[::ffff:127.0.0.1]"));
        assert!(!lo("http://0.0.0.0"));
    }

    /// #11 item 6: plain http to the name `localhost` is refused (it may
    /// reach ::1 or 127.0.0.1, whichever listens), with or without
    /// --allow-insecure-http, naming both literals; https to it is fine.
    #[test]
    fn plain_http_localhost_is_refused() {
        for o in [
            "http://localhost",
            "http://LOCALHOST:8080",
            "http://localhost:8080/",
        ] {
            for insecure in [false, true] {
                let mut s = spec(&[o]);
                s.allow_insecure_http = insecure;
                let e = Policy::from_spec(&s).unwrap_err();
                assert!(e.is_refusal(), "{o}: {e:?}");
                let m = e.to_string();
                assert!(
                    m.contains("http://127.0.0.1:") && m.contains("http://[::1]:"),
                    "{m}"
                );
            }
        }
        assert!(Policy::from_spec(&spec(&["https://localhost:8443"])).is_ok());
        assert!(Policy::from_spec(&spec(&["http://127.0.0.1", "http://[::1]"])).is_ok());
    }

    #[test]
    fn insecure_http_rule() {
        // Plain http off loopback needs the flag at add time...
        let e = Policy::from_spec(&spec(&["http://api.example:8080"])).unwrap_err();
        assert!(!e.is_refusal());
        assert!(e.to_string().contains("--allow-insecure-http"), "{e}");
        // ...and is then allowed.
        let mut s = spec(&["http://api.example:8080"]);
        s.allow_insecure_http = true;
        let p = Policy::from_spec(&s).unwrap();
        assert!(p.check("GET", "http://api.example:8080/x").is_ok());
        assert!(p.check("GET", "https://api.example:8080/x").is_err());
        // Loopback http needs no flag.
        for o in ["http://127.0.0.1:8080", "http://[::1]:9"] {
            let p = Policy::from_spec(&spec(&[o])).unwrap();
            assert!(!p.allow_insecure_http);
        }
        // A hand-built policy is still held to the rule at check time.
        let p = Policy {
            origins: vec![Origin::parse("http://api.example").unwrap()],
            allow_insecure_http: false,
            methods: vec![],
            path_prefixes: vec![],
        };
        let e = p.check("GET", "http://api.example/").unwrap_err();
        assert!(matches!(e, PolicyError::InsecureHttp { .. }), "{e:?}");
        assert!(e.is_refusal());
    }

    #[test]
    fn spec_validation() {
        assert!(matches!(
            Policy::from_spec(&spec(&[])).unwrap_err(),
            PolicyError::NoOrigins
        ));
        let mut s = spec(&["https://microreact.org", "https://MICROREACT.org:443/"]);
        s.methods = vec!["get".into(), "Post".into(), "GET".into()];
        let p = Policy::from_spec(&s).unwrap();
        assert_eq!(p.origins.len(), 1);
        assert_eq!(p.methods, ["GET", "POST"]);
        for m in ["", "GE T", "GET\r\n", "G:ET", "G\u{e9}T"] {
            let mut s = spec(&["https://microreact.org"]);
            s.methods = vec![m.into()];
            let e = Policy::from_spec(&s).expect_err(m);
            assert!(!e.is_refusal());
        }
        let mut s = spec(&["https://microreact.org"]);
        s.injection = Some(Injection::Header {
            name: "Host".into(),
        });
        assert!(Policy::from_spec(&s).is_err());
        s.injection = Some(Injection::Bearer);
        assert!(Policy::from_spec(&s).is_ok());
    }

    #[test]
    fn methods() {
        let mut s = spec(&["https://microreact.org"]);
        s.methods = vec!["GET".into(), "HEAD".into()];
        let p = Policy::from_spec(&s).unwrap();
        let u = "https://microreact.org/x";
        assert!(p.check("GET", u).is_ok());
        assert!(p.check("HEAD", u).is_ok());
        assert!(p.check("get", u).is_ok());
        let e = p.check("POST", u).unwrap_err();
        assert!(e.is_refusal());
        assert_eq!(
            e.to_string(),
            "method POST is not allowed for this credential (allowed: GET, HEAD)"
        );
        assert!(p.check("DELETE", u).is_err());
        assert!(p.check("GET ", u).is_err());
        assert!(p.check("GET\r\nX-A: b", u).is_err());
        assert!(p.check("", u).is_err());
        // No list: any valid token.
        let p = policy(MR);
        assert!(p.check("PROPFIND", u).is_ok());
        assert!(p.check("GE\nT", u).is_err());
    }

    #[test]
    fn path_prefixes() {
        let mut s = spec(&["https://microreact.org"]);
        s.path_prefixes = vec!["/api".into(), "/static/".into()];
        let p = Policy::from_spec(&s).unwrap();
        let cases: &[(&str, bool)] = &[
            ("/api", ALLOW),
            ("/api/", ALLOW),
            ("/api/x", ALLOW),
            ("/api/x/y?z=/admin", ALLOW),
            ("/api?x=1", ALLOW),
            ("/api#frag", ALLOW),
            ("/api/x;v=1", ALLOW),
            ("/api/%20x", ALLOW),
            ("/static/", ALLOW),
            ("/static/a.css", ALLOW),
            ("/static", REFUSE),
            ("/staticx", REFUSE),
            ("/apix", REFUSE),
            ("/ap", REFUSE),
            ("/API/x", REFUSE),
            ("/", REFUSE),
            ("", REFUSE),
            ("/admin", REFUSE),
            ("/x/api", REFUSE),
            ("/api/../admin", REFUSE),
            ("/api/./../admin", REFUSE),
            ("/api/%2e%2e/admin", REFUSE),
            ("/api/%2E./admin", REFUSE),
            ("/api%2f..%2fadmin", REFUSE),
            ("/api/..%2fadmin", REFUSE),
            ("/api/..%2Fadmin", REFUSE),
            ("/api/%2e%2e%2fadmin", REFUSE),
            ("/api/..%5cadmin", REFUSE),
            ("/api/..;/admin", REFUSE),
            ("/api/%2e;x/admin", REFUSE),
            ("/api\\..\\admin", REFUSE),
            ("//api/x", REFUSE),
            ("/%61pi/x", REFUSE),
        ];
        for (path, allow) in cases {
            let url = format!("https://microreact.org{path}");
            let got = p.check("GET", &url);
            assert_eq!(got.is_ok(), *allow, "{url}: {got:?}");
            if let Err(e) = got {
                assert!(e.is_refusal(), "{url}: {e:?}");
            }
        }
        let e = p.check("GET", "https://microreact.org/apix").unwrap_err();
        assert_eq!(
            e.to_string(),
            "path /apix is not allowed for this credential (allowed prefixes: /api, /static/)"
        );
        // Without prefixes the path is not inspected.
        assert!(
            policy(MR)
                .check("GET", "https://microreact.org/a/..%2fb")
                .is_ok()
        );
        // Prefix validation at add time.
        for bad in [
            "api",
            "",
            "/api?x",
            "/api#x",
            "/api/..",
            "/a..b",
            "/api/./x",
            "/a b",
            "/a\\b",
            "/%2e%2e/x",
            "/a%2fb",
            "/\u{e9}",
            "/a\tb",
        ] {
            let mut s = spec(&["https://microreact.org"]);
            s.path_prefixes = vec![bad.into()];
            let e = Policy::from_spec(&s).expect_err(bad);
            assert!(!e.is_refusal());
        }
        for good in ["/", "/api", "/api/", "/v1/projects/", "/a%20b", "/~user"] {
            let mut s = spec(&["https://microreact.org"]);
            s.path_prefixes = vec![good.into()];
            Policy::from_spec(&s).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    fn h(name: &str, value: &[u8]) -> Header {
        Header {
            name: name.into(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn headers() {
        let access = Injection::Header {
            name: "Access-Token".into(),
        };
        let bearer = Injection::Bearer;
        let ok = [
            h("Accept", b"application/json"),
            h("Content-Type", b"text/plain; charset=utf-8"),
            h("X-Weird_Name!", b"tab\tinside"),
            h("X-Latin1", b"caf\xe9"),
            h("X-Empty", b""),
        ];
        Policy::check_headers(&access, &ok).unwrap();
        Policy::check_headers(&bearer, &ok).unwrap();
        // Authorization is the bearer's header, but free with a custom header.
        Policy::check_headers(&access, &[h("Authorization", b"Basic eA==")]).unwrap();

        let always = [
            "Host",
            "host",
            "HOST",
            "Proxy-Authorization",
            "content-length",
            "Transfer-Encoding",
            "Connection",
        ];
        for inj in [&access, &bearer] {
            for name in always {
                let e = Policy::check_headers(inj, &[h(name, b"secretvalue")]).unwrap_err();
                assert!(e.is_refusal());
                assert!(matches!(e, PolicyError::ForbiddenHeader { .. }), "{e:?}");
                assert!(!e.to_string().contains("secretvalue"));
            }
        }
        for name in ["Access-Token", "access-token", "ACCESS-TOKEN"] {
            assert!(Policy::check_headers(&access, &[h(name, b"x")]).is_err());
            assert!(Policy::check_headers(&bearer, &[h(name, b"x")]).is_ok());
        }
        for name in ["Authorization", "authorization"] {
            assert!(Policy::check_headers(&bearer, &[h(name, b"Bearer x")]).is_err());
        }
        // A signing credential owns its signature and digest headers.
        let sign = Injection::Sign {
            alg: proto::SigAlg::Ed25519,
            keyid: None,
            ttl_secs: None,
            components: vec![],
        };
        for name in ["Signature", "signature-input", "Content-Digest"] {
            let e = Policy::check_headers(&sign, &[h(name, b"sig1=:x:")]).unwrap_err();
            assert!(matches!(e, PolicyError::ForbiddenHeader { .. }), "{e:?}");
            assert!(Policy::check_headers(&access, &[h(name, b"x")]).is_ok());
        }
        Policy::check_headers(&sign, &[h("Authorization", b"Basic eA==")]).unwrap();
        // A forbidden header anywhere in the list refuses the lot.
        let mixed = [h("Accept", b"*/*"), h("Host", b"evil.com")];
        assert!(Policy::check_headers(&access, &mixed).is_err());

        let bad_values: [&[u8]; 6] = [
            b"a\r\nX-Injected: 1",
            b"a\nb",
            b"a\rb",
            b"a\0b",
            b"a\x1bb",
            b"a\x7fb",
        ];
        for v in bad_values {
            let e = Policy::check_headers(&access, &[h("X-A", v)]).unwrap_err();
            assert!(e.is_refusal());
            let msg = e.to_string();
            assert!(msg.contains("X-A") && !msg.contains("Injected"), "{msg}");
        }
        for name in [
            "X-A\r\nHost: evil.com",
            "X-A\n",
            "X-A\0",
            "",
            "X A",
            "X-A:",
            "X-\u{e9}",
            "(x)",
            "X-A\t",
        ] {
            let e = Policy::check_headers(&access, &[h(name, b"v")]).unwrap_err();
            assert!(e.is_refusal());
            let msg = e.to_string();
            assert!(
                !msg.contains('\n') && !msg.contains('\r') && !msg.contains('\0'),
                "{msg:?}"
            );
        }
    }

    /// Range and If-Range ask the upstream for slices of an echo: each
    /// slice is shorter than the token (so redaction misses it), joined they
    /// give it back. Refused for the credentials whose token is a header value.
    #[test]
    fn partial_echo_headers() {
        let access = Injection::Header {
            name: "Access-Token".into(),
        };
        let sign = Injection::Sign {
            alg: proto::SigAlg::Ed25519,
            keyid: None,
            ttl_secs: None,
            components: vec![],
        };
        let cases: [(&Injection, &str, bool); 9] = [
            (&access, "Range", true),
            (&access, "range", true),
            (&access, "If-Range", true),
            (&Injection::Bearer, "RANGE", true),
            (&Injection::Bearer, "if-range", true),
            (&Injection::Bearer, "X-Range", false),
            (&Injection::Bearer, "Accept-Ranges", false),
            (&sign, "Range", false),
            (&sign, "If-Range", false),
        ];
        for (inj, name, refused) in cases {
            let r = Policy::check_headers(inj, &[h(name, b"bytes=0-3")]);
            assert_eq!(r.is_err(), refused, "{name}");
            if let Err(e) = r {
                assert!(e.is_refusal());
                let msg = e.to_string();
                assert!(msg.contains(name) && msg.contains("slices"), "{msg}");
                assert!(!msg.contains("bytes=0-3"), "{msg}");
            }
        }
    }

    /// Method-override headers let many servers run a method the credential's
    /// --method list does not allow; refused only when there is such a list.
    #[test]
    fn method_override_headers() {
        let mut s = spec(&["https://microreact.org"]);
        s.methods = vec!["GET".into()];
        let restricted = Policy::from_spec(&s).unwrap();
        let open = policy(MR);
        let names = [
            "X-HTTP-Method-Override",
            "x-http-method-override",
            "X-HTTP-Method",
            "X-Method-Override",
            "X-METHOD-OVERRIDE",
        ];
        for name in names {
            let e = restricted
                .check_method_overrides(&[h("Accept", b"*/*"), h(name, b"DELETE")])
                .unwrap_err();
            assert!(e.is_refusal());
            let msg = e.to_string();
            assert!(msg.contains(name) && msg.contains("--method"), "{msg}");
            open.check_method_overrides(&[h(name, b"DELETE")]).unwrap();
        }
        for name in ["X-HTTP-Methods", "X-Override", "Method"] {
            restricted
                .check_method_overrides(&[h(name, b"DELETE")])
                .unwrap();
        }
    }

    #[test]
    fn header_name_for_injection() {
        for ok in ["Access-Token", "X-API-Key", "x-api-key", "Api_Key"] {
            validate_header_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "Authorization",
            "authorization",
            "Host",
            "Proxy-Authorization",
            "Content-Length",
            "transfer-encoding",
            "Connection",
            "X Token",
            "X-Token:",
            "X-Token\r\n",
        ] {
            let e = validate_header_name(bad).expect_err(bad);
            assert!(!e.is_refusal());
        }
        let e = validate_header_name("Authorization").unwrap_err();
        assert!(e.to_string().contains("--bearer"), "{e}");
    }

    #[test]
    fn token_values() {
        validate_token(b"abc").unwrap();
        validate_token(b"eyJhbGciOiJIUzI1NiJ9.e30.sig-_+/=").unwrap();
        validate_token(b"with\tinner tab and space").unwrap();
        validate_token(b"obs-text \xe9\xff").unwrap();
        validate_token(&vec![b'a'; proto::MAX_SECRET]).unwrap();
        let bad: [&[u8]; 10] = [
            b"",
            b"secret\n",
            b"sec\r\nret",
            b"secret\r",
            b"sec\0ret",
            b"sec\x01ret",
            b"sec\x7fret",
            b" secret",
            b"secret ",
            b"secret\t",
        ];
        for v in bad {
            let e = validate_token(v).expect_err("bad token");
            assert!(!e.is_refusal());
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        assert!(validate_token(&vec![b'a'; proto::MAX_SECRET + 1]).is_err());
    }

    #[test]
    fn origin_of_url() {
        let u = Url::parse("https://microreact.org:8443/x?y#z").unwrap();
        let o = Origin::of_url(&u).unwrap();
        assert_eq!(o.to_string(), "https://microreact.org:8443");
        assert_eq!(o.port, 8443);
        let u = Url::parse("http://[::1]/").unwrap();
        assert_eq!(Origin::of_url(&u).unwrap().port, 80);
        assert!(Origin::of_url(&Url::parse("mailto:a@b").unwrap()).is_err());
        assert!(Origin::of_url(&Url::parse("https://a.example./").unwrap()).is_err());
        // Same origin, however spelled.
        let a = Origin::of_url(&Url::parse("https://A.example:443/").unwrap()).unwrap();
        let b = Origin::parse("https://a.example").unwrap();
        assert_eq!(a, b);
    }
}
