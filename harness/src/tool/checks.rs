//! The checks: each a named contract a backup tool keeps or breaks, judged from what the
//! simulator recorded (the request trace) and what the tool left on disk. Each verdict carries
//! its evidence: the calls, the files, what was expected and what was seen.
//!
//! The backup run (the estate as it starts, a fresh change on every host just before):
//!
//! | id | contract |
//! |---|---|
//! | `completes` | the run ends by itself, exit status 0, when every host to back up answers |
//! | `each-host-once` | every connected host is backed up exactly once (seed 001: "seven output lines when I only have three hosts") |
//! | `skips-not-responding` | a host vCenter reports not responding is not asked for a backup |
//! | `changes-nothing` | besides backups, only reads: no restore, reset, maintenance mode, reboot, upload |
//! | `downloads-from-the-host` | each bundle is fetched from its own host (the `*` in the URL replaced by that host, with the URL's port), never from the vCenter |
//! | `bundles-where-promised` | each host's bundle is at the promised layout path |
//! | `bundles-of-the-right-host` | each file is a readable bundle of the host it is named for (its Manifest's UUID) |
//! | `bundles-fresh` | each bundle holds the change made just before the run (the backup saved first, not a stale copy) |
//! | `nothing-else-written` | the destination holds the promised files and nothing else |
//! | `recovery-key-saved` | a host in TPM mode (7.0 U2+) has its recovery key saved where promised, beside its bundle: without it the bundle cannot be restored onto a new board (facts 6.5); skipped for a tool that promises no `recovery_key` |
//!
//! Other situations, each on a fresh estate:
//!
//! | id | situation | contract |
//! |---|---|---|
//! | `failure-does-not-stop-the-others` | one host fails: its backup call faults (HostCommunication), its download is 404, its download breaks off, or (a tool with a `call_timeout`) its download hangs (each in turn) | the other hosts are backed up all the same |
//! | `failure-is-reported` | the same | the exit status says so (non-zero; not "success", not a hang) |
//! | `no-broken-bundle-kept` | the same | what the failed host's path holds, if anything, is a whole bundle of it (a download that broke off is not kept as a backup) |
//! | `verifies-certificates` | the CA file given is another CA's (a tool that promises to verify) | the tool does not log in, and fails |
//! | `keeps-the-newest-n` | the destination holds older dated folders (a tool that promises retention N) | after the run, the newest N dated folders are there and no others |
//! | `urls-on-443` | the hosts on port 443 with port 80 redirecting, their URLs `http://*/...` as a real host's (needs privileges to bind 443 and 80) | each bundle is fetched from its own host and lands where promised |
//!
//! The restore runs (a tool with `[restore]`): one host's bundle in the destination, its
//! configuration changed and saved since; the tool is told to restore that host. Twice, each on
//! a fresh estate: on the board the bundle was taken on, and after the host's motherboard was
//! replaced (a new SMBIOS UUID: the bundle restores only with `force`). Each contract must hold
//! in both.
//!
//! | id | contract |
//! |---|---|
//! | `restore-in-maintenance-mode` | the host is put in maintenance mode first, and the restore is accepted |
//! | `restore-force-only-when-needed` | `force` is false for a bundle of the same board (force restores a bundle onto the wrong host), true only once the board was replaced |
//! | `restore-waits-for-the-reboot` | the tool exits only once the host is back up |
//! | `restore-leaves-maintenance-mode` | the host is taken out of maintenance mode after the reboot |
//! | `restore-brings-the-bundle-back` | the host runs the bundle's configuration, not the later one |
//! | `restore-only-that-host` | no other host is restored, reset or rebooted |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use esxi_sim::server::trace::Record;

use super::estate::{EstateHost, Role, MARK_KEY};
use super::run::Ran;

/// A contract.
#[derive(Debug)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
}

pub const COMPLETES: Check = Check {
    id: "completes",
    title: "the backup run ends by itself with exit status 0",
};
pub const EACH_HOST_ONCE: Check = Check {
    id: "each-host-once",
    title: "every connected host is backed up exactly once",
};
pub const SKIPS_NOT_RESPONDING: Check = Check {
    id: "skips-not-responding",
    title: "a host that is not responding is not asked for a backup",
};
pub const CHANGES_NOTHING: Check = Check {
    id: "changes-nothing",
    title: "a backup run changes nothing on the hosts",
};
pub const DOWNLOADS_FROM_THE_HOST: Check = Check {
    id: "downloads-from-the-host",
    title: "each bundle is downloaded from its own host",
};
pub const BUNDLES_WHERE_PROMISED: Check = Check {
    id: "bundles-where-promised",
    title: "each bundle is at the promised path",
};
pub const BUNDLES_OF_THE_RIGHT_HOST: Check = Check {
    id: "bundles-of-the-right-host",
    title: "each bundle file is a readable bundle of the host it is named for",
};
pub const BUNDLES_FRESH: Check = Check {
    id: "bundles-fresh",
    title: "each bundle holds the change made just before the run",
};
pub const NOTHING_ELSE_WRITTEN: Check = Check {
    id: "nothing-else-written",
    title: "the destination holds the promised files and nothing else",
};
pub const RECOVERY_KEY_SAVED: Check = Check {
    id: "recovery-key-saved",
    title: "a TPM-mode host's recovery key is saved beside its bundle",
};

