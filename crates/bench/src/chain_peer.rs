//! A peer solver (OR-Tools CP-SAT or HiGHS through highspy, see [`crate::peer`]) on Zonal's
//! exact chain ILP, for the `zoo` and `vnmp` suites.
//!
//! The peer solves **the same formulation**: for every chain, the ILP that
//! [`zonal_place::chain::place_chain_with`] solves (against the same residual capacity) is
//! built again by [`zonal_place::chain::chain_ilp`] and written as an MPS file into a
//! temporary directory owned by [`ChainPeer`] (removed when it is dropped; each file is
//! removed after its solve). `peers/mip.py` reads the file and solves it with the same time
//! limit, one thread and Zonal's relative gap; an answer about a model of another size than
//! the one written counts as an error, not as a comparison. The chain ILP has binary columns
//! only, so CP-SAT needs no approximation of continuous variables; its real coefficients
//! (delays, the path tie-break, bandwidths) are scaled to integers by OR-Tools.
//!
//! Objectives compared are the ILP's own, path tie-break included (`SolveStats::objective`
//! for Zonal), so "both optimal" must mean "equal" up to the solvers' tolerances:
//! [`AGREEMENT_TOLERANCE`] relative. A plan's delay (the heuristic's objective) has no
//! tie-break; against a peer objective it is off by about 1e-6 relative, far below the
//! 4 decimals the ratios are printed with.

use std::path::PathBuf;

use zonal_place::chain::{chain_ilp, ChainObjective, ChainRequest, Residual};
use zonal_place::problem::Problem;
use zonal_place::solver::SolverOptions;
use zonal_place::PlaceError;

use crate::peer::{MipPeerInput, PeerRunner};
use crate::report::{median, num, seconds, Summary};
use crate::BenchError;

/// Relative difference under which two proven optima count as the same objective.
pub const AGREEMENT_TOLERANCE: f64 = 1e-6;

/// Threads every peer solve gets.
pub const PEER_THREADS: usize = 1;

/// What the peer did on one chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainPeerResult {
    /// `ortools` or `highspy`.
    pub peer: &'static str,
    /// `optimal`, `feasible`, `infeasible`, `unbounded`, `unknown`, `timeout`,
    /// `skipped: …` (Zonal's pre-checks proved the chain infeasible, so there is no ILP), or
    /// `error: …` (the export or the peer process failed; the text says which).
    pub status: String,
    pub objective: Option<f64>,
    pub bound: Option<f64>,
    /// Reading the model file and solving, as the peer measured it.
    pub seconds: f64,
    /// The peer process from start to exit (Python start-up and imports included).
    pub wall_seconds: f64,
}

impl ChainPeerResult {
    pub fn optimal(&self) -> bool {
        self.status == "optimal"
    }
    /// The peer got a model (it was neither skipped nor failed).
    pub fn ran(&self) -> bool {
        !self.status.starts_with("skipped") && !self.status.starts_with("error")
    }
    fn error(peer: &'static str, detail: String) -> ChainPeerResult {
        ChainPeerResult {
            peer,
            status: format!("error: {detail}"),
            objective: None,
            bound: None,
            seconds: 0.0,
            wall_seconds: 0.0,
        }
    }
}

/// A peer ready to solve chain ILPs, with the directory its model files go to.
pub struct ChainPeer<'a> {
    runner: &'a PeerRunner,
    dir: tempfile::TempDir,
    time_limit_s: f64,
    mip_rel_gap: f64,
    solved: std::cell::Cell<usize>,
}

impl<'a> ChainPeer<'a> {
    /// The peer with Zonal's time limit and relative gap from `solver` (no limit: 60 s).
    pub fn new(runner: &'a PeerRunner, solver: &SolverOptions) -> Result<ChainPeer<'a>, BenchError> {
        let dir = tempfile::Builder::new().prefix("zonal-peer-models-").tempdir().map_err(|e| {
            BenchError::new(format!("cannot create a temporary directory for the peer's model files: {e}"))
        })?;
        Ok(ChainPeer {
            runner,
            dir,
            time_limit_s: solver.time_limit.map_or(60.0, |t| t.as_secs_f64()),
            mip_rel_gap: solver.mip_rel_gap,
            solved: std::cell::Cell::new(0),
        })
    }

    pub fn name(&self) -> &'static str {
        self.runner.peer.name()
    }

