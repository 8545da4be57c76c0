//! The pipeline on small hand-built states and on the repository's examples.

use zonal_model::{
    Allocation, Bandwidth, Bundle, Channel, Component, Document, Duration, Infrastructure, Pin, Scaling, Service,
};

use super::*;
use crate::testkit::*;

fn opts() -> DecideOptions {
    DecideOptions::default()
}

fn examples(files: &[&str]) -> Bundle {
    let root = zonal_testdata::examples();
    let paths: Vec<_> = files.iter().map(|f| root.join(f)).collect();
    let loaded = zonal_descriptor::load_paths(&paths);
    assert!(loaded.is_valid(), "{:?}", loaded.diagnostics);
    loaded.bundle
}

/// Two small edge zones near the user (Antwerp, Ghent) and a large core zone ~2,800 km away
/// (Lisbon), as in the issue that asked for this pipeline.
fn edge_and_far_core() -> Infrastructure {
    let mut edge1 = zone("antwerp-edge", 51.22, 4.40, vec![host("a0", 4, 8)]);
    edge1.price.cpu_hour = zonal_model::Money::new(0.06);
    let mut edge2 = zone("ghent-edge", 51.05, 3.72, vec![host("g0", 4, 8)]);
    edge2.price.cpu_hour = zonal_model::Money::new(0.06);
    let core = zone("lisbon-core", 38.72, -9.14, vec![host("l0", 64, 256), host("l1", 64, 256)]);
    Infrastructure {
        name: "t".into(),
        zones: vec![edge1, edge2, core],
        links: vec![
            link("antwerp-edge", "ghent-edge", None, Some(10_000.0)),
            link("antwerp-edge", "lisbon-core", None, Some(10_000.0)),
        ],
        ..Default::default()
    }
}

fn metro_chain() -> Service {
    let mut s = Service { name: "cam".into(), proximity: Some("metro".into()), ..Default::default() };
    s.components.push(Component {
        name: "ue".into(),
        user_side: true,
        placement: zonal_model::PlacementConstraints {
            pin: Some(Pin { zone: "antwerp-edge".into(), host: None }),
            ..Default::default()
        },
        ..Default::default()
    });
    for (n, cpu) in [("fw", 1), ("cache", 1)] {
        s.components.push(Component { name: n.into(), resources: res(cpu, 1), ..Default::default() });
    }
    s.channels.push(Channel { from: "ue".into(), to: "fw".into(), bandwidth: None, max_latency: None });
    s.channels.push(Channel {
        from: "fw".into(),
        to: "cache".into(),
        bandwidth: Some(Bandwidth::from_mbps(50.0)),
        max_latency: Some(Duration::from_millis(5.0)),
    });
    s
}

/// Every placed component runs something (a component with `run: none` is planned, never
/// deployed, so it would not appear in a target).
fn running(mut s: Service) -> Service {
    for c in &mut s.components {
        if !c.user_side {
            c.run = zonal_model::RunSpec::Command { argv: vec!["true".into()], env: Default::default() };
        }
    }
    s
}

fn state(infra: Infrastructure, services: Vec<Service>) -> LiveState {
    let mut docs = vec![Document::Infrastructure(infra)];
    docs.extend(services.into_iter().map(|s| Document::Service(running(s))));
    LiveState::from_bundle(&Bundle::new(docs))
}

/// The line bundle's state with its service running something.
fn line_state(zones: usize, regions: usize) -> LiveState {
    let mut st = LiveState::from_bundle(&line_bundle(zones, regions));
    for s in &mut st.services {
        s.service = running(s.service.clone());
    }
    st
}

