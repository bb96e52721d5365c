//! The campaign loop shared by every target: seeded generation, one input at a time under
//! `catch_unwind` and the heap meter, outcome classes, findings written as reproducers, and a
//! watchdog for inputs that never finish.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use esxi_sim::rng::Rng;

use crate::meter;

/// One thing to fuzz.
pub trait Target {
    /// `soap`, `bundle` or `control`: names the corpus directory and each input's RNG stream.
    fn name(&self) -> &'static str;
    /// An input, from an RNG forked for it alone.
    fn generate(&self, rng: &mut Rng) -> Vec<u8>;
    /// Runs one input against fresh state: its outcome class (`InvalidRequest`, `Gzip`, `400`,
    /// ...), or the invariant it broke.
    fn run(&mut self, input: &[u8]) -> Result<String, String>;
    /// The most heap (bytes) running this input may hold at its peak.
    fn heap_bound(&self, input: &[u8]) -> usize;
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub seed: u64,
    /// The first input's index (`--start 4711 --inputs 1` makes input 4711 again).
    pub start: u64,
    pub inputs: u64,
    /// An input that takes longer is a finding.
    pub slow: Duration,
    /// An input still running after this is a hang: the watchdog writes it out and ends the
    /// process (a stuck loop cannot be unwound).
    pub hang: Duration,
    /// Where findings are written (`<target>-seed<S>-input<I>.bin` and a `.txt`).
    pub crash_dir: Option<PathBuf>,
    /// Where the first input of each new outcome class is written (the corpus's raw material).
    pub save_new: Option<PathBuf>,
    /// Progress lines on stderr every 10 s.
    pub progress: bool,
}

impl Campaign {
    pub fn new(seed: u64, inputs: u64) -> Campaign {
        Campaign {
            seed,
            start: 0,
            inputs,
            slow: Duration::from_secs(5),
            hang: Duration::from_secs(120),
            crash_dir: None,
            save_new: None,
            progress: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingKind {
    Panic,
    /// A target's check failed (a refused write changed state, a 5xx, a fault of the wrong
    /// kind, a response our own reader cannot read back).
    Invariant,
    Slow,
    Heap,
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FindingKind::Panic => "panic",
            FindingKind::Invariant => "invariant",
            FindingKind::Slow => "slow",
            FindingKind::Heap => "heap",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub kind: FindingKind,
    /// The campaign index (None when replaying a file).
    pub index: Option<u64>,
    pub message: String,
    /// The reproducer written for it, or the corpus file replayed.
    pub file: Option<PathBuf>,
}

/// What a campaign or a replay found.
#[derive(Debug)]
pub struct Report {
    pub target: &'static str,
    pub seed: u64,
    pub inputs: u64,
    pub input_bytes: u64,
    pub elapsed: Duration,
    pub classes: BTreeMap<String, u64>,
    /// Time spent per class (where a campaign's time goes: tuning the generator).
    pub class_time: BTreeMap<String, Duration>,
    pub findings: Vec<Finding>,
    pub peak_heap: usize,
    /// Time spent running inputs (the rest of `elapsed` is generation).
    pub run_time: Duration,
    pub slowest: Duration,
    pub slowest_index: Option<u64>,
}

impl Report {
    fn new(target: &'static str, seed: u64) -> Report {
        Report {
            target,
            seed,
            inputs: 0,
            input_bytes: 0,
            elapsed: Duration::ZERO,
            classes: BTreeMap::new(),
            class_time: BTreeMap::new(),
            findings: Vec::new(),
            peak_heap: 0,
            run_time: Duration::ZERO,
            slowest: Duration::ZERO,
            slowest_index: None,
        }
    }

    pub fn per_second(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The summary the binary prints (and BENCHMARKS.md quotes): the `top` most frequent
    /// classes (all of them, and where the time went, with `usize::MAX`).
    pub fn summary(&self, top: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} inputs ({:.1} MiB) in {:.1} s: {:.0} inputs/s, seed {}",
            self.target,
            self.inputs,
            self.input_bytes as f64 / (1 << 20) as f64,
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.seed
        );
        let _ = writeln!(
            s,
            "  {:.0}% of the time running inputs, the rest generating; peak heap of one input {:.1} MiB; slowest input {:.1} ms{}",
            100.0 * self.run_time.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9),
            self.peak_heap as f64 / (1 << 20) as f64,
            self.slowest.as_secs_f64() * 1e3,
            self.slowest_index
                .map(|i| format!(" (#{i})"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "  {} outcome classes:", self.classes.len());
        let mut by_count: Vec<(&String, &u64)> = self.classes.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let all_classes = top >= by_count.len();
        let shown = top.min(by_count.len());
        for (c, n) in by_count.iter().take(shown) {
            let _ = writeln!(s, "  {n:>10}  {c}");
        }
        if by_count.len() > shown {
            let _ = writeln!(
                s,
                "  ... and {} more (--all-classes)",
                by_count.len() - shown
            );
        }
        if all_classes && !self.class_time.is_empty() {
            let mut by_time: Vec<(&String, &Duration)> = self.class_time.iter().collect();
            by_time.sort_by(|a, b| b.1.cmp(a.1));
            let _ = writeln!(s, "  time by class:");
            for (c, t) in by_time.iter().take(15) {
                let _ = writeln!(s, "  {:>9.2} s  {c}", t.as_secs_f64());
            }
        }
        let _ = writeln!(s, "  findings: {}", self.findings.len());
        for f in self.findings.iter().take(20) {
            let _ = writeln!(
                s,
                "    {} {}{}: {}",
                f.kind,
                f.index.map(|i| format!("#{i} ")).unwrap_or_default(),
                f.file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                first_line(&f.message, 300)
            );
        }
        s
    }
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(max).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

// ---- panics --------------------------------------------------------------------------------

static PANICS: AtomicU64 = AtomicU64::new(0);
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

thread_local! {
    /// Set while this thread runs an input: its panics are recorded, not printed.
    static IN_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Counts every panic on every thread (a panic the tokio blocking pool turns into a 500 is a
/// finding too) and keeps its message; panics outside an input print as usual.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = match (
                info.payload().downcast_ref::<&str>(),
                info.payload().downcast_ref::<String>(),
            ) {
                (Some(s), _) => s.to_string(),
                (_, Some(s)) => s.clone(),
                _ => "(non-string panic payload)".to_string(),
            };
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let thread = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_string();
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{msg}{at} (thread {thread})"));
            PANICS.fetch_add(1, Ordering::SeqCst);
            let quiet =
                IN_RUN.with(|r| r.get()) && std::env::var_os("ESXI_FUZZ_SHOW_PANICS").is_none();
            if !quiet {
                previous(info);
            }
        }));
    });
}

