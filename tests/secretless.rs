//! Secretless credentials end to end (issue 14): the real component in
//! wasmtime, given the platform's identity variables by the embedding
//! crate, against the fake's managed identity endpoints (IMDS, App
//! Service), its OIDC issuers and GitHub's token endpoint, and its Entra ID
//! checking federated credentials. Every secret (the identity header, the
//! GitHub request token, the federated tokens) is followed: it reaches only
//! its own origin, and never an error, a `Debug` output or the exchange log.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use dataverse_fake::oidc::{self, TokenClaims};
use dataverse_fake::{self as fake, Fake, FakeConfig, RecordedRequest};
use dataverse_host::upstream::Upstream;
use dataverse_host::{
    CallError, ErrorKind, Exchange, IdentityEnvironment, Network, Runtime, Session,
};

const ORG: &str = "https://contoso.crm.dynamics.com/";

/// A runtime whose credential-holding instances get `identity`, and the
/// lines of its exchange log.
fn runtime_with(identity: IdentityEnvironment) -> (Runtime, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = lines.clone();
    let runtime = Runtime::from_wasm(dataverse_artifacts::CLIENT)
        .expect("the component loads")
        .with_identity(identity)
        .with_exchange_log(Arc::new(move |e: &Exchange| {
            log.lock().unwrap().push(e.to_string())
        }));
    (runtime, lines)
}

async fn connect_to(
    runtime: &Runtime,
    upstream: Arc<dyn Upstream>,
    connection: &str,
) -> Result<Session, CallError> {
    runtime.connect(upstream, connection, OPTIONS).await
}

fn env(vars: &[(&str, &str)]) -> IdentityEnvironment {
    vars.iter()
        .fold(IdentityEnvironment::default(), |e, (n, v)| {
            e.with(n, *v).expect("a platform variable")
        })
}

/// Every text of a request: header values, the raw Authorization, the body.
fn texts(request: &RecordedRequest) -> String {
    let mut all: Vec<String> = request.headers.iter().map(|(_, v)| v.clone()).collect();
    all.extend(request.authorization.clone());
    all.push(String::from_utf8_lossy(&request.body).into_owned());
    all.join("\n")
}

/// `secret` went only to `host`, and to it at least once.
fn only_sent_to(fake: &Fake, secret: &str, host: &str) {
    let requests = fake.requests();
    let carrying: Vec<&str> = requests
        .iter()
        .filter(|r| texts(r).contains(secret))
        .map(|r| r.host.as_str())
        .collect();
    assert!(!carrying.is_empty(), "the secret was never sent to {host}");
    assert!(
        carrying.iter().all(|h| *h == host),
        "the secret reached {carrying:?}, not only {host}"
    );
}

/// No line of the exchange log, and no `Debug` of the recorded requests,
/// shows `secret`.
fn never_shown(secret: &str, log: &Mutex<Vec<String>>, fake: &Fake) {
    for line in log.lock().unwrap().iter() {
        assert!(!line.contains(secret), "exchange log: {line}");
    }
    let debug = format!("{:?}", fake.requests());
    assert!(!debug.contains(secret), "the fake's Debug shows a secret");
}

/// A typed error's Display and Debug, for leak checks.
fn shown<T>(result: &Result<T, CallError>) -> String {
    match result {
        Err(e) => format!("{e} {e:?}"),
        Ok(_) => String::new(),
    }
}

/// A fresh directory for token files; removed when dropped.
struct TokenDir(PathBuf);

impl TokenDir {
    fn new() -> TokenDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("dataverse-federated-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TokenDir(dir.canonicalize().unwrap())
    }

    fn file(&self) -> PathBuf {
        self.0.join("azure-identity-token")
    }

    fn write(&self, token: &str) {
        // As the kubelet does: a new file, then renamed over the old one.
        let next = self.0.join(".next-token");
        std::fs::write(&next, token).unwrap();
        std::fs::rename(&next, self.file()).unwrap();
    }
}

