//! Small helpers over the seeded RNG, and the byte-level mutations every target applies after
//! its structure-aware generation (as AFL's havoc stage does, without the coverage map).

use esxi_sim::rng::Rng;

/// True with probability `num / den`.
pub fn chance(rng: &mut Rng, num: u64, den: u64) -> bool {
    rng.below(den) < num
}

/// Uniform in `lo..=hi`.
pub fn between(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + rng.below((hi - lo + 1) as u64) as usize
}

pub fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

/// A length that is usually small and sometimes large: 0..=max, skewed towards 0.
pub fn skewed(rng: &mut Rng, max: usize) -> usize {
    let bits = rng.below(usize::BITS as u64 + 1) as u32;
    let cap = if bits >= usize::BITS {
        max
    } else {
        ((1usize << bits) - 1).min(max)
    };
    rng.below(cap as u64 + 1) as usize
}

/// Byte values that tend to matter to parsers.
const INTERESTING8: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b' ', b'\n', b'/', b'.'];
const INTERESTING64: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
];

/// Applies 1 to `max_ops` random byte-level mutations, inserting tokens from `dict` (markup,
/// keywords) among them, keeping the result at most `max_len` bytes.
pub fn havoc(rng: &mut Rng, data: &mut Vec<u8>, dict: &[&[u8]], max_ops: usize, max_len: usize) {
    let ops = between(rng, 1, max_ops.max(1));
    for _ in 0..ops {
        one(rng, data, dict);
        if data.len() > max_len {
            data.truncate(max_len);
        }
    }
}

fn one(rng: &mut Rng, data: &mut Vec<u8>, dict: &[&[u8]]) {
    let len = data.len();
    let at = |rng: &mut Rng| rng.below(len as u64 + 1) as usize;
    match rng.below(12) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            data[i] ^= 1 << rng.below(8);
        }
        // An interesting byte.
        1 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            data[i] = *pick(rng, INTERESTING8);
        }
        // A random byte.
        2 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            data[i] = rng.next_u64() as u8;
        }
        // Insert a dictionary token.
        3 | 4 if !dict.is_empty() => {
            let i = at(rng);
            let tok = *pick(rng, dict);
            data.splice(i..i, tok.iter().copied());
        }
        // Delete a range.
        5 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            let n = skewed(rng, len - i).max(1);
            data.drain(i..i + n);
        }
        // Duplicate a range somewhere.
        6 if len > 0 => {
            let i = rng.below(len as u64) as usize;
            let n = skewed(rng, (len - i).min(4096)).max(1);
            let chunk = data[i..i + n].to_vec();
            let j = at(rng);
            data.splice(j..j, chunk);
        }
        // Truncate.
        7 if len > 0 => {
            let n = rng.below(len as u64) as usize;
            data.truncate(n);
        }
        // Overwrite with an interesting integer, little- or big-endian, 2/4/8 bytes.
        8 if len >= 8 => {
            let width = *pick(rng, &[2usize, 4, 8]);
            let i = rng.below((len - width + 1) as u64) as usize;
            let v = *pick(rng, INTERESTING64);
            let bytes = if rng.below(2) == 0 {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let src = if rng.below(2) == 0 {
                &bytes[..width]
            } else {
                &bytes[8 - width..]
            };
            data[i..i + width].copy_from_slice(src);
        }
        // Swap two ranges' contents (same length).
        9 if len >= 2 => {
            let n = skewed(rng, len / 2).max(1);
            let a = rng.below((len - n + 1) as u64) as usize;
            let b = rng.below((len - n + 1) as u64) as usize;
            if a + n <= b || b + n <= a {
                for k in 0..n {
                    data.swap(a + k, b + k);
                }
            }
        }
        // Insert random bytes.
        10 => {
            let i = at(rng);
            let n = skewed(rng, 64).max(1);
            let mut r = vec![0u8; n];
            rng.fill(&mut r);
            data.splice(i..i, r);
        }
        // Repeat one byte many times (long runs: deep nesting, long numbers).
        _ => {
            let i = at(rng);
            let b = if len > 0 {
                data[rng.below(len as u64) as usize]
            } else {
                b'A'
            };
            let n = skewed(rng, 1024).max(1);
            data.splice(i..i, std::iter::repeat_n(b, n));
        }
    }
}
