//! Fleet benchmarks (issue 6), run by `ci/bench fleet`. Starts the real `esxi-sim` binary in
//! vcenter mode and measures, with this crate's SOAP client:
//!
//! - startup: wall time from spawn to the `ready:` line, and RSS once ready;
//! - inventory: RetrievePropertiesEx of name, runtime and config.product over every host
//!   through a container view, paged (`maxObjects` 1000), median of 5 rounds;
//! - estate backup: BackupFirmwareConfiguration through the vCenter plus the download from each
//!   host's own endpoint, for the first 2,500 hosts with 32 concurrent clients;
//! - 30 virtual days of the persistence schedule with 1% of hosts changing a file each hour,
//!   driven through the control API (the writes over HTTP, then `clock/advance 1h`);
//! - RSS after all that (VmHWM: the peak).
//!
//! Side by side, in the same run, govmomi's vcsim as a vCenter with as many hosts (`vcsim -host
//! N -standalone-host 0 -vm 0`) for what it can do: start to its ready line and to the first
//! login, RSS when ready, every host's name and connectionState through a container view with
//! maxObjects 100 and 1000 (five rounds interleaved with esxi-sim's, medians), RSS after; then
//! the ratios. It has
//! no HostFirmwareSystem, so backups and the 30 days are esxi-sim's alone. `VCSIM` names it
//! (default `../shared/tools/vcsim`, then `/work/shared/tools/vcsim`); without it the bench says
//! so and goes on. `VCSIM_MAX_HOSTS` (default 2000) skips it for bigger fleets: it builds a
//! host in ~4 ms and ~130 KiB, so 10,000 would take minutes and over a GiB.
//!
//! Usage: `cargo run --release -p esxi-harness --example fleet_bench -- [HOSTS...]`
//! (default 1000 10000). `ESXI_SIM_BIN` picks the binary (default target/release/esxi-sim).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{median, mib, rss_kib, start, vc_login, VC_PASSWORD, VC_USER};
use esxi_harness::client::{as_moref, returnval, Client, ClientError, Trust};
use esxi_sim::api::MoRef;

const CLIENTS: usize = 32;
const BACKUP_HOSTS: usize = 2500;
/// Interleaved inventory rounds against each server.
const ROUNDS: usize = 5;
/// `maxObjects` of the side-by-side inventories: 1,000 hosts in ten pages, and in one. vcsim
/// (0.24) ignores maxObjects and answers everything at once, so the second is like for like.
const PAGES: [usize; 2] = [100, 1000];

/// The peer: govmomi's vcsim as a vCenter.
struct Peer {
    child: Child,
    /// The SDK URL without the credentials vcsim puts in it.
    url: String,
    ready_ms: f64,
    /// Its certificate and key (removed with it).
    _tls: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        common::stop(&mut self.child);
    }
}

/// Where vcsim is: `VCSIM`, else the shared tools next to the repository. Err says where it
/// looked.
fn vcsim_path() -> Result<String, String> {
    let tried: Vec<String> = match std::env::var("VCSIM") {
        Ok(p) if !p.is_empty() => vec![p],
        _ => vec![
            "../shared/tools/vcsim".into(),
            "/work/shared/tools/vcsim".into(),
        ],
    };
    tried
        .iter()
        .find(|p| Path::new(p).is_file())
        .cloned()
        .ok_or_else(|| tried.join(", "))
}

/// `vcsim -host N -standalone-host 0 -vm 0`: one cluster of exactly N hosts, no VMs, the same
/// credentials as esxi-sim's vCenter (vcsim takes any by default). Ready when it prints its
/// `GOVC_URL`, which it does once listening. Its built-in certificate has a 1024-bit RSA key,
/// which rustls refuses whatever the verifier says, so it gets a P-256 one of ours.
fn start_vcsim(path: &str, hosts: usize) -> Result<Peer, String> {
    let tls = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (cert, key) = esxi_sim::server::tls::self_signed(
        &["localhost".into()],
        &[std::net::Ipv4Addr::LOCALHOST.into()],
    )?;
    let (cert_path, key_path) = (tls.path().join("cert.pem"), tls.path().join("key.pem"));
    std::fs::write(&cert_path, cert).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, key).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let mut child = Command::new(path)
        .args([
            "-host",
            &hosts.to_string(),
            "-standalone-host",
            "0",
            "-vm",
            "0",
            "-l",
            "127.0.0.1:0",
            "-username",
            VC_USER,
            "-password",
            VC_PASSWORD,
        ])
        .arg("-tlscert")
        .arg(&cert_path)
        .arg("-tlskey")
        .arg(&key_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {path}: {e}"))?;
    common::adopt(&child);
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    let url = loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            common::stop(&mut child);
            return Err(format!("{path} exited before printing GOVC_URL"));
        }
        // `export GOVC_URL=https://user:pass@127.0.0.1:PORT/sdk GOVC_SIM_PID=...`
        if let Some(u) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("GOVC_URL="))
        {
            let (scheme, rest) = u.split_once("://").unwrap_or(("https", u));
            let hostpart = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            break format!("{scheme}://{hostpart}");
        }
    };
    let ready_ms = t0.elapsed().as_secs_f64() * 1000.0;
    std::thread::spawn(move || for _ in out.lines() {});
    Ok(Peer {
        child,
        url,
        ready_ms,
        _tls: tls,
    })
}

