//! `zonal plan -o json` on small bundles whose optima are computed by hand (in the comments
//! next to each assertion): the values, not only the status, of a FUSION LP and of a chain.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `zonal plan -f <file> <extra…> -o json` and returns the JSON it prints.
fn plan(file: &Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_zonal"))
        .arg("plan")
        .arg("-f")
        .arg(file)
        .args(extra)
        .args(["-o", "json"])
        .output()
        .expect("zonal runs");
    assert!(out.status.success(), "zonal plan failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("zonal plan -o json prints JSON");
    assert_eq!(v["check"]["ok"], true, "the checker rejects the plan: {}", v["check"]);
    v
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("temp file written");
    path
}

#[track_caller]
fn assert_close(v: &Value, expected: f64, what: &str) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{what}: expected a number, found {v}"));
    assert!((x - expected).abs() <= 1e-6, "{what}: {x}, expected {expected}");
}

/// Two zones, two regions, one service. `za` is near r1 but small and dear, `zb` large and
/// cheap; r2 is 25 ms from both.
const FUSION: &str = "\
kind: Infrastructure
name: two-zones
zones:
  - name: za
    price: {cpu_hour: 0.2, memory_gib_hour: 0, egress_per_gb: 0}
    hosts:
      - {name: ha, capacity: {cpu: 3, memory: 8Gi}}
  - name: zb
    price: {cpu_hour: 0.1, memory_gib_hour: 0, egress_per_gb: 0}
    hosts:
      - {name: hb, capacity: {cpu: 16, memory: 32Gi}}
links:
  - {from: za, to: zb, latency: 5ms, bandwidth: 1Gbps}
latencies:
  - {from: r1, to: za, rtt: 10ms}
  - {from: r1, to: zb, rtt: 30ms}
  - {from: r2, to: za, rtt: 25ms}
  - {from: r2, to: zb, rtt: 25ms}
---
kind: Service
name: video
sla: {r_min: 10ms, r_med: 30ms, r_max: 50ms}
components:
  - name: app
    resources: {cpu: 1}
    slots: {per_instance: 2}
    scaling: {max_instances: 10}
---
kind: Demand
name: evening
regions:
  - {name: r1, weight: 2}
  - {name: r2}
demand:
  - {service: video, region: r1, slots: 10}
  - {service: video, region: r2, slots: 10}
";

// The hand computation, shared by both alphas below.
//
// * Slot capacity: za holds 3 one-core instances of 2 slots = 6 slots; zb 10 instances (the
//   cap) = 20. Deploy cost per slot-hour: za 0.2 × 1 core / 2 = 0.1, zb 0.05; no egress.
// * Utility (D = r_med − r_min = 20 ms): u = (20 − max(0, l − 10)) / 20 on the share-weighted
//   latency l. r2 is 25 ms from both zones: u2 = 0.25 wherever it is served. r1 with a share
//   x of its 10 slots at za: l1 = 10x + 30(1 − x), u1 = x.
// * Step 1 (max min u): u2 = 0.25 caps it, and r1 can reach 0.25 (x ≥ 0.25 fits in 6
//   slots): U* = 0.25.
// * Step 2, max α Σ w·u − (1 − α) C with w1 = 2, w2 = 1: r2 gains nothing from za, so it
//   goes to the cheaper zb. One more unit of x gains α · 2 and costs (1 − α) · 10 slots ·
//   (0.1 − 0.05) = (1 − α) · 0.5, a net gain for both α below, so x is as large as za's 6
//   slots allow: x = 0.6. Shares: r1 0.6 at za, 0.4 at zb; r2 1 at zb.
// * min utility 0.25; total utility 2 · 0.6 + 1 · 0.25 = 1.45 (utility percent
//   1.45 / (2 + 1) = 48.33 %); worst latency: r2's 25 ms (r1: 0.6 · 10 + 0.4 · 30 = 18);
//   cost C = r1: 6 · 0.1 + 4 · 0.05 = 0.8, r2: 10 · 0.05 = 0.5, C = 1.3.

