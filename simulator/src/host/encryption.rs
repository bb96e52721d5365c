//! The encrypted configuration of a 7.0 U2+ host (facts sections 6.4 and 6.5): its key store
//! (NONE or TPM mode), its key, its recovery key, and what happens when the board and its TPM
//! are replaced.
//!
//! - At the first boot the host makes a key store: NONE mode by default (obfuscation: the key is
//!   derived from `encryption.info` itself), TPM mode when asked for and a TPM is present ("if
//!   the TPM is unusable at first boot the mode is NONE").
//! - `esxcli system settings encryption set --mode=TPM` switches a running host to TPM mode; it
//!   cannot be undone. TPM mode seals a new key to the board's TPM and makes a recovery key
//!   (Recovery ID + 16 groups of 6 digits), which can be rotated.
//! - The key store is configuration like any other: `etc/vmware/encryption.info` in RAM (0600,
//!   marked, so saved), beside local.tgz.ve on the boot bank, and (\[inferred\]) the mode and the
//!   recovery key's digits in the ConfigStore, inside the sealed archive.
//! - A boot opens the saved state with the board's TPM; on a new board it cannot, and it stops
//!   (`Unable to restore system configuration. A security violation was detected.`) until it is
//!   powered on with the recovery key (the boot option `encryptionRecoveryKey=`); the next save
//!   then seals the key to the new TPM.

use std::sync::Arc;

use super::etc::Bytes;
use super::events::EventKind;
use super::tpm::Tpm;
use super::{Host, HostError, PowerState};
use crate::configstore::{Column, Key};
use crate::keystore::{KeyStore, Material, Mode, RecoveryKey, SharedNoneMaterial};
use crate::profile::Era;
use crate::state::{iv_for, Seal, SealKey};

/// Where the key store lives in RAM (and so in the archive).
pub const KEYSTORE_PATH: &str = "etc/vmware/encryption.info";

/// One host's key state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encryption {
    pub mode: Mode,
    pub key_id: [u8; 16],
    /// NONE mode: data1 and data2 (the key derives from them).
    none: Option<SharedNoneMaterial>,
    /// TPM mode: the key, its seal to this board's TPM, and the recovery key's wrap of it.
    tpm_key: Option<[u8; 32]>,
    sealed: Vec<u8>,
    recovery_id: [u8; 16],
    recovery_data: Vec<u8>,
    /// The recovery key's digits, when this host knows them.
    recovery: Option<RecoveryKey>,
    /// Envelopes sealed under this key: the next save's IV.
    seals: u64,
    pub require_secure_boot: bool,
}

impl Encryption {
    /// The key store (`encryption.info`).
    pub fn keystore(&self) -> KeyStore {
        let material = match (&self.none, self.mode) {
            (Some(m), Mode::None) => Material::None {
                data1: m.0,
                data2: m.1,
            },
            _ => Material::Tpm {
                sealed: self.sealed.clone(),
                recovery_id: self.recovery_id,
                recovery_data: self.recovery_data.clone(),
            },
        };
        KeyStore {
            key_id: self.key_id,
            material,
        }
    }

    /// How the next save is sealed (its IV counts up). `text` is the key store as RAM holds
    /// it (`etc/vmware/encryption.info`).
    pub(crate) fn seal_for_save(&mut self, filler_seed: u64, text: Bytes) -> Seal {
        let iv = iv_for(self.seals);
        self.seals += 1;
        Seal {
            text,
            keystore: self.keystore(),
            key: match self.tpm_key {
                Some(k) => SealKey::Known(k),
                None => SealKey::Derived,
            },
            iv,
            filler_seed,
        }
    }

    pub fn recovery_key(&self) -> Option<&RecoveryKey> {
        self.recovery.as_ref()
    }
}

impl Host {
    /// The key state (7.0 U2+ hosts that are running).
    pub fn encryption(&self) -> Option<&Encryption> {
        self.crypt.as_ref()
    }

    /// The recovery key of a TPM-mode host, as `esxcli system settings encryption recovery
    /// list` shows it.
    pub fn recovery_key(&self) -> Option<&RecoveryKey> {
        self.crypt.as_ref()?.recovery_key()
    }

    /// The board's TPM (None: the host has none).
    pub fn tpm(&self) -> Option<Tpm> {
        self.tpm
    }

