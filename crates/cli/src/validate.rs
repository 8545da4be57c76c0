//! `zonal validate FILE...`

use std::path::PathBuf;

use zonal_descriptor::{load_paths, Loaded};

use crate::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// Descriptor or dataset files, read together (cross-references are checked across them).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Loads and cross-checks `files`; on any problem prints every diagnostic to stderr and
/// fails with a one-line summary.
pub fn load_valid(files: &[PathBuf]) -> Result<Loaded, Failure> {
    let loaded = load_paths(files);
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    if loaded.is_valid() {
        return Ok(loaded);
    }
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let n = loaded.diagnostics.len();
    Err(Failure::new(1, format!("{n} error{} found; nothing was used", if n == 1 { "" } else { "s" })))
}

pub fn run(args: Args) -> Result<(), Failure> {
    let loaded = load_valid(&args.files)?;
    for (doc, source) in loaded.bundle.documents.iter().zip(&loaded.sources) {
        println!("{}: ok ({} {})", source.file, doc.kind(), doc.name());
    }
    Ok(())
}
