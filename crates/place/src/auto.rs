//! Planning a whole bundle: every service gets the algorithm its description calls for, the
//! parts share the infrastructure's capacity, and the result is one [`Plan`] checked against
//! the whole problem. `zonal plan` calls it; the running domain decides one service at a time
//! with [`crate::decide::decide`], whose routes and methods this shares
//! ([`crate::decide::methods`]), so a one-service bundle gets the same placement from both.
//!
//! * A service is a **chain** (INPUT) when it has a user-side component: it is about one
//!   user's hosts and paths. Proximity classes and channel latency bounds alone do not make a
//!   chain: the FUSION LP prunes zones beyond a proximity class, and deploys a composite whole
//!   inside one zone, where channels cross no WAN link. Each of its demand entries asks for one subscription per slot
//!   (`<service>/<region>/<n>`, the user attached at the region's `attach` zone); a chain with
//!   no demand entry is placed once, its user side where it is pinned.
//! * Every other service with demand is placed by the **FUSION** utility LP at zone level;
//!   its instances are then put on hosts ([`assign_hosts`]).
//! * FUSION services are planned first; chains are placed one after the other against the
//!   capacity left on hosts and links; services without demand and without a user side are
//!   placed last for their minimum instances, as the run-time pipeline places them
//!   (composites as copies at least cost, single components by the fast path).
//! * With a knowledge base in the bundle, tagged components get their OPERA profile first
//!   (the pipeline's profile stage).
//! * A chain is placed by the exact chain ILP ([`crate::chain`]) or by the heuristic
//!   ([`crate::heuristic`]), as [`AutoOptions::chain_solver`] says. [`ChainSolver::Auto`]
//!   decides per service with a size rule: **exact when the ILP of its first subscription has
//!   at most [`EXACT_BINARIES_PER_SECOND`] × the time limit in seconds binary variables**
//!   (host choices + arc choices of every routed channel + used-server indicators, counted
//!   by [`crate::chain::estimate_binaries`]; the default 10 s when no limit is set), heuristic
//!   otherwise. Each choice and its reason is reported in [`BundlePlan::solvers`].

use std::collections::BTreeSet;

use zonal_model::{Bundle, Demand, Document, Resources, Service};

use crate::chain::{consume, estimate_binaries, ChainOptions, ChainRequest, Residual};
use crate::check::{check_within_budget, CheckReport};
use crate::decide::methods::{chain_requests, place_chain_requests};
use crate::error::PlaceError;
use crate::fusion::{self, FusionOptions};
use crate::heuristic::HeuristicOptions;
use crate::plan::{Placement, Plan, PlanStatus};
use crate::problem::{host_satisfies, Problem, ProblemOptions};

/// Which algorithm a service needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Fusion,
    Chain,
}

/// The algorithm a service's description calls for (see the module docs).
pub fn method_of(service: &Service) -> Method {
    if service.components.iter().any(|c| c.user_side) {
        Method::Chain
    } else {
        Method::Fusion
    }
}

/// How chains are solved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainSolver {
    /// Exact when the ILP is small enough to prove within the time limit, else heuristic.
    #[default]
    Auto,
    Exact,
    Heuristic,
}

/// The auto rule's budget: binary variables of the chain ILP per second of time limit.
/// Calibrated on Interoute SC1–SC3 chains (docs/benchmarks.md, "Heuristic placement"): HiGHS
/// proves chains of a few thousand binaries in well under a second, while SC3-sized ILPs
/// (~19,000 binaries) take tens of seconds.
pub const EXACT_BINARIES_PER_SECOND: f64 = 500.0;

/// Which solver a chain service got, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SolverChoice {
    pub service: String,
    /// `exact` or `heuristic`.
    pub solver: String,
    /// Estimated binaries of the chain ILP (first subscription), when computed.
    pub binaries: Option<usize>,
    pub reason: String,
}

/// Options of [`plan_bundle`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoOptions {
    pub problem: ProblemOptions,
    pub fusion: FusionOptions,
    pub chain: ChainOptions,
    pub chain_solver: ChainSolver,
    /// Options of the heuristic (its objective is taken from `chain.objective`).
    pub heuristic: HeuristicOptions,
    /// Plan only the services of this method (all when `None`).
    pub only: Option<Method>,
}

