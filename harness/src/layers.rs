//! A configuration bundle read layer by layer, in every persistence era (facts sections 1, 2
//! and 6), for [`crate::inspect`] and [`crate::diff`]:
//!
//! ```text
//! configBundle.tgz   Manifest.txt, state.tgz
//!   state.tgz        local.tgz                          (4.x–7.0 U1)
//!                    local.tgz.ve + encryption.info      (7.0 U2+: NONE or TPM mode)
//!     local.tgz      the saved files, and from 7.0 the ConfigStore's database
//!                    var/lib/vmware/configstore/backup/current-store-1
//! ```
//!
//! Every layer is untrusted and read with esxi-sim's hostile-input-safe readers. Only an
//! unreadable outer archive stops the reading; a problem deeper down is kept as that layer's
//! error so the layers above it can still be reported. A TPM-sealed state that no recovery key
//! given opens is not an error but its own outcome ([`Opened::Sealed`]): what is readable
//! without the key (the key store, the envelope's header) is still read.

use std::collections::BTreeMap;

use esxi_sim::bundle::{read_tgz, BundleError, Limits, Manifest, Member};
use esxi_sim::configstore::{self, ConfigStore};
use esxi_sim::envelope::{self, EnvelopeError, Header, BLOCK, CONFIG_AAD};
use esxi_sim::host::format_uuid;
use esxi_sim::keystore::{KeyStore, Material, Mode, RecoveryKey};
use esxi_sim::state::{key_for, KeyContext};

/// What the reader may open sealed state with: recovery keys (facts 6.5). A NONE-mode state
/// needs nothing: its key derives from its own `encryption.info` (facts 6.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    /// Recovery-key digits (96 each); each is tried on each TPM-sealed state.
    recovery: Vec<String>,
}

impl Keys {
    /// No keys: NONE-mode state opens, TPM-mode state stays sealed.
    pub fn none() -> Keys {
        Keys::default()
    }

    /// Recovery keys as users type them (`esxcli system settings encryption recovery list`'s
    /// 16 groups of 6 digits, with or without dashes). A malformed one is an error.
    pub fn recovery<S: AsRef<str>>(texts: &[S]) -> Result<Keys, String> {
        let recovery = texts
            .iter()
            .map(|t| RecoveryKey::parse_key(t.as_ref()).map_err(|e| format!("--recovery-key: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(Keys { recovery })
    }
}

/// How the key that opened a sealed state was had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenedWith {
    /// NONE mode: derived from encryption.info itself (obfuscation, facts 6.4).
    NoneKey,
    /// TPM mode: unwrapped from encryption.info's recovery data by a recovery key given.
    RecoveryKey,
}

/// What became of a sealed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Decrypted: the plaintext (local.tgz) and the envelope's filler, in bytes.
    Yes {
        with: OpenedWith,
        plaintext: u64,
        filler: u64,
    },
    /// TPM-sealed and no key given opens it: not damage, the reason the real boot stops
    /// (facts 6.5). The message says what would open it.
    Sealed(String),
    /// It cannot be opened: the key store or envelope is malformed, the key hash or the GCM tag
    /// does not match.
    Failed(String),
}

/// The 7.0 U2+ encryption facts of a state.tgz: what `encryption.info` and the envelope's
/// header say, readable without any key, and whether the envelope opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encryption {
    /// `None` when encryption.info is missing or unreadable (see `keystore_error`).
    pub mode: Option<Mode>,
    /// encryption.info's keyId as a UUID (lower case, as the envelope's `vmware.keyInfo`).
    pub key_id: Option<String>,
    /// TPM mode: the recovery ID a host prints (`{...}`, upper case), naming the recovery key
    /// that opens the state.
    pub recovery_id: Option<String>,
    pub keystore_error: Option<String>,
    /// Size of `local.tgz.ve`, when present.
    pub envelope_size: Option<u64>,
    /// The envelope's header attributes, when they parse.
    pub header: Option<Header>,
    pub envelope_error: Option<String>,
    pub opened: Opened,
}

impl Encryption {
    /// The envelope's ciphertext: everything between the header block and the AEAD footer
    /// (facts 6.4: plaintext, filler, the crypto footer's block).
    pub fn ciphertext(&self) -> Option<u64> {
        self.envelope_size
            .map(|n| n.saturating_sub(2 * BLOCK as u64))
    }

    /// Whether the state is TPM-sealed and was not opened.
    pub fn sealed(&self) -> bool {
        matches!(self.opened, Opened::Sealed(_))
    }
}

/// A layer that could not be read: the reader's message.
pub(crate) type LayerResult<T> = Option<Result<T, String>>;

