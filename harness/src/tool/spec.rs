//! TOOL.toml: how a user describes their backup tool to `esxi-harness tool`. What to run, how
//! it learns the estate, and what it promises; everything the checks judge it by.
//!
//! ```toml
//! name = "fleet-backup"
//!
//! [backup]
//! command = ["python3", "backup.py"]      # run from the TOOL.toml's directory
//! timeout = "120s"
//!
//! [restore]                                # optional
//! command = ["python3", "restore.py"]
//! timeout = "300s"
//!
//! [estate]                                 # environment variables the harness sets
//! url = "VC_URL"                           # https://ADDR:PORT/sdk of the vCenter
//! user = "VC_USER"
//! password = "VC_PASSWORD"
//! ca_file = "VC_CA_FILE"                   # the fleet CA (PEM)
//! dest = "BACKUP_DIR"                      # where bundles go
//! host_list = "HOST_LIST"                  # optional: a file of host names, one per line
//! restore_host = "RESTORE_HOST"            # with [restore]: the host to restore (its name)
//! host_user = "HOST_USER"                  # with [restore]: a host's own credentials, for
//! host_password = "HOST_PASSWORD"          #   the upload (a vCenter session cannot PUT)
//!
//! [promises]
//! layout = "{date}/{host}/configBundle-{host}.tgz"
//! retention = 7                            # keeps the newest N dated folders (0: no promise)
//! verifies_certificates = true
//! recovery_key = "{date}/{host}/recovery-key-{host}.txt"  # optional: a TPM host's key beside it
//! call_timeout = "10s"                     # optional: gives up on a call that hangs this long
//! ```
//!
//! A malformed file gets an error naming the file and line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    /// The TOOL.toml's directory: commands run there.
    pub dir: PathBuf,
    pub backup: Command,
    pub restore: Option<Command>,
    pub estate: EstateEnv,
    pub promises: Promises,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub argv: Vec<String>,
    pub timeout: Duration,
}

/// The environment variables through which the tool learns the estate.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstateEnv {
    pub url: String,
    pub user: String,
    pub password: String,
    pub dest: String,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub host_list: Option<String>,
    #[serde(default)]
    pub restore_host: Option<String>,
    #[serde(default)]
    pub host_user: Option<String>,
    #[serde(default)]
    pub host_password: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promises {
    /// Where each bundle lands under the destination: `{date}` (YYYY-MM-DD), `{host}` (the
    /// host's name in vCenter).
    pub layout: String,
    #[serde(default)]
    pub retention: usize,
    #[serde(default)]
    pub verifies_certificates: bool,
    /// Where the recovery key of a host in TPM mode (7.0 U2+, facts 6.5) is saved beside its
    /// bundle, if the tool saves it: a path like `layout`. Without the key a backup of a TPM
    /// host cannot be restored onto a new board.
    #[serde(default)]
    pub recovery_key: Option<String>,
    /// How long the tool waits for a call or a download that does not answer before it gives
    /// that host up and goes on with the others: the harness then makes one hang.
    #[serde(default, deserialize_with = "duration")]
    pub call_timeout: Option<Duration>,
}

