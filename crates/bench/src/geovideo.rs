//! FUSION's placement evaluation (seed 000 §4.4) on the geo-video data: the MOOC scenario,
//! the LP-size sweep, and the cost/utility curve with and without Step 1.
//!
//! # Scenario ([`mooc_bundle`])
//!
//! * **Zones**: `dcNodes.csv` through the importer, one zone per city (City ID): 709 zones
//!   from 2,506 data centres (FUSION reports 656 cities; the importer's docs explain why the
//!   stored file gives 709).
//! * **Regions**: `mooc.out`, one region per user city (1,869), weight = the file's demand
//!   weight (group size), demand `max(1, round(weight))` session slots of service `mooc`.
//! * **SLA**: R_min/R_med/R_max = 20/50/150 ms, k = 1 (the model's default SLA).
//! * **Latency**: round-trip time = 2 × 5 µs/km × Haversine distance (the model's default
//!   [`zonal_model::LatencyModel`]: light in fibre, no detour, no access delay), so 20 ms is
//!   2,000 km and R_max = 150 ms is 15,000 km.
//! * **Cost ∝ EC2 price**: each zone's CPU price is the out-cost of its nearest EC2 location
//!   (`ec2_price.out`: 0.02 for Ashburn, Palo Alto, Dublin; 0.06 Singapore; 0.065 Tokyo; 0.125
//!   São Paulo); one session slot is one instance of 1 CPU, so DeployCost per slot-hour is that
//!   price. The service declares no session bandwidth, so BWCost is zero (the data set's egress
//!   price is the same constant everywhere and would only shift every cost).
//! * **Capacity**: FUSION "manually set the number of total available session slots so that
//!   they are enough to serve all user demands" without saying how many. Here every data
//!   centre gets the same number of slots, `ceil(capacity_factor × total demand / data
//!   centres)`, so a city's capacity is proportional to its data-centre count.
//! * The paper's LP exactly: no shared-capacity rows (one service, they would repeat (5)).
//!
//! Subsamples for the size sweep take `regions` of the user cities and `zones` of the
//! zones, each a seeded uniform sample (order kept); capacity is recomputed for the sample.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::rngs::SmallRng;
use rand::seq::index::sample;
use rand::SeedableRng;
use zonal_descriptor::import::geovideo::{
    import_dc_nodes, import_mooc, parse_price_table, GeoVideoOptions, MoocOptions,
};
use zonal_model::{
    Amount, Bundle, Component, Demand, Document, Host, Infrastructure, Resources, Scaling, Service, SlotSpec,
    UtilitySla,
};
use zonal_place::check::{check, check_within_budget};
use zonal_place::fusion::{place, ColumnGeneration, Curve, CurvePoint, FusionOptions, FusionSession};
use zonal_place::problem::{Problem, ProblemOptions};
use zonal_place::solver::{LpMethod, SolverOptions};
use zonal_place::{Plan, PlanStatus};

use crate::report::{max, median, num, ratio, seconds, CsvRow, Summary};
use crate::{BenchError, Progress};

/// The service every MOOC region asks for.
pub const SERVICE: &str = "mooc";

/// The three geo-video files, as text.
#[derive(Debug, Clone, Copy)]
pub struct GeoVideoData<'a> {
    pub dc_nodes: &'a str,
    pub mooc: &'a str,
    pub ec2_prices: &'a str,
}

/// Which part of the data, with how much capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct MoocScenario {
    /// Sampled user cities; all when `None`.
    pub regions: Option<usize>,
    /// Sampled zones (cities with data centres); all when `None`.
    pub zones: Option<usize>,
    pub seed: u64,
    /// Total slot capacity over total demand.
    pub capacity_factor: f64,
}

impl Default for MoocScenario {
    fn default() -> Self {
        MoocScenario { regions: None, zones: None, seed: 1, capacity_factor: DEFAULT_CAPACITY_FACTOR }
    }
}

/// Capacity 1.2 × demand: enough for everyone, tight enough that the nearest zones fill up.
pub const DEFAULT_CAPACITY_FACTOR: f64 = 1.2;

/// A built scenario and what it holds.
#[derive(Debug, Clone)]
pub struct MoocBundle {
    pub bundle: Bundle,
    pub regions: usize,
    pub zones: usize,
    pub datacenters: usize,
    pub demand_slots: f64,
    pub slots_per_datacenter: u64,
    pub notes: Vec<String>,
}

/// Keeps `k` of `n` indices, a seeded uniform sample in ascending order (all when `None` or
/// `k ≥ n`).
fn pick(n: usize, k: Option<usize>, rng: &mut SmallRng) -> Vec<usize> {
    match k {
        Some(k) if k < n => {
            let mut v = sample(rng, n, k).into_vec();
            v.sort_unstable();
            v
        }
        _ => (0..n).collect(),
    }
}

