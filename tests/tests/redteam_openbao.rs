//! Red-team round for issue 13 (OpenBao-sourced credentials): a script of
//! the vault's uid that talks only to vaultd's socket (vaultctl or raw
//! frames) and to servers of its own on loopback, without the passphrase,
//! tries to get a byte of an OpenBao-sourced value, the client token, the
//! AppRole secret_id or role_id, or to make vaultd send any of them
//! anywhere but the configured nodes and the credential's origins.
//!
//! Each test asserts the secret never reached the script. The round's
//! findings (a sourced value not yet read escaping neighbour redaction,
//! `lock` during a login leaving the client token alive, `lock` revoking an
//! admin-given token) failed on the code they were written against and
//! are fixed. `#[ignore = "class: ..."]` tests document attacks
//! SECURITY.md lists as not defended; they fail by design (run them with
//! `-- --include-ignored`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::openbao::{BaoDev, BaoOps, bao_or_skip};
use harness::raw::{Seen, raw_upstream, run};
use harness::{Daemon, Out, Upstream, canary, watch_secret};

const POLICY: &str = r#"path "secret/data/team/*" { capabilities = ["read"] }"#;
const PATH: &str = "team/microreact";

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn config(addrs: &[String], extra: &str) -> String {
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[openbao]\naddrs = [{}]\n{extra}\n", list.join(", "))
}

/// The admin's setup: init, AppRole login, `shared` sourced from
/// `team/microreact#token`, sent as a bearer token to `origin`.
fn admin_setup(d: &Daemon, role_id: &str, secret_id: &str, origin: &str) {
    d.init();
    d.ctl_in(
        &["openbao", "login", "--approle", role_id],
        Some(secret_id.as_bytes()),
    )
    .ok();
    add_sourced(d, "shared", &format!("{PATH}#token"), origin).ok();
}

fn add_sourced(d: &Daemon, name: &str, source: &str, origin: &str) -> Out {
    d.ctl_in(
        &[
            "add",
            name,
            "--bearer",
            "--from-openbao",
            source,
            "--passphrase-stdin",
            "--origin",
            origin,
        ],
        Some(format!("{}\n", harness::PASSPHRASE).as_bytes()),
    )
}

/// Which of `secrets` occur in `hay` (raw), by name.
fn found<'a>(hay: &[u8], secrets: &[(&'a str, &str)]) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|(_, s)| harness::count(hay, s.as_bytes()) > 0)
        .map(|(n, _)| *n)
        .collect()
}

/// Reads one whole HTTP/1.1 request (head and `Content-Length` body).
fn read_request(c: &mut TcpStream) -> Vec<u8> {
    let _ = c.set_read_timeout(Some(Duration::from_millis(1500)));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                break;
            }
        }
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// Squats `port`: records every request and answers 503, which vaultd
/// takes for a sealed node and fails over from, so nothing looks wrong.
fn squat_in_process(port: u16) -> Arc<Mutex<Vec<u8>>> {
    let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the squatted port");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let got = read_request(&mut c);
            log.lock().unwrap().extend_from_slice(&got);
            let _ = c.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 24\r\nConnection: close\r\n\r\n{\"errors\":[\"sealed\"]}\r\n\r\n",
            );
        }
    });
    seen
}

// ---------------------------------------------------------------------------
// 1. A configured node that is down, squatted on loopback.
// ---------------------------------------------------------------------------

