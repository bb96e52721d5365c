//! `diff`: what changed between two configuration bundles, file by file, and from 7.0 row by
//! row in the ConfigStore.
//!
//! The compared files are the saved configuration: `Manifest.txt` plus every member of
//! `local.tgz`, read in any era (7.0 U2+ sealed state decrypted: NONE mode always, TPM mode with
//! a recovery key that opens it). The output is that of GNU `diff -N -u` run on each file
//! (auto-backup.sh compares with `diff -N`, facts section 1): a file present on one side only is
//! compared with an empty one, headers are `--- a/<path>` / `+++ b/<path>` without timestamps,
//! hunk ranges follow GNU (`-l` for one line, `-l,0` with the line before an empty range), and a
//! last line without a newline gets `\ No newline at end of file`. The ConfigStore's database
//! is never diffed as bytes: its rows are compared ([`crate::store_diff`]) where its path comes.
//! `stat` gives a `git diff --stat` style summary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};

use esxi_sim::configstore::{self, ConfigStore};

use crate::inspect::encryption_json;
use crate::layers::{Encryption, Keys, Layers, ReadError, Saved};
use crate::store_diff::{self, StoreDiff};

/// Options for [`diff`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffOptions {
    /// A per-file summary and a total line instead of the unified diff.
    pub stat: bool,
    /// Unchanged lines shown around each change (`diff -U`).
    pub context: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            stat: false,
            context: 3,
        }
    }
}

/// Above this many edits the line diff stops looking for a minimal script and reports the
/// differing middle as replaced wholesale: Myers' trace is quadratic in the edit count.
const MAX_EDITS: usize = 2000;

/// Why two bundles cannot be compared: one side's saved configuration cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffError {
    /// `'a'` or `'b'`.
    pub side: char,
    pub error: ReadError,
}

impl DiffError {
    /// TPM-sealed and not opened (rather than damaged).
    pub fn sealed(&self) -> bool {
        matches!(self.error, ReadError::Sealed(_))
    }
}

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.side, self.error)
    }
}

/// Two bundles' saved configurations, read and ready to compare.
pub struct Comparison {
    a: Saved,
    b: Saved,
    store: StoreDiff,
}

/// Reads both bundles (opening sealed state with `keys`) for comparison.
pub fn compare(a: &[u8], b: &[u8], keys: &Keys) -> Result<Comparison, DiffError> {
    let read = |bytes: &[u8], side: char| {
        Layers::read(bytes, keys)
            .map_err(ReadError::Invalid)
            .and_then(Layers::saved)
            .map_err(|error| DiffError { side, error })
    };
    let (a, b) = (read(a, 'a')?, read(b, 'b')?);
    let store = store_diff::compare(a.store.as_ref(), b.store.as_ref());
    Ok(Comparison { a, b, store })
}

/// The unified diff (or with `stat`, the summary) of two bundles' saved configurations. Empty
/// when they hold the same files with the same contents. `Err` when either bundle's saved files
/// cannot be read (the reader's message, prefixed with `a:` or `b:`). No recovery key: see
/// [`compare`] for TPM-sealed bundles.
pub fn diff(a: &[u8], b: &[u8], opts: DiffOptions) -> Result<String, String> {
    compare(a, b, &Keys::none())
        .map(|c| c.render(opts))
        .map_err(|e| e.to_string())
}

/// Paths (as in the diff headers, without `a/`/`b/`) whose contents differ, including files
/// present on one side only; sorted.
pub fn changed_files(a: &[u8], b: &[u8]) -> Result<Vec<String>, String> {
    compare(a, b, &Keys::none())
        .map(|c| c.changed_files())
        .map_err(|e| e.to_string())
}

type Files = BTreeMap<String, Vec<u8>>;

fn all_paths(a: &Files, b: &Files) -> BTreeSet<String> {
    a.keys().chain(b.keys()).cloned().collect()
}

/// What one file's change is.
enum FileChange<'s> {
    Text {
        a: Vec<&'s str>,
        b: Vec<&'s str>,
        ops: Vec<Op>,
    },
    Binary {
        from: usize,
        to: usize,
    },
    /// The ConfigStore's database: compared by rows.
    Store,
}

impl Comparison {
    /// Paths whose contents differ (bytes), sorted.
    pub fn changed_files(&self) -> Vec<String> {
        all_paths(&self.a.files, &self.b.files)
            .into_iter()
            .filter(|p| self.a.files.get(p) != self.b.files.get(p))
            .collect()
    }

