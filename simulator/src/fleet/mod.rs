//! A fleet: a whole estate in one process. Many hosts, each its own HTTPS endpoint (its own
//! loopback address on a common port, as real hosts are, or its own port), optionally one
//! vCenter endpoint in front of them, one virtual clock, one set of fault rules, one event log,
//! and the control API ([`control`]) that tests drive it with.
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use esxi_sim::fleet::{Fleet, Mode};
//! let fleet = Fleet::builder().hosts(3).mode(Mode::VCenter).profile("8.0U3").start().await?;
//! println!("vCenter at {}", fleet.vcenter_url().unwrap());
//! for h in fleet.hosts() {
//!     println!("{} {}", h.name, h.url);
//! }
//! fleet.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Hosts are created in parallel and share their image defaults per profile (see
//! [`crate::host::image`]) and, per distinct password, one password hash; what a host owns is
//! what it changed. TLS certificates are made on a host's first connection over one fleet key.
//! A background tick moves every host to the clock's now twice a second so schedules run
//! whether or not anyone calls (what runs wakes the waits of the host and of its vCenter:
//! [`crate::vim::changes`]), and gathers the hosts' events into the fleet's log.

pub mod control;
pub mod events;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{RealTimeClock, SimTime, DEFAULT_EPOCH};
use crate::keystore::Mode as KeyMode;
use crate::profile::{Profile, Schedule};
use crate::rng::Rng;
use crate::server::faults::FaultSet;
use crate::server::tls::{Acceptor, SharedKey};
use crate::server::{sdk_url, Endpoint, Server, ServerConfig, Shared, UrlStyle, VimGuard};
use crate::vim::vcenter::{self, Estate, EstateHost};
use crate::vim::{Vim, VimConfig};
use crate::{Host, HostConfig};

pub use control::ControlAuth;
pub use events::{FleetEvent, FleetLog};

/// Standalone hosts only, or hosts behind a vCenter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Esxi,
    VCenter,
}

/// How hosts get their endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One loopback address each, counting up from `first`, all on `port` (as real hosts).
    Addresses { first: Ipv4Addr, port: u16 },
    /// One port each on `ip`, counting up from `first` (0: any free port each).
    Ports { ip: IpAddr, first: u16 },
}

/// Everything a fleet is made from.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub mode: Mode,
    /// Profiles and how many hosts of each, in host order.
    pub profiles: Vec<(String, usize)>,
    pub layout: Layout,
    /// The vCenter endpoint (vcenter mode).
    pub vcenter_listen: SocketAddr,
    /// The control API's listener, if any.
    pub control: Option<SocketAddr>,
    /// The control API's bearer token: generated at start (the default), given, or none.
    pub control_auth: ControlAuth,
    /// Serve the control API on an address other than loopback (refused otherwise: it has no
    /// TLS, and it can read every host's secrets).
    pub control_remote: bool,
    /// Names besides IP addresses and `localhost` that the control API answers to in `Host`
    /// (a CI service name); any other name is refused, as a DNS-rebinding page would send.
    pub control_hosts: Vec<String>,
    pub seed: u64,
    /// The hosts' root password at install.
    pub password: String,
    /// vCenter's SSO administrator.
    pub vcenter_user: String,
    pub vcenter_password: String,
    pub clock_speed: f64,
    pub start: SimTime,
    pub boot_time: Option<Duration>,
    /// What each host's port does while it reboots (`server::phases`).
    pub reboot: crate::server::RebootPhases,
    pub schedule: Option<Schedule>,
    pub tls: bool,
    pub url_style: UrlStyle,
    pub session_timeout: Duration,
    /// A plain-HTTP listener per host that answers `301` to https, as port 80 on a real host
    /// (issue 13: through a vCenter the bundle URLs are `http://*/...`). Addresses layout: this
    /// port on each host's address; ports layout: this port plus the host's index (0: any).
    pub redirect_port: Option<u16>,
    /// Per-session and per-endpoint caps of every host and the vCenter (docs/limits.md).
    pub limits: crate::vim::limits::Limits,
    pub max_upload: usize,
    /// How often the background tick moves hosts to now (wall time).
    pub tick: Duration,
    /// The encryption mode 7.0 U2+ hosts set up at first boot, unless their mix entry says
    /// (`8.0U3+tpm:10`).
    pub encryption: KeyMode,
    /// Where every endpoint records its requests (`server::trace`; `GET /v1/trace`).
    pub trace: Option<Arc<crate::server::trace::Trace>>,
    /// The vCenter's own build (a profile name; vcenter mode). None: its newest host's, as a
    /// vCenter is always at least as new as what it manages. From 8.0U1 on it also serves
    /// VI/JSON ([`crate::server::vijson`]).
    pub vcenter_version: Option<String>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            mode: Mode::Esxi,
            profiles: vec![("8.0U3".into(), 1)],
            layout: Layout::Ports {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                first: 0,
            },
            vcenter_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            control: None,
            control_auth: ControlAuth::Generated,
            control_remote: false,
            control_hosts: Vec::new(),
            vcenter_version: None,
            seed: 0,
            password: crate::host::DEFAULT_ROOT_PASSWORD.into(),
            vcenter_user: "administrator@vsphere.local".into(),
            vcenter_password: "VMware1!".into(),
            clock_speed: 1.0,
            start: DEFAULT_EPOCH,
            boot_time: None,
            reboot: crate::server::RebootPhases::default(),
            schedule: None,
            tls: true,
            url_style: UrlStyle::Auto,
            session_timeout: Duration::from_secs(30 * 60),
            redirect_port: None,
            limits: Default::default(),
            max_upload: 16 << 20,
            tick: Duration::from_millis(500),
            encryption: KeyMode::None,
            trace: None,
        }
    }
}

