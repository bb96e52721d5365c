//! InternalDynamicTypeManager `ha-dynamic-type-manager` (RVC hard-codes the id; pyVmomi's
//! DynamicTypeManagerHelper falls back to it): what type-driven esxcli clients read to learn
//! the CLI. PowerCLI `Get-EsxCli -V2`, newer govc (`host.esxcli.model`) and RVC build the
//! namespace tree from DynamicTypeMgrQueryMoInstances and the commands' parameters and result
//! types from DynamicTypeMgrQueryTypeInfo (docs/esxcli.md). govc 0.24 only retrieves the
//! reference, but a fault there is fatal to it.
//!
//! Both answers come from the same registry as ExecuteSoap ([`super::esxcli`]), in the shapes
//! of a real ESXi 8 host's dump (vcsim's `type_info.go`): every version `vim.version.version5`,
//! every esxcli method faulting `vim.EsxCLI.CLIFault`, optional parameters annotated.

use super::esxcli::{self, Command, Namespace, Ret};
use super::{method_not_found, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};

const VERSION: &str = "vim.version.version5";

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    let profile = vim.host.profile().clone();
    if !esxcli::over_api(&profile) {
        return Err(method_not_found(req));
    }
    let filter = req.param("filterSpec");
    let text = |name: &str| filter.and_then(|f| f.child_text(name)).map(str::to_string);
    match req.method.as_str() {
        // Each hidden object: its id and managed type. A filter matches the id exactly and
        // the type by substring.
        "DynamicTypeMgrQueryMoInstances" => {
            let (id, sub) = (text("id"), text("typeSubstr"));
            let cli_info = (
                esxcli::CLI_INFO_ID.to_string(),
                esxcli::CLI_INFO_TYPE.to_string(),
            );
            let items = esxcli::namespaces(&profile)
                .map(|ns| {
                    (
                        esxcli::handler_id(ns),
                        format!("{}{}", esxcli::TYPE_PREFIX, ns.name),
                    )
                })
                .chain(std::iter::once(cli_info))
                .filter(|(i, t)| {
                    id.as_deref().is_none_or(|want| want == i)
                        && sub.as_deref().is_none_or(|s| t.contains(s))
                })
                .map(|(i, t)| {
                    Data::new("DynamicTypeMgrMoInstance")
                        .with("id", i)
                        .with("moType", t)
                        .into()
                })
                .collect();
            Ok(Some(Value::Array("DynamicTypeMgrMoInstance", items)))
        }
        // Types whose name contains the filter's `typeSubstr` (all without one).
        "DynamicTypeMgrQueryTypeInfo" => {
            let sub = text("typeSubstr").unwrap_or_default();
            Ok(Some(type_info(&profile, &sub).into()))
        }
        _ => Err(method_not_found(req)),
    }
}

fn annotation(name: &str) -> Value {
    Data::new("DynamicTypeMgrAnnotation")
        .with("name", name)
        .into()
}

fn list(ty: &'static str, items: Vec<Data>) -> Value {
    Value::Array(ty, items.into_iter().map(Value::Data).collect())
}

/// A parameter or a result: `DynamicTypeMgrParamTypeInfo`.
fn param(name: &str, ty: String, optional: bool) -> Data {
    let d = Data::new("DynamicTypeMgrParamTypeInfo")
        .with("name", name)
        .with("version", VERSION)
        .with("type", ty);
    if optional {
        d.with("annotation", list_of_annotation())
    } else {
        d
    }
}

fn list_of_annotation() -> Value {
    Value::Array("DynamicTypeMgrAnnotation", vec![annotation("optional")])
}

fn property(name: &str, ty: &str, optional: bool) -> Value {
    let d = Data::new("DynamicTypeMgrPropertyTypeInfo")
        .with("name", name)
        .with("version", VERSION)
        .with("type", ty);
    if optional {
        d.with("annotation", list_of_annotation()).into()
    } else {
        d.into()
    }
}

fn result_type(ns: &Namespace, cmd: &Command) -> (String, bool) {
    match &cmd.ret {
        Ret::Struct(s) => (
            format!("{}{}.{}.{}", esxcli::TYPE_PREFIX, ns.name, cmd.name, s.name),
            false,
        ),
        Ret::List(s) => (
            format!(
                "{}{}.{}.{}[]",
                esxcli::TYPE_PREFIX,
                ns.name,
                cmd.name,
                s.name
            ),
            true,
        ),
        Ret::Bool => ("boolean".to_string(), false),
    }
}

