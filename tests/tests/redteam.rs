//! Red-team findings: attacks by a script of the vault's uid (or a uid in
//! `allow_uids`) that only talks to the socket and to servers of its own on
//! loopback, against upstreams the token is legitimately bound to.
//!
//! Every test here is an attack that WORKS on the code it was written
//! against: it asserts that no byte of the token reaches the script, and it
//! fails today. Each is `#[ignore = "finding: ..."]` so the branch stays
//! green; run them with `cargo test -p tokenvault-tests --test redteam --
//! --ignored`. Remove the `ignore` with the fix.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harness::raw::run;
use harness::{Daemon, Upstream, canary};

/// The longest run of `token`'s bytes (ASCII case ignored: hosts and
/// schemes are lower-cased) found in `out`, if it is at least 8 long.
/// Eight bytes of a 35-byte token is already a leak; the redactor only
/// recognises the whole token, so any shorter run passes it.
fn leaked_run(out: &[u8], token: &str) -> Option<String> {
    let hay = String::from_utf8_lossy(out).to_ascii_lowercase();
    let t = token.to_ascii_lowercase();
    for len in (8..=t.len()).rev() {
        for start in 0..=t.len() - len {
            let piece = &t[start..start + len];
            if hay.contains(piece) {
                return Some(piece.to_owned());
            }
        }
    }
    None
}

fn leak_in(d: &Daemon, args: &[&str], token: &str) -> Option<String> {
    let (code, stdout, stderr) = run(d, args);
    for (what, bytes) in [("stdout", &stdout), ("stderr", &stderr)] {
        if let Some(piece) = leaked_run(bytes, token) {
            return Some(format!(
                "{} bytes of the token ({piece:?}) in {what} (exit {code}): {}",
                piece.len(),
                String::from_utf8_lossy(bytes).trim_end()
            ));
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Finding 1 (high): policy messages clip upstream strings at 200 characters
// (`policy::clip`) BEFORE the redactor sees them. A same-origin redirect
// whose Location carries the token behind a prefix the script controls
// (the very upstream behaviour `exfiltration.rs` already models with
// `/redirect-echo`) is refused with a message holding a *prefix* of the
// token: no whole echo, so nothing is redacted. Choosing the padding
// chooses the cut: every byte but the last comes out. The same root cause
// without any clip: a message naming one PART of an upstream URL (the
// host of a cross-origin redirect) holds the token up to the first URL
// delimiter it contains ('/' in standard base64).
// ---------------------------------------------------------------------------

struct ClipCase {
    name: &'static str,
    /// Credential: `b` (bearer) or `p` (bearer, `--path-prefix /redirect-echo`).
    cred: &'static str,
    /// Location template; `PAD` is replaced by padding, `TOKEN` by the
    /// upstream with the presented token.
    to: &'static str,
    /// Characters of the clipped string before `PAD` (the clip is 200).
    before: usize,
}

fn clip_cases() -> Vec<ClipCase> {
    vec![
        // PolicyError::PathNotAllowed { path: clip(path) }
        ClipCase {
            name: "redirect outside --path-prefix, long path",
            cred: "p",
            to: "/outside/PADTOKEN",
            before: "/outside/".len(),
        },
        // PolicyError::AmbiguousPath { path: clip(path) }
        ClipCase {
            name: "redirect to an ambiguous path (encoded slash), long path",
            cred: "p",
            // Encoded twice: the test upstream decodes `to` once.
            to: "/redirect-echo/x%252fy/PADTOKEN",
            before: "/redirect-echo/x%2fy/".len(),
        },
        // PolicyError::TrailingDot { host: clip(host) } from Origin::of_url:
        // no --path-prefix needed, any credential with -L.
        ClipCase {
            name: "redirect to a trailing-dot host, long host",
            cred: "b",
            to: "http://PADTOKEN./",
            before: 0,
        },
        // PolicyError::Scheme { scheme: clip(scheme) }: the canary's
        // characters are all valid in a scheme, as a JWT's or hex token's are.
        ClipCase {
            name: "redirect to an unknown scheme, long scheme",
            cred: "b",
            to: "xPADTOKEN:x",
            before: 1,
        },
    ]
}

#[test]

fn clipped_policy_messages_hand_out_token_prefixes() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    let token = canary("RT");
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
    let mut failures = Vec::new();
    for c in clip_cases() {
        // Cut the token one byte before its end.
        let pad = "a".repeat(200 - c.before - (token.len() - 1));
        let to = c.to.replace("PAD", &pad);
        let url = up.url(&format!("/redirect-echo?to={to}"));
        for mode in [&[][..], &["--print=json"][..], &["-i"][..]] {
            let mut args = vec!["request", c.cred, url.as_str(), "-L"];
            args.extend_from_slice(mode);
            if let Some(leak) = leak_in(&d, &args, &token) {
                failures.push(format!("{} {mode:?}: {leak}", c.name));
            }
        }
    }
    // No clip needed when the token holds a URL delimiter, as every
    // standard-base64 token may ('/'): the cross-origin refusal names the
    // redirect's host, which is the token up to its first '/'.
    let b64ish = format!("{}/Zz9+wQ=", canary("RTS"));
    d.add("s", &b64ish, &["--bearer", "--origin", &up.origin()])
        .ok();
    let url = up.url("/redirect-echo?to=http://TOKEN/");
    if let Some(leak) = leak_in(&d, &["request", "s", url.as_str(), "-L"], &b64ish) {
        failures.push(format!("cross-origin refusal, token with '/': {leak}"));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// A small reflecting upstream that speaks raw HTTP/1.1, for what the hyper
// test upstream cannot send (transfer-codings) and for stateful echoes.
// ---------------------------------------------------------------------------

struct Seen {
    path: String,
    token: String,
}

type Handler = fn(&Seen, &Mutex<Vec<String>>) -> Vec<u8>;

/// Serves on 127.0.0.1 (a fresh port) in a thread; every connection is one
/// request and `Connection: close`. The Vec is the server's memory.
fn raw_upstream(handler: Handler) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let store = Arc::new(Mutex::new(Vec::new()));
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let seen = read_head(&mut s);
            let resp = handler(&seen, &store);
            let _ = s.write_all(&resp);
        }
    });
    addr
}

