//! The zone manager's typed error. The logic returns it; only `api.rs` turns it into an HTTP
//! status and `{error, detail}` body (`impl From<ZoneError> for ApiError` there).

use std::fmt;

use zonal_descriptor::ManifestError;

/// What went wrong, by kind; each carries the sentence for people (what, where, expected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneError {
    /// No such service, instance, offer, move or namespace key.
    NotFound(String),
    /// The request is well-formed but conflicts with what the zone holds or does now.
    Conflict(String),
    /// The request is malformed or names something this zone does not have.
    Invalid(String),
    /// A manifest was refused: a summary and every diagnostic.
    InvalidManifest { summary: String, diagnostics: Vec<String> },
    /// The caller may not do this (an instance speaking for another, or outside its namespace).
    Forbidden(String),
    /// Well-formed, but this zone cannot act on it (for example, nothing to offer).
    Unprocessable(String),
    /// Something the zone relies on does not answer (an instance's admin API).
    Unavailable(String),
    /// The zone's store failed.
    Store(String),
}

impl ZoneError {
    /// A failed store operation, worded the same way everywhere.
    pub fn store(e: impl fmt::Display) -> Self {
        ZoneError::Store(format!("the zone's store failed: {e}"))
    }

    /// The sentence for people.
    pub fn detail(&self) -> &str {
        match self {
            ZoneError::NotFound(d)
            | ZoneError::Conflict(d)
            | ZoneError::Invalid(d)
            | ZoneError::Forbidden(d)
            | ZoneError::Unprocessable(d)
            | ZoneError::Unavailable(d)
            | ZoneError::Store(d) => d,
            ZoneError::InvalidManifest { summary, .. } => summary,
        }
    }
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for ZoneError {}

impl From<zonal_store::StoreError> for ZoneError {
    fn from(e: zonal_store::StoreError) -> Self {
        ZoneError::store(e)
    }
}

impl From<ManifestError> for ZoneError {
    fn from(e: ManifestError) -> Self {
        ZoneError::InvalidManifest { diagnostics: e.diagnostic_lines(), summary: e.summary }
    }
}
