//! Which client headers may travel with a token, and what a token and an
//! injected header name must look like.

use proto::{Header, Injection};

use super::paths::shown;
use super::{Policy, PolicyError};
use crate::text::is_token;

/// Header names a client may never set, whatever the credential injects:
/// they change where or how the request is framed and routed.
pub(super) const ALWAYS_FORBIDDEN: [&str; 5] = [
    "host",
    "proxy-authorization",
    "content-length",
    "transfer-encoding",
    "connection",
];

/// Headers that ask for a slice of the response: an upstream that echoes the
/// token would hand it back in pieces shorter than the token, which no
/// redaction can recognise, and the client could join them.
pub(super) const SLICE_HEADERS: [&str; 2] = ["range", "if-range"];

/// Headers many servers (and frameworks) read as the real method, which
/// would sidestep a credential's `--method` list.
pub(super) const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Longest header name, method or path accepted before refusing; keeps error
/// messages (which name them) to one line.
pub(super) const MAX_NAME: usize = 256;

impl Policy {
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

/// Bytes no header value may contain (as `http::HeaderValue` checks).
pub(super) fn is_bad_value_byte(b: u8) -> bool {
    (b < b' ' && b != b'\t') || b == 0x7f
}

pub(super) fn forbidden_header(injection: &Injection, name: &str) -> Option<&'static str> {
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
            if crate::job::sign::SIGNING_HEADERS
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

#[cfg(test)]
mod tests {
    use super::super::Policy;
    use super::super::test_support::*;
    use super::*;

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
}
