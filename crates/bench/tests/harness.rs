//! The benchmark harness end to end on the reference data, kept small: a few SC1 chains on
//! Interoute and a small MOOC sample. Every plan must pass the independent checker. A
//! missing file of `../shared/data` fails the test, naming it and saying how to get the data.

use zonal_bench::geovideo::{curve, lp_sweep, mooc_bundle, mooc_problem, paper_options, GeoVideoData, LpSize};
use zonal_bench::geovideo::{LpSweep, LpVariant, MoocScenario, PointKind};
use zonal_bench::no_progress;
use zonal_bench::report::to_csv;
use zonal_bench::scenarios::INPUT_CHAINS;
use zonal_bench::zoo::{plain_summary, run_zoo, summary, Topology, ZooRun};
use zonal_place::SolverOptions;

fn solver() -> SolverOptions {
    SolverOptions { time_limit: Some(std::time::Duration::from_secs(20)), ..Default::default() }
}

#[test]
fn zoo_suite_places_a_tiny_chain_and_the_checker_agrees() {
    let graphml = zonal_testdata::read("topology-zoo/Interoute.graphml");
    let run = ZooRun {
        chains: vec![INPUT_CHAINS[0].clone()],
        subscriptions: 2,
        seeds: vec![1],
        datacenters: 20,
        solver: solver(),
        strong_bound: true,
        compare_plain: false,
    };
    let t = [Topology { name: "Interoute", graphml: &graphml }];
    let records = run_zoo(&t, &run, &mut no_progress).unwrap();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r.status, "optimal", "{r:?}");
        assert!(r.check_ok, "the combined plan failed the checker: {r:?}");
        assert_eq!((r.zones, r.service_apps), (110, 4));
        assert!(r.gap.is_some_and(|g| g <= 1e-4), "{r:?}");
        assert!(r.total_seconds >= r.solve_seconds);
    }
    let again = run_zoo(&t, &run, &mut no_progress).unwrap();
    let objective = |rs: &[zonal_bench::zoo::ChainRecord]| rs.iter().map(|r| r.delay_ms).collect::<Vec<_>>();
    assert_eq!(objective(&records), objective(&again), "same seed, same plans");
    let csv = to_csv(&records);
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("topology,zones,links,chain,"));
    let s = summary(&records);
    assert_eq!(s.rows.len(), 1);
    assert_eq!(s.rows[0][3], "2/2");
    assert!(plain_summary(&records).is_none());
    // The strong bound against the plain ILP in one run: same delays, both proven.
    let compared = run_zoo(&t, &ZooRun { compare_plain: true, ..run.clone() }, &mut no_progress).unwrap();
    assert_eq!(objective(&compared), objective(&records));
    for r in &compared {
        let plain = r.plain.as_ref().expect("a plain ILP result");
        assert_eq!(plain.status, "optimal", "{r:?}");
        let (a, b) = (r.delay_ms.unwrap(), plain.delay_ms.unwrap());
        assert!((a - b).abs() <= 1e-4 * a.max(1.0), "{a} vs {b}");
        assert!(r.heuristic_gap.is_some_and(|g| g >= 0.0));
    }
    let s = plain_summary(&compared).unwrap();
    assert_eq!(s.rows.len(), 1);
    assert_eq!(s.rows[0][10], "2/2", "{:?}", s.rows[0]);
}

#[test]
fn geo_video_suite_solves_a_sample_and_the_curves_are_checked() {
    let dc_nodes = zonal_testdata::read("geo-video/dcNodes.csv");
    let mooc = zonal_testdata::read("geo-video/mooc.out");
    let ec2_prices = zonal_testdata::read("geo-video/ec2_price.out");
    let data = GeoVideoData { dc_nodes: &dc_nodes, mooc: &mooc, ec2_prices: &ec2_prices };
    let sweep = LpSweep {
        sizes: vec![LpSize { regions: Some(40), zones: Some(20) }],
        seeds: vec![1],
        variants: vec![LpVariant::Zonal, LpVariant::FullSimplex, LpVariant::FullIpm],
        capacity_factor: 1.2,
        solver: solver(),
    };
    let lp = lp_sweep(data, &sweep, &mut no_progress).unwrap();
    assert_eq!(lp.len(), 3);
    let u: Vec<f64> = lp.iter().map(|r| r.step1_min_utility.unwrap()).collect();
    for r in &lp {
        assert_eq!(r.status, "optimal", "{r:?}");
        assert_eq!(r.check_ok, Some(true), "{r:?}");
        assert_eq!((r.regions, r.zones), (40, 20));
    }
    assert!(u.iter().all(|x| (x - u[0]).abs() < 1e-6), "every method finds the same U*: {u:?}");

    let b = mooc_bundle(data, &MoocScenario { regions: Some(40), zones: Some(20), ..Default::default() }).unwrap();
    let p = mooc_problem(&b).unwrap();
    let base = paper_options(solver());
    let fair = curve(&p, &base, 3, true, None, &mut no_progress).unwrap();
    assert_eq!(fair.len(), 5, "two ends and three budgets");
    let budgets: Vec<f64> = fair.iter().filter(|r| r.kind == PointKind::Budget).map(|r| r.budget).collect();
    let unfair = curve(&p, &base, 3, false, Some(&budgets), &mut no_progress).unwrap();
    for (f, u) in fair.iter().zip(&unfair) {
        assert!(f.check_ok && u.check_ok, "{f:?}\n{u:?}");
        assert_eq!(f.kind, u.kind);
        if f.kind == PointKind::Budget {
            assert!(f.cost <= f.budget + 1e-6 && u.cost <= u.budget + 1e-6);
            // Step 1 can only raise the worst utility at the same budget.
            assert!(f.min_utility >= u.min_utility - 1e-6, "{f:?}\n{u:?}");
        }
    }
    for w in fair.windows(2).filter(|w| w[0].kind == PointKind::Budget && w[1].kind == PointKind::Budget) {
        assert!(w[1].min_utility >= w[0].min_utility - 1e-6, "U* grows with the budget");
    }
}