/// `"10s"`, `"2m"`: a duration as the simulator's flags take them; errors carry the span.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    match esxi_sim::clock::parse_duration(&text) {
        Ok(t) if t.is_zero() => Err(serde::de::Error::custom("call_timeout is zero")),
        Ok(t) => Ok(Some(t)),
        Err(e) => Err(serde::de::Error::custom(format!("call_timeout: {e}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    backup: RawCommand,
    #[serde(default)]
    restore: Option<RawCommand>,
    estate: EstateEnv,
    promises: Promises,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    command: Vec<String>,
    #[serde(default)]
    timeout: Option<String>,
}

/// A TOOL.toml that cannot be used: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for SpecError {}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

impl ToolSpec {
    pub fn load(path: &Path) -> Result<ToolSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            file: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        ToolSpec::parse(&text, &path.display().to_string(), dir)
    }

    pub fn parse(text: &str, file: &str, dir: PathBuf) -> Result<ToolSpec, SpecError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let err = |line: usize, message: String| SpecError {
            file: file.to_string(),
            line,
            message,
        };
        // The line of a key, for errors found after parsing.
        let key_line = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map_or(1, |i| i + 1)
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(s.start));
            err(line, e.message().to_string())
        })?;
        let command = |c: RawCommand, table: &str| -> Result<Command, SpecError> {
            if c.command.is_empty() || c.command[0].trim().is_empty() {
                return Err(err(
                    key_line("command"),
                    format!("[{table}] command is empty: give the program and its arguments"),
                ));
            }
            let timeout = match c.timeout {
                None => DEFAULT_TIMEOUT,
                Some(t) => esxi_sim::clock::parse_duration(&t)
                    .map_err(|e| err(key_line("timeout"), format!("[{table}] timeout: {e}")))?,
            };
            if timeout.is_zero() {
                return Err(err(
                    key_line("timeout"),
                    format!("[{table}] timeout is zero"),
                ));
            }
            Ok(Command {
                argv: c.command,
                timeout,
            })
        };
        // A promised path: one per host, inside the destination, of known placeholders.
        let promised_path = |key: &str, path: &str| -> Result<(), SpecError> {
            if !path.contains("{host}") {
                return Err(err(
                    key_line(key),
                    format!("{key} must contain {{host}}: each host needs its own path"),
                ));
            }
            if let Some(bad) = placeholders(path).find(|p| !matches!(*p, "date" | "host")) {
                return Err(err(
                    key_line(key),
                    format!("{key}: unknown placeholder {{{bad}}} (known: {{date}}, {{host}})"),
                ));
            }
            if path.starts_with('/') || path.split('/').any(|c| c == "..") {
                return Err(err(
                    key_line(key),
                    format!("{key} is a path inside the destination: no leading / or .."),
                ));
            }
            Ok(())
        };
        let layout = &raw.promises.layout;
        promised_path("layout", layout)?;
        if let Some(k) = &raw.promises.recovery_key {
            promised_path("recovery_key", k)?;
            if k == layout {
                return Err(err(
                    key_line("recovery_key"),
                    "recovery_key is the bundle's own path: give the key a file of its own".into(),
                ));
            }
        }
        if raw.promises.retention > 0 && !layout.contains("{date}") {
            return Err(err(
                key_line("retention"),
                "retention keeps the newest dated folders: the layout needs {date}".into(),
            ));
        }
        for (k, v) in [
            ("url", &raw.estate.url),
            ("user", &raw.estate.user),
            ("password", &raw.estate.password),
            ("dest", &raw.estate.dest),
        ] {
            if !is_env_name(v) {
                return Err(err(
                    key_line(k),
                    format!("[estate] {k} = {v:?} is not an environment variable name"),
                ));
            }
        }
        for (k, v) in [
            ("ca_file", &raw.estate.ca_file),
            ("host_list", &raw.estate.host_list),
            ("restore_host", &raw.estate.restore_host),
            ("host_user", &raw.estate.host_user),
            ("host_password", &raw.estate.host_password),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !is_env_name(v)) {
                return Err(err(
                    key_line(k),
                    format!("[estate] {k} = {v:?} is not an environment variable name"),
                ));
            }
        }
        if raw.restore.is_some() {
            for (k, v) in [
                ("restore_host", &raw.estate.restore_host),
                ("host_user", &raw.estate.host_user),
                ("host_password", &raw.estate.host_password),
            ] {
                if v.is_none() {
                    return Err(err(
                        key_line("[restore]"),
                        format!(
                            "[restore] needs [estate] {k}: the variable that tells the tool it"
                        ),
                    ));
                }
            }
        }
        let backup = command(raw.backup, "backup")?;
        if let Some(t) = raw.promises.call_timeout {
            // The hang must cost less than the whole run, or no tool could keep the promise.
            if t * 2 > backup.timeout {
                return Err(err(
                    key_line("call_timeout"),
                    format!(
                        "call_timeout ({t:?}) must be under half the [backup] timeout ({:?}): \
                         a hung host must leave time for the others",
                        backup.timeout
                    ),
                ));
            }
        }
        let restore = raw.restore.map(|r| command(r, "restore")).transpose()?;
        Ok(ToolSpec {
            name: raw.name,
            dir,
            backup,
            restore,
            estate: raw.estate,
            promises: raw.promises,
        })
    }
}

