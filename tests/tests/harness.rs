//! The harness end to end: the conformance suite parses, a broken scenario is named by file and
//! line, JUnit is well-formed with one testcase per scenario × profile, and the portable part of
//! the suite passes against a separately served host (as `--target` runs it).

use std::path::PathBuf;

use esxi_harness::client::Trust;
use esxi_harness::report::{json, junit};
use esxi_harness::runner::{run_case, Outcome, RunOptions};
use esxi_harness::scenario::{self, Scenario};
use esxi_harness::target::TargetSpec;
use esxi_sim::soap::xml;
use esxi_sim::Profile;
use esxi_sim_tests::{host, start_with, PASSWORD};

fn profiles() -> Vec<&'static str> {
    Profile::all().iter().map(|p| p.name.as_str()).collect()
}

fn suite() -> Vec<Scenario> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let src = std::fs::read_to_string(f).unwrap();
            scenario::parse(&f.display().to_string(), &src, &profiles())
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// A served host as `--target` names it (root, any certificate), with or without a control API.
fn remote(url: impl Into<String>, control: Option<(String, Option<String>)>) -> TargetSpec {
    TargetSpec::Remote {
        url: url.into(),
        user: "root".into(),
        password: PASSWORD.into(),
        trust: Trust::Any,
        control,
    }
}

/// Each call its own work root: tests that run the same scenario at once would otherwise share
/// its work directory (`<scenario>-<profile>-<seed>`, where a `run` step leaves its bundle).
fn opts(target: TargetSpec) -> RunOptions {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    RunOptions {
        target,
        seed: 1,
        allow_destructive: true,
        work_root: std::env::temp_dir().join(format!("esxi-harness-tests-{n}")),
    }
}

#[test]
fn the_conformance_suite_parses_and_is_big_enough() {
    let s = suite();
    assert!(s.len() >= 20, "{} scenarios", s.len());
    for sc in &s {
        assert!(
            !sc.checks.is_empty() && !sc.fact.is_empty(),
            "{}: checks and fact",
            sc.file
        );
    }
}