impl Drop for TokenDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The AKS variables for the workload app, the token file in `dir`.
fn aks_environment(dir: &TokenDir) -> IdentityEnvironment {
    env(&[
        ("AZURE_CLIENT_ID", fake::WORKLOAD_CLIENT_ID),
        ("AZURE_TENANT_ID", fake::DEMO_TENANT_ID),
        ("AZURE_FEDERATED_TOKEN_FILE", dir.file().to_str().unwrap()),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ])
}

fn authentication(result: Result<Session, CallError>) -> dataverse_host::session::AuthFailure {
    match dataverse_error(result) {
        ErrorKind::Authentication(f) => f,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

// Managed identity.

#[tokio::test]
async fn the_system_assigned_identity_gets_its_token_from_imds_and_calls_who_am_i() {
    let fake = Fake::demo();
    let (runtime, _) = runtime_with(IdentityEnvironment::default());
    let mut session = connect_to(
        &runtime,
        fake.clone(),
        &format!("AuthType=ManagedIdentity;Url={ORG}"),
    )
    .await
    .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::MI_USER_ID
    );
    let info = session.token_info().await.unwrap();
    assert_eq!(
        info.authority,
        "http://169.254.169.254/metadata/identity/oauth2/token"
    );
    assert_eq!(info.client_id, fake::MI_CLIENT_ID);
    assert_eq!(info.scope, "https://contoso.crm.dynamics.com");
    let requests = fake.requests();
    let hosts: Vec<&str> = requests.iter().map(|r| r.host.as_str()).collect();
    assert_eq!(
        hosts,
        [fake::IMDS_HOST, fake::ORG_HOST],
        "no discovery, no Entra ID"
    );
    assert_eq!(requests[0].header("metadata"), Some("true"));
    assert_eq!(
        requests[0].path_and_query,
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://contoso.crm.dynamics.com"
    );
    assert_eq!(
        runtime
            .parse_settings(&format!("AuthType=ManagedIdentity;Url={ORG}"))
            .await
            .unwrap()
            .auth_type,
        dataverse_host::session::AuthType::ManagedIdentity
    );
}

#[tokio::test]
async fn a_user_assigned_identity_is_found_by_client_object_or_resource_id() {
    let fake = Fake::demo();
    let (runtime, _) = runtime_with(IdentityEnvironment::default());
    for (key, value, parameter) in [
        ("ClientId", fake::UAMI_CLIENT_ID, "client_id"),
        ("ObjectId", fake::UAMI_OBJECT_ID, "object_id"),
        ("ResourceId", fake::UAMI_RESOURCE_ID, "msi_res_id"),
    ] {
        let connection = format!("AuthType=ManagedIdentity;Url={ORG};{key}={value}");
        let mut session = connect_to(&runtime, fake.clone(), &connection)
            .await
            .unwrap();
        assert_eq!(
            session.who_am_i(None).await.unwrap().user_id,
            fake::UAMI_USER_ID,
            "{key}"
        );
        let asked = fake
            .requests()
            .into_iter()
            .rfind(|r| r.host == fake::IMDS_HOST)
            .unwrap();
        assert!(
            asked.path_and_query.contains(&format!("&{parameter}=")),
            "{}",
            asked.path_and_query
        );
    }
}

#[tokio::test]
async fn imds_answering_410_while_it_upgrades_is_waited_out() {
    let fake = Fake::demo();
    fake.inject_identity(fake::Fault::Status(410), 1);
    let (runtime, _) = runtime_with(IdentityEnvironment::default());
    let mut session = connect_to(
        &runtime,
        fake.clone(),
        &format!("AuthType=ManagedIdentity;Url={ORG}"),
    )
    .await
    .unwrap();
    let acquired = session.token_info().await.unwrap().call.unwrap();
    assert_eq!(acquired.attempts, 2);
    let statuses: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.host == fake::IMDS_HOST)
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [410, 200]);
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::MI_USER_ID
    );
}

