//! systemd integration (issue 5): the user units (verify, sandbox exposure),
//! socket activation, sd_notify READY/STOPPING, unattended unlock from a
//! credential, and `./install.sh` into a temporary HOME.
//!
//! Tests that need `systemd-analyze` or `systemd-socket-activate` print why
//! and skip when the tool is missing; `.ci/run` installs both (Debian package
//! `systemd`), so in CI they always run.

use std::ffi::OsString;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{Daemon, PASSPHRASE, Upstream, bin, canary, count};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn unit(name: &str) -> PathBuf {
    repo().join("systemd").join(name)
}

/// The tool's path, or `None` after printing why the test skips.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIP: {name} not installed (apt-get install systemd; .ci/run does)");
    }
    found
}

/// A home with `.local/bin/vaultd` (the units' `ExecStart=`) and a runtime
/// dir, which `systemd-analyze --user` needs even offline.
struct UnitEnv {
    dir: tempfile::TempDir,
}

impl UnitEnv {
    fn new() -> UnitEnv {
        let dir = tempfile::tempdir().unwrap();
        let bin_dir = dir.path().join("home/.local/bin");
        std::fs::create_dir_all(&bin_dir).unwrap();
        std::os::unix::fs::symlink(bin("vaultd"), bin_dir.join("vaultd")).unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        UnitEnv { dir }
    }

    fn analyze(&self, analyze: &Path, args: &[&std::ffi::OsStr]) -> (i32, String) {
        let out = Command::new(analyze)
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("SYSTEMD_LOG_COLOR", "0")
            .env("SYSTEMD_PAGER", "")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .output()
            .expect("run systemd-analyze");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    }
}

#[test]
fn units_name_the_contract() {
    let socket = std::fs::read_to_string(unit("vaultd.socket")).unwrap();
    let service = std::fs::read_to_string(unit("vaultd.service")).unwrap();
    let lines = |s: &str| -> Vec<String> { s.lines().map(|l| l.trim().to_owned()).collect() };
    let (socket, service) = (lines(&socket), lines(&service));
    for want in [
        "ListenStream=%t/vaultd/vaultd.sock",
        "ListenStream=%t/vaultd/http.sock",
        "SocketMode=0600",
        "DirectoryMode=0700",
    ] {
        assert!(
            socket.iter().any(|l| l == want),
            "vaultd.socket lacks {want}"
        );
    }
    for want in [
        "Type=notify",
        "ExecStart=%h/.local/bin/vaultd",
        "LimitCORE=0",
        "LimitMEMLOCK=64M",
        "UMask=0077",
        "ReadWritePaths=-%h/.local/share/vaultd",
    ] {
        assert!(
            service.iter().any(|l| l == want),
            "vaultd.service lacks {want}"
        );
    }
    assert!(
        service
            .iter()
            .any(|l| l.starts_with("#LoadCredentialEncrypted=vaultd.key:")),
        "vaultd.service lacks the commented LoadCredentialEncrypted=vaultd.key: line"
    );
}

#[test]
fn units_verify_without_warnings() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let env = UnitEnv::new();
    let (code, text) = env.analyze(
        &analyze,
        &[
            "verify".as_ref(),
            "--user".as_ref(),
            unit("vaultd.socket").as_os_str(),
            unit("vaultd.service").as_os_str(),
        ],
    );
    assert_eq!(code, 0, "systemd-analyze verify failed:\n{text}");
    // An unknown key or a bad value only warns, with exit 0: any output at
    // all is a finding.
    assert!(
        text.trim().is_empty(),
        "systemd-analyze verify warned:\n{text}"
    );

    // The check above can see a warning: the same verify on a unit with a
    // typo prints one (and still exits 0).
    let bad = env.dir.path().join("vaultd.service");
    let text = std::fs::read_to_string(unit("vaultd.service")).unwrap();
    std::fs::write(&bad, text.replace("UMask=0077", "UMask=0077\nUmask=0077")).unwrap();
    let (_, text) = env.analyze(
        &analyze,
        &["verify".as_ref(), "--user".as_ref(), bad.as_os_str()],
    );
    assert!(
        text.contains("Umask"),
        "verify did not flag an unknown key: {text:?}"
    );
}

