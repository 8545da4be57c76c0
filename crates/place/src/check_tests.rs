//! Tests of the independent plan checker ([`super::check`]).
//!
//! Every [`ViolationKind`] is triggered by taking a valid, hand-built plan of a small
//! hand-built problem (the checker accepts it) and breaking it in exactly one way: the report
//! must name that kind, about the right subject, and no other kind. The plans are written
//! row by row here, not produced by a solver, so that the checker is tested on its own.
//! The objective terms it recomputes are compared with values computed by hand.
//!
//! **Chain problem** (INPUT-style subscription `s1`, user in `z0`):
//!
//! ```text
//!   z0 ──1 ms── z1 ──1 ms, 15 Mbit/s── z2 ──1 ms── z3        (other links 100 Mbit/s)
//!    └───────────────────10 ms─────────────────────┘
//!   h0            h1 (gpu), h1b        h2            h3, h3b      (4 cores, 8 GiB each)
//!
//!   ue ─10─▶ a ─10─▶ b ─10─▶ c ──(≤ 2.5 ms)──▶ d ─10─▶ be       (Mbit/s per channel)
//! ```
//!
//! `ue` user side, pinned to z0/h0; `a` proximity class `edge` (5 ms round trip),
//! anti-affine with `b`; `b` requires a `gpu` host; `c` avoids z3; `d` affine with `be`;
//! `be` (2 cores) pinned to z3/h3; the others 1 core. Valid plan: ue z0/h0, a z1/h1b,
//! b z1/h1, c z2/h2, d z3/h3b, be z3/h3; paths ue→a z0–z1, b→c z1–z2, c→d z2–z3, the rest
//! collocated.
//!
//! **FUSION problem**: zones z0 (hosts h0, h0b, and h0x unavailable) and z1 (host h1, CPU at
//! twice z0's price), 4 cores / 8 GiB each; service `svc` of one component `app` (2 cores,
//! 1 GiB, 4 slots per instance, at most 3 instances per zone, 8 Mbit/s per session, SLA
//! r_min 10 / r_med 30 / r_max 40 ms); regions r0 (weight 1, 2 slots), r1 (weight 2,
//! 4 slots), r2 (no demand); measured round trips r0–z0 10, r0–z1 50, r1–z0 30, r1–z1 10,
//! r2–z0 10, r2–z1 10 ms. Valid plan: app on z0/h0 (1 instance) and z1/h1 (2 instances),
//! r0 served in z0, r1 in z1.

use zonal_model::{Bundle, Demand, Document, Infrastructure, Money, Pin, Service};

use super::{check, check_within_budget, CheckReport, ViolationKind as K};
use crate::plan::{Plan, Subscription};
use crate::problem::Problem;
use crate::testkit::*;

// ---------------------------------------------------------------------------------------
// Fixtures.

fn chain_bundle() -> Bundle {
    let mut h1 = host("h1", 4, 8);
    h1.features.insert("gpu".into(), "t4".into());
    let zones = vec![
        zone("z0", 50.0, 0.0, vec![host("h0", 4, 8)]),
        zone("z1", 50.0, 1.0, vec![h1, host("h1b", 4, 8)]),
        zone("z2", 50.0, 2.0, vec![host("h2", 4, 8)]),
        zone("z3", 50.0, 3.0, vec![host("h3", 4, 8), host("h3b", 4, 8)]),
    ];
    let links = vec![
        link("z0", "z1", Some(1.0), Some(100.0)),
        link("z1", "z2", Some(1.0), Some(15.0)),
        link("z2", "z3", Some(1.0), Some(100.0)),
        link("z0", "z3", Some(10.0), Some(100.0)),
    ];
    let infra = Infrastructure { name: "line".into(), zones, links, ..Default::default() };
    let mut ue = component("ue", 0, 0);
    ue.user_side = true;
    ue.placement.pin = Some(Pin { zone: "z0".into(), host: Some("h0".into()) });
    let mut a = component("a", 1, 1);
    a.placement.proximity = Some("edge".into());
    a.placement.anti_affinity = vec!["b".into()];
    let mut b = component("b", 1, 1);
    b.placement.requires.insert("gpu".into(), "*".into());
    let mut c = component("c", 1, 1);
    c.placement.avoid_zones = vec!["z3".into()];
    let mut d = component("d", 1, 1);
    d.placement.affinity = vec!["be".into()];
    let mut be = component("be", 2, 1);
    be.placement.pin = Some(Pin { zone: "z3".into(), host: Some("h3".into()) });
    let svc = Service {
        name: "chain".into(),
        components: vec![ue, a, b, c, d, be],
        channels: vec![
            channel("ue", "a", Some(10.0), None),
            channel("a", "b", Some(10.0), None),
            channel("b", "c", Some(10.0), None),
            channel("c", "d", None, Some(2.5)),
            channel("d", "be", Some(10.0), None),
        ],
        ..Default::default()
    };
    Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(Demand::default())])
}

