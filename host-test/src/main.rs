//! `host-test`: the command-line host for the dataverse-wasm component.

mod backend;
mod bench;
mod cli;
mod commands;
mod doctor;
mod fake_server;
mod native;
mod schedule;
mod serve;

use std::process::ExitCode;
use std::sync::Arc;

use cli::{Cli, Global};
pub use dataverse_cli::{Failure, exit, output};
use dataverse_host::authority_cache::{self, AuthorityCache};
use dataverse_host::session::{AssertionAlgorithm, ClientOptions};
use dataverse_host::{CallError, IdentityEnvironment, Network, Runtime, Session};
use dataverse_wasm::settings::Credential;

pub use backend::failed;

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().collect();
    let cli = match dataverse_cli::parse_words::<Cli>(&words) {
        Ok(cli) => cli,
        Err(code) => return ExitCode::from(code),
    };
    let verbose = cli.global.options.verbose;
    let json = cli.global.json();
    let report = |failure| ExitCode::from(dataverse_cli::report(failure, verbose, json));
    let runtime = if cli.command.runs_concurrently() {
        tokio::runtime::Runtime::new()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => return report(Failure::host(e)),
    };
    match runtime.block_on(commands::run(&cli.global, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}

/// What the CLI's instances may use: the defaults, but mapped on demand. A
/// command holds one session at a time (a second while it replaces one),
/// so a pool of reserved slots would only cost every start its set-up and
/// every exit its teardown: on demand, a cold `whoami` used 8.0–9.4 ms of
/// CPU pooled (4 slots) and 6.2–6.5 ms on demand (`perf stat -r 30`).
const CLI_LIMITS: dataverse_host::Limits = dataverse_host::Limits {
    allocation: dataverse_host::Allocation::OnDemand,
    ..dataverse_host::Limits::DEFAULT
};

/// The client component in wasmtime: `--component`, else the one built into
/// this binary — the signing one (`client-signing`) when `signing`.
fn load_runtime(global: &Global, signing: bool) -> Result<Runtime, Failure> {
    // Only the plain client is precompiled into this binary (the signing
    // one, for Key Vault certificates, is compiled once into the cache).
    let (precompiled, wasm, sha256) = if signing {
        (
            &[][..],
            dataverse_artifacts::SIGNING_CLIENT,
            dataverse_artifacts::SIGNING_CLIENT_SHA256,
        )
    } else {
        (
            dataverse_artifacts::CLIENT_PRECOMPILED,
            dataverse_artifacts::CLIENT,
            dataverse_artifacts::CLIENT_SHA256,
        )
    };
    let limits = CLI_LIMITS;
    let runtime = match &global.component {
        Some(path) => Runtime::load(path),
        None => Runtime::from_precompiled(precompiled, wasm, sha256, limits),
    }
    .map_err(Failure::host)?
    // AuthType=ManagedIdentity / WorkloadIdentity: the platform's identity
    // variables (only those) and the federated token file's directory.
    .with_identity(IdentityEnvironment::from_env());
    // -v: one line per HTTP exchange. An `Exchange` holds no header and no
    // body, so no token or secret can reach the terminal this way.
    if global.options.verbose {
        Ok(runtime.with_exchange_log(Arc::new(|exchange| eprintln!("http: {exchange}"))))
    } else {
        Ok(runtime)
    }
}

/// The runtime for `connection`: the plain client component, or, when the
/// settings (parsed here, natively) name a certificate whose key stays in Key
/// Vault, the signing component with a Key Vault signer acting as this
/// machine's managed identity over `network`. Only the one used is compiled,
/// so the other credentials never pay for the second component.
pub fn runtime_for(
    global: &Global,
    connection: &str,
    network: &Arc<Network>,
) -> Result<Runtime, Failure> {
    let signing = matches!(
        dataverse_wasm::settings::parse(connection).map(|s| s.credential),
        Ok(Credential::HostKey(_))
    );
    let runtime = load_runtime(global, signing)?;
    if !signing {
        return Ok(runtime);
    }
    let signer =
        dataverse_host::KeyVaultSigner::new(network.clone(), IdentityEnvironment::from_env());
    Ok(runtime.with_signer(Arc::new(signer)))
}

/// The network upstream as `--connect-to` and `--cacert` describe it,
/// through the proxies the environment names (`HTTPS_PROXY`, `NO_PROXY`, …).
pub fn network(global: &Global) -> Result<Network, Failure> {
    let cacert = match &global.cacert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--cacert {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let connect_to = global
        .connect_to
        .iter()
        .map(|rule| rule.parse().map_err(|e| Failure::usage(format!("{e:#}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let proxy = dataverse_host::ProxyConfig::from_env(|name| std::env::var(name).ok())
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let network = Network::new(connect_to, cacert.as_deref())
        .map(|network| network.with_proxy(proxy))
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    // App Service's IDENTITY_ENDPOINT is plain http off loopback in Linux
    // containers (http://172.16.…:8081): allowed because the platform said so.
    match IdentityEnvironment::from_env().plain_http_endpoint() {
        Some(endpoint) => network
            .with_plain_http_endpoint(endpoint)
            .map_err(|e| Failure::usage(format!("IDENTITY_ENDPOINT: {e:#}"))),
        None => Ok(network),
    }
}

/// The connection string from wherever the user keeps it (see
/// `dataverse_cli::connection`).
pub fn connection_string(global: &Global) -> Result<String, Failure> {
    Ok(dataverse_cli::commands::resolved_connection(&global.options)?.connection)
}

/// Connects to the org named by the connection string, over the network.
/// The tenant found by discovery is cached on disk for a day (see
/// `dataverse_host::authority_cache`), so a later run goes straight to the
/// token request; a refusal that says the tenant is wrong drops the entry
/// and discovers again.
pub async fn connect(global: &Global) -> Result<Session, Failure> {
    let connection = connection_string(global)?;
    let network = Arc::new(network(global)?);
    let runtime = runtime_for(global, &connection, &network)?;
    let store = global.cert_store.as_deref();
    if let Some(dir) = store
        && !dir.is_dir()
    {
        return Err(Failure::usage(format!(
            "--cert-store {}: not a directory",
            dir.display()
        )));
    }
    let connect = async |connection: &str| {
        runtime
            .connect_with(network.clone(), store, connection, client_options(global))
            .await
    };
    // Only a secret or certificate string that leaves the tenant to
    // discovery uses the cache (an identity endpoint knows its tenant, and
    // managed identity refuses an Authority).
    let org = dataverse_wasm::settings::parse(&connection)
        .ok()
        .filter(|s| s.authority.is_none() && s.tenant_id.is_none())
        .filter(|s| {
            matches!(
                s.credential,
                Credential::ClientSecret(_) | Credential::Certificate { .. }
            )
        })
        .map(|s| s.org_url);
    let (Some(org), true) = (org, global.authority_cache()) else {
        return connect(&connection).await.map_err(failed);
    };
    let cache = AuthorityCache::in_cache_dir();
    let now = unix_now();
    if let Some(authority) = cache.lookup(&org, now) {
        let with_authority = format!("{};Authority={authority}", connection.trim_end_matches(';'));
        match connect(&with_authority).await {
            Ok(session) => return Ok(session),
            Err(CallError::Dataverse(e)) if authority_cache::tenant_refused(&e) => {
                cache.forget(&org);
            }
            Err(e) => return Err(failed(e)),
        }
    }
    let mut session = connect(&connection).await.map_err(failed)?;
    if let Ok(info) = session.token_info().await {
        cache.store(&org, &info.authority, now);
    }
    Ok(session)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn client_options(global: &Global) -> ClientOptions {
    ClientOptions {
        max_response_bytes: None,
        timeout_ms: global.options.timeout_ms,
        max_retries: global.options.max_retries,
        max_total_wait_ms: None,
        assertion_algorithm: global.options.ps256.then_some(AssertionAlgorithm::Ps256),
        send_certificate_chain: Some(global.options.send_chain),
    }
}

/// Runs the demo against the in-process fake.
pub async fn demo_session(
    global: &Global,
    fake: Arc<dataverse_fake::Fake>,
) -> Result<Session, Failure> {
    let runtime = load_runtime(global, false)?;
    let connection = dataverse_fake::demo_connection_string();
    runtime
        .connect(fake, &connection, client_options(global))
        .await
        .map_err(failed)
}
