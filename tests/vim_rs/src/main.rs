//! `vim_rs` 0.7 (crates.io, nobody here wrote it) against a running `esxi-sim serve`: its SOAP
//! and VI/JSON transports (JSON: a vCenter of 8.0U1+, the release negotiated by its Hello
//! call, the session in its header), its typed retrieval (`vim_retrievable!`: every row goes through `TryFrom`, so an
//! enum sent as `xsd:string` or a missing required field drops the row), its generated managed
//! object stubs, its event decoding, and its `TaskTracker` (a ListView and a PropertyCollector
//! of its own, WaitForUpdatesEx).
//!
//! ```text
//! esxi-sim-vim-rs-client host    HOST:PORT USER PASS FULL_NAME
//! esxi-sim-vim-rs-client vcenter HOST:PORT USER PASS HOSTS
//! esxi-sim-vim-rs-client vcenter-json HOST:PORT USER PASS HOSTS ROOT_PASS
//! esxi-sim-vim-rs-client vcenter-soap-only HOST:PORT USER PASS
//! ```
//! Each check prints `ok: ...`; the first failure prints `FAIL: ...` and exits 1.

use std::process::exit;
use std::sync::Arc;

use vim_rs::core::client::{Client, ClientBuilder, Error, Transport, TransportMode, VimClient};
use vim_rs::core::pc_retrieve::ObjectRetriever;
use vim_rs::core::tasks::TaskTracker;
use vim_rs::mo::{EventManager, HostFirmwareSystem, HostSystem, SearchIndex, ServiceInstance};
use vim_rs::types::enums::{HostSystemConnectionStateEnum, MoTypesEnum};
use vim_rs::types::struct_enum::StructType;
use vim_rs::types::structs::{EventFilterSpec, EventFilterSpecByEntity, ManagedObjectReference};
use vim_rs::vim_retrievable;

vim_retrievable!(
    struct Host: HostSystem {
        name = "name",
        connection_state = "runtime.connection_state",
        in_maintenance_mode = "runtime.in_maintenance_mode",
        full_name = "summary.config.product.full_name",
        firmware_system = "config_manager.firmware_system",
        management_ip = "summary.management_server_ip"?,
    }
);

fn fail(what: &str) -> ! {
    println!("FAIL: {what}");
    exit(1)
}

fn check(ok: bool, what: &str) {
    if !ok {
        fail(what);
    }
    println!("ok: {what}");
}

/// Unwraps a result, failing the run with the check's name and the error.
fn must<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => fail(&format!("{what}: {e:?}")),
    }
}

async fn connect(addr: &str, user: &str, pass: &str, mode: TransportMode) -> Arc<Client> {
    must(
        ClientBuilder::new(addr)
            .basic_authn(user, pass)
            .app_details("esxi-sim-vim-rs-client", env!("CARGO_PKG_VERSION"))
            .insecure(true)
            .wire_logging(vim_rs::WireLoggingMode::Summary)
            .transport(mode)
            .build()
            .await,
        &format!("login to {addr}"),
    )
}

async fn hosts(client: &Arc<Client>) -> Vec<Host> {
    let retriever = must(ObjectRetriever::new(client.clone()), "ObjectRetriever");
    must(
        retriever
            .retrieve_objects_from_container(&client.service_content().root_folder)
            .await,
        "typed retrieval of HostSystem from the root folder",
    )
}

async fn host_by_ref(client: &Arc<Client>, r: &ManagedObjectReference) -> Host {
    let retriever = must(ObjectRetriever::new(client.clone()), "ObjectRetriever");
    match must(retriever.retrieve_object(r).await, "retrieve_object") {
        Some(h) => h,
        None => fail(&format!("retrieve_object({}) found no row", r.value)),
    }
}

