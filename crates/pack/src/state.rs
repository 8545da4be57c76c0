//! The compiled form of an [`Instance`] (flat arrays, effective capacities, normalisation)
//! and a mutable packing state shared by the constructive and improvement phases.

use crate::instance::{BinSupply, Instance, InstanceError, Solution};

/// Flat, effective-capacity form of an instance.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub d: usize,
    pub n: usize,
    pub m: usize,
    /// `n × d` demands.
    pub dem: Vec<i64>,
    /// `m × d` effective capacities.
    pub cap: Vec<i64>,
    pub cost: Vec<f64>,
    /// Per-dimension reference capacity used to normalise sizes: the largest effective
    /// capacity over all bins (the capacity itself for identical bins); 1 when no bin has any.
    pub refcap: Vec<f64>,
    /// Per-dimension scarcity weights: the normalised total demand of the dimension, scaled
    /// to a mean of 1 (all 1 when there is no demand).
    pub scarcity: Vec<f64>,
    /// Per-dimension bottleneck weights: `(t_k / max_k t_k)^8` where `t_k` is the dimension's
    /// tightness (total demand over total capacity for listed bins, total normalised demand
    /// for identical bins), so that the tightest dimension dominates every size and fit
    /// measure.
    pub bottleneck: Vec<f64>,
    pub identical: bool,
    /// True when some demand is negative (benchmark instances only).
    pub has_negative: bool,
    /// The order in which bins are opened: identical bins by index; listed bins by cost per
    /// unit of scarcity-weighted capacity, cheapest first (ties by index).
    pub open_order: Vec<usize>,
}

impl Compiled {
    pub fn new(inst: &Instance) -> Result<Compiled, InstanceError> {
        inst.check()?;
        let d = inst.dims;
        let n = inst.items.len();
        let m = inst.bin_count();
        let mut dem = Vec::with_capacity(n * d);
        for it in &inst.items {
            dem.extend_from_slice(it);
        }
        let mut cap = Vec::with_capacity(m * d);
        let mut cost = Vec::with_capacity(m);
        match &inst.bins {
            BinSupply::Identical { .. } => {
                let c = inst.capacity(0);
                for _ in 0..m {
                    cap.extend(c.iter().map(|&x| x.min(i64::MAX as u64) as i64));
                }
                cost.resize(m, 1.0);
            }
            BinSupply::Listed(_) => {
                for b in 0..m {
                    cap.extend(inst.capacity(b).iter().map(|&x| x.min(i64::MAX as u64) as i64));
                    cost.push(inst.cost(b));
                }
            }
        }
        if inst.items.iter().flatten().any(|&x| x == i64::MIN) {
            return Err(InstanceError::ItemFitsNowhere { item: 0 });
        }
        let mut refcap = vec![0.0f64; d];
        for b in 0..m {
            for k in 0..d {
                refcap[k] = refcap[k].max(cap[b * d + k] as f64);
            }
        }
        for r in refcap.iter_mut() {
            if *r <= 0.0 {
                *r = 1.0;
            }
        }
        let mut tot = vec![0.0f64; d];
        for i in 0..n {
            for k in 0..d {
                tot[k] += dem[i * d + k] as f64 / refcap[k];
            }
        }
        let s: f64 = tot.iter().sum();
        let scarcity: Vec<f64> = if s > 0.0 { tot.iter().map(|t| t / s * d as f64).collect() } else { vec![1.0; d] };
        let identical = matches!(inst.bins, BinSupply::Identical { .. });
        let tight: Vec<f64> = if identical {
            tot.clone()
        } else {
            (0..d)
                .map(|k| {
                    let capk: f64 = (0..m).map(|b| cap[b * d + k] as f64).sum();
                    let demk: f64 = (0..n).map(|i| dem[i * d + k] as f64).sum();
                    if capk > 0.0 {
                        demk.max(0.0) / capk
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let tmax = tight.iter().copied().fold(0.0, f64::max);
        let bottleneck: Vec<f64> =
            if tmax > 0.0 { tight.iter().map(|t| (t / tmax).powi(8).max(1e-6)).collect() } else { vec![1.0; d] };
        let mut open_order: Vec<usize> = (0..m).collect();
        if !identical {
            let value = |b: usize| -> f64 {
                let w: f64 = (0..d).map(|k| scarcity[k] * cap[b * d + k] as f64 / refcap[k]).sum();
                if w <= 0.0 {
                    f64::INFINITY
                } else {
                    cost[b] / w
                }
            };
            let vals: Vec<f64> = (0..m).map(value).collect();
            open_order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]).then(a.cmp(&b)));
        }
        let has_negative = dem.iter().any(|&x| x < 0);
        let c = Compiled { d, n, m, dem, cap, cost, refcap, scarcity, bottleneck, identical, has_negative, open_order };
        for i in 0..n {
            if !(0..m).any(|b| c.fits_empty(i, b)) {
                return Err(InstanceError::ItemFitsNowhere { item: i });
            }
        }
        Ok(c)
    }

    #[inline]
    pub fn item(&self, i: usize) -> &[i64] {
        &self.dem[i * self.d..(i + 1) * self.d]
    }
    #[inline]
    pub fn capv(&self, b: usize) -> &[i64] {
        &self.cap[b * self.d..(b + 1) * self.d]
    }
    pub fn fits_empty(&self, i: usize, b: usize) -> bool {
        self.item(i).iter().zip(self.capv(b)).all(|(x, c)| x <= c)
    }
    /// `Σ_k w_k d_ik / R_k`.
    pub fn weighted_size(&self, i: usize, w: &[f64]) -> f64 {
        self.item(i).iter().enumerate().map(|(k, &x)| w[k] * x as f64 / self.refcap[k]).sum()
    }
}

/// A (possibly partial) packing.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub d: usize,
    /// `m × d` loads.
    pub load: Vec<i64>,
    pub bin_items: Vec<Vec<usize>>,
    /// Bin of each item, `NONE` when unplaced.
    pub assign: Vec<usize>,
}

