//! The `signer` import: how a host signs the client assertion of a
//! certificate whose private key never enters the component. [`Signer`] is
//! the seam; [`KeyVaultSigner`] signs with Azure Key Vault
//! (`POST {vault}/keys/{name}/{version}/sign`) as the platform's managed
//! identity. Only the signing component (`dataverse_artifacts::SIGNING_CLIENT`,
//! world `client-signing`) imports the signer; the plain one imports nothing
//! but WASI. An instance whose runtime has no signer answers
//! `not-configured`.
//!
//! ```
//! use std::sync::Arc;
//! use dataverse_host::{IdentityEnvironment, KeyVaultSigner, Runtime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let upstream = dataverse_fake::Fake::demo();
//! let signer = KeyVaultSigner::new(upstream, IdentityEnvironment::default());
//! let runtime =
//!     Runtime::from_wasm(dataverse_artifacts::SIGNING_CLIENT)?.with_signer(Arc::new(signer));
//! assert!(runtime.imports_signer());
//! // AuthType=Certificate;Url=…;ClientId=…;KeyVaultUrl=https://myvault.vault.azure.net/;CertificateName=app
//! # let _ = runtime; Ok(()) }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use dataverse_wasm::auth::AccessToken;
use dataverse_wasm::auth::managed_identity::{self, Endpoint};
use dataverse_wasm::http::{Method, Request as CoreRequest, Response as CoreResponse};
use dataverse_wasm::settings::ManagedIdentityId;
use http_body_util::BodyExt;
use serde_json::Value;

pub use crate::bindings::dataverse::client::signer::{SignatureAlgorithm, SignerError};
use crate::identity::IdentityEnvironment;
use crate::upstream::{RequestOptions, Upstream};
/// The signing component's file and the interface it imports, as the plain
/// component's refusal of Key Vault settings names them.
pub use dataverse_wasm::transport::{SIGNER_INTERFACE, SIGNING_COMPONENT};

/// What a signer's calls return.
pub type SignerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SignerError>> + Send + 'a>>;

/// Signs for keys the host holds. `key_id` is what the settings name (for
/// `KeyVaultUrl` + `CertificateName`: `{vault}/certificates/{name}[/{version}]`).
pub trait Signer: Send + Sync + 'static {
    /// The key's certificate, DER, leaf first.
    fn certificate<'a>(&'a self, key_id: &'a str) -> SignerFuture<'a, Vec<Vec<u8>>>;

    /// The signature of a SHA-256 `digest` with the key.
    fn sign<'a>(
        &'a self,
        key_id: &'a str,
        algorithm: SignatureAlgorithm,
        digest: &'a [u8],
    ) -> SignerFuture<'a, Vec<u8>>;
}

/// The answer of an instance whose runtime has no signer.
pub(crate) fn not_configured() -> SignerError {
    SignerError::NotConfigured(
        "this host has no signer configured: a certificate whose key stays in Key Vault \
         (KeyVaultUrl, CertificateName) needs one (dataverse-host: \
         Runtime::with_signer(KeyVaultSigner::new(…)); the native CLI has one)"
            .into(),
    )
}

/// Key Vault's data-plane API version.
pub const KEY_VAULT_API_VERSION: &str = "7.4";

/// The resource a Key Vault token is asked for.
pub const KEY_VAULT_RESOURCE: &str = "https://vault.azure.net";

/// Renew the vault token this long before it expires.
const RENEW_BEFORE_SECS: u64 = 300;

/// Signs with Azure Key Vault as the platform's managed identity (App
/// Service's endpoint, else IMDS, from the [`IdentityEnvironment`]): the
/// certificate from `GET {vault}/certificates/{name}[/{version}]`, the
/// signature from `POST {kid}/sign`. Requests go through the `upstream`
/// (the network, or the fake); the vault token never reaches the component.
pub struct KeyVaultSigner {
    upstream: Arc<dyn Upstream>,
    identity: IdentityEnvironment,
    id: ManagedIdentityId,
    token: tokio::sync::Mutex<Option<AccessToken>>,
    /// Certificate id → the `kid` of its key (with version).
    keys: Mutex<HashMap<String, String>>,
}

