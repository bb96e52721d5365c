//! The managed-object types the API serves, in one place: which file answers a type's calls and
//! builds its properties, and which objects every host has once (and how a vCenter names host
//! n's copy, so calls on it are forwarded). [`Vim::call`](super::Vim::call) looks a call's type
//! up here once; nothing else matches type names to find a handler.
//!
//! Adding a managed object type is a row in [`TYPES`] (and, if each host has one, a row in
//! [`HOST_OBJECTS`]): routing, existence and vCenter forwarding follow from the rows.

use super::{
    agent_settings, authorization_manager, diagnostic_manager, dynamic_type_manager, event_manager,
    firmware_system, host_date_time_system, host_network, host_system, ids, inventory,
    license_manager, local_account_manager, managed_method_executer, method_not_found,
    option_manager, perf_manager, property_collector, search_index, service_instance,
    session_manager, task, task_history_collector, user_directory, view_manager, Ctx, Vim,
};
use crate::api::{Call, Data, Fault, MoRef, Value};

/// Answers one call on an object of the type.
pub type CallFn = fn(&mut Vim, &mut Ctx, &Call) -> Result<Option<Value>, Fault>;
/// The properties of one object: the caller's session, and the top-level names wanted (None:
/// all; a type may return more than asked). None when there is no such object.
pub type PropsFn = fn(&Vim, &MoRef, Option<&str>, Option<&[&str]>) -> Option<Data>;

/// One managed object type.
pub struct MoType {
    /// The wire name (`_this type="..."`).
    pub name: &'static str,
    pub call: CallFn,
    pub properties: PropsFn,
    /// Every method `call` answers (one answered with a fault such as NotSupported exists
    /// too): what the WSDL describes and what other front ends may offer. `Fetch`, answered on
    /// every type before `call`, is not listed.
    pub methods: &'static [&'static str],
    /// Methods that need no session: clients call them before Login (facts section 3).
    pub anonymous: &'static [&'static str],
    /// Methods that change nothing a filter could report (they may refresh the caller's own
    /// session, paging or filter bookkeeping): they wake no waiter. Every other method does
    /// ([`super::changes`]); a method missing here costs waiters a look, never an update.
    pub reads: &'static [&'static str],
}