fn read_head(s: &mut TcpStream) -> Seen {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap_or(0);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut token = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            let v = v.trim();
            if n.eq_ignore_ascii_case("authorization") {
                token = v.strip_prefix("Bearer ").unwrap_or(v).to_owned();
            } else if n.eq_ignore_ascii_case("access-token") {
                token = v.to_owned();
            }
        }
    }
    Seen { path, token }
}

fn response(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The body of vaultctl's structured output (`body` or `body_base64`).
fn json_body(out: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let v: serde_json::Value = serde_json::from_slice(out).unwrap_or_default();
    if let Some(b) = v["body_base64"].as_str() {
        return base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default();
    }
    v["body"].as_str().unwrap_or_default().as_bytes().to_vec()
}

/// What the script can read out of `out`: as is, and gunzipped.
fn inflated(out: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = flate2::read::MultiGzDecoder::new(out).read_to_end(&mut buf);
    buf
}

// ---------------------------------------------------------------------------
// Finding 2 (medium): a gzip *transfer-coding* is neither decoded nor
// refused. hyper removes only `chunked`; reqwest decodes Content-Encoding
// only; `refuse_undecoded` looks at Content-Encoding only. An upstream that
// answers `Transfer-Encoding: gzip, chunked` (HTTP/1.1 allows it; some
// servers and misconfigured apps send it unasked) passes its echo to the
// script compressed, and the script gunzips it.
// ---------------------------------------------------------------------------

fn te_handler(seen: &Seen, _: &Mutex<Vec<String>>) -> Vec<u8> {
    let body = gzip(
        format!("invalid token {}\n", seen.token)
            .repeat(4)
            .as_bytes(),
    );
    let te = if seen.path.contains("close") {
        // Not chunked: delimited by the connection closing.
        let mut out =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n".to_vec();
        out.extend_from_slice(&body);
        return out;
    } else {
        "gzip, chunked"
    };
    let mut out =
        format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\nConnection: close\r\n\r\n")
            .into_bytes();
    out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

#[test]

fn a_gzip_transfer_coding_is_decoded_or_refused() {
    let addr = raw_upstream(te_handler);
    let d = Daemon::start("");
    d.init();
    let token = canary("RT");
    let origin = format!("http://{addr}");
    d.add("b", &token, &["--bearer", "--origin", &origin]).ok();
    let mut failures = Vec::new();
    for path in ["/te-chunked", "/te-close"] {
        let url = format!("{origin}{path}");
        for mode in [&[][..], &["-i"][..], &["--print=json"][..]] {
            let mut args = vec!["request", "b", url.as_str()];
            args.extend_from_slice(mode);
            let (code, stdout, _) = run(&d, &args);
            // The body starts after the head in -i output.
            let body = match memchr::memmem::find(&stdout, b"\r\n\r\n") {
                Some(i) if mode == ["-i"] => stdout[i + 4..].to_vec(),
                _ if mode == ["--print=json"] => json_body(&stdout),
                _ => stdout.clone(),
            };
            if let Some(piece) = leaked_run(&inflated(&body), &token) {
                failures.push(format!(
                    "{path} {mode:?} (exit {code}): gunzip of the output holds {piece:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Finding 3 (high): the redactor of a job knows only that job's token.
// An upstream that stores what it receives and shows it later (request
// logs and "recent activity" pages, webhook/request inspectors, audit-log
// APIs, "last used" key pages) echoes credential A's token in the response
// to a job made with credential B bound to the same origin (two accounts
// or scopes on one service), or with A itself after `rotate`.
// ---------------------------------------------------------------------------

fn store_handler(seen: &Seen, store: &Mutex<Vec<String>>) -> Vec<u8> {
    let mut s = store.lock().unwrap();
    let body = if seen.path.starts_with("/activity") {
        // What a request log shows: the Authorization header of earlier calls.
        let lines: Vec<String> = s
            .iter()
            .map(|t| format!("{{\"authorization\":\"Bearer {t}\"}}"))
            .collect();
        format!("[{}]\n", lines.join(","))
    } else {
        "ok\n".to_owned()
    };
    s.push(seen.token.clone());
    response("Content-Type: application/json\r\n", body.as_bytes())
}

#[test]
fn stored_echoes_of_other_tokens_are_redacted() {
    let addr = raw_upstream(store_handler);
    let d = Daemon::start("");
    d.init();
    let origin = format!("http://{addr}");
    let admin = canary("RTA");
    let reader = canary("RTB");
    d.add("admin", &admin, &["--bearer", "--origin", &origin])
        .ok();
    d.add("reader", &reader, &["--bearer", "--origin", &origin])
        .ok();
    let mut failures = Vec::new();

    // The owner's job (or the script's) uses `admin` once; the upstream logs it.
    run(&d, &["request", "admin", &format!("{origin}/api/thing")]);
    // The script reads the log through the other credential.
    if let Some(leak) = leak_in(
        &d,
        &["request", "reader", &format!("{origin}/activity")],
        &admin,
    ) {
        failures.push(format!("admin's token via reader: {leak}"));
    }
    // A script of the owner's uid needs no second real credential: `add`
    // is open to it, and `list` names the origin. A made-up value will do.
    d.add(
        "mine",
        "made-up-by-the-script",
        &["--bearer", "--origin", &origin],
    )
    .ok();
    if let Some(leak) = leak_in(
        &d,
        &["request", "mine", &format!("{origin}/activity")],
        &admin,
    ) {
        failures.push(format!(
            "admin's token via a credential the script added: {leak}"
        ));
    }

    // Not defended, by choice: after `rotate`, the old value is forgotten
    // (memory.rs `rotated_out_value_gone_from_memory`), so an upstream
    // that shows stored old values can show it. SECURITY.md says to revoke
    // the old value upstream when rotating.
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Finding 4 (high for loopback credentials): a plain-http loopback origin
// authenticates nothing. When the real service is not listening (not yet
// started, restarting, crashed), whoever binds its port first, the script
// itself or ANY local user (no allow_uids needed), gets the token in
// cleartext. Issue #11 item 6 (`localhost` and ::1) is one instance.
// ---------------------------------------------------------------------------

#[test]
#[ignore = "class: a process of the vault's own uid on a free plain-http loopback port cannot be told from the real service; SECURITY.md says to use TLS (fails by design)"]
fn a_squatter_on_a_loopback_origins_port_gets_nothing() {
    // The port of a local service that is down right now.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = Daemon::start("");
    d.init();
    let token = canary("RT");
    let origin = format!("http://127.0.0.1:{port}");
    d.add("local", &token, &["--bearer", "--origin", &origin])
        .ok();

    // The script binds the port and asks for a request with the credential.
    let squat = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let caught = std::thread::spawn(move || {
        let (mut s, _) = squat.accept().unwrap();
        let seen = read_head(&mut s);
        let _ = s.write_all(&response("", b"thanks\n"));
        seen.token
    });
    let (code, _, _) = run(&d, &["request", "local", &format!("{origin}/")]);
    let got = caught.join().unwrap();
    assert!(
        !got.contains(&token),
        "the script's own listener on {origin} received the token (vaultctl exit {code})"
    );
}

// ---------------------------------------------------------------------------
// Class (low; no redactor can catch it, documented here because cheap real
// servers do it): masked-key displays. Key-management and "whoami" APIs
// (OpenAI's `redacted_value` "sk-...abcd", Stripe's "sk_live_****abcd"
// errors, many dashboards' "last four") echo a few bytes of the key itself.
// ---------------------------------------------------------------------------

fn masked_handler(seen: &Seen, _: &Mutex<Vec<String>>) -> Vec<u8> {
    let t = &seen.token;
    let body = format!(
        "{{\"name\":\"ci key\",\"redacted_value\":\"{}...{}\"}}\n",
        &t[..t.len().min(8)],
        &t[t.len().saturating_sub(4)..]
    );
    response("Content-Type: application/json\r\n", body.as_bytes())
}

#[test]
#[ignore = "class: masked-key displays echo 8+4 bytes of the key; undefendable by redaction, document it (fails today)"]
fn masked_key_displays_give_out_bytes_of_the_key() {
    let addr = raw_upstream(masked_handler);
    let d = Daemon::start("");
    d.init();
    let token = canary("RT");
    let origin = format!("http://{addr}");
    d.add("b", &token, &["--bearer", "--origin", &origin]).ok();
    let (_, stdout, _) = run(&d, &["request", "b", &format!("{origin}/v1/keys/me")]);
    let tail = &token[token.len() - 4..];
    let head = &token[3..8];
    let text = String::from_utf8_lossy(&stdout);
    assert!(
        !text.contains(tail) && !text.contains(head),
        "bytes of the key in the response: {text}"
    );
}

// ---------------------------------------------------------------------------
// Finding 5 (low-medium): headers computed by the upstream FROM the body
// are passed on after the body was redacted. Express sends
// `ETag: W/"<length hex>-<sha1 base64>"` on every `res.send` by default;
// `Repr-Digest`/`Content-Digest` (RFC 9530), `Digest` and `Content-MD5` do
// the same. Each gives the script the exact token length and an offline
// verifier: any guess (a low-entropy token, a candidate from elsewhere, the
// last char after finding 1) is confirmed without the daemon. Content-Length
// is already dropped for this reason; these are not.
// ---------------------------------------------------------------------------

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The body an echoing Express app sends for `token`, and the headers it
/// derives from it.
fn digest_echo(token: &str) -> (String, String, String) {
    let body = format!("invalid token {token}\n");
    let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, body.as_bytes());
    let etag = format!("W/\"{:x}-{}\"", body.len(), &b64(sha1.as_ref())[..27]);
    let sha256 = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    let repr = format!("sha-256=:{}:", b64(sha256.as_ref()));
    (body, etag, repr)
}

fn digest_handler(seen: &Seen, _: &Mutex<Vec<String>>) -> Vec<u8> {
    let (body, etag, repr) = digest_echo(&seen.token);
    response(
        &format!(
            "Content-Type: text/html; charset=utf-8\r\nETag: {etag}\r\nRepr-Digest: {repr}\r\n"
        ),
        body.as_bytes(),
    )
}

#[test]

fn digests_of_the_unredacted_body_are_not_passed_on() {
    let addr = raw_upstream(digest_handler);
    let d = Daemon::start("");
    d.init();
    let token = canary("RT");
    let origin = format!("http://{addr}");
    d.add("b", &token, &["--bearer", "--origin", &origin]).ok();
    let (_, stdout, _) = run(&d, &["request", "b", "-i", &format!("{origin}/login")]);
    let shown = String::from_utf8_lossy(&stdout).to_ascii_lowercase();
    // The script checks a guess offline: the right one matches.
    let (_, etag, repr) = digest_echo(&token);
    let mut failures = Vec::new();
    if shown.contains(&etag.to_ascii_lowercase()) {
        failures.push(format!(
            "ETag of the unredacted body: {etag} (confirms a guess; length {})",
            token.len()
        ));
    }
    if shown.contains(&repr.to_ascii_lowercase()) {
        failures.push(format!("Repr-Digest of the unredacted body: {repr}"));
    }
    assert!(
        failures.is_empty(),
        "\n{}\n-i output:\n{shown}",
        failures.join("\n")
    );
}

// Finding 1, end to end: the clip gives every byte but the last; the
// redactor itself then tells which candidate for the last byte is right
// (a reflected candidate equal to the token comes back as `[redacted]`).
// The script recovers the whole token with one request per candidate.
#[test]

fn the_whole_token_from_clipped_messages_and_the_redaction_oracle() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    let token = canary("RT");
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
    let message = |to: &str| -> String {
        let url = up.url(&format!("/redirect-echo?to={to}"));
        let (_, _, stderr) = run(&d, &["request", "p", &url, "-L"]);
        String::from_utf8_lossy(&stderr).into_owned()
    };
    // 1. Every byte but the last: the clip cuts the path one byte short.
    //    (The script learns the length from a cut with a shorter padding:
    //    once the echo is whole it is redacted.)
    let mut prefix = String::new();
    for len in (1..60).rev() {
        let pad = "a".repeat(200 - "/outside/".len() - len);
        let m = message(&format!("/outside/{pad}TOKEN"));
        if let Some(rest) = m.split_once(&pad).map(|(_, r)| r) {
            if let Some(shown) = rest.strip_suffix(
                "... is not allowed for this credential (allowed prefixes: /redirect-echo)\n",
            ) {
                if !shown.contains("[redacted]") {
                    prefix = shown.to_owned();
                    break;
                }
            }
        }
    }
    // 2. The last byte: the redactor answers "equal to the token" for us.
    let mut recovered = None;
    for c in "0123456789abcdefABCDEFghijklmnopqrstuvwxyz-_".chars() {
        let candidate = format!("{prefix}{c}");
        if message(&format!("/outside/{candidate}")).contains("/outside/[redacted]") {
            recovered = Some(candidate);
            break;
        }
    }
    assert_ne!(
        recovered.as_deref(),
        Some(token.as_str()),
        "the script recovered the whole token ({} requests or fewer)",
        60 + 44
    );
}

// ---------------------------------------------------------------------------
// Finding 4, the part that can be defended: a squatter of ANOTHER uid on
// a plain-http loopback origin's free port. vaultd checks the owners of
// the sockets listening there (/proc/net/tcp{,6}) before it sends.
// ---------------------------------------------------------------------------

/// Not a test on its own: a no-op unless [`squatter_as`] started this
/// binary with `TOKENVAULT_SQUAT_PORT`; then a listener on that port that
/// appends whatever it receives to `TOKENVAULT_SQUAT_LOG`.
#[test]
fn squatter_helper() {
    let (Some(port), Some(log)) = (
        std::env::var("TOKENVAULT_SQUAT_PORT").ok(),
        std::env::var_os("TOKENVAULT_SQUAT_LOG"),
    ) else {
        return;
    };
    let l = TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap())).expect("bind");
    for mut c in l.incoming().flatten() {
        let _ = c.set_read_timeout(Some(Duration::from_millis(1500)));
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if got.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let _ = c.write_all(&response("", b"thanks\n"));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        f.write_all(&got).expect("log write");
    }
}

/// Runs [`squatter_helper`] as `user` on `port` and waits until it listens.
fn squatter_as(user: &harness::TestUser, port: u16, log: &std::path::Path) -> std::process::Child {
    let child = user
        .command(std::env::current_exe().expect("test binary"))
        .args(["--exact", "squatter_helper", "--nocapture"])
        .env("TOKENVAULT_SQUAT_PORT", port.to_string())
        .env("TOKENVAULT_SQUAT_LOG", log)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the squatter");
    let start = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the squatter did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// An origin spelled as IPv4-mapped IPv6 (`http://[::ffff:127.0.0.1]:P`,
/// accepted with `--allow-insecure-http`) reaches the same IPv4 loopback
/// port; `Ipv6Addr::is_loopback` is false for it, which once skipped the
/// check.
#[test]
fn another_uids_squatter_behind_an_ipv4_mapped_origin_gets_nothing() {
    let user = match harness::TestUser::create("sqm") {
        Ok(u) => u,
        Err(why) => {
            println!(
                "SKIPPED another_uids_squatter_behind_an_ipv4_mapped_origin_gets_nothing: {why}"
            );
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    user.own(dir.path());
    let log = dir.path().join("squatter.log");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut squatter = squatter_as(&user, port, &log);
    let origin = format!("http://[::ffff:127.0.0.1]:{port}");
    let token = canary("SQM");
    let d = Daemon::start("");
    d.init();
    d.add(
        "mapped",
        &token,
        &["--bearer", "--origin", &origin, "--allow-insecure-http"],
    )
    .ok();
    let (code, _, stderr) = run(&d, &["request", "mapped", &format!("{origin}/")]);
    let _ = squatter.kill();
    let _ = squatter.wait();
    let got = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(
        !got.contains(&token),
        "uid {} received the token through {origin} (exit {code}):\n{got}",
        user.uid
    );
    assert_eq!(code, 5, "stderr: {stderr}");
    assert!(stderr.contains(&format!("uid {}", user.uid)), "{stderr}");
}

#[test]
fn another_uids_squatter_on_a_loopback_port_gets_nothing() {
    let user = match harness::TestUser::create("sq") {
        Ok(u) => u,
        Err(why) => {
            println!("SKIPPED another_uids_squatter_on_a_loopback_port_gets_nothing: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    user.own(dir.path());
    let log = dir.path().join("squatter.log");
    // The port of a local service that is down right now.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut squatter = squatter_as(&user, port, &log);
    let origin = format!("http://127.0.0.1:{port}");
    let token = canary("SQ");
    let received = || std::fs::read(&log).unwrap_or_default();

    let d = Daemon::start("");
    d.init();
    d.add("local", &token, &["--bearer", "--origin", &origin])
        .ok();
    let (code, _, stderr) = run(&d, &["request", "local", &format!("{origin}/")]);
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let got = received();
    // Control: the squatter does listen and log (checked below with the
    // uid trusted), so an empty log here means vaultd sent nothing.
    let result_refused = (
        code,
        got.is_empty(),
        stderr.contains(&format!("uid {}", user.uid)),
    );

    // Trusting that uid lets the request through: the check is what
    // stopped it above, not a broken squatter.
    let trusting = Daemon::start(&format!("loopback_listener_uids = [{}]\n", user.uid));
    trusting.init();
    trusting
        .add("local", &token, &["--bearer", "--origin", &origin])
        .ok();
    let (trusted_code, _, _) = run(&trusting, &["request", "local", &format!("{origin}/")]);
    let after_trust = received();
    let _ = squatter.kill();
    let _ = squatter.wait();

    assert_eq!(
        result_refused,
        (5, true, true),
        "a squatter of uid {} on {origin}: exit, nothing received, message names the uid; stderr: {stderr}",
        user.uid
    );
    assert_eq!(trusted_code, 0, "the trusted squatter's request failed");
    assert!(
        String::from_utf8_lossy(&after_trust).contains(&token),
        "the control failed: the squatter logged nothing even when trusted"
    );
}
