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
    PowerOn,
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
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct BundleCheck {
    pub bundle: String,
    pub manifest: Vec<(String, String)>,
    pub has_files: Vec<String>,
    pub lacks_files: Vec<String>,
    pub file_contains: Vec<(String, String)>,
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
            Action::PowerOn => "power_on",
            Action::CorruptBootbank => "corrupt_bootbank",
            Action::ModelReboot { .. } => "model_reboot",
            Action::Stateless { .. } => "stateless",
            Action::Mark => "mark",
            Action::ExpectBootbank { .. } => "expect_bootbank",
            Action::ExpectEvent { .. } => "expect_event",
            Action::ExpectUnsaved { .. } => "expect_unsaved",
        }
    }
    /// Steps only the simulator can do (a real host is skipped, with this as the reason).
    pub fn needs_simulator(&self) -> bool {
        matches!(
            self,
            Action::WriteFile { .. }
                | Action::DeleteFile { .. }
                | Action::ExpectFile { .. }
                | Action::Advance { .. }
                | Action::Crash
                | Action::PowerCut
                | Action::PowerCutDuringNextSave
                | Action::PowerOn
                | Action::CorruptBootbank
                | Action::ModelReboot { .. }
                | Action::Stateless { .. }
                | Action::Mark
                | Action::ExpectBootbank { .. }
                | Action::ExpectEvent { .. }
                | Action::ExpectUnsaved { .. }
        )
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
        self.steps.iter().find(|s| s.action.needs_simulator())
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
    ("restore", &["force"]),
    ("reboot", &["force"]),
    (
        "expect_bundle",
        &[
            "bundle",
            "manifest",
            "has_file",
            "lacks_file",
            "file_contains",
        ],
    ),
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
            has_files: p.string_list("has_file")?,
            lacks_files: p.string_list("lacks_file")?,
            file_contains: p.string_map("file_contains")?,
        }),
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
        "power_on" => Action::PowerOn,
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
    for (k, v) in ordered(t) {
        match k.get_ref().as_ref() {
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
        return Err(cx.err(
            s.span(),
            format!(
                "'{}' calls no API method, so it cannot expect a fault",
                action.name()
            ),
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
