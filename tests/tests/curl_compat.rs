//! curl side by side with vaultctl (issue 15): each supported curl option
//! runs through both against the same upstream, and what the upstream
//! received, what each printed and how each exited must agree (see
//! `harness::curl`). The README's curl compatibility table names the test
//! of each supported option.

use harness::curl::{Pair, SideBySide};

/// stdout with the header lines that legitimately differ dropped from a
/// printed head: `date` (another second) and `content-length` (vaultd
/// streams a redacted body, whose length it cannot know up front).
fn without_varying_head_lines(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .split("\r\n")
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("date:") && !l.starts_with("content-length:")
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[track_caller]
fn same_modulo_head(s: &SideBySide, path: &str, args: &[&str]) -> Pair {
    let p = s.both(path, args, None);
    p.assert_same_requests(&s.token);
    assert_eq!(
        without_varying_head_lines(&p.vaultctl.stdout),
        without_varying_head_lines(&p.curl.stdout),
        "stdout differs (left vaultctl, right curl)"
    );
    p.assert_same_code();
    p
}

#[test]
fn plain_get() {
    let s = SideBySide::new();
    s.same("/bytes", &[]);
}

#[test]
fn request_method() {
    let s = SideBySide::new();
    s.same("/bytes", &["-X", "PATCH"]);
    s.same("/bytes", &["--request", "DELETE"]);
}

#[test]
fn header() {
    let s = SideBySide::new();
    s.same(
        "/bytes",
        &["-H", "X-One: 1", "--header", "X-Two: two words"],
    );
    // `Name:` removes the header curl would add; `Name;` sends it empty.
    s.same(
        "/bytes",
        &["-d", "x", "-H", "Content-Type:", "-H", "X-Empty;"],
    );
    let f = s.file("h.txt", b"X-From-File: yes\nX-Other: 2\n");
    s.same("/bytes", &["-H", &format!("@{}", f.display())]);
}

#[test]
fn data_inline_and_repeated() {
    let s = SideBySide::new();
    s.same("/bytes", &["-d", "a=1"]);
    s.same("/bytes", &["-d", "a=1", "--data", "b=2", "-d", "c"]);
}

#[test]
fn data_from_a_file() {
    let s = SideBySide::new();
    let f = s.file("d.txt", b"one line, no newline");
    s.same("/bytes", &["-d", &format!("@{}", f.display())]);
    // DESIGN.md: `-d @FILE` is byte-exact, as `--data-binary` (curl drops
    // CR and LF): vaultctl's `-d` sends what curl's `--data-binary` sends.
    let f = s.file("n.txt", b"line one\r\nline two\n");
    let arg = format!("@{}", f.display());
    let p = Pair {
        curl: s.curl("/bytes", &["--data-binary", &arg], None),
        vaultctl: s.vaultctl("/bytes", &["-d", &arg], None),
    };
    p.assert_same(&s.token);
}

#[test]
fn data_from_stdin() {
    let s = SideBySide::new();
    let p = s.both("/bytes", &["-d", "@-"], Some(b"from stdin"));
    p.assert_same(&s.token);
}

#[test]
fn data_binary_is_byte_exact() {
    let s = SideBySide::new();
    let f = s.file("b.bin", b"\x00\x01line\r\n\xff end\n");
    s.same("/bytes", &["--data-binary", &format!("@{}", f.display())]);
    s.same("/bytes", &["--data-binary", "x=1", "--data-binary", "y=2"]);
}

#[test]
fn data_raw_keeps_the_at() {
    let s = SideBySide::new();
    s.same("/bytes", &["--data-raw", "@not-a-file"]);
}

#[test]
fn data_urlencode_all_forms() {
    let s = SideBySide::new();
    let f = s.file("u.txt", b"file & text\n");
    let at = format!("@{}", f.display());
    let name_at = format!("field@{}", f.display());
    s.same(
        "/bytes",
        &[
            "--data-urlencode",
            "a b&c",
            "--data-urlencode",
            "=x=y z",
            "--data-urlencode",
            "name=J. Doe/ü",
            "--data-urlencode",
            &at,
            "--data-urlencode",
            &name_at,
        ],
    );
}

#[test]
fn json_inline_file_stdin_and_repeated() {
    let s = SideBySide::new();
    s.same("/bytes", &["--json", r#"{"a":1}"#]);
    s.same("/bytes", &["--json", "[1,", "--json", "2]"]);
    let f = s.file("j.json", b"{\"from\":\"file\"}\n");
    s.same("/bytes", &["--json", &format!("@{}", f.display())]);
    s.same("/bytes", &["--json", "{}", "-X", "PUT"]);
    s.same(
        "/bytes",
        &[
            "--json",
            "{}",
            "-H",
            "Content-Type: application/vnd.api+json",
        ],
    );
    let p = s.both("/bytes", &["--json", "@-"], Some(b"{\"from\":\"stdin\"}"));
    p.assert_same(&s.token);
}

#[test]
fn get_puts_data_in_the_query() {
    let s = SideBySide::new();
    s.same("/bytes", &["-G", "-d", "a=1", "-d", "b=2"]);
    s.same(
        "/bytes?x=0",
        &["--get", "--data-urlencode", "q=a b", "-d", "n=1"],
    );
}

#[test]
fn url_query() {
    let s = SideBySide::new();
    s.same(
        "/bytes",
        &[
            "--url-query",
            "a=b c",
            "--url-query",
            "+raw=%41",
            "--url-query",
            "=solo",
        ],
    );
    s.same("/bytes?x=1", &["--url-query", "y=2", "-d", "body"]);
}

#[test]
fn head() {
    let s = SideBySide::new();
    same_modulo_head(&s, "/bytes", &["-I"]);
    same_modulo_head(&s, "/bytes", &["--head"]);
}

#[test]
fn upload_file() {
    let s = SideBySide::new();
    let f = s.file("up.bin", b"uploaded\x00bytes\n");
    s.same("/bytes", &["-T", &f.display().to_string()]);
    s.same("/bytes", &["--upload-file", "up.bin", "-X", "POST"]);
    // From stdin: chunked, as curl sends it.
    let p = s.both("/bytes", &["-T", "-"], Some(b"piped upload\n"));
    p.assert_same(&s.token);
}

#[test]
fn upload_file_to_a_directory_url_takes_its_name() {
    let s = SideBySide::new();
    s.file("name.txt", b"n\n");
    s.same("/dir/", &["-T", "name.txt"]);
}

#[test]
fn form_fields_and_files() {
    let s = SideBySide::new();
    s.file("f.txt", b"text file\n");
    s.file("data.bin", b"\x00\x01\x02");
    s.file("inline.txt", b"read inline\n");
    s.same(
        "/status/200",
        &[
            "-F",
            "name=value",
            "-F",
            "doc=@f.txt",
            "-F",
            "bin=@data.bin;type=application/x-thing;filename=renamed.dat",
            "--form",
            "inline=<inline.txt",
            "--form-string",
            "lit=@not-a-file",
        ],
    );
}

#[test]
fn output_to_a_file_and_dev_null() {
    let s = SideBySide::new();
    let p = s.same("/bytes", &["-o", "/dev/null"]);
    assert!(p.curl.stdout.is_empty());
    let c = s.curl("/bytes", &["-d", "abc", "-o", "c.out"], None);
    let v = s.vaultctl("/bytes", &["-d", "abc", "-o", "v.out"], None);
    assert_eq!((c.code, v.code), (0, 0));
    assert_eq!(
        std::fs::read(s.dir().join("v.out")).unwrap(),
        std::fs::read(s.dir().join("c.out")).unwrap()
    );
}

#[test]
fn include() {
    let s = SideBySide::new();
    same_modulo_head(&s, "/bytes", &["-i"]);
    same_modulo_head(&s, "/status/404", &["--include"]);
}

#[test]
fn fail() {
    let s = SideBySide::new();
    let p = s.same("/status/404", &["-f"]);
    assert_eq!(p.curl.code, 22);
    s.same("/status/200", &["--fail"]);
}

#[test]
fn fail_with_body() {
    let s = SideBySide::new();
    let p = s.same("/status/500", &["--fail-with-body"]);
    assert_eq!(p.curl.code, 22);
    assert_eq!(p.curl.stdout, b"status 500");
}

#[test]
fn silent_and_show_error() {
    let s = SideBySide::new();
    let p = s.same("/status/404", &["-s", "-f"]);
    assert_eq!(p.vaultctl.stderr, "", "-s prints no error");
    let p = s.same("/status/404", &["-sS", "-f"]);
    assert!(p.vaultctl.stderr.contains("404"), "{}", p.vaultctl.stderr);
    s.same("/bytes", &["--silent", "--show-error"]);
}

#[test]
fn location() {
    let s = SideBySide::new();
    s.same("/redirect?to=/bytes", &["-L"]);
    // A POST answered 302 becomes a GET without the body or its type.
    s.same("/redirect?to=/bytes", &["--location", "-d", "x=1"]);
}

#[test]
fn max_time() {
    let s = SideBySide::new();
    s.same("/bytes", &["--max-time", "5"]);
    s.same("/bytes", &["-m", "5"]);
}

#[test]
fn compressed() {
    let s = SideBySide::new();
    s.same("/bytes", &["--compressed"]);
    // Both print the decoded body, whatever the encoding.
    for enc in ["gzip", "deflate", "br", "zstd"] {
        let p = s.same(&format!("/compressed?enc={enc}"), &["--compressed"]);
        assert!(p.vaultctl.stdout.starts_with(b"compressed text"), "{enc}");
    }
}

#[test]
fn write_out_variables() {
    let s = SideBySide::new();
    let fmt = "%{http_code} %{response_code} %{size_download} %{size_upload} %{url_effective} %{content_type} %{exitcode} %{num_redirects} %header{content-type}\\n";
    s.same("/bytes", &["-s", "-o", "/dev/null", "-w", fmt]);
    s.same("/bytes", &["-d", "abc", "-w", fmt]);
    s.same(
        "/status/404",
        &["-s", "-f", "-w", "%{http_code} %{exitcode}\\n"],
    );
    s.same(
        "/redirect?to=/bytes",
        &["-L", "-s", "-o", "/dev/null", "-w", fmt],
    );
    let f = s.file("fmt.txt", b"code=%{http_code}\\n");
    s.same(
        "/bytes",
        &[
            "-s",
            "-o",
            "/dev/null",
            "--write-out",
            &format!("@{}", f.display()),
        ],
    );
}

#[test]
fn write_out_times_and_errors() {
    let s = SideBySide::new();
    let fmt = "%{time_starttransfer} %{time_total}";
    for run in [
        s.curl("/bytes", &["-s", "-o", "/dev/null", "-w", fmt], None),
        s.vaultctl("/bytes", &["-s", "-o", "/dev/null", "-w", fmt], None),
    ] {
        let t: Vec<f64> = String::from_utf8(run.stdout)
            .unwrap()
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(t[0] <= t[1] && t[1] > 0.0, "{t:?}");
    }
    // Not measured yet: an error naming it, never a made-up number.
    let v = s.vaultctl("/bytes", &["-w", "%{time_connect}"], None);
    assert_eq!(v.code, 1);
    assert!(v.stderr.contains("%{time_connect}"), "{}", v.stderr);
    let v = s.vaultctl("/status/404", &["-s", "-f", "-w", "%{errormsg}"], None);
    assert!(String::from_utf8_lossy(&v.stdout).contains("404"));
    let v = s.vaultctl("/bytes", &["-w", "%{local_port}"], None);
    assert_eq!(v.code, 1);
    assert!(v.stderr.contains("%{local_port}"), "{}", v.stderr);
    assert!(
        v.received.is_empty(),
        "an unsupported variable sends nothing"
    );
}

#[test]
fn write_out_json() {
    let s = SideBySide::new();
    let args = ["-s", "-o", "/dev/null", "-w", "%{json}"];
    let p = s.both("/bytes", &args, None);
    p.assert_same_code();
    let c: serde_json::Value = serde_json::from_slice(&p.curl.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&p.vaultctl.stdout).unwrap();
    for k in [
        "http_code",
        "response_code",
        "size_download",
        "size_upload",
        "url_effective",
        "content_type",
        "exitcode",
        "num_redirects",
    ] {
        assert_eq!(v[k], c[k], "{k}");
    }
}

#[test]
fn retry_on_503_then_success() {
    let s = SideBySide::new();
    let p = s.same("/flaky?n=1", &["--retry", "2", "--retry-delay", "1"]);
    assert_eq!(p.vaultctl.received.len(), 2);
}

#[test]
fn retry_honours_retry_after() {
    let s = SideBySide::new();
    let t = std::time::Instant::now();
    let p = s.vaultctl("/flaky?n=1&after=2", &["--retry", "1"], None);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert!(t.elapsed() >= std::time::Duration::from_secs(2));
    assert_eq!(p.received.len(), 2);
    // --retry-max-time shorter than Retry-After: no retry.
    let p = s.vaultctl(
        "/flaky?n=1&after=30",
        &["--retry", "1", "--retry-max-time", "5", "-f"],
        None,
    );
    assert_eq!((p.code, p.received.len()), (22, 1), "{}", p.stderr);
}

#[test]
fn retry_gives_up_after_n() {
    let s = SideBySide::new();
    let p = s.same(
        "/flaky?n=5",
        &["--retry", "1", "--retry-delay", "1", "-f", "-s"],
    );
    assert_eq!(p.vaultctl.received.len(), 2);
}

#[test]
fn retry_all_errors() {
    let s = SideBySide::new();
    let p = s.same(
        "/flaky?n=1&status=404",
        &[
            "--retry",
            "1",
            "--retry-delay",
            "1",
            "--retry-all-errors",
            "-f",
        ],
    );
    assert_eq!(p.vaultctl.received.len(), 2);
}

#[test]
fn retry_does_not_resend_stdin() {
    let s = SideBySide::new();
    let v = s.vaultctl(
        "/flaky?n=1",
        &["--retry", "2", "--data-binary", "@-", "-f"],
        Some(b"once"),
    );
    assert_eq!(v.code, 22);
    assert_eq!(v.received.len(), 1);
    assert!(v.stderr.contains("cannot be sent again"), "{}", v.stderr);
    let f = s.file("again.txt", b"again");
    let v = s.vaultctl(
        "/flaky?n=1",
        &[
            "--retry",
            "1",
            "--retry-delay",
            "1",
            "--data-binary",
            &format!("@{}", f.display()),
        ],
        None,
    );
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert_eq!(v.received.len(), 2);
    assert!(v.received.iter().all(|r| r.body == b"again"));
}

#[test]
fn retry_connrefused() {
    let s = SideBySide::new();
    // A port with nothing listening, on the credential's origin host: add a
    // second credential for it.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    s.daemon
        .add(
            "closed",
            &s.token,
            &[
                "--header",
                "Access-Token",
                "--origin",
                &format!("http://127.0.0.1:{port}"),
            ],
        )
        .ok();
    let url = format!("http://127.0.0.1:{port}/");
    let t = std::time::Instant::now();
    let out = s.daemon.ctl(&[
        "request",
        "closed",
        &url,
        "--retry",
        "2",
        "--retry-delay",
        "1",
        "--retry-connrefused",
    ]);
    assert_eq!(out.code, 6);
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(2),
        "retried twice"
    );
    let out = s.daemon.ctl(&["request", "closed", &url, "--retry", "2"]);
    assert_eq!(out.code, 6);
    assert!(!out.stderr.contains("retrying"), "{}", out.stderr);
}

/// `-v` prints, after `> `, exactly the request the upstream received:
/// the same request line and the same headers, the credential's value
/// replaced by a placeholder that names it.
#[track_caller]
fn assert_verbose_matches(s: &SideBySide, path: &str, args: &[&str]) {
    let mut all = vec!["-v"];
    all.extend_from_slice(args);
    let v = s.vaultctl(path, &all, None);
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(!v.stderr.contains(&s.token));
    let got = v.received.last().expect("a request");
    let sent: Vec<&str> = v
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert_eq!(sent[0], format!("{} {} HTTP/1.1", got.method, got.target));
    let mut shown: Vec<(String, String)> = sent[1..]
        .iter()
        .map(|l| {
            let (n, v) = l.split_once(": ").expect("a header line");
            (n.to_ascii_lowercase(), v.to_owned())
        })
        .collect();
    let mut wire: Vec<(String, String)> = got
        .headers
        .iter()
        .map(|(n, v)| {
            let v = String::from_utf8_lossy(v).replace(&s.token, "<credential cmp>");
            (n.to_ascii_lowercase(), v)
        })
        .collect();
    shown.sort();
    wire.sort();
    assert_eq!(shown, wire, "-v shows what the upstream received");
    let resp: Vec<&str> = v.stderr.lines().filter(|l| l.starts_with("< ")).collect();
    assert!(resp[0].starts_with("< HTTP/1.1 "), "{resp:?}");
}

#[test]
fn verbose_shows_the_request_as_sent_with_a_placeholder() {
    let s = SideBySide::new();
    assert_verbose_matches(&s, "/bytes", &[]);
    assert_verbose_matches(&s, "/bytes?q=1", &["-H", "X-A: b", "-d", "x=1"]);
    assert_verbose_matches(&s, "/bytes", &["--json", "{}"]);
    let big = s.file("big.bin", &vec![b'z'; 2 << 20]);
    assert_verbose_matches(
        &s,
        "/sink",
        &["--data-binary", &format!("@{}", big.display())],
    );
    assert_verbose_matches(&s, "/redirect?to=/bytes", &["-L"]);
}

#[test]
fn verbose_shows_a_signature() {
    let s = SideBySide::new();
    s.daemon
        .ctl(&[
            "add",
            "sig",
            "--sign",
            "ed25519",
            "--origin",
            &s.up.origin(),
        ])
        .ok();
    let out = s
        .daemon
        .ctl(&["request", "sig", &s.up.url("/bytes"), "-v", "-d", "x=1"])
        .ok();
    let got = s.up.requests();
    let wire = got.last().expect("a request");
    for name in ["signature-input", "signature", "content-digest"] {
        let line = format!(
            "> {name}: {}",
            wire.header(name)
                .unwrap_or_else(|| panic!("no {name} sent"))
        );
        assert!(
            out.stderr.lines().any(|l| l == line),
            "{line:?} not in {}",
            out.stderr
        );
    }
}

/// SECURITY.md property 7 for what issue 15 added: `-v` (request line,
/// headers, response head) and every `-w` value come from vaultd after
/// redaction, so an upstream that reflects the token (in a redirect's
/// target, a header, the body) shows none of it.
#[test]
fn verbose_and_write_out_never_show_the_token() {
    let s = SideBySide::new();
    let fmt = "%{url_effective} %header{x-echo-token} %header{location} %{content_type} %{json}";
    for (path, extra) in [
        ("/redirect-echo?to=/echo%3Ft%3DTOKEN", &["-L"][..]),
        ("/redirect-echo?to=/echo%3Ft%3DTOKEN", &["-i"][..]),
        ("/echo", &["-i"][..]),
    ] {
        let mut args = vec!["-v", "-w", fmt];
        args.extend_from_slice(extra);
        let v = s.vaultctl(path, &args, None);
        assert!(
            s.up.saw(&s.token),
            "the upstream must have received the token for the test to mean anything"
        );
        assert_eq!(
            harness::count(&v.stdout, s.token.as_bytes()),
            0,
            "{path}: stdout"
        );
        assert_eq!(
            harness::count(v.stderr.as_bytes(), s.token.as_bytes()),
            0,
            "{path}: stderr"
        );
        assert!(v.stderr.contains("<credential cmp>"), "{}", v.stderr);
    }
    // A compressed echo (sent whatever vaultd asked for) is refused whole:
    // nothing of it, and no figure of it, reaches the client.
    let v = s.vaultctl(
        "/echo-compressed?enc=gzip",
        &["-v", "-w", fmt, "--compressed"],
        None,
    );
    assert_eq!(v.code, 6, "{}", v.stderr);
    assert_eq!(harness::count(&v.stdout, s.token.as_bytes()), 0);
    assert_eq!(harness::count(v.stderr.as_bytes(), s.token.as_bytes()), 0);
}

#[test]
fn user_agent_and_referer() {
    let s = SideBySide::new();
    let p = s.same(
        "/bytes",
        &["-A", "script/1.0", "-e", "https://example.org/from"],
    );
    assert_eq!(
        p.vaultctl.received[0].header("user-agent").as_deref(),
        Some("script/1.0")
    );
    s.same(
        "/bytes",
        &["--user-agent", "x", "--referer", "y", "-H", "Referer: z"],
    );
}

#[test]
fn dump_header() {
    let s = SideBySide::new();
    let c = s.curl("/bytes", &["-d", "x", "-D", "c.head"], None);
    let v = s.vaultctl("/bytes", &["-d", "x", "-D", "v.head"], None);
    assert_eq!((v.code, v.stdout.as_slice()), (c.code, c.stdout.as_slice()));
    let read = |f: &str| std::fs::read(s.dir().join(f)).unwrap();
    assert_eq!(
        without_varying_head_lines(&read("v.head")),
        without_varying_head_lines(&read("c.head"))
    );
    same_modulo_head(&s, "/bytes", &["--dump-header", "-", "-d", "y"]);
}

#[test]
fn remote_name() {
    let s = SideBySide::new();
    let c = s.curl("/bytes?x=1", &["-d", "body", "-O"], None);
    let curl_file = std::fs::read(s.dir().join("bytes")).unwrap();
    std::fs::remove_file(s.dir().join("bytes")).unwrap();
    let v = s.vaultctl("/bytes?x=1", &["-d", "body", "--remote-name"], None);
    assert_eq!((v.code, c.code), (0, 0), "{}", v.stderr);
    assert_eq!(std::fs::read(s.dir().join("bytes")).unwrap(), curl_file);
    assert!(v.stdout.is_empty());
}

/// Each retry is a job of its own: checked by the policy again and
/// audited on its own line.
#[test]
fn each_retry_is_a_job_with_its_own_audit_line() {
    let up = harness::Upstream::plain();
    let d = harness::Daemon::start("audit = true\n");
    d.init();
    let token = harness::canary("retryaudit");
    d.add(
        "r",
        &token,
        &["--header", "Access-Token", "--origin", &up.origin()],
    )
    .ok();
    d.ctl(&[
        "request",
        "r",
        &up.url("/flaky?n=2"),
        "--retry",
        "2",
        "--retry-delay",
        "1",
    ])
    .ok();
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("audit: job")).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.contains("status=503")).count(), 2);
    assert_eq!(lines.iter().filter(|l| l.contains("status=200")).count(), 1);
}