pub const FAILURE_DOES_NOT_STOP: Check = Check {
    id: "failure-does-not-stop-the-others",
    title: "a host whose backup fails does not stop the others",
};
pub const FAILURE_IS_REPORTED: Check = Check {
    id: "failure-is-reported",
    title: "a failed host makes the exit status non-zero",
};
pub const NO_BROKEN_BUNDLE: Check = Check {
    id: "no-broken-bundle-kept",
    title: "a download that breaks off is not kept as a backup",
};
pub const URLS_ON_443: Check = Check {
    id: "urls-on-443",
    title: "`http://*/` URLs of hosts on port 443 lead to each host's bundle",
};
pub const VERIFIES_CERTIFICATES: Check = Check {
    id: "verifies-certificates",
    title: "a certificate from another CA is refused",
};
pub const KEEPS_THE_NEWEST_N: Check = Check {
    id: "keeps-the-newest-n",
    title: "the newest N dated folders are kept, the older removed",
};

pub const RESTORE_IN_MM: Check = Check {
    id: "restore-in-maintenance-mode",
    title: "the host is in maintenance mode for the restore",
};
pub const RESTORE_FORCE: Check = Check {
    id: "restore-force-only-when-needed",
    title: "force is used only when the bundle's UUID is not the host's",
};
pub const RESTORE_WAITS: Check = Check {
    id: "restore-waits-for-the-reboot",
    title: "the restore run ends once the host is back up",
};
pub const RESTORE_LEAVES_MM: Check = Check {
    id: "restore-leaves-maintenance-mode",
    title: "the host leaves maintenance mode after the reboot",
};
pub const RESTORE_BRINGS_BACK: Check = Check {
    id: "restore-brings-the-bundle-back",
    title: "the host runs the bundle's configuration",
};
pub const RESTORE_ONLY_THAT_HOST: Check = Check {
    id: "restore-only-that-host",
    title: "no other host is restored, reset or rebooted",
};

/// Every check, in report order.
pub const ALL: &[&Check] = &[
    &COMPLETES,
    &EACH_HOST_ONCE,
    &SKIPS_NOT_RESPONDING,
    &CHANGES_NOTHING,
    &DOWNLOADS_FROM_THE_HOST,
    &BUNDLES_WHERE_PROMISED,
    &BUNDLES_OF_THE_RIGHT_HOST,
    &BUNDLES_FRESH,
    &NOTHING_ELSE_WRITTEN,
    &RECOVERY_KEY_SAVED,
    &FAILURE_DOES_NOT_STOP,
    &FAILURE_IS_REPORTED,
    &NO_BROKEN_BUNDLE,
    &VERIFIES_CERTIFICATES,
    &KEEPS_THE_NEWEST_N,
    &URLS_ON_443,
    &RESTORE_IN_MM,
    &RESTORE_FORCE,
    &RESTORE_WAITS,
    &RESTORE_LEAVES_MM,
    &RESTORE_BRINGS_BACK,
    &RESTORE_ONLY_THAT_HOST,
];

/// The restore checks, for a tool with no `[restore]`.
pub const RESTORE: &[&Check] = &[
    &RESTORE_IN_MM,
    &RESTORE_FORCE,
    &RESTORE_WAITS,
    &RESTORE_LEAVES_MM,
    &RESTORE_BRINGS_BACK,
    &RESTORE_ONLY_THAT_HOST,
];

/// One check's outcome, with the evidence for it.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub id: &'static str,
    pub title: &'static str,
    pub passed: bool,
    /// Why the check does not apply to this tool (it passes then): it promises nothing here.
    pub skipped: Option<String>,
    /// What the contract asked for, and what the run did.
    pub expected: String,
    pub seen: String,
    /// The trace records and files behind the verdict (a few lines each).
    pub evidence: Vec<String>,
}

