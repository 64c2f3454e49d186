//! curl's rules for building a request from its flags, so that
//! `vaultctl request NAME ...` sends what `curl ...` would: body parts and
//! their separators, `-G` query strings, `--url-query`, multipart forms,
//! `-T`. Bodies are described, not read: a [`BodySpec`] opens its files
//! when a job starts, so a retry can send a replayable body again and a
//! 1 GiB file field streams with flat memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cli::DataKind;
use crate::exit::Failure;

/// One piece of a body, in order.
pub enum Segment {
    Bytes(Vec<u8>),
    /// A file, opened when the job starts (again for each retry).
    File(PathBuf),
    /// Standard input: streamed once, so a body holding it is not replayable.
    Stdin,
}

/// A request body as a list of segments, sent as one stream.
#[derive(Default)]
pub struct BodySpec {
    pub segments: Vec<Segment>,
    /// Always stream it (chunked), as curl sends `-T -`; otherwise a body
    /// that turns out small is sent inline with a Content-Length.
    pub chunked: bool,
}

impl BodySpec {
    fn push_bytes(&mut self, b: &[u8]) {
        if let Some(Segment::Bytes(last)) = self.segments.last_mut() {
            last.extend_from_slice(b);
        } else {
            self.segments.push(Segment::Bytes(b.to_vec()));
        }
    }

    /// Whether the body can be sent again for a retry: stdin cannot.
    pub fn replayable(&self) -> bool {
        !self.segments.iter().any(|s| matches!(s, Segment::Stdin))
    }

    /// The whole body when it is all in memory.
    pub fn inline(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Bytes(b) => out.extend_from_slice(b),
                _ => return None,
            }
        }
        Some(out)
    }

    /// Total size when every segment's size is known in advance (then it is
    /// sent with a `Content-Length`, as curl does).
    pub fn size(&self) -> Option<u64> {
        let mut total = 0u64;
        for s in &self.segments {
            total += match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::File(path) => std::fs::metadata(path).ok().filter(|m| m.is_file())?.len(),
                _ => return None,
            };
        }
        Some(total)
    }

    /// One reader over all segments; files are opened now.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, Failure> {
        let mut readers: Vec<Box<dyn Read + Send>> = Vec::new();
        for s in &self.segments {
            let r: Box<dyn Read + Send> =
                match s {
                    Segment::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
                    Segment::File(path) => Box::new(std::fs::File::open(path).map_err(|e| {
                        Failure::usage(format!("cannot read {}: {e}", path.display()))
                    })?),
                    Segment::Stdin => Box::new(std::io::stdin()),
                };
            readers.push(r);
        }
        Ok(Box::new(Chain {
            readers: readers.into(),
        }))
    }
}

/// Readers one after the other.
struct Chain {
    readers: std::collections::VecDeque<Box<dyn Read + Send>>,
}

impl Read for Chain {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some(r) = self.readers.front_mut() {
            let n = r.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.readers.pop_front();
        }
        Ok(0)
    }
}

/// curl_easy_escape: everything but RFC 3986 unreserved characters as
/// `%XX` (a space is `%20`): for a file name in a URL path.
pub fn urlencode(data: &[u8]) -> String {
    encode(data, false)
}

/// As `--data-urlencode` and `--url-query` encode since curl 7.86: a space
/// becomes `+`, the rest as [`urlencode`].
pub fn form_encode(data: &[u8]) -> String {
    encode(data, true)
}

fn encode(data: &[u8], space_plus: bool) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if space_plus && b == b' ' {
            out.push('+');
        } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn read_all(path: &str) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    let res = if path == "-" {
        std::io::stdin().read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf))
    };
    res.map_err(|e| Failure::usage(format!("cannot read {path}: {e}")))?;
    Ok(buf)
}

/// `--data-urlencode`: `content`, `=content`, `name=content`, `@file`,
/// `name@file`. As curl: the first `=` splits name from content, else the
/// first `@` names a file; the name is sent as given.
pub fn urlencoded_part(arg: &str) -> Result<Vec<u8>, Failure> {
    let (name, content) = match arg.find('=') {
        Some(i) => (&arg[..i], form_encode(&arg.as_bytes()[i + 1..])),
        None => match arg.find('@') {
            Some(i) => (&arg[..i], form_encode(&read_all(&arg[i + 1..])?)),
            None => ("", form_encode(arg.as_bytes())),
        },
    };
    Ok(if name.is_empty() {
        content.into_bytes()
    } else {
        format!("{name}={content}").into_bytes()
    })
}

