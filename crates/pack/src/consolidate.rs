//! Consolidation of running instances onto fewer hosts (INPUT §IV.3, OPERA §4.2.3).
//!
//! **Input**: hosts (capacity vector, power model, available flag, optional target
//! utilisation), instances (demand vector, current host, memory size, pinned flag), a
//! migration budget and cost weights. **Output**: a [`ConsolidationPlan`] with the target
//! assignment, energy before/after, the moves, the hosts emptied (to suspend, IN-18) and an
//! ordered migration plan (see [`crate::migration`]) that [`check_plan`] verifies.
//!
//! Modelling choices:
//!
//! * **Power.** A host is *on* exactly when it runs at least one instance; hosts that are
//!   empty in the current state are taken to be suspended already. An on host draws
//!   `idle + (max − idle) · u` watts (the model's [`zonal_model::PowerModel`]), with
//!   `u` clamped to `[0, 1]` and measured against the *physical* capacity.
//! * **Utilisation `u`** is, by default, the **CPU** utilisation (the dimension named `cpu`;
//!   [`Utilisation::Dimension`]). Server power curves (SPECpower and the linear model of Fan
//!   et al. 2007) are measured against CPU load; memory and GPU *reservations* do not draw
//!   power in proportion. A consequence worth knowing: on identical hosts the dynamic term
//!   sums to the same total wherever instances go, so energy is saved only by switching hosts
//!   off, and on heterogeneous hosts also by moving load to hosts with a smaller
//!   `(max − idle) / capacity`. [`Utilisation::MaxOverDimensions`] (the bottleneck
//!   dimension) is available for operators who prefer it, and is used when no `cpu` dimension
//!   exists.
//! * **Objective** (OPERA's unspecified cost, INPUT IN-17): `J(a) = P(a) + Σ_{i moved}
//!   (λ_move + λ_GiB · mem_i / 2^30)`, in watts; `λ` converts a migration into the power it
//!   is worth saving for it (e.g. the energy of migrating amortised over the consolidation
//!   period). Moves are counted against the current assignment: an instance whose target is
//!   its current host costs nothing. The current assignment has `J = P(current)`, and a
//!   plan is returned only when it is strictly better; otherwise the plan is empty (OP-20).
//! * **Budget**: at most `max_moves` migrations and `max_bytes` of memory moved, counting
//!   the temporary stops of the migration order.
//! * **Target utilisation** (IN-16): hosts that *receive* instances must stay within
//!   `target × capacity` in every dimension in the final state; hosts that receive nothing
//!   are left as they are. Intermediate states use the physical capacity.
//! * **Pinned** instances never move (their hosts stay on). **Unavailable** hosts receive
//!   nothing; instances on them may stay or leave.
//!
//! **Algorithm.** Two candidates, both then improved by *draining*, and the best is kept:
//!
//! 1. *Drain from the current assignment*: repeatedly pick an on host without pinned
//!    instances and try to move all its instances into the other on hosts (largest first,
//!    best fit under the target utilisation); keep the drain if it lowers `J` and fits the
//!    budget. Hosts are tried in decreasing order of the power they draw per instance to
//!    move; passes repeat until no drain helps or the time budget is spent. This is the
//!    incremental consolidation that trades energy against moves.
//! 2. *Global repack*: the vector bin packing of [`crate::solve()`] over the available hosts
//!    (cost = idle watts, so efficient hosts open first; pinned load pre-reserved), then
//!    hosts of identical type are relabelled to maximise the memory that stays in place,
//!    then drained as above. It is kept only if it fits the budget.
//!
//! The migration order may cancel moves (no safe order within the budget); the plan then
//! reports its *actual* final state and energy, and falls back to the empty plan if that is
//! not better than the current state.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zonal_model::{Host, Resources};

use crate::instance::{effective_capacity, Bin, Instance};
use crate::migration::{check_steps, order_migrations, MigrationOrder, OrderInput, PlanViolation, Step};
use crate::solve::{solve, Constructive, SolveOptions};
use crate::ImproveOptions;

/// A host as consolidation sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsHost {
    pub name: String,
    /// Physical capacity per dimension.
    pub capacity: Vec<u64>,
    pub idle_watts: f64,
    pub max_watts: f64,
    /// False: receives nothing (down or cordoned).
    pub available: bool,
    /// Target utilisation in `(0, 1]` for this host; `None` = the problem's default.
    pub target: Option<f64>,
}

/// A running instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsInstance {
    pub name: String,
    pub demand: Vec<u64>,
    /// Index of the current host.
    pub host: usize,
    /// Memory to copy when migrating (bytes): the migration cost (OPERA §6).
    pub memory_bytes: u64,
    /// Non-migratable.
    pub pinned: bool,
}

