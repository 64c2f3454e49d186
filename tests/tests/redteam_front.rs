//! Red team of the HTTP front (issue 18) and of curl parity for `vaultctl
//! request` (issue 15): a script of the vault's uid that talks only to
//! vaultd's sockets (the front with curl or raw bytes, or vaultctl) and to
//! servers of its own on loopback tries to get a byte of a stored token,
//! a figure computed from a compressed body that held it, or to make
//! vaultd send it to a server of its own.
//!
//! Every test asserts the attack FAILS. Four worked on the code they were
//! written against (581afd4) and are fixed: two `Content-Encoding` lines
//! (reqwest's decoder read the first and dropped both; vaultd now asks
//! for `identity` and refuses any coded answer), the front's `Location`
//! rewrite rejoining a split echo, and storage services' checksum headers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::raw::run;
use harness::{Daemon, canary, leaks};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn front(d: &Daemon) -> PathBuf {
    d.socket.parent().unwrap().join("http.sock")
}

/// What a raw upstream was sent: the whole head, lower-cased names.
#[derive(Clone, Default)]
struct Req {
    target: String,
    token: Vec<u8>,
}

/// A raw HTTP/1.1 upstream answering every request with `answer(req)`
/// (a whole response, bytes as given), then closing. Records every head.
struct Raw {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Raw {
    fn start(answer: impl Fn(&Req) -> Vec<u8> + Send + Sync + 'static) -> Raw {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h2 = heads.clone();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(s) = conn else { continue };
                let answer = answer.clone();
                let heads = h2.clone();
                std::thread::spawn(move || serve(s, &*answer, &heads));
            }
        });
        Raw { addr, heads }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }
}

fn serve(mut s: TcpStream, answer: &dyn Fn(&Req) -> Vec<u8>, heads: &Mutex<Vec<Vec<u8>>>) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut head = Vec::new();
    let mut line = Vec::new();
    let mut req = Req::default();
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" {
            break;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        if req.target.is_empty() {
            req.target = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
            continue;
        }
        if let Some((n, v)) = text.split_once(':') {
            let v = v.trim();
            match n.trim().to_ascii_lowercase().as_str() {
                "authorization" => {
                    req.token = v.strip_prefix("Bearer ").unwrap_or(v).as_bytes().to_vec();
                }
                "content-length" => len = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; len];
    let _ = r.read_exact(&mut body);
    heads.lock().unwrap().push(head);
    let out = answer(&req);
    // A response that asks for pacing: `PACE` + the head, then each piece
    // of the marked body as its own chunk, 30 ms apart.
    if let Some(rest) = out.strip_prefix(b"PACE".as_slice()) {
        let split = memchr::memmem::find(rest, b"\r\n\r\n").unwrap() + 4;
        let _ = s.write_all(&rest[..split]);
        let piece_len = if out.len() > 2000 { PIECE_BIG } else { PIECE };
        for piece in rest[split..].chunks(piece_len) {
            let _ = s.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
            let _ = s.write_all(piece);
            let _ = s.write_all(b"\r\n");
            let _ = s.flush();
            std::thread::sleep(Duration::from_millis(PACE_MS));
        }
        let _ = s.write_all(b"0\r\n\r\n");
        std::thread::sleep(Duration::from_millis(50));
        return;
    }
    let _ = s.write_all(&out);
    let _ = s.flush();
    std::thread::sleep(Duration::from_millis(50));
}

/// Bytes per paced piece.
const PIECE: usize = 6;
/// Bytes per paced piece of a longer paced body.
const PIECE_BIG: usize = 2048;
/// Milliseconds between paced pieces.
const PACE_MS: u64 = 70;

