//! One incoming request, start to finish, over any `Transport`: check the
//! configuration and the API key, route, apply the allow-list, read the body
//! (capped), then answer from the connected `Client` — which lives as long as
//! the `Gateway`, so a long-lived instance reuses its token.

use dataverse_wasm::client::{CallOptions, ClientConfig};
use dataverse_wasm::http::Method;
use dataverse_wasm::{Client, Error, Transport};
use serde_json::json;

use crate::config::{Config, NotConfigured};
use crate::headers;
use crate::reply::{self, Reply};
use crate::route::{self, Route};

/// Request bodies above this are refused with 413 before they are read whole.
pub const MAX_REQUEST_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The parts of an incoming request the gateway looks at before the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Upper case, e.g. `GET`.
    pub method: String,
    /// `/path?query` as received.
    pub path_and_query: String,
    /// Names as received; values as bytes (they need not be text).
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why the body could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit it was read with.
    TooLarge,
    /// The stream failed; the text says how (no body content).
    Broken(String),
}

/// The gateway of one instance: its configuration and, once connected, its client.
pub struct Gateway<T: Transport> {
    config: Result<Config, NotConfigured>,
    client: Option<Client<T>>,
}

impl<T: Transport> Gateway<T> {
    pub fn new(config: Result<Config, NotConfigured>) -> Self {
        Gateway {
            config,
            client: None,
        }
    }

    /// Whether a client is connected (its token is then reused).
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// Answers `request`. `read_body(limit)` reads the body, failing with
    /// [`BodyError::TooLarge`] past `limit` bytes; it is called only for an
    /// authorised Web API request. `transport` makes the transport of the
    /// client when none is connected yet.
    pub fn handle(
        &mut self,
        request: &Request,
        read_body: impl FnOnce(u64) -> Result<Vec<u8>, BodyError>,
        transport: impl FnOnce() -> T,
    ) -> Reply {
        let Gateway { config, client } = self;
        let config = match config {
            Ok(config) => &*config,
            Err(not_configured) => {
                return reply::error(503, "not_configured", not_configured.0.clone());
            }
        };
        let route = route::route(&request.path_and_query);
        if route == Ok(Route::Health) {
            return match request.method.as_str() {
                "GET" => reply::json(200, &json!({"status": "ok"})),
                _ => method_not_allowed("GET"),
            };
        }
        if !route::key_matches(route::presented_key(&request.headers), &config.api_key) {
            return reply::error(
                401,
                "unauthorized",
                "missing or wrong API key: send it as x-api-key (or Authorization: Bearer)",
            )
            .with_header("www-authenticate", "Bearer");
        }
        match route {
            Err(why) => reply::error(400, "bad_request", why),
            Ok(Route::Health) | Ok(Route::NotFound) => reply::error(
                404,
                "not_found",
                "no such route; use /healthz, /whoami or /api/data/v9.2/…",
            ),
            Ok(Route::WhoAmI) => {
                if request.method != "GET" {
                    return method_not_allowed("GET");
                }
                let client = match connected(client, config, transport) {
                    Ok(client) => client,
                    Err(reply) => return reply,
                };
                match client.who_am_i(&CallOptions::default()) {
                    Ok(reply) => reply::json(
                        200,
                        &json!({
                            "UserId": reply.value.user_id,
                            "BusinessUnitId": reply.value.business_unit_id,
                            "OrganizationId": reply.value.organization_id,
                        }),
                    )
                    .with_header(headers::CLIENT_REQUEST_ID, reply.call.client_request_id),
                    Err(failure) => failure_reply(&failure.error),
                }
            }
            Ok(Route::WebApi {
                path_and_query,
                resource,
            }) => {
                if let Some(allow) = &config.allow
                    && !allow.allows(&resource)
                {
                    return reply::error(
                        403,
                        "not_allowed",
                        "this resource is not on the gateway's allow-list (GATEWAY_ALLOW)",
                    );
                }
                let Some(method) = web_api_method(&request.method) else {
                    return method_not_allowed("GET, POST, PATCH, PUT, DELETE");
                };
                let forwarded = match headers::forwarded(&request.headers) {
                    Ok(found) => found,
                    Err(why) => return reply::error(400, "bad_request", why),
                };
                let body = match read_body(MAX_REQUEST_BODY_BYTES) {
                    Ok(body) => body,
                    Err(BodyError::TooLarge) => {
                        return reply::error(
                            413,
                            "body_too_large",
                            format!(
                                "the request body is larger than {MAX_REQUEST_BODY_BYTES} bytes"
                            ),
                        );
                    }
                    Err(BodyError::Broken(why)) => {
                        return reply::error(
                            400,
                            "bad_request",
                            format!("reading the body: {why}"),
                        );
                    }
                };
                let client = match connected(client, config, transport) {
                    Ok(client) => client,
                    Err(reply) => return reply,
                };
                let options = CallOptions {
                    client_request_id: forwarded.client_request_id,
                    ..CallOptions::default()
                };
                match client.relay(method, &path_and_query, &forwarded.headers, body, &options) {
                    Ok(reply) if reply.value.status == 401 => reply::error(
                        502,
                        "upstream_unauthorized",
                        "Dataverse refused the gateway's access token, also a fresh one",
                    ),
                    Ok(reply) => Reply {
                        status: reply.value.status,
                        headers: headers::returned(&reply.value.headers),
                        body: reply.value.body,
                    }
                    .with_header(headers::CLIENT_REQUEST_ID, reply.call.client_request_id),
                    Err(failure) => failure_reply(&failure.error),
                }
            }
        }
    }
}

