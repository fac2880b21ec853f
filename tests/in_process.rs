//! End to end through the real component in wasmtime, against the fake
//! Entra ID + Dataverse answering in-process.

mod common;

use common::*;
use dataverse_fake::{self as fake, Fake};
use dataverse_host::ErrorKind;

#[tokio::test]
async fn who_am_i_returns_the_application_users_ids() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let who = session.who_am_i(None).await.unwrap();
    assert_eq!(who.user_id, fake::DEMO_USER_ID);
    assert_eq!(who.business_unit_id, fake::DEMO_BUSINESS_UNIT_ID);
    assert_eq!(who.organization_id, fake::DEMO_ORGANIZATION_ID);
}

#[tokio::test]
async fn paging_follows_next_links_across_three_pages_without_loss() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let (names, pages) = all_names(&mut session, &accounts_query(Some(10))).await;
    assert_eq!(pages, 3);
    assert_eq!(names, fake.account_names());
    let account_requests = fake
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("accounts"))
        .count();
    assert_eq!(account_requests, 3);
}

#[tokio::test]
async fn query_options_reach_dataverse() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let query = dataverse_host::Query {
        filter: Some("name eq 'Fabrikam Inc'".into()),
        count: true,
        ..accounts_query(None)
    };
    let page = session.retrieve_multiple(&query, None).await.unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&page.rows).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "Fabrikam Inc");
    assert_eq!(page.total_count, Some(1));
    assert!(
        rows[0].get("accountnumber").is_none(),
        "$select limits the columns"
    );

    let top = dataverse_host::Query {
        top: Some(2),
        orderby: Some("name desc".into()),
        ..accounts_query(None)
    };
    let page = session.retrieve_multiple(&top, None).await.unwrap();
    assert_eq!(page.row_count, 2);
    assert!(page.next_link.is_none());
}

#[tokio::test]
async fn fifty_calls_use_one_discovery_and_one_token_request() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    for _ in 0..50 {
        session.who_am_i(None).await.unwrap();
    }
    let stats = fake.stats();
    assert_eq!(stats.discovery_requests, 1);
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.api_requests, 50);
    assert!(session.token_info().await.unwrap().from_cache);
}

#[tokio::test]
async fn a_wrong_secret_is_an_authentication_error_naming_aadsts7000215() {
    let fake = Fake::demo();
    let wrong = format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId={};ClientSecret=Wrong~Secret-Value",
        fake::ORG_HOST,
        fake::DEMO_CLIENT_ID
    );
    let ErrorKind::Authentication(failure) = dataverse_error(connect(&fake, &wrong).await) else {
        panic!("expected an authentication error")
    };
    assert_eq!(failure.code, Some(7000215));
    assert_eq!(failure.status, 401);
    assert_eq!(failure.error, "invalid_client");
    assert!(failure.description.starts_with("AADSTS7000215"));
    assert!(failure.trace_id.is_some() && failure.correlation_id.is_some());
    assert!(failure.hint.unwrap().contains("Value"));
    assert!(!format!("{:?}", failure.description).contains("Wrong~Secret-Value"));
}

#[tokio::test]
async fn an_unknown_app_is_an_authentication_error_with_a_hint() {
    let fake = Fake::demo();
    let unknown = format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId=00000000-0000-0000-0000-000000000001;ClientSecret=x",
        fake::ORG_HOST
    );
    let ErrorKind::Authentication(failure) = dataverse_error(connect(&fake, &unknown).await) else {
        panic!("expected an authentication error")
    };
    assert_eq!(failure.code, Some(700016));
    assert!(failure.hint.is_some());
}

#[tokio::test]
async fn an_app_without_application_user_gets_access_denied_with_the_hint() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &no_user_connection()).await.unwrap();
    let ErrorKind::AccessDenied(failure) = dataverse_error(session.who_am_i(None).await) else {
        panic!("expected access denied")
    };
    assert_eq!(failure.status, 403);
    assert_eq!(failure.code.as_deref(), Some("0x80072560"));
    assert!(failure.hint.unwrap().contains(
        "create an Application User for this app in the environment and assign it a security role"
    ));
    assert!(failure.request_id.is_some());
}

