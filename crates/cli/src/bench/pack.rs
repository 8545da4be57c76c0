//! `zonal bench --suite vbp|openb`: Zonal's vector bin packer and consolidation on reference
//! instances with known optima (vbp) and on the Alibaba openb trace, optionally against a
//! peer solver (`--peer ortools|highspy`) with the same formulation and time limit.

use std::path::PathBuf;
use std::time::Duration;

use zonal_bench::peer::{self, Peer, PeerRunner};
use zonal_bench::report::{seconds, Summary};
use zonal_bench::vbp;
use zonal_pack::bench::{self as packbench, Family, OpenbOptions, VbpOptions};

use super::{finish, Args};
use crate::Failure;

/// Instances per family when `--limit` is not given: evenly spaced over the family, enough
/// for a mean that is stable to about 0.01 in a few minutes.
const DEFAULT_VBP_LIMIT: usize = 20;

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("zonal")
}

pub(super) fn prepare_peer(p: Peer) -> Result<PeerRunner, Failure> {
    peer::prepare(p, &cache_dir(), |what| eprintln!("zonal bench: {what}")).map_err(|e| Failure::new(1, e.to_string()))
}

fn families(args: &Args) -> Result<Vec<Family>, Failure> {
    if args.families.is_empty() {
        return Ok(Family::ALL.to_vec());
    }
    args.families
        .iter()
        .map(|f| {
            Family::parse(f)
                .ok_or_else(|| Failure::new(2, format!("--family: expected Panigrahy, New or Triplet, found {f:?}")))
        })
        .collect()
}

pub fn run_vbp(args: &Args) -> Result<(), Failure> {
    let fams = families(args)?;
    let runner = args.peer_runner()?;
    let time_limit = args.time_limit.unwrap_or(Duration::from_secs(2));
    let limit = match args.limit {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(DEFAULT_VBP_LIMIT),
    };
    let opts = VbpOptions { limit, time_limit, seed: 1 };
    let dir = args.data.join("vbp");
    let total = fams.len() * limit.unwrap_or(0);
    let bar = super::Bar::new();
    let mut done = 0;
    let rows = vbp::run(&dir, &fams, &opts, runner.as_ref(), |r| {
        done += 1;
        bar.report(
            done,
            total.max(done),
            &format!("{} {}: {} bins", r.ours.family.name(), r.ours.instance, r.ours.bins),
        );
    })
    .map_err(|e| {
        Failure::new(1, format!("vbp suite on {}: {e} (point --data at the reference data directory)", dir.display()))
    })?;
    drop(bar);
    let mut csv = Vec::new();
    vbp::write_csv(&mut csv, &rows).map_err(|e| Failure::new(1, e.to_string()))?;
    let csv_path = super::write(&args.out, "vbp.csv", &String::from_utf8_lossy(&csv))?;

    let ours: Vec<_> = rows.iter().map(|r| r.ours.clone()).collect();
    let mut summaries = vec![Summary {
        title: format!("vbp: Zonal's packer, {} per instance (seed 1)", seconds(Some(time_limit.as_secs_f64()))),
        headers: ["family", "instances", "with OPT", "mean bins/OPT", "published best", "optimal", "fewer than published", "more", "mean time", "max time"]
            .map(String::from)
            .to_vec(),
        rows: packbench::summarise_vbp(&ours)
            .iter()
            .map(|s| {
                vec![
                    s.family.name().to_string(),
                    s.instances.to_string(),
                    s.with_opt.to_string(),
                    format!("{:.4}", s.mean_ratio),
                    format!("{:.4}", s.published_mean_ratio),
                    s.optimal.to_string(),
                    s.better_than_published.to_string(),
                    s.worse_than_published.to_string(),
                    seconds(Some(s.mean_time_s)),
                    seconds(Some(s.max_time_s)),
                ]
            })
            .collect(),
        notes: vec![
            "published best: per instance the best of the ~100 heuristics in the Vectorpack summaries (target: mean bins/OPT at least as good)".into(),
        ],
    }];
    if let Some(r) = &runner {
        summaries.push(Summary {
            title: format!("vbp against {} (same model for every peer, same time limit, 1 thread)", r.peer.name()),
            headers: ["family", "instances", "peer solved", "peer optimal", "Zonal bins / peer bins", "peer bins/OPT", "Zonal fewer", "Zonal more", "Zonal mean time", "peer mean time"]
                .map(String::from)
                .to_vec(),
            rows: vbp::summarise(&rows)
                .iter()
                .map(|s| {
                    let f = |x: f64| if x.is_finite() { format!("{x:.4}") } else { "-".into() };
                    vec![
                        s.family.name().to_string(),
                        s.instances.to_string(),
                        s.peer_solved.to_string(),
                        s.peer_optimal.to_string(),
                        f(s.mean_ratio_to_peer),
                        f(s.peer_mean_ratio_to_opt),
                        s.ours_fewer_bins.to_string(),
                        s.ours_more_bins.to_string(),
                        seconds(Some(s.mean_time_s)),
                        seconds(Some(s.peer_mean_time_s)),
                    ]
                })
                .collect(),
            notes: vec![
                "the peer gets Zonal's bin count as its candidate bins (a valid upper bound); 'peer solved' counts instances where it returned a packing within the limit".into(),
            ],
        });
    }
    if rows.iter().any(|r| !r.ours.valid) {
        return Err(Failure::new(1, "some packings failed the independent validation (see valid=false in vbp.csv)"));
    }
    finish(args, &summaries, &[csv_path])
}

