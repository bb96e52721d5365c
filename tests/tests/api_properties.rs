//! PropertyCollector and ViewManager over the wire: Fetch of nested paths, RetrieveProperties(Ex)
//! with traversal specs and paging, container views, and property filters with WaitForUpdatesEx
//! and CancelWaitForUpdates.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use esxi_harness::client::{as_moref, moref_xml, returnval, Client};
use esxi_sim::api::MoRef;
use esxi_sim::soap::xml::Element;
use esxi_sim_tests::{host_ref, property_collector, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reads_nested_paths() {
    let ts = start("6.7U3", 20).await;
    let mut c = ts.login().await;
    let h = host_ref();
    assert_eq!(
        c.fetch_text(&h, "config.product.version").await.unwrap(),
        "6.7.0"
    );
    assert_eq!(
        c.fetch_text(&h, "config.product.build").await.unwrap(),
        "14320388"
    );
    let uuid = ts.with_host(|h| h.smbios_uuid().to_lowercase());
    assert_ne!(uuid, ts.with_host(|h| h.smbios_uuid().to_string()));
    assert_eq!(
        c.fetch_text(&h, "hardware.systemInfo.uuid").await.unwrap(),
        uuid
    );
    let mm = c
        .fetch(&h, "runtime.inMaintenanceMode")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mm.xsi_type.as_deref(), Some("boolean"));
    assert_eq!(mm.text, "false");
    let fw = c
        .fetch(&h, "configManager.firmwareSystem")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fw.xsi_type.as_deref(), Some("ManagedObjectReference"));
    assert_eq!(as_moref(&fw).unwrap(), esxi_sim_tests::firmware());
    let name = c.fetch_text(&h, "name").await.unwrap();
    assert_eq!(name, ts.with_host(|h| h.hostname()));
    // A whole data object comes typed.
    let product = c.fetch(&h, "config.product").await.unwrap().unwrap();
    assert_eq!(product.xsi_type.as_deref(), Some("AboutInfo"));
    assert_eq!(product.child_text("apiType"), Some("HostAgent"));
    // Inventory objects answer Fetch too.
    assert_eq!(
        c.fetch_text(&MoRef::new("ComputeResource", "ha-compute-res"), "name")
            .await
            .unwrap(),
        name
    );
    let dc_host_folder = c
        .fetch(&MoRef::new("Datacenter", "ha-datacenter"), "hostFolder")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        as_moref(&dc_host_folder).unwrap(),
        MoRef::new("Folder", "ha-folder-host")
    );
}

/// The traversal a govc-style client sends to find hosts from the root folder, with named
/// SelectionSpec references.
fn host_traversal(props: &str, with_host_step: bool) -> String {
    let cr = if with_host_step {
        "<selectSet><name>crToH</name></selectSet>"
    } else {
        ""
    };
    format!(
        concat!(
            "<specSet>{props}",
            "<objectSet><obj type=\"Folder\">ha-folder-root</obj><skip>true</skip>",
            "<selectSet xsi:type=\"TraversalSpec\"><name>visitFolders</name><type>Folder</type>",
            "<path>childEntity</path><skip>false</skip>",
            "<selectSet><name>visitFolders</name></selectSet>",
            "<selectSet><name>dcToHf</name></selectSet>{cr}</selectSet>",
            "<selectSet xsi:type=\"TraversalSpec\"><name>dcToHf</name><type>Datacenter</type>",
            "<path>hostFolder</path><skip>false</skip>",
            "<selectSet><name>visitFolders</name></selectSet></selectSet>",
            "<selectSet xsi:type=\"TraversalSpec\"><name>crToH</name><type>ComputeResource</type>",
            "<path>host</path><skip>false</skip></selectSet>",
            "</objectSet></specSet>"
        ),
        props = props,
        cr = cr
    )
}

fn host_props() -> &'static str {
    "<propSet><type>HostSystem</type><pathSet>name</pathSet><pathSet>runtime.connectionState</pathSet></propSet>"
}

