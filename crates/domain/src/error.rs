//! The domain's typed error. The logic returns it; only `api.rs` turns it into an HTTP status
//! and `{error, detail}` body (`impl From<DomainError> for ApiError` there).

use std::fmt;

use zonal_descriptor::ManifestError;

/// What went wrong, by kind; each carries the sentence for people (what, where, expected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// No such user, zone, service, instance or document.
    NotFound(String),
    /// The request is well-formed but conflicts with what the domain holds or does now.
    Conflict(String),
    /// The request is malformed (a bad name, field, value or document).
    Invalid(String),
    /// A manifest was refused: a summary and every diagnostic.
    InvalidManifest { summary: String, diagnostics: Vec<String> },
    /// The caller may not do this (another owner's service, another zone's identity).
    Forbidden(String),
    /// The optimiser proved the service cannot be placed on the live state: the sentence and
    /// every reason (which constraint, component, zone or link).
    Unprocessable { detail: String, reasons: Vec<String> },
    /// No zone can take a client's session now; clients retry (resolution).
    NoSlot { why: NoSlot, detail: String },
    /// Something the domain relies on does not answer or could not be gathered (a zone, an
    /// offer round, the decision itself).
    Unavailable(String),
    /// The domain's store failed.
    Store(String),
}

/// Why resolution has no zone for a client now. Each is its own error word on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// The service is being placed (`deploying`).
    Placing,
    /// A zone of its placement is coming up, or an on-demand deployment was just started
    /// (`deploying_on_demand`).
    DeployingOnDemand,
    /// Nowhere left (`no_slots`).
    NoSlots,
}

impl NoSlot {
    /// The error word clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            NoSlot::Placing => "deploying",
            NoSlot::DeployingOnDemand => "deploying_on_demand",
            NoSlot::NoSlots => "no_slots",
        }
    }
}

impl DomainError {
    /// A failed store operation, worded the same way everywhere.
    pub fn store(e: impl fmt::Display) -> Self {
        DomainError::Store(format!("the domain's store failed: {e}"))
    }

    /// The sentence for people.
    pub fn detail(&self) -> &str {
        match self {
            DomainError::NotFound(d)
            | DomainError::Conflict(d)
            | DomainError::Invalid(d)
            | DomainError::Forbidden(d)
            | DomainError::Unavailable(d)
            | DomainError::Store(d) => d,
            DomainError::InvalidManifest { summary, .. } => summary,
            DomainError::Unprocessable { detail, .. } | DomainError::NoSlot { detail, .. } => detail,
        }
    }
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail())
    }
}

impl std::error::Error for DomainError {}

impl From<zonal_store::StoreError> for DomainError {
    fn from(e: zonal_store::StoreError) -> Self {
        DomainError::store(e)
    }
}

impl From<ManifestError> for DomainError {
    fn from(e: ManifestError) -> Self {
        DomainError::InvalidManifest { diagnostics: e.diagnostic_lines(), summary: e.summary }
    }
}
