//! `esxcli system hostname get|set`: the host's name as its network configuration has it
//! (esx.conf `/adv/Misc/HostName`; from 8.0 also the ConfigStore, which the model keeps in
//! step). The CLI texts are a real ESXi 8 host's (govmomi's `command_info.go` dump); the result
//! type is the real `FullyQualifiedHostName` (govmomi's ESXi fixture).

use super::{Args, CliError, Command, Namespace, Output, Param, Ret, Scalar, Struct};
use crate::vim::Vim;

pub static NAMESPACE: Namespace = Namespace {
    name: "system.hostname",
    help: "Operations pertaining the network name of the ESX host.",
    available: super::over_api,
    commands: &[
        Command {
            name: "get",
            help: "Get the host, domain or fully qualified name of the ESX host.",
            params: &[],
            ret: Ret::Struct(&FQHN),
            hints: &[("formatter", "simple")],
            run: get,
        },
        Command {
            name: "set",
            help: "This command allows the user to set the hostname, domain name or fully \
                   qualified domain name of the ESX host.",
            params: &[
                Param {
                    name: "domain",
                    display: "domain",
                    aliases: &["-d", "--domain"],
                    help: "The domain name to set for the ESX host. This option is mutually \
                           exclusive with the --fqdn option.",
                    ty: Scalar::Str,
                    constraint: &[],
                },
                Param {
                    name: "fqdn",
                    display: "fqdn",
                    aliases: &["-f", "--fqdn"],
                    help: "Set the fully qualified domain name of the ESX host.",
                    ty: Scalar::Str,
                    constraint: &[],
                },
                Param {
                    name: "host",
                    display: "host",
                    aliases: &["-H", "--host"],
                    help: "The host name to set for the ESX host. This name should not contain \
                           the DNS domain name of the host and can only contain letters, numbers \
                           and '-'. NOTE this is not the fully qualified name, that can be set \
                           with the --fqdn option. This option is mutually exclusive with the \
                           --fqdn option.",
                    ty: Scalar::Str,
                    constraint: &[],
                },
            ],
            ret: Ret::Bool,
            hints: &[("formatter", "")],
            run: set,
        },
    ],
};

static FQHN: Struct = Struct {
    name: "FullyQualifiedHostName",
    fields: &[
        ("DomainName", Scalar::Str),
        ("FullyQualifiedDomainName", Scalar::Str),
        ("HostName", Scalar::Str),
    ],
};

/// (host name, domain name) of a fully qualified name: split at the first dot. A name without
/// a domain has an empty one, which esxcli prints as `Domain Name: ` [inferred].
fn split(fqdn: &str) -> (&str, &str) {
    fqdn.split_once('.').unwrap_or((fqdn, ""))
}

fn get(vim: &mut Vim, _: &Args) -> Result<Output, CliError> {
    let fqdn = vim.host.hostname();
    let (host, domain) = split(&fqdn);
    Ok(Output::Struct(vec![
        domain.to_string(),
        fqdn.clone(),
        host.to_string(),
    ]))
}

/// A DNS label: letters, digits and `-` (the help text's rule), not at either end.
fn valid_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn set(vim: &mut Vim, args: &Args) -> Result<Output, CliError> {
    let current = vim.host.hostname();
    let (cur_host, cur_domain) = split(&current);
    let (host, domain, fqdn) = (args.str("host"), args.str("domain"), args.str("fqdn"));
    // The messages are ours [inferred]: the rules are the help texts'.
    let name = match (fqdn, host, domain) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(CliError::new(
                "The --fqdn option is mutually exclusive with the --host and --domain options.",
            ))
        }
        (None, None, None) => {
            return Err(CliError::new(
                "At least one of --host, --domain or --fqdn must be specified.",
            ))
        }
        (Some(f), None, None) => f.trim_end_matches('.').to_string(),
        (None, h, d) => {
            let h = h.unwrap_or(cur_host);
            let d = d.unwrap_or(cur_domain).trim_matches('.');
            if !valid_label(h) {
                return Err(CliError::new(format!(
                    "Invalid host name '{h}': it can only contain letters, numbers and '-'."
                )));
            }
            if d.is_empty() {
                h.to_string()
            } else {
                format!("{h}.{d}")
            }
        }
    };
    if name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(CliError::new(format!(
            "Invalid fully qualified name '{name}'."
        )));
    }
    vim.host
        .set_esx_conf_value("/adv/Misc/HostName", &name)
        .map_err(|e| CliError::new(e.to_string()))?;
    Ok(Output::Bool(true))
}
