//! Golden scripts for `inspect` and `diff` in every persistence era (toydb's goldenscript style):
//! each file in `tests/golden/` is a list of commands, each followed by the output it must give.
//! Bundles are made by the simulator in the test, never kept as data. After a deliberate change
//! of output, regenerate with `UPDATE_GOLDENFILES=1 cargo test -p esxi-harness --test golden`
//! and read the diff of the files before committing it.
//!
//! ```text
//! # a comment
//! > host src 8.0U3 seed=7 mode=tpm      build a host (boot time zero)
//! > user src ops 'VMware1!x' Operator   create a local account (7.0.3+: in the ConfigStore)
//! > option src /adv/Misc/HostName esx-b set an esx.conf value (8.0+: mirrored into the store)
//! > write src /etc/hosts 10.0.0.1 nas   write a file in /etc (the rest of the line)
//! > advance src 600                     move the host's clock (seconds)
//! > backup src b1                       BackupFirmwareConfiguration, kept as bundle b1
//! > tamper b1 b2 KIND                   b2 = b1 made hostile (see `tamper`)
//! > store-set b1 b2 esx/g/n/id user_value JSON   b2 = b1 with one ConfigStore value set (`-`:
//!                                       the row removed)
//! > inspect b1 [key=src|key=wrong] [json]
//! > diff b1 b2 [stat] [json] [key=src]...
//! output of the command, then `exit: N` (the CLI's exit status)
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use esxi_harness::diff::{compare, DiffOptions};
use esxi_harness::inspect::{inspect_with, Verdict};
use esxi_harness::layers::Keys;
use esxi_sim::bundle::{read_tgz, write_tgz, Limits, Member};
use esxi_sim::clock::DEFAULT_EPOCH;
use esxi_sim::configstore::{Column, ConfigStore, Key, BACKUP_PATH};
use esxi_sim::envelope::{self, BLOCK, CONFIG_AAD};
use esxi_sim::keystore::{KeyStore, Mode};
use esxi_sim::{Host, HostConfig, Profile};

/// A syntactically valid recovery key that opens nothing.
const WRONG_KEY: &str = "111111-222222-333333-444444-555555-666666-777777-888888-\
                         999999-000000-111111-222222-333333-444444-555555-666666";

#[derive(Default)]
struct World {
    hosts: HashMap<String, Host>,
    bundles: HashMap<String, Vec<u8>>,
}

