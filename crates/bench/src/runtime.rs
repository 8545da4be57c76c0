//! Run-time decisions (`zonal bench --suite runtime`): the decision pipeline the domain calls
//! for every placement ([`zonal_place::decide::decide`]) measured for speed and for quality
//! against the greedy it replaced ([`zonal_place::decide::fallback::greedy`]: the whole
//! composite in the zone with the most free CPU, then memory, then the first name). Every
//! figure is a ratio or a comparison against that reference, measured in the same run.
//!
//! # 1. Decision latency at scale ([`run_latency`])
//!
//! A synthetic live state ([`scale_state`], seeded): [`Scale::zones`] zones at random points of
//! a 12° × 18° box (about 1,330 × 1,290 km, western and central Europe), a fifth of them core
//! (hosts of 32–64 cores, cheaper) and the rest edge (8–32 cores, dearer), each with
//! [`Scale::hosts_per_zone`] hosts of 2–8 GiB per core (some arm64, half with an SSD); links
//! along a minimum spanning tree of the zones plus each zone's two nearest neighbours (so the
//! graph is connected), one-way delay from the great-circle distance (5 µs/km + 0.1 ms),
//! 1–40 Gbit/s; [`Scale::regions`] user regions at random zones (±0.3°), weights 1–10;
//! [`Scale::background`] services already running (single components and pairs, some pairs
//! split over a link with its bandwidth reserved), whose instances are in the state's
//! `instances` and taken off each host's reported `free`, which also loses a seeded 0–40 %
//! of its CPU and memory to work outside Zonal's services.
//!
//! Then [`Scale::per_route`] new services of each route ([`Kind`]), interleaved, are decided
//! one at a time with [`Trigger::Apply`], each decision carried out on the state before the
//! next ([`LiveState::assume`]), as the domain does:
//!
//! * **chain**: a user-side component (attached where its one subscriber region attaches),
//!   three service apps, the middle channel bounded to 2–5 ms, proximity class `edge` or
//!   `metro` in turn;
//! * **fusion**: one component (every third service a renderer/streamer composite with
//!   affinity and a 2 ms channel) with demand in 3–8 regions and its own SLA;
//! * **copies**: a composite of 2–3 components with routed channels, no demand;
//! * **single**: one component, no demand, some requiring an SSD host.
//!
//! Each decision's wall-clock time is compared with the greedy's on the same state: the
//! greedy **end to end** (the live state turned into the service's problem, then the greedy:
//! what the last resort costs) and the greedy **alone** on the built problem. Every plan is
//! checked again by the independent checker on the problem rebuilt from the same state.
//! The solver runs on one thread (`SolverOptions { threads: Some(1), .. }`).
//!
//! # 2. Quality against the greedy ([`run_quality`])
//!
//! Per service, on the same state, the pipeline's decision and the greedy's placement are
//! evaluated the same way. The greedy gets the slots the service's demand adds up to (the
//! old domain placed for the demand; with the pipeline's own domain-wide count, 0 under
//! regional demand, it would place one instance), and its plan is *completed* with what
//! deploying it means, so the checker sees it ([`greedy_plan`]): a chain's user-side
//! component where its user is and the subscription record, channels between zones on the
//! shortest path, and for regional demand every region's sessions at its one zone. Figures
//! ([`Quality`], same function for both):
//!
//! * **mean user latency**: demand-weighted round-trip time from each user to the zone that
//!   serves it (FUSION: the plan's assignments, share-weighted; the greedy: its one zone;
//!   a chain: the subscription's region or user zone to the component the user-side
//!   component talks to);
//! * **worst user utility**: FUSION's utility of each region's share-weighted latency with
//!   the region's SLA (the service's unless the demand overrides it); a user served beyond
//!   `r_max` is *blocked*;
//! * **instance cost** per hour (zone price × resources, profiles included) and **channel
//!   delay** (Σ path delay × copies);
//! * the **checker** ([`zonal_place::check::check`]) on the service's problem: violations
//!   counted by kind;
//! * the gate's **evaluation** ([`zonal_place::decide::gate::evaluate`]: FUSION's Step-2
//!   value, minus the chain delay, or minus the cost), the verdict's basis.
//!
//! Verdict: *better* when the greedy's plan breaks a rule, cannot serve the demand (the gate
//! cannot evaluate it) or evaluates lower; *equal* within 1e-6 relative; *worse* otherwise.
//! Figures on which the pipeline is worse than the greedy (a trade-off its objective made)
//! are listed per service.
//!
//! Scenarios: the repository's examples (with their demand, and without it, which sends
//! `web` to the single fast path and `epg` to copies), and a Topology Zoo network
//! ([`zoo_quality_state`]): the top-degree nodes as data centres with varied capacity and
//! price, links of 1–10 Gbit/s, user regions at seeded nodes, and FUSION slot services,
//! FUSION composites, chains and composites with channels.
//!
//! # 3. Re-placement under a demand shift ([`run_shift`])
//!
//! On the example infrastructure, `web` with demand in two regions (Antwerp and Liège, each
//! at its own edge zone), most users in the first, is placed (`Apply`); that target runs; then
//! it is decided again with [`Trigger::Demand`] after the two regions swap their load, and
//! after a tiny shift. Reported: instances moved (`diff.moved()`), the moves the new plan
//! would make, the **lower bound** on moves (for each zone, the entry instances the new
//! plan's assignment needs there, ⌈assigned slots / slots per instance⌉, less those
//! running there, summed, less any growth of the total: every instance started in a zone
//! that lacks one is a move unless the service grows; a lower bound for any plan serving
//! each region where the new one does, hence at equal utility), the gain against the moves'
//! cost, and the time to decide. Two SLAs: the one `web` declares (0/30/100 ms, where a
//! 1 ms difference is worth little) and a latency-sensitive override (0/2/10 ms).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use zonal_model::{
    Allocation, Amount, Bandwidth, Bundle, Channel, Component, Demand, DemandEntry, Document, Host, Infrastructure,
    LatencyModel, Link, Location, Money, Pin, PlacementConstraints, Price, Region, ReservedPath, Resources, RunSpec,
    Scaling, Service, SlotSpec, UtilitySla, Zone,
};
use zonal_place::decide::{
    self, diff, fallback, gate, methods, DecideOptions, Decision, LiveInstance, LiveService, LiveState, Overrides,
    Route, Trigger,
};
use zonal_place::plan::Subscription;
use zonal_place::{check, ChannelPath, PlaceError, Placement, Plan, Problem, SolverOptions};

use crate::report::{num, percentile, seconds, CsvRow, Summary};
use crate::zoo::{zoo_infrastructure, Topology};
use crate::{BenchError, Progress};

/// The issue's target for the median decision.
pub const TARGET_P50_SECONDS: f64 = 0.100;
/// The issue's target for the 99th percentile.
pub const TARGET_P99_SECONDS: f64 = 0.500;
/// Relative tolerance of "equal" evaluations.
const EQUAL_TOL: f64 = 1e-6;

/// The pipeline's options for the suite: `time_limit` per solve and `threads` solver threads
/// (the suite runs with 1), everything else the domain's defaults.
pub fn options(time_limit: Duration, threads: u32) -> DecideOptions {
    let solver = SolverOptions { time_limit: Some(time_limit), threads: Some(threads), ..Default::default() };
    let mut o = DecideOptions::default();
    o.fusion.solver = solver.clone();
    o.chain.solver = solver.clone();
    o.heuristic.solver = solver;
    o
}

// ---------------------------------------------------------------------------------------
// Shared: the decision's problem, the greedy's plan, carrying a target out, quality figures
// ---------------------------------------------------------------------------------------

/// The problem `decide` solves for `service` on `state`, and the profiles it chose: the same
/// stages in the same order (the deployable service, hardware profiles when a component is
/// tagged, offers when the service has some, its regional demand). `decide` does not return
/// its problem, so this repeats its first steps; the suite checks that the pipeline's plans
/// pass the checker on it.
pub fn decision_problem(state: &LiveState, service: &str) -> Result<(Problem, Overrides), BenchError> {
    let live = state.service(service).ok_or_else(|| BenchError::new(format!("no service {service:?} in the state")))?;
    let entries = state.regional_demand(live);
    let (problem, overrides, _) = zonal_place::decide::problem_for(state, live, &entries)
        .map_err(|e| BenchError::new(format!("service {service}: {e}")))?;
    Ok((problem, overrides))
}

/// The slots the greedy places for: the service's domain-wide count, or its demand's total
/// when that is larger (the old domain placed for the demand).
pub fn greedy_slots(p: &Problem, state: &LiveState, service: &str) -> u32 {
    let own = state.service(service).map_or(0, |s| s.slots);
    let demand = p.service_index(service).map_or(0.0, |si| p.service_demand(si));
    own.max(demand.round().max(0.0) as u32)
}

/// The greedy's placement of `service` on `p`, completed with what deploying it means (see
/// the module docs), so that the checker and [`quality`] see it whole.
pub fn greedy_plan(p: &Problem, service: &str, slots: u32) -> Result<Plan, PlaceError> {
    let mut plan = fallback::greedy(p, service, slots)?.plan;
    if let Some(si) = p.service_index(service) {
        complete(p, si, &mut plan);
    }
    Ok(plan)
}

