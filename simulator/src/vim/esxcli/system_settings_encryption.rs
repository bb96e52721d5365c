//! `esxcli system settings encryption get|set` (ESXi 7.0 U2 and later; facts section 6.5): the
//! configuration's encryption mode and the TPM policies.
//!
//! ```text
//! Mode: TPM
//! Require Executables Only From Installed VIBs: false
//! Require Secure Boot: true
//! ```
//!
//! The parameter names (`mode`, `requireexecinstalledonly`, `requiresecureboot`) are the real
//! ones public PowerCLI `Get-EsxCli -V2` scripts set; the options `--mode`,
//! `--require-exec-installed-only`, `--require-secure-boot` are VMware's documented ones. The
//! result type's name (`Encryption`), the short options, the help texts and the wording of our
//! own errors are \[unconfirmed\]: no public dump of this namespace exists.

use super::{Args, CliError, Command, Namespace, Output, Param, Ret, Scalar, Struct};
use crate::keystore::Mode;
use crate::profile::{Era, Profile};
use crate::vim::Vim;

/// Only hosts that encrypt their configuration have the namespace: on older ones esxcli says
/// the namespace does not exist.
pub fn available(p: &Profile) -> bool {
    p.era == Era::Encrypted
}

pub static NAMESPACE: Namespace = Namespace {
    name: "system.settings.encryption",
    help: "Encryption related settings for the host configuration.",
    available,
    commands: &[
        Command {
            name: "get",
            help: "Get the encryption mode and policy.",
            params: &[],
            ret: Ret::Struct(&ENCRYPTION),
            hints: &[
                (
                    "fields:Encryption",
                    "Mode,Require Executables Only From Installed VIBs,Require Secure Boot",
                ),
                ("formatter", "simple"),
            ],
            run: get,
        },
        Command {
            name: "set",
            help: "Set the encryption mode and policy.",
            params: &[
                Param {
                    name: "mode",
                    display: "mode",
                    aliases: &["-m", "--mode"],
                    help: "Set the encryption mode. Once set to TPM it cannot be changed back.",
                    ty: Scalar::Str,
                    constraint: &["NONE", "TPM"],
                },
                Param {
                    name: "requireexecinstalledonly",
                    display: "require-exec-installed-only",
                    aliases: &["-e", "--require-exec-installed-only"],
                    help: "Require executables to be loaded only from installed VIBs.",
                    ty: Scalar::Bool,
                    constraint: &[],
                },
                Param {
                    name: "requiresecureboot",
                    display: "require-secure-boot",
                    aliases: &["-s", "--require-secure-boot"],
                    help: "Require secure boot.",
                    ty: Scalar::Bool,
                    constraint: &[],
                },
            ],
            ret: Ret::Bool,
            hints: &[("formatter", "")],
            run: set,
        },
    ],
};

static ENCRYPTION: Struct = Struct {
    name: "Encryption",
    fields: &[
        ("Mode", Scalar::Str),
        ("RequireExecutablesOnlyFromInstalledVIBs", Scalar::Bool),
        ("RequireSecureBoot", Scalar::Bool),
    ],
};

/// What a real host prints when the change cannot be made (seen on 7.0.2 hosts whose TPM or
/// firmware cannot satisfy it).
pub const CANNOT_CHANGE: &str = "Unable to change the encryption mode and policy. Verify that \
                                 the current host configuration can satisfy the new requirement.";

fn get(vim: &mut Vim, _: &Args) -> Result<Output, CliError> {
    let (mode, secure_boot) = match vim.host.encryption() {
        Some(e) => (e.mode, e.require_secure_boot),
        None => (Mode::None, false),
    };
    // The model does not enforce execInstalledOnly: it is never required.
    Ok(Output::Struct(vec![
        mode.to_string(),
        "false".to_string(),
        secure_boot.to_string(),
    ]))
}

fn set(vim: &mut Vim, args: &Args) -> Result<Output, CliError> {
    if args.is_empty() {
        // [inferred] wording.
        return Err(CliError::new(
            "At least one of --mode, --require-exec-installed-only or --require-secure-boot \
             must be specified.",
        ));
    }
    let mode = match args.str("mode") {
        Some("NONE") => Some(Mode::None),
        Some("TPM") => Some(Mode::Tpm),
        Some(_) => {
            return Err(CliError::new(
                "Invalid data constraint for parameter 'mode'.",
            ))
        }
        None => None,
    };
    // Checked before anything changes: the model has no execInstalledOnly enforcement to
    // turn on, so asking for it fails as an unsatisfiable policy does on a real host.
    if args.bool("requireexecinstalledonly") == Some(true) {
        return Err(CliError::new(CANNOT_CHANGE));
    }
    if let Some(m) = mode {
        vim.host
            .set_encryption_mode(m)
            .map_err(|_| CliError::new(CANNOT_CHANGE))?;
    }
    if let Some(b) = args.bool("requiresecureboot") {
        vim.host
            .set_require_secure_boot(b)
            .map_err(|_| CliError::new(CANNOT_CHANGE))?;
    }
    Ok(Output::Bool(true))
}