#[test]
fn fusion_lp_values_match_the_hand_computed_optimum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "fusion.yaml", FUSION);
    for (alpha, step2) in [
        // 0.8 · 1.45 − 0.2 · 1.3 = 1.16 − 0.26 = 0.9
        ("0.8", 0.9),
        // 0.5 · 1.45 − 0.5 · 1.3 = 0.075
        ("0.5", 0.075),
    ] {
        let v = plan(&file, &["--no-rounding", "--alpha", alpha]);
        let what = |s: &str| format!("--alpha {alpha}: {s}");
        assert_eq!(v["status"], "optimal");
        let t = &v["objective_terms"];
        assert_close(&t["step1_min_utility"], 0.25, &what("U* (Step 1)"));
        assert_close(&t["min_utility"], 0.25, &what("min utility"));
        assert_close(&t["total_utility"], 1.45, &what("total utility"));
        assert_close(&t["utility_percent"], 145.0 / 3.0, &what("utility percent"));
        assert_close(&t["worst_latency_ms"], 25.0, &what("worst latency"));
        assert_close(&t["cost"], 1.3, &what("cost"));
        // The Step-2 objective, and the LP's own value of it (no rounding, so they agree).
        assert_close(&v["objective"], step2, &what("Step-2 objective"));
        assert_close(&v["bound"], step2, &what("LP bound"));
        assert!(v["placements"].as_array().is_some_and(Vec::is_empty), "--no-rounding places no instances");
        let mut shares: Vec<(String, String, f64)> = v["assignments"]
            .as_array()
            .expect("assignments")
            .iter()
            .map(|a| {
                let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                (s("region"), s("zone"), a["share"].as_f64().unwrap_or(f64::NAN))
            })
            .filter(|(.., share)| *share > 1e-9)
            .collect();
        shares.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let expected = [("r1", "za", 0.6), ("r1", "zb", 0.4), ("r2", "zb", 1.0)];
        assert_eq!(shares.len(), expected.len(), "{}: {shares:?}", what("shares"));
        for ((r, z, x), (er, ez, ex)) in shares.iter().zip(expected) {
            assert_eq!((r.as_str(), z.as_str()), (er, ez), "{}: {shares:?}", what("shares"));
            assert!((x - ex).abs() <= 1e-6, "{}: {r} at {z} {x}, expected {ex}", what("share"));
        }
    }
}

/// A chain on four zones. The fastest route to the back-end's zone z2 (z0–z3–z2, 4 ms) has
/// a 5 Mbit/s hop, too thin for the 10 Mbit/s b→db channel.
const CHAIN: &str = "\
kind: Infrastructure
name: square
zones:
  - {name: z0}
  - name: z1
    hosts: [{name: h1, capacity: {cpu: 4, memory: 8Gi}}]
  - name: z2
    hosts: [{name: h2, capacity: {cpu: 2, memory: 8Gi}}]
  - name: z3
    hosts: [{name: h3, capacity: {cpu: 4, memory: 8Gi}}]
links:
  - {from: z0, to: z1, latency: 1ms, bandwidth: 1Gbps}
  - {from: z1, to: z2, latency: 4ms, bandwidth: 1Gbps}
  - {from: z0, to: z3, latency: 2ms, bandwidth: 1Gbps}
  - {from: z3, to: z2, latency: 2ms, bandwidth: 5Mbps}
---
kind: Service
name: chain
components:
  - name: user
    user_side: true
    placement: {pin: {zone: z0}}
  - {name: a, resources: {cpu: 2}}
  - {name: b, resources: {cpu: 2}}
  - name: db
    resources: {cpu: 2}
    placement: {pin: {zone: z2}}
channels:
  - {from: user, to: a}
  - {from: a, to: b}
  - {from: b, to: db, bandwidth: 10Mbps}
";

