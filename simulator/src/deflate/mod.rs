//! Gzip streams assembled from independently compressed chunks, so a save compresses only what
//! changed.
//!
//! A save rewrites `local.tgz` whole (backup.sh's `tar czf`), but between two saves of a host
//! most members are byte for byte the same, and most members are the same on every host of a
//! build (the image's files). Compressing the archive from scratch cost ~100 µs a save on 6.x
//! and milliseconds on 7.x, whose ConfigStore database alone is tens of kilobytes; a fleet saves
//! tens of thousands of times a month (BENCHMARKS.md).
//!
//! A deflate stream may be cut into pieces compressed separately: each piece starts from an
//! empty dictionary and ends with a sync flush (an empty stored block that aligns it to a byte),
//! and the pieces are concatenated, with one empty final block after the last. The result is a
//! single ordinary gzip member (one header, one CRC-32 over all the data, one ISIZE) that every
//! inflater reads; it is a little larger than one continuous stream because no piece refers back
//! into another. The CRC-32 of the whole is combined from the pieces' own CRCs.
//!
//! A [`Chunk`] is such a piece with its CRC and length. Chunks of the same bytes are shared
//! through a process-wide cache keyed by content, so an image file is compressed once per
//! process, not once per host and save.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

mod encoder;

/// One separately compressed piece of a deflate stream (byte-aligned, not final).
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Raw deflate blocks ending in a sync flush.
    pub deflated: Box<[u8]>,
    /// CRC-32 of the bytes the piece holds.
    pub crc: u32,
    /// How many bytes it holds.
    pub len: u64,
}

/// Bytes deflated by this process so far (for benchmarks: what a save really compresses).
static DEFLATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn deflated_bytes() -> u64 {
    DEFLATED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The empty final block that ends every stream (`03 00`: BFINAL, fixed codes, end of block).
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

impl Chunk {
    /// `data` deflated (our encoder, `encoder.rs`: about busybox `gzip -6`'s ratio) from an
    /// empty dictionary, ending with a sync flush.
    pub fn deflate(data: &[u8]) -> Chunk {
        DEFLATED.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut w = encoder::Bits::default();
        encoder::encode(data, &mut w);
        Chunk {
            deflated: w.bytes.into_boxed_slice(),
            crc: crc32(data),
            len: data.len() as u64,
        }
    }

    /// `data` in stored (uncompressed) blocks: for bytes that do not compress (ciphertext, an
    /// archive that is already gzip), where deflating would cost time and gain nothing. Its size
    /// is known without looking at the bytes: [`stored_len`].
    pub fn stored(data: &[u8]) -> Chunk {
        let mut out = Vec::with_capacity(stored_len(data.len() as u64) as usize);
        let mut blocks = data.chunks(0xffff).peekable();
        if blocks.peek().is_none() {
            out.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
        }
        for b in blocks {
            let n = b.len() as u16;
            out.push(0); // BFINAL 0, BTYPE 00 (stored), padded to the byte
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(!n).to_le_bytes());
            out.extend_from_slice(b);
        }
        Chunk {
            deflated: out.into_boxed_slice(),
            crc: crc32(data),
            len: data.len() as u64,
        }
    }

    /// A chunk of `data`, from the process-wide cache when the same bytes were deflated before
    /// (by any host), else deflated now and remembered.
    pub fn cached(data: &[u8]) -> Arc<Chunk> {
        let key = (crc32(data), data.len());
        {
            let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
            if let Some(chunk) = cache.get(key, data) {
                return chunk;
            }
        }
        let chunk = Arc::new(Chunk::deflate(data));
        let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(key, Arc::from(data), chunk.clone(), CACHE_BYTES);
        chunk
    }

    /// Heap bytes this chunk holds.
    pub fn heap_bytes(&self) -> usize {
        self.deflated.len() + std::mem::size_of::<Self>()
    }
}

/// The size of [`Chunk::stored`] for `n` bytes: 5 bytes of block header per 65,535.
pub fn stored_len(n: u64) -> u64 {
    n + 5 * n.div_ceil(0xffff).max(1)
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    h.finalize()
}

/// The fields of a gzip header that differ between writers (facts section 6.2: the real 7.0.2
/// `local.tgz` has no name, MTIME 0, XFL 2, OS 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GzipHeader {
    pub mtime: u32,
    /// 0 (flate2 at the default level), 2 ("maximum compression", busybox), 4 ("fastest").
    pub xfl: u8,
}

impl GzipHeader {
    fn bytes(self) -> [u8; 10] {
        let m = self.mtime.to_le_bytes();
        [0x1f, 0x8b, 8, 0, m[0], m[1], m[2], m[3], self.xfl, 3]
    }
}

/// The exact length of the gzip member [`gzip`] makes of these chunks.
pub fn gzip_len<'a>(chunks: impl IntoIterator<Item = &'a Chunk>) -> u64 {
    10 + chunks
        .into_iter()
        .map(|c| c.deflated.len() as u64)
        .sum::<u64>()
        + FINAL_BLOCK.len() as u64
        + 8
}

/// One gzip member of the chunks' bytes, in order: header, the pieces, the final block, the
/// CRC-32 of all of it and its length mod 2^32.
pub fn gzip<'a>(
    header: GzipHeader,
    chunks: impl IntoIterator<Item = &'a Chunk> + Clone,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(gzip_len(chunks.clone()) as usize);
    out.extend_from_slice(&header.bytes());
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    for c in chunks {
        out.extend_from_slice(&c.deflated);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(c.crc, c.len));
        len += c.len;
    }
    out.extend_from_slice(&FINAL_BLOCK);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

