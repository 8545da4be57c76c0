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
//! repeated visit leaves a path through the set `T = {z_i}` that starts at `z_0`, ends at
//! `z_{n-1}` and visits every zone of `T` once, and is no longer. `T` meets the candidate
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
}

#[derive(PartialEq)]
struct Node {
    key: f64,
    g: f64,
    mask: u64,
    last: u8,
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
            .then_with(|| other.mask.cmp(&self.mask))
            .then_with(|| other.last.cmp(&self.last))
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
    pub(super) fn walk_bound(&self, residual: &Residual) -> Option<WalkBound> {
        self.walk_bound_within(residual, WALK_BOUND_EXPANSIONS)
    }

    pub(super) fn walk_bound_within(&self, residual: &Residual, max_expansions: usize) -> Option<WalkBound> {
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
        let h = |z: usize| end_fixed.map_or(0.0, |e| d(z, e));
        let mut heap = BinaryHeap::new();
        let mut best: HashMap<(u64, u8), f64> = HashMap::new();
        for s in 0..u_n {
            if zmask[first] >> s & 1 == 1 {
                let key = h(s);
                if key.is_finite() {
                    best.insert((1u64 << s, s as u8), 0.0);
                    heap.push(Node { key, g: 0.0, mask: 1u64 << s, last: s as u8, done: false });
                }
            }
        }
        let mut expansions = 0usize;
        while let Some(node) = heap.pop() {
            if node.done {
                return Some(WalkBound { delay: mult * node.g, exact: true, expansions });
            }
            let (mask, last) = (node.mask, node.last as usize);
            if best.get(&(mask, node.last)).is_some_and(|&g| g < node.g) {
                continue;
            }
            if expansions == max_expansions {
                return Some(WalkBound { delay: mult * node.key, exact: false, expansions });
            }
            expansions += 1;
            // Complete: close the path at the end zone.
            match end_fixed {
                Some(e) => {
                    let all = mask | 1u64 << e;
                    if covers(all) {
                        let g = node.g + if last == e { 0.0 } else { d(last, e) };
                        heap.push(Node { key: g, g, mask: all, last: e as u8, done: true });
                    }
                }
                None => {
                    if zmask[end_comp] >> last & 1 == 1 && covers(mask) {
                        heap.push(Node { key: node.g, g: node.g, mask, last: last as u8, done: true });
                    }
                }
            }
            for z in 0..u_n {
                if mask >> z & 1 == 1 || end_fixed == Some(z) {
                    continue;
                }
                let g = node.g + d(last, z);
                let key = g + h(z);
                if !key.is_finite() {
                    continue;
                }
                let k = (mask | 1u64 << z, z as u8);
                if best.get(&k).is_some_and(|&b| b <= g) {
                    continue;
                }
                best.insert(k, g);
                heap.push(Node { key, g, mask: k.0, last: k.1, done: false });
            }
        }
        None
    }
}
