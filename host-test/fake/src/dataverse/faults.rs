//! How Dataverse answers an authenticated request that meets an injected
//! [`Fault`]: an error in its own words, a wrecked body, or the real answer
//! marked with the [`Delivery`] it needs.

use crate::dataverse::context::Respond;
use crate::dataverse::reply::{self, Body, Reply};
use crate::faults::{Delivery, ENDLESS_ROW, Fault};
use crate::{FakeApp, FakeConfig, State};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;

fn error_body(code: &str, message: &str) -> Body {
    Body::Json(json!({"error": {"code": code, "message": message}}))
}

/// Dataverse's service protection answer: 429, `Retry-After` in seconds,
/// error `0x80072322` (the number-of-requests limit) with `message`.
pub(crate) fn throttled(
    message: &str,
    retry_after_secs: u64,
    request_id: &str,
    req: &Request<Bytes>,
) -> Response<Bytes> {
    reply::finish(
        Reply::with_status(
            StatusCode::TOO_MANY_REQUESTS,
            error_body("0x80072322", message),
        )
        .header("retry-after", retry_after_secs.to_string()),
        request_id,
        req,
    )
}

pub(crate) fn apply(
    fault: &Fault,
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
    app: &FakeApp,
    request_id: &str,
    respond: Respond,
) -> Response<Bytes> {
    let reply = |reply: Reply| reply::finish(reply, request_id, req);
    match fault {
        Fault::Throttle { retry_after_secs } => throttled(
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            *retry_after_secs,
            request_id,
            req,
        ),
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let message = format!(
                "{} (injected by the fake).",
                status.canonical_reason().unwrap_or("Unexpected error")
            );
            reply(Reply::with_status(
                status,
                error_body("0x80040216", &message),
            ))
        }
        Fault::MalformedJson => {
            let full = format!(
                "{{\"@odata.context\":\"https://{}/api/data/v9.2/$metadata#accounts\",\"value\":[{{\"name\":\"Contoso Ltd\"}}]}}",
                config.org_host
            );
            let cut = Bytes::from(full[..full.len() * 2 / 3].to_string());
            reply(Reply::with_status(
                StatusCode::OK,
                Body::Raw {
                    content_type: "application/json; odata.metadata=minimal".into(),
                    bytes: cut,
                },
            ))
        }
        Fault::Oversized { bytes } => reply(Reply::with_status(
            StatusCode::OK,
            Body::Raw {
                content_type: "application/json; odata.metadata=minimal".into(),
                bytes: oversized(&config.org_host, *bytes),
            },
        )),
        Fault::Slow { millis } => {
            let mut response = respond(config, state, req, app, request_id, &HashMap::new());
            response
                .extensions_mut()
                .insert(Delivery::Delay { millis: *millis });
            response
        }
        Fault::DropMidBody => {
            let mut response = respond(config, state, req, app, request_id, &HashMap::new());
            if response.body().is_empty() {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response.headers_mut().remove("odata-entityid");
                let body = json!({"error": {"code": "0x80040216", "message": "An unexpected error occurred."}});
                *response.body_mut() = Bytes::from(body.to_string());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json; odata.metadata=minimal"),
                );
            }
            let bytes = response.body().len() / 2;
            response
                .extensions_mut()
                .insert(Delivery::DropAfter { bytes });
            response
        }
        Fault::HangUp => {
            let mut response = Response::new(Bytes::new());
            response.extensions_mut().insert(Delivery::HangUp);
            response
        }
        Fault::HangUpAfterExecuting => {
            let mut response = respond(config, state, req, app, request_id, &HashMap::new());
            response.extensions_mut().insert(Delivery::HangUp);
            response
        }
        Fault::Endless { bytes } => {
            let mut response = Response::new(Bytes::from(endless_head(&config.org_host)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json; odata.metadata=minimal"),
            );
            response
                .extensions_mut()
                .insert(Delivery::Generated { bytes: *bytes });
            response
        }
        Fault::ForeignNextLink { host } => {
            let response = respond(config, state, req, app, request_id, &HashMap::new());
            foreign_next_link(response, host)
        }
    }
}

