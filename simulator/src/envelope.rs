//! The `DataTransformEnvelope` that ESXi 7.0 U2 and later wrap `local.tgz` in (`local.tgz.ve`),
//! byte for byte as facts section 6.4 describes it and the real 7.0.2 sample shows.
//!
//! ```text
//! header block (4,096)  "DataTransformEnvelope", zeros, at 0x1F8 u32le 0x0E00 and u32le 2;
//!                       from 0x200 attributes: u8 type, u8 flag, u16 0, name NUL, value
//!                       (0x0B string NUL; 0x0C u64le length + bytes); four zero bytes; zeros
//! ciphertext            AES-256-GCM(key, iv) of: the plaintext, filler to the next 4,096,
//!                       one 4,096 block ending in the crypto footer ("DataTransformCryptoFooter",
//!                       zeros, u32le filler length, u32le 2); additional data = the header
//!                       block as written + "ESXConfiguration"
//! AEAD footer (4,096)   "DataTransformAeadFooter", 9 zeros, the 16-byte tag, zeros, u32le 16,
//!                       u32le 1
//! ```
//! The filler, and the first 3,584 bytes of the footer's block, are random bytes in the real
//! sample; the writer takes them as input so that it can reproduce the sample exactly and a host
//! writes deterministic bytes from its seed.
//!
//! Reading is hostile-input safe: every length is checked against the data and a cap, and the
//! tag is verified before any plaintext is returned (ring's AEAD does both at once).

use std::fmt;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

pub const BLOCK: usize = 4096;
/// The additional authenticated data ESXi seals its configuration with (`crypto-util envelope
/// extract --aad ESXConfiguration`, facts section 6.4).
pub const CONFIG_AAD: &[u8] = b"ESXConfiguration";
pub const CIPHER: &str = "AES-256-GCM";

const HEADER_MAGIC: &[u8] = b"DataTransformEnvelope";
const CRYPTO_FOOTER_MAGIC: &[u8] = b"DataTransformCryptoFooter";
const AEAD_FOOTER_MAGIC: &[u8] = b"DataTransformAeadFooter";
const ATTR_STRING: u8 = 0x0B;
const ATTR_BYTES: u8 = 0x0C;
/// The footer's block: random bytes, then the 512-byte crypto footer.
const FOOTER_RANDOM: usize = BLOCK - 512;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not an envelope, or one this reader cannot parse (wrong magic, version, sizes).
    Format(String),
    /// The key does not match the envelope's `vmware.keyHash`.
    WrongKey,
    /// The GCM tag does not verify: altered bytes, or another AAD.
    Tampered,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Format(m) => write!(f, "not a valid configuration envelope: {m}"),
            EnvelopeError::WrongKey => write!(
                f,
                "the configuration envelope is sealed with another key (vmware.keyHash differs)"
            ),
            EnvelopeError::Tampered => write!(
                f,
                "the configuration envelope does not authenticate (AES-GCM tag mismatch)"
            ),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// An envelope's header attributes, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub iv: [u8; 12],
    /// `vmware.keyInfo`: the key's UUID as text.
    pub key_info: String,
    pub cipher: String,
    pub key_hash: [u8; 32],
}

