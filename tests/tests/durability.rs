//! Durability and concurrency (issue 4): nothing acknowledged is ever lost,
//! nothing half-written is ever read, one daemon per vault, clear errors
//! when the disk says no.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harness::{Daemon, Out, Upstream, bin, canary, count};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

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
        &canary("t"),
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

// ---------------------------------------------------------------------------
// Format fixtures (tests/fixtures/README.md)

const FIXTURE_PASSPHRASE: &str = "tokenvault fixture passphrase v1";
const FIXTURE_TOKEN: &str = "fixture-token-v1-7f3c9a1e5b2d4c6a";
/// The origin the fixture's credential is bound to.
const FIXTURE_ADDR: &str = "127.45.67.89:18089";

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fresh daemon whose vault file is a copy of fixture `name`.
fn daemon_with_fixture(name: &str) -> (Daemon, Vec<u8>) {
    let d = Daemon::start("");
    let bytes = fixture(name);
    std::fs::create_dir_all(d.vault.parent().unwrap()).unwrap();
    std::fs::write(&d.vault, &bytes).unwrap();
    std::fs::set_permissions(&d.vault, std::fs::Permissions::from_mode(0o600)).unwrap();
    (d, bytes)
}

fn unlock_fixture(d: &Daemon) -> Out {
    d.ctl_in(
        &["unlock", "--passphrase-stdin"],
        Some(format!("{FIXTURE_PASSPHRASE}\n").as_bytes()),
    )
}

#[test]
fn fixture_valid_v1_opens_and_its_credential_works() {
    let up = Upstream::plain_at(FIXTURE_ADDR);
    let (d, bytes) = daemon_with_fixture("valid-v1.vault");
    assert!(d.ctl(&["status"]).ok().text().contains("locked"));
    unlock_fixture(&d).ok();
    let list = d.ctl(&["list", "--json"]).ok().text();
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["name"], "fixture", "{list}");
    assert_eq!(v[0]["injection"], "bearer", "{list}");
    assert_eq!(v[0]["origins"][0], "http://127.45.67.89:18089", "{list}");
    assert_eq!(v[0]["created"], 1_795_000_000u64, "{list}");

    let out = d.ctl(&["request", "fixture", &up.url("/user"), "-f"]).ok();
    assert_eq!(out.text(), r#"{"id":"u1","name":"Ada"}"#);
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {FIXTURE_TOKEN}"))
    );
    // Opening and using it wrote nothing; the committed fixture is untouched.
    assert_eq!(std::fs::read(&d.vault).unwrap(), bytes);
    assert_eq!(fixture("valid-v1.vault"), bytes);
}

