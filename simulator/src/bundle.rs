//! The archive formats on the boot bank and on the wire, and a reader safe against hostile input.
//!
//! - `local.tgz`: gzip tar of the saved files, paths relative to `/` (`etc/hosts`), no directory
//!   entries (backup.sh runs `tar czf local.tgz -C / <files>`).
//! - `state.tgz`: gzip tar holding the single member `local.tgz` (facts section 1).
//! - `configBundle-<hostname>.tgz`: gzip tar with no directory prefix holding `Manifest.txt`
//!   (`KEY=value` lines: RELEASELEVEL, UUID, KERNELOPTS, USEROPTS) and `state.tgz` (facts section 2).
//!
//! Every reader here takes untrusted bytes: sizes, member counts and the unpacked total are capped
//! (gzip bombs), paths must be plain and relative, only regular files (and ignorable directories)
//! are accepted, duplicates are refused, and the gzip stream is read to its end so a truncated or
//! corrupt trailer is caught. Each failure is a [`BundleError`]; nothing panics.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use crate::host::etc::{Bytes, Node};

/// Caps for untrusted archives. Real bundles are ~10 KB (facts section 1: under 100 KB with HA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest compressed input accepted.
    pub max_compressed: usize,
    /// Largest total of decompressed bytes (tar headers and padding included).
    pub max_unpacked: u64,
    pub max_members: usize,
    pub max_manifest: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_compressed: 16 << 20,
            max_unpacked: 64 << 20,
            max_members: 4096,
            max_manifest: 64 << 10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Not gzip, truncated, or a bad CRC: `gzip: stdin: unexpected end of file` and friends.
    Gzip(String),
    /// The tar structure is broken.
    Tar(String),
    TooLarge {
        what: &'static str,
        limit: u64,
    },
    TooManyMembers(usize),
    UnsafePath(String),
    UnsupportedMember {
        path: String,
        kind: String,
    },
    DuplicateMember(String),
    /// The exact text of firmwareConfig.sh for a bundle without a manifest (facts section 2).
    MissingManifest,
    MissingMember(&'static str),
    Manifest(String),
    /// 7.0 U2+ `local.tgz.ve` where a plain `local.tgz` was wanted ([`read_state_tgz`]; the
    /// sealed state is read by [`crate::state::decode`] with a key).
    EncryptedConfig,
    /// A sealed state.tgz whose envelope or key store does not parse.
    Sealed(String),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Gzip(m) => write!(f, "Invalid Bundle: not a valid gzip stream: {m}"),
            BundleError::Tar(m) => write!(f, "Invalid Bundle: not a valid tar archive: {m}"),
            BundleError::TooLarge { what, limit } => {
                write!(f, "Invalid Bundle: {what} exceeds {limit} bytes")
            }
            BundleError::TooManyMembers(n) => {
                write!(f, "Invalid Bundle: more than {n} archive members")
            }
            BundleError::UnsafePath(p) => write!(f, "Invalid Bundle: unsafe member path {p:?}"),
            BundleError::UnsupportedMember { path, kind } => {
                write!(
                    f,
                    "Invalid Bundle: member {path:?} is a {kind}, not a regular file"
                )
            }
            BundleError::DuplicateMember(p) => write!(f, "Invalid Bundle: duplicate member {p:?}"),
            BundleError::MissingManifest => write!(f, "Invalid Bundle: Missing Manifest File"),
            BundleError::MissingMember(m) => write!(f, "Invalid Bundle: missing {m}"),
            BundleError::Manifest(m) => write!(f, "Invalid Bundle: bad Manifest.txt: {m}"),
            BundleError::EncryptedConfig => write!(
                f,
                "Invalid Bundle: the configuration is encrypted (local.tgz.ve); it needs its key"
            ),
            BundleError::Sealed(m) => write!(f, "Invalid Bundle: encrypted configuration: {m}"),
        }
    }
}

impl std::error::Error for BundleError {}

/// One regular file read from an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub mtime: u64,
}

