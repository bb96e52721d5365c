//! One ESXi host as a pure, deterministic state machine: no I/O, no wall clock, no unseeded
//! randomness. Every method takes effect at the host's virtual `now`, which only moves through
//! [`Host::advance`] / [`Host::advance_to`].
//!
//! The concepts live one per file:
//! - [`etc`]: RAM `/etc` and the `.#` marker rule;           [`image`]: the shared image defaults;
//! - [`bootbank`]: boot.cfg, state.tgz, write counters;      [`persist`]: backup.sh, auto-backup.sh, sync;
//! - [`power`]: boot, crash, power cut, reboots;             [`firmware`]: bundles, restore, reset;
//! - [`accounts`]: passwd/shadow;                            [`events`]: the event log;
//! - [`flash`]: boot device faults (read-only, full, torn writes);
//! - [`encryption`]: 7.0 U2+ key stores (NONE, TPM), the recovery key, board replacement;
//! - `placement`: where each release keeps a setting (esx.conf, /etc/shadow, the ConfigStore);
//! - [`tpm`]: the board's TPM.

pub mod accounts;
pub mod bootbank;
pub mod encryption;
pub mod etc;
pub mod events;
pub mod firmware;
pub mod flash;
pub mod image;
mod image_files;
pub mod permissions;
pub mod persist;
mod placement;
pub mod power;
pub mod tpm;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::bundle::{BundleError, Limits};
use crate::clock::{SimTime, DEFAULT_EPOCH};
use crate::configstore::ConfigStore;
use crate::keystore::{Mode, SharedNoneMaterial};
use crate::profile::{Profile, Schedule};
use crate::rng::Rng;

pub use accounts::shared_root_hash;
pub use bootbank::{BootBank, BootBanks, BootCfg, StateTgz, WriteStats};
pub use encryption::Encryption;
pub use etc::{Bytes, EtcFs, Node, PathError};
pub use events::{Event, EventKind, EventLog, SaveTrigger};
pub use firmware::BackupBundle;
pub use flash::FlashFaults;
pub use persist::{SaveError, SaveReport};
pub use power::{PowerState, RebootKind};
pub use tpm::Tpm;

/// How to build a host. Anything not given is derived from the seed.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub profile: Arc<Profile>,
    pub seed: u64,
    pub hostname: Option<String>,
    /// SMBIOS UUID in any case; stored uppercase.
    pub uuid: Option<String>,
    pub root_password: String,
    /// A precomputed shadow hash of `root_password` (see [`accounts::shared_root_hash`]), so the
    /// install skips its own 5,000-round SHA-512 crypt. Checked at build: a `$6$` hash that
    /// verifies `root_password`, or [`HostError::InvalidArgument`].
    pub root_hash: Option<Arc<str>>,
    /// Overrides the profile's auto-backup schedule.
    pub schedule: Option<Schedule>,
    /// A PXE-booted host without a boot bank: nothing persists (auto-backup.sh exits 1).
    pub stateless: bool,
    /// Overrides the profile's boot time (how long reboots keep the host down).
    pub boot_time: Option<Duration>,
    pub start: SimTime,
    pub limits: Limits,
    pub event_capacity: usize,
    /// 7.0 U2+: the encryption mode the first boot sets up (NONE unless TPM is asked for and
    /// the host has a TPM, facts 6.5).
    pub encryption: Mode,
    /// Whether the board has a TPM.
    pub tpm: bool,
    /// NONE-mode key material shared by many hosts (a fleet's): one key derivation for all.
    /// Each host still has its own key id. Default: the host's own, from its seed.
    pub none_material: Option<SharedNoneMaterial>,
}

