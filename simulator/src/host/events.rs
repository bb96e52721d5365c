//! The host's event log: what happened, when, in words a person reads in a failure report
//! (`2024-01-01 10:01:00 auto-backup: 2 files changed, state.tgz written, 6 KB`).

use std::collections::VecDeque;
use std::fmt;

use super::flash::FlashFaults;
use crate::clock::SimTime;

/// Who asked for a save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveTrigger {
    /// The installer's first save.
    Install,
    /// The cron job, auto-backup.sh.
    AutoBackup,
    /// SyncFirmwareConfiguration.
    Sync,
    /// BackupFirmwareConfiguration saves before it packs the bundle.
    Backup,
    /// `backup.sh 1` from inittab's shutdown action.
    Shutdown,
}

impl fmt::Display for SaveTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaveTrigger::Install => "install",
            SaveTrigger::AutoBackup => "auto-backup",
            SaveTrigger::Sync => "sync",
            SaveTrigger::Backup => "backup",
            SaveTrigger::Shutdown => "shutdown backup",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Installed {
        hostname: String,
    },
    Booted {
        from_state: bool,
        files: usize,
        note: Option<String>,
    },
    Saved {
        by: SaveTrigger,
        changed: Option<usize>,
        files: usize,
        bytes: usize,
    },
    SaveFailed {
        by: SaveTrigger,
        reason: String,
    },
    Crashed,
    PowerCut {
        during_save: bool,
    },
    PoweredOn,
    Reboot {
        graceful: bool,
        why: String,
    },
    MaintenanceMode {
        entered: bool,
    },
    SyncRejected,
    BundleCreated {
        name: String,
        bytes: usize,
    },
    BundleUploaded {
        bytes: usize,
    },
    RestoreRejected {
        reason: String,
    },
    Restored {
        force: bool,
    },
    ResetToDefaults,
    StateTgzReplaced {
        how: String,
    },
    ScheduleChanged {
        schedule: String,
    },
    /// The boot device's faults were set or cleared (the new set).
    FlashFaults(FlashFaults),
    /// A save's state.tgz reached the device only in part (a torn write).
    TornWrite {
        intended: usize,
        on_flash: usize,
    },
    /// The boot stopped: the saved configuration is sealed with a key this board cannot have
    /// (facts 6.5). The host stays down until it is powered on with the recovery key.
    BootHalted {
        reason: String,
    },
    /// The boot opened the configuration with the recovery key.
    Recovered,
    /// The configuration key was sealed again, to this board's TPM (saved at the next save).
    Resealed,
    EncryptionModeChanged {
        mode: crate::keystore::Mode,
    },
    RecoveryKeyRotated,
    /// The motherboard and its TPM were replaced.
    BoardReplaced {
        new_uuid: bool,
    },
    /// Too many failed logins locked an account (facts section 7).
    AccountLocked {
        user: String,
        failures: u32,
        seconds: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub at: SimTime,
    pub kind: EventKind,
}

