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
//! * **Combinatorial**: delay — the tree dynamic programme above (the optimum with unlimited
//!   capacity and bandwidth, over a spanning tree of the channel graph, so dropped channels
//!   count 0); used servers — the lightest set of hosts that contains a candidate host of
//!   every component and whose free capacity covers the chain's total demand of each
//!   resource (bin packing relaxed to a cover), by best-first branch and bound whose node
//!   bound is the cheapest *fractional* cover (by weight per unit of free capacity) and the
//!   lightest candidate of each uncovered component; after 2,000 node expansions it reports
//!   the least open node bound instead. The weighted objective adds the two, weighted. The LP
//!   is only solved when this bound leaves a gap, so chains it proves optimal make no solver
//!   call.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::chain::{candidates, consume, lp_relaxation, ChainObjective, ChainRequest, ChainSequence, Residual, Slot};
use crate::chain::{estimate_binaries, path_delay, push_route_paths, ChainOutcome};
use crate::error::{reason, ConstraintFamily, PlaceError};
use crate::plan::{Placement, Plan, PlanStats, PlanStatus};
use crate::problem::Problem;
use crate::solver::{SolveStatus, SolverOptions};

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
// Routing.

/// A loop-free path on the zone graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ZPath {
    pub(crate) zones: Vec<usize>,
    /// Arc indices as in [`Residual::arc_free`].
    pub(crate) arcs: Vec<usize>,
    pub(crate) delay: f64,
}

/// k-shortest loop-free paths per zone pair (Yen), cached, plus a bandwidth-aware choice.
pub(crate) struct Router {
    /// Per zone: (neighbour, arc, delay). Only the first link of a zone pair is used, as the
    /// checker and [`consume`] do.
    adj: Vec<Vec<(usize, usize, f64)>>,
    k: usize,
    cache: BTreeMap<(usize, usize), Vec<Rc<ZPath>>>,
    /// Plain shortest path per zone pair, from one shortest-path tree per source zone.
    shortest: BTreeMap<(usize, usize), Option<Rc<ZPath>>>,
    trees: BTreeMap<usize, Vec<Option<(usize, usize)>>>,
}

/// A Dijkstra heap entry: smallest distance first, ties to the smaller zone index.
#[derive(Clone, Copy, PartialEq)]
struct Item {
    dist: f64,
    zone: usize,
}
impl Eq for Item {}
impl Ord for Item {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.dist.total_cmp(&self.dist).then_with(|| other.zone.cmp(&self.zone))
    }
}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

const BW_TOL: f64 = 1e-9;

/// Labels (distinct sets of zones used) kept per (component, zone) state of the segment
/// programme, and complete labels built.
const SEGMENT_LABELS: usize = 8;

/// A partial solution of the segment programme: its delay, the zones its segments use
/// (sorted), where its last segment starts and the label it extends there.
#[derive(Clone)]
struct SegmentLabel {
    cost: f64,
    zones: Vec<usize>,
    start: usize,
    prev: (usize, usize),
}

/// Host tries of the greedy's depth-first fallback ([`Search::backtrack`]) before it gives up.
const BACKTRACK_TRIES: usize = 5_000;

impl Router {
    pub(crate) fn new(p: &Problem, k: usize) -> Router {
        let mut adj = vec![Vec::new(); p.zones.len()];
        let mut seen = BTreeSet::new();
        for (li, l) in p.links.iter().enumerate() {
            if l.a == l.b || !seen.insert((l.a.min(l.b), l.a.max(l.b))) {
                continue;
            }
            adj[l.a].push((l.b, 2 * li, l.delay_ms));
            adj[l.b].push((l.a, 2 * li + 1, l.delay_ms));
        }
        for a in &mut adj {
            a.sort_by_key(|x| x.0);
        }
        Router { adj, k: k.max(1), cache: BTreeMap::new(), shortest: BTreeMap::new(), trees: BTreeMap::new() }
    }

    /// Dijkstra from `a` (to `b`, or to every zone when `b` is `None`) avoiding banned zones
    /// and arcs and arcs `usable` rejects; ties broken by zone index, so it is deterministic.
    /// Returns each zone's predecessor (zone, arc) and distance.
    fn search(
        &self,
        a: usize,
        b: Option<usize>,
        banned_zone: &[bool],
        banned_arc: &BTreeSet<usize>,
        usable: &dyn Fn(usize) -> bool,
    ) -> (Vec<f64>, Vec<Option<(usize, usize)>>) {
        let n = self.adj.len();
        let mut dist = vec![f64::INFINITY; n];
        let mut pred: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut heap = std::collections::BinaryHeap::new();
        dist[a] = 0.0;
        heap.push(Item { dist: 0.0, zone: a });
        while let Some(Item { dist: d, zone: u }) = heap.pop() {
            if d > dist[u] {
                continue;
            }
            if Some(u) == b {
                break;
            }
            for &(v, arc, w) in &self.adj[u] {
                if banned_zone[v] || banned_arc.contains(&arc) || !usable(arc) {
                    continue;
                }
                let nd = d + w;
                if nd < dist[v] {
                    dist[v] = nd;
                    pred[v] = Some((u, arc));
                    heap.push(Item { dist: nd, zone: v });
                }
            }
        }
        (dist, pred)
    }

    /// Walks `pred` back from `b` to `a`.
    fn walk(&self, a: usize, b: usize, pred: &[Option<(usize, usize)>]) -> Option<ZPath> {
        let mut zones = vec![b];
        let mut arcs = Vec::new();
        let mut cur = b;
        while cur != a {
            let (u, arc) = pred[cur]?;
            zones.push(u);
            arcs.push(arc);
            cur = u;
            if zones.len() > self.adj.len() {
                return None;
            }
        }
        zones.reverse();
        arcs.reverse();
        let delay = self.path_delay(&arcs, &zones);
        Some(ZPath { zones, arcs, delay })
    }

    fn dijkstra(
        &self,
        a: usize,
        b: usize,
        banned_zone: &[bool],
        banned_arc: &BTreeSet<usize>,
        usable: &dyn Fn(usize) -> bool,
    ) -> Option<ZPath> {
        let (_, pred) = self.search(a, Some(b), banned_zone, banned_arc, usable);
        self.walk(a, b, &pred)
    }

    /// The shortest path from `a` to `b` ignoring bandwidth (one tree per source, cached).
    fn shortest(&mut self, a: usize, b: usize) -> Option<Rc<ZPath>> {
        if let Some(p) = self.shortest.get(&(a, b)) {
            return p.clone();
        }
        if !self.trees.contains_key(&a) {
            let (_, pred) = self.search(a, None, &vec![false; self.adj.len()], &BTreeSet::new(), &|_| true);
            self.trees.insert(a, pred);
        }
        let pth = self.trees.get(&a).and_then(|pred| self.walk(a, b, pred)).map(Rc::new);
        self.shortest.insert((a, b), pth.clone());
        pth
    }

    fn path_delay(&self, arcs: &[usize], zones: &[usize]) -> f64 {
        arcs.iter().zip(zones).map(|(&arc, &z)| self.adj[z].iter().find(|e| e.1 == arc).map_or(0.0, |e| e.2)).sum()
    }

    /// Yen's k shortest loop-free paths from `a` to `b` (`a ≠ b`), fastest first.
    fn k_shortest(&mut self, a: usize, b: usize) -> &[Rc<ZPath>] {
        if !self.cache.contains_key(&(a, b)) {
            let paths = self.yen(a, b);
            self.cache.insert((a, b), paths);
        }
        self.cache.get(&(a, b)).map_or(&[], Vec::as_slice)
    }

    fn yen(&self, a: usize, b: usize) -> Vec<Rc<ZPath>> {
        let n = self.adj.len();
        let no_zone = vec![false; n];
        let mut found: Vec<ZPath> = Vec::new();
        if let Some(first) = self.dijkstra(a, b, &no_zone, &BTreeSet::new(), &|_| true) {
            found.push(first);
        }
        let mut pool: Vec<ZPath> = Vec::new();
        while !found.is_empty() && found.len() < self.k {
            let prev = found[found.len() - 1].clone();
            for i in 0..prev.zones.len() - 1 {
                let spur = prev.zones[i];
                let root = &prev.zones[..=i];
                let mut banned_arc = BTreeSet::new();
                for pth in &found {
                    if pth.zones.len() > i + 1 && &pth.zones[..=i] == root {
                        banned_arc.insert(pth.arcs[i]);
                    }
                }
                let mut banned_zone = vec![false; n];
                for &z in &root[..i] {
                    banned_zone[z] = true;
                }
                let Some(tail) = self.dijkstra(spur, b, &banned_zone, &banned_arc, &|_| true) else { continue };
                let mut zones = root[..i].to_vec();
                zones.extend(&tail.zones);
                let mut arcs = prev.arcs[..i].to_vec();
                arcs.extend(&tail.arcs);
                let delay = self.path_delay(&arcs, &zones);
                let cand = ZPath { zones, arcs, delay };
                if !found.iter().any(|f| f.zones == cand.zones) && !pool.iter().any(|f| f.zones == cand.zones) {
                    pool.push(cand);
                }
            }
            if pool.is_empty() {
                break;
            }
            let best = (0..pool.len())
                .min_by(|&x, &y| {
                    pool[x].delay.total_cmp(&pool[y].delay).then_with(|| pool[x].zones.cmp(&pool[y].zones))
                })
                .unwrap_or(0);
            found.push(pool.swap_remove(best));
        }
        found.into_iter().map(Rc::new).collect()
    }

