//! The persistence scripts: `backup.sh` (a save), `auto-backup.sh` (the periodic job), and sync.
//!
//! backup.sh (6.x, facts section 1): fails without a boot bank; refuses to save while
//! `rui.key`/`rui.crt` are empty (its `verify_ssl_certificates`); takes `/tmp/bootbank.lck`
//! (a live holder makes a normal save give up, a stale one is cleaned, shutdown breaks it); bumps
//! `/etc/vmware/.backup.counter`; tars the marked files into `local.tgz.$$`, wraps it into
//! `state.tgz.$$`, renames that over `state.tgz` (so a power cut mid-save keeps the old one); then
//! makes sure boot.cfg's `modules=` ends with `--- state.tgz` and rewrites useropts.gz if it changed.
//!
//! auto-backup.sh: exits 1 without a boot bank; with no state.tgz yet it always saves; otherwise
//! it diffs each marked file against the saved copy (`diff -N`) and saves on the first difference,
//! so an unchanged configuration never writes to flash.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::bootbank::StateTgz;
use super::etc::Node;
use super::events::{EventKind, SaveTrigger};
use super::flash::FlashFaults;
use super::{Host, HostError, LockHolder, PowerState};
use crate::archive::{ChunkedTar, Contents};
use crate::{configstore, state};

const COUNTER: &str = "etc/vmware/.backup.counter";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveError {
    NoBootbank,
    LockBusy,
    InvalidSslCertificates,
    /// The power went during the save (an armed power cut); the host is now off.
    PowerLost,
    /// The boot device is mounted read-only ([`FlashFaults::read_only`]); nothing was written.
    ReadOnly,
    /// The boot device is full ([`FlashFaults::full`]); nothing was written.
    NoSpace,
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaveError::NoBootbank => "Bootbank cannot be found at path '/bootbank'",
            SaveError::LockBusy => "/tmp/bootbank.lck is held by another backup.sh",
            SaveError::InvalidSslCertificates => "SSL certificates are invalid",
            SaveError::PowerLost => "power lost before state.tgz.$$ was renamed over state.tgz",
            // busybox's wording for EROFS and ENOSPC.
            SaveError::ReadOnly => "cannot create /bootbank/state.tgz.$$: Read-only file system",
            SaveError::NoSpace => "cannot write /bootbank/state.tgz.$$: No space left on device",
        })
    }
}

impl std::error::Error for SaveError {}

/// What a completed save did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// False when no file was marked: backup.sh then writes no state.tgz.
    pub written: bool,
    pub files: usize,
    /// Size of the new state.tgz.
    pub bytes: usize,
    /// Marked files that differed from the previous save.
    pub changed: usize,
}

impl Host {
    /// Marked files whose RAM content differs from the saved copy, `diff -N` style. O(1) while
    /// `/etc` has not changed since RAM was last known equal to the save (`clean_generation`);
    /// the byte-wise diff runs only after a change, so rewriting identical bytes still counts 0.
    pub(crate) fn changed_marked_files(&self) -> usize {
        let empty: &[u8] = &[];
        let bank = match self.bootbank() {
            Some(b) => b,
            None => return 0,
        };
        if self.is_clean() {
            return 0;
        }
        let saved = bank.saved();
        let files = self
            .etc
            .marked_names()
            .filter(|name| {
                let ram = self.etc.read(name);
                let old = saved.get(name).map(|n| &n.data);
                // The saved copy is the very allocation RAM holds until the file changes.
                if let (Some(a), Some(b)) = (ram, old) {
                    if std::sync::Arc::ptr_eq(a, b) {
                        return false;
                    }
                }
                ram.map_or(empty, |d| &d[..]) != old.map_or(empty, |d| &d[..])
            })
            .count();
        // The ConfigStore's backup is one more member (facts 6.3).
        let store = match &self.store {
            Some(s) => usize::from(Some(s) != bank.saved_store()),
            None => 0,
        };
        files + store
    }

