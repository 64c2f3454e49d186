//! The HTTP front (issue 18): HTTP/1.1 on a second Unix socket, driven by
//! real clients (curl, Python httpx, Node), each request the same job as
//! `vaultctl request`: the upstream gets the token, the client never does,
//! and vaultd's own answers carry `Tokenvault-Error` and problem+json.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, TestUser, Upstream, canary, leaks};

/// The front's socket of a harness daemon (beside the main one).
fn front(d: &Daemon) -> PathBuf {
    d.socket.parent().unwrap().join("http.sock")
}

/// A response as a client got it.
#[derive(Debug)]
struct Got {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Everything the client received, for the leak scan.
    fn all(&self) -> Vec<u8> {
        let mut v = self.head.clone().into_bytes();
        v.extend_from_slice(&self.body);
        v
    }

    #[track_caller]
    fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("tokenvault-error").as_deref(),
            Some(code),
            "{self:?}"
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("problem json");
        assert_eq!(v["status"], status);
        assert_eq!(v["code"], code);
        assert!(v["title"].is_string() && v["detail"].is_string(), "{v}");
    }
}

/// Parses `HTTP/1.1 200 OK\r\n...\r\n\r\nbody`.
fn parse(raw: &[u8]) -> Got {
    let split = memchr::memmem::find(raw, b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Got { status, head, body }
}

/// `curl -i --unix-socket` (no redirects followed, as a script's default).
fn curl(sock: &Path, url: &str, args: &[&str]) -> Got {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "60", "--unix-socket"])
        .arg(sock)
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = parse(&out.stdout);
    // A 100 Continue head comes first when curl sent Expect, and with -L
    // every hop's head.
    while (got.status == 100 || (300..400).contains(&got.status)) && got.body.starts_with(b"HTTP/")
    {
        got = parse(&got.body);
    }
    got
}

/// Raw bytes to the socket, then everything until the server closes (or
/// 5 s pass).
fn raw(sock: &Path, req: &[u8]) -> Vec<u8> {
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

/// A daemon with an unlocked vault and credential `mr` (Access-Token)
/// bound to `up`.
fn daemon_with(up: &Upstream, token: &str, extra: &[&str]) -> Daemon {
    daemon_conf("audit = true\n", up, token, extra)
}

fn daemon_conf(config: &str, up: &Upstream, token: &str, extra: &[&str]) -> Daemon {
    let d = Daemon::start(config);
    d.init();
    let origin = up.origin();
    let mut args = vec!["--header", "Access-Token", "--origin", &origin];
    args.extend_from_slice(extra);
    d.add("mr", token, &args).ok();
    d
}

#[track_caller]
fn assert_clean(what: &str, hay: &[u8]) {
    let l = leaks(hay);
    assert!(l.is_empty(), "{what}: the client received a secret: {l:?}");
}

#[test]
fn curl_end_to_end_the_upstream_gets_the_token_the_client_never_does() {
    let up = Upstream::plain();
    let token = canary("front");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let got = curl(
        &sock,
        "http://mr/api/projects/create?x=1",
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"p"}"#,
        ],
    );
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.text().contains("p123"), "{got:?}");
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/json")
    );
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/api/projects/create?x=1");
    assert_eq!(r.header("access-token").as_deref(), Some(token.as_str()));
    assert_eq!(r.body, br#"{"name":"p"}"#);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(r.header("content-length").as_deref(), Some("12"));
    // Host is the upstream's, never the credential name.
    assert_eq!(
        r.header("host").as_deref(),
        Some(up.origin().trim_start_matches("http://"))
    );
    assert!(r.headers.iter().all(|(n, _)| !n.starts_with("tokenvault")));
    assert_clean("create", &got.all());

    // The Host is matched ignoring case, its port ignored; the echo of the
    // token (body and header) comes back redacted.
    let got = curl(&sock, "http://MR:8080/echo", &[]);
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.text().contains("[redacted]"), "{got:?}");
    // A small body is sent whole, with its redacted length.
    assert_eq!(
        got.header("content-length"),
        Some(got.body.len().to_string()),
        "{got:?}"
    );
    assert_clean("echo", &got.all());
    // The audit line names the calling program (SO_PEERCRED's pid).
    let which = Command::new("sh")
        .args(["-c", "command -v curl"])
        .output()
        .unwrap();
    let curl_exe = std::fs::canonicalize(String::from_utf8(which.stdout).unwrap().trim()).unwrap();
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("audit: job")
            && l.contains("credential=mr")
            && l.contains(&format!("exe={}", curl_exe.display()))
            && l.contains("status=200")),
        "{log}"
    );
    d.assert_log_clean();
}

