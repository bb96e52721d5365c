//! AuthorizationManager (`ha-authmgr` on a host, `AuthorizationManager` on a vCenter): the roles
//! and the permissions. Clients read them to say who may do what: Ansible's
//! `vmware_local_user_info` reports each local user's role from `roleList` and
//! `RetrieveEntityPermissions(rootFolder)`, govc's `role.ls` and `permissions.ls` print them, and
//! `vmware_object_role_permission` sets them with SetEntityPermissions.
//!
//! A host's permissions are its configuration ([`crate::host::permissions`]: authorization.xml,
//! or the ConfigStore from 7.0), so a backup carries them and a restore brings them back. A
//! vCenter's are its own, fixed: its SSO administrators' group is Admin on the root folder
//! [inferred: a fresh vCenter's default], and cannot be changed here.
//!
//! The system roles only, with the privileges this simulator's calls need: Admin has every
//! privilege listed, NoCryptoAdmin all but Cryptographer.*, ReadOnly System.Anonymous/View/
//! Read [inferred: a real endpoint lists several hundred privileges; these are the ones its
//! methods here would check]. Permissions are reported, not enforced: every logged-in user may
//! call every method.

use super::{bad_param, method_not_found, not_found, required, required_bool, Ctx, Vim};
use crate::api::call::{parse_int, parse_moref};
use crate::api::{Call, Data, Fault, MoRef, Value};
use crate::host::permissions::{self as perms, Permission, ROLES};

/// The privileges: id, and the description a client shows (`AuthorizationDescription`).
const PRIVILEGES: &[(&str, &str)] = &[
    ("System.Anonymous", "Anonymous"),
    ("System.View", "View"),
    ("System.Read", "Read"),
    ("Global.Diagnostics", "Diagnostics"),
    ("Global.Licenses", "Licenses"),
    ("Global.Settings", "Settings"),
    ("Authorization.ModifyPermissions", "Modify permission"),
    ("Authorization.ModifyRoles", "Modify role"),
    ("Sessions.TerminateSession", "View and stop sessions"),
    ("Host.Config.AdvancedConfig", "Advanced settings"),
    ("Host.Config.DateTime", "Change date and time settings"),
    ("Host.Config.Firmware", "Firmware"),
    ("Host.Config.Maintenance", "Maintenance"),
    ("Host.Config.Network", "Network configuration"),
    ("Host.Config.Settings", "Change settings"),
    ("Host.Local.ManageUserGroups", "Manage user groups"),
    ("Cryptographer.ManageKeys", "Manage keys"),
];

/// A role's privileges.
fn role_privileges(id: i32) -> Vec<&'static str> {
    let all = PRIVILEGES.iter().map(|(p, _)| *p);
    match id {
        -1 => all.collect(),
        -6 => all.filter(|p| !p.starts_with("Cryptographer.")).collect(),
        -2 => vec!["System.Anonymous", "System.View", "System.Read"],
        -3 => vec!["System.Anonymous", "System.View"],
        -4 => vec!["System.Anonymous"],
        _ => Vec::new(),
    }
}

/// A role's label and summary (`AuthorizationRole.info`).
fn role_info(id: i32) -> (&'static str, &'static str) {
    match id {
        -1 => ("Administrator", "Full access rights"),
        -2 => ("Read-only", "See details of objects, but not make changes"),
        -3 => ("View", "Visibility access (cannot be granted)"),
        -4 => ("Anonymous", "Not logged-in user (cannot be granted)"),
        -5 => ("No access", "Used for restricting granted access"),
        _ => (
            "No cryptography administrator",
            "Full access without Cryptographic operations privileges",
        ),
    }
}

/// The vCenter's permissions (see the module comment).
fn vcenter_permissions() -> Vec<Permission> {
    vec![Permission {
        entity: super::vcenter::ids::ROOT_FOLDER.into(),
        principal: "VSPHERE.LOCAL\\Administrators".into(),
        group: true,
        role: -1,
        propagate: true,
    }]
}

fn all_permissions(vim: &Vim) -> Vec<Permission> {
    match vim.estate {
        Some(_) => vcenter_permissions(),
        None => vim.host.permissions(),
    }
}

