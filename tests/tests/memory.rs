//! DESIGN.md security property 3 (and part of 2): secrets leave the daemon's
//! memory. Each test scans vaultd's whole address space through
//! `/proc/PID/mem` (root only, as CI runs) for random canaries that were
//! really used first: in HTTP requests over plain HTTP and TLS, echoed back
//! by the upstream, streamed and buffered. Every scan also counts a control
//! string that must be found at least twice (the vault's path: once in the
//! initial stack's argv, and in the heap copies the daemon keeps in its
//! state), so a scan that reads nothing, or misses the heap, cannot pass.

use std::time::{Duration, Instant};

use base64::Engine;
use harness::memscan::{Scan, scan};
use harness::{Daemon, Upstream, canary};

fn skip(test: &str, why: &str) {
    println!("SKIPPED {test}: {why}");
}

fn root_or_skip(test: &str) -> bool {
    if harness::is_root() {
        return true;
    }
    skip(test, "reading /proc/PID/mem of vaultd needs root");
    false
}

/// A daemon trusting the TLS upstream's CA, initialized with `passphrase`.
fn daemon(tls: &Upstream, passphrase: &str) -> Daemon {
    let ca = tls.ca_pem.as_ref().expect("TLS upstream");
    let d = Daemon::start_with(
        "extra_ca = [\"{dir}/ca.pem\"]\n",
        &[("ca.pem", ca.as_bytes())],
    );
    d.ctl_in(
        &["init", "--passphrase-stdin"],
        Some(format!("{passphrase}\n").as_bytes()),
    )
    .ok();
    d
}

/// The forms a token can take in memory: raw, and base64 as the redactor
/// and a Basic-style header would spell it.
fn forms(token: &str) -> Vec<Vec<u8>> {
    vec![
        token.as_bytes().to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(token)
            .into_bytes(),
    ]
}

/// Uses credential `name` for real: echo over plain HTTP and TLS (the
/// response carries the token back, so hyper's read buffers hold it too),
/// a buffered body, a streamed body larger than one chunk, and a redirect.
fn exercise(d: &Daemon, plain: &Upstream, tls: &Upstream, name: &str) {
    let body = d.path("body.bin");
    std::fs::write(&body, vec![b'x'; 600 * 1024]).unwrap();
    let body_arg = format!("@{}", body.display());
    for up in [plain, tls] {
        d.ctl(&["request", name, &up.url("/echo")]).ok();
        d.ctl(&["request", name, &up.url("/echo"), "-d", "small body"])
            .ok();
        d.ctl(&[
            "request",
            name,
            &up.url("/echo"),
            "-d",
            &body_arg,
            "-o",
            "/dev/null",
        ])
        .ok();
        d.ctl(&["request", name, &up.url("/redirect?to=/echo"), "-L"])
            .ok();
    }
}

fn scan_until_clean(pid: u32, secrets: &[Vec<u8>], control: &[u8], limit: Duration) -> Scan {
    let secrets: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
    harness::memscan::scan_until_clean(pid, &secrets, control, limit)
}

fn assert_clean(what: &str, s: &Scan, labels: &[String]) {
    let control = *s.hits.last().unwrap();
    assert!(
        control >= 2,
        "{what}: the control string was found {control} times in {} bytes (argv and the heap hold it): the scan is broken",
        s.bytes
    );
    let found: Vec<String> = labels
        .iter()
        .zip(&s.hits)
        .filter(|(_, h)| **h > 0)
        .map(|(l, h)| format!("{l}: {h} hits"))
        .collect();
    assert!(
        found.is_empty(),
        "{what}: secrets still in vaultd's memory ({} bytes scanned): {}",
        s.bytes,
        found.join(", ")
    );
}

/// A bearer credential bound to both upstreams.
fn add_bearer(d: &Daemon, name: &str, token: &str, plain: &Upstream, tls: &Upstream) {
    let (p, t) = (plain.origin(), tls.origin());
    d.add(name, token, &["--bearer", "--origin", &p, "--origin", &t])
        .ok();
}

/// Scans for every form of `token` (and the control) and asserts none.
fn assert_token_gone(d: &Daemon, what: &str, label: &str, token: &str) {
    let labels: Vec<String> = (0..2).map(|i| format!("{label} (form {i})")).collect();
    let control = d.vault.display().to_string();
    let s = scan_until_clean(
        d.pid(),
        &forms(token),
        control.as_bytes(),
        Duration::from_secs(3),
    );
    assert_clean(what, &s, &labels);
}