    /// Why the last boot stopped, while the host is down for it.
    pub fn boot_halted(&self) -> Option<&str> {
        self.boot_halt.as_deref()
    }

    fn require_encrypted_era(&self) -> Result<(), HostError> {
        if self.profile.era == Era::Encrypted {
            Ok(())
        } else {
            Err(HostError::InvalidArgument(format!(
                "ESXi {} does not encrypt its configuration (7.0 U2 and later do)",
                self.profile.release
            )))
        }
    }

    /// `esxcli system settings encryption set --mode=...`: NONE → TPM seals a new key to the TPM
    /// and makes a recovery key. TPM mode cannot be undone.
    pub fn set_encryption_mode(&mut self, mode: Mode) -> Result<(), HostError> {
        self.require_running()?;
        self.require_encrypted_era()?;
        let current = self.crypt.as_ref().map(|c| c.mode).unwrap_or(Mode::None);
        match (current, mode) {
            (a, b) if a == b => Ok(()),
            (Mode::Tpm, Mode::None) => Err(HostError::InvalidState(
                "The encryption mode cannot be changed from TPM to NONE.".into(),
            )),
            (Mode::None, Mode::Tpm) => {
                let tpm = self.tpm.ok_or_else(|| {
                    HostError::InvalidState("This host has no usable TPM.".into())
                })?;
                let key_id = self.draw_id();
                let crypt = self.new_tpm_keys(tpm, key_id);
                self.crypt = Some(crypt);
                self.write_key_files();
                self.log(EventKind::EncryptionModeChanged { mode: Mode::Tpm });
                Ok(())
            }
            _ => unreachable!("two modes"),
        }
    }

    /// `esxcli system settings encryption set --require-secure-boot`.
    pub fn set_require_secure_boot(&mut self, yes: bool) -> Result<(), HostError> {
        self.require_running()?;
        self.require_encrypted_era()?;
        if let Some(c) = self.crypt.as_mut() {
            c.require_secure_boot = yes;
        }
        self.write_key_files();
        Ok(())
    }

    /// `esxcli system settings encryption recovery rotate`: a new recovery key for the same
    /// configuration key.
    pub fn rotate_recovery_key(&mut self) -> Result<(), HostError> {
        self.require_running()?;
        self.require_encrypted_era()?;
        let Some(key) = self.crypt.as_ref().and_then(|c| c.tpm_key) else {
            return Err(HostError::InvalidState(
                "Recovery keys exist in TPM mode only.".into(),
            ));
        };
        let rk = self.draw_recovery_key();
        let nonce = self.draw_nonce();
        let c = self.crypt.as_mut().expect("checked");
        c.recovery_id = rk.id;
        c.recovery_data = rk.wrap(&key, nonce);
        c.recovery = Some(rk);
        self.write_key_files();
        self.log(EventKind::RecoveryKeyRotated);
        Ok(())
    }

    /// The motherboard (and its TPM) is replaced: the host is shut down first (gracefully,
    /// saving), then comes back on a board whose TPM cannot unseal what the old one sealed. It
    /// stays off until powered on. The SMBIOS UUID is kept unless `new_uuid` (vendors reprogram
    /// it to the old value as a rule \[inferred\]).
    pub fn replace_board(&mut self, new_uuid: bool) -> Result<(), HostError> {
        if self.power != PowerState::Off {
            self.shutdown(super::RebootKind::Graceful)?;
        }
        self.board_generation += 1;
        if self.tpm.is_some() {
            self.tpm = Some(Tpm {
                board: crate::rng::Rng::fork(
                    self.identity.seed,
                    &format!("board {}", self.board_generation),
                )
                .next_u64(),
            });
        }
        if new_uuid {
            let mut b = [0u8; 16];
            self.rng.fill(&mut b);
            self.identity.smbios_uuid = super::format_uuid(&b);
        }
        // What the old TPM sealed is another board's now.
        self.recheck_bank();
        self.log(EventKind::BoardReplaced { new_uuid });
        Ok(())
    }

