//! Certificate credentials end to end: the host maps a certificate store
//! into the real component, which signs a client assertion; the fake Entra ID
//! verifies it with code independent of the signer.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use common::*;
use dataverse_fake::{self as fake, Fake, FakeApp, FakeConfig};
use dataverse_host::session::{AssertionAlgorithm, ClientOptions};
use dataverse_host::{CallError, ErrorKind, Session};

/// A fresh store directory holding `files`; removed when dropped.
struct Store(PathBuf);

impl Store {
    fn new(files: &[(&str, &[u8])]) -> Store {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("dataverse-cert-store-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        Store(dir)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn connect_cert(
    fake: &Arc<Fake>,
    store: &Store,
    connection: &str,
    options: ClientOptions,
) -> Result<Session, CallError> {
    runtime()
        .connect_with(fake.clone(), Some(&store.0), connection, options)
        .await
}

fn demo_cert() -> &'static fake::certs::TestCertificate {
    fake::certs::demo_certificate()
}

fn cert_connection() -> String {
    fake::demo_certificate_connection_string(&demo_cert().thumbprint)
}

#[tokio::test]
async fn pem_certificate_and_pkcs8_key_side_by_side_authenticate() {
    let fake = Fake::demo();
    let cert = demo_cert();
    let store = Store::new(&[
        ("app.crt", cert.cert_pem.as_bytes()),
        ("app.key", cert.key_pkcs8_pem.as_bytes()),
    ]);
    let mut session = connect_cert(&fake, &store, &cert_connection(), OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::CERT_USER_ID
    );
    let verified = fake.verified_assertions();
    assert_eq!(verified.len(), 1);
    let a = &verified[0];
    assert_eq!(
        (a.alg.as_str(), a.thumbprint_header.as_str(), a.had_x5c),
        ("RS256", "x5t", false)
    );
    assert_eq!(
        a.aud,
        format!(
            "https://{}/{}/oauth2/v2.0/token",
            fake::LOGIN_HOST,
            fake::DEMO_TENANT_ID
        )
    );
    assert_eq!(a.lifetime_secs, 600);
}

#[tokio::test]
async fn a_combined_pem_with_a_pkcs1_key_authenticates() {
    let fake = Fake::demo();
    let cert = demo_cert();
    let combined = format!("{}\n{}", cert.key_pkcs1_pem, cert.cert_pem);
    let store = Store::new(&[
        ("app.pem", combined.as_bytes()),
        ("notes.txt", b"not a certificate"),
    ]);
    let mut session = connect_cert(&fake, &store, &cert_connection(), OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::CERT_USER_ID
    );
}

#[tokio::test]
async fn a_pfx_opened_with_its_password_authenticates_and_a_wrong_password_is_named() {
    let fake = Fake::demo();
    let cert = demo_cert();
    let store = Store::new(&[("app.pfx", &cert.pfx)]);
    let with_password = format!(
        "{};CertificatePassword={}",
        cert_connection(),
        cert.pfx_password
    );
    let mut session = connect_cert(&fake, &store, &with_password, OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::CERT_USER_ID
    );

    let wrong = format!("{};CertificatePassword=Wrong-Passw0rd", cert_connection());
    let error = dataverse_error(connect_cert(&fake, &store, &wrong, OPTIONS).await);
    let ErrorKind::InvalidSettings(message) = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("app.pfx") && message.to_lowercase().contains("password"),
        "{message}"
    );
    assert!(!message.contains("Wrong-Passw0rd"));
}

#[tokio::test]
async fn ps256_with_the_sha256_thumbprint_and_the_chain_are_options() {
    let fake = Fake::demo();
    let cert = demo_cert();
    let store = Store::new(&[
        ("app.crt", cert.cert_pem.as_bytes()),
        ("app.key", cert.key_pkcs8_pem.as_bytes()),
    ]);
    let options = ClientOptions {
        assertion_algorithm: Some(AssertionAlgorithm::Ps256),
        send_certificate_chain: Some(true),
        ..OPTIONS
    };
    let mut session = connect_cert(&fake, &store, &cert_connection(), options)
        .await
        .unwrap();
    session.who_am_i(None).await.unwrap();
    let a = &fake.verified_assertions()[0];
    assert_eq!(
        (a.alg.as_str(), a.thumbprint_header.as_str(), a.had_x5c),
        ("PS256", "x5t#S256", true)
    );
}

#[tokio::test]
async fn an_unregistered_certificate_is_refused_with_aadsts700027() {
    let fake = Fake::demo();
    let now = SystemTime::now();
    let other = fake::certs::generate(
        "not registered",
        now - Duration::from_secs(3600),
        now + Duration::from_secs(86_400),
    );
    let store = Store::new(&[
        ("other.crt", other.cert_pem.as_bytes()),
        ("other.key", other.key_pkcs8_pem.as_bytes()),
    ]);
    let connection = fake::demo_certificate_connection_string(&other.thumbprint);
    let ErrorKind::Authentication(failure) =
        dataverse_error(connect_cert(&fake, &store, &connection, OPTIONS).await)
    else {
        panic!("expected an authentication error")
    };
    assert_eq!(failure.code, Some(700027));
    assert!(failure.hint.unwrap().contains("certificate"));
}

