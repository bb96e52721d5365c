//! One test per modelled fact of esxi-facts.md sections 1 and 2, on the host model directly.

use std::time::Duration;

use esxi_sim::host::{EventKind, HostError, LockHolder, PowerState, RebootKind, SaveError};
use esxi_sim::profile::{Profile, Schedule};
use esxi_sim::{Host, HostConfig};

const MIN: Duration = Duration::from_secs(60);

mod common;
use common::host;

fn hosts_line(h: &Host) -> String {
    h.read_text("/etc/hosts").unwrap().unwrap()
}

fn crash_and_boot(h: &mut Host) {
    h.crash().unwrap();
    h.power_on().unwrap();
    h.wait_until_running();
}

#[test]
fn s1_unchanged_configuration_never_writes_in_30_days() {
    let mut h = host("8.0U3", 1);
    let before = h.bootbank_writes();
    h.advance(Duration::from_secs(30 * 86_400));
    assert_eq!(h.bootbank_writes(), before, "flash wear without a change");
}

#[test]
fn s1_change_is_lost_by_a_crash_inside_the_window_and_kept_after_it() {
    let mut h = host("8.0U3", 2); // every 10 minutes, aligned: 00:10, 00:20, ...
    h.write_file("/etc/hosts", "10.0.0.9 nas\n").unwrap();
    h.advance(9 * MIN);
    crash_and_boot(&mut h);
    assert!(
        !hosts_line(&h).contains("nas"),
        "the 00:10 save had not run yet"
    );
    h.write_file("/etc/hosts", "10.0.0.9 nas\n").unwrap();
    h.advance(10 * MIN);
    crash_and_boot(&mut h);
    assert_eq!(hosts_line(&h), "10.0.0.9 nas\n");
}

#[test]
fn s1_hourly_profiles_save_at_minute_one() {
    let mut h = host("6.7U3", 3);
    assert_eq!(h.schedule(), Schedule::HourlyAtMinute(1));
    h.advance(2 * MIN); // 00:02, after the 00:01 run
    h.write_file("/etc/hosts", "x\n").unwrap();
    h.advance(58 * MIN); // 01:00: not yet
    crash_and_boot(&mut h);
    assert_ne!(hosts_line(&h), "x\n");
    h.write_file("/etc/hosts", "x\n").unwrap();
    h.advance(MIN); // 01:01
    let saved = h.events().iter().last().unwrap();
    assert!(matches!(saved.kind, EventKind::Saved { .. }), "{saved}");
    assert!(
        saved
            .to_string()
            .starts_with("2024-01-01 01:01:00 auto-backup: 1 file changed, state.tgz written"),
        "{saved}"
    );
}

#[test]
fn s1_sync_and_graceful_reboot_keep_a_change_forced_reboot_loses_it() {
    let mut h = host("8.0U3", 4);
    h.write_file("/etc/hosts", "synced\n").unwrap();
    h.sync().unwrap();
    crash_and_boot(&mut h);
    assert_eq!(hosts_line(&h), "synced\n");

    h.write_file("/etc/hosts", "graceful\n").unwrap();
    h.reboot(RebootKind::Graceful, "test").unwrap();
    assert_eq!(hosts_line(&h), "graceful\n");

    h.write_file("/etc/hosts", "forced\n").unwrap();
    h.reboot(RebootKind::Forced, "test").unwrap();
    assert_eq!(hosts_line(&h), "graceful\n");
}

#[test]
fn s1_power_cut_mid_save_keeps_the_previous_state_tgz() {
    let mut h = host("8.0U3", 5);
    let old = h.bootbank().unwrap().state_tgz().unwrap().clone();
    h.write_file("/etc/hosts", "half-saved\n").unwrap();
    h.arm_power_cut_during_next_save();
    h.advance(10 * MIN);
    assert_eq!(h.power_state(), PowerState::Off);
    let bank = h.bootbank().unwrap();
    assert_eq!(bank.state_tgz().unwrap(), old, "old state.tgz intact");
    assert_eq!(
        bank.leftovers.len(),
        1,
        "state.tgz.$$ left behind: {:?}",
        bank.leftovers
    );
    h.power_on().unwrap();
    h.wait_until_running();
    assert_ne!(hosts_line(&h), "half-saved\n");
    h.write_file("/etc/hosts", "second try\n").unwrap();
    h.sync().unwrap();
    assert!(
        h.bootbank().unwrap().leftovers.is_empty(),
        "the next save cleans up"
    );
}

