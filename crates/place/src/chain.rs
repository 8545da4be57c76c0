//! INPUT service-chain placement (seed 004 §V; reconstruction in notes B2.1): every component
//! of one chain on one host, every channel on one unsplittable, loop-free path, solved as one
//! ILP (IN-35: hosts and paths in a single phase).
//!
//! # Model
//!
//! * **Hosts and zones.** Binary `x_ht`: component *t* on host *h*; `Σ_h x_ht = 1` (IN-21).
//!   Routing works on the **zone graph**: hosts belong to zones, two components in the same
//!   zone need no WAN path (intra-zone traffic is the zone's business), and the zone
//!   indicator `X_vt = Σ_{h∈v} x_ht` stands for INPUT's per-host `x` in the flow equations.
//! * **Arcs.** Each undirected link is two arcs; bandwidth is per direction (notes B5.8).
//!   Binary `π_a,c` for each arc *a* and channel *c*; arcs whose delay alone exceeds the
//!   channel's max latency are not generated.
//! * **Flow conservation with endpoint injection (9):** for every zone *v*,
//!   `Σ_in π + X_vs = Σ_out π + X_vd` — one unit leaves the source's zone, reaches the
//!   destination's zone, and nothing flows when both are in the same zone (IN-25, IN-28).
//! * **Loop-freedom (10), linear form:** `π_(u,v) + X_vs ≤ 1` (no arc into the source's zone)
//!   and `π_(u,v) + X_ud ≤ 1` (no arc out of the destination's zone). Isolated cycles away from
//!   both ends are not excluded by (9)–(10) (notes B5.9), so every arc use also costs a tiny
//!   tie-break `ε·(delay + 0.001 ms)` in the objective, and the path reported is the one
//!   walked from the source's zone (any stray cycle is dropped).
//! * **Symmetric routing (11):** when both (s,d) and (d,s) are channels, (d,s) reuses (s,d)'s
//!   arc variables reversed, so the two paths are exact reverses (IN-29); each direction's
//!   bandwidth is charged on its own arcs.
//! * **Host capacity (7)** per resource against the host's free capacity (IN-24); **link
//!   bandwidth (12)** per arc (IN-30); **max latency** per channel: `Σ_a delay_a π_a ≤ max`
//!   (one-way; the tighter bound of a symmetric pair applies to both).
//! * **Static components (5)–(6).** A `user_side` component is pinned to its `pin` (zone and
//!   optionally host) or, without one, to the subscription region's `attach` zone; it uses no
//!   host resources. A pinned non-user-side component is restricted to its pin. No
//!   non-static component may share a host with a user-side component (IN-23).
//! * **Proximity classes** (B2.2): a non-pinned component with a class (its own, else the
//!   service's) may only go to zones whose round-trip latency from the user — the
//!   subscription's region (see [`crate::problem`]), else the user-side component's zone over
//!   the link graph — is within the class bound (a candidate pre-filter, IN-38).
//! * **Placement constraints** (pre-filters): allowed/avoided zones, required host features,
//!   available hosts only; affinity as `X_va = X_vb` for every zone, anti-affinity as
//!   `x_ha + x_hb ≤ 1` for every host.
//!
//! # Objectives
//!
//! * **Delay** (Obj. 1): `Σ_c Σ_a π_a,c · delay_a`, summed over all channels — a symmetric
//!   pair counts its (equal) delay twice, as the paper's sum over C does (B5.4).
//! * **Used servers** (Obj. 2, linear form): `y_h ≥ x_ht`, minimise
//!   `Σ_h y_h · 100 · Avail_h^cpu / Cap_h^cpu` where Avail is the host's free CPU before this
//!   chain. On an empty infrastructure every used host costs 100 (IN-33); a partly used host
//!   costs less, so it is preferred (IN-34). A host with no CPU capacity weighs 0.
//! * **Weighted**: `w_delay · Obj1 + w_servers · Obj2` (the paper does not say how to combine
//!   them, B5.5).
//!
//! # Strong bound (the exact method's default)
//!
//! With [`ChainOptions::strong_bound`] (default on) and no [`HostCosts`], [`place_chain_with`]
//! first runs the chain heuristic ([`crate::heuristic`]) with its combinatorial bound only
//! (no LP). That bound is a valid lower bound of this ILP's optimum over the same candidates
//! (for path-shaped chains, the covering walk: see `heuristic/walk.rs` for the argument), and
//! the heuristic's plan is feasible for this ILP (same candidates, capacities, bandwidth and
//! latency rows; the benchmarks run the independent checker on it). So when the plan's
//! objective is within the solver's relative gap (`mip_rel_gap`, default 1e-4) of the bound,
//! the plan is returned **proven optimal without building or solving the ILP** (its notes
//! say so; `stats.columns` is 0). Otherwise HiGHS solves the ILP as before with the
//! heuristic's plan as a MIP start (`Highs_setSolution`: hosts, the arcs of each channel's
//! path, used-server indicators). The bound is not given to HiGHS as a row
//! `objective ≥ bound`: that row made HiGHS 3–4× slower than the plain ILP on the SC3 chain
//! measured, where the start alone made it 10× faster. There is no symmetry breaking for
//! identical hosts. `strong_bound: false` gives the plain ILP
//! (`zonal bench --suite zoo --compare-plain` measures both in one run).
//!
//! # Sequences of chains
//!
//! [`place_chains`] places subscriptions one at a time against the residual host capacity and
//! link bandwidth left by the ones before (B5.2), and reports each chain's place time.
//!
//! # Infeasibility
//!
//! Cheap pre-checks name a component with no candidate host (and which filter removed the
//! last one: placement constraints, proximity class, or capacity) and a channel whose max
//! latency no pair of candidate zones can meet. Otherwise an elastic re-solve adds slack to
//! host capacity, link bandwidth and channel latency rows and reports the rows with positive
//! slack.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use good_lp::{variable, Expression};
use highs::Sense;
use serde::{Deserialize, Serialize};
use zonal_model::{Resources, Service};

use crate::error::{reason, ConstraintFamily, InfeasibilityReason, PlaceError};
use crate::plan::{ChannelPath, Placement, Plan, PlanStats, PlanStatus, Subscription};
use crate::problem::Problem;
use crate::solver::{GVar, GoodLpModel, SolveStatus, SolverOptions};

/// One chain to place: a subscription of a user (region) to a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainRequest {
    pub id: String,
    pub service: String,
    pub region: Option<String>,
}

/// What the chain ILP minimises.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ChainObjective {
    Delay,
    UsedServers,
    Weighted { delay: f64, servers: f64 },
}

impl ChainObjective {
    /// (delay weight, used-servers weight).
    pub fn weights(self) -> (f64, f64) {
        match self {
            ChainObjective::Delay => (1.0, 0.0),
            ChainObjective::UsedServers => (0.0, 1.0),
            ChainObjective::Weighted { delay, servers } => (delay.max(0.0), servers.max(0.0)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainOptions {
    pub objective: ChainObjective,
    pub solver: SolverOptions,
    /// Per-instance terms added to the objective (all zero by default: INPUT's objectives
    /// alone). The run-time pipeline uses them for composite copies and splits.
    #[serde(default)]
    pub host_costs: HostCosts,
    /// Run the chain heuristic first (see [`crate::heuristic`]) and use its plan and its
    /// combinatorial lower bound: when the plan's objective is within the solver's relative
    /// gap of the bound, it is returned as proven optimal without calling HiGHS; otherwise
    /// HiGHS gets the plan as a MIP start. Only
    /// when `host_costs` are all zero (the heuristic does not model them). `false` gives the
    /// plain ILP (the benchmark's reference).
    #[serde(default = "strong_bound_default")]
    pub strong_bound: bool,
}

fn strong_bound_default() -> bool {
    true
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            objective: ChainObjective::Delay,
            solver: SolverOptions::default(),
            host_costs: HostCosts::default(),
            strong_bound: true,
        }
    }
}

/// Terms of the chain objective that depend on the host each component goes to, added to
/// INPUT's delay / used-servers objective (exact ILP only; the heuristic ignores them and
/// says so in its notes):
///
/// * `cost` × the zone's hourly price of the component's resources (FUSION's DeployCost of
///   one instance);
/// * `preference` × (1 − the host's preference), the preference being an evaluator's score in
///   [0, 1] ([`crate::problem::ServiceData::host_preference`]; 1 when none is given);
/// * `entry_latency` × the round-trip time from the subscription's region to the entry
///   component's zone (ms), so a composite split near its users keeps its entry close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HostCosts {
    pub cost: f64,
    pub preference: f64,
    pub entry_latency: f64,
}

impl HostCosts {
    pub fn is_zero(&self) -> bool {
        self.cost == 0.0 && self.preference == 0.0 && self.entry_latency == 0.0
    }