/// Builds a fleet: `Fleet::builder().hosts(10).mode(Mode::VCenter).start().await`.
#[derive(Clone, Debug, Default)]
pub struct FleetBuilder {
    pub cfg: FleetConfig,
    hosts: Option<usize>,
    profile: Option<String>,
}

impl FleetBuilder {
    pub fn hosts(mut self, n: usize) -> Self {
        self.hosts = Some(n);
        self
    }
    pub fn mode(mut self, m: Mode) -> Self {
        self.cfg.mode = m;
        self
    }
    /// Every host of one build.
    pub fn profile(mut self, p: &str) -> Self {
        self.profile = Some(p.into());
        self
    }
    /// A mix of builds, in host order: `[("6.7U3", 100), ("8.0U3", 40)]`.
    pub fn profiles(mut self, mix: &[(&str, usize)]) -> Self {
        self.cfg.profiles = mix.iter().map(|(p, n)| (p.to_string(), *n)).collect();
        self.profile = None;
        self
    }
    /// The encryption mode of 7.0 U2+ hosts whose mix entry does not name one.
    pub fn encryption(mut self, m: KeyMode) -> Self {
        self.cfg.encryption = m;
        self
    }
    pub fn layout(mut self, l: Layout) -> Self {
        self.cfg.layout = l;
        self
    }
    pub fn vcenter_listen(mut self, a: SocketAddr) -> Self {
        self.cfg.vcenter_listen = a;
        self
    }
    pub fn control(mut self, a: SocketAddr) -> Self {
        self.cfg.control = Some(a);
        self
    }
    /// The control API's bearer token (default: one made at start, see
    /// [`Fleet::control_token`]).
    pub fn control_token(mut self, t: &str) -> Self {
        self.cfg.control_auth = ControlAuth::Token(t.into());
        self
    }
    /// No bearer token on the control API: anyone who reaches it drives the fleet.
    pub fn control_open(mut self) -> Self {
        self.cfg.control_auth = ControlAuth::Open;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.cfg.seed = s;
        self
    }
    pub fn password(mut self, p: &str) -> Self {
        self.cfg.password = p.into();
        self
    }
    /// The vCenter's build (a profile name such as `8.0U1`); it must not be older than any host.
    pub fn vcenter_version(mut self, profile: &str) -> Self {
        self.cfg.vcenter_version = Some(profile.into());
        self
    }
    pub fn vcenter_credentials(mut self, user: &str, password: &str) -> Self {
        self.cfg.vcenter_user = user.into();
        self.cfg.vcenter_password = password.into();
        self
    }
    pub fn clock_speed(mut self, s: f64) -> Self {
        self.cfg.clock_speed = s;
        self
    }
    pub fn reboot_phases(mut self, p: crate::server::RebootPhases) -> Self {
        self.cfg.reboot = p;
        self
    }
    pub fn boot_time(mut self, d: Duration) -> Self {
        self.cfg.boot_time = Some(d);
        self
    }
    pub fn schedule(mut self, s: Schedule) -> Self {
        self.cfg.schedule = Some(s);
        self
    }
    pub fn plain_http(mut self) -> Self {
        self.cfg.tls = false;
        self
    }
    pub fn url_style(mut self, u: UrlStyle) -> Self {
        self.cfg.url_style = u;
        self
    }
    pub fn config(mut self, f: impl FnOnce(&mut FleetConfig)) -> Self {
        f(&mut self.cfg);
        self
    }

