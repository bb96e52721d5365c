//! Two ConfigStores compared row by row (facts 6.3): which `Config` rows (and `KVTable`
//! entries) were added, removed or changed, each value column with its old and new JSON. Never
//! a binary diff of the database: two stores with the same rows are the same configuration
//! whatever their pages hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use esxi_sim::configstore::{Column, ConfigStore, Key};

/// One value of a store: a row's value column, or a KVTable entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// `column` is `user_value`, ...; `""` for a row without any value.
    Config {
        key: Key,
        column: &'static str,
    },
    Kv(String),
}

impl fmt::Display for Cell {
    /// As `ConfigStore::lines` names it: `esx/network/vmknics/vmk0 user_value`, `KVTable k`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Config { key, column: "" } => write!(f, "{key} (no value)"),
            Cell::Config { key, column } => write!(f, "{key} {column}"),
            Cell::Kv(k) => write!(f, "KVTable {k}"),
        }
    }
}

/// A value that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub cell: Cell,
    /// `None`: not on that side (NULL, or the row is absent).
    pub old: Option<String>,
    pub new: Option<String>,
}

/// How two stores differ.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreDiff {
    /// Rows (and KVTable keys) only in b, only in a, in both with a value changed.
    pub rows_added: usize,
    pub rows_removed: usize,
    pub rows_changed: usize,
    /// Rows whose values are equal but whose times, revision or version differ.
    pub metadata_only: usize,
    /// Every differing value, in key order.
    pub changes: Vec<Change>,
}

impl StoreDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.metadata_only == 0
    }
}

fn cells(s: &ConfigStore) -> BTreeMap<Cell, String> {
    let mut out = BTreeMap::new();
    for (k, r) in s.iter() {
        let mut any = false;
        for c in Column::ALL {
            if let Some(v) = r.value(c) {
                out.insert(
                    Cell::Config {
                        key: k.clone(),
                        column: c.name(),
                    },
                    v.to_string(),
                );
                any = true;
            }
        }
        if !any {
            out.insert(
                Cell::Config {
                    key: k.clone(),
                    column: "",
                },
                String::new(),
            );
        }
    }
    for (k, (v, _)) in s.kv() {
        out.insert(Cell::Kv(k.clone()), v.clone());
    }
    out
}

/// The row a cell belongs to, for counting rows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum RowId {
    Config(Key),
    Kv(String),
}

fn row_of(c: &Cell) -> RowId {
    match c {
        Cell::Config { key, .. } => RowId::Config(key.clone()),
        Cell::Kv(k) => RowId::Kv(k.clone()),
    }
}

/// Compares stores; a side without one (a release before 7.0) is an empty store.
pub fn compare(a: Option<&ConfigStore>, b: Option<&ConfigStore>) -> StoreDiff {
    let empty = ConfigStore::new();
    let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
    let (ca, cb) = (cells(a), cells(b));
    let mut d = StoreDiff::default();
    let keys: BTreeSet<&Cell> = ca.keys().chain(cb.keys()).collect();
    for c in keys {
        let (x, y) = (ca.get(c), cb.get(c));
        if x != y {
            d.changes.push(Change {
                cell: c.clone(),
                old: x.cloned(),
                new: y.cloned(),
            });
        }
    }
    let rows = |m: &BTreeMap<Cell, String>| m.keys().map(row_of).collect::<BTreeSet<_>>();
    let (ra, rb) = (rows(&ca), rows(&cb));
    let touched: BTreeSet<RowId> = d.changes.iter().map(|c| row_of(&c.cell)).collect();
    d.rows_added = rb.difference(&ra).count();
    d.rows_removed = ra.difference(&rb).count();
    d.rows_changed = touched
        .iter()
        .filter(|r| ra.contains(r) && rb.contains(r))
        .count();
    d.metadata_only = a
        .iter()
        .filter(|(k, r)| {
            !touched.contains(&RowId::Config((*k).clone())) && b.get(k).is_some_and(|o| o != *r)
        })
        .count();
    d
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl StoreDiff {
    /// The summary: `1 row added, 0 removed, 2 changed`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} added, {} removed, {} changed",
            plural(self.rows_added, "row", "rows"),
            self.rows_removed,
            self.rows_changed
        );
        if self.metadata_only > 0 {
            let _ = write!(
                s,
                "; {} only in ModifiedTime, CreationTime, Version or Revision",
                plural(self.metadata_only, "row differs", "rows differ")
            );
        }
        s
    }

    /// The readable diff: a header naming the database, then `+` added, `-` removed and `~`
    /// changed values (`old → new`).
    pub fn write(&self, out: &mut String, path: &str) {
        let _ = writeln!(out, "ConfigStore rows of {path}: {}", self.summary());
        for c in &self.changes {
            match (&c.old, &c.new) {
                (None, Some(v)) => line(out, '+', &c.cell, v),
                (Some(v), None) => line(out, '-', &c.cell, v),
                (Some(o), Some(n)) => {
                    let _ = writeln!(out, "~ {}: {o} → {n}", c.cell);
                }
                (None, None) => {}
            }
        }
    }
}

