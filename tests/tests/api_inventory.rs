//! The inventory as govmomi's Finder walks it (issue 13's part that `govc ls`, `govc find` and
//! `govc host.esxcli` need): folder names and RetrieveProperties in traversal order (what
//! `mo.Ancestors` builds paths from).

use esxi_harness::client::{as_moref, moref_xml, Client};
use esxi_sim::soap::xml::Element;
use esxi_sim::soap::MoRef;
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
