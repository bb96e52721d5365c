//! The report card of a suite run: one line per contract on the terminal (with the evidence of
//! those broken), JSON, JUnit (skipped contracts as `<skipped/>`) and a self-contained HTML page.
//! Each ends with the command that repeats the run.

use serde_json::json;

use super::Report;

/// The report as terminal lines.
pub fn terminal(r: &Report) -> String {
    let mut s = format!("esxi-harness tool: {} (seed {})\n", r.tool, r.seed);
    for v in &r.verdicts {
        let mark = match (&v.skipped, v.passed) {
            (Some(_), _) => "skip",
            (None, true) => "pass",
            (None, false) => "FAIL",
        };
        s.push_str(&format!("  {mark} {:<33} {}\n", v.id, v.title));
        if let Some(why) = &v.skipped {
            s.push_str(&format!("       {why}\n"));
        }
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
            "skipped": v.skipped,
            "expected": v.expected,
            "seen": v.seen,
            "evidence": v.evidence,
        })).collect::<Vec<_>>(),
        "tool_output": r.tool_output,
    })
}

/// A self-contained HTML page: one row per contract, the evidence of failures folded open.
pub fn to_html(r: &Report) -> String {
    let esc = |s: &str| {
        let mut o = String::new();
        esxi_sim::soap::xml::escape(s, &mut o);
        o
    };
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <title>{tool}: esxi-harness tool</title>\n<style>body{{font-family:sans-serif;max-width:70em}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:3px 8px;text-align:left;vertical-align:top}}\
         .pass{{background:#d9f2d9}}.FAIL{{background:#f6d5d5}}.skip{{background:#eee}}\
         pre{{margin:0;white-space:pre-wrap}}</style></head><body>\n\
         <h1>{tool}</h1>\n<p>{passed} of {n} contracts kept, {failed} broken. Estate seed {seed}; \
         repeat with <code>{repeat}</code>.</p>\n<table>\n<tr><th></th><th>contract</th><th>expected</th>\
         <th>seen</th><th>evidence</th></tr>\n",
        tool = esc(&r.tool),
        passed = r.passed(),
        failed = r.failed(),
        n = r.verdicts.len(),
        seed = r.seed,
        repeat = esc(&r.repeat),
    );
    for v in &r.verdicts {
        let mark = match (&v.skipped, v.passed) {
            (Some(_), _) => "skip",
            (None, true) => "pass",
            (None, false) => "FAIL",
        };
        let (expected, seen) = match &v.skipped {
            Some(why) => (String::new(), esc(why)),
            None => (esc(&v.expected), esc(&v.seen)),
        };
        let evidence = match v.evidence.is_empty() {
            true => String::new(),
            false => format!(
                "<details{}><summary>{} lines</summary><pre>{}</pre></details>",
                if v.passed { "" } else { " open" },
                v.evidence.len(),
                esc(&v.evidence.join("\n"))
            ),
        };
        s.push_str(&format!(
            "<tr class=\"{mark}\"><td>{mark}</td><td><b>{}</b><br/>{}</td><td>{expected}</td>\
             <td>{seen}</td><td>{evidence}</td></tr>\n",
            esc(v.id),
            esc(v.title)
        ));
    }
    s.push_str(&format!(
        "</table>\n<h2>What the tool printed</h2>\n<pre>{}</pre>\n</body></html>\n",
        esc(&r.tool_output)
    ));
    s
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
        if let Some(why) = &v.skipped {
            s.push_str(&format!(
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                esc(why)
            ));
        } else if v.passed {
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
