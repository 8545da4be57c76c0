//! Unit tests of the heuristic's stages, through the entry points and, for the routing, the
//! cover bound and the segment programme, through their internals.

use super::bound::{CoverSearch, COVER_BOUND_EXPANSIONS};
use super::*;
use crate::chain::{place_chain_with, ChainOptions};
use crate::testkit::*;
use std::collections::BTreeSet;
use zonal_model::{Bandwidth, Bundle, Channel, Demand, Document, Infrastructure, Pin, Service};

/// `n` zones on a line (1 ms per link) plus a slow shortcut z0–z(n-1) (10 ms); one 4-core
/// host per zone except z0 (transit); chain ue (pinned z0) → a → b → be (pinned z(n-1)).
fn line(n: usize, mbps: Option<f64>) -> Bundle {
    let zones = (0..n)
        .map(|i| {
            zone(&format!("z{i}"), 50.0, i as f64, if i == 0 { vec![] } else { vec![host(&format!("h{i}"), 4, 8)] })
        })
        .collect();
    let mut links: Vec<_> = (1..n).map(|i| link(&format!("z{}", i - 1), &format!("z{i}"), Some(1.0), mbps)).collect();
    links.push(link("z0", &format!("z{}", n - 1), Some(10.0), mbps));
    let infra = Infrastructure { name: "line".into(), zones, links, ..Default::default() };
    let mut ue = component("ue", 0, 0);
    ue.user_side = true;
    ue.placement.pin = Some(Pin { zone: "z0".into(), host: None });
    let mut be = component("be", 1, 1);
    be.placement.pin = Some(Pin { zone: format!("z{}", n - 1), host: None });
    let ch = |a: &str, b: &str| Channel {
        from: a.into(),
        to: b.into(),
        bandwidth: Some(Bandwidth::from_mbps(10.0)),
        max_latency: None,
    };
    let svc = Service {
        name: "chain".into(),
        components: vec![ue, component("a", 2, 1), component("b", 2, 1), be],
        channels: vec![ch("ue", "a"), ch("a", "b"), ch("b", "be")],
        ..Default::default()
    };
    bundle_of(infra, svc)
}

fn req() -> ChainRequest {
    ChainRequest { id: "s".into(), service: "chain".into(), region: None }
}

/// One infrastructure and one service, no demand.
fn bundle_of(infra: Infrastructure, svc: Service) -> Bundle {
    Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(Demand::default())])
}

/// [`req`] placed by the plain chain ILP (no strong bound): the reference of the exact method.
fn plain_ilp(p: &crate::problem::Problem, residual: &Residual) -> crate::plan::Plan {
    place_chain_with(p, &req(), residual, &ChainOptions { strong_bound: false, ..Default::default() }).unwrap()
}

#[test]
fn depth_first_fallback_places_what_both_greedy_orders_cannot() {
    // z0–z1–z2–z3, 1 ms a link. a ∈ {z0, z3}, b ∈ {z0, z1}, c ∈ {z2, z3}; a–b and a–c
    // within 3 ms, b–c within 1 ms. The look-ahead ignores b–c (not a tree edge), so the
    // greedy puts a and b on z0, and then c has no zone within 1 ms of b.
    let zones = (0..4).map(|i| zone(&format!("z{i}"), 50.0, i as f64, vec![host(&format!("h{i}"), 4, 8)])).collect();
    let links = (1..4).map(|i| link(&format!("z{}", i - 1), &format!("z{i}"), Some(1.0), None)).collect();
    let infra = Infrastructure { name: "line".into(), zones, links, ..Default::default() };
    let comp = |name: &str, allowed: [&str; 2]| {
        let mut c = component(name, 1, 1);
        c.placement.zones = allowed.iter().map(|z| z.to_string()).collect();
        c
    };
    let ch = |a: &str, b: &str, ms: f64| Channel {
        from: a.into(),
        to: b.into(),
        bandwidth: None,
        max_latency: Some(zonal_model::Duration::from_millis(ms)),
    };
    let svc = Service {
        name: "chain".into(),
        components: vec![comp("a", ["z0", "z3"]), comp("b", ["z0", "z1"]), comp("c", ["z2", "z3"])],
        channels: vec![ch("a", "b", 3.0), ch("a", "c", 3.0), ch("b", "c", 1.0)],
        ..Default::default()
    };
    let b = bundle_of(infra, svc);
    let p = problem(&b);
    let residual = Residual::full(&p);
    let plan = place_chain_heuristic(&p, &req(), &residual, &HeuristicOptions::default()).unwrap();
    checked(&p, &plan);
    assert!(plan.notes.iter().any(|n| n.contains("depth-first fallback")), "{:?}", plan.notes);
    let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
    assert!((exact.objective - 4.0).abs() < 1e-9, "{}", exact.objective);
    assert!((plan.objective - exact.objective).abs() < 1e-9, "{} vs {}", plan.objective, exact.objective);
}

