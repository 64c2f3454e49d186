//! `-w/--write-out FORMAT`, as curl: `%{variable}`, `%header{name}`,
//! `%%`, `\n` `\r` `\t`, `%{stdout}`/`%{stderr}` to switch streams. The
//! format is parsed before anything is sent, so an unknown variable is an
//! error that names it (curl only warns and prints nothing for it, which
//! a script would take for an empty value).
//!
//! Every value comes from what vaultd returned, which is already redacted
//! (SECURITY.md property 7): headers, the effective URL and error messages
//! carry no byte of the token, and sizes count the decoded, redacted body.

use proto::Header;

use crate::exit::Failure;

/// What `-w` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    HttpCode,
    ResponseCode,
    TimeTotal,
    TimeStartTransfer,
    SizeDownload,
    SizeUpload,
    UrlEffective,
    ContentType,
    NumRedirects,
    ExitCode,
    ErrorMsg,
    Json,
}

const VARS: &[(&str, Var)] = &[
    ("http_code", Var::HttpCode),
    ("response_code", Var::ResponseCode),
    ("time_total", Var::TimeTotal),
    ("time_starttransfer", Var::TimeStartTransfer),
    ("size_download", Var::SizeDownload),
    ("size_upload", Var::SizeUpload),
    ("url_effective", Var::UrlEffective),
    ("content_type", Var::ContentType),
    ("num_redirects", Var::NumRedirects),
    ("exitcode", Var::ExitCode),
    ("errormsg", Var::ErrorMsg),
    ("json", Var::Json),
];

/// curl variables a script may well use that vaultctl cannot fill in
/// truthfully yet: an error rather than a made-up number.
const NOT_YET: &[&str] = &["time_connect", "time_appconnect", "time_pretransfer"];

#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Lit(Vec<u8>),
    Var(Var),
    Header(String),
    Stdout,
    Stderr,
}

/// What one transfer produced, for the variables.
#[derive(Default)]
pub struct Info {
    /// 0 when no response arrived (printed `000`).
    pub status: u16,
    pub time_total: f64,
    pub time_starttransfer: f64,
    pub size_download: u64,
    pub size_upload: u64,
    pub url_effective: String,
    pub num_redirects: u32,
    pub exitcode: u8,
    pub errormsg: String,
    pub headers: Vec<Header>,
}

impl Info {
    fn header(&self, name: &str) -> Option<String> {
        let vals: Vec<String> = self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
            .collect();
        (!vals.is_empty()).then(|| vals.join(", "))
    }
}

/// Parses FORMAT (or the contents of `@FILE`).
pub fn parse(format: &str) -> Result<Vec<Piece>, Failure> {
    let text = match format.strip_prefix('@') {
        Some(file) => {
            let mut buf = Vec::new();
            let res = if file == "-" {
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            } else {
                std::fs::File::open(file)
                    .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut buf))
            };
            res.map_err(|e| Failure::usage(format!("-w: cannot read {file}: {e}")))?;
            String::from_utf8_lossy(&buf).into_owned()
        }
        None => format.to_owned(),
    };
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    let flush = |lit: &mut Vec<u8>, out: &mut Vec<Piece>| {
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(lit)));
        }
    };
    while i < b.len() {
        match b[i] {
            b'%' if b.get(i + 1) == Some(&b'%') => {
                lit.push(b'%');
                i += 2;
            }
            b'%' if text[i..].starts_with("%{") || text[i..].starts_with("%header{") => {
                let open = i + text[i..].find('{').unwrap_or(0);
                let Some(close) = text[open..].find('}').map(|c| open + c) else {
                    return Err(Failure::usage(format!(
                        "-w: unterminated variable {:?}",
                        &text[i..]
                    )));
                };
                let name = &text[open + 1..close];
                flush(&mut lit, &mut out);
                if text[i..].starts_with("%header{") {
                    out.push(Piece::Header(name.to_owned()));
                } else if name == "stdout" {
                    out.push(Piece::Stdout);
                } else if name == "stderr" {
                    out.push(Piece::Stderr);
                } else if NOT_YET.contains(&name) {
                    return Err(Failure::usage(format!(
                        "-w: vaultctl cannot report %{{{name}}} yet: vaultd's HTTP client does not say when its connection was made"
                    )));
                } else {
                    let var = VARS
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| {
                            Failure::usage(format!(
                                "-w: vaultctl does not support the variable %{{{name}}} (it knows {}, %header{{NAME}}, stdout and stderr)",
                                VARS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                            ))
                        })?;
                    out.push(Piece::Var(var));
                }
                i = close + 1;
            }
            b'\\' if i + 1 < b.len() => {
                match b[i + 1] {
                    b'n' => lit.push(b'\n'),
                    b'r' => lit.push(b'\r'),
                    b't' => lit.push(b'\t'),
                    c => lit.extend_from_slice(&[b'\\', c]),
                }
                i += 2;
            }
            c => {
                lit.push(c);
                i += 1;
            }
        }
    }
    flush(&mut lit, &mut out);
    Ok(out)
}

