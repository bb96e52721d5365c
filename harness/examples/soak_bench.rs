//! Soak (issue 12), run by `ci/bench soak`: does a vCenter fleet's memory stay flat under a
//! long mixed load? Starts the real `esxi-sim serve --mode vcenter` (half 6.7U3, half 8.0U3,
//! host i at 127.3.0.1+i:8443, real-time clock) and drives it with `--clients` concurrent
//! clients doing what backup tools and inventory scripts do:
//!
//! - BackupFirmwareConfiguration through the vCenter for a random host, then the download of
//!   the returned `http://*/downloads/...` URL from that host's own address (`*` replaced by the
//!   host's vCenter name, as Ansible's vmware_cfg_backup does);
//! - RetrievePropertiesEx of every host's name and connectionState through a container view,
//!   in pages of 100: continued to the end, or abandoned after the first page (the token is
//!   left for the server's caps to reclaim);
//! - a PropertyFilter over the same view: WaitForUpdatesEx for the initial set, then
//!   CheckForUpdates or a one-second WaitForUpdatesEx, then the filter and view destroyed;
//! - one host's runtime and config.product (a call forwarded to the host);
//! - short script sessions (Login, CurrentTime, Logout) and, every 50 operations, a worker's own
//!   Logout and Login;
//! - now and then a control-API write of a host's /etc/hosts, so later backups save a change.
//!
//! Bounded state has to reach its caps before memory can be flat: a host keeps its newest 16
//! download bundles (docs/limits.md) for 3 virtual days. At a few thousand random backups a
//! minute, 1,000 hosts need 16,000 at the least and, by chance, about twice that before every
//! host holds 16: the whole soak would draw the caps filling. So it first backs every host up
//! 16 times (`--no-prefill` to watch the caps fill instead). Then RSS (`VmRSS`) is sampled at
//! the start and at the end of each minute (`--sample-secs` for more often); the verdict is
//! max/min of the samples from minute 1 on (the first minute is the warm-up), against "flat
//! within 10%". Every error is counted by
//! kind and shown; none fails the run by itself, the RSS does.
//!
//! Usage: `cargo run --release -p esxi-harness --example soak_bench -- --minutes 10 --hosts 1000`.
//! `ESXI_SIM_BIN` picks the binary (default target/release/esxi-sim).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{mib, rss_kib};
use esxi_harness::client::{as_moref, returnval, Client, ClientError, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::rng::Rng;
use esxi_sim::soap::xml::Element;

/// Bundles a host keeps (`vim::limits::Limits::downloads`' default).
const DOWNLOADS_KEPT: usize = 16;
/// `maxObjects` of the paged retrievals.
const PAGE: usize = 100;
/// A worker's own session ends and a new one starts after this many operations.
const RELOGIN_EVERY: usize = 50;
/// "Flat within 10%".
const FLAT: f64 = 1.10;

#[derive(Parser)]
#[command(about = "Soak: mixed load on a vCenter fleet, RSS each minute")]
struct Args {
    /// Minutes of mixed load after the prefill (0: start and prefill only, no verdict).
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Address of host 0 (each host its own, on port 8443).
    #[arg(long, default_value = "127.3.0.1")]
    addresses: String,
    /// Virtual seconds per wall-clock second.
    #[arg(long, default_value = "1")]
    clock_speed: String,
    /// Skip backing every host up 16 times first: memory then grows while the caps fill.
    #[arg(long)]
    no_prefill: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds between RSS samples (60: one a minute; less to see a short run's curve).
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
}

/// A host as the vCenter names it.
struct Target {
    index: usize,
    /// `host-N`.
    host: MoRef,
    /// `configManager.firmwareSystem`: `firmwareSystem-N`.
    firmware: MoRef,
    /// The vCenter name: the address it was added by, so where its downloads are.
    name: String,
}

#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    backups: AtomicU64,
    downloads: AtomicU64,
    download_bytes: AtomicU64,
    logins: AtomicU64,
    logouts: AtomicU64,
    retrievals: AtomicU64,
    abandoned: AtomicU64,
    waits: AtomicU64,
    host_reads: AtomicU64,
    control: AtomicU64,
    /// Kind → (count, first message).
    errors: Mutex<BTreeMap<String, (u64, String)>>,
}

#[derive(Clone, Default)]
struct Snapshot {
    calls: u64,
    backups: u64,
    downloads: u64,
    download_bytes: u64,
    logins: u64,
    errors: BTreeMap<String, u64>,
}

impl Stats {
    fn add(n: &AtomicU64) {
        n.fetch_add(1, Ordering::Relaxed);
    }
    fn error(&self, kind: String, message: String) {
        let mut e = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        e.entry(kind).or_insert((0, message)).0 += 1;
    }
    fn snapshot(&self) -> Snapshot {
        let l = |n: &AtomicU64| n.load(Ordering::Relaxed);
        Snapshot {
            calls: l(&self.calls),
            backups: l(&self.backups),
            downloads: l(&self.downloads),
            download_bytes: l(&self.download_bytes),
            logins: l(&self.logins),
            errors: self
                .errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, (n, _))| (k.clone(), *n))
                .collect(),
        }
    }
}