fn last_panic() -> String {
    LAST_PANIC
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| "panic (no message)".into())
}

/// Runs one input: its class, or a finding's kind and message; how long it took; its peak heap.
pub fn run_one<T: Target + ?Sized>(
    t: &mut T,
    input: &[u8],
    slow: Duration,
) -> (Result<String, (FindingKind, String)>, Duration, usize) {
    install_hook();
    let panics = PANICS.load(Ordering::SeqCst);
    IN_RUN.with(|r| r.set(true));
    let started = Instant::now();
    let cpu_started = process_cpu_time();
    let (r, peak) = meter::measured(|| catch_unwind(AssertUnwindSafe(|| t.run(input))));
    let took = started.elapsed();
    let cpu = process_cpu_time().saturating_sub(cpu_started);
    IN_RUN.with(|r| r.set(false));
    let bound = t.heap_bound(input);
    let verdict = match r {
        Err(_) => Err((FindingKind::Panic, last_panic())),
        Ok(_) if PANICS.load(Ordering::SeqCst) != panics => Err((
            FindingKind::Panic,
            format!("a panic on another thread: {}", last_panic()),
        )),
        Ok(Err(m)) => Err((FindingKind::Invariant, m)),
        // Slow is judged by the CPU time the input cost, so a campaign on a busy (or, for a
        // while, stopped) machine does not report the machine; an input that waits rather than
        // works is still caught by its wall time, with room for a starved scheduler.
        Ok(Ok(c)) if cpu > slow || took > slow * STALL_FACTOR => Err((
            FindingKind::Slow,
            format!(
                "took {:.2} s of CPU and {:.2} s of wall time (limit {:.2} s of CPU, {:.2} s of wall): {c}",
                cpu.as_secs_f64(),
                took.as_secs_f64(),
                slow.as_secs_f64(),
                (slow * STALL_FACTOR).as_secs_f64()
            ),
        )),
        Ok(Ok(c)) if peak > bound => Err((
            FindingKind::Heap,
            format!("held {peak} bytes of heap at its peak (bound {bound}): {c}"),
        )),
        Ok(Ok(c)) => Ok(c),
    };
    (verdict, took, peak)
}