    /// Writes the chain ILP of `request` against `residual` and solves it with the peer;
    /// `label` names the chain in messages.
    pub fn solve(
        &self,
        label: &str,
        problem: &Problem,
        request: &ChainRequest,
        residual: &Residual,
        objective: ChainObjective,
    ) -> ChainPeerResult {
        let n = self.solved.get();
        self.solved.set(n + 1);
        let path: PathBuf = self.dir.path().join(format!("chain-{n}.mps"));
        let model = match chain_ilp(problem, request, residual, objective) {
            Ok(m) => m,
            Err(PlaceError::Infeasible { .. }) => {
                return ChainPeerResult {
                    status: "skipped: infeasible by Zonal's pre-checks, no ILP".into(),
                    ..ChainPeerResult::error(self.name(), String::new())
                }
            }
            Err(e) => return ChainPeerResult::error(self.name(), format!("building the chain ILP of {label}: {e}")),
        };
        let shape = match model.write_model_file(&path) {
            Ok(shape) => shape,
            Err(e) => return ChainPeerResult::error(self.name(), format!("exporting the chain ILP of {label}: {e}")),
        };
        let input = MipPeerInput {
            name: label.to_string(),
            mps: path.clone(),
            time_limit_s: self.time_limit_s,
            threads: PEER_THREADS,
            mip_rel_gap: self.mip_rel_gap,
        };
        let outcome = self.runner.solve_mip(&input);
        // Files of a long run add up; the directory itself goes when the peer is dropped.
        let _ = std::fs::remove_file(&path);
        match outcome {
            // A file read into another size is not the same formulation: no comparison.
            Ok(o) if o.status != "timeout" && (o.columns, o.rows) != (shape.columns, shape.rows) => {
                ChainPeerResult::error(
                    self.name(),
                    format!(
                        "{label}: the peer read {} columns and {} rows from the model file, Zonal wrote {} and {}",
                        o.columns, o.rows, shape.columns, shape.rows
                    ),
                )
            }
            Ok(o) => ChainPeerResult {
                peer: self.name(),
                status: o.status,
                objective: o.objective,
                bound: o.bound,
                seconds: o.time_s,
                wall_seconds: o.wall_s,
            },
            Err(e) => ChainPeerResult::error(self.name(), e.to_string()),
        }
    }
}

/// `|a − b|` relative to the larger magnitude, with 1 as the floor so that objectives near 0
/// (a chain collocated in one zone) compare absolutely.
pub fn relative_difference(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1.0)
}

/// `ours / theirs`: 1 when both are 0, infinite when only theirs is.
pub fn objective_ratio(ours: f64, theirs: f64) -> f64 {
    if theirs.abs() <= 1e-9 {
        if ours.abs() <= 1e-9 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        ours / theirs
    }
}

/// The CSV columns a suite appends for the peer (empty fields without one).
pub const CSV_COLUMNS: [&str; 9] = [
    "peer",
    "peer_status",
    "peer_objective",
    "peer_bound",
    "peer_seconds",
    "peer_wall_seconds",
    "exact_ilp_objective",
    "exact_over_peer",
    "objectives_agree",
];

/// The fields of [`CSV_COLUMNS`]: the peer's answer, Zonal's ILP objective, their ratio, and
/// whether two proven optima agree (empty unless both are proven).
pub fn csv_fields(
    exact_ilp_objective: Option<f64>,
    exact_optimal: bool,
    peer: Option<&ChainPeerResult>,
) -> Vec<String> {
    let Some(p) = peer else {
        return vec![String::new(); CSV_COLUMNS.len()];
    };
    let ratio = exact_ilp_objective.zip(p.objective).map(|(e, q)| objective_ratio(e, q));
    let agree = match (exact_ilp_objective, p.objective) {
        (Some(e), Some(q)) if exact_optimal && p.optimal() => {
            (relative_difference(e, q) <= AGREEMENT_TOLERANCE).to_string()
        }
        _ => String::new(),
    };
    vec![
        p.peer.to_string(),
        p.status.clone(),
        num(p.objective),
        num(p.bound),
        num(Some(p.seconds)),
        num(Some(p.wall_seconds)),
        num(exact_ilp_objective),
        ratio.map_or(String::new(), |r| if r.is_infinite() { "inf".into() } else { num(Some(r)) }),
        agree,
    ]
}

