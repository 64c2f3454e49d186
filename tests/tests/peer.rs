//! Who may talk to vaultd, and who may look inside it (DESIGN "Security
//! properties" 1 and 2): vaultd runs as a throwaway unprivileged user and
//! is approached by root, by a second user and by its own user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::{Daemon, PASSPHRASE, TestUser};

fn skip(test: &str, why: &str) {
    eprintln!("skipping {test}: {why}");
}

/// Two throwaway users, or the reason there cannot be any.
fn users(test: &str) -> Option<(TestUser, TestUser)> {
    if !harness::is_root() {
        skip(test, "needs root to create users and switch uids");
        return None;
    }
    match (TestUser::create("a"), TestUser::create("b")) {
        (Ok(a), Ok(b)) => Some((a, b)),
        (Err(e), _) | (_, Err(e)) => {
            skip(test, &e);
            None
        }
    }
}

/// vaultd running as `user`, its temp dir owned by that user.
fn daemon_as(user: &TestUser, config: &str) -> Daemon {
    let mut d = Daemon::start(config);
    d.kill();
    user.own(d.dir());
    let via = user.via();
    let via: Vec<&str> = via.iter().map(String::as_str).collect();
    d.spawn_via(&via);
    d
}

/// Lets every uid reach the socket through the file system (what an admin
/// does with an ACL for `allow_uids`), so that what is tested next is the
/// daemon's own SO_PEERCRED check.
fn open_up_socket(d: &Daemon) {
    let mut dir = d.socket.parent().unwrap();
    loop {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
        if dir == d.dir() {
            break;
        }
        dir = dir.parent().unwrap();
    }
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
}

fn stdin_pass() -> Vec<u8> {
    format!("{PASSPHRASE}\n").into_bytes()
}

#[track_caller]
fn assert_one_clear_line(stderr: &str) {
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with("vaultctl: "), "{stderr:?}");
    assert!(
        !stderr.contains("ErrorReply") && !stderr.contains("code:"),
        "no debug dump: {stderr:?}"
    );
}

#[test]
fn only_the_daemons_own_uid_may_connect_others_are_refused_and_logged() {
    let test = "only_the_daemons_own_uid_may_connect_others_are_refused_and_logged";
    let Some((a, b)) = users(test) else { return };
    let d = daemon_as(&a, "");
    // Its own uid: served.
    d.ctl_via(
        &a.via(),
        &["init", "--passphrase-stdin"],
        Some(&stdin_pass()),
    )
    .ok();
    let st = d.ctl_via(&a.via(), &["status", "--json"], None).ok();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["state"], "unlocked");
    assert_eq!(v["pid"].as_u64(), Some(u64::from(d.pid())));

    // Root is not the daemon's uid: the peer check refuses it, with one
    // line naming both uids, and a log line.
    let out = d.ctl(&["status"]).code(1);
    eprintln!("root is told: {}", out.stderr.trim_end());
    assert_one_clear_line(&out.stderr);
    assert!(out.stderr.contains("uid 0"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("uid {}", a.uid)),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    let log = d.log();
    assert!(
        log.contains("refused a connection from uid 0 "),
        "no log line for the refused root connection:\n{log}"
    );
    // Nothing a refused peer asks for happens.
    let out = d.ctl(&["lock"]).code(1);
    assert_one_clear_line(&out.stderr);
    let st = d.ctl_via(&a.via(), &["status", "--json"], None).ok();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["state"], "unlocked", "root's lock was refused");

    // A second user: the 0700 directory and 0600 socket stop it first...
    let out = d.ctl_via(&b.via(), &["status"], None);
    eprintln!("another user is told: {}", out.stderr.trim_end());
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("permission denied")
            && out.stderr.contains(&format!("owned by uid {}", a.uid)),
        "{}",
        out.stderr
    );
    assert_one_clear_line(&out.stderr);
    // ...and with the file system opened up, the daemon's peer check does.
    open_up_socket(&d);
    let out = d.ctl_via(&b.via(), &["status"], None).code(1);
    assert_one_clear_line(&out.stderr);
    assert!(
        out.stderr
            .contains(&format!("uid {} is not allowed", b.uid)),
        "{}",
        out.stderr
    );
    assert!(
        d.log()
            .contains(&format!("refused a connection from uid {} ", b.uid)),
        "no log line for uid {}:\n{}",
        b.uid,
        d.log()
    );
    // The daemon's own user is still served.
    d.ctl_via(&a.via(), &["list"], None).ok();
}

