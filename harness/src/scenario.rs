//! Scenario files (`scenarios/*.toml`): parse and validate, with errors that name the file, the
//! line and what was expected. A scenario reads as a specification:
//!
//! ```toml
//! checks = "A change inside the persistence window is lost by a crash"
//! fact = "esxi-facts.md §1, what a crash loses"
//! profiles = ["6.7U3", "8.0U3"]       # default: every profile
//!
//! [[step]]
//! set_option = { key = "UserVars.SuppressShellWarning", value = 1 }
//!
//! [[step]]
//! crash = {}                          # simulator only
//!
//! [[step]]
//! expect_option = { key = "UserVars.SuppressShellWarning", value = 0 }
//! ```
//!
//! Each `[[step]]` holds one action and, for actions that call the API, optionally
//! `expect_fault = "MismatchedBundle"` and `fields = { bundleUuid = "..." }`. Unknown keys are
//! errors. `docs/scenarios.md` lists every action.

use std::fmt;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// An error in a scenario file: `scenarios/x.toml:12: unknown key 'forse' ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}
impl std::error::Error for ScenarioError {}

/// In a password: the password the run started with (the target's own, or the embedded host's).
pub const INITIAL: &str = "$initial";
/// In a password (the default of `login`): the password the harness knows the account has now.
pub const CURRENT: &str = "$current";

/// A value for an advanced option: ESXi options are integers or strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptValue {
    Int(i64),
    Str(String),
}

impl fmt::Display for OptValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptValue::Int(i) => write!(f, "{i}"),
            OptValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// What to upload: a bundle saved by an earlier step, or a hostile one made on the spot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadSource {
    Bundle(String),
    /// `random`, `empty`, `not-gzip-tar`, `no-manifest`, `traversal`, `truncated`.
    Hostile(String),
    /// A file on disk (relative to the scenario's work directory).
    File(String),
}

pub const HOSTILE_KINDS: &[&str] = &[
    "random",
    "empty",
    "not-gzip-tar",
    "no-manifest",
    "traversal",
    "truncated",
];

/// How to check a file's content (simulator only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileCheck {
    Contains(String),
    NotContains(String),
    Equals(String),
    Absent,
}

/// What a state.tgz holds at its root (facts 6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `local.tgz` (4.x–7.0 U1).
    Plain,
    /// `local.tgz.ve` and `encryption.info` (7.0 U2 and later).
    Encrypted,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Plain => "plain",
            Layout::Encrypted => "encrypted",
        })
    }
}

/// The ConfigStore's value columns, as dissect.target names them (facts 6.3).
pub const STORE_COLUMNS: &[&str] = &[
    "auto_conf_value",
    "user_value",
    "vital_value",
    "cached_value",
    "desired_value",
];

/// One check of a saved ConfigStore: `"esx/advanced_options/misc vital_value.host_name" =
/// "esx-renamed"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCheck {
    pub component: String,
    pub group: String,
    pub name: String,
    /// `''` for singletons.
    pub identifier: String,
    /// A value column (`user_value`); None: the row itself (only `absent` applies).
    pub column: Option<String>,
    /// A top-level field of the column's JSON document.
    pub field: Option<String>,
    pub expect: ValueCheck,
}