#[tokio::test]
async fn malformed_connection_strings_are_invalid_settings_without_the_secret() {
    let fake = Fake::demo();
    let secret = "S3cr3t!Value";
    let cases = [
        format!(
            "AuthType=ClientSecret;Url=http://contoso.crm.dynamics.com/;ClientId=a;ClientSecret={secret}"
        ),
        format!("AuthType=ClientSecret;Url=contoso;ClientId=a;ClientSecret={secret}"),
        format!(
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientSecret={secret}"
        ),
        format!(
            "AuthType=OAuth;Url=https://contoso.crm.dynamics.com/;ClientId=a;ClientSecret={secret}"
        ),
        format!(
            "AuthType=Magic;Url=https://contoso.crm.dynamics.com/;ClientId=a;ClientSecret={secret}"
        ),
        format!(
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=a;ClientSecret='{secret}"
        ),
        format!("AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=a;{secret}"),
        "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=a".to_string(),
        String::new(),
    ];
    for case in cases {
        let error = dataverse_error(connect(&fake, &case).await);
        let ErrorKind::InvalidSettings(message) = &error else {
            panic!("{case}: {error:?}")
        };
        assert!(
            !message.contains(secret),
            "{case} leaked the secret: {message}"
        );
        assert!(!message.is_empty());
    }
    assert_eq!(fake.requests().len(), 0, "bad settings send nothing");
}

#[tokio::test]
async fn a_foreign_next_link_is_refused_and_no_token_leaves() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let before = fake.requests().len();
    for link in [
        "https://evil.example/api/data/v9.2/accounts?$skiptoken=1",
        "https://contoso.crm.dynamics.com.evil.example/api/data/v9.2/accounts",
        "http://contoso.crm.dynamics.com/api/data/v9.2/accounts",
    ] {
        let error = dataverse_error(session.next_page(link, None, None).await);
        assert!(
            matches!(error, ErrorKind::InvalidRequest(_)),
            "{link}: {error:?}"
        );
    }
    assert_eq!(fake.requests().len(), before, "nothing was sent anywhere");
}

#[tokio::test]
async fn settings_summaries_never_carry_the_secret() {
    let summary = runtime().parse_settings(&demo_connection()).await.unwrap();
    assert_eq!(summary.url, "https://contoso.crm.dynamics.com");
    assert_eq!(summary.client_id, fake::DEMO_CLIENT_ID);
    assert!(!format!("{summary:?}").contains(fake::DEMO_CLIENT_SECRET));
}

#[tokio::test]
async fn tenant_id_skips_discovery() {
    let fake = Fake::demo();
    let connection = format!("{};TenantId={}", demo_connection(), fake::DEMO_TENANT_ID);
    let mut session = connect(&fake, &connection).await.unwrap();
    session.who_am_i(None).await.unwrap();
    assert_eq!(fake.stats().discovery_requests, 0);
    assert_eq!(fake.stats().token_requests, 1);
}

#[tokio::test]
async fn bad_query_arguments_are_refused_before_sending() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let before = fake.requests().len();
    for query in [
        dataverse_host::Query {
            entity_set: "accounts?$top=1".into(),
            ..accounts_query(None)
        },
        dataverse_host::Query {
            page_size: Some(0),
            ..accounts_query(None)
        },
        dataverse_host::Query {
            select: vec!["name,revenue".into()],
            ..accounts_query(None)
        },
    ] {
        let error = dataverse_error(session.retrieve_multiple(&query, None).await);
        assert!(matches!(error, ErrorKind::InvalidRequest(_)), "{error:?}");
    }
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn an_unknown_entity_set_is_not_found() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let query = dataverse_host::Query {
        entity_set: "nosuchthings".into(),
        ..accounts_query(None)
    };
    let error = dataverse_error(session.retrieve_multiple(&query, None).await);
    assert!(matches!(error, ErrorKind::NotFound(_)), "{error:?}");
}

#[test]
fn the_component_imports_only_wasi_and_exports_the_dataverse_interfaces() {
    let (imports, exports) = runtime().interface_names();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@0.2.")),
        "{imports:?}"
    );
    for import in &imports {
        assert!(import.starts_with("wasi:"), "unexpected import {import}");
    }
    let mut exports = exports;
    exports.sort();
    assert_eq!(
        exports,
        [
            "dataverse:client/auth@0.2.0",
            "dataverse:client/connection@0.2.0",
            "dataverse:client/types@0.2.0",
            "dataverse:client/web-api@0.2.0"
        ]
    );
}

#[tokio::test]
async fn a_discovered_authority_outside_the_orgs_cloud_gets_no_credential() {
    // The org is on the commercial cloud, but its challenge names the US
    // Government login host.
    let config = fake::FakeConfig {
        login_host: "login.microsoftonline.us".into(),
        ..fake::FakeConfig::default()
    };
    let fake = Fake::new(config);
    let error = dataverse_error(connect(&fake, &demo_connection()).await);
    let ErrorKind::Authority(message) = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("login.microsoftonline.us"), "{message}");
    assert_eq!(
        fake.stats().token_requests,
        0,
        "no credential left the component"
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.host != "login.microsoftonline.us")
    );
}

