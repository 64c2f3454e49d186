//! A real vaultd on a temporary socket and vault, and vaultctl to talk to it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::bin;

pub const PASSPHRASE: &str = "correct horse battery staple";

pub struct Daemon {
    pub dir: TempDir,
    pub socket: PathBuf,
    pub vault: PathBuf,
    pub config: PathBuf,
    pub stderr_path: PathBuf,
    /// Extra environment for vaultd (e.g. `CREDENTIALS_DIRECTORY`,
    /// `NOTIFY_SOCKET`), applied on every (re)spawn.
    pub env: Vec<(String, std::ffi::OsString)>,
    /// Where `vaultd` and `vaultctl` are taken from: the workspace's build
    /// by default, `/usr/bin` for the installed-package test.
    pub bin_dir: PathBuf,
    child: Option<Child>,
}

/// What a vaultctl run produced.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "vaultctl failed: {}", self.stderr);
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Out {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stderr: {}",
            self.stderr
        );
        self
    }
}

impl Daemon {
    /// Starts vaultd with `config` (TOML) in a fresh temp dir; waits until
    /// the socket answers.
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with(config, &[])
    }

    /// As [`Daemon::start`], first writing `files` (name, contents) into the
    /// daemon's temp dir; `{dir}` in `config` stands for that dir.
    pub fn start_with(config: &str, files: &[(&str, &[u8])]) -> Daemon {
        let bin_dir = bin("vaultd").parent().expect("target dir").to_owned();
        Daemon::start_from(&bin_dir, config, files)
    }

    /// As [`Daemon::start_with`], with `vaultd` and `vaultctl` taken from
    /// `bin_dir` instead of the workspace's build (e.g. `/usr/bin`, to test
    /// what a package installed).
    pub fn start_from(bin_dir: &Path, config: &str, files: &[(&str, &[u8])]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, data) in files {
            std::fs::write(dir.path().join(name), data).expect("write file");
        }
        let config = config.replace("{dir}", &dir.path().display().to_string());
        let config = config.as_str();
        let socket = dir.path().join("run").join("vaultd").join("vaultd.sock");
        let vault = dir.path().join("data").join("vault");
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_path = dir.path().join("vaultd.log");
        let mut d = Daemon {
            dir,
            socket,
            vault,
            config: config_path,
            stderr_path,
            env: Vec::new(),
            bin_dir: bin_dir.to_owned(),
            child: None,
        };
        d.spawn();
        d
    }

    /// (Re)starts the vaultd process on the same socket, vault and config.
    pub fn spawn(&mut self) {
        self.spawn_via(&[]);
    }

    /// As [`Daemon::spawn`], with vaultd run through `prefix` (a wrapper
    /// command and its arguments, e.g. `setpriv ... --`).
    pub fn spawn_via(&mut self, prefix: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_path)
            .expect("log file");
        let mut cmd = match prefix.split_first() {
            Some((wrapper, args)) => {
                let mut c = Command::new(wrapper);
                c.args(args).arg(self.exe("vaultd"));
                c
            }
            None => Command::new(self.exe("vaultd")),
        };
        let child = cmd
            .arg("--socket")
            .arg(&self.socket)
            .arg("--vault")
            .arg(&self.vault)
            .arg("--config")
            .arg(&self.config)
            .env("VAULTD_LOG", log_level())
            .env("HOME", self.dir.path())
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("VAULTD_SOCKET")
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vaultd");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("vaultd exited early ({status}): {}", self.log());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("vaultd did not start: {}", self.log());
    }

    /// The path of binary `name` (`vaultd`, `vaultctl`) this daemon uses.
    pub fn exe(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Stops the daemon (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal by name (`TERM`, `USR1`).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(st.success());
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(s)) = c.try_wait() {
                    self.child = None;
                    return s.code();
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Panics if the daemon's log so far holds any canary of this test
    /// process or the test passphrase (see [`crate::leaks`]). Runs on drop
    /// too; call it earlier to fail at a known point.
    #[track_caller]
    pub fn assert_log_clean(&self) {
        let log = std::fs::read(&self.stderr_path).unwrap_or_default();
        let hits = crate::leaks(&log);
        assert!(
            hits.is_empty(),
            "secret in vaultd's log {}:\n{}",
            self.stderr_path.display(),
            hits.join("\n")
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A vaultctl command pointed at this daemon; stdin is null unless given.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(self.exe("vaultctl"));
        c.env("VAULTD_SOCKET", &self.socket);
        c
    }

    pub fn ctl(&self, args: &[&str]) -> Out {
        self.ctl_in(args, None)
    }

    pub fn ctl_in(&self, args: &[&str], stdin: Option<&[u8]>) -> Out {
        run(self.cmd().args(args), stdin)
    }

    /// As [`Daemon::ctl_in`], with vaultctl run through `prefix` (a wrapper
    /// and its arguments, e.g. [`crate::TestUser::via`]).
    pub fn ctl_via(&self, prefix: &[String], args: &[&str], stdin: Option<&[u8]>) -> Out {
        let (wrapper, rest) = prefix.split_first().expect("a wrapper command");
        let mut c = Command::new(wrapper);
        c.args(rest)
            .arg(self.exe("vaultctl"))
            .env("VAULTD_SOCKET", &self.socket)
            .args(args);
        run(&mut c, stdin)
    }

    /// `init` with the test passphrase.
    pub fn init(&self) {
        self.ctl_in(
            &["init", "--passphrase-stdin"],
            Some(format!("{PASSPHRASE}\n").as_bytes()),
        )
        .ok();
    }

    pub fn unlock(&self) -> Out {
        self.ctl_in(
            &["unlock", "--passphrase-stdin"],
            Some(format!("{PASSPHRASE}\n").as_bytes()),
        )
    }

    /// `add NAME <args...>` with the token on stdin.
    pub fn add(&self, name: &str, token: &str, args: &[&str]) -> Out {
        let mut all = vec!["add", name];
        all.extend_from_slice(args);
        self.ctl_in(&all, Some(format!("{token}\n").as_bytes()))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Out {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn vaultctl");
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        let data = input.to_vec();
        std::thread::spawn(move || {
            let _ = s.write_all(&data);
        });
    }
    let out = child.wait_with_output().expect("wait vaultctl");
    let hits = crate::leaks(&out.stderr);
    assert!(
        hits.is_empty(),
        "secret in vaultctl's stderr:\n{}",
        hits.join("\n")
    );
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `VAULTD_LOG` of every harness daemon: the most verbose level, so the
/// leak check on drop sees everything vaultd could ever log.
/// `TOKENVAULT_TEST_LOG` overrides it (e.g. `info` to compare timings).
pub fn log_level() -> String {
    std::env::var("TOKENVAULT_TEST_LOG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "trace".into())
}

impl Drop for Daemon {
    /// Stops vaultd, then fails the test if its log holds a secret (unless
    /// the test is already failing).
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            self.assert_log_clean();
        }
    }
}
