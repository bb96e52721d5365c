//! Power: boot, crash, power cut, graceful and forced reboots.
//!
//! - Boot overlays `/bootbank/state.tgz` on the image (facts section 1); a missing or corrupt
//!   state.tgz boots the image defaults, and the event log says why.
//! - A crash (PSOD) or a power cut loses RAM: everything changed since the last completed save.
//!   The host stays down until [`Host::power_on`] (ESXi's default `Misc.BlueScreenTimeout` is 0).
//! - A graceful reboot runs the shutdown save (`inittab`: `::shutdown:/bin/backup.sh 1`) first; a
//!   forced reboot skips it on purpose (restore and reset rely on that: facts section 1).
//! - A reboot keeps the host unreachable for its boot time (virtual); [`Host::advance`] past it
//!   completes the boot.

use std::fmt;
use std::sync::Arc;

use super::etc::{Bytes, EtcFs};
use super::events::{EventKind, SaveTrigger};
use super::image::Generate;
use super::{accounts, Host, HostError};
use crate::clock::SimTime;
use crate::state::StateError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerState {
    On,
    Off,
    Booting { ready_at: SimTime },
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerState::On => write!(f, "powered on"),
            PowerState::Off => write!(f, "powered off"),
            PowerState::Booting { ready_at } => write!(f, "booting until {ready_at}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebootKind {
    /// Shutdown save first (`RebootHost_Task(force=false)`, `reboot`).
    Graceful,
    /// No save (`reboot -f`; restore and reset).
    Forced,
}

impl Host {
    /// A PSOD: RAM is lost and the host stays down.
    pub fn crash(&mut self) -> Result<(), HostError> {
        if self.power == PowerState::Off {
            return Err(HostError::NotRunning(self.power));
        }
        self.lose_ram();
        self.power = PowerState::Off;
        self.log(EventKind::Crashed);
        Ok(())
    }

    /// The power goes now: RAM is lost and the host stays down.
    pub fn power_cut(&mut self) -> Result<(), HostError> {
        if self.power == PowerState::Off {
            return Err(HostError::NotRunning(self.power));
        }
        self.cut_power(false);
        Ok(())
    }

    /// The power will go during the next save, after state.tgz.$$ is written and before it is
    /// renamed over state.tgz.
    pub fn arm_power_cut_during_next_save(&mut self) {
        self.power_cut_armed = true;
    }

    pub fn power_cut_armed(&self) -> bool {
        self.power_cut_armed
    }

    pub(crate) fn cut_power(&mut self, during_save: bool) {
        self.lose_ram();
        self.power = PowerState::Off;
        self.log(EventKind::PowerCut { during_save });
    }

    /// Powers a host on that is off; it boots for its boot time.
    pub fn power_on(&mut self) -> Result<(), HostError> {
        if self.power != PowerState::Off {
            return Err(HostError::InvalidState(format!(
                "power on: the host is already {}",
                self.power
            )));
        }
        self.log(EventKind::PoweredOn);
        self.start_boot();
        Ok(())
    }

    /// Reboots a running host.
    pub fn reboot(&mut self, kind: RebootKind, why: &str) -> Result<(), HostError> {
        self.require_running()?;
        let graceful = kind == RebootKind::Graceful;
        self.log(EventKind::Reboot {
            graceful,
            why: why.to_string(),
        });
        if graceful {
            // A failed shutdown save is logged and the reboot goes on. On a real host invalid SSL
            // certificates make shutdown spin forever; here an operator has power-cycled it.
            let _ = self.backup_sh(SaveTrigger::Shutdown);
            if self.power == PowerState::Off {
                return Ok(()); // an armed power cut hit the shutdown save
            }
        }
        self.lose_ram();
        self.start_boot();
        Ok(())
    }

    /// Shuts a running host down (`ShutdownHost_Task`); graceful runs the shutdown save.
    pub fn shutdown(&mut self, kind: RebootKind) -> Result<(), HostError> {
        self.require_running()?;
        if kind == RebootKind::Graceful {
            let _ = self.backup_sh(SaveTrigger::Shutdown);
        }
        self.lose_ram();
        self.power = PowerState::Off;
        Ok(())
    }

    /// Advances the clock to the end of a boot in progress (no-op otherwise).
    pub fn wait_until_running(&mut self) {
        if let PowerState::Booting { ready_at } = self.power {
            self.advance_to(ready_at);
        }
    }

    /// RAM is volatile: `/etc`, the ConfigStore, `/tmp` and the lock file go.
    fn lose_ram(&mut self) {
        self.etc = EtcFs::pristine(self.etc.image().clone());
        self.store = self.etc.image().store.clone();
        self.crypt = None;
        self.clean_generation = None;
        self.upload = None;
        self.lock = None;
        self.next_auto = None;
    }

    pub(crate) fn start_boot(&mut self) {
        let ready_at = self.now.plus(self.boot_time);
        self.power = PowerState::Booting { ready_at };
        self.boot_halt = None;
        if self.boot_time.is_zero() {
            self.complete_boot();
        }
    }

    /// The boot loader mounts state.tgz last, over the image. A 7.0 U2+ state sealed with a key
    /// this board cannot have stops the boot (facts 6.5) unless a recovery key was given.
    pub(crate) fn complete_boot(&mut self) {
        // A locked state is read again with what this boot knows: a recovery key typed now
        // opens what the board's TPM cannot, and without one the reason says a key is needed
        // (not what an earlier boot's wrong key gave).
        if matches!(
            self.bootbank().and_then(|b| b.unusable()),
            Some(StateError::Locked(_))
        ) {
            self.recheck_bank();
        }
        let recovery = self.recovery_prompt.take();
        let image = self.etc.image().clone();
        let bank = self.bootbank();
        let unusable = bank.and_then(|b| b.unusable()).cloned();
        if let (Some(StateError::Locked(why)), Some(_)) = (&unusable, bank.and_then(|b| b.state()))
        {
            let reason = why.clone();
            self.power = PowerState::Off;
            self.boot_halt = Some(reason.clone());
            self.log(EventKind::BootHalted { reason });
            return;
        }
        let (etc, store, keys, from_state, note, files) = match bank {
            None => (
                EtcFs::pristine(image),
                None,
                None,
                false,
                Some("stateless: no /bootbank".to_string()),
                0,
            ),
            Some(bank) => match (bank.state(), bank.corrupt_reason()) {
                (None, _) => (EtcFs::pristine(image), None, None, false, None, 0),
                (Some(_), Some(why)) => (
                    EtcFs::pristine(image),
                    None,
                    None,
                    false,
                    Some(format!("state.tgz unusable: {why}")),
                    0,
                ),
                (Some(_), None) => {
                    let etc_files: std::collections::BTreeMap<_, _> = bank
                        .saved()
                        .iter()
                        .filter(|(p, _)| super::etc::normalize(p).is_ok())
                        .map(|(p, n)| (p.clone(), n.clone()))
                        .collect();
                    let n = bank.saved().len();
                    let keys = bank.saved_keystore().cloned().zip(bank.saved_key());
                    (
                        EtcFs::booted(image, &etc_files),
                        bank.saved_store().cloned(),
                        keys,
                        true,
                        None,
                        n,
                    )
                }
            },
        };
        self.etc = etc;
        if self.profile.era.has_store() {
            self.store = store.or_else(|| self.etc.image().store.clone());
        }
        self.clean_generation = from_state.then(|| self.config_generation());
        self.power = PowerState::On;
        self.boots += 1;
        self.booted_at = self.now;
        self.first_boot_fixups();
        if !from_state {
            self.fresh_configuration();
        }
        if self.banks.is_none() {
            // Auto Deploy re-applies the host's identity at every stateless boot.
            self.apply_install_identity();
        }
        match keys {
            Some((ks, key)) => {
                let by_recovery = recovery.as_deref().filter(|_| {
                    // Opened with the recovery key when this board's TPM could not have.
                    matches!(&ks.material, crate::keystore::Material::Tpm { sealed, .. }
                        if self.tpm.and_then(|t| t.unseal(sealed)).is_none())
                });
                self.adopt_keys(&ks, key, by_recovery);
                if by_recovery.is_some() {
                    self.log(EventKind::Recovered);
                }
            }
            None if !from_state => {}       // fresh_configuration made them
            None => self.first_boot_keys(), // a plain state on an encrypting release
        }
        self.apply_store_at_boot();
        if from_state {
            // What the boot itself derived from the saved state (a re-seal, /etc from the
            // store) is not a change a crash could lose... unless it differs from the bank,
            // which auto-backup's diff will tell.
            self.clean_generation = None;
        }
        self.next_auto = Some(self.schedule.next_after(self.now));
        self.log(EventKind::Booted {
            from_state,
            files,
            note,
        });
    }

    /// A configuration that starts from the image (an install, a reset, a stateless or a
    /// corrupt boot): what the release's first boot writes (facts 6.2, seed 000), the
    /// ConfigStore's per-host rows, and (7.0 U2+) a new key store.
    pub(crate) fn fresh_configuration(&mut self) {
        let now = self.now_secs();
        let first_boot = self.etc.image().first_boot.clone();
        for fb in first_boot {
            let data: Vec<u8> = match fb.how {
                Generate::Rewrite => match self.etc.read(fb.path) {
                    Some(d) => d.to_vec(),
                    None => continue,
                },
                Generate::Pem(label, len) => self.pem(label, len).into_bytes(),
                Generate::PublicKey(algo, len) => {
                    const B64: &[u8] =
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                    let body = self.rng.string(B64, len);
                    format!(
                        "{algo} AAAA{body} root@{}\n",
                        self.identity.install_hostname
                    )
                    .into_bytes()
                }
                Generate::Random(n) => {
                    let mut b = vec![0u8; n];
                    self.rng.fill(&mut b);
                    b
                }
                Generate::Lease => "lease {\n  interface \"vmk0\";\n  fixed-address 0.0.0.0;\n  \
                     option dhcp-lease-time 86400;\n  renew 0 1970/01/01 00:00:00;\n}\n"
                    .as_bytes()
                    .to_vec(),
            };
            // The same bytes as the image's keep sharing its allocation.
            let data: Bytes = match self.etc.read(fb.path) {
                Some(old) if old[..] == data[..] => old.clone(),
                _ => Arc::from(data.into_boxed_slice()),
            };
            self.etc.write(fb.path, data, now);
        }
        if self.profile.era.has_store() {
            self.store = self.etc.image().store.clone();
            self.install_store_rows();
        }
        self.first_boot_keys();
    }

    /// What the first boot generates when the image left it empty: the host's SSL key and
    /// certificate and the vmkernel system UUID. PEM-shaped placeholders, not working keys.
    pub(crate) fn first_boot_fixups(&mut self) {
        let now = self.now_secs();
        let empty = |h: &Host, p: &str| h.etc.read(p).is_none_or(|d| d.is_empty());
        if empty(self, "etc/vmware/ssl/rui.crt") || empty(self, "etc/vmware/ssl/rui.key") {
            let crt = self.pem("CERTIFICATE", 1020);
            let key = self.pem("PRIVATE KEY", 1620);
            self.etc.write(
                "etc/vmware/ssl/rui.crt",
                Arc::from(crt.into_bytes().into_boxed_slice()),
                now,
            );
            self.etc.write(
                "etc/vmware/ssl/rui.key",
                Arc::from(key.into_bytes().into_boxed_slice()),
                now,
            );
        }
        if self
            .esx_conf_value("/system/uuid")
            .is_none_or(|u| u.is_empty())
        {
            let mut b = [0u8; 16];
            self.rng.fill(&mut b);
            let uuid = super::hex_groups(&b, b"0123456789abcdef", &[4, 4, 2, 6]);
            let _ = self.set_esx_conf_value("/system/uuid", &uuid);
        }
    }

    fn pem(&mut self, label: &str, body_len: usize) -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let body = self.rng.string(B64, body_len);
        let mut s = format!("-----BEGIN {label}-----\n");
        for chunk in body.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            s.push('\n');
        }
        s.push_str(&format!("-----END {label}-----\n"));
        s
    }

    /// The installer's settings: hostname (esx.conf and /etc/hosts) and the root password.
    pub(crate) fn apply_install_identity(&mut self) {
        let name = self.identity.install_hostname.clone();
        let _ = self.set_esx_conf_value("/adv/Misc/HostName", &name);
        let short = name.split('.').next().unwrap_or(&name).to_string();
        let hosts = format!(
            "{}127.0.0.1\t{name} {short}\n",
            String::from_utf8_lossy(
                self.etc
                    .read("etc/hosts")
                    .map(|b| &b[..])
                    .unwrap_or_default()
            )
        );
        let _ = self.write_file("etc/hosts", hosts);
        let hash = match &self.identity.install_hash {
            Some(h) => h.to_string(), // checked against the password when the host was built
            None if self.identity.install_password.is_empty() => String::new(),
            None => accounts::hash_password(&self.identity.install_password, &mut self.rng),
        };
        let shadow = String::from_utf8_lossy(
            self.etc
                .read("etc/shadow")
                .map(|b| &b[..])
                .unwrap_or_default(),
        )
        .into_owned();
        if let Ok(s) = accounts::set_hash(&shadow, "root", &hash, self.now_secs() / 86_400) {
            let _ = self.write_file("etc/shadow", s);
        }
        // 7.0.3+: root's account is in the ConfigStore too (`placement`).
        if let Some((uid, desc)) = self.passwd_entry("root") {
            self.mirror_account("root", Some((uid, &hash, &desc)));
        }
    }
}