/// The body of `-d`, `--data-binary`, `--data-raw`, `--data-urlencode` and
/// `--json` in command-line order: parts joined with `&`, except that
/// `--json` parts are concatenated as curl does.
pub fn data_body(parts: &[(DataKind, String)]) -> Result<BodySpec, Failure> {
    let mut body = BodySpec::default();
    for (i, (kind, value)) in parts.iter().enumerate() {
        if i > 0 && *kind != DataKind::Json {
            body.push_bytes(b"&");
        }
        match kind {
            DataKind::Raw => body.push_bytes(value.as_bytes()),
            DataKind::Urlencode => body.push_bytes(&urlencoded_part(value)?),
            // DESIGN.md: `-d @FILE` is sent byte-exact, as `--data-binary`
            // (curl would drop its CR and LF).
            DataKind::Ascii | DataKind::Binary | DataKind::Json => match value.strip_prefix('@') {
                Some("-") => body.segments.push(Segment::Stdin),
                Some(file) => body.segments.push(Segment::File(file.into())),
                None => body.push_bytes(value.as_bytes()),
            },
        }
    }
    Ok(body)
}

/// The whole body in memory (for `-G`, which puts it in the URL).
pub fn read_body(body: &BodySpec) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    body.open()?
        .take(proto::MAX_BODY as u64)
        .read_to_end(&mut out)
        .map_err(|e| Failure::usage(format!("cannot read the data: {e}")))?;
    Ok(out)
}

/// `--url-query`: `+content` as is, else a `--data-urlencode` form.
pub fn url_query_part(arg: &str) -> Result<Vec<u8>, Failure> {
    match arg.strip_prefix('+') {
        Some(raw) => Ok(raw.as_bytes().to_vec()),
        None => urlencoded_part(arg),
    }
}

/// Appends `query` to `url`'s query as curl does (`?` or `&`), before any
/// fragment.
pub fn append_query(url: &str, query: &[u8]) -> Result<String, Failure> {
    if query.is_empty() {
        return Ok(url.to_owned());
    }
    let query = std::str::from_utf8(query)
        .map_err(|_| Failure::usage("the query data is not valid UTF-8 text"))?;
    let (base, frag) = match url.find('#') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    // curl adds the `/` path a bare origin implies before the query.
    let slash = match base.find("://") {
        Some(i) if !base[i + 3..].contains(['/', '?']) => "/",
        _ => "",
    };
    let sep = if base.contains('?') { "&" } else { "?" };
    Ok(format!("{base}{slash}{sep}{query}{frag}"))
}

/// `-T FILE` to a URL ending in `/` puts the file's name there, as curl.
pub fn upload_url(url: &str, file: &Path) -> String {
    let path_part = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = path_part.find("://").map_or(0, |i| i + 3);
    let has_path = path_part[after_scheme..].contains('/');
    if file == Path::new("-") || (has_path && !path_part.ends_with('/')) {
        return url.to_owned();
    }
    let name = file
        .file_name()
        .map(|n| urlencode(n.as_encoded_bytes()))
        .unwrap_or_default();
    let rest = &url[path_part.len()..];
    let slash = if has_path { "" } else { "/" };
    format!("{path_part}{slash}{name}{rest}")
}

/// One `-F` field.
struct FormPart {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    content: Segment,
}

/// A part's parameters after the content: `;type=` and `;filename=`.
fn form_params(rest: &str) -> Result<(&str, Option<String>, Option<String>), Failure> {
    let mut pieces = rest.split(';');
    let content = pieces.next().unwrap_or("");
    let (mut ty, mut filename) = (None, None);
    for p in pieces {
        let p = p.trim_start();
        if let Some(t) = p.strip_prefix("type=") {
            ty = Some(t.to_owned());
        } else if let Some(f) = p.strip_prefix("filename=") {
            filename = Some(f.trim_matches('"').to_owned());
        } else {
            return Err(Failure::usage(format!(
                "-F: unsupported field parameter {:?} (vaultctl knows type= and filename=)",
                p.split('=').next().unwrap_or(p)
            )));
        }
    }
    Ok((content, ty, filename))
}

