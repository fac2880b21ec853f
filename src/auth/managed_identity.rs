//! Managed identity (`AuthType=ManagedIdentity`): the token comes from the
//! platform's identity endpoint, not from Entra ID's token endpoint, and no
//! secret is in the settings. Two protocols:
//!
//! - **App Service, Azure Functions, Container Apps** (the platform sets
//!   `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`): `GET
//!   {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource={org}[&client_id=…|
//!   &principal_id=…|&mi_res_id=…]` with `X-IDENTITY-HEADER`; the answer
//!   carries `expires_on` in Unix seconds, as a string.
//! - **IMDS** (virtual machines, scale sets, everywhere else): `GET
//!   http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource={org}[&client_id=…|&object_id=…|&msi_res_id=…]`
//!   with `Metadata: true`; numbers come as strings; retried as its
//!   documentation asks (`retry::decide_imds`).
//!
//! Both are plain http by design, so these requests (and no others) are
//! marked `allow_plain_http`. `IDENTITY_HEADER` is a secret: it goes in that
//! one header to that one endpoint, and an error text that echoes it is
//! scrubbed. Pure: the environment is a lookup closure.

use serde_json::Value;

use super::AccessToken;
use super::token::{aadsts_code, printable};
use crate::error::{AuthFailure, Error};
use crate::http::{Method, Request, Response, split_url};
use crate::percent::query_encode;
use crate::retry::{self, Decision, Outcome, RetryPolicy};
use crate::secret::Secret;
use crate::settings::ManagedIdentityId;

/// App Service's identity endpoint URL (set by the platform).
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
/// The secret App Service wants back in `X-IDENTITY-HEADER` (set, and
/// rotated, by the platform).
pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
/// The variables a managed identity reads: the host passes them through.
pub const ENVIRONMENT_VARIABLES: [&str; 2] = [IDENTITY_ENDPOINT, IDENTITY_HEADER];

/// IMDS's token endpoint: fixed, link-local, plain http.
pub const IMDS_TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2018-02-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// The longest error text kept from an identity endpoint's answer.
const MAX_DESCRIPTION_CHARS: usize = 300;

/// Where the token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `IDENTITY_ENDPOINT` (its URL as the platform set it) and the secret
    /// `IDENTITY_HEADER`.
    AppService {
        url: String,
        header: Secret,
    },
    Imds,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::AppService { url, .. } => write!(f, "AppService({url}, header ***)"),
            Endpoint::Imds => f.write_str("Imds"),
        }
    }
}

impl Endpoint {
    /// App Service's endpoint when the platform set both variables, IMDS
    /// when it set neither. One without the other is refused: Azure Arc and
    /// Service Fabric set `IDENTITY_ENDPOINT` for protocols of their own,
    /// and IMDS is not there to fall back on.
    pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Result<Endpoint, Error> {
        let set = |name| lookup(name).filter(|v| !v.trim().is_empty());
        match (set(IDENTITY_ENDPOINT), set(IDENTITY_HEADER)) {
            (None, None) => Ok(Endpoint::Imds),
            (Some(url), Some(header)) => {
                let url = url.trim().to_string();
                // The platform's URL may be plain http (to loopback, or to a
                // container host's address): it is the one place that is.
                if split_url(&url).is_none() || url.contains('#') {
                    return Err(Error::InvalidSettings(format!(
                        "{IDENTITY_ENDPOINT} is not an http(s) URL"
                    )));
                }
                Ok(Endpoint::AppService {
                    url,
                    header: Secret::new(header.trim()),
                })
            }
            (Some(_), None) => Err(Error::InvalidSettings(format!(
                "{IDENTITY_ENDPOINT} is set but {IDENTITY_HEADER} is not: App Service, Functions \
                 and Container Apps set both (Azure Arc and Service Fabric managed identities \
                 are not supported); the host must pass both to the component"
            ))),
            (None, Some(_)) => Err(Error::InvalidSettings(format!(
                "{IDENTITY_HEADER} is set but {IDENTITY_ENDPOINT} is not; the host must pass \
                 both to the component"
            ))),
        }
    }

