//! Issue 3's state machine for a 7.0 U2+ host with its keys (facts 6.4–6.5): random sequences of
//! configuration changes, saves, crashes, reboots, TPM mode, recovery key rotations, board
//! replacements and power-ons with the right or a wrong recovery key, against a reference that
//! says what the facts say:
//! - a state sealed in TPM mode opens only on the board whose TPM sealed it, or with the recovery
//!   key of that state (the one it was saved with, not one rotated in since); otherwise the
//!   boot stops with the security-violation message and the boot bank stays as it was;
//! - a boot opened with the recovery key comes up with the saved configuration, and the next
//!   save seals it to the new board, after which it boots without a key;
//! - NONE mode boots on any board; TPM mode cannot be undone; RAM `/etc/hosts` and the saved
//!   one match the reference after every step.

use std::time::Duration;

use esxi_sim::fleet::shared_none_material;
use esxi_sim::host::{HostError, PowerState, RebootKind};
use esxi_sim::keystore::{derive_none_key, Mode};
use esxi_sim::profile::Schedule;
use esxi_sim::state::SECURITY_VIOLATION;
use esxi_sim::{Host, HostConfig, Profile};
use proptest::prelude::*;

const WRONG_KEY: &str = "111111-222222-333333-444444-555555-666666-777777-888888-\
                         999999-000000-111111-222222-333333-444444-555555-666666";

#[derive(Clone, Debug)]
enum Op {
    Write(u8),
    /// Ten minutes: one auto-backup run.
    Advance,
    Crash,
    GracefulReboot,
    PowerOn,
    PowerOnWithKey {
        right: bool,
    },
    ReplaceBoard,
    SetTpm,
    SetNone,
    Rotate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => any::<u8>().prop_map(Op::Write),
        4 => Just(Op::Advance),
        2 => Just(Op::Crash),
        2 => Just(Op::GracefulReboot),
        2 => Just(Op::PowerOn),
        3 => any::<bool>().prop_map(|right| Op::PowerOnWithKey { right }),
        2 => Just(Op::ReplaceBoard),
        2 => Just(Op::SetTpm),
        1 => Just(Op::SetNone),
        2 => Just(Op::Rotate),
    ]
}

/// What RAM holds of the keys: the mode, the board the key is sealed to, the recovery key.
#[derive(Clone, Debug, PartialEq)]
struct Keys {
    mode: Mode,
    board: u32,
    recovery: Option<String>,
}

#[derive(Clone, Debug)]
struct Saved {
    hosts: Vec<u8>,
    keys: Keys,
}

struct Ref {
    on: bool,
    halted: bool,
    board: u32,
    hosts: Vec<u8>,
    keys: Keys,
    bank: Saved,
}

impl Ref {
    fn differs(&self) -> bool {
        self.hosts != self.bank.hosts || self.keys != self.bank.keys
    }
    fn save(&mut self) {
        self.bank = Saved {
            hosts: self.hosts.clone(),
            keys: self.keys.clone(),
        };
    }
    /// A boot; `key` is what was typed at the prompt.
    fn boot(&mut self, key: Option<&str>) {
        let locked = self.bank.keys.mode == Mode::Tpm && self.bank.keys.board != self.board;
        if locked && (key.is_none() || key != self.bank.keys.recovery.as_deref()) {
            self.on = false;
            self.halted = true;
            return;
        }
        self.on = true;
        self.halted = false;
        self.hosts = self.bank.hosts.clone();
        self.keys = self.bank.keys.clone();
        // Opened with the recovery key: sealed again to this board's TPM in RAM, saved next.
        self.keys.board = self.board;
    }
}

fn host(seed: u64, mode: Mode) -> Host {
    let none = shared_none_material(1);
    derive_none_key(&none.0, &none.1);
    HostConfig::new(Profile::named("8.0U3").unwrap())
        .seed(seed)
        .encryption(mode)
        .none_material(none)
        .schedule(Schedule::EveryMinutes(10))
        .boot_time(Duration::ZERO)
        .build()
        .unwrap()
}

fn hosts_file(h: &Host) -> Vec<u8> {
    h.read_file("etc/hosts").unwrap().unwrap().to_vec()
}

fn recovery_text(h: &Host) -> Option<String> {
    h.recovery_key().map(|k| k.key_text())
}

