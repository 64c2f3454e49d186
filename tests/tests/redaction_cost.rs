//! Redaction must cost time linear in the body and must not stall the
//! daemon's other clients (issue #11 item 11): a periodic token (`a` x 1024)
//! against a body that is one long run of `a` is the worst case for a
//! matcher that restarts after every hit.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, Upstream};

const JOBS: usize = 3;
const BODY: usize = 4 * 1024 * 1024;
/// A liveness bound, not a speed target: `status` does no work, so any
/// answer slower than this means the workers that answer clients are busy.
const STATUS_BOUND: Duration = Duration::from_secs(2);
/// How long the jobs may take in all before the test gives up on them.
const JOBS_BOUND: Duration = Duration::from_secs(120);

/// CPU time (user + system) vaultd has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(')').expect("stat format").1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux the tests run on.
    Duration::from_millis(ticks * 10)
}

#[test]
fn periodic_token_and_body_redact_in_linear_time_off_the_client_threads() {
    let up = Upstream::plain();
    let d = Daemon::start("");
    d.init();
    let token = "a".repeat(1024);
    d.add("p", &token, &["--bearer", "--origin", &up.origin()])
        .ok();
    let url = up.url(&format!("/big?n={BODY}&c=a"));
    let cpu_before = cpu_time(d.pid());

    let started = Instant::now();
    let mut jobs: Vec<(Child, std::path::PathBuf)> = (0..JOBS)
        .map(|i| {
            let out = d.path(&format!("out{i}.bin"));
            // Half buffered (`--json`), half streamed (`-o`): both paths.
            let mut c = d.cmd();
            c.args(["request", "p", url.as_str()]);
            if i % 2 == 0 {
                c.arg("-o").arg(&out);
            } else {
                c.arg("--print=json");
            }
            let child = c
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn vaultctl");
            (child, out)
        })
        .collect();

    // While the jobs run, `status` must keep answering promptly.
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while jobs
        .iter_mut()
        .any(|(c, _)| c.try_wait().unwrap().is_none())
        && started.elapsed() < JOBS_BOUND
    {
        let t = Instant::now();
        let mut status = d
            .cmd()
            .arg("status")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn status");
        let answered = loop {
            if let Some(s) = status.try_wait().unwrap() {
                break s.success();
            }
            if t.elapsed() > STATUS_BOUND * 5 {
                let _ = status.kill();
                let _ = status.wait();
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = t.elapsed();
        probes += 1;
        slowest = slowest.max(took);
        assert!(
            answered && took < STATUS_BOUND,
            "`vaultctl status` took {took:?} (answered: {answered}) while {JOBS} redaction-heavy jobs ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut unfinished = 0;
    for (c, _) in jobs.iter_mut() {
        if c.try_wait().unwrap().is_none() {
            unfinished += 1;
        }
    }
    for (c, _) in jobs.iter_mut() {
        let _ = c.kill();
    }
    assert_eq!(unfinished, 0, "jobs still running after {JOBS_BOUND:?}");
    let wall = started.elapsed();
    let cpu = cpu_time(d.pid()).saturating_sub(cpu_before);
    eprintln!(
        "{JOBS} jobs: wall {wall:?}, vaultd CPU {cpu:?} ({:?} per job); {probes} status probes, slowest {slowest:?}",
        cpu / JOBS as u32
    );

    for (i, (c, out)) in jobs.into_iter().enumerate() {
        let o = c.wait_with_output().expect("wait");
        assert!(
            o.status.success(),
            "job {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let body = if i % 2 == 0 {
            std::fs::read(&out).expect("output file")
        } else {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
            v["body"].as_str().expect("text body").as_bytes().to_vec()
        };
        // One run of echoes, one mark: nothing of the body survives.
        assert_eq!(
            String::from_utf8_lossy(&body),
            "[redacted]",
            "job {i}: body not fully redacted"
        );
    }
    d.assert_log_clean();
}
