//! vCenter mode: one endpoint in front of a whole estate, as vpxd is.
//!
//! The vCenter's own objects (sessions, the property collector, views) are the ordinary ones of
//! [`Vim`]; what differs is the inventory and where host calls go:
//!
//! - ids are vCenter's (facts section 3: per-host ids such as `host-16`, `firmwareSystem-16`;
//!   `apiType` "VirtualCenter"): `group-d1` (root folder) → `datacenter-3` → `group-h5` (host folder) →
//!   clusters `domain-c8`, `domain-c9`, ... (64 hosts each, vSphere 7's cluster maximum) →
//!   `host-12`, `host-13`, ...; a host's firmware system is `firmwareSystem-12`, its advanced
//!   options `EsxHostAdvSettings-12`, its tasks `task-12-101`;
//! - a host's `name` is its address, as a host added to vCenter by IP shows (Ansible's
//!   vmware_cfg_backup, facts section 5, replaces the URL's `*` with `host.name`);
//! - every call on a host object is forwarded to that host's own API state as vpxd forwards
//!   to hostd (under the host's lock, after the vCenter's is released), and the references in the answer are rewritten into
//!   vCenter ids. So BackupFirmwareConfiguration through vCenter returns the host's
//!   `http://*/downloads/...` URL, and the bundle is fetched from the host's own endpoint.
//!
//! A host that is down or cut off still shows in the inventory, with
//! `runtime.connectionState = notResponding`; calls on it fail with HostNotReachable. That
//! includes a TPM host whose boot stopped on a new board (facts 6.5): vpxd cannot tell why, the
//! control API's `boot_halted` and the `boot-halted` event do.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{host_system, inventory, moref, registry, Vim};
use crate::api::{Data, Fault, MoRef, Value};
use crate::profile::Profile;

/// The ids of a vCenter's objects, fixed and per host: one grammar ([`super::vcenter_ids`]).
pub use super::vcenter_ids as ids;

/// Hosts per cluster (vSphere 7.0's maximum was 64; 96 from 7.0U1 on).
pub const CLUSTER_SIZE: usize = 64;

/// One host of the estate: its API state (shared with its own endpoint) and its address.
pub struct EstateHost {
    pub vim: Arc<Mutex<Vim>>,
    /// What vCenter calls it: the address it was added by.
    pub name: String,
}

/// Everything a vCenter endpoint fronts.
#[derive(Debug)]
pub struct Estate {
    pub hosts: Vec<EstateHost>,
    /// vCenter's SSO administrator.
    pub user: String,
    pub password: String,
    pub about: Data,
    pub datacenter_name: String,
}

impl Estate {
    pub fn new(hosts: Vec<EstateHost>, user: &str, password: &str, newest: &Profile) -> Estate {
        Estate {
            hosts,
            user: user.to_string(),
            password: password.to_string(),
            about: about(newest),
            datacenter_name: "Datacenter".into(),
        }
    }
    fn clusters(&self) -> usize {
        self.hosts.len().div_ceil(CLUSTER_SIZE)
    }
    /// Locks host `i` with its model moved to `now` (vpxd sees the host as it is now).
    pub(crate) fn host(&self, i: usize, now: crate::clock::SimTime) -> MutexGuard<'_, Vim> {
        let mut v = self.hosts[i].vim.lock().unwrap_or_else(|e| e.into_inner());
        v.sync_to(now);
        v
    }

    /// Reads host `i` for the vCenter `vim`, which learns when what was read changes by time
    /// alone: the host's events and drifting values ([`super::changes`]).
    pub(crate) fn read_host<R>(&self, vim: &Vim, i: usize, f: impl FnOnce(&Vim) -> R) -> R {
        let h = self.host(i, vim.now());
        h.take_horizon();
        let r = f(&h);
        let mut horizon = h.take_horizon();
        horizon.event(h.next_due());
        drop(h);
        vim.note(horizon);
        r
    }
}

