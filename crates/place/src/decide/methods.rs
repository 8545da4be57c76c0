//! The placement methods the pipeline routes a service to, shared with the whole-bundle
//! planner ([`crate::auto::plan_bundle`]): each takes a built [`Problem`] (and, where several
//! placements share hosts and links, a [`Residual`]) and returns a plan of the shared
//! [`Plan`] type. The module docs of [`super`] give the routing table.

use std::collections::{BTreeMap, BTreeSet};

use zonal_model::{Allocation, Resources, Service};

use super::{shortfall, wanted_instances, DecideOptions, Route, Solved};
use crate::auto::{assign_hosts, choose, AutoOptions, ChainSolver, SolverChoice};
use crate::chain::{consume, place_chain_with, ChainObjective, ChainOptions, ChainRequest, HostCosts, Residual};
use crate::error::{ConstraintFamily, InfeasibilityReason, PlaceError};
use crate::fusion;
use crate::heuristic::{ChainHeuristic, HeuristicOptions};
use crate::plan::{Assignment, Plan, PlanStatus};
use crate::problem::{Problem, ProblemOptions};
use crate::single::{Scoring, SinglePlacer};

/// Host costs of composite copies without regional demand: instance price in $/h first, an
/// evaluator's dislike (1 − score) as heavy as 1 $/h, channel delay a tie-break (0.01 per ms).
pub const COPY_COSTS: HostCosts = HostCosts { cost: 1.0, preference: 1.0, entry_latency: 0.0 };
/// Channel delay weight of copies (objective units per ms of path delay).
pub const COPY_DELAY_WEIGHT: f64 = 0.01;
/// Host costs of a composite split near its users: the users' round-trip time to the entry
/// weighs like channel delay (per ms), the price a tie-break (0.01 per $/h), an evaluator's
/// dislike as heavy as 10 ms.
pub const SPLIT_COSTS: HostCosts = HostCosts { cost: 0.01, preference: 10.0, entry_latency: 1.0 };
/// Single placement: price (normalised to the dearest candidate) weighs 10 × the best-fit
/// term, an evaluator's dislike 100 ×.
pub const SINGLE_COST_WEIGHT: f64 = 10.0;
pub const SINGLE_PREFERENCE_WEIGHT: f64 = 100.0;

/// The method `service` needs (see the routing table in [`super`]).
pub fn route_of(p: &Problem, si: usize) -> (Route, String) {
    let s = &p.services[si].service;
    let deployed = s.components.iter().filter(|c| !c.user_side).count();
    if s.components.iter().any(|c| c.user_side) {
        return (Route::Chain, "it has a user-side component: INPUT's chain placement".into());
    }
    if p.demands.iter().any(|d| d.service == si && d.slots > 0.0) {
        let regions = p.demands.iter().filter(|d| d.service == si).count();
        return (Route::Fusion, format!("it has demand in {regions} user region(s): FUSION's utility LP"));
    }
    if deployed > 1 {
        return (
            Route::Copies,
            format!("a composite of {deployed} components without regional demand: each copy placed at least cost, channels routed"),
        );
    }
    (Route::Single, "one component without regional demand: the fast path, cheapest host first".into())
}

