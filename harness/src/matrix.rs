//! The cross-build restore matrix: back up on a host of each profile, restore onto a host of each
//! profile, with the same and a different system UUID, force false and true, then boot what was
//! restored. Each cell is what the model did and is checked against the rules, naming the rule
//! that decided it: firmwareConfig.sh's (esxi-facts.md §2) for every bundle, and for 7.0 U2+
//! bundles the encryption mode's (§6.5):
//!
//! - a NONE-mode bundle (the default) is keyed by its own `encryption.info`: it restores and
//!   boots anywhere the manifest rules allow;
//! - a TPM-mode bundle is sealed to its host's TPM: on that board it boots; on another board
//!   (a board replacement, or another host) the profile's `tpm_bundle_restore` decides
//!   \[unconfirmed\]: `accept` (the default) restores it and the boot then halts until the
//!   source host's recovery key is given, `refuse` is an InvalidBundle before anything changes.
//!
//! Built on the host model directly; a destination host is built once per profile and identity
//! and cloned for each restore.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use esxi_sim::keystore::Mode;
use esxi_sim::profile::{Era, TpmBundleRestore};
use esxi_sim::{Host, HostConfig, HostError, Profile};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub from: String,
    pub to: String,
    pub same_uuid: bool,
    pub force: bool,
    /// The bundle's encryption mode: `None` before 7.0 U2 (a plain local.tgz).
    pub encryption: Option<Mode>,
    /// TPM bundles: whether the destination has the source host's TPM (its own board). `None`
    /// for other bundles, which no board seals.
    pub same_board: Option<bool>,
    /// `restored` (and booted the bundle's configuration), `restored; recovery key needed`,
    /// `MismatchedBundle`, `InvalidBundle`, ...
    pub outcome: String,
    /// What the rules say.
    pub expected: String,
    pub rule: &'static str,
}

impl Cell {
    pub fn agrees(&self) -> bool {
        self.outcome == self.expected
    }
}

const OTHER_UUID: &str = "4C4C4544-0051-3810-8052-B4C04F4A5931";
/// The destinations' install hostname, so that booting the bundle's own is observable.
const TARGET_HOSTNAME: &str = "esx-restore-target";
/// The source hosts' seed; a destination with it has the source's TPM (the board is the seed's).
const SOURCE_SEED: u64 = 1;
const OTHER_SEED: u64 = 2;

pub const RESTORED: &str = "restored";
/// A TPM bundle on another board: restored, the boot halted (facts 6.5), and the source host's
/// recovery key then booted it.
pub const RECOVERY_KEY_NEEDED: &str = "restored; recovery key needed";

fn outcome(r: Result<(), HostError>) -> String {
    match r {
        Ok(()) => RESTORED.into(),
        Err(HostError::MismatchedBundle { .. }) => "MismatchedBundle".into(),
        Err(HostError::InvalidBundle(_)) => "InvalidBundle".into(),
        Err(HostError::InvalidState(_)) => "InvalidState".into(),
        Err(HostError::FileNotFound(_)) => "FileNotFound".into(),
        Err(e) => format!("error: {e}"),
    }
}

/// A source host's bundle and what a restore of it must boot into.
struct Source {
    bundle: Vec<u8>,
    uuid: String,
    hostname: String,
    /// TPM mode: the recovery key's text.
    recovery_key: Option<String>,
}

fn source(p: &Arc<Profile>, mode: Mode) -> Result<Source, String> {
    let mut h = HostConfig::new(p.clone())
        .seed(SOURCE_SEED)
        .encryption(mode)
        .boot_time(Duration::ZERO)
        .build()
        .map_err(|e| e.to_string())?;
    let bundle = h.backup_bundle().map_err(|e| e.to_string())?;
    Ok(Source {
        bundle: bundle.bytes.to_vec(),
        uuid: h.smbios_uuid().to_string(),
        hostname: h.hostname(),
        recovery_key: h.recovery_key().map(|k| k.key_text()),
    })
}

/// Destination hosts in maintenance mode, built once per (profile, seed, uuid) and cloned.
#[derive(Default)]
struct Destinations(HashMap<(String, u64, String), Host>);

