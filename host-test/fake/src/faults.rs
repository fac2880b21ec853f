//! Fault injection, to test a client's retry policy and hardening.
//!
//! [`Fake::inject`](super::Fake::inject) queues a [`Fault`] for the next N
//! authenticated Dataverse requests. Faults that change only *how* an answer
//! is delivered (a delay, a connection dropped mid-body) cannot be expressed in
//! an `http::Response<Bytes>`: they ride along as a [`Delivery`] in the
//! response's extensions, and whoever puts the response on the wire (the TLS
//! server here, the in-process hook elsewhere) must honour it.

use super::{FakeApp, FakeConfig, State};
use crate::dataverse::context::Respond;
use crate::dataverse::reply::{self, Body, Reply};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};

/// A misbehaviour of Dataverse (or the network in front of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: n` and the service protection error
    /// `0x80072322` ("Number of requests exceeded the limit of 6000 over time
    /// window of 300 seconds."). The request is not executed.
    Throttle { retry_after_secs: u64 },
    /// That status (e.g. 500, 502, 503) with a Dataverse-style error body.
    /// The request is not executed.
    Status(u16),
    /// The normal answer, delivered after `millis` ([`Delivery::Delay`]).
    Slow { millis: u64 },
    /// The request is executed; its answer goes out with the full
    /// `Content-Length` but only the first half of the body, then the
    /// connection is closed ([`Delivery::DropAfter`]). An answer without a
    /// body (e.g. a 204) becomes a 500 with a JSON error body, so that there
    /// is something to cut.
    DropMidBody,
    /// 200 with a JSON body cut off mid-way. The request is not executed.
    MalformedJson,
    /// 200 with a body of exactly `bytes` bytes: the start of a `value` array
    /// that never ends. The request is not executed.
    Oversized { bytes: usize },
    /// The connection is closed as soon as the request has been read, before
    /// any byte of an answer ([`Delivery::HangUp`]), as a server or load
    /// balancer does when it drops an idle keep-alive connection just as a
    /// request arrives. The request is not executed.
    HangUp,
    /// The request is executed, then the connection is closed before any
    /// byte of an answer ([`Delivery::HangUp`]): a server that committed a
    /// write and lost the connection before answering. The client cannot
    /// know whether the write happened, so it must not resend a POST.
    HangUpAfterExecuting,
    /// 200 with a body of `bytes` bytes in chunks and no `Content-Length`,
    /// made as it is sent ([`Delivery::Generated`]): the start of a `value`
    /// array that never ends, of any size, without the fake holding it. The
    /// request is not executed.
    Endless { bytes: u64 },
    /// The normal answer, with `@odata.nextLink` (added if the answer had
    /// none) pointing at `https://{host}/api/data/v9.2/accounts?$skiptoken=…`,
    /// to prove a client never sends its token to a host it did not choose.
    ForeignNextLink { host: String },
}

/// How a response must be put on the wire, found in its `extensions()`.
///
/// `Clone + Send + Sync + 'static`, so any transport can read it with
/// `response.extensions().get::<Delivery>()`. A response without one is
/// delivered normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Wait this long before sending anything (status line included).
    Delay { millis: u64 },
    /// Send the status line and headers with the full `Content-Length`, then
    /// only the first `bytes` bytes of the body, then close the connection
    /// abruptly (no further bytes, no TLS close_notify).
    DropAfter { bytes: usize },
    /// Send nothing at all and close the connection.
    HangUp,
    /// Send the status line and headers without a `Content-Length`, then a
    /// body of `bytes` bytes in all, made chunk by chunk ([`GeneratedBody`]).
    Generated { bytes: u64 },
}

/// Queued faults, in injection order, each with how many requests remain.
#[derive(Debug, Default)]
pub(crate) struct FaultQueue(VecDeque<(Fault, usize)>);

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault, times: usize) {
        if times > 0 {
            self.0.push_back((fault, times));
        }
    }

    /// The fault for the next request, if one is due.
    pub(crate) fn take(&mut self) -> Option<Fault> {
        let (fault, remaining) = self.0.front_mut()?;
        let fault = fault.clone();
        *remaining -= 1;
        if *remaining == 0 {
            self.0.pop_front();
        }
        Some(fault)
    }
}

fn error_body(code: &str, message: &str) -> Body {
    Body::Json(json!({"error": {"code": code, "message": message}}))
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
        Fault::Throttle { retry_after_secs } => reply(
            Reply::with_status(
                StatusCode::TOO_MANY_REQUESTS,
                error_body(
                    "0x80072322",
                    "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
                ),
            )
            .header("retry-after", retry_after_secs.to_string()),
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

/// One row of a page that never ends.
const ENDLESS_ROW: &[u8] =
    b"{\"@odata.etag\":\"W/\\\"1\\\"\",\"name\":\"Oversized row padding padding padding\"},";

/// The next at most `max` bytes of a [`Delivery::Generated`] body after its
/// head: whole rows, 64 KiB at a time.
fn endless_chunk(max: u64) -> Bytes {
    let rows = (64 * 1024 / ENDLESS_ROW.len()).max(1);
    let mut out = ENDLESS_ROW.repeat(rows);
    out.truncate(usize::try_from(max).unwrap_or(usize::MAX).min(out.len()));
    Bytes::from(out)
}

/// A [`Delivery::Generated`] body: its head, then rows made as they are
/// polled until `remaining` bytes have gone out. A transport polls it only
/// as fast as its reader takes the bytes, so it costs no memory.
pub struct GeneratedBody {
    head: Option<Bytes>,
    remaining: u64,
}

impl GeneratedBody {
    /// The body of `response` (its head) followed by rows up to `bytes` in all.
    pub fn new(head: Bytes, bytes: u64) -> GeneratedBody {
        let remaining = bytes.saturating_sub(head.len() as u64);
        GeneratedBody {
            head: Some(head),
            remaining,
        }
    }
}

impl hyper::body::Body for GeneratedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Some(head) = self.head.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(head))));
        }
        if self.remaining == 0 {
            return std::task::Poll::Ready(None);
        }
        let chunk = endless_chunk(self.remaining);
        self.remaining -= chunk.len() as u64;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.remaining == 0
    }
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
    use super::super::test_support::*;
    use super::super::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Fake};
    use super::*;

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
    fn queue_serves_each_fault_the_requested_number_of_times_in_order() {
        let mut q = FaultQueue::default();
        q.push(Fault::Status(503), 2);
        q.push(Fault::MalformedJson, 1);
        q.push(Fault::Status(502), 0);
        assert_eq!(q.take(), Some(Fault::Status(503)));
        assert_eq!(q.take(), Some(Fault::Status(503)));
        assert_eq!(q.take(), Some(Fault::MalformedJson));
        assert_eq!(q.take(), None);
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
