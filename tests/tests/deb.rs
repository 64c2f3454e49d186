//! The Debian package (issue 16): the units it ships, the message that names
//! the one line to type, and the package itself installed into this
//! machine's `/usr`, run from `/usr/bin` against a local upstream, and
//! removed again.
//!
//! The installed test needs root (it runs `dpkg -i`); it prints why and
//! skips otherwise. It builds the package with `packaging/build-deb.sh`
//! (a release build: minutes) unless `TOKENVAULT_DEB` names a `.deb`, which
//! is how `.ci/run` passes the one it built in its own step.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use harness::{Daemon, Upstream, canary, is_root};

/// What every "daemon not reachable" message and the README tell a user to
/// type once after installing.
const ENABLE_LINE: &str = "systemctl --user enable --now vaultd.socket";

/// The package's name, for dpkg.
const PACKAGE: &str = "tokenvault";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The tool's path, or `None` after printing why the caller skips.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into(), "/usr/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        eprintln!("SKIP: {name} not installed (apt-get install {package}; .ci/run does)");
    }
    found
}

/// Runs `cmd`; (exit code, stdout + stderr).
fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// `systemd-analyze ARGS` with a temporary HOME and runtime dir (which
/// `--user` needs even offline); (exit code, output).
fn analyze(analyze: &Path, args: &[&std::ffi::OsStr]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::set_permissions(
        &run_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    run(Command::new(analyze)
        .args(args)
        .env("HOME", dir.path())
        .env("XDG_RUNTIME_DIR", &run_dir)
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_PAGER", "")
        .env_remove("XDG_CONFIG_HOME"))
}

/// `systemd-analyze security --offline` exposure of a user service file.
fn exposure(tool: &Path, unit: &Path) -> f64 {
    let (code, text) = analyze(
        tool,
        &[
            "security".as_ref(),
            "--offline=true".as_ref(),
            "--user".as_ref(),
            "--no-pager".as_ref(),
            unit.as_os_str(),
        ],
    );
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for vaultd.service:"))
        .unwrap_or_else(|| panic!("no exposure line (exit {code}):\n{text}"));
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse the score in {line:?}"))
}

/// The units as the package ships them, made by `packaging/units.sh` from
/// the repo's units into `out`.
fn packaged_units(out: &Path) {
    let (code, text) = run(Command::new("sh")
        .arg(repo().join("packaging/units.sh"))
        .arg(out));
    assert_eq!(code, 0, "packaging/units.sh failed:\n{text}");
}

#[test]
fn packaged_units_start_usr_bin_vaultd_as_sandboxed_as_the_repo_units() {
    let out = tempfile::tempdir().unwrap();
    packaged_units(out.path());
    let service = std::fs::read_to_string(out.path().join("vaultd.service")).unwrap();
    let socket = std::fs::read_to_string(out.path().join("vaultd.socket")).unwrap();
    let lines: Vec<&str> = service.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"ExecStart=/usr/bin/vaultd"),
        "packaged vaultd.service lacks ExecStart=/usr/bin/vaultd:\n{service}"
    );
    for text in [&service, &socket] {
        assert!(
            !text.contains(".local/bin") && !text.contains(".local/share/doc"),
            "a packaged unit still names a per-user install path:\n{text}"
        );
        assert!(
            text.contains("Documentation=man:vaultd(1)"),
            "a packaged unit lacks Documentation=man:vaultd(1):\n{text}"
        );
    }
    // The socket unit is the repo's, but for its comments and docs.
    assert!(socket.contains("ListenStream=%t/vaultd/vaultd.sock"));

    let Some(tool) = tool("systemd-analyze", "systemd") else {
        return;
    };
    let ours = exposure(&tool, &out.path().join("vaultd.service"));
    let repo_unit = exposure(&tool, &repo().join("systemd/vaultd.service"));
    eprintln!("exposure: packaged {ours}, repo {repo_unit}");
    assert!(ours <= 2.0, "packaged unit exposure {ours} > 2.0");
    assert_eq!(
        ours, repo_unit,
        "packaged unit sandbox differs from the repo's"
    );
}