/// SHA-256 of the cipher name followed by the key: the envelope's `vmware.keyHash`.
pub fn key_hash(key: &[u8; 32]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(CIPHER.as_bytes());
    ctx.update(key);
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// The size of the envelope of `n` plaintext bytes: 8,192 + 4,096 × ceil(n / 4,096) + 4,096.
pub fn sealed_len(n: usize) -> usize {
    3 * BLOCK + n.div_ceil(BLOCK) * BLOCK
}

/// How many random bytes [`seal`] takes for `n` plaintext bytes: the filler up to the next
/// 4,096 boundary, then 3,584 for the footer's block.
pub fn filler_len(n: usize) -> usize {
    (BLOCK - n % BLOCK) % BLOCK + FOOTER_RANDOM
}

fn header_block(h: &Header) -> Vec<u8> {
    let mut b = vec![0u8; BLOCK];
    b[..HEADER_MAGIC.len()].copy_from_slice(HEADER_MAGIC);
    b[0x1F8..0x1FC].copy_from_slice(&((BLOCK - 512) as u32).to_le_bytes());
    b[0x1FC..0x200].copy_from_slice(&2u32.to_le_bytes());
    let mut attrs = Vec::new();
    let mut put = |ty: u8, name: &str, value: &[u8]| {
        attrs.extend_from_slice(&[ty, 0, 0, 0]);
        attrs.extend_from_slice(name.as_bytes());
        attrs.push(0);
        if ty == ATTR_BYTES {
            attrs.extend_from_slice(&(value.len() as u64).to_le_bytes());
            attrs.extend_from_slice(value);
        } else {
            attrs.extend_from_slice(value);
            attrs.push(0);
        }
    };
    put(ATTR_BYTES, "vmware.iv", &h.iv);
    put(ATTR_STRING, "vmware.keyInfo", h.key_info.as_bytes());
    put(ATTR_STRING, "vmware.cipherName", h.cipher.as_bytes());
    put(ATTR_BYTES, "vmware.keyHash", &h.key_hash);
    // The attribute list ends with an all-zero attribute header (four zero bytes), which the
    // zero padding of the block already is.
    b[0x200..0x200 + attrs.len()].copy_from_slice(&attrs);
    b
}

/// Seals `plaintext` under `key`. `key_id` is the key's UUID (16 bytes), `iv` the GCM nonce,
/// `random` exactly [`filler_len`] bytes of filler. Deterministic: the same inputs give the same
/// bytes.
pub fn seal(
    plaintext: &[u8],
    key: &[u8; 32],
    key_id: &[u8; 16],
    iv: [u8; 12],
    random: &[u8],
    aad: &[u8],
) -> Vec<u8> {
    let fill = (BLOCK - plaintext.len() % BLOCK) % BLOCK;
    assert_eq!(random.len(), filler_len(plaintext.len()), "filler length");
    let header = Header {
        iv,
        key_info: crate::host::format_uuid(key_id).to_ascii_lowercase(),
        cipher: CIPHER.into(),
        key_hash: key_hash(key),
    };
    let mut out = header_block(&header);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    out.extend_from_slice(&random[..fill]);
    out.extend_from_slice(&random[fill..]);
    let mut footer = [0u8; 512];
    footer[..CRYPTO_FOOTER_MAGIC.len()].copy_from_slice(CRYPTO_FOOTER_MAGIC);
    footer[504..508].copy_from_slice(&(fill as u32).to_le_bytes());
    footer[508..512].copy_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&footer);
    let mut ad = out[..BLOCK].to_vec();
    ad.extend_from_slice(aad);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"));
    let tag = k
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(&ad[..]),
            &mut out[body_start..],
        )
        .expect("sealing in memory cannot fail");
    let mut aead = [0u8; BLOCK];
    aead[..AEAD_FOOTER_MAGIC.len()].copy_from_slice(AEAD_FOOTER_MAGIC);
    aead[32..48].copy_from_slice(tag.as_ref());
    aead[BLOCK - 8..BLOCK - 4].copy_from_slice(&16u32.to_le_bytes());
    aead[BLOCK - 4..].copy_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&aead);
    out
}

fn format(m: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Format(m.into())
}

