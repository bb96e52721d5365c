//! `inspect`: what a configuration bundle holds, read with esxi-sim's hostile-input-safe readers.
//!
//! The report covers every layer of facts sections 1, 2 and 6: the bundle (`Manifest.txt`,
//! `state.tgz`), `state.tgz` (`local.tgz`, or from 7.0 U2 `local.tgz.ve` + `encryption.info`,
//! whose encryption facts are shown and which is decrypted when it can be: NONE mode always, TPM
//! mode with the source host's recovery key), the saved files in `local.tgz`, and from 7.0 the
//! ConfigStore's rows as readable lines. Only an unreadable outer archive is an `Err`; a problem
//! in a deeper layer is an error line (or a warning) so the layers above it are still shown.
//! Whether a restore would accept the bundle is reported separately, in the reader's own words.

use std::fmt::{self, Write as _};

use esxi_sim::bundle::{ConfigBundle, Limits, Manifest, Member};
use esxi_sim::configstore::{self, sql_time, Column, ConfigStore};
use esxi_sim::envelope::BLOCK;
use esxi_sim::Profile;

use crate::layers::Layers;
pub use crate::layers::{Encryption, Keys, Opened, OpenedWith};

/// One regular file in one of the archive layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Seconds since the epoch, from the tar header.
    pub mtime: u64,
}

impl FileInfo {
    fn of(m: &Member) -> FileInfo {
        FileInfo {
            path: m.path.clone(),
            size: m.data.len() as u64,
            mode: m.mode,
            mtime: m.mtime,
        }
    }
}

/// A profile from the catalogue whose release level is the bundle's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileMatch {
    pub name: String,
    pub build: u32,
}

/// The report on one bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// Size of the bundle as given (compressed).
    pub size: usize,
    /// Members of the bundle itself (`Manifest.txt`, `state.tgz`).
    pub members: Vec<FileInfo>,
    /// `None` when `Manifest.txt` is missing or unparsable (see `warnings`).
    pub manifest: Option<Manifest>,
    /// Catalogue profiles with the manifest's RELEASELEVEL; empty when none (or no manifest).
    pub profiles: Vec<ProfileMatch>,
    /// The build a restore attributes to the bundle: the lowest build with its release level,
    /// since the 6.x manifest has no BUILD key (facts section 2).
    pub build: Option<u32>,
    /// Members of `state.tgz` (`local.tgz`, or `local.tgz.ve` and `encryption.info`).
    pub state_members: Vec<FileInfo>,
    /// The saved files of `local.tgz`, sorted by path; empty when it could not be read.
    pub files: Vec<FileInfo>,
    /// `state.tgz` holds the 7.0 U2+ encrypted `local.tgz.ve` / `encryption.info`.
    pub encrypted: bool,
    pub warnings: Vec<String>,
    /// `None` when esxi-sim's ConfigBundle::parse (the check a restore makes first) accepts the
    /// bundle, else its message.
    pub reader_error: Option<String>,
    /// 7.0 U2+: the key store's and the envelope's facts, and whether the state opened.
    pub encryption: Option<Encryption>,
    /// 7.0+: the ConfigStore inside local.tgz, when it parses.
    pub configstore: Option<StoreReport>,
    /// Layers that exist but cannot be read (a damaged envelope, a ConfigStore that is not
    /// SQLite, an oversized member): each makes the report's [`Verdict::Invalid`].
    pub errors: Vec<String>,
}

/// The ConfigStore of a bundle (facts 6.3), row by row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreReport {
    /// Its path inside local.tgz.
    pub path: String,
    pub rows: Vec<StoreRow>,
    /// KVTable entries (key, value).
    pub kv: Vec<(String, String)>,
    /// `component/group/name/identifier column = value`, one per row and value column, as
    /// esxi-sim's `ConfigStore::lines` writes them.
    pub lines: Vec<String>,
}

