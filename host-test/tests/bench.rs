//! `host-test bench`'s cold-process part run as a user runs it, with the
//! smallest counts: it prints the table and writes every figure issue 13
//! names, and leaves no process and no file behind. The figures themselves
//! are never asserted on (tests do not time).

use std::path::Path;

use serde_json::Value;

mod common;
use common::*;

const KEYS: [&str; 7] = [
    "cold_ms",
    "first_run_ms",
    "warm_whoami_us",
    "query_3_pages_ms",
    "peak_rss_kib",
    "disk_bytes",
    "component_bytes",
];

#[test]
fn cold_bench_prints_the_ratio_table_and_writes_every_figure_as_product_floor_ratio() {
    // The bench runs these from beside the CLI; cargo builds every bin of
    // the package before its tests.
    for bin in [
        env!("CARGO_BIN_EXE_dataverse-floor"),
        env!("CARGO_BIN_EXE_dataverse-measure"),
    ] {
        assert_eq!(Path::new(bin).parent(), Path::new(BIN).parent(), "{bin}");
    }
    let dir = std::env::temp_dir().join(format!("host-test-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("report/bench.json");
    let child = cli()
        .args([
            "bench",
            "--only",
            "cold",
            "--runs",
            "2",
            "--iterations",
            "10",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let bench_pid = child.id();
    let run = finish(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let header = run
        .stdout
        .lines()
        .find(|line| line.starts_with("measure"))
        .unwrap_or_else(|| panic!("no table:\n{}", run.stdout));
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["measure", "product", "floor", "ratio", "target"],
        "{header}"
    );
    for row in [
        "cold process → WhoAmI, median ms",
        "cold process → WhoAmI, p95 ms",
        "first run (empty cache), median ms",
        "warm WhoAmI, median µs",
        "warm WhoAmI, p95 µs",
        "warm WhoAmI, multi-thread runtime, median µs",
        "3-page query, median ms",
        "peak RSS cold, median KiB",
        "on disk, bytes",
        "component bytes",
    ] {
        assert!(run.stdout.contains(row), "{row}:\n{}", run.stdout);
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    for key in KEYS {
        let figure = &report[key];
        let number = |field: &str| {
            figure[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}.{field} is not a number: {figure}"))
        };
        let (product, floor, ratio) = (number("product"), number("floor"), number("ratio"));
        assert!(product > 0.0 && floor > 0.0, "{key}: {figure}");
        assert!(
            (ratio - product / floor).abs() <= 1e-9 * ratio,
            "{key}: {figure}"
        );
    }
    assert_eq!(report["cold_ms"]["runs"], 2);
    // One first run per cached run, at most five, each with an empty cache.
    assert_eq!(report["first_run_ms"]["runs"], 2);
    assert_eq!(report["query_3_pages_ms"]["pages"], 3);
    assert!(report["first_run_ms"]["product_vs_cached_cold"].is_f64());
    assert!(report["warm_whoami_us"]["multi_thread_product"].as_f64() > Some(0.0));
    assert_eq!(
        report["component_bytes"]["product"].as_f64(),
        Some(dataverse_artifacts::CLIENT.len() as f64)
    );
    let size = |path: &str| std::fs::metadata(path).unwrap().len();
    assert_eq!(report["disk_bytes"]["cli_binary"], size(BIN));
    assert_eq!(
        report["disk_bytes"]["floor"].as_f64(),
        Some(size(env!("CARGO_BIN_EXE_dataverse-floor")) as f64)
    );
    assert!(report["disk_bytes"]["cwasm"].as_u64() > Some(0));
    // The in-process part was not asked for.
    assert!(report.get("in_process").is_none(), "{report}");

    // The fake server it started is stopped and has removed its files, and
    // the bench's own folder (the cache, the connection string) is gone.
    let line = run
        .stdout
        .lines()
        .find(|line| line.contains("fake server pid"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    let after = |marker: &str| {
        line.split(marker)
            .nth(1)
            .and_then(|rest| rest.split([',', ';', ')']).next())
            .unwrap_or_else(|| panic!("{marker} in {line}"))
            .trim()
            .to_string()
    };
    let fake_files = after("its files in ");
    assert!(!Path::new(&fake_files).exists(), "{fake_files} is left");
    let bench_files = after("the bench's files in ");
    assert!(
        bench_files.ends_with(&format!("-{bench_pid}")),
        "{bench_files}"
    );
    assert!(!Path::new(&bench_files).exists(), "{bench_files} is left");
    #[cfg(target_os = "linux")]
    {
        let fake_pid = after("fake server pid ");
        assert!(
            !Path::new(&format!("/proc/{fake_pid}")).exists(),
            "the fake server {fake_pid} still runs"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bulk_bench_writes_rows_per_second_for_the_three_ways_against_the_floor() {
    let dir = std::env::temp_dir().join(format!("host-test-bulk-bench-{}", std::process::id()));
    let out = dir.join("bench.json");
    let run = finish(
        cli()
            .args(["bench", "--only", "bulk", "--bulk-rows", "200"])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for way in ["create_multiple", "batch_of_creates", "create_per_call"] {
        assert!(run.stdout.contains(way), "{way}:\n{}", run.stdout);
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let bulk = &report["bulk_rows_per_s"];
    assert_eq!(bulk["rows"], 200);
    for way in ["create_multiple", "batch_of_creates", "create_per_call"] {
        let (product, floor, ratio) = (
            bulk[way]["product"].as_f64().unwrap(),
            bulk[way]["floor"].as_f64().unwrap(),
            bulk[way]["ratio"].as_f64().unwrap(),
        );
        assert!(product > 0.0 && floor > 0.0, "{way}: {bulk}");
        assert!(
            (ratio - floor / product).abs() <= 1e-9 * ratio,
            "{way}: {bulk}"
        );
    }
    assert!(bulk["create_multiple_parallel_auto"].as_f64() > Some(0.0));
    assert!(report.get("cold_ms").is_none() && report.get("in_process").is_none());
    let _ = std::fs::remove_dir_all(dir);
}
