//! Ways an upstream can echo the token back, as a table: for each, the
//! token's bytes must never reach the client in any output (stdout, stderr,
//! `-i`, `-o` file, `--json`), not even after the script inflates what it
//! got (issue #11 items 1 and 2).

use std::io::Read;

use harness::{Daemon, Upstream, canary};

/// How the script asks: each case runs in every one of these.
const MODES: &[&str] = &["plain", "-i", "-o", "--print=json"];

/// What a case expects besides "no token anywhere".
#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// Exit 0 and this text (decoded, redacted) in the body.
    Body(&'static str),
    /// A non-zero exit and no body at all.
    Refused,
    /// Either; only the absence of the token is asserted.
    Any,
}

struct Case {
    name: &'static str,
    /// Credential: `b` (bearer), `p` (bearer, `--path-prefix /redirect-echo`)
    /// or `s` (bearer, the token with '/', '+' and '=').
    cred: &'static str,
    path: &'static str,
    args: &'static [&'static str],
    /// Send a streamed body (`-d @FILE` of 2 MiB).
    streamed: bool,
    expect: Expect,
}

const fn case(name: &'static str, path: &'static str, expect: Expect) -> Case {
    Case {
        name,
        cred: "b",
        path,
        args: &[],
        streamed: false,
        expect,
    }
}

/// The slash token echoed by `/echo-form` in one encoding.
fn form(name: &'static str, form: &'static str) -> Case {
    // Leaked: a handful of short-lived strings per test run.
    let path: &'static str = Box::leak(format!("/echo-form?form={form}").into_boxed_str());
    Case {
        cred: "s",
        ..case(name, path, Expect::Body("echo=[redacted];end"))
    }
}

fn cases() -> Vec<Case> {
    vec![
        // Item 1: a compressed echo, sent whatever vaultd asked for
        // (`identity`), is refused whole: the redactor reads only plain
        // bodies (redteam_front.rs: reqwest's decoding could be fooled).
        case("gzip", "/echo-compressed?enc=gzip", Expect::Refused),
        case("deflate", "/echo-compressed?enc=deflate", Expect::Refused),
        case("br", "/echo-compressed?enc=br", Expect::Refused),
        case("zstd", "/echo-compressed?enc=zstd", Expect::Refused),
        Case {
            args: &["-H", "Accept-Encoding: gzip"],
            ..case(
                "gzip, client Accept-Encoding",
                "/echo-compressed?enc=gzip",
                Expect::Refused,
            )
        },
        Case {
            args: &["-H", "Accept-Encoding: zstd;q=1, br;q=0.5"],
            ..case(
                "zstd, client Accept-Encoding",
                "/echo-compressed?enc=zstd",
                Expect::Refused,
            )
        },
        Case {
            args: &["-H", "TE: gzip"],
            ..case(
                "gzip, client TE",
                "/echo-compressed?enc=gzip",
                Expect::Refused,
            )
        },
        Case {
            args: &["-H", "Accept-Encoding: compress"],
            ..case(
                "compress (cannot decode)",
                "/echo-compressed?enc=compress",
                Expect::Refused,
            )
        },
        case(
            "stacked gzip, gzip",
            "/echo-compressed?enc=gzip,%20gzip",
            Expect::Refused,
        ),
        // Item 2: strings from the upstream outside the body.
        Case {
            args: &["-L"],
            ..case(
                "same-origin redirect, token in final url",
                "/redirect-echo?to=/echo%3Ft%3DTOKEN",
                Expect::Any,
            )
        },
        case(
            "redirect not followed, token in Location",
            "/redirect-echo?to=/echo%3Ft%3DTOKEN",
            Expect::Any,
        ),
        Case {
            args: &["-L"],
            streamed: true,
            ..case(
                "307 with a streamed body",
                "/redirect-echo?code=307&to=/echo%3Ft%3DTOKEN",
                Expect::Refused,
            )
        },
        Case {
            cred: "p",
            args: &["-L"],
            ..case(
                "redirect outside --path-prefix",
                "/redirect-echo?to=/outside/TOKEN",
                Expect::Refused,
            )
        },
        Case {
            args: &["-L"],
            ..case(
                "cross-origin redirect, token as host",
                "/redirect-echo?to=http://TOKEN.example/",
                Expect::Refused,
            )
        },
        Case {
            args: &["-L"],
            ..case(
                "cross-origin redirect, token as user",
                "/redirect-echo?to=http://TOKEN@127.0.0.2:1/",
                Expect::Refused,
            )
        },
        // Content-Length must not reveal the token's length after redaction.
        case("raw echo", "/echo-encoded", Expect::Any),
        // Item 4: everyday encodings, with a token that has '/', '+' and
        // '=' in it and whose base64 has '/' and wraps at 64 and 76 columns.
        // The whole form must become one mark.
        form("upper-cased", "upper"),
        form("lower-cased", "lower"),
        form("JSON with escaped slashes (PHP)", "json-php"),
        form("JSON-escaped base64", "json-b64"),
        form("percent-encoded, '/' left alone (Python quote)", "quote"),
        form("base64 wrapped at 76, LF", "mime-lf"),
        form("base64 wrapped at 76, CRLF (MIME)", "mime-crlf"),
        form("base64 wrapped at 64 (PEM)", "pem"),
        form("hex", "hex"),
        form("hex, upper case", "hex-upper"),
        form("JSON \\u escape of every char", "json-u"),
        form("UTF-16LE", "utf16le"),
        form("UTF-16BE", "utf16be"),
    ]
}

