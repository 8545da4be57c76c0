//! `zonal backup FILE` and `zonal restore FILE --state DIR`.
//!
//! * `zonal backup FILE` saves a consistent snapshot of the running domain
//!   (`GET /1.0/backup`, admin) to FILE; `--store PATH` instead reads a store file of a
//!   daemon that is stopped (a domain's `domain.redb` or a zone's `zone.redb`). The file is
//!   written beside FILE, checked whole (format, counts, SHA-256), made 0600 and only then
//!   renamed to FILE: a FILE that exists is always a complete backup.
//! * `zonal restore FILE --state DIR` checks the backup whole, then writes a new store in DIR
//!   (`domain.redb` or `zone.redb`, as the backup's header says) while its daemon is stopped.
//!   An existing store is replaced only with `--force`, and kept beside it
//!   (`….replaced-<time>`); a store in use is never replaced.
//!
//! The file format is `zonal_store::backup` (JSON lines).

use std::io::Write;
use std::path::{Path, PathBuf};

use zonal_store::backup::{self, Header};
use zonal_store::files;

use crate::common::Conn;
use crate::{Failure, Output};

#[derive(clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (it must not exist, unless --force).
    pub file: PathBuf,
    /// Back up this store file of a stopped daemon (domain.redb or zone.redb) instead of the
    /// running domain.
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
    /// With --store: whose store it is (default: from the file name, domain.redb or zone.redb).
    #[arg(long, value_parser = ["domain", "zone"])]
    pub kind: Option<String>,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub conn: Conn,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup file (written by `zonal backup`).
    pub file: PathBuf,
    /// The state directory of the daemon to restore (its daemon must be stopped), e.g. the
    /// domain's `--state`, or `<zonal up --state>/domain`.
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// Replace the store there (it is kept beside it as `<file>.replaced-<time>`).
    #[arg(long)]
    pub force: bool,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The temporary file a backup is written to before it is checked and renamed to `file`.
fn partial_path(file: &Path) -> PathBuf {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    file.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

pub fn backup(args: BackupArgs) -> Result<(), Failure> {
    crate::common::init_logging("warn");
    if args.file.exists() && !args.force {
        return Err(Failure::new(
            1,
            format!("{} exists: pass --force to replace it, or name another file", args.file.display()),
        ));
    }
    if args.store.is_none() && args.kind.is_some() {
        return Err(Failure::new(2, "--kind goes with --store (a running domain's backup says it is a domain's)"));
    }
    let partial = partial_path(&args.file);
    let _ = std::fs::remove_file(&partial);
    let result = write_partial(&args, &partial).and_then(|()| {
        let verified = backup::verify_file(&partial).map_err(|e| Failure::new(1, e))?;
        std::fs::rename(&partial, &args.file)
            .map_err(|e| Failure::new(1, format!("cannot write {}: {e}", args.file.display())))?;
        Ok(verified)
    });
    let verified = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let size = std::fs::metadata(&args.file).map(|m| m.len()).unwrap_or(0);
    match args.output {
        Output::Json => crate::common::print_json(&serde_json::json!({
            "file": args.file,
            "store": verified.header.store,
            "name": verified.header.name,
            "created_ms": verified.header.created_ms,
            "tables": verified.end.tables,
            "rows": verified.end.rows,
            "sha256": verified.end.sha256,
            "bytes": size,
        })),
        Output::Table => println!(
            "backup of {} {:?}: {} tables, {} rows, {size} bytes, sha256 {} → {}",
            verified.header.store,
            verified.header.name,
            verified.end.tables,
            verified.end.rows,
            verified.end.sha256,
            args.file.display()
        ),
    }
    Ok(())
}

/// Writes the backup to `partial` (0600): from the running domain, or from a store file.
fn write_partial(args: &BackupArgs, partial: &Path) -> Result<(), Failure> {
    let cannot = |e: std::io::Error| Failure::new(1, format!("cannot write {}: {e}", partial.display()));
    let mut out = std::io::BufWriter::new(files::create_new_private(partial).map_err(cannot)?);
    match &args.store {
        Some(store_path) => {
            let kind = match args.kind.as_deref() {
                Some(k) => k,
                None => match store_path.file_name().and_then(|n| n.to_str()) {
                    Some("domain.redb") => "domain",
                    Some("zone.redb") => "zone",
                    _ => {
                        return Err(Failure::new(
                            2,
                            format!(
                                "{}: say whose store this is with --kind domain|zone (the file is not named domain.redb or zone.redb)",
                                store_path.display()
                            ),
                        ))
                    }
                },
            };
            if !store_path.exists() {
                return Err(Failure::new(1, format!("{}: no such store file", store_path.display())));
            }
            let store = zonal_store::RedbStore::open(store_path).map_err(|e| {
                Failure::new(
                    1,
                    match e {
                        zonal_store::OpenError::InUse { .. } => format!(
                            "{e}; a running domain is backed up through its API (zonal backup FILE, without --store)"
                        ),
                        e => e.to_string(),
                    },
                )
            })?;
            let name = store_path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            backup::write_backup(&store, &Header::new(kind, &name), &mut out)
                .map_err(|e| Failure::new(1, e.message))?;
        }
        None => {
            let client = args.conn.client()?;
            crate::common::client_runtime()?.block_on(async {
                let mut sink = |chunk: &[u8]| out.write_all(chunk);
                client.download("/1.0/backup", &mut sink).await
            })?;
        }
    }
    let file = out.into_inner().map_err(|e| cannot(e.into_error()))?;
    file.sync_all().map_err(cannot)
}

pub fn restore(args: RestoreArgs) -> Result<(), Failure> {
    crate::common::init_logging("warn");
    let r = backup::restore(&args.file, &args.state, args.force).map_err(|e| Failure::new(1, e))?;
    match args.output {
        Output::Json => crate::common::print_json(&serde_json::json!({
            "store": r.store,
            "kept_aside": r.kept_aside,
            "from": args.file,
            "kind": r.verified.header.store,
            "name": r.verified.header.name,
            "created_ms": r.verified.header.created_ms,
            "tables": r.verified.end.tables,
            "rows": r.verified.end.rows,
        })),
        Output::Table => {
            println!(
                "restored the {} store {:?} ({} tables, {} rows, taken at {} ms) to {}",
                r.verified.header.store,
                r.verified.header.name,
                r.verified.end.tables,
                r.verified.end.rows,
                r.verified.header.created_ms,
                r.store.display()
            );
            if let Some(a) = &r.kept_aside {
                println!("the store that was there is kept as {}", a.display());
            }
            println!(
                "start the {} on {} again (its tokens are those of the backup)",
                r.verified.header.store,
                args.state.display()
            );
        }
    }
    Ok(())
}
