//! The fake's managed identity endpoints, faithful to the two protocols:
//!
//! **IMDS** at `http://169.254.169.254/metadata/identity/oauth2/token`
//! (reached in tests through a `--connect-to` rule, never the real address):
//! `Metadata: true` required (400 `invalid_request` "Required metadata header
//! not specified"), `api-version` and `resource` required; the identity by
//! `client_id`, `object_id` or `msi_res_id`, else the system-assigned one —
//! none → 400 `{"error":"invalid_request","error_description":"Identity not
//! found"}`; a resource other than the org → 400 `invalid_resource`
//! AADSTS500011. A token answer has every number as a string
//! (`expires_in`, `expires_on`, `not_before`, `ext_expires_in`).
//!
//! **App Service** at [`FakeConfig::identity_endpoint`]: `X-IDENTITY-HEADER`
//! must be [`FakeConfig::identity_header`] (else 401, the fake's choice of
//! words), `api-version=2019-08-01`; the identity by `client_id`,
//! `principal_id` or `mi_res_id`; errors are `{"statusCode","message",
//! "correlationId"}` ("Unable to load the proper Managed Identity.");
//! a token answer has `expires_on` in Unix seconds, as a string.
//!
//! [`Fake::inject_identity`] queues faults for both: `Status(n)` answers n
//! (410 as IMDS says while it upgrades), `Throttle` 429 with `Retry-After`,
//! `HangUp` closes the connection.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use serde_json::json;

use crate::entra::token::IssuedToken;
use crate::oidc::{json_response, unix_now};
use crate::{Delivery, Fake, FakeConfig, Fault, State, percent};

/// IMDS's fixed address.
pub const IMDS_HOST: &str = "169.254.169.254";

/// A managed identity the fake's platform knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeManagedIdentity {
    /// Its client (application) id: the tokens' app, whose Application User
    /// (a [`crate::FakeApp`] with this id) Dataverse finds.
    pub client_id: String,
    /// Its object (principal) id.
    pub object_id: String,
    /// Its Azure resource id (user-assigned identities).
    pub resource_id: String,
    /// The resource's system-assigned identity (asked for without an id).
    pub system_assigned: bool,
}

/// Which protocol a request came in by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Imds,
    AppService,
}

impl Fake {
    /// Makes the next `times` requests to IMDS or the App Service identity
    /// endpoint meet `fault` (see the `identity` module docs).
    pub fn inject_identity(&self, fault: Fault, times: usize) {
        self.lock().identity_faults.push(fault, times);
    }
}

