//! What an accept loop does when `accept` fails (out of file descriptors, mostly): wait, longer
//! each time it fails again (10 ms doubling to 1 s), so a full descriptor table neither spins a
//! core nor floods the log; say so once, then at most every 30 s with how many failed since
//! (issue 12). The first success resets both.

use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_millis(10);
const LONGEST: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct AcceptBackoff {
    /// Which listener, for the log.
    what: &'static str,
    delay: Duration,
    failed: u64,
    logged: Option<Instant>,
}

impl AcceptBackoff {
    pub fn new(what: &'static str) -> AcceptBackoff {
        AcceptBackoff {
            what,
            delay: FIRST,
            failed: 0,
            logged: None,
        }
    }

    /// Call after a successful accept.
    pub fn reset(&mut self) {
        if self.failed > 0 {
            tracing::info!(
                "{}: accepting again after {} failed accepts",
                self.what,
                self.failed
            );
        }
        *self = AcceptBackoff::new(self.what);
    }

    /// Call after a failed accept: logs if due and returns how long to wait before the next.
    pub fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.failed += 1;
        let now = Instant::now();
        if self
            .logged
            .is_none_or(|t| now.duration_since(t) >= LOG_EVERY)
        {
            tracing::warn!(
                "{}: accept failed ({} so far): {e}; retrying with back-off",
                self.what,
                self.failed
            );
            self.logged = Some(now);
        }
        let wait = self.delay;
        self.delay = (self.delay * 2).min(LONGEST);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_a_second_and_reset_on_success() {
        let e = std::io::Error::from_raw_os_error(24); // EMFILE
        let mut b = AcceptBackoff::new("test");
        let waits: Vec<u128> = (0..10).map(|_| b.failed(&e).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        // One warning for ten failures inside the window.
        assert!(b.logged.is_some());
        b.reset();
        assert_eq!(b.failed(&e), FIRST);
    }
}