#[test]
fn service_exposure_is_at_most_2() {
    let Some(analyze) = tool("systemd-analyze") else {
        return;
    };
    let env = UnitEnv::new();
    let (code, text) = env.analyze(
        &analyze,
        &[
            "security".as_ref(),
            "--offline=true".as_ref(),
            "--user".as_ref(),
            "--no-pager".as_ref(),
            unit("vaultd.service").as_os_str(),
        ],
    );
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for vaultd.service:"))
        .unwrap_or_else(|| panic!("no exposure line (exit {code}):\n{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse the score in {line:?}"));
    eprintln!("vaultd.service exposure: {score}");
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
}

/// Waits for `cond`, polling, at most `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success(), "kill -{sig} {pid}");
}

fn wait_child(child: &mut Child, limit: Duration) -> Option<i32> {
    let mut code = None;
    wait_for(limit, || match child.try_wait() {
        Ok(Some(s)) => {
            code = Some(s.code().unwrap_or(-1));
            true
        }
        _ => false,
    });
    code
}

/// Kills the child on drop, so a failed assertion leaves no daemon behind.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vaultctl(socket: &Path, args: &[&str], stdin: Option<&str>) -> harness::Out {
    let mut cmd = Command::new(bin("vaultctl"));
    cmd.arg("--socket").arg(socket).args(args);
    harness::daemon::run(&mut cmd, stdin.map(str::as_bytes))
}

#[test]
fn socket_activation_serves_the_inherited_socket() {
    let Some(activate) = tool("systemd-socket-activate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vaultd.sock");
    let vault = dir.path().join("vault");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let log = dir.path().join("vaultd.log");
    let child = Command::new(activate)
        .arg("-l")
        .arg(&socket)
        .arg("-E")
        .arg("VAULTD_LOG=debug")
        .arg(bin("vaultd"))
        .arg("--socket")
        .arg(&socket)
        .arg("--vault")
        .arg(&vault)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn systemd-socket-activate");
    let mut child = Reap(child);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(10), || socket.exists()),
        "systemd-socket-activate did not create the socket: {}",
        read_log()
    );

    // The first connection makes systemd-socket-activate exec vaultd (same
    // pid) with LISTEN_FDS=1.
    let out = vaultctl(&socket, &["status", "--json"], None).ok();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(
        status["pid"].as_u64(),
        Some(u64::from(child.0.id())),
        "{status}"
    );
    assert!(
        read_log().contains("socket activation"),
        "vaultd did not use the inherited socket: {}",
        read_log()
    );
    vaultctl(
        &socket,
        &["init", "--passphrase-stdin"],
        Some(&format!("{PASSPHRASE}\n")),
    )
    .ok();
    let out = vaultctl(&socket, &["status"], None).ok();
    assert!(out.text().contains("vault: unlocked"), "{}", out.text());

    signal(child.0.id(), "TERM");
    let code = wait_child(&mut child.0, Duration::from_secs(10));
    assert_eq!(code, Some(0), "vaultd on SIGTERM: {}", read_log());
    // The socket file belongs to the service manager: vaultd neither
    // unlinked it nor bound its own.
    assert!(socket.exists(), "vaultd removed the inherited socket file");
    assert!(vault.exists());
}

/// A fake service manager: a datagram socket vaultd gets as NOTIFY_SOCKET.
struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind notify socket");
        Notify { sock, path }
    }

    /// The next message containing `want`, within `limit`; every message
    /// seen on the way is returned too.
    fn expect(&self, want: &str, limit: Duration) -> Result<String, Vec<String>> {
        let start = Instant::now();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while start.elapsed() < limit {
            let left = limit
                .saturating_sub(start.elapsed())
                .max(Duration::from_millis(10));
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if msg.lines().any(|l| l == want) {
                        return Ok(msg);
                    }
                    seen.push(msg);
                }
                Err(_) => break,
            }
        }
        Err(seen)
    }
}

