//! The cold-process part of `bench` (issue 13): what a user waits for when
//! a process starts, calls Dataverse and exits, and what a long-lived
//! process pays per call. The product is this CLI (wasmtime, the component
//! precompiled into its cache) and, for warm calls, the README's embedding
//! (the `Dataverse` handle on a current-thread runtime; a multi-thread
//! runtime's figures beside it); the floor is `dataverse-floor`, the same core
//! natively over a blocking `ureq` transport (`src/bin/dataverse-floor.rs`).
//! Both reach `host-test fake-server`, a process of its own, over loopback
//! TLS, with a connection string that names the tenant: a token request and
//! the WhoAmI, as a native client that knows its tenant sends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use dataverse_fake as fake;
use dataverse_host::{Dataverse, Limits, Network, Query, Runtime};
use serde_json::{Value, json};
use wasmtime::component::Component;

use super::processes::{FakeServer, Measurer, Run, TempDir, isolated};
use super::{Stats, micros};
use crate::Failure;
use crate::cli::Global;

/// The 3-page query: the fake server's 25 demo accounts, 10 to a page.
const QUERY_SET: &str = "accounts";
const QUERY_COLUMN: &str = "name";
const QUERY_PAGE_SIZE: u32 = 10;
const QUERY_PAGES: u32 = 3;

/// Calls made before the timed ones, in each warm process (connections
/// open, caches filled), on both sides.
const WARMUP: usize = 20;

/// The targets, as ratios of product to floor.
const COLD_TARGET: f64 = 1.3;
/// First run (empty cache) against a cached cold run of the product.
const FIRST_RUN_TARGET: f64 = 1.5;
const WARM_TARGET: f64 = 1.10;
const WARM_P95_TARGET: f64 = 1.5;
const RSS_TARGET: f64 = 2.0;

/// First runs (each with an empty cache) of each side: the median counts.
const FIRST_RUNS: usize = 5;

/// Everything a run needs to reach the fake; shared by the blocking runs
/// and the async warm calls.
struct Setup {
    cli: PathBuf,
    floor: PathBuf,
    measurer: Measurer,
    component: Option<PathBuf>,
    connection: String,
    connection_file: PathBuf,
    cache: PathBuf,
    connect_to: Vec<String>,
    ca: PathBuf,
}

impl Setup {
    /// `host-test --connection @FILE --connect-to … --cacert … whoami`,
    /// with `cache` as its cache.
    fn cli_who_am_i(&self, cache: &Path) -> std::process::Command {
        let mut command = isolated(&self.cli);
        command.env("DATAVERSE_CACHE_DIR", cache);
        if let Some(component) = &self.component {
            command.arg("--component").arg(component);
        }
        command
            .arg("--connection")
            .arg(format!("@{}", self.connection_file.display()));
        self.point_at_the_fake(&mut command);
        command.arg("whoami");
        command
    }

    fn floor(&self, args: &[&str]) -> std::process::Command {
        let mut command = isolated(&self.floor);
        command.env("DATAVERSE_CONNECTION", &self.connection);
        self.point_at_the_fake(&mut command);
        command.args(args);
        command
    }

    fn point_at_the_fake(&self, command: &mut std::process::Command) {
        for rule in &self.connect_to {
            command.args(["--connect-to", rule]);
        }
        command.arg("--cacert").arg(&self.ca);
    }
}