fn words(line: &str) -> Vec<String> {
    // Words split on spaces; 'single quotes' keep spaces and are removed.
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl World {
    fn host(&mut self, name: &str) -> &mut Host {
        self.hosts
            .get_mut(name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    fn bundle(&self, name: &str) -> &[u8] {
        self.bundles
            .get(name)
            .unwrap_or_else(|| panic!("no bundle {name}"))
    }

    fn keys(&self, args: &[String]) -> Keys {
        let texts: Vec<String> = args
            .iter()
            .filter_map(|a| a.strip_prefix("key="))
            .map(|h| match h {
                "wrong" => WRONG_KEY.to_string(),
                h => self.hosts[h]
                    .recovery_key()
                    .unwrap_or_else(|| panic!("{h} has no recovery key"))
                    .key_text(),
            })
            .collect();
        Keys::recovery(&texts).unwrap()
    }

    /// Runs one command; returns its output.
    fn run(&mut self, line: &str) -> String {
        let w = words(line);
        let flag = |f: &str| w.iter().any(|a| a == f);
        match w[0].as_str() {
            "host" => {
                let seed = w
                    .iter()
                    .find_map(|a| a.strip_prefix("seed="))
                    .map_or(1, |s| s.parse().unwrap());
                let mode = w
                    .iter()
                    .find_map(|a| a.strip_prefix("mode="))
                    .map_or(Mode::None, |m| m.parse().unwrap());
                let h = HostConfig::new(Profile::named(&w[2]).unwrap())
                    .seed(seed)
                    .encryption(mode)
                    .boot_time(Duration::ZERO)
                    .build()
                    .unwrap();
                self.hosts.insert(w[1].clone(), h);
                String::new()
            }
            "user" => {
                self.host(&w[1]).create_user(&w[2], &w[3], &w[4]).unwrap();
                String::new()
            }
            "option" => {
                self.host(&w[1]).set_esx_conf_value(&w[2], &w[3]).unwrap();
                String::new()
            }
            "write" => {
                let text = w[3..].join(" ") + "\n";
                self.host(&w[1]).write_file(&w[2], text).unwrap();
                String::new()
            }
            "advance" => {
                let s: u64 = w[2].parse().unwrap();
                self.host(&w[1]).advance(Duration::from_secs(s));
                String::new()
            }
            "backup" => {
                let b = self.host(&w[1]).backup_bundle().unwrap();
                self.bundles.insert(w[2].clone(), b.bytes.to_vec());
                String::new()
            }
            "store-set" => {
                let bad = store_set(self.bundle(&w[1]), &w[3], &w[4], &w[5]);
                self.bundles.insert(w[2].clone(), bad);
                String::new()
            }
            "tamper" => {
                let bad = tamper(self.bundle(&w[1]), &w[3]);
                self.bundles.insert(w[2].clone(), bad);
                String::new()
            }
            "inspect" => {
                let keys = self.keys(&w);
                match inspect_with(self.bundle(&w[1]), &keys) {
                    Ok(i) => {
                        let exit = match i.verdict() {
                            Verdict::Readable => 0,
                            Verdict::Invalid => 1,
                            Verdict::Sealed => 3,
                        };
                        let body = if flag("json") {
                            let v: serde_json::Value =
                                serde_json::from_str(&i.to_json()).expect("inspect --json is JSON");
                            serde_json::to_string_pretty(&v).unwrap() + "\n"
                        } else {
                            i.to_string()
                        };
                        format!("{body}exit: {exit}\n")
                    }
                    Err(e) => format!("error: {e}\nexit: 1\n"),
                }
            }
            "diff" => {
                let keys = self.keys(&w);
                match compare(self.bundle(&w[1]), self.bundle(&w[2]), &keys) {
                    Ok(c) => {
                        let body = if flag("json") {
                            let v: serde_json::Value =
                                serde_json::from_str(&c.to_json(3)).expect("diff --json is JSON");
                            serde_json::to_string_pretty(&v).unwrap() + "\n"
                        } else {
                            c.render(DiffOptions {
                                stat: flag("stat"),
                                context: 3,
                            })
                        };
                        format!("{body}exit: 0\n")
                    }
                    Err(e) => format!("error: {e}\nexit: {}\n", if e.sealed() { 3 } else { 1 }),
                }
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}

/// The members of a gzip tar, and the archive rebuilt from them.
fn members(tgz: &[u8]) -> Vec<Member> {
    read_tgz(tgz, &Limits::default(), "test").unwrap()
}

fn pack(ms: &[Member]) -> Vec<u8> {
    write_tgz(
        ms.iter()
            .map(|m| (m.path.as_str(), &m.data[..], m.mode, m.mtime)),
        0,
    )
}

/// Applies `f` to the member `name` of `tgz`.
fn edit(tgz: &[u8], name: &str, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut ms = members(tgz);
    let m = ms
        .iter_mut()
        .find(|m| m.path == name)
        .unwrap_or_else(|| panic!("no member {name}"));
    f(&mut m.data);
    pack(&ms)
}

/// Applies `f` to the bundle's state.tgz.
fn edit_state(bundle: &[u8], f: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    edit(bundle, "state.tgz", |s| *s = f(s))
}

/// Applies `f` to local.tgz inside the bundle, whether plain or sealed in NONE mode (opened
/// and sealed again with the same key, iv and filler length: only `f`'s change differs).
fn edit_local(bundle: &[u8], f: impl FnOnce(&mut Vec<Member>)) -> Vec<u8> {
    edit_state(bundle, |state| {
        let ms = members(state);
        if ms.iter().any(|m| m.path == "local.tgz") {
            return edit(state, "local.tgz", |l| {
                let mut inner = members(l);
                f(&mut inner);
                *l = pack(&inner);
            });
        }
        let info = &ms
            .iter()
            .find(|m| m.path == "encryption.info")
            .unwrap()
            .data;
        let ks = KeyStore::parse(info).unwrap();
        let key = ks.none_key().expect("a NONE-mode bundle");
        edit(state, "local.tgz.ve", |ve| {
            let h = envelope::read_header(ve).unwrap();
            let plain = envelope::open(ve, &key, CONFIG_AAD).unwrap();
            let mut inner = members(&plain);
            f(&mut inner);
            let local = pack(&inner);
            let random = vec![0u8; envelope::filler_len(local.len())];
            *ve = envelope::seal(&local, &key, &ks.key_id, h.iv, &random, CONFIG_AAD);
        })
    })
}

/// `bundle` with one ConfigStore value set (`-`: the row removed), as a change through the API
/// would leave it where the simulator has no API for it (the 7.0 network rows, facts 6.3).
fn store_set(bundle: &[u8], key: &str, column: &str, json: &str) -> Vec<u8> {
    let p: Vec<&str> = key.splitn(4, '/').collect();
    let key = Key::new(p[0], p[1], p[2], p.get(3).copied().unwrap_or(""));
    let column = Column::ALL
        .into_iter()
        .find(|c| c.name() == column)
        .unwrap_or_else(|| panic!("no column {column}"));
    edit_local(bundle, |ms| {
        let m = ms.iter_mut().find(|m| m.path == BACKUP_PATH).unwrap();
        let mut store = ConfigStore::from_sqlite(&m.data).unwrap();
        let later = DEFAULT_EPOCH.plus(Duration::from_secs(3600));
        if json == "-" {
            assert!(store.remove(&key));
        } else {
            assert!(store.set(key, column, Some(json), "1.0", later));
        }
        m.data = store.to_sqlite().to_vec();
    })
}

/// Where an attribute's value starts in an envelope's header block.
fn attr_value(ve: &[u8], name: &str) -> usize {
    let needle = format!("{name}\0");
    let at = ve[..BLOCK]
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("no attribute {name}"));
    at + needle.len()
}

/// A hostile variant of a bundle (facts 6.4's envelope, 6.3's store, oversized members).
fn tamper(bundle: &[u8], kind: &str) -> Vec<u8> {
    let ve = |f: fn(&mut Vec<u8>)| edit_state(bundle, |s| edit(s, "local.tgz.ve", f));
    match kind {
        // A ciphertext byte flipped: the GCM tag no longer verifies.
        "bad-tag" => ve(|v| v[BLOCK + 10] ^= 0x01),
        // vmware.keyHash altered (a u64 length, then 32 bytes): the key does not match.
        "wrong-key-hash" => ve(|v| {
            let at = attr_value(v, "vmware.keyHash") + 8;
            v[at] ^= 0xff;
        }),
        // Cut mid-block, and cut by a whole block (the AEAD footer gone).
        "truncated" => ve(|v| v.truncate(v.len() - 100)),
        "truncated-block" => ve(|v| v.truncate(v.len() - BLOCK)),
        // vmware.iv claims 2^64-1 bytes.
        "length-past-end" => ve(|v| {
            let at = attr_value(v, "vmware.iv");
            v[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        }),
        "keystore-garbage" => edit_state(bundle, |s| {
            edit(s, "encryption.info", |i| {
                *i = b"mode = \"TPM\"\nConfigEncData = \"garbage\"\n".to_vec()
            })
        }),
        // The ConfigStore replaced by text, and by 9 MiB (over the 8 MiB a store may have).
        "store-not-sqlite" => edit_local(bundle, |ms| {
            let m = ms.iter_mut().find(|m| m.path == BACKUP_PATH).unwrap();
            m.data = b"this is not a database\n".to_vec();
        }),
        "store-oversized" => edit_local(bundle, |ms| {
            let m = ms.iter_mut().find(|m| m.path == BACKUP_PATH).unwrap();
            let mut db = b"SQLite format 3\0".to_vec();
            db.resize(9 << 20, 0);
            m.data = db;
        }),
        // A state.tgz member whose tar header claims a terabyte.
        "member-oversized" => edit(bundle, "state.tgz", |s| *s = huge_member_tgz()),
        other => panic!("unknown tamper {other:?}"),
    }
}

/// A gzip tar whose one member's header claims 1 TiB (and holds nothing).
fn huge_member_tgz() -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..12].copy_from_slice(b"local.tgz.ve");
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(b"20000000000\0");
    h[136..148].copy_from_slice(b"00000000000\0");
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.resize(tar.len() + 1024, 0);
    esxi_sim::bundle::gzip_bytes(&tar)
}

/// A script's blocks: (the comments and blank lines before it, command, expected output), and
/// the comments after the last output.
type Blocks = (Vec<(Vec<String>, String, String)>, Vec<String>);

fn parse(text: &str) -> Blocks {
    let mut blocks: Vec<(Vec<String>, String, String)> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            blocks.push((std::mem::take(&mut pending), cmd.to_string(), String::new()));
        } else if line.starts_with('#') || line.is_empty() {
            pending.push(line.to_string());
        } else {
            let b = blocks.last_mut().expect("output before any command");
            for p in pending.drain(..) {
                b.2.push_str(&p);
                b.2.push('\n');
            }
            b.2.push_str(line);
            b.2.push('\n');
        }
    }
    (blocks, pending)
}

fn run_script(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let (blocks, trailer) = parse(&text);
    let mut world = World::default();
    let mut regenerated = String::new();
    let mut failures = Vec::new();
    for (lead, cmd, expected) in &blocks {
        let got = world.run(cmd);
        for l in lead {
            regenerated.push_str(l);
            regenerated.push('\n');
        }
        regenerated.push_str("> ");
        regenerated.push_str(cmd);
        regenerated.push('\n');
        regenerated.push_str(&got);
        if &got != expected {
            failures.push(format!("> {cmd}\n--- expected\n{expected}--- got\n{got}"));
        }
    }
    for l in trailer {
        regenerated.push_str(&l);
        regenerated.push('\n');
    }
    if std::env::var_os("UPDATE_GOLDENFILES").is_some() {
        std::fs::write(path, regenerated).unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{}: {} command(s) differ (UPDATE_GOLDENFILES=1 regenerates):\n{}",
        path.display(),
        failures.len(),
        failures.join("\n")
    );
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

macro_rules! golden {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(#[test] fn $test() { run_script(&script($file)); })*
    };
}

golden! {
    plain_6_7u3 => "plain-6.7U3.txt",
    configstore_7_0u1 => "configstore-7.0U1.txt",
    encrypted_none_8_0u3 => "none-8.0U3.txt",
    encrypted_tpm_8_0u3 => "tpm-8.0U3.txt",
    hostile_bundles => "hostile.txt",
    json_reports => "json.txt",
}

/// Every script in the directory is run by one of the tests above.
#[test]
fn every_golden_script_has_a_test() {
    let listed = [
        "plain-6.7U3.txt",
        "configstore-7.0U1.txt",
        "none-8.0U3.txt",
        "tpm-8.0U3.txt",
        "hostile.txt",
        "json.txt",
    ];
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(listed.contains(&name.as_str()), "{name} is run by no test");
    }
}
