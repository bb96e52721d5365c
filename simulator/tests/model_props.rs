//! The host model against a simple reference model, over random operation sequences
//! (issue 3's state-machine test). Invariants checked after every step:
//! - RAM `/etc` (the tracked files) equals the reference, so after any boot it equals the last
//!   completed save overlaid on the image (image defaults if none);
//! - the boot bank's saved files equal the reference's last completed save;
//! - an auto-backup over an unchanged configuration writes nothing to the boot bank;
//! - a graceful reboot keeps every marked change (only crash, power cut and forced reboot lose),
//!   except deletions of image files, which the marker rule cannot persist;
//! - a rejected restore changes nothing (boot bank, RAM, power state).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use esxi_sim::clock::SimTime;
use esxi_sim::host::{HostError, PowerState, RebootKind};
use esxi_sim::profile::{Profile, Schedule};
use esxi_sim::{Host, HostConfig};
use proptest::prelude::*;

/// Sticky image files, a non-sticky image file, and two files the image lacks.
const TRACKED: [&str; 7] = [
    "etc/hosts",
    "etc/resolv.conf",
    "etc/vmware/locker.conf",
    "etc/vmware/snmp.xml",
    "etc/profile",
    "etc/new-a.conf",
    "etc/vmware/new-b.cfg",
];

#[derive(Clone, Debug)]
enum Op {
    Write(usize, u8),
    Delete(usize),
    Advance(u32),
    Sync,
    Crash,
    PowerCut,
    ArmPowerCutMidSave,
    PowerOn,
    Reboot(bool),
    Backup,
    EnterMm,
    ExitMm,
    /// Restore bundle number i of this host's backups (or the other host's, or a truncated copy).
    Restore {
        which: usize,
        other_host: bool,
        hostile: bool,
        force: bool,
    },
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..TRACKED.len(), any::<u8>()).prop_map(|(f, v)| Op::Write(f, v)),
        2 => (0..TRACKED.len()).prop_map(Op::Delete),
        5 => prop_oneof![1u32..15, 15u32..130, 130u32..600].prop_map(Op::Advance),
        2 => Just(Op::Sync),
        1 => Just(Op::Crash),
        1 => Just(Op::PowerCut),
        1 => Just(Op::ArmPowerCutMidSave),
        2 => Just(Op::PowerOn),
        2 => any::<bool>().prop_map(Op::Reboot),
        2 => Just(Op::Backup),
        2 => Just(Op::EnterMm),
        1 => Just(Op::ExitMm),
        3 => (0usize..4, any::<bool>(), prop::bool::weighted(0.2), any::<bool>()).prop_map(
            |(which, other_host, hostile, force)| Op::Restore { which, other_host, hostile, force }
        ),
        1 => Just(Op::Reset),
    ]
}

type Files = BTreeMap<String, Vec<u8>>;

/// The reference: what the facts say, written as plainly as possible.
struct Ref {
    image: BTreeMap<String, (Vec<u8>, bool)>,
    ram: BTreeMap<String, Option<Vec<u8>>>,
    sticky: BTreeSet<String>,
    marked: BTreeSet<String>,
    /// Tracked files in state.tgz; None = no state.tgz.
    state: Option<Files>,
    on: bool,
    maintenance: bool,
    armed: bool,
    now: SimTime,
    schedule: Schedule,
    sync_window: (u64, u32),
    backups: Vec<(Vec<u8>, Files)>,
}

impl Ref {
    fn boot(&mut self) {
        self.marked.clear();
        self.sticky = self
            .image
            .iter()
            .filter(|(_, (_, s))| *s)
            .map(|(p, _)| p.clone())
            .collect();
        for p in TRACKED {
            let img = self.image.get(p).map(|(d, _)| d.clone());
            self.ram.insert(p.to_string(), img);
        }
        if let Some(state) = &self.state {
            for (p, d) in state {
                self.ram.insert(p.clone(), Some(d.clone()));
                self.marked.insert(p.clone());
                self.sticky.insert(p.clone());
            }
        }
        self.on = true;
    }
    fn lose_power(&mut self) {
        self.on = false;
    }
    /// backup.sh: returns false when an armed power cut struck. An armed cut waits for a save,
    /// whatever happens before it.
    fn save(&mut self) -> bool {
        if self.armed {
            self.armed = false;
            self.lose_power();
            return false;
        }
        let files: Files = self
            .marked
            .iter()
            .filter_map(|p| Some((p.clone(), self.ram.get(p)?.clone()?)))
            .collect();
        self.state = Some(files);
        true
    }
    fn differs(&self) -> bool {
        let Some(state) = &self.state else {
            return true;
        };
        self.marked.iter().any(|p| {
            let ram = self.ram.get(p).cloned().flatten().unwrap_or_default();
            ram != state.get(p).cloned().unwrap_or_default()
        })
    }
    /// Fires every schedule point in (now, t].
    fn advance_to(&mut self, t: SimTime) {
        loop {
            let next = self.schedule.next_after(self.now);
            if next > t || !self.on {
                break;
            }
            self.now = next;
            if self.differs() {
                self.save();
            }
        }
        self.now = self.now.max(t);
    }
}

