//! INPUT's service-chain evaluation (seed 004 §V.C) on Topology Zoo WANs: time to place and
//! route each subscription with the chain ILP, and its optimality gap.
//!
//! # Scenario
//!
//! * **Topology**: a GraphML file through the importer (links with great-circle delay,
//!   5 µs/km + 0.1 ms per hop; missing positions imputed). The [`DATACENTERS`] nodes of
//!   highest degree are data centres (ties: smaller GraphML id; the importer's `TopDegree`
//!   rule), the rest are transit/access nodes. INPUT picked its 20 at random; a
//!   degree rule is deterministic and puts data centres where the topology has hubs.
//! * **Data centres**: one aggregate host each of [`DC_CORES`] cores and [`DC_MEMORY_GIB`] GiB,
//!   so that 100 SC3 subscriptions (≈ 68 cores and ≈ 93 GiB each on average) fit in 20 data
//!   centres (INPUT gives no capacities).
//! * **Chains**: [`crate::scenarios::INPUT_CHAINS`] (SC1 4, SC2 20, SC3 60 service apps), each
//!   subscription a user pinned at a random transit node, the apps in a line, a back-end pinned
//!   at a random data centre, random CPU/RAM and channel bandwidth (seeded).
//! * **Placement**: subscriptions one after the other against the capacity the earlier ones
//!   left ([`zonal_place::chain::place_chains`]), delay objective, HiGHS defaults (relative gap
//!   1e-4). Every sequence's combined plan goes through the independent checker.
//!
//! INPUT reports placement (Vent, ≤ 18 ms) and routing (Crater, ≤ 210 ms for SC3) separately;
//! Zonal's ILP decides hosts and paths together, so a subscription's time is one figure,
//! split here into model building + path extraction and the HiGHS solve.

use std::collections::BTreeMap;

use zonal_descriptor::import::graphml::{import_graphml, DatacenterRule, GraphmlOptions};
use zonal_model::{Amount, Bundle, Document, Host, Infrastructure, Resources};
use zonal_place::chain::{consume, place_chain_with, place_chains, ChainOptions, ChainRequest, Residual};
use zonal_place::check::check;
use zonal_place::heuristic::{BoundMethod, ChainHeuristic, HeuristicOptions};
use zonal_place::problem::{Problem, ProblemOptions};
use zonal_place::solver::SolverOptions;
use zonal_place::{PlaceError, PlanStatus};

use crate::chain_peer::{self, ChainPeer, ChainPeerResult, Comparison};
use crate::report::{max, median, num, seconds, CsvRow, Summary};
use crate::scenarios::{input_subscriptions, ChainShape};
use crate::{BenchError, Progress};

/// Data-centre nodes per topology (INPUT: 20 of Interoute's 110).
pub const DATACENTERS: usize = 20;
/// Cores of a data centre's aggregate host.
pub const DC_CORES: u64 = 512;
/// Memory of a data centre's aggregate host, GiB.
pub const DC_MEMORY_GIB: u64 = 2048;

/// A topology's name (the file stem) and GraphML text.
#[derive(Debug, Clone, Copy)]
pub struct Topology<'a> {
    pub name: &'a str,
    pub graphml: &'a str,
}

/// The topologies of the benchmark, by file stem.
pub const TOPOLOGIES: [&str; 3] = ["Interoute", "Cogentco", "Kdl"];

/// The infrastructure of a topology: zones and links, the top-degree nodes as data centres.
pub fn zoo_infrastructure(t: Topology, datacenters: usize) -> Result<(Infrastructure, Vec<String>), BenchError> {
    let host = Host {
        name: "dc".into(),
        capacity: Resources::new()
            .with("cpu", Amount::cpu(DC_CORES * 1000))
            .with("memory", Amount::bytes(DC_MEMORY_GIB << 30)),
        available: true,
        ..Default::default()
    };
    let options = GraphmlOptions { datacenters: DatacenterRule::TopDegree(datacenters), host };
    let file = format!("{}.graphml", t.name);
    let (infra, report) = import_graphml(t.graphml, &file, &options).map_err(|e| BenchError::new(e.to_string()))?;
    Ok((infra, report.notes))
}