/// A timeout is transient: retried, as curl does.
#[test]
fn retry_on_timeout() {
    let s = SideBySide::new();
    let v = s.vaultctl(
        "/slow?ms=3000",
        &["--max-time", "1", "--retry", "1", "--retry-delay", "1"],
        None,
    );
    assert_eq!(v.code, 6, "{}", v.stderr);
    assert!(v.stderr.contains("retrying"), "{}", v.stderr);
    // Both tries reached the upstream.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(s.up.requests().len(), 2);
}

#[test]
fn no_buffer_and_progress_bar() {
    let s = SideBySide::new();
    s.same("/bytes", &["-N", "-d", "streamed"]);
    s.same("/bytes", &["--no-buffer", "-#", "-d", "x"]);
    s.same("/bytes", &["--progress-bar", "-d", "x"]);
}

#[test]
fn create_dirs() {
    let s = SideBySide::new();
    let c = s.curl(
        "/bytes",
        &["-d", "abc", "--create-dirs", "-o", "c/d/out"],
        None,
    );
    let v = s.vaultctl(
        "/bytes",
        &["-d", "abc", "--create-dirs", "-o", "v/d/out"],
        None,
    );
    assert_eq!((v.code, c.code), (0, 0), "{}", v.stderr);
    assert_eq!(
        std::fs::read(s.dir().join("v/d/out")).unwrap(),
        std::fs::read(s.dir().join("c/d/out")).unwrap()
    );
}

