//! HostFirmwareSystem's semantics on the model: backup bundles, upload, restore, reset.
//!
//! Restore follows firmwareConfig.sh (6.7 GA), in order (facts section 2): maintenance mode
//! (InvalidState), an uploaded `/tmp/configBundle.tgz` (FileNotFound), a Manifest.txt
//! ("Invalid Bundle: Missing Manifest File"), RELEASELEVEL equal to the host's (mismatch fails even
//! with force), UUID equal unless forced; then state.tgz is copied to `/bootbank`, kernelopt and
//! useropts are set, `--- state.tgz` is ensured, and the host force-reboots so the running
//! configuration is never written back over the restored one. Rejections change nothing. A
//! read-only or full boot device ([`super::flash`]) rejects a restore or a reset, as
//! [`HostError::SaveFailed`].

use std::sync::Arc;

use super::bootbank::StateTgz;
use super::etc::Bytes;
use super::events::{EventKind, SaveTrigger};
use super::persist::SaveError;
use super::{Host, HostError, RebootKind, INVALID_STATE_TEXT};
use crate::bundle::{bundle_file_name, BundleError, ConfigBundle, Manifest};
use crate::profile::{BundleState, Profile, TpmBundleRestore};
use crate::state::{Decoded, SavedArchive, StateError};

/// Where uploads land and restore reads from.
pub const UPLOAD_PATH: &str = "/tmp/configBundle.tgz";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupBundle {
    /// `configBundle-<hostname>.tgz`.
    pub file_name: String,
    pub bytes: Bytes,
    pub manifest: Manifest,
}

impl Host {
    /// BackupFirmwareConfiguration: save now (backup.sh 0), then pack Manifest.txt and the fresh
    /// state.tgz into `configBundle-<hostname>.tgz`.
    pub fn backup_bundle(&mut self) -> Result<BackupBundle, HostError> {
        self.require_running()?;
        self.backup_sh(SaveTrigger::Backup)
            .map_err(HostError::SaveFailed)?;
        let bank = self
            .bootbank()
            .ok_or(HostError::SaveFailed(SaveError::NoBootbank))?;
        // Facts 6.1 [unconfirmed]: by default the bundle carries state.tgz as it is on the boot
        // bank (7.0 U2+: the encrypted pair); `bundle_state = "plain"` packs a plain local.tgz.
        let state = match (self.profile.bundle_state, bank.saved_archive()) {
            (BundleState::Plain, Some(a)) if a.seal.is_some() => {
                let plain = SavedArchive::new(a.local.clone(), None, self.now_secs());
                plain.bytes()
            }
            _ => bank
                .state_tgz()
                .ok_or_else(|| HostError::FileNotFound("/bootbank/state.tgz".into()))?,
        };
        let manifest = Manifest {
            release_level: self.profile.release_level.clone(),
            uuid: self.identity.smbios_uuid.clone(),
            kernelopts: bank.boot_cfg.kernelopt.clone(),
            useropts: bank.useropts.clone(),
            extra: Vec::new(),
        };
        let bundle = ConfigBundle {
            manifest: manifest.clone(),
            state_tgz: state,
        };
        let bytes: Bytes = Arc::from(bundle.to_bytes(self.now_secs()).into_boxed_slice());
        let file_name = bundle_file_name(&self.hostname());
        self.log(EventKind::BundleCreated {
            name: file_name.clone(),
            bytes: bytes.len(),
        });
        Ok(BackupBundle {
            file_name,
            bytes,
            manifest,
        })
    }

    /// The PUT to `/tmp/configBundle.tgz`. Any bytes are accepted here; restore judges them.
    pub fn upload_bundle(&mut self, bytes: Vec<u8>) -> Result<(), HostError> {
        self.require_running()?;
        if bytes.len() > self.limits.max_compressed {
            return Err(HostError::InvalidBundle(BundleError::TooLarge {
                what: "upload",
                limit: self.limits.max_compressed as u64,
            }));
        }
        let n = bytes.len();
        self.upload = Some(Arc::from(bytes.into_boxed_slice()));
        self.log(EventKind::BundleUploaded { bytes: n });
        Ok(())
    }

    pub fn uploaded_bundle(&self) -> Option<&Bytes> {
        self.upload.as_ref()
    }