/// `addrs` names a node on loopback over plain http (a local agent, a
/// decommissioned or restarting node). While it is down its port is free;
/// the script binds it. vaultd starts every call at the node that
/// answered last, from node 0 after a (re)start (a script of the same uid
/// can kill vaultd; systemd restarts it): the first call after that, the
/// AppRole login, goes to the script in cleartext. The squatter answers
/// 503 so vaultd fails over to the real node and everything keeps
/// working: nobody notices.
#[test]
#[ignore = "class: a script of vaultd's uid squatting a down plain-http loopback node in `addrs` receives the AppRole role_id and secret_id; SECURITY.md (42a3061) lists it as not defended, give OpenBao TLS (fails by design)"]
fn a_same_uid_squatter_on_a_down_openbao_node_gets_no_login_material() {
    if bao_or_skip("a_same_uid_squatter_on_a_down_openbao_node_gets_no_login_material").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("sq-value");
    bao.kv_put(PATH, "token", &value);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let port = free_port();
    let seen = squat_in_process(port);
    let up = Upstream::plain();
    let d = Daemon::start(&config(
        &[format!("http://127.0.0.1:{port}"), bao.addr().to_owned()],
        "",
    ));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    // Everything works for the owner: the failover hides the squatter.
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    d.ctl(&["refresh"]).ok();
    let got = seen.lock().unwrap().clone();
    let leaked = found(
        &got,
        &[
            ("secret_id", &secret_id),
            ("role_id", &role_id),
            ("value", &value),
        ],
    );
    assert!(
        leaked.is_empty(),
        "the script's listener on a configured node's port got {leaked:?}:\n{}",
        String::from_utf8_lossy(&got)
    );
}

/// The script need not be there first. vaultd is up and has failed over
/// to the live node (it sticks to the node that answered last); the script
/// binds the dead node's port, kills vaultd (same uid; systemd restarts
/// it) and waits for the next unlock: the background read after it starts
/// again at node 0, so the STORED login goes to the script, with no
/// `openbao login` by anyone.
#[test]
#[ignore = "class (as above, but note): the script need not be there first; it kills vaultd and the first read after the next unlock sends the STORED role_id and secret_id to the squatter (fails by design)"]
fn a_same_uid_squatter_after_a_restart_gets_no_stored_login() {
    if bao_or_skip("a_same_uid_squatter_after_a_restart_gets_no_stored_login").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("rs-value");
    bao.kv_put(PATH, "token", &value);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let port = free_port();
    let up = Upstream::plain();
    let mut d = Daemon::start(&config(
        &[format!("http://127.0.0.1:{port}"), bao.addr().to_owned()],
        "",
    ));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    // Now the script: squat, restart vaultd, wait for the owner's unlock.
    let seen = squat_in_process(port);
    d.kill();
    d.spawn();
    d.unlock();
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    let got = seen.lock().unwrap().clone();
    let leaked = found(
        &got,
        &[
            ("secret_id", &secret_id),
            ("role_id", &role_id),
            ("value", &value),
        ],
    );
    assert!(
        leaked.is_empty(),
        "the script's listener on a configured node's port got {leaked:?}:\n{}",
        String::from_utf8_lossy(&got)
    );
}

/// Run by [`another_uids_squatter_on_a_down_openbao_node_gets_nothing`] as
/// a throwaway user: squats `TOKENVAULT_BAO_SQUAT_PORT`, appends every
/// request to `TOKENVAULT_BAO_SQUAT_LOG`, answers 503.
#[test]
fn openbao_squatter_helper() {
    let (Some(port), Some(log)) = (
        std::env::var("TOKENVAULT_BAO_SQUAT_PORT").ok(),
        std::env::var_os("TOKENVAULT_BAO_SQUAT_LOG"),
    ) else {
        return;
    };
    let l = TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap())).expect("bind");
    for mut c in l.incoming().flatten() {
        let got = read_request(&mut c);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        f.write_all(&got).expect("log write");
        let _ = c.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
}