/// The valid chain plan of subscription `sub` (see the module docs).
fn chain_plan(sub: &str) -> Plan {
    let mut plan = Plan::new("hand");
    add_chain(&mut plan, sub);
    plan
}

fn add_chain(plan: &mut Plan, sub: &str) {
    let s = Some(sub);
    let layout = [
        ("ue", "z0", "h0"),
        ("a", "z1", "h1b"),
        ("b", "z1", "h1"),
        ("c", "z2", "h2"),
        ("d", "z3", "h3b"),
        ("be", "z3", "h3"),
    ];
    for (c, z, h) in layout {
        plan.placements.push(placement("chain", s, c, z, Some(h), 1, 0.0));
    }
    plan.paths.extend([
        path("chain", s, "ue", "a", &["z0", "z1"], 1.0),
        path("chain", s, "a", "b", &[], 0.0),
        path("chain", s, "b", "c", &["z1", "z2"], 1.0),
        path("chain", s, "c", "d", &["z2", "z3"], 1.0),
        path("chain", s, "d", "be", &[], 0.0),
    ]);
    plan.subscriptions.push(Subscription {
        id: sub.into(),
        service: "chain".into(),
        region: None,
        user_zone: Some("z0".into()),
    });
}

/// Moves `component` (of every subscription) to `zone`/`host`.
fn put(plan: &mut Plan, component: &str, zone: &str, host: &str) {
    for pl in plan.placements.iter_mut().filter(|pl| pl.component == component) {
        pl.zone = zone.into();
        pl.host = Some(host.into());
    }
}

/// Re-routes channel `from → to` over `zones`, claiming `latency_ms`.
fn reroute(plan: &mut Plan, from: &str, to: &str, zones: &[&str], latency_ms: f64) {
    let pth = plan.paths.iter_mut().find(|p| p.from == from && p.to == to).expect("the plan routes the channel");
    pth.zones = zones.iter().map(|z| z.to_string()).collect();
    pth.latency_ms = latency_ms;
}

fn fusion_bundle() -> Bundle {
    let mut h0x = host("h0x", 4, 8);
    h0x.available = false;
    let mut z1 = zone("z1", 50.0, 1.0, vec![host("h1", 4, 8)]);
    z1.price.cpu_hour = Money::new(0.08);
    let rtts = [
        ("r0", "z0", 10.0),
        ("r0", "z1", 50.0),
        ("r1", "z0", 30.0),
        ("r1", "z1", 10.0),
        ("r2", "z0", 10.0),
        ("r2", "z1", 10.0),
    ];
    let latencies = rtts.iter().map(|&(r, z, ms)| measured(r, z, ms)).collect();
    let infra = Infrastructure {
        name: "two".into(),
        zones: vec![zone("z0", 50.0, 0.0, vec![host("h0", 4, 8), host("h0b", 4, 8), h0x]), z1],
        links: vec![link("z0", "z1", Some(5.0), Some(100.0))],
        latencies,
        ..Default::default()
    };
    let mut app = component("app", 2, 1);
    app.scaling.max_instances = 3;
    let svc = Service {
        name: "svc".into(),
        components: vec![app],
        session_bandwidth: Some(zonal_model::Bandwidth::from_mbps(8.0)),
        sla: Some(sla(10.0, 30.0, 40.0)),
        ..Default::default()
    };
    let mut r1 = region("r1", None, None);
    r1.weight = 2.0;
    let demand = Demand {
        name: "d".into(),
        regions: vec![region("r0", None, None), r1, region("r2", None, None)],
        entries: vec![entry("svc", "r0", 2), entry("svc", "r1", 4)],
    };
    Bundle::new(vec![Document::Infrastructure(infra), Document::Service(svc), Document::Demand(demand)])
}

