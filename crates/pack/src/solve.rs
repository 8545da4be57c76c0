//! The packing pipeline: lower bounds → constructive portfolio → improvement, with a report.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::bounds::{compiled_bounds, LowerBounds};
use crate::heuristics::{construct, portfolio, Heuristic};
use crate::improve::{improve, repair, ImproveOptions, ImproveStats};
use crate::instance::{Instance, InstanceError, Solution};
use crate::state::{Compiled, NONE};

/// The bin of an item that could not be placed (see [`SolveOptions::allow_unplaced`]).
pub const UNPLACED: usize = NONE;

/// Which constructive heuristics run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Constructive {
    /// Every variant of [`Heuristic::all`].
    All,
    /// [`Heuristic::fast`]: for large instances.
    Fast,
    /// Exactly these.
    Only(Vec<Heuristic>),
}

/// Options of [`solve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolveOptions {
    pub constructive: Constructive,
    /// `None` = constructive only.
    pub improve: Option<ImproveOptions>,
    /// With listed bins, return the best partial packing instead of an error when some items
    /// could not be placed (they are listed in [`PackResult::unplaced`] and have bin
    /// [`UNPLACED`] in the solution).
    pub allow_unplaced: bool,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            constructive: Constructive::All,
            improve: Some(ImproveOptions::default()),
            allow_unplaced: false,
        }
    }
}

impl SolveOptions {
    /// One heuristic, no improvement (e.g. plain FFD).
    pub fn only(h: Heuristic) -> Self {
        SolveOptions { constructive: Constructive::Only(vec![h]), improve: None, allow_unplaced: false }
    }
    /// The full pipeline with a time budget and seed.
    pub fn with_budget(time_limit: Duration, seed: u64) -> Self {
        SolveOptions {
            constructive: Constructive::All,
            improve: Some(ImproveOptions { time_limit: Some(time_limit), seed, ..ImproveOptions::default() }),
            allow_unplaced: false,
        }
    }
}

/// The result of [`solve`]: the packing and how good it is known to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackResult {
    pub solution: Solution,
    /// Items left out (only with [`SolveOptions::allow_unplaced`]).
    pub unplaced: Vec<usize>,
    /// Total cost of the bins used (= bins used with unit costs).
    pub cost: f64,
    pub bins_used: usize,
    pub bounds: LowerBounds,
    /// `bounds.best`.
    pub lower_bound: f64,
    /// `(cost − lower_bound) / lower_bound` (0 when the bound is 0).
    pub gap: f64,
    /// True when the cost equals the lower bound (proven optimal).
    pub optimal: bool,
    /// The constructive heuristic whose packing the improvement started from.
    pub constructive: String,
    pub constructive_cost: f64,
    pub improve: ImproveStats,
    /// Wall-clock time of the whole call.
    pub time: Duration,
}

/// Packs `instance`: computes the lower bounds, runs the constructive portfolio, improves
/// the best packing within the budget, and reports cost, bound and gap.
///
/// Fails when an item fits into no bin or when the listed bins cannot hold every item.
pub fn solve(instance: &Instance, opts: &SolveOptions) -> Result<PackResult, InstanceError> {
    let started = Instant::now();
    let c = Compiled::new(instance)?;
    let bounds = compiled_bounds(&c);
    let hs = match &opts.constructive {
        Constructive::All => {
            if c.n * c.n.min(c.m) > 20_000_000 {
                Heuristic::fast()
            } else {
                Heuristic::all()
            }
        }
        Constructive::Fast => Heuristic::fast(),
        Constructive::Only(v) if v.is_empty() => Heuristic::fast(),
        Constructive::Only(v) => v.clone(),
    };
    let (state, h) = if hs.len() == 1 { (construct(&c, hs[0]), hs[0]) } else { portfolio(&c, &hs) };
    let mut state = state;
    if !c.identical && state.assign.contains(&NONE) {
        // Listed bins can run out under a greedy order: repair with the ejection search.
        // The repair gets half of the remaining budget; the improvement the rest.
        let ro = match &opts.improve {
            Some(io) => ImproveOptions {
                time_limit: io.time_limit.map(|t| started.elapsed() + t.saturating_sub(started.elapsed()) / 2),
                ..*io
            },
            None => ImproveOptions { time_limit: Some(Duration::from_secs(1)), ..ImproveOptions::default() },
        };
        state = repair(&c, state, &ro, started);
    }
    let unplaced = state.assign.iter().filter(|&&b| b == NONE).count();
    if unplaced > 0 && !opts.allow_unplaced {
        return Err(InstanceError::OutOfBins { unplaced });
    }
    let constructive_cost = state.cost(&c);
    let (state, stats) = match &opts.improve {
        Some(io) => improve(&c, state, bounds.best, io, started),
        None => (state, ImproveStats::default()),
    };
    let cost = state.cost(&c);
    let lb = bounds.best;
    let gap = if lb > 0.0 { (cost - lb) / lb } else { 0.0 };
    Ok(PackResult {
        bins_used: state.bins_used(),
        unplaced: (0..c.n).filter(|&i| state.assign[i] == NONE).collect(),
        solution: Solution { assignment: state.assign.clone() },
        cost,
        bounds,
        lower_bound: lb,
        gap,
        optimal: cost <= lb + 1e-9,
        constructive: h.name(),
        constructive_cost,
        improve: stats,
        time: started.elapsed(),
    })
}