#[test]
fn url_flag() {
    let s = SideBySide::new();
    let url = s.up.url("/bytes?via=flag");
    let c = s.curl("/bytes", &["--url", &url, "-d", "x"], None);
    // curl gets two URLs (the harness's and --url): compare with the last.
    let mut c_last = c.received.last().cloned().into_iter().collect::<Vec<_>>();
    s.up.clear();
    let v = s.daemon.ctl(&["request", "cmp", "--url", &url, "-d", "x"]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let got = s.up.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(
        harness::curl::seen(&got[0]),
        harness::curl::seen(&c_last.remove(0))
    );
    let both = s.daemon.ctl(&["request", "cmp", &url, "--url", &url]);
    assert_eq!(both.code, 1, "one URL, given once");
}

/// A file over vaultctl's inline limit streams, and still goes with a
/// Content-Length, as curl sends it (many servers refuse chunked uploads).
#[test]
fn large_file_upload_has_a_content_length() {
    let s = SideBySide::new();
    let f = s.file("large.bin", &vec![b'L'; 3 << 20]);
    let p = s.both(
        "/status/200",
        &["--data-binary", &format!("@{}", f.display())],
        None,
    );
    p.assert_same(&s.token);
    assert_eq!(
        p.vaultctl.received[0].header("content-length").as_deref(),
        Some("3145728")
    );
    let p = s.both("/status/200", &["-T", "large.bin"], None);
    p.assert_same(&s.token);
}

/// A client that announces a length and sends more (or less) fails its
/// job before the difference reaches the upstream: a byte past the
/// Content-Length would be read as the start of another request on the
/// connection.
#[test]
fn a_streamed_body_must_match_its_announced_length() {
    let s = SideBySide::new();
    let smuggled = b"0123456789GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    for (body, declared) in [(smuggled, 10u64), (b"short".to_vec(), 10)] {
        s.up.clear();
        let mut c = vaultctl::Client::connect(&s.daemon.socket).expect("connect");
        let job = proto::JobRequest {
            credential: "cmp".into(),
            method: "POST".into(),
            url: s.up.url("/bytes"),
            headers: vec![],
            body: None,
            follow_redirects: false,
            timeout_ms: Some(5000),
        };
        let r = c.stream_job_sized(
            job,
            Some(Box::new(std::io::Cursor::new(body))),
            Some(declared),
        );
        let failed = match r {
            Err(_) => true,
            Ok(mut st) => loop {
                match st.next_chunk() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break false,
                    Err(_) => break true,
                }
            },
        };
        assert!(failed, "a body of the wrong length completed");
        std::thread::sleep(std::time::Duration::from_millis(300));
        for r in s.up.requests() {
            assert_ne!(
                r.target, "/smuggled",
                "a smuggled request reached the upstream"
            );
            assert!(r.body.len() as u64 <= declared);
        }
    }
}