/// One `Config` row: its key, its non-NULL value columns (JSON text) and its bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreRow {
    pub component: String,
    pub group: String,
    pub name: String,
    pub identifier: String,
    /// (`user_value`, ...) with the JSON text, in column order.
    pub values: Vec<(&'static str, String)>,
    pub version: String,
    pub revision: i64,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub created: String,
    pub modified: String,
}

impl StoreReport {
    pub(crate) fn of(store: &ConfigStore) -> StoreReport {
        let rows = store
            .iter()
            .map(|(k, r)| StoreRow {
                component: k.component.clone(),
                group: k.group.clone(),
                name: k.name.clone(),
                identifier: k.identifier.clone(),
                values: Column::ALL
                    .iter()
                    .filter_map(|c| r.value(*c).map(|v| (c.name(), v.to_string())))
                    .collect(),
                version: r.version.clone(),
                revision: r.revision,
                created: sql_time(r.created),
                modified: sql_time(r.modified),
            })
            .collect();
        StoreReport {
            path: configstore::BACKUP_PATH.to_string(),
            rows,
            kv: store
                .kv()
                .iter()
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect(),
            lines: store.lines(),
        }
    }
}

/// What the report comes to, for an exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every layer read, and a restore's reader accepts the bundle.
    Readable,
    /// Readable as far as it goes, but TPM-sealed and not opened: the saved files and the
    /// ConfigStore need the source host's recovery key (facts 6.5).
    Sealed,
    /// A restore would refuse it, or a layer is damaged.
    Invalid,
}

impl Inspection {
    pub fn verdict(&self) -> Verdict {
        if self.reader_error.is_some() || !self.errors.is_empty() {
            Verdict::Invalid
        } else if self.encryption.as_ref().is_some_and(Encryption::sealed) {
            Verdict::Sealed
        } else {
            Verdict::Readable
        }
    }
}

/// Reads untrusted bundle bytes and reports on them, with no recovery key: NONE-mode state is
/// decrypted, TPM-mode state is reported sealed. See [`inspect_with`].
pub fn inspect(bytes: &[u8]) -> Result<Inspection, String> {
    inspect_with(bytes, &Keys::none())
}