    /// The final configuration: `--hosts` and `--profile` folded into the profile mix.
    pub fn resolve(mut self) -> Result<FleetConfig, String> {
        if let Some(p) = self.profile.take() {
            self.cfg.profiles = vec![(p, self.hosts.unwrap_or(1))];
        } else if let Some(n) = self.hosts {
            let total: usize = self.cfg.profiles.iter().map(|(_, c)| c).sum();
            if self.cfg.profiles.len() == 1 {
                self.cfg.profiles[0].1 = n;
            } else if total != n {
                return Err(format!("the profile mix adds up to {total} hosts, not {n}"));
            }
        }
        let total: usize = self.cfg.profiles.iter().map(|(_, c)| c).sum();
        if total == 0 {
            return Err("a fleet needs at least one host".into());
        }
        if total > MAX_HOSTS {
            return Err(format!("at most {MAX_HOSTS} hosts per process"));
        }
        Ok(self.cfg)
    }

    /// Creates the hosts, binds every endpoint and starts serving.
    pub async fn start(self) -> Result<Fleet, String> {
        Fleet::start(self.resolve()?).await
    }

    /// [`FleetBuilder::start`] for tests without an async runtime: the fleet serves from a
    /// runtime of its own (two worker threads) until the returned value is dropped.
    pub fn start_blocking(self) -> Result<BlockingFleet, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("a runtime for the fleet: {e}"))?;
        let fleet = rt.block_on(self.start())?;
        Ok(BlockingFleet {
            fleet: Some(fleet),
            rt,
        })
    }
}

/// A fleet serving from its own runtime ([`FleetBuilder::start_blocking`]); it derefs to
/// [`Fleet`] and shuts down (waiting for open requests) when dropped.
pub struct BlockingFleet {
    fleet: Option<Fleet>,
    rt: tokio::runtime::Runtime,
}

impl std::ops::Deref for BlockingFleet {
    type Target = Fleet;
    fn deref(&self) -> &Fleet {
        self.fleet.as_ref().expect("present until drop")
    }
}

impl Drop for BlockingFleet {
    fn drop(&mut self) {
        if let Some(f) = self.fleet.take() {
            self.rt.block_on(f.shutdown());
        }
    }
}

/// More would not fit the file descriptors of a default system.
pub const MAX_HOSTS: usize = 50_000;

/// Parses `6.7U3:100,8.0U3:40`.
pub fn parse_profile_mix(s: &str) -> Result<Vec<(String, usize)>, String> {
    s.split(',')
        .map(|part| {
            let (p, n) = part
                .trim()
                .split_once(':')
                .ok_or_else(|| format!("'{part}': expected PROFILE[+MODE]:COUNT"))?;
            variant(p.trim()).map_err(|e| format!("'{part}': {e}"))?;
            let n: usize = n
                .trim()
                .parse()
                .map_err(|_| format!("'{part}': the count must be a whole number"))?;
            Ok((p.trim().to_string(), n))
        })
        .collect()
}

/// A profile mix entry's build and encryption mode: `8.0U3` (the fleet's default mode) or
/// `8.0U3+tpm` / `8.0U3+none` (7.0 U2 and later only: the older builds do not encrypt).
pub fn variant(entry: &str) -> Result<(Arc<Profile>, Option<KeyMode>), String> {
    let (name, mode) = match entry.split_once('+') {
        Some((n, m)) => (n, Some(m.parse::<KeyMode>()?)),
        None => (entry, None),
    };
    let p = Profile::named(name).map_err(|e| e.to_string())?;
    if mode.is_some() && p.era != crate::profile::Era::Encrypted {
        return Err(format!(
            "ESXi {} does not encrypt its configuration (7.0 U2 and later do): no +{}",
            p.name,
            mode.map(|m| m.to_string().to_lowercase())
                .unwrap_or_default()
        ));
    }
    Ok((p, mode))
}

/// One host of a fleet.
pub struct FleetHost {
    pub index: usize,
    /// How it was installed (reinstalling makes it again from this, at the clock's now).
    pub config: HostConfig,
    /// How the control API, fault rules and events name it: its address (`127.1.0.7`), or in
    /// the ports layout address and port (`127.0.0.1:8445`).
    pub name: String,
    /// Its `name` in vCenter: the address. In the ports layout every host has the same one
    /// (clients that replace `*` in a download URL with it still reach the right port, since
    /// the URL carries it); use the addresses layout for realistic names.
    pub vcenter_name: String,
    pub addr: SocketAddr,
    /// Its port-80 listener (`FleetConfig::redirect_port`), if any.
    pub redirect_addr: Option<SocketAddr>,
    pub url: String,
    pub shared: Arc<Shared>,
}