#[test]
fn notify_ready_then_stopping_and_clean_exit_on_sigterm() {
    let notify_dir = tempfile::tempdir().unwrap();
    let notify = Notify::bind(notify_dir.path());
    let mut d = Daemon::start("");
    d.kill();
    d.env
        .push(("NOTIFY_SOCKET".into(), notify.path.clone().into_os_string()));
    d.spawn();
    let ready = notify
        .expect("READY=1", Duration::from_secs(10))
        .unwrap_or_else(|seen| panic!("no READY=1 (saw {seen:?}): {}", d.log()));
    assert!(ready.contains("STATUS=serving (locked)"), "{ready:?}");
    // READY means served: status answers at once.
    d.ctl(&["status"]).ok();

    d.signal("TERM");
    notify
        .expect("STOPPING=1", Duration::from_secs(10))
        .unwrap_or_else(|seen| panic!("no STOPPING=1 (saw {seen:?}): {}", d.log()));
    assert_eq!(
        d.wait_exit(Duration::from_secs(10)),
        Some(0),
        "vaultd did not exit 0 on SIGTERM: {}",
        d.log()
    );
    assert!(d.log().contains("keys dropped"), "{}", d.log());
}

#[test]
fn sigterm_during_a_job_exits_cleanly() {
    // A request in flight when SIGTERM arrives: the daemon still exits 0
    // promptly, and the client gets an answer or a clear error, never a
    // hang.
    let up = Upstream::plain();
    let d0 = Daemon::start("");
    d0.init();
    d0.add("c", &canary("t"), &["--bearer", "--origin", &up.origin()])
        .ok();
    let mut d = d0;
    let mut req = d
        .cmd()
        .args(["request", "c", &up.url("/slow?ms=3000")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(10)),
        Some(0),
        "vaultd did not exit 0 on SIGTERM: {}",
        d.log()
    );
    let code = wait_child(&mut req, Duration::from_secs(10));
    let _ = req.kill();
    let out = req.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(code.is_some(), "vaultctl hung after the daemon stopped");
    assert!(
        code == Some(0) || stderr.starts_with("vaultctl: "),
        "exit {code:?}, stderr {stderr:?}"
    );
}

/// A daemon with a vault, a credential bound to `up`, and a key file slot
/// whose key is at the returned path; the daemon is stopped.
fn vault_with_keyfile(up: &Upstream, token: &str) -> (Daemon, PathBuf) {
    let mut d = Daemon::start("");
    d.init();
    d.add(
        "mr",
        token,
        &["--preset", "microreact", "--origin", &up.origin()],
    )
    .ok();
    let key = d.path("made.key");
    d.ctl_in(
        &[
            "keyfile",
            "create",
            key.to_str().unwrap(),
            "--passphrase-stdin",
        ],
        Some(format!("{PASSPHRASE}\n").as_bytes()),
    )
    .ok();
    d.kill();
    (d, key)
}

#[test]
fn credentials_directory_key_unlocks_at_start() {
    let up = Upstream::plain();
    let token = canary("mr");
    let (mut d, key) = vault_with_keyfile(&up, &token);
    let creds = d.path("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::copy(&key, creds.join("vaultd.key")).unwrap();
    let key_bytes = std::fs::read(&key).unwrap();
    assert_eq!(key_bytes.len(), 32);
    let notify = Notify::bind(d.dir());
    d.env.push(("CREDENTIALS_DIRECTORY".into(), creds.into()));
    d.env
        .push(("NOTIFY_SOCKET".into(), notify.path.clone().into_os_string()));
    d.spawn();
    // READY comes only after the unlock.
    let ready = notify
        .expect("READY=1", Duration::from_secs(20))
        .unwrap_or_else(|seen| panic!("no READY=1 (saw {seen:?}): {}", d.log()));
    assert!(ready.contains("STATUS=serving (unlocked)"), "{ready:?}");

    // No `unlock`: the request just works.
    let out = d.ctl(&["request", "mr", &up.url("/api/x")]).ok();
    assert!(!out.text().is_empty());
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].header("access-token").as_deref(),
        Some(token.as_str())
    );
    assert!(d.log().contains("unlocked with credential"), "{}", d.log());
    assert_eq!(count(d.log().as_bytes(), &key_bytes), 0);
}

