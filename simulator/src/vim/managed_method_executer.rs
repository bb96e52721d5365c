//! ReflectManagedMethodExecuter `ha-managed-method-executer`: how clients run esxcli commands
//! over the API (HostSystem.RetrieveManagedMethodExecuter returns it; govc `host.esxcli`,
//! PowerCLI `Get-EsxCli -V2`, pyvisdk call it).
//!
//! `ExecuteSoap(moid, version, method, argument[])` follows hostd's executer (its Python twin,
//! pyJack's `ManagedMethodExecuter.py`, is public):
//! - `moid` names a hidden object: an esxcli namespace's handler or the CLIInfo object
//!   ([`super::esxcli`]); anything else is `InvalidArgument(moid)`;
//! - `version` is `urn:vim25/<an API version this host speaks>`, else `InvalidArgument(version)`;
//!   older than 5.0 (the esxcli types' version) is `InvalidArgument(method)`;
//! - `method`'s last dotted part names the method, as given or with its first letter lower-cased,
//!   else `InvalidArgument(method)`;
//! - arguments match the parameters by position (optional ones may be skipped); each `val` is an
//!   XML fragment `<name>value</name>` that must read as the parameter's type; extra, misnamed
//!   or unreadable arguments are `InvalidArgument(argument)`;
//! - the answer is a `ReflectManagedMethodExecuterSoapResult`: `response` holds the serialized
//!   result, or `fault` holds `faultMsg` and the serialized fault (`faultDetail`) when the
//!   method itself failed. Never neither: govc would print `EOF`.

use super::esxcli::{self, wire, ArgValue, Args, CliError, Scalar};
use super::{method_not_found, required, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};
use crate::soap::xml::{self, Element};

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    if !esxcli::over_api(vim.host.profile()) {
        return Err(method_not_found(req));
    }
    match req.method.as_str() {
        "ExecuteSoap" => execute_soap(vim, req).map(Some),
        _ => Err(method_not_found(req)),
    }
}

/// hostd's answer to a bad ExecuteSoap parameter (the message govc prints after
/// `ServerFaultCode: `, docs/esxcli.md).
fn invalid(property: &str) -> Fault {
    Fault::invalid_argument(
        format!("A specified parameter was not correct: {property}"),
        Some(property),
    )
}

/// A parameter slot ExecuteSoap fills from the arguments.
struct Slot {
    name: &'static str,
    ty: Scalar,
    required: bool,
}

/// `FetchCLIInfo(typeName)`.
const FETCH_CLI_INFO: &[Slot] = &[Slot {
    name: "typeName",
    ty: Scalar::Str,
    required: true,
}];

fn execute_soap(vim: &mut Vim, req: &Call) -> Result<Value, Fault> {
    let moid = required(req, "moid")?.text.trim();
    let version = required(req, "version")?.text.trim();
    let method = required(req, "method")?.text.trim();
    let mut arguments = Vec::new();
    for a in req.params.all("argument") {
        let name = a.child_text("name").ok_or_else(|| invalid("argument"))?;
        let val = a.child("val").map(|v| v.text.as_str()).unwrap_or("");
        arguments.push((name, val));
    }
    let profile = vim.host.profile().clone();
    let target = if moid == esxcli::CLI_INFO_ID {
        None
    } else {
        Some(esxcli::by_handler(&profile, moid).ok_or_else(|| invalid("moid"))?)
    };
    let number = version
        .strip_prefix("urn:vim25/")
        .filter(|v| *v == profile.api_version || profile.prior_api_versions.iter().any(|p| p == v))
        .ok_or_else(|| invalid("version"))?;
    let number = number.to_string();
    // The CLI types are vim.version.version7 (5.0): older versions do not have the methods.
    if !at_least_5_0(&number) {
        return Err(invalid("method"));
    }
    Ok(match target {
        None => {
            let name = method.rsplit('.').next().unwrap_or(method);
            if name != "FetchCLIInfo" && !esxcli::uncapitalized_eq(name, "fetchCLIInfo") {
                return Err(invalid("method"));
            }
            let args = bind(FETCH_CLI_INFO, &arguments)?;
            let type_name = args.str("typeName").unwrap_or_default();
            match type_name
                .strip_prefix(esxcli::TYPE_PREFIX)
                .and_then(|ns| esxcli::namespace(&profile, ns))
            {
                Some(ns) => response(wire::cli_info(ns, &number)),
                // What FetchCLIInfo raises for a namespace the host lacks: how an older host
                // answers `esxcli system settings encryption ...`.
                None => fault(
                    "The object or item referred to could not be found.",
                    wire::not_found(&number),
                ),
            }
        }
        Some(ns) => {
            let cmd = esxcli::command(ns, method).ok_or_else(|| invalid("method"))?;
            let slots: Vec<Slot> = cmd
                .params
                .iter()
                .map(|p| Slot {
                    name: p.name,
                    ty: p.ty,
                    required: false,
                })
                .collect();
            let args = bind(&slots, &arguments)?;
            if let Some(bad) = cmd.params.iter().find(|p| {
                !p.constraint.is_empty()
                    && args.str(p.name).is_some_and(|v| !p.constraint.contains(&v))
            }) {
                // esxcli checks a parameter's constraint before the command runs.
                let e = CliError::new(format!(
                    "Invalid data constraint for parameter '{}'.",
                    bad.name
                ));
                return Ok(cli_fault(&e, &number));
            }
            match (cmd.run)(vim, &args) {
                Ok(out) => response(wire::result(ns, cmd, &out, &number)),
                Err(e) => cli_fault(&e, &number),
            }
        }
    })
}

