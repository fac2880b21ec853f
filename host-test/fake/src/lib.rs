//! A fake Microsoft Entra ID token endpoint plus a fake Dataverse Web API,
//! faithful to the real services' wire formats, for tests and the CLI demo.
//!
//! * In process: [`Fake::handle`] answers one `http::Request` synchronously.
//! * On the network: [`serve_tls`] serves the same [`Fake`] on a loopback TLS
//!   port with a throw-away CA, for hosts that really connect; [`serve_http`]
//!   serves it over plain HTTP on loopback, for hosts that trust only the
//!   public web PKI (`wasmtime serve`) and clients that opt in to loopback
//!   http (`AllowHttpLoopback=true`).
//!
//! Requests are routed by host name: [`FakeConfig::login_host`] goes to
//! `entra`, [`FakeConfig::org_host`] to `dataverse`, anything else gets a 421
//! (and is still recorded, `Authorization` included, so a test can prove a
//! token never reached a foreign host). All state (issued tokens, tables,
//! queued faults, statistics, the request log) lives behind one mutex, so a
//! `Fake` can be shared freely between threads.
//!
//! The Web API side covers the everyday operations: retrieve (with `$select`,
//! `$filter`, `$orderby`, `$top`, `$count`, `$expand`, paging, formatted
//! values), create, update/upsert with `If-Match`/`If-None-Match`, delete,
//! associate/disassociate via `$ref`, FetchXML with paging cookies, functions
//! and actions, `$batch` with atomic change sets, impersonation via
//! `CallerObjectId`, and injected faults ([`Fake::inject`]).
//!
//! The Entra side takes client secrets and certificate credentials (signed
//! client assertions, checked by a verifier of its own in `assertion`: see
//! its docs for every rule and error code); [`certs`] makes test certificates.
//!
//! Without secrets (issue 14): the managed identity endpoints (`identity`:
//! IMDS at `169.254.169.254`, App Service at [`FakeConfig::identity_endpoint`]),
//! OIDC issuers with their own keys and JWKS and GitHub's OIDC token endpoint
//! (`oidc`), and federated credentials on apps, checked at the token
//! endpoint (`entra::federation`).

mod dataverse;
mod entra;
mod faults;
mod identity;
mod ids;
pub mod keyvault;
pub mod oidc;
mod percent;
pub mod proxy;
mod serve;

pub use dataverse::paging_bugs::PagingBug;
pub use entra::assertion::{CLOCK_SKEW_SECS, MAX_LIFETIME_SECS, VerifiedAssertion};
pub use entra::certs::{self, TestCertificate, demo_certificate};
pub use entra::federation::{FederatedCredential, VerifiedFederation};
pub use faults::{Delivery, Fault, GeneratedBody};
pub use identity::{FakeManagedIdentity, IMDS_HOST};
pub use keyvault::FakeKeyVault;
pub use oidc::{FakeOidcIssuer, TokenClaims};
pub use serve::plain::{HttpFakeServer, loopback_config, serve_http};
pub use serve::tls::{ServerCert, TlsFakeServer, serve_tls, serve_tls_with};

use bytes::Bytes;
use dataverse::{paging_bugs, table};
use http::{Request, Response, StatusCode, header};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The demo tenant's directory (tenant) id.
pub const DEMO_TENANT_ID: &str = "8f2c1f3e-5b7a-4c1d-9e3f-2a6b4c8d0e1f";
/// The demo tenant's verified domain; accepted in place of the id in token URLs.
pub const DEMO_TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// The fake org's `x-ms-dop-hint` (a small trial environment's figure).
pub const DEFAULT_DOP_HINT: u32 = 4;
/// The demo Dataverse environment.
pub const ORG_HOST: &str = "contoso.crm.dynamics.com";
/// Entra ID's public-cloud authority host.
pub const LOGIN_HOST: &str = "login.microsoftonline.com";
/// An app registration that has an Application User in the environment.
pub const DEMO_CLIENT_ID: &str = "3c9d2e71-4b8a-4f6e-9d15-7a0b2c4e6f81";
/// The client secret *value* of [`DEMO_CLIENT_ID`] (shaped like a real one).
pub const DEMO_CLIENT_SECRET: &str = "Fk8Q~demo.Secret_Value-NotReal0123456789ab";
/// The `systemuserid` of [`DEMO_CLIENT_ID`]'s Application User (WhoAmI's `UserId`).
pub const DEMO_USER_ID: &str = "0b6f3d2a-7c1e-4a59-8e24-93d1f05c6b7a";
/// An app registration in the tenant with NO Application User: it gets tokens,
/// then 403 `0x80072560` from Dataverse.
pub const NO_USER_CLIENT_ID: &str = "a7e4b0c2-91d3-4e58-b6f2-0c3d5e7f9a14";
/// The client secret value of [`NO_USER_CLIENT_ID`].
pub const NO_USER_CLIENT_SECRET: &str = "Qz3Q~nouser.Secret_Value-NotReal9876543210cd";
/// An app registration whose only credential is [`demo_certificate`] (no
/// client secret); it has an Application User.
pub const CERT_CLIENT_ID: &str = "6d1f4c8a-2e9b-4a73-b5c0-8f3e1d2a7b64";
/// The `systemuserid` of [`CERT_CLIENT_ID`]'s Application User.
pub const CERT_USER_ID: &str = "9a2e7c41-3b5d-4f86-a1c9-0e4d6b8f2a35";
/// WhoAmI's `OrganizationId` (same for every config).
pub const DEMO_ORGANIZATION_ID: &str = "5d9e8c7b-2a41-4f3e-b6d0-1c2e3f4a5b6c";
/// WhoAmI's `BusinessUnitId` (same for every config).
pub const DEMO_BUSINESS_UNIT_ID: &str = "c4b3a291-8e7d-4c6f-95a4-3b2c1d0e9f8a";
/// The Entra object id of a user the demo app may impersonate
/// (`CallerObjectId: IMPERSONATED_OBJECT_ID`).
pub const IMPERSONATED_OBJECT_ID: &str = "e39c5d16-675b-48d1-8e67-667427e9c084";
/// The `systemuserid` of that user: WhoAmI's `UserId` under impersonation.
pub const IMPERSONATED_USER_ID: &str = "75df116d-d9da-4711-a94b-000d3a34ed47";

