//! The bundle reader and what a restore does with its verdict.
//!
//! An input is the bytes of a `configBundle-<host>.tgz` as `PUT /tmp/configBundle.tgz`
//! receives them. The raw material is four real bundles from hosts of each persistence era:
//! 6.7U3 (plain `local.tgz`), 7.0U1 (the ConfigStore's SQLite database inside), and 8.0U3 in
//! NONE and TPM mode (`local.tgz.ve` + `encryption.info`). Each is taken apart into its three
//! nested archives (the bundle, state.tgz, local.tgz; decrypted for the sealed ones), one layer
//! is changed, and the layers are packed again around it (resealed with the right key, so a
//! hostile local.tgz or ConfigStore gets past the envelope). Changes: byte havoc on a layer's
//! gzip or tar bytes, members removed, repeated, added, reordered; tar header fields (names
//! with `..`, absolute paths, long names, symlinks, devices, declared sizes that lie or are not
//! octal, bad checksums); Manifest.txt lines; the envelope's bytes and lengths; the key store;
//! the ConfigStore's bytes; gzip headers, trailers, concatenated members and bombs.
//!
//! Checked for every input:
//! - `ConfigBundle::parse` under default limits and under tight ones never panics, holds at
//!   most a bound of heap under the tight limits (a few times the unpacked cap), and what the
//!   tight limits accept the default ones accept too;
//! - the harness's `inspect` reads every bundle the simulator's reader accepts;
//! - a restore onto a copy of the fixture host whose release the bundle names: refused with
//!   exactly the reader's error (or a MismatchedBundle, or a sealed state that does not open)
//!   and the host unchanged (`/etc`, boot bank, power, maintenance mode); or taken, and the host
//!   boots with the bundle's `/etc` files or stops with a reason (facts 6.5), then writes a
//!   bundle that reads back, and lays its boot bank out as files.

use std::io::{Read, Write};
use std::time::Duration;

use esxi_harness::layers::Keys;
use esxi_sim::bundle::{read_tgz, BundleError, ConfigBundle, Limits, Member};
use esxi_sim::envelope::{self, CONFIG_AAD};
use esxi_sim::fleet::shared_none_material;
use esxi_sim::host::etc::EtcFs;
use esxi_sim::host::{BootBank, HostError, PowerState};
use esxi_sim::keystore::Mode;
use esxi_sim::rng::Rng;
use esxi_sim::state::{self, KeyContext};
use esxi_sim::{Host, HostConfig, Profile};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::driver::Target;
use crate::meter;
use crate::mutate::{between, chance, havoc, pick, skewed};

/// Tight limits: a reader held to these must stay within [`tight_bound`].
pub const TIGHT: Limits = Limits {
    max_compressed: 256 << 10,
    max_unpacked: 1 << 20,
    max_members: 64,
    max_manifest: 4 << 10,
};

/// The heap one parse under [`TIGHT`] may hold: every one of the three nested archives keeps
/// its members (each at most the unpacked cap, a growing buffer up to twice that), the bundle
/// keeps a copy of state.tgz, plus the input and slack.
pub fn tight_bound(input_len: usize) -> usize {
    10 * TIGHT.max_unpacked as usize + 4 * input_len + (1 << 20)
}

/// One host whose bundle is the raw material, taken apart.
struct Fixture {
    label: &'static str,
    /// Running, in maintenance mode: restores go onto a copy.
    host: Host,
    bundle: Vec<u8>,
    manifest: Vec<u8>,
    /// state.tgz as the host wrote it.
    state_tgz: Vec<u8>,
    /// state.tgz's members: `local.tgz`, or `local.tgz.ve` and `encryption.info`.
    state: Vec<Member>,
    /// local.tgz's members (decrypted for a sealed bundle).
    local: Vec<Member>,
    /// The envelope key and key id of a sealed bundle (to seal a changed local.tgz again).
    seal: Option<([u8; 32], [u8; 16])>,
    /// Another fixture's key store of the same mode (a foreign key store).
    foreign_info: Option<Vec<u8>>,
}

pub struct BundleTarget {
    fixtures: Vec<Fixture>,
    keys: Keys,
}