/// Rewrites (or adds) a collection page's `@odata.nextLink` to point at `host`.
fn foreign_next_link(mut response: Response<Bytes>, host: &str) -> Response<Bytes> {
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(response.body()) else {
        return response;
    };
    if !body.get("value").is_some_and(Value::is_array) {
        return response;
    }
    let query = body
        .get("@odata.nextLink")
        .and_then(Value::as_str)
        .and_then(|link| link.split_once('?'))
        .map(|(_, q)| q.to_string())
        .unwrap_or_else(|| "$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E".into());
    body.insert(
        "@odata.nextLink".into(),
        Value::String(format!("https://{host}/api/data/v9.2/accounts?{query}")),
    );
    *response.body_mut() = Bytes::from(Value::Object(body).to_string());
    response.headers_mut().remove(header::CONTENT_LENGTH);
    response
}

/// The start of a collection page that never ends: `{"@odata.context":…,"value":[`.
fn endless_head(org_host: &str) -> String {
    format!(
        "{{\"@odata.context\":\"https://{org_host}/api/data/v9.2/$metadata#accounts\",\"value\":["
    )
}

/// Exactly `size` bytes: `{"@odata.context":…,"value":[{…},{…},…` forever.
fn oversized(org_host: &str, size: usize) -> Bytes {
    let head = endless_head(org_host);
    let row = ENDLESS_ROW;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&head.as_bytes()[..head.len().min(size)]);
    while out.len() < size {
        let n = row.len().min(size - out.len());
        out.extend_from_slice(&row[..n]);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Fake};

    fn whoami(fake: &Fake, token: &str) -> Response<Bytes> {
        send(fake, token, "GET", "WhoAmI", &[], "")
    }

    #[test]
    fn throttle_answers_429_with_retry_after_for_the_next_n_api_requests_only() {
        let (fake, token) = demo();
        fake.inject(
            Fault::Throttle {
                retry_after_secs: 7,
            },
            2,
        );
        // Token and discovery requests neither consume nor suffer the fault.
        token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        fake.handle(get(&format!("{BASE}/")));
        for _ in 0..2 {
            let resp = whoami(&fake, &token);
            assert_eq!(resp.headers()["retry-after"], "7");
            let message = assert_error(&resp, 429, "0x80072322");
            assert_eq!(
                message,
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
            );
        }
        assert_eq!(whoami(&fake, &token).status(), 200);
        assert_eq!(fake.stats().api_requests, 3);
        let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, 200, 401, 429, 429, 200]);
    }

    #[test]
    fn status_fault_answers_that_status_with_a_dataverse_error_and_runs_nothing() {
        let (fake, token) = demo();
        fake.inject(Fault::Status(503), 1);
        let resp = send(&fake, &token, "POST", "accounts", &[], r#"{"name":"Lost"}"#);
        let message = assert_error(&resp, 503, "0x80040216");
        assert!(message.contains("Service Unavailable"), "{message}");
        assert_eq!(fake.account_names().len(), 25);
        fake.inject(Fault::Status(502), 1);
        assert_eq!(whoami(&fake, &token).status(), 502);
    }

    #[test]
    fn hang_up_runs_nothing_and_asks_for_the_connection_to_close() {
        let (fake, token) = demo();
        fake.inject(Fault::HangUp, 1);
        let resp = send(&fake, &token, "POST", "accounts", &[], r#"{"name":"Lost"}"#);
        assert_eq!(resp.extensions().get::<Delivery>(), Some(&Delivery::HangUp));
        assert_eq!(fake.account_names().len(), 25, "nothing was created");
        assert_eq!(whoami(&fake, &token).status(), 200);
    }

    #[test]
    fn slow_fault_keeps_the_answer_and_asks_for_a_delay() {
        let (fake, token) = demo();
        fake.inject(Fault::Slow { millis: 250 }, 1);
        let resp = whoami(&fake, &token);
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.extensions().get::<Delivery>(),
            Some(&Delivery::Delay { millis: 250 })
        );
        assert!(
            whoami(&fake, &token)
                .extensions()
                .get::<Delivery>()
                .is_none()
        );
    }

    #[test]
    fn drop_mid_body_runs_the_request_and_asks_for_half_the_body() {
        let (fake, token) = demo();
        fake.inject(Fault::DropMidBody, 2);
        let resp = send(&fake, &token, "GET", "accounts?$top=2", &[], "");
        assert_eq!(resp.status(), 200);
        let half = resp.body().len() / 2;
        assert_eq!(
            resp.extensions().get::<Delivery>(),
            Some(&Delivery::DropAfter { bytes: half })
        );
        // A bodiless answer becomes a 500 with a body to cut; the write happened.
        let resp = send(
            &fake,
            &token,
            "POST",
            "accounts",
            &[],
            r#"{"name":"Written"}"#,
        );
        assert_eq!(resp.status(), 500);
        assert!(!resp.body().is_empty());
        assert!(matches!(
            resp.extensions().get::<Delivery>(),
            Some(Delivery::DropAfter { .. })
        ));
        assert_eq!(fake.account_names().last().unwrap(), "Written");
    }

    #[test]
    fn malformed_json_fault_answers_200_with_a_truncated_body() {
        let (fake, token) = demo();
        fake.inject(Fault::MalformedJson, 1);
        let resp = send(&fake, &token, "GET", "accounts", &[], "");
        assert_eq!(resp.status(), 200);
        assert!(resp.body().starts_with(b"{\"@odata.context\""));
        assert!(serde_json::from_slice::<Value>(resp.body()).is_err());
    }

    #[test]
    fn oversized_fault_answers_exactly_that_many_bytes_up_to_100_mib() {
        let (fake, token) = demo();
        let size = 100 * 1024 * 1024;
        fake.inject(Fault::Oversized { bytes: size }, 1);
        let resp = send(&fake, &token, "GET", "accounts", &[], "");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body().len(), size);
        assert!(resp.body().starts_with(b"{\"@odata.context\""));
    }

    #[test]
    fn foreign_next_link_points_paging_at_another_host_which_is_recorded_and_refused() {
        let (fake, token) = demo();
        fake.inject(
            Fault::ForeignNextLink {
                host: "evil.example".into(),
            },
            2,
        );
        let body = json(&send(
            &fake,
            &token,
            "GET",
            "accounts?$select=name",
            &[("Prefer", "odata.maxpagesize=5")],
            "",
        ));
        let next = body["@odata.nextLink"].as_str().unwrap();
        assert!(
            next.starts_with(
                "https://evil.example/api/data/v9.2/accounts?$select=name&$skiptoken="
            ),
            "{next}"
        );
        assert_eq!(body["value"].as_array().unwrap().len(), 5);
        // A page with no next link gets one.
        let body = json(&send(&fake, &token, "GET", "accounts?$top=1", &[], ""));
        assert!(
            body["@odata.nextLink"]
                .as_str()
                .unwrap()
                .starts_with("https://evil.example/api/data/v9.2/accounts?$skiptoken=")
        );

        // A client that follows it is refused, and the log shows what it sent.
        let resp = fake.handle(
            http::Request::get(next)
                .header("authorization", format!("Bearer {token}"))
                .body(Bytes::new())
                .unwrap(),
        );
        assert_eq!(resp.status(), 421);
        let last = fake.requests().pop().unwrap();
        assert_eq!(last.host, "evil.example");
        assert_eq!(last.authorization, Some(format!("Bearer {token}")));
    }

    #[test]
    fn oversized_bodies_have_the_exact_size_and_start_like_a_page() {
        for size in [0, 10, 1000, 1 << 20] {
            let body = oversized("contoso.crm.dynamics.com", size);
            assert_eq!(body.len(), size);
        }
        let body = oversized("contoso.crm.dynamics.com", 4096);
        assert!(body.starts_with(b"{\"@odata.context\""));
        assert!(serde_json::from_slice::<Value>(&body).is_err());
    }
}