/// Builds the MOOC scenario (see the module docs).
pub fn mooc_bundle(data: GeoVideoData, scenario: &MoocScenario) -> Result<MoocBundle, BenchError> {
    let f = scenario.capacity_factor;
    if !(f.is_finite() && f >= 1.0) {
        return Err(BenchError::new(format!("capacity factor: expected a number ≥ 1 (capacity ≥ demand), found {f}")));
    }
    let prices = parse_price_table(data.ec2_prices, "ec2_price.out").map_err(|e| BenchError::new(e.to_string()))?;
    let geo = GeoVideoOptions { hosts_per_datacenter: None, ec2_prices: Some(prices), ..Default::default() };
    let (infra, infra_report) =
        import_dc_nodes(data.dc_nodes, "dcNodes.csv", &geo).map_err(|e| BenchError::new(e.to_string()))?;
    let mooc = MoocOptions { service: Some(SERVICE.into()), slots_per_weight: 1.0 };
    let (demand, demand_report) =
        import_mooc(data.mooc, "mooc.out", &mooc).map_err(|e| BenchError::new(e.to_string()))?;

    let mut rng = SmallRng::seed_from_u64(scenario.seed);
    let zone_pick = pick(infra.zones.len(), scenario.zones, &mut rng);
    let region_pick = pick(demand.regions.len(), scenario.regions, &mut rng);
    let mut zones: Vec<_> = zone_pick.iter().map(|&i| infra.zones[i].clone()).collect();
    let regions: Vec<_> = region_pick.iter().map(|&i| demand.regions[i].clone()).collect();
    let kept: std::collections::BTreeSet<&str> = regions.iter().map(|r| r.name.as_str()).collect();
    let entries: Vec<_> = demand.entries.iter().filter(|e| kept.contains(e.region.as_str())).cloned().collect();
    let demand_slots: f64 = entries.iter().map(|e| f64::from(e.slots.peak())).sum();

    let dcs_of = |z: &zonal_model::Zone| z.labels.get("datacenters").and_then(|d| d.parse::<u64>().ok()).unwrap_or(1);
    let datacenters: u64 = zones.iter().map(dcs_of).sum();
    let per_dc = (f * demand_slots / datacenters.max(1) as f64).ceil().max(1.0) as u64;
    for z in &mut zones {
        let slots = per_dc * dcs_of(z);
        z.hosts = vec![Host {
            name: format!("{}-h0", z.name),
            capacity: Resources::new().with("cpu", Amount::cpu(1000 * slots)),
            available: true,
            ..Default::default()
        }];
    }
    let service = Service {
        name: SERVICE.into(),
        components: vec![Component {
            name: "streamer".into(),
            resources: Resources::new().with("cpu", Amount::cpu(1000)),
            slots: SlotSpec { per_instance: 1, min_free: 0 },
            scaling: Scaling { min_instances: 0, max_instances: u32::MAX },
            public: true,
            ..Default::default()
        }],
        entry: Some("streamer".into()),
        sla: Some(UtilitySla::default()),
        ..Default::default()
    };
    let mut notes = infra_report.notes;
    notes.extend(demand_report.notes);
    notes.push(format!(
        "{} regions × {} zones ({datacenters} data centres), {demand_slots} slots of demand, {per_dc} slots per data centre (capacity factor {f})",
        regions.len(),
        zones.len()
    ));
    let (n_regions, n_zones) = (regions.len(), zones.len());
    let infra = Infrastructure { zones, ..infra };
    let demand = Demand { regions, entries, ..demand };
    Ok(MoocBundle {
        bundle: Bundle::new(vec![
            Document::Infrastructure(infra),
            Document::Service(service),
            Document::Demand(demand),
        ]),
        regions: n_regions,
        zones: n_zones,
        datacenters: datacenters as usize,
        demand_slots,
        slots_per_datacenter: per_dc,
        notes,
    })
}

/// The problem of a scenario.
pub fn mooc_problem(b: &MoocBundle) -> Result<Problem, BenchError> {
    Problem::from_bundle(&b.bundle, &ProblemOptions::default()).map_err(|e| BenchError::new(e.to_string()))
}

/// The FUSION options of the reproduction: the paper's LP, LP values (no rounding).
pub fn paper_options(solver: SolverOptions) -> FusionOptions {
    FusionOptions { shared_zone_capacity: false, rounding: false, solver, ..Default::default() }
}