#[test]
fn echo_suite_through_the_front_never_returns_the_token() {
    let up = Upstream::plain();
    let token = canary("echo");
    let d = daemon_with(&up, &token, &[]);
    // A base64-looking token, as in exfiltration.rs.
    let slash = ["", "?", "??", "???"]
        .iter()
        .map(|q| format!("{}/{}+Zz={q}", canary("SLASH"), canary("Long")))
        .find(|t| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .encode(t)
                .contains('/')
        })
        .unwrap();
    d.add("s", &slash, &["--bearer", "--origin", &up.origin()])
        .ok();
    let sock = front(&d);
    let mut paths: Vec<(&str, String)> = Vec::new();
    for enc in ["gzip", "deflate", "br", "zstd"] {
        paths.push(("mr", format!("/echo-compressed?enc={enc}")));
    }
    paths.push(("mr", "/echo-encoded".into()));
    paths.push(("mr", "/echo".into()));
    for form in [
        "upper",
        "lower",
        "json-php",
        "json-b64",
        "quote",
        "mime-lf",
        "mime-crlf",
        "pem",
        "hex",
        "hex-upper",
        "json-u",
        "utf16le",
        "utf16be",
    ] {
        paths.push(("s", format!("/echo-form?form={form}")));
    }
    for (cred, path) in &paths {
        let got = curl(
            &sock,
            &format!("http://{cred}{path}"),
            &["-H", "Accept-Encoding: gzip, br"],
        );
        if path.starts_with("/echo-compressed") {
            // Compressed whatever vaultd asked for (`identity`): refused
            // whole, since the redactor reads only plain bodies.
            assert_eq!(got.status, 502, "{path}: {got:?}");
            assert_eq!(
                got.header("tokenvault-error").as_deref(),
                Some("upstream-unreachable"),
                "{path}"
            );
            assert_clean(path, &got.all());
            continue;
        }
        assert_eq!(got.status, 200, "{path}: {got:?}");
        assert_clean(path, &got.all());
        assert!(got.text().contains("[redacted]"), "{path}: {}", got.text());
        // A client that asked for gzip gets what vaultd decoded.
        assert!(got.header("content-encoding").is_none(), "{path}");
        assert!(got.header("etag").is_none(), "{path}");
    }
    // Stacked or unknown encodings: refused, nothing of the body returned.
    let got = curl(&sock, "http://mr/echo-compressed?enc=gzip,%20gzip", &[]);
    got.problem(502, "upstream-unreachable");
    assert_clean("stacked", &got.all());

    // A Location into the job's origin is rewritten to the front's form,
    // after redaction; another origin's is passed on, redacted.
    let got = curl(&sock, "http://mr/redirect-echo?to=/echo%3Ft%3DTOKEN", &[]);
    assert_eq!(got.status, 302, "{got:?}");
    // A relative one is passed as it is (the client resolves it against
    // http://mr/), redacted.
    let loc = got.header("location").unwrap();
    assert!(loc.starts_with("/echo?t="), "{loc}");
    assert!(loc.contains("[redacted]"), "{loc}");
    assert_clean("location", &got.all());
    let abs = format!("{}/echo?t=TOKEN", up.origin());
    let got = curl(
        &sock,
        &format!(
            "http://mr/redirect-echo?to={}",
            abs.replace(':', "%3A")
                .replace('/', "%2F")
                .replace('?', "%3F")
                .replace('=', "%3D")
        ),
        &[],
    );
    assert_eq!(got.status, 302);
    assert!(
        got.header("location")
            .unwrap()
            .starts_with("http://mr/echo?t="),
        "{got:?}"
    );
    let got = curl(
        &sock,
        "http://mr/redirect-echo?to=http%3A%2F%2FTOKEN.example.org%2Fx",
        &[],
    );
    assert_eq!(got.status, 302);
    let loc = got.header("location").unwrap();
    assert!(loc.starts_with("http://[redacted]"), "{loc}");
    assert_clean("foreign location", &got.all());
    // Following it (curl -L) stays on the vault for the same origin: the
    // second hop is a job too, and nothing reaches the client.
    let got = curl(
        &sock,
        "http://mr/redirect?to=/echo-encoded",
        &["-L", "--max-redirs", "3"],
    );
    assert_eq!(got.status, 200, "{got:?}");
    assert_clean("followed", &got.all());
    d.assert_log_clean();
}