#[test]
fn token_and_passphrase_gone_from_memory_after_lock() {
    if !root_or_skip("token_and_passphrase_gone_from_memory_after_lock") {
        return;
    }
    let plain = Upstream::plain();
    let tls = Upstream::tls();
    let passphrase = canary("pass");
    let d = daemon(&tls, &passphrase);
    let used = canary("used");
    let idle = canary("idle");
    let origins = ["--origin", &plain.origin(), "--origin", &tls.origin()];
    let mut args = vec!["--header", "X-Api-Key"];
    args.extend_from_slice(&origins);
    d.add("used", &used, &args).ok();
    d.add("idle", &idle, &["--bearer", "--origin", &plain.origin()])
        .ok();
    // Lock and unlock once, so the passphrase has come in twice.
    d.ctl(&["lock"]).ok();
    d.ctl_in(
        &["unlock", "--passphrase-stdin"],
        Some(format!("{passphrase}\n").as_bytes()),
    )
    .ok();
    exercise(&d, &plain, &tls, "used");
    assert!(plain.saw(&used) && tls.saw(&used), "the token was not sent");

    let control = d.vault.display().to_string();
    let mut labels = Vec::new();
    let mut secrets = Vec::new();
    for (label, s) in [("passphrase", &passphrase), ("unused token", &idle)] {
        for (i, f) in forms(s).into_iter().enumerate() {
            labels.push(format!("{label} (form {i})"));
            secrets.push(f);
        }
    }
    // While unlocked: the passphrase is gone already, and a token that no
    // job has used exists only shielded (encrypted), never in plaintext.
    let s = scan_until_clean(
        d.pid(),
        &secrets,
        control.as_bytes(),
        Duration::from_secs(3),
    );
    assert_clean("unlocked", &s, &labels);

    for (i, f) in forms(&used).into_iter().enumerate() {
        labels.push(format!("used token (form {i})"));
        secrets.push(f);
    }
    d.ctl(&["lock"]).ok();
    let s = scan_until_clean(
        d.pid(),
        &secrets,
        control.as_bytes(),
        Duration::from_secs(3),
    );
    assert_clean("after lock", &s, &labels);
    println!("scanned {} MiB of vaultd after lock: clean", s.bytes >> 20);
}

#[test]
fn removed_token_gone_from_memory_while_unlocked() {
    if !root_or_skip("removed_token_gone_from_memory_while_unlocked") {
        return;
    }
    let plain = Upstream::plain();
    let tls = Upstream::tls();
    let d = daemon(&tls, harness::PASSPHRASE);
    let keep = canary("keep");
    let gone = canary("gone");
    for (name, tok) in [("keep", &keep), ("gone", &gone)] {
        add_bearer(&d, name, tok, &plain, &tls);
    }
    exercise(&d, &plain, &tls, "gone");
    assert!(plain.saw(&gone) && tls.saw(&gone), "the token was not sent");
    d.ctl(&["remove", "gone"]).ok();
    // The other credential keeps working (on a fresh pool).
    d.ctl(&["request", "keep", &tls.url("/user")]).ok();

    assert_token_gone(&d, "after remove", "removed token", &gone);
}

#[test]
fn rotated_out_value_gone_from_memory() {
    if !root_or_skip("rotated_out_value_gone_from_memory") {
        return;
    }
    let plain = Upstream::plain();
    let tls = Upstream::tls();
    let d = daemon(&tls, harness::PASSPHRASE);
    let old = canary("old");
    let new = canary("new");
    add_bearer(&d, "api", &old, &plain, &tls);
    exercise(&d, &plain, &tls, "api");
    d.ctl_in(&["rotate", "api"], Some(format!("{new}\n").as_bytes()))
        .ok();
    d.ctl(&["request", "api", &tls.url("/user")]).ok();
    assert!(tls.saw(&new), "the new value was not sent");

    assert_token_gone(&d, "after rotate", "old value", &old);
}

#[test]
fn removed_signing_key_gone_from_memory() {
    if !root_or_skip("removed_signing_key_gone_from_memory") {
        return;
    }
    let plain = Upstream::plain();
    let tls = Upstream::tls();
    let d = daemon(&tls, harness::PASSPHRASE);
    let key = canary("hmac-key");
    d.ctl_in(
        &[
            "add",
            "signer",
            "--sign",
            "hmac-sha256",
            "--import",
            "--origin",
            &plain.origin(),
            "--origin",
            &tls.origin(),
        ],
        Some(key.as_bytes()),
    )
    .ok();
    plain.set_verify_key(harness::sigverify::VerifyKey::Hmac(key.as_bytes().to_vec()));
    for _ in 0..3 {
        let out = d
            .ctl(&["request", "signer", &plain.url("/verify"), "-d", "{}", "-f"])
            .ok();
        assert!(out.text().starts_with("verified"), "{}", out.text());
        d.ctl(&["request", "signer", &tls.url("/echo"), "-d", "x"])
            .ok();
    }
    d.ctl(&["remove", "signer"]).ok();
    assert_token_gone(&d, "after remove", "removed HMAC key", &key);
}