#[test]
fn a_broken_scenario_names_file_and_line() {
    let src = "checks = \"x\"\n\n[[step]]\nrestore = { force = \"yes\" }\n";
    let e = scenario::parse("scenarios/broken.toml", src, &profiles()).unwrap_err();
    assert_eq!(
        e.to_string().split(':').take(2).collect::<Vec<_>>(),
        ["scenarios/broken.toml", "4"]
    );
    assert!(e.message.contains("'force' must be true or false"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_has_one_testcase_per_run_and_failures_carry_the_message() {
    let good = scenario::parse(
        "good.toml",
        "checks = \"ok\"\nprofiles = [\"6.7U3\", \"8.0U3\"]\n[[step]]\nsync = {}\n",
        &profiles(),
    )
    .unwrap();
    let bad = scenario::parse(
        "bad.toml",
        "checks = \"a crash keeps the change (wrong on purpose)\"\n[[step]]\nset_option = { key = \"UserVars.SuppressShellWarning\", value = 1 }\n[[step]]\ncrash = {}\n[[step]]\npower_on = {}\n[[step]]\nexpect_option = { key = \"UserVars.SuppressShellWarning\", value = 1 }\n",
        &profiles(),
    )
    .unwrap();
    let o = opts(TargetSpec::Embedded);
    let mut results = Vec::new();
    for p in ["6.7U3", "8.0U3"] {
        results.push(run_case(&good, p, &o).await);
    }
    results.push(run_case(&bad, "6.7U3", &o).await);
    assert!(matches!(results[0].outcome, Outcome::Passed));
    let Outcome::Failed(f) = &results[2].outcome else {
        panic!("the wrong scenario passed: {:?}", results[2].outcome)
    };
    assert_eq!((f.step, f.line, f.action.as_str()), (4, 9, "expect_option"));
    assert!(f.seen.contains("= 0"), "{}", f.seen);

    let x = junit::render(&results, 1.0);
    let root = xml::parse(x.as_bytes()).expect("well-formed JUnit");
    let suite = root.child("testsuite").unwrap();
    let cases: Vec<_> = suite.all("testcase").collect();
    assert_eq!(cases.len(), 3);
    assert_eq!(suite.attr("failures"), Some("1"));
    assert_eq!(cases[1].attr("name"), Some("good [8.0U3]"));
    let failure = cases[2].child("failure").expect("a failure element");
    assert!(failure
        .attr("message")
        .unwrap()
        .starts_with("bad.toml:9: step 4"));
    assert!(cases[0].child("failure").is_none());

    let j = json::render(&results, "embedded", 1.0);
    assert!(
        j.contains("\"schema\": 1") && j.contains("\"failed\": 1"),
        "{j}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portable_suite_passes_against_a_served_host() {
    let ts = start_with(host("6.7U3", 5), |_| {}).await;
    let o = opts(remote(ts.url.clone(), None));
    let (mut passed, mut skipped) = (0, 0);
    for sc in suite() {
        let r = run_case(&sc, "target", &o).await;
        match &r.outcome {
            Outcome::Passed => passed += 1,
            Outcome::Skipped(why) => {
                assert!(why.contains("needs the simulator"), "{}: {why}", sc.name);
                skipped += 1
            }
            Outcome::Failed(f) => panic!("{} failed on the served host: {f:?}", sc.name),
        }
    }
    assert!(
        passed >= 10 && skipped >= 5,
        "passed {passed}, skipped {skipped}"
    );
}

/// With `--control-url`, the simulator-only steps run on a separately started esxi-sim too, and
/// every scenario passes there as it does embedded (each starts from a reinstalled host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_against_a_fleet_host_through_its_control_api() {
    use esxi_sim::fleet::{Fleet, Mode};
    let fleet = Fleet::builder()
        .hosts(2)
        .mode(Mode::VCenter)
        .profile("6.7U3")
        .password(PASSWORD)
        .control("127.0.0.1:0".parse().unwrap())
        .control_token("t0ken")
        .start()
        .await
        .unwrap();
    let host = &fleet.hosts()[1];
    let o = opts(remote(
        host.url.clone(),
        Some((fleet.control_url().unwrap(), Some("t0ken".into()))),
    ));
    let (mut ran, mut other_builds) = (Vec::new(), 0);
    for sc in suite() {
        let r = run_case(&sc, "target", &o).await;
        match &r.outcome {
            Outcome::Passed => ran.push(sc.name.clone()),
            // Scenarios written for other builds (a 7.0U3 account store) skip a 6.7U3 host.
            Outcome::Skipped(why) if why.contains("the target runs 6.7U3") => other_builds += 1,
            other => panic!("{} on a fleet host: {other:?}", sc.name),
        }
    }
    assert_eq!(ran.len() + other_builds, suite().len());
    assert!(other_builds >= 8, "{other_builds}");
    // The 6.x scenario ran its simulator-only encryption steps through the control API.
    assert!(ran.iter().any(|n| n == "plain-state-before-70"), "{ran:?}");
    // The other host was never touched: one install save, no more.
    fleet.with_host(0, |v| {
        assert_eq!(v.host.bootbank_writes().state_saves, 1);
    });
    // A target the control API does not serve is a clear failure, not a skip.
    let bad = opts(remote(
        "https://127.0.0.1:1/sdk",
        Some((fleet.control_url().unwrap(), Some("t0ken".into()))),
    ));
    let r = run_case(&suite()[0], "target", &bad).await;
    match r.outcome {
        Outcome::Failed(f) => assert!(f.seen.contains("serves no host at"), "{f:?}"),
        other => panic!("{other:?}"),
    }
    // So is a wrong token.
    let wrong = opts(remote(
        host.url.clone(),
        Some((fleet.control_url().unwrap(), Some("nope".into()))),
    ));
    match run_case(&suite()[0], "target", &wrong).await.outcome {
        Outcome::Failed(f) => assert!(f.seen.contains("HTTP 401"), "{f:?}"),
        other => panic!("{other:?}"),
    }
    fleet.shutdown().await;
}

#[test]
fn the_committed_restore_matrix_is_current_and_agrees_with_the_rules() {
    use esxi_harness::matrix::{RECOVERY_KEY_NEEDED, RESTORED};
    use esxi_sim::keystore::Mode;
    use esxi_sim::profile::{Era, TpmBundleRestore};
    let profiles = Profile::all().to_vec();
    let cells = esxi_harness::matrix::build(&profiles).unwrap();
    let encrypted = profiles.iter().filter(|p| p.era == Era::Encrypted).count();
    assert!(encrypted >= 10, "7.0 U2 to 9.0.1.0: {encrypted}");
    // Every bundle onto every profile in four combinations; 7.0 U2+ sources twice (NONE, TPM).
    assert_eq!(
        cells.len(),
        profiles.len() * profiles.len() * 4 + encrypted * profiles.len() * 4
    );
    let bad: Vec<_> = cells.iter().filter(|c| !c.agrees()).collect();
    assert!(bad.is_empty(), "cells disagreeing with the rules: {bad:?}");
    // The rules again, written here independently of the matrix's own: firmwareConfig.sh's
    // (facts section 2), then for TPM bundles the board (facts 6.5, tpm_bundle_restore).
    let profile = |n: &str| Profile::named(n).unwrap();
    for c in &cells {
        let (from, to) = (profile(&c.from), profile(&c.to));
        assert_eq!(
            c.encryption.is_some(),
            from.era == Era::Encrypted,
            "{c:?}: 7.0 U2+ bundles say their mode"
        );
        assert_eq!(
            c.same_board.is_some(),
            c.encryption == Some(Mode::Tpm),
            "{c:?}"
        );
        let want = if from.release_level != to.release_level || (!c.same_uuid && !c.force) {
            "MismatchedBundle"
        } else if c.same_board == Some(false) {
            match to.tpm_bundle_restore {
                TpmBundleRestore::Accept => RECOVERY_KEY_NEEDED,
                TpmBundleRestore::Refuse => "InvalidBundle",
            }
        } else {
            RESTORED
        };
        assert_eq!(c.outcome, want, "{c:?}");
    }
    let cell =
        |f: &str, t: &str, mode: Option<Mode>, board: Option<bool>, uuid: bool, force: bool| {
            cells
                .iter()
                .find(|c| {
                    c.from == f
                        && c.to == t
                        && c.encryption == mode
                        && c.same_board == board
                        && c.same_uuid == uuid
                        && c.force == force
                })
                .unwrap_or_else(|| panic!("no cell {f} -> {t} {mode:?} {board:?} {uuid} {force}"))
        };
    // Patch builds of one Update restore onto each other; other Updates never do.
    assert_eq!(
        cell("7.0U3d", "7.0U3k", Some(Mode::None), None, true, false).outcome,
        RESTORED
    );
    assert_eq!(
        cell("6.7GA", "6.7U3", None, None, true, false).outcome,
        "MismatchedBundle"
    );
    // NONE mode boots anywhere the manifest allows; TPM mode on its own board only, elsewhere
    // after the recovery key (the question 7.0 U2+ owners ask: a board replacement).
    assert_eq!(
        cell("8.0U3", "8.0U3", Some(Mode::None), None, false, true).outcome,
        RESTORED
    );
    assert_eq!(
        cell("8.0U3", "8.0U3", Some(Mode::Tpm), Some(true), true, false).outcome,
        RESTORED
    );
    assert_eq!(
        cell("8.0U3", "8.0U3", Some(Mode::Tpm), Some(false), true, false).outcome,
        RECOVERY_KEY_NEEDED
    );
    assert_eq!(
        cell(
            "7.0U3d",
            "7.0U3k",
            Some(Mode::Tpm),
            Some(false),
            false,
            true
        )
        .outcome,
        RECOVERY_KEY_NEEDED
    );
    assert_eq!(
        cell(
            "9.0.1.0",
            "9.0.1.0",
            Some(Mode::Tpm),
            Some(false),
            false,
            false
        )
        .outcome,
        "MismatchedBundle"
    );
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/restore-matrix.md");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == esxi_harness::matrix::markdown(&profiles, &cells),
        "docs/restore-matrix.md is stale: run `esxi-harness matrix --out docs/restore-matrix.md`"
    );
    assert!(committed.contains("## TPM bundle, same host after a board replacement"));
    assert!(committed.contains("| **8.0U3** |") && committed.contains("🔑"));
}

#[test]
fn the_html_matrix_has_a_table_per_combination_and_titles_each_cell_with_its_rule() {
    let profiles: Vec<_> = ["6.7U3", "7.0U3d", "7.0U3k"]
        .iter()
        .map(|p| Profile::named(p).unwrap())
        .collect();
    let cells = esxi_harness::matrix::build(&profiles).unwrap();
    let page = esxi_harness::matrix::html(&profiles, &cells);
    let body = page
        .strip_prefix("<!DOCTYPE html>\n")
        .expect("an HTML5 page");
    // Everything after the doctype is well-formed XML (our reader is strict).
    let root = xml::parse(body.as_bytes()).expect("well-formed markup");
    let tables: Vec<_> = root.child("body").unwrap().all("table").collect();
    // Four tables of plain and NONE bundles, four of TPM bundles (7.0 U2+ rows only).
    assert_eq!(tables.len(), 8);
    let cells_in_first: Vec<_> = tables[0].all("tr").flat_map(|r| r.all("td")).collect();
    assert_eq!(cells_in_first.len(), 9);
    assert!(cells_in_first
        .iter()
        .all(|c| c.attr("title").is_some_and(|t| t.starts_with("rule "))));
    // 7.0U3d onto 7.0U3k: same release level, restored.
    let row = tables[0].all("tr").nth(2).unwrap();
    assert_eq!(row.child_text("th"), Some("7.0U3d"));
    assert_eq!(row.all("td").nth(2).unwrap().text, "✓");
    // A TPM bundle after a board replacement: the 6.7 profile has no row, 7.0U3d onto 7.0U3k
    // needs the recovery key.
    let tpm: Vec<_> = tables[5].all("tr").skip(1).collect();
    assert_eq!(tpm.len(), 2);
    assert_eq!(tpm[0].child_text("th"), Some("7.0U3d"));
    let c = tpm[0].all("td").nth(2).unwrap();
    assert_eq!(c.text, "🔑");
    assert!(
        c.attr("title").unwrap().contains("recovery key"),
        "{:?}",
        c.attr("title")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_step_reports_its_exit_status_and_stderr() {
    let sc = scenario::parse(
        "tool.toml",
        "checks = \"the tool fails\"\n[[step]]\nrun = { command = \"echo no route to host >&2; exit 3\", timeout = \"10s\" }\n",
        &profiles(),
    )
    .unwrap();
    let r = run_case(&sc, "6.7U3", &opts(TargetSpec::Embedded)).await;
    let Outcome::Failed(f) = &r.outcome else {
        panic!("a failing tool passed: {:?}", r.outcome)
    };
    assert_eq!((f.step, f.line), (1, 3));
    assert!(
        f.seen.contains("exit status: 3") && f.seen.contains("no route to host"),
        "{}",
        f.seen
    );
}

// ---- 7.0 U2+ encryption steps (facts 6.4, 6.5) -------------------------------------------------

/// Runs an inline scenario; returns the failure (panics if it passed or was skipped).
async fn failure(src: &str, profile: &str, o: &RunOptions) -> esxi_harness::runner::Failure {
    let sc = scenario::parse("inline.toml", src, &profiles()).unwrap_or_else(|e| panic!("{e}"));
    match run_case(&sc, profile, o).await.outcome {
        Outcome::Failed(f) => f,
        other => panic!("{src}\nwas meant to fail: {other:?}"),
    }
}

async fn passes(src: &str, profile: &str, o: &RunOptions) {
    let sc = scenario::parse("inline.toml", src, &profiles()).unwrap_or_else(|e| panic!("{e}"));
    let r = run_case(&sc, profile, o).await;
    assert_eq!(r.outcome, Outcome::Passed, "{src}");
}

const TPM_ON_A_NEW_BOARD: &str = "checks = \"x\"\n\
    [[step]]\nset_encryption = { mode = \"TPM\" }\n\
    [[step]]\nread_recovery_key = { name = \"k\" }\n\
    [[step]]\nreplace_board = {}\n";

/// Each new expectation fails, saying what it expected and what it saw, when the claim is
/// wrong; and the wrong-key and no-key boots are told apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_steps_fail_with_what_was_expected_and_seen() {
    let o = opts(TargetSpec::Embedded);
    let wrong = ["000001"; 16].join("-");
    // (steps after TPM_ON_A_NEW_BOARD, the failing step, text in expected or seen)
    let cases: Vec<(String, usize, &str)> = vec![
        (
            "[[step]]\npower_on = { recovery_key = \"nosuch\" }\n".into(),
            4,
            "a recovery key named 'nosuch'",
        ),
        ("[[step]]\npower_on = {}\n".into(), 4, "the recovery key is needed"),
        (
            format!("[[step]]\npower_on = {{ recovery_key = \"{wrong}\" }}\n"),
            4,
            "the recovery key given does not open it",
        ),
        (
            "[[step]]\npower_on = { recovery_key = \"k\", halts = \"security violation\" }\n"
                .into(),
            4,
            "no stopped boot: the host came up",
        ),
        (
            "[[step]]\npower_on = { halts = \"x\" }\n[[step]]\nexpect_halted = \"does not open it\"\n"
                .into(),
            4,
            "the boot stopped with \"x\"",
        ),
        (
            "[[step]]\nexpect_saved = { layout = \"plain\" }\n".into(),
            4,
            "state.tgz holds: local.tgz.ve, encryption.info",
        ),
        (
            "[[step]]\nexpect_saved = { mode = \"NONE\" }\n".into(),
            4,
            "TPM",
        ),
    ];
    for (i, (steps, step, text)) in cases.iter().enumerate() {
        let src = format!("{TPM_ON_A_NEW_BOARD}{steps}");
        let f = failure(&src, "8.0U3", &o).await;
        assert_eq!(f.step, *step, "case {i}: {f:?}");
        assert!(
            f.expected.contains(text) || f.seen.contains(text),
            "case {i}: {f:?}"
        );
    }
    // A TPM state opens with the recorded key, though the host is down and its board new.
    passes(
        &format!(
            "{TPM_ON_A_NEW_BOARD}[[step]]\nexpect_saved = {{ layout = \"encrypted\", mode = \"TPM\", has_file = \"etc/shadow\", store = {{ \"esx/encryption/settings user_value.mode\" = \"TPM\" }} }}\n"
        ),
        "8.0U3",
        &o,
    )
    .await;
    // ... and does not without it: the harness says what is missing.
    let f = failure(
        "checks = \"x\"\n[[step]]\nset_encryption = { mode = \"TPM\" }\n[[step]]\nreplace_board = {}\n\
         [[step]]\nexpect_saved = { has_file = \"etc/shadow\" }\n",
        "8.0U3",
        &o,
    )
    .await;
    assert!(f.expected.contains("read_recovery_key first"), "{f:?}");

    // On a running NONE host.
    let none = |steps: &str| format!("checks = \"x\"\n{steps}");
    for (steps, text) in [
        ("[[step]]\nexpect_halted = \"x\"\n", "no stopped boot"),
        ("[[step]]\nread_recovery_key = {}\n", "none: mode NONE"),
        ("[[step]]\nexpect_encryption = { mode = \"TPM\" }\n", "mode NONE"),
        ("[[step]]\nrotate_recovery_key = {}\n", "TPM mode only"),
        (
            "[[step]]\nset_encryption = { mode = \"TPM\", refused = \"x\" }\n",
            "the change was made",
        ),
        (
            "[[step]]\nexpect_saved = { store = { \"esx/advanced_options/misc vital_value.host_name\" = \"nope\" } }\n",
            "esx/advanced_options/misc vital_value.host_name = esx-",
        ),
        (
            "[[step]]\nexpect_saved = { store = { \"esx/authentication/user_accounts/root\" = { absent = true } } }\n",
            "esx/authentication/user_accounts/root = (the row)",
        ),
        (
            "[[step]]\nbackup = {}\n[[step]]\nexpect_bundle = { file_contains = { \"etc/vmware/esx.conf\" = \"/adv/Misc/HostName = \\\"nope\\\"\" } }\n",
            "/adv/Misc/HostName",
        ),
    ] {
        let f = failure(&none(steps), "8.0U3", &o).await;
        assert!(
            f.expected.contains(text) || f.seen.contains(text),
            "{steps}: {f:?}"
        );
    }
    // 6.7 has no encryption: refused with the reason; its state is a plain local.tgz.
    passes(
        &none(
            "[[step]]\nset_encryption = { mode = \"TPM\", refused = \"does not encrypt\" }\n\
             [[step]]\nexpect_saved = { layout = \"plain\", store = { \"esx/advanced_options/misc\" = { absent = true } } }\n",
        ),
        "6.7U3",
        &o,
    )
    .await;
    let f = failure(
        &none("[[step]]\nexpect_saved = { mode = \"NONE\" }\n"),
        "6.7U3",
        &o,
    )
    .await;
    assert!(f.seen.contains("no encryption.info"), "{f:?}");
}

/// The encryption scenarios of the suite pass through a running fleet's control API as they
/// do embedded, a second host included (another host of the fleet, reinstalled); without a
/// second host of the build the step says what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_encryption_scenarios_pass_through_the_control_api() {
    use esxi_sim::fleet::{Fleet, Mode};
    let fleet = Fleet::builder()
        .hosts(3)
        .mode(Mode::VCenter)
        .profile("8.0U3")
        .password(PASSWORD)
        .control("127.0.0.1:0".parse().unwrap())
        .control_token("t0ken")
        .start()
        .await
        .unwrap();
    let control = Some((fleet.control_url().unwrap(), Some("t0ken".into())));
    let o = opts(remote(fleet.hosts()[1].url.clone(), control.clone()));
    let mut ran = Vec::new();
    for sc in suite() {
        let r = run_case(&sc, "target", &o).await;
        match &r.outcome {
            Outcome::Passed => ran.push(sc.name.clone()),
            Outcome::Skipped(why) => assert!(why.contains("the target runs 8.0U3"), "{why}"),
            other => panic!("{} on an 8.0U3 fleet host: {other:?}", sc.name),
        }
    }
    for name in [
        "encrypted-state-layout",
        "configstore-change-saved-then-never-rewritten",
        "hostname-in-the-80-store",
        "account-store-from-703",
        "board-replacement-needs-the-recovery-key",
        "none-mode-survives-board-replacement",
        "tpm-bundle-on-another-host",
        "none-bundle-on-another-host",
        "recovery-key-rotation",
    ] {
        assert!(ran.iter().any(|n| n == name), "{name} did not run: {ran:?}");
    }
    // The second host was another of the fleet's: host 0 (the first free), reinstalled.
    fleet.with_host(0, |v| {
        assert_eq!(
            v.host
                .events()
                .tail(64)
                .filter(|e| e.kind.name() == "installed")
                .count(),
            1
        );
        assert_ne!(v.host.bootbank_writes().state_saves, 1, "host 0 was used");
    });
    // A wrong key through the control API is told apart from a missing one.
    let wrong = ["000001"; 16].join("-");
    let f = failure(
        &format!("{TPM_ON_A_NEW_BOARD}[[step]]\npower_on = {{ recovery_key = \"{wrong}\" }}\n"),
        "target",
        &o,
    )
    .await;
    assert!(f.seen.contains("does not open it"), "{f:?}");
    fleet.shutdown().await;

    // One host of the build: no second machine for `host = "other"`.
    let single = Fleet::builder()
        .hosts(1)
        .profile("8.0U3")
        .password(PASSWORD)
        .control("127.0.0.1:0".parse().unwrap())
        .control_token("t0ken")
        .start()
        .await
        .unwrap();
    let control = Some((single.control_url().unwrap(), Some("t0ken".into())));
    let o = opts(remote(single.hosts()[0].url.clone(), control));
    let f = failure(
        "checks = \"x\"\n[[step]]\nhost = \"other\"\nsync = {}\n",
        "target",
        &o,
    )
    .await;
    assert!(f.seen.contains("no other 8.0U3 host"), "{f:?}");
    single.shutdown().await;
}