/// The peer's answer on the openb packing, one CSV row.
struct OpenbPeerRow {
    peer: &'static str,
    solver: String,
    status: String,
    /// Nodes used by the peer's packing, when it found one.
    peer_bins: Option<u64>,
    peer_bound: Option<u64>,
    time_limit_s: f64,
    peer_time_s: f64,
    peer_wall_s: f64,
    zonal_bins: usize,
    zonal_time_s: f64,
    /// Zonal's nodes over the peer's (below 1: Zonal uses fewer).
    zonal_over_peer: Option<f64>,
}

impl OpenbPeerRow {
    /// Header and one row (no field contains a comma).
    fn csv(&self) -> String {
        let opt = |v: Option<u64>| v.map_or(String::new(), |x| x.to_string());
        format!(
            "peer,solver,status,peer_bins,peer_bound,time_limit_s,peer_time_s,peer_wall_s,zonal_bins,zonal_time_s,zonal_over_peer\n\
             {},{},{},{},{},{},{:.3},{:.3},{},{:.3},{}\n",
            self.peer,
            self.solver,
            self.status,
            opt(self.peer_bins),
            opt(self.peer_bound),
            self.time_limit_s,
            self.peer_time_s,
            self.peer_wall_s,
            self.zonal_bins,
            self.zonal_time_s,
            self.zonal_over_peer.map_or(String::new(), |x| format!("{x:.4}"))
        )
    }
}

/// Reads the trace and runs the peer on the openb packing with Zonal's time limit.
fn openb_peer(runner: &PeerRunner, dir: &std::path::Path, opts: &OpenbOptions) -> Result<peer::PeerOutcome, Failure> {
    use zonal_pack::formats::openb;
    let open = |name: &str| {
        std::fs::File::open(dir.join(name))
            .map(std::io::BufReader::new)
            .map_err(|e| Failure::new(1, format!("openb peer: reading {}: {e}", dir.join(name).display())))
    };
    let bad = |e: zonal_pack::formats::vbp::ParseError| Failure::new(1, format!("openb peer: {e}"));
    let nodes = openb::read_nodes(open("openb_node_list_all_node.csv")?).map_err(bad)?;
    let pods = openb::read_pods(open(&opts.pods_file)?).map_err(bad)?;
    let caps: Vec<Vec<u64>> = nodes.iter().map(|n| n.capacity().to_vec()).collect();
    let dems: Vec<Vec<u64>> = pods.iter().map(|p| p.demand().to_vec()).collect();
    let input = peer::OpenbPeerInput::new("openb", &caps, &dems, opts.time_limit.as_secs_f64());
    eprintln!(
        "zonal bench: openb with {} ({} node types, {} pod types, {} limit, 1 thread)",
        runner.peer.name(),
        input.node_types.len(),
        input.pod_types.len(),
        seconds(Some(input.time_limit_s))
    );
    runner.solve_openb(&input).map_err(|e| Failure::new(1, e.to_string()))
}

