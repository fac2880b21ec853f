//! `host-test doctor` against the fake: for each way a server-to-server setup
//! breaks, the step that names it, the fix, and the exit code the other
//! commands would give — and never a secret.

use std::time::{Duration, SystemTime};

use dataverse_fake::{self as fake, Fake, FakeConfig, TlsFakeServer};
use serde_json::Value;

mod common;
use common::*;

const WRONG_SECRET: &str = "Wr0ng~Secret_Value-NotReal0000000000000000";

struct Diagnosis {
    run: Run,
    steps: Vec<Value>,
}

impl Diagnosis {
    /// The step that failed, and every step after it skipped.
    fn failed(&self) -> &Value {
        let index = self
            .steps
            .iter()
            .position(|s| s["outcome"] == "failed")
            .unwrap_or_else(|| panic!("no step failed: {:#?}", self.steps));
        for later in &self.steps[index + 1..] {
            assert_eq!(later["outcome"], "skipped", "{later}");
        }
        &self.steps[index]
    }

    fn step(&self, name: &str) -> &Value {
        self.steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name}"))
    }
}

fn diagnosis(run: Run) -> Diagnosis {
    let report: Value = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let steps = report["steps"].as_array().unwrap().clone();
    let names: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "settings",
            "dns",
            "connect",
            "tenant discovery",
            "authority",
            "clock",
            "token",
            "application user",
            "read privilege",
            "throttling"
        ],
        "the whole chain, in order"
    );
    assert_eq!(report["ok"], run.code == 0);
    Diagnosis { run, steps }
}

async fn doctor(server: &TlsFakeServer, connection: &str, args: &[&str]) -> Diagnosis {
    let mut words = vec!["--json", "doctor"];
    words.extend_from_slice(args);
    let run = run_against(server, Some(connection), &words).await;
    for secret in [
        fake::DEMO_CLIENT_SECRET,
        fake::NO_USER_CLIENT_SECRET,
        WRONG_SECRET,
    ] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed"
        );
    }
    diagnosis(run)
}

/// The demo app's doctor with the org sent to a loopback port and no
/// `--cacert`: the fake's certificate is not trusted there.
async fn doctor_without_ca(port: u16) -> Diagnosis {
    let mut command = cli();
    command
        .args([
            "--connect-to",
            &format!("{}:443:127.0.0.1:{port}", fake::ORG_HOST),
        ])
        .args(["--json", "doctor"])
        .env("DATAVERSE_CONNECTION", fake::demo_connection_string());
    let run = tokio::task::spawn_blocking(move || command.output().unwrap());
    diagnosis(finish(run.await.unwrap()))
}

fn connection(client_id: &str, secret: &str) -> String {
    format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId={client_id};ClientSecret={secret}",
        fake::ORG_HOST
    )
}