/// One subscription of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRecord {
    pub topology: String,
    pub zones: usize,
    pub links: usize,
    pub chain: String,
    pub service_apps: usize,
    pub seed: u64,
    /// Position in the sequence (0 first).
    pub index: usize,
    /// `optimal`, `feasible (limit)`, `infeasible`, `error: …`.
    pub status: String,
    /// Wall clock: build the ILP, solve, extract hosts and paths.
    pub total_seconds: f64,
    /// HiGHS alone.
    pub solve_seconds: f64,
    /// Summed link delay of all channel paths (the objective), ms.
    pub delay_ms: Option<f64>,
    pub bound: Option<f64>,
    pub gap: Option<f64>,
    pub columns: usize,
    pub rows: usize,
    /// Zones hosting the chain's service apps.
    pub zones_used: usize,
    /// Links crossed by all the chain's paths.
    pub hops: usize,
    /// The whole sequence's combined plan passed the independent checker.
    pub check_ok: bool,
    /// The ILP's own objective (path tie-break included), to compare with a peer's.
    pub ilp_objective: Option<f64>,
    /// The peer on the same ILP (same residual capacity), when one was asked for.
    pub peer: Option<ChainPeerResult>,
    /// With a peer: Zonal's heuristic on the same subscription and residual (its delay and
    /// wall time), so that its objective is also a ratio against the peer's.
    pub heuristic_delay_ms: Option<f64>,
    pub heuristic_seconds: Option<f64>,
    /// The heuristic's gap to its combinatorial bound on the same subscription and residual
    /// (with [`ZooRun::compare_plain`] or a peer).
    pub heuristic_gap: Option<f64>,
    /// With [`ZooRun::compare_plain`]: the previous exact method (plain HiGHS, no heuristic
    /// start, no combinatorial bound) on the same subscription and residual.
    pub plain: Option<PlainResult>,
}

/// The plain chain ILP (`ChainOptions::strong_bound` off) on one subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainResult {
    pub status: String,
    pub seconds: f64,
    pub delay_ms: Option<f64>,
    pub gap: Option<f64>,
}

impl ChainRecord {
    /// Solved to proven optimality (within HiGHS's relative gap).
    pub fn optimal(&self) -> bool {
        self.status == "optimal"
    }
    /// Building the model and extracting the solution (wall clock minus HiGHS).
    pub fn model_seconds(&self) -> f64 {
        (self.total_seconds - self.solve_seconds).max(0.0)
    }
}

