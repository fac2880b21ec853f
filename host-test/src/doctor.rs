//! `doctor`: walks the server-to-server chain link by link and stops at the
//! first broken one, with the fix — the diagnosis ServiceClient users piece
//! together from stack traces.
//!
//! settings → DNS → connect (TCP + TLS trust) → tenant discovery (the 401
//! challenge) → authority (the org's cloud) → token → Application User
//! (WhoAmI) → read privilege on a table (`--table`) → throttling headroom.
//!
//! The pure links (settings, challenge, cloud) run the core natively, the
//! network links use the same `Network` as every command, and the token and
//! the Web API calls go through the component, so what doctor sees is what
//! the other commands get.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use dataverse_host::session::{DataverseError, ErrorKind, Method, WebRequest, describe};
use dataverse_host::upstream::{HttpError, RequestOptions};
use dataverse_host::{CallError, Network, Session};
use dataverse_wasm::auth::{authority, cloud};
use dataverse_wasm::settings::{self, Credential, Settings};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::cli::Global;
use crate::{Failure, output};

/// How far the local clock may be off Microsoft's before tokens and client
/// assertions fail (Entra ID's allowance for `nbf`/`exp` is five minutes).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// The links, in order.
const STEPS: &[&str] = &[
    "settings",
    "dns",
    "connect",
    "tenant discovery",
    "authority",
    "clock",
    "token",
    "application user",
    "read privilege",
    "throttling",
];

/// One link of the chain.
#[derive(Debug)]
pub struct Step {
    pub name: &'static str,
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// What was found (never a secret).
    pub detail: String,
    /// What to do about it, for a failure or a warning.
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warning,
    Failed,
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warning => "warning",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// A broken link: what is wrong (as the component's typed error, so the
/// exit code and `--json`'s `kind` are those of the other commands) and the fix.
#[derive(Debug)]
struct Broken {
    /// Boxed: it is large, and every link returns `Result<_, Broken>`.
    error: Box<DataverseError>,
    fix: String,
}

fn broken(kind: ErrorKind, fix: impl Into<String>) -> Broken {
    Broken {
        error: Box::new(DataverseError { kind, call: None }),
        fix: fix.into(),
    }
}

/// A failed call as a broken link.
fn broken_call(error: CallError, fix: impl Into<String>) -> Broken {
    match error {
        CallError::Dataverse(error) => Broken {
            error: Box::new(error),
            fix: fix.into(),
        },
        other => broken(ErrorKind::Transport(other.to_string()), fix),
    }
}

/// What a step shows of an error: the service's own words, without the
/// component's hint (the step's fix says what to do).
fn brief(error: &DataverseError) -> String {
    match &error.kind {
        ErrorKind::Authentication(a) => {
            let first = a.description.lines().next().unwrap_or_default();
            format!("Entra ID answered HTTP {} {}: {first}", a.status, a.error)
        }
        ErrorKind::AccessDenied(s)
        | ErrorKind::NotFound(s)
        | ErrorKind::PreconditionFailed(s)
        | ErrorKind::Service(s) => format!(
            "Dataverse answered HTTP {} {}: {}",
            s.status,
            s.code.as_deref().unwrap_or("-"),
            s.message
        ),
        ErrorKind::InvalidSettings(m)
        | ErrorKind::InvalidRequest(m)
        | ErrorKind::Authority(m)
        | ErrorKind::Transport(m)
        | ErrorKind::InvalidResponse(m) => m.clone(),
        ErrorKind::Throttled(_) => describe(error),
    }
}

/// The chain so far.
struct Report {
    steps: Vec<Step>,
    failure: Option<Box<DataverseError>>,
}

impl Report {
    /// Runs a link unless an earlier one broke (then it is skipped).
    async fn step<T>(
        &mut self,
        name: &'static str,
        link: impl AsyncFnOnce() -> Result<(T, String), Broken>,
    ) -> Option<T> {
        if self.failure.is_some() {
            self.steps.push(Step {
                name,
                outcome: Outcome::Skipped,
                elapsed: Duration::ZERO,
                detail: String::new(),
                fix: None,
            });
            return None;
        }
        let started = Instant::now();
        let result = link().await;
        let elapsed = started.elapsed();
        match result {
            Ok((value, detail)) => {
                self.steps.push(Step {
                    name,
                    outcome: Outcome::Ok,
                    elapsed,
                    detail,
                    fix: None,
                });
                Some(value)
            }
            Err(b) => {
                self.steps.push(Step {
                    name,
                    outcome: Outcome::Failed,
                    elapsed,
                    detail: brief(&b.error),
                    fix: Some(b.fix),
                });
                self.failure = Some(b.error);
                None
            }
        }
    }