    /// The extra cost of component `t` of service `si` on host `h` for a subscription from
    /// `region`.
    pub fn of(&self, p: &Problem, si: usize, t: usize, h: usize, region: Option<usize>) -> f64 {
        if self.is_zero() {
            return 0.0;
        }
        let sd = &p.services[si];
        let c = &sd.service.components[t];
        let zone = p.hosts[h].zone;
        let mut v = self.cost * p.zones[zone].price.hourly(&c.resources);
        if self.preference != 0.0 {
            let pref = sd.host_preference.as_ref().and_then(|v| v.get(h)).copied().unwrap_or(1.0);
            v += self.preference * (1.0 - pref.clamp(0.0, 1.0));
        }
        if let (true, Some(r)) = (self.entry_latency != 0.0 && t == sd.entry, region) {
            let rtt = p.region_rtt[r][zone];
            if rtt.is_finite() {
                v += self.entry_latency * rtt;
            }
        }
        v
    }
}

/// Free host capacity and free arc bandwidth.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    /// Per host (index into [`Problem::hosts`]); unavailable hosts have nothing free.
    pub host_free: Vec<Resources>,
    /// Per arc: link *l* gives arc `2l` (a→b) and `2l+1` (b→a); `INFINITY` when unlimited.
    pub arc_free: Vec<f64>,
}

impl Residual {
    /// Everything free.
    pub fn full(p: &Problem) -> Residual {
        Residual {
            host_free: p
                .hosts
                .iter()
                .map(|h| if h.available { h.capacity.clone() } else { Resources::new() })
                .collect(),
            arc_free: p.links.iter().flat_map(|l| [l.bandwidth_mbps.unwrap_or(f64::INFINITY); 2]).collect(),
        }
    }
}

/// Arc `a` as (from zone, to zone, delay).
pub(crate) fn arc(p: &Problem, a: usize) -> (usize, usize, f64) {
    let l = &p.links[a / 2];
    if a.is_multiple_of(2) {
        (l.a, l.b, l.delay_ms)
    } else {
        (l.b, l.a, l.delay_ms)
    }
}

fn reverse_arc(a: usize) -> usize {
    a ^ 1
}

/// Where a component may go.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// User-side: fixed zone (and host, if pinned to one), no variables.
    Fixed { zone: usize, host: Option<usize> },
    /// Candidate hosts.
    Hosts(Vec<usize>),
}

/// One routed channel (the primary of a symmetric pair carries the variables).
struct Route {
    from: usize,
    to: usize,
    bandwidth: f64,
    max_latency: f64,
    /// Channel indices in the service (primary first; a reverse channel second).
    channels: Vec<usize>,
    arcs: Vec<usize>,
    pi: Vec<GVar>,
}

struct Built {
    model: GoodLpModel,
    x: Vec<Vec<GVar>>,
    slots: Vec<Slot>,
    routes: Vec<Route>,
    host_weight: BTreeMap<usize, f64>,
    /// Used-server indicator per host (used-servers and weighted objectives).
    used: BTreeMap<usize, GVar>,
    slacks: Vec<(GVar, InfeasibilityReason)>,
}

pub(crate) struct Context<'a> {
    pub(crate) p: &'a Problem,
    pub(crate) si: usize,
    pub(crate) request: &'a ChainRequest,
    pub(crate) region: Option<usize>,
    pub(crate) user_zone: Option<usize>,
}

impl Context<'_> {
    fn user_latency(&self, zone: usize) -> Option<f64> {
        match (self.region, self.user_zone) {
            (Some(r), _) => Some(self.p.region_rtt[r][zone]),
            (None, Some(u)) => Some(self.p.zone_rtt(u, zone)),
            _ => None,
        }
    }
}

pub(crate) fn resolve<'a>(
    p: &'a Problem,
    request: &'a ChainRequest,
) -> Result<(Context<'a>, Vec<Slot>, Vec<InfeasibilityReason>), PlaceError> {
    let si = p.service_index(&request.service).ok_or_else(|| {
        PlaceError::input(format!("chain {:?}.service", request.id), format!("unknown service {:?}", request.service))
    })?;
    let region = match &request.region {
        Some(r) => Some(p.region_index(r).ok_or_else(|| {
            PlaceError::input(
                format!("chain {:?}.region", request.id),
                format!("unknown region {r:?}; expected a region of the demand"),
            )
        })?),
        None => None,
    };
    let s = &p.services[si].service;
    let mut ctx = Context { p, si, request, region, user_zone: None };
    let mut slots: Vec<Option<Slot>> = vec![None; s.components.len()];
    // User-side components first: they fix the user's zone.
    for (ci, c) in s.components.iter().enumerate() {
        if !c.user_side {
            continue;
        }
        let at = format!("service {:?} component {:?}", s.name, c.name);
        let (zone, host) = match &c.placement.pin {
            Some(pin) => {
                let z = p
                    .zone_index(&pin.zone)
                    .ok_or_else(|| PlaceError::input(&at, format!("pinned to unknown zone {:?}", pin.zone)))?;
                let h = match &pin.host {
                    Some(h) => Some(p.host_index(z, h).ok_or_else(|| {
                        PlaceError::input(&at, format!("pinned to unknown host {h:?} in zone {:?}", pin.zone))
                    })?),
                    None => None,
                };
                (z, h)
            }
            None => {
                let z = region.and_then(|r| p.regions[r].attach).ok_or_else(|| {
                    PlaceError::input(
                        &at,
                        "a user-side component needs a pin, or a subscription region with an attach zone",
                    )
                })?;
                (z, None)
            }
        };
        ctx.user_zone.get_or_insert(zone);
        slots[ci] = Some(Slot::Fixed { zone, host });
    }
    let static_hosts: BTreeSet<usize> =
        slots.iter().flatten().filter_map(|s| if let Slot::Fixed { host, .. } = s { *host } else { None }).collect();
    let mut reasons = Vec::new();
    for (ci, c) in s.components.iter().enumerate() {
        if c.user_side {
            continue;
        }
        let pc = &c.placement;
        let bound = p.component_proximity(si, ci);
        if bound.is_some() && pc.pin.is_none() && ctx.region.is_none() && ctx.user_zone.is_none() {
            return Err(PlaceError::input(
                format!("service {:?} component {:?}", s.name, c.name),
                "a proximity class needs a subscription region or a user-side component to measure from",
            ));
        }
        let by_constraints: Vec<usize> =
            (0..p.hosts.len()).filter(|&h| !static_hosts.contains(&h) && p.host_allows(h, pc)).collect();
        let by_proximity: Vec<usize> = by_constraints
            .iter()
            .copied()
            .filter(|&h| match (bound, pc.pin.is_some()) {
                (Some(b), false) => ctx.user_latency(p.hosts[h].zone).is_some_and(|l| l <= b + 1e-9),
                _ => true,
            })
            .collect();
        let cands: Vec<usize> =
            by_proximity.iter().copied().filter(|&h| p.hosts[h].capacity.fits(&c.resources)).collect();
        let subject = vec![s.name.clone(), c.name.clone()];
        if by_constraints.is_empty() {
            reasons.push(reason(
                ConstraintFamily::Placement,
                subject,
                format!("no available host meets component {:?}'s placement constraints (zones, avoided zones, pin, features, hosts reserved for user-side components)", c.name),
            ));
        } else if by_proximity.is_empty() {
            reasons.push(reason(
                ConstraintFamily::Latency,
                subject,
                format!(
                    "no allowed host of component {:?} is within its proximity class bound of {:.1} ms from the user",
                    c.name,
                    bound.unwrap_or(0.0)
                ),
            ));
        } else if cands.is_empty() {
            reasons.push(reason(
                ConstraintFamily::Capacity,
                subject,
                format!("no host within reach has capacity for component {:?} ({})", c.name, c.resources),
            ));
        }
        slots[ci] = Some(Slot::Hosts(cands));
    }
    let slots: Vec<Slot> = slots.into_iter().map(|s| s.unwrap_or(Slot::Hosts(Vec::new()))).collect();
    Ok((ctx, slots, reasons))
}