/// The valid FUSION plan (see the module docs). Utilities: both regions at 10 ms = r_min,
/// so 1 each.
fn fusion_plan() -> Plan {
    let mut plan = Plan::new("hand");
    plan.placements = vec![
        placement("svc", None, "app", "z0", Some("h0"), 1, 2.0),
        placement("svc", None, "app", "z1", Some("h1"), 2, 4.0),
    ];
    plan.assignments = vec![
        assignment("svc", "r0", "z0", 1.0, 2.0, 10.0, Some(1.0)),
        assignment("svc", "r1", "z1", 1.0, 4.0, 10.0, Some(1.0)),
    ];
    plan
}

/// Replaces the assignment rows of `region` with `rows`.
fn serve(plan: &mut Plan, region: &str, rows: Vec<crate::plan::Assignment>) {
    plan.assignments.retain(|a| a.region != region);
    plan.assignments.extend(rows);
}

/// The FUSION problem plus a composite `web` (`front` → `db`, 1 core each, no demand).
fn replicated_bundle() -> Bundle {
    let mut b = fusion_bundle();
    let web = Service {
        name: "web".into(),
        components: vec![component("front", 1, 1), component("db", 1, 1)],
        channels: vec![channel("front", "db", None, None)],
        ..Default::default()
    };
    b.documents.push(Document::Service(web));
    b
}

/// `web` replicated: both components in z0 (h0b) and in z1 (h1).
fn replicated_plan() -> Plan {
    let mut plan = Plan::new("hand");
    for (z, h) in [("z0", "h0b"), ("z1", "h1")] {
        for c in ["front", "db"] {
            plan.placements.push(placement("web", None, c, z, Some(h), 1, 0.0));
        }
    }
    plan
}

/// Asserts that `report` has a violation of `kind` about `subject`, and no violation of any
/// other kind: one rule broken, one kind reported.
#[track_caller]
fn assert_only(report: &CheckReport, kind: K, subject: &[&str]) {
    assert!(
        report.violations.iter().any(|v| v.kind == kind && v.subject == subject),
        "expected {kind:?} about {subject:?}, got:\n{}",
        report.summary()
    );
    assert!(
        report.violations.iter().all(|v| v.kind == kind),
        "violations of other kinds besides {kind:?}:\n{}",
        report.summary()
    );
}

#[track_caller]
fn ok(p: &Problem, plan: &Plan) {
    let r = check(p, plan);
    assert!(r.is_ok(), "the checker rejects a valid plan:\n{}", r.summary());
}

// ---------------------------------------------------------------------------------------
// Valid plans and recomputed terms.

#[test]
fn valid_hand_built_plans_pass() {
    ok(&problem(&chain_bundle()), &chain_plan("s1"));
    ok(&problem(&fusion_bundle()), &fusion_plan());
    ok(&problem(&replicated_bundle()), &replicated_plan());
}

#[test]
fn chain_terms_equal_hand_computed_values() {
    let p = problem(&chain_bundle());
    let r = check(&p, &chain_plan("s1"));
    assert!(r.is_ok(), "{}", r.summary());
    let t = |name: &str| r.terms.get(name).copied().unwrap_or(f64::NAN);
    // Three 1 ms hops: ue→a z0–z1, b→c z1–z2, c→d z2–z3; the other channels are collocated.
    assert!((t("delay_ms") - 3.0).abs() < 1e-9, "{:?}", r.terms);
    // h1b (a), h1 (b), h2 (c), h3b (d), h3 (be); h0 holds only the user side.
    assert_eq!(t("used_servers"), 5.0);
    // Every zone: 0.04 per core-hour, 0.01 per GiB-hour. a, b, c, d: 1 core + 1 GiB = 0.05
    // each; be: 2 cores + 1 GiB = 0.09; ue is user side (nothing). 4 × 0.05 + 0.09 = 0.29.
    assert!((t("instance_cost") - 0.29).abs() < 1e-9, "{:?}", r.terms);
    assert_eq!(r.terms.len(), 3, "a chain plan has no utility terms: {:?}", r.terms);
}