/// What went wrong, as a stable kind: the method and the fault type or transport failure.
fn kind(method: &str, e: &ClientError) -> String {
    match e {
        ClientError::Fault { ty, .. } => format!("{method}: {ty}"),
        ClientError::Http(s, _) => format!("{method}: HTTP {}", s.as_u16()),
        ClientError::Io(_) => format!("{method}: connection"),
        ClientError::Protocol(_) => format!("{method}: protocol"),
    }
}

fn view_spec(view: &MoRef, props: &[&str]) -> String {
    let paths: String = props
        .iter()
        .map(|p| format!("<pathSet>{p}</pathSet>"))
        .collect();
    format!(
        "<propSet><type>HostSystem</type>{paths}</propSet><objectSet><obj type=\"ContainerView\">{}</obj>\
         <skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>v</name><type>ContainerView</type>\
         <path>view</path><skip>false</skip></selectSet></objectSet>",
        view.id
    )
}

fn pc() -> MoRef {
    MoRef::new("PropertyCollector", "propertyCollector")
}

/// One client: its own vCenter session (re-made every RELOGIN_EVERY operations or after a
/// failure) and its own random stream.
struct Worker {
    url: String,
    control: String,
    token: String,
    targets: Arc<Vec<Target>>,
    stats: Arc<Stats>,
    rng: Rng,
    vc: Option<Client>,
    ctl: Option<Client>,
    ops: usize,
}

/// `Err(())`: the error is counted; the session may be in any state, so it is replaced.
type Step<T> = Result<T, ()>;

impl Worker {
    fn new(id: usize, seed: u64, sim: &Shared, stats: Arc<Stats>) -> Worker {
        Worker {
            url: sim.vcenter.clone(),
            control: sim.control.clone(),
            token: sim.token.clone(),
            targets: sim.targets.clone(),
            stats,
            rng: Rng::fork(seed, &format!("soak worker {id}")),
            vc: None,
            ctl: None,
            ops: 0,
        }
    }

    fn fail(&self, method: &str, e: &ClientError) {
        self.stats.error(kind(method, e), e.to_string());
    }

    async fn call(&mut self, this: &MoRef, method: &str, params: &str) -> Step<Element> {
        let vc = self.vc.as_mut().expect("logged in");
        match vc.call(this, method, params).await {
            Ok(r) => {
                Stats::add(&self.stats.calls);
                Ok(r)
            }
            Err(e) => {
                self.fail(method, &e);
                Err(())
            }
        }
    }

    async fn login(&mut self) -> Step<()> {
        match common::vc_login(&self.url).await {
            Ok(c) => {
                Stats::add(&self.stats.calls);
                Stats::add(&self.stats.logins);
                self.vc = Some(c);
                self.ops = 0;
                Ok(())
            }
            Err(e) => {
                self.fail("Login", &e);
                Err(())
            }
        }
    }

