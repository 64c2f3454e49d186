//! Test harness: the real `vaultd` and `vaultctl` binaries on temporary
//! sockets and vaults, a real local HTTP upstream (plain and TLS with a
//! test CA made by rcgen), and a real OpenBao (`openbao`). Nothing here
//! reaches beyond 127.0.0.1.

pub mod curl;
pub mod daemon;
pub mod memscan;
pub mod openbao;
pub mod raw;
pub mod sigverify;
pub mod upstream;
pub mod users;

pub use daemon::{Daemon, Out, PASSPHRASE};
pub use upstream::{Recorded, Upstream};
pub use users::TestUser;

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

/// Every canary made by [`canary`] in this test process: the daemon logs
/// and vaultctl's stderr are checked against all of them (see [`leaks`]).
static CANARIES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// The canaries made so far in this test process.
pub fn canaries() -> Vec<String> {
    CANARIES.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Which secrets (every [`canary`] of this process and [`PASSPHRASE`])
/// occur in `hay`, raw or base64-encoded: one entry per hit, naming the
/// secret and the line it is on. Empty when clean.
pub fn leaks(hay: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    let mut secrets = canaries();
    secrets.push(PASSPHRASE.to_owned());
    let mut hits = Vec::new();
    for secret in &secrets {
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        for (form, needle) in [("raw", secret.as_bytes()), ("base64", b64.as_bytes())] {
            for at in memchr::memmem::find_iter(hay, needle) {
                let start = hay[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = hay[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(hay.len(), |i| at + i);
                hits.push(format!(
                    "{secret:?} ({form}) in line: {}",
                    String::from_utf8_lossy(&hay[start..end])
                ));
            }
        }
    }
    hits
}

/// A random token that no other test or library could contain by accident.
/// Registered, so that every harness daemon log and vaultctl stderr of this
/// test process is checked for it.
pub fn canary(prefix: &str) -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let token = format!("{prefix}-{hex}");
    CANARIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(token.clone());
    token
}

/// Registers a secret the test did not make with [`canary`] (an OpenBao
/// secret_id or client token), so logs and stderr are checked for it too.
pub fn watch_secret(secret: &str) {
    CANARIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(secret.to_owned());
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
