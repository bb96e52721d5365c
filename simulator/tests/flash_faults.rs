//! Boot device faults (`host::flash`): a read-only or full device fails every save and leaves the
//! bank as it was; a torn write "succeeds" but leaves half a state.tgz, which the next boot
//! cannot use. Faults are hardware: they outlive reboots until cleared.

use std::time::Duration;

use esxi_sim::host::{
    BootBank, EventKind, FlashFaults, HostError, RebootKind, SaveError, SaveTrigger,
};
use esxi_sim::Host;

mod common;
use common::host;

const TICK: Duration = Duration::from_secs(600); // 8.0U3: every 10 minutes

fn bank(h: &Host) -> BootBank {
    h.bootbank().unwrap().clone()
}

fn faults(read_only: bool, full: bool, torn_next_write: bool) -> FlashFaults {
    FlashFaults {
        read_only,
        full,
        torn_next_write,
    }
}

/// The reasons of the save-failed events logged since event number `from`.
fn failures_since(h: &Host, from: usize) -> Vec<(SaveTrigger, String)> {
    h.events()
        .iter()
        .skip(from)
        .filter_map(|e| match &e.kind {
            EventKind::SaveFailed { by, reason } => Some((*by, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Every way a save is asked for, on a device that refuses writes with `expected`.
fn refused_everywhere(f: FlashFaults, expected: SaveError, words: &str) {
    let mut h = host("8.0U3", 1);
    h.write_file("/etc/hosts", "10.0.0.1 nas\n").unwrap();
    let events = h.events().iter().len();
    h.set_flash_faults(f.clone());
    assert_eq!(h.flash_faults(), &f);
    let last = h.events().iter().last().unwrap();
    assert_eq!(last.kind, EventKind::FlashFaults(f.clone()));
    assert_eq!(last.kind.name(), "flash-faults");
    let before = bank(&h);
    assert!(expected.to_string().contains(words), "{expected}");

    assert_eq!(h.sync(), Err(HostError::SaveFailed(expected.clone())));
    assert_eq!(
        h.backup_bundle().unwrap_err(),
        HostError::SaveFailed(expected.clone())
    );
    assert_eq!(h.backup_sh(SaveTrigger::Sync), Err(expected.clone()));
    h.advance(TICK * 2); // auto-backup sees the change, backup.sh fails
    assert_eq!(bank(&h), before, "the boot bank changed");
    assert!(h.has_unsaved_changes());

    let failed = failures_since(&h, events + 1);
    let by: Vec<SaveTrigger> = failed.iter().map(|(by, _)| *by).collect();
    assert_eq!(
        by,
        [
            SaveTrigger::Sync,
            SaveTrigger::Backup,
            SaveTrigger::Sync,
            SaveTrigger::AutoBackup,
            SaveTrigger::AutoBackup
        ]
    );
    assert!(failed.iter().all(|(_, r)| r.contains(words)), "{failed:?}");

    // The shutdown save fails too, so a graceful reboot loses the change; the fault stays.
    h.reboot(RebootKind::Graceful, "test").unwrap();
    h.wait_until_running();
    assert_eq!(bank(&h), before);
    assert_eq!(
        h.flash_faults(),
        &f,
        "faults are hardware: they survive reboots"
    );
    assert!(!h.read_text("/etc/hosts").unwrap().unwrap().contains("nas"));
    h.crash().unwrap();
    h.power_on().unwrap();
    h.wait_until_running();
    assert_eq!(h.flash_faults(), &f);

    // Restore copies a state.tgz to the bank: refused the same way, nothing changed.
    h.set_flash_faults(FlashFaults::default());
    let bundle = h.backup_bundle().unwrap();
    let before = bank(&h);
    h.set_flash_faults(f.clone());
    h.enter_maintenance_mode().unwrap();
    assert_eq!(
        h.restore_bundle(bundle.bytes.to_vec(), false),
        Err(HostError::SaveFailed(expected.clone()))
    );
    assert_eq!(bank(&h), before);
    assert!(h.is_running());
    h.exit_maintenance_mode().unwrap();

    // Cleared, saves work again.
    h.set_flash_faults(FlashFaults::default());
    assert_eq!(
        h.events().iter().last().unwrap().kind.to_string(),
        "flash faults cleared"
    );
    h.write_file("/etc/hosts", "10.0.0.2 nas\n").unwrap();
    let report = h.sync().unwrap();
    assert!(report.written);
    let saved = &h.bootbank().unwrap().saved()["etc/hosts"];
    assert_eq!(&saved.data[..], b"10.0.0.2 nas\n");
}

#[test]
fn a_read_only_device_fails_every_save_and_changes_nothing() {
    refused_everywhere(
        faults(true, false, false),
        SaveError::ReadOnly,
        "Read-only file system",
    );
}

#[test]
fn a_full_device_fails_every_save_and_changes_nothing() {
    refused_everywhere(
        faults(false, true, false),
        SaveError::NoSpace,
        "No space left on device",
    );
}

#[test]
fn read_only_is_met_before_full() {
    let mut h = host("8.0U3", 2);
    h.set_flash_faults(faults(true, true, false));
    assert_eq!(h.sync(), Err(HostError::SaveFailed(SaveError::ReadOnly)));
}

#[test]
fn a_read_only_or_full_device_refuses_a_factory_reset() {
    let mut h = host("8.0U3", 3);
    h.set_flash_faults(faults(true, false, false));
    let before = bank(&h);
    h.enter_maintenance_mode().unwrap();
    assert_eq!(
        h.reset_to_factory_defaults(),
        Err(HostError::SaveFailed(SaveError::ReadOnly))
    );
    assert_eq!(bank(&h), before);
    assert!(h.is_running());
    // A reset rewrites boot.cfg, which a full device refuses too.
    h.set_flash_faults(faults(false, true, false));
    assert_eq!(
        h.reset_to_factory_defaults(),
        Err(HostError::SaveFailed(SaveError::NoSpace))
    );
    assert_eq!(bank(&h), before);
    h.set_flash_faults(FlashFaults::default());
    h.reset_to_factory_defaults().unwrap();
    h.wait_until_running();
    assert!(h.bootbank().unwrap().state_tgz().is_none());
}

#[test]
fn a_torn_write_succeeds_for_backup_sh_and_the_next_boot_falls_back_to_defaults() {
    let mut h = host("8.0U3", 4);
    let image_hosts = h.etc().image().files["etc/hosts"].data.clone();
    h.write_file("/etc/hosts", "10.0.0.3 torn\n").unwrap();
    h.set_flash_faults(faults(false, false, true));
    let writes = h.bootbank_writes();

    let report = h.sync().unwrap();
    assert!(report.written && report.bytes > 0);
    let after = h.bootbank_writes();
    assert_eq!(after.state_saves, writes.state_saves + 1);
    assert!(
        after.bytes >= writes.bytes + report.bytes as u64,
        "the wear counters grow by what backup.sh wrote"
    );
    let on_flash = h.bootbank().unwrap().state_tgz().unwrap().len();
    assert_eq!(on_flash, report.bytes / 2, "half of the new state.tgz");
    assert!(h.bootbank().unwrap().corrupt_reason().is_some());
    assert_eq!(
        h.flash_faults(),
        &FlashFaults::default(),
        "the flag clears itself"
    );
    let torn: Vec<_> = h
        .events()
        .iter()
        .filter(|e| e.kind.name() == "torn-write")
        .collect();
    assert_eq!(torn.len(), 1);
    assert_eq!(
        torn[0].kind,
        EventKind::TornWrite {
            intended: report.bytes,
            on_flash
        }
    );
    assert!(h.has_unsaved_changes(), "what is on the device is not RAM");

    // A crash before the next auto-backup: the boot cannot use state.tgz.
    h.crash().unwrap();
    h.power_on().unwrap();
    h.wait_until_running();
    match &h.events().iter().last().unwrap().kind {
        EventKind::Booted {
            from_state: false,
            note: Some(note),
            ..
        } => assert!(note.contains("state.tgz unusable"), "{note}"),
        other => panic!("expected a boot from image defaults, got {other:?}"),
    }
    assert_eq!(h.read_file("/etc/hosts").unwrap().unwrap(), image_hosts);

    // The next save is whole again.
    h.write_file("/etc/hosts", "10.0.0.4 whole\n").unwrap();
    h.sync().unwrap();
    let bank = h.bootbank().unwrap();
    assert!(bank.corrupt_reason().is_none());
    assert_eq!(&bank.saved()["etc/hosts"].data[..], b"10.0.0.4 whole\n");
}

#[test]
fn an_auto_backup_after_a_torn_write_saves_again() {
    let mut h = host("8.0U3", 5);
    h.write_file("/etc/hosts", "10.0.0.5 x\n").unwrap();
    h.set_flash_faults(faults(false, false, true));
    h.sync().unwrap();
    assert!(h.bootbank().unwrap().corrupt_reason().is_some());
    let saves = h.bootbank_writes().state_saves;
    h.advance(TICK); // auto-backup.sh cannot unpack state.tgz: every marked file differs
    assert_eq!(h.bootbank_writes().state_saves, saves + 1);
    assert!(h.bootbank().unwrap().corrupt_reason().is_none());
    h.crash().unwrap();
    h.power_on().unwrap();
    h.wait_until_running();
    assert_eq!(h.read_text("/etc/hosts").unwrap().unwrap(), "10.0.0.5 x\n");
}

#[test]
fn a_torn_write_waits_for_a_save_that_writes() {
    let mut h = host("8.0U3", 6);
    h.write_file("/etc/hosts", "10.0.0.6 y\n").unwrap();
    // A refused save writes nothing, so the tear is still to come.
    h.set_flash_faults(faults(true, false, true));
    assert!(h.sync().is_err());
    assert!(h.flash_faults().torn_next_write);
    // An armed power cut stops the save before state.tgz is replaced: still to come.
    h.set_flash_faults(faults(false, false, true));
    h.arm_power_cut_during_next_save();
    assert_eq!(h.sync(), Err(HostError::SaveFailed(SaveError::PowerLost)));
    assert!(h.flash_faults().torn_next_write);
    assert!(h.bootbank().unwrap().corrupt_reason().is_none());
    h.power_on().unwrap();
    h.wait_until_running();
    h.sync().unwrap();
    assert!(!h.flash_faults().torn_next_write);
    assert!(h.bootbank().unwrap().corrupt_reason().is_some());
}

/// The host remembers its last save itself: two days of failing auto-backups (288 save-failed
/// events, more than the event log keeps) do not lose it, and a reboot keeps it.
#[test]
fn the_last_save_outlives_the_event_log() {
    let mut h = host("8.0U3", 2);
    h.write_file("/etc/hosts", "10.0.0.1 nas\n").unwrap();
    h.advance(TICK);
    let saved = h.last_save().expect("the auto-backup saved");
    assert!(
        saved > esxi_sim::clock::DEFAULT_EPOCH,
        "after the install save at t0"
    );
    h.set_flash_faults(faults(true, false, false));
    h.write_file("/etc/hosts", "10.0.0.2 nas\n").unwrap();
    h.advance(Duration::from_secs(2 * 86_400));
    assert!(
        !h.events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::Saved { .. })),
        "the save should have left the event log"
    );
    assert_eq!(h.last_save(), Some(saved));
    h.reboot(RebootKind::Forced, "test").unwrap();
    h.wait_until_running();
    assert_eq!(h.last_save(), Some(saved));
    h.set_flash_faults(FlashFaults::default());
    h.set_stateless(true);
    assert_eq!(h.last_save(), None, "no boot bank, no save");
}
