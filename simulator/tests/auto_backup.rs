//! auto-backup.sh's decision on the model's shortcut: an unchanged `/etc` answers without a diff,
//! but the outcome must stay what the script's `diff -N` of every marked file gives.

use std::time::Duration;

use esxi_sim::host::{EventKind, SaveTrigger};
use esxi_sim::Host;

mod common;
use common::host;

const TICK: Duration = Duration::from_secs(600); // 8.0U3: every 10 minutes

fn saves(h: &Host) -> u64 {
    h.bootbank_writes().state_saves
}

fn last_auto_save_changed(h: &Host) -> Option<usize> {
    h.events().iter().rev().find_map(|e| match e.kind {
        EventKind::Saved {
            by: SaveTrigger::AutoBackup,
            changed,
            ..
        } => changed,
        _ => None,
    })
}

#[test]
fn rewriting_identical_bytes_saves_nothing() {
    let mut h = host("8.0U3", 1);
    let hosts = h.read_file("/etc/hosts").unwrap().unwrap();
    let writes = h.bootbank_writes();
    h.write_file("/etc/hosts", hosts.to_vec()).unwrap();
    assert!(!h.has_unsaved_changes());
    h.advance(TICK * 3);
    assert_eq!(h.bootbank_writes(), writes, "identical bytes were saved");
}

#[test]
fn a_change_undone_before_the_tick_saves_nothing() {
    let mut h = host("8.0U3", 2);
    let hosts = h.read_file("/etc/hosts").unwrap().unwrap();
    let before = saves(&h);
    h.write_file("/etc/hosts", "10.0.0.1 nas\n").unwrap();
    assert!(h.has_unsaved_changes());
    h.write_file("/etc/hosts", hosts.to_vec()).unwrap();
    assert!(!h.has_unsaved_changes());
    h.advance(TICK * 2);
    assert_eq!(saves(&h), before);
}

#[test]
fn a_change_is_saved_once_at_the_next_tick() {
    let mut h = host("8.0U3", 3);
    let before = saves(&h);
    h.advance(TICK * 2);
    assert_eq!(saves(&h), before, "an idle host writes nothing");
    h.write_file("/etc/hosts", "10.0.0.2 nas\n").unwrap();
    h.advance(TICK);
    assert_eq!(saves(&h), before + 1);
    assert_eq!(last_auto_save_changed(&h), Some(1));
    assert!(!h.has_unsaved_changes());
    h.advance(TICK * 5);
    assert_eq!(saves(&h), before + 1, "saved once, not at every tick");
}

#[test]
fn a_new_empty_boot_bank_is_diffed_in_full() {
    let mut h = host("8.0U3", 4);
    h.advance(TICK); // RAM is known equal to the save
    h.set_stateless(true);
    h.set_stateless(false); // an empty bank: nothing saved
    assert!(h.has_unsaved_changes());
    h.advance(TICK);
    let saved = h.bootbank().unwrap().saved();
    assert!(
        saved.len() > 30,
        "8.0U3 saves the real member list: {}",
        saved.len()
    );
    // `diff -N` takes a missing file as empty, so only marked files with contents differ from
    // an empty bank; the ConfigStore's backup counts as one (facts 6.3).
    let nonempty = saved
        .iter()
        .filter(|(p, n)| p.starts_with("etc/") && !n.data.is_empty())
        .count();
    assert!(nonempty < saved.len(), "some saved files are empty");
    assert_eq!(
        last_auto_save_changed(&h),
        Some(nonempty + 1),
        "every marked file with contents, and the store, differ from an empty bank"
    );
}

#[test]
fn an_older_state_tgz_put_back_is_noticed() {
    let mut h = host("8.0U3", 5);
    h.write_file("/etc/hosts", "10.0.0.3 a\n").unwrap();
    h.advance(TICK);
    let old = h.bootbank().unwrap().state_tgz().unwrap().to_vec();
    h.write_file("/etc/hosts", "10.0.0.4 b\n").unwrap();
    h.advance(TICK);
    assert!(!h.has_unsaved_changes());
    h.replace_state_tgz(Some(old)).unwrap(); // /etc untouched, the bank older
    assert!(h.has_unsaved_changes());
    let before = saves(&h);
    h.advance(TICK);
    assert_eq!(saves(&h), before + 1);
    let saved = &h.bootbank().unwrap().saved()["etc/hosts"];
    assert_eq!(&saved.data[..], b"10.0.0.4 b\n");
}

#[test]
fn after_a_long_idle_stretch_the_next_run_is_on_schedule() {
    let mut h = host("8.0U3", 6);
    let start = h.now();
    h.advance(Duration::from_secs(30 * 86_400) + Duration::from_secs(7)); // 7 s past a run
    let before = saves(&h);
    h.write_file("/etc/hosts", "10.0.0.9 later\n").unwrap();
    h.advance(TICK - Duration::from_secs(8)); // 1 s before the next run
    assert_eq!(saves(&h), before, "saved before its run");
    h.advance(Duration::from_secs(1));
    assert_eq!(saves(&h), before + 1, "not saved at its run");
    let at = h.events().iter().last().unwrap().at;
    assert_eq!(at.since(start), Duration::from_secs(30 * 86_400) + TICK);
}