/// The vCenter's `about`, for the newest build it manages (a vCenter is always at least as new
/// as its hosts). Builds are those of the vCenter GA release of the same update level, from
/// VMware's release notes [unconfirmed here: not in the facts file]; no client we know of
/// reads them.
fn about(p: &Profile) -> Data {
    let mut parts = p.version.split('.');
    let major = parts.next().unwrap_or("8");
    let minor = parts.next().unwrap_or("0");
    // From 7.0 on, vCenter's version carries the update number (8.0.3 for 8.0 Update 3);
    // 6.x kept x.y.0 (6.7 U3 is 6.7.0 build 14367737).
    let update = match p.name.split_once('U') {
        Some((_, u)) if major >= "7" => u.trim_end_matches(|c: char| c.is_ascii_alphabetic()),
        _ => "0",
    };
    let version = format!("{major}.{minor}.{update}");
    let build = match (major, minor, update) {
        ("8", "0", "3") => "24022515",
        ("8", "0", "2") => "22385739",
        ("8", "0", "1") => "21560480",
        ("8", "0", _) => "20519528",
        ("7", "0", "3") => "18700403",
        ("7", "0", "2") => "17694817",
        ("6", "7", _) if p.name == "6.7U3" => "14367737",
        ("6", "7", _) => "8217866",
        ("6", "5", _) => "14020092",
        _ => "5318154",
    };
    Data::new("AboutInfo")
        .with("name", "VMware vCenter Server")
        .with(
            "fullName",
            format!("VMware vCenter Server {version} build-{build}"),
        )
        .with("vendor", "VMware, Inc.")
        .with("version", version)
        .with("build", build)
        .with("localeVersion", "INTL")
        .with("localeBuild", "000")
        .with("osType", "linux-x64")
        .with("productLineId", "vpx")
        .with("apiType", "VirtualCenter")
        .with("apiVersion", p.api_version.as_str())
        .with("instanceUuid", "4c4c4544-0053-5a10-8047-b4c04f4a5331")
        .with("licenseProductName", "VMware VirtualCenter Server")
        .with(
            "licenseProductVersion",
            super::service_instance::license_version(p),
        )
}

/// ServiceContent of a vCenter (only the managers this simulator serves).
pub fn content(est: &Estate) -> Data {
    Data::new("ServiceContent")
        .with("rootFolder", moref("Folder", ids::ROOT_FOLDER))
        .with(
            "propertyCollector",
            moref("PropertyCollector", ids::PROPERTY_COLLECTOR),
        )
        .with("viewManager", moref("ViewManager", ids::VIEW_MANAGER))
        .with("about", est.about.clone())
        .with("setting", moref("OptionManager", ids::SETTING))
        .with("userDirectory", moref("UserDirectory", ids::USER_DIRECTORY))
        .with(
            "sessionManager",
            moref("SessionManager", ids::SESSION_MANAGER),
        )
        .with(
            "authorizationManager",
            moref("AuthorizationManager", ids::AUTHORIZATION_MANAGER),
        )
        .with(
            "perfManager",
            moref("PerformanceManager", ids::PERF_MANAGER),
        )
        .with("eventManager", moref("EventManager", ids::EVENT_MANAGER))
        .with("taskManager", moref("TaskManager", ids::TASK_MANAGER))
        .with(
            "customFieldsManager",
            moref("CustomFieldsManager", ids::CUSTOM_FIELDS_MANAGER),
        )
        .with(
            "diagnosticManager",
            moref("DiagnosticManager", ids::DIAGNOSTIC_MANAGER),
        )
        .with(
            "licenseManager",
            moref("LicenseManager", ids::LICENSE_MANAGER),
        )
        .with("searchIndex", moref("SearchIndex", ids::SEARCH_INDEX))
}

// ---- ids (their grammar is ids::, here what this estate has) ------------------------------

fn host_index(est: &Estate, id: &str, prefix: &str) -> Option<usize> {
    let i = ids::host_index(id, prefix)?;
    (i < est.hosts.len()).then_some(i)
}

fn cluster_index(est: &Estate, id: &str) -> Option<usize> {
    let k = ids::cluster_index(id)?;
    (k < est.clusters()).then_some(k)
}

pub use ids::host_index_of;

pub fn host_ref(i: usize) -> MoRef {
    moref("HostSystem", &ids::host_object_id("host-", i))
}

/// The cluster host `i` is in (its parent, and its events' compute resource).
pub fn compute_of(i: usize) -> MoRef {
    cluster_ref(i / CLUSTER_SIZE)
}

/// The name of host `i`'s cluster.
pub fn cluster_name(i: usize) -> String {
    format!("Cluster-{}", i / CLUSTER_SIZE + 1)
}