/// The system-assigned managed identity of the fake's Azure resource (its
/// client id; it has an Application User).
/// The fake Key Vault's host, and the name of the certificate it holds.
pub const KEY_VAULT_HOST: &str = "dataverse-demo.vault.azure.net";
pub const KEY_VAULT_CERTIFICATE: &str = "dataverse-app";

/// A connection string for the certificate app whose key stays in the fake
/// Key Vault (the host signs: see `dataverse_host::KeyVaultSigner`).
pub fn demo_key_vault_connection_string() -> String {
    format!(
        "AuthType=Certificate;Url=https://{ORG_HOST}/;ClientId={CERT_CLIENT_ID};\
         KeyVaultUrl=https://{KEY_VAULT_HOST}/;CertificateName={KEY_VAULT_CERTIFICATE}"
    )
}

pub const MI_CLIENT_ID: &str = "b1f7e3c2-6a4d-4e8f-9c21-5d3a7e9f1b40";
/// The `systemuserid` of [`MI_CLIENT_ID`]'s Application User.
pub const MI_USER_ID: &str = "2c8e4a6f-1b3d-4f5a-9e7c-0d2b4f6a8c13";
/// A user-assigned managed identity assigned to the resource: client id…
pub const UAMI_CLIENT_ID: &str = "d4a6c8e0-2f1b-4d3c-8a5e-7b9c1d3e5f72";
/// …object (principal) id…
pub const UAMI_OBJECT_ID: &str = "e5b7d9f1-3a2c-4e4d-9b6f-8c0d2e4f6a83";
/// …and Azure resource id.
pub const UAMI_RESOURCE_ID: &str = "/subscriptions/1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d/resourceGroups/dataverse/providers/Microsoft.ManagedIdentity/userAssignedIdentities/dataverse-sync";
/// The `systemuserid` of [`UAMI_CLIENT_ID`]'s Application User.
pub const UAMI_USER_ID: &str = "3d9f5b7a-2c4e-4a6b-8f0d-1e3a5c7e9b24";
/// An app registration with federated credentials only (the AKS workload's
/// service account and the GitHub workflow); it has an Application User.
pub const WORKLOAD_CLIENT_ID: &str = "7e2a4c6e-8b0d-4f1a-a3c5-9d7f1b3e5a86";
/// The `systemuserid` of [`WORKLOAD_CLIENT_ID`]'s Application User.
pub const WORKLOAD_USER_ID: &str = "4eaf6c8b-3d5f-4b7c-9a1e-2f4b6d8f0c35";
/// The App Service identity endpoint (`IDENTITY_ENDPOINT`) the fake serves.
pub const IDENTITY_ENDPOINT_URL: &str = "http://127.0.0.1:41741/msi/token/";
/// The fake platform's `IDENTITY_HEADER` (a secret).
pub const IDENTITY_HEADER_VALUE: &str = "9C4E2A61F0B84D7E8A3C5B1D0E2F4A6C";

/// A secret of the fake's configuration: `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A connection string for the demo app, in ServiceClient syntax.
pub fn demo_connection_string() -> String {
    format!(
        "AuthType=ClientSecret;Url=https://{ORG_HOST}/;ClientId={DEMO_CLIENT_ID};ClientSecret={DEMO_CLIENT_SECRET}"
    )
}

/// A connection string for the certificate demo app ([`CERT_CLIENT_ID`]),
/// in ServiceClient syntax; `thumbprint` is the certificate's SHA-1
/// thumbprint as the client will look it up (e.g. `demo_certificate().thumbprint`).
pub fn demo_certificate_connection_string(thumbprint: &str) -> String {
    format!(
        "AuthType=Certificate;Url=https://{ORG_HOST}/;ClientId={CERT_CLIENT_ID};Thumbprint={thumbprint}"
    )
}

/// An app registration in the fake tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeApp {
    pub client_id: String,
    /// The client secret value; empty when the app has no secret (then every
    /// secret is refused with AADSTS7000215).
    pub secret: String,
    /// Whether an Application User exists for it in the environment.
    pub application_user: bool,
    /// The Application User's `systemuserid`.
    pub user_id: String,
    /// Registered certificates, DER encoded ("Certificates & secrets" →
    /// Certificates): a client assertion must be signed by one of them.
    pub certificates: Vec<Vec<u8>>,
    /// The secret has expired: the right secret then gets 401 `invalid_client`
    /// AADSTS7000222 (a wrong one still gets AADSTS7000215).
    pub secret_expired: bool,
    /// Entity sets its security role may not read: a GET on them gets 403
    /// `0x80040220` "…is missing prvRead… privilege…", as Dataverse says it.
    pub denied_reads: Vec<String>,
    /// Federated credentials: a client assertion another issuer signed is
    /// accepted when one of them matches (see `entra::federation`).
    pub federated_credentials: Vec<FederatedCredential>,
}