#[tokio::test]
async fn store_problems_are_clear_settings_errors_and_nothing_is_sent() {
    let fake = Fake::demo();
    let cert = demo_cert();
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);

    let missing = Store::new(&[
        ("app.crt", cert.cert_pem.as_bytes()),
        ("app.key", cert.key_pkcs8_pem.as_bytes()),
    ]);
    let wrong = fake::demo_certificate_connection_string(&"0A".repeat(20));
    let ErrorKind::InvalidSettings(message) =
        dataverse_error(connect_cert(&fake, &missing, &wrong, OPTIONS).await)
    else {
        panic!("expected invalid settings")
    };
    assert!(
        message.contains(&cert.thumbprint),
        "lists the thumbprints found: {message}"
    );

    let expired = fake::certs::generate("expired", now - 30 * day, now - day);
    let store = Store::new(&[
        ("old.crt", expired.cert_pem.as_bytes()),
        ("old.key", expired.key_pkcs8_pem.as_bytes()),
    ]);
    let connection = fake::demo_certificate_connection_string(&expired.thumbprint);
    let ErrorKind::InvalidSettings(message) =
        dataverse_error(connect_cert(&fake, &store, &connection, OPTIONS).await)
    else {
        panic!("expected invalid settings")
    };
    assert!(
        message.contains("expired") || message.contains("valid"),
        "{message}"
    );
    assert!(
        message.contains('T') && message.contains('Z'),
        "gives the dates: {message}"
    );

    let other = fake::certs::generate("other key", now - day, now + day);
    let mismatched = Store::new(&[
        ("app.crt", cert.cert_pem.as_bytes()),
        ("app.key", other.key_pkcs8_pem.as_bytes()),
    ]);
    let error =
        dataverse_error(connect_cert(&fake, &mismatched, &cert_connection(), OPTIONS).await);
    assert!(matches!(error, ErrorKind::InvalidSettings(_)), "{error:?}");

    let no_store = dataverse_error(connect(&fake, &cert_connection()).await);
    let ErrorKind::InvalidSettings(message) = &no_store else {
        panic!("{no_store:?}")
    };
    assert!(message.contains("certificate store"), "{message}");

    assert!(fake.requests().is_empty(), "no request left the component");
}

#[tokio::test]
async fn an_expired_secret_is_aadsts7000222_with_a_hint() {
    let mut config = FakeConfig::default();
    let app: &mut FakeApp = config
        .apps
        .iter_mut()
        .find(|a| a.client_id == fake::DEMO_CLIENT_ID)
        .unwrap();
    app.secret_expired = true;
    let fake = Fake::new(config);
    let ErrorKind::Authentication(failure) =
        dataverse_error(connect(&fake, &demo_connection()).await)
    else {
        panic!("expected an authentication error")
    };
    assert_eq!(failure.code, Some(7000222));
    assert!(failure.hint.unwrap().contains("expired"));
}

#[tokio::test]
async fn a_revoked_token_is_reacquired_exactly_once() {
    let fake = Fake::demo();
    let cert = demo_cert();
    let store = Store::new(&[
        ("app.crt", cert.cert_pem.as_bytes()),
        ("app.key", cert.key_pkcs8_pem.as_bytes()),
    ]);
    let mut session = connect_cert(&fake, &store, &cert_connection(), OPTIONS)
        .await
        .unwrap();
    session.who_am_i(None).await.unwrap();
    fake.revoke_tokens();
    let who = session.who_am_i(None).await.unwrap();
    assert_eq!(who.call.attempts, 2);
    assert_eq!(fake.token_requests_for(fake::CERT_CLIENT_ID), 2);
}

#[tokio::test]
async fn a_hundred_calls_need_one_token_request() {
    let fake = Fake::demo();
    let cert = demo_cert();
    let store = Store::new(&[
        ("app.crt", cert.cert_pem.as_bytes()),
        ("app.key", cert.key_pkcs8_pem.as_bytes()),
    ]);
    let mut session = connect_cert(&fake, &store, &cert_connection(), OPTIONS)
        .await
        .unwrap();
    for _ in 0..100 {
        session.who_am_i(None).await.unwrap();
    }
    assert_eq!(fake.token_requests_for(fake::CERT_CLIENT_ID), 1);
    assert_eq!(fake.verified_assertions().len(), 1);
}

#[tokio::test]
async fn refresh_in_makes_the_client_renew_early() {
    let fake = Fake::demo();
    fake.set_refresh_in(Some(0));
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    assert_eq!(fake.token_requests_for(fake::DEMO_CLIENT_ID), 1);
    session.who_am_i(None).await.unwrap();
    assert_eq!(
        fake.token_requests_for(fake::DEMO_CLIENT_ID),
        2,
        "renewed after refresh_in"
    );
}
