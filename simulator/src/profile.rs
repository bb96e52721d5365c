//! Build profiles: what distinguishes one ESXi release from another, as far as configuration
//! persistence and the firmware API are concerned.
//!
//! The catalogue is `profiles.toml`, embedded in the binary and parsed once. Each entry cites its
//! source in that file's header (esxi-facts.md sections 1, 3 and 4).

use serde::Deserialize;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::clock::SimTime;

const CATALOGUE: &str = include_str!("../profiles.toml");

/// When `auto-backup.sh` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Cron `M * * * *`: every hour at minute M (M = 1 on 5.x–6.7, facts section 1).
    HourlyAtMinute(u8),
    /// Cron `*/N * * * *`: every N minutes, aligned to the hour.
    EveryMinutes(u32),
}

impl Schedule {
    /// The first firing strictly after `t`.
    pub fn next_after(self, t: SimTime) -> SimTime {
        let minute_ms = 60_000u64;
        match self {
            Schedule::HourlyAtMinute(m) => {
                let hour_ms = 60 * minute_ms;
                let offset = m as u64 * minute_ms;
                let base = (t.0 / hour_ms) * hour_ms + offset;
                SimTime(if base > t.0 { base } else { base + hour_ms })
            }
            Schedule::EveryMinutes(n) => {
                let step = n.max(1) as u64 * minute_ms;
                SimTime((t.0 / step + 1) * step)
            }
        }
    }

    /// The longest a change can wait for the next run: the window a crash can lose.
    pub fn window(self) -> Duration {
        match self {
            Schedule::HourlyAtMinute(_) => Duration::from_secs(3600),
            Schedule::EveryMinutes(n) => Duration::from_secs(60 * n.max(1) as u64),
        }
    }

    /// `hourly-minute-1`, `every-10-minutes`, or a cron line's first field(s): `1 * * * *`, `*/10 * * * *`.
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "unknown schedule {s:?}: expected \"hourly-minute-M\", \"every-N-minutes\", \"M * * * *\" or \"*/N * * * *\""
            )
        };
        if let Some(m) = s.strip_prefix("hourly-minute-") {
            let m: u8 = m.parse().map_err(|_| bad())?;
            return if m < 60 {
                Ok(Schedule::HourlyAtMinute(m))
            } else {
                Err(bad())
            };
        }
        if let Some(n) = s
            .strip_prefix("every-")
            .and_then(|r| r.strip_suffix("-minutes"))
        {
            let n: u32 = n.parse().map_err(|_| bad())?;
            return if (1..=1440).contains(&n) {
                Ok(Schedule::EveryMinutes(n))
            } else {
                Err(bad())
            };
        }
        let fields: Vec<&str> = s.split_whitespace().collect();
        if fields.len() == 5 && fields[1..].iter().all(|f| *f == "*") {
            if let Some(n) = fields[0].strip_prefix("*/") {
                let n: u32 = n.parse().map_err(|_| bad())?;
                if (1..=59).contains(&n) {
                    return Ok(Schedule::EveryMinutes(n));
                }
            } else if let Ok(m) = fields[0].parse::<u8>() {
                if m < 60 {
                    return Ok(Schedule::HourlyAtMinute(m));
                }
            }
        }
        Err(bad())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::HourlyAtMinute(m) => write!(f, "hourly-minute-{m}"),
            Schedule::EveryMinutes(n) => write!(f, "every-{n}-minutes"),
        }
    }
}

/// How a release keeps its saved configuration (facts sections 1 and 6): the persistence era.
/// The formats themselves are [`crate::state`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Era {
    /// 4.x–6.7: state.tgz holds a plain local.tgz of the saved `/etc` files.
    Plain,
    /// 7.0 and 7.0 U1: the same, with the ConfigStore's database inside local.tgz.
    ConfigStore,
    /// 7.0 U2 and later: local.tgz sealed in an envelope (`local.tgz.ve`) next to
    /// `encryption.info`, NONE or TPM mode.
    Encrypted,
}

