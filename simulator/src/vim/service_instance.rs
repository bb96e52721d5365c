//! ServiceInstance: the root object. `RetrieveServiceContent` needs no session (clients call it
//! before Login); its ids and `about` are a standalone host's (facts section 3).

use super::{ids, method_not_found, moref, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};
use crate::profile::Profile;

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "RetrieveServiceContent" => Ok(Some(content(vim).into())),
        "CurrentTime" => Ok(Some(Value::Time(vim.now()))),
        _ => Err(method_not_found(req)),
    }
}

/// `about`: what `vmware -v` and the host client show.
pub fn about(p: &Profile) -> Data {
    Data::new("AboutInfo")
        .with("name", "VMware ESXi")
        .with("fullName", p.full_name())
        .with("vendor", "VMware, Inc.")
        .with("version", p.version.as_str())
        .with("build", p.build.to_string())
        .with("localeVersion", "INTL")
        .with("localeBuild", "000")
        .with("osType", "vmnix-x86")
        .with("productLineId", "embeddedEsx")
        .with("apiType", "HostAgent")
        .with("apiVersion", p.api_version.as_str())
        .with("licenseProductName", "VMware ESX Server")
        .with("licenseProductVersion", license_version(p))
}

/// The license product version: the major version with `.0` (`6.0` for every 6.x).
pub(crate) fn license_version(p: &Profile) -> String {
    let major = p.version.split('.').next().unwrap_or("6");
    format!("{major}.0")
}

/// ServiceContent, fields in schema order (`searchIndex` after `licenseManager`, as on a real
/// host); only the managers this simulator serves. A host has no `customFieldsManager` (a
/// vCenter does), as govmomi's capture of a real host shows.
pub fn content(vim: &Vim) -> Data {
    if let Some(est) = &vim.estate {
        return super::vcenter::content(est);
    }
    Data::new("ServiceContent")
        .with("rootFolder", moref("Folder", ids::ROOT_FOLDER))
        .with(
            "propertyCollector",
            moref("PropertyCollector", ids::PROPERTY_COLLECTOR),
        )
        .with("viewManager", moref("ViewManager", ids::VIEW_MANAGER))
        .with("about", about(vim.host.profile()))
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
            "accountManager",
            moref("HostLocalAccountManager", ids::ACCOUNT_MANAGER),
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

/// The root of the inventory (`ha-folder-root`, or a vCenter's `group-d1`).
pub fn root_folder(vim: &Vim) -> crate::api::MoRef {
    match vim.estate {
        Some(_) => moref("Folder", super::vcenter::ids::ROOT_FOLDER),
        None => moref("Folder", ids::ROOT_FOLDER),
    }
}

pub fn properties(vim: &Vim) -> Data {
    Data::new("ServiceInstance")
        .with("serverClock", vim.now())
        .with(
            "capability",
            Data::new("Capability")
                .with("provisioningSupported", false)
                .with("multiHostSupported", vim.estate.is_some())
                .with("userShellAccessSupported", true),
        )
        .with("content", content(vim))
}
