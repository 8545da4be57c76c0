//! Subset-sum fill: a bin-centric constructive for heterogeneous instances where one
//! dimension is almost saturated (the openb trace asks for 98 % of the cluster's GPUs).
//!
//! When the tightest ("bottleneck") dimension has nearly no slack, every opened bin must
//! be filled almost exactly in that dimension, which greedy size orders do not achieve with
//! items of awkward sizes (810, 470, 650 milli-GPUs...). This heuristic opens bins one at a
//! time and chooses each bin's content by an exact dynamic programme over the bottleneck:
//!
//! 1. Items are grouped into *types* (equal demand vectors); the bottleneck dimension `k*`
//!    is the tightest one ([`Compiled::bottleneck`]); its demands are counted in units of
//!    their greatest common divisor `g`, so a bin offers `U = ⌊C_k* / g⌋` units.
//! 2. Bins are opened by cost per unit of bottleneck capacity (cheapest first; bins
//!    without bottleneck capacity last, by cost per unit of weighted capacity).
//! 3. For the open bin, a 0/1 knapsack over the remaining item copies with a positive
//!    bottleneck demand finds, for every reachable unit total `s ≤ U`, one representative
//!    set whose load fits the bin in *every* dimension; among sets with the same total it
//!    keeps the one with the smallest (or, with [`Prefer::Heavy`], largest) sum of the
//!    other dimensions' demands relative to the bin's capacity. The largest reachable `s`
//!    is taken. Copies are limited per bottleneck size to what one bin can hold, preferring
//!    the copies the tie-break favours, which bounds the knapsack to `O(U · Σ_sizes U/u)`.
//! 4. The bin's remaining capacity is then filled by decreasing size with items that have
//!    no bottleneck demand, then with any other item that still fits.
//!
//! Deterministic (no randomness; ties by type order, which is by demand vector, and items of
//! a type in index order). Returns `None` when the dynamic programme does not apply:
//! negative demands, no positive bottleneck demand, or more than [`MAX_UNITS`] units.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{Compiled, State};

/// Largest bottleneck capacity, in units of the demands' gcd, the knapsack accepts.
pub const MAX_UNITS: usize = 1 << 14;

/// Which representative the knapsack keeps among sets with the same bottleneck total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Prefer {
    /// The set using the least of the other dimensions: bins opened first (the most
    /// bottleneck capacity per cost) take the items that are light elsewhere, and leave
    /// room for items that need the other dimensions only.
    Light,
    /// The set using the most of the other dimensions (the items hardest to place go first).
    Heavy,
    /// The set whose items' other dimensions are closest to the bin's own proportion,
    /// scaled by the share of those dimensions the bottleneck items need overall: items go
    /// where their mix of resources matches, leaving every bin the same relative room for
    /// the items without bottleneck demand.
    Balanced,
}

/// The order in which bins are opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Opening {
    /// Cheapest per unit of bottleneck capacity first (the bins a small packing uses).
    CostPerUnit,
    /// Most (scarcity-weighted) other capacity per unit of bottleneck capacity first: the
    /// bins that can take the items heavy in the other dimensions are filled while those
    /// items are still there; with almost every bottleneck bin needed anyway (openb), which
    /// items meet which bins matters more than which bins are used.
    RichFirst,
}