/// How many times `--slow-ms` of wall time an input may take when it is not using the CPU.
const STALL_FACTOR: u32 = 4;

/// CPU time of the whole process (inputs run one at a time, and work a target hands to other
/// threads, tokio's blocking pool among them, counts too).
fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

// ---- the watchdog --------------------------------------------------------------------------

struct Current {
    target: &'static str,
    seed: u64,
    index: u64,
    input: Vec<u8>,
    started: Instant,
    /// Time the whole process did not run while this input did (SIGSTOP, a suspended VM,
    /// a laptop lid): not the input's doing, so not counted against `hang`.
    stopped: Duration,
    dir: Option<PathBuf>,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

fn set_current(c: Option<Current>) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = c;
}

/// Ends the process when one input runs past `hang`, after writing it out.
fn start_watchdog(hang: Duration) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::thread::Builder::new()
            .name("esxi-fuzz watchdog".into())
            .spawn(move || {
                const TICK: Duration = Duration::from_millis(500);
                let mut last = Instant::now();
                loop {
                    std::thread::sleep(TICK);
                    // A tick that comes seconds late means the process was stopped (every thread
                    // is, this one too): that gap is credited to the running input.
                    let gap = last.elapsed();
                    last = Instant::now();
                    let mut g = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(c) = g.as_mut() else { continue };
                    if gap > TICK * 10 {
                        c.stopped += gap - TICK;
                    }
                    if c.started.elapsed().saturating_sub(c.stopped) < hang {
                        continue;
                    }
                    let msg = format!("still running after {} s", hang.as_secs());
                    let file = c.dir.as_deref().and_then(|d| {
                        write_reproducer(
                            d,
                            c.target,
                            c.seed,
                            c.index,
                            &c.input,
                            FindingKind::Slow,
                            &msg,
                        )
                    });
                    eprintln!(
                        "esxi-fuzz: HANG: {} input #{} (seed {}) {msg}; written to {}",
                        c.target,
                        c.index,
                        c.seed,
                        file.map(|p| p.display().to_string())
                            .unwrap_or_else(|| "nowhere (no --crashes)".into())
                    );
                    std::process::exit(3);
                }
            })
            .expect("a watchdog thread");
    });
}

// ---- files ---------------------------------------------------------------------------------

fn write_reproducer(
    dir: &Path,
    target: &str,
    seed: u64,
    index: u64,
    input: &[u8],
    kind: FindingKind,
    message: &str,
) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let stem = format!("{target}-seed{seed}-input{index}");
    let bin = dir.join(format!("{stem}.bin"));
    std::fs::write(&bin, input).ok()?;
    let note = format!(
        "{kind}: {message}\n\nreproduce:\n  cargo run --release -p esxi-fuzz -- {target} --seed {seed} --start {index} --inputs 1\n  cargo run --release -p esxi-fuzz -- {target} --replay {}\n",
        bin.display()
    );
    std::fs::write(dir.join(format!("{stem}.txt")), note).ok()?;
    Some(bin)
}

/// A file name for an outcome class.
fn class_file(class: &str) -> String {
    let mut s: String = class
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    // Two classes may clean up to the same name: a short hash keeps them apart.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in class.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    let _ = write!(s, "-{:08x}", h as u32);
    s
}

// ---- running -------------------------------------------------------------------------------

/// Input `index` of the campaign with `seed`.
pub fn input<T: Target + ?Sized>(t: &T, seed: u64, index: u64) -> Vec<u8> {
    let mut rng = Rng::fork(seed, &format!("{}/{index}", t.name()));
    t.generate(&mut rng)
}

