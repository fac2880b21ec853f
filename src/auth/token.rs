//! The client-credentials token request and the token response.

use serde::Deserialize;

use super::Authority;
use crate::error::{AuthFailure, Error};
use crate::http::{Method, Request, Response};
use crate::percent::form_body;
use crate::secret::Secret;

/// An access token and when it stops being usable (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    pub value: Secret,
    pub expires_at: u64,
    /// When Entra ID suggests renewing (`refresh_in`), if it said.
    pub refresh_at: Option<u64>,
}

/// `POST {authority}/oauth2/v2.0/token` with a client secret.
pub fn client_secret_request(
    authority: &Authority,
    client_id: &str,
    secret: &Secret,
    scope: &str,
) -> Request {
    token_post(
        authority,
        client_id,
        scope,
        &[("client_secret", secret.expose())],
    )
}

/// The header that names a token request for Entra ID (as MSAL sends it):
/// Entra ID echoes it as the `correlation_id` of its answer and its errors,
/// so the id the client reports finds the request in Entra's sign-in logs.
pub const CLIENT_REQUEST_ID: &str = "client-request-id";

/// The `client_assertion_type` of a JWT client assertion (RFC 7523).
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `POST {authority}/oauth2/v2.0/token` with a signed client assertion
/// (certificate credential): form fields `client_id`, `grant_type`, `scope`,
/// `client_assertion_type`, `client_assertion`, in this order.
pub fn client_assertion_request(
    authority: &Authority,
    client_id: &str,
    assertion: &Secret,
    scope: &str,
) -> Request {
    let proof = [
        ("client_assertion_type", JWT_BEARER_ASSERTION_TYPE),
        ("client_assertion", assertion.expose()),
    ];
    token_post(authority, client_id, scope, &proof)
}

/// The client-credentials form every token request shares, followed by the
/// fields that prove the app's identity.
fn token_post(
    authority: &Authority,
    client_id: &str,
    scope: &str,
    proof: &[(&str, &str)],
) -> Request {
    let mut fields = vec![
        ("client_id", client_id),
        ("grant_type", "client_credentials"),
        ("scope", scope),
    ];
    fields.extend_from_slice(proof);
    Request::new(Method::Post, authority.token_endpoint())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(form_body(&fields).into_bytes())
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<NumberOrString>,
    refresh_in: Option<NumberOrString>,
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u32>,
    trace_id: Option<String>,
    correlation_id: Option<String>,
}

/// Entra ID sends numbers; some proxies and older endpoints send strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Text(String),
}

impl NumberOrString {
    fn seconds(&self) -> Option<u64> {
        match self {
            NumberOrString::Number(n) => Some(*n),
            NumberOrString::Text(s) => s.trim().parse().ok(),
        }
    }
}

/// Reads a token response. `now` is Unix seconds when the request was sent.
///
/// Everything wrong with it is an authentication error (the token endpoint
/// failed), never a Dataverse one: an Entra error; a body that is not a
/// token response (HTML from a proxy, JSON cut off, no `access_token`);
/// or a token that is not a bearer token. `token_type` is compared without
/// case; a response without one is taken as Bearer (Entra's v2.0 endpoint
/// always sends `"Bearer"`, and RFC 6749 makes the field required, but a
/// missing field says nothing else), while any other type (`pop`,
/// `mtls_pop`: bound to a key) cannot be sent as `Authorization: Bearer`.
pub fn parse_response(response: &Response, now: u64) -> Result<AccessToken, Error> {
    let Ok(body) = serde_json::from_slice::<TokenBody>(&response.body) else {
        return Err(unreadable(response, "not a token response"));
    };
    if response.status != 200 || body.error.is_some() {
        return Err(Error::Authentication(Box::new(failure(
            response.status,
            body,
        ))));
    }
    if let Some(kind) = body
        .token_type
        .as_deref()
        .filter(|t| !t.trim().eq_ignore_ascii_case("bearer"))
    {
        return Err(Error::Authentication(Box::new(AuthFailure {
            status: response.status,
            error: "unsupported_token_type".into(),
            description: format!(
                "Entra ID issued a token of type '{}'; this client sends only Bearer tokens",
                printable(kind)
            ),
            hint: Some(
                "a proof-of-possession token (pop, mtls_pop) is bound to a key and cannot be \
                 sent as a bearer token: check AuthorityHost/Authority point at Entra ID's \
                 client-credentials endpoint"
                    .into(),
            ),
            ..AuthFailure::default()
        })));
    }
    let value = body
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unreadable(response, "a token response without an access_token"))?;
    let expires_in = body
        .expires_in
        .as_ref()
        .and_then(NumberOrString::seconds)
        .ok_or_else(|| unreadable(response, "a token response without a valid expires_in"))?;
    Ok(AccessToken {
        value: Secret::new(value),
        expires_at: now.saturating_add(expires_in),
        refresh_at: body
            .refresh_in
            .as_ref()
            .and_then(NumberOrString::seconds)
            .map(|s| now.saturating_add(s)),
    })
}

