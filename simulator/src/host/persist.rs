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

use super::events::{EventKind, SaveTrigger};
use super::flash::FlashFaults;
use super::{Host, HostError, LockHolder, PowerState};
use crate::bundle::{write_local_tgz, write_state_tgz};

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
        let saved = match self.bootbank() {
            Some(b) => b.saved(),
            None => return 0,
        };
        if self.is_clean() {
            return 0;
        }
        self.etc
            .marked_names()
            .filter(|name| {
                let ram = self.etc.read(name).map_or(empty, |d| &d[..]);
                let old = saved.get(name).map_or(empty, |n| &n.data[..]);
                ram != old
            })
            .count()
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
        let files = self.etc.files_to_save();
        if files.is_empty() {
            return Ok(SaveReport::default());
        }
        // Before the archives are built: a faulty device costs a failing save nothing.
        if let Some(e) = self.flash.refuses_writes() {
            return Err(e);
        }
        let local = write_local_tgz(&files, now);
        let state = write_state_tgz(&local, now);
        let saved: BTreeMap<String, _> = files
            .iter()
            .map(|(p, n)| (p.clone(), (*n).clone()))
            .collect();
        let count = files.len();
        let pid = 1000 + self.rng.below(60_000);
        let cut = std::mem::take(&mut self.power_cut_armed);
        let useropts = self.useropts.clone();
        let bank = &mut self.banks.as_mut().expect("checked above").boot;
        bank.leftovers.clear(); // "cleanup possible file leakage"
        bank.count_write(local.len()); // local.tgz.$$
        bank.count_write(state.len()); // state.tgz.$$
        if cut {
            bank.leftovers.push(format!("state.tgz.{pid}"));
            self.cut_power(true);
            return Err(SaveError::PowerLost);
        }
        let size = state.len();
        let torn = std::mem::take(&mut self.flash.torn_next_write);
        if torn {
            // backup.sh saw every write succeed; the device kept half. The bank's view is
            // re-derived from those bytes (corrupt: empty), so RAM is no longer known equal.
            let limits = self.limits;
            bank.set_state_tgz(Some(FlashFaults::torn(&state)), &limits);
        } else {
            bank.install_state(std::sync::Arc::from(state.into_boxed_slice()), saved);
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
            let on_flash = self
                .bootbank()
                .and_then(|b| b.state_tgz())
                .map_or(0, |b| b.len());
            self.clean_generation = None;
            self.log(EventKind::TornWrite {
                intended: size,
                on_flash,
            });
        } else {
            self.clean_generation = Some(self.etc.generation());
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
        if bank.state_tgz().is_none() || self.changed_marked_files() > 0 {
            return self
                .backup_sh(SaveTrigger::AutoBackup)
                .is_ok_and(|r| r.written);
        }
        self.clean_generation = Some(self.etc.generation());
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
