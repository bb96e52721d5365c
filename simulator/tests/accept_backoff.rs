//! Out of file descriptors (issue 12): `esxi-sim serve` under a small `ulimit -n`, its table
//! filled by idle connections, must neither spin on `accept` nor log every attempt, and must
//! accept again once descriptors are free. A real process, because the limit is per process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_with_fd_limit(limit: u32) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr");
    let script = format!(
        "ulimit -n {limit} && exec \"$0\" serve --listen 127.0.0.1:0 --profile 6.7U3 --seed 3 2>\"$1\""
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_esxi-sim"))
        .arg(&stderr)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "serve ended early");
        if let Some(u) = line.trim().strip_prefix("ready: ") {
            break u.to_string();
        }
    };
    // https://127.0.0.1:PORT/sdk
    let hostport = url.split('/').nth(2).unwrap().to_string();
    Server {
        child,
        addr: hostport.parse().unwrap(),
        stderr,
        _dir: dir,
    }
}

/// CPU seconds (user + system) the process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn warnings(s: &Server) -> usize {
    std::fs::read_to_string(&s.stderr)
        .unwrap_or_default()
        .matches("accept failed")
        .count()
}

#[test]
fn a_full_descriptor_table_backs_off_quietly_and_recovers() {
    let s = serve_with_fd_limit(64);
    // More connections than descriptors: the server's share of them fills its table.
    let mut held = Vec::new();
    for _ in 0..120 {
        match TcpStream::connect_timeout(&s.addr, Duration::from_secs(1)) {
            Ok(c) => held.push(c),
            Err(_) => break,
        }
    }
    // Let it hit the wall and settle into its back-off, then measure a quiet stretch.
    std::thread::sleep(Duration::from_secs(2));
    let first = warnings(&s);
    assert!(
        first >= 1,
        "the table never filled: no accept failure logged"
    );
    let cpu0 = cpu_seconds(s.child.id());
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let cpu = cpu_seconds(s.child.id()) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    // One warning, then silence for 30 s (a 50 ms retry logged 60 more here).
    assert_eq!(
        warnings(&s),
        first,
        "accept failures logged again within 30 s"
    );
    assert!(
        cpu / wall < 0.10,
        "{:.1}% of a core while full",
        100.0 * cpu / wall
    );

    // Free the descriptors: within the longest back-off (1 s) it accepts and answers again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answered = TcpStream::connect_timeout(&s.addr, Duration::from_secs(1))
            .ok()
            .and_then(|mut c| {
                c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
                // Not TLS: rustls answers with an alert, which proves it was accepted and read.
                c.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
                let mut buf = [0u8; 16];
                (c.read(&mut buf).ok()? > 0).then_some(())
            });
        if answered.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "never accepted again");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&s.stderr).unwrap();
    assert!(log.contains("accepting again after"), "{log}");
}
