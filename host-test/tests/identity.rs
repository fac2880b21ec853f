//! The secretless credentials through the native CLI: the platform's
//! variables reach the component (and only the instance that holds the
//! credential), IMDS and App Service's endpoint are reached over plain http
//! through `--connect-to`, and the authority cache stays out of their way.
//! A certificate in Key Vault runs on the signing component, signed by the
//! CLI's Key Vault signer as the machine's managed identity.

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

/// The CLI with the demo Key Vault certificate: the fake on TLS for the
/// org, Entra ID and the vault, on plain HTTP for IMDS (the signer's
/// managed identity).
/// `cache`: where the compiled components go (`DATAVERSE_CACHE_DIR`).
async fn key_vault_run(
    fake: std::sync::Arc<Fake>,
    connection: &str,
    cache: &std::path::Path,
    args: &[&str],
) -> Run {
    let tls = fake::serve_tls(fake.clone()).await.unwrap();
    let plain = fake::serve_http(move |_| fake).await.unwrap();
    let imds = format!("{}:80:127.0.0.1:{}", fake::IMDS_HOST, plain.addr.port());
    let vault = format!("{}:443:127.0.0.1:{}", fake::KEY_VAULT_HOST, tls.addr.port());
    let mut words = vec![
        "--connect-to",
        imds.as_str(),
        "--connect-to",
        vault.as_str(),
    ];
    words.extend_from_slice(args);
    let (mut command, dir) = command_against(&tls, Some(connection), &words);
    command.env("DATAVERSE_CACHE_DIR", cache);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    finish(output)
}

/// The compiled components in `cache`.
fn compiled(cache: &std::path::Path) -> usize {
    std::fs::read_dir(cache).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
            .count()
    })
}

fn fresh_cache(name: &str) -> std::path::PathBuf {
    let cache = std::env::temp_dir().join(format!("host-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    cache
}

#[tokio::test]
async fn a_key_vault_certificate_runs_on_the_signing_component_and_the_cli_signs() {
    let cache = fresh_cache("kv-cache");
    // A client secret caches the plain component only (built into the
    // binary precompiled).
    let out = key_vault_run(
        Fake::demo(),
        &fake::demo_connection_string(),
        &cache,
        &["whoami"],
    )
    .await;
    assert_eq!((out.code, compiled(&cache)), (0, 1), "{}", out.stderr);
    let fake = Fake::demo();
    let connection = fake::demo_key_vault_connection_string();
    let out = key_vault_run(
        fake.clone(),
        &connection,
        &cache,
        &["-v", "whoami", "--json"],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        compiled(&cache),
        2,
        "the signing component, compiled when needed"
    );
    let _ = std::fs::remove_dir_all(&cache);
    let who: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(who["UserId"], fake::CERT_USER_ID);
    let requests = fake.requests();
    let to_vault: Vec<&str> = requests
        .iter()
        .filter(|r| r.host == fake::KEY_VAULT_HOST)
        .map(|r| r.method.as_str())
        .collect();
    assert_eq!(
        to_vault,
        ["GET", "POST"],
        "the certificate, then one signature"
    );
    // -v shows the guest's exchanges: never the vault (the host signs).
    assert!(
        out.stderr.contains("http: POST") && !out.stderr.contains(fake::KEY_VAULT_HOST),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn doctor_walks_a_key_vault_certificate_to_its_token() {
    let fake = Fake::demo();
    let cache = fresh_cache("kv-doctor");
    let connection = fake::demo_key_vault_connection_string();
    let out = key_vault_run(fake.clone(), &connection, &cache, &["--json", "doctor"]).await;
    let _ = std::fs::remove_dir_all(&cache);
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["ok"], true, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains(fake::KEY_VAULT_HOST),
        "the settings step names the key: {}",
        out.stdout
    );
    assert_eq!(fake.stats().token_requests, 1, "{}", out.stdout);
}