#[test]
fn a_metro_chain_stays_at_the_edge_and_the_greedy_would_not() {
    let st = state(edge_and_far_core(), vec![metro_chain()]);
    let d = decide(&st, "cam", Trigger::Apply, &opts()).expect("placed");
    assert_eq!(d.route, Route::Chain);
    assert!(d.check.is_ok(), "{}", d.check.summary());
    for comp in ["fw", "cache"] {
        assert!(d.target.count("antwerp-edge", comp) + d.target.count("ghent-edge", comp) == 1, "{:?}", d.target);
    }
    assert_eq!(d.target.zones.get("lisbon-core"), None);
    // The last resort would have put everything in the far core zone (most free CPU).
    let problem = crate::problem::Problem::from_bundle(
        &st.bundle_for(&running(metro_chain()), &[]),
        &crate::problem::ProblemOptions::default(),
    )
    .unwrap();
    let g = fallback::greedy(&problem, "cam", 0).expect("greedy");
    assert!(g.plan.placements.iter().all(|p| p.zone == "lisbon-core"));
    let (user, far) = (problem.zone_index("antwerp-edge").unwrap(), problem.zone_index("lisbon-core").unwrap());
    assert!(problem.zone_rtt(user, far) > 15.0, "the greedy's zone is beyond the metro bound");
}

#[test]
fn a_composite_too_big_for_any_zone_is_split_with_its_channel_bandwidth_reserved() {
    let infra = Infrastructure {
        name: "t".into(),
        zones: vec![zone("a", 50.0, 4.0, vec![host("a0", 4, 16)]), zone("b", 50.0, 5.0, vec![host("b0", 4, 16)])],
        links: vec![link("a", "b", None, Some(1_000.0))],
        ..Default::default()
    };
    let mut s = Service { name: "big".into(), ..Default::default() };
    for n in ["front", "back"] {
        s.components.push(Component {
            name: n.into(),
            resources: res(3, 2),
            scaling: Scaling { min_instances: 1, max_instances: 1 },
            ..Default::default()
        });
    }
    s.channels.push(Channel {
        from: "front".into(),
        to: "back".into(),
        bandwidth: Some(Bandwidth::from_mbps(200.0)),
        max_latency: None,
    });
    let st = state(infra, vec![s]);
    let d = decide(&st, "big", Trigger::Apply, &opts()).expect("split");
    assert_eq!(d.route, Route::Copies);
    assert!(d.check.is_ok(), "{}", d.check.summary());
    assert_eq!(d.target.zones.len(), 2, "{:?}", d.target);
    assert_eq!(d.target.paths.len(), 1);
    assert_eq!(d.target.paths[0].reserved_mbps(), 200.0);
    assert_eq!(d.target.link_load().values().sum::<f64>(), 200.0);
    assert_eq!(d.diff.start, 2);
    assert_eq!(d.diff.paths_added.len(), 1);
}

#[test]
fn a_composite_that_fits_goes_whole_to_the_cheapest_zone() {
    let mut cheap = zone("cheap", 50.0, 4.0, vec![host("c0", 16, 32)]);
    cheap.price.cpu_hour = zonal_model::Money::new(0.01);
    let infra = Infrastructure {
        name: "t".into(),
        zones: vec![zone("dear", 50.0, 5.0, vec![host("d0", 64, 128)]), cheap],
        links: vec![link("dear", "cheap", None, Some(1_000.0))],
        ..Default::default()
    };
    let mut s = Service { name: "pair".into(), ..Default::default() };
    for n in ["x", "y"] {
        s.components.push(Component { name: n.into(), resources: res(1, 1), ..Default::default() });
    }
    s.channels.push(Channel { from: "x".into(), to: "y".into(), bandwidth: None, max_latency: None });
    let d = decide(&state(infra, vec![s]), "pair", Trigger::Apply, &opts()).expect("placed");
    assert_eq!(d.target.zones.keys().collect::<Vec<_>>(), vec!["cheap"]);
    assert!(d.target.paths.is_empty());
}

#[test]
fn a_single_component_goes_to_the_cheapest_host_and_scales_with_slots() {
    let mut st = line_state(3, 0);
    st.infrastructure.zones[2].price.cpu_hour = zonal_model::Money::new(0.001);
    st.services[0].service.components[0].scaling = Scaling { min_instances: 1, max_instances: 3 };
    st.services[0].slots = 16; // 4 slots per instance → 4 instances, 3 per zone at most
    let d = decide(&st, "svc", Trigger::Apply, &opts()).expect("placed");
    assert_eq!(d.route, Route::Single);
    assert_eq!(d.target.count("z2", "app"), 3);
    assert_eq!(d.target.instances(), 4);
    assert!(d.check.is_ok(), "{}", d.check.summary());
}

