//! `inspect` and `diff` on real bundles from the host model, on crafted hostile ones, and the
//! unified diff checked byte for byte against GNU `diff -u` where it is installed.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use esxi_harness::diff::{changed_files, compare, diff, DiffOptions};
use esxi_harness::inspect::{inspect, inspect_with, Inspection, Keys, Opened, OpenedWith, Verdict};
use esxi_sim::bundle::{gzip_bytes, write_state_tgz, write_tgz, ConfigBundle, Limits, Manifest};
use esxi_sim::configstore::BACKUP_PATH;
use esxi_sim::envelope;
use esxi_sim::keystore::Mode;
use esxi_sim::{Host, HostConfig, Profile};

/// Bumped by backup.sh on every save, so it differs between any two real backups.
const COUNTER: &str = "etc/vmware/.backup.counter";

fn host() -> Host {
    HostConfig::new(Profile::named("6.7U3").unwrap())
        .seed(1)
        .boot_time(Duration::ZERO)
        .build()
        .unwrap()
}

fn backup(h: &mut Host) -> Vec<u8> {
    h.backup_bundle().unwrap().bytes.to_vec()
}

fn manifest(level: &str) -> Manifest {
    Manifest {
        release_level: level.into(),
        uuid: "4C4C4544-0047-3210-804E-C8C04F435032".into(),
        kernelopts: String::new(),
        useropts: String::new(),
        extra: vec![],
    }
}

/// A 6.7U3 bundle whose local.tgz holds exactly `files` (path, contents, mode).
fn bundle_with(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let local = write_tgz(files.iter().map(|(p, d, m)| (*p, *d, *m, 0)), 0);
    ConfigBundle {
        manifest: manifest("VMware ESXi 6.7.0 Update 3"),
        state_tgz: write_state_tgz(&local, 0).into(),
    }
    .to_bytes(0)
}

/// A gzip tar written by hand, for members the tar crate refuses to write (absolute paths,
/// links): (name, type flag, link target, data).
fn raw_tgz(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[148..156].copy_from_slice(b"        ");
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        tar.extend_from_slice(&h);
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    gzip_bytes(&tar)
}

fn gnu_diff_available() -> bool {
    Command::new("diff")
        .arg("--version")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GNU"))
        .unwrap_or(false)
}

fn temp_file(tag: &str, data: Option<&[u8]>) -> PathBuf {
    // Tests run in parallel threads of one process: a counter keeps their files apart.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "esxi-harness-inspect-diff-{}-{}-{tag}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    match data {
        Some(d) => std::fs::write(&p, d).unwrap(),
        None => {
            let _ = std::fs::remove_file(&p);
        }
    }
    p
}

