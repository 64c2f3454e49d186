//! Red-team round 3: attacks by a script of the vault's uid that only talks
//! to the socket and to servers of its own on loopback, against upstreams
//! the token is legitimately bound to and which reflect what they receive
//! the way real servers, frameworks and file formats do.
//!
//! Every `#[ignore = "finding: ..."]` test here is an attack that WORKS on
//! the code it was written against (main at 0cd9a22): it asserts that no
//! byte of the token reaches the script, and it fails today. Run them with
//! `cargo build --workspace --bins && cargo test -p tokenvault-tests --test
//! redteam3 -- --ignored`. Remove the `ignore` with the fix.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use harness::raw::{Seen, map_bytes, query, raw_upstream, read_head, run};
use harness::{Daemon, canary};

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 reflecting upstream (as in redteam2.rs).
// ---------------------------------------------------------------------------

/// HTML5 named character references for ASCII punctuation, as PHP's
/// `htmlentities($s, ENT_QUOTES | ENT_HTML5)` writes them (its ENT_HTML5
/// table has a name for each; `-` has none).
fn html5_name(b: u8) -> Option<&'static str> {
    Some(match b {
        b'!' => "&excl;",
        b'"' => "&quot;",
        b'#' => "&num;",
        b'$' => "&dollar;",
        b'%' => "&percnt;",
        b'&' => "&amp;",
        b'\'' => "&apos;",
        b'(' => "&lpar;",
        b')' => "&rpar;",
        b'*' => "&ast;",
        b'+' => "&plus;",
        b',' => "&comma;",
        b'.' => "&period;",
        b'/' => "&sol;",
        b':' => "&colon;",
        b';' => "&semi;",
        b'<' => "&lt;",
        b'=' => "&equals;",
        b'>' => "&gt;",
        b'?' => "&quest;",
        b'@' => "&commat;",
        b'[' => "&lsqb;",
        b'\\' => "&bsol;",
        b']' => "&rsqb;",
        b'^' => "&Hat;",
        b'_' => "&lowbar;",
        b'`' => "&grave;",
        b'{' => "&lcub;",
        b'|' => "&verbar;",
        b'}' => "&rcub;",
        _ => return None,
    })
}

/// Quoted-printable as Python's `quopri.encodestring` / `email` write it:
/// `=` as `=3D`, lines of at most 76 characters ended by a soft line break
/// `=` + newline. Checked against CPython 3 `quopri` by hand.
fn quoted_printable(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = 0;
    for &b in text {
        let unit = if b == b'=' || !(0x20..0x7f).contains(&b) {
            format!("={b:02X}").into_bytes()
        } else {
            vec![b]
        };
        if line + unit.len() > 75 {
            out.extend_from_slice(b"=\n");
            line = 0;
        }
        line += unit.len();
        out.extend_from_slice(&unit);
    }
    out
}