/// Adds to a greedy plan its user side and subscription, its inter-zone channel paths and,
/// under regional demand, every region's sessions at its zone.
fn complete(p: &Problem, si: usize, plan: &mut Plan) {
    let sd = &p.services[si];
    let s = &sd.service;
    let mut subscription = None;
    if s.components.iter().any(|c| c.user_side) {
        if let Some(req) = methods::chain_requests(p, si).into_iter().next() {
            let region = req.region.as_ref().and_then(|r| p.region_index(r));
            let mut user_zone = None;
            let mut users = Vec::new();
            for c in s.components.iter().filter(|c| c.user_side) {
                let (zone, host) = match &c.placement.pin {
                    Some(pin) => (Some(pin.zone.clone()), pin.host.clone()),
                    None => (region.and_then(|r| p.regions[r].attach).map(|z| p.zones[z].name.clone()), None),
                };
                let Some(zone) = zone else { continue };
                user_zone.get_or_insert(zone.clone());
                users.push(Placement {
                    service: sd.name.clone(),
                    subscription: None,
                    component: c.name.clone(),
                    zone,
                    host,
                    instances: 1,
                    slots: 0.0,
                });
            }
            plan.placements.extend(users);
            for pl in &mut plan.placements {
                pl.subscription = Some(req.id.clone());
            }
            plan.subscriptions.push(Subscription {
                id: req.id.clone(),
                service: sd.name.clone(),
                region: req.region.clone(),
                user_zone,
            });
            subscription = Some(req.id);
        }
    }
    let mut zones_of: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for pl in &plan.placements {
        if let Some(z) = p.zone_index(&pl.zone) {
            zones_of.entry(pl.component.as_str()).or_default().insert(z);
        }
    }
    let one = |c: &str| zones_of.get(c).filter(|z| z.len() == 1).and_then(|z| z.iter().next().copied());
    let mut paths = Vec::new();
    for ch in &s.channels {
        let (Some(a), Some(b)) = (one(&ch.from), one(&ch.to)) else { continue };
        if a == b {
            continue;
        }
        let Some(route) = p.shortest_path(a, b) else { continue };
        paths.push(ChannelPath {
            service: sd.name.clone(),
            subscription: subscription.clone(),
            from: ch.from.clone(),
            to: ch.to.clone(),
            zones: route.iter().map(|&z| p.zones[z].name.clone()).collect(),
            latency_ms: route.windows(2).map(|w| p.link_between(w[0], w[1]).map_or(0.0, |l| l.delay_ms)).sum(),
        });
    }
    plan.paths.extend(paths);
    let demands: Vec<_> = p.demands.iter().filter(|d| d.service == si).collect();
    let entry = &s.components[sd.entry].name;
    let zone = plan.placements.iter().find(|pl| &pl.component == entry).and_then(|pl| p.zone_index(&pl.zone));
    // Regional demand without a user side: FUSION's kind of service, served by assignments.
    let served_by_shares = !demands.is_empty() && !s.components.iter().any(|c| c.user_side);
    if let Some(zi) = zone.filter(|_| served_by_shares) {
        let mut left: f64 = demands.iter().map(|d| d.slots).sum();
        let spi = f64::from(s.components[sd.entry].slots.per_instance);
        for pl in plan.placements.iter_mut().filter(|pl| &pl.component == entry) {
            pl.slots = (f64::from(pl.instances) * spi).min(left);
            left -= pl.slots;
        }
        for d in demands {
            let rtt = p.region_rtt[d.region][zi];
            plan.assignments.push(zonal_place::Assignment {
                service: sd.name.clone(),
                region: p.regions[d.region].name.clone(),
                zone: p.zones[zi].name.clone(),
                share: 1.0,
                slots: d.slots,
                latency_ms: rtt,
                utility: d.sla.utility(rtt),
            });
        }
    }
    plan.normalize();
}

/// The quality figures of one placement of one service (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quality {
    /// Users (regions with demand, or chain subscriptions) the figures are over.
    pub users: usize,
    pub mean_user_latency_ms: Option<f64>,
    /// The lowest utility of a user not blocked.
    pub worst_utility: Option<f64>,
    /// Users served beyond their `r_max` (or not at all).
    pub blocked: usize,
    pub instance_cost: f64,
    pub channel_delay_ms: f64,
}

impl Quality {
    /// The worst utility as a table cell: `blocked` when a user is.
    pub fn worst_text(&self) -> String {
        match (self.blocked, self.worst_utility) {
            (b, _) if b > 0 => format!("blocked ({b})"),
            (_, Some(u)) => format!("{u:.3}"),
            _ => "-".into(),
        }
    }
}

/// [`Quality`] of `plan` (and its deployment target `target`) for service `si` of `p`.
pub fn quality(p: &Problem, si: usize, plan: &Plan, target: &Allocation) -> Quality {
    let sd = &p.services[si];
    let s = &sd.service;
    let mut q = Quality::default();
    // (weight, latency, utility) per user.
    let mut users: Vec<(f64, f64, Option<f64>)> = Vec::new();
    let assignments: Vec<_> = plan.assignments.iter().filter(|a| a.service == sd.name).collect();
    if !assignments.is_empty() {
        for d in p.demands.iter().filter(|d| d.service == si) {
            let region = &p.regions[d.region].name;
            let rows: Vec<_> = assignments.iter().filter(|a| &a.region == region).collect();
            let share: f64 = rows.iter().map(|a| a.share).sum();
            if share <= 0.0 {
                users.push((d.slots, f64::INFINITY, None));
                continue;
            }
            let latency = rows.iter().map(|a| a.share * a.latency_ms).sum::<f64>() / share;
            let beyond = rows.iter().any(|a| a.latency_ms > d.sla.r_max.as_millis() + 1e-9);
            users.push((d.slots, latency, if beyond { None } else { d.sla.utility(latency) }));
        }
    } else if s.components.iter().any(|c| c.user_side) {
        let talks_to: Vec<&str> = s
            .channels
            .iter()
            .filter_map(|ch| {
                let side = |n: &str| s.component(n).is_some_and(|c| c.user_side);
                match (side(&ch.from), side(&ch.to)) {
                    (true, false) => Some(ch.to.as_str()),
                    (false, true) => Some(ch.from.as_str()),
                    _ => None,
                }
            })
            .collect();
        for sub in plan.subscriptions.iter().filter(|x| x.service == sd.name) {
            let served = plan
                .placements
                .iter()
                .find(|pl| {
                    pl.subscription.as_deref() == Some(sub.id.as_str()) && talks_to.contains(&pl.component.as_str())
                })
                .and_then(|pl| p.zone_index(&pl.zone));
            let region = sub.region.as_ref().and_then(|r| p.region_index(r));
            let latency = match (served, region, sub.user_zone.as_ref().and_then(|z| p.zone_index(z))) {
                (Some(z), Some(r), _) => p.region_rtt[r][z],
                (Some(z), None, Some(u)) => p.zone_rtt(u, z),
                _ => f64::INFINITY,
            };
            let sla = region
                .and_then(|r| p.demands.iter().find(|d| d.service == si && d.region == r))
                .map_or(sd.sla, |d| d.sla);
            users.push((1.0, latency, sla.utility(latency)));
        }
    }
    q.users = users.len();
    let reached: Vec<_> = users.iter().filter(|u| u.1.is_finite()).collect();
    let weight: f64 = reached.iter().map(|u| u.0).sum();
    if weight > 0.0 {
        q.mean_user_latency_ms = Some(reached.iter().map(|u| u.0 * u.1).sum::<f64>() / weight);
    }
    q.blocked = users.iter().filter(|u| u.2.is_none()).count();
    q.worst_utility = users.iter().filter_map(|u| u.2).reduce(f64::min);
    for (zone, comps) in &target.zones {
        let Some(zi) = p.zone_index(zone) else { continue };
        for (comp, n) in comps {
            let r = target
                .overrides
                .get(comp)
                .and_then(|o| o.resources.clone())
                .or_else(|| s.component(comp).map(|c| c.resources.clone()))
                .unwrap_or_default();
            q.instance_cost += f64::from(*n) * p.zones[zi].price.hourly(&r);
        }
    }
    // `+ 0.0`: an empty f64 sum is −0.0, which would print as "-0.00".
    q.channel_delay_ms = target.paths.iter().map(|x| x.latency_ms * f64::from(x.copies)).sum::<f64>() + 0.0;
    q
}

/// The gate's unit as a table word.
fn unit_text(u: gate::Unit) -> &'static str {
    match u {
        gate::Unit::Utility => "utility",
        gate::Unit::DelayMs => "−delay ms",
        gate::Unit::Cost => "−cost $/h",
    }
}

/// Violations of a checker report, counted by kind (`Proximity×2 Coverage×1`).
fn violation_kinds(r: &check::CheckReport) -> String {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for v in &r.violations {
        *by.entry(format!("{:?}", v.kind)).or_default() += 1;
    }
    by.into_iter().map(|(k, n)| format!("{k}×{n}")).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------
// 1. Latency at scale
// ---------------------------------------------------------------------------------------

/// The size of the synthetic state and of the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub zones: usize,
    pub hosts_per_zone: usize,
    pub regions: usize,
    /// Services already running.
    pub background: usize,
    /// New services decided per route.
    pub per_route: usize,
}

impl Scale {
    /// The issue's state: 100 zones × 20 hosts, 200 regions, 50 services running.
    pub fn issue(per_route: usize) -> Scale {
        Scale { zones: 100, hosts_per_zone: 20, regions: 200, background: 50, per_route }
    }
    /// A state small enough for unit tests.
    pub fn tiny() -> Scale {
        Scale { zones: 6, hosts_per_zone: 2, regions: 8, background: 3, per_route: 1 }
    }
}

/// The route a new service of the latency part is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Chain,
    Fusion,
    Copies,
    Single,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Chain, Kind::Fusion, Kind::Copies, Kind::Single];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chain => "chain",
            Kind::Fusion => "fusion",
            Kind::Copies => "copies",
            Kind::Single => "single",
        }
    }
}

fn res(millicores: u64, mib: u64) -> Resources {
    Resources::new().with("cpu", Amount::cpu(millicores)).with("memory", Amount::bytes(mib << 20))
}

/// Every deployed component runs the demo workload (a component that runs nothing is
/// planned, never deployed, and would leave no target).
fn runs() -> RunSpec {
    RunSpec::Command { argv: vec!["zonal".into(), "workload".into()], env: BTreeMap::new() }
}

fn component(name: &str, millicores: u64, mib: u64) -> Component {
    Component { name: name.into(), run: runs(), resources: res(millicores, mib), ..Default::default() }
}

fn channel(from: &str, to: &str, mbps: f64, max_ms: Option<f64>) -> Channel {
    Channel {
        from: from.into(),
        to: to.into(),
        bandwidth: Some(Bandwidth::from_mbps(mbps)),
        max_latency: max_ms.map(zonal_model::Duration::from_millis),
    }
}

fn sla(r_min: f64, r_med: f64, r_max: f64) -> UtilitySla {
    UtilitySla {
        r_min: zonal_model::Duration::from_millis(r_min),
        r_med: zonal_model::Duration::from_millis(r_med),
        r_max: zonal_model::Duration::from_millis(r_max),
        importance: 1.0,
    }
}

fn entry(service: &str, region: &str, slots: u32) -> DemandEntry {
    DemandEntry::constant(service, region, slots)
}

fn pick<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Zones, hosts and links of the synthetic state (see the module docs).
fn scale_infrastructure(scale: &Scale, rng: &mut SmallRng) -> Infrastructure {
    let mut zones = Vec::with_capacity(scale.zones);
    for i in 0..scale.zones {
        let core = rng.random_bool(0.2);
        let (cpu, mem, egress) = if core {
            (rng.random_range(0.025..0.040), rng.random_range(0.003..0.005), 0.01)
        } else {
            (rng.random_range(0.045..0.080), rng.random_range(0.006..0.010), 0.02)
        };
        let hosts = (0..scale.hosts_per_zone)
            .map(|h| {
                let cores: u64 = if core { *pick(rng, &[32, 64]) } else { *pick(rng, &[8, 16, 32]) };
                let gib_per_core: u64 = *pick(rng, &[2, 4, 8]);
                let mut features = BTreeMap::new();
                features.insert("arch".to_string(), if rng.random_bool(0.1) { "arm64" } else { "x86_64" }.to_string());
                if rng.random_bool(0.5) {
                    features.insert("disk".to_string(), "ssd".to_string());
                }
                Host {
                    name: format!("h{h:02}"),
                    capacity: res(cores * 1000, cores * gib_per_core * 1024),
                    features,
                    available: true,
                    ..Default::default()
                }
            })
            .collect();
        zones.push(Zone {
            name: format!("z{i:03}"),
            location: Location::new(rng.random_range(44.0..56.0), rng.random_range(-2.0..16.0)),
            tier: Some(if core { "core" } else { "edge" }.into()),
            price: Price {
                cpu_hour: Money::new(cpu),
                memory_gib_hour: Money::new(mem),
                gpu_hour: Money::new(0.0),
                egress_per_gb: Money::new(egress),
            },
            hosts,
            ..Default::default()
        });
    }
    let links = connect(&zones, rng);
    Infrastructure { name: "synthetic".into(), zones, links, ..Default::default() }
}