/// GNU `diff -N -U<ctx>` of two contents (`None`: absent), with our header labels.
fn gnu_diff(path: &str, a: Option<&[u8]>, b: Option<&[u8]>, ctx: usize) -> String {
    let (pa, pb) = (temp_file("a", a), temp_file("b", b));
    let out = Command::new("diff")
        .arg("-N")
        .arg(format!("-U{ctx}"))
        .arg("-L")
        .arg(format!("a/{path}"))
        .arg("-L")
        .arg(format!("b/{path}"))
        .arg(&pa)
        .arg(&pb)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&pa);
    let _ = std::fs::remove_file(&pb);
    assert!(out.status.code() != Some(2), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn saved(bundle: &[u8], path: &str) -> Vec<u8> {
    let files = ConfigBundle::parse(bundle, &Limits::default())
        .unwrap()
        .files(&Limits::default())
        .unwrap();
    files[path].data.to_vec()
}

#[test]
fn inspect_reports_manifest_profile_and_saved_files() {
    let mut h = host();
    h.write_file("/etc/hosts", "127.0.0.1 localhost\n10.0.0.5 nas\n")
        .unwrap();
    let b = h.backup_bundle().unwrap();
    let i = inspect(&b.bytes).unwrap();

    let m = i.manifest.as_ref().unwrap();
    assert_eq!(m.release_level, "VMware ESXi 6.7.0 Update 3");
    assert_eq!(m.uuid, h.smbios_uuid());
    assert_eq!(m, &b.manifest);
    let names: Vec<&str> = i.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["6.7U3"]);
    assert_eq!(i.build, Some(14320388));
    assert_eq!(i.state_members.len(), 1);
    assert_eq!(i.state_members[0].path, "local.tgz");
    assert!(!i.encrypted);
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    assert_eq!(i.reader_error, None);

    for path in ["etc/shadow", "etc/vmware/esx.conf", "etc/hosts"] {
        let f = i.files.iter().find(|f| f.path == path).expect(path);
        let on_host = h.read_file(&format!("/{path}")).unwrap().unwrap();
        assert_eq!(f.size, on_host.len() as u64, "{path}");
        assert!(f.size > 0, "{path}");
    }
    let shadow = i.files.iter().find(|f| f.path == "etc/shadow").unwrap();

    let text = i.to_string();
    assert!(
        text.contains("RELEASELEVEL=VMware ESXi 6.7.0 Update 3\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("UUID={}\n", h.smbios_uuid())),
        "{text}"
    );
    assert!(text.contains("KERNELOPTS="), "{text}");
    assert!(text.contains("USEROPTS="), "{text}");
    assert!(text.contains("Profile: 6.7U3 (build 14320388)"), "{text}");
    assert!(
        text.contains(&format!(
            "{:04o} {:>9}  etc/shadow\n",
            shadow.mode, shadow.size
        )),
        "{text}"
    );
    assert!(text.contains("etc/vmware/esx.conf"), "{text}");
    assert!(!text.contains("Warnings:"), "{text}");

    let json = i.to_json();
    assert!(json.contains(r#""RELEASELEVEL":"VMware ESXi 6.7.0 Update 3""#));
    assert!(json.contains(r#"{"name":"6.7U3","build":14320388}"#));
    assert!(json.contains(r#""path":"etc/shadow""#));
    assert!(json.contains(r#""warnings":[]"#));
    check_json(&json);
}

/// Validates with Python's parser when there is one: the JSON is written by hand.
fn check_json(json: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("python3")
        .args(["-c", "import json,sys; json.load(sys.stdin)"])
        .stdin(std::process::Stdio::piped())
        .spawn()
    else {
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(json.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "invalid JSON: {json}");
}

#[test]
fn inspect_warns_on_an_unknown_release_level() {
    let mut h = host();
    let good = ConfigBundle::parse(&backup(&mut h), &Limits::default()).unwrap();
    let mut m = good.manifest.clone();
    m.release_level = "VMware ESXi 9.9.0 Update 9".into();
    m.extra.push(("BUILD".into(), "99999 \"quoted\"".into()));
    let bytes = ConfigBundle {
        manifest: m,
        state_tgz: good.state_tgz.clone(),
    }
    .to_bytes(0);
    let i = inspect(&bytes).unwrap();
    assert!(i.profiles.is_empty());
    assert_eq!(i.build, None);
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("unknown release level") && w.contains("9.9.0")),
        "{:?}",
        i.warnings
    );
    // The saved files are still listed: the warning does not stop the report.
    assert!(i.files.iter().any(|f| f.path == "etc/shadow"));
    let text = i.to_string();
    assert!(text.contains("Profile: none"), "{text}");
    assert!(text.contains("BUILD=99999 \"quoted\""), "{text}");
    let json = i.to_json();
    assert!(json.contains(r#"["BUILD","99999 \"quoted\""]"#), "{json}");
    check_json(&json);
}

#[test]
fn unreadable_bundles_are_errors_with_the_readers_message() {
    for bad in [
        &b""[..],
        b"not a bundle at all",
        &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3],
    ] {
        let e = inspect(bad).unwrap_err();
        assert!(e.starts_with("Invalid Bundle:"), "{e}");
        assert!(diff(bad, bad, DiffOptions::default()).is_err());
    }
    let mut h = host();
    let good = backup(&mut h);
    let e = inspect(&good[..good.len() - 10]).unwrap_err();
    assert!(e.contains("Invalid Bundle"), "{e}");

    // Unsafe members of the bundle itself: the reader refuses them, so inspect does too.
    let abs = raw_tgz(&[("/etc/passwd", b'0', "", b"x")]);
    assert!(inspect(&abs).unwrap_err().contains("unsafe member path"));
    let up = raw_tgz(&[("../state.tgz", b'0', "", b"x")]);
    assert!(inspect(&up).unwrap_err().contains("unsafe member path"));
    let link = raw_tgz(&[("Manifest.txt", b'2', "/etc/shadow", b"")]);
    assert!(inspect(&link).unwrap_err().contains("symbolic link"));
}

#[test]
fn a_hostile_local_tgz_is_reported_not_fatal() {
    let local = raw_tgz(&[
        ("etc/hosts", b'0', "", b"127.0.0.1 localhost\n"),
        ("etc/evil", b'2', "../../etc/shadow", b""),
    ]);
    let bytes = ConfigBundle {
        manifest: manifest("VMware ESXi 6.7.0 Update 3"),
        state_tgz: write_state_tgz(&local, 0).into(),
    }
    .to_bytes(0);
    let i = inspect(&bytes).unwrap();
    assert_eq!(i.profiles[0].name, "6.7U3");
    // A damaged layer is an error (it was a warning before the 7.0+ eras), and the report goes
    // on: the manifest and profile above it are still there.
    assert!(
        i.errors
            .iter()
            .any(|w| w.starts_with("local.tgz unreadable") && w.contains("symbolic link")),
        "{:?}",
        i.errors
    );
    assert_eq!(i.verdict(), Verdict::Invalid);
    assert!(i.reader_error.as_deref().unwrap().contains("symbolic link"));
    assert!(i.to_string().contains("Restore check: refused"));
    let e = diff(&bytes, &bytes, DiffOptions::default()).unwrap_err();
    assert!(e.starts_with("a: ") && e.contains("symbolic link"), "{e}");
}

#[test]
fn inspect_warns_on_encryption_missing_manifest_and_files_outside_etc() {
    // 7.0 U2+: state.tgz carries local.tgz.ve and encryption.info.
    let state = write_tgz(
        [
            ("local.tgz.ve", &b"\x01\x02sealed"[..], 0o600, 0),
            ("encryption.info", &b"{\"mode\":\"TPM\"}"[..], 0o600, 0),
        ],
        0,
    );
    let enc = ConfigBundle {
        manifest: manifest("VMware ESXi 7.0 Update 3"),
        state_tgz: state.clone().into(),
    }
    .to_bytes(0);
    let i = inspect(&enc).unwrap();
    assert!(i.encrypted);
    assert!(i.files.is_empty());
    let names: Vec<&str> = i.profiles.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"7.0U3") && names.contains(&"7.0U3k"),
        "{names:?}"
    );
    assert_eq!(i.build, Some(18644231));
    // Neither the key store nor the envelope parses: an error naming the key store first.
    assert_eq!(i.verdict(), Verdict::Invalid);
    assert!(
        i.errors
            .iter()
            .any(|e| e.starts_with("encrypted configuration: encryption.info:")),
        "{:?}",
        i.errors
    );
    let e = i.encryption.as_ref().unwrap();
    assert!(e.keystore_error.is_some() && e.envelope_error.is_some());
    assert_eq!(e.envelope_size, Some(8));
    assert!(i.to_string().contains("not readable (see Errors)"));
    assert!(diff(&enc, &enc, DiffOptions::default())
        .unwrap_err()
        .starts_with("a: encrypted configuration: encryption.info"));

    let no_manifest = write_tgz([("state.tgz", &state[..], 0o644, 0)], 0);
    let i = inspect(&no_manifest).unwrap();
    assert!(i.manifest.is_none());
    assert!(i.warnings.iter().any(|w| w.contains("no Manifest.txt")));
    assert_eq!(
        i.reader_error.as_deref(),
        Some("Invalid Bundle: Missing Manifest File")
    );

    let outside = bundle_with(&[
        ("etc/hosts", b"x\n", 0o644),
        (
            "var/lib/vmware/configstore/backup/current-store-1",
            b"db",
            0o600,
        ),
        ("etc/rc.local.d/local.sh", b"#!/bin/sh\n", 0o4755),
    ]);
    let i = inspect(&outside).unwrap();
    assert!(
        i.warnings
            .iter()
            .any(|w| w.contains("outside etc/") && w.contains("var/lib/vmware")),
        "{:?}",
        i.warnings
    );
    assert!(i.warnings.iter().any(|w| w.contains("set-user/group-ID")));
    assert_eq!(i.reader_error, None);
}

#[test]
fn diff_of_backups_around_a_hosts_edit_shows_only_etc_hosts() {
    let mut h = host();
    let before = backup(&mut h);
    let old = h.read_text("/etc/hosts").unwrap().unwrap();
    let mut lines: Vec<String> = old.lines().map(String::from).collect();
    lines.push("10.0.0.5 nas.lab nas".into());
    lines.insert(0, "# managed by the harness".into());
    let new = lines.join("\n") + "\n";
    h.advance(Duration::from_secs(30));
    h.write_file("/etc/hosts", new.clone()).unwrap();
    let after = backup(&mut h);

    // backup.sh bumps /etc/vmware/.backup.counter on every save (facts section 1), so two real
    // backups always differ there too; the edit is the only other change.
    assert_eq!(
        changed_files(&before, &after).unwrap(),
        ["etc/hosts", COUNTER]
    );
    assert_eq!(saved(&after, "etc/hosts"), new.as_bytes());

    let all = diff(&before, &after, DiffOptions::default()).unwrap();
    let (d, counter) = all.split_at(all.find(&format!("--- a/{COUNTER}\n")).unwrap());
    // Its MODIFIED stamp and its count.
    let body: Vec<&str> = counter.lines().skip(3).collect();
    assert_eq!(
        body.iter().filter(|l| l.starts_with('-')).count(),
        2,
        "{counter}"
    );
    assert_eq!(
        body.iter().filter(|l| l.starts_with('+')).count(),
        2,
        "{counter}"
    );
    assert!(
        d.starts_with("--- a/etc/hosts\n+++ b/etc/hosts\n@@ "),
        "{d}"
    );
    assert_eq!(d.matches("--- a/").count(), 1, "{d}");
    let plus: Vec<&str> = d
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    let minus: Vec<&str> = d
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    assert_eq!(plus, ["+# managed by the harness", "+10.0.0.5 nas.lab nas"]);
    assert!(minus.is_empty(), "{d}");
    let n_old = old.lines().count();
    if n_old <= 6 {
        // Both insertions within 2*3 lines of each other: one hunk over the whole file.
        assert!(
            d.contains(&format!("@@ -1,{n_old} +1,{} @@\n", n_old + 2)),
            "{d}"
        );
    }
    if gnu_diff_available() {
        let gnu = gnu_diff("etc/hosts", Some(old.as_bytes()), Some(new.as_bytes()), 3);
        assert_eq!(d, gnu);
        for ctx in [0, 1] {
            let all = diff(
                &before,
                &after,
                DiffOptions {
                    stat: false,
                    context: ctx,
                },
            )
            .unwrap();
            let d = &all[..all.find(&format!("--- a/{COUNTER}\n")).unwrap()];
            let gnu = gnu_diff("etc/hosts", Some(old.as_bytes()), Some(new.as_bytes()), ctx);
            assert_eq!(d, gnu, "context {ctx}");
        }
    }

    // The reverse direction swaps the signs.
    let r = diff(&after, &before, DiffOptions::default()).unwrap();
    assert!(r.contains("\n-# managed by the harness\n"), "{r}");
}

#[test]
fn stat_counts_insertions_and_deletions() {
    let mut h = host();
    let before = backup(&mut h);
    let old = h.read_text("/etc/hosts").unwrap().unwrap();
    let first = old.lines().next().unwrap().to_string();
    let new =
        old.replacen(&first, "127.0.0.1 localhost.localdomain localhost", 1) + "10.0.0.5 nas\n";
    h.write_file("/etc/hosts", new).unwrap();
    h.set_password("root", "Another1!").unwrap();
    let after = backup(&mut h);

    let files = changed_files(&before, &after).unwrap();
    assert!(files.contains(&"etc/hosts".to_string()), "{files:?}");
    assert!(files.contains(&"etc/shadow".to_string()), "{files:?}");
    let stat = diff(
        &before,
        &after,
        DiffOptions {
            stat: true,
            context: 3,
        },
    )
    .unwrap();
    let w = files.iter().map(|f| f.len()).max().unwrap();
    assert!(
        stat.contains(&format!(" {:<w$} | 3 ++-\n", "etc/hosts")),
        "{stat}"
    );
    assert!(
        stat.contains(&format!(" {:<w$} | 2 +-\n", "etc/shadow")),
        "{stat}"
    );
    // The total agrees with the unified diff's own +/- lines.
    let d = diff(&before, &after, DiffOptions::default()).unwrap();
    let ins = d
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++ "))
        .count();
    let del = d
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("--- "))
        .count();
    let plural = |n: usize, s: &str| format!("{n} {s}{}", if n == 1 { "" } else { "s" });
    let total = format!(
        " {} changed, {}(+), {}(-)\n",
        plural(files.len(), "file"),
        plural(ins, "insertion"),
        plural(del, "deletion")
    );
    assert!(stat.ends_with(&total), "{stat}\nwanted {total}");
    assert_eq!(stat.lines().count(), files.len() + 1, "{stat}");
}

#[test]
fn identical_bundles_give_an_empty_diff() {
    let mut h = host();
    let a = backup(&mut h);
    assert_eq!(diff(&a, &a, DiffOptions::default()).unwrap(), "");
    assert_eq!(
        diff(
            &a,
            &a,
            DiffOptions {
                stat: true,
                context: 3
            }
        )
        .unwrap(),
        ""
    );
    assert!(changed_files(&a, &a).unwrap().is_empty());
    // The same files in an archive written at another time (other mtimes, other bytes).
    let parsed = ConfigBundle::parse(&a, &Limits::default()).unwrap();
    let files = parsed.files(&Limits::default()).unwrap();
    let local = write_tgz(
        files
            .iter()
            .map(|(p, n)| (p.as_str(), &n.data[..], n.mode, n.mtime + 3600)),
        3600,
    );
    let b = ConfigBundle {
        manifest: parsed.manifest.clone(),
        state_tgz: write_state_tgz(&local, 3600).into(),
    }
    .to_bytes(3600);
    assert_ne!(a, b);
    assert_eq!(diff(&a, &b, DiffOptions::default()).unwrap(), "");
    // A later backup of an unchanged host differs only in backup.sh's counter.
    h.advance(Duration::from_secs(7200));
    let c = backup(&mut h);
    assert_eq!(changed_files(&a, &c).unwrap(), [COUNTER]);
}

#[test]
fn binary_files_and_one_sided_files() {
    let a = bundle_with(&[
        ("etc/hosts", b"127.0.0.1 localhost\n", 0o644),
        ("etc/vmware/ssl/blob", b"\x00\x01\x02", 0o600),
        ("etc/gone.conf", b"old\n", 0o644),
    ]);
    let b = bundle_with(&[
        ("etc/hosts", b"127.0.0.1 localhost\n", 0o644),
        ("etc/vmware/ssl/blob", b"\x00\x01\x02\x03", 0o600),
        ("etc/new.conf", b"a = 1\nb = 2", 0o644),
    ]);
    assert_eq!(
        changed_files(&a, &b).unwrap(),
        ["etc/gone.conf", "etc/new.conf", "etc/vmware/ssl/blob"]
    );
    let d = diff(&a, &b, DiffOptions::default()).unwrap();
    let expected = "--- a/etc/gone.conf\n+++ b/etc/gone.conf\n@@ -1 +0,0 @@\n-old\n\
                    --- a/etc/new.conf\n+++ b/etc/new.conf\n@@ -0,0 +1,2 @@\n+a = 1\n+b = 2\n\
                    \\ No newline at end of file\n\
                    Binary files a/etc/vmware/ssl/blob and b/etc/vmware/ssl/blob differ\n";
    assert_eq!(d, expected);
    if gnu_diff_available() {
        // diff -N on a missing side, as auto-backup.sh runs it.
        let gone = gnu_diff("etc/gone.conf", Some(b"old\n"), None, 3);
        let new = gnu_diff("etc/new.conf", None, Some(b"a = 1\nb = 2"), 3);
        assert!(d.starts_with(&(gone + &new)), "{d}");
    }
    let stat = diff(
        &a,
        &b,
        DiffOptions {
            stat: true,
            context: 3,
        },
    )
    .unwrap();
    assert_eq!(
        stat,
        " etc/gone.conf       | 1 -\n \
         etc/new.conf        | 2 ++\n \
         etc/vmware/ssl/blob | Bin 3 -> 4 bytes\n \
         3 files changed, 2 insertions(+), 1 deletion(-)\n"
    );
    // Manifest.txt is part of the comparison.
    let mut other = ConfigBundle::parse(&b, &Limits::default()).unwrap();
    other.manifest.uuid = "00000000-0000-0000-0000-000000000001".into();
    let c = other.to_bytes(0);
    assert_eq!(changed_files(&b, &c).unwrap(), ["Manifest.txt"]);
    let d = diff(
        &b,
        &c,
        DiffOptions {
            stat: false,
            context: 0,
        },
    )
    .unwrap();
    assert_eq!(
        d,
        "--- a/Manifest.txt\n+++ b/Manifest.txt\n@@ -2 +2 @@\n\
         -UUID=4C4C4544-0047-3210-804E-C8C04F435032\n\
         +UUID=00000000-0000-0000-0000-000000000001\n"
    );
}

/// Random edits (no moves, so the shortest edit script is unique up to the order GNU also
/// uses) on small texts, every context width, compared with GNU diff byte for byte.
#[test]
fn unified_output_matches_gnu_diff() {
    if !gnu_diff_available() {
        eprintln!("GNU diff not installed: skipped");
        return;
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut fresh = 0;
    for case in 0..200 {
        let n = rnd(40) as usize;
        let a: Vec<String> = (0..n).map(|i| format!("line {i}\n")).collect();
        let mut b = Vec::new();
        for l in &a {
            match rnd(10) {
                0 => {} // deleted
                1 => {
                    fresh += 1;
                    b.push(format!("changed {fresh}\n"));
                }
                2 => {
                    fresh += 1;
                    b.push(l.clone());
                    b.push(format!("added {fresh}\n"));
                }
                _ => b.push(l.clone()),
            }
        }
        let mut ta = a.concat();
        let mut tb = b.concat();
        // Sometimes drop the last newline on one side.
        match case % 5 {
            3 => {
                ta.pop();
            }
            4 => {
                tb.pop();
            }
            _ => {}
        }
        let ba = bundle_with(&[("etc/f", ta.as_bytes(), 0o644)]);
        let bb = bundle_with(&[("etc/f", tb.as_bytes(), 0o644)]);
        for ctx in [0, 1, 2, 3, 5] {
            let ours = diff(
                &ba,
                &bb,
                DiffOptions {
                    stat: false,
                    context: ctx,
                },
            )
            .unwrap();
            let gnu = gnu_diff("etc/f", Some(ta.as_bytes()), Some(tb.as_bytes()), ctx);
            assert_eq!(
                ours, gnu,
                "case {case} context {ctx}\n--- a:\n{ta}\n--- b:\n{tb}"
            );
        }
    }
}

// ---- the 7.0+ eras: checked against the host model itself ----------------------------------

fn host_of(profile: &str, seed: u64, mode: Mode) -> Host {
    HostConfig::new(Profile::named(profile).unwrap())
        .seed(seed)
        .encryption(mode)
        .boot_time(Duration::ZERO)
        .build()
        .unwrap()
}

/// What inspect read of the saved files and the store is what the host saved: the same paths
/// and sizes as its /etc, and the same ConfigStore lines as its RAM store.
fn assert_reads_the_hosts_configuration(i: &Inspection, h: &Host) {
    let store = h.config_store().expect("a 7.0+ host has a store");
    let c = i.configstore.as_ref().expect("the store was read");
    assert_eq!(c.lines, store.lines());
    assert_eq!(c.rows.len(), store.len());
    for f in &i.files {
        if f.path.starts_with("etc/") {
            let on_host = h.read_file(&format!("/{}", f.path)).unwrap().unwrap();
            assert_eq!(f.size, on_host.len() as u64, "{}", f.path);
        }
    }
    assert!(i.files.iter().any(|f| f.path == BACKUP_PATH));
}

#[test]
fn every_era_is_read_through_to_the_configstore() {
    // Plain (6.7): no encryption, no store.
    let mut h = host_of("6.7U3", 4, Mode::None);
    let i = inspect(&backup(&mut h)).unwrap();
    assert!(i.encryption.is_none() && i.configstore.is_none());
    assert_eq!(i.verdict(), Verdict::Readable);

    // ConfigStore era (7.0 U1): a plain local.tgz with the store inside.
    let mut h = host_of("7.0U1", 4, Mode::None);
    let i = inspect(&backup(&mut h)).unwrap();
    assert!(i.encryption.is_none());
    assert_reads_the_hosts_configuration(&i, &h);
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);

    // Encrypted, NONE mode (7.0 U3 and 8.0 U3): opened with the derived key.
    for p in ["7.0U3", "8.0U3"] {
        let mut h = host_of(p, 4, Mode::None);
        let i = inspect(&backup(&mut h)).unwrap();
        let e = i.encryption.as_ref().unwrap();
        assert_eq!(e.mode, Some(Mode::None));
        assert!(
            matches!(
                e.opened,
                Opened::Yes {
                    with: OpenedWith::NoneKey,
                    ..
                }
            ),
            "{:?}",
            e.opened
        );
        // Facts 6.4: 8,192 + 4,096 × ceil(plaintext / 4,096) + 4,096.
        let Opened::Yes { plaintext, .. } = e.opened else {
            unreachable!()
        };
        assert_eq!(
            e.envelope_size,
            Some(envelope::sealed_len(plaintext as usize) as u64)
        );
        assert_eq!(
            e.key_id.as_deref(),
            Some(&e.header.as_ref().unwrap().key_info[..])
        );
        assert_reads_the_hosts_configuration(&i, &h);
        assert_eq!(i.verdict(), Verdict::Readable, "{p}: {:?}", i.errors);
    }
}

#[test]
fn a_tpm_bundle_is_sealed_without_the_recovery_key_and_opens_with_it() {
    let mut h = host_of("8.0U3", 5, Mode::Tpm);
    let bytes = backup(&mut h);
    let rk = h.recovery_key().unwrap().clone();

    let i = inspect(&bytes).unwrap();
    assert_eq!(i.verdict(), Verdict::Sealed);
    let e = i.encryption.as_ref().unwrap();
    assert_eq!(e.mode, Some(Mode::Tpm));
    assert_eq!(e.recovery_id.as_deref(), Some(&rk.id_text()[..]));
    assert!(e.header.is_some() && e.key_id.is_some());
    assert!(i.files.is_empty() && i.configstore.is_none());
    assert!(i.errors.is_empty(), "sealed is not damage: {:?}", i.errors);
    let text = i.to_string();
    assert!(
        text.contains("Sealed: the configuration is TPM-sealed"),
        "{text}"
    );
    assert!(text.contains(&rk.id_text()), "{text}");
    assert!(
        !text.contains(&rk.key_text()),
        "the key is never printed: {text}"
    );

    // Another host's recovery key does not open it.
    let other = host_of("8.0U3", 6, Mode::Tpm);
    let wrong = Keys::recovery(&[other.recovery_key().unwrap().key_text()]).unwrap();
    let i = inspect_with(&bytes, &wrong).unwrap();
    assert_eq!(i.verdict(), Verdict::Sealed);
    assert!(i.to_string().contains("does not open it"));

    // Its own opens it (typed without dashes too), and so does a list holding it.
    for given in [
        vec![rk.key_text()],
        vec![rk.digits.clone()],
        vec![other.recovery_key().unwrap().key_text(), rk.key_text()],
    ] {
        let i = inspect_with(&bytes, &Keys::recovery(&given).unwrap()).unwrap();
        assert_eq!(i.verdict(), Verdict::Readable, "{:?}", i.errors);
        assert!(matches!(
            i.encryption.as_ref().unwrap().opened,
            Opened::Yes {
                with: OpenedWith::RecoveryKey,
                ..
            }
        ));
        assert_reads_the_hosts_configuration(&i, &h);
    }
    assert!(Keys::recovery(&["123-456"]).is_err());

    // diff: sealed without the key (and says so), row by row with it.
    h.create_user("ops", "Backup0ps!x", "Operator").unwrap();
    h.advance(Duration::from_secs(30));
    let after = backup(&mut h);
    let e = compare(&bytes, &after, &Keys::none()).err().unwrap();
    assert!(e.sealed() && e.side == 'a', "{e}");
    let keys = Keys::recovery(&[rk.key_text()]).unwrap();
    let c = compare(&bytes, &after, &keys).unwrap();
    let s = c.store();
    assert_eq!((s.rows_added, s.rows_removed, s.rows_changed), (1, 0, 0));
    let text = c.render(DiffOptions::default());
    assert!(
        text.contains("+ esx/authentication/user_accounts/ops vital_value = {\"uid\":1000}"),
        "{text}"
    );
}

#[test]
fn the_configstore_is_diffed_by_rows_never_as_bytes() {
    let mut h = host_of("8.0U3", 8, Mode::None);
    let before = backup(&mut h);
    h.set_esx_conf_value("/adv/Misc/HostName", "esx-renamed")
        .unwrap();
    h.advance(Duration::from_secs(30));
    let after = backup(&mut h);
    assert!(changed_files(&before, &after)
        .unwrap()
        .contains(&BACKUP_PATH.to_string()));
    let d = diff(&before, &after, DiffOptions::default()).unwrap();
    assert!(!d.contains("Binary files a/var/lib"), "{d}");
    // 8.0 mirrors the host name into esx/advanced_options/misc (facts 6.3).
    let line = d
        .lines()
        .find(|l| l.starts_with("~ esx/advanced_options/misc vital_value: "))
        .unwrap_or_else(|| panic!("{d}"));
    assert!(
        line.ends_with("→ {\"host_name\":\"esx-renamed\"}"),
        "{line}"
    );
    assert!(
        d.contains(&format!(
            "ConfigStore rows of {BACKUP_PATH}: 0 rows added, 0 removed, 1 changed\n"
        )),
        "{d}"
    );
    // esx.conf changed too, as text.
    assert!(d.contains("+/adv/Misc/HostName = \"esx-renamed\""), "{d}");
}

#[test]
fn inspect_json_carries_the_encryption_and_the_store() {
    let mut h = host_of("8.0U3", 9, Mode::Tpm);
    let bytes = backup(&mut h);
    let rk = h.recovery_key().unwrap().key_text();
    let sealed: serde_json::Value =
        serde_json::from_str(&inspect(&bytes).unwrap().to_json()).unwrap();
    assert_eq!(sealed["verdict"], "sealed");
    assert_eq!(sealed["encryption"]["mode"], "TPM");
    assert_eq!(sealed["encryption"]["sealed"], true);
    assert_eq!(sealed["encryption"]["envelope"]["header"], 4096);
    assert!(sealed["configstore"].is_null());
    // The fields that were there before the 7.0+ eras keep their shape.
    for k in [
        "size",
        "members",
        "manifest",
        "profiles",
        "build",
        "state_members",
        "files",
        "encrypted",
        "warnings",
        "reader_error",
    ] {
        assert!(sealed.get(k).is_some(), "{k}");
    }
    assert_eq!(sealed["encrypted"], true);

    let i = inspect_with(&bytes, &Keys::recovery(&[rk]).unwrap()).unwrap();
    let open: serde_json::Value = serde_json::from_str(&i.to_json()).unwrap();
    assert_eq!(open["verdict"], "readable");
    assert_eq!(open["encryption"]["opened_with"], "recovery-key");
    let rows = open["configstore"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), h.config_store().unwrap().len());
    let misc = rows
        .iter()
        .find(|r| r["group"] == "advanced_options" && r["name"] == "misc")
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(misc["values"]["vital_value"].as_str().unwrap()).unwrap();
    assert_eq!(v["host_name"], h.hostname());
    assert_eq!(
        open["configstore"]["lines"].as_array().unwrap().len(),
        h.config_store().unwrap().lines().len()
    );
    check_json(&i.to_json());
}

/// The command line: exit statuses 0 / 1 / 2 / 3 and the sealed message.
#[test]
fn the_cli_exits_3_on_a_sealed_bundle_and_0_with_its_recovery_key() {
    let mut h = host_of("8.0U3", 10, Mode::Tpm);
    let tpm = temp_file("tpm.tgz", Some(&backup(&mut h)));
    let rk = h.recovery_key().unwrap().key_text();
    let mut n = host_of("8.0U3", 10, Mode::None);
    let none = temp_file("none.tgz", Some(&backup(&mut n)));
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_esxi-harness"))
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (tpm_s, none_s) = (tpm.to_str().unwrap(), none.to_str().unwrap());
    let (code, out, err) = run(&["inspect", tpm_s]);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        err.contains("TPM-sealed") && err.contains("--recovery-key"),
        "{err}"
    );
    assert!(out.contains("Encryption: TPM mode"), "{out}");
    let (code, out, _) = run(&["inspect", tpm_s, "--recovery-key", &rk]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ConfigStore ("), "{out}");
    let (code, _, err) = run(&["inspect", tpm_s, "--recovery-key", "12-34"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("16 groups of 6 digits"), "{err}");
    let (code, out, _) = run(&["inspect", none_s]);
    assert_eq!(code, Some(0), "{out}");

    let (code, _, err) = run(&["diff", none_s, tpm_s]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.starts_with("esxi-harness: b: the configuration is TPM-sealed"),
        "{err}"
    );
    let (code, out, _) = run(&["diff", none_s, tpm_s, "--json"]);
    assert_eq!(code, Some(3));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["error"]["side"].as_str(), v["error"]["sealed"].as_bool()),
        (Some("b"), Some(true))
    );
    let (code, out, _) = run(&["diff", none_s, tpm_s, "--recovery-key", &rk, "--json"]);
    assert_eq!(code, Some(0), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["b"]["encryption"]["mode"], "TPM");
    assert_eq!(v["a"]["encryption"]["mode"], "NONE");
    let (code, out, _) = run(&["diff", none_s, tpm_s, "--recovery-key", &rk]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("Encryption: a NONE key id "), "{out}");
    for f in [tpm, none] {
        let _ = std::fs::remove_file(f);
    }
}