pub(crate) fn zones_of(p: &Problem, slot: &Slot) -> BTreeSet<usize> {
    match slot {
        Slot::Fixed { zone, .. } => [*zone].into(),
        Slot::Hosts(hs) => hs.iter().map(|&h| p.hosts[h].zone).collect(),
    }
}

/// Channel latency and connectivity pre-checks over the candidate zones.
pub(crate) fn channel_prechecks(ctx: &Context, slots: &[Slot]) -> Vec<InfeasibilityReason> {
    let p = ctx.p;
    let s = &p.services[ctx.si].service;
    let mut reasons = Vec::new();
    for ch in &s.channels {
        let (Some(fi), Some(ti)) =
            (s.components.iter().position(|c| c.name == ch.from), s.components.iter().position(|c| c.name == ch.to))
        else {
            continue;
        };
        let (fz, tz) = (zones_of(p, &slots[fi]), zones_of(p, &slots[ti]));
        if fz.is_empty() || tz.is_empty() {
            continue;
        }
        let best = fz.iter().flat_map(|&a| tz.iter().map(move |&b| p.zone_delay[a][b])).fold(f64::INFINITY, f64::min);
        let subject = vec![s.name.clone(), ch.from.clone(), ch.to.clone()];
        if !best.is_finite() {
            reasons.push(reason(
                ConstraintFamily::Connectivity,
                subject,
                format!("no network path joins any zone of {:?} to any zone of {:?}", ch.from, ch.to),
            ));
        } else if let Some(max) = ch.max_latency {
            if best > max.as_millis() + 1e-9 {
                reasons.push(reason(
                    ConstraintFamily::Latency,
                    subject,
                    format!(
                        "channel {} → {} allows {} ms but the fastest path between candidate zones takes {best:.3} ms",
                        ch.from,
                        ch.to,
                        max.as_millis()
                    ),
                ));
            }
        }
    }
    reasons
}

/// Builds the chain ILP; `relax` makes every binary continuous in [0, 1] and drops the path
/// tie-break, so that the optimum is a lower bound on the ILP's reported objective.
fn build(
    ctx: &Context,
    slots: &[Slot],
    residual: &Residual,
    objective: ChainObjective,
    host_costs: &HostCosts,
    elastic: Elastic,
    relax: bool,
) -> Built {
    let binary = || if relax { variable().min(0.0).max(1.0) } else { variable().binary() };
    let p = ctx.p;
    let s = &p.services[ctx.si].service;
    let (w_delay, w_servers) = objective.weights();
    let mut m = GoodLpModel::new(Sense::Minimise);
    let mut obj = Expression::from(0.0);
    let mut slacks = Vec::new();
    // x
    let mut x: Vec<Vec<GVar>> = Vec::with_capacity(slots.len());
    for slot in slots {
        x.push(match slot {
            Slot::Fixed { .. } => Vec::new(),
            Slot::Hosts(hs) => hs.iter().map(|_| m.add(binary())).collect(),
        });
    }
    // Zone indicator X[t][v] as (constant, terms).
    let zone_expr = |t: usize, v: usize| -> Option<Expression> {
        match &slots[t] {
            Slot::Fixed { zone, .. } => (*zone == v).then(|| Expression::from(1.0)),
            Slot::Hosts(hs) => {
                let mut e = Expression::from(0.0);
                let mut any = false;
                for (k, &h) in hs.iter().enumerate() {
                    if p.hosts[h].zone == v {
                        e += x[t][k].var;
                        any = true;
                    }
                }
                any.then_some(e)
            }
        }
    };
    // Host-dependent extra costs (instance price, evaluator preference, user latency).
    if !elastic.any() && !host_costs.is_zero() {
        for (t, slot) in slots.iter().enumerate() {
            if let Slot::Hosts(hs) = slot {
                for (k, &h) in hs.iter().enumerate() {
                    let c = host_costs.of(p, ctx.si, t, h, ctx.region);
                    if c != 0.0 {
                        obj += c * x[t][k].var;
                    }
                }
            }
        }
    }
    // (4) single assignment
    for (t, xs) in x.iter().enumerate() {
        if let Slot::Hosts(_) = slots[t] {
            let sum: Expression = xs.iter().map(|g| g.var).sum();
            m.constraints.push(sum.eq(1.0));
        }
    }
    // Host capacity (7) and used servers.
    let mut on_host: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
    for (t, slot) in slots.iter().enumerate() {
        if let Slot::Hosts(hs) = slot {
            for (k, &h) in hs.iter().enumerate() {
                on_host.entry(h).or_default().push((t, k));
            }
        }
    }
    let mut host_weight = BTreeMap::new();
    let mut used_var = BTreeMap::new();
    for (&h, members) in &on_host {
        let free = &residual.host_free[h];
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for &(t, _) in members {
            names.extend(s.components[t].resources.names());
        }
        for r in names {
            let cap = free.get(r) as f64;
            let potential: f64 = members.iter().map(|&(t, _)| s.components[t].resources.get(r) as f64).sum();
            if potential <= cap {
                continue;
            }
            let scale = if cap > 0.0 { 1.0 / cap } else { 1.0 };
            let mut e: Expression =
                members.iter().map(|&(t, k)| (s.components[t].resources.get(r) as f64 * scale) * x[t][k].var).sum();
            if elastic.capacity {
                let sl = m.add(variable().min(0.0));
                e -= sl.var;
                obj += sl.var;
                let host = &p.hosts[h];
                slacks.push((
                    sl,
                    reason(
                        ConstraintFamily::Capacity,
                        vec![p.zones[host.zone].name.clone(), host.name.clone(), r.to_string()],
                        format!(
                            "host {:?} in zone {:?} lacks {r} for the components that must share it ({} free)",
                            host.name,
                            p.zones[host.zone].name,
                            free.get(r)
                        ),
                    ),
                ));
            }
            m.constraints.push(e.leq(cap * scale));
        }
        let cap_cpu = p.hosts[h].capacity.get(zonal_model::resources::CPU) as f64;
        let weight = if cap_cpu > 0.0 { 100.0 * free.get(zonal_model::resources::CPU) as f64 / cap_cpu } else { 0.0 };
        host_weight.insert(h, weight);
        if w_servers > 0.0 && !elastic.any() {
            let y = m.add(binary());
            for &(t, k) in members {
                m.constraints.push((Expression::from(y.var) - x[t][k].var).geq(0.0));
            }
            obj += (w_servers * weight) * y.var;
            used_var.insert(h, y);
        }
    }
    // Anti-affinity and affinity.
    for (a, c) in s.components.iter().enumerate() {
        for other in &c.placement.anti_affinity {
            let Some(b) = s.components.iter().position(|o| &o.name == other) else { continue };
            for members in on_host.values() {
                let xa: Vec<_> = members.iter().filter(|m| m.0 == a).map(|&(t, k)| x[t][k].var).collect();
                let xb: Vec<_> = members.iter().filter(|m| m.0 == b).map(|&(t, k)| x[t][k].var).collect();
                if !xa.is_empty() && !xb.is_empty() {
                    let e: Expression = xa.into_iter().chain(xb).sum();
                    m.constraints.push(e.leq(1.0));
                }
            }
        }
        for other in &c.placement.affinity {
            let Some(b) = s.components.iter().position(|o| &o.name == other) else { continue };
            for v in 0..p.zones.len() {
                let (ea, eb) = (zone_expr(a, v), zone_expr(b, v));
                if ea.is_none() && eb.is_none() {
                    continue;
                }
                let e = ea.unwrap_or_else(|| Expression::from(0.0)) - eb.unwrap_or_else(|| Expression::from(0.0));
                m.constraints.push(e.eq(0.0));
            }
        }
    }
    // Routes.
    let comp = |name: &str| s.components.iter().position(|c| c.name == name);
    let mut routes: Vec<Route> = Vec::new();
    for (chi, ch) in s.channels.iter().enumerate() {
        let (Some(f), Some(t)) = (comp(&ch.from), comp(&ch.to)) else { continue };
        let max = ch.max_latency.map_or(f64::INFINITY, |d| d.as_millis());
        if let Some(r) = routes.iter_mut().find(|r| r.from == t && r.to == f) {
            r.channels.push(chi);
            r.max_latency = r.max_latency.min(max);
            continue;
        }
        routes.push(Route {
            from: f,
            to: t,
            bandwidth: ch.bandwidth.map_or(0.0, |b| b.mbps()),
            max_latency: max,
            channels: vec![chi],
            arcs: Vec::new(),
            pi: Vec::new(),
        });
    }
    let n_arcs = p.links.len() * 2;
    for r in &mut routes {
        let (fz, tz) = (zones_of(p, &slots[r.from]), zones_of(p, &slots[r.to]));
        if fz.len() == 1 && fz == tz {
            continue; // always collocated
        }
        r.arcs = (0..n_arcs).filter(|&a| arc(p, a).2 <= r.max_latency).collect();
        r.pi = r.arcs.iter().map(|_| m.add(binary())).collect();
        // (9) conservation per zone.
        for v in 0..p.zones.len() {
            let mut e = Expression::from(0.0);
            let mut any = false;
            for (k, &a) in r.arcs.iter().enumerate() {
                let (u, w, _) = arc(p, a);
                if w == v {
                    e += r.pi[k].var;
                    any = true;
                }
                if u == v {
                    e -= r.pi[k].var;
                    any = true;
                }
            }
            if let Some(xs) = zone_expr(r.from, v) {
                e += xs;
                any = true;
            }
            if let Some(xd) = zone_expr(r.to, v) {
                e -= xd;
                any = true;
            }
            if any {
                m.constraints.push(e.eq(0.0));
            }
        }
        // (10) loop-freedom.
        for (k, &a) in r.arcs.iter().enumerate() {
            let (u, w, _) = arc(p, a);
            if let Some(xs) = zone_expr(r.from, w) {
                m.constraints.push((xs + r.pi[k].var).leq(1.0));
            }
            if let Some(xd) = zone_expr(r.to, u) {
                m.constraints.push((xd + r.pi[k].var).leq(1.0));
            }
        }
        // Max latency.
        if r.max_latency.is_finite() {
            let mut e: Expression = r.arcs.iter().zip(&r.pi).map(|(&a, g)| arc(p, a).2 * g.var).sum();
            if elastic.latency {
                let sl = m.add(variable().min(0.0));
                e -= r.max_latency.max(1e-6) * sl.var;
                obj += sl.var;
                slacks.push((
                    sl,
                    reason(
                        ConstraintFamily::Latency,
                        vec![s.name.clone(), s.components[r.from].name.clone(), s.components[r.to].name.clone()],
                        format!(
                            "channel {} → {} cannot stay within {} ms",
                            s.components[r.from].name, s.components[r.to].name, r.max_latency
                        ),
                    ),
                ));
            }
            m.constraints.push(e.leq(r.max_latency));
        }
        // Objective: delay (counted once per channel of the pair) + tie-break.
        let mult = r.channels.len() as f64;
        let tie = 1e-6;
        for (&a, g) in r.arcs.iter().zip(&r.pi) {
            let d = arc(p, a).2;
            if relax {
                obj += (w_delay * mult * d) * g.var;
            } else if !elastic.any() {
                obj += (w_delay * mult * d + tie * (d + 1e-3)) * g.var;
            }
        }
    }
    // (12) bandwidth per arc.
    for a in 0..n_arcs {
        let cap = residual.arc_free[a];
        if !cap.is_finite() {
            continue;
        }
        let mut e = Expression::from(0.0);
        let mut potential = 0.0;
        for r in &routes {
            // Primary direction uses arc a; the reverse channel uses reverse(a) when the primary uses a's reverse.
            let fwd_bw = r.bandwidth;
            let rev_bw = r.channels.get(1).and_then(|&c| s.channels[c].bandwidth).map_or(0.0, |b| b.mbps());
            for (k, &b) in r.arcs.iter().enumerate() {
                if b == a && fwd_bw > 0.0 {
                    e += fwd_bw * r.pi[k].var;
                    potential += fwd_bw;
                }
                if reverse_arc(b) == a && rev_bw > 0.0 {
                    e += rev_bw * r.pi[k].var;
                    potential += rev_bw;
                }
            }
        }
        if potential <= cap {
            continue;
        }
        if elastic.bandwidth {
            let sl = m.add(variable().min(0.0));
            e -= cap.max(1.0) * sl.var;
            obj += sl.var;
            let (u, w, _) = arc(p, a);
            slacks.push((
                sl,
                reason(
                    ConstraintFamily::Capacity,
                    vec![p.zones[u].name.clone(), p.zones[w].name.clone(), "bandwidth".into()],
                    format!(
                        "link {} → {} has {cap} Mbit/s free, not enough for the channels that must cross it",
                        p.zones[u].name, p.zones[w].name
                    ),
                ),
            ));
        }
        m.constraints.push(e.leq(cap));
    }
    m.objective = obj;
    Built { model: m, x, slots: slots.to_vec(), routes, host_weight, used: used_var, slacks }
}