/// Links over `zones`: a minimum spanning tree by great-circle distance (Prim), so the graph
/// is connected, plus each zone's two nearest neighbours; delay from the distance model,
/// 40 Gbit/s between core zones, else 1 or 10 Gbit/s.
fn connect(zones: &[Zone], rng: &mut SmallRng) -> Vec<Link> {
    let n = zones.len();
    let km = |a: usize, b: usize| match (zones[a].location, zones[b].location) {
        (Some(x), Some(y)) => x.distance_km(&y),
        _ => 0.0,
    };
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    if n > 1 {
        let mut in_tree = vec![false; n];
        let mut best: Vec<(f64, usize)> = (0..n).map(|j| (km(0, j), 0)).collect();
        in_tree[0] = true;
        for _ in 1..n {
            let Some(j) = (0..n).filter(|&j| !in_tree[j]).min_by(|&a, &b| best[a].0.total_cmp(&best[b].0)) else {
                break;
            };
            in_tree[j] = true;
            edges.insert((best[j].1.min(j), best[j].1.max(j)));
            for k in 0..n {
                if !in_tree[k] && km(j, k) < best[k].0 {
                    best[k] = (km(j, k), j);
                }
            }
        }
        for a in 0..n {
            let mut near: Vec<usize> = (0..n).filter(|&b| b != a).collect();
            near.sort_by(|&x, &y| km(a, x).total_cmp(&km(a, y)));
            for &b in near.iter().take(2) {
                edges.insert((a.min(b), a.max(b)));
            }
        }
    }
    let model = LatencyModel::default();
    edges
        .into_iter()
        .map(|(a, b)| {
            let core = |z: usize| zones[z].tier.as_deref() == Some("core");
            let gbps = if core(a) && core(b) { 40.0 } else { *pick(rng, &[1.0, 10.0]) };
            Link {
                from: zones[a].name.clone(),
                to: zones[b].name.clone(),
                latency: Some(model.link_delay(km(a, b))),
                bandwidth: Some(Bandwidth::from_mbps(gbps * 1000.0)),
                cost_per_gb: Money::new(0.0),
            }
        })
        .collect()
}

/// The synthetic live state of the latency part (see the module docs), with its background
/// services running and nothing else registered.
pub fn scale_state(scale: &Scale, seed: u64) -> LiveState {
    let mut rng = SmallRng::seed_from_u64(seed);
    let infrastructure = scale_infrastructure(scale, &mut rng);
    let regions = (0..scale.regions)
        .map(|r| {
            let z = pick(&mut rng, &infrastructure.zones);
            let at = z.location.unwrap_or(Location { lat: 50.0, lon: 7.0 });
            Region {
                name: format!("r{r:03}"),
                location: Location::new(at.lat + rng.random_range(-0.3..0.3), at.lon + rng.random_range(-0.3..0.3)),
                weight: f64::from(rng.random_range(1..=10u32)),
                attach: Some(z.name.clone()),
            }
        })
        .collect();
    let mut state = LiveState { infrastructure, regions, ..Default::default() };
    // Reported free capacity: what work outside Zonal's services leaves.
    for z in &state.infrastructure.zones {
        for h in &z.hosts {
            let keep = |rng: &mut SmallRng, v: u64| (v as f64 * (1.0 - rng.random_range(0.0..0.4))) as u64;
            let cpu = keep(&mut rng, h.capacity.get("cpu"));
            let mem = keep(&mut rng, h.capacity.get("memory"));
            let free = Resources::new().with("cpu", Amount::cpu(cpu)).with("memory", Amount::bytes(mem));
            state.free.entry(z.name.clone()).or_default().insert(h.name.clone(), free);
        }
    }
    for b in 0..scale.background {
        background_service(&mut state, &format!("bg{b:02}"), &mut rng);
    }
    state
}

/// One service already running: a single component or a pair (a third of the pairs split
/// over a link with its bandwidth reserved), 2–12 instances each, first fit in its zone.
fn background_service(state: &mut LiveState, name: &str, rng: &mut SmallRng) {
    let zones = &state.infrastructure.zones;
    let a = rng.random_range(0..zones.len());
    let pair = rng.random_bool(0.4);
    let mut comps = vec![component("app", 500 * rng.random_range(1..=8u64), 512 << rng.random_range(0..5u32))];
    let mut service = Service { name: name.into(), ..Default::default() };
    let mut zone_of = vec![zones[a].name.clone()];
    let mut path = None;
    if pair {
        comps.push(component("db", 500 * rng.random_range(1..=8u64), 1024 << rng.random_range(0..4u32)));
        let mbps = f64::from(rng.random_range(10..=200u32));
        service.channels.push(channel("app", "db", mbps, None));
        let links: Vec<&Link> =
            state.infrastructure.links.iter().filter(|l| l.from == zones[a].name || l.to == zones[a].name).collect();
        match (rng.random_bool(1.0 / 3.0), links.first()) {
            (true, Some(l)) => {
                let other = if l.from == zones[a].name { &l.to } else { &l.from };
                zone_of.push(other.clone());
                path = Some(ReservedPath {
                    from: "app".into(),
                    to: "db".into(),
                    zones: vec![zones[a].name.clone(), other.clone()],
                    mbps,
                    latency_ms: l.latency.map_or(0.0, |d| d.as_millis()),
                    copies: 1,
                });
            }
            _ => zone_of.push(zones[a].name.clone()),
        }
    }
    for c in &mut comps {
        c.scaling = Scaling { min_instances: 1, max_instances: 20 };
    }
    service.components = comps;
    let mut target = Allocation::default();
    for (c, zone) in service.components.iter().zip(&zone_of) {
        let n = rng.random_range(2..=12u32);
        let Some(z) = state.infrastructure.zones.iter().find(|z| &z.name == zone) else { continue };
        let start = rng.random_range(0..z.hosts.len().max(1));
        for _ in 0..n {
            let free = state.free.entry(zone.clone()).or_default();
            let host = (0..z.hosts.len())
                .map(|k| &z.hosts[(start + k) % z.hosts.len()].name)
                .find(|h| free.get(*h).is_some_and(|f| f.fits(&c.resources)));
            let Some(host) = host else { break };
            if let Some(f) = free.get_mut(host) {
                f.sub_scaled(&c.resources, 1);
            }
            *target.zones.entry(zone.clone()).or_default().entry(c.name.clone()).or_default() += 1;
            *target
                .hosts
                .entry(zone.clone())
                .or_default()
                .entry(c.name.clone())
                .or_default()
                .entry(host.clone())
                .or_default() += 1;
            state.instances.push(LiveInstance {
                service: name.into(),
                component: c.name.clone(),
                zone: zone.clone(),
                host: host.clone(),
                resources: c.resources.clone(),
            });
        }
    }
    if target.zones.len() == 2 {
        target.paths.extend(path);
    }
    target.normalize();
    state.services.push(LiveService { service, demand: vec![], slots: 0, running: Some(target), offers: None });
}

/// The new services of the latency part, `per_route` of each [`Kind`], interleaved.
pub fn scale_services(state: &LiveState, scale: &Scale, seed: u64) -> Vec<(Kind, LiveService)> {
    let mut rng = SmallRng::seed_from_u64(seed.wrapping_add(1_000_003));
    let regions: Vec<String> = state.regions.iter().map(|r| r.name.clone()).collect();
    let mut out = Vec::new();
    for i in 0..scale.per_route {
        for kind in Kind::ALL {
            let name = format!("{}-{i:03}", kind.as_str());
            let live = match kind {
                Kind::Chain => {
                    let class = if i % 2 == 0 { "edge" } else { "metro" };
                    let mut s = chain_service(&name, class, None, &mut rng);
                    s.entry = Some("fw".into());
                    let region = pick(&mut rng, &regions).clone();
                    LiveService { demand: vec![entry(&name, &region, 1)], ..live(s) }
                }
                Kind::Fusion => {
                    let s = fusion_service(&name, i % 3 == 2, &mut rng);
                    let k = rng.random_range(3..=8usize).min(regions.len());
                    let mut chosen: BTreeSet<String> = BTreeSet::new();
                    while chosen.len() < k {
                        chosen.insert(pick(&mut rng, &regions).clone());
                    }
                    let demand = chosen.iter().map(|r| entry(&name, r, rng.random_range(10..=200u32))).collect();
                    LiveService { demand, ..live(s) }
                }
                Kind::Copies => live(copies_service(&name, &mut rng)),
                Kind::Single => {
                    let mut c = component("app", 250 * rng.random_range(1..=16u64), 256 << rng.random_range(0..5u32));
                    c.scaling = Scaling { min_instances: rng.random_range(1..=4u32), max_instances: 10 };
                    if rng.random_bool(0.3) {
                        c.placement.requires.insert("disk".into(), "ssd".into());
                    }
                    live(Service { name: name.clone(), components: vec![c], ..Default::default() })
                }
            };
            out.push((kind, live));
        }
    }
    out
}

fn live(service: Service) -> LiveService {
    LiveService { service, demand: vec![], slots: 0, running: None, offers: None }
}

/// A chain: a user-side component (pinned at `pin` when given, else attached where its
/// subscriber region attaches), firewall, cache, analytics; the middle channel bounded.
fn chain_service(name: &str, class: &str, pin: Option<&str>, rng: &mut SmallRng) -> Service {
    let mut user = Component { name: "ue".into(), user_side: true, ..Default::default() };
    if let Some(z) = pin {
        user.placement.pin = Some(Pin { zone: z.into(), host: None });
    }
    let fw = component("fw", 500 * rng.random_range(1..=2u64), 512);
    let cache = component("cache", 1000 * rng.random_range(1..=2u64), 1024 << rng.random_range(0..3u32));
    let app = component("app", 1000 * rng.random_range(1..=4u64), 2048 << rng.random_range(0..2u32));
    Service {
        name: name.into(),
        proximity: Some(class.into()),
        components: vec![user, fw, cache, app],
        channels: vec![
            channel("ue", "fw", f64::from(rng.random_range(20..=100u32)), None),
            channel(
                "fw",
                "cache",
                f64::from(rng.random_range(20..=100u32)),
                Some(f64::from(rng.random_range(2..=5u32))),
            ),
            channel("cache", "app", f64::from(rng.random_range(5..=50u32)), None),
        ],
        ..Default::default()
    }
}