/// Everything a backup run left: how the tool ended, the requests it made, the files.
pub struct BackupRun<'a> {
    pub ran: &'a Ran,
    pub trace: &'a [Record],
    pub hosts: &'a [EstateHost],
    /// The value each target host got just before the run.
    pub marks: &'a [(usize, String)],
    pub dest: &'a Path,
    pub layout: &'a str,
    /// Where the tool promises a TPM host's recovery key, if it does.
    pub recovery_key: Option<&'a str>,
    /// What opens the estate's bundles (the TPM hosts' recovery keys).
    pub keys: &'a crate::layers::Keys,
    /// The dates `{date}` may be (the run's day in UTC, and the days either side for a tool
    /// on local time).
    pub dates: &'a [String],
}

/// The methods a backup run may call besides BackupFirmwareConfiguration: reads, sessions,
/// views, collectors, waits, a sync (KB 316424 recommends one before a backup), and ExecuteSoap
/// (esxcli: the 7.0 U2+ recovery key is read that way).
fn reads(method: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "Retrieve", "Find", "Query", "Fetch", "Read", "Wait", "Check", "Destroy", "Cancel",
        "Continue", "Current",
    ];
    PREFIXES.iter().any(|p| method.starts_with(p))
        || matches!(
            method,
            "Login"
                | "Logout"
                | "SessionIsActive"
                | "CreateContainerView"
                | "CreateListView"
                | "CreateListViewFromView"
                | "ModifyListView"
                | "ResetListView"
                | "CreateFilter"
                | "CreatePropertyCollector"
                | "CreateCollectorForEvents"
                | "CreateCollectorForTasks"
                | "SetCollectorPageSize"
                | "RewindCollector"
                | "ResetCollector"
                | "SyncFirmwareConfiguration"
                | "BackupFirmwareConfiguration"
                | "ExecuteSoap"
        )
}

fn line(r: &Record) -> String {
    let mut s = format!("#{} {} {} {}", r.seq, r.endpoint, r.method, r.path);
    if let Some(o) = &r.object {
        s = format!("#{} {} {} {o}", r.seq, r.endpoint, r.method);
    }
    s.push_str(&format!(" → {}", r.status));
    if let Some(f) = &r.fault {
        s.push_str(&format!(" {f}"));
    }
    s
}

