//! Flash faults: what a failing boot device does to saves. ESXi installed on USB sticks and SD
//! cards wears them out (the reason the persistence window exists: seed 001), and the failures a
//! fleet sees are these three:
//!
//! - `read_only`: the kernel remounted the bank read-only after I/O errors. Every save fails with
//!   [`SaveError::ReadOnly`] before anything reaches the bank.
//! - `full`: no space left. Every save fails with [`SaveError::NoSpace`]; backup.sh removes what
//!   it had started, so the bank is unchanged.
//! - `torn_next_write`: the next save that writes state.tgz completes as far as backup.sh can
//!   tell (it reports success and the wear counters grow by what it wrote), but only the first
//!   half of the new state.tgz is on the device. The flag clears itself. The next boot finds a
//!   state.tgz that does not unpack and boots the image defaults (see `power.rs`); an auto-backup
//!   before then diffs against nothing, as auto-backup.sh's failed `tar xzf` would, and saves
//!   again.
//!
//! Faults are hardware: they survive crashes and reboots until [`Host::set_flash_faults`] clears
//! them. The checks sit in `backup.sh` (`persist.rs`); sync and backup bundles surface a failed
//! save as [`HostError::SaveFailed`](super::HostError::SaveFailed).

use std::sync::Arc;

use super::events::EventKind;
use super::persist::SaveError;
use super::Host;

/// The boot device's faults; `FlashFaults::default()` is a healthy device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlashFaults {
    pub read_only: bool,
    pub full: bool,
    pub torn_next_write: bool,
}

impl FlashFaults {
    /// The error a save meets before it writes anything, if any. A read-only mount refuses the
    /// `open` before a full device could refuse the `write`.
    pub(crate) fn refuses_writes(&self) -> Option<SaveError> {
        if self.read_only {
            Some(SaveError::ReadOnly)
        } else if self.full {
            Some(SaveError::NoSpace)
        } else {
            None
        }
    }

    /// What is left on the device of a state.tgz written through a torn write: its first half,
    /// which ends inside the deflate data, so gzip reports an unexpected end of file.
    pub(crate) fn torn(state_tgz: &[u8]) -> Arc<[u8]> {
        Arc::from(&state_tgz[..state_tgz.len() / 2])
    }
}

impl Host {
    /// The boot device's current faults.
    pub fn flash_faults(&self) -> &FlashFaults {
        &self.flash
    }

    /// Sets (or, with `FlashFaults::default()`, clears) the boot device's faults; logged.
    pub fn set_flash_faults(&mut self, faults: FlashFaults) {
        self.flash = faults.clone();
        self.log(EventKind::FlashFaults(faults));
    }
}
