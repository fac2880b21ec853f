//! `bench-auth`: what token acquisition costs, client secret vs certificate
//! (RS256 and PS256 assertions signed inside the component), measured
//! against the in-process fake so the network does not blur the figures.

use std::time::Instant;

use dataverse_fake::{self as fake, Fake};
use dataverse_host::Runtime;
use dataverse_host::session::{AssertionAlgorithm, ClientOptions};
use serde_json::json;

use super::write_report;
use crate::Failure;
use crate::cli::Global;

const OPTIONS: ClientOptions = dataverse_host::session::DEFAULT_CLIENT_OPTIONS;

pub async fn run(global: &Global, iterations: usize) -> Result<(), Failure> {
    let runtime = match &global.component {
        Some(path) => Runtime::load(path),
        None => Runtime::from_wasm(dataverse_artifacts::CLIENT),
    }
    .map_err(Failure::host)?;
    let fake = Fake::demo();
    let cert = fake::certs::demo_certificate();
    let store = std::env::temp_dir().join(format!("dataverse-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&store).map_err(Failure::host)?;
    std::fs::write(store.join("app.crt"), &cert.cert_pem).map_err(Failure::host)?;
    std::fs::write(store.join("app.key"), &cert.key_pkcs8_pem).map_err(Failure::host)?;

    // TenantId skips discovery: each sample is instantiate + parse + one token request.
    let tenant = format!(";TenantId={}", fake::DEMO_TENANT_ID);
    let secret = format!("{}{tenant}", fake::demo_connection_string());
    let certificate = format!(
        "{}{tenant}",
        fake::demo_certificate_connection_string(&cert.thumbprint)
    );
    let ps256 = ClientOptions {
        assertion_algorithm: Some(AssertionAlgorithm::Ps256),
        ..OPTIONS
    };
    let cases = [
        ("client secret", secret.as_str(), OPTIONS),
        ("certificate RS256", certificate.as_str(), OPTIONS),
        ("certificate PS256", certificate.as_str(), ps256),
    ];
    let mut results = Vec::new();
    println!(
        "token acquisition through the component (instantiate + parse + token), {iterations} runs each"
    );
    println!(
        "{:<20} {:>10} {:>10} {:>10}",
        "credential", "p50 ms", "p95 ms", "mean ms"
    );
    for (name, connection, options) in cases {
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            let session = runtime
                .connect_with(fake.clone(), Some(&store), connection, options)
                .await
                .map_err(crate::failed)?;
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
            drop(session);
        }
        samples.sort_by(f64::total_cmp);
        let p50 = samples[samples.len() / 2];
        let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        println!("{name:<20} {p50:>10.2} {p95:>10.2} {mean:>10.2}");
        results.push(json!({ "credential": name, "p50_ms": p50, "p95_ms": p95, "mean_ms": mean, "runs": iterations }));
    }
    let _ = std::fs::remove_dir_all(&store);
    let component_bytes = std::fs::metadata(dataverse_artifacts::CLIENT_PATH)
        .map(|m| m.len())
        .unwrap_or(0);
    let report = json!({ "component_bytes": component_bytes, "token_acquisition": results });
    let file = write_report(&super::default_path("auth.json"), &report)?;
    println!("written to {}", file.display());
    Ok(())
}