fn fixture(label: &'static str, profile: &str, seed: u64, mode: Mode) -> Result<Fixture, String> {
    let e = |e: HostError| format!("{label}: {e}");
    let mut host = HostConfig::new(Profile::named(profile).map_err(|e| e.to_string())?)
        .seed(seed)
        .encryption(mode)
        .none_material(shared_none_material(seed))
        .boot_time(Duration::ZERO)
        .hostname(format!("fuzz-{}", label.to_lowercase()))
        .build()
        .map_err(e)?;
    host.write_file("/etc/hosts", "127.0.0.1 localhost\n10.9.8.7 fuzz-fixture\n")
        .map_err(e)?;
    host.write_file("/etc/motd", "esxi-fuzz fixture\n")
        .map_err(e)?;
    host.enter_maintenance_mode().map_err(e)?;
    let bundle = host.backup_bundle().map_err(e)?.bytes.to_vec();
    let l = Limits::default();
    let outer = read_tgz(&bundle, &l, "bundle").map_err(|e| e.to_string())?;
    let get = |ms: &[Member], n: &str| ms.iter().find(|m| m.path == n).map(|m| m.data.clone());
    let manifest = get(&outer, "Manifest.txt").ok_or("no manifest")?;
    let state_tgz = get(&outer, "state.tgz").ok_or("no state.tgz")?;
    let state = read_tgz(&state_tgz, &l, "state.tgz").map_err(|e| e.to_string())?;
    let decoded = state::decode(
        &state_tgz,
        &l,
        KeyContext {
            tpm: host.tpm(),
            recovery: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let local_tgz = match get(&state, "local.tgz") {
        Some(l) => l,
        None => {
            let ve = get(&state, "local.tgz.ve").ok_or("no local.tgz.ve")?;
            envelope::open(&ve, &decoded.key.ok_or("no key")?, CONFIG_AAD)
                .map_err(|e| e.to_string())?
        }
    };
    let local = read_tgz(&local_tgz, &l, "local.tgz").map_err(|e| e.to_string())?;
    let seal = match (&decoded.key, &decoded.keystore) {
        (Some(k), Some(ks)) => Some((*k, ks.key_id)),
        _ => None,
    };
    Ok(Fixture {
        label,
        host,
        bundle,
        manifest,
        state_tgz,
        state,
        local,
        seal,
        foreign_info: None,
    })
}

impl BundleTarget {
    pub fn new() -> Result<BundleTarget, String> {
        let mut fixtures = vec![
            fixture("6.7U3", "6.7U3", 201, Mode::None)?,
            fixture("7.0U1", "7.0U1", 202, Mode::None)?,
            fixture("8.0U3-NONE", "8.0U3", 203, Mode::None)?,
            fixture("8.0U3-TPM", "8.0U3", 204, Mode::Tpm)?,
        ];
        // A key store of another host of the same mode: its key does not open the envelope.
        for (i, mode) in [(2usize, Mode::None), (3, Mode::Tpm)] {
            let other = fixture("foreign", "8.0U3", 300 + i as u64, mode)?;
            fixtures[i].foreign_info = other
                .state
                .iter()
                .find(|m| m.path == "encryption.info")
                .map(|m| m.data.clone());
        }
        let recovery: Vec<String> = fixtures
            .iter()
            .filter_map(|f| f.host.recovery_key().map(|k| k.key_text()))
            .collect();
        let keys = Keys::recovery(&recovery)?;
        Ok(BundleTarget { fixtures, keys })
    }

    /// The fixture a bundle would be restored onto: the one of its release level (and, for
    /// 8.0U3, of its key store's mode); for bytes that do not parse, one chosen by their hash.
    fn target_for(&self, input: &[u8], parsed: &Result<ConfigBundle, BundleError>) -> usize {
        if let Ok(b) = parsed {
            let sealed_mode = match state::peek(&b.state_tgz, &Limits::default()) {
                Ok(state::Shape::Sealed { keystore }) => Some(keystore.mode()),
                _ => None,
            };
            let found = self.fixtures.iter().position(|f| {
                f.host.profile().release_level == b.manifest.release_level
                    && (sealed_mode.is_none() || f.host.encryption().map(|e| e.mode) == sealed_mode)
            });
            if let Some(i) = found {
                return i;
            }
        }
        (fnv(input) % self.fixtures.len() as u64) as usize
    }
}

fn fnv(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in data {
        h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// What a refused restore must leave as it was.
#[derive(Debug, PartialEq)]
struct Print {
    etc: EtcFs,
    bank: Option<BootBank>,
    power: PowerState,
    maintenance: bool,
    boots: u32,
    halted: Option<String>,
}

fn print(h: &Host) -> Print {
    Print {
        etc: h.etc().clone(),
        bank: h.bootbank().cloned(),
        power: h.power_state(),
        maintenance: h.in_maintenance_mode(),
        boots: h.boots(),
        halted: h.boot_halted().map(str::to_string),
    }
}

/// `Gzip`, `TooLarge`, ... with the message's shape: a class.
fn error_class(e: &BundleError) -> String {
    let debug = format!("{e:?}");
    let variant: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let detail = match e {
        BundleError::Gzip(m)
        | BundleError::Tar(m)
        | BundleError::Sealed(m)
        | BundleError::Manifest(m) => shape(m),
        BundleError::TooLarge { what, .. } => what.to_string(),
        BundleError::UnsupportedMember { kind, .. } => kind.clone(),
        BundleError::MissingMember(m) => m.to_string(),
        _ => String::new(),
    };
    if detail.is_empty() {
        variant
    } else {
        format!("{variant}({detail})")
    }
}

/// A message with numbers and quoted parts blanked, first 50 characters.
fn shape(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut digit = false;
    for c in msg.chars() {
        if c == '"' || c == '\'' {
            quoted = !quoted;
            continue;
        }
        if quoted {
            continue;
        }
        if c.is_ascii_digit() {
            if !digit {
                out.push('N');
            }
            digit = true;
            continue;
        }
        digit = false;
        out.push(c);
    }
    out.chars().take(50).collect()
}

impl Target for BundleTarget {
    fn name(&self) -> &'static str {
        "bundle"
    }

    fn generate(&self, rng: &mut Rng) -> Vec<u8> {
        generate(self, rng)
    }

    fn heap_bound(&self, input: &[u8]) -> usize {
        // Under the default limits (64 MiB unpacked) the nested readers may together hold a few
        // hundred MiB for a bundle built to hit every cap at once; a runaway is far beyond.
        (640 << 20) + 8 * input.len()
    }

    fn run(&mut self, input: &[u8]) -> Result<String, String> {
        let default = Limits::default();
        let (tight, tight_peak) = meter::measured(|| ConfigBundle::parse(input, &TIGHT));
        let bound = tight_bound(input.len());
        if tight_peak > bound {
            return Err(format!(
                "under the tight limits the reader held {tight_peak} bytes (bound {bound})"
            ));
        }
        let parsed = ConfigBundle::parse(input, &default);
        if let (Ok(_), Err(e)) = (&tight, &parsed) {
            return Err(format!(
                "accepted under the tight limits, refused under the default ones: {e}"
            ));
        }
        // The harness's reader takes whatever the simulator's takes.
        let inspected = esxi_harness::inspect::inspect_with(input, &self.keys);
        if let (Ok(_), Err(e)) = (&parsed, &inspected) {
            return Err(format!("the bundle parses but inspect refuses it: {e}"));
        }
        let i = self.target_for(input, &parsed);
        let f = &self.fixtures[i];
        let force = fnv(input) & 1 == 0 || parsed.is_err();
        let mut host = f.host.clone();
        let before = print(&host);
        host.upload_bundle(input.to_vec())
            .map_err(|e| format!("upload refused: {e}"))?;
        let restored = host.restore(force);
        let parse_class = match &parsed {
            Ok(_) => "ok".to_string(),
            Err(e) => error_class(e),
        };
        let restore_class = match restored {
            Err(e) => {
                if print(&host) != before {
                    return Err(format!("a refused restore ({e}) changed the host"));
                }
                match (&parsed, &e) {
                    (Err(pe), HostError::InvalidBundle(re)) if pe == re => "refused".to_string(),
                    (Err(pe), _) => {
                        return Err(format!("the reader said {pe:?} but the restore said {e:?}"))
                    }
                    (Ok(_), HostError::MismatchedBundle { .. }) => "mismatched".into(),
                    (Ok(_), HostError::InvalidBundle(BundleError::Sealed(m))) => {
                        format!("refused sealed({})", shape(m))
                    }
                    (Ok(_), other) => {
                        return Err(format!("a bundle that parses was refused as {other:?}"))
                    }
                }
            }
            Ok(()) => {
                host.advance(Duration::from_secs(1));
                match (host.power_state(), host.boot_halted()) {
                    (PowerState::Off, Some(why)) if !why.is_empty() => "halted".to_string(),
                    (PowerState::On, None) => {
                        // What the bundle holds, read as the source host reads it.
                        let decoded = parsed.as_ref().ok().map(|b| {
                            b.decode(
                                &default,
                                KeyContext {
                                    tpm: f.host.tpm(),
                                    recovery: None,
                                },
                            )
                        });
                        if let Some(Ok(d)) = &decoded {
                            // From 7.0.3 the boot writes accounts from the ConfigStore into
                            // passwd and shadow, and from 8.0 the host name into esx.conf
                            // (placement.rs): those files are the store's, not the archive's.
                            let holds = &host.profile().store_holds;
                            // And a sealed state's RAM copy of the key store is the one
                            // next to local.tgz.ve that opened it (encryption.rs).
                            let from_store = |p: &str| {
                                d.store.is_some()
                                    && (holds.accounts && (p == "etc/passwd" || p == "etc/shadow")
                                        || holds.hostname && p == "etc/vmware/esx.conf")
                                    || d.keystore.is_some() && p == state::KEYSTORE_COPY
                            };
                            for (path, node) in &d.files {
                                if !path.starts_with("etc/") || from_store(path) {
                                    continue;
                                }
                                let got = host.read_file(path).map_err(|e| e.to_string())?;
                                if !booted_as_saved(path, &node.data, got.as_deref(), &d.files) {
                                    return Err(format!(
                                        "the host booted from the bundle but /{path} is not the bundle's: {}",
                                        first_difference(&node.data, got.as_deref().unwrap_or(b"(none)"))
                                    ));
                                }
                            }
                        }
                        let again = host
                            .backup_bundle()
                            .map_err(|e| format!("the restored host cannot back up: {e}"))?;
                        ConfigBundle::parse(&again.bytes, &default).map_err(|e| {
                            format!("the restored host wrote a bundle that does not read: {e}")
                        })?;
                        // The boot bank as files (vmtar of the image, gzip): costly and the
                        // same for most bundles, so one input in sixteen.
                        if fnv(input) % 16 == 1 {
                            let bank = host
                                .bootbank()
                                .ok_or("the restored host has no boot bank")?;
                            bank.directory(host.etc().image())
                                .map_err(|e| format!("the boot bank does not lay out: {e}"))?;
                        }
                        "booted".to_string()
                    }
                    (p, h) => {
                        return Err(format!("after a restore the host is {p:?}, halted {h:?}"))
                    }
                }
            }
        };
        Ok(format!("{parse_class} / {} {restore_class}", f.label))
    }
}

/// Whether a file the host booted with is the one the bundle saved. The boot's first-boot
/// fixups (power.rs) are expected: an empty `rui.key`/`rui.crt` pair is made anew, and an
/// esx.conf without a `/system/uuid` gets one (every other line stays).
fn booted_as_saved(
    path: &str,
    saved: &[u8],
    booted: Option<&[u8]>,
    files: &std::collections::BTreeMap<String, esxi_sim::host::Node>,
) -> bool {
    let Some(booted) = booted else {
        return false;
    };
    if booted == saved {
        return true;
    }
    match path {
        // Both are made anew when either is missing or empty.
        "etc/vmware/ssl/rui.key" | "etc/vmware/ssl/rui.crt" => {
            ["rui.key", "rui.crt"].iter().any(|f| {
                files
                    .get(&format!("etc/vmware/ssl/{f}"))
                    .is_none_or(|n| n.data.is_empty())
            })
        }
        "etc/vmware/esx.conf" => {
            let have = String::from_utf8_lossy(booted);
            String::from_utf8_lossy(saved)
                .lines()
                .filter(|l| !l.starts_with("/system/uuid"))
                .all(|l| have.lines().any(|h| h == l))
        }
        _ => false,
    }
}

/// The first line where two texts differ, both sides, shortened.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    let mut la = a.lines();
    let mut lb = b.lines();
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => {
                let cut =
                    |s: Option<&str>| s.unwrap_or("(end)").chars().take(120).collect::<String>();
                return format!("saved {:?}, booted {:?}", cut(x), cut(y));
            }
        }
    }
}

