//! Byte-level checks of the bundle formats against the system GNU `tar`: what the simulator
//! writes unpacks with `tar xzf` exactly as a real `configBundle-<hostname>.tgz` does, and what
//! `tar czf` writes is accepted and restored by the simulator.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use esxi_sim::bundle::{ConfigBundle, Limits};
use esxi_sim::envelope;
use esxi_sim::keystore::KeyStore;

mod common;
use common::host;

/// Runs the system `tar` in `dir`, asserting success; returns stdout.
fn tar(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("tar")
        .args(args)
        .current_dir(dir)
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .output()
        .expect("the system tar runs");
    assert!(
        out.status.success(),
        "tar {args:?} in {}: {}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tar prints UTF-8 here")
}

fn listing(dir: &Path, archive: &str) -> Vec<String> {
    tar(dir, &["tzf", archive])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `tar tvzf` lines: every member is owned by root/root.
fn assert_owned_by_root(dir: &Path, archive: &str) {
    let verbose = tar(dir, &["tvzf", archive, "--numeric-owner"]);
    let named = tar(dir, &["tvzf", archive]);
    assert!(!named.trim().is_empty(), "{archive}: empty listing");
    for line in named.lines() {
        let owner = line.split_whitespace().nth(1).unwrap_or_default();
        assert_eq!(owner, "root/root", "{archive}: {line}");
    }
    for line in verbose.lines() {
        let owner = line.split_whitespace().nth(1).unwrap_or_default();
        assert_eq!(owner, "0/0", "{archive}: {line}");
    }
}

/// Every regular file under `root`, as relative `/`-separated paths.
fn files_under(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                walk(root, &e.path(), out);
            } else {
                assert!(t.is_file(), "{}: not a regular file", e.path().display());
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel.to_str().unwrap().replace('\\', "/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Unpacks a produced bundle level by level with the system tar; returns the directories
/// (bundle level, state level, local level).
fn unpack_bundle(bytes: &[u8], tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let outer = tmp.join("bundle");
    let state = tmp.join("state");
    let local = tmp.join("local");
    for d in [&outer, &state, &local] {
        fs::create_dir(d).unwrap();
    }
    fs::write(outer.join("configBundle.tgz"), bytes).unwrap();
    tar(&outer, &["xzf", "configBundle.tgz"]);
    fs::copy(outer.join("state.tgz"), state.join("state.tgz")).unwrap();
    tar(&state, &["xzf", "state.tgz"]);
    if state.join("local.tgz.ve").exists() {
        // 7.0 U2+ (facts 6.4): NONE mode, so the key is in encryption.info itself.
        let ks = KeyStore::parse(&fs::read(state.join("encryption.info")).unwrap()).unwrap();
        let ve = fs::read(state.join("local.tgz.ve")).unwrap();
        let plain = envelope::open(&ve, &ks.none_key().unwrap(), envelope::CONFIG_AAD).unwrap();
        fs::write(local.join("local.tgz"), plain).unwrap();
    } else {
        fs::copy(state.join("local.tgz"), local.join("local.tgz")).unwrap();
    }
    fs::create_dir(local.join("root")).unwrap();
    tar(&local, &["xzf", "local.tgz", "-C", "root"]);
    (outer, state, local)
}

#[test]
fn produced_bundle_lists_and_unpacks_with_gnu_tar() {
    let mut h = host("6.7U3", 1);
    h.write_file(
        "/etc/hosts",
        "127.0.0.1 localhost\n10.0.0.9 nas.example.com nas\n",
    )
    .unwrap();
    let bundle = h.backup_bundle().unwrap();
    assert_eq!(
        bundle.file_name,
        format!("configBundle-{}.tgz", h.hostname())
    );
    let tmp = tempfile::tempdir().unwrap();
    let (outer, state, local) = unpack_bundle(&bundle.bytes, tmp.path());

    // The bundle: exactly Manifest.txt and state.tgz, no directory prefix.
    assert_eq!(
        listing(&outer, "configBundle.tgz"),
        ["Manifest.txt", "state.tgz"]
    );
    assert_owned_by_root(&outer, "configBundle.tgz");
    // state.tgz: exactly local.tgz.
    assert_eq!(listing(&state, "state.tgz"), ["local.tgz"]);
    assert_owned_by_root(&state, "state.tgz");
    // The extracted state.tgz is byte-for-byte the one on /bootbank.
    assert_eq!(
        fs::read(outer.join("state.tgz")).unwrap(),
        &h.bootbank().unwrap().state_tgz().unwrap()[..]
    );

    // local.tgz: the saved files, relative to /, no directories, no markers.
    let names = listing(&local, "local.tgz");
    assert_owned_by_root(&local, "local.tgz");
    for must in [
        "etc/shadow",
        "etc/hosts",
        "etc/vmware/esx.conf",
        "etc/vmware/ssl/rui.crt",
        "etc/vmware/ssl/rui.key",
        "etc/vmware/.backup.counter",
    ] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} missing from {names:?}"
        );
    }
    for n in &names {
        assert!(!n.starts_with('/'), "absolute member {n}");
        assert!(!n.starts_with("./"), "./-prefixed member {n}");
        assert!(!n.ends_with('/'), "directory entry {n}");
        assert!(
            !n.contains("/.#") && !n.starts_with(".#"),
            "marker file {n}"
        );
    }
    let unique: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(unique.len(), names.len(), "duplicate members in {names:?}");
    let saved: BTreeSet<String> = h.bootbank().unwrap().saved().keys().cloned().collect();
    assert_eq!(
        unique, saved,
        "local.tgz lists exactly what the boot bank saved"
    );

    // Every extracted file equals what the host holds in RAM /etc, byte for byte.
    let root = local.join("root");
    assert_eq!(
        files_under(&root),
        unique,
        "what tar extracted is what it listed"
    );
    for n in &names {
        let on_disk = fs::read(root.join(n)).unwrap();
        let in_ram = h.read_file(&format!("/{n}")).unwrap().unwrap();
        assert_eq!(on_disk, &in_ram[..], "{n} differs from the host's copy");
    }
    let hosts = fs::read_to_string(root.join("etc/hosts")).unwrap();
    assert_eq!(hosts, "127.0.0.1 localhost\n10.0.0.9 nas.example.com nas\n");
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    let root_line = shadow.lines().find(|l| l.starts_with("root:")).unwrap();
    assert!(root_line.starts_with("root:$6$"), "{root_line}");
    let esx_conf = fs::read_to_string(root.join("etc/vmware/esx.conf")).unwrap();
    assert!(esx_conf.contains("/system/uuid = \""), "{esx_conf}");
}