/// The layers of a bundle, read as far as the safe readers allow.
pub(crate) struct Layers {
    pub outer: Vec<Member>,
    pub manifest: Option<Result<Manifest, BundleError>>,
    /// `None`: no state.tgz member.
    pub state: Option<Result<Vec<Member>, BundleError>>,
    /// `Some` when state.tgz holds the sealed pair (and no plain local.tgz, which a reader
    /// would use first: facts 6.1).
    pub encryption: Option<Encryption>,
    /// `None`: no local.tgz to read (absent, sealed and not opened, or the seal failed).
    pub local: LayerResult<Vec<Member>>,
    /// `None`: local.tgz has no ConfigStore (before 7.0) or was not read.
    pub store: LayerResult<ConfigStore>,
}

impl Layers {
    /// Reads untrusted bundle bytes. `Err` only when the bundle archive itself is unreadable.
    pub(crate) fn read(bytes: &[u8], keys: &Keys) -> Result<Layers, String> {
        let limits = Limits::default();
        // The outer layer is the only hard failure: without it there is nothing to report.
        let outer = read_tgz(bytes, &limits, "configBundle.tgz").map_err(|e| e.to_string())?;
        let find = |name: &str| outer.iter().find(|m| m.path == name);
        let manifest = find("Manifest.txt").map(|m| Manifest::parse(&m.data, &limits));
        let state = find("state.tgz").map(|m| read_tgz(&m.data, &limits, "state.tgz"));
        let (mut encryption, mut local) = (None, None);
        if let Some(Ok(members)) = &state {
            let get = |name: &str| members.iter().find(|m| m.path == name);
            if let Some(m) = get("local.tgz") {
                local = Some(read_tgz(&m.data, &limits, "local.tgz").map_err(|e| e.to_string()));
            } else if get("local.tgz.ve").is_some() || get("encryption.info").is_some() {
                let (enc, plain) = unseal(get("local.tgz.ve"), get("encryption.info"), keys);
                local =
                    plain.map(|p| read_tgz(&p, &limits, "local.tgz").map_err(|e| e.to_string()));
                encryption = Some(enc);
            }
        }
        let store = match &local {
            Some(Ok(files)) => files
                .iter()
                .find(|m| m.path == configstore::BACKUP_PATH)
                .map(|m| ConfigStore::from_sqlite(&m.data).map_err(|e| e.to_string())),
            _ => None,
        };
        Ok(Layers {
            outer,
            manifest,
            state,
            encryption,
            local,
            store,
        })
    }

    pub(crate) fn manifest_bytes(&self) -> Option<&[u8]> {
        self.outer
            .iter()
            .find(|m| m.path == "Manifest.txt")
            .map(|m| &m.data[..])
    }

    /// state.tgz holds the 7.0 U2+ pair (`local.tgz.ve` / `encryption.info`).
    pub(crate) fn encrypted(&self) -> bool {
        matches!(&self.state, Some(Ok(members))
            if members.iter().any(|m| m.path == "local.tgz.ve" || m.path == "encryption.info"))
    }

    /// The saved configuration as diff sees it: `Manifest.txt` (when present), every member of
    /// `local.tgz`, and the ConfigStore parsed. Fails when the saved files or the store cannot
    /// be read, saying whether for want of a recovery key or for damage.
    pub(crate) fn saved(self) -> Result<Saved, ReadError> {
        let mut files = BTreeMap::new();
        if let Some(m) = self.manifest_bytes() {
            files.insert("Manifest.txt".to_string(), m.to_vec());
        }
        let invalid = |m: String| ReadError::Invalid(m);
        match self.local {
            Some(Ok(members)) => {
                for f in members {
                    files.insert(f.path, f.data);
                }
            }
            Some(Err(e)) => return Err(invalid(e)),
            None => {
                return Err(match (self.state, &self.encryption) {
                    (None, _) => invalid(BundleError::MissingMember("state.tgz").to_string()),
                    (Some(Err(e)), _) => invalid(e.to_string()),
                    (Some(Ok(_)), Some(enc)) => match &enc.opened {
                        Opened::Sealed(why) => ReadError::Sealed(why.clone()),
                        Opened::Failed(why) => invalid(format!("encrypted configuration: {why}")),
                        Opened::Yes { .. } => invalid("local.tgz.ve opened to nothing".into()),
                    },
                    (Some(Ok(_)), None) => {
                        invalid(BundleError::MissingMember("local.tgz in state.tgz").to_string())
                    }
                })
            }
        }
        let store = match self.store {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => return Err(invalid(format!("{}: {e}", configstore::BACKUP_PATH))),
        };
        Ok(Saved {
            files,
            store,
            encryption: self.encryption,
        })
    }
}