/// The whole body the upstream answers for form `form` (a prefix, then the
/// token as that encoder writes it back).
fn encode(t: &[u8], form: &str) -> Vec<u8> {
    match form {
        // A mail API's stored message or a mail catcher's raw view
        // (MailHog, Mailpit, Mailgun "stored messages"): quoted-printable
        // breaks every line at 76 columns with a soft line break `=\n`, so
        // any token that crosses a break (all of them past ~60 bytes) comes
        // back cut in two, each half raw.
        "qp-soft-break" => quoted_printable(&[&b"Your API key is: "[..], t].concat()),
        // Java `Properties.store()` (a config export / "download settings"
        // endpoint): `=`, `:`, `#`, `!` are written as `\=`, `\:`, `\#`,
        // `\!` in values too. Checked with OpenJDK: `api.token=AbC+dEf/GhI\:jk\=\=`.
        "java-properties" => [
            &b"api.token="[..],
            &map_bytes(t, |b| {
                b"=:#!".contains(&b).then(|| format!("\\{}", b as char))
            }),
        ]
        .concat(),
        // Telegram MarkdownV2 / python-telegram-bot `escape_markdown(v=2)`
        // and most Markdown escapers: punctuation with a backslash.
        "markdown-v2" => [
            &b"Token: `"[..],
            &map_bytes(t, |b| {
                b"_*[]()~`>#+-=|{}.!\\"
                    .contains(&b)
                    .then(|| format!("\\{}", b as char))
            }),
            b"`",
        ]
        .concat(),
        // PHP `htmlentities($t, ENT_QUOTES | ENT_HTML5)` on an error page:
        // `+` as `&plus;`, `/` as `&sol;`, `=` as `&equals;`, `.` as
        // `&period;`, `_` as `&lowbar;`.
        "php-htmlentities-html5" => [
            &b"<p>Invalid key "[..],
            &map_bytes(t, |b| html5_name(b).map(str::to_owned)),
            b"</p>",
        ]
        .concat(),
        // CSS escaping (OWASP Encoder `forCssString`, `CSS.escape` of
        // a leading digit, Go html/template in a style context): `\2b `.
        "css-escape" => [
            &b"content: \""[..],
            &map_bytes(t, |b| {
                (!b.is_ascii_alphanumeric() && b != b'-' && b != b'_')
                    .then(|| format!("\\{:x} ", b))
            }),
            b"\"",
        ]
        .concat(),
        // A request inspector (webhook.site-style) in ASP.NET Core that
        // returns the raw request as a `byte[]` property: System.Text.Json
        // writes it as base64 and, with its default encoder, every `+` as
        // `\u002B`. The redactor finds the token's base64 "cores" only
        // as they are, and searches its decoded views only for the token
        // itself, not for its base64.
        "dotnet-json-bytes" => {
            let mut dump = b"GET /hook HTTP/1.1\r\nauthorization: Bearer ".to_vec();
            dump.extend_from_slice(t);
            dump.extend_from_slice(b"\r\n\r\n");
            let b64 = STANDARD.encode(&dump);
            [
                &b"{\"raw\":\""[..],
                b64.replace('+', "\\u002B").as_bytes(),
                b"\"}",
            ]
            .concat()
        }
        // Greedy decoding: an escape introducer that an HTML encoder leaves
        // raw (`%`, `\`) right before the echo takes the token's first two
        // characters when they are hex digits (`%B6` of `B64-…`), and the
        // view no longer holds the token. Go html/template, `+` as `&#43;`.
        // Low: needs the upstream to write a raw `%` or `\x` just before
        // the token (a template "{{.Rate}}%{{.Token}}", a Windows path).
        "go-html-after-percent" => [
            &b"<td>100%"[..],
            &map_bytes(t, |b| (b == b'+').then(|| "&#43;".to_owned())),
            b"</td>",
        ]
        .concat(),
        // Quoted-printable of a non-ASCII token (every mail library):
        // `=C3=85`; the views decode `=HH` only for ASCII punctuation.
        "qp-non-ascii" => map_bytes(t, |b| (b == b'=' || b >= 0x80).then(|| format!("={b:02X}"))),
        // JavaScript `escape()` (and Latin-1 `URLEncoder.encode`, PHP
        // `urlencode` of a Latin-1 string): a character below U+0100 as
        // one `%HH` of its code point, `Å` as `%C5`.
        "js-escape-non-ascii" => String::from_utf8_lossy(t)
            .chars()
            .map(|c| match c as u32 {
                n if n < 0x80 => c.to_string(),
                n if n < 0x100 => format!("%{n:02X}"),
                n => format!("%u{n:04X}"),
            })
            .collect::<String>()
            .into_bytes(),
        // PHP `htmlentities()` with its default table (HTML 4.01): Latin-1
        // letters as named entities, `Å` as `&Aring;`, `ß` as `&szlig;`.
        "php-htmlentities-latin1" => String::from_utf8_lossy(t)
            .chars()
            .map(|c| match c {
                'Å' => "&Aring;".to_owned(),
                'Ö' => "&Ouml;".to_owned(),
                'ö' => "&ouml;".to_owned(),
                'ä' => "&auml;".to_owned(),
                'ß' => "&szlig;".to_owned(),
                'é' => "&eacute;".to_owned(),
                c => c.to_string(),
            })
            .collect::<String>()
            .into_bytes(),
        _ => t.to_vec(),
    }
}

