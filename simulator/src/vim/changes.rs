//! How a waiting `WaitForUpdates(Ex)` learns that it may have something to report, without
//! asking again and again (issue 12: 2,000 waiters polling every 25 ms took a whole core).
//!
//! A wait with nothing to report parks until one of three things:
//!
//! - **a change signal** ([`Changes`]): every API state (a host's, the vCenter's) has one,
//!   bumped whenever something may have changed what a filter sees. The rule, in one place per
//!   kind of writer:
//!   - a SOAP call, unless its type's row in [`super::registry`] lists it among the `reads`
//!     (RetrievePropertiesEx, WaitForUpdatesEx, CurrentTime, ...) or it is refused at the
//!     door (no session, no such object): [`super::Vim::call`]. A call a vCenter forwards
//!     bumps the host it changed, as the host's own call would;
//!   - time moving the model: a task's work, a boot finishing, an auto-backup, a network cut
//!     ending ([`super::Vim::sync_to`]), whoever moved the time (a request, the fleet's tick);
//!   - anything else that takes the API state mutably: the control API, the harness, tests
//!     (the server's lock guard, `server::VimGuard`, bumps when it was used mutably).
//!
//!   A host's signal also bumps the vCenter in front of it ([`Changes::also_wake`]), since the
//!   vCenter shows the host (its tasks, its `connectionState`).
//! - **a horizon** ([`Horizon`]): the virtual time at which what the wait read changes by time
//!   alone. Events (a task's work, a boot finishing, a cut ending) come from
//!   [`super::Vim::next_due`] of each API state read; values that drift (a running task's
//!   `progress`, a task starting, `summary.quickStats.uptime`, `recentTask` forgetting an old
//!   task) are noted by whoever builds them ([`super::Vim::note_drift`]), so only waits that
//!   read them wake for them. The server turns virtual into wall time at the clock's speed.
//! - the wait's own limit (`maxWaitSeconds`, or the legacy cap), a clock that was moved or
//!   re-speeded (`clock::RealTimeClock::rebased`), or the server shutting down.
//!
//! What is not reported by itself: `serverClock` and the `lastActiveTime` and call counts of
//! sessions (a read refreshes those; it wakes nobody). They show with the next change.

use std::sync::{Arc, OnceLock};

use tokio::sync::watch;

use crate::clock::SimTime;

/// One API state's change signal: a generation counter that waiters watch.
#[derive(Clone, Debug)]
pub struct Changes(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    generation: watch::Sender<u64>,
    /// Who shows this state too, and wakes with it (a host's vCenter).
    also: OnceLock<Changes>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes(Arc::new(Inner {
            generation: watch::Sender::new(0),
            also: OnceLock::new(),
        }))
    }
}

impl Changes {
    /// Something may have changed: every waiter looks again.
    pub fn bump(&self) {
        self.0.generation.send_modify(|g| *g = g.wrapping_add(1));
        if let Some(other) = self.0.also.get() {
            other.bump();
        }
    }
    /// A receiver that has seen the current generation: its `changed()` waits for the next.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.generation.subscribe()
    }
    /// From now on a bump here bumps `other` too (set once: a host has one vCenter).
    pub fn also_wake(&self, other: Changes) {
        let _ = self.0.also.set(other);
    }
    pub fn generation(&self) -> u64 {
        *self.0.generation.borrow()
    }
}

/// When what a waiter read changes by time alone (virtual time; None: not by time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Horizon {
    /// The next event of the model: answered as soon as it is due.
    pub event: Option<SimTime>,
    /// The next step of a drifting value: answered when due, but not more often than the
    /// server allows (at high clock speeds a value drifts every few microseconds).
    pub drift: Option<SimTime>,
}

