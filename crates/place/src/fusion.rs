//! FUSION zone placement: the two-step max-min-fair utility LP (seed 000 §2.7.2), its
//! cost/utility trade-off curve, the service-selection variant (§2.7.3) and the rounding of
//! fractional slot shares into whole instances.
//!
//! # The LP (notes §3.2–3.3, with the modelling choices made here)
//!
//! For every demand entry (region *i*, service *j*; FUSION's request (i,j)) with demand
//! `d_ij` slots, and every zone *t*:
//!
//! * **Pruning.** A column `x_it^j ∈ [0,1]` exists only for zones with round-trip latency
//!   `l_it ≤ R_max^ij` (and within the service's proximity class, when it declares one) and a
//!   positive capacity for the service. The number of pruned pairs is reported in the notes.
//! * **(4)** `Σ_t x_it^j = 1` — all demand is served.
//! * **(5)** `Σ_i d_ij x_it^j ≤ c_t^j` — per-(service, zone) slot capacity
//!   ([`crate::problem`]); rows that can never bind are not generated.
//! * **(6)–(8)** `z_ij ≥ 0`, `z_ij ≥ Σ_t l_it x_it^j − R_min^ij`: the average latency `l_ij` of
//!   (6) is substituted into (8) instead of being a column.
//! * **(9)–(10)** `U ≤ u_ij = (D_ij − z_ij)/(k_ij D_ij)`, written `k D U + z ≤ D`; `u_ij` is
//!   substituted, not a column.
//! * **(11)–(13)** one column `C = Σ d_ij x_it^j (DeployCost_t^j + BWCost_it^j)` with
//!   `C ≤ TOTAL_COST` as its upper bound when a budget is given. Costs are per hour
//!   ([`crate::problem`] documents the conversions).
//! * **Shared zone capacity** (on by default; ambiguity 8): for every zone and resource,
//!   `Σ_j (resources per slot of j) × Σ_i d_ij x_it^j ≤ zone capacity`, so services compete
//!   for a zone's hosts as operators expect. The paper's LP has no such row;
//!   [`FusionOptions::shared_zone_capacity`]` = false` reproduces it exactly.
//!
//! **Step 1** maximises `U`. **Step 2** maximises `α Σ_ij w_i u_ij − (1 − α) C` subject to
//! `U ≥ U* − τ` with `τ = 1e-6 · max(1, |U*|)` (the solver's own tolerance would otherwise
//! make Step 2 infeasible at the rounding edge). **Group-size weighting**: each request's
//! utility enters Σu multiplied by its region's `weight` (FUSION: "multiply … with a
//! parameter corresponding to the size of the group"); the min-utility `U` is unweighted,
//! since max-min fairness is about every group, whatever its size. Step 2 re-solves the same
//! HiGHS model warm (objective and `U`'s bound changed in place).
//! [`FusionOptions::max_min_fairness`]` = false` skips Step 1 and leaves `U` free: the
//! "without max-min fairness" baseline of FUSION's Figure 56.
//!
//! **Step 3 (tie-break at α = 1).** With α = 1 cost is not in Step 2's objective, so any
//! vertex of the optimal face comes back — on the MOOC data one 10.7 % dearer than the cheapest
//! plan of the same utility. At α = 1 (every point of the trade-off curve but its min-cost
//! end, and `place`/`select` with α = 1) Step 3 therefore adds the row
//! `Σ w u ≥ Σ w u* − ε` (as `Σ w z/(k D) ≤ …`; `ε = 1e-6 · max(1, |Σ w u*|)`, [`tie_tolerance`])
//! once to the live model (U's Step-2 bound stays) and maximises `−C`: the cheapest plan
//! within ε of Step 2's total utility. The model keeps Step 2's basis, which stays primal
//! feasible, so Step 3 is a warm primal simplex (under column generation, more pricing
//! rounds with the same duals: the row has no `x` term). Steps 1 and 2 free the row again.
//! α < 1 has cost in its objective already and runs no Step 3. The plan's `bound` is still
//! Step 2's; the note "tie-break (Step 3)" and the term `step2_cost` give the cost before
//! and after. [`FusionOptions::tie_break`]` = false` returns Step 2's vertex (the benchmarks'
//! reference). Should Step 3 find no solution (a time limit), Step 2's answer is returned.
//!
//! **True utilities.** After solving, utilities are recomputed from each request's
//! share-weighted average latency with [`zonal_model::UtilitySla::utility`] (ambiguity 3: the
//! LP only bounds `z` from below for requests that do not bind). `utility_percent` is
//! `Σ w·u / Σ w·(1/k) × 100`, so 100 % means every user is at or under R_min (ambiguity 5).
//!
//! # Scale: column generation
//!
//! At MOOC scale (1,869 regions × 656 zones ≈ 1.2 M columns) the full LP takes over a minute
//! even with IPM, yet each region ends up served by a handful of nearby zones. Above
//! [`CG_PAIR_THRESHOLD`] candidate pairs ([`ColumnGeneration::Auto`]) the LP is therefore
//! solved by **column generation**, which is exact. The first restricted LP holds each
//! request's 4 nearest zones plus every zone a **greedy transportation assignment** gives it
//! (all candidate pairs nearest first, each serving what the zone's remaining slot and
//! resource capacity hold), so under tight capacity the first LP already serves everyone.
//! Unserved demand and budget overrun are slack columns with a big-M penalty (M = 1000 × the
//! largest utility spread, see `slack_penalty`), so every restricted LP is feasible. After each
//! solve, every missing column `x_it^j` is priced with the row duals `y` — reduced cost
//! `0 − yᵀa` over its rows (4), (8), the cost row, (5) and the shared-capacity rows; rows
//! absent from the restricted model are not tight there and price 0 — and up to 12 columns
//! per request with a positive reduced cost are added **to the live HiGHS model** (with any
//! capacity row they make necessary), so every re-solve is a warm primal simplex from the
//! previous basis rather than a new model. Once the model holds more than twice as many
//! columns `x` as rows, the columns that have **stopped paying** — at zero, not basic, pricing
//! no better than the entry threshold — are **deleted** before new ones are added: HiGHS's
//! primal simplex spends time in proportion to the columns at every iteration, and a deleted
//! column is missing again, so pricing brings it back should it pay later (exactness is
//! kept; the basis stays valid). Pricing runs on the solver's threads (the machine's cores
//! by default) above 100k candidate pairs. A step has converged when no column prices
//! positive, or when HiGHS made not one simplex iteration after the last columns were added
//! (it judges them within its dual tolerance, and the other missing columns price no
//! better). Step 1 is iterated to convergence (the restricted optimum is then the full
//! optimum), then Step 2 with `U ≥ U* − τ`, then Step 3. If a step converges with a slack in
//! use, every penalty is raised 100× and the step goes on (at most 3 times): at α = 1 a
//! region's weighted utility can be worth more than the first price of a unit of budget
//! overrun. A slack left in Step 1 at the highest price proves infeasibility. After 1,000
//! solves without convergence the full LP is solved instead.
//! [`FusionOptions::cg_reference`] runs column generation as it was before issue 15 (8+
//! nearest zones only, 8 columns per round, no stop on a stalled HiGHS, no deletion) for the
//! benchmarks' ratios.
//!
//! **Sessions.** A [`FusionSession`] solves one placement problem at several (α, budget)
//! points with one live column-generation model: the columns of earlier points stay (a column
//! does not depend on α or the budget), the budget is a row `C − s_b ≤ budget` whose bound
//! changes, and each point starts from the previous basis. [`tradeoff_curve`] uses one above
//! [`CG_PAIR_THRESHOLD`] pairs, the full LP below.

//! # Trade-off curve (§3.4)
//!
//! [`tradeoff_curve`] solves the min-cost end (α = 0) and the max-utility end (α = 1) without a
//! budget, then `N` budgets evenly spaced from the min cost to the max cost (both included);
//! at each budget Step 1 is re-solved (U* depends on the budget — ambiguity 9) and then
//! Step 2 with α = 1, then Step 3. Points carry LP values (no rounding). With Step 3 the
//! max-utility end is the cheapest plan within ε of the top utility, so the budgets span
//! only the costs that buy utility; the last budget point's total utility is within 2ε of
//! the max-utility end's (each ran Step 3). The min utility of the curve is
//! non-decreasing in the budget; the total utility need *not* be: a larger budget can raise
//! U*, and the fairer solution Step 2 must then keep can have a lower total.
//!
//! # Service selection (§2.7.3)
//!
//! [`select`]: the same two steps where capacity is the free slots of running instances
//! (a map (service, zone) → slots), cost is an optional transit cost per (region, zone) and
//! slot-hour (reported as `transit_cost`), and each region may be restricted to its `k`
//! nearest zones. No instances are placed and nothing is rounded.
//!
//! # Rounding into instances (ambiguity 6)
//!
//! A region's share at a zone below a thousandth of a slot or 1e-4 of the region's demand
//! (the LP's tolerance) first joins the zone serving most of that region, when that zone's
//! rounded instances hold it. The LP's slots per (service, zone) become
//! `n = ⌈slots / slots_per_instance⌉` instances (slots within 1e-6 of a multiple are not
//! rounded up). Then a repair pass:
//! 1. where the shared zone capacity is exceeded, the instance that is least filled in that
//!    zone is removed, until the zone fits;
//! 2. sessions above the remaining instances' slots are moved, farthest region first, to the
//!    nearest other allowed zone (within R_max) that has free slots in its rounded instances,
//!    else to the nearest zone where one more instance fits.
//!
//! Instances left empty are dropped. The utility lost (LP total utility − rounded total
//! utility) is reported as `rounding_utility_loss`. A composite is deployed whole: each of
//! its non-user-side components gets the same instance count in the zone; session slots are
//! counted on the entry component (the other components' placements report 0 slots).

use std::collections::BTreeMap;

use highs::Sense;
use serde::{Deserialize, Serialize};

use crate::error::{reason, ConstraintFamily, InfeasibilityReason, PlaceError};
use crate::plan::{Assignment, Placement, Plan, PlanStats, PlanStatus};
use crate::problem::Problem;
use crate::solver::{LpBuilder, LpSession, SolverOptions, Var};

/// Options of a FUSION placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionOptions {
    /// Step 2 trade-off: 1 = maximal total utility, 0 = fair solution at minimum cost.
    pub alpha: f64,
    /// TOTAL_COST per hour (constraint 13); no budget when `None`.
    pub budget: Option<f64>,
    /// Services compete for a zone's hosts (default); `false` is the paper's LP exactly.
    pub shared_zone_capacity: bool,
    /// Round slot shares into whole instances (placement mode only). When off, the plan is
    /// the LP's fractional assignment and places no instances.
    pub rounding: bool,
    /// Solve by column generation (exact; for large instances).
    pub column_generation: ColumnGeneration,
    /// Run Step 1 (max-min fairness) and keep Step 2 above its U*. `false` runs Step 2 alone,
    /// the baseline of FUSION's Figure 56 ("ignore step 1").
    #[serde(default = "default_true")]
    pub max_min_fairness: bool,
    /// At α = 1 (and at the trade-off curve's max-utility end and budget points), Step 3:
    /// the cheapest plan whose weighted total utility is within [`tie_tolerance`] of Step 2's
    /// optimum. `false` returns Step 2's vertex as it comes (the benchmarks' reference).
    #[serde(default = "default_true")]
    pub tie_break: bool,
    /// Column generation as it was before issue 15 — each request's nearest zones in the
    /// first restricted model, 8 new columns per request and round, pricing until no column
    /// has a reduced cost above 1e-9 even when HiGHS no longer moves, no column ever deleted —
    /// kept as the benchmarks' reference (the raised big-M of a converged step with a slack
    /// in use applies to both). `false` (default): the capacity-aware first model (a greedy
    /// transportation assignment, see the module docs), 12 columns per request and round,
    /// columns deleted again when they stop paying, and the stop when HiGHS takes none of
    /// the new columns.
    #[serde(default)]
    pub cg_reference: bool,
    pub solver: SolverOptions,
}

fn default_true() -> bool {
    true
}

impl Default for FusionOptions {
    fn default() -> Self {
        FusionOptions {
            alpha: 0.5,
            budget: None,
            shared_zone_capacity: true,
            rounding: true,
            column_generation: ColumnGeneration::Auto,
            max_min_fairness: true,
            tie_break: true,
            cg_reference: false,
            solver: SolverOptions::default(),
        }
    }
}

/// Inputs of the service-selection variant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Free slots of running instances, (service, zone) → slots. Missing pairs have none.
    pub free_slots: BTreeMap<(String, String), f64>,
    /// Transit cost per slot-hour, (region, zone) → cost. Missing pairs cost nothing.
    pub transit_cost: BTreeMap<(String, String), f64>,
    /// Restrict each region to its `k` nearest zones.
    pub nearest_k: Option<usize>,
}

/// One point of the cost/utility curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub budget: f64,
    pub cost: f64,
    pub total_utility: f64,
    pub utility_percent: f64,
    pub min_utility: f64,
    pub worst_latency_ms: f64,
}

/// The cost/utility trade-off curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// α = 0 without budget.
    pub min_cost: CurvePoint,
    /// α = 1 without budget.
    pub max_utility: CurvePoint,
    /// One point per budget, increasing.
    pub points: Vec<CurvePoint>,
    pub seconds: f64,
    pub solves: u32,
}

enum Mode<'a> {
    Placement,
    Selection(&'a Selection),
}

/// Candidate zones of one demand entry.
struct Pair {
    demand: usize,
    zones: Vec<usize>,
    cols: Vec<Var>,
    z: Var,
}

struct FusionLp {
    session: LpSession,
    pairs: Vec<Pair>,
    u: Var,
    cost: Var,
    /// Coverage slack per pair (elastic and column-generation models only).
    slack: Vec<Option<Var>>,
    /// Objective terms always added (the big-M penalty on slacks in column generation).
    penalty: Vec<(Var, f64)>,
    /// Step 3's row `Σ w z / (k D) ≤ Step 2's optimum + tolerance`, once added; free
    /// (unbounded) outside Step 3.
    hold: Option<usize>,
    /// The budget row `C − s_b ≤ budget` of a column-generation model, when it has one.
    budget: Option<BudgetRow>,
    /// How much column generation has raised the penalties above their first price.
    penalty_scale: f64,
    /// Row indices, for pricing columns with the duals.
    rows: RowIndex,
    pruned: usize,
    total_pairs: usize,
    /// Columns column generation deleted again as they stopped paying.
    dropped: usize,
}

/// The budget row of a column-generation model and its overrun slack's place in
/// [`FusionLp::penalty`].
#[derive(Debug, Clone, Copy)]
struct BudgetRow {
    row: usize,
    penalty: usize,
}

/// Where each row family sits in the model.
#[derive(Debug, Default)]
struct RowIndex {
    cover: Vec<usize>,
    latency: Vec<usize>,
    cost: usize,
    /// (service, zone) → row of (5).
    capacity: BTreeMap<(usize, usize), usize>,
    /// zone → [(resource, row, scale)] of the shared-capacity rows.
    shared: BTreeMap<usize, Vec<(String, usize, f64)>>,
}

/// Slack columns added to a model.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slacks {
    None,
    /// Minimise unserved demand (infeasibility diagnosis).
    Elastic,
    /// Unserved demand and budget overrun cost this much per unit (column generation).
    Penalty(f64),
}