fn form_handler(seen: &Seen) -> Vec<u8> {
    let form = query(&seen.path, "f");
    encode(&seen.token, &form)
}

/// (case, credential, form). `s`: a standard-base64 API key (`+`, `/`,
/// `==`); `j`: a JWT (`.`, `_`, `-`); `w`: a key whose base64 holds `+`;
/// `u`: a token with non-ASCII letters (as redteam2.rs; rarer).
const FORMS: &[(&str, &str, &str)] = &[
    (
        "quoted-printable soft line breaks (Python quopri, mail catchers)",
        "s",
        "qp-soft-break",
    ),
    (
        "quoted-printable soft line breaks, JWT",
        "j",
        "qp-soft-break",
    ),
    ("Java Properties.store (\\= \\:)", "s", "java-properties"),
    (
        "Markdown escaping (Telegram MarkdownV2)",
        "s",
        "markdown-v2",
    ),
    ("Markdown escaping, JWT (\\. \\_ \\-)", "j", "markdown-v2"),
    (
        "PHP htmlentities ENT_HTML5 (&plus; &sol; &equals;)",
        "s",
        "php-htmlentities-html5",
    ),
    (
        "PHP htmlentities ENT_HTML5, JWT (&period; &lowbar;)",
        "j",
        "php-htmlentities-html5",
    ),
    ("CSS escape (\\2b )", "s", "css-escape"),
    (
        "ASP.NET Core byte[] as JSON base64 (+ as \\u002B)",
        "w",
        "dotnet-json-bytes",
    ),
    (
        "Go html/template right after a raw % (token starting with hex digits)",
        "s",
        "go-html-after-percent",
    ),
    (
        "quoted-printable, non-ASCII token (=C3=85)",
        "u",
        "qp-non-ascii",
    ),
    (
        "JavaScript escape(), non-ASCII token (%C5)",
        "u",
        "js-escape-non-ascii",
    ),
    (
        "PHP htmlentities default table, non-ASCII token (&Aring;)",
        "u",
        "php-htmlentities-latin1",
    ),
];

/// Whether `out` carries the echo: the upstream's bytes for it, or a run of
/// 16 raw bytes of the token.
fn leaked(out: &[u8], token: &[u8], echoed: &[u8]) -> bool {
    harness::count(out, echoed) > 0
        || token
            .windows(16.min(token.len()))
            .any(|w| harness::count(out, w) > 0)
}

// ---------------------------------------------------------------------------
// Finding 1 (high): everyday escape syntaxes and line breaks the decoded
// views do not undo.
// ---------------------------------------------------------------------------

#[test]

