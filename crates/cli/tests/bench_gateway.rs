//! End to end: `zonal bench --suite gateway --bare-relay --gateway-poll 20us` through the real
//! binary starts its own `zonal up` of examples/echo-bench.yaml (its zone's relay polling), measures the direct, gateway and bare-relay
//! paths in interleaved rounds, writes gateway.csv and the summary, and leaves no process or
//! directory behind. A peer other than haproxy is refused before anything starts. (haproxy
//! itself is not required here: CI machines need not have it; `--peer haproxy` is exercised
//! by the benchmark runs documented in docs/benchmarks.md.)

mod support;

use std::process::Command;

#[test]
fn bench_gateway_measures_direct_and_gateway_in_interleaved_rounds_and_cleans_up() {
    let out_dir = tempfile::tempdir().unwrap();
    let child = Command::new(support::ZONAL)
        .args(["bench", "--suite", "gateway", "--rounds", "2", "--round-trips", "50", "--opens", "3", "--conc", "2"])
        .args(["--bare-relay", "--gateway-poll", "20us"])
        .arg("--examples")
        .arg(support::repo_root().join("examples"))
        .arg("--out")
        .arg(out_dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("zonal runs");
    let work = std::env::temp_dir().join(format!("zonal-bench-gw.{}", child.id()));
    let out = child.wait_with_output().expect("zonal ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let csv = std::fs::read_to_string(out_dir.path().join("gateway.csv")).expect("gateway.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("round,path,min_us,p50_us"), "{csv}");
    let paths: Vec<&str> = lines[1..].iter().map(|l| l.split(',').nth(1).unwrap_or("")).collect();
    assert_eq!(
        paths,
        ["direct", "gateway", "bare-relay", "bare-relay", "gateway", "direct"],
        "interleaved A B C, C B A:\n{csv}"
    );
    for l in &lines[1..] {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[7], "100", "2 connections × 50 round trips: {l}");
        let p50: f64 = f[3].parse().expect("p50");
        let open: f64 = f[10].parse().expect("open p50");
        assert!(p50 > 0.0 && open > 0.0, "{l}");
        let cpu: f64 = f[12].parse().expect("cpu per round trip");
        assert!(cpu >= 0.0 && cpu.is_finite(), "{l}");
    }
    assert!(lines[0].ends_with(",cpu_us_per_round_trip"), "{csv}");
    assert!(stdout.contains("polls for 20 µs (--gateway-poll)") && stdout.contains("cpu/rt"), "{stdout}");
    assert!(stdout.contains("gateway − direct"), "{stdout}");
    assert!(stdout.contains("gateway − bare-relay"), "{stdout}");
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pinning = if cores >= 2 { "client pinned to core 0" } else { "no pinning" };
    assert!(stdout.contains(pinning), "{stdout}");
    assert!(out_dir.path().join("summary.txt").is_file());
    assert!(support::processes_under(&work).is_empty(), "processes left under {}", work.display());
    assert!(!work.exists(), "{} left behind", work.display());
}

#[test]
fn bench_gateway_refuses_a_solver_peer_before_starting_anything() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::ZONAL)
        .args(["bench", "--suite", "gateway", "--peer", "highspy", "--out"])
        .arg(out_dir.path())
        .output()
        .expect("zonal runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--peer highspy") && stderr.contains("only with haproxy"), "{stderr}");
}
