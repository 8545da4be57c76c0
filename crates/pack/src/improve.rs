//! The improvement phase: bin elimination by tabu search with ejections.
//!
//! Phase 1 is cheap: bins are visited from the least filled, and a bin whose items all fit
//! into the other used bins by best fit (no ejections) is emptied; this repeats while it
//! works.
//!
//! Phase 2, starting from that packing, repeatedly tries to **empty one bin**: the
//! bin's items go into a *pool* of unplaced items and the search works on a partial packing
//! that uses one bin fewer, trying to bring the pool back into the remaining bins. It is a
//! simplified form of the consistent neighbourhood search of Buljubašić & Vasquez (2016) for
//! bin packing and vector packing \[EXT\]:
//!
//! 1. **Greedy reinsertion**: pool items, heaviest first, go into the remaining bin where
//!    they fit with the smallest weighted residual (best fit).
//! 2. **Ejection move**: when the pool is not empty, choose a pool item `p`, a bin `b` and a
//!    set `S` of `b`'s items (one item, two items, or the lightest items that together free
//!    enough room) such that `p` fits once `S` leaves; `p` goes in, `S` goes to the pool. The
//!    move minimising `w(S) − w(p)` is taken, even when it makes the pool heavier, where `w`
//!    is the item's weighted normalised size `Σ_k w_k d_k / R_k` with the scarcity weights
//!    (identical bins) or the bottleneck weights (listed bins) (heavy items are hard
//!    to place, so the pool is driven towards light items). Ties are broken at random (seeded).
//! 3. **Tabu**: an item ejected from bin `b` may not re-enter `b` for a random tenure of a few
//!    iterations, which stops the search from undoing its last moves.
//!
//! 4. **Chain move**, tried before each ejection: a pool item `p` takes the place of an
//!    item `j` in bin `b`, and `j` goes to another bin `b2`, directly or in exchange for an
//!    item `l` of `b2` that moves into `b` (64 + 64 bins sampled at random). The pool loses
//!    `p` and gains nothing. It re-balances dimensions that the ejection score does not see
//!    (e.g. moves CPU-heavy GPU pods to CPU-rich nodes in openb) and finds the exact
//!    complements that tight instances (Triplet) need; on a 40-instance Triplet sample it
//!    took the mean ratio to the optimum from 1.150 to 1.096.
//!
//! **Repair.** When listed bins cannot take every item after the constructive phase, the
//! same search (chain moves first, then ejections) runs over *all* bins with the unplaced
//! items as the pool, for half of the remaining budget.
//!
//! An attempt succeeds when the pool is empty: the packing uses one bin fewer and becomes the
//! new best. An attempt fails after a stagnation limit (iterations without a lighter pool);
//! the search then restarts from the best packing with another bin to empty, chosen at random
//! with a bias towards lightly loaded (per unit of cost) bins. The search stops at the time
//! budget, the iteration budget, or when the cost reaches the lower bound (optimal).
//!
//! The search never opens a bin, so with listed bins every success lowers the cost by the
//! emptied bin's cost. Randomness comes only from the given seed; with an iteration budget
//! and no time budget a run is reproducible.

use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::state::{Compiled, State, NONE};

/// Budget and seed of the improvement phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImproveOptions {
    /// Wall-clock budget for the whole phase; `None` = only the iteration budget.
    pub time_limit: Option<Duration>,
    /// Total ejection moves over all attempts.
    pub max_iterations: u64,
    /// Iterations without a lighter pool before an attempt is abandoned.
    pub stagnation: u64,
    pub seed: u64,
}

impl Default for ImproveOptions {
    fn default() -> Self {
        ImproveOptions {
            time_limit: Some(Duration::from_secs(1)),
            max_iterations: 5_000_000,
            stagnation: 3_000,
            seed: 1,
        }
    }
}

/// What the improvement phase did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImproveStats {
    pub attempts: u64,
    pub successes: u64,
    pub iterations: u64,
}

/// The best ejection move seen so far: (pool position, bin, ejected set, its length).
struct BestMove {
    score: f64,
    mv: Option<(usize, usize, [usize; 8], usize)>,
    ties: u32,
}