/// Solves one service on its problem (the pipeline's route and solve stages). `slots` is the
/// domain-wide slot count (copies and single placement size themselves by it).
pub fn solve_service(
    p: &Problem,
    service: &str,
    slots: u32,
    running: Option<&Allocation>,
    opts: &DecideOptions,
) -> Result<Solved, PlaceError> {
    let si = p
        .service_index(service)
        .ok_or_else(|| PlaceError::input("service", format!("unknown service {service:?} in its own problem")))?;
    let (route, reason) = route_of(p, si);
    let auto = opts.auto(None);
    let mut residual = Residual::full(p);
    match route {
        Route::Chain if running.is_some() => {
            let running = running.unwrap_or(&EMPTY);
            match online_chains(p, si, running, &mut residual, &auto) {
                Some(solved) => solved,
                None => solve_service(p, service, slots, None, opts),
            }
        }
        Route::Chain => {
            let requests = chain_requests(p, si);
            let mut solvers = Vec::new();
            let batch = place_chain_requests(p, &requests, &mut residual, &auto, &mut solvers);
            if let Some((id, e)) = batch.rejected.into_iter().next() {
                return Err(annotate(e, &format!("chain subscription {id}")));
            }
            let mut plan = batch.plan;
            plan.algorithm = format!("chain({})", batch.solver_names.join("+"));
            plan.normalize();
            Ok(Solved { route, reason, plan, solvers, notes: batch.notes, base: None })
        }
        Route::Fusion => match fusion_plan(p, &opts.fusion) {
            Ok((plan, notes)) => Ok(Solved { route, reason, plan, solvers: Vec::new(), notes, base: None }),
            Err(e) if p.services[si].placed.len() > 1 && whole_fit_problem(p, si, &e) => {
                let mut solvers = Vec::new();
                let (plan, mut notes) = split(p, si, &mut residual, &auto, &mut solvers)?;
                notes.insert(0, format!("FUSION could not place the composite whole in any zone ({e})"));
                Ok(Solved {
                    route: Route::Split,
                    reason: "a composite no zone can hold whole: split near its users, channels routed".into(),
                    plan,
                    solvers,
                    notes,
                    base: None,
                })
            }
            Err(e) => Err(e),
        },
        Route::Copies => {
            let mut solvers = Vec::new();
            let wanted = wanted_instances(&p.services[si].service, slots);
            let (plan, notes) = copies(p, si, &wanted, &mut residual, &auto, &mut solvers)?;
            Ok(Solved { route, reason, plan, solvers, notes, base: None })
        }
        Route::Single => {
            let wanted = wanted_instances(&p.services[si].service, slots);
            let (plan, notes) = single(p, si, &wanted, &residual, opts.scoring)?;
            Ok(Solved { route, reason, plan, solvers: Vec::new(), notes, base: None })
        }
        Route::Split | Route::Greedy => Err(PlaceError::Solver { detail: format!("{route:?} is not a first route") }),
    }
}

static EMPTY: Allocation =
    Allocation { zones: BTreeMap::new(), hosts: BTreeMap::new(), paths: Vec::new(), overrides: BTreeMap::new() };

