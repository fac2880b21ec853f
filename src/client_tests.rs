//! The client against a scripted transport and clock: token reuse and
//! renewal, retries and their wire records, re-authentication, and the
//! calls that must refuse before sending.

use std::collections::VecDeque;

use super::*;
use crate::scripted::{Scripted, invalid_client, response, who_am_i};

/// What the scripted transport's `random` answers in these tests.
const RANDOM: u64 = 0x1234_5678_9abc_def0;
use crate::error::ServiceFailure;

pub(super) fn challenge() -> Response {
    response(
        401,
        &[(
            "WWW-Authenticate",
            "Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
        )],
        "",
    )
}

pub(super) fn token(value: &str) -> Response {
    response(
        200,
        &[],
        &format!(r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{value}"}}"#),
    )
}

fn throttled(retry_after: &str) -> Response {
    response(
        429,
        &[("Retry-After", retry_after)],
        r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit"}}"#,
    )
}

fn unavailable() -> Response {
    response(
        503,
        &[],
        r#"{"error":{"code":"0x80040216","message":"Service unavailable"}}"#,
    )
}

fn settings() -> Settings {
    crate::settings::parse(
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=app;ClientSecret=s3cret",
        )
        .unwrap()
}

/// A script that starts with discovery and a token, then `answers`.
fn script(answers: Vec<Response>) -> Scripted {
    let mut all = vec![Ok(challenge()), Ok(token("t1"))];
    all.extend(answers.into_iter().map(Ok));
    Scripted {
        answers: all.into(),
        now: 1_000,
        random: RANDOM,
        ..Scripted::default()
    }
}

fn connect(t: &mut Scripted) -> Client<&mut Scripted> {
    Client::connect(settings(), t, ClientConfig::default()).unwrap()
}

fn bearer(request: &Request) -> Option<&str> {
    request.header_value("authorization")
}

fn none() -> CallOptions {
    CallOptions::default()
}

#[test]
fn connect_discovers_then_acquires_and_calls_reuse_the_token() {
    let mut t = script(vec![who_am_i(), who_am_i()]);
    let mut client = connect(&mut t);
    client.who_am_i(&none()).unwrap();
    let reply = client.who_am_i(&none()).unwrap();
    assert_eq!(reply.call.attempts, 1);
    drop(client);
    let urls: Vec<&str> = t.sent.iter().map(|r| r.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://contoso.crm.dynamics.com/api/data/v9.2/",
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
            "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI",
            "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI",
        ]
    );
    assert_eq!(bearer(&t.sent[0]), None, "discovery is unauthenticated");
    assert_eq!(bearer(&t.sent[3]), Some("Bearer t1"));
}

#[test]
fn the_standalone_token_request_is_byte_identical_to_the_clients() {
    let mut t = script(vec![]);
    let client = connect(&mut t);
    let (authority, scope) = (client.authority.clone(), client.scope.clone());
    drop(client);
    let sent = t.sent[1].clone();
    let mut other = script(vec![]);
    let built = token_request(
        &settings(),
        &authority,
        &scope,
        &mut &mut other,
        AssertionOptions::default(),
    )
    .unwrap();
    assert_eq!(built.url, sent.url);
    assert_eq!(built.headers, sent.headers);
    assert_eq!(built.body, sent.body);
}

#[test]
fn every_call_carries_a_fresh_client_request_id_unless_one_is_given() {
    let mut t = script(vec![who_am_i(), who_am_i()]);
    let mut client = connect(&mut t);
    let first = client.who_am_i(&none()).unwrap().call.client_request_id;
    let given = CallOptions {
        client_request_id: Some("my-id-1".into()),
        ..none()
    };
    assert_eq!(
        client.who_am_i(&given).unwrap().call.client_request_id,
        "my-id-1"
    );
    drop(client);
    assert_eq!(first.len(), 36);
    assert_eq!(
        t.sent[2].header_value("x-ms-client-request-id"),
        Some(first.as_str())
    );
    assert_eq!(
        t.sent[3].header_value("x-ms-client-request-id"),
        Some("my-id-1")
    );
}

#[test]
fn a_token_with_less_than_five_minutes_left_is_renewed() {
    let mut t = script(vec![token("t2"), who_am_i()]);
    let mut client = connect(&mut t);
    client.transport.now = 1_000 + 3600 - 300;
    client.who_am_i(&none()).unwrap();
    drop(client);
    assert_eq!(bearer(&t.sent[3]), Some("Bearer t2"));
}