struct Type {
    demand: Vec<i64>,
    /// The share of bins with bottleneck capacity that this type does *not* fit when empty.
    rarity: f64,
    /// Bottleneck demand in units of `g`.
    units: usize,
    /// Unplaced items of this type, the lowest index last (taken first).
    items: Vec<usize>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Runs the subset-sum fill (see the module docs).
pub(crate) fn subset_fill(c: &Compiled, prefer: Prefer, opening: Opening) -> Option<State> {
    if c.has_negative || c.n == 0 {
        return None;
    }
    let d = c.d;
    let kb = (0..d).max_by(|&a, &b| c.bottleneck[a].total_cmp(&c.bottleneck[b]).then(b.cmp(&a)))?;
    let g = (0..c.n).map(|i| c.dem[i * d + kb] as u64).filter(|&x| x > 0).fold(0, gcd);
    if g == 0 {
        return None;
    }
    let max_cap = (0..c.m).map(|b| c.cap[b * d + kb]).max().unwrap_or(0).max(0) as u64;
    if (max_cap / g) as usize > MAX_UNITS {
        return None;
    }
    let mut by_demand: BTreeMap<&[i64], Vec<usize>> = BTreeMap::new();
    for i in 0..c.n {
        by_demand.entry(c.item(i)).or_default().push(i);
    }
    let mut types: Vec<Type> = by_demand
        .into_iter()
        .map(|(dem, mut items)| {
            items.reverse();
            Type { demand: dem.to_vec(), rarity: 0.0, units: (dem[kb] as u64 / g) as usize, items }
        })
        .collect();
    let with_kb: Vec<usize> = (0..c.m).filter(|&b| c.cap[b * d + kb] > 0).collect();
    for ty in types.iter_mut() {
        let fits = with_kb.iter().filter(|&&b| (0..d).all(|k| ty.demand[k] <= c.cap[b * d + k])).count();
        ty.rarity = 1.0 - fits as f64 / with_kb.len().max(1) as f64;
    }
    // Decreasing size in the non-bottleneck dimensions (normalised), for the final fill.
    let other_size = |t: &Type| -> f64 { (0..d).map(|k| t.demand[k] as f64 / c.refcap[k]).sum() };
    let mut fill_order: Vec<usize> = (0..types.len()).collect();
    fill_order.sort_by(|&a, &b| {
        (types[a].units > 0)
            .cmp(&(types[b].units > 0))
            .then(other_size(&types[b]).total_cmp(&other_size(&types[a])))
            .then(a.cmp(&b))
    });
    let share = bottleneck_share(c, kb);
    let bin_order = opening_order(c, kb, opening);
    let mut s = State::empty(c);
    let mut left: usize = c.n;
    let mut dp = Knapsack::default();
    for &b in &bin_order {
        if left == 0 {
            break;
        }
        let cap = c.capv(b);
        let chosen = dp.solve(c, &types, b, kb, g, prefer, &share);
        for t in chosen {
            if let Some(i) = types[t].items.pop() {
                s.place(c, i, b);
                left -= 1;
            }
        }
        for &t in &fill_order {
            let ty = &mut types[t];
            while let Some(&i) = ty.items.last() {
                if !(0..d).all(|k| s.load[b * d + k] + ty.demand[k] <= cap[k]) {
                    break;
                }
                ty.items.pop();
                s.place(c, i, b);
                left -= 1;
            }
        }
    }
    Some(s)
}

/// Per dimension, the demand of the items with a bottleneck demand over the capacity of the
/// bins with bottleneck capacity (the share of that dimension the bottleneck items need).
fn bottleneck_share(c: &Compiled, kb: usize) -> Vec<f64> {
    let d = c.d;
    (0..d)
        .map(|k| {
            let dem: f64 = (0..c.n).filter(|&i| c.dem[i * d + kb] > 0).map(|i| c.dem[i * d + k] as f64).sum();
            let cap: f64 = (0..c.m).filter(|&b| c.cap[b * d + kb] > 0).map(|b| c.cap[b * d + k] as f64).sum();
            if cap > 0.0 {
                (dem / cap).min(1.0)
            } else {
                1.0
            }
        })
        .collect()
}

/// Bins by cost per unit of bottleneck capacity, then by weighted capacity of the other
/// dimensions (larger first), then index; bins without bottleneck capacity at the end.
fn opening_order(c: &Compiled, kb: usize, opening: Opening) -> Vec<usize> {
    let d = c.d;
    let per_unit = |b: usize| -> f64 {
        let capk = c.cap[b * d + kb];
        if capk > 0 {
            c.cost[b] / capk as f64
        } else {
            f64::INFINITY
        }
    };
    let rest = |b: usize| -> f64 { (0..d).map(|k| c.scarcity[k] * c.cap[b * d + k] as f64 / c.refcap[k]).sum() };
    let mut order: Vec<usize> = (0..c.m).collect();
    if opening == Opening::RichFirst {
        // Ratios within a factor √2 count as equal (bucket ⌊2 log2 ratio⌋), so that among
        // bins of a similar mix the cheaper per bottleneck unit still opens first.
        let bucket = |b: usize| -> i64 {
            let capk = c.cap[b * d + kb];
            let other: f64 =
                (0..d).filter(|&k| k != kb).map(|k| c.scarcity[k] * c.cap[b * d + k] as f64 / c.refcap[k]).sum();
            if capk > 0 && other > 0.0 {
                -((2.0 * (other / (capk as f64 / c.refcap[kb])).log2()).floor() as i64)
            } else {
                i64::MAX
            }
        };
        order.sort_by(|&a, &b| {
            bucket(a)
                .cmp(&bucket(b))
                .then(per_unit(a).total_cmp(&per_unit(b)))
                .then((c.cost[a] / rest(a).max(1e-12)).total_cmp(&(c.cost[b] / rest(b).max(1e-12))))
                .then(a.cmp(&b))
        });
        return order;
    }
    order.sort_by(|&a, &b| {
        per_unit(a)
            .total_cmp(&per_unit(b))
            .then((c.cost[a] / rest(a).max(1e-12)).total_cmp(&(c.cost[b] / rest(b).max(1e-12))))
            .then(a.cmp(&b))
    });
    order
}

/// Reusable buffers of the per-bin knapsack.
#[derive(Default)]
struct Knapsack {
    reach: Vec<bool>,
    load: Vec<i64>,
    score: Vec<f64>,
    /// `take[j · (U+1) + s]`: copy `j` was added to reach total `s`.
    take: Vec<bool>,
    copies: Vec<usize>,
}

impl Knapsack {
    /// The types (one entry per copy) of the chosen set for empty bin `b`.
    #[allow(clippy::too_many_arguments)]
    fn solve(
        &mut self,
        c: &Compiled,
        types: &[Type],
        b: usize,
        kb: usize,
        g: u64,
        prefer: Prefer,
        share: &[f64],
    ) -> Vec<usize> {
        let d = c.d;
        let cap = c.capv(b);
        let units = (cap[kb].max(0) as u64 / g) as usize;
        // The tie-break key of a type in this bin: its other dimensions relative to the bin.
        let key = |t: &Type| -> f64 {
            let others = (0..d).filter(|&k| k != kb && cap[k] > 0);
            // Items that few bins can take go first, in proportion to what they fill.
            let rare = -t.rarity * t.demand[kb] as f64 / cap[kb] as f64;
            rare + match prefer {
                Prefer::Light => others.map(|k| t.demand[k] as f64 / cap[k] as f64).sum(),
                Prefer::Heavy => -others.map(|k| t.demand[k] as f64 / cap[k] as f64).sum::<f64>(),
                Prefer::Balanced => {
                    let part = t.demand[kb] as f64 / cap[kb] as f64;
                    others.map(|k| (t.demand[k] as f64 / cap[k] as f64 - share[k] * part).abs()).sum()
                }
            }
        };
        // Candidate copies: per bottleneck size, the favoured types first, at most as many
        // copies as one bin holds.
        let mut by_units: BTreeMap<usize, Vec<(f64, usize)>> = BTreeMap::new();
        for (t, ty) in types.iter().enumerate() {
            if ty.units == 0 || ty.units > units || ty.items.is_empty() || !(0..d).all(|k| ty.demand[k] <= cap[k]) {
                continue;
            }
            by_units.entry(ty.units).or_default().push((key(ty), t));
        }
        self.copies.clear();
        for (u, mut ts) in by_units {
            ts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut room = units / u;
            for (_, t) in ts {
                let n = types[t].items.len().min(room);
                self.copies.extend(std::iter::repeat_n(t, n));
                room -= n;
                if room == 0 {
                    break;
                }
            }
        }
        let width = units + 1;
        self.reach.clear();
        self.reach.resize(width, false);
        self.load.clear();
        self.load.resize(width * d, 0);
        self.score.clear();
        self.score.resize(width, 0.0);
        self.take.clear();
        self.take.resize(self.copies.len() * width, false);
        self.reach[0] = true;
        let mut cand = vec![0i64; d];
        for (j, &t) in self.copies.iter().enumerate() {
            let ty = &types[t];
            let u = ty.units;
            let kv = key(ty);
            for s in (u..width).rev() {
                let from = s - u;
                if !self.reach[from] {
                    continue;
                }
                let mut fits = true;
                for k in 0..d {
                    cand[k] = self.load[from * d + k] + ty.demand[k];
                    fits &= cand[k] <= cap[k];
                }
                let sc = self.score[from] + kv;
                if fits && (!self.reach[s] || sc < self.score[s] - 1e-12) {
                    self.reach[s] = true;
                    self.score[s] = sc;
                    self.load[s * d..(s + 1) * d].copy_from_slice(&cand);
                    self.take[j * width + s] = true;
                }
            }
        }
        let Some(mut s) = (0..width).rev().find(|&s| self.reach[s]) else {
            return Vec::new();
        };
        let mut chosen = Vec::new();
        for j in (0..self.copies.len()).rev() {
            if s == 0 {
                break;
            }
            if self.take[j * width + s] {
                let t = self.copies[j];
                chosen.push(t);
                s -= types[t].units;
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{validate, Bin, Instance};

    fn listed(caps: &[[u64; 2]], items: &[[i64; 2]]) -> Compiled {
        let bins = caps.iter().map(|c| Bin::new(c.to_vec())).collect();
        let inst = Instance::listed("t", 2, bins, items.iter().map(|x| x.to_vec()).collect());
        Compiled::new(&inst).unwrap()
    }

    #[test]
    fn fills_the_bottleneck_exactly_where_greedy_does_not() {
        // Dimension 1 is the bottleneck (capacity 10 per bin, demand 20 = two bins full).
        // First fit decreasing packs 5 + 4, 3 + 3 + 3 and needs a third bin for the 2; the
        // knapsack fills the first bin to exactly 10 and the rest fits the second.
        let items = [[1, 5], [1, 4], [1, 3], [1, 3], [1, 3], [1, 2]];
        let c = listed(&[[100, 10], [100, 10], [100, 10]], &items);
        let s = subset_fill(&c, Prefer::Light, Opening::CostPerUnit).unwrap();
        assert_eq!(s.bins_used(), 2);
        assert!(s.assign.iter().all(|&b| b != crate::state::NONE));
    }

    #[test]
    fn respects_every_dimension_and_places_zero_bottleneck_items() {
        // The bin cannot take both bottleneck items (dimension 0 would overflow), and the
        // item without bottleneck demand goes wherever room is left.
        let caps = [[10, 10], [10, 10], [10, 10]];
        let items = [[8, 5], [8, 5], [2, 0], [1, 5]];
        let c = listed(&caps, &items);
        for prefer in [Prefer::Light, Prefer::Heavy] {
            let s = subset_fill(&c, prefer, Opening::RichFirst).unwrap();
            let bins = caps.iter().map(|c| Bin::new(c.to_vec())).collect();
            let inst = Instance::listed("t", 2, bins, items.iter().map(|x| x.to_vec()).collect());
            assert!(validate(&inst, &s.to_solution()).is_ok(), "{prefer:?}");
            assert_eq!(s.bins_used(), 2, "{prefer:?}");
        }
    }

    #[test]
    fn light_takes_the_light_items_first() {
        // Two items of bottleneck size 5 fit the first bin; Light picks the two that use the
        // least of dimension 0, leaving the heavy one for the bin with room for it.
        let c = listed(&[[10, 10], [20, 10]], &[[9, 5], [1, 5], [1, 5]]);
        let s = subset_fill(&c, Prefer::Light, Opening::CostPerUnit).unwrap();
        // Bin 1 is opened first (same cost per bottleneck unit, more other capacity).
        assert_eq!(s.assign[1], s.assign[2]);
        assert_ne!(s.assign[0], s.assign[1]);
    }

    #[test]
    fn declines_negative_demands() {
        let c = listed(&[[10, 10]], &[[1, -1], [1, 5]]);
        assert!(subset_fill(&c, Prefer::Light, Opening::CostPerUnit).is_none());
    }
}
