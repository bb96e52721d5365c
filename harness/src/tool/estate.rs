//! The estate a tool is tested against: a vCenter-mode fleet started in-process, of mixed
//! builds, with every request traced, and what the tool is told about it (the vCenter's URL,
//! credentials, the fleet CA, a host list file, the destination).
//!
//! Its hosts, from the seed (each on its own loopback address, any free port, so download URLs
//! carry an explicit port):
//!
//! | host | build | role |
//! |---|---|---|
//! | 0 | 6.7U3 | backed up (plain state.tgz) |
//! | 1 | 7.0U3 | backed up (encrypted state, NONE mode) |
//! | 2 | 8.0U3, TPM mode | backed up; its recovery key belongs beside its bundle (facts 6.5) |
//! | 3 | 8.0U3 | not responding (its link is down): a tool must skip it, not stop |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use esxi_sim::fleet::{Fleet, Layout, Mode};
use esxi_sim::server::trace::{Filter, Record, Trace};

pub const VCENTER_USER: &str = "administrator@vsphere.local";
pub const VCENTER_PASSWORD: &str = "Harness!VC1";
pub const ROOT_PASSWORD: &str = "Harness!esx1";

/// The hosts' ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ports {
    /// Any free port each: download URLs say `https://*:PORT/...`.
    Any,
    /// A real host's: 443, and port 80 answering `301` to https; download URLs say
    /// `http://*/...` as a real host's do (binding them takes privileges).
    Real,
}

/// Whether this process may bind ports 443 and 80 on loopback.
pub fn may_bind_real_ports(first: Ipv4Addr) -> bool {
    [443u16, 80]
        .iter()
        .all(|p| std::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(first), *p)).is_ok())
}

/// What a host is for in the estate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Connected ESXi: every tool must back it up.
    Target,
    /// Connected in vCenter's inventory but not responding.
    NotResponding,
}

#[derive(Clone, Debug)]
pub struct EstateHost {
    pub index: usize,
    /// Its name in vCenter (what `{host}` in a layout is).
    pub name: String,
    pub profile: String,
    pub role: Role,
    /// The hardware UUID its bundles carry.
    pub uuid: String,
    /// A TPM-mode host's recovery key (`esxcli system settings encryption recovery list`'s
    /// 16 groups of 6 digits): what opens its bundles anywhere but on its own board.
    pub recovery_key: Option<String>,
}

pub struct Estate {
    pub fleet: Fleet,
    pub trace: Arc<Trace>,
    pub hosts: Vec<EstateHost>,
    /// Files the tool is given (the CA, the host list), and its destination.
    pub work: tempfile::TempDir,
    pub seed: u64,
}

const MIX: &[(&str, Role)] = &[
    ("6.7U3", Role::Target),
    ("7.0U3", Role::Target),
    ("8.0U3+tpm", Role::Target),
    ("8.0U3", Role::NotResponding),
];

impl Estate {
    /// Starts the estate on loopback addresses from `first` (127.x.y.z).
    pub async fn start(seed: u64, first: Ipv4Addr) -> Result<Estate, String> {
        Estate::start_on(seed, first, Ports::Any).await
    }

    /// Starts the estate with its hosts' ports as `ports` says.
    pub async fn start_on(seed: u64, first: Ipv4Addr, ports: Ports) -> Result<Estate, String> {
        let trace = Arc::new(Trace::new(None)?);
        let t = trace.clone();
        let mut profiles: Vec<(&str, usize)> = Vec::new();
        for (p, _) in MIX {
            match profiles.last_mut() {
                Some((q, n)) if q == p => *n += 1,
                _ => profiles.push((p, 1)),
            }
        }
        let fleet = Fleet::builder()
            .hosts(MIX.len())
            .mode(Mode::VCenter)
            .seed(seed)
            .profiles(&profiles)
            .password(ROOT_PASSWORD)
            .vcenter_credentials(VCENTER_USER, VCENTER_PASSWORD)
            .layout(Layout::Addresses {
                first,
                port: match ports {
                    Ports::Any => 0,
                    Ports::Real => 443,
                },
            })
            .vcenter_listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .boot_time(Duration::from_secs(3))
            .config(move |c| {
                c.trace = Some(t);
                if ports == Ports::Real {
                    c.redirect_port = Some(80);
                }
            })
            .start()
            .await?;
        let mut hosts = Vec::new();
        for (h, (profile, role)) in fleet.hosts().iter().zip(MIX) {
            let (uuid, recovery_key) = fleet.with_host(h.index, |v| {
                if *role == Role::NotResponding {
                    // Down for longer than any run: vCenter shows it notResponding.
                    let until = v.now().plus(Duration::from_secs(365 * 86_400));
                    v.set_link_down_until(Some(until));
                }
                (
                    v.host.smbios_uuid().to_string(),
                    v.host.recovery_key().map(|k| k.key_text()),
                )
            });
            hosts.push(EstateHost {
                index: h.index,
                name: h.vcenter_name.clone(),
                profile: profile.to_string(),
                role: *role,
                uuid,
                recovery_key,
            });
        }
        let work = tempfile::tempdir().map_err(|e| format!("a work directory: {e}"))?;
        if let Some(pem) = fleet.ca_pem() {
            std::fs::write(work.path().join("ca.pem"), pem).map_err(|e| e.to_string())?;
        }
        let list: String = hosts.iter().map(|h| format!("{}\n", h.name)).collect();
        std::fs::write(work.path().join("hosts.txt"), list).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(work.path().join("dest")).map_err(|e| e.to_string())?;
        Ok(Estate {
            fleet,
            trace,
            hosts,
            work,
            seed,
        })
    }

