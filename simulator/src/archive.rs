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
    pub data: Bytes,
    pub chunks: Vec<Arc<Chunk>>,
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

fn member_chunks(path: &str, mode: u32, mtime: u64, data: &Bytes, stored: bool) -> Vec<Arc<Chunk>> {
    let header = tar_header(path, mode, mtime, data.len() as u64);
    let pad = (512 - data.len() % 512) % 512;
    if stored {
        // Already compressed or encrypted: the header and padding deflated, the data stored.
        let mut v = vec![Arc::new(Chunk::deflate(&header))];
        v.push(Arc::new(Chunk::stored(data)));
        if pad > 0 {
            v.push(Chunk::cached(zeros(pad)));
        }
        return v;
    }
    if data.len() <= SPLIT_ABOVE {
        let mut raw = header;
        raw.extend_from_slice(data);
        raw.extend_from_slice(zeros(pad));
        return vec![Chunk::cached(&raw)];
    }
    let mut v = vec![Chunk::cached(&header)];
    v.extend(data.chunks(PAGE).map(Chunk::cached));
    if pad > 0 {
        v.push(Chunk::cached(zeros(pad)));
    }
    v
}

impl ChunkedTar {
    /// The archive of `members` (path, data, mode, mtime) in order. Pieces of a member that
    /// `previous` holds with the same data (the same allocation), mode and mtime are reused.
    pub fn build<'a>(
        header: GzipHeader,
        members: impl IntoIterator<Item = (&'a str, &'a Bytes, u32, u64)>,
        previous: Option<&ChunkedTar>,
    ) -> ChunkedTar {
        let mut old = previous.map(|p| p.members.iter().peekable());
        let mut out = Vec::new();
        for (path, data, mode, mtime) in members {
            // Both lists are in the same (path) order: walk the old one alongside.
            let reuse = old.as_mut().and_then(|it| {
                while it.peek().is_some_and(|m| m.path.as_str() < path) {
                    it.next();
                }
                it.peek()
                    .filter(|m| {
                        m.path == path
                            && m.mode == mode
                            && m.mtime == mtime
                            && Arc::ptr_eq(&m.data, data)
                    })
                    .map(|m| m.chunks.clone())
            });
            let chunks = reuse.unwrap_or_else(|| member_chunks(path, mode, mtime, data, false));
            out.push(MemberChunks {
                path: path.to_string(),
                mode,
                mtime,
                data: data.clone(),
                chunks,
            });
        }
        ChunkedTar::from_members(header, out)
    }

    /// An archive whose members are stored, not deflated (they are gzip or ciphertext already):
    /// `state.tgz` around `local.tgz`, or around `local.tgz.ve` and `encryption.info`.
    pub fn stored<'a>(
        header: GzipHeader,
        members: impl IntoIterator<Item = (&'a str, &'a Bytes, u32, u64, bool)>,
    ) -> ChunkedTar {
        let members = members
            .into_iter()
            .map(|(path, data, mode, mtime, store)| MemberChunks {
                path: path.to_string(),
                mode,
                mtime,
                data: data.clone(),
                chunks: member_chunks(path, mode, mtime, data, store),
            })
            .collect();
        ChunkedTar::from_members(header, members)
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
        let t = ChunkedTar::build(h, files.iter().map(|(p, d, m, t)| (*p, d, *m, *t)), None);
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
    fn unchanged_members_reuse_their_pieces() {
        let hosts = b(b"127.0.0.1 localhost\n");
        let h = GzipHeader { mtime: 0, xfl: 0 };
        let one = ChunkedTar::build(h, [("etc/hosts", &hosts, 0o644, 1)], None);
        let two = ChunkedTar::build(h, [("etc/hosts", &hosts, 0o644, 1)], Some(&one));
        assert!(Arc::ptr_eq(
            &one.members[0].chunks[0],
            &two.members[0].chunks[0]
        ));
        assert_eq!(one.bytes(), two.bytes());
        // A new mtime is a new header: new bytes.
        let three = ChunkedTar::build(h, [("etc/hosts", &hosts, 0o644, 2)], Some(&one));
        assert_ne!(one.bytes(), three.bytes());
    }

    #[test]
    fn stored_members_are_sized_without_deflating() {
        let payload: Bytes = Arc::from(vec![0x5au8; 70_000].into_boxed_slice());
        let info = b(b"mode = \"NONE\"\n");
        let h = GzipHeader { mtime: 9, xfl: 0 };
        let t = ChunkedTar::stored(
            h,
            [
                ("local.tgz.ve", &payload, 0o644, 9, true),
                ("encryption.info", &info, 0o600, 9, false),
            ],
        );
        let back = read_tgz(&t.bytes(), &Limits::default(), "s").unwrap();
        assert_eq!(back[0].data.len(), 70_000);
        assert_eq!(back[1].data, b"mode = \"NONE\"\n");
        assert_eq!(t.bytes().len() as u64, t.len());
    }
}