impl Era {
    fn parse(s: &str) -> Result<Era, String> {
        match s {
            "plain" => Ok(Era::Plain),
            "configstore" => Ok(Era::ConfigStore),
            "encrypted" => Ok(Era::Encrypted),
            _ => Err(format!(
                "era {s:?}: expected \"plain\", \"configstore\" or \"encrypted\""
            )),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Era::Plain => "plain",
            Era::ConfigStore => "configstore",
            Era::Encrypted => "encrypted",
        }
    }
    pub fn has_store(self) -> bool {
        self >= Era::ConfigStore
    }
}

/// What a release keeps in its ConfigStore besides `/etc` (facts section 6.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreHolds {
    /// Network (NICs, vmknics, switches, net stacks, firewall) from 7.0: esx.conf has no `/net`.
    pub network: bool,
    /// Local accounts (`esx/authentication/user_accounts`) from 7.0.3, next to /etc/shadow.
    pub accounts: bool,
    /// Hostname and IPs (`esx/advanced_options`) from 8.0, next to esx.conf.
    pub hostname: bool,
}

/// What a 7.0 U2+ bundle's state.tgz carries \[unconfirmed, facts 6.1\].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleState {
    /// state.tgz exactly as on the boot bank: the encrypted pair (the default).
    Bootbank,
    /// A plain local.tgz, decrypted for the bundle.
    Plain,
}

/// How RestoreFirmwareConfiguration treats a TPM-sealed bundle this host cannot open
/// \[unconfirmed, facts 6.5\].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpmBundleRestore {
    /// Accepted (its manifest checked); the boot then stops until the source host's recovery
    /// key is given (the default).
    Accept,
    /// Refused as an InvalidBundle before anything changes.
    Refuse,
}

/// SyncFirmwareConfiguration's rate limit: at most `syncs_per_quantum` in each `quantum_minutes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncLimit {
    pub syncs_per_quantum: u32,
    pub quantum_minutes: u32,
}

/// One ESXi build.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Short name used on command lines and in scenarios: `6.7U3`.
    pub name: String,
    /// Human name: `6.7 Update 3`.
    pub release: String,
    /// `about.version`: `6.7.0`.
    pub version: String,
    pub build: u32,
    /// `about.apiVersion` and the newest namespace version in vimServiceVersions.xml.
    pub api_version: String,
    /// Older API versions the host still accepts, newest first.
    pub prior_api_versions: Vec<String>,
    /// `vmware -l`, Manifest.txt's RELEASELEVEL.
    pub release_level: String,
    /// The patch level `esxcli system version get` prints: the second number after the dash of
    /// the build's full version (`6.7.0-3.73.14320388` → 73; KB 395110 explains the format).
    pub patch: u32,
    pub schedule: Schedule,
    pub era: Era,
    pub store_holds: StoreHolds,
    pub bundle_state: BundleState,
    pub tpm_bundle_restore: TpmBundleRestore,
    /// `about.name`: "VMware ESXi" (9.x is "ESX" in documents; its API string is unconfirmed).
    pub product_name: String,
    pub sync_limit: SyncLimit,
    pub boot_time: Duration,
}