/// Every refusal: its status and code, and nothing reaches the upstream.
#[test]
fn refusals_carry_status_and_tokenvault_error_and_send_nothing() {
    let up = Upstream::plain();
    let token = canary("refuse");
    let d = daemon_with(
        &up,
        &token,
        &[
            "--method",
            "GET",
            "--method",
            "POST",
            "--path-prefix",
            "/api",
        ],
    );
    let sock = front(&d);
    let cases: Vec<(&str, Vec<&str>, &str, u16, &str)> = vec![
        (
            "http://nope/api/x",
            vec![],
            "unknown credential",
            404,
            "unknown-credential",
        ),
        (
            "http://mr/api/x",
            vec!["-H", "Tokenvault-Origin: https://evil.example"],
            "origin outside the credential",
            403,
            "refused",
        ),
        (
            "http://mr/other",
            vec![],
            "path outside --path-prefix",
            403,
            "refused",
        ),
        (
            "http://mr/api/x",
            vec!["-X", "DELETE"],
            "method",
            403,
            "refused",
        ),
        (
            "http://mr/api/x",
            vec!["-H", "Access-Token: mine"],
            "the injected header",
            403,
            "refused",
        ),
        (
            "http://mr/api/x",
            vec!["-H", "Range: bytes=0-3"],
            "Range",
            403,
            "refused",
        ),
        (
            "http://mr/api/x",
            vec!["-H", "Tokenvault-Origin: https://evil.example/path"],
            "origin with a path",
            400,
            "bad-request",
        ),
        (
            "http://mr/api/x",
            vec!["-H", "Tokenvault-Orign: https://evil.example"],
            "a misspelt Tokenvault- header",
            400,
            "bad-request",
        ),
        (
            "http://mr/api/x",
            vec!["-H", "Upgrade: websocket", "-H", "Connection: Upgrade"],
            "websocket upgrade",
            400,
            "bad-request",
        ),
        (
            "http://mr/api/x",
            vec![
                "-H",
                "Upgrade: h2c",
                "-H",
                "Connection: Upgrade, HTTP2-Settings",
                "-H",
                "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA",
            ],
            "h2c upgrade",
            400,
            "bad-request",
        ),
        (
            "http://mr/api/x",
            vec!["--request-target", "http://mr/api/x"],
            "absolute-form",
            400,
            "bad-request",
        ),
        (
            "http://mr/api/x",
            vec!["-X", "OPTIONS", "--request-target", "*"],
            "asterisk-form",
            400,
            "bad-request",
        ),
    ];
    for (url, args, what, status, code) in &cases {
        let got = curl(&sock, url, args);
        eprintln!("{what}: {} {}", got.status, got.text());
        got.problem(*status, code);
        assert_clean(what, &got.all());
    }
    // CONNECT, raw (curl would tunnel).
    let got = parse(&raw(
        &sock,
        b"CONNECT mr:443 HTTP/1.1\r\nHost: mr:443\r\n\r\n",
    ));
    got.problem(400, "bad-request");
    // Locked: 423.
    d.ctl(&["lock"]).ok();
    curl(&sock, "http://mr/api/x", &[]).problem(423, "locked");
    assert!(
        up.requests().is_empty(),
        "the upstream received {:?}",
        up.requests()
    );
    // And the same request, unlocked, does go.
    d.unlock().ok();
    let got = curl(&sock, "http://mr/api/projects/create", &["-d", "{}"]);
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(up.requests().len(), 1);
    d.assert_log_clean();
}

