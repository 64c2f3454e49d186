//! The manifest: one entry per credential, in TOML (`[[credential]]`
//! tables) or JSON (`{"credential": [...]}` or a bare array):
//!
//! ```toml
//! [[credential]]
//! name = "microreact"
//! value_env = "MICROREACT_TOKEN"   # or: value = "..."
//! preset = "microreact"            # or: header = "X-Key" / bearer = true
//! origins = ["https://microreact.org"]
//! methods = ["GET", "POST"]
//! path_prefixes = ["/api/"]
//! allow_insecure_http = false
//! ```
//!
//! Parse errors give a line (TOML) or an entry number (JSON) and never the
//! parser's own message, which may quote the offending text.

use proto::Secret;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::ParseError;

/// One manifest entry, its value already read.
pub struct Entry {
    /// 1-based position in the manifest.
    pub index: usize,
    pub name: String,
    pub value: Secret,
    /// The line of `value` in the file; `None` for `value_env` and for
    /// JSON (serde_json gives no positions).
    pub value_line: Option<usize>,
    /// Whether the file itself holds the value (`value`, not `value_env`).
    pub in_file: bool,
    pub preset: Option<String>,
    pub header: Option<String>,
    pub bearer: bool,
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub path_prefixes: Vec<String>,
    pub allow_insecure_http: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw<V> {
    name: String,
    value: Option<V>,
    value_env: Option<String>,
    preset: Option<String>,
    header: Option<String>,
    #[serde(default)]
    bearer: bool,
    #[serde(default)]
    origins: Vec<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    path_prefixes: Vec<String>,
    #[serde(default)]
    allow_insecure_http: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File<V> {
    #[serde(alias = "credentials")]
    credential: Vec<Raw<V>>,
}

/// A value straight into a wiped buffer. The parsers' own scratch copies
/// (an escaped JSON string, TOML's document) are outside our reach.
struct Value(Secret);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value(Secret::from_slice(v.as_bytes())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value(Secret::new(v.into_bytes())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Whether a file is a manifest by its content: a TOML `[[credential]]`
/// table or a JSON document.
pub fn looks_like(input: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&input[..input.len().min(64 * 1024)]);
    let first = text.trim_start().as_bytes().first().copied();
    matches!(first, Some(b'{' | b'['))
        && (text.contains("\"credential") || text.trim_start().starts_with('['))
        || text.lines().any(|l| {
            let l = l.trim();
            l == "[[credential]]" || l == "[[credentials]]"
        })
}

/// Whether the manifest is JSON (else TOML): JSON starts with `{` or `[`
/// and a TOML manifest with a `[[` table header.
pub fn is_json(input: &[u8]) -> bool {
    let t = input.trim_ascii_start();
    t.starts_with(b"{") || (t.starts_with(b"[") && !t.starts_with(b"[["))
}

pub fn parse(input: &[u8]) -> Result<Vec<Entry>, ParseError> {
    let text = std::str::from_utf8(input).map_err(|e| {
        ParseError::at(line_of(input, e.valid_up_to()), "the manifest is not UTF-8")
    })?;
    if is_json(input) {
        let raws: Vec<Raw<Value>> = if text.trim_start().starts_with('[') {
            serde_json::from_str(text)
        } else {
            serde_json::from_str::<File<Value>>(text).map(|f| f.credential)
        }
        .map_err(|e| ParseError::at(e.line(), json_reason(&e)))?;
        raws.into_iter()
            .enumerate()
            .map(|(i, r)| entry(i + 1, r, |v: Value| (v.0, None)))
            .collect()
    } else {
        let lines = Lines::new(input);
        let file: File<toml::Spanned<Value>> = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| lines.of(s.start));
            ParseError::at(line, toml_reason(e.message()))
        })?;
        file.credential
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                entry(i + 1, r, |v: toml::Spanned<Value>| {
                    let line = lines.of(v.span().start);
                    (v.into_inner().0, Some(line))
                })
            })
            .collect()
    }
}

