//! The ConfigStore of ESXi 7.0 and later (facts section 6.3): a SQLite database whose `Config`
//! table holds the configuration as JSON values keyed by component / config group / name /
//! identifier. Live at `/etc/vmware/configstore/current-store-1`, persisted inside `local.tgz` as
//! `var/lib/vmware/configstore/backup/current-store-1` (next to `datafile-store`).
//!
//! The host keeps the store as rows in memory ([`ConfigStore`]); its SQLite bytes are made when
//! a save needs them ([`ConfigStore::to_sqlite`]): real SQLite (rusqlite's bundled library), the
//! real schema text, page size 4,096, `user_version` 2, rollback journal, rows inserted in key
//! order with their times from the virtual clock. The bytes depend on the rows only, never on
//! the store's history, so a store changed and changed back saves nothing (auto-backup's diff).
//!
//! [`ConfigStore::from_sqlite`] reads untrusted databases (a restored bundle): size-capped,
//! only a real `Config` *table* is read (a view could loop), with a bound on the work SQLite
//! may do, and every failure is a [`StoreError`], never a panic.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use rusqlite::{Connection, OpenFlags, MAIN_DB};

use crate::clock::SimTime;
use crate::host::etc::Bytes;

/// Where local.tgz carries the store (facts section 6.3).
pub const BACKUP_PATH: &str = "var/lib/vmware/configstore/backup/current-store-1";
/// Its companion: one empty `DataFileMetadata` table.
pub const DATAFILE_PATH: &str = "var/lib/vmware/configstore/backup/datafile-store";

/// The real schema, statement by statement as `sqlite_master` holds it (facts section 6.3).
const SCHEMA: &[&str] = &[
    "CREATE TABLE DesiredUserConfig(Component TEXT,ConfigGroup TEXT,Name TEXT,Value TEXT,Identifier TEXT NOT NULL DEFAULT '',Version TEXT DEFAULT '',Success BOOLEAN DEFAULT 1,PRIMARY KEY(Component, ConfigGroup, Name, Identifier))",
    "CREATE TABLE DefaultConfig(Component TEXT,ConfigGroup TEXT,Name TEXT,Value TEXT,Identifier TEXT NOT NULL DEFAULT '',Source INTEGER,ModifiedTime DATETIME DEFAULT (datetime(CURRENT_TIMESTAMP)),CreationTime DATETIME,Version TEXT DEFAULT '',Success BOOLEAN DEFAULT 1,PRIMARY KEY(Component, ConfigGroup, Name, Identifier))",
    "CREATE TABLE KVTable(Key TEXT, Value TEXT, ModifiedTime DATETIME DEFAULT (datetime(CURRENT_TIMESTAMP)),CreationTime DATETIME,PRIMARY KEY(Key))",
    "CREATE TABLE UpgradeStatus(Component TEXT,ConfigGroup TEXT,Name TEXT,Value TEXT,Identifier TEXT NOT NULL DEFAULT '',ModifiedTime DATETIME DEFAULT (datetime(CURRENT_TIMESTAMP)),CreationTime DATETIME,Version TEXT DEFAULT '',Success BOOLEAN DEFAULT 1, LibName TEXT, PRIMARY KEY(LibName))",
    "CREATE TABLE Config(Component TEXT,ConfigGroup TEXT,Name TEXT,Identifier TEXT NOT NULL DEFAULT '',ModifiedTime DATETIME DEFAULT (datetime(CURRENT_TIMESTAMP)),CreationTime DATETIME,Version TEXT DEFAULT '',Success BOOLEAN DEFAULT 1,AutoConfValue TEXT, UserValue TEXT, VitalValue TEXT, CachedValue TEXT, DesiredValue TEXT, Revision INTEGER DEFAULT 0, PRIMARY KEY(Component, ConfigGroup, Name, Identifier))",
    "CREATE TRIGGER updateModifiedTime AFTER UPDATE ON Config BEGIN UPDATE Config SET ModifiedTime=(datetime(CURRENT_TIMESTAMP)) WHERE Name=NEW.Name and Component=NEW.Component and ConfigGroup=New.ConfigGroup and Identifier=NEW.Identifier; END",
    "CREATE TRIGGER updateRevision AFTER UPDATE OF AutoConfValue,UserValue,VitalValue,CachedValue ON Config BEGIN UPDATE Config SET Revision=OLD.Revision + 1 WHERE Name=NEW.Name and Component=NEW.Component and ConfigGroup=New.ConfigGroup and Identifier=NEW.Identifier; END",
];