/// Reads untrusted bundle bytes and reports on them, opening TPM-sealed state with the recovery
/// keys given. `Err` only when the bundle archive itself is unreadable (not gzip, broken tar,
/// unsafe or unsupported member, over the size caps), with the reader's message.
pub fn inspect_with(bytes: &[u8], keys: &Keys) -> Result<Inspection, String> {
    let layers = Layers::read(bytes, keys)?;
    let mut warnings = Vec::new();
    let mut errors = Vec::new();

    let members: Vec<FileInfo> = layers.outer.iter().map(FileInfo::of).collect();
    for m in &members {
        if m.path != "Manifest.txt" && m.path != "state.tgz" {
            warnings.push(format!(
                "unexpected member {:?} in the bundle (a restore ignores it)",
                m.path
            ));
        }
    }

    let manifest = match &layers.manifest {
        None => {
            warnings.push(
                "no Manifest.txt: a restore refuses the bundle (\"Missing Manifest File\")".into(),
            );
            None
        }
        Some(Err(e)) => {
            warnings.push(format!("Manifest.txt unreadable: {e}"));
            None
        }
        Some(Ok(m)) => Some(m.clone()),
    };

    let mut profiles = Vec::new();
    let mut build = None;
    // Whether the bundle's release keeps a ConfigStore (7.0+, facts 6.3); None: unknown release.
    let mut has_store = None;
    if let Some(m) = &manifest {
        let known: Vec<_> = Profile::all()
            .iter()
            .filter(|p| p.release_level == m.release_level)
            .collect();
        has_store = known.first().map(|p| p.era.has_store());
        profiles = known
            .iter()
            .map(|p| ProfileMatch {
                name: p.name.clone(),
                build: p.build,
            })
            .collect();
        build = Profile::build_for_release_level(&m.release_level);
        if profiles.is_empty() {
            warnings.push(format!(
                "unknown release level {:?}: no profile in the catalogue has it, so no simulated \
                 host will accept this bundle (a restore requires an exact RELEASELEVEL match)",
                m.release_level
            ));
        }
        if !is_smbios_uuid(&m.uuid) {
            warnings.push(format!(
                "UUID {:?} is not an SMBIOS UUID (8-4-4-4-12 hex digits)",
                m.uuid
            ));
        }
    }

    let encrypted = layers.encrypted();
    let mut state_members = Vec::new();
    match &layers.state {
        None => warnings.push("no state.tgz in the bundle: there is no configuration".into()),
        Some(Err(e)) => errors.push(format!("state.tgz unreadable: {e}")),
        Some(Ok(ms)) => {
            state_members = ms.iter().map(FileInfo::of).collect();
            for m in ms {
                if !matches!(
                    m.path.as_str(),
                    "local.tgz" | "local.tgz.ve" | "encryption.info"
                ) {
                    warnings.push(format!(
                        "unexpected member {:?} in state.tgz (the boot ignores it)",
                        m.path
                    ));
                }
            }
            let has_local = ms.iter().any(|m| m.path == "local.tgz");
            if has_local && encrypted {
                warnings.push(
                    "state.tgz holds both local.tgz and the encrypted pair: a reader uses the \
                     plain local.tgz first (facts 6.1)"
                        .into(),
                );
            }
            if !has_local && !encrypted {
                warnings.push("state.tgz has no local.tgz: there are no saved files".into());
            }
        }
    }

    if let Some(enc) = &layers.encryption {
        match &enc.opened {
            Opened::Yes { .. } => {}
            // Said once, on the report's `Sealed:` line: not damage, and not a warning.
            Opened::Sealed(_) => {}
            Opened::Failed(why) => errors.push(format!("encrypted configuration: {why}")),
        }
        // What the envelope says of its key must be what encryption.info says (facts 6.4:
        // vmware.keyInfo is the keyId's UUID).
        if let (Some(h), Some(id)) = (&enc.header, &enc.key_id) {
            if !h.key_info.eq_ignore_ascii_case(id) {
                warnings.push(format!(
                    "the envelope's vmware.keyInfo {:?} is not encryption.info's keyId {id}",
                    h.key_info
                ));
            }
        }
    }

    let mut files = Vec::new();
    match &layers.local {
        None => {}
        Some(Err(e)) => errors.push(format!("local.tgz unreadable: {e}")),
        Some(Ok(ms)) => {
            files = ms.iter().map(FileInfo::of).collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
    // The ConfigStore's two databases belong in local.tgz from 7.0 (facts 6.3).
    let expected = |p: &str| {
        p.starts_with("etc/")
            || (has_store == Some(true)
                && (p == configstore::BACKUP_PATH || p == configstore::DATAFILE_PATH))
    };
    let outside: Vec<&str> = files
        .iter()
        .filter(|f| !expected(&f.path))
        .map(|f| f.path.as_str())
        .collect();
    if !outside.is_empty() {
        // backup.sh only saves under etc/ before 7.0; later ConfigStore lives in var/lib/vmware.
        warnings.push(format!(
            "saved files outside etc/ (restored over / at boot): {}",
            outside.join(", ")
        ));
    }
    for f in &files {
        if f.mode & 0o6000 != 0 {
            warnings.push(format!(
                "{} has the set-user/group-ID bit (mode {:04o})",
                f.path, f.mode
            ));
        } else if f.mode & 0o002 != 0 {
            warnings.push(format!(
                "{} is world-writable (mode {:04o})",
                f.path, f.mode
            ));
        }
    }

    let configstore = match &layers.store {
        None => {
            if has_store == Some(true) && matches!(layers.local, Some(Ok(_))) {
                warnings.push(format!(
                    "no ConfigStore ({}) in local.tgz: this release keeps its network \
                     configuration there (facts 6.3)",
                    configstore::BACKUP_PATH
                ));
            }
            None
        }
        Some(Err(e)) => {
            errors.push(format!("{}: {e}", configstore::BACKUP_PATH));
            None
        }
        Some(Ok(store)) => Some(StoreReport::of(store)),
    };

    let reader_error = ConfigBundle::parse(bytes, &Limits::default())
        .err()
        .map(|e| e.to_string());

    Ok(Inspection {
        size: bytes.len(),
        members,
        manifest,
        profiles,
        build,
        state_members,
        files,
        encrypted,
        warnings,
        reader_error,
        encryption: layers.encryption,
        configstore,
        errors,
    })
}

fn is_smbios_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Bundle: {} bytes", self.size)?;
        for m in &self.members {
            writeln!(f, "  {:04o} {:>9}  {}", m.mode, m.size, m.path)?;
        }
        match &self.manifest {
            None => writeln!(f, "Manifest.txt: (none)")?,
            Some(m) => {
                writeln!(f, "Manifest.txt:")?;
                writeln!(f, "  RELEASELEVEL={}", m.release_level)?;
                writeln!(f, "  UUID={}", m.uuid)?;
                writeln!(f, "  KERNELOPTS={}", m.kernelopts)?;
                writeln!(f, "  USEROPTS={}", m.useropts)?;
                for (k, v) in &m.extra {
                    writeln!(f, "  {k}={v}")?;
                }
            }
        }
        if self.profiles.is_empty() {
            writeln!(f, "Profile: none (unknown release level)")?;
        } else {
            let names: Vec<String> = self
                .profiles
                .iter()
                .map(|p| format!("{} (build {})", p.name, p.build))
                .collect();
            writeln!(f, "Profile: {}", names.join(", "))?;
        }
        if let Some(b) = self.build {
            writeln!(f, "Bundle build: {b}")?;
        }
        writeln!(f, "state.tgz:")?;
        if self.state_members.is_empty() {
            writeln!(f, "  (unreadable or absent)")?;
        }
        for m in &self.state_members {
            writeln!(f, "  {:04o} {:>9}  {}", m.mode, m.size, m.path)?;
        }
        if let Some(e) = &self.encryption {
            write_encryption(f, e)?;
        }
        let total: u64 = self.files.iter().map(|x| x.size).sum();
        match self.encryption.as_ref().map(|e| &e.opened) {
            Some(Opened::Sealed(_)) => {
                writeln!(f, "Saved files (local.tgz): not readable (TPM-sealed)")?
            }
            Some(Opened::Failed(_)) => {
                writeln!(f, "Saved files (local.tgz): not readable (see Errors)")?
            }
            _ => writeln!(
                f,
                "Saved files (local.tgz): {} files, {} bytes",
                self.files.len(),
                total
            )?,
        }
        for x in &self.files {
            writeln!(f, "  {:04o} {:>9}  {}", x.mode, x.size, x.path)?;
        }
        if let Some(c) = &self.configstore {
            writeln!(
                f,
                "ConfigStore ({}): {} rows, {} KVTable entries",
                c.path,
                c.rows.len(),
                c.kv.len()
            )?;
            for l in &c.lines {
                writeln!(f, "  {l}")?;
            }
        }
        if !self.errors.is_empty() {
            writeln!(f, "Errors:")?;
            for e in &self.errors {
                writeln!(f, "  - {e}")?;
            }
        }
        if !self.warnings.is_empty() {
            writeln!(f, "Warnings:")?;
            for w in &self.warnings {
                writeln!(f, "  - {w}")?;
            }
        }
        match &self.reader_error {
            None => writeln!(f, "Restore check: accepted by the bundle reader")?,
            Some(e) => writeln!(f, "Restore check: refused: {e}")?,
        }
        if let Some(Opened::Sealed(why)) = self.encryption.as_ref().map(|e| &e.opened) {
            writeln!(f, "Sealed: {why}")?;
        }
        Ok(())
    }
}

