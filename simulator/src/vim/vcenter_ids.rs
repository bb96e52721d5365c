//! The grammar of a vCenter's object ids, in one place (facts section 3): its own objects'
//! fixed ids, and the ids of a host's objects, `<prefix><HOST_BASE + i>` (`host-12`,
//! `firmwareSystem-12`: the prefixes are [`super::registry::HOST_OBJECTS`]'), its tasks
//! `task-<HOST_BASE + i>-<n>` and its cluster `domain-c<CLUSTER_BASE + k>`. Numbers are
//! written as vpxd writes them: no sign, no leading zero, at most 9 digits, so `host-012` names
//! nothing. Whether such a host exists is the estate's question, not the grammar's.

// ---- the vCenter's own objects --------------------------------------------------------------

pub const ROOT_FOLDER: &str = "group-d1";
pub const DATACENTER: &str = "datacenter-3";
pub const VM_FOLDER: &str = "group-v4";
pub const HOST_FOLDER: &str = "group-h5";
pub const DATASTORE_FOLDER: &str = "group-s6";
pub const NETWORK_FOLDER: &str = "group-n7";
pub const PROPERTY_COLLECTOR: &str = "propertyCollector";
pub const SESSION_MANAGER: &str = "SessionManager";
pub const TASK_MANAGER: &str = "TaskManager";
pub const VIEW_MANAGER: &str = "ViewManager";
pub const SEARCH_INDEX: &str = "SearchIndex";
pub const EVENT_MANAGER: &str = "EventManager";
pub const PERF_MANAGER: &str = "PerfMgr";
pub const SETTING: &str = "VpxSettings";
pub const CUSTOM_FIELDS_MANAGER: &str = "CustomFieldsManager";
pub const AUTHORIZATION_MANAGER: &str = "AuthorizationManager";
pub const USER_DIRECTORY: &str = "UserDirectory";
pub const DIAGNOSTIC_MANAGER: &str = "DiagMgr";
pub const LICENSE_MANAGER: &str = "LicenseManager";

/// The datacenter's folders (vm, host, datastore, network).
pub const FOLDERS: crate::vim::inventory::Folders =
    [VM_FOLDER, HOST_FOLDER, DATASTORE_FOLDER, NETWORK_FOLDER];

pub const STATIC: &[(&str, &str)] = &[
    ("ServiceInstance", "ServiceInstance"),
    ("Folder", ROOT_FOLDER),
    ("PropertyCollector", PROPERTY_COLLECTOR),
    ("ViewManager", VIEW_MANAGER),
    ("SessionManager", SESSION_MANAGER),
    ("TaskManager", TASK_MANAGER),
    ("Datacenter", DATACENTER),
    ("Folder", VM_FOLDER),
    ("Folder", HOST_FOLDER),
    ("Folder", DATASTORE_FOLDER),
    ("Folder", NETWORK_FOLDER),
    ("SearchIndex", SEARCH_INDEX),
    ("EventManager", EVENT_MANAGER),
    ("PerformanceManager", PERF_MANAGER),
    ("OptionManager", SETTING),
    ("CustomFieldsManager", CUSTOM_FIELDS_MANAGER),
    ("AuthorizationManager", AUTHORIZATION_MANAGER),
    ("UserDirectory", USER_DIRECTORY),
    ("DiagnosticManager", DIAGNOSTIC_MANAGER),
    ("LicenseManager", LICENSE_MANAGER),
];
/// `host-<HOST_BASE + i>` for the i-th host.
pub const HOST_BASE: usize = 12;
/// `domain-c<CLUSTER_BASE + k>` for the k-th cluster.
pub const CLUSTER_BASE: usize = 8;

// ---- a host's objects, its tasks, its cluster -----------------------------------------------

/// The number after `prefix` in `id`, written as vpxd writes numbers.
fn number(id: &str, prefix: &str) -> Option<usize> {
    let n = id.strip_prefix(prefix)?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) || n.starts_with('0') {
        return None;
    }
    n.parse().ok()
}

/// `<prefix><HOST_BASE + i>`: host `i`'s object of that prefix (`host-`, `firmwareSystem-`, ...).
pub fn host_object_id(prefix: &str, i: usize) -> String {
    format!("{prefix}{}", HOST_BASE + i)
}

/// The host index of an id of one host's object with that prefix (`host-12`, "host-" → 0).
pub fn host_index(id: &str, prefix: &str) -> Option<usize> {
    number(id, prefix)?.checked_sub(HOST_BASE)
}

/// `task-<HOST_BASE + i>-<n>`: host `i`'s task `n`, as vCenter names it.
pub fn task_id(i: usize, n: &str) -> String {
    format!("task-{}-{n}", HOST_BASE + i)
}

/// A vCenter task id's host index and the number of that host's task.
pub fn task(id: &str) -> Option<(usize, usize)> {
    let (h, n) = id.strip_prefix("task-")?.split_once('-')?;
    Some((number(h, "")?.checked_sub(HOST_BASE)?, number(n, "")?))
}

/// The host index an object id of a vCenter names (`host-12`, `firmwareSystem-12`,
/// `EsxHostAdvSettings-12`, `task-12-101` → 0), whether or not that host exists.
pub fn host_index_of(id: &str) -> Option<usize> {
    super::registry::HOST_OBJECTS
        .iter()
        .find_map(|o| host_index(id, o.vcenter_prefix))
        .or_else(|| task(id).map(|(i, _)| i))
}

/// `domain-c<CLUSTER_BASE + k>`: the k-th cluster.
pub fn cluster_id(k: usize) -> String {
    format!("domain-c{}", CLUSTER_BASE + k)
}

/// The cluster index of a `domain-c<n>` id.
pub fn cluster_index(id: &str) -> Option<usize> {
    number(id, "domain-c")?.checked_sub(CLUSTER_BASE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both directions agree, and what vpxd would never write names nothing.
    #[test]
    fn ids_are_read_as_written() {
        for i in [0, 1, 63, 64, 999] {
            for o in crate::vim::registry::HOST_OBJECTS {
                let id = host_object_id(o.vcenter_prefix, i);
                assert_eq!(host_index(&id, o.vcenter_prefix), Some(i), "{id}");
                assert_eq!(host_index_of(&id), Some(i), "{id}");
            }
            assert_eq!(task(&task_id(i, "101")), Some((i, 101)));
            assert_eq!(host_index_of(&task_id(i, "7")), Some(i));
            assert_eq!(cluster_index(&cluster_id(i)), Some(i));
        }
        for bad in [
            "host-012",
            "host-",
            "host-1x",
            "host-+12",
            "host-11",
            "host-9999999999",
            "host-12 ",
            "task-12",
            "task-012-1",
            "task-12-01",
            "task-12-",
            "domain-c07",
        ] {
            assert_eq!(host_index_of(bad), None, "{bad}");
            assert_eq!(cluster_index(bad), None, "{bad}");
        }
        assert_eq!(host_index("host-11", "host-"), None, "below the first host");
    }
}