/// A bundle's saved configuration (see [`Layers::saved`]).
pub(crate) struct Saved {
    pub files: BTreeMap<String, Vec<u8>>,
    pub store: Option<ConfigStore>,
    pub encryption: Option<Encryption>,
}

/// Why a bundle's saved configuration cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// TPM-sealed, and no recovery key given opens it (facts 6.5).
    Sealed(String),
    /// Damaged or not a bundle: the reader's message.
    Invalid(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Sealed(m) | ReadError::Invalid(m) => f.write_str(m),
        }
    }
}

/// The encryption facts of a sealed state.tgz, and its plaintext when a key opens it.
fn unseal(
    ve: Option<&Member>,
    info: Option<&Member>,
    keys: &Keys,
) -> (Encryption, Option<Vec<u8>>) {
    let mut enc = Encryption {
        mode: None,
        key_id: None,
        recovery_id: None,
        keystore_error: None,
        envelope_size: ve.map(|m| m.data.len() as u64),
        header: None,
        envelope_error: None,
        opened: Opened::Failed(String::new()),
    };
    let keystore = match info {
        None => {
            enc.keystore_error = Some("no encryption.info next to local.tgz.ve".into());
            None
        }
        Some(m) => match KeyStore::parse(&m.data) {
            Ok(ks) => Some(ks),
            Err(e) => {
                enc.keystore_error = Some(e.to_string());
                None
            }
        },
    };
    if let Some(ks) = &keystore {
        enc.mode = Some(ks.mode());
        enc.key_id = Some(format_uuid(&ks.key_id).to_ascii_lowercase());
        if let Material::Tpm { recovery_id, .. } = &ks.material {
            enc.recovery_id = Some(format!("{{{}}}", format_uuid(recovery_id)));
        }
    }
    match ve {
        None => enc.envelope_error = Some("no local.tgz.ve next to encryption.info".into()),
        Some(m) => match envelope::read_header(&m.data) {
            Ok(h) => enc.header = Some(h),
            Err(e) => enc.envelope_error = Some(format!("local.tgz.ve: {e}")),
        },
    }
    // Nothing to open with, or nothing to open: the first error says why.
    let (Some(ks), Some(ve), Some(_)) = (&keystore, ve, &enc.header) else {
        let why = enc
            .keystore_error
            .clone()
            .or_else(|| enc.envelope_error.clone())
            .unwrap_or_default();
        enc.opened = Opened::Failed(why);
        return (enc, None);
    };
    // The key by the boot's own rule (esxi_sim::state::key_for): NONE derives it from
    // encryption.info; TPM has no TPM here, so only a recovery key given can unwrap it.
    let with = match ks.mode() {
        Mode::None => OpenedWith::NoneKey,
        Mode::Tpm => OpenedWith::RecoveryKey,
    };
    let key = if keys.recovery.is_empty() {
        key_for(ks, KeyContext::default()).ok()
    } else {
        keys.recovery.iter().find_map(|digits| {
            let ctx = KeyContext {
                tpm: None,
                recovery: Some(digits),
            };
            key_for(ks, ctx).ok()
        })
    }
    .map(|(key, _)| key);
    let Some(key) = key else {
        // Facts 6.5: sealed to the source host's TPM; only its recovery key opens it elsewhere.
        let id = enc.recovery_id.clone().unwrap_or_default();
        enc.opened = Opened::Sealed(if keys.recovery.is_empty() {
            format!(
                "the configuration is TPM-sealed to its host's TPM: give --recovery-key with \
                 the key of recovery ID {id} (`esxcli system settings encryption recovery list` \
                 on the source host)"
            )
        } else {
            format!(
                "the configuration is TPM-sealed and the recovery key given does not open it: \
                 it needs the key of recovery ID {id}"
            )
        });
        return (enc, None);
    };
    match envelope::open_with_filler(&ve.data, &key, CONFIG_AAD) {
        Ok((plain, random)) => {
            // `random` is the filler followed by the footer block's random part (3,584 bytes).
            let filler = random.len().saturating_sub(BLOCK - 512) as u64;
            enc.opened = Opened::Yes {
                with,
                plaintext: plain.len() as u64,
                filler,
            };
            (enc, Some(plain))
        }
        Err(e) => {
            let why = match (&e, with) {
                (EnvelopeError::WrongKey, OpenedWith::NoneKey) => format!(
                    "local.tgz.ve: {e}: the key derived from encryption.info is not the one \
                     it was sealed with"
                ),
                _ => format!("local.tgz.ve: {e}"),
            };
            enc.opened = Opened::Failed(why);
            (enc, None)
        }
    }
}
