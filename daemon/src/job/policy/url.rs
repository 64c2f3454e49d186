//! The screen a raw URL string passes before any parser reads it: the
//! spellings that different parsers read differently are refused.

use url::Url;

use std::fmt;

use super::PolicyError;
use crate::text::clip;

/// The scheme of an origin; only plain and TLS HTTP exist for a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(super) fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub(super) fn from_str(s: &str) -> Option<Scheme> {
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

/// The parts of a raw URL string that the screen located.
pub(super) struct Raw<'a> {
    /// Everything after the authority (path, query, fragment).
    pub(super) rest: &'a str,
}

/// Refuses spellings that parsers disagree on, before `Url::parse` gets to
/// normalize them away.
pub(super) fn screen_raw(s: &str) -> Result<Raw<'_>, PolicyError> {
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
pub(super) fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    let valid = first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    valid.then_some((scheme, rest))
}

pub(super) fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

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
}