/// Largest store read from a bundle (the real one is 135 KiB).
pub const MAX_DB_BYTES: usize = 8 << 20;
/// Most rows read from one table.
const MAX_ROWS: usize = 100_000;
/// Largest value (one JSON document) SQLite may hand back.
const MAX_VALUE: i32 = 1 << 20;

/// A row's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub component: String,
    pub group: String,
    pub name: String,
    /// `''` for singletons, a name (`vmnic0`) or a VMware-style id.
    pub identifier: String,
}

impl Key {
    pub fn new(component: &str, group: &str, name: &str, identifier: &str) -> Key {
        Key {
            component: component.into(),
            group: group.into(),
            name: name.into(),
            identifier: identifier.into(),
        }
    }
}

impl fmt::Display for Key {
    /// `esx/network/vmknics/vmk0` (the identifier left out when empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.component, self.group, self.name)?;
        if !self.identifier.is_empty() {
            write!(f, "/{}", self.identifier)?;
        }
        Ok(())
    }
}

/// Which value column of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    AutoConf,
    User,
    Vital,
    Cached,
    Desired,
}

impl Column {
    pub const ALL: [Column; 5] = [
        Column::AutoConf,
        Column::User,
        Column::Vital,
        Column::Cached,
        Column::Desired,
    ];
    /// The name dissect.target gives it (`user_value`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Column::AutoConf => "auto_conf_value",
            Column::User => "user_value",
            Column::Vital => "vital_value",
            Column::Cached => "cached_value",
            Column::Desired => "desired_value",
        }
    }
}

/// One `Config` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub created: SimTime,
    pub modified: SimTime,
    pub version: String,
    pub success: bool,
    /// JSON text per value column (None: NULL).
    pub values: [Option<Arc<str>>; 5],
    pub revision: i64,
}

impl Row {
    pub fn value(&self, c: Column) -> Option<&str> {
        self.values[c as usize].as_deref()
    }
}

/// What a store shares with others: the rows of the image a host was installed from.
#[derive(Debug, PartialEq, Eq)]
struct Base {
    rows: BTreeMap<Key, Row>,
    kv: BTreeMap<String, (String, SimTime)>,
    defaults: BTreeMap<Key, (String, SimTime)>,
    /// Tells bases apart (the SQLite connections holding a base are cached by it).
    id: u64,
}

/// The store: `Config` rows, `KVTable` entries, `DefaultConfig` rows. A host's store is its
/// image's (shared) with the rows it changed on top, as its `/etc` is (`etc.rs`): cheap to
/// clone, and a host owns only what differs.
#[derive(Clone, Debug)]
pub struct ConfigStore {
    base: Arc<Base>,
    /// Rows that differ from the base (None: removed).
    overlay: Arc<BTreeMap<Key, Option<Row>>>,
    /// KVTable and DefaultConfig when they differ from the base (rare).
    kv: Option<Arc<BTreeMap<String, (String, SimTime)>>>,
    defaults: Option<Arc<BTreeMap<Key, (String, SimTime)>>>,
    /// Bumped on every change that alters the rows.
    generation: u64,
    /// Names this exact content (equal tokens, equal rows): what an archive keeps instead of
    /// the database bytes to know it already holds them.
    token: u64,
}

fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl PartialEq for ConfigStore {
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token
            || (self.iter().eq(other.iter())
                && self.kv() == other.kv()
                && self.defaults() == other.defaults())
    }
}

/// A store that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigStore: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError(e.to_string())
}

impl Default for ConfigStore {
    fn default() -> Self {
        ConfigStore::new()
    }
}

impl ConfigStore {
    pub fn new() -> ConfigStore {
        ConfigStore::from_parts(BTreeMap::new(), BTreeMap::new(), BTreeMap::new())
    }