#[test]
fn yen_paths_are_distinct_loop_free_and_ordered() {
    let p = problem(&line(5, None));
    let mut router = Router::new(&p, 3);
    let paths = router.k_shortest(0, 4);
    assert_eq!(paths.len(), 2, "a line plus one shortcut has exactly two simple paths");
    assert_eq!(paths[0].zones, vec![0, 1, 2, 3, 4]);
    assert!((paths[0].delay - 4.0).abs() < 1e-9);
    assert_eq!(paths[1].zones, vec![0, 4]);
    for pth in paths {
        let distinct: BTreeSet<_> = pth.zones.iter().collect();
        assert_eq!(distinct.len(), pth.zones.len());
    }
}

#[test]
fn greedy_with_look_ahead_finds_the_delay_optimum_and_matches_the_ilp() {
    let p = problem(&line(5, None));
    let residual = Residual::full(&p);
    let opts = HeuristicOptions { max_iterations: 0, ..Default::default() };
    let plan = place_chain_heuristic(&p, &req(), &residual, &opts).unwrap();
    checked(&p, &plan);
    let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
    assert!(
        (plan.objective - exact.objective).abs() < 1e-9,
        "{} vs {}\n{:#?}",
        plan.objective,
        exact.objective,
        plan.placements
    );
    assert!((plan.objective - 4.0).abs() < 1e-9);
    assert_eq!(plan.gap, Some(0.0), "the look-ahead bound proves it: {:?}", plan.notes);
    assert_eq!(plan.status, PlanStatus::Optimal);
}

#[test]
fn bandwidth_is_reserved_and_forces_the_other_path() {
    // 10 Mbit/s channels on 15 Mbit/s links: a second chain cannot reuse the same arcs.
    let mut b = line(3, Some(15.0));
    for z in &mut infra_mut(&mut b).zones {
        for h in &mut z.hosts {
            h.capacity = res(8, 16);
        }
    }
    let p = problem(&b);
    let reqs: Vec<ChainRequest> = (0..2).map(|i| ChainRequest { id: format!("s{i}"), ..req() }).collect();
    let seq = place_chains_heuristic(&p, &reqs, &HeuristicOptions::default());
    assert!(
        seq.outcomes.iter().all(|o| o.result.is_ok()),
        "{:?}",
        seq.outcomes.iter().map(|o| o.result.as_ref().err()).collect::<Vec<_>>()
    );
    checked(&p, &seq.combined);
    assert!(seq.residual.arc_free.iter().all(|&f| f >= -1e-9));
    let direct: Vec<_> = seq.combined.paths.iter().filter(|pa| pa.zones == ["z0", "z2"]).collect();
    assert_eq!(
        direct.len(),
        1,
        "the second user reaches its chain over the slow direct link: {:#?}",
        seq.combined.paths
    );
}

#[test]
fn used_servers_consolidates_and_never_worse_than_greedy() {
    let p = problem(&line(5, None));
    let residual = Residual::full(&p);
    let base = HeuristicOptions { objective: ChainObjective::UsedServers, ..Default::default() };
    let greedy =
        place_chain_heuristic(&p, &req(), &residual, &HeuristicOptions { max_iterations: 0, ..base.clone() }).unwrap();
    let plan = place_chain_heuristic(&p, &req(), &residual, &base).unwrap();
    checked(&p, &plan);
    assert!(plan.objective <= greedy.objective + 1e-9);
    let exact = place_chain_with(
        &p,
        &req(),
        &residual,
        &ChainOptions { objective: ChainObjective::UsedServers, ..Default::default() },
    )
    .unwrap();
    assert!(plan.objective >= exact.objective - 1e-9);
    assert!(plan.bound.unwrap() <= exact.objective + 1e-9);
    // a, b (2 cores each) and be (1 core, pinned to z4): two 4-core hosts at least.
    assert_eq!(plan.term("used_servers"), Some(2.0));
}