/// How a plan ended, for a CSV cell.
fn status_of(r: &Result<Plan, zonal_place::PlaceError>) -> String {
    match r {
        Ok(p) => match &p.status {
            PlanStatus::Optimal => "optimal".into(),
            PlanStatus::Feasible { limit } => format!("feasible ({limit})"),
        },
        Err(e) => {
            let s = e.to_string();
            if s.contains("TimeLimit") {
                "time_limit".into()
            } else if matches!(e, zonal_place::PlaceError::Infeasible { .. }) {
                "infeasible".into()
            } else {
                format!("error: {s}")
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// LP time against size

/// How the LP is solved in the size sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LpVariant {
    /// Zonal's defaults: column generation above 200k candidate pairs, IPM above 50k columns.
    Zonal,
    /// The whole LP, HiGHS's default dual simplex: the baseline of the ratios.
    FullSimplex,
    /// The whole LP, HiGHS's interior-point method (with crossover).
    FullIpm,
}

impl LpVariant {
    pub const ALL: [LpVariant; 3] = [LpVariant::Zonal, LpVariant::FullSimplex, LpVariant::FullIpm];
    pub fn name(self) -> &'static str {
        match self {
            LpVariant::Zonal => "zonal",
            LpVariant::FullSimplex => "full_simplex",
            LpVariant::FullIpm => "full_ipm",
        }
    }
    fn apply(self, mut o: FusionOptions) -> FusionOptions {
        let (cg, method) = match self {
            LpVariant::Zonal => (ColumnGeneration::Auto, LpMethod::Auto),
            LpVariant::FullSimplex => (ColumnGeneration::Never, LpMethod::Simplex),
            LpVariant::FullIpm => (ColumnGeneration::Never, LpMethod::Ipm),
        };
        o.column_generation = cg;
        o.solver.lp_method = method;
        o
    }
}

/// One size of the sweep: regions × zones (`None`: all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LpSize {
    pub regions: Option<usize>,
    pub zones: Option<usize>,
}

/// The default sweep, smallest first; the last is the full MOOC data.
pub const LP_SIZES: [LpSize; 5] = [
    LpSize { regions: Some(100), zones: Some(50) },
    LpSize { regions: Some(250), zones: Some(100) },
    LpSize { regions: Some(500), zones: Some(200) },
    LpSize { regions: Some(1000), zones: Some(400) },
    LpSize { regions: None, zones: None },
];

/// One LP solve of the sweep (both steps).
#[derive(Debug, Clone, PartialEq)]
pub struct LpRecord {
    pub regions: usize,
    pub zones: usize,
    pub seed: u64,
    pub variant: LpVariant,
    pub status: String,
    /// Candidate (region, zone) pairs after pruning at R_max.
    pub candidate_pairs: usize,
    /// Columns and rows of the largest model solved.
    pub columns: usize,
    pub rows: usize,
    pub solves: u32,
    /// Latency matrix, capacities and costs.
    pub problem_seconds: f64,
    /// Building LP models.
    pub build_seconds: f64,
    /// HiGHS time, all solves.
    pub solve_seconds: f64,
    /// Wall clock of `place` (both steps, build, extraction; not the problem).
    pub place_seconds: f64,
    pub step1_min_utility: Option<f64>,
    pub utility_percent: Option<f64>,
    pub check_ok: Option<bool>,
}

impl CsvRow for LpRecord {
    fn header() -> &'static [&'static str] {
        &[
            "regions",
            "zones",
            "seed",
            "variant",
            "status",
            "candidate_pairs",
            "columns",
            "rows",
            "solves",
            "problem_seconds",
            "build_seconds",
            "solve_seconds",
            "place_seconds",
            "step1_min_utility",
            "utility_percent",
            "check_ok",
        ]
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.regions.to_string(),
            self.zones.to_string(),
            self.seed.to_string(),
            self.variant.name().into(),
            self.status.clone(),
            self.candidate_pairs.to_string(),
            self.columns.to_string(),
            self.rows.to_string(),
            self.solves.to_string(),
            num(Some(self.problem_seconds)),
            num(Some(self.build_seconds)),
            num(Some(self.solve_seconds)),
            num(Some(self.place_seconds)),
            num(self.step1_min_utility),
            num(self.utility_percent),
            self.check_ok.map_or(String::new(), |b| b.to_string()),
        ]
    }
}

/// Candidate pairs of a problem: (demand, zone) within R_max with capacity.
fn candidate_pairs(p: &Problem) -> usize {
    p.demands
        .iter()
        .map(|d| {
            let rmax = d.sla.r_max.as_millis();
            (0..p.zones.len())
                .filter(|&t| p.region_rtt[d.region][t] <= rmax && p.slot_capacity[d.service][t] > 0.0)
                .count()
        })
        .sum()
}

/// Options of the LP sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct LpSweep {
    pub sizes: Vec<LpSize>,
    pub seeds: Vec<u64>,
    pub variants: Vec<LpVariant>,
    pub capacity_factor: f64,
    pub solver: SolverOptions,
}

/// Solves both LP steps for every size, seed and variant; every plan goes through the
/// independent checker.
pub fn lp_sweep(data: GeoVideoData, sweep: &LpSweep, progress: Progress) -> Result<Vec<LpRecord>, BenchError> {
    let total = sweep.sizes.len() * sweep.seeds.len() * sweep.variants.len();
    let mut out = Vec::with_capacity(total);
    for size in &sweep.sizes {
        for &seed in &sweep.seeds {
            let scenario =
                MoocScenario { regions: size.regions, zones: size.zones, seed, capacity_factor: sweep.capacity_factor };
            let b = mooc_bundle(data, &scenario)?;
            let started = Instant::now();
            let p = mooc_problem(&b)?;
            let problem_seconds = started.elapsed().as_secs_f64();
            let pairs = candidate_pairs(&p);
            for &variant in &sweep.variants {
                progress(
                    out.len(),
                    total,
                    &format!("{} regions × {} zones, seed {seed}, {}", b.regions, b.zones, variant.name()),
                );
                let opts = variant.apply(paper_options(sweep.solver.clone()));
                let started = Instant::now();
                let result = place(&p, &opts);
                let place_seconds = started.elapsed().as_secs_f64();
                let status = status_of(&result);
                let mut rec = LpRecord {
                    regions: b.regions,
                    zones: b.zones,
                    seed,
                    variant,
                    status,
                    candidate_pairs: pairs,
                    columns: 0,
                    rows: 0,
                    solves: 0,
                    problem_seconds,
                    build_seconds: 0.0,
                    solve_seconds: 0.0,
                    place_seconds,
                    step1_min_utility: None,
                    utility_percent: None,
                    check_ok: None,
                };
                if let Ok(plan) = &result {
                    rec.columns = plan.stats.columns;
                    rec.rows = plan.stats.rows;
                    rec.solves = plan.stats.solves;
                    rec.build_seconds = plan.stats.build_seconds;
                    rec.solve_seconds = plan.stats.seconds;
                    rec.step1_min_utility = plan.term("step1_min_utility");
                    rec.utility_percent = plan.term("utility_percent");
                    rec.check_ok = Some(check(&p, plan).is_ok());
                }
                out.push(rec);
            }
        }
    }
    progress(total, total, "done");
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The cost/utility curve

/// Where a point sits on the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    /// α = 0, no budget.
    MinCost,
    /// α = 1 under a budget.
    Budget,
    /// α = 1, no budget.
    MaxUtility,
}

