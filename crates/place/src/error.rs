//! Typed errors of the placement core.
//!
//! Every error says *what* went wrong, *where* (service, region, zone, component, host or
//! link names) and *what was expected*. An infeasible model is never reported bare: it
//! carries [`InfeasibilityReason`]s naming the family of constraints that cannot be met and
//! the subjects involved (see [`crate::solver`] for how they are found).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The family of constraints an infeasibility belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintFamily {
    /// Zone slot capacity, host resource capacity or link bandwidth.
    Capacity,
    /// Latency bounds: FUSION's R_max, a channel's max latency, an INPUT proximity class.
    Latency,
    /// FUSION's TOTAL_COST budget (constraint 13).
    Budget,
    /// Total demand above total capacity.
    Demand,
    /// Placement constraints: allowed/avoided zones, required features, pins, affinity.
    Placement,
    /// No network path between two zones that must be joined.
    Connectivity,
    /// Nothing more specific could be found.
    Other,
}

impl fmt::Display for ConstraintFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConstraintFamily::Capacity => "capacity",
            ConstraintFamily::Latency => "latency",
            ConstraintFamily::Budget => "budget",
            ConstraintFamily::Demand => "demand",
            ConstraintFamily::Placement => "placement",
            ConstraintFamily::Connectivity => "connectivity",
            ConstraintFamily::Other => "other",
        })
    }
}

/// One reason why a model has no solution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfeasibilityReason {
    pub family: ConstraintFamily,
    /// The names involved, most specific last (e.g. `["video", "region-7"]`).
    pub subject: Vec<String>,
    pub detail: String,
}

impl fmt::Display for InfeasibilityReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.family, self.subject.join(" / "), self.detail)
    }
}

/// Errors of the placement core.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlaceError {
    /// The input cannot be turned into a problem (unknown names, impossible values).
    #[error("invalid input at {at}: {detail}")]
    Input { at: String, detail: String },
    /// The constraints cannot all be met; `reasons` says which and for whom.
    #[error("infeasible: {}", join_reasons(.reasons))]
    Infeasible { reasons: Vec<InfeasibilityReason> },
    /// The solver failed or stopped without a solution.
    #[error("solver: {detail}")]
    Solver { detail: String },
}

fn join_reasons(reasons: &[InfeasibilityReason]) -> String {
    if reasons.is_empty() {
        return "no reason found".to_string();
    }
    reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl PlaceError {
    pub(crate) fn input(at: impl Into<String>, detail: impl Into<String>) -> Self {
        PlaceError::Input { at: at.into(), detail: detail.into() }
    }
    /// The reasons of an infeasibility (empty for other errors).
    pub fn reasons(&self) -> &[InfeasibilityReason] {
        match self {
            PlaceError::Infeasible { reasons } => reasons,
            _ => &[],
        }
    }
    /// True when one of the reasons is of `family` and names `subject` among its subjects.
    pub fn names(&self, family: ConstraintFamily, subject: &str) -> bool {
        self.reasons().iter().any(|r| r.family == family && r.subject.iter().any(|s| s == subject))
    }
}

pub(crate) fn reason(family: ConstraintFamily, subject: Vec<String>, detail: impl Into<String>) -> InfeasibilityReason {
    InfeasibilityReason { family, subject, detail: detail.into() }
}