/// The encryption facts (facts 6.4, 6.5): the key store, the envelope's header and sizes, and
/// how (or why not) it opened. Never a key.
fn write_encryption(f: &mut fmt::Formatter<'_>, e: &Encryption) -> fmt::Result {
    match e.mode {
        Some(m) => writeln!(f, "Encryption: {m} mode")?,
        None => writeln!(f, "Encryption: mode unknown (encryption.info unreadable)")?,
    }
    if let Some(id) = &e.key_id {
        writeln!(f, "  key id:      {id}")?;
    }
    if let Some(id) = &e.recovery_id {
        writeln!(f, "  recovery ID: {id}")?;
    }
    if let Some(n) = e.envelope_size {
        writeln!(
            f,
            "  envelope:    {n} bytes: header {}, ciphertext {}, AEAD footer {}",
            BLOCK,
            e.ciphertext().unwrap_or(0),
            BLOCK
        )?;
    }
    if let Some(h) = &e.header {
        writeln!(
            f,
            "  header:      {}, iv {}, keyInfo {}, keyHash {}",
            h.cipher,
            hex(&h.iv),
            h.key_info,
            hex(&h.key_hash)
        )?;
    }
    match &e.opened {
        Opened::Yes {
            with,
            plaintext,
            filler,
        } => {
            let how = match with {
                OpenedWith::NoneKey => "the key derived from encryption.info (NONE mode)",
                OpenedWith::RecoveryKey => "the recovery key",
            };
            writeln!(
                f,
                "  opened:      with {how}: local.tgz {plaintext} bytes, filler {filler}"
            )
        }
        Opened::Sealed(_) => writeln!(f, "  opened:      no, TPM-sealed (see Sealed)"),
        Opened::Failed(_) => writeln!(f, "  opened:      no, damaged (see Errors)"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Inspection {
    /// The report as one JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        s.push('{');
        let _ = write!(s, "\"size\":{}", self.size);
        s.push_str(",\"members\":");
        files_json(&mut s, &self.members);
        s.push_str(",\"manifest\":");
        match &self.manifest {
            None => s.push_str("null"),
            Some(m) => {
                s.push('{');
                let fields = [
                    ("RELEASELEVEL", &m.release_level),
                    ("UUID", &m.uuid),
                    ("KERNELOPTS", &m.kernelopts),
                    ("USEROPTS", &m.useropts),
                ];
                for (i, (k, v)) in fields.into_iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    json_str(&mut s, k);
                    s.push(':');
                    json_str(&mut s, v);
                }
                // Other keys keep their order; a list, since keys may repeat.
                s.push_str(",\"extra\":[");
                for (i, (k, v)) in m.extra.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push('[');
                    json_str(&mut s, k);
                    s.push(',');
                    json_str(&mut s, v);
                    s.push(']');
                }
                s.push_str("]}");
            }
        }
        s.push_str(",\"profiles\":[");
        for (i, p) in self.profiles.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"name\":");
            json_str(&mut s, &p.name);
            let _ = write!(s, ",\"build\":{}}}", p.build);
        }
        s.push(']');
        match self.build {
            Some(b) => {
                let _ = write!(s, ",\"build\":{b}");
            }
            None => s.push_str(",\"build\":null"),
        }
        s.push_str(",\"state_members\":");
        files_json(&mut s, &self.state_members);
        s.push_str(",\"files\":");
        files_json(&mut s, &self.files);
        let _ = write!(s, ",\"encrypted\":{}", self.encrypted);
        s.push_str(",\"warnings\":[");
        for (i, w) in self.warnings.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            json_str(&mut s, w);
        }
        s.push_str("],\"reader_error\":");
        match &self.reader_error {
            None => s.push_str("null"),
            Some(e) => json_str(&mut s, e),
        }
        // Added with the 7.0+ eras (docs/harness-json.md): the fields above keep their meaning.
        let verdict = match self.verdict() {
            Verdict::Readable => "readable",
            Verdict::Sealed => "sealed",
            Verdict::Invalid => "invalid",
        };
        let _ = write!(s, ",\"verdict\":\"{verdict}\"");
        s.push_str(",\"errors\":");
        s.push_str(&serde_json::Value::from(self.errors.clone()).to_string());
        s.push_str(",\"encryption\":");
        s.push_str(
            &self
                .encryption
                .as_ref()
                .map_or(serde_json::Value::Null, encryption_json)
                .to_string(),
        );
        s.push_str(",\"configstore\":");
        s.push_str(
            &self
                .configstore
                .as_ref()
                .map_or(serde_json::Value::Null, store_json)
                .to_string(),
        );
        s.push('}');
        s
    }
}