/// Measures, prints the table and returns the report's entries.
pub async fn run(global: &Global, runs: usize, iterations: usize) -> Result<Value, Failure> {
    let cli = std::env::current_exe().map_err(Failure::host)?;
    let floor = sibling(&cli, "dataverse-floor")?;
    let measurer = sibling(&cli, "dataverse-measure")?;
    let component_bytes = match &global.component {
        Some(path) => file_bytes(path)?,
        None => dataverse_artifacts::CLIENT.len() as u64,
    };
    let dir = TempDir::new("dataverse-bench-cold").map_err(Failure::host)?;
    let server = FakeServer::start(&cli).map_err(Failure::host)?;
    let demo = std::fs::read_to_string(&server.connection_file).map_err(Failure::host)?;
    let connection = format!("{};TenantId={}", demo.trim(), fake::DEMO_TENANT_ID);
    let connection_file = dir.0.join("connection");
    write_private(&connection_file, &connection)?;
    let cache = dir.0.join("cache");
    std::fs::create_dir(&cache).map_err(Failure::host)?;
    let setup = Arc::new(Setup {
        cli,
        floor,
        measurer: Measurer {
            program: measurer,
            report: dir.0.join("run-report"),
        },
        component: global.component.clone(),
        connection,
        connection_file,
        cache,
        connect_to: server.connect_to.clone(),
        ca: server.ca.clone(),
    });
    let warm = iterations.min(1000);
    let queries = (warm / 10).max(5);
    println!(
        "\ncold process: {runs} runs each of `host-test whoami` and `dataverse-floor`, \
         then {warm} warm WhoAmIs and {queries} {QUERY_PAGES}-page queries in one process each, \
         against `host-test fake-server` (its own process) on loopback TLS\n\
         (fake server pid {}, its files in {}; the bench's files in {})",
        server.pid(),
        server.files().display(),
        dir.0.display()
    );

    let cold = {
        let setup = setup.clone();
        tokio::task::spawn_blocking(move || cold_runs(&setup, runs))
            .await
            .map_err(Failure::host)?
            .map_err(Failure::host)?
    };
    let floor_warm = {
        let setup = setup.clone();
        tokio::task::spawn_blocking(move || floor_warm(&setup, warm, queries))
            .await
            .map_err(Failure::host)?
            .map_err(Failure::host)?
    };
    // The README's embedding: a current-thread runtime, so each call and
    // the connection I/O it spawns stay on one thread.
    let runtime = Arc::new(warm_runtime(&setup.cache)?);
    let current_thread_warm = {
        let (runtime, setup) = (runtime.clone(), setup.clone());
        tokio::task::spawn_blocking(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Failure::host)?
                .block_on(product_warm(runtime, setup, warm, queries))
        })
        .await
        .map_err(Failure::host)??
    };
    // The same calls on a worker of this multi-thread runtime, as a handler
    // of a multi-thread service would make them: for comparison.
    let multi_thread_warm = tokio::spawn(product_warm(runtime, setup.clone(), warm, queries))
        .await
        .map_err(Failure::host)??;
    drop(server);

    let cli_bytes = file_bytes(&setup.cli)?;
    let floor_bytes = file_bytes(&setup.floor)?;
    let wasm_file_bytes = match &setup.component {
        Some(path) => file_bytes(path)?,
        None => 0,
    };
    let product_disk = cli_bytes + wasm_file_bytes + cold.cwasm_bytes;
    let figures = Figures {
        cold_product: Stats::of(cold.product.iter().map(|r| r.wall_ms).collect()),
        first_product: Stats::of(cold.first_product.iter().map(|r| r.wall_ms).collect()),
        first_floor: Stats::of(cold.first_floor.iter().map(|r| r.wall_ms).collect()),
        first_rss_product: Stats::of(
            cold.first_product
                .iter()
                .map(|r| r.peak_rss_kib as f64)
                .collect(),
        ),
        first_rss_floor: Stats::of(
            cold.first_floor
                .iter()
                .map(|r| r.peak_rss_kib as f64)
                .collect(),
        ),
        cold_floor: Stats::of(cold.floor.iter().map(|r| r.wall_ms).collect()),
        rss_product: Stats::of(cold.product.iter().map(|r| r.peak_rss_kib as f64).collect()),
        rss_floor: Stats::of(cold.floor.iter().map(|r| r.peak_rss_kib as f64).collect()),
        warm_product: Stats::of(current_thread_warm.who_am_i_us),
        warm_multi_thread: Stats::of(multi_thread_warm.who_am_i_us),
        warm_floor: Stats::of(floor_warm.who_am_i_us),
        query_product: Stats::of(current_thread_warm.query_ms),
        query_floor: Stats::of(floor_warm.query_ms),
    };
    let first_vs_cached = figures.first_product.p50 / figures.cold_product.p50;
    print_table(
        &figures,
        first_vs_cached,
        product_disk,
        floor_bytes,
        component_bytes,
    );

    let f = &figures;
    Ok(json!({
        "cold_ms": figure(f.cold_product.p50, f.cold_floor.p50, json!({
            "product_p95": f.cold_product.p95,
            "floor_p95": f.cold_floor.p95,
            "ratio_p95": f.cold_product.p95 / f.cold_floor.p95,
            "runs": runs,
            "target_ratio": COLD_TARGET,
        })),
        "first_run_ms": figure(f.first_product.p50, f.first_floor.p50, json!({
            "product_p95": f.first_product.p95,
            "floor_p95": f.first_floor.p95,
            "runs": cold.first_product.len(),
            "product_vs_cached_cold": first_vs_cached,
            "target_product_vs_cached_cold": FIRST_RUN_TARGET,
        })),
        "warm_whoami_us": figure(f.warm_product.p50, f.warm_floor.p50, json!({
            "product_p95": f.warm_product.p95,
            "floor_p95": f.warm_floor.p95,
            "ratio_p95": f.warm_product.p95 / f.warm_floor.p95,
            "runtime": "tokio current_thread (the README's embedding)",
            "multi_thread_product": f.warm_multi_thread.p50,
            "multi_thread_product_p95": f.warm_multi_thread.p95,
            "multi_thread_ratio": f.warm_multi_thread.p50 / f.warm_floor.p50,
            "multi_thread_ratio_p95": f.warm_multi_thread.p95 / f.warm_floor.p95,
            "calls": warm,
            "target_ratio": WARM_TARGET,
            "target_ratio_p95": WARM_P95_TARGET,
        })),
        "query_3_pages_ms": figure(f.query_product.p50, f.query_floor.p50, json!({
            "product_p95": f.query_product.p95,
            "floor_p95": f.query_floor.p95,
            "ratio_p95": f.query_product.p95 / f.query_floor.p95,
            "runs": queries,
            "pages": QUERY_PAGES,
            "page_size": QUERY_PAGE_SIZE,
        })),
        "peak_rss_kib": figure(f.rss_product.p50, f.rss_floor.p50, json!({
            "product_first_run": f.first_rss_product.p50,
            "floor_first_run": f.first_rss_floor.p50,
            "runs": runs,
            "target_ratio": RSS_TARGET,
        })),
        "disk_bytes": figure(product_disk as f64, floor_bytes as f64, json!({
            "cli_binary": cli_bytes,
            "wasm_file": wasm_file_bytes,
            "cwasm": cold.cwasm_bytes,
        })),
        "component_bytes": figure(component_bytes as f64, floor_bytes as f64, json!({})),
    }))
}

