//! Property tests: packings respect capacities and place every item exactly once; migration
//! plans pass the checker; consolidation never increases the objective.

use std::time::Duration;

use proptest::prelude::*;
use zonal_pack::*;

fn identical_instance() -> impl Strategy<Value = Instance> {
    (1usize..4, 1usize..40).prop_flat_map(|(d, n)| {
        let cap = proptest::collection::vec(5u64..60, d);
        cap.prop_flat_map(move |cap| {
            let caps = cap.clone();
            let item = caps.iter().map(|&c| 0i64..=c as i64).collect::<Vec<_>>();
            proptest::collection::vec(item, n).prop_map(move |items| Instance::identical("p", cap.clone(), items))
        })
    })
}

fn listed_instance() -> impl Strategy<Value = Instance> {
    (1usize..4, 1usize..12, 1usize..30).prop_flat_map(|(d, m, n)| {
        let bins = proptest::collection::vec(
            (proptest::collection::vec(10u64..50, d), 1u32..5, proptest::option::of(0.5f64..1.0)),
            m,
        );
        let items = proptest::collection::vec(proptest::collection::vec(0i64..15, d), n);
        (bins, items).prop_map(move |(bins, items)| {
            let bins =
                bins.into_iter().map(|(capacity, cost, target)| Bin { capacity, target, cost: cost as f64 }).collect();
            Instance::listed("l", d, bins, items)
        })
    })
}

