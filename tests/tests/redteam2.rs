//! Red-team round 2: attacks by a script of the vault's uid that only talks
//! to the socket and to servers of its own on loopback, against upstreams
//! the token is legitimately bound to and which reflect what they receive
//! the way real servers and frameworks do.
//!
//! Every `#[ignore = "finding: ..."]` test here is an attack that WORKS on
//! the code it was written against (main at 18b5cd3): it asserts that no
//! byte of the token reaches the script, and it fails today. Run them with
//! `cargo build --workspace --bins && cargo test -p tokenvault-tests --test
//! redteam2 -- --ignored`. Remove the `ignore` with the fix.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use harness::raw::{Seen, map_bytes, query, raw_upstream, raw_upstream_at, run};
use harness::{Daemon, canary};

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 reflecting upstream: `/form?f=NAME` answers
// `echo=<token written as encoder NAME writes it>;end`.
// ---------------------------------------------------------------------------

/// The token as a real encoder writes it back.
fn encode(t: &[u8], form: &str) -> Vec<u8> {
    match form {
        // ASP.NET Core / System.Text.Json with its default encoder
        // (JavaScriptEncoder.Default): `+`, `'`, `"`, `&`, `<`, `>` and
        // backtick as \u00XX, upper-case hex: `{"token":"abc\u002Bdef"}`.
        "dotnet-json" => map_bytes(t, |b| {
            matches!(b, b'+' | b'\'' | b'"' | b'&' | b'<' | b'>' | b'`')
                .then(|| format!("\\u{:04X}", b))
        }),
        // Go html/template in HTML text: `+` as `&#43;`, `"` as `&#34;`,
        // `'` as `&#39;` (an error page "invalid token {{.Token}}").
        "go-html-template" => map_bytes(t, |b| match b {
            b'+' => Some("&#43;".into()),
            b'"' => Some("&#34;".into()),
            b'\'' => Some("&#39;".into()),
            b'&' => Some("&amp;".into()),
            b'<' => Some("&lt;".into()),
            b'>' => Some("&gt;".into()),
            _ => None,
        }),
        // OWASP ESAPI encodeForHTML: every non-alphanumeric byte except
        // `,.-_ ` as a hex character reference.
        "esapi-html" => map_bytes(t, |b| {
            (!b.is_ascii_alphanumeric() && !matches!(b, b',' | b'.' | b'-' | b'_' | b' '))
                .then(|| format!("&#x{:x};", b))
        }),
        // Go url.PathEscape, Spring UriUtils.encodePathSegment: a path
        // segment keeps sub-delims (`+`, `=`, ...) and encodes `/` (a
        // Location or a link to /tokens/<token>).
        "path-segment" => map_bytes(t, |b| {
            (!(b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                )))
            .then(|| format!("%{:02X}", b))
        }),
        // JavaScript escape() (still in legacy pages and bookmarklets):
        // leaves `@*_+-./`, encodes `=` as %3D.
        "js-escape" => map_bytes(t, |b| {
            (!(b.is_ascii_alphanumeric() || b"@*_+-./".contains(&b))).then(|| format!("%{:02X}", b))
        }),
        // A 12-byte token in a larger base64 blob (a request dump sent as
        // base64, e.g. a webhook inspector's raw view), here at alignment 2:
        // the redactor builds the token's "cores" only when they reach 16
        // characters, which at alignments 1 and 2 needs a 14-byte token.
        "b64-blob" => {
            use base64::Engine as _;
            let mut dump = b"GET / HTTP/1.1\r\nauthorization: Bearer ".to_vec();
            dump.extend_from_slice(t);
            // The token's own base64 characters (the script recomputes them
            // for any guess, or decodes the blob).
            base64::engine::general_purpose::STANDARD
                .encode(&dump)
                .into_bytes()
        }
        // Quoted-printable (a mail API's stored message, "your key is ..."):
        // `=` as `=3D`.
        "quoted-printable" => map_bytes(t, |b| (b == b'=').then(|| "=3D".to_owned())),
        // WSGI (PEP 3333) hands header values to the app as latin-1; Flask
        // jsonify / json.dumps (ensure_ascii) then writes each UTF-8 byte of
        // a non-ASCII token as \u00XX (httpbin's /headers does exactly this).
        "wsgi-json" => map_bytes(t, |b| (b >= 0x80).then(|| format!("\\u{:04x}", b))),
        // Node.js decodes header values as latin-1 and writes them back as
        // UTF-8: each byte >= 0x80 becomes two bytes (res.end(JSON.stringify(req.headers))).
        "node-latin1" => {
            let s: String = t.iter().map(|&b| char::from(b)).collect();
            s.into_bytes()
        }
        // nginx access log (escape=default), as a service's log viewer
        // shows `$http_authorization`: `"`, `\` and bytes outside 0x20-0x7e
        // as \xXX (Apache's mod_log_config does the same).
        "nginx-log" => map_bytes(t, |b| {
            (b == b'"' || b == b'\\' || !(0x20..=0x7e).contains(&b))
                .then(|| format!("\\x{:02X}", b))
        }),
        // Java String.toUpperCase() under a Turkish default locale (tr_TR):
        // an ASCII `i` becomes U+0130, the rest ASCII upper case.
        "turkish-upper" => String::from_utf8_lossy(t)
            .chars()
            .map(|c| match c {
                'i' => "\u{130}".to_owned(),
                c => c.to_ascii_uppercase().to_string(),
            })
            .collect::<String>()
            .into_bytes(),
        // Python str.upper() / JS toUpperCase() of a non-ASCII token.
        "unicode-upper" => String::from_utf8_lossy(t).to_uppercase().into_bytes(),
        _ => t.to_vec(),
    }
}