/// The objects an inventory script starts from, as the service content names them (the ids
/// differ between the two servers only in principle: both say group-d1 and ViewManager).
struct Sdk {
    root: MoRef,
    views: MoRef,
    pc: MoRef,
}

/// Logs in as a client does (service content, then its SessionManager); returns the client and
/// the service content's objects.
async fn login_as_client(url: &str) -> Result<(Client, Sdk), ClientError> {
    let mut c = Client::new(url, Trust::Any)?;
    let sc = c.service_content().await?;
    let get = |name: &str| {
        sc.child(name)
            .ok_or_else(|| ClientError::Protocol(format!("no {name} in the service content")))
            .and_then(as_moref)
    };
    let sdk = Sdk {
        root: get("rootFolder")?,
        views: get("viewManager")?,
        pc: get("propertyCollector")?,
    };
    c.login(VC_USER, VC_PASSWORD).await?;
    Ok((c, sdk))
}

/// Every host's name and runtime.connectionState through a container view of the root folder,
/// in pages of `page`; returns the hosts listed and the pages they came in. What both servers can
/// answer.
async fn names_and_states(
    c: &mut Client,
    sdk: &Sdk,
    page: usize,
) -> Result<(usize, usize), ClientError> {
    let view = as_moref(&returnval(
        &c.call(
            &sdk.views,
            "CreateContainerView",
            &format!(
                "<container type=\"Folder\">{}</container><type>HostSystem</type><recursive>true</recursive>",
                sdk.root.id
            ),
        )
        .await?,
    )?)?;
    let spec = format!(
        "<specSet><propSet><type>HostSystem</type><pathSet>name</pathSet><pathSet>runtime.connectionState</pathSet></propSet>\
         <objectSet><obj type=\"ContainerView\">{}</obj><skip>true</skip><selectSet xsi:type=\"TraversalSpec\">\
         <name>v</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet>\
         <options><maxObjects>{page}</maxObjects></options>",
        view.id
    );
    let mut r = c.call(&sdk.pc, "RetrievePropertiesEx", &spec).await?;
    let (mut n, mut pages) = (0, 0);
    while let Some(res) = r.child("returnval") {
        n += res.all("objects").count();
        pages += 1;
        let Some(token) = res.child_text("token").map(str::to_string) else {
            break;
        };
        r = c
            .call(
                &sdk.pc,
                "ContinueRetrievePropertiesEx",
                &format!("<token>{token}</token>"),
            )
            .await?;
    }
    c.call(&view, "DestroyView", "").await?;
    Ok((n, pages))
}

/// A figure of each and their ratio (esxi-sim / vcsim).
fn row(what: &str, ours: f64, theirs: Option<f64>, unit: &str) {
    match theirs {
        Some(v) => println!(
            "  {what:<66} {ours:>10.1} {unit:<3} {v:>10.1} {unit:<3} {:>8.3}×",
            ours / v
        ),
        None => println!("  {what:<66} {ours:>10.1} {unit:<3} {:>14} {:>9}", "-", "-"),
    }
}

/// esxi-sim's figures, and vcsim's where it got that far.
#[derive(Default)]
struct Side {
    ready_ms: f64,
    login_ms: f64,
    rss_ready: u64,
    /// Per entry of PAGES.
    inventory_ms: [f64; 2],
    rss_after: u64,
}