impl HostConfig {
    pub fn new(profile: Arc<Profile>) -> Self {
        HostConfig {
            profile,
            seed: 0,
            hostname: None,
            uuid: None,
            root_password: DEFAULT_ROOT_PASSWORD.to_string(),
            root_hash: None,
            schedule: None,
            stateless: false,
            boot_time: None,
            start: DEFAULT_EPOCH,
            limits: Limits::default(),
            event_capacity: 128,
            encryption: Mode::None,
            tpm: true,
            none_material: None,
        }
    }
    /// 7.0 U2+: TPM mode from the first boot (the host needs a TPM).
    pub fn encryption(mut self, mode: Mode) -> Self {
        self.encryption = mode;
        self
    }
    pub fn tpm(mut self, present: bool) -> Self {
        self.tpm = present;
        self
    }
    pub fn none_material(mut self, m: SharedNoneMaterial) -> Self {
        self.none_material = Some(m);
        self
    }
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn hostname(mut self, h: impl Into<String>) -> Self {
        self.hostname = Some(h.into());
        self
    }
    pub fn uuid(mut self, u: impl Into<String>) -> Self {
        self.uuid = Some(u.into());
        self
    }
    pub fn root_password(mut self, p: impl Into<String>) -> Self {
        self.root_password = p.into();
        self
    }
    /// Installs `root_password` with this hash instead of hashing it (see [`HostConfig::root_hash`]).
    pub fn root_hash(mut self, hash: impl Into<Arc<str>>) -> Self {
        self.root_hash = Some(hash.into());
        self
    }
    pub fn schedule(mut self, s: Schedule) -> Self {
        self.schedule = Some(s);
        self
    }
    pub fn stateless(mut self, yes: bool) -> Self {
        self.stateless = yes;
        self
    }
    pub fn boot_time(mut self, d: Duration) -> Self {
        self.boot_time = Some(d);
        self
    }
    pub fn start(mut self, t: SimTime) -> Self {
        self.start = t;
        self
    }
    pub fn build(self) -> Result<Host, HostError> {
        Host::new(self)
    }
}

pub const DEFAULT_ROOT_PASSWORD: &str = "VMware1!";

/// Every way a host operation can fail. The API layer maps each variant to one vSphere fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostError {
    /// The host is off or still booting: clients see no answer.
    NotRunning(PowerState),
    /// → `InvalidState` ("The operation is not allowed in the current state.").
    InvalidState(String),
    /// → `FileNotFound` with `file`.
    FileNotFound(String),
    /// → `MismatchedBundle` with its four fields.
    MismatchedBundle {
        bundle_uuid: String,
        host_uuid: String,
        bundle_build: u32,
        host_build: u32,
    },
    /// → `InvalidBundle` with `text`.
    InvalidBundle(BundleError),
    /// → `TooManyWrites`.
    TooManyWrites,
    /// A save that could not complete (no boot bank, lock busy, invalid SSL certificates, a
    /// read-only or full boot device).
    SaveFailed(SaveError),
    InvalidPath(PathError),
    Account(accounts::AccountError),
    InvalidArgument(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NotRunning(s) => write!(f, "host is not running ({s})"),
            HostError::InvalidState(m) => write!(f, "{m}"),
            HostError::FileNotFound(p) => write!(f, "File {p} was not found"),
            HostError::MismatchedBundle {
                bundle_uuid,
                host_uuid,
                bundle_build,
                host_build,
            } => write!(
                f,
                "Mismatched bundle: bundle uuid {bundle_uuid} build {bundle_build}, host uuid {host_uuid} build {host_build}"
            ),
            HostError::InvalidBundle(e) => write!(f, "{e}"),
            HostError::TooManyWrites => write!(f, "Too many writes to the firmware configuration"),
            HostError::SaveFailed(e) => write!(f, "{e}"),
            HostError::InvalidPath(e) => write!(f, "{e}"),
            HostError::Account(e) => write!(f, "{e}"),
            HostError::InvalidArgument(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<PathError> for HostError {
    fn from(e: PathError) -> Self {
        HostError::InvalidPath(e)
    }
}
impl From<accounts::AccountError> for HostError {
    fn from(e: accounts::AccountError) -> Self {
        HostError::Account(e)
    }
}

/// The text hostd puts in InvalidState faults.
pub const INVALID_STATE_TEXT: &str = "The operation is not allowed in the current state.";

/// Who the host is: fixed hardware identity plus the name it was installed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub seed: u64,
    pub install_hostname: String,
    /// SMBIOS system UUID, uppercase (Manifest.txt form).
    pub smbios_uuid: String,
    pub install_password: String,
    /// The precomputed hash of `install_password` the host was built with, if any: installs and
    /// stateless boots use it instead of hashing again.
    pub install_hash: Option<Arc<str>>,
}

/// The lock file `/tmp/bootbank.lck`, as another backup.sh would hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockHolder {
    /// A live process holds it: non-shutdown saves give up after ~60 s of retries.
    Alive,
    /// Its process is gone: backup.sh's TryCleanupStaleLock removes it.
    Stale,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub(crate) profile: Arc<Profile>,
    pub(crate) identity: Identity,
    pub(crate) schedule: Schedule,
    pub(crate) boot_time: Duration,
    pub(crate) limits: Limits,
    pub(crate) now: SimTime,
    pub(crate) power: PowerState,
    pub(crate) etc: EtcFs,
    pub(crate) banks: Option<Box<BootBanks>>,
    pub(crate) maintenance: bool,
    /// `/tmp/configBundle.tgz` (RAM: lost at every boot).
    pub(crate) upload: Option<Bytes>,
    pub(crate) lock: Option<LockHolder>,
    pub(crate) power_cut_armed: bool,
    /// (quantum index, syncs in it).
    pub(crate) sync_window: (u64, u32),
    pub(crate) next_auto: Option<SimTime>,
    /// The `etc` generation at which RAM was last known to equal the saved state (the boot
    /// bank's parsed view). Whatever replaces that view other than a completed save must reset
    /// it to None, or auto-backup would skip a diff it needs.
    pub(crate) clean_generation: Option<u64>,
    /// The running boot options (`esxcfg-info -c`) that backup.sh writes to useropts.gz.
    pub(crate) useropts: String,
    pub(crate) rng: Rng,
    pub(crate) boots: u32,
    /// When the running system finished booting (HostRuntimeInfo.bootTime).
    pub(crate) booted_at: SimTime,
    /// When backup.sh last wrote state.tgz (kept across reboots: it is the bank's).
    pub(crate) last_save: Option<SimTime>,
    pub(crate) events: EventLog,
    /// The boot device's faults: hardware, so not reset by crashes or reboots.
    pub(crate) flash: FlashFaults,
    /// The ConfigStore in RAM (7.0 and later).
    pub(crate) store: Option<ConfigStore>,
    /// The key state (7.0 U2 and later), from the booted configuration.
    pub(crate) crypt: Option<Encryption>,
    /// The board's TPM (hardware: survives everything but a board replacement).
    pub(crate) tpm: Option<Tpm>,
    /// Boards this host has had besides its first.
    pub(crate) board_generation: u32,
    /// The mode a first boot sets up (HostConfig::encryption).
    pub(crate) config_mode: Mode,
    pub(crate) none_material: Option<SharedNoneMaterial>,
    /// Why the last boot stopped (a sealed configuration this board cannot open).
    pub(crate) boot_halt: Option<String>,
    /// A recovery key given at power-on, for the boot in progress.
    pub(crate) recovery_prompt: Option<String>,
}