#[test]
fn fixture_broken_files_are_refused_and_never_overwritten() {
    for (name, expected) in [
        ("truncated.vault", "vault file is truncated"),
        (
            "wrong-magic.vault",
            "not a tokenvault vault file (bad magic)",
        ),
        ("flipped-tag.vault", "the file was modified or damaged"),
        ("future-version.vault", "created by a newer tokenvault"),
    ] {
        let (d, bytes) = daemon_with_fixture(name);
        let out = unlock_fixture(&d).code(1);
        assert!(
            out.stderr.starts_with("vaultctl: ") && out.stderr.contains(expected),
            "{name}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
        // Nothing gets to write over it.
        d.ctl_in(&["init", "--passphrase-stdin"], Some(b"new passphrase\n"))
            .code(1);
        d.add("x", "t", &["--bearer", "--origin", "https://example.org"])
            .code(3);
        let backup = d.path("backup");
        let out = d.ctl(&["backup", backup.to_str().unwrap()]);
        if name == "flipped-tag.vault" {
            // The header is intact and, locked, the daemon has no key to
            // check the contents: it copies the file as `cp` would.
            assert_eq!(out.code, 0, "{}", out.stderr);
            assert_eq!(std::fs::read(&backup).unwrap(), bytes);
        } else {
            let out = out.code(1);
            assert!(out.stderr.contains(expected), "{name}: {}", out.stderr);
            assert!(!backup.exists(), "{name}: a refused backup left a file");
        }
        assert_eq!(std::fs::read(&d.vault).unwrap(), bytes, "{name} rewritten");
        assert_eq!(fixture(name), bytes, "committed {name} changed");
        assert!(!d.log().contains("panicked"), "{}", d.log());
    }
}

// ---------------------------------------------------------------------------
// Backup and restore (docs/backup.md)

#[test]
fn backup_restores_into_a_fresh_daemon_and_its_token_works() {
    let up = Upstream::plain();
    let d = ready("");
    let t1 = canary("backed-up");
    let t2 = canary("after-backup");
    d.add("m", &t1, &["--bearer", "--origin", &up.origin()])
        .ok();
    d.add(
        "gone",
        &canary("g"),
        &["--bearer", "--origin", &up.origin()],
    )
    .ok();

    let file = d.path("vault.bak");
    let file_s = file.to_str().unwrap();
    let out = d.ctl(&["backup", file_s]).ok();
    assert!(out.stderr.contains(file_s), "{}", out.stderr);
    let backup = std::fs::read(&file).unwrap();
    assert_eq!(
        backup,
        std::fs::read(&d.vault).unwrap(),
        "same bytes, same format"
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(count(&backup, t1.as_bytes()), 0, "backup is encrypted");

    // Never overwrites, and leaves the existing file alone.
    let out = d.ctl(&["backup", file_s]).code(1);
    assert!(out.stderr.contains(file_s), "{}", out.stderr);
    assert!(out.stderr.contains("File exists"), "{}", out.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), backup);

    // Works while locked (no key needed for ciphertext).
    d.ctl(&["lock"]).ok();
    let locked_copy = d.path("locked.bak");
    d.ctl(&["backup", locked_copy.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&locked_copy).unwrap(), backup);
    d.unlock().ok();

    // Unlocked, the daemon checks the contents before handing them out.
    let good = std::fs::read(&d.vault).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() - 20;
    bad[mid] ^= 0x01;
    std::fs::write(&d.vault, &bad).unwrap();
    let damaged = d.path("damaged.bak");
    let out = d.ctl(&["backup", damaged.to_str().unwrap()]).code(1);
    assert!(out.stderr.contains("modified or damaged"), "{}", out.stderr);
    assert!(!damaged.exists());
    std::fs::write(&d.vault, &good).unwrap();

    // Later changes are not in the backup.
    d.ctl_in(&["rotate", "m"], Some(format!("{t2}\n").as_bytes()))
        .ok();
    d.ctl(&["remove", "gone"]).ok();
    d.add("new", &canary("n"), &["--bearer", "--origin", &up.origin()])
        .ok();

    // Restore as docs/backup.md says: stop, copy, start, unlock.
    let mut fresh = Daemon::start("");
    fresh.kill();
    std::fs::create_dir_all(fresh.vault.parent().unwrap()).unwrap();
    std::fs::copy(&file, &fresh.vault).unwrap();
    fresh.spawn();
    fresh.unlock().ok();
    let list = fresh.ctl(&["list"]).ok().text();
    assert!(list.contains("gone") && !list.contains("new"), "{list}");
    fresh.ctl(&["request", "m", &up.url("/echo?restored")]).ok();
    let seen = up
        .requests()
        .into_iter()
        .find(|r| r.target == "/echo?restored")
        .unwrap();
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {t1}")));
}

#[test]
fn backup_without_a_vault_or_daemon_is_a_clear_error() {
    let d = Daemon::start("");
    let file = d.path("b");
    let out = d.ctl(&["backup", file.to_str().unwrap()]).code(1);
    assert!(out.stderr.contains("nothing to back up"), "{}", out.stderr);
    assert!(!file.exists());
    let out = harness::daemon::run(
        Command::new(bin("vaultctl"))
            .arg("--socket")
            .arg(d.path("nope.sock"))
            .arg("backup")
            .arg(&file),
        None,
    )
    .code(2);
    assert!(out.stderr.contains("nope.sock"), "{}", out.stderr);
    assert!(!file.exists());
}

// ---------------------------------------------------------------------------
// Crash safety: kill -9 at random moments while clients change the vault

/// xorshift64*: the tests crate has no `rand`. The seed is printed (and can
/// be set with TOKENVAULT_CRASH_SEED) so a failure's choices can be replayed;
/// its timing cannot.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .unwrap();
    u64::from_le_bytes(b)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// One change a client makes; each value is unique.
#[derive(Debug, Clone)]
enum Op {
    Add(String, String),
    Rotate(String, String),
    Remove(String),
}

impl Op {
    fn name(&self) -> &str {
        match self {
            Op::Add(n, _) | Op::Rotate(n, _) | Op::Remove(n) => n,
        }
    }

    /// The credential's value once the op is applied (`None`: absent).
    fn after(&self) -> Option<String> {
        match self {
            Op::Add(_, v) | Op::Rotate(_, v) => Some(v.clone()),
            Op::Remove(_) => None,
        }
    }
}

/// A client thread's model: what the daemon acknowledged for its own
/// names, and the op that was in flight when the daemon died (its outcome
/// is unknown: applied or not, both are fine, half is not).
struct Worker {
    names: Vec<String>,
    acked: BTreeMap<String, String>,
    pending: Option<Op>,
    rng: Rng,
    acked_ops: usize,
}

/// Failures a dying daemon may cause: refused connection (exit 2) or a
/// connection cut before the answer. Anything else is a real error.
fn is_daemon_gone(out: &Out) -> bool {
    out.code == 2
        || (out.code == 1
            && (out.stderr.contains("lost connection to vaultd")
                || out
                    .stderr
                    .contains("closed the connection without answering")))
}

impl Worker {
    fn run(&mut self, d: &Daemon, origin: &str, killing: &AtomicBool) {
        while !killing.load(Ordering::SeqCst) {
            let name = self.names[self.rng.below(self.names.len() as u64) as usize].clone();
            let op = match self.acked.contains_key(&name) {
                false => Op::Add(name, canary("add")),
                true if self.rng.below(3) == 0 => Op::Remove(name),
                true => Op::Rotate(name, canary("rot")),
            };
            let out = match &op {
                Op::Add(n, v) => d.add(n, v, &["--header", "X-Token", "--origin", origin]),
                Op::Rotate(n, v) => d.ctl_in(&["rotate", n], Some(format!("{v}\n").as_bytes())),
                Op::Remove(n) => d.ctl(&["remove", n]),
            };
            if out.code == 0 {
                match op.after() {
                    Some(v) => self.acked.insert(op.name().to_owned(), v),
                    None => self.acked.remove(op.name()),
                };
                self.acked_ops += 1;
                continue;
            }
            assert!(
                killing.load(Ordering::SeqCst) && is_daemon_gone(&out),
                "{op:?} failed while the daemon was up (exit {}): {}",
                out.code,
                out.stderr
            );
            self.pending = Some(op);
            return;
        }
    }
}

/// The value each live credential really sends, read off the upstream.
fn observe(d: &Daemon, up: &Upstream, round: usize) -> BTreeMap<String, String> {
    let list = d.ctl(&["list", "--json"]).ok().text();
    let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&list)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    std::thread::scope(|s| {
        for name in &names {
            s.spawn(move || {
                d.ctl(&[
                    "request",
                    name,
                    &up.url(&format!("/echo?r={round}&n={name}")),
                ])
                .ok();
            });
        }
    });
    let reqs = up.requests();
    names
        .into_iter()
        .map(|name| {
            let target = format!("/echo?r={round}&n={name}");
            let r = reqs.iter().find(|r| r.target == target).unwrap();
            (name, r.header("x-token").unwrap())
        })
        .collect()
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    const WORKERS: usize = 4;
    const NAMES_PER_WORKER: usize = 3;
    let rounds = env_u64("TOKENVAULT_CRASH_ROUNDS").unwrap_or(30) as usize;
    let seed = env_u64("TOKENVAULT_CRASH_SEED").unwrap_or_else(random_seed);
    eprintln!("crash test: {rounds} rounds, seed {seed} (TOKENVAULT_CRASH_ROUNDS / _SEED)");
    let mut rng = Rng::new(seed);
    let started = Instant::now();

    let up = Upstream::plain();
    let origin = up.origin();
    let mut d = ready("");
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|w| Worker {
            names: (0..NAMES_PER_WORKER)
                .map(|i| format!("w{w}-c{i}"))
                .collect(),
            acked: BTreeMap::new(),
            pending: None,
            rng: Rng::new(rng.next()),
            acked_ops: 0,
        })
        .collect();
    let (mut applied, mut not_applied, mut killed_mid_write) = (0, 0, 0);

    for round in 0..rounds {
        let killing = AtomicBool::new(false);
        let delay = Duration::from_millis(30 + rng.below(370));
        std::thread::scope(|s| {
            for w in workers.iter_mut() {
                let (d, origin, killing) = (&d, &origin, &killing);
                s.spawn(move || w.run(d, origin, killing));
            }
            std::thread::sleep(delay);
            killing.store(true, Ordering::SeqCst);
            d.signal("KILL");
        });
        d.kill(); // reap
        assert!(d.vault.exists(), "round {round}: the vault file is gone");
        if d.vault.with_file_name("vault.tmp").exists() {
            killed_mid_write += 1;
        }

        d.spawn();
        let out = d.unlock();
        assert_eq!(
            out.code, 0,
            "round {round} (seed {seed}): the vault does not unlock after kill -9: {}",
            out.stderr
        );
        let seen = observe(&d, &up, round);
        let mut expected_names = 0;
        for w in workers.iter_mut() {
            let pending = w.pending.take();
            for name in &w.names {
                let now = seen.get(name).cloned();
                let before = w.acked.get(name).cloned();
                let in_flight = pending.as_ref().filter(|op| op.name() == name);
                let ok = now == before || in_flight.is_some_and(|op| now == op.after());
                assert!(
                    ok,
                    "round {round} (seed {seed}): {name} is {now:?}; acknowledged {before:?}, \
                     in flight {in_flight:?}"
                );
                if let Some(op) = in_flight {
                    if now == op.after() && now != before {
                        applied += 1;
                    } else {
                        not_applied += 1;
                    }
                }
                match now {
                    Some(v) => {
                        expected_names += 1;
                        w.acked.insert(name.clone(), v)
                    }
                    None => w.acked.remove(name),
                };
            }
        }
        assert_eq!(seen.len(), expected_names, "unknown credentials: {seen:?}");
    }
    assert!(!d.log().contains("panicked"), "{}", d.log());
    let acked: usize = workers.iter().map(|w| w.acked_ops).sum();
    eprintln!(
        "crash test: {rounds} rounds in {:.1?}: {acked} acknowledged changes all kept; \
         {} in flight at a kill ({applied} applied, {not_applied} not), none half-applied; \
         {killed_mid_write} kills left a vault.tmp behind (killed mid-save)",
        started.elapsed(),
        applied + not_applied
    );
    assert!(acked >= rounds, "too few changes to mean anything: {acked}");
}

