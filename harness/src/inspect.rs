//! `inspect`: what a configuration bundle holds, read with esxi-sim's hostile-input-safe readers.
//!
//! The report covers the three layers of facts sections 1-2: the bundle (`Manifest.txt`,
//! `state.tgz`), `state.tgz` (`local.tgz`, or `local.tgz.ve` + `encryption.info` from 7.0 U2 on)
//! and the saved files in `local.tgz`. Only an unreadable outer archive is an error; a problem in
//! a deeper layer becomes a warning so the layers above it are still shown. Whether a restore
//! would accept the bundle is reported separately, in the reader's own words.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use esxi_sim::bundle::{read_tgz, BundleError, ConfigBundle, Limits, Manifest, Member};
use esxi_sim::Profile;

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
}

/// The layers of a bundle, read as far as the safe reader allows. Shared with [`crate::diff`].
pub(crate) struct Layers {
    pub outer: Vec<Member>,
    pub manifest: Option<Result<Manifest, BundleError>>,
    /// `None`: no state.tgz member.
    pub state: Option<Result<Vec<Member>, BundleError>>,
    /// `None`: state.tgz unreadable or without local.tgz.
    pub local: Option<Result<Vec<Member>, BundleError>>,
}

impl Layers {
    pub(crate) fn read(bytes: &[u8]) -> Result<Layers, String> {
        let limits = Limits::default();
        // The outer layer is the only hard failure: without it there is nothing to report.
        let outer = read_tgz(bytes, &limits, "configBundle.tgz").map_err(|e| e.to_string())?;
        let find = |name: &str| outer.iter().find(|m| m.path == name);
        let manifest = find("Manifest.txt").map(|m| Manifest::parse(&m.data, &limits));
        let state = find("state.tgz").map(|m| read_tgz(&m.data, &limits, "state.tgz"));
        let local = match &state {
            Some(Ok(members)) => members
                .iter()
                .find(|m| m.path == "local.tgz")
                .map(|m| read_tgz(&m.data, &limits, "local.tgz")),
            _ => None,
        };
        Ok(Layers {
            outer,
            manifest,
            state,
            local,
        })
    }

    pub(crate) fn manifest_bytes(&self) -> Option<&[u8]> {
        self.outer
            .iter()
            .find(|m| m.path == "Manifest.txt")
            .map(|m| &m.data[..])
    }

    pub(crate) fn encrypted(&self) -> bool {
        matches!(&self.state, Some(Ok(members))
            if members.iter().any(|m| m.path == "local.tgz.ve" || m.path == "encryption.info"))
    }

    /// The saved configuration as diff sees it: `Manifest.txt` (when present) plus every member
    /// of `local.tgz`. Fails when the saved files cannot be read at all.
    pub(crate) fn saved_files(self) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let mut out = BTreeMap::new();
        if let Some(m) = self.manifest_bytes() {
            out.insert("Manifest.txt".to_string(), m.to_vec());
        }
        let encrypted = self.encrypted();
        match self.local {
            Some(Ok(files)) => {
                for f in files {
                    out.insert(f.path, f.data);
                }
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => {
                return Err(match self.state {
                    None => BundleError::MissingMember("state.tgz").to_string(),
                    Some(Err(e)) => e.to_string(),
                    Some(Ok(_)) if encrypted => BundleError::EncryptedConfig.to_string(),
                    Some(Ok(_)) => BundleError::MissingMember("local.tgz in state.tgz").to_string(),
                })
            }
        }
        Ok(out)
    }
}

/// Reads untrusted bundle bytes and reports on them. `Err` only when the bundle archive itself is
/// unreadable (not gzip, broken tar, unsafe or unsupported member, over the size caps), with the
/// reader's message.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, String> {
    let layers = Layers::read(bytes)?;
    let mut warnings = Vec::new();

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
    if let Some(m) = &manifest {
        profiles = Profile::all()
            .iter()
            .filter(|p| p.release_level == m.release_level)
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
        Some(Err(e)) => warnings.push(format!("state.tgz unreadable: {e}")),
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
            if encrypted {
                warnings.push(
                    "encrypted configuration (local.tgz.ve / encryption.info, 7.0 U2+ style): \
                     the saved files cannot be read without the host's key"
                        .into(),
                );
            }
            let has_local = ms.iter().any(|m| m.path == "local.tgz");
            if !has_local && !encrypted {
                warnings.push("state.tgz has no local.tgz: there are no saved files".into());
            }
        }
    }

    let mut files = Vec::new();
    match &layers.local {
        None => {}
        Some(Err(e)) => warnings.push(format!("local.tgz unreadable: {e}")),
        Some(Ok(ms)) => {
            files = ms.iter().map(FileInfo::of).collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
        }
    }
    let outside: Vec<&str> = files
        .iter()
        .filter(|f| !f.path.starts_with("etc/"))
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
        let total: u64 = self.files.iter().map(|x| x.size).sum();
        writeln!(
            f,
            "Saved files (local.tgz): {} files, {} bytes",
            self.files.len(),
            total
        )?;
        if self.encrypted {
            writeln!(f, "  (encrypted: contents unreadable)")?;
        }
        for x in &self.files {
            writeln!(f, "  {:04o} {:>9}  {}", x.mode, x.size, x.path)?;
        }
        if !self.warnings.is_empty() {
            writeln!(f, "Warnings:")?;
            for w in &self.warnings {
                writeln!(f, "  - {w}")?;
            }
        }
        match &self.reader_error {
            None => writeln!(f, "Restore check: accepted by the bundle reader"),
            Some(e) => writeln!(f, "Restore check: refused: {e}"),
        }
    }
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
        s.push('}');
        s
    }
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
