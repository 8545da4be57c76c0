//! The `vbp` suite against a peer: Zonal's vector bin packer (`zonal-pack`) on the Panigrahy /
//! New / Triplet instances with known optima, and optionally a peer solver (CP-SAT or HiGHS,
//! see [`crate::peer`]) on the same instance with the same time limit, in the same run.
//!
//! The peer is given Zonal's bin count as its number of candidate bins: it is a valid upper
//! bound, it keeps the peer's model as small as the instance allows, and it never gives the
//! peer a worse start than "no solution" (the peer still has to find a packing itself).

use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use zonal_pack::bench::{run_vbp_suite_with, Family, VbpOptions, VbpResult};
use zonal_pack::{BinSupply, Instance};

use crate::peer::{PeerOutcome, PeerRunner, VbpPeerInput};

/// One instance: Zonal's result and the peer's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VbpRow {
    pub ours: VbpResult,
    pub peer: Option<PeerOutcome>,
    /// Why the peer has no answer on this instance, when it was asked and failed.
    pub peer_error: Option<String>,
}

/// The peer's view of an instance; `None` for listed (heterogeneous) bins, which the peer
/// formulation does not take.
pub fn peer_input(inst: &Instance, max_bins: usize, time_limit_s: f64) -> Option<VbpPeerInput> {
    let BinSupply::Identical { capacity, target } = &inst.bins else { return None };
    let t = target.unwrap_or(1.0);
    Some(VbpPeerInput {
        name: inst.name.clone(),
        dims: inst.dims,
        // The same effective capacity Zonal packs against: ⌊C·t⌋.
        capacity: capacity.iter().map(|&c| (c as f64 * t).floor() as u64).collect(),
        items: inst.items.clone(),
        max_bins: max_bins.max(1),
        time_limit_s,
        threads: 1,
    })
}

/// Runs the suite; `progress` sees each row as soon as both solvers are done with it.
pub fn run(
    dir: &Path,
    families: &[Family],
    opts: &VbpOptions,
    peer: Option<&PeerRunner>,
    mut progress: impl FnMut(&VbpRow),
) -> io::Result<Vec<VbpRow>> {
    let mut rows = Vec::new();
    run_vbp_suite_with(dir, families, opts, |ours, inst| {
        let (peer_outcome, peer_error) = match peer {
            None => (None, None),
            Some(runner) => match peer_input(inst, ours.bins, opts.time_limit.as_secs_f64()) {
                None => (None, Some("the peer formulation takes identical bins only".to_string())),
                Some(input) => match runner.solve_vbp(&input) {
                    Ok(o) => (Some(o), None),
                    Err(e) => (None, Some(e.to_string())),
                },
            },
        };
        let row = VbpRow { ours: ours.clone(), peer: peer_outcome, peer_error };
        progress(&row);
        rows.push(row);
    })?;
    rows.sort_by(|a, b| (a.ours.family, &a.ours.instance).cmp(&(b.ours.family, &b.ours.instance)));
    Ok(rows)
}

/// Per-family comparison with the peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSummary {
    pub family: Family,
    pub instances: usize,
    /// Instances where the peer returned a packing.
    pub peer_solved: usize,
    /// Instances where the peer proved optimality.
    pub peer_optimal: usize,
    /// Mean of Zonal bins / peer bins over the instances both solved (below 1: Zonal better).
    pub mean_ratio_to_peer: f64,
    /// Mean peer bins / OPT over the instances it solved that have a known optimum.
    pub peer_mean_ratio_to_opt: f64,
    pub ours_fewer_bins: usize,
    pub ours_more_bins: usize,
    pub mean_time_s: f64,
    pub peer_mean_time_s: f64,
}