    /// Powers on a host that is off with `encryptionRecoveryKey=<key>` on the boot line.
    pub fn power_on_with_recovery_key(&mut self, key: &str) -> Result<(), HostError> {
        let digits = RecoveryKey::parse_key(key).map_err(HostError::InvalidArgument)?;
        self.recovery_prompt = Some(digits);
        let r = self.power_on();
        if r.is_err() {
            self.recovery_prompt = None;
        }
        r
    }

    // ---- inside the model ----------------------------------------------------------------

    fn draw_id(&mut self) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b);
        b
    }

    fn draw_nonce(&mut self) -> [u8; 12] {
        let mut b = [0u8; 12];
        self.rng.fill(&mut b);
        b
    }

    fn draw_recovery_key(&mut self) -> RecoveryKey {
        let id = self.draw_id();
        let draws: Vec<u64> = (0..16).map(|_| self.rng.next_u64()).collect();
        RecoveryKey::from_draws(id, draws)
    }

    fn new_tpm_keys(&mut self, tpm: Tpm, key_id: [u8; 16]) -> Encryption {
        let mut key = [0u8; 32];
        self.rng.fill(&mut key);
        let nonce = self.draw_nonce();
        let rk = self.draw_recovery_key();
        let wrap_nonce = self.draw_nonce();
        Encryption {
            mode: Mode::Tpm,
            key_id,
            none: None,
            tpm_key: Some(key),
            sealed: tpm.seal(&key, nonce),
            recovery_id: rk.id,
            recovery_data: rk.wrap(&key, wrap_nonce),
            recovery: Some(rk),
            seals: 0,
            require_secure_boot: false,
        }
    }

    /// The first boot's key store (a fresh install, a reset, a stateless boot).
    pub(crate) fn first_boot_keys(&mut self) {
        if self.profile.era != Era::Encrypted {
            self.crypt = None;
            return;
        }
        let key_id = self.draw_id();
        let want_tpm = self.config_mode == Mode::Tpm;
        self.crypt = Some(match (want_tpm, self.tpm) {
            (true, Some(tpm)) => self.new_tpm_keys(tpm, key_id),
            _ => {
                // The host keeps its NONE material from install on (a fleet's is shared), so a
                // reset's first save pays no new derivation \[inferred: whether a real reset draws
                // new data1/data2 is unknown; only those 32 bytes of encryption.info differ\].
                let none = match &self.none_material {
                    Some(m) => m.clone(),
                    None => {
                        let mut d1 = [0u8; 16];
                        let mut d2 = [0u8; 16];
                        self.rng.fill(&mut d1);
                        self.rng.fill(&mut d2);
                        let m = Arc::new((d1, d2));
                        self.none_material = Some(m.clone());
                        m
                    }
                };
                Encryption {
                    mode: Mode::None,
                    key_id,
                    none: Some(none),
                    tpm_key: None,
                    sealed: Vec::new(),
                    recovery_id: [0; 16],
                    recovery_data: Vec::new(),
                    recovery: None,
                    seals: 0,
                    require_secure_boot: false,
                }
            }
        });
        self.write_key_files();
    }

    /// After a boot from a sealed state: the host goes on with that state's key store. A key
    /// opened with the recovery key is sealed again to this board's TPM (the next save writes
    /// it: "auto-backup.sh seals it to the new TPM", facts 6.5).
    pub(crate) fn adopt_keys(&mut self, ks: &KeyStore, key: [u8; 32], by_recovery: Option<&str>) {
        let settings = self
            .store
            .as_ref()
            .and_then(|s| s.json(&Key::new("esx", "encryption", "settings", ""), Column::User));
        let secure_boot = settings
            .as_ref()
            .and_then(|v| v["require_secure_boot"].as_bool())
            .unwrap_or(false);
        let mut c = Encryption {
            mode: ks.mode(),
            key_id: ks.key_id,
            none: None,
            tpm_key: None,
            sealed: Vec::new(),
            recovery_id: [0; 16],
            recovery_data: Vec::new(),
            recovery: None,
            seals: 0,
            require_secure_boot: secure_boot,
        };
        match &ks.material {
            Material::None { data1, data2 } => {
                // Share the fleet's material when it is the same (one derivation per process).
                c.none = Some(match &self.none_material {
                    Some(m) if m.0 == *data1 && m.1 == *data2 => m.clone(),
                    _ => Arc::new((*data1, *data2)),
                });
            }
            Material::Tpm {
                sealed,
                recovery_id,
                recovery_data,
            } => {
                c.tpm_key = Some(key);
                c.recovery_id = *recovery_id;
                c.recovery_data = recovery_data.clone();
                let own = self.tpm.and_then(|t| t.unseal(sealed)) == Some(key);
                c.sealed = if own {
                    sealed.clone()
                } else {
                    let nonce = self.draw_nonce();
                    match self.tpm {
                        Some(t) => t.seal(&key, nonce),
                        None => sealed.clone(),
                    }
                };
                c.recovery = self.stored_recovery_key(recovery_id).or_else(|| {
                    by_recovery.map(|digits| RecoveryKey {
                        id: *recovery_id,
                        digits: digits.to_string(),
                    })
                });
            }
        }
        // Later saves under the same key go on counting from what the bank shows.
        c.seals = self.seals_on_bank();
        let resealed = c.sealed != self.bank_sealed_blob();
        self.crypt = Some(c);
        self.write_key_files();
        if resealed && ks.mode() == Mode::Tpm {
            self.log(EventKind::Resealed);
        }
    }

    fn stored_recovery_key(&self, id: &[u8; 16]) -> Option<RecoveryKey> {
        let store = self.store.as_ref()?;
        let rk = RecoveryKey {
            id: *id,
            digits: String::new(),
        };
        let v = store.json(
            &Key::new("esx", "encryption", "recovery_keys", &rk.id_text()),
            Column::User,
        )?;
        let digits = RecoveryKey::parse_key(v["key"].as_str()?).ok()?;
        Some(RecoveryKey { id: *id, digits })
    }

    fn seals_on_bank(&self) -> u64 {
        self.bootbank()
            .and_then(|b| b.saved_archive())
            .and_then(|a| a.seal.as_ref())
            .map(|s| u64::from_le_bytes(s.iv[4..].try_into().expect("8")) + 1)
            .unwrap_or(0)
    }

    fn bank_sealed_blob(&self) -> Vec<u8> {
        match self.bootbank().and_then(|b| b.saved_keystore()) {
            Some(KeyStore {
                material: Material::Tpm { sealed, .. },
                ..
            }) => sealed.clone(),
            _ => Vec::new(),
        }
    }

    /// Writes the key store to RAM `/etc` (0600, marked so it is saved) and the encryption
    /// settings and recovery key to the ConfigStore.
    pub(crate) fn write_key_files(&mut self) {
        let Some(c) = self.crypt.clone() else {
            return;
        };
        let text = c.keystore().render();
        let now = self.now_secs();
        let changed = self.etc.read(KEYSTORE_PATH).map(|b| &b[..]) != Some(text.as_bytes());
        if changed {
            self.etc.write(
                KEYSTORE_PATH,
                Arc::from(text.into_bytes().into_boxed_slice()),
                now,
            );
            self.etc.chmod(KEYSTORE_PATH, 0o600);
            // A new file has no marker: this one is configuration, so it gets one.
            let marker = super::etc::marker_of(KEYSTORE_PATH);
            if !self.etc.exists(&marker) {
                self.etc.write(&marker, Arc::from(&b""[..]), now);
            }
        }
        let t = self.now;
        if let Some(store) = self.store.as_mut() {
            let settings = format!(
                r#"{{"mode":"{}","require_executables_only_from_installed_vibs":false,"require_secure_boot":{}}}"#,
                c.mode, c.require_secure_boot
            );
            store.set(
                Key::new("esx", "encryption", "settings", ""),
                Column::User,
                Some(&settings),
                "1.0",
                t,
            );
            let existing: Vec<Key> = store
                .rows_of("esx", "encryption", "recovery_keys")
                .map(|(k, _)| k.clone())
                .collect();
            let current = c.recovery.as_ref().map(|r| r.id_text());
            for k in existing {
                if Some(&k.identifier) != current.as_ref() {
                    store.remove(&k);
                }
            }
            if let Some(rk) = &c.recovery {
                store.set(
                    Key::new("esx", "encryption", "recovery_keys", &rk.id_text()),
                    Column::User,
                    Some(&format!(r#"{{"key":"{}"}}"#, rk.key_text())),
                    "1.0",
                    t,
                );
            }
        }
    }
}