#[test]
fn after_refresh_in_a_failed_renewal_keeps_the_still_valid_token() {
    let with_refresh = response(
        200,
        &[],
        r#"{"token_type":"Bearer","expires_in":3600,"refresh_in":60,"access_token":"t1"}"#,
    );
    // Entra ID stays down through every retry of the renewal.
    let entra_down = || Ok(response(503, &[], ""));
    let mut answers = vec![Ok(challenge()), Ok(with_refresh)];
    answers.extend((0..5).map(|_| entra_down()));
    answers.extend([Ok(who_am_i()), Ok(token("t2")), Ok(who_am_i())]);
    let mut t = Scripted {
        answers: answers.into(),
        now: 1_000,
        random: RANDOM,
        ..Scripted::default()
    };
    let mut client = Client::connect(settings(), &mut t, ClientConfig::default()).unwrap();
    client.transport.now = 1_000 + 61;
    client.who_am_i(&none()).unwrap();
    client.who_am_i(&none()).unwrap();
    drop(client);
    assert_eq!(
        bearer(&t.sent[7]),
        Some("Bearer t1"),
        "renewal failed: the old token is still used"
    );
    assert_eq!(
        bearer(&t.sent[9]),
        Some("Bearer t2"),
        "the next call renews"
    );
}

const TOKEN_URL: &str = "https://login.microsoftonline.com/tid/oauth2/v2.0/token";

/// The token requests sent, in order.
fn token_requests(t: &Scripted) -> Vec<&Request> {
    t.sent.iter().filter(|r| r.url == TOKEN_URL).collect()
}

fn scripted(answers: Vec<Result<Response, Error>>) -> Scripted {
    Scripted {
        answers: answers.into(),
        now: 1_000,
        random: RANDOM,
        ..Scripted::default()
    }
}

fn policy(max_retries: u32) -> ClientConfig {
    ClientConfig {
        retry: RetryPolicy {
            max_retries,
            max_total_wait_ms: 60_000,
        },
        ..ClientConfig::default()
    }
}

#[test]
fn a_token_request_that_meets_a_transient_failure_once_is_sent_again() {
    let dropped = Err(Error::Transport("the connection closed".into()));
    let cases = [
        (Ok(response(503, &[], "")), 500..=1_000),
        (
            Ok(response(429, &[("Retry-After", "2")], "")),
            2_000..=2_000,
        ),
        (
            Ok(response(502, &[], "<html>Bad Gateway</html>")),
            500..=1_000,
        ),
        (dropped, 500..=1_000),
    ];
    for (first, waits) in cases {
        let label = format!("{first:?}");
        let mut t = scripted(vec![Ok(challenge()), first, Ok(token("t1"))]);
        let mut client = Client::connect(settings(), &mut t, ClientConfig::default())
            .unwrap_or_else(|f| panic!("{label}: {f:?}"));
        let acquired = client.token_info().unwrap().acquired_by.unwrap();
        assert_eq!(acquired.attempts, 2, "{label}");
        drop(client);
        assert_eq!(t.slept.len(), 1, "{label}");
        assert!(waits.contains(&t.slept[0]), "{label}: {:?}", t.slept);
        let sent = token_requests(&t);
        assert_eq!(sent.len(), 2, "{label}");
        let ids: Vec<_> = sent
            .iter()
            .map(|r| r.header_value("client-request-id"))
            .collect();
        assert_eq!(ids[0], Some(acquired.client_request_id.as_str()), "{label}");
        assert_eq!(ids[0], ids[1], "{label}: one acquisition, one id");
        assert_eq!(sent[0].body, sent[1].body, "{label}");
    }
}

#[test]
fn a_refused_token_request_is_not_repeated() {
    let refused = invalid_client();
    let bad_request = response(
        400,
        &[],
        r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found.","error_codes":[90002]}"#,
    );
    for answer in [refused, bad_request] {
        let mut t = scripted(vec![Ok(challenge()), Ok(answer), Ok(token("t1"))]);
        let failure = Client::connect(settings(), &mut t, ClientConfig::default())
            .err()
            .unwrap();
        assert!(
            matches!(failure.error, Error::Authentication(_)),
            "{failure:?}"
        );
        assert_eq!(failure.call.unwrap().attempts, 1);
        assert_eq!(token_requests(&t).len(), 1);
        assert!(t.slept.is_empty());
    }
}

