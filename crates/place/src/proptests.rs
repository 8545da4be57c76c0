//! Property tests on small random instances: every plan passes the independent checker,
//! Step 2 keeps Step 1's max-min utility, the curve's min utility grows with the budget, and
//! the chain ILP finds the same optimum as brute-force enumeration.

use std::collections::BTreeMap;

use proptest::prelude::*;
use zonal_model::{
    Bandwidth, Bundle, Channel, Demand, Document, Duration, Infrastructure, Money, Pin, Service, SlotProfile, SlotSpec,
};

use crate::chain::{place_chain, ChainObjective, ChainOptions, ChainRequest};
use crate::check::check;
use crate::error::PlaceError;
use crate::fusion::{place, tie_tolerance, tradeoff_curve, FusionOptions};
use crate::problem::{Problem, ProblemOptions};
use crate::solver::SolverOptions;
use crate::testkit::*;

#[derive(Debug, Clone)]
struct FusionCase {
    zones: Vec<(f64, f64, u64, f64)>, // lat, lon, cores, cpu price
    regions: Vec<(f64, f64, f64)>,    // lat, lon, weight
    services: Vec<(u64, u32, u32)>,   // cores per instance, slots per instance, max instances
    demand: Vec<Vec<u32>>,            // [service][region]
    r_med: f64,
    r_max: f64,
    alpha: f64,
    shared: bool,
}

fn fusion_case() -> impl Strategy<Value = FusionCase> {
    (
        prop::collection::vec((49.0..51.0f64, 0.0..4.0f64, 1u64..6, 0.01..1.0f64), 2..5),
        prop::collection::vec((49.0..51.0f64, 0.0..4.0f64, 0.5..3.0f64), 1..5),
        prop::collection::vec((1u64..3, 1u32..6, 1u32..6), 1..3),
        prop::collection::vec(prop::collection::vec(0u32..8, 5), 2),
        1.0..6.0f64,
        6.0..30.0f64,
        0.0..=1.0f64,
        any::<bool>(),
    )
        .prop_map(|(zones, regions, services, demand, r_med, r_max, alpha, shared)| FusionCase {
            zones,
            regions,
            services,
            demand,
            r_med,
            r_max,
            alpha,
            shared,
        })
}

fn fusion_bundle(c: &FusionCase) -> Bundle {
    let zones = c
        .zones
        .iter()
        .enumerate()
        .map(|(i, &(lat, lon, cores, price))| {
            let mut z = zone(&format!("z{i}"), lat, lon, vec![host("h", cores, 64)]);
            z.price.cpu_hour = Money::new(price);
            z
        })
        .collect();
    let infra = Infrastructure { name: "rand".into(), zones, ..Default::default() };
    let mut docs = vec![Document::Infrastructure(infra)];
    for (si, &(cores, spi, max)) in c.services.iter().enumerate() {
        let mut comp = component("app", cores, 1);
        comp.slots = SlotSpec { per_instance: spi, min_free: 0 };
        comp.scaling.max_instances = max;
        docs.push(Document::Service(Service {
            name: format!("s{si}"),
            components: vec![comp],
            session_bandwidth: Some(Bandwidth::from_mbps(2.0)),
            sla: Some(sla(0.0, c.r_med, c.r_max)),
            ..Default::default()
        }));
    }
    let mut demand = Demand { name: "d".into(), ..Default::default() };
    for (ri, &(lat, lon, w)) in c.regions.iter().enumerate() {
        let mut r = region(&format!("r{ri}"), Some((lat, lon)), None);
        r.weight = w;
        demand.regions.push(r);
        for si in 0..c.services.len() {
            let n = c.demand[si % c.demand.len()][ri % 5];
            if n > 0 {
                let mut e = entry(&format!("s{si}"), &format!("r{ri}"), n);
                e.slots = SlotProfile::Constant(n);
                demand.entries.push(e);
            }
        }
    }
    docs.push(Document::Demand(demand));
    Bundle::new(docs)
}

