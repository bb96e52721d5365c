//! `state.tgz` in every persistence era: what a save writes and what a boot or a restore reads
//! (facts sections 1 and 6). The one seam between the host and the formats: the host hands a
//! save's files, its ConfigStore and (7.0 U2+) its sealing, and gets back an archive; it hands
//! bytes and what it knows of keys, and gets back files.
//!
//! | era | releases | state.tgz holds |
//! |---|---|---|
//! | plain | 4.x–6.7 | `local.tgz` |
//! | configstore | 7.0, 7.0 U1 | `local.tgz`, the ConfigStore's database inside |
//! | encrypted | 7.0 U2+ | `local.tgz.ve` (the same archive in an envelope) + `encryption.info` |
//!
//! A save is held as pieces ([`SavedArchive`]): its exact size is known when it is written,
//! its bytes (and the encryption, and in NONE mode the ~0.1 s key derivation) are made only when
//! someone reads them: a backup bundle, a raw read of the boot bank.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::archive::{ChunkedTar, StoredTar};
use crate::bundle::{read_tgz, BundleError, Limits};
use crate::configstore::{self, ConfigStore};
use crate::deflate::GzipHeader;
use crate::envelope::{self, EnvelopeError, CONFIG_AAD};
use crate::host::etc::{Bytes, Node};
use crate::host::tpm::Tpm;
use crate::keystore::{KeyStore, Material, Mode, RecoveryKey};
use crate::rng::Rng;

pub use crate::profile::Era;

/// Where the archive carries a copy of the key store (facts section 6.1).
pub const KEYSTORE_COPY: &str = "etc/vmware/encryption.info";

/// The gzip header of `local.tgz`: the real 7.0.2 sample's (no name, MTIME 0, XFL 2, OS 3;
/// facts 6.2) from 7.0; before, the save time and XFL 0 as this simulator always wrote them.
pub fn local_header(era: Era, now_secs: u64) -> GzipHeader {
    match era {
        Era::Plain => GzipHeader {
            mtime: now_secs.min(u32::MAX as u64) as u32,
            xfl: 0,
        },
        Era::ConfigStore | Era::Encrypted => GzipHeader { mtime: 0, xfl: 2 },
    }
}

/// The key a save is sealed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealKey {
    /// TPM mode: the host holds its key (unsealed at boot).
    Known([u8; 32]),
    /// NONE mode: derived from the key store when first needed (cached per process).
    Derived,
}

/// How an encrypted-era save is sealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seal {
    pub keystore: KeyStore,
    /// `encryption.info` as written (the key store rendered, facts 6.4).
    pub text: Bytes,
    pub key: SealKey,
    /// `WMV_` + the count of envelopes sealed under this key, little-endian \[inferred: the real
    /// sample's is `WMV_` and zeros\].
    pub iv: [u8; 12],
    /// Seeds the envelope's filler (random bytes in the real sample), so a host's saves are
    /// the same bytes from the same seed.
    pub filler_seed: u64,
}

impl Seal {
    fn key(&self) -> [u8; 32] {
        match (&self.key, &self.keystore.material) {
            (SealKey::Known(k), _) => *k,
            (SealKey::Derived, _) => self
                .keystore
                .none_key()
                .expect("a derived key belongs to a NONE key store"),
        }
    }
}

/// `WMV_` and a counter (see [`Seal::iv`]).
pub fn iv_for(count: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[..4].copy_from_slice(b"WMV_");
    iv[4..].copy_from_slice(&count.to_le_bytes());
    iv
}

/// What backup.sh wrote, as pieces.
#[derive(Debug)]
pub struct SavedArchive {
    pub local: ChunkedTar,
    pub seal: Option<Seal>,
    keystore_text: Option<Bytes>,
    wrapper: StoredTar,
    bytes: OnceLock<Bytes>,
}

impl SavedArchive {
    /// The state.tgz of `local` (sealed when `seal` is given), written at `now_secs`.
    pub fn new(local: ChunkedTar, seal: Option<Seal>, now_secs: u64) -> SavedArchive {
        let header = GzipHeader {
            mtime: now_secs.min(u32::MAX as u64) as u32,
            xfl: 0,
        };
        let (wrapper, keystore_text) = match &seal {
            None => (
                StoredTar::plan(header, &[("local.tgz", local.len(), 0o644, now_secs)]),
                None,
            ),
            Some(s) => {
                let text = s.text.clone();
                let ve = envelope::sealed_len(local.len() as usize) as u64;
                (
                    StoredTar::plan(
                        header,
                        &[
                            ("local.tgz.ve", ve, 0o644, now_secs),
                            ("encryption.info", text.len() as u64, 0o600, now_secs),
                        ],
                    ),
                    Some(text),
                )
            }
        };
        SavedArchive {
            local,
            seal,
            keystore_text,
            wrapper,
            bytes: OnceLock::new(),
        }
    }

