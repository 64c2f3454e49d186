//! Process hardening done once at start, before any secret is read.

use rustix::process::{Resource, Rlimit, setrlimit};

/// No core dumps and no ptrace/`/proc/PID/mem` access from other processes
/// of the same uid (PR_SET_DUMPABLE 0 makes /proc/PID owned by root).
pub fn harden_process() -> std::io::Result<()> {
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}
