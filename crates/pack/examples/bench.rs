//! Benchmark runner for the consolidation engine.
//!
//! ```text
//! cargo run --release -p zonal-pack --example bench -- vbp [--family F]... [--limit N]
//!     [--time-limit S] [--seed N] [--data DIR] [--csv FILE]
//! cargo run --release -p zonal-pack --example bench -- openb [--pods FILE] [--time-limit S]
//!     [--data DIR] [--csv FILE]
//! ```
//!
//! `--data` defaults to `<workspace>/../shared/data`.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use zonal_pack::bench::{self, Family, VbpOptions};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let suite = args.first().cloned().ok_or("usage: bench vbp|openb [options]")?;
    let mut families = Vec::new();
    let mut limit = None;
    let mut time_limit = None;
    let mut seed = 1u64;
    let mut data = zonal_testdata::data_dir();
    let mut csv_path: Option<PathBuf> = None;
    let mut pods = "openb_pod_list_default.csv".to_string();
    let mut quiet = false;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--family" => {
                let v = val()?;
                families.push(Family::parse(&v).ok_or(format!("unknown family {v}"))?)
            }
            "--limit" => limit = Some(val()?.parse::<usize>().map_err(|e| e.to_string())?),
            "--time-limit" => time_limit = Some(val()?.parse::<f64>().map_err(|e| e.to_string())?),
            "--seed" => seed = val()?.parse().map_err(|e: std::num::ParseIntError| e.to_string())?,
            "--data" => data = PathBuf::from(val()?),
            "--csv" => csv_path = Some(PathBuf::from(val()?)),
            "--pods" => pods = val()?,
            "--quiet" => quiet = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    match suite.as_str() {
        "vbp" => {
            if families.is_empty() {
                families = Family::ALL.to_vec();
            }
            let opts = VbpOptions { limit, time_limit: Duration::from_secs_f64(time_limit.unwrap_or(1.0)), seed };
            let rows = bench::run_vbp_suite_with(&data.join("vbp"), &families, &opts, |r, _| {
                if !quiet {
                    eprintln!(
                        "{:<10} {:<22} n={:<4} d={:<3} bins={:<4} opt={:<5} pub={:<4} lb={:<4} {:.3}s{}",
                        r.family.name(),
                        r.instance,
                        r.items,
                        r.dims,
                        r.bins,
                        r.opt.map_or("-".to_string(), |o| o.to_string()),
                        r.published_best,
                        r.lower_bound,
                        r.time_s,
                        if r.valid { "" } else { "  INVALID" }
                    );
                }
            })
            .map_err(|e| e.to_string())?;
            if let Some(p) = csv_path {
                bench::write_vbp_csv(File::create(&p).map_err(|e| e.to_string())?, &rows).map_err(|e| e.to_string())?;
            }
            let summary = bench::summarise_vbp(&rows);
            println!(
                "{:<10} {:>6} {:>6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>8}",
                "family",
                "inst",
                "w/opt",
                "ratio",
                "published",
                "constr",
                "optimal",
                "pub_opt",
                "better",
                "worse",
                "mean_t_s",
                "max_t_s"
            );
            for s in &summary {
                println!(
                    "{:<10} {:>6} {:>6} {:>9.4} {:>9.4} {:>9.4} {:>8} {:>8} {:>7} {:>7} {:>9.3} {:>8.3}",
                    s.family.name(),
                    s.instances,
                    s.with_opt,
                    s.mean_ratio,
                    s.published_mean_ratio,
                    s.constructive_mean_ratio,
                    s.optimal,
                    s.published_optimal,
                    s.better_than_published,
                    s.worse_than_published,
                    s.mean_time_s,
                    s.max_time_s
                );
            }
            if rows.iter().any(|r| !r.valid) {
                return Err("some packings failed validation".into());
            }
            Ok(())
        }
        "openb" => {
            let opts = bench::OpenbOptions {
                pods_file: pods,
                time_limit: Duration::from_secs_f64(time_limit.unwrap_or(4.0)),
                seed,
                consolidation: true,
            };
            let dir = data.join("traces/alibaba-openb-2023");
            let r = bench::run_openb(&dir, &opts).map_err(|e| e.to_string())?;
            if let Some(p) = csv_path {
                bench::write_openb_csv(File::create(&p).map_err(|e| e.to_string())?, &r).map_err(|e| e.to_string())?;
            }
            println!("openb packing: {} pods onto {} nodes", r.pods, r.nodes);
            println!(
                "  placed {} / unplaced {} (unplaced milli-GPU {}), nodes used {}, vector LB {} (gap {:.2} %), \
                 LB of placed pods {} (gap {:.2} %), time {:.2} s, constructive {} ({} nodes), valid {}",
                r.placed,
                r.unplaced,
                r.unplaced_gpu_milli,
                r.bins,
                r.lower_bound,
                100.0 * r.gap,
                r.placed_lower_bound,
                100.0 * r.placed_gap,
                r.pack_time_s,
                r.constructive,
                r.constructive_bins,
                r.pack_valid
            );
            println!(
                "openb consolidation from a spread placement of {} pods (vector LB {}): hosts on {} -> {} (gap {:.2} %), power {:.0} W -> {:.0} W, \
                 {} moves, {} steps ({} temporary, {} left in place), checker {}, {} in {:.2} s",
                r.spread_pods,
                r.spread_lower_bound,
                r.spread_hosts_on,
                r.consolidated_hosts_on,
                100.0 * r.consolidated_gap,
                r.energy_before_w,
                r.energy_after_w,
                r.moves,
                r.plan_steps,
                r.temporary_moves,
                r.left_in_place,
                if r.plan_valid { "OK" } else { "FAILED" },
                r.consolidation_algorithm,
                r.consolidation_time_s
            );
            println!(
                "openb consolidation with free migrations: hosts on {} -> {} (gap {:.2} %), power {:.0} W -> {:.0} W, {} moves, \
                 {} steps ({} temporary, {} left in place), checker {}, {} in {:.2} s",
                r.spread_hosts_on,
                r.free_hosts_on,
                100.0 * r.free_gap,
                r.energy_before_w,
                r.free_energy_after_w,
                r.free_moves,
                r.free_plan_steps,
                r.free_temporary_moves,
                r.free_left_in_place,
                if r.free_plan_valid { "OK" } else { "FAILED" },
                r.free_algorithm,
                r.free_time_s
            );
            if !r.pack_valid || !r.plan_valid || !r.free_plan_valid {
                return Err("validation failed".into());
            }
            Ok(())
        }
        other => Err(format!("unknown suite {other}")),
    }
}