/// Candidate hosts of every component of one chain against `residual`, after the cheap
/// infeasibility pre-checks (shared by the ILP and the heuristic, so both search the same set).
pub(crate) fn candidates<'a>(
    p: &'a Problem,
    request: &'a ChainRequest,
    residual: &Residual,
) -> Result<(Context<'a>, Vec<Slot>), PlaceError> {
    let (ctx, slots, mut reasons) = resolve(p, request)?;
    // Candidates that no longer fit the residual capacity.
    let s = &p.services[ctx.si].service;
    let mut slots = slots;
    for (t, slot) in slots.iter_mut().enumerate() {
        if let Slot::Hosts(hs) = slot {
            let before = hs.len();
            hs.retain(|&h| residual.host_free[h].fits(&s.components[t].resources));
            if before > 0 && hs.is_empty() {
                reasons.push(reason(
                    ConstraintFamily::Capacity,
                    vec![s.name.clone(), s.components[t].name.clone()],
                    format!(
                        "every candidate host of component {:?} is already full ({} needed)",
                        s.components[t].name, s.components[t].resources
                    ),
                ));
            }
        }
    }
    if reasons.is_empty() {
        reasons = channel_prechecks(&ctx, &slots);
    }
    if !reasons.is_empty() {
        return Err(PlaceError::Infeasible { reasons });
    }
    Ok((ctx, slots))
}

/// The number of binary variables the chain ILP would have for `request` against `residual`
/// (host choices, arc choices per routed channel, used-server indicators): the size
/// `zonal plan --algorithm auto` uses to decide whether an exact solve is affordable.
pub fn estimate_binaries(
    problem: &Problem,
    request: &ChainRequest,
    residual: &Residual,
    objective: ChainObjective,
) -> Result<usize, PlaceError> {
    let p = problem;
    let (ctx, slots) = candidates(p, request, residual)?;
    let s = &p.services[ctx.si].service;
    let x: usize = slots.iter().map(|sl| if let Slot::Hosts(hs) = sl { hs.len() } else { 0 }).sum();
    let hosts: BTreeSet<usize> =
        slots.iter().flat_map(|sl| if let Slot::Hosts(hs) = sl { hs.clone() } else { Vec::new() }).collect();
    let comp = |name: &str| s.components.iter().position(|c| c.name == name);
    let mut seen: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut pi = 0usize;
    for ch in &s.channels {
        let (Some(f), Some(t)) = (comp(&ch.from), comp(&ch.to)) else { continue };
        if !seen.insert((f.min(t), f.max(t))) {
            continue; // the reverse of a routed channel reuses its variables
        }
        let (fz, tz) = (zones_of(p, &slots[f]), zones_of(p, &slots[t]));
        if fz.len() == 1 && fz == tz {
            continue;
        }
        let max = ch.max_latency.map_or(f64::INFINITY, |d| d.as_millis());
        pi += (0..p.links.len() * 2).filter(|&a| arc(p, a).2 <= max).count();
    }
    let y = if objective.weights().1 > 0.0 { hosts.len() } else { 0 };
    Ok(x + pi + y)
}