    fn warn(&mut self, name: &'static str, detail: String, fix: String) {
        self.steps.push(Step {
            name,
            outcome: Outcome::Warning,
            elapsed: Duration::ZERO,
            detail,
            fix: Some(fix),
        });
    }
}

pub async fn run(global: &Global, table: Option<&str>) -> Result<(), Failure> {
    let mut report = Report {
        steps: Vec::new(),
        failure: None,
    };
    let resolved = dataverse_cli::commands::resolved_connection(&global.options)?;
    let network = Arc::new(crate::network(global)?);
    walk(&mut report, global, &resolved, network, table).await;
    // A link after the broken one was never tried: say so, so the report
    // always lists the whole chain.
    for name in STEPS {
        if !report.steps.iter().any(|s| s.name == *name) {
            report.steps.push(Step {
                name,
                outcome: Outcome::Skipped,
                elapsed: Duration::ZERO,
                detail: String::new(),
                fix: None,
            });
        }
    }
    print(global, &report)?;
    match report.failure {
        None => Ok(()),
        Some(error) => {
            let step = report
                .steps
                .iter()
                .find(|s| s.outcome == Outcome::Failed)
                .expect("a failure has its step");
            let mut failure = crate::failed(CallError::Dataverse(*error));
            failure.message = format!("doctor: the {} step failed: {}", step.name, step.detail);
            Err(failure)
        }
    }
}

async fn walk(
    report: &mut Report,
    global: &Global,
    resolved: &dataverse_cli::connection::Resolved,
    network: Arc<Network>,
    table: Option<&str>,
) {
    let connection = resolved.connection.as_str();
    let Some(settings) = report
        .step("settings", async || {
            check_settings(connection).map(|(settings, detail)| {
                (settings, format!("{detail} (from {})", resolved.origin))
            })
        })
        .await
    else {
        return;
    };
    let host = settings
        .org_url
        .split_once("://")
        .map_or(settings.org_url.as_str(), |(_, rest)| rest)
        .to_string();
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name.to_string(), port.parse().unwrap_or(443)),
        None => (host.clone(), 443),
    };
    // Secretless credentials: what the platform must provide, checked
    // before anything is sent.
    if matches!(
        settings.credential,
        Credential::ManagedIdentity(_) | Credential::WorkloadIdentity(_)
    ) && report
        .step("identity", async || {
            identity_check(
                &settings.credential,
                |name| std::env::var(name).ok(),
                unix_now(),
            )
        })
        .await
        .is_none()
    {
        return;
    }
    let (to_host, to_port) = network.destination(&name, port);
    report
        .step("dns", async || resolve(&name, &to_host, to_port).await)
        .await;
    let Some(challenge) = report
        .step("connect", async || {
            discovery_response(&network, &settings.org_url).await
        })
        .await
    else {
        return;
    };
    let Some((authority, _scope)) = report
        .step("tenant discovery", async || discover(&challenge, &settings))
        .await
    else {
        return;
    };
    report
        .step("authority", async || check_cloud(&authority, &name))
        .await;
    // Entra ID checks token and assertion times against its clock: a local
    // clock far off shows here before it shows as a refused token.
    match clock_skew(&challenge) {
        Some(skew) if skew.unsigned_abs() > MAX_CLOCK_SKEW.as_secs() && report.failure.is_none() => {
            report.warn(
                "clock",
                format!("the local clock is {skew} s off Dataverse's Date header"),
                "sync the clock (NTP): Entra ID refuses tokens and client assertions outside a 5-minute window".into(),
            )
        }
        skew => {
            report
                .step("clock", async || {
                    Ok(((), match skew {
                        Some(skew) => format!("within {} s of Dataverse's clock (its Date header)", skew.unsigned_abs()),
                        None => "no Date header to compare with".into(),
                    }))
                })
                .await;
        }
    }
    // The same component (and Key Vault signer, for KeyVaultUrl) as the commands.
    let runtime = match crate::runtime_for(global, connection, &network) {
        Ok(runtime) => runtime,
        Err(failure) => {
            // Not a link of the chain: this machine's own problem.
            eprintln!("error: {}", failure.message);
            return;
        }
    };
    let mut session = None;
    report
        .step("token", async || {
            let mut s = runtime
                .connect_with(
                    network.clone(),
                    global.cert_store.as_deref(),
                    connection,
                    crate::client_options(global),
                )
                .await
                .map_err(|e| token_broken(e, &settings))?;
            let info = s
                .token_info()
                .await
                .map_err(|e| token_broken(e, &settings))?;
            let now = unix_now();
            let detail = format!(
                "from {} for {}, expires in {}",
                info.authority,
                info.scope,
                output::duration(info.expires_at.saturating_sub(now))
            );
            session = Some(s);
            Ok(((), detail))
        })
        .await;
    let Some(mut session) = session else {
        return;
    };
    let headers = report
        .step("application user", async || {
            let response = get(&mut session, "WhoAmI").await.map_err(user_broken)?;
            let who: Value = serde_json::from_slice(&response.body).unwrap_or_default();
            let detail = format!(
                "WhoAmI: UserId {}, BusinessUnitId {}",
                output::plain(&who["UserId"]),
                output::plain(&who["BusinessUnitId"])
            );
            Ok((response.headers, detail))
        })
        .await;
    let headers = match table {
        Some(table) => {
            report
                .step("read privilege", async || {
                    dataverse_cli::checks::identifier("entity set", table).map_err(|f| {
                        broken(
                            ErrorKind::InvalidRequest(f.message),
                            "pass the entity set name, e.g. --table accounts",
                        )
                    })?;
                    let response = get(&mut session, &format!("{table}?$top=1"))
                        .await
                        .map_err(|e| privilege_broken(e, table))?;
                    Ok((response.headers, format!("the app's role can read {table}")))
                })
                .await
        }
        None => {
            report.steps.push(Step {
                name: "read privilege",
                outcome: Outcome::Skipped,
                elapsed: Duration::ZERO,
                detail: "pass --table ENTITYSET to check a table".into(),
                fix: None,
            });
            headers
        }
    };
    report
        .step("throttling", async || {
            Ok(((), headroom(headers.as_deref())))
        })
        .await;
}