/// Requests that could be read two ways are refused with 400 (by vaultd or
/// by hyper's parser) and never forwarded.
#[test]
fn smuggling_shapes_are_refused_with_400() {
    let up = Upstream::plain();
    let token = canary("smuggle");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let shapes: [(&str, &[u8]); 10] = [
        (
            "two equal CLs",
            b"POST /echo HTTP/1.1\r\nHost: mr\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
        ),
        (
            "CL then TE",
            b"POST /echo HTTP/1.1\r\nHost: mr\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "TE then CL",
            b"POST /echo HTTP/1.1\r\nHost: mr\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
        ),
        (
            "two different CLs",
            b"POST /echo HTTP/1.1\r\nHost: mr\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        ),
        (
            "obs-fold",
            b"GET /echo HTTP/1.1\r\nHost: mr\r\nX-A: a\r\n b\r\n\r\n",
        ),
        (
            "TE not chunked",
            b"POST /echo HTTP/1.1\r\nHost: mr\r\nTransfer-Encoding: gzip\r\n\r\nabcd",
        ),
        (
            "TE in HTTP/1.0",
            b"POST /echo HTTP/1.0\r\nHost: mr\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "space before colon",
            b"GET /echo HTTP/1.1\r\nHost: mr\r\nContent-Length : 0\r\n\r\n",
        ),
        (
            "CL with a sign",
            b"POST /echo HTTP/1.1\r\nHost: mr\r\nContent-Length: +4\r\n\r\nabcd",
        ),
        ("two Hosts", b"GET /echo HTTP/1.1\r\nHost: mr\r\nHost: other\r\n\r\n"),
    ];
    for (what, req) in shapes {
        let got = parse(&raw(&sock, req));
        eprintln!(
            "{what}: {} (Tokenvault-Error {:?})",
            got.status,
            got.header("tokenvault-error")
        );
        assert_eq!(got.status, 400, "{what}: {got:?}");
    }
    assert!(up.requests().is_empty(), "forwarded: {:?}", up.requests());
}

/// Another uid, with the file system opened up so that the front's own
/// peer check is what stops it: refused with 403 before its request is
/// read, and logged.
#[test]
fn another_uid_is_refused_before_its_request_is_read() {
    if !harness::is_root() {
        eprintln!("skipping another_uid_is_refused_before_its_request_is_read: needs root");
        return;
    }
    let user = match TestUser::create("f") {
        Ok(u) => u,
        Err(e) => {
            eprintln!("skipping another_uid_is_refused_before_its_request_is_read: {e}");
            return;
        }
    };
    let up = Upstream::plain();
    let token = canary("uid");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let mut dir = sock.parent().unwrap();
    loop {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
        if dir == d.dir() {
            break;
        }
        dir = dir.parent().unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = user
        .command("curl")
        .args(["-sS", "-i", "--max-time", "10", "--unix-socket"])
        .arg(&sock)
        .args(["-d", "body", "http://mr/echo"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let got = parse(&out.stdout);
    eprintln!(
        "another uid: {got:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    got.problem(403, "refused");
    assert!(got.text().contains(&format!("uid {}", user.uid)), "{got:?}");
    assert!(up.requests().is_empty());
    let log = d.log();
    assert!(
        log.contains(&format!(
            "http front: refused a connection from uid {}",
            user.uid
        )),
        "{log}"
    );
}

/// `lock` during a streamed download ends it: the client's body is cut
/// short (never looks complete) and the upstream stops being read.
#[test]
fn lock_during_a_streamed_download_ends_it() {
    let up = Upstream::plain();
    let token = canary("lockdl");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let n: u64 = 1 << 30;
    let mut child = Command::new("curl")
        .args([
            "-sS",
            "--limit-rate",
            "2M",
            "-o",
            "/dev/null",
            "--unix-socket",
        ])
        .arg(&sock)
        .arg(format!("http://mr/source?n={n}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while up.produced.load(std::sync::atomic::Ordering::SeqCst) < 4 << 20 {
        assert!(start.elapsed() < Duration::from_secs(30), "no download");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.ctl(&["lock"]).ok();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the download went on after lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "curl took a cut body as complete: {err}");
    let produced = up.produced.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    let later = up.produced.load(std::sync::atomic::Ordering::SeqCst);
    assert!(later < n / 4, "upstream kept producing: {later}");
    assert!(later - produced < 8 << 20, "{produced} -> {later}");
}

#[test]
fn status_shows_the_front_and_an_empty_path_turns_it_off() {
    let d = Daemon::start("");
    let out = d.ctl(&["status"]).ok();
    let want = front(&d).display().to_string();
    assert!(
        out.text().contains(&format!("http front: {want}")),
        "{}",
        out.text()
    );
    let out = d.ctl(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["http_socket"], want.as_str());

    let d = Daemon::start("http_socket = \"\"\n");
    assert!(!front(&d).exists());
    let out = d.ctl(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["http_socket"].is_null(), "{v}");

    let d = Daemon::start("http_socket = \"{dir}/elsewhere.sock\"\n");
    let out = d.ctl(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = d.dir().join("elsewhere.sock");
    assert_eq!(v["http_socket"], p.display().to_string().as_str());
    assert!(p.exists());
}

/// The Python with httpx the client tests use: `TOKENVAULT_FRONT_PYTHON`,
/// else the venv `.ci/run` (or a developer) made under `target/front-venv`,
/// else `python3` if it has httpx. `None` (with a printed reason) when
/// none is there, unless `TOKENVAULT_REQUIRE_FRONT_CLIENTS=1`.
fn httpx_python(test: &str) -> Option<PathBuf> {
    let venv = harness::bin("vaultd")
        .parent()
        .and_then(Path::parent)
        .map(|t| t.join("front-venv/bin/python"));
    let candidates = std::env::var_os("TOKENVAULT_FRONT_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain(venv)
        .chain([PathBuf::from("python3")]);
    for p in candidates {
        let ok = Command::new(&p)
            .args(["-c", "import httpx"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(p);
        }
    }
    required(
        test,
        "no Python with httpx (python3 -m venv target/front-venv && target/front-venv/bin/pip install httpx)",
    );
    None
}

/// Skips with a one-line reason, or fails when CI requires the clients.
fn required(test: &str, why: &str) {
    if std::env::var("TOKENVAULT_REQUIRE_FRONT_CLIENTS").as_deref() == Ok("1") {
        panic!("{test}: {why} (TOKENVAULT_REQUIRE_FRONT_CLIENTS=1)");
    }
    eprintln!("skipping {test}: {why}");
}

fn run_script(program: &Path, args: &[&str], script: &str, extra: &[&OsStr]) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(script)
        .args(extra)
        .output()
        .expect("run client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = out.stdout.clone();
    all.extend_from_slice(&out.stderr);
    assert_clean("client output", &all);
    stdout
}

use std::ffi::OsStr;

/// The highest resident set (KiB) vaultd reaches while `f` runs, sampled
/// every 10 ms (its VmHWM already holds the KDF's peak from `init`).
fn peak_rss_during<T>(pid: u32, f: impl FnOnce() -> T) -> (u64, T) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !s2.load(std::sync::atomic::Ordering::SeqCst) {
            peak = peak.max(rss(pid).1);
            std::thread::sleep(Duration::from_millis(10));
        }
        peak
    });
    let out = f();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    (sampler.join().unwrap(), out)
}

/// vaultd's peak resident set (VmHWM) and current one, in KiB.
fn rss(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

const HTTPX_BASICS: &str = r#"
import json, sys, httpx
sock = sys.argv[1]
with httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://mr",
                  limits=httpx.Limits(max_connections=1)) as c:
    r = c.get("/echo", params={"q": "1"})
    assert r.status_code == 200, r
    assert "[redacted]" in r.text, r.text
    r = c.post("/api/projects/create", json={"name": "p"})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["id"] == "p123", r.text
    r = c.get("/nope-credential", headers={"Host": "nope"})
    assert r.status_code == 404 and r.headers["tokenvault-error"] == "unknown-credential"
    assert r.headers["content-type"] == "application/problem+json"
    first = None
    for i in range(1000):
        r = c.get(f"/status/200?i={i}")
        assert r.status_code == 200, r
        s = r.extensions["network_stream"]
        first = first or s
        assert s is first, "a new connection at request %d" % i
print("ok")
"#;

/// Python httpx over the socket: a GET and a POST with a JSON body reach
/// the upstream with the token, the responses are the upstream's, and
/// 1,000 requests share one keep-alive connection.
#[test]
fn httpx_get_post_and_a_thousand_requests_on_one_connection() {
    let test = "httpx_get_post_and_a_thousand_requests_on_one_connection";
    let Some(py) = httpx_python(test) else { return };
    let up = Upstream::plain();
    let token = canary("httpx");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let out = run_script(&py, &["-c"], HTTPX_BASICS, &[sock.as_os_str()]);
    assert_eq!(out.trim(), "ok");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1002);
    let post = reqs.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.header("access-token").as_deref(), Some(token.as_str()));
    assert_eq!(post.body, br#"{"name":"p"}"#);
    assert!(
        reqs.iter()
            .all(|r| r.header("access-token").as_deref() == Some(token.as_str()))
    );
    d.assert_log_clean();
}

const HTTPX_UPLOAD: &str = r#"
import sys, httpx
sock, n = sys.argv[1], int(sys.argv[2])
def gen():
    block = bytes(range(256)) * 4096
    left = n
    while left:
        b = block[:min(left, len(block))]
        left -= len(b)
        yield b
with httpx.Client(transport=httpx.HTTPTransport(uds=sock), base_url="http://mr", timeout=300) as c:
    r = c.post("/sink", content=gen())
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["len"] == n, r.text
print("ok")
"#;

/// A 256 MiB streamed upload from httpx and a 256 MiB download with curl:
/// vaultd's resident set grows by less than 32 MiB.
#[test]
fn large_upload_and_download_keep_vaultds_rss_flat() {
    let test = "large_upload_and_download_keep_vaultds_rss_flat";
    let up = Upstream::plain();
    let token = canary("big");
    let d = daemon_conf(
        "max_body = \"2GiB\"\nrequest_timeout = \"10m\"\n",
        &up,
        &token,
        &[],
    );
    let sock = front(&d);
    let n: u64 = 256 << 20;
    // Warm up (the pool, the redactor) before the baseline.
    curl(&sock, "http://mr/status/200", &[]);
    let (_, base) = rss(d.pid());
    let (peak, out) = peak_rss_during(d.pid(), || {
        Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
                "--unix-socket",
            ])
            .arg(&sock)
            .arg(format!("http://mr/source?n={n}"))
            .output()
            .unwrap()
    });
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), n.to_string());
    eprintln!("download: RSS {base} KiB before, peak {peak} KiB");
    assert!(
        peak < base + 32 * 1024,
        "download: {base} -> peak {peak} KiB"
    );
    let Some(py) = httpx_python(test) else { return };
    let (peak2, out) = peak_rss_during(d.pid(), || {
        run_script(
            &py,
            &["-c"],
            HTTPX_UPLOAD,
            &[sock.as_os_str(), OsStr::new(&n.to_string())],
        )
    });
    assert_eq!(out.trim(), "ok");
    eprintln!("upload: peak {peak2} KiB");
    assert!(
        peak2 < base + 32 * 1024,
        "upload: {base} -> peak {peak2} KiB"
    );
}

const NODE_ONE: &str = r#"
const http = require('http');
const req = http.request({socketPath: process.argv[1], path: '/echo?n=1', method: 'GET',
                          headers: {Host: 'mr'}}, (res) => {
  let body = '';
  res.on('data', (c) => body += c);
  res.on('end', () => {
    console.log(JSON.stringify({status: res.statusCode, headers: res.headers, body}));
  });
});
req.on('error', (e) => { console.error(e); process.exit(1); });
req.end();
"#;

/// Node's `http.request({socketPath})`: the upstream's status and headers
/// come back.
#[test]
fn node_http_request_over_the_socket() {
    let test = "node_http_request_over_the_socket";
    let node = ["node", "nodejs"].into_iter().find(|n| {
        Command::new(n)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(node) = node else {
        required(test, "no node (apt-get install -y nodejs)");
        return;
    };
    let up = Upstream::plain();
    let token = canary("node");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let out = run_script(Path::new(node), &["-e"], NODE_ONE, &[sock.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["headers"]["content-type"], "text/plain", "{v}");
    assert_eq!(v["headers"]["x-echo-token"], "[redacted]", "{v}");
    assert!(v["body"].as_str().unwrap().contains("[redacted]"));
    assert_eq!(
        up.requests()[0].header("access-token").as_deref(),
        Some(token.as_str())
    );
}

/// A listener on loopback standing in for the script's own server: counts
/// connections and keeps every byte.
struct Catcher {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Catcher {
    fn start() -> Catcher {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s2, c2) = (seen.clone(), connections.clone());
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                s.set_read_timeout(Some(Duration::from_millis(500))).ok();
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    s2.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
            }
        });
        Catcher {
            port,
            seen,
            connections,
        }
    }
}

/// Red team of the front: a script of vaultd's uid that talks only to the
/// sockets and to its own loopback server tries to get a byte of the token
/// sent to its server or returned to itself. Every attempt is refused or
/// comes back redacted, and the script's server sees no connection.
#[test]
fn redteam_front_a_script_with_its_own_loopback_server_gets_nothing() {
    let up = Upstream::plain();
    let token = canary("red");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let catcher = Catcher::start();
    let mine = format!("http://127.0.0.1:{}", catcher.port);
    let enc = |s: &str| {
        s.replace(':', "%3A")
            .replace('/', "%2F")
            .replace('?', "%3F")
            .replace('=', "%3D")
    };
    let mut received: Vec<Vec<u8>> = Vec::new();
    // Through curl (which, with --unix-socket, sends every hop to the front).
    let attempts: Vec<(String, Vec<String>)> = vec![
        (
            "http://mr/echo".into(),
            vec!["-H".into(), format!("Tokenvault-Origin: {mine}")],
        ),
        (format!("http://127.0.0.1:{}/echo", catcher.port), vec![]),
        (
            "http://mr/echo".into(),
            vec!["--request-target".into(), format!("{mine}/echo")],
        ),
        (
            format!("http://mr/redirect?to={}", enc(&format!("{mine}/x"))),
            vec!["-L".into()],
        ),
        (
            format!(
                "http://mr/redirect?code=307&to={}",
                enc(&format!("{mine}/x"))
            ),
            vec!["-L".into(), "-d".into(), "x".into()],
        ),
        (
            format!(
                "http://mr/redirect-echo?to={}",
                enc(&format!("{mine}/?t=TOKEN"))
            ),
            vec!["-L".into()],
        ),
        (
            "http://mr/redirect-echo?to=%2F%2F127.0.0.1%3A1%2FTOKEN".into(),
            vec!["-L".into(), "--max-redirs".into(), "2".into()],
        ),
        (
            "http://mr//127.0.0.1/echo".into(),
            vec!["--path-as-is".into()],
        ),
        ("http://mr/echo".into(), vec!["-X".into(), "TRACE".into()]),
        ("http://mr/echo".into(), vec!["-I".into()]),
        (
            "http://mr/echo".into(),
            vec!["-H".into(), "Connection: close, access-token".into()],
        ),
        (
            "http://mr/echo".into(),
            vec![
                "-H".into(),
                format!("Tokenvault-Origin: {}", up.origin().to_uppercase()),
            ],
        ),
        (
            "http://mr/echo-form?form=json-u".into(),
            vec!["--http1.0".into()],
        ),
    ];
    for (url, args) in &attempts {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "20", "--unix-socket"])
            .arg(&sock)
            .args(&args)
            .arg(url)
            .output()
            .unwrap();
        let mut all = out.stdout.clone();
        all.extend_from_slice(&out.stderr);
        eprintln!(
            "{url} {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or("")
        );
        received.push(all);
    }
    // Raw: pipelined requests in one write, and a chunked body that looks
    // like a request after the last chunk.
    let pipelined = b"GET /echo HTTP/1.1\r\nHost: mr\r\n\r\nGET /echo-encoded HTTP/1.1\r\nHost: mr\r\n\r\nPOST /echo HTTP/1.1\r\nHost: mr\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /echo HTTP/1.1\r\nHost: mr\r\nConnection: close\r\n\r\n";
    received.push(raw(&sock, pipelined));
    for r in &received {
        assert_clean("red team", r);
    }
    assert_eq!(
        catcher
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the script's server got: {}",
        String::from_utf8_lossy(&catcher.seen.lock().unwrap())
    );
    // The upstream did get the token, every time it was reached.
    assert!(
        up.requests()
            .iter()
            .all(|r| r.header("access-token").as_deref() == Some(token.as_str()))
    );
    d.assert_log_clean();
}