impl StoreCheck {
    /// The row and column as the file names them.
    pub fn label(&self) -> String {
        let mut s = format!("{}/{}/{}", self.component, self.group, self.name);
        if !self.identifier.is_empty() {
            s.push('/');
            s.push_str(&self.identifier);
        }
        if let Some(c) = &self.column {
            s.push(' ');
            s.push_str(c);
        }
        if let Some(f) = &self.field {
            s.push('.');
            s.push_str(f);
        }
        s
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueCheck {
    Equals(String),
    Contains(String),
    Absent,
}

/// What a saved configuration (the boot bank's state.tgz, or a bundle's) must hold. A sealed
/// one is opened with its own key (NONE) or a recovery key the run knows (TPM).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StateCheck {
    pub layout: Option<Layout>,
    /// `NONE` or `TPM`: encryption.info's mode.
    pub mode: Option<String>,
    pub has_files: Vec<String>,
    pub lacks_files: Vec<String>,
    pub file_contains: Vec<(String, String)>,
    pub store: Vec<StoreCheck>,
}

impl StateCheck {
    /// Whether checking needs the archive opened (not only its layout and key store).
    pub fn needs_contents(&self) -> bool {
        !(self.has_files.is_empty()
            && self.lacks_files.is_empty()
            && self.file_contains.is_empty()
            && self.store.is_empty())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    // ---- portable: through the API, on the simulator and on a real host ------------------
    Login {
        user: String,
        password: String,
    },
    SetPassword {
        user: String,
        password: String,
    },
    CreateUser {
        user: String,
        password: String,
    },
    RemoveUser {
        user: String,
    },
    SetOption {
        key: String,
        value: OptValue,
    },
    ExpectOption {
        key: String,
        value: OptValue,
    },
    /// BackupFirmwareConfiguration and the download, kept under `name`.
    Backup {
        name: String,
    },
    Upload {
        source: UploadSource,
        rewrite: Vec<(String, String)>,
    },
    Restore {
        force: bool,
        /// The restored host's boot must stop with this message (a TPM bundle from another
        /// host, facts 6.5); needs the simulator to see why.
        halts: Option<String>,
    },
    Reset,
    Sync,
    EnterMaintenance,
    ExitMaintenance,
    Reboot {
        force: bool,
    },
    WaitUntilUp,
    ExpectBundle(BundleCheck),
    /// The user's own tool: a shell command with the target in its environment.
    Run {
        command: String,
        timeout: Duration,
        bundle_out: Option<(String, String)>,
    },
    // ---- simulator only ---------------------------------------------------------------------
    WriteFile {
        path: String,
        content: String,
    },
    DeleteFile {
        path: String,
    },
    ExpectFile {
        path: String,
        check: FileCheck,
    },
    Advance {
        by: Duration,
    },
    Crash,
    PowerCut,
    PowerCutDuringNextSave,
    PowerOn {
        /// `encryptionRecoveryKey=` at the boot prompt: a key recorded by `read_recovery_key`
        /// (its name) or typed out (16 groups of 6 digits).
        recovery_key: Option<String>,
        /// The boot must stop with this message instead of coming up.
        halts: Option<String>,
    },
    CorruptBootbank,
    ModelReboot {
        graceful: bool,
    },
    Stateless {
        on: bool,
    },
    /// Remembers the boot bank's write counters and the event log position.
    Mark,
    ExpectBootbank {
        written: bool,
    },
    ExpectEvent {
        kind: String,
        present: bool,
    },
    ExpectUnsaved {
        unsaved: bool,
    },
    // ---- simulator only: 7.0 U2+ encryption (facts 6.4, 6.5) ---------------------------------
    /// `esxcli system settings encryption set`; `refused`: it must fail with this text.
    SetEncryption {
        mode: Option<String>,
        require_secure_boot: Option<bool>,
        refused: Option<String>,
    },
    /// Reads the host's recovery key (as `esxcli ... recovery list` shows it) and keeps it.
    ReadRecoveryKey {
        name: String,
    },
    RotateRecoveryKey,
    /// A new motherboard and TPM: the host shuts down and stays off.
    ReplaceBoard {
        new_uuid: bool,
    },
    /// The host is down because its boot stopped, with this in the message.
    ExpectHalted {
        message: String,
    },
    ExpectEncryption {
        era: Option<String>,
        mode: Option<String>,
        require_secure_boot: Option<bool>,
    },
    /// The boot bank's state.tgz.
    ExpectSaved(StateCheck),
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct BundleCheck {
    pub bundle: String,
    pub manifest: Vec<(String, String)>,
    pub state: StateCheck,
}

impl Action {
    /// The action's key in the file (`set_option`).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Login { .. } => "login",
            Action::SetPassword { .. } => "set_password",
            Action::CreateUser { .. } => "create_user",
            Action::RemoveUser { .. } => "remove_user",
            Action::SetOption { .. } => "set_option",
            Action::ExpectOption { .. } => "expect_option",
            Action::Backup { .. } => "backup",
            Action::Upload { .. } => "upload",
            Action::Restore { .. } => "restore",
            Action::Reset => "reset",
            Action::Sync => "sync",
            Action::EnterMaintenance => "enter_maintenance",
            Action::ExitMaintenance => "exit_maintenance",
            Action::Reboot { .. } => "reboot",
            Action::WaitUntilUp => "wait_until_up",
            Action::ExpectBundle(_) => "expect_bundle",
            Action::Run { .. } => "run",
            Action::WriteFile { .. } => "write_file",
            Action::DeleteFile { .. } => "delete_file",
            Action::ExpectFile { .. } => "expect_file",
            Action::Advance { .. } => "advance",
            Action::Crash => "crash",
            Action::PowerCut => "power_cut",
            Action::PowerCutDuringNextSave => "power_cut_during_next_save",
            Action::PowerOn { .. } => "power_on",
            Action::CorruptBootbank => "corrupt_bootbank",
            Action::ModelReboot { .. } => "model_reboot",
            Action::Stateless { .. } => "stateless",
            Action::Mark => "mark",
            Action::ExpectBootbank { .. } => "expect_bootbank",
            Action::ExpectEvent { .. } => "expect_event",
            Action::ExpectUnsaved { .. } => "expect_unsaved",
            Action::SetEncryption { .. } => "set_encryption",
            Action::ReadRecoveryKey { .. } => "read_recovery_key",
            Action::RotateRecoveryKey => "rotate_recovery_key",
            Action::ReplaceBoard { .. } => "replace_board",
            Action::ExpectHalted { .. } => "expect_halted",
            Action::ExpectEncryption { .. } => "expect_encryption",
            Action::ExpectSaved(_) => "expect_saved",
        }
    }
    /// Steps done to the simulator itself (its model, or its control API), not through the
    /// vSphere API.
    pub fn is_simulator_step(&self) -> bool {
        matches!(
            self,
            Action::WriteFile { .. }
                | Action::DeleteFile { .. }
                | Action::ExpectFile { .. }
                | Action::Advance { .. }
                | Action::Crash
                | Action::PowerCut
                | Action::PowerCutDuringNextSave
                | Action::PowerOn { .. }
                | Action::CorruptBootbank
                | Action::ModelReboot { .. }
                | Action::Stateless { .. }
                | Action::Mark
                | Action::ExpectBootbank { .. }
                | Action::ExpectEvent { .. }
                | Action::ExpectUnsaved { .. }
                | Action::SetEncryption { .. }
                | Action::ReadRecoveryKey { .. }
                | Action::RotateRecoveryKey
                | Action::ReplaceBoard { .. }
                | Action::ExpectHalted { .. }
                | Action::ExpectEncryption { .. }
                | Action::ExpectSaved(_)
        )
    }
    /// Steps only the simulator can do (a real host is skipped, with this as the reason): its
    /// own steps, and API steps whose expectation only the simulator can check (why a boot
    /// stopped).
    pub fn needs_simulator(&self) -> bool {
        self.is_simulator_step() || matches!(self, Action::Restore { halts: Some(_), .. })
    }
    /// Steps that replace or reboot a real host's configuration (need --allow-destructive).
    pub fn destructive(&self) -> bool {
        matches!(
            self,
            Action::Restore { .. } | Action::Reset | Action::Reboot { .. }
        )
    }
    /// Whether the step calls a method whose fault can be expected.
    fn may_fault(&self) -> bool {
        !self.needs_simulator()
            && !matches!(
                self,
                Action::ExpectOption { .. } | Action::ExpectBundle(_) | Action::WaitUntilUp
            )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub line: usize,
    pub action: Action,
    pub expect_fault: Option<String>,
    pub fields: Vec<(String, String)>,
    /// `host = "other"`: the step runs on another host of the same build, installed afresh
    /// (its own seed, UUID and TPM) at its first step. None: the scenario's host.
    pub host: Option<String>,
}

impl Step {
    /// Whether the step needs the simulator: its action does, or it runs on a second host
    /// (which the harness installs).
    pub fn needs_simulator(&self) -> bool {
        self.action.needs_simulator() || self.host.is_some()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub file: String,
    pub name: String,
    pub checks: String,
    pub fact: String,
    /// Empty: every profile.
    pub profiles: Vec<String>,
    pub steps: Vec<Step>,
}

impl Scenario {
    pub fn needs_simulator(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.needs_simulator())
    }
    pub fn destructive(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.action.destructive())
    }
}

pub use esxi_sim::clock::parse_duration;

struct Ctx<'a> {
    file: &'a str,
    src: &'a str,
}