/// `step` failed with exit `code`, its detail naming `detail` and its fix
/// saying `fix`.
fn assert_fails(d: &Diagnosis, step: &str, code: i32, detail: &str, fix: &str) {
    let failed = d.failed();
    assert_eq!(failed["step"], step, "{:#?}", d.steps);
    let found = failed["detail"].as_str().unwrap();
    assert!(found.contains(detail), "detail of {step}: {found}");
    assert_eq!(d.run.code, code, "{}", d.run.stderr);
    let text = failed["fix"].as_str().unwrap();
    assert!(text.contains(fix), "fix of {step}: {text}");
    // stderr: the usual one JSON error object, naming the step.
    let error: Value = serde_json::from_str(d.run.stderr.trim()).expect(&d.run.stderr);
    assert_eq!(error["exit_code"], code);
    assert!(error["message"].as_str().unwrap().contains(step), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_app_passes_every_step_with_timings() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let d = doctor(
        &server,
        &fake::demo_connection_string(),
        &["--table", "accounts"],
    )
    .await;
    assert_eq!(d.run.code, 0, "{}", d.run.stderr);
    for step in &d.steps {
        assert_eq!(step["outcome"], "ok", "{step}");
        assert!(step["ms"].as_f64().unwrap() >= 0.0);
    }
    assert!(
        d.step("tenant discovery")["detail"]
            .as_str()
            .unwrap()
            .contains(fake::DEMO_TENANT_ID)
    );
    assert!(
        d.step("application user")["detail"]
            .as_str()
            .unwrap()
            .contains(fake::DEMO_USER_ID)
    );

    // The text report says the same, one line per step.
    let text = run_against(&server, Some(&fake::demo_connection_string()), &["doctor"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("ok    settings"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("skip  read privilege"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_url_fails_at_dns_or_connect() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    // A typo in the host: nothing resolves under .invalid (RFC 6761).
    let typo = connection(fake::DEMO_CLIENT_ID, fake::DEMO_CLIENT_SECRET)
        .replace(fake::ORG_HOST, "contoso.crm.dynamics.invalid");
    let d = doctor(&server, &typo, &[]).await;
    assert_fails(&d, "dns", 5, "cannot resolve", "typo");
    // A host that resolves but where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let d = doctor_without_ca(port).await;
    assert_fails(&d, "connect", 5, "cannot reach", "firewall");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_tls_certificate_names_the_corporate_ca_fix() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let d = doctor_without_ca(server.addr.port()).await;
    assert_fails(&d, "connect", 5, "TLS", "--cacert");
}

#[tokio::test(flavor = "multi_thread")]
async fn secret_problems_are_told_apart() {
    let mut config = FakeConfig::default();
    config.apps[1].secret_expired = true;
    let fake = Fake::new(config);
    let server = fake::serve_tls(fake.clone()).await.unwrap();

    let wrong = doctor(
        &server,
        &connection(fake::DEMO_CLIENT_ID, WRONG_SECRET),
        &[],
    )
    .await;
    assert_fails(
        &wrong,
        "token",
        3,
        "AADSTS7000215",
        "the client secret is wrong",
    );

    // The secret's ID is a GUID; its value never is.
    let id = doctor(
        &server,
        &connection(fake::DEMO_CLIENT_ID, "5f0c3a1e-8b2d-4c7f-9e61-2a4b6c8d0e13"),
        &[],
    )
    .await;
    assert_fails(&id, "token", 3, "AADSTS7000215", "secret's ID");

    let expired = doctor(
        &server,
        &connection(fake::NO_USER_CLIENT_ID, fake::NO_USER_CLIENT_SECRET),
        &[],
    )
    .await;
    assert_fails(&expired, "token", 3, "AADSTS7000222", "has expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unregistered_certificate_says_to_upload_it() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let now = SystemTime::now();
    let other = fake::certs::generate(
        "not registered",
        now - Duration::from_secs(3600),
        now + Duration::from_secs(86_400),
    );
    let store = std::env::temp_dir().join(format!("host-test-doctor-store-{}", std::process::id()));
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("other.crt"), &other.cert_pem).unwrap();
    std::fs::write(store.join("other.key"), &other.key_pkcs8_pem).unwrap();
    let connection = fake::demo_certificate_connection_string(&other.thumbprint);
    let store_arg = store.to_str().unwrap().to_string();
    let d = doctor(&server, &connection, &["--cert-store", &store_arg]).await;
    let _ = std::fs::remove_dir_all(&store);
    assert_fails(&d, "token", 3, "AADSTS700027", "not registered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_application_user_is_named_after_a_good_token() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let d = doctor(
        &server,
        &connection(fake::NO_USER_CLIENT_ID, fake::NO_USER_CLIENT_SECRET),
        &[],
    )
    .await;
    assert_eq!(d.step("token")["outcome"], "ok");
    assert_fails(&d, "application user", 4, "0x80072560", "Application users");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_read_privilege_names_the_privilege_and_the_table() {
    let mut config = FakeConfig::default();
    config.apps[0].denied_reads = vec!["accounts".into()];
    let fake = Fake::new(config);
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let d = doctor(
        &server,
        &fake::demo_connection_string(),
        &["--table", "accounts"],
    )
    .await;
    assert_eq!(d.step("application user")["outcome"], "ok");
    assert_fails(&d, "read privilege", 4, "0x80040220", "prvReadAccount");
    // Another table the role can read passes.
    let d = doctor(
        &server,
        &fake::demo_connection_string(),
        &["--table", "contacts"],
    )
    .await;
    assert_eq!(d.run.code, 0, "{}", d.run.stderr);
}