impl FleetHost {
    /// The vCenter id of the host (`host-12`), also accepted in esxi mode.
    pub fn vcenter_id(&self) -> String {
        vcenter::host_ref(self.index).id
    }
}

/// What the fleet's parts share (the control API holds one).
pub struct FleetState {
    pub cfg: FleetConfig,
    pub hosts: Vec<FleetHost>,
    pub vcenter: Option<Arc<Shared>>,
    pub vcenter_addr: Option<SocketAddr>,
    pub clock: Arc<Mutex<RealTimeClock>>,
    pub faults: Arc<FaultSet>,
    pub log: FleetLog,
    /// The fleet CA's certificate (PEM) that every endpoint's certificate chains to (None over
    /// plain HTTP).
    pub ca_pem: Option<String>,
    /// Per host with slow flash: the delay and the fault rules that apply it.
    pub slow_flash: Mutex<std::collections::HashMap<usize, (String, Vec<u64>)>>,
    /// The bearer token the control API requires (None: open, as asked).
    pub control_token: Option<String>,
}

/// The API calls that write the boot bank and so wait on slow flash.
pub const FLASH_WRITERS: &str = "SyncFirmwareConfiguration|BackupFirmwareConfiguration";

impl FleetState {
    /// Makes a host's flash slow (every save waits `delay`, wall time) or fast again (None).
    /// Saves are instant in the model; what a client sees of slow flash is the calls that save
    /// (sync, backup) answering late, directly or through the vCenter. Done with fault rules
    /// (listed with the others), one per endpoint.
    pub fn set_slow_flash(&self, h: &FleetHost, delay: Option<&str>) -> Result<(), String> {
        use crate::server::faults::{Action, RuleSpec};
        let mut slow = self.slow_flash.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, rules)) = slow.remove(&h.index) {
            for r in rules {
                self.faults.remove(r);
            }
        }
        let Some(d) = delay else {
            return Ok(());
        };
        let rule = RuleSpec {
            host: Some(h.index.to_string()),
            method: Some(FLASH_WRITERS.into()),
            object_type: Some("HostFirmwareSystem".into()),
            object_id: None,
            probability: 1.0,
            delay: Some(d.to_string()),
            max_count: None,
            skip_count: 0,
            action: Action::Delay,
        };
        let id = self.faults.add(rule)?.id;
        slow.insert(h.index, (d.to_string(), vec![id]));
        Ok(())
    }

    pub fn slow_flash_of(&self, h: &FleetHost) -> Option<String> {
        let slow = self.slow_flash.lock().unwrap_or_else(|e| e.into_inner());
        slow.get(&h.index).map(|(d, _)| d.clone())
    }

    pub fn now(&self) -> SimTime {
        self.clock.lock().unwrap_or_else(|e| e.into_inner()).now()
    }

    /// A host by index, address, vCenter id (`host-12`) or host name.
    pub fn find(&self, id: &str) -> Option<&FleetHost> {
        if let Ok(i) = id.parse::<usize>() {
            return self.hosts.get(i);
        }
        if let Some(i) = vcenter::ids::host_index(id, "host-") {
            return self.hosts.get(i);
        }
        if let Some(h) = self.hosts.iter().find(|h| h.name == id) {
            return Some(h);
        }
        // The name it was installed with (found while it is down, or booted defaults), then
        // the name it has now (after a restore of another host's bundle, say).
        if let Some(h) = self
            .hosts
            .iter()
            .find(|h| h.config.hostname.as_deref() == Some(id))
        {
            return Some(h);
        }
        // `localhost` is what every host without a name says (booting, reset): it names none.
        if id == "localhost" {
            return None;
        }
        self.hosts
            .iter()
            .find(|h| self.lock(h).host.hostname() == id)
    }

    /// Locks a host with its model moved to now (used mutably, it wakes the host's waiters
    /// when released: [`crate::server::VimGuard`]).
    pub fn lock<'a>(&self, h: &'a FleetHost) -> VimGuard<'a> {
        h.shared.lock()
    }

    /// Installs a host afresh (same identity, image defaults, a first save) at the clock's now,
    /// as if it had been wiped and reinstalled: its sessions, tasks and faults go with the old
    /// one. The harness does this before each scenario on a `--control-url` target.
    pub fn reinstall(&self, h: &FleetHost) -> Result<(), crate::HostError> {
        let now = self.now();
        let host = h.config.clone().start(now).build()?;
        let mut v = h.shared.vim.lock().unwrap_or_else(|e| e.into_inner());
        let cfg = v.cfg.clone();
        self.log.take_from(h.index, &h.name, v.host.events());
        let changes = v.changes().clone();
        *v = Vim::new(host, cfg);
        // The same signal: the endpoint's waiters and the vCenter watch it.
        v.keep_changes(changes);
        drop(v);
        self.log.restart(h.index);
        // A reinstalled host is a healthy one: no slow flash either.
        let _ = self.set_slow_flash(h, None);
        Ok(())
    }

    /// Moves every host to now (in parallel), then gathers their new events.
    pub fn sync_all(&self) {
        let now = self.now();
        parallel(&self.hosts, |h| {
            h.shared
                .vim
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .sync_to(now);
        });
        self.collect_events();
    }

    /// Moves the fleet's clock forward and runs everything due on the way.
    pub fn advance(&self, d: Duration) {
        self.clock.lock().unwrap_or_else(|e| e.into_inner()).skip(d);
        self.sync_all();
    }

    pub fn set_speed(&self, speed: f64) {
        self.clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_speed(speed);
    }

    pub fn speed(&self) -> f64 {
        self.clock.lock().unwrap_or_else(|e| e.into_inner()).speed()
    }

    /// Copies new host events and fault firings into the fleet log.
    pub fn collect_events(&self) {
        for h in &self.hosts {
            self.collect_host(h);
        }
        self.collect_faults();
    }

    /// Copies one host's new events (after a control call on it: the others did not change).
    pub fn collect_host(&self, h: &FleetHost) {
        let v = h.shared.vim.lock().unwrap_or_else(|e| e.into_inner());
        self.log.take_from(h.index, &h.name, v.host.events());
    }

    pub fn collect_faults(&self) {
        for f in self.faults.drain_fired() {
            self.log.push_fault(self.now(), &f);
        }
    }
}

