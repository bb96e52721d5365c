//! `tar czf` from cached pieces: a gzip tar whose members are deflated one by one
//! ([`crate::deflate`]), so that a save re-deflates only the members that changed and a
//! member every host shares (an image file, a page of the ConfigStore database) is deflated
//! once per process.
//!
//! The tar is what busybox `tar czf` writes (facts sections 1 and 6.2): GNU headers, owner
//! root (uid/gid 0), no directory entries, each member's data padded to 512 bytes, two zero
//! blocks at the end and no padding to a 10,240-byte record. Only the compression differs from a
//! single deflate stream (pieces do not refer into each other; see `deflate.rs`).

use std::sync::{Arc, OnceLock};

use crate::deflate::{self, Chunk, GzipHeader};
use crate::host::etc::Bytes;

/// Members bigger than this are deflated in pages of [`PAGE`] bytes, each cached by content,
/// so two versions of a database that differ in one page share the rest.
const SPLIT_ABOVE: usize = 16 << 10;
/// SQLite's page size (facts section 6.3: 4,096 in the real stores).
const PAGE: usize = 4096;

/// One member of a tar as its deflated pieces.
#[derive(Clone, Debug)]
pub struct MemberChunks {
    pub path: String,
    pub mode: u32,
    pub mtime: u64,
    /// Its size.
    pub len: u64,
    /// What tells the next save whether it holds the same bytes.
    pub id: MemberId,
    pub chunks: Vec<Arc<Chunk>>,
}

/// How a member's contents are known to be the same as before.
#[derive(Clone, Debug)]
pub enum MemberId {
    /// The very allocation (a file of RAM `/etc`, kept alive by RAM anyway).
    Bytes(Bytes),
    /// A token naming the contents, for bytes made only to be archived (the ConfigStore's
    /// database): the archive then keeps only their pieces, not the bytes.
    Token(u64),
}

impl MemberId {
    fn same(&self, other: &MemberId) -> bool {
        match (self, other) {
            (MemberId::Bytes(a), MemberId::Bytes(b)) => Arc::ptr_eq(a, b),
            (MemberId::Token(a), MemberId::Token(b)) => a == b,
            _ => false,
        }
    }
}

/// What an archive is asked to hold for a member.
pub enum Contents<'a> {
    /// Bytes in memory.
    Bytes(&'a Bytes),
    /// Bytes named by a token, made only if the previous archive does not hold them.
    Made {
        token: u64,
        make: &'a dyn Fn() -> Bytes,
    },
}

impl Contents<'_> {
    fn id(&self) -> MemberId {
        match self {
            Contents::Bytes(b) => MemberId::Bytes((*b).clone()),
            Contents::Made { token, .. } => MemberId::Token(*token),
        }
    }
}

/// A gzip tar held as pieces; its bytes are made on demand ([`ChunkedTar::bytes`]) and its
/// length is known without making them.
#[derive(Clone, Debug)]
pub struct ChunkedTar {
    pub header: GzipHeader,
    pub members: Vec<MemberChunks>,
    len: u64,
}

/// The tar headers (a GNU long-name record first when the path needs one) of one member.
pub fn tar_header(path: &str, mode: u32, mtime: u64, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    // Names are ours or already checked to be plain relative paths (etc::normalize); an
    // impossible name here would be a programming mistake, surfaced by the tar crate below.
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    if path.len() < 100 && path.is_ascii() {
        // One header block, as the builder below would write it (GNU long names need it).
        if h.set_path(path).is_ok() {
            h.set_cksum();
            return h.as_bytes().to_vec();
        }
    }
    let mut b = tar::Builder::new(Vec::with_capacity(1024));
    b.mode(tar::HeaderMode::Complete);
    b.append_data(&mut h, path, std::io::empty())
        .expect("appending to an in-memory tar cannot fail");
    let mut v = b.into_inner().expect("in-memory tar");
    v.truncate(v.len() - 1024); // the end-of-archive blocks
    v
}

