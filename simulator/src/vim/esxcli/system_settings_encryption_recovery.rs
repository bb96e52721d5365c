//! `esxcli system settings encryption recovery list|rotate` (7.0 U2 and later; facts section
//! 6.5): the recovery key of a TPM-mode host, as VMware's documentation prints it:
//!
//! ```text
//! Recovery ID                             Key
//! --------------------------------------  ---
//! {2DDD5424-7F3F-406A-8DA8-D62630F6C8BC}  478269-039194-...-267425
//! ```
//!
//! The fields `RecoveryID` and `Key` are the ones public PowerCLI scripts read. The row type's
//! name (`RecoveryKey`), `rotate`'s parameters (`--keyid`, `--uuid`: both name the key being
//! rotated here) and what `list` says in NONE mode (nothing: there is no recovery key) are
//! \[unconfirmed\].

use super::system_settings_encryption::available;
use super::{Args, CliError, Command, Namespace, Output, Param, Ret, Scalar, Struct};
use crate::vim::Vim;

pub static NAMESPACE: Namespace = Namespace {
    name: "system.settings.encryption.recovery",
    help: "Recovery key of the encrypted host configuration.",
    available,
    commands: &[
        Command {
            name: "list",
            help: "List the recovery keys.",
            params: &[],
            ret: Ret::List(&RECOVERY_KEY),
            hints: &[
                ("fields:RecoveryKey", "Recovery ID,Key"),
                ("formatter", "table"),
            ],
            run: list,
        },
        Command {
            name: "rotate",
            help: "Rotate the recovery key: make a new one for the same configuration key.",
            params: &[
                Param {
                    name: "keyid",
                    display: "keyid",
                    aliases: &["-k", "--keyid"],
                    help: "The Recovery ID of the key to rotate.",
                    ty: Scalar::Str,
                    constraint: &[],
                },
                Param {
                    name: "uuid",
                    display: "uuid",
                    aliases: &["-u", "--uuid"],
                    help: "The UUID of the key to rotate.",
                    ty: Scalar::Str,
                    constraint: &[],
                },
            ],
            ret: Ret::Bool,
            hints: &[("formatter", "")],
            run: rotate,
        },
    ],
};

static RECOVERY_KEY: Struct = Struct {
    name: "RecoveryKey",
    fields: &[("Key", Scalar::Str), ("RecoveryID", Scalar::Str)],
};

fn list(vim: &mut Vim, _: &Args) -> Result<Output, CliError> {
    Ok(Output::List(
        vim.host
            .recovery_key()
            .map(|k| vec![k.key_text(), k.id_text()])
            .into_iter()
            .collect(),
    ))
}

/// Whether `given` names the key `{A1B2...}`: with or without braces, in either case.
fn names(given: &str, id_text: &str) -> bool {
    let bare = |s: &str| {
        s.trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .to_string()
    };
    bare(given).eq_ignore_ascii_case(&bare(id_text))
}

fn rotate(vim: &mut Vim, args: &Args) -> Result<Output, CliError> {
    let current = vim.host.recovery_key().map(|k| k.id_text());
    for given in [args.str("keyid"), args.str("uuid")].into_iter().flatten() {
        if !current.as_deref().is_some_and(|c| names(given, c)) {
            return Err(CliError::new(format!(
                "The recovery key '{given}' does not exist."
            )));
        }
    }
    vim.host
        .rotate_recovery_key()
        .map_err(|e| CliError::new(e.to_string()))?;
    Ok(Output::Bool(true))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_key_is_named_with_or_without_braces() {
        let id = "{2DDD5424-7F3F-406A-8DA8-D62630F6C8BC}";
        assert!(super::names(id, id));
        assert!(super::names("2ddd5424-7f3f-406a-8da8-d62630f6c8bc", id));
        assert!(!super::names("{2DDD5424}", id));
    }
}