impl Destinations {
    fn get(&mut self, to: &Arc<Profile>, seed: u64, uuid: &str) -> Result<Host, String> {
        let key = (to.name.clone(), seed, uuid.to_string());
        if let Some(h) = self.0.get(&key) {
            return Ok(h.clone());
        }
        let mut h = HostConfig::new(to.clone())
            .seed(seed)
            .uuid(uuid)
            .hostname(TARGET_HOSTNAME)
            .boot_time(Duration::ZERO)
            .build()
            .map_err(|e| e.to_string())?;
        h.enter_maintenance_mode().map_err(|e| e.to_string())?;
        self.0.insert(key, h.clone());
        Ok(h)
    }
}

/// Restores `src` onto `dst`, boots it, and says what happened: `restored` only when the host
/// came up running the bundle's configuration (its hostname).
fn restore_and_boot(mut dst: Host, src: &Source, force: bool) -> String {
    let r = dst.restore_bundle(src.bundle.clone(), force);
    if r.is_err() {
        return outcome(r);
    }
    dst.wait_until_running();
    let booted = |h: &Host| h.is_running() && h.hostname() == src.hostname;
    if booted(&dst) {
        return RESTORED.into();
    }
    if dst.boot_halted().is_none() {
        return format!("restored; booted as {}", dst.hostname());
    }
    // Facts 6.5: the boot option encryptionRecoveryKey= opens what this TPM cannot.
    let Some(key) = &src.recovery_key else {
        return "restored; boot halted".into();
    };
    if dst.power_on_with_recovery_key(key).is_err() {
        return "restored; boot halted, power-on refused".into();
    }
    dst.wait_until_running();
    if booted(&dst) {
        RECOVERY_KEY_NEEDED.into()
    } else {
        "restored; boot halted, the recovery key did not open it".into()
    }
}

/// What the rules say of one cell, and which rule said it.
fn expect(
    from: &Profile,
    to: &Profile,
    same_uuid: bool,
    force: bool,
    same_board: Option<bool>,
) -> (&'static str, &'static str) {
    if from.release_level != to.release_level {
        return (
            "MismatchedBundle",
            "2: RELEASELEVEL differs (even with force)",
        );
    }
    if !same_uuid && !force {
        return ("MismatchedBundle", "3: UUID differs, no force");
    }
    match same_board {
        Some(false) => match to.tpm_bundle_restore {
            TpmBundleRestore::Accept => (
                RECOVERY_KEY_NEEDED,
                "6.5: sealed to another TPM: accepted (tpm_bundle_restore = accept), the boot \
                 halts until the source host's recovery key",
            ),
            TpmBundleRestore::Refuse => (
                "InvalidBundle",
                "6.5: sealed to another TPM: refused (tpm_bundle_restore = refuse)",
            ),
        },
        Some(true) => ("restored", "4 and 6.5: its own TPM unseals it"),
        None if !same_uuid => ("restored", "3: UUID differs, forced"),
        None => ("restored", "4: same release level and UUID"),
    }
}

/// Every cell for these profiles: each bundle onto each profile in each combination; for 7.0
/// U2+ sources, NONE-mode bundles in [`COMBINATIONS`] and TPM-mode ones in
/// [`TPM_COMBINATIONS`].
pub fn build(profiles: &[Arc<Profile>]) -> Result<Vec<Cell>, String> {
    let mut cells = Vec::new();
    let mut dests = Destinations::default();
    for from in profiles {
        let encrypted = from.era == Era::Encrypted;
        let mut kinds = vec![(encrypted.then_some(Mode::None), source(from, Mode::None)?)];
        if encrypted {
            kinds.push((Some(Mode::Tpm), source(from, Mode::Tpm)?));
        }
        for (mode, src) in &kinds {
            let tpm = *mode == Some(Mode::Tpm);
            let combos: Vec<Combination> = if tpm {
                TPM_COMBINATIONS.to_vec()
            } else {
                COMBINATIONS.to_vec()
            };
            for to in profiles {
                for c in &combos {
                    let seed = if c.same_board == Some(true) {
                        SOURCE_SEED
                    } else {
                        OTHER_SEED
                    };
                    let uuid = if c.same_uuid { &src.uuid } else { OTHER_UUID };
                    let dst = dests.get(to, seed, uuid)?;
                    let got = restore_and_boot(dst, src, c.force);
                    let (expected, rule) = expect(from, to, c.same_uuid, c.force, c.same_board);
                    cells.push(Cell {
                        from: from.name.clone(),
                        to: to.name.clone(),
                        same_uuid: c.same_uuid,
                        force: c.force,
                        encryption: *mode,
                        same_board: c.same_board,
                        outcome: got,
                        expected: expected.into(),
                        rule,
                    });
                }
            }
        }
    }
    Ok(cells)
}