/// A FUSION slot service: one component, or a renderer/streamer composite with affinity and a
/// 2 ms channel; its own SLA and session bandwidth.
fn fusion_service(name: &str, composite: bool, rng: &mut SmallRng) -> Service {
    let spi = *pick(rng, &[10u32, 20, 50]);
    let mut front = component("front", 500 * rng.random_range(1..=4u64), 512 << rng.random_range(0..3u32));
    front.slots = SlotSpec { per_instance: spi, min_free: 0 };
    front.scaling = Scaling { min_instances: 1, max_instances: 20 };
    front.public = true;
    let r_min = f64::from(rng.random_range(0..=5u32));
    let r_med = r_min + f64::from(rng.random_range(15..=35u32));
    let mut s = Service {
        name: name.into(),
        entry: Some("front".into()),
        sla: Some(sla(r_min, r_med, r_med + f64::from(rng.random_range(30..=60u32)))),
        session_bandwidth: Some(Bandwidth::from_mbps(f64::from(rng.random_range(2..=8u32)))),
        components: vec![front],
        ..Default::default()
    };
    if composite {
        s.components[0].placement = PlacementConstraints { affinity: vec!["back".into()], ..Default::default() };
        let mut back = component("back", 1000 * rng.random_range(1..=2u64), 1024);
        back.scaling = Scaling { min_instances: 1, max_instances: 20 };
        s.components.push(back);
        s.channels.push(channel("front", "back", 20.0, Some(2.0)));
    }
    s
}

/// A composite without demand: 2–3 components in a line, routed channels, one bounded.
fn copies_service(name: &str, rng: &mut SmallRng) -> Service {
    let n = rng.random_range(2..=3usize);
    let names = ["ingest", "process", "store"];
    let mut s = Service { name: name.into(), entry: Some("ingest".into()), ..Default::default() };
    for c in names.iter().take(n) {
        let mut comp = component(c, 500 * rng.random_range(1..=6u64), 512 << rng.random_range(0..4u32));
        comp.scaling = Scaling { min_instances: rng.random_range(1..=2u32), max_instances: 4 };
        s.components.push(comp);
    }
    for (i, w) in names.iter().take(n).collect::<Vec<_>>().windows(2).enumerate() {
        let bound = (i == 0).then(|| f64::from(rng.random_range(3..=10u32)));
        s.channels.push(channel(w[0], w[1], f64::from(rng.random_range(10..=100u32)), bound));
    }
    s
}

/// One decision of the latency part.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRecord {
    pub seed: u64,
    pub index: usize,
    /// The route the service was built for.
    pub kind: Kind,
    pub service: String,
    /// The route the pipeline took (`greedy` when it fell back); empty when refused.
    pub route: String,
    pub algorithm: String,
    /// Why the pipeline refused, when it did.
    pub refused: Option<String>,
    /// Wall clock of `decide`.
    pub seconds: f64,
    /// The greedy on the same state: the problem built from the state, then the greedy.
    pub greedy_total_seconds: f64,
    /// The greedy alone on the built problem.
    pub greedy_seconds: f64,
    pub greedy_placed: bool,
    /// The pipeline's plan passed the checker on the problem rebuilt from the same state.
    pub check_ok: Option<bool>,
    pub instances: u32,
    pub zones_used: usize,
}

impl LatencyRecord {
    pub fn fell_back(&self) -> bool {
        self.route == Route::Greedy.as_str()
    }
}

impl CsvRow for LatencyRecord {
    fn header() -> &'static [&'static str] {
        &[
            "seed",
            "index",
            "kind",
            "service",
            "route",
            "algorithm",
            "fell_back",
            "refused",
            "seconds",
            "greedy_total_seconds",
            "greedy_seconds",
            "ratio_to_greedy_total",
            "greedy_placed",
            "check_ok",
            "instances",
            "zones_used",
        ]
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.seed.to_string(),
            self.index.to_string(),
            self.kind.as_str().into(),
            self.service.clone(),
            self.route.clone(),
            self.algorithm.clone(),
            self.fell_back().to_string(),
            self.refused.clone().unwrap_or_default(),
            num(Some(self.seconds)),
            num(Some(self.greedy_total_seconds)),
            num(Some(self.greedy_seconds)),
            num(Some(self.seconds / self.greedy_total_seconds)),
            self.greedy_placed.to_string(),
            self.check_ok.map(|b| b.to_string()).unwrap_or_default(),
            self.instances.to_string(),
            self.zones_used.to_string(),
        ]
    }
}

/// Decides the new services of [`scale_services`] one at a time on [`scale_state`] for every
/// seed, each decision carried out before the next; the greedy timed on the same states.
pub fn run_latency(
    scale: &Scale,
    seeds: &[u64],
    opts: &DecideOptions,
    progress: Progress,
) -> Result<Vec<LatencyRecord>, BenchError> {
    let total = seeds.len() * scale.per_route * Kind::ALL.len();
    let mut out = Vec::with_capacity(total);
    for &seed in seeds {
        let mut state = scale_state(scale, seed);
        let services = scale_services(&state, scale, seed);
        state.services.extend(services.iter().map(|(_, s)| s.clone()));
        for (index, (kind, live)) in services.iter().enumerate() {
            let name = live.service.name.clone();
            progress(out.len(), total, &format!("seed {seed}: {name}"));
            let started = Instant::now();
            let (problem, _) = decision_problem(&state, &name)?;
            let built = Instant::now();
            let greedy = fallback::greedy(&problem, &name, greedy_slots(&problem, &state, &name));
            let greedy_done = Instant::now();
            let started_decide = Instant::now();
            let decided = decide::decide(&state, &name, Trigger::Apply, opts);
            let seconds = started_decide.elapsed().as_secs_f64();
            let mut rec = LatencyRecord {
                seed,
                index,
                kind: *kind,
                service: name.clone(),
                route: String::new(),
                algorithm: String::new(),
                refused: None,
                seconds,
                greedy_total_seconds: (greedy_done - started).as_secs_f64(),
                greedy_seconds: (greedy_done - built).as_secs_f64(),
                greedy_placed: greedy.is_ok(),
                check_ok: None,
                instances: 0,
                zones_used: 0,
            };
            match decided {
                Ok(d) => {
                    rec.route = d.route.as_str().into();
                    rec.algorithm = d.plan.algorithm.clone();
                    rec.check_ok = Some(check::check(&problem, &d.plan).is_ok() && d.check.is_ok());
                    rec.instances = d.target.instances();
                    rec.zones_used = d.target.zones.len();
                    state.assume(&name, &d.target);
                }
                Err(e) => rec.refused = Some(e.to_string()),
            }
            out.push(rec);
        }
    }
    progress(total, total, "latency done");
    Ok(out)
}

/// One row per route built for and one overall: percentiles of the decision time, the greedy's
/// median, ratios, fall-backs; notes on the issue's targets.
pub fn latency_summary(records: &[LatencyRecord], scale: &Scale, seeds: usize, solver: &SolverOptions) -> Summary {
    let mut s = Summary {
        title: format!(
            "Run-time decisions: time per decision at {} zones × {} hosts, {} regions, {} services running ({} seed(s); solver {} thread(s), {} limit per solve)",
            scale.zones,
            scale.hosts_per_zone,
            scale.regions,
            scale.background,
            seeds,
            solver.threads.map_or("HiGHS's default".to_string(), |t| t.to_string()),
            solver.time_limit.map_or("no".to_string(), |d| format!("{} s", d.as_secs_f64()))
        ),
        headers: [
            "ROUTE", "DECISIONS", "TAKEN", "FELL BACK", "REFUSED", "P50", "P95", "P99", "MAX", "GREEDY P50",
            "P50 RATIO", "P99 RATIO", "GREEDY ALONE P50", "CHECK",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let mut groups: Vec<(String, Vec<&LatencyRecord>)> =
        Kind::ALL.iter().map(|k| (k.as_str().to_string(), records.iter().filter(|r| r.kind == *k).collect())).collect();
    groups.push(("all".into(), records.iter().collect()));
    for (name, rs) in &groups {
        if rs.is_empty() {
            continue;
        }
        let times: Vec<f64> = rs.iter().map(|r| r.seconds).collect();
        let greedy: Vec<f64> = rs.iter().map(|r| r.greedy_total_seconds).collect();
        let alone: Vec<f64> = rs.iter().map(|r| r.greedy_seconds).collect();
        let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
        for r in rs.iter().filter(|r| !r.route.is_empty()) {
            *taken.entry(r.route.as_str()).or_default() += 1;
        }
        let ratio = |p: f64| match (percentile(&times, p), percentile(&greedy, p)) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let checked: Vec<bool> = rs.iter().filter_map(|r| r.check_ok).collect();
        s.rows.push(vec![
            name.clone(),
            rs.len().to_string(),
            taken.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
            rs.iter().filter(|r| r.fell_back()).count().to_string(),
            rs.iter().filter(|r| r.refused.is_some()).count().to_string(),
            seconds(percentile(&times, 50.0)),
            seconds(percentile(&times, 95.0)),
            seconds(percentile(&times, 99.0)),
            seconds(percentile(&times, 100.0)),
            seconds(percentile(&greedy, 50.0)),
            crate::report::ratio(ratio(50.0)),
            crate::report::ratio(ratio(99.0)),
            seconds(percentile(&alone, 50.0)),
            if checked.iter().all(|&b| b) {
                format!("ok ({}/{})", checked.len(), rs.len())
            } else {
                format!("FAILED ({} of {})", checked.iter().filter(|&&b| !b).count(), checked.len())
            },
        ]);
    }
    let times: Vec<f64> = records.iter().map(|r| r.seconds).collect();
    if let (Some(p50), Some(p99)) = (percentile(&times, 50.0), percentile(&times, 99.0)) {
        let verdict = |v: f64, target: f64| if v < target { "met" } else { "missed" };
        s.notes.push(format!(
            "targets over all decisions: p50 {} < 100 ms {} ({:.2}× the target), p99 {} < 500 ms {} ({:.2}× the target)",
            seconds(Some(p50)),
            verdict(p50, TARGET_P50_SECONDS),
            p50 / TARGET_P50_SECONDS,
            seconds(Some(p99)),
            verdict(p99, TARGET_P99_SECONDS),
            p99 / TARGET_P99_SECONDS
        ));
        for (name, rs) in groups.iter().filter(|(n, rs)| n != "all" && !rs.is_empty()) {
            let t: Vec<f64> = rs.iter().map(|r| r.seconds).collect();
            let (a, b) = (percentile(&t, 50.0).unwrap_or(0.0), percentile(&t, 99.0).unwrap_or(0.0));
            if a >= TARGET_P50_SECONDS || b >= TARGET_P99_SECONDS {
                s.notes.push(format!(
                    "{name}: p50 {} ({}), p99 {} ({})",
                    seconds(Some(a)),
                    verdict(a, TARGET_P50_SECONDS),
                    seconds(Some(b)),
                    verdict(b, TARGET_P99_SECONDS)
                ));
            }
        }
    }
    s.notes.push("GREEDY P50: the live state turned into the service's problem, then the greedy (what the last resort costs); GREEDY ALONE: the greedy on the built problem; RATIO: the pipeline's percentile over the greedy's (end to end)".into());
    let build: Vec<f64> = records.iter().map(|r| (r.greedy_total_seconds - r.greedy_seconds).max(0.0)).collect();
    s.notes.push(format!(
        "one build of the service's problem from the live state (LiveState::bundle_for + Problem::from_bundle): p50 {}; decide builds it once (twice for a service with tagged components: the profile stage ranks hosts on the first)",
        seconds(percentile(&build, 50.0))
    ));
    for r in records.iter().filter(|r| r.refused.is_some()) {
        s.notes.push(format!("refused: seed {} {}: {}", r.seed, r.service, r.refused.as_deref().unwrap_or_default()));
    }
    s
}

// ---------------------------------------------------------------------------------------
// 2. Quality against the greedy
// ---------------------------------------------------------------------------------------

/// The example descriptors the quality and shift parts read, as (file name, text).
pub const EXAMPLE_FILES: [&str; 6] =
    ["infrastructure.yaml", "web.yaml", "epg.yaml", "input-chain.yaml", "demand.yaml", "knowledge-base.yaml"];

/// The examples as one validated bundle; every diagnostic (file:line:column) when invalid.
pub fn example_bundle(files: &[(String, String)]) -> Result<Bundle, BenchError> {
    let mut loaded = zonal_descriptor::Loaded::default();
    for (name, text) in files {
        loaded.extend(zonal_descriptor::read_yaml_str(name, text));
    }
    if loaded.is_valid() {
        loaded.cross_check();
    }
    if !loaded.is_valid() {
        let lines: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
        return Err(BenchError::new(format!("the example descriptors are invalid:\n{}", lines.join("\n"))));
    }
    Ok(loaded.bundle)
}

/// The verdict on one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Better,
    Equal,
    Worse,
    /// The pipeline refused a service the greedy placed without breaking a rule.
    Refused,
    /// Neither placed it validly.
    BothFailed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Equal => "equal",
            Verdict::Worse => "worse",
            Verdict::Refused => "refused",
            Verdict::BothFailed => "both failed",
        }
    }
    /// At least as good as the greedy.
    pub fn at_least_as_good(self) -> bool {
        matches!(self, Verdict::Better | Verdict::Equal | Verdict::BothFailed)
    }
}