/// Slot capacity of (service, zone) in the given mode.
fn capacity(p: &Problem, mode: &Mode, si: usize, zi: usize) -> f64 {
    match mode {
        Mode::Placement => p.slot_capacity[si][zi],
        Mode::Selection(sel) => sel
            .free_slots
            .get(&(p.services[si].name.clone(), p.zones[zi].name.clone()))
            .copied()
            .unwrap_or(0.0)
            .max(0.0),
    }
}

/// Cost per slot-hour of serving demand `di` at zone `zi`.
fn unit_cost(p: &Problem, mode: &Mode, di: usize, zi: usize) -> f64 {
    let d = &p.demands[di];
    match mode {
        Mode::Placement => p.deploy_cost[d.service][zi] + d.bandwidth_cost(&p.zones[zi]),
        Mode::Selection(sel) => {
            sel.transit_cost.get(&(p.regions[d.region].name.clone(), p.zones[zi].name.clone())).copied().unwrap_or(0.0)
        }
    }
}

/// How much of resource `res` one session slot of `s` takes: its instance's share per slot.
fn need_per_slot(s: &crate::problem::ServiceData, res: &str) -> f64 {
    s.instance_resources.get(res) as f64 / f64::from(s.slots_per_instance)
}

/// A row ready for the model: (scaled right-hand side, scale, terms).
type ScaledRow = (f64, f64, Vec<(Var, f64)>);

/// The shared-capacity row of resource `res` (capacity `cap`) over a zone's columns
/// (`per_service`: service → (column, slots)), scaled to a right-hand side of 1, as (scaled
/// capacity, scale, terms); `None` when it cannot bind.
fn shared_row(p: &Problem, res: &str, cap: f64, per_service: &BTreeMap<usize, Vec<(Var, f64)>>) -> Option<ScaledRow> {
    let mut row = Vec::new();
    let mut potential = 0.0;
    for (&si, srow) in per_service {
        let s = &p.services[si];
        let per_slot = need_per_slot(s, res);
        if per_slot > 0.0 {
            for &(c, slots) in srow {
                row.push((c, per_slot * slots));
                potential += per_slot * slots;
            }
        }
    }
    if potential > cap * (1.0 + 1e-12) && !row.is_empty() {
        let scale = if cap > 0.0 { 1.0 / cap } else { 1.0 };
        Some((cap * scale, scale, row.into_iter().map(|(c, v)| (c, v * scale)).collect()))
    } else {
        None
    }
}

/// The big-M price of leaving a unit of demand `di` unserved in a restricted model: `m`
/// (1,000 × the largest utility spread) times (1 + the region's weight), because Step 2
/// weighs utilities by group size, plus 10 × what serving it can cost at its dearest zone,
/// because Step 2 also prices cost. Unserved demand lowers a region's average latency and
/// saves its cost, so a smaller penalty could make a slack pay (and report a feasible LP
/// infeasible).
fn slack_penalty(p: &Problem, mode: &Mode, di: usize, m: f64) -> f64 {
    let d = &p.demands[di];
    let dearest = match mode {
        Mode::Placement => {
            (0..p.zones.len()).map(|t| unit_cost(p, mode, di, t)).filter(|c| c.is_finite()).fold(0.0, f64::max)
        }
        Mode::Selection(sel) => sel.transit_cost.values().copied().filter(|c| c.is_finite()).fold(0.0, f64::max),
    };
    m * (1.0 + p.regions[d.region].weight) + 10.0 * d.slots * dearest
}

/// Latency bound of demand `di`: R_max, tightened by the service's proximity class.
fn latency_bound(p: &Problem, di: usize) -> f64 {
    let d = &p.demands[di];
    let rmax = d.sla.r_max.as_millis();
    p.services[d.service].proximity_ms.map_or(rmax, |b| b.min(rmax))
}

/// Candidate zones per demand (sorted by zone index) and the number of pruned pairs.
fn candidates(p: &Problem, mode: &Mode) -> (Vec<Vec<usize>>, usize) {
    let mut out = Vec::with_capacity(p.demands.len());
    let mut pruned = 0;
    for (di, d) in p.demands.iter().enumerate() {
        let bound = latency_bound(p, di);
        let rtt = &p.region_rtt[d.region];
        let mut zs: Vec<usize> =
            (0..p.zones.len()).filter(|&t| rtt[t] <= bound && capacity(p, mode, d.service, t) > 0.0).collect();
        if let Mode::Selection(Selection { nearest_k: Some(k), .. }) = mode {
            zs.sort_by(|&a, &b| rtt[a].total_cmp(&rtt[b]).then(a.cmp(&b)));
            zs.truncate(*k);
            zs.sort_unstable();
        }
        pruned += p.zones.len() - zs.len();
        out.push(zs);
    }
    (out, pruned)
}

/// Cheap checks that name the obvious reasons for infeasibility before any LP is built.
fn prechecks(p: &Problem, mode: &Mode, cands: &[Vec<usize>], shared: bool) -> Vec<InfeasibilityReason> {
    let mut reasons = Vec::new();
    for (di, zs) in cands.iter().enumerate() {
        if !zs.is_empty() {
            continue;
        }
        let d = &p.demands[di];
        let (s, r) = (&p.services[d.service].name, &p.regions[d.region].name);
        let bound = latency_bound(p, di);
        let rtt = &p.region_rtt[d.region];
        let within: Vec<usize> = (0..p.zones.len()).filter(|&t| rtt[t] <= bound).collect();
        if within.is_empty() {
            let nearest = (0..p.zones.len()).filter(|&t| rtt[t].is_finite()).min_by(|&a, &b| rtt[a].total_cmp(&rtt[b]));
            let near = match nearest {
                Some(t) => format!("the nearest zone, {:?}, is {:.1} ms away", p.zones[t].name, rtt[t]),
                None => "no zone has a known latency to it".to_string(),
            };
            reasons.push(reason(
                ConstraintFamily::Latency,
                vec![s.clone(), r.clone()],
                format!("region {r:?} has no zone within {bound:.1} ms (R_max or proximity class) for service {s:?}; {near}"),
            ));
        } else {
            let names: Vec<&str> = within.iter().take(5).map(|&t| p.zones[t].name.as_str()).collect();
            reasons.push(reason(
                ConstraintFamily::Capacity,
                vec![s.clone(), r.clone()],
                format!(
                    "the {} zone(s) within {bound:.1} ms of region {r:?} ({}{}) have no capacity for service {s:?} (placement constraints, host resources or no running instances)",
                    within.len(),
                    names.join(", "),
                    if within.len() > 5 { ", …" } else { "" }
                ),
            ));
        }
    }
    for (si, s) in p.services.iter().enumerate() {
        let want = p.service_demand(si);
        let have: f64 = (0..p.zones.len()).map(|t| capacity(p, mode, si, t)).sum();
        if want > have + 1e-9 {
            reasons.push(reason(
                ConstraintFamily::Demand,
                vec![s.name.clone()],
                format!("service {:?} wants {want} slots in all, the zones can offer at most {have}", s.name),
            ));
        }
    }
    if shared && matches!(mode, Mode::Placement) {
        let mut need: BTreeMap<String, f64> = BTreeMap::new();
        let mut have: BTreeMap<String, f64> = BTreeMap::new();
        for (si, s) in p.services.iter().enumerate() {
            let slots = p.service_demand(si);
            for (r, a) in &s.instance_resources.0 {
                *need.entry(r.clone()).or_default() += a.value as f64 / f64::from(s.slots_per_instance) * slots;
            }
        }
        for z in &p.zones {
            for (r, a) in &z.capacity.0 {
                *have.entry(r.clone()).or_default() += a.value as f64;
            }
        }
        for (r, n) in need {
            let h = have.get(&r).copied().unwrap_or(0.0);
            if n > h * (1.0 + 1e-9) {
                reasons.push(reason(
                    ConstraintFamily::Demand,
                    vec![r.clone()],
                    format!("all services together need {n} of resource {r:?} for their demand, the zones have {h}"),
                ));
            }
        }
    }
    reasons
}

fn build(
    p: &Problem,
    mode: &Mode,
    cands: Vec<Vec<usize>>,
    pruned: usize,
    opts: &FusionOptions,
    slacks: Slacks,
    budget_row: bool,
) -> Result<FusionLp, PlaceError> {
    let elastic = slacks == Slacks::Elastic;
    let mut rows = RowIndex::default();
    let mut penalty = Vec::new();
    let mut b = LpBuilder::new();
    // U ≤ max 1/k keeps Step 1 bounded even without demand.
    let u_max = p.demands.iter().map(|d| d.sla.max_utility()).fold(0.0, f64::max);
    let u = b.add_var(f64::NEG_INFINITY, u_max, 0.0);
    let cost = b.add_var(0.0, f64::INFINITY, 0.0);
    let mut pairs = Vec::with_capacity(cands.len());
    let mut slack = Vec::with_capacity(cands.len());
    let total_slots: f64 = p.demands.iter().map(|d| d.slots).sum::<f64>().max(1e-9);
    for (di, zones) in cands.into_iter().enumerate() {
        let cols: Vec<Var> = zones.iter().map(|_| b.add_var(0.0, 1.0, 0.0)).collect();
        let z = b.add_var(0.0, f64::INFINITY, 0.0);
        pairs.push(Pair { demand: di, zones, cols, z });
        slack.push(match slacks {
            Slacks::None => None,
            Slacks::Elastic => Some(b.add_var(0.0, 1.0, p.demands[di].slots / total_slots)),
            Slacks::Penalty(m) => {
                let v = b.add_var(0.0, 1.0, 0.0);
                penalty.push((v, -slack_penalty(p, mode, di, m)));
                Some(v)
            }
        });
    }
    let mut cost_terms = Vec::new();
    let mut by_zone: Vec<Vec<(usize, usize)>> = vec![Vec::new(); p.zones.len()]; // (pair, position)
    for (pi, pair) in pairs.iter().enumerate() {
        let d = &p.demands[pair.demand];
        // (4)
        let mut row: Vec<(Var, f64)> = pair.cols.iter().map(|&c| (c, 1.0)).collect();
        if let Some(s) = slack[pi] {
            row.push((s, 1.0));
        }
        rows.cover.push(b.add_row(1.0, 1.0, row));
        // (8): z − Σ l x ≥ −R_min
        let rtt = &p.region_rtt[d.region];
        let mut row: Vec<(Var, f64)> = vec![(pair.z, 1.0)];
        row.extend(pair.zones.iter().zip(&pair.cols).map(|(&t, &c)| (c, -rtt[t])));
        rows.latency.push(b.add_row(-d.sla.r_min.as_millis(), f64::INFINITY, row));
        // (10): k D U + z ≤ D
        let dd = d.sla.span_ms();
        b.add_row(f64::NEG_INFINITY, dd, [(u, d.sla.importance * dd), (pair.z, 1.0)]);
        for (k, (&t, &c)) in pair.zones.iter().zip(&pair.cols).enumerate() {
            cost_terms.push((c, d.slots * unit_cost(p, mode, pair.demand, t)));
            by_zone[t].push((pi, k));
        }
    }
    // (11)–(13): C = Σ cost
    cost_terms.push((cost, -1.0));
    rows.cost = b.add_row(0.0, 0.0, cost_terms);
    // With penalised slacks the budget is a row C − s_b ≤ budget, so a restricted model that
    // lacks the cheap zones stays feasible.
    let mut budget_in_row = None;
    if let Slacks::Penalty(m) = slacks {
        if opts.budget.is_some() || budget_row {
            let sb = b.add_var(0.0, f64::INFINITY, 0.0);
            let upper = opts.budget.map_or(f64::INFINITY, budget_bound);
            penalty.push((sb, -m / opts.budget.map_or(1.0, |x| x.abs().max(1.0))));
            let row = b.add_row(f64::NEG_INFINITY, upper, [(cost, 1.0), (sb, -1.0)]);
            budget_in_row = Some(BudgetRow { row, penalty: penalty.len() - 1 });
        }
    }
    // (5) per (service, zone), and shared capacity per (zone, resource).
    for (t, members) in by_zone.iter().enumerate() {
        let mut per_service: BTreeMap<usize, Vec<(Var, f64)>> = BTreeMap::new();
        for &(pi, k) in members {
            let d = &p.demands[pairs[pi].demand];
            per_service.entry(d.service).or_default().push((pairs[pi].cols[k], d.slots));
        }
        for (&si, row) in &per_service {
            let cap = capacity(p, mode, si, t);
            let potential: f64 = row.iter().map(|(_, a)| a).sum();
            if potential > cap + 1e-9 {
                rows.capacity.insert((si, t), b.add_row(f64::NEG_INFINITY, cap, row.iter().copied()));
            }
        }
        if opts.shared_zone_capacity && matches!(mode, Mode::Placement) {
            for (r, a) in &p.zones[t].capacity.0 {
                if let Some((cap, scale, row)) = shared_row(p, r, a.value as f64, &per_service) {
                    let ri = b.add_row(f64::NEG_INFINITY, cap, row);
                    rows.shared.entry(t).or_default().push((r.clone(), ri, scale));
                }
            }
        }
    }
    let total_pairs = p.demands.len() * p.zones.len();
    let mut session = b.into_session(Sense::Maximise)?;
    if elastic {
        session.set_objective(
            Sense::Minimise,
            &slack
                .iter()
                .enumerate()
                .filter_map(|(di, s)| s.map(|s| (s, p.demands[di].slots / total_slots)))
                .collect::<Vec<_>>(),
        )?;
    } else {
        let mut obj = vec![(u, 1.0)];
        obj.extend(penalty.iter().copied());
        session.set_objective(Sense::Maximise, &obj)?;
    }
    if let (Some(budget), None) = (opts.budget, budget_in_row) {
        session.set_bounds(cost, 0.0, budget_bound(budget))?;
    }
    Ok(FusionLp {
        session,
        pairs,
        u,
        cost,
        slack,
        penalty,
        hold: None,
        budget: budget_in_row,
        penalty_scale: 1.0,
        rows,
        pruned,
        total_pairs,
        dropped: 0,
    })
}

/// The budget as a column bound, widened by a relative 1e-9 so a budget equal to the
/// minimum cost stays feasible despite floating-point noise.
fn budget_bound(budget: f64) -> f64 {
    budget + 1e-9 * budget.abs().max(1.0)
}

fn u_tolerance(u: f64) -> f64 {
    1e-6 * u.abs().max(1.0)
}

/// Step 3's slack on Step 2's weighted total utility `Σu*`: `1e-6 · max(1, |Σu*|)`, so the
/// cheaper plan loses at most a millionth of the total utility (and the solver's own
/// tolerance cannot make Step 3 infeasible).
pub fn tie_tolerance(total_utility: f64) -> f64 {
    1e-6 * total_utility.abs().max(1.0)
}

/// Served slots per demand: `(zone, slots)` sorted by zone.
type Served = Vec<Vec<(usize, f64)>>;

fn served_from(p: &Problem, lp: &FusionLp, values: &[f64]) -> Served {
    lp.pairs
        .iter()
        .map(|pair| {
            let d = &p.demands[pair.demand];
            let raw: Vec<(usize, f64)> = pair
                .zones
                .iter()
                .zip(&pair.cols)
                .map(|(&t, c)| (t, values.get(c.0).copied().unwrap_or(0.0).clamp(0.0, 1.0)))
                .filter(|(_, x)| *x > 1e-9)
                .collect();
            // Column generation appends zones as it finds them.
            let mut raw = raw;
            raw.sort_by_key(|&(t, _)| t);
            let total: f64 = raw.iter().map(|(_, x)| x).sum();
            raw.into_iter().map(|(t, x)| (t, x / total.max(1e-12) * d.slots)).collect()
        })
        .collect()
}