    /// `backup.sh 0` (or `backup.sh 1` for [`SaveTrigger::Shutdown`]).
    pub fn backup_sh(&mut self, by: SaveTrigger) -> Result<SaveReport, SaveError> {
        let result = self.backup_sh_inner(by);
        match &result {
            Ok(r) if r.written => {
                self.last_save = Some(self.now);
                self.log(EventKind::Saved {
                    by,
                    changed: (by == SaveTrigger::AutoBackup).then_some(r.changed),
                    files: r.files,
                    bytes: r.bytes,
                })
            }
            Ok(_) => {}
            Err(SaveError::PowerLost) => {} // power_cut logged it
            Err(e) => self.log(EventKind::SaveFailed {
                by,
                reason: e.to_string(),
            }),
        }
        result
    }

    fn backup_sh_inner(&mut self, by: SaveTrigger) -> Result<SaveReport, SaveError> {
        let shutdown = by == SaveTrigger::Shutdown;
        if self.banks.is_none() {
            return Err(SaveError::NoBootbank);
        }
        let cert_ok = |p: &str| self.etc.read(p).is_some_and(|d| !d.is_empty());
        if !cert_ok("etc/vmware/ssl/rui.key") || !cert_ok("etc/vmware/ssl/rui.crt") {
            return Err(SaveError::InvalidSslCertificates);
        }
        match self.lock {
            Some(LockHolder::Alive) if !shutdown => return Err(SaveError::LockBusy),
            _ => self.lock = None, // stale locks are cleaned; shutdown breaks a live one (-l 60)
        }
        let changed = self.changed_marked_files();
        self.bump_counter();
        let now = self.now_secs();
        let files: Vec<(String, Node)> = self
            .etc
            .files_to_save()
            .into_iter()
            .map(|(p, n)| (p, n.clone()))
            .collect();
        if files.is_empty() {
            return Ok(SaveReport::default());
        }
        // Before the archives are built: a faulty device costs a failing save nothing.
        if let Some(e) = self.flash.refuses_writes() {
            return Err(e);
        }
        let era = self.profile.era;
        let previous = self.bootbank().and_then(|b| b.saved_archive()).cloned();
        let mut members: Vec<(&str, Contents<'_>, u32, u64)> = files
            .iter()
            .map(|(p, n)| (p.as_str(), Contents::Bytes(&n.data), n.mode, n.mtime))
            .collect();
        // 7.0+: configstorecli's backup of the store goes into the archive too (facts 6.3),
        // dated when the store last changed [inferred], so an unchanged store is the same
        // member and its database need not even be made again.
        let datafile = configstore::datafile_store();
        let store_bytes = || {
            self.store
                .as_ref()
                .map(|s| s.to_sqlite())
                .unwrap_or_default()
        };
        if let Some(store) = &self.store {
            members.push((
                configstore::BACKUP_PATH,
                Contents::Made {
                    token: store.token(),
                    make: &store_bytes,
                },
                0o644,
                store.last_modified().as_secs().max(1),
            ));
            members.push((
                configstore::DATAFILE_PATH,
                Contents::Bytes(&datafile),
                0o644,
                super::image::IMAGE_MTIME,
            ));
        }
        let local = ChunkedTar::build(
            state::local_header(era, now),
            members,
            previous.as_ref().map(|a| &a.local),
        );
        let filler_seed = self.rng.next_u64();
        let text = self
            .etc
            .read(super::encryption::KEYSTORE_PATH)
            .cloned()
            .unwrap_or_else(|| Arc::from(&b""[..]));
        let seal = self
            .crypt
            .as_mut()
            .map(|c| c.seal_for_save(filler_seed, text));
        let keys = seal.as_ref().map(|s| {
            let key = match s.key {
                state::SealKey::Known(k) => Some(k),
                state::SealKey::Derived => None,
            };
            (s.keystore.clone(), key)
        });
        let archive = Arc::new(state::SavedArchive::new(local, seal, now));
        let count = archive.local.members.len();
        let saved: BTreeMap<String, Node> = files.into_iter().collect();
        let pid = 1000 + self.rng.below(60_000);
        let cut = std::mem::take(&mut self.power_cut_armed);
        let useropts = self.useropts.clone();
        let store = self.store.clone();
        let bank = &mut self.banks.as_mut().expect("checked above").boot;
        bank.leftovers.clear(); // "cleanup possible file leakage"
        bank.count_write(archive.local.len() as usize); // local.tgz.$$
        bank.count_write(archive.len()); // state.tgz.$$
        if cut {
            bank.leftovers.push(format!("state.tgz.{pid}"));
            self.cut_power(true);
            return Err(SaveError::PowerLost);
        }
        let size = archive.len();
        let torn = std::mem::take(&mut self.flash.torn_next_write);
        let torn_bytes = torn.then(|| FlashFaults::torn(&archive.bytes()));
        let torn_decoded = torn_bytes.as_ref().map(|b| self.decode_state(b));
        let bank = &mut self.banks.as_mut().expect("checked above").boot;
        match (torn_bytes, torn_decoded) {
            (Some(half), Some(decoded)) => {
                // backup.sh saw every write succeed; the device kept half. The bank's view is
                // re-derived from those bytes (corrupt: empty), so RAM is no longer known equal.
                bank.set_state(Some(StateTgz::Raw(half)), decoded);
            }
            _ => bank.install_state(archive, saved, store, keys),
        }
        bank.writes.state_saves += 1;
        if !bank.boot_cfg.has_state_module() {
            bank.boot_cfg.modules.push("state.tgz".into());
            let len = bank.boot_cfg.render().len();
            bank.count_write(len);
        }
        if bank.useropts != useropts {
            bank.useropts = useropts;
            let len = crate::bundle::gzip_bytes(bank.useropts.as_bytes()).len();
            bank.count_write(len);
        }
        if torn {
            let on_flash = self.bootbank().and_then(|b| b.state_len()).unwrap_or(0);
            self.clean_generation = None;
            self.log(EventKind::TornWrite {
                intended: size,
                on_flash,
            });
        } else {
            self.clean_generation = Some(self.config_generation());
        }
        Ok(SaveReport {
            written: true,
            files: count,
            bytes: size,
            changed,
        })
    }

    fn bump_counter(&mut self) {
        let old = self
            .etc
            .read(COUNTER)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let n: u64 = old
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or(0);
        let date = self.now.to_date_string();
        let created = old
            .lines()
            .find(|l| l.starts_with("# CREATED:"))
            .map(str::to_string)
            .unwrap_or_else(|| format!("# CREATED: {date}"));
        let text = format!(
            "# This file is owned and updated by /sbin/backup.sh\n{created}\n# MODIFIED: {date}\n{}\n",
            n + 1
        );
        let now = self.now_secs();
        self.etc.write(
            COUNTER,
            std::sync::Arc::from(text.into_bytes().into_boxed_slice()),
            now,
        );
    }

    /// The value of `/etc/vmware/.backup.counter` (saves since install, if it persisted).
    pub fn backup_counter(&self) -> u64 {
        self.etc
            .read(COUNTER)
            .and_then(|b| {
                std::str::from_utf8(b)
                    .ok()?
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .find_map(|l| l.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// One run of `auto-backup.sh`. Returns whether it wrote state.tgz.
    pub fn auto_backup(&mut self) -> bool {
        if self.power != PowerState::On || self.is_clean() {
            return false; // the common tick: answered from the Host alone, no bank access
        }
        let Some(bank) = self.bootbank() else {
            // PXE/stateless: `exit 1`. Logged once per run of failures, not every tick.
            let kind = EventKind::SaveFailed {
                by: SaveTrigger::AutoBackup,
                reason: "no /bootbank (stateless host): exit 1, nothing saved".into(),
            };
            if self.events.iter().last().map(|e| &e.kind) != Some(&kind) {
                self.log(kind);
            }
            return false;
        };
        if !bank.has_state() || self.changed_marked_files() > 0 {
            return self
                .backup_sh(SaveTrigger::AutoBackup)
                .is_ok_and(|r| r.written);
        }
        self.clean_generation = Some(self.config_generation());
        false
    }

    /// SyncFirmwareConfiguration: save now, at most N times per quantum of M minutes
    /// (facts section 3; N and M are the profile's \[unconfirmed\] `sync_limit`).
    pub fn sync(&mut self) -> Result<SaveReport, HostError> {
        self.require_running()?;
        let limit = self.profile.sync_limit;
        let quantum = self.now.as_millis() / (limit.quantum_minutes as u64 * 60_000);
        if self.sync_window.0 != quantum {
            self.sync_window = (quantum, 0);
        }
        if self.sync_window.1 >= limit.syncs_per_quantum {
            self.log(EventKind::SyncRejected);
            return Err(HostError::TooManyWrites);
        }
        self.sync_window.1 += 1;
        self.backup_sh(SaveTrigger::Sync)
            .map_err(HostError::SaveFailed)
    }
}
