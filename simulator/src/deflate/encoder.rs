//! A small deflate encoder (RFC 1951) for the pieces of `deflate.rs`: one block per piece,
//! LZ77 with hash chains and one-step lazy matching, and whichever of stored, fixed or dynamic
//! Huffman codes is smallest, the dynamic codes length-limited by package-merge (optimal).
//!
//! Why our own: the pieces are small (a file of `/etc`, a 4 KiB database page) and a general
//! compressor pays for its size on each: miniz re-zeroes ~300 KiB of tables per piece, which
//! was most of a save's time. This keeps a 4,096-entry hash head (16 KiB) and chains sized to
//! the piece. Its output is ordinary deflate, checked against miniz's and zlib's inflaters.

/// Longest hash chain walked per position (zlib's level 6 walks 128; small pieces need less).
const MAX_CHAIN: usize = 8;
/// Stop searching once a match this long is found (zlib level 6: 128).
const NICE: usize = 128;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const WINDOW: usize = 32 * 1024;
const HASH_BITS: u32 = 12;

/// LSB-first bit writer.
#[derive(Default)]
pub(super) struct Bits {
    pub bytes: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    /// `count` (at most 32) bits of `value`, least significant first.
    #[inline]
    pub fn put(&mut self, value: u32, count: u32) {
        self.acc |= (value as u64) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.bytes
                .extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }
    /// A Huffman code already bit-reversed by [`canonical`] (codes go most significant bit
    /// first, RFC 1951 3.1.1).
    #[inline]
    pub fn code(&mut self, reversed: u16, len: u8) {
        self.put(reversed as u32, len as u32);
    }
    pub fn align(&mut self) {
        while self.n > 0 {
            self.bytes.push(self.acc as u8);
            self.acc >>= 8;
            self.n = self.n.saturating_sub(8);
        }
        self.acc = 0;
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order code-length code lengths are sent in.
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

fn len_symbol(len: usize) -> usize {
    if len == MAX_MATCH {
        return 28;
    }
    LEN_BASE.partition_point(|&b| b as usize <= len) - 1
}

fn dist_symbol(dist: usize) -> usize {
    DIST_BASE.partition_point(|&b| b as usize <= dist) - 1
}

/// A literal (`dist == 0`) or a match.
#[derive(Clone, Copy)]
struct Sym {
    len: u16,
    dist: u16,
    lit: u8,
}

fn hash3(d: &[u8]) -> usize {
    let v = (d[0] as u32) | (d[1] as u32) << 8 | (d[2] as u32) << 16;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// Don't look for a longer match one byte on after one this long (zlib's max_lazy).
const MAX_LAZY: usize = 8;
/// When the match to beat is this long already, walk a quarter of the chain (zlib's
/// good_length).
const GOOD: usize = 4;

/// The hash heads, reused between pieces. Entries hold `epoch + position`; anything below the
/// current piece's epoch is a stale entry of an earlier piece, so the table is never cleared.
struct Tables {
    head: Vec<u32>,
    prev: Vec<u32>,
    epoch: u32,
}

thread_local! {
    static TABLES: std::cell::RefCell<Tables> = std::cell::RefCell::new(Tables {
        head: vec![0; 1 << HASH_BITS],
        prev: Vec::new(),
        epoch: 1,
    });
}

/// How many leading bytes of `a` and `b` are equal (8 at a time).
fn common(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("8"));
        let y = u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
        let d = x ^ y;
        if d != 0 {
            return i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// LZ77 with hash chains and one-step lazy matching (as zlib's deflate_slow).
fn lz77(data: &[u8]) -> Vec<Sym> {
    TABLES.with(|cell| {
        let mut t = cell.borrow_mut();
        let n = data.len();
        // A new epoch past every position the last piece stored.
        if (t.epoch as u64) + (n as u64) + 1 >= u32::MAX as u64 {
            t.head.fill(0);
            t.epoch = 1;
        }
        let epoch = t.epoch;
        t.epoch += n as u32 + 1;
        if t.prev.len() < n {
            t.prev.resize(n, 0);
        }
        let Tables { head, prev, .. } = &mut *t;
        lz77_with(data, head, prev, epoch)
    })
}

fn lz77_with(data: &[u8], head: &mut [u32], prev: &mut [u32], epoch: u32) -> Vec<Sym> {
    let n = data.len();
    let mut out = Vec::with_capacity(n / 3 + 16);
    // Stored values are epoch + position; 0 and anything below the epoch mean "none".
    let insert = |head: &mut [u32], prev: &mut [u32], i: usize| {
        if i + MIN_MATCH <= n {
            let h = hash3(&data[i..]);
            prev[i] = head[h];
            head[h] = epoch + i as u32;
        }
    };
    let longest = |head: &[u32], prev: &[u32], i: usize, beat: usize| -> (usize, usize) {
        if i + MIN_MATCH > n {
            return (0, 0);
        }
        let max = (n - i).min(MAX_MATCH);
        if beat >= max {
            return (0, 0); // nothing here can be longer
        }
        let mut best = (beat.max(MIN_MATCH - 1), 0);
        let mut cand = head[hash3(&data[i..])];
        let mut chain = if beat >= GOOD {
            MAX_CHAIN / 4
        } else {
            MAX_CHAIN
        };
        while cand >= epoch && chain > 0 {
            let c = (cand - epoch) as usize;
            if c >= i || i - c > WINDOW {
                break;
            }
            // Only a longer match can win: check its last byte first.
            if data[c + best.0] == data[i + best.0] {
                let l = common(&data[c..c + max], &data[i..i + max]);
                if l > best.0 {
                    best = (l, i - c);
                    if l >= NICE || l == max {
                        break;
                    }
                }
            }
            cand = prev[c];
            chain -= 1;
        }
        if best.1 == 0 {
            (0, 0)
        } else {
            best
        }
    };
    // The positions inside a match: all of a short one, only the last few of a long one
    // (zeros and repeated text need no more; zlib's fast levels do the same).
    let insert_span = |head: &mut [u32], prev: &mut [u32], at: usize, len: usize| {
        let skip_to = if len > 32 { at + len - 3 } else { at + 1 };
        for j in skip_to..at + len {
            insert(head, prev, j);
        }
    };
    let mut i = 0;
    // LZ4's acceleration: after a run of positions that matched nothing (a key, random bytes)
    // skip ahead, searching and remembering fewer positions, until something matches again.
    let mut misses = 0usize;
    let mut matched = false;
    while i < n {
        // Nothing matched in the first 256 bytes (a key, random bytes): the rest is coded as
        // literals, Huffman only, as zlib's Z_HUFFMAN_ONLY would.
        if i >= 256 && !matched {
            out.extend(data[i..].iter().map(|&b| Sym {
                len: 0,
                dist: 0,
                lit: b,
            }));
            break;
        }
        if misses > 64 {
            let step = (misses / 64).min(8);
            for _ in 0..step.min(n - i) {
                out.push(Sym {
                    len: 0,
                    dist: 0,
                    lit: data[i],
                });
                i += 1;
            }
            misses += step;
            if i >= n {
                break;
            }
        }
        let (len, dist) = longest(head, prev, i, 0);
        insert(head, prev, i);
        if len >= MIN_MATCH {
            misses = 0;
            matched = true;
        } else {
            misses += 1;
        }
        if (MIN_MATCH..MAX_LAZY).contains(&len) && i + 1 < n {
            // Lazy: a longer match one byte on makes this byte a literal.
            let (len2, dist2) = longest(head, prev, i + 1, len);
            if len2 > len {
                out.push(Sym {
                    len: 0,
                    dist: 0,
                    lit: data[i],
                });
                i += 1;
                insert(head, prev, i);
                out.push(Sym {
                    len: len2 as u16,
                    dist: dist2 as u16,
                    lit: 0,
                });
                insert_span(head, prev, i, len2);
                i += len2;
                continue;
            }
        }
        if len >= MIN_MATCH {
            out.push(Sym {
                len: len as u16,
                dist: dist as u16,
                lit: 0,
            });
            insert_span(head, prev, i, len);
            i += len;
        } else {
            out.push(Sym {
                len: 0,
                dist: 0,
                lit: data[i],
            });
            i += 1;
        }
    }
    out
}

/// Huffman code lengths of at most `limit` bits: Moffat and Katajainen's in-place minimum
/// redundancy lengths over the sorted frequencies, then, if a length exceeds the limit, the
/// length histogram pulled back under it as miniz and zlib do (near-optimal, always a complete
/// code). Unused symbols get 0; a lone used symbol gets length 1.
pub(super) fn code_lengths(freqs: &[u32], limit: u8) -> Vec<u8> {
    let mut syms: Vec<(u32, u16)> = freqs
        .iter()
        .enumerate()
        .filter(|(_, &f)| f > 0)
        .map(|(s, &f)| (f, s as u16))
        .collect();
    let mut lengths = vec![0u8; freqs.len()];
    let n = syms.len();
    match n {
        0 => return lengths,
        1 => {
            lengths[syms[0].1 as usize] = 1;
            return lengths;
        }
        _ => {}
    }
    syms.sort_unstable();
    // Moffat & Katajainen, "In-place calculation of minimum-redundancy codes" (1995).
    let mut a: Vec<u64> = syms.iter().map(|&(f, _)| f as u64).collect();
    a[0] += a[1];
    let (mut root, mut leaf) = (0usize, 2usize);
    for next in 1..n - 1 {
        if leaf >= n || a[root] < a[leaf] {
            a[next] = a[root];
            a[root] = next as u64;
            root += 1;
        } else {
            a[next] = a[leaf];
            leaf += 1;
        }
        if leaf >= n || (root < next && a[root] < a[leaf]) {
            a[next] += a[root];
            a[root] = next as u64;
            root += 1;
        } else {
            a[next] += a[leaf];
            leaf += 1;
        }
    }
    a[n - 2] = 0;
    for next in (0..n - 2).rev() {
        a[next] = a[a[next] as usize] + 1;
    }
    let (mut avail, mut used, mut depth) = (1i64, 0i64, 0u64);
    let (mut root, mut next) = (n as i64 - 2, n as i64 - 1);
    while avail > 0 {
        while root >= 0 && a[root as usize] == depth {
            used += 1;
            root -= 1;
        }
        while avail > used {
            a[next as usize] = depth;
            next -= 1;
            avail -= 1;
        }
        avail = 2 * used;
        depth += 1;
        used = 0;
    }
    // a[i] is now the length of the i-th least frequent symbol (non-increasing in i).
    let max = a[0] as usize;
    let limit = limit as usize;
    let mut count = vec![0u32; max.max(limit) + 1];
    for &l in &a {
        count[l as usize] += 1;
    }
    if max > limit {
        for l in limit + 1..=max {
            count[limit] += count[l];
            count[l] = 0;
        }
        let mut total: u64 = (1..=limit).map(|l| (count[l] as u64) << (limit - l)).sum();
        while total != 1u64 << limit {
            count[limit] -= 1;
            for l in (1..limit).rev() {
                if count[l] != 0 {
                    count[l] -= 1;
                    count[l + 1] += 2;
                    break;
                }
            }
            total -= 1;
        }
    }
    // The least frequent symbols get the longest codes.
    let mut i = 0;
    for l in (1..=limit.max(max)).rev() {
        for _ in 0..count[l] {
            lengths[syms[i].1 as usize] = l as u8;
            i += 1;
        }
    }
    lengths
}

/// Canonical codes for lengths (RFC 1951 3.2.2), bit-reversed.
pub(super) fn canonical(lengths: &[u8]) -> Vec<u16> {
    let max = lengths.iter().copied().max().unwrap_or(0) as usize;
    let mut count = vec![0u16; max + 1];
    for &l in lengths {
        if l > 0 {
            count[l as usize] += 1;
        }
    }
    let mut next = vec![0u16; max + 2];
    let mut code = 0u16;
    for bits in 1..=max {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                0
            } else {
                let c = next[l as usize];
                next[l as usize] += 1;
                // Stored bit-reversed, ready for the LSB-first writer.
                ((c as u32).reverse_bits() >> (32 - l as u32)) as u16
            }
        })
        .collect()
}

/// The fixed codes (RFC 1951 3.2.6): lengths and canonical codes, made once.
struct Fixed {
    ll: Vec<u8>,
    dl: Vec<u8>,
    lc: Vec<u16>,
    dc: Vec<u16>,
}

fn fixed() -> &'static Fixed {
    static F: std::sync::OnceLock<Fixed> = std::sync::OnceLock::new();
    F.get_or_init(|| {
        let mut ll = vec![8u8; 288];
        ll[144..256].fill(9);
        ll[256..280].fill(7);
        let dl = vec![5u8; 30];
        Fixed {
            lc: canonical(&ll),
            dc: canonical(&dl),
            ll,
            dl,
        }
    })
}

/// Pieces smaller than this are coded with the fixed codes (or stored): building dynamic
/// codes costs more than it saves on a few hundred bytes (a tar header, a short file).
const DYNAMIC_FROM: usize = 1024;

/// The code-length sequence of a dynamic header as RLE symbols (symbol, extra bits value).
fn rle(lengths: &[u8]) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lengths.len() {
        let l = lengths[i];
        let run = lengths[i..].iter().take_while(|&&x| x == l).count();
        if l == 0 && run >= 3 {
            let r = run.min(138);
            if r >= 11 {
                out.push((18, (r - 11) as u8));
            } else {
                out.push((17, (r - 3) as u8));
            }
            i += r;
        } else if l != 0 && run >= 4 {
            out.push((l, 0));
            let r = (run - 1).min(6);
            out.push((16, (r - 3) as u8));
            i += 1 + r;
        } else {
            out.push((l, 0));
            i += 1;
        }
    }
    out
}

