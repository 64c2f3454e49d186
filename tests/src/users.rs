//! Throwaway system users for tests that need other uids (root only).

use std::path::Path;
use std::process::Command;

/// A user made with `useradd -r -M` for one test; deleted on drop.
#[derive(Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    /// Creates `tvtest-<pid>-<n><tag>` (an existing one of that name is
    /// reused). `None` with the reason when that is not possible (not root,
    /// no useradd).
    pub fn create(tag: &str) -> Result<TestUser, String> {
        if !crate::is_root() {
            return Err("not root".into());
        }
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("tvtest-{}-{n}{tag}", std::process::id());
        let out = Command::new("useradd")
            .args([
                "-r",
                "-M",
                "-U",
                "-s",
                "/usr/sbin/nologin",
                "-d",
                "/nonexistent",
            ])
            .arg(&name)
            .output()
            .map_err(|e| format!("cannot run useradd: {e}"))?;
        // Exit 9: the user exists already (a previous run died early).
        if !out.status.success() && out.status.code() != Some(9) {
            return Err(format!(
                "useradd {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let id = |flag: &str| -> Result<u32, String> {
            let out = Command::new("id")
                .arg(flag)
                .arg(&name)
                .output()
                .map_err(|e| e.to_string())?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .map_err(|_| format!("id {flag} {name} failed"))
        };
        Ok(TestUser {
            uid: id("-u")?,
            gid: id("-g")?,
            name,
        })
    }

    /// `setpriv` arguments that run a command as this user, no extra groups
    /// and no capabilities (end with `--`).
    pub fn via(&self) -> Vec<String> {
        vec![
            "setpriv".into(),
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--clear-groups".into(),
            "--inh-caps=-all".into(),
            "--".into(),
        ]
    }

    /// A command that runs `program` as this user.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let via = self.via();
        let mut c = Command::new(&via[0]);
        c.args(&via[1..]).arg(program);
        c
    }

    /// `chown -R` of `path` to this user.
    pub fn own(&self, path: &Path) {
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .expect("chown");
        assert!(st.success(), "chown -R {}", path.display());
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Declare the user before anything that runs as it, so those
        // processes are stopped (dropped) first: userdel refuses a user
        // with running processes.
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}