/// Utility terms of a served matrix.
#[derive(Debug, Clone, Default)]
struct Terms {
    min_utility: f64,
    total_utility: f64,
    utility_percent: f64,
    worst_latency_ms: f64,
    cost: f64,
    utilities: Vec<f64>,
}

fn evaluate(p: &Problem, mode: &Mode, served: &Served) -> Terms {
    let mut t = Terms { min_utility: f64::INFINITY, ..Default::default() };
    let mut max_total = 0.0;
    for (di, rows) in served.iter().enumerate() {
        let d = &p.demands[di];
        let lat: f64 = rows.iter().map(|&(z, s)| s * p.region_rtt[d.region][z]).sum::<f64>() / d.slots;
        let u = d.sla.utility(lat).unwrap_or(f64::NEG_INFINITY);
        let w = p.regions[d.region].weight;
        t.min_utility = t.min_utility.min(u);
        t.total_utility += w * u;
        max_total += w * d.sla.max_utility();
        t.worst_latency_ms = t.worst_latency_ms.max(lat);
        t.cost += rows.iter().map(|&(z, s)| s * unit_cost(p, mode, di, z)).sum::<f64>();
        t.utilities.push(u);
    }
    if served.is_empty() {
        t.min_utility = 0.0;
    }
    t.utility_percent = if max_total > 0.0 { t.total_utility / max_total * 100.0 } else { 100.0 };
    t
}

struct Run {
    stats: PlanStats,
}

impl Run {
    fn solve(&mut self, lp: &mut FusionLp, opts: &SolverOptions) -> Result<crate::solver::Solved, PlaceError> {
        let s = lp.session.solve(opts)?;
        self.stats.add(&s.stats);
        Ok(s)
    }
}

fn u_max(p: &Problem) -> f64 {
    p.demands.iter().map(|d| d.sla.max_utility()).fold(0.0, f64::max)
}

/// Sets up Step 1: maximise U (minus any slack penalty), U free.
fn set_step1(lp: &mut FusionLp, p: &Problem) -> Result<(), PlaceError> {
    free_hold(lp)?;
    lp.session.set_bounds(lp.u, f64::NEG_INFINITY, u_max(p))?;
    let mut obj = vec![(lp.u, 1.0)];
    obj.extend(lp.penalty.iter().copied());
    lp.session.set_objective(Sense::Maximise, &obj)
}

/// Sets up Step 2: U ≥ U* − τ, maximise α Σ w u − (1 − α) C (minus any slack penalty).
fn set_step2(lp: &mut FusionLp, p: &Problem, alpha: f64, u_star: f64) -> Result<(), PlaceError> {
    free_hold(lp)?;
    let um = u_max(p);
    lp.session.set_bounds(lp.u, (u_star - u_tolerance(u_star)).min(um), um)?;
    let mut obj: Vec<(Var, f64)> = Vec::with_capacity(lp.pairs.len() + 1);
    if alpha > 0.0 {
        obj.extend(utility_terms(lp, p).into_iter().map(|(z, c)| (z, alpha * c)));
    }
    if alpha < 1.0 {
        obj.push((lp.cost, -(1.0 - alpha)));
    }
    obj.extend(lp.penalty.iter().copied());
    lp.session.set_objective(Sense::Maximise, &obj)
}

/// The weighted utility part of Step 2's objective (α = 1): `−w / (k D)` on each request's
/// `z`, so that `Σ w u = Σ w / k + Σ coef·z`.
fn utility_terms(lp: &FusionLp, p: &Problem) -> Vec<(Var, f64)> {
    lp.pairs
        .iter()
        .map(|pair| {
            let d = &p.demands[pair.demand];
            let w = p.regions[d.region].weight;
            (pair.z, -w / (d.sla.importance * d.sla.span_ms()))
        })
        .collect()
}

/// `Σ w / k`: the weighted total utility when every `z` is 0.
fn utility_constant(p: &Problem) -> f64 {
    p.demands.iter().map(|d| p.regions[d.region].weight / d.sla.importance).sum()
}

fn free_hold(lp: &mut FusionLp) -> Result<(), PlaceError> {
    match lp.hold {
        Some(r) => lp.session.set_row_bounds(r, f64::NEG_INFINITY, f64::INFINITY),
        None => Ok(()),
    }
}

/// Sets up Step 3 after Step 2 at α = 1 reached `values`: hold the weighted total utility
/// within [`tie_tolerance`] of its optimum (U's bound from Step 2 stays) and maximise −C
/// (minus any slack penalty). The hold row is added once and re-bounded afterwards, so the
/// model keeps Step 2's basis, which stays primal feasible.
fn set_step3(lp: &mut FusionLp, p: &Problem, values: &[f64]) -> Result<(), PlaceError> {
    let terms = utility_terms(lp, p);
    let part: f64 = terms.iter().map(|(z, c)| c * values.get(z.0).copied().unwrap_or(0.0)).sum();
    let lower = part - tie_tolerance(utility_constant(p) + part);
    match lp.hold {
        Some(r) => lp.session.set_row_bounds(r, lower, f64::INFINITY)?,
        None => lp.hold = Some(lp.session.add_row(lower, f64::INFINITY, &terms)?),
    }
    let mut obj = vec![(lp.cost, -1.0)];
    obj.extend(lp.penalty.iter().copied());
    lp.session.set_objective(Sense::Maximise, &obj)
}

/// The solves of one FUSION run.
struct Steps {
    /// Step 1's optimum (−∞ without fairness).
    u_star: f64,
    /// Step 2's objective value.
    step2_objective: Option<f64>,
    /// The solve whose values are the answer: Step 3's when it ran and found a solution,
    /// else Step 2's.
    last: crate::solver::Solved,
    /// Step 3 ran: (cost before, cost after).
    tie_break: Option<(f64, f64)>,
}

/// Whether Step 3 runs: α = 1 and the tie-break on.
fn wants_step3(alpha: f64, tie_break: bool) -> bool {
    tie_break && alpha >= 1.0
}

/// Step 3 on `lp` after Step 2 solved as `s2`: warm primal simplex from Step 2's basis.
/// Returns the final solve; Step 2's when Step 3 found no solution (e.g. a time limit).
fn step3(
    lp: &mut FusionLp,
    p: &Problem,
    s2: crate::solver::Solved,
    run: &mut Run,
    opts: &SolverOptions,
) -> Result<(crate::solver::Solved, Option<(f64, f64)>), PlaceError> {
    set_step3(lp, p, &s2.values)?;
    let warm = SolverOptions { lp_method: crate::solver::LpMethod::PrimalSimplex, ..opts.clone() };
    let s3 = run.solve(lp, &warm)?;
    if !s3.stats.status.has_solution() {
        return Ok((s2, None));
    }
    let costs = (s2.values[lp.cost.0], s3.values[lp.cost.0]);
    Ok((s3, Some(costs)))
}

/// Step 1 then Step 2 (then Step 3 at α = 1 with `tie_break`) on `lp` as it stands (budget
/// already set); without fairness Step 1 is skipped, with U* = −∞.
fn two_steps(
    lp: &mut FusionLp,
    p: &Problem,
    alpha: f64,
    fairness: bool,
    tie_break: bool,
    run: &mut Run,
    opts: &SolverOptions,
) -> Result<Option<Steps>, PlaceError> {
    let u_star = if fairness {
        set_step1(lp, p)?;
        let s1 = run.solve(lp, opts)?;
        if s1.stats.status == crate::solver::SolveStatus::Infeasible {
            return Ok(None);
        }
        s1.require_solution("FUSION step 1")?;
        s1.values[lp.u.0]
    } else {
        f64::NEG_INFINITY
    };
    set_step2(lp, p, alpha, u_star)?;
    let s2 = run.solve(lp, opts)?;
    if !fairness && s2.stats.status == crate::solver::SolveStatus::Infeasible {
        return Ok(None);
    }
    s2.require_solution("FUSION step 2")?;
    let step2_objective = s2.stats.objective;
    let (last, tie) = if wants_step3(alpha, tie_break) { step3(lp, p, s2, run, opts)? } else { (s2, None) };
    Ok(Some(Steps { u_star, step2_objective, last, tie_break: tie }))
}

/// Candidate (request, zone) pairs above which [`ColumnGeneration::Auto`] generates columns.
pub const CG_PAIR_THRESHOLD: usize = 200_000;
/// Zones per request in the reference's first restricted model (more when their capacity
/// is short). Tests start from one zone and add one column per round, to exercise pricing
/// hard.
#[cfg(not(test))]
const CG_INITIAL_ZONES: usize = 8;
#[cfg(test)]
const CG_INITIAL_ZONES: usize = 1;
/// Nearest zones per request in today's first restricted model, besides the greedy
/// assignment's ([`initial_columns`]). With columns deleted as they stop paying, fewer first
/// columns are faster (MOOC data at capacity 1.2, first point, 24 columns per round: 4 →
/// 10.3 s, 8 → 11.5 s, 16 → 11.9 s, 2 → 13.2 s).
#[cfg(not(test))]
const CG_FIRST_NEAREST: usize = 4;
#[cfg(test)]
const CG_FIRST_NEAREST: usize = 1;
/// Columns added per request and round, best reduced cost first. Under tight capacity Step 1
/// needs chains of reassignments across continents, and each round extends them. Without
/// deleting columns, more per round was faster (MOOC data at capacity 1.2, an α = 1 point:
/// 24 → 16 rounds and 37 s, 8 → 23 rounds and 45 s, 3 → 35 rounds and 63 s); with columns
/// deleted as they stop paying, each iteration is cheaper and fewer per round is faster
/// (first point of the curve, 4 nearest zones first: 12 → 9.8 s, 24 → 10.3 s, 48 → 16.8 s).
#[cfg(not(test))]
const CG_PER_ROUND: usize = 12;
#[cfg(test)]
const CG_PER_ROUND: usize = 1;
/// Columns per request and round of the reference (the code before issue 15).
#[cfg(not(test))]
const CG_PER_ROUND_REFERENCE: usize = 8;
#[cfg(test)]
const CG_PER_ROUND_REFERENCE: usize = 1;
/// A missing column enters the restricted model when its reduced cost is above this.
const CG_PRICE_TOLERANCE: f64 = 1e-9;
/// Column generation deletes the columns that stopped paying once the restricted model holds
/// more than this many columns `x` per row ([`drop_unpaying_columns`]). Measured on the MOOC
/// data at capacity 1.2, first point of the curve: with 8 nearest zones first and 24 columns
/// per round, never 27.4 s, above 10× the rows 22.8 s, 5× 15.1 s, 3× 16.6 s, 2× 14.4 s; with
/// 4 nearest first, 1× 10.4 s and 2× 10.3 s. Tests delete at every round, to exercise it.
#[cfg(not(test))]
const CG_DROP_ABOVE_PER_ROW: usize = 2;
#[cfg(test)]
const CG_DROP_ABOVE_PER_ROW: usize = 0;
/// Candidate pairs above which pricing runs on several threads.
const CG_PARALLEL_PRICING_ABOVE: usize = 100_000;
/// How often, and by what factor, column generation raises the slack penalties when it
/// converges with a slack in use (see [`cg_steps`]).
const CG_MAX_ESCALATIONS: usize = 3;
const CG_ESCALATION: f64 = 100.0;
/// Solves (each warm after the first) before column generation gives up for the full LP.
const CG_MAX_ROUNDS: usize = 1_000;

/// Whether the FUSION LP is solved by column generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnGeneration {
    /// Above [`CG_PAIR_THRESHOLD`] candidate pairs.
    #[default]
    Auto,
    Always,
    Never,
}

#[allow(clippy::large_enum_variant)] // one per solve
enum CgOutcome {
    Solved {
        steps: Steps,
        rounds: usize,
    },
    Infeasible,
    /// No convergence within the round limit: solve the full LP instead.
    GaveUp,
}

/// Prices columns `x_it^j` under one solve's row duals `y`: reduced cost `0 − yᵀa` over the
/// column's rows (4), (8), the cost row, (5) and the shared-capacity rows (x has no
/// objective coefficient; a row absent from the restricted model prices 0). The zone rows'
/// duals are folded once per solve into one price per (service, zone) and slot.
struct Pricer<'a> {
    pairs: &'a [Pair],
    rows: &'a RowIndex,
    duals: &'a [f64],
    zones: usize,
    /// (service × zones + zone) → Σ over the zone's rows of dual × coefficient per slot.
    per_slot: Vec<f64>,
}

impl<'a> Pricer<'a> {
    fn new(p: &Problem, lp: &'a FusionLp, duals: &'a [f64]) -> Self {
        let dual = |r: usize| duals.get(r).copied().unwrap_or(0.0);
        let zones = p.zones.len();
        let mut per_slot = vec![0.0; p.services.len() * zones];
        for (&(si, t), &r) in &lp.rows.capacity {
            per_slot[si * zones + t] += dual(r);
        }
        for (&t, list) in &lp.rows.shared {
            for (res, r, scale) in list {
                for (si, s) in p.services.iter().enumerate() {
                    let need = need_per_slot(s, res);
                    per_slot[si * zones + t] += dual(*r) * need * scale;
                }
            }
        }
        Pricer { pairs: &lp.pairs, rows: &lp.rows, duals, zones, per_slot }
    }

    fn dual(&self, r: usize) -> f64 {
        self.duals.get(r).copied().unwrap_or(0.0)
    }

    /// The reduced costs of pair `pi`'s columns: a function of the zone `t` and the unit
    /// cost of serving the pair there.
    fn pair<'s>(&'s self, p: &'s Problem, pi: usize) -> impl Fn(usize, f64) -> f64 + 's {
        let rows = self.rows;
        let d = &p.demands[self.pairs[pi].demand];
        let (y_cover, y_latency, y_cost) =
            (self.dual(rows.cover[pi]), self.dual(rows.latency[pi]), self.dual(rows.cost));
        let rtt = &p.region_rtt[d.region];
        let zone = &self.per_slot[d.service * self.zones..(d.service + 1) * self.zones];
        let slots = d.slots;
        move |t, unit_cost| -(y_cover - y_latency * rtt[t] + slots * (y_cost * unit_cost + zone[t]))
    }
}

/// Each request's candidate zones (`full`) with the unit cost of serving it there, aligned.
fn candidate_costs(p: &Problem, mode: &Mode, full: &[Vec<usize>]) -> Vec<Vec<f64>> {
    full.iter().enumerate().map(|(di, zs)| zs.iter().map(|&t| unit_cost(p, mode, di, t)).collect()).collect()
}

