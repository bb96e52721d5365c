//! Reports of a run: the terminal ([`terminal`]), JUnit XML for CI ([`junit`]) and JSON
//! ([`json`], schema in `docs/harness-json.md`).

pub mod json;
pub mod junit;
pub mod terminal;

use crate::runner::{CaseResult, Outcome};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub fn counts(results: &[CaseResult]) -> Counts {
    let mut c = Counts::default();
    for r in results {
        match r.outcome {
            Outcome::Passed => c.passed += 1,
            Outcome::Failed(_) => c.failed += 1,
            Outcome::Skipped(_) => c.skipped += 1,
        }
    }
    c
}

/// The command that runs exactly this case again.
pub fn reproduce(r: &CaseResult) -> String {
    format!(
        "esxi-harness run {} --profile {} --seed {}",
        r.file, r.profile, r.seed
    )
}