#[test]
fn s1_new_files_and_non_sticky_files_are_not_saved() {
    let mut h = host("6.7U3", 6);
    h.write_file("/etc/my-tool.conf", "token=1\n").unwrap();
    h.write_file("/etc/profile", "export X=1\n").unwrap();
    h.sync().unwrap();
    let saved = h.bootbank().unwrap().saved().clone();
    assert!(!saved.contains_key("etc/my-tool.conf"));
    assert!(!saved.contains_key("etc/profile"));
    h.reboot(RebootKind::Graceful, "test").unwrap();
    assert_eq!(h.read_file("/etc/my-tool.conf").unwrap(), None);
    assert_ne!(
        h.read_text("/etc/profile").unwrap().unwrap(),
        "export X=1\n"
    );
}

#[test]
fn s1_first_automatic_save_always_writes_and_stateless_hosts_cannot_save() {
    let mut h = host("8.0U3", 7);
    h.enter_maintenance_mode().unwrap();
    h.reset_to_factory_defaults().unwrap();
    assert!(h.bootbank().unwrap().state_tgz().is_none());
    let before = h.bootbank_writes().state_saves;
    h.advance(10 * MIN);
    assert_eq!(
        h.bootbank_writes().state_saves,
        before + 1,
        "no state.tgz: always save"
    );

    let mut s = HostConfig::new(Profile::named("8.0U3").unwrap())
        .stateless(true)
        .build()
        .unwrap();
    s.write_file("/etc/hosts", "x\n").unwrap();
    s.advance(60 * MIN);
    assert!(s.bootbank().is_none());
    assert_eq!(s.sync(), Err(HostError::SaveFailed(SaveError::NoBootbank)));
    assert!(s
        .events()
        .iter()
        .any(|e| e.to_string().contains("stateless host): exit 1")));
    assert!(s.backup_bundle().is_err());
}

#[test]
fn s1_backup_sh_lock_and_ssl_check() {
    let mut h = host("6.7U3", 8);
    h.write_file("/etc/hosts", "locked\n").unwrap();
    h.set_backup_lock(Some(LockHolder::Alive));
    assert_eq!(h.sync(), Err(HostError::SaveFailed(SaveError::LockBusy)));
    h.set_backup_lock(Some(LockHolder::Stale));
    assert!(h.sync().unwrap().written, "a stale lock is cleaned up");
    h.set_backup_lock(Some(LockHolder::Alive));
    h.write_file("/etc/hosts", "shutdown breaks locks\n")
        .unwrap();
    h.reboot(RebootKind::Graceful, "test").unwrap();
    assert_eq!(hosts_line(&h), "shutdown breaks locks\n");

    h.write_file("/etc/vmware/ssl/rui.crt", "").unwrap();
    assert_eq!(
        h.sync(),
        Err(HostError::SaveFailed(SaveError::InvalidSslCertificates))
    );
}

#[test]
fn s1_backup_counter_counts_saves_and_travels_in_state_tgz() {
    let mut h = host("6.7U3", 9);
    assert_eq!(h.backup_counter(), 1, "the installer's save");
    h.sync().unwrap();
    h.sync().unwrap();
    crash_and_boot(&mut h);
    assert_eq!(h.backup_counter(), 3);
    let text = h.read_text("/etc/vmware/.backup.counter").unwrap().unwrap();
    assert!(text.starts_with("# This file is owned and updated by /sbin/backup.sh\n# CREATED: Mon Jan  1 00:00:00 UTC 2024\n"), "{text}");
}