// The hand computation (delay objective: Σ one-way path delay over the channels).
//
// db fills h2 (2 of 2 cores), so a and b (2 cores each) go to h1 (z1) or h3 (z3). From z3,
// b→db cannot take the 5 Mbit/s z3–z2 link and goes z3–z0–z1–z2 (2 + 1 + 4 = 7 ms); z1–z3 is
// z1–z0–z3 (3 ms). Delay of user→a + a→b + b→db:
//   a, b in z1: 1 + 0 + 4 = 5      a, b in z3: 2 + 0 + 7 = 9
//   a z3, b z1: 2 + 3 + 4 = 9      a z1, b z3: 1 + 3 + 7 = 11
// The optimum is 5: a and b on h1, user→a over z0–z1 (1 ms), a→b collocated, b→db over
// z1–z2 (4 ms).

#[test]
fn chain_optimum_hosts_and_paths_match_the_hand_computed_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "chain.yaml", CHAIN);
    for algorithm in ["exact", "heuristic"] {
        let v = plan(&file, &["--algorithm", algorithm]);
        let what = |s: &str| format!("--algorithm {algorithm}: {s}");
        assert_close(&v["objective"], 5.0, &what("objective"));
        assert_close(&v["check"]["recomputed_terms"]["delay_ms"], 5.0, &what("recomputed delay"));
        // h1 (a and b) and h2 (db); the user side holds no host.
        assert_close(&v["check"]["recomputed_terms"]["used_servers"], 2.0, &what("used servers"));
        let mut hosts: Vec<(String, String, String)> = v["placements"]
            .as_array()
            .expect("placements")
            .iter()
            .map(|p| {
                let s = |k: &str| p[k].as_str().unwrap_or("-").to_string();
                (s("component"), s("zone"), s("host"))
            })
            .collect();
        hosts.sort();
        let expected = [("a", "z1", "h1"), ("b", "z1", "h1"), ("db", "z2", "h2"), ("user", "z0", "-")];
        let got: Vec<(&str, &str, &str)> = hosts.iter().map(|(c, z, h)| (c.as_str(), z.as_str(), h.as_str())).collect();
        assert_eq!(got, expected, "{}", what("hosts"));
        let mut paths: Vec<(String, Vec<String>, f64)> = v["paths"]
            .as_array()
            .expect("paths")
            .iter()
            .map(|p| {
                let zones = p["zones"].as_array().map_or_else(Vec::new, |zs| {
                    zs.iter().map(|z| z.as_str().unwrap_or_default().to_string()).collect()
                });
                let channel = format!("{}→{}", p["from"].as_str().unwrap_or("?"), p["to"].as_str().unwrap_or("?"));
                (channel, zones, p["latency_ms"].as_f64().unwrap_or(f64::NAN))
            })
            .collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        let expected: [(&str, &[&str], f64); 3] =
            [("a→b", &[], 0.0), ("b→db", &["z1", "z2"], 4.0), ("user→a", &["z0", "z1"], 1.0)];
        assert_eq!(paths.len(), expected.len(), "{}: {paths:?}", what("paths"));
        for ((c, zs, ms), (ec, ezs, ems)) in paths.iter().zip(expected) {
            let ezs: Vec<String> = ezs.iter().map(|z| z.to_string()).collect();
            assert_eq!((c.as_str(), zs), (ec, &ezs), "{}: {paths:?}", what("paths"));
            assert!((ms - ems).abs() <= 1e-9, "{}: {c} {ms} ms, expected {ems}", what("path latency"));
        }
        let bound = v["bound"].as_f64().expect("a bound");
        match algorithm {
            // The ILP's objective carries the path tie-break ε · (delay + 0.001 ms) per arc
            // used, ε = 1e-6: 5 + 1e-6 · (1.001 + 4.001) = 5.000005002; HiGHS proves it
            // within its relative gap (1e-4).
            "exact" => {
                assert_eq!(v["status"], "optimal");
                assert!((bound - 5.000005002).abs() <= 1e-4 * 5.000005002, "{}: {bound}", what("bound"));
            }
            // A lower bound (here the LP relaxation's, below 5).
            _ => assert!(bound <= 5.0 + 1e-9, "{}: {bound}", what("bound")),
        }
    }
}