/// After `lock`, no copy of a token used through the front is left in
/// vaultd's memory: echoed, uploaded, downloaded, pipelined, with a
/// client's keep-alive connection still open (root: `/proc/PID/mem`).
#[test]
fn lock_frees_the_token_of_front_jobs() {
    if !harness::is_root() {
        eprintln!("skipping lock_frees_the_token_of_front_jobs: needs root to read /proc/PID/mem");
        return;
    }
    use base64::Engine;
    let up = Upstream::plain();
    let token = canary("frontmem");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    curl(&sock, "http://mr/echo", &["-d", "x"]);
    curl(&sock, "http://mr/echo-encoded", &[]);
    curl(&sock, "http://mr/source?n=3000000", &["-o", "/dev/null"]);
    curl(&sock, "http://mr/redirect-echo?to=/echo%3Ft%3DTOKEN", &[]);
    raw(
        &sock,
        b"GET /echo HTTP/1.1\r\nHost: mr\r\n\r\nGET /echo HTTP/1.1\r\nHost: mr\r\nConnection: close\r\n\r\n",
    );
    // A keep-alive connection left open across the lock.
    let mut idle = UnixStream::connect(&sock).unwrap();
    idle.write_all(b"GET /echo HTTP/1.1\r\nHost: mr\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let _ = idle.read(&mut buf).unwrap();
    d.ctl(&["lock"]).ok();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&token);
    let control = d.socket.display().to_string();
    let s = harness::memscan::scan_until_clean(
        d.pid(),
        &[token.as_bytes(), b64.as_bytes()],
        control.as_bytes(),
        Duration::from_secs(5),
    );
    assert!(s.hits[2] >= 1, "the scan is broken: {s:?}");
    assert!(
        s.hits[0] == 0 && s.hits[1] == 0,
        "the token is still in vaultd's memory after lock: {s:?}"
    );
    drop(idle);
}

