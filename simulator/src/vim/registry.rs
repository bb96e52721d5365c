//! The managed-object types the API serves, in one place: which file answers a type's calls and
//! builds its properties, and which objects every host has once (and how a vCenter names host
//! n's copy, so calls on it are forwarded). [`Vim::call`](super::Vim::call) looks a call's type
//! up here once; nothing else matches type names to find a handler.
//!
//! Adding a managed object type is a row in [`TYPES`] (and, if each host has one, a row in
//! [`HOST_OBJECTS`]): routing, existence and vCenter forwarding follow from the rows.

use super::{
    agent_settings, dynamic_type_manager, event_manager, firmware_system, host_date_time_system,
    host_system, ids, inventory, local_account_manager, managed_method_executer, method_not_found,
    option_manager, perf_manager, property_collector, search_index, service_instance,
    session_manager, task, task_history_collector, view_manager, Ctx, Vim,
};
use crate::soap::{Data, Fault, MoRef, Request, Value};

/// Answers one call on an object of the type.
pub type CallFn = fn(&mut Vim, &mut Ctx, &Request) -> Result<Option<Value>, Fault>;
/// The properties of one object: the caller's session, and the top-level names wanted (None:
/// all; a type may return more than asked). None when there is no such object.
pub type PropsFn = fn(&Vim, &MoRef, Option<&str>, Option<&[&str]>) -> Option<Data>;

/// One managed object type.
pub struct MoType {
    /// The wire name (`_this type="..."`).
    pub name: &'static str,
    pub call: CallFn,
    pub properties: PropsFn,
    /// Methods that need no session: clients call them before Login (facts section 3).
    pub anonymous: &'static [&'static str],
    /// Methods that change nothing a filter could report (they may refresh the caller's own
    /// session, paging or filter bookkeeping): they wake no waiter. Every other method does
    /// ([`super::changes`]); a method missing here costs waiters a look, never an update.
    pub reads: &'static [&'static str],
}

/// A type with properties only: every method is MethodNotFound.
fn no_methods(_: &mut Vim, _: &mut Ctx, req: &Request) -> Result<Option<Value>, Fault> {
    Err(method_not_found(req))
}

/// A type with no properties of its own (managers whose state is all in methods).
macro_rules! empty {
    ($ty:literal) => {
        |_, _, _, _| Some(Data::new($ty))
    };
}

/// Every type, the busiest first (the lookup is a short linear scan on each call).
pub static TYPES: &[MoType] = &[
    MoType {
        name: "PropertyCollector",
        call: property_collector::call,
        properties: |v, o, s, _| Some(property_collector::properties(v, &o.id, s)),
        // Answered without a session, every property missing (see `property_collector`).
        anonymous: &["RetrieveProperties", "RetrievePropertiesEx"],
        reads: &[
            "RetrieveProperties",
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "CancelRetrievePropertiesEx",
            "WaitForUpdates",
            "WaitForUpdatesEx",
            "CheckForUpdates",
        ],
    },
    MoType {
        name: "HostSystem",
        call: host_system::call,
        properties: |v, _, _, w| Some(host_system::properties_only(v, w)),
        anonymous: &[],
        reads: &[
            "RetrieveManagedMethodExecuter",
            "RetrieveDynamicTypeManager",
            "RetrieveHardwareUptime",
        ],
    },
    MoType {
        name: "ServiceInstance",
        call: service_instance::call,
        properties: |v, _, _, _| Some(service_instance::properties(v)),
        anonymous: &["RetrieveServiceContent", "CurrentTime"],
        reads: &["RetrieveServiceContent", "CurrentTime"],
    },
    MoType {
        name: "SessionManager",
        call: session_manager::call,
        properties: |v, _, s, _| Some(session_manager::properties(v, s)),
        anonymous: &["Login"],
        reads: &["SessionIsActive"],
    },
    MoType {
        name: "HostFirmwareSystem",
        call: firmware_system::call,
        properties: empty!("HostFirmwareSystem"),
        anonymous: &[],
        reads: &[
            "QueryFirmwareConfigUploadURL",
            "QueryFirmwareQuantumMinutes",
            "QueryFirmwareSyncsPerQuantum",
        ],
    },
    MoType {
        name: "Task",
        call: task::call,
        properties: |v, o, _, _| task::properties(v, &o.id),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "TaskManager",
        call: task::call,
        properties: |v, _, _, _| Some(task::manager_properties(v)),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "PropertyFilter",
        call: property_collector::call,
        properties: |v, o, _, _| property_collector::filter_properties(v, &o.id),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ViewManager",
        call: view_manager::call,
        properties: |v, _, s, _| Some(view_manager::properties(v, s)),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ContainerView",
        call: view_manager::call,
        properties: |v, o, _, _| view_manager::view_properties(v, &o.id),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ListView",
        call: view_manager::call,
        properties: |v, o, _, _| view_manager::view_properties(v, &o.id),
        anonymous: &[],
        // Modify/Reset change what a filter over the view reports.
        reads: &[],
    },
    MoType {
        name: "Folder",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "Datacenter",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ComputeResource",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        anonymous: &[],
        reads: &[],
    },
    // A vCenter's clusters (the vCenter answers their properties itself).
    MoType {
        name: "ClusterComputeResource",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "HostLocalAccountManager",
        call: local_account_manager::call,
        properties: empty!("HostLocalAccountManager"),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "OptionManager",
        call: option_manager::call,
        properties: |v, o, _, _| {
            Some(match agent_settings::is_settings(&o.id) {
                true => agent_settings::properties(v),
                false => option_manager::properties(v),
            })
        },
        anonymous: &[],
        reads: &["QueryOptions"],
    },
    MoType {
        name: "SearchIndex",
        call: search_index::call,
        properties: empty!("SearchIndex"),
        anonymous: &[],
        reads: &[
            "FindByInventoryPath",
            "FindChild",
            "FindByUuid",
            "FindByDnsName",
            "FindByIp",
            "FindAllByUuid",
            "FindAllByDnsName",
            "FindAllByIp",
        ],
    },
    MoType {
        name: "TaskHistoryCollector",
        call: task_history_collector::call,
        properties: |v, o, _, _| task_history_collector::properties(v, &o.id),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "EventManager",
        call: event_manager::call,
        properties: |v, _, _, w| Some(event_manager::properties(v, w)),
        anonymous: &[],
        reads: &["QueryEvents"],
    },
    MoType {
        name: "EventHistoryCollector",
        call: event_manager::call,
        properties: |v, o, _, _| event_manager::collector_properties(v, &o.id),
        anonymous: &[],
        // Page size and the cursor change what `latestPage` holds or where reads start.
        reads: &[],
    },
    MoType {
        name: "PerformanceManager",
        call: perf_manager::call,
        properties: |_, _, _, _| Some(perf_manager::properties()),
        anonymous: &[],
        reads: &[
            "QueryPerfCounter",
            "QueryPerfCounterByLevel",
            "QueryPerf",
            "QueryPerfComposite",
            "QueryAvailablePerfMetric",
            "QueryPerfProviderSummary",
        ],
    },
    // A vCenter's custom attribute definitions: none are defined here, and none can be.
    MoType {
        name: "CustomFieldsManager",
        call: no_methods,
        properties: |_, _, _, _| {
            Some(
                Data::new("CustomFieldsManager")
                    .with("field", Value::Array("CustomFieldDef", Vec::new())),
            )
        },
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "HostDateTimeSystem",
        call: host_date_time_system::call,
        properties: |_, _, _, _| Some(host_date_time_system::properties()),
        anonymous: &[],
        reads: &[
            "QueryDateTime",
            "QueryAvailableTimeZones",
            "RefreshDateTimeSystem",
        ],
    },
    MoType {
        name: "ReflectManagedMethodExecuter",
        call: managed_method_executer::call,
        properties: empty!("ReflectManagedMethodExecuter"),
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "InternalDynamicTypeManager",
        call: dynamic_type_manager::call,
        properties: empty!("InternalDynamicTypeManager"),
        anonymous: &[],
        reads: &[
            "DynamicTypeMgrQueryMoInstances",
            "DynamicTypeMgrQueryTypeInfo",
        ],
    },
];