#[test]
fn same_input_and_seed_give_the_same_plan() {
    let p = problem(&line(6, Some(25.0)));
    let reqs: Vec<ChainRequest> = (0..4).map(|i| ChainRequest { id: format!("s{i}"), ..req() }).collect();
    let opts =
        HeuristicOptions { objective: ChainObjective::Weighted { delay: 1.0, servers: 0.1 }, ..Default::default() };
    let a = place_chains_heuristic(&p, &reqs, &opts).combined;
    let b = place_chains_heuristic(&p, &reqs, &opts).combined;
    assert_eq!((&a.placements, &a.paths, a.objective), (&b.placements, &b.paths, b.objective));
    checked(&p, &a);
}

#[test]
fn cover_bound_is_integral_and_falls_back_to_the_least_open_bound() {
    // Hosts 0 (weight 100, 4 cores), 1 and 2 (60, 2 cores each); 4 cores needed and one
    // component can only use host 1. Fractional cover: 4 cores at 25 a core = 100; the
    // cheapest real cover is host 1 plus host 2 = 120 (host 1 plus host 0 = 160).
    let free = vec![vec![4.0], vec![2.0], vec![2.0]];
    let weight = vec![100.0, 60.0, 60.0];
    let cand_pos = vec![vec![1], vec![1, 2, 0]];
    let by_ratio = vec![vec![0, 1, 2]];
    let cover = CoverSearch { free: &free, need: &[4.0], weight: &weight, cand_pos: &cand_pos, by_ratio: &by_ratio };
    assert!((cover.solve(COVER_BOUND_EXPANSIONS) - 120.0).abs() < 1e-9);
    assert!((cover.solve(0) - 100.0).abs() < 1e-9, "no expansion: the root's fractional bound");
}

#[test]
fn used_servers_cover_bound_proves_a_two_host_plan_without_the_lp() {
    // Line of 6 zones, 4-core hosts; the chain needs 2 + 2 + 1 cores: the back-end's host
    // and one more, so the cover bound (not the fractional one) meets the plan.
    let p = problem(&line(6, None));
    let mut residual = Residual::full(&p);
    // Take a core off the back-end's host, so the fractional cover would buy it cheaply.
    let be_host = p.hosts.iter().position(|h| h.name == "h5").unwrap();
    residual.host_free[be_host] = crate::testkit::res(2, 4);
    let opts = HeuristicOptions { objective: ChainObjective::UsedServers, ..Default::default() };
    let plan = place_chain_heuristic(&p, &req(), &residual, &opts).unwrap();
    checked(&p, &plan);
    let exact = place_chain_with(
        &p,
        &req(),
        &residual,
        &ChainOptions { objective: ChainObjective::UsedServers, ..Default::default() },
    )
    .unwrap();
    assert!((plan.objective - exact.objective).abs() < 1e-6, "{} vs {}", plan.objective, exact.objective);
    assert_eq!(plan.stats.solves, 0, "no LP: {:?}", plan.notes);
    assert_eq!(plan.status, PlanStatus::Optimal, "{:?}", plan.notes);
}

