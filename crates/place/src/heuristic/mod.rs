//! Scalable chain placement: a greedy placer, a local-search improver seeded from it, and a
//! lower bound, so that a fast answer says how good it is.
//!
//! It solves the same problem as [`crate::chain`] (same candidate hosts, same constraints, same
//! objective), so the two are directly comparable and `zonal plan --algorithm auto` can pick
//! either.
//!
//! # Greedy
//!
//! 1. **Candidates** are the chain ILP's own ([`crate::chain`]'s pre-filter: allowed and
//!    avoided zones, pins, required features, proximity class, hosts reserved for user-side
//!    components, residual capacity), narrowed for affinity groups to the zones every member
//!    can use.
//! 2. **Order**: breadth-first over the channel graph from the fixed (user-side) components,
//!    so each component is placed after the one it talks to ("dependency order"); components
//!    not connected to a fixed one follow in declaration order.
//! 3. **Look-ahead**: the breadth-first tree gives a tree dynamic programme over candidate zones
//!    with shortest-path delays, ignoring capacity: `togo[t][z]` is the least delay of
//!    t's subtree when t sits in zone z. A component is put on the candidate host minimising
//!    *routed delay to its placed neighbours + togo + weight of the host if newly used*, so with
//!    spare capacity the greedy finds the delay optimum of a tree-shaped chain in one pass.
//! 4. **Routing**: each channel whose ends are placed takes the fastest of the `k` shortest
//!    loop-free paths (Yen's algorithm on the zone graph, cached per zone pair) that has the
//!    bandwidth left in both directions (a symmetric pair reserves its reverse bandwidth on the
//!    reverse arcs) and meets the channel's max latency; when none of the `k` does, a
//!    bandwidth-filtered shortest path. Bandwidth is reserved as routes are chosen.
//!
//! 5. **Depth-first fallback**: when the greedy gets stuck in both of its orders (pinned
//!    components first, then fewest candidates first), a depth-first search with domains of
//!    zones kept arc consistent (latency reach over shortest paths, a host that still fits,
//!    and a route with the bandwidth left to every placed neighbour), most constrained
//!    component first, hosts in the greedy's ranking, within 5,000 host tries. Dense meshes
//!    under tight delay bounds need it (VNMP's VoIP slices: an early choice can leave a later
//!    component no host within reach of all its neighbours, often because the bandwidth left
//!    on the fast paths is gone); the plan's notes say when it was used.
//!
//! 6. **Segment programme** (path-shaped chains, such as INPUT's, with a delay weight): a second
//!    start that cuts the path into contiguous segments, one zone each, each fitting the free
//!    capacity of its zone's candidate hosts, minimising the shortest-path delay between
//!    consecutive segments (a dynamic programme over (component, zone), `O(n² Z²)`). It sees the
//!    capacity the tree look-ahead ignores; the better of the two starts goes to local search.
//!
//! # Local search
//!
//! First-improvement over five neighbourhoods, chosen by a seeded SplitMix64 generator:
//! *move* a component to another candidate host, *swap* the hosts of two components,
//! *shift* a connected run of components sharing a zone to another zone, *merge* every
//! component of one used host onto another, *re-route* a channel. Each move releases and
//! re-routes the channels it touches and is kept only when the objective strictly improves, so
//! the result is never worse than the greedy one. It stops after `max_iterations`, after a run
//! of non-improving moves, or when the optional time budget is spent; without a time budget the
//! result depends only on the input and the seed.
//!
//! # Objective
//!
//! Identical to the chain ILP's (see [`crate::chain`]): `w_delay × Σ channel path delay`
//! (a symmetric pair counts twice) `+ w_servers × Σ used host weight`, with a host's weight
//! `100 × free CPU before the chain / CPU capacity`.
//!
//! # Bound
//!
//! `bound ≤` the optimum of the chain ILP over the same candidates; `gap = (objective − bound) /
//! objective`. Two bounds, the larger reported (the plan's notes say which):
//! * **LP relaxation** of the chain ILP, when its estimated size is at most
//!   [`HeuristicOptions::lp_bound_max_binaries`] (or always / never, see [`BoundMethod`]).
//! * **Combinatorial**: delay — the larger of two: the tree dynamic programme above (the
//!   optimum with unlimited capacity and bandwidth, over a spanning tree of the channel graph,
//!   so dropped channels count 0), and, for path-shaped chains, the **covering walk**
//!   (`walk.rs`): the least length, over shortest-path delays, of a walk from a zone of the
//!   first component to a zone of the last that visits a set of zones whose candidate hosts'
//!   free capacity holds the chain (every component's candidate zones met; for every group of
//!   components with the same candidate zones, their total demand within those zones), times
//!   the least route multiplicity; A* over (zones visited, last zone) with the delay to a
//!   pinned end as estimate, 200,000 expansions at most (then the least open key). It is a
//!   bound because any feasible plan's channel delays are at least the shortest-path delays
//!   between its components' zones, that sum is a walk through the plan's zones, shortcutting
//!   repeated zones (triangle inequality) leaves a path through them no longer, and those
//!   zones satisfy the cover conditions; the full argument is in `walk.rs`. Used servers —
//!   the lightest set of hosts that contains a candidate host of
//!   every component and whose free capacity covers the chain's total demand of each
//!   resource (bin packing relaxed to a cover), by best-first branch and bound whose node
//!   bound is the cheapest *fractional* cover (by weight per unit of free capacity) and the
//!   lightest candidate of each uncovered component; after 2,000 node expansions it reports
//!   the least open node bound instead. The weighted objective adds the two, weighted. The LP
//!   is only solved when this bound leaves a gap, so chains it proves optimal make no solver
//!   call. The exact method ([`crate::chain::place_chain_with`]) runs the heuristic with this
//!   bound alone and returns its plan, proven optimal without HiGHS, when the gap closes.