fn symbol(c: &Cell) -> String {
    let s = match c.outcome.as_str() {
        RESTORED => "✓".to_string(),
        RECOVERY_KEY_NEEDED => "🔑".to_string(),
        "MismatchedBundle" => "✗".to_string(),
        other => other.to_string(),
    };
    if c.agrees() {
        s
    } else {
        format!("{s} (rules: {})", c.expected)
    }
}

/// One table: which bundles (TPM or not), which destination.
#[derive(Clone, Copy, Debug)]
pub struct Combination {
    pub same_uuid: bool,
    pub force: bool,
    /// TPM tables only: the destination has the source's TPM.
    pub same_board: Option<bool>,
    pub title: &'static str,
}

const fn combo(same_uuid: bool, force: bool, title: &'static str) -> Combination {
    Combination {
        same_uuid,
        force,
        same_board: None,
        title,
    }
}

const fn tpm(same_board: bool, same_uuid: bool, force: bool, title: &'static str) -> Combination {
    Combination {
        same_uuid,
        force,
        same_board: Some(same_board),
        title,
    }
}

/// The tables of plain and NONE-mode bundles.
pub const COMBINATIONS: [Combination; 4] = [
    combo(true, false, "Same host (same UUID), force = false"),
    combo(true, true, "Same host (same UUID), force = true"),
    combo(false, false, "Another host (other UUID), force = false"),
    combo(false, true, "Another host (other UUID), force = true"),
];

/// The tables of TPM-mode bundles (7.0 U2+ sources only).
pub const TPM_COMBINATIONS: [Combination; 4] = [
    tpm(
        true,
        true,
        false,
        "TPM bundle, same host (its own TPM), force = false",
    ),
    tpm(
        false,
        true,
        false,
        "TPM bundle, same host after a board replacement (new TPM, same UUID), force = false",
    ),
    tpm(
        false,
        false,
        false,
        "TPM bundle, another host (other TPM and UUID), force = false",
    ),
    tpm(
        false,
        false,
        true,
        "TPM bundle, another host (other TPM and UUID), force = true",
    ),
];

fn find<'a>(cells: &'a [Cell], from: &str, to: &str, c: &Combination) -> Option<&'a Cell> {
    let tpm = c.same_board.is_some();
    cells.iter().find(|x| {
        x.from == from
            && x.to == to
            && x.same_uuid == c.same_uuid
            && x.force == c.force
            && x.same_board == c.same_board
            && (x.encryption == Some(Mode::Tpm)) == tpm
    })
}

/// The tables: the plain/NONE ones over every profile, the TPM ones with the 7.0 U2+ rows.
fn tables(profiles: &[Arc<Profile>]) -> Vec<(Combination, Vec<&Arc<Profile>>)> {
    let mut out: Vec<(Combination, Vec<&Arc<Profile>>)> = COMBINATIONS
        .iter()
        .map(|c| (*c, profiles.iter().collect()))
        .collect();
    let sealed: Vec<&Arc<Profile>> = profiles
        .iter()
        .filter(|p| p.era == Era::Encrypted)
        .collect();
    if !sealed.is_empty() {
        out.extend(TPM_COMBINATIONS.iter().map(|c| (*c, sealed.clone())));
    }
    out
}