thread_local! {
    /// One raw deflate state per thread: a fresh one allocates miniz's ~300 KB of buffers (hash
    /// chains, LZ codes) for every archive, two per save; `reset()` only re-zeroes them.
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
    /// The same at level 1, for archives whose payload is already compressed (see
    /// [`write_state_tgz`]).
    static DEFLATE_FAST: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
    /// The uncompressed tar of the archive being written, reused for the same reason.
    static TAR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Scratch buffers larger than this (a big bundle) are freed after use rather than kept per thread.
const SCRATCH_KEEP: usize = 1 << 20;

/// Appends one gzip member of `data` to `out`: the 10-byte header (no name, `mtime`, XFL 0,
/// OS 3 = Unix), raw deflate at the default level (6, as `gzip` and busybox `tar czf`), then the
/// CRC32 and ISIZE trailer. Byte for byte what flate2's `GzBuilder::new().mtime(mtime)
/// .operating_system(3).write(.., Compression::default())` writes, without a new deflate state.
pub fn gzip_into(data: &[u8], mtime: u32, out: &mut Vec<u8>) {
    gzip_level_into(data, mtime, false, out)
}

/// [`gzip_into`], or with `fast` at level 1 (XFL 4, "fastest", as gzip -1 and flate2 write it).
fn gzip_level_into(data: &[u8], mtime: u32, fast: bool, out: &mut Vec<u8>) {
    // Text and tar padding shrink a lot; the loop below grows the buffer for what does not.
    out.reserve(data.len() / 4 + 256);
    let m = mtime.to_le_bytes();
    // XFL: 2 would say "best", 4 "fastest"; flate2 writes 0 for the default level.
    let xfl = if fast { 4 } else { 0 };
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, m[0], m[1], m[2], m[3], xfl, 3]);
    let state = if fast { &DEFLATE_FAST } else { &DEFLATE };
    state.with(|cell| {
        let mut z = cell.borrow_mut();
        z.reset();
        let mut input = data;
        loop {
            let before = z.total_in();
            let status = z
                .compress_vec(input, out, FlushCompress::Finish)
                .expect("deflate into memory cannot fail");
            input = &input[(z.total_in() - before) as usize..];
            if status == Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity().max(4096));
        }
    });
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes()); // ISIZE: the length mod 2^32
}

/// One gzip member of `data` (see [`gzip_into`]).
pub fn gzip_member(data: &[u8], mtime: u32) -> Vec<u8> {
    let mut out = Vec::new();
    gzip_into(data, mtime, &mut out);
    out
}

/// Builds a gzip tar of regular files, as busybox `tar czf` does: GNU headers, owner root.
pub fn write_tgz<'a>(
    members: impl IntoIterator<Item = (&'a str, &'a [u8], u32, u64)>,
    gzip_mtime: u64,
) -> Vec<u8> {
    write_tgz_level(members, gzip_mtime, false)
}

fn write_tgz_level<'a>(
    members: impl IntoIterator<Item = (&'a str, &'a [u8], u32, u64)>,
    gzip_mtime: u64,
    fast: bool,
) -> Vec<u8> {
    TAR.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.clear();
        {
            let mut tar = tar::Builder::new(&mut *buf);
            tar.mode(tar::HeaderMode::Complete);
            for (path, data, mode, mtime) in members {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(mode);
                h.set_mtime(mtime);
                h.set_uid(0);
                h.set_gid(0);
                h.set_entry_type(tar::EntryType::Regular);
                // Writing into a Vec cannot fail, and names are checked by callers; an error
                // here is a programming mistake, so surface it loudly rather than write a wrong
                // archive.
                let _ = h.set_username("root");
                let _ = h.set_groupname("root");
                tar.append_data(&mut h, path, data)
                    .expect("appending to an in-memory tar cannot fail");
            }
            tar.finish().expect("in-memory tar");
        }
        let mut out = Vec::new();
        gzip_level_into(&buf, gzip_mtime.min(u32::MAX as u64) as u32, fast, &mut out);
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        out
    })
}

/// `local.tgz` from the files backup.sh saves.
pub fn write_local_tgz(files: &[(String, &Node)], now_secs: u64) -> Vec<u8> {
    write_tgz(
        files
            .iter()
            .map(|(p, n)| (p.as_str(), &n.data[..], n.mode, n.mtime)),
        now_secs,
    )
}

/// `state.tgz` wrapping one `local.tgz`. Its payload is already gzip, which level 6 cannot
/// shrink: searching it for matches was 40% of a save's time for a few bytes of tar padding
/// saved, so this wrapper is written at level 1 (still a plain gzip tar to every reader).
pub fn write_state_tgz(local_tgz: &[u8], now_secs: u64) -> Vec<u8> {
    write_tgz_level([("local.tgz", local_tgz, 0o644, now_secs)], now_secs, true)
}

