//! The network through an HTTP proxy, end to end: the real component runs
//! WhoAmI over loopback TLS to the fake, through a small CONNECT proxy on
//! 127.0.0.1 that records what it was asked; NO_PROXY bypasses it; a 407
//! reaches the caller naming the proxy but never its password; plain http
//! to loopback goes through a loopback proxy only.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dataverse_fake::proxy::{Answer, TestProxy};
use dataverse_fake::{self as fake, Fake};
use dataverse_host::session::DEFAULT_CLIENT_OPTIONS;
use dataverse_host::{
    CallError, ClientOptions, ConnectTo, ErrorKind, Network, ProxyConfig, Session,
};
use http_body_util::BodyExt;

/// Every test is over in seconds; this only stops a broken one hanging.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// "alice:s3cr@t", the credentials of [`PROXY_USERINFO`], as Basic.
const ALICE_BASIC: &str = "Basic YWxpY2U6czNjckB0";
const PROXY_USERINFO: &str = "alice:s3cr%40t";

mod common;
use common::runtime;

/// A `ProxyConfig` read from these variables only: the test never touches
/// the process environment.
fn proxy_config(vars: &[(&str, String)]) -> ProxyConfig {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    ProxyConfig::from_env(|name| vars.get(name).cloned()).expect("valid proxy variables")
}

/// `HOST:443:127.0.0.1:PORT` for each host.
fn connect_to(hosts: &[&str], port: u16) -> Vec<ConnectTo> {
    hosts
        .iter()
        .map(|host| {
            format!("{host}:443:127.0.0.1:{port}")
                .parse()
                .expect("a valid rule")
        })
        .collect()
}