    /// Logout (counted when it works) and forget the client.
    async fn logout(&mut self) {
        if let Some(mut c) = self.vc.take() {
            let sm = MoRef::new("SessionManager", "SessionManager");
            match c.call(&sm, "Logout", "").await {
                Ok(_) => {
                    Stats::add(&self.stats.calls);
                    Stats::add(&self.stats.logouts);
                }
                Err(e) => self.fail("Logout", &e),
            }
        }
    }

    /// One operation of the mix, by weight (per 100).
    async fn one(&mut self) {
        if self.vc.is_none() && self.login().await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        let r = match self.rng.below(100) {
            0..40 => {
                let i = self.rng.below(self.targets.len() as u64) as usize;
                self.backup(i, true).await
            }
            40..52 => self.inventory(true).await,
            52..60 => self.inventory(false).await,
            60..75 => self.watch().await,
            75..85 => self.script_session().await,
            85..98 => self.host_read().await,
            _ => self.control_write().await,
        };
        self.ops += 1;
        // After a failure the session may be gone or its connection half-used: start afresh.
        if r.is_err() || self.ops >= RELOGIN_EVERY {
            self.logout().await;
        }
    }

    /// BackupFirmwareConfiguration through the vCenter, then (if `download`) the bundle from
    /// the host's own address.
    async fn backup(&mut self, i: usize, download: bool) -> Step<()> {
        let targets = self.targets.clone();
        let t = &targets[i];
        let r = self
            .call(&t.firmware, "BackupFirmwareConfiguration", "")
            .await?;
        let link = match returnval(&r) {
            Ok(v) => v.text.trim().to_string(),
            Err(e) => {
                self.fail("BackupFirmwareConfiguration", &e);
                return Err(());
            }
        };
        Stats::add(&self.stats.backups);
        if !download {
            return Ok(());
        }
        // The host's vCenter name is its address (what Ansible puts in place of `*`).
        let full = link.replacen('*', &t.name, 1);
        let got = match Client::new(&full, Trust::Any) {
            Ok(mut h) => h.get(&Client::path_of(&full)).await,
            Err(e) => Err(e),
        };
        match got {
            Ok(resp) if resp.status.is_success() && resp.body.starts_with(&[0x1f, 0x8b]) => {
                Stats::add(&self.stats.downloads);
                self.stats
                    .download_bytes
                    .fetch_add(resp.body.len() as u64, Ordering::Relaxed);
            }
            Ok(resp) if resp.status.is_success() => self.stats.error(
                "download: not gzip".into(),
                format!("{full}: {} bytes", resp.body.len()),
            ),
            Ok(resp) => self.stats.error(
                format!("download: HTTP {}", resp.status.as_u16()),
                format!("host {}: {full}", t.index),
            ),
            Err(e) => self.fail("download", &e),
        }
        // A download failure says nothing about the vCenter session: keep it.
        Ok(())
    }

    async fn create_view(&mut self) -> Step<MoRef> {
        let r = self
            .call(
                &MoRef::new("ViewManager", "ViewManager"),
                "CreateContainerView",
                "<container type=\"Folder\">group-d1</container><type>HostSystem</type><recursive>true</recursive>",
            )
            .await?;
        match returnval(&r).and_then(|v| as_moref(&v)) {
            Ok(v) => Ok(v),
            Err(e) => {
                self.fail("CreateContainerView", &e);
                Err(())
            }
        }
    }

    fn short(&self, what: &str, got: usize) {
        self.stats.error(
            format!("{what}: wrong count"),
            format!("{got} hosts of {}", self.targets.len()),
        );
    }

