//! Zonal's optimisation core: exact formulations and the heuristics that scale past them.
//!
//! Pure library code: data in, decision out. No file or network I/O (one exception, for
//! benchmarks: [`solver::GoodLpModel::write_model_file`] writes a model to the path its
//! caller names, so that a peer solver can read the same formulation), no clock except to
//! measure solve time (and the heuristic's optional time budget), no unseeded randomness. Every algorithm returns the same [`plan::Plan`] type, and
//! every plan can be verified by the independent [`check::check`].
//!
//! | module | what |
//! |---|---|
//! | [`solver`] | LP/MIP over good_lp + HiGHS: [`solver::SolverOptions`], [`solver::SolveStats`] (status, objective, bound, gap, time, size, iterations), direct sparse builder with warm re-solves ([`solver::LpBuilder`], [`solver::LpSession`]) and good_lp models ([`solver::GoodLpModel`]) |
//! | [`problem`] | [`problem::Problem::from_bundle`]: latencies region→zone and zone→zone, slot capacity, deploy and bandwidth cost per slot-hour |
//! | [`plan`] | [`plan::Plan`]: placements, assignments, channel paths, objective terms, bound, gap, stats |
//! | [`check`] | [`check::check`]: capacity, paths, latency, proximity, pins, coverage, affinity, features; recomputed objective terms; [`check::check_within_budget`]: and the FUSION budget |
//! | [`fusion`] | FUSION two-step max-min utility LP, cost/utility curve, service selection, rounding into instances |
//! | [`chain`] | INPUT service-chain ILP: hosts and unsplittable loop-free paths, delay / used-servers objectives, sequences of subscriptions |
//! | [`heuristic`] | greedy + local search for chains and composites (k-shortest-path routing with bandwidth reservation), LP-relaxation or combinatorial bound and gap |
//! | [`single`] | the single-component fast path: precomputed filters, then fit + latency score over every host |
//! | [`auto`] | [`auto::plan_bundle`]: each service by the algorithm its description calls for, sharing capacity, checked as one plan |
//! | [`decide`] | the run-time decision pipeline: one service on the live state (residual capacity, profiles, offers, route, solve, check, switching-cost gate, diff) |
//! | [`switching`] | Superfluidity's switching-cost-aware chain placement (OCM) with gather/distribute baselines |
//! | [`profiles`] | OPERA workload tags → knowledge-base profiles ranked by an efficiency model |
//! | [`error`] | [`error::PlaceError`]; infeasibility is always explained by [`error::InfeasibilityReason`]s |
//!
//! Each module's documentation states its modelling choices where the seeds are vague.

// Unsafe code is refused everywhere but in `solver`'s calls into HiGHS's C API (changing
// costs and bounds, adding columns and rows to a live model for warm column generation,
// writing a model file), which the `highs` crate does not expose.
#![deny(unsafe_code)]

pub mod auto;
pub mod chain;
pub mod check;
pub mod decide;
pub mod error;
pub mod fusion;
pub mod heuristic;
pub mod plan;
pub mod problem;
pub mod profiles;
pub mod rng;
pub mod single;
pub mod solver;
pub mod switching;

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod testkit;

pub use check::{check, check_within_budget, CheckReport, Violation, ViolationKind};
pub use error::{ConstraintFamily, InfeasibilityReason, PlaceError};
pub use plan::{Assignment, ChannelPath, Placement, Plan, PlanStatus};
pub use problem::{Problem, ProblemOptions};
pub use solver::{LpMethod, SolveStats, SolveStatus, SolverOptions};