impl Host {
    /// Installs a host: image defaults, the installer's identity and root password, the first
    /// boot's generated certificates, and the installer's save to `/bootbank/state.tgz`.
    pub fn new(cfg: HostConfig) -> Result<Host, HostError> {
        let mut rng = Rng::fork(cfg.seed, "identity");
        let hostname = match cfg.hostname {
            Some(h) => validate_hostname(&h)?,
            None => format!("esx-{}", rng.string(b"0123456789abcdef", 6)),
        };
        let uuid = match cfg.uuid {
            Some(u) => validate_uuid(&u)?,
            None => {
                let mut b = [0u8; 16];
                rng.fill(&mut b);
                format_uuid(&b)
            }
        };
        accounts::validate_password(&cfg.root_password)?;
        if let Some(hash) = &cfg.root_hash {
            accounts::check_precomputed_hash(&cfg.root_password, hash)
                .map_err(HostError::InvalidArgument)?;
        }
        let image = image::Image::for_profile(&cfg.profile);
        let mut host = Host {
            schedule: cfg.schedule.unwrap_or(cfg.profile.schedule),
            boot_time: cfg.boot_time.unwrap_or(cfg.profile.boot_time),
            banks: (!cfg.stateless).then(|| Box::new(BootBanks::new(&cfg.profile))),
            identity: Identity {
                seed: cfg.seed,
                install_hostname: hostname.clone(),
                smbios_uuid: uuid,
                install_password: cfg.root_password,
                install_hash: cfg.root_hash,
            },
            profile: cfg.profile,
            limits: cfg.limits,
            now: cfg.start,
            power: PowerState::On,
            etc: EtcFs::pristine(image),
            maintenance: false,
            upload: None,
            lock: None,
            power_cut_armed: false,
            sync_window: (u64::MAX, 0),
            next_auto: None,
            clean_generation: None,
            useropts: String::new(),
            rng: Rng::fork(cfg.seed, "runtime"),
            boots: 0,
            booted_at: cfg.start,
            last_save: None,
            events: EventLog::new(cfg.event_capacity),
            flash: FlashFaults::default(),
            store: None,
            crypt: None,
            tpm: cfg.tpm.then(|| Tpm {
                board: Rng::fork(cfg.seed, "board 0").next_u64(),
            }),
            board_generation: 0,
            config_mode: cfg.encryption,
            none_material: cfg.none_material,
            boot_halt: None,
            recovery_prompt: None,
        };
        host.store = host.etc.image().store.clone();
        host.first_boot_fixups();
        host.fresh_configuration();
        host.apply_install_identity();
        host.log(EventKind::Installed { hostname });
        if host.banks.is_some() {
            host.backup_sh(SaveTrigger::Install)
                .map_err(HostError::SaveFailed)?;
        }
        host.boots = 1;
        host.next_auto = Some(host.schedule.next_after(host.now));
        Ok(host)
    }