#[test]
fn produced_manifest_has_the_four_lines() {
    for (profile, seed) in [("6.7U3", 1), ("6.0U3", 7), ("8.0U3", 42)] {
        let mut h = host(profile, seed);
        let bundle = h.backup_bundle().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (outer, _, _) = unpack_bundle(&bundle.bytes, tmp.path());
        let manifest = fs::read_to_string(outer.join("Manifest.txt")).unwrap();
        let bank = h.bootbank().unwrap();
        assert_eq!(
            manifest,
            format!(
                "RELEASELEVEL={}\nUUID={}\nKERNELOPTS={}\nUSEROPTS={}\n",
                h.profile().release_level,
                h.smbios_uuid(),
                bank.boot_cfg.kernelopt,
                bank.useropts,
            ),
            "{profile}"
        );
        let lines: Vec<&str> = manifest.lines().collect();
        assert_eq!(lines.len(), 4, "{manifest}");
        assert_eq!(
            lines[0],
            format!("RELEASELEVEL={}", h.profile().release_level)
        );
        assert_eq!(lines[1], format!("UUID={}", h.smbios_uuid()));
        assert!(lines[2].starts_with("KERNELOPTS="), "{manifest}");
        assert!(lines[3].starts_with("USEROPTS="), "{manifest}");
        assert_eq!(h.smbios_uuid(), h.smbios_uuid().to_ascii_uppercase());
        assert_eq!(bundle.manifest.render(), manifest);

        // After a factory reset boot.cfg's kernelopt and useropts are empty: so are the lines.
        h.enter_maintenance_mode().unwrap();
        h.reset_to_factory_defaults().unwrap();
        h.wait_until_running();
        let bundle = h.backup_bundle().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (outer, _, _) = unpack_bundle(&bundle.bytes, tmp.path());
        let manifest = fs::read_to_string(outer.join("Manifest.txt")).unwrap();
        assert_eq!(
            manifest,
            format!(
                "RELEASELEVEL={}\nUUID={}\nKERNELOPTS=\nUSEROPTS=\n",
                h.profile().release_level,
                h.smbios_uuid()
            ),
            "{profile} after reset"
        );
    }
}

/// The two ways an admin makes local.tgz by hand with GNU tar.
#[derive(Clone, Copy, Debug)]
enum Listing {
    /// `tar czf local.tgz -C root etc/hosts ...`: files only, as backup.sh does.
    Explicit,
    /// `tar czf local.tgz -C root .`: directory entries and `./` prefixes.
    WholeTree,
}