/// Markdown: one table per combination, rows = bundle from, columns = restored onto.
pub fn markdown(profiles: &[Arc<Profile>], cells: &[Cell]) -> String {
    let mut s = String::from(
        "# Restore matrix\n\nGenerated by `esxi-harness matrix --format md --out docs/restore-matrix.md`; a test \
         regenerates it and compares. Rows: the profile a bundle was backed up on. Columns: the profile it \
         is restored onto; each restore is then booted. ✓ restored and booted the bundle's configuration, \
         ✗ MismatchedBundle, 🔑 restored, then the boot halted until the source host's recovery key was \
         given (and then booted it). Every cell is checked against firmwareConfig.sh's rules \
         (esxi-facts.md §2): 2, RELEASELEVEL differs → mismatch even with force; 3, UUID differs → \
         mismatch unless force; 4, otherwise restored. Patch builds of one Update (7.0U3, 7.0U3d, \
         7.0U3k) share a release level, so they restore onto each other.\n\n\
         From 7.0 U2 the bundle's state.tgz is encrypted (§6.4). The first four tables hold plain bundles \
         (before 7.0 U2) and NONE-mode ones (the default mode: keyed by the bundle's own \
         encryption.info, they restore like plain ones). The last four hold TPM-mode bundles (§6.5): \
         sealed to the source host's TPM, they boot on that board; on another (a board replacement \
         or another host) the profile's `tpm_bundle_restore` decides, [unconfirmed]: `accept` (every \
         profile's default) restores them and the boot halts until the recovery key, `refuse` is an \
         InvalidBundle.\n",
    );
    let disagree = cells.iter().filter(|c| !c.agrees()).count();
    s.push_str(&format!(
        "\n{} cells, {} disagree with the rules.\n",
        cells.len(),
        disagree
    ));
    for (c, rows) in tables(profiles) {
        s.push_str(&format!("\n## {}\n\n| from \\ onto |", c.title));
        for p in profiles {
            s.push_str(&format!(" {} |", p.name));
        }
        s.push_str("\n|---|");
        for _ in profiles {
            s.push_str("---|");
        }
        s.push('\n');
        for from in rows {
            s.push_str(&format!("| **{}** |", from.name));
            for to in profiles {
                let x = find(cells, &from.name, &to.name, &c);
                s.push_str(&format!(" {} |", x.map(symbol).unwrap_or_default()));
            }
            s.push('\n');
        }
    }
    s
}

fn html_escape(s: &str) -> String {
    let mut o = String::new();
    esxi_sim::soap::xml::escape(s, &mut o);
    o
}

/// A standalone HTML page: the same tables, each cell titled with the rule that decided it.
pub fn html(profiles: &[Arc<Profile>], cells: &[Cell]) -> String {
    let mut s = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>Restore matrix</title>\n\
         <style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1.5em}\
         td,th{border:1px solid #999;padding:2px 6px;text-align:center}\
         .ok{background:#d9f2d9}.key{background:#fff2c2}.no{background:#f6d5d5}.bad{background:#f0b000}</style></head><body>\n\
         <h1>Restore matrix</h1>\n<p>Rows: the profile a bundle was backed up on. Columns: the profile it is \
         restored onto. ✓ restored and booted, ✗ MismatchedBundle, 🔑 restored, the boot needed the source \
         host's recovery key; hover a cell for the rule (esxi-facts.md §2, §6.5) that decided it.</p>\n",
    );
    let disagree = cells.iter().filter(|c| !c.agrees()).count();
    s.push_str(&format!(
        "<p>{} cells, {disagree} disagree with the rules.</p>\n",
        cells.len()
    ));
    for (c, rows) in tables(profiles) {
        s.push_str(&format!(
            "<h2>{}</h2>\n<table>\n<tr><th>from \\ onto</th>",
            html_escape(c.title)
        ));
        for p in profiles {
            s.push_str(&format!("<th>{}</th>", html_escape(&p.name)));
        }
        s.push_str("</tr>\n");
        for from in rows {
            s.push_str(&format!("<tr><th>{}</th>", html_escape(&from.name)));
            for to in profiles {
                match find(cells, &from.name, &to.name, &c) {
                    Some(x) => {
                        let class = match (x.agrees(), x.outcome.as_str()) {
                            (false, _) => "bad",
                            (true, RESTORED) => "ok",
                            (true, RECOVERY_KEY_NEEDED) => "key",
                            _ => "no",
                        };
                        s.push_str(&format!(
                            "<td class=\"{class}\" title=\"rule {}\">{}</td>",
                            html_escape(x.rule),
                            html_escape(&symbol(x))
                        ));
                    }
                    None => s.push_str("<td></td>"),
                }
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}

pub fn json(cells: &[Cell]) -> String {
    let v: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| {
            serde_json::json!({
                "from": c.from, "to": c.to, "same_uuid": c.same_uuid, "force": c.force,
                "encryption": c.encryption.map(|m| m.to_string()), "same_board": c.same_board,
                "outcome": c.outcome, "expected": c.expected, "rule": c.rule, "agrees": c.agrees(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_default()
}
