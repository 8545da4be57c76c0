//! The check an existing store file passes before a daemon uses it.
//!
//! redb opens an empty file as a new database, and may panic on a file that is truncated or
//! overwritten. So before [`crate::RedbStore::open`] hands an existing file to redb it is
//! read whole into memory and opened *there* (a [`MemBackend`]: whatever redb's recovery
//! writes stays in memory, so a damaged file is left exactly as it was found for whoever
//! looks at it next), every table is walked and every value must be JSON. That runs on its
//! own thread, with its panics silenced and caught and a time limit, so a damaged file ends
//! in a [`Damage`] — one line saying what is wrong — and never in a panic or a hang.
//!
//! A file a crash left behind (`kill -9` between commits) passes: redb's recovery repairs
//! its allocator state from committed data, which loses nothing acknowledged.

use std::cell::Cell;
use std::io;
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use redb::{Builder, MultimapTableHandle, ReadableTable, StorageBackend, TableDefinition, TableHandle};

/// redb's file signature (its first nine bytes).
pub const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// How long the check may take before the file is called unusable.
const CHECK_TIME_LIMIT: Duration = Duration::from_secs(60);

/// What is wrong with a store file, as one clause ("is empty (0 bytes)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage(pub String);

/// A redb storage backend over bytes in memory (see the module doc).
#[derive(Debug)]
pub struct MemBackend {
    data: RwLock<Vec<u8>>,
}

impl MemBackend {
    pub fn new(data: Vec<u8>) -> Self {
        MemBackend { data: RwLock::new(data) }
    }
}

fn poisoned() -> io::Error {
    io::Error::other("the in-memory copy of the store is poisoned")
}

impl StorageBackend for MemBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.data.read().map_err(|_| poisoned())?.len() as u64)
    }

    fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, io::Error> {
        let data = self.data.read().map_err(|_| poisoned())?;
        let start = usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let end = start.checked_add(len).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        data.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("bytes {start}..{end} asked for, but the file has {} bytes", data.len()),
            )
        })
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        self.data.write().map_err(|_| poisoned())?.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> Result<(), io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), io::Error> {
        let mut data = self.data.write().map_err(|_| poisoned())?;
        let start = usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        let end = start.checked_add(bytes.len()).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        Ok(())
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Installs (once) a panic hook that says nothing for threads that asked for quiet, and
/// defers to the previous hook for every other thread.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// Tables found and rows read by a successful check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checked {
    pub tables: usize,
    pub rows: u64,
    /// redb ran its recovery (the file was not closed cleanly: the daemon was killed).
    pub recovered: bool,
}

/// Checks the bytes of an existing store file (see the module doc).
pub fn check_bytes(bytes: Vec<u8>) -> Result<Checked, Damage> {
    if bytes.is_empty() {
        return Err(Damage("is empty (0 bytes)".into()));
    }
    if bytes.len() < REDB_MAGIC.len() || bytes[..REDB_MAGIC.len()] != REDB_MAGIC {
        return Err(Damage(format!(
            "does not start with redb's file signature (its first {} bytes are not a store's)",
            REDB_MAGIC.len()
        )));
    }
    install_quiet_hook();
    let size = bytes.len();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("store-check".into()).spawn(move || {
        QUIET.with(|q| q.set(true));
        let outcome = std::panic::catch_unwind(move || walk(bytes)).unwrap_or_else(|p| {
            let text = panic_text(p.as_ref());
            Err(Damage(if text.contains("raw_file_len") {
                format!("is truncated: {size} bytes, shorter than the layout its header records")
            } else {
                format!("is damaged: redb cannot read it ({text})")
            }))
        });
        let _ = tx.send(outcome);
    });
    if let Err(e) = spawned {
        return Err(Damage(format!("cannot be checked: no thread for the check ({e})")));
    }
    match rx.recv_timeout(CHECK_TIME_LIMIT) {
        Ok(outcome) => outcome,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Damage(format!(
            "could not be read within {} s ({size} bytes): it is damaged",
            CHECK_TIME_LIMIT.as_secs()
        ))),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(Damage("cannot be read: the check ended without an answer".into()))
        }
    }
}

/// Opens the bytes with redb in memory and reads every row of every table.
fn walk(bytes: Vec<u8>) -> Result<Checked, Damage> {
    let size = bytes.len();
    let repaired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = repaired.clone();
    let mut builder = Builder::new();
    builder.set_repair_callback(move |_| flag.store(true, std::sync::atomic::Ordering::Relaxed));
    let mut db = builder.create_with_backend(MemBackend::new(bytes)).map_err(|e| match e {
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) if io.kind() == io::ErrorKind::UnexpectedEof => {
            Damage(format!("is truncated: {size} bytes, shorter than the store it starts ({io})"))
        }
        e => Damage(format!("is not a readable store ({size} bytes): {e}")),
    })?;
    let before = read_all(&db)?;
    // Every page's checksum. `Ok(false)` means redb repaired something (on this in-memory
    // copy): after a crash that is its allocator state, rebuilt from committed data, and every
    // row reads as before; a damaged page instead makes it fall back to an earlier commit,
    // which changes the rows — that is refused, since it would drop acknowledged writes.
    let integrity = db.check_integrity();
    let recovered = repaired.load(std::sync::atomic::Ordering::Relaxed);
    match integrity {
        Ok(true) => Ok(Checked { tables: before.tables, rows: before.rows, recovered }),
        Ok(false) if read_all(&db)? == before => {
            Ok(Checked { tables: before.tables, rows: before.rows, recovered: true })
        }
        Ok(false) => Err(Damage(
            "fails redb's integrity check: pages whose checksums do not match (damaged on disk); \
             its repair would fall back to an earlier commit"
                .into(),
        )),
        Err(e) => Err(Damage(format!("fails redb's integrity check: {e}"))),
    }
}

/// What a store holds, in brief: its tables, rows and a digest of every name, key and value.
#[derive(Debug, PartialEq, Eq)]
struct Contents {
    tables: usize,
    rows: u64,
    digest: u64,
}

/// Reads every row of every table; each value must be JSON.
fn read_all(db: &redb::Database) -> Result<Contents, Damage> {
    use std::hash::{Hash, Hasher};
    let bad = |what: &str, e: &dyn std::fmt::Display| Damage(format!("is damaged: {what}: {e}"));
    let txn = db.begin_read().map_err(|e| bad("cannot begin a read", &e))?;
    if let Some(t) = txn.list_multimap_tables().map_err(|e| bad("cannot list tables", &e))?.next() {
        return Err(Damage(format!("is not a Zonal store: it has a multimap table {:?}", t.name())));
    }
    let names: Vec<String> =
        txn.list_tables().map_err(|e| bad("cannot list tables", &e))?.map(|t| t.name().to_string()).collect();
    let mut rows = 0u64;
    // A fixed-key hasher: the same contents give the same digest within this process.
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    for name in &names {
        let def: TableDefinition<'_, &'static str, &'static [u8]> = TableDefinition::new(name);
        let table = txn.open_table(def).map_err(|e| bad(&format!("table {name:?}"), &e))?;
        name.hash(&mut digest);
        for item in table.iter().map_err(|e| bad(&format!("table {name:?}"), &e))? {
            let (k, v) = item.map_err(|e| bad(&format!("table {name:?}"), &e))?;
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(v.value()) {
                return Err(Damage(format!("is damaged: the value of {name}/{} is not JSON ({e})", k.value())));
            }
            k.value().hash(&mut digest);
            v.value().hash(&mut digest);
            rows += 1;
        }
    }
    Ok(Contents { tables: names.len(), rows, digest: digest.finish() })
}