/// One service of the quality part.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityRecord {
    pub scenario: String,
    pub service: String,
    /// Channels with latency bounds, a proximity class or regional demand.
    pub latency_matters: bool,
    /// The pipeline's route (empty when it refused).
    pub route: String,
    pub refused: Option<String>,
    pub seconds: f64,
    pub pipeline: Option<Quality>,
    pub pipeline_check_ok: Option<bool>,
    pub pipeline_value: Option<f64>,
    pub unit: String,
    /// The greedy's zone (empty when it placed nothing).
    pub greedy_zone: String,
    pub greedy_error: Option<String>,
    pub greedy_seconds: f64,
    pub greedy: Option<Quality>,
    pub greedy_violations: usize,
    pub greedy_violation_kinds: String,
    /// None when the gate cannot evaluate it (e.g. it cannot serve the demand).
    pub greedy_value: Option<f64>,
    pub greedy_value_error: Option<String>,
    pub verdict: Verdict,
    /// Figures on which the pipeline is worse than the greedy.
    pub worse_on: Vec<String>,
}

impl CsvRow for QualityRecord {
    fn header() -> &'static [&'static str] {
        &[
            "scenario",
            "service",
            "latency_matters",
            "route",
            "refused",
            "seconds",
            "users",
            "mean_user_latency_ms",
            "worst_utility",
            "blocked_users",
            "instance_cost",
            "channel_delay_ms",
            "pipeline_check_ok",
            "value_unit",
            "pipeline_value",
            "greedy_zone",
            "greedy_error",
            "greedy_seconds",
            "greedy_mean_user_latency_ms",
            "greedy_worst_utility",
            "greedy_blocked_users",
            "greedy_instance_cost",
            "greedy_channel_delay_ms",
            "greedy_violations",
            "greedy_violation_kinds",
            "greedy_value",
            "greedy_value_error",
            "verdict",
            "worse_on",
        ]
    }
    fn fields(&self) -> Vec<String> {
        let q = |x: &Option<Quality>| x.clone().unwrap_or_default();
        let (a, g) = (q(&self.pipeline), q(&self.greedy));
        vec![
            self.scenario.clone(),
            self.service.clone(),
            self.latency_matters.to_string(),
            self.route.clone(),
            self.refused.clone().unwrap_or_default(),
            num(Some(self.seconds)),
            a.users.to_string(),
            num(a.mean_user_latency_ms),
            num(a.worst_utility),
            a.blocked.to_string(),
            num(self.pipeline.as_ref().map(|x| x.instance_cost)),
            num(self.pipeline.as_ref().map(|x| x.channel_delay_ms)),
            self.pipeline_check_ok.map(|b| b.to_string()).unwrap_or_default(),
            self.unit.clone(),
            num(self.pipeline_value),
            self.greedy_zone.clone(),
            self.greedy_error.clone().unwrap_or_default(),
            num(Some(self.greedy_seconds)),
            num(g.mean_user_latency_ms),
            num(g.worst_utility),
            g.blocked.to_string(),
            num(self.greedy.as_ref().map(|x| x.instance_cost)),
            num(self.greedy.as_ref().map(|x| x.channel_delay_ms)),
            self.greedy_violations.to_string(),
            self.greedy_violation_kinds.clone(),
            num(self.greedy_value),
            self.greedy_value_error.clone().unwrap_or_default(),
            self.verdict.as_str().into(),
            self.worse_on.join("; "),
        ]
    }
}

/// Does latency matter to the service: a bounded channel, a proximity class or demand?
fn latency_matters(state: &LiveState, s: &LiveService) -> bool {
    s.service.proximity.is_some()
        || s.service.components.iter().any(|c| c.placement.proximity.is_some())
        || s.service.channels.iter().any(|c| c.max_latency.is_some())
        || !state.regional_demand(s).is_empty()
}

/// Decides `services` one after the other on `state` (each decision carried out before the
/// next), comparing each with the greedy on the same state.
pub fn run_quality(
    scenario: &str,
    state: &mut LiveState,
    services: &[String],
    opts: &DecideOptions,
    progress: Progress,
) -> Result<Vec<QualityRecord>, BenchError> {
    let mut out = Vec::new();
    for (i, name) in services.iter().enumerate() {
        progress(i, services.len(), &format!("{scenario}: {name}"));
        out.push(compare(scenario, state, name, opts)?);
    }
    Ok(out)
}

/// The pipeline against the greedy for one service on `state`; the pipeline's decision is
/// then carried out on it.
pub fn compare(
    scenario: &str,
    state: &mut LiveState,
    name: &str,
    opts: &DecideOptions,
) -> Result<QualityRecord, BenchError> {
    let live = state.service(name).ok_or_else(|| BenchError::new(format!("{scenario}: no service {name:?}")))?;
    let matters = latency_matters(state, live);
    let (problem, overrides) = decision_problem(state, name)?;
    let si = problem
        .service_index(name)
        .ok_or_else(|| BenchError::new(format!("{scenario}: service {name} is not in its own problem")))?;
    let started = Instant::now();
    let greedy = greedy_plan(&problem, name, greedy_slots(&problem, state, name));
    let greedy_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let decided = decide::decide(state, name, Trigger::Apply, opts);
    let seconds = started.elapsed().as_secs_f64();
    let mut rec = QualityRecord {
        scenario: scenario.into(),
        service: name.into(),
        latency_matters: matters,
        route: String::new(),
        refused: None,
        seconds,
        pipeline: None,
        pipeline_check_ok: None,
        pipeline_value: None,
        unit: String::new(),
        greedy_zone: String::new(),
        greedy_error: None,
        greedy_seconds,
        greedy: None,
        greedy_violations: 0,
        greedy_violation_kinds: String::new(),
        greedy_value: None,
        greedy_value_error: None,
        verdict: Verdict::BothFailed,
        worse_on: Vec::new(),
    };
    let mut greedy_valid = false;
    match &greedy {
        Ok(plan) => {
            let target = diff::allocation(&problem, plan, &overrides);
            let report = check::check(&problem, plan);
            rec.greedy_zone = target.zones.keys().cloned().collect::<Vec<_>>().join("+");
            rec.greedy = Some(quality(&problem, si, plan, &target));
            rec.greedy_violations = report.violations.len();
            rec.greedy_violation_kinds = violation_kinds(&report);
            match gate::evaluate(&problem, name, &target, opts) {
                Ok(e) => rec.greedy_value = Some(e.value),
                Err(e) => rec.greedy_value_error = Some(e.to_string()),
            }
            greedy_valid = report.is_ok() && rec.greedy_value.is_some();
        }
        Err(e) => rec.greedy_error = Some(e.to_string()),
    }
    match decided {
        Ok(d) => {
            rec.route = d.route.as_str().into();
            rec.pipeline_check_ok = Some(d.check.is_ok() && check::check(&problem, &d.plan).is_ok());
            let q = quality(&problem, si, &d.plan, &d.target);
            let eval = gate::evaluate(&problem, name, &d.target, opts).ok();
            rec.unit = unit_text(eval.as_ref().map_or(d.after.unit, |e| e.unit)).into();
            rec.pipeline_value = eval.map(|e| e.value);
            rec.verdict = verdict(&rec, greedy_valid);
            if let Some(g) = &rec.greedy {
                rec.worse_on = worse_on(&q, g);
            }
            rec.pipeline = Some(q);
            state.assume(name, &d.target);
        }
        Err(e) => {
            rec.refused = Some(e.to_string());
            rec.verdict = if greedy_valid { Verdict::Refused } else { Verdict::BothFailed };
        }
    }
    Ok(rec)
}

/// The verdict on a placed service (see the module docs).
fn verdict(rec: &QualityRecord, greedy_valid: bool) -> Verdict {
    if !greedy_valid {
        return Verdict::Better;
    }
    match (rec.pipeline_value, rec.greedy_value) {
        (Some(a), Some(b)) => {
            let tol = EQUAL_TOL * a.abs().max(b.abs()).max(1.0);
            if a > b + tol {
                Verdict::Better
            } else if a < b - tol {
                Verdict::Worse
            } else {
                Verdict::Equal
            }
        }
        _ => Verdict::Worse,
    }
}