/// A daemon with credential `rt` (bearer) bound to `origin`.
fn daemon_for(origin: &str, token: &str) -> Daemon {
    let d = Daemon::start("audit = true\n");
    d.init();
    d.add("rt", token, &["--bearer", "--origin", origin]).ok();
    d
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// `data`, and every gzip layer found inside it undone (up to three).
fn inflated(data: &[u8]) -> Vec<u8> {
    let mut all = data.to_vec();
    let mut cur = data.to_vec();
    for _ in 0..3 {
        let Some(at) = memchr::memmem::find(&cur, &[0x1f, 0x8b]) else {
            break;
        };
        let mut d = flate2::read::MultiGzDecoder::new(&cur[at..]);
        let mut out = Vec::new();
        let _ = d.read_to_end(&mut out);
        if out.is_empty() {
            break;
        }
        all.extend_from_slice(b"\n");
        all.extend_from_slice(&out);
        cur = out;
    }
    all
}

#[track_caller]
fn assert_clean(what: &str, hay: &[u8]) {
    let l = leaks(&inflated(hay));
    assert!(l.is_empty(), "{what}: the script got the token: {l:?}");
}

/// curl through the front: every byte it printed (-i), stdout and stderr.
fn curl_front(sock: &Path, url: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", "--unix-socket"])
        .arg(sock)
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let mut all = out.stdout;
    all.extend_from_slice(&out.stderr);
    all
}

/// Raw bytes to the front, everything until close or 5 s.
fn raw_front(sock: &Path, req: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// `vaultctl request` with `args`: stdout, stderr and any files in `dir`.
fn vaultctl_all(d: &Daemon, args: &[&str], dir: Option<&Path>) -> Vec<u8> {
    let (code, mut out, err) = run(d, args);
    eprintln!("vaultctl {args:?}: exit {code}");
    out.extend_from_slice(&err);
    if let Some(dir) = dir {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                out.extend_from_slice(&b);
            }
        }
    }
    out
}