fn value(var: Var, info: &Info) -> String {
    match var {
        Var::HttpCode | Var::ResponseCode => format!("{:03}", info.status),
        Var::TimeTotal => format!("{:.6}", info.time_total),
        Var::TimeStartTransfer => format!("{:.6}", info.time_starttransfer),
        Var::SizeDownload => info.size_download.to_string(),
        Var::SizeUpload => info.size_upload.to_string(),
        Var::UrlEffective => info.url_effective.clone(),
        Var::ContentType => info.header("content-type").unwrap_or_default(),
        Var::NumRedirects => info.num_redirects.to_string(),
        Var::ExitCode => info.exitcode.to_string(),
        Var::ErrorMsg => info.errormsg.clone(),
        Var::Json => json(info).to_string(),
    }
}

/// `%{json}`: every variable above in one object, typed as curl types
/// them (numbers as numbers, an absent content type or error as null).
pub fn json(info: &Info) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let opt = |s: String| {
        if s.is_empty() {
            serde_json::Value::Null
        } else {
            s.into()
        }
    };
    m.insert("content_type".into(), opt(value(Var::ContentType, info)));
    m.insert("errormsg".into(), opt(info.errormsg.clone()));
    m.insert("exitcode".into(), info.exitcode.into());
    m.insert("http_code".into(), info.status.into());
    m.insert("num_redirects".into(), info.num_redirects.into());
    m.insert("response_code".into(), info.status.into());
    m.insert("size_download".into(), info.size_download.into());
    m.insert("size_upload".into(), info.size_upload.into());
    m.insert("time_starttransfer".into(), info.time_starttransfer.into());
    m.insert("time_total".into(), info.time_total.into());
    m.insert("url_effective".into(), info.url_effective.clone().into());
    serde_json::Value::Object(m)
}

/// Writes the format to stdout (or stderr after `%{stderr}`).
pub fn render(pieces: &[Piece], info: &Info) {
    use std::io::Write;
    let mut to_stderr = false;
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for p in pieces {
        let bytes: Vec<u8> = match p {
            Piece::Lit(b) => b.clone(),
            Piece::Var(v) => value(*v, info).into_bytes(),
            Piece::Header(name) => info.header(name).unwrap_or_default().into_bytes(),
            Piece::Stdout => {
                to_stderr = false;
                continue;
            }
            Piece::Stderr => {
                to_stderr = true;
                continue;
            }
        };
        let _ = if to_stderr {
            err.write_all(&bytes)
        } else {
            out.write_all(&bytes)
        };
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vars_escapes_and_headers() {
        let p = parse("%{http_code}\\n%%%header{X-A}").unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Var(Var::HttpCode),
                Piece::Lit(b"\n%".to_vec()),
                Piece::Header("X-A".into())
            ]
        );
    }

    #[test]
    fn unknown_variable_is_named() {
        let e = parse("%{local_port}").unwrap_err();
        assert!(e.message.contains("%{local_port}"), "{}", e.message);
    }
}
