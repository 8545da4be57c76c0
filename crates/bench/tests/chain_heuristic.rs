//! The chain heuristic against the exact chain ILP on INPUT SC1/SC2 subscriptions
//! ([`zonal_bench::scenarios`]) on Interoute. It lives here, beside the scenario generator,
//! so that `zonal-place` needs no dev-dependency on `zonal-bench` (which depends on it).
//! A missing `../shared/data` file fails the test, naming it and saying how to get the data.

use zonal_bench::scenarios::{input_subscriptions, INPUT_CHAINS};
use zonal_model::{Bundle, Document};
use zonal_place::chain::{estimate_binaries, place_chains, ChainObjective, ChainOptions, ChainRequest, Residual};
use zonal_place::heuristic::{place_chains_heuristic, HeuristicOptions};
use zonal_place::problem::{Problem, ProblemOptions};

/// Interoute with INPUT SC1/SC2 subscriptions: every chain checked, never better than the
/// exact optimum, bound never above it.
#[test]
fn interoute_chains_against_the_ilp() {
    let text = zonal_testdata::read("topology-zoo/Interoute.graphml");
    let (infra, _) = zonal_descriptor::import::import_graphml(
        &text,
        "Interoute.graphml",
        &zonal_descriptor::import::GraphmlOptions::default(),
    )
    .unwrap();
    for (shape, n) in [(&INPUT_CHAINS[0], 6), (&INPUT_CHAINS[1], 2)] {
        let services = input_subscriptions(&infra, shape, n, 42).unwrap();
        let mut docs = vec![Document::Infrastructure(infra.clone())];
        docs.extend(services.iter().cloned().map(Document::Service));
        let p = Problem::from_bundle(&Bundle::new(docs), &ProblemOptions::default()).unwrap();
        let reqs: Vec<ChainRequest> = services
            .iter()
            .map(|s| ChainRequest { id: s.name.clone(), service: s.name.clone(), region: None })
            .collect();
        let heur = place_chains_heuristic(&p, &reqs, &HeuristicOptions::default());
        let report = zonal_place::check(&p, &heur.combined);
        assert!(report.is_ok(), "checker found violations:\n{}", report.summary());
        let size = estimate_binaries(&p, &reqs[0], &Residual::full(&p), ChainObjective::Delay).unwrap();
        eprintln!("{}: the chain ILP of the first subscription has {size} binaries", shape.name);
        // The plain ILP as the reference (the strong bound runs the heuristic inside).
        let exact = place_chains(&p, &reqs, &ChainOptions { strong_bound: false, ..Default::default() });
        for (h, e) in heur.outcomes.iter().zip(&exact.outcomes) {
            if let (Ok(h), Ok(e)) = (&h.result, &e.result) {
                // The first chain of both sequences sees the same (full) capacity.
                if h.subscriptions[0].id == reqs[0].id {
                    assert!(
                        h.objective >= e.objective - 1e-6,
                        "{}: {} < exact {}",
                        shape.name,
                        h.objective,
                        e.objective
                    );
                    assert!(h.bound.unwrap() <= e.objective + 1e-6);
                }
                assert!(h.gap.is_some() && h.notes.iter().any(|n| n.starts_with("bound")));
            }
        }
        let ok = heur.outcomes.iter().filter(|o| o.result.is_ok()).count();
        assert_eq!(ok, n, "{}: every subscription fits on Interoute", shape.name);
        eprintln!(
            "{}: heuristic {:.3} (bound {:.3}) vs exact {:.3}",
            shape.name,
            heur.combined.objective,
            heur.combined.bound.unwrap_or(0.0),
            exact.combined.objective
        );
    }
}
