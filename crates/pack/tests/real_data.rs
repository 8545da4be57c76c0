//! Tests on real benchmark data under `<workspace>/../shared/data`; a missing file fails the
//! test, naming it and saying how to get the data (`zonal-testdata`).

use std::fs::File;
use std::io::BufReader;
use std::time::Duration;

use zonal_pack::formats::{openb, vbp};
use zonal_pack::*;

/// Opens `relative` under the reference data folder; a missing file fails the test with the
/// reason.
#[track_caller]
fn open(relative: &str) -> File {
    let path = zonal_testdata::path(relative);
    File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A few instances per family with a known optimum: the packing is valid, never below the
/// optimum, and within a loose factor of it.
#[test]
fn vbp_instances_with_known_optimum() {
    let wanted = [
        ("Panigrahy", vec!["class1_20_3_0", "class2_60_5_3", "class9_120_10_1"]),
        ("New", vec!["class1_20_3_0", "class4_60_5_2"]),
        ("Triplet", vec!["classC_60_3_0", "classF_60_5_1"]),
    ];
    let mut seen = 0;
    for (fam, names) in wanted {
        let known = vbp::parse_summary(BufReader::new(open(&format!("vbp/{fam}_summary_known.csv")))).unwrap();
        let archive = open(&format!("vbp/{fam}_instances.tar.gz"));
        vbp::read_archive(
            BufReader::new(archive),
            |s| names.contains(&s),
            |stem, inst| {
                let opts = SolveOptions {
                    constructive: Constructive::All,
                    improve: Some(ImproveOptions {
                        time_limit: Some(Duration::from_millis(300)),
                        max_iterations: 20_000,
                        stagnation: 2_000,
                        seed: 7,
                    }),
                    allow_unplaced: false,
                };
                let r = solve(&inst, &opts).unwrap();
                validate(&inst, &r.solution).unwrap();
                let k = &known[stem];
                if let Some(opt) = k.opt {
                    assert!(r.bins_used as u64 >= opt, "{stem}: {} bins below the optimum {opt}", r.bins_used);
                    assert!(r.lower_bound <= opt as f64, "{stem}: bound {} above the optimum {opt}", r.lower_bound);
                    assert!((r.bins_used as f64) <= 1.25 * opt as f64, "{stem}: {} bins vs optimum {opt}", r.bins_used);
                }
                seen += 1;
                true
            },
        )
        .unwrap();
    }
    assert_eq!(seen, 7);
}

/// Negative demands in Triplet instances are read, and the packing respects totals.
#[test]
fn triplet_negative_demands_are_read() {
    let archive = open("vbp/Triplet_instances.tar.gz");
    let mut found = false;
    vbp::read_archive(
        BufReader::new(archive),
        |s| s == "classC_120_10_0",
        |_, inst| {
            assert!(inst.items.iter().flatten().any(|&x| x < 0));
            let r = solve(&inst, &SolveOptions::only(Heuristic::FFD_MAX)).unwrap();
            validate(&inst, &r.solution).unwrap();
            found = true;
            false
        },
    )
    .unwrap();
    assert!(found);
}

/// The openb trace loads; a consolidation of a slice of it yields a plan the checker accepts.
#[test]
fn openb_slice_consolidates_with_a_checked_plan() {
    let nodes = openb::read_nodes(open("traces/alibaba-openb-2023/openb_node_list_all_node.csv")).unwrap();
    let pods = openb::read_pods(open("traces/alibaba-openb-2023/openb_pod_list_default.csv")).unwrap();
    assert_eq!(nodes.len(), 1523);
    assert_eq!(pods.len(), 8152);
    // 60 nodes, 300 pods spread round-robin where they fit.
    let nodes = &nodes[..60];
    let hosts: Vec<ConsHost> = nodes
        .iter()
        .map(|n| {
            let (idle, max) = zonal_pack::bench::openb_power(n);
            ConsHost {
                name: n.name.clone(),
                capacity: n.capacity().to_vec(),
                idle_watts: idle,
                max_watts: max,
                available: true,
                target: None,
            }
        })
        .collect();
    let mut free: Vec<[u64; 3]> = nodes.iter().map(|n| n.capacity()).collect();
    let mut instances = Vec::new();
    let mut next = 0usize;
    for p in pods.iter().take(300) {
        let d = p.demand();
        if let Some(h) = (0..free.len()).map(|k| (k + next) % free.len()).find(|&h| (0..3).all(|k| d[k] <= free[h][k]))
        {
            for k in 0..3 {
                free[h][k] -= d[k];
            }
            next = h + 1;
            instances.push(ConsInstance {
                name: p.name.clone(),
                demand: d.to_vec(),
                host: h,
                memory_bytes: p.memory_mib << 20,
                pinned: false,
            });
        }
    }
    let problem = ConsolidationProblem::new(&openb::DIMENSIONS, hosts, instances);
    let plan =
        consolidate(&problem, &ConsolidationOptions { time_limit: Duration::from_millis(500), seed: 1, repack: true })
            .unwrap();
    check_plan(&problem, &plan).unwrap();
    assert!(plan.objective_after <= plan.objective_before);
}