    /// The endpoint's URL without a query: what `token-info` reports as
    /// the token's authority.
    pub fn url(&self) -> &str {
        match self {
            Endpoint::AppService { url, .. } => url.split('?').next().unwrap_or(url),
            Endpoint::Imds => IMDS_TOKEN_URL,
        }
    }

    /// The name errors use.
    fn name(&self) -> &'static str {
        match self {
            Endpoint::AppService { .. } => "the App Service identity endpoint (IDENTITY_ENDPOINT)",
            Endpoint::Imds => "the Azure Instance Metadata Service (IMDS, 169.254.169.254)",
        }
    }

    /// The retry rule of this endpoint: IMDS's own, or that of any request
    /// that changes nothing.
    pub fn retry_rule(&self) -> fn(&RetryPolicy, u32, u64, Outcome, u64) -> Decision {
        match self {
            Endpoint::AppService { .. } => retry::decide_repeatable,
            Endpoint::Imds => retry::decide_imds,
        }
    }
}

/// The token request for the organization `org_url` (its origin, the
/// token's `resource`) as the identity `id`.
pub fn request(endpoint: &Endpoint, org_url: &str, id: &ManagedIdentityId) -> Request {
    let (base, version) = match endpoint {
        Endpoint::AppService { url, .. } => (url.as_str(), APP_SERVICE_API_VERSION),
        Endpoint::Imds => (IMDS_TOKEN_URL, IMDS_API_VERSION),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let mut url = format!(
        "{base}{separator}api-version={version}&resource={}",
        query_encode(org_url)
    );
    let app_service = matches!(endpoint, Endpoint::AppService { .. });
    let parameter = match (id, app_service) {
        (ManagedIdentityId::SystemAssigned, _) => None,
        (ManagedIdentityId::ClientId(v), _) => Some(("client_id", v)),
        (ManagedIdentityId::ObjectId(v), true) => Some(("principal_id", v)),
        (ManagedIdentityId::ObjectId(v), false) => Some(("object_id", v)),
        (ManagedIdentityId::ResourceId(v), true) => Some(("mi_res_id", v)),
        (ManagedIdentityId::ResourceId(v), false) => Some(("msi_res_id", v)),
    };
    if let Some((name, value)) = parameter {
        url.push_str(&format!("&{name}={}", query_encode(value)));
    }
    let request = Request::new(Method::Get, url).header("Accept", "application/json");
    let request = match endpoint {
        Endpoint::AppService { header, .. } => request.header("X-IDENTITY-HEADER", header.expose()),
        Endpoint::Imds => request.header("Metadata", "true"),
    };
    request.allowing_plain_http()
}

/// A token from an identity endpoint, and the identity's client id when the
/// answer names it.
#[derive(Debug)]
pub struct Issued {
    pub token: AccessToken,
    pub client_id: Option<String>,
}

/// A string field of a JSON object.
fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)?.as_str()
}

