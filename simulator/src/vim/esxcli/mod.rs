//! esxcli over the vSphere API: the command registry.
//!
//! Real clients (`govc host.esxcli`, PowerCLI `Get-EsxCli -V2`, pyvisdk) run esxcli commands
//! on a host without SSH: HostSystem.RetrieveManagedMethodExecuter gives an executer, whose
//! `ExecuteSoap(moid, version, method, argument[])` calls a method of a hidden object by id
//! ([`super::managed_method_executer`]). The objects are one handler per namespace,
//! `ha-cli-handler-system-settings-encryption` of type `vim.EsxCLI.system.settings.encryption`,
//! and `ha-dynamic-type-manager-local-cli-cliinfo` (`vim.CLIInfo`), whose `FetchCLIInfo`
//! describes a namespace's commands, parameters and output hints. Answers travel as XML
//! documents inside a string. `docs/esxcli.md` describes the wire format (captured from govc
//! 0.24, govmomi's fixtures of real hosts, hostd's public Python twin) and lists the choices no
//! public source confirms.
//!
//! This module is the one place that knows the commands: each namespace is a file here with its
//! CLI description (what FetchCLIInfo and the type info say) and its commands' code, which runs
//! on the host model. The executer, FetchCLIInfo and DynamicTypeMgrQueryTypeInfo/MoInstances
//! all read [`NAMESPACES`]; [`wire`] writes the XML documents.

pub mod system_hostname;
pub mod system_settings_encryption;
pub mod system_settings_encryption_recovery;
pub mod system_version;
pub mod wire;

use crate::profile::Profile;
use crate::vim::Vim;

/// One esxcli namespace (`system.settings.encryption`): a handler object on the host.
pub struct Namespace {
    /// Dotted, without the `vim.EsxCLI.` prefix.
    pub name: &'static str,
    pub help: &'static str,
    /// Whether a host of this build has it (the encryption namespaces came with 7.0 U2).
    pub available: fn(&Profile) -> bool,
    /// In the order esxcli lists them (alphabetical).
    pub commands: &'static [Command],
}

/// One command (a method of the handler).
pub struct Command {
    pub name: &'static str,
    pub help: &'static str,
    /// In VMODL order (alphabetical, as real type info lists them): ExecuteSoap matches
    /// arguments to them by position.
    pub params: &'static [Param],
    pub ret: Ret,
    /// CLIInfo hints: `formatter` (`simple`, `table`, ``) and `fields:<Struct>` (column names;
    /// spaces dropped they are the result's field names).
    pub hints: &'static [(&'static str, &'static str)],
    pub run: fn(&mut Vim, &Args) -> Result<Output, CliError>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Str,
    Bool,
    Long,
}

impl Scalar {
    /// The VMODL type name (type info).
    pub fn vmodl(self) -> &'static str {
        match self {
            Scalar::Str => "string",
            Scalar::Bool => "boolean",
            Scalar::Long => "long",
        }
    }
}

/// A command's parameter.
pub struct Param {
    /// The VMODL name: the long option without dashes (`requiresecureboot`).
    pub name: &'static str,
    /// The long option without its dashes (`require-secure-boot`).
    pub display: &'static str,
    /// `-s`, `--require-secure-boot`: govc registers each as a flag (it strips the dashes).
    pub aliases: &'static [&'static str],
    pub help: &'static str,
    pub ty: Scalar,
    /// The values esxcli accepts (empty: any).
    pub constraint: &'static [&'static str],
}

/// What a command returns.
pub enum Ret {
    /// One data object (`get`).
    Struct(&'static Struct),
    /// A list of data objects (`list`).
    List(&'static Struct),
    /// `true` when a change was made (`set`, `rotate`).
    Bool,
}

/// A result type: `vim.EsxCLI.<namespace>.<command>.<name>`, fields in the order real type
/// info lists them (alphabetical).
pub struct Struct {
    pub name: &'static str,
    pub fields: &'static [(&'static str, Scalar)],
}

/// A command's answer: the fields' values in [`Struct::fields`] order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Struct(Vec<String>),
    List(Vec<Vec<String>>),
    Bool(bool),
}

/// An esxcli error (`vim.EsxCLI.CLIFault`): the lines esxcli prints.
#[derive(Clone, Debug, PartialEq)]
pub struct CliError(pub Vec<String>);

impl CliError {
    pub fn new(line: impl Into<String>) -> CliError {
        CliError(vec![line.into()])
    }
}

/// One argument's value, checked against its parameter's type.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    Str(String),
    Bool(bool),
    Long(i64),
}