impl FakeApp {
    /// An app with an Application User and no credential yet (a managed
    /// identity's service principal, or an app to add credentials to).
    pub fn with_user(client_id: &str, user_id: &str) -> FakeApp {
        FakeApp {
            client_id: client_id.into(),
            secret: String::new(),
            application_user: true,
            user_id: user_id.into(),
            certificates: Vec::new(),
            secret_expired: false,
            denied_reads: Vec::new(),
            federated_credentials: Vec::new(),
        }
    }
}

impl fmt::Debug for FakeApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApp")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .field("application_user", &self.application_user)
            .field("user_id", &self.user_id)
            .field(
                "certificates",
                &self
                    .certificates
                    .iter()
                    .map(|der| certs::sha1_thumbprint(der))
                    .collect::<Vec<_>>(),
            )
            .field("secret_expired", &self.secret_expired)
            .field("denied_reads", &self.denied_reads)
            .field("federated_credentials", &self.federated_credentials)
            .finish()
    }
}

/// A (human) user in the environment that apps may impersonate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeUser {
    /// The Entra object id (`CallerObjectId`).
    pub object_id: String,
    /// The `systemuserid` (`MSCRMCallerID`, WhoAmI's `UserId`).
    pub user_id: String,
}

/// What the fake tenant and environment contain.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub tenant_id: String,
    /// The org's `host[:port]` as clients address it; requests are routed by
    /// the host name alone, so the org and the login host may share a port.
    pub org_host: String,
    /// Entra ID's `host[:port]` (see `org_host`).
    pub login_host: String,
    /// `https` (the default), or `http` for a plain-HTTP fake on loopback
    /// ([`serve_http`]): the scheme of every URL the fake hands out
    /// (challenge, token audience, OData ids and links).
    pub scheme: String,
    pub apps: Vec<FakeApp>,
    /// Users that can be impersonated.
    pub users: Vec<FakeUser>,
    /// How many demo accounts to seed.
    pub account_count: usize,
    /// `expires_in` of issued tokens; they really expire after this long.
    pub token_lifetime_secs: u64,
    /// The managed identities of the fake Azure resource (IMDS, App Service).
    pub managed_identities: Vec<FakeManagedIdentity>,
    /// App Service's `IDENTITY_ENDPOINT`: requests to its host go to the
    /// App Service identity endpoint.
    pub identity_endpoint: String,
    /// App Service's `IDENTITY_HEADER`.
    pub identity_header: Redacted,
    /// The OIDC issuers the fake signs for (and whose JWKS it serves).
    pub oidc_issuers: Vec<FakeOidcIssuer>,
    /// Where GitHub's OIDC token endpoint answers.
    pub github_oidc_host: String,
    /// The job's `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub github_request_token: Redacted,
    /// The `sub` of the GitHub tokens the fake issues.
    pub github_subject: String,
    /// Azure Key Vault, holding the demo certificate's key for the
    /// certificate app ([`CERT_CLIENT_ID`]); the system-assigned managed
    /// identity may read and sign with it (see [`keyvault`]).
    pub key_vault: FakeKeyVault,
    /// `x-ms-dop-hint` on every Dataverse answer: the parallelism the org
    /// recommends.
    pub dop_hint: u32,
    /// Service protection: at most this many Web API requests per app per
    /// window, the others answered 429 (`0x80072322`, `Retry-After`) and
    /// not executed; `None` (the default): no limit.
    pub request_limit: Option<RequestLimit>,
}

/// A service protection limit on the number of requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestLimit {
    pub requests: u32,
    pub window_ms: u64,
}

impl Default for FakeConfig {
    /// The demo data set: the two secret apps, the certificate app (its
    /// certificate is generated on first use: see [`demo_certificate`]) and
    /// 25 accounts.
    fn default() -> Self {
        FakeConfig {
            tenant_id: DEMO_TENANT_ID.into(),
            org_host: ORG_HOST.into(),
            login_host: LOGIN_HOST.into(),
            scheme: "https".into(),
            apps: vec![
                FakeApp {
                    client_id: DEMO_CLIENT_ID.into(),
                    secret: DEMO_CLIENT_SECRET.into(),
                    application_user: true,
                    user_id: DEMO_USER_ID.into(),
                    certificates: Vec::new(),
                    secret_expired: false,
                    denied_reads: Vec::new(),
                    federated_credentials: Vec::new(),
                },
                FakeApp {
                    client_id: NO_USER_CLIENT_ID.into(),
                    secret: NO_USER_CLIENT_SECRET.into(),
                    application_user: false,
                    user_id: ids::stable_guid("no-user"),
                    certificates: Vec::new(),
                    secret_expired: false,
                    denied_reads: Vec::new(),
                    federated_credentials: Vec::new(),
                },
                FakeApp {
                    certificates: vec![demo_certificate().der.clone()],
                    ..FakeApp::with_user(CERT_CLIENT_ID, CERT_USER_ID)
                },
                FakeApp::with_user(MI_CLIENT_ID, MI_USER_ID),
                FakeApp::with_user(UAMI_CLIENT_ID, UAMI_USER_ID),
                FakeApp {
                    federated_credentials: vec![
                        FederatedCredential {
                            name: "aks-dataverse-sync".into(),
                            issuer: oidc::AKS_ISSUER.into(),
                            subject: oidc::AKS_SUBJECT.into(),
                            audiences: vec![oidc::TOKEN_EXCHANGE_AUDIENCE.into()],
                        },
                        FederatedCredential {
                            name: "github-main".into(),
                            issuer: oidc::GITHUB_ISSUER.into(),
                            subject: oidc::GITHUB_SUBJECT.into(),
                            audiences: vec![oidc::TOKEN_EXCHANGE_AUDIENCE.into()],
                        },
                    ],
                    ..FakeApp::with_user(WORKLOAD_CLIENT_ID, WORKLOAD_USER_ID)
                },
            ],
            users: vec![FakeUser {
                object_id: IMPERSONATED_OBJECT_ID.into(),
                user_id: IMPERSONATED_USER_ID.into(),
            }],
            account_count: 25,
            token_lifetime_secs: 3599,
            managed_identities: vec![
                FakeManagedIdentity {
                    client_id: MI_CLIENT_ID.into(),
                    object_id: ids::stable_guid("system-assigned"),
                    resource_id: String::new(),
                    system_assigned: true,
                },
                FakeManagedIdentity {
                    client_id: UAMI_CLIENT_ID.into(),
                    object_id: UAMI_OBJECT_ID.into(),
                    resource_id: UAMI_RESOURCE_ID.into(),
                    system_assigned: false,
                },
            ],
            identity_endpoint: IDENTITY_ENDPOINT_URL.into(),
            identity_header: Redacted(IDENTITY_HEADER_VALUE.into()),
            oidc_issuers: oidc::default_issuers(),
            github_oidc_host: oidc::GITHUB_OIDC_HOST.into(),
            github_request_token: Redacted(oidc::GITHUB_REQUEST_TOKEN.into()),
            github_subject: oidc::GITHUB_SUBJECT.into(),
            key_vault: FakeKeyVault {
                host: KEY_VAULT_HOST.into(),
                certificate_name: KEY_VAULT_CERTIFICATE.into(),
                certificate: demo_certificate().clone(),
                readers: vec![MI_CLIENT_ID.into()],
                signers: vec![MI_CLIENT_ID.into()],
            },
            dop_hint: DEFAULT_DOP_HINT,
            request_limit: None,
        }
    }
}

