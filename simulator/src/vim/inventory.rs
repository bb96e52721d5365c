//! The inventory of a standalone host: rootFolder → ha-datacenter → ha-folder-host →
//! ha-compute-res → ha-host (ids captured from a real host, facts section 3), named as govc
//! shows a real host: `/ha-datacenter/host/<name>/<name>`. Folders, the datacenter and the
//! compute resource only have properties.

use super::{ids, moref, Vim};
use crate::api::{Data, MoRef, Value};

fn no_refs() -> Value {
    Value::refs([])
}

/// A datacenter's folders by id, in inventory order: vm, host, datastore, network.
pub(crate) type Folders = [&'static str; 4];

const FOLDERS: Folders = [
    ids::VM_FOLDER,
    ids::HOST_FOLDER,
    ids::DATASTORE_FOLDER,
    ids::NETWORK_FOLDER,
];

pub(crate) fn folder_refs(f: &Folders) -> Vec<MoRef> {
    f.iter().map(|id| moref("Folder", id)).collect()
}

/// What every managed entity shows (a host's and a vCenter's inventory alike).
pub(crate) fn entity(ty: &'static str, name: &str, parent: Option<MoRef>) -> Data {
    Data::new(ty)
        .opt("parent", parent)
        .with("overallStatus", super::host_system::status("green"))
        .with("configStatus", super::host_system::status("gray"))
        .with("name", name)
}

/// A datacenter with its four folders and no datastores or networks.
pub(crate) fn datacenter(name: &str, parent: MoRef, f: &Folders) -> Data {
    entity("Datacenter", name, Some(parent))
        .with("vmFolder", moref("Folder", f[0]))
        .with("hostFolder", moref("Folder", f[1]))
        .with("datastore", no_refs())
        .with("datastoreFolder", moref("Folder", f[2]))
        .with("network", no_refs())
        .with("networkFolder", moref("Folder", f[3]))
}

/// A compute resource (or cluster) of hosts, with no datastores or networks.
pub(crate) fn compute_resource(
    ty: &'static str,
    name: &str,
    parent: MoRef,
    hosts: Vec<MoRef>,
) -> Data {
    entity(ty, name, Some(parent))
        .with("host", Value::refs(hosts))
        .with("datastore", no_refs())
        .with("network", no_refs())
}

/// The direct children of a container, in inventory order.
pub fn children(obj: &MoRef) -> Vec<MoRef> {
    match (obj.ty.as_str(), obj.id.as_str()) {
        ("Folder", ids::ROOT_FOLDER) => vec![moref("Datacenter", ids::DATACENTER)],
        ("Datacenter", ids::DATACENTER) => folder_refs(&FOLDERS),
        ("Folder", ids::HOST_FOLDER) => vec![moref("ComputeResource", ids::COMPUTE_RESOURCE)],
        ("ComputeResource", ids::COMPUTE_RESOURCE) => vec![moref("HostSystem", ids::HOST)],
        _ => Vec::new(),
    }
}

pub fn properties(vim: &Vim, obj: &MoRef) -> Option<Data> {
    let root = || moref("Folder", ids::ROOT_FOLDER);
    let dc = || moref("Datacenter", ids::DATACENTER);
    Some(match (obj.ty.as_str(), obj.id.as_str()) {
        ("Folder", ids::ROOT_FOLDER) => entity("Folder", "ha-folder-root", None)
            .with("childType", Value::strings(["Datacenter".into()]))
            .with("childEntity", Value::refs(children(obj))),
        (
            "Folder",
            id @ (ids::VM_FOLDER | ids::HOST_FOLDER | ids::DATASTORE_FOLDER | ids::NETWORK_FOLDER),
        ) => {
            // A real host names them as a vCenter does; only the ids are `ha-folder-*` (vcsim's
            // capture of a real host; issue 13): `/ha-datacenter/host/...` paths resolve.
            let (name, child_type) = match id {
                ids::VM_FOLDER => ("vm", "VirtualMachine"),
                ids::HOST_FOLDER => ("host", "ComputeResource"),
                ids::DATASTORE_FOLDER => ("datastore", "Datastore"),
                _ => ("network", "Network"),
            };
            entity("Folder", name, Some(dc()))
                .with("childType", Value::strings([child_type.to_string()]))
                .with("childEntity", Value::refs(children(obj)))
        }
        ("Datacenter", ids::DATACENTER) => datacenter("ha-datacenter", root(), &FOLDERS),
        ("ComputeResource", ids::COMPUTE_RESOURCE) => compute_resource(
            "ComputeResource",
            &vim.host.hostname(),
            moref("Folder", ids::HOST_FOLDER),
            children(obj),
        ),
        _ => return None,
    })
}