#[test]
fn entra_down_for_good_ends_connect_after_the_policys_attempts() {
    let down = |_| Ok(response(503, &[], ""));
    let mut answers = vec![Ok(challenge())];
    answers.extend((0..10).map(down));
    let mut t = scripted(answers);
    let failure = Client::connect(settings(), &mut t, policy(2))
        .err()
        .unwrap();
    let call = failure.call.unwrap();
    assert_eq!(call.attempts, 3);
    assert_eq!(token_requests(&t).len(), 3);
    assert_eq!(t.slept.len(), 2);

    let refused = |_| {
        Err(Error::Transport(
            "connection to login.microsoftonline.com refused".into(),
        ))
    };
    let mut answers = vec![Ok(challenge())];
    answers.extend((0..10).map(refused));
    let mut t = scripted(answers);
    let failure = Client::connect(settings(), &mut t, policy(2))
        .err()
        .unwrap();
    let Error::Transport(message) = &failure.error else {
        panic!("{failure:?}")
    };
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(failure.call.unwrap().attempts, 3);
}

#[test]
fn discovery_is_retried_under_the_same_policy() {
    let dropped = Err(Error::Transport("the connection closed".into()));
    let mut t = scripted(vec![
        Ok(response(503, &[], "")),
        dropped,
        Ok(challenge()),
        Ok(token("t1")),
    ]);
    Client::connect(settings(), &mut t, ClientConfig::default()).unwrap();
    let discovery: Vec<_> = t.sent[..3]
        .iter()
        .map(|r| r.header_value("x-ms-client-request-id"))
        .collect();
    assert!(discovery[0].is_some());
    assert!(
        discovery.iter().all(|id| *id == discovery[0]),
        "one call, one id"
    );
    assert!(t.sent[..3].iter().all(|r| bearer(r).is_none()));
    assert_eq!(t.slept.len(), 2);

    let not_dataverse = response(404, &[], "");
    let mut t = scripted(vec![Ok(not_dataverse)]);
    let failure = Client::connect(settings(), &mut t, ClientConfig::default())
        .err()
        .unwrap();
    assert!(matches!(failure.error, Error::Authority(_)));
    assert_eq!(
        failure.call.unwrap().attempts,
        1,
        "a 404 is an answer, not an outage"
    );
}

#[test]
fn a_call_whose_token_request_fails_reports_the_token_requests_attempts() {
    let mut answers = vec![Ok(challenge()), Ok(token("t1"))];
    answers.extend((0..3).map(|_| Ok(response(503, &[], ""))));
    let mut t = scripted(answers);
    let mut client = Client::connect(settings(), &mut t, policy(2)).unwrap();
    client.transport.now = 1_000 + 3_600;
    let failure = client.who_am_i(&none()).unwrap_err();
    drop(client);
    let call = failure.call.unwrap();
    assert_eq!(call.attempts, 3);
    let last = token_requests(&t).pop().unwrap();
    assert_eq!(
        last.header_value("client-request-id"),
        Some(call.client_request_id.as_str())
    );
    assert!(
        t.sent.iter().all(|r| !r.url.ends_with("WhoAmI")),
        "no Web API request without a token"
    );
}

#[test]
fn retry_after_zero_waits_a_second_each_time() {
    let mut t = script(vec![throttled("0"); 5]);
    let mut client = connect(&mut t);
    let failure = client.who_am_i(&none()).unwrap_err();
    drop(client);
    assert!(
        matches!(failure.error, Error::Throttled { .. }),
        "{failure:?}"
    );
    assert_eq!(failure.call.unwrap().attempts, 5);
    assert_eq!(t.slept, [1_000; 4]);
}