/// Appends `data` to `w` as one non-final deflate block (the smallest of stored, fixed and
/// dynamic codes) followed by a sync flush (an empty stored block, byte-aligned).
pub(super) fn encode(data: &[u8], w: &mut Bits) {
    let syms = lz77(data);
    let mut lf = [0u32; 286];
    let mut df = [0u32; 30];
    for s in &syms {
        if s.dist == 0 {
            lf[s.lit as usize] += 1;
        } else {
            lf[257 + len_symbol(s.len as usize)] += 1;
            df[dist_symbol(s.dist as usize)] += 1;
        }
    }
    lf[256] = 1;
    // The cost of the symbols in bits under given lengths.
    let cost = |ll: &[u8], dl: &[u8]| -> u64 {
        let mut bits = 0u64;
        for (s, &f) in lf.iter().enumerate() {
            if f > 0 {
                bits += f as u64 * ll[s] as u64;
                if s >= 257 {
                    bits += f as u64 * LEN_EXTRA[s - 257] as u64;
                }
            }
        }
        for (s, &f) in df.iter().enumerate() {
            if f > 0 {
                bits += f as u64 * (dl[s] as u64 + DIST_EXTRA[s] as u64);
            }
        }
        bits
    };
    let fx = fixed();
    let fixed_bits = 3 + cost(&fx.ll, &fx.dl);
    let stored_bits = 8 * (data.len() as u64 + 5 * data.len().div_ceil(0xffff).max(1) as u64) + 7;
    let dynamic = (data.len() >= DYNAMIC_FROM).then(|| dynamic_codes(&lf, &df));
    let dynamic_bits = dynamic
        .as_ref()
        .map_or(u64::MAX, |d| 3 + d.header_bits + cost(&d.ll, &d.dl));
    if stored_bits <= fixed_bits && stored_bits <= dynamic_bits {
        let mut blocks = data.chunks(0xffff).peekable();
        if blocks.peek().is_none() {
            w.put(0, 3);
            w.align();
            w.bytes.extend_from_slice(&[0, 0, 0xff, 0xff]);
        }
        for b in blocks {
            w.put(0, 3); // BFINAL 0, BTYPE 00
            w.align();
            let n = b.len() as u16;
            w.bytes.extend_from_slice(&n.to_le_bytes());
            w.bytes.extend_from_slice(&(!n).to_le_bytes());
            w.bytes.extend_from_slice(b);
        }
        return sync(w);
    }
    let owned;
    let (ll, dl, lc, dc): (&[u8], &[u8], &[u16], &[u16]) = match dynamic {
        Some(d) if dynamic_bits < fixed_bits => {
            w.put(0, 1);
            w.put(2, 2);
            d.write_header(w);
            owned = d;
            (&owned.ll, &owned.dl, &owned.lc, &owned.dc)
        }
        _ => {
            w.put(0, 1);
            w.put(1, 2);
            (&fx.ll, &fx.dl, &fx.lc, &fx.dc)
        }
    };
    for s in &syms {
        if s.dist == 0 {
            w.code(lc[s.lit as usize], ll[s.lit as usize]);
        } else {
            let ls = len_symbol(s.len as usize);
            w.code(lc[257 + ls], ll[257 + ls]);
            w.put((s.len - LEN_BASE[ls]) as u32, LEN_EXTRA[ls] as u32);
            let ds = dist_symbol(s.dist as usize);
            w.code(dc[ds], dl[ds]);
            w.put((s.dist - DIST_BASE[ds]) as u32, DIST_EXTRA[ds] as u32);
        }
    }
    w.code(lc[256], ll[256]);
    sync(w)
}

