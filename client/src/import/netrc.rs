//! netrc files: `machine HOST login L password P` (tokens separated by any
//! whitespace, `#` comments), `default` (no host, so nothing to bind it to:
//! skipped), `macdef NAME` (its body, up to a blank line, skipped).

use proto::Secret;

use super::{Found, ParseError};

/// What a netrc file holds: one [`Found`] per machine with a password
/// (`key` is the host, `line` the password's line), and the entries that
/// had nothing to import, as a short description each.
pub struct Netrc {
    pub found: Vec<Found>,
    pub skipped: Vec<String>,
}

pub fn parse(input: &[u8]) -> Result<Netrc, ParseError> {
    let tokens = tokens(input);
    let mut out = Netrc {
        found: Vec::new(),
        skipped: Vec::new(),
    };
    // The machine being read: host (None for `default`), its line, password.
    let mut current: Option<(Option<String>, usize, Option<Found>)> = None;
    let mut k = 0;
    while k < tokens.len() {
        let (word, line) = tokens[k];
        let arg = tokens.get(k + 1).copied();
        match word {
            b"machine" | b"default" => {
                finish(&mut out, current.take());
                let host = if word == b"machine" {
                    let (h, _) = arg.ok_or(ParseError::at(line, "`machine` without a host"))?;
                    k += 1;
                    Some(String::from_utf8_lossy(h).into_owned())
                } else {
                    None
                };
                current = Some((host, line, None));
            }
            b"login" | b"account" | b"port" | b"password" => {
                let (value, vline) = arg.ok_or_else(|| {
                    ParseError::at(
                        line,
                        format!("`{}` without a value", String::from_utf8_lossy(word)),
                    )
                })?;
                k += 1;
                let Some((host, _, password)) = current.as_mut() else {
                    return Err(ParseError::at(line, "a field before any `machine`"));
                };
                if word == b"password" {
                    *password = Some(Found {
                        key: host.clone().unwrap_or_default(),
                        line: vline,
                        value: Secret::from_slice(value),
                    });
                }
            }
            b"macdef" => {
                finish(&mut out, current.take());
                // The name and the body, which runs to the first empty line.
                let end = macro_end(input, line);
                while k + 1 < tokens.len() && tokens[k + 1].1 <= end {
                    k += 1;
                }
            }
            // Never the word itself: it may be a value out of place.
            _ => {
                return Err(ParseError::at(
                    line,
                    "unexpected word (expected machine, default, login, password, account or macdef)",
                ));
            }
        }
        k += 1;
    }
    finish(&mut out, current);
    Ok(out)
}

fn finish(out: &mut Netrc, entry: Option<(Option<String>, usize, Option<Found>)>) {
    match entry {
        None => {}
        Some((None, line, _)) => out
            .skipped
            .push(format!("line {line}: default (no host to bind it to)")),
        Some((Some(host), line, None)) => out
            .skipped
            .push(format!("line {line}: machine {host} (no password)")),
        Some((Some(_), _, Some(found))) => out.found.push(found),
    }
}

/// The last line of a `macdef` that starts on `line`: the line before the
/// first empty line after it (all the rest of the file without one).
fn macro_end(input: &[u8], line: usize) -> usize {
    input
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .find(|(n, l)| *n > line && l.iter().all(|b| b.is_ascii_whitespace()))
        .map_or(usize::MAX, |(n, _)| n - 1)
}

/// Whitespace-separated words with their line; `#` starts a comment to the
/// end of the line.
fn tokens(input: &[u8]) -> Vec<(&[u8], usize)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'\n' {
            line += 1;
            i += 1;
        } else if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b'#' {
            while i < input.len() && input[i] != b'\n' {
                i += 1;
            }
        } else {
            let start = i;
            while i < input.len() && !input[i].is_ascii_whitespace() {
                i += 1;
            }
            out.push((&input[start..i], line));
        }
    }
    out
}

/// Whether `input` looks like a netrc file: its first word is `machine`,
/// `default` or `macdef`.
pub fn looks_like(input: &[u8]) -> bool {
    tokens(input)
        .first()
        .is_some_and(|(w, _)| matches!(*w, b"machine" | b"default" | b"macdef"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_defaults_and_macros() {
        let input = b"# mine\nmachine api.example.org login me\n  password s3cr3t-1\n\
macdef init\ncd /x\nmachine not.a.machine password nope\n\n\
machine b.example.org login x password s3cr3t-2 machine c.example.org login y\n\
default login anonymous password guest\n";
        let n = parse(input).unwrap();
        let got: Vec<_> = n
            .found
            .iter()
            .map(|f| (f.key.as_str(), f.line, f.value.expose()))
            .collect();
        assert_eq!(
            got,
            [
                ("api.example.org", 3, &b"s3cr3t-1"[..]),
                ("b.example.org", 8, &b"s3cr3t-2"[..])
            ]
        );
        assert_eq!(n.skipped.len(), 2, "{:?}", n.skipped);
        assert!(n.skipped[0].contains("c.example.org"));
        assert!(n.skipped[1].contains("default"));
        assert!(looks_like(input));
        assert!(!looks_like(b"A=1\n"));
    }

    #[test]
    fn errors_name_the_line_not_the_value() {
        let e = parse(b"machine a\npassword\n").err().unwrap();
        assert_eq!(e.place, "line 2");
        let e = parse(b"machine a login b s3cr3t\n").err().unwrap();
        assert_eq!(e.place, "line 1");
        assert!(!e.to_string().contains("s3cr3t"));
    }
}
