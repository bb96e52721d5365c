//! Hostile input against the bundle reader (`ConfigBundle::parse`, `read_state_tgz`, `read_tgz`)
//! and, end to end, against `Host::restore`.
//!
//! - Fuzz-style properties: real bundles from `backup_bundle()` mutated (byte flips, truncation,
//!   inserted, deleted, overwritten and duplicated ranges) in the outer gzip, in Manifest.txt, and
//!   — by rebuilding the layers around them — in state.tgz and local.tgz. The reader never panics,
//!   stays within a time and heap budget, and each layer's verdict is the whole bundle's verdict.
//! - Hand-crafted hostile archives, each refused with its specific [`BundleError`], at every one
//!   of the three archive levels (bundle, state.tgz, local.tgz). The tar headers are written raw
//!   (the `tar` crate's safe builders refuse `..`).
//! - Through the host: a restore of any of those bytes either succeeds because the bundle really
//!   is valid for the host, or fails with `InvalidBundle` / `MismatchedBundle` and changes nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use esxi_sim::bundle::{
    read_state_tgz, read_tgz, write_state_tgz, write_tgz, BundleError, ConfigBundle, Limits,
    Manifest,
};
use esxi_sim::host::etc::normalize;
use esxi_sim::{Host, HostConfig, HostError, Profile};
use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use proptest::sample::Index;
use tar::{EntryType, Header};

// ---- a per-thread heap meter --------------------------------------------------------------

/// Counts the live heap bytes of the current thread and their peak, so a property can bound the
/// memory one parse takes (the parse is single-threaded; other test threads do not disturb it).
struct Meter;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the meter only counts.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            note(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            note(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        note(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new_size) };
        if !q.is_null() {
            note(new_size as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// Runs `f`, returning its result, the peak extra heap it held (bytes) and the time it took.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let t = Instant::now();
    let r = f();
    let took = t.elapsed();
    let peak = PEAK.with(Cell::get) - base;
    (r, peak.max(0) as usize, took)
}

/// Generous for a debug build on a loaded machine; a hang or a quadratic blow-up is far above.
const TIME_BUDGET: Duration = Duration::from_secs(5);
const MIB: u64 = 1 << 20;

// ---- fixture: real hosts and a real bundle ------------------------------------------------

const PROFILE: &str = "6.7U3";

struct Fixture {
    /// The host the bundle came from, running, in maintenance mode.
    source: Host,
    /// Same release level, another SMBIOS UUID: restore needs force.
    other_uuid: Host,
    /// Another release level (same seed, so the same UUID): restore refused even with force.
    other_level: Host,
    bundle: Vec<u8>,
    manifest: Vec<u8>,
    state: Vec<u8>,
    local: Vec<u8>,
}

fn running_host(profile: &str, seed: u64) -> Host {
    let mut h = HostConfig::new(Profile::named(profile).unwrap())
        .seed(seed)
        .boot_time(Duration::from_secs(90))
        .build()
        .unwrap();
    h.enter_maintenance_mode().unwrap();
    h
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut source = running_host(PROFILE, 1);
        source
            .write_file("/etc/hosts", "127.0.0.1 localhost\n10.9.8.7 fixture\n")
            .unwrap();
        let bundle = source.backup_bundle().unwrap().bytes.to_vec();
        let l = Limits::default();
        let outer = read_tgz(&bundle, &l, "configBundle.tgz").unwrap();
        let names: Vec<&str> = outer.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(names, ["Manifest.txt", "state.tgz"]);
        let state = outer[1].data.clone();
        let inner = read_tgz(&state, &l, "state.tgz").unwrap();
        assert_eq!(inner.len(), 1);
        assert_eq!(inner[0].path, "local.tgz");
        let other_uuid = running_host(PROFILE, 2);
        let other_level = running_host("6.7GA", 1);
        assert_ne!(other_uuid.smbios_uuid(), source.smbios_uuid());
        assert_ne!(
            other_level.profile().release_level,
            source.profile().release_level
        );
        Fixture {
            source,
            other_uuid,
            other_level,
            manifest: outer[0].data.clone(),
            state,
            local: inner[0].data.clone(),
            bundle,
        }
    })
}

// ---- raw tar writing ----------------------------------------------------------------------

/// One tar member written exactly as given: no path checks, no normalisation.
#[derive(Clone, Debug)]
struct Raw {
    name: Vec<u8>,
    kind: EntryType,
    data: Vec<u8>,
    link: Vec<u8>,
}