/// A bundle's plan, the problem it was checked against, and the checker's verdict.
#[derive(Debug, Clone)]
pub struct BundlePlan {
    pub plan: Plan,
    pub problem: Problem,
    pub check: CheckReport,
    /// Services per method, as chosen.
    pub methods: Vec<(String, Method)>,
    /// Chain subscriptions that could not be placed, with why.
    pub rejected: Vec<(String, PlaceError)>,
    /// Exact or heuristic, per chain service, with the reason.
    pub solvers: Vec<SolverChoice>,
}

/// Decides exact or heuristic for one chain service (see the module docs).
pub(crate) fn choose(p: &Problem, req: &ChainRequest, residual: &Residual, options: &AutoOptions) -> SolverChoice {
    let service = req.service.clone();
    match options.chain_solver {
        ChainSolver::Exact => {
            SolverChoice { service, solver: "exact".into(), binaries: None, reason: "--algorithm exact".into() }
        }
        ChainSolver::Heuristic => {
            SolverChoice { service, solver: "heuristic".into(), binaries: None, reason: "--algorithm heuristic".into() }
        }
        ChainSolver::Auto => {
            let limit = options.chain.solver.time_limit.map_or(10.0, |d| d.as_secs_f64());
            let budget = (EXACT_BINARIES_PER_SECOND * limit).floor() as usize;
            match estimate_binaries(p, req, residual, options.chain.objective) {
                Ok(n) if n <= budget => SolverChoice {
                    service,
                    solver: "exact".into(),
                    binaries: Some(n),
                    reason: format!(
                        "ILP of {n} binaries ≤ {budget} ({EXACT_BINARIES_PER_SECOND} per second of the {limit} s time limit)"
                    ),
                },
                Ok(n) => SolverChoice {
                    service,
                    solver: "heuristic".into(),
                    binaries: Some(n),
                    reason: format!(
                        "ILP of {n} binaries > {budget} ({EXACT_BINARIES_PER_SECOND} per second of the {limit} s time limit)"
                    ),
                },
                // Infeasible already in the pre-checks: the exact path explains why.
                Err(_) => SolverChoice {
                    service,
                    solver: "exact".into(),
                    binaries: None,
                    reason: "the pre-checks reject it; the exact path explains why".into(),
                },
            }
        }
    }
}

fn sub_bundle(bundle: &Bundle, keep: &BTreeSet<&str>) -> Bundle {
    let mut docs = Vec::new();
    for d in &bundle.documents {
        match d {
            Document::Service(s) if !keep.contains(s.name.as_str()) => {}
            Document::Demand(dm) => docs.push(Document::Demand(Demand {
                entries: dm.entries.iter().filter(|e| keep.contains(e.service.as_str())).cloned().collect(),
                ..dm.clone()
            })),
            other => docs.push(other.clone()),
        }
    }
    Bundle::new(docs)
}

/// The problem of the services FUSION places (those that are not chains), for the
/// trade-off curve and other FUSION-only analyses.
pub fn fusion_problem(bundle: &Bundle, options: &ProblemOptions) -> Result<Problem, PlaceError> {
    let keep: BTreeSet<&str> =
        bundle.services().filter(|s| method_of(s) == Method::Fusion).map(|s| s.name.as_str()).collect();
    Problem::from_bundle(&sub_bundle(bundle, &keep), options)
}

/// `bundle` with the OPERA profiles of its tagged components substituted, when it carries a
/// knowledge base: the run-time pipeline's profile stage
/// ([`crate::decide::stages::profiles`]), so both place the same components. Notes say what
/// was chosen.
fn with_profiles(bundle: &Bundle, options: &ProblemOptions) -> Result<(Bundle, Vec<String>), PlaceError> {
    if bundle.knowledge_bases().next().is_none()
        || !bundle.services().any(|s| s.components.iter().any(|c| c.tag.is_some()))
    {
        return Ok((bundle.clone(), Vec::new()));
    }
    let state = crate::decide::LiveState::from_bundle(bundle);
    let full = Problem::from_bundle(bundle, options)?;
    let mut notes = Vec::new();
    let mut docs = Vec::new();
    for d in &bundle.documents {
        match d {
            Document::Service(s) if s.components.iter().any(|c| c.tag.is_some()) => {
                let (shaped, _, n) = crate::decide::stages::profiles(&state, s, &full);
                notes.extend(n.into_iter().map(|x| format!("{}: {x}", s.name)));
                docs.push(Document::Service(shaped));
            }
            other => docs.push(other.clone()),
        }
    }
    Ok((Bundle::new(docs), notes))
}

