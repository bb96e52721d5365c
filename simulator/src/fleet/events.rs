//! The fleet's event log: every host's events (saves, crashes, boots, restores, ...) and every
//! fault rule that fired, numbered in the order the fleet saw them, kept up to a capacity, and
//! broadcast live (the control API's Server-Sent Events stream).
//!
//! Hosts keep their own short logs (see [`crate::host::events`]); the fleet copies what is new
//! each time it syncs hosts, by each log's running total, so nothing is copied twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::clock::SimTime;
use crate::host::EventLog;
use crate::server::faults::Fired;

/// One event as the control API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct FleetEvent {
    /// Position in the fleet log (ascending; gaps mean events were dropped at capacity).
    pub seq: u64,
    /// Virtual time, RFC 3339.
    pub at: String,
    #[serde(skip)]
    pub time: SimTime,
    /// The host's index, or None for the vCenter / the fleet itself.
    pub host: Option<usize>,
    /// The host's name (its address), or `vcenter`.
    pub host_name: String,
    /// A stable kind: `saved`, `save-failed`, `crashed`, `booted`, ..., `fault`.
    pub kind: String,
    pub text: String,
}

pub struct FleetLog {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<FleetEvent>>,
}

struct Inner {
    events: VecDeque<Arc<FleetEvent>>,
    capacity: usize,
    next_seq: u64,
    /// Per host: how many of its events the fleet has copied.
    seen: HashMap<usize, u64>,
}

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub host: Option<usize>,
    pub kinds: Vec<String>,
    /// Only events with a larger `seq`.
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

impl Filter {
    pub fn accepts(&self, e: &FleetEvent) -> bool {
        self.host.is_none_or(|h| e.host == Some(h))
            && (self.kinds.is_empty() || self.kinds.contains(&e.kind))
            && self.after.is_none_or(|a| e.seq > a)
    }
}

impl FleetLog {
    pub fn new(capacity: usize) -> FleetLog {
        let (tx, _) = broadcast::channel(4096);
        FleetLog {
            inner: Mutex::new(Inner {
                events: VecDeque::new(),
                capacity: capacity.max(1),
                next_seq: 1,
                seen: HashMap::new(),
            }),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, g: &mut Inner, mut e: FleetEvent) {
        e.seq = g.next_seq;
        g.next_seq += 1;
        let e = Arc::new(e);
        if g.events.len() == g.capacity {
            g.events.pop_front();
        }
        g.events.push_back(e.clone());
        // Nobody listening is fine.
        let _ = self.tx.send(e);
    }

    /// Copies a host's events that the fleet has not seen yet.
    pub fn take_from(&self, index: usize, name: &str, log: &EventLog) {
        let total = log.total();
        let mut g = self.lock();
        let seen = g.seen.get(&index).copied().unwrap_or(0);
        if total == seen {
            return;
        }
        let new = (total - seen).min(log.iter().len() as u64) as usize;
        let skip = log.iter().len() - new;
        for ev in log.iter().skip(skip) {
            let e = FleetEvent {
                seq: 0,
                at: ev.at.to_rfc3339(),
                time: ev.at,
                host: Some(index),
                host_name: name.to_string(),
                kind: ev.kind.name().to_string(),
                text: ev.kind.to_string(),
            };
            self.push(&mut g, e);
        }
        g.seen.insert(index, total);
    }

    /// A host's log started over (a reinstall): count its events from zero again.
    pub fn restart(&self, index: usize) {
        self.lock().seen.insert(index, 0);
    }

    pub fn push_fault(&self, at: SimTime, f: &Fired) {
        let mut g = self.lock();
        let e = FleetEvent {
            seq: 0,
            at: at.to_rfc3339(),
            time: at,
            host: f.index,
            host_name: f.endpoint.clone(),
            kind: "fault".into(),
            text: format!("rule {} fired on {}: {}", f.rule, f.method, f.action),
        };
        self.push(&mut g, e);
    }

    /// Events matching a filter, oldest first (at most `limit`, the newest ones).
    pub fn list(&self, f: &Filter) -> Vec<Arc<FleetEvent>> {
        let g = self.lock();
        let mut out: Vec<Arc<FleetEvent>> =
            g.events.iter().filter(|e| f.accepts(e)).cloned().collect();
        if let Some(l) = f.limit {
            if out.len() > l {
                out.drain(..out.len() - l);
            }
        }
        out
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FleetEvent>> {
        self.tx.subscribe()
    }

    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::EventKind;

    #[test]
    fn copies_each_event_once_and_filters() {
        let log = FleetLog::new(10);
        let mut host = EventLog::new(4);
        host.push(SimTime(1000), EventKind::Crashed);
        host.push(SimTime(2000), EventKind::PoweredOn);
        log.take_from(3, "127.1.0.4", &host);
        log.take_from(3, "127.1.0.4", &host);
        assert_eq!(log.list(&Filter::default()).len(), 2);
        for _ in 0..6 {
            host.push(SimTime(3000), EventKind::Crashed);
        }
        // Only the host's last 4 are still there to copy.
        log.take_from(3, "127.1.0.4", &host);
        let all = log.list(&Filter::default());
        assert_eq!(all.len(), 6);
        let crashes = log.list(&Filter {
            kinds: vec!["crashed".into()],
            ..Filter::default()
        });
        assert_eq!(crashes.len(), 5);
        assert!(log
            .list(&Filter {
                host: Some(2),
                ..Filter::default()
            })
            .is_empty());
        let after = log.list(&Filter {
            after: Some(all[3].seq),
            ..Filter::default()
        });
        assert_eq!(after.len(), 2);
    }

    #[test]
    fn capacity_drops_the_oldest() {
        let log = FleetLog::new(3);
        let mut host = EventLog::new(16);
        for i in 0..5 {
            host.push(SimTime(i), EventKind::Crashed);
        }
        log.take_from(0, "h", &host);
        let all = log.list(&Filter::default());
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(log.last_seq(), 5);
    }
}