    /// The ConfigStore rows that differ (empty when neither side has a store).
    pub fn store(&self) -> &StoreDiff {
        &self.store
    }

    fn has_store(&self) -> bool {
        self.a.store.is_some() || self.b.store.is_some()
    }

    /// Each differing path with its change, in path order.
    fn changes(&self) -> Vec<(String, FileChange<'_>)> {
        let mut out = Vec::new();
        for path in all_paths(&self.a.files, &self.b.files) {
            let x = self.a.files.get(&path).map(|v| &v[..]).unwrap_or(&[]);
            let y = self.b.files.get(&path).map(|v| &v[..]).unwrap_or(&[]);
            if x == y {
                continue;
            }
            if path == configstore::BACKUP_PATH && self.has_store() {
                // Facts 6.3: the same rows are the same configuration, whatever the pages.
                if !self.store.is_empty() {
                    out.push((path, FileChange::Store));
                }
                continue;
            }
            let change = match (as_text(x), as_text(y)) {
                (Some(tx), Some(ty)) => {
                    let (lx, ly) = (split_lines(tx), split_lines(ty));
                    let ops = line_diff(&lx, &ly);
                    FileChange::Text { a: lx, b: ly, ops }
                }
                _ => FileChange::Binary {
                    from: x.len(),
                    to: y.len(),
                },
            };
            out.push((path, change));
        }
        out
    }

    /// A line on the encryption when the two sides' differ (mode, key, recovery ID).
    fn encryption_line(&self) -> Option<String> {
        let facts = |e: &Option<Encryption>| {
            e.as_ref().map(|e| {
                let mut s = e.mode.map_or("mode unknown".into(), |m| format!("{m}"));
                if let Some(id) = &e.key_id {
                    let _ = write!(s, " key id {id}");
                }
                if let Some(id) = &e.recovery_id {
                    let _ = write!(s, " recovery ID {id}");
                }
                s
            })
        };
        let (x, y) = (facts(&self.a.encryption), facts(&self.b.encryption));
        (x != y).then(|| {
            let show = |f: Option<String>| f.unwrap_or_else(|| "not encrypted".into());
            format!("Encryption: a {} → b {}\n", show(x), show(y))
        })
    }

    /// The unified diff, or with `stat` the summary.
    pub fn render(&self, opts: DiffOptions) -> String {
        let mut out = String::new();
        if let Some(l) = self.encryption_line() {
            out.push_str(&l);
        }
        let mut stats: Vec<(String, FileStat)> = Vec::new();
        for (path, change) in self.changes() {
            match change {
                FileChange::Text { a, b, ops } => {
                    if opts.stat {
                        let ins = ops.iter().filter(|o| **o == Op::Ins).count();
                        let del = ops.iter().filter(|o| **o == Op::Del).count();
                        stats.push((path, FileStat::Text { ins, del }));
                    } else {
                        let _ = writeln!(out, "--- a/{path}\n+++ b/{path}");
                        write_hunks(&mut out, &a, &b, &ops, opts.context);
                    }
                }
                FileChange::Binary { from, to } => {
                    if opts.stat {
                        stats.push((path, FileStat::Binary { from, to }));
                    } else {
                        let _ = writeln!(out, "Binary files a/{path} and b/{path} differ");
                    }
                }
                FileChange::Store => {
                    if opts.stat {
                        let s = &self.store;
                        stats.push((
                            path,
                            FileStat::Store {
                                added: s.rows_added,
                                removed: s.rows_removed,
                                changed: s.rows_changed,
                            },
                        ));
                    } else {
                        self.store.write(&mut out, &path);
                    }
                }
            }
        }
        if opts.stat {
            write_stat(&mut out, &stats);
        }
        out
    }

