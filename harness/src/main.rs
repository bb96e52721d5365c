//! `esxi-harness`: backup/restore scenarios against the embedded simulator (the default) or a
//! real host, with reports for people and CI. Exit status 0 only when everything passed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use esxi_harness::client::Trust;
use esxi_harness::report::{self, json, junit, terminal};
use esxi_harness::runner::{run_case, CaseResult, Outcome, RunOptions};
use esxi_harness::scenario::{self, Scenario};
use esxi_harness::target::TargetSpec;
use esxi_sim::Profile;

#[derive(Parser)]
#[command(
    name = "esxi-harness",
    version,
    about = "Backup/restore scenarios against esxi-sim or a real ESXi host"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenario files (default: scenarios/) on fresh embedded hosts of each profile they
    /// name, or on a real host with --target.
    Run(Box<RunArgs>),
    /// Show a configuration bundle of any era: manifest, the profile it belongs to, the
    /// encryption (7.0 U2+; NONE mode is decrypted), saved files, the ConfigStore's rows (7.0+),
    /// warnings. Exit 1 when a restore would refuse it or a layer is damaged, 3 when it is
    /// TPM-sealed and no --recovery-key opens it.
    Inspect {
        bundle: PathBuf,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The source host's recovery key (16 groups of 6 digits), to open TPM-mode state.
        /// Repeatable: each is tried.
        #[arg(long = "recovery-key", value_name = "KEY")]
        recovery_keys: Vec<String>,
    },
    /// Unified diff of two bundles' saved configuration (files missing on one side diffed
    /// against empty, as `diff -N`); binary files reported as changed; ConfigStore rows
    /// compared row by row. Exit 1 when a side is unreadable, 3 when one is TPM-sealed and no
    /// --recovery-key opens it.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// A summary per file instead of the diff.
        #[arg(long)]
        stat: bool,
        /// Lines of context.
        #[arg(short = 'U', long, default_value_t = 3)]
        unified: usize,
        /// JSON instead of text.
        #[arg(long, conflicts_with = "stat")]
        json: bool,
        /// A recovery key to open TPM-mode state (repeatable: each is tried on each side).
        #[arg(long = "recovery-key", value_name = "KEY")]
        recovery_keys: Vec<String>,
    },
    /// Back up on each profile, restore onto each profile (same/other UUID, force false/true):
    /// a table of outcomes, each checked against the rules. Exit 1 if any cell disagrees.
    Matrix {
        /// Profiles (default: all).
        #[arg(long, value_delimiter = ',')]
        profiles: Vec<String>,
        #[arg(long, default_value = "md", value_parser = ["md", "json", "html"])]
        format: String,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Test your own backup tool: the harness starts an estate (a vCenter over hosts of mixed
    /// builds, one not responding), runs the tool TOOL.toml describes, and judges it by named
    /// contracts from the request trace and the files it leaves (docs/testing-your-tool.md).
    /// Exit 0 when it keeps every contract, 1 when it breaks one, 2 for a bad TOOL.toml.
    Tool {
        /// The tool's description (TOOL.toml).
        spec: PathBuf,
        /// The estate's seed: the same seed repeats the same estate.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The first loopback address of the estate's hosts.
        #[arg(long, default_value = "127.20.0.1")]
        addresses: std::net::Ipv4Addr,
        /// Write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write a JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write a self-contained HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Check scenario files without running them (errors name file and line).
    Check {
        #[arg(default_value = "scenarios")]
        paths: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Scenario files or directories of them.
    #[arg(default_value = "scenarios")]
    paths: Vec<PathBuf>,
    /// A real host (or a running esxi-sim): https://host[:port]
    #[arg(long)]
    target: Option<String>,
    /// User on the target.
    #[arg(long, default_value = "root", requires = "target")]
    user: String,
    /// Environment variable holding the target's password.
    #[arg(long, default_value = "ESXI_PASSWORD", requires = "target")]
    password_env: String,
    /// Accept the target's certificate whatever it is (ESXi's are self-signed).
    #[arg(long, requires = "target")]
    insecure: bool,
    /// PEM file of the CA that signed the target's certificate.
    #[arg(long, requires = "target", conflicts_with = "insecure")]
    ca_file: Option<PathBuf>,
    /// The control API of the esxi-sim behind --target (`serve --control ADDR`): the
    /// simulator-only steps (crash, advance, write-file, ...) then run there too.
    #[arg(long, requires = "target")]
    control_url: Option<String>,
    /// Environment variable holding the control API's bearer token (default: the token a
    /// local `esxi-sim serve` wrote for that URL).
    #[arg(
        long,
        default_value = "ESXI_SIM_CONTROL_TOKEN",
        requires = "control_url"
    )]
    control_token_env: String,
    /// Allow steps that restore, reset or reboot the target.
    #[arg(long)]
    allow_destructive: bool,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Only these profiles (repeatable).
    #[arg(long = "profile")]
    profiles: Vec<String>,
    /// Seed of the embedded hosts.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Scenarios run in parallel.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write a JSON report here (schema: docs/harness-json.md).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the bundles and event logs of failed runs here.
    #[arg(long)]
    keep_artifacts: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(a) => run(*a),
        Command::Inspect {
            bundle,
            json,
            recovery_keys,
        } => inspect(&bundle, json, &recovery_keys),
        Command::Diff {
            a,
            b,
            stat,
            unified,
            json,
            recovery_keys,
        } => diff(&a, &b, stat, unified, json, &recovery_keys),
        Command::Matrix {
            profiles,
            format,
            out,
        } => matrix(&profiles, &format, out.as_deref()),
        Command::Tool {
            spec,
            seed,
            addresses,
            junit,
            json,
            html,
        } => tool(
            &spec,
            seed,
            addresses,
            [junit.as_deref(), json.as_deref(), html.as_deref()],
        ),
        Command::Check { paths } => match load(&paths) {
            Ok(s) => {
                println!("{} scenarios, all valid", s.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
    }
}

/// The async runtime the embedded simulator runs on; None (said) when it cannot be made.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("esxi-harness: {e}");
            None
        }
    }
}