/// Chains re-placed the way Superfluidity's OCM places them: online, never migrating a placed
/// chain. The subscriptions that run stay where they are (their hosts and paths count as
/// taken); only the ones demand added are placed, against what is left. `None` when that
/// does not apply — fewer subscriptions are wanted than run (which to stop is not known per
/// subscription), or the running target's hosts are not all known — and the whole chain is
/// decided again instead (the gate then weighs the moves).
fn online_chains(
    p: &Problem,
    si: usize,
    running: &Allocation,
    residual: &mut Residual,
    auto: &AutoOptions,
) -> Option<Result<Solved, PlaceError>> {
    let s = &p.services[si].service;
    let placed: Vec<&str> = s.components.iter().filter(|c| !c.user_side).map(|c| c.name.as_str()).collect();
    // One instance of each placed component per subscription.
    let running_subs = placed
        .iter()
        .map(|c| running.zones.values().map(|z| z.get(*c).copied().unwrap_or(0)).sum::<u32>())
        .min()
        .unwrap_or(0) as usize;
    let known: u32 = running.hosts.values().flat_map(|c| c.values()).flat_map(|h| h.values()).sum();
    if running_subs == 0 || known != running.instances() {
        return None;
    }
    let requests = chain_requests(p, si);
    if requests.len() < running_subs {
        return None;
    }
    // What the running chains take.
    for (zone, comps) in &running.hosts {
        let zi = p.zone_index(zone)?;
        for (comp, hosts) in comps {
            let c = s.component(comp)?;
            for (host, n) in hosts {
                let hi = p.host_index(zi, host)?;
                let r = running
                    .overrides
                    .get(comp)
                    .and_then(|o| o.resources.clone())
                    .unwrap_or_else(|| c.resources.clone());
                residual.host_free[hi].sub_scaled(&r, u64::from(*n));
            }
        }
    }
    for path in &running.paths {
        for w in path.zones.windows(2) {
            let (Some(a), Some(b)) = (p.zone_index(&w[0]), p.zone_index(&w[1])) else { continue };
            if let Some(li) = p.links.iter().position(|l| (l.a == a && l.b == b) || (l.a == b && l.b == a)) {
                let arc = if p.links[li].a == a { 2 * li } else { 2 * li + 1 };
                residual.arc_free[arc] -= path.reserved_mbps();
            }
        }
    }
    let new = &requests[running_subs..];
    let mut solvers = Vec::new();
    let batch = place_chain_requests(p, new, residual, auto, &mut solvers);
    if let Some((id, e)) = batch.rejected.into_iter().next() {
        return Some(Err(annotate(e, &format!("chain subscription {id}"))));
    }
    let mut plan = batch.plan;
    plan.algorithm = if new.is_empty() {
        "online (nothing new)".into()
    } else {
        format!("online chain({})", batch.solver_names.join("+"))
    };
    plan.normalize();
    let mut notes = batch.notes;
    notes.push(format!(
        "OCM-style re-placement: the {running_subs} running subscription(s) stay where they are; {} new one(s) placed against what is left",
        new.len()
    ));
    Some(Ok(Solved {
        route: Route::Chain,
        reason: "it has a user-side component: INPUT's chain placement, online (placed chains never move)".into(),
        plan,
        solvers,
        notes,
        base: Some(running.clone()),
    }))
}

/// Adds where the error happened to an infeasibility's detail.
fn annotate(e: PlaceError, what: &str) -> PlaceError {
    match e {
        PlaceError::Infeasible { reasons } => PlaceError::Infeasible {
            reasons: reasons
                .into_iter()
                .map(|r| InfeasibilityReason { detail: format!("{what}: {}", r.detail), ..r })
                .collect(),
        },
        other => other,
    }
}

/// Does `e` say that no zone can hold one whole instance of the composite (so splitting it
/// may help)? True when no zone within reach has slot capacity for it, or the LP reports a
/// capacity shortage.
fn whole_fit_problem(p: &Problem, si: usize, e: &PlaceError) -> bool {
    let no_zone = p.slot_capacity[si].iter().all(|&c| c <= 0.0);
    no_zone || e.reasons().iter().any(|r| matches!(r.family, ConstraintFamily::Capacity | ConstraintFamily::Demand))
}

/// FUSION at zone level, rounded into instances, then instances on hosts.
pub fn fusion_plan(p: &Problem, opts: &fusion::FusionOptions) -> Result<(Plan, Vec<String>), PlaceError> {
    let mut plan = fusion::place(p, opts)?;
    let mut used = vec![Resources::new(); p.hosts.len()];
    let notes = assign_hosts(p, &mut plan, &mut used);
    plan.normalize();
    Ok((plan, notes))
}

/// One chain subscription per demanded slot and region (`<service>/<region>/<k>`), or one
/// (`<service>`) without demand.
pub fn chain_requests(p: &Problem, si: usize) -> Vec<ChainRequest> {
    let name = &p.services[si].name;
    let mut out = Vec::new();
    for d in p.demands.iter().filter(|d| d.service == si) {
        let region = &p.regions[d.region].name;
        for k in 0..(d.slots.round().max(0.0) as u64) {
            out.push(ChainRequest {
                id: format!("{name}/{region}/{k}"),
                service: name.clone(),
                region: Some(region.clone()),
            });
        }
    }
    if out.is_empty() {
        out.push(ChainRequest { id: name.clone(), service: name.clone(), region: None });
    }
    out
}