#[test]
fn regional_demand_goes_to_fusion_near_the_users() {
    let st = line_state(3, 1);
    let d = decide(&st, "svc", Trigger::Apply, &opts()).expect("placed");
    assert_eq!(d.route, Route::Fusion);
    assert!(d.check.is_ok());
    assert_eq!(d.target.zones.keys().collect::<Vec<_>>(), vec!["z0"], "r0 sits at z0");
    assert!(d.after.terms["worst_region_utility"] > 0.0);
}

#[test]
fn evaluator_scores_steer_the_choice() {
    let mut st = line_state(3, 0);
    st.services[0].offers = Some(vec![
        OfferTerms {
            zone: "z0".into(),
            environments: vec![OfferedHost { host: "h".into(), score: 0.2, slots: 40, price: 0.01 }],
        },
        OfferTerms {
            zone: "z1".into(),
            environments: vec![OfferedHost { host: "h".into(), score: 0.9, slots: 40, price: 0.01 }],
        },
    ]);
    let d = decide(&st, "svc", Trigger::Apply, &opts()).expect("placed");
    assert_eq!(d.target.zones.keys().collect::<Vec<_>>(), vec!["z1"], "{:?}", d.notes);
    st.services[0].offers = Some(vec![]);
    let e = decide(&st, "svc", Trigger::Apply, &opts()).expect_err("no offers");
    assert!(e.to_string().contains("no zone offered"), "{e}");
}

#[test]
fn infeasible_services_are_refused_naming_the_constraint() {
    let mut st = line_state(2, 0);
    st.services[0].service.components[0].placement.requires.insert("accelerator".into(), "t4".into());
    let e = decide(&st, "svc", Trigger::Apply, &opts()).expect_err("no host has a t4");
    assert!(e.to_string().contains("svc"), "{e}");
    let st2 = {
        let mut s = line_state(2, 0);
        s.services[0].slots = 1000; // 250 instances of 1 core on 8 cores
        s
    };
    let e = decide(&st2, "svc", Trigger::Apply, &opts()).expect_err("too big");
    assert!(!e.reasons().is_empty(), "{e}");
}

#[test]
fn a_replacement_that_gains_less_than_its_moves_does_nothing() {
    let mut st = line_state(3, 1);
    let first = decide(&st, "svc", Trigger::Apply, &opts()).expect("placed");
    // Move the running instance one zone away: still within R_max, a little worse.
    let mut running = Allocation::default();
    running.zones.entry("z1".into()).or_default().insert("app".into(), first.target.instances());
    st.services[0].running = Some(running.clone());
    let mut costly = opts();
    costly.switching.utility_per_move = 100.0;
    let d = decide(&st, "svc", Trigger::Demand, &costly).expect("decided");
    assert!(!d.apply, "{}", d.summary);
    assert!(d.summary.contains("nothing changed"), "{}", d.summary);
    assert_eq!(d.target, running);
    assert!(d.diff.is_empty());
    // Free moves: the better placement is applied.
    let mut free = opts();
    free.switching.utility_per_move = 0.0;
    let d = decide(&st, "svc", Trigger::Demand, &free).expect("decided");
    assert!(d.apply && d.gain.is_some_and(|g| g > 0.0), "{}", d.summary);
    assert_eq!(d.diff.moved(), first.target.instances());
    // A lost zone always acts.
    st.unavailable.insert("z1".into());
    let d = decide(&st, "svc", Trigger::ZoneLost { zones: vec!["z1".into()] }, &costly).expect("decided");
    assert!(d.apply && d.before.is_none());
}

