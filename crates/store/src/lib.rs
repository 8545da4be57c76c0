//! Zonal's durable state behind one small trait.
//!
//! A [`Store`] holds named tables of string keys to JSON values. It has three primitive
//! operations — read one key, list the keys under a prefix, and commit a batch of writes
//! atomically — and [`StoreExt`] layers typed helpers (`get`, `put`, `delete`, `list`) on top
//! of them for every backend.
//!
//! Design choices:
//! * **Durable before acknowledged.** [`Store::commit`] returns only once the batch is on
//!   disk (redb's `Durability::Immediate`, an fsync per commit). The daemons reply to an API
//!   call only after its writes are committed, so an acknowledged write survives `kill -9`.
//! * **JSON values.** Values are the same JSON the REST API speaks, so a store can be dumped
//!   and read by people, and a schema change is a serde change, not a migration tool.
//! * **Atomic batches.** Every multi-key change (a service and its deployment record, an
//!   instance and its context entries) is one [`Batch`], committed in one transaction.
//! * **Synchronous.** The embedded backend is fast enough (tens of µs per read, one fsync per
//!   commit) that async callers call it directly; a networked backend (etcd, when the domain
//!   orchestrator is replicated) would implement the same trait.
//!
//! Backends: [`RedbStore`] (embedded, the default) and [`MemStore`] (volatile, for tests of
//! logic that is independent of durability).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, TableDefinition, TableError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A failure of the store, naming the operation, the table and key, and the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub message: String,
}

