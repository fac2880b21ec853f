//! Faults of the two unauthenticated exchanges a client makes before any
//! Web API call: tenant discovery (the org's 401 challenge) and the Entra ID
//! token endpoint. [`Fake::inject_entra`] and [`Fake::inject_discovery`]
//! queue the same [`Fault`]s as [`Fake::inject`] (which faults only
//! authenticated Dataverse requests), rendered the way each service (or the
//! gateway in front of it) would send them:
//!
//! | fault | token endpoint | discovery |
//! | --- | --- | --- |
//! | `Throttle { n }` | 429, `Retry-After: n`, Entra error JSON `temporarily_unavailable` | 429, `Retry-After: n`, Dataverse error JSON |
//! | `Status(502 / 504)` | that status with an HTML page (a gateway's, not Entra's) | that status, Dataverse error JSON |
//! | `Status(other)` | that status, Entra error JSON `temporarily_unavailable` | that status, Dataverse error JSON |
//! | `HangUp` | connection closed, nothing sent ([`Delivery::HangUp`]) | same |
//! | `MalformedJson` | 200 with a token response cut off mid-way | the challenge, with a body cut off |
//! | `Slow { ms }` | the normal answer, late ([`Delivery::Delay`]) | same |
//! | `DropMidBody` | the normal answer, cut after half its body ([`Delivery::DropAfter`]) | same |
//! | `Oversized { bytes }` | 200 with `bytes` of an unterminated JSON document | the challenge |
//! | `ForeignNextLink` | the normal answer | the normal answer |
//!
//! A faulted token request issues no token. Injected Entra errors carry no
//! AADSTS code: Entra documents none for these outages.
//!
//! [`Fake::inject`]: crate::Fake::inject
//! [`Fake::inject_entra`]: crate::Fake::inject_entra
//! [`Fake::inject_discovery`]: crate::Fake::inject_discovery

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde_json::json;

use crate::{Delivery, Fault};

/// What happens to a faulted token request: answered by the fault, or
/// issued normally and then delivered the fault's way.
pub(crate) enum EntraOutcome {
    Answer(Response<Bytes>),
    /// Issue the token, then deliver it this way.
    Deliver(Delivery),
    /// Issue the token as usual.
    Normal,
}