/// The connected client, connecting first if needed. A failed connect is
/// not remembered: the next request tries again.
fn connected<'a, T: Transport>(
    client: &'a mut Option<Client<T>>,
    config: &Config,
    transport: impl FnOnce() -> T,
) -> Result<&'a mut Client<T>, Reply> {
    if client.is_none() {
        let settings =
            // The gateway imports no signer (settings::parse_as).
            dataverse_wasm::settings::parse_as::<false>(config.connection.expose()).map_err(|e| {
                reply::error(
                    503,
                    "not_configured",
                    format!("DATAVERSE_CONNECTION is invalid: {e}"),
                )
            })?;
        let connected = Client::connect(settings, transport(), ClientConfig::default())
            .map_err(|f| failure_reply(&f.error))?;
        *client = Some(connected);
    }
    client
        .as_mut()
        .ok_or_else(|| reply::error(500, "internal", "no client"))
}

fn web_api_method(method: &str) -> Option<Method> {
    match method {
        "GET" => Some(Method::Get),
        "POST" => Some(Method::Post),
        "PATCH" => Some(Method::Patch),
        "PUT" => Some(Method::Put),
        "DELETE" => Some(Method::Delete),
        _ => None,
    }
}

fn method_not_allowed(allowed: &str) -> Reply {
    reply::error(
        405,
        "method_not_allowed",
        format!("this route takes {allowed}"),
    )
    .with_header("allow", allowed)
}

