//! Lower bounds on the cost of any packing.
//!
//! For **identical bins** (cost = number of bins), with effective capacities `C_k`:
//!
//! * **Volume bound** `L_vol = max_k ⌈Σ_i d_ik / C_k⌉`: each bin holds at most `C_k` of
//!   dimension `k`.
//! * **Martello–Toth `L2` per dimension** \[EXT\] (Martello & Toth 1990): projecting onto one
//!   dimension gives a 1-D bin packing relaxation; for each `α ∈ {0} ∪ {d_ik ≤ C_k/2}`, items
//!   larger than `C_k − α` (J1) and those in `(C_k/2, C_k − α]` (J2) each need their own bin,
//!   and items in `[α, C_k/2]` (J3) can only use what J2 leaves free:
//!   `L(α) = |J1| + |J2| + max(0, ⌈(Σ_{J3} d − (|J2| C_k − Σ_{J2} d)) / C_k⌉)`.
//!   `L2 = max_k max_α L(α)` dominates the volume bound of each dimension.
//! * **Conflict clique bound**: items `i`, `j` *conflict* when `d_ik + d_jk > C_k` in some
//!   dimension, so pairwise-conflicting items need distinct bins. A greedy clique (items taken
//!   in decreasing size under several keys, each kept if it conflicts with every item kept so
//!   far) gives `L_clique`. This catches vector effects that no 1-D projection sees (an item
//!   large in memory and one large in CPU that cannot share).
//!
//! For **listed bins** with unit cost: `L = max_k min{t : the t largest C_k sum to ≥ Σ_i
//! d_ik}` (any t bins hold at most the t largest capacities). With general costs: per
//! dimension, the fractional knapsack of covering `Σ_i d_ik` with bins sorted by cost per unit
//! of capacity, and at least the cheapest bin fitting the item whose cheapest bin is dearest.
//!
//! The reported lower bound is the maximum of the bounds that apply.

use serde::{Deserialize, Serialize};

use crate::heuristics::SizeKey;
use crate::instance::{Instance, InstanceError};
use crate::state::Compiled;

/// The lower bounds computed for an instance, in cost units (bins when costs are 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LowerBounds {
    pub volume: f64,
    /// Martello–Toth L2 (identical bins only; 0 otherwise).
    pub l2: f64,
    /// Greedy conflict clique (identical bins only; 0 otherwise).
    pub clique: f64,
    /// The maximum of the above.
    pub best: f64,
}

/// Computes the lower bounds of `instance`.
pub fn lower_bounds(instance: &Instance) -> Result<LowerBounds, InstanceError> {
    let c = Compiled::new(instance)?;
    Ok(compiled_bounds(&c))
}

pub(crate) fn compiled_bounds(c: &Compiled) -> LowerBounds {
    if c.n == 0 {
        return LowerBounds { volume: 0.0, l2: 0.0, clique: 0.0, best: 0.0 };
    }
    if c.identical {
        let cap = c.capv(0).to_vec();
        let mut volume = 0u64;
        let mut l2 = 0u64;
        for k in 0..c.d {
            let total: i128 = (0..c.n).map(|i| c.dem[i * c.d + k] as i128).sum();
            if cap[k] <= 0 || total <= 0 {
                continue;
            }
            volume = volume.max((total as u128).div_ceil(cap[k] as u128) as u64);
            if !c.has_negative {
                let vals: Vec<u64> = (0..c.n).map(|i| c.dem[i * c.d + k] as u64).collect();
                l2 = l2.max(martello_toth_l2(&vals, cap[k] as u64));
            }
        }
        // The clique bound assumes that two conflicting items can never share a bin, which a
        // negative third item could contradict.
        let clique = if c.has_negative { 0 } else { conflict_clique(c) as u64 };
        let best = volume.max(l2).max(clique).max(1);
        LowerBounds { volume: volume as f64, l2: l2 as f64, clique: clique as f64, best: best as f64 }
    } else {
        let unit = c.cost.windows(2).all(|w| w[0] == w[1]);
        let unit_cost = c.cost.first().copied().unwrap_or(1.0);
        let mut volume = 0.0f64;
        for k in 0..c.d {
            let total: i128 = (0..c.n).map(|i| c.dem[i * c.d + k] as i128).sum();
            if total <= 0 {
                continue;
            }
            let total = total as u128;
            let mut bins: Vec<usize> = (0..c.m).filter(|&b| c.cap[b * c.d + k] > 0).collect();
            if unit {
                bins.sort_by(|&a, &b| c.cap[b * c.d + k].cmp(&c.cap[a * c.d + k]));
                let mut acc = 0u128;
                let mut t = 0usize;
                for &b in &bins {
                    if acc >= total {
                        break;
                    }
                    acc += c.cap[b * c.d + k] as u128;
                    t += 1;
                }
                volume = volume.max(t as f64 * unit_cost);
            } else {
                bins.sort_by(|&a, &b| {
                    (c.cost[a] / c.cap[a * c.d + k] as f64).total_cmp(&(c.cost[b] / c.cap[b * c.d + k] as f64))
                });
                let mut left = total as f64;
                let mut cost = 0.0;
                for &b in &bins {
                    if left <= 0.0 {
                        break;
                    }
                    let capb = c.cap[b * c.d + k] as f64;
                    let take = left.min(capb);
                    cost += c.cost[b] * take / capb;
                    left -= take;
                }
                volume = volume.max(cost);
            }
        }
        // Every item needs some bin: the dearest "cheapest bin that fits".
        let single = (0..c.n)
            .map(|i| (0..c.m).filter(|&b| c.fits_empty(i, b)).map(|b| c.cost[b]).fold(f64::INFINITY, f64::min))
            .fold(0.0, f64::max);
        let volume = volume.max(if single.is_finite() { single } else { 0.0 });
        LowerBounds { volume, l2: 0.0, clique: 0.0, best: volume }
    }
}