    /// Every host's name and connectionState, paged; `to_end: false` stops after the first page
    /// and never continues (nor cancels) the token.
    async fn inventory(&mut self, to_end: bool) -> Step<()> {
        let view = self.create_view().await?;
        let spec = format!(
            "<specSet>{}</specSet><options><maxObjects>{PAGE}</maxObjects></options>",
            view_spec(&view, &["name", "runtime.connectionState"])
        );
        let mut r = self.call(&pc(), "RetrievePropertiesEx", &spec).await?;
        let mut n = 0;
        while let Some(res) = r.child("returnval") {
            n += res.all("objects").count();
            let Some(token) = res.child_text("token").map(str::to_string) else {
                break;
            };
            if !to_end {
                Stats::add(&self.stats.abandoned);
                self.call(&view, "DestroyView", "").await?;
                return Ok(());
            }
            r = self
                .call(
                    &pc(),
                    "ContinueRetrievePropertiesEx",
                    &format!("<token>{token}</token>"),
                )
                .await?;
        }
        if n != self.targets.len() {
            self.short("RetrievePropertiesEx", n);
        }
        Stats::add(&self.stats.retrievals);
        self.call(&view, "DestroyView", "").await?;
        Ok(())
    }

    /// A filter over every host: its initial update set, then a check (or a one-second wait)
    /// that finds nothing new, then the filter and view destroyed.
    async fn watch(&mut self) -> Step<()> {
        let view = self.create_view().await?;
        let spec = format!(
            "<spec>{}</spec><partialUpdates>false</partialUpdates>",
            view_spec(&view, &["name", "runtime.connectionState"])
        );
        let r = self.call(&pc(), "CreateFilter", &spec).await?;
        let filter = match returnval(&r).and_then(|v| as_moref(&v)) {
            Ok(f) => f,
            Err(e) => {
                self.fail("CreateFilter", &e);
                return Err(());
            }
        };
        let r = self
            .call(
                &pc(),
                "WaitForUpdatesEx",
                "<version></version><options><maxWaitSeconds>0</maxWaitSeconds></options>",
            )
            .await?;
        let set = r.child("returnval");
        let n: usize = set
            .map(|s| s.all("filterSet").map(|f| f.all("objectSet").count()).sum())
            .unwrap_or(0);
        if n != self.targets.len() {
            self.short("WaitForUpdatesEx", n);
        }
        let version = set
            .and_then(|s| s.child_text("version"))
            .unwrap_or_default()
            .to_string();
        if self.rng.below(4) == 0 {
            self.call(
                &pc(),
                "WaitForUpdatesEx",
                &format!(
                    "<version>{version}</version><options><maxWaitSeconds>1</maxWaitSeconds></options>"
                ),
            )
            .await?;
        } else {
            self.call(
                &pc(),
                "CheckForUpdates",
                &format!("<version>{version}</version>"),
            )
            .await?;
        }
        Stats::add(&self.stats.waits);
        self.call(&filter, "DestroyPropertyFilter", "").await?;
        self.call(&view, "DestroyView", "").await?;
        Ok(())
    }

    /// One host's runtime and product: a call the vCenter forwards to the host.
    async fn host_read(&mut self) -> Step<()> {
        let i = self.rng.below(self.targets.len() as u64) as usize;
        let host = self.targets[i].host.clone();
        let spec = format!(
            "<specSet><propSet><type>HostSystem</type><pathSet>runtime</pathSet><pathSet>config.product</pathSet></propSet>\
             <objectSet><obj type=\"HostSystem\">{}</obj></objectSet></specSet><options></options>",
            host.id
        );
        let r = self.call(&pc(), "RetrievePropertiesEx", &spec).await?;
        if r.child("returnval").map_or(0, |v| v.all("objects").count()) != 1 {
            self.stats
                .error("host read: no object".into(), host.id.clone());
        }
        Stats::add(&self.stats.host_reads);
        Ok(())
    }

    /// What a short script does: its own connection and session, one call, Logout.
    async fn script_session(&mut self) -> Step<()> {
        let mut c = match common::vc_login(&self.url).await {
            Ok(c) => c,
            Err(e) => {
                self.fail("Login (script)", &e);
                return Ok(());
            }
        };
        Stats::add(&self.stats.calls);
        Stats::add(&self.stats.logins);
        let si = MoRef::new("ServiceInstance", "ServiceInstance");
        let sm = MoRef::new("SessionManager", "SessionManager");
        for (this, method) in [(&si, "CurrentTime"), (&sm, "Logout")] {
            match c.call(this, method, "").await {
                Ok(_) => Stats::add(&self.stats.calls),
                Err(e) => {
                    self.fail(method, &e);
                    return Ok(());
                }
            }
        }
        Stats::add(&self.stats.logouts);
        Ok(())
    }

