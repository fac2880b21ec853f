//! The bulk part of `bench` (issue 17): rows/s writing N new rows to the
//! fake over loopback TLS three ways — `CreateMultiple` (batches of 100),
//! a `$batch` of 100 single creates per request, one create per call —
//! through the component (a `Session`) and through the native floor (the
//! same core compiled natively, `crate::native`), one request at a time on
//! both sides; then the component's `CreateMultiple` at the org's
//! parallelism (`x-ms-dop-hint`), which the floor's one-at-a-time
//! transport does not have. Each case writes to a fresh fake.

use std::sync::Arc;
use std::time::Instant;

use dataverse_fake::{self as fake, Fake};
use dataverse_host::session::{BatchOptions, BatchRequest, BulkMessage, BulkOptions, Method};
use dataverse_host::{Network, Runtime, Session};
use dataverse_wasm::Client;
use dataverse_wasm::client::{CallOptions, ClientConfig};
use dataverse_wasm::webapi::batch::BatchPart;
use dataverse_wasm::webapi::bulk::Message;
use serde_json::{Value, json};

use crate::Failure;
use crate::native::{NativeTransport, NativeUpstream};

const BATCH: usize = 100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    CreateMultiple,
    Batch,
    OnePerCall,
}

impl Way {
    const ALL: [Way; 3] = [Way::CreateMultiple, Way::Batch, Way::OnePerCall];

    fn name(self) -> &'static str {
        match self {
            Way::CreateMultiple => "create_multiple",
            Way::Batch => "batch_of_creates",
            Way::OnePerCall => "create_per_call",
        }
    }
}

pub async fn run(runtime: &Runtime, rows: usize) -> Result<Value, Failure> {
    println!("bulk: {rows} new rows to the fake over loopback TLS, batches of {BATCH}");
    println!(
        "  {:<22} {:>14} {:>14} {:>7}",
        "way", "component r/s", "native r/s", "ratio"
    );
    let data: Vec<Value> = (0..rows)
        .map(|i| json!({"name": format!("Bench {i:06}"), "accountnumber": format!("B-{i:06}")}))
        .collect();
    let mut report = serde_json::Map::new();
    for way in Way::ALL {
        let component = component_case(runtime, way, &data, Some(1)).await?;
        let native = native_case(way, data.clone()).await?;
        println!(
            "  {:<22} {:>14.0} {:>14.0} {:>6.2}×",
            way.name(),
            component,
            native,
            native / component
        );
        report.insert(
            way.name().into(),
            json!({"product": component, "floor": native, "ratio": native / component}),
        );
    }
    let parallel = component_case(runtime, Way::CreateMultiple, &data, None).await?;
    println!(
        "  {:<22} {:>14.0}   (the org's x-ms-dop-hint: {} at a time)",
        "create_multiple, auto",
        parallel,
        fake::DEFAULT_DOP_HINT
    );
    report.insert("create_multiple_parallel_auto".into(), json!(parallel));
    report.insert("rows".into(), json!(rows));
    report.insert("batch".into(), json!(BATCH));
    Ok(json!({ "bulk_rows_per_s": report }))
}

/// A fresh fake on loopback TLS and a network that reaches it.
async fn serve() -> Result<(Arc<Fake>, fake::TlsFakeServer, Arc<Network>), Failure> {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.map_err(Failure::host)?;
    let port = server.addr.port();
    let rules = [fake::ORG_HOST, fake::LOGIN_HOST]
        .iter()
        .map(|host| format!("{host}:443:127.0.0.1:{port}").parse())
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::host)?;
    let network = Arc::new(Network::new(rules, Some(&server.ca_pem)).map_err(Failure::host)?);
    Ok((fake, server, network))
}