#[test]
fn segment_programme_visits_each_zone_once() {
    // ue (z0) – a – b – c – be (z1); links z0–z1, z1–z2, z0–z3 of 1 ms. b may only use z2.
    // Hosts: z1 2 cores (1 left after the back-end), z2 1 core, z3 4 cores. Without the
    // zone sets the cheapest split is a in z1, b in z2, c in z1 (3 ms), which z1 cannot
    // hold; with each zone used once: a in z3, b in z2, c in z1 (1 + 3 + 1 = 5 ms).
    let zones = vec![
        zone("z0", 50.0, 0.0, vec![]),
        zone("z1", 50.0, 1.0, vec![host("h1", 2, 8)]),
        zone("z2", 50.0, 2.0, vec![host("h2", 1, 8)]),
        zone("z3", 50.0, 3.0, vec![host("h3", 4, 8)]),
    ];
    let links =
        vec![link("z0", "z1", Some(1.0), None), link("z1", "z2", Some(1.0), None), link("z0", "z3", Some(1.0), None)];
    let infra = Infrastructure { name: "tri".into(), zones, links, ..Default::default() };
    let mut ue = component("ue", 0, 0);
    ue.user_side = true;
    ue.placement.pin = Some(Pin { zone: "z0".into(), host: None });
    let mut be = component("be", 1, 1);
    be.placement.pin = Some(Pin { zone: "z1".into(), host: None });
    let mut b = component("b", 1, 1);
    b.placement.zones = vec!["z2".into()];
    let ch = |x: &str, y: &str| Channel { from: x.into(), to: y.into(), bandwidth: None, max_latency: None };
    let svc = Service {
        name: "chain".into(),
        components: vec![ue, component("a", 1, 1), b, component("c", 1, 1), be],
        channels: vec![ch("ue", "a"), ch("a", "b"), ch("b", "c"), ch("c", "be")],
        ..Default::default()
    };
    let bundle = bundle_of(infra, svc);
    let p = problem(&bundle);
    let residual = Residual::full(&p);
    let request = req();
    let m = Model::new(&p, &request, &residual, ChainObjective::Delay).unwrap();
    let mut router = Router::new(&p, 4);
    let mut search = Search { m: &m, router: &mut router, st: State::empty(&m, &residual), backtracked: false };
    assert!(search.segments(), "the segment programme found no plan");
    assert!((search.objective() - 5.0).abs() < 1e-9, "{}", search.objective());
    let zone_of = |name: &str| {
        let t = p.services[m.si].service.components.iter().position(|c| c.name == name).unwrap();
        p.zones[search.st.zone[t].unwrap()].name.clone()
    };
    assert_eq!((zone_of("a"), zone_of("b"), zone_of("c")), ("z3".into(), "z2".into(), "z1".into()));
    let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
    assert!((exact.objective - 5.0).abs() < 1e-9, "{}", exact.objective);
}

/// u (transit) – b 1 ms, b – A 2 ms, b – B 5 ms, u – A 10 ms; b has a 2-core host, A and B
/// 8-core hosts. Chain ue (u) → a (2 cores) → be (2 cores, pinned to b). With `narrow`, the
/// u – b link carries 5 Mbit/s, less than the channels' 10.
fn detour(narrow: bool) -> Bundle {
    let zones = vec![
        zone("u", 50.0, 0.0, vec![]),
        zone("b", 50.0, 1.0, vec![host("hb", 2, 8)]),
        zone("A", 50.0, 2.0, vec![host("ha", 8, 8)]),
        zone("B", 50.0, 3.0, vec![host("hB", 8, 8)]),
    ];
    let links = vec![
        link("u", "b", Some(1.0), narrow.then_some(5.0)),
        link("b", "A", Some(2.0), None),
        link("b", "B", Some(5.0), None),
        link("u", "A", Some(10.0), None),
    ];
    let infra = Infrastructure { name: "detour".into(), zones, links, ..Default::default() };
    let mut ue = component("ue", 0, 0);
    ue.user_side = true;
    ue.placement.pin = Some(Pin { zone: "u".into(), host: None });
    let mut be = component("be", 2, 1);
    be.placement.pin = Some(Pin { zone: "b".into(), host: None });
    let svc = Service {
        name: "chain".into(),
        components: vec![ue, component("a", 2, 1), be],
        channels: vec![channel("ue", "a", Some(10.0), None), channel("a", "be", Some(10.0), None)],
        ..Default::default()
    };
    bundle_of(infra, svc)
}