/// How a host's utilisation is measured for the power model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Utilisation {
    /// One dimension (the CPU by default).
    Dimension(usize),
    /// The largest normalised dimension.
    MaxOverDimensions,
}

/// Limits on what a plan may migrate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationBudget {
    pub max_moves: Option<usize>,
    pub max_bytes: Option<u64>,
}

/// Weights of the migration cost, in watts per move and per GiB moved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MigrationCost {
    pub per_move: f64,
    pub per_gib: f64,
}

impl Default for MigrationCost {
    /// 1 W per move plus 1 W per GiB: a policy default, tune per site.
    fn default() -> Self {
        MigrationCost { per_move: 1.0, per_gib: 1.0 }
    }
}

/// A consolidation problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationProblem {
    /// Dimension names, e.g. `["cpu", "memory"]`.
    pub dims: Vec<String>,
    pub hosts: Vec<ConsHost>,
    pub instances: Vec<ConsInstance>,
    pub budget: MigrationBudget,
    pub cost: MigrationCost,
    /// Default target utilisation in `(0, 1]`.
    pub target: Option<f64>,
    pub utilisation: Utilisation,
}

/// Options of [`consolidate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationOptions {
    pub time_limit: Duration,
    pub seed: u64,
    /// Also try the global repack candidate.
    pub repack: bool,
}

impl Default for ConsolidationOptions {
    fn default() -> Self {
        ConsolidationOptions { time_limit: Duration::from_secs(2), seed: 1, repack: true }
    }
}

/// One migration of the target (current host → target host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub instance: usize,
    pub from: usize,
    pub to: usize,
    pub bytes: u64,
}

/// The result of [`consolidate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationPlan {
    /// Host of every instance after the plan.
    pub target: Vec<usize>,
    /// Watts drawn now and after the plan.
    pub energy_before: f64,
    pub energy_after: f64,
    /// `J` now (= energy) and after (energy + migration cost).
    pub objective_before: f64,
    pub objective_after: f64,
    /// The moves from the current assignment to `target`.
    pub moves: Vec<Move>,
    pub bytes_moved: u64,
    /// Hosts on now and empty after the plan: to suspend (IN-18).
    pub hosts_emptied: Vec<usize>,
    pub hosts_on_before: usize,
    pub hosts_on_after: usize,
    /// The ordered migration plan (includes temporary stops).
    pub order: MigrationOrder,
    /// Which candidate won: `current`, `drain`, `repack+drain`.
    pub algorithm: String,
    pub time: Duration,
}

/// Why a problem cannot be consolidated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsolidationError {
    Dimension {
        what: String,
        expected: usize,
        found: usize,
    },
    NoSuchHost {
        instance: usize,
        host: usize,
    },
    Target {
        value: String,
    },
    /// A resource named in `dims` has different units on two objects (model conversion).
    Units {
        resource: String,
    },
}

impl std::fmt::Display for ConsolidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsolidationError::Dimension { what, expected, found } => {
                write!(f, "{what} has {found} dimensions, expected {expected}")
            }
            ConsolidationError::NoSuchHost { instance, host } => {
                write!(f, "instance {instance} is on host {host}, which does not exist")
            }
            ConsolidationError::Target { value } => write!(f, "target utilisation {value} is not in (0, 1]"),
            ConsolidationError::Units { resource } => write!(f, "resource {resource:?} is measured in different units"),
        }
    }
}

impl std::error::Error for ConsolidationError {}

/// The vector of `dims` from a model resource map (missing = 0).
pub fn resource_vector(r: &Resources, dims: &[&str]) -> Vec<u64> {
    dims.iter().map(|d| r.get(d)).collect()
}

impl ConsHost {
    /// A consolidation host from a model host.
    pub fn from_model(h: &Host, dims: &[&str]) -> ConsHost {
        ConsHost {
            name: h.name.clone(),
            capacity: resource_vector(&h.capacity, dims),
            idle_watts: h.power.idle.watts(),
            max_watts: h.power.max.watts(),
            available: h.available,
            target: None,
        }
    }
}

impl ConsolidationProblem {
    /// A problem with default budget (unlimited), cost and utilisation model (CPU if a
    /// dimension is named `cpu`, else the maximum over dimensions).
    pub fn new(dims: &[&str], hosts: Vec<ConsHost>, instances: Vec<ConsInstance>) -> Self {
        let utilisation = match dims.iter().position(|d| *d == zonal_model::resources::CPU) {
            Some(k) => Utilisation::Dimension(k),
            None => Utilisation::MaxOverDimensions,
        };
        ConsolidationProblem {
            dims: dims.iter().map(|s| s.to_string()).collect(),
            hosts,
            instances,
            budget: MigrationBudget::default(),
            cost: MigrationCost::default(),
            target: None,
            utilisation,
        }
    }