/// Runs `f` over items on every core (host creation, syncing ten thousand hosts).
pub fn parallel<T: Sync>(items: &[T], f: impl Fn(&T) + Sync) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len().max(1));
    if threads <= 1 || items.len() < 64 {
        items.iter().for_each(f);
        return;
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        for part in items.chunks(chunk) {
            let f = &f;
            s.spawn(move || part.iter().for_each(f));
        }
    });
}

/// A running fleet. Dropping it without [`Fleet::shutdown`] stops serving as well.
pub struct Fleet {
    pub state: Arc<FleetState>,
    pub control_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    pub fn builder() -> FleetBuilder {
        FleetBuilder::default()
    }

    pub async fn start(cfg: FleetConfig) -> Result<Fleet, String> {
        let t0 = std::time::Instant::now();
        if let Some(a) = cfg.control.filter(|a| !a.ip().is_loopback()) {
            if !cfg.control_remote {
                return Err(format!(
                    "the control API would listen on {a}, which is not loopback: it has no TLS \
                     and reads every host's secrets; allow it explicitly (--control-remote)"
                ));
            }
        }
        let control_token = match &cfg.control_auth {
            ControlAuth::Generated => Some(crate::secret::token()),
            ControlAuth::Token(t) if t.is_empty() => {
                return Err("an empty control token would let anyone in".into())
            }
            ControlAuth::Token(t) => Some(t.clone()),
            ControlAuth::Open => None,
        };
        let hosts = tokio::task::spawn_blocking({
            let cfg = cfg.clone();
            move || make_hosts(&cfg)
        })
        .await
        .map_err(|e| format!("creating hosts: {e}"))??;
        tracing::info!(
            hosts = hosts.len(),
            ms = t0.elapsed().as_millis() as u64,
            "hosts installed"
        );
        let clock = Arc::new(Mutex::new(RealTimeClock::new(cfg.start, cfg.clock_speed)));
        let faults = Arc::new(FaultSet::new(cfg.seed));
        let key = if cfg.tls {
            Some(Arc::new(SharedKey::generate()?))
        } else {
            None
        };
        let (tx, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut fleet_hosts = Vec::with_capacity(hosts.len());
        for (i, (config, host)) in hosts.into_iter().enumerate() {
            let listen = address_of(&cfg.layout, i)?;
            let hostname = host.hostname();
            let mut sc = server_config(&cfg, listen);
            sc.redirect = match cfg.redirect_port {
                Some(p) => Some(redirect_of(&cfg.layout, listen, p, i)?),
                None => None,
            };
            let label = match cfg.layout {
                Layout::Addresses { .. } => Some(listen.ip().to_string()),
                Layout::Ports { .. } => None,
            };
            let ep = Endpoint {
                vim: Arc::new(Mutex::new(Vim::new(host, sc.vim.clone()))),
                clock: clock.clone(),
                faults: faults.clone(),
                label,
                index: Some(i),
                names: vec!["localhost".into(), hostname],
            };
            let server = Server::bind_endpoint(ep, sc, key.clone().map(Acceptor::lazy)).await?;
            let addr = server.addr;
            // Addresses layout: the address, as vCenter lists a host added by IP. Ports
            // layout: address and port, the only thing that tells the hosts apart.
            let name = server.shared.label.clone();
            let vcenter_name = addr.ip().to_string();
            let url = server.url();
            let shared = server.shared.clone();
            let redirect_addr = server.redirect_addr;
            tasks.push(tokio::spawn(server.run(rx.clone())));
            fleet_hosts.push(FleetHost {
                index: i,
                config,
                name,
                vcenter_name,
                addr,
                redirect_addr,
                url,
                shared,
            });
        }
        tracing::info!(ms = t0.elapsed().as_millis() as u64, "host endpoints bound");
        let (vcenter, vcenter_addr) = match cfg.mode {
            Mode::Esxi => (None, None),
            Mode::VCenter => {
                let (shared, addr, task) =
                    start_vcenter(&cfg, &fleet_hosts, &clock, &faults, key.clone(), &rx).await?;
                tasks.push(task);
                (Some(shared), Some(addr))
            }
        };
        let state = Arc::new(FleetState {
            cfg: cfg.clone(),
            hosts: fleet_hosts,
            vcenter,
            vcenter_addr,
            clock,
            faults,
            log: FleetLog::new(100_000),
            ca_pem: key.as_ref().map(|k| k.ca_pem().to_string()),
            slow_flash: Mutex::new(std::collections::HashMap::new()),
            control_token,
        });
        state.collect_events();
        tasks.push(tokio::spawn(tick(state.clone(), cfg.tick, rx.clone())));
        let control_addr = match cfg.control {
            Some(a) => {
                let (addr, task) = control::start(state.clone(), a, rx.clone()).await?;
                tasks.push(task);
                Some(addr)
            }
            None => None,
        };
        Ok(Fleet {
            state,
            control_addr,
            shutdown: tx,
            tasks,
        })
    }

    pub fn hosts(&self) -> &[FleetHost] {
        &self.state.hosts
    }
    pub fn vcenter_url(&self) -> Option<String> {
        let scheme = if self.state.cfg.tls { "https" } else { "http" };
        self.state.vcenter_addr.map(|a| sdk_url(scheme, a))
    }
    /// The CA certificate (PEM) to trust for verifying every host and the vCenter.
    pub fn ca_pem(&self) -> Option<&str> {
        self.state.ca_pem.as_deref()
    }
    pub fn control_url(&self) -> Option<String> {
        self.control_addr.map(|a| format!("http://{a}"))
    }
    /// The bearer token the control API requires (`Authorization: Bearer ...`); None when it
    /// was opened with [`FleetBuilder::control_open`].
    pub fn control_token(&self) -> Option<&str> {
        self.state.control_token.as_deref()
    }
    pub fn now(&self) -> SimTime {
        self.state.now()
    }
    pub fn advance(&self, d: Duration) {
        self.state.advance(d)
    }
    /// Runs `f` on host `i`'s API state (and model, `vim.host`) at now.
    pub fn with_host<R>(&self, i: usize, f: impl FnOnce(&mut Vim) -> R) -> R {
        let mut v = self.state.lock(&self.state.hosts[i]);
        f(&mut v)
    }
    pub fn faults(&self) -> &FaultSet {
        &self.state.faults
    }

    /// Stops every listener and waits for open requests (up to 10 s).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn server_config(cfg: &FleetConfig, listen: SocketAddr) -> ServerConfig {
    let mut sc = ServerConfig::new(listen);
    if !cfg.tls {
        sc.tls = None;
    }
    sc.url_style = cfg.url_style;
    sc.clock_speed = cfg.clock_speed;
    sc.max_upload = cfg.max_upload;
    sc.reboot = cfg.reboot.clone();
    sc.trace = cfg.trace.clone();
    sc.vim = VimConfig {
        session_timeout: cfg.session_timeout,
        limits: cfg.limits.clone(),
        ..VimConfig::default()
    };
    sc
}

/// Where host `i`'s port-80 listener binds.
fn redirect_of(
    layout: &Layout,
    listen: SocketAddr,
    port: u16,
    i: usize,
) -> Result<SocketAddr, String> {
    match *layout {
        Layout::Addresses { .. } => Ok(SocketAddr::new(listen.ip(), port)),
        Layout::Ports { .. } if port == 0 => Ok(SocketAddr::new(listen.ip(), 0)),
        Layout::Ports { .. } => (port as usize)
            .checked_add(i)
            .filter(|p| *p <= 65_535)
            .map(|p| SocketAddr::new(listen.ip(), p as u16))
            .ok_or_else(|| format!("host {i}: redirect ports from {port} run past 65535")),
    }
}

/// The listen address of host `i`.
pub fn address_of(layout: &Layout, i: usize) -> Result<SocketAddr, String> {
    match *layout {
        Layout::Addresses { first, port } => {
            let n = u32::from(first)
                .checked_add(i as u32)
                .filter(|n| n >> 24 == 127)
                .ok_or_else(|| {
                    format!("host {i}: addresses from {first} run out of 127.0.0.0/8")
                })?;
            Ok(SocketAddr::from((Ipv4Addr::from(n), port)))
        }
        Layout::Ports { ip, first } => {
            if first == 0 {
                return Ok(SocketAddr::new(ip, 0));
            }
            let p = (first as usize)
                .checked_add(i)
                .filter(|p| *p <= 65_535)
                .ok_or_else(|| format!("host {i}: ports from {first} run past 65535"))?;
            Ok(SocketAddr::new(ip, p as u16))
        }
    }
}

/// The fleet's NONE-mode material (data1, data2), from its seed: model state, not a secret
/// (NONE mode is obfuscation: the key derives from the file itself, facts 6.4).
pub fn shared_none_material(seed: u64) -> crate::keystore::SharedNoneMaterial {
    let mut rng = Rng::fork(seed, "fleet NONE key store");
    let (mut d1, mut d2) = ([0u8; 16], [0u8; 16]);
    rng.fill(&mut d1);
    rng.fill(&mut d2);
    Arc::new((d1, d2))
}

/// Installs every host, in parallel; each from its own seed, so host `i` is the same whatever
/// the thread count.
fn make_hosts(cfg: &FleetConfig) -> Result<Vec<(HostConfig, Host)>, String> {
    let mut plan: Vec<(usize, Arc<Profile>, KeyMode)> = Vec::new();
    for (entry, count) in &cfg.profiles {
        let (p, mode) = variant(entry)?;
        for _ in 0..*count {
            plan.push((plan.len(), p.clone(), mode.unwrap_or(cfg.encryption)));
        }
    }
    let width = plan.len().to_string().len().max(2);
    // One SHA-512 crypt for the whole fleet instead of one per host (~1.4 ms each).
    let hash = crate::host::shared_root_hash(&cfg.password, cfg.seed);
    // One NONE-mode key store material for the fleet, its 100,000-round key derived once here
    // before the hosts install side by side (facts 6.4; each host keeps its own key id).
    let none = shared_none_material(cfg.seed);
    if plan
        .iter()
        .any(|(_, p, _)| p.era == crate::profile::Era::Encrypted)
    {
        crate::keystore::derive_none_key(&none.0, &none.1);
    }
    type Slot = Mutex<Option<Result<(HostConfig, Host), String>>>;
    let results: Vec<Slot> = plan.iter().map(|_| Mutex::new(None)).collect();
    let jobs: Vec<(usize, Arc<Profile>, KeyMode, &Slot)> = plan
        .into_iter()
        .zip(results.iter())
        .map(|((i, p, m), slot)| (i, p, m, slot))
        .collect();
    parallel(&jobs, |(i, p, mode, slot)| {
        let seed = Rng::fork(cfg.seed, &format!("fleet-host-{i}")).next_u64();
        let mut hc = HostConfig::new(p.clone())
            .seed(seed)
            .hostname(format!("esx-{:0width$}", i + 1))
            .root_password(cfg.password.clone())
            .root_hash(hash.clone())
            .none_material(none.clone())
            .encryption(*mode)
            .start(cfg.start);
        if let Some(b) = cfg.boot_time {
            hc = hc.boot_time(b);
        }
        if let Some(s) = cfg.schedule {
            hc = hc.schedule(s);
        }
        let r = hc
            .clone()
            .build()
            .map(|h| (hc, h))
            .map_err(|e| format!("host {i}: {e}"));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err("host not created".into()))
        })
        .collect()
}

