//! Brute force and time: failed unlocks are slowed down, the vault locks by
//! itself (`lock_after_idle`, `lock_after`) and on SIGUSR1.

use std::time::{Duration, Instant};

use harness::{Daemon, Upstream, canary};

fn state(d: &Daemon) -> String {
    let out = d.ctl(&["status", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["state"].as_str().unwrap().to_owned()
}

/// Polls `status --json` (which is no activity) until the vault is locked;
/// how long that took from `since`. Fails after `limit`.
#[track_caller]
fn wait_locked(d: &Daemon, since: Instant, limit: Duration) -> Duration {
    loop {
        if state(d) == "locked" {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "still unlocked after {:?}",
            since.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a log line: vaultd logs a lock just after making it, so a
/// client may see the vault locked a moment before the line is written.
fn assert_logged(d: &Daemon, needle: &str) {
    let start = Instant::now();
    while !d.log().contains(needle) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no {needle:?} in the log: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wrong_unlock(d: &Daemon) -> Duration {
    let start = Instant::now();
    let out = d
        .ctl_in(
            &["unlock", "--passphrase-stdin"],
            Some(b"not the passphrase\n"),
        )
        .code(1);
    assert!(out.stderr.contains("wrong passphrase"), "{}", out.stderr);
    start.elapsed()
}

#[test]
fn failed_unlocks_take_growing_delays_and_a_right_one_works_and_resets_them() {
    let d = Daemon::start("");
    d.init();
    d.ctl(&["lock"]).ok();
    let times: Vec<Duration> = (0..3).map(|_| wrong_unlock(&d)).collect();
    let total: Duration = times.iter().sum();
    eprintln!("three wrong unlocks: {times:?}, {total:?} in all");
    assert!(
        total >= Duration::from_millis(3500),
        "0.5 + 1 + 2 s at least, took {total:?}"
    );
    assert!(times[2] >= Duration::from_secs(2), "{times:?}");
    assert!(times[2] > times[0], "growing: {times:?}");
    assert_eq!(state(&d), "locked");
    // The right passphrase still works after them...
    d.unlock().ok();
    assert_eq!(state(&d), "unlocked");
    // ...and resets the count: the next failure costs 0.5 s again, not 4 s.
    d.ctl(&["lock"]).ok();
    let again = wrong_unlock(&d);
    assert!(
        again >= Duration::from_millis(500) && again < Duration::from_millis(2500),
        "after a good unlock the delay starts over: {again:?}"
    );
}

#[test]
fn lock_after_idle_locks_an_idle_vault_and_requests_reset_it() {
    let up = Upstream::plain();
    let d = Daemon::start("lock_after_idle = \"2s\"\n");
    d.init();
    d.add(
        "svc",
        &canary("idle"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();
    // Busy for twice the idle time: every request resets the clock.
    let busy = Instant::now();
    let mut last = busy;
    while busy.elapsed() < Duration::from_secs(4) {
        last = Instant::now();
        d.ctl(&["request", "svc", &up.url("/echo")]).ok();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(state(&d), "unlocked", "activity keeps it unlocked");
    }
    // Then idle: locked about 2 s after the last request.
    let took = wait_locked(&d, last, Duration::from_secs(5));
    eprintln!("locked {took:?} after the last request (lock_after_idle 2s)");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert_logged(&d, "lock_after_idle elapsed");
    d.ctl(&["request", "svc", &up.url("/echo")]).code(3);
}

#[test]
fn lock_after_locks_at_a_fixed_time_despite_activity() {
    let up = Upstream::plain();
    let d = Daemon::start("lock_after = \"1s\"\nlock_after_idle = \"0\"\n");
    d.init();
    let unlocked = Instant::now();
    d.add(
        "svc",
        &canary("fixed"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();
    // Requests all along; the absolute timer locks anyway.
    let took = loop {
        let out = d.ctl(&["request", "svc", &up.url("/echo")]);
        if out.code == 3 {
            break unlocked.elapsed();
        }
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            unlocked.elapsed() < Duration::from_secs(5),
            "still unlocked after {:?} of activity",
            unlocked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("locked {took:?} after unlock despite activity (lock_after 1s)");
    // Measured from after `init` returned, a little after vaultd's own
    // clock started: a loose lower bound, not a timing test.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert_eq!(state(&d), "locked");
    assert_logged(&d, "lock_after elapsed");
    // A fresh unlock starts a fresh period.
    d.unlock().ok();
    let again = Instant::now();
    assert_eq!(state(&d), "unlocked");
    wait_locked(&d, again, Duration::from_secs(5));
}

#[test]
fn sigusr1_locks_the_vault() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    d.add(
        "svc",
        &canary("usr1"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();
    assert_eq!(state(&d), "unlocked");
    let sent = Instant::now();
    d.signal("USR1");
    wait_locked(&d, sent, Duration::from_secs(5));
    assert_logged(&d, "vault locked (SIGUSR1)");
    d.ctl(&["request", "svc", &up.url("/echo")]).code(3);
    // Still running, and unlocks again.
    d.unlock().ok();
    d.ctl(&["request", "svc", &up.url("/echo")]).ok();
}

#[test]
fn lock_stops_a_waiting_job_before_its_next_hop() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    d.add(
        "svc",
        &canary("hop"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();
    // The first hop takes 1 s to answer with a redirect; lock meanwhile.
    let url = up.url("/redirect?ms=1000&to=/echo");
    let job = {
        let mut cmd = d.cmd();
        cmd.args(["request", "svc", &url, "-L"]);
        std::thread::spawn(move || harness::daemon::run(&mut cmd, None))
    };
    let start = Instant::now();
    while !up
        .requests()
        .iter()
        .any(|r| r.target.starts_with("/redirect"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "first hop never sent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    d.ctl(&["lock"]).ok();
    let out = job.join().unwrap();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("locked"), "{}", out.stderr);
    let sent: Vec<String> = up.requests().iter().map(|r| r.target.clone()).collect();
    assert!(
        !sent.iter().any(|t| t.starts_with("/echo")),
        "the next hop was sent after lock: {sent:?}"
    );
}

#[test]
fn lock_cuts_a_streamed_download_short() {
    let up = Upstream::plain();
    let d = Daemon::start("max_body = \"100GiB\"\n");
    d.init();
    d.add(
        "svc",
        &canary("dl"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();
    let job = {
        let mut cmd = d.cmd();
        cmd.args([
            "request",
            "svc",
            &up.url("/source?n=50000000000"),
            "-o",
            "/dev/null",
        ]);
        std::thread::spawn(move || harness::daemon::run(&mut cmd, None))
    };
    let start = Instant::now();
    while up.produced.load(std::sync::atomic::Ordering::Relaxed) < 16 << 20 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "download never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    d.ctl(&["lock"]).ok();
    let out = job.join().unwrap();
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stderr.contains("locked during this transfer"),
        "{}",
        out.stderr
    );
}

#[test]
fn lock_ends_a_buffered_job_and_delivers_no_body() {
    // The buffered `Request::Job` (the client library's `call`): a lock
    // while the upstream is still answering must end the job with
    // `Locked`, not deliver the response once it comes.
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    d.add(
        "svc",
        &canary("buf"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();
    let socket = d.socket.clone();
    let url = up.url("/slow?ms=2000");
    let job = std::thread::spawn(move || {
        let mut c = vaultctl::Client::connect(&socket).expect("connect");
        let start = Instant::now();
        let r = c.call(&proto::Request::Job(proto::JobRequest {
            credential: "svc".into(),
            method: "GET".into(),
            url,
            headers: vec![],
            body: None,
            follow_redirects: false,
            timeout_ms: None,
        }));
        (r, start.elapsed())
    });
    let start = Instant::now();
    while !up.requests().iter().any(|r| r.target.starts_with("/slow")) {
        assert!(start.elapsed() < Duration::from_secs(5), "job never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    d.ctl(&["lock"]).ok();
    let (r, took) = job.join().unwrap();
    match r {
        Err(vaultctl::ClientError::Daemon(e)) => {
            assert_eq!(e.code, proto::ErrorCode::Locked, "{e:?}");
            assert!(e.message.contains("locked"), "{}", e.message);
        }
        other => panic!("a job that met `lock` delivered: {other:?}"),
    }
    assert!(
        took < Duration::from_millis(1900),
        "the job waited for the upstream after lock ({took:?})"
    );
}