    /// A control-API write of one host's /etc/hosts: the next save of that host has work.
    async fn control_write(&mut self) -> Step<()> {
        let i = self.rng.below(self.targets.len() as u64) as usize;
        if self.ctl.is_none() {
            match Client::new(&self.control, Trust::Any) {
                Ok(c) => self.ctl = Some(c),
                Err(e) => {
                    self.fail("control", &e);
                    return Ok(());
                }
            }
        }
        let body = format!(
            "127.0.0.1 localhost\n10.9.{}.{} nas-{}\n",
            i / 250 % 250,
            i % 250,
            self.rng.below(1000)
        );
        let headers = [
            ("authorization", format!("Bearer {}", self.token)),
            ("content-type", "application/octet-stream".to_string()),
        ];
        let ctl = self.ctl.as_mut().expect("made above");
        let r = ctl
            .http(
                hyper::Method::PUT,
                &format!("/v1/hosts/{i}/files/etc/hosts"),
                &headers,
                body.into_bytes(),
            )
            .await;
        match r {
            Ok(r) if r.status.is_success() => Stats::add(&self.stats.control),
            Ok(r) => self.stats.error(
                format!("control write: HTTP {}", r.status.as_u16()),
                String::from_utf8_lossy(&r.body).into_owned(),
            ),
            Err(e) => {
                self.fail("control write", &e);
                self.ctl = None;
            }
        }
        Ok(())
    }
}

/// What every worker needs to reach the fleet.
struct Shared {
    vcenter: String,
    control: String,
    token: String,
    targets: Arc<Vec<Target>>,
}