async fn start_vcenter(
    cfg: &FleetConfig,
    hosts: &[FleetHost],
    clock: &Arc<Mutex<RealTimeClock>>,
    faults: &Arc<FaultSet>,
    key: Option<Arc<SharedKey>>,
    rx: &watch::Receiver<bool>,
) -> Result<(Arc<Shared>, SocketAddr, JoinHandle<()>), String> {
    let newest = cfg
        .profiles
        .iter()
        .filter_map(|(p, _)| variant(p).ok().map(|v| v.0))
        .max_by_key(|p| p.build)
        .ok_or("no profile")?;
    let newest = match &cfg.vcenter_version {
        None => newest,
        Some(name) => {
            let own = Profile::named(name).map_err(|e| format!("--vcenter-version: {e}"))?;
            if own.build < newest.build {
                return Err(format!(
                    "--vcenter-version {}: older than the host build {} it would manage (a vCenter must be at least as new as its hosts)",
                    own.name, newest.name
                ));
            }
            own
        }
    };
    let estate = Estate::new(
        hosts
            .iter()
            .map(|h| EstateHost {
                vim: h.shared.vim.clone(),
                name: h.vcenter_name.clone(),
            })
            .collect(),
        &cfg.vcenter_user,
        &cfg.vcenter_password,
        &newest,
    );
    // The appliance's own model only gives the vCenter a clock: stateless, never saved.
    let appliance = HostConfig::new(newest.clone())
        .seed(cfg.seed ^ 0x7663)
        .hostname("vcenter")
        .stateless(true)
        .start(cfg.start)
        .build()
        .map_err(|e| e.to_string())?;
    let mut sc = server_config(cfg, cfg.vcenter_listen);
    sc.vi_json = crate::server::vijson::releases(&newest);
    let vim = Vim::vcenter(appliance, sc.vim.clone(), Arc::new(estate));
    // The vCenter shows its hosts: a change on one wakes the vCenter's waiters too.
    for h in hosts {
        h.shared.changes.also_wake(vim.changes().clone());
    }
    let ep = Endpoint {
        vim: Arc::new(Mutex::new(vim)),
        clock: clock.clone(),
        faults: faults.clone(),
        label: Some("vcenter".into()),
        index: None,
        names: vec!["localhost".into(), "vcenter".into()],
    };
    let server = Server::bind_endpoint(ep, sc, key.map(Acceptor::lazy)).await?;
    let addr = server.addr;
    let shared = server.shared.clone();
    let task = tokio::spawn(server.run(rx.clone()));
    Ok((shared, addr, task))
}

