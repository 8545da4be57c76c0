//! End to end: `zonal bench --suite vnmp` on the smallest instance writes its CSV and
//! summary. A missing `../shared/data/vnmp/20` fails the test, saying how to get the data.

use std::process::Command;

#[test]
fn bench_vnmp_writes_csv_and_summary() {
    zonal_testdata::path("vnmp/20/eu_20_0_prob.bz2");
    let data = zonal_testdata::dir();
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_zonal"))
        .args(["bench", "--suite", "vnmp", "--sizes", "20", "--limit", "1", "--slices", "2", "--time-limit", "20s"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .expect("zonal runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("VNMP slices") && stdout.contains("MEDIAN RATIO"), "{stdout}");
    let csv = std::fs::read_to_string(out_dir.path().join("vnmp.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().nth(1).is_some_and(|l| l.starts_with("20,eu_20_0_prob,conservative,0,")), "{csv}");
    assert!(out_dir.path().join("summary.txt").is_file());

    let bad = Command::new(env!("CARGO_BIN_EXE_zonal"))
        .args(["bench", "--suite", "vnmp", "--sizes", "7"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .expect("zonal runs");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("vnmp/7"), "{}", String::from_utf8_lossy(&bad.stderr));
}