impl StoreError {
    fn new(message: impl Into<String>) -> Self {
        StoreError { message: message.into() }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put { table: String, key: String, value: Vec<u8> },
    Delete { table: String, key: String },
}

/// Writes committed together, all or none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub writes: Vec<Write>,
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }
    /// Adds a put of `value` serialised as JSON.
    pub fn put<T: Serialize + ?Sized>(mut self, table: &str, key: &str, value: &T) -> Result<Self, StoreError> {
        let value = serde_json::to_vec(value)
            .map_err(|e| StoreError::new(format!("cannot encode the value for {table}/{key} as JSON: {e}")))?;
        self.writes.push(Write::Put { table: table.to_string(), key: key.to_string(), value });
        Ok(self)
    }
    pub fn delete(mut self, table: &str, key: &str) -> Self {
        self.writes.push(Write::Delete { table: table.to_string(), key: key.to_string() });
        self
    }
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// A key/value store of named tables. Keys are strings, values JSON bytes.
pub trait Store: Send + Sync {
    /// The value of `key` in `table`, if any.
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every `(key, value)` of `table` whose key starts with `prefix`, in key order.
    fn list_raw(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Applies every write of `batch` atomically; returns once it is durable.
    fn commit(&self, batch: Batch) -> Result<(), StoreError>;
}

fn decode<T: DeserializeOwned>(table: &str, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::new(format!(
            "stored value {table}/{key} does not decode as the expected {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// Typed helpers over any [`Store`].
pub trait StoreExt: Store {
    fn get<T: DeserializeOwned>(&self, table: &str, key: &str) -> Result<Option<T>, StoreError> {
        match self.get_raw(table, key)? {
            Some(bytes) => decode(table, key, &bytes).map(Some),
            None => Ok(None),
        }
    }
    fn put<T: Serialize + ?Sized>(&self, table: &str, key: &str, value: &T) -> Result<(), StoreError> {
        self.commit(Batch::new().put(table, key, value)?)
    }
    fn delete(&self, table: &str, key: &str) -> Result<(), StoreError> {
        self.commit(Batch::new().delete(table, key))
    }
    /// Every value under `prefix` (all of `table` for `""`), in key order.
    fn list<T: DeserializeOwned>(&self, table: &str, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        self.list_raw(table, prefix)?
            .into_iter()
            .map(|(k, v)| {
                let value = decode(table, &k, &v)?;
                Ok((k, value))
            })
            .collect()
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// The embedded store: one redb file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

fn table_def(name: &str) -> TableDefinition<'_, &'static str, &'static [u8]> {
    TableDefinition::new(name)
}

impl RedbStore {
    /// Opens (creating if needed) the database file at `path`. Fails when another process
    /// holds it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::new(format!("cannot create the state directory {}: {e}", parent.display())))?;
        }
        let db = Database::create(path).map_err(|e| {
            StoreError::new(format!(
                "cannot open the store {}: {e} (is another daemon using the same state directory?)",
                path.display()
            ))
        })?;
        Ok(RedbStore { db, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, op: &str, table: &str, e: impl fmt::Display) -> StoreError {
        StoreError::new(format!("store {}: {op} in table {table:?} failed: {e}", self.path.display()))
    }
}

impl Store for RedbStore {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.fail("read", table, e))?;
        let t = match txn.open_table(table_def(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.fail("open", table, e)),
        };
        let v = t.get(key).map_err(|e| self.fail(&format!("get {key:?}"), table, e))?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    fn list_raw(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.fail("read", table, e))?;
        let t = match txn.open_table(table_def(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail("open", table, e)),
        };
        let mut out = Vec::new();
        let range = t.range(prefix..).map_err(|e| self.fail("list", table, e))?;
        for item in range {
            let (k, v) = item.map_err(|e| self.fail("list", table, e))?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(|e| self.fail("begin write", "*", e))?;
        for w in &batch.writes {
            match w {
                Write::Put { table, key, value } => {
                    let mut t = txn.open_table(table_def(table)).map_err(|e| self.fail("open", table, e))?;
                    t.insert(key.as_str(), value.as_slice())
                        .map_err(|e| self.fail(&format!("put {key:?}"), table, e))?;
                }
                Write::Delete { table, key } => {
                    let mut t = txn.open_table(table_def(table)).map_err(|e| self.fail("open", table, e))?;
                    t.remove(key.as_str()).map_err(|e| self.fail(&format!("delete {key:?}"), table, e))?;
                }
            }
        }
        txn.commit().map_err(|e| self.fail("commit", "*", e))
    }
}

/// A volatile store for tests: same semantics, nothing on disk.
#[derive(Default)]
pub struct MemStore {
    tables: Mutex<BTreeMap<String, BTreeMap<String, Vec<u8>>>>,
}

impl MemStore {
    pub fn new() -> Self {
        MemStore::default()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, Vec<u8>>>> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemStore {
    fn get_raw(&self, table: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(table).and_then(|t| t.get(key)).cloned())
    }
    fn list_raw(&self, table: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(self
            .lock()
            .get(table)
            .map(|t| {
                t.range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }
    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut tables = self.lock();
        for w in batch.writes {
            match w {
                Write::Put { table, key, value } => {
                    tables.entry(table).or_default().insert(key, value);
                }
                Write::Delete { table, key } => {
                    if let Some(t) = tables.get_mut(&table) {
                        t.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rec {
        name: String,
        n: u32,
    }

    fn exercise(s: &dyn Store) {
        assert_eq!(s.get::<Rec>("t", "a").unwrap(), None);
        assert!(s.list::<Rec>("t", "").unwrap().is_empty());
        s.put("t", "a/1", &Rec { name: "x".into(), n: 1 }).unwrap();
        s.put("t", "a/2", &Rec { name: "y".into(), n: 2 }).unwrap();
        s.put("t", "b/1", &Rec { name: "z".into(), n: 3 }).unwrap();
        s.put("u", "a/1", &Rec { name: "other".into(), n: 9 }).unwrap();
        let under_a: Vec<String> = s.list::<Rec>("t", "a/").unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(under_a, ["a/1", "a/2"]);
        assert_eq!(s.list::<Rec>("t", "").unwrap().len(), 3);
        s.delete("t", "a/1").unwrap();
        assert_eq!(s.get::<Rec>("t", "a/1").unwrap(), None);
        s.delete("t", "missing").unwrap();
        s.delete("never-created", "k").unwrap();
        let batch = Batch::new()
            .put("t", "c", &Rec { name: "c".into(), n: 4 })
            .unwrap()
            .delete("t", "b/1")
            .put("v", "k", &"text")
            .unwrap();
        s.commit(batch).unwrap();
        assert_eq!(s.get::<Rec>("t", "c").unwrap().map(|r| r.n), Some(4));
        assert_eq!(s.get::<Rec>("t", "b/1").unwrap(), None);
        assert_eq!(s.get::<String>("v", "k").unwrap().as_deref(), Some("text"));
        let err = s.get::<Rec>("v", "k").unwrap_err();
        assert!(err.message.contains("v/k"), "{err}");
    }

    #[test]
    fn mem_store_semantics() {
        exercise(&MemStore::new());
    }

    #[test]
    fn redb_store_semantics() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&RedbStore::open(&dir.path().join("state.redb")).unwrap());
    }

    #[test]
    fn redb_writes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            s.put("services", "epg", &Rec { name: "epg".into(), n: 1 }).unwrap();
            s.commit(
                Batch::new()
                    .put("services", "web", &Rec { name: "web".into(), n: 2 })
                    .unwrap()
                    .delete("services", "epg"),
            )
            .unwrap();
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.get::<Rec>("services", "epg").unwrap(), None);
        assert_eq!(s.get::<Rec>("services", "web").unwrap(), Some(Rec { name: "web".into(), n: 2 }));
    }

    #[test]
    fn second_open_is_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let _first = RedbStore::open(&path).unwrap();
        let err = RedbStore::open(&path).err().expect("second open must fail");
        assert!(err.message.contains("another daemon"), "{err}");
    }
}