/// A token endpoint answer this client cannot use: an authentication
/// failure with the status and what came instead (never the body itself,
/// which could hold a token).
fn unreadable(response: &Response, what: &str) -> Error {
    let content_type = response
        .header("content-type")
        .map(|t| printable(t.split(';').next().unwrap_or("").trim()))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "no content type".into());
    let size = response.body.len();
    Error::Authentication(Box::new(AuthFailure {
        status: response.status,
        error: "unreadable_response".into(),
        description: format!(
            "Entra ID answered HTTP {} with something unreadable: {what} ({content_type}, {size} bytes)",
            response.status
        ),
        hint: Some(
            "the token endpoint, or a proxy in front of it, did not answer as Entra ID does: \
             check AuthorityHost/Authority and any proxy on the way, then try again"
                .into(),
        ),
        ..AuthFailure::default()
    }))
}

/// At most 40 characters of a server-supplied value, each one that is not
/// printable ASCII shown as `?`. Replaced, not dropped: dropping would join
/// the pieces around it into text the server never sent whole.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn failure(status: u16, body: TokenBody) -> AuthFailure {
    let description_full = body.error_description.unwrap_or_default();
    // Entra appends "\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …"; the
    // ids are separate fields, so keep the human sentence only.
    let description = description_full
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let code = body
        .error_codes
        .first()
        .copied()
        .or_else(|| aadsts_code(&description));
    AuthFailure {
        status,
        code,
        error: body.error.unwrap_or_else(|| "unknown_error".into()),
        description,
        trace_id: body.trace_id,
        correlation_id: body.correlation_id,
        hint: code.and_then(hint).map(str::to_string),
    }
}