/// The entity a permission is on, typed: hosts keep only ids, the type is the inventory's.
fn entity_ref(vim: &Vim, id: &str) -> Option<MoRef> {
    let statics = match vim.estate {
        Some(_) => super::vcenter::ids::STATIC,
        None => super::ids::STATIC,
    };
    statics
        .iter()
        .find(|(t, i)| *i == id && matches!(*t, "Folder" | "Datacenter" | "ComputeResource"))
        .map(|(t, i)| MoRef::new(*t, *i))
        .or_else(|| {
            (vim.estate.is_none() && id == super::ids::HOST).then(|| super::moref("HostSystem", id))
        })
}

fn permission(vim: &Vim, p: &Permission) -> Option<Value> {
    Some(
        Data::new("Permission")
            .with("entity", entity_ref(vim, &p.entity)?)
            .with("principal", p.principal.as_str())
            .with("group", p.group)
            .with("roleId", p.role)
            .with("propagate", p.propagate)
            .into(),
    )
}

fn permission_list(vim: &Vim, ps: &[Permission]) -> Value {
    Value::Array(
        "Permission",
        ps.iter().filter_map(|p| permission(vim, p)).collect(),
    )
}

/// `entity` and its ancestors, nearest first (by each object's `parent`).
fn lineage(vim: &Vim, entity: &MoRef, session: Option<&str>) -> Vec<MoRef> {
    let mut out = vec![entity.clone()];
    while out.len() < 16 {
        let parent = vim
            .properties_only(out.last().unwrap_or(entity), session, Some(&["parent"]))
            .and_then(|d| match d.get("parent") {
                Some(Value::Ref(r)) => Some(r.clone()),
                _ => None,
            });
        match parent {
            Some(p) => out.push(p),
            None => break,
        }
    }
    out
}

/// The role `user` has on `entity`: a permission on the entity itself, else the nearest
/// propagating one above it (vSphere's rule; group memberships are not modelled).
fn effective_role(vim: &Vim, entity: &MoRef, user: &str, session: Option<&str>) -> Option<i32> {
    let all = all_permissions(vim);
    let user = user.strip_prefix("VSPHERE.LOCAL\\").unwrap_or(user);
    let admins = |p: &Permission| {
        // The vCenter's SSO administrator is in its Administrators group.
        p.group
            && vim
                .estate
                .as_ref()
                .is_some_and(|e| e.user.eq_ignore_ascii_case(user))
    };
    lineage(vim, entity, session)
        .iter()
        .enumerate()
        .find_map(|(depth, e)| {
            all.iter()
                .find(|p| {
                    p.entity == e.id
                        && (depth == 0 || p.propagate)
                        && ((!p.group && p.principal == user) || admins(p))
                })
                .map(|p| p.role)
        })
}

/// Permissions are on inventory entities only.
const ENTITY_TYPES: &[&str] = &[
    "Folder",
    "Datacenter",
    "ComputeResource",
    "ClusterComputeResource",
    "HostSystem",
];

fn entity_param(vim: &Vim, req: &Call, name: &str, session: Option<&str>) -> Result<MoRef, Fault> {
    let e = parse_moref(required(req, name)?).map_err(|e| bad_param(req, e))?;
    if !vim.exists(&e, session) {
        return Err(not_found(&e));
    }
    if !ENTITY_TYPES.contains(&e.ty.as_str()) {
        return Err(Fault::invalid_argument(
            format!(
                "A specified parameter was not correct: {name} ({} is not a managed entity)",
                e.ty
            ),
            Some(name),
        ));
    }
    Ok(e)
}

/// The objects a repeated parameter names (`entity`, `entities`), each one that exists.
fn entities_param(
    vim: &Vim,
    req: &Call,
    name: &str,
    session: Option<&str>,
) -> Result<Vec<MoRef>, Fault> {
    let mut out = Vec::new();
    for el in req.params.all(name) {
        let e = parse_moref(el).map_err(|e| bad_param(req, e))?;
        if !vim.exists(&e, session) {
            return Err(not_found(&e));
        }
        out.push(e);
    }
    Ok(out)
}

fn priv_ids(req: &Call) -> Vec<String> {
    req.params
        .all("privId")
        .map(|e| e.text.trim().to_string())
        .collect()
}