/// Every way the script could recover the token from `out`: as sent, or
/// after inflating it with any decoder the script might try.
fn views(out: &[u8]) -> Vec<Vec<u8>> {
    let mut v = vec![out.to_vec()];
    let mut buf = Vec::new();
    if flate2::read::MultiGzDecoder::new(out)
        .read_to_end(&mut buf)
        .is_ok()
    {
        v.push(std::mem::take(&mut buf));
    }
    buf.clear();
    if flate2::read::ZlibDecoder::new(out)
        .read_to_end(&mut buf)
        .is_ok()
    {
        v.push(std::mem::take(&mut buf));
    }
    buf.clear();
    if brotli::Decompressor::new(out, 4096)
        .read_to_end(&mut buf)
        .is_ok()
    {
        v.push(std::mem::take(&mut buf));
    }
    if let Ok(b) = zstd::decode_all(out) {
        v.push(b);
    }
    v
}

/// Where `token` (case-insensitively, since hosts are lower-cased) appears
/// in `out` or in any inflated view of it.
fn find_token(out: &[u8], token: &str) -> Option<String> {
    let needle = token.to_ascii_lowercase();
    views(out).into_iter().find_map(|v| {
        let hay = String::from_utf8_lossy(&v).to_ascii_lowercase();
        hay.contains(&needle).then_some(hay)
    })
}

/// The Content-Length the `-i` output announces, if any.
fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

#[test]
fn no_echo_of_the_token_reaches_the_client() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    // Upper-case letters, so a lower-cased echo (a URL's host) differs.
    let token = canary("TOK");
    d.add("b", &token, &["--bearer", "--origin", &up.origin()])
        .ok();
    d.add(
        "p",
        &token,
        &[
            "--bearer",
            "--origin",
            &up.origin(),
            "--path-prefix",
            "/redirect-echo",
        ],
    )
    .ok();
    // A base64-looking token (as many APIs issue): '/', '+', '=', long
    // enough to wrap, with a suffix that puts a '/' in its own base64.
    let slash_token = ["", "?", "??", "???"]
        .iter()
        .map(|q| format!("{}/{}+Zz={q}", canary("SLASH"), canary("Long")))
        .find(|t| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .encode(t)
                .contains('/')
        })
        .expect("a suffix that puts '/' in the base64");
    d.add("s", &slash_token, &["--bearer", "--origin", &up.origin()])
        .ok();
    let upload = d.path("upload.bin");
    // Over vaultctl's 1 MiB inline limit, so it is streamed.
    let mut streamed = b"streamed body".to_vec();
    streamed.resize(2 << 20, b'.');
    std::fs::write(&upload, &streamed).unwrap();
    let upload_arg = format!("@{}", upload.display());

    let mut failures = Vec::new();
    for c in cases() {
        for mode in MODES {
            let url = up.url(c.path);
            let out_file = d.path("out.bin");
            let _ = std::fs::remove_file(&out_file);
            let out_arg = out_file.display().to_string();
            let mut args = vec!["request", c.cred, url.as_str()];
            args.extend_from_slice(c.args);
            if c.streamed {
                args.extend_from_slice(&["-d", &upload_arg]);
            }
            match *mode {
                "plain" => {}
                "-o" => args.extend_from_slice(&["-o", &out_arg]),
                m => args.push(m),
            }
            let (code, stdout, stderr) = run(&d, &args);
            let file = std::fs::read(&out_file).unwrap_or_default();
            let label = format!("{} [{mode}]", c.name);
            let secret = if c.cred == "s" { &slash_token } else { &token };
            for (what, bytes) in [
                ("stdout", &stdout),
                ("stderr", &stderr.clone().into_bytes()),
                ("-o file", &file),
            ] {
                if let Some(hay) = find_token(bytes, secret) {
                    failures.push(format!("{label}: token in {what}: {hay}"));
                }
            }
            let body = if *mode == "-o" { &file } else { &stdout };
            match c.expect {
                Expect::Body(text) => {
                    let shown = String::from_utf8_lossy(body);
                    if code != 0 || !shown.contains(text) {
                        failures.push(format!(
                            "{label}: expected exit 0 and {text:?}; exit {code}, body {shown:?}, stderr {stderr}"
                        ));
                    }
                }
                Expect::Refused => {
                    if code == 0 || !body.is_empty() && *mode != "-i" {
                        failures.push(format!(
                            "{label}: expected a refusal with no body; exit {code}, body {:?}",
                            String::from_utf8_lossy(body)
                        ));
                    }
                    if *mode == "-i" && count_body_after_head(&stdout) > 0 {
                        failures.push(format!("{label}: -i printed a body"));
                    }
                }
                Expect::Any => {}
            }
            if *mode == "-i" && code == 0 {
                let text = String::from_utf8_lossy(&stdout).into_owned();
                if let Some((head, rest)) = text.split_once("\r\n\r\n").or(text.split_once("\n\n"))
                {
                    if let Some(n) = content_length(head) {
                        if n != rest.len() {
                            failures.push(format!(
                                "{label}: Content-Length {n} but the body has {} bytes",
                                rest.len()
                            ));
                        }
                    }
                }
            }
        }
    }
    d.assert_log_clean();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Bytes after the blank line ending the head in `-i` output.
fn count_body_after_head(out: &[u8]) -> usize {
    let text = String::from_utf8_lossy(out);
    text.split_once("\r\n\r\n")
        .or(text.split_once("\n\n"))
        .map_or(0, |(_, b)| b.len())
}

/// Runs vaultctl without the harness's stderr check, so every case is
/// reported rather than only the first leak.
fn run(d: &Daemon, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = d
        .cmd()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run vaultctl");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
