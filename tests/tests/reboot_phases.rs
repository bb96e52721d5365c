//! A rebooting host's port, phase by phase (issue 13, `server/phases.rs`): the proxy's 503
//! while hostd stops, connections refused while the machine restarts, 503 while hostd starts,
//! then answers; a boot from power-on has no stopping phase.

mod common;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use esxi_harness::client::Client;
use esxi_sim::server::{Phase, RebootPhases};
use esxi_sim_tests::{host_with, start_with, TestServer};

/// A host whose boot takes 40 s of virtual time on a clock that stands still (the test moves
/// it): stopping [0, 5 s), down [5 s, 30 s), starting [30 s, 40 s).
async fn host() -> TestServer {
    let h = host_with("8.0U3", 91, |c| c.boot_time(Duration::from_secs(40)));
    start_with(h, |c| {
        c.clock_speed = 0.0;
        c.reboot = RebootPhases {
            stopping: Duration::from_secs(5),
            hostd_start: Duration::from_secs(10),
            refuse_while_down: true,
        };
    })
    .await
}

#[derive(Debug, PartialEq)]
enum Seen {
    Refused,
    Status(u16, String),
    /// Accepted, then closed or reset without an answer.
    NoAnswer,
}

/// What a client sees now at the host's address.
async fn probe(addr: SocketAddr, c: &mut Client) -> Seen {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Seen::Refused,
        // In the backlog of a listener being closed as the host goes down: reset. A moment of
        // the transition, not a phase; `expect` looks again.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return Seen::NoAnswer,
        Err(e) => panic!("connect: {e}"),
        Ok(_) => {}
    }
    match c.get("/sdk/vimServiceVersions.xml").await {
        Ok(r) => Seen::Status(
            r.status.as_u16(),
            String::from_utf8_lossy(&r.body).into_owned(),
        ),
        Err(_) => Seen::NoAnswer,
    }
}

/// Waits (a little wall time: the accept loop reacts to the clock's move) for `want`.
async fn expect(ts: &TestServer, want: &str) -> Seen {
    let mut last = None;
    for _ in 0..100 {
        let mut c = ts.client();
        let seen = probe(ts.addr, &mut c).await;
        let ok = match (&seen, want) {
            (Seen::Refused, "refused") => true,
            (Seen::Status(503, body), "503") => body.contains("proxy-sdk-tunnel"),
            (Seen::Status(200, _), "200") => true,
            _ => false,
        };
        if ok {
            return seen;
        }
        last = Some(seen);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {want}, saw {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_goes_through_stopping_down_and_starting() {
    let ts = host().await;
    let mut c = ts.login().await;
    enter_maintenance_still(&ts, &mut c).await;
    let before = boots(&ts);
    host_task(&mut c, "RebootHost_Task", "<force>false</force>").await;
    ts.skip(Duration::from_secs(1)); // the task runs
    assert_eq!(ts.shared.phase().0, Phase::Stopping);
    expect(&ts, "503").await;
    ts.skip(Duration::from_secs(5));
    assert_eq!(ts.shared.phase().0, Phase::Down);
    expect(&ts, "refused").await;
    // The reboot began when the task ran, ~0.2 s after it was made.
    ts.skip(Duration::from_secs(25));
    assert_eq!(ts.shared.phase().0, Phase::Starting);
    expect(&ts, "503").await;
    // A SOAP call while hostd starts gets the proxy's 503 too.
    let r = ts.client().service_content().await;
    assert!(r.is_err(), "{r:?}");
    ts.skip(Duration::from_secs(10));
    assert_eq!(ts.shared.phase().0, Phase::Up);
    expect(&ts, "200").await;
    assert_eq!(boots(&ts), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_on_has_no_stopping_phase_and_off_is_refused() {
    let ts = host().await;
    ts.with_host(|h| h.crash()).unwrap();
    assert_eq!(ts.shared.phase().0, Phase::Down);
    expect(&ts, "refused").await;
    ts.with_host(|h| h.power_on()).unwrap();
    assert_eq!(
        ts.shared.phase().0,
        Phase::Down,
        "no stopping after power-on"
    );
    expect(&ts, "refused").await;
    ts.skip(Duration::from_secs(31));
    expect(&ts, "503").await;
    ts.skip(Duration::from_secs(10));
    expect(&ts, "200").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_instead_of_refusing_is_a_setting() {
    let h = host_with("8.0U3", 92, |c| c.boot_time(Duration::from_secs(40)));
    let ts = start_with(h, |c| {
        c.clock_speed = 0.0;
        c.reboot.refuse_while_down = false;
    })
    .await;
    ts.with_host(|h| h.crash()).unwrap();
    let mut c = ts.client();
    assert_eq!(probe(ts.addr, &mut c).await, Seen::NoAnswer);
}

/// Enters maintenance mode on a host whose clock stands still.
async fn enter_maintenance_still(ts: &TestServer, c: &mut Client) {
    host_task(c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    ts.skip(Duration::from_secs(1));
    assert!(ts.with_host(|h| h.in_maintenance_mode()));
}