#[test]
fn covering_walk_bound_sees_capacity_and_proves_the_detour() {
    // b cannot hold a beside be, so a goes to A: u → A 3 ms (through b) + A → b 2 ms = 5.
    // The capacity-blind tree programme says 1 (a in b); the covering walk must add a zone
    // with the 2 missing cores, the cheapest being A: 5, the optimum.
    let p = problem(&detour(false));
    let residual = Residual::full(&p);
    let request = req();
    let m = model::Model::new(&p, &request, &residual, ChainObjective::Delay).unwrap();
    let w = m.walk_bound(&residual).unwrap();
    assert!((w.delay - 5.0).abs() < 1e-9 && w.exact, "{w:?}");
    let (bound, kind) = chain_lower_bound(&p, &req(), &residual, ChainObjective::Delay).unwrap();
    assert!((bound - 5.0).abs() < 1e-9, "{bound} {kind}");
    assert!(kind.contains("covering walk"), "{kind}");
    let opts = HeuristicOptions { bound: BoundMethod::Combinatorial, ..Default::default() };
    let heur = place_chain_heuristic(&p, &req(), &residual, &opts).unwrap();
    checked(&p, &heur);
    assert_eq!(heur.status, PlanStatus::Optimal, "{:?}", heur.notes);
    assert!((heur.objective - 5.0).abs() < 1e-9);
    // The exact method returns it as proven without a solver call; the plain ILP agrees.
    let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
    checked(&p, &exact);
    assert_eq!(exact.status, PlanStatus::Optimal);
    assert_eq!(exact.algorithm, "input-chain");
    assert_eq!(exact.stats.columns, 0, "no HiGHS model: {:?}", exact.notes);
    assert!(exact.notes.iter().any(|n| n.contains("proven optimal without HiGHS")), "{:?}", exact.notes);
    let plain = plain_ilp(&p, &residual);
    assert!(plain.stats.columns > 0);
    assert!((plain.objective - exact.objective).abs() < 1e-6, "{} vs {}", plain.objective, exact.objective);
}

#[test]
fn strong_bound_warm_starts_highs_when_the_bound_leaves_a_gap() {
    // The u – b link is too narrow for ue → a, so a in A costs 10 + 2 = 12; the bound ignores
    // bandwidth (5), so HiGHS runs, with the heuristic's plan as its start.
    let p = problem(&detour(true));
    let residual = Residual::full(&p);
    let (bound, _) = chain_lower_bound(&p, &req(), &residual, ChainObjective::Delay).unwrap();
    assert!((bound - 5.0).abs() < 1e-9, "{bound}");
    let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
    checked(&p, &exact);
    assert_eq!(exact.status, PlanStatus::Optimal);
    assert!(exact.stats.columns > 0);
    assert!((exact.objective - 12.0).abs() < 1e-6, "{}", exact.objective);
    let note = exact.notes.iter().find(|n| n.contains("MIP start")).expect("a MIP start note");
    assert!(!note.contains("could not be mapped"), "{note}");
    let plain = plain_ilp(&p, &residual);
    assert!((plain.objective - exact.objective).abs() < 1e-6, "{} vs {}", plain.objective, exact.objective);
}

#[test]
fn walk_bound_stopped_early_is_the_least_open_key_and_not_above_the_full_search() {
    let p = problem(&line(6, None));
    let residual = Residual::full(&p);
    let request = req();
    let m = model::Model::new(&p, &request, &residual, ChainObjective::Delay).unwrap();
    let full = m.walk_bound(&residual).unwrap();
    assert!(full.exact);
    for cap in 0..full.expansions {
        let early = m.walk_bound_within(&residual, cap, f64::INFINITY).unwrap();
        assert!(early.delay <= full.delay + 1e-12, "{early:?} vs {full:?}");
        assert!(cap > 0 || !early.exact, "{early:?}");
    }
    // A chain whose channels form no path has no walk bound (the tree programme remains).
    let mut b = line(6, None);
    service_mut(&mut b, "chain").channels.push(channel("ue", "be", None, None));
    let p = problem(&b);
    let request = req();
    let m = model::Model::new(&p, &request, &residual, ChainObjective::Delay).unwrap();
    assert!(m.path_order().is_none() && m.walk_bound(&residual).is_none());
}