fn quick(seed: u64) -> SolveOptions {
    SolveOptions {
        constructive: Constructive::All,
        improve: Some(ImproveOptions { time_limit: None, max_iterations: 300, stagnation: 50, seed }),
        allow_unplaced: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]

    #[test]
    fn packings_are_valid_and_complete(inst in identical_instance(), seed in 0u64..1000) {
        let r = solve(&inst, &quick(seed)).unwrap();
        prop_assert_eq!(r.solution.assignment.len(), inst.items.len());
        prop_assert!(validate(&inst, &r.solution).is_ok());
        prop_assert!(r.cost + 1e-9 >= r.lower_bound, "cost {} below bound {}", r.cost, r.lower_bound);
        prop_assert!(r.cost <= r.constructive_cost + 1e-9);
        prop_assert_eq!(r.bins_used, r.solution.bins_used());
    }

    #[test]
    fn every_heuristic_alone_is_valid(inst in identical_instance()) {
        for h in Heuristic::all() {
            let r = solve(&inst, &SolveOptions::only(h)).unwrap();
            prop_assert!(validate(&inst, &r.solution).is_ok(), "{}", h.name());
        }
    }

    #[test]
    fn listed_packings_are_valid_or_report_unplaced(inst in listed_instance(), seed in 0u64..1000) {
        let mut o = quick(seed);
        o.allow_unplaced = true;
        match solve(&inst, &o) {
            Ok(r) => {
                prop_assert!(validate_partial(&inst, &r.solution).is_ok());
                if r.unplaced.is_empty() {
                    prop_assert!(validate(&inst, &r.solution).is_ok());
                    prop_assert!(r.cost + 1e-9 >= r.lower_bound);
                }
                for &i in &r.unplaced {
                    prop_assert_eq!(r.solution.assignment[i], UNPLACED);
                }
            }
            Err(InstanceError::ItemFitsNowhere { .. }) => {}
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}

/// A random feasible consolidation problem: instances placed first-fit in random order.
fn consolidation_problem() -> impl Strategy<Value = ConsolidationProblem> {
    (2usize..10, 1usize..30).prop_flat_map(|(h, n)| {
        let hosts = proptest::collection::vec((40u64..100, 40u64..100, 50u32..150, any::<bool>()), h);
        let insts =
            proptest::collection::vec((1u64..30, 1u64..30, 0u64..4096, prop::bool::weighted(0.1), 0usize..100), n);
        let budget = (proptest::option::of(0usize..10), proptest::option::of(0u64..20_000));
        let target = proptest::option::of(0.6f64..1.0);
        let weights = (0.0f64..20.0, 0.0f64..5.0);
        (hosts, insts, budget, target, weights).prop_map(|(hosts, insts, budget, target, (pm, pg))| {
            let hosts: Vec<ConsHost> = hosts
                .into_iter()
                .enumerate()
                .map(|(k, (cpu, mem, idle, avail))| ConsHost {
                    name: format!("h{k}"),
                    capacity: vec![cpu, mem],
                    idle_watts: idle as f64,
                    max_watts: idle as f64 * 2.0,
                    available: avail || k == 0,
                    target: None,
                })
                .collect();
            let mut load = vec![[0u64; 2]; hosts.len()];
            let mut instances = Vec::new();
            for (k, (cpu, mem, mib, pinned, start)) in insts.into_iter().enumerate() {
                let m = hosts.len();
                if let Some(h) = (0..m)
                    .map(|x| (x + start) % m)
                    .find(|&h| load[h][0] + cpu <= hosts[h].capacity[0] && load[h][1] + mem <= hosts[h].capacity[1])
                {
                    load[h][0] += cpu;
                    load[h][1] += mem;
                    instances.push(ConsInstance {
                        name: format!("i{k}"),
                        demand: vec![cpu, mem],
                        host: h,
                        memory_bytes: mib << 20,
                        pinned,
                    });
                }
            }
            let mut p = ConsolidationProblem::new(&["cpu", "memory"], hosts, instances);
            p.budget = MigrationBudget { max_moves: budget.0, max_bytes: budget.1.map(|b| b << 20) };
            p.target = target;
            p.cost = MigrationCost { per_move: pm, per_gib: pg };
            p
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, rng_seed: proptest::test_runner::RngSeed::Fixed(20261202), ..ProptestConfig::default() })]

    #[test]
    fn consolidation_plans_pass_the_checker(p in consolidation_problem(), seed in 0u64..100) {
        let opts = ConsolidationOptions { time_limit: Duration::from_millis(200), seed, repack: true };
        let plan = consolidate(&p, &opts).unwrap();
        let check = check_plan(&p, &plan);
        prop_assert!(check.is_ok(), "{:?}", check);
        // Never worse than doing nothing (OP-20).
        prop_assert!(plan.objective_after <= plan.objective_before + 1e-9);
        prop_assert!((objective(&p, &p.current()) - plan.objective_before).abs() < 1e-6);
        // Pinned instances stay.
        for (i, inst) in p.instances.iter().enumerate() {
            if inst.pinned {
                prop_assert_eq!(plan.target[i], inst.host);
            }
        }
        // Emptied hosts really are empty.
        for &h in &plan.hosts_emptied {
            prop_assert!(!plan.target.contains(&h));
        }
    }

    #[test]
    fn migration_orders_never_overload(
        caps in proptest::collection::vec(10u64..40, 2..6),
        items in proptest::collection::vec((1u64..12, 0usize..100, 0usize..100), 1..20),
        max_steps in 0usize..40,
    ) {
        // Current and target both feasible by construction (first fit from a random start).
        let m = caps.len();
        let place = |pick: &dyn Fn(usize) -> usize| -> Option<Vec<usize>> {
            let mut load = vec![0u64; m];
            let mut a = Vec::new();
            for (k, &(d, _, _)) in items.iter().enumerate() {
                let h = (0..m).map(|x| (x + pick(k)) % m).find(|&h| load[h] + d <= caps[h])?;
                load[h] += d;
                a.push(h);
            }
            Some(a)
        };
        let cur = place(&|k| items[k].1);
        let tgt = place(&|k| items[k].2);
        if let (Some(cur), Some(tgt)) = (cur, tgt) {
            let cap: Vec<Vec<u64>> = caps.iter().map(|&c| vec![c]).collect();
            let dem: Vec<Vec<u64>> = items.iter().map(|&(d, _, _)| vec![d]).collect();
            let spare = vec![true; m];
            let o = order_migrations(&OrderInput {
                capacity: &cap, spare_ok: &spare, demand: &dem, current: &cur, target: &tgt, max_steps,
            });
            let fin = check_steps(&cap, &dem, &cur, &o.steps, &o.final_assignment);
            prop_assert!(fin.is_ok(), "{:?}", fin);
            // Everything not left in place reaches its target.
            for (i, &t) in tgt.iter().enumerate() {
                if !o.left_in_place.contains(&i) {
                    prop_assert_eq!(o.final_assignment[i], t);
                }
            }
        }
    }
}
