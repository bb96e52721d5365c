//! The HTTP(S) front: plain HTTP, the port-80 style redirect, URL styles, slow clients,
//! concurrency and certificate checking.

mod common;

use std::time::Duration;

use common::*;
use esxi_harness::client::{Client, ClientError, Trust};
use esxi_sim::server::{CertSource, UrlStyle};
use esxi_sim_tests::{firmware, host, host_ref, start, start_with, PASSWORD};
use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_server() {
    let ts = start_with(host("6.7U3", 80), |cfg| cfg.tls = None).await;
    assert!(ts.url.starts_with("http://"), "{}", ts.url);
    let mut c = Client::new(&ts.url, Trust::Any).unwrap();
    c.login("root", PASSWORD).await.unwrap();
    // No Secure attribute over plain HTTP.
    let cookie = c.cookie().unwrap().to_string();
    assert!(cookie.ends_with("; Path=/; HttpOnly;"), "{cookie}");
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(!c.fetch_text(&host_ref(), "name").await.unwrap().is_empty());
    // Firmware URLs carry the http scheme and the port.
    let url = call_text(&mut c, &firmware(), "BackupFirmwareConfiguration", "")
        .await
        .unwrap();
    let prefix = format!("http://*:{}/downloads/52", ts.addr.port());
    assert!(url.starts_with(&prefix), "{url}");
    assert_eq!(
        c.get(&Client::path_of(&url)).await.unwrap().status,
        StatusCode::OK
    );
    // A TLS client cannot talk to it.
    let mut tls = Client::new(&format!("https://{}/sdk", ts.addr), Trust::Any).unwrap();
    match tls.service_content().await {
        Err(ClientError::Io(_)) => {}
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_listener_sends_clients_to_https() {
    let ts = start_with(host("6.7U3", 81), |cfg| {
        cfg.redirect = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let raddr = ts.redirect_addr.expect("a redirect listener");
    assert_ne!(raddr.port(), ts.addr.port());
    let mut c = Client::new(&format!("http://{raddr}"), Trust::Any).unwrap();
    for path in ["/sdk", "/downloads/x/configBundle-a.tgz?x=1", "/"] {
        let r = c.get(path).await.unwrap();
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY, "{path}");
        let loc = r.headers.get("location").unwrap().to_str().unwrap();
        assert_eq!(loc, format!("https://127.0.0.1:{}{path}", ts.addr.port()));
    }
    // The https listener itself is unaffected.
    ts.client().service_content().await.unwrap();
}

/// Fleets have port 80 too (issue 13): each host's own listener sends it to its own https.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fleet_host_has_its_port_80() {
    use esxi_sim::fleet::{Fleet, Layout, Mode};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let fleet = Fleet::builder()
        .hosts(3)
        .mode(Mode::VCenter)
        .profile("8.0U3")
        .layout(Layout::Addresses {
            first: Ipv4Addr::new(127, 1, 81, 1),
            port: 0,
        })
        .vcenter_listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
        .clock_speed(0.0)
        .config(|c| c.redirect_port = Some(0))
        .start()
        .await
        .unwrap();
    for h in fleet.hosts() {
        let raddr = h.redirect_addr.expect("a port-80 listener");
        assert_eq!(raddr.ip(), h.addr.ip(), "on the host's own address");
        let mut c = Client::new(&format!("http://{raddr}"), Trust::Any).unwrap();
        let r = c.get("/downloads/x/configBundle-a.tgz").await.unwrap();
        assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
        let loc = r.headers.get("location").unwrap().to_str().unwrap();
        assert_eq!(
            loc,
            format!("https://{}/downloads/x/configBundle-a.tgz", h.addr)
        );
    }
    // Without the setting there is none.
    let plain = Fleet::builder()
        .hosts(1)
        .clock_speed(0.0)
        .start()
        .await
        .unwrap();
    assert!(plain.hosts()[0].redirect_addr.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_styles() {
    let esxi = start_with(host("6.7U3", 82), |cfg| cfg.url_style = UrlStyle::Esxi).await;
    let mut c = esxi.login().await;
    let url = call_text(&mut c, &firmware(), "BackupFirmwareConfiguration", "")
        .await
        .unwrap();
    assert!(url.starts_with("http://*/downloads/52"), "{url}");
    // resolve_star gives what Ansible would fetch; the path is still served here.
    assert_eq!(c.resolve_star(&url), url.replacen('*', "127.0.0.1", 1));
    assert_eq!(
        c.get(&Client::path_of(&url)).await.unwrap().status,
        StatusCode::OK
    );
    let up = call_text(&mut c, &firmware(), "QueryFirmwareConfigUploadURL", "")
        .await
        .unwrap();
    assert_eq!(up, "http://*/tmp/configBundle.tgz");

    let explicit = start_with(host("6.7U3", 83), |cfg| cfg.url_style = UrlStyle::Explicit).await;
    let mut c = explicit.login().await;
    let up = call_text(&mut c, &firmware(), "QueryFirmwareConfigUploadURL", "")
        .await
        .unwrap();
    assert_eq!(
        up,
        format!("https://*:{}/tmp/configBundle.tgz", explicit.addr.port())
    );
}

/// Connects, sends `sent`, and reads until the server closes; returns how long that took.
async fn time_until_closed(
    addr: std::net::SocketAddr,
    sent: &[u8],
    limit: Duration,
) -> Option<Duration> {
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    if !sent.is_empty() {
        s.write_all(sent).await.unwrap();
    }
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_are_dropped_after_the_header_timeout() {
    let ts = start_with(host("6.7U3", 84), |cfg| {
        cfg.tls = None;
        cfg.header_timeout = Duration::from_millis(300);
    })
    .await;
    let took = time_until_closed(ts.addr, b"", Duration::from_millis(1500))
        .await
        .expect("the server closes a connection that sends nothing");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    // A partial request head is cut off the same way.
    let took = time_until_closed(
        ts.addr,
        b"POST /sdk HTTP/1.1\r\nHost: x\r\n",
        Duration::from_millis(1500),
    )
    .await
    .expect("the server closes a connection with an incomplete head");
    assert!(took >= Duration::from_millis(250), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tls_clients_are_dropped_after_the_header_timeout() {
    let ts = start_with(host("6.7U3", 85), |cfg| {
        cfg.header_timeout = Duration::from_millis(300);
    })
    .await;
    time_until_closed(ts.addr, b"", Duration::from_millis(1500))
        .await
        .expect("the server closes a TLS connection that sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_of_the_redirect_listener_are_dropped_too() {
    let ts = start_with(host("6.7U3", 90), |cfg| {
        cfg.redirect = Some("127.0.0.1:0".parse().unwrap());
        cfg.header_timeout = Duration::from_millis(300);
    })
    .await;
    time_until_closed(ts.redirect_addr.unwrap(), b"", Duration::from_millis(1500))
        .await
        .expect("the redirect listener closes a connection that sends nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_hit_the_body_timeout() {
    let ts = start_with(host("6.7U3", 86), |cfg| {
        cfg.tls = None;
        cfg.body_timeout = Duration::from_millis(300);
    })
    .await;
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(ts.addr).await.unwrap();
    s.write_all(b"POST /sdk HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<soapenv:Envelope")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf))
        .await
        .expect("an answer before the test's limit")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // The server still serves others.
    let mut c = Client::new(&ts.url, Trust::Any).unwrap();
    c.service_content().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients() {
    let ts = start("6.7U3", 87).await;
    let url = ts.url.clone();
    let mut jobs = Vec::new();
    for _ in 0..64 {
        let url = url.clone();
        jobs.push(tokio::spawn(async move {
            let mut c = Client::new(&url, Trust::Any).unwrap();
            let sc = c.service_content().await?;
            Ok::<_, ClientError>(
                sc.child("about")
                    .and_then(|a| a.child_text("apiType").map(str::to_string)),
            )
        }));
    }
    let mut ok = 0;
    for j in jobs {
        let r = tokio::time::timeout(Duration::from_secs(10), j)
            .await
            .expect("all clients answered")
            .unwrap()
            .unwrap();
        assert_eq!(r.as_deref(), Some("HostAgent"));
        ok += 1;
    }
    assert_eq!(ok, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_checking_clients() {
    // An operator certificate, and a CA that has nothing to do with it.
    let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let (cert, key) =
        esxi_sim::server::tls::self_signed(&["localhost".to_string()], &[ip]).unwrap();
    let (unrelated, _) = esxi_sim::server::tls::self_signed(&["some-ca".to_string()], &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("rui.crt"), dir.path().join("rui.key"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let ts = start_with(host("6.7U3", 88), |cfg| {
        cfg.tls = Some(CertSource::Files {
            cert: cert_path.clone(),
            key: key_path.clone(),
        });
    })
    .await;

    let mut strict = Client::new(&ts.url, Trust::Roots(unrelated.into_bytes())).unwrap();
    match strict.service_content().await {
        Err(ClientError::Io(m)) => assert!(m.contains("TLS"), "{m}"),
        other => panic!("expected a failed handshake, got {other:?}"),
    }
    let mut empty = Client::new(&ts.url, Trust::Roots(Vec::new())).unwrap();
    assert!(matches!(
        empty.service_content().await,
        Err(ClientError::Io(_))
    ));
    // Trusting the server's own certificate works.
    let mut pinned = Client::new(&ts.url, Trust::Roots(cert.into_bytes())).unwrap();
    pinned.login("root", PASSWORD).await.unwrap();

    // The default self-signed certificate is not trusted by a strict client either.
    let ss = start("6.7U3", 89).await;
    let (unrelated, _) =
        esxi_sim::server::tls::self_signed(&["localhost".to_string()], &[ip]).unwrap();
    let mut strict = Client::new(&ss.url, Trust::Roots(unrelated.into_bytes())).unwrap();
    assert!(matches!(
        strict.service_content().await,
        Err(ClientError::Io(_))
    ));
    ss.client().service_content().await.unwrap();
}
