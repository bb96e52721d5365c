//! What a host's HTTPS port does while the host reboots, phase by phase (issue 13).
//!
//! A real host answers the call that reboots it (RestoreFirmwareConfiguration, ResetFirmware-
//! ToFactoryDefaults, RebootHost_Task), then shuts down, is off the network while the machine
//! restarts, and comes back in steps: the reverse proxy (rhttpproxy) starts before hostd and,
//! until hostd is up, answers every request with `503 Service Unavailable`. Clients that wait
//! for a reboot meet each phase, and a tool that takes "the port answers" for "the host is
//! back" fails on a real host; so the simulator serves the phases, inside the boot time:
//!
//! | phase | when | a new connection | a request |
//! |---|---|---|---|
//! | up | running | served | answered |
//! | stopping | the first `stopping` of a reboot | served | `503` (hostd has stopped, the proxy not yet) |
//! | down | then, until `hostd_start` before the boot ends; and while off | refused (the listener is closed) | dropped |
//! | starting | the last `hostd_start` of the boot | served | `503` (the proxy is up, hostd not yet) |
//!
//! The port closes 250 ms (wall time) before `down` begins, and connections the kernel has
//! queued by then are served (503), so a client polling the port sees 503 then refused, never a
//! reset or a connection closed unanswered (a close with connections queued resets them; one
//! accepted once down is dropped). [inferred: a real host may reset a few as hostd dies.]
//!
//! Defaults [inferred: the facts give no timings]: 5 s stopping and 20 s starting, each at
//! most a quarter of the boot time (so a `--boot-time 3s` test host still reboots in 3 s).
//! A boot from power-on has no stopping phase (nothing was running). A host whose network the
//! control API cut (`unreachable`) keeps its listener and drops what arrives, as before.

use std::time::Duration;

use crate::clock::SimTime;
use crate::host::{EventKind, PowerState};
use crate::vim::Vim;

/// The phases' lengths (virtual time) and what "down" does to a new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebootPhases {
    /// After a reboot begins: the proxy answers 503 while hostd stops.
    pub stopping: Duration,
    /// Before the boot ends: the proxy answers 503 while hostd starts.
    pub hostd_start: Duration,
    /// Down: refuse new connections (close the listener), or accept and close them at once
    /// (what esxi-sim did before; a client sees a reset instead of a refusal).
    pub refuse_while_down: bool,
}

impl Default for RebootPhases {
    fn default() -> RebootPhases {
        RebootPhases {
            stopping: Duration::from_secs(5),
            hostd_start: Duration::from_secs(20),
            refuse_while_down: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Up,
    Stopping,
    Down,
    Starting,
    /// The network is cut (control API): connections are accepted and closed.
    Unreachable,
}

impl Phase {
    /// The proxy is up but hostd is not: requests get 503.
    pub fn proxy_only(self) -> bool {
        matches!(self, Phase::Stopping | Phase::Starting)
    }
}

/// The phase of an endpoint's host now, and when it next changes by time alone.
pub fn phase(vim: &Vim, p: &RebootPhases) -> (Phase, Option<SimTime>) {
    if vim.estate.is_some() {
        return (Phase::Up, None); // a vCenter does not reboot
    }
    if let Some(until) = vim.link_down_until() {
        return (Phase::Unreachable, Some(until));
    }
    let h = &vim.host;
    let now = h.now();
    match h.power_state() {
        PowerState::On => (Phase::Up, vim.next_due()),
        PowerState::Off => (Phase::Down, None),
        PowerState::Booting { ready_at } => {
            let boot = h.boot_time();
            let quarter = boot / 4;
            let started = SimTime(ready_at.as_millis().saturating_sub(boot.as_millis() as u64));
            // Only a reboot has something to stop; a power-on starts from nothing.
            let rebooted = h
                .events()
                .iter()
                .rev()
                .find_map(|e| match e.kind {
                    EventKind::Reboot { .. } => Some(true),
                    EventKind::PoweredOn => Some(false),
                    _ => None,
                })
                .unwrap_or(false);
            let stop_end = match rebooted {
                true => started.plus(p.stopping.min(quarter)),
                false => started,
            };
            let start_begin = SimTime(
                ready_at
                    .as_millis()
                    .saturating_sub(p.hostd_start.min(quarter).as_millis() as u64),
            );
            if now < stop_end {
                (Phase::Stopping, Some(stop_end))
            } else if now < start_begin {
                (Phase::Down, Some(start_begin))
            } else {
                (Phase::Starting, Some(ready_at))
            }
        }
    }
}

/// rhttpproxy's answer for `/sdk` when hostd is not listening, as hosts show it while hostd
/// starts (text as widely quoted from real hosts; the object address is zeroed).
pub const PROXY_503_BODY: &str = "503 Service Unavailable (Failed to connect to endpoint: \
[N7Vmacore4Http20NamedPipeServiceSpecE:0x0000000000000000] _serverNamespace = /sdk \
action = Allow _pipeName =/var/run/vmware/proxy-sdk-tunnel)";