    /// The comparison as one JSON object (docs/harness-json.md), hunks with `context` lines.
    pub fn to_json(&self, context: usize) -> String {
        use serde_json::{json, Value};
        let side = |s: &Saved| {
            json!({
                "files": s.files.len(),
                "configstore_rows": s.store.as_ref().map(ConfigStore::len),
                "encryption": s.encryption.as_ref().map_or(Value::Null, encryption_json),
            })
        };
        let files: Vec<Value> = self
            .changes()
            .into_iter()
            .map(|(path, change)| {
                let (x, y) = (self.a.files.get(&path), self.b.files.get(&path));
                let status = match (x, y) {
                    (None, _) => "added",
                    (_, None) => "removed",
                    _ => "modified",
                };
                let sizes = (x.map(Vec::len), y.map(Vec::len));
                let mut v =
                    json!({"path": path, "status": status, "size_a": sizes.0, "size_b": sizes.1});
                match change {
                    FileChange::Text { a, b, ops } => {
                        let mut hunks = String::new();
                        write_hunks(&mut hunks, &a, &b, &ops, context);
                        v["kind"] = "text".into();
                        v["insertions"] = ops.iter().filter(|o| **o == Op::Ins).count().into();
                        v["deletions"] = ops.iter().filter(|o| **o == Op::Del).count().into();
                        v["hunks"] = hunks.into();
                    }
                    FileChange::Binary { .. } => v["kind"] = "binary".into(),
                    FileChange::Store => v["kind"] = "configstore".into(),
                }
                v
            })
            .collect();
        let store = self.has_store().then(|| {
            let s = &self.store;
            let pick = |f: fn(&store_diff::Change) -> bool| -> Vec<Value> {
                s.changes
                    .iter()
                    .filter(|c| f(c))
                    .map(|c| {
                        let mut m = store_diff::cell_json(&c.cell);
                        m.insert("old".into(), c.old.clone().into());
                        m.insert("new".into(), c.new.clone().into());
                        Value::Object(m)
                    })
                    .collect()
            };
            json!({
                "path": configstore::BACKUP_PATH,
                "rows_added": s.rows_added,
                "rows_removed": s.rows_removed,
                "rows_changed": s.rows_changed,
                "metadata_only": s.metadata_only,
                "added": pick(|c| c.old.is_none()),
                "removed": pick(|c| c.new.is_none()),
                "changed": pick(|c| c.old.is_some() && c.new.is_some()),
            })
        });
        json!({
            "a": side(&self.a),
            "b": side(&self.b),
            "files": files,
            "configstore": store,
        })
        .to_string()
    }
}

/// Text is what diff would print: UTF-8 without NUL (GNU diff calls a file with NUL binary).
fn as_text(b: &[u8]) -> Option<&str> {
    if b.contains(&0) {
        return None;
    }
    std::str::from_utf8(b).ok()
}

/// Lines with their `\n`; a last line without one stays as it is, so that "x" and "x\n" differ.
fn split_lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Del,
    Ins,
}

/// An edit script turning `a` into `b`: common prefix and suffix, then Myers' O(ND) diff on the
/// middle, or the whole middle replaced past [`MAX_EDITS`].
fn line_diff<'s>(a: &[&'s str], b: &[&'s str]) -> Vec<Op> {
    // Interning makes the inner comparison an integer compare.
    let mut ids: HashMap<&'s str, u32> = HashMap::new();
    let mut intern = |l: &[&'s str]| -> Vec<u32> {
        l.iter()
            .map(|s| {
                let next = ids.len() as u32;
                *ids.entry(*s).or_insert(next)
            })
            .collect()
    };
    let (a, b) = (intern(a), intern(b));
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops = vec![Op::Eq; pre];
    match myers(ma, mb, MAX_EDITS) {
        Some(mid) => ops.extend(mid),
        None => {
            ops.extend(std::iter::repeat_n(Op::Del, ma.len()));
            ops.extend(std::iter::repeat_n(Op::Ins, mb.len()));
        }
    }
    ops.extend(std::iter::repeat_n(Op::Eq, suf));
    ops
}

/// Myers' greedy shortest edit script, with a snapshot of the furthest-reaching paths per edit
/// count for the backtrack. `None` when more than `max_d` edits are needed.
fn myers(a: &[u32], b: &[u32], max_d: usize) -> Option<Vec<Op>> {
    let (n, m) = (a.len() as i64, b.len() as i64);
    let lim = (a.len() + b.len()).min(max_d) as i64;
    let off = lim + 1;
    let mut v = vec![0i64; 2 * lim as usize + 3];
    // trace[d] holds v for diagonals -d..=d as it was before step d (the values of step d-1).
    let mut trace: Vec<Vec<i64>> = Vec::new();
    for d in 0..=lim {
        trace.push(v[(off - d) as usize..=(off + d) as usize].to_vec());
        let mut k = -d;
        while k <= d {
            let i = (off + k) as usize;
            let down = k == -d || (k != d && v[i - 1] < v[i + 1]);
            let mut x = if down { v[i + 1] } else { v[i - 1] + 1 };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[i] = x;
            if x >= n && y >= m {
                return Some(backtrack(&trace, n, m));
            }
            k += 2;
        }
    }
    None
}