/// The LP relaxation of the chain ILP for `request` against `residual`: a lower bound on
/// the objective of every feasible placement of the chain over the same candidates.
pub(crate) fn lp_relaxation(
    problem: &Problem,
    request: &ChainRequest,
    residual: &Residual,
    objective: ChainObjective,
    solver: &SolverOptions,
) -> Result<crate::solver::SolveStats, PlaceError> {
    let (ctx, slots) = candidates(problem, request, residual)?;
    let built = build(&ctx, &slots, residual, objective, &HostCosts::default(), Elastic::NONE, true);
    let solved = built.model.solve(solver)?;
    Ok(solved.stats)
}

/// The chain ILP that [`place_chain_with`] solves for `request` against `residual`, built
/// but not solved: for handing the very same formulation to another solver (e.g. through
/// [`GoodLpModel::write_model_file`]). Its objective includes the path tie-break, so it is
/// comparable with the solve's own objective (`SolveStats::objective`), not with the plan's.
pub fn chain_ilp(
    problem: &Problem,
    request: &ChainRequest,
    residual: &Residual,
    objective: ChainObjective,
) -> Result<GoodLpModel, PlaceError> {
    let (ctx, slots) = candidates(problem, request, residual)?;
    Ok(build(&ctx, &slots, residual, objective, &HostCosts::default(), Elastic::NONE, false).model)
}

/// Places one chain against the full capacity of the problem.
pub fn place_chain(problem: &Problem, request: &ChainRequest, options: &ChainOptions) -> Result<Plan, PlaceError> {
    place_chain_with(problem, request, &Residual::full(problem), options)
}

/// Places one chain against `residual` capacity.
pub fn place_chain_with(
    problem: &Problem,
    request: &ChainRequest,
    residual: &Residual,
    options: &ChainOptions,
) -> Result<Plan, PlaceError> {
    let p = problem;
    let started = Instant::now();
    let (ctx, slots) = candidates(p, request, residual)?;
    let s = &p.services[ctx.si].service;
    // Strong bound: the heuristic's plan and combinatorial bound first.
    let mut warm: Option<Plan> = None;
    if options.strong_bound && options.host_costs.is_zero() {
        let heur_options = crate::heuristic::HeuristicOptions {
            objective: options.objective,
            bound: crate::heuristic::BoundMethod::Combinatorial,
            ..Default::default()
        };
        if let Ok(plan) = crate::heuristic::place_chain_heuristic(p, request, residual, &heur_options) {
            if plan.gap.is_some_and(|g| g <= options.solver.mip_gap()) {
                return Ok(proven_by_bound(plan, started));
            }
            warm = Some(plan);
        }
    }
    let built = build(&ctx, &slots, residual, options.objective, &options.host_costs, Elastic::NONE, false);
    // No `objective ≥ bound` row: measured, it made HiGHS 3–4× slower than the plain ILP on
    // an SC3 chain the start alone let it prove 10× faster (docs/benchmarks.md).
    let start = warm.as_ref().and_then(|plan| mip_start(p, &built, plan));
    let Built { model, x, slots, routes, host_weight, .. } = built;
    let solved = model.solve_with_start(&options.solver, start.as_deref())?;
    if solved.stats.status == SolveStatus::Infeasible {
        return Err(diagnose(&ctx, &slots, residual, options));
    }
    let values = solved.require_solution(&format!("chain {:?}", request.id))?.to_vec();

    // Extract hosts and zones.
    let mut host_of: Vec<Option<usize>> = Vec::with_capacity(slots.len());
    let mut zone_of: Vec<usize> = Vec::with_capacity(slots.len());
    for (t, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Fixed { zone, host } => {
                host_of.push(*host);
                zone_of.push(*zone);
            }
            Slot::Hosts(hs) => {
                let k = (0..hs.len())
                    .max_by(|&a, &b| x[t][a].value(&values).total_cmp(&x[t][b].value(&values)))
                    .unwrap_or(0);
                let h = hs.get(k).copied().ok_or_else(|| PlaceError::Solver {
                    detail: format!("component {:?} got no host", s.components[t].name),
                })?;
                host_of.push(Some(h));
                zone_of.push(p.hosts[h].zone);
            }
        }
    }
    let mut plan = Plan::new("input-chain");
    plan.status = PlanStatus::from_solve(&solved.stats.status);
    let sub = Some(request.id.clone());
    for (t, c) in s.components.iter().enumerate() {
        plan.placements.push(Placement {
            service: s.name.clone(),
            subscription: sub.clone(),
            component: c.name.clone(),
            zone: p.zones[zone_of[t]].name.clone(),
            host: host_of[t].map(|h| p.hosts[h].name.clone()),
            instances: 1,
            slots: 0.0,
        });
    }
    let mut delay = 0.0;
    for r in &routes {
        let (fz, tz) = (zone_of[r.from], zone_of[r.to]);
        let zones = if fz == tz {
            Vec::new()
        } else {
            walk(p, r, &values, fz, tz).ok_or_else(|| PlaceError::Solver {
                detail: format!(
                    "channel {} → {}: the solution has no continuous path",
                    s.components[r.from].name, s.components[r.to].name
                ),
            })?
        };
        let lat = path_delay(p, &zones);
        delay += lat * r.channels.len() as f64;
        push_route_paths(&mut plan, p, s, &sub, &r.channels, &zones, lat);
    }
    // Channels never routed (unknown component names are impossible after validation).
    let used: BTreeSet<usize> = slots
        .iter()
        .enumerate()
        .filter(|(_, sl)| matches!(sl, Slot::Hosts(_)))
        .filter_map(|(t, _)| host_of[t])
        .collect();
    let weighted: f64 = used.iter().map(|h| host_weight.get(h).copied().unwrap_or(0.0)).sum();
    let (wd, ws) = options.objective.weights();
    let extra: f64 = (0..slots.len())
        .filter(|&t| matches!(slots[t], Slot::Hosts(_)))
        .filter_map(|t| host_of[t].map(|h| options.host_costs.of(p, ctx.si, t, h, ctx.region)))
        .sum();
    plan.objective = wd * delay + ws * weighted + extra;
    record_chain(&mut plan, p, s, request, ctx.user_zone, delay, used.len(), weighted);
    if !options.host_costs.is_zero() {
        plan.objective_terms.insert("host_costs".into(), extra);
    }
    plan.bound = solved.stats.bound;
    plan.gap = solved.stats.gap;
    plan.stats = PlanStats::default();
    plan.stats.add(&solved.stats);
    if let Some(w) = &warm {
        plan.notes.push(format!(
            "strong bound: heuristic plan {:.6} given to HiGHS as a MIP start{}; its combinatorial bound {:.6} left a gap of {:.4} %",
            w.objective,
            if start.is_some() { "" } else { " (could not be mapped: none given)" },
            w.bound.unwrap_or(0.0),
            w.gap.unwrap_or(0.0) * 100.0
        ));
    }
    plan.normalize();
    Ok(plan)
}

/// The heuristic's plan, proven optimal by its combinatorial bound (objective within the
/// solver's relative gap of a valid lower bound), written as the chain ILP's.
fn proven_by_bound(mut plan: Plan, started: Instant) -> Plan {
    plan.algorithm = "input-chain".into();
    plan.status = PlanStatus::Optimal;
    plan.stats.seconds = started.elapsed().as_secs_f64();
    plan.notes.push(format!(
        "proven optimal without HiGHS: the heuristic's plan {:.6} is within the relative gap of the combinatorial lower bound {:.6}",
        plan.objective,
        plan.bound.unwrap_or(0.0)
    ));
    plan
}

