//! The covering-walk delay bound for path-shaped chains (see the module docs of [`super`],
//! # Bound): the least length, in the metric closure of the zone graph, of a walk that starts
//! where the chain's first component may be, ends where its last one may be, and visits a set
//! of zones whose free capacity can hold the chain. Found by A* over (zones visited, last
//! zone) states.
//!
//! # Why it is a lower bound of the chain ILP
//!
//! Take any feasible solution of the chain ILP over the same candidates, and let `z_0 … z_{n-1}`
//! be the zones of the components in path order. Each channel's path runs between the zones of
//! its ends, so its delay is at least the shortest-path delay `D(z_{i-1}, z_i)` (0 when
//! collocated), and the delay objective is at least `m · Σ_i D(z_{i-1}, z_i)` with `m` the
//! least multiplicity of a route (2 for a symmetric pair). That sum is the length of a walk
//! `z_0 → … → z_{n-1}` in the metric closure; by the triangle inequality, shortcutting every
//! repeated visit but the last step leaves a path through the set `T = {z_i}` that starts at
//! `z_0`, visits every zone of `T` once and then steps to `z_{n-1}` (a zone of `T`, perhaps
//! visited before: the walk may come back to end there), and is no longer. `T` meets the candidate
//! zones of every component (each component sits in one of its own), and for every group of
//! components sharing a set `Z` of candidate zones, the components whose candidate zones lie
//! inside `Z` fit, in total, in the free capacity of the candidate hosts of `T ∩ Z` (they sit
//! on such hosts, and the ILP's host-capacity rows hold). So the solution's delay is at least
//! `m ·` the least length of a Hamiltonian path over some set `T` that satisfies these cover
//! conditions, starting in `Z_{first}` and ending in `Z_{last}` — the value this module
//! computes. A* with the admissible, consistent estimate `D(last, end)` (0 for a free end)
//! pops the cheapest complete path first; when it runs out of expansions, the least key left
//! open is still a lower bound (every cheaper completion passes through an open state).
//! Bandwidth, latency bounds, anti-affinity and the split of a zone's capacity over hosts are
//! relaxed, which only lowers the value.
//!
//! # Refinement by the walk's shape
//!
//! Cut the solution's zone sequence into *runs* (maximal stretches of consecutive components
//! in one zone). Either every zone has one run (**contiguous**) or some zone has two
//! (**returning**); the bound is the smaller of a lower bound for each class, taken when it
//! beats the covering walk (so the result is never below it):
//!
//! * *Contiguous*: A* over (zones visited, zone of the current run, first component of the
//!   run). A run `j..=i` may stay in zone `z` while every component in it has `z` among its
//!   candidate zones and their total demand fits the free capacity of `z`'s candidate hosts
//!   (in a contiguous solution a zone holds exactly its one run, so this holds); the next run
//!   starts in a zone not visited yet, at cost `mult_i · D(z, w)` with the route's own
//!   multiplicity, and not at all when `D(z, w)` exceeds the route's max latency (the path
//!   could not meet it). Every contiguous solution is a path of this search costing at most
//!   its delay.
//! * *Returning*: the covering walk again, over run zones (each different from the one
//!   before, zones may repeat), completed only after a repeat; its value is searched only up
//!   to the contiguous value, which caps the minimum anyway.
//!
//! Both searches use the same estimate and, when stopped by the expansion limit, their least
//! open key; the minimum of two valid class bounds bounds every solution.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::chain::Residual;

use super::model::Model;

/// A* expansions of the walk bound before it settles for the least open key.
pub(super) const WALK_BOUND_EXPANSIONS: usize = 200_000;

/// The walk bound of one chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WalkBound {
    /// Delay (multiplicity applied, objective weight not).
    pub(super) delay: f64,
    /// True when the search finished (the relaxation's optimum), false when the least open
    /// key was taken after [`WALK_BOUND_EXPANSIONS`].
    pub(super) exact: bool,
    pub(super) expansions: usize,
    /// The refinement by the walk's shape (contiguous runs, or a revisit) raised it.
    pub(super) refined: bool,
}

