//! The XML documents ExecuteSoap carries inside its `response` and `faultDetail` strings, as a
//! real host serializes them (the ESXi fixtures govmomi keeps, docs/esxcli.md):
//!
//! ```text
//! <obj xmlns:xsd=".." xmlns:xsi=".." xmlns="urn:vim25" versionId="5.0"
//!      xsi:type="VimEsxCLIsystemhostnamegetFullyQualifiedHostName">
//!   <DomainName>localdomain</DomainName>...</obj>
//! ```
//!
//! A struct result is the root itself, a list is `ArrayOfDataObject` with one `DataObject` per
//! row, a scalar is `xsd:boolean`/`xsd:string`; fields are flat elements, which is all govc
//! reads (it takes the root's `type` attribute and each element's text). The transport escapes
//! the document once more, as the string it is.

use super::{CliError, Command, Namespace, Output, Ret};
use crate::soap::xml::escape;

fn open(out: &mut String, version: &str, xsi_type: &str) {
    out.push_str(
        "<obj xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns=\"urn:vim25\" versionId=\"",
    );
    escape(version, out);
    out.push_str("\" xsi:type=\"");
    out.push_str(xsi_type);
    out.push_str("\">");
}

fn element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape(text, out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// A command's answer. `version` is the API version the call named (`5.0`).
pub fn result(ns: &Namespace, cmd: &Command, output: &Output, version: &str) -> String {
    let mut out = String::with_capacity(512);
    match (&cmd.ret, output) {
        (Ret::Struct(s), Output::Struct(values)) => {
            open(&mut out, version, &super::struct_wsdl_name(ns, cmd, s));
            for ((name, _), v) in s.fields.iter().zip(values) {
                element(&mut out, name, v);
            }
        }
        (Ret::List(s), Output::List(rows)) => {
            open(&mut out, version, "ArrayOfDataObject");
            let row_type = super::struct_wsdl_name(ns, cmd, s);
            for row in rows {
                out.push_str("<DataObject xsi:type=\"");
                out.push_str(&row_type);
                out.push_str("\">");
                for ((name, _), v) in s.fields.iter().zip(row) {
                    element(&mut out, name, v);
                }
                out.push_str("</DataObject>");
            }
        }
        (_, Output::Bool(b)) => {
            open(&mut out, version, "xsd:boolean");
            out.push_str(if *b { "true" } else { "false" });
        }
        // A command whose code answers another shape than it declares: say so, as a CLI error
        // would, rather than send what no client can read.
        _ => {
            return cli_fault(
                &CliError::new(format!("{}.{}: internal error", ns.name, cmd.name)),
                version,
            )
        }
    }
    out.push_str("</obj>");
    out
}

/// FetchCLIInfo's answer (`vim.CLIInfo.Info`, VMODL field order): the namespace, its methods,
/// their parameters and hints.
pub fn cli_info(ns: &Namespace, version: &str) -> String {
    let mut out = String::with_capacity(2048);
    open(&mut out, version, "VimCLIInfoInfo");
    element(&mut out, "name", ns.name);
    element(
        &mut out,
        "displayName",
        ns.name.rsplit('.').next().unwrap_or(ns.name),
    );
    element(&mut out, "help", ns.help);
    for c in ns.commands {
        out.push_str("<method>");
        element(&mut out, "name", c.name);
        element(&mut out, "displayName", c.name);
        element(&mut out, "help", c.help);
        for p in c.params {
            out.push_str("<param>");
            element(&mut out, "name", p.name);
            element(&mut out, "displayName", p.display);
            for a in p.aliases {
                element(&mut out, "aliases", a);
            }
            for v in p.constraint {
                element(&mut out, "constraint", v);
            }
            element(&mut out, "help", p.help);
            // `flag` marks options that take no value; every option here takes one.
            element(&mut out, "flag", "false");
            out.push_str("</param>");
        }
        for (k, v) in c.hints {
            out.push_str("<hints>");
            element(&mut out, "key", k);
            element(&mut out, "value", v);
            out.push_str("</hints>");
        }
        out.push_str("</method>");
    }
    out.push_str("</obj>");
    out
}

/// `vim.EsxCLI.CLIFault` with its message lines (the fault detail of a failed command).
pub fn cli_fault(e: &CliError, version: &str) -> String {
    let mut out = String::with_capacity(256);
    open(&mut out, version, "VimEsxCLICLIFault");
    for line in &e.0 {
        element(&mut out, "errMsg", line);
    }
    out.push_str("</obj>");
    out
}

/// `vim.fault.NotFound` (FetchCLIInfo of a namespace the host does not have).
pub fn not_found(version: &str) -> String {
    let mut out = String::with_capacity(200);
    open(&mut out, version, "NotFound");
    out.push_str("</obj>");
    out
}
