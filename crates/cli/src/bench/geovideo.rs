//! `zonal bench --suite geo-video`: the FUSION LP on the MOOC data.

use zonal_bench::geovideo::{
    as_curve, curve, curve_summary, lp_summary, lp_sweep, mooc_bundle, mooc_problem, paper_options, speed_curve,
    speed_summary, tie_break_summary, GeoVideoData, LpSweep, LpVariant, MoocScenario, LP_SIZES,
};
use zonal_bench::report::to_csv;

use super::{finish, read_data, write, Args, Bar};
use crate::plan::{curve_csv, curve_svg};
use crate::Failure;

pub fn run(args: &Args) -> Result<(), Failure> {
    let dc_nodes = read_data(&args.data, "geo-video/dcNodes.csv")?;
    let mooc = read_data(&args.data, "geo-video/mooc.out")?;
    let ec2_prices = read_data(&args.data, "geo-video/ec2_price.out")?;
    let data = GeoVideoData { dc_nodes: &dc_nodes, mooc: &mooc, ec2_prices: &ec2_prices };
    if args.fusion_speed {
        return fusion_speed(args, data);
    }
    if args.reproduce {
        return reproduce(args, data);
    }
    let sizes = match args.limit {
        Some(n) => LP_SIZES.iter().copied().take(n).collect(),
        None => LP_SIZES.to_vec(),
    };
    let sweep = LpSweep {
        sizes,
        seeds: args.seed_list()?,
        variants: LpVariant::ALL.to_vec(),
        capacity_factor: args.capacity_factor,
        solver: args.solver(),
    };
    let bar = Bar::new();
    let records = lp_sweep(data, &sweep, &mut |d, t, w| bar.report(d, t, w)).map_err(fail)?;
    drop(bar);
    let csv = write(&args.out, "lp-sweep.csv", &to_csv(&records))?;
    finish(args, &[lp_summary(&records)], &[csv])
}

/// The MOOC scenario the arguments ask for (regions, zones, capacity factor), its notes printed.
fn mooc_scenario(args: &Args, data: GeoVideoData) -> Result<zonal_place::problem::Problem, Failure> {
    let scenario =
        MoocScenario { regions: args.regions, zones: args.zones, seed: 1, capacity_factor: args.capacity_factor };
    let b = mooc_bundle(data, &scenario).map_err(fail)?;
    for n in &b.notes {
        eprintln!("note: {n}");
    }
    mooc_problem(&b).map_err(fail)
}

fn reproduce(args: &Args, data: GeoVideoData) -> Result<(), Failure> {
    let p = mooc_scenario(args, data)?;
    let base = paper_options(args.solver());
    let bar = Bar::new();
    let fair = curve(&p, &base, args.budgets, true, None, &mut |d, t, w| bar.report(d, t, w)).map_err(fail)?;
    let budgets: Vec<f64> =
        fair.iter().filter(|r| r.kind == zonal_bench::geovideo::PointKind::Budget).map(|r| r.budget).collect();
    let unfair =
        curve(&p, &base, args.budgets, false, Some(&budgets), &mut |d, t, w| bar.report(d, t, w)).map_err(fail)?;
    // The reference for the α = 1 tie-break: the same curve without Step 3 (its own budgets).
    let no_tie = zonal_place::fusion::FusionOptions { tie_break: false, ..base.clone() };
    let before = curve(&p, &no_tie, args.budgets, true, None, &mut |d, t, w| bar.report(d, t, w)).map_err(fail)?;
    drop(bar);
    let all: Vec<_> = fair.iter().chain(&unfair).chain(&before).cloned().collect();
    let files = vec![
        write(&args.out, "fusion-curve.csv", &to_csv(&all))?,
        write(&args.out, "tradeoff.csv", &curve_csv(&as_curve(&fair)))?,
        write(&args.out, "tradeoff.svg", &curve_svg(&as_curve(&fair)))?,
        write(&args.out, "tradeoff-step2-only.csv", &curve_csv(&as_curve(&unfair)))?,
        write(&args.out, "tradeoff-step2-only.svg", &curve_svg(&as_curve(&unfair)))?,
    ];
    finish(args, &[curve_summary(&all), tie_break_summary(&fair, &before)], &files)
}

/// `--fusion-speed`: the curve by one warm session against separate and reference solves.
fn fusion_speed(args: &Args, data: GeoVideoData) -> Result<(), Failure> {
    let p = mooc_scenario(args, data)?;
    let base = paper_options(args.solver());
    let bar = Bar::new();
    let records = speed_curve(&p, &base, args.budgets, args.reference_points, &mut |d, t, w| bar.report(d, t, w))
        .map_err(fail)?;
    drop(bar);
    let csv = write(&args.out, "fusion-speed.csv", &to_csv(&records))?;
    finish(args, &[speed_summary(&records)], &[csv])
}

/// A benchmark error as the command's failure.
fn fail(e: zonal_bench::BenchError) -> Failure {
    Failure::new(1, e.to_string())
}
