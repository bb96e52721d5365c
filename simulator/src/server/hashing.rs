//! Password hashing off the async workers, on a bounded pool.
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

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::vim::PasswordCheck;

/// Hashes one endpoint may run at once; more logins to it wait their turn.
pub const PER_ENDPOINT: usize = 2;

/// Hashes the whole process runs at once: twice the cores, at least four, so that a couple of
/// hosts with slow fields leave room for everyone else.
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

/// Checks a password against its hash without blocking the caller's thread.
pub async fn verify(slots: &Arc<Semaphore>, check: PasswordCheck) -> bool {
    // Neither semaphore is ever closed, so acquiring cannot fail; a refusal counts as a wrong
    // password rather than a panic.
    let Ok(mine) = slots.clone().acquire_owned().await else {
        return false;
    };
    let Ok(shared) = pool().clone().acquire_owned().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let ok = check.run();
        drop((mine, shared));
        ok
    })
    .await
    .unwrap_or(false)
}
