//! What the fleet and soak benchmarks share: starting the real `esxi-sim` binary as a vCenter
//! fleet, reading a process's memory, logging in to the vCenter. (A directory module, so cargo
//! does not take it for an example of its own.)

#![allow(dead_code)] // each example uses its own part

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use esxi_harness::client::{Client, ClientError, Trust};
use esxi_sim::api::MoRef;

pub const VC_USER: &str = "administrator@vsphere.local";
pub const VC_PASSWORD: &str = "Bench!pw1";

/// The binary under test: `ESXI_SIM_BIN`, else the release build.
pub fn bin() -> String {
    std::env::var("ESXI_SIM_BIN").unwrap_or_else(|_| "target/release/esxi-sim".into())
}

pub struct Sim {
    pub child: Child,
    pub vcenter: String,
    pub control: String,
    /// The control API's bearer token (`control-token:` line).
    pub token: String,
    pub started_ms: f64,
}

impl Drop for Sim {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// The servers this bench started and has not stopped yet.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn children() -> std::sync::MutexGuard<'static, Vec<u32>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a server among those to stop if the bench is interrupted.
pub fn adopt(child: &Child) {
    children().push(child.id());
}

fn sigterm(pid: u32) {
    let _ = Command::new("kill")
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// On SIGINT, SIGTERM or SIGHUP, SIGTERM every server still running and exit: a server waits for
/// a signal of its own, so it would outlive a bench killed alone (a CI job's timeout).
pub fn stop_children_on_signal(rt: &tokio::runtime::Runtime) {
    use tokio::signal::unix::{signal, SignalKind};
    rt.spawn(async {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        for pid in children().drain(..) {
            sigterm(pid);
        }
        eprintln!("interrupted: servers stopped");
        std::process::exit(130);
    });
}

/// SIGTERM first, so the server removes its control-token file as it does on Ctrl-C; SIGKILL if
/// it has not gone in a few seconds.
pub fn stop(child: &mut Child) {
    children().retain(|p| *p != child.id());
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    sigterm(child.id());
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A `/proc/PID/status` field in KiB (`VmRSS:`, `VmHWM:`); 0 when the process is gone.
pub fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `esxi-sim serve --mode vcenter` with `hosts` hosts, half 6.7U3 and half 8.0U3, host i at
/// address `first_address`+i on port 8443, the control API on a free port. Returns once the
/// `ready:` line is out.
pub fn start(bin: &str, hosts: usize, first_address: &str, clock_speed: &str) -> Sim {
    let t0 = Instant::now();
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--mode",
            "vcenter",
            "--hosts",
            &hosts.to_string(),
            "--profiles",
            &format!("6.7U3:{},8.0U3:{}", hosts / 2, hosts - hosts / 2),
            "--listen",
            "127.0.0.1:0",
            "--addresses",
            first_address,
            "--host-port",
            "8443",
            "--vcenter-password",
            VC_PASSWORD,
            "--control",
            "127.0.0.1:0",
            "--clock-speed",
            clock_speed,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    adopt(&child);
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    let mut control = String::new();
    let mut token = String::new();
    let vcenter = loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            stop(&mut child);
            panic!("esxi-sim exited before ready");
        }
        if let Some(u) = line.trim().strip_prefix("control: ") {
            control = u.to_string();
        }
        if let Some(t) = line.trim().strip_prefix("control-token: ") {
            token = t.to_string();
        }
        if let Some(u) = line.trim().strip_prefix("ready: ") {
            break u.to_string();
        }
    };
    let started_ms = t0.elapsed().as_secs_f64() * 1000.0;
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    Sim {
        child,
        vcenter,
        control,
        token,
        started_ms,
    }
}

/// A session with the vCenter's administrator (the vCenter's SessionManager id, no lookup).
pub async fn vc_login(url: &str) -> Result<Client, ClientError> {
    let mut c = Client::new(url, Trust::Any)?;
    c.api_version = "8.0".into();
    let params = format!("<userName>{VC_USER}</userName><password>{VC_PASSWORD}</password>");
    c.call(
        &MoRef::new("SessionManager", "SessionManager"),
        "Login",
        &params,
    )
    .await?;
    Ok(c)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
