//! Test harness: the real `vaultd` and `vaultctl` binaries on temporary
//! sockets and vaults, and a real local HTTP upstream (plain and TLS with a
//! test CA made by rcgen). Nothing here reaches beyond 127.0.0.1.

pub mod daemon;
pub mod memscan;
pub mod sigverify;
pub mod upstream;

pub use daemon::{Daemon, Out, PASSPHRASE};
pub use upstream::{Recorded, Upstream};

/// Path of a workspace binary, next to the test executable's `deps/` dir.
pub fn bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` (cargo test --workspace builds it)",
        p.display()
    );
    p
}

/// A random token that no other test or library could contain by accident.
pub fn canary(prefix: &str) -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// Counts occurrences of `needle` in `hay`.
pub fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