#[tokio::test]
async fn an_identity_imds_does_not_know_is_a_typed_authentication_error_naming_it() {
    let fake = Fake::demo();
    let (runtime, _) = runtime_with(IdentityEnvironment::default());
    let connection =
        format!("AuthType=ManagedIdentity;Url={ORG};ObjectId=00000000-0000-0000-0000-00000000dead");
    let result = connect_to(&runtime, fake.clone(), &connection).await;
    let error = full_error(result);
    let ErrorKind::Authentication(f) = &error.kind else {
        panic!("{error:?}")
    };
    assert_eq!(
        (f.status, f.error.as_str(), f.description.as_str()),
        (400, "invalid_request", "Identity not found")
    );
    assert!(
        f.hint
            .as_deref()
            .unwrap()
            .contains("no user-assigned managed identity with this ObjectId")
    );
    assert_eq!(
        error.call.unwrap().attempts,
        1,
        "a 400 is an answer, not an outage"
    );
}

#[tokio::test]
async fn app_service_sends_its_identity_header_to_its_endpoint_only() {
    let fake = Fake::demo();
    let (runtime, log) = runtime_with(env(&[
        ("IDENTITY_ENDPOINT", fake::IDENTITY_ENDPOINT_URL),
        ("IDENTITY_HEADER", fake::IDENTITY_HEADER_VALUE),
    ]));
    let connection = format!(
        "AuthType=ManagedIdentity;Url={ORG};ClientId={}",
        fake::UAMI_CLIENT_ID
    );
    let mut session = connect_to(&runtime, fake.clone(), &connection)
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::UAMI_USER_ID
    );
    let info = session.token_info().await.unwrap();
    assert_eq!(info.authority, fake::IDENTITY_ENDPOINT_URL);
    let asked = &fake.requests()[0];
    assert_eq!(asked.host, "127.0.0.1");
    assert_eq!(
        asked.path_and_query,
        format!(
            "/msi/token/?api-version=2019-08-01&resource=https://contoso.crm.dynamics.com&client_id={}",
            fake::UAMI_CLIENT_ID
        )
    );
    only_sent_to(&fake, fake::IDENTITY_HEADER_VALUE, "127.0.0.1");
    never_shown(fake::IDENTITY_HEADER_VALUE, &log, &fake);
    assert!(!format!("{info:?}").contains(fake::IDENTITY_HEADER_VALUE));
}

#[tokio::test]
async fn a_refused_identity_header_is_an_authentication_error_that_never_shows_it() {
    let fake = Fake::demo();
    let stale = "0000STALE-HEADER-VALUE-0000";
    let (runtime, log) = runtime_with(env(&[
        ("IDENTITY_ENDPOINT", fake::IDENTITY_ENDPOINT_URL),
        ("IDENTITY_HEADER", stale),
    ]));
    let result = connect_to(
        &runtime,
        fake.clone(),
        &format!("AuthType=ManagedIdentity;Url={ORG}"),
    )
    .await;
    let text = shown(&result);
    let f = authentication(result);
    assert_eq!(f.status, 401);
    assert!(f.hint.unwrap().contains("IDENTITY_HEADER"));
    assert!(!text.contains(stale), "{text}");
    never_shown(stale, &log, &fake);
}

// Workload identity.