/// The server's limits: too many header fields or too large a head is
/// answered by the parser (431) and nothing is forwarded; a head that
/// trickles in (slowloris) or a connection left idle is closed after 10 s.
#[test]
fn header_limits_and_the_head_timeout() {
    let up = Upstream::plain();
    let token = canary("limits");
    let d = daemon_with(&up, &token, &[]);
    let sock = front(&d);
    let mut many = b"GET /echo HTTP/1.1\r\nHost: mr\r\n".to_vec();
    for i in 0..150 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let got = parse(&raw(&sock, &many));
    assert_eq!(got.status, 431, "{}", got.head);
    let mut big = b"GET /echo HTTP/1.1\r\nHost: mr\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 100 * 1024));
    big.extend_from_slice(b"\r\n\r\n");
    let got = parse(&raw(&sock, &big));
    assert_eq!(got.status, 431, "{}", got.head);
    assert!(up.requests().is_empty());
    // Keep-alive works, and a half-sent head is dropped after 10 s.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(b"GET /status/200 HTTP/1.1\r\nHost: mr\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut first = Vec::new();
    // The whole first response (its body may come in a later read).
    while !first.ends_with(b"status 200") && !first.ends_with(b"\r\n0\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        first.extend_from_slice(&buf[..n]);
    }
    assert!(first.starts_with(b"HTTP/1.1 200"));
    s.write_all(b"GET /status/200 HTTP/1.1\r\nHo").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    let n = s.read(&mut buf).unwrap_or(0);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(15),
        "closed after {waited:?}: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert_eq!(up.requests().len(), 1);
}