fn tracked_ram(host: &Host) -> BTreeMap<String, Option<Vec<u8>>> {
    TRACKED
        .iter()
        .map(|p| {
            (
                p.to_string(),
                host.read_file(p).unwrap().map(|b| b.to_vec()),
            )
        })
        .collect()
}

fn tracked_state(host: &Host) -> Option<Files> {
    let bank = host.bootbank().unwrap();
    bank.state_tgz()?;
    Some(
        bank.saved()
            .iter()
            .filter(|(p, _)| TRACKED.contains(&p.as_str()))
            .map(|(p, n)| (p.clone(), n.data.to_vec()))
            .collect(),
    )
}

fn run(ops: Vec<Op>, schedule: Schedule, seed: u64) -> Result<(), TestCaseError> {
    let profile = Profile::named("6.7U3").unwrap();
    let mk = |seed| {
        HostConfig::new(profile.clone())
            .seed(seed)
            .schedule(schedule)
            .boot_time(Duration::ZERO)
            .build()
            .unwrap()
    };
    let mut host = mk(seed);
    let mut other = mk(seed ^ 0xdead_beef);
    let other_bundle = other.backup_bundle().unwrap().bytes.to_vec();
    let other_state = tracked_state(&other).unwrap();
    let image = host
        .etc()
        .image()
        .files
        .iter()
        .map(|(p, n)| (p.clone(), (n.data.to_vec(), n.sticky)))
        .collect();
    let mut r = Ref {
        image,
        ram: BTreeMap::new(),
        sticky: BTreeSet::new(),
        marked: BTreeSet::new(),
        state: tracked_state(&host),
        on: true,
        maintenance: false,
        armed: false,
        now: host.now(),
        schedule,
        sync_window: (u64::MAX, 0),
        backups: vec![],
    };
    r.boot();

    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        let writes_before = host.bootbank_writes();
        match op.clone() {
            Op::Write(f, v) => {
                let path = TRACKED[f];
                let data = format!("value {v}\n").into_bytes();
                let res = host.write_file(path, data.clone());
                if r.on {
                    prop_assert!(res.is_ok(), "{ctx}");
                    let exists = r.ram[path].is_some();
                    if exists && r.sticky.contains(path) {
                        r.marked.insert(path.to_string());
                    }
                    if !exists {
                        r.sticky.remove(path);
                    }
                    r.ram.insert(path.to_string(), Some(data));
                } else {
                    prop_assert!(matches!(res, Err(HostError::NotRunning(_))), "{ctx}");
                }
            }
            Op::Delete(f) => {
                let path = TRACKED[f];
                let res = host.delete_file(path);
                if r.on {
                    prop_assert_eq!(res.unwrap(), r.ram[path].is_some(), "{}", ctx);
                    r.ram.insert(path.to_string(), None);
                    r.sticky.remove(path);
                } else {
                    prop_assert!(res.is_err(), "{ctx}");
                }
            }
            Op::Advance(minutes) => {
                let was_clean = r.on && !r.differs();
                let d = Duration::from_secs(minutes as u64 * 60);
                let t = host.now().plus(d);
                host.advance(d);
                r.advance_to(t);
                if was_clean {
                    prop_assert_eq!(
                        host.bootbank_writes(),
                        writes_before,
                        "{}: an unchanged configuration wrote to the boot bank",
                        ctx
                    );
                }
            }
            Op::Sync => {
                let res = host.sync();
                if !r.on {
                    prop_assert!(matches!(res, Err(HostError::NotRunning(_))), "{ctx}");
                } else {
                    let q =
                        r.now.as_millis() / (profile.sync_limit.quantum_minutes as u64 * 60_000);
                    if r.sync_window.0 != q {
                        r.sync_window = (q, 0);
                    }
                    if r.sync_window.1 >= profile.sync_limit.syncs_per_quantum {
                        prop_assert_eq!(res, Err(HostError::TooManyWrites), "{}", ctx);
                    } else {
                        r.sync_window.1 += 1;
                        let ok = r.save();
                        prop_assert_eq!(res.is_ok(), ok, "{}", ctx);
                    }
                }
            }
            Op::Crash | Op::PowerCut => {
                let res = if matches!(op, Op::Crash) {
                    host.crash()
                } else {
                    host.power_cut()
                };
                prop_assert_eq!(res.is_ok(), r.on, "{}", ctx);
                r.lose_power();
            }
            Op::ArmPowerCutMidSave => {
                host.arm_power_cut_during_next_save();
                r.armed = true;
            }
            Op::PowerOn => {
                let res = host.power_on();
                prop_assert_eq!(res.is_ok(), !r.on, "{}", ctx);
                if !r.on {
                    r.boot();
                }
            }
            Op::Reboot(graceful) => {
                // Content changes of marked files survive a graceful reboot. Deletions do not: backup.sh
                // skips a marker whose file is gone, so the image's copy returns at boot.
                let before: Vec<_> = r
                    .marked
                    .iter()
                    .filter(|p| r.ram[*p].is_some())
                    .map(|p| (p.clone(), r.ram[p].clone()))
                    .collect();
                let kind = if graceful {
                    RebootKind::Graceful
                } else {
                    RebootKind::Forced
                };
                let res = host.reboot(kind, "test");
                prop_assert_eq!(res.is_ok(), r.on, "{}", ctx);
                if r.on {
                    let survived = !graceful || r.save();
                    if survived {
                        r.boot();
                        if graceful {
                            for (p, d) in before {
                                prop_assert_eq!(
                                    &r.ram[&p],
                                    &d,
                                    "{}: graceful reboot lost {}",
                                    ctx,
                                    p
                                );
                            }
                        }
                    }
                }
            }
            Op::Backup => {
                let res = host.backup_bundle();
                if !r.on {
                    prop_assert!(res.is_err(), "{ctx}");
                } else if r.save() {
                    let b = res.map_err(|e| TestCaseError::fail(format!("{ctx}: {e}")))?;
                    r.backups.push((b.bytes.to_vec(), r.state.clone().unwrap()));
                } else {
                    prop_assert!(res.is_err(), "{ctx}: power cut during the backup's save");
                }
            }
            Op::EnterMm | Op::ExitMm => {
                let enter = matches!(op, Op::EnterMm);
                let res = if enter {
                    host.enter_maintenance_mode()
                } else {
                    host.exit_maintenance_mode()
                };
                let ok = r.on && r.maintenance != enter;
                prop_assert_eq!(res.is_ok(), ok, "{}", ctx);
                if ok {
                    r.maintenance = enter;
                }
            }
            Op::Restore {
                which,
                other_host,
                hostile,
                force,
            } => {
                let other_uuid = other_host || r.backups.is_empty();
                let (mut bytes, files) = if other_uuid {
                    (other_bundle.clone(), other_state.clone())
                } else {
                    r.backups[which % r.backups.len()].clone()
                };
                if hostile {
                    bytes.truncate(bytes.len() / 2);
                }
                let res = if r.on {
                    host.upload_bundle(bytes).unwrap();
                    let snapshot = (
                        host.bootbank().cloned(),
                        host.etc().clone(),
                        host.power_state(),
                    );
                    let res = host.restore(force);
                    if res.is_err() {
                        let after = (
                            host.bootbank().cloned(),
                            host.etc().clone(),
                            host.power_state(),
                        );
                        prop_assert!(
                            snapshot == after,
                            "{ctx}: a rejected restore changed the host"
                        );
                    }
                    res
                } else {
                    host.restore(force)
                };
                let accepted = r.on && r.maintenance && !hostile && (force || !other_uuid);
                if accepted {
                    prop_assert!(res.is_ok(), "{ctx}: {res:?}");
                    r.state = Some(files);
                    r.boot();
                } else {
                    match &res {
                        Err(HostError::NotRunning(_)) => prop_assert!(!r.on, "{ctx}"),
                        Err(HostError::InvalidState(_)) => prop_assert!(!r.maintenance, "{ctx}"),
                        Err(HostError::InvalidBundle(_)) => prop_assert!(hostile, "{ctx}"),
                        Err(HostError::MismatchedBundle { .. }) => {
                            prop_assert!(other_uuid && !force, "{ctx}")
                        }
                        other => prop_assert!(false, "{ctx}: unexpected {other:?}"),
                    }
                }
            }
            Op::Reset => {
                let res = host.reset_to_factory_defaults();
                let ok = r.on && r.maintenance;
                prop_assert_eq!(res.is_ok(), ok, "{}", ctx);
                if ok {
                    r.state = None;
                    r.boot();
                }
            }
        }
        prop_assert!(host.now() >= r.now, "{ctx}: time went backwards");
        r.now = host.now();
        prop_assert_eq!(host.power_state() == PowerState::On, r.on, "{}: power", ctx);
        if r.on {
            prop_assert_eq!(
                &tracked_ram(&host),
                &r.ram,
                "{}: RAM /etc differs from the reference",
                ctx
            );
        }
        prop_assert_eq!(
            &tracked_state(&host),
            &r.state,
            "{}: state.tgz differs from the reference",
            ctx
        );
    }
    let _ = &mut other;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn ten_minute_schedule_matches_the_reference(ops in prop::collection::vec(op(), 1..60), seed in any::<u64>()) {
        run(ops, Schedule::EveryMinutes(10), seed)?;
    }

    #[test]
    fn hourly_schedule_matches_the_reference(ops in prop::collection::vec(op(), 1..60), seed in any::<u64>()) {
        run(ops, Schedule::HourlyAtMinute(1), seed)?;
    }
}
