//! Backups: a consistent snapshot of a store as one self-describing, checksummed file, and a
//! new store written from one.
//!
//! The file is JSON lines (`zonal-backup`, version 1), readable with any JSON tool:
//!
//! ```text
//! {"format":"zonal-backup","version":1,"store":"domain","name":"zonal","created_ms":…}
//! {"table":"meta"}
//! {"key":"identity","value":{…}}
//! …
//! {"end":{"tables":8,"rows":123,"sha256":"…"}}
//! ```
//!
//! * The header says which daemon's store it is (`domain` or `zone`), hence which file a
//!   restore writes (`domain.redb`, `zone.redb`).
//! * A `table` line starts a table; the rows that follow are its, keys strictly increasing;
//!   each table appears once, in name order. A row's value is the stored JSON, byte for byte.
//! * The `end` line counts tables and rows and carries the SHA-256 (hex) of every byte before
//!   it: a backup cut short has no `end` line, a changed byte breaks the checksum, and either
//!   is refused before anything is written.
//!
//! The rows come from [`Store::export`]: one read transaction, so a backup of a running
//! daemon is a snapshot of one moment.

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{files, Batch, RedbStore, Store, StoreError, Write as StoreWrite};

/// The format's name, in every header.
pub const FORMAT: &str = "zonal-backup";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// The longest line read (a guard against a file that is not a backup).
const MAX_LINE: u64 = 256 << 20;
/// Rows committed per transaction while restoring.
const ROWS_PER_COMMIT: usize = 5_000;

/// The first line of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    /// Whose store: `domain` or `zone`.
    pub store: String,
    /// The daemon's name (the domain's or the zone's), for people.
    pub name: String,
    /// When the snapshot was taken (ms since the epoch).
    pub created_ms: u64,
}

impl Header {
    pub fn new(store: &str, name: &str) -> Header {
        let created_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Header { format: FORMAT.into(), version: VERSION, store: store.into(), name: name.into(), created_ms }
    }