/// The figures on which `a` (the pipeline) is worse than `g` (the greedy).
fn worse_on(a: &Quality, g: &Quality) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(x), Some(y)) = (a.mean_user_latency_ms, g.mean_user_latency_ms) {
        if x > y + 1e-6 {
            out.push(format!("user latency {x:.2} > {y:.2} ms"));
        }
    }
    if a.blocked > g.blocked {
        out.push(format!("{} user(s) blocked, greedy {}", a.blocked, g.blocked));
    } else if let (Some(x), Some(y), 0) = (a.worst_utility, g.worst_utility, g.blocked) {
        if x < y - 1e-6 {
            out.push(format!("worst utility {x:.3} < {y:.3}"));
        }
    }
    if a.instance_cost > g.instance_cost + 1e-9 {
        out.push(format!("instance cost {:.4} > {:.4} $/h", a.instance_cost, g.instance_cost));
    }
    if a.channel_delay_ms > g.channel_delay_ms + 1e-6 {
        out.push(format!("channel delay {:.2} > {:.2} ms", a.channel_delay_ms, g.channel_delay_ms));
    }
    out
}

/// The examples' state (every service registered with its demand), and a variant without
/// demand (`web` then goes to the single fast path, `epg` to copies, the chain measures
/// proximity from its pinned user), with the services to compare in name order.
pub fn example_states(bundle: &Bundle) -> Vec<(String, LiveState, Vec<String>)> {
    let names = |st: &LiveState| {
        let mut n: Vec<String> = st.services.iter().map(|s| s.service.name.clone()).collect();
        n.sort();
        n
    };
    let with = LiveState::from_bundle(bundle);
    let without_docs: Vec<Document> =
        bundle.documents.iter().filter(|d| !matches!(d, Document::Demand(_))).cloned().collect();
    let without = LiveState::from_bundle(&Bundle::new(without_docs));
    let (a, b) = (names(&with), names(&without));
    vec![("examples".into(), with, a), ("examples, no demand".into(), without, b)]
}

/// Data centres of the Topology Zoo scenario.
pub const ZOO_DATACENTERS: usize = 20;
/// User regions of the Topology Zoo scenario.
pub const ZOO_REGIONS: usize = 12;

/// The Topology Zoo scenario (see the module docs): `per_kind` services of each of FUSION
/// slot service, FUSION composite, chain and composite with channels, interleaved; returns
/// the state and the services in decision order.
pub fn zoo_quality_state(
    topology: Topology,
    per_kind: usize,
    seed: u64,
) -> Result<(LiveState, Vec<String>), BenchError> {
    let (mut infra, _) = zoo_infrastructure(topology, ZOO_DATACENTERS)?;
    zoo_state_from(&mut infra, per_kind, seed)
}

/// [`zoo_quality_state`] on an infrastructure already read (data centres = zones with hosts).
pub fn zoo_state_from(
    infra: &mut Infrastructure,
    per_kind: usize,
    seed: u64,
) -> Result<(LiveState, Vec<String>), BenchError> {
    let mut rng = SmallRng::seed_from_u64(seed);
    for z in infra.zones.iter_mut().filter(|z| !z.is_transit()) {
        let cores: u64 = *pick(&mut rng, &[128, 256, 384, 512]);
        z.price = Price {
            cpu_hour: Money::new(rng.random_range(0.02..0.06)),
            memory_gib_hour: Money::new(rng.random_range(0.002..0.008)),
            gpu_hour: Money::new(0.0),
            egress_per_gb: Money::new(rng.random_range(0.01..0.03)),
        };
        for h in &mut z.hosts {
            h.capacity = res(cores * 1000, cores * 4 * 1024);
        }
    }
    for l in &mut infra.links {
        l.bandwidth = Some(Bandwidth::from_mbps(1000.0 * f64::from(rng.random_range(1..=10u32))));
    }
    let nodes: Vec<(String, Option<Location>)> = infra.zones.iter().map(|z| (z.name.clone(), z.location)).collect();
    if nodes.is_empty() {
        return Err(BenchError::new(format!("{}: no nodes", infra.name)));
    }
    let mut at: BTreeSet<usize> = BTreeSet::new();
    while at.len() < ZOO_REGIONS.min(nodes.len()) {
        at.insert(rng.random_range(0..nodes.len()));
    }
    let regions: Vec<Region> = at
        .iter()
        .enumerate()
        .map(|(i, &n)| Region {
            name: format!("u{i:02}"),
            location: nodes[n].1,
            weight: f64::from(rng.random_range(1..=5u32)),
            attach: Some(nodes[n].0.clone()),
        })
        .collect();
    let mut services = Vec::new();
    let mut entries = Vec::new();
    let demand = |name: &str, rng: &mut SmallRng, k: usize, lo: u32, hi: u32| -> Vec<DemandEntry> {
        let mut chosen: BTreeSet<usize> = BTreeSet::new();
        while chosen.len() < k.min(regions.len()) {
            chosen.insert(rng.random_range(0..regions.len()));
        }
        chosen.into_iter().map(|r| entry(name, &regions[r].name, rng.random_range(lo..=hi))).collect()
    };
    for i in 0..per_kind {
        let vod = format!("vod-{i:02}");
        let mut s = fusion_service(&vod, false, &mut rng);
        s.sla = Some(sla(2.0, 15.0, 40.0));
        let k = rng.random_range(3..=5usize);
        entries.extend(demand(&vod, &mut rng, k, 20, 120));
        services.push(s);

        let epg = format!("epg-{i:02}");
        let mut s = fusion_service(&epg, true, &mut rng);
        s.sla = Some(sla(5.0, 20.0, 50.0));
        let k = rng.random_range(2..=4usize);
        entries.extend(demand(&epg, &mut rng, k, 10, 60));
        services.push(s);

        let cam = format!("cam-{i:02}");
        let user = &regions[rng.random_range(0..regions.len())];
        let class = if i % 2 == 0 { "metro" } else { "regional" };
        let mut s = chain_service(&cam, class, user.attach.as_deref(), &mut rng);
        s.entry = Some("fw".into());
        services.push(s);

        services.push(copies_service(&format!("pipe-{i:02}"), &mut rng));
    }
    let order: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let mut docs = vec![Document::Infrastructure(infra.clone())];
    docs.extend(services.into_iter().map(Document::Service));
    docs.push(Document::Demand(Demand { name: "users".into(), regions, entries }));
    Ok((LiveState::from_bundle(&Bundle::new(docs)), order))
}