    /// Checks vector lengths, host indexes and targets.
    pub fn check(&self) -> Result<(), ConsolidationError> {
        let d = self.dims.len();
        let bad_t = |t: Option<f64>| t.is_some_and(|v| !(v > 0.0 && v <= 1.0));
        if bad_t(self.target) {
            return Err(ConsolidationError::Target { value: format!("{:?}", self.target) });
        }
        for (h, host) in self.hosts.iter().enumerate() {
            if host.capacity.len() != d {
                return Err(ConsolidationError::Dimension {
                    what: format!("host {h}"),
                    expected: d,
                    found: host.capacity.len(),
                });
            }
            if bad_t(host.target) {
                return Err(ConsolidationError::Target { value: format!("{:?}", host.target) });
            }
        }
        for (i, inst) in self.instances.iter().enumerate() {
            if inst.demand.len() != d {
                return Err(ConsolidationError::Dimension {
                    what: format!("instance {i}"),
                    expected: d,
                    found: inst.demand.len(),
                });
            }
            if inst.host >= self.hosts.len() {
                return Err(ConsolidationError::NoSuchHost { instance: i, host: inst.host });
            }
        }
        Ok(())
    }

    /// The current assignment.
    pub fn current(&self) -> Vec<usize> {
        self.instances.iter().map(|i| i.host).collect()
    }

    fn target_capacity(&self, h: usize) -> Vec<u64> {
        let t = self.hosts[h].target.or(self.target);
        self.hosts[h].capacity.iter().map(|&c| effective_capacity(c, t)).collect()
    }

    fn migration_cost(&self, i: usize) -> f64 {
        self.cost.per_move + self.cost.per_gib * self.instances[i].memory_bytes as f64 / (1u64 << 30) as f64
    }

    fn host_power(&self, h: usize, load: &[u64]) -> f64 {
        let host = &self.hosts[h];
        let u = match self.utilisation {
            Utilisation::Dimension(k) => ratio(load[k], host.capacity[k]),
            Utilisation::MaxOverDimensions => {
                (0..load.len()).map(|k| ratio(load[k], host.capacity[k])).fold(0.0, f64::max)
            }
        };
        host.idle_watts + (host.max_watts - host.idle_watts) * u.clamp(0.0, 1.0)
    }
}

fn ratio(load: u64, cap: u64) -> f64 {
    if cap == 0 {
        if load == 0 {
            0.0
        } else {
            1.0
        }
    } else {
        load as f64 / cap as f64
    }
}

/// Power drawn (W) under `assignment`: the sum over hosts running at least one instance.
pub fn energy(p: &ConsolidationProblem, assignment: &[usize]) -> f64 {
    let d = p.dims.len();
    let mut load = vec![vec![0u64; d]; p.hosts.len()];
    let mut on = vec![false; p.hosts.len()];
    for (i, &h) in assignment.iter().enumerate() {
        on[h] = true;
        for k in 0..d {
            load[h][k] += p.instances[i].demand[k];
        }
    }
    (0..p.hosts.len()).filter(|&h| on[h]).map(|h| p.host_power(h, &load[h])).sum()
}

/// `J(assignment)`: energy plus the cost of the moves from the current assignment.
pub fn objective(p: &ConsolidationProblem, assignment: &[usize]) -> f64 {
    energy(p, assignment)
        + (0..p.instances.len())
            .filter(|&i| assignment[i] != p.instances[i].host)
            .map(|i| p.migration_cost(i))
            .sum::<f64>()
}

/// Mutable assignment with loads, for the drain search.
struct Work<'a> {
    p: &'a ConsolidationProblem,
    assign: Vec<usize>,
    load: Vec<Vec<u64>>,
    count: Vec<usize>,
    tcap: Vec<Vec<u64>>,
    /// Hosts whose final load may exceed the target (they received nothing); any host that
    /// receives must be within the target.
    moves: usize,
    bytes: u64,
}

