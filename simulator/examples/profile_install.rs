//! Profiling aid: installs N 8.0U3 hosts with a fleet's shared root hash, then saves each once.
use esxi_sim::host::shared_root_hash;
use esxi_sim::{HostConfig, Profile};
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(500);
    let p = Profile::named(&std::env::args().nth(2).unwrap_or("8.0U3".into())).unwrap();
    let hash = shared_root_hash("VMware1!", 1);
    let mat = std::sync::Arc::new(([1u8; 16], [2u8; 16]));
    let t = std::time::Instant::now();
    let mut hosts: Vec<_> = (0..n)
        .map(|i| {
            HostConfig::new(p.clone())
                .seed(i)
                .root_hash(hash.clone())
                .none_material(mat.clone())
                .build()
                .unwrap()
        })
        .collect();
    println!(
        "install: {:?} per host, {} bytes deflated per host",
        t.elapsed() / n as u32,
        esxi_sim::deflate::deflated_bytes() / n
    );
    if let Some(a) = hosts[1].bootbank().unwrap().saved_archive() {
        for m in &a.local.members {
            let c: usize = m.chunks.iter().map(|c| c.deflated.len()).sum();
            let own = m
                .chunks
                .iter()
                .filter(|c| std::sync::Arc::strong_count(c) <= 2)
                .count();
            println!(
                "  {:<55} {:>7} -> {:>6} ({} pieces, {own} own)",
                m.path,
                m.len,
                c,
                m.chunks.len()
            );
        }
        println!("  local.tgz {} state.tgz {}", a.local.len(), a.len());
    }
    let t = std::time::Instant::now();
    let d0 = esxi_sim::deflate::deflated_bytes();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    for r in 0..rounds {
        for (i, h) in hosts.iter_mut().enumerate() {
            h.write_file("/etc/hosts", format!("10.0.{r}.{} x\n", i % 250))
                .unwrap();
            h.backup_sh(esxi_sim::host::SaveTrigger::Sync).unwrap();
        }
    }
    let saves = n as u32 * rounds as u32;
    println!(
        "save: {:?} per save, {} bytes deflated per save",
        t.elapsed() / saves,
        (esxi_sim::deflate::deflated_bytes() - d0) / saves as u64
    );
}
#[allow(dead_code)]
fn sizes() {}