/// The runtime of the warm calls: the CLI's engine (default `Limits`) and
/// the component its first run left in the bench's cache, so
/// nothing is compiled again and nothing is written to the user's cache.
fn warm_runtime(cache: &Path) -> Result<Runtime, Failure> {
    let limits = Limits::default();
    let engine = dataverse_host::engine::new_engine(&limits).map_err(Failure::host)?;
    let cwasm = std::fs::read_dir(cache)
        .map_err(Failure::host)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "cwasm"))
        .ok_or_else(|| Failure::host(format!("no .cwasm in {}", cache.display())))?;
    // SAFETY: `precompile_component` output (of this binary's build or of
    // the CLI's first run) in the bench's private folder; wasmtime refuses
    // an artifact of an incompatible engine.
    let component =
        unsafe { Component::deserialize_file(&engine, &cwasm) }.map_err(Failure::host)?;
    Runtime::from_component(engine, &component, limits).map_err(Failure::host)
}

/// `{product, floor, ratio}` and any other entries of `extra`.
fn figure(product: f64, floor: f64, extra: Value) -> Value {
    let mut figure = json!({ "product": product, "floor": floor, "ratio": product / floor });
    if let (Value::Object(figure), Value::Object(extra)) = (&mut figure, extra) {
        figure.extend(extra);
    }
    figure
}

/// A binary of this package next to this one (`cargo build -p host-test
/// --bins` builds them into the same folder).
fn sibling(cli: &Path, name: &str) -> Result<PathBuf, Failure> {
    let path = cli.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Failure::host(format!(
            "{} is missing: build it beside the CLI with `cargo build -p host-test --bins` \
             (with the same --profile as this host-test)",
            path.display()
        )))
    }
}

struct Cold {
    first_product: Vec<Run>,
    first_floor: Vec<Run>,
    product: Vec<Run>,
    floor: Vec<Run>,
    cwasm_bytes: u64,
}