fn cluster_ref(k: usize) -> MoRef {
    moref("ClusterComputeResource", &ids::cluster_id(k))
}

/// A vCenter reference to a host's object: which host, and the object's id on that host.
fn to_host(est: &Estate, r: &MoRef) -> Option<(usize, MoRef)> {
    if r.ty == "Task" {
        let (i, n) = ids::task(&r.id)?;
        if i >= est.hosts.len() {
            return None;
        }
        // The host's task with that number (hostd ids end in `-<number>`).
        let v = est.hosts[i].vim.lock().unwrap_or_else(|e| e.into_inner());
        let t = v
            .tasks
            .values()
            .find(|t| t.id.ends_with(&format!("-{n}")))?;
        return Some((i, moref(&r.ty, &t.id)));
    }
    registry::HOST_OBJECTS
        .iter()
        .filter(|o| o.ty == r.ty)
        .find_map(|o| {
            Some((
                host_index(est, &r.id, o.vcenter_prefix)?,
                moref(o.ty, o.local),
            ))
        })
}

/// Every host's recent tasks, in vCenter ids (host order, then each host's task order), read
/// for the vCenter `vim` (which learns when the lists change by time alone).
pub fn recent_tasks(vim: &Vim, est: &Estate) -> Vec<MoRef> {
    let mut out = Vec::new();
    for i in 0..est.hosts.len() {
        let tasks = est.read_host(vim, i, super::task::recent);
        out.extend(tasks.iter().map(|r| from_host(i, r)));
    }
    out
}

/// The tasks hostd holds on each of `hosts` (all, not only recent): (queued, host, the host's
/// task number, the vCenter's reference).
pub fn all_tasks(
    vim: &Vim,
    est: &Estate,
    hosts: &[usize],
) -> Vec<(crate::clock::SimTime, usize, u64, MoRef)> {
    let mut out = Vec::new();
    for &i in hosts {
        let tasks: Vec<(crate::clock::SimTime, u64, MoRef)> = est.read_host(vim, i, |h| {
            h.tasks
                .iter()
                .map(|(n, t)| (t.queued, *n, t.moref()))
                .collect()
        });
        out.extend(
            tasks
                .into_iter()
                .map(|(q, n, r)| (q, i, n, from_host(i, &r))),
        );
    }
    out
}

/// A host's own reference as vCenter names it.
fn from_host(i: usize, r: &MoRef) -> MoRef {
    if let Some(o) = registry::host_object(r) {
        return moref(o.ty, &ids::host_object_id(o.vcenter_prefix, i));
    }
    match (r.ty.as_str(), r.id.as_str()) {
        ("ComputeResource", _) => cluster_ref(i / CLUSTER_SIZE),
        ("Datacenter", _) => moref("Datacenter", ids::DATACENTER),
        ("Task", id) => {
            // hostd's task ids end in `-<number>` (`haTask-ha-host-vim...-101`).
            let num = id.rsplit('-').next().unwrap_or("0");
            moref("Task", &ids::task_id(i, num))
        }
        _ => r.clone(),
    }
}

fn rewrite(v: &mut Value, f: &impl Fn(&MoRef) -> MoRef) {
    match v {
        Value::Ref(r) => *r = f(r),
        Value::Data(d) => d.fields.iter_mut().for_each(|(_, v)| rewrite(v, f)),
        Value::Array(_, items) => items.iter_mut().for_each(|v| rewrite(v, f)),
        Value::Any(inner) => rewrite(inner, f),
        _ => {}
    }
}

fn set(d: &mut Data, name: &'static str, v: Value) {
    match d.fields.iter_mut().find(|(k, _)| *k == name) {
        Some((_, old)) => *old = v,
        None => d.fields.push((name, v)),
    }
}

fn field<'a>(d: &'a mut Data, name: &str) -> Option<&'a mut Data> {
    match d.fields.iter_mut().find(|(k, _)| *k == name)? {
        (_, Value::Data(inner)) => Some(inner),
        _ => None,
    }
}

// ---- the inventory -----------------------------------------------------------------------

pub fn exists(est: &Estate, obj: &MoRef) -> bool {
    if ids::STATIC
        .iter()
        .any(|(t, id)| *t == obj.ty && *id == obj.id)
    {
        return true;
    }
    match obj.ty.as_str() {
        "ClusterComputeResource" => cluster_index(est, &obj.id).is_some(),
        // A host's objects and tasks.
        _ => to_host(est, obj).is_some(),
    }
}

