//! An origin (`scheme://host:port`): parsed from a credential's spec or
//! taken from a URL the WHATWG way, and compared exactly.

use std::fmt;
use std::net::Ipv6Addr;

use url::{Host, Url};

use super::PolicyError;
use super::paths::shown;
use super::url::{Scheme, has_userinfo, screen_raw};
use crate::text::clip;

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

#[cfg(test)]
mod tests {
    use super::super::Policy;
    use super::super::test_support::*;
    use super::*;

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
