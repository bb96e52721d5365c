//! The inventory of a standalone host: rootFolder → ha-datacenter → ha-folder-host →
//! ha-compute-res → ha-host (ids captured from a real host, facts section 3). Folders,
//! the datacenter and the compute resource only have properties.

use super::{ids, moref, Vim};
use crate::soap::{Data, MoRef, Value};

fn no_refs() -> Value {
    Value::refs([])
}

/// The direct children of a container, in inventory order.
pub fn children(obj: &MoRef) -> Vec<MoRef> {
    match (obj.ty.as_str(), obj.id.as_str()) {
        ("Folder", ids::ROOT_FOLDER) => vec![moref("Datacenter", ids::DATACENTER)],
        ("Datacenter", ids::DATACENTER) => vec![
            moref("Folder", ids::VM_FOLDER),
            moref("Folder", ids::HOST_FOLDER),
            moref("Folder", ids::DATASTORE_FOLDER),
            moref("Folder", ids::NETWORK_FOLDER),
        ],
        ("Folder", ids::HOST_FOLDER) => vec![moref("ComputeResource", ids::COMPUTE_RESOURCE)],
        ("ComputeResource", ids::COMPUTE_RESOURCE) => vec![moref("HostSystem", ids::HOST)],
        _ => Vec::new(),
    }
}

/// Every object below a container (a container view's contents).
pub fn descendants(obj: &MoRef, recursive: bool, out: &mut Vec<MoRef>) {
    for c in children(obj) {
        out.push(c.clone());
        if recursive {
            descendants(&c, true, out);
        }
    }
}

pub fn properties(vim: &Vim, obj: &MoRef) -> Option<Data> {
    let entity = |ty: &'static str, name: &str, parent: Option<MoRef>| {
        Data::new(ty)
            .opt("parent", parent)
            .with("overallStatus", "green")
            .with("configStatus", "gray")
            .with("name", name)
    };
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
            let child_type = match id {
                ids::VM_FOLDER => "VirtualMachine",
                ids::HOST_FOLDER => "ComputeResource",
                ids::DATASTORE_FOLDER => "Datastore",
                _ => "Network",
            };
            entity("Folder", id, Some(dc()))
                .with("childType", Value::strings([child_type.to_string()]))
                .with("childEntity", Value::refs(children(obj)))
        }
        ("Datacenter", ids::DATACENTER) => entity("Datacenter", "ha-datacenter", Some(root()))
            .with("vmFolder", moref("Folder", ids::VM_FOLDER))
            .with("hostFolder", moref("Folder", ids::HOST_FOLDER))
            .with("datastore", no_refs())
            .with("datastoreFolder", moref("Folder", ids::DATASTORE_FOLDER))
            .with("network", no_refs())
            .with("networkFolder", moref("Folder", ids::NETWORK_FOLDER)),
        ("ComputeResource", ids::COMPUTE_RESOURCE) => entity(
            "ComputeResource",
            &vim.host.hostname(),
            Some(moref("Folder", ids::HOST_FOLDER)),
        )
        .with("host", Value::refs(children(obj)))
        .with("datastore", no_refs())
        .with("network", no_refs()),
        _ => return None,
    })
}