    /// The store file a restore writes in a state directory.
    pub fn store_file(&self) -> Option<&'static str> {
        match self.store.as_str() {
            "domain" => Some("domain.redb"),
            "zone" => Some("zone.redb"),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableLine {
    table: String,
}

/// The counts and checksum of the last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    pub tables: u64,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    end: End,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a backup to `out`: the header, then [`Writer::row`] for every row in table and key
/// order, then [`Writer::finish`].
pub struct Writer<W: Write> {
    out: W,
    hasher: Sha256,
    table: Option<String>,
    tables: u64,
    rows: u64,
    line: Vec<u8>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &Header) -> io::Result<Self> {
        let mut w = Writer { out, hasher: Sha256::new(), table: None, tables: 0, rows: 0, line: Vec::new() };
        let text = serde_json::to_vec(header).map_err(io::Error::other)?;
        w.emit(&text)?;
        Ok(w)
    }

    fn emit(&mut self, line: &[u8]) -> io::Result<()> {
        self.hasher.update(line);
        self.hasher.update(b"\n");
        self.out.write_all(line)?;
        self.out.write_all(b"\n")
    }

    /// One row; rows must come in table order and, within a table, in key order (as
    /// [`Store::export`] gives them). The value must be JSON.
    pub fn row(&mut self, table: &str, key: &str, value: &[u8]) -> io::Result<()> {
        if self.table.as_deref() != Some(table) {
            if self.table.as_deref().is_some_and(|t| t >= table) {
                return Err(io::Error::other(format!("table {table:?} comes out of order")));
            }
            let line = serde_json::to_vec(&TableLine { table: table.to_string() }).map_err(io::Error::other)?;
            self.emit(&line)?;
            self.table = Some(table.to_string());
            self.tables += 1;
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(value) {
            return Err(io::Error::other(format!("the value of {table}/{key} is not JSON: {e}")));
        }
        // One line per row: a value with line breaks between its tokens is re-encoded.
        let reencoded;
        let value = if value.contains(&b'\n') {
            let v: serde_json::Value = serde_json::from_slice(value).map_err(io::Error::other)?;
            reencoded = serde_json::to_vec(&v).map_err(io::Error::other)?;
            &reencoded[..]
        } else {
            value
        };
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        line.extend_from_slice(b"{\"key\":");
        serde_json::to_writer(&mut line, key).map_err(io::Error::other)?;
        line.extend_from_slice(b",\"value\":");
        line.extend_from_slice(value);
        line.push(b'}');
        let result = self.emit(&line);
        self.line = line;
        self.rows += 1;
        result
    }

    /// Writes the `end` line; returns the output and the counts.
    pub fn finish(mut self) -> io::Result<(W, End)> {
        let end = End { tables: self.tables, rows: self.rows, sha256: hex(&self.hasher.clone().finalize()) };
        let line = serde_json::to_vec(&EndLine { end: end.clone() }).map_err(io::Error::other)?;
        self.out.write_all(&line)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok((self.out, end))
    }
}

/// Writes a backup of everything in `store` to `out` (one consistent snapshot).
pub fn write_backup<W: Write>(store: &dyn Store, header: &Header, out: W) -> Result<(W, End), StoreError> {
    let mut w = Writer::new(out, header).map_err(|e| StoreError::new(format!("cannot write the backup: {e}")))?;
    store.export(&mut |table, key, value| {
        w.row(table, key, value).map_err(|e| StoreError::new(format!("cannot write the backup: {e}")))
    })?;
    w.finish().map_err(|e| StoreError::new(format!("cannot write the backup: {e}")))
}

/// What a verified backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub header: Header,
    pub end: End,
}

/// Splits a row line `{"key":K,"value":V}` into the key and the value's bytes.
fn split_row(line: &[u8]) -> Result<(String, &[u8]), String> {
    let rest = line.strip_prefix(b"{\"key\":").ok_or("expected a row {\"key\": …, \"value\": …}")?;
    let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<String>();
    let key = match stream.next() {
        Some(Ok(k)) => k,
        Some(Err(e)) => return Err(format!("the key is not a JSON string: {e}")),
        None => return Err("the row has no key".into()),
    };
    let rest = &rest[stream.byte_offset()..];
    let value = rest
        .strip_prefix(b",\"value\":")
        .and_then(|v| v.strip_suffix(b"}"))
        .ok_or("expected ,\"value\": after the key and } at the end of the row")?;
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(value) {
        return Err(format!("the value of key {key:?} is not JSON: {e}"));
    }
    Ok((key, value))
}

/// Reads a backup from `input`, calling `on_row(table, key, value)` for each row, and checks
/// everything the format promises (module doc). `on_row` sees rows before the checksum is
/// known to match: a caller that writes them must discard what it wrote when this fails.
/// Errors name the line.
pub fn read_backup(
    mut input: impl BufRead,
    mut on_row: impl FnMut(&str, &str, &[u8]) -> Result<(), String>,
) -> Result<Verified, String> {
    let mut hasher = Sha256::new();
    let mut line = Vec::new();
    let mut n = 0u64;
    let mut header: Option<Header> = None;
    let mut table: Option<String> = None;
    let mut last_key: Option<String> = None;
    let (mut tables, mut rows) = (0u64, 0u64);
    loop {
        line.clear();
        let read = io::Read::take(&mut input, MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("line {}: cannot read: {e}", n + 1))?;
        if read == 0 {
            return Err(match header {
                None => "it is empty: not a backup".to_string(),
                Some(_) => {
                    format!("it ends after line {n} without its end line: the backup was cut short (or truncated)")
                }
            });
        }
        n += 1;
        let Some(body) = line.strip_suffix(b"\n") else {
            return Err(if read as u64 >= MAX_LINE {
                format!("line {n} is longer than {} MiB: not a backup", MAX_LINE >> 20)
            } else {
                format!("line {n} is cut short (no end of line): the backup was truncated")
            });
        };
        let at = |what: String| format!("line {n}: {what}");
        if header.is_none() {
            let h: Header =
                serde_json::from_slice(body).map_err(|e| at(format!("expected the header of a {FORMAT} file: {e}")))?;
            if h.format != FORMAT {
                return Err(at(format!("format {:?}, expected {FORMAT:?}", h.format)));
            }
            if h.version != VERSION {
                return Err(at(format!("version {}, this zonal reads version {VERSION}", h.version)));
            }
            if h.store_file().is_none() {
                return Err(at(format!("store {:?}, expected \"domain\" or \"zone\"", h.store)));
            }
            header = Some(h);
        } else if body.starts_with(b"{\"end\":") {
            let e: EndLine = serde_json::from_slice(body).map_err(|e| at(format!("a malformed end line: {e}")))?;
            let sha = hex(&hasher.clone().finalize());
            if e.end.sha256 != sha {
                return Err(at(format!(
                    "the checksum does not match: the file says sha256 {}, its content has {sha}: the backup was changed or damaged",
                    e.end.sha256
                )));
            }
            if (e.end.tables, e.end.rows) != (tables, rows) {
                return Err(at(format!(
                    "the end line counts {} tables and {} rows, the file has {tables} and {rows}",
                    e.end.tables, e.end.rows
                )));
            }
            let mut extra = [0u8; 1];
            if io::Read::read(&mut input, &mut extra).map_err(|e| at(format!("cannot read: {e}")))? != 0 {
                return Err(at("there is more after the end line: not one backup".into()));
            }
            let header = header.ok_or_else(|| at("no header".into()))?;
            return Ok(Verified { header, end: e.end });
        } else if body.starts_with(b"{\"table\":") {
            let t: TableLine = serde_json::from_slice(body).map_err(|e| at(format!("a malformed table line: {e}")))?;
            if table.as_ref().is_some_and(|prev| *prev >= t.table) {
                return Err(at(format!("table {:?} is out of order or repeated", t.table)));
            }
            table = Some(t.table);
            last_key = None;
            tables += 1;
        } else {
            let Some(current) = table.as_deref() else {
                return Err(at("a row before any table line".into()));
            };
            let (key, value) = split_row(body).map_err(at)?;
            if last_key.as_ref().is_some_and(|prev| *prev >= key) {
                return Err(at(format!("key {key:?} of table {current:?} is out of order or repeated")));
            }
            on_row(current, &key, value).map_err(at)?;
            last_key = Some(key);
            rows += 1;
        }
        hasher.update(&line);
    }
}

/// Reads and checks the backup file at `path` without writing anything.
pub fn verify_file(path: &Path) -> Result<Verified, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read the backup {}: {e}", path.display()))?;
    read_backup(io::BufReader::new(f), |_, _, _| Ok(())).map_err(|e| format!("backup {}: {e}", path.display()))
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub verified: Verified,
    /// The store file written.
    pub store: PathBuf,
    /// Where the store that was there before is kept (with `force`).
    pub kept_aside: Option<PathBuf>,
}