impl FakeConfig {
    /// `{scheme}://{org_host}`: the org's origin as its clients see it.
    pub fn org_origin(&self) -> String {
        format!("{}://{}", self.scheme, self.org_host)
    }

    /// `{scheme}://{login_host}`: Entra ID's origin as clients see it.
    pub fn login_origin(&self) -> String {
        format!("{}://{}", self.scheme, self.login_host)
    }
}

/// `Host[:port]` → lower-case host name (IPv6 literals without brackets, as
/// [`request_host`] yields them).
pub(crate) fn host_name(host_and_port: &str) -> String {
    let name = match host_and_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_and_port.split(':').next().unwrap_or(""),
    };
    name.to_ascii_lowercase()
}

/// Counters, for asserting how much traffic a client produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeStats {
    /// Requests to the org host without any `Authorization` header.
    pub discovery_requests: usize,
    /// Requests to the token endpoint (`/{tenant}/oauth2/v2.0/token`), any outcome.
    pub token_requests: usize,
    /// Org-host requests that carried a valid, unexpired token (including 403s).
    pub api_requests: usize,
    /// TLS handshakes completed by [`serve_tls`] servers.
    pub tls_connections: usize,
}

/// The client credential a token request presented (whether or not it was valid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// Neither (or the request was refused before its body was read).
    None,
    /// `client_secret`.
    Secret,
    /// `client_assertion` (a certificate credential).
    Certificate,
    /// Both `client_secret` and `client_assertion` (refused).
    SecretAndCertificate,
}

/// One request to the token endpoint, as the fake saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestRecord {
    /// The `client_id` parameter, if the body was read and had one.
    pub client_id: Option<String>,
    pub credential: CredentialKind,
    pub status: u16,
    /// The AADSTS code of a refusal.
    pub error_code: Option<u32>,
}

/// One handled request, as seen by the fake.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Lower case, without port.
    pub host: String,
    pub path_and_query: String,
    /// The body as received (`Debug` shows its length only).
    pub body: Bytes,
    /// The raw `Authorization` header (it holds a live token: `Debug` redacts it).
    pub authorization: Option<String>,
    /// Every request header in order, names lower case; `authorization`'s
    /// value is replaced by `<scheme> <redacted>` (the raw value is in
    /// [`RecordedRequest::authorization`]).
    pub headers: Vec<(String, String)>,
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `Bearer abc` → `Bearer <redacted>`.
fn redact(authorization: &str) -> String {
    match authorization.split_once(' ') {
        Some((scheme, _)) => format!("{scheme} <redacted>"),
        None => "<redacted>".to_string(),
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authorization = self.authorization.as_deref().map(redact);
        // The App Service identity header is a secret too.
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let v = if n == "x-identity-header" {
                    "<redacted>"
                } else {
                    v
                };
                (n.as_str(), v)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path_and_query", &self.path_and_query)
            .field("body_bytes", &self.body.len())
            .field("authorization", &authorization)
            .field("headers", &headers)
            .field("status", &self.status)
            .finish()
    }
}

