//! `vim_rs` 0.7 (crates.io, nobody here wrote it) against a running `esxi-sim serve`: its SOAP
//! transport, its typed retrieval (`vim_retrievable!`: every row goes through `TryFrom`, so an
//! enum sent as `xsd:string` or a missing required field drops the row), its generated managed
//! object stubs, its event decoding, and its `TaskTracker` (a ListView and a PropertyCollector
//! of its own, WaitForUpdatesEx).
//!
//! ```text
//! esxi-sim-vim-rs-client host    HOST:PORT USER PASS FULL_NAME
//! esxi-sim-vim-rs-client vcenter HOST:PORT USER PASS HOSTS
//! ```
//! Each check prints `ok: ...`; the first failure prints `FAIL: ...` and exits 1.

use std::process::exit;
use std::sync::Arc;

use vim_rs::core::client::{Client, ClientBuilder, Transport, TransportMode, VimClient};
use vim_rs::core::pc_retrieve::ObjectRetriever;
use vim_rs::core::tasks::TaskTracker;
use vim_rs::mo::{EventManager, HostFirmwareSystem, HostSystem, SearchIndex};
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

    let fw_ref = host
        .firmware_system
        .as_ref()
        .unwrap_or_else(|| fail("configManager.firmwareSystem is unset"));
    let fw = HostFirmwareSystem::new(client.clone(), &fw_ref.value);
    let url = must(
        fw.backup_firmware_configuration().await,
        "BackupFirmwareConfiguration",
    );
    check(
        url.contains("/downloads/") && url.ends_with(".tgz"),
        &format!("BackupFirmwareConfiguration answers a bundle URL ({url})"),
    );
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
    let fw_ref = all[0]
        .firmware_system
        .as_ref()
        .unwrap_or_else(|| fail("configManager.firmwareSystem is unset"));
    let fw = HostFirmwareSystem::new(client.clone(), &fw_ref.value);
    let url = must(
        fw.backup_firmware_configuration().await,
        "BackupFirmwareConfiguration through the vCenter",
    );
    check(
        url.contains("/downloads/"),
        &format!("the vCenter forwards BackupFirmwareConfiguration ({url})"),
    );
    must(client.close().await, "close");
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
        _ => {
            eprintln!(
                "usage: esxi-sim-vim-rs-client host HOST:PORT USER PASS FULL_NAME\n       \
                 esxi-sim-vim-rs-client vcenter HOST:PORT USER PASS HOSTS"
            );
            exit(2)
        }
    }
}