#[test]
fn s1_corrupt_state_tgz_boots_image_defaults_and_says_why() {
    let mut h = host("6.7U3", 10);
    h.write_file("/etc/hosts", "kept?\n").unwrap();
    h.sync().unwrap();
    h.corrupt_state_tgz().unwrap();
    crash_and_boot(&mut h);
    assert_eq!(h.hostname(), "localhost", "image defaults");
    let booted = h
        .events()
        .iter()
        .rev()
        .find(|e| e.kind.name() == "booted")
        .unwrap();
    assert!(
        booted
            .to_string()
            .contains("image defaults (state.tgz unusable"),
        "{booted}"
    );
    h.advance(Duration::from_secs(3600));
    assert!(
        h.bootbank().unwrap().corrupt_reason().is_none(),
        "the next auto-backup heals it"
    );
}

#[test]
fn s1_boot_takes_the_profile_boot_time() {
    let mut h = HostConfig::new(Profile::named("6.7U3").unwrap())
        .build()
        .unwrap();
    h.reboot(RebootKind::Forced, "test").unwrap();
    assert!(matches!(h.power_state(), PowerState::Booting { .. }));
    assert!(matches!(
        h.read_file("/etc/hosts"),
        Err(HostError::NotRunning(_))
    ));
    h.advance(Duration::from_secs(119));
    assert!(!h.is_running());
    h.advance(Duration::from_secs(1));
    assert!(h.is_running());
}

#[test]
fn s1_sync_is_rate_limited_per_quantum() {
    let mut h = host("6.7U3", 11);
    let limit = h.profile().sync_limit;
    for _ in 0..limit.syncs_per_quantum {
        h.sync().unwrap();
    }
    assert_eq!(h.sync(), Err(HostError::TooManyWrites));
    h.advance(Duration::from_secs(limit.quantum_minutes as u64 * 60));
    assert!(h.sync().is_ok(), "a new quantum");
}

#[test]
fn s2_restore_rules_in_order() {
    let mut src = host("6.7U3", 12);
    let mut dst = host("6.7U3", 13);
    let bundle = src.backup_bundle().unwrap();
    assert_eq!(
        bundle.file_name,
        format!("configBundle-{}.tgz", src.hostname())
    );

    assert_eq!(
        dst.restore(false),
        Err(HostError::InvalidState(
            "The operation is not allowed in the current state.".into()
        ))
    );
    dst.enter_maintenance_mode().unwrap();
    assert_eq!(
        dst.restore(false),
        Err(HostError::FileNotFound("/tmp/configBundle.tgz".into()))
    );
    dst.upload_bundle(bundle.bytes.to_vec()).unwrap();
    assert_eq!(
        dst.restore(false),
        Err(HostError::MismatchedBundle {
            bundle_uuid: src.smbios_uuid().to_string(),
            host_uuid: dst.smbios_uuid().to_string(),
            bundle_build: 14320388,
            host_build: 14320388,
        })
    );
    dst.restore(true).unwrap();
    assert_eq!(
        dst.hostname(),
        src.hostname(),
        "the other host's configuration"
    );
    assert!(
        dst.in_maintenance_mode(),
        "maintenance mode survives the reboot"
    );

    let mut other_level = host("6.5U3", 14);
    other_level.enter_maintenance_mode().unwrap();
    let e = other_level
        .restore_bundle(bundle.bytes.to_vec(), true)
        .unwrap_err();
    assert!(
        matches!(
            e,
            HostError::MismatchedBundle {
                bundle_build: 14320388,
                host_build: 13932383,
                ..
            }
        ),
        "release level mismatch fails even with force: {e:?}"
    );
}

#[test]
fn s2_same_update_patch_builds_restore() {
    let mut a = HostConfig::new(Profile::named("7.0U3d").unwrap())
        .uuid("4C4C4544-0047-3210-804E-C8C04F435032")
        .build()
        .unwrap();
    let mut b = HostConfig::new(Profile::named("7.0U3k").unwrap())
        .uuid("4c4c4544-0047-3210-804e-c8c04f435032")
        .boot_time(Duration::ZERO)
        .build()
        .unwrap();
    a.write_file("/etc/hosts", "from U3d\n").unwrap();
    let bundle = a.backup_bundle().unwrap();
    b.enter_maintenance_mode().unwrap();
    b.restore_bundle(bundle.bytes.to_vec(), false).unwrap();
    assert_eq!(hosts_line(&b), "from U3d\n");
}

