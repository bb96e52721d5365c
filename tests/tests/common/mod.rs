//! Helpers shared by the `api_*` integration tests (each test file is its own crate and uses
//! only some of them).
#![allow(dead_code)]

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use esxi_harness::client::{as_moref, returnval, Client, ClientError};
use esxi_sim::api::MoRef;
use esxi_sim::fleet::{Fleet, Layout, Mode};
use esxi_sim::soap::xml::Element;
use esxi_sim_tests::TestServer;

/// A vCenter-mode fleet of `hosts` (the last on 6.7U3, the others 8.0U3) on loopback addresses
/// from `first`, its clock still, reboots of a second.
pub async fn vcenter_fleet(hosts: usize, first: Ipv4Addr) -> Fleet {
    Fleet::builder()
        .hosts(hosts)
        .mode(Mode::VCenter)
        .profiles(&[("8.0U3", hosts - 1), ("6.7U3", 1)])
        .layout(Layout::Addresses { first, port: 0 })
        .vcenter_listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
        .clock_speed(0.0)
        .boot_time(Duration::from_secs(1))
        .start()
        .await
        .expect("fleet starts")
}

/// Asserts that `r` failed with a SOAP fault of type `ty`; returns the error.
pub fn expect_fault<T: Debug>(r: Result<T, ClientError>, ty: &str) -> ClientError {
    match r {
        Err(e) if e.fault_type() == Some(ty) => e,
        other => panic!("expected a {ty} fault, got {other:?}"),
    }
}

/// A full SOAP envelope around `inner` (what the client's `call` sends).
pub fn envelope(inner: &str) -> Vec<u8> {
    esxi_harness::client::envelope(inner).into_bytes()
}

pub fn task_manager() -> MoRef {
    MoRef::new("TaskManager", "ha-taskmgr")
}
pub fn root_folder() -> MoRef {
    MoRef::new("Folder", "ha-folder-root")
}
pub fn view_manager() -> MoRef {
    MoRef::new("ViewManager", "ViewManager")
}
pub fn session_manager() -> MoRef {
    MoRef::new("SessionManager", "ha-sessionmgr")
}

/// Calls a method that returns a MoRef (a `_Task` method, CreateFilter, CreateContainerView).
pub async fn call_ref(c: &mut Client, this: &MoRef, method: &str, params: &str) -> MoRef {
    let r = c.call(this, method, params).await.unwrap();
    as_moref(&returnval(&r).unwrap()).unwrap()
}

/// Calls a method and returns the text of its single returnval.
pub async fn call_text(
    c: &mut Client,
    this: &MoRef,
    method: &str,
    params: &str,
) -> Result<String, ClientError> {
    let r = c.call(this, method, params).await?;
    Ok(returnval(&r)?.text.trim().to_string())
}

/// The managed object references inside an `ArrayOfManagedObjectReference` (or repeated) value.
pub fn refs_of(el: &Element) -> Vec<MoRef> {
    el.children.iter().map(|c| as_moref(c).unwrap()).collect()
}

pub async fn host_task(c: &mut Client, method: &str, params: &str) -> MoRef {
    call_ref(c, &esxi_sim_tests::host_ref(), method, params).await
}

/// Enters maintenance mode and waits for the task.
pub async fn enter_maintenance(c: &mut Client) {
    let t = host_task(c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    c.wait_task(&t).await.unwrap();
}

/// Waits (wall clock) until the host has gone down or finished a reboot since `boots_before`.
pub async fn wait_down(ts: &TestServer, boots_before: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (running, boots) = ts.with_host(|h| (h.is_running(), h.boots()));
        if !running || boots != boots_before {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "host did not go down"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn boots(ts: &TestServer) -> u32 {
    ts.with_host(|h| h.boots())
}

/// `<changedValue>` for UpdateOptions with an `xsd:long` value.
pub fn long_option(key: &str, v: i64) -> String {
    format!("<changedValue><key>{key}</key><value xsi:type=\"xsd:long\">{v}</value></changedValue>")
}

/// The value text of one option through QueryOptions.
pub async fn query_option(c: &mut Client, key: &str) -> String {
    let r = c
        .call(
            &esxi_sim_tests::options(),
            "QueryOptions",
            &format!("<name>{key}</name>"),
        )
        .await
        .unwrap();
    let ov = returnval(&r).unwrap();
    assert_eq!(ov.child_text("key"), Some(key));
    ov.child_text("value").unwrap().to_string()
}

/// A host account spec as pyVmomi sends it.
pub fn account_spec(id: &str, password: Option<&str>) -> String {
    let pw = password
        .map(|p| format!("<password>{}</password>", esxi_harness::client::esc(p)))
        .unwrap_or_default();
    format!("<user xsi:type=\"HostPosixAccountSpec\"><id>{id}</id>{pw}</user>")
}

/// Backs up the host and downloads the bundle: (URL, bytes).
pub async fn backup(c: &mut Client) -> (String, Vec<u8>) {
    let url = call_text(
        c,
        &esxi_sim_tests::firmware(),
        "BackupFirmwareConfiguration",
        "",
    )
    .await
    .unwrap();
    let r = c.get(&Client::path_of(&url)).await.unwrap();
    assert_eq!(r.status, 200, "download of {url}");
    (url, r.body.to_vec())
}

/// Uploads a bundle with Basic auth as root.
pub async fn upload(c: &mut Client, bytes: Vec<u8>) {
    let r = c
        .put(
            "/tmp/configBundle.tgz",
            bytes,
            Some(("root", esxi_sim_tests::PASSWORD)),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

pub async fn restore(c: &mut Client, force: bool) -> Result<Element, ClientError> {
    c.call(
        &esxi_sim_tests::firmware(),
        "RestoreFirmwareConfiguration",
        &format!("<force>{force}</force>"),
    )
    .await
}

/// Every file of RAM /etc with its contents.
pub fn etc_snapshot(ts: &TestServer) -> Vec<(String, Vec<u8>)> {
    ts.with_host(|h| {
        h.list_files()
            .unwrap()
            .into_iter()
            .map(|p| {
                let data = h.read_file(&p).unwrap().map(|b| b.to_vec());
                (p, data.unwrap_or_default())
            })
            .collect()
    })
}