impl CsvRow for ChainRecord {
    fn header() -> &'static [&'static str] {
        &[
            "topology",
            "zones",
            "links",
            "chain",
            "service_apps",
            "seed",
            "index",
            "status",
            "total_seconds",
            "solve_seconds",
            "model_seconds",
            "delay_ms",
            "bound",
            "gap",
            "columns",
            "rows",
            "zones_used",
            "hops",
            "check_ok",
            "peer",
            "peer_status",
            "peer_objective",
            "peer_bound",
            "peer_seconds",
            "peer_wall_seconds",
            "exact_ilp_objective",
            "exact_over_peer",
            "objectives_agree",
            "heuristic_delay_ms",
            "heuristic_seconds",
            "heuristic_gap",
            "plain_status",
            "plain_seconds",
            "plain_delay_ms",
            "plain_gap",
            "plain_over_exact_seconds",
        ]
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.topology.clone(),
            self.zones.to_string(),
            self.links.to_string(),
            self.chain.clone(),
            self.service_apps.to_string(),
            self.seed.to_string(),
            self.index.to_string(),
            self.status.clone(),
            num(Some(self.total_seconds)),
            num(Some(self.solve_seconds)),
            num(Some(self.model_seconds())),
            num(self.delay_ms),
            num(self.bound),
            num(self.gap),
            self.columns.to_string(),
            self.rows.to_string(),
            self.zones_used.to_string(),
            self.hops.to_string(),
            self.check_ok.to_string(),
        ]
        .into_iter()
        .chain(chain_peer::csv_fields(self.ilp_objective, self.optimal(), self.peer.as_ref()))
        .chain([num(self.heuristic_delay_ms), num(self.heuristic_seconds), num(self.heuristic_gap)])
        .chain([
            self.plain.as_ref().map_or(String::new(), |p| p.status.clone()),
            num(self.plain.as_ref().map(|p| p.seconds)),
            num(self.plain.as_ref().and_then(|p| p.delay_ms)),
            num(self.plain.as_ref().and_then(|p| p.gap)),
            num(self.plain.as_ref().map(|p| p.seconds / self.total_seconds.max(1e-9))),
        ])
        .collect()
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooRun {
    pub chains: Vec<ChainShape>,
    /// Subscriptions per (topology, chain, seed).
    pub subscriptions: usize,
    pub seeds: Vec<u64>,
    pub datacenters: usize,
    pub solver: SolverOptions,
    /// The exact method's strong bound (`ChainOptions::strong_bound`: heuristic plan and
    /// combinatorial bound first, HiGHS only when they leave a gap). Off with a peer, which
    /// solves the plain ILP too.
    pub strong_bound: bool,
    /// Also solve every subscription with the plain ILP (strong bound off) and the heuristic
    /// alone, against the same residual, for same-run ratios.
    pub compare_plain: bool,
}

fn status_text(r: &Result<zonal_place::Plan, PlaceError>) -> String {
    match r {
        Ok(p) => match &p.status {
            PlanStatus::Optimal => "optimal".into(),
            PlanStatus::Feasible { limit } => format!("feasible ({limit})"),
        },
        Err(PlaceError::Infeasible { .. }) => "infeasible".into(),
        Err(e) => format!("error: {e}"),
    }
}

/// Places `run.subscriptions` chains of every shape and seed on every topology, one after the
/// other; returns one record per subscription.
pub fn run_zoo(topologies: &[Topology], run: &ZooRun, progress: Progress) -> Result<Vec<ChainRecord>, BenchError> {
    run_zoo_with_peer(topologies, run, None, progress)
}

