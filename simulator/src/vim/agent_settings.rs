//! ServiceContent.setting: the agent's own settings, an OptionManager apart from a host's
//! advanced options (`ha-adv-options`). On a host it is `HostAgentSettings`, which a real host
//! answers with no options (govmomi's capture of one, `simulator/esx/setting.go`); on a
//! vCenter `VpxSettings`, with the event and task retention vpxd keeps (event.* as vcsim's
//! capture of a vCenter shows; the task pair [inferred]). Read-only here.

use super::{method_not_found, Ctx, Vim};
use crate::api::{Call, Data, Fault, Value};

fn options(vim: &Vim) -> Vec<(&'static str, Value)> {
    if vim.estate.is_none() {
        return Vec::new();
    }
    vec![
        ("event.maxAge", Value::Int(30)),
        ("event.maxAgeEnabled", Value::Bool(true)),
        ("task.maxAge", Value::Int(30)),
        ("task.maxAgeEnabled", Value::Bool(true)),
    ]
}

fn option_value(k: &str, v: Value) -> Value {
    Data::new("OptionValue")
        .with("key", k)
        .with("value", Value::any(v))
        .into()
}

pub fn call(vim: &mut Vim, _ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    match req.method.as_str() {
        "QueryOptions" => {
            // A name ending in '.' is a prefix (OptionManager.QueryOptions); none: all.
            let name = req.params.child_text("name").unwrap_or("");
            let found: Vec<Value> = options(vim)
                .into_iter()
                .filter(|(k, _)| match name {
                    "" => true,
                    n if n.ends_with('.') => k.starts_with(n),
                    n => *k == n,
                })
                .map(|(k, v)| option_value(k, v))
                .collect();
            if found.is_empty() && !name.is_empty() {
                return Err(Fault::new(
                    "InvalidName",
                    format!("A specified parameter was not correct: {name}"),
                )
                .with("name", name));
            }
            Ok(Some(Value::Array("OptionValue", found)))
        }
        "UpdateOptions" => Err(Fault::new(
            "NotSupported",
            "The agent settings of this simulator are read-only",
        )),
        _ => Err(method_not_found(req)),
    }
}

pub fn properties(vim: &Vim) -> Data {
    let setting = options(vim)
        .into_iter()
        .map(|(k, v)| option_value(k, v))
        .collect();
    Data::new("OptionManager")
        .with("supportedOption", Value::Array("OptionDef", Vec::new()))
        .with("setting", Value::Array("OptionValue", setting))
}

/// Whether an OptionManager id is the agent settings (of a host or a vCenter).
pub fn is_settings(id: &str) -> bool {
    id == super::ids::SETTING || id == super::vcenter::ids::SETTING
}