const REQUESTS_UNIXSOCKET: &str = r#"
import sys, requests_unixsocket
from urllib.parse import quote
sock = quote(sys.argv[1], safe="")
s = requests_unixsocket.Session()
# The socket is in the URL's host, so Host names the credential.
r = s.post(f"http+unix://{sock}/api/projects/create", headers={"Host": "mr"}, json={"name": "p"})
assert r.status_code == 200 and r.json()["id"] == "p123", (r.status_code, r.text)
r = s.get(f"http+unix://{sock}/x", headers={"Host": "nope"})
assert r.status_code == 404 and r.headers["Tokenvault-Error"] == "unknown-credential", r.headers
print("ok")
"#;

/// Python requests with requests-unixsocket, as the README shows it.
#[test]
fn requests_unixsocket_over_the_socket() {
    let test = "requests_unixsocket_over_the_socket";
    let Some(py) = httpx_python(test) else { return };
    let has = Command::new(&py)
        .args(["-c", "import requests_unixsocket"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        required(
            test,
            "no requests-unixsocket beside httpx (pip install requests-unixsocket)",
        );
        return;
    }
    let up = Upstream::plain();
    let token = canary("requests");
    let d = daemon_with(&up, &token, &[]);
    let out = run_script(&py, &["-c"], REQUESTS_UNIXSOCKET, &[front(&d).as_os_str()]);
    assert_eq!(out.trim(), "ok");
    assert_eq!(
        up.requests()[0].header("access-token").as_deref(),
        Some(token.as_str())
    );
}

/// A client that stops reading its download cannot keep the job alive:
/// after `lock`, the token is gone from vaultd's memory although the
/// client's connection is still open and unread (root).
#[test]
fn lock_frees_the_token_of_a_front_download_whose_reader_stalled() {
    if !harness::is_root() {
        eprintln!(
            "skipping lock_frees_the_token_of_a_front_download_whose_reader_stalled: needs root"
        );
        return;
    }
    let up = Upstream::plain();
    let token = canary("stall");
    let d = daemon_conf(
        "max_body = \"2GiB\"\nrequest_timeout = \"10m\"\n",
        &up,
        &token,
        &[],
    );
    let sock = front(&d);
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(format!("GET /source?n={} HTTP/1.1\r\nHost: mr\r\n\r\n", 1u64 << 30).as_bytes())
        .unwrap();
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf).unwrap();
    // Stop reading; wait until vaultd is blocked on the full socket.
    let start = Instant::now();
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = up.produced.load(std::sync::atomic::Ordering::SeqCst);
        if now == last && now > 0 {
            break;
        }
        last = now;
        assert!(start.elapsed() < Duration::from_secs(20), "never stalled");
    }
    d.ctl(&["lock"]).ok();
    let control = d.socket.display().to_string();
    let sc = harness::memscan::scan_until_clean(
        d.pid(),
        &[token.as_bytes()],
        control.as_bytes(),
        Duration::from_secs(5),
    );
    assert!(sc.hits[1] >= 1, "the scan is broken");
    assert!(
        sc.hits[0] == 0,
        "the token is still in memory while the reader stalls: {sc:?}"
    );
    drop(s);
}