/// Reads the header block's attributes (no key needed).
pub fn read_header(bytes: &[u8]) -> Result<Header, EnvelopeError> {
    if bytes.len() < 3 * BLOCK || bytes.len() % BLOCK != 0 {
        return Err(format(format!(
            "{} bytes is not a whole number of 4,096-byte blocks, at least three",
            bytes.len()
        )));
    }
    if &bytes[..HEADER_MAGIC.len()] != HEADER_MAGIC {
        return Err(format("no DataTransformEnvelope magic"));
    }
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4"));
    if u32_at(bytes, 0x1FC) != 2 {
        return Err(format(format!(
            "envelope version {} (only 2 is known)",
            u32_at(bytes, 0x1FC)
        )));
    }
    if u32_at(bytes, 0x1F8) as usize != BLOCK - 512 {
        return Err(format("header size is not 3,584"));
    }
    let block = &bytes[..BLOCK];
    let mut at = 0x200;
    let (mut iv, mut key_info, mut cipher, mut key_hash) = (None, None, None, None);
    loop {
        let ty = *block
            .get(at)
            .ok_or_else(|| format("attributes run past the header"))?;
        if ty == 0 {
            break;
        }
        at += 4;
        let name_end = block[at..]
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format("attribute name runs past the header"))?;
        let name = String::from_utf8_lossy(&block[at..at + name_end]).into_owned();
        at += name_end + 1;
        let value: Vec<u8> = match ty {
            ATTR_STRING => {
                let end = block[at..]
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| format(format!("attribute {name} runs past the header")))?;
                let v = block[at..at + end].to_vec();
                at += end + 1;
                v
            }
            ATTR_BYTES => {
                let len_bytes = block
                    .get(at..at + 8)
                    .ok_or_else(|| format(format!("attribute {name} runs past the header")))?;
                let len = u64::from_le_bytes(len_bytes.try_into().expect("8"));
                at += 8;
                let end = (len as usize)
                    .checked_add(at)
                    .filter(|e| *e <= BLOCK && len <= BLOCK as u64)
                    .ok_or_else(|| {
                        format(format!("attribute {name}: length {len} past the header"))
                    })?;
                let v = block[at..end].to_vec();
                at = end;
                v
            }
            1..=0x0A => {
                return Err(format(format!(
                    "attribute {name}: numeric types are not used"
                )))
            }
            other => return Err(format(format!("attribute {name}: unknown type {other:#x}"))),
        };
        let text =
            || String::from_utf8(value.clone()).map_err(|_| format(format!("{name} is not text")));
        match name.as_str() {
            "vmware.iv" => {
                iv = Some(
                    <[u8; 12]>::try_from(&value[..])
                        .map_err(|_| format("vmware.iv is not 12 bytes"))?,
                )
            }
            "vmware.keyInfo" => key_info = Some(text()?),
            "vmware.cipherName" => cipher = Some(text()?),
            "vmware.keyHash" => {
                key_hash = Some(
                    <[u8; 32]>::try_from(&value[..])
                        .map_err(|_| format("vmware.keyHash is not 32 bytes"))?,
                )
            }
            _ => {} // unknown attributes are carried by real envelopes' readers too
        }
    }
    let cipher = cipher.ok_or_else(|| format("no vmware.cipherName"))?;
    if cipher != CIPHER {
        return Err(format(format!(
            "cipher {cipher:?} (only {CIPHER} is known)"
        )));
    }
    Ok(Header {
        iv: iv.ok_or_else(|| format("no vmware.iv"))?,
        key_info: key_info.ok_or_else(|| format("no vmware.keyInfo"))?,
        cipher,
        key_hash: key_hash.ok_or_else(|| format("no vmware.keyHash"))?,
    })
}

/// Opens an envelope with `key` and `aad`: the plaintext, without filler and footer.
pub fn open(bytes: &[u8], key: &[u8; 32], aad: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    open_with_filler(bytes, key, aad).map(|(plain, _)| plain)
}

