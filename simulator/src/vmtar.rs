//! Visor tar (`vmtar`), the format of a boot bank's system image modules (`s.v00`, `vim.v00`,
//! ...): tar headers with the magic `visor  ` whose data all follows the headers, each member's
//! data at the offset its header names (bytes 496–499, little-endian). Written gzip-compressed,
//! as the modules ship. The layout follows what `dissect.hypervisor`'s reader takes (its
//! `util/vmtar.py`, after ESXi's `/bin/vmtar`): the magic at byte 257, the data offset at 496,
//! the text and fix-up page counts at 504 and 508 (zero here: no relocatable pages).

const BLOCK: usize = 512;
const MAGIC: &[u8; 8] = b"visor  \0";

/// One member: a path without a leading `/` (`etc/vmware/esx.conf`), its mode and mtime, and
/// data (None: a directory).
pub struct Entry<'a> {
    pub path: &'a str,
    pub mode: u32,
    pub mtime: u64,
    pub data: Option<&'a [u8]>,
}

/// The gzip-compressed visor tar of `entries`, in their order (parents before children).
/// Paths longer than a header's 100-byte name field are refused, as vmtar itself does.
pub fn write_gz(entries: &[Entry<'_>]) -> Result<Vec<u8>, String> {
    let headers = (entries.len() + 2) * BLOCK; // two zero blocks end the headers
    let mut data_at = headers;
    let mut out = Vec::with_capacity(headers);
    let mut body = Vec::new();
    for e in entries {
        let name = match e.data {
            Some(_) => e.path.to_string(),
            None => format!("{}/", e.path.trim_end_matches('/')),
        };
        if name.len() > 100 {
            return Err(format!("{name}: longer than a vmtar name (100 bytes)"));
        }
        let size = e.data.map_or(0, <[u8]>::len);
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], u64::from(e.mode & 0o7777));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size as u64);
        octal(&mut h[136..148], e.mtime);
        h[156] = if e.data.is_some() { b'0' } else { b'5' };
        h[257..265].copy_from_slice(MAGIC);
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        if let Some(d) = e.data {
            h[496..500].copy_from_slice(&(data_at as u32).to_le_bytes());
            body.extend_from_slice(d);
            let pad = size.next_multiple_of(BLOCK) - size;
            body.resize(body.len() + pad, 0);
            data_at += size + pad;
        }
        // The checksum is taken with its own field as spaces.
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
    }
    out.resize(headers, 0);
    out.extend_from_slice(&body);
    Ok(crate::bundle::gzip_bytes(&out))
}

/// A zero-padded octal field ending in NUL.
fn octal(field: &mut [u8], v: u64) {
    let s = format!("{v:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(&s.as_bytes()[s.len() - field.len()..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn headers_come_first_and_name_where_their_data_is() {
        let gz = write_gz(&[
            Entry {
                path: "etc",
                mode: 0o755,
                mtime: 7,
                data: None,
            },
            Entry {
                path: "etc/hosts",
                mode: 0o644,
                mtime: 7,
                data: Some(b"127.0.0.1 localhost\n"),
            },
            Entry {
                path: "etc/motd",
                mode: 0o644,
                mtime: 7,
                data: Some(&[b'x'; 600]),
            },
        ])
        .unwrap();
        let raw = gunzip(&gz);
        let header = |i: usize| &raw[i * BLOCK..(i + 1) * BLOCK];
        let at = |i: usize| u32::from_le_bytes(header(i)[496..500].try_into().unwrap()) as usize;
        assert_eq!(&header(0)[..4], b"etc/");
        assert_eq!(header(0)[156], b'5');
        assert_eq!(&header(1)[257..265], MAGIC);
        // Three headers and two zero blocks, then the data, each member block-aligned.
        assert_eq!(at(1), 5 * BLOCK);
        assert_eq!(&raw[at(1)..at(1) + 20], b"127.0.0.1 localhost\n");
        assert_eq!(at(2), 6 * BLOCK);
        assert_eq!(raw.len(), 6 * BLOCK + 2 * BLOCK);
        assert!(header(3).iter().all(|&b| b == 0));
        // A reader's checksum: the header's bytes with the field as spaces.
        let mut h = header(2).to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        h[148..156].fill(b' ');
        assert_eq!(stored, h.iter().map(|&b| u32::from(b)).sum::<u32>());
    }

    #[test]
    fn a_name_too_long_for_the_header_is_refused() {
        let long = "a/".repeat(60);
        let e = write_gz(&[Entry {
            path: &long,
            mode: 0o644,
            mtime: 0,
            data: Some(b""),
        }])
        .unwrap_err();
        assert!(e.contains("longer than"), "{e}");
    }
}