#[test]
fn a_post_whose_connection_was_refused_is_sent_again_without_caution() {
    let refused = || {
        Err(Error::Unsent {
            message: "connection to contoso refused".into(),
            permanent: false,
        })
    };
    let created = response(
        204,
        &[(
            "OData-EntityId",
            "https://contoso.crm.dynamics.com/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)",
        )],
        "",
    );
    let mut t = script(vec![]);
    t.answers.extend([refused(), Ok(created)]);
    let mut client = connect(&mut t);
    let done = client
        .create("accounts", r#"{"name":"A"}"#, &none())
        .unwrap();
    assert_eq!(done.call.attempts, 2, "nothing was sent, so it was safe");

    let mut t = script(vec![]);
    t.answers.extend((0..5).map(|_| refused()));
    let mut client = connect(&mut t);
    let failure = client
        .create("accounts", r#"{"name":"A"}"#, &none())
        .unwrap_err();
    let Error::Unsent { message, .. } = &failure.error else {
        panic!("{failure:?}")
    };
    assert_eq!(failure.call.unwrap().attempts, 5);
    assert!(message.ends_with("refused (after 5 attempts)"), "{message}");
    assert!(!message.contains("may have"), "{message}");
}

#[test]
fn an_untrusted_certificate_or_unknown_host_is_not_retried() {
    let mut t = script(vec![]);
    t.answers.push_back(Err(Error::Unsent {
        message: "TLS with contoso failed (certificate not trusted?)".into(),
        permanent: true,
    }));
    let mut client = connect(&mut t);
    let failure = client.who_am_i(&none()).unwrap_err();
    assert!(matches!(
        failure.error,
        Error::Unsent {
            permanent: true,
            ..
        }
    ));
    assert_eq!(failure.call.unwrap().attempts, 1);
}

#[test]
fn a_post_that_lost_its_connection_says_the_write_may_have_happened() {
    let dropped = || Err(Error::Transport("the connection to contoso closed".into()));
    let mut t = script(vec![]);
    t.answers.extend([dropped(), dropped()]);
    let mut client = connect(&mut t);
    let given = CallOptions {
        client_request_id: Some("create-1".into()),
        ..none()
    };
    let failure = client
        .create("accounts", r#"{"name":"A"}"#, &given)
        .unwrap_err();
    let Error::Transport(message) = &failure.error else {
        panic!("{failure:?}")
    };
    assert_eq!(
        failure.call.as_ref().unwrap().attempts,
        1,
        "a POST is not repeated"
    );
    assert!(
        message.ends_with(
            "; the request may have reached Dataverse: check before repeating it (the write \
                 may have happened; x-ms-client-request-id create-1)"
        ),
        "{message}"
    );
    // A GET is repeated instead, and says nothing of the kind.
    let failure = client.who_am_i(&none()).unwrap_err();
    let Error::Transport(message) = &failure.error else {
        panic!("{failure:?}")
    };
    assert!(!message.contains("may have"), "{message}");
}

#[test]
fn a_401_right_after_a_fresh_token_says_what_to_check() {
    let refused = || {
        response(
            401,
            &[(
                "WWW-Authenticate",
                r#"Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, error="invalid_token", error_description="The user is disabled.""#,
            )],
            "",
        )
    };
    // A fresh token, refused at once; and a cached one, refused again after renewal.
    for answers in [vec![refused()], vec![refused(), token("t2"), refused()]] {
        let cached = answers.len() > 1;
        let mut t = script(vec![]);
        let mut client = connect(&mut t);
        if !cached {
            client.cache.clear();
            t_reanswer(&mut client, token("t2"));
        }
        for answer in answers {
            client.transport.answers.push_back(Ok(answer));
        }
        let failure = client.who_am_i(&none()).unwrap_err();
        let Error::Service(f) = &failure.error else {
            panic!("{failure:?}")
        };
        assert_eq!(f.status, 401);
        assert!(f.message.contains("The user is disabled."), "{}", f.message);
        assert!(f.hint.as_deref().unwrap().contains("Application User"));
    }
}

/// Queues an answer for the client's transport.
fn t_reanswer(client: &mut Client<&mut Scripted>, answer: Response) {
    client.transport.answers.push_back(Ok(answer));
}

#[test]
fn a_401_on_a_cached_token_reacquires_once_and_retries_once() {
    let mut t = script(vec![challenge(), token("t2"), who_am_i()]);
    let mut client = connect(&mut t);
    let reply = client.who_am_i(&none()).unwrap();
    assert_eq!(reply.call.attempts, 2);
    drop(client);
    assert_eq!(t.sent.len(), 5);
    assert_eq!(bearer(&t.sent[4]), Some("Bearer t2"));
}

#[test]
fn a_second_401_is_returned_not_looped() {
    let mut t = script(vec![challenge(), token("t2"), challenge()]);
    let mut client = connect(&mut t);
    let failure = client.who_am_i(&none()).unwrap_err();
    drop(client);
    assert!(
        matches!(
            failure.error,
            Error::Service(ServiceFailure { status: 401, .. })
        ),
        "{failure:?}"
    );
    assert_eq!(failure.call.unwrap().attempts, 2);
    assert_eq!(t.sent.len(), 5);
}

#[test]
fn throttling_waits_for_retry_after_then_succeeds_on_attempt_two() {
    let mut t = script(vec![throttled("2"), who_am_i()]);
    let mut client = connect(&mut t);
    let reply = client.who_am_i(&none()).unwrap();
    assert_eq!(reply.call.attempts, 2);
    drop(client);
    assert_eq!(t.slept, [2000]);
    let ids: Vec<_> = t.sent[2..]
        .iter()
        .map(|r| r.header_value("x-ms-client-request-id"))
        .collect();
    assert_eq!(
        ids[0], ids[1],
        "one call keeps its request id across attempts"
    );
}

#[test]
fn a_post_is_retried_on_429_but_never_on_503() {
    let created = response(
        204,
        &[(
            "OData-EntityId",
            "https://contoso.crm.dynamics.com/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)",
        )],
        "",
    );
    let mut t = script(vec![throttled("1"), created, unavailable()]);
    let mut client = connect(&mut t);
    let reply = client
        .create("accounts", r#"{"name":"A"}"#, &none())
        .unwrap();
    assert_eq!(reply.call.attempts, 2);
    assert_eq!(
        reply.value.id.as_deref(),
        Some("00000000-0000-0000-0000-000000000001")
    );
    let failure = client
        .create("accounts", r#"{"name":"B"}"#, &none())
        .unwrap_err();
    drop(client);
    assert!(matches!(
        failure.error,
        Error::Service(ServiceFailure { status: 503, .. })
    ));
    assert_eq!(failure.call.unwrap().attempts, 1);
    assert_eq!(t.slept, [1000]);
}

#[test]
fn a_get_gives_up_after_max_retries_with_backoff() {
    let mut t = script(vec![unavailable(); 10]);
    let policy = RetryPolicy {
        max_retries: 2,
        max_total_wait_ms: 60_000,
    };
    let config = ClientConfig {
        retry: policy,
        ..ClientConfig::default()
    };
    let mut client = Client::connect(settings(), &mut t, config).unwrap();
    let failure = client.who_am_i(&none()).unwrap_err();
    drop(client);
    assert_eq!(failure.call.unwrap().attempts, 3);
    assert_eq!(t.slept.len(), 2);
    assert!(t.slept[1] >= t.slept[0] / 2, "backoff grows: {:?}", t.slept);
}

#[test]
fn repeated_connection_failures_name_the_attempts() {
    let mut t = script(vec![]);
    t.answers
        .extend((0..5).map(|_| Err(Error::Transport("connection to x refused".into()))));
    let mut client = connect(&mut t);
    let failure = client.who_am_i(&none()).unwrap_err();
    let Error::Transport(message) = &failure.error else {
        panic!("{failure:?}")
    };
    assert!(message.contains("after 5 attempts"), "{message}");
}

#[test]
fn throttling_longer_than_the_wait_budget_is_returned_as_throttled() {
    let mut t = script(vec![throttled("300")]);
    let mut client = connect(&mut t);
    let failure = client.who_am_i(&none()).unwrap_err();
    drop(client);
    assert!(matches!(
        failure.error,
        Error::Throttled {
            retry_after_seconds: Some(300),
            ..
        }
    ));
    assert!(t.slept.is_empty());
}

#[test]
fn a_next_link_off_the_org_is_refused_without_sending() {
    let mut t = script(vec![]);
    let mut client = connect(&mut t);
    let failure = client
        .next_page("https://evil.example/api/data/v9.2/accounts", None, &none())
        .unwrap_err();
    drop(client);
    assert!(matches!(failure.error, Error::InvalidRequest(_)));
    assert!(failure.call.is_none());
    assert_eq!(t.sent.len(), 2);
}

#[test]
fn next_page_repeats_the_page_size_preference() {
    let page = response(200, &[], r#"{"value":[{"name":"a"}]}"#);
    let mut t = script(vec![page]);
    let mut client = connect(&mut t);
    let link = "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x";
    assert_eq!(
        client
            .next_page(link, Some(10), &none())
            .unwrap()
            .value
            .row_count,
        1
    );
    drop(client);
    assert_eq!(t.sent[2].url, link);
    assert_eq!(
        t.sent[2].header_value("prefer"),
        Some("odata.maxpagesize=10")
    );
}

#[test]
fn update_never_creates_unless_an_etag_is_given() {
    let mut t = script(vec![response(204, &[], ""), response(204, &[], "")]);
    let mut client = connect(&mut t);
    client
        .update("accounts", "accountnumber='A-1'", "{}", None, &none())
        .unwrap();
    client
        .update(
            "accounts",
            "accountnumber='A-1'",
            "{}",
            Some("W/\"7\""),
            &none(),
        )
        .unwrap();
    drop(client);
    assert_eq!(t.sent[2].header_value("if-match"), Some("*"));
    assert_eq!(t.sent[3].header_value("if-match"), Some("W/\"7\""));
}

#[test]
fn send_refuses_foreign_urls_and_caller_authorization() {
    let mut t = script(vec![]);
    let mut client = connect(&mut t);
    let foreign = client.send(Method::Get, "https://evil.example/x", &[], vec![], &none());
    assert!(matches!(
        foreign.unwrap_err().error,
        Error::InvalidRequest(_)
    ));
    let auth = [("Authorization".to_string(), "Bearer other".to_string())];
    let own = client.send(Method::Get, "accounts", &auth, vec![], &none());
    assert!(matches!(own.unwrap_err().error, Error::InvalidRequest(_)));
    drop(client);
    assert_eq!(t.sent.len(), 2);
}

#[test]
fn relay_passes_a_final_error_answer_through_after_retrying() {
    let not_found = response(
        404,
        &[("Content-Type", "application/json")],
        r#"{"error":{"code":"0x80040217","message":"missing"}}"#,
    );
    let mut t = script(vec![
        not_found,
        unavailable(),
        unavailable(),
        response(200, &[], "{}"),
    ]);
    let mut client = connect(&mut t);
    let reply = client
        .relay(
            Method::Get,
            "/api/data/v9.2/accounts(1)",
            &[],
            vec![],
            &none(),
        )
        .unwrap();
    assert_eq!((reply.value.status, reply.call.attempts), (404, 1));
    assert!(reply.value.body.starts_with(b"{\"error\""));
    // 503 is retried like any idempotent call; the final answer is the 200.
    let reply = client
        .relay(Method::Get, "accounts", &[], vec![], &none())
        .unwrap();
    assert_eq!((reply.value.status, reply.call.attempts), (200, 3));
    let own = [("authorization".to_string(), "Bearer x".to_string())];
    let refused = client.relay(Method::Get, "accounts", &own, vec![], &none());
    assert!(matches!(
        refused.unwrap_err().error,
        Error::InvalidRequest(_)
    ));
}

#[test]
fn relay_reauthenticates_once_on_401_then_passes_the_401_through() {
    let unauthorized = || response(401, &[], "");
    let mut t = script(vec![unauthorized(), token("t2"), unauthorized()]);
    let mut client = connect(&mut t);
    let reply = client
        .relay(Method::Get, "WhoAmI", &[], vec![], &none())
        .unwrap();
    assert_eq!((reply.value.status, reply.call.attempts), (401, 2));
    drop(client);
    assert_eq!(
        t.sent[3].url,
        "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
    );
    assert_eq!(t.sent[4].header_value("authorization"), Some("Bearer t2"));
}

#[test]
fn discovery_to_an_unknown_login_host_sends_no_credential() {
    let evil = response(
        401,
        &[(
            "WWW-Authenticate",
            "Bearer authorization_uri=https://login.evil.example/tid/oauth2/authorize",
        )],
        "",
    );
    let mut t = Scripted {
        answers: vec![Ok(evil)].into(),
        now: 0,
        random: RANDOM,
        ..Scripted::default()
    };
    let err = Client::connect(settings(), &mut t, ClientConfig::default())
        .err()
        .unwrap()
        .error;
    assert!(matches!(err, Error::Authority(_)));
    assert_eq!(t.sent.len(), 1);
}

#[test]
fn certificate_settings_without_a_store_fail_before_sending() {
    let settings = crate::settings::parse(&format!(
        "AuthType=Certificate;Url=https://contoso.crm.dynamics.com/;ClientId=app;Thumbprint={}",
        "AB".repeat(20)
    ))
    .unwrap();
    let mut t = Scripted {
        answers: VecDeque::new(),
        now: 0,
        random: RANDOM,
        ..Scripted::default()
    };
    let failure = Client::connect(settings, &mut t, ClientConfig::default())
        .err()
        .unwrap();
    assert!(failure.call.is_none(), "nothing was sent");
    let err = failure.error;
    assert!(
        matches!(&err, Error::InvalidSettings(m) if m.contains("certificate store")),
        "{err:?}"
    );
    assert!(t.sent.is_empty());
}