fn zeros(n: usize) -> &'static [u8] {
    static Z: [u8; 1024] = [0; 1024];
    &Z[..n]
}

/// The two zero blocks that end a tar.
fn end_of_archive() -> Arc<Chunk> {
    static END: OnceLock<Arc<Chunk>> = OnceLock::new();
    END.get_or_init(|| Arc::new(Chunk::deflate(zeros(1024))))
        .clone()
}

/// A member's pieces: its tar header, its data (in pages when big), its padding; each cached by
/// content, so that what hosts share (a header: same path, mode, mtime and size; an image file;
/// a database page) is deflated once per process.
fn member_chunks(path: &str, mode: u32, mtime: u64, data: &Bytes) -> Vec<Arc<Chunk>> {
    let header = tar_header(path, mode, mtime, data.len() as u64);
    let pad = (512 - data.len() % 512) % 512;
    let mut v = vec![Chunk::cached(&header)];
    if data.len() <= SPLIT_ABOVE {
        if !data.is_empty() {
            v.push(Chunk::cached(data));
        }
    } else {
        v.extend(data.chunks(PAGE).map(Chunk::cached));
    }
    if pad > 0 {
        v.push(padding_chunk(pad));
    }
    v
}

impl ChunkedTar {
    /// The archive of `members` (path, contents, mode, mtime) in order. Pieces of a member
    /// that `previous` holds with the same contents, mode and mtime are reused.
    pub fn build<'a>(
        header: GzipHeader,
        members: impl IntoIterator<Item = (&'a str, Contents<'a>, u32, u64)>,
        previous: Option<&ChunkedTar>,
    ) -> ChunkedTar {
        let mut old = previous.map(|p| p.members.iter().peekable());
        let mut out = Vec::new();
        for (path, contents, mode, mtime) in members {
            let id = contents.id();
            // Both lists are in the same (path) order: walk the old one alongside.
            let reuse = old.as_mut().and_then(|it| {
                while it.peek().is_some_and(|m| m.path.as_str() < path) {
                    it.next();
                }
                it.peek()
                    .filter(|m| {
                        m.path == path && m.mode == mode && m.mtime == mtime && m.id.same(&id)
                    })
                    .map(|m| (m.chunks.clone(), m.len))
            });
            let (chunks, len) = reuse.unwrap_or_else(|| {
                let data = match &contents {
                    Contents::Bytes(b) => (*b).clone(),
                    Contents::Made { make, .. } => make(),
                };
                (member_chunks(path, mode, mtime, &data), data.len() as u64)
            });
            out.push(MemberChunks {
                path: path.to_string(),
                mode,
                mtime,
                len,
                id,
                chunks,
            });
        }
        ChunkedTar::from_members(header, out)
    }

    fn from_members(header: GzipHeader, members: Vec<MemberChunks>) -> ChunkedTar {
        let end = end_of_archive();
        let len = deflate::gzip_len(
            members
                .iter()
                .flat_map(|m| m.chunks.iter().map(|c| &**c))
                .chain(std::iter::once(&*end)),
        );
        ChunkedTar {
            header,
            members,
            len,
        }
    }

    /// The exact length of [`ChunkedTar::bytes`].
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The archive's gzip bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let end = end_of_archive();
        deflate::gzip(
            self.header,
            self.members
                .iter()
                .flat_map(|m| m.chunks.iter().map(|c| &**c))
                .chain(std::iter::once(&*end)),
        )
    }

    /// Heap bytes of the pieces this archive alone holds (not shared with another archive or
    /// the cache), roughly: for memory figures.
    pub fn owned_bytes(&self) -> usize {
        self.members
            .iter()
            .flat_map(|m| m.chunks.iter())
            .filter(|c| Arc::strong_count(c) == 1)
            .map(|c| c.heap_bytes())
            .sum()
    }
}