/// What a secretless credential needs from its platform, checked here:
/// App Service's two variables together; a federated token file that is
/// readable, a JWT, and not expired (the kubelet rotates it; a stale one is
/// AADSTS700024); GitHub's two variables (the job's `id-token: write`).
fn identity_check(
    credential: &Credential,
    var: impl Fn(&str) -> Option<String>,
    now: u64,
) -> Result<((), String), Broken> {
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    let settings_error =
        |message: String, fix: &str| broken(ErrorKind::InvalidSettings(message), fix);
    match credential {
        Credential::ManagedIdentity(_) => {
            match (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
                (Some(endpoint), Some(_)) => {
                    Ok(((), format!("App Service identity endpoint {endpoint}")))
                }
                (Some(_), None) => Err(settings_error(
                    "IDENTITY_ENDPOINT is set without IDENTITY_HEADER".into(),
                    "App Service sets both when the identity is on: check Identity in the portal, or unset IDENTITY_ENDPOINT to use IMDS",
                )),
                (None, _) => Ok((
                    (),
                    "IMDS (http://169.254.169.254), no App Service variables".into(),
                )),
            }
        }
        Credential::WorkloadIdentity(settings::FederatedTokenSource::GitHubActions) => {
            match (var("ACTIONS_ID_TOKEN_REQUEST_URL"), var("ACTIONS_ID_TOKEN_REQUEST_TOKEN")) {
                (Some(_), Some(_)) => Ok(((), "GitHub Actions OIDC token endpoint".into())),
                _ => Err(settings_error(
                    "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not both set".into(),
                    "give the job `permissions: id-token: write` (GitHub sets the two variables only then)",
                )),
            }
        }
        Credential::WorkloadIdentity(settings::FederatedTokenSource::File(path)) => {
            let Some(path) = path.clone().or_else(|| var("AZURE_FEDERATED_TOKEN_FILE")) else {
                return Err(settings_error(
                    "no token file: neither TokenFile= nor AZURE_FEDERATED_TOKEN_FILE".into(),
                    "on AKS, label the pod azure.workload.identity/use: \"true\" and annotate its service account with azure.workload.identity/client-id",
                ));
            };
            let token = std::fs::read_to_string(&path).map_err(|e| {
                settings_error(
                    format!("the token file {path}: {e}"),
                    "check the projected service account token volume is mounted",
                )
            })?;
            let exp = token
                .trim()
                .split('.')
                .nth(1)
                .and_then(|payload| {
                    use base64::Engine;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()
                })
                .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
                .and_then(|claims| claims["exp"].as_u64())
                .ok_or_else(|| {
                    settings_error(
                        format!("the token file {path} does not hold a JWT with an exp claim"),
                        "point TokenFile / AZURE_FEDERATED_TOKEN_FILE at the projected service account token",
                    )
                })?;
            if exp <= now {
                return Err(settings_error(
                    format!(
                        "the token in {path} expired {} ago",
                        output::duration(now - exp)
                    ),
                    "the platform rotates the file: check the token volume's expirationSeconds and that the kubelet can write it",
                ));
            }
            Ok((
                (),
                format!(
                    "token file {path}, expires in {}",
                    output::duration(exp - now)
                ),
            ))
        }
        _ => Ok(((), String::new())),
    }
}

