//! The in-process part of `bench`: the component in wasmtime against the
//! same core compiled natively (the floor, `crate::native`), both against
//! the fake in this process and on loopback TLS: load, instantiate, first
//! call, warm WhoAmI, paging, handshakes.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use dataverse_fake::{self as fake, Fake, FakeConfig};
use dataverse_host::session::ClientOptions;
use dataverse_host::{Limits, Network, Query, Runtime, Upstream};
use dataverse_wasm::Client;
use dataverse_wasm::client::{CallOptions, ClientConfig};
use dataverse_wasm::page_reader::PageReader;
use serde_json::json;
use wasmtime::component::Component;

use super::{Stats, micros};
use crate::Failure;
use crate::cli::Global;
use crate::native::{NativeTransport, NativeUpstream};

const OPTIONS: ClientOptions = dataverse_host::session::DEFAULT_CLIENT_OPTIONS;

/// What the component costs over the same core compiled natively, against
/// the in-process fake and against the fake on loopback TCP + TLS: printed,
/// and returned as the report's entries.
pub async fn run(global: &Global, iterations: usize) -> Result<serde_json::Value, Failure> {
    let wasm = match &global.component {
        Some(path) => std::fs::read(path).map_err(Failure::host)?,
        None => dataverse_artifacts::CLIENT.to_vec(),
    };

    println!("dataverse-wasm bench ({iterations} warm calls per case)");
    let load = measure_loading(&wasm)?;
    let runtime = Arc::new(Runtime::from_wasm(&wasm).map_err(Failure::host)?);
    let mut instantiate = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        runtime
            .instantiate_and_drop()
            .await
            .map_err(crate::failed)?;
        instantiate.push(micros(started));
    }
    let instantiate = Stats::of(instantiate);
    println!(
        "component {} bytes; compile {:.1} ms; precompiled load p50 {:.0} µs; instantiate p50 {:.1} µs (p95 {:.1})",
        wasm.len(),
        load.compile_ms,
        load.precompiled_load_us.p50,
        instantiate.p50,
        instantiate.p95
    );

    // On a runtime worker, as a service's request handler would run: the
    // tasks wasi:http spawns then start on the same worker instead of each
    // waking another thread (measured: ~2× the per-call cost from the
    // CLI's main thread).
    let on_worker = runtime.clone();
    let (in_process, tls) = tokio::spawn(async move {
        let in_process = bench_case(&on_worker, Route::InProcess, iterations).await?;
        let tls = bench_case(&on_worker, Route::Tls, iterations.min(1000)).await?;
        Ok::<_, Failure>((in_process, tls))
    })
    .await
    .map_err(Failure::host)??;
    print_table(&[("in-process", &in_process), ("loopback TLS", &tls)]);

    Ok(json!({
        "compile_ms": load.compile_ms,
        "load_precompiled_us": load.precompiled_load_us.p50,
        "instantiate_us": instantiate.p50,
        "instantiate_p95_us": instantiate.p95,
        "in_process": {
            "first_call_ms": in_process.first_call_json(),
            "warm_whoami_us": in_process.warm_json(),
            "paging_10k": in_process.paging_json(),
        },
        "tls": {
            "first_call_ms": tls.first_call_json(),
            "warm_whoami_us": tls.warm_json(),
            "paging_10k": tls.paging_json(),
            "tls_handshakes": {
                "component_during_warm_calls": tls.component_handshakes,
                "native_during_warm_calls": tls.native_handshakes,
                "warm_calls": tls.warm_calls,
                "component_total": tls.component_handshakes_total,
                "component_calls_total": tls.component_calls_total,
            },
        },
        "warm_calls": iterations,
    }))
}

struct Loading {
    compile_ms: f64,
    precompiled_load_us: Stats,
}