/// Enters and leaves maintenance mode on `host`, each task waited for by the TaskTracker, and
/// sees the state change in a fresh typed read after each.
async fn maintenance_cycle(client: &Arc<Client>, tracker: &TaskTracker, host: &Host) {
    let stub = HostSystem::new(client.clone(), &host.id.value);
    let task = must(
        stub.enter_maintenance_mode_task(0, None, None).await,
        "EnterMaintenanceMode_Task",
    );
    check(
        task.r#type == MoTypesEnum::Task,
        "EnterMaintenanceMode_Task returns a Task reference",
    );
    must(
        tracker.wait::<()>(task).await,
        "TaskTracker waits for entering",
    );
    let after = host_by_ref(client, &host.id).await;
    check(
        after.in_maintenance_mode,
        &format!("{} is in maintenance mode after the task", host.name),
    );
    let task = must(
        stub.exit_maintenance_mode_task(0).await,
        "ExitMaintenanceMode_Task",
    );
    must(
        tracker.wait::<()>(task).await,
        "TaskTracker waits for leaving",
    );
    let after = host_by_ref(client, &host.id).await;
    check(
        !after.in_maintenance_mode,
        &format!("{} has left maintenance mode", host.name),
    );
}

async fn run_host(addr: &str, user: &str, pass: &str, full_name: &str) {
    let client = connect(addr, user, pass, TransportMode::Soap).await;
    let sc = client.service_content();
    check(
        sc.about.full_name == full_name,
        &format!(
            "about.fullName is {full_name:?} (got {:?})",
            sc.about.full_name
        ),
    );
    check(
        sc.about.api_type == "HostAgent",
        "about.apiType is HostAgent",
    );

    let all = hosts(&client).await;
    check(all.len() == 1, "typed retrieval finds the one host");
    let host = &all[0];
    check(
        host.connection_state == HostSystemConnectionStateEnum::Connected,
        "runtime.connectionState decodes as the enum Connected",
    );
    check(
        host.full_name.as_deref() == Some(full_name),
        "summary.config.product.fullName agrees with about",
    );
    check(
        !host.in_maintenance_mode,
        "the host starts outside maintenance mode",
    );

    let si = SearchIndex::new(
        client.clone(),
        &sc.search_index
            .as_ref()
            .unwrap_or_else(|| fail("no searchIndex"))
            .value,
    );
    let hostname = host.name.as_str();
    let found = must(
        si.find_by_dns_name(None, hostname, false).await,
        "FindByDnsName",
    );
    check(
        found.as_ref().map(|r| r.value.as_str()) == Some(host.id.value.as_str()),
        &format!("SearchIndex.FindByDnsName({hostname}) finds the host"),
    );

    let stub = HostSystem::new(client.clone(), &host.id.value);
    let uptime = must(
        stub.retrieve_hardware_uptime().await,
        "RetrieveHardwareUptime",
    );
    check(
        uptime >= 0,
        &format!("RetrieveHardwareUptime answers ({uptime} s)"),
    );

    let fw = firmware(&client, host);
    backup_url(&client, host, "on the host").await;
    let upload = must(
        fw.query_firmware_config_upload_url().await,
        "QueryFirmwareConfigUploadURL",
    );
    check(
        upload.contains("/tmp/configBundle"),
        &format!("QueryFirmwareConfigUploadURL answers ({upload})"),
    );

    let tracker = TaskTracker::new(client.clone());
    // Not a failed task: vim_rs 0.7 decodes TaskInfo.error as a MethodFault, while the SOAP
    // wire (real hosts and this simulator) carries a LocalizedMethodFault (`fault` and
    // `localizedMessage`), so its TaskTracker stops on the first failed task over SOAP.
    maintenance_cycle(&client, &tracker, host).await;
    tracker.shutdown().await;

    let em = EventManager::new(
        client.clone(),
        &sc.event_manager
            .as_ref()
            .unwrap_or_else(|| fail("no eventManager"))
            .value,
    );
    let filter = EventFilterSpec {
        entity: Some(EventFilterSpecByEntity {
            entity: host.id.clone(),
            recursion: vim_rs::types::enums::EventFilterSpecRecursionOptionEnum::Self_,
        }),
        time: None,
        user_name: None,
        event_chain_id: None,
        alarm: None,
        scheduled_task: None,
        disable_full_message: None,
        category: None,
        r#type: None,
        tag: None,
        event_type_id: None,
        max_count: None,
        audit_id: None,
        auditable: None,
        delayed_init: None,
    };
    let events = must(em.query_events(&filter, None).await, "QueryEvents").unwrap_or_default();
    let typed = |t: StructType| events.iter().filter(|e| e.type_ == Some(t)).count();
    check(
        typed(StructType::EnteredMaintenanceModeEvent) >= 1
            && typed(StructType::ExitMaintenanceModeEvent) >= 1,
        &format!(
            "QueryEvents: the maintenance events decode typed ({} events)",
            events.len()
        ),
    );

    let auto = connect(addr, user, pass, TransportMode::Auto).await;
    check(
        VimClient::transport(&*auto) == Transport::Soap,
        "automatic transport falls back to SOAP on a standalone host",
    );
    must(auto.close().await, "close (auto)");
    must(client.close().await, "close");
}

