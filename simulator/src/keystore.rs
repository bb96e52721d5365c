//! `encryption.info`: the key store that says how a 7.0 U2+ host's `local.tgz.ve` is keyed
//! (facts sections 6.4 and 6.5), and the keys it leads to.
//!
//! ```text
//! .encoding = "UTF-8"
//! includeKeyCache = "FALSE"
//! mode = "NONE"
//! ConfigEncData = "keyId=<b64>:data1=<b64>:data2=<b64>:version=1"
//! ```
//! LF line endings; base64 padding written `%3d`. In NONE mode the key is
//! PBKDF2-HMAC-SHA256(data1 ‖ "This is obfuscation, not encryption. If you want encryption, use
//! TPM.", salt data2, 100,000 rounds): anyone holding the file can decrypt. A derivation costs
//! ~0.1 s, so derived keys are cached per process ([`KeyStore::none_key`]).
//!
//! TPM mode is sealed to the host's TPM; how a real host writes its `ConfigEncData` then is not
//! public. This simulator writes **\[inferred\]**
//! `keyId=..:sealedKey=..:recoveryId=..:recoveryData=..:version=1`: the key sealed to the
//! simulated TPM ([`crate::host::tpm`]) and the same key wrapped under the recovery key, so that
//! the recovery key alone opens it on other hardware (KB 316424: the boot option
//! `encryptionRecoveryKey=` does exactly that).

use std::fmt;
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Encoding};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// The text NONE mode appends to data1 (dissect.hypervisor's `PBKDF2_SALT`, facts 6.4).
pub const NONE_PASSPHRASE: &[u8] =
    b"This is obfuscation, not encryption. If you want encryption, use TPM.";
pub const NONE_ROUNDS: u32 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Obfuscation: the key is derived from the file itself.
    None,
    /// The key is sealed to the host's TPM.
    Tpm,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::None => "NONE",
            Mode::Tpm => "TPM",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        match s.to_ascii_uppercase().as_str() {
            "NONE" => Ok(Mode::None),
            "TPM" => Ok(Mode::Tpm),
            _ => Err(format!("encryption mode {s:?}: expected NONE or TPM")),
        }
    }
}

/// What a key store holds besides its mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Material {
    None {
        data1: [u8; 16],
        data2: [u8; 16],
    },
    Tpm {
        /// The key sealed to a TPM: nonce (12), ciphertext (32), tag (16).
        sealed: Vec<u8>,
        recovery_id: [u8; 16],
        /// The key wrapped under the recovery key: nonce, ciphertext, tag.
        recovery_data: Vec<u8>,
    },
}

/// A parsed `encryption.info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStore {
    pub key_id: [u8; 16],
    pub material: Material,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStoreError(pub String);

impl fmt::Display for KeyStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "encryption.info: {}", self.0)
    }
}

impl std::error::Error for KeyStoreError {}

fn b64(b: &[u8]) -> String {
    Base64::encode_string(b).replace('=', "%3d")
}

fn unb64<const N: usize>(s: &str, what: &str) -> Result<[u8; N], KeyStoreError> {
    let v = unb64_vec(s, what)?;
    <[u8; N]>::try_from(&v[..])
        .map_err(|_| KeyStoreError(format!("{what} is {} bytes, not {N}", v.len())))
}

fn unb64_vec(s: &str, what: &str) -> Result<Vec<u8>, KeyStoreError> {
    let s = s.replace("%3d", "=").replace("%3D", "=");
    if s.len() > 4096 {
        return Err(KeyStoreError(format!("{what} is too long")));
    }
    Base64::decode_vec(&s).map_err(|_| KeyStoreError(format!("{what} is not base64")))
}

impl KeyStore {
    pub fn mode(&self) -> Mode {
        match self.material {
            Material::None { .. } => Mode::None,
            Material::Tpm { .. } => Mode::Tpm,
        }
    }

    /// The file's text, byte for byte as the real 7.0.2 sample's (facts section 6.4).
    pub fn render(&self) -> String {
        let data = match &self.material {
            Material::None { data1, data2 } => format!(
                "keyId={}:data1={}:data2={}:version=1",
                b64(&self.key_id),
                b64(data1),
                b64(data2)
            ),
            Material::Tpm {
                sealed,
                recovery_id,
                recovery_data,
            } => format!(
                "keyId={}:sealedKey={}:recoveryId={}:recoveryData={}:version=1",
                b64(&self.key_id),
                b64(sealed),
                b64(recovery_id),
                b64(recovery_data)
            ),
        };
        format!(
            ".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\nmode = \"{}\"\nConfigEncData = \"{data}\"\n",
            self.mode()
        )
    }