#[derive(PartialEq)]
struct Node {
    key: f64,
    g: f64,
    state: State,
    done: bool,
}
impl Eq for Node {}
impl Ord for Node {
    // Smallest key first on a max-heap; ties to complete nodes, then larger g (deeper).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| self.done.cmp(&other.done))
            .then_with(|| self.g.total_cmp(&other.g))
            .then_with(|| other.state.mask.cmp(&self.state.mask))
            .then_with(|| other.state.last.cmp(&self.state.last))
            .then_with(|| other.state.aux.cmp(&self.state.aux))
    }
}
impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Model<'_> {
    /// The components in channel order when the channel graph is one simple path (INPUT
    /// chains are), else `None`. Starts from a fixed end when there is one.
    pub(super) fn path_order(&self) -> Option<Vec<usize>> {
        let n = self.n();
        if n < 2 || self.routes.len() != n - 1 || (0..n).any(|t| self.incident[t].len() > 2) {
            return None;
        }
        let ends: Vec<usize> = (0..n).filter(|&t| self.incident[t].len() == 1).collect();
        let start = ends.iter().copied().find(|&t| self.fixed[t].is_some()).or_else(|| ends.first().copied())?;
        let mut order = vec![start];
        let mut prev_route = usize::MAX;
        let mut cur = start;
        while let Some(&r) = self.incident[cur].iter().find(|&&r| r != prev_route) {
            cur = self.other(r, cur);
            prev_route = r;
            order.push(cur);
            if order.len() > n {
                return None;
            }
        }
        (order.len() == n).then_some(order)
    }

    /// The covering-walk delay bound (see the module docs), or `None` when the chain is not a
    /// path, has more than 64 candidate zones, or the relaxation has no solution at all.
    #[cfg(test)]
    pub(super) fn walk_bound(&self, residual: &Residual) -> Option<WalkBound> {
        self.walk_bound_within(residual, WALK_BOUND_EXPANSIONS, f64::INFINITY)
    }

    /// The covering-walk delay bound with at most `max_expansions` per search, skipping the
    /// refinement when the covering walk already reaches `enough` (a plan's delay it proves).
    pub(super) fn walk_bound_within(
        &self,
        residual: &Residual,
        max_expansions: usize,
        enough: f64,
    ) -> Option<WalkBound> {
        let order = self.path_order()?;
        let p = self.p;
        let n = order.len();
        let mut universe: Vec<usize> = self.zones.iter().flatten().copied().collect();
        universe.sort_unstable();
        universe.dedup();
        let u_n = universe.len();
        if u_n == 0 || u_n > 64 {
            return None;
        }
        let bit = |z: usize| universe.binary_search(&z).ok().map(|i| 1u64 << i);
        let zmask: Vec<u64> =
            (0..n).map(|t| self.zones[t].iter().filter_map(|&z| bit(z)).fold(0, |a, b| a | b)).collect();
        if zmask.contains(&0) {
            return None;
        }
        let mult = self.routes.iter().map(|r| r.mult()).fold(f64::INFINITY, f64::min);
        if !mult.is_finite() {
            return None;
        }
        // Free capacity of the candidate hosts per zone of the universe.
        let r_n = self.res_names.len();
        let mut cap = vec![vec![0.0f64; r_n]; u_n];
        for &h in &self.host_list {
            if let Ok(i) = universe.binary_search(&p.hosts[h].zone) {
                for (ri, name) in self.res_names.iter().enumerate() {
                    cap[i][ri] += residual.host_free[h].get(name) as f64;
                }
            }
        }
        // Cover conditions: every component's zones met; per group of candidate zones (and
        // all zones), the demand of the components confined to it fits.
        let mut must: Vec<u64> = zmask.clone();
        must.sort_unstable();
        must.dedup();
        let placed: Vec<usize> = (0..n).filter(|&t| self.fixed[t].is_none()).collect();
        let mut groups: Vec<u64> = placed.iter().map(|&t| zmask[t]).collect();
        groups.push(if u_n == 64 { u64::MAX } else { (1u64 << u_n) - 1 });
        groups.sort_unstable();
        groups.dedup();
        let need: Vec<(u64, Vec<f64>)> = groups
            .iter()
            .map(|&g| {
                let mut v = vec![0.0; r_n];
                for &t in placed.iter().filter(|&&t| zmask[t] & !g == 0) {
                    for (x, d) in v.iter_mut().zip(&self.demand[t]) {
                        *x += *d as f64;
                    }
                }
                (g, v)
            })
            .filter(|(_, v)| v.iter().any(|&x| x > 0.0))
            .collect();
        let covers = |mask: u64| -> bool {
            if must.iter().any(|&m| m & mask == 0) {
                return false;
            }
            need.iter().all(|(g, v)| {
                let inside = mask & g;
                (0..r_n).all(|ri| {
                    let mut have = 0.0;
                    let mut b = inside;
                    while b != 0 {
                        have += cap[b.trailing_zeros() as usize][ri];
                        b &= b - 1;
                    }
                    have + 1e-9 >= v[ri]
                })
            })
        };
        let d = |a: usize, b: usize| p.zone_delay[universe[a]][universe[b]];
        let (first, end_comp) = (order[0], order[n - 1]);
        let end_fixed: Option<usize> =
            (zmask[end_comp].count_ones() == 1).then(|| zmask[end_comp].trailing_zeros() as usize);
        let h = |z: usize| mult * end_fixed.map_or(0.0, |e| d(z, e));
        let starts: Vec<State> = (0..u_n)
            .filter(|&s| zmask[first] >> s & 1 == 1)
            .map(|s| State { mask: 1u64 << s, last: s as u8, aux: 0 })
            .collect();
        // 1. Covering walk: a path through the visited zones, closed at the end zone.
        let cover = astar(&starts, &h, max_expansions, f64::INFINITY, |st, g, next, done| {
            let (mask, last) = (st.mask, st.last as usize);
            match end_fixed {
                Some(e) => {
                    if covers(mask | 1u64 << e) {
                        done.push(g + if last == e { 0.0 } else { mult * d(last, e) });
                    }
                }
                None => {
                    // The last component may sit in a zone visited before (the walk came
                    // back): shortcutting keeps that final hop, so close at the nearest end
                    // zone already in the set (0 when the walk is in one).
                    let ends = zmask[end_comp] & mask;
                    if ends != 0 && covers(mask) {
                        let mut close = f64::INFINITY;
                        let mut b = ends;
                        while b != 0 {
                            close = close.min(d(last, b.trailing_zeros() as usize));
                            b &= b - 1;
                        }
                        done.push(g + mult * close);
                    }
                }
            }
            for z in 0..u_n {
                if mask >> z & 1 == 0 && end_fixed != Some(z) {
                    next.push((State { mask: mask | 1u64 << z, last: z as u8, aux: 0 }, g + mult * d(last, z)));
                }
            }
        })?;
        if !cover.exact || cover.delay >= enough - 1e-9 * enough.abs().max(1.0) || n > u16::MAX as usize {
            return Some(cover);
        }
        // 2. Refinement by the shape of the walk. A solution either visits every zone in one
        // contiguous run of the chain, or comes back to some zone.
        //
        // Contiguous: runs one zone each, every zone at most once; a run is the components
        // `j..=i`, all with the run's zone among their candidates and together within its
        // free capacity; a move between runs crosses route i → i+1 at its own multiplicity
        // and within its max latency. State (zones visited, run's zone, run start j).
        let route_of: Vec<Option<usize>> = (1..n)
            .map(|i| self.incident[order[i]].iter().copied().find(|&r| self.other(r, order[i]) == order[i - 1]))
            .collect();
        let load_fits = |j: usize, i: usize, z: usize| -> bool {
            (0..r_n).all(|ri| {
                // User-side (fixed) components use no host resources.
                let used: f64 =
                    (j..=i).filter(|&k| self.fixed[order[k]].is_none()).map(|k| self.demand[order[k]][ri] as f64).sum();
                used <= cap[z][ri] + 1e-9
            })
        };
        let contiguous = astar(&starts, &h, max_expansions, f64::INFINITY, |st, g, next, done| {
            let (mask, z, j) = (st.mask, st.last as usize, st.aux as usize);
            for i in j..n {
                if zmask[order[i]] >> z & 1 == 0 || !load_fits(j, i, z) {
                    break;
                }
                if i == n - 1 {
                    done.push(g);
                    break;
                }
                let Some(r) = route_of[i] else { break };
                let rt = &self.routes[r];
                for w in 0..u_n {
                    if mask >> w & 1 == 1 || zmask[order[i + 1]] >> w & 1 == 0 {
                        continue;
                    }
                    let dz = if rt.from == order[i] { d(z, w) } else { d(w, z) };
                    if dz > rt.max + 1e-9 {
                        continue;
                    }
                    next.push((
                        State { mask: mask | 1u64 << w, last: w as u8, aux: (i + 1) as u16 },
                        g + rt.mult() * dz,
                    ));
                }
            }
        });
        let contiguous_value = contiguous.map_or(f64::INFINITY, |c| c.delay);
        // Returning: runs may revisit a zone (each run in a zone other than the one before);
        // at least one revisit; the visited zones cover as above. Only searched below the
        // contiguous value, which caps the bound anyway.
        let revisit = astar(&starts, &h, max_expansions, contiguous_value, |st, g, next, done| {
            let (mask, last, back) = (st.mask, st.last as usize, st.aux);
            if back == 1 && zmask[end_comp] >> last & 1 == 1 && covers(mask) {
                done.push(g);
            }
            for z in 0..u_n {
                if z != last {
                    let again = u16::from(mask >> z & 1 == 1) | back;
                    next.push((State { mask: mask | 1u64 << z, last: z as u8, aux: again }, g + mult * d(last, z)));
                }
            }
        });
        let revisit_value = revisit.map_or(f64::INFINITY, |r| r.delay);
        let refined = contiguous_value.min(revisit_value);
        let expansions =
            cover.expansions + contiguous.map_or(0, |c| c.expansions) + revisit.map_or(0, |r| r.expansions);
        if refined.is_finite() && refined > cover.delay {
            // A revisit search stopped at the contiguous value does not lower the minimum.
            let exact =
                contiguous.is_none_or(|c| c.exact) && revisit.is_none_or(|r| r.exact || r.delay >= contiguous_value);
            return Some(WalkBound { delay: refined, exact, expansions, refined: true });
        }
        Some(WalkBound { expansions, ..cover })
    }
}

