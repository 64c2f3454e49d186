//! Process hardening done once at start, before any secret is read.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// No core dumps and no ptrace/`/proc/PID/mem` access from other processes
/// of the same uid (PR_SET_DUMPABLE 0 makes /proc/PID owned by root). Also
/// raises the open-file soft limit to the hard one, so that many idle or
/// hostile connections run into vaultd's own connection cap (which is
/// logged and answered) rather than into EMFILE at accept.
pub fn harden_process() -> std::io::Result<()> {
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    let files = getrlimit(Resource::Nofile);
    if files.current < files.maximum {
        // Best effort: the default soft limit works too, with a lower ceiling.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: files.maximum,
                maximum: files.maximum,
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dumpable_off_and_no_core_files() {
        // Applied to this test process: the settings are process-wide and
        // harmless for a test binary.
        super::harden_process().unwrap();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
        assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
