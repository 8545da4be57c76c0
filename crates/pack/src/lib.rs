//! Zonal's consolidation engine (placeholder docs, expanded below).

pub mod bench;
pub mod bounds;
pub mod formats;
pub mod heuristics;
pub mod improve;
pub mod instance;
pub mod solve;
mod state;

pub use bounds::{lower_bounds, LowerBounds};
pub use heuristics::{BinScore, Heuristic, Rule, SizeKey, Weights};
pub use improve::{ImproveOptions, ImproveStats};
pub use instance::{validate, Bin, BinSupply, Instance, InstanceError, Solution, Violation};
pub use solve::{solve, Constructive, PackResult, SolveOptions};