#[test]
fn other_services_capacity_is_respected() {
    let mut st = line_state(1, 0);
    // Another service holds 3 of the host's 4 cores.
    let mut other = st.services[0].clone();
    other.service.name = "other".into();
    st.services.push(other);
    for _ in 0..3 {
        st.instances.push(LiveInstance {
            service: "other".into(),
            component: "app".into(),
            zone: "z0".into(),
            host: "h".into(),
            resources: res(1, 1),
        });
    }
    st.services[0].slots = 8; // two instances wanted, one fits
    let e = decide(&st, "svc", Trigger::Apply, &opts()).expect_err("one core left");
    assert!(e.to_string().contains("only 1 of 2"), "{e}");
}

#[test]
fn the_repository_examples_place_through_the_pipeline() {
    let b = examples(&["infrastructure.yaml", "input-chain.yaml", "web.yaml", "epg.yaml", "knowledge-base.yaml"]);
    let st = LiveState::from_bundle(&b);
    let chain = decide(&st, "smart-camera", Trigger::Apply, &opts()).expect("chain");
    assert_eq!(chain.route, Route::Chain);
    assert!(chain.check.is_ok(), "{}", chain.check.summary());
    // The analytics app is tagged compute-intensive: the knowledge base gives it a GPU profile,
    // so it runs on a GPU host.
    let profile = &chain.target.overrides["analytics"];
    assert_eq!(profile.requires.get("accelerator").map(String::as_str), Some("nvidia-t4"), "{:?}", chain.notes);
    assert!(chain.target.hosts["frankfurt-core"]["analytics"].keys().all(|h| h.starts_with("fra-gpu")));
    // Every placed component within the metro class of the user at antwerp-edge.
    for z in chain.target.zones.keys() {
        let p = &chain.plan;
        assert!(p.subscriptions.iter().all(|s| s.user_zone.as_deref() == Some("antwerp-edge")), "{z}");
    }
    assert_eq!(chain.target.instances(), 4);
    let web = decide(&st, "web", Trigger::Apply, &opts()).expect("web");
    assert_eq!(web.route, Route::Single);
    assert_eq!(web.target.zones.keys().collect::<Vec<_>>(), vec!["frankfurt-core"], "cheapest zone");
    let epg = decide(&st, "epg", Trigger::Apply, &opts()).expect("epg");
    assert_eq!(epg.route, Route::Copies);
    assert_eq!(epg.target.zones.len(), 1, "collocated: {:?}", epg.target);
    assert!(!epg.target.zones.values().any(|c| c.contains_key("evaluator")));
}

#[test]
fn runtime_placement_equals_the_offline_plan_on_the_same_state() {
    let b = examples(&["infrastructure.yaml", "input-chain.yaml", "web.yaml", "epg.yaml", "demand.yaml"]);
    // Only the chain and its demand (the demand file also names web and epg).
    let docs: Vec<Document> = b
        .documents
        .iter()
        .filter(|d| !matches!(d, Document::Service(s) if s.name != "smart-camera"))
        .map(|d| match d {
            Document::Demand(dm) => {
                let mut dm = dm.clone();
                dm.entries.retain(|e| e.service == "smart-camera");
                Document::Demand(dm)
            }
            other => other.clone(),
        })
        .collect();
    let b = Bundle::new(docs);
    let st = LiveState::from_bundle(&b);
    let d = decide(&st, "smart-camera", Trigger::Apply, &opts()).expect("decided");
    let offline = crate::auto::plan_bundle(&b, &opts().auto(None)).expect("planned");
    let offline_target =
        diff::allocation(&offline.problem, &offline.plan, &d.target.overrides.clone().into_iter().collect());
    let mut runtime = d.target.clone();
    runtime.overrides.clear();
    let mut off = offline_target;
    off.overrides.clear();
    assert_eq!(runtime.zones, off.zones);
    assert_eq!(runtime.paths, off.paths);
}