    /// The fastest path from `a` to `b` with `bw` free on its arcs and `rev_bw` on their
    /// reverses, within `max` ms; `Some(empty)` when `a == b`.
    pub(crate) fn route(
        &mut self,
        a: usize,
        b: usize,
        bw: f64,
        rev_bw: f64,
        max: f64,
        arc_free: &[f64],
    ) -> Option<Rc<ZPath>> {
        if a == b {
            return Some(Rc::new(ZPath { zones: Vec::new(), arcs: Vec::new(), delay: 0.0 }));
        }
        let usable = |arc: usize| {
            (bw <= 0.0 || arc_free[arc] + BW_TOL >= bw) && (rev_bw <= 0.0 || arc_free[arc ^ 1] + BW_TOL >= rev_bw)
        };
        // The shortest path first: in an uncongested network it is the answer, and Yen's
        // alternatives are only computed for the zone pairs that need them.
        let first = self.shortest(a, b)?;
        if first.delay > max + 1e-9 {
            return None;
        }
        if first.arcs.iter().all(|&arc| usable(arc)) {
            return Some(first);
        }
        for pth in self.k_shortest(a, b) {
            if pth.delay > max + 1e-9 {
                return None; // the rest are slower still
            }
            if pth.arcs.iter().all(|&arc| usable(arc)) {
                return Some(Rc::clone(pth));
            }
        }
        let pth = self.dijkstra(a, b, &vec![false; self.adj.len()], &BTreeSet::new(), &usable)?;
        (pth.delay <= max + 1e-9).then(|| Rc::new(pth))
    }
}

// ---------------------------------------------------------------------------------------
// The chain as the heuristic sees it.

/// One routed channel (a symmetric pair is one route carrying both).
struct RouteSpec {
    from: usize,
    to: usize,
    bw: f64,
    rev_bw: f64,
    max: f64,
    /// Channels of the service on this route (primary first).
    channels: Vec<usize>,
}

impl RouteSpec {
    fn mult(&self) -> f64 {
        self.channels.len() as f64
    }
}

struct Model<'a> {
    p: &'a Problem,
    si: usize,
    request: &'a ChainRequest,
    user_zone: Option<usize>,
    /// Per component: fixed zone and host (user-side), or `None`.
    fixed: Vec<Option<(usize, Option<usize>)>>,
    cands: Vec<Vec<usize>>,
    /// Dense demand per component over `res_names`.
    demand: Vec<Vec<u64>>,
    res_names: Vec<String>,
    routes: Vec<RouteSpec>,
    incident: Vec<Vec<usize>>,
    anti: Vec<Vec<usize>>,
    affine: Vec<Vec<usize>>,
    /// Weight of each host (by index into `p.hosts`; 0 for non-candidates).
    weight: Vec<f64>,
    /// Sorted union of all candidate hosts.
    host_list: Vec<usize>,
    wd: f64,
    ws: f64,
    /// Breadth-first order, tree children (component, route), zones per component and togo.
    order: Vec<usize>,
    roots: Vec<usize>,
    children: Vec<Vec<(usize, usize)>>,
    zones: Vec<Vec<usize>>,
    togo: Vec<Vec<f64>>,
}

fn dense(r: &zonal_model::Resources, names: &[String]) -> Vec<u64> {
    names.iter().map(|n| r.get(n)).collect()
}

