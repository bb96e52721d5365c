//! `esxi-harness tool TOOL.toml`: test a user's own backup tool. The harness starts an estate
//! ([`estate`]: a vCenter over hosts of mixed builds, one in TPM mode, one not responding,
//! every request traced), tells the tool about it through the environment its TOOL.toml names
//! ([`spec`]), runs it ([`run`]) in each situation ([`run_suite`], here), and judges what it
//! did from the trace and the files it left ([`checks`]: each a named contract, with its
//! evidence). The [`report`] says which contracts it keeps, as terminal lines, JSON, JUnit and
//! a self-contained HTML page.
//!
//! The layers: spec → estate → run → checks → report; each its own file.

pub mod checks;
pub mod estate;
pub mod report;
pub mod run;
pub mod spec;

pub use report::{terminal, to_html, to_json, to_junit};

use std::net::Ipv4Addr;
use std::path::Path;

use checks::{BackupRun, Verdict};
use estate::Estate;
use spec::ToolSpec;

/// What a whole run of the suite found.
pub struct Report {
    pub tool: String,
    pub seed: u64,
    pub verdicts: Vec<Verdict>,
    /// The command that repeats this run.
    pub repeat: String,
    pub tool_output: String,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.verdicts.iter().filter(|v| v.passed).count()
    }
    pub fn failed(&self) -> usize {
        self.verdicts.len() - self.passed()
    }
}

/// The dates a `{date}` may name for a run now: UTC today and the days either side (a tool on
/// local time may be a day off UTC).
fn dates_around_now() -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    [0i64, -86_400, 86_400]
        .iter()
        .map(|off| {
            let t = esxi_sim::clock::SimTime::from_secs((now as i64 + off).max(0) as u64);
            t.to_rfc3339()[..10].to_string()
        })
        .collect()
}