/// `a, b, c`: the names of some hosts.
fn names(hosts: &[&EstateHost]) -> String {
    hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(
    c: &Check,
    passed: bool,
    expected: String,
    seen: String,
    evidence: Vec<String>,
) -> Verdict {
    Verdict {
        id: c.id,
        title: c.title,
        passed,
        skipped: None,
        expected,
        seen,
        evidence,
    }
}

/// A check that does not apply: the tool promises nothing it covers.
pub fn skipped(c: &Check, why: &str) -> Verdict {
    Verdict {
        skipped: Some(why.to_string()),
        ..verdict(c, true, String::new(), String::new(), Vec::new())
    }
}

fn exit_text(ran: &Ran) -> String {
    match (ran.timed_out, ran.code) {
        (true, _) => format!(
            "killed at the timeout after {:.1} s",
            ran.took.as_secs_f64()
        ),
        (false, Some(c)) => format!("exit status {c} after {:.1} s", ran.took.as_secs_f64()),
        (false, None) => "killed by a signal".into(),
    }
}

fn tail(ran: &Ran) -> Vec<String> {
    let lines: Vec<&str> = ran.output.lines().collect();
    lines[lines.len().saturating_sub(8)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// One host's backup failed (`failed` is its index): the others are backed up, and the exit
/// status says something failed.
pub fn judge_failure(run: &BackupRun, failed: usize) -> Vec<Verdict> {
    let others: Vec<&EstateHost> = run
        .hosts
        .iter()
        .filter(|h| h.role == Role::Target && h.index != failed)
        .collect();
    let missing: Vec<String> = others
        .iter()
        .filter(|h| promised_file(run, h).is_none())
        .map(|h| h.name.clone())
        .collect();
    let failed_name = run
        .hosts
        .iter()
        .find(|h| h.index == failed)
        .map_or(String::new(), |h| h.name.clone());
    let faults: Vec<String> = run
        .trace
        .iter()
        .filter(|r| r.rule.is_some())
        .map(line)
        .collect();
    vec![
        verdict(
            &FAILURE_DOES_NOT_STOP,
            missing.is_empty(),
            format!("bundles of {} though {failed_name} failed", names(&others)),
            if missing.is_empty() {
                "as expected".into()
            } else {
                format!("no bundle of: {}", missing.join(", "))
            },
            faults.iter().cloned().chain(tail(run.ran)).collect(),
        ),
        verdict(
            &FAILURE_IS_REPORTED,
            !run.ran.timed_out && run.ran.code.is_some_and(|c| c != 0),
            "a non-zero exit status, before the timeout".into(),
            exit_text(run.ran),
            faults.clone().into_iter().chain(tail(run.ran)).collect(),
        ),
        {
            let kept = run
                .hosts
                .iter()
                .find(|h| h.index == failed)
                .and_then(|h| promised_file(run, h).map(|p| (h, p)));
            let broken = kept.as_ref().and_then(|(h, p)| {
                let bytes = std::fs::read(p).unwrap_or_default();
                let uuid = crate::layers::Layers::read(&bytes, run.keys)
                    .ok()
                    .and_then(|l| l.manifest.and_then(|m| m.ok()).map(|m| m.uuid));
                (uuid.as_deref() != Some(h.uuid.as_str())).then(|| {
                    format!(
                        "{}: {} bytes, not a whole bundle of {}",
                        p.display(),
                        bytes.len(),
                        h.name
                    )
                })
            });
            verdict(
                &NO_BROKEN_BUNDLE,
                broken.is_none(),
                format!("no file, or a whole bundle, at {failed_name}'s path"),
                broken.clone().unwrap_or_else(|| match kept {
                    Some(_) => "a whole bundle".into(),
                    None => "no file".into(),
                }),
                broken.into_iter().chain(faults).collect(),
            )
        },
    ]
}

/// The same checks judged in several situations (`(situation, verdicts)`, the verdicts in the
/// same order): one verdict each, passed when passed in all, its evidence prefixed by the
/// situation.
pub fn merge(runs: Vec<(&str, Vec<Verdict>)>) -> Vec<Verdict> {
    let Some((_, first)) = runs.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let mut v = runs[0].1[i].clone();
            let all: Vec<(&str, &Verdict)> = runs.iter().map(|(n, vs)| (*n, &vs[i])).collect();
            v.passed = all.iter().all(|(_, x)| x.passed);
            let failed: Vec<&(&str, &Verdict)> = all.iter().filter(|(_, x)| !x.passed).collect();
            // What the situations asked (the failing ones', if any): the same contract may ask
            // another thing of another situation.
            let asked: Vec<(&str, &Verdict)> = match failed.is_empty() {
                true => all.clone(),
                false => failed.iter().map(|x| **x).collect(),
            };
            v.expected = match asked.iter().all(|(_, x)| x.expected == asked[0].1.expected) {
                true => asked[0].1.expected.clone(),
                false => asked
                    .iter()
                    .map(|(n, x)| format!("{n}: {}", x.expected))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            v.seen = match failed.as_slice() {
                [] => format!("as expected in all {} situations", all.len()),
                f => f
                    .iter()
                    .map(|(n, x)| format!("{n}: {}", x.seen))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            v.evidence = all
                .iter()
                .filter(|(_, x)| !x.passed || v.passed)
                .flat_map(|(n, x)| x.evidence.iter().map(move |e| format!("[{n}] {e}")))
                .collect();
            v
        })
        .collect()
}

/// Hosts on port 443 (URLs `http://*/...`): each host's bundle fetched from the host and where
/// promised.
pub fn judge_real_ports(run: &BackupRun) -> Verdict {
    let mut missing = Vec::new();
    for h in run.hosts.iter().filter(|h| h.role == Role::Target) {
        let fetched = run.trace.iter().any(|r| {
            r.kind == "download"
                && r.host == Some(h.index)
                && r.endpoint != "vcenter"
                && r.status == 200
        });
        let filed = promised_file(run, h).is_some();
        if !fetched || !filed {
            missing.push(format!(
                "{}: {}{}",
                h.name,
                if fetched { "" } else { "no download; " },
                if filed {
                    ""
                } else {
                    "no bundle at the promised path"
                }
            ));
        }
    }
    let redirects = run.trace.iter().filter(|r| r.kind == "redirect").count();
    verdict(
        &URLS_ON_443,
        missing.is_empty(),
        "each host's bundle downloaded from it (over port 80's redirect or https) and filed".into(),
        match missing.is_empty() {
            true => format!("as expected ({redirects} redirects followed)"),
            false => missing.join("; "),
        },
        run.trace
            .iter()
            .filter(|r| matches!(r.kind, "download" | "redirect"))
            .map(line)
            .chain(tail(run.ran))
            .collect(),
    )
}

/// The tool was given another CA's certificate: it must not get in.
pub fn judge_untrusted(run: &BackupRun) -> Verdict {
    let got_in: Vec<String> = run
        .trace
        .iter()
        .filter(|r| r.method == "Login" && r.outcome == "ok")
        .map(line)
        .collect();
    verdict(
        &VERIFIES_CERTIFICATES,
        got_in.is_empty() && !run.ran.timed_out && run.ran.code.is_some_and(|c| c != 0),
        "no login, and a non-zero exit status".into(),
        format!("{} logins; {}", got_in.len(), exit_text(run.ran)),
        got_in.into_iter().chain(tail(run.ran)).collect(),
    )
}

/// The dated folders of a destination, sorted.
pub fn dated_folders(dest: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dest)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_date(n))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Retention N with older dated folders in place before the run (`before`): the newest N of
/// them and the run's own are kept, nothing else.
pub fn judge_retention(run: &BackupRun, keep: usize, before: &[String]) -> Verdict {
    let after = dated_folders(run.dest);
    let mut all: Vec<String> = before.to_vec();
    all.extend(after.iter().filter(|d| !before.contains(d)).cloned());
    all.sort();
    all.dedup();
    let want: Vec<String> = all[all.len().saturating_sub(keep)..].to_vec();
    verdict(
        &KEEPS_THE_NEWEST_N,
        after == want,
        format!("{keep} folders: {}", want.join(", ")),
        format!("{} folders: {}", after.len(), after.join(", ")),
        tail(run.ran),
    )
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The promised path of a host's bundle that exists, if any.
fn promised_file(run: &BackupRun, host: &EstateHost) -> Option<PathBuf> {
    existing(run, run.layout, host)
}

/// The path `layout` gives `host` on one of the run's dates, where a file is.
fn existing(run: &BackupRun, layout: &str, host: &EstateHost) -> Option<PathBuf> {
    run.dates
        .iter()
        .map(|d| {
            run.dest
                .join(super::spec::layout_path(layout, d, &host.name))
        })
        .find(|p| p.is_file())
}

/// The 96 digits of a recovery key, as written anywhere in `text` (with or without the
/// dashes between its groups).
fn holds_key(text: &str, key: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let want = digits(key);
    // Runs of digits and dashes: a key split over other text is not a key.
    text.split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .any(|run| digits(run).contains(&want))
}

/// What a check that needs every bundle says when some are missing or unreadable.
fn missing_too(absent: &[String]) -> String {
    match absent.len() {
        0 => "some bundles are not readable (see bundles-of-the-right-host)".into(),
        n => format!("{n} bundle(s) missing, so not judged (see bundles-where-promised)"),
    }
}

/// `recovery-key-saved`: each TPM-mode target's key in the promised file (which
/// `nothing-else-written` counts as promised: `found` gets its path).
fn judge_recovery_key(run: &BackupRun, found: &mut Vec<String>) -> Verdict {
    let tpm: Vec<&EstateHost> = run
        .hosts
        .iter()
        .filter(|h| h.role == Role::Target && h.recovery_key.is_some())
        .collect();
    let Some(promised) = run.recovery_key else {
        return skipped(
            &RECOVERY_KEY_SAVED,
            &format!(
                "the tool promises no recovery key (promises.recovery_key); a bundle of a TPM-mode \
                 host ({}) cannot be restored onto a new board without it",
                names(&tpm)
            ),
        );
    };
    // Whatever the tool wrote there for any host is a promised file.
    for h in run.hosts {
        if let Some(p) = existing(run, promised, h) {
            let rel = p.strip_prefix(run.dest).unwrap_or(&p).display().to_string();
            if !found.contains(&rel) {
                found.push(rel);
            }
        }
    }
    let mut wrong = Vec::new();
    let mut evidence: Vec<String> = run
        .trace
        .iter()
        .filter(|r| r.method == "ExecuteSoap")
        .map(line)
        .collect();
    for h in &tpm {
        let key = h.recovery_key.as_deref().unwrap_or_default();
        match existing(run, promised, h) {
            None => wrong.push(format!(
                "{}: nothing at {}",
                h.name,
                super::spec::layout_path(promised, &run.dates[0], &h.name)
            )),
            Some(p) => {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let rel = p.strip_prefix(run.dest).unwrap_or(&p).display();
                if holds_key(&text, key) {
                    evidence.push(format!("{rel}: holds {}'s key", h.name));
                } else {
                    wrong.push(format!(
                        "{rel}: {} bytes, no 16 groups of 6 digits that are {}'s key",
                        text.len(),
                        h.name
                    ));
                }
            }
        }
    }
    verdict(
        &RECOVERY_KEY_SAVED,
        wrong.is_empty(),
        format!("the recovery key of {} at {promised}", names(&tpm)),
        if wrong.is_empty() {
            "as expected".into()
        } else {
            wrong.join("; ")
        },
        evidence.into_iter().chain(tail(run.ran)).collect(),
    )
}

pub fn judge_backup(run: &BackupRun) -> Vec<Verdict> {
    let targets: Vec<&EstateHost> = run
        .hosts
        .iter()
        .filter(|h| h.role == Role::Target)
        .collect();
    let backups: Vec<&Record> = run
        .trace
        .iter()
        .filter(|r| r.method == "BackupFirmwareConfiguration")
        .collect();
    let mut out = Vec::new();

    // completes
    let ran = run.ran;
    out.push(verdict(
        &COMPLETES,
        !ran.timed_out && ran.code == Some(0),
        "exit status 0 before the timeout".into(),
        exit_text(ran),
        tail(ran),
    ));

    // each-host-once
    let mut per_host: BTreeMap<usize, Vec<&Record>> = BTreeMap::new();
    for r in &backups {
        if let Some(h) = r.host {
            per_host.entry(h).or_default().push(r);
        }
    }
    let counts: Vec<(String, usize)> = targets
        .iter()
        .map(|h| (h.name.clone(), per_host.get(&h.index).map_or(0, Vec::len)))
        .collect();
    out.push(verdict(
        &EACH_HOST_ONCE,
        counts.iter().all(|(_, n)| *n == 1),
        format!("1 backup each of {}", names(&targets)),
        counts
            .iter()
            .map(|(h, n)| format!("{h}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        backups.iter().map(|r| line(r)).collect(),
    ));

    // skips-not-responding
    let down: Vec<&EstateHost> = run
        .hosts
        .iter()
        .filter(|h| h.role == Role::NotResponding)
        .collect();
    let asked: Vec<&Record> = backups
        .iter()
        .filter(|r| down.iter().any(|h| r.host == Some(h.index)))
        .copied()
        .collect();
    out.push(verdict(
        &SKIPS_NOT_RESPONDING,
        asked.is_empty(),
        format!("no backup asked of {}", names(&down)),
        format!("{} asked", asked.len()),
        asked.iter().map(|r| line(r)).collect(),
    ));

    // changes-nothing
    let changes: Vec<&Record> = run
        .trace
        .iter()
        .filter(|r| match r.kind {
            "soap" => !reads(&r.method),
            "upload" => r.method == "PUT",
            _ => false,
        })
        .collect();
    out.push(verdict(
        &CHANGES_NOTHING,
        changes.is_empty(),
        "reads, sessions and backups only".into(),
        format!("{} other calls", changes.len()),
        changes.iter().map(|r| line(r)).collect(),
    ));

    // downloads-from-the-host
    let downloads: Vec<&Record> = run.trace.iter().filter(|r| r.kind == "download").collect();
    let mut missing = Vec::new();
    for h in &targets {
        let ok = downloads
            .iter()
            .any(|r| r.host == Some(h.index) && r.endpoint != "vcenter" && r.status == 200);
        if !ok {
            missing.push(h.name.clone());
        }
    }
    let stray: Vec<&Record> = downloads
        .iter()
        .filter(|r| r.endpoint == "vcenter" || r.status != 200)
        .copied()
        .collect();
    out.push(verdict(
        &DOWNLOADS_FROM_THE_HOST,
        missing.is_empty() && stray.is_empty(),
        "one successful download from each host's own address".into(),
        match (missing.is_empty(), stray.is_empty()) {
            (true, true) => "as expected".into(),
            _ => format!(
                "no download from: [{}]; failed or misdirected downloads: {}",
                missing.join(", "),
                stray.len()
            ),
        },
        downloads.iter().map(|r| line(r)).collect(),
    ));

    // bundles-where-promised, -of-the-right-host, -fresh
    let mut absent = Vec::new();
    let mut wrong = Vec::new();
    let mut stale = Vec::new();
    let mut found = Vec::new();
    for h in &targets {
        let Some(path) = promised_file(run, h) else {
            absent.push(format!(
                "{}: nothing at {}",
                h.name,
                super::spec::layout_path(run.layout, &run.dates[0], &h.name)
            ));
            continue;
        };
        let rel = path
            .strip_prefix(run.dest)
            .unwrap_or(&path)
            .display()
            .to_string();
        found.push(rel.clone());
        let bytes = std::fs::read(&path).unwrap_or_default();
        let saved = match crate::layers::Layers::read(&bytes, run.keys).and_then(|l| {
            let uuid = l
                .manifest
                .as_ref()
                .and_then(|m| m.as_ref().ok())
                .map(|m| m.uuid.clone());
            l.saved().map(|s| (uuid, s)).map_err(|e| e.to_string())
        }) {
            Ok(x) => x,
            Err(e) => {
                wrong.push(format!("{rel}: not a readable bundle ({e})"));
                continue;
            }
        };
        if saved.0.as_deref() != Some(h.uuid.as_str()) {
            wrong.push(format!(
                "{rel}: UUID {:?}, {} has {}",
                saved.0.unwrap_or_default(),
                h.name,
                h.uuid
            ));
            continue;
        }
        let mark = run
            .marks
            .iter()
            .find(|(i, _)| *i == h.index)
            .map(|(_, m)| m.as_str());
        let esx_conf = saved
            .1
            .files
            .get("etc/vmware/esx.conf")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let has = mark.is_some_and(|m| esx_conf.contains(&format!("{MARK_KEY} = \"{m}\"")));
        if !has {
            stale.push(format!(
                "{rel}: esx.conf lacks {MARK_KEY} = {:?}",
                mark.unwrap_or("")
            ));
        }
    }
    out.push(verdict(
        &BUNDLES_WHERE_PROMISED,
        absent.is_empty(),
        format!("{} for each host", run.layout),
        if absent.is_empty() {
            format!("{} bundles", found.len())
        } else {
            absent.join("; ")
        },
        found.clone(),
    ));
    out.push(verdict(
        &BUNDLES_OF_THE_RIGHT_HOST,
        absent.is_empty() && wrong.is_empty(),
        "each a bundle whose Manifest UUID is its host's".into(),
        match (wrong.is_empty(), absent.is_empty()) {
            (true, true) => "as expected".into(),
            (true, false) => missing_too(&absent),
            (false, _) => wrong.join("; "),
        },
        wrong.clone(),
    ));
    out.push(verdict(
        &BUNDLES_FRESH,
        absent.is_empty() && wrong.is_empty() && stale.is_empty(),
        format!("{MARK_KEY} as set just before the run, in each bundle"),
        match (stale.is_empty(), absent.is_empty() && wrong.is_empty()) {
            (true, true) => "as expected".into(),
            (true, false) => missing_too(&absent),
            (false, _) => stale.join("; "),
        },
        stale.clone(),
    ));

    let recovery = judge_recovery_key(run, &mut found);

    // nothing-else-written
    let all = files_under(run.dest);
    let extra: Vec<String> = all
        .iter()
        .map(|p| p.display().to_string())
        .filter(|p| !found.contains(p))
        .collect();
    out.push(verdict(
        &NOTHING_ELSE_WRITTEN,
        extra.is_empty(),
        "only the promised bundles".into(),
        if extra.is_empty() {
            format!("{} files", all.len())
        } else {
            format!("{} other files", extra.len())
        },
        extra,
    ));
    out.push(recovery);
    out
}

/// What a restore run left: the tool's end, its requests, the host as the tool left it.
pub struct RestoreRun<'a> {
    pub ran: &'a Ran,
    pub trace: &'a [Record],
    pub host: &'a EstateHost,
    pub prep: &'a super::estate::RestorePrep,
    pub after: &'a super::estate::HostAfter,
    /// The host's board was replaced since the bundle was taken: the restore needs `force`.
    pub needs_force: bool,
}

pub fn judge_restore(run: &RestoreRun) -> Vec<Verdict> {
    let h = run.host.index;
    let about = |m: &str| -> Vec<&Record> {
        run.trace
            .iter()
            .filter(|r| r.method == m && r.host == Some(h))
            .collect()
    };
    let enters = about("EnterMaintenanceMode_Task");
    let restores = about("RestoreFirmwareConfiguration");
    let exits = about("ExitMaintenanceMode_Task");
    let accepted: Vec<&&Record> = restores.iter().filter(|r| r.outcome == "ok").collect();
    let first_restore = restores.first().map_or(u64::MAX, |r| r.seq);
    let entered_first = enters
        .iter()
        .any(|r| r.outcome == "ok" && r.seq < first_restore);
    let lines = |rs: &[&Record]| rs.iter().map(|r| line(r)).collect::<Vec<_>>();
    let mut evidence: Vec<String> = run
        .trace
        .iter()
        .filter(|r| {
            r.host == Some(h) && r.kind == "soap" && !reads(&r.method) || r.kind == "upload"
        })
        .map(line)
        .collect();
    evidence.extend(tail(run.ran));
    let a = run.after;
    let others: Vec<&Record> = run
        .trace
        .iter()
        .filter(|r| r.host.is_some_and(|i| i != h))
        .filter(|r| {
            matches!(
                r.method.as_str(),
                "RestoreFirmwareConfiguration"
                    | "ResetFirmwareToFactoryDefaults"
                    | "RebootHost_Task"
                    | "ShutdownHost_Task"
            )
        })
        .collect();
    vec![
        verdict(
            &RESTORE_IN_MM,
            entered_first && !accepted.is_empty(),
            "EnterMaintenanceMode_Task, then an accepted RestoreFirmwareConfiguration".into(),
            format!(
                "{} enter(s) before the restore, {} restore call(s), {} accepted",
                usize::from(entered_first),
                restores.len(),
                accepted.len()
            ),
            lines(&enters).into_iter().chain(lines(&restores)).collect(),
        ),
        verdict(
            &RESTORE_FORCE,
            a.restores.as_slice() == [run.needs_force],
            match run.needs_force {
                false => "one restore, force=false (the bundle is of this board)".into(),
                true => "one restore, force=true (the board was replaced: the bundle's UUID is \
                         not the host's now)"
                    .into(),
            },
            match a.restores.as_slice() {
                [] => "no restore happened".into(),
                fs => fs
                    .iter()
                    .map(|f| format!("force={f}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            lines(&restores),
        ),
        verdict(
            &RESTORE_WAITS,
            a.running && a.boots >= 1,
            "the host rebooted and was up when the tool exited".into(),
            format!(
                "{} boot(s); at exit the host was {}",
                a.boots,
                if a.running {
                    "up"
                } else {
                    "still down or booting"
                }
            ),
            evidence.clone(),
        ),
        verdict(
            &RESTORE_LEAVES_MM,
            !a.in_maintenance_mode
                && exits
                    .iter()
                    .any(|r| r.outcome == "ok" && r.seq > first_restore),
            "ExitMaintenanceMode_Task after the reboot; not in maintenance mode at exit".into(),
            format!(
                "in maintenance mode at exit: {}; {} exit call(s) after the restore",
                a.in_maintenance_mode,
                exits.iter().filter(|r| r.seq > first_restore).count()
            ),
            lines(&exits),
        ),
        verdict(
            &RESTORE_BRINGS_BACK,
            a.mark.as_deref() == Some(run.prep.bundle_mark.as_str()),
            format!("{MARK_KEY} = {:?} (the bundle's)", run.prep.bundle_mark),
            format!(
                "{MARK_KEY} = {:?}{}",
                a.mark.as_deref().unwrap_or("(unset)"),
                if a.mark.as_deref() == Some(run.prep.later_mark.as_str()) {
                    " (the later change: not restored)"
                } else {
                    ""
                }
            ),
            evidence,
        ),
        verdict(
            &RESTORE_ONLY_THAT_HOST,
            others.is_empty(),
            format!("restores, resets and reboots of {} only", run.host.name),
            format!("{} on other hosts", others.len()),
            others.iter().map(|r| line(r)).collect(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::{holds_key, merge, verdict, RESTORE_FORCE};

    /// One verdict of several situations: passed only if passed in all; what was expected and
    /// seen is the failing situation's, named.
    #[test]
    fn merged_verdicts_tell_the_failing_situation() {
        let v = |passed, expected: &str, seen: &str| {
            verdict(
                &RESTORE_FORCE,
                passed,
                expected.into(),
                seen.into(),
                vec![seen.into()],
            )
        };
        let both = merge(vec![
            ("same board", vec![v(true, "force=false", "force=false")]),
            ("replaced board", vec![v(false, "force=true", "no restore")]),
        ]);
        assert!(!both[0].passed);
        assert_eq!(both[0].expected, "force=true");
        assert_eq!(both[0].seen, "replaced board: no restore");
        assert_eq!(both[0].evidence, ["[replaced board] no restore"]);
        let fine = merge(vec![
            ("same board", vec![v(true, "force=false", "force=false")]),
            ("replaced board", vec![v(true, "force=true", "force=true")]),
        ]);
        assert!(fine[0].passed);
        assert_eq!(
            fine[0].expected,
            "same board: force=false; replaced board: force=true"
        );
        assert_eq!(fine[0].seen, "as expected in all 2 situations");
    }

    /// A key is found as users and esxcli write it, with or without dashes; its Recovery ID,
    /// another key or a key broken up by other text is not it.
    #[test]
    fn a_recovery_key_is_found_as_written() {
        let groups: Vec<String> = (0..16).map(|i| format!("{:06}", 100_000 + i * 7)).collect();
        let key = groups.join("-");
        let id = "{5A1B2C3D-0000-4000-8000-00000000002A}";
        assert!(holds_key(&format!("Recovery ID: {id}\nKey: {key}\n"), &key));
        assert!(holds_key(&groups.concat(), &key));
        assert!(holds_key(&format!("{id}   {key}"), &key));
        assert!(!holds_key(&format!("Recovery ID: {id}\n"), &key));
        let other = key.replacen("100000", "100001", 1);
        assert!(!holds_key(&other, &key));
        let split = format!("{} and {}", groups[..8].join("-"), groups[8..].join("-"));
        assert!(!holds_key(&split, &key));
        assert!(!holds_key("", &key));
    }
}
