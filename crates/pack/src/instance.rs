//! The vector bin packing problem: items with a demand vector, bins with a capacity vector.
//!
//! Modelling choices:
//!
//! * **Integers.** Demands and capacities are `u64` in whatever unit the caller chose per
//!   dimension (millicores, MiB, milli-GPUs, abstract units of a benchmark). Fitting is exact
//!   integer comparison, never floating point.
//! * **Any number of dimensions**, the same for every item and bin. An item fits into a bin
//!   when, in *every* dimension, the bin's load plus the item's demand is at most the bin's
//!   effective capacity.
//! * **Target utilisation (INPUT IN-16).** A bin may carry a target utilisation `t` in
//!   `(0, 1]`; its *effective* capacity is `⌊C_k · t⌋` in every dimension `k`, and everything
//!   here (packing, bounds, [`validate`]) uses the effective capacity. INPUT warns that packing
//!   to "close to 100 % utilization can even increase the energy consumption"; the target is
//!   how an operator keeps head-room.
//! * **Signed demands.** Resources are never negative in Zonal, but the Triplet family of the
//!   vbp benchmark (Caprara–Toth-style generator: the third item of a triplet is `C − a − b`)
//!   contains small negative demands in 77 of its 240 instances, and the published optima and
//!   heuristic results treat them as signed. Clamping them to zero would make the optimal
//!   triplets infeasible, so demands are `i64` and a bin's constraint is on its *total*
//!   load. Every algorithm here checks fit on the net change of a move, which is exact with
//!   negative entries; the lower bounds that assume non-negative sizes (L2, conflict clique)
//!   switch themselves off when a negative demand is present.
//! * **Two kinds of bin supply.** [`BinSupply::Identical`] is classic vector bin packing (as
//!   many identical bins as needed, minimise how many are used); [`BinSupply::Listed`] is a
//!   finite list of possibly different bins (hosts), each with a cost, and the objective is the
//!   total cost of the bins used (all costs 1 = the number of bins).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bins are supplied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BinSupply {
    /// As many identical bins as needed.
    Identical {
        capacity: Vec<u64>,
        /// Target utilisation in `(0, 1]`; `None` = 100 %.
        target: Option<f64>,
    },
    /// A finite list of bins, e.g. the hosts of a zone.
    Listed(Vec<Bin>),
}

/// One bin of a [`BinSupply::Listed`] supply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub capacity: Vec<u64>,
    /// Target utilisation in `(0, 1]`; `None` = 100 %.
    pub target: Option<f64>,
    /// What using this bin costs (1.0 to count bins; idle watts to count power).
    pub cost: f64,
}

impl Bin {
    pub fn new(capacity: Vec<u64>) -> Self {
        Bin { capacity, target: None, cost: 1.0 }
    }
}

/// A vector bin packing instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// A label for reports (file name, trace name).
    pub name: String,
    pub dims: usize,
    /// One demand vector per item, each of length `dims`. Demands are signed only so that
    /// benchmark instances with negative entries (a generator artifact of the Triplet family)
    /// can be read faithfully; see the module docs.
    pub items: Vec<Vec<i64>>,
    pub bins: BinSupply,
}

/// Why an instance cannot be packed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceError {
    /// A vector has the wrong length.
    Dimension { what: String, expected: usize, found: usize },
    /// A target utilisation outside `(0, 1]`.
    Target { bin: Option<usize>, value: String },
    /// The item fits into no bin even when the bin is empty.
    ItemFitsNowhere { item: usize },
    /// The listed bins cannot hold all items (found by the packer, not proven infeasible).
    OutOfBins { unplaced: usize },
    /// The instance has no dimension.
    NoDimension,
}

impl fmt::Display for InstanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceError::Dimension { what, expected, found } => {
                write!(f, "{what} has {found} dimensions, expected {expected}")
            }
            InstanceError::Target { bin: Some(b), value } => {
                write!(f, "bin {b}: target utilisation {value} is not in (0, 1]")
            }
            InstanceError::Target { bin: None, value } => write!(f, "target utilisation {value} is not in (0, 1]"),
            InstanceError::ItemFitsNowhere { item } => write!(f, "item {item} fits into no bin, even an empty one"),
            InstanceError::OutOfBins { unplaced } => {
                write!(f, "the listed bins could not hold every item ({unplaced} left over)")
            }
            InstanceError::NoDimension => write!(f, "the instance has no dimension"),
        }
    }
}

impl std::error::Error for InstanceError {}