async fn run_vcenter(addr: &str, user: &str, pass: &str, expect_hosts: usize) {
    let client = connect(addr, user, pass, TransportMode::Soap).await;
    let sc = client.service_content();
    check(
        sc.about.api_type == "VirtualCenter",
        "about.apiType is VirtualCenter",
    );
    let all = hosts(&client).await;
    check(
        all.len() == expect_hosts,
        &format!(
            "typed retrieval reads all {expect_hosts} hosts through the vCenter (got {})",
            all.len()
        ),
    );
    for h in &all {
        check(
            h.connection_state == HostSystemConnectionStateEnum::Connected
                && h.id.value.starts_with("host-")
                && h.firmware_system
                    .as_ref()
                    .is_some_and(|f| f.value.starts_with("firmwareSystem-")),
            &format!(
                "{} ({}): connected, with a vCenter firmware system id",
                h.name, h.id.value
            ),
        );
    }
    let tracker = TaskTracker::new(client.clone());
    maintenance_cycle(&client, &tracker, &all[0]).await;
    tracker.shutdown().await;
    backup_url(&client, &all[0], "through the vCenter").await;
    must(client.close().await, "close");
}

/// `host`'s firmware system, as its configManager names it.
fn firmware(client: &Arc<Client>, host: &Host) -> HostFirmwareSystem {
    let r = host
        .firmware_system
        .as_ref()
        .unwrap_or_else(|| fail("configManager.firmwareSystem is unset"));
    HostFirmwareSystem::new(client.clone(), &r.value)
}

/// BackupFirmwareConfiguration on `host` (`how`: where it is called): the bundle URL, which is
/// the host's (`http://*/downloads/...`) whoever was asked.
async fn backup_url(client: &Arc<Client>, host: &Host, how: &str) -> String {
    let url = must(
        firmware(client, host).backup_firmware_configuration().await,
        &format!("BackupFirmwareConfiguration {how}"),
    );
    check(
        url.contains("/downloads/") && url.ends_with(".tgz"),
        &format!(
            "{}: BackupFirmwareConfiguration {how} answers the host's bundle URL ({url})",
            host.name
        ),
    );
    url
}

/// The host's own URL for a bundle transfer URL: vCenter hands out the host's `*` URL, and the
/// host is named by the address it was added by.
fn on_host(url: &str, host: &str) -> String {
    url.replacen('*', host, 1)
}

fn http() -> reqwest::Client {
    must(
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build(),
        "an HTTP client for the bundle transfers",
    )
}

/// Backs `host` up through the vCenter (VI/JSON) and downloads its bundle from the host.
async fn backup(client: &Arc<Client>, host: &Host) -> Vec<u8> {
    let url = backup_url(client, host, "through the vCenter over VI/JSON").await;
    let resp = must(
        http().get(on_host(&url, &host.name)).send().await,
        "download the bundle from the host",
    );
    check(
        resp.status().as_u16() == 200,
        &format!(
            "{}: the download answers 200 ({})",
            host.name,
            resp.status()
        ),
    );
    let bytes = must(resp.bytes().await, "read the bundle").to_vec();
    check(
        bytes.len() > 100 && bytes[..2] == [0x1f, 0x8b],
        &format!("{}: the bundle is gzip ({} bytes)", host.name, bytes.len()),
    );
    bytes
}