    fn from_parts(
        rows: BTreeMap<Key, Row>,
        kv: BTreeMap<String, (String, SimTime)>,
        defaults: BTreeMap<Key, (String, SimTime)>,
    ) -> ConfigStore {
        ConfigStore {
            base: Arc::new(Base {
                rows,
                kv,
                defaults,
                id: next_id(),
            }),
            overlay: Arc::default(),
            kv: None,
            defaults: None,
            generation: 0,
            token: next_id(),
        }
    }

    /// This store as a base other stores share (an image's): its rows become the base, the
    /// overlay empty. Clones of the result share it.
    pub fn into_base(self) -> ConfigStore {
        let rows: BTreeMap<Key, Row> = self.iter().map(|(k, r)| (k.clone(), r.clone())).collect();
        ConfigStore::from_parts(rows, self.kv().clone(), self.defaults().clone())
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Names this content: stores with equal tokens have equal rows.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// When a row last changed (its ModifiedTime): the time a save gives the database file.
    pub fn last_modified(&self) -> SimTime {
        let rows = self.iter().map(|(_, r)| r.modified);
        let kv = self.kv().values().map(|(_, t)| *t);
        rows.chain(kv).max().unwrap_or_default()
    }

    /// Every row in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Row)> + '_ {
        merge(&self.base.rows, &self.overlay)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    pub fn get(&self, key: &Key) -> Option<&Row> {
        match self.overlay.get(key) {
            Some(o) => o.as_ref(),
            None => self.base.rows.get(key),
        }
    }

    /// The JSON value of one column, parsed.
    pub fn json(&self, key: &Key, c: Column) -> Option<serde_json::Value> {
        serde_json::from_str(self.get(key)?.value(c)?).ok()
    }

    fn changed(&mut self) {
        self.generation += 1;
        self.token = next_id();
    }

    fn put(&mut self, key: Key, row: Option<Row>) {
        let overlay = Arc::make_mut(&mut self.overlay);
        if self.base.rows.get(&key) == row.as_ref() {
            overlay.remove(&key);
        } else {
            overlay.insert(key, row);
        }
        self.changed();
    }

    /// Sets one value column of a row (creating the row with `version` if it is new), as
    /// configstorecli's `set` does: the row's ModifiedTime moves and its Revision goes up by
    /// one when a value changes (the real schema's triggers). Setting the value it already has
    /// changes nothing at all. Returns whether it changed.
    pub fn set(
        &mut self,
        key: Key,
        column: Column,
        json: Option<&str>,
        version: &str,
        now: SimTime,
    ) -> bool {
        let value: Option<Arc<str>> = json.map(Arc::from);
        let row = match self.get(&key) {
            Some(r) if r.values[column as usize] == value => return false,
            None if value.is_none() => return false,
            Some(r) => {
                let mut r = r.clone();
                r.values[column as usize] = value;
                r.modified = now;
                r.revision += 1;
                r
            }
            None => {
                let mut values: [Option<Arc<str>>; 5] = Default::default();
                values[column as usize] = value;
                Row {
                    created: now,
                    modified: now,
                    version: version.to_string(),
                    success: true,
                    values,
                    revision: 0,
                }
            }
        };
        self.put(key, Some(row));
        true
    }

    /// Removes a row; returns whether it existed.
    pub fn remove(&mut self, key: &Key) -> bool {
        if self.get(key).is_none() {
            return false;
        }
        self.put(key.clone(), None);
        true
    }

    /// Rows whose key starts with component / group / name.
    pub fn rows_of<'a>(
        &'a self,
        component: &'a str,
        group: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a Key, &'a Row)> + 'a {
        self.iter()
            .filter(move |(k, _)| k.component == component && k.group == group && k.name == name)
    }

    pub fn kv(&self) -> &BTreeMap<String, (String, SimTime)> {
        self.kv.as_deref().unwrap_or(&self.base.kv)
    }

    pub fn set_kv(&mut self, key: &str, value: &str, now: SimTime) {
        if self.kv().get(key).is_some_and(|(v, _)| v == value) {
            return;
        }
        let mut kv = self.kv().clone();
        kv.insert(key.into(), (value.into(), now));
        self.kv = Some(Arc::new(kv));
        self.changed();
    }

    pub fn defaults(&self) -> &BTreeMap<Key, (String, SimTime)> {
        self.defaults.as_deref().unwrap_or(&self.base.defaults)
    }

    pub fn set_default(&mut self, key: Key, json: &str, now: SimTime) {
        if self.defaults().get(&key).is_some_and(|(v, _)| v == json) {
            return;
        }
        let mut d = self.defaults().clone();
        d.insert(key, (json.into(), now));
        self.defaults = Some(Arc::new(d));
        self.changed();
    }

    /// Heap bytes this store holds beyond what it shares with its base.
    pub fn owned_bytes(&self) -> usize {
        self.overlay
            .iter()
            .map(|(k, r)| {
                k.component.len()
                    + k.group.len()
                    + k.name.len()
                    + k.identifier.len()
                    + 160
                    + r.as_ref()
                        .map_or(0, |r| r.values.iter().flatten().map(|v| v.len()).sum())
            })
            .sum::<usize>()
            + self.kv.as_ref().map_or(0, |k| k.len() * 96)
            + self.defaults.as_ref().map_or(0, |d| d.len() * 160)
    }

    // ---- SQLite ----------------------------------------------------------------------------

    /// The store as a SQLite database file. Its bytes depend on the base and the rows only:
    /// the base's rows are inserted once per thread into a database kept open, and each store
    /// on that base is that database with its own changes applied inside a savepoint, written
    /// out, and rolled back (a fraction of building the file from nothing). The same rows on the
    /// same base always give the same bytes.
    pub fn to_sqlite(&self) -> Bytes {
        thread_local! {
            static CONNS: std::cell::RefCell<Vec<(u64, Connection)>> =
                const { std::cell::RefCell::new(Vec::new()) };
        }
        CONNS.with(|cell| {
            let mut conns = cell.borrow_mut();
            let at = match conns.iter().position(|(id, _)| *id == self.base.id) {
                Some(i) => i,
                None => {
                    let conn = schema_connection();
                    insert_all(
                        &conn,
                        self.base.rows.iter(),
                        &self.base.kv,
                        &self.base.defaults,
                    );
                    if conns.len() >= 8 {
                        conns.remove(0);
                    }
                    conns.push((self.base.id, conn));
                    conns.len() - 1
                }
            };
            let conn = &conns[at].1;
            conn.execute_batch("SAVEPOINT store")
                .expect("a savepoint in memory");
            let mut del = conn
                .prepare_cached(
                    "DELETE FROM Config WHERE Component=?1 AND ConfigGroup=?2 AND Name=?3 AND Identifier=?4",
                )
                .expect("the Config delete");
            for (k, row) in self.overlay.iter() {
                del.execute(rusqlite::params![k.component, k.group, k.name, k.identifier])
                    .expect("deleting in memory");
                if let Some(r) = row {
                    insert_rows(conn, std::iter::once((k, r)));
                }
            }
            drop(del);
            if self.kv.is_some() {
                conn.execute_batch("DELETE FROM KVTable").expect("in memory");
                insert_kv(conn, self.kv());
            }
            if self.defaults.is_some() {
                conn.execute_batch("DELETE FROM DefaultConfig")
                    .expect("in memory");
                insert_defaults(conn, self.defaults());
            }
            let bytes: Bytes = Arc::from(
                conn.serialize(MAIN_DB)
                    .expect("serializing an in-memory database")
                    .to_vec()
                    .into_boxed_slice(),
            );
            conn.execute_batch("ROLLBACK TO store; RELEASE store")
                .expect("rolling back in memory");
            bytes
        })
    }

    /// Reads an untrusted ConfigStore database.
    pub fn from_sqlite(bytes: &[u8]) -> Result<ConfigStore, StoreError> {
        if bytes.len() > MAX_DB_BYTES {
            return Err(StoreError(format!(
                "{} bytes is more than the {MAX_DB_BYTES} a store may have",
                bytes.len()
            )));
        }
        if bytes.len() < 100 || &bytes[..16] != b"SQLite format 3\0" {
            return Err(StoreError("not a SQLite database".into()));
        }
        let mut conn = Connection::open_with_flags(
            ":memory:",
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql_err)?;
        conn.deserialize_read_exact(MAIN_DB, bytes, bytes.len(), true)
            .map_err(sql_err)?;
        harden(&conn)?;
        let tables: Vec<(String, String)> = {
            let mut st = conn
                .prepare("SELECT name, type FROM sqlite_master")
                .map_err(sql_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(sql_err)?;
            rows.take(10_000)
                .collect::<Result<_, _>>()
                .map_err(sql_err)?
        };
        let is_table = |n: &str| tables.iter().any(|(name, ty)| name == n && ty == "table");
        if !is_table("Config") {
            return Err(StoreError("no Config table".into()));
        }
        let mut rows_map: BTreeMap<Key, Row> = BTreeMap::new();
        let mut kv_map: BTreeMap<String, (String, SimTime)> = BTreeMap::new();
        let mut defaults_map: BTreeMap<Key, (String, SimTime)> = BTreeMap::new();
        {
            let mut st = conn
                .prepare(
                    "SELECT Component,ConfigGroup,Name,Identifier,ModifiedTime,CreationTime,\
                     Version,Success,AutoConfValue,UserValue,VitalValue,CachedValue,DesiredValue,\
                     Revision FROM Config",
                )
                .map_err(sql_err)?;
            let mut q = st.query([]).map_err(sql_err)?;
            let rows = &mut rows_map;
            while let Some(r) = q.next().map_err(sql_err)? {
                if rows.len() >= MAX_ROWS {
                    return Err(StoreError(format!("more than {MAX_ROWS} Config rows")));
                }
                let text = |i: usize| -> Result<String, StoreError> {
                    Ok(r.get::<_, Option<String>>(i)
                        .map_err(sql_err)?
                        .unwrap_or_default())
                };
                let key = Key {
                    component: text(0)?,
                    group: text(1)?,
                    name: text(2)?,
                    identifier: text(3)?,
                };
                let mut values: [Option<Arc<str>>; 5] = Default::default();
                for (slot, i) in values.iter_mut().zip(8..13) {
                    *slot = r
                        .get::<_, Option<String>>(i)
                        .map_err(sql_err)?
                        .map(Arc::from);
                }
                let row = Row {
                    modified: parse_sql_time(&text(4)?),
                    created: parse_sql_time(&text(5)?),
                    version: text(6)?,
                    success: r
                        .get::<_, Option<bool>>(7)
                        .map_err(sql_err)?
                        .unwrap_or(true),
                    values,
                    revision: r.get::<_, Option<i64>>(13).map_err(sql_err)?.unwrap_or(0),
                };
                rows.insert(key, row);
            }
        }
        if is_table("KVTable") {
            let mut st = conn
                .prepare("SELECT Key, Value, ModifiedTime FROM KVTable")
                .map_err(sql_err)?;
            let mut q = st.query([]).map_err(sql_err)?;
            let kv = &mut kv_map;
            while let Some(r) = q.next().map_err(sql_err)? {
                if kv.len() >= MAX_ROWS {
                    return Err(StoreError(format!("more than {MAX_ROWS} KVTable rows")));
                }
                let k: Option<String> = r.get(0).map_err(sql_err)?;
                let v: Option<String> = r.get(1).map_err(sql_err)?;
                let t: Option<String> = r.get(2).map_err(sql_err)?;
                kv.insert(
                    k.unwrap_or_default(),
                    (
                        v.unwrap_or_default(),
                        parse_sql_time(&t.unwrap_or_default()),
                    ),
                );
            }
        }
        if is_table("DefaultConfig") {
            let mut st = conn
                .prepare(
                    "SELECT Component,ConfigGroup,Name,Identifier,Value,ModifiedTime FROM DefaultConfig",
                )
                .map_err(sql_err)?;
            let mut q = st.query([]).map_err(sql_err)?;
            let d = &mut defaults_map;
            while let Some(r) = q.next().map_err(sql_err)? {
                if d.len() >= MAX_ROWS {
                    return Err(StoreError(format!(
                        "more than {MAX_ROWS} DefaultConfig rows"
                    )));
                }
                let t = |i: usize| -> Result<String, StoreError> {
                    Ok(r.get::<_, Option<String>>(i)
                        .map_err(sql_err)?
                        .unwrap_or_default())
                };
                d.insert(
                    Key::new(&t(0)?, &t(1)?, &t(2)?, &t(3)?),
                    (t(4)?, parse_sql_time(&t(5)?)),
                );
            }
        }
        Ok(ConfigStore::from_parts(rows_map, kv_map, defaults_map))
    }

    /// Readable lines, one per row and value column: `esx/network/vmknics/vmk0 user_value =
    /// {...}` (what `esxi-harness inspect` prints and `diff` compares, never the raw database).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, r) in self.iter() {
            let mut any = false;
            for c in Column::ALL {
                if let Some(v) = r.value(c) {
                    out.push(format!("{k} {} = {v}", c.name()));
                    any = true;
                }
            }
            if !any {
                out.push(format!("{k} (no value)"));
            }
        }
        for (k, (v, _)) in self.kv().iter() {
            out.push(format!("KVTable {k} = {v}"));
        }
        out
    }
}

