//! OptionManager `ha-adv-options` (host.configManager.advancedOption): the host's advanced
//! settings, stored as `/adv/<A>/<B>` entries of esx.conf. `UserVars.SuppressShellWarning` is
//! `/adv/UserVars/SuppressShellWarning`. Changing one edits esx.conf, a sticky file, so it
//! persists by the same rules as everything else.

use std::time::Duration;

use super::lockout::Policy;
use super::password_quality::Policy as PasswordPolicy;
use super::{host_fault, method_not_found, Ctx, Vim};
use crate::api::{Call, Param};
use crate::api::{Data, Fault, Value};
use crate::profile::Profile;

/// Options whose type is integer (`xsd:long`); every other option is a string.
const INTEGER_OPTIONS: &[&str] = &[
    "UserVars.SuppressShellWarning",
    "UserVars.HostClientCEIPOptIn",
    "UserVars.ESXiShellTimeOut",
    "UserVars.ESXiShellInteractiveTimeOut",
    "Net.FollowHardwareMac",
    "Security.AccountLockFailures",
    "Security.AccountUnlockTime",
];

/// Options a host knows even before esx.conf names them, with their defaults (the lockout
/// pair is per release: [`lockout_defaults`]).
const KNOWN_DEFAULTS: &[(&str, &str)] = &[
    ("UserVars.ESXiShellTimeOut", "0"),
    ("UserVars.ESXiShellInteractiveTimeOut", "0"),
    ("Annotations.WelcomeMessage", ""),
    ("Config.HostAgent.log.level", "info"),
    ("Config.HostAgent.plugins.solo.enableMob", "false"),
];

/// `Security.AccountLockFailures` and `Security.AccountUnlockTime` by release (facts section 7):
/// 10 and 120 s on 6.0, 5 and 900 s from 6.5; none before 6.0 (no lockout there).
fn lockout_defaults(profile: &Profile) -> Option<(&'static str, &'static str)> {
    match profile.version_number() {
        0..60_000 => None,
        60_000..60_500 => Some(("10", "120")),
        _ => Some(("5", "900")),
    }
}

/// `Security.PasswordQualityControl` by release (facts section 7): the option exists from 6.0
/// (as the lockout pair does), default `retry=3 min=disabled,disabled,disabled,7,7`.
const PASSWORD_QUALITY_DEFAULT: &str = "retry=3 min=disabled,disabled,disabled,7,7";
/// Before 6.0 the rule sat in `/etc/pam.d/passwd`, not in an option: `min=8,8,8,7,6`
/// [unconfirmed: VMware KB 1012033's 5.x default, recalled; 4.1 assumed the same].
const PASSWORD_QUALITY_BEFORE_60: &str = "retry=3 min=8,8,8,7,6";

fn has_security_options(profile: &Profile) -> bool {
    profile.version_number() >= 60_000
}

/// The host's password rules: its advanced option, else its release's default. A value that
/// does not parse cannot be stored (UpdateOptions refuses it), so the fallback is only for an
/// esx.conf edited behind hostd's back, where we keep the default as PAM would keep working.
pub fn password_quality_policy(vim: &Vim) -> PasswordPolicy {
    let profile = vim.host.profile();
    let default = if has_security_options(profile) {
        PASSWORD_QUALITY_DEFAULT
    } else {
        PASSWORD_QUALITY_BEFORE_60
    };
    let configured = has_security_options(profile)
        .then(|| {
            vim.host
                .esx_conf_value(&conf_key("Security.PasswordQualityControl"))
        })
        .flatten();
    configured
        .and_then(|v| PasswordPolicy::parse(&v).ok())
        .unwrap_or_else(|| PasswordPolicy::parse(default).expect("the defaults parse"))
}

