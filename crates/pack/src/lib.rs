//! Zonal's consolidation engine (placeholder docs, expanded below).
#![allow(clippy::needless_range_loop)] // index loops over dimensions read best in numeric code

pub mod bench;
pub mod bounds;
pub mod consolidate;
pub mod formats;
pub mod heuristics;
pub mod improve;
pub mod instance;
pub mod migration;
pub mod solve;
mod state;
pub mod trigger;

pub use bounds::{lower_bounds, LowerBounds};
pub use consolidate::{
    check_plan, consolidate, energy, objective, ConsHost, ConsInstance, ConsolidationError, ConsolidationOptions,
    ConsolidationPlan, ConsolidationProblem, MigrationBudget, MigrationCost, Move, PlanCheck, Utilisation,
};
pub use heuristics::{BinScore, Heuristic, Rule, SizeKey, Weights};
pub use improve::{ImproveOptions, ImproveStats};
pub use instance::{validate, validate_partial, Bin, BinSupply, Instance, InstanceError, Solution, Violation};
pub use migration::{check_steps, order_migrations, MigrationOrder, OrderInput, PlanViolation, Step};
pub use solve::{solve, Constructive, PackResult, SolveOptions, UNPLACED};
pub use trigger::{decide, Decision, Observation, Reason, TriggerConfig, TriggerState};