/// Column values of the chain ILP `built` for the heuristic's `plan` (hosts, arcs of each
/// channel's path, used-server indicators), or `None` when some part does not map onto the
/// ILP's variables (then no start is given).
fn mip_start(p: &Problem, built: &Built, plan: &Plan) -> Option<Vec<f64>> {
    let mut values = vec![0.0; built.model.num_vars()];
    let s = {
        let name = &plan.placements.first()?.service;
        &p.services[p.service_index(name)?].service
    };
    let mut zone_of = vec![0usize; built.slots.len()];
    for (t, slot) in built.slots.iter().enumerate() {
        let c = &s.components[t];
        let pl = plan.placements.iter().find(|pl| pl.component == c.name)?;
        let z = p.zone_index(&pl.zone)?;
        zone_of[t] = z;
        if let Slot::Hosts(hs) = slot {
            let h = p.host_index(z, pl.host.as_deref()?)?;
            let k = hs.iter().position(|&x| x == h)?;
            values[built.x[t][k].index] = 1.0;
            if let Some(y) = built.used.get(&h) {
                values[y.index] = 1.0;
            }
        }
    }
    for r in &built.routes {
        if r.pi.is_empty() || zone_of[r.from] == zone_of[r.to] {
            continue;
        }
        let ch = &s.channels[r.channels[0]];
        let path = plan.paths.iter().find(|pa| pa.from == ch.from && pa.to == ch.to)?;
        for w in path.zones.windows(2) {
            let (a, b) = (p.zone_index(&w[0])?, p.zone_index(&w[1])?);
            let k = r.arcs.iter().position(|&arc_i| {
                let (u, v, _) = arc(p, arc_i);
                u == a && v == b
            })?;
            values[r.pi[k].index] = 1.0;
        }
    }
    Some(values)
}

/// Follows the chosen arcs from `from` to `to`; stray cycles elsewhere are ignored.
/// Total link delay along a zone path (0 for a collocated pair).
pub(crate) fn path_delay(p: &Problem, zones: &[usize]) -> f64 {
    zones.windows(2).map(|w| p.link_between(w[0], w[1]).map_or(0.0, |l| l.delay_ms)).sum()
}

/// The objective terms both chain solvers report (delay, used servers, their weighted
/// count) and the subscription the plan serves.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_chain(
    plan: &mut Plan,
    p: &Problem,
    s: &Service,
    request: &ChainRequest,
    user_zone: Option<usize>,
    delay: f64,
    used: usize,
    weighted: f64,
) {
    plan.objective_terms.insert("delay_ms".into(), delay);
    plan.objective_terms.insert("used_servers".into(), used as f64);
    plan.objective_terms.insert("used_servers_weighted".into(), weighted);
    plan.subscriptions.push(Subscription {
        id: request.id.clone(),
        service: s.name.clone(),
        region: request.region.clone(),
        user_zone: user_zone.map(|z| p.zones[z].name.clone()),
    });
}

/// One `ChannelPath` per channel of a route: the primary channel along `zones`, the reverse
/// channel (second, when the route is symmetric) along it backwards. Shared by the exact ILP
/// and the heuristic so both write their plans the same way.
pub(crate) fn push_route_paths(
    plan: &mut Plan,
    p: &Problem,
    s: &Service,
    subscription: &Option<String>,
    channels: &[usize],
    zones: &[usize],
    latency_ms: f64,
) {
    for (i, &chi) in channels.iter().enumerate() {
        let ch = &s.channels[chi];
        let mut names: Vec<String> = zones.iter().map(|&z| p.zones[z].name.clone()).collect();
        if i == 1 {
            names.reverse();
        }
        plan.paths.push(ChannelPath {
            service: s.name.clone(),
            subscription: subscription.clone(),
            from: ch.from.clone(),
            to: ch.to.clone(),
            zones: names,
            latency_ms,
        });
    }
}

fn walk(p: &Problem, r: &Route, values: &[f64], from: usize, to: usize) -> Option<Vec<usize>> {
    let chosen: Vec<(usize, usize)> = r
        .arcs
        .iter()
        .zip(&r.pi)
        .filter(|(_, g)| g.value(values) > 0.5)
        .map(|(&a, _)| (arc(p, a).0, arc(p, a).1))
        .collect();
    path_through(&chosen, from, to)
}

/// A simple path from `from` to `to` over `arcs`, breadth-first (fewest hops, ties by arc
/// order). Breadth-first rather than following the first arc out of each zone: an unproven
/// incumbent (time limit) may carry a cycle besides the path, which flow conservation
/// allows, and a greedy walk can step into it and dead-end. The path uses a subset of the
/// chosen arcs, so it needs no more bandwidth and no more delay than the solver's flow.
fn path_through(arcs: &[(usize, usize)], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut seen: BTreeSet<usize> = [from].into();
    while let Some(cur) = queue.pop_front() {
        if cur == to {
            let mut path = vec![to];
            let mut at = to;
            while at != from {
                at = *previous.get(&at)?;
                path.push(at);
            }
            path.reverse();
            return Some(path);
        }
        for &(_, w) in arcs.iter().filter(|(u, _)| *u == cur) {
            if seen.insert(w) {
                previous.insert(w, cur);
                queue.push_back(w);
            }
        }
    }
    None
}

/// Which rows an elastic re-solve relaxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elastic {
    capacity: bool,
    bandwidth: bool,
    latency: bool,
}

impl Elastic {
    const NONE: Elastic = Elastic { capacity: false, bandwidth: false, latency: false };
    const ALL: Elastic = Elastic { capacity: true, bandwidth: true, latency: true };
    fn any(self) -> bool {
        self.capacity || self.bandwidth || self.latency
    }
}

/// Why a chain has no solution: elastic re-solves that relax host capacity, link bandwidth
/// and channel latency together, then each family alone with the others kept, so that every
/// way out is named (a composite that fits no zone whole *and* cannot be split for lack of
/// bandwidth gets both reasons).
fn diagnose(ctx: &Context, slots: &[Slot], residual: &Residual, options: &ChainOptions) -> PlaceError {
    let mut reasons: Vec<InfeasibilityReason> = Vec::new();
    let relaxations = [
        Elastic::ALL,
        Elastic { capacity: true, ..Elastic::NONE },
        Elastic { bandwidth: true, ..Elastic::NONE },
        Elastic { latency: true, ..Elastic::NONE },
    ];
    for relax in relaxations {
        let built = build(ctx, slots, residual, options.objective, &options.host_costs, relax, false);
        if built.slacks.is_empty() {
            continue;
        }
        let slacks = built.slacks;
        if let Ok(s) = built.model.solve(&options.solver) {
            if s.stats.status.has_solution() {
                for (g, r) in &slacks {
                    if g.value(&s.values) > 1e-6 && !reasons.contains(r) {
                        reasons.push(r.clone());
                    }
                }
            }
        }
    }
    if reasons.is_empty() {
        let svc = &ctx.p.services[ctx.si].name;
        reasons.push(reason(
            ConstraintFamily::Other,
            vec![svc.clone(), ctx.request.id.clone()],
            "no placement satisfies the affinity, anti-affinity and routing constraints together (relaxing capacity, bandwidth and latency did not help)",
        ));
    }
    PlaceError::Infeasible { reasons }
}

/// The outcome of one chain of a sequence.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    pub id: String,
    pub result: Result<Plan, PlaceError>,
    /// Wall-clock time to build, solve and extract this chain.
    pub seconds: f64,
}

/// The outcome of a sequence of chains.
#[derive(Debug, Clone)]
pub struct ChainSequence {
    pub outcomes: Vec<ChainOutcome>,
    /// All placed chains in one plan (for the checker).
    pub combined: Plan,
    /// Capacity left after the sequence.
    pub residual: Residual,
}

/// Places chains one at a time, each against the capacity the previous ones left.
pub fn place_chains(problem: &Problem, requests: &[ChainRequest], options: &ChainOptions) -> ChainSequence {
    let p = problem;
    let mut residual = Residual::full(p);
    let mut outcomes = Vec::new();
    let mut combined = Plan::new("input-chain-sequence");
    let mut placed = 0usize;
    for req in requests {
        let started = Instant::now();
        let result = place_chain_with(p, req, &residual, options);
        let seconds = started.elapsed().as_secs_f64();
        if let Ok(plan) = &result {
            consume(p, plan, &mut residual);
            combined.absorb(plan);
            placed += 1;
        }
        outcomes.push(ChainOutcome { id: req.id.clone(), result, seconds });
    }
    let hosts = combined.used_hosts(p);
    let used = hosts.len() as f64;
    let delay = combined.term("delay_ms").unwrap_or(0.0);
    combined.objective_terms.clear();
    combined.objective_terms.insert("delay_ms".into(), delay);
    combined.objective_terms.insert("used_servers".into(), used);
    combined.notes.push(format!("{placed} of {} chains placed", requests.len()));
    combined.normalize();
    ChainSequence { outcomes, combined, residual }
}