impl<'a> Model<'a> {
    fn new(
        p: &'a Problem,
        request: &'a ChainRequest,
        residual: &Residual,
        objective: ChainObjective,
    ) -> Result<Model<'a>, PlaceError> {
        let (ctx, slots) = candidates(p, request, residual)?;
        let si = ctx.si;
        let s = &p.services[si].service;
        let n = s.components.len();
        let mut fixed = vec![None; n];
        let mut cands = vec![Vec::new(); n];
        for (t, slot) in slots.iter().enumerate() {
            match slot {
                Slot::Fixed { zone, host } => fixed[t] = Some((*zone, *host)),
                Slot::Hosts(hs) => cands[t] = hs.clone(),
            }
        }
        let mut names: BTreeSet<String> = BTreeSet::new();
        for c in &s.components {
            names.extend(c.resources.names().map(String::from));
        }
        let res_names: Vec<String> = names.into_iter().collect();
        let demand: Vec<Vec<u64>> = s
            .components
            .iter()
            .map(|c| if c.user_side { vec![0; res_names.len()] } else { dense(&c.resources, &res_names) })
            .collect();
        let comp = |name: &str| s.components.iter().position(|c| c.name == name);
        // Routes, a symmetric pair as one.
        let mut routes: Vec<RouteSpec> = Vec::new();
        for (chi, ch) in s.channels.iter().enumerate() {
            let (Some(f), Some(t)) = (comp(&ch.from), comp(&ch.to)) else { continue };
            let max = ch.max_latency.map_or(f64::INFINITY, |d| d.as_millis());
            let bw = ch.bandwidth.map_or(0.0, |b| b.mbps());
            if let Some(r) = routes.iter_mut().find(|r| r.from == t && r.to == f && r.channels.len() == 1) {
                r.channels.push(chi);
                r.max = r.max.min(max);
                r.rev_bw = bw;
                continue;
            }
            routes.push(RouteSpec { from: f, to: t, bw, rev_bw: 0.0, max, channels: vec![chi] });
        }
        let mut incident = vec![Vec::new(); n];
        for (ri, r) in routes.iter().enumerate() {
            incident[r.from].push(ri);
            if r.to != r.from {
                incident[r.to].push(ri);
            }
        }
        // Anti-affinity, symmetric; affinity groups, transitive.
        let mut anti = vec![Vec::new(); n];
        let mut group: Vec<usize> = (0..n).collect();
        fn find(g: &mut [usize], x: usize) -> usize {
            let mut r = x;
            while g[r] != r {
                r = g[r];
            }
            g[x] = r;
            r
        }
        for (a, c) in s.components.iter().enumerate() {
            for o in &c.placement.anti_affinity {
                if let Some(b) = comp(o) {
                    if a != b {
                        anti[a].push(b);
                        anti[b].push(a);
                    }
                }
            }
            for o in &c.placement.affinity {
                if let Some(b) = comp(o) {
                    let (ra, rb) = (find(&mut group, a), find(&mut group, b));
                    group[ra.max(rb)] = ra.min(rb);
                }
            }
        }
        for a in &mut anti {
            a.sort_unstable();
            a.dedup();
        }
        let roots_of: Vec<usize> = (0..n).map(|x| find(&mut group, x)).collect();
        let mut affine = vec![Vec::new(); n];
        for a in 0..n {
            for b in 0..n {
                if a != b && roots_of[a] == roots_of[b] {
                    affine[a].push(b);
                }
            }
        }
        // An affinity group can only use the zones all its members can.
        let zone_set = |t: usize, cands: &[Vec<usize>]| -> BTreeSet<usize> {
            match fixed[t] {
                Some((z, _)) => [z].into(),
                None => cands[t].iter().map(|&h| p.hosts[h].zone).collect(),
            }
        };
        let mut narrowed = cands.clone();
        for t in 0..n {
            if affine[t].is_empty() || fixed[t].is_some() {
                continue;
            }
            let mut ok = zone_set(t, &cands);
            for &o in &affine[t] {
                ok = ok.intersection(&zone_set(o, &cands)).copied().collect();
            }
            narrowed[t].retain(|&h| ok.contains(&p.hosts[h].zone));
            if narrowed[t].is_empty() {
                return Err(PlaceError::Infeasible {
                    reasons: vec![reason(
                        ConstraintFamily::Placement,
                        vec![s.name.clone(), s.components[t].name.clone()],
                        format!(
                            "component {:?} and its affinity group have no candidate zone in common",
                            s.components[t].name
                        ),
                    )],
                });
            }
        }
        let cands = narrowed;
        let host_list: Vec<usize> = cands.iter().flatten().copied().collect::<BTreeSet<_>>().into_iter().collect();
        let mut weight = vec![0.0; p.hosts.len()];
        for &h in &host_list {
            let cap = p.hosts[h].capacity.get(zonal_model::resources::CPU) as f64;
            weight[h] = if cap > 0.0 {
                100.0 * residual.host_free[h].get(zonal_model::resources::CPU) as f64 / cap
            } else {
                0.0
            };
        }
        let (wd, ws) = objective.weights();
        let mut m = Model {
            p,
            si,
            request,
            user_zone: ctx.user_zone,
            fixed,
            cands,
            demand,
            res_names,
            routes,
            incident,
            anti,
            affine,
            weight,
            host_list,
            wd,
            ws,
            order: Vec::new(),
            roots: Vec::new(),
            children: vec![Vec::new(); n],
            zones: Vec::new(),
            togo: Vec::new(),
        };
        m.tree();
        Ok(m)
    }

    fn n(&self) -> usize {
        self.fixed.len()
    }

    fn other(&self, r: usize, t: usize) -> usize {
        let rt = &self.routes[r];
        if rt.from == t {
            rt.to
        } else {
            rt.from
        }
    }

    /// The tree programme's least delay of child `c`'s subtree, reached over route `r`, when
    /// its parent `t` sits in `zone` (∞ when no zone of `c` meets the route's latency bound).
    fn subtree_delay(&self, t: usize, zone: usize, c: usize, r: usize) -> f64 {
        let rt = &self.routes[r];
        self.zones[c]
            .iter()
            .zip(&self.togo[c])
            .map(|(&zc, &g)| {
                let (a, b) = if rt.from == t { (zone, zc) } else { (zc, zone) };
                let d = self.p.zone_delay[a][b];
                if d > rt.max + 1e-9 {
                    f64::INFINITY
                } else {
                    rt.mult() * d + g
                }
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// Breadth-first order from the fixed components and the tree dynamic programme.
    fn tree(&mut self) {
        let n = self.n();
        let p = self.p;
        let mut seen = vec![false; n];
        let starts: Vec<usize> =
            (0..n).filter(|&t| self.fixed[t].is_some()).chain((0..n).filter(|&t| self.fixed[t].is_none())).collect();
        for s0 in starts {
            if seen[s0] {
                continue;
            }
            seen[s0] = true;
            self.roots.push(s0);
            let mut queue = VecDeque::from([s0]);
            while let Some(u) = queue.pop_front() {
                self.order.push(u);
                for &r in &self.incident[u] {
                    let v = self.other(r, u);
                    if !seen[v] {
                        seen[v] = true;
                        self.children[u].push((v, r));
                        queue.push_back(v);
                    }
                }
            }
        }
        self.zones = (0..n)
            .map(|t| match self.fixed[t] {
                Some((z, _)) => vec![z],
                None => self.cands[t].iter().map(|&h| p.hosts[h].zone).collect::<BTreeSet<_>>().into_iter().collect(),
            })
            .collect();
        self.togo = self.zones.iter().map(|zs| vec![0.0; zs.len()]).collect();
        for &t in self.order.iter().rev() {
            for (i, &z) in self.zones[t].iter().enumerate() {
                let mut sum = 0.0;
                for &(c, r) in &self.children[t] {
                    sum += self.subtree_delay(t, z, c, r);
                }
                self.togo[t][i] = sum;
            }
        }
    }

    /// Delay bound: the tree programme's optimum (0 contribution from non-tree channels).
    fn delay_bound(&self) -> f64 {
        self.roots.iter().map(|&r| self.togo[r].iter().copied().fold(f64::INFINITY, f64::min)).sum()
    }

    /// Used-servers bound (see the module docs): the lightest host set that gives every
    /// component a candidate host and covers the chain's total demand of each resource, by
    /// best-first branch and bound over hosts; when it runs out of node expansions, the least
    /// bound among the open nodes (at worst the fractional cover of the root).
    fn servers_bound(&self, residual: &Residual) -> f64 {
        let placed: Vec<usize> = (0..self.n()).filter(|&t| self.fixed[t].is_none()).collect();
        if placed.is_empty() {
            return 0.0;
        }
        let hosts = &self.host_list;
        let free: Vec<Vec<f64>> = hosts
            .iter()
            .map(|&h| self.res_names.iter().map(|name| residual.host_free[h].get(name) as f64).collect())
            .collect();
        let need: Vec<f64> =
            (0..self.res_names.len()).map(|ri| placed.iter().map(|&t| self.demand[t][ri] as f64).sum()).collect();
        let weight: Vec<f64> = hosts.iter().map(|&h| self.weight[h]).collect();
        // Candidate positions in `hosts` per component, lightest first.
        // Components with the same candidates are one covering constraint.
        let mut cand_pos: Vec<Vec<usize>> = placed
            .iter()
            .map(|&t| {
                let mut v: Vec<usize> = self.cands[t].iter().filter_map(|h| hosts.binary_search(h).ok()).collect();
                v.sort_by(|&a, &b| weight[a].total_cmp(&weight[b]).then(a.cmp(&b)));
                v
            })
            .collect();
        cand_pos.sort();
        cand_pos.dedup();
        // Per resource, hosts by weight per unit of free capacity (the fractional cover's order).
        let by_ratio: Vec<Vec<usize>> = (0..need.len())
            .map(|ri| {
                let mut v: Vec<usize> = (0..hosts.len()).filter(|&i| free[i][ri] > 0.0).collect();
                v.sort_by(|&a, &b| (weight[a] / free[a][ri]).total_cmp(&(weight[b] / free[b][ri])).then(a.cmp(&b)));
                v
            })
            .collect();
        let cover = CoverSearch { free: &free, need: &need, weight: &weight, cand_pos: &cand_pos, by_ratio: &by_ratio };
        cover.solve(COVER_BOUND_EXPANSIONS)
    }

    fn combinatorial_bound(&self, residual: &Residual) -> f64 {
        let mut b = 0.0;
        if self.wd > 0.0 {
            b += self.wd * self.delay_bound();
        }
        if self.ws > 0.0 {
            b += self.ws * self.servers_bound(residual);
        }
        b
    }
}

/// Node expansions of the used-servers cover bound before it settles for the least open bound.
const COVER_BOUND_EXPANSIONS: usize = 2_000;

/// The used-servers cover problem of [`Model::servers_bound`], over positions in the model's
/// host list.
struct CoverSearch<'c> {
    free: &'c [Vec<f64>],
    need: &'c [f64],
    weight: &'c [f64],
    cand_pos: &'c [Vec<usize>],
    by_ratio: &'c [Vec<usize>],
}

/// A node of the cover search: hosts taken, hosts ruled out, and its lower bound.
struct CoverNode {
    lb: f64,
    seq: usize,
    cost: f64,
    chosen: Vec<bool>,
    excluded: Vec<bool>,
}
impl PartialEq for CoverNode {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for CoverNode {}
impl Ord for CoverNode {
    // Smallest bound first (a max-heap, so reversed); ties to the older node.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.lb.total_cmp(&self.lb).then_with(|| other.seq.cmp(&self.seq))
    }
}
impl PartialOrd for CoverNode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl CoverSearch<'_> {
    /// Demand of each resource the chosen hosts leave uncovered.
    fn short(&self, chosen: &[bool]) -> Vec<f64> {
        self.need
            .iter()
            .enumerate()
            .map(|(ri, &n)| {
                let have: f64 = (0..chosen.len()).filter(|&i| chosen[i]).map(|i| self.free[i][ri]).sum();
                (n - have).max(0.0)
            })
            .collect()
    }

    /// Lower bound on the weight still to add: the larger of the fractional cover of each
    /// short resource and the lightest usable candidate of each component not yet covered.
    fn extra(&self, chosen: &[bool], excluded: &[bool]) -> f64 {
        let open = |i: usize| !chosen[i] && !excluded[i];
        let mut best: f64 = 0.0;
        for (ri, left0) in self.short(chosen).into_iter().enumerate() {
            let mut left = left0;
            let mut cost = 0.0;
            for &i in self.by_ratio[ri].iter().filter(|&&i| open(i)) {
                if left <= 1e-9 {
                    break;
                }
                let take = left.min(self.free[i][ri]);
                cost += self.weight[i] * take / self.free[i][ri];
                left -= take;
            }
            if left > 1e-9 {
                return f64::INFINITY;
            }
            best = best.max(cost);
        }
        for cands in self.cand_pos {
            if cands.iter().any(|&i| chosen[i]) {
                continue;
            }
            let lightest = cands.iter().find(|&&i| !excluded[i]).map_or(f64::INFINITY, |&i| self.weight[i]);
            best = best.max(lightest);
        }
        best
    }

    fn solve(&self, max_expansions: usize) -> f64 {
        let n = self.weight.len();
        let mut seq = 0usize;
        let mut heap = std::collections::BinaryHeap::new();
        let root_extra = self.extra(&vec![false; n], &vec![false; n]);
        if !root_extra.is_finite() {
            return 0.0; // No cover at all: the greedy cannot have found a plan; bound nothing.
        }
        heap.push(CoverNode { lb: root_extra, seq, cost: 0.0, chosen: vec![false; n], excluded: vec![false; n] });
        let mut expansions = 0usize;
        while let Some(node) = heap.pop() {
            let uncovered = self
                .cand_pos
                .iter()
                .filter(|c| !c.iter().any(|&i| node.chosen[i]))
                .min_by_key(|c| c.iter().filter(|&&i| !node.excluded[i]).count());
            let short = self.short(&node.chosen);
            let lacking = short.iter().enumerate().filter(|(_, &s)| s > 1e-9).map(|(ri, _)| ri).next();
            if uncovered.is_none() && lacking.is_none() {
                return node.cost; // Best first: the first complete node is the cheapest cover.
            }
            if expansions == max_expansions {
                return node.lb;
            }
            expansions += 1;
            // Children: take one of the branching hosts, ruling out the ones tried before it.
            let branch: Vec<usize> = match (uncovered, lacking) {
                (Some(c), _) => c.iter().copied().filter(|&i| !node.excluded[i]).collect(),
                (None, Some(ri)) => {
                    self.by_ratio[ri].iter().copied().filter(|&i| !node.chosen[i] && !node.excluded[i]).collect()
                }
                (None, None) => Vec::new(),
            };
            let mut excluded = node.excluded.clone();
            for &i in &branch {
                let mut chosen = node.chosen.clone();
                chosen[i] = true;
                let cost = node.cost + self.weight[i];
                let extra = self.extra(&chosen, &excluded);
                if extra.is_finite() {
                    seq += 1;
                    heap.push(CoverNode { lb: cost + extra, seq, cost, chosen, excluded: excluded.clone() });
                }
                excluded[i] = true;
            }
        }
        root_extra
    }
}

// ---------------------------------------------------------------------------------------
// State and moves.

#[derive(Clone)]
struct State {
    host: Vec<Option<usize>>,
    zone: Vec<Option<usize>>,
    path: Vec<Option<Rc<ZPath>>>,
    /// Dense free capacity per host (index into `p.hosts`; empty for non-candidates).
    free: Vec<Vec<u64>>,
    /// Components of this chain per host.
    count: Vec<u32>,
    arc_free: Vec<f64>,
}

impl State {
    /// Nothing of the chain placed, against `residual`.
    fn empty(m: &Model, residual: &Residual) -> State {
        let p = m.p;
        let free: Vec<Vec<u64>> = (0..p.hosts.len())
            .map(|h| {
                if m.host_list.binary_search(&h).is_ok() {
                    dense(&residual.host_free[h], &m.res_names)
                } else {
                    Vec::new()
                }
            })
            .collect();
        State {
            host: vec![None; m.n()],
            zone: vec![None; m.n()],
            path: vec![None; m.routes.len()],
            free,
            count: vec![0; p.hosts.len()],
            arc_free: residual.arc_free.clone(),
        }
    }
}