/// Mutable state shared by both fake services.
pub(crate) struct State {
    stats: FakeStats,
    requests: Vec<RecordedRequest>,
    tokens: HashMap<String, entra::token::IssuedToken>,
    /// Every token endpoint request, in order.
    token_log: Vec<TokenRequestRecord>,
    /// Every client assertion the verifier accepted, in order.
    assertions: Vec<VerifiedAssertion>,
    /// `refresh_in` for token responses, if set.
    refresh_in: Option<u64>,
    /// Entity set name → table.
    tables: BTreeMap<&'static str, table::Table>,
    ids: ids::IdSource,
    faults: faults::FaultQueue,
    paging_bug: paging_bugs::PagingBugState,
    /// Faults for token endpoint requests ([`Fake::inject_entra`]).
    entra_faults: faults::FaultQueue,
    /// Faults for discovery probes ([`Fake::inject_discovery`]).
    discovery_faults: faults::FaultQueue,
    /// `token_type` of issued tokens, when not `Bearer`.
    token_type: Option<String>,
    /// Dataverse refuses every valid token with this 401 error description.
    refused_tokens: Option<String>,
    /// The organization-wide row version counter (Dataverse's `versionnumber`).
    version: u64,
    /// Faults for the managed identity endpoints ([`Fake::inject_identity`]).
    identity_faults: faults::FaultQueue,
    /// Every federated assertion the token endpoint accepted, in order.
    federations: Vec<VerifiedFederation>,
    /// OIDC tokens GitHub's endpoint issued.
    github_tokens_issued: u64,
    /// Files of file columns, by (entity set, row id, column).
    files: HashMap<(String, String, String), dataverse::files::StoredFile>,
    /// Chunked uploads in progress, by session token.
    uploads: HashMap<String, dataverse::files::Upload>,
    /// Deleted rows (entity set, id, the version of the deletion), for delta links.
    tombstones: Vec<(&'static str, String, u64)>,
    /// Per app: when its service protection window began, and its requests since.
    protection: HashMap<String, (std::time::Instant, u32)>,
}

impl State {
    /// A new row version, greater than every earlier one.
    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }
}

/// The fake services. Create with [`Fake::new`] or [`Fake::demo`], share the `Arc`.
pub struct Fake {
    config: FakeConfig,
    state: Mutex<State>,
}

impl fmt::Debug for Fake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fake")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Fake {
    pub fn new(config: FakeConfig) -> Arc<Fake> {
        let tables = table::seed(config.account_count);
        Arc::new(Fake {
            config,
            state: Mutex::new(State {
                stats: FakeStats::default(),
                requests: Vec::new(),
                tokens: HashMap::new(),
                token_log: Vec::new(),
                assertions: Vec::new(),
                refresh_in: None,
                tables,
                ids: ids::IdSource::new(),
                faults: faults::FaultQueue::default(),
                paging_bug: paging_bugs::PagingBugState::default(),
                entra_faults: faults::FaultQueue::default(),
                discovery_faults: faults::FaultQueue::default(),
                token_type: None,
                refused_tokens: None,
                // Above every seeded row's version.
                version: 2_000_000,
                identity_faults: faults::FaultQueue::default(),
                federations: Vec::new(),
                github_tokens_issued: 0,
                protection: HashMap::new(),
                tombstones: Vec::new(),
                files: HashMap::new(),
                uploads: HashMap::new(),
            }),
        })
    }

    /// `Fake::new(FakeConfig::default())`.
    pub fn demo() -> Arc<Fake> {
        Fake::new(FakeConfig::default())
    }

    pub fn config(&self) -> &FakeConfig {
        &self.config
    }

    /// Handles one request. The URI may be absolute
    /// (`https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI`) or origin-form
    /// with a `Host` header; the host picks the service.
    ///
    /// A response may carry a [`Delivery`] in its `extensions()` (from an
    /// injected [`Fault`]); the transport that sends it on must honour it.
    pub fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        let host = request_host(&req);
        let mut state = self.lock();
        let response = if host == host_name(&self.config.login_host) {
            entra::token::handle(&self.config, &mut state, &req)
        } else if host == host_name(&self.config.org_host) {
            dataverse::router::handle(&self.config, &mut state, &req)
        } else if host == IMDS_HOST {
            identity::handle(identity::Protocol::Imds, &self.config, &mut state, &req)
        } else if host == host_name(endpoint_authority(&self.config.identity_endpoint)) {
            identity::handle(
                identity::Protocol::AppService,
                &self.config,
                &mut state,
                &req,
            )
        } else if host == host_name(&self.config.key_vault.host) {
            keyvault::handle(&self.config.key_vault, &self.config, &mut state, &req)
        } else if host == host_name(&self.config.github_oidc_host) {
            oidc::github(&self.config, &mut state, &req)
        } else if let Some(issuer) = oidc::issuer_for(&self.config, &host) {
            oidc::documents(issuer, &req)
        } else {
            misdirected(&host, &self.config)
        };
        let headers = req
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes());
                let value = if name == header::AUTHORIZATION {
                    redact(&value)
                } else {
                    value.into_owned()
                };
                (name.as_str().to_string(), value)
            })
            .collect();
        let path_and_query = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        state.requests.push(RecordedRequest {
            method: req.method().to_string(),
            host,
            path_and_query,
            body: req.body().clone(),
            authorization: req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            headers,
            status: response.status().as_u16(),
        });
        response
    }

    pub fn stats(&self) -> FakeStats {
        self.lock().stats
    }

    /// Every request handled so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Account names in default (creation) order.
    pub fn account_names(&self) -> Vec<String> {
        let state = self.lock();
        state.tables["accounts"]
            .rows
            .iter()
            .filter_map(|r| r.get("name").as_str().map(str::to_string))
            .collect()
    }

    /// Makes every token issued so far expired, as if its lifetime had passed,
    /// to exercise a client's re-acquire-on-401 path.
    pub fn expire_tokens(&self) {
        let now = std::time::Instant::now();
        for token in self.lock().tokens.values_mut() {
            token.expires = now;
        }
    }

    /// Revokes every token issued so far: the fake forgets them, so Dataverse
    /// answers them with the 401 challenge, exactly as for an expired or
    /// unknown token (Dataverse does not tell these apart on the wire).
    /// Unlike [`Fake::expire_tokens`], which backdates the tokens' expiry
    /// and keeps them, nothing of the old tokens remains. Tokens issued
    /// afterwards work.
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Token responses from now on carry `"refresh_in": secs` (Entra sends it
    /// for long-lived tokens: the client should refresh after that many
    /// seconds); `None` (the default) leaves it out.
    pub fn set_refresh_in(&self, secs: Option<u64>) {
        self.lock().refresh_in = secs;
    }

    /// How many token endpoint requests named `client_id` (case-insensitive),
    /// whatever their outcome.
    pub fn token_requests_for(&self, client_id: &str) -> usize {
        self.lock()
            .token_log
            .iter()
            .filter(|r| {
                r.client_id
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(client_id))
            })
            .count()
    }

    /// Every token endpoint request so far, in order, with the credential
    /// kind it presented and its outcome.
    pub fn token_request_log(&self) -> Vec<TokenRequestRecord> {
        self.lock().token_log.clone()
    }

    /// Every federated assertion the token endpoint accepted so far, in order.
    pub fn federated_assertions(&self) -> Vec<VerifiedFederation> {
        self.lock().federations.clone()
    }

    /// Every client assertion the verifier accepted so far, in order (also
    /// those whose request then failed on a later check, such as the scope).
    pub fn verified_assertions(&self) -> Vec<VerifiedAssertion> {
        self.lock().assertions.clone()
    }

    /// Makes the next `times` authenticated Dataverse requests (not token or
    /// discovery requests, not requests to other hosts) meet `fault`. Faults
    /// queue up in injection order. Faulted requests are still recorded and
    /// counted in [`FakeStats::api_requests`].
    pub fn inject(&self, fault: Fault, times: usize) {
        self.lock().faults.push(fault, times);
    }

    /// Makes the next `times` token endpoint requests meet `fault`, rendered
    /// as Entra ID (or a gateway in front of it) would send it: see the
    /// table in `auth_faults`. Faulted requests are counted in
    /// [`FakeStats::token_requests`] and the token request log.
    pub fn inject_entra(&self, fault: Fault, times: usize) {
        self.lock().entra_faults.push(fault, times);
    }

    /// Makes the next `times` discovery probes (org requests without an
    /// `Authorization` header) meet `fault` instead of the 401 challenge.
    pub fn inject_discovery(&self, fault: Fault, times: usize) {
        self.lock().discovery_faults.push(fault, times);
    }

    /// Token responses from now on say `"token_type": token_type` (e.g.
    /// `pop`); `None` (the default) says `Bearer`. Dataverse still accepts
    /// the tokens as bearer tokens: whether a client sends them is its call.
    pub fn set_token_type(&self, token_type: Option<&str>) {
        self.lock().token_type = token_type.map(str::to_string);
    }

    /// From now on Dataverse answers every request that carries a valid
    /// token with 401 and its challenge, plus `error="invalid_token",
    /// error_description="{description}"` — what a client meets when the
    /// token is fine for Entra ID but not for this environment (its
    /// Application User disabled, say). `None` ends it.
    pub fn refuse_tokens(&self, description: Option<&str>) {
        self.lock().refused_tokens = description.map(str::to_string);
    }

    /// Breaks paging from now on the way `bug` says (`None` mends it): see
    /// [`PagingBug`]. Pages answered while an injected [`Fault`] is due are
    /// the fault's, not the bug's.
    pub fn set_paging_bug(&self, bug: Option<PagingBug>) {
        self.lock().paging_bug.set(bug);
    }

    pub(crate) fn count_tls_connection(&self) {
        self.lock().stats.tls_connections += 1;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take every later assertion down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `http://host:port/path` → `host:port`.
fn endpoint_authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or("")
}