    // ---- identity and state -------------------------------------------------------------

    pub fn profile(&self) -> &Arc<Profile> {
        &self.profile
    }
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    /// The configured hostname (esx.conf `/adv/Misc/HostName`): `localhost` after a reset.
    pub fn hostname(&self) -> String {
        self.esx_conf_value("/adv/Misc/HostName")
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    }
    /// SMBIOS UUID as Manifest.txt writes it (uppercase).
    pub fn smbios_uuid(&self) -> &str {
        &self.identity.smbios_uuid
    }
    /// `hardware.systemInfo.uuid`: the lowercase form (facts section 3).
    pub fn api_uuid(&self) -> String {
        self.identity.smbios_uuid.to_ascii_lowercase()
    }
    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn power_state(&self) -> PowerState {
        self.power
    }
    pub fn is_running(&self) -> bool {
        self.power == PowerState::On
    }
    pub fn in_maintenance_mode(&self) -> bool {
        self.maintenance
    }
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }
    pub fn boot_time(&self) -> Duration {
        self.boot_time
    }
    pub fn boots(&self) -> u32 {
        self.boots
    }
    /// When the running system booted; None while off or booting.
    pub fn last_boot(&self) -> Option<SimTime> {
        (self.power == PowerState::On).then_some(self.booted_at)
    }
    /// When backup.sh last wrote state.tgz (None on a stateless host, or before the first
    /// save onto a new boot bank).
    pub fn last_save(&self) -> Option<SimTime> {
        self.last_save
    }
    pub fn next_auto_backup(&self) -> Option<SimTime> {
        self.next_auto
    }
    /// When [`Host::advance_to`] next does something: a boot finishes, or an auto-backup finds
    /// something to save (with nothing to save it does nothing, so it is not due).
    pub fn next_due(&self) -> Option<SimTime> {
        match self.power {
            PowerState::Booting { ready_at } => Some(ready_at),
            PowerState::On if !self.is_clean() => self.next_auto,
            _ => None,
        }
    }
    pub fn events(&self) -> &EventLog {
        &self.events
    }
    pub fn etc(&self) -> &EtcFs {
        &self.etc
    }
    pub fn is_stateless(&self) -> bool {
        self.banks.is_none()
    }
    pub fn bootbank(&self) -> Option<&BootBank> {
        self.banks.as_ref().map(|b| &b.boot)
    }
    pub fn altbootbank(&self) -> Option<&BootBank> {
        self.banks.as_ref().map(|b| &b.alt)
    }
    /// Flash wear on `/bootbank` so far (zero for a stateless host).
    pub fn bootbank_writes(&self) -> WriteStats {
        self.bootbank().map(|b| b.writes).unwrap_or_default()
    }
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// Whether RAM holds marked changes the boot bank does not have yet (what a crash would lose).
    pub fn has_unsaved_changes(&self) -> bool {
        match self.bootbank() {
            None => false,
            Some(b) if !b.has_state() => true,
            Some(_) => self.changed_marked_files() > 0,
        }
    }

    /// Whether RAM is known to equal the saved state: only Host fields, no boot bank access.
    /// `clean_generation` is Some only while a readable state.tgz exists (it is set by a
    /// completed save, a boot from state.tgz, or a diff against one, and reset whenever the bank
    /// is replaced or RAM lost).
    pub(crate) fn is_clean(&self) -> bool {
        self.clean_generation == Some(self.config_generation())
    }

    /// Moves whenever RAM configuration changes: `/etc` or the ConfigStore.
    pub(crate) fn config_generation(&self) -> u64 {
        self.etc.generation() + self.store.as_ref().map_or(0, |s| s.generation())
    }

    /// The RAM ConfigStore (7.0 and later, while running).
    pub fn config_store(&self) -> Option<&ConfigStore> {
        self.store.as_ref()
    }

    /// What this host can open sealed state with: its board's TPM, and a recovery key given
    /// for the boot in progress.
    pub(crate) fn key_context(&self) -> crate::state::KeyContext<'_> {
        crate::state::KeyContext {
            tpm: self.tpm,
            recovery: self.recovery_prompt.as_deref(),
        }
    }

    /// Reads state.tgz bytes of any era with what this host knows of keys.
    pub(crate) fn decode_state(
        &self,
        bytes: &[u8],
    ) -> Result<crate::state::Decoded, crate::state::StateError> {
        crate::state::decode(bytes, &self.limits, self.key_context())
    }

    /// Re-reads the boot bank's state.tgz with what this host knows of keys now (after a board
    /// replacement the old TPM's seal no longer opens).
    pub(crate) fn recheck_bank(&mut self) {
        let Some(bytes) = self.bootbank().and_then(|b| b.state_tgz()) else {
            return;
        };
        let decoded = self.decode_state(&bytes);
        if let Some(banks) = self.banks.as_mut() {
            banks.boot.set_state(Some(StateTgz::Raw(bytes)), decoded);
        }
        self.clean_generation = None;
    }

    pub(crate) fn log(&mut self, kind: EventKind) {
        self.events.push(self.now, kind);
    }

    pub(crate) fn require_running(&self) -> Result<(), HostError> {
        if self.power == PowerState::On {
            Ok(())
        } else {
            Err(HostError::NotRunning(self.power))
        }
    }

    /// Seconds since the epoch, the unit of file mtimes.
    pub(crate) fn now_secs(&self) -> u64 {
        self.now.as_secs()
    }
    fn days(&self) -> u64 {
        self.now.as_secs() / 86_400
    }

    // ---- files ---------------------------------------------------------------------------

    /// Reads a file of RAM `/etc`; `Ok(None)` if it does not exist.
    pub fn read_file(&self, path: &str) -> Result<Option<Bytes>, HostError> {
        self.require_running()?;
        let p = etc::normalize(path)?;
        Ok(self.etc.read(&p).cloned())
    }
    pub fn read_text(&self, path: &str) -> Result<Option<String>, HostError> {
        Ok(self
            .read_file(path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }
    /// Writes a file of RAM `/etc`, as an edit on the host's shell would.
    pub fn write_file(&mut self, path: &str, data: impl Into<Vec<u8>>) -> Result<(), HostError> {
        self.require_running()?;
        let p = etc::normalize(path)?;
        let data: Vec<u8> = data.into();
        if data.len() > self.limits.max_unpacked as usize {
            return Err(HostError::InvalidArgument(format!(
                "{path}: {} bytes is more than the simulator keeps in one file",
                data.len()
            )));
        }
        let now = self.now_secs();
        self.etc.write(&p, Arc::from(data.into_boxed_slice()), now);
        Ok(())
    }
    /// Deletes a file of RAM `/etc`; returns whether it existed.
    pub fn delete_file(&mut self, path: &str) -> Result<bool, HostError> {
        self.require_running()?;
        let p = etc::normalize(path)?;
        Ok(self.etc.delete(&p))
    }
    pub fn list_files(&self) -> Result<Vec<String>, HostError> {
        self.require_running()?;
        Ok(self.etc.list())
    }

    /// Reads one `key = "value"` of esx.conf.
    pub fn esx_conf_value(&self, key: &str) -> Option<String> {
        let text = self.etc.read("etc/vmware/esx.conf")?;
        let text = std::str::from_utf8(text).ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
    }

    /// Every `key = "value"` entry of esx.conf, in file order.
    pub fn esx_conf_entries(&self) -> Vec<(String, String)> {
        let Some(text) = self.etc.read("etc/vmware/esx.conf") else {
            return Vec::new();
        };
        String::from_utf8_lossy(text)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(" = ")?;
                Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            })
            .collect()
    }

    /// Whether `/etc/passwd` has this user.
    pub fn check_user_exists(&self, user: &str) -> bool {
        accounts::user_exists(&self.text_of("etc/passwd"), user)
    }

    /// Sets one `key = "value"` of esx.conf (adding it if absent), as hostd's config writes do;
    /// from 8.0 the host name and IPs land in the ConfigStore too (`placement`).
    pub fn set_esx_conf_value(&mut self, key: &str, value: &str) -> Result<(), HostError> {
        self.set_esx_conf_only(key, value)?;
        self.mirror_esx_conf(key, value);
        Ok(())
    }

    fn set_esx_conf_only(&mut self, key: &str, value: &str) -> Result<(), HostError> {
        self.require_running()?;
        if !key.starts_with('/') || key.contains(['\n', '"', ' ']) || value.contains(['\n', '"']) {
            return Err(HostError::InvalidArgument(format!(
                "invalid esx.conf entry {key:?} = {value:?}"
            )));
        }
        let old = self
            .etc
            .read("etc/vmware/esx.conf")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let line = format!("{key} = \"{value}\"");
        let mut found = false;
        let mut out = String::with_capacity(old.len() + line.len() + 1);
        for l in old.lines() {
            if l.split_once(" = ").map(|(k, _)| k.trim()) == Some(key) {
                found = true;
                out.push_str(&line);
            } else {
                out.push_str(l);
            }
            out.push('\n');
        }
        if !found {
            out.push_str(&line);
            out.push('\n');
        }
        self.write_file("etc/vmware/esx.conf", out)
    }

    // ---- accounts ------------------------------------------------------------------------

    fn text_of(&self, path: &str) -> String {
        self.etc
            .read(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// Whether `password` opens `user`'s account, by the host's own `/etc/shadow`.
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        self.password_hash(user)
            .is_some_and(|f| accounts::verify(password, &f))
    }

    /// The shadow hash field that a login as `user` is checked against (None: no such account,
    /// or the host is not running). Checking a password against it is the costly part of a
    /// login (a `rounds=` field can ask for up to 999,999,999 rounds), which is why the API
    /// layer gets the field here and runs [`accounts::verify`] where it blocks nobody.
    pub fn password_hash(&self, user: &str) -> Option<String> {
        if self.power != PowerState::On || !accounts::user_exists(&self.text_of("etc/passwd"), user)
        {
            return None;
        }
        accounts::shadow_field(&self.text_of("etc/shadow"), user).map(str::to_string)
    }

    /// Changes a password (HostLocalAccountManager.UpdateUser). An empty password clears the hash.
    pub fn set_password(&mut self, user: &str, password: &str) -> Result<(), HostError> {
        self.require_running()?;
        accounts::validate_password(password)?;
        if !accounts::user_exists(&self.text_of("etc/passwd"), user) {
            return Err(accounts::AccountError::UserNotFound(user.into()).into());
        }
        let hash = if password.is_empty() {
            String::new()
        } else {
            accounts::hash_password(password, &mut self.rng)
        };
        let shadow = accounts::set_hash(&self.text_of("etc/shadow"), user, &hash, self.days())?;
        self.write_file("etc/shadow", shadow)?;
        self.mirror_account_of(user);
        Ok(())
    }

    /// Mirrors `user`'s passwd/shadow entry into the ConfigStore (7.0.3+; `placement`).
    fn mirror_account_of(&mut self, user: &str) {
        let hash = accounts::shadow_field(&self.text_of("etc/shadow"), user).map(str::to_string);
        match (self.passwd_entry(user), hash) {
            (Some((uid, desc)), Some(h)) => self.mirror_account(user, Some((uid, &h, &desc))),
            _ => self.mirror_account(user, None),
        }
    }

    /// Adds a local user (HostLocalAccountManager.CreateUser).
    pub fn create_user(
        &mut self,
        user: &str,
        password: &str,
        description: &str,
    ) -> Result<(), HostError> {
        self.require_running()?;
        accounts::validate_password(password)?;
        let hash = accounts::hash_password(password, &mut self.rng);
        let (p, s) = accounts::create(
            &self.text_of("etc/passwd"),
            &self.text_of("etc/shadow"),
            user,
            description,
            &hash,
            self.days(),
        )?;
        self.write_file("etc/passwd", p)?;
        self.write_file("etc/shadow", s)?;
        self.mirror_account_of(user);
        Ok(())
    }

    /// Removes a local user (HostLocalAccountManager.RemoveUser).
    pub fn remove_user(&mut self, user: &str) -> Result<(), HostError> {
        self.require_running()?;
        if user == "root" {
            return Err(HostError::InvalidArgument(
                "the root account cannot be removed".into(),
            ));
        }
        let (p, s) = accounts::remove(
            &self.text_of("etc/passwd"),
            &self.text_of("etc/shadow"),
            user,
        )?;
        self.write_file("etc/passwd", p)?;
        self.write_file("etc/shadow", s)?;
        self.mirror_account(user, None);
        Ok(())
    }

    // ---- maintenance mode ----------------------------------------------------------------

    /// Enters maintenance mode. It survives reboots (a restored host comes back in it, as
    /// Ansible's `loaded` state leaves it: facts section 5).
    pub fn enter_maintenance_mode(&mut self) -> Result<(), HostError> {
        self.require_running()?;
        if self.maintenance {
            return Err(HostError::InvalidState(INVALID_STATE_TEXT.into()));
        }
        self.maintenance = true;
        self.log(EventKind::MaintenanceMode { entered: true });
        Ok(())
    }
    pub fn exit_maintenance_mode(&mut self) -> Result<(), HostError> {
        self.require_running()?;
        if !self.maintenance {
            return Err(HostError::InvalidState(INVALID_STATE_TEXT.into()));
        }
        self.maintenance = false;
        self.log(EventKind::MaintenanceMode { entered: false });
        Ok(())
    }

    // ---- time ----------------------------------------------------------------------------

    pub fn advance(&mut self, d: Duration) {
        self.advance_to(self.now.plus(d));
    }

    /// Moves virtual time to `t`, completing a boot and firing every auto-backup due on the way,
    /// in order. Time never goes backwards: an earlier `t` is ignored.
    pub fn advance_to(&mut self, t: SimTime) {
        loop {
            let boot_due = match self.power {
                PowerState::Booting { ready_at } if ready_at <= t => Some(ready_at),
                _ => None,
            };
            let auto_due = match (self.power, self.next_auto) {
                (PowerState::On, Some(n)) if n <= t => Some(n),
                _ => None,
            };
            match (boot_due, auto_due) {
                (Some(b), _) => {
                    self.now = self.now.max(b);
                    self.complete_boot();
                }
                // Every run due by `t` would find nothing changed and do nothing (RAM is known
                // equal to the save): jump to the first run after `t`, so an idle host's advance
                // costs the same for a minute or a month.
                (None, Some(_)) if self.is_clean() => {
                    self.next_auto = Some(self.schedule.next_after(t));
                }
                (None, Some(a)) => {
                    self.now = self.now.max(a);
                    self.next_auto = Some(self.schedule.next_after(self.now));
                    self.auto_backup();
                }
                (None, None) => break,
            }
        }
        self.now = self.now.max(t);
    }

    /// Changes the auto-backup schedule from now on.
    pub fn set_schedule(&mut self, s: Schedule) {
        self.schedule = s;
        if self.power == PowerState::On {
            self.next_auto = Some(s.next_after(self.now));
        }
        self.log(EventKind::ScheduleChanged {
            schedule: s.to_string(),
        });
    }

    // ---- test hooks (simulator-only) -----------------------------------------------------

    /// Makes the host stateless (no boot bank) or gives it an empty boot bank back.
    pub fn set_stateless(&mut self, stateless: bool) {
        match (stateless, self.banks.is_some()) {
            (true, true) => {
                self.banks = None;
                self.last_save = None;
            }
            (false, false) => self.banks = Some(Box::new(BootBanks::new(&self.profile))),
            _ => return,
        }
        self.clean_generation = None; // RAM was known equal to a save that is no longer there
    }

    /// Replaces `/bootbank/state.tgz` with raw bytes (or removes it), as a corrupting disk or a
    /// person with a shell would. The next boot reads whatever is there.
    pub fn replace_state_tgz(&mut self, bytes: Option<Vec<u8>>) -> Result<(), HostError> {
        if self.banks.is_none() {
            return Err(HostError::SaveFailed(SaveError::NoBootbank));
        }
        let how = match &bytes {
            Some(b) => format!("overwritten with {} raw bytes", b.len()),
            None => "deleted".to_string(),
        };
        let bytes: Option<Bytes> = bytes.map(|b| Arc::from(b.into_boxed_slice()));
        let decoded = match &bytes {
            Some(b) => self.decode_state(b),
            None => Err(crate::state::StateError::Corrupt("no state.tgz".into())),
        };
        let bank = &mut self.banks.as_mut().expect("checked").boot;
        if let Some(b) = &bytes {
            bank.count_write(b.len());
        }
        bank.set_state(bytes.map(StateTgz::Raw), decoded);
        self.clean_generation = None;
        self.log(EventKind::StateTgzReplaced { how });
        Ok(())
    }

    /// Flips bytes in the middle of state.tgz so that it no longer unpacks.
    pub fn corrupt_state_tgz(&mut self) -> Result<(), HostError> {
        let cur = self
            .bootbank()
            .and_then(|b| b.state_tgz())
            .ok_or_else(|| HostError::FileNotFound("/bootbank/state.tgz".into()))?;
        let mut v = cur.to_vec();
        let mid = v.len() / 2; // past the 10-byte gzip header, into the deflate data
        for b in v.iter_mut().skip(mid.saturating_sub(16).max(10)).take(32) {
            *b ^= 0x5a;
        }
        self.replace_state_tgz(Some(v))
    }

    /// Holds the backup lock `/tmp/bootbank.lck` as another process would (None releases it).
    pub fn set_backup_lock(&mut self, holder: Option<LockHolder>) {
        self.lock = holder;
    }

    /// Sets the running boot options that backup.sh writes to useropts.gz.
    pub fn set_useropts(&mut self, opts: &str) {
        self.useropts = opts.to_string();
    }

    // ---- inspection ----------------------------------------------------------------------

    /// Approximate heap bytes this host owns beyond the shared image.
    pub fn owned_bytes(&self) -> usize {
        let ram = self.etc.owned_bytes() + self.store.as_ref().map_or(0, |s| s.owned_bytes());
        // Saved contents shared with RAM (after a save or a boot they are the same allocation)
        // are counted once, on the RAM side.
        let shared = |b: &Bytes| Arc::strong_count(b) > 1;
        let banks = self.banks.as_ref().map_or(0, |b| {
            b.boot.owned_bytes(shared) + b.alt.owned_bytes(shared)
        });
        std::mem::size_of::<Self>()
            + ram
            + banks
            + self.events.owned_bytes()
            + self.identity.install_hostname.len()
            + self.identity.smbios_uuid.len()
            + self.useropts.len()
            + self.upload.as_ref().map_or(0, |u| u.len())
    }
}