fn backtrack(trace: &[Vec<i64>], n: i64, m: i64) -> Vec<Op> {
    let mut ops = Vec::new();
    let (mut x, mut y) = (n, m);
    for (d, v) in trace.iter().enumerate().rev() {
        let d = d as i64;
        if d == 0 {
            // The first snake from (0, 0): all matches.
            ops.extend(std::iter::repeat_n(Op::Eq, x as usize));
            break;
        }
        let k = x - y;
        let at = |k: i64| v[(k + d) as usize];
        let prev_k = if k == -d || (k != d && at(k - 1) < at(k + 1)) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = at(prev_k);
        let prev_y = prev_x - prev_k;
        // The snake after the edit, walked back.
        let (sx, sy) = if prev_k == k + 1 {
            (prev_x, prev_y + 1)
        } else {
            (prev_x + 1, prev_y)
        };
        while x > sx && y > sy {
            ops.push(Op::Eq);
            x -= 1;
            y -= 1;
        }
        ops.push(if prev_k == k + 1 { Op::Ins } else { Op::Del });
        x = prev_x;
        y = prev_y;
    }
    ops.reverse();
    ops
}

/// One run of deletions and insertions: `del` lines of `a` from `a0`, `ins` lines of `b` from `b0`.
struct Change {
    a0: usize,
    del: usize,
    b0: usize,
    ins: usize,
}

fn changes(ops: &[Op]) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut in_change = false;
    for op in ops {
        if *op == Op::Eq {
            i += 1;
            j += 1;
            in_change = false;
            continue;
        }
        if !in_change {
            out.push(Change {
                a0: i,
                del: 0,
                b0: j,
                ins: 0,
            });
            in_change = true;
        }
        let c = out.last_mut().expect("pushed above");
        if *op == Op::Del {
            c.del += 1;
            i += 1;
        } else {
            c.ins += 1;
            j += 1;
        }
    }
    out
}

fn write_hunks(out: &mut String, a: &[&str], b: &[&str], ops: &[Op], ctx: usize) {
    let cs = changes(ops);
    let mut start = 0;
    while start < cs.len() {
        // As GNU diff: changes at most 2*context unchanged lines apart share a hunk.
        let mut end = start + 1;
        while end < cs.len() {
            let prev = &cs[end - 1];
            if cs[end].a0 - (prev.a0 + prev.del) > 2 * ctx {
                break;
            }
            end += 1;
        }
        let (first, last) = (&cs[start], &cs[end - 1]);
        let lead = ctx.min(first.a0).min(first.b0);
        let trail = ctx
            .min(a.len() - (last.a0 + last.del))
            .min(b.len() - (last.b0 + last.ins));
        let (a_lo, b_lo) = (first.a0 - lead, first.b0 - lead);
        let a_len = last.a0 + last.del + trail - a_lo;
        let b_len = last.b0 + last.ins + trail - b_lo;
        let _ = writeln!(out, "@@ -{} +{} @@", range(a_lo, a_len), range(b_lo, b_len));
        let mut ai = a_lo;
        for c in &cs[start..end] {
            for l in &a[ai..c.a0] {
                line(out, ' ', l);
            }
            for l in &a[c.a0..c.a0 + c.del] {
                line(out, '-', l);
            }
            for l in &b[c.b0..c.b0 + c.ins] {
                line(out, '+', l);
            }
            ai = c.a0 + c.del;
        }
        for l in &a[ai..ai + trail] {
            line(out, ' ', l);
        }
        start = end;
    }
}

/// GNU's hunk range: `l` for one line, `l,n` otherwise, and for no lines the line before.
fn range(lo: usize, len: usize) -> String {
    match len {
        0 => format!("{lo},0"),
        1 => format!("{}", lo + 1),
        n => format!("{},{n}", lo + 1),
    }
}

fn line(out: &mut String, tag: char, l: &str) {
    out.push(tag);
    out.push_str(l);
    if !l.ends_with('\n') {
        out.push_str("\n\\ No newline at end of file\n");
    }
}

enum FileStat {
    Text {
        ins: usize,
        del: usize,
    },
    Binary {
        from: usize,
        to: usize,
    },
    Store {
        added: usize,
        removed: usize,
        changed: usize,
    },
}

/// Widest `+`/`-` bar; longer ones are scaled down, as git does.
const BAR: usize = 50;