/// The request's host, lower case, without port or trailing dot: the absolute
/// URI's, else the `Host` header's. A loopback URI (a host that rewrote the URL
/// to reach the fake's port) defers to the `Host` header when there is one.
fn request_host(req: &Request<Bytes>) -> String {
    let header_host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|raw| match raw.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => raw.split(':').next().unwrap_or(""),
        });
    let uri_host = req
        .uri()
        .host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
    let is_loopback = |h: &str| {
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    let host = match (uri_host, header_host) {
        (Some(u), Some(h)) if is_loopback(u) => h,
        (Some(u), _) => u,
        (None, h) => h.unwrap_or(""),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// 421 Misdirected Request: the fake serves only its two hosts.
fn misdirected(host: &str, config: &FakeConfig) -> Response<Bytes> {
    let body = serde_json::json!({"error": {
        "code": "MisdirectedRequest",
        "message": format!(
            "The fake serves {} and {}, not '{host}'.",
            config.login_host, config.org_host
        ),
    }});
    Response::builder()
        .status(StatusCode::MISDIRECTED_REQUEST)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Bytes::from(body.to_string()))
        .expect("static response parts are valid")
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Request builders shared by the fake's unit tests.
    use super::*;

    pub(crate) fn get(url: &str) -> Request<Bytes> {
        Request::get(url).body(Bytes::new()).unwrap()
    }

    pub(crate) fn json(resp: &Response<Bytes>) -> serde_json::Value {
        serde_json::from_slice(resp.body()).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(resp.body()))
        })
    }

    pub(crate) fn token_request(fake: &Fake, tenant: &str, form: &str) -> Response<Bytes> {
        fake.handle(
            Request::post(format!("https://{LOGIN_HOST}/{tenant}/oauth2/v2.0/token"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Bytes::from(form.to_string()))
                .unwrap(),
        )
    }

    /// Gets a token for `client_id`/`secret` at the demo org, panicking on failure.
    pub(crate) fn token_for(fake: &Fake, client_id: &str, secret: &str) -> String {
        let form = format!(
            "grant_type=client_credentials&client_id={client_id}&client_secret={}&scope=https%3A%2F%2F{ORG_HOST}%2F.default",
            percent::encode(secret, b"-._~", true)
        );
        let resp = token_request(fake, DEMO_TENANT_ID, &form);
        assert_eq!(resp.status(), 200, "{:?}", resp.body());
        json(&resp)["access_token"].as_str().unwrap().to_string()
    }

    pub(crate) fn api_get(fake: &Fake, token: &str, path_and_query: &str) -> Response<Bytes> {
        fake.handle(
            Request::get(format!("https://{ORG_HOST}{path_and_query}"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Bytes::new())
                .unwrap(),
        )
    }

    /// The demo org's service root.
    pub(crate) const BASE: &str = "https://contoso.crm.dynamics.com/api/data/v9.2";

    /// A fake with a token for the demo app.
    pub(crate) fn demo() -> (Arc<Fake>, String) {
        let fake = Fake::demo();
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        (fake, token)
    }

    /// `method {BASE}/{path}` with the token, extra headers and a body
    /// (spaces in `path` are percent-encoded).
    pub(crate) fn send(
        fake: &Fake,
        token: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response<Bytes> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{BASE}/{}", path.replace(' ', "%20")))
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        fake.handle(req.body(Bytes::from(body.to_string())).unwrap())
    }

    /// The id of seeded account `n` (1-based) or contact `n`.
    pub(crate) fn account_id(n: usize) -> String {
        ids::stable_guid(&format!("account/{n}"))
    }

    pub(crate) fn contact_id(n: usize) -> String {
        ids::stable_guid(&format!("contact/{n}"))
    }

    /// Asserts Entra's error shape and returns the parsed body.
    pub(crate) fn assert_entra_error(
        resp: &http::Response<Bytes>,
        status: u16,
        error: &str,
        code: u64,
    ) -> serde_json::Value {
        assert_eq!(resp.status(), status);
        assert_eq!(
            resp.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        let body = json(resp);
        assert_eq!(body["error"], error);
        assert_eq!(body["error_codes"], serde_json::json!([code]));
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        let trace_id = body["trace_id"].as_str().unwrap();
        let correlation_id = body["correlation_id"].as_str().unwrap();
        let timestamp = body["timestamp"].as_str().unwrap();
        assert_eq!((trace_id.len(), correlation_id.len()), (36, 36));
        assert!(description.ends_with(&format!(
            "\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
        )));
        assert_eq!(timestamp.len(), "2026-11-27 10:00:00Z".len());
        assert!(timestamp.ends_with('Z'));
        assert_eq!(
            body["error_uri"],
            format!("https://login.microsoftonline.com/error?code={code}")
        );
        body
    }

    /// Asserts a Dataverse error and returns its message.
    pub(crate) fn assert_error(resp: &Response<Bytes>, status: u16, code: &str) -> String {
        assert_eq!(resp.status(), status, "{:?}", resp.body());
        let body = json(resp);
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"]["message"].as_str().unwrap().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn routes_by_host_header_and_rejects_unknown_hosts() {
        let fake = Fake::demo();
        let by_header = Request::get("/api/data/v9.2/WhoAmI")
            .header(header::HOST, "Contoso.CRM.Dynamics.com:443")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(fake.handle(by_header).status(), 401);
        let rewritten = Request::get("https://127.0.0.1:8443/api/data/v9.2/")
            .header(header::HOST, ORG_HOST)
            .body(Bytes::new())
            .unwrap();
        assert_eq!(fake.handle(rewritten).status(), 401);
        let other = fake.handle(get("https://example.com/"));
        assert_eq!(other.status(), 421);
        assert_eq!(json(&other)["error"]["code"], "MisdirectedRequest");
        let hosts: Vec<_> = fake.requests().into_iter().map(|r| r.host).collect();
        assert_eq!(hosts, [ORG_HOST, ORG_HOST, "example.com"]);
    }

    #[test]
    fn stats_count_discovery_token_and_api_requests() {
        let fake = Fake::demo();
        fake.handle(get(&format!("https://{ORG_HOST}/api/data/v9.2/")));
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        token_request(&fake, DEMO_TENANT_ID, "grant_type=password");
        api_get(&fake, &token, "/api/data/v9.2/WhoAmI");
        api_get(&fake, &token, "/api/data/v9.2/accounts?$top=1");
        api_get(&fake, "not-a-token", "/api/data/v9.2/WhoAmI");
        assert_eq!(
            fake.stats(),
            FakeStats {
                discovery_requests: 1,
                token_requests: 2,
                api_requests: 2,
                tls_connections: 0
            }
        );
        let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, [401, 200, 400, 200, 200, 401]);
    }

    #[test]
    fn debug_output_never_shows_secrets_or_tokens() {
        let fake = Fake::demo();
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        api_get(&fake, &token, "/api/data/v9.2/WhoAmI");
        let debug = format!("{fake:?} {:?} {:?}", fake.requests(), FakeConfig::default());
        assert!(!debug.contains(DEMO_CLIENT_SECRET));
        assert!(!debug.contains(NO_USER_CLIENT_SECRET));
        assert!(debug.contains(&demo_certificate().thumbprint));
        assert!(debug.contains("secret_expired: false"));
        assert!(!debug.contains(&token));
        assert!(debug.contains("Bearer <redacted>"));
    }

    #[test]
    fn request_headers_are_recorded_with_the_token_redacted() {
        let (fake, token) = demo();
        let sent = [
            ("MSCRM.BypassCustomPluginExecution", "true"),
            ("MSCRM.SuppressDuplicateDetection", "false"),
            ("MSCRM.SolutionUniqueName", "sample_solution"),
            ("Consistency", "Strong"),
            ("Prefer", "return=representation"),
            (
                "x-ms-client-request-id",
                "5b1b3b9e-0000-4000-8000-000000000001",
            ),
            ("If-Match", "*"),
        ];
        send(
            &fake,
            &token,
            "PATCH",
            &format!("accounts({})", account_id(1)),
            &sent,
            "{}",
        );
        let recorded = fake.requests().pop().unwrap();
        for (name, value) in sent {
            assert_eq!(recorded.header(name), Some(value), "{name}");
        }
        assert_eq!(recorded.header("authorization"), Some("Bearer <redacted>"));
        assert_eq!(recorded.authorization, Some(format!("Bearer {token}")));
        assert!(
            recorded
                .headers
                .iter()
                .all(|(n, v)| n == &n.to_ascii_lowercase() && !v.contains(&token))
        );
    }

    #[test]
    fn client_request_id_is_echoed_on_dataverse_answers() {
        let (fake, token) = demo();
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let resp = send(
            &fake,
            &token,
            "GET",
            "WhoAmI",
            &[("x-ms-client-request-id", id)],
            "",
        );
        assert_eq!(resp.headers()["x-ms-client-request-id"], id);
        let resp = send(
            &fake,
            &token,
            "GET",
            "nope",
            &[("x-ms-client-request-id", id)],
            "",
        );
        assert_eq!(resp.headers()["x-ms-client-request-id"], id);
        assert!(
            send(&fake, &token, "GET", "WhoAmI", &[], "")
                .headers()
                .get("x-ms-client-request-id")
                .is_none()
        );
    }

    #[test]
    fn caller_object_id_impersonates_a_known_user_and_unknown_ones_get_403() {
        let (fake, token) = demo();
        let me = json(&send(&fake, &token, "GET", "WhoAmI", &[], ""));
        assert_eq!(me["UserId"], DEMO_USER_ID);
        let as_user = send(
            &fake,
            &token,
            "GET",
            "WhoAmI",
            &[("CallerObjectId", IMPERSONATED_OBJECT_ID)],
            "",
        );
        assert_eq!(json(&as_user)["UserId"], IMPERSONATED_USER_ID);
        let legacy = send(
            &fake,
            &token,
            "GET",
            "WhoAmI",
            &[("MSCRMCallerID", IMPERSONATED_USER_ID)],
            "",
        );
        assert_eq!(json(&legacy)["UserId"], IMPERSONATED_USER_ID);
        let unknown = send(
            &fake,
            &token,
            "GET",
            "WhoAmI",
            &[("CallerObjectId", "00000000-0000-0000-0000-0000000000ab")],
            "",
        );
        let message = assert_error(&unknown, 403, "0x80072560");
        assert_eq!(message, "The user is not a member of the organization.");
    }

    #[test]
    fn foreign_hosts_are_recorded_with_their_authorization_and_refused() {
        let fake = Fake::demo();
        let resp = fake.handle(
            Request::post("https://evil.example/steal")
                .header(header::AUTHORIZATION, "Bearer leaked")
                .body(Bytes::new())
                .unwrap(),
        );
        assert_eq!(resp.status(), 421);
        let recorded = fake.requests().pop().unwrap();
        assert_eq!(recorded.authorization.as_deref(), Some("Bearer leaked"));
        assert_eq!(recorded.status, 421);
        assert_eq!(fake.stats().api_requests, 0);
    }

    #[test]
    fn expired_tokens_are_challenged() {
        let fake = Fake::demo();
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        fake.expire_tokens();
        assert_eq!(
            api_get(&fake, &token, "/api/data/v9.2/WhoAmI").status(),
            401
        );
    }

    #[test]
    fn revoked_tokens_are_challenged_and_new_ones_work() {
        let fake = Fake::demo();
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        assert_eq!(
            api_get(&fake, &token, "/api/data/v9.2/WhoAmI").status(),
            200
        );
        fake.revoke_tokens();
        let resp = api_get(&fake, &token, "/api/data/v9.2/WhoAmI");
        assert_eq!(resp.status(), 401);
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer authorization_uri=https://login.microsoftonline.com/")
        );
        let fresh = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        assert_eq!(
            api_get(&fake, &fresh, "/api/data/v9.2/WhoAmI").status(),
            200
        );
        assert_eq!(fake.token_requests_for(DEMO_CLIENT_ID), 2);
    }

    #[test]
    fn demo_data_and_connection_string() {
        let fake = Fake::demo();
        let names = fake.account_names();
        assert_eq!(names.len(), 25);
        assert_eq!(
            names[..3],
            ["Contoso Ltd", "Fabrikam Inc", "Adventure Works"]
        );
        assert_eq!(
            demo_connection_string(),
            format!(
                "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId={DEMO_CLIENT_ID};ClientSecret={DEMO_CLIENT_SECRET}"
            )
        );
        assert_eq!(
            demo_certificate_connection_string("ABCDEF0123"),
            format!(
                "AuthType=Certificate;Url=https://contoso.crm.dynamics.com/;ClientId={CERT_CLIENT_ID};Thumbprint=ABCDEF0123"
            )
        );
        let cert_app = entra::token::find_app(fake.config(), CERT_CLIENT_ID).unwrap();
        assert_eq!(cert_app.certificates, [demo_certificate().der.clone()]);
        assert!(cert_app.secret.is_empty() && cert_app.application_user);
    }
}
