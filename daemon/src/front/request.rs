//! From an HTTP request on the front to the `JobRequest` that
//! `vaultctl request` would send: `Host` names the credential, the target
//! is the path and query on one of its origins, and what the front owns
//! (framing, hop-by-hop headers, its own `Tokenvault-*` headers) never
//! travels. Everything about the credential itself (origins, methods,
//! paths, header rules) is left to `job::prepare`, as for any job.

use hyper::header::{self, HeaderMap, HeaderName};
use hyper::http::request::Parts;
use proto::{Header, JobRequest};

use super::problem::{FrontError, Problem};
use crate::state::State;

/// The header that picks another of the credential's origins.
pub const ORIGIN_HEADER: &str = "tokenvault-origin";

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe this connection,
/// not the request, and are never forwarded. `Upgrade` is refused before
/// this; `Expect` is answered by hyper on this side.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "expect",
    // The front frames the upstream body itself (from the size hint).
    "content-length",
];

/// A request ready for `prepare_job`, and what the relay needs of it.
pub struct Mapped {
    pub job: JobRequest,
    /// The credential's name, for rewriting a `Location` back to the front.
    pub name: String,
    /// The body's announced length (`None`: chunked or none).
    pub content_length: Option<u64>,
}

/// Maps the request head; refuses what the front never serves.
pub fn map(parts: &Parts, state: &State) -> Result<Mapped, Problem> {
    let front = |e: FrontError| Problem::front(&e);
    check_shape(parts).map_err(front)?;
    let host = host_name(&parts.headers).map_err(front)?;
    let (name, first) = state.front_target(host).map_err(Problem::error)?;
    let origin = match chosen_origin(&parts.headers).map_err(front)? {
        Some(o) => o,
        None => first,
    };
    // Origin-form only (checked above), so this is "/path?query".
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let content_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    Ok(Mapped {
        job: JobRequest {
            credential: name.clone(),
            method: parts.method.as_str().to_owned(),
            url: format!("{origin}{target}"),
            headers: forwarded(&parts.headers),
            body: None,
            follow_redirects: false,
            timeout_ms: None,
        },
        name,
        content_length,
    })
}

/// CONNECT, `*`, absolute-form, upgrades and ambiguous framing: refused
/// before the credential is even looked up.
fn check_shape(parts: &Parts) -> Result<(), FrontError> {
    if parts.method == hyper::Method::CONNECT {
        return Err(FrontError::Connect);
    }
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        return Err(FrontError::Target("absolute-form is a proxy's"));
    }
    if !parts.uri.path().starts_with('/') {
        return Err(FrontError::Target("the target must start with /"));
    }
    let connection_upgrade = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|v| lists(v.as_bytes(), b"upgrade"));
    if parts.headers.contains_key(header::UPGRADE)
        || connection_upgrade
        || parts.headers.contains_key("http2-settings")
    {
        return Err(FrontError::Upgrade);
    }
    // hyper lets Transfer-Encoding win and drops Content-Length; one still
    // here means a shape hyper let through.
    if parts.headers.contains_key(header::TRANSFER_ENCODING)
        && parts.headers.contains_key(header::CONTENT_LENGTH)
    {
        return Err(FrontError::Framing);
    }
    for name in parts.headers.keys() {
        let n = name.as_str();
        if n.starts_with("tokenvault-") && n != ORIGIN_HEADER {
            return Err(FrontError::UnknownTokenvaultHeader(n.to_owned()));
        }
    }
    Ok(())
}

/// Whether a comma-separated header value lists `token` (ignoring case).
fn lists(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// The credential name in `Host`, its port dropped. One `Host`, a plain
/// name (credential names are A-Z a-z 0-9 . _ -); anything else is no
/// credential's.
fn host_name(headers: &HeaderMap) -> Result<&str, FrontError> {
    let mut all = headers.get_all(header::HOST).iter();
    let (Some(v), None) = (all.next(), all.next()) else {
        return Err(FrontError::Host);
    };
    let v = v.to_str().map_err(|_| FrontError::HostName)?;
    let name = match v.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        Some(_) => return Err(FrontError::HostName),
        None => v,
    };
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        Ok(name)
    } else {
        Err(FrontError::HostName)
    }
}

/// `Tokenvault-Origin`: one origin, `http(s)://host[:port]` and nothing
/// more (a path, query, userinfo or a second value is refused, not
/// ignored). Whether it is one of the credential's is the policy's call.
fn chosen_origin(headers: &HeaderMap) -> Result<Option<String>, FrontError> {
    let mut all = headers.get_all(ORIGIN_HEADER).iter();
    let v = match (all.next(), all.next()) {
        (None, _) => return Ok(None),
        (Some(v), None) => v,
        (Some(_), Some(_)) => return Err(FrontError::Origin),
    };
    let s = v.to_str().map_err(|_| FrontError::Origin)?.trim();
    let url = url::Url::parse(s).map_err(|_| FrontError::Origin)?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.host().is_some()
        // "https://h/" parses as "https://h" does; anything longer does not.
        && s.trim_end_matches('/').len() + 1 >= s.len()
        && !s.trim_end_matches('/').contains(['?', '#', '@', '\\']);
    if !bare {
        return Err(FrontError::Origin);
    }
    Ok(Some(url.origin().ascii_serialization()))
}

/// The client's headers that travel: not `Host`, not hop-by-hop ones nor
/// those `Connection` names, not `Tokenvault-*`. What remains goes through
/// the credential's header rules in `prepare_job` like `-H` does.
fn forwarded(headers: &HeaderMap) -> Vec<Header> {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
        .collect();
    headers
        .iter()
        .filter(|(n, _)| {
            *n != header::HOST
                && !HOP_BY_HOP.contains(&n.as_str())
                && !named.contains(n)
                && !n.as_str().starts_with("tokenvault-")
        })
        .map(|(n, v)| Header {
            name: n.as_str().to_owned(),
            value: v.as_bytes().to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(v: &str) -> Result<Option<String>, FrontError> {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN_HEADER, v.parse().unwrap());
        chosen_origin(&h)
    }

    #[test]
    fn tokenvault_origin_is_an_origin_and_nothing_more() {
        assert_eq!(
            origin("https://api.example.org").unwrap().as_deref(),
            Some("https://api.example.org")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/").unwrap().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        for bad in [
            "https://api.example.org/x",
            "https://a@api.example.org",
            "https://api.example.org?q",
            "https://api.example.org#f",
            "ftp://api.example.org",
            "api.example.org",
            "https://api.example.org//",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_names_the_credential_port_ignored() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "MicroReact:8080".parse().unwrap());
        assert_eq!(host_name(&h).unwrap(), "MicroReact");
        for bad in ["a b", "[::1]:80", "x:y", "", "a/b"] {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, bad.parse().unwrap());
            assert!(host_name(&h).is_err(), "{bad}");
        }
    }
}