/// Every host's id, name and firmware system, read as a client would (one paged retrieval).
async fn discover(url: &str) -> Result<Vec<Target>, ClientError> {
    let mut c = common::vc_login(url).await?;
    let view = returnval(
        &c.call(
            &MoRef::new("ViewManager", "ViewManager"),
            "CreateContainerView",
            "<container type=\"Folder\">group-d1</container><type>HostSystem</type><recursive>true</recursive>",
        )
        .await?,
    )?;
    let view = as_moref(&view)?;
    let spec = format!(
        "<specSet>{}</specSet><options><maxObjects>1000</maxObjects></options>",
        view_spec(&view, &["name", "configManager.firmwareSystem"])
    );
    let mut r = returnval(&c.call(&pc(), "RetrievePropertiesEx", &spec).await?)?;
    let mut out = Vec::new();
    loop {
        for o in r.all("objects") {
            let host = as_moref(
                o.child("obj")
                    .ok_or_else(|| ClientError::Protocol("ObjectContent without obj".into()))?,
            )?;
            let (mut name, mut firmware) = (None, None);
            for p in o.all("propSet") {
                match (p.child_text("name"), p.child("val")) {
                    (Some("name"), Some(v)) => name = Some(v.text.trim().to_string()),
                    (Some("configManager.firmwareSystem"), Some(v)) => {
                        firmware = Some(as_moref(v)?)
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(firmware)) = (name, firmware) else {
                return Err(ClientError::Protocol(format!(
                    "{} lacks name or configManager.firmwareSystem",
                    host.id
                )));
            };
            out.push(Target {
                index: out.len(),
                host,
                firmware,
                name,
            });
        }
        let Some(token) = r.child_text("token").map(str::to_string) else {
            break;
        };
        r = returnval(
            &c.call(
                &pc(),
                "ContinueRetrievePropertiesEx",
                &format!("<token>{token}</token>"),
            )
            .await?,
        )?;
    }
    c.call(&view, "DestroyView", "").await?;
    c.logout().await?;
    Ok(out)
}

/// Backs every host up DOWNLOADS_KEPT times (downloading the first round), so that every
/// host's bundle cap is full and every host has made its TLS certificate.
async fn prefill(shared: &Shared, clients: usize, seed: u64) -> Arc<Stats> {
    let stats = Arc::new(Stats::default());
    let n = shared.targets.len();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for id in 0..clients {
        let mut w = Worker::new(id, seed ^ 0x5eed, shared, stats.clone());
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n * DOWNLOADS_KEPT {
                    break;
                }
                if w.vc.is_none() && w.login().await.is_err() {
                    continue;
                }
                if w.backup(k % n, k < n).await.is_err() {
                    w.logout().await;
                }
            }
            w.logout().await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    stats
}

/// The fleet event log's newest `seq` (`GET /v1/fleet`), which counts what the log holds up to
/// its 100,000-event cap.
async fn fleet_events(ctl: &mut Client, token: &str) -> Option<u64> {
    let r = ctl
        .http(
            hyper::Method::GET,
            "/v1/fleet",
            &[("authorization", format!("Bearer {token}"))],
            Vec::new(),
        )
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["events"].as_u64()
}

fn errors_text(now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = now
        .iter()
        .filter_map(|(k, n)| {
            let d = n - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| format!("{k} ×{d}"))
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn print_errors(stats: &Stats) {
    let e = stats.errors.lock().unwrap_or_else(|e| e.into_inner());
    if e.is_empty() {
        println!("errors: none");
        return;
    }
    println!("errors by kind (count, first message):");
    for (k, (n, first)) in e.iter() {
        println!(
            "  {k}: {n}  e.g. {}",
            first.chars().take(200).collect::<String>()
        );
    }
}

fn main() {
    let args = Args::parse();
    let bin = common::bin();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    common::stop_children_on_signal(&rt);
    println!(
        "soak: {} hosts (half 6.7U3, half 8.0U3) behind a vCenter, {} clients, {} min, clock speed {}, seed {}",
        args.hosts, args.clients, args.minutes, args.clock_speed, args.seed
    );
    let mut sim = common::start(&bin, args.hosts, &args.addresses, &args.clock_speed);
    let pid = sim.child.id();
    println!(
        "ready in {:.0} ms, RSS {:.1} MiB",
        sim.started_ms,
        mib(rss_kib(pid, "VmRSS:"))
    );
    let targets = rt
        .block_on(discover(&sim.vcenter))
        .unwrap_or_else(|e| panic!("reading the inventory: {e}"));
    assert_eq!(targets.len(), args.hosts, "every host listed");
    println!(
        "inventory: {} hosts, e.g. {} at {} with {}",
        targets.len(),
        targets[0].host.id,
        targets[0].name,
        targets[0].firmware.id
    );
    let shared = Shared {
        vcenter: sim.vcenter.clone(),
        control: sim.control.clone(),
        token: sim.token.clone(),
        targets: Arc::new(targets),
    };

    if !args.no_prefill {
        let t = Instant::now();
        let stats = rt.block_on(prefill(&shared, args.clients, args.seed));
        let s = stats.snapshot();
        println!(
            "prefill: every host backed up {DOWNLOADS_KEPT} times ({} backups, {} downloads of {:.1} MiB, {} calls) in {:.1} s; RSS {:.1} MiB",
            s.backups,
            s.downloads,
            s.download_bytes as f64 / 1048576.0,
            s.calls,
            t.elapsed().as_secs_f64(),
            mib(rss_kib(pid, "VmRSS:"))
        );
        print_errors(&stats);
        if s.downloads > 0 {
            // What the caps hold at most: bundles of this mix's average size, 16 a host.
            let avg = s.download_bytes as f64 / s.downloads as f64;
            println!(
                "  the download caps hold about {:.0} MiB ({:.1} KiB a bundle on average × {DOWNLOADS_KEPT} × {} hosts)",
                avg * (DOWNLOADS_KEPT * args.hosts) as f64 / 1048576.0,
                avg / 1024.0,
                args.hosts
            );
        }
    }

    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    // RSS in KiB from the end of the first minute on: the samples judged.
    let mut samples: Vec<u64> = Vec::new();
    let mut died = None;
    rt.block_on(async {
        let mut workers = Vec::new();
        for id in 0..args.clients {
            let mut w = Worker::new(id, args.seed, &shared, stats.clone());
            let stop = stop.clone();
            workers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    w.one().await;
                }
                w.logout().await;
            }));
        }
        let mut ctl = Client::new(&shared.control, Trust::Any).expect("control URL");
        let t0 = tokio::time::Instant::now();
        let mut before = stats.snapshot();
        println!(
            "{:>5} {:>9} {:>9} {:>8} {:>9} {:>9} {:>7} {:>8}  errors",
            "min", "RSS MiB", "calls", "backups", "downloads", "MiB down", "logins", "events"
        );
        let every = args.sample_secs.max(1);
        for k in 0..=(args.minutes * 60 / every) {
            let at = every * k;
            tokio::time::sleep_until(t0 + Duration::from_secs(at)).await;
            if let Ok(Some(status)) = sim.child.try_wait() {
                died = Some(status);
                break;
            }
            let rss = rss_kib(pid, "VmRSS:");
            // The first minute is the warm-up: judged are the samples from its end on.
            if at >= 60 {
                samples.push(rss);
            }
            let now = stats.snapshot();
            let events = fleet_events(&mut ctl, &shared.token)
                .await
                .map_or("?".into(), |e| e.to_string());
            println!(
                "{:>5} {:>9.1} {:>9} {:>8} {:>9} {:>9.1} {:>7} {:>8}  {}",
                if at % 60 == 0 {
                    format!("{}", at / 60)
                } else {
                    format!("{:.2}", at as f64 / 60.0)
                },
                mib(rss),
                now.calls - before.calls,
                now.backups - before.backups,
                now.downloads - before.downloads,
                (now.download_bytes - before.download_bytes) as f64 / 1048576.0,
                now.logins - before.logins,
                events,
                errors_text(&now.errors, &before.errors)
            );
            before = now;
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.await;
        }
    });

    let l = |n: &AtomicU64| n.load(Ordering::Relaxed);
    println!(
        "totals: {} calls, {} backups, {} downloads ({:.1} MiB), {} logins, {} logouts, {} full inventories, {} abandoned after one page, {} filters waited on, {} host reads, {} control writes",
        l(&stats.calls),
        l(&stats.backups),
        l(&stats.downloads),
        l(&stats.download_bytes) as f64 / 1048576.0,
        l(&stats.logins),
        l(&stats.logouts),
        l(&stats.retrievals),
        l(&stats.abandoned),
        l(&stats.waits),
        l(&stats.host_reads),
        l(&stats.control)
    );
    print_errors(&stats);
    let code = verdict(&samples, died, pid);
    println!(
        "reproduce: cargo build --release --bin esxi-sim && cargo run --release -p esxi-harness --example soak_bench -- --minutes {} --hosts {}",
        args.minutes, args.hosts
    );
    // Stop the server before exiting: process::exit runs no destructors.
    drop(sim);
    std::process::exit(code);
}

/// Prints the verdict; the exit code: 0 flat (or nothing to judge), 1 not flat, 2 the server
/// died.
fn verdict(samples: &[u64], died: Option<std::process::ExitStatus>, pid: u32) -> i32 {
    if let Some(status) = died {
        println!("FAIL: esxi-sim exited during the soak ({status})");
        return 2;
    }
    println!("RSS peak (VmHWM) {:.1} MiB", mib(rss_kib(pid, "VmHWM:")));
    let judged = samples;
    let (Some(lo), Some(hi)) = (judged.iter().min(), judged.iter().max()) else {
        // `--minutes 0` is a smoke run (start, prefill, one sample): nothing to judge.
        println!("no samples after the first minute: no verdict");
        return 0;
    };
    let ratio = *hi as f64 / *lo as f64;
    let pass = ratio <= FLAT;
    println!(
        "RSS over {} samples from minute 1 on: min {:.1} MiB, max {:.1} MiB, max/min {ratio:.3}: flat within 10%: {}{}",
        judged.len(),
        mib(*lo),
        mib(*hi),
        if pass { "PASS" } else { "FAIL" },
        if judged.len() < 2 { " (one sample: trivially flat)" } else { "" }
    );
    if pass {
        0
    } else {
        1
    }
}