/// One chain as the peer summary sees it.
#[derive(Debug, Clone)]
pub struct Comparison<'a> {
    /// The summary row it belongs to (a topology and chain, a substrate size).
    pub group: String,
    /// Zonal's exact ILP objective (tie-break included) and whether it was proven optimal.
    pub exact_objective: Option<f64>,
    pub exact_optimal: bool,
    /// Zonal's exact wall time: build, solve, extract.
    pub exact_seconds: f64,
    /// The heuristic's objective and time, when the suite runs it.
    pub heuristic_objective: Option<f64>,
    pub heuristic_seconds: Option<f64>,
    pub peer: &'a ChainPeerResult,
}

fn fmt_ratio(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_infinite() => "inf".into(),
        Some(x) => format!("{x:.4}"),
        None => "-".into(),
    }
}

fn fmt_speed(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.2}×"))
}

fn median_all(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// One row per group: how often the peer solved and proved, whether proven optima agree,
/// objective ratios of Zonal's exact ILP and heuristic against the peer (over the chains
/// both solved), and time ratios (Zonal exact wall over the peer's read + solve time).
pub fn summary(suite: &str, comparisons: &[Comparison]) -> Summary {
    let peer = comparisons.first().map_or("peer", |c| c.peer.peer);
    let mut groups: Vec<(String, Vec<&Comparison>)> = Vec::new();
    for c in comparisons {
        match groups.iter_mut().find(|(g, _)| *g == c.group) {
            Some((_, v)) => v.push(c),
            None => groups.push((c.group.clone(), vec![c])),
        }
    }
    let mut s = Summary {
        title: format!(
            "{suite}: Zonal's chain ILP against {peer} on the same MPS model (same time limit and relative gap, 1 thread)"
        ),
        headers: [
            "GROUP",
            "CHAINS",
            "PEER SOLVED",
            "PEER OPTIMAL",
            "BOTH OPTIMAL",
            "AGREE 1e-6",
            "MAX REL DIFF",
            "EXACT/PEER (median, max)",
            "HEUR/PEER (median, max)",
            "EXACT TIME",
            "PEER TIME",
            "PEER/EXACT TIME",
            "PEER/HEUR TIME",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    let mut disagreements = Vec::new();
    let skipped = comparisons.iter().filter(|c| c.peer.status.starts_with("skipped")).count();
    for (group, cs) in &groups {
        let cs: Vec<&Comparison> = cs.iter().copied().filter(|c| !c.peer.status.starts_with("skipped")).collect();
        if cs.is_empty() {
            continue;
        }
        let solved = cs.iter().filter(|c| c.peer.objective.is_some()).count();
        let optimal = cs.iter().filter(|c| c.peer.optimal()).count();
        let both: Vec<(f64, f64)> = cs
            .iter()
            .filter(|c| c.exact_optimal && c.peer.optimal())
            .filter_map(|c| c.exact_objective.zip(c.peer.objective))
            .collect();
        let diffs: Vec<f64> = both.iter().map(|&(e, q)| relative_difference(e, q)).collect();
        let agree = diffs.iter().filter(|d| **d <= AGREEMENT_TOLERANCE).count();
        if agree < diffs.len() {
            disagreements.push(format!("{group}: {} of {} proven optima differ", diffs.len() - agree, diffs.len()));
        }
        let ratios = |pick: &dyn Fn(&Comparison) -> Option<f64>| -> Vec<f64> {
            cs.iter().filter_map(|c| pick(c).zip(c.peer.objective).map(|(o, q)| objective_ratio(o, q))).collect()
        };
        let exact_r = ratios(&|c| c.exact_objective);
        let heur_r = ratios(&|c| c.heuristic_objective);
        let max_of = |v: &[f64]| v.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let pair = |v: &[f64]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                format!("{}, {}", fmt_ratio(median_all(v)), fmt_ratio(max_of(v)))
            }
        };
        let ran: Vec<&&Comparison> = cs.iter().filter(|c| c.peer.ran()).collect();
        let exact_t: Vec<f64> = ran.iter().map(|c| c.exact_seconds).collect();
        let peer_t: Vec<f64> = ran.iter().map(|c| c.peer.seconds).collect();
        let per_exact: Vec<f64> =
            ran.iter().filter(|c| c.exact_seconds > 0.0).map(|c| c.peer.seconds / c.exact_seconds).collect();
        let per_heur: Vec<f64> =
            ran.iter().filter_map(|c| c.heuristic_seconds.filter(|h| *h > 0.0).map(|h| c.peer.seconds / h)).collect();
        s.rows.push(vec![
            group.clone(),
            cs.len().to_string(),
            solved.to_string(),
            optimal.to_string(),
            both.len().to_string(),
            if diffs.is_empty() { "-".into() } else { format!("{agree}/{}", diffs.len()) },
            max_of(&diffs).map_or("-".into(), |d| format!("{d:.1e}")),
            pair(&exact_r),
            pair(&heur_r),
            seconds(median(&exact_t)),
            seconds(median(&peer_t)),
            fmt_speed(median(&per_exact)),
            fmt_speed(median(&per_heur)),
        ]);
    }
    s.notes.push(format!(
        "objectives are the ILP's own (path tie-break included); EXACT/PEER and HEUR/PEER below 1: Zonal better; AGREE counts chains both proved optimal whose objectives are within {AGREEMENT_TOLERANCE:e} relative"
    ));
    s.notes.push(
        "times: medians; EXACT is Zonal's build + solve + extract wall time, PEER the peer's MPS read + solve (Python start-up excluded, in the CSV as peer_wall_seconds); time ratios are medians of per-chain ratios (above 1: the peer is slower)"
            .into(),
    );
    if skipped > 0 {
        s.notes.push(format!(
            "{skipped} chain(s) proved infeasible by Zonal's pre-checks have no ILP to hand over and are not counted"
        ));
    }
    let errors: Vec<&str> =
        comparisons.iter().filter(|c| c.peer.status.starts_with("error")).map(|c| c.peer.status.as_str()).collect();
    if let Some(first) = errors.first() {
        s.notes.push(format!("{} peer run(s) failed, first: {first}", errors.len()));
    }
    if disagreements.is_empty() {
        s.notes.push("every pair of proven optima agrees".into());
    } else {
        s.notes.push(format!("DISAGREEMENT: {}", disagreements.join("; ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: &str, objective: Option<f64>, seconds: f64) -> ChainPeerResult {
        ChainPeerResult {
            peer: "highspy",
            status: status.into(),
            objective,
            bound: objective,
            seconds,
            wall_seconds: seconds + 0.5,
        }
    }

    #[test]
    fn ratios_and_differences_handle_zero_objectives() {
        assert_eq!(objective_ratio(0.0, 0.0), 1.0);
        assert_eq!(objective_ratio(2.0, 0.0), f64::INFINITY);
        assert_eq!(objective_ratio(3.0, 2.0), 1.5);
        assert!(relative_difference(1e-7, 0.0) <= AGREEMENT_TOLERANCE);
        assert!(relative_difference(100.0, 100.0001) <= AGREEMENT_TOLERANCE * 1.01);
        assert!(relative_difference(100.0, 100.01) > AGREEMENT_TOLERANCE);
    }

    #[test]
    fn csv_fields_match_the_columns() {
        assert_eq!(csv_fields(None, false, None).len(), CSV_COLUMNS.len());
        let p = result("optimal", Some(10.0), 0.2);
        let f = csv_fields(Some(10.0), true, Some(&p));
        assert_eq!(f.len(), CSV_COLUMNS.len());
        assert_eq!(f[1], "optimal");
        assert_eq!(f[8], "true");
        let f = csv_fields(Some(10.5), true, Some(&p));
        assert_eq!(f[8], "false");
        let f = csv_fields(Some(10.5), false, Some(&p));
        assert_eq!(f[8], "", "agreement is only judged between two proven optima");
    }

    #[test]
    fn the_summary_counts_agreement_and_ratios() {
        let ok = result("optimal", Some(10.0), 0.5);
        let limited = result("feasible", Some(12.0), 2.0);
        let failed = ChainPeerResult::error("highspy", "exporting: x".into());
        let c = |exact: f64, exact_optimal: bool, peer| Comparison {
            group: "g".into(),
            exact_objective: Some(exact),
            exact_optimal,
            exact_seconds: 1.0,
            heuristic_objective: Some(11.0),
            heuristic_seconds: Some(0.01),
            peer,
        };
        let cs = [c(10.0, true, &ok), c(11.0, false, &limited), c(9.0, true, &failed), c(10.1, true, &ok)];
        let s = summary("test", &cs);
        assert_eq!(s.rows.len(), 1);
        let r = &s.rows[0];
        assert_eq!(&r[1..6], ["4", "3", "2", "2", "1/2"]);
        assert_eq!(r[7], "1.0000, 1.0100");
        assert!(s.notes.iter().any(|n| n.starts_with("DISAGREEMENT") && n.contains("1 of 2")), "{:?}", s.notes);
        assert!(s.notes.iter().any(|n| n.contains("1 peer run(s) failed")), "{:?}", s.notes);
    }
}