impl PointKind {
    pub fn name(self) -> &'static str {
        match self {
            PointKind::MinCost => "min_cost",
            PointKind::Budget => "budget",
            PointKind::MaxUtility => "max_utility",
        }
    }
}

/// One point of the curve, with the user-latency figures FUSION reports.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRecord {
    /// Step 1 run (max-min fairness) or Step 2 alone.
    pub fairness: bool,
    pub kind: PointKind,
    /// TOTAL_COST given to the LP (the point's own cost for the two ends).
    pub budget: f64,
    pub cost: f64,
    pub total_utility: f64,
    pub utility_percent: f64,
    pub min_utility: f64,
    /// The worst region's share-weighted average RTT (the l_ij of the LP, which U bounds).
    pub worst_region_latency_ms: f64,
    /// The largest RTT of any (region, zone) pair carrying sessions.
    pub worst_user_latency_ms: f64,
    /// Users (region weight × share) served within R_min, per cent.
    pub users_within_r_min_percent: f64,
    /// Users served above R_med, per cent.
    pub users_above_r_med_percent: f64,
    pub seconds: f64,
    pub check_ok: bool,
    /// The α = 1 tie-break (Step 3) was on.
    pub tie_break: bool,
    /// HiGHS's own time over the point's solves, and their number.
    pub solve_seconds: f64,
    pub solves: u32,
}

impl CsvRow for CurveRecord {
    fn header() -> &'static [&'static str] {
        &[
            "step1",
            "kind",
            "budget",
            "cost",
            "total_utility",
            "utility_percent",
            "min_utility",
            "worst_region_latency_ms",
            "worst_user_latency_ms",
            "users_within_r_min_percent",
            "users_above_r_med_percent",
            "seconds",
            "check_ok",
            "tie_break",
            "solve_seconds",
            "solves",
        ]
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.fairness.to_string(),
            self.kind.name().into(),
            num(Some(self.budget)),
            num(Some(self.cost)),
            num(Some(self.total_utility)),
            num(Some(self.utility_percent)),
            num(Some(self.min_utility)),
            num(Some(self.worst_region_latency_ms)),
            num(Some(self.worst_user_latency_ms)),
            num(Some(self.users_within_r_min_percent)),
            num(Some(self.users_above_r_med_percent)),
            num(Some(self.seconds)),
            self.check_ok.to_string(),
            self.tie_break.to_string(),
            num(Some(self.solve_seconds)),
            self.solves.to_string(),
        ]
    }
}

/// User-latency figures of a plan, recomputed from its assignments:
/// (% within R_min, % above R_med, worst pair RTT), users weighted by region weight × share.
pub fn user_latency(p: &Problem, plan: &Plan) -> (f64, f64, f64) {
    let sla: BTreeMap<(&str, &str), &UtilitySla> = p
        .demands
        .iter()
        .map(|d| ((p.services[d.service].name.as_str(), p.regions[d.region].name.as_str()), &d.sla))
        .collect();
    let (mut within, mut above, mut all, mut worst) = (0.0, 0.0, 0.0, 0.0f64);
    for a in &plan.assignments {
        let (Some(ri), Some(s)) = (p.region_index(&a.region), sla.get(&(a.service.as_str(), a.region.as_str()))) else {
            continue;
        };
        let users = p.regions[ri].weight * a.share;
        all += users;
        if a.latency_ms <= s.r_min.as_millis() + 1e-9 {
            within += users;
        }
        if a.latency_ms > s.r_med.as_millis() + 1e-9 {
            above += users;
        }
        if a.share > 1e-9 {
            worst = worst.max(a.latency_ms);
        }
    }
    let pct = |x: f64| if all > 0.0 { x / all * 100.0 } else { 0.0 };
    (pct(within), pct(above), worst)
}

fn record(p: &Problem, plan: &Plan, opts: &FusionOptions, kind: PointKind, budget: f64, seconds: f64) -> CurveRecord {
    let fairness = opts.max_min_fairness;
    let term = |k: &str| plan.term(k).unwrap_or(f64::NAN);
    let (within, above, worst_user) = user_latency(p, plan);
    CurveRecord {
        fairness,
        kind,
        budget,
        cost: term("cost"),
        total_utility: term("total_utility"),
        utility_percent: term("utility_percent"),
        min_utility: term("min_utility"),
        worst_region_latency_ms: term("worst_latency_ms"),
        worst_user_latency_ms: worst_user,
        users_within_r_min_percent: within,
        users_above_r_med_percent: above,
        seconds,
        // A budget point's plan must also keep within its budget.
        check_ok: check_within_budget(p, plan, (kind == PointKind::Budget).then_some(budget)).is_ok(),
        tie_break: opts.tie_break,
        solve_seconds: plan.stats.seconds,
        solves: plan.stats.solves,
    }
}

/// `n` budgets evenly spaced from `min` to `max`, both included (`max` alone when `n` is 1).
pub fn budgets(min: f64, max: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![max],
        _ => (0..n).map(|k| min + (max - min) * k as f64 / (n - 1) as f64).collect(),
    }
}