/// The host's lockout policy: its advanced options, else its release's defaults.
pub fn lockout_policy(vim: &Vim) -> Policy {
    let defaults = lockout_defaults(vim.host.profile());
    let get = |key: &str, default: Option<&str>| -> u64 {
        vim.host
            .esx_conf_value(&conf_key(key))
            .or(default.map(str::to_string))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Policy {
        failures: get("Security.AccountLockFailures", defaults.map(|d| d.0)).min(u32::MAX as u64)
            as u32,
        unlock: Duration::from_secs(get("Security.AccountUnlockTime", defaults.map(|d| d.1))),
    }
}

fn conf_key(key: &str) -> String {
    format!("/adv/{}", key.replace('.', "/"))
}

fn option_value(key: &str, raw: &str) -> Data {
    let v = if INTEGER_OPTIONS.contains(&key) {
        Value::any(Value::Long(raw.parse().unwrap_or(0)))
    } else {
        Value::any(Value::Str(raw.to_string()))
    };
    Data::new("OptionValue").with("key", key).with("value", v)
}

/// Every option: esx.conf's `/adv/...` entries, then the known defaults esx.conf lacks.
fn all_options(vim: &Vim) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vim
        .host
        .esx_conf_entries()
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("/adv/")?.replace('/', "."), v)))
        .collect();
    // The Security.* options arrive together in 6.0 (facts section 7).
    let security = lockout_defaults(vim.host.profile()).map(|(n, t)| {
        [
            ("Security.AccountLockFailures", n),
            ("Security.AccountUnlockTime", t),
            ("Security.PasswordQualityControl", PASSWORD_QUALITY_DEFAULT),
        ]
    });
    for (k, v) in KNOWN_DEFAULTS.iter().chain(security.iter().flatten()) {
        if !out.iter().any(|(o, _)| o == k) {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out.sort();
    out
}

fn invalid_name(name: &str) -> Fault {
    Fault::new(
        "InvalidName",
        format!("A specified parameter was not correct: {name}"),
    )
    .with("name", name)
}

fn value_text(el: &Param) -> Result<String, String> {
    let t = el.text.trim().to_string();
    match el.declared_type.as_deref() {
        Some("long" | "int" | "short" | "byte") => t
            .parse::<i64>()
            .map(|i| i.to_string())
            .map_err(|_| format!("'{t}' is not an integer")),
        Some("boolean") => match t.as_str() {
            "true" | "1" => Ok("true".into()),
            "false" | "0" => Ok("false".into()),
            _ => Err(format!("'{t}' is not a boolean")),
        },
        _ => Ok(el.text.clone()),
    }
}

pub fn call(vim: &mut Vim, ctx: &mut Ctx, req: &Call) -> Result<Option<Value>, Fault> {
    // ServiceContent.setting is an OptionManager too, with other options.
    if super::agent_settings::is_settings(&req.this.id) {
        return super::agent_settings::call(vim, ctx, req);
    }
    match req.method.as_str() {
        "QueryOptions" => {
            let name = req.param("name").map(|n| n.text.trim().to_string());
            let all = all_options(vim);
            let picked: Vec<Value> = match name.as_deref() {
                None | Some("") => all.iter().map(|(k, v)| option_value(k, v).into()).collect(),
                Some(prefix) if prefix.ends_with('.') => all
                    .iter()
                    .filter(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| option_value(k, v).into())
                    .collect(),
                Some(exact) => all
                    .iter()
                    .filter(|(k, _)| k == exact)
                    .map(|(k, v)| option_value(k, v).into())
                    .collect(),
            };
            if picked.is_empty() {
                return Err(invalid_name(name.as_deref().unwrap_or("")));
            }
            Ok(Some(Value::Array("OptionValue", picked)))
        }
        "UpdateOptions" => {
            let known = all_options(vim);
            let mut changes = Vec::new();
            for ov in req.params.all("changedValue") {
                let key = ov.child_text("key").unwrap_or_default().to_string();
                if !known.iter().any(|(k, _)| *k == key) {
                    return Err(invalid_name(&key));
                }
                let text = match ov.child("value") {
                    Some(v) => value_text(v)
                        .map_err(|e| Fault::invalid_argument(format!("{key}: {e}"), Some(&key)))?,
                    None => String::new(),
                };
                if key == "Security.PasswordQualityControl" {
                    PasswordPolicy::parse(&text)
                        .map_err(|e| Fault::invalid_argument(format!("{key}: {e}"), Some(&key)))?;
                }
                if INTEGER_OPTIONS.contains(&key.as_str()) && text.parse::<i64>().is_err() {
                    return Err(Fault::invalid_argument(
                        format!("{key} takes an integer, not '{text}'"),
                        Some(&key),
                    ));
                }
                changes.push((key, text));
            }
            // Validate everything first: a rejected call changes nothing.
            for (k, v) in changes {
                vim.host
                    .set_esx_conf_value(&conf_key(&k), &v)
                    .map_err(host_fault)?;
            }
            Ok(None)
        }
        _ => Err(method_not_found(req)),
    }
}

pub fn properties(vim: &Vim) -> Data {
    let setting = all_options(vim)
        .iter()
        .map(|(k, v)| option_value(k, v).into())
        .collect();
    Data::new("OptionManager").with("setting", Value::Array("OptionValue", setting))
}