/// curl's guess of a file part's type from its name (tool_formparse.c).
fn type_for(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("gif") => "image/gif",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain",
        Some("htm" | "html") => "text/html",
        Some("pdf") => "application/pdf",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

fn form_part(arg: &str, literal: bool) -> Result<FormPart, Failure> {
    let (name, rest) = arg
        .split_once('=')
        .ok_or_else(|| Failure::usage(format!("-F {arg:?} is not of the form name=content")))?;
    let name = name.to_owned();
    if literal {
        return Ok(FormPart {
            name,
            filename: None,
            content_type: None,
            content: Segment::Bytes(rest.as_bytes().to_vec()),
        });
    }
    if let Some(file) = rest.strip_prefix('@') {
        let (path, ty, filename) = form_params(file)?;
        let filename = filename.or_else(|| {
            Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        });
        let content_type = ty.or_else(|| filename.as_deref().map(|f| type_for(f).to_owned()));
        return Ok(FormPart {
            name,
            filename,
            content_type,
            content: file_segment(path),
        });
    }
    if let Some(file) = rest.strip_prefix('<') {
        let (path, ty, filename) = form_params(file)?;
        return Ok(FormPart {
            name,
            filename,
            content_type: ty,
            content: file_segment(path),
        });
    }
    let (value, ty, filename) = form_params(rest)?;
    Ok(FormPart {
        name,
        filename,
        content_type: ty,
        content: Segment::Bytes(value.as_bytes().to_vec()),
    })
}

fn file_segment(path: &str) -> Segment {
    if path == "-" {
        Segment::Stdin
    } else {
        Segment::File(path.into())
    }
}

/// A quoted `Content-Disposition` parameter, escaped as curl 7.81+ does.
fn quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A boundary in curl's shape (24 dashes and 16 hex digits), random so no
/// file is likely to contain it.
fn boundary() -> Result<String, Failure> {
    let mut b = [0u8; 8];
    rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Failure::usage(format!("no randomness: {e}")))?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("------------------------{hex}"))
}

/// `-F`/`--form-string` fields as one multipart/form-data body: the
/// framing is composed here around each file, which is streamed, so a
/// 1 GiB file field keeps memory flat. Returns the body and its
/// Content-Type value.
pub fn multipart(fields: &[(bool, String)]) -> Result<(BodySpec, String), Failure> {
    let boundary = boundary()?;
    let mut body = BodySpec::default();
    for (literal, arg) in fields {
        let part = form_part(arg, *literal)?;
        let mut head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
            quoted(&part.name)
        );
        if let Some(f) = &part.filename {
            head += &format!("; filename=\"{}\"", quoted(f));
        }
        head += "\r\n";
        if let Some(t) = &part.content_type {
            head += &format!("Content-Type: {t}\r\n");
        }
        head += "\r\n";
        body.push_bytes(head.as_bytes());
        match part.content {
            Segment::Bytes(b) => body.push_bytes(&b),
            other => body.segments.push(other),
        }
        body.push_bytes(b"\r\n");
    }
    body.push_bytes(format!("--{boundary}--\r\n").as_bytes());
    Ok((body, format!("multipart/form-data; boundary={boundary}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_keeps_only_unreserved() {
        assert_eq!(urlencode(b"a b&c=d/~_.-"), "a%20b%26c%3Dd%2F~_.-");
    }

    #[test]
    fn urlencoded_forms() {
        let f = |s: &str| String::from_utf8(urlencoded_part(s).unwrap()).unwrap();
        assert_eq!(f("a b"), "a+b");
        assert_eq!(f("=a=b"), "a%3Db");
        assert_eq!(f("q=a b"), "q=a+b");
    }

    #[test]
    fn query_appended_before_the_fragment() {
        let q = |u: &str| append_query(u, b"x=1").unwrap();
        assert_eq!(q("http://h/p"), "http://h/p?x=1");
        assert_eq!(q("http://h/p?a=b#f"), "http://h/p?a=b&x=1#f");
        assert_eq!(q("http://h:1"), "http://h:1/?x=1");
    }

    #[test]
    fn upload_url_takes_the_file_name_after_a_slash() {
        let f = Path::new("/tmp/a b.txt");
        assert_eq!(upload_url("http://h/up/", f), "http://h/up/a%20b.txt");
        assert_eq!(upload_url("http://h", f), "http://h/a%20b.txt");
        assert_eq!(upload_url("http://h/x", f), "http://h/x");
    }
}