#[tokio::test]
async fn an_aks_token_file_authenticates_and_the_rotated_file_is_read_for_the_next_token() {
    let fake = Fake::demo();
    let dir = TokenDir::new();
    let first = fake.mint_federated_token(&TokenClaims::aks());
    dir.write(&first);
    let (runtime, log) = runtime_with(aks_environment(&dir));
    let mut session = connect_to(
        &runtime,
        fake.clone(),
        &format!("AuthType=WorkloadIdentity;Url={ORG}"),
    )
    .await
    .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::WORKLOAD_USER_ID
    );

    // The kubelet rotates the file; the next token request must carry the new one.
    let rotated = fake.mint_federated_token(&TokenClaims::aks());
    assert_ne!(first, rotated);
    dir.write(&rotated);
    fake.expire_tokens();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::WORKLOAD_USER_ID
    );

    let accepted = fake.federated_assertions();
    assert_eq!(accepted.len(), 2);
    assert!(
        accepted
            .iter()
            .all(|a| a.credential == "aks-dataverse-sync" && a.subject == oidc::AKS_SUBJECT)
    );
    let token_bodies: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.host == fake::LOGIN_HOST)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(token_bodies.len(), 2);
    assert!(token_bodies[0].ends_with(&format!("&client_assertion={first}")));
    assert!(token_bodies[1].ends_with(&format!("&client_assertion={rotated}")));
    assert!(token_bodies[0].contains(
        "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    ));
    for token in [&first, &rotated] {
        only_sent_to(&fake, token, fake::LOGIN_HOST);
        never_shown(token, &log, &fake);
    }
    let info = session.token_info().await.unwrap();
    assert_eq!(
        (info.client_id.as_str(), info.tenant_id.as_str()),
        (fake::WORKLOAD_CLIENT_ID, fake::DEMO_TENANT_ID)
    );
}

#[tokio::test]
async fn each_mismatch_with_the_federated_credential_names_the_field_to_check() {
    let fake = Fake::demo();
    let now = oidc::unix_now();
    let aks = TokenClaims::aks();
    let cases = [
        (
            TokenClaims {
                subject: "system:serviceaccount:dataverse:other".into(),
                ..aks.clone()
            },
            700213,
            "Subject identifier",
        ),
        (
            TokenClaims {
                subject: "system:serviceaccount:Dataverse:sync".into(),
                ..aks.clone()
            },
            7002138,
            "case",
        ),
        (
            TokenClaims {
                issuer: oidc::OTHER_CLUSTER_ISSUER.into(),
                ..aks.clone()
            },
            700211,
            "Issuer",
        ),
        (
            TokenClaims {
                audience: "api://SomethingElse".into(),
                ..aks.clone()
            },
            700212,
            "Audience",
        ),
        (
            TokenClaims {
                not_before: now - 7200,
                expires: now - 3600,
                ..aks.clone()
            },
            700024,
            "token file",
        ),
    ];
    for (claims, code, field) in cases {
        let dir = TokenDir::new();
        let token = fake.mint_federated_token(&claims);
        dir.write(&token);
        let (runtime, log) = runtime_with(aks_environment(&dir));
        let result = connect_to(
            &runtime,
            fake.clone(),
            &format!("AuthType=WorkloadIdentity;Url={ORG}"),
        )
        .await;
        let text = shown(&result);
        let f = authentication(result);
        assert_eq!(f.code, Some(code), "{}", f.description);
        assert!(
            f.description.starts_with(&format!("AADSTS{code}: ")),
            "{}",
            f.description
        );
        assert!(
            f.hint.as_deref().unwrap().contains(field),
            "{code}: {:?}",
            f.hint
        );
        assert!(!text.contains(&token), "{code}: the federated token shows");
        never_shown(&token, &log, &fake);
    }
    // An app without any federated credential: the generic AADSTS70021.
    let dir = TokenDir::new();
    dir.write(&fake.mint_federated_token(&aks));
    let (runtime, _) = runtime_with(aks_environment(&dir));
    let connection = format!(
        "AuthType=WorkloadIdentity;Url={ORG};ClientId={}",
        fake::DEMO_CLIENT_ID
    );
    let f = authentication(connect_to(&runtime, fake.clone(), &connection).await);
    assert_eq!(f.code, Some(70021));
    assert!(f.hint.unwrap().contains("Federated credentials"));
}

#[tokio::test]
async fn github_actions_oidc_authenticates_and_its_tokens_stay_with_their_origins() {
    let fake = Fake::demo();
    let request_url = oidc::github_request_url(oidc::GITHUB_OIDC_HOST);
    let (runtime, log) = runtime_with(env(&[
        ("ACTIONS_ID_TOKEN_REQUEST_URL", &request_url),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", oidc::GITHUB_REQUEST_TOKEN),
    ]));
    let connection = format!(
        "AuthType=WorkloadIdentity;Url={ORG};ClientId={};TenantId={};FederatedToken=GitHubActions",
        fake::WORKLOAD_CLIENT_ID,
        fake::DEMO_TENANT_ID
    );
    let mut session = connect_to(&runtime, fake.clone(), &connection)
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::WORKLOAD_USER_ID
    );
    let accepted = fake.federated_assertions();
    assert_eq!(
        (
            accepted[0].credential.as_str(),
            accepted[0].subject.as_str()
        ),
        ("github-main", oidc::GITHUB_SUBJECT)
    );
    let asked = &fake.requests()[0];
    assert_eq!(asked.host, oidc::GITHUB_OIDC_HOST);
    assert!(
        asked
            .path_and_query
            .ends_with("?api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange"),
        "{}",
        asked.path_and_query
    );
    only_sent_to(&fake, oidc::GITHUB_REQUEST_TOKEN, oidc::GITHUB_OIDC_HOST);
    never_shown(oidc::GITHUB_REQUEST_TOKEN, &log, &fake);
    // The OIDC token GitHub issued went to Entra ID only.
    let body = String::from_utf8_lossy(&fake.requests()[1].body).into_owned();
    let jwt = body.rsplit("client_assertion=").next().unwrap().to_string();
    only_sent_to(&fake, &jwt, fake::LOGIN_HOST);
    never_shown(&jwt, &log, &fake);
}

