//! HostFirmwareSystem over the wire: backup and the download, the upload, restore with each of
//! its faults (and force), hostile bundles, the root password round trip, reset to factory
//! defaults, and the sync rate limit.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use esxi_harness::client::{returnval, Client};
use esxi_sim_tests::{firmware, host_ref, start, TestServer, PASSWORD};
use hyper::{Method, StatusCode};

fn members(tgz: &[u8]) -> Vec<(String, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(tgz);
    let mut ar = tar::Archive::new(gz);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, data)
        })
        .collect()
}

fn is_vmware_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.starts_with("52")
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_url_download_and_bundle_contents() {
    let ts = start("6.7U3", 60).await;
    let mut c = ts.login().await;
    let url = call_text(&mut c, &firmware(), "BackupFirmwareConfiguration", "")
        .await
        .unwrap();
    let hostname = ts.with_host(|h| h.hostname());
    let prefix = format!("https://*:{}/downloads/", ts.addr.port());
    let rest = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
    let (uuid, file) = rest.split_once('/').unwrap();
    assert!(is_vmware_uuid(uuid), "{uuid}");
    assert_eq!(file, format!("configBundle-{hostname}.tgz"));
    assert_eq!(Client::path_of(&url), format!("/downloads/{uuid}/{file}"));

    // The download needs no credentials.
    let mut anon = ts.client();
    let get = anon.get(&Client::path_of(&url)).await.unwrap();
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(
        get.headers.get("content-type").unwrap(),
        "application/octet-stream"
    );
    let head = anon
        .http(Method::HEAD, &Client::path_of(&url), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    let len: usize = head
        .headers
        .get("content-length")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, get.body.len());
    assert!(len > 100);

    let m = members(&get.body);
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Manifest.txt", "state.tgz"]);
    let manifest = String::from_utf8(m[0].1.clone()).unwrap();
    assert!(
        manifest.contains("RELEASELEVEL=VMware ESXi 6.7.0 Update 3\n"),
        "{manifest}"
    );
    let upper = ts.with_host(|h| h.smbios_uuid().to_string());
    assert_eq!(upper, upper.to_uppercase());
    assert!(manifest.contains(&format!("UUID={upper}\n")), "{manifest}");
    // state.tgz holds local.tgz which holds the saved files.
    let state = members(&m[1].1);
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].0, "local.tgz");
    let local = members(&state[0].1);
    assert!(
        local.iter().any(|(n, _)| n == "etc/shadow"),
        "{:?}",
        local.iter().map(|x| &x.0).collect::<Vec<_>>()
    );

    // Unknown uuid, or the right uuid with another file name: 404.
    let bogus = format!("/downloads/52000000-0000-0000-0000-000000000000/{file}");
    assert_eq!(
        anon.get(&bogus).await.unwrap().status,
        StatusCode::NOT_FOUND
    );
    let wrong_name = format!("/downloads/{uuid}/configBundle-other.tgz");
    assert_eq!(
        anon.get(&wrong_name).await.unwrap().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        anon.get(&format!("/downloads/{uuid}"))
            .await
            .unwrap()
            .status,
        StatusCode::NOT_FOUND
    );

    // Each backup gets its own uuid.
    let url2 = call_text(&mut c, &firmware(), "BackupFirmwareConfiguration", "")
        .await
        .unwrap();
    assert_ne!(url, url2);
    assert_eq!(
        anon.get(&Client::path_of(&url)).await.unwrap().status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_expire_after_three_days() {
    let ts = start("6.7U3", 61).await;
    let mut c = ts.login().await;
    let (url, _) = backup(&mut c).await;
    let path = Client::path_of(&url);
    ts.skip(Duration::from_secs(2 * 24 * 3600));
    assert_eq!(c.get(&path).await.unwrap().status, StatusCode::OK);
    ts.skip(Duration::from_secs(24 * 3600 + 60));
    assert_eq!(c.get(&path).await.unwrap().status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_url_and_authentication() {
    let ts = start("6.7U3", 62).await;
    let mut c = ts.login().await;
    let url = call_text(&mut c, &firmware(), "QueryFirmwareConfigUploadURL", "")
        .await
        .unwrap();
    assert_eq!(
        url,
        format!("https://*:{}/tmp/configBundle.tgz", ts.addr.port())
    );
    let path = Client::path_of(&url);
    let mut anon = ts.client();
    // Ansible's HEAD first: answered without credentials.
    let head = anon
        .http(Method::HEAD, &path, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(head.status, StatusCode::OK);

    let r = anon.put(&path, b"one".to_vec(), None).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get("www-authenticate").is_some());
    let r = anon
        .put(&path, b"two".to_vec(), Some(("root", "wrong")))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = anon
        .put(&path, b"three".to_vec(), Some(("nobody", PASSWORD)))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        ts.with_host(|h| h.uploaded_bundle().is_none()),
        "nothing landed"
    );

    let r = anon
        .put(&path, b"basic".to_vec(), Some(("root", PASSWORD)))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        ts.with_host(|h| h.uploaded_bundle().map(|b| b.to_vec())),
        Some(b"basic".to_vec())
    );
    // The session cookie instead of Basic auth (vCLI).
    let r = c.put(&path, b"cookie".to_vec(), None).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        ts.with_host(|h| h.uploaded_bundle().map(|b| b.to_vec())),
        Some(b"cookie".to_vec())
    );
    // A dead cookie is not enough.
    let mut dead = ts.client();
    dead.set_cookie(Some(format!("vmware_soap_session=\"{}\"", "0".repeat(40))));
    let r = dead.put(&path, b"dead".to_vec(), None).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // GET on the upload URL is not a download.
    let r = anon.get(&path).await.unwrap();
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_needs_maintenance_mode_and_an_upload() {
    let ts = start("6.7U3", 63).await;
    let mut c = ts.login().await;
    let (_, bundle) = backup(&mut c).await;
    let e = expect_fault(restore(&mut c, false).await, "InvalidState");
    assert_eq!(
        e.to_string(),
        "InvalidState: The operation is not allowed in the current state."
    );
    enter_maintenance(&mut c).await;
    let e = expect_fault(restore(&mut c, false).await, "FileNotFound");
    assert_eq!(e.field("file").as_deref(), Some("/tmp/configBundle.tgz"));
    assert!(
        e.to_string()
            .contains("/tmp/configBundle.tgz was not found"),
        "{e}"
    );
    // Reset needs maintenance mode as well (checked on a second host below); restore of our own
    // bundle works without force.
    upload(&mut c, bundle).await;
    let before = boots(&ts);
    restore(&mut c, false).await.unwrap();
    wait_down(&ts, before).await;
    ts.wait_back(PASSWORD).await;
    assert_eq!(boots(&ts), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_hosts_bundle_is_mismatched_unless_forced() {
    let ts = start("6.7U3", 64).await;
    let other = start("6.7U3", 65).await;
    let mut c = ts.login().await;
    let mut oc = other.login().await;
    let (_, theirs) = backup(&mut oc).await;
    let their_uuid = other.with_host(|h| h.smbios_uuid().to_string());
    let their_name = other.with_host(|h| h.hostname());
    let our_uuid = ts.with_host(|h| h.smbios_uuid().to_string());
    assert_ne!(their_uuid, our_uuid);
    assert_ne!(their_name, ts.with_host(|h| h.hostname()));

    enter_maintenance(&mut c).await;
    upload(&mut c, theirs).await;
    let e = expect_fault(restore(&mut c, false).await, "MismatchedBundle");
    assert_eq!(e.field("bundleUuid").as_deref(), Some(their_uuid.as_str()));
    assert_eq!(e.field("hostUuid").as_deref(), Some(our_uuid.as_str()));
    assert_eq!(e.field("bundleBuildNumber").as_deref(), Some("14320388"));
    assert_eq!(e.field("hostBuildNumber").as_deref(), Some("14320388"));
    // Fields in schema order.
    if let esxi_harness::client::ClientError::Fault { detail, .. } = &e {
        let order: Vec<&str> = detail.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "bundleUuid",
                "hostUuid",
                "bundleBuildNumber",
                "hostBuildNumber"
            ]
        );
    }
    assert!(
        ts.with_host(|h| h.is_running()),
        "a rejected restore changes nothing"
    );

    let before = boots(&ts);
    restore(&mut c, true).await.unwrap();
    // The host reboots at once: the next call gets the proxy's 503 while hostd stops, or no
    // answer (server/phases.rs).
    match c.fetch(&host_ref(), "name").await {
        Err(esxi_harness::client::ClientError::Io(_)) => {}
        Err(esxi_harness::client::ClientError::Http(s, _)) if s.as_u16() == 503 => {}
        other => panic!("expected the host to be down, got {other:?}"),
    }
    wait_down(&ts, before).await;
    let mut c = ts.wait_back(PASSWORD).await;
    assert_eq!(c.fetch_text(&host_ref(), "name").await.unwrap(), their_name);
    assert_eq!(
        c.fetch_text(&host_ref(), "runtime.inMaintenanceMode")
            .await
            .unwrap(),
        "true"
    );
    // The hardware is still ours.
    assert_eq!(
        c.fetch_text(&host_ref(), "hardware.systemInfo.uuid")
            .await
            .unwrap(),
        our_uuid.to_lowercase()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_release_level_is_refused_even_with_force() {
    let ts = start("6.7U3", 66).await;
    let ga = start("6.7GA", 67).await;
    let mut c = ts.login().await;
    let mut gc = ga.login().await;
    let (_, theirs) = backup(&mut gc).await;
    enter_maintenance(&mut c).await;
    upload(&mut c, theirs).await;
    let files = etc_snapshot(&ts);
    for force in [false, true] {
        let e = expect_fault(restore(&mut c, force).await, "MismatchedBundle");
        assert_eq!(e.field("bundleBuildNumber").as_deref(), Some("8169922"));
        assert_eq!(e.field("hostBuildNumber").as_deref(), Some("14320388"));
    }
    assert_eq!(boots(&ts), 1);
    assert_eq!(etc_snapshot(&ts), files);
    c.fetch(&host_ref(), "name").await.unwrap();
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A gzip tar whose member names are written raw (the tar crate's builder refuses `..`).
fn raw_tgz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    gz(&b.into_inner().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bundles_are_invalid_and_change_nothing() {
    let ts = start("6.7U3", 68).await;
    let mut c = ts.login().await;
    let (_, good) = backup(&mut c).await;
    let parts = members(&good);
    let (manifest, state) = (&parts[0].1, &parts[1].1);
    enter_maintenance(&mut c).await;

    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut gz_random = vec![0x1f, 0x8b];
    gz_random.extend_from_slice(&random[..512]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random.clone()),
        ("gzip magic then noise", gz_random),
        ("truncated gzip", good[..good.len() / 2].to_vec()),
        ("truncated trailer", good[..good.len() - 4].to_vec()),
        ("empty", Vec::new()),
        (
            "dot-dot member",
            raw_tgz(&[
                ("Manifest.txt", manifest),
                ("state.tgz", state),
                ("../../etc/shadow", b"root::0:0:99999:7:::\n"),
            ]),
        ),
        (
            "absolute member",
            raw_tgz(&[
                ("Manifest.txt", manifest),
                ("state.tgz", state),
                ("/etc/passwd", b"x"),
            ]),
        ),
        ("no manifest", raw_tgz(&[("state.tgz", state)])),
        ("no state.tgz", raw_tgz(&[("Manifest.txt", manifest)])),
        (
            "state.tgz is garbage",
            raw_tgz(&[("Manifest.txt", manifest), ("state.tgz", &random[..100])]),
        ),
    ];
    let writes = ts.with_host(|h| h.bootbank_writes());
    let files = etc_snapshot(&ts);
    let state_before = ts.with_host(|h| h.bootbank().unwrap().state_tgz().unwrap().to_vec());
    for (what, bytes) in cases {
        upload(&mut c, bytes).await;
        let e = expect_fault(restore(&mut c, true).await, "InvalidBundle");
        let text = e.field("text").unwrap_or_default();
        assert!(text.starts_with("Invalid Bundle"), "{what}: {text}");
        if what == "no manifest" {
            assert_eq!(text, "Invalid Bundle: Missing Manifest File");
        }
        assert!(ts.with_host(|h| h.is_running()), "{what}");
        assert_eq!(boots(&ts), 1, "{what}");
        assert_eq!(ts.with_host(|h| h.bootbank_writes()), writes, "{what}");
        assert_eq!(etc_snapshot(&ts), files, "{what}");
        assert_eq!(
            ts.with_host(|h| h.bootbank().unwrap().state_tgz().unwrap().to_vec()),
            state_before,
            "{what}"
        );
        // Still answering, same session.
        c.fetch(&host_ref(), "name").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_brings_back_the_old_root_password() {
    let ts = start("6.7U3", 69).await;
    let mut c = ts.login().await;
    let (_, old_bundle) = backup(&mut c).await;
    const NEW: &str = "Brand!New42";
    c.call(
        &esxi_sim_tests::account_manager(),
        "UpdateUser",
        &account_spec("root", Some(NEW)),
    )
    .await
    .unwrap();
    let mut n = ts.client();
    n.login("root", NEW).await.unwrap();
    expect_fault(ts.client().login("root", PASSWORD).await, "InvalidLogin");

    enter_maintenance(&mut n).await;
    // Upload with the credentials that are valid now.
    let r = n
        .put("/tmp/configBundle.tgz", old_bundle, Some(("root", NEW)))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    let before = boots(&ts);
    restore(&mut n, false).await.unwrap();
    wait_down(&ts, before).await;
    ts.wait_back(PASSWORD).await;
    expect_fault(ts.client().login("root", NEW).await, "InvalidLogin");
}

async fn in_maintenance(ts: &TestServer) -> Client {
    let mut c = ts.login().await;
    enter_maintenance(&mut c).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_to_factory_defaults() {
    let ts = start("6.7U3", 70).await;
    let mut c = ts.login().await;
    let e = expect_fault(
        c.call(&firmware(), "ResetFirmwareToFactoryDefaults", "")
            .await,
        "InvalidState",
    );
    assert!(e.to_string().contains("not allowed in the current state"));
    assert_eq!(boots(&ts), 1);
    let mut c = in_maintenance(&ts).await;
    let name = ts.with_host(|h| h.hostname());
    assert_ne!(name, "localhost");
    let before = boots(&ts);
    c.call(&firmware(), "ResetFirmwareToFactoryDefaults", "")
        .await
        .unwrap();
    wait_down(&ts, before).await;
    let mut c = ts.wait_back("").await;
    // root's password is empty now, the old one no longer works.
    expect_fault(ts.client().login("root", PASSWORD).await, "InvalidLogin");
    assert_eq!(
        c.fetch_text(&host_ref(), "name").await.unwrap(),
        "localhost"
    );
    assert!(ts.with_host(|h| h.bootbank().unwrap().state_tgz().is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_is_rate_limited() {
    let ts = start("6.7U3", 71).await;
    let mut c = ts.login().await;
    let n: u32 = call_text(&mut c, &firmware(), "QueryFirmwareSyncsPerQuantum", "")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let r = c
        .call(&firmware(), "QueryFirmwareQuantumMinutes", "")
        .await
        .unwrap();
    let q = returnval(&r).unwrap();
    assert_eq!(q.text, "10");
    let profile = ts.with_host(|h| h.profile().sync_limit);
    assert_eq!(n, profile.syncs_per_quantum);
    assert_eq!(q.text, profile.quantum_minutes.to_string());
    assert!(n >= 1);

    for i in 0..n {
        let r = c
            .call(&firmware(), "SyncFirmwareConfiguration", "")
            .await
            .unwrap_or_else(|e| panic!("sync {i}: {e}"));
        assert!(r.child("returnval").is_none());
    }
    let writes = ts.with_host(|h| h.bootbank_writes());
    let e = expect_fault(
        c.call(&firmware(), "SyncFirmwareConfiguration", "").await,
        "TooManyWrites",
    );
    if let esxi_harness::client::ClientError::Fault { detail, .. } = &e {
        assert!(detail.children.is_empty(), "TooManyWrites has no fields");
    }
    assert_eq!(ts.with_host(|h| h.bootbank_writes()), writes);
    // The next quantum allows syncs again.
    ts.skip(Duration::from_secs(u64::from(profile.quantum_minutes) * 60));
    let mut c = ts.login().await;
    c.call(&firmware(), "SyncFirmwareConfiguration", "")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_writes_the_running_configuration() {
    let ts = start("6.7U3", 72).await;
    let mut c = ts.login().await;
    c.call(
        &esxi_sim_tests::options(),
        "UpdateOptions",
        &long_option("UserVars.SuppressShellWarning", 1),
    )
    .await
    .unwrap();
    assert!(ts.with_host(|h| h.has_unsaved_changes()));
    c.call(&firmware(), "SyncFirmwareConfiguration", "")
        .await
        .unwrap();
    assert!(!ts.with_host(|h| h.has_unsaved_changes()));
    // So a crash now keeps it.
    ts.with_host(|h| {
        h.crash().unwrap();
        h.power_on().unwrap();
    });
    let mut c = ts.wait_back(PASSWORD).await;
    assert_eq!(
        query_option(&mut c, "UserVars.SuppressShellWarning").await,
        "1"
    );
}