#[test]
fn refinement_by_runs_raises_the_walk_bound_to_the_optimum_that_must_return() {
    // u – A 1 ms, A – b 1 ms, u – b 5 ms, A – B 3 ms, b – B 3 ms. A and b have 2 cores, B 8.
    // Chain ue (u) → a (1 core) → c (2) → be (1, pinned to b). A and b hold the chain's 4
    // cores together, so the covering walk says u → A → b = 2; but no contiguous split fits
    // ([a] in A leaves c + be = 3 for b; [a, c] = 3 for A), so a plan either uses B
    // (u → A → B → b = 7 at best) or comes back: a in b, c in A, be in b, u → b → A → b = 4,
    // the optimum. The refinement (contiguous runs, or a walk with a revisit) finds 4.
    let zones = vec![
        zone("u", 50.0, 0.0, vec![]),
        zone("A", 50.0, 1.0, vec![host("ha", 2, 8)]),
        zone("b", 50.0, 2.0, vec![host("hb", 2, 8)]),
        zone("B", 50.0, 3.0, vec![host("hB", 8, 8)]),
    ];
    let links = vec![
        link("u", "A", Some(1.0), None),
        link("A", "b", Some(1.0), None),
        link("u", "b", Some(5.0), None),
        link("A", "B", Some(3.0), None),
        link("b", "B", Some(3.0), None),
    ];
    let infra = Infrastructure { name: "runs".into(), zones, links, ..Default::default() };
    let mut ue = component("ue", 0, 0);
    ue.user_side = true;
    ue.placement.pin = Some(Pin { zone: "u".into(), host: None });
    let mut be = component("be", 1, 1);
    be.placement.pin = Some(Pin { zone: "b".into(), host: None });
    let svc = Service {
        name: "chain".into(),
        components: vec![ue, component("a", 1, 1), component("c", 2, 1), be],
        channels: vec![channel("ue", "a", None, None), channel("a", "c", None, None), channel("c", "be", None, None)],
        ..Default::default()
    };
    let b = bundle_of(infra, svc);
    let p = problem(&b);
    let residual = Residual::full(&p);
    let request = req();
    let m = model::Model::new(&p, &request, &residual, ChainObjective::Delay).unwrap();
    let w = m.walk_bound(&residual).unwrap();
    assert!(w.refined && w.exact && (w.delay - 4.0).abs() < 1e-9, "{w:?}");
    let plain = plain_ilp(&p, &residual);
    assert!((plain.objective - 4.0).abs() < 1e-6, "{}", plain.objective);
    let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
    checked(&p, &exact);
    assert_eq!(exact.status, PlanStatus::Optimal);
    assert!((exact.objective - 4.0).abs() < 1e-6, "{}", exact.objective);
}

#[test]
fn covering_walk_with_a_free_end_may_close_in_a_zone_visited_before() {
    // A – C 1 ms, C – B 10 ms. A holds 2 cores, C and B 8. Chain a (1 core, pinned to A) →
    // c (2) → e (1, allowed in A or B). c needs C, and the optimum puts e back in A:
    // A → C → A = 2. A covering walk that had to end in a zone not visited before would
    // say A → C → B = 11, above the optimum.
    let zones = vec![
        zone("a-zone", 50.0, 0.0, vec![host("ha", 2, 8)]),
        zone("c-zone", 50.0, 1.0, vec![host("hc", 8, 8)]),
        zone("b-zone", 50.0, 2.0, vec![host("hb", 8, 8)]),
    ];
    let links = vec![link("a-zone", "c-zone", Some(1.0), None), link("c-zone", "b-zone", Some(10.0), None)];
    let infra = Infrastructure { name: "back".into(), zones, links, ..Default::default() };
    let mut a = component("a", 1, 1);
    a.placement.pin = Some(Pin { zone: "a-zone".into(), host: None });
    let mut c = component("c", 2, 1);
    c.placement.zones = vec!["c-zone".into()];
    let mut e = component("e", 1, 1);
    e.placement.zones = vec!["a-zone".into(), "b-zone".into()];
    let svc = Service {
        name: "chain".into(),
        components: vec![a, c, e],
        channels: vec![channel("a", "c", None, None), channel("c", "e", None, None)],
        ..Default::default()
    };
    let b = bundle_of(infra, svc);
    let p = problem(&b);
    let residual = Residual::full(&p);
    let request = req();
    let m = model::Model::new(&p, &request, &residual, ChainObjective::Delay).unwrap();
    let w = m.walk_bound(&residual).unwrap();
    assert!(w.delay <= 2.0 + 1e-9, "{w:?}");
    let plain = plain_ilp(&p, &residual);
    assert!((plain.objective - 2.0).abs() < 1e-6, "{}", plain.objective);
    let exact = place_chain_with(&p, &req(), &residual, &ChainOptions::default()).unwrap();
    checked(&p, &exact);
    assert_eq!(exact.status, PlanStatus::Optimal);
    assert!((exact.objective - 2.0).abs() < 1e-6, "{}", exact.objective);
}