// ---- writing archives, any way ---------------------------------------------------------------

/// One tar member as it will be written, lies included.
#[derive(Clone, Debug)]
struct M {
    name: Vec<u8>,
    data: Vec<u8>,
    kind: u8,
    mode: u32,
    mtime: u64,
    link: Vec<u8>,
    /// The size field's bytes instead of the data's length in octal.
    size_field: Option<Vec<u8>>,
    bad_checksum: bool,
    /// ustar (`ustar\0` `00`) instead of GNU (`ustar  \0`) magic.
    ustar: bool,
}

impl M {
    fn file(name: &str, data: Vec<u8>, mode: u32, mtime: u64) -> M {
        M {
            name: name.as_bytes().to_vec(),
            data,
            kind: b'0',
            mode,
            mtime,
            link: Vec::new(),
            size_field: None,
            bad_checksum: false,
            ustar: false,
        }
    }
    fn from(m: &Member) -> M {
        M::file(&m.path, m.data.clone(), m.mode, m.mtime)
    }
}

fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0width$o}\0", width = field.len() - 1);
    let b = s.as_bytes();
    field.copy_from_slice(&b[b.len() - field.len()..]);
}

fn header(m: &M, name: &[u8], kind: u8, size: usize) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(m.mode & 0o7777777));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    match &m.size_field {
        Some(f) => {
            let n = f.len().min(12);
            h[124..136].fill(0);
            h[124..124 + n].copy_from_slice(&f[..n]);
        }
        None => octal(&mut h[124..136], size as u64),
    }
    octal(&mut h[136..148], m.mtime.min(0o77777777777));
    h[156] = kind;
    let l = m.link.len().min(100);
    h[157..157 + l].copy_from_slice(&m.link[..l]);
    if m.ustar {
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
    } else {
        h[257..265].copy_from_slice(b"ustar  \0");
    }
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    h[148..156].fill(b' ');
    let mut sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    if m.bad_checksum {
        sum = sum.wrapping_add(1);
    }
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn pad(out: &mut Vec<u8>) {
    let r = out.len() % 512;
    if r != 0 {
        out.resize(out.len() + 512 - r, 0);
    }
}