/// A FUSION plan where r1 is split between its near zone (z1, 10 ms) and z0 (30 ms).
fn split_fusion_plan() -> Plan {
    let mut plan = Plan::new("hand");
    plan.placements = vec![
        placement("svc", None, "app", "z0", Some("h0"), 1, 3.0),
        placement("svc", None, "app", "z1", Some("h1"), 1, 3.0),
    ];
    plan.assignments = vec![
        assignment("svc", "r0", "z0", 1.0, 2.0, 10.0, Some(1.0)),
        assignment("svc", "r1", "z1", 0.75, 3.0, 10.0, Some(0.75)),
        assignment("svc", "r1", "z0", 0.25, 1.0, 30.0, Some(0.75)),
    ];
    plan
}

#[test]
fn fusion_terms_equal_hand_computed_values() {
    let p = problem(&fusion_bundle());
    let plan = split_fusion_plan();
    let r = check(&p, &plan);
    assert!(r.is_ok(), "{}", r.summary());
    let t = |name: &str| r.terms.get(name).copied().unwrap_or(f64::NAN);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // Utility (D = r_med − r_min = 20 ms): u(l) = (20 − max(0, l − 10)) / 20.
    // r0: 10 ms → 1. r1: share-weighted 0.75 × 10 + 0.25 × 30 = 15 ms → (20 − 5) / 20 = 0.75.
    assert!(close(t("min_utility"), 0.75), "{:?}", r.terms);
    // Σ weight × utility = 1 × 1 + 2 × 0.75 = 2.5.
    assert!(close(t("total_utility"), 2.5), "{:?}", r.terms);
    // Over Σ weight × 1/k = 1 + 2 = 3: 2.5 / 3 × 100.
    assert!(close(t("utility_percent"), 250.0 / 3.0), "{:?}", r.terms);
    // The largest share-weighted average latency: r1's 15 ms.
    assert!(close(t("worst_latency_ms"), 15.0), "{:?}", r.terms);
    // Per slot-hour: deploy = zone price of one instance (2 cores, 1 GiB) / 4 slots:
    // z0 (2 × 0.04 + 0.01) / 4 = 0.0225, z1 (2 × 0.08 + 0.01) / 4 = 0.0425; bandwidth =
    // 0.02 per GB × 8 Mbit/s = 3.6 GB/h → 0.072. z0 serves 2 + 1 slots, z1 3:
    // 3 × 0.0945 + 3 × 0.1145 = 0.627.
    assert!(close(t("cost"), 0.627), "{:?}", r.terms);
    // One instance each: 0.09 (z0) + 0.17 (z1).
    assert!(close(t("instance_cost"), 0.26), "{:?}", r.terms);
    // h0 and h1.
    assert_eq!(t("used_servers"), 2.0);
    assert!(!r.terms.contains_key("delay_ms"), "no paths, no delay term");
}

#[test]
fn budget_is_checked_against_the_recomputed_cost() {
    let p = problem(&fusion_bundle());
    let plan = split_fusion_plan();
    // The plan's recomputed cost is 0.627 per hour (see the test above).
    for budget in [None, Some(0.627), Some(0.7)] {
        let r = check_within_budget(&p, &plan, budget);
        assert!(r.is_ok(), "budget {budget:?}: {}", r.summary());
    }
    let r = check_within_budget(&p, &plan, Some(0.6));
    assert_only(&r, K::Budget, &["cost"]);
    assert!(r.summary().contains("0.627") && r.summary().contains("0.6"), "{}", r.summary());
    // The plain check knows nothing of budgets.
    assert!(check(&p, &plan).is_ok());
}