/// Starts `vaultctl request svc /source?n=…` with its stdout a pipe that
/// nobody reads, and waits until the download has stopped moving: vaultctl
/// is blocked on its stdout, vaultd on its write to the socket.
fn stalled_download(d: &Daemon, plain: &Upstream) -> std::process::Child {
    let mut cmd = d.cmd();
    cmd.args(["request", "svc", &plain.url("/source?n=4000000000")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn vaultctl");
    let start = Instant::now();
    let mut last = 0;
    while start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(300));
        let now = plain.produced.load(std::sync::atomic::Ordering::Relaxed);
        if now > 0 && now == last {
            return child;
        }
        last = now;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the download never stalled ({last} bytes produced)");
}

/// The scan sees the stalled job's token before the event that must free
/// it, or the later clean scan would prove nothing.
fn assert_token_present(d: &Daemon, token: &str) {
    let control = d.vault.display().to_string();
    let needles = [token.as_bytes(), control.as_bytes()];
    let s = scan(d.pid(), &needles).expect("scan vaultd memory");
    assert!(
        s.hits[0] > 0,
        "a stalled job's token is not in memory before the event: the test proves nothing"
    );
}

/// Reads what the stalled client still gets and its exit status.
fn drain(child: std::process::Child) -> (std::process::ExitStatus, usize, String) {
    let out = child.wait_with_output().expect("vaultctl output");
    (
        out.status,
        out.stdout.len(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lock_frees_the_token_of_a_stream_whose_reader_stalled() {
    if !root_or_skip("lock_frees_the_token_of_a_stream_whose_reader_stalled") {
        return;
    }
    let plain = Upstream::plain();
    let tls = Upstream::tls();
    let d = daemon(&tls, "pass");
    let token = canary("stall");
    d.add("svc", &token, &["--bearer", "--origin", &plain.origin()])
        .ok();
    let child = stalled_download(&d, &plain);
    assert_token_present(&d, &token);
    d.ctl(&["lock"]).ok();
    assert_token_gone(
        &d,
        "after lock, reader stalled",
        "stalled job's token",
        &token,
    );
    let (status, got, stderr) = drain(child);
    assert!(!status.success(), "the download completed after lock");
    assert!(got < 4_000_000_000, "the whole body arrived ({got} bytes)");
    println!("stalled reader after lock: {status}, {got} bytes, {stderr}");
}

#[test]
fn a_stalled_reader_does_not_keep_the_token_past_the_deadline() {
    if !root_or_skip("a_stalled_reader_does_not_keep_the_token_past_the_deadline") {
        return;
    }
    let plain = Upstream::plain();
    let d = Daemon::start("request_timeout = \"3s\"\nmax_body = \"100GiB\"\n");
    d.init();
    let token = canary("deadline");
    d.add("svc", &token, &["--bearer", "--origin", &plain.origin()])
        .ok();
    let started = Instant::now();
    let child = stalled_download(&d, &plain);
    assert_token_present(&d, &token);
    // Past the 3 s deadline (the scan below waits up to 3 s more).
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    assert_token_gone(
        &d,
        "past the deadline, reader stalled",
        "stalled job's token",
        &token,
    );
    let (status, got, stderr) = drain(child);
    assert!(
        !status.success(),
        "the download completed past its deadline"
    );
    println!("stalled reader past its deadline: {status}, {got} bytes, {stderr}");
}

#[test]
fn lock_frees_the_token_of_an_upload_that_stalled() {
    if !root_or_skip("lock_frees_the_token_of_an_upload_that_stalled") {
        return;
    }
    let plain = Upstream::plain();
    let tls = Upstream::tls();
    let d = daemon(&tls, "pass");
    let token = canary("upload");
    d.add("svc", &token, &["--bearer", "--origin", &plain.origin()])
        .ok();
    // A body from stdin that starts and then stops, the pipe left open.
    let mut cmd = d.cmd();
    cmd.args(["request", "svc", &plain.url("/sink"), "--data-binary", "@-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn vaultctl");
    let mut stdin = child.stdin.take().unwrap();
    // More than vaultctl reads before it starts a job (1 MiB, sent inline).
    std::io::Write::write_all(&mut stdin, &vec![b'u'; 2 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_token_present(&d, &token);
    d.ctl(&["lock"]).ok();
    assert_token_gone(
        &d,
        "after lock, upload stalled",
        "stalled upload's token",
        &token,
    );
    drop(stdin);
    let (status, _, stderr) = drain(child);
    assert!(!status.success(), "the upload completed after lock");
    assert!(stderr.contains("locked"), "{stderr}");
}