/// Writes a new store in `state_dir` from the backup at `backup` (the file the header names:
/// `domain.redb` or `zone.redb`). The backup is verified whole first; then the store is
/// written beside the target and renamed into place, so a failure leaves the directory as it
/// was. An existing store is replaced only with `force`, and is then kept as
/// `<file>.replaced-<ms>`; a store in use (its daemon running) is never replaced.
pub fn restore(backup: &Path, state_dir: &Path, force: bool) -> Result<Restored, String> {
    let verified = verify_file(backup)?;
    let file = verified.header.store_file().ok_or("the backup names no store file")?;
    let target = state_dir.join(file);
    // Held until the new store is in place: the daemon cannot start on the old one meanwhile.
    let _lock = if target.exists() {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .open(&target)
            .map_err(|e| format!("cannot read the existing store {}: {e}", target.display()))?;
        if !crate::lock_exclusive(&f).map_err(|e| format!("cannot lock {}: {e}", target.display()))? {
            return Err(format!(
                "the store {} is in use: stop its {} daemon first, then restore",
                target.display(),
                verified.header.store
            ));
        }
        if !force {
            return Err(format!(
                "{} exists: restoring would replace it; pass --force to replace it (it is then kept as {}.replaced-<time>)",
                target.display(),
                target.display()
            ));
        }
        Some(f)
    } else {
        None
    };
    if let Some(left) =
        files::private_dir(state_dir).map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?
    {
        return Err(format!("{} cannot be made private (0700): {}", left.path.display(), left.why));
    }
    let tmp = state_dir.join(format!(".{file}.restoring-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = write_store(backup, &tmp, &verified);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let mut kept_aside = None;
    if target.exists() {
        let aside = PathBuf::from(format!("{}.replaced-{}", target.display(), Header::new("", "").created_ms));
        std::fs::rename(&target, &aside)
            .map_err(|e| format!("cannot move {} aside to {}: {e}", target.display(), aside.display()))?;
        let _ = files::tighten_file(&aside);
        kept_aside = Some(aside);
    }
    std::fs::rename(&tmp, &target)
        .map_err(|e| format!("cannot put the store in place at {}: {e}", target.display()))?;
    if let Ok(dir) = std::fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    Ok(Restored { verified, store: target, kept_aside })
}

/// Writes the backup's rows into a new store at `path` (checked again while read).
fn write_store(backup: &Path, path: &Path, verified: &Verified) -> Result<(), String> {
    let store = RedbStore::open(path).map_err(|e| e.to_string())?;
    let f = std::fs::File::open(backup).map_err(|e| format!("cannot read the backup {}: {e}", backup.display()))?;
    let mut batch = Batch::new();
    let mut failed: Option<String> = None;
    let again = read_backup(io::BufReader::new(f), |table, key, value| {
        batch.writes.push(StoreWrite::Put { table: table.to_string(), key: key.to_string(), value: value.to_vec() });
        if batch.writes.len() >= ROWS_PER_COMMIT {
            store.commit(std::mem::take(&mut batch)).map_err(|e| {
                failed = Some(e.to_string());
                e.to_string()
            })?;
        }
        Ok(())
    })
    .map_err(|e| failed.take().unwrap_or_else(|| format!("backup {}: {e}", backup.display())))?;
    if again != *verified {
        return Err(format!("backup {} changed while it was restored", backup.display()));
    }
    store.commit(batch).map_err(|e| e.to_string())?;
    let mut rows = 0u64;
    store
        .export(&mut |_, _, _| {
            rows += 1;
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    if rows != verified.end.rows {
        return Err(format!("the new store holds {rows} rows, the backup {}", verified.end.rows));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemStore, StoreExt};

    fn sample() -> MemStore {
        let s = MemStore::new();
        s.put("meta", "identity", &serde_json::json!({"id": "d1", "name": "zonal"})).unwrap();
        s.put("users", "admin", &serde_json::json!({"role": "admin"})).unwrap();
        s.put("users", "acme", &serde_json::json!({"role": "provider", "note": "line\nbreak \"quoted\""})).unwrap();
        s.put("services", "web", &serde_json::json!({"manifest": "kind: Service\nname: web\n", "n": 1})).unwrap();
        s
    }

    fn backup_of(s: &dyn Store) -> Vec<u8> {
        write_backup(s, &Header::new("domain", "zonal"), Vec::new()).unwrap().0
    }

    fn rows_of(s: &dyn Store) -> Vec<(String, String, Vec<u8>)> {
        let mut out = Vec::new();
        s.export(&mut |t, k, v| {
            out.push((t.to_string(), k.to_string(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn a_backup_reads_back_row_for_row_and_byte_for_byte() {
        let s = sample();
        let bytes = backup_of(&s);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"format\":\"zonal-backup\",\"version\":1,\"store\":\"domain\""), "{text}");
        assert_eq!(text.lines().count(), 1 + 3 + 4 + 1, "header, 3 tables, 4 rows, end:\n{text}");
        let mut back = Vec::new();
        let v = read_backup(&bytes[..], |t, k, val| {
            back.push((t.to_string(), k.to_string(), val.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!((v.end.tables, v.end.rows), (3, 4));
        assert_eq!(back, rows_of(&s));
    }

    #[test]
    fn damaged_or_cut_backups_are_refused_naming_the_line() {
        let bytes = backup_of(&sample());
        let text = String::from_utf8(bytes.clone()).unwrap();
        let err = |b: &[u8]| read_backup(b, |_, _, _| Ok(())).unwrap_err();
        // One changed byte in a value: the checksum.
        let changed = text.replace("\"provider\"", "\"admin\u{20}\u{20}\"");
        assert!(err(changed.as_bytes()).contains("checksum does not match"), "{}", err(changed.as_bytes()));
        // Cut short: no end line, or a line cut in two.
        let lines: Vec<&str> = text.lines().collect();
        let cut = lines[..lines.len() - 1].join("\n") + "\n";
        assert!(err(cut.as_bytes()).contains("cut short"), "{}", err(cut.as_bytes()));
        let half = &bytes[..bytes.len() / 2];
        let e = err(half);
        assert!(e.contains("truncated") || e.contains("cut short"), "{e}");
        // Not a backup at all.
        assert!(err(b"").contains("empty"));
        assert!(err(b"hello\n").contains("line 1: expected the header"), "{}", err(b"hello\n"));
        let v2 = text.replacen("\"version\":1", "\"version\":2", 1);
        assert!(err(v2.as_bytes()).contains("version 2"), "{}", err(v2.as_bytes()));
        // Something after the end.
        let more = format!("{text}{{\"table\":\"x\"}}\n");
        assert!(err(more.as_bytes()).contains("more after the end line"), "{}", err(more.as_bytes()));
    }

    #[test]
    fn restore_writes_a_new_store_and_replaces_an_existing_one_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.zonal-backup");
        std::fs::write(&file, backup_of(&sample())).unwrap();
        let state = dir.path().join("state");
        let r = restore(&file, &state, false).unwrap();
        assert_eq!(r.store, state.join("domain.redb"));
        assert_eq!(crate::files::mode_of(&r.store).unwrap(), 0o600);
        assert_eq!(crate::files::mode_of(&state).unwrap(), 0o700);
        {
            let s = RedbStore::open(&r.store).unwrap();
            assert_eq!(rows_of(&s), rows_of(&sample()));
        }
        // An existing store: refused without --force, nothing changed.
        let before = std::fs::read(&r.store).unwrap();
        let e = restore(&file, &state, false).unwrap_err();
        assert!(e.contains("--force"), "{e}");
        assert_eq!(std::fs::read(&r.store).unwrap(), before);
        // A store in use: refused even with --force.
        {
            let _open = RedbStore::open(&r.store).unwrap();
            let e = restore(&file, &state, true).unwrap_err();
            assert!(e.contains("in use"), "{e}");
        }
        // With --force: replaced, the old one kept aside.
        let r2 = restore(&file, &state, true).unwrap();
        let aside = r2.kept_aside.expect("kept aside");
        assert_eq!(std::fs::read(&aside).unwrap(), before);
        assert_eq!(crate::files::mode_of(&aside).unwrap(), 0o600);
        // A damaged backup writes nothing.
        let bad = dir.path().join("bad");
        let mut bytes = backup_of(&sample());
        let n = bytes.len();
        bytes[n / 2] ^= 0x20;
        std::fs::write(&bad, bytes).unwrap();
        let fresh = dir.path().join("fresh");
        assert!(restore(&bad, &fresh, false).is_err());
        assert!(!fresh.join("domain.redb").exists());
    }
}