#[test]
fn claimed_terms_are_checked_and_unknown_ones_listed() {
    let p = problem(&fusion_bundle());
    let mut plan = split_fusion_plan();
    // The hand-computed values of `fusion_terms_equal_hand_computed_values`.
    for (name, v) in [("min_utility", 0.75), ("total_utility", 2.5), ("cost", 0.627), ("used_servers", 2.0)] {
        plan.objective_terms.insert(name.into(), v);
    }
    plan.objective_terms.insert("step2_objective".into(), 42.0);
    let r = check(&p, &plan);
    assert!(r.is_ok(), "{}", r.summary());
    assert_eq!(r.unchecked_terms, vec!["step2_objective".to_string()]);
}

// ---------------------------------------------------------------------------------------
// One broken rule each.

#[test]
fn unknown_names() {
    let p = problem(&fusion_bundle());
    // Each an extra row naming something the problem lacks (an extra row leaves every
    // other rule intact).
    let placements = [
        (placement("ghost", None, "app", "z0", Some("h0"), 1, 0.0), ["ghost", "app", "z0"]),
        (placement("svc", None, "nope", "z0", Some("h0"), 1, 0.0), ["svc", "nope", "z0"]),
        (placement("svc", None, "app", "zX", None, 1, 0.0), ["svc", "app", "zX"]),
        // h1 exists, but in z1: a host must be in the zone the plan says.
        (placement("svc", None, "app", "z0", Some("h1"), 1, 0.0), ["svc", "app", "z0"]),
    ];
    for (row, subject) in placements {
        let mut plan = fusion_plan();
        plan.placements.push(row);
        assert_only(&check(&p, &plan), K::UnknownName, &subject);
    }
    let assignments = [
        (assignment("svc", "rX", "z0", 0.0, 0.0, 10.0, None), ["svc", "rX", "z0"]),
        (assignment("svc", "r0", "zX", 0.0, 0.0, 10.0, None), ["svc", "r0", "zX"]),
    ];
    for (row, subject) in assignments {
        let mut plan = fusion_plan();
        plan.assignments.push(row);
        assert_only(&check(&p, &plan), K::UnknownName, &subject);
    }
    let p = problem(&chain_bundle());
    // A path through a zone that does not exist.
    let mut plan = chain_plan("s1");
    reroute(&mut plan, "b", "c", &["z1", "zX"], 1.0);
    assert_only(&check(&p, &plan), K::UnknownName, &["chain", "b", "c"]);
    // A path for a channel the service does not have.
    let mut plan = chain_plan("s1");
    plan.paths.push(path("chain", Some("s1"), "a", "c", &["z1", "z2"], 1.0));
    assert_only(&check(&p, &plan), K::UnknownName, &["chain", "a", "c"]);
}

#[test]
fn unavailable_host() {
    let p = problem(&fusion_bundle());
    let mut plan = fusion_plan();
    // h0x is down; z0's other hosts still have room, so only availability is broken.
    plan.placements[0].host = Some("h0x".into());
    assert_only(&check(&p, &plan), K::UnavailableHost, &["svc", "app", "z0"]);
}

#[test]
fn host_capacity() {
    let p = problem(&fusion_bundle());
    let mut plan = fusion_plan();
    // 3 × 2 cores on a 4-core host; z0's available hosts (h0, h0b) have 8 cores, and 3 is
    // the per-zone instance cap, so only the host overflows.
    plan.placements[0].instances = 3;
    assert_only(&check(&p, &plan), K::HostCapacity, &["z0", "h0", "cpu"]);
}

#[test]
fn zone_capacity() {
    let p = problem(&fusion_bundle());
    let mut plan = fusion_plan();
    // A zone-level placement (no host): 3 × 2 cores against z1's 4.
    plan.placements[1].host = None;
    plan.placements[1].instances = 3;
    assert_only(&check(&p, &plan), K::ZoneCapacity, &["z1", "cpu"]);
    // The unavailable host does not count: z0 has 8 cores available (not 12), so 3
    // instances (6 cores) fit.
    let mut plan = fusion_plan();
    plan.placements[0].host = None;
    plan.placements[0].instances = 3;
    ok(&p, &plan);
}