pub(crate) fn handle(
    protocol: Protocol,
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Response<Bytes> {
    let correlation_id = state.ids.guid();
    if let Some(fault) = state.identity_faults.take() {
        return faulted(protocol, &fault, &correlation_id);
    }
    match answer(protocol, config, state, req) {
        Ok(response) => response,
        Err((status, error, message)) => {
            error_response(protocol, status, error, &message, &correlation_id)
        }
    }
}

type Refusal = (StatusCode, &'static str, String);

fn answer(
    protocol: Protocol,
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Result<Response<Bytes>, Refusal> {
    let bad = |error, message: &str| Err((StatusCode::BAD_REQUEST, error, message.to_string()));
    let path = req.uri().path().trim_end_matches('/').to_ascii_lowercase();
    let expected_path = match protocol {
        Protocol::Imds => "/metadata/identity/oauth2/token".to_string(),
        Protocol::AppService => endpoint_path(&config.identity_endpoint),
    };
    if path != expected_path {
        return Err((StatusCode::NOT_FOUND, "not_found", "Not found".into()));
    }
    match protocol {
        Protocol::Imds => {
            let metadata = req.headers().get("metadata").and_then(|v| v.to_str().ok());
            if metadata != Some("true") {
                return bad("invalid_request", "Required metadata header not specified");
            }
        }
        Protocol::AppService => {
            let header = req
                .headers()
                .get("x-identity-header")
                .and_then(|v| v.to_str().ok());
            if header != Some(config.identity_header.0.as_str()) {
                return Err((
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "The X-IDENTITY-HEADER header is missing or does not match.".into(),
                ));
            }
        }
    }
    let query = percent::parse_pairs(req.uri().query().unwrap_or(""));
    let param = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let wanted_version = match protocol {
        Protocol::Imds => "2018-02-01",
        Protocol::AppService => "2019-08-01",
    };
    match param("api-version") {
        None => {
            return bad(
                "invalid_request",
                "Required query variable 'api-version' is missing",
            );
        }
        Some(v) if v != wanted_version => {
            return bad("invalid_request", "Invalid version of the api specified");
        }
        Some(_) => {}
    }
    let Some(resource) = param("resource") else {
        return bad(
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let (object_param, resource_param) = match protocol {
        Protocol::Imds => ("object_id", "msi_res_id"),
        Protocol::AppService => ("principal_id", "mi_res_id"),
    };
    let named = [
        param("client_id").map(|v| (0, v)),
        param(object_param).map(|v| (1, v)),
        param(resource_param).map(|v| (2, v)),
    ];
    let named: Vec<(u8, &str)> = named.into_iter().flatten().collect();
    let identity = match named[..] {
        [] => config.managed_identities.iter().find(|i| i.system_assigned),
        [(kind, value)] => config.managed_identities.iter().find(|i| {
            let id = match kind {
                0 => &i.client_id,
                1 => &i.object_id,
                _ => &i.resource_id,
            };
            !i.system_assigned && id.eq_ignore_ascii_case(value)
        }),
        _ => {
            return bad(
                "invalid_request",
                "Only one of client_id, object_id or msi_res_id may be given",
            );
        }
    };
    let Some(identity) = identity else {
        return match protocol {
            Protocol::Imds => bad("invalid_request", "Identity not found"),
            Protocol::AppService => bad(
                "invalid_request",
                "Unable to load the proper Managed Identity.",
            ),
        };
    };
    let trimmed = resource.trim_end_matches('/');
    let key_vault = trimmed.eq_ignore_ascii_case(crate::keyvault::KEY_VAULT_RESOURCE);
    if !trimmed.eq_ignore_ascii_case(&config.org_origin()) && !key_vault {
        return bad(
            "invalid_resource",
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                config.tenant_id
            ),
        );
    }
    let access_token = state.ids.token();
    let lifetime = config.token_lifetime_secs;
    state.tokens.insert(
        access_token.clone(),
        IssuedToken {
            client_id: identity.client_id.clone(),
            resource: trimmed.to_ascii_lowercase(),
            expires: Instant::now() + Duration::from_secs(lifetime),
        },
    );
    let now = unix_now();
    let body = match protocol {
        Protocol::Imds => json!({
            "access_token": access_token,
            "client_id": identity.client_id,
            "expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime as i64).to_string(),
            "ext_expires_in": lifetime.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
        Protocol::AppService => json!({
            "access_token": access_token,
            "expires_on": (now + lifetime as i64).to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }),
    };
    Ok(json_response(StatusCode::OK, body))
}

/// The path of an endpoint URL, lower case, without a trailing slash.
fn endpoint_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split('?').next().unwrap_or("");
    path.trim_end_matches('/').to_ascii_lowercase()
}

/// The protocol's error shape.
fn error_response(
    protocol: Protocol,
    status: StatusCode,
    error: &str,
    message: &str,
    correlation_id: &str,
) -> Response<Bytes> {
    let body = match protocol {
        Protocol::Imds => json!({"error": error, "error_description": message}),
        Protocol::AppService => json!({
            "statusCode": status.as_u16(),
            "message": message,
            "correlationId": correlation_id,
        }),
    };
    json_response(status, body)
}

fn faulted(protocol: Protocol, fault: &Fault, correlation_id: &str) -> Response<Bytes> {
    match fault {
        Fault::Throttle { retry_after_secs } => {
            let mut response = error_response(
                protocol,
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests (injected by the fake)",
                correlation_id,
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs),
            );
            response
        }
        Fault::HangUp => {
            let mut response = Response::new(Bytes::new());
            response.extensions_mut().insert(Delivery::HangUp);
            response
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let message = if *code == 410 {
                "IMDS is being upgraded (injected by the fake)"
            } else {
                "The service is temporarily unavailable (injected by the fake)"
            };
            error_response(
                protocol,
                status,
                "temporarily_unavailable",
                message,
                correlation_id,
            )
        }
        _ => error_response(
            protocol,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable (injected by the fake)",
            correlation_id,
        ),
    }
}