/// A type with properties only: every method is MethodNotFound.
fn no_methods(_: &mut Vim, _: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
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
        methods: &[
            "RetrieveProperties",
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "CancelRetrievePropertiesEx",
            "CreateFilter",
            "CreatePropertyCollector",
            "DestroyPropertyCollector",
            "CancelWaitForUpdates",
            "WaitForUpdates",
            "WaitForUpdatesEx",
            "CheckForUpdates",
        ],
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
        methods: &[
            "RetrieveManagedMethodExecuter",
            "RetrieveDynamicTypeManager",
            "RetrieveHardwareUptime",
            "EnterMaintenanceMode_Task",
            "ExitMaintenanceMode_Task",
            "RebootHost_Task",
            "ShutdownHost_Task",
        ],
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
        methods: &["RetrieveServiceContent", "CurrentTime"],
        anonymous: &["RetrieveServiceContent", "CurrentTime"],
        reads: &["RetrieveServiceContent", "CurrentTime"],
    },
    MoType {
        name: "SessionManager",
        call: session_manager::call,
        properties: |v, _, s, _| Some(session_manager::properties(v, s)),
        methods: &["Login", "Logout", "SessionIsActive"],
        anonymous: &["Login"],
        reads: &["SessionIsActive"],
    },
    MoType {
        name: "HostFirmwareSystem",
        call: firmware_system::call,
        properties: empty!("HostFirmwareSystem"),
        methods: &[
            "BackupFirmwareConfiguration",
            "QueryFirmwareConfigUploadURL",
            "RestoreFirmwareConfiguration",
            "ResetFirmwareToFactoryDefaults",
            "SyncFirmwareConfiguration",
            "QueryFirmwareQuantumMinutes",
            "QueryFirmwareSyncsPerQuantum",
        ],
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
        methods: &["CancelTask"],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "TaskManager",
        call: task::call,
        properties: |v, _, _, _| Some(task::manager_properties(v)),
        methods: &["CreateCollectorForTasks"],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "PropertyFilter",
        call: property_collector::call,
        properties: |v, o, _, _| property_collector::filter_properties(v, &o.id),
        methods: &["DestroyPropertyFilter"],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ViewManager",
        call: view_manager::call,
        properties: |v, _, s, _| Some(view_manager::properties(v, s)),
        methods: &[
            "CreateContainerView",
            "CreateListView",
            "CreateListViewFromView",
        ],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ContainerView",
        call: view_manager::call,
        properties: |v, o, _, _| view_manager::view_properties(v, &o.id),
        methods: &["DestroyView"],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ListView",
        call: view_manager::call,
        properties: |v, o, _, _| view_manager::view_properties(v, &o.id),
        methods: &[
            "ModifyListView",
            "ResetListView",
            "ResetListViewFromView",
            "DestroyView",
        ],
        anonymous: &[],
        // Modify/Reset change what a filter over the view reports.
        reads: &[],
    },
    MoType {
        name: "Folder",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        methods: &[],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "Datacenter",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        methods: &[],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "ComputeResource",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        methods: &[],
        anonymous: &[],
        reads: &[],
    },
    // A vCenter's clusters (the vCenter answers their properties itself).
    MoType {
        name: "ClusterComputeResource",
        call: no_methods,
        properties: |v, o, _, _| inventory::properties(v, o),
        methods: &[],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "HostLocalAccountManager",
        call: local_account_manager::call,
        properties: empty!("HostLocalAccountManager"),
        methods: &["CreateUser", "UpdateUser", "RemoveUser"],
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
        methods: &["QueryOptions", "UpdateOptions"],
        anonymous: &[],
        reads: &["QueryOptions"],
    },
    MoType {
        name: "SearchIndex",
        call: search_index::call,
        properties: empty!("SearchIndex"),
        methods: &[
            "FindByInventoryPath",
            "FindChild",
            "FindByUuid",
            "FindByDnsName",
            "FindByIp",
            "FindAllByUuid",
            "FindAllByDnsName",
            "FindAllByIp",
            "FindByDatastorePath",
        ],
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
        methods: &[
            "SetCollectorPageSize",
            "RewindCollector",
            "ResetCollector",
            "DestroyCollector",
            "ReadNextTasks",
            "ReadPreviousTasks",
        ],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "EventManager",
        call: event_manager::call,
        properties: |v, _, _, w| Some(event_manager::properties(v, w)),
        methods: &[
            "QueryEvents",
            "CreateCollectorForEvents",
            "PostEvent",
            "LogUserEvent",
            "RetrieveArgumentDescription",
        ],
        anonymous: &[],
        reads: &["QueryEvents"],
    },
    MoType {
        name: "EventHistoryCollector",
        call: event_manager::call,
        properties: |v, o, _, _| event_manager::collector_properties(v, &o.id),
        methods: &[
            "SetCollectorPageSize",
            "ReadNextEvents",
            "ReadPreviousEvents",
            "RewindCollector",
            "ResetCollector",
            "DestroyCollector",
        ],
        anonymous: &[],
        // Page size and the cursor change what `latestPage` holds or where reads start.
        reads: &[],
    },
    MoType {
        name: "PerformanceManager",
        call: perf_manager::call,
        properties: |_, _, _, _| Some(perf_manager::properties()),
        methods: &[
            "QueryPerfCounter",
            "QueryPerfCounterByLevel",
            "QueryPerf",
            "QueryPerfComposite",
            "QueryAvailablePerfMetric",
            "QueryPerfProviderSummary",
        ],
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
        methods: &[],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "HostDateTimeSystem",
        call: host_date_time_system::call,
        properties: |_, _, _, _| Some(host_date_time_system::properties()),
        methods: &[
            "QueryDateTime",
            "QueryAvailableTimeZones",
            "RefreshDateTimeSystem",
            "UpdateDateTime",
            "UpdateDateTimeConfig",
        ],
        anonymous: &[],
        reads: &[
            "QueryDateTime",
            "QueryAvailableTimeZones",
            "RefreshDateTimeSystem",
        ],
    },
    MoType {
        name: "AuthorizationManager",
        call: authorization_manager::call,
        properties: |_, _, _, _| Some(authorization_manager::properties()),
        methods: &[
            "RetrieveAllPermissions",
            "RetrieveEntityPermissions",
            "RetrieveRolePermissions",
            "HasPrivilegeOnEntity",
            "HasPrivilegeOnEntities",
            "HasUserPrivilegeOnEntities",
            "FetchUserPrivilegeOnEntities",
            "SetEntityPermissions",
            "RemoveEntityPermission",
        ],
        anonymous: &[],
        reads: &[
            "RetrieveAllPermissions",
            "RetrieveEntityPermissions",
            "RetrieveRolePermissions",
            "HasPrivilegeOnEntity",
            "HasPrivilegeOnEntities",
            "HasUserPrivilegeOnEntities",
            "FetchUserPrivilegeOnEntities",
        ],
    },
    MoType {
        name: "UserDirectory",
        call: user_directory::call,
        properties: |v, _, _, _| Some(user_directory::properties(v)),
        methods: &["RetrieveUserGroups"],
        anonymous: &[],
        reads: &["RetrieveUserGroups"],
    },
    MoType {
        name: "DiagnosticManager",
        call: diagnostic_manager::call,
        properties: empty!("DiagnosticManager"),
        methods: &["QueryDescriptions", "BrowseDiagnosticLog"],
        anonymous: &[],
        reads: &["QueryDescriptions", "BrowseDiagnosticLog"],
    },
    MoType {
        name: "LicenseManager",
        call: license_manager::call,
        properties: |v, _, _, _| Some(license_manager::properties(v)),
        methods: &[],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "HostVirtualNicManager",
        call: host_network::call,
        properties: |v, _, _, _| Some(host_network::manager_properties(v)),
        methods: &["QueryNetConfig"],
        anonymous: &[],
        reads: &["QueryNetConfig"],
    },
    MoType {
        name: "ReflectManagedMethodExecuter",
        call: managed_method_executer::call,
        properties: empty!("ReflectManagedMethodExecuter"),
        methods: &["ExecuteSoap"],
        anonymous: &[],
        reads: &[],
    },
    MoType {
        name: "InternalDynamicTypeManager",
        call: dynamic_type_manager::call,
        properties: empty!("InternalDynamicTypeManager"),
        methods: &[
            "DynamicTypeMgrQueryMoInstances",
            "DynamicTypeMgrQueryTypeInfo",
        ],
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

/// The one type that has `method`, if only one has it: a `_this` without a type is taken as
/// this type's ([`crate::soap::parse_with`]).
pub fn declaring_type(method: &str) -> Option<&'static str> {
    let mut with = TYPES.iter().filter(|t| t.methods.contains(&method));
    match (with.next(), with.next()) {
        (Some(t), None) => Some(t.name),
        _ => None,
    }
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
    HostObject {
        ty: "HostVirtualNicManager",
        local: ids::VIRTUAL_NIC_MANAGER,
        vcenter_prefix: "virtualNicManager-",
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
        assert_eq!(
            declaring_type("RetrieveServiceContent"),
            Some("ServiceInstance")
        );
        assert_eq!(declaring_type("DestroyView"), None, "two types have it");
        assert_eq!(declaring_type("NoSuchMethod"), None);
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

    #[test]
    fn reads_and_anonymous_methods_are_methods() {
        for t in TYPES {
            for m in t.reads.iter().chain(t.anonymous) {
                assert!(
                    t.methods.contains(m),
                    "{}.{m} is not in its methods",
                    t.name
                );
            }
            for (i, m) in t.methods.iter().enumerate() {
                assert!(!t.methods[i + 1..].contains(m), "{}.{m} twice", t.name);
            }
        }
    }

    /// Each listed method reaches an arm of its type's `call` (any answer but MethodNotFound:
    /// a missing object or parameter is fine), and an unlisted one does not.
    #[test]
    fn every_listed_method_is_answered() {
        let host = crate::HostConfig::new(crate::Profile::named("8.0U3").unwrap())
            .seed(4)
            .build()
            .unwrap();
        let mut vim = Vim::new(host, Default::default());
        let session = super::super::session_manager::system_session(&mut vim, "root");
        let not_found = |vim: &mut Vim, ty: &str, method: &str| {
            let id = HOST_OBJECTS
                .iter()
                .find(|o| o.ty == ty)
                .map_or("no-such-object", |o| o.local);
            let xml = format!(
                "<{method} xmlns=\"urn:vim25\"><_this type=\"{ty}\">{id}</_this></{method}>"
            );
            let req = crate::soap::parse(crate::soap::envelope(&xml).as_bytes()).unwrap();
            let mut ctx = Ctx {
                session: Some(session.clone()),
                system: Some("root".into()),
                ..Ctx::default()
            };
            let r = (lookup(ty).unwrap().call)(vim, &mut ctx, &req);
            matches!(r, Err(f) if f.ty == "MethodNotFound")
        };
        for t in TYPES {
            for m in t.methods {
                assert!(
                    !not_found(&mut vim, t.name, m),
                    "{}.{m}: MethodNotFound",
                    t.name
                );
            }
            assert!(not_found(&mut vim, t.name, "NoSuchMethod"), "{}", t.name);
        }
    }
}
