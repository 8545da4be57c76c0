use std::fs::File;
use std::time::Duration;
use zonal_pack::formats::openb;
use zonal_pack::*;
fn main() {
    let dir = std::path::Path::new("/work/shared/data/traces/alibaba-openb-2023");
    let nodes = openb::read_nodes(File::open(dir.join("openb_node_list_all_node.csv")).unwrap()).unwrap();
    let pods = openb::read_pods(File::open(dir.join("openb_pod_list_default.csv")).unwrap()).unwrap();
    let mode = std::env::args().nth(2).unwrap_or_default();
    let (nodes, pods) = if mode == "gpu" {
        (
            nodes.into_iter().filter(|n| n.gpu > 0).collect::<Vec<_>>(),
            pods.into_iter().filter(|p| p.num_gpu > 0).collect::<Vec<_>>(),
        )
    } else {
        (nodes, pods)
    };
    let inst = openb::to_instance("openb", &nodes, &pods);
    let t: f64 = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(4.0);
    for cons in [Constructive::Fast] {
        let r = solve(
            &inst,
            &SolveOptions {
                constructive: cons.clone(),
                improve: Some(ImproveOptions { time_limit: Some(Duration::from_secs_f64(t)), ..Default::default() }),
                allow_unplaced: true,
            },
        )
        .unwrap();
        println!(
            "{:?}: unplaced {} bins {} lb {} gap {:.4} constr {} {} time {:?} {:?} valid {}",
            cons,
            r.unplaced.len(),
            r.bins_used,
            r.lower_bound,
            r.gap,
            r.constructive,
            r.constructive_cost,
            r.time,
            r.improve,
            validate_partial(&inst, &r.solution).is_ok()
        );
    }
}
#[allow(dead_code)]
fn gpu_only() {}
