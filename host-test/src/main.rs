//! `host-test`: the command-line host for the dataverse-wasm component.

mod bench;
mod checks;
mod cli;
mod commands;
mod connection;
mod doctor;
mod exit;
mod fake_server;
mod json_error;
mod native;
mod output;
mod serve;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::{Cli, Global};
use dataverse_host::authority_cache::{self, AuthorityCache};
use dataverse_host::session::{
    AssertionAlgorithm, ClientOptions, DataverseError, RequestOptions, describe,
};
use dataverse_host::{CallError, Network, Runtime, Session};

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub detail: Option<String>,
    /// The component's typed error, when it is one (for `--json`); boxed
    /// to keep every `Result<_, Failure>` small.
    pub error: Option<Box<DataverseError>>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: exit::USAGE,
            message: message.into(),
            detail: None,
            error: None,
        }
    }

    pub fn host(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: exit::HOST,
            message: format!("{error:#}"),
            detail: None,
            error: None,
        }
    }
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Failure {
        match &error {
            CallError::Dataverse(e) => {
                let mut failure = Failure {
                    code: exit::for_kind(json_error::kind(&e.kind)),
                    message: describe(e),
                    detail: None,
                    error: Some(Box::new(e.clone())),
                };
                failure.detail = json_error::details(&failure);
                failure
            }
            CallError::Trapped(trap) => Failure::host(trap),
            CallError::Host(e) => Failure::host(format!("host error: {e}")),
        }
    }
}

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&words) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap's own output, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if cli::wants_json(&words[1..]) => {
            let message = e.kind().as_str().map_or_else(
                || first_line(&e.render().to_string()),
                |kind| format!("{kind}: {}", first_line(&e.render().to_string())),
            );
            return report(Failure::usage(message), false, true);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit::USAGE);
        }
    };
    let verbose = cli.global.verbose;
    let json = cli.global.json();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return report(Failure::host(e), verbose, json),
    };
    match runtime.block_on(commands::run(&cli.global, cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure, verbose, json),
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

/// Prints the failure on stderr — one line, or with `--json` one JSON
/// object (see `json_error`) — and exits with its code either way.
fn report(failure: Failure, verbose: bool, json: bool) -> ExitCode {
    if json {
        eprintln!("{}", json_error::render(&failure));
        return ExitCode::from(failure.code);
    }
    eprintln!("error: {}", failure.message);
    if verbose && let Some(detail) = &failure.detail {
        eprintln!("details: {detail}");
    }
    if failure.code == exit::USAGE && failure.error.is_none() {
        eprintln!("(host-test --help for usage)");
    }
    ExitCode::from(failure.code)
}

/// A warning on stderr (one JSON object with `--json`); never a secret.
fn warn(global: &Global, message: &str) {
    if global.json() {
        eprintln!("{}", serde_json::json!({ "warning": message }));
    } else {
        eprintln!("warning: {message}");
    }
}

/// The per-call options given on the command line.
pub fn request_options(global: &Global) -> Option<RequestOptions> {
    let r = &global.request;
    let annotations = match (r.formatted, &r.annotations) {
        (true, _) => Some("*".to_string()),
        (false, name) => name.clone(),
    };
    Some(RequestOptions {
        caller_object_id: r.impersonate.clone(),
        bypass_custom_plugins: r.bypass_plugins,
        suppress_duplicate_detection: r.suppress_duplicate_detection,
        solution_unique_name: r.solution.clone(),
        strong_consistency: r.strong_consistency,
        include_annotations: annotations,
        return_representation: false,
        client_request_id: r.request_id.clone(),
    })
}

fn load_runtime(global: &Global) -> Result<Runtime, Failure> {
    let runtime = match &global.component {
        Some(path) => Runtime::load(path),
        None => Runtime::from_prehashed(
            dataverse_artifacts::CLIENT,
            dataverse_artifacts::CLIENT_SHA256,
            dataverse_host::Limits::default(),
        ),
    }
    .map_err(Failure::host)?;
    // -v: one line per HTTP exchange. An `Exchange` holds no header and no
    // body, so no token or secret can reach the terminal this way.
    if global.verbose {
        Ok(runtime.with_exchange_log(Arc::new(|exchange| eprintln!("http: {exchange}"))))
    } else {
        Ok(runtime)
    }
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
    Network::new(connect_to, cacert.as_deref())
        .map(|network| network.with_proxy(proxy))
        .map_err(|e| Failure::usage(format!("{e:#}")))
}

/// The connection string from wherever the user keeps it (see `connection`).
pub fn connection_string(global: &Global) -> Result<String, Failure> {
    Ok(resolved_connection(global)?.connection)
}

/// The connection string and where it was found; warnings are printed.
pub fn resolved_connection(global: &Global) -> Result<connection::Resolved, Failure> {
    let resolved = connection::resolve(
        &connection::Process,
        global.connection.as_deref(),
        global.profile.as_deref(),
    )
    .map_err(Failure::usage)?;
    for warning in &resolved.warnings {
        warn(global, warning);
    }
    Ok(resolved)
}

/// Connects to the org named by the connection string, over the network.
/// The tenant found by discovery is cached on disk for a day (see
/// `dataverse_host::authority_cache`), so a later run goes straight to the
/// token request; a refusal that says the tenant is wrong drops the entry
/// and discovers again.
pub async fn connect(global: &Global) -> Result<Session, Failure> {
    let connection = connection_string(global)?;
    let network = Arc::new(network(global)?);
    let runtime = load_runtime(global)?;
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
    // Only a string that leaves the tenant to discovery uses the cache.
    let org = dataverse_wasm::settings::parse(&connection)
        .ok()
        .filter(|s| s.authority.is_none() && s.tenant_id.is_none())
        .map(|s| s.org_url);
    let (Some(org), true) = (org, global.authority_cache()) else {
        return Ok(connect(&connection).await?);
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
            Err(e) => return Err(e.into()),
        }
    }
    let mut session = connect(&connection).await?;
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
        timeout_ms: global.timeout_ms,
        max_retries: global.max_retries,
        max_total_wait_ms: None,
        assertion_algorithm: global.ps256.then_some(AssertionAlgorithm::Ps256),
        send_certificate_chain: Some(global.send_chain),
    }
}

/// Runs the demo against the in-process fake.
pub async fn demo_session(
    global: &Global,
    fake: Arc<dataverse_fake::Fake>,
) -> Result<Session, Failure> {
    let runtime = load_runtime(global)?;
    let connection = dataverse_fake::demo_connection_string();
    Ok(runtime
        .connect(fake, &connection, client_options(global))
        .await?)
}