impl Raw {
    fn file(name: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> Raw {
        Raw {
            name: name.as_ref().to_vec(),
            kind: EntryType::Regular,
            data: data.as_ref().to_vec(),
            link: Vec::new(),
        }
    }
    fn of(kind: EntryType, name: impl AsRef<[u8]>) -> Raw {
        Raw {
            kind,
            ..Raw::file(name, b"")
        }
    }
    fn link(kind: EntryType, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Raw {
        Raw {
            link: target.as_ref().to_vec(),
            ..Raw::of(kind, name)
        }
    }
    /// A PAX extended header (`x`) carrying `key=value` for the next member.
    fn pax(key: &str, value: &[u8]) -> Raw {
        let body_len = key.len() + value.len() + 3; // ' ' '=' '\n'
        let mut len = body_len + 1;
        while len != body_len + len.to_string().len() {
            len = body_len + len.to_string().len();
        }
        let mut rec = format!("{len} {key}=").into_bytes();
        rec.extend_from_slice(value);
        rec.push(b'\n');
        Raw {
            data: rec,
            ..Raw::of(EntryType::XHeader, "PaxHeaders.0/x")
        }
    }
    /// A GNU long-name entry (`L`) naming the next member.
    fn gnu_long_name(name: &[u8]) -> Raw {
        let mut data = name.to_vec();
        data.push(0);
        Raw {
            data,
            ..Raw::of(EntryType::GNULongName, "././@LongLink")
        }
    }
}

fn raw_header(r: &Raw) -> Header {
    let mut h = Header::new_gnu();
    {
        let old = h.as_old_mut();
        assert!(r.name.len() <= old.name.len() && r.link.len() <= old.linkname.len());
        old.name[..r.name.len()].copy_from_slice(&r.name);
        old.linkname[..r.link.len()].copy_from_slice(&r.link);
    }
    h.set_size(r.data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(r.kind);
    if matches!(r.kind, EntryType::Char | EntryType::Block) {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    }
    h.set_cksum();
    h
}

/// An uncompressed tar of exactly these members, with the two-block end marker.
fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for r in entries {
        b.append(&raw_header(r), &r.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn raw_tgz(entries: &[Raw]) -> Vec<u8> {
    gz(&raw_tar(entries))
}

/// The three nested archives of a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Bundle,
    State,
    Local,
}
const LEVELS: [Level; 3] = [Level::Bundle, Level::State, Level::Local];

fn good_manifest() -> Vec<u8> {
    let src = &fixture().source;
    format!(
        "RELEASELEVEL={}\nUUID={}\nKERNELOPTS=\nUSEROPTS=\n",
        src.profile().release_level,
        src.smbios_uuid()
    )
    .into_bytes()
}

const HOSTS: &[u8] = b"127.0.0.1 localhost\n10.0.0.1 crafted\n";

/// A bundle made of raw members: etc/hosts in local.tgz, local.tgz in state.tgz, Manifest.txt
/// and state.tgz in the bundle, valid for the fixture's source host; `edit` changes the member
/// list of one level before the levels around it are packed.
fn crafted(level: Level, edit: impl FnOnce(&mut Vec<Raw>)) -> Vec<u8> {
    let mut edit = Some(edit);
    let mut at = |l: Level, v: &mut Vec<Raw>| {
        if l == level {
            (edit.take().unwrap())(v)
        }
    };
    let mut local = vec![
        Raw::file("etc/hosts", HOSTS),
        Raw::file("etc/motd", "crafted\n"),
    ];
    at(Level::Local, &mut local);
    let mut state = vec![Raw::file("local.tgz", raw_tgz(&local))];
    at(Level::State, &mut state);
    let mut outer = vec![
        Raw::file("Manifest.txt", good_manifest()),
        Raw::file("state.tgz", raw_tgz(&state)),
    ];
    at(Level::Bundle, &mut outer);
    raw_tgz(&outer)
}

/// Adds `r` as the last member of the level.
fn push(r: Raw) -> impl FnOnce(&mut Vec<Raw>) {
    move |v| v.push(r)
}

fn parse(bytes: &[u8]) -> Result<ConfigBundle, BundleError> {
    ConfigBundle::parse(bytes, &Limits::default())
}

/// The bundle is refused with exactly `want`, and a host refuses it the same way, unchanged.
fn assert_refused(what: &str, bytes: &[u8], limits: &Limits, want: &BundleError) {
    let (got, _, took) = measured(|| ConfigBundle::parse(bytes, limits));
    assert_eq!(got.as_ref().err(), Some(want), "{what}");
    assert!(took < TIME_BUDGET, "{what}: took {took:?}");
    assert!(
        want.to_string().starts_with("Invalid Bundle: "),
        "{what}: {want}"
    );
    if *limits == Limits::default() {
        for force in [false, true] {
            let r = restore_unchanged(&fixture().source, bytes, force);
            assert_eq!(
                r,
                HostError::InvalidBundle(want.clone()),
                "{what} force={force}"
            );
        }
    }
}

/// Like [`assert_refused`] for variants whose text comes from a library (gzip, tar errors).
fn assert_refused_as(what: &str, bytes: &[u8], ok: impl Fn(&BundleError) -> bool) {
    let got = parse(bytes);
    match &got {
        Err(e) if ok(e) => {
            for force in [false, true] {
                let r = restore_unchanged(&fixture().source, bytes, force);
                assert_eq!(
                    r,
                    HostError::InvalidBundle(e.clone()),
                    "{what} force={force}"
                );
            }
        }
        other => panic!("{what}: {other:?}"),
    }
}

/// Restores `bytes` on a copy of `template`, which must refuse and keep its boot bank, its RAM
/// /etc and its power state; returns the error.
fn restore_unchanged(template: &Host, bytes: &[u8], force: bool) -> HostError {
    let mut h = template.clone();
    let (bank, etc, power) = (h.bootbank().cloned(), h.etc().clone(), h.power_state());
    h.upload_bundle(bytes.to_vec()).unwrap();
    let e = h.restore(force).expect_err("a hostile bundle was restored");
    assert_eq!(
        h.bootbank().cloned(),
        bank,
        "boot bank changed by a refused restore"
    );
    assert!(h.etc() == &etc, "RAM /etc changed by a refused restore");
    assert_eq!(h.power_state(), power);
    assert!(h.in_maintenance_mode());
    assert_eq!(h.uploaded_bundle().map(|b| &b[..]), Some(bytes));
    e
}

// ---- hand-crafted hostile archives --------------------------------------------------------

#[test]
fn crafted_baseline_is_valid_and_restores() {
    // The crafting machinery itself makes a good bundle when nothing hostile is added, so each
    // refusal below is caused by the one hostile member.
    for level in LEVELS {
        let bytes = crafted(level, |_| {});
        let b = parse(&bytes).unwrap();
        let files = b.files(&Limits::default()).unwrap();
        assert_eq!(&files["etc/hosts"].data[..], HOSTS);
        let mut h = fixture().source.clone();
        h.upload_bundle(bytes).unwrap();
        h.restore(false).unwrap();
        h.wait_until_running();
        assert_eq!(&h.read_file("/etc/hosts").unwrap().unwrap()[..], HOSTS);
        assert_eq!(
            &h.read_file("/etc/motd").unwrap().unwrap()[..],
            b"crafted\n"
        );
    }
}

#[test]
fn unsafe_paths_are_refused_at_every_level() {
    let names: &[&[u8]] = &[
        b"/etc/passwd",
        b"../x",
        b"etc/../../x",
        b"./../x",
        b"etc/./hosts",
        b"etc//hosts",
        b"/",
        b"..",
        b"etc\\..\\..\\x",
        b"etc/ho\nsts",
        b"etc/\x1b[2Jhosts",
        b"etc/\xff\xfehosts",
        b"\xc0\xae\xc0\xae/x", // overlong UTF-8 for ".."
    ];
    for level in LEVELS {
        for name in names {
            let lossy = String::from_utf8_lossy(name).into_owned();
            let what = format!("{level:?} {lossy:?}");
            let want = BundleError::UnsafePath(lossy.clone());
            let bytes = crafted(level, push(Raw::file(name, b"owned\n")));
            assert_refused(&what, &bytes, &Limits::default(), &want);
            // The same name on a directory entry is no better.
            let mut dir = name.to_vec();
            dir.push(b'/');
            let bytes = crafted(level, push(Raw::of(EntryType::Directory, &dir)));
            assert!(
                matches!(parse(&bytes), Err(BundleError::UnsafePath(_))),
                "{what} as a directory"
            );
        }
        // Hostile names that do not fit the 100-byte name field: GNU long names and PAX paths.
        let deep = format!("{}../../../../etc/shadow", "a/".repeat(60));
        let bytes = crafted(level, |v| {
            v.push(Raw::gnu_long_name(deep.as_bytes()));
            v.push(Raw::file("innocent", b"x"));
        });
        let want = BundleError::UnsafePath(deep.clone());
        assert_refused(
            &format!("{level:?} GNU long name"),
            &bytes,
            &Limits::default(),
            &want,
        );
        let bytes = crafted(level, |v| {
            v.push(Raw::pax("path", b"/etc/shadow"));
            v.push(Raw::file("innocent", b"x"));
        });
        let want = BundleError::UnsafePath("/etc/shadow".into());
        assert_refused(
            &format!("{level:?} PAX path"),
            &bytes,
            &Limits::default(),
            &want,
        );
    }
}

#[test]
fn non_regular_members_are_refused_at_every_level() {
    let cases = [
        (
            Raw::link(EntryType::Symlink, "etc/passwd", "/etc/shadow"),
            "symbolic link",
        ),
        (
            Raw::link(EntryType::Symlink, "etc/evil", "../../../root"),
            "symbolic link",
        ),
        (
            Raw::link(EntryType::Link, "etc/hardlink", "etc/hosts"),
            "hard link",
        ),
        (
            Raw::link(EntryType::Link, "etc/hl2", "/etc/shadow"),
            "hard link",
        ),
        (Raw::of(EntryType::Char, "etc/null"), "character device"),
        (Raw::of(EntryType::Block, "etc/sda"), "block device"),
        (Raw::of(EntryType::Fifo, "etc/fifo"), "fifo"),
        (
            Raw::of(EntryType::XGlobalHeader, "pax_global_header"),
            "XGlobalHeader entry",
        ),
    ];
    for level in LEVELS {
        for (raw, kind) in &cases {
            let path = String::from_utf8(raw.name.clone()).unwrap();
            let want = BundleError::UnsupportedMember {
                path: path.clone(),
                kind: kind.to_string(),
            };
            let what = format!("{level:?} {kind} {path}");
            let bytes = crafted(level, push(raw.clone()));
            assert_refused(&what, &bytes, &Limits::default(), &want);
            assert_eq!(
                want.to_string(),
                format!("Invalid Bundle: member {path:?} is a {kind}, not a regular file")
            );
        }
    }
    // A symlink standing where a required member should be is refused, not followed.
    let want = |path: &str| BundleError::UnsupportedMember {
        path: path.into(),
        kind: "symbolic link".into(),
    };
    let bytes = crafted(Level::Bundle, |v| {
        v[1] = Raw::link(EntryType::Symlink, "state.tgz", "/bootbank/state.tgz");
    });
    assert_refused(
        "state.tgz symlink",
        &bytes,
        &Limits::default(),
        &want("state.tgz"),
    );
    let bytes = crafted(Level::State, |v| {
        v[0] = Raw::link(EntryType::Symlink, "local.tgz", "/tmp/x.tgz");
    });
    assert_refused(
        "local.tgz symlink",
        &bytes,
        &Limits::default(),
        &want("local.tgz"),
    );
    let bytes = crafted(Level::Local, |v| {
        v[0] = Raw::link(EntryType::Symlink, "etc/shadow", "/tmp/shadow");
    });
    assert_refused(
        "etc/shadow symlink",
        &bytes,
        &Limits::default(),
        &want("etc/shadow"),
    );
}

#[test]
fn duplicate_members_are_refused_at_every_level() {
    for level in LEVELS {
        let bytes = crafted(level, |v| {
            let mut dup = v[0].clone();
            dup.data = b"second copy\n".to_vec();
            v.push(dup);
        });
        let name = match level {
            Level::Bundle => "Manifest.txt",
            Level::State => "local.tgz",
            Level::Local => "etc/hosts",
        };
        let want = BundleError::DuplicateMember(name.into());
        assert_refused(&format!("{level:?}"), &bytes, &Limits::default(), &want);
        // Spelled differently, the same file: `./x` and `x/` are `x`.
        for alias in [format!("./{name}"), format!("{name}/")] {
            let bytes = crafted(level, push(Raw::file(&alias, b"alias\n")));
            assert_refused(
                &format!("{level:?} {alias}"),
                &bytes,
                &Limits::default(),
                &want,
            );
        }
    }
}

#[test]
fn truncated_gzip_is_refused_at_every_cut() {
    let f = fixture();
    let whole = &f.bundle[..];
    for cut in 1..whole.len() {
        let bytes = &whole[..whole.len() - cut];
        let (r, _, took) = measured(|| parse(bytes));
        assert!(took < TIME_BUDGET);
        match r {
            Err(BundleError::Gzip(m)) => assert!(m.starts_with("configBundle.tgz: "), "{m}"),
            other => panic!("cut {cut} of {}: {other:?}", whole.len()),
        }
    }
    // The classic failure, cut in the trailer, through the host.
    for cut in [1, 4, 8, 64, whole.len() / 2] {
        let bytes = &whole[..whole.len() - cut];
        assert_refused_as(&format!("cut {cut}"), bytes, |e| {
            *e == BundleError::Gzip("configBundle.tgz: unexpected end of file".into())
        });
    }
    // Truncated inner archives, rebuilt into otherwise valid outer layers.
    let l = Limits::default();
    for cut in [1, 2, 7, 8, 9, 100, f.local.len() / 2, f.local.len() - 1] {
        let local = &f.local[..f.local.len() - cut];
        let state = write_state_tgz(local, 0);
        let bytes = bundle_of(&f.manifest, &state);
        let want = BundleError::Gzip("local.tgz: unexpected end of file".into());
        match read_state_tgz(&state, &l) {
            Err(e) if cut == f.local.len() - 1 => {
                assert_eq!(e, BundleError::Gzip("local.tgz: not in gzip format".into()));
            }
            Err(e) => assert_eq!(e, want, "local cut {cut}"),
            Ok(_) => panic!("local.tgz cut by {cut} accepted"),
        }
        assert_refused_as(
            &format!("local cut {cut}"),
            &bytes,
            |e| matches!(e, BundleError::Gzip(m) if m.starts_with("local.tgz: ")),
        );
    }
    for cut in [1, 3, 8, 50, f.state.len() / 2] {
        let state = &f.state[..f.state.len() - cut];
        let bytes = bundle_of(&f.manifest, state);
        assert_refused(
            &format!("state cut {cut}"),
            &bytes,
            &l,
            &BundleError::Gzip("state.tgz: unexpected end of file".into()),
        );
    }
}

#[test]
fn corrupt_gzip_crc_and_trailing_garbage_are_refused() {
    let f = fixture();
    let n = f.bundle.len();
    // CRC32 (bytes n-8..n-4) and ISIZE (n-4..n) of the gzip trailer.
    for i in n - 8..n {
        let mut bytes = f.bundle.clone();
        bytes[i] ^= 0x01;
        assert_refused_as(&format!("trailer byte {i}"), &bytes, |e| {
            matches!(e, BundleError::Gzip(_))
        });
    }
    for junk in [&b"\0"[..], b"\0\0\0\0\0\0\0\0\0\0", b"garbage", b"\x1f\x8b"] {
        let mut bytes = f.bundle.clone();
        bytes.extend_from_slice(junk);
        assert_refused_as(&format!("trailing {junk:?}"), &bytes, |e| {
            matches!(e, BundleError::Gzip(_))
        });
    }
}

/// Streams gzip(prefix ++ `zeros` zero bytes ++ suffix) 1 MiB at a time: a 200 MiB bomb costs
/// ~200 KB of output and never 200 MiB of memory.
fn gz_zeros(prefix: &[u8], zeros: u64, suffix: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(prefix).unwrap();
    let chunk = vec![0u8; MIB as usize];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(MIB);
        e.write_all(&chunk[..n as usize]).unwrap();
        left -= n;
    }
    e.write_all(suffix).unwrap();
    e.finish().unwrap()
}

fn bundle_of(manifest: &[u8], state: &[u8]) -> Vec<u8> {
    write_tgz(
        [
            ("Manifest.txt", manifest, 0o644, 0),
            ("state.tgz", state, 0o644, 0),
        ],
        0,
    )
}

/// 200 MiB of zeros as one tar member `etc/hosts`, then the end marker.
fn bomb_one_member() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let h = raw_header(&Raw::file("etc/hosts", b""));
        let mut h = h;
        h.set_size(200 * MIB);
        h.set_cksum();
        gz_zeros(h.as_bytes(), 200 * MIB + 1024, b"")
    })
}