fn entity_privileges(
    vim: &Vim,
    e: &MoRef,
    user: &str,
    wanted: &[String],
    session: Option<&str>,
) -> Value {
    let granted = effective_role(vim, e, user, session)
        .map(role_privileges)
        .unwrap_or_default();
    Data::new("EntityPrivilege")
        .with("entity", e.clone())
        .with(
            "privAvailability",
            Value::Array(
                "PrivilegeAvailability",
                wanted
                    .iter()
                    .map(|p| {
                        Data::new("PrivilegeAvailability")
                            .with("privId", p.as_str())
                            .with("isGranted", granted.contains(&p.as_str()))
                            .into()
                    })
                    .collect(),
            ),
        )
        .into()
}

fn session_user(vim: &Vim, key: &str) -> Option<String> {
    super::session_manager::session_by_key(vim, key).map(|s| s.user.clone())
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let session = ctx.session.clone();
    let session = session.as_deref();
    match req.method.as_str() {
        "RetrieveAllPermissions" => Ok(Some(permission_list(vim, &all_permissions(vim)))),
        "RetrieveEntityPermissions" => {
            let e = entity_param(vim, req, "entity", session)?;
            let inherited = required_bool(req, "inherited")?;
            let all = all_permissions(vim);
            let mut found = Vec::new();
            for (depth, a) in lineage(vim, &e, session).iter().enumerate() {
                if depth > 0 && !inherited {
                    break;
                }
                // An inherited permission is reported with the entity it is set on.
                found.extend(
                    all.iter()
                        .filter(|p| p.entity == a.id && (depth == 0 || p.propagate))
                        .cloned(),
                );
            }
            Ok(Some(permission_list(vim, &found)))
        }
        "RetrieveRolePermissions" => {
            let id = parse_int(required(req, "roleId")?).map_err(|e| bad_param(req, e))?;
            let id = i32::try_from(id)
                .ok()
                .filter(|i| perms::role_name(*i).is_some());
            let Some(id) = id else {
                return Err(Fault::new(
                    "NotFound",
                    "The object or item referred to could not be found.",
                ));
            };
            let with: Vec<Permission> = all_permissions(vim)
                .into_iter()
                .filter(|p| p.role == id)
                .collect();
            Ok(Some(permission_list(vim, &with)))
        }
        "HasPrivilegeOnEntity" | "HasPrivilegeOnEntities" => {
            let key = required(req, "sessionId")?.text.trim().to_string();
            let user = session_user(vim, &key).unwrap_or_default();
            let wanted = priv_ids(req);
            if req.method == "HasPrivilegeOnEntity" {
                let e = entity_param(vim, req, "entity", session)?;
                let granted = effective_role(vim, &e, &user, session)
                    .map(role_privileges)
                    .unwrap_or_default();
                return Ok(Some(Value::Array(
                    "boolean",
                    wanted
                        .iter()
                        .map(|p| Value::Bool(granted.contains(&p.as_str())))
                        .collect(),
                )));
            }
            let es = entities_param(vim, req, "entity", session)?;
            Ok(Some(Value::Array(
                "EntityPrivilege",
                es.iter()
                    .map(|e| entity_privileges(vim, e, &user, &wanted, session))
                    .collect(),
            )))
        }
        "HasUserPrivilegeOnEntities" => {
            let user = required(req, "userName")?.text.trim().to_string();
            let wanted = priv_ids(req);
            let es = entities_param(vim, req, "entities", session)?;
            Ok(Some(Value::Array(
                "EntityPrivilege",
                es.iter()
                    .map(|e| entity_privileges(vim, e, &user, &wanted, session))
                    .collect(),
            )))
        }
        "FetchUserPrivilegeOnEntities" => {
            let user = required(req, "userName")?.text.trim().to_string();
            let es = entities_param(vim, req, "entities", session)?;
            Ok(Some(Value::Array(
                "UserPrivilegeResult",
                es.iter()
                    .map(|e| {
                        let granted = effective_role(vim, e, &user, session)
                            .map(role_privileges)
                            .unwrap_or_default();
                        Data::new("UserPrivilegeResult")
                            .with("entity", e.clone())
                            .with(
                                "privileges",
                                Value::strings(granted.into_iter().map(String::from)),
                            )
                            .into()
                    })
                    .collect(),
            )))
        }
        "SetEntityPermissions" => {
            let e = entity_param(vim, req, "entity", session)?;
            if vim.estate.is_some() {
                return Err(Fault::new(
                    "NotSupported",
                    "The vCenter's permissions are fixed in this simulator.",
                ));
            }
            let mut new = Vec::new();
            for el in req.params.all("permission") {
                let text = |n: &str| el.child_text(n).map(str::trim);
                let principal = text("principal")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| bad_param(req, "Permission without principal".into()))?;
                let role = text("roleId")
                    .and_then(|r| r.parse::<i32>().ok())
                    .ok_or_else(|| bad_param(req, "Permission without roleId".into()))?;
                if perms::role_name(role).is_none() {
                    return Err(Fault::invalid_argument(
                        format!("No role with id {role}"),
                        Some("roleId"),
                    ));
                }
                let group = text("group") == Some("true") || text("group") == Some("1");
                if !group && !vim.host.check_user_exists(principal) {
                    return Err(Fault::new(
                        "UserNotFound",
                        format!("The user or group named '{principal}' does not exist."),
                    )
                    .with("principal", principal)
                    .with("unresolved", true));
                }
                new.push(Permission {
                    entity: e.id.clone(),
                    principal: principal.to_string(),
                    group,
                    role,
                    propagate: text("propagate") != Some("false") && text("propagate") != Some("0"),
                });
            }
            if vim.host.permissions_in_store() && e.id != perms::ROOT_ENTITY {
                return Err(Fault::new(
                    "NotSupported",
                    format!(
                        "This host keeps permissions on {} only.",
                        perms::ROOT_ENTITY
                    ),
                ));
            }
            // The host checks them all before it writes any: a refused call changes nothing.
            vim.host.set_permissions(new).map_err(super::host_fault)?;
            Ok(None)
        }
        "RemoveEntityPermission" => {
            let e = entity_param(vim, req, "entity", session)?;
            let user = required(req, "user")?.text.trim().to_string();
            let group = required_bool(req, "isGroup")?;
            if vim.estate.is_some() {
                return Err(Fault::new(
                    "NotSupported",
                    "The vCenter's permissions are fixed in this simulator.",
                ));
            }
            match vim
                .host
                .remove_permission(&e.id, &user, group)
                .map_err(super::host_fault)?
            {
                true => Ok(None),
                false => Err(Fault::new(
                    "NotFound",
                    "The object or item referred to could not be found.",
                )),
            }
        }
        _ => Err(method_not_found(req)),
    }
}

