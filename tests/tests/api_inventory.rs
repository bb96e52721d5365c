//! The inventory as govmomi's Finder walks it (issue 13's part that `govc ls`, `govc find` and
//! `govc host.esxcli` need): folder names, RetrieveProperties in traversal order (what
//! `mo.Ancestors` builds paths from), and SearchIndex on a host and on a vCenter.

mod common;

use std::net::Ipv4Addr;

use common::*;
use esxi_harness::client::{as_moref, moref_xml, returnval, Client, Trust};
use esxi_sim::api::MoRef;
use esxi_sim::fleet::Fleet;
use esxi_sim::soap::xml::Element;
use esxi_sim_tests::{host_ref, property_collector, start};

/// govmomi's `mo.Ancestors` request: the object and its parents (name, parent).
fn ancestors_spec(obj: &MoRef) -> String {
    format!(
        concat!(
            "<specSet><propSet><type>ManagedEntity</type><pathSet>name</pathSet>",
            "<pathSet>parent</pathSet></propSet>",
            "<objectSet>{obj}<skip>false</skip>",
            "<selectSet xsi:type=\"TraversalSpec\"><name>traverseParent</name>",
            "<type>ManagedEntity</type><path>parent</path><skip>false</skip>",
            "<selectSet xsi:type=\"SelectionSpec\"><name>traverseParent</name></selectSet>",
            "</selectSet></objectSet></specSet>"
        ),
        obj = moref_xml("obj", obj)
    )
}

/// (object, name, parent) of each ObjectContent, in the order sent.
fn entities(resp: &Element) -> Vec<(MoRef, String, Option<MoRef>)> {
    resp.all("returnval")
        .map(|oc| {
            let obj = as_moref(oc.child("obj").unwrap()).unwrap();
            let mut name = String::new();
            let mut parent = None;
            for p in oc.all("propSet") {
                let val = p.child("val").unwrap();
                match p.child_text("name") {
                    Some("name") => name = val.text.clone(),
                    Some("parent") => parent = Some(as_moref(val).unwrap()),
                    _ => {}
                }
            }
            (obj, name, parent)
        })
        .collect()
}

/// govmomi's `mo.Ancestors` loop, as written there: each round takes the first entity whose
/// parent is the last one found, or the first entity with no parent. Then the inventory path
/// as `find.InventoryPath` joins it (the root's name left out).
fn govmomi_inventory_path(list: &[(MoRef, String, Option<MoRef>)]) -> String {
    let mut out: Vec<&(MoRef, String, Option<MoRef>)> = Vec::new();
    while out.len() < list.len() {
        let find = out.last().map(|e| e.0.clone());
        let next = list.iter().find(|e| match &e.2 {
            None => true,
            Some(p) => Some(p) == find.as_ref(),
        });
        out.push(next.expect("an entity to add"));
    }
    out.iter()
        .filter(|e| e.2.is_some())
        .map(|e| format!("/{}", e.1))
        .collect()
}