impl Ctx<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        let end = span.start.min(self.src.len());
        self.src[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }
    fn err(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            line: self.line(span),
            message: msg.into(),
        }
    }
}

type Entry<'t, 'i> = (
    &'t Spanned<toml::de::DeString<'i>>,
    &'t Spanned<DeValue<'i>>,
);

/// A table's entries in file order (the parser's map is sorted by key), so errors name the
/// first offending line.
fn ordered<'t, 'i>(t: &'t DeTable<'i>) -> Vec<Entry<'t, 'i>> {
    let mut v: Vec<_> = t.iter().collect();
    v.sort_by_key(|(k, _)| k.span().start);
    v
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The parameters of one action, read key by key; unknown keys are reported at the end.
struct Params<'a, 'i> {
    cx: &'a Ctx<'a>,
    action: &'a str,
    span: std::ops::Range<usize>,
    table: Option<&'a DeTable<'i>>,
    used: Vec<&'static str>,
}

impl<'a, 'i> Params<'a, 'i> {
    fn get(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.used.push(key);
        self.table?.get(key)
    }
    fn err(&self, v: &Spanned<DeValue<'_>>, msg: String) -> ScenarioError {
        self.cx.err(v.span(), format!("{}: {msg}", self.action))
    }
    fn opt_str(&mut self, key: &'static str) -> Result<Option<String>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(Some(s.to_string())),
                other => Err(self.err(v, format!("'{key}' must be a string, not {}", kind(other)))),
            },
        }
    }
    fn str(&mut self, key: &'static str) -> Result<String, ScenarioError> {
        self.opt_str(key)?.ok_or_else(|| {
            self.cx.err(
                self.span.clone(),
                format!("{}: missing '{key}' (a string)", self.action),
            )
        })
    }
    fn opt_bool(&mut self, key: &'static str) -> Result<Option<bool>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => Ok(Some(*b)),
                other => Err(self.err(
                    v,
                    format!("'{key}' must be true or false, not {}", kind(other)),
                )),
            },
        }
    }
    fn bool(&mut self, key: &'static str) -> Result<bool, ScenarioError> {
        self.opt_bool(key)?.ok_or_else(|| {
            self.cx.err(
                self.span.clone(),
                format!("{}: missing '{key}' (true or false)", self.action),
            )
        })
    }
    fn opt_value(&mut self, key: &'static str) -> Result<Option<OptValue>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(Some(OptValue::Str(s.to_string()))),
                DeValue::Integer(i) => i
                    .as_str()
                    .replace('_', "")
                    .parse()
                    .map(|n| Some(OptValue::Int(n)))
                    .map_err(|_| self.err(v, format!("'{key}': integer out of range"))),
                other => Err(self.err(
                    v,
                    format!(
                        "'{key}' must be an integer or a string, not {}",
                        kind(other)
                    ),
                )),
            },
        }
    }
    fn value(&mut self, key: &'static str) -> Result<OptValue, ScenarioError> {
        self.opt_value(key)?.ok_or_else(|| {
            self.cx.err(
                self.span.clone(),
                format!("{}: missing '{key}' (an integer or a string)", self.action),
            )
        })
    }
    fn duration(&mut self, key: &'static str) -> Result<Option<Duration>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => parse_duration(s)
                    .map(Some)
                    .map_err(|e| self.err(v, format!("'{key}': {e}"))),
                other => Err(self.err(
                    v,
                    format!(
                        "'{key}' must be a duration string like \"10m\", not {}",
                        kind(other)
                    ),
                )),
            },
        }
    }
    fn string_map(&mut self, key: &'static str) -> Result<Vec<(String, String)>, ScenarioError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => string_map(self.cx, self.action, key, v),
        }
    }
    fn string_list(&mut self, key: &'static str) -> Result<Vec<String>, ScenarioError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) => match v.get_ref() {
                DeValue::String(s) => Ok(vec![s.to_string()]),
                DeValue::Array(items) => items
                    .iter()
                    .map(|i| match i.get_ref() {
                        DeValue::String(s) => Ok(s.to_string()),
                        other => Err(self.err(
                            i,
                            format!("'{key}' items must be strings, not {}", kind(other)),
                        )),
                    })
                    .collect(),
                other => Err(self.err(
                    v,
                    format!(
                        "'{key}' must be a string or an array of strings, not {}",
                        kind(other)
                    ),
                )),
            },
        }
    }
    /// `layout`, `mode`, `has_file`, `lacks_file`, `file_contains`, `store`: what a saved
    /// configuration holds (`expect_saved`, `expect_bundle`).
    fn state_check(&mut self) -> Result<StateCheck, ScenarioError> {
        let layout = match self.get("layout") {
            None => None,
            Some(v) => match v.get_ref() {
                DeValue::String(s) if s.as_ref() == "plain" => Some(Layout::Plain),
                DeValue::String(s) if s.as_ref() == "encrypted" => Some(Layout::Encrypted),
                _ => return Err(self.err(v, "'layout' must be \"plain\" or \"encrypted\"".into())),
            },
        };
        let mode = self.mode("mode")?;
        Ok(StateCheck {
            layout,
            mode,
            has_files: self.string_list("has_file")?,
            lacks_files: self.string_list("lacks_file")?,
            file_contains: self.string_map("file_contains")?,
            store: match self.get("store") {
                None => Vec::new(),
                Some(v) => store_checks(self.cx, self.action, v)?,
            },
        })
    }
    /// `"NONE"` or `"TPM"`.
    fn mode(&mut self, key: &'static str) -> Result<Option<String>, ScenarioError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::String(s) if s.as_ref() == "NONE" || s.as_ref() == "TPM" => {
                    Ok(Some(s.to_string()))
                }
                _ => Err(self.err(v, format!("'{key}' must be \"NONE\" or \"TPM\""))),
            },
        }
    }
    /// Every key not read is an error (typos must not pass silently).
    fn finish(self) -> Result<(), ScenarioError> {
        if let Some(t) = self.table {
            for (k, _) in t.iter() {
                if !self.used.contains(&k.get_ref().as_ref()) {
                    let mut known = self.used.clone();
                    known.sort();
                    let expected = if known.is_empty() {
                        "it takes no parameters".to_string()
                    } else {
                        format!("expected one of: {}", known.join(", "))
                    };
                    return Err(self.cx.err(
                        k.span(),
                        format!(
                            "{}: unknown key '{}' ({expected})",
                            self.action,
                            k.get_ref()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn string_map(
    cx: &Ctx<'_>,
    action: &str,
    key: &str,
    v: &Spanned<DeValue<'_>>,
) -> Result<Vec<(String, String)>, ScenarioError> {
    let DeValue::Table(t) = v.get_ref() else {
        return Err(cx.err(
            v.span(),
            format!("{action}: '{key}' must be a table of strings"),
        ));
    };
    t.iter()
        .map(|(k, val)| match val.get_ref() {
            DeValue::String(s) => Ok((k.get_ref().to_string(), s.to_string())),
            DeValue::Integer(i) => Ok((k.get_ref().to_string(), i.as_str().to_string())),
            DeValue::Boolean(b) => Ok((k.get_ref().to_string(), b.to_string())),
            other => Err(cx.err(
                val.span(),
                format!(
                    "{action}: '{key}.{}' must be a string, not {}",
                    k.get_ref(),
                    kind(other)
                ),
            )),
        })
        .collect()
}

/// `store = { "esx/advanced_options/misc vital_value.host_name" = "esx-renamed",
/// "esx/authentication/user_accounts/op" = { absent = true } }`: each key names a row
/// (component/group/name[/identifier]), optionally a value column and a field of its JSON; each
/// value is the expected text, or `{ contains = ".." }`, `{ equals = ".." }`, `{ absent = true }`.
fn store_checks(
    cx: &Ctx<'_>,
    action: &str,
    v: &Spanned<DeValue<'_>>,
) -> Result<Vec<StoreCheck>, ScenarioError> {
    let DeValue::Table(t) = v.get_ref() else {
        return Err(cx.err(
            v.span(),
            format!("{action}: 'store' must be a table of \"row column.field\" = value"),
        ));
    };
    let mut out = Vec::new();
    for (k, val) in ordered(t) {
        let key = k.get_ref().to_string();
        let bad = |msg: String| cx.err(k.span(), format!("{action}: store key '{key}': {msg}"));
        let mut words = key.split_whitespace();
        let row = words.next().unwrap_or("");
        let col = words.next();
        if words.next().is_some() {
            return Err(bad(
                "expected \"component/group/name[/identifier] [column[.field]]\"".into(),
            ));
        }
        let parts: Vec<&str> = row.splitn(4, '/').collect();
        if parts.len() < 3 || parts[..3].iter().any(|p| p.is_empty()) {
            return Err(bad(
                "the row is component/group/name[/identifier], like esx/advanced_options/misc"
                    .into(),
            ));
        }
        let (column, field) = match col {
            None => (None, None),
            Some(c) => {
                let (c, f) = match c.split_once('.') {
                    Some((c, f)) if !f.is_empty() => (c, Some(f.to_string())),
                    Some(_) => return Err(bad("an empty field after '.'".into())),
                    None => (c, None),
                };
                if !STORE_COLUMNS.contains(&c) {
                    return Err(bad(format!(
                        "unknown column '{c}' (one of: {})",
                        STORE_COLUMNS.join(", ")
                    )));
                }
                (Some(c.to_string()), f)
            }
        };
        let expect = match val.get_ref() {
            DeValue::String(s) => ValueCheck::Equals(s.to_string()),
            DeValue::Table(vt) => {
                let mut found = Vec::new();
                for (vk, vv) in ordered(vt) {
                    let c = match (vk.get_ref().as_ref(), vv.get_ref()) {
                        ("equals", DeValue::String(s)) => ValueCheck::Equals(s.to_string()),
                        ("contains", DeValue::String(s)) => ValueCheck::Contains(s.to_string()),
                        ("absent", DeValue::Boolean(true)) => ValueCheck::Absent,
                        _ => {
                            return Err(cx.err(
                                vk.span(),
                                format!(
                                    "{action}: store '{key}': expected equals = \"..\", \
                                     contains = \"..\" or absent = true"
                                ),
                            ))
                        }
                    };
                    found.push(c);
                }
                if found.len() != 1 {
                    return Err(cx.err(
                        val.span(),
                        format!(
                            "{action}: store '{key}': give exactly one of equals, contains, absent"
                        ),
                    ));
                }
                found.remove(0)
            }
            other => {
                return Err(cx.err(
                    val.span(),
                    format!(
                        "{action}: store '{key}' must be a string or a table, not {}",
                        kind(other)
                    ),
                ))
            }
        };
        if column.is_none() && expect != ValueCheck::Absent {
            return Err(bad(
                "name a column (user_value, vital_value, ...) to check a value; a row alone takes only absent = true".into(),
            ));
        }
        out.push(StoreCheck {
            component: parts[0].to_string(),
            group: parts[1].to_string(),
            name: parts[2].to_string(),
            identifier: parts.get(3).map(|s| s.to_string()).unwrap_or_default(),
            column,
            field,
            expect,
        });
    }
    Ok(out)
}

pub const ACTIONS: &[&str] = &[
    "login",
    "set_password",
    "create_user",
    "remove_user",
    "set_option",
    "expect_option",
    "backup",
    "upload",
    "restore",
    "reset",
    "sync",
    "enter_maintenance",
    "exit_maintenance",
    "reboot",
    "wait_until_up",
    "expect_bundle",
    "run",
    "write_file",
    "delete_file",
    "expect_file",
    "advance",
    "crash",
    "power_cut",
    "power_cut_during_next_save",
    "power_on",
    "corrupt_bootbank",
    "model_reboot",
    "stateless",
    "mark",
    "expect_bootbank",
    "expect_event",
    "expect_unsaved",
    "set_encryption",
    "read_recovery_key",
    "rotate_recovery_key",
    "replace_board",
    "expect_halted",
    "expect_encryption",
    "expect_saved",
];

/// The keys of a saved-state check.
const STATE_KEYS: [&str; 6] = [
    "layout",
    "mode",
    "has_file",
    "lacks_file",
    "file_contains",
    "store",
];

/// The keys each action takes (checked before anything else, so a typo is named as such rather
/// than as the missing key it was meant to be).
const ACTION_KEYS: &[(&str, &[&str])] = &[
    ("login", &["user", "password"]),
    ("set_password", &["user", "password"]),
    ("create_user", &["user", "password"]),
    ("remove_user", &["user"]),
    ("set_option", &["key", "value"]),
    ("expect_option", &["key", "value"]),
    ("backup", &["name"]),
    ("upload", &["bundle", "hostile", "file", "rewrite"]),
    ("restore", &["force", "halts"]),
    ("reboot", &["force"]),
    (
        "expect_bundle",
        &[
            "bundle",
            "manifest",
            "layout",
            "mode",
            "has_file",
            "lacks_file",
            "file_contains",
            "store",
        ],
    ),
    ("expect_saved", &STATE_KEYS),
    (
        "set_encryption",
        &["mode", "require_secure_boot", "refused"],
    ),
    ("read_recovery_key", &["name"]),
    ("replace_board", &["new_uuid"]),
    ("power_on", &["recovery_key", "halts"]),
    ("expect_halted", &["message"]),
    ("expect_encryption", &["era", "mode", "require_secure_boot"]),
    ("run", &["command", "timeout", "bundle_out", "name"]),
    ("write_file", &["path", "content"]),
    ("delete_file", &["path"]),
    (
        "expect_file",
        &["path", "contains", "not_contains", "equals", "absent"],
    ),
    ("advance", &["by"]),
    ("model_reboot", &["graceful"]),
    ("stateless", &["on"]),
    ("expect_bootbank", &["written"]),
    ("expect_event", &["kind", "present"]),
    ("expect_unsaved", &["unsaved"]),
];

fn check_keys(cx: &Ctx<'_>, name: &str, v: &Spanned<DeValue<'_>>) -> Result<(), ScenarioError> {
    let (DeValue::Table(t), true) = (v.get_ref(), ACTIONS.contains(&name)) else {
        return Ok(());
    };
    let known: &[&str] = ACTION_KEYS
        .iter()
        .find(|(a, _)| *a == name)
        .map(|(_, k)| *k)
        .unwrap_or(&[]);
    for (k, _) in ordered(t) {
        if !known.contains(&k.get_ref().as_ref()) {
            let expected = if known.is_empty() {
                "it takes no parameters".to_string()
            } else {
                format!("expected one of: {}", known.join(", "))
            };
            return Err(cx.err(
                k.span(),
                format!("{name}: unknown key '{}' ({expected})", k.get_ref()),
            ));
        }
    }
    Ok(())
}

fn parse_action(
    cx: &Ctx<'_>,
    name: &str,
    key_span: std::ops::Range<usize>,
    v: &Spanned<DeValue<'_>>,
) -> Result<Action, ScenarioError> {
    check_keys(cx, name, v)?;
    let table = match v.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => None,
    };
    // A few actions take a plain value: `advance = "10m"`, `stateless = true`.
    let scalar = table.is_none();
    let mut p = Params {
        cx,
        action: name,
        span: key_span.clone(),
        table,
        used: Vec::new(),
    };
    let scalar_err = |what: &str| {
        cx.err(
            v.span(),
            format!(
                "{name}: expected a table like {name} = {{ {what} }}, found {}",
                kind(v.get_ref())
            ),
        )
    };
    let a = match name {
        "advance" if scalar => match v.get_ref() {
            DeValue::String(s) => Action::Advance {
                by: parse_duration(s).map_err(|e| cx.err(v.span(), format!("advance: {e}")))?,
            },
            _ => return Err(scalar_err("by = \"10m\"")),
        },
        "stateless" if scalar => match v.get_ref() {
            DeValue::Boolean(b) => Action::Stateless { on: *b },
            _ => return Err(scalar_err("on = true")),
        },
        "expect_unsaved" if scalar => match v.get_ref() {
            DeValue::Boolean(b) => Action::ExpectUnsaved { unsaved: *b },
            _ => return Err(scalar_err("unsaved = true")),
        },
        "expect_halted" if scalar => match v.get_ref() {
            DeValue::String(s) => Action::ExpectHalted {
                message: s.to_string(),
            },
            _ => return Err(scalar_err("message = \"...\"")),
        },
        _ if scalar => return Err(scalar_err("...")),
        "login" => Action::Login {
            user: p.opt_str("user")?.unwrap_or_else(|| "root".into()),
            password: p.opt_str("password")?.unwrap_or_else(|| CURRENT.into()),
        },
        "set_password" => Action::SetPassword {
            user: p.opt_str("user")?.unwrap_or_else(|| "root".into()),
            password: p.str("password")?,
        },
        "create_user" => Action::CreateUser {
            user: p.str("user")?,
            password: p.str("password")?,
        },
        "remove_user" => Action::RemoveUser {
            user: p.str("user")?,
        },
        "set_option" => Action::SetOption {
            key: p.str("key")?,
            value: p.value("value")?,
        },
        "expect_option" => Action::ExpectOption {
            key: p.str("key")?,
            value: p.value("value")?,
        },
        "backup" => Action::Backup {
            name: p.opt_str("name")?.unwrap_or_else(|| "backup".into()),
        },
        "upload" => {
            let bundle = p.opt_str("bundle")?;
            let hostile = p.opt_str("hostile")?;
            let file = p.opt_str("file")?;
            let source = match (bundle, hostile, file) {
                (Some(b), None, None) => UploadSource::Bundle(b),
                (None, Some(h), None) => {
                    if !HOSTILE_KINDS.contains(&h.as_str()) {
                        return Err(cx.err(
                            key_span,
                            format!(
                                "upload: unknown hostile kind '{h}' (one of: {})",
                                HOSTILE_KINDS.join(", ")
                            ),
                        ));
                    }
                    UploadSource::Hostile(h)
                }
                (None, None, Some(f)) => UploadSource::File(f),
                _ => {
                    return Err(cx.err(
                        key_span,
                        "upload: give exactly one of 'bundle', 'hostile' or 'file'",
                    ))
                }
            };
            Action::Upload {
                source,
                rewrite: p.string_map("rewrite")?,
            }
        }
        "restore" => Action::Restore {
            force: p.bool("force")?,
            halts: p.opt_str("halts")?,
        },
        "reset" => Action::Reset,
        "sync" => Action::Sync,
        "enter_maintenance" => Action::EnterMaintenance,
        "exit_maintenance" => Action::ExitMaintenance,
        "reboot" => Action::Reboot {
            force: p.opt_bool("force")?.unwrap_or(false),
        },
        "wait_until_up" => Action::WaitUntilUp,
        "expect_bundle" => Action::ExpectBundle(BundleCheck {
            bundle: p.opt_str("bundle")?.unwrap_or_else(|| "backup".into()),
            manifest: p.string_map("manifest")?,
            state: p.state_check()?,
        }),
        "expect_saved" => Action::ExpectSaved(p.state_check()?),
        "run" => {
            let command = p.str("command")?;
            let timeout = p.duration("timeout")?.unwrap_or(Duration::from_secs(120));
            let out = p.opt_str("bundle_out")?;
            let name = p.opt_str("name")?;
            let bundle_out = match (out, name) {
                (Some(o), n) => Some((o, n.unwrap_or_else(|| "run".into()))),
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(cx.err(
                        key_span,
                        "run: 'name' needs 'bundle_out' (the file the command writes)",
                    ))
                }
            };
            Action::Run {
                command,
                timeout,
                bundle_out,
            }
        }
        "write_file" => Action::WriteFile {
            path: p.str("path")?,
            content: p.str("content")?,
        },
        "delete_file" => Action::DeleteFile {
            path: p.str("path")?,
        },
        "expect_file" => {
            let path = p.str("path")?;
            let contains = p.opt_str("contains")?;
            let not_contains = p.opt_str("not_contains")?;
            let equals = p.opt_str("equals")?;
            let absent = p.opt_bool("absent")?.unwrap_or(false);
            let check = match (contains, not_contains, equals, absent) {
                (Some(c), None, None, false) => FileCheck::Contains(c),
                (None, Some(c), None, false) => FileCheck::NotContains(c),
                (None, None, Some(e), false) => FileCheck::Equals(e),
                (None, None, None, true) => FileCheck::Absent,
                _ => {
                    return Err(cx.err(
                        key_span,
                        "expect_file: give exactly one of 'contains', 'not_contains', 'equals' or 'absent = true'",
                    ))
                }
            };
            Action::ExpectFile { path, check }
        }
        "advance" => Action::Advance {
            by: p
                .duration("by")?
                .ok_or_else(|| cx.err(key_span.clone(), "advance: missing 'by' (like \"10m\")"))?,
        },
        "crash" => Action::Crash,
        "power_cut" => Action::PowerCut,
        "power_cut_during_next_save" => Action::PowerCutDuringNextSave,
        "power_on" => {
            let recovery_key = p.opt_str("recovery_key")?;
            // What looks like a typed key must be one: a typo is not a name.
            if let Some(k) = &recovery_key {
                if k.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
                    && esxi_sim::keystore::RecoveryKey::parse_key(k).is_err()
                {
                    return Err(cx.err(
                        key_span,
                        format!("power_on: 'recovery_key' {k:?} is neither a recorded key's name nor 16 groups of 6 digits"),
                    ));
                }
            }
            Action::PowerOn {
                recovery_key,
                halts: p.opt_str("halts")?,
            }
        }
        "set_encryption" => {
            let mode = p.mode("mode")?;
            let require_secure_boot = p.opt_bool("require_secure_boot")?;
            if mode.is_none() && require_secure_boot.is_none() {
                return Err(cx.err(
                    key_span,
                    "set_encryption: give 'mode' and/or 'require_secure_boot'",
                ));
            }
            Action::SetEncryption {
                mode,
                require_secure_boot,
                refused: p.opt_str("refused")?,
            }
        }
        "read_recovery_key" => Action::ReadRecoveryKey {
            name: p.opt_str("name")?.unwrap_or_else(|| "recovery".into()),
        },
        "rotate_recovery_key" => Action::RotateRecoveryKey,
        "replace_board" => Action::ReplaceBoard {
            new_uuid: p.opt_bool("new_uuid")?.unwrap_or(false),
        },
        "expect_halted" => Action::ExpectHalted {
            message: p.str("message")?,
        },
        "expect_encryption" => {
            let era = p.opt_str("era")?;
            if let Some(e) = &era {
                if !["plain", "configstore", "encrypted"].contains(&e.as_str()) {
                    return Err(cx.err(
                        key_span,
                        format!(
                            "expect_encryption: era {e:?} is one of plain, configstore, encrypted"
                        ),
                    ));
                }
            }
            let a = Action::ExpectEncryption {
                era,
                mode: p.mode("mode")?,
                require_secure_boot: p.opt_bool("require_secure_boot")?,
            };
            if a == (Action::ExpectEncryption {
                era: None,
                mode: None,
                require_secure_boot: None,
            }) {
                return Err(cx.err(
                    key_span,
                    "expect_encryption: give 'era', 'mode' or 'require_secure_boot'",
                ));
            }
            a
        }
        "corrupt_bootbank" => Action::CorruptBootbank,
        "model_reboot" => Action::ModelReboot {
            graceful: p.bool("graceful")?,
        },
        "stateless" => Action::Stateless { on: p.bool("on")? },
        "mark" => Action::Mark,
        "expect_bootbank" => Action::ExpectBootbank {
            written: p.bool("written")?,
        },
        "expect_event" => Action::ExpectEvent {
            kind: p.str("kind")?,
            present: p.opt_bool("present")?.unwrap_or(true),
        },
        "expect_unsaved" => Action::ExpectUnsaved {
            unsaved: p.bool("unsaved")?,
        },
        other => {
            return Err(cx.err(
                key_span,
                format!("unknown action '{other}' (one of: {})", ACTIONS.join(", ")),
            ))
        }
    };
    p.finish()?;
    Ok(a)
}

/// Parses and validates a scenario. `file` names it in errors.
pub fn parse(file: &str, src: &str, known_profiles: &[&str]) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file, src };
    let doc = DeTable::parse(src).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(span, format!("not valid TOML: {}", e.message()))
    })?;
    let doc = doc.get_ref();
    let stem = std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut sc = Scenario {
        file: file.to_string(),
        name: stem,
        checks: String::new(),
        fact: String::new(),
        profiles: Vec::new(),
        steps: Vec::new(),
    };
    let top_str = |v: &Spanned<DeValue<'_>>, k: &str| match v.get_ref() {
        DeValue::String(s) => Ok(s.to_string()),
        other => Err(cx.err(
            v.span(),
            format!("'{k}' must be a string, not {}", kind(other)),
        )),
    };
    let mut saw_checks = false;
    for (k, v) in ordered(doc) {
        match k.get_ref().as_ref() {
            "name" => sc.name = top_str(v, "name")?,
            "checks" => {
                sc.checks = top_str(v, "checks")?;
                saw_checks = true;
            }
            "fact" => sc.fact = top_str(v, "fact")?,
            "profiles" => {
                let DeValue::Array(items) = v.get_ref() else {
                    return Err(cx.err(v.span(), "'profiles' must be an array of profile names"));
                };
                for i in items.iter() {
                    let DeValue::String(p) = i.get_ref() else {
                        return Err(cx.err(i.span(), "'profiles' items must be strings"));
                    };
                    if !known_profiles.contains(&p.as_ref()) {
                        return Err(cx.err(
                            i.span(),
                            format!(
                                "unknown profile '{p}' (one of: {})",
                                known_profiles.join(", ")
                            ),
                        ));
                    }
                    sc.profiles.push(p.to_string());
                }
            }
            "step" => {
                let DeValue::Array(steps) = v.get_ref() else {
                    return Err(cx.err(
                        v.span(),
                        "'step' must be an array of tables: write each as [[step]]",
                    ));
                };
                for s in steps.iter() {
                    sc.steps.push(parse_step(&cx, s)?);
                }
            }
            other => {
                return Err(cx.err(
                    k.span(),
                    format!(
                        "unknown key '{other}' (expected: name, checks, fact, profiles, [[step]])"
                    ),
                ))
            }
        }
    }
    if !saw_checks {
        return Err(cx.err(
            0..0,
            "missing 'checks' (what the scenario checks, in one line)",
        ));
    }
    if sc.steps.is_empty() {
        return Err(cx.err(0..0, "no [[step]] tables"));
    }
    Ok(sc)
}

