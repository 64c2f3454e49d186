//! One Argon2id run at a time, process-wide. Each run allocates its whole
//! memory cost (64 MiB for new vaults), so concurrent `init`, `unlock`,
//! `passwd` and `keyfile create` requests would otherwise add up to GiBs.
//! The gate sits where the derivation happens, so no caller can skip it.

use std::sync::Mutex;

static GATE: Mutex<()> = Mutex::new(());

/// Runs `f` (one Argon2id derivation) while no other one runs. Blocks: call
/// it from the blocking pool, as every derivation already is.
pub(crate) fn run<T>(f: impl FnOnce() -> T) -> T {
    let _held = GATE.lock().unwrap_or_else(|p| p.into_inner());
    f()
}
