//! `bench-auth`: what token acquisition costs, client secret vs certificate
//! (RS256 and PS256 assertions signed inside the component), measured
//! against the in-process fake so the network does not blur the figures.

use std::time::Instant;

use host_test::fake::{self, Fake};
use host_test::session::{AssertionAlgorithm, ClientOptions};
use host_test::{Runtime, Upstream};
use serde_json::json;

use crate::Failure;
use crate::args::Args;

const OPTIONS: ClientOptions = host_test::session::DEFAULT_CLIENT_OPTIONS;

pub async fn auth(args: &Args) -> Result<(), Failure> {
    args.only("bench-auth", &["--iterations"])?;
    let iterations: usize = args.number("--iterations")?.unwrap_or(50);
    let runtime = match args.value("--component") {
        Some(path) => Runtime::load(std::path::Path::new(path)),
        None => Runtime::load_default(),
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
                .connect_with(
                    Upstream::Fake(fake.clone()),
                    Some(&store),
                    connection,
                    options,
                )
                .await?;
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
    let out = std::path::Path::new(host_test::runtime::DEFAULT_COMPONENT)
        .ancestors()
        .nth(4)
        .map(|target| target.join("bench"))
        .unwrap_or_else(|| std::path::PathBuf::from("target/bench"));
    std::fs::create_dir_all(&out).map_err(Failure::host)?;
    let file = out.join("auth.json");
    let component_bytes = std::fs::metadata(host_test::runtime::DEFAULT_COMPONENT)
        .map(|m| m.len())
        .unwrap_or(0);
    let report = json!({ "component_bytes": component_bytes, "token_acquisition": results });
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )
    .map_err(Failure::host)?;
    println!("written to {}", file.display());
    Ok(())
}