/// The ConfigStore's `datafile-store`: one empty `DataFileMetadata` table (facts 6.3), the same
/// bytes for every host.
pub fn datafile_store() -> Bytes {
    static B: OnceLock<Bytes> = OnceLock::new();
    B.get_or_init(|| {
        let conn = Connection::open_in_memory().expect("an in-memory database");
        conn.execute_batch(
            "PRAGMA page_size=4096; PRAGMA user_version=1; \
             CREATE TABLE IF NOT EXISTS \"DataFileMetadata\" (Component TEXT NOT NULL,Key TEXT NOT NULL,DirName TEXT NOT NULL,FileName TEXT NOT NULL,PRIMARY KEY (Component, Key, DirName, FileName));",
        )
        .expect("the datafile-store schema");
        Arc::from(
            conn.serialize(MAIN_DB)
                .expect("serializing an in-memory database")
                .to_vec()
                .into_boxed_slice(),
        )
    })
    .clone()
}

/// Inserts rows, KVTable and DefaultConfig entries in key order, in one transaction.
fn insert_all<'a>(
    conn: &Connection,
    rows: impl Iterator<Item = (&'a Key, &'a Row)>,
    kv: &BTreeMap<String, (String, SimTime)>,
    defaults: &BTreeMap<Key, (String, SimTime)>,
) {
    conn.execute_batch("BEGIN")
        .expect("a transaction in memory");
    insert_rows(conn, rows);
    insert_kv(conn, kv);
    insert_defaults(conn, defaults);
    conn.execute_batch("COMMIT").expect("a commit in memory");
}