#[test]
fn slot_capacity() {
    let p = problem(&fusion_bundle());
    // A placement claiming more slots than its instances have (1 × 4).
    let mut plan = fusion_plan();
    plan.placements[0].slots = 5.0;
    assert_only(&check(&p, &plan), K::SlotCapacity, &["svc", "app", "z0"]);
    // Sessions assigned beyond the entry component's instances in a zone: r1 (4 slots)
    // moved to z0, which also serves r0 (2) on one 4-slot instance. u(30 ms) = 0.
    let mut plan = fusion_plan();
    serve(&mut plan, "r1", vec![assignment("svc", "r1", "z0", 1.0, 4.0, 30.0, Some(0.0))]);
    assert_only(&check(&p, &plan), K::SlotCapacity, &["svc", "z0"]);
}

#[test]
fn max_instances() {
    let p = problem(&fusion_bundle());
    let mut plan = fusion_plan();
    // 2 on h0 and 2 on h0b: each host and the zone have room, but the cap is 3 per zone.
    plan.placements[0].instances = 2;
    plan.placements.push(placement("svc", None, "app", "z0", Some("h0b"), 2, 0.0));
    assert_only(&check(&p, &plan), K::MaxInstances, &["svc", "app", "z0"]);
}

#[test]
fn link_bandwidth() {
    let p = problem(&chain_bundle());
    // A second subscription laid out like the first: b→c (10 Mbit/s) twice over z1→z2,
    // 20 Mbit/s on a 15 Mbit/s link. Every host still has room (h3: be twice, 4 cores).
    let mut plan = chain_plan("s1");
    add_chain(&mut plan, "s2");
    assert_only(&check(&p, &plan), K::LinkBandwidth, &["z1", "z2"]);
}

#[test]
fn path_ends() {
    let p = problem(&chain_bundle());
    // Reversed: starts in c's zone, ends in b's.
    let mut plan = chain_plan("s1");
    reroute(&mut plan, "b", "c", &["z2", "z1"], 1.0);
    assert_only(&check(&p, &plan), K::PathEnds, &["chain", "b", "c"]);
    // a and b share z1: a collocated channel has an empty path.
    let mut plan = chain_plan("s1");
    reroute(&mut plan, "a", "b", &["z1"], 0.0);
    assert_only(&check(&p, &plan), K::PathEnds, &["chain", "a", "b"]);
    // A path for a channel whose end is replicated in two zones.
    let p = problem(&replicated_bundle());
    let mut plan = replicated_plan();
    plan.paths.push(path("web", None, "front", "db", &["z0", "z1"], 5.0));
    assert_only(&check(&p, &plan), K::PathEnds, &["web", "front", "db"]);
}

#[test]
fn path_broken() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // No link z1–z3; z3–z2 is 1 ms, which is what the links add up to.
    reroute(&mut plan, "b", "c", &["z1", "z3", "z2"], 1.0);
    assert_only(&check(&p, &plan), K::PathBroken, &["chain", "b", "c"]);
}

#[test]
fn path_loop() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // z0 → z3 → z0 → z1: every hop a link (10 + 10 + 1 ms), but z0 twice.
    reroute(&mut plan, "ue", "a", &["z0", "z3", "z0", "z1"], 21.0);
    assert_only(&check(&p, &plan), K::PathLoop, &["chain", "ue", "a"]);
}

#[test]
fn missing_path() {
    let p = problem(&chain_bundle());
    // b (z1) and c (z2) in different zones, and no path for b→c.
    let mut plan = chain_plan("s1");
    plan.paths.retain(|pth| !(pth.from == "b" && pth.to == "c"));
    assert_only(&check(&p, &plan), K::MissingPath, &["chain", "b", "c"]);
    // A replicated composite whose db is not in every zone its front is in.
    let p = problem(&replicated_bundle());
    let mut plan = replicated_plan();
    plan.placements.retain(|pl| !(pl.component == "db" && pl.zone == "z1"));
    assert_only(&check(&p, &plan), K::MissingPath, &["web", "front", "db"]);
}