/// The missing columns with a positive reduced cost (above [`CG_PRICE_TOLERANCE`]), at most
/// `per_round` per request, best first, as (pair, zone). `costs` is [`candidate_costs`] of
/// `full`. Requests are priced in `workers` contiguous chunks on scoped threads (each
/// request's columns depend only on the duals), concatenated in request order, so the
/// result does not depend on the number of workers.
fn price(
    p: &Problem,
    lp: &FusionLp,
    duals: &[f64],
    full: &[Vec<usize>],
    costs: &[Vec<f64>],
    per_round: usize,
    workers: usize,
) -> Vec<(usize, usize)> {
    let pricer = Pricer::new(p, lp, duals);
    let pricer = &pricer;
    let chunk = |range: std::ops::Range<usize>| {
        let mut have = vec![false; p.zones.len()];
        let mut out = Vec::new();
        let mut gains: Vec<(f64, usize)> = Vec::new();
        for pi in range {
            let pair = &pricer.pairs[pi];
            for &t in &pair.zones {
                have[t] = true;
            }
            gains.clear();
            let reduced_cost = pricer.pair(p, pi);
            for (&t, &c) in full[pair.demand].iter().zip(&costs[pair.demand]) {
                if !have[t] {
                    let rc = reduced_cost(t, c);
                    if rc > CG_PRICE_TOLERANCE {
                        gains.push((rc, t));
                    }
                }
            }
            for &t in &pair.zones {
                have[t] = false;
            }
            gains.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            out.extend(gains.iter().take(per_round).map(|&(_, t)| (pi, t)));
        }
        out
    };
    let n = lp.pairs.len();
    let candidates: usize = lp.pairs.iter().map(|pr| full[pr.demand].len()).sum();
    let workers = if candidates < CG_PARALLEL_PRICING_ABOVE { 1 } else { workers.clamp(1, n.max(1)) };
    if workers == 1 {
        return chunk(0..n);
    }
    let per = n.div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| (w * per).min(n)..((w + 1) * per).min(n))
            .map(|r| scope.spawn(move || chunk(r)))
            .collect();
        // A pricing thread only reads shared data; should one panic anyway, the panic is
        // propagated rather than a round priced short.
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// Threads for pricing: the solver options' thread count, else the machine's cores, at most 8.
fn pricing_workers(opts: &SolverOptions) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    opts.threads.map_or(cores, |t| t as usize).clamp(1, 8)
}

/// Deletes from the live model the columns that have stopped paying — at zero, pricing no
/// better than [`CG_PRICE_TOLERANCE`] under the duals of the last solve (pricing would not
/// add them), and not basic — once the restricted model holds more than
/// [`CG_DROP_ABOVE_PER_ROW`] columns `x` per row. HiGHS's primal simplex spends time in
/// proportion to the columns at every iteration (choosing the entering column, pricing the
/// pivotal row, updating Devex weights: 35–45 % of a profile; on the MOOC data at capacity
/// 1.2, 0.38 ms an iteration at 39k columns, 0.91 ms at 97k), and most columns priced in
/// never enter a basis. A deleted column is missing again, so pricing brings it back if its
/// reduced cost turns positive: convergence stays exact. No basic column is deleted, so the
/// basis stays valid and the next solve is still warm (HiGHS refactorises once). Returns
/// how many were deleted.
fn drop_unpaying_columns(
    p: &Problem,
    mode: &Mode,
    lp: &mut FusionLp,
    s: &crate::solver::Solved,
) -> Result<usize, PlaceError> {
    let x_columns: usize = lp.pairs.iter().map(|pr| pr.cols.len()).sum();
    if x_columns <= CG_DROP_ABOVE_PER_ROW * s.stats.rows.max(1) {
        return Ok(0);
    }
    let pricer = Pricer::new(p, lp, &s.row_duals);
    let mut candidates = Vec::new();
    for (pi, pair) in lp.pairs.iter().enumerate() {
        let reduced_cost = pricer.pair(p, pi);
        for (&t, &c) in pair.zones.iter().zip(&pair.cols) {
            let at_zero = s.values.get(c.0).is_some_and(|&x| x <= 1e-12);
            if at_zero && reduced_cost(t, unit_cost(p, mode, pair.demand, t)) <= CG_PRICE_TOLERANCE {
                candidates.push(c);
            }
        }
    }
    let map = lp.session.delete_nonbasic(&candidates)?;
    lp.remap(&map)?;
    let dropped = x_columns - lp.pairs.iter().map(|pr| pr.cols.len()).sum::<usize>();
    lp.dropped += dropped;
    Ok(dropped)
}

impl FusionLp {
    /// Maps every column held through `map` (old index → new index, `None`: deleted; see
    /// [`LpSession::delete_nonbasic`]): deleted `x` columns leave their pair, and every other
    /// column must survive.
    fn remap(&mut self, map: &[Option<usize>]) -> Result<(), PlaceError> {
        let keep = |v: Var| -> Result<Var, PlaceError> {
            map.get(v.0).copied().flatten().map(Var).ok_or_else(|| PlaceError::Solver {
                detail: format!("column {} was deleted but is not an assignment column", v.0),
            })
        };
        for pair in &mut self.pairs {
            let mut zones = Vec::with_capacity(pair.zones.len());
            let mut cols = Vec::with_capacity(pair.cols.len());
            for (&t, &c) in pair.zones.iter().zip(&pair.cols) {
                if let Some(n) = map.get(c.0).copied().flatten() {
                    zones.push(t);
                    cols.push(Var(n));
                }
            }
            pair.zones = zones;
            pair.cols = cols;
            pair.z = keep(pair.z)?;
        }
        self.u = keep(self.u)?;
        self.cost = keep(self.cost)?;
        for s in self.slack.iter_mut().flatten() {
            *s = keep(*s)?;
        }
        for (v, _) in &mut self.penalty {
            *v = keep(*v)?;
        }
        Ok(())
    }
}

/// Adds the columns `new` (pair, zone) to the live model with their coefficients in rows
/// (4), (8), the cost row, (5) and the shared-capacity rows, then the capacity rows that the
/// new columns make necessary (the restricted model only has rows that can bind), so the
/// next solve starts from the current basis.
fn add_columns(
    p: &Problem,
    mode: &Mode,
    opts: &FusionOptions,
    lp: &mut FusionLp,
    new: &[(usize, usize)],
) -> Result<(), PlaceError> {
    let mut touched = std::collections::BTreeSet::new();
    let mut columns = Vec::with_capacity(new.len());
    for &(pi, t) in new {
        let di = lp.pairs[pi].demand;
        let d = &p.demands[di];
        let s = &p.services[d.service];
        let mut rows = vec![
            (lp.rows.cover[pi], 1.0),
            (lp.rows.latency[pi], -p.region_rtt[d.region][t]),
            (lp.rows.cost, d.slots * unit_cost(p, mode, di, t)),
        ];
        if let Some(&r) = lp.rows.capacity.get(&(d.service, t)) {
            rows.push((r, d.slots));
        }
        for (res, r, scale) in lp.rows.shared.get(&t).into_iter().flatten() {
            let per_slot = need_per_slot(s, res);
            rows.push((*r, per_slot * d.slots * scale));
        }
        columns.push(rows);
        touched.insert(t);
    }
    let vars = lp.session.add_vars(1.0, &columns)?;
    for (&(pi, t), v) in new.iter().zip(vars) {
        lp.pairs[pi].zones.push(t);
        lp.pairs[pi].cols.push(v);
    }
    // Every column of the touched zones, per zone and service: (column, slots).
    let mut by_zone: BTreeMap<usize, BTreeMap<usize, Vec<(Var, f64)>>> =
        touched.iter().map(|&t| (t, BTreeMap::new())).collect();
    for pair in &lp.pairs {
        let d = &p.demands[pair.demand];
        for (t, &c) in pair.zones.iter().zip(&pair.cols) {
            if let Some(per_service) = by_zone.get_mut(t) {
                per_service.entry(d.service).or_default().push((c, d.slots));
            }
        }
    }
    for (t, per_service) in by_zone {
        for (&si, row) in &per_service {
            let cap = capacity(p, mode, si, t);
            let potential: f64 = row.iter().map(|(_, a)| a).sum();
            if potential > cap + 1e-9 && !lp.rows.capacity.contains_key(&(si, t)) {
                let r = lp.session.add_row(f64::NEG_INFINITY, cap, row)?;
                lp.rows.capacity.insert((si, t), r);
            }
        }
        if opts.shared_zone_capacity && matches!(mode, Mode::Placement) {
            for (res, a) in &p.zones[t].capacity.0 {
                if lp.rows.shared.get(&t).is_some_and(|l| l.iter().any(|(r, ..)| r == res)) {
                    continue;
                }
                if let Some((cap, scale, row)) = shared_row(p, res, a.value as f64, &per_service) {
                    let ri = lp.session.add_row(f64::NEG_INFINITY, cap, &row)?;
                    lp.rows.shared.entry(t).or_default().push((res.clone(), ri, scale));
                }
            }
        }
    }
    Ok(())
}

