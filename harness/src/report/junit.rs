//! JUnit XML, as CI systems read it: one `testsuite`, one `testcase` per scenario × profile
//! (`classname` the scenario, `name` the scenario and profile), `failure` with the message and
//! the details, `skipped` with the reason.

use esxi_sim::soap::xml::escape;

use super::{counts, reproduce, terminal};
use crate::runner::{CaseResult, Outcome};

fn esc(s: &str) -> String {
    let mut o = String::new();
    escape(s, &mut o);
    o
}

pub fn render(results: &[CaseResult], secs: f64) -> String {
    let c = counts(results);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"esxi-harness\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{secs:.3}\">\n",
        results.len(),
        c.failed,
        c.skipped
    ));
    x.push_str(&format!(
        "  <testsuite name=\"esxi-harness\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{secs:.3}\">\n",
        results.len(),
        c.failed,
        c.skipped
    ));
    for r in results {
        x.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{} [{}]\" file=\"{}\" time=\"{:.3}\"",
            esc(&r.scenario),
            esc(&r.scenario),
            esc(&r.profile),
            esc(&r.file),
            r.duration.as_secs_f64()
        ));
        match &r.outcome {
            Outcome::Passed => x.push_str("/>\n"),
            Outcome::Skipped(why) => x.push_str(&format!(
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                esc(why)
            )),
            Outcome::Failed(f) => {
                let msg = format!(
                    "{}:{}: step {} '{}': expected {}, seen {}",
                    r.file, f.line, f.step, f.action, f.expected, f.seen
                );
                let detail = terminal::failure_detail(r).unwrap_or_default();
                x.push_str(&format!(
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n      <system-out>{}</system-out>\n    </testcase>\n",
                    esc(&msg),
                    esc(&f.action),
                    esc(&detail),
                    esc(&reproduce(r))
                ));
            }
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
