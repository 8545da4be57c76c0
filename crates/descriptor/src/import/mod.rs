//! Importers for real-world datasets: each turns a file format into Zonal model documents and
//! reports what it had to merge, drop or guess.

use std::fmt;

/// What an importer did besides the plain conversion: merged parallel links, dropped
/// self-loops, imputed coordinates, skipped rows. Shown to the user by `zonal inspect`/`convert`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    pub notes: Vec<String>,
}

/// An importer failure, located as precisely as the format allows.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ImportError {}