fn line(out: &mut String, tag: char, cell: &Cell, v: &str) {
    if matches!(cell, Cell::Config { column: "", .. }) {
        let _ = writeln!(out, "{tag} {cell}");
    } else {
        let _ = writeln!(out, "{tag} {cell} = {v}");
    }
}

/// A cell as JSON fields (docs/harness-json.md).
pub(crate) fn cell_json(c: &Cell) -> serde_json::Map<String, serde_json::Value> {
    let v = match c {
        Cell::Config { key, column } => serde_json::json!({
            "table": "Config",
            "component": key.component,
            "group": key.group,
            "name": key.name,
            "identifier": key.identifier,
            "column": column,
        }),
        Cell::Kv(k) => serde_json::json!({"table": "KVTable", "key": k}),
    };
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esxi_sim::clock::DEFAULT_EPOCH;

    fn store(rows: &[(&str, &str)]) -> ConfigStore {
        let mut s = ConfigStore::new();
        for (name, v) in rows {
            s.set(
                Key::new("esx", "g", name, ""),
                Column::User,
                Some(v),
                "1.0",
                DEFAULT_EPOCH,
            );
        }
        s
    }

    #[test]
    fn rows_added_removed_and_changed_are_told_apart() {
        let a = store(&[("keep", "1"), ("gone", "2"), ("edit", "3")]);
        let b = store(&[("keep", "1"), ("edit", "4"), ("new", "5")]);
        let d = compare(Some(&a), Some(&b));
        assert_eq!((d.rows_added, d.rows_removed, d.rows_changed), (1, 1, 1));
        let mut out = String::new();
        d.write(&mut out, "db");
        assert_eq!(
            out,
            "ConfigStore rows of db: 1 row added, 1 removed, 1 changed\n\
             ~ esx/g/edit user_value: 3 → 4\n\
             - esx/g/gone user_value = 2\n\
             + esx/g/new user_value = 5\n"
        );
        assert!(compare(Some(&a), Some(&a)).is_empty());
        // No store on one side: every row is added.
        let d = compare(None, Some(&b));
        assert_eq!((d.rows_added, d.changes.len()), (3, 3));
    }

    #[test]
    fn equal_values_with_other_times_are_metadata_only() {
        let a = store(&[("x", "1")]);
        let mut b = a.clone();
        let later = DEFAULT_EPOCH.plus(std::time::Duration::from_secs(60));
        let k = Key::new("esx", "g", "x", "");
        b.set(k.clone(), Column::User, Some("2"), "1.0", later);
        b.set(k, Column::User, Some("1"), "1.0", later);
        let d = compare(Some(&a), Some(&b));
        assert!(d.changes.is_empty());
        assert_eq!(d.metadata_only, 1);
        assert!(
            d.summary().contains("1 row differs only"),
            "{}",
            d.summary()
        );
    }
}