/// First runs of each, the CLI's each with a cache of its own, still empty
/// (the CLI writes the client precompiled into it to that cache, or
/// compiles `--component` there; the floor has nothing to compile) — the
/// last of them in `setup.cache`, which the later runs use; then `runs` of
/// each. They take turns, so that a busy moment of the machine falls on
/// both.
fn cold_runs(setup: &Setup, runs: usize) -> Result<Cold, String> {
    let first_runs = runs.clamp(1, FIRST_RUNS);
    let mut first_product = Vec::with_capacity(first_runs);
    let mut first_floor = Vec::with_capacity(first_runs);
    for run in 1..=first_runs {
        let cache = if run == first_runs {
            setup.cache.clone()
        } else {
            setup.cache.with_file_name(format!("first-run-cache-{run}"))
        };
        first_product.push(printed_who_am_i(
            setup.measurer.run(&setup.cli_who_am_i(&cache))?,
        )?);
        first_floor.push(printed_who_am_i(setup.measurer.run(&setup.floor(&[]))?)?);
    }
    let cwasm_bytes = cached_bytes(&setup.cache)?;
    if cwasm_bytes == 0 {
        return Err(format!(
            "the first run left no precompiled component in {}",
            setup.cache.display()
        ));
    }
    let mut product = Vec::with_capacity(runs);
    let mut floor = Vec::with_capacity(runs);
    for _ in 0..runs {
        product.push(printed_who_am_i(
            setup.measurer.run(&setup.cli_who_am_i(&setup.cache))?,
        )?);
        floor.push(printed_who_am_i(setup.measurer.run(&setup.floor(&[]))?)?);
    }
    Ok(Cold {
        first_product,
        first_floor,
        product,
        floor,
        cwasm_bytes,
    })
}

fn printed_who_am_i(run: Run) -> Result<Run, String> {
    if run.stdout.contains(fake::DEMO_USER_ID) {
        Ok(run)
    } else {
        Err(format!("no UserId in the output: {}", run.stdout.trim()))
    }
}

/// The sizes of the precompiled components in `cache`.
fn cached_bytes(cache: &Path) -> Result<u64, String> {
    let entries = std::fs::read_dir(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".cwasm"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum())
}

struct Warm {
    who_am_i_us: Vec<f64>,
    query_ms: Vec<f64>,
}

/// `dataverse-floor time …`: its own timings, one line per call.
fn floor_warm(setup: &Setup, warm: usize, queries: usize) -> Result<Warm, String> {
    let page_size = QUERY_PAGE_SIZE.to_string();
    let run = setup.measurer.run(&setup.floor(&[
        "time",
        &(WARMUP + warm).to_string(),
        &(WARMUP + queries).to_string(),
        QUERY_SET,
        QUERY_COLUMN,
        &page_size,
    ]))?;
    let mut timings = Warm {
        who_am_i_us: Vec::new(),
        query_ms: Vec::new(),
    };
    for line in run.stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |word: &str| {
            word.parse::<f64>()
                .map_err(|_| format!("dataverse-floor time: unexpected line {line:?}"))
        };
        match words.as_slice() {
            ["whoami_us", us] => timings.who_am_i_us.push(number(us)?),
            ["query_ms", ms, pages] => {
                expect_pages(pages.parse().unwrap_or(0))?;
                timings.query_ms.push(number(ms)?);
            }
            _ => return Err(format!("dataverse-floor time: unexpected line {line:?}")),
        }
    }
    if timings.who_am_i_us.len() != WARMUP + warm || timings.query_ms.len() != WARMUP + queries {
        return Err("dataverse-floor time: fewer timings than calls".into());
    }
    timings.who_am_i_us.drain(..WARMUP);
    timings.query_ms.drain(..WARMUP);
    Ok(timings)
}

/// The same calls through the README's embedding: one `Dataverse` handle
/// over the CLI's `Network`, in this process.
async fn product_warm(
    runtime: Arc<Runtime>,
    setup: Arc<Setup>,
    warm: usize,
    queries: usize,
) -> Result<Warm, Failure> {
    let rules = setup
        .connect_to
        .iter()
        .map(|rule| rule.parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::host)?;
    let ca = std::fs::read_to_string(&setup.ca).map_err(Failure::host)?;
    let network = Network::new(rules, Some(&ca)).map_err(Failure::host)?;
    let dataverse = Dataverse::connect(runtime, Arc::new(network), &setup.connection)
        .await
        .map_err(crate::failed)?;
    let query = Query::new(QUERY_SET)
        .select([QUERY_COLUMN])
        .page_size(QUERY_PAGE_SIZE);
    let mut timings = Warm {
        who_am_i_us: Vec::with_capacity(warm),
        query_ms: Vec::with_capacity(queries),
    };
    for call in 0..WARMUP + warm {
        let started = Instant::now();
        dataverse.who_am_i().await.map_err(crate::failed)?;
        if call >= WARMUP {
            timings.who_am_i_us.push(micros(started));
        }
    }
    for call in 0..WARMUP + queries {
        let started = Instant::now();
        let mut page = dataverse.query(&query).await.map_err(handle_failure)?;
        let mut pages = 1;
        while let Some(next) = page.next.take() {
            page = dataverse.next_page(&next).await.map_err(handle_failure)?;
            pages += 1;
        }
        if call >= WARMUP {
            timings.query_ms.push(micros(started) / 1e3);
        }
        expect_pages(pages).map_err(Failure::host)?;
    }
    Ok(timings)
}

