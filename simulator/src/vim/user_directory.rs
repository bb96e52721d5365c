//! UserDirectory (`ha-user-directory` on a host, `UserDirectory` on a vCenter):
//! RetrieveUserGroups searches the users and groups a permission can name. On a host those are
//! the local accounts of `/etc/passwd` and `/etc/group` (Ansible's `vmware_local_user_info` lists
//! them this way: principal, full name, uid, shell access); on a vCenter, its SSO administrator
//! and the Administrators group of the `vsphere.local` domain [inferred: a fresh vCenter].

use super::{bad_param, method_not_found, required_bool, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};

/// One user or group.
struct Principal {
    name: String,
    full_name: String,
    group: bool,
    /// uid or gid (hosts only).
    id: Option<i32>,
    shell: bool,
    /// The groups a user is in (primary and supplementary); a group's members.
    related: Vec<String>,
}

/// The host's accounts, from the live /etc (what hostd reads).
fn host_principals(vim: &Vim) -> Vec<Principal> {
    let passwd = vim
        .host
        .read_text("etc/passwd")
        .ok()
        .flatten()
        .unwrap_or_default();
    let group = vim
        .host
        .read_text("etc/group")
        .ok()
        .flatten()
        .unwrap_or_default();
    // name → (gid, members)
    let groups: Vec<(&str, Option<i32>, Vec<&str>)> = group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && !f[0].is_empty()).then(|| {
                let members = f[3].split(',').filter(|m| !m.is_empty()).collect();
                (f[0], f[2].parse().ok(), members)
            })
        })
        .collect();
    let mut out: Vec<Principal> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 || f[0].is_empty() {
                return None;
            }
            let gid: Option<i32> = f[3].parse().ok();
            let related = groups
                .iter()
                .filter(|(_, g, members)| (gid.is_some() && *g == gid) || members.contains(&f[0]))
                .map(|(n, _, _)| n.to_string())
                .collect();
            Some(Principal {
                name: f[0].to_string(),
                full_name: f[4].to_string(),
                group: false,
                id: f[2].parse().ok(),
                shell: !f[6].ends_with("nologin"),
                related,
            })
        })
        .collect();
    out.extend(groups.iter().map(|(name, gid, members)| Principal {
        name: name.to_string(),
        full_name: String::new(),
        group: true,
        id: *gid,
        shell: false,
        related: members.iter().map(|m| m.to_string()).collect(),
    }));
    out
}

fn vcenter_principals(vim: &Vim) -> Vec<Principal> {
    let admin = vim
        .estate
        .as_ref()
        .map(|e| {
            e.user
                .split('@')
                .next()
                .unwrap_or("Administrator")
                .to_string()
        })
        .unwrap_or_default();
    vec![
        Principal {
            name: admin.clone(),
            full_name: admin.clone(),
            group: false,
            id: None,
            shell: false,
            related: vec!["Administrators".into()],
        },
        Principal {
            name: "Administrators".into(),
            full_name: String::new(),
            group: true,
            id: None,
            shell: false,
            related: vec![admin],
        },
    ]
}

fn opt_text<'a>(req: &'a Call, name: &str) -> Option<&'a str> {
    req.param(name)
        .map(|e| e.text.trim())
        .filter(|s| !s.is_empty())
}

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "RetrieveUserGroups" => {
            let search = req
                .param("searchStr")
                .map(|e| e.text.trim())
                .ok_or_else(|| bad_param(req, "missing required parameter 'searchStr'".into()))?;
            let exact = required_bool(req, "exactMatch")?;
            let users = required_bool(req, "findUsers")?;
            let groups = required_bool(req, "findGroups")?;
            let domain = opt_text(req, "domain");
            let (principals, domains) = match vim.estate {
                Some(_) => (vcenter_principals(vim), &["vsphere.local"][..]),
                None => (host_principals(vim), &[][..]),
            };
            // A host has only its local accounts; a vCenter knows its SSO domain.
            if let Some(d) = domain {
                if !domains.iter().any(|k| k.eq_ignore_ascii_case(d)) {
                    return Err(Fault::new(
                        "NotFound",
                        "The object or item referred to could not be found.",
                    ));
                }
            }
            let member_of = opt_text(req, "belongsToGroup");
            let has_member = opt_text(req, "belongsToUser");
            let matches = |n: &str| match exact {
                true => n == search,
                false => search.is_empty() || n.to_lowercase().contains(&search.to_lowercase()),
            };
            let found: Vec<Value> = principals
                .iter()
                .filter(|p| if p.group { groups } else { users })
                .filter(|p| matches(&p.name))
                .filter(|p| member_of.is_none_or(|g| !p.group && p.related.iter().any(|r| r == g)))
                .filter(|p| has_member.is_none_or(|u| p.group && p.related.iter().any(|r| r == u)))
                .map(|p| {
                    let ty = if vim.estate.is_some() {
                        "UserSearchResult"
                    } else {
                        "PosixUserSearchResult"
                    };
                    let d = Data::new(ty)
                        .with("principal", p.name.as_str())
                        .with("fullName", p.full_name.as_str())
                        .with("group", p.group);
                    match vim.estate {
                        Some(_) => d.into(),
                        None => d.opt("id", p.id).with("shellAccess", p.shell).into(),
                    }
                })
                .collect();
            Ok(Some(Value::Array("UserSearchResult", found)))
        }
        _ => Err(method_not_found(req)),
    }
}

pub fn properties(vim: &Vim) -> Data {
    let domains: Vec<String> = match vim.estate {
        Some(_) => vec!["vsphere.local".into()],
        None => Vec::new(),
    };
    Data::new("UserDirectory").with("domainList", Value::strings(domains))
}
