//! End to end: `zonal bench --suite runtime --limit 2` through the real binary writes its
//! three CSVs and the summary, and every decision passed the checker. Without the Topology
//! Zoo file the run must fail naming it (checked with an empty data directory). A missing
//! `../shared/data/topology-zoo/Interoute.graphml` fails the full run's test, saying how to
//! get the data.

use std::path::Path;
use std::process::Command;

/// Splits CSV text into rows of fields (RFC 4180 quoting, as `zonal-bench` writes it).
fn rows(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    out
}

/// The column `name` of a CSV with a header, one value per data row.
fn column(table: &[Vec<String>], name: &str) -> Vec<String> {
    let i = table[0].iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}: {:?}", table[0]));
    table[1..].iter().map(|r| r[i].clone()).collect()
}

fn zonal(args: &[&str], data: &Path, out: &Path) -> std::process::Output {
    let examples = zonal_testdata::examples();
    Command::new(env!("CARGO_BIN_EXE_zonal"))
        .args(["bench", "--suite", "runtime"])
        .args(args)
        .arg("--examples")
        .arg(&examples)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .expect("zonal runs")
}

#[test]
fn bench_runtime_fails_naming_the_missing_topology() {
    let empty = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = zonal(&["--limit", "1", "--seeds", "1"], empty.path(), out_dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("topology-zoo/Interoute.graphml"), "{stderr}");
}

#[test]
fn bench_runtime_writes_csvs_and_every_decision_passes_the_checker() {
    zonal_testdata::path("topology-zoo/Interoute.graphml");
    let data = zonal_testdata::dir();
    let out_dir = tempfile::tempdir().unwrap();
    let out = zonal(&["--limit", "2", "--seeds", "1"], &data, out_dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    for title in ["time per decision", "quality against the greedy", "under a demand shift"] {
        assert!(stdout.contains(title), "{title}: {stdout}");
    }
    assert!(out_dir.path().join("summary.txt").is_file());
    let read = |name: &str| rows(&std::fs::read_to_string(out_dir.path().join(name)).unwrap());

    let latency = read("runtime-latency.csv");
    assert_eq!(
        latency[0].join(","),
        "seed,index,kind,service,route,algorithm,fell_back,refused,seconds,greedy_total_seconds,greedy_seconds,ratio_to_greedy_total,greedy_placed,check_ok,instances,zones_used"
    );
    assert_eq!(latency.len(), 1 + 2 * 4, "two services per route, one seed");
    assert!(column(&latency, "check_ok").iter().all(|v| v == "true"), "{latency:?}");
    let kinds = column(&latency, "kind");
    for k in ["chain", "fusion", "copies", "single"] {
        assert_eq!(kinds.iter().filter(|x| *x == k).count(), 2, "{kinds:?}");
    }

    let quality = read("runtime-quality.csv");
    assert_eq!(&quality[0][..6], ["scenario", "service", "latency_matters", "route", "refused", "seconds"]);
    assert_eq!(quality.len(), 1 + 6 + 2 * 4, "3 example services twice, 2 per kind on Interoute");
    assert!(column(&quality, "pipeline_check_ok").iter().all(|v| v == "true"), "{quality:?}");

    let shift = read("runtime-shift.csv");
    assert_eq!(shift[0][..5], ["sla", "case", "demand_before", "demand_after", "applied"]);
    assert_eq!(shift.len(), 1 + 6);
    assert!(column(&shift, "check_ok").iter().all(|v| v == "true"), "{shift:?}");
}