/// Uploads `bundle` to `host` (its Basic credentials: the host's, not the vCenter's) at the URL
/// QueryFirmwareConfigUploadURL names, and restores it without force.
async fn upload_and_restore(
    client: &Arc<Client>,
    host: &Host,
    root_pass: &str,
    bundle: &[u8],
) -> Result<(), Error> {
    let fw = firmware(client, host);
    let url = must(
        fw.query_firmware_config_upload_url().await,
        "QueryFirmwareConfigUploadURL over VI/JSON",
    );
    let resp = must(
        http()
            .put(on_host(&url, &host.name))
            .basic_auth("root", Some(root_pass))
            .body(bundle.to_vec())
            .send()
            .await,
        "upload the bundle to the host",
    );
    check(
        resp.status().is_success(),
        &format!("{}: the upload is taken ({})", host.name, resp.status()),
    );
    fw.restore_firmware_configuration(false).await
}

async fn run_vcenter_json(addr: &str, user: &str, pass: &str, expect_hosts: usize, root: &str) {
    let client = connect(addr, user, pass, TransportMode::Json).await;
    check(
        VimClient::transport(&*client) == Transport::Json,
        "the client speaks VI/JSON",
    );
    check(
        client.api_release() == "8.0.3.0",
        &format!(
            "Hello negotiates 8.0.3.0 from vim_rs's list (got {})",
            client.api_release()
        ),
    );
    let sc = client.service_content();
    check(
        sc.about.api_type == "VirtualCenter" && sc.about.version == "8.0.3",
        "ServiceInstance content (read before login) is the vCenter's",
    );
    let si = ServiceInstance::new(client.clone(), "ServiceInstance");
    let now = must(si.current_time().await, "CurrentTime over VI/JSON");
    check(
        now.contains('T'),
        &format!("CurrentTime answers a dateTime ({now})"),
    );

    let all = hosts(&client).await;
    check(
        all.len() == expect_hosts,
        &format!(
            "typed retrieval (a ContainerView, RetrievePropertiesEx) reads all {expect_hosts} hosts over VI/JSON (got {})",
            all.len()
        ),
    );
    for h in &all {
        check(
            h.connection_state == HostSystemConnectionStateEnum::Connected
                && h.firmware_system
                    .as_ref()
                    .is_some_and(|f| f.value.starts_with("firmwareSystem-")),
            &format!(
                "{} ({}): connected, with its firmware system",
                h.name, h.id.value
            ),
        );
    }
    let stub = HostSystem::new(client.clone(), &all[0].id.value);
    let name = must(stub.name().await, "GET HostSystem/{id}/name");
    check(
        name == all[0].name,
        &format!("a property read answers the name as a JSON string ({name})"),
    );
    let runtime = must(stub.runtime().await, "GET HostSystem/{id}/runtime");
    check(
        runtime.connection_state == HostSystemConnectionStateEnum::Connected,
        "a data-object property decodes typed (runtime.connectionState)",
    );

    // Two bundles, taken through the vCenter and downloaded from each host.
    let (a, b) = (&all[0], &all[1]);
    let bundle_a = backup(&client, a).await;
    let bundle_b = backup(&client, b).await;

    let tracker = TaskTracker::new(client.clone());
    let task = must(
        stub.enter_maintenance_mode_task(0, None, None).await,
        "EnterMaintenanceMode_Task over VI/JSON",
    );
    must(
        tracker.wait::<()>(task).await,
        "TaskTracker (WaitForUpdatesEx over VI/JSON) waits for maintenance mode",
    );
    tracker.shutdown().await;
    check(
        host_by_ref(&client, &a.id).await.in_maintenance_mode,
        &format!("{} is in maintenance mode", a.name),
    );

    // Another host's bundle: refused, with the fault's fields on the wire.
    match upload_and_restore(&client, a, root, &bundle_b).await {
        Err(Error::MethodFault(f)) if f.type_ == Some(StructType::MismatchedBundle) => {
            let field = |k: &str| {
                f.extra_fields_
                    .get(k)
                    .map(miniserde_json)
                    .unwrap_or_default()
            };
            let (host_uuid, bundle_uuid) = (field("hostUuid"), field("bundleUuid"));
            check(
                !host_uuid.is_empty() && !bundle_uuid.is_empty() && host_uuid != bundle_uuid,
                &format!(
                    "MismatchedBundle carries hostUuid {host_uuid} and bundleUuid {bundle_uuid}"
                ),
            );
            check(
                !field("hostBuildNumber").is_empty() && !field("bundleBuildNumber").is_empty(),
                "MismatchedBundle carries both build numbers",
            );
        }
        other => fail(&format!(
            "restoring {}'s bundle on {} answers MismatchedBundle (got {other:?})",
            b.name, a.name
        )),
    }
    // Its own bundle: restored, a void call answered 204; the host reboots.
    must(
        upload_and_restore(&client, a, root, &bundle_a).await,
        "RestoreFirmwareConfiguration (void, 204) over VI/JSON",
    );
    println!(
        "ok: RestoreFirmwareConfiguration of {}'s own bundle",
        a.name
    );

    // A fault over VI/JSON: a wrong password is InvalidLogin.
    let wrong = ClientBuilder::new(addr)
        .basic_authn(user, "not-the-password")
        .insecure(true)
        .transport(TransportMode::Json)
        .build()
        .await;
    match wrong {
        Err(Error::MethodFault(f)) if f.type_ == Some(StructType::InvalidLogin) => {
            println!("ok: a wrong password is the fault InvalidLogin over VI/JSON")
        }
        Err(e) => fail(&format!(
            "a wrong password answers InvalidLogin (got {e:?})"
        )),
        Ok(_) => fail("a wrong password was let in"),
    }

    let auto = connect(addr, user, pass, TransportMode::Auto).await;
    check(
        VimClient::transport(&*auto) == Transport::Json,
        "automatic transport chooses VI/JSON on an 8.0U3 vCenter",
    );
    must(auto.close().await, "close (auto)");
    must(client.close().await, "Logout over VI/JSON");
}