/// A block's dynamic codes and how its header describes them.
struct Dynamic {
    ll: Vec<u8>,
    dl: Vec<u8>,
    lc: Vec<u16>,
    dc: Vec<u16>,
    hlit: usize,
    hdist: usize,
    hclen: usize,
    cl: Vec<u8>,
    runs: Vec<(u8, u8)>,
    header_bits: u64,
}

fn dynamic_codes(lf: &[u32], df: &[u32]) -> Dynamic {
    let ll = code_lengths(lf, 15);
    let mut dl = code_lengths(df, 15);
    if dl.iter().all(|&l| l == 0) {
        dl[0] = 1; // at least one distance code must be described
    }
    let hlit = (257..=286).rev().find(|&n| ll[n - 1] != 0).unwrap_or(257);
    let hdist = (1..=30).rev().find(|&n| dl[n - 1] != 0).unwrap_or(1);
    let mut seq: Vec<u8> = ll[..hlit].to_vec();
    seq.extend_from_slice(&dl[..hdist]);
    let runs = rle(&seq);
    let mut cf = [0u32; 19];
    for &(s, _) in &runs {
        cf[s as usize] += 1;
    }
    let cl = code_lengths(&cf, 7);
    let hclen = (4..=19)
        .rev()
        .find(|&n| cl[CL_ORDER[n - 1]] != 0)
        .unwrap_or(4);
    let header_bits: u64 = 5
        + 5
        + 4
        + 3 * hclen as u64
        + runs
            .iter()
            .map(|&(s, _)| {
                cl[s as usize] as u64
                    + match s {
                        16 => 2,
                        17 => 3,
                        18 => 7,
                        _ => 0,
                    }
            })
            .sum::<u64>();
    Dynamic {
        lc: canonical(&ll),
        dc: canonical(&dl),
        ll,
        dl,
        hlit,
        hdist,
        hclen,
        cl,
        runs,
        header_bits,
    }
}