fn escape_syntaxes_the_views_do_not_decode() {
    let addr = raw_upstream(form_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start("");
    d.init();
    let s_token = format!("{}+{}/Zz==", canary("B64"), canary("More"));
    let j_token = format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx{}.{}_-Q",
        &canary("p")[2..],
        &canary("s")[2..]
    );
    // `~~~` is `fn5+` in base64: the key's base64 holds a `+` at every
    // alignment.
    let w_token = format!("{}~~~~~~~~~{}", canary("W"), canary("X"));
    let u_token = format!("{}-ÅÖöäßé", canary("Uni"));
    for (name, token) in [
        ("s", &s_token),
        ("j", &j_token),
        ("w", &w_token),
        ("u", &u_token),
    ] {
        d.add(name, token, &["--bearer", "--origin", &origin]).ok();
    }

    let mut leaks = Vec::new();
    for (case, cred, form) in FORMS {
        let token = match *cred {
            "s" => &s_token,
            "j" => &j_token,
            "w" => &w_token,
            _ => &u_token,
        };
        let echoed = encode(token.as_bytes(), form);
        for mode in ["plain", "--print=json", "-i"] {
            let url = format!("{origin}/form?f={form}");
            let mut args = vec!["request", cred, url.as_str()];
            if mode != "plain" {
                args.push(mode);
            }
            let (code, stdout, stderr) = run(&d, &args);
            let body = if mode == "--print=json" {
                let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_default();
                v["body"].as_str().unwrap_or_default().as_bytes().to_vec()
            } else {
                stdout.clone()
            };
            if leaked(&body, token.as_bytes(), &echoed)
                || leaked(&stderr, token.as_bytes(), &echoed)
            {
                leaks.push(format!(
                    "{case} [{mode}] (exit {code}): the token reached the script: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "\n{}", leaks.join("\n"));
}

// ---------------------------------------------------------------------------
// Found on d97f883, fixed by 0cd9a22 (every cookie value is a token): kept
// as a regression test. A structured header credential was split only at
// its first `=` or space. A Cookie credential copied from a browser holds
// several cookies, and servers echo each value on its own (httpbin
// `/cookies`, every framework's debug page): the session cookie, not being
// first, is never a pattern of its own.
// ---------------------------------------------------------------------------

fn cookie_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut cookie = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("cookie:") {
                    let _ = v;
                    cookie = line[7..].trim().to_owned();
                }
            }
            // As httpbin /cookies: every cookie parsed, values shown.
            let pairs: Vec<String> = cookie
                .split(';')
                .filter_map(|c| c.trim().split_once('='))
                .map(|(k, v)| format!("\"{k}\":\"{v}\""))
                .collect();
            let body = format!("{{\"cookies\":{{{}}}}}\n", pairs.join(","));
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    addr
}

#[test]
fn one_cookie_of_several_echoed_alone() {
    let d = Daemon::start("");
    d.init();
    let mut leaks = Vec::new();

    // A Cookie header copied from a browser: the session cookie is not first.
    let addr = cookie_upstream();
    let origin = format!("http://{addr}");
    let session = canary("SESS");
    let cookie = format!("_ga=GA1.1.12345.67890; theme=dark; sessionid={session}");
    let out = d.add("web", &cookie, &["--header", "Cookie", "--origin", &origin]);
    assert_eq!(out.code, 0, "add web: {}", out.stderr);
    let (code, stdout, stderr) = run(&d, &["request", "web", &format!("{origin}/cookies")]);
    if leaked(&stdout, session.as_bytes(), session.as_bytes())
        || leaked(&stderr, session.as_bytes(), session.as_bytes())
    {
        leaks.push(format!(
            "one cookie of several (exit {code}): {}",
            String::from_utf8_lossy(&stdout)
        ));
    }
    assert!(leaks.is_empty(), "\n{}", leaks.join("\n"));
}

// ---------------------------------------------------------------------------
// Finding 2 (medium): the neighbours' redaction (round 2's `machine_of`)
// makes every loopback spelling one machine, but not the machine's own
// other addresses. A service bound to 0.0.0.0 (the usual default) on
// loopback is also reached at the host's LAN address; a credential the
// script adds for `http://<LAN address>:PORT` (`--allow-insecure-http`, no
// listener check off loopback) reads the service's request log, and the
// owner's token in it is not redacted.
// ---------------------------------------------------------------------------

static STORE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

fn store_handler(seen: &Seen) -> Vec<u8> {
    let mut s = STORE.lock().unwrap();
    let body = if seen.path.starts_with("/activity") {
        let lines: Vec<String> = s
            .iter()
            .map(|t| {
                format!(
                    "{{\"authorization\":\"Bearer {}\"}}",
                    String::from_utf8_lossy(t)
                )
            })
            .collect();
        format!("[{}]\n", lines.join(","))
    } else {
        "ok\n".to_owned()
    };
    s.push(seen.token.clone());
    body.into_bytes()
}

/// The host's own address on its default route (no packet is sent).
fn lan_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9")
        .or_else(|_| s.connect("10.255.255.1:9"))
        .ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]

fn stored_echoes_via_the_hosts_own_lan_address() {
    let Some(lan) = lan_address() else {
        eprintln!("no non-loopback address: skipped");
        return;
    };
    let l = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let addr = {
        // raw_upstream binds 127.0.0.1; this service binds every address.
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut s) = conn else { continue };
                let seen = read_head(&mut s);
                let body = store_handler(&seen);
                let _ = s.write_all(
                    &[
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes(),
                        body,
                    ]
                    .concat(),
                );
            }
        });
        port
    };
    let d = Daemon::start("");
    d.init();
    let admin = canary("ADM");
    let origin = format!("http://127.0.0.1:{addr}");
    d.add("admin", &admin, &["--bearer", "--origin", &origin])
        .ok();
    // The owner's job uses `admin`; the service logs it.
    run(&d, &["request", "admin", &format!("{origin}/api/thing")]);

    let host = match lan {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    };
    let alt = format!("http://{host}:{addr}");
    let added = d.add(
        "mine",
        "made-up-by-the-script",
        &["--bearer", "--allow-insecure-http", "--origin", &alt],
    );
    assert_eq!(added.code, 0, "add: {}", added.stderr);
    let (code, stdout, _) = run(&d, &["request", "mine", &format!("{alt}/activity")]);
    let out = String::from_utf8_lossy(&stdout);
    assert!(
        !out.contains(&admin),
        "{alt} (exit {code}): the owner's token reached the script: {out}"
    );
}