#[tokio::test]
async fn a_refused_github_request_token_is_an_authentication_error_that_never_shows_it() {
    let fake = Fake::demo();
    let wrong = "ghr_NotTheJobsToken";
    let (runtime, _) = runtime_with(env(&[
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            &oidc::github_request_url(oidc::GITHUB_OIDC_HOST),
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", wrong),
    ]));
    let connection = format!(
        "AuthType=WorkloadIdentity;Url={ORG};ClientId={};TenantId={};FederatedToken=GitHubActions",
        fake::WORKLOAD_CLIENT_ID,
        fake::DEMO_TENANT_ID
    );
    let result = connect_to(&runtime, fake.clone(), &connection).await;
    let text = shown(&result);
    let f = authentication(result);
    assert_eq!(
        (f.status, f.error.as_str()),
        (401, "federated_token_unavailable")
    );
    assert!(f.hint.unwrap().contains("id-token: write"));
    assert!(!text.contains(wrong));
    assert!(
        fake.requests().iter().all(|r| r.host != fake::LOGIN_HOST),
        "Entra ID was never asked"
    );
}

#[tokio::test]
async fn without_the_platform_variables_the_component_says_which_are_missing() {
    let fake = Fake::demo();
    let (runtime, _) = runtime_with(IdentityEnvironment::default());
    for (connection, names) in [
        (
            format!("AuthType=WorkloadIdentity;Url={ORG}"),
            "AZURE_CLIENT_ID",
        ),
        (
            format!("AuthType=WorkloadIdentity;Url={ORG};ClientId=a"),
            "AZURE_FEDERATED_TOKEN_FILE",
        ),
        (
            format!("AuthType=WorkloadIdentity;Url={ORG};ClientId=a;FederatedToken=GitHubActions"),
            "ACTIONS_ID_TOKEN_REQUEST_URL",
        ),
    ] {
        let ErrorKind::InvalidSettings(m) =
            dataverse_error(connect_to(&runtime, fake.clone(), &connection).await)
        else {
            panic!("{connection}")
        };
        assert!(m.contains(names), "{m}");
    }
    assert!(fake.requests().is_empty());
}