fn assert_explained(e: &PlaceError) {
    match e {
        PlaceError::Infeasible { reasons } => {
            assert!(!reasons.is_empty(), "an infeasibility must be explained");
            for r in reasons {
                assert!(!r.detail.is_empty());
            }
        }
        other => panic!("unexpected error: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]

    #[test]
    fn fusion_plans_pass_the_checker(c in fusion_case()) {
        let b = fusion_bundle(&c);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        for rounding in [false, true] {
            let opts = FusionOptions { alpha: c.alpha, shared_zone_capacity: c.shared, rounding, ..Default::default() };
            match place(&p, &opts) {
                Ok(plan) => {
                    let r = check(&p, &plan);
                    let violations: Vec<_> = r
                        .violations
                        .iter()
                        // Without shared capacity the paper's LP may overbook a zone by design.
                        .filter(|v| c.shared || v.kind != crate::check::ViolationKind::ZoneCapacity)
                        .collect();
                    prop_assert!(violations.is_empty(), "{}\n{plan:#?}", r.summary());
                    // Step 2 keeps U ≥ U* − τ, τ = 1e-6·max(1, |U*|) (see the fusion module docs).
                    let u_star = plan.term("step1_min_utility").unwrap();
                    let floor = u_star - 1e-6 * u_star.abs().max(1.0) - 1e-9;
                    prop_assert!(plan.term("lp_min_utility").unwrap() >= floor, "{:?}", plan.objective_terms);
                    if !rounding {
                        prop_assert!(plan.term("min_utility").unwrap() >= floor);
                    }
                    prop_assert!(plan.gap.unwrap_or(0.0) < 1e-5 || rounding);
                }
                Err(e) => assert_explained(&e),
            }
        }
    }

    /// At α = 1 Step 3 never costs more than Step 2's vertex and gives up at most ε of its
    /// total utility. Each zone gets a twin at the same place with another price, so equally
    /// useful placements at different costs are common.
    #[test]
    fn alpha_one_tie_break_is_no_dearer_and_as_useful(c in fusion_case(), twin_price in prop::collection::vec(0.01..1.0f64, 4)) {
        let mut c = c;
        let twins: Vec<_> = c.zones.iter().zip(&twin_price).map(|(&(la, lo, n, _), &pr)| (la, lo, n, pr)).collect();
        c.zones.extend(twins);
        let b = fusion_bundle(&c);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let opts = |tie_break| FusionOptions {
            alpha: 1.0, shared_zone_capacity: c.shared, rounding: false, tie_break, ..Default::default()
        };
        match (place(&p, &opts(false)), place(&p, &opts(true))) {
            (Ok(old), Ok(new)) => {
                let r = check(&p, &new);
                let violations: Vec<_> = r
                    .violations
                    .iter()
                    .filter(|v| c.shared || v.kind != crate::check::ViolationKind::ZoneCapacity)
                    .collect();
                prop_assert!(violations.is_empty(), "{}\n{new:#?}", r.summary());
                let (oc, nc) = (old.term("cost").unwrap(), new.term("cost").unwrap());
                prop_assert!(nc <= oc + 1e-7 * oc.max(1.0), "cost {nc} > {oc}");
                let (ou, nu) = (old.term("total_utility").unwrap(), new.term("total_utility").unwrap());
                prop_assert!(nu >= ou - tie_tolerance(ou) - 1e-8, "utility {nu} < {ou} − ε");
                // Step 1's floor still holds.
                let u_star = new.term("step1_min_utility").unwrap();
                prop_assert!(new.term("min_utility").unwrap() >= u_star - 1e-6 * u_star.abs().max(1.0) - 1e-9);
            }
            (Err(e), Err(_)) => assert_explained(&e),
            (old, new) => prop_assert!(false, "the tie-break changed feasibility: {:?} vs {:?}", old.err(), new.err()),
        }
    }

    #[test]
    fn curve_min_utility_grows_with_budget(c in fusion_case()) {
        let b = fusion_bundle(&c);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        match tradeoff_curve(&p, &FusionOptions { shared_zone_capacity: c.shared, ..Default::default() }, 4) {
            Ok(curve) => {
                for w in curve.points.windows(2) {
                    // Step 2 may give up τ = 1e-6·max(1, |U*|) of U* at each point (see the
                    // fusion module docs), plus the solver's own tolerance.
                    let tau = 1e-6 * w[0].min_utility.abs().max(1.0);
                    prop_assert!(w[1].min_utility >= w[0].min_utility - tau - 1e-8, "{:?}", curve.points);
                    prop_assert!(w[0].cost <= w[0].budget + 1e-6 * w[0].budget.max(1.0));
                }
                prop_assert!(curve.min_cost.cost <= curve.max_utility.cost + 1e-6);
            }
            Err(e) => assert_explained(&e),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Chain ILP against brute force.

#[derive(Debug, Clone)]
struct ChainCase {
    n_zones: usize,
    extra_links: Vec<(usize, usize)>,
    link_delay: Vec<f64>,
    link_bw: Vec<Option<f64>>,
    host_cores: Vec<Vec<u64>>, // per zone
    comp_cores: Vec<u64>,
    channel_bw: Vec<f64>,
    symmetric: bool,
    max_latency: Option<f64>,
    objective: u8,
}

fn chain_case() -> impl Strategy<Value = ChainCase> {
    (
        3usize..5,
        prop::collection::vec((0usize..5, 0usize..5), 0..3),
        prop::collection::vec(0.5..5.0f64, 8),
        prop::collection::vec(prop::option::of(prop::sample::select(vec![5.0, 12.0, 30.0])), 8),
        prop::collection::vec(prop::collection::vec(1u64..4, 1..3), 5),
        prop::collection::vec(1u64..3, 2..4),
        prop::collection::vec(0.0..15.0f64, 4),
        any::<bool>(),
        prop::option::of(1.0..8.0f64),
        0u8..3,
    )
        .prop_map(
            |(
                n_zones,
                extra_links,
                link_delay,
                link_bw,
                host_cores,
                comp_cores,
                channel_bw,
                symmetric,
                max_latency,
                objective,
            )| ChainCase {
                n_zones,
                extra_links,
                link_delay,
                link_bw,
                host_cores,
                comp_cores,
                channel_bw,
                symmetric,
                max_latency,
                objective,
            },
        )
}

fn chain_bundle_of(c: &ChainCase) -> Bundle {
    let zones = (0..c.n_zones)
        .map(|i| {
            zone(
                &format!("z{i}"),
                50.0,
                i as f64,
                c.host_cores[i].iter().enumerate().map(|(k, &n)| host(&format!("h{i}{k}"), n, 16)).collect(),
            )
        })
        .collect();
    let mut pairs: Vec<(usize, usize)> = (1..c.n_zones).map(|i| (i - 1, i)).collect();
    for &(a, b) in &c.extra_links {
        let (a, b) = (a % c.n_zones, b % c.n_zones);
        if a != b && !pairs.contains(&(a.min(b), a.max(b))) {
            pairs.push((a.min(b), a.max(b)));
        }
    }
    let links = pairs
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| link(&format!("z{a}"), &format!("z{b}"), Some(c.link_delay[i % 8]), c.link_bw[i % 8]))
        .collect();
    let infra = Infrastructure { name: "rand".into(), zones, links, ..Default::default() };
    let mut ue = component("ue", 0, 0);
    ue.user_side = true;
    ue.placement.pin = Some(Pin { zone: "z0".into(), host: None });
    let mut comps = vec![ue];
    for (i, &n) in c.comp_cores.iter().enumerate() {
        comps.push(component(&format!("c{i}"), n, 1));
    }
    let mut channels = Vec::new();
    for i in 0..comps.len() - 1 {
        channels.push(Channel {
            from: comps[i].name.clone(),
            to: comps[i + 1].name.clone(),
            bandwidth: Some(Bandwidth::from_mbps(c.channel_bw[i % 4])),
            max_latency: if i == 1 { c.max_latency.map(Duration::from_millis) } else { None },
        });
    }
    if c.symmetric {
        channels.push(Channel {
            from: "c1".into(),
            to: "c0".into(),
            bandwidth: Some(Bandwidth::from_mbps(c.channel_bw[3])),
            max_latency: None,
        });
    }
    let svc = Service { name: "chain".into(), components: comps, channels, ..Default::default() };
    let demand = Demand { name: "d".into(), regions: vec![region("r0", None, Some("z0"))], entries: vec![] };
    Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(demand)])
}

/// Simple paths (zone lists) from `a` to `b`.
fn simple_paths(p: &Problem, a: usize, b: usize) -> Vec<Vec<usize>> {
    fn go(p: &Problem, cur: usize, b: usize, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur == b {
            out.push(path.clone());
            return;
        }
        for next in 0..p.zones.len() {
            if !path.contains(&next) && p.link_between(cur, next).is_some() {
                path.push(next);
                go(p, next, b, path, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    go(p, a, b, &mut vec![a], &mut out);
    out
}

fn path_delay(p: &Problem, path: &[usize]) -> f64 {
    path.windows(2).map(|w| p.link_between(w[0], w[1]).map_or(0.0, |l| l.delay_ms)).sum()
}

/// The best objective by enumeration, or `None` when nothing is feasible.
fn brute_force(p: &Problem, weights: (f64, f64)) -> Option<f64> {
    let s = &p.services[0].service;
    let placed: Vec<usize> = (0..s.components.len()).filter(|&i| !s.components[i].user_side).collect();
    let hosts: Vec<usize> = (0..p.hosts.len()).collect();
    let mut best: Option<f64> = None;
    let n = placed.len();
    let total = hosts.len().pow(n as u32);
    for code in 0..total {
        let mut assign = vec![0usize; s.components.len()];
        let mut zone_of = vec![0usize; s.components.len()];
        let mut c = code;
        for &t in &placed {
            assign[t] = hosts[c % hosts.len()];
            zone_of[t] = p.hosts[assign[t]].zone;
            c /= hosts.len();
        }
        let mut off_pin = false;
        for (t, comp) in s.components.iter().enumerate() {
            if comp.user_side {
                zone_of[t] = p.zone_index(&comp.placement.pin.as_ref().unwrap().zone).unwrap();
            } else if let Some(pin) = &comp.placement.pin {
                off_pin |= p.zone_index(&pin.zone) != Some(zone_of[t]);
            }
        }
        if off_pin {
            continue;
        }
        // Host capacity.
        let mut used: BTreeMap<usize, zonal_model::Resources> = BTreeMap::new();
        for &t in &placed {
            used.entry(assign[t]).or_default().add_scaled(&s.components[t].resources, 1);
        }
        if used.iter().any(|(h, r)| !p.hosts[*h].capacity.fits(r)) {
            continue;
        }
        let servers = used.len() as f64 * 100.0;
        // Routes: primary channels with an optional reverse.
        let mut routes: Vec<(usize, usize, f64, f64, f64, usize)> = Vec::new(); // from, to, bw, rev bw, max, mult
        for ch in &s.channels {
            let f = s.components.iter().position(|c| c.name == ch.from).unwrap();
            let t = s.components.iter().position(|c| c.name == ch.to).unwrap();
            let bw = ch.bandwidth.map_or(0.0, |b| b.mbps());
            let max = ch.max_latency.map_or(f64::INFINITY, |d| d.as_millis());
            if let Some(r) = routes.iter_mut().find(|r| r.0 == t && r.1 == f) {
                r.3 = bw;
                r.4 = r.4.min(max);
                r.5 = 2;
            } else {
                routes.push((f, t, bw, 0.0, max, 1));
            }
        }
        let options: Vec<Vec<Vec<usize>>> = routes
            .iter()
            .map(|&(f, t, _, _, max, _)| {
                if zone_of[f] == zone_of[t] {
                    vec![vec![]]
                } else {
                    simple_paths(p, zone_of[f], zone_of[t])
                        .into_iter()
                        .filter(|pa| path_delay(p, pa) <= max + 1e-9)
                        .collect()
                }
            })
            .collect();
        if options.iter().any(|o| o.is_empty()) {
            continue;
        }
        let combos: usize = options.iter().map(|o| o.len()).product();
        for mut code in 0..combos {
            let mut load: BTreeMap<(usize, usize), f64> = BTreeMap::new();
            let mut delay = 0.0;
            for (ri, o) in options.iter().enumerate() {
                let pa = &o[code % o.len()];
                code /= o.len();
                let (_, _, bw, rbw, _, mult) = routes[ri];
                delay += mult as f64 * path_delay(p, pa);
                for w in pa.windows(2) {
                    *load.entry((w[0], w[1])).or_default() += bw;
                    *load.entry((w[1], w[0])).or_default() += rbw;
                }
            }
            let ok = load.iter().all(|(&(a, b), &l)| {
                p.link_between(a, b).and_then(|lk| lk.bandwidth_mbps).is_none_or(|cap| l <= cap + 1e-9)
            });
            if ok {
                let obj = weights.0 * delay + weights.1 * servers;
                if best.is_none_or(|b| obj < b) {
                    best = Some(obj);
                }
            }
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]

    #[test]
    fn chain_ilp_matches_brute_force(c in chain_case()) {
        let b = chain_bundle_of(&c);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let objective = match c.objective {
            0 => ChainObjective::Delay,
            1 => ChainObjective::UsedServers,
            _ => ChainObjective::Weighted { delay: 1.0, servers: 0.05 },
        };
        let weights = match objective {
            ChainObjective::Delay => (1.0, 0.0),
            ChainObjective::UsedServers => (0.0, 1.0),
            ChainObjective::Weighted { delay, servers } => (delay, servers),
        };
        let req = ChainRequest { id: "s".into(), service: "chain".into(), region: Some("r0".into()) };
        let expected = brute_force(&p, weights);
        // The exact method with its strong bound (heuristic plan + combinatorial bound, HiGHS
        // warm-started on a gap) and the plain ILP.
        for strong_bound in [true, false] {
            let opts = ChainOptions {
                objective,
                solver: SolverOptions { mip_rel_gap: 1e-9, ..Default::default() },
                strong_bound,
                ..Default::default()
            };
            match (place_chain(&p, &req, &opts), expected) {
                (Ok(plan), Some(best)) => {
                    let r = check(&p, &plan);
                    prop_assert!(r.is_ok(), "{}\n{plan:#?}", r.summary());
                    prop_assert!((plan.objective - best).abs() <= 1e-4 * best.abs().max(1.0), "ILP (strong bound {strong_bound}) {} vs brute force {best}\n{plan:#?}", plan.objective);
                    prop_assert_eq!(&plan.status, &crate::plan::PlanStatus::Optimal);
                }
                (Err(e), None) => assert_explained(&e),
                (Ok(plan), None) => prop_assert!(false, "ILP found a plan where brute force found none: {plan:#?}"),
                (Err(e), Some(best)) => prop_assert!(false, "ILP (strong bound {strong_bound}) failed ({e}) but brute force found {best}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, rng_seed: proptest::test_runner::RngSeed::Fixed(20261207), ..ProptestConfig::default() })]

    /// The combinatorial bound (covering walk for these path-shaped chains, tree programme,
    /// host cover) is at most the optimum; and with ample capacity, no bandwidth or latency
    /// limits and the last component pinned, it is the optimum: everything collocated in the
    /// pinned zone costs the shortest-path delay from the user's zone, which is also the
    /// shortest walk between the two zones (the relaxation drops nothing that binds).
    #[test]
    fn combinatorial_bound_is_at_most_the_optimum_and_tight_with_ample_capacity(c in chain_case(), pin in 0usize..5) {
        use crate::chain::Residual;
        use crate::heuristic::chain_lower_bound;
        let req = ChainRequest { id: "s".into(), service: "chain".into(), region: Some("r0".into()) };
        let objective = match c.objective {
            0 => ChainObjective::Delay,
            1 => ChainObjective::UsedServers,
            _ => ChainObjective::Weighted { delay: 1.0, servers: 0.05 },
        };
        // As generated (capacity often binds); then INPUT-like: the user's zone a transit zone
        // (no hosts) and the last component pinned to another zone.
        for input_like in [false, true] {
            let mut b = chain_bundle_of(&c);
            if input_like {
                infra_mut(&mut b).zones[0].hosts.clear();
                let last = service_mut(&mut b, "chain").components.last_mut().unwrap();
                last.placement.pin = Some(Pin { zone: format!("z{}", 1 + pin % (c.n_zones - 1)), host: None });
            }
            let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
            let best = brute_force(&p, objective.weights());
            match (chain_lower_bound(&p, &req, &Residual::full(&p), objective), best) {
                (Ok((bound, kind)), Some(best)) => {
                    prop_assert!(bound <= best + 1e-6 * best.abs().max(1.0), "bound {bound} ({kind}) above the optimum {best}");
                }
                (Ok(_), None) | (Err(_), _) => {}
            }
        }
        // Ample capacity, no limits, last component pinned: tight.
        let mut ample = c.clone();
        ample.host_cores = vec![vec![64]; 5];
        ample.link_bw = vec![None; 8];
        ample.max_latency = None;
        ample.symmetric = false;
        let mut b = chain_bundle_of(&ample);
        let pin_zone = format!("z{}", pin % ample.n_zones);
        let last = service_mut(&mut b, "chain").components.last_mut().unwrap();
        last.placement.pin = Some(Pin { zone: pin_zone, host: None });
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let best = brute_force(&p, (1.0, 0.0)).unwrap();
        let (bound, kind) = chain_lower_bound(&p, &req, &Residual::full(&p), ChainObjective::Delay).unwrap();
        prop_assert!((bound - best).abs() <= 1e-9 * best.max(1.0), "bound {bound} ({kind}) vs optimum {best}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]

    /// Column generation is exact: same U*, same Step-2 optimum as the full LP.
    #[test]
    fn column_generation_matches_the_full_lp(c in fusion_case(), budget_factor in prop::option::of(0.5..2.0f64)) {
        use crate::fusion::ColumnGeneration;
        let b = fusion_bundle(&c);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let base = FusionOptions { alpha: c.alpha, shared_zone_capacity: c.shared, rounding: false, ..Default::default() };
        // A budget around the unconstrained cost exercises the penalised budget row.
        let budget = match (budget_factor, place(&p, &base)) {
            (Some(f), Ok(plan)) => Some(plan.term("cost").unwrap() * f),
            _ => None,
        };
        let full = place(&p, &FusionOptions { budget, column_generation: ColumnGeneration::Never, ..base.clone() });
        let cg = place(&p, &FusionOptions { budget, column_generation: ColumnGeneration::Always, ..base.clone() });
        match (full, cg) {
            (Ok(f), Ok(g)) => {
                let (uf, ug) = (f.term("step1_min_utility").unwrap(), g.term("step1_min_utility").unwrap());
                prop_assert!((uf - ug).abs() <= 1e-6 * uf.abs().max(1.0), "U*: full {uf}, column generation {ug}");
                let (bf, bg) = (f.bound.unwrap(), g.bound.unwrap());
                prop_assert!((bf - bg).abs() <= 1e-5 * bf.abs().max(1.0), "step 2: full {bf}, column generation {bg}");
                let r = check(&p, &g);
                let bad: Vec<_> = r.violations.iter().filter(|v| c.shared || v.kind != crate::check::ViolationKind::ZoneCapacity).collect();
                prop_assert!(bad.is_empty(), "{}", r.summary());
            }
            (Err(e), Err(g)) => {
                assert_explained(&e);
                assert_explained(&g);
            }
            (f, g) => prop_assert!(false, "full LP {:?} vs column generation {:?}", f.map(|x| x.objective), g.map(|x| x.objective)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 30, rng_seed: proptest::test_runner::RngSeed::Fixed(20261207), ..ProptestConfig::default() })]

    /// One warm column-generation session over a curve's points (min-cost end, max-utility
    /// end, budgets up and down) gives at every point the full LP's optimum, with capacity
    /// scaled so that demand fills 70–100 % of it.
    #[test]
    fn session_curve_matches_the_full_lp(c in fusion_case(), fill in 0.7..1.0f64, fracs in prop::collection::vec(0.0..1.0f64, 3)) {
        use crate::fusion::{ColumnGeneration, FusionSession};
        let mut c = c;
        // Scale the zones' cores so that total demand is `fill` of the total slot capacity.
        let b = fusion_bundle(&c);
        let p0 = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let demand: f64 = p0.demands.iter().map(|d| d.slots).sum();
        let cap: f64 = (0..p0.services.len()).map(|si| p0.slot_capacity[si].iter().sum::<f64>()).sum();
        if demand > 0.0 && cap > 0.0 {
            let k = demand / fill / cap;
            for z in &mut c.zones {
                z.2 = ((z.2 as f64 * k).ceil() as u64).max(1);
            }
        }
        let b = fusion_bundle(&c);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let base = FusionOptions { shared_zone_capacity: c.shared, rounding: false, column_generation: ColumnGeneration::Always, ..Default::default() };
        let full = |alpha: f64, budget: Option<f64>| place(&p, &FusionOptions { alpha, budget, column_generation: ColumnGeneration::Never, ..base.clone() });
        let mut session = match FusionSession::new(&p, &base) {
            Ok(s) => s,
            Err(e) => {
                assert_explained(&e);
                prop_assert!(full(1.0, None).is_err());
                return Ok(());
            }
        };
        let lo = session.place(0.0, None);
        let (lo, hi) = match (lo, full(0.0, None)) {
            (Ok(lo), Ok(_)) => (lo, session.place(1.0, None).unwrap()),
            (Err(e), Err(_)) => { assert_explained(&e); return Ok(()); }
            (a, b) => { prop_assert!(false, "session {:?} vs full {:?}", a.map(|x| x.objective), b.map(|x| x.objective)); unreachable!() }
        };
        let (min_cost, max_cost) = (lo.term("cost").unwrap(), hi.term("cost").unwrap().max(lo.term("cost").unwrap()));
        let mut points = vec![(0.0, None, lo), (1.0, None, hi)];
        for f in &fracs {
            let b = min_cost + f * (max_cost - min_cost);
            points.push((1.0, Some(b), session.place(1.0, Some(b)).unwrap()));
        }
        let rel = |x: f64, y: f64| (x - y).abs() / x.abs().max(y.abs()).max(1.0);
        for (alpha, budget, g) in &points {
            let f = full(*alpha, *budget).unwrap();
            let (uf, ug) = (f.term("step1_min_utility").unwrap(), g.term("step1_min_utility").unwrap());
            prop_assert!(rel(uf, ug) <= 1e-6, "α {alpha}, budget {budget:?}: U* full {uf}, session {ug}");
            // The plan's LP values (Step 2's reported objective also carries the slack
            // penalties, whose solver tolerances differ between the two models); at α = 0 the
            // total utility is not unique.
            for term in ["lp_total_utility", "cost"].into_iter().skip(usize::from(*alpha < 1.0)) {
                let (a, b) = (f.term(term).unwrap(), g.term(term).unwrap());
                prop_assert!(rel(a, b) <= 1e-5, "α {alpha}, budget {budget:?}: {term} full {a}, session {b}");
            }
            let r = check(&p, g);
            let bad: Vec<_> = r.violations.iter().filter(|v| c.shared || v.kind != crate::check::ViolationKind::ZoneCapacity).collect();
            prop_assert!(bad.is_empty(), "{}", r.summary());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Chain heuristic against brute force.

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]

    /// Greedy and local-search plans pass the checker; local search is never worse than the
    /// greedy start; both are never better than the optimum; every bound is at most the optimum.
    #[test]
    fn heuristic_is_checked_and_bounded_by_the_optimum(c in chain_case(), seed in 0u64..4) {
        use crate::chain::Residual;
        use crate::heuristic::{place_chain_heuristic, BoundMethod, HeuristicOptions};
        let b = chain_bundle_of(&c);
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).unwrap();
        let objective = match c.objective {
            0 => ChainObjective::Delay,
            1 => ChainObjective::UsedServers,
            _ => ChainObjective::Weighted { delay: 1.0, servers: 0.05 },
        };
        let weights = objective.weights();
        let req = ChainRequest { id: "s".into(), service: "chain".into(), region: Some("r0".into()) };
        let residual = Residual::full(&p);
        let best = brute_force(&p, weights);
        let base = HeuristicOptions { objective, seed, ..Default::default() };
        let greedy = place_chain_heuristic(&p, &req, &residual, &HeuristicOptions { max_iterations: 0, ..base.clone() });
        let local = place_chain_heuristic(&p, &req, &residual, &base);
        let comb = place_chain_heuristic(&p, &req, &residual, &HeuristicOptions { bound: BoundMethod::Combinatorial, ..base.clone() });
        for plan in [&greedy, &local, &comb].into_iter().flatten() {
            let r = check(&p, plan);
            prop_assert!(r.is_ok(), "{}\n{plan:#?}", r.summary());
            let Some(best) = best else {
                prop_assert!(false, "heuristic found a plan where brute force found none: {plan:#?}");
                continue;
            };
            let tol = 1e-6 * best.abs().max(1.0);
            prop_assert!(plan.objective >= best - tol, "heuristic {} below the optimum {best}", plan.objective);
            let bound = plan.bound.unwrap();
            prop_assert!(bound <= best + tol, "bound {bound} above the optimum {best}: {:?}", plan.notes);
            prop_assert!(plan.gap.unwrap() >= 0.0);
        }
        if let (Ok(g), Ok(l)) = (&greedy, &local) {
            prop_assert!(l.objective <= g.objective + 1e-9, "local search {} worse than greedy {}", l.objective, g.objective);
        }
        for e in [&greedy, &local].into_iter().filter_map(|r| r.as_ref().err()) {
            assert_explained(e);
        }
    }
}