fn insert_rows<'a>(conn: &Connection, rows: impl Iterator<Item = (&'a Key, &'a Row)>) {
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO Config(Component,ConfigGroup,Name,Identifier,ModifiedTime,\
             CreationTime,Version,Success,AutoConfValue,UserValue,VitalValue,CachedValue,\
             DesiredValue,Revision) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
        )
        .expect("the Config insert");
    for (k, r) in rows {
        let v = |c: Column| r.values[c as usize].as_deref();
        ins.execute(rusqlite::params![
            k.component,
            k.group,
            k.name,
            k.identifier,
            sql_time(r.modified),
            sql_time(r.created),
            r.version,
            r.success,
            v(Column::AutoConf),
            v(Column::User),
            v(Column::Vital),
            v(Column::Cached),
            v(Column::Desired),
            r.revision,
        ])
        .expect("inserting into an in-memory database");
    }
}

fn insert_kv(conn: &Connection, kv: &BTreeMap<String, (String, SimTime)>) {
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO KVTable(Key,Value,ModifiedTime,CreationTime) VALUES(?1,?2,?3,?3)",
        )
        .expect("the KVTable insert");
    for (k, (v, t)) in kv {
        ins.execute(rusqlite::params![k, v, sql_time(*t)])
            .expect("inserting into an in-memory database");
    }
}