//! # Module map
//!
//! One file per stage, in the order a chain goes through them:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`HeuristicOptions`], [`BoundMethod`], [`ChainHeuristic`] and the entry points [`place_chain_heuristic`], [`place_chains_heuristic`]: the stages in order, the plan written as the chain ILP writes it |
//! | `model.rs` | the chain as the heuristic sees it: candidates and filters (step 1), routes (a symmetric pair as one), anti-affinity and affinity groups, host weights |
//! | `routing.rs` | k shortest loop-free paths (Yen, cached per zone pair) and the bandwidth-aware route choice (step 4) |
//! | `state.rs` | the partial placement (`State`) and the primitives every stage uses: put / take a component, route / unroute a channel with its bandwidth reservation, the objective |
//! | `greedy.rs` | the breadth-first order and tree look-ahead (steps 2–3), host scoring, the greedy in its two orders |
//! | `fallback.rs` | the depth-first fallback with arc-consistent zone domains (step 5) |
//! | `segments.rs` | the segment programme for path-shaped chains (step 6) |
//! | `local_search.rs` | the local search (move, swap, shift, merge, re-route) |
//! | `bound.rs` | the lower bounds: combinatorial (tree programme or covering walk; host cover by branch and bound) and the LP relaxation |
//! | `walk.rs` | the covering-walk delay bound of path-shaped chains (A*), with its proof |
//! | `tests.rs` | unit tests across the stages |

mod bound;
mod fallback;
mod greedy;
mod local_search;
mod model;
mod routing;
mod segments;
mod state;
mod walk;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::chain::{consume, ChainObjective, ChainRequest, ChainSequence, Residual};
use crate::chain::{path_delay, push_route_paths, ChainOutcome};
use crate::error::PlaceError;
use crate::plan::{Placement, Plan, PlanStatus};
use crate::problem::Problem;
use crate::solver::SolverOptions;

use model::Model;
use routing::Router;
use state::{Search, State};

/// Which lower bound a heuristic plan reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundMethod {
    /// The LP relaxation when the ILP has at most `lp_bound_max_binaries` binaries, and the
    /// combinatorial bound always; the larger is reported.
    #[default]
    Auto,
    /// Always the LP relaxation (and the combinatorial bound).
    Lp,
    /// Only the combinatorial bound (no solver call at all).
    Combinatorial,
}