/// Counts decompressed bytes and fails past the cap: the gzip-bomb guard.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One probe byte tells a stream that ends exactly at the cap from one that goes on.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(CapExceeded(self.limit))),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Debug)]
struct CapExceeded(u64);
impl fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decompressed size exceeds {} bytes", self.0)
    }
}
impl std::error::Error for CapExceeded {}

fn classify(e: io::Error, context: &str) -> BundleError {
    if let Some(c) = e.get_ref().and_then(|r| r.downcast_ref::<CapExceeded>()) {
        return BundleError::TooLarge {
            what: "unpacked archive",
            limit: c.0,
        };
    }
    let msg = e.to_string();
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            BundleError::Gzip(format!("{context}: unexpected end of file"))
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            if msg.contains("header")
                || msg.contains("corrupt")
                || msg.contains("checksum")
                || msg.contains("deflate")
                || msg.contains("gzip") =>
        {
            BundleError::Gzip(format!("{context}: {msg}"))
        }
        _ => BundleError::Tar(format!("{context}: {msg}")),
    }
}

/// Checks a member path: relative, no `..`, no empty components, UTF-8, bounded. A leading `./`
/// (which GNU tar writes for `tar czf x.tgz .`) is accepted and stripped.
fn safe_path(raw: &[u8]) -> Result<String, BundleError> {
    let lossy = || String::from_utf8_lossy(raw).into_owned();
    let s = std::str::from_utf8(raw).map_err(|_| BundleError::UnsafePath(lossy()))?;
    let s = s.strip_prefix("./").unwrap_or(s);
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.is_empty() || s.starts_with('/') || s.len() > 1024 {
        return Err(BundleError::UnsafePath(lossy()));
    }
    for c in s.split('/') {
        if c.is_empty() || c == "." || c == ".." || c.contains('\\') || c.bytes().any(|b| b < 0x20)
        {
            return Err(BundleError::UnsafePath(lossy()));
        }
    }
    Ok(s.to_string())
}

/// Reads every regular file of an untrusted gzip tar.
pub fn read_tgz(bytes: &[u8], limits: &Limits, context: &str) -> Result<Vec<Member>, BundleError> {
    if bytes.len() > limits.max_compressed {
        return Err(BundleError::TooLarge {
            what: "compressed archive",
            limit: limits.max_compressed as u64,
        });
    }
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Err(BundleError::Gzip(format!("{context}: not in gzip format")));
    }
    let capped = Capped {
        inner: MultiGzDecoder::new(bytes),
        left: limits.max_unpacked,
        limit: limits.max_unpacked,
    };
    let mut archive = tar::Archive::new(capped);
    let mut out: Vec<Member> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    {
        let entries = archive.entries().map_err(|e| classify(e, context))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| classify(e, context))?;
            let kind = entry.header().entry_type();
            // The archive root itself, which GNU tar writes first for `tar czf x.tgz -C dir .`.
            let root = matches!(&entry.path_bytes()[..], b"." | b"./");
            if root && kind == tar::EntryType::Directory {
                continue;
            }
            let path = safe_path(&entry.path_bytes())?;
            match kind {
                tar::EntryType::Directory => continue,
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                other => {
                    return Err(BundleError::UnsupportedMember {
                        path,
                        kind: describe(other),
                    })
                }
            }
            if out.len() >= limits.max_members {
                return Err(BundleError::TooManyMembers(limits.max_members));
            }
            if !seen.insert(path.clone()) {
                return Err(BundleError::DuplicateMember(path));
            }
            let size = entry.header().size().map_err(|e| classify(e, context))?;
            if size > limits.max_unpacked {
                return Err(BundleError::TooLarge {
                    what: "archive member",
                    limit: limits.max_unpacked,
                });
            }
            let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
            entry
                .read_to_end(&mut data)
                .map_err(|e| classify(e, context))?;
            if (data.len() as u64) != size {
                return Err(BundleError::Gzip(format!(
                    "{context}: unexpected end of file"
                )));
            }
            let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
            let mtime = entry.header().mtime().unwrap_or(0);
            out.push(Member {
                path,
                data,
                mode,
                mtime,
            });
        }
    }
    // Drain to the end so a truncated stream or a bad CRC after the tar trailer is noticed.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| classify(e, context))?;
    Ok(out)
}