/// A small valid tar (`etc/hosts`) followed by 200 MiB of zeros after its end marker.
fn bomb_after_trailer() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let tar = raw_tar(&[Raw::file("etc/hosts", HOSTS)]);
        gz_zeros(&tar, 200 * MIB, b"")
    })
}

#[test]
fn gzip_bombs_are_refused_quickly_and_in_little_memory() {
    let small = Limits {
        max_unpacked: 4 * MIB,
        ..Limits::default()
    };
    let l = Limits::default();
    let one = bomb_one_member();
    let after = bomb_after_trailer();
    assert!(
        one.len() < 256 << 10 && after.len() < 256 << 10,
        "bombs are small"
    );

    // The member's header says 200 MiB: refused on the header, before inflating it.
    for limits in [small, l] {
        let want = BundleError::TooLarge {
            what: "archive member",
            limit: limits.max_unpacked,
        };
        let (r, peak, took) = measured(|| read_tgz(one, &limits, "local.tgz"));
        assert_eq!(r, Err(want.clone()));
        assert!(took < TIME_BUDGET && peak < 8 << 20, "{took:?} {peak}");
        let state = write_state_tgz(one, 0);
        let bundle = bundle_of(&good_manifest(), &state);
        assert_refused("bomb in local.tgz", &bundle, &limits, &want);
    }

    // The tar is fine, the zeros after it are not: caught by the unpacked-bytes cap while draining.
    let want = |limits: &Limits| BundleError::TooLarge {
        what: "unpacked archive",
        limit: limits.max_unpacked,
    };
    let (r, peak, took) = measured(|| read_tgz(after, &small, "state.tgz"));
    assert_eq!(r, Err(want(&small)));
    assert!(took < TIME_BUDGET, "{took:?}");
    assert!(
        peak < 2 * MIB as usize,
        "the drain keeps nothing: peak {peak}"
    );
    for level in [Level::Bundle, Level::State] {
        let bytes = match level {
            Level::Bundle => after.to_vec(),
            _ => bundle_of(&good_manifest(), after),
        };
        assert_refused(&format!("{level:?} bomb"), &bytes, &small, &want(&small));
    }
    // With the default limits too (64 MiB inflated, then refused), through a host.
    let bytes = bundle_of(&good_manifest(), &write_state_tgz(after, 0));
    let (r, peak, took) = measured(|| ConfigBundle::parse(&bytes, &l));
    assert_eq!(r, Err(want(&l)));
    assert!(took < TIME_BUDGET, "{took:?}");
    assert!(peak < 8 * MIB as usize, "peak {peak}");
    assert_refused("default limits", &bytes, &l, &want(&l));

    // Many members, each modest, adding up past the cap: refused by the cap, holding at most it.
    let mut members = Vec::new();
    for i in 0..16 {
        members.push(Raw::file(format!("etc/f{i}"), vec![0u8; MIB as usize]));
    }
    let many = raw_tgz(&members);
    let (r, peak, took) = measured(|| read_tgz(&many, &small, "local.tgz"));
    assert_eq!(r, Err(want(&small)));
    assert!(took < TIME_BUDGET);
    assert!(peak < 3 * small.max_unpacked as usize, "peak {peak}");
}

