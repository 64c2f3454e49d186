//! Text that vaultd puts in front of people: user input quoted back in
//! error messages and fields of the audit log. One place decides how much
//! of it is shown and how control characters are escaped, so a crafted
//! URL or header cannot forge a log line or flood a terminal.

/// RFC 9110 `tchar`: what a header name or method is made of.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token`: one or more tchar.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// User input quoted in an error message: control characters escaped,
/// clipped to 200 characters, `""` for nothing.
pub fn clip(s: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push_str("\"\"");
    }
    out
}

/// One field of an audit line: control characters, spaces and backslashes
/// escaped (so a field never splits into two or fakes a line), clipped to
/// 256 characters.
pub fn log_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(256));
    for c in s.chars().take(256) {
        if c.is_control() || c == ' ' || c == '\\' {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    if s.chars().count() > 256 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(is_token("X-Api-Key"));
        assert!(is_token("GET"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a:b"));
        assert!(!is_token("é"));
    }

    #[test]
    fn clip_escapes_and_bounds() {
        assert_eq!(clip(""), "\"\"");
        assert_eq!(clip("a\nb"), "a\\nb");
        assert_eq!(clip(&"x".repeat(300)).len(), 203);
    }

    #[test]
    fn log_fields_stay_one_field() {
        assert_eq!(log_field("svc"), "svc");
        assert_eq!(log_field("/a b\nc\\"), "/a\\u{20}b\\u{a}c\\u{5c}");
        assert_eq!(log_field(&"x".repeat(300)).len(), 259);
    }
}