/// Compiling the wasm (what a host without a cache pays once) against
/// loading the precompiled artifact from disk (what it pays otherwise).
fn measure_loading(wasm: &[u8]) -> Result<Loading, Failure> {
    let engine = dataverse_host::engine::new_engine(&Limits::default()).map_err(Failure::host)?;
    let started = Instant::now();
    Component::new(&engine, wasm).map_err(Failure::host)?;
    let compile_ms = started.elapsed().as_secs_f64() * 1000.0;
    let artifact = engine.precompile_component(wasm).map_err(Failure::host)?;
    let path = std::env::temp_dir().join(format!("dataverse-bench-{}.cwasm", std::process::id()));
    std::fs::write(&path, &artifact).map_err(Failure::host)?;
    let mut loads = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        // SAFETY: written just above by `precompile_component` of this engine.
        unsafe { Component::deserialize_file(&engine, &path) }.map_err(Failure::host)?;
        loads.push(micros(started));
    }
    let _ = std::fs::remove_file(&path);
    Ok(Loading {
        compile_ms,
        precompiled_load_us: Stats::of(loads),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    InProcess,
    Tls,
}

struct Case {
    first_component_ms: Stats,
    first_native_ms: Stats,
    warm_component_us: Stats,
    warm_native_us: Stats,
    warm_calls: usize,
    paging_component_rows_per_s: f64,
    paging_native_rows_per_s: f64,
    peak_guest_bytes: usize,
    component_handshakes: u64,
    native_handshakes: u64,
    /// Every connection the component's network opened in this case, and
    /// the HTTP requests it sent over them.
    component_handshakes_total: u64,
    component_calls_total: usize,
}

impl Case {
    fn first_call_json(&self) -> serde_json::Value {
        json!({
            "component": self.first_component_ms.p50,
            "native": self.first_native_ms.p50,
            "ratio": self.first_component_ms.p50 / self.first_native_ms.p50,
        })
    }

    fn warm_json(&self) -> serde_json::Value {
        json!({
            "component_p50": self.warm_component_us.p50,
            "component_p95": self.warm_component_us.p95,
            "native_p50": self.warm_native_us.p50,
            "native_p95": self.warm_native_us.p95,
            "ratio_p50": self.warm_component_us.p50 / self.warm_native_us.p50,
            "component_calls_per_s": 1e6 / self.warm_component_us.mean,
            "native_calls_per_s": 1e6 / self.warm_native_us.mean,
        })
    }

    fn paging_json(&self) -> serde_json::Value {
        json!({
            "rows_per_s": self.paging_component_rows_per_s,
            "native_rows_per_s": self.paging_native_rows_per_s,
            "ratio": self.paging_native_rows_per_s / self.paging_component_rows_per_s,
            "peak_guest_bytes": self.peak_guest_bytes,
        })
    }
}

const FIRST_CALL_RUNS: usize = 20;
const PAGING_ROWS: usize = 10_000;
const PAGING_RUNS: usize = 3;

/// Every measurement of one route, for the component and for the native floor.
async fn bench_case(runtime: &Runtime, route: Route, warm: usize) -> Result<Case, Failure> {
    let fake = Fake::new(FakeConfig {
        account_count: PAGING_ROWS,
        ..FakeConfig::default()
    });
    let server = match route {
        Route::InProcess => None,
        Route::Tls => Some(fake::serve_tls(fake.clone()).await.map_err(Failure::host)?),
    };
    let network = || -> Result<Option<Arc<Network>>, Failure> {
        let Some(server) = &server else {
            return Ok(None);
        };
        let port = server.addr.port();
        let rules = [fake::ORG_HOST, fake::LOGIN_HOST]
            .iter()
            .map(|host| format!("{host}:443:127.0.0.1:{port}").parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::host)?;
        Ok(Some(Arc::new(
            Network::new(rules, Some(&server.ca_pem)).map_err(Failure::host)?,
        )))
    };
    let connection = fake::demo_connection_string();
    let query = Query::new("accounts").page_size(5000);

    // The component.
    let component_network = network()?;
    let upstream: Arc<dyn Upstream> = match &component_network {
        Some(network) => network.clone(),
        None => fake.clone(),
    };
    let mut first = Vec::new();
    for _ in 0..FIRST_CALL_RUNS {
        let started = Instant::now();
        let mut session = runtime
            .connect(upstream.clone(), &connection, OPTIONS)
            .await
            .map_err(crate::failed)?;
        session.who_am_i(None).await.map_err(crate::failed)?;
        first.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut session = runtime
        .connect(upstream.clone(), &connection, OPTIONS)
        .await
        .map_err(crate::failed)?;
    for _ in 0..warm.min(100) {
        session.who_am_i(None).await.map_err(crate::failed)?;
    }
    let handshakes_before = component_network
        .as_ref()
        .map_or(0, |n| n.connections_opened());
    let mut samples = Vec::with_capacity(warm);
    for _ in 0..warm {
        let started = Instant::now();
        session.who_am_i(None).await.map_err(crate::failed)?;
        samples.push(micros(started));
    }
    let component_handshakes = component_network
        .as_ref()
        .map_or(0, |n| n.connections_opened() - handshakes_before);
    let mut paging = Vec::new();
    let mut peak_guest_bytes = 0;
    for _ in 0..PAGING_RUNS {
        let mut pager = runtime
            .connect(upstream.clone(), &connection, OPTIONS)
            .await
            .map_err(crate::failed)?;
        let started = Instant::now();
        let rows = pager
            .read_all(&query, u64::MAX, None, |_| ControlFlow::Continue(()))
            .await
            .map_err(crate::failed)?;
        paging.push(rows as f64 / started.elapsed().as_secs_f64());
        peak_guest_bytes = peak_guest_bytes.max(pager.peak_memory_bytes());
    }
    let component_handshakes_total = component_network
        .as_ref()
        .map_or(0, |n| n.connections_opened());
    let component_calls_total = fake.requests().len();
    let first_component_ms = Stats::of(first);
    let warm_component_us = Stats::of(samples);
    let paging_component_rows_per_s = Stats::of(paging).p50;

    // The native floor, on a blocking thread (the core is synchronous).
    let native_network = network()?;
    let native_upstream = match &native_network {
        Some(network) => {
            NativeUpstream::Network(network.clone(), tokio::runtime::Handle::current())
        }
        None => NativeUpstream::Fake(fake.clone()),
    };
    let native =
        tokio::task::spawn_blocking(move || native_case(native_upstream, &connection, warm))
            .await
            .map_err(Failure::host)??;
    let native_handshakes = native_network.as_ref().map_or(0, |n| {
        n.connections_opened() - native.handshakes_before_warm
    });
    drop(server);
    Ok(Case {
        first_component_ms,
        first_native_ms: native.first_ms,
        warm_component_us,
        warm_native_us: native.warm_us,
        warm_calls: warm,
        paging_component_rows_per_s,
        paging_native_rows_per_s: native.paging_rows_per_s,
        peak_guest_bytes,
        component_handshakes,
        native_handshakes,
        component_handshakes_total,
        component_calls_total,
    })
}

struct NativeCase {
    first_ms: Stats,
    warm_us: Stats,
    paging_rows_per_s: f64,
    handshakes_before_warm: u64,
}

fn native_case(
    upstream: NativeUpstream,
    connection: &str,
    warm: usize,
) -> Result<NativeCase, Failure> {
    let connect = || -> Result<Client<NativeTransport>, Failure> {
        let settings = dataverse_wasm::settings::parse(connection).map_err(native_failure)?;
        Client::connect(
            settings,
            NativeTransport::new(upstream.clone()),
            ClientConfig::default(),
        )
        .map_err(|f| native_failure(f.error))
    };
    let options = CallOptions::default();
    let mut first = Vec::new();
    for _ in 0..FIRST_CALL_RUNS {
        let started = Instant::now();
        let mut client = connect()?;
        client
            .who_am_i(&options)
            .map_err(|f| native_failure(f.error))?;
        first.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut client = connect()?;
    for _ in 0..warm.min(100) {
        client
            .who_am_i(&options)
            .map_err(|f| native_failure(f.error))?;
    }
    let handshakes_before_warm = match &upstream {
        NativeUpstream::Network(network, _) => network.connections_opened(),
        NativeUpstream::Fake(_) => 0,
    };
    let mut samples = Vec::with_capacity(warm);
    for _ in 0..warm {
        let started = Instant::now();
        client
            .who_am_i(&options)
            .map_err(|f| native_failure(f.error))?;
        samples.push(micros(started));
    }
    let query = dataverse_wasm::webapi::query::Query {
        entity_set: "accounts".into(),
        page_size: Some(5000),
        ..Default::default()
    };
    let mut paging = Vec::new();
    for _ in 0..PAGING_RUNS {
        let mut client = connect()?;
        let started = Instant::now();
        let mut reader = PageReader::new(query.clone(), u64::MAX, CallOptions::default());
        while let Some(page) = reader.next(&mut client) {
            page.map_err(|f| native_failure(f.error))?;
        }
        paging.push(reader.rows_read() as f64 / started.elapsed().as_secs_f64());
    }
    Ok(NativeCase {
        first_ms: Stats::of(first),
        warm_us: Stats::of(samples),
        paging_rows_per_s: Stats::of(paging).p50,
        handshakes_before_warm,
    })
}

fn native_failure(error: dataverse_wasm::Error) -> Failure {
    Failure::host(anyhow::anyhow!("native client: {error}"))
}

fn print_table(cases: &[(&str, &Case)]) {
    println!();
    println!(
        "{:<14} {:<28} {:>12} {:>12} {:>8}",
        "route", "measure", "component", "native", "ratio"
    );
    for (name, case) in cases {
        let rows: [(&str, f64, f64); 6] = [
            (
                "first call ms (p50)",
                case.first_component_ms.p50,
                case.first_native_ms.p50,
            ),
            (
                "warm WhoAmI µs p50",
                case.warm_component_us.p50,
                case.warm_native_us.p50,
            ),
            (
                "warm WhoAmI µs p95",
                case.warm_component_us.p95,
                case.warm_native_us.p95,
            ),
            (
                "warm WhoAmI calls/s",
                1e6 / case.warm_component_us.mean,
                1e6 / case.warm_native_us.mean,
            ),
            (
                "paging 10k rows/s",
                case.paging_component_rows_per_s,
                case.paging_native_rows_per_s,
            ),
            (
                "TLS handshakes (warm)",
                case.component_handshakes as f64,
                case.native_handshakes as f64,
            ),
        ];
        for (measure, component, native) in rows {
            let ratio = if native > 0.0 {
                component / native
            } else {
                f64::NAN
            };
            println!("{name:<14} {measure:<28} {component:>12.1} {native:>12.1} {ratio:>8.2}");
        }
        println!(
            "{name:<14} {:<28} {:>12}",
            "peak guest memory (paging)", case.peak_guest_bytes
        );
        if case.component_handshakes_total > 0 {
            println!(
                "{name:<14} {:<28} {:>12}   (for {} requests)",
                "TLS handshakes (all)", case.component_handshakes_total, case.component_calls_total
            );
        }
    }
    println!();
}