/// A call that got no usable answer from Dataverse or Entra ID. The core's
/// messages never hold a secret or a token, so they are passed on.
fn failure_reply(error: &Error) -> Reply {
    match error {
        Error::InvalidRequest(_) => reply::error(400, "bad_request", error.to_string()),
        Error::InvalidSettings(_) => reply::error(503, "not_configured", error.to_string()),
        Error::Authentication(_) | Error::Authority(_) => {
            reply::error(502, "upstream_authentication", error.to_string())
        }
        Error::Throttled {
            retry_after_seconds,
            ..
        } => {
            let reply = reply::error(429, "throttled", error.to_string());
            match retry_after_seconds {
                Some(seconds) => reply.with_header("retry-after", seconds.to_string()),
                None => reply,
            }
        }
        Error::Transport(_) | Error::Unsent { .. } => {
            reply::error(502, "upstream_unreachable", error.to_string())
        }
        Error::AccessDenied(_)
        | Error::NotFound(_)
        | Error::PreconditionFailed(_)
        | Error::Service(_)
        | Error::InvalidResponse(_) => reply::error(502, "upstream_error", error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use dataverse_wasm::http::{Request as Sent, Response};
    use dataverse_wasm::scripted::{Scripted, Shared, invalid_client, response, who_am_i};

    use super::*;
    use crate::config::{ALLOW_VAR, API_KEY_VAR, CONNECTION_VAR};

    const KEY: &str = "k3y-0123456789abcdef";
    const SECRET: &str = "S3cr3t!Value";
    const CALLER_TOKEN: &str = "caller-bearer-value";

    fn login() -> [Response; 2] {
        [
            response(
                401,
                &[(
                    "WWW-Authenticate",
                    "Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, resource_id=https://o.crm.dynamics.com/",
                )],
                "",
            ),
            response(
                200,
                &[],
                r#"{"token_type":"Bearer","expires_in":3600,"access_token":"app-token"}"#,
            ),
        ]
    }

    fn config(allow: Option<&str>) -> Result<Config, NotConfigured> {
        let connection = format!(
            "AuthType=ClientSecret;Url=https://o.crm.dynamics.com/;ClientId=app;ClientSecret={SECRET}"
        );
        Config::from_env(move |name| match name {
            API_KEY_VAR => Some(KEY.to_string()),
            CONNECTION_VAR => Some(connection.clone()),
            ALLOW_VAR => allow.map(str::to_string),
            _ => None,
        })
    }

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path_and_query: target.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn with_key(method: &str, target: &str) -> Request {
        request(method, target, &[("x-api-key", KEY)])
    }

    fn no_body(_: u64) -> Result<Vec<u8>, BodyError> {
        Ok(Vec::new())
    }

    fn code(reply: &Reply) -> String {
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        body["error"]["code"].as_str().unwrap_or("").to_string()
    }

    /// Runs `requests` through one gateway over one script.
    fn run(
        config: Result<Config, NotConfigured>,
        answers: Vec<Response>,
        requests: &[(Request, Vec<u8>)],
    ) -> (Vec<Reply>, Vec<Sent>) {
        let script = Shared::new(Scripted::new(1_000_000, answers));
        let mut gateway = Gateway::new(config);
        let replies = requests
            .iter()
            .map(|(request, body)| gateway.handle(request, |_| Ok(body.clone()), || script.clone()))
            .collect();
        let sent = script.0.borrow().sent.clone();
        (replies, sent)
    }

    #[test]
    fn an_unconfigured_gateway_answers_503_naming_what_is_missing() {
        let mut gateway: Gateway<Shared> = Gateway::new(Config::from_env(|_| None));
        for target in ["/healthz", "/whoami", "/api/data/v9.2/accounts"] {
            let reply = gateway.handle(&with_key("GET", target), no_body, || unreachable!());
            assert_eq!(
                (reply.status, code(&reply).as_str()),
                (503, "not_configured")
            );
            let text = String::from_utf8_lossy(&reply.body);
            assert!(
                text.contains("GATEWAY_API_KEY and DATAVERSE_CONNECTION"),
                "{text}"
            );
        }
    }

    #[test]
    fn healthz_needs_no_key_and_calls_nothing() {
        let (replies, sent) = run(
            config(None),
            vec![],
            &[(request("GET", "/healthz", &[]), vec![])],
        );
        assert_eq!(replies[0].status, 200);
        assert_eq!(replies[0].body, br#"{"status":"ok"}"#);
        assert!(sent.is_empty());
    }

    #[test]
    fn a_missing_or_wrong_key_is_401_before_anything_is_read_or_sent() {
        let mut gateway: Gateway<Shared> = Gateway::new(config(None));
        let cases = [
            request("GET", "/whoami", &[]),
            request("GET", "/whoami", &[("x-api-key", "k3y-0123456789abcdeX")]),
            request(
                "POST",
                "/api/data/v9.2/accounts",
                &[("authorization", &format!("Bearer {CALLER_TOKEN}"))],
            ),
            request("GET", "/nope", &[]),
            request("GET", "/api/data/v9.2/a/../b", &[]),
        ];
        for req in cases {
            let reply = gateway.handle(&req, |_| unreachable!("body read"), || unreachable!());
            assert_eq!(
                (reply.status, code(&reply).as_str()),
                (401, "unauthorized"),
                "{req:?}"
            );
        }
        assert!(!gateway.is_connected());
    }

    #[test]
    fn whoami_connects_once_and_reuses_the_token() {
        let mut answers = login().to_vec();
        answers.extend([who_am_i(), who_am_i()]);
        let requests = [
            (with_key("GET", "/whoami"), vec![]),
            (
                request(
                    "GET",
                    "/whoami",
                    &[("authorization", &format!("Bearer {KEY}"))],
                ),
                vec![],
            ),
        ];
        let (replies, sent) = run(config(None), answers, &requests);
        for reply in &replies {
            assert_eq!(reply.status, 200);
            let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
            assert_eq!(body["UserId"], "u");
        }
        let token_requests = sent.iter().filter(|r| r.url.contains("/oauth2/")).count();
        assert_eq!((sent.len(), token_requests), (4, 1));
    }

    #[test]
    fn web_api_requests_are_relayed_with_the_apps_token_only() {
        let mut answers = login().to_vec();
        answers.push(response(
            204,
            &[
                (
                    "OData-EntityId",
                    "https://o.crm.dynamics.com/api/data/v9.2/accounts(1)",
                ),
                ("Set-Cookie", "x=y"),
            ],
            "",
        ));
        let create = request(
            "POST",
            "/api/data/v9.2/accounts",
            &[
                ("x-api-key", KEY),
                ("Authorization", &format!("Bearer {CALLER_TOKEN}")),
                ("Content-Type", "application/json"),
                ("Connection", "keep-alive"),
                ("x-ms-client-request-id", "req-42"),
            ],
        );
        let (replies, sent) = run(
            config(None),
            answers,
            &[(create, br#"{"name":"A"}"#.to_vec())],
        );
        let reply = &replies[0];
        assert_eq!(reply.status, 204);
        assert_eq!(
            reply.header("odata-entityid"),
            Some("https://o.crm.dynamics.com/api/data/v9.2/accounts(1)")
        );
        assert_eq!(reply.header("x-ms-client-request-id"), Some("req-42"));
        assert_eq!(reply.header("set-cookie"), None);
        let relayed = &sent[2];
        assert_eq!(
            relayed.url,
            "https://o.crm.dynamics.com/api/data/v9.2/accounts"
        );
        assert_eq!(relayed.body, br#"{"name":"A"}"#);
        assert_eq!(
            relayed.header_value("authorization"),
            Some("Bearer app-token")
        );
        assert_eq!(
            relayed.header_value("content-type"),
            Some("application/json")
        );
        assert_eq!(
            relayed.header_value("x-ms-client-request-id"),
            Some("req-42")
        );
        assert_eq!(relayed.header_value("connection"), None);
        for request in &sent {
            for (_, value) in &request.headers {
                assert!(
                    !value.contains(CALLER_TOKEN) && !value.contains(KEY),
                    "{value}"
                );
            }
        }
    }

    #[test]
    fn dataverse_errors_pass_through_and_a_refused_token_is_502() {
        let mut answers = login().to_vec();
        answers.push(response(
            404,
            &[("Content-Type", "application/json")],
            r#"{"error":{"code":"0x80040217","message":"missing"}}"#,
        ));
        answers.extend([
            response(401, &[], ""),
            login()[1].clone(),
            response(401, &[], ""),
        ]);
        let requests = [
            (with_key("GET", "/api/data/v9.2/accounts(1)"), vec![]),
            (with_key("GET", "/api/data/v9.2/accounts"), vec![]),
        ];
        let (replies, _) = run(config(None), answers, &requests);
        assert_eq!(replies[0].status, 404);
        assert_eq!(
            replies[0].body,
            br#"{"error":{"code":"0x80040217","message":"missing"}}"#
        );
        assert_eq!(
            (replies[1].status, code(&replies[1]).as_str()),
            (502, "upstream_unauthorized")
        );
    }

    #[test]
    fn allow_list_method_body_and_route_problems_are_refused_before_connecting() {
        let mut gateway: Gateway<Shared> = Gateway::new(config(Some("accounts")));
        type Case = (Request, Result<Vec<u8>, BodyError>, u16, &'static str);
        let cases: [Case; 6] = [
            (
                with_key("GET", "/api/data/v9.2/contacts"),
                Ok(vec![]),
                403,
                "not_allowed",
            ),
            (
                with_key("GET", "/api/data/v9.2/Contacts?$top=1"),
                Ok(vec![]),
                403,
                "not_allowed",
            ),
            (
                with_key("HEAD", "/api/data/v9.2/accounts"),
                Ok(vec![]),
                405,
                "method_not_allowed",
            ),
            (
                with_key("POST", "/api/data/v9.2/accounts"),
                Err(BodyError::TooLarge),
                413,
                "body_too_large",
            ),
            (
                with_key("GET", "/api/data/v9.2/accounts/../contacts"),
                Ok(vec![]),
                400,
                "bad_request",
            ),
            (with_key("GET", "/elsewhere"), Ok(vec![]), 404, "not_found"),
        ];
        for (req, body, status, expected) in cases {
            let reply = gateway.handle(&req, |_| body, || unreachable!("connect"));
            assert_eq!(
                (reply.status, code(&reply).as_str()),
                (status, expected),
                "{req:?}"
            );
        }
        assert!(!gateway.is_connected());
    }

    #[test]
    fn a_failed_connect_is_502_without_the_secret_and_is_retried() {
        let refused = invalid_client();
        let who = who_am_i();
        let mut answers = vec![login()[0].clone(), refused];
        answers.extend(login());
        answers.push(who);
        let requests = [
            (with_key("GET", "/whoami"), vec![]),
            (with_key("GET", "/whoami"), vec![]),
        ];
        let (replies, _) = run(config(None), answers, &requests);
        assert_eq!(
            (replies[0].status, code(&replies[0]).as_str()),
            (502, "upstream_authentication")
        );
        let text = String::from_utf8_lossy(&replies[0].body);
        assert!(
            text.contains("AADSTS7000215") && !text.contains(SECRET),
            "{text}"
        );
        assert_eq!(replies[1].status, 200);
    }
}
