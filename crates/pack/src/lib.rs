//! Zonal's consolidation engine: multi-dimensional vector bin packing with energy and
//! migration costs, ordered migration plans that never overload a host mid-way, the
//! consolidation triggers, and the benchmark harness against proven optima.
//!
//! # Map
//!
//! | module | what |
//! |---|---|
//! | [`instance`] | the vector bin packing problem ([`Instance`], [`Solution`]), target utilisation, [`validate`] |
//! | [`bounds`] | lower bounds: volume, Martello–Toth L2 per dimension, conflict clique; listed-bins bound |
//! | [`heuristics`] | constructives \[EXT\]: FFD/BFD with four size keys, dot product, norm fit, bin-centric |
//! | [`subset_fill`] | bin-centric constructive with an exact knapsack on the bottleneck dimension (openb) |
//! | [`improve`] | improvement: bin elimination by tabu search with ejections (seeded, time-budgeted) |
//! | [`mod@solve`] | the pipeline bounds → portfolio → improvement, reporting cost, bound, gap, time |
//! | [`mod@consolidate`] | consolidation of running instances: energy + migration objective, plan, [`check_plan`] |
//! | [`migration`] | ordering moves so every intermediate state fits; cycle breaking; [`check_steps`] |
//! | [`trigger`] | periodic / event / threshold triggers with hysteresis, as a pure function |
//! | [`formats`] | loaders: VPSolver `.vbp` (+ streamed `.tar.gz`), Vectorpack summaries, Alibaba openb CSV |
//! | [`mod@bench`] | the `vbp` and `openb` suites, CSV writers (used by `examples/bench.rs`) |
//!
//! # Invariants
//!
//! * The algorithms do no I/O. Loaders take readers and text ([`formats`]); only [`mod@bench`]
//!   opens files.
//! * No clock except measuring elapsed time against a caller's time budget; every result
//!   reports its time. No randomness except [`rand::rngs::SmallRng`] seeded from an explicit
//!   seed; with an iteration budget (no time budget) every run is reproducible.
//! * Every packing can be checked by [`validate`] and every migration plan by [`check_plan`] /
//!   [`check_steps`], which share no code with the algorithms that produced them.
//! * Consolidation never returns a plan whose objective exceeds the current assignment's
//!   (OPERA OP-20).
//!
//! # Modelling choices (summary; details in each module)
//!
//! * Integer vectors of any dimension; fit in every dimension; a per-bin target utilisation
//!   `t` gives the effective capacity `⌊C·t⌋` (INPUT IN-16).
//! * Demands are `i64` only to read the Triplet benchmark's negative entries faithfully.
//! * Energy: a host is on iff it runs an instance; power `idle + (max − idle)·u` with `u` the
//!   CPU utilisation by default (power curves are measured against CPU load), or the
//!   maximum over dimensions on request.
//! * Objective of consolidation: watts after + `λ_move` per move + `λ_GiB` per GiB of
//!   memory moved (the migration cost of OPERA §6, INPUT IN-17), under a budget of moves and
//!   bytes.
//! * Intermediate states of a migration respect *physical* capacity; the final state
//!   respects the target utilisation on every host that receives an instance.
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
pub mod subset_fill;
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
pub use subset_fill::{Opening, Prefer};
pub use trigger::{decide, Decision, Observation, Reason, TriggerConfig, TriggerState};