/// Renders `fault` at the token endpoint. `correlation_id` is the id Entra
/// echoes (the caller's `client-request-id`).
pub(crate) fn entra(fault: &Fault, correlation_id: &str) -> EntraOutcome {
    let entra_error = |status: StatusCode, description: &str| {
        let body = json!({
            "error": "temporarily_unavailable",
            "error_description": format!("{description} (injected by the fake)\r\nCorrelation ID: {correlation_id}"),
            "error_codes": [],
            "correlation_id": correlation_id,
        });
        json_response(status, correlation_id, body.to_string())
    };
    EntraOutcome::Answer(match fault {
        Fault::Throttle { retry_after_secs } => {
            let mut response = entra_error(
                StatusCode::TOO_MANY_REQUESTS,
                "The request was throttled: too many token requests.",
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
            response
        }
        Fault::Status(code @ (502 | 504)) => Response::builder()
            .status(*code)
            .header(header::CONTENT_TYPE, "text/html")
            .body(Bytes::from(format!(
                "<html><head><title>{code} Gateway Error</title></head><body><h1>{code}</h1><p>The upstream server did not answer (injected by the fake).</p></body></html>"
            )))
            .expect("response parts are valid"),
        Fault::Status(code) => entra_error(
            StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "The service is temporarily unavailable.",
        ),
        Fault::HangUp => deliver(Response::new(Bytes::new()), Delivery::HangUp),
        Fault::MalformedJson => {
            let full = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.not-a-token"}"#;
            json_response(
                StatusCode::OK,
                correlation_id,
                full[..full.len() * 2 / 3].to_string(),
            )
        }
        Fault::Oversized { bytes } => {
            let mut body = br#"{"token_type":"Bearer","access_token":""#.to_vec();
            body.resize((*bytes).max(body.len()), b'A');
            body.truncate(*bytes);
            let mut response = json_response(StatusCode::OK, correlation_id, String::new());
            *response.body_mut() = Bytes::from(body);
            response
        }
        Fault::Slow { millis } => return EntraOutcome::Deliver(Delivery::Delay { millis: *millis }),
        Fault::DropMidBody => return EntraOutcome::Deliver(Delivery::DropAfter { bytes: 0 }),
        // ForeignNextLink, and faults added later for Dataverse alone.
        _ => return EntraOutcome::Normal,
    })
}

/// Applies a [`Delivery`] to a token endpoint answer (`DropAfter` keeps
/// half of the answer's body, whatever number the marker was made with).
pub(crate) fn deliver(mut response: Response<Bytes>, delivery: Delivery) -> Response<Bytes> {
    let delivery = match delivery {
        Delivery::DropAfter { .. } => Delivery::DropAfter {
            bytes: response.body().len() / 2,
        },
        other => other,
    };
    response.extensions_mut().insert(delivery);
    response
}

/// Renders `fault` for a discovery probe; `challenge` is the normal answer
/// and `error` renders a Dataverse error with that status.
pub(crate) fn discovery(
    fault: &Fault,
    challenge: Response<Bytes>,
    error: impl FnOnce(StatusCode, Option<u64>) -> Response<Bytes>,
) -> Response<Bytes> {
    match fault {
        Fault::Throttle { retry_after_secs } => {
            error(StatusCode::TOO_MANY_REQUESTS, Some(*retry_after_secs))
        }
        Fault::Status(code) => error(
            StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            None,
        ),
        Fault::HangUp => deliver(challenge, Delivery::HangUp),
        Fault::Slow { millis } => deliver(challenge, Delivery::Delay { millis: *millis }),
        Fault::DropMidBody => deliver(challenge, Delivery::DropAfter { bytes: 0 }),
        Fault::MalformedJson => {
            let mut challenge = challenge;
            *challenge.body_mut() = Bytes::from_static(br#"{"error":{"code":"#);
            challenge
        }
        // Oversized, ForeignNextLink, and faults added later for Dataverse alone.
        _ => challenge,
    }
}

fn json_response(status: StatusCode, correlation_id: &str, body: String) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store, no-cache")
        .header("client-request-id", correlation_id)
        .body(Bytes::from(body))
        .expect("response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Fake};

    fn token_form() -> String {
        format!(
            "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={}&scope=https%3A%2F%2Fcontoso.crm.dynamics.com%2F.default",
            crate::percent::encode(DEMO_CLIENT_SECRET, b"-._~", true)
        )
    }

    fn token(fake: &Fake) -> Response<Bytes> {
        token_request(fake, crate::DEMO_TENANT_ID, &token_form())
    }

    #[test]
    fn entra_faults_hit_only_the_next_token_requests_and_issue_nothing() {
        let fake = Fake::demo();
        fake.inject_entra(Fault::Status(503), 1);
        fake.inject_entra(
            Fault::Throttle {
                retry_after_secs: 2,
            },
            1,
        );
        fake.inject_entra(Fault::HangUp, 1);
        // Discovery does not consume an Entra fault.
        assert_eq!(fake.handle(get(&format!("{BASE}/"))).status(), 401);
        let down = token(&fake);
        assert_eq!(down.status(), 503);
        assert_eq!(json(&down)["error"], "temporarily_unavailable");
        let throttled = token(&fake);
        assert_eq!(throttled.status(), 429);
        assert_eq!(throttled.headers()["retry-after"], "2");
        let hung_up = token(&fake);
        assert_eq!(
            hung_up.extensions().get::<Delivery>(),
            Some(&Delivery::HangUp)
        );
        assert!(fake.lock().tokens.is_empty(), "no fault issued a token");
        assert_eq!(token(&fake).status(), 200);
        assert_eq!(fake.stats().token_requests, 4);
        let statuses: Vec<u16> = fake.token_request_log().iter().map(|r| r.status).collect();
        assert_eq!(statuses[..2], [503, 429]);
    }

    #[test]
    fn a_gateway_error_at_the_token_endpoint_is_html_and_a_malformed_one_is_cut_json() {
        let fake = Fake::demo();
        fake.inject_entra(Fault::Status(502), 1);
        fake.inject_entra(Fault::MalformedJson, 1);
        let gateway = token(&fake);
        assert_eq!(gateway.status(), 502);
        assert_eq!(gateway.headers()["content-type"], "text/html");
        assert!(gateway.body().starts_with(b"<html>"));
        let cut = token(&fake);
        assert_eq!(cut.status(), 200);
        assert!(serde_json::from_slice::<serde_json::Value>(cut.body()).is_err());
    }

    #[test]
    fn discovery_faults_replace_the_challenge_for_probes_only() {
        let (fake, token) = demo();
        fake.inject_discovery(
            Fault::Throttle {
                retry_after_secs: 1,
            },
            1,
        );
        fake.inject_discovery(Fault::Status(503), 1);
        // A request with a token neither consumes nor suffers them.
        assert_eq!(send(&fake, &token, "GET", "WhoAmI", &[], "").status(), 200);
        let throttled = fake.handle(get(&format!("{BASE}/")));
        assert_eq!(throttled.headers()["retry-after"], "1");
        assert_error(&throttled, 429, "0x80040216");
        assert_error(&fake.handle(get(&format!("{BASE}/"))), 503, "0x80040216");
        let challenge = fake.handle(get(&format!("{BASE}/")));
        assert_eq!(challenge.status(), 401);
        assert!(challenge.headers().contains_key("www-authenticate"));
        assert_eq!(fake.stats().discovery_requests, 3);
    }

    #[test]
    fn refused_tokens_get_the_challenge_with_the_reason_and_token_type_is_settable() {
        let (fake, token) = demo();
        fake.refuse_tokens(Some("The user is disabled."));
        let refused = send(&fake, &token, "GET", "WhoAmI", &[], "");
        assert_eq!(refused.status(), 401);
        let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Bearer authorization_uri="),
            "{challenge}"
        );
        assert!(
            challenge
                .ends_with(r#"error="invalid_token", error_description="The user is disabled.""#),
            "{challenge}"
        );
        fake.refuse_tokens(None);
        assert_eq!(send(&fake, &token, "GET", "WhoAmI", &[], "").status(), 200);

        fake.set_token_type(Some("pop"));
        assert_eq!(json(&super::tests::token(&fake))["token_type"], "pop");
    }
}