/// Rows per second through the component (connected and warm first).
async fn component_case(
    runtime: &Runtime,
    way: Way,
    data: &[Value],
    parallel: Option<u32>,
) -> Result<f64, Failure> {
    let (fake, _server, network) = serve().await?;
    let mut session: Session = runtime
        .connect(
            network,
            &fake::demo_connection_string(),
            dataverse_host::session::DEFAULT_CLIENT_OPTIONS,
        )
        .await
        .map_err(crate::failed)?;
    session
        .table("accounts", None)
        .await
        .map_err(crate::failed)?;
    let texts: Vec<String> = data.iter().map(Value::to_string).collect();
    let started = Instant::now();
    match way {
        Way::CreateMultiple => {
            let bulk = BulkOptions {
                batch_size: BATCH as u32,
                parallel,
            };
            let result = session
                .bulk(BulkMessage::CreateMultiple, "accounts", &texts, bulk, None)
                .await
                .map_err(crate::failed)?;
            let written = result
                .batches
                .iter()
                .all(|b| matches!(b.outcome, dataverse_host::BatchOutcome::Written(_)));
            if !written {
                return Err(Failure::host("a bulk batch failed in the bench"));
            }
        }
        Way::Batch => {
            for chunk in texts.chunks(BATCH) {
                let requests: Vec<BatchRequest> = chunk
                    .iter()
                    .map(|body| BatchRequest {
                        method: Method::Post,
                        url: "accounts".into(),
                        headers: vec![],
                        body: Some(body.clone()),
                    })
                    .collect();
                let options = BatchOptions {
                    change_set: false,
                    continue_on_error: false,
                };
                session
                    .batch(&requests, options, None)
                    .await
                    .map_err(crate::failed)?;
            }
        }
        Way::OnePerCall => {
            for body in &texts {
                session
                    .create("accounts", body, None)
                    .await
                    .map_err(crate::failed)?;
            }
        }
    }
    let rate = data.len() as f64 / started.elapsed().as_secs_f64();
    check_written(&fake, data.len())?;
    Ok(rate)
}

/// Rows per second through the core compiled natively, on a blocking
/// thread (the core is synchronous).
async fn native_case(way: Way, data: Vec<Value>) -> Result<f64, Failure> {
    let (fake, _server, network) = serve().await?;
    let upstream = NativeUpstream::Network(network, tokio::runtime::Handle::current());
    let rows = data.len();
    let rate = tokio::task::spawn_blocking(move || -> Result<f64, Failure> {
        let fail = |e: dataverse_wasm::error::Error| Failure::host(e.to_string());
        let settings =
            dataverse_wasm::settings::parse(&fake::demo_connection_string()).map_err(fail)?;
        let mut client = Client::connect(
            settings,
            NativeTransport::new(upstream),
            ClientConfig::default(),
        )
        .map_err(|f| fail(f.error))?;
        let options = CallOptions::default();
        let table = client
            .table("accounts", &options)
            .map_err(|f| fail(f.error))?
            .value;
        let started = Instant::now();
        match way {
            Way::CreateMultiple => {
                let report = client
                    .bulk(Message::Create, &table, &data, BATCH, Some(1), &options)
                    .map_err(fail)?;
                if !report.complete() {
                    return Err(Failure::host("a native bulk batch failed in the bench"));
                }
            }
            Way::Batch => {
                for chunk in data.chunks(BATCH) {
                    let parts: Vec<BatchPart> = chunk
                        .iter()
                        .map(|row| BatchPart {
                            method: dataverse_wasm::http::Method::Post,
                            url: "accounts".into(),
                            headers: vec![],
                            body: Some(row.to_string()),
                        })
                        .collect();
                    client
                        .batch(&parts, false, false, &options)
                        .map_err(|f| fail(f.error))?;
                }
            }
            Way::OnePerCall => {
                for row in &data {
                    client
                        .create("accounts", &row.to_string(), &options)
                        .map_err(|f| fail(f.error))?;
                }
            }
        }
        Ok(rows as f64 / started.elapsed().as_secs_f64())
    })
    .await
    .map_err(Failure::host)??;
    check_written(&fake, rows)?;
    Ok(rate)
}

/// A case counts only if every row is on the fake, once.
fn check_written(fake: &Fake, rows: usize) -> Result<(), Failure> {
    let written = fake.account_names().len() - fake.config().account_count;
    if written != rows {
        return Err(Failure::host(format!(
            "the bench wrote {written} rows, not {rows}"
        )));
    }
    Ok(())
}
