//! The regression corpus, replayed on every test run: each file in `fuzz/corpus/<target>/` is one
//! input (every input that ever found a bug, and the first input of each outcome class of the
//! documented campaigns), run through the same checks as a campaign. A finding fails the test
//! with the file's name; `cargo run --release -p esxi-fuzz -- <target> --replay FILE` shows it.

use std::path::Path;
use std::time::Duration;

use esxi_fuzz::bundle::BundleTarget;
use esxi_fuzz::control::ControlTarget;
use esxi_fuzz::driver::{corpus_files, replay, Target};
use esxi_fuzz::soap::Soap;
use esxi_fuzz::vijson::ViJson;

/// Generous for the barely optimised test profile on a busy machine (corpus inputs take
/// milliseconds), tight enough that a regression of the long-password hash (25 s an input
/// here) fails.
const SLOW: Duration = Duration::from_secs(10);

fn replay_corpus(t: &mut dyn Target) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(t.name());
    let files = corpus_files(&dir).unwrap();
    assert!(
        files.len() >= 10,
        "{}: only {} inputs",
        dir.display(),
        files.len()
    );
    let r = replay(t, &files, SLOW);
    assert!(r.findings.is_empty(), "{}", r.summary(usize::MAX));
    assert_eq!(r.inputs as usize, files.len());
}

#[test]
fn the_soap_corpus_replays_clean() {
    replay_corpus(&mut Soap::new().unwrap());
}

#[test]
fn the_bundle_corpus_replays_clean() {
    replay_corpus(&mut BundleTarget::new().unwrap());
}

#[test]
fn the_control_corpus_replays_clean() {
    replay_corpus(&mut ControlTarget::new().unwrap());
}

#[test]
fn the_vijson_corpus_replays_clean() {
    replay_corpus(&mut ViJson::new().unwrap());
}