fn handle_failure(error: dataverse_host::Error) -> Failure {
    match error {
        dataverse_host::Error::Call(call) => crate::failed(call),
        other => Failure::host(other),
    }
}

fn expect_pages(pages: u32) -> Result<(), String> {
    if pages == QUERY_PAGES {
        Ok(())
    } else {
        Err(format!(
            "the query took {pages} pages, not {QUERY_PAGES}: is the fake's demo data set changed?"
        ))
    }
}

struct Figures {
    cold_product: Stats,
    first_product: Stats,
    first_floor: Stats,
    first_rss_product: Stats,
    first_rss_floor: Stats,
    cold_floor: Stats,
    rss_product: Stats,
    rss_floor: Stats,
    warm_product: Stats,
    warm_multi_thread: Stats,
    warm_floor: Stats,
    query_product: Stats,
    query_floor: Stats,
}

fn print_table(
    f: &Figures,
    first_vs_cached: f64,
    product_disk: u64,
    floor_bytes: u64,
    component_bytes: u64,
) {
    let target = |ratio: f64, target: f64| {
        let verdict = if ratio <= target { "met" } else { "missed" };
        format!("≤ {target:.2} {verdict}")
    };
    let times: [(&str, f64, f64, String); 9] = [
        (
            "cold process → WhoAmI, median ms",
            f.cold_product.p50,
            f.cold_floor.p50,
            target(f.cold_product.p50 / f.cold_floor.p50, COLD_TARGET),
        ),
        (
            "cold process → WhoAmI, p95 ms",
            f.cold_product.p95,
            f.cold_floor.p95,
            String::new(),
        ),
        (
            "first run (empty cache), median ms",
            f.first_product.p50,
            f.first_floor.p50,
            format!(
                "{} ({first_vs_cached:.2}× a cached cold run)",
                target(first_vs_cached, FIRST_RUN_TARGET)
            ),
        ),
        (
            "warm WhoAmI, median µs",
            f.warm_product.p50,
            f.warm_floor.p50,
            target(f.warm_product.p50 / f.warm_floor.p50, WARM_TARGET),
        ),
        (
            "warm WhoAmI, p95 µs",
            f.warm_product.p95,
            f.warm_floor.p95,
            target(f.warm_product.p95 / f.warm_floor.p95, WARM_P95_TARGET),
        ),
        (
            "warm WhoAmI, multi-thread runtime, median µs",
            f.warm_multi_thread.p50,
            f.warm_floor.p50,
            String::new(),
        ),
        (
            "warm WhoAmI, multi-thread runtime, p95 µs",
            f.warm_multi_thread.p95,
            f.warm_floor.p95,
            String::new(),
        ),
        (
            "3-page query, median ms",
            f.query_product.p50,
            f.query_floor.p50,
            String::new(),
        ),
        (
            "3-page query, p95 ms",
            f.query_product.p95,
            f.query_floor.p95,
            String::new(),
        ),
    ];
    // Sizes are whole numbers (bytes, KiB).
    let sizes: [(&str, f64, f64, String); 3] = [
        (
            "peak RSS cold, median KiB",
            f.rss_product.p50,
            f.rss_floor.p50,
            target(f.rss_product.p50 / f.rss_floor.p50, RSS_TARGET),
        ),
        (
            "on disk, bytes",
            product_disk as f64,
            floor_bytes as f64,
            String::new(),
        ),
        (
            "component bytes / floor binary",
            component_bytes as f64,
            floor_bytes as f64,
            String::new(),
        ),
    ];
    println!();
    println!(
        "{:<34} {:>14} {:>14} {:>8}  target",
        "measure", "product", "floor", "ratio"
    );
    let rows = times
        .into_iter()
        .map(|row| (row, 1))
        .chain(sizes.into_iter().map(|row| (row, 0)));
    for ((measure, product, floor, target), decimals) in rows {
        println!(
            "{measure:<34} {product:>14.decimals$} {floor:>14.decimals$} {:>8.2}  {target}",
            product / floor
        );
    }
    println!();
}

fn file_bytes(path: &Path) -> Result<u64, Failure> {
    std::fs::metadata(path)
        .map(|metadata| metadata.len())
        .map_err(|e| Failure::host(format!("{}: {e}", path.display())))
}

/// The connection string (with its secret) readable by this user only.
fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(Failure::host)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(Failure::host)?;
    }
    Ok(())
}