/// The `{...}` names of a layout.
fn placeholders(layout: &str) -> impl Iterator<Item = &str> {
    layout
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(p, _)| p))
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The path a promised layout gives a host's bundle on a date.
pub fn layout_path(layout: &str, date: &str, host: &str) -> String {
    layout.replace("{date}", date).replace("{host}", host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"name = "fleet-backup"

[backup]
command = ["python3", "backup.py"]
timeout = "90s"

[estate]
url = "VC_URL"
user = "VC_USER"
password = "VC_PASSWORD"
ca_file = "VC_CA"
dest = "BACKUP_DIR"

[promises]
layout = "{date}/{host}/configBundle-{host}.tgz"
retention = 7
verifies_certificates = true
"#;

    fn parse(s: &str) -> Result<ToolSpec, SpecError> {
        ToolSpec::parse(s, "TOOL.toml", PathBuf::from("/t"))
    }

    #[test]
    fn a_good_file() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.name, "fleet-backup");
        assert_eq!(t.backup.argv, ["python3", "backup.py"]);
        assert_eq!(t.backup.timeout, Duration::from_secs(90));
        assert!(t.restore.is_none());
        assert_eq!(t.estate.ca_file.as_deref(), Some("VC_CA"));
        assert_eq!(t.promises.retention, 7);
        assert_eq!(
            layout_path(&t.promises.layout, "2024-01-02", "esx-01"),
            "2024-01-02/esx-01/configBundle-esx-01.tgz"
        );
    }

    /// Each mistake: the line it is on, and a message that says what is wrong.
    #[test]
    fn mistakes_name_their_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("timeout = \"90s\"", "timeout = \"soon\"", 5, "timeout"),
            ("timeout = \"90s\"", "timeout = 90", 5, "invalid type"),
            (
                "retention = 7",
                "retention = 7\nkeep = 3",
                17,
                "unknown field `keep`",
            ),
            (
                "layout = \"{date}/{host}/configBundle-{host}.tgz\"",
                "layout = \"{date}/all.tgz\"",
                15,
                "{host}",
            ),
            (
                "layout = \"{date}/{host}/configBundle-{host}.tgz\"",
                "layout = \"{day}/{host}.tgz\"",
                15,
                "{day}",
            ),
            (
                "layout = \"{date}/{host}/configBundle-{host}.tgz\"",
                "layout = \"{host}.tgz\"",
                16,
                "needs {date}",
            ),
            (
                "layout = \"{date}/{host}/configBundle-{host}.tgz\"",
                "layout = \"../{date}/{host}\"",
                15,
                "no leading",
            ),
            (
                "retention = 7",
                "retention = 7\nrecovery_key = \"{date}/key.txt\"",
                17,
                "recovery_key must contain {host}",
            ),
            (
                "retention = 7",
                "retention = 7\nrecovery_key = \"/keys/{host}.txt\"",
                17,
                "no leading",
            ),
            (
                "retention = 7",
                "retention = 7\ncall_timeout = \"soon\"",
                17,
                "call_timeout",
            ),
            (
                "retention = 7",
                "retention = 7\ncall_timeout = \"60s\"",
                17,
                "under half the [backup] timeout",
            ),
            (
                "dest = \"BACKUP_DIR\"",
                "dest = \"backup dir\"",
                12,
                "environment variable",
            ),
            (
                "command = [\"python3\", \"backup.py\"]",
                "command = []",
                4,
                "empty",
            ),
            ("name = \"fleet-backup\"", "name = ", 1, ""),
        ];
        for (from, to, line, says) in cases {
            let text = GOOD.replacen(from, to, 1);
            let e = parse(&text).unwrap_err();
            assert_eq!(e.line, *line, "{to}: {e}");
            assert!(e.message.contains(says), "{to}: {e}");
            assert!(e.to_string().starts_with(&format!("TOOL.toml:{line}: ")));
        }
        let e = parse(&GOOD.replace("[promises]", "[promise]")).unwrap_err();
        assert!(e.message.contains("promise"), "{e}");
    }

    #[test]
    fn a_restore_needs_the_host_and_its_credentials() {
        let with_restore = GOOD.replace(
            "[estate]",
            "[restore]\ncommand = [\"python3\", \"restore.py\"]\n\n[estate]",
        );
        let e = parse(&with_restore).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("restore_host"), "{e}");
        let full = with_restore.replace(
            "dest = \"BACKUP_DIR\"",
            "dest = \"BACKUP_DIR\"\nrestore_host = \"H\"\nhost_user = \"U\"\nhost_password = \"P\"",
        );
        let t = parse(&full).unwrap();
        assert_eq!(t.restore.unwrap().argv, ["python3", "restore.py"]);
        assert_eq!(t.estate.host_user.as_deref(), Some("U"));
        let e = parse(&full.replace("host_user = \"U\"", "host_user = \"U-1\"")).unwrap_err();
        assert!(e.message.contains("host_user"), "{e}");
    }
}
