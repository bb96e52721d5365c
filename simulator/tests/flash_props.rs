//! Flash faults over random operation sequences, in the style of `model_props.rs`. After every
//! step:
//! - nothing panicked, whatever the faults and the operation;
//! - while the device is read-only or full, `/bootbank/state.tgz` keeps its bytes (and the bank
//!   its wear counters), whatever was asked: saves, syncs, bundles, reboots, restores, resets;
//! - a pending torn write is used up by exactly the operations that replaced state.tgz by a save,
//!   and a step whose one save was torn leaves a state.tgz that does not unpack;
//! - faults are kept across crashes, power cuts and reboots: only `set_flash_faults` changes
//!   them (apart from the torn flag clearing itself).

use std::time::Duration;

use esxi_sim::host::{FlashFaults, RebootKind};
use esxi_sim::profile::{Profile, Schedule};
use esxi_sim::{Host, HostConfig};
use proptest::prelude::*;

const FILES: [&str; 4] = [
    "etc/hosts",
    "etc/resolv.conf",
    "etc/vmware/snmp.xml",
    "etc/new.conf",
];

#[derive(Clone, Debug)]
enum Op {
    SetFaults(bool, bool, bool),
    Write(usize, u8),
    Advance(u32),
    Sync,
    Backup,
    Crash,
    PowerCut,
    ArmPowerCutMidSave,
    PowerOn,
    Reboot(bool),
    EnterMm,
    ExitMm,
    /// Restore one of this host's bundles (possibly truncated), forced or not.
    Restore {
        which: usize,
        truncate: bool,
        force: bool,
    },
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (prop::bool::weighted(0.4), prop::bool::weighted(0.3), prop::bool::weighted(0.3))
            .prop_map(|(r, f, t)| Op::SetFaults(r, f, t)),
        6 => (0..FILES.len(), any::<u8>()).prop_map(|(f, v)| Op::Write(f, v)),
        5 => prop_oneof![1u32..15, 15u32..130, 130u32..600].prop_map(Op::Advance),
        3 => Just(Op::Sync),
        2 => Just(Op::Backup),
        1 => Just(Op::Crash),
        1 => Just(Op::PowerCut),
        1 => Just(Op::ArmPowerCutMidSave),
        2 => Just(Op::PowerOn),
        2 => any::<bool>().prop_map(Op::Reboot),
        2 => Just(Op::EnterMm),
        1 => Just(Op::ExitMm),
        2 => (0usize..4, prop::bool::weighted(0.2), any::<bool>())
            .prop_map(|(which, truncate, force)| Op::Restore { which, truncate, force }),
        1 => Just(Op::Reset),
    ]
}

fn run(ops: Vec<Op>, seed: u64) -> Result<(), TestCaseError> {
    let mut host: Host = HostConfig::new(Profile::named("8.0U3").unwrap())
        .seed(seed)
        .schedule(Schedule::EveryMinutes(10))
        .boot_time(Duration::ZERO)
        .build()
        .unwrap();
    let mut bundles: Vec<Vec<u8>> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        let faults = host.flash_faults().clone();
        let bank = host.bootbank().unwrap().clone();
        let refusing = faults.read_only || faults.full;
        // Results are not judged here (model_props.rs does that on a healthy device): only
        // that nothing panics and the properties below hold.
        match op.clone() {
            Op::SetFaults(read_only, full, torn_next_write) => {
                let f = FlashFaults {
                    read_only,
                    full,
                    torn_next_write,
                };
                host.set_flash_faults(f.clone());
                prop_assert_eq!(host.flash_faults(), &f, "{}", ctx);
                continue;
            }
            Op::Write(f, v) => {
                let _ = host.write_file(FILES[f], format!("value {v}\n"));
            }
            Op::Advance(minutes) => host.advance(Duration::from_secs(minutes as u64 * 60)),
            Op::Sync => {
                let _ = host.sync();
            }
            Op::Backup => {
                if let Ok(b) = host.backup_bundle() {
                    bundles.push(b.bytes.to_vec());
                }
            }
            Op::Crash => {
                let _ = host.crash();
            }
            Op::PowerCut => {
                let _ = host.power_cut();
            }
            Op::ArmPowerCutMidSave => host.arm_power_cut_during_next_save(),
            Op::PowerOn => {
                let _ = host.power_on();
            }
            Op::Reboot(graceful) => {
                let kind = if graceful {
                    RebootKind::Graceful
                } else {
                    RebootKind::Forced
                };
                let _ = host.reboot(kind, "test");
            }
            Op::EnterMm => {
                let _ = host.enter_maintenance_mode();
            }
            Op::ExitMm => {
                let _ = host.exit_maintenance_mode();
            }
            Op::Restore {
                which,
                truncate,
                force,
            } => {
                if let Some(b) = (!bundles.is_empty()).then(|| &bundles[which % bundles.len()]) {
                    let mut b = b.clone();
                    if truncate {
                        b.truncate(b.len() / 2);
                    }
                    let _ = host.restore_bundle(b, force);
                }
            }
            Op::Reset => {
                let _ = host.reset_to_factory_defaults();
            }
        }
        let after = host.bootbank().unwrap();
        let saves = after.writes.state_saves - bank.writes.state_saves;
        if refusing {
            // Compared with prop_assert! so a failure names the step, not kilobytes of gzip.
            prop_assert!(
                after.state_tgz() == bank.state_tgz(),
                "{}: state.tgz changed on a {:?} device",
                ctx,
                faults
            );
            prop_assert_eq!(after.writes, bank.writes, "{}: bank written", ctx);
            prop_assert_eq!(host.flash_faults(), &faults, "{}", ctx);
        } else if faults.torn_next_write {
            prop_assert_eq!(
                host.flash_faults().torn_next_write,
                saves == 0,
                "{}: the torn flag after {} saves",
                ctx,
                saves
            );
            if saves == 1 {
                prop_assert!(
                    after.corrupt_reason().is_some(),
                    "{}: a torn save left a readable state.tgz",
                    ctx
                );
            }
        } else {
            prop_assert_eq!(host.flash_faults(), &faults, "{}", ctx);
        }
        let mut kept = faults.clone();
        kept.torn_next_write = host.flash_faults().torn_next_write;
        prop_assert_eq!(host.flash_faults(), &kept, "{}: faults changed", ctx);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn flash_faults_never_panic_and_read_only_or_full_never_change_state_tgz(
        ops in prop::collection::vec(op(), 1..60),
        seed in any::<u64>(),
    ) {
        run(ops, seed)?;
    }
}
