//! The foundation end to end: real vaultd, real vaultctl, real upstreams.

use std::net::TcpListener;

use harness::{Daemon, PASSPHRASE, Upstream, canary, count};

/// A daemon with an initialized, unlocked vault; `extra` goes into config.toml.
fn ready(extra: &str) -> Daemon {
    let d = Daemon::start(extra);
    d.init();
    d
}

fn tls_daemon(up: &Upstream) -> Daemon {
    let ca = up.ca_pem.as_ref().expect("TLS upstream");
    let d = Daemon::start_with(
        "extra_ca = [\"{dir}/ca.pem\"]\n",
        &[("ca.pem", ca.as_bytes())],
    );
    d.init();
    d
}

#[test]
fn microreact_flow_posts_json_with_access_token() {
    let up = Upstream::plain();
    let d = ready("");
    let token = canary("mr");
    d.add(
        "microreact",
        &token,
        &["--preset", "microreact", "--origin", &up.origin()],
    )
    .ok();
    let project = d.path("project.json");
    std::fs::write(&project, br#"{"meta":{"name":"demo"}}"#).unwrap();
    let out = d
        .ctl(&[
            "request",
            "microreact",
            &up.url("/api/projects/create"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!("@{}", project.display()),
        ])
        .ok();
    assert!(out.text().contains("\"id\":\"p123\""), "{}", out.text());
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(
        reqs[0].header("access-token").as_deref(),
        Some(token.as_str())
    );
    assert_eq!(
        reqs[0].header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(reqs[0].body, br#"{"meta":{"name":"demo"}}"#);
    // Nothing of the token in the daemon's (trace-level) log or the vault file.
    assert_eq!(count(d.log().as_bytes(), token.as_bytes()), 0);
    assert_eq!(
        count(&std::fs::read(&d.vault).unwrap(), token.as_bytes()),
        0
    );
}

#[test]
fn access_protocol_flow_over_tls_with_bearer() {
    let up = Upstream::tls();
    let d = tls_daemon(&up);
    let token = canary("eyJhbGciOi");
    d.add(
        "ap",
        &token,
        &["--preset", "access-protocol", "--origin", &up.origin()],
    )
    .ok();
    let out = d.ctl(&["request", "ap", &up.url("/user"), "-f"]).ok();
    assert_eq!(out.text(), r#"{"id":"u1","name":"Ada"}"#);
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {token}"))
    );
    assert_eq!(count(d.log().as_bytes(), token.as_bytes()), 0);
}

#[test]
fn untrusted_certificate_is_exit_6_and_says_so() {
    let up = Upstream::tls();
    let d = ready(""); // no extra_ca
    d.add("ap", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let out = d.ctl(&["request", "ap", &up.url("/user")]).code(6);
    assert!(out.stderr.starts_with("vaultctl: "), "{}", out.stderr);
    assert!(out.stderr.contains("TLS"), "{}", out.stderr);
    assert!(out.stderr.contains("not trusted"), "{}", out.stderr);
    assert!(up.requests().is_empty());
}

#[test]
fn daemon_not_running_is_exit_2_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nope.sock");
    let out = harness::daemon::run(
        std::process::Command::new(harness::bin("vaultctl"))
            .arg("--socket")
            .arg(&sock)
            .arg("status"),
        None,
    )
    .code(2);
    assert!(
        out.stderr.contains(&sock.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("vaultd"), "{}", out.stderr);
    assert_eq!(
        out.stderr.trim_end().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );
}

#[test]
fn locked_unknown_and_http_error_exit_codes() {
    let up = Upstream::plain();
    let d = ready("");
    d.add(
        "c",
        &canary("t"),
        &["--header", "X-Api-Key", "--origin", &up.origin()],
    )
    .ok();
    d.ctl(&["request", "nosuch", &up.url("/echo")]).code(4);
    let out = d
        .ctl(&["request", "c", &up.url("/status/404"), "-f"])
        .code(22);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("404"));
    // Without -f an HTTP error is just a response.
    let out = d.ctl(&["request", "c", &up.url("/status/404")]).ok();
    assert_eq!(out.text(), "status 404");
    d.ctl(&["lock"]).ok();
    let n = up.requests().len();
    let out = d.ctl(&["request", "c", &up.url("/echo")]).code(3);
    assert!(out.stderr.contains("vaultctl unlock"), "{}", out.stderr);
    assert_eq!(up.requests().len(), n, "nothing sent while locked");
    d.ctl(&["list"]).code(3);
}

#[test]
fn unreachable_upstream_and_timeout_are_exit_6() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let up = Upstream::plain();
    let d = ready("");
    let dead = format!("http://127.0.0.1:{port}");
    d.add("dead", &canary("t"), &["--bearer", "--origin", &dead])
        .ok();
    let out = d.ctl(&["request", "dead", &format!("{dead}/x")]).code(6);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
    d.add(
        "slow",
        &canary("t"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();
    let out = d
        .ctl(&[
            "request",
            "slow",
            &up.url("/slow?ms=3000"),
            "--max-time",
            "0.3",
        ])
        .code(6);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}

#[test]
fn policy_refusals_send_nothing() {
    let up = Upstream::plain();
    let other = Upstream::plain();
    let d = ready("");
    let token = canary("tok");
    d.add(
        "m",
        &token,
        &["--header", "Access-Token", "--origin", &up.origin()],
    )
    .ok();
    let cases: Vec<Vec<String>> = vec![
        vec![other.url("/echo")],
        vec![format!(
            "http://127.0.0.1:{}@{}/echo",
            up.addr.port(),
            other.addr
        )],
        vec![format!("http://user:pw@127.0.0.1:{}/echo", up.addr.port())],
        vec![up.url("/echo"), "-H".into(), "Access-Token: mine".into()],
        vec![up.url("/echo"), "-H".into(), "access-token: mine".into()],
        vec![up.url("/echo"), "-H".into(), "Host: evil.example".into()],
        vec![
            up.url("/echo"),
            "-H".into(),
            "X-A: b\r\nAccess-Token: x".into(),
        ],
        vec![format!("ftp://127.0.0.1:{}/", up.addr.port())],
    ];
    for args in cases {
        let mut all = vec!["request", "m"];
        all.extend(args.iter().map(String::as_str));
        let out = d.ctl(&all);
        assert_eq!(out.code, 5, "{args:?} should be refused: {}", out.stderr);
        assert!(out.stderr.starts_with("vaultctl: "), "{}", out.stderr);
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    }
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    assert!(other.requests().is_empty());
    // The refusal names the allowed origin.
    let out = d.ctl(&["request", "m", &other.url("/")]).code(5);
    assert!(out.stderr.contains(&up.origin()), "{}", out.stderr);
}

#[test]
fn insecure_http_needs_the_flag() {
    let d = ready("");
    let out = d
        .add(
            "x",
            &canary("t"),
            &["--bearer", "--origin", "http://api.example.org"],
        )
        .code(1);
    assert!(out.stderr.contains("allow-insecure-http"), "{}", out.stderr);
    d.add(
        "x",
        &canary("t"),
        &[
            "--bearer",
            "--origin",
            "http://api.example.org",
            "--allow-insecure-http",
        ],
    )
    .ok();
    // --header/--bearer need an origin.
    d.add("y", &canary("t"), &["--bearer"]).code(1);
}

#[test]
fn cross_origin_redirect_never_reaches_the_other_host() {
    let up = Upstream::plain();
    let other = Upstream::plain();
    let d = ready("");
    let token = canary("redir");
    d.add(
        "m",
        &token,
        &["--preset", "microreact", "--origin", &up.origin()],
    )
    .ok();
    let target = format!("/redirect?to={}", other.url("/echo"));
    // Without -L: the 302 itself comes back.
    let out = d.ctl(&["request", "m", &up.url(&target), "-i"]).ok();
    assert!(out.text().starts_with("HTTP/1.1 302"), "{}", out.text());
    // With -L: refused, exit 5.
    for code in ["301", "302", "303", "307", "308"] {
        let out = d
            .ctl(&[
                "request",
                "m",
                &up.url(&format!("{target}&code={code}")),
                "-L",
            ])
            .code(5);
        assert!(out.stderr.contains("redirect"), "{}", out.stderr);
    }
    assert!(
        other.requests().is_empty(),
        "the other host got {:?}",
        other.requests()
    );
    assert!(!other.saw(&token));
    // A same-origin redirect is followed, with the credential.
    let out = d
        .ctl(&["request", "m", &up.url("/redirect?to=/echo"), "-L"])
        .ok();
    assert!(
        out.text().contains("access-token: [redacted]"),
        "{}",
        out.text()
    );
    let last = up.requests().pop().unwrap();
    assert_eq!(last.target, "/echo");
    assert_eq!(last.header("access-token").as_deref(), Some(token.as_str()));
}

#[test]
fn echoed_token_is_redacted_in_body_and_headers() {
    let up = Upstream::plain();
    let d = ready("");
    let token = canary("echo/+=?&");
    d.add(
        "m",
        &token,
        &["--preset", "microreact", "--origin", &up.origin()],
    )
    .ok();
    let out = d.ctl(&["request", "m", &up.url("/echo"), "-i"]).ok();
    assert_eq!(count(&out.stdout, token.as_bytes()), 0, "{}", out.text());
    assert!(
        out.text().contains("x-echo-token: [redacted]"),
        "{}",
        out.text()
    );
    let out = d.ctl(&["request", "m", &up.url("/echo-encoded")]).ok();
    let text = out.text();
    assert_eq!(text.matches("[redacted]").count(), 4, "{text}");
    let json = d
        .ctl(&["request", "m", &up.url("/echo"), "--print=json"])
        .ok();
    assert_eq!(count(&json.stdout, token.as_bytes()), 0);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["headers"]["x-echo-token"], "[redacted]");
}

#[test]
fn binary_bodies_are_byte_exact_both_ways() {
    let up = Upstream::plain();
    let d = ready("");
    d.add("b", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let file = d.path("blob.bin");
    std::fs::write(&file, &data).unwrap();
    let out = d
        .ctl(&[
            "request",
            "b",
            &up.url("/bytes"),
            "--data-binary",
            &format!("@{}", file.display()),
        ])
        .ok();
    assert!(out.stdout == data, "stdout differs");
    assert!(up.requests()[0].body == data, "upstream body differs");
    // Stdin body and -o.
    let dest = d.path("out.bin");
    d.ctl_in(
        &[
            "request",
            "b",
            &up.url("/bytes"),
            "--data-binary",
            "@-",
            "-o",
            dest.to_str().unwrap(),
        ],
        Some(&data),
    )
    .ok();
    assert!(std::fs::read(&dest).unwrap() == data);
}

#[test]
fn lock_unlock_wrong_passphrase_and_passwd() {
    let up = Upstream::plain();
    let d = ready("");
    d.add("m", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let st = d.ctl(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["state"], "unlocked");
    assert_eq!(v["credentials"], 1);
    d.ctl(&["lock"]).ok();
    let v: serde_json::Value =
        serde_json::from_slice(&d.ctl(&["status", "--json"]).ok().stdout).unwrap();
    assert_eq!(v["state"], "locked");
    let out = d
        .ctl_in(
            &["unlock", "--passphrase-stdin"],
            Some(b"wrong passphrase\n"),
        )
        .code(1);
    assert!(out.stderr.contains("wrong passphrase"), "{}", out.stderr);
    d.unlock().ok();
    d.ctl(&["request", "m", &up.url("/user")]).ok();
    // passwd: old line then new line.
    d.ctl_in(
        &["passwd", "--passphrase-stdin"],
        Some(format!("{PASSPHRASE}\nnew secret words\n").as_bytes()),
    )
    .ok();
    d.ctl(&["lock"]).ok();
    d.unlock().code(1);
    d.ctl_in(
        &["unlock", "--passphrase-stdin"],
        Some(b"new secret words\n"),
    )
    .ok();
    d.ctl(&["request", "m", &up.url("/user")]).ok();
    // init refuses over an existing vault.
    let out = d
        .ctl_in(&["init", "--passphrase-stdin"], Some(b"another\n"))
        .code(1);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
}

#[test]
fn tampered_vault_is_refused_and_never_overwritten() {
    let mut d = ready("");
    d.add(
        "m",
        &canary("t"),
        &["--bearer", "--origin", "https://example.org"],
    )
    .ok();
    d.kill();
    let mut bytes = std::fs::read(&d.vault).unwrap();
    let mid = bytes.len() - 20;
    bytes[mid] ^= 0x01;
    std::fs::write(&d.vault, &bytes).unwrap();
    d.spawn();
    let out = d.unlock().code(1);
    assert!(out.stderr.contains("modified or damaged"), "{}", out.stderr);
    d.ctl_in(&["init", "--passphrase-stdin"], Some(b"x\n"))
        .code(1);
    assert!(
        std::fs::read(&d.vault).unwrap() == bytes,
        "tampered file was rewritten"
    );
    // Truncated.
    std::fs::write(&d.vault, &bytes[..bytes.len() / 2]).unwrap();
    let out = d.unlock().code(1);
    assert!(out.stderr.contains("vault"), "{}", out.stderr);
    assert_eq!(std::fs::read(&d.vault).unwrap().len(), bytes.len() / 2);
}

#[test]
fn rotate_remove_list_never_show_values() {
    let up = Upstream::plain();
    let d = ready("");
    let t1 = canary("one");
    let t2 = canary("two");
    d.add(
        "m",
        &t1,
        &[
            "--preset",
            "microreact",
            "--origin",
            &up.origin(),
            "--method",
            "get",
        ],
    )
    .ok();
    d.add("m", &t1, &["--bearer", "--origin", &up.origin()])
        .code(1);
    d.ctl(&["request", "m", &up.url("/echo")]).ok();
    d.ctl(&["request", "m", &up.url("/echo"), "-X", "DELETE"])
        .code(5);
    d.ctl_in(&["rotate", "m"], Some(format!("{t2}\n").as_bytes()))
        .ok();
    d.ctl(&["request", "m", &up.url("/echo")]).ok();
    let seen: Vec<_> = up
        .requests()
        .iter()
        .map(|r| r.header("access-token").unwrap())
        .collect();
    assert_eq!(seen, vec![t1.clone(), t2.clone()]);
    let list = d.ctl(&["list"]).ok();
    assert!(
        list.text().contains("header Access-Token"),
        "{}",
        list.text()
    );
    let json = d.ctl(&["list", "--json"]).ok();
    for out in [&list, &json] {
        assert_eq!(count(&out.stdout, t1.as_bytes()), 0);
        assert_eq!(count(&out.stdout, t2.as_bytes()), 0);
    }
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["name"], "m");
    assert_eq!(v[0]["use_count"], 2);
    assert_eq!(v[0]["origins"][0], up.origin());
    assert_eq!(v[0]["methods"][0], "GET");
    d.ctl(&["remove", "m"]).ok();
    d.ctl(&["request", "m", &up.url("/echo")]).code(4);
    d.ctl(&["remove", "m"]).code(4);
    for t in [&t1, &t2] {
        assert_eq!(count(&std::fs::read(&d.vault).unwrap(), t.as_bytes()), 0);
        assert_eq!(count(d.log().as_bytes(), t.as_bytes()), 0);
    }
}

#[test]
fn token_from_env_and_never_in_argv() {
    let up = Upstream::plain();
    let d = ready("");
    let token = canary("env");
    let out = harness::daemon::run(
        d.cmd()
            .args([
                "add",
                "e",
                "--bearer",
                "--origin",
                &up.origin(),
                "--from-env",
                "MY_TOKEN",
            ])
            .env("MY_TOKEN", &token),
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    d.ctl(&["request", "e", &up.url("/user")]).ok();
    assert_eq!(
        up.requests()[0].header("authorization"),
        Some(format!("Bearer {token}"))
    );
    d.ctl(&[
        "add",
        "f",
        "--bearer",
        "--origin",
        &up.origin(),
        "--from-env",
        "UNSET_VAR_X",
    ])
    .code(1);
}

#[test]
fn second_daemon_on_the_same_socket_refuses() {
    let d = ready("");
    let out = std::process::Command::new(harness::bin("vaultd"))
        .arg("--socket")
        .arg(&d.socket)
        .arg("--vault")
        .arg(d.path("other-vault"))
        .arg("--config")
        .arg(&d.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already serving"), "{err}");
    d.ctl(&["status"]).ok();
}

#[test]
fn unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "lock_afer_idle = \"1h\"\n").unwrap();
    let out = std::process::Command::new(harness::bin("vaultd"))
        .arg("--socket")
        .arg(dir.path().join("s"))
        .arg("--vault")
        .arg(dir.path().join("v"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lock_afer_idle"), "{err}");
}

#[test]
fn socket_and_vault_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let d = ready("");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket), 0o600);
    assert_eq!(mode(d.socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&d.vault), 0o600);
    assert!(!d.vault.with_extension("tmp").exists());
}

#[test]
fn many_clients_at_once() {
    let up = Upstream::plain();
    let d = ready("");
    d.add("m", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let d = &d;
                let url = up.url(&format!("/echo?i={i}"));
                s.spawn(move || d.ctl(&["request", "m", &url]).code)
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 0);
        }
    });
    assert_eq!(up.requests().len(), 16);
}

#[test]
fn usage_errors_are_one_line_exit_1() {
    let d = ready("");
    for args in [
        vec!["add", "x"],
        vec!["request"],
        vec!["frobnicate"],
        vec!["request", "m", "http://127.0.0.1/", "-H", "no colon here"],
    ] {
        let out = d.ctl(&args).code(1);
        assert!(
            out.stderr.starts_with("vaultctl: "),
            "{args:?}: {}",
            out.stderr
        );
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
    }
    let help = d.ctl(&["--help"]).ok();
    assert!(help.text().contains("Examples:"));
}
