//! Micro check of the FUSION LP at MOOC scale: 1,869 regions × 656 zones at seeded random
//! positions (a Europe-sized box), one service, two SLAs. Prints the problem build time, what
//! building the LP through good_lp's expressions costs, and both steps solved as the full LP
//! (IPM, simplex with a time limit) and by column generation.
//!
//! ```text
//! cargo run --release -p zonal-place --example fusion_scale -- [regions] [zones] [simplex limit s] [cg]
//! ```
//!
//! With `cg` as the fourth argument only column generation runs (with the automatic, simplex
//! and IPM methods for the restricted LPs).

use std::time::{Duration, Instant};

use good_lp::{variable, Expression, ProblemVariables, SolverModel};
use zonal_model::{
    Amount, Bandwidth, Bundle, Component, Demand, DemandEntry, Document, Host, Infrastructure, Location, Money, Price,
    Region, Resources, Scaling, Service, SlotProfile, SlotSpec, UtilitySla, Zone,
};
use zonal_place::fusion::{place, ColumnGeneration, FusionOptions};
use zonal_place::problem::{Problem, ProblemOptions};
use zonal_place::rng::SplitMix64;
use zonal_place::solver::{LpMethod, SolverOptions};

fn bundle(regions: usize, zones: usize, seed: u64, sla: UtilitySla) -> Bundle {
    let mut rng = SplitMix64(seed);
    // Europe-sized box: the largest distance is ≈ 4,000 km, 40 ms RTT, inside R_max.
    let loc = |rng: &mut SplitMix64| Location::new(rng.range(36.0, 60.0), rng.range(-10.0, 30.0));
    let zones: Vec<Zone> = (0..zones)
        .map(|i| Zone {
            name: format!("z{i:04}"),
            location: loc(&mut rng),
            price: Price {
                cpu_hour: Money::new(rng.range(0.01, 0.05)),
                memory_gib_hour: Money::new(0.005),
                gpu_hour: Money::new(0.0),
                egress_per_gb: Money::new(rng.range(0.0, 0.05)),
            },
            hosts: vec![Host {
                name: "h".into(),
                capacity: Resources::new()
                    .with("cpu", Amount::cpu(1000 * rng.range(16.0, 64.0) as u64))
                    .with("memory", Amount::bytes(256 << 30)),
                available: true,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    let infra = Infrastructure { name: "synthetic".into(), zones, ..Default::default() };
    let svc = Service {
        name: "mooc".into(),
        components: vec![Component {
            name: "streamer".into(),
            resources: Resources::new().with("cpu", Amount::cpu(1000)).with("memory", Amount::bytes(2 << 30)),
            slots: SlotSpec { per_instance: 10, min_free: 0 },
            scaling: Scaling { min_instances: 0, max_instances: 1000 },
            public: true,
            ..Default::default()
        }],
        sla: Some(sla),
        session_bandwidth: Some(Bandwidth::from_mbps(4.0)),
        ..Default::default()
    };
    let mut demand = Demand { name: "synthetic".into(), ..Default::default() };
    for i in 0..regions {
        let name = format!("r{i:04}");
        demand.regions.push(Region {
            name: name.clone(),
            location: loc(&mut rng),
            weight: rng.range(0.5, 2.0),
            attach: None,
        });
        let slots = rng.range(1.0, 50.0) as u32;
        demand.entries.push(DemandEntry {
            service: "mooc".into(),
            region: name,
            slots: SlotProfile::Constant(slots),
            sla: None,
            session_bandwidth: None,
        });
    }
    Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(demand)])
}

/// Builds the x-part of the same LP ((4), (8), (10), (5) and the cost row) with good_lp
/// expressions and hands it to HiGHS, to see what expression building costs at this size.
fn good_lp_build_seconds(p: &Problem) -> (f64, usize) {
    let started = Instant::now();
    let mut vars = ProblemVariables::new();
    let u = vars.add(variable());
    let cost = vars.add(variable().min(0.0));
    let mut rows = Vec::new();
    let mut by_zone: Vec<Expression> = vec![Expression::from(0.0); p.zones.len()];
    let mut cost_expr = Expression::from(0.0);
    for d in &p.demands {
        let rtt = &p.region_rtt[d.region];
        let zs: Vec<usize> = (0..p.zones.len()).filter(|&t| rtt[t] <= d.sla.r_max.as_millis()).collect();
        let xs: Vec<_> = zs.iter().map(|_| vars.add(variable().clamp(0, 1))).collect();
        let z = vars.add(variable().min(0.0));
        rows.push(xs.iter().copied().sum::<Expression>().eq(1.0));
        let lat: Expression = zs.iter().zip(&xs).map(|(&t, &x)| rtt[t] * x).sum();
        rows.push((Expression::from(z) - lat).geq(-d.sla.r_min.as_millis()));
        rows.push((d.sla.importance * d.sla.span_ms() * u + z).leq(d.sla.span_ms()));
        for (&t, &x) in zs.iter().zip(&xs) {
            by_zone[t] += d.slots * x;
            cost_expr += d.slots * p.deploy_cost[d.service][t] * x;
        }
    }
    for (t, e) in by_zone.into_iter().enumerate() {
        rows.push(e.leq(p.slot_capacity[0][t]));
    }
    rows.push((cost_expr - cost).eq(0.0));
    let mut problem = vars.maximise(u).using(good_lp::solvers::highs::highs);
    for r in rows {
        problem.add_constraint(r);
    }
    let model = problem.try_into_inner().expect("HiGHS accepts the model");
    (started.elapsed().as_secs_f64(), model.num_cols())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let regions = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1869);
    let zones = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(656);
    let simplex_limit = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(60.0);
    // A fourth argument `cg` runs column generation only.
    let cg_only = args.get(4).is_some_and(|a| a == "cg");
    let ms = zonal_model::Duration::from_millis;
    let slas = [
        ("FUSION default SLA 20/50/150 ms", UtilitySla::default()),
        ("tight SLA 5/15/40 ms", UtilitySla { r_min: ms(5.0), r_med: ms(15.0), r_max: ms(40.0), importance: 1.0 }),
    ];
    for (si, (sla_name, sla)) in slas.into_iter().enumerate() {
        println!("=== FUSION LP scale check: {regions} regions × {zones} zones, 1 service, {sla_name} (seed 7)");
        let b = bundle(regions, zones, 7, sla);
        let started = Instant::now();
        let p = Problem::from_bundle(&b, &ProblemOptions::default()).expect("valid synthetic bundle");
        println!("problem build (latencies, capacities, costs): {:.3} s", started.elapsed().as_secs_f64());
        if si == 0 && !cg_only {
            let (gl_secs, gl_cols) = good_lp_build_seconds(&p);
            println!(
                "good_lp expression build of the same LP (no shared-capacity rows): {gl_secs:.3} s, {gl_cols} columns"
            );
        }
        let mut runs = vec![
            ("full LP, IPM", ColumnGeneration::Never, LpMethod::Ipm, None),
            ("column generation (auto method)", ColumnGeneration::Always, LpMethod::Auto, None),
        ];
        if cg_only {
            runs.remove(0);
            runs.push(("column generation, simplex", ColumnGeneration::Always, LpMethod::Simplex, None));
            runs.push(("column generation, IPM", ColumnGeneration::Always, LpMethod::Ipm, None));
        } else if si == 0 {
            runs.insert(1, ("full LP, simplex", ColumnGeneration::Never, LpMethod::Simplex, Some(simplex_limit)));
        }
        for (name, cg, method, limit) in runs {
            let opts = FusionOptions {
                alpha: 0.5,
                rounding: true,
                column_generation: cg,
                solver: SolverOptions {
                    lp_method: method,
                    time_limit: limit.map(Duration::from_secs_f64),
                    ..Default::default()
                },
                ..Default::default()
            };
            let started = Instant::now();
            match place(&p, &opts) {
                Ok(plan) => {
                    println!(
                        "--- {name}: total {:.3} s, largest model {} columns × {} rows",
                        started.elapsed().as_secs_f64(),
                        plan.stats.columns,
                        plan.stats.rows
                    );
                    println!(
                        "    models built in {:.3} s; {} solves taking {:.3} s",
                        plan.stats.build_seconds, plan.stats.solves, plan.stats.seconds
                    );
                    if plan.stats.solve_log.len() <= 2 {
                        for (i, st) in plan.stats.solve_log.iter().enumerate() {
                            println!(
                                "    step {}: {:?} in {:.3} s ({}, {} simplex + {} IPM iterations)",
                                i + 1,
                                st.status,
                                st.seconds,
                                st.method,
                                st.simplex_iterations,
                                st.ipm_iterations
                            );
                        }
                    }
                    for n in plan.notes.iter().filter(|n| n.starts_with("pruned") || n.starts_with("column")) {
                        println!("    {n}");
                    }
                    for k in [
                        "step1_min_utility",
                        "min_utility",
                        "utility_percent",
                        "worst_latency_ms",
                        "cost",
                        "rounding_utility_loss",
                    ] {
                        println!("    {k} = {:.6}", plan.term(k).unwrap_or(f64::NAN));
                    }
                    println!("    step-2 LP objective {:.6}", plan.bound.unwrap_or(f64::NAN));
                }
                Err(e) => println!("--- {name}: failed after {:.3} s: {e}", started.elapsed().as_secs_f64()),
            }
        }
    }
}