/// Moves every host to now every `every` (wall time), so schedules run unobserved.
async fn tick(state: Arc<FleetState>, every: Duration, mut rx: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = rx.changed() => return,
        }
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || s.sync_all()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_entry_may_name_the_encryption_mode_of_encrypting_builds_only() {
        let mix = parse_profile_mix("6.7U3:2, 8.0U3+tpm:1,8.0U3+NONE:1").unwrap();
        assert_eq!(mix[1], ("8.0U3+tpm".to_string(), 1));
        assert_eq!(variant("8.0U3+tpm").unwrap().1, Some(KeyMode::Tpm));
        assert_eq!(variant("8.0U3").unwrap().1, None);
        for (bad, says) in [
            ("6.7U3+tpm:1", "does not encrypt"),
            ("7.0U1+none:1", "does not encrypt"),
            ("8.0U3+tmp:1", "expected NONE or TPM"),
            ("8.0U3+tpm", "PROFILE[+MODE]:COUNT"),
            ("9.9+tpm:1", "9.9"),
        ] {
            let e = parse_profile_mix(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn fleet_hosts_take_their_entry_s_mode_else_the_fleet_s_and_share_none_material() {
        let cfg = FleetBuilder::default()
            .profiles(&[("8.0U3+tpm", 1), ("8.0U3", 2), ("6.7U3", 1)])
            .seed(5)
            .resolve()
            .unwrap();
        let hosts = make_hosts(&cfg).unwrap();
        let modes: Vec<Option<KeyMode>> = hosts
            .iter()
            .map(|(_, h)| h.encryption().map(|e| e.mode))
            .collect();
        assert_eq!(
            modes,
            [
                Some(KeyMode::Tpm),
                Some(KeyMode::None),
                Some(KeyMode::None),
                None
            ]
        );
        assert!(hosts[0].1.recovery_key().is_some());
        let material = shared_none_material(5);
        let ks = |i: usize| hosts[i].1.encryption().unwrap().keystore();
        for i in [1, 2] {
            match ks(i).material {
                crate::keystore::Material::None { data1, data2 } => {
                    assert_eq!((data1, data2), *material)
                }
                other => panic!("host {i}: {other:?}"),
            }
        }
        // Each host has its own key id all the same.
        assert_ne!(ks(1).key_id, ks(2).key_id);
        // The fleet default applies where the entry says nothing.
        let cfg = FleetBuilder::default()
            .profiles(&[("8.0U3", 1), ("8.0U3+none", 1)])
            .encryption(KeyMode::Tpm)
            .resolve()
            .unwrap();
        let hosts = make_hosts(&cfg).unwrap();
        assert_eq!(hosts[0].1.encryption().unwrap().mode, KeyMode::Tpm);
        assert_eq!(hosts[1].1.encryption().unwrap().mode, KeyMode::None);
    }
}