#[test]
fn allow_uids_admits_a_listed_uid_and_no_other() {
    let test = "allow_uids_admits_a_listed_uid_and_no_other";
    let Some((a, b)) = users(test) else { return };
    let d = daemon_as(&a, &format!("allow_uids = [{}]\n", b.uid));
    open_up_socket(&d);
    d.ctl_via(
        &a.via(),
        &["init", "--passphrase-stdin"],
        Some(&stdin_pass()),
    )
    .ok();
    let st = d.ctl_via(&b.via(), &["status", "--json"], None).ok();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["state"], "unlocked");
    d.ctl_via(&b.via(), &["list", "--json"], None).ok();
    assert!(!d.log().contains(&format!("from uid {} ", b.uid)));
    // Root is still not listed.
    let out = d.ctl(&["status"]).code(1);
    assert!(
        out.stderr.contains("uid 0 is not allowed"),
        "{}",
        out.stderr
    );
}

#[test]
fn allow_uids_lets_a_listed_uid_use_credentials_and_nothing_more() {
    let test = "allow_uids_lets_a_listed_uid_use_credentials_and_nothing_more";
    let Some((a, b)) = users(test) else { return };
    let up = harness::Upstream::plain();
    let d = daemon_as(&a, &format!("allow_uids = [{}]\n", b.uid));
    open_up_socket(&d);
    let owner = a.via();
    d.ctl_via(&owner, &["init", "--passphrase-stdin"], Some(&stdin_pass()))
        .ok();
    let token = harness::canary("guest");
    d.ctl_via(
        &owner,
        &["add", "svc", "--header", "X-Key", "--origin", &up.origin()],
        Some(token.as_bytes()),
    )
    .ok();
    let guest = b.via();
    // Using the credential: allowed.
    d.ctl_via(&guest, &["request", "svc", &up.url("/bytes"), "-f"], None)
        .ok();
    d.ctl_via(&guest, &["explain", "svc", &up.url("/x")], None)
        .ok();
    d.ctl_via(&guest, &["list"], None).ok();
    d.ctl_via(&guest, &["status"], None).ok();
    // Managing the vault: refused by the daemon, exit 5, logged.
    let backup = format!("/tmp/{test}-{}.bak", std::process::id());
    for (what, args) in [
        ("lock", vec!["lock"]),
        ("remove", vec!["remove", "svc"]),
        ("backup", vec!["backup", backup.as_str()]),
        // Which stored value a file holds is the owner's to know.
        ("scan", vec!["scan", "/etc/hostname"]),
    ] {
        let out = d.ctl_via(&guest, &args, None).code(5);
        assert!(
            out.stderr.contains("may only use credentials"),
            "{what}: {}",
            out.stderr
        );
        assert!(
            d.log()
                .contains(&format!("refused `{what}` from uid {}", b.uid)),
            "{what}: {}",
            d.log()
        );
    }
    assert!(!Path::new(&backup).exists());
    // Those that carry a secret are refused too (by the daemon, or before
    // any secret is sent, by vaultctl's own check of the peer's uid).
    for args in [
        vec!["rotate", "svc"],
        vec![
            "add",
            "mine",
            "--header",
            "X-Key",
            "--origin",
            "http://127.0.0.1:9",
        ],
        vec!["passwd", "--passphrase-stdin"],
        vec!["unlock", "--passphrase-stdin"],
    ] {
        let out = d.ctl_via(&guest, &args, Some(b"guest-own-token\nnew-pass\n"));
        assert_ne!(out.code, 0, "{args:?} was accepted");
    }
    let import = [
        "import",
        "-",
        "--map",
        "K=mine",
        "--bearer",
        "--origin",
        "http://127.0.0.1:9",
    ];
    let out = d.ctl_via(&guest, &import, Some(b"K=guest-own-token\n"));
    assert_ne!(out.code, 0, "import was accepted");
    // Nothing changed: still unlocked, one credential, the owner's token.
    let v: serde_json::Value =
        serde_json::from_slice(&d.ctl_via(&owner, &["status", "--json"], None).ok().stdout)
            .unwrap();
    assert_eq!(v["state"], "unlocked");
    assert_eq!(v["credentials"], 1);
    d.ctl_via(&guest, &["request", "svc", &up.url("/bytes"), "-f"], None)
        .ok();
    let last = up.requests().pop().unwrap();
    assert_eq!(last.header("x-key").as_deref(), Some(token.as_str()));
    d.ctl_via(
        &owner,
        &["passwd", "--passphrase-stdin"],
        Some(format!("{PASSPHRASE}\n{PASSPHRASE}2\n").as_bytes()),
    )
    .ok();
}