/// `AADSTS7000215: …` → 7000215.
pub(crate) fn aadsts_code(description: &str) -> Option<u32> {
    let digits: String = description
        .strip_prefix("AADSTS")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What the user should do about the AADSTS errors an S2S app meets.
pub fn hint(code: u32) -> Option<&'static str> {
    Some(match code {
        7000215 => {
            "the client secret is wrong: use the secret's Value (shown once when it was created), not its Secret ID"
        }
        7000222 => {
            "the client secret has expired: create a new one under Certificates & secrets in the app registration"
        }
        700016 => {
            "no app with this ClientId exists in the tenant: check the ClientId and that the app is registered (or consented) in the environment's tenant"
        }
        90002 => {
            "the tenant does not exist: check TenantId/Authority, or drop them to discover the tenant from the environment"
        }
        700027 => {
            "the certificate is not registered on the app, or the assertion's signature does not verify: upload the certificate's public key to the app registration"
        }
        700024 => "the client assertion is outside its valid time window: check the host's clock",
        // Workload identity federation: the assertion is another issuer's
        // token, matched against the app's federated credentials.
        70021 => {
            "no federated credential of the app matches the token: compare the Issuer, Subject identifier and Audience of the app's federated credentials (Certificates & secrets → Federated credentials) with the token's iss, sub and aud"
        }
        700211 => {
            "no federated credential of the app has the token's issuer: check the federated credential's Issuer (AKS: the cluster's OIDC issuer URL; GitHub Actions: https://token.actions.githubusercontent.com)"
        }
        700212 => {
            "no federated credential of the app has the token's audience: check the federated credential's Audience (api://AzureADTokenExchange unless changed) and the audience the token was requested for"
        }
        700213 => {
            "no federated credential of the app has the token's subject: check the federated credential's Subject identifier (AKS: system:serviceaccount:{namespace}:{service account}; GitHub Actions: repo:{owner}/{repo}:ref:refs/heads/{branch}, …:environment:{name} or …:pull_request); it is matched case-sensitively"
        }
        7002138 => {
            "the token's subject matches a federated credential only when case is ignored: subjects are matched case-sensitively, so fix the case of the federated credential's Subject identifier"
        }
        1002012 => "the scope must end in /.default for client credentials",
        500011 => {
            "the environment's resource is not in the tenant: check Url and that the environment belongs to this tenant"
        }
        50059 => "no tenant was found in the request: set TenantId or let the client discover it",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> Authority {
        Authority {
            host: "login.microsoftonline.com".into(),
            tenant: "tid".into(),
            https: true,
        }
    }

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn secret_request_posts_the_documented_form_fields() {
        let req = client_secret_request(
            &authority(),
            "app-id",
            &Secret::new("a+b=c&d"),
            "https://contoso.crm.dynamics.com/.default",
        );
        assert_eq!(req.method, Method::Post);
        assert_eq!(
            req.url,
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
        );
        assert_eq!(
            req.header_value("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            String::from_utf8(req.body.clone()).unwrap(),
            "client_id=app-id&grant_type=client_credentials&scope=https%3A%2F%2Fcontoso.crm.dynamics.com%2F.default&client_secret=a%2Bb%3Dc%26d"
        );
        assert!(!format!("{req:?}").contains("a+b"));
    }

    #[test]
    fn a_token_response_gives_value_and_expiry() {
        let body = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0"}"#;
        let token = parse_response(&response(200, body), 1000).unwrap();
        assert_eq!(token.value.expose(), "eyJ0");
        assert_eq!(token.expires_at, 4599);
        assert_eq!(token.refresh_at, None);
        let with_refresh = r#"{"expires_in":"3600","refresh_in":1800,"access_token":"t"}"#;
        let token = parse_response(&response(200, with_refresh), 0).unwrap();
        assert_eq!((token.expires_at, token.refresh_at), (3600, Some(1800)));
    }

    #[test]
    fn entra_errors_become_typed_authentication_errors_with_hints() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2026-11-27 10:00:00Z","error_codes":[7000215],"timestamp":"2026-11-27 10:00:00Z","trace_id":"t-1","correlation_id":"c-1","error_uri":"https://login.microsoftonline.com/error?code=7000215"}"#;
        let Err(Error::Authentication(f)) = parse_response(&response(401, body), 0) else {
            panic!("expected an authentication error")
        };
        assert_eq!(f.code, Some(7000215));
        assert_eq!(f.error, "invalid_client");
        assert_eq!(
            f.description,
            "AADSTS7000215: Invalid client secret provided."
        );
        assert_eq!(f.trace_id.as_deref(), Some("t-1"));
        assert_eq!(f.correlation_id.as_deref(), Some("c-1"));
        assert!(f.hint.as_deref().unwrap().contains("Value"));
    }

    #[test]
    fn each_known_code_has_a_hint_and_the_code_is_read_from_the_description_too() {
        for code in [
            7000215, 7000222, 700016, 90002, 700027, 700024, 1002012, 500011, 50059, 70021, 700211,
            700212, 700213, 7002138,
        ] {
            let body = format!(r#"{{"error":"x","error_description":"AADSTS{code}: text"}}"#);
            let Err(Error::Authentication(f)) = parse_response(&response(400, &body), 0) else {
                panic!("{code}")
            };
            assert_eq!(f.code, Some(code));
            assert!(f.hint.is_some(), "{code}");
        }
    }

    #[test]
    fn a_server_supplied_value_is_quoted_with_its_unprintable_characters_marked() {
        // Found by the gateway_handler fuzz target: dropping the bytes joined
        // "k3y-" and "0123…" into a caller's API key the server never sent whole.
        assert_eq!(printable("k3y-\u{fffd}\u{5}0123"), "k3y-??0123");
        assert_eq!(printable("text/html"), "text/html");
        assert_eq!(printable(&"x".repeat(100)).len(), 40);
        let answer = Response {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "app\u{fffd}x-api-key: k3y-\u{5}0123".into(),
            )],
            body: Vec::new(),
        };
        let Error::Authentication(f) = parse_response(&answer, 0).unwrap_err() else {
            panic!("an authentication error")
        };
        assert!(
            f.description
                .contains("(app?x-api-key: k3y-?0123, 0 bytes)"),
            "{}",
            f.description
        );
    }

    #[test]
    fn unreadable_token_responses_are_authentication_errors_naming_the_status() {
        let html = |status| Response {
            status,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: b"<html>bad gateway</html>".to_vec(),
        };
        let cases = [
            (response(200, "not json"), "not a token response"),
            (
                response(200, r#"{"access_token":"eyJ0","exp"#),
                "not a token response",
            ),
            (
                response(200, r#"{"expires_in":3599}"#),
                "without an access_token",
            ),
            (
                response(200, r#"{"access_token":"","expires_in":3599}"#),
                "without an access_token",
            ),
            (
                response(200, r#"{"access_token":"t"}"#),
                "without a valid expires_in",
            ),
            (
                response(200, r#"{"access_token":"t","expires_in":"soon"}"#),
                "without a valid expires_in",
            ),
            (response(200, ""), "not a token response"),
            (html(502), "not a token response"),
            (html(200), "not a token response"),
        ];
        for (answer, what) in cases {
            let err = parse_response(&answer, 0).unwrap_err();
            let Error::Authentication(f) = &err else {
                panic!("{:?}: {err:?}", answer.body)
            };
            assert_eq!(f.status, answer.status);
            assert_eq!(f.error, "unreadable_response");
            assert!(
                f.description.starts_with(&format!(
                    "Entra ID answered HTTP {} with something unreadable",
                    answer.status
                )),
                "{}",
                f.description
            );
            assert!(f.description.contains(what), "{}", f.description);
            assert!(f.hint.is_some());
            assert!(!err.to_string().contains("eyJ0"), "never the body: {err}");
        }
        let Err(Error::Authentication(f)) = parse_response(&html(502), 0) else {
            panic!()
        };
        assert!(
            f.description.contains("(text/html, 24 bytes)"),
            "{}",
            f.description
        );
    }

    #[test]
    fn only_bearer_tokens_are_accepted_and_a_missing_token_type_counts_as_bearer() {
        for token_type in [r#""Bearer","#, r#""bearer","#, r#""BEARER ","#, ""] {
            let body = format!(
                r#"{{{}"expires_in":3599,"access_token":"t"}}"#,
                if token_type.is_empty() {
                    String::new()
                } else {
                    format!(r#""token_type":{token_type}"#)
                }
            );
            assert!(parse_response(&response(200, &body), 0).is_ok(), "{body}");
        }
        for token_type in ["pop", "mtls_pop", "PoP", "MAC", ""] {
            let body = format!(
                r#"{{"token_type":"{token_type}","expires_in":3599,"access_token":"secret-token"}}"#
            );
            let err = parse_response(&response(200, &body), 0).unwrap_err();
            let Error::Authentication(f) = &err else {
                panic!("{token_type}: {err:?}")
            };
            assert_eq!(f.error, "unsupported_token_type");
            assert!(
                f.description.contains(&format!("'{token_type}'")),
                "{}",
                f.description
            );
            assert!(!err.to_string().contains("secret-token"));
        }
    }
}

#[cfg(test)]
mod assertion_request_tests {
    use super::*;

    #[test]
    fn assertion_request_posts_the_documented_form_fields_in_order() {
        let authority = Authority {
            host: "login.microsoftonline.com".into(),
            tenant: "tid".into(),
            https: true,
        };
        let req = client_assertion_request(
            &authority,
            "app-id",
            &Secret::new("eyJh.eyJj.c2ln"),
            "https://contoso.crm.dynamics.com/.default",
        );
        assert_eq!(req.method, Method::Post);
        assert_eq!(
            req.url,
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
        );
        assert_eq!(
            req.header_value("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            String::from_utf8(req.body.clone()).unwrap(),
            "client_id=app-id&grant_type=client_credentials&scope=https%3A%2F%2Fcontoso.crm.dynamics.com%2F.default\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion=eyJh.eyJj.c2ln"
        );
        assert!(!format!("{req:?}").contains("eyJh"));
    }
}