/// One row per service; notes: how many are at least as good, strictly better where latency
/// matters, and every service where the pipeline is not at least as good or trades a figure.
pub fn quality_summary(records: &[QualityRecord]) -> Summary {
    let mut s = Summary {
        title: "Run-time decisions: quality against the greedy (same state, same evaluation; pipeline / greedy)".into(),
        headers: [
            "SCENARIO",
            "SERVICE",
            "ROUTE",
            "USER RTT ms",
            "WORST UTILITY",
            "COST $/h",
            "CHANNEL DELAY ms",
            "GREEDY VIOLATIONS",
            "VALUE (unit)",
            "VERDICT",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let pair = |a: Option<String>, b: Option<String>| {
        format!("{} / {}", a.unwrap_or_else(|| "-".into()), b.unwrap_or_else(|| "-".into()))
    };
    for r in records {
        let (a, g) = (r.pipeline.as_ref(), r.greedy.as_ref());
        let f2 = |v: Option<f64>| v.map(|x| format!("{x:.2}"));
        let f4 = |v: Option<f64>| v.map(|x| format!("{x:.4}"));
        s.rows.push(vec![
            r.scenario.clone(),
            r.service.clone(),
            if r.route.is_empty() { "refused".into() } else { r.route.clone() },
            pair(f2(a.and_then(|q| q.mean_user_latency_ms)), f2(g.and_then(|q| q.mean_user_latency_ms))),
            pair(a.map(Quality::worst_text), g.map(Quality::worst_text)),
            pair(f4(a.map(|q| q.instance_cost)), f4(g.map(|q| q.instance_cost))),
            pair(f2(a.map(|q| q.channel_delay_ms)), f2(g.map(|q| q.channel_delay_ms))),
            match (&r.greedy_error, r.greedy_violations) {
                (Some(_), _) => "no placement".into(),
                (None, 0) => "0".into(),
                (None, _) => r.greedy_violation_kinds.clone(),
            },
            format!(
                "{} ({})",
                pair(f4(r.pipeline_value), f4(r.greedy_value).or(r.greedy_value_error.as_ref().map(|_| "n/a".into()))),
                if r.unit.is_empty() { "-" } else { &r.unit }
            ),
            r.verdict.as_str().into(),
        ]);
    }
    let good = records.iter().filter(|r| r.verdict.at_least_as_good()).count();
    let matters: Vec<&QualityRecord> = records.iter().filter(|r| r.latency_matters).collect();
    let better = matters.iter().filter(|r| r.verdict == Verdict::Better).count();
    s.notes.push(format!(
        "at least as good as the greedy on {good} of {} services; strictly better on {better} of the {} where latency or channels matter (bounded channels, a proximity class or regional demand)",
        records.len(),
        matters.len()
    ));
    let checked: Vec<bool> = records.iter().filter_map(|r| r.pipeline_check_ok).collect();
    s.notes.push(format!(
        "pipeline plans through the checker: {} of {} ok; greedy plans with violations: {} of {}",
        checked.iter().filter(|&&b| b).count(),
        checked.len(),
        records.iter().filter(|r| r.greedy_violations > 0).count(),
        records.iter().filter(|r| r.greedy_error.is_none()).count()
    ));
    // FUSION's own order: worst-region utility first (Step 1), then the Step-2 value.
    let fair: Vec<&QualityRecord> =
        records.iter().filter(|r| r.pipeline.as_ref().is_some_and(|q| q.users > 0) && r.greedy.is_some()).collect();
    let fair_ok = fair
        .iter()
        .filter(|r| {
            let key = |q: &Quality| if q.blocked > 0 { f64::NEG_INFINITY } else { q.worst_utility.unwrap_or(0.0) };
            match (&r.pipeline, &r.greedy) {
                (Some(a), Some(g)) => key(a) >= key(g) - 1e-6,
                _ => false,
            }
        })
        .count();
    s.notes.push(format!(
        "worst user utility (FUSION's Step-1 criterion) at least the greedy's on {fair_ok} of the {} services with users",
        fair.len()
    ));
    for r in records.iter().filter(|r| !r.verdict.at_least_as_good()) {
        let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
        let (a, g) = (r.pipeline.clone().unwrap_or_default(), r.greedy.clone().unwrap_or_default());
        s.notes.push(format!(
            "NOT at least as good: {} {} ({}): {}{}; value {} vs {} ({}), worst utility {} vs {}, user RTT {} vs {} ms, cost {:.4} vs {:.4} $/h",
            r.scenario,
            r.service,
            if r.route.is_empty() { "refused" } else { &r.route },
            r.verdict.as_str(),
            r.refused.as_ref().map(|e| format!(" ({e})")).unwrap_or_default(),
            f(r.pipeline_value),
            f(r.greedy_value),
            r.unit,
            a.worst_text(),
            g.worst_text(),
            f(a.mean_user_latency_ms),
            f(g.mean_user_latency_ms),
            a.instance_cost,
            g.instance_cost
        ));
    }
    for r in records.iter().filter(|r| r.verdict.at_least_as_good() && !r.worse_on.is_empty()) {
        s.notes.push(format!(
            "trade-off: {} {} ({}, {}): {}",
            r.scenario,
            r.service,
            r.route,
            r.verdict.as_str(),
            r.worse_on.join("; ")
        ));
    }
    for r in records.iter().filter(|r| r.greedy_value_error.is_some() && r.greedy_error.is_none()) {
        s.notes.push(format!(
            "greedy not evaluable: {} {}: {}",
            r.scenario,
            r.service,
            r.greedy_value_error.as_deref().unwrap_or_default()
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------
// 3. Demand shift
// ---------------------------------------------------------------------------------------

/// One decision of the shift part.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftRecord {
    /// The SLA the regions' users have.
    pub sla: String,
    /// `initial`, `swap`, `tiny`.
    pub case: String,
    pub demand_before: String,
    pub demand_after: String,
    pub applied: bool,
    /// Instances the decision moves (`diff.moved()`).
    pub moved: u32,
    /// Moves the new plan would make, had the gate let it.
    pub plan_moves: u32,
    /// The lower bound (see the module docs).
    pub min_moves: u32,
    pub gain: Option<f64>,
    pub move_cost: f64,
    pub seconds: f64,
    pub check_ok: bool,
    pub target: String,
    pub summary: String,
}

impl CsvRow for ShiftRecord {
    fn header() -> &'static [&'static str] {
        &[
            "sla",
            "case",
            "demand_before",
            "demand_after",
            "applied",
            "moved",
            "plan_moves",
            "min_moves",
            "gain",
            "move_cost",
            "seconds",
            "check_ok",
            "target",
            "summary",
        ]
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.sla.clone(),
            self.case.clone(),
            self.demand_before.clone(),
            self.demand_after.clone(),
            self.applied.to_string(),
            self.moved.to_string(),
            self.plan_moves.to_string(),
            self.min_moves.to_string(),
            num(self.gain),
            num(Some(self.move_cost)),
            num(Some(self.seconds)),
            self.check_ok.to_string(),
            self.target.clone(),
            self.summary.clone(),
        ]
    }
}

/// The shifted service and its two regions.
pub const SHIFT_SERVICE: &str = "web";
pub const SHIFT_REGIONS: [&str; 2] = ["antwerp", "liege"];
/// Slots per region: placed for, swapped, tiny shift.
pub const SHIFT_INITIAL: [u32; 2] = [170, 30];
pub const SHIFT_SWAP: [u32; 2] = [30, 170];
pub const SHIFT_TINY: [u32; 2] = [148, 52];

/// The shift scenario on the examples (see the module docs), for the declared SLA and a
/// latency-sensitive override.
pub fn run_shift(bundle: &Bundle, opts: &DecideOptions) -> Result<Vec<ShiftRecord>, BenchError> {
    let mut out = Vec::new();
    let slas: [(&str, Option<UtilitySla>); 2] = [("declared", None), ("0/2/10 ms override", Some(sla(0.0, 2.0, 10.0)))];
    for (label, override_sla) in slas {
        let mut state = shift_state(bundle)?;
        let text = |d: [u32; 2]| format!("{} {}, {} {}", SHIFT_REGIONS[0], d[0], SHIFT_REGIONS[1], d[1]);
        let set = |state: &mut LiveState, d: [u32; 2]| {
            if let Some(s) = state.services.iter_mut().find(|s| s.service.name == SHIFT_SERVICE) {
                s.demand = SHIFT_REGIONS
                    .iter()
                    .zip(d)
                    .map(|(r, n)| DemandEntry { sla: override_sla, ..entry(SHIFT_SERVICE, r, n) })
                    .collect();
            }
        };
        let sla_text = match override_sla {
            Some(_) => label.to_string(),
            None => {
                let s = state.service(SHIFT_SERVICE).and_then(|s| s.service.sla).unwrap_or_default();
                format!("declared {}/{}/{} ms", s.r_min.as_millis(), s.r_med.as_millis(), s.r_max.as_millis())
            }
        };
        set(&mut state, SHIFT_INITIAL);
        let first = shift_decision(&state, Trigger::Apply, opts)?;
        out.push(shift_record(&state, &sla_text, "initial", String::new(), text(SHIFT_INITIAL), &first)?);
        state.assume(SHIFT_SERVICE, &first.target);
        for (case, d) in [("swap", SHIFT_SWAP), ("tiny", SHIFT_TINY)] {
            let mut st = state.clone();
            set(&mut st, d);
            let decision = shift_decision(&st, Trigger::Demand, opts)?;
            out.push(shift_record(&st, &sla_text, case, text(SHIFT_INITIAL), text(d), &decision)?);
        }
    }
    Ok(out)
}

/// The example infrastructure with `web` alone and the two shift regions.
fn shift_state(bundle: &Bundle) -> Result<LiveState, BenchError> {
    let mut state = LiveState::from_bundle(bundle);
    state.services.retain(|s| s.service.name == SHIFT_SERVICE);
    state.regions.retain(|r| SHIFT_REGIONS.contains(&r.name.as_str()));
    if state.services.is_empty() || state.regions.len() != SHIFT_REGIONS.len() {
        return Err(BenchError::new(format!(
            "the examples need service {SHIFT_SERVICE:?} and regions {SHIFT_REGIONS:?} (web.yaml, demand.yaml)"
        )));
    }
    Ok(state)
}

fn shift_decision(state: &LiveState, trigger: Trigger, opts: &DecideOptions) -> Result<Decision, BenchError> {
    decide::decide(state, SHIFT_SERVICE, trigger, opts).map_err(|e| BenchError::new(format!("shift: {e}")))
}

/// The record of one shift decision, with the moves its own plan would make and their lower
/// bound.
fn shift_record(
    state: &LiveState,
    sla: &str,
    case: &str,
    before: String,
    after: String,
    d: &Decision,
) -> Result<ShiftRecord, BenchError> {
    let (problem, overrides) = decision_problem(state, SHIFT_SERVICE)?;
    let running = state.service(SHIFT_SERVICE).and_then(|s| s.running.clone()).unwrap_or_default();
    let proposed = diff::allocation(&problem, &d.plan, &overrides);
    let si = problem.service_index(SHIFT_SERVICE).unwrap_or(0);
    let sd = &problem.services[si];
    let entry = sd.service.components[sd.entry].name.clone();
    let spi = f64::from(sd.slots_per_instance.max(1));
    let mut assigned: BTreeMap<&str, f64> = BTreeMap::new();
    for a in d.plan.assignments.iter().filter(|a| a.service == SHIFT_SERVICE) {
        *assigned.entry(a.zone.as_str()).or_default() += a.slots;
    }
    // A hair under a whole instance's slots does not need another (LP round-off).
    let need: BTreeMap<&str, u32> =
        assigned.into_iter().map(|(z, slots)| (z, (slots / spi - 1e-9).ceil().max(0.0) as u32)).collect();
    let have = |z: &str| running.count(z, &entry);
    let starts: u32 = need.iter().map(|(z, n)| n.saturating_sub(have(z))).sum();
    let (n_after, n_before): (u32, u32) =
        (need.values().sum(), running.zones.values().filter_map(|c| c.get(&entry)).sum());
    let min_moves = starts.saturating_sub(n_after.saturating_sub(n_before));
    Ok(ShiftRecord {
        sla: sla.into(),
        case: case.into(),
        demand_before: before,
        demand_after: after,
        applied: d.apply,
        moved: d.diff.moved(),
        plan_moves: diff::diff(&running, &proposed).moved(),
        min_moves,
        gain: d.gain,
        move_cost: d.move_cost,
        seconds: d.seconds,
        check_ok: d.check.is_ok() && check::check(&problem, &d.plan).is_ok(),
        target: d
            .target
            .zones
            .iter()
            .map(|(z, c)| format!("{z}: {}", c.get(&entry).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", "),
        summary: d.summary.clone(),
    })
}

/// One row per shift decision.
pub fn shift_summary(records: &[ShiftRecord]) -> Summary {
    let mut s = Summary {
        title: format!(
            "Run-time decisions: re-placement of {SHIFT_SERVICE} under a demand shift (example infrastructure; Trigger::Demand, switching cost {} utility per move)",
            zonal_place::decide::SwitchingCosts::default().utility_per_move
        ),
        headers: [
            "SLA", "CASE", "DEMAND", "TARGET (entry per zone)", "APPLIED", "MOVED", "PLAN MOVES", "MIN MOVES", "GAIN",
            "MOVE COST", "TIME", "CHECK",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    for r in records {
        s.rows.push(vec![
            r.sla.clone(),
            r.case.clone(),
            if r.demand_before.is_empty() {
                r.demand_after.clone()
            } else {
                format!("{} → {}", r.demand_before, r.demand_after)
            },
            r.target.clone(),
            if r.case == "initial" { "placed".into() } else { r.applied.to_string() },
            r.moved.to_string(),
            r.plan_moves.to_string(),
            r.min_moves.to_string(),
            r.gain.map_or("-".into(), |g| format!("{g:.4}")),
            format!("{:.4}", r.move_cost),
            seconds(Some(r.seconds)),
            if r.check_ok { "ok".into() } else { "FAILED".into() },
        ]);
    }
    s.notes.push("MIN MOVES: Σ over zones of the entry instances the new plan's assignment needs there (⌈slots / slots per instance⌉) less those running there, less any growth in their total — a lower bound for any plan serving each region where the new one does".into());
    for r in records.iter().filter(|r| r.case != "initial") {
        s.notes.push(format!("{} {}: {}", r.sla, r.case, r.summary));
    }
    s
}

// ---------------------------------------------------------------------------------------
// The whole suite
// ---------------------------------------------------------------------------------------

/// What the suite runs on: the example files and the Topology Zoo network's GraphML.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeData<'a> {
    pub examples: &'a [(String, String)],
    pub zoo: Topology<'a>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeRun {
    pub scale: Scale,
    pub seeds: Vec<u64>,
    /// Services per kind on the Topology Zoo network (per seed).
    pub zoo_per_kind: usize,
    pub options: DecideOptions,
}

/// Everything the suite measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeResults {
    pub latency: Vec<LatencyRecord>,
    pub quality: Vec<QualityRecord>,
    pub shift: Vec<ShiftRecord>,
}

/// Runs the three parts.
pub fn run_runtime(data: RuntimeData, run: &RuntimeRun, progress: Progress) -> Result<RuntimeResults, BenchError> {
    let latency = run_latency(&run.scale, &run.seeds, &run.options, progress)?;
    let bundle = example_bundle(data.examples)?;
    let mut quality = Vec::new();
    for (scenario, mut state, services) in example_states(&bundle) {
        quality.extend(run_quality(&scenario, &mut state, &services, &run.options, progress)?);
    }
    for &seed in &run.seeds {
        let (mut state, services) = zoo_quality_state(data.zoo, run.zoo_per_kind, seed)?;
        let scenario = format!("{} seed {seed}", data.zoo.name);
        quality.extend(run_quality(&scenario, &mut state, &services, &run.options, progress)?);
    }
    progress(1, 1, "demand shift");
    let shift = run_shift(&bundle, &run.options)?;
    Ok(RuntimeResults { latency, quality, shift })
}

/// The three summaries.
pub fn summaries(results: &RuntimeResults, run: &RuntimeRun) -> Vec<Summary> {
    vec![
        latency_summary(&results.latency, &run.scale, run.seeds.len(), &run.options.fusion.solver),
        quality_summary(&results.quality),
        shift_summary(&results.shift),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DecideOptions {
        options(Duration::from_secs(10), 1)
    }

    fn examples() -> Vec<(String, String)> {
        [
            ("infrastructure.yaml", include_str!("../../../examples/infrastructure.yaml")),
            ("web.yaml", include_str!("../../../examples/web.yaml")),
            ("epg.yaml", include_str!("../../../examples/epg.yaml")),
            ("input-chain.yaml", include_str!("../../../examples/input-chain.yaml")),
            ("demand.yaml", include_str!("../../../examples/demand.yaml")),
            ("knowledge-base.yaml", include_str!("../../../examples/knowledge-base.yaml")),
        ]
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
    }

    fn zone(name: &str, lat: f64, lon: f64, hosts: &[(&str, u64)]) -> Zone {
        Zone {
            name: name.into(),
            location: Location::new(lat, lon),
            price: Price { cpu_hour: Money::new(0.04), memory_gib_hour: Money::new(0.005), ..Default::default() },
            hosts: hosts
                .iter()
                .map(|(h, cores)| Host {
                    name: h.to_string(),
                    capacity: res(cores * 1000, cores * 4096),
                    available: true,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn link(a: &str, b: &str) -> Link {
        Link {
            from: a.into(),
            to: b.into(),
            latency: None,
            bandwidth: Some(Bandwidth::from_mbps(10_000.0)),
            cost_per_gb: Money::new(0.0),
        }
    }

    #[test]
    fn the_synthetic_state_is_seeded_connected_and_partly_used() {
        let scale = Scale::tiny();
        let a = scale_state(&scale, 7);
        assert_eq!(a, scale_state(&scale, 7), "same seed, same state");
        assert_ne!(a, scale_state(&scale, 8));
        assert_eq!(a.infrastructure.zones.len(), scale.zones);
        assert!(a.infrastructure.zones.iter().all(|z| z.hosts.len() == scale.hosts_per_zone));
        assert_eq!(a.regions.len(), scale.regions);
        assert_eq!(a.services.len(), scale.background);
        assert!(!a.instances.is_empty());
        let p = Problem::from_bundle(
            &Bundle::new(vec![Document::Infrastructure(a.infrastructure.clone())]),
            &zonal_place::ProblemOptions::default(),
        )
        .expect("problem");
        assert!(p.zone_delay.iter().flatten().all(|d| d.is_finite()), "the link graph is connected");
        for i in &a.instances {
            let cap = &a.infrastructure.zones.iter().find(|z| z.name == i.zone).unwrap();
            let cap = &cap.hosts.iter().find(|h| h.name == i.host).unwrap().capacity;
            assert!(a.free[&i.zone][&i.host].get("cpu") < cap.get("cpu"), "{i:?}");
        }
        let services = scale_services(&a, &scale, 7);
        let kinds: Vec<Kind> = services.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, Kind::ALL.to_vec());
    }

    #[test]
    fn latency_part_on_a_tiny_state_decides_every_route_and_checks_it() {
        let records = run_latency(&Scale::tiny(), &[1], &opts(), &mut crate::no_progress).expect("ran");
        assert_eq!(records.len(), 4);
        for r in &records {
            assert_eq!(r.refused, None, "{r:?}");
            assert_eq!(r.check_ok, Some(true), "{r:?}");
            let expected: &[&str] = match r.kind {
                Kind::Chain => &["chain"],
                Kind::Fusion => &["fusion", "split"],
                Kind::Copies => &["copies"],
                Kind::Single => &["single"],
            };
            assert!(expected.contains(&r.route.as_str()), "{r:?}");
            assert!(r.seconds > 0.0 && r.greedy_total_seconds >= r.greedy_seconds, "{r:?}");
            assert!(r.instances > 0);
        }
        let csv = crate::report::to_csv(&records);
        assert!(csv.starts_with("seed,index,kind,service,route,"), "{csv}");
        let s = latency_summary(&records, &Scale::tiny(), 1, &opts().fusion.solver);
        assert!(s.title.contains("solver 1 thread(s), 10 s limit"), "{}", s.title);
        assert_eq!(s.rows.len(), 5, "four routes and all");
        assert!(s.notes[0].starts_with("targets over all decisions: p50"), "{:?}", s.notes);
    }

    /// A metro chain whose user is at a small edge zone, and a big core zone far away: the
    /// greedy takes the core (most free CPU) and breaks the proximity class.
    #[test]
    fn the_greedy_breaks_a_proximity_class_the_pipeline_keeps() {
        let infra = Infrastructure {
            name: "t".into(),
            zones: vec![
                zone("antwerp-edge", 51.22, 4.40, &[("a0", 8)]),
                zone("ghent-edge", 51.05, 3.72, &[("g0", 8)]),
                zone("lisbon-core", 38.72, -9.14, &[("l0", 64), ("l1", 64)]),
            ],
            links: vec![link("antwerp-edge", "ghent-edge"), link("antwerp-edge", "lisbon-core")],
            ..Default::default()
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let s = chain_service("cam", "metro", Some("antwerp-edge"), &mut rng);
        let mut state =
            LiveState::from_bundle(&Bundle::new(vec![Document::Infrastructure(infra), Document::Service(s)]));
        let rec = compare("t", &mut state, "cam", &opts()).expect("compared");
        assert_eq!(rec.route, "chain");
        assert_eq!(rec.pipeline_check_ok, Some(true));
        assert_eq!(rec.greedy_zone, "lisbon-core");
        assert!(rec.greedy_violation_kinds.contains("Proximity"), "{rec:?}");
        assert_eq!(rec.verdict, Verdict::Better);
        let (a, g) = (rec.pipeline.clone().unwrap(), rec.greedy.clone().unwrap());
        assert!(a.mean_user_latency_ms.unwrap() < g.mean_user_latency_ms.unwrap());
        assert!(a.channel_delay_ms < g.channel_delay_ms, "{a:?} {g:?}");
        assert!(state.service("cam").and_then(|s| s.running.as_ref()).is_some(), "the decision was carried out");
    }

    #[test]
    fn quality_on_a_small_network_is_deterministic_and_checked() {
        let mut infra = Infrastructure {
            name: "small".into(),
            zones: vec![
                zone("a", 50.0, 0.0, &[("dc", 1)]),
                zone("b", 50.0, 3.0, &[]),
                zone("c", 50.0, 6.0, &[("dc", 1)]),
                zone("d", 50.0, 9.0, &[]),
                zone("e", 50.0, 12.0, &[("dc", 1)]),
            ],
            links: vec![link("a", "b"), link("b", "c"), link("c", "d"), link("d", "e")],
            ..Default::default()
        };
        let run = |infra: &mut Infrastructure| {
            let (mut st, order) = zoo_state_from(infra, 1, 5).expect("state");
            assert_eq!(order, vec!["vod-00", "epg-00", "cam-00", "pipe-00"]);
            run_quality("small", &mut st, &order, &opts(), &mut crate::no_progress).expect("ran")
        };
        let records = run(&mut infra.clone());
        assert_eq!(records.len(), 4);
        for r in &records {
            assert_eq!(r.pipeline_check_ok, Some(true), "{r:?}");
            assert!(r.verdict.at_least_as_good(), "{r:?}");
        }
        let strip = |rs: Vec<QualityRecord>| -> Vec<QualityRecord> {
            rs.into_iter().map(|r| QualityRecord { seconds: 0.0, greedy_seconds: 0.0, ..r }).collect()
        };
        assert_eq!(strip(records.clone()), strip(run(&mut infra)), "seeded: the same records");
        let s = quality_summary(&records);
        assert_eq!(s.rows.len(), 4);
        assert!(s.notes[0].starts_with("at least as good as the greedy on 4 of 4"), "{:?}", s.notes);
        assert!(crate::report::to_csv(&records).starts_with("scenario,service,latency_matters,route,"));
    }

    #[test]
    fn the_examples_compare_and_shift() {
        let bundle = example_bundle(&examples()).expect("valid examples");
        let states = example_states(&bundle);
        assert_eq!(states.len(), 2);
        let (_, mut st, names) = states[1].clone();
        assert_eq!(names, vec!["epg", "smart-camera", "web"]);
        let records =
            run_quality("examples, no demand", &mut st, &names, &opts(), &mut crate::no_progress).expect("compared");
        let routes: Vec<&str> = records.iter().map(|r| r.route.as_str()).collect();
        assert_eq!(routes, vec!["copies", "chain", "single"]);
        assert!(records.iter().all(|r| r.pipeline_check_ok == Some(true)));

        let shift = run_shift(&bundle, &opts()).expect("shift");
        assert_eq!(shift.len(), 6);
        let case = |sla: &str, case: &str| {
            shift.iter().find(|r| r.sla.starts_with(sla) && r.case == case).cloned().expect("recorded")
        };
        let swap = case("0/2/10", "swap");
        assert!(swap.applied, "{swap:?}");
        assert!(swap.moved >= swap.min_moves && swap.min_moves > 0, "{swap:?}");
        let tiny = case("declared", "tiny");
        assert!(!tiny.applied && tiny.moved == 0, "the gate keeps the placement: {tiny:?}");
        // Under the tight SLA a small shift can pay for a move (the worst region gains): the
        // verdict follows gain against move cost either way.
        let tight = case("0/2/10", "tiny");
        assert_eq!(tight.applied, tight.gain.is_some_and(|g| g > tight.move_cost), "{tight:?}");
        assert!(shift.iter().all(|r| r.check_ok));
    }

    #[test]
    fn invalid_examples_are_refused_naming_the_file() {
        let files = vec![("broken.yaml".to_string(), "kind: Service\nname: [".to_string())];
        let e = example_bundle(&files).expect_err("invalid");
        assert!(e.message.contains("broken.yaml"), "{e}");
    }
}