    pub fn url(&self) -> String {
        self.fleet.vcenter_url().unwrap_or_default()
    }
    pub fn dest(&self) -> PathBuf {
        self.work.path().join("dest")
    }
    pub fn ca_file(&self) -> PathBuf {
        self.work.path().join("ca.pem")
    }
    pub fn host_list(&self) -> PathBuf {
        self.work.path().join("hosts.txt")
    }
    pub fn targets(&self) -> impl Iterator<Item = &EstateHost> {
        self.hosts.iter().filter(|h| h.role == Role::Target)
    }

    /// What opens every bundle of the estate: the TPM hosts' recovery keys (the harness may
    /// read them; a tool must ask the host).
    pub fn keys(&self) -> Result<crate::layers::Keys, String> {
        let keys: Vec<&str> = self
            .hosts
            .iter()
            .filter_map(|h| h.recovery_key.as_deref())
            .collect();
        crate::layers::Keys::recovery(&keys)
    }

    /// The trace from `after` on.
    pub fn trace_since(&self, after: u64) -> Vec<Record> {
        self.trace.list(&Filter {
            after: Some(after),
            ..Filter::default()
        })
    }

    /// A change to each target host just before a run, not yet saved: a fresh bundle has it
    /// (BackupFirmwareConfiguration saves first), a stale copy does not. An advanced user
    /// variable in esx.conf, which every era saves.
    pub fn mark(&self, run: &str) -> Vec<(usize, String)> {
        self.targets()
            .map(|h| {
                let value = format!("{run}-{}", h.index);
                self.fleet.with_host(h.index, |v| {
                    // The model refuses nothing a running host accepts; a failure shows in the check.
                    let _ = v.host.set_esx_conf_value(MARK_KEY, &value);
                });
                (h.index, value)
            })
            .collect()
    }
}

impl Estate {
    /// Host `index` fails in one of the ways real hosts do ([`FAILURES`]), by a fault rule
    /// (through the vCenter and on the host alike).
    pub fn fail_host(&self, index: usize, how: &Failure) -> Result<(), String> {
        let spec: esxi_sim::server::faults::RuleSpec = serde_json::from_value(serde_json::json!({
            "host": index.to_string(),
            "method": how.method,
            "action": serde_json::from_str::<serde_json::Value>(how.action)
                .map_err(|e| e.to_string())?,
        }))
        .map_err(|e| e.to_string())?;
        self.fleet.state.faults.add(spec).map(|_| ())
    }

    /// Puts another CA's certificate where the tool reads the CA from: a tool that verifies
    /// refuses every endpoint of the estate.
    pub fn give_another_ca(&self) -> Result<(), String> {
        let other = esxi_sim::server::tls::SharedKey::generate()?;
        std::fs::write(self.ca_file(), other.ca_pem()).map_err(|e| e.to_string())
    }

    /// `n` dated folders from long ago in the destination, each with every target host's file
    /// as the layout names it (stand-ins, not bundles); their names, oldest first.
    pub fn seed_old_folders(&self, layout: &str, n: usize) -> Result<Vec<String>, String> {
        let mut days = Vec::new();
        for i in 0..n {
            let day = format!("2001-01-{:02}", i + 1);
            for h in self.targets() {
                let p = self
                    .dest()
                    .join(super::spec::layout_path(layout, &day, &h.name));
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                }
                std::fs::write(&p, b"an old backup").map_err(|e| e.to_string())?;
            }
            days.push(day);
        }
        Ok(days)
    }
}

/// A host about to be restored: the bundle's mark (what a restore brings back) and the mark
/// set and saved after the bundle was taken (what it must undo).
#[derive(Clone, Debug)]
pub struct RestorePrep {
    pub index: usize,
    pub bundle_mark: String,
    pub later_mark: String,
    /// How many events the host had logged before the run.
    pub events_before: u64,
}

/// A host as the tool left it.
#[derive(Clone, Debug)]
pub struct HostAfter {
    pub running: bool,
    pub in_maintenance_mode: bool,
    /// The freshness mark in its running esx.conf.
    pub mark: Option<String>,
    /// Its events during the run (kind names and, for restores, the force flag).
    pub restores: Vec<bool>,
    pub boots: usize,
}

