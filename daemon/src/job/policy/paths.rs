//! `--path-prefix` rules: how a prefix is validated and matched, and which
//! paths are refused as ambiguous.

use url::Url;

use super::PolicyError;
use crate::text::clip;

pub(super) fn validate_prefix(p: &str) -> Result<(), PolicyError> {
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
pub(super) fn under_prefix(path: &str, prefix: &str) -> bool {
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
pub(super) fn is_ambiguous_path(path: &str) -> bool {
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
pub(super) fn shown(s: &str) -> String {
    if s.contains('@') {
        return "(not shown: it contains '@')".into();
    }
    clip(s)
}

#[cfg(test)]
mod tests {
    use super::super::Policy;
    use super::super::test_support::*;

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
}