#[tokio::test]
async fn an_external_token_is_used_as_given_and_replaced_by_the_host() {
    let fake = Fake::demo();
    // The host "owns identity": it got a token some other way.
    let mut issuer = connect(&fake, &demo_connection()).await.unwrap();
    let token = issuer.access_token().await.unwrap();
    let expires_at = issuer.token_info().await.unwrap().expires_at;
    let requests_before = fake.stats().token_requests;

    let url = format!("https://{}/", fake::ORG_HOST);
    let mut session = runtime()
        .connect_with_token(fake.clone(), &url, &token, expires_at, OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::DEMO_USER_ID
    );
    assert_eq!(
        fake.stats().token_requests,
        requests_before,
        "the component asked Entra ID for nothing"
    );
    assert_eq!(
        fake.stats().discovery_requests,
        1,
        "only the issuer discovered"
    );

    fake.revoke_tokens();
    let ErrorKind::Authentication(failure) = dataverse_error(session.who_am_i(None).await) else {
        panic!("expected an authentication error")
    };
    assert_eq!(failure.error, "external_token_expired");
    assert!(failure.hint.unwrap().contains("set-access-token"));

    let mut reissuer = connect(&fake, &demo_connection()).await.unwrap();
    let fresh = reissuer.access_token().await.unwrap();
    session.set_access_token(&fresh, expires_at).await.unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::DEMO_USER_ID
    );

    let expired = runtime()
        .connect_with_token(fake.clone(), &url, &fresh, 1, OPTIONS)
        .await
        .unwrap();
    let mut expired = expired;
    assert!(matches!(
        dataverse_error(expired.who_am_i(None).await),
        ErrorKind::Authentication(_)
    ));
}

/// Sends a component-built request to the fake the way a host's own HTTP
/// stack would.
fn send_to_fake(
    fake: &Fake,
    request: &dataverse_host::session::HttpRequest,
) -> http::Response<bytes::Bytes> {
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(request.url.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    fake.handle(
        builder
            .body(bytes::Bytes::from(request.body.clone()))
            .unwrap(),
    )
}

#[tokio::test]
async fn a_host_doing_its_own_http_gets_a_working_token_through_the_auth_interface() {
    let fake = Fake::demo();
    let mut auth = runtime()
        .auth_protocol(&demo_connection(), None)
        .await
        .unwrap();
    assert!(
        auth.configured_authority().await.unwrap().is_none(),
        "the settings name no tenant"
    );

    let discovery = auth.discovery_request().await.unwrap();
    assert_eq!(
        discovery.url,
        format!("https://{}/api/data/v9.2/", fake::ORG_HOST)
    );
    let challenge = send_to_fake(&fake, &discovery);
    let header = challenge
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authority = auth
        .parse_challenge(challenge.status().as_u16(), header.as_deref())
        .await
        .unwrap();
    assert_eq!(authority.tenant_id, fake::DEMO_TENANT_ID);
    assert_eq!(
        authority.scope,
        format!("https://{}/.default", fake::ORG_HOST)
    );

    let request = auth.token_request(&authority, OPTIONS).await.unwrap();
    assert_eq!(request.method, dataverse_host::Method::Post);
    let body = String::from_utf8(request.body.clone()).unwrap();
    assert!(
        body.starts_with("client_id=") && body.contains("grant_type=client_credentials"),
        "{body}"
    );
    let answer = send_to_fake(&fake, &request);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = auth
        .parse_token_response(answer.status().as_u16(), answer.body(), now)
        .await
        .unwrap();
    assert!(token.expires_at > now);

    // The token works for a client that was handed it.
    let url = format!("https://{}/", fake::ORG_HOST);
    let mut session = runtime()
        .connect_with_token(
            fake.clone(),
            &url,
            &token.access_token,
            token.expires_at,
            OPTIONS,
        )
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::DEMO_USER_ID
    );

    // A hostile challenge is refused, and a wrong secret's answer is typed.
    let evil = auth
        .parse_challenge(
            401,
            Some("Bearer authorization_uri=https://login.evil.example/t/oauth2/authorize"),
        )
        .await;
    assert!(matches!(dataverse_error(evil), ErrorKind::Authority(_)));
    let refused = auth
        .parse_token_response(401, br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#, now)
        .await;
    assert!(
        matches!(dataverse_error(refused), ErrorKind::Authentication(f) if f.code == Some(7000215))
    );
}

fn with_retries(max_retries: u32) -> dataverse_host::ClientOptions {
    dataverse_host::ClientOptions {
        max_retries: Some(max_retries),
        ..OPTIONS
    }
}

#[tokio::test]
async fn each_transient_entra_failure_is_retried_once_and_connect_succeeds() {
    let fake = Fake::demo();
    each_transient_entra_failure_is_retried_once(&fake, fake.clone()).await;
}

#[tokio::test]
async fn entra_down_for_good_ends_connect_after_the_bounded_attempts() {
    let fake = Fake::demo();
    fake.inject_entra(fake::Fault::Status(503), 10);
    let error = full_error(
        runtime()
            .connect(fake.clone(), &demo_connection(), with_retries(2))
            .await,
    );
    let ErrorKind::Authentication(failure) = &error.kind else {
        panic!("{error:?}")
    };
    assert_eq!(failure.status, 503);
    assert_eq!(failure.error, "temporarily_unavailable");
    assert_eq!(error.call.as_ref().unwrap().attempts, 3);
    assert_eq!(fake.stats().token_requests, 3);
    assert!(
        dataverse_host::session::describe(&error).ends_with("(3 attempts)"),
        "{}",
        dataverse_host::session::describe(&error)
    );
}

#[tokio::test]
async fn a_refused_secret_is_not_retried() {
    let fake = Fake::demo();
    let wrong = format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId={};ClientSecret=Wrong~Secret-Value",
        fake::ORG_HOST,
        fake::DEMO_CLIENT_ID
    );
    let error = full_error(connect(&fake, &wrong).await);
    assert!(
        matches!(error.kind, ErrorKind::Authentication(_)),
        "{error:?}"
    );
    assert_eq!(error.call.unwrap().attempts, 1);
    assert_eq!(fake.stats().token_requests, 1);
}