/// Runs a campaign.
pub fn campaign<T: Target + ?Sized>(t: &mut T, c: &Campaign) -> Report {
    install_hook();
    if !c.hang.is_zero() {
        start_watchdog(c.hang);
    }
    let mut report = Report::new(t.name(), c.seed);
    let started = Instant::now();
    let mut last_progress = Instant::now();
    for index in c.start..c.start.saturating_add(c.inputs) {
        let generated = {
            IN_RUN.with(|r| r.set(true));
            let g = catch_unwind(AssertUnwindSafe(|| input(t, c.seed, index)));
            IN_RUN.with(|r| r.set(false));
            g
        };
        let data = match generated {
            Ok(d) => d,
            Err(_) => {
                report.findings.push(Finding {
                    kind: FindingKind::Panic,
                    index: Some(index),
                    message: format!("the generator panicked: {}", last_panic()),
                    file: None,
                });
                continue;
            }
        };
        set_current(Some(Current {
            target: t.name(),
            seed: c.seed,
            index,
            input: data.clone(),
            started: Instant::now(),
            stopped: Duration::ZERO,
            dir: c.crash_dir.clone(),
        }));
        let (verdict, took, peak) = run_one(t, &data, c.slow);
        report.inputs += 1;
        report.input_bytes += data.len() as u64;
        report.peak_heap = report.peak_heap.max(peak);
        report.run_time += took;
        if took > report.slowest {
            report.slowest = took;
            report.slowest_index = Some(index);
        }
        match verdict {
            Ok(class) => {
                if c.progress || c.save_new.is_some() {
                    *report.class_time.entry(class.clone()).or_default() += took;
                }
                if let Some(n) = report.classes.get_mut(&class) {
                    *n += 1;
                } else {
                    if let Some(dir) = &c.save_new {
                        save_new(dir, t.name(), c.seed, index, &class, &data);
                    }
                    report.classes.insert(class, 1);
                }
            }
            Err((kind, message)) => {
                *report.classes.entry(format!("FINDING {kind}")).or_insert(0) += 1;
                let file = c.crash_dir.as_deref().and_then(|d| {
                    write_reproducer(d, t.name(), c.seed, index, &data, kind, &message)
                });
                if c.progress {
                    eprintln!(
                        "[{}] FINDING {kind} at input #{index}: {}",
                        t.name(),
                        first_line(&message, 300)
                    );
                }
                if report.findings.len() < 1000 {
                    report.findings.push(Finding {
                        kind,
                        index: Some(index),
                        message,
                        file,
                    });
                }
            }
        }
        if c.progress && last_progress.elapsed() >= Duration::from_secs(10) {
            last_progress = Instant::now();
            let done = report.inputs;
            eprintln!(
                "[{}] {done}/{} inputs, {:.0}/s, {} classes, {} findings",
                t.name(),
                c.inputs,
                done as f64 / started.elapsed().as_secs_f64(),
                report.classes.len(),
                report.findings.len()
            );
        }
    }
    set_current(None);
    report.elapsed = started.elapsed();
    report
}

/// Writes the input that opened a new outcome class, with a note of where it came from.
fn save_new(dir: &Path, target: &str, seed: u64, index: u64, class: &str, data: &[u8]) {
    let stem = format!("{target}-{}", class_file(class));
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(dir.join(format!("{stem}.bin")), data);
    let _ = std::fs::write(
        dir.join(format!("{stem}.txt")),
        format!("{target} input #{index} (seed {seed}): {class}\n"),
    );
}

/// Replays files (a corpus): each file's bytes are one input.
pub fn replay<T: Target + ?Sized>(t: &mut T, files: &[PathBuf], slow: Duration) -> Report {
    let mut report = Report::new(t.name(), 0);
    let started = Instant::now();
    for f in files {
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) => {
                report.findings.push(Finding {
                    kind: FindingKind::Invariant,
                    index: None,
                    message: format!("cannot read: {e}"),
                    file: Some(f.clone()),
                });
                continue;
            }
        };
        let (verdict, took, peak) = run_one(t, &data, slow);
        report.inputs += 1;
        report.input_bytes += data.len() as u64;
        report.peak_heap = report.peak_heap.max(peak);
        report.run_time += took;
        report.slowest = report.slowest.max(took);
        match verdict {
            Ok(class) => *report.classes.entry(class).or_insert(0) += 1,
            Err((kind, message)) => report.findings.push(Finding {
                kind,
                index: None,
                message,
                file: Some(f.clone()),
            }),
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// The input files under `path` (a file, or every file of a directory but notes: `.txt`,
/// `.md`), sorted.
pub fn corpus_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(path)? {
        let p = e?.path();
        let note = matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("txt") | Some("md")
        );
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if p.is_file() && !note && !hidden {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