/// Plans every service of `bundle` (see the module docs).
pub fn plan_bundle(bundle: &Bundle, options: &AutoOptions) -> Result<BundlePlan, PlaceError> {
    let (profiled, profile_notes) = with_profiles(bundle, &options.problem)?;
    let bundle = &profiled;
    let full = Problem::from_bundle(bundle, &options.problem)?;
    let demand = bundle.demand();
    let mut methods: Vec<(String, Method)> = bundle.services().map(|s| (s.name.clone(), method_of(s))).collect();
    methods.sort();
    let wanted = |m: Method| options.only.is_none_or(|o| o == m);
    let with_demand: BTreeSet<&str> = full.demands.iter().map(|d| full.services[d.service].name.as_str()).collect();
    let fusion_services: BTreeSet<&str> = methods
        .iter()
        .filter(|(n, m)| *m == Method::Fusion && wanted(*m) && with_demand.contains(n.as_str()))
        .map(|(n, _)| n.as_str())
        .collect();
    let chain_services: BTreeSet<&str> =
        methods.iter().filter(|(_, m)| *m == Method::Chain && wanted(*m)).map(|(n, _)| n.as_str()).collect();
    // Services nobody demands are placed for their minimum (or their declared instances) by
    // the run-time pipeline's methods, after the others, against what they leave.
    let idle_services: BTreeSet<&str> = methods
        .iter()
        .filter(|(n, m)| *m == Method::Fusion && wanted(*m) && !with_demand.contains(n.as_str()))
        .map(|(n, _)| n.as_str())
        .collect();
    let _ = demand;

    let mut plan = Plan::new("auto");
    let mut notes = profile_notes;
    let mut parts = Vec::new();

    // FUSION services: the utility LP at zone level, then instances onto hosts.
    let mut host_used: Vec<Resources> = vec![Resources::new(); full.hosts.len()];
    if !fusion_services.is_empty() {
        let p = Problem::from_bundle(&sub_bundle(bundle, &fusion_services), &options.problem)?;
        let mut fp = fusion::place(&p, &options.fusion)?;
        notes.extend(assign_hosts(&full, &mut fp, &mut host_used));
        parts.push("fusion".to_string());
        plan.placements.extend(fp.placements.iter().cloned());
        plan.assignments.extend(fp.assignments.iter().cloned());
        for (k, v) in &fp.objective_terms {
            plan.objective_terms.insert(k.clone(), *v);
        }
        plan.objective += fp.objective;
        plan.bound = fp.bound;
        plan.gap = fp.gap;
        plan.status = fp.status.clone();
        plan.stats = fp.stats.clone();
        notes.extend(fp.notes.iter().map(|n| format!("fusion: {n}")));
    }

    // What the FUSION part leaves, for the chains and the idle services.
    let mut residual = Residual::full(&full);
    for (hi, used) in host_used.iter().enumerate() {
        residual.host_free[hi].sub_scaled(used, 1);
    }

    // Chains: one subscription at a time against what is left.
    let mut rejected = Vec::new();
    let mut solvers: Vec<SolverChoice> = Vec::new();
    if !chain_services.is_empty() {
        let p = Problem::from_bundle(&sub_bundle(bundle, &chain_services), &options.problem)?;
        let mut chain_residual = Residual::full(&p);
        for (hi, h) in p.hosts.iter().enumerate() {
            let zone = &p.zones[h.zone].name;
            if let Some(fi) = full.hosts.iter().position(|f| f.name == h.name && full.zones[f.zone].name == *zone) {
                chain_residual.host_free[hi] = residual.host_free[fi].clone();
            }
        }
        let requests: Vec<ChainRequest> = chain_services
            .iter()
            .filter_map(|name| p.service_index(name))
            .flat_map(|si| chain_requests(&p, si))
            .collect();
        let batch = place_chain_requests(&p, &requests, &mut chain_residual, options, &mut solvers);
        notes.extend(batch.notes.iter().cloned());
        // Hosts the chains took are gone for the idle services too.
        consume(&full, &batch.plan, &mut residual);
        let cp = batch.plan;
        plan.placements.extend(cp.placements.iter().cloned());
        plan.paths.extend(cp.paths.iter().cloned());
        plan.subscriptions.extend(cp.subscriptions.iter().cloned());
        plan.stats.seconds += cp.stats.seconds;
        plan.stats.build_seconds += cp.stats.build_seconds;
        plan.stats.columns = plan.stats.columns.max(cp.stats.columns);
        plan.stats.rows = plan.stats.rows.max(cp.stats.rows);
        plan.stats.iterations += cp.stats.iterations;
        plan.stats.solves += cp.stats.solves;
        if let PlanStatus::Feasible { .. } = cp.status {
            plan.status = cp.status.clone();
        }
        rejected = batch.rejected;
        let used = cp.used_hosts(&p);
        plan.objective_terms.insert("chain_delay_ms".into(), batch.delay);
        plan.objective_terms.insert("chain_used_servers".into(), used.len() as f64);
        plan.objective_terms.insert("chain_objective".into(), cp.objective);
        if parts.is_empty() {
            plan.objective = cp.objective;
            plan.bound = Some(batch.bound);
            plan.gap = batch.worst_gap;
        } else {
            // Two different objectives: the combined value is not meaningful; keep the parts.
            plan.bound = None;
            plan.gap = None;
        }
        parts.push(if batch.solver_names.is_empty() {
            "chain".to_string()
        } else {
            format!("chain({})", batch.solver_names.join("+"))
        });
        notes.push(format!("{} of {} chain subscriptions placed", requests.len() - rejected.len(), requests.len()));
        for (id, e) in rejected.iter().take(5) {
            notes.push(format!("chain {id} not placed: {e}"));
        }
        if rejected.len() > 5 {
            notes.push(format!("… and {} more chain subscriptions not placed", rejected.len() - 5));
        }
    }

    // Services without demand: their minimum instances, by the run-time pipeline's methods.
    if !idle_services.is_empty() {
        let mut idle_parts = BTreeSet::new();
        for name in &idle_services {
            let Some(si) = full.service_index(name) else { continue };
            let wanted_n = crate::decide::wanted_instances(&full.services[si].service, 0);
            let (route, _) = crate::decide::methods::route_of(&full, si);
            let result = match route {
                crate::decide::Route::Copies => {
                    crate::decide::methods::copies(&full, si, &wanted_n, &mut residual, options, &mut solvers)
                }
                _ => crate::decide::methods::single(&full, si, &wanted_n, &residual, crate::single::Scoring::BestFit),
            };
            match result {
                Ok((part, part_notes)) => {
                    consume(&full, &part, &mut residual);
                    notes.push(format!(
                        "service {name}: no demand, placed for its minimum instances by {}",
                        route.as_str()
                    ));
                    notes.extend(part_notes.into_iter().map(|n| format!("{name}: {n}")));
                    idle_parts.insert(route.as_str());
                    plan.placements.extend(part.placements);
                    plan.paths.extend(part.paths);
                    plan.subscriptions.extend(part.subscriptions);
                }
                Err(e) => {
                    notes.push(format!("service {name}: no demand, and its minimum instances cannot be placed: {e}"));
                    rejected.push((name.to_string(), e));
                }
            }
        }
        parts.extend(idle_parts.into_iter().map(String::from));
    }
    if parts.len() > 1 || !idle_services.is_empty() {
        // Each part priced only its own instances; the plan's cost covers all of them.
        let cost: f64 = plan
            .placements
            .iter()
            .filter_map(|pl| {
                let zi = full.zone_index(&pl.zone)?;
                let si = full.service_index(&pl.service)?;
                let c = full.services[si].service.component(&pl.component)?;
                (!c.user_side).then(|| f64::from(pl.instances) * full.zones[zi].price.hourly(&c.resources))
            })
            .sum();
        plan.objective_terms.insert("instance_cost".into(), cost);
    }
    plan.algorithm = if parts.is_empty() { "none".into() } else { parts.join("+") };
    plan.notes = notes;
    plan.normalize();
    let report = check_within_budget(&full, &plan, options.fusion.budget);
    solvers.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(BundlePlan { plan, problem: full, check: report, methods, rejected, solvers })
}