#[test]
fn the_unpacked_cap_is_exact() {
    // A stream of exactly max_unpacked bytes passes; one byte less of allowance refuses it.
    let tar = raw_tar(&[Raw::file("etc/hosts", HOSTS), Raw::file("etc/motd", "x")]);
    let tgz = gz(&tar);
    let at = |max_unpacked: u64| {
        let limits = Limits {
            max_unpacked,
            ..Limits::default()
        };
        read_tgz(&tgz, &limits, "local.tgz")
    };
    let n = tar.len() as u64;
    assert_eq!(at(n).unwrap().len(), 2);
    assert_eq!(
        at(n - 1),
        Err(BundleError::TooLarge {
            what: "unpacked archive",
            limit: n - 1
        })
    );
    // The compressed cap, likewise.
    let limits = Limits {
        max_compressed: tgz.len() - 1,
        ..Limits::default()
    };
    assert_eq!(
        read_tgz(&tgz, &limits, "local.tgz"),
        Err(BundleError::TooLarge {
            what: "compressed archive",
            limit: tgz.len() as u64 - 1
        })
    );
}

#[test]
fn too_many_members_are_refused_at_every_level() {
    let limits = Limits {
        max_members: 8,
        ..Limits::default()
    };
    for level in LEVELS {
        let base = match level {
            Level::Bundle => 2,
            Level::State => 1,
            Level::Local => 2,
        };
        // Exactly the cap: accepted.
        let fill = |n: usize| {
            move |v: &mut Vec<Raw>| {
                for i in 0..n {
                    v.push(Raw::file(format!("etc/extra{i}"), b"x"));
                }
            }
        };
        let bytes = crafted(level, fill(8 - base));
        ConfigBundle::parse(&bytes, &limits).unwrap();
        // One more: refused.
        let bytes = crafted(level, fill(9 - base));
        assert_refused(
            &format!("{level:?}"),
            &bytes,
            &limits,
            &BundleError::TooManyMembers(8),
        );
        // Thousands, under the default cap of 4096 per archive, then over it.
        if level == Level::Local {
            let d = Limits::default();
            let bytes = crafted(level, fill(d.max_members - base));
            let (r, _, took) = measured(|| ConfigBundle::parse(&bytes, &d));
            assert_eq!(r.unwrap().files(&d).unwrap().len(), d.max_members);
            assert!(took < TIME_BUDGET);
            let bytes = crafted(level, fill(d.max_members - base + 1));
            let want = BundleError::TooManyMembers(d.max_members);
            assert_refused("4097 members", &bytes, &d, &want);
        }
    }
}