impl KeyVaultSigner {
    /// A signer acting as the system-assigned identity.
    pub fn new(upstream: Arc<dyn Upstream>, identity: IdentityEnvironment) -> KeyVaultSigner {
        KeyVaultSigner {
            upstream,
            identity,
            id: ManagedIdentityId::SystemAssigned,
            token: tokio::sync::Mutex::new(None),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Acts as a user-assigned identity instead.
    pub fn with_identity_id(mut self, id: ManagedIdentityId) -> KeyVaultSigner {
        self.id = id;
        self
    }

    async fn send(&self, request: CoreRequest) -> Result<CoreResponse, String> {
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let http_request = builder
            .body(Bytes::from(request.body.clone()))
            .map_err(|e| format!("request to {}: {e}", host_of(&request.url)))?;
        let response = self
            .upstream
            .clone()
            .send(http_request, RequestOptions::default())
            .await
            .map_err(|e| format!("request to {} failed: {e}", host_of(&request.url)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the answer of {}: {e}", host_of(&request.url)))?
            .to_bytes()
            .to_vec();
        Ok(CoreResponse {
            status,
            headers,
            body,
        })
    }

    /// A managed-identity token for Key Vault, cached until shortly before
    /// it expires.
    async fn vault_token(&self) -> Result<String, SignerError> {
        let mut cached = self.token.lock().await;
        let now = unix_now();
        if let Some(token) = cached
            .as_ref()
            .filter(|t| t.expires_at > now + RENEW_BEFORE_SECS)
        {
            return Ok(token.value.expose().to_string());
        }
        let endpoint = Endpoint::from_environment(|n| self.identity.get(n).map(str::to_string))
            .map_err(|e| SignerError::NotConfigured(format!("Key Vault signer: {e}")))?;
        let request = managed_identity::request(&endpoint, KEY_VAULT_RESOURCE, &self.id);
        let response = self
            .send(request)
            .await
            .map_err(|e| SignerError::Unavailable(format!("the managed identity endpoint: {e}")))?;
        let issued = managed_identity::parse_response(&endpoint, &self.id, &response, now)
            .map_err(|e| {
                SignerError::Denied(format!(
                    "no managed-identity token for Key Vault ({KEY_VAULT_RESOURCE}): {e}"
                ))
            })?;
        let value = issued.token.value.expose().to_string();
        *cached = Some(issued.token);
        Ok(value)
    }

    async fn certificate_of(&self, key_id: &str) -> Result<(Vec<u8>, String), SignerError> {
        let id = CertificateId::parse(key_id)?;
        let token = self.vault_token().await?;
        let request = CoreRequest::new(
            Method::Get,
            format!("{key_id}?api-version={KEY_VAULT_API_VERSION}"),
        )
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", "application/json");
        let response = self.send(request).await.map_err(SignerError::Unavailable)?;
        let body = answer(&id, &response, Operation::GetCertificate)?;
        let der = text(&body, "cer")
            .and_then(|cer| {
                STANDARD
                    .decode(cer)
                    .or_else(|_| URL_SAFE_NO_PAD.decode(cer.trim_end_matches('=')))
                    .ok()
            })
            .ok_or_else(|| unreadable(&id, "a certificate without its `cer`"))?;
        let kid = text(&body, "kid")
            .filter(|kid| kid.starts_with(&format!("{}/keys/", id.vault)))
            .ok_or_else(|| unreadable(&id, "a certificate whose `kid` is not a key of the vault"))?
            .to_string();
        Ok((der, kid))
    }
}

impl Signer for KeyVaultSigner {
    fn certificate<'a>(&'a self, key_id: &'a str) -> SignerFuture<'a, Vec<Vec<u8>>> {
        Box::pin(async move {
            let (der, kid) = self.certificate_of(key_id).await?;
            lock(&self.keys).insert(key_id.to_string(), kid);
            Ok(vec![der])
        })
    }

    fn sign<'a>(
        &'a self,
        key_id: &'a str,
        algorithm: SignatureAlgorithm,
        digest: &'a [u8],
    ) -> SignerFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let id = CertificateId::parse(key_id)?;
            let known = lock(&self.keys).get(key_id).cloned();
            let kid = match known {
                Some(kid) => kid,
                None => {
                    let (_, kid) = self.certificate_of(key_id).await?;
                    lock(&self.keys).insert(key_id.to_string(), kid.clone());
                    kid
                }
            };
            let token = self.vault_token().await?;
            let alg = match algorithm {
                SignatureAlgorithm::Rs256 => "RS256",
                SignatureAlgorithm::Ps256 => "PS256",
            };
            let body = serde_json::json!({"alg": alg, "value": URL_SAFE_NO_PAD.encode(digest)});
            let request = CoreRequest::new(
                Method::Post,
                format!("{kid}/sign?api-version={KEY_VAULT_API_VERSION}"),
            )
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(body.to_string().into_bytes());
            let response = self.send(request).await.map_err(SignerError::Unavailable)?;
            let body = answer(&id, &response, Operation::Sign)?;
            text(&body, "value")
                .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| unreadable(&id, "a sign answer without its `value`"))
        })
    }
}

