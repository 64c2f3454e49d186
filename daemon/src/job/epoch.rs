//! Which unlock a job's token came from, so that `lock` can end every job
//! that still holds one.

use tokio::sync::watch;

/// The vault's unlock count, owned by the state: every `lock` advances it.
#[derive(Debug)]
pub struct Epochs(watch::Sender<u64>);

impl Default for Epochs {
    fn default() -> Epochs {
        Epochs(watch::Sender::new(0))
    }
}

impl Epochs {
    /// Starts a new epoch: every [`Epoch`] taken before now has ended.
    pub fn advance(&self) {
        self.0.send_modify(|e| *e += 1);
    }

    /// The epoch a lease taken now belongs to.
    pub fn current(&self) -> Epoch {
        Epoch {
            seen: *self.0.borrow(),
            current: self.0.subscribe(),
        }
    }
}

/// The unlock a job's token was taken from. `lock` starts a new epoch, so
/// a job that was still waiting to send (an upload, a redirect to follow)
/// when the vault locked sends nothing more.
#[derive(Clone, Debug)]
pub struct Epoch {
    seen: u64,
    current: watch::Receiver<u64>,
}

impl Epoch {
    /// Whether the vault has stayed unlocked since the lease was taken.
    pub fn is_current(&self) -> bool {
        *self.current.borrow() == self.seen
    }

    /// Resolves once the vault has locked since the lease was taken: a job
    /// waits on this beside every await (the upstream, the client's reads
    /// and writes), so a stalled peer cannot keep its token alive past
    /// `lock`.
    pub async fn ended(&self) {
        let mut rx = self.current.clone();
        let seen = self.seen;
        // An error means the state is gone (shutdown): that ends the job too.
        let _ = rx.wait_for(|e| *e != seen).await;
    }
}