fn check_settings(connection: &str) -> Result<(Settings, String), Broken> {
    let settings = settings::parse(connection).map_err(|e| {
        broken(
            ErrorKind::InvalidSettings(e.to_string()),
            "fix the connection string: AuthType=ClientSecret;Url=https://yourorg.crm.dynamics.com/;ClientId=…;ClientSecret=…",
        )
    })?;
    let credential = match &settings.credential {
        Credential::ClientSecret(_) => "client secret".to_string(),
        Credential::Certificate { thumbprint, .. } => format!("certificate {thumbprint}"),
        Credential::CertificatePem(_) => "certificate (PEM)".into(),
        Credential::HostKey(key_id) => format!("certificate whose key the host holds ({key_id})"),
        Credential::ExternalToken => "external token".into(),
        Credential::ManagedIdentity(_) => "managed identity".into(),
        Credential::WorkloadIdentity(_) => "workload identity".into(),
    };
    let detail = format!(
        "{} as app {} with a {credential}",
        settings.org_url, settings.client_id
    );
    Ok((settings, detail))
}

async fn resolve(host: &str, to_host: &str, to_port: u16) -> Result<((), String), Broken> {
    let target = format!("{to_host}:{to_port}");
    match tokio::net::lookup_host(&target).await {
        Ok(addrs) => {
            let addrs: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            let via = if to_host.eq_ignore_ascii_case(host) {
                String::new()
            } else {
                format!(" (--connect-to {to_host}:{to_port})")
            };
            Ok(((), format!("{host}{via} → {}", addrs.join(", "))))
        }
        Err(e) => Err(broken(
            ErrorKind::Transport(format!("cannot resolve {to_host}: {e}")),
            "check the host name in Url (a typo is the usual cause; it looks like yourorg.crm.dynamics.com) and this machine's DNS",
        )),
    }
}

/// The unauthenticated GET whose 401 names the tenant: it proves the TCP
/// connection, the TLS trust and that something answers HTTP.
async fn discovery_response(
    network: &Arc<Network>,
    org_url: &str,
) -> Result<(dataverse_wasm::http::Response, String), Broken> {
    let request = authority::discovery_request(org_url);
    let mut builder = http::Request::get(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(Bytes::new()).map_err(|e| {
        broken(
            ErrorKind::InvalidSettings(format!("Url is not a valid URL: {e}")),
            "fix Url",
        )
    })?;
    let options = RequestOptions {
        connect_timeout: Some(Duration::from_secs(10)),
        first_byte_timeout: Some(Duration::from_secs(20)),
        between_bytes_timeout: Some(Duration::from_secs(20)),
    };
    let response = network
        .send(request, options)
        .await
        .map_err(|e| connect_broken(&e, org_url))?;
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    // Only the head matters; the body is drained so the connection is whole.
    let _ = response.into_body().collect().await;
    Ok((
        dataverse_wasm::http::Response {
            status,
            headers,
            body: Vec::new(),
        },
        format!("{org_url} answered HTTP {status} over a trusted TLS connection"),
    ))
}

fn connect_broken(error: &HttpError, org_url: &str) -> Broken {
    let text = format!("{error}");
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") {
        return broken(
            ErrorKind::Transport(format!("TLS to {org_url} failed: {text}")),
            "the server's certificate is not trusted: behind a TLS-inspecting proxy, add your \
             corporate root CA (install it in the system trust store, or pass --cacert FILE)",
        );
    }
    if lower.contains("dns") {
        return broken(
            ErrorKind::Transport(format!("cannot resolve the host of {org_url}: {text}")),
            "check the host name in Url and this machine's DNS",
        );
    }
    broken(
        ErrorKind::Transport(format!("cannot reach {org_url}: {text}")),
        "check the Url, the network and the firewall; behind a proxy set HTTPS_PROXY (and NO_PROXY for exceptions)",
    )
}