/// The same squat by ANOTHER local user: plain-http loopback nodes get the
/// upstreams' listener-uid check (42a3061), so the squatter gets nothing.
/// Failed on 5ccea56 (the OpenBao client had no such check: any local user
/// got the role_id and secret_id); kept end to end as the regression test.
#[test]
fn another_uids_squatter_on_a_down_openbao_node_gets_nothing() {
    let test = "another_uids_squatter_on_a_down_openbao_node_gets_nothing";
    if bao_or_skip(test).is_none() {
        return;
    }
    let user = match harness::TestUser::create("bsq") {
        Ok(u) => u,
        Err(why) => {
            println!("SKIPPED {test}: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    user.own(dir.path());
    let log = dir.path().join("squatter.log");
    let port = free_port();
    let mut squatter = user
        .command(std::env::current_exe().expect("test binary"))
        .args(["--exact", "openbao_squatter_helper", "--nocapture"])
        .env("TOKENVAULT_BAO_SQUAT_PORT", port.to_string())
        .env("TOKENVAULT_BAO_SQUAT_LOG", &log)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the squatter");
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no squatter");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The probe connection above is logged as an empty request.
    let bao = BaoDev::start();
    let value = canary("osq-value");
    bao.kv_put(PATH, "token", &value);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let up = Upstream::plain();
    let d = Daemon::start(&config(
        &[format!("http://127.0.0.1:{port}"), bao.addr().to_owned()],
        "",
    ));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    std::thread::sleep(Duration::from_millis(500));
    let got = std::fs::read(&log).unwrap_or_default();
    let _ = squatter.kill();
    let _ = squatter.wait();
    let leaked = found(
        &got,
        &[
            ("secret_id", &secret_id),
            ("role_id", &role_id),
            ("value", &value),
        ],
    );
    assert!(
        leaked.is_empty(),
        "uid {}'s listener on a configured node's port got {leaked:?}:\n{}",
        user.uid,
        String::from_utf8_lossy(&got)
    );
}

// ---------------------------------------------------------------------------
// 2. `openbao login` and `refresh` from the script.
// ---------------------------------------------------------------------------

/// `openbao login` needs no passphrase. The script sends its own AppRole
/// and token logins (raw frames) and forces reads: the answers, `status`,
/// `list --json` and the log hold no secret, the stored login survives
/// (a refused login is not stored), and values keep flowing.
#[test]
fn a_script_replacing_the_openbao_login_learns_nothing_and_breaks_nothing() {
    if bao_or_skip("a_script_replacing_the_openbao_login_learns_nothing_and_breaks_nothing")
        .is_none()
    {
        return;
    }
    let bao = BaoDev::start();
    let v1 = canary("login-v1");
    bao.kv_put(PATH, "token", &v1);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let up = Upstream::plain();
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    d.ctl(&["request", "shared", &up.url("/x")]).ok();

    let mut c = vaultctl::Client::connect(&d.socket).expect("connect");
    let mut answers = String::new();
    for login in [
        proto::OpenBaoLogin::AppRole {
            role_id: "script-role".into(),
            secret_id: proto::Secret::from_slice(b"script-secret-id"),
        },
        // The real role_id (it is only an identifier) with a guess.
        proto::OpenBaoLogin::AppRole {
            role_id: role_id.clone(),
            secret_id: proto::Secret::from_slice(b"guess"),
        },
        proto::OpenBaoLogin::Token(proto::Secret::from_slice(b"s.script-token")),
    ] {
        let r = c.call(&proto::Request::OpenBaoLogin(login));
        answers.push_str(&format!("{r:?}\n"));
    }
    let r = c.call(&proto::Request::Refresh { name: None });
    answers.push_str(&format!("{r:?}\n"));
    answers.push_str(&d.ctl(&["openbao", "status"]).text());
    answers.push_str(&String::from_utf8_lossy(
        &d.ctl(&["status", "--json"]).stdout,
    ));
    answers.push_str(&String::from_utf8_lossy(&d.ctl(&["list", "--json"]).stdout));

    // The admin's login still works: a new version arrives on refresh.
    let v2 = canary("login-v2");
    bao.kv_put(PATH, "token", &v2);
    d.ctl(&["refresh", "shared"]).ok();
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    let last = up.requests().last().and_then(|r| r.header("authorization"));
    assert_eq!(
        last,
        Some(format!("Bearer {v2}")),
        "the stored login was broken"
    );

    let secrets = [
        ("secret_id", secret_id.as_str()),
        ("v1", v1.as_str()),
        ("v2", v2.as_str()),
    ];
    let hay = [answers.as_bytes(), d.log().as_bytes()].concat();
    let leaked = found(&hay, &secrets);
    assert!(leaked.is_empty(), "{leaked:?} in:\n{answers}");
    d.assert_log_clean();
}

// ---------------------------------------------------------------------------
// 3. Redaction of sourced values: own echo, stored echo (neighbours).
// ---------------------------------------------------------------------------

/// The credential's own upstream echoes what it got: the sourced value is
/// redacted like a local one.
#[test]
fn an_upstream_echo_of_a_sourced_value_is_redacted() {
    if bao_or_skip("an_upstream_echo_of_a_sourced_value_is_redacted").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("echo");
    bao.kv_put(PATH, "token", &value);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let up = Upstream::plain();
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    let mut out = Vec::new();
    for path in ["/echo", "/echo-encoded", "/echo-form"] {
        let (_, stdout, stderr) = run(&d, &["request", "shared", &up.url(path)]);
        out.extend(stdout);
        out.extend(stderr);
    }
    assert!(
        up.saw(&value),
        "the control failed: the upstream never got the value"
    );
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&value);
    let leaked = found(&out, &[("value", &value), ("base64", &b64)]);
    assert!(
        leaked.is_empty(),
        "echo not redacted:\n{}",
        String::from_utf8_lossy(&out)
    );
}

static STORED: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A service with a request log ("activity" page): it shows the bearer
/// tokens of earlier calls.
fn store_handler(seen: &Seen) -> Vec<u8> {
    let mut s = STORED.lock().unwrap();
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

fn signal(pid: u32, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid}");
}

/// Neighbour redaction covers another credential's value only while it is
/// cached. After `lock` and `unlock`, the cache is empty until the first
/// read finishes, and it stays empty for as long as OpenBao cannot answer
/// (an outage, a leader election, a network cut: `max_stale` does not help,
/// nothing was read). A job with a credential the script added itself,
/// bound to the same service, reads the service's log of the sourced value
/// sent before the lock: unredacted. (SIGSTOP of the dev server stands in
/// for the outage; without one the script races the first read.)
#[test]
fn a_stored_echo_of_a_sourced_value_is_redacted_while_openbao_is_down() {
    if bao_or_skip("a_stored_echo_of_a_sourced_value_is_redacted_while_openbao_is_down").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("stored");
    bao.kv_put(PATH, "token", &value);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let addr = raw_upstream(store_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &origin);
    // The owner's job uses `shared`; the service logs it.
    d.ctl(&["request", "shared", &format!("{origin}/api/thing")])
        .ok();
    // The script adds a credential of its own for the same service.
    d.add(
        "mine",
        "made-up-by-the-script",
        &["--bearer", "--origin", &origin],
    )
    .ok();
    // Control: while the value is cached, the log comes back redacted.
    let (_, cached, _) = run(&d, &["request", "mine", &format!("{origin}/activity")]);
    assert!(
        found(&cached, &[("value", &value)]).is_empty(),
        "not redacted even while cached: {}",
        String::from_utf8_lossy(&cached)
    );

    d.ctl(&["lock"]).ok();
    signal(bao.pid(), "STOP");
    d.unlock();
    let (code, stdout, stderr) = run(&d, &["request", "mine", &format!("{origin}/activity")]);
    signal(bao.pid(), "CONT");
    let out = [stdout, stderr].concat();
    let leaked = found(&out, &[("value", &value)]);
    assert!(
        leaked.is_empty(),
        "the sourced value came back unredacted (exit {code}):\n{}",
        String::from_utf8_lossy(&out)
    );
}

// ---------------------------------------------------------------------------
// 4. `lock` while an OpenBao call is in flight.
// ---------------------------------------------------------------------------

fn accessors(bao: &BaoDev) -> Vec<String> {
    let v = bao.bao_json(&["list", "auth/token/accessors"], None);
    v.as_array()
        .expect("accessor list")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

/// `lock` revokes the client token (control below). But `clear` only
/// `try_lock`s the session: while a login is in flight it holds the
/// session, and a refused login puts the OLD session back after the lock.
/// The script needs no secret for that: `openbao login` with a made-up
/// secret_id, then `lock` before OpenBao answers (a SIGSTOP of the dev
/// server stands in for the login's round trip). The client token then
/// outlives the lock, unrevoked, in vaultd's memory (shielded) and valid at
/// OpenBao, and the next unlock reuses it.
#[test]
fn lock_during_a_scripts_login_still_revokes_the_client_token() {
    if bao_or_skip("lock_during_a_scripts_login_still_revokes_the_client_token").is_none() {
        return;
    }
    let bao = BaoDev::start();
    bao.kv_put(PATH, "token", &canary("race"));
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let up = Upstream::plain();
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    d.ctl(&["request", "shared", &up.url("/x")]).ok();

    // Control: a plain lock revokes vaultd's token.
    let before = accessors(&bao);
    d.ctl(&["lock"]).ok();
    std::thread::sleep(Duration::from_secs(4));
    let after = accessors(&bao);
    let revoked: Vec<_> = before.iter().filter(|a| !after.contains(a)).collect();
    assert_eq!(revoked.len(), 1, "control: lock revoked {revoked:?}");

    // Logged in again (a read after unlock).
    d.unlock();
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    let before = accessors(&bao);

    let socket = d.socket.clone();
    signal(bao.pid(), "STOP");
    let login = std::thread::spawn(move || {
        let mut c = vaultctl::Client::connect(&socket).expect("connect");
        c.call(&proto::Request::OpenBaoLogin(
            proto::OpenBaoLogin::AppRole {
                role_id: "made-up".into(),
                secret_id: proto::Secret::from_slice(b"made-up"),
            },
        ))
    });
    std::thread::sleep(Duration::from_millis(300));
    d.ctl(&["lock"]).ok();
    std::thread::sleep(Duration::from_millis(200));
    signal(bao.pid(), "CONT");
    let _ = login.join();
    std::thread::sleep(Duration::from_secs(4));
    let after = accessors(&bao);
    let revoked: Vec<_> = before.iter().filter(|a| !after.contains(a)).collect();
    let status = d.ctl(&["openbao", "status"]).text();
    assert_eq!(
        revoked.len(),
        1,
        "after lock, vaultd's client token is still valid at OpenBao; openbao status:\n{status}"
    );
}

/// A script forces a read (`refresh`) and locks while OpenBao's answer is
/// on its way (SIGSTOP stands in for the round trip): the answer that
/// arrives after the lock must not be cached, and no copy of the value may
/// stay in vaultd's memory.
#[test]
fn a_read_in_flight_at_lock_leaves_no_value_in_memory() {
    let test = "a_read_in_flight_at_lock_leaves_no_value_in_memory";
    if bao_or_skip(test).is_none() {
        return;
    }
    if !harness::is_root() {
        println!("SKIPPED {test}: reading /proc/PID/mem of vaultd needs root");
        return;
    }
    let bao = BaoDev::start();
    let v1 = canary("inflight-v1");
    bao.kv_put(PATH, "token", &v1);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let up = Upstream::plain();
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    // A new version, so the value read in flight is one vaultd never had.
    let v2 = canary("inflight-v2");
    bao.kv_put(PATH, "token", &v2);

    let socket = d.socket.clone();
    signal(bao.pid(), "STOP");
    let refresh = std::thread::spawn(move || {
        let mut c = vaultctl::Client::connect(&socket).expect("connect");
        c.call(&proto::Request::Refresh {
            name: Some("shared".into()),
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    d.ctl(&["lock"]).ok();
    std::thread::sleep(Duration::from_millis(200));
    signal(bao.pid(), "CONT");
    let r = refresh.join().unwrap();
    println!("refresh answered: {r:?}");
    let status = d.ctl(&["openbao", "status"]).text();
    std::thread::sleep(Duration::from_secs(1));

    use base64::Engine as _;
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for s in [&v1, &v2, &secret_id] {
        needles.push(s.as_bytes().to_vec());
        needles.push(
            base64::engine::general_purpose::STANDARD
                .encode(s)
                .into_bytes(),
        );
    }
    let control = d.vault.display().to_string();
    let mut n: Vec<&[u8]> = needles.iter().map(|v| v.as_slice()).collect();
    n.push(control.as_bytes());
    let s = harness::memscan::scan(d.pid(), &n).expect("scan");
    assert!(*s.hits.last().unwrap() >= 1, "the scan is broken");
    assert!(
        s.hits[..needles.len()].iter().all(|&h| h == 0),
        "after lock, in vaultd's memory (v1 raw/b64, v2 raw/b64, secret_id raw/b64): {:?}\n{status}",
        &s.hits[..needles.len()]
    );
}

/// As [`lock_during_a_scripts_login_still_revokes_the_client_token`], with
/// no help at all: the script sends its made-up login and `lock` on two
/// connections at once and races OpenBao's answer to the login.
#[test]
fn lock_racing_a_scripts_login_still_revokes_the_client_token() {
    if bao_or_skip("lock_racing_a_scripts_login_still_revokes_the_client_token").is_none() {
        return;
    }
    let bao = BaoDev::start();
    bao.kv_put(PATH, "token", &canary("race2"));
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let up = Upstream::plain();
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &up.origin());
    // Up to five tries, one per unlock by the owner: each fails or wins
    // on timing alone (about two in three won while this was written).
    let mut alive = Vec::new();
    for attempt in 0..5 {
        if attempt > 0 {
            d.unlock();
        }
        d.ctl(&["request", "shared", &up.url("/x")]).ok();
        let before = accessors(&bao);
        let mut login_conn = vaultctl::Client::connect(&d.socket).expect("connect");
        let mut lock_conn = vaultctl::Client::connect(&d.socket).expect("connect");
        let login = std::thread::spawn(move || {
            login_conn.call(&proto::Request::OpenBaoLogin(
                proto::OpenBaoLogin::AppRole {
                    role_id: "made-up".into(),
                    secret_id: proto::Secret::from_slice(b"made-up"),
                },
            ))
        });
        std::thread::sleep(Duration::from_micros(300));
        let _ = lock_conn.call(&proto::Request::Lock);
        let _ = login.join();
        std::thread::sleep(Duration::from_secs(4));
        let after = accessors(&bao);
        if before.iter().all(|a| after.contains(a)) {
            alive.push(attempt);
            break;
        }
    }
    assert!(
        alive.is_empty(),
        "after lock (try {alive:?}), vaultd's client token is still valid at OpenBao"
    );
}

// ---------------------------------------------------------------------------
// 5. Token auth and `lock` (availability, not a leak).
// ---------------------------------------------------------------------------

/// With `auth = "token"` the session token IS the admin's stored token:
/// `lock` revokes the session's token, so it revokes the stored login, and
/// after the next unlock nothing can be read. Any script of the uid can
/// `lock`. Not a leak: a denial of service, found on the way.
#[test]
fn token_auth_survives_lock_and_unlock() {
    if bao_or_skip("token_auth_survives_lock_and_unlock").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("tok");
    bao.kv_put(PATH, "token", &value);
    bao.policy_write("tokenvault-read", POLICY);
    let token = bao.token_create("tokenvault-read", "1h");
    watch_secret(&token);
    let up = Upstream::plain();
    let d = Daemon::start(&config(&[bao.addr().to_owned()], "auth = \"token\""));
    d.init();
    d.ctl_in(&["openbao", "login", "--token"], Some(token.as_bytes()))
        .ok();
    add_sourced(&d, "shared", &format!("{PATH}#token"), &up.origin()).ok();
    d.ctl(&["request", "shared", &up.url("/x")]).ok();
    d.ctl(&["lock"]).ok();
    std::thread::sleep(Duration::from_secs(2));
    d.unlock();
    let out = d.ctl(&["request", "shared", &up.url("/x")]);
    assert_eq!(out.code, 0, "after lock and unlock: {}", out.stderr);
}

static STORED_RACE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn store_race_handler(seen: &Seen) -> Vec<u8> {
    let mut s = STORED_RACE.lock().unwrap();
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

/// As [`a_stored_echo_of_a_sourced_value_is_redacted_while_openbao_is_down`]
/// with OpenBao up all along: the script only races the first read after
/// the owner's unlock (its job needs no OpenBao call, the first read needs
/// a login and a read).
#[test]
fn a_stored_echo_of_a_sourced_value_is_redacted_right_after_unlock() {
    if bao_or_skip("a_stored_echo_of_a_sourced_value_is_redacted_right_after_unlock").is_none() {
        return;
    }
    let bao = BaoDev::start();
    let value = canary("stored-race");
    bao.kv_put(PATH, "token", &value);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let addr = raw_upstream(store_race_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &origin);
    d.ctl(&["request", "shared", &format!("{origin}/api/thing")])
        .ok();
    d.add(
        "mine",
        "made-up-by-the-script",
        &["--bearer", "--origin", &origin],
    )
    .ok();
    let mut wins = Vec::new();
    for attempt in 0..5 {
        d.ctl(&["lock"]).ok();
        d.unlock();
        let (code, stdout, stderr) = run(&d, &["request", "mine", &format!("{origin}/activity")]);
        let out = [stdout, stderr].concat();
        if !found(&out, &[("value", &value)]).is_empty() {
            wins.push((attempt, code, String::from_utf8_lossy(&out).into_owned()));
            break;
        }
    }
    assert!(
        wins.is_empty(),
        "the sourced value came back unredacted: {wins:?}"
    );
}

static STORED_OLD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn store_old_handler(seen: &Seen) -> Vec<u8> {
    let mut s = STORED_OLD.lock().unwrap();
    let body = if seen.path.starts_with("/activity") {
        let lines: Vec<String> = s
            .iter()
            .map(|t| format!("Bearer {}", String::from_utf8_lossy(t)))
            .collect();
        format!("{}\n", lines.join("\n"))
    } else {
        "ok\n".to_owned()
    };
    s.push(seen.token.clone());
    body.into_bytes()
}

/// A new version arrives from OpenBao; the service still holds (and may
/// still accept) the old one in its request log. Reading that log back
/// through the credential itself, or through a script's own credential on
/// the same service, shows neither version.
#[test]
fn an_older_version_stored_upstream_stays_redacted_after_a_new_one_arrives() {
    if bao_or_skip("an_older_version_stored_upstream_stays_redacted_after_a_new_one_arrives")
        .is_none()
    {
        return;
    }
    let bao = BaoDev::start();
    let old = canary("old-version");
    bao.kv_put(PATH, "token", &old);
    let (role_id, secret_id) = bao.approle_setup("tokenvault", POLICY);
    watch_secret(&secret_id);
    let addr = raw_upstream(store_old_handler);
    let origin = format!("http://{addr}");
    let d = Daemon::start(&config(&[bao.addr().to_owned()], ""));
    admin_setup(&d, &role_id, &secret_id, &origin);
    d.ctl(&["request", "shared", &format!("{origin}/api/thing")])
        .ok();
    let new = canary("new-version");
    bao.kv_put(PATH, "token", &new);
    d.ctl(&["refresh", "shared"]).ok();
    d.add(
        "mine",
        "made-up-by-the-script",
        &["--bearer", "--origin", &origin],
    )
    .ok();
    for name in ["shared", "mine"] {
        let (_, stdout, stderr) = run(&d, &["request", name, &format!("{origin}/activity")]);
        let out = [stdout, stderr].concat();
        let leaked = found(&out, &[("old version", &old), ("new version", &new)]);
        assert!(leaked.is_empty(), "{name}: {leaked:?} came back");
    }
}
