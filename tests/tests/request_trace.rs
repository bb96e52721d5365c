//! The request trace (issue 14: `serve --trace FILE`, `GET /v1/trace`): every request a host
//! answers, with who made it and how it ended, as a backup tool's judge reads it.

mod common;

use std::sync::Arc;

use common::*;
use esxi_sim::server::trace::{Filter, Record, Trace};
use esxi_sim_tests::{firmware, start_with, PASSWORD};

fn records(t: &Trace) -> Vec<Record> {
    t.list(&Filter::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_trace_tells_each_call_who_made_it_and_how_it_ended() {
    let trace = Arc::new(Trace::new(None).unwrap());
    let t = trace.clone();
    let ts = start_with(esxi_sim_tests::host("8.0U3", 91), move |c| {
        c.trace = Some(t);
        c.redirect = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;

    expect_fault(ts.client().login("root", "wrong").await, "InvalidLogin");
    let mut c = ts.login().await;
    expect_fault(
        c.call(&firmware(), "NoSuchMethod", "").await,
        "MethodNotFound",
    );
    let (url, bundle) = backup(&mut c).await;
    let put = c
        .put(
            "/tmp/configBundle.tgz",
            bundle.clone(),
            Some(("root", PASSWORD)),
        )
        .await
        .unwrap();
    assert_eq!(put.status, 200);
    c.logout().await.unwrap();
    // Port 80: a 301 to https.
    let port80 = ts.redirect_addr.unwrap();
    let mut s = std::net::TcpStream::connect(port80).unwrap();
    std::io::Write::write_all(
        &mut s,
        b"GET /sdk HTTP/1.1\r\nHost: esx\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 301"), "{answer}");

    let all = records(&trace);
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "numbered in order: {seqs:?}"
    );
    let find = |m: &str| {
        all.iter()
            .filter(|r| r.method == m)
            .cloned()
            .collect::<Vec<_>>()
    };
    let logins = find("Login");
    assert_eq!(logins.len(), 2);
    assert_eq!(
        (
            logins[0].outcome,
            logins[0].fault.as_deref(),
            logins[0].status
        ),
        ("fault", Some("InvalidLogin"), 500)
    );
    assert_eq!(logins[0].user.as_deref(), Some("root"), "the name it tried");
    assert_eq!(logins[1].outcome, "ok");
    let nsm = &find("NoSuchMethod")[0];
    assert_eq!(nsm.fault.as_deref(), Some("MethodNotFound"));
    assert_eq!(
        nsm.object.as_deref(),
        Some("HostFirmwareSystem:ha-firmwareSystem")
    );
    assert_eq!(nsm.user.as_deref(), Some("root"));
    let backup = &find("BackupFirmwareConfiguration")[0];
    assert_eq!((backup.kind, backup.outcome), ("soap", "ok"));
    assert_eq!(backup.endpoint, "host");
    assert!(backup.client.starts_with("127.0.0.1:"), "{}", backup.client);
    let download = all.iter().find(|r| r.kind == "download").unwrap();
    assert_eq!(download.method, "GET");
    assert!(url.ends_with(&download.path), "{url} vs {}", download.path);
    assert_eq!(download.bytes, Some(bundle.len() as u64));
    let upload = all.iter().find(|r| r.kind == "upload").unwrap();
    assert_eq!(
        (upload.method.as_str(), upload.status, upload.bytes),
        ("PUT", 200, Some(bundle.len() as u64))
    );
    assert_eq!(upload.user.as_deref(), Some("root"));
    let logout = &find("Logout")[0];
    assert_eq!(
        logout.user.as_deref(),
        Some("root"),
        "known though its session ended"
    );
    let redirect = all.iter().find(|r| r.kind == "redirect").unwrap();
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.location.as_deref(),
        Some(format!("https://esx:{}/sdk", ts.addr.port()).as_str())
    );
    // Times are virtual and ordered.
    assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(all[0].at.starts_with("20") && all[0].at.ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_trace_unless_asked_and_a_dropped_connection_is_told() {
    // Without a trace the server records nothing (and keeps no memory for it).
    let ts = esxi_sim_tests::start("6.7U3", 92).await;
    assert!(ts.shared.cfg.trace.is_none());
    drop(ts);

    let trace = Arc::new(Trace::new(None).unwrap());
    let t = trace.clone();
    let ts = start_with(esxi_sim_tests::host("6.7U3", 93), move |c| {
        c.trace = Some(t)
    })
    .await;
    let mut c = ts.login().await;
    c.call(&firmware(), "QueryFirmwareConfigUploadURL", "")
        .await
        .unwrap();
    // The host crashes: the next request gets no answer at all.
    ts.with_host(|h| h.crash().unwrap());
    assert!(c
        .call(&firmware(), "QueryFirmwareConfigUploadURL", "")
        .await
        .is_err());
    let last = records(&trace).pop().unwrap();
    assert_eq!((last.outcome, last.status), ("dropped", 0), "{last:?}");
}