impl BestMove {
    fn consider(&mut self, score: f64, pi: usize, b: usize, set: &[usize], rng: &mut SmallRng) {
        let take = if score < self.score - 1e-12 {
            self.ties = 1;
            true
        } else if (score - self.score).abs() <= 1e-12 {
            self.ties += 1;
            rng.random_range(0..self.ties) == 0
        } else {
            false
        };
        if take {
            self.score = self.score.min(score);
            let mut arr = [NONE; 8];
            arr[..set.len()].copy_from_slice(set);
            self.mv = Some((pi, b, arr, set.len()));
        }
    }
}

/// How many pool items one ejection move considers at most.
const POOL_SCAN: usize = 8;
/// How many bins one ejection move considers at most (a random sample beyond that).
const BIN_SCAN: usize = 256;

struct Search<'a> {
    c: &'a Compiled,
    s: State,
    pool: Vec<usize>,
    weight: Vec<f64>,
    /// Per item: (bin, iteration until which the item may not enter that bin).
    tabu: Vec<Vec<(usize, u64)>>,
    active: Vec<usize>,
    /// Per-dimension weights of item weights and residuals.
    dimw: Vec<f64>,
    iter: u64,
    rng: SmallRng,
    /// The bin and ejected items of the last move.
    last: Option<(usize, Vec<usize>)>,
}