fn validate_hostname(h: &str) -> Result<String, HostError> {
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        });
    if ok {
        Ok(h.to_string())
    } else {
        Err(HostError::InvalidArgument(format!(
            "invalid hostname {h:?}"
        )))
    }
}

fn validate_uuid(u: &str) -> Result<String, HostError> {
    let hex: String = u.chars().filter(|c| *c != '-').collect();
    let shape: Vec<usize> = u.split('-').map(str::len).collect();
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) && shape == [8, 4, 4, 4, 12] {
        Ok(u.to_ascii_uppercase())
    } else {
        Err(HostError::InvalidArgument(format!(
            "invalid UUID {u:?}: expected 8-4-4-4-12 hex digits"
        )))
    }
}

/// 16 bytes as an uppercase 8-4-4-4-12 UUID.
pub fn format_uuid(b: &[u8; 16]) -> String {
    hex_groups(b, b"0123456789ABCDEF", &[4, 2, 2, 2, 6])
}

/// Bytes as hex digits from `digits`, in dash-separated groups of `groups` bytes: one
/// allocation (host creation formats two UUIDs).
pub(crate) fn hex_groups(b: &[u8], digits: &[u8; 16], groups: &[usize]) -> String {
    let mut s = String::with_capacity(b.len() * 2 + groups.len());
    let mut bytes = b.iter();
    for (i, &n) in groups.iter().enumerate() {
        if i > 0 {
            s.push('-');
        }
        for x in bytes.by_ref().take(n) {
            s.push(digits[(x >> 4) as usize] as char);
            s.push(digits[(x & 15) as usize] as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_formatted_in_their_groups() {
        let b: [u8; 16] = std::array::from_fn(|i| (i as u8) * 17);
        assert_eq!(format_uuid(&b), "00112233-4455-6677-8899-AABBCCDDEEFF");
        // The vmkernel's /system/uuid form (power.rs): 8-8-4-12 lowercase digits.
        assert_eq!(
            hex_groups(&b, b"0123456789abcdef", &[4, 4, 2, 6]),
            "00112233-44556677-8899-aabbccddeeff"
        );
    }
}