/// The type named `ty`, if the API serves it.
pub fn lookup(ty: &str) -> Option<&'static MoType> {
    TYPES.iter().find(|t| t.name == ty)
}

/// Whether a call only reads (see [`MoType::reads`]); `Fetch` reads on every type.
pub fn reads(ty: &str, method: &str) -> bool {
    method == "Fetch" || lookup(ty).is_some_and(|t| t.reads.contains(&method))
}

/// An object every host has once: its type, its id on the host (captured from a real host,
/// facts section 3), and the prefix of its vCenter id, followed by the host's number
/// (`firmwareSystem-16`, facts section 3). One id grammar for both directions of forwarding.
#[derive(Debug)]
pub struct HostObject {
    pub ty: &'static str,
    pub local: &'static str,
    pub vcenter_prefix: &'static str,
}

pub const HOST_OBJECTS: &[HostObject] = &[
    HostObject {
        ty: "HostSystem",
        local: ids::HOST,
        vcenter_prefix: "host-",
    },
    HostObject {
        ty: "HostFirmwareSystem",
        local: ids::FIRMWARE_SYSTEM,
        vcenter_prefix: "firmwareSystem-",
    },
    HostObject {
        ty: "OptionManager",
        local: ids::ADV_OPTIONS,
        vcenter_prefix: "EsxHostAdvSettings-",
    },
    HostObject {
        ty: "HostDateTimeSystem",
        local: ids::DATE_TIME_SYSTEM,
        vcenter_prefix: "dateTimeSystem-",
    },
    // The esxcli objects through a vCenter: the ids a live vCenter 9.1 was reported to use
    // (docs/esxcli.md, [unconfirmed]); ExecuteSoap's moid and method pass through unchanged.
    HostObject {
        ty: "ReflectManagedMethodExecuter",
        local: ids::MANAGED_METHOD_EXECUTER,
        vcenter_prefix: "ManagedMethodExecuter-",
    },
    HostObject {
        ty: "InternalDynamicTypeManager",
        local: ids::DYNAMIC_TYPE_MANAGER,
        vcenter_prefix: "DynamicTypeManager-",
    },
];

/// The host object a standalone reference names (`HostFirmwareSystem:ha-firmwareSystem`).
pub fn host_object(r: &MoRef) -> Option<&'static HostObject> {
    HOST_OBJECTS
        .iter()
        .find(|o| o.ty == r.ty && o.local == r.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_host_objects_are_served_types() {
        for (i, t) in TYPES.iter().enumerate() {
            assert!(
                TYPES[i + 1..].iter().all(|u| u.name != t.name),
                "{} twice",
                t.name
            );
            assert!(std::ptr::eq(lookup(t.name).unwrap(), t));
        }
        assert!(lookup("NoSuchType").is_none());
        for o in HOST_OBJECTS {
            assert!(lookup(o.ty).is_some(), "{o:?} has no type row");
            assert!(o.vcenter_prefix.ends_with('-'), "{o:?}");
            let others = HOST_OBJECTS.iter().filter(|p| !std::ptr::eq(*p, o));
            for p in others {
                assert!(
                    !p.vcenter_prefix.starts_with(o.vcenter_prefix),
                    "{o:?} and {p:?}: one vCenter id would parse as both"
                );
            }
        }
    }
}