#[test]
fn services_without_demand_are_placed_by_the_offline_planner_too() {
    let b = examples(&["infrastructure.yaml", "web.yaml", "epg.yaml"]);
    let out = crate::auto::plan_bundle(&b, &opts().auto(None)).expect("planned");
    assert!(out.check.is_ok(), "{}", out.check.summary());
    assert!(out.plan.placements.iter().any(|p| p.service == "web"));
    assert!(out.plan.placements.iter().any(|p| p.service == "epg" && p.component == "renderer"));
    assert!(!out.plan.notes.iter().any(|n| n.contains("nothing to place")));
}

mod properties {
    //! Runtime placement equals `zonal plan`'s on the same state: for generated
    //! infrastructures and one service of each shape (a chain with a user side, a FUSION slot
    //! service with regional demand, a composite and a single component without demand), the
    //! pipeline's target on an empty live state equals the target of the whole-bundle plan;
    //! both pass the checker.

    use proptest::prelude::*;
    use zonal_model::{Bandwidth, Bundle, Channel, Demand, Document, Infrastructure, Pin, Scaling, Service, SlotSpec};

    use super::super::*;
    use crate::testkit::*;

    #[derive(Debug, Clone)]
    struct Case {
        zones: Vec<(f64, f64, u64, f64)>, // lat, lon, cores, cpu price
        shape: u8,
        cores: Vec<u64>,
        demand: Vec<u32>,
        link_mbps: f64,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec((49.0..51.0f64, 0.0..4.0f64, 2u64..9, 0.01..0.2f64), 2..5),
            0u8..4,
            prop::collection::vec(1u64..4, 2..4),
            prop::collection::vec(0u32..12, 2),
            50.0..500.0f64,
        )
            .prop_map(|(zones, shape, cores, demand, link_mbps)| Case {
                zones,
                shape,
                cores,
                demand,
                link_mbps,
            })
    }

    fn bundle(c: &Case) -> Bundle {
        let zones: Vec<_> = c
            .zones
            .iter()
            .enumerate()
            .map(|(i, &(lat, lon, cores, price))| {
                let mut z = zone(&format!("z{i}"), lat, lon, vec![host(&format!("h{i}"), cores, 16)]);
                z.price.cpu_hour = zonal_model::Money::new(price);
                z
            })
            .collect();
        let links =
            (1..zones.len()).map(|i| link(&format!("z{}", i - 1), &format!("z{i}"), None, Some(c.link_mbps))).collect();
        let infra = Infrastructure { name: "g".into(), zones, links, ..Default::default() };
        let run = zonal_model::RunSpec::Command { argv: vec!["true".into()], env: Default::default() };
        let mut s = Service { name: "s".into(), sla: Some(sla(0.0, 5.0, 80.0)), ..Default::default() };
        let mut comps: Vec<zonal_model::Component> = c
            .cores
            .iter()
            .enumerate()
            .map(|(i, &k)| zonal_model::Component {
                name: format!("c{i}"),
                run: run.clone(),
                resources: res(k, 1),
                slots: SlotSpec { per_instance: 4, min_free: 0 },
                scaling: Scaling { min_instances: 1, max_instances: 10 },
                public: i == 0,
                ..Default::default()
            })
            .collect();
        let mut regions = Vec::new();
        let mut entries = Vec::new();
        match c.shape {
            0 => {
                // A chain: a user side pinned at z0, then the components in a line.
                s.components.push(zonal_model::Component {
                    name: "user".into(),
                    user_side: true,
                    placement: zonal_model::PlacementConstraints {
                        pin: Some(Pin { zone: "z0".into(), host: None }),
                        ..Default::default()
                    },
                    ..Default::default()
                });
                let names: Vec<String> =
                    std::iter::once("user".to_string()).chain(comps.iter().map(|x| x.name.clone())).collect();
                s.components.append(&mut comps);
                for w in names.windows(2) {
                    s.channels.push(Channel {
                        from: w[0].clone(),
                        to: w[1].clone(),
                        bandwidth: Some(Bandwidth::from_mbps(10.0)),
                        max_latency: None,
                    });
                }
            }
            1 => {
                // One slot service with demand in two regions.
                comps.truncate(1);
                s.components = comps;
                for (i, d) in c.demand.iter().enumerate() {
                    let (lat, lon, ..) = c.zones[i % c.zones.len()];
                    regions.push(region(&format!("r{i}"), Some((lat, lon)), None));
                    entries.push(entry("s", &format!("r{i}"), *d + 1));
                }
            }
            2 => {
                // A composite without demand.
                let names: Vec<String> = comps.iter().map(|x| x.name.clone()).collect();
                s.components = comps;
                for w in names.windows(2) {
                    s.channels.push(Channel {
                        from: w[0].clone(),
                        to: w[1].clone(),
                        bandwidth: Some(Bandwidth::from_mbps(20.0)),
                        max_latency: None,
                    });
                }
            }
            _ => {
                comps.truncate(1);
                s.components = comps;
            }
        }
        let mut docs = vec![Document::Infrastructure(infra), Document::Service(s)];
        if !entries.is_empty() {
            docs.push(Document::Demand(Demand { name: "d".into(), regions, entries }));
        }
        Bundle::new(docs)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

        #[test]
        fn runtime_decision_equals_the_offline_plan(c in case()) {
            let b = bundle(&c);
            let st = LiveState::from_bundle(&b);
            let opts = DecideOptions::default();
            let offline = crate::auto::plan_bundle(&b, &opts.auto(None));
            let runtime = decide(&st, "s", Trigger::Apply, &opts);
            match (runtime, offline) {
                (Ok(d), Ok(off)) => {
                    prop_assert!(d.check.is_ok(), "{}", d.check.summary());
                    if off.rejected.is_empty() {
                        prop_assert!(off.check.is_ok(), "{}", off.check.summary());
                        let mut offline_target = diff::allocation(&off.problem, &off.plan, &Default::default());
                        offline_target.normalize();
                        prop_assert_eq!(&d.target.zones, &offline_target.zones);
                        prop_assert_eq!(&d.target.hosts, &offline_target.hosts);
                        prop_assert_eq!(&d.target.paths, &offline_target.paths);
                    } else {
                        prop_assert!(false, "the runtime placed what the offline plan rejected: {:?}", off.rejected);
                    }
                }
                (Err(_), Ok(off)) => {
                    // Refused at run time: the offline plan could not place it either.
                    let placed = off.plan.placements.iter().any(|p| p.service == "s");
                    prop_assert!(!placed || !off.rejected.is_empty(), "offline placed what the runtime refused");
                }
                (Ok(d), Err(e)) => prop_assert!(false, "runtime placed ({}) what the offline plan refused: {e}", d.summary),
                (Err(_), Err(_)) => {}
            }
        }
    }
}