/// `⌊c · t⌋`, computed so that `t = 1` gives `c` exactly.
pub fn effective_capacity(c: u64, target: Option<f64>) -> u64 {
    match target {
        None => c,
        Some(t) if t >= 1.0 => c,
        Some(t) => ((c as f64) * t).floor().max(0.0) as u64,
    }
}

fn check_target(bin: Option<usize>, t: Option<f64>) -> Result<(), InstanceError> {
    match t {
        Some(v) if !(v > 0.0 && v <= 1.0) => Err(InstanceError::Target { bin, value: v.to_string() }),
        _ => Ok(()),
    }
}

impl Instance {
    /// Identical bins of `capacity`.
    pub fn identical(name: &str, capacity: Vec<u64>, items: Vec<Vec<i64>>) -> Self {
        Instance {
            name: name.to_string(),
            dims: capacity.len(),
            items,
            bins: BinSupply::Identical { capacity, target: None },
        }
    }

    /// A finite list of bins.
    pub fn listed(name: &str, dims: usize, bins: Vec<Bin>, items: Vec<Vec<i64>>) -> Self {
        Instance { name: name.to_string(), dims, items, bins: BinSupply::Listed(bins) }
    }

    /// Checks vector lengths and targets.
    pub fn check(&self) -> Result<(), InstanceError> {
        if self.dims == 0 {
            return Err(InstanceError::NoDimension);
        }
        for (i, it) in self.items.iter().enumerate() {
            if it.len() != self.dims {
                return Err(InstanceError::Dimension {
                    what: format!("item {i}"),
                    expected: self.dims,
                    found: it.len(),
                });
            }
        }
        match &self.bins {
            BinSupply::Identical { capacity, target } => {
                if capacity.len() != self.dims {
                    return Err(InstanceError::Dimension {
                        what: "the bin capacity".into(),
                        expected: self.dims,
                        found: capacity.len(),
                    });
                }
                check_target(None, *target)?;
            }
            BinSupply::Listed(bins) => {
                for (b, bin) in bins.iter().enumerate() {
                    if bin.capacity.len() != self.dims {
                        return Err(InstanceError::Dimension {
                            what: format!("bin {b}"),
                            expected: self.dims,
                            found: bin.capacity.len(),
                        });
                    }
                    check_target(Some(b), bin.target)?;
                }
            }
        }
        Ok(())
    }

    /// The number of bins available: the item count for identical bins (one item per bin
    /// always suffices when every item fits an empty bin).
    pub fn bin_count(&self) -> usize {
        match &self.bins {
            BinSupply::Identical { .. } => self.items.len(),
            BinSupply::Listed(b) => b.len(),
        }
    }

    /// The effective capacity vector of bin `b` (target utilisation applied).
    pub fn capacity(&self, b: usize) -> Vec<u64> {
        match &self.bins {
            BinSupply::Identical { capacity, target } => {
                capacity.iter().map(|&c| effective_capacity(c, *target)).collect()
            }
            BinSupply::Listed(bins) => {
                bins[b].capacity.iter().map(|&c| effective_capacity(c, bins[b].target)).collect()
            }
        }
    }

    /// The cost of using bin `b` (1 for identical bins).
    pub fn cost(&self, b: usize) -> f64 {
        match &self.bins {
            BinSupply::Identical { .. } => 1.0,
            BinSupply::Listed(bins) => bins[b].cost,
        }
    }

    /// True when every bin costs the same, so the objective is the number of bins.
    pub fn unit_costs(&self) -> bool {
        match &self.bins {
            BinSupply::Identical { .. } => true,
            BinSupply::Listed(bins) => bins.windows(2).all(|w| w[0].cost == w[1].cost),
        }
    }
}

/// A packing: the bin of every item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Solution {
    /// `assignment[i]` is the bin of item `i`.
    pub assignment: Vec<usize>,
}

impl Solution {
    /// The number of distinct bins used.
    pub fn bins_used(&self) -> usize {
        let mut b: Vec<usize> = self.assignment.clone();
        b.sort_unstable();
        b.dedup();
        b.len()
    }

    /// The total cost of the bins used.
    pub fn cost(&self, instance: &Instance) -> f64 {
        let mut b: Vec<usize> = self.assignment.clone();
        b.sort_unstable();
        b.dedup();
        b.iter().map(|&x| instance.cost(x)).sum()
    }
}

