//! `esxi-fuzz <soap|bundle|control|vijson|all> --seed N --inputs N`: a seeded campaign, or a replay of
//! files (`--replay fuzz/corpus/soap`). See `docs/fuzzing.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use esxi_fuzz::bundle::BundleTarget;
use esxi_fuzz::control::ControlTarget;
use esxi_fuzz::driver::{self, Campaign, Report, Target};
use esxi_fuzz::soap::Soap;
use esxi_fuzz::vijson::ViJson;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    Soap,
    Bundle,
    Control,
    Vijson,
    All,
}

/// Seeded, structure-aware fuzzing of the SOAP and VI/JSON readers, the bundle reader and the
/// control API.
#[derive(Parser, Debug)]
#[command(name = "esxi-fuzz")]
struct Args {
    /// What to fuzz (`all`: each target in turn).
    target: Which,
    /// The campaign's seed: input i is made from (seed, i) alone.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many inputs (per target).
    #[arg(long, default_value_t = 10_000)]
    inputs: u64,
    /// The first input's index: `--start 4711 --inputs 1` makes input 4711 again.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Replay these files or directories instead of generating (a corpus, a reproducer).
    #[arg(long)]
    replay: Vec<PathBuf>,
    /// Where findings are written (input and a note of how to reproduce it).
    #[arg(long, default_value = "target/fuzz-findings")]
    crashes: PathBuf,
    /// Write the first input of each new outcome class here (raw material for the corpus).
    #[arg(long)]
    save_new: Option<PathBuf>,
    /// Write input --start as generated to this file and stop.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// An input slower than this (milliseconds) is a finding.
    #[arg(long, default_value_t = 5_000)]
    slow_ms: u64,
    /// An input still running after this (seconds) ends the run, written out as a hang.
    #[arg(long, default_value_t = 120)]
    hang_s: u64,
    /// How many outcome classes to print, the most frequent first.
    #[arg(long, default_value_t = 40)]
    classes: usize,
    /// Print every outcome class, and the time spent in each.
    #[arg(long)]
    all_classes: bool,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

fn target(w: Which) -> Result<Box<dyn Target>, String> {
    Ok(match w {
        Which::Soap => Box::new(Soap::new()?),
        Which::Bundle => Box::new(BundleTarget::new()?),
        Which::Control => Box::new(ControlTarget::new()?),
        Which::Vijson => Box::new(ViJson::new()?),
        Which::All => unreachable!("expanded by the caller"),
    })
}

fn run(args: &Args, w: Which) -> Result<Report, String> {
    let mut t = target(w)?;
    let slow = Duration::from_millis(args.slow_ms);
    if let Some(out) = &args.dump {
        let data = driver::input(t.as_ref(), args.seed, args.start);
        std::fs::write(out, &data).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!(
            "{} input #{} (seed {}) written to {}",
            t.name(),
            args.start,
            args.seed,
            out.display()
        );
    }
    if !args.replay.is_empty() {
        let mut files = Vec::new();
        for p in &args.replay {
            files.extend(driver::corpus_files(p).map_err(|e| format!("{}: {e}", p.display()))?);
        }
        return Ok(driver::replay(t.as_mut(), &files, slow));
    }
    let c = Campaign {
        seed: args.seed,
        start: args.start,
        inputs: if args.dump.is_some() { 0 } else { args.inputs },
        slow,
        hang: Duration::from_secs(args.hang_s),
        crash_dir: Some(args.crashes.clone()),
        save_new: args.save_new.clone(),
        progress: !args.quiet,
    };
    Ok(driver::campaign(t.as_mut(), &c))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let which: Vec<Which> = match args.target {
        Which::All => vec![Which::Soap, Which::Bundle, Which::Control, Which::Vijson],
        w => vec![w],
    };
    let mut findings = 0;
    for w in which {
        match run(&args, w) {
            Ok(r) => {
                let top = if args.all_classes {
                    usize::MAX
                } else {
                    args.classes
                };
                print!("{}", r.summary(top));
                findings += r.findings.len();
            }
            Err(e) => {
                eprintln!("esxi-fuzz: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if findings > 0 {
        eprintln!(
            "esxi-fuzz: {findings} finding(s); inputs written to {}",
            args.crashes.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