    /// state.tgz's exact size.
    pub fn len(&self) -> usize {
        self.wrapper.len() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.wrapper.is_empty()
    }

    /// state.tgz's bytes, made on first use and kept.
    pub fn bytes(&self) -> Bytes {
        self.bytes
            .get_or_init(|| {
                let local = self.local.bytes();
                let out = match (&self.seal, &self.keystore_text) {
                    (Some(seal), Some(text)) => {
                        let ve = self.seal_local(&local, seal);
                        self.wrapper.bytes(&[&ve, text])
                    }
                    _ => self.wrapper.bytes(&[&local]),
                };
                Arc::from(out.into_boxed_slice())
            })
            .clone()
    }

    fn seal_local(&self, local: &[u8], seal: &Seal) -> Vec<u8> {
        let mut rng = Rng::fork(seal.filler_seed, "envelope filler");
        let mut random = vec![0u8; envelope::filler_len(local.len())];
        rng.fill(&mut random);
        envelope::seal(
            local,
            &seal.key(),
            &seal.keystore.key_id,
            seal.iv,
            &random,
            CONFIG_AAD,
        )
    }

    /// `local.tgz` as it is inside (decrypted).
    pub fn local_tgz(&self) -> Vec<u8> {
        self.local.bytes()
    }

    /// Whether the bytes were made already.
    pub fn materialized(&self) -> bool {
        self.bytes.get().is_some()
    }
}

/// What a reader knows of keys: the host's TPM, and a recovery key typed at the boot prompt.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyContext<'a> {
    pub tpm: Option<Tpm>,
    /// Recovery-key digits (see [`RecoveryKey::parse_key`]).
    pub recovery: Option<&'a str>,
}

/// A state.tgz read back.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Every member of local.tgz by path (`etc/...` and the ConfigStore's `var/lib/...`).
    pub files: BTreeMap<String, Node>,
    /// The ConfigStore, if the archive has one.
    pub store: Option<ConfigStore>,
    /// The key store next to `local.tgz.ve`, if the state was sealed.
    pub keystore: Option<KeyStore>,
    /// The key that opened it.
    pub key: Option<[u8; 32]>,
    /// It opened only with the recovery key (its TPM seal is another board's).
    pub by_recovery_key: bool,
}

