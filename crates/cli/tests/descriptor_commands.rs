//! End-to-end tests of what a user types: `zonal validate`, `inspect`, `convert`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    zonal_testdata::repo_root()
}

fn zonal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zonal")).args(args).current_dir(repo()).output().expect("zonal runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn examples() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn validate_accepts_every_example() {
    let files = examples();
    let args: Vec<&str> = std::iter::once("validate").chain(files.iter().map(String::as_str)).collect();
    let out = zonal(&args);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), files.len());
}

#[test]
fn validate_reports_every_mistake_and_exits_1() {
    let dir = std::env::temp_dir().join(format!("zonal-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("epg.yaml");
    std::fs::write(
        &bad,
        "kind: Service\nname: epg\ncomponents:\n  - name: renderer\n    slots: {per_instance: -3}\n  - name: streamer\n    resources: {memory: 4gb}\nchannels:\n  - {from: renderer, to: stremer}\n",
    )
    .unwrap();
    let out = zonal(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let file = bad.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:5:27: components[0].slots.per_instance: expected an integer between 1 and 100000, found -3"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{file}:7:25: components[1].resources.memory: expected a size")), "{err}");
    assert!(err.lines().last().unwrap().starts_with("zonal: 2 errors found; nothing was used"), "{err}");
    assert!(text(&out.stdout).is_empty(), "nothing is printed as valid");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn validate_rejects_unknown_inputs_with_a_reason() {
    let out = zonal(&["validate", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unrecognised input \"Cargo.toml\""), "{}", text(&out.stderr));
    let out = zonal(&["validate", "no-such-file.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no-such-file.yaml: cannot read file"), "{}", text(&out.stderr));
}

#[test]
fn inspect_json_counts_the_examples() {
    let files = examples();
    let mut args: Vec<&str> = vec!["inspect", "--output", "json"];
    args.extend(files.iter().map(String::as_str));
    let out = zonal(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["zones"], 4);
    assert_eq!(v["hosts"], 13);
    assert_eq!(v["links"], 5);
    assert_eq!(v["services"], 4); // epg, web, smart-camera (input-chain), echo (echo-bench)
    assert_eq!(v["regions"], 5);
    let table = zonal(&["inspect", "examples/infrastructure.yaml"]);
    assert!(text(&table.stdout).contains("frankfurt-core  core  8"), "{}", text(&table.stdout));
}

#[test]
fn convert_tosca_produces_native_yaml_that_validates() {
    let dir = std::env::temp_dir().join(format!("zonal-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_file = dir.join("epg-native.yaml");
    let out = zonal(&["convert", "examples/tosca/fusion-epg.yaml", "--to", "yaml", "-o", out_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let native = std::fs::read_to_string(&out_file).unwrap();
    assert!(native.starts_with("kind: Service\nname: epg-tosca\n"), "{native}");
    let check = zonal(&["validate", out_file.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn inspect_reads_topology_zoo_graphml() {
    let data = zonal_testdata::path("topology-zoo/Interoute.graphml");
    let out = zonal(&["inspect", data.to_str().unwrap(), "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["zones"], 110, "each topology node becomes a zone");
    assert_eq!(v["links"], 146, "parallel links merged, self-loops dropped");
    assert_eq!(v["transit_zones"], 90, "all but the 20 data centres only forward traffic");
    let notes = text(&out.stderr);
    assert!(notes.contains("self-loop"), "the importer reports what it dropped: {notes}");
    let none = zonal(&["inspect", data.to_str().unwrap(), "--output", "json", "--datacenters", "none"]);
    let v: serde_json::Value = serde_json::from_slice(&none.stdout).unwrap();
    assert_eq!(v["hosts"], 0);
}

const EXAMPLE_SET: [&str; 5] = [
    "examples/infrastructure.yaml",
    "examples/web.yaml",
    "examples/epg.yaml",
    "examples/input-chain.yaml",
    "examples/demand.yaml",
];

fn plan_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["plan"];
    for f in EXAMPLE_SET {
        args.push("-f");
        args.push(f);
    }
    args.extend_from_slice(extra);
    args
}

#[test]
fn plan_places_the_examples_and_the_checker_agrees() {
    let out = zonal(&plan_args(&["--output", "json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["status", "objective", "bound", "gap", "solve_seconds", "placements", "paths"] {
        assert!(v.get(key).is_some(), "JSON lacks {key}: {v}");
    }
    assert_eq!(v["status"], "optimal");
    assert_eq!(v["check"]["ok"], true, "{}", v["check"]);
    let placements = v["placements"].as_array().unwrap();
    for p in placements {
        for key in ["service", "component", "zone", "host", "instances", "slots"] {
            assert!(p.get(key).is_some(), "placement lacks {key}: {p}");
        }
    }
    let services: std::collections::BTreeSet<&str> = placements.iter().filter_map(|p| p["service"].as_str()).collect();
    assert_eq!(services.into_iter().collect::<Vec<_>>(), vec!["epg", "smart-camera", "web"]);
    assert!(!v["paths"].as_array().unwrap().is_empty(), "the chain's channels are routed");
    let table = zonal(&plan_args(&[]));
    assert!(text(&table.stdout).contains("checker: ok"), "{}", text(&table.stdout));
}

#[test]
fn plan_algorithm_heuristic_and_auto_say_which_solver_and_why() {
    let out = zonal(&plan_args(&["--algorithm", "heuristic", "--only", "chain", "--output", "json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["check"]["ok"], true, "{}", v["check"]);
    assert_eq!(v["algorithm"], "chain(heuristic)");
    assert_eq!(v["chain_solvers"][0]["solver"], "heuristic", "{}", v["chain_solvers"]);
    assert!(v["bound"].is_number() && v["gap"].is_number(), "a heuristic plan states its bound and gap: {v}");
    let auto = zonal(&plan_args(&["--only", "chain"]));
    assert!(auto.status.success(), "{}", text(&auto.stderr));
    let table = text(&auto.stdout);
    assert!(table.contains("chain solver: exact") && table.contains("binaries ≤"), "{table}");
}

#[test]
fn plan_tradeoff_writes_csv_and_svg() {
    let dir = std::env::temp_dir().join(format!("zonal-tradeoff-{}", std::process::id()));
    let out = zonal(&plan_args(&["--tradeoff", "5", "--out", dir.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(dir.join("tradeoff.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 1 + 5 + 1, "header, min-cost end, 5 budgets, max-utility end:\n{csv}");
    let svg = std::fs::read_to_string(dir.join("tradeoff.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn plan_explains_infeasibility() {
    let dir = std::env::temp_dir().join(format!("zonal-infeasible-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svc = dir.join("big.yaml");
    std::fs::write(
        &svc,
        "kind: Service\nname: big\ncomponents:\n  - {name: b, resources: {cpu: 1}, slots: {per_instance: 1}, scaling: {max_instances: 2}}\n---\nkind: Demand\nname: d\nregions: [{name: r, location: {lat: 51.0, lon: 4.0}}]\ndemand: [{service: big, region: r, slots: 100}]\n",
    )
    .unwrap();
    let out = zonal(&["plan", "-f", "examples/infrastructure.yaml", "-f", svc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("demand [big]") && err.contains("wants 100 slots"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