/// `{vault}/certificates/{name}[/{version}]`, as the settings make it.
struct CertificateId {
    vault: String,
    name: String,
}

impl CertificateId {
    fn parse(key_id: &str) -> Result<CertificateId, SignerError> {
        let not_ours = || {
            SignerError::NotConfigured(format!(
                "the Key Vault signer knows certificates by {{vault}}/certificates/{{name}}, \
                 not {key_id}"
            ))
        };
        let rest = key_id.strip_prefix("https://").ok_or_else(not_ours)?;
        let (host, path) = rest.split_once('/').ok_or_else(not_ours)?;
        let mut segments = path.split('/');
        let (Some("certificates"), Some(name)) = (segments.next(), segments.next()) else {
            return Err(not_ours());
        };
        if name.is_empty() || segments.count() > 1 {
            return Err(not_ours());
        }
        Ok(CertificateId {
            vault: format!("https://{host}"),
            name: name.to_string(),
        })
    }
}

#[derive(Clone, Copy)]
enum Operation {
    GetCertificate,
    Sign,
}

impl Operation {
    /// The access-policy permission, and the built-in Azure RBAC role that has it.
    fn permission(self) -> (&'static str, &'static str) {
        match self {
            Operation::GetCertificate => ("certificates/get", "Key Vault Certificate User"),
            Operation::Sign => ("keys/sign", "Key Vault Crypto User"),
        }
    }
}

/// A 2xx answer's JSON, or the vault's refusal as a typed error: 401 / 403
/// name the vault and the permission to grant; 404 names the certificate.
/// Key Vault's own message is kept to its first line (it lists the caller's
/// ids, never a token).
fn answer(
    id: &CertificateId,
    response: &CoreResponse,
    op: Operation,
) -> Result<Value, SignerError> {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    if (200..300).contains(&response.status) {
        return body.ok_or_else(|| unreadable(id, "an answer that is not JSON"));
    }
    let error = body.as_ref().and_then(|b| b.get("error"));
    let code = error.and_then(|e| text(e, "code")).unwrap_or("");
    let message = error
        .and_then(|e| text(e, "message"))
        .and_then(|m| m.lines().next())
        .unwrap_or("")
        .trim();
    let (permission, role) = op.permission();
    let said = format!("HTTP {} {code}: {message}", response.status);
    let vault = &id.vault;
    let name = &id.name;
    match response.status {
        401 | 403 => Err(SignerError::Denied(format!(
            "Key Vault {vault} refused {permission} for certificate {name} ({said}); grant the \
             host's managed identity the {permission} permission (access policy) or the '{role}' \
             role (Azure RBAC) on the vault"
        ))),
        404 => Err(SignerError::NotConfigured(format!(
            "Key Vault {vault} has no certificate {name} ({said}); check CertificateName and \
             CertificateVersion"
        ))),
        _ => Err(SignerError::Unavailable(format!(
            "Key Vault {vault} failed {permission} for certificate {name} ({said})"
        ))),
    }
}

fn unreadable(id: &CertificateId, what: &str) -> SignerError {
    SignerError::Unavailable(format!("Key Vault {} answered {what}", id.vault))
}

fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name)?.as_str()
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `signer` import of every instance: the runtime's signer, or
/// `not-configured`.
impl crate::bindings::dataverse::client::signer::Host for crate::state::HostState {
    async fn certificate(&mut self, key_id: String) -> Result<Vec<Vec<u8>>, SignerError> {
        match self.signer.clone() {
            Some(signer) => signer.certificate(&key_id).await,
            None => Err(not_configured()),
        }
    }

    async fn sign(
        &mut self,
        key_id: String,
        algorithm: SignatureAlgorithm,
        digest: Vec<u8>,
    ) -> Result<Vec<u8>, SignerError> {
        match self.signer.clone() {
            Some(signer) => signer.sign(&key_id, algorithm, &digest).await,
            None => Err(not_configured()),
        }
    }
}