/// A state of the walk searches: zones visited, the current zone and one more number (unused;
/// the contiguous run's start; whether a zone was revisited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct State {
    mask: u64,
    last: u8,
    aux: u16,
}

/// A* from `starts` with the estimate `h` (of the current zone; admissible and consistent),
/// `expand` giving a state's successors with their costs and the costs of completing it.
/// Returns the cheapest completion (exact), or the least open key after `max_expansions` or
/// once it reaches `cutoff` (not exact; with a cutoff, the value is at least the cutoff), or
/// `None` when nothing completes.
fn astar(
    starts: &[State],
    h: &dyn Fn(usize) -> f64,
    max_expansions: usize,
    cutoff: f64,
    mut expand: impl FnMut(State, f64, &mut Vec<(State, f64)>, &mut Vec<f64>),
) -> Option<WalkBound> {
    let mut heap = BinaryHeap::new();
    let mut best: HashMap<State, f64> = HashMap::new();
    for &st in starts {
        let key = h(st.last as usize);
        if key.is_finite() {
            best.insert(st, 0.0);
            heap.push(Node { key, g: 0.0, state: st, done: false });
        }
    }
    let mut expansions = 0usize;
    let (mut next, mut done) = (Vec::new(), Vec::new());
    while let Some(node) = heap.pop() {
        if node.done {
            return Some(WalkBound { delay: node.g, exact: true, expansions, refined: false });
        }
        if best.get(&node.state).is_some_and(|&g| g < node.g) {
            continue;
        }
        if expansions == max_expansions || node.key >= cutoff {
            return Some(WalkBound { delay: node.key, exact: false, expansions, refined: false });
        }
        expansions += 1;
        next.clear();
        done.clear();
        expand(node.state, node.g, &mut next, &mut done);
        for &g in &done {
            heap.push(Node { key: g, g, state: node.state, done: true });
        }
        for &(st, g) in &next {
            let key = g + h(st.last as usize);
            if !key.is_finite() || best.get(&st).is_some_and(|&b| b <= g) {
                continue;
            }
            best.insert(st, g);
            heap.push(Node { key, g, state: st, done: false });
        }
    }
    None
}