pub fn properties() -> Data {
    let desc = |key: &str, label: &str| -> Value {
        Data::new("ElementDescription")
            .with("label", label)
            .with("summary", label)
            .with("key", key)
            .into()
    };
    let mut groups: Vec<&str> = PRIVILEGES
        .iter()
        .map(|(p, _)| p.rsplit_once('.').map_or(*p, |(g, _)| g))
        .collect();
    groups.dedup();
    Data::new("AuthorizationManager")
        .with(
            "privilegeList",
            Value::Array(
                "AuthorizationPrivilege",
                PRIVILEGES
                    .iter()
                    .map(|(id, _)| {
                        let (group, name) = id.rsplit_once('.').unwrap_or(("", id));
                        Data::new("AuthorizationPrivilege")
                            .with("privId", *id)
                            .with("onParent", false)
                            .with("name", name)
                            .with("privGroupName", group)
                            .into()
                    })
                    .collect(),
            ),
        )
        .with(
            "roleList",
            Value::Array(
                "AuthorizationRole",
                ROLES
                    .iter()
                    .map(|(id, name)| {
                        let (label, summary) = role_info(*id);
                        Data::new("AuthorizationRole")
                            .with("roleId", *id)
                            .with("system", true)
                            .with("name", *name)
                            .with(
                                "info",
                                Data::new("Description")
                                    .with("label", label)
                                    .with("summary", summary),
                            )
                            .with(
                                "privilege",
                                Value::strings(role_privileges(*id).into_iter().map(String::from)),
                            )
                            .into()
                    })
                    .collect(),
            ),
        )
        .with(
            "description",
            Data::new("AuthorizationDescription")
                .with(
                    "privilege",
                    Value::Array(
                        "ElementDescription",
                        PRIVILEGES.iter().map(|(k, l)| desc(k, l)).collect(),
                    ),
                )
                .with(
                    "privilegeGroup",
                    Value::Array(
                        "ElementDescription",
                        groups.iter().map(|g| desc(g, g)).collect(),
                    ),
                ),
        )
}