/// name → val element of an ObjectContent.
fn prop_map(oc: &Element) -> BTreeMap<String, Element> {
    oc.all("propSet")
        .map(|p| {
            (
                p.child_text("name").unwrap().to_string(),
                p.child("val").unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_properties_ex_follows_a_traversal_chain() {
    let ts = start("6.7U3", 21).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    let spec = host_traversal(host_props(), true);
    let r = c
        .call(&pc, "RetrievePropertiesEx", &format!("{spec}<options/>"))
        .await
        .unwrap();
    let rr = returnval(&r).unwrap();
    assert_eq!(rr.xsi_type.as_deref(), Some("RetrieveResult"));
    assert!(rr.child("token").is_none(), "everything fits in one page");
    let objects: Vec<&Element> = rr.all("objects").collect();
    assert_eq!(objects.len(), 1, "only HostSystem has a PropertySpec");
    let oc = objects[0];
    assert_eq!(as_moref(oc.child("obj").unwrap()).unwrap(), host_ref());
    let props = prop_map(oc);
    assert_eq!(
        props.keys().cloned().collect::<Vec<_>>(),
        vec!["name".to_string(), "runtime.connectionState".to_string()]
    );
    assert_eq!(props["name"].text, ts.with_host(|h| h.hostname()));
    assert_eq!(props["name"].xsi_type.as_deref(), Some("string"));
    assert_eq!(props["runtime.connectionState"].text, "connected");

    // Without the ComputeResource → host step the host is not reached.
    let spec = host_traversal(host_props(), false);
    let r = c
        .call(&pc, "RetrievePropertiesEx", &format!("{spec}<options/>"))
        .await
        .unwrap();
    assert!(r.child("returnval").is_none(), "{r:?}");

    // The legacy RetrieveProperties answers the same objects as repeated returnvals.
    let spec = host_traversal(host_props(), true);
    let r = c.call(&pc, "RetrieveProperties", &spec).await.unwrap();
    let all: Vec<&Element> = r.all("returnval").collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].xsi_type.as_deref(), Some("ObjectContent"));
    assert_eq!(as_moref(all[0].child("obj").unwrap()).unwrap(), host_ref());
    assert_eq!(
        prop_map(all[0])["runtime.connectionState"].text,
        "connected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_all_properties_and_bad_specs() {
    let ts = start("6.7U3", 22).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    let spec = format!(
        "<specSet><propSet><type>HostSystem</type><all>true</all></propSet><objectSet>{}</objectSet></specSet><options/>",
        moref_xml("obj", &host_ref())
    );
    let r = c.call(&pc, "RetrievePropertiesEx", &spec).await.unwrap();
    let rr = returnval(&r).unwrap();
    let props = prop_map(rr.child("objects").unwrap());
    for want in [
        "name",
        "runtime",
        "summary",
        "hardware",
        "configManager",
        "config",
    ] {
        assert!(props.contains_key(want), "{want} in {:?}", props.keys());
    }
    assert_eq!(
        props["runtime"].xsi_type.as_deref(),
        Some("HostRuntimeInfo")
    );
    assert_eq!(
        props["runtime"].child_text("inMaintenanceMode"),
        Some("false")
    );

    // An object that does not exist.
    let bad = format!(
        "<specSet><propSet><type>HostSystem</type><all>true</all></propSet><objectSet>{}</objectSet></specSet><options/>",
        moref_xml("obj", &MoRef::new("HostSystem", "host-99"))
    );
    expect_fault(
        c.call(&pc, "RetrievePropertiesEx", &bad).await,
        "ManagedObjectNotFound",
    );
    // No specSet, or a spec without objects.
    expect_fault(
        c.call(&pc, "RetrievePropertiesEx", "<options/>").await,
        "InvalidRequest",
    );
    expect_fault(
        c.call(
            &pc,
            "RetrievePropertiesEx",
            "<specSet><propSet><type>HostSystem</type></propSet></specSet><options/>",
        )
        .await,
        "InvalidRequest",
    );
}

/// A container view of everything below the root folder, and a spec reading `name` of every
/// managed entity through it.
async fn everything_spec(c: &mut Client) -> (MoRef, String) {
    let view = call_ref(
        c,
        &view_manager(),
        "CreateContainerView",
        &format!(
            "{}<recursive>true</recursive>",
            moref_xml("container", &root_folder())
        ),
    )
    .await;
    let spec = format!(
        concat!(
            "<specSet><propSet><type>ManagedEntity</type><pathSet>name</pathSet></propSet>",
            "<objectSet>{}<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>v</name>",
            "<type>ContainerView</type><path>view</path><skip>false</skip></selectSet>",
            "</objectSet></specSet>"
        ),
        moref_xml("obj", &view)
    );
    (view, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_with_max_objects_and_continue() {
    let ts = start("6.7U3", 23).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    let (_, spec) = everything_spec(&mut c).await;

    // All at once, for reference.
    let r = c
        .call(&pc, "RetrievePropertiesEx", &format!("{spec}<options/>"))
        .await
        .unwrap();
    let all: Vec<MoRef> = returnval(&r)
        .unwrap()
        .all("objects")
        .map(|o| as_moref(o.child("obj").unwrap()).unwrap())
        .collect();
    // datacenter, 4 folders, compute resource, host.
    assert_eq!(all.len(), 7, "{all:?}");
    assert!(all.contains(&host_ref()));
    assert!(all.contains(&MoRef::new("Datacenter", "ha-datacenter")));

    let r = c
        .call(
            &pc,
            "RetrievePropertiesEx",
            &format!("{spec}<options><maxObjects>1</maxObjects></options>"),
        )
        .await
        .unwrap();
    let mut page = returnval(&r).unwrap();
    let mut paged = Vec::new();
    let mut tokens = Vec::new();
    loop {
        let objs: Vec<&Element> = page.all("objects").collect();
        assert_eq!(objs.len(), 1, "maxObjects=1");
        paged.push(as_moref(objs[0].child("obj").unwrap()).unwrap());
        let Some(token) = page.child_text("token").map(str::to_string) else {
            break;
        };
        assert!(!tokens.contains(&token), "tokens are fresh");
        tokens.push(token.clone());
        let r = c
            .call(
                &pc,
                "ContinueRetrievePropertiesEx",
                &format!("<token>{token}</token>"),
            )
            .await
            .unwrap();
        page = returnval(&r).unwrap();
    }
    assert_eq!(
        paged, all,
        "paging returns the same objects in the same order"
    );
    assert_eq!(tokens.len(), 6);

    // A used token and a made-up one are InvalidArgument.
    let e = expect_fault(
        c.call(
            &pc,
            "ContinueRetrievePropertiesEx",
            &format!("<token>{}</token>", tokens[0]),
        )
        .await,
        "InvalidArgument",
    );
    assert_eq!(e.field("invalidProperty").as_deref(), Some("token"));
    expect_fault(
        c.call(&pc, "ContinueRetrievePropertiesEx", "<token>nope</token>")
            .await,
        "InvalidArgument",
    );

    // CancelRetrievePropertiesEx ends a retrieval.
    let r = c
        .call(
            &pc,
            "RetrievePropertiesEx",
            &format!("{spec}<options><maxObjects>3</maxObjects></options>"),
        )
        .await
        .unwrap();
    let rr = returnval(&r).unwrap();
    assert_eq!(rr.all("objects").count(), 3);
    let token = rr.child_text("token").unwrap().to_string();
    c.call(
        &pc,
        "CancelRetrievePropertiesEx",
        &format!("<token>{token}</token>"),
    )
    .await
    .unwrap();
    expect_fault(
        c.call(
            &pc,
            "ContinueRetrievePropertiesEx",
            &format!("<token>{token}</token>"),
        )
        .await,
        "InvalidArgument",
    );

    // Another session cannot continue this session's retrieval.
    let r = c
        .call(
            &pc,
            "RetrievePropertiesEx",
            &format!("{spec}<options><maxObjects>1</maxObjects></options>"),
        )
        .await
        .unwrap();
    let token = returnval(&r)
        .unwrap()
        .child_text("token")
        .unwrap()
        .to_string();
    let mut other = ts.login().await;
    expect_fault(
        other
            .call(
                &pc,
                "ContinueRetrievePropertiesEx",
                &format!("<token>{token}</token>"),
            )
            .await,
        "InvalidArgument",
    );
}

async fn create_view(c: &mut Client, container: &MoRef, types: &[&str], recursive: bool) -> MoRef {
    let types: String = types.iter().map(|t| format!("<type>{t}</type>")).collect();
    call_ref(
        c,
        &view_manager(),
        "CreateContainerView",
        &format!(
            "{}{types}<recursive>{recursive}</recursive>",
            moref_xml("container", container)
        ),
    )
    .await
}

async fn view_of(c: &mut Client, view: &MoRef) -> Vec<MoRef> {
    refs_of(&c.fetch(view, "view").await.unwrap().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_views() {
    let ts = start("6.7U3", 24).await;
    let mut c = ts.login().await;
    let hosts = create_view(&mut c, &root_folder(), &["HostSystem"], true).await;
    assert_eq!(hosts.ty, "ContainerView");
    assert_eq!(view_of(&mut c, &hosts).await, vec![host_ref()]);

    let dcs = create_view(&mut c, &root_folder(), &["Datacenter"], false).await;
    assert_eq!(
        view_of(&mut c, &dcs).await,
        vec![MoRef::new("Datacenter", "ha-datacenter")]
    );
    // Not recursive: the host is not a direct child of the root folder.
    let shallow = create_view(&mut c, &root_folder(), &["HostSystem"], false).await;
    assert!(view_of(&mut c, &shallow).await.is_empty());
    // ManagedEntity matches every inventory type below.
    let entities = create_view(&mut c, &root_folder(), &["ManagedEntity"], true).await;
    assert_eq!(view_of(&mut c, &entities).await.len(), 7);

    // The ViewManager lists this session's views.
    let list = refs_of(&c.fetch(&view_manager(), "viewList").await.unwrap().unwrap());
    assert_eq!(list.len(), 4);
    assert!(list.contains(&hosts));

    // Another session cannot see them.
    let mut other = ts.login().await;
    expect_fault(other.fetch(&hosts, "view").await, "ManagedObjectNotFound");

    c.call(&hosts, "DestroyView", "").await.unwrap();
    expect_fault(c.fetch(&hosts, "view").await, "ManagedObjectNotFound");
    expect_fault(
        c.call(&hosts, "DestroyView", "").await,
        "ManagedObjectNotFound",
    );
    let list = refs_of(&c.fetch(&view_manager(), "viewList").await.unwrap().unwrap());
    assert_eq!(list.len(), 3);

    // Bad containers.
    let e = expect_fault(
        c.call(
            &view_manager(),
            "CreateContainerView",
            &format!(
                "{}<recursive>true</recursive>",
                moref_xml("container", &MoRef::new("Folder", "nope"))
            ),
        )
        .await,
        "ManagedObjectNotFound",
    );
    assert_eq!(e.field("obj").as_deref(), Some("nope"));
    expect_fault(
        c.call(
            &view_manager(),
            "CreateContainerView",
            &format!(
                "{}<recursive>true</recursive>",
                moref_xml("container", &property_collector())
            ),
        )
        .await,
        "InvalidArgument",
    );
}

// ---- filters and updates ----------------------------------------------------------------------

async fn create_mm_filter(c: &mut Client) -> MoRef {
    let spec = format!(
        "<spec><propSet><type>HostSystem</type><pathSet>runtime.inMaintenanceMode</pathSet></propSet><objectSet>{}</objectSet></spec><partialUpdates>false</partialUpdates>",
        moref_xml("obj", &host_ref())
    );
    call_ref(c, &property_collector(), "CreateFilter", &spec).await
}

fn wait_ex(version: &str, max_wait: Option<u32>) -> String {
    let opts = max_wait
        .map(|w| format!("<maxWaitSeconds>{w}</maxWaitSeconds>"))
        .unwrap_or_default();
    format!("<version>{version}</version><options>{opts}</options>")
}

/// (kind, obj, [(name, op, val text)]).
type ObjectUpdate = (String, MoRef, Vec<(String, String, String)>);

/// Every ObjectUpdate in an UpdateSet.
fn object_updates(set: &Element) -> Vec<ObjectUpdate> {
    set.all("filterSet")
        .flat_map(|f| f.all("objectSet"))
        .map(|o| {
            let changes = o
                .all("changeSet")
                .map(|c| {
                    (
                        c.child_text("name").unwrap_or_default().to_string(),
                        c.child_text("op").unwrap_or_default().to_string(),
                        c.child_text("val").unwrap_or_default().to_string(),
                    )
                })
                .collect();
            (
                o.child_text("kind").unwrap().to_string(),
                as_moref(o.child("obj").unwrap()).unwrap(),
                changes,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_report_enter_then_modify() {
    let ts = start("6.7U3", 25).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    let filter = create_mm_filter(&mut c).await;
    assert_eq!(filter.ty, "PropertyFilter");
    assert_eq!(
        c.fetch_text(&filter, "partialUpdates").await.unwrap(),
        "false"
    );

    let r = c
        .call(&pc, "WaitForUpdatesEx", &wait_ex("", None))
        .await
        .unwrap();
    let set = returnval(&r).unwrap();
    assert_eq!(set.xsi_type.as_deref(), Some("UpdateSet"));
    let v1 = set.child_text("version").unwrap().to_string();
    assert!(!v1.is_empty());
    let f = set.child("filterSet").unwrap();
    assert_eq!(as_moref(f.child("filter").unwrap()).unwrap(), filter);
    assert_eq!(
        object_updates(&set),
        vec![(
            "enter".to_string(),
            host_ref(),
            vec![(
                "runtime.inMaintenanceMode".to_string(),
                "assign".to_string(),
                "false".to_string()
            )]
        )]
    );

    // Nothing changed: an immediate empty answer.
    let started = std::time::Instant::now();
    let r = c
        .call(&pc, "WaitForUpdatesEx", &wait_ex(&v1, Some(0)))
        .await
        .unwrap();
    assert!(r.child("returnval").is_none(), "{r:?}");
    assert!(started.elapsed() < Duration::from_millis(500));
    // CheckForUpdates too.
    let r = c
        .call(&pc, "CheckForUpdates", &format!("<version>{v1}</version>"))
        .await
        .unwrap();
    assert!(r.child("returnval").is_none(), "{r:?}");

    // A change while waiting is reported as a modify.
    host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    let started = std::time::Instant::now();
    let r = c
        .call(&pc, "WaitForUpdatesEx", &wait_ex(&v1, Some(5)))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let set = returnval(&r).unwrap();
    let v2 = set.child_text("version").unwrap().to_string();
    assert_ne!(v1, v2);
    assert_eq!(
        object_updates(&set),
        vec![(
            "modify".to_string(),
            host_ref(),
            vec![(
                "runtime.inMaintenanceMode".to_string(),
                "assign".to_string(),
                "true".to_string()
            )]
        )]
    );

    // A short wait with nothing to report ends empty after about maxWaitSeconds.
    let started = std::time::Instant::now();
    let r = c
        .call(&pc, "WaitForUpdatesEx", &wait_ex(&v2, Some(1)))
        .await
        .unwrap();
    assert!(r.child("returnval").is_none());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(2),
        "{waited:?}"
    );

    // The collector lists the filter; after DestroyPropertyFilter it is gone.
    let listed = refs_of(&c.fetch(&pc, "filter").await.unwrap().unwrap());
    assert_eq!(listed, vec![filter.clone()]);
    c.call(&filter, "DestroyPropertyFilter", "").await.unwrap();
    expect_fault(
        c.fetch(&filter, "partialUpdates").await,
        "ManagedObjectNotFound",
    );
    expect_fault(
        c.call(&filter, "DestroyPropertyFilter", "").await,
        "ManagedObjectNotFound",
    );
    assert!(refs_of(&c.fetch(&pc, "filter").await.unwrap().unwrap()).is_empty());
    // With no filter left there is nothing to report, even from version "".
    let r = c
        .call(&pc, "WaitForUpdatesEx", &wait_ex("", Some(0)))
        .await
        .unwrap();
    assert!(r.child("returnval").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_wait_for_updates_waits_for_a_task() {
    // pyVim.task.WaitForTask: CreateFilter on the task's info.state, WaitForUpdates (no options).
    let ts = start("6.7U3", 26).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    let task = host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    let spec = format!(
        "<spec><propSet><type>Task</type><pathSet>info.state</pathSet></propSet><objectSet>{}</objectSet></spec><partialUpdates>false</partialUpdates>",
        moref_xml("obj", &task)
    );
    let filter = call_ref(&mut c, &pc, "CreateFilter", &spec).await;
    let mut version = String::new();
    let mut states = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while states.last().map(String::as_str) != Some("success") {
        assert!(std::time::Instant::now() < deadline, "{states:?}");
        let r = c
            .call(
                &pc,
                "WaitForUpdates",
                &format!("<version>{version}</version>"),
            )
            .await
            .unwrap();
        let set = returnval(&r).unwrap();
        version = set.child_text("version").unwrap().to_string();
        for (_, obj, changes) in object_updates(&set) {
            assert_eq!(obj, task);
            states.extend(changes.into_iter().map(|(_, _, v)| v));
        }
    }
    assert!(
        matches!(states[0].as_str(), "queued" | "running"),
        "{states:?}"
    );
    c.call(&filter, "DestroyPropertyFilter", "").await.unwrap();

    // CreateFilter on an object that does not exist fails at once.
    let bad = format!(
        "<spec><propSet><type>Task</type><pathSet>info.state</pathSet></propSet><objectSet>{}</objectSet></spec><partialUpdates>false</partialUpdates>",
        moref_xml("obj", &MoRef::new("Task", "haTask-nope"))
    );
    expect_fault(
        c.call(&pc, "CreateFilter", &bad).await,
        "ManagedObjectNotFound",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_wait_for_updates_from_a_second_connection() {
    let ts = start("6.7U3", 27).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    create_mm_filter(&mut c).await;
    let r = c
        .call(&pc, "WaitForUpdatesEx", &wait_ex("", None))
        .await
        .unwrap();
    let v1 = returnval(&r)
        .unwrap()
        .child_text("version")
        .unwrap()
        .to_string();

    // The same session on another connection.
    let mut second = ts.client();
    second.set_cookie(c.cookie().map(str::to_string));
    let waiter = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let r = c.call(&pc, "WaitForUpdatesEx", &wait_ex(&v1, None)).await;
        (r, started.elapsed(), c)
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        !waiter.is_finished(),
        "the wait blocks while nothing changes"
    );
    second
        .call(&property_collector(), "CancelWaitForUpdates", "")
        .await
        .unwrap();
    let (r, waited, mut c) = tokio::time::timeout(Duration::from_secs(3), waiter)
        .await
        .expect("the wait ends after CancelWaitForUpdates")
        .unwrap();
    expect_fault(r, "RequestCanceled");
    assert!(waited >= Duration::from_millis(250));
    // The session is fine afterwards and the next wait works normally.
    let r = c
        .call(
            &property_collector(),
            "WaitForUpdatesEx",
            &wait_ex("", Some(0)),
        )
        .await
        .unwrap();
    assert!(r.child("returnval").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_without_a_pending_wait_has_no_lasting_effect() {
    let ts = start("6.7U3", 28).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    create_mm_filter(&mut c).await;
    c.call(&pc, "CancelWaitForUpdates", "").await.unwrap();
    // No wait was outstanding: the next one must report the filter's initial state.
    let r = c.call(&pc, "WaitForUpdatesEx", &wait_ex("", Some(0))).await;
    let r = r.unwrap();
    assert!(r.child("returnval").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_updates_rejects_a_version_it_never_issued() {
    let ts = start("6.7U3", 30).await;
    let mut c = ts.login().await;
    create_mm_filter(&mut c).await;
    expect_fault(
        c.call(
            &property_collector(),
            "WaitForUpdatesEx",
            &wait_ex("no-such-version", Some(0)),
        )
        .await,
        "InvalidCollectorVersion",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_belong_to_their_session() {
    let ts = start("6.7U3", 29).await;
    let mut c = ts.login().await;
    let filter = create_mm_filter(&mut c).await;
    let mut other = ts.login().await;
    expect_fault(
        other.fetch(&filter, "partialUpdates").await,
        "ManagedObjectNotFound",
    );
    expect_fault(
        other.call(&filter, "DestroyPropertyFilter", "").await,
        "ManagedObjectNotFound",
    );
    // The other session has no filters, so it gets no updates.
    let r = other
        .call(
            &property_collector(),
            "WaitForUpdatesEx",
            &wait_ex("", Some(0)),
        )
        .await
        .unwrap();
    assert!(r.child("returnval").is_none());
}

/// Enum-valued properties read where the schema says anyType (Fetch, DynamicProperty.val) name
/// their enum type in `xsi:type`, as a real host writes them; typed clients (vim_rs) reject
/// `xsd:string` there (issue 13).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enum_properties_carry_their_enum_type() {
    let ts = start("6.7U3", 29).await;
    let mut c = ts.login().await;
    let h = host_ref();
    for (path, ty, text) in [
        (
            "runtime.connectionState",
            "HostSystemConnectionState",
            "connected",
        ),
        ("runtime.powerState", "HostSystemPowerState", "poweredOn"),
        ("overallStatus", "ManagedEntityStatus", "green"),
        ("summary.overallStatus", "ManagedEntityStatus", "green"),
    ] {
        let v = c.fetch(&h, path).await.unwrap().unwrap();
        assert_eq!(v.xsi_type.as_deref(), Some(ty), "{path}");
        assert_eq!(v.text, text, "{path}");
    }
    // Inside a data object the field is plain text, as the schema types it.
    let rt = c.fetch(&h, "runtime").await.unwrap().unwrap();
    let cs = rt.child("connectionState").unwrap();
    assert_eq!(cs.xsi_type, None);
    assert_eq!(cs.text, "connected");
    // A task's state.
    let task = host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    c.wait_task(&task).await.unwrap();
    let state = c.fetch(&task, "info.state").await.unwrap().unwrap();
    assert_eq!(state.xsi_type.as_deref(), Some("TaskInfoState"));
    assert_eq!(state.text, "success");
}

/// ListView (issue 13): govmomi's `property.Wait` and `govc tasks` watch tasks through one:
/// CreateListView, a filter over `ListView.view`, ModifyListView/ResetListView, DestroyView.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_views_as_govmomi_watches_tasks() {
    let ts = start("6.7U3", 30).await;
    let mut c = ts.login().await;
    let task = host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    let ghost = MoRef::new("Task", "haTask-ha-host-vim.HostSystem.nothing-1");
    let lv = call_ref(
        &mut c,
        &view_manager(),
        "CreateListView",
        &format!("{}{}", moref_xml("obj", &task), moref_xml("obj", &ghost)),
    )
    .await;
    assert_eq!(lv.ty, "ListView");
    // Objects that do not exist are left out.
    let view = c.fetch(&lv, "view").await.unwrap().unwrap();
    assert_eq!(refs_of(&view), vec![task.clone()]);

    // A filter through the list to the task's info.state, as property.Wait builds it.
    let pc = property_collector();
    let spec = format!(
        "<spec><propSet><type>Task</type><pathSet>info.state</pathSet></propSet><objectSet>{}<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><type>ListView</type><path>view</path><skip>false</skip></selectSet></objectSet></spec><partialUpdates>false</partialUpdates>",
        moref_xml("obj", &lv)
    );
    call_ref(&mut c, &pc, "CreateFilter", &spec).await;
    ts.skip(Duration::from_secs(5));
    let r = c
        .call(
            &pc,
            "WaitForUpdatesEx",
            "<version></version><options><maxWaitSeconds>0</maxWaitSeconds></options>",
        )
        .await
        .unwrap();
    let set = returnval(&r).unwrap();
    let oc = set.child("filterSet").unwrap().child("objectSet").unwrap();
    assert_eq!(as_moref(oc.child("obj").unwrap()).unwrap(), task);
    assert_eq!(
        oc.child("changeSet").unwrap().child_text("val"),
        Some("success")
    );

    // Modify: remove the task, add the ghost (unresolved) and the host.
    let r = c
        .call(
            &lv,
            "ModifyListView",
            &format!(
                "{}{}{}",
                moref_xml("add", &ghost),
                moref_xml("add", &host_ref()),
                moref_xml("remove", &task)
            ),
        )
        .await
        .unwrap();
    assert_eq!(refs_of(&r), vec![ghost.clone()], "the unresolved ones");
    let view = c.fetch(&lv, "view").await.unwrap().unwrap();
    assert_eq!(refs_of(&view), vec![host_ref()]);
    let r = c
        .call(&lv, "ResetListView", &moref_xml("obj", &task))
        .await
        .unwrap();
    assert!(refs_of(&r).is_empty());
    let view = c.fetch(&lv, "view").await.unwrap().unwrap();
    assert_eq!(refs_of(&view), vec![task.clone()]);
    // The view manager lists it; another session cannot use it; DestroyView ends it.
    let list = c.fetch(&view_manager(), "viewList").await.unwrap().unwrap();
    assert!(refs_of(&list).contains(&lv));
    let mut other = ts.login().await;
    expect_fault(other.fetch(&lv, "view").await, "ManagedObjectNotFound");
    c.call(&lv, "DestroyView", "").await.unwrap();
    expect_fault(c.fetch(&lv, "view").await, "ManagedObjectNotFound");
}

/// CreatePropertyCollector / DestroyPropertyCollector (issue 13): govmomi's `property.Wait` (every
/// govc task wait) makes a collector of its own, filters on it, waits on it and destroys it.
/// Its filters and versions are its own; the endpoint's collector does not see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_property_collectors_have_their_own_filters() {
    let ts = start("6.7U3", 31).await;
    let mut c = ts.login().await;
    let pc = property_collector();
    let mine = call_ref(&mut c, &pc, "CreatePropertyCollector", "").await;
    assert_eq!(mine.ty, "PropertyCollector");
    assert_ne!(mine, pc);
    let task = host_task(&mut c, "EnterMaintenanceMode_Task", "<timeout>0</timeout>").await;
    let spec = format!(
        "<spec><propSet><type>Task</type><pathSet>info.state</pathSet></propSet><objectSet>{}</objectSet></spec><partialUpdates>false</partialUpdates>",
        moref_xml("obj", &task)
    );
    let filter = call_ref(&mut c, &mine, "CreateFilter", &spec).await;
    let listed = c.fetch(&mine, "filter").await.unwrap().unwrap();
    assert_eq!(refs_of(&listed), vec![filter.clone()]);
    let shared = c.fetch(&pc, "filter").await.unwrap();
    assert!(shared.map(|e| refs_of(&e)).unwrap_or_default().is_empty());

    let wait = "<version></version><options><maxWaitSeconds>0</maxWaitSeconds></options>";
    // The endpoint's collector has no filters of this session: nothing to report.
    let r = c.call(&pc, "WaitForUpdatesEx", wait).await.unwrap();
    assert!(r.child("returnval").is_none(), "{r:?}");
    let r = c.call(&mine, "WaitForUpdatesEx", wait).await.unwrap();
    let set = returnval(&r).unwrap();
    assert_eq!(set.child_text("version"), Some("1"));
    let fs = set.child("filterSet").unwrap();
    assert_eq!(as_moref(fs.child("filter").unwrap()).unwrap(), filter);

    // Another session cannot use it; the endpoint's own cannot be destroyed.
    let mut other = ts.login().await;
    expect_fault(
        other.call(&mine, "WaitForUpdatesEx", wait).await,
        "ManagedObjectNotFound",
    );
    expect_fault(
        c.call(&pc, "DestroyPropertyCollector", "").await,
        "NotSupported",
    );
    // Destroying it destroys its filters.
    c.call(&mine, "DestroyPropertyCollector", "").await.unwrap();
    expect_fault(
        c.fetch(&filter, "partialUpdates").await,
        "ManagedObjectNotFound",
    );
    expect_fault(
        c.call(&mine, "WaitForUpdatesEx", wait).await,
        "ManagedObjectNotFound",
    );
}