/// Why a state.tgz cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// It does not unpack (bad gzip or tar, a damaged ConfigStore, a malformed envelope).
    Corrupt(String),
    /// It is sealed with a key this host cannot have: another TPM, a tampered envelope. The
    /// boot stops (facts section 6.5).
    Locked(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Corrupt(m) | StateError::Locked(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StateError {}

impl From<BundleError> for StateError {
    fn from(e: BundleError) -> StateError {
        StateError::Corrupt(e.to_string())
    }
}

/// What a state.tgz holds, read without any key.
#[derive(Clone, Debug)]
pub enum Shape {
    /// A plain local.tgz (read: its members are checked).
    Plain,
    /// local.tgz.ve and encryption.info (the envelope's header and the key store checked).
    Sealed { keystore: KeyStore },
}

fn outer(bytes: &[u8], limits: &Limits) -> Result<Vec<crate::bundle::Member>, BundleError> {
    read_tgz(bytes, limits, "state.tgz")
}

/// The shape of an untrusted state.tgz, checked as far as can be without a key: a plain one is
/// read whole; a sealed one's envelope header and key store must parse. A reader that finds a
/// plain `local.tgz` uses it first (facts 6.1).
pub fn peek(bytes: &[u8], limits: &Limits) -> Result<Shape, BundleError> {
    let members = outer(bytes, limits)?;
    if let Some(local) = members.iter().find(|m| m.path == "local.tgz") {
        read_tgz(&local.data, limits, "local.tgz")?;
        return Ok(Shape::Plain);
    }
    let ve = members.iter().find(|m| m.path == "local.tgz.ve");
    let info = members.iter().find(|m| m.path == "encryption.info");
    match (ve, info) {
        (Some(ve), Some(info)) => {
            envelope::read_header(&ve.data).map_err(|e| BundleError::Sealed(e.to_string()))?;
            let keystore =
                KeyStore::parse(&info.data).map_err(|e| BundleError::Sealed(e.to_string()))?;
            Ok(Shape::Sealed { keystore })
        }
        (Some(_), None) => Err(BundleError::MissingMember(
            "encryption.info next to local.tgz.ve",
        )),
        _ => Err(BundleError::MissingMember("local.tgz in state.tgz")),
    }
}

/// Derives (and caches, see [`crate::keystore::derive_none_key`]) the NONE-mode key of an
/// untrusted bundle's sealed state, so the restore that reads it later finds the 100,000 PBKDF2
/// rounds paid. Called off the async runtime when a bundle arrives; anything unreadable is left
/// for the restore to judge.
pub fn warm_bundle_keys(bundle: &[u8], limits: &Limits) {
    let Ok(members) = read_tgz(bundle, limits, "configBundle.tgz") else {
        return;
    };
    let Some(state) = members.iter().find(|m| m.path == "state.tgz") else {
        return;
    };
    if let Ok(Shape::Sealed { keystore }) = peek(&state.data, limits) {
        keystore.none_key();
    }
}

/// The messages a boot prints when it cannot decrypt (facts section 6.5).
pub const SECURITY_VIOLATION: &str =
    "Unable to restore system configuration. A security violation was detected.";
pub const DECRYPT_FAILED: &str = "Failed to decrypt system configuration.";

/// Reads an untrusted state.tgz of any era: decrypts it if sealed (NONE: the key from the file;
/// TPM: unsealed by `ctx.tpm`, or opened with `ctx.recovery`), parses the ConfigStore.
pub fn decode(bytes: &[u8], limits: &Limits, ctx: KeyContext<'_>) -> Result<Decoded, StateError> {
    let members = outer(bytes, limits)?;
    let (local, keystore, key, by_recovery_key) = if let Some(local) =
        members.iter().find(|m| m.path == "local.tgz")
    {
        (local.data.clone(), None, None, false)
    } else {
        let ve = members
            .iter()
            .find(|m| m.path == "local.tgz.ve")
            .ok_or(BundleError::MissingMember("local.tgz in state.tgz"))?;
        let info = members.iter().find(|m| m.path == "encryption.info").ok_or(
            BundleError::MissingMember("encryption.info next to local.tgz.ve"),
        )?;
        let ks = KeyStore::parse(&info.data).map_err(|e| StateError::Corrupt(e.to_string()))?;
        envelope::read_header(&ve.data).map_err(|e| StateError::Corrupt(e.to_string()))?;
        let (key, by_recovery) = key_for(&ks, ctx)?;
        // NONE mode's key comes from encryption.info itself, so an envelope it does not open
        // is damaged, as a bad gzip would be (the restore refuses it, a boot falls back to the
        // image). A TPM key that unsealed but does not open it is tampering: the security
        // violation of facts 6.5 \[inferred for NONE: the real boot's message is unknown\].
        let plain =
            envelope::open(&ve.data, &key, CONFIG_AAD).map_err(|e| match (e, ks.mode()) {
                (EnvelopeError::Format(m), _) => StateError::Corrupt(format!("local.tgz.ve: {m}")),
                (other, Mode::None) => StateError::Corrupt(format!(
                    "local.tgz.ve: the key of encryption.info does not open it ({other})"
                )),
                (other, Mode::Tpm) => {
                    StateError::Locked(format!("{SECURITY_VIOLATION} {DECRYPT_FAILED} ({other})"))
                }
            })?;
        (plain, Some(ks), Some(key), by_recovery)
    };
    let inner = read_tgz(&local, limits, "local.tgz")?;
    let files: BTreeMap<String, Node> = inner
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
        .collect();
    let store = match files.get(configstore::BACKUP_PATH) {
        Some(n) => Some(
            ConfigStore::from_sqlite(&n.data).map_err(|e| StateError::Corrupt(e.to_string()))?,
        ),
        None => None,
    };
    Ok(Decoded {
        files,
        store,
        keystore,
        key,
        by_recovery_key,
    })
}

/// The key of a key store in this context, and whether it took the recovery key: NONE mode
/// derives it (facts 6.4); TPM mode unseals it with `ctx.tpm` or unwraps it with
/// `ctx.recovery` (facts 6.5), else [`StateError::Locked`]. Public so that readers outside the
/// host (`esxi-harness inspect`) find keys by the same rule as a boot.
pub fn key_for(ks: &KeyStore, ctx: KeyContext<'_>) -> Result<([u8; 32], bool), StateError> {
    match &ks.material {
        Material::None { .. } => Ok((ks.none_key().expect("NONE material"), false)),
        Material::Tpm {
            sealed,
            recovery_data,
            ..
        } => {
            if let Some(k) = ctx.tpm.and_then(|t| t.unseal(sealed)) {
                return Ok((k, false));
            }
            if let Some(k) = ctx
                .recovery
                .and_then(|digits| RecoveryKey::unwrap(digits, recovery_data))
            {
                return Ok((k, true));
            }
            let why = if ctx.recovery.is_some() {
                "the recovery key given does not open it"
            } else {
                "it is sealed to another TPM; the recovery key is needed"
            };
            Err(StateError::Locked(format!(
                "{SECURITY_VIOLATION} {DECRYPT_FAILED} ({why})"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::{Material, RecoveryKey};

    fn node(s: &str) -> Node {
        Node {
            data: Arc::from(s.as_bytes()),
            mode: 0o644,
            mtime: 1_704_067_200,
            sticky: true,
        }
    }

    fn local(era: Era) -> ChunkedTar {
        let hosts = node("127.0.0.1 localhost\n");
        let files = [("etc/hosts".to_string(), hosts)];
        ChunkedTar::build(
            local_header(era, 1_704_067_200),
            files.iter().map(|(p, n)| {
                (
                    p.as_str(),
                    crate::archive::Contents::Bytes(&n.data),
                    n.mode,
                    n.mtime,
                )
            }),
            None,
        )
    }

    #[test]
    fn a_plain_save_reads_back() {
        let a = SavedArchive::new(local(Era::Plain), None, 1_704_067_260);
        let bytes = a.bytes();
        assert_eq!(bytes.len(), a.len());
        let d = decode(&bytes, &Limits::default(), KeyContext::default()).unwrap();
        assert_eq!(&d.files["etc/hosts"].data[..], b"127.0.0.1 localhost\n");
        assert!(d.keystore.is_none() && d.store.is_none());
        assert!(matches!(peek(&bytes, &Limits::default()), Ok(Shape::Plain)));
    }

    #[test]
    fn a_tpm_save_opens_on_its_board_or_with_the_recovery_key_only() {
        let key = [3u8; 32];
        let board = Tpm { board: 7 };
        let rk = RecoveryKey::from_draws([1; 16], 0..16);
        let ks = KeyStore {
            key_id: [2; 16],
            material: Material::Tpm {
                sealed: board.seal(&key, [0; 12]),
                recovery_id: rk.id,
                recovery_data: rk.wrap(&key, [1; 12]),
            },
        };
        let seal = Seal {
            text: Arc::from(ks.render().into_bytes().into_boxed_slice()),
            keystore: ks,
            key: SealKey::Known(key),
            iv: iv_for(0),
            filler_seed: 9,
        };
        let a = SavedArchive::new(local(Era::Encrypted), Some(seal), 1_704_067_260);
        let bytes = a.bytes();
        assert_eq!(
            bytes.len(),
            a.len(),
            "the size was exact before the bytes existed"
        );
        let l = Limits::default();
        let own = KeyContext {
            tpm: Some(board),
            recovery: None,
        };
        let d = decode(&bytes, &l, own).unwrap();
        assert!(!d.by_recovery_key);
        assert_eq!(d.key, Some(key));
        let other = KeyContext {
            tpm: Some(Tpm { board: 8 }),
            recovery: None,
        };
        match decode(&bytes, &l, other) {
            Err(StateError::Locked(m)) => assert!(m.contains(SECURITY_VIOLATION), "{m}"),
            r => panic!("{r:?}"),
        }
        let recovered = decode(
            &bytes,
            &l,
            KeyContext {
                tpm: Some(Tpm { board: 8 }),
                recovery: Some(&rk.digits),
            },
        )
        .unwrap();
        assert!(recovered.by_recovery_key);
        assert!(matches!(peek(&bytes, &l), Ok(Shape::Sealed { .. })));
        // Deterministic: the same save makes the same bytes.
        let again = SavedArchive::new(local(Era::Encrypted), a.seal.clone(), 1_704_067_260);
        assert_eq!(again.bytes(), bytes);
    }
}