fn discover(
    challenge: &dataverse_wasm::http::Response,
    settings: &Settings,
) -> Result<((authority::Authority, String), String), Broken> {
    let (authority, scope) = match authority::from_settings(settings) {
        Some(configured) => {
            let authority = configured.map_err(|e| {
                broken(
                    ErrorKind::Authority(e.to_string()),
                    "fix TenantId or Authority in the connection string",
                )
            })?;
            (authority, authority::default_scope(settings))
        }
        None => authority::from_discovery(challenge, settings).map_err(|e| {
            broken(
                ErrorKind::Authority(e.to_string()),
                format!(
                    "{} did not answer like Dataverse (HTTP {}, no usable WWW-Authenticate challenge): \
                     check that Url is the environment's URL (Power Platform admin center → Environments → Environment URL)",
                    settings.org_url, challenge.status
                ),
            )
        })?,
    };
    let how = if authority::from_settings(settings).is_some() {
        "from the connection string's TenantId/Authority"
    } else {
        "from the WWW-Authenticate challenge"
    };
    let detail = format!("tenant {} {how}", authority.tenant);
    Ok(((authority, scope), detail))
}

fn check_cloud(authority: &authority::Authority, org_host: &str) -> Result<((), String), Broken> {
    let login_host = authority.host.split(':').next().unwrap_or(&authority.host);
    match cloud::of_org_host(org_host) {
        Some(cloud) if cloud.login_hosts.contains(&login_host) => Ok((
            (),
            format!("{} is the {} cloud's Entra ID", authority.url(), cloud.name),
        )),
        Some(cloud) => Err(broken(
            ErrorKind::Authority(format!(
                "{} is not an Entra ID host of the {} cloud the org belongs to (expected {})",
                authority.host,
                cloud.name,
                cloud.login_hosts.join(" or ")
            )),
            "the authority must be in the org's cloud: fix Authority, or check that Url is a Dataverse environment",
        )),
        None => Ok((
            (),
            format!(
                "{} (the org is not on a Microsoft cloud domain: the authority is trusted through the settings)",
                authority.url()
            ),
        )),
    }
}

/// Local clock minus the server's `Date`, in seconds.
fn clock_skew(response: &dataverse_wasm::http::Response) -> Option<i64> {
    let date = response.header("date")?;
    let server = httpdate(date)?;
    Some(unix_now() as i64 - server)
}