/// A bundle made entirely with the system tar, for `h` (its release level and UUID).
fn bundle_by_gnu_tar(
    tmp: &Path,
    release_level: &str,
    uuid: &str,
    files: &[(&str, &[u8])],
    how: Listing,
) -> Vec<u8> {
    let root = tmp.join("root");
    for (path, data) in files {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    let work = tmp.join("work");
    fs::create_dir(&work).unwrap();
    let local = work.join("local.tgz");
    let local = local.to_str().unwrap();
    let owner = ["--owner=0", "--group=0", "--numeric-owner"];
    let mut args = vec!["czf", local];
    args.extend(owner);
    args.extend(["-C", root.to_str().unwrap()]);
    match how {
        Listing::Explicit => args.extend(files.iter().map(|(p, _)| *p)),
        Listing::WholeTree => args.push("."),
    }
    tar(tmp, &args);
    let mut args = vec!["czf", "state.tgz"];
    args.extend(owner);
    args.push("local.tgz");
    tar(&work, &args);
    fs::write(
        work.join("Manifest.txt"),
        format!("RELEASELEVEL={release_level}\nUUID={uuid}\nKERNELOPTS=\nUSEROPTS=\n"),
    )
    .unwrap();
    let mut args = vec!["czf", "configBundle.tgz"];
    args.extend(owner);
    args.extend(["Manifest.txt", "state.tgz"]);
    tar(&work, &args);
    fs::read(work.join("configBundle.tgz")).unwrap()
}

#[test]
fn bundle_made_by_gnu_tar_is_accepted_and_restored() {
    let hosts = b"127.0.0.1 localhost\n192.168.7.7 made-by-gnu-tar\n";
    let motd = b"restored by hand\n";
    for how in [Listing::Explicit, Listing::WholeTree] {
        // A bundle from another machine with the same release level: restore needs force.
        let mut h = host("6.7U3", 3);
        let level = h.profile().release_level.clone();
        let tmp = tempfile::tempdir().unwrap();
        let bytes = bundle_by_gnu_tar(
            tmp.path(),
            &level,
            "4C4C4544-0047-3210-804E-C8C04F435032",
            &[("etc/hosts", hosts), ("etc/motd", motd)],
            how,
        );
        if let Listing::WholeTree = how {
            let local = listing(&tmp.path().join("work"), "local.tgz");
            assert!(local.iter().any(|n| n == "./etc/"), "{local:?}");
            assert!(local.iter().any(|n| n == "./etc/hosts"), "{local:?}");
        }

        let bundle = ConfigBundle::parse(&bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{how:?}: GNU tar's bundle is refused: {e}"));
        assert_eq!(bundle.manifest.release_level, level);
        let files = bundle.files(&Limits::default()).unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["etc/hosts", "etc/motd"], "{how:?}");
        assert_eq!(&files["etc/hosts"].data[..], hosts);

        h.enter_maintenance_mode().unwrap();
        h.upload_bundle(bytes.clone()).unwrap();
        let mismatch = h.restore(false).unwrap_err();
        assert!(
            matches!(mismatch, esxi_sim::HostError::MismatchedBundle { .. }),
            "{how:?}: {mismatch:?}"
        );
        h.restore(true).unwrap();
        h.wait_until_running();
        assert!(h.is_running());
        assert_eq!(
            &h.read_file("/etc/hosts").unwrap().unwrap()[..],
            hosts,
            "{how:?}"
        );
        assert_eq!(
            &h.read_file("/etc/motd").unwrap().unwrap()[..],
            motd,
            "{how:?}"
        );
        assert_eq!(
            &h.bootbank().unwrap().state_tgz().unwrap()[..],
            &bundle.state_tgz[..],
            "{how:?}: restore copies state.tgz as is"
        );
        // And the restored host backs up what it restored.
        let again = h.backup_bundle().unwrap();
        let back = ConfigBundle::parse(&again.bytes, &Limits::default()).unwrap();
        let back = back.files(&Limits::default()).unwrap();
        assert_eq!(&back["etc/hosts"].data[..], hosts, "{how:?}");
    }
}

#[test]
fn own_bundle_round_trips_through_gnu_tar_repacking() {
    // Unpack a produced bundle with GNU tar and pack it again with GNU tar: same files restored.
    let mut h = host("7.0U3", 5);
    h.write_file("/etc/hosts", "10.1.1.1 repacked\n").unwrap();
    let bundle = h.backup_bundle().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (outer, state, _) = unpack_bundle(&bundle.bytes, tmp.path());
    // Repack state.tgz from the extracted local.tgz, and the bundle from the extracted Manifest.
    fs::remove_file(outer.join("state.tgz")).unwrap();
    // 7.0 U3 keeps the encrypted pair (facts 6.1): GNU tar packs the envelope and the key store.
    assert!(state.join("local.tgz.ve").exists() && !state.join("local.tgz").exists());
    tar(
        &state,
        &[
            "czf",
            "repacked-state.tgz",
            "local.tgz.ve",
            "encryption.info",
        ],
    );
    fs::copy(state.join("repacked-state.tgz"), outer.join("state.tgz")).unwrap();
    tar(
        &outer,
        &["czf", "repacked.tgz", "Manifest.txt", "state.tgz"],
    );
    let bytes = fs::read(outer.join("repacked.tgz")).unwrap();
    assert_ne!(
        bytes,
        &bundle.bytes[..],
        "GNU tar's bytes differ (mtimes, owners)"
    );

    h.write_file("/etc/hosts", "10.2.2.2 changed-after-backup\n")
        .unwrap();
    h.enter_maintenance_mode().unwrap();
    h.upload_bundle(bytes).unwrap();
    h.restore(false).unwrap(); // same host: no force needed
    h.wait_until_running();
    assert_eq!(
        h.read_text("/etc/hosts").unwrap().unwrap(),
        "10.1.1.1 repacked\n"
    );
}