#[test]
fn manifest_problems_are_refused() {
    let l = Limits::default();
    let with_manifest = |m: Vec<u8>| {
        crafted(Level::Bundle, move |v| {
            v[0] = Raw::file("Manifest.txt", m);
        })
    };
    // Huge: one byte over max_manifest (a valid manifest padded with comment lines).
    let mut huge = good_manifest();
    while huge.len() < l.max_manifest {
        huge.extend_from_slice(b"# padding padding padding padding\n");
    }
    huge.truncate(l.max_manifest - 1);
    huge.push(b'\n');
    assert_eq!(huge.len(), l.max_manifest);
    parse(&with_manifest(huge.clone())).expect("exactly max_manifest bytes is accepted");
    huge.push(b'\n');
    let want = BundleError::TooLarge {
        what: "Manifest.txt",
        limit: l.max_manifest as u64,
    };
    assert_refused("huge manifest", &with_manifest(huge), &l, &want);
    let small = Limits {
        max_manifest: 16,
        ..l
    };
    let want = BundleError::TooLarge {
        what: "Manifest.txt",
        limit: 16,
    };
    assert_refused("small cap", &with_manifest(good_manifest()), &small, &want);

    // Not UTF-8.
    let mut bad = good_manifest();
    bad.splice(0..0, *b"\xff\xfe");
    let bytes = with_manifest(bad);
    assert_refused_as("UTF-16 BOM", &bytes, |e| {
        *e == BundleError::Manifest("not UTF-8 text (byte 0)".into())
    });
    let mut bad = good_manifest();
    bad.extend_from_slice(b"USEROPTS=\xc3\x28\n");
    assert_refused_as(
        "invalid UTF-8 later",
        &with_manifest(bad),
        |e| matches!(e, BundleError::Manifest(m) if m.starts_with("not UTF-8")),
    );
    // Shapeless, or missing the keys restore needs.
    for (text, msg) in [
        (&b"garbage\n"[..], "line 1: expected KEY=value"),
        (b"", "no RELEASELEVEL line"),
        (
            b"UUID=4C4C4544-0047-3210-804E-C8C04F435032\n",
            "no RELEASELEVEL line",
        ),
        (b"RELEASELEVEL=VMware ESXi 6.7.0 Update 3\n", "no UUID line"),
    ] {
        let want = BundleError::Manifest(msg.into());
        assert_refused(msg, &with_manifest(text.to_vec()), &l, &want);
    }
}

#[test]
fn missing_members_are_refused() {
    let l = Limits::default();
    // No Manifest.txt: the script's exact words.
    let bytes = crafted(Level::Bundle, |v| {
        v.remove(0);
    });
    assert_refused("no manifest", &bytes, &l, &BundleError::MissingManifest);
    assert_eq!(
        BundleError::MissingManifest.to_string(),
        "Invalid Bundle: Missing Manifest File"
    );
    let e = restore_unchanged(&fixture().source, &bytes, true);
    assert_eq!(e.to_string(), "Invalid Bundle: Missing Manifest File");
    // Not where the script looks: under a directory prefix, or a directory entry of that name.
    let bytes = crafted(Level::Bundle, |v| {
        v[0].name = b"configBundle/Manifest.txt".to_vec();
    });
    assert_refused(
        "manifest in a directory",
        &bytes,
        &l,
        &BundleError::MissingManifest,
    );
    let bytes = crafted(Level::Bundle, |v| {
        v[0] = Raw::of(EntryType::Directory, "Manifest.txt/");
    });
    assert_refused(
        "manifest a directory",
        &bytes,
        &l,
        &BundleError::MissingManifest,
    );
    // An empty archive.
    let empty = raw_tgz(&[]);
    assert_refused("empty tar", &empty, &l, &BundleError::MissingManifest);

    // No state.tgz.
    let want = BundleError::MissingMember("state.tgz");
    let bytes = crafted(Level::Bundle, |v| {
        v.remove(1);
    });
    assert_refused("no state.tgz", &bytes, &l, &want);
    assert_eq!(want.to_string(), "Invalid Bundle: missing state.tgz");
    let bytes = crafted(Level::Bundle, |v| {
        v[1].name = b"state.tar.gz".to_vec();
    });
    assert_refused("state.tar.gz", &bytes, &l, &want);

    // state.tgz without local.tgz.
    let want = BundleError::MissingMember("local.tgz in state.tgz");
    let bytes = crafted(Level::State, |v| v[0].name = b"etc/local.tgz".to_vec());
    assert_refused("local.tgz misplaced", &bytes, &l, &want);
    let bytes = crafted(Level::State, |v| v.clear());
    assert_refused("state.tgz empty", &bytes, &l, &want);

    // The 7.0 U2+ encrypted form needs its key store next to it, and both must parse (the
    // property tests in sealed_hostile.rs go further).
    let bytes = crafted(Level::State, |v| v[0].name = b"local.tgz.ve".to_vec());
    assert_refused(
        "local.tgz.ve alone",
        &bytes,
        &l,
        &BundleError::MissingMember("encryption.info next to local.tgz.ve"),
    );
    let bytes = crafted(Level::State, |v| {
        v[0].name = b"local.tgz.ve".to_vec();
        let mut info = v[0].clone();
        info.name = b"encryption.info".to_vec();
        info.data = b"mode = \"NONE\"\n".to_vec();
        v.push(info);
    });
    match parse(&bytes) {
        Err(BundleError::Sealed(m)) => assert!(m.contains("envelope"), "{m}"),
        other => panic!("a local.tgz.ve that is no envelope: {other:?}"),
    }
    // Both: the plain one is used.
    let bytes = crafted(Level::State, |v| {
        let mut ve = v[0].clone();
        ve.name = b"local.tgz.ve".to_vec();
        ve.data = b"\x00encrypted".to_vec();
        v.insert(0, ve);
    });
    parse(&bytes).unwrap();
}