/// One way a solution is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The solution does not give one bin to every item.
    ItemCount { expected: usize, found: usize },
    /// An item is put into a bin that does not exist.
    NoSuchBin { item: usize, bin: usize },
    /// A bin's load exceeds its effective capacity.
    Overload { bin: usize, dim: usize, load: i128, capacity: u64 },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::ItemCount { expected, found } => write!(f, "{found} items assigned, expected {expected}"),
            Violation::NoSuchBin { item, bin } => write!(f, "item {item} is in bin {bin}, which does not exist"),
            Violation::Overload { bin, dim, load, capacity } => {
                write!(f, "bin {bin} dimension {dim}: load {load} exceeds capacity {capacity}")
            }
        }
    }
}

/// Checks a solution against an instance independently of how it was built: every item is
/// in exactly one existing bin (the assignment vector has one entry per item) and no bin's
/// load exceeds its effective capacity in any dimension. Loads are summed in `u128` so that
/// the check itself cannot overflow. A bin's constraint is on its total: with negative
/// demands (benchmark instances only) a subset of a feasible bin may exceed the capacity.
pub fn validate(instance: &Instance, solution: &Solution) -> Result<(), Vec<Violation>> {
    let n = instance.items.len();
    if solution.assignment.len() != n {
        return Err(vec![Violation::ItemCount { expected: n, found: solution.assignment.len() }]);
    }
    let m = instance.bin_count();
    let mut errors = Vec::new();
    let mut loads: std::collections::BTreeMap<usize, Vec<i128>> = std::collections::BTreeMap::new();
    for (i, &b) in solution.assignment.iter().enumerate() {
        if b >= m {
            errors.push(Violation::NoSuchBin { item: i, bin: b });
            continue;
        }
        let load = loads.entry(b).or_insert_with(|| vec![0; instance.dims]);
        for (k, &d) in instance.items[i].iter().enumerate() {
            load[k] += d as i128;
        }
    }
    for (b, load) in loads {
        let cap = instance.capacity(b);
        for k in 0..instance.dims {
            if load[k] > cap[k] as i128 {
                errors.push(Violation::Overload { bin: b, dim: k, load: load[k], capacity: cap[k] });
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Like [`validate`], but items whose bin is [`crate::solve::UNPLACED`] are skipped (a
/// partial packing from [`crate::solve::SolveOptions::allow_unplaced`]).
pub fn validate_partial(instance: &Instance, solution: &Solution) -> Result<(), Vec<Violation>> {
    let mut sub = instance.clone();
    let mut assignment = Vec::new();
    sub.items.clear();
    for (i, &b) in solution.assignment.iter().enumerate() {
        if b != crate::solve::UNPLACED {
            if let Some(it) = instance.items.get(i) {
                sub.items.push(it.clone());
            }
            assignment.push(b);
        }
    }
    if solution.assignment.len() != instance.items.len() {
        return Err(vec![Violation::ItemCount { expected: instance.items.len(), found: solution.assignment.len() }]);
    }
    validate(&sub, &Solution { assignment })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_reduces_capacity() {
        assert_eq!(effective_capacity(100, Some(0.8)), 80);
        assert_eq!(effective_capacity(100, Some(1.0)), 100);
        assert_eq!(effective_capacity(7, None), 7);
        let mut inst = Instance::identical("t", vec![10, 10], vec![vec![5, 5], vec![4, 4]]);
        inst.bins = BinSupply::Identical { capacity: vec![10, 10], target: Some(0.8) };
        assert_eq!(inst.capacity(0), vec![8, 8]);
        assert!(validate(&inst, &Solution { assignment: vec![0, 0] }).is_err());
        assert!(validate(&inst, &Solution { assignment: vec![0, 1] }).is_ok());
    }

    #[test]
    fn check_catches_bad_vectors() {
        let inst = Instance::identical("t", vec![10, 10], vec![vec![5]]);
        assert!(matches!(inst.check(), Err(InstanceError::Dimension { .. })));
        let mut inst = Instance::identical("t", vec![10], vec![vec![5]]);
        inst.bins = BinSupply::Identical { capacity: vec![10], target: Some(1.5) };
        assert!(matches!(inst.check(), Err(InstanceError::Target { .. })));
    }

    #[test]
    fn validate_reports_every_violation() {
        let inst =
            Instance::listed("t", 1, vec![Bin::new(vec![5]), Bin::new(vec![5])], vec![vec![3], vec![3], vec![1]]);
        let err = validate(&inst, &Solution { assignment: vec![0, 0, 7] }).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(validate(&inst, &Solution { assignment: vec![0] }).is_err());
    }
}
