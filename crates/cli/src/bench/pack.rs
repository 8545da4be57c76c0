//! `zonal bench --suite vbp|openb`: Zonal's vector bin packer and consolidation on reference
//! instances with known optima (vbp) and on the Alibaba openb trace, optionally against a
//! peer solver (`--peer ortools|highspy`, vbp only) with the same formulation and time limit.

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
    let runner = args.peer.map(|p| prepare_peer(p.into())).transpose()?;
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

pub fn run_openb(args: &Args) -> Result<(), Failure> {
    if args.peer.is_some() {
        return Err(Failure::new(
            2,
            "--peer: the openb suite has no peer formulation (an assignment model of 8,152 pods × 1,523 nodes is beyond both peers); use it with --suite vbp",
        ));
    }
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
                format!("{:.1}", r.placed_lower_bound),
                pct(r.consolidated_hosts_on as f64 / r.placed_lower_bound.max(1.0) - 1.0),
                r.moves.to_string(),
                r.plan_steps.to_string(),
                if r.plan_valid { "ok" } else { "FAILED" }.into(),
                seconds(Some(r.consolidation_time_s)),
            ],
            vec![
                format!("consolidation, free migrations ({:.0} W after)", r.free_energy_after_w),
                r.free_hosts_on.to_string(),
                format!("{:.1}", r.placed_lower_bound),
                pct(r.free_hosts_on as f64 / r.placed_lower_bound.max(1.0) - 1.0),
                r.free_moves.to_string(),
                r.free_plan_steps.to_string(),
                if r.free_plan_valid { "ok" } else { "FAILED" }.into(),
                seconds(Some(r.free_time_s)),
            ],
        ],
        notes: vec![
            "target: consolidation within 2 % of the vector lower bound in under 5 s".into(),
            "checker: every intermediate state of the migration plan verified against host capacity".into(),
        ],
    };
    if !r.pack_valid || !r.plan_valid || !r.free_plan_valid {
        return Err(Failure::new(
            1,
            "the openb packing or a migration plan failed the independent check (see openb.csv)",
        ));
    }
    finish(args, &[summary], &[csv_path])
}