#[test]
fn s2_restore_brings_back_the_old_root_password_and_is_not_overwritten() {
    let mut h = HostConfig::new(Profile::named("8.0U3").unwrap())
        .root_password("old-Secret1")
        .boot_time(Duration::ZERO)
        .build()
        .unwrap();
    let bundle = h.backup_bundle().unwrap();
    h.set_password("root", "new-Secret2").unwrap();
    h.write_file("/etc/hosts", "running config\n").unwrap();
    h.sync().unwrap();
    assert!(h.check_password("root", "new-Secret2") && !h.check_password("root", "old-Secret1"));
    h.enter_maintenance_mode().unwrap();
    h.restore_bundle(bundle.bytes.to_vec(), false).unwrap();
    assert!(h.check_password("root", "old-Secret1"));
    assert!(!h.check_password("root", "new-Secret2"));
    assert_ne!(
        hosts_line(&h),
        "running config\n",
        "forced reboot: no shutdown save"
    );
    let last: Vec<String> = h
        .events()
        .tail(3)
        .map(|e| e.kind.name().to_string())
        .collect();
    assert_eq!(last, ["restored", "reboot", "booted"]);
}

#[test]
fn s2_reset_returns_image_defaults_with_an_empty_root_password() {
    let mut h = host("6.7U3", 15);
    assert!(h.check_password("root", "VMware1!"));
    assert!(
        h.reset_to_factory_defaults().is_err(),
        "needs maintenance mode"
    );
    h.enter_maintenance_mode().unwrap();
    h.reset_to_factory_defaults().unwrap();
    assert_eq!(h.hostname(), "localhost");
    assert!(h.check_password("root", ""));
    assert!(!h.check_password("root", "VMware1!"));
    let cfg = &h.bootbank().unwrap().boot_cfg;
    assert!(!cfg.has_state_module() && cfg.kernelopt.is_empty());
}

#[test]
fn s2_hostile_bundle_changes_nothing() {
    let mut h = host("6.7U3", 16);
    h.enter_maintenance_mode().unwrap();
    let before = (h.bootbank().cloned(), h.etc().clone());
    let e = h
        .restore_bundle(b"\x1f\x8bnot really".to_vec(), true)
        .unwrap_err();
    assert!(matches!(e, HostError::InvalidBundle(_)), "{e:?}");
    assert_eq!((h.bootbank().cloned(), h.etc().clone()), before);
    assert!(h.is_running());
}

#[test]
fn determinism_same_seed_same_host() {
    let a = host("8.0U3", 99);
    let b = host("8.0U3", 99);
    assert_eq!(a, b);
    assert_eq!(
        a.bootbank().unwrap().state_tgz(),
        b.bootbank().unwrap().state_tgz()
    );
    let c = host("8.0U3", 100);
    assert_ne!(a.smbios_uuid(), c.smbios_uuid());
    assert_eq!(a.api_uuid(), a.smbios_uuid().to_ascii_lowercase());
}

#[test]
fn accounts_persist_like_any_edit() {
    let mut h = host("8.0U3", 17);
    h.create_user("backup", "Bkp-pass1", "backup service")
        .unwrap();
    assert!(h.check_password("backup", "Bkp-pass1"));
    crash_and_boot(&mut h);
    assert!(
        !h.check_password("backup", "Bkp-pass1"),
        "lost inside the window"
    );
    h.create_user("backup", "Bkp-pass1", "").unwrap();
    h.advance(10 * MIN);
    crash_and_boot(&mut h);
    assert!(h.check_password("backup", "Bkp-pass1"));
    h.remove_user("backup").unwrap();
    assert!(!h.check_password("backup", "Bkp-pass1"));
    assert!(h.remove_user("root").is_err());
}