// ---------------------------------------------------------------------------
// Concurrent clients

#[test]
fn fifty_concurrent_adds_all_land() {
    let mut d = ready("");
    let names: Vec<String> = (0..50).map(|i| format!("c{i:02}")).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let d = &d;
                s.spawn(move || {
                    d.add(
                        n,
                        &canary("t"),
                        &["--bearer", "--origin", "https://example.org"],
                    )
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().ok();
        }
    });
    let listed = |d: &Daemon| -> Vec<String> {
        let list = d.ctl(&["list", "--json"]).ok().text();
        let v: serde_json::Value = serde_json::from_str(&list).unwrap();
        let mut names: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed(&d), names);
    // And on disk, not just in memory.
    d.kill();
    d.spawn();
    d.unlock().ok();
    assert_eq!(listed(&d), names);
}

#[test]
fn jobs_in_flight_during_rotation_use_old_or_new_value_never_a_mix() {
    let up = Upstream::plain();
    let d = ready("");
    let values: Vec<String> = (0..5).map(|i| canary(&format!("v{i}"))).collect();
    d.add(
        "m",
        &values[0],
        &["--header", "X-Api-Key", "--origin", &up.origin()],
    )
    .ok();
    let first_rotation = AtomicBool::new(false);
    // Waits below give up at this deadline, so a failing job fails the
    // test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(60);
    std::thread::scope(|s| {
        let jobs: Vec<_> = (0..64)
            .map(|i| {
                let (d, up, first_rotation) = (&d, &up, &first_rotation);
                s.spawn(move || {
                    // The second half starts only after the first rotation,
                    // so both values are in use while jobs are in flight.
                    while i >= 32
                        && !first_rotation.load(Ordering::SeqCst)
                        && Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    d.ctl(&["request", "m", &up.url(&format!("/slow?ms=300&i={i}"))])
                })
            })
            .collect();
        // Rotate while the first jobs are in flight at the upstream.
        while up.requests().len() < 16 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        for v in &values[1..] {
            d.ctl_in(&["rotate", "m"], Some(format!("{v}\n").as_bytes()))
                .ok();
            first_rotation.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
        }
        for j in jobs {
            let out = j.join().unwrap().ok();
            assert_eq!(out.text(), "slow");
        }
    });
    let reqs = up.requests();
    assert_eq!(reqs.len(), 64);
    let mut used = BTreeMap::<usize, usize>::new();
    for r in &reqs {
        let got = r.header("x-api-key").unwrap();
        let i = values
            .iter()
            .position(|v| *v == got)
            .unwrap_or_else(|| panic!("upstream saw a value that was never set: {got:?}"));
        *used.entry(i).or_default() += 1;
    }
    eprintln!("jobs per value (index of rotation): {used:?}");
    assert!(used.len() >= 2, "both old and new values in use: {used:?}");
    // Once a rotation is acknowledged, new jobs use the new value.
    d.ctl(&["request", "m", &up.url("/echo?after")]).ok();
    let last = up.requests().into_iter().last().unwrap();
    assert_eq!(last.header("x-api-key").as_ref(), values.last());
}