fn describe(t: tar::EntryType) -> String {
    match t {
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Char => "character device".into(),
        tar::EntryType::Block => "block device".into(),
        tar::EntryType::Fifo => "fifo".into(),
        tar::EntryType::GNUSparse => "sparse file".into(),
        other => format!("{other:?} entry"),
    }
}

/// The saved files inside a `state.tgz`, keyed by path, as the boot overlays them.
pub fn read_state_tgz(
    bytes: &[u8],
    limits: &Limits,
) -> Result<BTreeMap<String, Node>, BundleError> {
    let outer = read_tgz(bytes, limits, "state.tgz")?;
    let local = match outer.iter().find(|m| m.path == "local.tgz") {
        Some(m) => m,
        None if outer.iter().any(|m| m.path == "local.tgz.ve") => {
            return Err(BundleError::EncryptedConfig)
        }
        None => return Err(BundleError::MissingMember("local.tgz in state.tgz")),
    };
    let inner = read_tgz(&local.data, limits, "local.tgz")?;
    Ok(inner
        .into_iter()
        .map(|m| {
            let node = Node {
                data: Arc::from(m.data.into_boxed_slice()),
                mode: m.mode,
                mtime: m.mtime,
                sticky: true,
            };
            (m.path, node)
        })
        .collect())
}

/// `Manifest.txt`: `KEY=value` lines. Known keys are typed; others are kept in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub release_level: String,
    /// SMBIOS UUID, uppercase.
    pub uuid: String,
    pub kernelopts: String,
    pub useropts: String,
    pub extra: Vec<(String, String)>,
}

impl Manifest {
    pub fn render(&self) -> String {
        let mut s = format!(
            "RELEASELEVEL={}\nUUID={}\nKERNELOPTS={}\nUSEROPTS={}\n",
            self.release_level, self.uuid, self.kernelopts, self.useropts
        );
        for (k, v) in &self.extra {
            s.push_str(&format!("{k}={v}\n"));
        }
        s
    }

    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Manifest, BundleError> {
        if bytes.len() > limits.max_manifest {
            return Err(BundleError::TooLarge {
                what: "Manifest.txt",
                limit: limits.max_manifest as u64,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            BundleError::Manifest(format!("not UTF-8 text (byte {})", e.valid_up_to()))
        })?;
        let mut m = Manifest::default();
        let (mut level, mut uuid) = (false, false);
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| {
                BundleError::Manifest(format!("line {}: expected KEY=value", i + 1))
            })?;
            match k {
                "RELEASELEVEL" => {
                    m.release_level = v.to_string();
                    level = true;
                }
                "UUID" => {
                    m.uuid = v.to_string();
                    uuid = true;
                }
                "KERNELOPTS" => m.kernelopts = v.to_string(),
                "USEROPTS" => m.useropts = v.to_string(),
                _ => m.extra.push((k.to_string(), v.to_string())),
            }
        }
        if !level {
            return Err(BundleError::Manifest("no RELEASELEVEL line".into()));
        }
        if !uuid {
            return Err(BundleError::Manifest("no UUID line".into()));
        }
        Ok(m)
    }
}

/// A configuration bundle, parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigBundle {
    pub manifest: Manifest,
    pub state_tgz: Bytes,
}

impl ConfigBundle {
    /// The bundle's bytes: `Manifest.txt` then `state.tgz`, no directory prefix. state.tgz is
    /// gzip already (7.0 U2+: ciphertext inside): it is stored, not deflated again, which costs
    /// a copy instead of milliseconds and leaves the bundle a few bytes larger.
    pub fn to_bytes(&self, now_secs: u64) -> Vec<u8> {
        let manifest = self.manifest.render();
        let header = crate::deflate::GzipHeader {
            mtime: now_secs.min(u32::MAX as u64) as u32,
            xfl: 0,
        };
        crate::archive::StoredTar::plan(
            header,
            &[
                ("Manifest.txt", manifest.len() as u64, 0o644, now_secs),
                ("state.tgz", self.state_tgz.len() as u64, 0o644, now_secs),
            ],
        )
        .bytes(&[manifest.as_bytes(), &self.state_tgz])
    }