/// Runs `script` with `sh -c` as `user`; (success, stdout+stderr).
fn sh_as(user: &TestUser, script: &str) -> (bool, String) {
    let out = user
        .command("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn proc_owner(pid: u32, file: &str) -> u32 {
    std::fs::metadata(Path::new(&format!("/proc/{pid}/{file}")))
        .unwrap()
        .uid()
}

#[test]
fn vaultd_is_not_dumpable_even_by_its_own_uid_and_makes_no_core_files() {
    let test = "vaultd_is_not_dumpable_even_by_its_own_uid_and_makes_no_core_files";
    let Some((a, _b)) = users(test) else { return };
    let d = daemon_as(&a, "");
    // A control process of the same user, without vaultd's hardening.
    // Killed on drop, before `a` is (so `userdel` finds no process left),
    // even when an assertion below fails.
    let control = KillOnDrop(
        a.command("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sleeper = control.0.id();
    let start = Instant::now();
    while proc_owner(sleeper, "status") != a.uid && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let vaultd = d.pid();

    let (ok, _) = sh_as(&a, &format!("cat /proc/{sleeper}/environ > /dev/null"));
    assert!(ok, "control: user can read its own process's environ");
    let (ok, _) = sh_as(&a, &format!("exec 3< /proc/{sleeper}/mem"));
    assert!(ok, "control: user can open its own process's mem");

    let (ok, text) = sh_as(&a, &format!("cat /proc/{vaultd}/environ > /dev/null"));
    assert!(!ok, "environ of vaultd readable by its uid");
    assert!(text.contains("Permission denied"), "{text}");
    let (ok, text) = sh_as(&a, &format!("exec 3< /proc/{vaultd}/mem"));
    assert!(!ok, "mem of vaultd opened by its uid");
    assert!(text.contains("Permission denied"), "{text}");

    // PR_SET_DUMPABLE 0: the kernel hands /proc/PID's files to root while
    // the process itself runs as the user.
    let status = std::fs::read_to_string(format!("/proc/{vaultd}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(2),
        Some(a.uid.to_string().as_str()),
        "vaultd runs as the user: {uid_line}"
    );
    assert_eq!(proc_owner(vaultd, "mem"), 0, "vaultd's mem owned by root");
    assert_eq!(
        proc_owner(sleeper, "mem"),
        a.uid,
        "control's mem is the user's"
    );

    let limits = std::fs::read_to_string(format!("/proc/{vaultd}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");

    drop(control);
    // vaultd stops before userdel runs.
    drop(d);
}

/// A child process killed and reaped when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
