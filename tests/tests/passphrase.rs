//! Passphrase checks outside `unlock` (`passwd`, `keyfile create`) are as
//! slow to guess against as `unlock`, never run more than one Argon2id at a
//! time, and a vault file cannot ask for an unbounded Argon2id.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, PASSPHRASE, bin};

fn ready() -> Daemon {
    let d = Daemon::start("");
    d.init();
    d
}

/// A `passwd` client with a wrong old passphrase, not waited for.
fn wrong_passwd(d: &Daemon) -> Child {
    use std::io::Write;
    let mut c = Command::new(bin("vaultctl"))
        .env("VAULTD_SOCKET", &d.socket)
        .args(["passwd", "--passphrase-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"not the passphrase\nnew words\n")
        .unwrap();
    c
}

fn vm_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn concurrent_wrong_passwd_is_slowed_like_failed_unlocks() {
    let d = ready();
    let start = Instant::now();
    let clients: Vec<Child> = (0..4).map(|_| wrong_passwd(&d)).collect();
    for c in clients {
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("wrong passphrase"), "{err}");
    }
    let took = start.elapsed();
    // The unlock penalty schedule: 0.5 s + 1 s + 2 s + 4 s, one at a time.
    assert!(
        took >= Duration::from_millis(7_500),
        "4 wrong passwd guesses took only {took:?}"
    );
    // The right passphrase still works afterwards.
    d.ctl(&["lock"]).ok();
    d.unlock().ok();
    d.ctl_in(
        &["passwd", "--passphrase-stdin"],
        Some(format!("{PASSPHRASE}\nnew secret words\n").as_bytes()),
    )
    .ok();
}

#[test]
fn forty_concurrent_passwd_attempts_run_one_argon2_at_a_time() {
    let d = ready();
    let pid = d.pid();
    let clients: Vec<Child> = (0..40).map(|_| wrong_passwd(&d)).collect();
    // Unthrottled, all 40 derivations (64 MiB each) start within a second.
    let mut peak = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        peak = peak.max(vm_kib(pid, "VmHWM:").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(50));
    }
    for mut c in clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(peak > 0, "no VmHWM for vaultd");
    assert!(
        peak < 400 * 1024,
        "vaultd peaked at {} MiB under 40 concurrent passwd attempts",
        peak / 1024
    );
}

/// Offset of the passphrase slot's m_cost_kib: magic 8, version 2, slot
/// count 1, slot kind 1, body length 2.
const M_COST_AT: usize = 14;

#[test]
fn a_vault_asking_for_a_huge_argon2id_is_refused_quickly_and_left_alone() {
    for (at, value, name) in [
        (M_COST_AT, 4_000_000u32, "m_cost_kib"),
        (M_COST_AT + 4, 60, "t_cost"),
        (M_COST_AT + 8, 16, "p_cost"),
    ] {
        let d = ready();
        d.ctl(&["lock"]).ok();
        let mut bytes = std::fs::read(&d.vault).unwrap();
        bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        std::fs::write(&d.vault, &bytes).unwrap();
        let start = Instant::now();
        let out = d.unlock();
        let took = start.elapsed();
        assert_ne!(out.code, 0, "{name} = {value}: unlocked");
        assert!(
            out.stderr.contains(name),
            "{name} = {value}: message does not name it: {}",
            out.stderr
        );
        assert!(
            took < Duration::from_secs(2),
            "{name} = {value}: refusing took {took:?}"
        );
        assert_eq!(
            std::fs::read(&d.vault).unwrap(),
            bytes,
            "{name}: file changed"
        );
    }
}