#[test]
fn not_running_names_the_one_line_to_type() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nothing.sock");
    let d = harness::daemon::run(
        Command::new(harness::bin("vaultctl"))
            .arg("--socket")
            .arg(&socket)
            .arg("status"),
        None,
    );
    assert_eq!(d.code, 2, "{}", d.stderr);
    assert!(
        d.stderr.contains(ENABLE_LINE),
        "the not-running message does not name `{ENABLE_LINE}`: {}",
        d.stderr
    );
}

/// Removes (and purges) the package on drop, so a failed assertion leaves
/// nothing of it in this machine's `/usr`.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if installed() {
            let (code, text) = run(Command::new("dpkg").args(["--purge", PACKAGE]));
            if code != 0 {
                eprintln!("dpkg --purge {PACKAGE} failed ({code}):\n{text}");
            }
        }
    }
}

/// Whether dpkg knows the package in any state but "not installed".
fn installed() -> bool {
    let (code, text) =
        run(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", PACKAGE]));
    code == 0 && !text.trim().is_empty() && text.trim() != "not-installed"
}

/// The `.deb` to test: `$TOKENVAULT_DEB`, else one built now.
fn deb() -> PathBuf {
    if let Some(p) = std::env::var_os("TOKENVAULT_DEB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "TOKENVAULT_DEB={} is not a file", p.display());
        return p;
    }
    eprintln!("building the package (packaging/build-deb.sh; set TOKENVAULT_DEB to skip)");
    let mut cmd = Command::new("bash");
    // Without the CARGO_* that cargo set for this test (CARGO_MANIFEST_DIR,
    // CARGO_PKG_*): some build scripts watch them (ring), and the release
    // build would start from scratch each time it is run from here.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
            cmd.env_remove(&*key);
        }
    }
    let out = cmd
        .arg(repo().join("packaging/build-deb.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run packaging/build-deb.sh");
    assert!(out.status.success(), "packaging/build-deb.sh failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = stdout.lines().last().expect("build-deb.sh printed a path");
    PathBuf::from(path.trim())
}

#[test]
fn package_installs_runs_from_usr_bin_and_removes_cleanly() {
    if !is_root() {
        eprintln!(
            "SKIP: the installed-package test needs root (dpkg -i into /usr); .ci/run runs as root"
        );
        return;
    }
    if tool("dpkg", "dpkg").is_none() {
        return;
    }
    if installed() {
        eprintln!("SKIP: package {PACKAGE} is already installed here; the test does not touch it");
        return;
    }
    let deb = deb();
    let size = std::fs::metadata(&deb).unwrap().len();
    eprintln!("package: {} ({size} bytes)", deb.display());

    // Quality first: lintian reports no error.
    if let Some(lintian) = tool("lintian", "lintian") {
        let (code, text) = run(Command::new(lintian).arg(&deb));
        eprintln!("lintian (exit {code}):\n{text}");
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
        assert!(errors.is_empty(), "lintian errors:\n{}", errors.join("\n"));
    }

    let guard = Installed;
    let (code, text) = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert_eq!(code, 0, "dpkg -i failed:\n{text}");

    let (code, listing) = run(Command::new("dpkg").args(["-L", PACKAGE]));
    assert_eq!(code, 0, "dpkg -L failed:\n{listing}");
    let paths: Vec<PathBuf> = listing.lines().map(PathBuf::from).collect();
    let files: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| !p.is_dir() || p.is_symlink())
        .collect();
    for want in [
        "/usr/bin/vaultd",
        "/usr/bin/vaultctl",
        "/usr/lib/systemd/user/vaultd.service",
        "/usr/lib/systemd/user/vaultd.socket",
        "/usr/share/man/man1/vaultctl.1.gz",
        "/usr/share/man/man1/vaultd.1.gz",
        "/usr/share/bash-completion/completions/vaultctl",
        "/usr/share/zsh/vendor-completions/_vaultctl",
        "/usr/share/fish/vendor_completions.d/vaultctl.fish",
        "/usr/share/doc/tokenvault/copyright",
        "/usr/share/doc/tokenvault/README.md.gz",
        "/usr/share/doc/tokenvault/SECURITY.md.gz",
    ] {
        assert!(
            files.iter().any(|p| p.as_os_str() == want),
            "the package lacks {want}; it has:\n{listing}"
        );
    }
    let unit = std::fs::read_to_string("/usr/lib/systemd/user/vaultd.service").unwrap();
    assert!(
        unit.lines()
            .any(|l| l.trim() == "ExecStart=/usr/bin/vaultd")
    );

    // The main job, from /usr/bin, in a temporary HOME.
    let up = Upstream::tls();
    let mut d = Daemon::start_from(
        Path::new("/usr/bin"),
        "extra_ca = [\"{dir}/ca.pem\"]\n",
        &[("ca.pem", up.ca_pem.as_ref().unwrap().as_bytes())],
    );
    let ctl = |args: &[&str], stdin: Option<&[u8]>| {
        let mut c = d.cmd();
        c.env("HOME", d.dir()).args(args);
        harness::daemon::run(&mut c, stdin)
    };
    ctl(
        &["init", "--passphrase-stdin"],
        Some(format!("{}\n", harness::PASSPHRASE).as_bytes()),
    )
    .ok();
    let token = canary("deb");
    ctl(
        &["add", "api", "--bearer", "--origin", &up.origin()],
        Some(format!("{token}\n").as_bytes()),
    )
    .ok();
    let out = ctl(&["request", "api", &up.url("/user")], None).ok();
    assert!(out.text().contains("\"id\":\"u1\""), "{}", out.text());
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {token}"))
    );
    ctl(&["lock"], None).ok();
    let status = ctl(&["status", "--json"], None).ok().text();
    assert!(status.contains("\"state\":\"locked\""), "{status}");
    d.assert_log_clean();
    d.kill();
    let vault_before = std::fs::read(&d.vault).expect("the test vault exists");

    // Installed docs and units, as a user's tools see them.
    let (code, text) = run(Command::new("man").args(["-w", "vaultctl"]));
    assert_eq!(code, 0, "man -w vaultctl failed:\n{text}");
    assert_eq!(text.trim(), "/usr/share/man/man1/vaultctl.1.gz");
    if let Some(sa) = tool("systemd-analyze", "systemd") {
        let (code, text) = analyze(
            &sa,
            &[
                "verify".as_ref(),
                "--user".as_ref(),
                "/usr/lib/systemd/user/vaultd.socket".as_ref(),
                "/usr/lib/systemd/user/vaultd.service".as_ref(),
            ],
        );
        assert_eq!(code, 0, "systemd-analyze verify failed:\n{text}");
        assert!(
            text.trim().is_empty(),
            "systemd-analyze verify warned:\n{text}"
        );
        let score = exposure(&sa, Path::new("/usr/lib/systemd/user/vaultd.service"));
        assert!(score <= 2.0, "installed unit exposure {score} > 2.0");
    }

    // Removal: every file the package listed is gone, the vault is not.
    let (code, text) = run(Command::new("dpkg").args(["-r", PACKAGE]));
    assert_eq!(code, 0, "dpkg -r failed:\n{text}");
    let left: Vec<&&PathBuf> = files
        .iter()
        .filter(|p| p.exists() || p.is_symlink())
        .collect();
    assert!(left.is_empty(), "left after dpkg -r: {left:?}");
    // The package's own directories go too (shared ones like /usr/bin stay).
    let own_dirs: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| p.to_string_lossy().contains("/tokenvault"))
        .collect();
    assert!(!own_dirs.is_empty());
    let left: Vec<&&PathBuf> = own_dirs.iter().filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "left after dpkg -r: {left:?}");
    assert_eq!(
        std::fs::read(&d.vault).expect("the vault survives dpkg -r"),
        vault_before,
        "dpkg -r changed the test vault"
    );
    let (code, text) = run(Command::new("dpkg").args(["--purge", PACKAGE]));
    assert_eq!(code, 0, "dpkg --purge failed:\n{text}");
    assert!(!installed(), "dpkg still knows {PACKAGE} after --purge");
    assert_eq!(
        std::fs::read(&d.vault).expect("the vault survives dpkg --purge"),
        vault_before,
        "dpkg --purge changed the test vault"
    );
    drop(guard);
}
