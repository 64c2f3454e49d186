//! No token or passphrase in any log line or error message (DESIGN
//! "Security properties" 2), and the audit log (one line per job, never a
//! value). Every harness daemon runs at trace level and has its log checked
//! for this process's canaries when dropped; these tests check a full flow
//! explicitly and show the check can fail.

use std::net::TcpListener;
use std::process::Stdio;

use harness::{Daemon, Out, PASSPHRASE, Upstream, canary, leaks};

/// A daemon at trace level whatever `TOKENVAULT_TEST_LOG` says.
fn trace_daemon(config: &str) -> Daemon {
    let mut d = Daemon::start(config);
    d.kill();
    d.env.push(("VAULTD_LOG".into(), "trace".into()));
    d.spawn();
    d
}

/// A loopback origin on which nothing listens.
fn dead_origin() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn no_token_or_passphrase_in_any_log_line() {
    let up = Upstream::plain();
    let other = Upstream::plain();
    let d = trace_daemon("audit = true\n");
    let first = canary("logtoken");
    let second = canary("logrotated");
    let wrong = canary("wrongpass");
    let mut outs: Vec<Out> = Vec::new();
    let pass = format!("{PASSPHRASE}\n");

    outs.push(
        d.ctl_in(&["init", "--passphrase-stdin"], Some(pass.as_bytes()))
            .ok(),
    );
    outs.push(
        d.add(
            "svc",
            &first,
            &["--preset", "microreact", "--origin", &up.origin()],
        )
        .ok(),
    );
    // The upstream echoes the token back; it is redacted on the way.
    let echo = d.ctl(&["request", "svc", &up.url("/echo"), "-i"]).ok();
    assert!(!echo.text().contains(&first), "echo redacted");
    assert_eq!(up.requests()[0].header("access-token"), Some(first.clone()));
    outs.push(echo);
    outs.push(
        d.ctl_in(&["rotate", "svc"], Some(format!("{second}\n").as_bytes()))
            .ok(),
    );
    outs.push(
        d.ctl(&["request", "svc", &up.url("/echo?x=1"), "-d", "hello"])
            .ok(),
    );
    assert_eq!(
        up.requests()[1].header("access-token"),
        Some(second.clone())
    );
    // Refused by policy (another origin), and failed (nothing listens).
    outs.push(d.ctl(&["request", "svc", &other.url("/echo")]).code(5));
    assert!(other.requests().is_empty());
    let dead = dead_origin();
    outs.push(
        d.ctl_in(
            &["add", "dead", "--header", "X-Key", "--origin", &dead],
            Some(format!("{first}\n").as_bytes()),
        )
        .ok(),
    );
    outs.push(
        d.ctl(&["request", "dead", &format!("{dead}/x"), "--max-time", "5"])
            .code(6),
    );
    outs.push(d.ctl(&["lock"]).ok());
    outs.push(
        d.ctl_in(
            &["unlock", "--passphrase-stdin"],
            Some(format!("{wrong}\n").as_bytes()),
        )
        .code(1),
    );
    outs.push(d.unlock().ok());
    outs.push(d.ctl(&["list", "--json"]).ok());
    outs.push(d.ctl(&["request", "nosuch", &up.url("/")]).code(4));
    outs.push(
        d.ctl_in(
            &["passwd", "--passphrase-stdin"],
            Some(format!("{wrong}\n{wrong}-new\n").as_bytes()),
        )
        .code(1),
    );

    let log = std::fs::read(&d.stderr_path).unwrap();
    let text = String::from_utf8_lossy(&log);
    // The check could find something: the log is verbose and long.
    assert!(text.lines().count() > 20, "log too short:\n{text}");
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "not at trace level:\n{text}"
    );
    assert!(text.contains("wrong passphrase"), "{text}");
    assert!(text.contains("audit: job"), "{text}");
    let hits = leaks(&log);
    assert!(hits.is_empty(), "in vaultd's log:\n{}", hits.join("\n"));
    for o in &outs {
        let hits = leaks(o.stderr.as_bytes());
        assert!(
            hits.is_empty(),
            "in vaultctl's stderr:\n{}",
            hits.join("\n")
        );
    }
    let errors: Vec<&str> = outs
        .iter()
        .map(|o| o.stderr.as_str())
        .filter(|e| !e.is_empty())
        .collect();
    assert!(errors.len() >= 5, "the failures said something: {errors:?}");
    let hits = leaks(&std::fs::read(&d.vault).unwrap());
    assert!(hits.is_empty(), "in the vault file:\n{}", hits.join("\n"));
    // Explicitly, the three secrets of this flow.
    for secret in [&first, &second, &wrong] {
        assert!(!text.contains(secret.as_str()));
    }
}

