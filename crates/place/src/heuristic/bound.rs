//! Lower bounds: the combinatorial bound (the tree programme's delay optimum; the used-servers
//! host cover by best-first branch and bound) and, when the chain ILP is small enough, its LP
//! relaxation. See the module docs of [`super`] (# Bound).

use crate::chain::{estimate_binaries, lp_relaxation, Residual};
use crate::plan::PlanStats;
use crate::solver::SolveStatus;

use super::model::Model;
use super::{BoundMethod, HeuristicOptions};

impl Model<'_> {
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

    /// The combinatorial bound and what it is made of: delay — the larger of the tree
    /// programme and the covering walk ([`super::walk`], path-shaped chains); used servers —
    /// the host cover; weighted — their weighted sum.
    /// `objective` is a plan's (`INFINITY` for none): the delay bound stops refining once it
    /// proves that plan.
    pub(super) fn combinatorial_bound(&self, residual: &Residual, objective: f64) -> (f64, String) {
        let mut b = 0.0;
        let mut parts = Vec::new();
        if self.wd > 0.0 {
            let tree = self.delay_bound();
            let enough = if self.ws == 0.0 { objective / self.wd } else { f64::INFINITY };
            match self.walk_bound_within(residual, super::walk::WALK_BOUND_EXPANSIONS, enough) {
                Some(w) if w.delay > tree => {
                    b += self.wd * w.delay;
                    parts.push(format!(
                        "delay: covering walk over candidate zones with capacity{} ({} A* expansions{})",
                        if w.refined { ", refined by contiguous runs or a revisit" } else { "" },
                        w.expansions,
                        if w.exact { "" } else { ", stopped: least open key" }
                    ));
                }
                _ => {
                    b += self.wd * tree;
                    parts.push("delay: tree programme of shortest-path delays ignoring capacity".to_string());
                }
            }
        }
        if self.ws > 0.0 {
            b += self.ws * self.servers_bound(residual);
            parts.push("used servers: host cover by branch and bound".to_string());
        }
        (b, format!("combinatorial ({})", parts.join("; ")))
    }
}

impl Model<'_> {
    /// The lower bound of a plan of objective `objective` found for this chain: the
    /// combinatorial bound, and the LP relaxation of the chain ILP when `options.bound` asks
    /// for it (see [`BoundMethod`]); the larger, capped at `objective`. Returns the bound, what
    /// it is (for the plan's notes) and the statistics of the LP solve, if any.
    pub(super) fn lower_bound(
        &self,
        residual: &Residual,
        options: &HeuristicOptions,
        objective: f64,
    ) -> (f64, String, PlanStats) {
        let (mut bound, mut bound_kind) = self.combinatorial_bound(residual, objective);
        let proven = objective - bound <= 1e-9 * objective.abs().max(1.0);
        let want_lp = match options.bound {
            BoundMethod::Combinatorial => false,
            BoundMethod::Lp => true,
            // No solver call when the combinatorial bound already proves the plan optimal.
            BoundMethod::Auto => {
                !proven
                    && estimate_binaries(self.p, self.request, residual, options.objective)
                        .is_ok_and(|n| n <= options.lp_bound_max_binaries)
            }
        };
        let mut stats = PlanStats::default();
        if want_lp {
            match lp_relaxation(self.p, self.request, residual, options.objective, &options.solver) {
                Ok(lp) if lp.status == SolveStatus::Optimal => {
                    if let Some(v) = lp.objective {
                        if v > bound {
                            bound = v;
                            bound_kind = format!("LP relaxation of the chain ILP ({} columns)", lp.columns);
                        } else {
                            bound_kind = format!("{bound_kind}, not below the LP relaxation ({} columns)", lp.columns);
                        }
                    }
                    stats.add(&lp);
                }
                Ok(lp) => stats.add(&lp),
                Err(_) => {}
            }
        }
        let bound = bound.min(objective);
        (bound, bound_kind, stats)
    }
}

/// Node expansions of the used-servers cover bound before it settles for the least open bound.
pub(super) const COVER_BOUND_EXPANSIONS: usize = 2_000;

/// The used-servers cover problem of [`Model::servers_bound`], over positions in the model's
/// host list.
pub(super) struct CoverSearch<'c> {
    pub(super) free: &'c [Vec<f64>],
    pub(super) need: &'c [f64],
    pub(super) weight: &'c [f64],
    pub(super) cand_pos: &'c [Vec<usize>],
    pub(super) by_ratio: &'c [Vec<usize>],
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

    pub(super) fn solve(&self, max_expansions: usize) -> f64 {
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