    /// RestoreFirmwareConfiguration(force). On success the host is rebooting (forced).
    pub fn restore(&mut self, force: bool) -> Result<(), HostError> {
        self.require_running()?;
        match self.check_restore(force) {
            Err(e) => {
                self.log(EventKind::RestoreRejected {
                    reason: e.to_string(),
                });
                Err(e)
            }
            Ok((bundle, decoded)) => {
                let bank = &mut self.banks.as_mut().expect("checked").boot;
                bank.count_write(bundle.state_tgz.len());
                bank.set_state(Some(StateTgz::Raw(bundle.state_tgz.clone())), decoded);
                bank.boot_cfg.kernelopt = bundle.manifest.kernelopts.clone();
                if !bank.boot_cfg.has_state_module() {
                    bank.boot_cfg.modules.push("state.tgz".into());
                }
                let cfg_len = bank.boot_cfg.render().len();
                bank.count_write(cfg_len);
                bank.useropts = bundle.manifest.useropts.clone();
                let uo_len = crate::bundle::gzip_bytes(bank.useropts.as_bytes()).len();
                bank.count_write(uo_len);
                self.useropts = bundle.manifest.useropts;
                self.log(EventKind::Restored { force });
                self.reboot(RebootKind::Forced, "configuration restored")
            }
        }
    }

    /// Uploads then restores: the whole client-side sequence in one call.
    pub fn restore_bundle(&mut self, bytes: Vec<u8>, force: bool) -> Result<(), HostError> {
        self.upload_bundle(bytes)?;
        self.restore(force)
    }

    #[allow(clippy::type_complexity)]
    fn check_restore(
        &self,
        force: bool,
    ) -> Result<(ConfigBundle, Result<Decoded, StateError>), HostError> {
        if !self.maintenance {
            return Err(HostError::InvalidState(INVALID_STATE_TEXT.into()));
        }
        let bytes = self
            .upload
            .as_ref()
            .ok_or_else(|| HostError::FileNotFound(UPLOAD_PATH.into()))?;
        let bundle = ConfigBundle::parse(bytes, &self.limits).map_err(HostError::InvalidBundle)?;
        let m = &bundle.manifest;
        let mismatch = || HostError::MismatchedBundle {
            bundle_uuid: m.uuid.clone(),
            host_uuid: self.identity.smbios_uuid.clone(),
            bundle_build: Profile::build_for_release_level(&m.release_level).unwrap_or(0),
            host_build: self.profile.build,
        };
        if m.release_level != self.profile.release_level {
            return Err(mismatch());
        }
        if m.uuid != self.identity.smbios_uuid && !force {
            return Err(mismatch());
        }
        if self.banks.is_none() {
            return Err(HostError::SaveFailed(SaveError::NoBootbank));
        }
        // A sealed state is opened now when this host can (NONE: its own key store; TPM: this
        // board's seal), so a damaged one is refused before anything changes. One sealed to
        // another TPM cannot be checked: accepted or refused per the profile (facts 6.5,
        // [unconfirmed]); accepted, the boot then needs the source host's recovery key.
        let decoded = self.decode_state(&bundle.state_tgz);
        match &decoded {
            Err(StateError::Corrupt(why)) => {
                return Err(HostError::InvalidBundle(BundleError::Sealed(why.clone())))
            }
            Err(StateError::Locked(why))
                if self.profile.tpm_bundle_restore == TpmBundleRestore::Refuse =>
            {
                return Err(HostError::InvalidBundle(BundleError::Sealed(why.clone())))
            }
            _ => {}
        }
        // The copy to /bootbank/state.tgz meets the device's faults as a save would.
        if let Some(e) = self.flash.refuses_writes() {
            return Err(HostError::SaveFailed(e));
        }
        Ok((bundle, decoded))
    }

    /// ResetFirmwareToFactoryDefaults: remove state.tgz and its module, clear kernelopt, empty
    /// useropts and jumpstrt, forced reboot. The host comes back with the image defaults and an
    /// empty root password (facts section 2).
    pub fn reset_to_factory_defaults(&mut self) -> Result<(), HostError> {
        self.require_running()?;
        if !self.maintenance {
            let e = HostError::InvalidState(INVALID_STATE_TEXT.into());
            self.log(EventKind::RestoreRejected {
                reason: format!("reset: {e}"),
            });
            return Err(e);
        }
        // A reset rewrites boot.cfg: a device that refuses writes refuses it.
        if let Some(e) = self.flash.refuses_writes().filter(|_| self.banks.is_some()) {
            let e = HostError::SaveFailed(e);
            self.log(EventKind::RestoreRejected {
                reason: format!("reset: {e}"),
            });
            return Err(e);
        }
        if let Some(banks) = self.banks.as_mut() {
            let bank = &mut banks.boot;
            bank.set_state(None, Err(StateError::Corrupt("removed".into())));
            bank.boot_cfg.modules.retain(|m| m != "state.tgz");
            bank.boot_cfg.kernelopt.clear();
            bank.useropts.clear();
            bank.jumpstrt.clear();
            let len = bank.boot_cfg.render().len();
            bank.count_write(len);
        }
        self.useropts.clear();
        self.log(EventKind::ResetToDefaults);
        self.reboot(RebootKind::Forced, "reset to factory defaults")
    }
}