/// The cost/utility curve as FUSION §3.4 defines it, each point a checked plan: the min-cost
/// end (α = 0), the max-utility end (α = 1), then α = 1 under each budget with Step 1 re-solved
/// at that budget. With `fairness` off every point runs Step 2 alone; `budgets_override`
/// reuses another curve's budgets so that the two curves compare point by point.
///
/// Unlike [`zonal_place::fusion::tradeoff_curve`] (one warm full LP, used by `zonal plan
/// --tradeoff`) every point is a separate [`place`], so column generation applies at MOOC
/// scale and each point yields a whole plan for the checker and the latency figures.
pub fn curve(
    p: &Problem,
    base: &FusionOptions,
    points: usize,
    fairness: bool,
    budgets_override: Option<&[f64]>,
    progress: Progress,
) -> Result<Vec<CurveRecord>, BenchError> {
    let total = points + 2;
    let run_opts = FusionOptions { max_min_fairness: fairness, ..base.clone() };
    let solve = |alpha: f64, budget: Option<f64>| -> Result<(Plan, f64), BenchError> {
        let opts = FusionOptions { alpha, budget, ..run_opts.clone() };
        let started = Instant::now();
        let plan = place(p, &opts).map_err(|e| {
            BenchError::new(format!("FUSION curve point α = {alpha}, budget {budget:?}, Step 1 {fairness}: {e}"))
        })?;
        Ok((plan, started.elapsed().as_secs_f64()))
    };
    let label = match (fairness, base.tie_break) {
        (true, true) => "with Step 1",
        (true, false) => "with Step 1, no tie-break",
        (false, _) => "Step 2 alone",
    };
    progress(0, total, &format!("{label}: min-cost end"));
    let (lo, lo_s) = solve(0.0, None)?;
    progress(1, total, &format!("{label}: max-utility end"));
    let (hi, hi_s) = solve(1.0, None)?;
    let (min_cost, max_cost) = (lo.term("cost").unwrap_or(0.0), hi.term("cost").unwrap_or(0.0));
    let list = match budgets_override {
        Some(b) => b.to_vec(),
        None => budgets(min_cost, max_cost.max(min_cost), points),
    };
    let mut out = vec![record(p, &lo, &run_opts, PointKind::MinCost, min_cost, lo_s)];
    for (k, &b) in list.iter().enumerate() {
        progress(2 + k, total, &format!("{label}: budget {b:.2}"));
        let (plan, s) = solve(1.0, Some(b))?;
        out.push(record(p, &plan, &run_opts, PointKind::Budget, b, s));
    }
    out.push(record(p, &hi, &run_opts, PointKind::MaxUtility, max_cost, hi_s));
    progress(total, total, "done");
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// FUSION LP speed at tight capacity (issue 15)

/// How a point of the speed comparison was solved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpeedMethod {
    /// One [`FusionSession`] for the whole curve: columns and basis kept from point to point.
    Session,
    /// A separate [`place`] per point with today's column generation (cold).
    Place,
    /// A separate [`place`] per point with `cg_reference` (column generation before issue
    /// 15): the reference of the ratios.
    Reference,
}

impl SpeedMethod {
    pub fn name(self) -> &'static str {
        match self {
            SpeedMethod::Session => "session",
            SpeedMethod::Place => "place",
            SpeedMethod::Reference => "reference",
        }
    }
}

/// One point of the speed comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedRecord {
    pub method: SpeedMethod,
    /// Position on the curve: 0 = min-cost end, 1 = max-utility end, then the budgets.
    pub index: usize,
    pub kind: PointKind,
    pub budget: Option<f64>,
    /// Wall clock of the point (`place` or the session's point).
    pub seconds: f64,
    /// HiGHS, pricing and model-building time within it.
    pub solve_seconds: f64,
    pub pricing_seconds: f64,
    pub build_seconds: f64,
    pub solves: u32,
    pub step1_min_utility: f64,
    pub bound: f64,
    pub cost: f64,
    pub total_utility: f64,
    pub check_ok: bool,
}

impl CsvRow for SpeedRecord {
    fn header() -> &'static [&'static str] {
        &[
            "method",
            "index",
            "kind",
            "budget",
            "seconds",
            "solve_seconds",
            "pricing_seconds",
            "build_seconds",
            "solves",
            "step1_min_utility",
            "step2_bound",
            "cost",
            "total_utility",
            "check_ok",
        ]
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.method.name().into(),
            self.index.to_string(),
            self.kind.name().into(),
            num(self.budget),
            num(Some(self.seconds)),
            num(Some(self.solve_seconds)),
            num(Some(self.pricing_seconds)),
            num(Some(self.build_seconds)),
            self.solves.to_string(),
            num(Some(self.step1_min_utility)),
            num(Some(self.bound)),
            num(Some(self.cost)),
            num(Some(self.total_utility)),
            self.check_ok.to_string(),
        ]
    }
}

fn speed_record(p: &Problem, m: SpeedMethod, index: usize, budget: Option<f64>, plan: &Plan, s: f64) -> SpeedRecord {
    let kind = match (index, budget) {
        (0, None) => PointKind::MinCost,
        (_, None) => PointKind::MaxUtility,
        _ => PointKind::Budget,
    };
    let term = |k: &str| plan.term(k).unwrap_or(f64::NAN);
    SpeedRecord {
        method: m,
        index,
        kind,
        budget,
        seconds: s,
        solve_seconds: plan.stats.seconds,
        pricing_seconds: plan.stats.pricing_seconds,
        build_seconds: plan.stats.build_seconds,
        solves: plan.stats.solves,
        step1_min_utility: term("step1_min_utility"),
        bound: plan.bound.unwrap_or(f64::NAN),
        cost: term("cost"),
        total_utility: term("total_utility"),
        check_ok: check_within_budget(p, plan, budget).is_ok(),
    }
}