/// Whether the vCenter builds an object's properties itself: its inventory, and its hosts'
/// objects (from the hosts, in vCenter ids). Its own managers are ordinary objects.
pub fn answers_properties(obj: &MoRef) -> bool {
    matches!(
        obj.ty.as_str(),
        "Folder" | "Datacenter" | "ClusterComputeResource" | "Task"
    ) || registry::HOST_OBJECTS
        .iter()
        .any(|o| o.ty == obj.ty && obj.id.starts_with(o.vcenter_prefix))
}

pub fn children(est: &Estate, obj: &MoRef) -> Vec<MoRef> {
    match (obj.ty.as_str(), obj.id.as_str()) {
        ("Folder", ids::ROOT_FOLDER) => vec![moref("Datacenter", ids::DATACENTER)],
        ("Datacenter", ids::DATACENTER) => inventory::folder_refs(&ids::FOLDERS),
        ("Folder", ids::HOST_FOLDER) => (0..est.clusters()).map(cluster_ref).collect(),
        ("ClusterComputeResource", id) => match cluster_index(est, id) {
            Some(k) => cluster_hosts(est, k).map(host_ref).collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn cluster_hosts(est: &Estate, k: usize) -> std::ops::Range<usize> {
    k * CLUSTER_SIZE..((k + 1) * CLUSTER_SIZE).min(est.hosts.len())
}

pub fn properties(vim: &Vim, est: &Estate, obj: &MoRef, wanted: Option<&[&str]>) -> Option<Data> {
    use inventory::entity;
    let dc = || moref("Datacenter", ids::DATACENTER);
    Some(match (obj.ty.as_str(), obj.id.as_str()) {
        ("Folder", ids::ROOT_FOLDER) => entity("Folder", "Datacenters", None)
            .with(
                "childType",
                Value::strings(["Folder".into(), "Datacenter".into()]),
            )
            .with("childEntity", Value::refs(children(est, obj))),
        ("Folder", id) => {
            let (name, child_type) = match id {
                ids::VM_FOLDER => ("vm", "VirtualMachine"),
                ids::HOST_FOLDER => ("host", "ComputeResource"),
                ids::DATASTORE_FOLDER => ("datastore", "Datastore"),
                ids::NETWORK_FOLDER => ("network", "Network"),
                _ => return None,
            };
            entity("Folder", name, Some(dc()))
                .with(
                    "childType",
                    Value::strings(["Folder".into(), child_type.to_string()]),
                )
                .with("childEntity", Value::refs(children(est, obj)))
        }
        ("Datacenter", ids::DATACENTER) => inventory::datacenter(
            &est.datacenter_name,
            moref("Folder", ids::ROOT_FOLDER),
            &ids::FOLDERS,
        ),
        ("ClusterComputeResource", id) => {
            let k = cluster_index(est, id)?;
            inventory::compute_resource(
                "ClusterComputeResource",
                &cluster_name(k * CLUSTER_SIZE),
                moref("Folder", ids::HOST_FOLDER),
                children(est, obj),
            )
        }
        ("HostSystem", _) => {
            let (i, _) = to_host(est, obj)?;
            host_properties(vim, est, i, wanted)
        }
        // Another host object, or a host's task: the host's answer in vCenter ids.
        _ => {
            let (i, local) = to_host(est, obj)?;
            let mut d = est.read_host(vim, i, |h| h.properties(&local, None))?;
            d.fields
                .iter_mut()
                .for_each(|(_, v)| rewrite(v, &|r| from_host(i, r)));
            // A task's entity is named as the vCenter names the host (its address), and its
            // key is the vCenter's task id (TaskInfo.key is the task's moref id).
            if let Some(info) = field(&mut d, "info") {
                if info.get("entityName").is_some() {
                    set(info, "entityName", est.hosts[i].name.as_str().into());
                }
                if obj.ty == "Task" && info.get("key").is_some() {
                    set(info, "key", obj.id.as_str().into());
                }
            }
            d
        }
    })
}

/// A host as vCenter shows it: hostd's answer in vCenter ids, named by address, with the
/// connection state vpxd keeps.
fn host_properties(vim: &Vim, est: &Estate, i: usize, wanted: Option<&[&str]>) -> Data {
    let (mut d, reachable) = est.read_host(vim, i, |h| {
        (host_system::properties_only(h, wanted), h.reachable())
    });
    d.fields
        .iter_mut()
        .for_each(|(_, v)| rewrite(v, &|r| from_host(i, r)));
    let name = Value::from(est.hosts[i].name.as_str());
    if d.get("name").is_some() {
        set(&mut d, "name", name.clone());
    }
    if let Some(cfg) = field(&mut d, "summary").and_then(|s| field(s, "config")) {
        set(cfg, "name", name);
    }
    if !reachable {
        let state = Value::enumerated("HostSystemConnectionState", "notResponding");
        if let Some(rt) = field(&mut d, "runtime") {
            set(rt, "connectionState", state.clone());
        }
        if let Some(rt) = field(&mut d, "summary").and_then(|s| field(s, "runtime")) {
            set(rt, "connectionState", state);
        }
    }
    d
}

/// Where a call on `obj` goes: host `i`, to its object `local` (None: the vCenter's own, or
/// nothing). The routing step ([`super::route`]) asks once per call.
pub fn route(est: &Estate, obj: &MoRef) -> Option<(usize, MoRef)> {
    to_host(est, obj)
}

/// What vpxd says of a call for a host that stopped answering (a HostCommunication subtype).
pub fn not_reachable(est: &Estate, i: usize) -> Fault {
    Fault::new(
        "HostNotReachable",
        format!(
            "Cannot contact the specified host ({}). The host may not be available on the \
             network, a network configuration problem may exist, or the management services \
             on this host may not be responding.",
            est.hosts[i].name
        ),
    )
}

/// Host `i`'s answer in the vCenter's ids.
pub fn to_vcenter_ids(i: usize, v: &mut Value) {
    rewrite(v, &|r| from_host(i, r));
}

impl std::fmt::Debug for EstateHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EstateHost({})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vim::ids as ha;

    fn estate(n: usize) -> Estate {
        let p = crate::profile::Profile::named("8.0U3").unwrap();
        let hosts = (0..n)
            .map(|i| {
                let host = crate::HostConfig::new(p.clone())
                    .seed(i as u64)
                    .root_hash(crate::host::shared_root_hash("VMware1!", 0))
                    .build()
                    .unwrap();
                EstateHost {
                    vim: Arc::new(Mutex::new(Vim::new(host, Default::default()))),
                    name: format!("127.1.0.{}", i + 1),
                }
            })
            .collect();
        Estate::new(hosts, "administrator@vsphere.local", "pw", &p)
    }

    #[test]
    fn host_references_round_trip_and_strangers_do_not_resolve() {
        let est = estate(70);
        for i in [0, 1, 63, 64, 69] {
            for (ty, id) in [
                ("HostSystem", ha::HOST),
                ("HostFirmwareSystem", ha::FIRMWARE_SYSTEM),
                ("OptionManager", ha::ADV_OPTIONS),
            ] {
                let local = moref(ty, id);
                let vc = from_host(i, &local);
                assert_ne!(vc.id, local.id);
                assert_eq!(to_host(&est, &vc), Some((i, local)), "{vc}");
                assert_eq!(host_index_of(&vc.id), Some(i));
            }
            // The host's compute resource is its cluster: 64 hosts each.
            let cr = from_host(i, &moref("ComputeResource", ha::COMPUTE_RESOURCE));
            assert_eq!(cr.id, format!("domain-c{}", 8 + i / 64));
            assert!(children(&est, &cr).contains(&host_ref(i)));
        }
        for id in [
            "host-11",
            "host-82",
            "host-012",
            "host-",
            "host-1x",
            "firmwareSystem-82",
            "EsxHostAdvSettings-9",
            "host-99999999999",
        ] {
            let ty = if id.starts_with("host") {
                "HostSystem"
            } else if id.starts_with("firmware") {
                "HostFirmwareSystem"
            } else {
                "OptionManager"
            };
            assert_eq!(to_host(&est, &moref(ty, id)), None, "{id}");
        }
        assert_eq!(
            children(&est, &moref("Folder", ids::HOST_FOLDER)).len(),
            2,
            "70 hosts make two clusters"
        );
        assert!(!exists(
            &est,
            &moref("ClusterComputeResource", "domain-c10")
        ));
    }
}