    /// Parses untrusted `encryption.info` text.
    pub fn parse(bytes: &[u8]) -> Result<KeyStore, KeyStoreError> {
        if bytes.len() > 16 << 10 {
            return Err(KeyStoreError("larger than 16 KiB".into()));
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| KeyStoreError("not UTF-8 text".into()))?;
        let mut mode = None;
        let mut data = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| KeyStoreError(format!("not `key = \"value\"`: {line:?}")))?;
            let v = v.trim().trim_matches('"');
            match k.trim() {
                "mode" => mode = Some(v.parse::<Mode>().map_err(KeyStoreError)?),
                "ConfigEncData" => data = Some(v.to_string()),
                _ => {}
            }
        }
        let mode = mode.ok_or_else(|| KeyStoreError("no mode".into()))?;
        let data = data.ok_or_else(|| KeyStoreError("no ConfigEncData".into()))?;
        let mut fields = std::collections::BTreeMap::new();
        for part in data.split(':') {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                KeyStoreError(format!("ConfigEncData part {part:?} is not name=value"))
            })?;
            fields.insert(k.trim().to_string(), v.trim().to_string());
        }
        let get = |k: &str| {
            fields
                .get(k)
                .map(String::as_str)
                .ok_or_else(|| KeyStoreError(format!("ConfigEncData has no {k}")))
        };
        if get("version")? != "1" {
            return Err(KeyStoreError(format!(
                "ConfigEncData version {} (only 1 is known)",
                get("version")?
            )));
        }
        let key_id = unb64::<16>(get("keyId")?, "keyId")?;
        let material = match mode {
            Mode::None => Material::None {
                data1: unb64::<16>(get("data1")?, "data1")?,
                data2: unb64::<16>(get("data2")?, "data2")?,
            },
            Mode::Tpm => Material::Tpm {
                sealed: unb64_vec(get("sealedKey")?, "sealedKey")?,
                recovery_id: unb64::<16>(get("recoveryId")?, "recoveryId")?,
                recovery_data: unb64_vec(get("recoveryData")?, "recoveryData")?,
            },
        };
        Ok(KeyStore { key_id, material })
    }

    /// NONE mode's key (None in TPM mode), derived once per (data1, data2) per process.
    pub fn none_key(&self) -> Option<[u8; 32]> {
        match &self.material {
            Material::None { data1, data2 } => Some(derive_none_key(data1, data2)),
            Material::Tpm { .. } => None,
        }
    }
}

/// Derived NONE keys by (data1, data2): a fleet shares its NONE material, so one derivation
/// serves every host; a process meets a handful of others (restored bundles). Bounded.
static DERIVED: Mutex<Vec<([u8; 32], [u8; 32])>> = Mutex::new(Vec::new());
const DERIVED_CAP: usize = 64;

/// PBKDF2-HMAC-SHA256(data1 ‖ passphrase, data2, 100,000) (facts section 6.4), cached.
pub fn derive_none_key(data1: &[u8; 16], data2: &[u8; 16]) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..16].copy_from_slice(data1);
    id[16..].copy_from_slice(data2);
    {
        let cache = DERIVED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, k)) = cache.iter().find(|(i, _)| *i == id) {
            return *k;
        }
    }
    let mut secret = data1.to_vec();
    secret.extend_from_slice(NONE_PASSPHRASE);
    let mut key = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(NONE_ROUNDS).expect("non-zero"),
        data2,
        &secret,
        &mut key,
    );
    let mut cache = DERIVED.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= DERIVED_CAP {
        cache.remove(0);
    }
    cache.push((id, key));
    key
}

/// Whether NONE material's key is already derived in this process (deriving costs ~0.1 s).
pub fn none_key_is_cached(data1: &[u8; 16], data2: &[u8; 16]) -> bool {
    let cache = DERIVED.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .iter()
        .any(|(i, _)| i[..16] == data1[..] && i[16..] == data2[..])
}

/// NONE-mode material shared by many hosts (a fleet's, like its root password hash): the
/// derivation is paid once. Each host still has its own key id.
pub type SharedNoneMaterial = Arc<([u8; 16], [u8; 16])>;

/// The recovery key of a TPM-mode host (facts section 6.5): a Recovery ID printed as a braced
/// upper-case GUID and a key of 16 groups of 6 digits joined by `-`.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey {
    pub id: [u8; 16],
    /// 96 decimal digits.
    pub digits: String,
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryKey({}, ****)", self.id_text())
    }
}