/// Every host's name, runtime and product, paged; returns how many hosts came back.
async fn inventory(c: &mut Client) -> Result<usize, ClientError> {
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
        "<specSet><propSet><type>HostSystem</type><pathSet>name</pathSet><pathSet>runtime</pathSet>\
         <pathSet>config.product</pathSet></propSet><objectSet><obj type=\"ContainerView\">{}</obj>\
         <skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>v</name><type>ContainerView</type>\
         <path>view</path><skip>false</skip></selectSet></objectSet></specSet>\
         <options><maxObjects>1000</maxObjects></options>",
        view.id
    );
    let pc = MoRef::new("PropertyCollector", "propertyCollector");
    let mut r = returnval(&c.call(&pc, "RetrievePropertiesEx", &spec).await?)?;
    let mut n = 0;
    loop {
        n += r.all("objects").count();
        let Some(token) = r.child_text("token").map(str::to_string) else {
            break;
        };
        r = returnval(
            &c.call(
                &pc,
                "ContinueRetrievePropertiesEx",
                &format!("<token>{token}</token>"),
            )
            .await?,
        )?;
    }
    c.call(&view, "DestroyView", "").await?;
    Ok(n)
}

/// Backs up hosts `0..count` with `clients` workers; returns the bytes downloaded.
async fn backup_estate(url: &str, count: usize, clients: usize) -> Result<usize, ClientError> {
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let bytes = bytes.clone();
        let url = url.to_string();
        workers.push(tokio::spawn(async move {
            let mut vc = vc_login(&url).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), ClientError>(());
                }
                let n = 12 + i;
                let fw = MoRef::new("HostFirmwareSystem", format!("firmwareSystem-{n}"));
                let r = vc.call(&fw, "BackupFirmwareConfiguration", "").await?;
                let link = returnval(&r)?.text.trim().to_string();
                // The host's name in vCenter is its address (hosts count up from 127.2.0.1).
                let addr = std::net::Ipv4Addr::from(
                    u32::from(std::net::Ipv4Addr::new(127, 2, 0, 1)) + i as u32,
                );
                let full = link.replace('*', &addr.to_string());
                let mut host = Client::new(&full, Trust::Any)?;
                let resp = host.get(&Client::path_of(&full)).await?;
                if !resp.status.is_success() {
                    return Err(ClientError::Io(format!("{full}: HTTP {}", resp.status)));
                }
                bytes.fetch_add(resp.body.len(), Ordering::Relaxed);
            }
        }));
    }
    for w in workers {
        w.await.map_err(|e| ClientError::Io(e.to_string()))??;
    }
    Ok(bytes.load(Ordering::Relaxed))
}

/// 30 days, hour by hour: 1% of hosts (seeded choice) get a new /etc/hosts, then the clock
/// moves an hour and every save due runs. Returns the saves the fleet logged.
async fn thirty_days(
    control: &str,
    token: &str,
    hosts: usize,
) -> Result<(usize, f64, f64), ClientError> {
    use hyper::Method;
    let auth = ("authorization", format!("Bearer {token}"));
    let file_headers = [
        auth.clone(),
        ("content-type", "application/octet-stream".to_string()),
    ];
    let json_headers = [
        auth.clone(),
        ("content-type", "application/json".to_string()),
    ];
    let per_hour = (hosts / 100).max(1);
    let mut rng = esxi_sim::rng::Rng::new(42);
    let mut writers: Vec<Client> = (0..8)
        .map(|_| Client::new(control, Trust::Any))
        .collect::<Result<_, _>>()?;
    let mut ctl = Client::new(control, Trust::Any)?;
    let saves_before = count_saves(&mut ctl, &auth).await?;
    let (mut writing, mut advancing) = (0.0, 0.0);
    for hour in 0..30 * 24 {
        let t = Instant::now();
        let picks: Vec<usize> = (0..per_hour)
            .map(|_| rng.below(hosts as u64) as usize)
            .collect();
        let mut jobs = Vec::new();
        for (w, chunk) in writers.drain(..).zip(
            picks
                .chunks(per_hour.div_ceil(8))
                .chain(std::iter::repeat(&[][..])),
        ) {
            let chunk = chunk.to_vec();
            let headers = file_headers.clone();
            jobs.push(tokio::spawn(async move {
                let mut w = w;
                for i in chunk {
                    let body = format!(
                        "127.0.0.1 localhost\n10.{}.{}.{} nas-{hour}\n",
                        hour % 250,
                        i % 250,
                        i / 250 % 250
                    );
                    let r = w
                        .http(
                            Method::PUT,
                            &format!("/v1/hosts/{i}/files/etc/hosts"),
                            &headers,
                            body.into_bytes(),
                        )
                        .await?;
                    if !r.status.is_success() {
                        return Err(ClientError::Io(format!(
                            "write on host {i}: HTTP {}",
                            r.status
                        )));
                    }
                }
                Ok::<Client, ClientError>(w)
            }));
        }
        for j in jobs {
            writers.push(j.await.map_err(|e| ClientError::Io(e.to_string()))??);
        }
        writing += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r = ctl
            .http(
                Method::POST,
                "/v1/clock/advance",
                &json_headers,
                br#"{"by":"1h"}"#.to_vec(),
            )
            .await?;
        if !r.status.is_success() {
            return Err(ClientError::Io(format!("advance: HTTP {}", r.status)));
        }
        advancing += t.elapsed().as_secs_f64();
    }
    Ok((
        count_saves(&mut ctl, &auth).await? - saves_before,
        writing,
        advancing,
    ))
}