fn parse_step(cx: &Ctx<'_>, s: &Spanned<DeValue<'_>>) -> Result<Step, ScenarioError> {
    let DeValue::Table(t) = s.get_ref() else {
        return Err(cx.err(s.span(), "a step must be a table ([[step]])"));
    };
    let mut action: Option<(Action, usize)> = None;
    let mut expect_fault = None;
    let mut fields = Vec::new();
    let mut fields_span = None;
    let mut host = None;
    for (k, v) in ordered(t) {
        match k.get_ref().as_ref() {
            "host" => match v.get_ref() {
                DeValue::String(h)
                    if !h.is_empty()
                        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    host = Some(h.to_string())
                }
                _ => {
                    return Err(cx.err(
                        v.span(),
                        "'host' names another host: letters, digits, '-' and '_' (like host = \"other\")",
                    ))
                }
            },
            "expect_fault" => match v.get_ref() {
                DeValue::String(f) => expect_fault = Some(f.to_string()),
                other => {
                    return Err(cx.err(
                        v.span(),
                        format!(
                            "'expect_fault' must be a fault type name, not {}",
                            kind(other)
                        ),
                    ))
                }
            },
            "fields" => {
                fields = string_map(cx, "step", "fields", v)?;
                fields_span = Some(k.span());
            }
            name => {
                if let Some((prev, _)) = &action {
                    return Err(cx.err(
                        k.span(),
                        format!("a step holds one action: found '{name}' after '{}' (start a new [[step]])", prev.name()),
                    ));
                }
                let a = parse_action(cx, name, k.span(), v)?;
                action = Some((a, cx.line(k.span())));
            }
        }
    }
    let Some((action, line)) = action else {
        return Err(cx.err(
            s.span(),
            format!("a step without an action (one of: {})", ACTIONS.join(", ")),
        ));
    };
    if expect_fault.is_some() && !action.may_fault() {
        let why = if action.is_simulator_step() || !action.needs_simulator() {
            "calls no API method"
        } else {
            "expects the call to succeed and the boot to halt"
        };
        return Err(cx.err(
            s.span(),
            format!("'{}' {why}, so it cannot expect a fault", action.name()),
        ));
    }
    if let (Some(span), None) = (fields_span, &expect_fault) {
        return Err(cx.err(span, "'fields' needs 'expect_fault'"));
    }
    Ok(Step {
        line,
        action,
        expect_fault,
        fields,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &[&str] = &["6.7U3", "8.0U3"];

    #[test]
    fn parses_a_scenario() {
        let src = r#"
checks = "a crash loses what changed"
fact = "§1"
profiles = ["6.7U3"]

[[step]]
set_option = { key = "UserVars.SuppressShellWarning", value = 1 }

[[step]]
advance = "10m"

[[step]]
restore = { force = false }
expect_fault = "InvalidState"
"#;
        let s = parse("scenarios/x.toml", src, P).unwrap();
        assert_eq!(s.name, "x");
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[0].line, 7);
        assert_eq!(
            s.steps[1].action,
            Action::Advance {
                by: Duration::from_secs(600)
            }
        );
        assert_eq!(s.steps[2].expect_fault.as_deref(), Some("InvalidState"));
        assert!(s.needs_simulator().is_some());
        assert!(s.destructive().is_some());
    }

    #[test]
    fn parses_the_encryption_steps_and_a_second_host() {
        let key = ["123456"; 16].join("-");
        let src = format!(
            r#"
checks = "the encryption vocabulary"

[[step]]
set_encryption = {{ mode = "TPM", require_secure_boot = true }}

[[step]]
read_recovery_key = {{ name = "k" }}

[[step]]
replace_board = {{ new_uuid = true }}

[[step]]
power_on = {{ recovery_key = "{key}", halts = "does not open it" }}

[[step]]
expect_halted = "A security violation was detected"

[[step]]
expect_saved = {{ layout = "encrypted", mode = "TPM", store = {{ "esx/advanced_options/misc vital_value.host_name" = "esx-1", "esx/authentication/user_accounts/op" = {{ absent = true }}, "esx/x/y/{{A-1}} user_value" = {{ contains = "z" }} }} }}

[[step]]
host = "other"
restore = {{ force = true, halts = "the recovery key is needed" }}
"#
        );
        let s = parse("e.toml", &src, P).unwrap();
        assert_eq!(
            s.steps[0].action,
            Action::SetEncryption {
                mode: Some("TPM".into()),
                require_secure_boot: Some(true),
                refused: None
            }
        );
        assert_eq!(
            s.steps[3].action,
            Action::PowerOn {
                recovery_key: Some(key.clone()),
                halts: Some("does not open it".into())
            }
        );
        let Action::ExpectSaved(c) = &s.steps[5].action else {
            panic!("{:?}", s.steps[5].action)
        };
        assert_eq!(c.layout, Some(Layout::Encrypted));
        assert_eq!(c.store.len(), 3);
        assert_eq!(
            c.store[0],
            StoreCheck {
                component: "esx".into(),
                group: "advanced_options".into(),
                name: "misc".into(),
                identifier: String::new(),
                column: Some("vital_value".into()),
                field: Some("host_name".into()),
                expect: ValueCheck::Equals("esx-1".into()),
            }
        );
        assert_eq!(c.store[1].identifier, "op");
        assert_eq!(c.store[1].expect, ValueCheck::Absent);
        assert_eq!(c.store[2].identifier, "{A-1}");
        assert_eq!(c.store[2].label(), "esx/x/y/{A-1} user_value");
        // The restore that halts needs the simulator to see why; a second host does too.
        assert_eq!(s.steps[6].host.as_deref(), Some("other"));
        assert!(s.steps[6].action.needs_simulator());
        assert!(!s.steps[6].action.is_simulator_step());
    }

    #[test]
    fn errors_name_file_line_and_expectation() {
        let cases = [
            (
                "checks = \"x\"\n[[step]]\nrestore = { forse = true }\n",
                3,
                "unknown key 'forse'",
            ),
            (
                "checks = \"x\"\n[[step]]\nrestore = {}\n",
                3,
                "missing 'force'",
            ),
            (
                "checks = \"x\"\n[[step]]\nfly = {}\n",
                3,
                "unknown action 'fly'",
            ),
            (
                "checks = \"x\"\nprofiles = [\"9.9\"]\n[[step]]\nsync = {}\n",
                2,
                "unknown profile '9.9'",
            ),
            (
                "checks = \"x\"\nbogus = 1\n[[step]]\nsync = {}\n",
                2,
                "unknown key 'bogus'",
            ),
            (
                "checks = \"x\"\n[[step]]\nsync = {}\ncrash = {}\n",
                4,
                "one action",
            ),
            (
                "checks = \"x\"\n[[step]]\ncrash = {}\nexpect_fault = \"X\"\n",
                2,
                "cannot expect a fault",
            ),
            (
                "checks = \"x\"\n[[step]]\nadvance = \"ten\"\n",
                3,
                "not a duration",
            ),
            ("checks = \"x\"\n[[step]\n", 2, "not valid TOML"),
            (
                "checks = \"x\"\n[[step]]\nset_encryption = {}\n",
                3,
                "give 'mode' and/or 'require_secure_boot'",
            ),
            (
                "checks = \"x\"\n[[step]]\nset_encryption = { mode = \"tpm\" }\n",
                3,
                "'mode' must be \"NONE\" or \"TPM\"",
            ),
            (
                "checks = \"x\"\n[[step]]\nexpect_saved = { store = { \"esx/misc vital_value\" = \"x\" } }\n",
                3,
                "the row is component/group/name",
            ),
            (
                "checks = \"x\"\n[[step]]\nexpect_saved = { store = { \"esx/a/b user_valu.x\" = \"x\" } }\n",
                3,
                "unknown column 'user_valu'",
            ),
            (
                "checks = \"x\"\n[[step]]\nexpect_saved = { store = { \"esx/a/b\" = \"x\" } }\n",
                3,
                "name a column",
            ),
            (
                "checks = \"x\"\n[[step]]\nexpect_saved = { store = { \"esx/a/b user_value\" = { has = \"x\" } } }\n",
                3,
                "expected equals",
            ),
            (
                "checks = \"x\"\n[[step]]\nexpect_bundle = { layout = \"zip\" }\n",
                3,
                "'layout' must be \"plain\" or \"encrypted\"",
            ),
            (
                "checks = \"x\"\n[[step]]\npower_on = { recovery_key = \"123-456\" }\n",
                3,
                "neither a recorded key's name nor 16 groups of 6 digits",
            ),
            (
                "checks = \"x\"\n[[step]]\nhost = \"two hosts\"\nsync = {}\n",
                3,
                "'host' names another host",
            ),
            (
                "checks = \"x\"\n[[step]]\nrestore = { force = true, halts = \"x\" }\nexpect_fault = \"X\"\n",
                2,
                "expects the call to succeed and the boot to halt",
            ),
            (
                "checks = \"x\"\n[[step]]\nexpect_halted = 3\n",
                3,
                "expected a table like expect_halted",
            ),
            (
                "checks = \"x\"\n[[step]]\nreplace_board = { new_uuid = \"yes\" }\n",
                3,
                "'new_uuid' must be true or false",
            ),
            (
                "checks = \"x\"\n[[step]]\nexpect_encryption = { era = \"tpm\" }\n",
                3,
                "era \"tpm\" is one of plain, configstore, encrypted",
            ),
            ("[[step]]\nsync = {}\n", 1, "missing 'checks'"),
        ];
        for (src, line, want) in cases {
            let e = parse("s.toml", src, P).unwrap_err();
            assert_eq!(e.file, "s.toml");
            assert!(e.message.contains(want), "{src:?}: {e}");
            assert_eq!(e.line, line, "{src:?}: {e}");
        }
    }
}