impl RecoveryKey {
    /// 16 groups of 6 digits from `random`'s 16 draws.
    pub fn from_draws(id: [u8; 16], draws: impl IntoIterator<Item = u64>) -> RecoveryKey {
        let digits = draws
            .into_iter()
            .take(16)
            .map(|d| format!("{:06}", d % 1_000_000))
            .collect::<String>();
        RecoveryKey { id, digits }
    }
    /// `{A1B2C3D4-...}` as `esxcli system settings encryption recovery list` prints it.
    pub fn id_text(&self) -> String {
        format!("{{{}}}", crate::host::format_uuid(&self.id))
    }
    /// `123456-234567-...` (16 groups).
    pub fn key_text(&self) -> String {
        self.digits
            .as_bytes()
            .chunks(6)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("-")
    }
    /// Parses what a user types: the 16 groups with or without dashes or spaces.
    pub fn parse_key(text: &str) -> Result<String, String> {
        let digits: String = text.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        if digits.len() == 96 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(digits)
        } else {
            Err("a recovery key is 16 groups of 6 digits joined by '-'".into())
        }
    }
    /// The key that wraps the configuration key \[inferred\]: SHA-256 of the digits (96 digits
    /// carry ~319 bits, so no stretching is needed).
    fn wrapping_key(digits: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"esxi-sim recovery key\0");
        ctx.update(digits.as_bytes());
        ctx.finish().as_ref().try_into().expect("32")
    }
    /// `key` wrapped under this recovery key with `nonce`.
    pub fn wrap(&self, key: &[u8; 32], nonce: [u8; 12]) -> Vec<u8> {
        aead_seal(
            &RecoveryKey::wrapping_key(&self.digits),
            nonce,
            key,
            b"recovery",
        )
    }
    /// The configuration key from `recovery_data`, if these digits opened it.
    pub fn unwrap(digits: &str, recovery_data: &[u8]) -> Option<[u8; 32]> {
        aead_open(
            &RecoveryKey::wrapping_key(digits),
            recovery_data,
            b"recovery",
        )
    }
}

/// AES-256-GCM of a 32-byte key: nonce ‖ ciphertext ‖ tag (60 bytes).
pub(crate) fn aead_seal(kek: &[u8; 32], nonce: [u8; 12], key: &[u8; 32], aad: &[u8]) -> Vec<u8> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek).expect("32-byte key"));
    let mut buf = key.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .expect("sealing in memory cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    out
}

pub(crate) fn aead_open(kek: &[u8; 32], blob: &[u8], aad: &[u8]) -> Option<[u8; 32]> {
    if blob.len() != 12 + 32 + 16 {
        return None;
    }
    let nonce: [u8; 12] = blob[..12].try_into().ok()?;
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek).ok()?);
    let mut buf = blob[12..].to_vec();
    let plain = k
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .ok()?;
    plain.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_mode_round_trips_in_the_real_layout() {
        // Any 16-byte fields give the real sample's 193 bytes (its own contents are fetched at
        // test time, never committed: tests/vectors.rs).
        let ks = KeyStore {
            key_id: [0x7e; 16],
            material: Material::None {
                data1: [1; 16],
                data2: [2; 16],
            },
        };
        let text = ks.render();
        assert_eq!(text.len(), 193);
        assert!(text.starts_with(".encoding = \"UTF-8\"\nincludeKeyCache = \"FALSE\"\nmode = \"NONE\"\nConfigEncData = \"keyId="));
        assert!(
            text.contains("%3d%3d:data1="),
            "padding written %3d: {text}"
        );
        assert!(text.ends_with(":version=1\"\n"));
        assert_eq!(KeyStore::parse(text.as_bytes()).unwrap(), ks);
        assert_eq!(ks.mode(), Mode::None);
    }

    #[test]
    fn tpm_mode_round_trips_and_the_recovery_key_opens_it() {
        let rk = RecoveryKey::from_draws([9; 16], (0..16).map(|i| i * 123_457));
        assert_eq!(rk.key_text().len(), 16 * 6 + 15);
        assert!(rk.id_text().starts_with("{09090909-") && rk.id_text().ends_with('}'));
        assert_eq!(RecoveryKey::parse_key(&rk.key_text()).unwrap(), rk.digits);
        assert!(RecoveryKey::parse_key("123-456").is_err());
        let key = [0x42u8; 32];
        let ks = KeyStore {
            key_id: [1; 16],
            material: Material::Tpm {
                sealed: vec![5; 60],
                recovery_id: rk.id,
                recovery_data: rk.wrap(&key, [3; 12]),
            },
        };
        let back = KeyStore::parse(ks.render().as_bytes()).unwrap();
        assert_eq!(back, ks);
        assert!(back.render().contains("mode = \"TPM\""));
        let Material::Tpm { recovery_data, .. } = &back.material else {
            unreachable!()
        };
        assert_eq!(RecoveryKey::unwrap(&rk.digits, recovery_data), Some(key));
        let mut wrong = rk.digits.clone();
        wrong.replace_range(0..1, if &wrong[..1] == "1" { "2" } else { "1" });
        assert_eq!(RecoveryKey::unwrap(&wrong, recovery_data), None);
        assert_eq!(back.none_key(), None);
    }

    #[test]
    fn hostile_key_stores_are_refused() {
        for bad in [
            &b""[..],
            b"mode = \"NONE\"\n",
            b"mode = \"XYZ\"\nConfigEncData = \"keyId=AA\"\n",
            b"mode = \"NONE\"\nConfigEncData = \"keyId=AAAA:data1=AAAA:data2=AAAA:version=1\"\n",
            b"mode = \"NONE\"\nConfigEncData = \"garbage\"\n",
            b"\xff\xfe",
            b"mode = \"TPM\"\nConfigEncData = \"keyId=fmLOxWrvTX6Di8rjLu/SUQ%3d%3d:version=1\"\n",
        ] {
            assert!(
                KeyStore::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(KeyStore::parse(&vec![b'a'; 20_000]).is_err());
    }
}
