//! Benchmarks of the host model (issue 3). Run by `ci/bench`; prints figures and the command to
//! reproduce them. `ESXI_BENCH_SMOKE=1` runs tiny sizes so `ci/test` can check the binary works.
//!
//! Figures are per build where they differ: 6.7U3 (plain local.tgz) and 8.0U3 (ConfigStore,
//! encrypted state, NONE mode); the multi-host figures are half one, half the other.
//!
//! - memory per idle host beyond the shared image (a counting global allocator);
//! - host creation (install + first save), with its own crypt and key derivation and with a
//!   fleet's shared root password hash and key store material, and backup bundle creation,
//!   medians;
//! - one save (`backup.sh` after a changed file), median;
//! - one auto-backup run on an unchanged host, mean;
//! - 30 virtual days of a 10-minute schedule for 1,000 hosts, idle and with daily changes;
//! - the fleet case: 30 virtual days of a 10-minute schedule for 10,000 hosts with 1% of the
//!   hosts changing one file every hour (about 72,000 saves).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use esxi_sim::clock::SimTime;
use esxi_sim::fleet::shared_none_material;
use esxi_sim::host::{shared_root_hash, SaveTrigger};
use esxi_sim::keystore::{derive_none_key, SharedNoneMaterial};
use esxi_sim::profile::{Profile, Schedule};
use esxi_sim::rng::Rng;
use esxi_sim::{Host, HostConfig};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The builds in the figures: the 6.x model (plain local.tgz) and an encrypted 7.0 U2+ one
/// (ConfigStore, local.tgz.ve, NONE-mode key store).
const PLAIN: &str = "6.7U3";
const SEALED: &str = "8.0U3";

fn mk(profile: &str, seed: u64) -> Host {
    HostConfig::new(Profile::named(profile).unwrap())
        .seed(seed)
        .schedule(Schedule::EveryMinutes(10))
        .build()
        .unwrap()
}

/// What a fleet shares: the root password hash, and the NONE-mode key store material whose
/// 100,000-round key is derived once (each host keeps its own key id).
struct Shared {
    hash: Arc<str>,
    none: SharedNoneMaterial,
}

impl Shared {
    fn new(seed: u64) -> Shared {
        let none = shared_none_material(seed);
        derive_none_key(&none.0, &none.1);
        Shared {
            hash: shared_root_hash(esxi_sim::host::DEFAULT_ROOT_PASSWORD, seed),
            none,
        }
    }
}

/// A fleet's host.
fn mk_shared(profile: &str, seed: u64, s: &Shared) -> Host {
    HostConfig::new(Profile::named(profile).unwrap())
        .seed(seed)
        .schedule(Schedule::EveryMinutes(10))
        .root_hash(s.hash.clone())
        .none_material(s.none.clone())
        .build()
        .unwrap()
}

/// Half the fleet on each build, alternating.
fn half_and_half(i: u64) -> &'static str {
    if i % 2 == 0 {
        PLAIN
    } else {
        SEALED
    }
}