/// Seconds, as a number or (IMDS, App Service) a string of digits.
fn seconds(body: &Value, name: &str) -> Option<u64> {
    match body.get(name)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads the identity endpoint's answer; `now` is when it was asked.
///
/// The expiry is `now + expires_in` when the answer has it (IMDS: immune to
/// a skewed clock), else `expires_on` (App Service's only field, Unix
/// seconds). Every failure is an authentication error: the endpoint's own
/// error (with a hint for the ones we know), or an answer that is no token.
pub fn parse_response(
    endpoint: &Endpoint,
    id: &ManagedIdentityId,
    response: &Response,
    now: u64,
) -> Result<Issued, Error> {
    read_response(endpoint, id, response, now).map_err(|error| scrub(endpoint, error))
}

/// An error that quotes the endpoint's answer without App Service's
/// `X-IDENTITY-HEADER` value in it: the endpoint had it from the request,
/// and a broken or hostile one may send it back (in a content type, an
/// error description) to land in the caller's logs.
fn scrub(endpoint: &Endpoint, error: Error) -> Error {
    let Endpoint::AppService { header, .. } = endpoint else {
        return error;
    };
    let secret = header.expose();
    match error {
        Error::Authentication(mut failure) if !secret.is_empty() => {
            for text in [&mut failure.error, &mut failure.description] {
                if text.contains(secret) {
                    *text = text.replace(secret, "****");
                }
            }
            for text in [
                &mut failure.hint,
                &mut failure.trace_id,
                &mut failure.correlation_id,
            ]
            .into_iter()
            .flatten()
            {
                if text.contains(secret) {
                    *text = text.replace(secret, "****");
                }
            }
            Error::Authentication(failure)
        }
        other => other,
    }
}

fn read_response(
    endpoint: &Endpoint,
    id: &ManagedIdentityId,
    response: &Response,
    now: u64,
) -> Result<Issued, Error> {
    // A `Value`, not a derived struct: the component links its parser
    // anyway, and each derived visitor costs kilobytes.
    let body = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .filter(Value::is_object);
    if response.status != 200 || body.as_ref().is_some_and(|b| b.get("error").is_some()) {
        return Err(refusal(endpoint, id, response, body));
    }
    let Some(body) = body else {
        return Err(unreadable(endpoint, response, "not a token response"));
    };
    if let Some(kind) =
        text(&body, "token_type").filter(|t| !t.trim().eq_ignore_ascii_case("bearer"))
    {
        return Err(Error::Authentication(Box::new(AuthFailure {
            status: response.status,
            error: "unsupported_token_type".into(),
            description: format!(
                "{} issued a token of type '{}'; this client sends only Bearer tokens",
                endpoint.name(),
                printable(kind)
            ),
            ..AuthFailure::default()
        })));
    }
    let value = text(&body, "access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unreadable(
                endpoint,
                response,
                "a token response without an access_token",
            )
        })?;
    let expires_at = match (seconds(&body, "expires_in"), seconds(&body, "expires_on")) {
        (Some(expires_in), _) => now.saturating_add(expires_in),
        (None, Some(expires_on)) => expires_on,
        (None, None) => {
            return Err(unreadable(
                endpoint,
                response,
                "a token response without a valid expires_in or expires_on",
            ));
        }
    };
    Ok(Issued {
        token: AccessToken {
            value: Secret::new(value),
            expires_at,
            refresh_at: None,
        },
        client_id: text(&body, "client_id")
            .map(printable)
            .filter(|c| !c.is_empty()),
    })
}

/// The endpoint refused: its words, scrubbed of the identity header, and
/// what to do about it.
fn refusal(
    endpoint: &Endpoint,
    id: &ManagedIdentityId,
    response: &Response,
    body: Option<Value>,
) -> Error {
    let Some(body) = body else {
        return unreadable(endpoint, response, "not an error this client knows");
    };
    // IMDS errors are OAuth's `error`/`error_description`; App Service's are
    // {"statusCode":400,"message":"…","correlationId":"…"}.
    let said = text(&body, "error_description")
        .or_else(|| text(&body, "message"))
        .unwrap_or_default();
    let mut description: String = said
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    if let Endpoint::AppService { header, .. } = endpoint
        && !header.is_empty()
    {
        description = description.replace(header.expose(), "***");
    }
    let code = aadsts_code(&description);
    let hint = code
        .and_then(super::token::hint)
        .map(str::to_string)
        .or_else(|| hint(endpoint, id, response.status, &description));
    let description = if description.is_empty() {
        format!("{} answered HTTP {}", endpoint.name(), response.status)
    } else {
        description
    };
    Error::Authentication(Box::new(AuthFailure {
        status: response.status,
        code,
        error: text(&body, "error")
            .map(printable)
            .unwrap_or_else(|| "managed_identity_error".into()),
        description,
        trace_id: None,
        correlation_id: text(&body, "correlationId").map(printable),
        hint,
    }))
}