/// An IMF-fixdate (`Tue, 01 Dec 2026 16:30:12 GMT`) as Unix seconds.
fn httpdate(text: &str) -> Option<i64> {
    let format = time::format_description::well_known::Rfc2822;
    time::OffsetDateTime::parse(&text.replace("GMT", "+0000"), &format)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a refused token request means, by its AADSTS code.
fn token_broken(error: CallError, settings: &Settings) -> Broken {
    let Some(ErrorKind::Authentication(auth)) = error.kind().cloned() else {
        let fix = match error.kind() {
            Some(ErrorKind::InvalidSettings(_)) => "fix the connection string (or --cert-store)",
            Some(ErrorKind::Transport(_)) => {
                "the login host is unreachable: check the network, HTTPS_PROXY and the trust store"
            }
            _ => "see the message",
        };
        return broken_call(error, fix);
    };
    let secret_is_a_guid = matches!(&settings.credential,
        Credential::ClientSecret(secret) if dataverse_wasm::webapi::entity_key::guid(secret.expose()).is_some());
    let app = &settings.client_id;
    let secrets = format!("Entra ID → App registrations → the app {app} → Certificates & secrets");
    let fix = match auth.code {
        Some(7000215) if secret_is_a_guid => format!(
            "ClientSecret holds the secret's ID (a GUID), not its value: in {secrets}, the Value \
             column is shown only once, when the secret is created — create a new secret and copy its Value"
        ),
        Some(7000215) => format!(
            "the client secret is wrong: create a new secret in {secrets} and copy its Value"
        ),
        Some(7000222) => format!(
            "the client secret has expired: create a new one in {secrets} and update the connection string"
        ),
        Some(700016) => format!(
            "there is no app {app} in this tenant: check ClientId (the Application (client) ID, not the object ID) and the tenant"
        ),
        Some(700027) => format!(
            "the certificate is not registered on the app (or its key does not match): upload its public part (.cer) in {secrets} → Certificates"
        ),
        Some(700024) => {
            "the client assertion is outside its valid time: sync this machine's clock (NTP)".into()
        }
        Some(7000218) => "no credential reached Entra ID: set ClientSecret, or AuthType=Certificate with a Thumbprint".into(),
        Some(90002) | Some(90072) => {
            "the tenant does not exist or the app is not in it: check TenantId / Authority".into()
        }
        _ => auth.hint.clone().unwrap_or_else(|| "see Entra ID's message".into()),
    };
    broken_call(error, fix)
}

fn user_broken(error: CallError) -> Broken {
    let fix = match error.kind() {
        Some(ErrorKind::AccessDenied(s)) if s.code.as_deref() == Some("0x80072560") => {
            "the app has no Application User in this environment: Power Platform admin center → \
             the environment → Settings → Users + permissions → Application users → New app user, \
             pick the app, and give it a security role"
        }
        Some(ErrorKind::Authentication(_)) | Some(ErrorKind::Authority(_)) => {
            "Dataverse refused the token: check that Url is the environment the Application User is in"
        }
        _ => "see the message",
    };
    broken_call(error, fix)
}

fn privilege_broken(error: CallError, table: &str) -> Broken {
    let fix = match error.kind() {
        Some(ErrorKind::AccessDenied(s)) => {
            let privilege = s
                .message
                .split_whitespace()
                .find(|w| w.starts_with("prv"))
                .unwrap_or("Read");
            format!(
                "the Application User's security role lacks {privilege} on {table}: open the role \
                 (Power Platform admin center → the environment → Settings → Security roles) and grant Read on the table"
            )
        }
        Some(ErrorKind::NotFound(_)) => format!(
            "there is no entity set '{table}': use the plural entity set name (accounts, contacts, …), not the logical name"
        ),
        _ => "see the message".into(),
    };
    broken_call(error, fix)
}

/// The service protection headers Dataverse puts on every answer.
fn headroom(headers: Option<&[(String, String)]>) -> String {
    let header = |name: &str| {
        headers?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let burst = header("x-ms-ratelimit-burst-remaining-xrm-requests");
    let time = header("x-ms-ratelimit-time-remaining-xrm-requests");
    match (burst, time) {
        (None, None) => {
            "no x-ms-ratelimit-* headers on the answers (not reported by this server)".into()
        }
        (burst, time) => format!(
            "{} requests and {} s of execution time left in the 5-minute window (limits: 6,000 and 1,200 s per user per server)",
            burst.as_deref().unwrap_or("?"),
            time.as_deref()
                .map_or("?".into(), |t| t.split('.').next().unwrap_or(t).to_string())
        ),
    }
}

async fn get(
    session: &mut Session,
    path: &str,
) -> Result<dataverse_host::session::WebResponse, CallError> {
    session
        .send(
            &WebRequest {
                method: Method::Get,
                path: path.to_string(),
                headers: Vec::new(),
                body: None,
            },
            None,
        )
        .await
}

fn print(global: &Global, report: &Report) -> Result<(), Failure> {
    if global.json() {
        let steps: Vec<Value> = report
            .steps
            .iter()
            .map(|s| {
                json!({
                    "step": s.name, "outcome": s.outcome.as_str(),
                    "ms": (s.elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
                    "detail": s.detail, "fix": s.fix,
                })
            })
            .collect();
        return output::line(
            &json!({ "ok": report.failure.is_none(), "steps": steps }).to_string(),
        );
    }
    let mut text = Vec::new();
    for s in &report.steps {
        let mark = match s.outcome {
            Outcome::Ok => "ok  ",
            Outcome::Warning => "warn",
            Outcome::Failed => "FAIL",
            Outcome::Skipped => "skip",
        };
        let ms = if s.outcome == Outcome::Skipped {
            String::new()
        } else {
            format!("{:.1} ms", s.elapsed.as_secs_f64() * 1000.0)
        };
        text.push(format!("{mark}  {:<17} {ms:>9}  {}", s.name, s.detail));
        if let Some(fix) = &s.fix {
            text.push(format!("      fix: {fix}"));
        }
    }
    output::line(&text.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataverse_wasm::settings::{FederatedTokenSource, ManagedIdentityId};

    fn jwt_expiring_at(exp: u64) -> String {
        use base64::Engine;
        let part = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        format!(
            "{}.{}.c2ln",
            part(r#"{"alg":"RS256"}"#),
            part(&format!(
                r#"{{"exp":{exp},"sub":"system:serviceaccount:a:b"}}"#
            ))
        )
    }

    #[test]
    fn the_identity_step_names_what_the_platform_left_out() {
        let now = 1_800_000_000;
        let mi = Credential::ManagedIdentity(ManagedIdentityId::SystemAssigned);
        let none = |_: &str| None;
        let endpoint_only =
            |name: &str| (name == "IDENTITY_ENDPOINT").then(|| "http://x".to_string());
        assert!(identity_check(&mi, none, now).unwrap().1.contains("IMDS"));
        let broken = identity_check(&mi, endpoint_only, now).unwrap_err();
        assert!(
            matches!(&broken.error.kind, ErrorKind::InvalidSettings(m) if m.contains("IDENTITY_HEADER"))
        );

        let github = Credential::WorkloadIdentity(FederatedTokenSource::GitHubActions);
        assert!(
            identity_check(&github, none, now)
                .unwrap_err()
                .fix
                .contains("id-token: write")
        );

        let dir = std::env::temp_dir().join(format!("doctor-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        let path = file.to_str().unwrap().to_string();
        let from_file =
            Credential::WorkloadIdentity(FederatedTokenSource::File(Some(path.clone())));
        std::fs::write(&file, jwt_expiring_at(now + 3000)).unwrap();
        assert!(
            identity_check(&from_file, none, now)
                .unwrap()
                .1
                .contains("expires in 50 min")
        );
        std::fs::write(&file, jwt_expiring_at(now - 120)).unwrap();
        let expired = identity_check(&from_file, none, now).unwrap_err();
        assert!(format!("{:?}", expired.error.kind).contains("expired 2 min 0 s ago"));
        std::fs::write(&file, "not a jwt").unwrap();
        assert!(identity_check(&from_file, none, now).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = Credential::WorkloadIdentity(FederatedTokenSource::File(None));
        assert!(
            identity_check(&missing, none, now)
                .unwrap_err()
                .fix
                .contains("azure.workload.identity")
        );
    }

    #[test]
    fn a_date_header_years_off_is_a_clock_skew() {
        let response = dataverse_wasm::http::Response {
            status: 401,
            headers: vec![("Date".into(), "Tue, 01 Dec 2020 00:00:00 GMT".into())],
            body: Vec::new(),
        };
        assert!(clock_skew(&response).unwrap() > 365 * 86_400);
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap();
        let response = dataverse_wasm::http::Response {
            headers: vec![("date".into(), now.replace("+0000", "GMT"))],
            ..response
        };
        assert!(clock_skew(&response).unwrap().unsigned_abs() < 5);
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(
            httpdate("Tue, 01 Dec 2026 09:56:35 GMT"),
            Some(1_796_118_995)
        );
        assert_eq!(httpdate("yesterday"), None);
    }

    #[test]
    fn headroom_reads_the_service_protection_headers() {
        let headers = vec![
            (
                "x-ms-ratelimit-burst-remaining-xrm-requests".to_string(),
                "5998".to_string(),
            ),
            (
                "x-ms-ratelimit-time-remaining-xrm-requests".to_string(),
                "1199.75".to_string(),
            ),
        ];
        let text = headroom(Some(&headers));
        assert!(text.starts_with("5998 requests and 1199 s"), "{text}");
        assert!(headroom(Some(&[])).contains("not reported"));
        assert!(headroom(None).contains("not reported"));
    }
}