/// How a tar ends.
#[derive(Clone, Copy)]
enum End {
    TwoZeroBlocks,
    None,
    OneZeroBlock,
    Garbage,
}

fn tar(members: &[M], end: End) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        if m.name.len() > 100 {
            // A GNU long name first, as GNU tar writes one.
            let mut long = m.name.clone();
            long.push(0);
            let lm = M::file("././@LongLink", Vec::new(), 0o644, 0);
            out.extend_from_slice(&header(&lm, b"././@LongLink", b'L', long.len()));
            out.extend_from_slice(&long);
            pad(&mut out);
        }
        out.extend_from_slice(&header(m, &m.name, m.kind, m.data.len()));
        out.extend_from_slice(&m.data);
        pad(&mut out);
    }
    match end {
        End::TwoZeroBlocks => out.resize(out.len() + 1024, 0),
        End::None => {}
        End::OneZeroBlock => out.resize(out.len() + 512, 0),
        End::Garbage => {
            out.resize(out.len() + 1024, 0);
            out.extend_from_slice(b"trailing garbage after the end of the archive");
        }
    }
    out
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = flate2::read::MultiGzDecoder::new(data)
        .take(8 << 20)
        .read_to_end(&mut out);
    out
}

// ---- generation --------------------------------------------------------------------------------