fn form_handler(seen: &Seen) -> Vec<u8> {
    let form = query(&seen.path, "f");
    let mut out = b"echo=".to_vec();
    out.extend(encode(&seen.token, &form));
    out.extend_from_slice(b";end");
    out
}

/// (case, credential, form). `s`: a base64-style token with `+`, `/`, `=`;
/// `u`: a token with non-ASCII letters (a header value may carry them).
const FORMS: &[(&str, &str, &str)] = &[
    (
        "ASP.NET Core JSON (System.Text.Json default encoder)",
        "s",
        "dotnet-json",
    ),
    ("Go html/template", "s", "go-html-template"),
    ("OWASP ESAPI encodeForHTML", "s", "esapi-html"),
    (
        "Go url.PathEscape / Spring encodePathSegment",
        "s",
        "path-segment",
    ),
    ("quoted-printable", "s", "quoted-printable"),
    ("JavaScript escape()", "s", "js-escape"),
    (
        "a 12-byte token inside a base64 request dump",
        "t",
        "b64-blob",
    ),
    (
        "WSGI latin-1 + json.dumps (httpbin /headers)",
        "u",
        "wsgi-json",
    ),
    ("Node latin-1 header echoed as UTF-8", "u", "node-latin1"),
    ("Unicode upper-case", "u", "unicode-upper"),
    ("nginx/Apache access-log escaping", "u", "nginx-log"),
    (
        "Java toUpperCase() in a Turkish locale (ASCII token)",
        "i",
        "turkish-upper",
    ),
];

// ---------------------------------------------------------------------------
// Finding 1 (high): everyday encoders the redactor has no pattern for.
// ---------------------------------------------------------------------------

#[test]