fn insert_defaults(conn: &Connection, defaults: &BTreeMap<Key, (String, SimTime)>) {
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO DefaultConfig(Component,ConfigGroup,Name,Value,Identifier,Source,\
             ModifiedTime,CreationTime,Version,Success) VALUES(?1,?2,?3,?4,?5,0,?6,?6,'1.0',1)",
        )
        .expect("the DefaultConfig insert");
    for (k, (v, t)) in defaults {
        ins.execute(rusqlite::params![
            k.component,
            k.group,
            k.name,
            v,
            k.identifier,
            sql_time(*t)
        ])
        .expect("inserting into an in-memory database");
    }
}

/// An in-memory database with the store's schema and nothing else. (Not a deserialized
/// template: SQLite writes a deserialized database's pages to its buffer only at commit, and a
/// store is written out from inside a savepoint.)
fn schema_connection() -> Connection {
    let conn = Connection::open_in_memory().expect("an in-memory database");
    conn.execute_batch("PRAGMA page_size=4096; PRAGMA user_version=2;")
        .expect("pragmas");
    for s in SCHEMA {
        conn.execute_batch(s).expect("the ConfigStore schema");
    }
    conn
}

/// Limits on what an untrusted database may make SQLite do.
fn harden(conn: &Connection) -> Result<(), StoreError> {
    use rusqlite::limits::Limit;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE)
        .map_err(sql_err)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, 1 << 16)
        .map_err(sql_err)?;
    // A bound on virtual-machine steps: a crafted table cannot keep a request busy.
    let mut budget: u64 = 0;
    conn.progress_handler(
        1000,
        Some(move || {
            budget += 1;
            budget > 50_000 // ~50 M steps: far more than any real store needs
        }),
    );
    conn.execute_batch("PRAGMA trusted_schema=OFF;")
        .map_err(sql_err)
}