/// State saves so far, from the host list's boot-bank counters (every save rewrites state.tgz).
async fn count_saves(ctl: &mut Client, auth: &(&str, String)) -> Result<usize, ClientError> {
    let r = ctl
        .http(
            hyper::Method::GET,
            "/v1/hosts",
            std::slice::from_ref(auth),
            Vec::new(),
        )
        .await?;
    let hosts: serde_json::Value =
        serde_json::from_slice(&r.body).map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(hosts
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| h["state_saves"].as_u64().unwrap_or(0) as usize)
                .sum()
        })
        .unwrap_or(0))
}

fn main() {
    let sizes: Vec<usize> = {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() {
            vec![1000, 10_000]
        } else {
            args
        }
    };
    let bin = common::bin();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    common::stop_children_on_signal(&rt);
    let vcsim = vcsim_path();
    let vcsim_max: usize = std::env::var("VCSIM_MAX_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for hosts in sizes {
        // Virtual time moves only when the bench says so (clock speed 0).
        let sim = start(&bin, hosts, "127.2.0.1", "0");
        let pid = sim.child.id();
        let url = sim.vcenter.clone();
        let t = Instant::now();
        let (mut ours, sdk) = rt.block_on(login_as_client(&url)).expect("vCenter login");
        let mut us = Side {
            ready_ms: sim.started_ms,
            login_ms: sim.started_ms + t.elapsed().as_secs_f64() * 1000.0,
            ..Side::default()
        };
        // Let the first tick pass so RSS is that of a settled fleet.
        std::thread::sleep(Duration::from_millis(700));
        us.rss_ready = rss_kib(pid, "VmRSS:");
        println!(
            "fleet {hosts:>6} hosts (vcenter mode): ready in {:7.0} ms, RSS {:6.1} MiB ({:.1} KiB/host)",
            sim.started_ms,
            us.rss_ready as f64 / 1024.0,
            us.rss_ready as f64 / hosts as f64
        );

        // The peer, started while esxi-sim idles (its clock stands still), so neither start
        // competes with the other.
        let mut peer = match &vcsim {
            Err(tried) => {
                println!("fleet {hosts:>6} hosts: peer vcsim not found (looked at {tried}): esxi-sim only");
                None
            }
            Ok(_) if hosts > vcsim_max => {
                println!(
                    "fleet {hosts:>6} hosts: peer vcsim skipped above VCSIM_MAX_HOSTS={vcsim_max}"
                );
                None
            }
            Ok(path) => match start_vcsim(path, hosts) {
                Err(e) => {
                    println!("fleet {hosts:>6} hosts: peer vcsim did not start: {e}");
                    None
                }
                Ok(p) => {
                    let t = Instant::now();
                    match rt.block_on(login_as_client(&p.url)) {
                        Ok((c, sdk)) => {
                            let mut them = Side {
                                ready_ms: p.ready_ms,
                                login_ms: p.ready_ms + t.elapsed().as_secs_f64() * 1000.0,
                                ..Side::default()
                            };
                            std::thread::sleep(Duration::from_millis(700));
                            them.rss_ready = rss_kib(p.child.id(), "VmRSS:");
                            Some((p, c, sdk, them))
                        }
                        Err(e) => {
                            println!("fleet {hosts:>6} hosts: peer vcsim: the login failed: {e}");
                            None
                        }
                    }
                }
            },
        };

        rt.block_on(async {
            // Per page size: esxi-sim's times, vcsim's (None once it failed), and the pages.
            let mut times = [Vec::new(), Vec::new()];
            let mut vc_times = [Some(Vec::new()), Some(Vec::new())];
            let (mut our_pages, mut their_pages) = ([0; 2], [0; 2]);
            for _ in 0..ROUNDS {
                for (k, page) in PAGES.into_iter().enumerate() {
                    let t = Instant::now();
                    let (n, pages) = names_and_states(&mut ours, &sdk, page)
                        .await
                        .expect("inventory");
                    assert_eq!(n, hosts, "every host listed");
                    times[k].push(t.elapsed().as_secs_f64() * 1000.0);
                    our_pages[k] = pages;
                    let (Some((_, c, sdk, _)), Some(v)) = (&mut peer, &mut vc_times[k]) else {
                        continue;
                    };
                    let t = Instant::now();
                    match names_and_states(c, sdk, page).await {
                        Ok((n, pages)) if n == hosts => {
                            v.push(t.elapsed().as_secs_f64() * 1000.0);
                            their_pages[k] = pages;
                        }
                        Ok((n, _)) => {
                            println!("fleet {hosts:>6} hosts: vcsim listed {n} hosts, not {hosts}: its inventory is not compared");
                            vc_times[k] = None;
                        }
                        Err(e) => {
                            println!("fleet {hosts:>6} hosts: vcsim inventory failed: {e}");
                            vc_times[k] = None;
                        }
                    }
                }
            }
            us.rss_after = rss_kib(pid, "VmRSS:");
            for (ms, t) in us.inventory_ms.iter_mut().zip(times) {
                *ms = median(t);
            }
            let them = peer.as_mut().map(|(p, _, _, them)| {
                for (ms, v) in them.inventory_ms.iter_mut().zip(&vc_times) {
                    if let Some(v) = v.clone().filter(|v| !v.is_empty()) {
                        *ms = median(v);
                    }
                }
                them.rss_after = rss_kib(p.child.id(), "VmRSS:");
                &*them
            });
            match &them {
                Some(_) => println!(
                    "fleet {hosts:>6} hosts, side by side with vcsim -host {hosts} -standalone-host 0 -vm 0 (same run):\n  {:<66} {:>14} {:>14} {:>9}",
                    "", "esxi-sim", "vcsim", "esxi/vcsim"
                ),
                None => println!("fleet {hosts:>6} hosts, esxi-sim alone:"),
            }
            let f = |g: &dyn Fn(&Side) -> f64| them.map(g).filter(|v| *v > 0.0);
            row("start to ready", us.ready_ms, f(&|s| s.ready_ms), "ms");
            row("start to the first login", us.login_ms, f(&|s| s.login_ms), "ms");
            row("RSS when ready", mib(us.rss_ready), f(&|s| mib(s.rss_ready)), "MiB");
            for (k, page) in PAGES.into_iter().enumerate() {
                let pages = match their_pages[k] {
                    0 => format!("{} pages", our_pages[k]),
                    p => format!("{} / {p} pages", our_pages[k]),
                };
                row(
                    &format!("name + connectionState of all, maxObjects {page} ({pages}), median"),
                    us.inventory_ms[k],
                    f(&|s| s.inventory_ms[k]),
                    "ms",
                );
            }
            row("RSS after the inventories", mib(us.rss_after), f(&|s| mib(s.rss_after)), "MiB");
        });
        // The peer goes before the esxi-sim-only figures so that it takes no memory or CPU from them.
        drop(peer);

        rt.block_on(async {
            let mut c = vc_login(&url).await.expect("vCenter login");
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                let n = inventory(&mut c).await.expect("inventory");
                assert_eq!(n, hosts, "every host listed");
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            println!(
                "fleet {hosts:>6} hosts: inventory (name, runtime, config.product; pages of 1000): median {:7.1} ms ({:.0} hosts/s)",
                median(times.clone()),
                hosts as f64 / (median(times) / 1000.0)
            );
            let count = hosts.min(BACKUP_HOSTS);
            let t = Instant::now();
            let bytes = backup_estate(&url, count, CLIENTS).await.expect("estate backup");
            let secs = t.elapsed().as_secs_f64();
            println!(
                "fleet {hosts:>6} hosts: back up {count} hosts through vCenter + download, {CLIENTS} clients: {secs:6.2} s ({:.0} hosts/s, {:.1} MiB)",
                count as f64 / secs,
                bytes as f64 / 1048576.0
            );
        });
        let control = sim.control.clone();
        let token = sim.token.clone();
        rt.block_on(async {
            let t = Instant::now();
            let (saves, writing, advancing) = thirty_days(&control, &token, hosts).await.expect("30 days");
            println!(
                "fleet {hosts:>6} hosts: 30 virtual days, 1% of hosts changing per hour (through the control API): {:6.2} s ({writing:.2} s writing files, {advancing:.2} s advancing the clock), {saves} saves",
                t.elapsed().as_secs_f64()
            );
        });
        println!(
            "fleet {hosts:>6} hosts: RSS now {:6.1} MiB, peak {:6.1} MiB",
            rss_kib(pid, "VmRSS:") as f64 / 1024.0,
            rss_kib(pid, "VmHWM:") as f64 / 1024.0
        );
        drop(sim);
    }
    println!("reproduce: cargo build --release --bin esxi-sim && cargo run --release -p esxi-harness --example fleet_bench -- 1000 10000");
}