/// What to do about the refusals managed identities meet.
fn hint(
    endpoint: &Endpoint,
    id: &ManagedIdentityId,
    status: u16,
    description: &str,
) -> Option<String> {
    let lower = description.to_ascii_lowercase();
    let identity_missing = status == 400
        && (lower.contains("identity not found")
            || lower.contains("unable to load")
            || lower.contains("no managed identity"));
    if identity_missing {
        return Some(match id {
            ManagedIdentityId::SystemAssigned => "this resource has no system-assigned managed \
                identity: turn it on (Identity → System assigned → On), or name a user-assigned \
                identity with ClientId, ObjectId or ResourceId"
                .to_string(),
            ManagedIdentityId::ClientId(_) => user_assigned("ClientId"),
            ManagedIdentityId::ObjectId(_) => user_assigned("ObjectId"),
            ManagedIdentityId::ResourceId(_) => user_assigned("ResourceId"),
        });
    }
    match (endpoint, status) {
        (Endpoint::AppService { .. }, 401 | 403) => Some(format!(
            "the identity endpoint refused the {IDENTITY_HEADER}: the platform rotates it, so the \
             host must pass the component the current value (not a copy)"
        )),
        (Endpoint::Imds, 400) if lower.contains("metadata header") => {
            Some("IMDS wants the Metadata: true header: a proxy in between dropped it".into())
        }
        (Endpoint::Imds, 410) => Some(
            "IMDS is being upgraded and did not come back within the retry budget (it says 70 s): \
             try again, or raise the client options' max-total-wait-ms"
                .into(),
        ),
        _ => None,
    }
}

fn user_assigned(key: &str) -> String {
    format!(
        "no user-assigned managed identity with this {key} is assigned to this resource: check \
         the {key}, and that the identity is added under Identity → User assigned"
    )
}

/// An answer that is no token and no error this client knows.
fn unreadable(endpoint: &Endpoint, response: &Response, what: &str) -> Error {
    let content_type = response
        .header("content-type")
        .map(|t| printable(t.split(';').next().unwrap_or("").trim()))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "no content type".into());
    Error::Authentication(Box::new(AuthFailure {
        status: response.status,
        error: "unreadable_response".into(),
        description: format!(
            "{} answered HTTP {} with something unreadable: {what} ({content_type}, {} bytes)",
            endpoint.name(),
            response.status,
            response.body.len()
        ),
        hint: Some(
            "the identity endpoint, or a proxy in front of it, did not answer as a managed \
             identity endpoint does: is this an Azure resource with a managed identity?"
                .into(),
        ),
        ..AuthFailure::default()
    }))
}

/// A transport failure reaching the endpoint, said so that someone outside
/// Azure sees why (nothing listens at IMDS's address there).
pub fn unreachable(endpoint: &Endpoint, error: Error) -> Error {
    let add = |message: String| {
        format!(
            "{message}; no managed identity answered at {}: is this an Azure resource with a \
             managed identity? Outside Azure use another AuthType",
            endpoint.name()
        )
    };
    match error {
        Error::Unsent { message, permanent } => Error::Unsent {
            message: add(message),
            permanent,
        },
        Error::Transport(message) => Error::Transport(add(message)),
        other => other,
    }
}

/// The `tid` claim of an access token, when it is a JWT with one: what
/// `token-info` shows as a managed identity's tenant (the endpoint does not
/// say; the token is not checked, only read).
pub fn token_tenant(token: &Secret) -> Option<String> {
    use base64::Engine;
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims = serde_json::from_slice::<Value>(&bytes).ok()?;
    let tid = text(&claims, "tid")?;
    let plain = !tid.is_empty()
        && tid.len() <= 64
        && tid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    plain.then(|| tid.to_string())
}

#[cfg(test)]
#[path = "managed_identity_tests.rs"]
mod tests;