/// Martello–Toth L2 for one dimension with values `vals` and capacity `cap`.
pub(crate) fn martello_toth_l2(vals: &[u64], cap: u64) -> u64 {
    let mut v: Vec<u64> = vals.to_vec();
    v.sort_unstable();
    let n = v.len();
    let mut prefix = vec![0u128; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + v[i] as u128;
    }
    // count of values <= x, and sum of those.
    let upto = |x: u64| -> usize { v.partition_point(|&y| y <= x) };
    let half = cap / 2; // values <= half are "small" (2v <= cap)
    let mut alphas: Vec<u64> = v.iter().copied().filter(|&x| 2 * x <= cap).collect();
    alphas.dedup();
    alphas.insert(0, 0);
    let mut best = 0u64;
    for &a in &alphas {
        // J1: v > cap - a ; J2: half < v <= cap - a (i.e. 2v > cap) ; J3: a <= v and 2v <= cap
        let n_le_half = upto(half);
        let n_le_capa = upto(cap - a);
        let j1 = n - n_le_capa;
        let j2 = n_le_capa - n_le_half;
        let sum_j2 = prefix[n_le_capa] - prefix[n_le_half];
        let lo = v.partition_point(|&y| y < a);
        let sum_j3 = prefix[n_le_half] - prefix[lo];
        let free = (j2 as u128) * cap as u128 - sum_j2;
        let extra = if sum_j3 > free { (sum_j3 - free).div_ceil(cap as u128) as u64 } else { 0 };
        best = best.max((j1 + j2) as u64 + extra);
    }
    best
}

fn conflicts(c: &Compiled, i: usize, j: usize) -> bool {
    let (a, b) = (c.item(i), c.item(j));
    let cap = c.capv(0);
    (0..c.d).any(|k| a[k] + b[k] > cap[k])
}

/// Largest greedy clique of pairwise-conflicting items over several orders.
fn conflict_clique(c: &Compiled) -> usize {
    let w = vec![1.0; c.d];
    let mut best = 0;
    let mut orders: Vec<Vec<usize>> = Vec::new();
    for key in [SizeKey::Max, SizeKey::Sum, SizeKey::L2] {
        orders.push(crate::heuristics::order(c, key, &w));
    }
    // Also per-dimension orders: items large in dimension k.
    for k in 0..c.d {
        let mut idx: Vec<usize> = (0..c.n).collect();
        idx.sort_by(|&a, &b| c.dem[b * c.d + k].cmp(&c.dem[a * c.d + k]).then(a.cmp(&b)));
        orders.push(idx);
    }
    for ord in orders {
        let mut clique: Vec<usize> = Vec::new();
        for &i in &ord {
            if clique.iter().all(|&j| conflicts(c, i, j)) {
                clique.push(i);
            }
        }
        best = best.max(clique.len());
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::Bin;

    #[test]
    fn volume_bound() {
        let inst = Instance::identical("t", vec![10, 10], vec![vec![6, 1], vec![6, 1], vec![1, 1]]);
        let lb = lower_bounds(&inst).unwrap();
        assert_eq!(lb.volume, 2.0);
        assert_eq!(lb.best, 2.0);
    }

    #[test]
    fn l2_counts_big_items() {
        // Three items of 6 into 10: volume 2, L2 3.
        assert_eq!(martello_toth_l2(&[6, 6, 6], 10), 3);
        // 6,6 and four 3s: J2 = {6,6} leaves 8 free, J3 (α=3) = 12 → 1 more bin.
        assert_eq!(martello_toth_l2(&[6, 6, 3, 3, 3, 3], 10), 3);
        assert_eq!(martello_toth_l2(&[5, 5, 5, 5], 10), 2);
    }

    #[test]
    fn clique_sees_vector_conflicts() {
        // Each item is big in a different dimension pair: no 1-D projection has two > C/2
        // items... but every pair conflicts somewhere.
        let inst = Instance::identical("t", vec![10, 10, 10], vec![vec![6, 6, 0], vec![0, 6, 6], vec![6, 0, 6]]);
        let lb = lower_bounds(&inst).unwrap();
        assert_eq!(lb.clique, 3.0);
        assert_eq!(lb.best, 3.0);
    }

    #[test]
    fn listed_bound_uses_largest_bins() {
        let bins = vec![Bin::new(vec![10]), Bin::new(vec![4]), Bin::new(vec![4]), Bin::new(vec![8])];
        let inst = Instance::listed("t", 1, bins, vec![vec![5], vec![5], vec![5], vec![1]]);
        assert_eq!(lower_bounds(&inst).unwrap().best, 2.0);
    }
}
