//! Shared helpers for the end-to-end tests: the real component, in wasmtime,
//! against the fake Entra ID + Dataverse.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use dataverse_fake::{self as fake, Fake, TlsFakeServer};
use dataverse_host::session::ClientOptions;
use dataverse_host::{CallError, DataverseError, ErrorKind, Network, Query, Runtime, Session};

pub const OPTIONS: ClientOptions = dataverse_host::session::DEFAULT_CLIENT_OPTIONS;

/// One runtime per test binary: loading is cheap, but there is no need to repeat it.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::from_wasm(dataverse_artifacts::CLIENT).expect("the component loads")
    })
}

pub fn demo_connection() -> String {
    fake::demo_connection_string()
}

pub fn no_user_connection() -> String {
    format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId={};ClientSecret={}",
        fake::ORG_HOST,
        fake::NO_USER_CLIENT_ID,
        fake::NO_USER_CLIENT_SECRET
    )
}

pub async fn connect(fake: &Arc<Fake>, connection: &str) -> Result<Session, CallError> {
    runtime().connect(fake.clone(), connection, OPTIONS).await
}

/// The component's typed error, failing the test on a host error.
pub fn dataverse_error<T>(result: Result<T, CallError>) -> ErrorKind {
    full_error(result).kind
}

/// The component's whole error record (kind and call info).
pub fn full_error<T>(result: Result<T, CallError>) -> DataverseError {
    match result {
        Err(CallError::Dataverse(e)) => e,
        Err(CallError::Host(e)) => panic!("expected a Dataverse error, got a host error: {e:?}"),
        Err(CallError::Trapped(trap)) => {
            panic!("expected a Dataverse error, the guest trapped: {trap}")
        }
        Ok(_) => panic!("expected a Dataverse error, the call succeeded"),
    }
}

pub fn accounts_query(page_size: Option<u32>) -> Query {
    Query {
        page_size,
        ..Query::new("accounts").select(["name"])
    }
}

/// Reads every page of `query` and returns the `name` of each row in order.
pub async fn all_names(session: &mut Session, query: &Query) -> (Vec<String>, usize) {
    let mut page = session
        .retrieve_multiple(query, None)
        .await
        .expect("first page");
    let mut names = Vec::new();
    let mut pages = 1;
    loop {
        let rows: Vec<serde_json::Value> = serde_json::from_str(&page.rows).expect("rows are JSON");
        assert_eq!(rows.len() as u32, page.row_count);
        names.extend(
            rows.iter()
                .map(|r| r["name"].as_str().expect("name").to_string()),
        );
        match page.next_link.take() {
            Some(link) => {
                page = session
                    .next_page(&link, query.page_size, None)
                    .await
                    .expect("next page");
                pages += 1;
            }
            None => return (names, pages),
        }
    }
}

/// A network upstream that sends both Microsoft hosts to the TLS fake, as
/// the CLI's `--connect-to` does, trusting its CA when `trust_ca`.
pub fn network_to(server: &TlsFakeServer, trust_ca: bool) -> Network {
    let port = server.addr.port();
    let rules = [fake::ORG_HOST, fake::LOGIN_HOST]
        .iter()
        .map(|host| format!("{host}:443:127.0.0.1:{port}").parse().unwrap())
        .collect();
    Network::new(rules, trust_ca.then_some(server.ca_pem.as_str())).unwrap()
}

/// The demo app connected over loopback TLS, and the network it sends on.
pub async fn connect_over_tls(server: &TlsFakeServer) -> (Session, Arc<Network>) {
    let network = Arc::new(network_to(server, true));
    let session = runtime()
        .connect(network.clone(), &demo_connection(), OPTIONS)
        .await
        .unwrap();
    (session, network)
}

/// A 503, a 429 and a hang-up from Entra ID, one at a time, each cost
/// `connect` exactly one retry of the token request, under the same
/// client-request-id, and the session then works.
pub async fn each_transient_entra_failure_is_retried_once(
    fake: &Arc<Fake>,
    upstream: Arc<dyn dataverse_host::Upstream>,
) {
    let faults = [
        fake::Fault::Status(503),
        fake::Fault::Throttle {
            retry_after_secs: 1,
        },
        fake::Fault::HangUp,
    ];
    for fault in faults {
        let before = fake.stats().token_requests;
        fake.inject_entra(fault.clone(), 1);
        let mut session = runtime()
            .connect(upstream.clone(), &demo_connection(), OPTIONS)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        let acquired = session.token_info().await.unwrap().call.unwrap();
        assert_eq!(acquired.attempts, 2, "{fault:?}");
        assert_eq!(fake.stats().token_requests - before, 2, "{fault:?}");
        // The id reported is the one Entra ID saw on both attempts.
        let sent: Vec<_> = fake
            .requests()
            .iter()
            .filter(|r| r.host == fake::LOGIN_HOST)
            .rev()
            .take(2)
            .map(|r| r.header("client-request-id").map(str::to_string))
            .collect();
        let id = Some(acquired.client_request_id);
        assert_eq!(sent, [id.clone(), id], "{fault:?}");
        let me = session.who_am_i(None).await.unwrap();
        assert_eq!(me.user_id, fake::DEMO_USER_ID, "{fault:?}");
    }
}