fn write_stat(out: &mut String, stats: &[(String, FileStat)]) {
    if stats.is_empty() {
        return;
    }
    let name_w = stats.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    let max_change = stats
        .iter()
        .map(|(_, s)| match s {
            FileStat::Text { ins, del } => ins + del,
            FileStat::Binary { .. } | FileStat::Store { .. } => 0,
        })
        .max()
        .unwrap_or(0);
    let count_w = max_change.to_string().len();
    let (mut tot_ins, mut tot_del) = (0, 0);
    for (path, s) in stats {
        match s {
            FileStat::Text { ins, del } => {
                tot_ins += ins;
                tot_del += del;
                let (bi, bd) = scale(*ins, *del, max_change);
                let _ = writeln!(
                    out,
                    " {path:<name_w$} | {:>count_w$} {}{}",
                    ins + del,
                    "+".repeat(bi),
                    "-".repeat(bd)
                );
            }
            FileStat::Binary { from, to } => {
                let _ = writeln!(out, " {path:<name_w$} | Bin {from} -> {to} bytes");
            }
            FileStat::Store {
                added,
                removed,
                changed,
            } => {
                let _ = writeln!(
                    out,
                    " {path:<name_w$} | ConfigStore rows +{added} -{removed} ~{changed}"
                );
            }
        }
    }
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let _ = write!(out, " {} changed", plural(stats.len(), "file", "files"));
    // As git: a zero count is left out, unless both are zero (binary files only).
    if tot_ins > 0 || tot_del == 0 {
        let _ = write!(out, ", {}(+)", plural(tot_ins, "insertion", "insertions"));
    }
    if tot_del > 0 || tot_ins == 0 {
        let _ = write!(out, ", {}(-)", plural(tot_del, "deletion", "deletions"));
    }
    out.push('\n');
}

fn scale(ins: usize, del: usize, max_change: usize) -> (usize, usize) {
    if max_change <= BAR {
        return (ins, del);
    }
    // Proportional, but a nonzero count keeps at least one mark.
    let f = |n: usize| {
        if n == 0 {
            0
        } else {
            (n * BAR / max_change).max(1)
        }
    };
    (f(ins), f(del))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udiff(a: &str, b: &str, ctx: usize) -> String {
        let (la, lb) = (split_lines(a), split_lines(b));
        let ops = line_diff(&la, &lb);
        let mut s = String::new();
        write_hunks(&mut s, &la, &lb, &ops, ctx);
        s
    }

    #[test]
    fn edit_scripts_are_minimal_and_consistent() {
        let cases = [
            ("", ""),
            ("a\n", ""),
            ("", "a\nb\n"),
            ("a\nb\nc\n", "a\nc\n"),
            ("a\nb\nc\na\nb\nb\na\n", "c\nb\na\nb\na\nc\n"),
            ("x", "x\n"),
        ];
        for (a, b) in cases {
            let (la, lb) = (split_lines(a), split_lines(b));
            let ops = line_diff(&la, &lb);
            // Replaying the script on a gives b.
            let (mut i, mut j, mut got) = (0, 0, Vec::new());
            for op in &ops {
                match op {
                    Op::Eq => {
                        assert_eq!(la[i], lb[j]);
                        got.push(la[i]);
                        i += 1;
                        j += 1;
                    }
                    Op::Del => i += 1,
                    Op::Ins => {
                        got.push(lb[j]);
                        j += 1;
                    }
                }
            }
            assert_eq!((i, j), (la.len(), lb.len()));
            assert_eq!(got, lb);
        }
        // The classic example of Myers' paper: 5 edits.
        let (la, lb) = (
            split_lines("a\nb\nc\na\nb\nb\na\n"),
            split_lines("c\nb\na\nb\na\nc\n"),
        );
        let edits = line_diff(&la, &lb).iter().filter(|o| **o != Op::Eq).count();
        assert_eq!(edits, 5);
    }

    #[test]
    fn too_many_edits_fall_back_to_replacement() {
        let a: Vec<u32> = (0..3000).collect();
        let b: Vec<u32> = (5000..8000).collect();
        assert!(myers(&a, &b, MAX_EDITS).is_none());
        let sa: String = (0..3000).map(|i| format!("{i}\n")).collect();
        let sb: String = (5000..8000).map(|i| format!("{i}\n")).collect();
        let out = udiff(&sa, &sb, 3);
        assert!(out.starts_with("@@ -1,3000 +1,3000 @@\n"));
    }

    #[test]
    fn hunk_ranges_follow_gnu() {
        assert_eq!(udiff("", "a\n", 3), "@@ -0,0 +1 @@\n+a\n");
        assert_eq!(udiff("a\nb\nc\n", "a\nc\n", 0), "@@ -2 +1,0 @@\n-b\n");
        assert_eq!(
            udiff("a", "b", 3),
            "@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n"
        );
    }
}