async fn who_am_i(network: Arc<Network>, options: ClientOptions) -> Result<Session, CallError> {
    let mut session = runtime()
        .connect(network, &fake::demo_connection_string(), options)
        .await?;
    let me = session.who_am_i(None).await?;
    assert_eq!(me.user_id, fake::DEMO_USER_ID);
    Ok(session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_tunnels_through_the_proxy_to_the_login_and_org_hosts() {
    tokio::time::timeout(TEST_LIMIT, async {
        let fake = Fake::demo();
        let server = fake::serve_tls(fake.clone()).await.expect("the TLS fake");
        let proxy = TestProxy::start(Answer::Tunnel(server.addr)).await;
        // No --connect-to rule: without the proxy these names would not
        // even resolve to the fake.
        let network = Arc::new(
            Network::new(vec![], Some(&server.ca_pem))
                .expect("network")
                .with_proxy(proxy_config(&[(
                    "HTTPS_PROXY",
                    proxy.url(Some(PROXY_USERINFO)),
                )])),
        );
        let mut session = who_am_i(network.clone(), DEFAULT_CLIENT_OPTIONS)
            .await
            .expect("WhoAmI through the proxy");

        let seen = proxy.seen();
        let targets: BTreeSet<&str> = seen.iter().map(|s| s.request_line.as_str()).collect();
        assert_eq!(
            targets,
            BTreeSet::from([
                "CONNECT contoso.crm.dynamics.com:443 HTTP/1.1",
                "CONNECT login.microsoftonline.com:443 HTTP/1.1",
            ]),
            "{seen:?}"
        );
        assert!(
            seen.iter()
                .all(|s| s.authorization.as_deref() == Some(ALICE_BASIC)),
            "every CONNECT carries the decoded credentials: {seen:?}"
        );
        assert_eq!(network.connections_opened(), seen.len() as u64);
        assert_eq!(
            fake.stats().tls_connections,
            seen.len(),
            "every TLS connection the fake accepted came through the proxy"
        );

        // The tunnels are pooled like direct connections: no new CONNECT.
        session.who_am_i(None).await.expect("WhoAmI again");
        assert_eq!(proxy.seen().len(), seen.len());
    })
    .await
    .expect("within the test limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_in_no_proxy_connect_directly_and_the_proxy_sees_nothing() {
    tokio::time::timeout(TEST_LIMIT, async {
        let fake = Fake::demo();
        let server = fake::serve_tls(fake.clone()).await.expect("the TLS fake");
        let proxy = TestProxy::start(Answer::Tunnel(server.addr)).await;
        let rules = connect_to(&[fake::ORG_HOST, fake::LOGIN_HOST], server.addr.port());
        let network = Arc::new(
            Network::new(rules, Some(&server.ca_pem))
                .expect("network")
                .with_proxy(proxy_config(&[
                    ("https_proxy", proxy.url(None)),
                    // A host:port entry and a domain with a leading dot.
                    (
                        "NO_PROXY",
                        "contoso.crm.dynamics.com:443, .microsoftonline.com".into(),
                    ),
                ])),
        );
        who_am_i(network.clone(), DEFAULT_CLIENT_OPTIONS)
            .await
            .expect("WhoAmI directly");
        assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
        assert!(network.connections_opened() >= 1);
        assert_eq!(
            fake.stats().tls_connections as u64,
            network.connections_opened()
        );
    })
    .await
    .expect("within the test limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_connect_to_the_connect_target_is_the_rewritten_host_as_in_curl() {
    tokio::time::timeout(TEST_LIMIT, async {
        let fake = Fake::demo();
        let server = fake::serve_tls(fake.clone()).await.expect("the TLS fake");
        let proxy = TestProxy::start(Answer::Tunnel(server.addr)).await;
        let port = server.addr.port();
        let network = Arc::new(
            Network::new(connect_to(&[fake::ORG_HOST], port), Some(&server.ca_pem))
                .expect("network")
                .with_proxy(proxy_config(&[("HTTPS_PROXY", proxy.url(None))])),
        );
        // TLS still authenticates contoso.crm.dynamics.com through the tunnel.
        who_am_i(network, DEFAULT_CLIENT_OPTIONS)
            .await
            .expect("WhoAmI through the proxy");
        let targets: BTreeSet<String> = proxy.seen().into_iter().map(|s| s.request_line).collect();
        assert_eq!(
            targets,
            BTreeSet::from([
                format!("CONNECT 127.0.0.1:{port} HTTP/1.1"),
                "CONNECT login.microsoftonline.com:443 HTTP/1.1".to_string(),
            ])
        );
    })
    .await
    .expect("within the test limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_answering_407_fails_the_call_naming_the_proxy_and_status_never_the_password() {
    const PASSWORD: &str = "Pr0xy-Pa55word";
    tokio::time::timeout(TEST_LIMIT, async {
        let proxy = TestProxy::start(Answer::Refuse).await;
        let network = Arc::new(Network::new(vec![], None).expect("network").with_proxy(
            proxy_config(&[("HTTPS_PROXY", proxy.url(Some(&format!("alice:{PASSWORD}"))))]),
        ));
        // No retry: one CONNECT, one refusal.
        let options = ClientOptions {
            max_retries: Some(0),
            ..DEFAULT_CLIENT_OPTIONS
        };
        let error = who_am_i(network, options)
            .await
            .err()
            .expect("the proxy refuses");

        let seen = proxy.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(
            seen[0].authorization.is_some(),
            "the proxy was offered credentials"
        );
        let target = seen[0]
            .request_line
            .strip_prefix("CONNECT ")
            .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
            .expect("a CONNECT request");

        // Through the component the refusal is a transport error whose text
        // is the host's `HostError::ProxyRefused`.
        assert!(
            matches!(error.kind(), Some(ErrorKind::Transport(_))),
            "{error:?}"
        );
        let (display, debug) = (error.to_string(), format!("{error:?}"));
        let refusal = format!(
            "proxy http://{} refused CONNECT to {target}: 407 Proxy Authentication Required",
            proxy.addr
        );
        assert!(display.starts_with("transport: "), "{display}");
        assert!(display.contains(&refusal), "{display}");
        assert!(
            !display.contains("InternalError"),
            "the host's words, not Debug: {display}"
        );
        for text in [&display, &debug] {
            assert!(!text.contains(PASSWORD), "{text}");
            assert!(!text.contains("alice"), "{text}");
        }
    })
    .await
    .expect("within the test limit");
}

/// `GET url` straight through `network`; the status and body.
async fn get(network: &Arc<Network>, url: &str) -> (u16, String) {
    let request = http::Request::get(url)
        .body(Bytes::new())
        .expect("a request");
    let response = network
        .send(request, dataverse_host::upstream::RequestOptions::default())
        .await
        .expect("a response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn plain_http_to_loopback_goes_through_a_loopback_proxy_in_absolute_form() {
    tokio::time::timeout(TEST_LIMIT, async {
        let proxy = TestProxy::start(Answer::Plain).await;
        let network = Arc::new(Network::new(vec![], None).expect("network").with_proxy(
            proxy_config(&[("http_proxy", proxy.url(Some(PROXY_USERINFO)))]),
        ));
        // Port 9 (discard): nothing listens there; only the proxy answers.
        let (status, body) = get(&network, "http://127.0.0.1:9/ping?x=1").await;
        assert_eq!((status, body.as_str()), (200, "answered"));
        let seen = proxy.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].request_line,
            "GET http://127.0.0.1:9/ping?x=1 HTTP/1.1"
        );
        assert_eq!(seen[0].authorization.as_deref(), Some(ALICE_BASIC));
    })
    .await
    .expect("within the test limit");
}

#[tokio::test]
async fn plain_http_to_loopback_never_goes_to_a_proxy_on_another_machine() {
    tokio::time::timeout(TEST_LIMIT, async {
        // The "origin" is a plain server on loopback; the proxy's name does
        // not even resolve, so using it would fail the request.
        let origin = TestProxy::start(Answer::Plain).await;
        let network = Arc::new(Network::new(vec![], None).expect("network").with_proxy(
            proxy_config(&[(
                "HTTP_PROXY",
                format!("http://{PROXY_USERINFO}@proxy.invalid:3128"),
            )]),
        ));
        let (status, _) = get(&network, &format!("http://{}/ping", origin.addr)).await;
        assert_eq!(status, 200);
        let seen = origin.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].request_line, "GET /ping HTTP/1.1",
            "origin form: direct"
        );
        assert_eq!(
            seen[0].authorization, None,
            "no proxy credentials to an origin"
        );
    })
    .await
    .expect("within the test limit");
}