#[test]
fn not_a_gzip_tar_is_refused() {
    let l = Limits::default();
    let not_gzip = |ctx: &str| BundleError::Gzip(format!("{ctx}: not in gzip format"));
    assert_refused("empty input", b"", &l, &not_gzip("configBundle.tgz"));
    assert_refused("one byte", b"\x1f", &l, &not_gzip("configBundle.tgz"));
    assert_refused(
        "zip file",
        b"PK\x03\x04rest",
        &l,
        &not_gzip("configBundle.tgz"),
    );
    // A plain (uncompressed) tar of a good bundle.
    let plain = raw_tar(&[
        Raw::file("Manifest.txt", good_manifest()),
        Raw::file("state.tgz", &fixture().state),
    ]);
    assert_refused("plain tar", &plain, &l, &not_gzip("configBundle.tgz"));
    // A plain tar, or nothing, where state.tgz or local.tgz should be.
    let plain_state = raw_tar(&[Raw::file("local.tgz", &fixture().local)]);
    let bytes = bundle_of(&good_manifest(), &plain_state);
    assert_refused("plain state", &bytes, &l, &not_gzip("state.tgz"));
    let bytes = bundle_of(&good_manifest(), b"");
    assert_refused("empty state", &bytes, &l, &not_gzip("state.tgz"));
    let bytes = crafted(Level::State, |v| v[0].data = b"etc/hosts".to_vec());
    assert_refused("plain local", &bytes, &l, &not_gzip("local.tgz"));
    // gzip of something that is not a tar.
    let bytes = gz(b"RELEASELEVEL=VMware ESXi 6.7.0 Update 3\n");
    assert_refused_as("gzip of text", &bytes, |e| matches!(e, BundleError::Tar(_)));
    // A tar header with a wrong checksum.
    let mut tar = raw_tar(&[Raw::file("Manifest.txt", good_manifest())]);
    tar[0] = b'N';
    assert_refused_as(
        "bad tar checksum",
        &gz(&tar),
        |e| matches!(e, BundleError::Tar(m) if m.contains("checksum")),
    );
    // The stream ends in a member's padding.
    let mut tar = raw_tar(&[Raw::file("Manifest.txt", good_manifest())]);
    tar.truncate(700);
    assert_refused_as(
        "short padding",
        &gz(&tar),
        |e| matches!(e, BundleError::Tar(m) if m.starts_with("configBundle.tgz: ")),
    );
    // A member's data cut short inside a complete, valid gzip stream: not a shorter file.
    for level in LEVELS {
        let ctx = match level {
            Level::Bundle => "configBundle.tgz",
            Level::State => "state.tgz",
            Level::Local => "local.tgz",
        };
        let short = |members: &[Raw]| {
            let mut tar = raw_tar(members);
            tar.truncate(tar.len() - 1024 - 512 - 100);
            gz(&tar)
        };
        let big = Raw::file("etc/big", vec![b'x'; 3000]);
        let bytes = match level {
            Level::Bundle => short(&[Raw::file("Manifest.txt", good_manifest()), big]),
            Level::State => bundle_of(&good_manifest(), &short(&[big])),
            Level::Local => bundle_of(&good_manifest(), &write_state_tgz(&short(&[big]), 0)),
        };
        let want = BundleError::Gzip(format!("{ctx}: unexpected end of file"));
        assert_refused(&format!("{level:?} short member"), &bytes, &l, &want);
    }
}

#[test]
fn gnu_sparse_members_are_refused() {
    let mut h = raw_header(&Raw::file("etc/sparse", b""));
    h.set_entry_type(EntryType::GNUSparse);
    h.as_gnu_mut().unwrap().set_real_size(0);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[0u8; 1024]);
    for level in LEVELS {
        let tar = tar.clone();
        let bytes = match level {
            Level::Local => {
                let state = write_state_tgz(&gz(&tar), 0);
                bundle_of(&good_manifest(), &state)
            }
            Level::State => bundle_of(&good_manifest(), &gz(&tar)),
            Level::Bundle => gz(&tar),
        };
        let want = BundleError::UnsupportedMember {
            path: "etc/sparse".into(),
            kind: "sparse file".into(),
        };
        assert_refused(&format!("{level:?}"), &bytes, &Limits::default(), &want);
    }
}

// ---- fuzz-style properties ----------------------------------------------------------------

/// One edit of a byte string. Positions are [`Index`]es so they scale with the length.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    /// Flips a byte among the first 16 (gzip header) or the last 16 (deflate end, CRC, ISIZE).
    FlipHead(u8, u8),
    FlipTail(u8, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Overwrite(Index, Vec<u8>),
    Duplicate(Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        1 => (0u8..16, 1u8..=255).prop_map(|(i, m)| Mutation::FlipHead(i, m)),
        1 => (0u8..16, 1u8..=255).prop_map(|(i, m)| Mutation::FlipTail(i, m)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<Index>(), 1usize..512).prop_map(|(i, n)| Mutation::Delete(i, n)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(i, b)| Mutation::Overwrite(i, b)),
        1 => (any::<Index>(), 1usize..1024).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(v: &mut Vec<u8>, m: &Mutation) {
    let len = v.len();
    match m {
        Mutation::Insert(i, b) => {
            let at = i.index(len + 1);
            v.splice(at..at, b.iter().copied());
        }
        Mutation::Truncate(i) => v.truncate(i.index(len + 1)),
        _ if len == 0 => {}
        Mutation::Flip(i, mask) => v[i.index(len)] ^= mask,
        Mutation::FlipHead(i, mask) => v[(*i as usize).min(len - 1)] ^= mask,
        Mutation::FlipTail(i, mask) => v[len - 1 - (*i as usize).min(len - 1)] ^= mask,
        Mutation::Delete(i, n) => {
            let at = i.index(len);
            v.drain(at..(at + n).min(len));
        }
        Mutation::Overwrite(i, b) => {
            let at = i.index(len);
            for (d, s) in v[at..].iter_mut().zip(b) {
                *d = *s;
            }
        }
        Mutation::Duplicate(i, n) => {
            let at = i.index(len);
            let end = (at + n).min(len);
            let seg = v[at..end].to_vec();
            v.splice(end..end, seg);
        }
    }
}

/// Which layer of a real bundle a property mutates.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The bundle's own gzip bytes.
    Bundle,
    /// Manifest.txt's text, repacked into a good bundle.
    Manifest,
    /// state.tgz's gzip bytes, repacked.
    State,
    /// local.tgz's gzip bytes, repacked into a good state.tgz and bundle.
    Local,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Bundle),
        Just(Target::Manifest),
        Just(Target::State),
        Just(Target::Local),
    ]
}

/// A real bundle with `muts` applied to one of its layers; the mutated layer's bytes too.
fn mutated(t: Target, muts: &[Mutation]) -> (Vec<u8>, Vec<u8>) {
    let f = fixture();
    let mut layer = match t {
        Target::Bundle => f.bundle.clone(),
        Target::Manifest => f.manifest.clone(),
        Target::State => f.state.clone(),
        Target::Local => f.local.clone(),
    };
    for m in muts {
        apply(&mut layer, m);
    }
    let bytes = match t {
        Target::Bundle => layer.clone(),
        Target::Manifest => bundle_of(&layer, &f.state),
        Target::State => bundle_of(&f.manifest, &layer),
        Target::Local => bundle_of(&f.manifest, &write_state_tgz(&layer, 0)),
    };
    (bytes, layer)
}