// ---------------------------------------------------------------------------
// Disk trouble: a failed save changes nothing, in memory or on disk

/// A small tmpfs mounted (as root) on `path`, unmounted (lazily, so a
/// daemon still holding a file there cannot block it) on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(path.to_owned()))
    }

    fn remount(&self, opt: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {opt} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn skip(test: &str, why: &str) {
    eprintln!("skipping {test}: {why}");
}

/// An unlocked daemon holding credential `keep` (value returned), bound to
/// `up`, whose vault lives on a fresh tmpfs of `size`.
fn daemon_on_tmpfs(test: &str, up: &Upstream, size: &str) -> Option<(Daemon, Tmpfs, String)> {
    if !harness::is_root() {
        skip(test, "needs root to mount a tmpfs");
        return None;
    }
    let mut d = ready("");
    let keep = canary("keep");
    d.add(
        "keep",
        &keep,
        &["--header", "X-Token", "--origin", &up.origin()],
    )
    .ok();
    d.kill();
    let vault = std::fs::read(&d.vault).unwrap();
    let mnt = match Tmpfs::mount(d.vault.parent().unwrap(), size) {
        Ok(m) => m,
        Err(e) => {
            skip(test, &format!("cannot mount a tmpfs: {e}"));
            return None;
        }
    };
    std::fs::write(&d.vault, &vault).unwrap();
    std::fs::set_permissions(&d.vault, std::fs::Permissions::from_mode(0o600)).unwrap();
    d.spawn();
    d.unlock().ok();
    Some((d, mnt, keep))
}

/// The value credential `name` sends.
fn token_sent(d: &Daemon, up: &Upstream, name: &str, tag: &str) -> String {
    let target = format!("/echo?{tag}");
    d.ctl(&["request", name, &up.url(&target)]).ok();
    let r = up
        .requests()
        .into_iter()
        .find(|r| r.target == target)
        .unwrap();
    r.header("x-token").unwrap()
}

/// While saves fail: add, rotate and remove each fail with one line that
/// names the file and the OS error; nothing changes in memory (list, the
/// value used) or on disk (same bytes, no tmp file left).
fn check_saves_refused(d: &Daemon, up: &Upstream, keep: &str, os_error: &str) {
    let before = std::fs::read(&d.vault).unwrap();
    let tmp = d.vault.with_file_name("vault.tmp");
    let tmp_s = tmp.display().to_string();
    let attempts = [
        d.add(
            "new",
            &canary("n"),
            &["--header", "X-Token", "--origin", &up.origin()],
        ),
        d.ctl_in(
            &["rotate", "keep"],
            Some(format!("{}\n", canary("r")).as_bytes()),
        ),
        d.ctl(&["remove", "keep"]),
    ];
    for out in attempts {
        let out = out.code(1);
        assert!(out.stderr.starts_with("vaultctl: "), "{}", out.stderr);
        assert!(
            out.stderr.contains(&tmp_s),
            "names the file: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(os_error),
            "names the error: {}",
            out.stderr
        );
        assert!(out.stderr.contains("not changed"), "{}", out.stderr);
        assert_eq!(out.stderr.trim_end().lines().count(), 1, "{}", out.stderr);
    }
    let list = d.ctl(&["list"]).ok().text();
    assert!(list.contains("keep") && !list.contains("new"), "{list}");
    assert_eq!(token_sent(d, up, "keep", "during"), keep);
    assert_eq!(std::fs::read(&d.vault).unwrap(), before, "vault rewritten");
    assert!(!tmp.exists(), "{tmp_s} left behind");
}

/// After trouble: the untouched file still unlocks in a new daemon and
/// holds exactly the acknowledged state.
fn check_still_unlocks(d: &mut Daemon, up: &Upstream, keep: &str, via: &[&str]) {
    d.kill();
    d.spawn_via(via);
    d.unlock().ok();
    let list = d.ctl(&["list"]).ok().text();
    assert!(list.contains("keep") && !list.contains("new"), "{list}");
    assert_eq!(token_sent(d, up, "keep", "restarted"), keep);
}

/// Once the disk is fine again, saves work and the failed change stays gone.
fn check_recovers(d: &Daemon, up: &Upstream) {
    d.add(
        "later",
        &canary("l"),
        &["--header", "X-Token", "--origin", &up.origin()],
    )
    .ok();
    let list = d.ctl(&["list"]).ok().text();
    assert!(list.contains("keep") && list.contains("later"), "{list}");
    assert!(!list.contains("new"), "{list}");
}

#[test]
fn failed_save_on_a_full_disk_changes_nothing() {
    let test = "failed_save_on_a_full_disk_changes_nothing";
    let up = Upstream::plain();
    let Some((mut d, _mnt, keep)) = daemon_on_tmpfs(test, &up, "128k") else {
        return;
    };
    let filler = d.vault.with_file_name("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = [0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    check_saves_refused(&d, &up, &keep, "No space left on device (os error 28)");
    check_still_unlocks(&mut d, &up, &keep, &[]);
    std::fs::remove_file(&filler).unwrap();
    check_recovers(&d, &up);
}

#[test]
fn failed_save_on_a_read_only_filesystem_changes_nothing() {
    let test = "failed_save_on_a_read_only_filesystem_changes_nothing";
    let up = Upstream::plain();
    let Some((mut d, mnt, keep)) = daemon_on_tmpfs(test, &up, "1m") else {
        return;
    };
    // The running daemon holds vault.lock open for writing, which blocks a
    // read-only remount: restart it on the read-only vault. It takes the
    // lock read-only and serves a vault it cannot change.
    d.kill();
    mnt.remount("ro");
    d.spawn();
    d.unlock().ok();
    check_saves_refused(&d, &up, &keep, "Read-only file system (os error 30)");
    check_still_unlocks(&mut d, &up, &keep, &[]);
    mnt.remount("rw");
    check_recovers(&d, &up);
}

#[test]
fn failed_save_in_a_read_only_directory_is_permission_denied_and_changes_nothing() {
    let test = "failed_save_in_a_read_only_directory_is_permission_denied_and_changes_nothing";
    // Root ignores directory permissions; run vaultd as root without
    // CAP_DAC_OVERRIDE instead (uid 0 keeps vaultctl's peer check happy).
    let via: &[&str] = if harness::is_root() {
        &[
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
        ]
    } else {
        &[]
    };
    if !via.is_empty() {
        let probe = Command::new(via[0]).args(&via[1..]).arg("true").output();
        if !probe.is_ok_and(|o| o.status.success()) {
            skip(
                test,
                "running as root and cannot drop CAP_DAC_OVERRIDE with setpriv (util-linux)",
            );
            return;
        }
    }
    let up = Upstream::plain();
    let mut d = Daemon::start("");
    d.kill();
    d.spawn_via(via);
    d.init();
    let keep = canary("keep");
    d.add(
        "keep",
        &keep,
        &["--header", "X-Token", "--origin", &up.origin()],
    )
    .ok();
    let dir = d.vault.parent().unwrap().to_owned();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    check_saves_refused(&d, &up, &keep, "Permission denied (os error 13)");
    check_still_unlocks(&mut d, &up, &keep, via);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    check_recovers(&d, &up);
}
