//! Heuristic against exact on INPUT chains (SC1–SC3 of [`zonal_bench::scenarios`]) on a
//! Topology Zoo network (Interoute by default, 20 data centres of one 32-core host each).
//! It lives in `zonal-bench`, beside the scenario generator, so that `zonal-place` needs no
//! dev-dependency on this crate (which depends on it).
//!
//! ```text
//! cargo run --release -p zonal-bench --example chain_heuristic -- \
//!     [graphml] [subscriptions per shape] [time limit s] [SC1,SC2,SC3] [delay|servers|weighted]
//! ```
//!
//! The exact sequence drives the residual capacity: at every step the exact ILP and the
//! heuristic place the same subscription against the same residual, so each ratio compares
//! like with like; then the exact plan is consumed. A separate heuristic-only sequence gives
//! the totals a user of `--algorithm heuristic` would see. Times are wall-clock per chain, the
//! heuristic's including its bound. "Exact" is the plain ILP (`strong_bound: false`); the
//! exact method with its strong bound (the default of `place_chain_with`) also places every
//! subscription against the same residual: `strong_s` is its total time, `strong_no_highs`
//! the chains it proved optimal without calling HiGHS, `strong_same` those whose objective
//! equals the plain ILP's (within 1e-4).

use std::time::Instant;

