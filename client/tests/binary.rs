//! The `vaultctl` binary itself. Having an integration test here also makes
//! `cargo test --workspace` build `target/*/vaultctl`, which the end-to-end
//! suite in `tests/` spawns (cargo builds a package's binaries only for that
//! package's own integration tests).

use std::process::Command;

#[test]
fn version_names_the_client() {
    let out = Command::new(env!("CARGO_BIN_EXE_vaultctl"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v = String::from_utf8(out.stdout).unwrap();
    assert_eq!(v.trim(), format!("vaultctl {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn no_daemon_is_exit_2_naming_the_socket() {
    let dir = std::env::temp_dir().join(format!("vaultctl-bin-test-{}", std::process::id()));
    let sock = dir.join("absent.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_vaultctl"))
        .arg("--socket")
        .arg(&sock)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("vaultctl: "), "{err}");
    assert!(err.contains(sock.to_str().unwrap()), "{err}");
}
