//! The `vaultd` binary itself. Having an integration test here also makes
//! `cargo test --workspace` build `target/*/vaultd`, which the end-to-end
//! suite in `tests/` spawns (cargo builds a package's binaries only for that
//! package's own integration tests).

use std::process::Command;

#[test]
fn version_and_help_name_the_daemon() {
    let exe = env!("CARGO_BIN_EXE_vaultd");
    let out = Command::new(exe).arg("--version").output().unwrap();
    assert!(out.status.success());
    let v = String::from_utf8(out.stdout).unwrap();
    assert_eq!(v.trim(), format!("vaultd {}", env!("CARGO_PKG_VERSION")));

    let out = Command::new(exe).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--socket", "--vault", "--config"] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_vaultd"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap's usage exit code");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}