/// The encryption facts as JSON (docs/harness-json.md).
pub(crate) fn encryption_json(e: &Encryption) -> serde_json::Value {
    use serde_json::json;
    let (opened, with, plaintext, filler, sealed, why) = match &e.opened {
        Opened::Yes {
            with,
            plaintext,
            filler,
        } => (
            true,
            Some(match with {
                OpenedWith::NoneKey => "none-key",
                OpenedWith::RecoveryKey => "recovery-key",
            }),
            Some(*plaintext),
            Some(*filler),
            false,
            None,
        ),
        Opened::Sealed(w) => (false, None, None, None, true, Some(w.clone())),
        Opened::Failed(w) => (false, None, None, None, false, Some(w.clone())),
    };
    json!({
        "mode": e.mode.map(|m| m.to_string()),
        "key_id": e.key_id,
        "recovery_id": e.recovery_id,
        "keystore_error": e.keystore_error,
        "envelope": e.envelope_size.map(|n| json!({
            "size": n,
            "header": BLOCK,
            "ciphertext": e.ciphertext(),
            "aead_footer": BLOCK,
            "plaintext": plaintext,
            "filler": filler,
        })),
        "header": e.header.as_ref().map(|h| json!({
            "cipher": h.cipher,
            "iv": hex(&h.iv),
            "key_info": h.key_info,
            "key_hash": hex(&h.key_hash),
        })),
        "envelope_error": e.envelope_error,
        "opened": opened,
        "opened_with": with,
        "sealed": sealed,
        "reason": why,
    })
}