#[test]
fn config_unlock_keyfile_unlocks_and_a_bad_key_leaves_it_locked() {
    let up = Upstream::plain();
    let (mut d, key) = vault_with_keyfile(&up, &canary("mr"));
    std::fs::write(
        &d.config,
        format!("unlock_keyfile = \"{}\"\n", key.display()),
    )
    .unwrap();
    d.spawn();
    assert!(
        wait_for(Duration::from_secs(20), || d
            .ctl(&["status"])
            .text()
            .contains("vault: unlocked")),
        "config unlock_keyfile did not unlock: {}",
        d.log()
    );
    d.ctl(&["request", "mr", &up.url("/api/x")]).ok();
    d.kill();

    // A wrong key (right size) and a malformed one: one warning each, the
    // daemon keeps running locked, and the key never reaches the log.
    for (name, bytes) in [
        ("wrong.key", vec![0x5au8; 32]),
        ("short.key", vec![0x5a; 7]),
    ] {
        let bad = d.path(name);
        std::fs::write(&bad, &bytes).unwrap();
        let creds = d.path(&format!("creds-{name}"));
        std::fs::create_dir(&creds).unwrap();
        std::fs::copy(&bad, creds.join("vaultd.key")).unwrap();
        let _ = std::fs::remove_file(&d.stderr_path);
        d.env = vec![(
            "CREDENTIALS_DIRECTORY".into(),
            OsString::from(creds.as_os_str()),
        )];
        d.spawn();
        assert!(
            wait_for(Duration::from_secs(20), || d
                .log()
                .contains("vaultd stays locked")),
            "no warning for {name}: {}",
            d.log()
        );
        let log = d.log();
        let warnings = log
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("vaultd.key"))
            .count();
        assert_eq!(warnings, 1, "{log}");
        let out = d.ctl(&["status"]).ok();
        assert!(out.text().contains("vault: locked"), "{}", out.text());
        d.ctl(&["request", "mr", &up.url("/api/x")]).code(3);
        assert_eq!(count(d.log().as_bytes(), &bytes), 0);
        d.kill();
    }
}

// ---- ./install.sh ----------------------------------------------------------

/// A temporary HOME for the installer, with no user manager reachable; on
/// drop, kills any daemon the installer left behind.
struct InstallHome {
    dir: tempfile::TempDir,
}