impl Profile {
    /// `about.fullName`: `VMware ESXi 6.7.0 build-14320388`.
    pub fn full_name(&self) -> String {
        format!(
            "{} {} build-{}",
            self.product_name, self.version, self.build
        )
    }
    /// The update level `esxcli system version get` prints: U3 → 3, GA → 0; on 9.x (no updates
    /// any more, KB 395110) the maintenance number, 9.0.1 → 1 \[inferred\].
    pub fn update(&self) -> u32 {
        if let Some((_, u)) = self.name.split_once('U') {
            let digits: String = u.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().unwrap_or(0);
        }
        let mut parts = self.version.split('.');
        match parts.next().and_then(|m| m.parse::<u32>().ok()) {
            Some(major) if major >= 9 => parts.nth(1).and_then(|z| z.parse().ok()).unwrap_or(0),
            _ => 0,
        }
    }
    /// `version` as a number to compare releases: 7.0.3 → 70003.
    pub fn version_number(&self) -> u32 {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (a, b, c) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        a * 10_000 + b * 100 + c
    }
    /// The catalogue, parsed once.
    pub fn all() -> &'static [Arc<Profile>] {
        static ALL: OnceLock<Vec<Arc<Profile>>> = OnceLock::new();
        ALL.get_or_init(|| {
            parse_catalogue(CATALOGUE)
                .unwrap_or_else(|e| panic!("embedded profiles.toml is invalid: {e}"))
        })
    }
    /// Looks a profile up by name (`6.7U3`), case-insensitively.
    pub fn named(name: &str) -> Result<Arc<Profile>, UnknownProfile> {
        Profile::all()
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .cloned()
            .ok_or_else(|| UnknownProfile(name.to_string()))
    }
    /// The lowest build in the catalogue with this release level: what a bundle's build number is
    /// taken to be, since the 6.x Manifest.txt carries no BUILD key (facts section 2).
    pub fn build_for_release_level(level: &str) -> Option<u32> {
        Profile::all()
            .iter()
            .filter(|p| p.release_level == level)
            .map(|p| p.build)
            .min()
    }
    pub fn default_profile() -> Arc<Profile> {
        Profile::named("6.7U3").expect("6.7U3 is in the catalogue")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Profile::all().iter().map(|p| p.name.as_str()).collect();
        write!(
            f,
            "unknown profile {:?}; known: {}",
            self.0,
            names.join(" ")
        )
    }
}

impl std::error::Error for UnknownProfile {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    profile: Vec<RawProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    release: String,
    version: String,
    build: u32,
    api_version: String,
    prior_api_versions: Vec<String>,
    release_level: String,
    #[serde(default)]
    patch: u32,
    schedule: String,
    era: String,
    #[serde(default)]
    store_holds: Vec<String>,
    #[serde(default)]
    bundle_state: Option<String>,
    #[serde(default)]
    tpm_bundle_restore: Option<String>,
    #[serde(default)]
    product_name: Option<String>,
    sync_limit: SyncLimit,
    boot_seconds: u64,
}