/// [`open`], also returning the random bytes it dropped (the filler, then the footer block's
/// first 3,584 bytes): what [`seal`] needs to reproduce the envelope.
pub fn open_with_filler(
    bytes: &[u8],
    key: &[u8; 32],
    aad: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), EnvelopeError> {
    let header = read_header(bytes)?;
    if header.key_hash != key_hash(key) {
        return Err(EnvelopeError::WrongKey);
    }
    let aead = &bytes[bytes.len() - BLOCK..];
    if &aead[..AEAD_FOOTER_MAGIC.len()] != AEAD_FOOTER_MAGIC {
        return Err(format("no DataTransformAeadFooter"));
    }
    let tag_len = u32::from_le_bytes(aead[BLOCK - 8..BLOCK - 4].try_into().expect("4"));
    let version = u32::from_le_bytes(aead[BLOCK - 4..].try_into().expect("4"));
    if tag_len != 16 || version != 1 {
        return Err(format("AEAD footer is not a 16-byte tag, version 1"));
    }
    let mut ad = bytes[..BLOCK].to_vec();
    ad.extend_from_slice(aad);
    let mut body = bytes[BLOCK..bytes.len() - BLOCK].to_vec();
    body.extend_from_slice(&aead[32..48]);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"));
    let plain_len = k
        .open_in_place(
            Nonce::assume_unique_for_key(header.iv),
            Aad::from(&ad[..]),
            &mut body,
        )
        .map_err(|_| EnvelopeError::Tampered)?
        .len();
    body.truncate(plain_len);
    let footer = &body[plain_len - 512..];
    if &footer[..CRYPTO_FOOTER_MAGIC.len()] != CRYPTO_FOOTER_MAGIC {
        return Err(format("no DataTransformCryptoFooter"));
    }
    let fill = u32::from_le_bytes(footer[504..508].try_into().expect("4")) as usize;
    if fill >= BLOCK {
        return Err(format(format!("filler of {fill} bytes")));
    }
    let end = plain_len - BLOCK - fill;
    let random = body[end..plain_len - 512].to_vec();
    body.truncate(end);
    Ok((body, random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_envelope_has_the_real_shape_and_opens() {
        let key = [7u8; 32];
        let id = [0x11u8; 16];
        let iv = *b"WMV_\0\0\0\0\0\0\0\0";
        for n in [0usize, 1, 4095, 4096, 94_293] {
            let plain: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
            let random = vec![0xA5u8; filler_len(n)];
            let env = seal(&plain, &key, &id, iv, &random, CONFIG_AAD);
            assert_eq!(env.len(), sealed_len(n), "{n}");
            assert_eq!(&env[..21], b"DataTransformEnvelope");
            let h = read_header(&env).unwrap();
            assert_eq!(h.key_info, "11111111-1111-1111-1111-111111111111");
            assert_eq!(h.iv, iv);
            assert_eq!(open(&env, &key, CONFIG_AAD).unwrap(), plain);
            assert_eq!(
                open(&env, &[8u8; 32], CONFIG_AAD),
                Err(EnvelopeError::WrongKey)
            );
            assert_eq!(open(&env, &key, b"other"), Err(EnvelopeError::Tampered));
            // Deterministic.
            assert_eq!(seal(&plain, &key, &id, iv, &random, CONFIG_AAD), env);
        }
        assert_eq!(sealed_len(94_293), 110_592, "the real sample's size");
    }

    #[test]
    fn altered_envelopes_are_refused_not_trusted() {
        let key = [1u8; 32];
        let env = seal(
            b"secret config",
            &key,
            &[2; 16],
            [3; 12],
            &vec![0; filler_len(13)],
            CONFIG_AAD,
        );
        for at in [
            0,
            0x1F8,
            0x1FC,
            0x200,
            0x210,
            BLOCK + 3,
            env.len() - BLOCK + 40,
            env.len() - 2,
        ] {
            let mut bad = env.clone();
            bad[at] ^= 0x40;
            assert!(open(&bad, &key, CONFIG_AAD).is_err(), "flipped byte {at}");
        }
        assert!(read_header(&env[..BLOCK * 2]).is_err());
        assert!(read_header(&env[..env.len() - 1]).is_err());
        assert!(read_header(b"").is_err());
        // A bytes attribute claiming a huge length.
        let mut bad = env.clone();
        bad[0x200 + 4 + 10..0x200 + 4 + 18].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(read_header(&bad), Err(EnvelopeError::Format(_))));
    }
}