/// A tar of members that are already compressed or encrypted (`state.tgz` around
/// `local.tgz`, or around `local.tgz.ve` and `encryption.info`), planned before their bytes
/// exist: headers and padding are deflated now, each payload is stored (not deflated: it would
/// not shrink) when the bytes are made. Its length is exact from the plan.
#[derive(Clone, Debug)]
pub struct StoredTar {
    header: GzipHeader,
    parts: Vec<Part>,
    len: u64,
}

#[derive(Clone, Debug)]
enum Part {
    Piece(Arc<Chunk>),
    /// The `index`-th payload, `len` bytes, stored.
    Payload(usize, u64),
}

impl StoredTar {
    /// Plans the tar of these members (path, size, mode, mtime), in order.
    pub fn plan(header: GzipHeader, members: &[(&str, u64, u32, u64)]) -> StoredTar {
        let mut parts = Vec::new();
        for (i, (path, size, mode, mtime)) in members.iter().enumerate() {
            parts.push(Part::Piece(Arc::new(Chunk::deflate(&tar_header(
                path, *mode, *mtime, *size,
            )))));
            parts.push(Part::Payload(i, *size));
            let pad = ((512 - size % 512) % 512) as usize;
            if pad > 0 {
                parts.push(Part::Piece(padding_chunk(pad)));
            }
        }
        parts.push(Part::Piece(end_of_archive()));
        let len = 10
            + parts
                .iter()
                .map(|p| match p {
                    Part::Piece(c) => c.deflated.len() as u64,
                    Part::Payload(_, n) => deflate::stored_len(*n),
                })
                .sum::<u64>()
            + 2
            + 8;
        StoredTar { header, parts, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.parts.len() <= 1
    }

    /// The gzip bytes, given the payloads in member order (each exactly its planned size).
    pub fn bytes(&self, payloads: &[&[u8]]) -> Vec<u8> {
        let stored: Vec<Chunk> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Payload(i, n) => {
                    assert_eq!(
                        payloads[*i].len() as u64,
                        *n,
                        "payload {i} is its planned size"
                    );
                    Some(Chunk::stored(payloads[*i]))
                }
                Part::Piece(_) => None,
            })
            .collect();
        let mut stored = stored.iter();
        let chunks: Vec<&Chunk> = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Piece(c) => &**c,
                Part::Payload(..) => stored.next().expect("one stored chunk per payload"),
            })
            .collect();
        let out = deflate::gzip(self.header, chunks.iter().copied());
        debug_assert_eq!(out.len() as u64, self.len);
        out
    }
}