fn at_least_5_0(v: &str) -> bool {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 0)
}

fn response(xml: String) -> Value {
    Data::new("ReflectManagedMethodExecuterSoapResult")
        .with("response", xml)
        .into()
}

fn fault(msg: &str, detail: String) -> Value {
    Data::new("ReflectManagedMethodExecuterSoapResult")
        .with(
            "fault",
            Data::new("ReflectManagedMethodExecuterSoapFault")
                .with("faultMsg", msg)
                .with("faultDetail", detail),
        )
        .into()
}

/// A failed esxcli command: govc prints the message, `EsxCLI.CLIFault.summary` on a real host
/// (govmomi issues #2148, #3073); the lines are in the detail.
fn cli_fault(e: &CliError, version: &str) -> Value {
    fault("EsxCLI.CLIFault.summary", wire::cli_fault(e, version))
}

/// Matches arguments to parameter slots by position, as hostd does: an optional parameter
/// whose name is not the next argument's is skipped; anything left over, misnamed or
/// unreadable is `InvalidArgument(argument)`.
fn bind(slots: &[Slot], arguments: &[(&str, &str)]) -> Result<Args, Fault> {
    if arguments.len() > slots.len() {
        return Err(invalid("argument"));
    }
    let mut next = arguments.iter().peekable();
    let mut values = Vec::new();
    for s in slots {
        match next.peek() {
            Some((name, val)) if *name == s.name => {
                values.push((s.name, read(s, val).ok_or_else(|| invalid("argument"))?));
                next.next();
            }
            _ if !s.required => {}
            _ => return Err(invalid("argument")),
        }
    }
    if next.next().is_some() {
        return Err(invalid("argument"));
    }
    Ok(Args::new(values))
}

/// Reads `<name>value</name>`, the serialized argument (clients do not escape the value for
/// this inner document: a `<` or `&` in it makes the fragment unreadable, as on a real host).
fn read(slot: &Slot, val: &str) -> Option<ArgValue> {
    let doc = format!(
        "<a xmlns:xsi=\"{}\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">{val}</a>",
        xml::NS_XSI
    );
    let root: Element = xml::parse(doc.as_bytes()).ok()?;
    let [el] = root.children.as_slice() else {
        return None;
    };
    if el.name != slot.name || !el.children.is_empty() {
        return None;
    }
    let text = el.text.as_str();
    Some(match slot.ty {
        Scalar::Str => ArgValue::Str(text.to_string()),
        Scalar::Bool => ArgValue::Bool(match text.trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return None,
        }),
        Scalar::Long => ArgValue::Long(text.trim().parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> Vec<Slot> {
        ["a", "b", "c"]
            .into_iter()
            .map(|name| Slot {
                name,
                ty: Scalar::Bool,
                required: false,
            })
            .collect()
    }

    #[test]
    fn arguments_bind_by_position_and_bad_ones_are_invalid_argument() {
        let ok = bind(&slots(), &[("a", "<a>true</a>"), ("c", "<c>0</c>")]).unwrap();
        assert_eq!(
            (ok.bool("a"), ok.bool("b"), ok.bool("c")),
            (Some(true), None, Some(false))
        );
        for bad in [
            vec![("c", "<c>1</c>"), ("a", "<a>1</a>")], // out of order
            vec![("x", "<x>1</x>")],                    // no such parameter
            vec![("a", "<a>yes</a>")],                  // not a boolean
            vec![("a", "<a>1</a><a>0</a>")],            // twice
            vec![("a", "<b>1</b>")],                    // misnamed inside
            vec![("a", "<a>1")],                        // malformed
            vec![("a", "")],                            // empty
            vec![("a", "<a>1</a>"), ("a", "<a>1</a>")],
            vec![("a", "<a/>"), ("b", "<b/>"), ("c", "<c/>"), ("d", "<d/>")],
        ] {
            let e = bind(&slots(), &bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?}"));
            assert_eq!(e.ty, "InvalidArgument", "{bad:?}");
            assert!(e.message.ends_with(": argument"), "{}", e.message);
        }
        let req = [Slot {
            name: "typeName",
            ty: Scalar::Str,
            required: true,
        }];
        assert!(bind(&req, &[]).is_err(), "a required parameter");
        let s = bind(&req, &[("typeName", "<typeName>a&amp;b</typeName>")]).unwrap();
        assert_eq!(s.str("typeName"), Some("a&b"));
        assert!(bind(&req, &[("typeName", "<typeName>esx<1>&x</typeName>")]).is_err());
    }

    #[test]
    fn versions_from_5_0_on_have_the_cli() {
        assert!(at_least_5_0("5.0") && at_least_5_0("8.0.3.0") && at_least_5_0("6.7.3"));
        assert!(!at_least_5_0("4.1") && !at_least_5_0("x"));
    }
}