pub fn summarise(rows: &[VbpRow]) -> Vec<PeerSummary> {
    let mut out = Vec::new();
    for family in Family::ALL {
        let fr: Vec<&VbpRow> = rows.iter().filter(|r| r.ours.family == family).collect();
        if fr.is_empty() {
            continue;
        }
        let both: Vec<(&VbpRow, u64)> =
            fr.iter().filter_map(|r| r.peer.as_ref().and_then(|p| p.bins).map(|b| (*r, b))).collect();
        let with_opt: Vec<f64> = both.iter().filter_map(|(r, b)| r.ours.opt.map(|o| *b as f64 / o as f64)).collect();
        let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
        let ratios: Vec<f64> = both.iter().map(|(r, b)| r.ours.bins as f64 / (*b).max(1) as f64).collect();
        let times: Vec<f64> = fr.iter().map(|r| r.ours.time_s).collect();
        let peer_times: Vec<f64> = fr.iter().filter_map(|r| r.peer.as_ref().map(|p| p.time_s)).collect();
        out.push(PeerSummary {
            family,
            instances: fr.len(),
            peer_solved: both.len(),
            peer_optimal: fr.iter().filter(|r| r.peer.as_ref().is_some_and(|p| p.status == "optimal")).count(),
            mean_ratio_to_peer: mean(&ratios),
            peer_mean_ratio_to_opt: mean(&with_opt),
            ours_fewer_bins: both.iter().filter(|(r, b)| (r.ours.bins as u64) < *b).count(),
            ours_more_bins: both.iter().filter(|(r, b)| (r.ours.bins as u64) > *b).count(),
            mean_time_s: mean(&times),
            peer_mean_time_s: mean(&peer_times),
        });
    }
    out
}

/// Writes one CSV row per instance: Zonal's figures, then the peer's.
pub fn write_csv<W: Write>(w: W, rows: &[VbpRow]) -> io::Result<()> {
    let mut wr = csv::Writer::from_writer(w);
    wr.write_record([
        "family",
        "instance",
        "items",
        "dims",
        "bins",
        "opt",
        "lower_bound",
        "published_best",
        "ratio_to_opt",
        "gap",
        "time_s",
        "valid",
        "peer",
        "peer_status",
        "peer_bins",
        "peer_bound",
        "peer_time_s",
        "ratio_to_peer",
        "peer_error",
    ])?;
    let opt_str = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
    for r in rows {
        let o = &r.ours;
        let p = r.peer.as_ref();
        wr.write_record([
            o.family.name().to_string(),
            o.instance.clone(),
            o.items.to_string(),
            o.dims.to_string(),
            o.bins.to_string(),
            opt_str(o.opt),
            o.lower_bound.max(o.published_lb).to_string(),
            o.published_best.to_string(),
            o.ratio.map(|x| format!("{x:.4}")).unwrap_or_default(),
            format!("{:.4}", o.gap),
            format!("{:.4}", o.time_s),
            o.valid.to_string(),
            p.map(|p| p.solver.clone()).unwrap_or_default(),
            p.map(|p| p.status.clone()).unwrap_or_default(),
            opt_str(p.and_then(|p| p.bins)),
            opt_str(p.and_then(|p| p.bound)),
            p.map(|p| format!("{:.4}", p.time_s)).unwrap_or_default(),
            p.and_then(|p| p.bins).map(|b| format!("{:.4}", o.bins as f64 / b.max(1) as f64)).unwrap_or_default(),
            r.peer_error.clone().unwrap_or_default(),
        ])?;
    }
    wr.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_packs_against_the_same_effective_capacity() {
        let inst = Instance {
            name: "t".into(),
            dims: 2,
            items: vec![vec![3, 4]],
            bins: BinSupply::Identical { capacity: vec![10, 15], target: Some(0.9) },
        };
        let input = peer_input(&inst, 0, 2.0).expect("identical bins");
        assert_eq!(input.capacity, vec![9, 13]);
        assert_eq!(input.max_bins, 1, "at least one candidate bin");
        let listed = Instance { bins: BinSupply::Listed(vec![]), ..inst };
        assert!(peer_input(&listed, 1, 2.0).is_none());
    }
}