const NAMES: &[&str] = &[
    "Manifest.txt",
    "state.tgz",
    "local.tgz",
    "local.tgz.ve",
    "encryption.info",
    "etc/hosts",
    "etc/shadow",
    "etc/passwd",
    "etc/vmware/esx.conf",
    "etc/motd",
    "var/lib/vmware/configstore/backup/current-store-1",
    "./etc/hosts",
    "etc/",
    "etc/./hosts",
    "etc//hosts",
    "../etc/passwd",
    "etc/../../x",
    "/etc/passwd",
    "/",
    ".",
    "./",
    "..",
    "",
    "etc/ho\u{0}sts",
    "etc\\..\\x",
    "etc/\u{1}x",
    "ümlaut",
    "tmp/x",
    "bootbank/state.tgz",
];

const KINDS: &[u8] = b"0\x001234567SxgLKVMZ";

fn hostile_name(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => "a/".repeat(between(rng, 40, 600)).into_bytes(),
        1 => {
            let mut v = vec![0u8; between(rng, 1, 120)];
            rng.fill(&mut v);
            v
        }
        _ => pick(rng, NAMES).as_bytes().to_vec(),
    }
}

/// Edits one archive's member list: removes, repeats, reorders, adds, renames, retypes, lies
/// about sizes, corrupts checksums, changes contents.
fn edit_members(rng: &mut Rng, ms: &mut Vec<M>, dict: &[&[u8]]) {
    for _ in 0..between(rng, 1, 3) {
        let n = ms.len();
        match rng.below(12) {
            0 if n > 0 => {
                ms.remove(rng.below(n as u64) as usize);
            }
            1 if n > 0 => {
                let m = ms[rng.below(n as u64) as usize].clone();
                ms.push(m);
            }
            2 if n > 1 => {
                ms.swap(0, n - 1);
            }
            3 => {
                let name = hostile_name(rng);
                let mut data = vec![0u8; skewed(rng, 4096)];
                rng.fill(&mut data);
                ms.insert(
                    rng.below(n as u64 + 1) as usize,
                    M {
                        name,
                        ..M::file("", data, 0o644, 1_700_000_000)
                    },
                );
            }
            4 if n > 0 => {
                let i = rng.below(n as u64) as usize;
                ms[i].name = hostile_name(rng);
            }
            5 if n > 0 => {
                let i = rng.below(n as u64) as usize;
                ms[i].kind = *pick(rng, KINDS);
                if matches!(ms[i].kind, b'1' | b'2') {
                    ms[i].link = hostile_name(rng);
                }
            }
            6 if n > 0 => {
                let i = rng.below(n as u64) as usize;
                let lie: Vec<u8> = match rng.below(6) {
                    0 => b"77777777777".to_vec(),
                    1 => b"00000000000".to_vec(),
                    2 => b"zzzzzzzzzzz".to_vec(),
                    3 => vec![0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                    4 => format!("{:011o}", ms[i].data.len() + between(rng, 1, 5000)).into_bytes(),
                    _ => format!(
                        "{:011o}",
                        ms[i].data.len().saturating_sub(between(rng, 1, 600))
                    )
                    .into_bytes(),
                };
                ms[i].size_field = Some(lie);
            }
            7 if n > 0 => {
                let i = rng.below(n as u64) as usize;
                ms[i].bad_checksum = true;
            }
            8 if n > 0 => {
                let i = rng.below(n as u64) as usize;
                ms[i].mode = *pick(rng, &[0, 0o7777, 0o4755, 0o777_7777, 0o1000]);
                ms[i].mtime = *pick(rng, &[0, u32::MAX as u64, 0o77777777777, 1]);
                ms[i].ustar = chance(rng, 1, 2);
            }
            9 if n > 0 => {
                let i = rng.below(n as u64) as usize;
                havoc(rng, &mut ms[i].data, dict, 4, 1 << 20);
            }
            10 => {
                // Many small members (a cap on their number).
                let k = skewed(rng, 5000);
                for j in 0..k {
                    ms.push(M::file(&format!("etc/f{j}"), b"x".to_vec(), 0o644, 0));
                }
            }
            _ if n > 0 => {
                // A big member (a cap on the unpacked total): zeros compress to nothing.
                let i = rng.below(n as u64) as usize;
                let size = if chance(rng, 1, 100) {
                    between(rng, 60 << 20, 70 << 20)
                } else {
                    skewed(rng, 1 << 20)
                };
                ms[i].data.resize(size, 0);
            }
            _ => {}
        }
    }
}

const DICT: &[&[u8]] = &[
    b"ustar\0",
    b"ustar  \0",
    b"\x1f\x8b\x08",
    b"\x1f\x8b\x08\x1c",
    b"../",
    b"/",
    b"RELEASELEVEL=",
    b"UUID=",
    b"\n",
    b"\r\n",
    b"=",
    b"mode = \"TPM\"",
    b"mode = \"NONE\"",
    b"ConfigEncData",
    b"SQLite format 3\0",
    b"\0\0\0\0\0\0\0\0",
    b"\xff\xff\xff\xff\xff\xff\xff\xff",
];

/// Gzip-level tricks on a layer's compressed bytes.
fn gzip_trick(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    match rng.below(8) {
        // Two members back to back (MultiGzDecoder reads both).
        0 => {
            let mut v = data.to_vec();
            v.extend_from_slice(&gz(b"second member"));
            v
        }
        // Trailing garbage after the member.
        1 => {
            let mut v = data.to_vec();
            v.extend_from_slice(b"\0\0garbage");
            v
        }
        // Header flags: FEXTRA/FNAME/FCOMMENT/FHCRC set without (or with lying) fields.
        2 if data.len() > 10 => {
            let mut v = data.to_vec();
            v[3] = *pick(rng, &[0x04, 0x08, 0x10, 0x02, 0x1e, 0xe0, 0xff]);
            if v[3] & 0x04 != 0 && chance(rng, 1, 2) {
                let xlen = *pick(rng, &[0u16, 4, 0xffff]);
                let mut extra = xlen.to_le_bytes().to_vec();
                extra.extend(std::iter::repeat_n(0xAA, (xlen as usize).min(64)));
                v.splice(10..10, extra);
            }
            v
        }
        // A wrong CRC or ISIZE.
        3 if data.len() >= 8 => {
            let mut v = data.to_vec();
            let n = v.len();
            let at = if chance(rng, 1, 2) { n - 8 } else { n - 4 };
            v[at] ^= 0x5a;
            v
        }
        // Not gzip at all: a bare tar, or a stored zlib stream.
        4 => gunzip(data),
        // A bomb of zeros.
        5 => {
            let size = if chance(rng, 1, 40) {
                between(rng, 64 << 20, 72 << 20)
            } else {
                skewed(rng, 4 << 20)
            };
            gz(&vec![0u8; size])
        }
        // Cut short.
        _ => {
            let n = rng.below(data.len() as u64 + 1) as usize;
            data[..n].to_vec()
        }
    }
}

/// A changed Manifest.txt.
fn manifest(rng: &mut Rng, f: &Fixture, levels: &[String]) -> Vec<u8> {
    let text = String::from_utf8_lossy(&f.manifest).into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..between(rng, 1, 3) {
        let n = lines.len();
        match rng.below(9) {
            0 if n > 0 => {
                lines.remove(rng.below(n as u64) as usize);
            }
            1 if n > 0 => {
                let l = lines[rng.below(n as u64) as usize].clone();
                lines.push(l);
            }
            2 => {
                let i = lines.iter().position(|l| l.starts_with("RELEASELEVEL="));
                if let Some(i) = i {
                    lines[i] = format!("RELEASELEVEL={}", pick(rng, levels));
                }
            }
            3 => {
                let i = lines.iter().position(|l| l.starts_with("UUID="));
                if let Some(i) = i {
                    lines[i] = format!(
                        "UUID={}",
                        pick(
                            rng,
                            &[
                                "",
                                "00000000-0000-0000-0000-000000000000",
                                "x",
                                "4c4c4544-0047-3210-804e-c8c04f435032"
                            ]
                        )
                    );
                }
            }
            4 => lines.push(format!(
                "{}={}",
                pick(rng, &["KERNELOPTS", "USEROPTS", "X", "", "RELEASELEVEL"]),
                "A".repeat(skewed(rng, 70_000))
            )),
            5 => lines.push(
                pick(
                    rng,
                    &["garbage", "#comment", "=", "==", "\u{feff}UUID=x", "\0"],
                )
                .to_string(),
            ),
            6 if n > 0 => {
                let i = rng.below(n as u64) as usize;
                lines[i].push('\r');
            }
            7 => lines.insert(0, "\u{feff}".into()),
            _ => {}
        }
    }
    let mut out = lines.join("\n").into_bytes();
    out.push(b'\n');
    if chance(rng, 1, 10) {
        havoc(rng, &mut out, DICT, 4, 1 << 17);
    }
    out
}

fn generate(t: &BundleTarget, rng: &mut Rng) -> Vec<u8> {
    let f = pick(rng, &t.fixtures);
    let levels: Vec<String> = t
        .fixtures
        .iter()
        .map(|f| f.host.profile().release_level.clone())
        .chain(["VMware ESXi 6.7.0 GA".to_string(), String::new()])
        .collect();
    let mut manifest_bytes = f.manifest.clone();
    let mut state_members: Vec<M> = f.state.iter().map(M::from).collect();
    let mut local_members: Vec<M> = f.local.iter().map(M::from).collect();
    let mut outer_edit: Option<u64> = None;
    let mut state_tgz_override: Option<Vec<u8>> = None;
    let mut local_tgz_override: Option<Vec<u8>> = None;
    let end = |rng: &mut Rng| {
        if chance(rng, 1, 10) {
            *pick(rng, &[End::None, End::OneZeroBlock, End::Garbage])
        } else {
            End::TwoZeroBlocks
        }
    };
    match rng.below(20) {
        // Byte havoc on the whole bundle.
        0..=2 => {
            let mut b = f.bundle.clone();
            havoc(rng, &mut b, DICT, 8, 4 << 20);
            return b;
        }
        // Havoc on the bundle's tar (headers, padding), gzipped again.
        3 | 4 => {
            let mut t = gunzip(&f.bundle);
            havoc(rng, &mut t, DICT, 6, 4 << 20);
            return gz(&t);
        }
        // The bundle's member list.
        5..=7 => {
            outer_edit = Some(rng.next_u64());
        }
        // Manifest.txt.
        8 | 9 => manifest_bytes = manifest(rng, f, &levels),
        // state.tgz's member list, or its bytes.
        10..=12 => {
            if f.seal.is_some() && chance(rng, 1, 2) {
                // The sealed pair: the envelope's bytes (lengths, header fields, tag), rarely
                // the key store (a changed one costs a 100,000-round key derivation).
                let which = if chance(rng, 1, 12) {
                    "encryption.info"
                } else {
                    "local.tgz.ve"
                };
                if let Some(m) = state_members
                    .iter_mut()
                    .find(|m| m.name == which.as_bytes())
                {
                    if which == "encryption.info" && chance(rng, 1, 3) {
                        if let Some(foreign) = &f.foreign_info {
                            m.data = foreign.clone();
                        }
                    } else if which == "local.tgz.ve" && chance(rng, 1, 2) && m.data.len() >= 4096 {
                        let at = rng.below(4096 - 8) as usize;
                        let v = *pick(rng, &[0u64, 1, u64::MAX, 4096, 1 << 40, u32::MAX as u64]);
                        m.data[at..at + 8].copy_from_slice(&v.to_le_bytes());
                    } else {
                        havoc(rng, &mut m.data, DICT, 3, 1 << 20);
                    }
                }
            } else if chance(rng, 1, 3) {
                let st = tar(&state_members, End::TwoZeroBlocks);
                let mut t = st;
                havoc(rng, &mut t, DICT, 4, 4 << 20);
                state_tgz_override = Some(gz(&t));
            } else {
                edit_members(rng, &mut state_members, DICT);
            }
        }
        // local.tgz's members: files, names, the ConfigStore database.
        13..=17 => {
            let store = local_members
                .iter_mut()
                .find(|m| m.name.ends_with(b"current-store-1"));
            match store {
                Some(s) if chance(rng, 1, 3) => havoc(rng, &mut s.data, DICT, 6, 8 << 20),
                _ => edit_members(rng, &mut local_members, DICT),
            }
        }
        // Gzip tricks at one layer.
        _ => match rng.below(3) {
            0 => return gzip_trick(rng, &f.bundle),
            1 => {
                state_tgz_override = Some(gzip_trick(
                    rng,
                    &gz(&tar(&state_members, End::TwoZeroBlocks)),
                ))
            }
            _ => {
                local_tgz_override = Some(gzip_trick(
                    rng,
                    &gz(&tar(&local_members, End::TwoZeroBlocks)),
                ))
            }
        },
    }
    // Pack the layers again, inside out; an untouched layer keeps its real bytes.
    let local_changed = local_tgz_override.is_some()
        || local_members.len() != f.local.len()
        || local_members.iter().zip(&f.local).any(|(a, b)| {
            a.name != b.path.as_bytes()
                || a.data != b.data
                || a.kind != b'0'
                || a.size_field.is_some()
                || a.bad_checksum
                || a.mode != b.mode
        });
    if local_changed {
        let local_tgz = local_tgz_override.unwrap_or_else(|| gz(&tar(&local_members, end(rng))));
        for m in state_members.iter_mut() {
            if m.name == b"local.tgz" {
                m.data = local_tgz.clone();
            }
            if m.name == b"local.tgz.ve" {
                if let Some((key, key_id)) = &f.seal {
                    // Sealed again with the right key: the hostile archive gets past the envelope.
                    let filler = vec![0u8; envelope::filler_len(local_tgz.len())];
                    m.data = envelope::seal(
                        &local_tgz,
                        key,
                        key_id,
                        state::iv_for(7),
                        &filler,
                        CONFIG_AAD,
                    );
                }
            }
        }
    }
    let state_changed = local_changed
        || state_members.len() != f.state.len()
        || state_members.iter().zip(&f.state).any(|(a, b)| {
            a.name != b.path.as_bytes()
                || a.data != b.data
                || a.kind != b'0'
                || a.size_field.is_some()
                || a.bad_checksum
                || a.mode != b.mode
        });
    let state_tgz = match state_tgz_override {
        Some(s) => s,
        None if state_changed => gz(&tar(&state_members, end(rng))),
        None => f.state_tgz.clone(),
    };
    let mut outer = vec![
        M::file("Manifest.txt", manifest_bytes, 0o644, 1_700_000_000),
        M::file("state.tgz", state_tgz, 0o644, 1_700_000_000),
    ];
    if let Some(seed) = outer_edit {
        edit_members(&mut Rng::new(seed), &mut outer, DICT);
    }
    let mut bundle = gz(&tar(&outer, end(rng)));
    if chance(rng, 1, 40) {
        havoc(rng, &mut bundle, DICT, 2, 4 << 20);
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_writer_writes_what_the_reader_reads() {
        let ms = vec![
            M::file("etc/hosts", b"127.0.0.1 localhost\n".to_vec(), 0o644, 5),
            M::file(
                &format!("etc/{}", "x".repeat(150)),
                b"long".to_vec(),
                0o600,
                6,
            ),
        ];
        let got = read_tgz(&gz(&tar(&ms, End::TwoZeroBlocks)), &Limits::default(), "t").unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].path, "etc/hosts");
        assert_eq!(got[0].mode, 0o644);
        assert_eq!(got[1].path.len(), 154);
        assert_eq!(got[1].data, b"long");
    }

    #[test]
    fn shapes_blank_numbers_and_quotes() {
        assert_eq!(shape("state.tgz: \"x\" at 512"), "state.tgz:  at N");
        assert_eq!(
            error_class(&BundleError::TooManyMembers(64)),
            "TooManyMembers"
        );
    }
}
