//! End to end through the real component in wasmtime, with the host sending
//! over real TCP + TLS to the fake on a loopback port, the way the CLI reaches
//! a real org (`--connect-to` + `--cacert`).

mod common;

use std::sync::Arc;

use common::*;
use dataverse_fake::{self as fake, Fake, TlsFakeServer};
use dataverse_host::{CallError, ErrorKind, Network, Session};

async fn connect_tls(server: &TlsFakeServer, connection: &str) -> Result<Session, CallError> {
    let upstream = Arc::new(network_to(server, true));
    runtime().connect(upstream, connection, OPTIONS).await
}

/// Discovery and token requests are retried like any idempotent call; one
/// retry keeps the tests of failures that never heal quick.
fn one_retry() -> dataverse_host::ClientOptions {
    dataverse_host::ClientOptions {
        max_retries: Some(1),
        ..OPTIONS
    }
}

#[tokio::test]
async fn each_transient_entra_failure_over_tls_is_retried_once_and_connect_succeeds() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let upstream = Arc::new(network_to(&server, true));
    each_transient_entra_failure_is_retried_once(&fake, upstream).await;
}

#[tokio::test]
async fn entra_down_for_good_over_tls_ends_connect_naming_the_attempts() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.inject_entra(fake::Fault::HangUp, 10);
    let upstream = Arc::new(network_to(&server, true));
    let error = full_error(
        runtime()
            .connect(upstream, &demo_connection(), one_retry())
            .await,
    );
    let ErrorKind::Transport(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains(fake::LOGIN_HOST), "{message}");
    assert!(message.contains("after 2 attempts"), "{message}");
    assert_eq!(error.call.unwrap().attempts, 2);
    assert_eq!(fake.stats().token_requests, 2);
}

#[tokio::test]
async fn who_am_i_over_tls() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let mut session = connect_tls(&server, &demo_connection()).await.unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::DEMO_USER_ID
    );
    let stats = fake.stats();
    assert_eq!(
        (
            stats.discovery_requests,
            stats.token_requests,
            stats.api_requests
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn sequential_calls_reuse_one_tls_connection_per_host() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let network = Arc::new(network_to(&server, true));
    let mut session = runtime()
        .connect(network.clone(), &demo_connection(), OPTIONS)
        .await
        .unwrap();
    for _ in 0..200 {
        session.who_am_i(None).await.unwrap();
    }
    // A second instance on the same network shares the pool.
    let mut second = runtime()
        .connect(network.clone(), &demo_connection(), OPTIONS)
        .await
        .unwrap();
    second.who_am_i(None).await.unwrap();
    assert_eq!(fake.stats().api_requests, 201);
    assert_eq!(
        fake.stats().tls_connections,
        2,
        "one handshake for the org, one for Entra ID"
    );
    assert_eq!(network.connections_opened(), 2);
}

/// The server read the POST, then hung up on the reused connection without
/// answering. It may have committed it (real Dataverse can), so the host
/// does not resend it: the guest reports one attempt and a transport error,
/// and the next call opens a new connection.
#[tokio::test]
async fn a_post_the_server_hangs_up_on_after_reading_it_is_not_resent() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let mut session = connect_tls(&server, &demo_connection()).await.unwrap();
    session.who_am_i(None).await.unwrap();
    let connections = fake.stats().tls_connections;
    fake.inject(fake::Fault::HangUp, 1);
    let error = full_error(
        session
            .create("accounts", r#"{"name":"Hung up once"}"#, None)
            .await,
    );
    assert!(
        matches!(&error.kind, ErrorKind::Transport(m) if m.contains("closed")),
        "{:?}",
        error.kind
    );
    assert_eq!(error.call.unwrap().attempts, 1, "the guest saw one attempt");
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.host == fake::ORG_HOST)
        .count();
    assert_eq!(posts, 1, "sent once");
    session.who_am_i(None).await.unwrap();
    assert_eq!(fake.stats().tls_connections, connections + 1);
}

#[tokio::test]
async fn paging_over_tls_reads_every_row_once() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let mut session = connect_tls(&server, &demo_connection()).await.unwrap();
    let (names, pages) = all_names(&mut session, &accounts_query(Some(7))).await;
    assert_eq!(pages, 4);
    assert_eq!(names, fake.account_names());
}

#[tokio::test]
async fn a_wrong_secret_over_tls_names_aadsts7000215() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let wrong = format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId={};Secret=not-the-value",
        fake::ORG_HOST,
        fake::DEMO_CLIENT_ID
    );
    let ErrorKind::Authentication(f) = dataverse_error(connect_tls(&server, &wrong).await) else {
        panic!("expected an authentication error")
    };
    assert_eq!(f.code, Some(7000215));
}