#[tokio::test]
async fn a_transient_discovery_failure_is_retried_once() {
    let fake = Fake::demo();
    fake.inject_discovery(fake::Fault::Status(503), 1);
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    session.who_am_i(None).await.unwrap();
    assert_eq!(fake.stats().discovery_requests, 2);
    let probes: Vec<_> = fake
        .requests()
        .iter()
        .filter(|r| r.host == fake::ORG_HOST && r.authorization.is_none())
        .map(|r| r.header("x-ms-client-request-id").map(str::to_string))
        .collect();
    assert_eq!(probes.len(), 2);
    assert!(probes[0].is_some() && probes[0] == probes[1], "{probes:?}");
}

#[tokio::test]
async fn an_unreadable_token_response_is_an_authentication_error_with_the_status() {
    let fake = Fake::demo();
    fake.inject_entra(fake::Fault::MalformedJson, 1);
    let error = full_error(connect(&fake, &demo_connection()).await);
    let ErrorKind::Authentication(failure) = &error.kind else {
        panic!("a token endpoint failure, not a Dataverse one: {error:?}")
    };
    assert_eq!(
        (failure.status, failure.error.as_str()),
        (200, "unreadable_response")
    );
    assert!(
        failure
            .description
            .starts_with("Entra ID answered HTTP 200 with something unreadable"),
        "{}",
        failure.description
    );
    assert!(!failure.description.contains("eyJ0"), "never the body");

    // A gateway's HTML page, for good: retried, then reported with its status.
    fake.inject_entra(fake::Fault::Status(502), 10);
    let error = full_error(
        runtime()
            .connect(fake.clone(), &demo_connection(), with_retries(1))
            .await,
    );
    let ErrorKind::Authentication(failure) = &error.kind else {
        panic!("{error:?}")
    };
    assert_eq!(failure.status, 502);
    assert!(
        failure.description.contains("text/html"),
        "{}",
        failure.description
    );
    assert_eq!(error.call.unwrap().attempts, 2);
}

#[tokio::test]
async fn a_token_that_is_not_a_bearer_token_is_refused_and_never_sent() {
    let fake = Fake::demo();
    fake.set_token_type(Some("pop"));
    let ErrorKind::Authentication(failure) =
        dataverse_error(connect(&fake, &demo_connection()).await)
    else {
        panic!("expected an authentication error")
    };
    assert_eq!(failure.error, "unsupported_token_type");
    assert!(
        failure.description.contains("'pop'"),
        "{}",
        failure.description
    );
    assert_eq!(fake.stats().api_requests, 0);
    assert!(fake.requests().iter().all(|r| r.authorization.is_none()));
}

#[tokio::test]
async fn a_401_right_after_a_fresh_token_names_the_application_user_and_dataverses_reason() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    fake.refuse_tokens(Some("The application user is disabled."));
    let error = full_error(session.who_am_i(None).await);
    let ErrorKind::Service(failure) = &error.kind else {
        panic!("{error:?}")
    };
    assert_eq!(failure.status, 401);
    assert!(
        failure
            .message
            .contains("invalid_token: The application user is disabled."),
        "{}",
        failure.message
    );
    assert!(
        failure
            .hint
            .as_deref()
            .unwrap()
            .contains("Application User")
    );
    assert_eq!(
        error.call.unwrap().attempts,
        2,
        "re-acquired once, then refused again"
    );
    assert_eq!(fake.stats().token_requests, 2);
}
