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
//! Usage: `cargo run --release -p esxi-harness --example fleet_bench -- [HOSTS...]`
//! (default 1000 10000). `ESXI_SIM_BIN` picks the binary (default target/release/esxi-sim).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{median, rss_kib, start, vc_login};
use esxi_harness::client::{as_moref, returnval, Client, ClientError, Trust};
use esxi_sim::soap::MoRef;

const CLIENTS: usize = 32;
const BACKUP_HOSTS: usize = 2500;

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
    for hosts in sizes {
        // Virtual time moves only when the bench says so (clock speed 0).
        let sim = start(&bin, hosts, "127.2.0.1", "0");
        let pid = sim.child.id();
        // Let the first tick pass so RSS is that of a settled fleet.
        std::thread::sleep(Duration::from_millis(700));
        let rss_ready = rss_kib(pid, "VmRSS:");
        println!(
            "fleet {hosts:>6} hosts (vcenter mode): ready in {:7.0} ms, RSS {:6.1} MiB ({:.1} KiB/host)",
            sim.started_ms,
            rss_ready as f64 / 1024.0,
            rss_ready as f64 / hosts as f64
        );
        let url = sim.vcenter.clone();
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