/// A vCenter older than 8.0U1 refuses the Hello, so vim_rs's automatic mode speaks SOAP and
/// its JSON mode gives up.
async fn run_vcenter_soap_only(addr: &str, user: &str, pass: &str) {
    let auto = connect(addr, user, pass, TransportMode::Auto).await;
    check(
        VimClient::transport(&*auto) == Transport::Soap,
        "automatic transport falls back to SOAP on a vCenter before 8.0U1",
    );
    must(auto.close().await, "close (auto)");
    let json = ClientBuilder::new(addr)
        .basic_authn(user, pass)
        .insecure(true)
        .transport(TransportMode::Json)
        .build()
        .await;
    check(
        json.is_err(),
        "VI/JSON is refused by a vCenter before 8.0U1",
    );
}

/// A JSON value's text, without quotes for a string.
fn miniserde_json(v: &miniserde::json::Value) -> String {
    use miniserde::json::{Number, Value};
    match v {
        Value::String(s) => s.clone(),
        Value::Number(Number::U64(n)) => n.to_string(),
        Value::Number(Number::I64(n)) => n.to_string(),
        Value::Number(Number::F64(n)) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

#[tokio::main]
async fn main() {
    // RUST_LOG=vim_rs::wire::soap=debug shows each call (vim_rs's wire logging).
    env_logger::init();
    let args: Vec<String> = std::env::args().collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [_, "host", addr, user, pass, full_name] => run_host(addr, user, pass, full_name).await,
        [_, "vcenter", addr, user, pass, n] => {
            let n = n.parse().unwrap_or_else(|_| fail("HOSTS is a number"));
            run_vcenter(addr, user, pass, n).await
        }
        [_, "vcenter-json", addr, user, pass, n, root] => {
            let n = n.parse().unwrap_or_else(|_| fail("HOSTS is a number"));
            run_vcenter_json(addr, user, pass, n, root).await
        }
        [_, "vcenter-soap-only", addr, user, pass] => run_vcenter_soap_only(addr, user, pass).await,
        _ => {
            eprintln!(
                "usage: esxi-sim-vim-rs-client host HOST:PORT USER PASS FULL_NAME\n       \
                 esxi-sim-vim-rs-client vcenter HOST:PORT USER PASS HOSTS"
            );
            exit(2)
        }
    }
}