fn response(status: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------------------
// Compressed bodies (property: "stacked encodings refused")
// ---------------------------------------------------------------------------

/// A body gzipped twice, its two codings on two `Content-Encoding` lines
/// (RFC 9110 §5.3: the same as `gzip, gzip`, which vaultd refuses).
/// tower-http's decompression looks at the first line only, decodes one
/// layer and then removes every `Content-Encoding` line, so vaultd's
/// check for an undecoded coding sees none: the still-gzipped body goes
/// past the redactor to the client, which inflates it.
#[test]
fn two_content_encoding_lines_pass_a_gzipped_echo_through() {
    let raw = Raw::start(|req| {
        // An account page: text that compresses (Huffman-coded, so no
        // literal copy of the token is left for the redactor to see).
        let mut plain = Vec::new();
        for i in 0..20 {
            plain.extend_from_slice(format!("line {i}: your key is ").as_bytes());
            plain.extend_from_slice(&req.token);
            plain.extend_from_slice(b" and it is active\n");
        }
        let twice = gzip(&gzip(&plain));
        response(
            "200 OK",
            &[
                ("Content-Type", b"text/plain"),
                ("Content-Encoding", b"gzip"),
                ("Content-Encoding", b"gzip"),
            ],
            &twice,
        )
    });
    let token = canary("rtce");
    let d = daemon_for(&raw.origin(), &token);
    let url = format!("{}/x", raw.origin());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let channels = [
        (
            "vaultctl request",
            vaultctl_all(&d, &["request", "rt", &url], None),
        ),
        (
            "vaultctl request --compressed -o FILE",
            vaultctl_all(
                &d,
                &[
                    "request",
                    "rt",
                    &url,
                    "--compressed",
                    "-o",
                    out.to_str().unwrap(),
                ],
                Some(dir.path()),
            ),
        ),
        (
            "curl via the front",
            curl_front(&front(&d), "http://rt/x", &[]),
        ),
    ];
    assert!(
        raw.heads.lock().unwrap().len() >= 3,
        "the upstream was reached"
    );
    let leaked: Vec<&str> = channels
        .iter()
        .filter(|(_, got)| !leaks(&inflated(got)).is_empty())
        .map(|(n, _)| *n)
        .collect();
    assert!(
        leaked.is_empty(),
        "double gzip on two Content-Encoding lines: the token (inside a gzip body vaultd passed on) reached the script via {leaked:?}"
    );
}

/// The same with the size only: `-w %{size_download}` over a body that
/// is still compressed is a BREACH oracle (a reflected guess sharing a
/// prefix with the token compresses smaller). Guess right vs wrong prefix.
#[test]
fn size_download_of_a_still_compressed_echo_is_not_a_breach_oracle() {
    let raw = Raw::start(|req| {
        // The upstream reflects the query beside the token, as a search
        // page or an error page does.
        let mut plain = b"q=".to_vec();
        plain.extend_from_slice(req.target.as_bytes());
        plain.extend_from_slice(b" key=");
        plain.extend_from_slice(&req.token);
        plain.extend_from_slice(&b"the quick brown fox jumps over the lazy dog\n".repeat(8));
        let twice = gzip(&gzip(&plain));
        response(
            "200 OK",
            &[("Content-Encoding", b"gzip"), ("Content-Encoding", b"gzip")],
            &twice,
        )
    });
    let token = canary("rtbreach");
    let d = daemon_for(&raw.origin(), &token);
    let size = |guess: &str| -> u64 {
        let url = format!("{}/s?{}", raw.origin(), guess);
        let (_, out, _) = run(
            &d,
            &[
                "request",
                "rt",
                &url,
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
            ],
        );
        let (_, body, err) = run(&d, &["request", "rt", &url]);
        eprintln!(
            "{guess}: {} bytes {}",
            body.len(),
            String::from_utf8_lossy(&err)
        );
        String::from_utf8_lossy(&out).trim().parse().unwrap_or(0)
    };
    // Redacted plaintext would be the same length for both (the guess is
    // the same length); a compressed body is not.
    let right = format!("key={}", &token[..20]);
    let wrong = format!("key={}", "Zq9Xw7Vb3Nm1Lk5Jh8Gf");
    let (a, b) = (size(&right), size(&wrong));
    eprintln!("size right {a} wrong {b}");
    assert_eq!(
        a, b,
        "size_download depends on whether a guess matches the token"
    );
}

// ---------------------------------------------------------------------------
// Location rewriting on the front
// ---------------------------------------------------------------------------

/// A `Location` into the origin is redacted, then rewritten to
/// `http://NAME/path`. A URL parser would remove every ASCII tab (and
/// CR/LF) from its input, so a token echoed with a tab inside (which no
/// redactor pattern matches) would come out whole (finding, fixed: only
/// the origin prefix is replaced, the rest passed byte for byte).
#[test]
fn location_rewrite_does_not_rejoin_a_token_split_by_a_tab() {
    let raw = Raw::start(|req| {
        let t = &req.token;
        let mid = t.len() / 2;
        let mut loc = b"/next/".to_vec();
        loc.extend_from_slice(&t[..mid]);
        loc.push(b'\t');
        loc.extend_from_slice(&t[mid..]);
        response("302 Found", &[("Location", &loc)], b"")
    });
    let token = canary("rtloc");
    let d = daemon_for(&raw.origin(), &token);
    let got = curl_front(&front(&d), "http://rt/x", &[]);
    eprintln!("{}", String::from_utf8_lossy(&got));
    assert_clean("tab-split Location through the front", &got);
}

/// Dot segments and backslashes: the `url` crate resolves `/a/../b` and
/// turns `\` into `/` in http(s) paths. A token with a `/` in it (base64)
/// echoed as `PRE/x/../POST` (no pattern) was rejoined by the rewrite
/// (finding, fixed as above).
#[test]
fn location_rewrite_does_not_rejoin_a_token_split_by_dot_segments() {
    let raw = Raw::start(|req| {
        let t = &req.token;
        let slash = t.iter().position(|&b| b == b'/').unwrap_or(t.len() / 2);
        let mut loc = b"/".to_vec();
        loc.extend_from_slice(&t[..slash]);
        loc.extend_from_slice(b"/zz/..");
        loc.extend_from_slice(&t[slash..]);
        let mut loc2 = b"/".to_vec();
        loc2.extend_from_slice(&t[..slash]);
        loc2.push(b'\\');
        loc2.extend_from_slice(&t[slash + 1..]);
        response("302 Found", &[("Location", &loc), ("X-Alt", &loc2)], b"")
    });
    // A base64-looking token with a '/'.
    // Not a registered canary: only the whole token is a leak here.
    let token = format!("rtdot{}/Zm9vYmFyYmF6", std::process::id());
    let d = daemon_for(&raw.origin(), &token);
    let got = curl_front(&front(&d), "http://rt/x", &[]);
    eprintln!("{}", String::from_utf8_lossy(&got));
    assert!(
        memchr::memmem::find(&got, token.as_bytes()).is_none(),
        "dot-segment Location: the client got the token {token}"
    );
}

// ---------------------------------------------------------------------------
// Trailers, 1xx, HEAD, 204 with a body
// ---------------------------------------------------------------------------

/// Chunked trailers and chunk extensions carrying the token raw, a 103 Early Hints head with
/// the token in a Link header, and a 204 with a body after it: none of
/// them reaches the client (curl -i prints trailers and 1xx heads).
#[test]
fn trailers_early_hints_and_bodies_on_204_carry_nothing() {
    let raw = Raw::start(|req| {
        let t = String::from_utf8_lossy(&req.token).into_owned();
        match req.target.as_str() {
            "/trailer" => format!(
                "HTTP/1.1 200 OK\r\nTrailer: X-Key\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\nX-Key: {t}\r\n\r\n"
            )
            .into_bytes(),
            "/ext" => format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2;key={t};x=\"{t}\"\r\nok\r\n0;key={t}\r\n\r\n"
            )
            .into_bytes(),
            "/hints" => format!(
                "HTTP/1.1 103 Early Hints\r\nLink: </{t}>; rel=preload\r\nX-Key: {t}\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            )
            .into_bytes(),
            "/204" => format!(
                "HTTP/1.1 204 No Content\r\nContent-Length: 40\r\n\r\nHTTP/1.1 200 OK\r\nX-Key: {t}\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
            "/head" => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nkey={t}"
            )
            .into_bytes(),
            _ => response("404 Not Found", &[], b""),
        }
    });
    let token = canary("rttrail");
    let d = daemon_for(&raw.origin(), &token);
    let sock = front(&d);
    let mut got = Vec::new();
    got.extend(curl_front(&sock, "http://rt/trailer", &["--raw"]));
    got.extend(curl_front(&sock, "http://rt/trailer", &[]));
    got.extend(curl_front(&sock, "http://rt/ext", &["--raw"]));
    got.extend(curl_front(&sock, "http://rt/hints", &[]));
    got.extend(curl_front(&sock, "http://rt/204", &[]));
    got.extend(curl_front(&sock, "http://rt/204", &[]));
    got.extend(curl_front(&sock, "http://rt/head", &["-I"]));
    got.extend(raw_front(
        &sock,
        b"GET /204 HTTP/1.1\r\nHost: rt\r\n\r\nGET /head HTTP/1.1\r\nHost: rt\r\n\r\nGET /trailer HTTP/1.1\r\nHost: rt\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    ));
    let url = format!("{}/trailer", raw.origin());
    got.extend(vaultctl_all(
        &d,
        &[
            "request",
            "rt",
            &url,
            "-v",
            "-i",
            "-D",
            "-",
            "-w",
            "%{json}%header{x-key}",
        ],
        None,
    ));
    let url = format!("{}/hints", raw.origin());
    got.extend(vaultctl_all(
        &d,
        &[
            "request",
            "rt",
            &url,
            "-v",
            "-i",
            "-w",
            "%header{x-key}%header{link}",
        ],
        None,
    ));
    eprintln!("{}", String::from_utf8_lossy(&got));
    assert_clean("trailers / 103 / 204 body / HEAD", &got);
    d.assert_log_clean();
}

// ---------------------------------------------------------------------------
// Keep-alive across two credentials, and sending the token elsewhere
// ---------------------------------------------------------------------------

/// One front connection: a request for `a` (bound to an honest echo
/// upstream), then one for `b` (the script's own credential, bound to the
/// script's own server), pipelined and then again after a response. The
/// script's server must never receive `a`'s token.
#[test]
fn keep_alive_across_two_credentials_sends_nothing_to_the_scripts_server() {
    let honest = Raw::start(|req| {
        let mut b = b"echo:".to_vec();
        b.extend_from_slice(&req.token);
        response("200 OK", &[("X-Echo", &req.token)], &b)
    });
    let mine_seen: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    let ms = mine_seen.clone();
    let mine = Raw::start(move |req| {
        ms.lock().unwrap().extend_from_slice(&req.token);
        ms.lock().unwrap().extend_from_slice(req.target.as_bytes());
        response("307 Temporary Redirect", &[("Location", b"/again")], b"")
    });
    let token = canary("rtka");
    let d = daemon_for(&honest.origin(), &token);
    d.add(
        "b",
        "script-own-token-123",
        &["--bearer", "--origin", &mine.origin()],
    )
    .ok();
    let sock = front(&d);
    let mut got = Vec::new();
    got.extend(raw_front(
        &sock,
        b"GET /1 HTTP/1.1\r\nHost: rt\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\nGET /3 HTTP/1.1\r\nHost: RT.\r\n\r\nGET /4 HTTP/1.1\r\nHost: b\r\nTokenvault-Origin: HTTP://127.0.0.1\r\nConnection: close\r\n\r\n",
    ));
    // The same, not pipelined.
    {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 65536];
        for host in ["rt", "b", "rt", "b"] {
            s.write_all(format!("GET /k HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
                .unwrap();
            if let Ok(n) = s.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
    }
    // curl following the script's redirect, and vaultctl -L with --retry
    // on a credential whose upstream redirects to the script's server.
    got.extend(curl_front(
        &sock,
        "http://b/x",
        &["-L", "--max-redirs", "3"],
    ));
    let url = format!("{}/x", mine.origin());
    got.extend(vaultctl_all(
        &d,
        &["request", "b", &url, "-L", "--retry", "2", "-v"],
        None,
    ));
    assert_clean("keep-alive across credentials", &got);
    let seen = mine_seen.lock().unwrap().clone();
    assert!(
        leaks(&seen).is_empty(),
        "the script's server got the token: {}",
        String::from_utf8_lossy(&seen)
    );
    for h in mine.heads.lock().unwrap().iter() {
        assert!(leaks(h).is_empty(), "{}", String::from_utf8_lossy(h));
    }
}

// ---------------------------------------------------------------------------
// -v / -D / -w on a Cookie credential the script adds cookies to
// ---------------------------------------------------------------------------

/// `-v` shows the request as sent with the credential as a placeholder.
/// A `Cookie` credential (`sid=TOKEN`) beside the script's own cookies
/// (`-b`, `-H Cookie:`) may be merged into one header line: the
/// placeholder must still cover the token's part, and the upstream's
/// echo of the merged line (`Set-Cookie`, a header, the body) is redacted.
#[test]
fn verbose_request_headers_with_merged_cookies_show_no_token() {
    let raw = Raw::start(|req| {
        let _ = req;
        response("200 OK", &[("Content-Type", b"text/plain")], b"ok")
    });
    // The raw server records the head; echo the Cookie line back from it.
    let token = canary("rtcookie");
    let d = Daemon::start("audit = true\n");
    d.init();
    d.add(
        "ck",
        &format!("sid={token}"),
        &["--header", "Cookie", "--origin", &raw.origin()],
    )
    .ok();
    let url = format!("{}/c", raw.origin());
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("h");
    let mut got = Vec::new();
    for extra in [
        vec!["-b", "a=b"],
        vec!["-H", "Cookie: a=b"],
        vec!["-H", "cookie: a=b", "-b", "c=d"],
        vec!["--cookie", "sid=x"],
    ] {
        let mut args = vec!["request", "ck", &url, "-v", "-i", "-D"];
        let dumps = dump.to_str().unwrap().to_owned();
        args.push(&dumps);
        args.extend(extra.iter().copied());
        args.extend(["-w", "%{json}"]);
        got.extend(vaultctl_all(&d, &args, Some(dir.path())));
    }
    got.extend(curl_front(
        &front(&d),
        "http://ck/c",
        &["-v", "-b", "a=b", "-H", "Cookie: e=f"],
    ));
    eprintln!("{}", String::from_utf8_lossy(&got));
    let heads = raw.heads.lock().unwrap().clone();
    for h in &heads {
        eprintln!("upstream got: {}", String::from_utf8_lossy(h));
    }
    assert_clean("-v with merged cookies", &got);
}

/// The same tab-split and dot-segment `Location`s through `vaultctl
/// request` (no -L: printed as sent, the upstream's own split form; -L:
/// vaultd follows within the origin and reports the final URL redacted
/// after parsing): `-i`, `-v`, `-D`, `-w %{url_effective}%header{location}`
/// and `%{json}` never show the whole token.
#[test]
fn vaultctl_request_does_not_rejoin_a_split_location() {
    let raw = Raw::start(|req| {
        let t = &req.token;
        if req.target.starts_with("/next") {
            return response("200 OK", &[], b"landed");
        }
        let mid = t.len() / 2;
        let mut loc = b"/next/".to_vec();
        loc.extend_from_slice(&t[..mid]);
        if req.target == "/tab" {
            loc.push(b'\t');
        } else {
            loc.extend_from_slice(b"/zz/..");
        }
        loc.extend_from_slice(&t[mid..]);
        response("302 Found", &[("Location", &loc)], b"")
    });
    let token = format!("rtvl{}/Zm9vYmFyYmF6LXZhbHVl", std::process::id());
    let d = daemon_for(&raw.origin(), &token);
    let mut got = Vec::new();
    for path in ["/tab", "/dot"] {
        let url = format!("{}{path}", raw.origin());
        for follow in [false, true] {
            let mut args = vec![
                "request",
                "rt",
                url.as_str(),
                "-v",
                "-i",
                "-D",
                "-",
                "-w",
                "%{url_effective} %header{location} %{json} %{errormsg}",
            ];
            if follow {
                args.push("-L");
            }
            got.extend(vaultctl_all(&d, &args, None));
        }
    }
    assert!(
        memchr::memmem::find(&got, token.as_bytes()).is_none(),
        "vaultctl rejoined a split Location: {}",
        String::from_utf8_lossy(&got)
    );
}

// ---------------------------------------------------------------------------
// BREACH through the front's chunk framing
// ---------------------------------------------------------------------------

/// The chunk sizes of a raw chunked body (after the head).
fn chunk_sizes(raw: &[u8]) -> Vec<usize> {
    let Some(at) = memchr::memmem::find(raw, b"\r\n\r\n") else {
        return vec![];
    };
    let mut rest = &raw[at + 4..];
    let mut out = Vec::new();
    while let Some(eol) = memchr::memmem::find(rest, b"\r\n") {
        let line = std::str::from_utf8(&rest[..eol]).unwrap_or("0");
        let n = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < eol + 2 + n {
            break;
        }
        out.push(n);
        rest = &rest[eol + 2 + n + 2..];
    }
    out
}

/// The redactor holds back the end of a streamed body that could be the
/// start of an echo. If how much it holds back depends on whether the
/// tail is a prefix of the token, the front's chunk framing is a prefix
/// oracle: an upstream that streams "You searched for: GUESS", then (slow
/// work) the rest, shows in the first chunk's size whether GUESS begins
/// the token. Right and wrong guesses of one length must give the same
/// framing.
#[test]
fn front_chunk_framing_is_not_a_prefix_oracle() {
    let raw = Raw::start(|req| {
        let q = req.target.split_once('?').map_or("", |(_, q)| q);
        let tail = format!("<p>You searched for: {q}");
        let mut part1 = Vec::new();
        let mut i = 0;
        while part1.len() + tail.len() + 40 < PIECE_BIG {
            part1.extend_from_slice(format!("<li>item {i} of the list</li>\n").as_bytes());
            i += 1;
        }
        part1.extend(std::iter::repeat_n(
            b'.',
            PIECE_BIG - part1.len() - tail.len(),
        ));
        part1.extend_from_slice(tail.as_bytes());
        assert_eq!(part1.len(), PIECE_BIG);
        let mut out = b"PACEHTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        // Two pieces: the page up to the reflected guess, then the rest.
        out.extend_from_slice(&part1);
        out.extend_from_slice(b"</p>");
        out.extend_from_slice(&b"<p>no results</p>\n".repeat(10));
        out
    });
    let token = canary("rtpfx");
    let d = daemon_for(&raw.origin(), &token);
    let sock = front(&d);
    let probe = |guess: &str| -> Vec<usize> {
        let got = raw_front(
            &sock,
            format!("GET /s?{guess} HTTP/1.1\r\nHost: rt\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_clean("prefix probe", &got);
        chunk_sizes(&got)
    };
    let right = probe(&token[..20]);
    let wrong = probe("rtpfx-zzzzzzzzzzzzzz");
    eprintln!("right {right:?}\nwrong {wrong:?}");
    assert_eq!(
        right, wrong,
        "the framing depends on whether the guess begins the token"
    );
}

// ---------------------------------------------------------------------------
// Error messages: -w %{errormsg}, -v, stderr, problem+json detail
// ---------------------------------------------------------------------------

/// Upstream answers that make hyper or reqwest fail, each carrying the
/// token where a parser might quote it: a head over the limit, a chunk
/// size line, a status code, a header name, an unparsable redirect target
/// split by a tab (followed with -L). No message shows the token or a
/// 12-character piece of it.
#[test]
fn transport_error_messages_quote_no_part_of_the_token() {
    let raw = Raw::start(|req| {
        let t = String::from_utf8_lossy(&req.token).into_owned();
        let (a, b) = t.split_at(t.len() / 2);
        let path = req.target.split('?').next().unwrap_or("/").to_owned();
        match path.as_str() {
            "/huge" => {
                let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
                for i in 0..9000 {
                    r.extend_from_slice(format!("X-Pad-{i}: {t}{t}\r\n").as_bytes());
                }
                r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
                r
            }
            "/chunk" => format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{t}\r\nabc\r\n0\r\n\r\n"
            )
            .into_bytes(),
            "/status" => format!("HTTP/1.1 2{t} OK\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            "/name" => format!("HTTP/1.1 200 OK\r\n{t}{{: x\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            "/version" => format!("HTTP/{t} 200 OK\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            "/loc" => format!(
                "HTTP/1.1 302 Found\r\nLocation: http://{a}\t{b}:99999/\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
            "/loc2" => format!(
                "HTTP/1.1 302 Found\r\nLocation: http://[{a}\t{b}]/\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
            "/short" => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 999\r\nConnection: close\r\n\r\nkey={a}\t{b}"
            )
            .into_bytes(),
            _ => response("404 Not Found", &[], b""),
        }
    });
    let token = canary("rterr");
    let d = daemon_for(&raw.origin(), &token);
    let sock = front(&d);
    let mut got = Vec::new();
    for p in [
        "/huge", "/chunk", "/status", "/name", "/version", "/loc", "/loc2", "/short",
    ] {
        let url = format!("{}{p}", raw.origin());
        got.extend(vaultctl_all(
            &d,
            &[
                "request",
                "rt",
                &url,
                "-L",
                "-v",
                "-sS",
                "-w",
                "%{errormsg} %{json}",
            ],
            None,
        ));
        got.extend(curl_front(
            &sock,
            &format!("http://rt{p}"),
            &["-L", "--max-redirs", "2"],
        ));
    }
    eprintln!("{}", String::from_utf8_lossy(&got));
    assert_clean("error messages", &got);
    let hex = &token["rterr-".len()..];
    for piece in [&hex[..12], &hex[10..22], &hex[20..32]] {
        assert!(
            memchr::memmem::find(&got, piece.as_bytes()).is_none(),
            "a 12-character piece of the token ({piece}) is in: {}",
            String::from_utf8_lossy(&got)
        );
    }
    d.assert_log_clean();
}

// ---------------------------------------------------------------------------
// HEAD: Content-Length of the compressed representation (BREACH)
// ---------------------------------------------------------------------------

/// Frameworks answer HEAD by running the GET handler and its compression
/// middleware and dropping the body (Django's GZipMiddleware, Flask with
/// flask-compress): the HEAD's `Content-Length` is the compressed size of
/// the page that holds the token beside a reflected guess (vaultd asked
/// for gzip). vaultd drops the upstream's Content-Length: `-I`, `-D`,
/// `-w %header{content-length}`, `--print json` and the front's HEAD must
/// not show it (nor the `Content-Encoding` that would say what it counts).
#[test]
fn head_content_length_of_a_compressed_page_is_not_passed_on() {
    let raw = Raw::start(|req| {
        let mut plain = b"q=".to_vec();
        plain.extend_from_slice(req.target.as_bytes());
        plain.extend_from_slice(b" key=");
        plain.extend_from_slice(&req.token);
        plain.extend_from_slice(&b"the quick brown fox jumps over the lazy dog\n".repeat(8));
        let n = gzip(&plain).len();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding\r\nContent-Length: {n}\r\nX-Size-Marker: {n}\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    });
    let token = canary("rthead");
    let d = daemon_for(&raw.origin(), &token);
    let url = format!("{}/s", raw.origin());
    let mut got = Vec::new();
    got.extend(vaultctl_all(
        &d,
        &[
            "request",
            "rt",
            &url,
            "-I",
            "-D",
            "-",
            "-v",
            "-w",
            "%header{content-length} %{json}",
        ],
        None,
    ));
    got.extend(vaultctl_all(
        &d,
        &["request", "rt", &url, "-I", "--print", "json"],
        None,
    ));
    got.extend(curl_front(&front(&d), "http://rt/s", &["-I"]));
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    eprintln!("{text}");
    let marker = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("x-size-marker: ")
                .or_else(|| l.strip_prefix("< x-size-marker: "))
        })
        .map(|v| v.trim().to_owned());
    let Some(n) = marker else {
        // Refused outright: vaultd asks for `identity` and refuses any
        // coded answer, HEAD included, so no head came back at all.
        assert!(
            text.contains("content-encoding") || text.contains("encod"),
            "neither the head nor a refusal naming the encoding: {text}"
        );
        return;
    };
    for l in text.lines() {
        assert!(
            !(l.contains("content-length") && l.contains(&n)),
            "the compressed size {n} of the HEAD's page came back: {l}"
        );
    }
}

// ---------------------------------------------------------------------------
// Checksum headers of storage services, over the unredacted body
// ---------------------------------------------------------------------------

/// vaultd drops `ETag`, `Content-MD5`, `Digest`, `Content-Digest`,
/// `Repr-Digest` (computed over the unredacted body: an offline check of
/// a guess, and the length). Storage services send the same under their
/// own names: S3's `x-amz-checksum-sha256` (and crc32, crc32c, sha1,
/// crc64nvme), GCS's `x-goog-hash` (md5, crc32c), Azure's
/// `x-ms-content-crc64`, and GCS's `x-goog-stored-content-length` (the
/// stored, gzip-compressed size of a transcoded object: a figure computed
/// from a compressed body that held the token). A stored object that holds
/// the token (a request log, a webhook capture) read back with the
/// credential shows the script a hash of the token-bearing body.
#[test]
fn storage_checksum_headers_of_the_unredacted_body_are_not_passed_on() {
    use base64::Engine as _;
    let raw = Raw::start(|req| {
        let mut body = b"captured request: authorization: Bearer ".to_vec();
        body.extend_from_slice(&req.token);
        body.extend_from_slice(b"\n");
        let sha = ring::digest::digest(&ring::digest::SHA256, &body);
        let b64 = base64::engine::general_purpose::STANDARD.encode(sha.as_ref());
        let mut crc = flate2::Crc::new();
        crc.update(&body);
        let crc = base64::engine::general_purpose::STANDARD.encode(crc.sum().to_be_bytes());
        let stored = gzip(&body).len().to_string();
        response(
            "200 OK",
            &[
                ("Content-Type", b"text/plain"),
                ("x-amz-checksum-sha256", b64.as_bytes()),
                ("x-amz-checksum-crc32", crc.as_bytes()),
                ("x-goog-hash", format!("crc32c={crc},md5={b64}").as_bytes()),
                ("x-goog-stored-content-encoding", b"gzip"),
                ("x-goog-stored-content-length", stored.as_bytes()),
                ("x-ms-content-crc64", crc.as_bytes()),
            ],
            &body,
        )
    });
    let token = canary("rtsum");
    let d = daemon_for(&raw.origin(), &token);
    let url = format!("{}/log/1", raw.origin());
    let mut got = Vec::new();
    got.extend(vaultctl_all(&d, &["request", "rt", &url, "-i"], None));
    got.extend(curl_front(&front(&d), "http://rt/log/1", &[]));
    assert_clean("checksum headers", &got);
    // The script checks a guess offline: the right token reproduces the
    // checksum it was shown.
    let guess = |t: &str| {
        let body = format!("captured request: authorization: Bearer {t}\n");
        let sha = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(sha.as_ref())
    };
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        !text.contains(&guess(&token)),
        "a checksum of the unredacted body reached the script (an offline oracle for guesses):\n{text}"
    );
    let lower = text.to_ascii_lowercase();
    for name in [
        "x-amz-checksum",
        "x-goog-hash",
        "x-goog-stored-content-length",
        "x-ms-content-crc64",
    ] {
        assert!(!lower.contains(name), "{name} was passed on:\n{text}");
    }
}

/// The same as `two_content_encoding_lines_pass_a_gzipped_echo_through`
/// for `br` and `zstd` twice: one layer is left on the body that reaches
/// the script.
#[test]
fn two_content_encoding_lines_of_br_or_zstd_pass_an_echo_through() {
    fn br(d: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(d).unwrap();
        }
        out
    }
    let raw = Raw::start(|req| {
        let mut plain = Vec::new();
        for i in 0..20 {
            plain.extend_from_slice(format!("line {i}: your key is ").as_bytes());
            plain.extend_from_slice(&req.token);
            plain.extend_from_slice(b" and it is active\n");
        }
        let (coding, body): (&[u8], Vec<u8>) = if req.target == "/br" {
            (b"br", br(&br(&plain)))
        } else {
            (
                b"zstd",
                zstd::encode_all(&zstd::encode_all(&plain[..], 3).unwrap()[..], 3).unwrap(),
            )
        };
        response(
            "200 OK",
            &[("Content-Encoding", coding), ("Content-Encoding", coding)],
            &body,
        )
    });
    let token = canary("rtce2");
    let d = daemon_for(&raw.origin(), &token);
    let mut leaked = Vec::new();
    for p in ["/br", "/zstd"] {
        let url = format!("{}{p}", raw.origin());
        let got = vaultctl_all(&d, &["request", "rt", &url], None);
        let mut dec = Vec::new();
        if p == "/br" {
            let _ = brotli::Decompressor::new(&got[..], 4096).read_to_end(&mut dec);
        } else {
            dec = zstd::decode_all(&got[..]).unwrap_or_default();
        }
        eprintln!("{p}: {} bytes, {} decoded", got.len(), dec.len());
        if !leaks(&dec).is_empty() || !leaks(&got).is_empty() {
            leaked.push(p);
        }
    }
    assert!(
        leaked.is_empty(),
        "the token reached the script via {leaked:?}"
    );
}
