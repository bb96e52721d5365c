//! `esxi-harness`: runs backup/restore scenarios against esxi-sim or a real host (issue 5).

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "esxi-harness: the scenario runner is not built yet (issue 5); \
         today `esxi-sim simulate` drives the host model"
    );
    ExitCode::from(2)
}