/// The ConfigStore as JSON: structured rows, KVTable, and the readable lines.
fn store_json(c: &StoreReport) -> serde_json::Value {
    use serde_json::json;
    let rows: Vec<serde_json::Value> = c
        .rows
        .iter()
        .map(|r| {
            let values: serde_json::Map<String, serde_json::Value> = r
                .values
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str())))
                .collect();
            json!({
                "component": r.component,
                "group": r.group,
                "name": r.name,
                "identifier": r.identifier,
                "values": values,
                "version": r.version,
                "revision": r.revision,
                "created": r.created,
                "modified": r.modified,
            })
        })
        .collect();
    let kv: Vec<serde_json::Value> =
        c.kv.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
    json!({"path": c.path, "rows": rows, "kv": kv, "lines": c.lines})
}

fn files_json(s: &mut String, files: &[FileInfo]) {
    s.push('[');
    for (i, x) in files.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"path\":");
        json_str(s, &x.path);
        // Mode as an octal string too: that is how people read it; the number is for programs.
        let _ = write!(
            s,
            ",\"size\":{},\"mode\":{},\"mode_octal\":\"{:04o}\",\"mtime\":{}}}",
            x.size, x.mode, x.mode, x.mtime
        );
    }
    s.push(']');
}

/// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
pub(crate) fn json_str(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}e\u{2028}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001e\u2028é""#);
    }

    #[test]
    fn uuid_shape() {
        assert!(is_smbios_uuid("4C4C4544-0047-3210-804E-C8C04F435032"));
        assert!(!is_smbios_uuid("4C4C4544-0047-3210-804E"));
        assert!(!is_smbios_uuid("4C4C4544-0047-3210-804E-C8C04F43503Z"));
    }
}