/// The FUSION curve's speed: `budgets + 2` points (min-cost end, max-utility end, then
/// `budgets` budgets evenly spaced between their costs, all with Step 1 and α = 1 but the
/// min-cost end) solved by one [`FusionSession`]; then the first `reference_points` points
/// again, each by a separate [`place`] with today's column generation and with the
/// reference (`cg_reference`), in the same run and with the same budgets. Every plan goes
/// through the checker.
pub fn speed_curve(
    p: &Problem,
    base: &FusionOptions,
    budgets_n: usize,
    reference_points: usize,
    progress: Progress,
) -> Result<Vec<SpeedRecord>, BenchError> {
    let total = budgets_n + 2 + 2 * reference_points.min(budgets_n + 2);
    let fail = |what: &str, e: zonal_place::PlaceError| BenchError::new(format!("FUSION speed, {what}: {e}"));
    let mut out = Vec::new();
    let mut session = FusionSession::new(p, base).map_err(|e| fail("session", e))?;
    let mut points: Vec<(f64, Option<f64>)> = vec![(0.0, None), (1.0, None)];
    let mut done = 0;
    for i in 0.. {
        let Some(&(alpha, budget)) = points.get(i) else { break };
        progress(done, total, &format!("session: point {} of {}", i + 1, budgets_n + 2));
        let started = Instant::now();
        let plan = session.place(alpha, budget).map_err(|e| fail(&format!("session point {}", i + 1), e))?;
        out.push(speed_record(p, SpeedMethod::Session, i, budget, &plan, started.elapsed().as_secs_f64()));
        done += 1;
        if i == 1 {
            let (lo, hi) = (out[0].cost, out[1].cost);
            points.extend(budgets(lo, hi.max(lo), budgets_n).into_iter().map(|b| (1.0, Some(b))));
        }
    }
    for (method, cg_reference) in [(SpeedMethod::Place, false), (SpeedMethod::Reference, true)] {
        let opts = FusionOptions { cg_reference, ..base.clone() };
        for (i, &(alpha, budget)) in points.iter().enumerate().take(reference_points) {
            progress(done, total, &format!("{}: point {}", method.name(), i + 1));
            let started = Instant::now();
            let plan = place(p, &FusionOptions { alpha, budget, ..opts.clone() })
                .map_err(|e| fail(&format!("{} point {}", method.name(), i + 1), e))?;
            out.push(speed_record(p, method, i, budget, &plan, started.elapsed().as_secs_f64()));
            done += 1;
        }
    }
    progress(total, total, "done");
    Ok(out)
}

/// The targets at capacity 1.2 on the full MOOC data.
pub const POINT_TARGET_SECONDS: f64 = 10.0;
pub const CURVE_TARGET_SECONDS: f64 = 60.0;

/// Per point: the session's time, today's cold `place`, the reference, their ratios, and how
/// far the optima of the methods are apart.
pub fn speed_summary(records: &[SpeedRecord]) -> Summary {
    let mut s = Summary {
        title: "FUSION LP speed: one warm session for the curve | cold place | reference (before issue 15), same run"
            .into(),
        headers: [
            "POINT",
            "BUDGET",
            "SESSION",
            "HIGHS",
            "SOLVES",
            "PLACE",
            "REFERENCE",
            "REF / SESSION",
            "REF / PLACE",
            "MAX REL. DIFF (U*, STEP 2, COST)",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let of = |m: SpeedMethod| -> Vec<&SpeedRecord> { records.iter().filter(|r| r.method == m).collect() };
    let (sess, place, reference) = (of(SpeedMethod::Session), of(SpeedMethod::Place), of(SpeedMethod::Reference));
    let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(b.abs()).max(1.0);
    for r in &sess {
        let find = |v: &[&SpeedRecord]| v.iter().find(|x| x.index == r.index).map(|x| (*x).clone());
        let (pl, rf) = (find(&place), find(&reference));
        let diff = [&pl, &rf]
            .into_iter()
            .flatten()
            .map(|o| rel(o.step1_min_utility, r.step1_min_utility).max(rel(o.bound, r.bound)).max(rel(o.cost, r.cost)))
            .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))));
        s.rows.push(vec![
            format!("{} {}", r.index + 1, r.kind.name()),
            r.budget.map_or("-".into(), |b| format!("{b:.2}")),
            seconds(Some(r.seconds)),
            seconds(Some(r.solve_seconds)),
            r.solves.to_string(),
            seconds(pl.as_ref().map(|x| x.seconds)),
            seconds(rf.as_ref().map(|x| x.seconds)),
            ratio(rf.as_ref().map(|x| x.seconds / r.seconds)),
            ratio(match (&rf, &pl) {
                (Some(a), Some(b)) => Some(a.seconds / b.seconds),
                _ => None,
            }),
            diff.map_or("-".into(), |d| format!("{d:.1e}")),
        ]);
    }
    let curve: f64 = sess.iter().map(|r| r.seconds).sum();
    let worst = sess.iter().map(|r| r.seconds).fold(0.0, f64::max);
    s.notes.push(format!(
        "curve of {} points by one session: {} in all (target < {CURVE_TARGET_SECONDS} s: {}), slowest point {} (target < {POINT_TARGET_SECONDS} s per point: {})",
        sess.len(),
        seconds(Some(curve)),
        if curve < CURVE_TARGET_SECONDS { "met" } else { "missed" },
        seconds(Some(worst)),
        if worst < POINT_TARGET_SECONDS { "met" } else { "missed" },
    ));
    let sum = |v: &[&SpeedRecord]| v.iter().map(|r| r.seconds).sum::<f64>();
    if !reference.is_empty() {
        let k = reference.len();
        let sess_k: f64 = sess.iter().take(k).map(|r| r.seconds).sum();
        s.notes.push(format!(
            "first {k} point(s): reference {} against session {} ({}) and cold place {} ({}); the reference ran on {k} of {} points only",
            seconds(Some(sum(&reference))),
            seconds(Some(sess_k)),
            ratio(Some(sum(&reference) / sess_k)),
            seconds(Some(sum(&place))),
            ratio(Some(sum(&reference) / sum(&place))),
            sess.len()
        ));
    }
    let ok = records.iter().all(|r| r.check_ok);
    s.notes.push(format!(
        "{} plans, {}",
        records.len(),
        if ok { "every one passed the independent checker" } else { "SOME FAILED THE INDEPENDENT CHECKER" }
    ));
    s
}