/// [`run_zoo`], and with `peer` the same ILPs solved again by the peer: after Zonal's
/// sequence, the residual capacity of every step is replayed from Zonal's plans (the
/// sequence's own [`consume`]), so the peer gets exactly the model Zonal solved at that step.
/// At each step Zonal's heuristic ([`crate::vnmp::default_heuristic`]: iteration-capped,
/// combinatorial bound) also places the subscription against that residual.
pub fn run_zoo_with_peer(
    topologies: &[Topology],
    run: &ZooRun,
    peer: Option<&ChainPeer>,
    progress: Progress,
) -> Result<Vec<ChainRecord>, BenchError> {
    let total = topologies.len() * run.chains.len() * run.seeds.len();
    let mut done = 0;
    let mut out = Vec::new();
    // With a peer, both solve the same ILP: the plain one (the strong bound may skip it).
    let strong_bound = run.strong_bound && peer.is_none();
    let options = ChainOptions { solver: run.solver.clone(), strong_bound, ..Default::default() };
    let plain_options = ChainOptions { strong_bound: false, ..options.clone() };
    for t in topologies {
        let (infra, _) = zoo_infrastructure(*t, run.datacenters)?;
        let (zones, links) = (infra.zones.len(), infra.links.len());
        for shape in &run.chains {
            for &seed in &run.seeds {
                progress(done, total, &format!("{}: {} × {}, seed {seed}", t.name, run.subscriptions, shape.name));
                done += 1;
                let services = input_subscriptions(&infra, shape, run.subscriptions, seed).ok_or_else(|| {
                    BenchError::new(format!("{}: expected data-centre and transit nodes, found only one kind", t.name))
                })?;
                let requests: Vec<ChainRequest> = services
                    .iter()
                    .map(|s| ChainRequest { id: s.name.clone(), service: s.name.clone(), region: None })
                    .collect();
                let mut docs = vec![Document::Infrastructure(infra.clone())];
                docs.extend(services.into_iter().map(Document::Service));
                let bundle = Bundle::new(docs);
                let p = Problem::from_bundle(&bundle, &ProblemOptions::default())
                    .map_err(|e| BenchError::new(format!("{}: {e}", t.name)))?;
                let seq = place_chains(&p, &requests, &options);
                let check_ok = check(&p, &seq.combined).is_ok();
                let mut residual = Residual::full(&p);
                let first = out.len();
                for (index, o) in seq.outcomes.iter().enumerate() {
                    let mut rec = ChainRecord {
                        topology: t.name.to_string(),
                        zones,
                        links,
                        chain: shape.name.to_string(),
                        service_apps: shape.service_apps,
                        seed,
                        index,
                        status: status_text(&o.result),
                        total_seconds: o.seconds,
                        solve_seconds: 0.0,
                        delay_ms: None,
                        bound: None,
                        gap: None,
                        columns: 0,
                        rows: 0,
                        zones_used: 0,
                        hops: 0,
                        check_ok,
                        ilp_objective: None,
                        peer: None,
                        heuristic_delay_ms: None,
                        heuristic_seconds: None,
                        heuristic_gap: None,
                        plain: None,
                    };
                    if let Ok(plan) = &o.result {
                        rec.solve_seconds = plan.stats.seconds;
                        rec.delay_ms = plan.term("delay_ms");
                        rec.bound = plan.bound;
                        rec.gap = plan.gap;
                        rec.columns = plan.stats.columns;
                        rec.rows = plan.stats.rows;
                        let used: std::collections::BTreeSet<&str> = plan
                            .placements
                            .iter()
                            .filter(|pl| pl.component.starts_with("app"))
                            .map(|pl| pl.zone.as_str())
                            .collect();
                        rec.zones_used = used.len();
                        rec.hops = plan.paths.iter().map(|pa| pa.zones.len().saturating_sub(1)).sum();
                        rec.ilp_objective = plan.stats.solve_log.last().and_then(|s| s.objective);
                    }
                    out.push(rec);
                }
                if run.compare_plain {
                    let mut residual = Residual::full(&p);
                    for (index, (o, req)) in seq.outcomes.iter().zip(&requests).enumerate() {
                        progress(
                            done - 1,
                            total,
                            &format!("{}: plain ILP {}/{}, seed {seed}", t.name, index + 1, requests.len()),
                        );
                        let rec = &mut out[first + index];
                        let started = std::time::Instant::now();
                        let plain = place_chain_with(&p, req, &residual, &plain_options);
                        let seconds = started.elapsed().as_secs_f64();
                        rec.plain = Some(PlainResult {
                            status: status_text(&plain),
                            seconds,
                            delay_ms: plain.as_ref().ok().and_then(|x| x.term("delay_ms")),
                            gap: plain.as_ref().ok().and_then(|x| x.gap),
                        });
                        let started = std::time::Instant::now();
                        let heur_options = HeuristicOptions { bound: BoundMethod::Combinatorial, ..Default::default() };
                        let h = ChainHeuristic::new(&p, heur_options).place(req, &residual);
                        rec.heuristic_seconds = Some(started.elapsed().as_secs_f64());
                        rec.heuristic_delay_ms = h.as_ref().ok().and_then(|plan| plan.term("delay_ms"));
                        rec.heuristic_gap = h.as_ref().ok().and_then(|plan| plan.gap);
                        if let Ok(plan) = &o.result {
                            consume(&p, plan, &mut residual);
                        }
                    }
                }
                if let Some(peer) = peer {
                    for (index, (o, req)) in seq.outcomes.iter().zip(&requests).enumerate() {
                        progress(
                            done - 1,
                            total,
                            &format!("{}: {} {}/{}, seed {seed}", t.name, peer.name(), index + 1, requests.len()),
                        );
                        let label = format!("{} {} seed {seed} #{index}", t.name, shape.name);
                        let rec = &mut out[first + index];
                        rec.peer = Some(peer.solve(&label, &p, req, &residual, options.objective));
                        let started = std::time::Instant::now();
                        let h = ChainHeuristic::new(&p, crate::vnmp::default_heuristic()).place(req, &residual);
                        rec.heuristic_seconds = Some(started.elapsed().as_secs_f64());
                        rec.heuristic_delay_ms = h.ok().and_then(|plan| plan.term("delay_ms"));
                        if let Ok(plan) = &o.result {
                            consume(&p, plan, &mut residual);
                        }
                    }
                }
            }
        }
    }
    progress(total, total, "done");
    Ok(out)
}