fn kb(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

impl EventKind {
    /// A short stable name for filtering (`saved`, `crashed`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Installed { .. } => "installed",
            EventKind::Booted { .. } => "booted",
            EventKind::Saved { .. } => "saved",
            EventKind::SaveFailed { .. } => "save-failed",
            EventKind::Crashed => "crashed",
            EventKind::PowerCut { .. } => "power-cut",
            EventKind::PoweredOn => "powered-on",
            EventKind::Reboot { .. } => "reboot",
            EventKind::MaintenanceMode { .. } => "maintenance-mode",
            EventKind::SyncRejected => "sync-rejected",
            EventKind::BundleCreated { .. } => "bundle-created",
            EventKind::BundleUploaded { .. } => "bundle-uploaded",
            EventKind::RestoreRejected { .. } => "restore-rejected",
            EventKind::Restored { .. } => "restored",
            EventKind::ResetToDefaults => "reset",
            EventKind::StateTgzReplaced { .. } => "state-replaced",
            EventKind::ScheduleChanged { .. } => "schedule-changed",
            EventKind::FlashFaults(_) => "flash-faults",
            EventKind::TornWrite { .. } => "torn-write",
            EventKind::BootHalted { .. } => "boot-halted",
            EventKind::Recovered => "recovered",
            EventKind::Resealed => "resealed",
            EventKind::EncryptionModeChanged { .. } => "encryption-mode",
            EventKind::RecoveryKeyRotated => "recovery-key-rotated",
            EventKind::BoardReplaced { .. } => "board-replaced",
            EventKind::AccountLocked { .. } => "account-locked",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventKind::Installed { hostname } => write!(f, "installed as {hostname}"),
            EventKind::Booted {
                from_state: true,
                files,
                ..
            } => {
                write!(
                    f,
                    "booted: state.tgz overlaid on the image, {files} files restored"
                )
            }
            EventKind::Booted {
                from_state: false,
                note,
                ..
            } => write!(
                f,
                "booted: image defaults ({})",
                note.as_deref().unwrap_or("no state.tgz")
            ),
            EventKind::Saved {
                by,
                changed,
                files,
                bytes,
            } => match changed {
                Some(n) => write!(
                    f,
                    "{by}: {n} file{} changed, state.tgz written, {} ({files} files saved)",
                    if *n == 1 { "" } else { "s" },
                    kb(*bytes)
                ),
                None => write!(
                    f,
                    "{by}: state.tgz written, {} ({files} files saved)",
                    kb(*bytes)
                ),
            },
            EventKind::SaveFailed { by, reason } => write!(f, "{by} failed: {reason}"),
            EventKind::Crashed => write!(f, "crash (PSOD): RAM lost, host down"),
            EventKind::PowerCut { during_save: true } => {
                write!(
                    f,
                    "power cut during a save: state.tgz.$$ left unrenamed, host down"
                )
            }
            EventKind::PowerCut { during_save: false } => {
                write!(f, "power cut: RAM lost, host down")
            }
            EventKind::PoweredOn => write!(f, "powered on"),
            EventKind::Reboot {
                graceful: true,
                why,
            } => write!(f, "graceful reboot ({why})"),
            EventKind::Reboot {
                graceful: false,
                why,
            } => {
                write!(f, "forced reboot, no shutdown save ({why})")
            }
            EventKind::MaintenanceMode { entered: true } => write!(f, "entered maintenance mode"),
            EventKind::MaintenanceMode { entered: false } => write!(f, "exited maintenance mode"),
            EventKind::SyncRejected => write!(f, "sync rejected: TooManyWrites"),
            EventKind::BundleCreated { name, bytes } => {
                write!(f, "backup bundle {name}, {}", kb(*bytes))
            }
            EventKind::BundleUploaded { bytes } => {
                write!(f, "/tmp/configBundle.tgz uploaded, {}", kb(*bytes))
            }
            EventKind::RestoreRejected { reason } => write!(f, "restore rejected: {reason}"),
            EventKind::Restored { force } => write!(
                f,
                "restore: bundle copied to /bootbank/state.tgz (force={force})"
            ),
            EventKind::ResetToDefaults => {
                write!(f, "reset to factory defaults: state.tgz removed")
            }
            EventKind::StateTgzReplaced { how } => write!(f, "/bootbank/state.tgz {how}"),
            EventKind::ScheduleChanged { schedule } => {
                write!(f, "auto-backup schedule set to {schedule}")
            }
            EventKind::FlashFaults(faults) => {
                let set: Vec<&str> = [
                    (faults.read_only, "read-only"),
                    (faults.full, "full"),
                    (faults.torn_next_write, "next write torn"),
                ]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| *name)
                .collect();
                if set.is_empty() {
                    write!(f, "flash faults cleared")
                } else {
                    write!(f, "flash faults set: {}", set.join(", "))
                }
            }
            EventKind::BootHalted { reason } => {
                write!(f, "boot stopped: {reason}; the host stays down")
            }
            EventKind::Recovered => write!(
                f,
                "configuration opened with the recovery key (encryptionRecoveryKey=)"
            ),
            EventKind::Resealed => write!(
                f,
                "configuration key sealed to this board's TPM (written at the next save)"
            ),
            EventKind::EncryptionModeChanged { mode } => {
                write!(f, "configuration encryption mode set to {mode}")
            }
            EventKind::RecoveryKeyRotated => write!(f, "recovery key rotated"),
            EventKind::BoardReplaced { new_uuid } => write!(
                f,
                "motherboard and TPM replaced{}",
                if *new_uuid {
                    ", new SMBIOS UUID"
                } else {
                    ", SMBIOS UUID kept"
                }
            ),
            EventKind::TornWrite { intended, on_flash } => write!(
                f,
                "torn write: {on_flash} of {intended} bytes of state.tgz reached the boot device"
            ),
            // hostd's words (vob esx.audit.account.locked, as vCenter shows it).
            EventKind::AccountLocked {
                user,
                failures,
                seconds,
            } => write!(
                f,
                "Remote access for ESXi local user account '{user}' has been locked for \
                 {seconds} seconds after {failures} failed login attempts."
            ),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.at, self.kind)
    }
}

/// A bounded log: the newest `capacity` events, and a count of all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLog {
    events: VecDeque<Event>,
    capacity: usize,
    total: u64,
}

impl EventLog {
    pub fn new(capacity: usize) -> Self {
        EventLog {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            total: 0,
        }
    }
    pub fn push(&mut self, at: SimTime, kind: EventKind) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(Event { at, kind });
        self.total += 1;
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Event> + ExactSizeIterator {
        self.events.iter()
    }
    /// The last `n` events, oldest first.
    pub fn tail(&self, n: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().skip(self.events.len().saturating_sub(n))
    }
    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn owned_bytes(&self) -> usize {
        self.events.capacity() * std::mem::size_of::<Event>()
    }
}