    /// Parses untrusted bundle bytes, checking the inner state.tgz and local.tgz as well, so a
    /// bundle that would not boot is refused before anything is touched.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<ConfigBundle, BundleError> {
        let members = read_tgz(bytes, limits, "configBundle.tgz")?;
        let find = |name: &str| members.iter().find(|m| m.path == name);
        let manifest = find("Manifest.txt").ok_or(BundleError::MissingManifest)?;
        let manifest = Manifest::parse(&manifest.data, limits)?;
        let state = find("state.tgz").ok_or(BundleError::MissingMember("state.tgz"))?;
        // Plain: read whole. Sealed (7.0 U2+): its envelope and key store must parse; what is
        // inside is for whoever has the key (crate::state::decode).
        crate::state::peek(&state.data, limits)?;
        Ok(ConfigBundle {
            manifest,
            state_tgz: Arc::from(state.data.clone().into_boxed_slice()),
        })
    }

    /// The saved files the bundle would restore (a plain state.tgz; a sealed one needs
    /// [`ConfigBundle::decode`]).
    pub fn files(&self, limits: &Limits) -> Result<BTreeMap<String, Node>, BundleError> {
        read_state_tgz(&self.state_tgz, limits)
    }

    /// The bundle's state read with what is known of keys (any era).
    pub fn decode(
        &self,
        limits: &Limits,
        ctx: crate::state::KeyContext<'_>,
    ) -> Result<crate::state::Decoded, crate::state::StateError> {
        crate::state::decode(&self.state_tgz, limits, ctx)
    }
}

/// `configBundle-<hostname>.tgz`.
pub fn bundle_file_name(hostname: &str) -> String {
    format!("configBundle-{hostname}.tgz")
}

/// Gzip of a small text (useropts.gz, jumpstrt.gz), deterministic.
pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    gzip_member(data, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> Node {
        Node {
            data: Arc::from(s.as_bytes()),
            mode: 0o644,
            mtime: 1_700_000_000,
            sticky: true,
        }
    }

    #[test]
    fn state_tgz_round_trips() {
        let a = node("127.0.0.1 localhost\n");
        let b = node("root:x:0:0::/:/bin/sh\n");
        let files = vec![
            ("etc/hosts".to_string(), &a),
            ("etc/passwd".to_string(), &b),
        ];
        let local = write_local_tgz(&files, 5);
        let state = write_state_tgz(&local, 5);
        let back = read_state_tgz(&state, &Limits::default()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(&back["etc/hosts"].data[..], b"127.0.0.1 localhost\n");
        assert_eq!(back["etc/passwd"].mtime, 1_700_000_000);
        // Deterministic bytes: the same input gives the same archive.
        assert_eq!(write_state_tgz(&local, 5), state);
    }

    #[test]
    fn manifest_parses_and_rejects() {
        let l = Limits::default();
        let m = Manifest {
            release_level: "VMware ESXi 6.7.0 Update 3".into(),
            uuid: "4C4C4544-0047-3210-804E-C8C04F435032".into(),
            kernelopts: "".into(),
            useropts: "".into(),
            extra: vec![],
        };
        assert_eq!(Manifest::parse(m.render().as_bytes(), &l).unwrap(), m);
        assert!(matches!(
            Manifest::parse(b"UUID=x\n", &l),
            Err(BundleError::Manifest(_))
        ));
        assert!(matches!(
            Manifest::parse(b"garbage", &l),
            Err(BundleError::Manifest(_))
        ));
        assert!(matches!(
            Manifest::parse(&[0xff, 0xfe], &l),
            Err(BundleError::Manifest(_))
        ));
        let huge = vec![b'A'; l.max_manifest + 1];
        assert!(matches!(
            Manifest::parse(&huge, &l),
            Err(BundleError::TooLarge { .. })
        ));
    }

    #[test]
    fn missing_manifest_has_the_scripts_words() {
        let only_state = write_tgz([("state.tgz", &b"x"[..], 0o644, 0)], 0);
        let e = ConfigBundle::parse(&only_state, &Limits::default()).unwrap_err();
        assert_eq!(e, BundleError::MissingManifest);
        assert_eq!(e.to_string(), "Invalid Bundle: Missing Manifest File");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in [
            &b"/etc/passwd"[..],
            b"../x",
            b"etc/../../x",
            b"a//b",
            b"\xff\xfe",
            b"a\\..\\b",
        ] {
            assert!(safe_path(p).is_err(), "{:?}", String::from_utf8_lossy(p));
        }
        assert_eq!(safe_path(b"./etc/hosts").unwrap(), "etc/hosts");
    }
}