/// INPUT's reported time for SC3 (60 service apps): 18 ms to place + 210 ms to route.
pub const INPUT_SC3_SECONDS: f64 = 0.228;
/// The target for a 60-app chain on Interoute, placed and routed to proven optimality.
pub const TARGET_SECONDS: f64 = 1.0;

/// One row per (topology, chain): medians over every subscription of every seed.
pub fn summary(records: &[ChainRecord]) -> Summary {
    let mut groups: BTreeMap<(usize, String, usize), Vec<&ChainRecord>> = BTreeMap::new();
    for r in records {
        // Topologies in size order, chains in length order.
        groups.entry((r.zones, r.topology.clone(), r.service_apps)).or_default().push(r);
    }
    let mut s = Summary {
        title: "INPUT chain ILP: time to place and route one subscription (median over subscriptions and seeds)".into(),
        headers: [
            "TOPOLOGY", "CHAIN", "APPS", "PLACED", "OPTIMAL", "MEDIAN", "MAX", "SOLVE", "MODEL", "MAX GAP", "COLUMNS",
            "CHECK",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    for ((_, topology, apps), rs) in &groups {
        let placed: Vec<&&ChainRecord> = rs.iter().filter(|r| r.delay_ms.is_some()).collect();
        let total: Vec<f64> = placed.iter().map(|r| r.total_seconds).collect();
        let solve: Vec<f64> = placed.iter().map(|r| r.solve_seconds).collect();
        let model: Vec<f64> = placed.iter().map(|r| r.model_seconds()).collect();
        let gaps: Vec<f64> = placed.iter().filter_map(|r| r.gap).collect();
        let cols: Vec<f64> = placed.iter().map(|r| r.columns as f64).collect();
        s.rows.push(vec![
            topology.clone(),
            rs[0].chain.clone(),
            apps.to_string(),
            format!("{}/{}", placed.len(), rs.len()),
            format!("{}/{}", rs.iter().filter(|r| r.optimal()).count(), rs.len()),
            seconds(median(&total)),
            seconds(max(&total)),
            seconds(median(&solve)),
            seconds(median(&model)),
            max(&gaps).map_or("-".into(), |g| format!("{:.4}%", g * 100.0)),
            median(&cols).map_or("-".into(), |c| format!("{c:.0}")),
            if rs.iter().all(|r| r.check_ok) { "ok".into() } else { "FAILED".into() },
        ]);
    }
    for ((_, topology, apps), rs) in &groups {
        if *apps != 60 {
            continue;
        }
        let total: Vec<f64> = rs.iter().filter(|r| r.delay_ms.is_some()).map(|r| r.total_seconds).collect();
        if let Some(m) = median(&total) {
            s.notes.push(format!(
                "{topology} SC3: median {} = {:.2}× the 1 s target ({}), {:.2}× INPUT's 18 + 210 ms",
                seconds(Some(m)),
                TARGET_SECONDS / m,
                if m < TARGET_SECONDS { "met" } else { "missed" },
                INPUT_SC3_SECONDS / m
            ));
        }
    }
    s
}

/// With [`ZooRun::compare_plain`]: the exact method with its strong bound against the plain
/// ILP on the same subscriptions and residuals, one row per (topology, chain).
pub fn plain_summary(records: &[ChainRecord]) -> Option<Summary> {
    let mut groups: BTreeMap<(usize, String, usize), Vec<&ChainRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.plain.is_some()) {
        groups.entry((r.zones, r.topology.clone(), r.service_apps)).or_default().push(r);
    }
    if groups.is_empty() {
        return None;
    }
    let mut s = Summary {
        title: "Exact chain method: strong bound (heuristic + combinatorial bound, HiGHS only on a gap) against the plain ILP, same subscriptions and residuals".into(),
        headers: [
            "TOPOLOGY", "CHAIN", "SUBS", "OPTIMAL", "NO HIGHS", "MEDIAN", "PLAIN OPTIMAL", "PLAIN MEDIAN", "SPEED-UP",
            "SPEED-UP (MEDIAN OF RATIOS)", "SAME DELAY", "HEUR GAP MEAN", "HEUR GAP MAX",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    for ((_, topology, _), rs) in &groups {
        let new: Vec<f64> = rs.iter().map(|r| r.total_seconds).collect();
        let plain: Vec<f64> = rs.iter().filter_map(|r| r.plain.as_ref().map(|p| p.seconds)).collect();
        let ratios: Vec<f64> =
            rs.iter().filter_map(|r| r.plain.as_ref().map(|p| p.seconds / r.total_seconds.max(1e-9))).collect();
        let same = rs
            .iter()
            .filter(|r| match (r.delay_ms, r.plain.as_ref().and_then(|p| p.delay_ms)) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1.0),
                (None, None) => true,
                _ => false,
            })
            .count();
        let gaps: Vec<f64> = rs.iter().filter_map(|r| r.heuristic_gap).collect();
        let mean_gap = if gaps.is_empty() { None } else { Some(gaps.iter().sum::<f64>() / gaps.len() as f64) };
        let (m_new, m_plain) = (median(&new), median(&plain));
        s.rows.push(vec![
            topology.clone(),
            rs[0].chain.clone(),
            rs.len().to_string(),
            format!("{}/{}", rs.iter().filter(|r| r.optimal()).count(), rs.len()),
            format!("{}/{}", rs.iter().filter(|r| r.optimal() && r.columns == 0).count(), rs.len()),
            seconds(m_new),
            format!(
                "{}/{}",
                rs.iter().filter(|r| r.plain.as_ref().is_some_and(|p| p.status == "optimal")).count(),
                rs.len()
            ),
            seconds(m_plain),
            match (m_new, m_plain) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
                _ => "-".into(),
            },
            median(&ratios).map_or("-".into(), |r| format!("{r:.1}×")),
            format!("{same}/{}", rs.len()),
            mean_gap.map_or("-".into(), |g| format!("{:.4}%", g * 100.0)),
            max(&gaps).map_or("-".into(), |g| format!("{:.4}%", g * 100.0)),
        ]);
    }
    s.notes.push("SPEED-UP: plain median / strong-bound median; NO HIGHS: proven optimal by the bound without a solver call (0 columns); SAME DELAY: both plans' delay within 1e-4; HEUR GAP: the heuristic alone against its combinatorial bound".into());
    Some(s)
}

/// The peer's summary: one row per (topology, chain).
pub fn peer_summary(records: &[ChainRecord]) -> Option<Summary> {
    let comparisons: Vec<Comparison> = records
        .iter()
        .filter_map(|r| {
            Some(Comparison {
                group: format!("{} {}", r.topology, r.chain),
                exact_objective: r.ilp_objective,
                exact_optimal: r.optimal(),
                exact_seconds: r.total_seconds,
                heuristic_objective: r.heuristic_delay_ms,
                heuristic_seconds: r.heuristic_seconds,
                peer: r.peer.as_ref()?,
            })
        })
        .collect();
    if comparisons.is_empty() {
        return None;
    }
    let mut s = chain_peer::summary("zoo", &comparisons);
    s.notes.push("HEUR: Zonal's heuristic (iteration cap, combinatorial bound) on the same subscription and residual; its delay has no tie-break".into());
    Some(s)
}