#[test]
fn path_latency() {
    // A path claiming a latency its links do not add up to (1 ms).
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    reroute(&mut plan, "b", "c", &["z1", "z2"], 2.0);
    assert_only(&check(&p, &plan), K::PathLatency, &["chain", "b", "c"]);
    // An assignment claiming a round trip other than the measured 10 ms.
    let p = problem(&fusion_bundle());
    let mut plan = fusion_plan();
    plan.assignments[0].latency_ms = 12.0;
    assert_only(&check(&p, &plan), K::PathLatency, &["svc", "r0", "z0"]);
}

#[test]
fn channel_latency() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // c→d allows 2.5 ms; the long way round z2 → z1 → z0 → z3 is 1 + 1 + 10 ms (claimed
    // correctly, loop-free, every hop a link; c→d carries no bandwidth).
    reroute(&mut plan, "c", "d", &["z2", "z1", "z0", "z3"], 12.0);
    assert_only(&check(&p, &plan), K::ChannelLatency, &["chain", "c", "d"]);
}

#[test]
fn proximity_of_chain_components() {
    let p = problem(&chain_bundle());
    // a (class edge, 5 ms round trip) in z3: 2 × 3 ms from the user's z0 over the line.
    // Routed over the 10 ms shortcut and back along the line, which the bandwidth allows.
    let mut plan = chain_plan("s1");
    put(&mut plan, "a", "z3", "h3b");
    reroute(&mut plan, "ue", "a", &["z0", "z3"], 10.0);
    reroute(&mut plan, "a", "b", &["z3", "z2", "z1"], 2.0);
    assert_only(&check(&p, &plan), K::Proximity, &["chain", "s1", "a", "z3"]);
    // No subscription record: nothing says where the user is.
    let mut plan = chain_plan("s1");
    plan.subscriptions.clear();
    assert_only(&check(&p, &plan), K::Proximity, &["chain", "s1", "a"]);
}

#[test]
fn proximity_of_fusion_assignments() {
    let mut b = fusion_bundle();
    service_mut(&mut b, "svc").proximity = Some("metro".into());
    let p = problem(&b);
    // Both regions are served 10 ms away, within metro's 15 ms.
    ok(&p, &fusion_plan());
    // A quarter of r1 at z0, 30 ms away (u = 0.75 as in the terms test; z0 has the slots).
    let mut plan = fusion_plan();
    serve(
        &mut plan,
        "r1",
        vec![
            assignment("svc", "r1", "z1", 0.75, 3.0, 10.0, Some(0.75)),
            assignment("svc", "r1", "z0", 0.25, 1.0, 30.0, Some(0.75)),
        ],
    );
    assert_only(&check(&p, &plan), K::Proximity, &["svc", "r1", "z0"]);
}

#[test]
fn pin() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // be is pinned to z3/h3; h3b is in the same zone, so the paths stay as they are.
    put(&mut plan, "be", "z3", "h3b");
    assert_only(&check(&p, &plan), K::Pin, &["chain", "be", "z3"]);
}

#[test]
fn static_host() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // a on the user's host h0 (IN-23): it has room, and a is then 0 ms from the user.
    put(&mut plan, "a", "z0", "h0");
    reroute(&mut plan, "ue", "a", &[], 0.0);
    reroute(&mut plan, "a", "b", &["z0", "z1"], 1.0);
    assert_only(&check(&p, &plan), K::StaticHost, &["h0"]);
}