/// Zero padding of `n` bytes (0..512) as a chunk, made once per length.
fn padding_chunk(n: usize) -> Arc<Chunk> {
    static PADS: OnceLock<Vec<Arc<Chunk>>> = OnceLock::new();
    PADS.get_or_init(|| {
        (0..512)
            .map(|n| Arc::new(Chunk::deflate(zeros(n))))
            .collect()
    })[n]
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{read_tgz, Limits};

    fn b(s: &[u8]) -> Bytes {
        Arc::from(s)
    }

    #[test]
    fn a_chunked_tar_reads_back_like_tar_czf_wrote_it() {
        let big: Vec<u8> = (0..40_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let files = [
            (
                "etc/hosts",
                b(b"127.0.0.1 localhost\n"),
                0o644,
                1_700_000_000,
            ),
            ("etc/random-seed", b(&[7u8; 512]), 0o1600, 1_700_000_001),
            (
                "var/lib/vmware/configstore/backup/current-store-1",
                Arc::from(big.clone().into_boxed_slice()),
                0o644,
                5,
            ),
            ("etc/empty", b(b""), 0o600, 0),
        ];
        let h = GzipHeader { mtime: 0, xfl: 2 };
        let t = ChunkedTar::build(
            h,
            files
                .iter()
                .map(|(p, d, m, t)| (*p, Contents::Bytes(d), *m, *t)),
            None,
        );
        let bytes = t.bytes();
        assert_eq!(bytes.len() as u64, t.len());
        let back = read_tgz(&bytes, &Limits::default(), "t").unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back[1].mode, 0o1600, "the sticky bit survives");
        assert_eq!(back[2].data, big);
        assert_eq!(back[0].mtime, 1_700_000_000);
        // The tar inside is GNU, no record padding: headers, data padded to 512, two zero blocks.
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw)
            .unwrap();
        assert_eq!(&raw[257..265], b"ustar  \0");
        assert_eq!(
            raw.len(),
            512 + 512 + 512 + 512 + 512 + 160_256 + 512 + 1024
        );
    }

    #[test]
    fn short_and_long_names_get_the_builders_headers() {
        for path in ["etc/hosts", &format!("etc/{}", "d/".repeat(60)) as &str] {
            let ours = tar_header(path, 0o600, 7, 42);
            let mut h = tar::Header::new_gnu();
            h.set_size(42);
            h.set_mode(0o600);
            h.set_mtime(7);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_username("root").unwrap();
            h.set_groupname("root").unwrap();
            let mut b = tar::Builder::new(Vec::new());
            b.mode(tar::HeaderMode::Complete);
            b.append_data(&mut h, path, std::io::empty()).unwrap();
            let mut v = b.into_inner().unwrap();
            v.truncate(v.len() - 1024);
            assert_eq!(ours, v, "{path}");
        }
    }

    #[test]
    fn unchanged_members_reuse_their_pieces() {
        let hosts = b(b"127.0.0.1 localhost\n");
        let h = GzipHeader { mtime: 0, xfl: 0 };
        let one = ChunkedTar::build(h, [("etc/hosts", Contents::Bytes(&hosts), 0o644, 1)], None);
        let two = ChunkedTar::build(
            h,
            [("etc/hosts", Contents::Bytes(&hosts), 0o644, 1)],
            Some(&one),
        );
        assert!(Arc::ptr_eq(
            &one.members[0].chunks[0],
            &two.members[0].chunks[0]
        ));
        assert_eq!(one.bytes(), two.bytes());
        // A new mtime is a new header: new bytes.
        let three = ChunkedTar::build(
            h,
            [("etc/hosts", Contents::Bytes(&hosts), 0o644, 2)],
            Some(&one),
        );
        // A token names made bytes: the same token reuses the pieces without making them.
        let made = || -> Bytes { panic!("not made again") };
        let first = || -> Bytes { Arc::from(&b"database"[..]) };
        let a = ChunkedTar::build(
            h,
            [(
                "db",
                Contents::Made {
                    token: 7,
                    make: &first,
                },
                0o644,
                1,
            )],
            None,
        );
        let b = ChunkedTar::build(
            h,
            [(
                "db",
                Contents::Made {
                    token: 7,
                    make: &made,
                },
                0o644,
                1,
            )],
            Some(&a),
        );
        assert_eq!(a.bytes(), b.bytes());
        assert_ne!(one.bytes(), three.bytes());
    }

    #[test]
    fn a_stored_tar_is_sized_before_its_payloads_exist() {
        let payload = vec![0x5au8; 70_000];
        let info = b"mode = \"NONE\"\n".to_vec();
        let h = GzipHeader { mtime: 9, xfl: 0 };
        let plan = StoredTar::plan(
            h,
            &[
                ("local.tgz.ve", payload.len() as u64, 0o644, 9),
                ("encryption.info", info.len() as u64, 0o600, 9),
            ],
        );
        let bytes = plan.bytes(&[&payload, &info]);
        assert_eq!(bytes.len() as u64, plan.len());
        let back = read_tgz(&bytes, &Limits::default(), "s").unwrap();
        assert_eq!(back[0].data.len(), 70_000);
        assert_eq!(back[1].data, info);
        assert_eq!(back[1].mode, 0o600);
    }
}