/// Options of the heuristic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeuristicOptions {
    pub objective: ChainObjective,
    /// Paths per zone pair tried before the bandwidth-filtered fallback.
    pub k_paths: usize,
    /// Local-search iterations per chain; 0 keeps the greedy placement.
    pub max_iterations: usize,
    /// Wall-clock budget of the local search per chain; `None` for none (deterministic).
    pub time_budget: Option<Duration>,
    pub seed: u64,
    pub bound: BoundMethod,
    /// Largest estimated ILP size (binaries) for which `BoundMethod::Auto` solves the LP
    /// relaxation.
    pub lp_bound_max_binaries: usize,
    /// Solver options of the LP relaxation.
    pub solver: SolverOptions,
}

/// Default of [`HeuristicOptions::lp_bound_max_binaries`]: LP relaxations of this size solve
/// in well under a second.
pub const LP_BOUND_MAX_BINARIES: usize = 3_000;

impl Default for HeuristicOptions {
    fn default() -> Self {
        HeuristicOptions {
            objective: ChainObjective::Delay,
            k_paths: 4,
            max_iterations: 2_000,
            time_budget: None,
            seed: 1,
            bound: BoundMethod::Auto,
            lp_bound_max_binaries: LP_BOUND_MAX_BINARIES,
            solver: SolverOptions::default(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Entry points.

/// The chain heuristic with its path cache, reused across the chains of a sequence.
pub struct ChainHeuristic<'p> {
    problem: &'p Problem,
    router: Router,
    pub options: HeuristicOptions,
}

impl<'p> ChainHeuristic<'p> {
    pub fn new(problem: &'p Problem, options: HeuristicOptions) -> ChainHeuristic<'p> {
        ChainHeuristic { problem, router: Router::new(problem, options.k_paths), options }
    }

    /// Places one chain against `residual` (greedy, then local search, then the bound).
    pub fn place(&mut self, request: &ChainRequest, residual: &Residual) -> Result<Plan, PlaceError> {
        let started = Instant::now();
        let p = self.problem;
        let options = self.options.clone();
        let m = Model::new(p, request, residual, options.objective)?;
        let st = State::empty(&m, residual);
        let empty = st.clone();
        let mut search = Search { m: &m, router: &mut self.router, st, backtracked: false };
        let greedy = search.greedy();
        // Path-shaped chains also get the segment programme; the better start is kept.
        let mut start_note = if search.backtracked { "tree greedy (depth-first fallback)" } else { "tree greedy" };
        if m.wd > 0.0 {
            let tree = greedy.is_ok().then(|| (search.objective(), search.st.clone()));
            search.st = empty;
            if search.segments() {
                match tree {
                    Some((obj, st)) if obj <= search.objective() => search.st = st,
                    _ => start_note = "segment programme",
                }
            } else if let Some((_, st)) = tree {
                search.st = st;
            } else {
                greedy?;
            }
        } else {
            greedy?;
        }
        let greedy_objective = search.objective();
        let greedy_seconds = started.elapsed().as_secs_f64();
        let (iterations, improving) = search.improve(&options);
        let objective = search.objective();
        let delay = search.delay();
        let st = search.st;
        let search_seconds = started.elapsed().as_secs_f64();

        // Bound.
        let bound_started = Instant::now();
        let (bound, bound_kind, mut stats) = m.lower_bound(residual, &options, objective);
        let bound_seconds = bound_started.elapsed().as_secs_f64();
        let gap = if objective.abs() > 1e-12 { (objective - bound).max(0.0) / objective.abs() } else { 0.0 };

        // The plan, as the chain ILP writes it.
        let s = &p.services[m.si].service;
        let mut plan = Plan::new("chain-heuristic");
        let sub = Some(request.id.clone());
        for (t, c) in s.components.iter().enumerate() {
            let zone = st.zone[t].ok_or_else(|| PlaceError::Solver {
                detail: format!("heuristic: component {:?} of chain {:?} was left unplaced", c.name, request.id),
            })?;
            plan.placements.push(Placement {
                service: s.name.clone(),
                subscription: sub.clone(),
                component: c.name.clone(),
                zone: p.zones[zone].name.clone(),
                host: st.host[t].map(|h| p.hosts[h].name.clone()),
                instances: 1,
                slots: 0.0,
            });
        }
        for (r, rt) in m.routes.iter().enumerate() {
            let zones = st.path[r].as_ref().map(|pth| pth.zones.clone()).unwrap_or_default();
            let lat = path_delay(p, &zones);
            push_route_paths(&mut plan, p, s, &sub, &rt.channels, &zones, lat);
        }
        let used: Vec<usize> = m.host_list.iter().copied().filter(|&h| st.count[h] > 0).collect();
        let weighted: f64 = used.iter().map(|&h| m.weight[h]).sum();
        plan.objective = objective;
        crate::chain::record_chain(&mut plan, p, s, request, m.user_zone, delay, used.len(), weighted);
        plan.objective_terms.insert("greedy_objective".into(), greedy_objective);
        plan.bound = Some(bound);
        plan.gap = Some(gap);
        plan.status =
            if gap <= 1e-9 { PlanStatus::Optimal } else { PlanStatus::Feasible { limit: "heuristic".into() } };
        stats.seconds = started.elapsed().as_secs_f64();
        plan.stats = stats;
        plan.notes.push(format!(
            "heuristic: {start_note} objective {greedy_objective:.6} in {:.2} ms; local search {iterations} iterations ({improving} improving) → {objective:.6} in {:.2} ms",
            greedy_seconds * 1e3,
            (search_seconds - greedy_seconds) * 1e3
        ));
        plan.notes.push(format!(
            "bound {bound:.6}: {bound_kind}; gap {:.4} % ({:.2} ms)",
            gap * 100.0,
            bound_seconds * 1e3
        ));
        plan.normalize();
        Ok(plan)
    }
}

/// The combinatorial lower bound (see the module docs, # Bound) of the chain ILP's optimum for
/// `request` against `residual`, not capped by any plan's objective, and what it is made of.
/// No solver call. For the tests, which check the bound alone against brute force.
#[cfg(test)]
pub(crate) fn chain_lower_bound(
    problem: &Problem,
    request: &ChainRequest,
    residual: &Residual,
    objective: ChainObjective,
) -> Result<(f64, String), PlaceError> {
    let m = Model::new(problem, request, residual, objective)?;
    Ok(m.combinatorial_bound(residual, f64::INFINITY))
}

/// Places one chain heuristically against `residual` (see the module docs).
pub fn place_chain_heuristic(
    problem: &Problem,
    request: &ChainRequest,
    residual: &Residual,
    options: &HeuristicOptions,
) -> Result<Plan, PlaceError> {
    ChainHeuristic::new(problem, options.clone()).place(request, residual)
}

/// Places chains one at a time, each against the capacity the previous ones left — the
/// heuristic counterpart of [`crate::chain::place_chains`], with the same outcome type.
pub fn place_chains_heuristic(
    problem: &Problem,
    requests: &[ChainRequest],
    options: &HeuristicOptions,
) -> ChainSequence {
    let p = problem;
    let mut heur = ChainHeuristic::new(p, options.clone());
    let mut residual = Residual::full(p);
    let mut outcomes = Vec::new();
    let mut combined = Plan::new("chain-heuristic-sequence");
    let mut placed = 0usize;
    let mut bound = 0.0;
    for req in requests {
        let started = Instant::now();
        let result = heur.place(req, &residual);
        let seconds = started.elapsed().as_secs_f64();
        if let Ok(plan) = &result {
            consume(p, plan, &mut residual);
            combined.absorb(plan);
            bound += plan.bound.unwrap_or(0.0);
            placed += 1;
        }
        outcomes.push(ChainOutcome { id: req.id.clone(), result, seconds });
    }
    let hosts = combined.used_hosts(p);
    let delay = combined.term("delay_ms").unwrap_or(0.0);
    combined.objective_terms.clear();
    combined.objective_terms.insert("delay_ms".into(), delay);
    combined.objective_terms.insert("used_servers".into(), hosts.len() as f64);
    combined.bound = Some(bound);
    combined.gap = Some(if combined.objective.abs() > 1e-12 {
        (combined.objective - bound).max(0.0) / combined.objective.abs()
    } else {
        0.0
    });
    combined.status = PlanStatus::Feasible { limit: "heuristic".into() };
    combined.notes.push(format!("{placed} of {} chains placed", requests.len()));
    combined.notes.push("bound: the sum of each chain's bound against the capacity the chains before it left".into());
    combined.normalize();
    ChainSequence { outcomes, combined, residual }
}

#[cfg(test)]
mod tests;