fn everyday_encoders_the_redactor_misses() {
    let addr = raw_upstream(form_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start("");
    d.init();
    // As many APIs issue them: standard base64 with `+`, `/` and `=`.
    let s_token = format!("{}+{}/Zz==", canary("B64"), canary("More"));
    let u_token = format!("{}-ÅÖöäßé", canary("Uni"));
    d.add("s", &s_token, &["--bearer", "--origin", &origin])
        .ok();
    d.add("u", &u_token, &["--bearer", "--origin", &origin])
        .ok();
    // A short API key (12 bytes).
    let t_token = canary("K")[..12].to_owned();
    d.add("t", &t_token, &["--bearer", "--origin", &origin])
        .ok();
    // An ASCII token with an `i` in it.
    let i_token = format!("api-{}", canary("live"));
    d.add("i", &i_token, &["--bearer", "--origin", &origin])
        .ok();

    let mut leaks = Vec::new();
    for (name, cred, form) in FORMS {
        let token = match *cred {
            "s" => &s_token,
            "t" => &t_token,
            "i" => &i_token,
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
            // In --json the body is JSON-escaped: compare on the decoded body.
            let body = if mode == "--print=json" {
                let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_default();
                v["body"].as_str().unwrap_or_default().as_bytes().to_vec()
            } else {
                stdout.clone()
            };
            if harness::count(&body, &echoed) > 0 || harness::count(&stderr, &echoed) > 0 {
                leaks.push(format!(
                    "{name} [{mode}] (exit {code}): the token, encoded, reached the script: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
        }
    }
    assert!(leaks.is_empty(), "\n{}", leaks.join("\n"));
}

// ---------------------------------------------------------------------------
// Finding 2 (medium): a header credential whose value is structured (a
// session cookie `sid=SECRET`) is redacted only as a whole. Servers parse
// it and echo the part that is the secret: httpbin's /cookies, Flask/Django
// debug pages and "request inspector" endpoints show `{"sid": "SECRET"}`.
// ---------------------------------------------------------------------------

fn cookie_handler(seen: &Seen) -> Vec<u8> {
    // As httpbin /cookies: every cookie parsed, values shown.
    let text = String::from_utf8_lossy(&seen.cookie).into_owned();
    let pairs: Vec<String> = text
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    format!("{{\"cookies\":{{{}}}}}\n", pairs.join(",")).into_bytes()
}

#[test]

fn parsed_cookie_credentials_are_echoed_without_their_name() {
    let addr = raw_upstream(cookie_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start("");
    d.init();
    let secret = canary("SID");
    let value = format!("sid={secret}");
    d.add(
        "session",
        &value,
        &["--header", "Cookie", "--origin", &origin],
    )
    .ok();
    let (code, stdout, stderr) = run(&d, &["request", "session", &format!("{origin}/cookies")]);
    let out = String::from_utf8_lossy(&stdout);
    assert!(
        !out.contains(&secret) && !String::from_utf8_lossy(&stderr).contains(&secret),
        "exit {code}: the session secret reached the script: {out}"
    );
}

// ---------------------------------------------------------------------------
// Finding 3 (medium): the neighbours' redaction (round 1's fix for stored
// echoes) matches credentials by host *string*. One service reachable by
// another spelling of its address (127.0.0.2 for a service bound to
// 0.0.0.0, the IPv4-mapped [::ffff:127.0.0.1] for any IPv4 loopback
// service, or for real services a second hostname on the same backend) is a
// different "host": a credential the script adds there reads the service's
// request log, and the owner's token in it is not redacted.
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

#[test]

fn stored_echoes_via_another_spelling_of_the_same_host() {
    let addr = raw_upstream_at("0.0.0.0:0", store_handler);
    let port = addr.port();
    let d = Daemon::start("");
    d.init();
    let admin = canary("ADM");
    let origin = format!("http://127.0.0.1:{port}");
    d.add("admin", &admin, &["--bearer", "--origin", &origin])
        .ok();
    // The owner's job uses `admin`; the service logs it.
    run(&d, &["request", "admin", &format!("{origin}/api/thing")]);

    let mut leaks = Vec::new();
    for (name, alt, extra) in [
        (
            "127.0.0.2 (service on 0.0.0.0)",
            format!("http://127.0.0.2:{port}"),
            None,
        ),
        (
            "IPv4-mapped IPv6",
            format!("http://[::ffff:127.0.0.1]:{port}"),
            Some("--allow-insecure-http"),
        ),
    ] {
        let cred = format!("mine{}", leaks.len() + name.len());
        let mut args = vec!["--bearer", "--origin", alt.as_str()];
        args.extend(extra);
        let added = d.add(&cred, "made-up-by-the-script", &args);
        let (code, stdout, _) = run(&d, &["request", &cred, &format!("{alt}/activity")]);
        let out = String::from_utf8_lossy(&stdout);
        if out.contains(&admin) {
            leaks.push(format!(
                "{name} (add: {}; exit {code}): {out}",
                added.text().trim()
            ));
        }
    }
    assert!(leaks.is_empty(), "\n{}", leaks.join("\n"));
}

// ---------------------------------------------------------------------------
// Finding 4 (high for plain-http loopback credentials): the listener-uid
// check (job/listener.rs, round 1's fix) is a check-then-connect race that
// ANY local user wins within a few jobs. SECURITY.md calls it "the instant
// between the check and the connect"; in practice it is wide enough that a
// squatter which listens for ~0.5 ms, closes, waits ~0.5 ms and listens
// again receives the token in cleartext in about 1 job in 3 (measured on
// 18b5cd3, debug build: 12 of 40). A uid in `allow_uids` can make the jobs
// itself; otherwise the owner's own scripts make them while the service is
// down (restarting, not yet started). No `allow_uids` needed for the
// squatter.
// Fixed: the check now runs on the connection itself, after the connect
// and before any byte is written (job/listener_layer.rs); measured after
// the fix: 37 to 48 of 100 jobs reached the squatter, all refused (exit 5).
// ---------------------------------------------------------------------------

/// Not a test on its own: a no-op unless started by
/// [`racing_squatter_as`]; then it toggles a listener on
/// `TOKENVAULT_RACE_PORT` and appends whatever it receives to
/// `TOKENVAULT_RACE_LOG`.
#[test]
fn racing_squatter_helper() {
    use std::io::Read;
    let (Some(port), Some(log)) = (
        std::env::var("TOKENVAULT_RACE_PORT").ok(),
        std::env::var_os("TOKENVAULT_RACE_LOG"),
    ) else {
        return;
    };
    let port: u16 = port.parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            std::thread::sleep(Duration::from_micros(500));
            l.set_nonblocking(true).unwrap();
            while let Ok((mut c, _)) = l.accept() {
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
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn racing_squatter_as(
    user: &harness::TestUser,
    port: u16,
    log: &std::path::Path,
) -> std::process::Child {
    user.command(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "racing_squatter_helper",
            "--nocapture",
            "--include-ignored",
        ])
        .env("TOKENVAULT_RACE_PORT", port.to_string())
        .env("TOKENVAULT_RACE_LOG", log)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the squatter")
}

/// Fixed by checking the server side of the connection itself, after the
/// connect and before any byte is written (job/listener_layer.rs): the
/// jobs that reach the squatter are refused with exit 5.
#[test]
fn another_uids_racing_squatter_gets_nothing() {
    let user = match harness::TestUser::create("race") {
        Ok(u) => u,
        Err(why) => {
            println!("SKIPPED another_uids_racing_squatter_gets_nothing: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    user.own(dir.path());
    let log = dir.path().join("race.log");
    // The port of a local service that is down right now.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let origin = format!("http://127.0.0.1:{port}");
    let token = canary("RACE");
    let d = Daemon::start("");
    d.init();
    d.add("local", &token, &["--bearer", "--origin", &origin])
        .ok();
    let mut squatter = racing_squatter_as(&user, port, &log);
    std::thread::sleep(Duration::from_millis(300));
    let mut codes = std::collections::BTreeMap::new();
    let mut jobs = 0;
    for _ in 0..100 {
        jobs += 1;
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
    assert!(
        !got.contains(&token),
        "uid {} (not in allow_uids) received the token after {jobs} jobs (exit codes {codes:?}):\n{got}",
        user.uid
    ); // The race was run: some jobs did reach the squatter (and were refused).
    println!("{jobs} jobs, exit codes {codes:?}");
    assert!(
        codes.contains_key(&5),
        "no job reached the squatter in {jobs} jobs (exit codes {codes:?}): the race was not run"
    );
}

// ---------------------------------------------------------------------------
// Finding 5 (low: needs a token with URL-special characters): with -L, the
// structured output's final `url` is the url crate's (WHATWG) serialization
// of a same-origin Location that carries the token. WHATWG percent-encodes
// only a few characters of a path (space, `"`, `<`, `>`, `` ` ``, `{`, `}`,
// non-ASCII) and leaves `+`, `=`, `:`, `/` raw: a combination none of the
// redactor's percent forms writes, so a token with a `"` or `{` (a JSON-ish
// token) *and* a `+`, `=` or `:` comes back in `url`. (A non-ASCII token
// is safe here: its raw Location is refused as not text.)
// ---------------------------------------------------------------------------

fn redirect_handler(seen: &Seen) -> Vec<u8> {
    if seen.path.starts_with("/p/") {
        return b"landed".to_vec();
    }
    let mut r = b"HTTP/1.1 302 Found\r\nLocation: /p/".to_vec();
    r.extend_from_slice(&seen.token);
    r.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    r
}

#[test]

fn final_url_in_whatwg_percent_encoding() {
    let addr = raw_upstream(redirect_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start("");
    d.init();
    let mut leaks = Vec::new();
    for (cred, token) in [
        ("json", format!("{}{{\"k\":1}}+Zz=", canary("J"))),
        ("spaced", format!("{} key+Zz=", canary("S"))),
    ] {
        d.add(cred, &token, &["--bearer", "--origin", &origin]).ok();
        let (code, stdout, _) = run(
            &d,
            &[
                "request",
                cred,
                &format!("{origin}/start"),
                "-L",
                "--print=json",
            ],
        );
        let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap_or_default();
        let url = v["url"].as_str().unwrap_or_default().to_owned();
        let path = url.split_once("/p/").map(|(_, p)| p).unwrap_or_default();
        let decoded = String::from_utf8_lossy(&percent_decode(path)).into_owned();
        if decoded.contains(token.as_str()) {
            leaks.push(format!(
                "{cred} (exit {code}): url {url:?} decodes to the token"
            ));
        }
    }
    assert!(leaks.is_empty(), "\n{}", leaks.join("\n"));
}

/// `%XX` sequences decoded, everything else kept.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Finding 6 (medium, needs a storing upstream as round 1's finding 3):
// neighbour redaction lasts only as long as the credential. The script
// (the owner's uid) may `remove` or `rotate` any credential without the
// passphrase; the old value is then forgotten by vaultd but still valid at
// the service, and the service's request log shows it unredacted to a
// credential the script adds. SECURITY.md treats a rotated-out value as the
// owner's own doing ("revoke the old value at the service when you
// rotate"); here the script forces it.
// ---------------------------------------------------------------------------

static STORE2: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

fn store2_handler(seen: &Seen) -> Vec<u8> {
    let mut s = STORE2.lock().unwrap();
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

#[test]
#[ignore = "not defended, by choice: remove and rotate need no passphrase (DESIGN.md) and forget the old value; SECURITY.md says to revoke it at the service and to run scripts under an allow_uids uid (fails by design)"]
fn the_script_removes_a_credential_then_reads_its_stored_token() {
    let addr = raw_upstream(store2_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start("");
    d.init();
    let admin = canary("OWN");
    d.add("admin", &admin, &["--bearer", "--origin", &origin])
        .ok();
    // The owner's job uses `admin`; the service logs it.
    run(&d, &["request", "admin", &format!("{origin}/api/thing")]);
    // The script: no passphrase asked.
    let (rm, _, rm_err) = run(&d, &["remove", "admin"]);
    d.add(
        "mine",
        "made-up-by-the-script",
        &["--bearer", "--origin", &origin],
    )
    .ok();
    let (code, stdout, _) = run(&d, &["request", "mine", &format!("{origin}/activity")]);
    let out = String::from_utf8_lossy(&stdout);
    assert!(
        !out.contains(&admin),
        "remove exit {rm} ({}); /activity (exit {code}) shows the removed, still valid token: {out}",
        String::from_utf8_lossy(&rm_err).trim()
    );
}