/// Runs the suite on the tool `spec` describes, on estates from `seed` on loopback addresses
/// from `first`: the situations one after another, each on a fresh estate.
pub async fn run_suite(
    spec: &ToolSpec,
    spec_path: &Path,
    seed: u64,
    first: Ipv4Addr,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, String> {
    let dates = dates_around_now();
    let mut verdicts = Vec::new();
    let mut output = String::new();

    // 1. The estate as it starts, a fresh change on every host just before the run.
    progress("backup: the estate as it starts");
    let estate = Estate::start(seed, first).await?;
    let marks = estate.mark(&format!("run{seed}"));
    let b = Backup::on(spec, estate).await?;
    verdicts.extend(checks::judge_backup(&b.judged(spec, &dates, &marks)));
    output.push_str(&b.ran.output);
    drop(b);

    // 2. One host fails, in each of the ways real hosts do: each on a fresh estate; a check
    //    passes when it passes for all of them.
    let mut per_failure = Vec::new();
    for how in estate::FAILURES {
        if how.hangs && spec.promises.call_timeout.is_none() {
            progress(&format!(
                "backup: one host fails ({}): not tried, the tool promises no call_timeout",
                how.name
            ));
            continue;
        }
        progress(&format!("backup: one host fails ({})", how.name));
        let estate = Estate::start(seed, first).await?;
        let failing = estate.targets().nth(1).map_or(0, |h| h.index);
        estate.fail_host(failing, how)?;
        let b = Backup::on(spec, estate).await?;
        let vs = checks::judge_failure(&b.judged(spec, &dates, &[]), failing);
        per_failure.push((how.name, vs));
    }
    verdicts.extend(checks::merge(per_failure));

    // 3. Another CA's certificate, for a tool that says it verifies.
    if spec.promises.verifies_certificates && spec.estate.ca_file.is_some() {
        progress("backup: another CA's certificate");
        let estate = Estate::start(seed, first).await?;
        estate.give_another_ca()?;
        let b = Backup::on(spec, estate).await?;
        verdicts.push(checks::judge_untrusted(&b.judged(spec, &dates, &[])));
    } else {
        verdicts.push(checks::skipped(
            &checks::VERIFIES_CERTIFICATES,
            "the tool does not promise to verify certificates (promises.verifies_certificates, estate.ca_file)",
        ));
    }

    // 4. Older dated folders in the destination, for a tool that keeps N.
    let keep = spec.promises.retention;
    if keep > 0 {
        progress("backup: retention over older dated folders");
        let estate = Estate::start(seed, first).await?;
        let before = estate.seed_old_folders(&spec.promises.layout, keep + 2)?;
        let b = Backup::on(spec, estate).await?;
        verdicts.push(checks::judge_retention(
            &b.judged(spec, &dates, &[]),
            keep,
            &before,
        ));
    } else {
        verdicts.push(checks::skipped(
            &checks::KEEPS_THE_NEWEST_N,
            "the tool promises no retention (promises.retention)",
        ));
    }

    // 5. The hosts where a real host's are: 443, port 80 redirecting, URLs `http://*/...`.
    if estate::may_bind_real_ports(first) {
        progress("backup: hosts on port 443, URLs http://*/");
        let estate = Estate::start_on(seed, first, estate::Ports::Real).await?;
        let b = Backup::on(spec, estate).await?;
        verdicts.push(checks::judge_real_ports(&b.judged(spec, &dates, &[])));
    } else {
        verdicts.push(checks::skipped(
            &checks::URLS_ON_443,
            "this process may not bind ports 443 and 80 on loopback (run as root, or grant \
             CAP_NET_BIND_SERVICE)",
        ));
    }

    // 6. A restore: the host's own bundle in the destination, a later change to undo; then
    //    the same after the host's board was replaced (the bundle now needs force). Each on a
    //    fresh estate; a restore check passes when it passes in both.
    match &spec.restore {
        Some(cmd) => {
            let mut per_situation = Vec::new();
            for (name, replaced) in [("same board", false), ("replaced board", true)] {
                progress(&format!(
                    "restore: a host's own bundle over a later change ({name})"
                ));
                let (vs, out) = restore(spec, cmd, seed, first, &dates[0], replaced).await?;
                per_situation.push((name, vs));
                output.push_str(&out);
            }
            verdicts.extend(checks::merge(per_situation));
        }
        None => {
            for c in checks::RESTORE {
                verdicts.push(checks::skipped(c, "the tool has no [restore]"));
            }
        }
    }

    // Every contract is judged or skipped once, in the catalogue's order: a check added to
    // `checks::ALL` but to no situation (or the reverse) stops here rather than vanish.
    let ids: Vec<&str> = verdicts.iter().map(|v| v.id).collect();
    let want: Vec<&str> = checks::ALL.iter().map(|c| c.id).collect();
    if ids != want {
        return Err(format!(
            "internal: the situations judged {ids:?}, the catalogue lists {want:?}"
        ));
    }
    Ok(Report {
        tool: spec.name.clone(),
        seed,
        verdicts,
        repeat: format!("esxi-harness tool {} --seed {seed}", spec_path.display()),
        tool_output: output,
    })
}

/// One restore run on a fresh estate: a target host's bundle is put in the destination for
/// `date`, the host changed and saved since, and (`replaced`) its board replaced; the tool is
/// told to restore it. The TPM host on its own board; on a new board a host in NONE mode, whose
/// configuration moves with its disk (a TPM host's would need its recovery key to boot).
async fn restore(
    spec: &ToolSpec,
    cmd: &spec::Command,
    seed: u64,
    first: Ipv4Addr,
    date: &str,
    replaced: bool,
) -> Result<(Vec<Verdict>, String), String> {
    let estate = Estate::start(seed, first).await?;
    let targets: Vec<_> = estate.targets().cloned().collect();
    let host = match replaced {
        false => targets.last(),
        true => targets.iter().find(|h| h.profile == "7.0U3"),
    }
    .cloned()
    .ok_or("no host to restore")?;
    let mut prep = estate.prepare_restore(host.index, &spec.promises.layout, date)?;
    if replaced {
        estate.replace_board(&mut prep).await?;
    }
    let mut env = environment(spec, &estate);
    let e = &spec.estate;
    for (k, v) in [
        (&e.restore_host, host.name.clone()),
        (&e.host_user, "root".to_string()),
        (&e.host_password, estate::ROOT_PASSWORD.to_string()),
    ] {
        if let Some(k) = k {
            env.push((k.clone(), v));
        }
    }
    let before = estate.trace.last_seq();
    let ran = run::run(cmd, &spec.dir, &env).await?;
    // The host as the tool left it, before anything else moves the clock on.
    let after = estate.host_after(host.index, prep.events_before);
    let trace = estate.trace_since(before);
    let verdicts = checks::judge_restore(&checks::RestoreRun {
        ran: &ran,
        trace: &trace,
        host: &host,
        prep: &prep,
        after: &after,
        needs_force: replaced,
    });
    Ok((verdicts, ran.output))
}

/// One backup run on an estate: how the tool ended and what it did there.
struct Backup {
    estate: Estate,
    ran: run::Ran,
    trace: Vec<esxi_sim::server::trace::Record>,
    dest: std::path::PathBuf,
    keys: crate::layers::Keys,
}

impl Backup {
    /// Runs the backup command on `estate`, with the estate in its environment.
    async fn on(spec: &ToolSpec, estate: Estate) -> Result<Backup, String> {
        let before = estate.trace.last_seq();
        let ran = run::run(&spec.backup, &spec.dir, &environment(spec, &estate)).await?;
        let trace = estate.trace_since(before);
        let dest = estate.dest();
        let keys = estate.keys()?;
        Ok(Backup {
            estate,
            ran,
            trace,
            dest,
            keys,
        })
    }

    /// What the checks read of it.
    fn judged<'a>(
        &'a self,
        spec: &'a ToolSpec,
        dates: &'a [String],
        marks: &'a [(usize, String)],
    ) -> BackupRun<'a> {
        BackupRun {
            ran: &self.ran,
            trace: &self.trace,
            hosts: &self.estate.hosts,
            marks,
            dest: &self.dest,
            layout: &spec.promises.layout,
            recovery_key: spec.promises.recovery_key.as_deref(),
            keys: &self.keys,
            dates,
        }
    }
}

/// The environment the tool runs with: the estate under the names its TOOL.toml gives.
fn environment(spec: &ToolSpec, e: &Estate) -> Vec<(String, String)> {
    let s = &spec.estate;
    let mut env = vec![
        (s.url.clone(), e.url()),
        (s.user.clone(), estate::VCENTER_USER.to_string()),
        (s.password.clone(), estate::VCENTER_PASSWORD.to_string()),
        (s.dest.clone(), e.dest().display().to_string()),
    ];
    if let Some(k) = &s.ca_file {
        env.push((k.clone(), e.ca_file().display().to_string()));
    }
    if let Some(k) = &s.host_list {
        env.push((k.clone(), e.host_list().display().to_string()));
    }
    env
}