impl InstallHome {
    fn new() -> InstallHome {
        let dir = tempfile::tempdir().unwrap();
        for d in ["home", "run"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::set_permissions(
            dir.path().join("run"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        InstallHome { dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn pid_file(&self) -> PathBuf {
        self.home().join(".local/state/vaultd/vaultd.pid")
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env_remove("PREFIX")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_STATE_HOME")
            .env_remove("VAULTD_SOCKET")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("TOKENVAULT_INSTALL_NO_SYSTEMD");
    }

    fn install(&self, args: &[&str]) -> harness::Out {
        let mut cmd = Command::new(repo().join("install.sh"));
        cmd.args(args).env(
            "VAULTCTL_BIN_SRC",
            bin("vaultd").parent().expect("target dir"),
        );
        self.env(&mut cmd);
        harness::daemon::run(&mut cmd, None)
    }

    fn ctl(&self, args: &[&str], stdin: Option<&str>) -> harness::Out {
        let mut cmd = Command::new(self.home().join(".local/bin/vaultctl"));
        cmd.args(args);
        self.env(&mut cmd);
        harness::daemon::run(&mut cmd, stdin.map(str::as_bytes))
    }
}

/// Running, and not a zombie left for a non-reaping init.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Pids whose executable is `exe` (also after it was deleted).
fn running(exe: &Path) -> Vec<u32> {
    let mut deleted = exe.as_os_str().to_owned();
    deleted.push(" (deleted)");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|p| p == exe || p.as_os_str() == deleted.as_os_str())
                && alive(*pid)
        })
        .collect()
}

impl Drop for InstallHome {
    fn drop(&mut self) {
        let exes = [
            self.home().join(".local/bin/vaultd"),
            self.dir.path().join("prefix/bin/vaultd"),
        ];
        for pid in exes.iter().flat_map(|e| running(e)) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        if let Some(pid) = self.pid() {
            if alive(pid)
                && std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|p| p.to_string_lossy().contains("vaultd"))
            {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
    }
}

#[test]
fn installer_background_daemon_idempotent_and_uninstall_keeps_the_vault() {
    if tool("bash").is_none() {
        return;
    }
    let h = InstallHome::new();
    let home = h.home();
    let installed_vaultd = home.join(".local/bin/vaultd");

    // First run: no user manager here, so a background daemon.
    let out = h.install(&[]);
    assert_eq!(
        out.code,
        0,
        "install.sh failed:\n{}\n{}",
        out.text(),
        out.stderr
    );
    let text = out.text();
    assert!(text.contains("background"), "{text}");
    assert!(text.contains("vaultd answers"), "{text}");
    for step in [
        "vaultctl init",
        "vaultctl add microreact --preset microreact",
        "vaultctl request",
    ] {
        assert!(text.contains(step), "next steps lack {step:?}: {text}");
    }
    for f in [
        ".local/bin/vaultd",
        ".local/bin/vaultctl",
        ".config/systemd/user/vaultd.socket",
        ".config/systemd/user/vaultd.service",
        ".local/share/bash-completion/completions/vaultctl",
        ".local/share/zsh/site-functions/_vaultctl",
        ".local/share/fish/vendor_completions.d/vaultctl.fish",
        ".local/share/man/man1/vaultctl.1",
    ] {
        assert!(home.join(f).exists(), "{f} not installed");
    }
    assert_eq!(
        std::fs::read(home.join(".config/systemd/user/vaultd.service")).unwrap(),
        std::fs::read(unit("vaultd.service")).unwrap()
    );
    let pid = h.pid().expect("pid file");
    assert!(alive(pid));
    assert_eq!(running(&installed_vaultd), vec![pid]);

    // The installed vaultctl finds the daemon on the default socket.
    h.ctl(
        &["init", "--passphrase-stdin"],
        Some(&format!("{PASSPHRASE}\n")),
    )
    .ok();
    let vault = home.join(".local/share/vaultd/vault");
    assert!(vault.exists());

    // Second run: same daemon (still unlocked), no second one.
    let out = h.install(&[]);
    assert_eq!(
        out.code,
        0,
        "second install.sh failed:\n{}\n{}",
        out.text(),
        out.stderr
    );
    assert!(out.text().contains("already runs"), "{}", out.text());
    assert_eq!(h.pid(), Some(pid));
    assert_eq!(running(&installed_vaultd), vec![pid]);
    let st = h.ctl(&["status"], None).ok();
    assert!(st.text().contains("vault: unlocked"), "{}", st.text());

    // Uninstall: binaries, units, completions, man pages and the daemon go;
    // the vault stays.
    let out = h.install(&["--uninstall"]);
    assert_eq!(
        out.code,
        0,
        "uninstall failed:\n{}\n{}",
        out.text(),
        out.stderr
    );
    assert!(
        wait_for(Duration::from_secs(10), || !alive(pid)),
        "background vaultd still runs after --uninstall"
    );
    for f in [
        ".local/bin/vaultd",
        ".local/bin/vaultctl",
        ".config/systemd/user/vaultd.socket",
        ".config/systemd/user/vaultd.service",
        ".local/share/bash-completion/completions/vaultctl",
        ".local/share/man/man1/vaultctl.1",
        ".local/state/vaultd/vaultd.pid",
    ] {
        assert!(!home.join(f).exists(), "{f} left after --uninstall");
    }
    assert!(vault.exists(), "--uninstall removed the vault");
    assert!(out.text().contains("kept"), "{}", out.text());

    // And a fresh install after that serves the kept vault.
    let out = h.install(&[]);
    assert_eq!(
        out.code,
        0,
        "reinstall failed:\n{}\n{}",
        out.text(),
        out.stderr
    );
    let st = h.ctl(&["status"], None).ok();
    assert!(st.text().contains("vault: locked"), "{}", st.text());
    assert_eq!(h.install(&["--uninstall"]).code, 0);
}

#[test]
fn installer_honours_prefix_and_points_the_unit_at_it() {
    if tool("bash").is_none() {
        return;
    }
    let h = InstallHome::new();
    let prefix = h.dir.path().join("prefix");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(repo().join("install.sh"));
        cmd.args(args);
        h.env(&mut cmd);
        cmd.env("PREFIX", &prefix)
            .env("TOKENVAULT_INSTALL_NO_SYSTEMD", "1")
            .env(
                "VAULTCTL_BIN_SRC",
                bin("vaultd").parent().expect("target dir"),
            );
        harness::daemon::run(&mut cmd, None)
    };
    let out = run(&[]);
    assert_eq!(
        out.code,
        0,
        "install.sh failed:\n{}\n{}",
        out.text(),
        out.stderr
    );
    let pid = h.pid().expect("pid file");
    let vaultd = prefix.join("bin/vaultd");
    assert!(vaultd.exists() && prefix.join("bin/vaultctl").exists());
    assert!(prefix.join("share/man/man1/vaultctl.1").exists());
    assert!(!h.home().join(".local/bin/vaultd").exists());
    let service =
        std::fs::read_to_string(h.home().join(".config/systemd/user/vaultd.service")).unwrap();
    assert!(
        service
            .lines()
            .any(|l| l == format!("ExecStart={}", vaultd.display())),
        "{service}"
    );
    assert_eq!(running(&vaultd), vec![pid]);

    let out = run(&["--uninstall"]);
    assert_eq!(
        out.code,
        0,
        "uninstall failed:\n{}\n{}",
        out.text(),
        out.stderr
    );
    assert!(wait_for(Duration::from_secs(10), || !alive(pid)));
    assert!(!vaultd.exists());
    assert!(!prefix.join("share/man/man1/vaultctl.1").exists());
}

#[test]
fn sigterm_while_unlocking_at_start_still_exits_0() {
    // A wrong key costs a 0.5 s penalty before READY; SIGTERM in that window
    // ends the daemon cleanly instead of killing it.
    let up = Upstream::plain();
    let (mut d, _key) = vault_with_keyfile(&up, &canary("mr"));
    let creds = d.path("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("vaultd.key"), [0x42u8; 32]).unwrap();
    d.env.push(("CREDENTIALS_DIRECTORY".into(), creds.into()));
    d.spawn();
    d.signal("TERM");
    assert_eq!(
        d.wait_exit(Duration::from_secs(10)),
        Some(0),
        "vaultd did not exit 0: {}",
        d.log()
    );
}

/// A `LISTEN_FDS` that promises a socket on fd 3 where there is a plain
/// file: vaultd refuses to start, naming the problem, and binds nothing.
#[test]
fn socket_activation_refuses_an_fd_that_is_not_a_listening_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vaultd.sock");
    let not_a_socket = dir.path().join("plain-file");
    std::fs::write(&not_a_socket, b"x").unwrap();
    // sh sets LISTEN_PID to its own pid, which exec hands to vaultd.
    let script = format!(
        "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" --socket '{}' --vault '{}' --config /dev/null 3<'{}'",
        socket.display(),
        dir.path().join("vault").display(),
        not_a_socket.display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .arg(bin("vaultd"))
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the socket passed by systemd is not usable: not a socket"),
        "{err}"
    );
    assert!(!socket.exists(), "vaultd bound a socket of its own");
}

#[test]
fn keyfile_remove_and_passwd_revoke_the_key_file() {
    let up = Upstream::plain();
    let token = canary("mr");
    let (mut d, key) = vault_with_keyfile(&up, &token);
    d.spawn();
    let key_arg = key.to_str().unwrap();
    d.ctl(&["unlock", "--keyfile", key_arg]).ok();
    let pass = format!("{PASSPHRASE}\n");
    let out = d
        .ctl_in(
            &["keyfile", "remove", "--passphrase-stdin"],
            Some(pass.as_bytes()),
        )
        .ok();
    assert!(out.stderr.contains("re-keyed"), "{}", out.stderr);
    // Nothing left to remove: a clear refusal.
    let out = d.ctl_in(
        &["keyfile", "remove", "--passphrase-stdin"],
        Some(pass.as_bytes()),
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no key-file slot"), "{}", out.stderr);
    d.ctl(&["lock"]).ok();
    let out = d.ctl(&["unlock", "--keyfile", key_arg]);
    assert_ne!(out.code, 0, "a removed key file still unlocks");
    d.unlock();
    d.ctl(&["request", "mr", &up.url("/api/x")]).ok();

    // passwd drops a key-file slot it cannot re-wrap, and says how to get one back.
    d.ctl_in(
        &[
            "keyfile",
            "create",
            d.path("k2").to_str().unwrap(),
            "--passphrase-stdin",
        ],
        Some(pass.as_bytes()),
    )
    .ok();
    let out = d
        .ctl_in(
            &["passwd", "--passphrase-stdin"],
            Some(format!("{PASSPHRASE}\n{PASSPHRASE}-2\n").as_bytes()),
        )
        .ok();
    assert!(out.stderr.contains("keyfile create"), "{}", out.stderr);
    d.ctl(&["lock"]).ok();
    assert_ne!(
        d.ctl(&["unlock", "--keyfile", d.path("k2").to_str().unwrap()])
            .code,
        0
    );
}

/// Two inherited sockets, as vaultd.socket's two `ListenStream=` lines pass
/// them (both with the unit's one name): the one bound to the front's path
/// serves HTTP, the other the socket protocol; `LISTEN_FDNAMES` with
/// `http` (a socket unit of its own) also picks the front.
#[test]
fn socket_activation_serves_the_http_front_from_its_own_inherited_socket() {
    let Some(activate) = tool("systemd-socket-activate") else {
        return;
    };
    for names in ["vaultd:vaultd", "http:vaultd"] {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("vaultd.sock");
        // With `http` named, the path need not be the default one.
        let front = if names.starts_with("http") {
            dir.path().join("other.sock")
        } else {
            dir.path().join("http.sock")
        };
        let vault = dir.path().join("vault");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, format!("http_socket = \"{}\"\n", front.display())).unwrap();
        let log = dir.path().join("vaultd.log");
        let (first, second) = if names.starts_with("http") {
            (&front, &socket)
        } else {
            (&socket, &front)
        };
        let child = Command::new(&activate)
            .arg("-l")
            .arg(first)
            .arg("-l")
            .arg(second)
            .arg(format!("--fdname={names}"))
            .arg(bin("vaultd"))
            .arg("--socket")
            .arg(&socket)
            .arg("--vault")
            .arg(&vault)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn systemd-socket-activate");
        let mut child = Reap(child);
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            wait_for(Duration::from_secs(10), || socket.exists()
                && front.exists()),
            "no sockets: {}",
            read_log()
        );
        let out = vaultctl(&socket, &["status", "--json"], None).ok();
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["pid"].as_u64(), Some(u64::from(child.0.id())));
        assert_eq!(status["http_socket"], front.display().to_string().as_str());
        // The front answers HTTP: the vault is not made yet, so 423.
        let out = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "10", "--unix-socket"])
            .arg(&front)
            .arg("http://anything/")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("HTTP/1.1 423") && text.contains("tokenvault-error: locked"),
            "{names}: {text} {}",
            read_log()
        );
        assert!(read_log().contains("(socket activation)"), "{}", read_log());
        signal(child.0.id(), "TERM");
        assert_eq!(wait_child(&mut child.0, Duration::from_secs(10)), Some(0));
    }
}