impl Estate {
    /// Backs up host `index` (its bundle written to the destination at the layout's path for
    /// `date`), then changes and saves its configuration: a restore of that bundle must bring
    /// the first change back.
    pub fn prepare_restore(
        &self,
        index: usize,
        layout: &str,
        date: &str,
    ) -> Result<RestorePrep, String> {
        let h = self
            .hosts
            .iter()
            .find(|h| h.index == index)
            .ok_or("no such host")?;
        let (bundle_mark, later_mark) = (format!("bundle-{index}"), format!("later-{index}"));
        let (bytes, events_before) = self.fleet.with_host(index, |v| {
            v.host
                .set_esx_conf_value(MARK_KEY, &bundle_mark)
                .map_err(|e| e.to_string())?;
            let b = v.host.backup_bundle().map_err(|e| e.to_string())?;
            v.host
                .set_esx_conf_value(MARK_KEY, &later_mark)
                .map_err(|e| e.to_string())?;
            // Saved (a backup saves first): only a restore brings the bundle's mark back.
            v.host.backup_bundle().map_err(|e| e.to_string())?;
            Ok::<_, String>((b.bytes.to_vec(), v.host.events().total()))
        })?;
        let p = self
            .dest()
            .join(super::spec::layout_path(layout, date, &h.name));
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(&p, bytes).map_err(|e| e.to_string())?;
        Ok(RestorePrep {
            index,
            bundle_mark,
            later_mark,
            events_before,
        })
    }

    /// Host `index`'s motherboard is replaced after `prep` (a new SMBIOS UUID: its own bundle
    /// is now "another host's" to RestoreFirmwareConfiguration, which needs `force`), and the
    /// host is powered on and waited for; what the tool does is counted from then on.
    pub async fn replace_board(&self, prep: &mut RestorePrep) -> Result<String, String> {
        let index = prep.index;
        let uuid = self.fleet.with_host(index, |v| {
            v.host.replace_board(true).map_err(|e| e.to_string())?;
            v.host.power_on().map_err(|e| e.to_string())?;
            Ok::<_, String>(v.host.smbios_uuid().to_string())
        })?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.fleet.with_host(index, |v| v.host.is_running()) {
            if std::time::Instant::now() > deadline {
                return Err(format!("host {index} did not boot on its new board"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        prep.events_before = self.fleet.with_host(index, |v| v.host.events().total());
        Ok(uuid)
    }

    /// Host `index` as it is now, and what it went through since `events_before`.
    pub fn host_after(&self, index: usize, events_before: u64) -> HostAfter {
        use esxi_sim::host::events::EventKind;
        self.fleet.with_host(index, |v| {
            let log = v.host.events();
            let kept = log.iter().len() as u64;
            let skip = (events_before + kept).saturating_sub(log.total()) as usize;
            let mut restores = Vec::new();
            let mut boots = 0;
            for e in log.iter().skip(skip) {
                match e.kind {
                    EventKind::Restored { force } => restores.push(force),
                    EventKind::Booted { .. } => boots += 1,
                    _ => {}
                }
            }
            HostAfter {
                running: v.host.is_running(),
                in_maintenance_mode: v.host.in_maintenance_mode(),
                mark: v.host.esx_conf_value(MARK_KEY),
                restores,
                boots,
            }
        })
    }
}

/// A way a host's backup fails.
#[derive(Debug)]
pub struct Failure {
    pub name: &'static str,
    /// The call it hits (`Download` and `Upload` are the transfers).
    pub method: &'static str,
    /// The fault rule's action (docs/control-api.md).
    pub action: &'static str,
    /// It hangs: tried only on a tool that promises to time out.
    pub hangs: bool,
}

/// The failures a tool must survive, host by host: the backup call faults (the host
/// disconnected in vCenter), the download is gone (404: the bundle expired, a proxy), the
/// connection breaks mid-download, the download never answers (a host whose flash or agent
/// hangs). The last only for a tool that promises a `call_timeout`: without one, a hang holds
/// the run until the tool's own timeout, which `completes` and the others already show.
pub const FAILURES: &[Failure] = &[
    Failure {
        name: "backup-fault",
        method: "BackupFirmwareConfiguration",
        action: r#"{"type": "fault", "fault": "HostCommunication",
                    "message": "Unable to communicate with the remote host, since it is disconnected."}"#,
        hangs: false,
    },
    Failure {
        name: "download-404",
        method: "Download",
        action: r#"{"type": "status", "status": 404}"#,
        hangs: false,
    },
    Failure {
        name: "download-reset",
        method: "Download",
        action: r#"{"type": "reset"}"#,
        hangs: false,
    },
    Failure {
        name: "download-hangs",
        method: "Download",
        // Held until the client gives up (docs/control-api.md: `timeout`).
        action: r#"{"type": "timeout"}"#,
        hangs: true,
    },
];

/// The esx.conf key of the freshness mark.
pub const MARK_KEY: &str = "/adv/UserVars/EsxiHarnessMark";