/// Where a move sends a component.
#[derive(Clone, Copy)]
enum Target {
    Host(usize),
    /// Any candidate host in this zone (one already used first, then in index order).
    Zone(usize),
}

struct Search<'m, 'a> {
    m: &'m Model<'a>,
    router: &'m mut Router,
    st: State,
    /// The greedy needed its depth-first fallback.
    backtracked: bool,
}

impl Search<'_, '_> {
    fn fits(&self, t: usize, h: usize) -> bool {
        // Only candidate hosts are ever asked about; they all have a dense row.
        self.m.demand[t].iter().zip(&self.st.free[h]).all(|(d, free)| d <= free)
    }

    fn objective(&self) -> f64 {
        let m = self.m;
        let delay: f64 =
            m.routes.iter().zip(&self.st.path).map(|(r, pth)| pth.as_ref().map_or(0.0, |x| r.mult() * x.delay)).sum();
        let servers: f64 = m.host_list.iter().filter(|&&h| self.st.count[h] > 0).map(|&h| m.weight[h]).sum();
        m.wd * delay + m.ws * servers
    }

    fn delay(&self) -> f64 {
        self.m.routes.iter().zip(&self.st.path).map(|(r, pth)| pth.as_ref().map_or(0.0, |x| r.mult() * x.delay)).sum()
    }

    fn reserve(&mut self, r: usize, pth: &ZPath, sign: f64) {
        let rt = &self.m.routes[r];
        for &arc in &pth.arcs {
            if rt.bw > 0.0 {
                self.st.arc_free[arc] -= sign * rt.bw;
            }
            if rt.rev_bw > 0.0 {
                self.st.arc_free[arc ^ 1] -= sign * rt.rev_bw;
            }
        }
    }

    fn unroute(&mut self, r: usize) {
        if let Some(pth) = self.st.path[r].take() {
            self.reserve(r, &pth, -1.0);
        }
    }

    /// Routes `r` if both ends are placed; false when no path fits.
    fn route(&mut self, r: usize) -> bool {
        let rt = &self.m.routes[r];
        let (Some(a), Some(b)) = (self.st.zone[rt.from], self.st.zone[rt.to]) else { return true };
        match self.router.route(a, b, rt.bw, rt.rev_bw, rt.max, &self.st.arc_free) {
            Some(pth) => {
                self.reserve(r, &pth, 1.0);
                self.st.path[r] = Some(pth);
                true
            }
            None => false,
        }
    }

    fn put(&mut self, t: usize, h: usize) {
        for (f, d) in self.st.free[h].iter_mut().zip(&self.m.demand[t]) {
            *f -= d;
        }
        self.st.count[h] += 1;
        self.st.host[t] = Some(h);
        self.st.zone[t] = Some(self.m.p.hosts[h].zone);
    }

    fn take(&mut self, t: usize) {
        if let Some(h) = self.st.host[t].take() {
            for (f, d) in self.st.free[h].iter_mut().zip(&self.m.demand[t]) {
                *f += d;
            }
            self.st.count[h] -= 1;
        }
        self.st.zone[t] = None;
    }

    /// Anti-affinity and affinity of `t` against the components placed now.
    fn relations_ok(&self, t: usize) -> bool {
        let (h, z) = (self.st.host[t], self.st.zone[t]);
        self.m.anti[t].iter().all(|&o| self.st.host[o].is_none() || self.st.host[o] != h)
            && self.m.affine[t].iter().all(|&o| self.st.zone[o].is_none() || self.st.zone[o] == z)
    }

    fn pick_in_zone(&self, t: usize, zone: usize) -> Option<usize> {
        let hosts = self.m.cands[t].iter().copied().filter(|&h| self.m.p.hosts[h].zone == zone && self.fits(t, h));
        let (used, fresh): (Vec<usize>, Vec<usize>) = hosts.partition(|&h| self.st.count[h] > 0);
        used.into_iter().chain(fresh).find(|&h| {
            let other_anti = self.m.anti[t].iter().any(|&o| self.st.host[o] == Some(h));
            !other_anti
        })
    }