/// The running domain's path (decide → FUSION) runs the α = 1 tie-break: two zones equally
/// useful to both regions (within R_min), the first three times dearer.
#[test]
fn alpha_one_in_the_domain_places_in_the_cheaper_of_equally_useful_zones() {
    let mut b = line_bundle(2, 2);
    let zones = &mut infra_mut(&mut b).zones;
    zones[0].price.cpu_hour = zonal_model::Money::new(3.0);
    zones[1].price.cpu_hour = zonal_model::Money::new(1.0);
    service_mut(&mut b, "svc").sla = Some(sla(20.0, 30.0, 50.0));
    let mut st = LiveState::from_bundle(&b);
    for s in &mut st.services {
        s.service = running(s.service.clone());
    }
    let mut o = opts();
    o.fusion.alpha = 1.0;
    let d = decide(&st, "svc", Trigger::Apply, &o).expect("placed");
    assert_eq!(d.route, Route::Fusion);
    assert!(d.check.is_ok());
    assert_eq!(d.target.zones.keys().collect::<Vec<_>>(), vec!["z1"], "{:?}", d.target);
    // Without the tie-break (the code before Step 3) the dearer zone is used.
    o.fusion.tie_break = false;
    let old = decide(&st, "svc", Trigger::Apply, &o).expect("placed");
    assert!(old.target.zones.contains_key("z0"), "{:?}", old.target);
}
