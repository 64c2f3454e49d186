//! `vaultctl import`: each format end to end (imported, then used against a
//! local upstream, which proves the value, header and origin), dry runs
//! that print no value, all or nothing, `--replace`, 10,000 entries in one
//! save, and a locked vault.

use harness::{Daemon, Upstream, canary, leaks};

fn ready(extra: &str) -> Daemon {
    let d = Daemon::start(extra);
    d.init();
    d
}

/// No canary in what vaultctl printed on stdout (stderr is checked by the
/// harness on every run).
#[track_caller]
fn assert_stdout_clean(out: &harness::Out) {
    let hits = leaks(&out.stdout);
    assert!(hits.is_empty(), "secret on stdout:\n{}", hits.join("\n"));
}

fn names(d: &Daemon) -> Vec<String> {
    let out = d.ctl(&["list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

fn saves(d: &Daemon) -> usize {
    d.log().matches("vault saved (").count()
}

#[test]
fn dotenv_end_to_end() {
    let up = Upstream::plain();
    let d = ready("");
    let (mr, ap, other) = (canary("mr"), canary("ap"), canary("other"));
    let env = d.path("app.env");
    std::fs::write(
        &env,
        format!(
            "# app settings\n\nexport MICROREACT_TOKEN={mr}\nAP_TOKEN=\"{ap}\" # bearer\nUNUSED='{other}'\nDEBUG=1\n"
        ),
    )
    .unwrap();
    let out = d
        .ctl(&[
            "import",
            env.to_str().unwrap(),
            "--map",
            "MICROREACT_TOKEN=microreact:microreact",
            "--map",
            "AP_TOKEN=ap",
            "--bearer",
            "--origin",
            &up.origin(),
        ])
        .ok();
    assert_stdout_clean(&out);
    let text = out.text();
    let shown = env.display();
    assert!(
        text.contains(&format!(
            "{shown}:3: MICROREACT_TOKEN -> credential microreact"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{shown}:4: AP_TOKEN -> credential ap")),
        "{text}"
    );
    assert!(
        text.contains("UNUSED (line 5)") && text.contains("DEBUG (line 6)"),
        "{text}"
    );
    assert!(text.contains(&format!("shred -u {shown}")), "{text}");
    // The file is never edited.
    assert!(std::fs::read_to_string(&env).unwrap().contains(&mr));
    assert_eq!(names(&d), ["ap", "microreact"]);

    d.ctl(&["request", "microreact", &up.url("/echo")]).ok();
    d.ctl(&["request", "ap", &up.url("/echo")]).ok();
    let reqs = up.requests();
    assert_eq!(reqs[0].header("access-token").as_deref(), Some(mr.as_str()));
    assert_eq!(
        reqs[1].header("authorization"),
        Some(format!("Bearer {ap}"))
    );
    // Bound to the upstream's origin only.
    d.ctl(&["request", "ap", "https://example.invalid/"])
        .code(5);
    d.assert_log_clean();
}

#[test]
fn netrc_end_to_end_binds_https_host() {
    let up = Upstream::tls();
    let ca = up.ca_pem.clone().unwrap();
    let d = Daemon::start_with(
        "extra_ca = [\"{dir}/ca.pem\"]\n",
        &[("ca.pem", ca.as_bytes())],
    );
    d.init();
    let token = canary("netrc");
    let host = format!("localhost:{}", up.addr.port());
    let netrc = d.path(".netrc");
    std::fs::write(
        &netrc,
        format!(
            "machine {host}\n  login me\n  password {token}\nmachine nopass.example login x\nmacdef init\ncd /\n\ndefault login anonymous password guest\n"
        ),
    )
    .unwrap();
    let out = d
        .ctl(&[
            "import",
            netrc.to_str().unwrap(),
            "--header",
            "X-Api-Key",
            "--map",
            &format!("{host}=api"),
        ])
        .ok();
    assert_stdout_clean(&out);
    let text = out.text();
    assert!(
        text.contains(&format!(
            "{}:3: machine {host} password -> credential api",
            netrc.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("nopass.example") && text.contains("default"),
        "{text}"
    );
    let list = d.ctl(&["list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["origins"][0], format!("https://{host}"));
    d.ctl(&["request", "api", &up.url("/echo")]).ok();
    assert_eq!(
        up.requests()[0].header("x-api-key").as_deref(),
        Some(token.as_str())
    );
    // No bearer/header choice: refused before anything is sent.
    let out = d
        .ctl(&["import", netrc.to_str().unwrap(), "--replace"])
        .code(1);
    assert!(
        out.stderr.contains("--bearer or --header"),
        "{}",
        out.stderr
    );
}

#[test]
fn manifest_toml_and_json_end_to_end() {
    let up = Upstream::plain();
    let d = ready("");
    let (a, b, c) = (canary("toml"), canary("json"), canary("env"));
    let toml = d.path("tokens.toml");
    std::fs::write(
        &toml,
        format!(
            "[[credential]]\nname = \"t\"\nheader = \"X-Key\"\norigins = [\"{o}\"]\nmethods = [\"get\"]\npath_prefixes = [\"/echo\"]\nvalue = \"{a}\"\n",
            o = up.origin()
        ),
    )
    .unwrap();
    let out = d.ctl(&["import", toml.to_str().unwrap()]).ok();
    assert_stdout_clean(&out);
    assert!(
        out.text().contains(&format!(
            "{}:7: value of entry 1 (t) -> credential t",
            toml.display()
        )),
        "{}",
        out.text()
    );
    // JSON from stdin, one value from the environment.
    let json = format!(
        r#"{{"credential": [
            {{"name": "j", "bearer": true, "origins": ["{o}"], "value": "{b}"}},
            {{"name": "e", "preset": "microreact", "origins": ["{o}"], "value_env": "IMPORT_TEST_TOKEN"}}
        ]}}"#,
        o = up.origin()
    );
    let mut cmd = d.cmd();
    cmd.args(["import", "-", "--format", "manifest"])
        .env("IMPORT_TEST_TOKEN", &c);
    let out = harness::daemon::run(&mut cmd, Some(json.as_bytes())).code(0);
    assert_stdout_clean(&out);
    assert_eq!(names(&d), ["e", "j", "t"]);
    // JSON has no positions: the entry is named; value_env is in no file.
    assert!(
        out.text()
            .contains("stdin: value of entry 1 (j) -> credential j"),
        "{}",
        out.text()
    );
    assert!(!out.text().contains("credential e"), "{}", out.text());

    d.ctl(&["request", "t", &up.url("/echo")]).ok();
    d.ctl(&["request", "j", &up.url("/echo")]).ok();
    d.ctl(&["request", "e", &up.url("/echo")]).ok();
    let reqs = up.requests();
    assert_eq!(reqs[0].header("x-key").as_deref(), Some(a.as_str()));
    assert_eq!(reqs[1].header("authorization"), Some(format!("Bearer {b}")));
    assert_eq!(reqs[2].header("access-token").as_deref(), Some(c.as_str()));
    // The manifest's narrowing holds.
    d.ctl(&["request", "t", &up.url("/echo"), "-X", "POST"])
        .code(5);
    d.ctl(&["request", "t", &up.url("/user")]).code(5);
}

#[test]
fn dry_run_prints_names_and_origins_never_values() {
    let up = Upstream::plain();
    let d = ready("");
    let token = canary("dry");
    let env = d.path(".env");
    std::fs::write(&env, format!("K={token}\n")).unwrap();
    let out = d
        .ctl(&[
            "import",
            env.to_str().unwrap(),
            "--map",
            "K=k:microreact",
            "--origin",
            &up.origin(),
            "--dry-run",
        ])
        .ok();
    assert_stdout_clean(&out);
    let text = out.text();
    assert!(
        text.contains(&format!(
            "would add k: header Access-Token, origins {}",
            up.origin()
        )),
        "{text}"
    );
    assert!(names(&d).is_empty());
    d.assert_log_clean();
}

#[test]
fn one_bad_line_adds_nothing_and_names_the_line() {
    let up = Upstream::plain();
    let d = ready("");
    let (good, bad) = (canary("good"), canary("bad"));
    let env = d.path(".env");
    // A token with a trailing blank (quoted, so kept) is refused by vaultd.
    std::fs::write(&env, format!("GOOD={good}\n\nBAD=\"{bad} \"\n")).unwrap();
    let args = |extra: &'static str| {
        vec![
            "import".to_owned(),
            env.display().to_string(),
            "--map".into(),
            "GOOD=good".into(),
            "--map".into(),
            extra.into(),
            "--bearer".into(),
            "--origin".into(),
            up.origin(),
        ]
    };
    let a = args("BAD=bad");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = d.ctl(&a).code(1);
    assert!(out.stderr.contains("line 3 (BAD)"), "{}", out.stderr);
    assert!(
        out.stderr.contains("nothing was imported"),
        "{}",
        out.stderr
    );
    assert!(names(&d).is_empty());
    // A bad name is refused the same way.
    let a = args("BAD=-bad");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = d.ctl(&a).code(1);
    assert!(out.stderr.contains("line 3 (BAD)"), "{}", out.stderr);
    assert!(names(&d).is_empty());
    // A syntax error is found before anything is sent.
    std::fs::write(&env, format!("GOOD={good}\nBAD='{bad}\n")).unwrap();
    let a = args("BAD=bad");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let out = d.ctl(&a).code(1);
    assert!(
        out.stderr.contains("line 2: unterminated single quote"),
        "{}",
        out.stderr
    );
    assert!(names(&d).is_empty());
    d.assert_log_clean();
}

#[test]
fn existing_name_refused_unless_replace() {
    let up = Upstream::plain();
    let d = ready("");
    let (old, new, other) = (canary("old"), canary("new"), canary("other"));
    d.add("svc", &old, &["--bearer", "--origin", &up.origin()])
        .ok();
    let env = d.path(".env");
    std::fs::write(&env, format!("A={other}\nSVC={new}\n")).unwrap();
    let args = [
        "import",
        env.to_str().unwrap(),
        "--map",
        "A=a",
        "--map",
        "SVC=svc",
        "--bearer",
        "--origin",
        &up.origin(),
    ];
    let out = d.ctl(&args).code(1);
    assert!(
        out.stderr.contains("line 2 (SVC)") && out.stderr.contains("--replace"),
        "{}",
        out.stderr
    );
    assert_eq!(names(&d), ["svc"]);
    let mut with = args.to_vec();
    with.push("--replace");
    d.ctl(&with).ok();
    assert_eq!(names(&d), ["a", "svc"]);
    d.ctl(&["request", "svc", &up.url("/echo")]).ok();
    assert_eq!(
        up.requests()[0].header("authorization"),
        Some(format!("Bearer {new}"))
    );
}

#[test]
fn ten_thousand_entries_in_one_save() {
    let up = Upstream::plain();
    let d = ready("");
    let mut env = String::new();
    let mut args = vec![
        "import".to_owned(),
        d.path("big.env").display().to_string(),
        "--bearer".into(),
        "--origin".into(),
        up.origin(),
    ];
    let first = canary("first");
    for i in 0..10_000 {
        let value = if i == 0 {
            first.clone()
        } else {
            format!("tok-{i:05}-0123456789abcdef0123456789abcdef")
        };
        env.push_str(&format!("KEY_{i}={value}\n"));
        args.push("--map".into());
        args.push(format!("KEY_{i}=cred-{i}"));
    }
    std::fs::write(d.path("big.env"), env).unwrap();
    let before = saves(&d);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = d.ctl(&a).ok();
    assert!(
        out.text().contains("imported 10000 credential(s)"),
        "{}",
        out.text()
    );
    assert_eq!(
        saves(&d) - before,
        1,
        "one durable save for the whole import"
    );
    let status = d.ctl(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["credentials"], 10_000);
    d.ctl(&["request", "cred-0", &up.url("/echo")]).ok();
    assert_eq!(
        up.requests()[0].header("authorization"),
        Some(format!("Bearer {first}"))
    );
}

#[test]
fn locked_vault_is_exit_3() {
    let up = Upstream::plain();
    let d = ready("");
    let token = canary("locked");
    let env = d.path(".env");
    std::fs::write(&env, format!("K={token}\n")).unwrap();
    d.ctl(&["lock"]).ok();
    let args = [
        "import",
        env.to_str().unwrap(),
        "--map",
        "K=k",
        "--bearer",
        "--origin",
        &up.origin(),
    ];
    d.ctl(&args).code(3);
    d.unlock().ok();
    assert!(names(&d).is_empty());
}

/// `add --from-openbao` needs the passphrase (`AddSourced`); an import is
/// no way around that, whatever a client puts in it.
#[test]
fn import_cannot_bind_an_openbao_source() {
    let d = ready("");
    let mut c = vaultctl::Client::connect(&d.socket).unwrap();
    let req = proto::Request::Import {
        entries: vec![proto::ImportEntry {
            name: "team".into(),
            spec: proto::CredentialSpec {
                injection: Some(proto::Injection::Bearer),
                origins: vec!["https://attacker.example".into()],
                source: Some(proto::Source::OpenBao {
                    path: "team/microreact".into(),
                    field: "token".into(),
                }),
                ..proto::CredentialSpec::default()
            },
            value: proto::Secret::new(Vec::new()),
            source: "line 1 (TEAM)".into(),
        }],
        replace: false,
    };
    let err = c.call(&req).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("line 1 (TEAM)") && text.contains("--from-openbao"),
        "{text}"
    );
    assert!(names(&d).is_empty());
}
