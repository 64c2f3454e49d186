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
//!
//! - [`origin`]: what an origin is and how it is parsed and compared;
//! - [`url`]: the raw-string screen that runs before any URL parser;
//! - [`headers`]: which client headers may travel with a token;
//! - [`paths`]: `--path-prefix` rules.

mod headers;
mod origin;
mod paths;
mod url;

use ::url::{Host, Url};
use proto::{CredentialSpec, Injection};

use crate::text::{clip, is_token};

pub use headers::{validate_header_name, validate_token};
pub use origin::Origin;
pub use url::Scheme;

use headers::MAX_NAME;
use paths::{is_ambiguous_path, shown, under_prefix, validate_prefix};
use url::{has_userinfo, screen_raw};

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
    #[error("{reason}")]
    AmbiguousUrl { reason: &'static str },
    #[error("scheme {scheme} is not allowed: only http and https")]
    Scheme { scheme: String },
    #[error("the URL has no host")]
    NoHost,
    #[error("the URL carries userinfo (user:password@); a credential is never sent with it")]
    Userinfo,
    #[error("host {host} ends with a dot; write it without the trailing dot")]
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
        "plain http to {origin}, which is not loopback, needs a credential added with --allow-insecure-http"
    )]
    InsecureHttp { origin: Origin },
    /// `localhost` resolves to 127.0.0.1, ::1 or both, and the job connects
    /// to whichever answers first: another local user listening on the
    /// address the service does not use would get the token in cleartext.
    /// An address literal says which one is meant; https is not affected,
    /// because TLS checks the server before the token is sent. Refused at
    /// `add`, and at job time for a credential stored before this rule.
    #[error(
        "http://localhost:{port} may connect to 127.0.0.1 or ::1, and another local user can listen on the one your service does not use; bind the credential to http://127.0.0.1:{port} or http://[::1]:{port}"
    )]
    LocalhostHttp { port: u16 },
    #[error("the method is not a valid HTTP token")]
    InvalidMethod,
    #[error("method {method} is not allowed for this credential (allowed: {})", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        allowed: Vec<String>,
    },
    #[error("path {path} is not allowed for this credential (allowed prefixes: {})", allowed.join(", "))]
    PathNotAllowed { path: String, allowed: Vec<String> },
    #[error("path {path} has an encoded slash or dot segment, which servers may read differently")]
    AmbiguousPath { path: String },
    #[error("header {name} contains CR, LF or NUL")]
    HeaderInjection { name: String },
    #[error("header name {name} is not a valid HTTP token")]
    InvalidHeaderName { name: String },
    #[error("the value of header {name} contains a control character")]
    InvalidHeaderValue { name: String },
    #[error("header {name} may not be set by the client ({reason})")]
    ForbiddenHeader { name: String, reason: &'static str },
    #[error(
        "header {name} may not be set for a credential with --method rules (servers read it as the method)"
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

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

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
}

/// Specs and policies the submodules' tests share.
#[cfg(test)]
mod test_support {
    use super::*;

    pub const ALLOW: bool = true;
    pub const REFUSE: bool = false;
    pub const MR: &[&str] = &["https://microreact.org"];
    pub const LO4: &[&str] = &["http://127.0.0.1:8080"];
    pub const LO6: &[&str] = &["https://[::1]:8443"];

    pub fn spec(origins: &[&str]) -> CredentialSpec {
        CredentialSpec {
            injection: Some(Injection::Header {
                name: "Access-Token".into(),
            }),
            origins: origins.iter().map(|s| s.to_string()).collect(),
            ..CredentialSpec::default()
        }
    }

    pub fn policy(origins: &[&str]) -> Policy {
        Policy::from_spec(&spec(origins)).unwrap()
    }
}