/// A client that stops sending its upload cannot keep the job alive:
/// after `lock`, the token is gone from vaultd's memory (root).
#[test]
fn lock_frees_the_token_of_a_front_upload_that_stalled() {
    if !harness::is_root() {
        eprintln!("skipping lock_frees_the_token_of_a_front_upload_that_stalled: needs root");
        return;
    }
    let up = Upstream::plain();
    let token = canary("upstall");
    let d = daemon_conf(
        "max_body = \"2GiB\"\nrequest_timeout = \"10m\"\n",
        &up,
        &token,
        &[],
    );
    let sock = front(&d);
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(
        format!(
            "POST /sink HTTP/1.1\r\nHost: mr\r\nContent-Length: {}\r\n\r\n",
            1u64 << 30
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(&vec![b'u'; 1 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.ctl(&["lock"]).ok();
    let control = d.socket.display().to_string();
    let sc = harness::memscan::scan_until_clean(
        d.pid(),
        &[token.as_bytes()],
        control.as_bytes(),
        Duration::from_secs(5),
    );
    assert!(sc.hits[1] >= 1, "the scan is broken");
    assert!(
        sc.hits[0] == 0,
        "the token is still in memory while the upload stalls: {sc:?}"
    );
    // The client is told the vault locked.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let got = parse(&out);
    assert_eq!(got.status, 423, "{}", got.head);
}

/// The default front is a convenience: when its path cannot be bound (a
/// file in the way; an older unit's read-only runtime directory), vaultd
/// serves the main socket, warns, and `status` says the front is off. An
/// explicitly configured path that cannot be bound stops vaultd.
#[test]
fn a_default_front_that_cannot_bind_is_off_not_fatal() {
    let mut d = Daemon::start("");
    d.kill();
    // The killed daemon's socket file is still there.
    let _ = std::fs::remove_file(front(&d));
    std::fs::write(front(&d), b"not a socket").unwrap();
    d.spawn();
    let out = d.ctl(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["http_socket"].is_null(), "{v}");
    assert!(d.ctl(&["status"]).ok().text().contains("http front: off"));
    assert!(d.log().contains("http front off:"), "{}", d.log());

    let d = Daemon::start("");
    let path = d.dir().join("blocked.sock");
    std::fs::write(&path, b"not a socket").unwrap();
    let out = Command::new(d.exe("vaultd"))
        .arg("--socket")
        .arg(d.dir().join("other/vaultd.sock"))
        .arg("--vault")
        .arg(d.dir().join("other/vault"))
        .arg("--config")
        .arg(&d.config)
        .arg("--http-socket")
        .arg(&path)
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http front:") && err.contains("not a socket"),
        "{err}"
    );
}
