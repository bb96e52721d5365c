//! `esxi-harness tool TOOL.toml`: test a user's own backup tool. The harness starts an estate
//! ([`estate`]: a vCenter over hosts of mixed builds, one of them not responding, every request
//! traced), tells the tool about it through the environment its TOOL.toml names ([`spec`]),
//! runs it ([`run`]), and judges what it did from the trace and the files it left
//! ([`checks`]: each a named contract, with its evidence). The report says which contracts it
//! keeps, as terminal lines, JSON and JUnit.
//!
//! The layers: spec → estate → run → checks → report; each its own file.

pub mod checks;
pub mod estate;
pub mod run;
pub mod spec;

use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::json;

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

/// Runs the suite on the tool `spec` describes, on an estate from `seed` on loopback addresses
/// from `first`.
pub async fn run_suite(
    spec: &ToolSpec,
    spec_path: &Path,
    seed: u64,
    first: Ipv4Addr,
) -> Result<Report, String> {
    let estate = Estate::start(seed, first).await?;
    let env = environment(spec, &estate);
    let marks = estate.mark(&format!("run{seed}"));
    let before = estate.trace.last_seq();
    let ran = run::run(&spec.backup, &spec.dir, &env).await?;
    let trace = estate.trace_since(before);
    let dates = dates_around_now();
    let dest = estate.dest();
    let verdicts = checks::judge_backup(&BackupRun {
        ran: &ran,
        trace: &trace,
        hosts: &estate.hosts,
        marks: &marks,
        dest: &dest,
        layout: &spec.promises.layout,
        dates: &dates,
    });
    Ok(Report {
        tool: spec.name.clone(),
        seed,
        verdicts,
        repeat: format!("esxi-harness tool {} --seed {seed}", spec_path.display()),
        tool_output: ran.output,
    })
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

/// The report as terminal lines.
pub fn terminal(r: &Report) -> String {
    let mut s = format!("esxi-harness tool: {} (seed {})\n", r.tool, r.seed);
    for v in &r.verdicts {
        s.push_str(&format!(
            "  {} {:<28} {}\n",
            if v.passed { "pass" } else { "FAIL" },
            v.id,
            v.title
        ));
        if !v.passed {
            s.push_str(&format!(
                "       expected: {}\n       seen:     {}\n",
                v.expected, v.seen
            ));
            for e in v.evidence.iter().take(10) {
                s.push_str(&format!("       | {e}\n"));
            }
        }
    }
    s.push_str(&format!(
        "{} checks: {} passed, {} failed\nrepeat: {}\n",
        r.verdicts.len(),
        r.passed(),
        r.failed(),
        r.repeat
    ));
    s
}

pub fn to_json(r: &Report) -> serde_json::Value {
    json!({
        "tool": r.tool,
        "seed": r.seed,
        "repeat": r.repeat,
        "passed": r.passed(),
        "failed": r.failed(),
        "checks": r.verdicts.iter().map(|v| json!({
            "id": v.id,
            "title": v.title,
            "passed": v.passed,
            "expected": v.expected,
            "seen": v.seen,
            "evidence": v.evidence,
        })).collect::<Vec<_>>(),
        "tool_output": r.tool_output,
    })
}

pub fn to_junit(r: &Report) -> String {
    let esc = |s: &str| {
        let mut o = String::new();
        esxi_sim::soap::xml::escape(s, &mut o);
        o
    };
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">\n",
        esc(&r.tool),
        r.verdicts.len(),
        r.failed()
    );
    for v in &r.verdicts {
        s.push_str(&format!(
            "    <testcase classname=\"esxi-harness.tool\" name=\"{}: {}\"",
            v.id,
            esc(v.title)
        ));
        if v.passed {
            s.push_str("/>\n");
        } else {
            s.push_str(&format!(
                ">\n      <failure message=\"{}\">expected: {}\nseen: {}\n{}\nrepeat: {}</failure>\n    </testcase>\n",
                esc(&v.seen),
                esc(&v.expected),
                esc(&v.seen),
                esc(&v.evidence.join("\n")),
                esc(&r.repeat)
            ));
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
