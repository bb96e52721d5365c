//! `esxcli system version get`: product, version, build, update and patch, from the host's
//! profile (docs/esxcli.md; the texts are a real host's, as govmomi's dump has them).
//!
//! ```text
//! Build:    Releasebuild-24022510
//! Patch:    0
//! Product:  VMware ESXi
//! Update:   3
//! Version:  8.0.3
//! ```

use super::{Args, CliError, Command, Namespace, Output, Ret, Scalar, Struct};
use crate::vim::Vim;

pub static NAMESPACE: Namespace = Namespace {
    name: "system.version",
    help: "Commands to get version information.",
    available: super::over_api,
    commands: &[Command {
        name: "get",
        help: "Display the product name, version and build information.",
        params: &[],
        ret: Ret::Struct(&VERSION_GET),
        // Real esxcli prints the fields in this order; govc sorts them by name.
        hints: &[
            ("fields:VersionGet", "Product,Version,Build,Update,Patch"),
            ("formatter", "simple"),
        ],
        run: get,
    }],
};

static VERSION_GET: Struct = Struct {
    name: "VersionGet",
    fields: &[
        ("Build", Scalar::Str),
        ("Patch", Scalar::Str),
        ("Product", Scalar::Str),
        ("Update", Scalar::Str),
        ("Version", Scalar::Str),
    ],
};

fn get(vim: &mut Vim, _: &Args) -> Result<Output, CliError> {
    let p = vim.host.profile();
    // Version and build agree with ServiceContent.about (facts section 4).
    Ok(Output::Struct(vec![
        format!("Releasebuild-{}", p.build),
        p.patch.to_string(),
        p.product_name.clone(),
        p.update().to_string(),
        p.version.clone(),
    ]))
}