// ---------------------------------------------------------------------------
// Squatters of another uid on a plain-http loopback port (root only), for
// the connect-then-check that replaces round 1's check-then-connect. Each
// mode toggles its listener (absent at a check before the connect) and
// drops it the moment a connection arrives (absent at a LISTEN-table check
// after the connect); `dual` listens on the IPv6 wildcard, where IPv4
// connections appear in /proc/net/tcp6 as `::ffff:127.0.0.1`.
// ---------------------------------------------------------------------------

/// Not a test on its own: a no-op unless started by [`squatter_as`].
#[test]
fn squatter_helper() {
    use std::io::Read;
    let (Some(port), Some(log), Some(mode)) = (
        std::env::var("TOKENVAULT_SQUAT_PORT").ok(),
        std::env::var_os("TOKENVAULT_SQUAT_LOG"),
        std::env::var("TOKENVAULT_SQUAT_MODE").ok(),
    ) else {
        return;
    };
    let port: u16 = port.parse().unwrap();
    let bind: std::net::SocketAddr = if mode == "dual" {
        format!("[::]:{port}").parse().unwrap()
    } else {
        format!("127.0.0.1:{port}").parse().unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        if let Ok(l) = TcpListener::bind(bind) {
            l.set_nonblocking(true).unwrap();
            let until = std::time::Instant::now() + Duration::from_micros(700);
            let mut got = None;
            while std::time::Instant::now() < until {
                if let Ok((c, _)) = l.accept() {
                    got = Some(c);
                    break;
                }
            }
            // Gone from the LISTEN table before anyone looks again.
            drop(l);
            if let Some(mut c) = got {
                c.set_nonblocking(false).unwrap();
                let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 4096];
                let n = c.read(&mut buf).unwrap_or(0);
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log");
                f.write_all(&buf[..n]).expect("log write");
            }
        }
        std::thread::sleep(Duration::from_micros(300));
    }
}

fn squatter_as(
    user: &harness::TestUser,
    port: u16,
    log: &std::path::Path,
    mode: &str,
) -> std::process::Child {
    user.command(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "squatter_helper",
            "--nocapture",
            "--include-ignored",
        ])
        .env("TOKENVAULT_SQUAT_PORT", port.to_string())
        .env("TOKENVAULT_SQUAT_LOG", log)
        .env("TOKENVAULT_SQUAT_MODE", mode)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the squatter")
}