pub(crate) const NONE: usize = usize::MAX;

impl State {
    pub fn empty(c: &Compiled) -> State {
        State { d: c.d, load: vec![0; c.m * c.d], bin_items: vec![Vec::new(); c.m], assign: vec![NONE; c.n] }
    }

    #[inline]
    pub fn fits(&self, c: &Compiled, i: usize, b: usize) -> bool {
        let d = self.d;
        let l = &self.load[b * d..(b + 1) * d];
        let cap = c.capv(b);
        let it = c.item(i);
        (0..d).all(|k| l[k] + it[k] <= cap[k])
    }

    #[inline]
    pub fn residual(&self, c: &Compiled, b: usize, k: usize) -> i64 {
        c.cap[b * self.d + k] - self.load[b * self.d + k]
    }

    pub fn place(&mut self, c: &Compiled, i: usize, b: usize) {
        debug_assert_eq!(self.assign[i], NONE);
        let d = self.d;
        for k in 0..d {
            self.load[b * d + k] += c.dem[i * d + k];
        }
        self.bin_items[b].push(i);
        self.assign[i] = b;
    }

    pub fn remove(&mut self, c: &Compiled, i: usize) {
        let b = self.assign[i];
        debug_assert_ne!(b, NONE);
        let d = self.d;
        for k in 0..d {
            self.load[b * d + k] -= c.dem[i * d + k];
        }
        let pos = self.bin_items[b].iter().position(|&x| x == i).expect("item in its bin");
        self.bin_items[b].swap_remove(pos);
        self.assign[i] = NONE;
    }

    pub fn used(&self, b: usize) -> bool {
        !self.bin_items[b].is_empty()
    }

    pub fn cost(&self, c: &Compiled) -> f64 {
        (0..c.m).filter(|&b| self.used(b)).map(|b| c.cost[b]).sum()
    }

    pub fn bins_used(&self) -> usize {
        self.bin_items.iter().filter(|v| !v.is_empty()).count()
    }

    #[allow(dead_code)]
    pub fn to_solution(&self) -> Solution {
        debug_assert!(self.assign.iter().all(|&b| b != NONE));
        Solution { assignment: self.assign.clone() }
    }
}