fn main() {
    let smoke = std::env::var_os("ESXI_BENCH_SMOKE").is_some();
    let (n_hosts, reps) = if smoke { (20, 3) } else { (1000, 5) };
    println!(
        "esxi-sim model benchmarks ({} mode)",
        if smoke { "smoke" } else { "full" }
    );
    println!("reproduce: cargo bench -p esxi-sim --bench model\n");
    let shared = Shared::new(1);

    // Memory: build one host first so the shared image and catalogue are already allocated.
    for profile in [PLAIN, SEALED] {
        let warm = mk_shared(profile, 0, &shared);
        let image = warm.etc().image().heap_bytes();
        let base = LIVE.load(Ordering::Relaxed);
        let hosts: Vec<Host> = (1..=n_hosts as u64)
            .map(|i| mk_shared(profile, i, &shared))
            .collect();
        let per_host = (LIVE.load(Ordering::Relaxed) - base) as f64 / n_hosts as f64;
        let estimate: usize = hosts.iter().map(Host::owned_bytes).sum::<usize>() / n_hosts;
        println!("{profile}: memory per idle host: {:>8.1} KiB measured (allocator), {:.1} KiB by owned_bytes(); shared image {:.1} KiB (goal < 64 KiB)",
            per_host / 1024.0, estimate as f64 / 1024.0, image as f64 / 1024.0);
        println!(
            "{profile}:   state.tgz of an idle host: {} bytes",
            hosts[0].bootbank().unwrap().state_len().unwrap()
        );
    }

    // Creation: install, first boot fixups, the root password's crypt (own or shared), the
    // key store (7.0 U2+), first save.
    let create: Vec<Duration> = (0..reps * 20)
        .map(|i| {
            let t = Instant::now();
            let h = mk(SEALED, 10_000 + i as u64);
            let d = t.elapsed();
            drop(h);
            d
        })
        .collect();
    println!(
        "{SEALED}: host creation, own crypt and key derivation: {:>8.1} µs median",
        median(create).as_secs_f64() * 1e6
    );
    for profile in [PLAIN, SEALED] {
        let create: Vec<Duration> = (0..reps * 200)
            .map(|i| {
                let t = Instant::now();
                let h = mk_shared(profile, 20_000 + i as u64, &shared);
                let d = t.elapsed();
                drop(h);
                d
            })
            .collect();
        println!(
            "{profile}: host creation, shared hash and key store material: {:>8.1} µs median",
            median(create).as_secs_f64() * 1e6
        );
    }

    for profile in [PLAIN, SEALED] {
        let mut h = mk_shared(profile, 2, &shared);
        let save: Vec<Duration> = (0..reps * 200)
            .map(|i| {
                h.write_file("/etc/hosts", format!("10.0.0.{} nas\n", i % 250))
                    .unwrap();
                let t = Instant::now();
                let r = h.backup_sh(SaveTrigger::Sync).unwrap();
                let d = t.elapsed();
                assert!(r.written && r.changed == 1);
                d
            })
            .collect();
        println!(
            "{profile}: one save (backup.sh, 1 changed file): {:>8.1} µs median",
            median(save).as_secs_f64() * 1e6
        );
    }

    // One auto-backup run on an unchanged host, called directly and through advance().
    let mut h = mk_shared(SEALED, 3, &shared);
    h.advance(Duration::from_secs(600));
    let before = h.bootbank_writes();
    let ticks = if smoke { 10_000 } else { 1_000_000 };
    let t = Instant::now();
    for _ in 0..ticks {
        assert!(!std::hint::black_box(&mut h).auto_backup());
    }
    let direct = t.elapsed().as_secs_f64() * 1e9 / ticks as f64;
    let t = Instant::now();
    for _ in 0..ticks {
        std::hint::black_box(&mut h).advance(Duration::from_secs(600));
    }
    let advanced = t.elapsed().as_secs_f64() * 1e9 / ticks as f64;
    assert_eq!(h.bootbank_writes(), before);
    println!(
        "{SEALED}: auto-backup run, unchanged host: {direct:>6.1} ns (auto_backup()), {advanced:.1} ns per advance(10 min)"
    );

    for profile in [PLAIN, SEALED] {
        let mut h = mk_shared(profile, 1, &shared);
        let bundle: Vec<Duration> = (0..reps * 40)
            .map(|i| {
                h.write_file("/etc/hosts", format!("10.0.0.{} nas\n", i % 250))
                    .unwrap();
                let t = Instant::now();
                let b = h.backup_bundle().unwrap();
                let d = t.elapsed();
                assert!(b.bytes.len() > 1000);
                d
            })
            .collect();
        println!(
            "{profile}: backup bundle creation: {:>8.1} µs median (save + bundle of {} bytes)",
            median(bundle).as_secs_f64() * 1e6,
            h.backup_bundle().unwrap().bytes.len()
        );
    }

    // Virtual time: 30 days, 10-minute schedule (4,320 auto-backup runs per host).
    let days = if smoke { 2 } else { 30 };
    for (label, change_every_h) in [("idle", 0u64), ("one change per host per day", 24)] {
        let runs: Vec<(Duration, u64)> = (0..reps.min(3))
            .map(|_| {
                let mut fleet: Vec<Host> = (0..n_hosts as u64)
                    .map(|i| mk_shared(half_and_half(i), i, &shared))
                    .collect();
                let t = Instant::now();
                let mut saves = 0;
                for h in fleet.iter_mut() {
                    let before = h.bootbank_writes().state_saves;
                    if change_every_h == 0 {
                        h.advance(Duration::from_secs(days * 86_400));
                    } else {
                        for d in 0..days {
                            h.write_file("/etc/hosts", format!("day {d}\n")).unwrap();
                            h.advance(Duration::from_secs(change_every_h * 3600));
                        }
                    }
                    saves += h.bootbank_writes().state_saves - before;
                }
                (t.elapsed(), saves)
            })
            .collect();
        let saves = runs[0].1;
        let med = median(runs.into_iter().map(|r| r.0).collect());
        println!("{days} virtual days x {n_hosts} hosts, half {SEALED} ({label}): {:>8.3} s median, {} auto-backup runs due, {} saves (goal < 2 s for 1,000 idle)",
            med.as_secs_f64(), n_hosts as u64 * days * 144, saves);
    }

    fleet_one_percent_per_hour(smoke, &shared);
}

/// 30 virtual days × N hosts on a 10-minute schedule; every virtual hour 1% of the hosts (drawn
/// from a fixed seed) change `/etc/hosts`, then every host advances one hour. Hosts are stepped
/// hour by hour, as a fleet process interleaving them would.
fn fleet_one_percent_per_hour(smoke: bool, shared: &Shared) {
    let (n, days) = if smoke { (200u64, 2u64) } else { (10_000, 30) };
    let t = Instant::now();
    let mut fleet: Vec<Host> = (0..n)
        .map(|i| mk_shared(half_and_half(i), 1_000_000 + i, shared))
        .collect();
    let built = t.elapsed();
    let start = fleet[0].now();
    let before: u64 = fleet.iter().map(|h| h.bootbank_writes().state_saves).sum();
    let mut rng = Rng::new(99);
    let changers = (n / 100).max(1);
    let t = Instant::now();
    for hour in 0..days * 24 {
        for _ in 0..changers {
            let i = rng.below(n) as usize;
            fleet[i]
                .write_file("/etc/hosts", format!("hour {hour} host {i}\n"))
                .unwrap();
        }
        let until = SimTime(start.0 + (hour + 1) * 3_600_000);
        for h in fleet.iter_mut() {
            h.advance_to(until);
        }
    }
    let took = t.elapsed();
    let saves: u64 = fleet
        .iter()
        .map(|h| h.bootbank_writes().state_saves)
        .sum::<u64>()
        - before;
    println!(
        "{days} virtual days x {n} hosts (half {SEALED}), 1% changing per hour: {:>8.3} s, {} auto-backup runs due, {saves} saves (fleet built in {:.2} s; goal < 5 s)",
        took.as_secs_f64(),
        n * days * 144,
        built.as_secs_f64()
    );
}