fn parse_catalogue(text: &str) -> Result<Vec<Arc<Profile>>, String> {
    let file: CatalogueFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out: Vec<Arc<Profile>> = Vec::new();
    for raw in file.profile {
        if out.iter().any(|p| p.name.eq_ignore_ascii_case(&raw.name)) {
            return Err(format!("duplicate profile {}", raw.name));
        }
        if raw.sync_limit.quantum_minutes == 0 || raw.sync_limit.syncs_per_quantum == 0 {
            return Err(format!("{}: sync_limit values must be positive", raw.name));
        }
        let era = Era::parse(&raw.era).map_err(|e| format!("{}: {e}", raw.name))?;
        let mut holds = StoreHolds::default();
        for h in &raw.store_holds {
            match h.as_str() {
                "network" => holds.network = true,
                "accounts" => holds.accounts = true,
                "hostname" => holds.hostname = true,
                other => return Err(format!("{}: store_holds {other:?}", raw.name)),
            }
        }
        if !era.has_store() && holds != StoreHolds::default() {
            return Err(format!(
                "{}: store_holds without a ConfigStore era",
                raw.name
            ));
        }
        let bundle_state = match raw.bundle_state.as_deref() {
            None | Some("bootbank") => BundleState::Bootbank,
            Some("plain") => BundleState::Plain,
            Some(o) => return Err(format!("{}: bundle_state {o:?}", raw.name)),
        };
        let tpm_bundle_restore = match raw.tpm_bundle_restore.as_deref() {
            None | Some("accept") => TpmBundleRestore::Accept,
            Some("refuse") => TpmBundleRestore::Refuse,
            Some(o) => return Err(format!("{}: tpm_bundle_restore {o:?}", raw.name)),
        };
        out.push(Arc::new(Profile {
            schedule: Schedule::parse(&raw.schedule).map_err(|e| format!("{}: {e}", raw.name))?,
            era,
            store_holds: holds,
            bundle_state,
            tpm_bundle_restore,
            product_name: raw.product_name.unwrap_or_else(|| "VMware ESXi".into()),
            name: raw.name,
            release: raw.release,
            version: raw.version,
            build: raw.build,
            api_version: raw.api_version,
            prior_api_versions: raw.prior_api_versions,
            release_level: raw.release_level,
            patch: raw.patch,
            sync_limit: raw.sync_limit,
            boot_time: Duration::from_secs(raw.boot_seconds),
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_ten_releases_of_the_facts() {
        let names: Vec<&str> = Profile::all().iter().map(|p| p.name.as_str()).collect();
        for n in [
            "4.1U1", "5.5GA", "6.0U3", "6.5U3", "6.7GA", "6.7U3", "7.0GA", "7.0U1", "7.0U2",
            "7.0U3", "8.0GA", "8.0U1", "8.0U2", "8.0U3", "9.0.0.0", "9.0.1.0",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        let p = Profile::named("6.7u3").unwrap();
        assert_eq!(p.full_name(), "VMware ESXi 6.7.0 build-14320388");
        assert_eq!(p.release_level, "VMware ESXi 6.7.0 Update 3");
        assert_eq!(p.schedule, Schedule::HourlyAtMinute(1));
        let ga = Profile::named("6.7GA").unwrap();
        assert_eq!(
            ga.prior_api_versions,
            ["6.5", "6.0", "5.5", "5.1", "5.0", "4.1", "4.0"],
            "facts section 4"
        );
        assert_eq!(
            Profile::named("8.0U3").unwrap().schedule,
            Schedule::EveryMinutes(10)
        );
        assert_eq!(Profile::named("7.0U2").unwrap().era, Era::Encrypted);
        assert_eq!(Profile::named("7.0U1").unwrap().era, Era::ConfigStore);
        assert_eq!(Profile::named("6.7U3").unwrap().era, Era::Plain);
        assert!(Profile::named("7.0U3").unwrap().store_holds.accounts);
        assert!(!Profile::named("7.0U2").unwrap().store_holds.accounts);
        assert!(Profile::named("8.0GA").unwrap().store_holds.hostname);
        assert!(!Profile::named("7.0U3").unwrap().store_holds.hostname);
        assert_eq!(Profile::named("7.0U3").unwrap().version_number(), 70003);
        assert!(!Profile::named("7.0U3").unwrap().full_name().is_empty());
        assert!(Profile::named("9.9").is_err());
        // What `esxcli system version get` prints as Update and Patch.
        for (name, update, patch) in [
            ("6.7U3", 3, 73),
            ("6.7GA", 0, 0),
            ("7.0U3d", 3, 35),
            ("7.0U3k", 3, 75),
            ("8.0GA", 0, 0),
            ("8.0U3", 3, 0),
            ("9.0.1.0", 1, 0),
        ] {
            let p = Profile::named(name).unwrap();
            assert_eq!((p.update(), p.patch), (update, patch), "{name}");
        }
        // Patch builds of one Update share the release level; the bundle's build is the lowest.
        assert_eq!(
            Profile::build_for_release_level("VMware ESXi 7.0 Update 3"),
            Some(18644231)
        );
    }

    #[test]
    fn schedules_fire_on_their_minutes() {
        let t0 = crate::clock::DEFAULT_EPOCH; // 00:00:00
        let hourly = Schedule::HourlyAtMinute(1);
        assert_eq!(hourly.next_after(t0).since(t0).as_secs(), 60);
        let at_0001 = hourly.next_after(t0);
        assert_eq!(hourly.next_after(at_0001).since(at_0001).as_secs(), 3600);
        let ten = Schedule::EveryMinutes(10);
        assert_eq!(ten.next_after(t0).since(t0).as_secs(), 600);
        assert_eq!(Schedule::parse("*/10 * * * *"), Ok(ten));
        assert_eq!(Schedule::parse("1 * * * *"), Ok(hourly));
        assert_eq!(Schedule::parse(&hourly.to_string()), Ok(hourly));
        assert!(Schedule::parse("every-0-minutes").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("1 2 * * *").is_err());
    }

    #[test]
    fn bad_catalogues_are_rejected() {
        assert!(parse_catalogue("[[profile]]\nname = 1").is_err());
        let one = CATALOGUE.split("\n[[profile]]").nth(1).unwrap();
        let twice = format!("[[profile]]{one}\n[[profile]]{one}");
        assert!(parse_catalogue(&twice).unwrap_err().contains("duplicate"));
    }
}