/// Subtracts a placed chain's resources and bandwidth from `residual`.
pub fn consume(p: &Problem, plan: &Plan, residual: &mut Residual) {
    for pl in &plan.placements {
        let (Some(zi), Some(h)) = (p.zone_index(&pl.zone), pl.host.as_deref()) else { continue };
        let Some(hi) = p.host_index(zi, h) else { continue };
        let Some(si) = p.service_index(&pl.service) else { continue };
        let Some(c) = p.services[si].service.component(&pl.component) else { continue };
        if !c.user_side {
            residual.host_free[hi].sub_scaled(&c.resources, u64::from(pl.instances));
        }
    }
    for path in &plan.paths {
        let Some(si) = p.service_index(&path.service) else { continue };
        let Some(ch) = p.services[si].service.channels.iter().find(|c| c.from == path.from && c.to == path.to) else {
            continue;
        };
        let bw = ch.bandwidth.map_or(0.0, |b| b.mbps());
        for w in path.zones.windows(2) {
            let (Some(a), Some(b)) = (p.zone_index(&w[0]), p.zone_index(&w[1])) else { continue };
            if let Some(li) = p.links.iter().position(|l| (l.a == a && l.b == b) || (l.a == b && l.b == a)) {
                let arc_index = if p.links[li].a == a { 2 * li } else { 2 * li + 1 };
                residual.arc_free[arc_index] -= bw;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{check, ViolationKind};
    use crate::testkit::*;
    use zonal_model::{Bandwidth, Bundle, Channel, Demand, Document, Duration, Infrastructure, Pin, Service};

    #[test]
    fn paths_are_found_past_cycles_that_an_incumbent_may_carry() {
        // 0 → 1 → 3 is the path; 1 → 2 → 1 is a cycle attached at 1 and 4 → 5 → 4 a detached
        // one, as a time-limited incumbent may hold. The cycle arc out of 1 comes first.
        let arcs = [(0, 1), (1, 2), (2, 1), (1, 3), (4, 5), (5, 4)];
        assert_eq!(path_through(&arcs, 0, 3), Some(vec![0, 1, 3]));
        assert_eq!(path_through(&arcs, 0, 4), None, "no path in the support");
        assert_eq!(path_through(&arcs, 2, 3), Some(vec![2, 1, 3]));
    }

    /// Triangle z0–z1 (1 ms), z1–z2 (1 ms), z0–z2 (5 ms), 100 Mbit/s each way; z0 has two
    /// 2-core hosts, z1 and z2 one 4-core host each. Service `chain`: `ue` (user side, pinned
    /// to z0) → `fw` (1 core) ⇄ `app` (2 cores).
    pub(crate) fn chain_bundle() -> Bundle {
        let infra = Infrastructure {
            name: "tri".into(),
            zones: vec![
                zone("z0", 50.0, 0.0, vec![host("h0a", 2, 8), host("h0b", 2, 8)]),
                zone("z1", 50.0, 1.0, vec![host("h1", 4, 8)]),
                zone("z2", 50.0, 2.0, vec![host("h2", 4, 8)]),
            ],
            links: vec![
                link("z0", "z1", Some(1.0), Some(100.0)),
                link("z1", "z2", Some(1.0), Some(100.0)),
                link("z0", "z2", Some(5.0), Some(100.0)),
            ],
            ..Default::default()
        };
        let mut ue = component("ue", 0, 0);
        ue.user_side = true;
        ue.placement.pin = Some(Pin { zone: "z0".into(), host: None });
        let ch = |a: &str, b: &str, mbps: f64| Channel {
            from: a.into(),
            to: b.into(),
            bandwidth: Some(Bandwidth::from_mbps(mbps)),
            max_latency: None,
        };
        let svc = Service {
            name: "chain".into(),
            components: vec![ue, component("fw", 1, 1), component("app", 2, 1)],
            channels: vec![ch("ue", "fw", 10.0), ch("fw", "app", 10.0), ch("app", "fw", 5.0)],
            ..Default::default()
        };
        let demand = Demand { name: "d".into(), regions: vec![region("r0", None, Some("z0"))], entries: vec![] };
        Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(demand)])
    }

    fn req(id: &str) -> ChainRequest {
        ChainRequest { id: id.into(), service: "chain".into(), region: Some("r0".into()) }
    }

    fn zone_of<'a>(plan: &'a Plan, comp: &str) -> &'a str {
        &plan.placements.iter().find(|p| p.component == comp).unwrap().zone
    }

    fn path<'a>(plan: &'a Plan, from: &str, to: &str) -> &'a [String] {
        &plan.paths.iter().find(|p| p.from == from && p.to == to).unwrap().zones
    }

    #[test]
    fn delay_objective_collocates_with_the_user() {
        let p = problem(&chain_bundle());
        let plan = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap();
        checked(&p, &plan);
        assert_eq!(plan.term("delay_ms"), Some(0.0));
        assert!(plan.placements.iter().all(|pl| pl.zone == "z0"));
        assert_eq!(plan.paths.len(), 3);
        assert!(plan.paths.iter().all(|pa| pa.zones.is_empty()));
        assert_eq!(plan.status, PlanStatus::Optimal);
    }

    #[test]
    fn used_servers_objective_consolidates() {
        let p = problem(&chain_bundle());
        let opts = ChainOptions { objective: ChainObjective::UsedServers, ..Default::default() };
        let plan = place_chain(&p, &req("s1"), &opts).unwrap();
        checked(&p, &plan);
        // fw + app need 3 cores: one 4-core host (z1 or z2) instead of both 2-core hosts of z0.
        assert_eq!(plan.term("used_servers"), Some(1.0));
        assert!((plan.objective - 100.0).abs() < 1e-9, "an empty host weighs 100 (IN-33)");
        assert_eq!(zone_of(&plan, "fw"), zone_of(&plan, "app"));
    }

    #[test]
    fn used_servers_prefers_a_partly_used_host() {
        let p = problem(&chain_bundle());
        let mut residual = Residual::full(&p);
        // h2 is half used: weight 50 < 100.
        let h2 = p.host_by_name("h2").unwrap();
        residual.host_free[h2] = res(3, 8);
        let opts = ChainOptions { objective: ChainObjective::UsedServers, ..Default::default() };
        let plan = place_chain_with(&p, &req("s1"), &residual, &opts).unwrap();
        checked(&p, &plan);
        assert_eq!(zone_of(&plan, "app"), "z2");
        assert!((plan.objective - 75.0).abs() < 1e-9, "{}", plan.objective);
    }

    #[test]
    fn pinned_component_and_latency_bound_shape_the_paths() {
        let mut b = chain_bundle();
        let s = service_mut(&mut b, "chain");
        s.components[2].placement.pin = Some(Pin { zone: "z2".into(), host: None });
        s.channels[1].max_latency = Some(Duration::from_millis(1.5));
        let p = problem(&b);
        let plan = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap();
        checked(&p, &plan);
        // fw in z1 costs 1 + 2×1 = 3 ms; fw in z2 costs 2 + 0 = 2 ms.
        assert_eq!(zone_of(&plan, "fw"), "z2");
        assert_eq!(path(&plan, "ue", "fw"), ["z0", "z1", "z2"]);
        assert!((plan.term("delay_ms").unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn symmetric_channels_take_reverse_paths() {
        let mut b = chain_bundle();
        let s = service_mut(&mut b, "chain");
        s.components[1].placement.pin = Some(Pin { zone: "z0".into(), host: None });
        s.components[2].placement.pin = Some(Pin { zone: "z2".into(), host: None });
        // The direct z0–z2 link is too thin for fw → app's 10 Mbit/s: both go via z1.
        infra_mut(&mut b).links[2].bandwidth = Some(Bandwidth::from_mbps(1.0));
        let p = problem(&b);
        let plan = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap();
        checked(&p, &plan);
        let fwd = path(&plan, "fw", "app").to_vec();
        let mut back = path(&plan, "app", "fw").to_vec();
        back.reverse();
        assert_eq!(fwd, back);
        assert_eq!(fwd, ["z0", "z1", "z2"]);
        // Delay is counted for both channels of the pair (B5.4).
        assert!((plan.term("delay_ms").unwrap() - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_exported_ilp_is_the_one_solved() {
        let mut b = chain_bundle();
        let s = service_mut(&mut b, "chain");
        s.components[2].placement.pin = Some(Pin { zone: "z2".into(), host: None });
        s.channels[1].max_latency = Some(Duration::from_millis(1.5));
        let p = problem(&b);
        let residual = Residual::full(&p);
        // The plain ILP: the strong bound may prove a plan without solving the ILP at all.
        let plain = ChainOptions { strong_bound: false, ..Default::default() };
        let plan = place_chain_with(&p, &req("s1"), &residual, &plain).unwrap();
        let solved = &plan.stats.solve_log[0];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.mps");
        let shape =
            chain_ilp(&p, &req("s1"), &residual, ChainObjective::Delay).unwrap().write_model_file(&path).unwrap();
        assert_eq!((shape.columns, shape.rows), (solved.columns, solved.rows));
        assert!(shape.integer);
        let (status, objective, columns, rows) = crate::solver::solve_model_file(&path);
        assert_eq!(status, highs_sys::kHighsModelStatusOptimal);
        assert_eq!((columns, rows), (solved.columns, solved.rows));
        let ours = solved.objective.unwrap();
        assert!((objective - ours).abs() <= 1e-6 * ours.abs().max(1.0), "file {objective}, solve {ours}");
        // The tie-break makes the ILP objective a little above the plan's delay of 2 ms.
        assert!(ours > 2.0 && ours < 2.0 + 1e-4, "{ours}");
    }

    #[test]
    fn bandwidth_forces_a_longer_route() {
        let mut b = chain_bundle();
        let s = service_mut(&mut b, "chain");
        s.components[1].placement.pin = Some(Pin { zone: "z0".into(), host: None });
        s.components[2].placement.pin = Some(Pin { zone: "z2".into(), host: None });
        infra_mut(&mut b).links[0].bandwidth = Some(Bandwidth::from_mbps(8.0));
        let p = problem(&b);
        let plan = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap();
        checked(&p, &plan);
        assert_eq!(path(&plan, "fw", "app"), ["z0", "z2"]);
    }

    #[test]
    fn user_side_host_is_reserved() {
        let mut b = chain_bundle();
        let s = service_mut(&mut b, "chain");
        s.components[0].placement.pin = Some(Pin { zone: "z0".into(), host: Some("h0a".into()) });
        let p = problem(&b);
        let plan = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap();
        checked(&p, &plan);
        assert!(plan.placements.iter().filter(|pl| pl.component != "ue").all(|pl| pl.host.as_deref() != Some("h0a")));
        // And the checker catches a plan that breaks IN-23.
        let mut bad = plan.clone();
        for pl in &mut bad.placements {
            if pl.component == "fw" {
                pl.host = Some("h0a".into());
                pl.zone = "z0".into();
            }
        }
        let r = check(&p, &bad);
        assert!(r.violations.iter().any(|v| v.kind == ViolationKind::StaticHost), "{}", r.summary());
    }

    #[test]
    fn proximity_class_filters_zones() {
        let mut b = chain_bundle();
        infra_mut(&mut b).proximity_classes.insert("tight".into(), Duration::from_millis(3.0));
        service_mut(&mut b, "chain").proximity = Some("tight".into());
        // Make z0 unattractive: no room there, so fw and app must leave the user's zone.
        for h in &mut infra_mut(&mut b).zones[0].hosts {
            h.capacity = res(0, 8);
        }
        let p = problem(&b);
        let opts = ChainOptions { objective: ChainObjective::UsedServers, ..Default::default() };
        let plan = place_chain(&p, &req("s1"), &opts).unwrap();
        checked(&p, &plan);
        // RTT from z0: z1 = 2 ms, z2 = 4 ms > 3 ms.
        assert_eq!(zone_of(&plan, "fw"), "z1");
        assert_eq!(zone_of(&plan, "app"), "z1");
    }

    #[test]
    fn infeasible_channel_latency_is_named() {
        let mut b = chain_bundle();
        let s = service_mut(&mut b, "chain");
        s.components[1].placement.pin = Some(Pin { zone: "z0".into(), host: None });
        s.components[2].placement.pin = Some(Pin { zone: "z2".into(), host: None });
        s.channels[1].max_latency = Some(Duration::from_millis(1.0));
        let p = problem(&b);
        let e = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Latency, "fw") && e.names(ConstraintFamily::Latency, "app"), "{e}");
    }

    #[test]
    fn infeasible_host_capacity_is_named() {
        let mut b = chain_bundle();
        service_mut(&mut b, "chain").components[2].resources = res(8, 1);
        let p = problem(&b);
        let e = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Capacity, "app"), "{e}");
    }

    #[test]
    fn infeasible_bandwidth_found_by_elastic_resolve() {
        let mut b = chain_bundle();
        let s = service_mut(&mut b, "chain");
        s.components[1].placement.pin = Some(Pin { zone: "z0".into(), host: None });
        s.components[2].placement.pin = Some(Pin { zone: "z2".into(), host: None });
        for l in &mut infra_mut(&mut b).links {
            l.bandwidth = Some(Bandwidth::from_mbps(1.0));
        }
        let p = problem(&b);
        let e = place_chain(&p, &req("s1"), &ChainOptions::default()).unwrap_err();
        assert!(e.names(ConstraintFamily::Capacity, "bandwidth"), "{e}");
    }

    #[test]
    fn sequence_uses_residual_capacity() {
        let p = problem(&chain_bundle());
        let reqs: Vec<ChainRequest> = (0..5).map(|i| req(&format!("s{i}"))).collect();
        let seq = place_chains(&p, &reqs, &ChainOptions::default());
        // 3 cores per chain, 12 cores in all; placed greedily (delay first), 3 or 4 fit.
        let ok = seq.outcomes.iter().filter(|o| o.result.is_ok()).count();
        assert!(
            (3..=4).contains(&ok),
            "{:?}",
            seq.outcomes.iter().map(|o| o.result.as_ref().err().map(|e| e.to_string())).collect::<Vec<_>>()
        );
        let failed = seq.outcomes.iter().find_map(|o| o.result.as_ref().err()).unwrap();
        assert!(failed.reasons().iter().any(|r| r.family == ConstraintFamily::Capacity), "{failed}");
        assert!(seq.outcomes.iter().all(|o| o.seconds > 0.0));
        checked(&p, &seq.combined);
        assert_eq!(seq.combined.subscriptions.len(), ok);
    }

    #[test]
    fn replaying_a_sequence_exports_the_ilp_of_every_step() {
        // What `zonal bench --suite zoo --peer` relies on: consuming the plans in order
        // rebuilds the residual each step was solved against, so the exported ILP is the one
        // solved (same size, same optimum), and the replay ends where the sequence did.
        let p = problem(&chain_bundle());
        let reqs: Vec<ChainRequest> = (0..5).map(|i| req(&format!("s{i}"))).collect();
        let seq = place_chains(&p, &reqs, &ChainOptions { strong_bound: false, ..Default::default() });
        let dir = tempfile::tempdir().unwrap();
        let mut residual = Residual::full(&p);
        let mut compared = 0;
        for (i, (o, r)) in seq.outcomes.iter().zip(&reqs).enumerate() {
            let model = chain_ilp(&p, r, &residual, ChainObjective::Delay);
            match &o.result {
                Ok(plan) => {
                    let path = dir.path().join(format!("step{i}.mps"));
                    model.unwrap().write_model_file(&path).unwrap();
                    let solved = &plan.stats.solve_log[0];
                    let (status, objective, columns, rows) = crate::solver::solve_model_file(&path);
                    assert_eq!(status, highs_sys::kHighsModelStatusOptimal);
                    assert_eq!((columns, rows), (solved.columns, solved.rows), "step {i}");
                    let ours = solved.objective.unwrap();
                    assert!((objective - ours).abs() <= 1e-6 * ours.abs().max(1.0), "step {i}: {objective} vs {ours}");
                    consume(&p, plan, &mut residual);
                    compared += 1;
                }
                // A step the pre-checks rejected has no ILP to export either.
                Err(PlaceError::Infeasible { .. }) => assert!(model.is_err(), "step {i}"),
                Err(e) => panic!("step {i}: {e}"),
            }
        }
        assert!(compared >= 3);
        assert_eq!(residual, seq.residual);
    }
}
