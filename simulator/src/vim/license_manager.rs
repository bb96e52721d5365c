//! LicenseManager (`ha-license-manager` on a host, `LicenseManager` on a vCenter): the licenses
//! `govc license.ls` and PowerCLI's `Get-VMHost | Select LicenseKey` read. A host's license is
//! configuration: `/etc/vmware/license.cfg`, a sticky file a bundle carries; the image's is
//! evaluation mode (`<mode>eval</mode>`), which a client sees as the all-zero key "Evaluation
//! Mode" (vcsim's capture of a host). A `<serial>` in the file is shown as the key [inferred:
//! the layout of a licensed host's file is not in the facts]. Read-only here.

use super::{method_not_found, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};
use crate::soap::xml;

pub const EVAL_KEY: &str = "00000-00000-00000-00000-00000";

/// The key and edition name the host's license.cfg says (evaluation when unreadable).
fn host_license(vim: &Vim) -> (String, &'static str, &'static str) {
    let text = vim
        .host
        .read_text("etc/vmware/license.cfg")
        .ok()
        .flatten()
        .unwrap_or_default();
    let serial = xml::parse(text.as_bytes()).ok().and_then(|root| {
        let mode = root.child_text("mode").map(str::trim)?;
        let serial = root.child_text("serial").map(str::trim)?;
        (mode != "eval" && !serial.is_empty()).then(|| serial.to_string())
    });
    match serial {
        Some(s) => (s, "esx", "VMware ESXi"),
        None => (EVAL_KEY.to_string(), "eval", "Evaluation Mode"),
    }
}

pub fn call(_vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    Err(method_not_found(req))
}

pub fn properties(vim: &Vim) -> Data {
    let (key, edition, name) = match vim.estate {
        Some(_) => (EVAL_KEY.to_string(), "eval", "Evaluation Mode"),
        None => host_license(vim),
    };
    let license = Data::new("LicenseManagerLicenseInfo")
        .with("licenseKey", key)
        .with("editionKey", edition)
        .with("name", name)
        .with("total", 0)
        .with("costUnit", "")
        .with("properties", Value::Array("KeyAnyValue", Vec::new()));
    Data::new("LicenseManager")
        .with(
            "source",
            Data::new("LocalLicenseSource").with("licenseKeys", ""),
        )
        .with("sourceAvailable", true)
        .with(
            "featureInfo",
            Value::Array("LicenseFeatureInfo", Vec::new()),
        )
        .with("licensedEdition", "")
        .with(
            "licenses",
            Value::Array("LicenseManagerLicenseInfo", vec![license.into()]),
        )
}