#[test]
fn fusion_speed_compares_the_session_with_the_reference_on_the_same_points() {
    use zonal_bench::geovideo::{speed_curve, speed_summary, SpeedMethod};
    let dc_nodes = zonal_testdata::read("geo-video/dcNodes.csv");
    let mooc = zonal_testdata::read("geo-video/mooc.out");
    let ec2_prices = zonal_testdata::read("geo-video/ec2_price.out");
    let data = GeoVideoData { dc_nodes: &dc_nodes, mooc: &mooc, ec2_prices: &ec2_prices };
    let b = mooc_bundle(data, &MoocScenario { regions: Some(40), zones: Some(20), ..Default::default() }).unwrap();
    let p = mooc_problem(&b).unwrap();
    let base = zonal_place::fusion::FusionOptions {
        column_generation: zonal_place::fusion::ColumnGeneration::Always,
        ..paper_options(solver())
    };
    let records = speed_curve(&p, &base, 2, 2, &mut no_progress).unwrap();
    let count = |m: SpeedMethod| records.iter().filter(|r| r.method == m).count();
    assert_eq!((count(SpeedMethod::Session), count(SpeedMethod::Place), count(SpeedMethod::Reference)), (4, 2, 2));
    for r in &records {
        assert!(r.check_ok, "{r:?}");
        let s = records.iter().find(|x| x.method == SpeedMethod::Session && x.index == r.index).unwrap();
        assert!((r.step1_min_utility - s.step1_min_utility).abs() < 1e-6, "{r:?}\n{s:?}");
        assert!((r.bound - s.bound).abs() <= 1e-5 * s.bound.abs().max(1.0), "{r:?}\n{s:?}");
    }
    let summary = speed_summary(&records);
    assert_eq!(summary.rows.len(), 4);
    assert!(summary.notes.iter().any(|n| n.contains("every one passed")), "{:?}", summary.notes);
    assert_eq!(to_csv(&records).lines().count(), 9);
}

#[test]
fn vnmp_suite_runs_the_smallest_instance_and_every_plan_is_checked() {
    use zonal_bench::vnmp::{decompress, default_heuristic, parse_vnmp, run_vnmp, summary, LinkRule, VnmpRun};
    let path = zonal_testdata::path("vnmp/20/eu_20_0_prob.bz2");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let inst = parse_vnmp("eu_20_0_prob", &decompress("eu_20_0_prob", file).unwrap()).unwrap();
    for links in [LinkRule::Conservative, LinkRule::Relaxed] {
        let run = VnmpRun { slices: 4, links, solver: solver(), heuristic: default_heuristic() };
        let records = run_vnmp(std::slice::from_ref(&inst), &run, &mut no_progress).unwrap();
        assert_eq!(records.iter().map(|r| r.slice).collect::<Vec<_>>(), [0, 10, 20, 30]);
        for r in &records {
            assert!(r.check_ok(), "a plan failed the checker: {r:?}");
            // Both solvers see the same candidates: they agree on feasibility.
            assert_eq!(r.exact_delay.is_some(), r.heuristic_delay.is_some(), "{r:?}");
            if r.exact_optimal() {
                assert!(r.ratio().is_some_and(|x| x >= 1.0 - 1e-9), "the heuristic beat a proven optimum: {r:?}");
            }
            if links == LinkRule::Conservative {
                assert!(r.exact_directed == "ok" || r.exact_directed == "-", "{r:?}");
                assert!(r.heuristic_directed == "ok" || r.heuristic_directed == "-", "{r:?}");
            }
        }
        if links == LinkRule::Relaxed {
            assert!(records.iter().all(|r| r.exact_optimal()), "every slice is feasible on relaxed links: {records:?}");
        }
        let csv = to_csv(&records);
        assert_eq!(csv.lines().count(), 5);
        let s = summary(&records);
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0][0], "20");
        assert_eq!(s.rows[0][12], "ok");
    }
}