/// The process-wide chunk cache: deflated pieces by content, bounded in bytes. Entries keep
/// their raw bytes to tell a CRC collision from a hit.
///
/// Most insertions are one host's own bytes (its keys, its database pages) that no other host
/// will ask for; the few shared pieces (image files, common pages) are asked for by every host.
/// Eviction is second chance (CLOCK): an entry hit since it last came round is kept and goes to
/// the back, so a fleet's stream of one-off pieces flows through without pushing out the
/// shared ones, and the cap can stay small.
struct Cache {
    /// (CRC-32, length) → the raw bytes, their chunk, and whether it was hit lately.
    map: HashMap<(u32, usize), Entry>,
    /// Eviction order (oldest first; a hit entry is moved to the back when it comes round).
    order: std::collections::VecDeque<(u32, usize)>,
    bytes: usize,
}

struct Entry {
    raw: Arc<[u8]>,
    chunk: Arc<Chunk>,
    used: bool,
}

impl Entry {
    fn size(&self) -> usize {
        self.raw.len() + self.chunk.heap_bytes() + 64
    }
}

/// What the cache may hold (raw and deflated bytes): every image file and shared ConfigStore
/// page of all profiles is ~2 MiB; the rest is room for one-off pieces on their way through.
/// (64 MiB before second-chance eviction: a 10,000-host fleet filled it with one-off pieces.)
const CACHE_BYTES: usize = 16 << 20;

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::new()))
}

impl Cache {
    fn new() -> Cache {
        Cache {
            map: HashMap::new(),
            order: std::collections::VecDeque::new(),
            bytes: 0,
        }
    }

    /// The chunk of exactly these bytes, marked as used.
    fn get(&mut self, key: (u32, usize), data: &[u8]) -> Option<Arc<Chunk>> {
        let e = self.map.get_mut(&key).filter(|e| *e.raw == *data)?;
        e.used = true;
        Some(e.chunk.clone())
    }

    fn insert(&mut self, key: (u32, usize), raw: Arc<[u8]>, chunk: Arc<Chunk>, cap: usize) {
        let entry = Entry {
            raw,
            chunk,
            used: false,
        };
        self.bytes += entry.size();
        if let Some(old) = self.map.insert(key, entry) {
            self.bytes -= old.size();
        } else {
            self.order.push_back(key);
        }
        // Each entry comes round at most twice (once to lose its mark), so this ends.
        let mut budget = 2 * self.order.len();
        while self.bytes > cap && budget > 0 {
            budget -= 1;
            let Some(k) = self.order.pop_front() else {
                break;
            };
            match self.map.get_mut(&k) {
                Some(e) if e.used => {
                    e.used = false;
                    self.order.push_back(k);
                }
                Some(_) => {
                    let e = self.map.remove(&k).expect("present");
                    self.bytes -= e.size();
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("a valid gzip member");
        out
    }

    #[test]
    fn one_off_pieces_flow_through_the_cache_without_evicting_shared_ones() {
        let cap = 40_000;
        let mut cache = Cache::new();
        let put = |cache: &mut Cache, data: &[u8]| {
            let key = (crc32(data), data.len());
            cache.insert(key, Arc::from(data), Arc::new(Chunk::deflate(data)), cap);
            key
        };
        let shared = b"an image file every host has\n".repeat(40);
        let shared_key = put(&mut cache, &shared);
        for i in 0..500u32 {
            // Every host asks for the shared piece, and brings one piece of its own.
            assert!(
                cache.get(shared_key, &shared).is_some(),
                "evicted at host {i}"
            );
            let own: Vec<u8> = (0..1000u32).map(|j| (i * 31 + j * 7) as u8).collect();
            put(&mut cache, &own);
            assert!(cache.bytes <= cap, "{} bytes over the cap", cache.bytes);
        }
        // Bytes that differ but collide on (CRC, length) are not a hit.
        assert!(cache.get(shared_key, &vec![0; shared.len()]).is_none());
    }

    #[test]
    fn pieces_make_one_ordinary_gzip_member() {
        let a = b"hello hello hello hello\n".repeat(100);
        let b: Vec<u8> = (0..70_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let c = Vec::new();
        let chunks = [
            Chunk::deflate(&a),
            Chunk::stored(&b),
            Chunk::deflate(&c),
            Chunk::stored(&c),
        ];
        let h = GzipHeader { mtime: 0, xfl: 2 };
        let gz = gzip(h, chunks.iter());
        assert_eq!(gz.len() as u64, gzip_len(chunks.iter()));
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        let mut all = a.clone();
        all.extend_from_slice(&b);
        assert_eq!(
            gunzip(&gz),
            all,
            "flate2's own reader (CRC and ISIZE checked)"
        );
        assert_eq!(chunks[1].deflated.len() as u64, stored_len(b.len() as u64));
        assert_eq!(stored_len(0), 5);
        assert!(chunks[0].deflated.len() < a.len() / 10, "text compresses");
    }

    #[test]
    fn the_cache_shares_equal_content_and_tells_collisions_apart() {
        let data = b"shared image file\n".repeat(50);
        let one = Chunk::cached(&data);
        let two = Chunk::cached(&data.clone());
        assert!(Arc::ptr_eq(&one, &two));
        let other = Chunk::cached(b"something else");
        assert!(!Arc::ptr_eq(&one, &other));
        assert_eq!(
            gunzip(&gzip(GzipHeader { mtime: 0, xfl: 0 }, [&*one])),
            data
        );
    }
}