fn earliest(a: Option<SimTime>, b: Option<SimTime>) -> Option<SimTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Horizon {
    pub fn event(&mut self, t: Option<SimTime>) {
        self.event = earliest(self.event, t);
    }
    pub fn drift(&mut self, t: Option<SimTime>) {
        self.drift = earliest(self.drift, t);
    }
    pub fn merge(&mut self, other: Horizon) {
        self.event(other.event);
        self.drift(other.drift);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Value;
    use crate::soap::envelope;
    use crate::vim::{Ctx, Vim};
    use std::time::Duration;

    fn vim() -> Vim {
        let host = crate::HostConfig::new(crate::Profile::named("7.0U3").unwrap())
            .seed(4)
            .build()
            .unwrap();
        Vim::new(host, Default::default())
    }

    /// A call as root (an in-process session, as a vCenter's forwarding uses).
    fn call(vim: &mut Vim, ty: &str, id: &str, method: &str, params: &str) -> Ctx {
        let xml = format!(
            "<{method} xmlns=\"urn:vim25\"><_this type=\"{ty}\">{id}</_this>{params}</{method}>"
        );
        let req = crate::soap::parse(envelope(&xml).as_bytes()).unwrap();
        let mut ctx = Ctx {
            system: Some("root".into()),
            ..Ctx::default()
        };
        vim.call(&req, &mut ctx).unwrap();
        ctx
    }

    #[test]
    fn calls_that_may_change_something_bump_and_reads_do_not() {
        let mut v = vim();
        let g = v.changes().generation();
        call(
            &mut v,
            "ServiceInstance",
            "ServiceInstance",
            "CurrentTime",
            "",
        );
        call(
            &mut v,
            "HostSystem",
            "ha-host",
            "Fetch",
            "<prop>name</prop>",
        );
        call(
            &mut v,
            "OptionManager",
            "ha-adv-options",
            "QueryOptions",
            "",
        );
        assert_eq!(v.changes().generation(), g, "reads wake nobody");
        call(
            &mut v,
            "OptionManager",
            "ha-adv-options",
            "UpdateOptions",
            "<changedValue><key>UserVars.SuppressShellWarning</key>\
             <value xsi:type=\"xsd:long\">1</value></changedValue>",
        );
        assert_eq!(v.changes().generation(), g + 1);
        // A call refused at the door changes nothing and wakes nobody.
        let xml = "<UpdateOptions xmlns=\"urn:vim25\"><_this type=\"OptionManager\">\
                   ha-adv-options</_this></UpdateOptions>";
        let req = crate::soap::parse(envelope(xml).as_bytes()).unwrap();
        assert!(v.call(&req, &mut Ctx::default()).is_err(), "no session");
        assert_eq!(v.changes().generation(), g + 1);
    }

    #[test]
    fn a_task_is_an_event_when_it_completes_and_a_drift_while_it_waits_and_runs() {
        let mut v = vim();
        let start = v.now();
        assert_eq!(v.next_due(), None, "an idle host has nothing due");
        let filter = |task: &str| {
            format!(
                "<spec><propSet><type>Task</type><pathSet>info.state</pathSet></propSet>\
                 <objectSet><obj type=\"Task\">{task}</obj></objectSet></spec>\
                 <partialUpdates>false</partialUpdates>"
            )
        };
        call(
            &mut v,
            "HostSystem",
            "ha-host",
            "EnterMaintenanceMode_Task",
            "<timeout>0</timeout>",
        );
        let task = v.tasks.values().next().unwrap().clone();
        assert_eq!(v.next_due(), Some(task.ends));
        call(
            &mut v,
            "PropertyCollector",
            "ha-property-collector",
            "CreateFilter",
            &filter(&task.id),
        );
        let wait = |v: &mut Vim| {
            let params = "<version></version><options><maxWaitSeconds>9</maxWaitSeconds></options>";
            call(
                v,
                "PropertyCollector",
                "ha-property-collector",
                "WaitForUpdatesEx",
                params,
            )
        };
        assert_eq!(
            wait(&mut v).pending,
            None,
            "the initial state is reported at once"
        );
        // Nothing new to report now: a queued task starts by time alone, and completes.
        let version = v.collector_versions.values().next().unwrap().to_string();
        let params = format!(
            "<version>{version}</version><options><maxWaitSeconds>9</maxWaitSeconds></options>"
        );
        let pending = call(
            &mut v,
            "PropertyCollector",
            "ha-property-collector",
            "WaitForUpdatesEx",
            &params,
        )
        .pending
        .expect("nothing changed: the wait is pending");
        assert_eq!(pending.max_wait, Some(Duration::from_secs(9)));
        assert_eq!(pending.horizon.event, Some(task.ends));
        assert_eq!(pending.horizon.drift, Some(task.starts));
        // Running, the progress steps by tenths.
        v.sync_to(task.starts.plus(Duration::from_millis(1)));
        let info = super::super::task::info(&v, &task);
        assert!(
            matches!(info.get("progress"), Some(Value::Int(0))),
            "{info:?}"
        );
        let step = v.take_horizon().drift.unwrap();
        assert!(step > task.starts && step < task.ends, "{step:?}");
        // Its work is due: moving time there runs it, and that is a change.
        let g = v.changes().generation();
        v.sync_to(task.ends);
        assert_eq!(v.changes().generation(), g + 1);
        assert!(v.host.in_maintenance_mode());
        assert_eq!(v.next_due(), None);
        // Moving time with nothing due is not.
        v.sync_to(start.plus(Duration::from_secs(60)));
        assert_eq!(v.changes().generation(), g + 1);
    }

    #[test]
    fn a_bump_wakes_subscribers_and_the_state_that_shows_this_one() {
        let host = Changes::default();
        let vcenter = Changes::default();
        host.also_wake(vcenter.clone());
        let mut on_host = host.subscribe();
        let mut on_vcenter = vcenter.subscribe();
        assert!(!on_host.has_changed().unwrap());
        host.bump();
        assert!(on_host.has_changed().unwrap());
        assert!(on_vcenter.has_changed().unwrap());
        on_host.mark_unchanged();
        on_vcenter.mark_unchanged();
        // Not the other way round: a vCenter's own change is not its hosts'.
        vcenter.bump();
        assert!(!on_host.has_changed().unwrap());
        assert!(on_vcenter.has_changed().unwrap());
        assert_eq!(host.generation(), 1);
    }

    #[test]
    fn horizons_keep_the_earliest_of_each_kind() {
        let mut h = Horizon::default();
        h.event(Some(SimTime(50)));
        h.event(None);
        h.event(Some(SimTime(70)));
        h.drift(Some(SimTime(90)));
        let mut other = Horizon::default();
        other.drift(Some(SimTime(80)));
        h.merge(other);
        assert_eq!(
            h,
            Horizon {
                event: Some(SimTime(50)),
                drift: Some(SimTime(80))
            }
        );
    }
}