fn entry<V>(
    index: usize,
    r: Raw<V>,
    open: impl FnOnce(V) -> (Secret, Option<usize>),
) -> Result<Entry, ParseError> {
    let place = || format!("entry {index} ({})", r.name);
    let in_file = r.value.is_some();
    let (value, value_line) = match (r.value, &r.value_env) {
        (Some(v), None) => open(v),
        (None, Some(var)) => {
            let v = std::env::var_os(var).ok_or_else(|| ParseError {
                place: place(),
                what: format!("environment variable {var} (value_env) is not set"),
            })?;
            (
                Secret::new(std::os::unix::ffi::OsStringExt::into_vec(v)),
                None,
            )
        }
        _ => {
            return Err(ParseError {
                place: place(),
                what: "give exactly one of value and value_env".into(),
            });
        }
    };
    Ok(Entry {
        index,
        name: r.name,
        value,
        value_line,
        in_file,
        preset: r.preset,
        header: r.header,
        bearer: r.bearer,
        origins: r.origins,
        methods: r.methods,
        path_prefixes: r.path_prefixes,
        allow_insecure_http: r.allow_insecure_http,
    })
}

fn line_of(input: &[u8], offset: usize) -> usize {
    Lines::new(input).of(offset)
}

/// Byte offset to line number, by binary search: counting newlines from
/// the start for every entry made a 10,000-entry manifest quadratic.
struct Lines(Vec<usize>);

impl Lines {
    fn new(input: &[u8]) -> Lines {
        Lines(memchr_newlines(input))
    }

    /// The 1-based line holding byte `offset`.
    fn of(&self, offset: usize) -> usize {
        1 + self.0.partition_point(|&nl| nl < offset)
    }
}

fn memchr_newlines(input: &[u8]) -> Vec<usize> {
    input
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| (b == b'\n').then_some(i))
        .collect()
}

/// The parser's message only when it names a field (unknown or missing):
/// a type or syntax error message may quote the text, which may be a value.
fn toml_reason(msg: &str) -> String {
    if msg.starts_with("unknown field") || msg.starts_with("missing field") {
        msg.lines().next().unwrap_or(msg).to_owned()
    } else {
        "not a valid manifest here (see `vaultctl import --help` for its fields)".into()
    }
}

fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or("");
    toml_reason(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json() {
        let t = b"[[credential]]\nname = \"m\"\npreset = \"microreact\"\nvalue = \"s3cr3t\"\n\n[[credential]]\nname = \"b\"\nbearer = true\norigins = [\"https://a.example\"]\nvalue = 'x'\n";
        assert!(looks_like(t) && !is_json(t));
        let e = parse(t).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].value.expose(), e[0].value_line),
            (&b"s3cr3t"[..], Some(4))
        );
        assert_eq!(e[1].value_line, Some(10));
        let j = br#"{"credential": [{"name": "m", "header": "X-K", "origins": ["https://a"], "value": "s\u0033"}]}"#;
        assert!(looks_like(j) && is_json(j));
        let e = parse(j).unwrap();
        assert_eq!(e[0].value.expose(), b"s3");
        assert_eq!(e[0].header.as_deref(), Some("X-K"));
        let bare = br#"[{"name": "m", "bearer": true, "value": "v"}]"#;
        assert_eq!(parse(bare).unwrap().len(), 1);
    }

    #[test]
    fn errors_never_quote_the_text() {
        for input in [
            &b"[[credential]]\nname = \"m\"\nbearer = \"s3cr3t\"\n"[..],
            b"[[credential]]\nname = \"m\"\nvalue = \"s3cr3t\n",
            br#"{"credential": [{"name": "m", "bearer": "s3cr3t"}]}"#,
            br#"{"credential": [{"name": "m", "value": 5}]}"#,
        ] {
            let e = parse(input).err().unwrap();
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
        let e = parse(b"[[credential]]\nname = \"m\"\nvalu = \"x\"\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
