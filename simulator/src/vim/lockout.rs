//! Account lockout after failed logins (facts section 7): hostd counts failed logins through the
//! vSphere API per account; after `Security.AccountLockFailures` of them in a row the account is
//! locked for `Security.AccountUnlockTime` seconds, root included, and while it is locked even the
//! right password fails, as a wrong one does \[inferred\]. 0 failures disables locking. A
//! successful login clears the count. The tally lives in hostd's memory: a reboot clears it.
//!
//! Defaults per release (facts section 7): 10 failures and 120 s on 6.0, 5 and 900 s from 6.5;
//! before 6.0 there is no lockout (and no such options). The host's advanced options (esx.conf
//! `/adv/Security/...`, see [`super::option_manager`]) override them.
//!
//! Time is the host's virtual clock.

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::SimTime;

/// How many failures lock an account, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// 0: never lock.
    pub failures: u32,
    pub unlock: Duration,
}

#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    failures: u32,
    locked_until: Option<SimTime>,
}

/// Failed-login counts by account name (case-sensitive, as ESXi's accounts are).
#[derive(Clone, Debug, Default)]
pub struct Lockouts {
    by_user: HashMap<String, Tally>,
}

/// What one login attempt did to the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Refused,
    /// This failure locked the account (after `failures` in a row, for `unlock`).
    NowLocked(Policy),
}

impl Lockouts {
    /// Whether `user` is locked at `now`: then its login fails without a password check.
    pub fn locked(&self, user: &str, now: SimTime) -> bool {
        self.by_user
            .get(user)
            .and_then(|t| t.locked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a checked login (not one refused for the lock itself).
    pub fn record(&mut self, user: &str, ok: bool, now: SimTime, policy: Policy) -> Outcome {
        if ok {
            self.by_user.remove(user);
            return Outcome::Allowed;
        }
        if policy.failures == 0 {
            return Outcome::Refused;
        }
        // Bounded: one entry per name that failed; a flood of made-up names is cleared when it
        // grows past what any host has (a name that does not exist never locks anything real).
        if self.by_user.len() >= 4096 && !self.by_user.contains_key(user) {
            self.by_user
                .retain(|_, t| t.locked_until.is_some_and(|u| now < u));
        }
        let t = self.by_user.entry(user.to_string()).or_default();
        if t.locked_until.is_some_and(|until| now >= until) {
            *t = Tally::default();
        }
        t.failures += 1;
        if t.failures >= policy.failures {
            t.failures = 0;
            t.locked_until = Some(now.plus(policy.unlock));
            return Outcome::NowLocked(policy);
        }
        Outcome::Refused
    }

    /// hostd restarted.
    pub fn clear(&mut self) {
        self.by_user.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::DEFAULT_EPOCH;

    const P: Policy = Policy {
        failures: 5,
        unlock: Duration::from_secs(900),
    };

    #[test]
    fn five_failures_lock_for_fifteen_minutes_then_the_count_starts_again() {
        let mut l = Lockouts::default();
        let t0 = DEFAULT_EPOCH;
        for i in 1..5 {
            assert_eq!(
                l.record("root", false, t0, P),
                Outcome::Refused,
                "failure {i}"
            );
            assert!(!l.locked("root", t0));
        }
        assert_eq!(l.record("root", false, t0, P), Outcome::NowLocked(P));
        assert!(l.locked("root", t0.plus(Duration::from_secs(899))));
        assert!(!l.locked("other", t0));
        let later = t0.plus(Duration::from_secs(900));
        assert!(!l.locked("root", later));
        assert_eq!(l.record("root", false, later, P), Outcome::Refused);
        assert!(!l.locked("root", later));
    }

    #[test]
    fn a_success_clears_the_count_and_zero_never_locks() {
        let mut l = Lockouts::default();
        let t0 = DEFAULT_EPOCH;
        for _ in 0..4 {
            l.record("root", false, t0, P);
        }
        l.record("root", true, t0, P);
        for _ in 0..4 {
            l.record("root", false, t0, P);
        }
        assert!(!l.locked("root", t0));
        let never = Policy { failures: 0, ..P };
        for _ in 0..100 {
            assert_eq!(l.record("dcui", false, t0, never), Outcome::Refused);
        }
        assert!(!l.locked("dcui", t0));
    }
}