/// Bytes that `Host::restore` should see: mutated real bundles, crafted hostile archives, good
/// crafted bundles, and random bytes.
#[derive(Clone, Debug)]
enum Input {
    Mutated(Target, Vec<Mutation>),
    Hostile(Index),
    Valid(Level),
    Random(Vec<u8>),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => (target(), prop::collection::vec(mutation(), 0..4))
            .prop_map(|(t, m)| Input::Mutated(t, m)),
        3 => any::<Index>().prop_map(Input::Hostile),
        1 => prop_oneof![Just(Level::Bundle), Just(Level::State), Just(Level::Local)]
            .prop_map(Input::Valid),
        1 => prop::collection::vec(any::<u8>(), 0..600).prop_map(Input::Random),
    ]
}

/// A catalogue of small hostile bundles for the host property.
fn hostile_catalogue() -> &'static [Vec<u8>] {
    static CAT: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CAT.get_or_init(|| {
        let mut v = Vec::new();
        for level in LEVELS {
            for r in [
                Raw::file("/etc/passwd", b"x"),
                Raw::file("../x", b"x"),
                Raw::file("etc/../../x", b"x"),
                Raw::file(b"etc/\xff", b"x"),
                Raw::link(EntryType::Symlink, "etc/passwd", "/etc/shadow"),
                Raw::link(EntryType::Link, "etc/h", "etc/hosts"),
                Raw::of(EntryType::Char, "etc/null"),
                Raw::of(EntryType::Block, "etc/sda"),
                Raw::of(EntryType::Fifo, "etc/fifo"),
            ] {
                v.push(crafted(level, push(r)));
            }
            v.push(crafted(level, |e| {
                let d = e[0].clone();
                e.push(d)
            }));
        }
        v.push(crafted(Level::Bundle, |e| {
            e.remove(0);
        }));
        v.push(crafted(Level::Bundle, |e| {
            e.remove(1);
        }));
        v.push(crafted(Level::State, |e| {
            e[0].name = b"local.tgz.ve".to_vec()
        }));
        v.push(crafted(Level::State, |e| e[0].name = b"x.tgz".to_vec()));
        v.push(raw_tar(&[Raw::file("Manifest.txt", good_manifest())]));
        v.push(Vec::new());
        let f = fixture();
        v.push(f.bundle[..f.bundle.len() - 4].to_vec());
        v.push(bundle_of(&good_manifest(), bomb_after_trailer()));
        v
    })
}

fn input_bytes(i: &Input) -> Vec<u8> {
    match i {
        Input::Mutated(t, m) => mutated(*t, m).0,
        Input::Hostile(ix) => {
            let cat = hostile_catalogue();
            cat[ix.index(cat.len())].clone()
        }
        Input::Valid(level) => crafted(*level, |_| {}),
        Input::Random(b) => b.clone(),
    }
}