#[tokio::test]
async fn no_application_user_over_tls_is_access_denied() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let mut session = connect_tls(&server, &no_user_connection()).await.unwrap();
    let error = dataverse_error(session.who_am_i(None).await);
    assert!(
        matches!(&error, ErrorKind::AccessDenied(f) if f.hint.is_some()),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_transport_error_and_sends_nothing() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let upstream = Arc::new(network_to(&server, false));
    // The default policy: a certificate that is not trusted now will not be
    // on a retry, so the handshake failure ends the call at once.
    let error = full_error(
        runtime()
            .connect(upstream, &demo_connection(), OPTIONS)
            .await,
    );
    let ErrorKind::Transport(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("contoso.crm.dynamics.com"), "{message}");
    assert!(message.contains("certificate"), "{message}");
    assert!(!message.contains("may have"), "nothing was sent: {message}");
    assert_eq!(error.call.unwrap().attempts, 1, "not retried");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let network = network_to(&server, true);
    drop(server);
    // Give the runtime a moment to close the listener.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let upstream = Arc::new(network);
    let error = dataverse_error(
        runtime()
            .connect(upstream, &demo_connection(), one_retry())
            .await,
    );
    assert!(matches!(error, ErrorKind::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn a_self_signed_server_certificate_given_as_cacert_is_trusted() {
    let fake = Fake::demo();
    let server = fake::serve_tls_with(fake.clone(), fake::ServerCert::SelfSigned)
        .await
        .unwrap();
    let mut session = connect_tls(&server, &demo_connection()).await.unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::DEMO_USER_ID
    );
}

#[tokio::test]
async fn a_pinned_certificate_is_not_trusted_for_another_host_name() {
    let fake = Fake::demo();
    let server = fake::serve_tls_with(fake.clone(), fake::ServerCert::SelfSigned)
        .await
        .unwrap();
    // The org is reached under a name the certificate does not cover.
    let port = server.addr.port();
    let network = Network::new(
        vec![format!("::127.0.0.1:{port}").parse().unwrap()],
        Some(&server.ca_pem),
    )
    .unwrap();
    let other =
        "AuthType=ClientSecret;Url=https://fabrikam.crm.dynamics.com/;ClientId=a;ClientSecret=b";
    let error = dataverse_error(
        runtime()
            .connect(Arc::new(network), other, one_retry())
            .await,
    );
    assert!(matches!(error, ErrorKind::Transport(_)), "{error:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn connections_dropped_mid_body_over_tls_are_retried_then_reported() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let upstream = Arc::new(network_to(&server, true));
    let options = dataverse_host::ClientOptions {
        max_retries: Some(1),
        ..OPTIONS
    };
    let mut session = runtime()
        .connect(upstream, &demo_connection(), options)
        .await
        .unwrap();

    fake.inject(fake::Fault::DropMidBody, 1);
    let who = session.who_am_i(None).await.unwrap();
    assert_eq!(who.call.attempts, 2, "one drop, then success");

    fake.inject(fake::Fault::DropMidBody, 5);
    let error = full_error(session.who_am_i(None).await);
    let ErrorKind::Transport(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("after 2 attempts"), "{message}");
}

#[tokio::test]
async fn a_create_cut_off_mid_answer_over_tls_says_the_write_may_have_happened() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let mut session = connect_tls(&server, &demo_connection()).await.unwrap();
    fake.inject(fake::Fault::DropMidBody, 1);
    let error = full_error(
        session
            .create("accounts", r#"{"name":"Written before the drop"}"#, None)
            .await,
    );
    let ErrorKind::Transport(message) = &error.kind else {
        panic!("{error:?}")
    };
    let id = error.call.unwrap().client_request_id;
    assert!(message.contains("the write may have happened"), "{message}");
    assert!(message.contains(&id), "{message}");
    assert_eq!(
        fake.account_names().last().map(String::as_str),
        Some("Written before the drop")
    );
}

#[tokio::test]
async fn an_html_page_from_the_token_endpoint_over_tls_is_an_authentication_error() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.inject_entra(fake::Fault::Status(504), 10);
    let upstream = Arc::new(network_to(&server, true));
    let error = full_error(
        runtime()
            .connect(upstream, &demo_connection(), one_retry())
            .await,
    );
    let ErrorKind::Authentication(failure) = &error.kind else {
        panic!("{error:?}")
    };
    assert_eq!(
        (failure.status, failure.error.as_str()),
        (504, "unreadable_response")
    );
    assert_eq!(error.call.unwrap().attempts, 2);
}
