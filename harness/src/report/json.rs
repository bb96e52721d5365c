//! The JSON report (schema: `docs/harness-json.md`, version 1).

use serde_json::{json, Value};

use super::{counts, reproduce};
use crate::runner::{CaseResult, Outcome};

pub const SCHEMA_VERSION: u32 = 1;

pub fn render(results: &[CaseResult], target: &str, secs: f64) -> String {
    let c = counts(results);
    let cases: Vec<Value> = results
        .iter()
        .map(|r| {
            let (outcome, failure, reason) = match &r.outcome {
                Outcome::Passed => ("passed", Value::Null, Value::Null),
                Outcome::Skipped(why) => ("skipped", Value::Null, json!(why)),
                Outcome::Failed(f) => (
                    "failed",
                    json!({
                        "step": f.step,
                        "line": f.line,
                        "action": f.action,
                        "expected": f.expected,
                        "seen": f.seen,
                    }),
                    Value::Null,
                ),
            };
            json!({
                "scenario": r.scenario,
                "file": r.file,
                "checks": r.checks,
                "fact": r.fact,
                "profile": r.profile,
                "seed": r.seed,
                "outcome": outcome,
                "seconds": r.duration.as_secs_f64(),
                "steps_run": r.steps_run,
                "failure": failure,
                "skip_reason": reason,
                "events": r.events,
                "reproduce": reproduce(r),
            })
        })
        .collect();
    let doc = json!({
        "schema": SCHEMA_VERSION,
        "tool": "esxi-harness",
        "version": env!("CARGO_PKG_VERSION"),
        "target": target,
        "seconds": secs,
        "summary": { "passed": c.passed, "failed": c.failed, "skipped": c.skipped, "total": results.len() },
        "cases": cases,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