    /// Applies `changes` and re-routes `extra` routes and every route they touch; keeps the
    /// result when feasible and strictly better, else restores the previous state.
    fn try_change(&mut self, changes: &[(usize, Target)], extra: &[usize]) -> bool {
        let before = self.objective();
        let saved_hosts: Vec<(usize, Option<usize>)> = changes.iter().map(|&(t, _)| (t, self.st.host[t])).collect();
        let mut affected: BTreeSet<usize> = extra.iter().copied().collect();
        for &(t, _) in changes {
            affected.extend(self.m.incident[t].iter().copied());
        }
        let saved_paths: Vec<(usize, Option<Rc<ZPath>>)> =
            affected.iter().map(|&r| (r, self.st.path[r].clone())).collect();
        for &r in &affected {
            self.unroute(r);
        }
        for &(t, _) in changes {
            self.take(t);
        }
        let mut ok = true;
        for &(t, target) in changes {
            let h = match target {
                Target::Host(h) => (self.m.cands[t].contains(&h) && self.fits(t, h)).then_some(h),
                Target::Zone(z) => self.pick_in_zone(t, z),
            };
            match h {
                Some(h) => self.put(t, h),
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            ok = changes.iter().all(|&(t, _)| self.relations_ok(t));
        }
        if ok {
            for &r in &affected {
                if !self.route(r) {
                    ok = false;
                    break;
                }
            }
        }
        if ok && self.objective() < before - 1e-9 * before.abs().max(1.0) {
            return true;
        }
        // Restore.
        for &r in &affected {
            self.unroute(r);
        }
        for &(t, _) in changes {
            self.take(t);
        }
        for &(t, h) in &saved_hosts {
            if let Some(h) = h {
                self.put(t, h);
            }
        }
        for (r, pth) in saved_paths {
            if let Some(pth) = pth {
                self.reserve(r, &pth, 1.0);
                self.st.path[r] = Some(pth);
            }
        }
        false
    }

    /// Look-ahead of `t` in `zone`: the tree programme's least delay of each child subtree
    /// not placed yet (placed children count through their routed channels instead).
    fn ahead(&self, t: usize, zone: usize) -> f64 {
        let m = self.m;
        let mut sum = 0.0;
        for &(c, r) in &m.children[t] {
            if self.st.zone[c].is_some() {
                continue;
            }
            sum += m.subtree_delay(t, zone, c, r);
        }
        sum
    }

    /// The greedy in two orders: pinned (single-zone) components right after the fixed ones,
    /// then breadth-first — so a pinned component's host is not filled by its neighbours
    /// first; if that gets stuck, most constrained (fewest candidate hosts) first.
    fn greedy(&mut self) -> Result<(), PlaceError> {
        let m = self.m;
        let single = |t: usize| m.fixed[t].is_none() && m.zones[t].len() == 1;
        let first: Vec<usize> = m
            .order
            .iter()
            .copied()
            .filter(|&t| m.fixed[t].is_some())
            .chain(m.order.iter().copied().filter(|&t| single(t)))
            .chain(m.order.iter().copied().filter(|&t| m.fixed[t].is_none() && !single(t)))
            .collect();
        let start = self.st.clone();
        let err = match self.greedy_in(&first) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        self.st = start.clone();
        let mut second = first.clone();
        // Stable: ties keep the first order.
        second.sort_by_key(|&t| if m.fixed[t].is_some() { 0 } else { m.cands[t].len() });
        if self.greedy_in(&second).is_ok() {
            return Ok(());
        }
        self.st = start.clone();
        let mut budget = BACKTRACK_TRIES;
        if self.backtrack(&mut budget) {
            self.backtracked = true;
            return Ok(());
        }
        self.st = start;
        Err(err)
    }

    fn greedy_in(&mut self, order: &[usize]) -> Result<(), PlaceError> {
        let m = self.m;
        for &t in order {
            if let Some((z, h)) = m.fixed[t] {
                self.st.zone[t] = Some(z);
                self.st.host[t] = h;
                for &r in &m.incident[t] {
                    if self.st.path[r].is_none() && !self.route(r) {
                        return Err(self.stuck(t));
                    }
                }
                continue;
            }
            // Score every candidate host, then commit the best one whose routes fit together.
            let mut placed = false;
            for h in self.scored_hosts(t) {
                self.put(t, h);
                if self.route_incident(t).is_some() {
                    placed = true;
                    break;
                }
                self.take(t);
            }
            if !placed {
                return Err(self.stuck(t));
            }
        }
        Ok(())
    }

    /// The candidate hosts of unplaced component `t` that fit, respect (anti-)affinity and
    /// reach every placed neighbour within bandwidth and max latency, best first: objective
    /// estimate (routed delay to placed neighbours + look-ahead + weight if newly used),
    /// then the shorter routes to what is placed, then total delay, then hosts already used.
    fn scored_hosts(&mut self, t: usize) -> Vec<usize> {
        let m = self.m;
        let p = m.p;
        {
            let mut scored: Vec<(i64, i64, i64, bool, usize)> = Vec::new();
            let mut ahead_of: BTreeMap<usize, f64> = BTreeMap::new();
            for &h in &m.cands[t] {
                if !self.fits(t, h) {
                    continue;
                }
                let z = p.hosts[h].zone;
                if m.anti[t].iter().any(|&o| self.st.host[o] == Some(h))
                    || m.affine[t].iter().any(|&o| self.st.zone[o].is_some_and(|oz| oz != z))
                {
                    continue;
                }
                let mut delay = 0.0;
                let mut feasible = true;
                for &r in &m.incident[t] {
                    let o = m.other(r, t);
                    let Some(oz) = self.st.zone[o] else { continue };
                    let rt = &m.routes[r];
                    let (a, b) = if rt.from == t { (z, oz) } else { (oz, z) };
                    match self.router.route(a, b, rt.bw, rt.rev_bw, rt.max, &self.st.arc_free) {
                        Some(pth) => delay += rt.mult() * pth.delay,
                        None => {
                            feasible = false;
                            break;
                        }
                    }
                }
                let ahead = match ahead_of.get(&z) {
                    Some(&a) => a,
                    None => {
                        let a = self.ahead(t, z);
                        ahead_of.insert(z, a);
                        a
                    }
                };
                if !feasible || !ahead.is_finite() {
                    continue;
                }
                let fresh = if self.st.count[h] == 0 { m.weight[h] } else { 0.0 };
                // Objective estimate first (rounded to 1e-6, so float noise does not decide),
                // then the shorter routes to what is placed (defer commitments the look-ahead
                // cannot see capacity for), then total delay, then hosts already used.
                let key = |x: f64| (x * 1e6).round() as i64;
                scored.push((
                    key(m.wd * (delay + ahead) + m.ws * fresh),
                    key(delay),
                    key(delay + ahead),
                    self.st.count[h] == 0,
                    h,
                ));
            }
            scored.sort();
            scored.into_iter().map(|(.., h)| h).collect()
        }
    }

    /// Routes every unrouted channel of `t` whose other end is placed; on failure undoes
    /// what it routed and returns `None`, else the routes it added.
    fn route_incident(&mut self, t: usize) -> Option<Vec<usize>> {
        let mut routed = Vec::new();
        for &r in &self.m.incident[t] {
            if self.st.path[r].is_none() {
                if self.route(r) {
                    routed.push(r);
                } else {
                    for r in routed {
                        self.unroute(r);
                    }
                    return None;
                }
            }
        }
        Some(routed)
    }

    /// Whether `t` in zone `zt` and `o` in zone `zo` can meet route `r`'s latency bound: the
    /// shortest-path delay is a lower bound on any route's, so `false` rules the pair out.
    fn reachable(&self, r: usize, t: usize, zt: usize, zo: usize) -> bool {
        let rt = &self.m.routes[r];
        let d = if rt.from == t { self.m.p.zone_delay[zt][zo] } else { self.m.p.zone_delay[zo][zt] };
        d <= rt.max + 1e-9
    }

    /// Depth-first search with forward checking, for when both greedy orders get stuck. Each
    /// component keeps a domain of zones, first made arc consistent over the channels' latency
    /// bounds; the search places the component with the fewest zones left (most constrained
    /// first), tries its hosts in the greedy's ranking, and after each choice restores arc
    /// consistency over every unplaced component (zones out of latency reach of a neighbour's
    /// domain, or without a host that still fits, drop out); an empty domain undoes the choice
    /// at once. Dense meshes under tight delay bounds
    /// need it (VNMP's VoIP slices: an early choice can leave a later component no host within
    /// reach of all its neighbours). Gives up after `budget` host tries.
    fn backtrack(&mut self, budget: &mut usize) -> bool {
        let m = self.m;
        let n = m.n();
        for t in 0..n {
            if let Some((z, h)) = m.fixed[t] {
                self.st.zone[t] = Some(z);
                self.st.host[t] = h;
            }
        }
        for t in 0..n {
            if m.fixed[t].is_some() && self.route_incident(t).is_none() {
                return false;
            }
        }
        let mut dom: Vec<Vec<usize>> =
            (0..n).map(|t| self.st.zone[t].map_or_else(|| m.zones[t].clone(), |z| vec![z])).collect();
        self.consistent(&mut dom) && self.forward(&dom, budget)
    }

    /// Narrows the unplaced components' domains to arc consistency: a zone stays only if it
    /// has a host that fits the component now and every channel can reach some zone of the
    /// other end's domain within its latency bound. False when a domain empties.
    fn consistent(&mut self, dom: &mut [Vec<usize>]) -> bool {
        let m = self.m;
        let n = m.n();
        for t in (0..n).filter(|&t| self.st.zone[t].is_none()) {
            dom[t].retain(|&z| m.cands[t].iter().any(|&h| m.p.hosts[h].zone == z && self.fits(t, h)));
            // Channels to placed components must have a route now, with the bandwidth left.
            for &r in &m.incident[t] {
                let Some(zo) = self.st.zone[m.other(r, t)] else { continue };
                let rt = &m.routes[r];
                let arc_free = &self.st.arc_free;
                let router = &mut *self.router;
                dom[t].retain(|&z| {
                    let (a, b) = if rt.from == t { (z, zo) } else { (zo, z) };
                    router.route(a, b, rt.bw, rt.rev_bw, rt.max, arc_free).is_some()
                });
            }
            if dom[t].is_empty() {
                return false;
            }
        }
        let mut changed = true;
        while changed {
            changed = false;
            for t in (0..n).filter(|&t| self.st.zone[t].is_none()) {
                let before = dom[t].len();
                let kept: Vec<usize> = dom[t]
                    .iter()
                    .copied()
                    .filter(|&zt| {
                        m.incident[t].iter().all(|&r| {
                            let o = m.other(r, t);
                            o == t || dom[o].iter().any(|&zo| self.reachable(r, t, zt, zo))
                        })
                    })
                    .collect();
                if kept.is_empty() {
                    return false;
                }
                if kept.len() < before {
                    dom[t] = kept;
                    changed = true;
                }
            }
        }
        true
    }

    fn forward(&mut self, dom: &[Vec<usize>], budget: &mut usize) -> bool {
        let m = self.m;
        // Most constrained first; ties to the one with more placed neighbours, then index.
        let next = (0..m.n()).filter(|&t| self.st.zone[t].is_none()).min_by_key(|&t| {
            let placed = m.incident[t].iter().filter(|&&r| self.st.zone[m.other(r, t)].is_some()).count();
            (dom[t].len(), std::cmp::Reverse(placed), t)
        });
        let Some(t) = next else { return true };
        for h in self.scored_hosts(t) {
            let z = m.p.hosts[h].zone;
            if dom[t].binary_search(&z).is_err() {
                continue;
            }
            if *budget == 0 {
                return false;
            }
            *budget -= 1;
            self.put(t, h);
            if let Some(routed) = self.route_incident(t) {
                let mut narrowed = dom.to_vec();
                narrowed[t] = vec![z];
                let alive = self.consistent(&mut narrowed);
                if alive && self.forward(&narrowed, budget) {
                    return true;
                }
                for r in routed {
                    self.unroute(r);
                }
            }
            self.take(t);
        }
        false
    }

    /// The components in channel order when the channel graph is one simple path (INPUT
    /// chains are), else `None`. Starts from a fixed end when there is one.
    fn path_order(&self) -> Option<Vec<usize>> {
        let m = self.m;
        let n = m.n();
        if n < 2 || m.routes.len() != n - 1 || (0..n).any(|t| m.incident[t].len() > 2) {
            return None;
        }
        let ends: Vec<usize> = (0..n).filter(|&t| m.incident[t].len() == 1).collect();
        let start = ends.iter().copied().find(|&t| m.fixed[t].is_some()).or_else(|| ends.first().copied())?;
        let mut order = vec![start];
        let mut prev_route = usize::MAX;
        let mut cur = start;
        while let Some(&r) = m.incident[cur].iter().find(|&&r| r != prev_route) {
            cur = m.other(r, cur);
            prev_route = r;
            order.push(cur);
            if order.len() > n {
                return None;
            }
        }
        (order.len() == n).then_some(order)
    }

    /// Segment programme for path-shaped chains: cut the path into contiguous segments, one
    /// zone each, a segment fitting the free capacity of its zone's candidate hosts; minimise
    /// the delay between consecutive segments over shortest paths. Each (component, zone)
    /// state keeps up to [`SEGMENT_LABELS`] labels with distinct sets of zones used so far, and
    /// a segment may only enter a zone its label has not used, so two segments never share a
    /// zone's capacity (a zone is visited once). Up to that many of the cheapest complete
    /// labels are built host by host (a zone's free capacity may be split over hosts) and the
    /// best plan kept. Returns false (state untouched) when the chain is not a path or no
    /// label can be built.
    fn segments(&mut self) -> bool {
        let m = self.m;
        let p = m.p;
        let Some(order) = self.path_order() else { return false };
        let n = order.len();
        let r_n = m.res_names.len();
        let mut cap: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for &h in &m.host_list {
            let c = cap.entry(p.hosts[h].zone).or_insert_with(|| vec![0; r_n]);
            for (x, f) in c.iter_mut().zip(&self.st.free[h]) {
                *x += f;
            }
        }
        let route_between = |i: usize| -> Option<usize> {
            m.incident[order[i]].iter().copied().find(|&r| m.other(r, order[i]) == order[i - 1])
        };
        let edge = |i: usize, zp: usize, z: usize| -> f64 {
            let Some(r) = route_between(i) else { return f64::INFINITY };
            let rt = &m.routes[r];
            let d = if rt.from == order[i - 1] { p.zone_delay[zp][z] } else { p.zone_delay[z][zp] };
            if d > rt.max + 1e-9 {
                f64::INFINITY
            } else {
                rt.mult() * d
            }
        };
        // labels[i][k]: segments ending with component order[i] in zone zs[i][k], cheapest first.
        let zs: Vec<&Vec<usize>> = order.iter().map(|&t| &m.zones[t]).collect();
        let mut labels: Vec<Vec<Vec<SegmentLabel>>> = zs.iter().map(|z| vec![Vec::new(); z.len()]).collect();
        let zero = vec![0u64; r_n];
        for i in 0..n {
            for (k, &z) in zs[i].iter().enumerate() {
                let room = if m.fixed[order[i]].is_some() { &zero } else { cap.get(&z).unwrap_or(&zero) };
                let mut used = vec![0u64; r_n];
                // (cost, segment start j, previous zone index, previous label); j = 0 has none.
                let mut offers: Vec<(f64, usize, usize, usize)> = Vec::new();
                let mut cap_cost = f64::INFINITY;
                for j in (0..=i).rev() {
                    if zs[j].binary_search(&z).is_err() {
                        break;
                    }
                    for (u, d) in used.iter_mut().zip(&m.demand[order[j]]) {
                        *u += d;
                    }
                    if used.iter().zip(room).any(|(u, r)| u > r) {
                        break;
                    }
                    if j == 0 {
                        offers.push((0.0, 0, usize::MAX, usize::MAX));
                        continue;
                    }
                    for (kp, &zp) in zs[j - 1].iter().enumerate() {
                        if zp == z {
                            continue;
                        }
                        let e = edge(j, zp, z);
                        if !e.is_finite() {
                            continue;
                        }
                        // One source's labels have distinct zone sets, so its K-th valid offer
                        // caps the cost of the K labels kept: dearer offers cannot be kept.
                        let mut valid = 0;
                        for (li, lab) in labels[j - 1][kp].iter().enumerate() {
                            let cost = lab.cost + e;
                            if cost > cap_cost {
                                break;
                            }
                            if lab.zones.binary_search(&z).is_err() {
                                offers.push((cost, j, kp, li));
                                valid += 1;
                                if valid == SEGMENT_LABELS {
                                    cap_cost = cost;
                                }
                            }
                        }
                    }
                }
                let cheaper = |a: &(f64, usize, usize, usize), b: &(f64, usize, usize, usize)| {
                    a.0.total_cmp(&b.0).then_with(|| (a.1, a.2, a.3).cmp(&(b.1, b.2, b.3)))
                };
                // Only the cheapest offers can become labels: sort a short prefix first, and
                // the rest only when duplicate zone sets leave too few labels.
                let mut sorted = offers.len().min(8 * SEGMENT_LABELS);
                if offers.len() > sorted {
                    offers.select_nth_unstable_by(sorted, cheaper);
                }
                offers[..sorted].sort_by(cheaper);
                let mut kept: Vec<SegmentLabel> = Vec::new();
                for idx in 0..offers.len() {
                    if idx == sorted {
                        offers[idx..].sort_by(cheaper);
                        sorted = offers.len();
                    }
                    let (cost, j, kp, li) = offers[idx];
                    let mut zones = if j == 0 { Vec::new() } else { labels[j - 1][kp][li].zones.clone() };
                    let at = zones.binary_search(&z).unwrap_or_else(|x| x);
                    zones.insert(at, z);
                    // Same zones used, same future: the cheaper label dominates.
                    if kept.iter().any(|l| l.zones == zones) {
                        continue;
                    }
                    kept.push(SegmentLabel { cost, zones, start: j, prev: (kp, li) });
                    if kept.len() == SEGMENT_LABELS {
                        break;
                    }
                }
                labels[i][k] = kept;
            }
        }
        let mut finals: Vec<(f64, usize, usize)> = labels[n - 1]
            .iter()
            .enumerate()
            .flat_map(|(k, ls)| ls.iter().enumerate().map(move |(li, l)| (l.cost, k, li)))
            .collect();
        finals.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| (a.1, a.2).cmp(&(b.1, b.2))));
        finals.truncate(SEGMENT_LABELS);
        let saved = self.st.clone();
        let mut best: Option<(f64, State)> = None;
        for (_, k0, l0) in finals {
            // Walk the labels back into one zone per component.
            let mut zone_of = vec![0usize; n];
            let (mut i, mut k, mut li) = (n - 1, k0, l0);
            loop {
                let lab = &labels[i][k][li];
                for z in zone_of.iter_mut().take(i + 1).skip(lab.start) {
                    *z = zs[i][k];
                }
                if lab.start == 0 {
                    break;
                }
                (k, li) = lab.prev;
                i = lab.start - 1;
            }
            self.st = saved.clone();
            if self.build_in_zones(&order, &zone_of) {
                let obj = self.objective();
                if best.as_ref().is_none_or(|(b, _)| obj < *b) {
                    best = Some((obj, self.st.clone()));
                }
            }
        }
        match best {
            Some((_, st)) => {
                self.st = st;
                true
            }
            None => {
                self.st = saved;
                false
            }
        }
    }

    /// Places `order[i]` in zone `zone_of[i]` (host by host) and routes every channel; false
    /// when a host, a relation or a route does not fit (the state is then partly built).
    fn build_in_zones(&mut self, order: &[usize], zone_of: &[usize]) -> bool {
        let m = self.m;
        for (i, &t) in order.iter().enumerate() {
            if let Some((z, h)) = m.fixed[t] {
                self.st.zone[t] = Some(z);
                self.st.host[t] = h;
                continue;
            }
            match self.pick_in_zone(t, zone_of[i]) {
                Some(h) => self.put(t, h),
                None => return false,
            }
        }
        (0..m.n()).all(|t| self.relations_ok(t)) && (0..m.routes.len()).all(|r| self.route(r))
    }

    fn stuck(&self, t: usize) -> PlaceError {
        let s = &self.m.p.services[self.m.si].service;
        PlaceError::Infeasible {
            reasons: vec![reason(
                ConstraintFamily::Other,
                vec![s.name.clone(), self.m.request.id.clone(), s.components[t].name.clone()],
                format!(
                    "the greedy placer found no candidate host for component {:?} whose capacity, anti-affinity and channel routes (bandwidth, max latency) fit with the components placed before it; the exact chain ILP may still find a placement",
                    s.components[t].name
                ),
            )],
        }
    }

    /// Local search; returns (iterations, improving moves).
    fn improve(&mut self, options: &HeuristicOptions) -> (usize, usize) {
        let m = self.m;
        let movable: Vec<usize> = (0..m.n()).filter(|&t| m.fixed[t].is_none() && !m.cands[t].is_empty()).collect();
        if movable.is_empty() || options.max_iterations == 0 {
            return (0, 0);
        }
        let routed: Vec<usize> = (0..m.routes.len()).collect();
        let mut rng = crate::rng::SplitMix64(options.seed ^ 0x5A17_0000_0000_0001);
        let started = Instant::now();
        let stall_limit = (20 * (movable.len() + m.routes.len())).max(200);
        let (mut it, mut improved, mut stall) = (0usize, 0usize, 0usize);
        while it < options.max_iterations && stall < stall_limit {
            if it % 64 == 0 && options.time_budget.is_some_and(|b| started.elapsed() >= b) {
                break;
            }
            it += 1;
            let kind = rng.below(10);
            let ok = match kind {
                // Move one component.
                0..=3 => {
                    let t = movable[rng.below(movable.len())];
                    let cands = &m.cands[t];
                    let h = if rng.below(2) == 0 {
                        cands[rng.below(cands.len())]
                    } else {
                        // A host a neighbour or another component already uses.
                        let used: Vec<usize> = cands
                            .iter()
                            .copied()
                            .filter(|&h| self.st.count[h] > 0 && Some(h) != self.st.host[t])
                            .collect();
                        if used.is_empty() {
                            cands[rng.below(cands.len())]
                        } else {
                            used[rng.below(used.len())]
                        }
                    };
                    Some(h) != self.st.host[t] && self.try_change(&[(t, Target::Host(h))], &[])
                }
                // Swap two components.
                4 | 5 => {
                    let (a, b) = (movable[rng.below(movable.len())], movable[rng.below(movable.len())]);
                    match (self.st.host[a], self.st.host[b]) {
                        (Some(ha), Some(hb)) if ha != hb && m.cands[a].contains(&hb) && m.cands[b].contains(&ha) => {
                            self.try_change(&[(a, Target::Host(hb)), (b, Target::Host(ha))], &[])
                        }
                        _ => false,
                    }
                }
                // Shift a connected run of components sharing a zone to another zone.
                6 | 7 => {
                    let t = movable[rng.below(movable.len())];
                    let zs = &m.zones[t];
                    let target = zs[rng.below(zs.len())];
                    match self.st.zone[t] {
                        Some(z) if z != target => {
                            let run = self.run_in_zone(t, z);
                            let changes: Vec<(usize, Target)> =
                                run.iter().map(|&c| (c, Target::Zone(target))).collect();
                            self.try_change(&changes, &[])
                        }
                        _ => false,
                    }
                }
                // Merge one used host onto another.
                8 => {
                    let used: Vec<usize> = m.host_list.iter().copied().filter(|&h| self.st.count[h] > 0).collect();
                    if used.len() < 2 {
                        false
                    } else {
                        let (a, b) = (used[rng.below(used.len())], used[rng.below(used.len())]);
                        let on_a: Vec<usize> =
                            movable.iter().copied().filter(|&t| self.st.host[t] == Some(a)).collect();
                        a != b && {
                            let changes: Vec<(usize, Target)> = on_a.iter().map(|&t| (t, Target::Host(b))).collect();
                            self.try_change(&changes, &[])
                        }
                    }
                }
                // Re-route one channel.
                _ if routed.is_empty() => false,
                _ => {
                    let r = routed[rng.below(routed.len())];
                    self.try_change(&[], &[r])
                }
            };
            if ok {
                improved += 1;
                stall = 0;
            } else {
                stall += 1;
            }
        }
        (it, improved)
    }

    /// Non-fixed components connected to `t` through channels, all in zone `z`.
    fn run_in_zone(&self, t: usize, z: usize) -> Vec<usize> {
        let m = self.m;
        let mut seen = BTreeSet::from([t]);
        let mut queue = VecDeque::from([t]);
        while let Some(u) = queue.pop_front() {
            for &r in &m.incident[u] {
                let v = m.other(r, u);
                if m.fixed[v].is_none() && self.st.zone[v] == Some(z) && seen.insert(v) {
                    queue.push_back(v);
                }
            }
        }
        seen.into_iter().collect()
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
        let mut bound = m.combinatorial_bound(residual);
        let mut bound_kind =
            "combinatorial (tree programme of shortest-path delays ignoring capacity; host cover by branch and bound)"
                .to_string();
        let proven = objective - bound <= 1e-9 * objective.abs().max(1.0);
        let want_lp = match options.bound {
            BoundMethod::Combinatorial => false,
            BoundMethod::Lp => true,
            // No solver call when the combinatorial bound already proves the plan optimal.
            BoundMethod::Auto => {
                !proven
                    && estimate_binaries(p, request, residual, options.objective)
                        .is_ok_and(|n| n <= options.lp_bound_max_binaries)
            }
        };
        let mut stats = PlanStats::default();
        if want_lp {
            match lp_relaxation(p, request, residual, options.objective, &options.solver) {
                Ok(lp) if lp.status == SolveStatus::Optimal => {
                    if let Some(v) = lp.objective {
                        if v > bound {
                            bound = v;
                            bound_kind = format!("LP relaxation of the chain ILP ({} columns)", lp.columns);
                        } else {
                            bound_kind = format!(
                                "combinatorial (tree programme of shortest-path delays ignoring capacity; host cover by branch and bound), not below the LP relaxation ({} columns)",
                                lp.columns
                            );
                        }
                    }
                    stats.add(&lp);
                }
                Ok(lp) => stats.add(&lp),
                Err(_) => {}
            }
        }
        let bound = bound.min(objective);
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
            combined.placements.extend(plan.placements.iter().cloned());
            combined.paths.extend(plan.paths.iter().cloned());
            combined.subscriptions.extend(plan.subscriptions.iter().cloned());
            combined.objective += plan.objective;
            bound += plan.bound.unwrap_or(0.0);
            *combined.objective_terms.entry("delay_ms".into()).or_insert(0.0) += plan.term("delay_ms").unwrap_or(0.0);
            combined.stats.seconds += plan.stats.seconds;
            combined.stats.solves += plan.stats.solves;
            placed += 1;
        }
        outcomes.push(ChainOutcome { id: req.id.clone(), result, seconds });
    }
    let hosts: BTreeSet<(&str, &str)> = combined
        .placements
        .iter()
        .filter(|pl| {
            !p.service_index(&pl.service)
                .and_then(|si| p.services[si].service.component(&pl.component))
                .is_some_and(|c| c.user_side)
        })
        .filter_map(|pl| pl.host.as_deref().map(|h| (pl.zone.as_str(), h)))
        .collect();
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
mod tests {
    use super::*;
    use crate::chain::{place_chain_with, place_chains, ChainOptions};
    use crate::testkit::*;
    use zonal_model::{Bandwidth, Bundle, Channel, Demand, Document, Infrastructure, Pin, Service};