fn run(ops: Vec<Op>, seed: u64, tpm: bool) -> Result<(), TestCaseError> {
    let mode = if tpm { Mode::Tpm } else { Mode::None };
    let mut h = host(seed, mode);
    let keys = Keys {
        mode,
        board: 0,
        recovery: recovery_text(&h),
    };
    prop_assert_eq!(keys.recovery.is_some(), tpm);
    let mut r = Ref {
        on: true,
        halted: false,
        board: 0,
        hosts: hosts_file(&h),
        keys: keys.clone(),
        bank: Saved {
            hosts: hosts_file(&h),
            keys,
        },
    };
    for (step, op) in ops.into_iter().enumerate() {
        let ctx = format!("step {step}: {op:?}");
        let bank_before = h.bootbank().unwrap().state_tgz();
        match op.clone() {
            Op::Write(v) => {
                let data = format!("127.0.0.1 localhost\n10.0.0.{v} nas\n").into_bytes();
                let res = h.write_file("etc/hosts", data.clone());
                prop_assert_eq!(res.is_ok(), r.on, "{}", ctx);
                if r.on {
                    r.hosts = data;
                }
            }
            Op::Advance => {
                h.advance(Duration::from_secs(600));
                if r.on && r.differs() {
                    r.save();
                }
            }
            Op::Crash => {
                prop_assert_eq!(h.crash().is_ok(), r.on, "{}", ctx);
                r.on = false;
            }
            Op::GracefulReboot => {
                let res = h.reboot(RebootKind::Graceful, "test");
                prop_assert_eq!(res.is_ok(), r.on, "{}", ctx);
                if r.on {
                    r.save();
                    r.boot(None);
                }
            }
            Op::PowerOn => {
                prop_assert_eq!(h.power_on().is_ok(), !r.on, "{}", ctx);
                if !r.on {
                    r.boot(None);
                }
            }
            Op::PowerOnWithKey { right } => {
                let key = match (&r.bank.keys.recovery, right) {
                    (Some(k), true) => k.clone(),
                    _ => WRONG_KEY.to_string(),
                };
                let res = h.power_on_with_recovery_key(&key);
                prop_assert_eq!(res.is_ok(), !r.on, "{}: {:?}", ctx, res);
                if !r.on {
                    r.boot(Some(&key));
                }
            }
            Op::ReplaceBoard => {
                prop_assert!(h.replace_board(false).is_ok(), "{ctx}");
                if r.on {
                    r.save(); // shut down gracefully first
                    r.on = false;
                }
                r.board += 1;
            }
            Op::SetTpm => {
                let res = h.set_encryption_mode(Mode::Tpm);
                prop_assert_eq!(res.is_ok(), r.on, "{}: {:?}", ctx, res);
                if r.on && r.keys.mode == Mode::None {
                    r.keys = Keys {
                        mode: Mode::Tpm,
                        board: r.board,
                        recovery: recovery_text(&h),
                    };
                    prop_assert!(r.keys.recovery.is_some(), "{ctx}: no recovery key");
                }
            }
            Op::SetNone => {
                let res = h.set_encryption_mode(Mode::None);
                let ok = r.on && r.keys.mode == Mode::None;
                prop_assert_eq!(res.is_ok(), ok, "{}: {:?}", ctx, res);
                if r.on && r.keys.mode == Mode::Tpm {
                    prop_assert!(matches!(res, Err(HostError::InvalidState(_))), "{ctx}");
                }
            }
            Op::Rotate => {
                let res = h.rotate_recovery_key();
                let ok = r.on && r.keys.mode == Mode::Tpm;
                prop_assert_eq!(res.is_ok(), ok, "{}: {:?}", ctx, res);
                if ok {
                    let new = recovery_text(&h);
                    prop_assert!(new.is_some() && new != r.keys.recovery, "{ctx}");
                    r.keys.recovery = new;
                }
            }
        }

        // The host against the reference.
        prop_assert_eq!(h.power_state() == PowerState::On, r.on, "{}: power", ctx);
        match h.boot_halted() {
            Some(why) => {
                prop_assert!(r.halted, "{ctx}: halted ({why}) where the reference boots");
                prop_assert!(why.contains(SECURITY_VIOLATION), "{ctx}: {why}");
            }
            None => prop_assert!(!r.halted || r.on, "{ctx}: not halted"),
        }
        if r.halted {
            // A stopped boot leaves the boot bank as it was.
            prop_assert_eq!(h.bootbank().unwrap().state_tgz(), bank_before, "{}", ctx);
        }
        if r.on {
            prop_assert_eq!(hosts_file(&h), r.hosts.clone(), "{}: RAM /etc/hosts", ctx);
            let c = h.encryption().expect("a running 8.0U3 host has keys");
            prop_assert_eq!(c.mode, r.keys.mode, "{}: mode", ctx);
            prop_assert_eq!(recovery_text(&h), r.keys.recovery.clone(), "{}", ctx);
        }
        // What the bank holds, as a running host (which opened it) reads it.
        if r.on {
            let saved = h
                .bootbank()
                .unwrap()
                .saved()
                .get("etc/hosts")
                .map(|n| n.data.to_vec());
            prop_assert_eq!(
                saved,
                Some(r.bank.hosts.clone()),
                "{}: saved /etc/hosts",
                ctx
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn tpm_hosts_match_the_reference(ops in prop::collection::vec(op(), 1..40), seed in any::<u64>()) {
        run(ops, seed, true)?;
    }

    #[test]
    fn none_hosts_match_the_reference(ops in prop::collection::vec(op(), 1..40), seed in any::<u64>()) {
        run(ops, seed, false)?;
    }
}
