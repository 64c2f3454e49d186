//! Durability and concurrency (issue 4): nothing acknowledged is ever lost,
//! nothing half-written is ever read, one daemon per vault, clear errors
//! when the disk says no.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, bin};

/// A daemon with an initialized, unlocked vault; `extra` goes into config.toml.
fn ready(extra: &str) -> Daemon {
    let d = Daemon::start(extra);
    d.init();
    d
}

/// Runs a second vaultd on `d`'s vault and config with another socket; it
/// is expected to refuse and exit. Killed (and the test failed) if it is
/// still running after 20 s, instead of hanging the suite.
fn second_vaultd(d: &Daemon, socket: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(bin("vaultd"))
        .arg("--socket")
        .arg(socket)
        .arg("--vault")
        .arg(&d.vault)
        .arg("--config")
        .arg(&d.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a second vaultd on the same vault kept running");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[test]
fn second_daemon_on_the_same_vault_refuses_naming_file_and_socket() {
    let d = ready("");
    let other_socket = d.path("other.sock");
    let (code, err) = second_vaultd(&d, &other_socket);
    assert_eq!(code, Some(1));
    assert!(err.contains("in use by another vaultd"), "{err}");
    assert!(err.contains(&d.vault.display().to_string()), "{err}");
    assert!(
        err.contains(&format!("socket {}", d.socket.display())),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", d.pid())), "{err}");
    // The refused daemon did not bind (or replace) anything.
    assert!(!other_socket.exists());
    d.ctl(&["status"]).ok();
}

#[test]
fn vault_lock_survives_saves_and_is_released_by_kill_9() {
    let mut d = ready("");
    // Saves rename a new file over `vault`; the lock is on `vault.lock`
    // and must still hold afterwards.
    d.add(
        "m",
        &harness::canary("t"),
        &["--bearer", "--origin", "https://example.org"],
    )
    .ok();
    let (code, err) = second_vaultd(&d, &d.path("other.sock"));
    assert_eq!(code, Some(1), "{err}");
    // kill -9 leaves the lock file behind but the kernel drops the lock.
    d.kill();
    assert!(d.vault.with_file_name("vault.lock").exists());
    d.spawn();
    d.unlock().ok();
    d.ctl(&["list"]).ok();
}