#[test]
fn coverage() {
    let p = problem(&fusion_bundle());
    // Shares of r0 summing to 0.5 (slots consistent with the share).
    let mut plan = fusion_plan();
    serve(&mut plan, "r0", vec![assignment("svc", "r0", "z0", 0.5, 1.0, 10.0, Some(1.0))]);
    assert_only(&check(&p, &plan), K::Coverage, &["svc", "r0"]);
    // Slots other than share × demand (1 × 2).
    let mut plan = fusion_plan();
    plan.assignments[0].slots = 1.5;
    assert_only(&check(&p, &plan), K::Coverage, &["svc", "r0", "z0"]);
    // An assignment for r2, which wants nothing.
    let mut plan = fusion_plan();
    plan.assignments.push(assignment("svc", "r2", "z0", 1.0, 1.0, 10.0, None));
    assert_only(&check(&p, &plan), K::Coverage, &["svc", "r2"]);
}

#[test]
fn r_max() {
    let p = problem(&fusion_bundle());
    // A tenth of r0 at z1, 50 ms away (R_max 40): the average, 0.9 × 10 + 0.1 × 50 = 14 ms,
    // is within R_max (u = (20 − 4) / 20 = 0.8), the pair is not. z1 has 8 slots.
    let mut plan = fusion_plan();
    serve(
        &mut plan,
        "r0",
        vec![
            assignment("svc", "r0", "z0", 0.9, 1.8, 10.0, Some(0.8)),
            assignment("svc", "r0", "z1", 0.1, 0.2, 50.0, Some(0.8)),
        ],
    );
    assert_only(&check(&p, &plan), K::RMax, &["svc", "r0", "z1"]);
    // All of r0 at z1: the pair and the average are beyond R_max (no utility at all).
    let mut plan = fusion_plan();
    serve(&mut plan, "r0", vec![assignment("svc", "r0", "z1", 1.0, 2.0, 50.0, None)]);
    let r = check(&p, &plan);
    assert_only(&r, K::RMax, &["svc", "r0", "z1"]);
    assert_only(&r, K::RMax, &["svc", "r0"]);
}

#[test]
fn affinity() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // d must share be's zone (z3); in z2 instead, next to c.
    put(&mut plan, "d", "z2", "h2");
    reroute(&mut plan, "c", "d", &[], 0.0);
    reroute(&mut plan, "d", "be", &["z2", "z3"], 1.0);
    assert_only(&check(&p, &plan), K::Affinity, &["chain", "d", "be"]);
}

#[test]
fn anti_affinity() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // a on b's host h1 (same zone, so the paths stay).
    put(&mut plan, "a", "z1", "h1");
    assert_only(&check(&p, &plan), K::AntiAffinity, &["chain", "a", "b", "h1"]);
}

#[test]
fn allowed_zones() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // c avoids z3; there, next to d (c→d collocated, b→c over z1–z2–z3).
    put(&mut plan, "c", "z3", "h3b");
    reroute(&mut plan, "b", "c", &["z1", "z2", "z3"], 2.0);
    reroute(&mut plan, "c", "d", &[], 0.0);
    assert_only(&check(&p, &plan), K::AllowedZones, &["chain", "c", "z3"]);
}

#[test]
fn features() {
    let p = problem(&chain_bundle());
    let mut plan = chain_plan("s1");
    // b needs a gpu host; h2 has none (b→c becomes collocated, a→b takes z1–z2).
    put(&mut plan, "b", "z2", "h2");
    reroute(&mut plan, "a", "b", &["z1", "z2"], 1.0);
    reroute(&mut plan, "b", "c", &[], 0.0);
    assert_only(&check(&p, &plan), K::Features, &["chain", "b", "z2"]);
}

#[test]
fn term_mismatch() {
    let p = problem(&fusion_bundle());
    // A claimed objective term off its recomputed value: the cost is
    // 2 × (0.0225 + 0.072) + 4 × (0.0425 + 0.072) = 0.647, not 1.
    let mut plan = fusion_plan();
    plan.objective_terms.insert("cost".into(), 1.0);
    assert_only(&check(&p, &plan), K::TermMismatch, &["cost"]);
    plan.objective_terms.insert("cost".into(), 0.647);
    ok(&p, &plan);
    // A claimed utility other than the recomputed one (1 at 10 ms).
    let mut plan = fusion_plan();
    plan.assignments[0].utility = Some(0.9);
    assert_only(&check(&p, &plan), K::TermMismatch, &["svc", "r0", "z0"]);
}