async fn ancestors(c: &mut Client, pc: &MoRef, obj: &MoRef) -> Vec<(MoRef, String, Option<MoRef>)> {
    let r = c
        .call(pc, "RetrieveProperties", &ancestors_spec(obj))
        .await
        .unwrap();
    entities(&r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_inventory_has_real_names_and_ancestors_in_traversal_order() {
    let ts = start("8.0U3", 31).await;
    let mut c = ts.login().await;
    let name = ts.with_host(|h| h.hostname());
    let pc = property_collector();
    let list = ancestors(&mut c, &pc, &MoRef::new("Folder", "ha-folder-host")).await;
    let seen: Vec<(&str, &str)> = list
        .iter()
        .map(|(o, n, _)| (o.id.as_str(), n.as_str()))
        .collect();
    // The start object first, then its parents as reached; the folder is named `host`.
    assert_eq!(
        seen,
        [
            ("ha-folder-host", "host"),
            ("ha-datacenter", "ha-datacenter"),
            ("ha-folder-root", "ha-folder-root"),
        ]
    );
    assert_eq!(govmomi_inventory_path(&list), "/ha-datacenter/host");
    let list = ancestors(&mut c, &pc, &host_ref()).await;
    assert_eq!(
        govmomi_inventory_path(&list),
        format!("/ha-datacenter/host/{name}/{name}")
    );
    for (id, want) in [
        ("ha-folder-vm", "vm"),
        ("ha-folder-datastore", "datastore"),
        ("ha-folder-network", "network"),
    ] {
        let f = MoRef::new("Folder", id);
        assert_eq!(c.fetch_text(&f, "name").await.unwrap(), want);
    }
}

fn search_index() -> MoRef {
    MoRef::new("SearchIndex", "ha-searchindex")
}

/// A SearchIndex call's single result (None: found nothing).
async fn find(c: &mut Client, si: &MoRef, method: &str, params: &str) -> Option<MoRef> {
    let r = c.call(si, method, params).await.unwrap();
    r.child("returnval").map(|v| as_moref(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_search_index_finds_it_by_path_child_uuid_dns_name_and_address() {
    let ts = start("8.0U3", 32).await;
    let mut c = ts.login().await;
    let sc = c.service_content().await.unwrap();
    let si = as_moref(sc.child("searchIndex").expect("ServiceContent.searchIndex")).unwrap();
    assert_eq!(si, search_index());
    let (name, uuid) = ts.with_host(|h| (h.hostname(), h.api_uuid()));
    let host = Some(host_ref());
    let si = &si;

    let path = |p: &str| format!("<inventoryPath>{p}</inventoryPath>");
    for p in [
        format!("ha-datacenter/host/{name}/{name}"),
        format!("/ha-datacenter/host/{name}/{name}/"),
    ] {
        assert_eq!(
            find(&mut c, si, "FindByInventoryPath", &path(&p)).await,
            host,
            "{p}"
        );
    }
    assert_eq!(
        find(
            &mut c,
            si,
            "FindByInventoryPath",
            &path("ha-datacenter/host")
        )
        .await,
        Some(MoRef::new("Folder", "ha-folder-host"))
    );
    assert_eq!(
        find(&mut c, si, "FindByInventoryPath", &path("/")).await,
        Some(root_folder())
    );
    for p in [
        "ha-datacenter/hosts",
        "nope",
        "",
        "ha-datacenter/ha-folder-host",
    ] {
        assert_eq!(
            find(&mut c, si, "FindByInventoryPath", &path(p)).await,
            None,
            "{p}"
        );
    }

    let child = |e: &MoRef, n: &str| format!("{}<name>{n}</name>", moref_xml("entity", e));
    let dc = MoRef::new("Datacenter", "ha-datacenter");
    assert_eq!(
        find(&mut c, si, "FindChild", &child(&dc, "vm")).await,
        Some(MoRef::new("Folder", "ha-folder-vm"))
    );
    assert_eq!(find(&mut c, si, "FindChild", &child(&dc, "Vm")).await, None);
    let cr = MoRef::new("ComputeResource", "ha-compute-res");
    assert_eq!(
        find(&mut c, si, "FindChild", &child(&cr, &name)).await,
        host
    );

    let dc_xml = moref_xml("datacenter", &dc);
    for (method, key, value) in [
        ("FindByUuid", "uuid", uuid.clone()),
        ("FindByUuid", "uuid", uuid.to_uppercase()),
        ("FindByDnsName", "dnsName", name.clone()),
        ("FindByIp", "ip", "127.0.0.1".to_string()),
    ] {
        for dc in ["", dc_xml.as_str()] {
            let hit = format!("{dc}<{key}>{value}</{key}><vmSearch>false</vmSearch>");
            assert_eq!(
                find(&mut c, si, method, &hit).await,
                host,
                "{method} {value}"
            );
            // No virtual machines: a VM search finds nothing.
            let vm = format!("{dc}<{key}>{value}</{key}><vmSearch>true</vmSearch>");
            assert_eq!(find(&mut c, si, method, &vm).await, None, "{method} vm");
        }
        let miss = format!("<{key}>x{value}</{key}><vmSearch>false</vmSearch>");
        assert_eq!(find(&mut c, si, method, &miss).await, None, "{method} miss");
        // The FindAll form answers a list.
        let all = method.replace("FindBy", "FindAllBy");
        let r = c
            .call(
                si,
                &all,
                &format!("<{key}>{value}</{key}><vmSearch>false</vmSearch>"),
            )
            .await
            .unwrap();
        let found: Vec<MoRef> = r.all("returnval").map(|v| as_moref(v).unwrap()).collect();
        assert_eq!(found, [host_ref()], "{all}");
    }

    // Bad input is a fault in SOAP's terms, never an answer.
    let ghost = MoRef::new("Folder", "ha-folder-nope");
    expect_fault(
        c.call(si, "FindChild", &child(&ghost, "x")).await,
        "ManagedObjectNotFound",
    );
    expect_fault(
        c.call(si, "FindByIp", "<ip>127.0.0.1</ip>").await,
        "InvalidRequest",
    );
    expect_fault(
        c.call(si, "FindByIp", "<ip>1</ip><vmSearch>maybe</vmSearch>")
            .await,
        "InvalidRequest",
    );
    let bad_dc = moref_xml("datacenter", &MoRef::new("Datacenter", "datacenter-3"));
    expect_fault(
        c.call(
            si,
            "FindByIp",
            &format!("{bad_dc}<ip>1</ip><vmSearch>false</vmSearch>"),
        )
        .await,
        "ManagedObjectNotFound",
    );
    expect_fault(c.call(si, "FindEverything", "").await, "MethodNotFound");
}

async fn vcenter(hosts: usize) -> Fleet {
    vcenter_fleet(hosts, Ipv4Addr::new(127, 1, 3, 1)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenters_paths_and_search_index_name_its_hosts() {
    let fleet = vcenter(3).await;
    let mut c = Client::new(&fleet.vcenter_url().unwrap(), Trust::Any).unwrap();
    c.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let sc = c.service_content().await.unwrap();
    let si = as_moref(sc.child("searchIndex").unwrap()).unwrap();
    assert_eq!(si, MoRef::new("SearchIndex", "SearchIndex"));
    let pc = as_moref(sc.child("propertyCollector").unwrap()).unwrap();

    // Host 2 (host-14), added by its address.
    let h2 = MoRef::new("HostSystem", "host-14");
    let list = ancestors(&mut c, &pc, &h2).await;
    assert_eq!(list[0].0, h2, "the start object first");
    assert_eq!(
        govmomi_inventory_path(&list),
        "/Datacenter/host/Cluster-1/127.1.3.3"
    );

    let si = &si;
    let path = "<inventoryPath>/Datacenter/host/Cluster-1/127.1.3.3</inventoryPath>";
    assert_eq!(
        find(&mut c, si, "FindByInventoryPath", path).await,
        Some(h2.clone())
    );
    let by_ip = "<ip>127.1.3.2</ip><vmSearch>false</vmSearch>";
    assert_eq!(
        find(&mut c, si, "FindByIp", by_ip).await,
        Some(MoRef::new("HostSystem", "host-13"))
    );
    let dns = {
        let h = fleet.hosts()[2].shared.lock();
        h.host.hostname()
    };
    let by_dns = format!("<dnsName>{dns}</dnsName><vmSearch>false</vmSearch>");
    assert_eq!(
        find(&mut c, si, "FindByDnsName", &by_dns).await,
        Some(h2.clone())
    );
    let uuid = {
        let h = fleet.hosts()[0].shared.lock();
        h.host.api_uuid()
    };
    let by_uuid = format!("<uuid>{uuid}</uuid><vmSearch>false</vmSearch>");
    assert_eq!(
        find(&mut c, si, "FindByUuid", &by_uuid).await,
        Some(MoRef::new("HostSystem", "host-12"))
    );
    let cluster = MoRef::new("ClusterComputeResource", "domain-c8");
    let child = format!("{}<name>127.1.3.1</name>", moref_xml("entity", &cluster));
    assert_eq!(
        find(&mut c, si, "FindChild", &child).await,
        Some(MoRef::new("HostSystem", "host-12"))
    );
    let r = c
        .call(
            si,
            "FindAllByIp",
            "<ip>127.1.3.9</ip><vmSearch>false</vmSearch>",
        )
        .await
        .unwrap();
    assert!(returnval(&r).is_err(), "no host at that address");
    fleet.shutdown().await;
}

/// A vCenter's TaskManager lists its hosts' recent tasks in vCenter ids (issue 13: `govc tasks`
/// printed nothing), and each one reads through the vCenter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vcenters_recent_tasks_are_its_hosts() {
    let fleet = vcenter_fleet(3, Ipv4Addr::new(127, 1, 3, 41)).await;
    let mut c = Client::new(&fleet.vcenter_url().unwrap(), Trust::Any).unwrap();
    c.login("administrator@vsphere.local", "VMware1!")
        .await
        .unwrap();
    let tm = MoRef::new("TaskManager", "TaskManager");
    let none = c.fetch(&tm, "recentTask").await.unwrap();
    assert!(none.map(|e| refs_of(&e)).unwrap_or_default().is_empty());
    let mut made = Vec::new();
    for h in ["host-13", "host-12"] {
        made.push(
            call_ref(
                &mut c,
                &MoRef::new("HostSystem", h),
                "EnterMaintenanceMode_Task",
                "<timeout>0</timeout>",
            )
            .await,
        );
    }
    let recent = refs_of(&c.fetch(&tm, "recentTask").await.unwrap().unwrap());
    assert_eq!(recent.len(), 2, "{recent:?}");
    for t in &made {
        assert!(recent.contains(t), "{t} in {recent:?}");
        assert!(t.id.starts_with("task-1"), "{t}");
        let name = c.fetch_text(t, "info.entityName").await.unwrap();
        assert!(name.starts_with("127.1.3.4"), "{name}");
    }
}
