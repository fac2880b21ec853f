//! The identity endpoints' requests and answers: string numbers, missing
//! fields, refusals and hostile bodies are typed errors, never a panic, and
//! the identity header never shows.

use super::*;

const ORG: &str = "https://contoso.crm.dynamics.com";
const HEADER: &str = "f3b2c1d0-identity-header-secret";

fn app_service() -> Endpoint {
    Endpoint::AppService {
        url: "http://127.0.0.1:41741/msi/token/".into(),
        header: Secret::new(HEADER),
    }
}

fn answer(status: u16, body: &str) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

fn auth_failure(error: Error) -> AuthFailure {
    match error {
        Error::Authentication(f) => *f,
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[test]
fn the_environment_picks_app_service_or_imds_and_refuses_half_of_app_service() {
    assert_eq!(
        Endpoint::from_environment(lookup(&[])).unwrap(),
        Endpoint::Imds
    );
    let blank = [(IDENTITY_ENDPOINT, " "), (IDENTITY_HEADER, "")];
    assert_eq!(
        Endpoint::from_environment(lookup(&blank)).unwrap(),
        Endpoint::Imds
    );
    let both = [
        (IDENTITY_ENDPOINT, "http://localhost:42356/msi/token"),
        (IDENTITY_HEADER, HEADER),
    ];
    assert_eq!(
        Endpoint::from_environment(lookup(&both)).unwrap(),
        Endpoint::AppService {
            url: "http://localhost:42356/msi/token".into(),
            header: Secret::new(HEADER)
        }
    );
    for (vars, says) in [
        (
            &[(IDENTITY_ENDPOINT, "http://localhost:42356/msi/token")][..],
            "IDENTITY_HEADER is not",
        ),
        (&[(IDENTITY_HEADER, HEADER)][..], "IDENTITY_ENDPOINT is not"),
        (
            &[(IDENTITY_ENDPOINT, "ftp://x/"), (IDENTITY_HEADER, HEADER)][..],
            "not an http(s) URL",
        ),
        (
            &[
                (IDENTITY_ENDPOINT, "http://u@evil/"),
                (IDENTITY_HEADER, HEADER),
            ][..],
            "not an http(s) URL",
        ),
    ] {
        let Err(Error::InvalidSettings(m)) = Endpoint::from_environment(lookup(vars)) else {
            panic!("{vars:?}")
        };
        assert!(m.contains(says) && !m.contains(HEADER), "{m}");
    }
}

#[test]
fn the_debug_of_an_endpoint_hides_the_identity_header() {
    let shown = format!("{:?}", app_service());
    assert!(
        shown.contains("127.0.0.1:41741") && !shown.contains(HEADER),
        "{shown}"
    );
}

#[test]
fn imds_requests_follow_its_documented_form_for_each_identity() {
    let cases = [
        (ManagedIdentityId::SystemAssigned, ""),
        (ManagedIdentityId::ClientId("c-1".into()), "&client_id=c-1"),
        (ManagedIdentityId::ObjectId("o-1".into()), "&object_id=o-1"),
        (
            ManagedIdentityId::ResourceId("/subscriptions/s/resourcegroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n".into()),
            "&msi_res_id=/subscriptions/s/resourcegroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/n",
        ),
    ];
    for (id, parameter) in cases {
        let r = request(&Endpoint::Imds, ORG, &id);
        assert_eq!(r.method, Method::Get);
        assert_eq!(
            r.url,
            format!(
                "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://contoso.crm.dynamics.com{parameter}"
            )
        );
        assert_eq!(r.header_value("metadata"), Some("true"));
        assert_eq!(r.header_value("x-identity-header"), None);
        assert!(r.allow_plain_http && r.may_be_sent());
    }
}

#[test]
fn app_service_requests_carry_the_header_and_its_parameter_names() {
    let cases = [
        (ManagedIdentityId::SystemAssigned, ""),
        (
            ManagedIdentityId::ClientId("c 1".into()),
            "&client_id=c%201",
        ),
        (
            ManagedIdentityId::ObjectId("o-1".into()),
            "&principal_id=o-1",
        ),
        (
            ManagedIdentityId::ResourceId("/subscriptions/s&x=1".into()),
            "&mi_res_id=/subscriptions/s%26x%3D1",
        ),
    ];
    for (id, parameter) in cases {
        let r = request(&app_service(), ORG, &id);
        assert_eq!(
            r.url,
            format!(
                "http://127.0.0.1:41741/msi/token/?api-version=2019-08-01&resource=https://contoso.crm.dynamics.com{parameter}"
            )
        );
        assert_eq!(r.header_value("x-identity-header"), Some(HEADER));
        assert_eq!(r.header_value("metadata"), None);
        assert!(!format!("{r:?}").contains(HEADER));
    }
    let with_query = Endpoint::AppService {
        url: "https://id.example/token?x=1".into(),
        header: Secret::new(HEADER),
    };
    let r = request(&with_query, ORG, &ManagedIdentityId::SystemAssigned);
    assert!(
        r.url
            .starts_with("https://id.example/token?x=1&api-version=2019-08-01&"),
        "{}",
        r.url
    );
    assert_eq!(with_query.url(), "https://id.example/token");
}

#[test]
fn imds_answers_with_string_numbers_and_expires_in_wins_over_expires_on() {
    let body = r#"{"access_token":"eyJ0.eyJ0aWQiOiJ0In0.c2ln","refresh_token":"","expires_in":"86399","expires_on":"1","not_before":"1506480273","resource":"https://contoso.crm.dynamics.com","token_type":"Bearer","client_id":"c-1"}"#;
    let issued = parse_response(
        &Endpoint::Imds,
        &ManagedIdentityId::SystemAssigned,
        &answer(200, body),
        1_000,
    )
    .unwrap();
    assert_eq!(issued.token.expires_at, 1_000 + 86_399);
    assert_eq!(issued.token.value.expose(), "eyJ0.eyJ0aWQiOiJ0In0.c2ln");
    assert_eq!(issued.client_id.as_deref(), Some("c-1"));
}

#[test]
fn app_service_answers_carry_expires_on_only_as_unix_seconds() {
    for expires_on in [r#""1767229200""#, "1767229200", r#"" 1767229200 ""#] {
        let body = format!(
            r#"{{"access_token":"t","expires_on":{expires_on},"resource":"https://contoso.crm.dynamics.com","token_type":"Bearer","client_id":"5E29463D-71DA-4FE0-8E69-999B57DB23B0"}}"#
        );
        let issued = parse_response(
            &app_service(),
            &ManagedIdentityId::SystemAssigned,
            &answer(200, &body),
            5,
        )
        .unwrap();
        assert_eq!(issued.token.expires_at, 1_767_229_200, "{body}");
        assert_eq!(
            issued.client_id.as_deref(),
            Some("5E29463D-71DA-4FE0-8E69-999B57DB23B0")
        );
    }
}

#[test]
fn answers_without_a_usable_token_are_authentication_errors() {
    let cases = [
        (answer(200, ""), "not a token response"),
        (answer(200, "<html>gateway</html>"), "not a token response"),
        (
            answer(200, r#"{"access_token":"t""#),
            "not a token response",
        ),
        (
            answer(200, r#"{"expires_in":"3599"}"#),
            "without an access_token",
        ),
        (
            answer(200, r#"{"access_token":"","expires_in":"3599"}"#),
            "without an access_token",
        ),
        (
            answer(200, r#"{"access_token":"t"}"#),
            "without a valid expires_in or expires_on",
        ),
        (
            answer(
                200,
                r#"{"access_token":"t","expires_on":"09/14/2017 00:00:00 PM +00:00"}"#,
            ),
            "without a valid expires_in or expires_on",
        ),
        (
            answer(200, r#"{"access_token":"t","expires_in":"-5"}"#),
            "without a valid expires_in or expires_on",
        ),
        (
            answer(200, r#"{"access_token":"t","expires_in":[1]}"#),
            "without a valid expires_in or expires_on",
        ),
        (
            answer(200, r#"{"access_token":7,"expires_in":"1"}"#),
            "without an access_token",
        ),
        (answer(200, r#"["access_token"]"#), "not a token response"),
        (
            answer(502, "<html>bad gateway</html>"),
            "not an error this client knows",
        ),
        (answer(500, "\u{0}\u{ff}"), "not an error this client knows"),
    ];
    for endpoint in [Endpoint::Imds, app_service()] {
        for (response, what) in &cases {
            let f = auth_failure(
                parse_response(&endpoint, &ManagedIdentityId::SystemAssigned, response, 0)
                    .unwrap_err(),
            );
            assert_eq!(f.error, "unreadable_response");
            assert!(f.description.contains(what), "{}", f.description);
            assert!(f.hint.is_some());
        }
    }
    let f = auth_failure(
        parse_response(
            &Endpoint::Imds,
            &ManagedIdentityId::SystemAssigned,
            &answer(
                200,
                r#"{"access_token":"tok","expires_in":"1","token_type":"pop"}"#,
            ),
            0,
        )
        .unwrap_err(),
    );
    assert_eq!(f.error, "unsupported_token_type");
}

#[test]
fn identity_not_found_says_which_identity_is_missing() {
    let body = r#"{"error":"invalid_request","error_description":"Identity not found"}"#;
    let cases = [
        (
            ManagedIdentityId::SystemAssigned,
            "no system-assigned managed identity",
        ),
        (
            ManagedIdentityId::ClientId("c".into()),
            "with this ClientId",
        ),
        (
            ManagedIdentityId::ObjectId("o".into()),
            "with this ObjectId",
        ),
        (
            ManagedIdentityId::ResourceId("/subscriptions/r".into()),
            "with this ResourceId",
        ),
    ];
    for (id, says) in cases {
        let f =
            auth_failure(parse_response(&Endpoint::Imds, &id, &answer(400, body), 0).unwrap_err());
        assert_eq!(
            (f.status, f.error.as_str(), f.description.as_str()),
            (400, "invalid_request", "Identity not found")
        );
        assert!(f.hint.as_deref().unwrap().contains(says), "{:?}", f.hint);
        let shown = Error::Authentication(Box::new(f)).to_string();
        assert!(
            shown.contains("Identity not found") && shown.contains(says),
            "{shown}"
        );
    }
}

#[test]
fn app_service_refusals_keep_their_message_and_correlation_id_but_never_the_header() {
    let body = format!(
        r#"{{"statusCode":400,"message":"Unable to load the proper Managed Identity. Header was {HEADER}\r\nmore","correlationId":"c-77"}}"#
    );
    let f = auth_failure(
        parse_response(
            &app_service(),
            &ManagedIdentityId::ClientId("x".into()),
            &answer(400, &body),
            0,
        )
        .unwrap_err(),
    );
    assert_eq!(f.error, "managed_identity_error");
    assert_eq!(f.correlation_id.as_deref(), Some("c-77"));
    assert_eq!(
        f.description,
        "Unable to load the proper Managed Identity. Header was ***"
    );
    assert!(f.hint.as_deref().unwrap().contains("ClientId"));
    let refused = auth_failure(
        parse_response(
            &app_service(),
            &ManagedIdentityId::SystemAssigned,
            &answer(401, "{}"),
            0,
        )
        .unwrap_err(),
    );
    assert!(
        refused.description.contains("HTTP 401"),
        "{}",
        refused.description
    );
    assert!(refused.hint.as_deref().unwrap().contains("IDENTITY_HEADER"));
}

#[test]
fn an_aadsts_error_relayed_by_the_endpoint_gets_entra_hint() {
    let body = r#"{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named https://x was not found in the tenant."}"#;
    let f = auth_failure(
        parse_response(
            &Endpoint::Imds,
            &ManagedIdentityId::SystemAssigned,
            &answer(400, body),
            0,
        )
        .unwrap_err(),
    );
    assert_eq!(f.code, Some(500011));
    assert!(
        f.hint
            .as_deref()
            .unwrap()
            .contains("resource is not in the tenant")
    );
}

#[test]
fn hostile_error_texts_are_cut_to_one_short_printable_line() {
    let long = "x".repeat(10_000);
    let body = format!(r#"{{"error":"{long}","error_description":"{long}\nsecond line"}}"#);
    let f = auth_failure(
        parse_response(
            &Endpoint::Imds,
            &ManagedIdentityId::SystemAssigned,
            &answer(400, &body),
            0,
        )
        .unwrap_err(),
    );
    assert_eq!(f.description.chars().count(), MAX_DESCRIPTION_CHARS);
    assert!(f.error.len() <= 40);
}

#[test]
fn an_unreachable_endpoint_says_managed_identity_needs_azure() {
    let e = unreachable(
        &Endpoint::Imds,
        Error::Unsent {
            message: "connection to 169.254.169.254 refused".into(),
            permanent: false,
        },
    );
    assert!(
        matches!(&e, Error::Unsent { message, permanent: false } if message.contains("Outside Azure")),
        "{e:?}"
    );
    let other = unreachable(&Endpoint::Imds, Error::InvalidRequest("x".into()));
    assert_eq!(other, Error::InvalidRequest("x".into()));
}

#[test]
fn the_tenant_is_read_from_a_jwt_token_only_when_it_names_a_plain_one() {
    use base64::Engine;
    let jwt = |claims: &str| {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        Secret::new(format!("{}.{}.sig", encode("{}"), encode(claims)))
    };
    assert_eq!(
        token_tenant(&jwt(r#"{"tid":"8f2c1f3e-5b7a"}"#)).as_deref(),
        Some("8f2c1f3e-5b7a")
    );
    for no in [
        r#"{}"#,
        r#"{"tid":""}"#,
        r#"{"tid":"a/b"}"#,
        r#"{"tid":7}"#,
        "not json",
    ] {
        assert_eq!(token_tenant(&jwt(no)), None, "{no}");
    }
    assert_eq!(token_tenant(&Secret::new("opaque")), None);
    assert_eq!(token_tenant(&Secret::new("a.%%%.c")), None);
}

#[test]
fn an_identity_header_the_endpoint_sends_back_never_shows_in_the_error() {
    // Found by the identity_response fuzz target: the endpoint quoted the
    // request's X-IDENTITY-HEADER in its content type, and the error quoting
    // the content type showed it.
    let mut echoed = answer(400, "");
    echoed.headers = vec![(
        "Content-Type".into(),
        format!("text/{HEADER}; charset=utf-8"),
    )];
    let refused = answer(
        400,
        &format!(
            r#"{{"error":"invalid_request","error_description":"bad header {HEADER}","correlationId":"{HEADER}"}}"#
        ),
    );
    for response in [echoed, refused] {
        let error = parse_response(
            &app_service(),
            &ManagedIdentityId::SystemAssigned,
            &response,
            1_000,
        )
        .unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(HEADER), "{shown}");
        assert!(matches!(error, Error::Authentication(_)), "{shown}");
    }
}
