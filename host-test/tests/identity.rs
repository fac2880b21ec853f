//! The secretless credentials through the native CLI: the platform's
//! variables reach the component (and only the instance that holds the
//! credential), IMDS and App Service's endpoint are reached over plain http
//! through `--connect-to`, and the authority cache stays out of their way.

mod common;

use common::*;
use dataverse_fake::{self as fake, Fake, FakeConfig};
use serde_json::Value;

const APP_SERVICE_ENDPOINT: &str = "http://10.0.0.4:8081/msi/token";

/// The CLI against one fake served twice: TLS for the org and Entra ID,
/// plain HTTP for IMDS and App Service's endpoint.
async fn whoami(fake: std::sync::Arc<Fake>, env: &[(&str, &str)], cache: Option<&str>) -> Run {
    let tls = fake::serve_tls(fake.clone()).await.unwrap();
    let plain = fake::serve_http(move |_| fake).await.unwrap();
    let connection = format!("AuthType=ManagedIdentity;Url=https://{}/", fake::ORG_HOST);
    let plain_port = plain.addr.port();
    let imds = format!("{}:80:127.0.0.1:{plain_port}", fake::IMDS_HOST);
    let app_service = format!("10.0.0.4:8081:127.0.0.1:{plain_port}");
    let (mut command, dir) = command_against(
        &tls,
        Some(&connection),
        &[
            "--connect-to",
            &imds,
            "--connect-to",
            &app_service,
            "-v",
            "whoami",
            "--json",
        ],
    );
    for (name, value) in env {
        command.env(name, value);
    }
    if let Some(cache) = cache {
        command
            .env_remove("DATAVERSE_NO_AUTHORITY_CACHE")
            .env("DATAVERSE_CACHE_DIR", cache);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    finish(output)
}

#[tokio::test]
async fn managed_identity_through_imds_twice_with_the_authority_cache_on() {
    let cache = std::env::temp_dir().join(format!("host-test-mi-cache-{}", std::process::id()));
    let cache_dir = cache.to_str().unwrap();
    let fake = Fake::demo();
    for run in 1..=2 {
        let out = whoami(fake.clone(), &[], Some(cache_dir)).await;
        assert_eq!(out.code, 0, "run {run}: {}", out.stderr);
        let who: Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(who["UserId"], fake::MI_USER_ID, "run {run}");
        assert!(
            out.stderr
                .contains("http: GET 169.254.169.254/metadata/identity/oauth2/token"),
            "run {run}: {}",
            out.stderr
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
    let stats = fake.stats();
    assert_eq!(
        stats.discovery_requests, 0,
        "an identity endpoint needs no discovery"
    );
}

#[tokio::test]
async fn app_service_identity_on_a_plain_http_endpoint_the_platform_names() {
    let fake = Fake::new(FakeConfig {
        identity_endpoint: APP_SERVICE_ENDPOINT.into(),
        ..FakeConfig::default()
    });
    let out = whoami(
        fake.clone(),
        &[
            ("IDENTITY_ENDPOINT", APP_SERVICE_ENDPOINT),
            ("IDENTITY_HEADER", fake::IDENTITY_HEADER_VALUE),
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let who: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(who["UserId"], fake::MI_USER_ID);
    assert!(
        out.stderr.contains("http: GET 10.0.0.4:8081/msi/token"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(fake::IDENTITY_HEADER_VALUE));
    assert!(!out.stdout.contains(fake::IDENTITY_HEADER_VALUE));

    // A wrong header: refused (exit 3), and the header is never printed.
    let out = whoami(
        fake.clone(),
        &[
            ("IDENTITY_ENDPOINT", APP_SERVICE_ENDPOINT),
            ("IDENTITY_HEADER", "not-the-header-61c0"),
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        !out.stderr.contains("not-the-header-61c0"),
        "{}",
        out.stderr
    );
}
