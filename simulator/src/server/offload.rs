//! CPU-heavy work off the async workers, on a bounded pool: password hashes, and the calls that
//! seal or pack (see `call::heavy`).
//!
//! A login costs one SHA-512 crypt of the account's shadow field: ~1 ms at glibc's default
//! 5,000 rounds, but a field may name up to glibc's maximum of 999,999,999 rounds (minutes of
//! CPU), and anyone who can restore a bundle or write `/etc/shadow` can plant one. Checked on an
//! async worker under the host's lock, one such login stopped every endpoint of the process
//! (issue 12). So the hash runs here: on tokio's blocking threads, at most [`pool_size`] at once
//! in the process and [`PER_ENDPOINT`] at once per endpoint, so a slow hash on one host delays
//! only the logins of that host. The rounds are not capped below glibc's own maximum: a real
//! host would check such a field too (slowly), and tests may want exactly that.
//!
//! The permits travel into the blocking task: a client that disconnects mid-login does not free
//! a slot while its hash still burns a thread.
//!
//! The calls that seal a 7.0 U2+ host's state share the pool: a first seal with new NONE-mode
//! material derives its key (100,000 PBKDF2 rounds, facts 6.4), and a bundle is packed and
//! encrypted. Bounded like the hashes, a dozen hosts sealing at once leave the cores to others.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::vim::PasswordCheck;

/// Jobs one endpoint may run at once; more wait their turn.
pub const PER_ENDPOINT: usize = 2;

/// Jobs the whole process runs at once: twice the cores, at least four, so that a couple of
/// hosts with slow work leave room for everyone else.
pub fn pool_size() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
        .max(4)
}

fn pool() -> &'static Arc<Semaphore> {
    static POOL: OnceLock<Arc<Semaphore>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(Semaphore::new(pool_size())))
}

/// A new endpoint's own slots.
pub fn endpoint_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(PER_ENDPOINT))
}

/// Runs `job` on a blocking thread once a slot of the endpoint's and one of the process's are
/// free; None if it panicked.
pub async fn run<R: Send + 'static>(
    slots: &Arc<Semaphore>,
    job: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    // Neither semaphore is ever closed, so acquiring cannot fail.
    let mine = slots.clone().acquire_owned().await.ok()?;
    let shared = pool().clone().acquire_owned().await.ok()?;
    tokio::task::spawn_blocking(move || {
        let r = job();
        drop((mine, shared));
        r
    })
    .await
    .ok()
}

/// Checks a password against its hash without blocking the caller's thread; a failure to run
/// counts as a wrong password rather than a panic.
pub async fn verify(slots: &Arc<Semaphore>, check: PasswordCheck) -> bool {
    run(slots, move || check.run()).await.unwrap_or(false)
}