impl Dynamic {
    fn write_header(&self, w: &mut Bits) {
        w.put((self.hlit - 257) as u32, 5);
        w.put((self.hdist - 1) as u32, 5);
        w.put((self.hclen - 4) as u32, 4);
        for &i in &CL_ORDER[..self.hclen] {
            w.put(self.cl[i] as u32, 3);
        }
        let cc = canonical(&self.cl);
        for &(s, extra) in &self.runs {
            w.code(cc[s as usize], self.cl[s as usize]);
            match s {
                16 => w.put(extra as u32, 2),
                17 => w.put(extra as u32, 3),
                18 => w.put(extra as u32, 7),
                _ => {}
            }
        }
    }
}

/// An empty stored block: the stream continues byte-aligned after it.
fn sync(w: &mut Bits) {
    w.put(0, 3);
    w.align();
    w.bytes.extend_from_slice(&[0, 0, 0xff, 0xff]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(raw: &[u8]) -> Vec<u8> {
        // The pieces are not final: add the final empty block an assembled stream ends with.
        let mut stream = raw.to_vec();
        stream.extend_from_slice(&[3, 0]);
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&stream[..])
            .read_to_end(&mut out)
            .expect("valid deflate");
        out
    }

    fn roundtrip(data: &[u8]) -> usize {
        let mut w = Bits::default();
        encode(data, &mut w);
        assert_eq!(inflate(&w.bytes), data, "{} bytes", data.len());
        w.bytes.len()
    }

    #[test]
    fn edge_cases_inflate() {
        roundtrip(b"");
        roundtrip(b"a");
        roundtrip(b"ab");
        roundtrip(b"aaa");
        roundtrip(&[0; 100_000]);
        roundtrip(&(0..=255).collect::<Vec<u8>>());
        let random: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        roundtrip(&random);
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..300 {
            let n = rng.below(3000) as usize;
            let alphabet = 1 + rng.below(20) as u8;
            let v: Vec<u8> = (0..n)
                .map(|_| b'a' + (rng.below(alphabet as u64) as u8))
                .collect();
            roundtrip(&v);
        }
    }

    #[test]
    fn it_compresses_about_as_well_as_miniz_level_6() {
        let text = crate::host::image::Image::for_profile(
            &crate::profile::Profile::named("8.0U3").unwrap(),
        );
        let mut ours = 0;
        let mut miniz = 0;
        for n in text.files.values() {
            ours += roundtrip(&n.data);
            let mut z = flate2::Compress::new(flate2::Compression::default(), false);
            let mut out = Vec::with_capacity(n.data.len() + 64);
            z.compress_vec(&n.data, &mut out, flate2::FlushCompress::Sync)
                .unwrap();
            miniz += out.len();
        }
        assert!(
            ours <= miniz + miniz / 20,
            "ours {ours} bytes vs miniz {miniz}: within 5%"
        );
    }

    #[test]
    fn lengths_are_limited_and_complete() {
        // Fibonacci frequencies make the deepest unlimited trees.
        let mut f = vec![1u32, 1];
        while f.len() < 40 {
            let n = f[f.len() - 1] + f[f.len() - 2];
            f.push(n);
        }
        for limit in [7u8, 15] {
            let l = code_lengths(&f, limit);
            assert!(l.iter().all(|&x| x >= 1 && x <= limit));
            let kraft: f64 = l.iter().map(|&x| 0.5f64.powi(x as i32)).sum();
            assert!((kraft - 1.0).abs() < 1e-9, "complete code: {kraft}");
        }
        assert_eq!(code_lengths(&[0, 5, 0], 15), vec![0, 1, 0]);
    }
}
