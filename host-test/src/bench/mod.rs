//! Benchmarks. Each prints its figures and writes them to a JSON file.
//! - `bench` ([`run`]): `in_process` (the component in wasmtime against the
//!   same core compiled natively, both in this process) and `cold` (issue
//!   13: the CLI and the floor binary `dataverse-floor` as whole processes,
//!   against the fake served by another process), in one report.
//!   And `bulk` (issue 17): rows/s of CreateMultiple, a `$batch` of creates
//!   and one create per call, component against floor.
//! - `bench-auth` ([`auth`]): what token acquisition costs by credential.

mod auth;
mod bulk;
mod cold;
mod in_process;
mod processes;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use auth::run as auth;

use crate::Failure;
use crate::cli::{BenchPart, Global};

/// How much each part of `bench` measures.
pub struct Sizes {
    pub iterations: usize,
    pub runs: usize,
    pub bulk_rows: usize,
}

/// `bench`: the parts asked for (all unless `only`), one report at `out`
/// (`target/bench/bench.json` by default).
pub async fn run(
    global: &Global,
    sizes: Sizes,
    only: Option<BenchPart>,
    out: Option<PathBuf>,
) -> Result<(), Failure> {
    let Sizes {
        iterations,
        runs,
        bulk_rows,
    } = sizes;
    let mut report = serde_json::Map::new();
    let mut add = |part: serde_json::Value| {
        if let serde_json::Value::Object(entries) = part {
            report.extend(entries);
        }
    };
    let wanted = |part: BenchPart| only.is_none_or(|only| only == part);
    if wanted(BenchPart::InProcess) {
        add(in_process::run(global, iterations).await?);
    }
    if wanted(BenchPart::Cold) {
        add(cold::run(global, runs, iterations).await?);
    }
    if wanted(BenchPart::Bulk) {
        let wasm = match &global.component {
            Some(path) => std::fs::read(path).map_err(Failure::host)?,
            None => dataverse_artifacts::CLIENT.to_vec(),
        };
        let runtime = dataverse_host::Runtime::from_wasm(&wasm).map_err(Failure::host)?;
        // On a runtime worker, as the in-process part runs its calls.
        let part = tokio::spawn(async move { bulk::run(&runtime, bulk_rows).await })
            .await
            .map_err(Failure::host)??;
        add(part);
    }
    report.insert("host_profile".into(), host_profile().into());
    let file = write_report(
        &out.unwrap_or_else(|| default_path("bench.json")),
        &serde_json::Value::Object(report),
    )?;
    if cfg!(debug_assertions) {
        println!(
            "note: a debug host; build with `cargo build --profile bench -p host-test --bins` for the figures that count"
        );
    }
    println!("written to {}", file.display());
    Ok(())
}

fn host_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "optimised"
    }
}

/// Latencies in µs or ms, from unsorted samples. `p50` is the median (the
/// upper one of an even count).
#[derive(Clone, Debug)]
struct Stats {
    p50: f64,
    p95: f64,
    mean: f64,
}

impl Stats {
    fn of(mut samples: Vec<f64>) -> Stats {
        samples.sort_by(f64::total_cmp);
        let at = |q: usize| samples[(samples.len() * q / 100).min(samples.len() - 1)];
        Stats {
            p50: at(50),
            p95: at(95),
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
        }
    }
}

fn micros(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e6
}

/// `target/bench/NAME`, beside the build that made this binary.
fn default_path(name: &str) -> PathBuf {
    Path::new(dataverse_artifacts::CLIENT_PATH)
        .ancestors()
        .nth(4)
        .map(|target| target.join("bench"))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
        .join(name)
}

/// Writes `report` to `file` (making its folder) and returns the path.
fn write_report(file: &Path, report: &serde_json::Value) -> Result<PathBuf, Failure> {
    if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::host(format!("{}: {e}", dir.display())))?;
    }
    std::fs::write(
        file,
        serde_json::to_string_pretty(report).unwrap_or_default(),
    )
    .map_err(|e| Failure::host(format!("{}: {e}", file.display())))?;
    Ok(file.to_path_buf())
}