/// The zones of each request in the first restricted model: its [`CG_FIRST_NEAREST`]
/// nearest, plus every zone that a greedy transportation assignment gives it. The greedy
/// takes all candidate pairs nearest first and serves as much of the request's remaining
/// demand as the zone's remaining capacity holds (slot capacity (5) and, with shared zone
/// capacity, each resource), so under tight capacity the first model already serves
/// (nearly) everyone without the big-M slacks: the slack phase of column generation — many
/// rounds that add each request's next-nearest zones — is skipped. The greedy only chooses
/// columns; the LP decides, so exactness does not depend on it.
fn initial_columns(p: &Problem, mode: &Mode, opts: &FusionOptions, full: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut pick: Vec<Vec<usize>> = full
        .iter()
        .enumerate()
        .map(|(di, zs)| {
            let rtt = &p.region_rtt[p.demands[di].region];
            let mut by_rtt = zs.clone();
            by_rtt.sort_by(|&a, &b| rtt[a].total_cmp(&rtt[b]).then(a.cmp(&b)));
            by_rtt.truncate(CG_FIRST_NEAREST);
            by_rtt
        })
        .collect();
    let shared = opts.shared_zone_capacity && matches!(mode, Mode::Placement);
    let mut slots: Vec<Vec<f64>> =
        (0..p.services.len()).map(|si| (0..p.zones.len()).map(|t| capacity(p, mode, si, t)).collect()).collect();
    let mut resources: Vec<BTreeMap<String, f64>> = p
        .zones
        .iter()
        .map(|z| {
            if shared {
                z.capacity.0.iter().map(|(r, a)| (r.clone(), a.value as f64)).collect()
            } else {
                BTreeMap::new()
            }
        })
        .collect();
    let per_slot: Vec<Vec<(String, f64)>> = p
        .services
        .iter()
        .map(|s| {
            s.instance_resources
                .0
                .iter()
                .map(|(r, a)| (r.clone(), a.value as f64 / f64::from(s.slots_per_instance)))
                .filter(|(_, v)| *v > 0.0)
                .collect()
        })
        .collect();
    let mut want: Vec<f64> = p.demands.iter().map(|d| d.slots).collect();
    let mut order: Vec<(f64, usize, usize)> = full
        .iter()
        .enumerate()
        .flat_map(|(di, zs)| {
            let rtt = &p.region_rtt[p.demands[di].region];
            zs.iter().map(move |&t| (rtt[t], di, t))
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for (_, di, t) in order {
        if want[di] <= 1e-9 {
            continue;
        }
        let si = p.demands[di].service;
        let mut take = want[di].min(slots[si][t]);
        if shared {
            for (r, v) in &per_slot[si] {
                take = take.min(resources[t].get(r).copied().unwrap_or(0.0) / v);
            }
        }
        if take <= 1e-9 {
            continue;
        }
        want[di] -= take;
        slots[si][t] -= take;
        if shared {
            for (r, v) in &per_slot[si] {
                if let Some(left) = resources[t].get_mut(r) {
                    *left -= take * v;
                }
            }
        }
        if !pick[di].contains(&t) {
            pick[di].push(t);
        }
    }
    for zs in &mut pick {
        zs.sort_unstable();
    }
    pick
}

/// The big-M base of the slack penalties (see [`slack_penalty`]): 1,000 × the largest utility
/// spread.
fn cg_big_m(p: &Problem) -> f64 {
    let spread = p
        .demands
        .iter()
        .map(|d| 1.0 + (d.sla.r_max.as_millis() - d.sla.r_min.as_millis()) / (d.sla.importance * d.sla.span_ms()))
        .fold(1.0, f64::max);
    1e3 * spread
}

/// The first restricted model of column generation. `budget_row`: the budget row
/// `C − s_b ≤ budget` exists even without a budget (bound +∞), so that a session can change
/// the budget later ([`set_budget`]).
fn cg_model(
    p: &Problem,
    mode: &Mode,
    opts: &FusionOptions,
    full: &[Vec<usize>],
    pruned: usize,
    budget_row: bool,
    run: &mut Run,
) -> Result<FusionLp, PlaceError> {
    let started = std::time::Instant::now();
    let active = if opts.cg_reference { nearest_columns(p, mode, full) } else { initial_columns(p, mode, opts, full) };
    let lp = build(p, mode, active, pruned, opts, Slacks::Penalty(cg_big_m(p)), budget_row)?;
    run.stats.build_seconds += started.elapsed().as_secs_f64();
    Ok(lp)
}

/// The first restricted model before issue 15 (the reference of the benchmarks): each
/// request's nearest zones, at least [`CG_INITIAL_ZONES`], more until they offer 1.5 × its
/// demand.
fn nearest_columns(p: &Problem, mode: &Mode, full: &[Vec<usize>]) -> Vec<Vec<usize>> {
    full.iter()
        .enumerate()
        .map(|(di, zs)| {
            let d = &p.demands[di];
            let rtt = &p.region_rtt[d.region];
            let mut by_rtt = zs.clone();
            by_rtt.sort_by(|&a, &b| rtt[a].total_cmp(&rtt[b]).then(a.cmp(&b)));
            let mut pick = Vec::new();
            let mut cap = 0.0;
            for t in by_rtt {
                if pick.len() >= CG_INITIAL_ZONES && (cap >= 1.5 * d.slots || cfg!(test)) {
                    break;
                }
                cap += capacity(p, mode, d.service, t);
                pick.push(t);
            }
            pick.sort_unstable();
            pick
        })
        .collect()
}

/// Sets the budget of a column-generation model built with a budget row: the row's bound and
/// the price of overrunning it.
fn set_budget(lp: &mut FusionLp, budget: Option<f64>, m: f64) -> Result<(), PlaceError> {
    let Some(b) = lp.budget else {
        return match budget {
            None => Ok(()),
            Some(_) => Err(PlaceError::Solver { detail: "the model was built without a budget row".into() }),
        };
    };
    lp.session.set_row_bounds(b.row, f64::NEG_INFINITY, budget.map_or(f64::INFINITY, budget_bound))?;
    lp.penalty[b.penalty].1 = -m * lp.penalty_scale / budget.map_or(1.0, |x| x.abs().max(1.0));
    Ok(())
}

/// Solves Steps 1, 2 (and 3) by column generation on `lp` as it stands (its columns, basis
/// and budget): re-priced with the duals until no column has a positive reduced cost (first
/// for Step 1, then for Step 2, then for Step 3 when it runs: its hold row has no `x` term,
/// so pricing is unchanged). Unserved demand and budget overrun are penalised slacks, so
/// restricted models stay feasible; the result is the full LP's optimum. Columns are added
/// to the live model, and every re-solve after the first is a warm primal simplex from the
/// previous basis (new columns enter at zero, so the basis stays primal feasible).
fn cg_steps(
    p: &Problem,
    mode: &Mode,
    opts: &FusionOptions,
    lp: &mut FusionLp,
    full: &[Vec<usize>],
    cold: bool,
    run: &mut Run,
) -> Result<CgOutcome, PlaceError> {
    // Without fairness Step 2 starts at once, with no floor on U.
    let mut u_star: Option<f64> = if opts.max_min_fairness { None } else { Some(f64::NEG_INFINITY) };
    // Step 2 converged and Step 3 runs: (Step 2's objective, Step 2's cost).
    let mut step3_of: Option<(Option<f64>, f64)> = None;
    let step3_wanted = wants_step3(opts.alpha, opts.tie_break);
    let warm = SolverOptions { lp_method: crate::solver::LpMethod::PrimalSimplex, ..opts.solver.clone() };
    let per_round = if opts.cg_reference { CG_PER_ROUND_REFERENCE } else { CG_PER_ROUND };
    let workers = pricing_workers(&opts.solver);
    let costs = candidate_costs(p, mode, full);
    let mut step_set = false;
    let mut added = false;
    let mut escalations = 0;
    for round in 0..CG_MAX_ROUNDS {
        if !step_set {
            match u_star {
                None => set_step1(lp, p)?,
                Some(u) => set_step2(lp, p, opts.alpha, u)?,
            }
            step_set = true;
        }
        let s = run.solve(lp, if round == 0 && cold { &opts.solver } else { &warm })?;
        s.require_solution("FUSION column generation")?;
        // Columns added last round and not one simplex iteration since: HiGHS judges none
        // of them improving (their reduced cost is within its tolerance), and every other
        // missing column prices no better, so the restricted optimum is the full one. (The
        // reference keeps pricing them, as before.)
        let stalled = !opts.cg_reference && added && s.stats.simplex_iterations == 0 && s.stats.ipm_iterations == 0;
        let started = std::time::Instant::now();
        let new = if stalled { Vec::new() } else { price(p, lp, &s.row_duals, full, &costs, per_round, workers) };
        run.stats.pricing_seconds += started.elapsed().as_secs_f64();
        added = !new.is_empty();
        if added {
            let started = std::time::Instant::now();
            if !opts.cg_reference {
                drop_unpaying_columns(p, mode, lp, &s)?;
            }
            add_columns(p, mode, opts, lp, &new)?;
            run.stats.build_seconds += started.elapsed().as_secs_f64();
            continue;
        }
        let slack: f64 = lp.penalty.iter().map(|(v, _)| s.values[v.0]).sum();
        // Converged with a slack in use: the big-M price may be too low for this objective
        // (Step 2 at α = 1 weighs utility by group size, and a region's utility can be worth
        // more than the budget row's price per unit of cost), so raise every penalty and go
        // on; only a slack that stays at the highest price proves infeasibility.
        if slack > 1e-7 && escalations < CG_MAX_ESCALATIONS {
            escalations += 1;
            lp.penalty_scale *= CG_ESCALATION;
            for (_, c) in &mut lp.penalty {
                *c *= CG_ESCALATION;
            }
            match (u_star, step3_of.is_some()) {
                (None, _) => set_step1(lp, p)?,
                (Some(u), false) => set_step2(lp, p, opts.alpha, u)?,
                (Some(_), true) => {
                    let mut obj = vec![(lp.cost, -1.0)];
                    obj.extend(lp.penalty.iter().copied());
                    lp.session.set_objective(Sense::Maximise, &obj)?;
                }
            }
            continue;
        }
        match u_star {
            None if slack > 1e-7 => return Ok(CgOutcome::Infeasible),
            None => {
                u_star = Some(s.values[lp.u.0]);
                step_set = false;
            }
            // Without Step 1 nothing proved feasibility before Step 2.
            Some(_) if step3_of.is_none() && !opts.max_min_fairness && slack > 1e-7 => {
                return Ok(CgOutcome::Infeasible)
            }
            // Step 1 proved the LP feasible, so a slack left at the highest price is the
            // solver's numerics, not an answer.
            Some(_) if slack > 1e-7 => {
                return Err(PlaceError::Solver {
                    detail: format!(
                        "FUSION column generation: {slack:.3e} of slack left after Step 1 proved the LP feasible (big-M raised {escalations} times)"
                    ),
                })
            }
            Some(_) if step3_of.is_none() && step3_wanted => {
                step3_of = Some((s.stats.objective, s.values[lp.cost.0]));
                set_step3(lp, p, &s.values)?;
            }
            Some(u) => {
                let (step2_objective, tie_break) = match step3_of {
                    Some((o, c2)) => (o, Some((c2, s.values[lp.cost.0]))),
                    None => (s.stats.objective, None),
                };
                let steps = Steps { u_star: u, step2_objective, last: s, tie_break };
                return Ok(CgOutcome::Solved { steps, rounds: round + 1 });
            }
        }
    }
    Ok(CgOutcome::GaveUp)
}

/// Explains why the FUSION LP is infeasible: budget (LP feasible without it) or capacity
/// (elastic coverage slack per request).
fn diagnose(p: &Problem, mode: &Mode, opts: &FusionOptions, run: &mut Run) -> Result<PlaceError, PlaceError> {
    let mut reasons = Vec::new();
    if let Some(budget) = opts.budget {
        let (cands, pruned) = candidates(p, mode);
        let no_budget = FusionOptions { budget: None, ..opts.clone() };
        let mut lp = build(p, mode, cands, pruned, &no_budget, Slacks::None, false)?;
        lp.session.set_objective(Sense::Minimise, &[(lp.cost, 1.0)])?;
        let s = run.solve(&mut lp, &opts.solver)?;
        if s.stats.status.has_solution() {
            let min_cost = s.values[lp.cost.0];
            reasons.push(reason(
                ConstraintFamily::Budget,
                vec!["TOTAL_COST".into()],
                format!("serving all demand costs at least {min_cost:.6} per hour, above the budget (TOTAL_COST) of {budget}"),
            ));
            return Ok(PlaceError::Infeasible { reasons });
        }
    }
    let (cands, pruned) = candidates(p, mode);
    let no_budget = FusionOptions { budget: None, ..opts.clone() };
    let mut lp = build(p, mode, cands, pruned, &no_budget, Slacks::Elastic, false)?;
    let s = run.solve(&mut lp, &opts.solver)?;
    let values = s.require_solution("FUSION elastic diagnosis")?;
    for (pi, sl) in lp.slack.iter().enumerate() {
        let Some(sl) = sl else { continue };
        let v = values[sl.0];
        if v > 1e-7 {
            let pair = &lp.pairs[pi];
            let d = &p.demands[pair.demand];
            let (sname, rname) = (&p.services[d.service].name, &p.regions[d.region].name);
            let zones: Vec<&str> = pair.zones.iter().take(5).map(|&t| p.zones[t].name.as_str()).collect();
            reasons.push(reason(
                ConstraintFamily::Capacity,
                vec![sname.clone(), rname.clone()],
                format!(
                    "{:.3} of {} slots of service {sname:?} for region {rname:?} cannot be served: the {} zone(s) within reach ({}{}) are full",
                    v * d.slots,
                    d.slots,
                    pair.zones.len(),
                    zones.join(", "),
                    if pair.zones.len() > 5 { ", …" } else { "" }
                ),
            ));
        }
    }
    if reasons.is_empty() {
        reasons.push(reason(
            ConstraintFamily::Other,
            vec![],
            "the LP is infeasible but relaxing demand coverage and the budget did not show why",
        ));
    }
    Ok(PlaceError::Infeasible { reasons })
}

/// Places services with the two-step FUSION LP and rounds the result into instances.
pub fn place(problem: &Problem, opts: &FusionOptions) -> Result<Plan, PlaceError> {
    solve_mode(problem, &Mode::Placement, opts)
}

/// The service-selection variant: assigns regions to running instances' free slots.
pub fn select(problem: &Problem, selection: &Selection, opts: &FusionOptions) -> Result<Plan, PlaceError> {
    solve_mode(problem, &Mode::Selection(selection), opts)
}

fn check_options(opts: &FusionOptions) -> Result<(), PlaceError> {
    if !(0.0..=1.0).contains(&opts.alpha) {
        return Err(PlaceError::input("fusion.alpha", format!("expected α in [0, 1], found {}", opts.alpha)));
    }
    if let Some(b) = opts.budget {
        if !(b.is_finite() && b >= 0.0) {
            return Err(PlaceError::input("fusion.budget", format!("expected a non-negative budget, found {b}")));
        }
    }
    Ok(())
}

/// Whether column generation solves a problem with `n_pairs` candidate pairs.
fn uses_cg(opts: &FusionOptions, n_pairs: usize) -> bool {
    match opts.column_generation {
        ColumnGeneration::Always => true,
        ColumnGeneration::Never => false,
        ColumnGeneration::Auto => n_pairs > CG_PAIR_THRESHOLD,
    }
}

fn cg_note(lp: &FusionLp, rounds: usize, n_pairs: usize) -> String {
    let columns: usize = lp.pairs.iter().map(|pr| pr.zones.len()).sum();
    format!(
        "column generation: {rounds} round(s), {columns} of {n_pairs} candidate columns in the model ({} deleted again as they stopped paying)",
        lp.dropped
    )
}

/// Steps 1–3 on the full LP (no column generation).
fn full_lp(
    p: &Problem,
    mode: &Mode,
    cands: Vec<Vec<usize>>,
    pruned: usize,
    opts: &FusionOptions,
    run: &mut Run,
) -> Result<(FusionLp, Steps), PlaceError> {
    let started = std::time::Instant::now();
    let mut lp = build(p, mode, cands, pruned, opts, Slacks::None, false)?;
    run.stats.build_seconds += started.elapsed().as_secs_f64();
    match two_steps(&mut lp, p, opts.alpha, opts.max_min_fairness, opts.tie_break, run, &opts.solver)? {
        Some(steps) => Ok((lp, steps)),
        None => Err(diagnose(p, mode, opts, run)?),
    }
}

fn solve_mode(p: &Problem, mode: &Mode, opts: &FusionOptions) -> Result<Plan, PlaceError> {
    check_options(opts)?;
    let (cands, pruned) = candidates(p, mode);
    let reasons = prechecks(p, mode, &cands, opts.shared_zone_capacity);
    if !reasons.is_empty() {
        return Err(PlaceError::Infeasible { reasons });
    }
    let mut run = Run { stats: PlanStats::default() };
    let n_pairs: usize = cands.iter().map(Vec::len).sum();
    let mut note = None;
    if uses_cg(opts, n_pairs) {
        let mut lp = cg_model(p, mode, opts, &cands, pruned, false, &mut run)?;
        match cg_steps(p, mode, opts, &mut lp, &cands, true, &mut run)? {
            CgOutcome::Solved { steps, rounds } => {
                let note = cg_note(&lp, rounds, n_pairs);
                return finish(p, mode, opts, &lp, steps, Some(note), run);
            }
            CgOutcome::Infeasible => return Err(diagnose(p, mode, opts, &mut run)?),
            CgOutcome::GaveUp => note = Some("column generation did not converge; the full LP was solved".into()),
        }
    }
    let (lp, steps) = full_lp(p, mode, cands, pruned, opts, &mut run)?;
    finish(p, mode, opts, &lp, steps, note, run)
}

/// One FUSION placement problem solved at several (α, budget) points — the trade-off
/// curve's — with **one live column-generation model**: the columns generated at one point
/// stay for the next (a column does not depend on α or the budget), the budget is a row
/// whose bound changes, and each point's Steps 1–3 start warm (primal simplex) from the
/// previous point's basis. Each point's answer is the full LP's optimum, exactly as
/// [`place`] with the same α and budget gives it (the convergence test is the same: no
/// missing column with a positive reduced cost). Problems below [`CG_PAIR_THRESHOLD`]
/// candidate pairs (with [`ColumnGeneration::Auto`]) or with [`ColumnGeneration::Never`]
/// are solved by [`place`] at every point.
///
/// The options' [`SolverOptions::time_limit`] bounds each point (HiGHS's clock restarts at
/// every point).
pub struct FusionSession<'a> {
    p: &'a Problem,
    opts: FusionOptions,
    cands: Vec<Vec<usize>>,
    pruned: usize,
    n_pairs: usize,
    lp: Option<FusionLp>,
}

impl<'a> FusionSession<'a> {
    /// Checks the options and the problem (the cheap infeasibility pre-checks); builds
    /// nothing yet. `opts.alpha` and `opts.budget` are ignored: each point gives its own.
    pub fn new(problem: &'a Problem, opts: &FusionOptions) -> Result<Self, PlaceError> {
        let opts = FusionOptions { alpha: 1.0, budget: None, ..opts.clone() };
        check_options(&opts)?;
        let (cands, pruned) = candidates(problem, &Mode::Placement);
        let reasons = prechecks(problem, &Mode::Placement, &cands, opts.shared_zone_capacity);
        if !reasons.is_empty() {
            return Err(PlaceError::Infeasible { reasons });
        }
        let n_pairs = cands.iter().map(Vec::len).sum();
        Ok(FusionSession { p: problem, opts, cands, pruned, n_pairs, lp: None })
    }

    /// The plan at `alpha` under `budget` (what [`place`] returns for these options).
    pub fn place(&mut self, alpha: f64, budget: Option<f64>) -> Result<Plan, PlaceError> {
        let (p, mode) = (self.p, Mode::Placement);
        let opts = FusionOptions { alpha, budget, ..self.opts.clone() };
        check_options(&opts)?;
        if !uses_cg(&opts, self.n_pairs) {
            return solve_mode(p, &mode, &opts);
        }
        let mut run = Run { stats: PlanStats::default() };
        let cold = self.lp.is_none();
        let lp = match &mut self.lp {
            Some(lp) => lp,
            None => self.lp.insert(cg_model(p, &mode, &opts, &self.cands, self.pruned, true, &mut run)?),
        };
        lp.session.reset_clock()?;
        set_budget(lp, budget, cg_big_m(p))?;
        match cg_steps(p, &mode, &opts, lp, &self.cands, cold, &mut run)? {
            CgOutcome::Solved { steps, rounds } => {
                let note = format!(
                    "{} (warm session, point {})",
                    cg_note(lp, rounds, self.n_pairs),
                    if cold { "1" } else { "≥ 2" }
                );
                finish(p, &mode, &opts, lp, steps, Some(note), run)
            }
            CgOutcome::Infeasible => Err(diagnose(p, &mode, &opts, &mut run)?),
            CgOutcome::GaveUp => {
                let (lp, steps) = full_lp(p, &mode, self.cands.clone(), self.pruned, &opts, &mut run)?;
                let note = "column generation did not converge; the full LP was solved".to_string();
                finish(p, &mode, &opts, &lp, steps, Some(note), run)
            }
        }
    }
}

/// The plan of a solved LP: true utilities, rounding (placement mode with `opts.rounding`),
/// assignments, placements and notes.
fn finish(
    p: &Problem,
    mode: &Mode,
    opts: &FusionOptions,
    lp: &FusionLp,
    steps: Steps,
    cg_note: Option<String>,
    run: Run,
) -> Result<Plan, PlaceError> {
    let algorithm = match mode {
        Mode::Placement => "fusion-placement",
        Mode::Selection(_) => "fusion-selection",
    };
    let u_star = steps.u_star;
    let s_last = &steps.last;
    let served = served_from(p, lp, &s_last.values);
    let lp_terms = evaluate(p, mode, &served);

    let mut plan = Plan::new(algorithm);
    plan.status = PlanStatus::from_solve(&s_last.stats.status);
    plan.notes.push(format!(
        "pruned {} of {} (request, zone) pairs beyond R_max, the proximity class or without capacity",
        lp.pruned, lp.total_pairs
    ));
    plan.notes.extend(cg_note);
    if !opts.shared_zone_capacity {
        plan.notes.push("shared zone capacity off: services do not compete for a zone's hosts (the paper's LP)".into());
    }
    let alpha_const: f64 = if opts.alpha > 0.0 {
        p.demands.iter().map(|d| opts.alpha * p.regions[d.region].weight / d.sla.importance).sum()
    } else {
        0.0
    };
    plan.bound = steps.step2_objective.map(|o| o + alpha_const);
    match steps.tie_break {
        Some((before, after)) => {
            plan.notes.push(format!(
                "tie-break (Step 3): the cheapest plan within {:.1e} of Step 2's total utility costs {after:.6} instead of {before:.6} per hour",
                tie_tolerance(lp_terms.total_utility)
            ));
            plan.objective_terms.insert("step2_cost".into(), before);
        }
        None if wants_step3(opts.alpha, opts.tie_break) => {
            plan.notes.push("tie-break (Step 3) found no solution in time: Step 2's plan is returned".into());
        }
        None => {}
    }
    if opts.max_min_fairness {
        plan.objective_terms.insert("step1_min_utility".into(), u_star);
    } else {
        plan.notes.push("max-min fairness off: Step 2 alone, no floor on the minimum utility".into());
    }
    plan.objective_terms.insert("lp_min_utility".into(), lp_terms.min_utility);
    plan.objective_terms.insert("lp_total_utility".into(), lp_terms.total_utility);

    let (final_served, placements) = match mode {
        Mode::Placement if opts.rounding => {
            let (s, pl) = round(p, &served, opts.shared_zone_capacity)?;
            (s, pl)
        }
        Mode::Placement => {
            plan.notes.push("rounding off: the LP's fractional assignment, no instances placed".into());
            (served.clone(), BTreeMap::new())
        }
        Mode::Selection(_) => (served.clone(), BTreeMap::new()),
    };
    let terms = evaluate(p, mode, &final_served);
    if matches!(mode, Mode::Placement) && opts.rounding {
        plan.objective_terms.insert("rounding_utility_loss".into(), lp_terms.total_utility - terms.total_utility);
    }
    plan.objective_terms.insert("min_utility".into(), terms.min_utility);
    plan.objective_terms.insert("total_utility".into(), terms.total_utility);
    plan.objective_terms.insert("utility_percent".into(), terms.utility_percent);
    plan.objective_terms.insert("worst_latency_ms".into(), terms.worst_latency_ms);
    match mode {
        Mode::Placement => {
            plan.objective_terms.insert("cost".into(), terms.cost);
        }
        Mode::Selection(_) => {
            plan.objective_terms.insert("transit_cost".into(), terms.cost);
        }
    }
    plan.objective = opts.alpha * terms.total_utility - (1.0 - opts.alpha) * terms.cost;
    if let Some(b) = plan.bound {
        plan.gap = Some(((b - plan.objective) / b.abs().max(1e-9)).max(0.0));
    }

    // Assignments.
    for (di, rows) in final_served.iter().enumerate() {
        let d = &p.demands[di];
        for &(z, slots) in rows {
            plan.assignments.push(Assignment {
                service: p.services[d.service].name.clone(),
                region: p.regions[d.region].name.clone(),
                zone: p.zones[z].name.clone(),
                share: slots / d.slots,
                slots,
                latency_ms: p.region_rtt[d.region][z],
                utility: Some(terms.utilities[di]),
            });
        }
    }
    // Placements: composite deployed whole per zone; slots counted on the entry component.
    let mut instance_cost = 0.0;
    for (&(si, zi), &(n, slots)) in &placements {
        let s = &p.services[si];
        for &ci in &s.placed {
            let comp = &s.service.components[ci];
            instance_cost += f64::from(n) * p.zones[zi].price.hourly(&comp.resources);
            plan.placements.push(Placement {
                service: s.name.clone(),
                subscription: None,
                component: comp.name.clone(),
                zone: p.zones[zi].name.clone(),
                host: None,
                instances: n,
                slots: if ci == s.entry { slots } else { 0.0 },
            });
        }
    }
    if !plan.placements.is_empty() {
        plan.objective_terms.insert("instance_cost".into(), instance_cost);
    }
    plan.stats = run.stats;
    plan.notes.extend(p.notes.iter().cloned());
    plan.normalize();
    Ok(plan)
}

fn slots_by_zone(p: &Problem, served: &Served) -> BTreeMap<(usize, usize), f64> {
    let mut out = BTreeMap::new();
    for (di, rows) in served.iter().enumerate() {
        for &(z, s) in rows {
            *out.entry((p.demands[di].service, z)).or_insert(0.0) += s;
        }
    }
    out
}

/// A region's share at a zone below both of these is an artefact of the LP's tolerance
/// (Step 2 keeps `U ≥ U* − 1e-6`, which leaves shares of ~1e-5 of a region's demand).
const CRUMB_SLOTS: f64 = 1e-3;
const CRUMB_SHARE: f64 = 1e-4;

/// Rounds served slots into whole instances (see the module docs) and repairs capacity.
/// Returns the repaired served matrix and (service, zone) → (instances, slots).
#[allow(clippy::type_complexity)]
fn round(
    p: &Problem,
    served: &Served,
    shared: bool,
) -> Result<(Served, BTreeMap<(usize, usize), (u32, f64)>), PlaceError> {
    let spi = |si: usize| f64::from(p.services[si].slots_per_instance);
    let mut served = served.clone();
    // Crumbs: the LP's tolerance can leave a region a sliver of a slot at another zone, and
    // a sliver would start a whole instance. Each goes to the zone serving most of that
    // region (already within its R_max) when the instances that zone rounds up to hold it.
    let mut by_zone = slots_by_zone(p, &served);
    for (di, rows) in served.iter_mut().enumerate() {
        let si = p.demands[di].service;
        let Some(main) = rows.iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0))).map(|r| r.0) else {
            continue;
        };
        let crumb = CRUMB_SLOTS.max(CRUMB_SHARE * p.demands[di].slots);
        let crumbs: f64 = rows.iter().filter(|r| r.0 != main && r.1 < crumb).map(|r| r.1).sum();
        let there = by_zone.get(&(si, main)).copied().unwrap_or(0.0);
        let rounded = ((there / spi(si)) - 1e-6).ceil().max(0.0) * spi(si);
        if crumbs > 0.0 && there + crumbs <= rounded.min(p.slot_capacity[si][main]) + 1e-9 {
            for r in rows.iter().filter(|r| r.0 != main && r.1 < crumb) {
                if let Some(v) = by_zone.get_mut(&(si, r.0)) {
                    *v -= r.1;
                }
            }
            rows.retain(|r| r.0 == main || r.1 >= crumb);
            if let Some(r) = rows.iter_mut().find(|r| r.0 == main) {
                r.1 += crumbs;
            }
            *by_zone.entry((si, main)).or_insert(0.0) += crumbs;
        }
    }
    let mut slots = slots_by_zone(p, &served);
    let mut n: BTreeMap<(usize, usize), u32> =
        slots.iter().map(|(&k, &s)| (k, ((s / spi(k.0)) - 1e-6).ceil().max(0.0) as u32)).collect();
    let max_n = |si: usize, zi: usize| (p.slot_capacity[si][zi] / spi(si)).floor() as u32;
    // Zone usage with the rounded instances.
    let fits = |n: &BTreeMap<(usize, usize), u32>, zi: usize, extra: Option<usize>| -> bool {
        if !shared {
            return true;
        }
        let mut used = zonal_model::Resources::new();
        for (&(si, z), &k) in n.iter() {
            if z == zi {
                used.add_scaled(&p.services[si].instance_resources, u64::from(k));
            }
        }
        if let Some(si) = extra {
            used.add_scaled(&p.services[si].instance_resources, 1);
        }
        p.zones[zi].capacity.fits(&used)
    };
    // 1. Remove least-filled instances where a zone is over capacity.
    for zi in 0..p.zones.len() {
        while !fits(&n, zi, None) {
            let victim = n
                .iter()
                .filter(|(&(_, z), &k)| z == zi && k > 0)
                .map(|(&(si, z), &k)| {
                    let fill = slots.get(&(si, z)).copied().unwrap_or(0.0) - f64::from(k - 1) * spi(si);
                    (fill, si)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            match victim {
                Some((_, si)) => {
                    if let Some(k) = n.get_mut(&(si, zi)) {
                        *k -= 1;
                    }
                }
                None => break,
            }
        }
    }
    // 2. Move sessions above the rounded instances' slots.
    let keys: Vec<(usize, usize)> = slots.keys().copied().collect();
    for (si, zi) in keys {
        let mut over = slots[&(si, zi)] - f64::from(n.get(&(si, zi)).copied().unwrap_or(0)) * spi(si);
        if over <= 1e-9 {
            continue;
        }
        // Regions served here, farthest first.
        let mut here: Vec<usize> = (0..served.len())
            .filter(|&di| p.demands[di].service == si && served[di].iter().any(|&(z, s)| z == zi && s > 0.0))
            .collect();
        here.sort_by(|&a, &b| {
            p.region_rtt[p.demands[b].region][zi].total_cmp(&p.region_rtt[p.demands[a].region][zi]).then(a.cmp(&b))
        });
        for di in here {
            if over <= 1e-9 {
                break;
            }
            let d = &p.demands[di];
            let bound = latency_bound(p, di);
            let rtt = &p.region_rtt[d.region];
            let mut targets: Vec<usize> =
                (0..p.zones.len()).filter(|&t| t != zi && rtt[t] <= bound && p.slot_capacity[si][t] > 0.0).collect();
            targets.sort_by(|&a, &b| rtt[a].total_cmp(&rtt[b]).then(a.cmp(&b)));
            let mut movable = served[di].iter().find(|&&(z, _)| z == zi).map_or(0.0, |&(_, s)| s).min(over);
            while movable > 1e-9 {
                // Free slots in rounded instances first, then a new instance.
                let spare = |t: usize, slots: &BTreeMap<(usize, usize), f64>, n: &BTreeMap<(usize, usize), u32>| {
                    f64::from(n.get(&(si, t)).copied().unwrap_or(0)) * spi(si)
                        - slots.get(&(si, t)).copied().unwrap_or(0.0)
                };
                let target = targets.iter().copied().find(|&t| spare(t, &slots, &n) > 1e-9).or_else(|| {
                    targets
                        .iter()
                        .copied()
                        .find(|&t| n.get(&(si, t)).copied().unwrap_or(0) < max_n(si, t) && fits(&n, t, Some(si)))
                });
                let Some(t) = target else {
                    return Err(PlaceError::Infeasible {
                        reasons: vec![reason(
                            ConstraintFamily::Capacity,
                            vec![p.services[si].name.clone(), p.regions[d.region].name.clone()],
                            format!(
                                "rounding slot shares into whole instances: {movable:.3} slots of region {:?} at zone {:?} fit in no instance within reach",
                                p.regions[d.region].name, p.zones[zi].name
                            ),
                        )],
                    });
                };
                if spare(t, &slots, &n) <= 1e-9 {
                    *n.entry((si, t)).or_insert(0) += 1;
                }
                let m = movable.min(spare(t, &slots, &n));
                movable -= m;
                over -= m;
                *slots.entry((si, zi)).or_insert(0.0) -= m;
                *slots.entry((si, t)).or_insert(0.0) += m;
                let rows = &mut served[di];
                if let Some(r) = rows.iter_mut().find(|r| r.0 == zi) {
                    r.1 -= m;
                }
                match rows.iter_mut().find(|r| r.0 == t) {
                    Some(r) => r.1 += m,
                    None => rows.push((t, m)),
                }
            }
        }
    }
    for rows in &mut served {
        rows.retain(|r| r.1 > 1e-9);
        rows.sort_by_key(|r| r.0);
    }
    // Re-sum exactly and drop empty instances.
    let slots = slots_by_zone(p, &served);
    let mut out = BTreeMap::new();
    for (k, s) in slots {
        // Moves only fill spare slots or open counted instances, so `need ≤ n[k]`;
        // zones that lost sessions drop their emptied instances here.
        let inst = ((s / spi(k.0)) - 1e-6).ceil().max(0.0) as u32;
        if inst > 0 {
            out.insert(k, (inst, s));
        }
    }
    Ok((served, out))
}

fn point(budget: f64, t: &Terms) -> CurvePoint {
    CurvePoint {
        budget,
        cost: t.cost,
        total_utility: t.total_utility,
        utility_percent: t.utility_percent,
        min_utility: t.min_utility,
        worst_latency_ms: t.worst_latency_ms,
    }
}

/// The cost/utility trade-off curve with `budgets` points (see the module docs).
pub fn tradeoff_curve(problem: &Problem, opts: &FusionOptions, budgets: usize) -> Result<Curve, PlaceError> {
    let p = problem;
    let mode = Mode::Placement;
    let opts = FusionOptions { budget: None, ..opts.clone() };
    let (cands, pruned) = candidates(p, &mode);
    let reasons = prechecks(p, &mode, &cands, opts.shared_zone_capacity);
    if !reasons.is_empty() {
        return Err(PlaceError::Infeasible { reasons });
    }
    if uses_cg(&opts, cands.iter().map(Vec::len).sum()) {
        return session_curve(p, &opts, budgets);
    }
    let mut lp = build(p, &mode, cands, pruned, &opts, Slacks::None, false)?;
    let mut run = Run { stats: PlanStats::default() };
    let (fair, tie) = (opts.max_min_fairness, opts.tie_break);
    let Some(lo) = two_steps(&mut lp, p, 0.0, fair, tie, &mut run, &opts.solver)? else {
        return Err(diagnose(p, &mode, &opts, &mut run)?);
    };
    let lo_terms = evaluate(p, &mode, &served_from(p, &lp, &lo.last.values));
    let min_cost = lo.last.values[lp.cost.0];
    let Some(hi) = two_steps(&mut lp, p, 1.0, fair, tie, &mut run, &opts.solver)? else {
        return Err(PlaceError::Solver { detail: "the max-utility end became infeasible".into() });
    };
    let hi_terms = evaluate(p, &mode, &served_from(p, &lp, &hi.last.values));
    let max_cost = hi.last.values[lp.cost.0].max(min_cost);
    let mut points = Vec::new();
    for k in 0..budgets {
        let budget =
            if budgets == 1 { max_cost } else { min_cost + (max_cost - min_cost) * k as f64 / (budgets - 1) as f64 };
        lp.session.set_bounds(lp.cost, 0.0, budget_bound(budget))?;
        let Some(s) = two_steps(&mut lp, p, 1.0, fair, tie, &mut run, &opts.solver)? else {
            return Err(PlaceError::Solver {
                detail: format!("budget {budget} between the min and max cost became infeasible"),
            });
        };
        points.push(point(budget, &evaluate(p, &mode, &served_from(p, &lp, &s.last.values))));
    }
    Ok(Curve {
        min_cost: point(min_cost, &lo_terms),
        max_utility: point(max_cost, &hi_terms),
        points,
        seconds: run.stats.seconds,
        solves: run.stats.solves,
    })
}

/// [`tradeoff_curve`] by column generation: the same points, solved by one
/// [`FusionSession`] (LP values: no rounding).
fn session_curve(p: &Problem, opts: &FusionOptions, budgets: usize) -> Result<Curve, PlaceError> {
    let opts = FusionOptions { rounding: false, ..opts.clone() };
    let mut session = FusionSession::new(p, &opts)?;
    let (mut seconds, mut solves) = (0.0, 0);
    let mut solve = |alpha: f64, budget: Option<f64>| -> Result<CurvePoint, PlaceError> {
        let plan = session.place(alpha, budget)?;
        seconds += plan.stats.seconds;
        solves += plan.stats.solves;
        let term = |k: &str| plan.term(k).unwrap_or(f64::NAN);
        Ok(CurvePoint {
            budget: budget.unwrap_or_else(|| term("cost")),
            cost: term("cost"),
            total_utility: term("total_utility"),
            utility_percent: term("utility_percent"),
            min_utility: term("min_utility"),
            worst_latency_ms: term("worst_latency_ms"),
        })
    };
    let min_cost = solve(0.0, None)?;
    let max_utility = solve(1.0, None)?;
    let (lo, hi) = (min_cost.cost, max_utility.cost.max(min_cost.cost));
    let mut points = Vec::new();
    for k in 0..budgets {
        let budget = if budgets == 1 { hi } else { lo + (hi - lo) * k as f64 / (budgets - 1) as f64 };
        points.push(solve(1.0, Some(budget))?);
    }
    Ok(Curve { min_cost, max_utility: CurvePoint { budget: hi, ..max_utility }, points, seconds, solves })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check;
    use crate::testkit::*;
    use zonal_model::{Duration, UtilitySla};

    #[test]
    fn everyone_served_at_home_when_capacity_allows() {
        let b = line_bundle(3, 3);
        let p = problem(&b);
        let plan = place(&p, &FusionOptions::default()).unwrap();
        checked(&p, &plan);
        assert!((plan.term("min_utility").unwrap() - 1.0).abs() < 1e-9);
        assert!((plan.term("utility_percent").unwrap() - 100.0).abs() < 1e-6);
        assert_eq!(plan.assignments.len(), 3);
        for a in &plan.assignments {
            assert_eq!(a.region[1..], a.zone[1..], "region rN is served at zN");
            assert_eq!(a.share, 1.0);
        }
        // 2 slots per region, 4 slots per instance → one instance per zone.
        assert!(plan.placements.iter().all(|pl| pl.instances == 1));
        assert!(plan.notes[0].starts_with("pruned 0 of 9"), "{:?}", plan.notes);
    }

    #[test]
    fn capacity_pushes_demand_to_neighbours_fairly() {
        let mut b = line_bundle(3, 1);
        // One region at z0 wants 30 slots; each zone offers 16.
        demand_mut(&mut b).entries[0].slots = zonal_model::SlotProfile::Constant(30);
        let p = problem(&b);
        let plan = place(&p, &FusionOptions { alpha: 1.0, ..Default::default() }).unwrap();
        checked(&p, &plan);
        let at = |z: &str| plan.assignments.iter().find(|a| a.zone == z).map_or(0.0, |a| a.slots);
        assert!((at("z0") - 16.0).abs() < 1e-6, "the home zone is filled: {:?}", plan.assignments);
        assert!((at("z1") - 14.0).abs() < 1e-6, "the rest goes to the nearest neighbour");
        let u1 = plan.term("step1_min_utility").unwrap();
        assert!(plan.term("lp_min_utility").unwrap() >= u1 - 1e-6);
    }

    #[test]
    fn shared_zone_capacity_makes_services_compete() {
        let mut b = line_bundle(2, 1);
        let mut other = service_mut(&mut b, "svc").clone();
        other.name = "svc2".into();
        b.documents.push(zonal_model::Document::Service(other));
        let d = demand_mut(&mut b);
        d.entries[0].slots = zonal_model::SlotProfile::Constant(16);
        d.entries.push(entry("svc2", "r0", 16));
        let p = problem(&b);
        // Shared: z0's 4 cores hold 16 slots in all, so 16 of the 32 go to z1.
        let shared = place(&p, &FusionOptions::default()).unwrap();
        checked(&p, &shared);
        let at_z0: f64 = shared.assignments.iter().filter(|a| a.zone == "z0").map(|a| a.slots).sum();
        assert!((at_z0 - 16.0).abs() < 1e-6, "{:?}", shared.assignments);
        // The paper's LP: each service sees the whole zone; the checker flags the overbooking.
        let paper = place(&p, &FusionOptions { shared_zone_capacity: false, ..Default::default() }).unwrap();
        let at_z0: f64 = paper.assignments.iter().filter(|a| a.zone == "z0").map(|a| a.slots).sum();
        assert!((at_z0 - 32.0).abs() < 1e-6);
        let r = check(&p, &paper);
        assert!(r.violations.iter().any(|v| v.kind == crate::check::ViolationKind::ZoneCapacity), "{}", r.summary());
    }

    #[test]
    fn rounding_moves_sessions_and_reports_the_loss() {
        // Two zones with room for 1 instance of 4 slots each... region r0 at z0 wants 6.
        let mut b = line_bundle(2, 1);
        for z in &mut infra_mut(&mut b).zones {
            z.hosts[0].capacity = res(1, 8);
        }
        demand_mut(&mut b).entries[0].slots = zonal_model::SlotProfile::Constant(6);
        let p = problem(&b);
        let plan = place(&p, &FusionOptions::default()).unwrap();
        checked(&p, &plan);
        assert_eq!(plan.placements.iter().map(|pl| pl.instances).sum::<u32>(), 2);
        assert!(plan.term("rounding_utility_loss").unwrap().abs() < 1e-9, "LP and rounding agree here");
        // With a second service competing for z0's only core, rounding must repair.
        let mut b2 = b.clone();
        for z in &mut infra_mut(&mut b2).zones {
            z.hosts[0].capacity = res(2, 8);
        }
        let mut other = service_mut(&mut b2, "svc").clone();
        other.name = "svc2".into();
        b2.documents.push(zonal_model::Document::Service(other));
        let d = demand_mut(&mut b2);
        d.entries[0].slots = zonal_model::SlotProfile::Constant(3);
        d.entries.push(entry("svc2", "r0", 3));
        d.regions.push(region("r1", Some((50.0, 1.0)), None));
        d.entries.push(entry("svc", "r1", 3));
        d.entries.push(entry("svc2", "r1", 3));
        let p2 = problem(&b2);
        let plan = place(&p2, &FusionOptions { alpha: 1.0, ..Default::default() }).unwrap();
        checked(&p2, &plan);
        assert!(plan.term("rounding_utility_loss").unwrap() >= -1e-9);
    }

    #[test]
    fn rounding_folds_tolerance_crumbs_into_the_main_zone() {
        // 16 slots for r0: z0 holds them in 4 whole instances. The LP's tolerance leaves
        // 0.0015 slots (~1e-4 of the demand) at z1; that must not start an instance there.
        let mut b = line_bundle(2, 1);
        for z in &mut infra_mut(&mut b).zones {
            z.hosts[0].capacity = res(8, 32);
        }
        demand_mut(&mut b).entries[0].slots = zonal_model::SlotProfile::Constant(16);
        let p = problem(&b);
        let crumb = 0.0015;
        let served: Served = vec![vec![(0, 16.0 - crumb), (1, crumb)]];
        let (repaired, counts) = round(&p, &served, true).unwrap();
        assert_eq!(repaired[0], vec![(0, 16.0)], "the crumb joins z0's share");
        assert_eq!(counts.get(&(0, 0)).map(|c| c.0), Some(4));
        assert!(!counts.contains_key(&(0, 1)) || counts[&(0, 1)].0 == 0, "{counts:?}");
        // A real share (a tenth of the demand) stays where the LP put it.
        let served: Served = vec![vec![(0, 14.4), (1, 1.6)]];
        let (kept, counts) = round(&p, &served, true).unwrap();
        assert_eq!(kept[0].len(), 2, "{kept:?}");
        assert_eq!(counts.get(&(0, 1)).map(|c| c.0), Some(1));
    }

    #[test]
    fn step2_trades_utility_against_cost() {
        let mut b = line_bundle(3, 1);
        // z1 is far cheaper than z0; the region sits at z0 (z1 is ≈0.7 ms away).
        infra_mut(&mut b).zones[0].price.cpu_hour = zonal_model::Money::new(10.0);
        demand_mut(&mut b).entries[0].sla = Some(UtilitySla {
            r_min: Duration::from_millis(0.0),
            r_med: Duration::from_millis(10.0),
            r_max: Duration::from_millis(100.0),
            importance: 1.0,
        });
        let p = problem(&b);
        let best = place(&p, &FusionOptions { alpha: 1.0, rounding: false, ..Default::default() }).unwrap();
        let cheap = place(&p, &FusionOptions { alpha: 0.0, rounding: false, ..Default::default() }).unwrap();
        checked(&p, &best);
        checked(&p, &cheap);
        // α = 0 still keeps Step 1's max-min utility: one region, so U* is the best utility.
        assert!(cheap.term("min_utility").unwrap() >= best.term("step1_min_utility").unwrap() - 1e-6);
        assert!(best.term("cost").unwrap() >= cheap.term("cost").unwrap() - 1e-9);
    }

    /// Two zones 71 km apart (≈ 1.4 ms round trip), a region at each, all four pairs within
    /// R_min = 20 ms (so either zone gives either region full utility), the first zone three
    /// times dearer, both with spare capacity.
    fn twin_zones() -> crate::problem::Problem {
        let mut b = line_bundle(2, 2);
        let zones = &mut infra_mut(&mut b).zones;
        zones[0].price.cpu_hour = zonal_model::Money::new(3.0);
        zones[1].price.cpu_hour = zonal_model::Money::new(1.0);
        service_mut(&mut b, "svc").sla = Some(sla(20.0, 30.0, 50.0));
        problem(&b)
    }

    #[test]
    fn alpha_one_takes_the_cheaper_of_equally_useful_zones() {
        let p = twin_zones();
        let cheapest = place(&p, &FusionOptions { alpha: 0.0, rounding: false, ..Default::default() }).unwrap();
        for cg in [ColumnGeneration::Never, ColumnGeneration::Always] {
            for rounding in [false, true] {
                let opts = FusionOptions { alpha: 1.0, rounding, column_generation: cg, ..Default::default() };
                let plan = place(&p, &opts).unwrap();
                checked(&p, &plan);
                let ctx = format!("{cg:?}, rounding {rounding}: {:?} {:?}", plan.objective_terms, plan.assignments);
                assert!(plan.assignments.iter().all(|a| a.zone == "z1"), "{ctx}");
                assert!(plan.placements.iter().all(|pl| pl.zone == "z1"), "{ctx}");
                assert!(plan.term("utility_percent").unwrap() > 100.0 - 1e-6, "{ctx}");
                if !rounding {
                    assert!((plan.term("cost").unwrap() - cheapest.term("cost").unwrap()).abs() < 1e-9, "{ctx}");
                }
                assert!(plan.notes.iter().any(|n| n.starts_with("tie-break (Step 3)")), "{ctx}");
            }
        }
        // Without the tie-break (the code before Step 3) the dearer vertex comes back.
        let old =
            place(&p, &FusionOptions { alpha: 1.0, rounding: false, tie_break: false, ..Default::default() }).unwrap();
        assert!(old.term("cost").unwrap() > cheapest.term("cost").unwrap() + 1e-6, "{:?}", old.assignments);
    }

    #[test]
    fn alpha_below_one_runs_no_tie_break() {
        let p = twin_zones();
        let plan = place(&p, &FusionOptions { alpha: 0.999, rounding: false, ..Default::default() }).unwrap();
        assert!(!plan.notes.iter().any(|n| n.contains("Step 3")), "{:?}", plan.notes);
        assert_eq!(plan.stats.solves, 2);
        assert!(plan.assignments.iter().all(|a| a.zone == "z1"), "cost is in the objective");
    }

    #[test]
    fn curve_max_utility_end_is_the_cheapest_at_its_utility() {
        let p = twin_zones();
        let new = tradeoff_curve(&p, &FusionOptions::default(), 3).unwrap();
        let old = tradeoff_curve(&p, &FusionOptions { tie_break: false, ..Default::default() }, 3).unwrap();
        let eps = tie_tolerance(old.max_utility.total_utility);
        assert!(new.max_utility.cost <= old.max_utility.cost + 1e-9, "{new:?}\n{old:?}");
        assert!(new.max_utility.total_utility >= old.max_utility.total_utility - eps, "{new:?}\n{old:?}");
        // The top of the curve costs what the cheapest plan costs: the zones tie on utility.
        assert!((new.max_utility.cost - new.min_cost.cost).abs() < 1e-9, "{new:?}");
        for (n, o) in new.points.iter().zip(&old.points) {
            assert!(n.cost <= o.cost + 1e-9 && n.total_utility >= o.total_utility - eps, "{n:?} {o:?}");
        }
    }

    #[test]
    fn curve_min_utility_is_monotone_in_budget() {
        let mut b = line_bundle(4, 3);
        let zones = &mut infra_mut(&mut b).zones;
        zones[0].price.cpu_hour = zonal_model::Money::new(5.0);
        zones[1].price.cpu_hour = zonal_model::Money::new(2.0);
        let p = problem(&b);
        let c = tradeoff_curve(&p, &FusionOptions::default(), 5).unwrap();
        assert_eq!(c.points.len(), 5);
        assert!(c.min_cost.cost <= c.max_utility.cost + 1e-9);
        for w in c.points.windows(2) {
            assert!(w[1].budget >= w[0].budget);
            assert!(w[1].min_utility >= w[0].min_utility - 1e-6, "{:?}", c.points);
            assert!(w[1].cost <= w[1].budget + 1e-6);
        }
        let last = c.points.last().unwrap();
        // Both ends of the comparison ran Step 3, each within ε of its Step 2.
        let eps = 2.0 * tie_tolerance(c.max_utility.total_utility) + 1e-9;
        assert!((last.total_utility - c.max_utility.total_utility).abs() < eps, "{last:?} {:?}", c.max_utility);
    }

    #[test]
    fn selection_uses_free_slots_and_nearest_zones() {
        let b = line_bundle(3, 2);
        let p = problem(&b);
        let mut sel = Selection::default();
        sel.free_slots.insert(("svc".into(), "z1".into()), 3.0);
        sel.free_slots.insert(("svc".into(), "z2".into()), 10.0);
        sel.transit_cost.insert(("r0".into(), "z2".into()), 1.0);
        let plan = select(&p, &sel, &FusionOptions { alpha: 1.0, ..Default::default() }).unwrap();
        checked(&p, &plan);
        assert!(plan.placements.is_empty());
        let z1: f64 = plan.assignments.iter().filter(|a| a.zone == "z1").map(|a| a.slots).sum();
        assert!(z1 <= 3.0 + 1e-9);
        assert!(plan.term("transit_cost").is_some());
        // Only the nearest zone allowed: r0's nearest zone with a latency is z0, which has no
        // running instance, so r0 cannot be served.
        let near = Selection { nearest_k: Some(1), ..sel.clone() };
        let e = select(&p, &near, &FusionOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Capacity, "r0") || e.names(ConstraintFamily::Demand, "svc"), "{e}");
    }

    #[test]
    fn infeasible_region_beyond_rmax_is_named() {
        let mut b = line_bundle(2, 1);
        demand_mut(&mut b).regions.push(region("faraway", Some((-40.0, 170.0)), None));
        demand_mut(&mut b).entries.push(entry("svc", "faraway", 1));
        let p = problem(&b);
        let e = place(&p, &FusionOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Latency, "faraway"), "{e}");
        assert!(e.to_string().contains("R_max"), "{e}");
    }

    #[test]
    fn infeasible_demand_above_capacity_is_named() {
        let mut b = line_bundle(2, 1);
        demand_mut(&mut b).entries[0].slots = zonal_model::SlotProfile::Constant(100);
        let p = problem(&b);
        let e = place(&p, &FusionOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Demand, "svc"), "{e}");
    }

    #[test]
    fn infeasible_budget_is_named_with_the_minimum_cost() {
        let b = line_bundle(2, 2);
        let p = problem(&b);
        let e = place(&p, &FusionOptions { budget: Some(0.001), ..Default::default() }).unwrap_err();
        assert!(e.names(ConstraintFamily::Budget, "TOTAL_COST"), "{e}");
        assert!(e.to_string().contains("at least"), "{e}");
    }

    #[test]
    fn infeasible_local_capacity_found_by_elastic_resolve() {
        // Total capacity suffices, but r0 can only reach z0 (tight R_max) whose 16 slots are short.
        let mut b = line_bundle(3, 1);
        let d = demand_mut(&mut b);
        d.entries[0].slots = zonal_model::SlotProfile::Constant(20);
        d.entries[0].sla = Some(UtilitySla {
            r_min: Duration::from_millis(0.1),
            r_med: Duration::from_millis(0.2),
            r_max: Duration::from_millis(0.3),
            importance: 1.0,
        });
        let p = problem(&b);
        let e = place(&p, &FusionOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Capacity, "r0"), "{e}");
        assert!(e.to_string().contains("4.000 of 20"), "{e}");
    }

    #[test]
    fn composite_is_deployed_whole_in_each_zone() {
        let mut b = line_bundle(2, 2);
        let s = service_mut(&mut b, "svc");
        let mut db = component("db", 1, 2);
        db.public = false;
        s.components.push(db);
        s.channels.push(zonal_model::Channel {
            from: "app".into(),
            to: "db".into(),
            bandwidth: None,
            max_latency: None,
        });
        let p = problem(&b);
        // One composite instance = 2 cores + 3 GiB → 2 per 4-core zone → 8 slots.
        assert_eq!(p.slot_capacity[0], vec![8.0, 8.0]);
        let plan = place(&p, &FusionOptions::default()).unwrap();
        checked(&p, &plan);
        for pl in plan.placements.iter().filter(|pl| pl.component == "app") {
            let db = plan.placements.iter().find(|d| d.component == "db" && d.zone == pl.zone).expect("db next to app");
            assert_eq!(db.instances, pl.instances);
            assert_eq!(db.slots, 0.0, "slots are counted on the entry component");
        }
    }

    #[test]
    fn proximity_class_prunes_fusion_zones() {
        let mut b = line_bundle(3, 1);
        infra_mut(&mut b).proximity_classes.insert("near".into(), Duration::from_millis(1.0));
        service_mut(&mut b, "svc").proximity = Some("near".into());
        demand_mut(&mut b).entries[0].slots = zonal_model::SlotProfile::Constant(30);
        let p = problem(&b);
        let plan = place(&p, &FusionOptions::default()).unwrap();
        checked(&p, &plan);
        assert!(plan.assignments.iter().all(|a| a.zone != "z2"), "z2 is 1.43 ms away, beyond the class");
        demand_mut(&mut b).entries[0].slots = zonal_model::SlotProfile::Constant(40);
        let e = place(&problem(&b), &FusionOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Capacity, "r0"), "{e}");
    }

    #[test]
    fn column_generation_prices_in_the_zones_it_needs() {
        let mut b = line_bundle(6, 2);
        demand_mut(&mut b).entries[0].slots = zonal_model::SlotProfile::Constant(40);
        let p = problem(&b);
        let cg =
            place(&p, &FusionOptions { column_generation: ColumnGeneration::Always, ..Default::default() }).unwrap();
        let full =
            place(&p, &FusionOptions { column_generation: ColumnGeneration::Never, ..Default::default() }).unwrap();
        checked(&p, &cg);
        let note = cg.notes.iter().find(|n| n.starts_with("column generation")).expect("a column generation note");
        assert!(!note.starts_with("column generation: 1 round"), "{note}");
        assert!((cg.term("step1_min_utility").unwrap() - full.term("step1_min_utility").unwrap()).abs() < 1e-6);
        assert!((cg.bound.unwrap() - full.bound.unwrap()).abs() < 1e-6);
        // r0's 40 slots need three zones of 16.
        assert!(cg.assignments.iter().filter(|a| a.region == "r0").count() >= 3);
    }

    /// Eight zones on a line, eight regions with uneven demand (4, 7, …, 25 slots: 116 of 128
    /// slots, capacity factor 1.10), each zone dearer than the one before: the nearest zones
    /// of the big regions fill up and demand spills along the line, and utility costs money.
    fn tight_line() -> crate::problem::Problem {
        let mut b = line_bundle(8, 8);
        for (i, z) in infra_mut(&mut b).zones.iter_mut().enumerate() {
            z.price.cpu_hour = zonal_model::Money::new(1.0 + i as f64);
        }
        for (i, e) in demand_mut(&mut b).entries.iter_mut().enumerate() {
            e.slots = zonal_model::SlotProfile::Constant(4 + 3 * i as u32);
        }
        problem(&b)
    }

    fn assert_same_optimum(a: &Plan, b: &Plan, ctx: &str) {
        let rel = |x: f64, y: f64| (x - y).abs() / x.abs().max(y.abs()).max(1.0);
        let u = |p: &Plan| p.term("step1_min_utility").unwrap();
        assert!(rel(u(a), u(b)) <= 1e-6, "{ctx}: U* {} vs {}", u(a), u(b));
        assert!(rel(a.bound.unwrap(), b.bound.unwrap()) <= 1e-5, "{ctx}: Step 2 {:?} vs {:?}", a.bound, b.bound);
        let c = |p: &Plan| p.term("cost").unwrap();
        assert!(rel(c(a), c(b)) <= 1e-4, "{ctx}: cost {} vs {}", c(a), c(b));
    }

    #[test]
    fn first_restricted_model_holds_the_demand_under_tight_capacity() {
        let p = tight_line();
        let (full, _) = candidates(&p, &Mode::Placement);
        let opts = FusionOptions::default();
        let first = initial_columns(&p, &Mode::Placement, &opts, &full);
        // Every request's first zones offer at least its demand, though the capacity they
        // share is short: the greedy gave each the zones it can be served from.
        let mut left: Vec<f64> = (0..p.zones.len()).map(|t| p.slot_capacity[0][t]).collect();
        for (di, zs) in first.iter().enumerate() {
            let mut want = p.demands[di].slots;
            for &t in zs {
                let take = want.min(left[t]);
                want -= take;
                left[t] -= take;
            }
            assert!(want <= 1e-9 || zs.len() > 1, "request {di}: {zs:?}");
        }
        let offered: f64 = first[7].iter().map(|&t| p.slot_capacity[0][t]).sum();
        assert!(offered >= p.demands[7].slots, "r7 (25 slots) gets zones for all of it: {:?}", first[7]);
        // The reference starts from the nearest zone alone (1 in tests).
        assert!(nearest_columns(&p, &Mode::Placement, &full).iter().all(|zs| zs.len() == 1));
    }

    #[test]
    fn column_generation_matches_the_full_lp_at_tight_capacity() {
        let p = tight_line();
        for alpha in [0.0, 0.5, 1.0] {
            let base = FusionOptions { alpha, rounding: false, ..Default::default() };
            let full =
                place(&p, &FusionOptions { column_generation: ColumnGeneration::Never, ..base.clone() }).unwrap();
            for cg_reference in [false, true] {
                let opts = FusionOptions { column_generation: ColumnGeneration::Always, cg_reference, ..base.clone() };
                let cg = place(&p, &opts).unwrap();
                checked(&p, &cg);
                assert_same_optimum(&cg, &full, &format!("α {alpha}, reference {cg_reference}"));
            }
        }
    }

    /// The number in a column-generation note's "(N deleted again …)".
    fn deleted_in(plan: &Plan) -> usize {
        let note = plan.notes.iter().find(|n| n.contains("deleted again")).expect("a column-generation note");
        let (before, _) = note.split_once(" deleted again").expect("deleted again");
        before.rsplit_once('(').and_then(|(_, n)| n.parse().ok()).expect("a count")
    }

    #[test]
    fn columns_that_stop_paying_are_deleted_and_the_optimum_holds() {
        // Tests delete at every round (CG_DROP_ABOVE_PER_ROW = 0) and add one column per
        // request and round, so columns come and go many times before convergence.
        let p = tight_line();
        let mut deleted = 0;
        for alpha in [0.0, 1.0] {
            let base = FusionOptions { alpha, rounding: false, ..Default::default() };
            let full =
                place(&p, &FusionOptions { column_generation: ColumnGeneration::Never, ..base.clone() }).unwrap();
            let cg = place(&p, &FusionOptions { column_generation: ColumnGeneration::Always, ..base.clone() }).unwrap();
            checked(&p, &cg);
            assert_same_optimum(&cg, &full, &format!("α {alpha}"));
            deleted += deleted_in(&cg);
            let reference = FusionOptions { column_generation: ColumnGeneration::Always, cg_reference: true, ..base };
            assert_eq!(deleted_in(&place(&p, &reference).unwrap()), 0, "the reference deletes nothing");
        }
        assert!(deleted > 0, "no column was deleted: the test does not exercise deletion");
    }

    #[test]
    fn session_points_match_separate_full_lps() {
        let p = tight_line();
        let base = FusionOptions { rounding: false, column_generation: ColumnGeneration::Always, ..Default::default() };
        let mut session = FusionSession::new(&p, &base).unwrap();
        let lo = session.place(0.0, None).unwrap();
        let hi = session.place(1.0, None).unwrap();
        let (min_cost, max_cost) = (lo.term("cost").unwrap(), hi.term("cost").unwrap());
        assert!(max_cost > min_cost + 1e-6, "the curve has a range: {min_cost} {max_cost}");
        let mut points = vec![(0.0, None, lo), (1.0, None, hi)];
        // Budgets up and down again: the budget row's bound moves both ways.
        for f in [0.0, 0.5, 1.0, 0.25] {
            let b = min_cost + f * (max_cost - min_cost);
            points.push((1.0, Some(b), session.place(1.0, Some(b)).unwrap()));
        }
        points.push((0.5, None, session.place(0.5, None).unwrap()));
        for (k, (alpha, budget, plan)) in points.iter().enumerate() {
            checked(&p, plan);
            let note = plan.notes.iter().find(|n| n.starts_with("column generation")).unwrap();
            assert_eq!(note.contains("point 1)"), k == 0, "{note}");
            let full = place(
                &p,
                &FusionOptions {
                    alpha: *alpha,
                    budget: *budget,
                    column_generation: ColumnGeneration::Never,
                    ..base.clone()
                },
            )
            .unwrap();
            assert_same_optimum(plan, &full, &format!("point {k}: α {alpha}, budget {budget:?}"));
            if let Some(b) = budget {
                assert!(plan.term("cost").unwrap() <= b + 1e-6 * b.max(1.0));
            }
        }
        // A budget below the minimum cost is infeasible and named as such; the session
        // goes on afterwards.
        let e = session.place(1.0, Some(min_cost * 0.5)).unwrap_err();
        assert!(e.names(ConstraintFamily::Budget, "TOTAL_COST"), "{e}");
        let again = session.place(1.0, None).unwrap();
        assert_same_optimum(&again, &points[1].2, "after the infeasible point");
    }

    #[test]
    fn budget_holds_under_column_generation_when_utility_is_worth_more_than_the_penalty() {
        // Heavy regions: at α = 1 a unit of cost buys more weighted utility than the first
        // price of overrunning the budget row, so column generation must raise that price
        // rather than return a plan above the budget.
        let mut b = line_bundle(8, 8);
        for (i, z) in infra_mut(&mut b).zones.iter_mut().enumerate() {
            z.price.cpu_hour = zonal_model::Money::new(0.001 * (1.0 + i as f64));
        }
        let d = demand_mut(&mut b);
        for (i, e) in d.entries.iter_mut().enumerate() {
            e.slots = zonal_model::SlotProfile::Constant(4 + 3 * i as u32);
        }
        for r in &mut d.regions {
            r.weight = 1e4;
        }
        let p = problem(&b);
        let base = FusionOptions { alpha: 1.0, rounding: false, ..Default::default() };
        let lo = place(&p, &FusionOptions { alpha: 0.0, ..base.clone() }).unwrap().term("cost").unwrap();
        let hi = place(&p, &base).unwrap().term("cost").unwrap();
        assert!(hi > lo + 1e-4, "{lo} {hi}");
        let limit = lo + 0.3 * (hi - lo);
        let budget = Some(limit);
        let full =
            place(&p, &FusionOptions { budget, column_generation: ColumnGeneration::Never, ..base.clone() }).unwrap();
        let cg =
            place(&p, &FusionOptions { budget, column_generation: ColumnGeneration::Always, ..base.clone() }).unwrap();
        let mut session =
            FusionSession::new(&p, &FusionOptions { column_generation: ColumnGeneration::Always, ..base.clone() })
                .unwrap();
        let warm = session.place(1.0, None).and_then(|_| session.place(1.0, budget)).unwrap();
        for plan in [&cg, &warm] {
            let cost = plan.term("cost").unwrap();
            assert!(cost <= limit * (1.0 + 1e-6), "cost {cost} above the budget {limit}");
            assert_same_optimum(plan, &full, "heavy regions under a budget");
        }
    }

    #[test]
    fn tradeoff_curve_by_column_generation_matches_the_full_lp() {
        let p = tight_line();
        let curve = |cg| tradeoff_curve(&p, &FusionOptions { column_generation: cg, ..Default::default() }, 3).unwrap();
        let (full, cg) = (curve(ColumnGeneration::Never), curve(ColumnGeneration::Always));
        let all = |c: &Curve| {
            let mut v = vec![c.min_cost.clone(), c.max_utility.clone()];
            v.extend(c.points.iter().cloned());
            v
        };
        for (k, (f, g)) in all(&full).iter().zip(&all(&cg)).enumerate() {
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * a.abs().max(1.0);
            assert!(close(f.budget, g.budget) && close(f.cost, g.cost), "{f:?}\n{g:?}");
            // The min-cost end (α = 0) fixes the cost, not how utility is spread.
            if k > 0 {
                assert!(close(f.total_utility, g.total_utility), "{f:?}\n{g:?}");
            }
        }
        assert!(full.max_utility.cost > full.min_cost.cost + 1e-6, "{full:?}");
    }

    #[test]
    fn without_step1_the_worst_user_can_be_worse_off() {
        // z0 is expensive, z1 cheap and far; α = 0 without Step 1 sends everyone to z1.
        let mut b = line_bundle(3, 2);
        infra_mut(&mut b).zones[0].price.cpu_hour = zonal_model::Money::new(10.0);
        let p = problem(&b);
        for cg in [ColumnGeneration::Never, ColumnGeneration::Always] {
            let base = FusionOptions { alpha: 0.0, rounding: false, column_generation: cg, ..Default::default() };
            let fair = place(&p, &base).unwrap();
            let unfair = place(&p, &FusionOptions { max_min_fairness: false, ..base.clone() }).unwrap();
            checked(&p, &fair);
            checked(&p, &unfair);
            assert!(unfair.term("step1_min_utility").is_none());
            assert!(unfair.term("min_utility").unwrap() <= fair.term("min_utility").unwrap() + 1e-9);
            assert!(unfair.term("cost").unwrap() <= fair.term("cost").unwrap() + 1e-9);
        }
    }

    #[test]
    fn plans_are_deterministic() {
        let b = line_bundle(4, 4);
        let p = problem(&b);
        let a = place(&p, &FusionOptions::default()).unwrap();
        let c = place(&p, &FusionOptions::default()).unwrap();
        let strip = |mut x: Plan| {
            x.stats = PlanStats::default();
            serde_json::to_string(&x).unwrap()
        };
        assert_eq!(strip(a), strip(c));
    }
}