fn tool(
    path: &Path,
    seed: u64,
    first: std::net::Ipv4Addr,
    [junit, json, html]: [Option<&Path>; 3],
) -> ExitCode {
    use esxi_harness::tool;
    if !first.is_loopback() {
        eprintln!("esxi-harness: --addresses {first} is not a loopback address (127.0.0.0/8)");
        return ExitCode::from(2);
    }
    let spec = match tool::spec::ToolSpec::load(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Some(rt) = runtime() else {
        return ExitCode::FAILURE;
    };
    let mut progress = |what: &str| eprintln!("-- {what}");
    let report = match rt.block_on(tool::run_suite(&spec, path, seed, first, &mut progress)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("esxi-harness: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", tool::terminal(&report));
    if let Some(p) = junit {
        if !write(p, &tool::to_junit(&report)) {
            return ExitCode::FAILURE;
        }
    }
    if let Some(p) = json {
        let text = serde_json::to_string_pretty(&tool::to_json(&report)).unwrap_or_default();
        if !write(p, &text) {
            return ExitCode::FAILURE;
        }
    }
    if let Some(p) = html {
        if !write(p, &tool::to_html(&report)) {
            return ExitCode::FAILURE;
        }
    }
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn matrix(names: &[String], format: &str, out: Option<&Path>) -> ExitCode {
    use esxi_harness::matrix;
    let profiles: Vec<_> = if names.is_empty() {
        Profile::all().to_vec()
    } else {
        match names
            .iter()
            .map(|n| Profile::named(n))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(p) => p,
            Err(e) => {
                eprintln!("esxi-harness: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let cells = match matrix::build(&profiles) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("esxi-harness: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match format {
        "json" => matrix::json(&cells),
        "html" => matrix::html(&profiles, &cells),
        _ => matrix::markdown(&profiles, &cells),
    };
    match out {
        Some(p) => {
            if !write(p, &text) {
                return ExitCode::FAILURE;
            }
        }
        None => print!("{text}"),
    }
    if cells.iter().all(|c| c.agrees()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn read(p: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(p).map_err(|e| {
        eprintln!("esxi-harness: {}: {e}", p.display());
        ExitCode::from(2)
    })
}

/// inspect and diff: a TPM-sealed configuration that no recovery key given opens (facts 6.5).
const EXIT_SEALED: u8 = 3;

fn keys(texts: &[String]) -> Result<esxi_harness::layers::Keys, ExitCode> {
    esxi_harness::layers::Keys::recovery(texts).map_err(|e| {
        eprintln!("esxi-harness: {e}");
        ExitCode::from(2)
    })
}

fn inspect(p: &Path, as_json: bool, recovery_keys: &[String]) -> ExitCode {
    use esxi_harness::inspect::Verdict;
    let keys = match keys(recovery_keys) {
        Ok(k) => k,
        Err(c) => return c,
    };
    let bytes = match read(p) {
        Ok(b) => b,
        Err(c) => return c,
    };
    match esxi_harness::inspect::inspect_with(&bytes, &keys) {
        Ok(i) => {
            if as_json {
                println!("{}", i.to_json());
            } else {
                print!("{i}");
            }
            match i.verdict() {
                Verdict::Readable => ExitCode::SUCCESS,
                Verdict::Invalid => ExitCode::FAILURE,
                Verdict::Sealed => {
                    if let Some(esxi_harness::layers::Opened::Sealed(why)) =
                        i.encryption.as_ref().map(|e| &e.opened)
                    {
                        eprintln!("esxi-harness: {}: {why}", p.display());
                    }
                    ExitCode::from(EXIT_SEALED)
                }
            }
        }
        Err(e) => {
            eprintln!("esxi-harness: {}: not a readable bundle: {e}", p.display());
            ExitCode::FAILURE
        }
    }
}

fn diff(
    a: &Path,
    b: &Path,
    stat: bool,
    context: usize,
    as_json: bool,
    recovery_keys: &[String],
) -> ExitCode {
    let keys = match keys(recovery_keys) {
        Ok(k) => k,
        Err(c) => return c,
    };
    let (x, y) = match (read(a), read(b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    match esxi_harness::diff::compare(&x, &y, &keys) {
        Ok(c) => {
            if as_json {
                println!("{}", c.to_json(context));
            } else {
                print!(
                    "{}",
                    c.render(esxi_harness::diff::DiffOptions { stat, context })
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let path = if e.side == 'a' { a } else { b };
            if as_json {
                let err = serde_json::json!({"error": {
                    "side": e.side.to_string(), "sealed": e.sealed(), "message": e.error.to_string(),
                }});
                println!("{err}");
            }
            eprintln!("esxi-harness: {e} ({})", path.display());
            if e.sealed() {
                ExitCode::from(EXIT_SEALED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Every `*.toml` under the paths, parsed; the first error stops the load.
fn load(paths: &[PathBuf]) -> Result<Vec<Scenario>, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            v.sort();
            files.extend(v);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    let names: Vec<&str> = Profile::all().iter().map(|p| p.name.as_str()).collect();
    let mut out = Vec::new();
    for f in files {
        let src = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        out.push(
            scenario::parse(&f.display().to_string(), &src, &names).map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

fn run(a: RunArgs) -> ExitCode {
    let scenarios = match load(&a.paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("esxi-harness: {e}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<&str> = Profile::all().iter().map(|p| p.name.as_str()).collect();
    for p in &a.profiles {
        if !names.contains(&p.as_str()) {
            eprintln!(
                "esxi-harness: unknown profile '{p}' (one of: {})",
                names.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let (spec, target_name) = match &a.target {
        None => (TargetSpec::Embedded, "embedded esxi-sim".to_string()),
        Some(url) => {
            let password = std::env::var(&a.password_env).unwrap_or_default();
            let trust = match &a.ca_file {
                Some(f) => match std::fs::read(f) {
                    Ok(pem) => Trust::Roots(pem),
                    Err(e) => {
                        eprintln!("esxi-harness: {}: {e}", f.display());
                        return ExitCode::from(2);
                    }
                },
                None if a.insecure => Trust::Any,
                None => {
                    eprintln!(
                        "esxi-harness: give --insecure (self-signed ESXi certificate) or --ca-file"
                    );
                    return ExitCode::from(2);
                }
            };
            (
                TargetSpec::Remote {
                    url: url.clone(),
                    user: a.user.clone(),
                    password,
                    trust,
                    control: a.control_url.clone().map(|c| {
                        let token = std::env::var(&a.control_token_env)
                            .ok()
                            .filter(|t| !t.is_empty())
                            .or_else(|| esxi_sim::fleet::control::token_for_url(&c));
                        (c, token)
                    }),
                },
                url.clone(),
            )
        }
    };
    // Cases: scenario × profile. On a real host the profile is whatever the host runs.
    let mut cases: Vec<(Arc<Scenario>, String)> = Vec::new();
    for s in scenarios {
        if a.filter
            .as_ref()
            .is_some_and(|f| !s.name.contains(f.as_str()))
        {
            continue;
        }
        let s = Arc::new(s);
        let profiles: Vec<String> = if spec.is_embedded() {
            let base: Vec<String> = if s.profiles.is_empty() {
                names.iter().map(|n| n.to_string()).collect()
            } else {
                s.profiles.clone()
            };
            base.into_iter()
                .filter(|p| a.profiles.is_empty() || a.profiles.contains(p))
                .collect()
        } else {
            vec!["target".into()]
        };
        for p in profiles {
            cases.push((s.clone(), p));
        }
    }
    if cases.is_empty() {
        eprintln!("esxi-harness: no scenario matches");
        return ExitCode::from(2);
    }
    let work = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("esxi-harness: cannot make a work directory: {e}");
            return ExitCode::from(2);
        }
    };
    // One host runs one scenario at a time: they would trample each other's state.
    let jobs = if spec.is_embedded() { a.jobs.max(1) } else { 1 };
    let opts = Arc::new(RunOptions {
        target: spec,
        seed: a.seed,
        allow_destructive: a.allow_destructive,
        work_root: work.path().to_path_buf(),
    });
    eprintln!(
        "esxi-harness: {} runs ({} scenario files) against {target_name}, seed {}, {} jobs",
        cases.len(),
        cases
            .iter()
            .map(|(s, _)| s.file.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        a.seed,
        jobs
    );
    let started = Instant::now();
    let Some(rt) = runtime() else {
        return ExitCode::from(2);
    };
    let bar = indicatif::ProgressBar::new(cases.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let results: Vec<CaseResult> = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
        let mut handles = Vec::new();
        for (i, (s, p)) in cases.iter().cloned().enumerate() {
            let sem = sem.clone();
            let opts = opts.clone();
            let bar = bar.clone();
            handles.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                let r = run_case(&s, &p, &opts).await;
                if bar.is_hidden() {
                    println!("{}", terminal::line(&r));
                } else {
                    bar.println(terminal::line(&r));
                }
                bar.inc(1);
                (i, r)
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            match h.await {
                Ok(x) => out.push(x),
                Err(e) => eprintln!("esxi-harness: a run panicked: {e}"),
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, r)| r).collect()
    });
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    for r in &results {
        if let Some(d) = terminal::failure_detail(r) {
            eprint!("\n{d}");
        }
    }
    println!("{}", terminal::summary(&results, secs));
    let mut ok = results.len() == cases.len();
    if let Some(p) = &a.junit {
        ok &= write(p, &junit::render(&results, secs));
    }
    if let Some(p) = &a.json {
        ok &= write(p, &json::render(&results, &target_name, secs));
    }
    if let Some(dir) = &a.keep_artifacts {
        ok &= keep(dir, &results);
    }
    let c = report::counts(&results);
    if ok && c.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn write(p: &Path, text: &str) -> bool {
    match std::fs::write(p, text) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("esxi-harness: {}: {e}", p.display());
            false
        }
    }
}

/// Bundles and the event log of each failed run, in `<dir>/<scenario>-<profile>/`.
fn keep(dir: &Path, results: &[CaseResult]) -> bool {
    let mut ok = true;
    for r in results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
    {
        let d = dir.join(format!("{}-{}", r.scenario, r.profile));
        if let Err(e) = std::fs::create_dir_all(&d) {
            eprintln!("esxi-harness: {}: {e}", d.display());
            ok = false;
            continue;
        }
        for (name, bytes) in &r.bundles {
            ok &= std::fs::write(d.join(format!("{name}.tgz")), bytes).is_ok();
        }
        let mut log = r.events.join("\n");
        log.push('\n');
        if let Some(detail) = terminal::failure_detail(r) {
            log.push_str(&detail);
        }
        ok &= std::fs::write(d.join("events.log"), log).is_ok();
    }
    ok
}