pub fn run_openb(args: &Args) -> Result<(), Failure> {
    let runner = args.peer_runner()?;
    let opts =
        OpenbOptions { time_limit: args.time_limit.unwrap_or(Duration::from_secs(4)), ..OpenbOptions::default() };
    let dir = args.data.join("traces/alibaba-openb-2023");
    eprintln!(
        "zonal bench: packing and consolidating the openb trace ({} budget each)",
        seconds(Some(opts.time_limit.as_secs_f64()))
    );
    let r = packbench::run_openb(&dir, &opts).map_err(|e| {
        Failure::new(1, format!("openb suite on {}: {e} (point --data at the reference data directory)", dir.display()))
    })?;
    let mut csv = Vec::new();
    packbench::write_openb_csv(&mut csv, &r).map_err(|e| Failure::new(1, e.to_string()))?;
    let csv_path = super::write(&args.out, "openb.csv", &String::from_utf8_lossy(&csv))?;
    let mut csv_paths = vec![csv_path];
    let peer_row = match &runner {
        Some(runner) => {
            let o = openb_peer(runner, &dir, &opts)?;
            let row = OpenbPeerRow {
                peer: runner.peer.name(),
                solver: o.solver.clone(),
                status: o.status.clone(),
                peer_bins: o.bins,
                peer_bound: o.bound,
                time_limit_s: opts.time_limit.as_secs_f64(),
                peer_time_s: o.time_s,
                peer_wall_s: o.wall_s,
                zonal_bins: r.bins,
                zonal_time_s: r.pack_time_s,
                zonal_over_peer: o.bins.filter(|&b| b > 0 && r.unplaced == 0).map(|b| r.bins as f64 / b as f64),
            };
            csv_paths.push(super::write(&args.out, "openb_peer.csv", &row.csv())?);
            Some(row)
        }
        None => None,
    };
    let pct = |x: f64| format!("{:.2} %", 100.0 * x);
    let summary = Summary {
        title: format!("openb: {} pods onto {} nodes", r.pods, r.nodes),
        headers: ["what", "hosts on", "bound", "gap", "moves", "plan steps", "checker", "time"]
            .map(String::from)
            .to_vec(),
        rows: vec![
            vec![
                format!("packing ({} placed, {} unplaced)", r.placed, r.unplaced),
                r.bins.to_string(),
                format!("{:.1}", r.lower_bound),
                pct(r.gap),
                "-".into(),
                "-".into(),
                if r.pack_valid { "ok" } else { "FAILED" }.into(),
                seconds(Some(r.pack_time_s)),
            ],
            vec![
                format!(
                    "consolidation from spread ({} hosts on, {:.0} W → {:.0} W)",
                    r.spread_hosts_on, r.energy_before_w, r.energy_after_w
                ),
                r.consolidated_hosts_on.to_string(),
                format!("{:.1}", r.spread_lower_bound),
                pct(r.consolidated_gap),
                r.moves.to_string(),
                r.plan_steps.to_string(),
                if r.plan_valid { "ok" } else { "FAILED" }.into(),
                seconds(Some(r.consolidation_time_s)),
            ],
            vec![
                format!("consolidation, free migrations ({:.0} W after)", r.free_energy_after_w),
                r.free_hosts_on.to_string(),
                format!("{:.1}", r.spread_lower_bound),
                pct(r.free_gap),
                r.free_moves.to_string(),
                r.free_plan_steps.to_string(),
                if r.free_plan_valid { "ok" } else { "FAILED" }.into(),
                seconds(Some(r.free_time_s)),
            ],
        ],
        notes: vec![
            "target: consolidation within 2 % of the vector lower bound in under 5 s".into(),
            format!(
                "consolidation rows: the {} pods the worst-fit spread could place, bound of those pods; the objective is power, not hosts",
                r.spread_pods
            ),
            "checker: every intermediate state of the migration plan verified against host capacity".into(),
        ],
    };
    let mut summaries = vec![summary];
    if let Some(p) = &peer_row {
        let opt = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
        summaries.push(Summary {
            title: format!("openb packing against {} (same model for both peers, same time limit, 1 thread)", p.peer),
            headers: ["solver", "status", "nodes used", "bound", "Zonal nodes", "Zonal / peer", "peer time", "Zonal time"]
                .map(String::from)
                .to_vec(),
            rows: vec![vec![
                p.solver.clone(),
                p.status.clone(),
                opt(p.peer_bins),
                opt(p.peer_bound),
                p.zonal_bins.to_string(),
                p.zonal_over_peer.map_or("-".to_string(), |x| format!("{x:.4}")),
                seconds(Some(p.peer_time_s)),
                seconds(Some(p.zonal_time_s)),
            ]],
            notes: vec![
                "peer model: pods and nodes aggregated by type, one copy per node, integer pods per type and node, symmetry breaking among identical nodes (crates/bench/peers/openb.py); peer time includes building the model in Python".into(),
            ],
        });
    }
    if !r.pack_valid || !r.plan_valid || !r.free_plan_valid {
        return Err(Failure::new(
            1,
            "the openb packing or a migration plan failed the independent check (see openb.csv)",
        ));
    }
    finish(args, &summaries, &csv_paths)
}