/// The curve in the shape `zonal plan --tradeoff` writes (for its CSV and SVG writers).
pub fn as_curve(records: &[CurveRecord]) -> Curve {
    let pt = |r: &CurveRecord| CurvePoint {
        budget: r.budget,
        cost: r.cost,
        total_utility: r.total_utility,
        utility_percent: r.utility_percent,
        min_utility: r.min_utility,
        worst_latency_ms: r.worst_region_latency_ms,
    };
    let find = |k: PointKind| records.iter().find(|r| r.kind == k).map(pt);
    let empty = CurvePoint {
        budget: 0.0,
        cost: 0.0,
        total_utility: 0.0,
        utility_percent: 0.0,
        min_utility: 0.0,
        worst_latency_ms: 0.0,
    };
    Curve {
        min_cost: find(PointKind::MinCost).unwrap_or_else(|| empty.clone()),
        max_utility: find(PointKind::MaxUtility).unwrap_or(empty),
        points: records.iter().filter(|r| r.kind == PointKind::Budget).map(pt).collect(),
        seconds: records.iter().map(|r| r.seconds).sum(),
        solves: records.len() as u32,
    }
}

/// The target for both LP steps at full MOOC scale.
pub const LP_TARGET_SECONDS: f64 = 10.0;

/// One row per (size, variant): median `place` time over seeds and the speed-up against the
/// full LP with HiGHS's default simplex measured in the same run.
pub fn lp_summary(records: &[LpRecord]) -> Summary {
    type Key = (usize, usize, LpVariant);
    let mut groups: BTreeMap<Key, Vec<&LpRecord>> = BTreeMap::new();
    for r in records {
        groups.entry((r.regions, r.zones, r.variant)).or_default().push(r);
    }
    let times = |rs: &[&LpRecord]| -> Vec<f64> { rs.iter().map(|r| r.place_seconds).collect() };
    let censored = |rs: &[&LpRecord]| rs.iter().any(|r| r.status != "optimal");
    let mut s = Summary {
        title: "FUSION LP, both steps: time against size (median over seeds)".into(),
        headers: ["REGIONS", "ZONES", "PAIRS", "VARIANT", "STATUS", "PLACE", "SOLVE", "COLUMNS", "VS SIMPLEX", "CHECK"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    for (&(regions, zones, variant), rs) in &groups {
        let t = median(&times(rs));
        let simplex = groups.get(&(regions, zones, LpVariant::FullSimplex));
        // A simplex run stopped by the time limit makes the speed-up a lower bound.
        let speedup = match (simplex.and_then(|b| median(&times(b))), t) {
            (Some(b), Some(t)) if t > 0.0 => {
                let prefix = if simplex.is_some_and(|b| censored(b)) { "≥ " } else { "" };
                format!("{prefix}{}", ratio(Some(b / t)))
            }
            _ => "-".into(),
        };
        let statuses: std::collections::BTreeSet<&str> = rs.iter().map(|r| r.status.as_str()).collect();
        let solves: Vec<f64> = rs.iter().map(|r| r.solve_seconds).collect();
        let cols: Vec<f64> = rs.iter().map(|r| r.columns as f64).collect();
        let pairs: Vec<f64> = rs.iter().map(|r| r.candidate_pairs as f64).collect();
        s.rows.push(vec![
            regions.to_string(),
            zones.to_string(),
            median(&pairs).map_or("-".into(), |v| format!("{v:.0}")),
            variant.name().into(),
            statuses.into_iter().collect::<Vec<_>>().join("/"),
            seconds(t),
            seconds(median(&solves)),
            max(&cols).map_or("-".into(), |v| format!("{v:.0}")),
            speedup,
            match rs.iter().map(|r| r.check_ok).collect::<Option<Vec<bool>>>() {
                Some(v) if v.iter().all(|&b| b) => "ok".into(),
                Some(_) => "FAILED".into(),
                None => "-".into(),
            },
        ]);
    }
    if let Some(((regions, zones, _), rs)) = groups.iter().rev().find(|((_, _, v), _)| *v == LpVariant::Zonal) {
        if let Some(t) = median(&times(rs)) {
            s.notes.push(format!(
                "{regions} × {zones}: both steps in {} with Zonal's defaults, target < 10 s {}",
                seconds(Some(t)),
                if t < LP_TARGET_SECONDS { "met" } else { "missed" }
            ));
        }
    }
    s
}

/// The curves side by side: each point with and without Step 1.
pub fn curve_summary(records: &[CurveRecord]) -> Summary {
    let mut s = Summary {
        title: "FUSION cost/utility curve (LP values): with Step 1 | Step 2 alone".into(),
        headers: [
            "POINT",
            "BUDGET",
            "COST",
            "UTILITY %",
            "≤ 20 MS",
            "> 50 MS",
            "WORST REGION",
            "WORST USER",
            "| COST",
            "UTILITY %",
            "≤ 20 MS",
            "WORST REGION",
            "WORST USER",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let fair: Vec<&CurveRecord> = records.iter().filter(|r| r.fairness && r.tie_break).collect();
    let unfair: Vec<&CurveRecord> = records.iter().filter(|r| !r.fairness).collect();
    for (i, f) in fair.iter().enumerate() {
        let u = unfair.get(i).filter(|u| u.kind == f.kind);
        let pct = |v: f64| format!("{v:.1}%");
        let ms = |v: f64| format!("{v:.1} ms");
        let mut row = vec![
            f.kind.name().to_string(),
            format!("{:.2}", f.budget),
            format!("{:.2}", f.cost),
            pct(f.utility_percent),
            pct(f.users_within_r_min_percent),
            pct(f.users_above_r_med_percent),
            ms(f.worst_region_latency_ms),
            ms(f.worst_user_latency_ms),
        ];
        match u {
            Some(u) => row.extend([
                format!("| {:.2}", u.cost),
                pct(u.utility_percent),
                pct(u.users_within_r_min_percent),
                ms(u.worst_region_latency_ms),
                ms(u.worst_user_latency_ms),
            ]),
            None => row.extend(["| -", "-", "-", "-", "-"].map(String::from)),
        }
        s.rows.push(row);
    }
    let ok = records.iter().all(|r| r.check_ok);
    s.notes.push(format!(
        "{} plans, {}; {} in all",
        records.len(),
        if ok { "every one passed the independent checker" } else { "SOME FAILED THE INDEPENDENT CHECKER" },
        seconds(Some(records.iter().map(|r| r.seconds).sum()))
    ));
    s
}

/// The α = 1 tie-break against the same curve without it (`before`, the code before Step 3):
/// the max-utility end's cost and utility, and the time per α = 1 point.
pub fn tie_break_summary(after: &[CurveRecord], before: &[CurveRecord]) -> Summary {
    let mut s = Summary {
        title: "FUSION α = 1 tie-break (Step 3): with | without (reference, same run)".into(),
        headers: ["FIGURE", "WITH", "WITHOUT", "WITH / WITHOUT"].map(String::from).to_vec(),
        ..Default::default()
    };
    let end = |rs: &[CurveRecord]| rs.iter().find(|r| r.kind == PointKind::MaxUtility).cloned();
    let (Some(a), Some(b)) = (end(after), end(before)) else {
        s.notes.push("a curve has no max-utility end".into());
        return s;
    };
    let ratio = |x: f64, y: f64| if y != 0.0 { format!("{:.4}", x / y) } else { "-".into() };
    s.rows.push(vec![
        "max-utility end: cost".into(),
        format!("{:.2}", a.cost),
        format!("{:.2}", b.cost),
        ratio(a.cost, b.cost),
    ]);
    s.rows.push(vec![
        "max-utility end: total utility".into(),
        format!("{:.6}", a.total_utility),
        format!("{:.6}", b.total_utility),
        ratio(a.total_utility, b.total_utility),
    ]);
    s.rows.push(vec![
        "max-utility end: utility %".into(),
        format!("{:.4}%", a.utility_percent),
        format!("{:.4}%", b.utility_percent),
        "-".into(),
    ]);
    let alpha1 = |rs: &[CurveRecord]| -> Vec<CurveRecord> {
        rs.iter().filter(|r| r.kind != PointKind::MinCost).cloned().collect()
    };
    let mean = |rs: &[CurveRecord], f: fn(&CurveRecord) -> f64| {
        if rs.is_empty() {
            0.0
        } else {
            rs.iter().map(f).sum::<f64>() / rs.len() as f64
        }
    };
    let (aa, bb) = (alpha1(after), alpha1(before));
    let (wa, wb) = (mean(&aa, |r| r.seconds), mean(&bb, |r| r.seconds));
    s.rows.push(vec![
        "α = 1 point: wall time (mean)".into(),
        format!("{wa:.3} s"),
        format!("{wb:.3} s"),
        ratio(wa, wb),
    ]);
    let (ha, hb) = (mean(&aa, |r| r.solve_seconds), mean(&bb, |r| r.solve_seconds));
    s.rows.push(vec![
        "α = 1 point: HiGHS time (mean)".into(),
        format!("{ha:.3} s"),
        format!("{hb:.3} s"),
        ratio(ha, hb),
    ]);
    let (na, nb) = (mean(&aa, |r| f64::from(r.solves)), mean(&bb, |r| f64::from(r.solves)));
    s.rows.push(vec!["α = 1 point: solves (mean)".into(), format!("{na:.1}"), format!("{nb:.1}"), ratio(na, nb)]);
    s.notes.push(format!(
        "{} α = 1 points with, {} without; budgets of each curve run from its own min to its own max cost",
        aa.len(),
        bb.len()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_span_both_ends() {
        assert_eq!(budgets(1.0, 3.0, 3), vec![1.0, 2.0, 3.0]);
        assert_eq!(budgets(1.0, 3.0, 1), vec![3.0]);
        assert!(budgets(1.0, 3.0, 0).is_empty());
    }

    #[test]
    fn samples_are_seeded_and_sorted() {
        let a = pick(100, Some(10), &mut SmallRng::seed_from_u64(3));
        let b = pick(100, Some(10), &mut SmallRng::seed_from_u64(3));
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(pick(5, Some(10), &mut SmallRng::seed_from_u64(3)), vec![0, 1, 2, 3, 4]);
    }
}
