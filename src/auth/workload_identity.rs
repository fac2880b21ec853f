//! Workload identity federation (`AuthType=WorkloadIdentity`): the client
//! assertion of the token request is a token some other issuer signed, and
//! the app registration trusts it through a federated credential (issuer,
//! subject, audience). Two sources, as azure-identity and the Azure login
//! action read them:
//!
//! - **a file** the platform writes and rotates (AKS workload identity:
//!   `AZURE_FEDERATED_TOKEN_FILE`, with `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`
//!   and `AZURE_AUTHORITY_HOST` beside it), read again for every token;
//! - **GitHub Actions OIDC** (`FederatedToken=GitHubActions`): `GET
//!   {ACTIONS_ID_TOKEN_REQUEST_URL}&audience=api%3A%2F%2FAzureADTokenExchange`
//!   with `Authorization: bearer {ACTIONS_ID_TOKEN_REQUEST_TOKEN}` →
//!   `{"value":"<jwt>"}`, asked again for every token.
//!
//! The settings win over the environment. Pure: the environment is a lookup
//! closure; the caller reads the file and sends the request.

use super::token::printable;
use crate::error::{AuthFailure, Error};
use crate::http::{Method, Request, Response, split_url};
use crate::percent::query_encode;
use crate::secret::Secret;
use crate::settings::{FederatedTokenSource, Settings};

pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// A secret: it buys an OIDC token for the workflow's identity.
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// The variables a workload identity reads: the host passes them through.
pub const ENVIRONMENT_VARIABLES: [&str; 6] = [
    AZURE_FEDERATED_TOKEN_FILE,
    AZURE_CLIENT_ID,
    AZURE_TENANT_ID,
    AZURE_AUTHORITY_HOST,
    ACTIONS_ID_TOKEN_REQUEST_URL,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN,
];

/// The audience Entra ID's federated credentials expect by default (the
/// public cloud's; the Azure login action asks GitHub for it).
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A projected service account token is 1–2 KB; anything far larger is not one.
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// Where each token's assertion comes from, resolved against the environment.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The token file's path (inside the component: the host maps it).
    File(String),
    GitHubActions {
        url: String,
        token: Secret,
    },
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::File(path) => write!(f, "File({path})"),
            TokenSource::GitHubActions { url, .. } => write!(f, "GitHubActions({url}, token ***)"),
        }
    }
}

/// The settings completed from the environment (`ClientId`, the tenant, the
/// login host), and the token source.
pub fn resolve(
    mut settings: Settings,
    source: &FederatedTokenSource,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Settings, TokenSource), Error> {
    let set = |name| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if settings.client_id.is_empty() {
        settings.client_id = set(AZURE_CLIENT_ID).ok_or_else(|| {
            Error::InvalidSettings(format!(
                "ClientId is required for AuthType=WorkloadIdentity: the application (client) id \
                 of the app registration that holds the federated credential, in the settings \
                 or in {AZURE_CLIENT_ID}"
            ))
        })?;
    }
    let login_host = set(AZURE_AUTHORITY_HOST);
    if settings.tenant_id.is_none() && settings.authority.is_none() {
        // Revalidated as a whole below: TenantId's rules apply.
        settings.tenant_id = set(AZURE_TENANT_ID);
    }
    if let Some(host) = login_host
        && settings.authority.is_none()
    {
        let host = host.trim_end_matches('/');
        match settings.tenant_id.take() {
            Some(tenant) => settings.authority = Some(format!("{host}/{tenant}")),
            // The tenant is discovered; the platform's login host is trusted.
            None => {
                let bare = host
                    .strip_prefix("https://")
                    .ok_or_else(|| {
                        Error::InvalidSettings(format!(
                            "{AZURE_AUTHORITY_HOST} must be an https URL, e.g. https://login.microsoftonline.com/"
                        ))
                    })?
                    .to_string();
                settings.trusted_authority_hosts.push(bare);
            }
        }
    }
    // A workload identity, never a host key: `false` keeps the host-key
    // check out of the components that cannot sign.
    let settings = settings.validate_as::<false>()?;
    let source = match source {
        FederatedTokenSource::File(Some(path)) => TokenSource::File(path.clone()),
        FederatedTokenSource::File(None) => {
            TokenSource::File(set(AZURE_FEDERATED_TOKEN_FILE).ok_or_else(|| {
                Error::InvalidSettings(format!(
                    "TokenFile is required for AuthType=WorkloadIdentity, or \
                     {AZURE_FEDERATED_TOKEN_FILE} in the environment (AKS sets it in pods labelled \
                     azure.workload.identity/use=true); for GitHub Actions use \
                     FederatedToken=GitHubActions"
                ))
            })?)
        }
        FederatedTokenSource::GitHubActions => {
            let (Some(url), Some(token)) = (
                set(ACTIONS_ID_TOKEN_REQUEST_URL),
                set(ACTIONS_ID_TOKEN_REQUEST_TOKEN),
            ) else {
                return Err(Error::InvalidSettings(format!(
                    "FederatedToken=GitHubActions needs {ACTIONS_ID_TOKEN_REQUEST_URL} and \
                     {ACTIONS_ID_TOKEN_REQUEST_TOKEN}: GitHub sets them in a job with \
                     `permissions: id-token: write`, and the host must pass them to the component"
                )));
            };
            // The request token is a secret: it travels over https only.
            if !split_url(&url).is_some_and(|p| p.https) || url.contains('#') {
                return Err(Error::InvalidSettings(format!(
                    "{ACTIONS_ID_TOKEN_REQUEST_URL} must be an https URL"
                )));
            }
            TokenSource::GitHubActions {
                url,
                token: Secret::new(token),
            }
        }
    };
    Ok((settings, source))
}