#[test]
fn leak_check_finds_a_planted_canary_in_a_daemon_log() {
    let d = Daemon::start("");
    let planted = canary("planted");
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&d.stderr_path)
        .unwrap();
    std::io::Write::write_all(&mut log, format!("oops {planted}\n").as_bytes()).unwrap();
    let hits = leaks(&std::fs::read(&d.stderr_path).unwrap());
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].contains("oops"), "{hits:?}");
    // Dropping the daemon fails the test that made it.
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(d)));
    assert!(dropped.is_err(), "drop did not fail on a planted canary");
    // The passphrase and base64 forms count too.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(PASSPHRASE);
    assert_eq!(
        leaks(format!("x {PASSPHRASE} y\n{b64}").as_bytes()).len(),
        2
    );
}

/// Runs a vaultctl command; its pid and output.
fn ctl_with_pid(d: &Daemon, args: &[&str]) -> (u32, Out) {
    let child = d
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    (
        pid,
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
    )
}

/// args, expected exit, then the audit fields: credential, method, origin,
/// path, status.
type Job<'a> = (Vec<String>, i32, &'a str, &'a str, String, &'a str, &'a str);

fn audit_lines(d: &Daemon) -> Vec<String> {
    d.log()
        .lines()
        .filter(|l| l.contains("audit: job"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn audit_logs_one_line_per_job_naming_caller_and_target_never_a_value() {
    let up = Upstream::plain();
    let other = Upstream::plain();
    let d = trace_daemon("audit = true\n");
    d.init();
    let token = canary("audited");
    d.add("svc", &token, &["--bearer", "--origin", &up.origin()])
        .ok();
    let dead = dead_origin();
    d.add(
        "dead",
        &canary("deadtoken"),
        &["--header", "X-Key", "--origin", &dead],
    )
    .ok();
    assert!(audit_lines(&d).is_empty(), "only jobs are audited");
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .unwrap();
    let exe = harness::bin("vaultctl").display().to_string();

    let jobs: Vec<Job> = vec![
        (
            vec![
                "request".into(),
                "svc".into(),
                up.url("/echo?secret=query"),
                "-H".into(),
                "X-Note: header-value-not-logged".into(),
            ],
            0,
            "svc",
            "GET",
            up.origin(),
            "/echo",
            "200",
        ),
        (
            vec![
                "request".into(),
                "svc".into(),
                up.url("/status/404"),
                "-d".into(),
                "body-not-logged".into(),
            ],
            0,
            "svc",
            "POST",
            up.origin(),
            "/status/404",
            "404",
        ),
        (
            vec!["request".into(), "svc".into(), other.url("/elsewhere")],
            5,
            "svc",
            "GET",
            other.origin(),
            "/elsewhere",
            "refused(PolicyRefused)",
        ),
        (
            vec![
                "request".into(),
                "dead".into(),
                format!("{dead}/down"),
                "-X".into(),
                "PUT".into(),
                "-d".into(),
                "x".into(),
            ],
            6,
            "dead",
            "PUT",
            dead.clone(),
            "/down",
            "failed(Upstream)",
        ),
        (
            vec!["request".into(), "nosuch".into(), up.url("/x")],
            4,
            "nosuch",
            "GET",
            up.origin(),
            "/x",
            "refused(NoSuchCredential)",
        ),
    ];
    for (i, (args, code, cred, method, origin, path, status)) in jobs.iter().enumerate() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (pid, out) = ctl_with_pid(&d, &args);
        assert_eq!(out.code, *code, "{args:?}: {}", out.stderr);
        let lines = audit_lines(&d);
        assert_eq!(
            lines.len(),
            i + 1,
            "one line per job:\n{}",
            lines.join("\n")
        );
        let line = &lines[i];
        let fields = format!(
            "audit: job pid={pid} uid={uid} exe={exe} credential={cred} method={method} origin={origin} path={path} status={status}"
        );
        assert!(
            line.ends_with(&fields),
            "audit line\n  {line}\nexpected to end with\n  {fields}"
        );
    }
    let log = d.log();
    for never in [
        token.as_str(),
        "secret=query",
        "header-value-not-logged",
        "body-not-logged",
    ] {
        for line in audit_lines(&d) {
            assert!(!line.contains(never), "{never:?} in {line}");
        }
        if never == token {
            assert!(!log.contains(never));
        }
    }
    // Without `audit = true`, no audit lines.
    let quiet = Daemon::start("");
    quiet.init();
    quiet
        .add(
            "svc",
            &canary("quiet"),
            &["--bearer", "--origin", &up.origin()],
        )
        .ok();
    quiet.ctl(&["request", "svc", &up.url("/echo")]).ok();
    assert!(audit_lines(&quiet).is_empty());
}