use zonal_bench::scenarios::{input_subscriptions, INPUT_CHAINS};
use zonal_model::{Bundle, Document};
use zonal_place::chain::{consume, place_chain_with, ChainObjective, ChainOptions, ChainRequest, Residual};
use zonal_place::heuristic::{place_chains_heuristic, BoundMethod, ChainHeuristic, HeuristicOptions};
use zonal_place::problem::{Problem, ProblemOptions};
use zonal_place::solver::SolverOptions;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().cloned().unwrap_or_else(|| "../shared/data/topology-zoo/Interoute.graphml".into());
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let limit: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60.0);
    let shapes: Vec<String> = args
        .get(3)
        .map_or_else(|| vec!["SC1".into(), "SC2".into(), "SC3".into()], |s| s.split(',').map(String::from).collect());
    let objective = match args.get(4).map(String::as_str) {
        Some("servers") => ChainObjective::UsedServers,
        Some("weighted") => ChainObjective::Weighted { delay: 1.0, servers: 0.1 },
        _ => ChainObjective::Delay,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    let (infra, _) = match zonal_descriptor::import::import_graphml(
        &text,
        &path,
        &zonal_descriptor::import::GraphmlOptions::default(),
    ) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!("# {path}: {} zones, {} links, {} hosts; {n} subscriptions per shape; objective {objective:?}; exact time limit {limit} s per chain", infra.zones.len(), infra.links.len(), infra.host_count());
    println!("shape,apps,chains_both,exact_total,heur_total,ratio_mean,ratio_max,exact_s,heur_s,speedup,heur_gap_mean,exact_timeouts,heur_seq_placed,heur_seq_total,heur_seq_bound,heur_proven,strong_s,strong_speedup,strong_no_highs,strong_optimal,strong_same");
    for shape in INPUT_CHAINS.iter().filter(|s| shapes.iter().any(|x| x == s.name)) {
        let Some(services) = input_subscriptions(&infra, shape, n, 42) else {
            eprintln!("{}: the network has no data centre or no transit zone", shape.name);
            continue;
        };
        let mut docs = vec![Document::Infrastructure(infra.clone())];
        docs.extend(services.iter().cloned().map(Document::Service));
        let p = match Problem::from_bundle(&Bundle::new(docs), &ProblemOptions::default()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        let reqs: Vec<ChainRequest> = services
            .iter()
            .map(|s| ChainRequest { id: s.name.clone(), service: s.name.clone(), region: None })
            .collect();
        let exact_opts = ChainOptions {
            objective,
            solver: SolverOptions {
                time_limit: Some(std::time::Duration::from_secs_f64(limit)),
                threads: Some(1),
                ..Default::default()
            },
            // The plain ILP (no heuristic start, no combinatorial bound): the reference the heuristic is
            // measured against.
            strong_bound: false,
            ..Default::default()
        };
        let strong_opts = ChainOptions { strong_bound: true, ..exact_opts.clone() };
        let heur_opts = HeuristicOptions { objective, bound: BoundMethod::Auto, ..Default::default() };
        let mut heur = ChainHeuristic::new(&p, heur_opts.clone());
        let mut residual = Residual::full(&p);
        let (mut both, mut timeouts) = (0usize, 0usize);
        let (mut st, mut no_highs, mut strong_optimal, mut strong_same, mut heur_proven) =
            (0.0, 0usize, 0usize, 0usize, 0usize);
        let (mut et, mut ht, mut eo, mut ho, mut gaps) = (0.0, 0.0, 0.0, 0.0, 0.0);
        let mut ratios = Vec::new();
        for req in &reqs {
            let t0 = Instant::now();
            let e = place_chain_with(&p, req, &residual, &exact_opts);
            let es = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let h = heur.place(req, &residual);
            let hs = t1.elapsed().as_secs_f64();
            let t2 = Instant::now();
            let strong = place_chain_with(&p, req, &residual, &strong_opts);
            let ss = t2.elapsed().as_secs_f64();
            match (&e, &h) {
                (Ok(e), Ok(h)) => {
                    both += 1;
                    st += ss;
                    if h.status == zonal_place::PlanStatus::Optimal {
                        heur_proven += 1;
                    }
                    if let Ok(s) = &strong {
                        no_highs += usize::from(s.stats.columns == 0);
                        strong_optimal += usize::from(s.status == zonal_place::PlanStatus::Optimal);
                        strong_same +=
                            usize::from((s.objective - e.objective).abs() <= 1e-4 * e.objective.abs().max(1.0));
                    }
                    et += es;
                    ht += hs;
                    eo += e.objective;
                    ho += h.objective;
                    gaps += h.gap.unwrap_or(0.0);
                    if e.status != zonal_place::PlanStatus::Optimal {
                        timeouts += 1;
                    }
                    ratios.push(if e.objective.abs() > 1e-12 {
                        h.objective / e.objective
                    } else if h.objective.abs() > 1e-12 {
                        f64::INFINITY
                    } else {
                        1.0
                    });
                    eprintln!(
                        "{} {}: exact {:.4} ({:.3} s, {:?}) heuristic {:.4} ({:.4} s, bound {:.4}) strong {} ({ss:.3} s) [{}]",
                        shape.name,
                        req.id,
                        e.objective,
                        es,
                        e.status,
                        h.objective,
                        hs,
                        h.bound.unwrap_or(0.0),
                        strong.as_ref().map_or_else(
                            |x| x.to_string(),
                            |s| format!("{:.4} {:?} columns {}", s.objective, s.status, s.stats.columns)
                        ),
                        h.notes.join(" | ")
                    );
                }
                (e, h) => eprintln!(
                    "{} {}: exact {:?} heuristic {:?}",
                    shape.name,
                    req.id,
                    e.as_ref().map(|x| x.objective).map_err(ToString::to_string),
                    h.as_ref().map(|x| x.objective).map_err(ToString::to_string)
                ),
            }
            match &e {
                Ok(plan) => consume(&p, plan, &mut residual),
                Err(_) => {
                    if let Ok(plan) = &h {
                        consume(&p, plan, &mut residual);
                    }
                }
            }
        }
        let seq = place_chains_heuristic(&p, &reqs, &heur_opts);
        let placed = seq.outcomes.iter().filter(|o| o.result.is_ok()).count();
        let check = zonal_place::check(&p, &seq.combined);
        if !check.is_ok() {
            eprintln!("heuristic sequence failed the checker:\n{}", check.summary());
            std::process::exit(1);
        }
        let mean = if ratios.is_empty() { f64::NAN } else { ratios.iter().sum::<f64>() / ratios.len() as f64 };
        let max = ratios.iter().copied().fold(f64::NAN, f64::max);
        println!(
            "{},{},{both},{eo:.4},{ho:.4},{mean:.5},{max:.5},{et:.3},{ht:.4},{:.1},{:.5},{timeouts},{placed},{:.4},{:.4},{heur_proven},{st:.3},{:.1},{no_highs},{strong_optimal},{strong_same}",
            shape.name,
            shape.service_apps,
            if ht > 0.0 { et / ht } else { f64::NAN },
            if both > 0 { gaps / both as f64 } else { f64::NAN },
            seq.combined.objective,
            seq.combined.bound.unwrap_or(0.0),
            if st > 0.0 { et / st } else { f64::NAN }
        );
    }
}