/// The federated token in a token file's bytes: one JWT, surrounding
/// whitespace ignored. Errors name the path, never the contents.
pub fn read_token(path: &str, bytes: &[u8]) -> Result<Secret, Error> {
    let text = std::str::from_utf8(bytes).map(str::trim).unwrap_or("");
    if !looks_like_jwt(text) {
        return Err(Error::InvalidSettings(format!(
            "the federated token file {path} does not hold a JWT ({} bytes): it should be the \
             token the platform projects (AKS: azure-identity-token)",
            bytes.len()
        )));
    }
    Ok(Secret::new(text))
}

/// Three base64url segments, the signature not empty.
fn looks_like_jwt(text: &str) -> bool {
    let segments: Vec<&str> = text.split('.').collect();
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    segments.len() == 3 && segments.iter().all(|s| !s.is_empty() && base64url(s))
}

/// GitHub's OIDC token request for `audience` (percent-encoded, as
/// `@actions/core`'s `getIDToken` sends it).
pub fn github_request(url: &str, token: &Secret, audience: &str) -> Request {
    let separator = if url.contains('?') { '&' } else { '?' };
    Request::new(
        Method::Get,
        format!("{url}{separator}audience={}", query_encode_all(audience)),
    )
    .header("Authorization", format!("bearer {}", token.expose()))
    .header("Accept", "application/json")
}

/// `query_encode`, also escaping `:` and `/` (an audience is a URI).
fn query_encode_all(value: &str) -> String {
    query_encode(value).replace(':', "%3A").replace('/', "%2F")
}

/// The JWT in GitHub's answer `{"count":…,"value":"<jwt>"}`. A refusal is an
/// authentication error, its text scrubbed of the request token.
pub fn parse_github_response(response: &Response, request_token: &Secret) -> Result<Secret, Error> {
    let body = serde_json::from_slice::<serde_json::Value>(&response.body).ok();
    let field = |name| body.as_ref().and_then(|b| b.get(name)?.as_str());
    if response.status == 200
        && let Some(value) = field("value").map(str::trim).filter(|v| looks_like_jwt(v))
    {
        return Ok(Secret::new(value));
    }
    let mut said: String = field("message")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    if !request_token.is_empty() {
        said = said.replace(request_token.expose(), "***");
    }
    let description = match (response.status, said.trim()) {
        (200, _) => "GitHub Actions answered the OIDC token request without a token (no JWT in \
                     \"value\")"
            .to_string(),
        (status, "") => format!("GitHub Actions refused the OIDC token request (HTTP {status})"),
        (status, said) => {
            format!("GitHub Actions refused the OIDC token request (HTTP {status}): {said}")
        }
    };
    let hint = match response.status {
        401 | 403 => Some(
            "give the job `permissions: id-token: write` (a pull request from a fork gets no OIDC \
             token), and let the host pass the job's current ACTIONS_ID_TOKEN_REQUEST_TOKEN"
                .to_string(),
        ),
        _ => None,
    };
    Err(Error::Authentication(Box::new(AuthFailure {
        status: response.status,
        error: "federated_token_unavailable".into(),
        description: printable_long(&description),
        hint,
        ..AuthFailure::default()
    })))
}

/// Printable ASCII and spaces, at most 300 characters.
fn printable_long(text: &str) -> String {
    let shown: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(300)
        .collect();
    if shown.is_empty() {
        printable(text)
    } else {
        shown
    }
}

/// Entra ID's refusal of a federated assertion, with the hint for a
/// federated token where the code means something else for a certificate
/// (AADSTS700024: the token, not the host's assertion, is out of its time).
pub fn refine(error: Error) -> Error {
    match error {
        Error::Authentication(mut failure) if failure.code == Some(700024) => {
            failure.hint = Some(
                "the federated token is expired or not yet valid: the platform rotates the token \
                 file (it is read again for every token, so it was not rotated), a GitHub \
                 Actions token was asked for too long ago, or the host's clock is off"
                    .into(),
            );
            Error::Authentication(failure)
        }
        other => other,
    }
}

#[cfg(test)]
#[path = "workload_identity_tests.rs"]
mod tests;