fn squat(mode: &str, jobs: usize) -> Result<(), String> {
    let user = match harness::TestUser::create("sq") {
        Ok(u) => u,
        Err(why) => {
            println!("SKIPPED: {why}");
            return Ok(());
        }
    };
    let dir = tempfile::tempdir().unwrap();
    user.own(dir.path());
    let log = dir.path().join("squat.log");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let origin = format!("http://127.0.0.1:{port}");
    let token = canary("SQUAT");
    let d = Daemon::start("");
    d.init();
    d.add("local", &token, &["--bearer", "--origin", &origin])
        .ok();
    let mut squatter = squatter_as(&user, port, &log, mode);
    std::thread::sleep(Duration::from_millis(300));
    let mut codes = std::collections::BTreeMap::new();
    let mut n = 0;
    for _ in 0..jobs {
        n += 1;
        let (code, _, _) = run(
            &d,
            &["request", "local", &format!("{origin}/"), "--max-time", "2"],
        );
        *codes.entry(code).or_insert(0) += 1;
        if String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).contains(&token) {
            break;
        }
    }
    let _ = squatter.kill();
    let _ = squatter.wait();
    let got = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    if got.contains(&token) {
        return Err(format!(
            "{mode}: uid {} received the token after {n} jobs (exit codes {codes:?}):\n{got}",
            user.uid
        ));
    }
    println!("{mode}: nothing after {n} jobs (exit codes {codes:?})");
    Ok(())
}

#[test]
#[ignore = "root only, slow: a squatter of another uid that drops its listener on accept; got the token on d97f883 (check-then-connect), nothing on 0cd9a22 (connect-then-check)"]
fn another_uids_squatter_that_drops_its_listener_on_accept() {
    squat("v4", 150).unwrap();
}

#[test]
#[ignore = "root only, slow: as above, listening on the IPv6 wildcard; got the token on d97f883, nothing on 0cd9a22"]
fn another_uids_dual_stack_squatter_that_drops_its_listener_on_accept() {
    squat("dual", 150).unwrap();
}

// ---------------------------------------------------------------------------
// Finding 1 for a uid listed in `allow_uids` (root only): a guest may only
// use credentials, and that is enough: the owner's credential, bound to a
// reflecting upstream, hands the guest its token through the same echoes.
// ---------------------------------------------------------------------------

#[test]

fn a_guest_uid_reads_the_owners_token_through_an_unusual_escape() {
    use std::os::unix::fs::PermissionsExt;
    let (Ok(a), Ok(b)) = (
        harness::TestUser::create("own"),
        harness::TestUser::create("gst"),
    ) else {
        println!("SKIPPED: not root or no useradd");
        return;
    };
    let addr = raw_upstream(form_handler);
    let origin = format!("http://{addr}");
    let mut d = Daemon::start(&format!("allow_uids = [{}]\n", b.uid));
    d.kill();
    a.own(d.dir());
    let via = a.via();
    let via: Vec<&str> = via.iter().map(String::as_str).collect();
    d.spawn_via(&via);
    // What an admin does with an ACL for allow_uids.
    let mut dir = d.socket.parent().unwrap().to_path_buf();
    loop {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
        if dir == d.dir() {
            break;
        }
        dir = dir.parent().unwrap().to_path_buf();
    }
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let owner = a.via();
    d.ctl_via(
        &owner,
        &["init", "--passphrase-stdin"],
        Some(b"correct horse battery staple\n"),
    )
    .ok();
    let token = format!("{}+{}/Zz==", canary("B64"), canary("More"));
    d.ctl_via(
        &owner,
        &["add", "svc", "--bearer", "--origin", &origin],
        Some(format!("{token}\n").as_bytes()),
    )
    .ok();
    let out = d.ctl_via(
        &b.via(),
        &[
            "request",
            "svc",
            &format!("{origin}/form?f=php-htmlentities-html5"),
        ],
        None,
    );
    let echoed = encode(token.as_bytes(), "php-htmlentities-html5");
    // The guest's job ran and the echo came back, redacted: otherwise the
    // check below would pass on a refusal.
    assert_eq!(out.code, 0, "the guest's job did not run: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[redacted]"),
        "no echo came back: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !leaked(&out.stdout, token.as_bytes(), &echoed),
        "uid {} (allow_uids) got the owner's token (exit {}): {}",
        b.uid,
        out.code,
        String::from_utf8_lossy(&out.stdout)
    );
}
