//! SearchIndex (`ha-searchindex` on a host, `SearchIndex` on a vCenter, as vcsim's captures of
//! both show): finding an entity by inventory path, by name under a parent, or a host by its
//! hardware UUID, DNS name or IP address. govmomi's Finder and govc's `-host.ip`, `-host.dns`,
//! `-host.uuid` and `-host.ipath` flags use it, and so does the common pyVmomi idiom
//! `content.searchIndex.FindByDnsName(...)` (issue 13).
//!
//! There are no virtual machines, so every `vmSearch=true` search finds nothing.

use super::{bad_param, method_not_found, not_found, required, required_bool, Ctx, Vim};
use crate::api::call::{parse_bool, parse_moref};
use crate::api::{Call, Fault, MoRef, Value};

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let session = ctx.session.as_deref();
    match req.method.as_str() {
        "FindByInventoryPath" => {
            let path = required(req, "inventoryPath")?.text.as_str();
            Ok(by_inventory_path(vim, session, path).map(Value::Ref))
        }
        "FindChild" => {
            let entity = parse_moref(required(req, "entity")?).map_err(|e| bad_param(req, e))?;
            if !vim.exists(&entity, session) {
                return Err(not_found(&entity));
            }
            let name = required(req, "name")?.text.as_str();
            Ok(child_named(vim, session, &entity, name).map(Value::Ref))
        }
        "FindByUuid" | "FindAllByUuid" | "FindByDnsName" | "FindAllByDnsName" | "FindByIp"
        | "FindAllByIp" => {
            let (key, what) = match req.method.trim_start_matches("FindAll") {
                m if m.ends_with("Uuid") => ("uuid", Key::Uuid),
                m if m.ends_with("DnsName") => ("dnsName", Key::DnsName),
                _ => ("ip", Key::Ip),
            };
            let value = required(req, key)?.text.trim();
            datacenter_scope(vim, session, req)?;
            let vm_search = required_bool(req, "vmSearch")?;
            if let Some(i) = req.param("instanceUuid") {
                parse_bool(i).map_err(|e| bad_param(req, e))?;
            }
            // No virtual machines: a VM search finds nothing.
            let found = if vm_search {
                Vec::new()
            } else {
                hosts_matching(vim, what, value)
            };
            Ok(if req.method.starts_with("FindAll") {
                Some(Value::refs(found))
            } else {
                found.into_iter().next().map(Value::Ref)
            })
        }
        "FindByDatastorePath" => {
            datacenter_scope(vim, session, req)?;
            required(req, "path")?;
            Ok(None)
        }
        _ => Err(method_not_found(req)),
    }
}

#[derive(Clone, Copy)]
enum Key {
    Uuid,
    DnsName,
    Ip,
}

/// The optional `datacenter` a search is limited to: it must exist (there is one, holding every
/// host, so it limits nothing).
fn datacenter_scope(vim: &Vim, session: Option<&str>, req: &Call) -> Result<(), Fault> {
    let Some(el) = req.param("datacenter") else {
        return Ok(());
    };
    let dc = parse_moref(el).map_err(|e| bad_param(req, e))?;
    if dc.ty != "Datacenter" || !vim.exists(&dc, session) {
        return Err(not_found(&dc));
    }
    Ok(())
}

/// The hosts whose hardware UUID (`hardware.systemInfo.uuid`), DNS name (the host's name as its
/// own network configuration has it) or management address is `value`. UUIDs and DNS names
/// compare without regard to case [inferred: both are case-insensitive identifiers].
fn hosts_matching(vim: &Vim, key: Key, value: &str) -> Vec<MoRef> {
    let matches = |h: &Vim, address: Option<&str>| match key {
        Key::Uuid => h.host.api_uuid().eq_ignore_ascii_case(value),
        Key::DnsName => h.host.hostname().eq_ignore_ascii_case(value),
        Key::Ip => address == Some(value),
    };
    match vim.estate() {
        None => {
            let address = vim.cfg.address.map(|a| a.to_string());
            if matches(vim, address.as_deref()) {
                vec![super::moref("HostSystem", super::ids::HOST)]
            } else {
                Vec::new()
            }
        }
        // A vCenter knows a host's address as the one it was added by (no need to ask it).
        Some(est) => (0..est.hosts.len())
            .filter(|&i| match key {
                Key::Ip => est.hosts[i].name == value,
                _ => matches(&est.host(i, vim.now()), None),
            })
            .map(super::vcenter::host_ref)
            .collect(),
    }
}

/// `Datacenter/host/Cluster-1/esx01`: names from the root folder down, slashes optional at either
/// end; `%2f`, `%5c` and `%25` in a name stand for `/`, `\` and `%` (the API reference's escaping).
fn by_inventory_path(vim: &Vim, session: Option<&str>, path: &str) -> Option<MoRef> {
    let root = super::service_instance::root_folder(vim);
    let mut names = path.split('/').filter(|p| !p.is_empty()).peekable();
    // "/" is the root folder; an empty path names nothing (as vcsim answers).
    if names.peek().is_none() {
        return (path.trim() == "/").then_some(root);
    }
    names.try_fold(root, |at, name| {
        child_named(vim, session, &at, &unescape_name(name))
    })
}

fn unescape_name(name: &str) -> String {
    if !name.contains('%') {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3).unwrap_or("");
        match code.to_ascii_lowercase().as_str() {
            "2f" => out.push('/'),
            "5c" => out.push('\\'),
            "25" => out.push('%'),
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
                continue;
            }
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    out
}

/// The direct child of `parent` named `name` (a folder's entities, a datacenter's four folders,
/// a compute resource's hosts).
fn child_named(vim: &Vim, session: Option<&str>, parent: &MoRef, name: &str) -> Option<MoRef> {
    let mut children = Vec::new();
    vim.descendants(parent, false, &mut children);
    children.into_iter().find(|c| {
        vim.properties_only(c, session, Some(&["name"]))
            .and_then(|d| match d.get("name") {
                Some(Value::Str(n)) => Some(n == name),
                _ => None,
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::unescape_name;

    #[test]
    fn names_unescape_as_the_api_reference_says() {
        assert_eq!(unescape_name("a%2fb%5Cc%25d"), "a/b\\c%d");
        assert_eq!(unescape_name("plain"), "plain");
        assert_eq!(unescape_name("100%"), "100%");
        assert_eq!(unescape_name("%zz%2"), "%zz%2");
    }
}