/// Each file a restored state.tgz holds under /etc, as the host must show it after the boot.
fn restored_files(b: &ConfigBundle, l: &Limits) -> Vec<(String, Vec<u8>)> {
    b.files(l)
        .unwrap()
        .into_iter()
        .filter(|(p, _)| normalize(p).is_ok())
        .filter(|(p, _)| !p.rsplit('/').next().unwrap_or_default().starts_with(".#"))
        .map(|(p, n)| (p, n.data.to_vec()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Mutated real bundles: no panic, bounded time and heap, and the verdict on the mutated layer
    /// is the verdict on the whole bundle.
    #[test]
    fn mutated_real_bundles_never_panic(t in target(), muts in prop::collection::vec(mutation(), 1..5)) {
        let l = Limits::default();
        let (bytes, layer) = mutated(t, &muts);
        let (r, peak, took) = measured(|| ConfigBundle::parse(&bytes, &l));
        prop_assert!(took < TIME_BUDGET, "took {:?}", took);
        // Inputs are ~4 KB: inflating them cannot honestly need more than a few MiB.
        prop_assert!(peak < 16 << 20, "peak heap {} bytes", peak);
        if let Err(e) = &r {
            prop_assert!(e.to_string().starts_with("Invalid Bundle: "), "{}", e);
        }
        match t {
            Target::Bundle => {
                if let Err(e) = read_tgz(&bytes, &l, "configBundle.tgz") {
                    prop_assert_eq!(r.clone().err(), Some(e));
                }
            }
            Target::Manifest => match Manifest::parse(&layer, &l) {
                Err(e) => prop_assert_eq!(r.clone().err(), Some(e)),
                Ok(m) => prop_assert_eq!(&r.as_ref().unwrap().manifest, &m),
            },
            Target::State => match read_state_tgz(&layer, &l) {
                Err(e) => prop_assert_eq!(r.clone().err(), Some(e)),
                Ok(files) => {
                    let b = r.as_ref().unwrap();
                    prop_assert_eq!(&b.state_tgz[..], &layer[..]);
                    prop_assert_eq!(b.files(&l).unwrap(), files);
                }
            },
            Target::Local => match read_tgz(&layer, &l, "local.tgz") {
                Err(e) => prop_assert_eq!(r.clone().err(), Some(e)),
                Ok(members) => {
                    let files = r.as_ref().unwrap().files(&l).unwrap();
                    let got: Vec<(&str, &[u8])> =
                        files.iter().map(|(p, n)| (p.as_str(), &n.data[..])).collect();
                    let want: Vec<(&str, &[u8])> =
                        members.iter().map(|m| (m.path.as_str(), &m.data[..])).collect();
                    prop_assert_eq!(got, want);
                }
            },
        }
        if let Ok(b) = &r {
            // Whatever is accepted is sane and survives a rewrite.
            let files = b.files(&l).unwrap();
            for p in files.keys() {
                prop_assert!(!p.starts_with('/') && !p.split('/').any(|c| c == ".." || c.is_empty()), "{}", p);
            }
            let again = ConfigBundle::parse(&b.to_bytes(0), &l).unwrap();
            prop_assert_eq!(&again, b);
        }
    }

    /// Random bytes, raw or behind a gzip magic, or gzipped: refused, no panic.
    #[test]
    fn random_bytes_are_refused(mut bytes in prop::collection::vec(any::<u8>(), 0..2048), how in 0u8..3) {
        let l = Limits::default();
        match how {
            0 => {
                let r = ConfigBundle::parse(&bytes, &l);
                if bytes.len() < 2 || bytes[..2] != [0x1f, 0x8b] {
                    prop_assert_eq!(r, Err(BundleError::Gzip("configBundle.tgz: not in gzip format".into())));
                } else {
                    prop_assert!(r.is_err());
                }
            }
            1 => {
                bytes.splice(0..0, [0x1f, 0x8b, 0x08, 0x00]);
                let r = ConfigBundle::parse(&bytes, &l);
                prop_assert!(matches!(r, Err(BundleError::Gzip(_)) | Err(BundleError::Tar(_))), "{:?}", r);
                prop_assert!(read_state_tgz(&bytes, &l).is_err());
            }
            _ => {
                let g = gz(&bytes);
                let (r, _, took) = measured(|| ConfigBundle::parse(&g, &l));
                prop_assert!(took < TIME_BUDGET);
                prop_assert!(r.is_err());
                prop_assert!(read_state_tgz(&g, &l).is_err());
            }
        }
    }

    /// Archives assembled from a pool of names and member kinds: `read_tgz` gives exactly the
    /// verdict of a straightforward model of the rules, first offending member first.
    #[test]
    fn read_tgz_matches_the_rules(
        entries in prop::collection::vec(pooled_entry(), 0..12),
        max_members in 1usize..8,
    ) {
        let limits = Limits { max_members, ..Limits::default() };
        let raws: Vec<Raw> = entries
            .iter()
            .map(|&(n, k, d)| {
                let (name, _) = POOL[n];
                let kind = KINDS[k];
                let data = if kind == EntryType::Regular { vec![b'a' + d; d as usize * 300] } else { Vec::new() };
                Raw { data, ..Raw::link(kind, name, if kind.is_hard_link() || kind.is_symlink() { &b"etc/hosts"[..] } else { b"" }) }
            })
            .collect();
        let want = model_read_tgz(&entries, &limits);
        let got = read_tgz(&raw_tgz(&raws), &limits, "local.tgz")
            .map(|ms| ms.into_iter().map(|m| (m.path, m.data)).collect::<Vec<_>>());
        prop_assert_eq!(got, want);
    }
}

/// Names, each with what the reader must make of it (`None`: unsafe). The safe ones come first.
const POOL: [(&[u8], Option<&str>); 12] = [
    (b"etc/hosts", Some("etc/hosts")),
    (b"./etc/hosts", Some("etc/hosts")),
    (b"etc/motd", Some("etc/motd")),
    (b"etc/shadow", Some("etc/shadow")),
    (b"etc/vmware/esx.conf", Some("etc/vmware/esx.conf")),
    (b"etc/", Some("etc")),
    (b"./etc/vmware/", Some("etc/vmware")),
    (b"./", None), // the archive root: skipped when a directory, unsafe otherwise
    (b"/etc/passwd", None),
    (b"../x", None),
    (b"etc/../../x", None),
    (b"etc/\xff", None),
];
const SAFE: usize = 7;
const KINDS: [EntryType; 5] = [
    EntryType::Regular,
    EntryType::Directory,
    EntryType::Symlink,
    EntryType::Link,
    EntryType::Fifo,
];

/// Mostly well-formed members, so archives get far enough to meet every rule.
fn pooled_entry() -> impl Strategy<Value = (usize, usize, u8)> {
    let name = prop_oneof![9 => 0..SAFE, 1 => SAFE..POOL.len()];
    let kind = prop_oneof![12 => Just(0usize), 4 => Just(1usize), 1 => 2..KINDS.len()];
    (name, kind, 0u8..3)
}

type Files = Vec<(String, Vec<u8>)>;

fn model_read_tgz(entries: &[(usize, usize, u8)], limits: &Limits) -> Result<Files, BundleError> {
    let mut out: Files = Vec::new();
    for &(n, k, d) in entries {
        let (raw, safe) = POOL[n];
        let kind = KINDS[k];
        if kind == EntryType::Directory && raw == b"./" {
            continue;
        }
        let path =
            safe.ok_or_else(|| BundleError::UnsafePath(String::from_utf8_lossy(raw).into()))?;
        match kind {
            EntryType::Directory => continue,
            EntryType::Regular => {}
            other => {
                return Err(BundleError::UnsupportedMember {
                    path: path.into(),
                    kind: match other {
                        EntryType::Symlink => "symbolic link",
                        EntryType::Link => "hard link",
                        _ => "fifo",
                    }
                    .into(),
                })
            }
        }
        if out.len() >= limits.max_members {
            return Err(BundleError::TooManyMembers(limits.max_members));
        }
        if out.iter().any(|(p, _)| p == path) {
            return Err(BundleError::DuplicateMember(path.into()));
        }
        out.push((path.into(), vec![b'a' + d; d as usize * 300]));
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// Through the host, in maintenance mode: a restore succeeds only for a bundle that is valid
    /// for this host (release level equal; UUID equal unless forced), and then the host boots the
    /// bundle's files; otherwise it fails with InvalidBundle or MismatchedBundle and nothing changed.
    #[test]
    fn host_restore_is_all_or_nothing(inp in input(), which in 0usize..3, force in any::<bool>()) {
        let f = fixture();
        let template = [&f.source, &f.other_uuid, &f.other_level][which];
        let bytes = input_bytes(&inp);
        let l = *template.limits();
        let parsed = ConfigBundle::parse(&bytes, &l);
        let mut h = template.clone();
        let (bank, etc, power) = (h.bootbank().cloned(), h.etc().clone(), h.power_state());
        h.upload_bundle(bytes.clone()).unwrap();
        let (r, _, took) = measured(|| h.restore(force));
        prop_assert!(took < TIME_BUDGET);
        match (&r, &parsed) {
            (Ok(()), Ok(b)) => {
                prop_assert_eq!(&b.manifest.release_level, &h.profile().release_level);
                prop_assert!(force || b.manifest.uuid == h.smbios_uuid(), "restored a foreign bundle without force");
                h.wait_until_running();
                prop_assert!(h.is_running() && h.in_maintenance_mode());
                let bank = h.bootbank().unwrap();
                prop_assert_eq!(&bank.state_tgz().unwrap()[..], &b.state_tgz[..]);
                prop_assert_eq!(&bank.boot_cfg.kernelopt, &b.manifest.kernelopts);
                prop_assert!(bank.corrupt_reason().is_none());
                for (p, data) in restored_files(b, &l) {
                    let got = h.read_file(&p).unwrap();
                    prop_assert_eq!(got.as_deref(), Some(&data[..]), "{}", p);
                }
            }
            (Ok(()), Err(e)) => prop_assert!(false, "restored an invalid bundle ({})", e),
            (Err(e), _) => {
                match (e, &parsed) {
                    (HostError::InvalidBundle(got), Err(want)) => prop_assert_eq!(got, want),
                    (HostError::MismatchedBundle { bundle_uuid, host_uuid, .. }, Ok(b)) => {
                        prop_assert!(
                            b.manifest.release_level != h.profile().release_level
                                || (!force && b.manifest.uuid != h.smbios_uuid()),
                            "a valid bundle for this host was refused as mismatched"
                        );
                        prop_assert_eq!(bundle_uuid, &b.manifest.uuid);
                        prop_assert_eq!(host_uuid, h.smbios_uuid());
                    }
                    (other, _) => prop_assert!(false, "unexpected {:?} for parse {:?}", other, parsed.as_ref().err()),
                }
                prop_assert!(h.bootbank().cloned() == bank, "boot bank changed by a refused restore");
                prop_assert!(h.etc() == &etc, "RAM /etc changed by a refused restore");
                prop_assert_eq!(h.power_state(), power);
                prop_assert!(h.in_maintenance_mode());
            }
        }
    }
}