impl<'a> Work<'a> {
    fn new(p: &'a ConsolidationProblem, assign: Vec<usize>) -> Work<'a> {
        let d = p.dims.len();
        let mut load = vec![vec![0u64; d]; p.hosts.len()];
        let mut count = vec![0usize; p.hosts.len()];
        let mut moves = 0;
        let mut bytes = 0;
        for (i, &h) in assign.iter().enumerate() {
            count[h] += 1;
            for k in 0..d {
                load[h][k] += p.instances[i].demand[k];
            }
            if h != p.instances[i].host {
                moves += 1;
                bytes += p.instances[i].memory_bytes;
            }
        }
        let tcap = (0..p.hosts.len()).map(|h| p.target_capacity(h)).collect();
        Work { p, assign, load, count, tcap, moves, bytes }
    }

    fn fits(&self, i: usize, h: usize) -> bool {
        let d = &self.p.instances[i].demand;
        (0..d.len()).all(|k| self.load[h][k] + d[k] <= self.tcap[h][k])
    }

    fn set(&mut self, i: usize, h: usize) {
        let old = self.assign[i];
        let inst = &self.p.instances[i];
        for k in 0..inst.demand.len() {
            self.load[old][k] -= inst.demand[k];
            self.load[h][k] += inst.demand[k];
        }
        self.count[old] -= 1;
        self.count[h] += 1;
        let was_moved = old != inst.host;
        let now_moved = h != inst.host;
        match (was_moved, now_moved) {
            (false, true) => {
                self.moves += 1;
                self.bytes += inst.memory_bytes;
            }
            (true, false) => {
                self.moves -= 1;
                self.bytes -= inst.memory_bytes;
            }
            _ => {}
        }
        self.assign[i] = h;
    }

    fn within_budget(&self) -> bool {
        self.p.budget.max_moves.is_none_or(|m| self.moves <= m)
            && self.p.budget.max_bytes.is_none_or(|m| self.bytes <= m)
    }

    fn power(&self, h: usize) -> f64 {
        if self.count[h] == 0 {
            0.0
        } else {
            self.p.host_power(h, &self.load[h])
        }
    }

    /// Tries to empty host `h` into the other on hosts; keeps the result if `J` drops and
    /// the budget holds. Returns true when it did.
    fn drain(&mut self, h: usize, members: &[Vec<usize>]) -> bool {
        let p = self.p;
        let mut items: Vec<usize> = members[h].iter().copied().filter(|&i| self.assign[i] == h).collect();
        if items.is_empty() || items.iter().any(|&i| p.instances[i].pinned) {
            return false;
        }
        let size = |i: usize| -> f64 {
            let d = &p.instances[i].demand;
            (0..d.len()).map(|k| ratio(d[k], p.hosts[h].capacity[k].max(1))).fold(0.0, f64::max)
        };
        items.sort_by(|&a, &b| size(b).total_cmp(&size(a)).then(a.cmp(&b)));
        let mut touched: Vec<usize> = vec![h];
        let mut before: f64 = self.power(h);
        let mut done: Vec<(usize, usize)> = Vec::new();
        let mut ok = true;
        for &i in &items {
            // Best fit among on, available hosts other than h.
            let mut best: Option<(f64, usize)> = None;
            for g in 0..p.hosts.len() {
                if g == h || self.count[g] == 0 || !p.hosts[g].available || !self.fits(i, g) {
                    continue;
                }
                let d = &p.instances[i].demand;
                let res: f64 = (0..d.len())
                    .map(|k| ratio(self.tcap[g][k] - self.load[g][k] - d[k], p.hosts[g].capacity[k].max(1)))
                    .sum();
                // Returning an instance to its original host is free: prefer it.
                let res = if g == p.instances[i].host { res - 1e3 } else { res };
                if best.is_none_or(|(b, _)| res < b) {
                    best = Some((res, g));
                }
            }
            match best {
                Some((_, g)) => {
                    if !touched.contains(&g) {
                        touched.push(g);
                        before += self.power(g);
                    }
                    let mc_before = if self.assign[i] != p.instances[i].host { p.migration_cost(i) } else { 0.0 };
                    let mc_after = if g != p.instances[i].host { p.migration_cost(i) } else { 0.0 };
                    before += mc_before - mc_after; // fold the migration delta into the comparison
                    done.push((i, self.assign[i]));
                    self.set(i, g);
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        let after: f64 = touched.iter().map(|&g| self.power(g)).sum();
        if ok && after < before - 1e-9 && self.within_budget() {
            return true;
        }
        for &(i, from) in done.iter().rev() {
            self.set(i, from);
        }
        false
    }

    /// Drain passes until nothing improves or time is up.
    fn drain_all(&mut self, deadline: Instant) {
        let p = self.p;
        loop {
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); p.hosts.len()];
            for (i, &h) in self.assign.iter().enumerate() {
                members[h].push(i);
            }
            let mut hosts: Vec<usize> = (0..p.hosts.len()).filter(|&h| self.count[h] > 0).collect();
            // Most power per instance to move first.
            let score = |h: usize| self.power(h) / self.count[h].max(1) as f64;
            let scores: Vec<f64> = (0..p.hosts.len()).map(score).collect();
            hosts.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let mut improved = false;
            for h in hosts {
                if Instant::now() >= deadline {
                    return;
                }
                if self.count[h] > 0 && self.drain(h, &members) {
                    improved = true;
                    // Members lists stay valid: drain filters by the current assignment,
                    // and hosts that received instances keep their old members too.
                    for (i, &g) in self.assign.iter().enumerate() {
                        if g != h && !members[g].contains(&i) {
                            members[g].push(i);
                        }
                    }
                }
            }
            if !improved {
                return;
            }
        }
    }
}

/// The global repack candidate (see the module docs), or `None` when packing fails.
fn repack(p: &ConsolidationProblem, opts: &ConsolidationOptions, deadline: Duration) -> Option<Vec<usize>> {
    let d = p.dims.len();
    let nh = p.hosts.len();
    // Pinned load reserved up front; hosts with pinned instances are on anyway (cost 0).
    let mut pinned_load = vec![vec![0u64; d]; nh];
    let mut has_pinned = vec![false; nh];
    for inst in p.instances.iter().filter(|i| i.pinned) {
        has_pinned[inst.host] = true;
        for k in 0..d {
            pinned_load[inst.host][k] += inst.demand[k];
        }
    }
    let hosts: Vec<usize> = (0..nh).filter(|&h| p.hosts[h].available).collect();
    let bins: Vec<Bin> = hosts
        .iter()
        .map(|&h| {
            let tc = p.target_capacity(h);
            let cap: Vec<u64> = (0..d).map(|k| tc[k].saturating_sub(pinned_load[h][k])).collect();
            let cost = if has_pinned[h] { 0.0 } else { p.hosts[h].idle_watts.max(1e-3) };
            Bin { capacity: cap, target: None, cost }
        })
        .collect();
    let movable: Vec<usize> = (0..p.instances.len()).filter(|&i| !p.instances[i].pinned).collect();
    let items = movable.iter().map(|&i| p.instances[i].demand.iter().map(|&x| x as i64).collect()).collect();
    let inst = Instance::listed("consolidation", d, bins, items);
    let so = SolveOptions {
        constructive: Constructive::Fast,
        improve: Some(ImproveOptions {
            time_limit: Some(deadline),
            seed: opts.seed,
            stagnation: 50,
            ..ImproveOptions::default()
        }),
        allow_unplaced: false,
    };
    let r = solve(&inst, &so).ok()?;
    let mut assign = p.current();
    for (j, &i) in movable.iter().enumerate() {
        assign[i] = hosts[r.solution.assignment[j]];
    }
    // Relabel hosts of identical type to keep memory in place.
    relabel(p, &mut assign, &has_pinned);
    Some(assign)
}

/// Permutes the contents of interchangeable hosts (same capacity, power, target and
/// availability, no pinned instance) so that as much memory as possible stays where it is
/// (greedy matching on the bytes in common).
fn relabel(p: &ConsolidationProblem, assign: &mut [usize], has_pinned: &[bool]) {
    use std::collections::BTreeMap;
    let nh = p.hosts.len();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for h in 0..nh {
        if has_pinned[h] {
            continue;
        }
        let host = &p.hosts[h];
        let key = format!(
            "{:?}|{}|{}|{}|{:?}",
            host.capacity,
            host.idle_watts.to_bits(),
            host.max_watts.to_bits(),
            host.available,
            host.target.map(f64::to_bits)
        );
        groups.entry(key).or_default().push(h);
    }
    for (_, g) in groups {
        if g.len() < 2 {
            continue;
        }
        let idx: BTreeMap<usize, usize> = g.iter().enumerate().map(|(a, &h)| (h, a)).collect();
        // common[new_bin][old_host] = bytes of instances packed into new_bin that sit on old_host.
        let mut common = vec![vec![0u128; g.len()]; g.len()];
        for (i, &h) in assign.iter().enumerate() {
            if let (Some(&a), Some(&b)) = (idx.get(&h), idx.get(&p.instances[i].host)) {
                common[a][b] += p.instances[i].memory_bytes as u128 + 1;
            }
        }
        let mut pairs: Vec<(u128, usize, usize)> = Vec::new();
        for (a, row) in common.iter().enumerate() {
            for (b, &v) in row.iter().enumerate() {
                if v > 0 {
                    pairs.push((v, a, b));
                }
            }
        }
        pairs.sort_by(|x, y| y.cmp(x));
        let mut map = vec![usize::MAX; g.len()];
        let mut used = vec![false; g.len()];
        for (_, a, b) in pairs {
            if map[a] == usize::MAX && !used[b] {
                map[a] = b;
                used[b] = true;
            }
        }
        let mut free = (0..g.len()).filter(|&b| !used[b]);
        for m in map.iter_mut() {
            if *m == usize::MAX {
                *m = free.next().expect("as many hosts as bins");
            }
        }
        for h in assign.iter_mut() {
            if let Some(&a) = idx.get(h) {
                *h = g[map[a]];
            }
        }
    }
}

fn build_plan(p: &ConsolidationProblem, target: Vec<usize>, algorithm: &str, started: Instant) -> ConsolidationPlan {
    let current = p.current();
    let cap: Vec<Vec<u64>> = p.hosts.iter().map(|h| h.capacity.clone()).collect();
    let spare: Vec<bool> = p.hosts.iter().map(|h| h.available).collect();
    let demand: Vec<Vec<u64>> = p.instances.iter().map(|i| i.demand.clone()).collect();
    let moves_wanted = (0..current.len()).filter(|&i| current[i] != target[i]).count();
    let order = order_migrations(&OrderInput {
        capacity: &cap,
        spare_ok: &spare,
        demand: &demand,
        current: &current,
        target: &target,
        max_steps: p.budget.max_moves.unwrap_or(usize::MAX).max(moves_wanted),
    });
    let target = order.final_assignment.clone();
    let moves: Vec<Move> = (0..current.len())
        .filter(|&i| current[i] != target[i])
        .map(|i| Move { instance: i, from: current[i], to: target[i], bytes: p.instances[i].memory_bytes })
        .collect();
    let on = |a: &[usize]| {
        let mut v = vec![false; p.hosts.len()];
        for &h in a {
            v[h] = true;
        }
        v
    };
    let (on_b, on_a) = (on(&current), on(&target));
    let temp_cost: f64 = order.temporary.iter().map(|&(i, _)| p.migration_cost(i)).sum();
    ConsolidationPlan {
        energy_before: energy(p, &current),
        energy_after: energy(p, &target),
        objective_before: energy(p, &current),
        objective_after: objective(p, &target) + temp_cost,
        bytes_moved: moves.iter().map(|m| m.bytes).sum::<u64>()
            + order.temporary.iter().map(|&(i, _)| p.instances[i].memory_bytes).sum::<u64>(),
        moves,
        hosts_emptied: (0..p.hosts.len()).filter(|&h| on_b[h] && !on_a[h]).collect(),
        hosts_on_before: on_b.iter().filter(|&&x| x).count(),
        hosts_on_after: on_a.iter().filter(|&&x| x).count(),
        target,
        order,
        algorithm: algorithm.to_string(),
        time: started.elapsed(),
    }
}

/// Consolidates (see the module docs). The returned plan is never worse than the current
/// assignment (`objective_after ≤ objective_before`; the empty plan when nothing helps).
pub fn consolidate(
    p: &ConsolidationProblem,
    opts: &ConsolidationOptions,
) -> Result<ConsolidationPlan, ConsolidationError> {
    let started = Instant::now();
    p.check()?;
    let deadline = started + opts.time_limit;
    let current = p.current();
    let j0 = objective(p, &current);
    let mut candidates: Vec<(Vec<usize>, &str)> = Vec::new();
    // Budget: 60 % for the repack, then the drains share what is left.
    let mut repacked = None;
    if opts.repack {
        repacked = repack(p, opts, opts.time_limit.mul_f64(0.6));
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let mut w = Work::new(p, current.clone());
    w.drain_all(Instant::now() + if repacked.is_some() { left / 2 } else { left });
    candidates.push((w.assign, "drain"));
    if let Some(a) = repacked {
        let mut w = Work::new(p, a);
        if w.within_budget() {
            w.drain_all(deadline);
            candidates.push((w.assign, "repack+drain"));
        }
    }
    let mut best = build_plan(p, current.clone(), "current", started);
    for (a, name) in candidates {
        // The migration order may cancel moves; judge the plan by what it really does.
        let plan = build_plan(p, a, name, started);
        let within = p.budget.max_moves.is_none_or(|m| plan.order.steps.len() <= m)
            && p.budget.max_bytes.is_none_or(|m| plan.bytes_moved <= m);
        if within && plan.objective_after < best.objective_after - 1e-9 && plan.objective_after < j0 - 1e-9 {
            best = plan;
        }
    }
    best.time = started.elapsed();
    Ok(best)
}

/// What [`check_plan`] confirms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCheck {
    pub steps: usize,
    /// Energy of the replayed final state (recomputed).
    pub energy_after: f64,
    pub objective_after: f64,
}

/// The independent migration-plan checker: replays the ordered steps from the current
/// assignment, checking capacity after every step (physical capacity), that steps start
/// where the instance is, that pinned instances never move, that no instance moves onto an
/// unavailable host, that the final state equals the plan's target, that the target
/// respects the target utilisation on every host that received an instance, that the budget
/// holds, and recomputes energy and objective (which must match the plan's and not exceed
/// the current objective).
pub fn check_plan(p: &ConsolidationProblem, plan: &ConsolidationPlan) -> Result<PlanCheck, Vec<PlanViolation>> {
    let cap: Vec<Vec<u64>> = p.hosts.iter().map(|h| h.capacity.clone()).collect();
    let demand: Vec<Vec<u64>> = p.instances.iter().map(|i| i.demand.clone()).collect();
    let current = p.current();
    let mut errors = Vec::new();
    for (s, st) in plan.order.steps.iter().enumerate() {
        if st.instance < p.instances.len() && p.instances[st.instance].pinned {
            errors.push(PlanViolation::PinnedMoved { step: s, instance: st.instance });
        }
        if st.to < p.hosts.len() && !p.hosts[st.to].available {
            errors.push(PlanViolation::Unavailable { step: s, host: st.to });
        }
    }
    if let Err(e) = check_steps(&cap, &demand, &current, &plan.order.steps, &plan.target) {
        errors.extend(e);
    }
    // Target utilisation on receiving hosts.
    let d = p.dims.len();
    let mut load = vec![vec![0u128; d]; p.hosts.len()];
    let mut receives = vec![false; p.hosts.len()];
    for (i, &h) in plan.target.iter().enumerate() {
        if h >= p.hosts.len() {
            continue;
        }
        if h != current[i] {
            receives[h] = true;
        }
        for k in 0..d {
            load[h][k] += p.instances[i].demand[k] as u128;
        }
    }
    for h in 0..p.hosts.len() {
        if !receives[h] {
            continue;
        }
        let t = p.hosts[h].target.or(p.target);
        for k in 0..d {
            let c = effective_capacity(p.hosts[h].capacity[k], t);
            // A target the host already exceeds before receiving would be unreachable;
            // physical capacity is then the rule (checked by the replay).
            if load[h][k] > c as u128 && plan.order.left_in_place.is_empty() {
                errors.push(PlanViolation::Overload {
                    step: usize::MAX,
                    host: h,
                    dim: k,
                    load: load[h][k],
                    capacity: c,
                });
            }
        }
    }
    let moves = plan.order.steps.len();
    let bytes: u64 = plan.order.steps.iter().map(|s| p.instances.get(s.instance).map_or(0, |i| i.memory_bytes)).sum();
    if p.budget.max_moves.is_some_and(|m| moves > m) {
        errors.push(PlanViolation::OverBudget { what: format!("{moves} migrations") });
    }
    if p.budget.max_bytes.is_some_and(|m| bytes > m) {
        errors.push(PlanViolation::OverBudget { what: format!("{bytes} bytes") });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let e = energy(p, &plan.target);
    let temp: f64 = plan.order.temporary.iter().map(|&(i, _)| p.migration_cost(i)).sum();
    let j = objective(p, &plan.target) + temp;
    if (e - plan.energy_after).abs() > 1e-6 * e.max(1.0) || (j - plan.objective_after).abs() > 1e-6 * j.max(1.0) {
        errors.push(PlanViolation::OverBudget { what: format!("energy/objective mismatch: {e} W / {j} recomputed") });
    }
    if j > objective(p, &current) + 1e-9 {
        errors.push(PlanViolation::OverBudget {
            what: format!("objective {j} above the current {}", objective(p, &current)),
        });
    }
    if errors.is_empty() {
        Ok(PlanCheck { steps: moves, energy_after: e, objective_after: j })
    } else {
        Err(errors)
    }
}

/// The steps of a plan as (instance name, from host name, to host name, temporary).
pub fn describe_steps<'a>(p: &'a ConsolidationProblem, steps: &[Step]) -> Vec<(&'a str, &'a str, &'a str, bool)> {
    steps
        .iter()
        .map(|s| {
            (
                p.instances[s.instance].name.as_str(),
                p.hosts[s.from].name.as_str(),
                p.hosts[s.to].name.as_str(),
                s.temporary,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, cpu: u64, mem: u64) -> ConsHost {
        ConsHost {
            name: name.into(),
            capacity: vec![cpu, mem],
            idle_watts: 100.0,
            max_watts: 200.0,
            available: true,
            target: None,
        }
    }

    fn inst(name: &str, cpu: u64, mem: u64, host: usize) -> ConsInstance {
        ConsInstance { name: name.into(), demand: vec![cpu, mem], host, memory_bytes: mem << 20, pinned: false }
    }

    #[test]
    fn merges_two_half_empty_hosts() {
        let p = ConsolidationProblem::new(
            &["cpu", "memory"],
            vec![host("a", 1000, 1000), host("b", 1000, 1000), host("c", 1000, 1000)],
            vec![inst("x", 300, 300, 0), inst("y", 300, 300, 1), inst("z", 300, 300, 2)],
        );
        let plan = consolidate(&p, &ConsolidationOptions::default()).unwrap();
        assert_eq!(plan.hosts_on_after, 1);
        assert_eq!(plan.hosts_emptied.len(), 2);
        assert!(plan.energy_after < plan.energy_before);
        check_plan(&p, &plan).unwrap();
    }

    #[test]
    fn budget_limits_moves_and_pinned_stay() {
        let mut p = ConsolidationProblem::new(
            &["cpu", "memory"],
            vec![host("a", 1000, 1000), host("b", 1000, 1000), host("c", 1000, 1000)],
            vec![inst("x", 300, 300, 0), inst("y", 300, 300, 1), inst("z", 300, 300, 2)],
        );
        p.budget.max_moves = Some(1);
        p.instances[0].pinned = true;
        let plan = consolidate(&p, &ConsolidationOptions::default()).unwrap();
        assert_eq!(plan.moves.len(), 1);
        assert_eq!(plan.target[0], 0);
        check_plan(&p, &plan).unwrap();
    }

    #[test]
    fn expensive_migrations_are_not_worth_it() {
        let mut p = ConsolidationProblem::new(
            &["cpu", "memory"],
            vec![host("a", 1000, 1000), host("b", 1000, 1000)],
            vec![inst("x", 300, 300, 0), inst("y", 300, 300, 1)],
        );
        p.cost = MigrationCost { per_move: 500.0, per_gib: 0.0 };
        let plan = consolidate(&p, &ConsolidationOptions::default()).unwrap();
        assert!(plan.moves.is_empty());
        assert_eq!(plan.algorithm, "current");
        assert_eq!(plan.objective_after, plan.objective_before);
    }

    #[test]
    fn target_utilisation_is_honoured() {
        let mut p = ConsolidationProblem::new(
            &["cpu", "memory"],
            vec![host("a", 1000, 1000), host("b", 1000, 1000)],
            vec![inst("x", 450, 100, 0), inst("y", 450, 100, 1)],
        );
        p.target = Some(0.8);
        let plan = consolidate(&p, &ConsolidationOptions::default()).unwrap();
        assert!(plan.moves.is_empty(), "900 > 80 % of 1000");
        p.target = Some(0.95);
        let plan = consolidate(&p, &ConsolidationOptions::default()).unwrap();
        assert_eq!(plan.moves.len(), 1);
        check_plan(&p, &plan).unwrap();
    }

    #[test]
    fn hosts_from_the_model() {
        use zonal_model::{Amount, Power, PowerModel};
        let h = Host {
            name: "m1".into(),
            capacity: Resources::new().with("cpu", Amount::cpu(8000)).with("memory", Amount::bytes(16 << 30)),
            features: Default::default(),
            power: PowerModel { idle: Power::from_watts(80.0), max: Power::from_watts(240.0) },
            available: true,
        };
        let ch = ConsHost::from_model(&h, &["cpu", "memory", "gpu"]);
        assert_eq!(ch.capacity, vec![8000, 16 << 30, 0]);
        assert_eq!((ch.idle_watts, ch.max_watts), (80.0, 240.0));
        let p = ConsolidationProblem::new(&["memory", "cpu"], vec![], vec![]);
        assert_eq!(p.utilisation, Utilisation::Dimension(1));
        let p = ConsolidationProblem::new(&["memory"], vec![], vec![]);
        assert_eq!(p.utilisation, Utilisation::MaxOverDimensions);
    }

    #[test]
    fn cpu_utilisation_power_model() {
        let p =
            ConsolidationProblem::new(&["cpu", "memory"], vec![host("a", 1000, 1000)], vec![inst("x", 500, 900, 0)]);
        assert!((energy(&p, &[0]) - 150.0).abs() < 1e-9);
        let mut q = p.clone();
        q.utilisation = Utilisation::MaxOverDimensions;
        assert!((energy(&q, &[0]) - 190.0).abs() < 1e-9);
    }
}