/// Puts zone-level instances on hosts: each placement row without a host is split into rows
/// per host, first fit over the zone's hosts (in name order) with what earlier rows left,
/// honouring required features and anti-affinity. Instances that fit nowhere stay on a row
/// without a host and are reported (the zone's total capacity sufficed but its hosts are too
/// fragmented). `used` accumulates per host of `problem`.
pub fn assign_hosts(problem: &Problem, plan: &mut Plan, used: &mut [Resources]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut out: Vec<Placement> = Vec::new();
    let rows = std::mem::take(&mut plan.placements);
    for row in rows {
        if row.host.is_some() || row.instances == 0 {
            out.push(row);
            continue;
        }
        let component = problem
            .service_index(&row.service)
            .and_then(|si| problem.services[si].service.component(&row.component).cloned());
        let (Some(zi), Some(comp)) = (problem.zone_index(&row.zone), component) else {
            out.push(row);
            continue;
        };
        if comp.user_side {
            out.push(row);
            continue;
        }
        let avoid: BTreeSet<&str> = comp.placement.anti_affinity.iter().map(String::as_str).collect();
        let slots_per = if row.instances > 0 { row.slots / f64::from(row.instances) } else { 0.0 };
        let mut left = row.instances;
        for &hi in &problem.zones[zi].hosts {
            if left == 0 {
                break;
            }
            let h = &problem.hosts[hi];
            if !h.available || !host_satisfies(h, &comp.placement.requires) {
                continue;
            }
            let clash = out.iter().any(|o| {
                o.service == row.service
                    && o.zone == row.zone
                    && o.host.as_deref() == Some(h.name.as_str())
                    && avoid.contains(o.component.as_str())
            });
            if clash {
                continue;
            }
            let mut free = h.capacity.clone();
            free.sub_scaled(&used[hi], 1);
            let fit = free.copies_of(&comp.resources).min(u64::from(left)) as u32;
            if fit == 0 {
                continue;
            }
            used[hi].add_scaled(&comp.resources, u64::from(fit));
            left -= fit;
            out.push(Placement {
                host: Some(h.name.clone()),
                instances: fit,
                slots: slots_per * f64::from(fit),
                ..row.clone()
            });
        }
        if left > 0 {
            notes.push(format!(
                "{left} instance(s) of {}/{} fit no single host of zone {}; left unassigned to a host",
                row.service, row.component, row.zone
            ));
            out.push(Placement { host: None, instances: left, slots: slots_per * f64::from(left), ..row });
        }
    }
    plan.placements = out;
    plan.normalize();
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use zonal_model::{Bundle, Document};

    /// The repository's examples, built in code so the test needs no files: the shapes that
    /// matter are a FUSION service with demand and an INPUT chain pinned at an edge zone.
    fn examples() -> Bundle {
        use crate::testkit::*;
        let infra = zonal_model::Infrastructure {
            name: "i".into(),
            zones: vec![
                zone("edge", 51.0, 4.0, vec![host("e0", 8, 32), host("e1", 8, 32)]),
                zone("core", 50.0, 8.7, vec![host("c0", 32, 128)]),
            ],
            links: vec![link("edge", "core", None, Some(10_000.0))],
            ..Default::default()
        };
        let mut web = Service { name: "web".into(), ..Default::default() };
        web.components.push(zonal_model::Component {
            name: "web".into(),
            resources: res(1, 1),
            slots: zonal_model::SlotSpec { per_instance: 10, min_free: 0 },
            scaling: zonal_model::Scaling { min_instances: 1, max_instances: 20 },
            public: true,
            ..Default::default()
        });
        let mut chain = Service { name: "cam".into(), ..Default::default() };
        chain.components.push(zonal_model::Component {
            name: "ue".into(),
            user_side: true,
            placement: zonal_model::PlacementConstraints {
                pin: Some(zonal_model::Pin { zone: "edge".into(), host: None }),
                ..Default::default()
            },
            ..Default::default()
        });
        chain.components.push(zonal_model::Component { name: "fw".into(), resources: res(1, 1), ..Default::default() });
        chain.channels.push(zonal_model::Channel {
            from: "ue".into(),
            to: "fw".into(),
            bandwidth: None,
            max_latency: None,
        });
        let demand = Demand {
            name: "d".into(),
            regions: vec![zonal_model::Region {
                name: "r".into(),
                location: zonal_model::Location::new(51.0, 4.1),
                weight: 1.0,
                attach: Some("edge".into()),
            }],
            entries: vec![
                zonal_model::DemandEntry {
                    service: "web".into(),
                    region: "r".into(),
                    slots: zonal_model::SlotProfile::Constant(35),
                    sla: None,
                    session_bandwidth: None,
                },
                zonal_model::DemandEntry {
                    service: "cam".into(),
                    region: "r".into(),
                    slots: zonal_model::SlotProfile::Constant(2),
                    sla: None,
                    session_bandwidth: None,
                },
            ],
        };
        Bundle::new(vec![
            Document::Infrastructure(infra),
            Document::Service(web),
            Document::Service(chain),
            Document::Demand(demand),
        ])
    }

    #[test]
    fn each_service_gets_its_method_and_the_whole_plan_checks() {
        let b = examples();
        let out = plan_bundle(&b, &AutoOptions::default()).unwrap();
        assert_eq!(out.methods, vec![("cam".into(), Method::Chain), ("web".into(), Method::Fusion)]);
        assert!(out.check.is_ok(), "{}", out.check.summary());
        assert_eq!(out.plan.algorithm, "fusion+chain(exact)");
        assert_eq!(out.solvers.len(), 1);
        assert!(out.solvers[0].reason.contains("binaries ≤"), "{:?}", out.solvers);
        let web_instances: u32 = out.plan.placements.iter().filter(|p| p.service == "web").map(|p| p.instances).sum();
        assert_eq!(web_instances, 4, "35 slots of 10 per instance");
        assert!(out.plan.placements.iter().all(|p| p.host.is_some() || p.component == "ue"), "instances are on hosts");
        assert_eq!(out.plan.subscriptions.len(), 2, "two subscriptions of the chain");
        assert!(out.rejected.is_empty());
    }

    #[test]
    fn only_one_method_when_asked() {
        let b = examples();
        let opts = AutoOptions { only: Some(Method::Chain), ..Default::default() };
        let out = plan_bundle(&b, &opts).unwrap();
        assert!(out.plan.placements.iter().all(|p| p.service == "cam"));
        assert!(out.check.is_ok(), "{}", out.check.summary());
    }

    #[test]
    fn auto_takes_the_heuristic_when_the_ilp_is_too_big_for_the_time_limit() {
        let b = examples();
        let mut opts = AutoOptions::default();
        // 1 ms affords no binaries at all.
        opts.chain.solver.time_limit = Some(std::time::Duration::from_millis(1));
        let out = plan_bundle(&b, &opts).unwrap();
        assert!(out.check.is_ok(), "{}", out.check.summary());
        assert_eq!(out.plan.algorithm, "fusion+chain(heuristic)");
        assert_eq!(out.solvers[0].solver, "heuristic");
        assert!(out.solvers[0].reason.contains("binaries >"), "{:?}", out.solvers);
        assert_eq!(out.plan.subscriptions.len(), 2);
        let forced =
            plan_bundle(&b, &AutoOptions { chain_solver: ChainSolver::Heuristic, ..Default::default() }).unwrap();
        assert!(forced.check.is_ok(), "{}", forced.check.summary());
        assert_eq!(forced.solvers[0].reason, "--algorithm heuristic");
    }
}