/// What a batch of chain subscriptions produced.
#[derive(Debug, Clone)]
pub struct ChainBatch {
    pub plan: Plan,
    pub rejected: Vec<(String, PlaceError)>,
    pub solver_names: Vec<String>,
    pub delay: f64,
    pub bound: f64,
    pub worst_gap: Option<f64>,
    pub notes: Vec<String>,
}

/// Places chain subscriptions one after the other against `residual` (which they consume),
/// each service by the solver [`choose`] picks once per service (recorded in `solvers`).
pub fn place_chain_requests(
    p: &Problem,
    requests: &[ChainRequest],
    residual: &mut Residual,
    options: &AutoOptions,
    solvers: &mut Vec<SolverChoice>,
) -> ChainBatch {
    let mut plan = Plan::new("chain");
    let mut rejected = Vec::new();
    let mut bound = 0.0;
    let mut worst_gap: Option<f64> = None;
    let heuristic_options = HeuristicOptions { objective: options.chain.objective, ..options.heuristic.clone() };
    let mut heuristic = ChainHeuristic::new(p, heuristic_options);
    let mut used_solvers: BTreeSet<String> = BTreeSet::new();
    let mut notes = Vec::new();
    for req in requests {
        let choice = match solvers.iter().find(|c| c.service == req.service) {
            Some(c) => c.clone(),
            None => {
                let c = choose(p, req, residual, options);
                solvers.push(c.clone());
                c
            }
        };
        used_solvers.insert(choice.solver.clone());
        let result = if choice.solver == "heuristic" {
            if !options.chain.host_costs.is_zero() && !notes.iter().any(|n: &String| n.contains("host costs")) {
                notes.push(format!(
                    "{}: the heuristic places by channel delay alone (instance price, evaluator scores and user latency are host costs only the exact ILP weighs)",
                    req.service
                ));
            }
            heuristic.place(req, residual)
        } else {
            place_chain_with(p, req, residual, &options.chain)
        };
        match result {
            Ok(cp) => {
                consume(p, &cp, residual);
                plan.absorb(&cp);
                bound += cp.bound.unwrap_or(cp.objective);
                worst_gap = match (worst_gap, cp.gap) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            Err(e) => rejected.push((req.id.clone(), e)),
        }
    }
    settle_terms(p, &mut plan);
    let delay = plan.term("delay_ms").unwrap_or(0.0);
    plan.bound = Some(bound);
    plan.gap = worst_gap;
    ChainBatch { plan, rejected, solver_names: used_solvers.into_iter().collect(), delay, bound, worst_gap, notes }
}

/// `service` with only the components in `keep` (and the channels between them), each
/// component also avoiding the zones in `full` (where it reached its `max_instances`).
fn variant(service: &Service, keep: &BTreeSet<String>, full: &BTreeMap<String, BTreeSet<String>>) -> Service {
    let mut s = service.clone();
    s.components.retain(|c| c.user_side || keep.contains(&c.name));
    s.channels.retain(|ch| {
        let kept = |n: &str| s.components.iter().any(|c| c.name == n);
        kept(&ch.from) && kept(&ch.to)
    });
    if let Some(e) = &s.entry {
        if !s.components.iter().any(|c| &c.name == e) {
            s.entry = s.components.first().map(|c| c.name.clone());
        }
    }
    for c in &mut s.components {
        if let Some(zones) = full.get(&c.name) {
            for z in zones {
                if !c.placement.avoid_zones.contains(z) {
                    c.placement.avoid_zones.push(z.clone());
                }
            }
        }
    }
    s
}

/// A problem for a variant of service `si` of `p` (see [`Problem::replace_service`]).
fn problem_with(p: &Problem, si: usize, service: Service) -> Result<Problem, PlaceError> {
    p.replace_service(si, &service)
}

/// Copies of a composite without regional demand: copy `k` holds every component that wants
/// at least `k` instances; each copy is a chain subscription placed at least cost
/// ([`COPY_COSTS`]), its channels routed with their bandwidth. A zone where a component
/// reaches its `max_instances` takes no more of it.
pub fn copies(
    p: &Problem,
    si: usize,
    wanted: &BTreeMap<String, u32>,
    residual: &mut Residual,
    options: &AutoOptions,
    solvers: &mut Vec<SolverChoice>,
) -> Result<(Plan, Vec<String>), PlaceError> {
    let name = p.services[si].name.clone();
    let service = p.services[si].service.clone();
    let n = wanted.values().copied().max().unwrap_or(0);
    let mut opts = options.clone();
    opts.chain.objective = ChainObjective::Weighted { delay: COPY_DELAY_WEIGHT, servers: 0.0 };
    opts.chain.host_costs = COPY_COSTS;
    let mut plan = Plan::new("copies");
    let mut notes = Vec::new();
    let mut per_zone: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut full: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut names = BTreeSet::new();
    for k in 1..=n {
        let keep: BTreeSet<String> = wanted.iter().filter(|(_, &w)| w >= k).map(|(c, _)| c.clone()).collect();
        let q = problem_with(p, si, variant(&service, &keep, &full))?;
        let req = ChainRequest { id: format!("{name}/copy-{k}"), service: name.clone(), region: None };
        let batch = place_chain_requests(&q, std::slice::from_ref(&req), residual, &opts, solvers);
        if let Some((_, e)) = batch.rejected.into_iter().next() {
            return Err(annotate(e, &format!("copy {k} of {n} of the composite")));
        }
        names.extend(batch.solver_names);
        notes.extend(batch.notes);
        for pl in &batch.plan.placements {
            let count = per_zone.entry((pl.component.clone(), pl.zone.clone())).or_default();
            *count += pl.instances;
            let max = service.component(&pl.component).map_or(u32::MAX, |c| c.scaling.max_instances);
            if *count >= max {
                full.entry(pl.component.clone()).or_default().insert(pl.zone.clone());
            }
        }
        merge(&mut plan, batch.plan);
    }
    let zones: BTreeSet<&str> = plan.placements.iter().map(|pl| pl.zone.as_str()).collect();
    notes.push(format!(
        "{n} cop{} of the composite in {} zone(s); solver {}",
        if n == 1 { "y" } else { "ies" },
        zones.len(),
        names.into_iter().collect::<Vec<_>>().join("+")
    ));
    plan.algorithm = "copies".into();
    settle_terms(p, &mut plan);
    Ok((plan, notes))
}

/// A composite FUSION could not place whole: for each region, as many copies as its demand
/// needs instances of the entry, each a chain subscription from that region whose entry stays
/// within the region's R_max ([`SPLIT_COSTS`]); the region's sessions are shared over its
/// copies' entry zones.
pub fn split(
    p: &Problem,
    si: usize,
    residual: &mut Residual,
    options: &AutoOptions,
    solvers: &mut Vec<SolverChoice>,
) -> Result<(Plan, Vec<String>), PlaceError> {
    let sd = &p.services[si];
    let name = sd.name.clone();
    let entry = sd.service.components[sd.entry].name.clone();
    let spi = f64::from(sd.slots_per_instance.max(1));
    let mut opts = options.clone();
    opts.chain.objective = ChainObjective::Delay;
    opts.chain.host_costs = SPLIT_COSTS;
    let mut plan = Plan::new("split");
    let mut notes = Vec::new();
    for d in p.demands.iter().filter(|d| d.service == si) {
        let region = p.regions[d.region].name.clone();
        let copies = (d.slots / spi).ceil().max(1.0) as u32;
        // The entry within the region's R_max: a proximity class made for it.
        let mut q = p.clone();
        let class = format!("{name}/{region}/r-max");
        q.proximity_classes.insert(class.clone(), d.sla.r_max.as_millis());
        let e = q.services[si].entry;
        let tighter = q.component_proximity(si, e).is_none_or(|b| b > d.sla.r_max.as_millis());
        if tighter {
            q.services[si].service.components[e].placement.proximity = Some(class);
        }
        let mut entry_zones: BTreeMap<String, u32> = BTreeMap::new();
        for k in 0..copies {
            let req = ChainRequest {
                id: format!("{name}/{region}/{k}"),
                service: name.clone(),
                region: Some(region.clone()),
            };
            let batch = place_chain_requests(&q, std::slice::from_ref(&req), residual, &opts, solvers);
            if let Some((_, e)) = batch.rejected.into_iter().next() {
                return Err(annotate(e, &format!("copy {} of {copies} for region {region}", k + 1)));
            }
            notes.extend(batch.notes);
            for pl in batch.plan.placements.iter().filter(|pl| pl.component == entry) {
                *entry_zones.entry(pl.zone.clone()).or_default() += pl.instances;
            }
            merge(&mut plan, batch.plan);
        }
        // The region's sessions over its copies' entry zones, in proportion.
        let total: u32 = entry_zones.values().sum();
        let mut lat = 0.0;
        let mut rows = Vec::new();
        for (zone, n) in &entry_zones {
            let share = f64::from(*n) / f64::from(total.max(1));
            let zi = p.zone_index(zone).unwrap_or(0);
            let rtt = p.region_rtt[d.region][zi];
            lat += share * rtt;
            rows.push((zone.clone(), share, rtt));
        }
        let utility = d.sla.utility(lat);
        for (zone, share, rtt) in rows {
            plan.assignments.push(Assignment {
                service: name.clone(),
                region: region.clone(),
                zone,
                share,
                slots: share * d.slots,
                latency_ms: rtt,
                utility,
            });
        }
    }
    // Entry slots used by the assignments, on the entry placements.
    for pl in plan.placements.iter_mut().filter(|pl| pl.component == entry) {
        pl.slots = 0.0;
    }
    plan.algorithm = "split".into();
    settle_terms(p, &mut plan);
    notes.push(format!("split into {} subscription(s)", plan.subscriptions.len()));
    Ok((plan, notes))
}

/// A single-component service without regional demand: `wanted` instances of its component,
/// each on the cheapest host that fits (then best fit), honouring its zone's `max_instances`.
pub fn single(
    p: &Problem,
    si: usize,
    wanted: &BTreeMap<String, u32>,
    residual: &Residual,
    scoring: Scoring,
) -> Result<(Plan, Vec<String>), PlaceError> {
    let sd = &p.services[si];
    let Some(&ci) = sd.placed.first() else {
        return Ok((Plan::new("single"), vec![format!("service {} deploys nothing", sd.name)]));
    };
    let comp = &sd.service.components[ci];
    let n = wanted.get(&comp.name).copied().unwrap_or(0);
    let mut placer = SinglePlacer::new(p, residual, scoring);
    placer.latency_weight = 0.0;
    placer.cost_weight = SINGLE_COST_WEIGHT;
    placer.preference_weight = SINGLE_PREFERENCE_WEIGHT;
    let compiled = placer.compile(&sd.name, None)?;
    if n > 0 && compiled.candidates() == 0 {
        return Err(PlaceError::Infeasible { reasons: vec![no_host_reason(p, si, ci)] });
    }
    for k in 0..n {
        if placer.place(&compiled).is_none() {
            return Err(shortfall(
                &sd.name,
                &comp.name,
                format!(
                    "only {k} of {n} instance(s) of {}/{} ({}) fit: no allowed host has room for another{}",
                    sd.name,
                    comp.name,
                    comp.resources,
                    if compiled.candidates() == 0 { " (no host passes its placement constraints)" } else { "" }
                ),
            ));
        }
    }
    let mut plan = placer.plan();
    plan.algorithm = "single".into();
    plan.status = PlanStatus::Optimal;
    plan.objective = plan
        .placements
        .iter()
        .filter_map(|pl| Some(f64::from(pl.instances) * p.zones[p.zone_index(&pl.zone)?].price.hourly(&comp.resources)))
        .sum();
    plan.notes.clear();
    let how = if scoring == Scoring::Spread { "most room left" } else { "best fit" };
    let note = format!("{n} instance(s) of {} by the fast path (cheapest host, then {how})", comp.name);
    Ok((plan, vec![note]))
}

/// Why no host may take component `ci` of service `si`: every host's refusal by the shared
/// rules ([`zonal_model::rules`]), counted by kind (`2 host(s): needs host features
/// accelerator=tpu`), so the user sees which constraint to relax.
pub fn no_host_reason(p: &Problem, si: usize, ci: usize) -> InfeasibilityReason {
    let sd = &p.services[si];
    let c = &sd.service.components[ci];
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for h in &p.hosts {
        let view = zonal_model::rules::HostView {
            zone: &p.zones[h.zone].name,
            name: &h.name,
            features: &h.features,
            available: h.available,
        };
        if let Some(r) = zonal_model::rules::host_refusal(&c.placement, view) {
            *by.entry(r.to_string()).or_default() += 1;
        }
    }
    let why: Vec<String> = by.iter().map(|(r, n)| format!("{n} host(s): {r}")).collect();
    InfeasibilityReason {
        family: ConstraintFamily::Placement,
        subject: vec![sd.name.clone(), c.name.clone()],
        detail: format!(
            "no host may take component {} of {} ({} hosts in {} zones checked; {})",
            c.name,
            sd.name,
            p.hosts.len(),
            p.zones.len(),
            if why.is_empty() { "none is available".to_string() } else { why.join("; ") }
        ),
    }
}

/// Recomputes the terms that do not add up over merged parts (distinct hosts, summed path
/// delay, instance cost), so the plan claims what the checker will find.
pub fn settle_terms(p: &Problem, plan: &mut Plan) {
    let hosts = plan.used_hosts(p);
    let mut cost = 0.0;
    for pl in &plan.placements {
        let Some(c) = p.service_index(&pl.service).and_then(|si| p.services[si].service.component(&pl.component))
        else {
            continue;
        };
        if c.user_side {
            continue;
        }
        if let Some(zi) = p.zone_index(&pl.zone) {
            cost += f64::from(pl.instances) * p.zones[zi].price.hourly(&c.resources);
        }
    }
    let delay: f64 = plan.paths.iter().map(|x| x.latency_ms).sum();
    plan.objective_terms.retain(|k, _| k == "host_costs");
    if !plan.paths.is_empty() {
        plan.objective_terms.insert("delay_ms".into(), delay);
    }
    if !hosts.is_empty() {
        plan.objective_terms.insert("used_servers".into(), hosts.len() as f64);
    }
    plan.objective_terms.insert("instance_cost".into(), cost);
    plan.normalize();
}

/// Appends `part` to `plan` ([`Plan::absorb`]) and combines bounds (summed) and gaps (the
/// worst).
pub fn merge(plan: &mut Plan, part: Plan) {
    plan.absorb(&part);
    plan.bound = match (plan.bound, part.bound) {
        (Some(a), Some(b)) => Some(a + b),
        (None, b) => b,
        (a, None) => a,
    };
    plan.gap = match (plan.gap, part.gap) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// The options the whole-bundle planner uses for what the run-time pipeline routes.
pub fn default_auto() -> AutoOptions {
    AutoOptions {
        problem: ProblemOptions::default(),
        chain: ChainOptions::default(),
        chain_solver: ChainSolver::Auto,
        ..Default::default()
    }
}