impl Search<'_> {
    fn is_tabu(&self, i: usize, b: usize) -> bool {
        self.tabu[i].iter().any(|&(tb, until)| tb == b && until > self.iter)
    }

    fn set_tabu(&mut self, i: usize, b: usize, tenure: u64) {
        let now = self.iter;
        let t = &mut self.tabu[i];
        t.retain(|&(_, until)| until > now);
        t.push((b, now + tenure));
    }

    fn pool_weight(&self) -> f64 {
        self.pool.iter().map(|&i| self.weight[i]).sum()
    }

    /// Best-fit reinsertion of pool items, heaviest first.
    fn greedy_insert(&mut self) {
        let c = self.c;
        self.pool.sort_by(|&a, &b| self.weight[b].total_cmp(&self.weight[a]).then(a.cmp(&b)));
        let mut left = Vec::with_capacity(self.pool.len());
        let pool = std::mem::take(&mut self.pool);
        for p in pool {
            let mut best: Option<(f64, usize)> = None;
            for &b in &self.active {
                if self.s.fits(c, p, b) {
                    let it = c.item(p);
                    let r: f64 =
                        (0..c.d).map(|k| self.dimw[k] * (self.s.residual(c, b, k) - it[k]) as f64 / c.refcap[k]).sum();
                    if best.is_none_or(|(bv, _)| r < bv) {
                        best = Some((r, b));
                    }
                }
            }
            match best {
                Some((_, b)) => self.s.place(c, p, b),
                None => left.push(p),
            }
        }
        self.pool = left;
    }

    /// Finds and applies the best ejection move. Returns false when no move exists.
    fn eject_move(&mut self) -> bool {
        let c = self.c;
        let d = c.d;
        let mut best = BestMove { score: f64::INFINITY, mv: None, ties: 0 };
        let mut deficit = vec![0i64; d];
        let mut sorted: Vec<usize> = Vec::new();
        // With a large pool (repair of an incomplete packing), only the heaviest items and a
        // few random ones are tried per move.
        let cand: Vec<usize> = if self.pool.len() <= POOL_SCAN {
            (0..self.pool.len()).collect()
        } else {
            let mut v: Vec<usize> = (0..POOL_SCAN / 2).collect();
            while v.len() < POOL_SCAN {
                let x = self.rng.random_range(POOL_SCAN / 2..self.pool.len());
                if !v.contains(&x) {
                    v.push(x);
                }
            }
            v
        };
        // With many bins, each move looks at a random sample of them.
        let bins: Vec<usize> = if self.active.len() <= BIN_SCAN {
            self.active.clone()
        } else {
            (0..BIN_SCAN).map(|_| self.active[self.rng.random_range(0..self.active.len())]).collect()
        };
        for pi in cand {
            let p = self.pool[pi];
            let it = c.item(p);
            let wp = self.weight[p];
            for &b in &bins {
                if self.is_tabu(p, b) {
                    continue;
                }
                let mut possible = true;
                let mut any = false;
                for k in 0..d {
                    let cap = c.cap[b * d + k];
                    if it[k] > cap && !c.has_negative {
                        possible = false;
                        break;
                    }
                    // Signed: what the bin must shed in dimension k for p to fit (≤ 0 = room).
                    deficit[k] = it[k] - (cap - self.s.load[b * d + k]);
                    any |= deficit[k] > 0;
                }
                if !possible {
                    continue;
                }
                let items = &self.s.bin_items[b];
                if !any {
                    best.consider(-wp - 1e6, pi, b, &[], &mut self.rng);
                    continue;
                }
                let covers = |j: usize| -> bool {
                    let dj = c.item(j);
                    (0..d).all(|k| dj[k] >= deficit[k])
                };
                // Singles.
                for &j in items {
                    let sc = self.weight[j] - wp;
                    if sc < best.score + 1e-12 && covers(j) {
                        best.consider(sc, pi, b, &[j], &mut self.rng);
                    }
                }
                // Pairs.
                for x in 0..items.len() {
                    let a = items[x];
                    let wa = self.weight[a];
                    if wa - wp >= best.score + 1e-12 {
                        continue;
                    }
                    let da = c.item(a);
                    for &bb in &items[x + 1..] {
                        let sc = wa + self.weight[bb] - wp;
                        if sc >= best.score + 1e-12 {
                            continue;
                        }
                        let db = c.item(bb);
                        if (0..d).all(|k| da[k] + db[k] >= deficit[k]) {
                            best.consider(sc, pi, b, &[a, bb], &mut self.rng);
                        }
                    }
                }
                // Greedy cover with the lightest items (up to 8).
                if items.len() > 2 {
                    sorted.clear();
                    sorted.extend_from_slice(items);
                    sorted.sort_by(|&a, &b| self.weight[a].total_cmp(&self.weight[b]));
                    let mut acc = vec![0i64; d];
                    let mut sc = -wp;
                    for (cnt, &j) in sorted.iter().enumerate() {
                        if cnt >= 8 {
                            break;
                        }
                        let dj = c.item(j);
                        if !(0..d).any(|k| acc[k] < deficit[k] && dj[k] > 0) {
                            continue;
                        }
                        for k in 0..d {
                            acc[k] += dj[k];
                        }
                        sc += self.weight[j];
                        if (0..d).all(|k| acc[k] >= deficit[k]) {
                            break;
                        }
                    }
                    if (0..d).all(|k| acc[k] >= deficit[k]) && sc < best.score + 1e-12 {
                        // Recompute the set actually used.
                        let mut set: Vec<usize> = Vec::new();
                        let mut acc2 = vec![0i64; d];
                        for &j in sorted.iter().take(8) {
                            let dj = c.item(j);
                            if !(0..d).any(|k| acc2[k] < deficit[k] && dj[k] > 0) {
                                continue;
                            }
                            for k in 0..d {
                                acc2[k] += dj[k];
                            }
                            set.push(j);
                            if (0..d).all(|k| acc2[k] >= deficit[k]) {
                                break;
                            }
                        }
                        best.consider(sc, pi, b, &set, &mut self.rng);
                    }
                }
            }
        }
        let Some((pi, b, set, len)) = best.mv else {
            return false;
        };
        let p = self.pool.swap_remove(pi);
        for &j in &set[..len] {
            self.s.remove(self.c, j);
            self.pool.push(j);
            let tenure = 3 + self.rng.random_range(0..8);
            self.set_tabu(j, b, tenure);
        }
        self.s.place(self.c, p, b);
        self.last = Some((b, set[..len].to_vec()));
        true
    }

    /// A chain move for repairs: a pool item `p` enters bin `b` in place of an item `j`,
    /// and `j` goes to another bin `b2`, either directly or in exchange for an item `l` of
    /// `b2` that moves into `b`. The pool loses `p` and gains nothing. Bins are sampled.
    /// Returns true when a move was made.
    fn chain_insert(&mut self) -> bool {
        let c = self.c;
        let d = c.d;
        let cand: Vec<usize> = self.pool.iter().copied().take(POOL_SCAN).collect();
        let sample = |rng: &mut SmallRng, active: &[usize], k: usize| -> Vec<usize> {
            if active.len() <= k {
                active.to_vec()
            } else {
                (0..k).map(|_| active[rng.random_range(0..active.len())]).collect()
            }
        };
        let mut after = vec![0i64; d];
        for p in cand {
            let bs = sample(&mut self.rng, &self.active, 64);
            let b2s = sample(&mut self.rng, &self.active, 64);
            let dp = c.item(p);
            for &b in &bs {
                let capb = c.capv(b);
                for x in 0..self.s.bin_items[b].len() {
                    let j = self.s.bin_items[b][x];
                    let dj = c.item(j);
                    for k in 0..d {
                        after[k] = self.s.load[b * d + k] - dj[k] + dp[k];
                    }
                    if (0..d).any(|k| after[k] > capb[k]) {
                        continue;
                    }
                    for &b2 in &b2s {
                        if b2 == b {
                            continue;
                        }
                        let cap2 = c.capv(b2);
                        let l2 = &self.s.load[b2 * d..(b2 + 1) * d];
                        if (0..d).all(|k| l2[k] + dj[k] <= cap2[k]) {
                            self.s.remove(c, j);
                            self.s.place(c, j, b2);
                            self.s.place(c, p, b);
                            self.pool.retain(|&q| q != p);
                            return true;
                        }
                        for y in 0..self.s.bin_items[b2].len() {
                            let l = self.s.bin_items[b2][y];
                            let dl = c.item(l);
                            if (0..d).all(|k| after[k] + dl[k] <= capb[k] && l2[k] - dl[k] + dj[k] <= cap2[k]) {
                                self.s.remove(c, j);
                                self.s.remove(c, l);
                                self.s.place(c, p, b);
                                self.s.place(c, l, b);
                                self.s.place(c, j, b2);
                                self.pool.retain(|&q| q != p);
                                return true;
                            }
                        }
                    }
                }
            }
        }
        false
    }

    /// Greedy reinsertion after an ejection move into bin `b`: only `b` changed, so the items
    /// that were already in the pool can only fit into `b` now; the ejected items are tried
    /// everywhere (best fit). Equivalent to [`Self::greedy_insert`], much cheaper.
    fn insert_after_move(&mut self) {
        let Some((b, ejected)) = self.last.take() else {
            self.greedy_insert();
            return;
        };
        let c = self.c;
        self.pool.sort_by(|&x, &y| self.weight[y].total_cmp(&self.weight[x]).then(x.cmp(&y)));
        let mut i = 0;
        while i < self.pool.len() {
            let p = self.pool[i];
            if !ejected.contains(&p) && self.s.fits(c, p, b) {
                self.s.place(c, p, b);
                self.pool.remove(i);
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.pool.len() {
            let p = self.pool[i];
            if !ejected.contains(&p) {
                i += 1;
                continue;
            }
            let it = c.item(p);
            let mut best: Option<(f64, usize)> = None;
            for &bb in &self.active {
                if self.s.fits(c, p, bb) {
                    let r: f64 =
                        (0..c.d).map(|k| self.dimw[k] * (self.s.residual(c, bb, k) - it[k]) as f64 / c.refcap[k]).sum();
                    if best.is_none_or(|(bv, _)| r < bv) {
                        best = Some((r, bb));
                    }
                }
            }
            match best {
                Some((_, bb)) => {
                    self.s.place(c, p, bb);
                    self.pool.remove(i);
                }
                None => i += 1,
            }
        }
    }
}

/// Item and residual weights: the scarcity weights for identical bins; for listed bins the
/// bottleneck weights, so that the search defragments the tightest dimension (ejecting small
/// pieces of it to make room for large ones).
fn dimension_weights(c: &Compiled) -> Vec<f64> {
    if c.identical {
        c.scarcity.clone()
    } else {
        c.bottleneck.clone()
    }
}

/// Runs the improvement phase from the complete packing `start`. `lb` is a lower bound on
/// the cost (the search stops when it is reached).
pub(crate) fn improve(
    c: &Compiled,
    start: State,
    lb: f64,
    opts: &ImproveOptions,
    started: Instant,
) -> (State, ImproveStats) {
    let mut stats = ImproveStats::default();
    let mut best = start;
    if c.n == 0 {
        return (best, stats);
    }
    let dimw = dimension_weights(c);
    let weight: Vec<f64> = (0..c.n).map(|i| c.weighted_size(i, &dimw)).collect();
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let out_of_time = |stats: &ImproveStats| -> bool {
        stats.iterations >= opts.max_iterations || opts.time_limit.is_some_and(|t| started.elapsed() >= t)
    };
    // Phase 1: empty the least-filled bins by plain best-fit reinsertion of their items into
    // the other used bins, as long as that works (cheap; no ejections).
    loop {
        let mut used: Vec<(f64, usize)> = (0..c.m)
            .filter(|&b| best.used(b))
            .map(|b| (best.bin_items[b].iter().map(|&i| weight[i]).sum::<f64>() / c.cost[b].max(1e-12), b))
            .collect();
        used.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut any = false;
        for &(_, r) in &used {
            if best.cost(c) <= lb + 1e-9 || out_of_time(&stats) {
                break;
            }
            if !best.used(r) {
                continue;
            }
            let mut trial = best.clone();
            let mut items = trial.bin_items[r].clone();
            items.sort_by(|&a, &b| weight[b].total_cmp(&weight[a]).then(a.cmp(&b)));
            let mut ok = true;
            for &i in &items {
                trial.remove(c, i);
            }
            for &i in &items {
                let it = c.item(i);
                let mut bestb: Option<(f64, usize)> = None;
                for b in 0..c.m {
                    if b == r || !trial.used(b) || !trial.fits(c, i, b) {
                        continue;
                    }
                    let res: f64 =
                        (0..c.d).map(|k| dimw[k] * (trial.residual(c, b, k) - it[k]) as f64 / c.refcap[k]).sum();
                    if bestb.is_none_or(|(v, _)| res < v) {
                        bestb = Some((res, b));
                    }
                }
                match bestb {
                    Some((_, b)) => trial.place(c, i, b),
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                best = trial;
                stats.successes += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    while best.cost(c) > lb + 1e-9 && !out_of_time(&stats) {
        stats.attempts += 1;
        // Candidate bins to empty, lightest load per unit cost first.
        let mut used: Vec<(f64, usize)> = (0..c.m)
            .filter(|&b| best.used(b))
            .map(|b| (best.bin_items[b].iter().map(|&i| weight[i]).sum::<f64>() / c.cost[b].max(1e-12), b))
            .collect();
        if used.len() <= 1 {
            break;
        }
        used.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let u: f64 = rng.random();
        let pick = ((u * u * u) * used.len() as f64) as usize;
        let r = used[pick.min(used.len() - 1)].1;
        let mut search = Search {
            c,
            s: best.clone(),
            pool: Vec::new(),
            weight: weight.clone(),
            tabu: vec![Vec::new(); c.n],
            active: used.iter().map(|&(_, b)| b).filter(|&b| b != r).collect(),
            dimw: dimw.clone(),
            iter: 0,
            rng: SmallRng::seed_from_u64(rng.random()),
            last: None,
        };
        let items: Vec<usize> = search.s.bin_items[r].clone();
        for i in items {
            search.s.remove(c, i);
            search.pool.push(i);
        }
        search.greedy_insert();
        let mut best_pool = search.pool_weight();
        let mut since = 0u64;
        while !search.pool.is_empty() && since < opts.stagnation {
            if (stats.iterations & 63 == 0 || !c.identical) && out_of_time(&stats) {
                break;
            }
            stats.iterations += 1;
            search.iter += 1;
            if search.chain_insert() {
                since = 0;
                continue;
            }
            if !search.eject_move() {
                break;
            }
            search.insert_after_move();
            let pw = search.pool_weight();
            if pw < best_pool - 1e-12 {
                best_pool = pw;
                since = 0;
            } else {
                since += 1;
            }
        }
        if search.pool.is_empty() {
            stats.successes += 1;
            best = search.s;
        }
    }
    (best, stats)
}

/// Completes a partial packing with listed bins: the unplaced items form the pool and the
/// same tabu ejection search runs over *all* bins (opening unused ones when needed) until
/// the pool is empty or the budget is spent. Returns the state, complete or not.
pub(crate) fn repair(c: &Compiled, start: State, opts: &ImproveOptions, started: Instant) -> State {
    let dimw = dimension_weights(c);
    let weight: Vec<f64> = (0..c.n).map(|i| c.weighted_size(i, &dimw)).collect();
    let pool: Vec<usize> = (0..c.n).filter(|&i| start.assign[i] == NONE).collect();
    if pool.is_empty() {
        return start;
    }
    let mut search = Search {
        c,
        s: start,
        pool,
        weight,
        tabu: vec![Vec::new(); c.n],
        active: c.open_order.clone(),
        dimw,
        iter: 0,
        rng: SmallRng::seed_from_u64(opts.seed ^ 0x5eed),
        last: None,
    };
    search.greedy_insert();
    let mut n = 0u64;
    while !search.pool.is_empty() && n < opts.max_iterations {
        if opts.time_limit.is_some_and(|t| started.elapsed() >= t) {
            break;
        }
        n += 1;
        search.iter += 1;
        if search.chain_insert() {
            continue;
        }
        if !search.eject_move() {
            break;
        }
        search.insert_after_move();
    }
    search.s
}