fn managed(ns: &Namespace) -> Data {
    let wsdl = esxcli::wsdl_name(ns);
    let methods = ns
        .commands
        .iter()
        .map(|c| {
            let (ret, optional) = result_type(ns, c);
            Data::new("DynamicTypeMgrMethodTypeInfo")
                .with("name", c.name)
                .with("wsdlName", format!("{wsdl}{}", c.name))
                .with("version", VERSION)
                .with(
                    "paramTypeInfo",
                    list(
                        "DynamicTypeMgrParamTypeInfo",
                        c.params
                            .iter()
                            .map(|p| param(p.name, p.ty.vmodl().to_string(), true))
                            .collect(),
                    ),
                )
                .with("returnTypeInfo", param("result", ret, optional))
                .with("fault", Value::strings(["vim.EsxCLI.CLIFault".to_string()]))
        })
        .collect();
    Data::new("DynamicTypeMgrManagedTypeInfo")
        .with("name", format!("{}{}", esxcli::TYPE_PREFIX, ns.name))
        .with("wsdlName", wsdl)
        .with("version", VERSION)
        .with("base", Value::strings(["vmodl.ManagedObject".to_string()]))
        .with("method", list("DynamicTypeMgrMethodTypeInfo", methods))
}

fn data_type(name: String, wsdl: String, props: Vec<Value>) -> Data {
    Data::new("DynamicTypeMgrDataTypeInfo")
        .with("name", name)
        .with("wsdlName", wsdl)
        .with("version", VERSION)
        .with("base", Value::strings(["vmodl.DynamicData".to_string()]))
        .with(
            "property",
            Value::Array("DynamicTypeMgrPropertyTypeInfo", props),
        )
}

/// vim.CLIInfo and its data types (the VMODL of ESXi's CLIInfo module).
fn cli_info_types() -> (Data, Vec<Data>) {
    let managed = Data::new("DynamicTypeMgrManagedTypeInfo")
        .with("name", esxcli::CLI_INFO_TYPE)
        .with("wsdlName", "VimCLIInfo")
        .with("version", VERSION)
        .with("base", Value::strings(["vmodl.ManagedObject".to_string()]))
        .with(
            "method",
            list(
                "DynamicTypeMgrMethodTypeInfo",
                vec![Data::new("DynamicTypeMgrMethodTypeInfo")
                    .with("name", "FetchCLIInfo")
                    .with("wsdlName", "VimCLIInfoFetchCLIInfo")
                    .with("version", VERSION)
                    .with(
                        "paramTypeInfo",
                        list(
                            "DynamicTypeMgrParamTypeInfo",
                            vec![param("typeName", "string".into(), false)],
                        ),
                    )
                    .with(
                        "returnTypeInfo",
                        param("result", "vim.CLIInfo.Info".into(), false),
                    )
                    .with("fault", Value::strings(["vim.fault.NotFound".to_string()]))],
            ),
        );
    let info = |name: &str, wsdl: &str, props: &[(&str, &str, bool)]| {
        data_type(
            name.to_string(),
            wsdl.to_string(),
            props.iter().map(|(n, t, o)| property(n, t, *o)).collect(),
        )
    };
    let data = vec![
        info(
            "vim.CLIInfo.Info",
            "VimCLIInfoInfo",
            &[
                ("name", "string", false),
                ("displayName", "string", false),
                ("help", "string", false),
                ("method", "vim.CLIInfo.Method[]", true),
            ],
        ),
        info(
            "vim.CLIInfo.Method",
            "VimCLIInfoMethod",
            &[
                ("name", "string", false),
                ("displayName", "string", false),
                ("help", "string", false),
                ("param", "vim.CLIInfo.Param[]", true),
                ("ret", "vim.CLIInfo.Param", true),
                ("hints", "vim.KeyValue[]", true),
            ],
        ),
        info(
            "vim.CLIInfo.Param",
            "VimCLIInfoParam",
            &[
                ("name", "string", false),
                ("displayName", "string", false),
                ("aliases", "string[]", true),
                ("default", "string", true),
                ("constraint", "string[]", true),
                ("help", "string", false),
                ("flag", "boolean", false),
            ],
        ),
    ];
    (managed, data)
}

/// Every type whose name contains `sub`: the handlers, their result types, and CLIInfo.
fn type_info(profile: &crate::profile::Profile, sub: &str) -> Data {
    let mut managed_types = Vec::new();
    let mut data_types = Vec::new();
    for ns in esxcli::namespaces(profile) {
        managed_types.push(managed(ns));
        for c in ns.commands {
            if let Ret::Struct(s) | Ret::List(s) = &c.ret {
                let props = s
                    .fields
                    .iter()
                    .map(|(n, t)| property(n, t.vmodl(), false))
                    .collect();
                data_types.push(data_type(
                    format!("{}{}.{}.{}", esxcli::TYPE_PREFIX, ns.name, c.name, s.name),
                    esxcli::struct_wsdl_name(ns, c, s),
                    props,
                ));
            }
        }
    }
    let (cli_managed, cli_data) = cli_info_types();
    managed_types.push(cli_managed);
    data_types.extend(cli_data);
    let keep = |d: &Data| match d.get("name") {
        Some(Value::Str(n)) => n.contains(sub),
        _ => false,
    };
    managed_types.retain(keep);
    data_types.retain(keep);
    Data::new("DynamicTypeMgrAllTypeInfo")
        .with(
            "managedTypeInfo",
            list("DynamicTypeMgrManagedTypeInfo", managed_types),
        )
        .with(
            "dataTypeInfo",
            list("DynamicTypeMgrDataTypeInfo", data_types),
        )
}