// Over real sockets: IMDS's fixed address through a --connect-to rule.

/// The TLS fake for the org and Entra ID, the same fake on plain http for
/// the identity endpoints, and a network that sends each there.
async fn servers(fake: Arc<Fake>) -> (fake::TlsFakeServer, fake::HttpFakeServer, Network) {
    let tls = fake::serve_tls(fake.clone()).await.unwrap();
    let plain = fake::serve_http(move |_| fake).await.unwrap();
    let (tls_port, plain_port) = (tls.addr.port(), plain.addr.port());
    let mut rules: Vec<dataverse_host::ConnectTo> =
        [fake::ORG_HOST, fake::LOGIN_HOST, oidc::GITHUB_OIDC_HOST]
            .iter()
            .map(|host| format!("{host}:443:127.0.0.1:{tls_port}").parse().unwrap())
            .collect();
    rules.push(
        format!("{}:80:127.0.0.1:{plain_port}", fake::IMDS_HOST)
            .parse()
            .unwrap(),
    );
    rules.push(
        format!("10.0.0.4:8081:127.0.0.1:{plain_port}")
            .parse()
            .unwrap(),
    );
    let network = Network::new(rules, Some(&tls.ca_pem)).unwrap();
    (tls, plain, network)
}

#[tokio::test]
async fn imds_is_reached_over_plain_http_through_the_hosts_connect_to_rule() {
    let fake = Fake::demo();
    let (_tls, _plain, network) = servers(fake.clone()).await;
    let (runtime, log) = runtime_with(IdentityEnvironment::default());
    let mut session = connect_to(
        &runtime,
        Arc::new(network),
        &format!("AuthType=ManagedIdentity;Url={ORG}"),
    )
    .await
    .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::MI_USER_ID
    );
    let lines = log.lock().unwrap().clone();
    assert!(
        lines[0].starts_with(
            "GET 169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
        ),
        "{lines:?}"
    );
}

#[tokio::test]
async fn plain_http_is_refused_for_every_other_endpoint() {
    let fake = Fake::new(FakeConfig {
        identity_endpoint: "http://10.0.0.4:8081/msi/token".into(),
        ..FakeConfig::default()
    });
    let (_tls, _plain, network) = servers(fake.clone()).await;
    let network = Arc::new(network);
    let get = |url: &str| http::Request::get(url).body(bytes::Bytes::new()).unwrap();
    for url in [
        "http://169.254.169.254/metadata/instance?api-version=2021-02-01",
        "http://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI",
        "http://10.0.0.4:8081/msi/token?api-version=2019-08-01",
    ] {
        let refused = Network::send(&network, get(url), Default::default()).await;
        assert!(
            matches!(
                refused,
                Err(dataverse_host::upstream::HttpError::HttpRequestDenied)
            ),
            "{url}"
        );
    }
    // The App Service endpoint off loopback is plain http only once the
    // host allows it, as the platform's IDENTITY_ENDPOINT.
    let identity = env(&[
        ("IDENTITY_ENDPOINT", "http://10.0.0.4:8081/msi/token"),
        ("IDENTITY_HEADER", fake::IDENTITY_HEADER_VALUE),
    ]);
    let allowed = identity.plain_http_endpoint().unwrap().to_string();
    let (runtime, _) = runtime_with(identity);
    let connection = format!("AuthType=ManagedIdentity;Url={ORG}");
    let ErrorKind::Transport(m) =
        dataverse_error(connect_to(&runtime, network.clone(), &connection).await)
    else {
        panic!("a plain-http endpoint the network was not told of must be refused")
    };
    assert!(m.contains("10.0.0.4:8081"), "{m}");
    let (_tls, _plain, network) = servers(fake.clone()).await;
    let network = Arc::new(network.with_plain_http_endpoint(&allowed).unwrap());
    let mut session = connect_to(&runtime, network, &connection).await.unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::MI_USER_ID
    );
}
