//! What a person reads: one line per scenario × profile, and for a failure the step, what was
//! expected, what was seen, the host's last events and the command that reproduces it.

use std::fmt::Write;

use super::{counts, reproduce};
use crate::runner::{CaseResult, Outcome};

pub fn line(r: &CaseResult) -> String {
    let (tag, extra) = match &r.outcome {
        Outcome::Passed => ("ok  ", String::new()),
        Outcome::Failed(f) => (
            "FAIL",
            format!("  step {} ({}, line {})", f.step, f.action, f.line),
        ),
        Outcome::Skipped(why) => ("skip", format!("  {why}")),
    };
    format!(
        "{tag} {:<44} {:<7} {:>6.2}s{extra}",
        r.scenario,
        r.profile,
        r.duration.as_secs_f64()
    )
}

pub fn failure_detail(r: &CaseResult) -> Option<String> {
    let Outcome::Failed(f) = &r.outcome else {
        return None;
    };
    let mut s = String::new();
    let _ = writeln!(s, "--- {} [{}] failed", r.scenario, r.profile);
    let _ = writeln!(s, "  {}:{}: step {} '{}'", r.file, f.line, f.step, f.action);
    let _ = writeln!(s, "  expected: {}", f.expected);
    let _ = writeln!(s, "  seen:     {}", f.seen);
    if !r.checks.is_empty() {
        let _ = writeln!(s, "  checks:   {}", r.checks);
    }
    if !r.events.is_empty() {
        let _ = writeln!(s, "  host events (last {}):", r.events.len());
        for e in &r.events {
            let _ = writeln!(s, "    {e}");
        }
    }
    let _ = writeln!(s, "  reproduce: {}", reproduce(r));
    Some(s)
}

pub fn summary(results: &[CaseResult], secs: f64) -> String {
    let c = counts(results);
    format!(
        "{} passed, {} failed, {} skipped ({} runs) in {secs:.1}s",
        c.passed,
        c.failed,
        c.skipped,
        results.len()
    )
}