    /// `n` zones on a line (1 ms per link) plus a slow shortcut z0–z(n-1) (10 ms); one 4-core
    /// host per zone except z0 (transit); chain ue (pinned z0) → a → b → be (pinned z(n-1)).
    fn line(n: usize, mbps: Option<f64>) -> Bundle {
        let zones = (0..n)
            .map(|i| {
                zone(&format!("z{i}"), 50.0, i as f64, if i == 0 { vec![] } else { vec![host(&format!("h{i}"), 4, 8)] })
            })
            .collect();
        let mut links: Vec<_> =
            (1..n).map(|i| link(&format!("z{}", i - 1), &format!("z{i}"), Some(1.0), mbps)).collect();
        links.push(link("z0", &format!("z{}", n - 1), Some(10.0), mbps));
        let infra = Infrastructure { name: "line".into(), zones, links, ..Default::default() };
        let mut ue = component("ue", 0, 0);
        ue.user_side = true;
        ue.placement.pin = Some(Pin { zone: "z0".into(), host: None });
        let mut be = component("be", 1, 1);
        be.placement.pin = Some(Pin { zone: format!("z{}", n - 1), host: None });
        let ch = |a: &str, b: &str| Channel {
            from: a.into(),
            to: b.into(),
            bandwidth: Some(Bandwidth::from_mbps(10.0)),
            max_latency: None,
        };
        let svc = Service {
            name: "chain".into(),
            components: vec![ue, component("a", 2, 1), component("b", 2, 1), be],
            channels: vec![ch("ue", "a"), ch("a", "b"), ch("b", "be")],
            ..Default::default()
        };
        Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(Demand::default())])
    }

    fn req() -> ChainRequest {
        ChainRequest { id: "s".into(), service: "chain".into(), region: None }
    }

    #[test]
    fn depth_first_fallback_places_what_both_greedy_orders_cannot() {
        // z0–z1–z2–z3, 1 ms a link. a ∈ {z0, z3}, b ∈ {z0, z1}, c ∈ {z2, z3}; a–b and a–c
        // within 3 ms, b–c within 1 ms. The look-ahead ignores b–c (not a tree edge), so the
        // greedy puts a and b on z0, and then c has no zone within 1 ms of b.
        let zones =
            (0..4).map(|i| zone(&format!("z{i}"), 50.0, i as f64, vec![host(&format!("h{i}"), 4, 8)])).collect();
        let links = (1..4).map(|i| link(&format!("z{}", i - 1), &format!("z{i}"), Some(1.0), None)).collect();
        let infra = Infrastructure { name: "line".into(), zones, links, ..Default::default() };
        let comp = |name: &str, allowed: [&str; 2]| {
            let mut c = component(name, 1, 1);
            c.placement.zones = allowed.iter().map(|z| z.to_string()).collect();
            c
        };
        let ch = |a: &str, b: &str, ms: f64| Channel {
            from: a.into(),
            to: b.into(),
            bandwidth: None,
            max_latency: Some(zonal_model::Duration::from_millis(ms)),
        };
        let svc = Service {
            name: "chain".into(),
            components: vec![comp("a", ["z0", "z3"]), comp("b", ["z0", "z1"]), comp("c", ["z2", "z3"])],
            channels: vec![ch("a", "b", 3.0), ch("a", "c", 3.0), ch("b", "c", 1.0)],
            ..Default::default()
        };
        let b = Bundle::new(vec![
            Document::Infrastructure(infra),
            Document::Service(svc),
            Document::Demand(Demand::default()),
        ]);
        let p = problem(&b);
        let residual = Residual::full(&p);
        let plan = place_chain_heuristic(&p, &req(), &residual, &HeuristicOptions::default()).unwrap();
        checked(&p, &plan);
        assert!(plan.notes.iter().any(|n| n.contains("depth-first fallback")), "{:?}", plan.notes);
        let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
        assert!((exact.objective - 4.0).abs() < 1e-9, "{}", exact.objective);
        assert!((plan.objective - exact.objective).abs() < 1e-9, "{} vs {}", plan.objective, exact.objective);
    }

    #[test]
    fn yen_paths_are_distinct_loop_free_and_ordered() {
        let p = problem(&line(5, None));
        let mut router = Router::new(&p, 3);
        let paths = router.k_shortest(0, 4);
        assert_eq!(paths.len(), 2, "a line plus one shortcut has exactly two simple paths");
        assert_eq!(paths[0].zones, vec![0, 1, 2, 3, 4]);
        assert!((paths[0].delay - 4.0).abs() < 1e-9);
        assert_eq!(paths[1].zones, vec![0, 4]);
        for pth in paths {
            let distinct: BTreeSet<_> = pth.zones.iter().collect();
            assert_eq!(distinct.len(), pth.zones.len());
        }
    }

    #[test]
    fn greedy_with_look_ahead_finds_the_delay_optimum_and_matches_the_ilp() {
        let p = problem(&line(5, None));
        let residual = Residual::full(&p);
        let opts = HeuristicOptions { max_iterations: 0, ..Default::default() };
        let plan = place_chain_heuristic(&p, &req(), &residual, &opts).unwrap();
        checked(&p, &plan);
        let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
        assert!(
            (plan.objective - exact.objective).abs() < 1e-9,
            "{} vs {}\n{:#?}",
            plan.objective,
            exact.objective,
            plan.placements
        );
        assert!((plan.objective - 4.0).abs() < 1e-9);
        assert_eq!(plan.gap, Some(0.0), "the look-ahead bound proves it: {:?}", plan.notes);
        assert_eq!(plan.status, PlanStatus::Optimal);
    }

    #[test]
    fn bandwidth_is_reserved_and_forces_the_other_path() {
        // 10 Mbit/s channels on 15 Mbit/s links: a second chain cannot reuse the same arcs.
        let mut b = line(3, Some(15.0));
        for z in &mut infra_mut(&mut b).zones {
            for h in &mut z.hosts {
                h.capacity = res(8, 16);
            }
        }
        let p = problem(&b);
        let reqs: Vec<ChainRequest> = (0..2).map(|i| ChainRequest { id: format!("s{i}"), ..req() }).collect();
        let seq = place_chains_heuristic(&p, &reqs, &HeuristicOptions::default());
        assert!(
            seq.outcomes.iter().all(|o| o.result.is_ok()),
            "{:?}",
            seq.outcomes.iter().map(|o| o.result.as_ref().err()).collect::<Vec<_>>()
        );
        checked(&p, &seq.combined);
        assert!(seq.residual.arc_free.iter().all(|&f| f >= -1e-9));
        let direct: Vec<_> = seq.combined.paths.iter().filter(|pa| pa.zones == ["z0", "z2"]).collect();
        assert_eq!(
            direct.len(),
            1,
            "the second user reaches its chain over the slow direct link: {:#?}",
            seq.combined.paths
        );
    }

    #[test]
    fn used_servers_consolidates_and_never_worse_than_greedy() {
        let p = problem(&line(5, None));
        let residual = Residual::full(&p);
        let base = HeuristicOptions { objective: ChainObjective::UsedServers, ..Default::default() };
        let greedy =
            place_chain_heuristic(&p, &req(), &residual, &HeuristicOptions { max_iterations: 0, ..base.clone() })
                .unwrap();
        let plan = place_chain_heuristic(&p, &req(), &residual, &base).unwrap();
        checked(&p, &plan);
        assert!(plan.objective <= greedy.objective + 1e-9);
        let exact = place_chain_with(
            &p,
            &req(),
            &residual,
            &ChainOptions { objective: ChainObjective::UsedServers, ..Default::default() },
        )
        .unwrap();
        assert!(plan.objective >= exact.objective - 1e-9);
        assert!(plan.bound.unwrap() <= exact.objective + 1e-9);
        // a, b (2 cores each) and be (1 core, pinned to z4): two 4-core hosts at least.
        assert_eq!(plan.term("used_servers"), Some(2.0));
    }

    #[test]
    fn same_input_and_seed_give_the_same_plan() {
        let p = problem(&line(6, Some(25.0)));
        let reqs: Vec<ChainRequest> = (0..4).map(|i| ChainRequest { id: format!("s{i}"), ..req() }).collect();
        let opts =
            HeuristicOptions { objective: ChainObjective::Weighted { delay: 1.0, servers: 0.1 }, ..Default::default() };
        let a = place_chains_heuristic(&p, &reqs, &opts).combined;
        let b = place_chains_heuristic(&p, &reqs, &opts).combined;
        assert_eq!((&a.placements, &a.paths, a.objective), (&b.placements, &b.paths, b.objective));
        checked(&p, &a);
    }

    #[test]
    fn cover_bound_is_integral_and_falls_back_to_the_least_open_bound() {
        // Hosts 0 (weight 100, 4 cores), 1 and 2 (60, 2 cores each); 4 cores needed and one
        // component can only use host 1. Fractional cover: 4 cores at 25 a core = 100; the
        // cheapest real cover is host 1 plus host 2 = 120 (host 1 plus host 0 = 160).
        let free = vec![vec![4.0], vec![2.0], vec![2.0]];
        let weight = vec![100.0, 60.0, 60.0];
        let cand_pos = vec![vec![1], vec![1, 2, 0]];
        let by_ratio = vec![vec![0, 1, 2]];
        let cover =
            CoverSearch { free: &free, need: &[4.0], weight: &weight, cand_pos: &cand_pos, by_ratio: &by_ratio };
        assert!((cover.solve(COVER_BOUND_EXPANSIONS) - 120.0).abs() < 1e-9);
        assert!((cover.solve(0) - 100.0).abs() < 1e-9, "no expansion: the root's fractional bound");
    }

    #[test]
    fn used_servers_cover_bound_proves_a_two_host_plan_without_the_lp() {
        // Line of 6 zones, 4-core hosts; the chain needs 2 + 2 + 1 cores: the back-end's host
        // and one more, so the cover bound (not the fractional one) meets the plan.
        let p = problem(&line(6, None));
        let mut residual = Residual::full(&p);
        // Take a core off the back-end's host, so the fractional cover would buy it cheaply.
        let be_host = p.hosts.iter().position(|h| h.name == "h5").unwrap();
        residual.host_free[be_host] = crate::testkit::res(2, 4);
        let opts = HeuristicOptions { objective: ChainObjective::UsedServers, ..Default::default() };
        let plan = place_chain_heuristic(&p, &req(), &residual, &opts).unwrap();
        checked(&p, &plan);
        let exact = place_chain_with(
            &p,
            &req(),
            &residual,
            &ChainOptions { objective: ChainObjective::UsedServers, ..Default::default() },
        )
        .unwrap();
        assert!((plan.objective - exact.objective).abs() < 1e-6, "{} vs {}", plan.objective, exact.objective);
        assert_eq!(plan.stats.solves, 0, "no LP: {:?}", plan.notes);
        assert_eq!(plan.status, PlanStatus::Optimal, "{:?}", plan.notes);
    }

    #[test]
    fn segment_programme_visits_each_zone_once() {
        // ue (z0) – a – b – c – be (z1); links z0–z1, z1–z2, z0–z3 of 1 ms. b may only use z2.
        // Hosts: z1 2 cores (1 left after the back-end), z2 1 core, z3 4 cores. Without the
        // zone sets the cheapest split is a in z1, b in z2, c in z1 (3 ms), which z1 cannot
        // hold; with each zone used once: a in z3, b in z2, c in z1 (1 + 3 + 1 = 5 ms).
        let zones = vec![
            zone("z0", 50.0, 0.0, vec![]),
            zone("z1", 50.0, 1.0, vec![host("h1", 2, 8)]),
            zone("z2", 50.0, 2.0, vec![host("h2", 1, 8)]),
            zone("z3", 50.0, 3.0, vec![host("h3", 4, 8)]),
        ];
        let links = vec![
            link("z0", "z1", Some(1.0), None),
            link("z1", "z2", Some(1.0), None),
            link("z0", "z3", Some(1.0), None),
        ];
        let infra = Infrastructure { name: "tri".into(), zones, links, ..Default::default() };
        let mut ue = component("ue", 0, 0);
        ue.user_side = true;
        ue.placement.pin = Some(Pin { zone: "z0".into(), host: None });
        let mut be = component("be", 1, 1);
        be.placement.pin = Some(Pin { zone: "z1".into(), host: None });
        let mut b = component("b", 1, 1);
        b.placement.zones = vec!["z2".into()];
        let ch = |x: &str, y: &str| Channel { from: x.into(), to: y.into(), bandwidth: None, max_latency: None };
        let svc = Service {
            name: "chain".into(),
            components: vec![ue, component("a", 1, 1), b, component("c", 1, 1), be],
            channels: vec![ch("ue", "a"), ch("a", "b"), ch("b", "c"), ch("c", "be")],
            ..Default::default()
        };
        let bundle = Bundle::new(vec![
            Document::Infrastructure(infra),
            Document::Service(svc),
            Document::Demand(Demand::default()),
        ]);
        let p = problem(&bundle);
        let residual = Residual::full(&p);
        let request = req();
        let m = Model::new(&p, &request, &residual, ChainObjective::Delay).unwrap();
        let mut router = Router::new(&p, 4);
        let mut search = Search { m: &m, router: &mut router, st: State::empty(&m, &residual), backtracked: false };
        assert!(search.segments(), "the segment programme found no plan");
        assert!((search.objective() - 5.0).abs() < 1e-9, "{}", search.objective());
        let zone_of = |name: &str| {
            let t = p.services[m.si].service.components.iter().position(|c| c.name == name).unwrap();
            p.zones[search.st.zone[t].unwrap()].name.clone()
        };
        assert_eq!((zone_of("a"), zone_of("b"), zone_of("c")), ("z3".into(), "z2".into(), "z1".into()));
        let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
        assert!((exact.objective - 5.0).abs() < 1e-9, "{}", exact.objective);
    }

    /// Interoute with INPUT SC1/SC2 subscriptions: every chain checked, never better than the
    /// exact optimum, bound never above it.
    #[test]
    fn interoute_chains_against_the_ilp() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/topology-zoo");
        let path = dir.join("Interoute.graphml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("skipping: {} is absent", path.display());
            return;
        };
        let (infra, _) = zonal_descriptor::import::import_graphml(
            &text,
            "Interoute.graphml",
            &zonal_descriptor::import::GraphmlOptions::default(),
        )
        .unwrap();
        for (shape, n) in [(&zonal_bench::scenarios::INPUT_CHAINS[0], 6), (&zonal_bench::scenarios::INPUT_CHAINS[1], 2)]
        {
            let services = zonal_bench::scenarios::input_subscriptions(&infra, shape, n, 42).unwrap();
            let mut docs = vec![Document::Infrastructure(infra.clone())];
            docs.extend(services.iter().cloned().map(Document::Service));
            let p = problem(&Bundle::new(docs));
            let reqs: Vec<ChainRequest> = services
                .iter()
                .map(|s| ChainRequest { id: s.name.clone(), service: s.name.clone(), region: None })
                .collect();
            let heur = place_chains_heuristic(&p, &reqs, &HeuristicOptions::default());
            checked(&p, &heur.combined);
            let size = estimate_binaries(&p, &reqs[0], &Residual::full(&p), ChainObjective::Delay).unwrap();
            eprintln!("{}: the chain ILP of the first subscription has {size} binaries", shape.name);
            let exact = place_chains(&p, &reqs, &ChainOptions::default());
            for (h, e) in heur.outcomes.iter().zip(&exact.outcomes) {
                if let (Ok(h), Ok(e)) = (&h.result, &e.result) {
                    // The first chain of both sequences sees the same (full) capacity.
                    if h.subscriptions[0].id == reqs[0].id {
                        assert!(
                            h.objective >= e.objective - 1e-6,
                            "{}: {} < exact {}",
                            shape.name,
                            h.objective,
                            e.objective
                        );
                        assert!(h.bound.unwrap() <= e.objective + 1e-6);
                    }
                    assert!(h.gap.is_some() && h.notes.iter().any(|n| n.starts_with("bound")));
                }
            }
            let ok = heur.outcomes.iter().filter(|o| o.result.is_ok()).count();
            assert_eq!(ok, n, "{}: every subscription fits on Interoute", shape.name);
            eprintln!(
                "{}: heuristic {:.3} (bound {:.3}) vs exact {:.3}",
                shape.name,
                heur.combined.objective,
                heur.combined.bound.unwrap_or(0.0),
                exact.combined.objective
            );
        }
    }
}