/// The arguments of one call, by parameter.
pub struct Args {
    values: Vec<(&'static str, ArgValue)>,
}

impl Args {
    pub fn new(values: Vec<(&'static str, ArgValue)>) -> Args {
        Args { values }
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    fn get(&self, name: &str) -> Option<&ArgValue> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            ArgValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            ArgValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Every namespace this simulator answers, sorted by name.
pub static NAMESPACES: &[&Namespace] = &[
    &system_hostname::NAMESPACE,
    &system_settings_encryption::NAMESPACE,
    &system_settings_encryption_recovery::NAMESPACE,
    &system_version::NAMESPACE,
];

/// `vim.EsxCLI.` + the namespace: the handler's managed type, FetchCLIInfo's `typeName`.
pub const TYPE_PREFIX: &str = "vim.EsxCLI.";
/// The handlers' ids: `ha-cli-handler-` + the namespace with `-` for `.`.
pub const HANDLER_PREFIX: &str = "ha-cli-handler-";
/// The CLIInfo object's id (govc hard-codes it).
pub const CLI_INFO_ID: &str = "ha-dynamic-type-manager-local-cli-cliinfo";
pub const CLI_INFO_TYPE: &str = "vim.CLIInfo";

/// Whether a host of this build answers esxcli over the API at all: the reflective executer
/// and the CLI types came with vSphere 5.0 (ExecuteSoap's version is `urn:vim25/5.0`).
pub fn over_api(p: &Profile) -> bool {
    p.version_number() >= 50_000
}

/// The namespaces a host of this build has.
pub fn namespaces(p: &Profile) -> impl Iterator<Item = &'static Namespace> + '_ {
    NAMESPACES
        .iter()
        .copied()
        .filter(move |ns| (ns.available)(p))
}

/// The namespace a dotted name (`system.version`) names on this host.
pub fn namespace(p: &Profile, name: &str) -> Option<&'static Namespace> {
    namespaces(p).find(|ns| ns.name == name)
}

/// The namespace whose handler id is `moid` (`ha-cli-handler-system-version`), without
/// building ids: compared character by character.
pub fn by_handler(p: &Profile, moid: &str) -> Option<&'static Namespace> {
    let rest = moid.strip_prefix(HANDLER_PREFIX)?;
    namespaces(p).find(|ns| {
        ns.name.len() == rest.len()
            && ns
                .name
                .bytes()
                .zip(rest.bytes())
                .all(|(a, b)| if a == b'.' { b == b'-' } else { a == b })
    })
}

pub fn handler_id(ns: &Namespace) -> String {
    format!("{HANDLER_PREFIX}{}", ns.name.replace('.', "-"))
}

/// `VimEsxCLI` + the namespace without dots: the handler type's WSDL name.
pub fn wsdl_name(ns: &Namespace) -> String {
    format!("VimEsxCLI{}", ns.name.replace('.', ""))
}

/// The result type's WSDL name: `VimEsxCLIsystemversiongetVersionGet`.
pub fn struct_wsdl_name(ns: &Namespace, cmd: &Command, s: &Struct) -> String {
    format!("{}{}{}", wsdl_name(ns), cmd.name, s.name)
}

/// A command of a namespace by the method name ExecuteSoap was given: its last dotted part,
/// as is or with the first letter lower-cased (older clients send `Get`), as hostd's executer
/// looks methods up.
pub fn command<'a>(ns: &'a Namespace, method: &str) -> Option<&'a Command> {
    let name = method.rsplit('.').next().unwrap_or(method);
    ns.commands
        .iter()
        .find(|c| c.name == name || uncapitalized_eq(name, c.name))
}

/// Whether `given` with its first letter lower-cased equals `name`.
pub fn uncapitalized_eq(given: &str, name: &str) -> bool {
    let mut g = given.chars();
    let mut n = name.chars();
    match (g.next(), n.next()) {
        (Some(a), Some(b)) => a.to_ascii_lowercase() == b && g.as_str() == n.as_str(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_and_commands_are_found_as_hostd_finds_them() {
        let p = Profile::named("8.0U3").unwrap();
        let old = Profile::named("6.7U3").unwrap();
        let v = by_handler(&p, "ha-cli-handler-system-version").unwrap();
        assert_eq!(v.name, "system.version");
        assert_eq!(handler_id(v), "ha-cli-handler-system-version");
        assert!(by_handler(&p, "ha-cli-handler-system.version").is_none());
        assert!(by_handler(&p, "ha-cli-handler-system-versio").is_none());
        assert!(by_handler(&p, "ha-cli-handler-").is_none());
        let enc = "ha-cli-handler-system-settings-encryption-recovery";
        assert!(by_handler(&p, enc).is_some());
        assert!(by_handler(&old, enc).is_none(), "7.0 U2 and later only");
        assert!(namespace(&old, "system.version").is_some());
        assert_eq!(
            command(v, "vim.EsxCLI.system.version.get").unwrap().name,
            "get"
        );
        assert_eq!(
            command(v, "vim.EsxCLI.system.version.Get").unwrap().name,
            "get"
        );
        assert!(command(v, "vim.EsxCLI.system.version.GET").is_none());
        assert!(command(v, "vim.EsxCLI.system.version.list").is_none());
        assert!(command(v, "").is_none());
        assert!(!over_api(&Profile::named("4.1U1").unwrap()));
        assert!(over_api(&Profile::named("5.5GA").unwrap()));
    }

    #[test]
    fn the_registry_is_well_formed() {
        for w in NAMESPACES.windows(2) {
            assert!(w[0].name < w[1].name, "sorted by name");
        }
        for ns in NAMESPACES {
            for w in ns.commands.windows(2) {
                assert!(w[0].name < w[1].name, "{}: commands sorted", ns.name);
            }
            for c in ns.commands {
                for w in c.params.windows(2) {
                    assert!(
                        w[0].name < w[1].name,
                        "{}.{}: params sorted",
                        ns.name,
                        c.name
                    );
                }
                for p in c.params {
                    // govc strips one or two dashes and makes each a flag: never empty.
                    assert!(!p.aliases.is_empty());
                    for a in p.aliases {
                        assert!(a.starts_with('-') && !a.trim_start_matches('-').is_empty());
                    }
                    assert_eq!(p.name, p.display.replace('-', ""));
                }
                if let Ret::Struct(s) | Ret::List(s) = &c.ret {
                    for w in s.fields.windows(2) {
                        assert!(w[0].0 < w[1].0, "{}: fields sorted", s.name);
                    }
                    // Every column of a table names a field (spaces dropped).
                    for (k, v) in c.hints {
                        if k.starts_with("fields:") {
                            for col in v.split(',') {
                                let f = col.replace(' ', "");
                                assert!(s.fields.iter().any(|(n, _)| *n == f), "{col}");
                            }
                        }
                    }
                }
            }
        }
    }
}