/// The base's rows with the overlay's on top, in key order.
fn merge<'a>(
    base: &'a BTreeMap<Key, Row>,
    overlay: &'a BTreeMap<Key, Option<Row>>,
) -> impl Iterator<Item = (&'a Key, &'a Row)> + 'a {
    let mut b = base.iter().peekable();
    let mut o = overlay.iter().peekable();
    std::iter::from_fn(move || loop {
        match (b.peek(), o.peek()) {
            (None, None) => return None,
            (Some(_), None) => return b.next(),
            (None, Some(_)) => {
                let (k, r) = o.next()?;
                if let Some(r) = r {
                    return Some((k, r));
                }
            }
            (Some((bk, _)), Some((ok, _))) => {
                if bk < ok {
                    return b.next();
                }
                let same = bk == ok;
                let (k, r) = o.next()?;
                if same {
                    b.next();
                }
                if let Some(r) = r {
                    return Some((k, r));
                }
            }
        }
    })
}

/// `YYYY-MM-DD HH:MM:SS` (SQLite's datetime()).
pub fn sql_time(t: SimTime) -> String {
    let c = t.civil();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// The inverse of [`sql_time`]; anything else is the epoch.
pub fn parse_sql_time(s: &str) -> SimTime {
    match (s.len(), s.as_bytes().get(10)) {
        (19, Some(b' ')) => {
            crate::clock::parse_rfc3339(&format!("{}T{}Z", &s[..10], &s[11..])).unwrap_or_default()
        }
        _ => SimTime::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::DEFAULT_EPOCH;

    fn sample() -> ConfigStore {
        let mut s = ConfigStore::new();
        let t = DEFAULT_EPOCH;
        s.set(
            Key::new("esx", "network", "vmknics", "vmk0"),
            Column::User,
            Some(r#"{"device":"vmk0","port_group":"Management Network"}"#),
            "1.0",
            t,
        );
        s.set(
            Key::new("esx", "system", "keyboard", ""),
            Column::User,
            Some(r#"{"layout":"US Default"}"#),
            "proposed",
            t,
        );
        s.set_kv("BOOT_MODE", "0", t);
        s.set_default(
            Key::new("esx", "attestation", "tpm2_settings", ""),
            r#"{"require_endorsement_keys":false}"#,
            t,
        );
        s
    }

    #[test]
    fn the_store_is_real_sqlite_with_the_real_schema_and_round_trips() {
        let s = sample();
        let db = s.to_sqlite();
        assert_eq!(&db[..16], b"SQLite format 3\0");
        assert_eq!(u16::from_be_bytes([db[16], db[17]]), 4096, "page size");
        assert_eq!(&db[60..64], &2u32.to_be_bytes(), "user_version 2");
        assert_eq!((db[18], db[19]), (1, 1), "rollback journal, not WAL");
        let back = ConfigStore::from_sqlite(&db).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            back.to_sqlite()[..],
            db[..],
            "bytes depend on the rows only"
        );
        let text = String::from_utf8_lossy(&db);
        assert!(text.contains("CREATE TRIGGER updateRevision AFTER UPDATE OF AutoConfValue"));
        assert_eq!(
            s.lines()[0],
            "esx/network/vmknics/vmk0 user_value = {\"device\":\"vmk0\",\"port_group\":\"Management Network\"}"
        );
        let ds = datafile_store();
        assert!(String::from_utf8_lossy(&ds).contains("DataFileMetadata"));
    }

    #[test]
    fn setting_a_value_bumps_revision_and_time_and_the_same_value_changes_nothing() {
        let mut s = sample();
        let k = Key::new("esx", "system", "keyboard", "");
        let g = s.generation();
        assert!(!s.set(
            k.clone(),
            Column::User,
            Some(r#"{"layout":"US Default"}"#),
            "x",
            DEFAULT_EPOCH
        ));
        assert_eq!(s.generation(), g);
        let later = DEFAULT_EPOCH.plus(std::time::Duration::from_secs(90));
        assert!(s.set(
            k.clone(),
            Column::User,
            Some(r#"{"layout":"German"}"#),
            "x",
            later
        ));
        let r = s.get(&k).unwrap();
        assert_eq!(
            (r.revision, r.modified, r.created),
            (1, later, DEFAULT_EPOCH)
        );
        let back = ConfigStore::from_sqlite(&s.to_sqlite()).unwrap();
        assert_eq!(back.get(&k).unwrap().modified, later);
        assert_eq!(sql_time(later), "2024-01-01 00:01:30");
        assert_eq!(parse_sql_time("2024-01-01 00:01:30"), later);
        assert_eq!(parse_sql_time("garbage"), SimTime::default());
    }

    #[test]
    fn a_store_on_a_shared_base_writes_its_own_rows() {
        let base = sample().into_base();
        let mut a = base.clone();
        let mut b = base.clone();
        let t = DEFAULT_EPOCH.plus(std::time::Duration::from_secs(60));
        a.set(
            Key::new("esx", "advanced_options", "misc", ""),
            Column::Vital,
            Some(r#"{"host_name":"a"}"#),
            "1.0",
            t,
        );
        b.set(
            Key::new("esx", "advanced_options", "misc", ""),
            Column::Vital,
            Some(r#"{"host_name":"b"}"#),
            "1.0",
            t,
        );
        b.remove(&Key::new("esx", "system", "keyboard", ""));
        for s in [&base, &a, &b, &a] {
            let db = s.to_sqlite();
            let conn = {
                let mut c = Connection::open_in_memory().unwrap();
                c.deserialize_read_exact(MAIN_DB, &db[..], db.len(), true)
                    .unwrap();
                c
            };
            let ok: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            assert_eq!(&ConfigStore::from_sqlite(&db).unwrap(), s);
        }
        assert_eq!(
            a.to_sqlite(),
            a.clone().to_sqlite(),
            "same rows, same bytes"
        );
        assert_ne!(a.to_sqlite(), b.to_sqlite());
        assert_eq!(b.len(), base.len(), "one row more, one less");
        assert_eq!(a.len(), base.len() + 1);
    }

    #[test]
    fn hostile_databases_are_errors() {
        assert!(ConfigStore::from_sqlite(b"").is_err());
        assert!(ConfigStore::from_sqlite(&[0u8; 4096]).is_err());
        assert!(ConfigStore::from_sqlite(&vec![0u8; MAX_DB_BYTES + 1]).is_err());
        let db = sample().to_sqlite();
        // Truncated, and with a page scribbled over.
        for cut in [100, 4096, db.len() - 1] {
            let _ = ConfigStore::from_sqlite(&db[..cut]); // an error or a partial read, never a panic
        }
        let mut bad = db.to_vec();
        for b in bad.iter_mut().skip(4096).take(4096) {
            *b ^= 0x5a;
        }
        let _ = ConfigStore::from_sqlite(&bad);
        // A database without the Config table, or with Config as a view.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(x); CREATE VIEW Config AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c;",
        )
        .unwrap();
        let view = conn.serialize(MAIN_DB).unwrap().to_vec();
        assert_eq!(
            ConfigStore::from_sqlite(&view),
            Err(StoreError("no Config table".into()))
        );
        // A Config table without the columns.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE Config(x);").unwrap();
        let thin = conn.serialize(MAIN_DB).unwrap().to_vec();
        assert!(ConfigStore::from_sqlite(&thin).is_err());
    }
}
