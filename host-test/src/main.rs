//! `host-test`: the command-line host for the dataverse-wasm component.

mod args;
mod bench;
mod commands;
mod json_error;
mod native;
mod serve;

use std::process::ExitCode;
use std::sync::Arc;

use args::{Args, UsageError};
use dataverse_host::session::{
    AssertionAlgorithm, ClientOptions, DataverseError, ErrorKind, RequestOptions, describe,
};
use dataverse_host::{CallError, Network, Runtime, Session};

const USAGE: &str = "\
usage: host-test [OPTIONS] <COMMAND> [ARGS]

commands (KEY is a GUID or an alternate key such as accountnumber='A-1'):
  demo                                  WhoAmI and a query against the built-in fake (no setup, no network)
  whoami                                the application user's ids
  query ENTITYSET [--select a,b] [--filter EXPR] [--orderby EXPR] [--expand EXPR] [--apply EXPR]
                  [--top N] [--page-size N] [--count] [--all [--max-rows N]]
                                        rows, one JSON object per line (--all reads every page)
  get ENTITYSET KEY [--select a,b] [--expand EXPR]
  create ENTITYSET --data JSON [--return]             prints the new id
  update ENTITYSET KEY --data JSON [--if-match ETAG] [--return]   never creates
  upsert ENTITYSET KEY --data JSON [--create-only] [--return]
  delete ENTITYSET KEY [--if-match ETAG]
  associate ENTITYSET KEY NAVPROP TARGETSET TARGETKEY
  disassociate ENTITYSET KEY NAVPROP [TARGETSET TARGETKEY]
  fetchxml ENTITYSET FILE|- [--all [--max-rows N]]
  execute NAME [--bound ENTITYSET KEY] [--data JSON] [--action|--function]
                                        a function (default without --data) or an action
  batch FILE|- [--changeset] [--continue-on-error]
                                        FILE: JSON array of {\"method\",\"url\",\"headers\"?,\"body\"?}
  send METHOD PATH [--data JSON]        any Web API request (PATH relative to /api/data/v9.2/)
  token [--show-token]                  the token's metadata (the token itself only with --show-token)
  fake-server [--seconds N]             serve the fake Entra ID + Dataverse on loopback TLS
  bench [--iterations N]                the component vs the same core natively, in-process and over TLS
                                        (writes target/bench/bench.json; use --profile bench for real figures)
  bench-auth [--iterations N]           token acquisition cost: secret vs certificate (writes target/bench/auth.json)
  serve [--port N] [--gateway PATH]     the HTTP gateway on 127.0.0.1 (needs GATEWAY_API_KEY; instances are reused)

--data takes JSON, @FILE or - (standard input).

options:
  --connection STR          connection string (default: $DATAVERSE_CONNECTION)
  --connect-to H1:P1:H2:P2  connect to H2:P2 for requests to H1:P1 (repeatable; like curl)
  --cacert FILE             trust these PEM certificates in addition to the public roots
  --cert-store DIR          certificate store for AuthType=Certificate (PEM / PFX files), mapped read-only
  --ps256                   sign certificate assertions with PS256 + x5t#S256 (default RS256 + x5t)
  --send-chain              send the certificate chain (x5c) for subject-name/issuer registrations
  --component PATH          the component to run (default: the one built with this host)
  --json                    machine-readable output; an error is one JSON object on stderr
  -v, --verbose             each HTTP exchange (method, host, path, status, ms, attempt; no headers or
                            bodies, so no token or secret), error details, each call's request id
  --impersonate OBJECTID    act for this user (CallerObjectId)
  --bypass-plugins          MSCRM.BypassCustomPluginExecution: true
  --suppress-duplicate-detection true|false
  --solution NAME           MSCRM.SolutionUniqueName
  --strong-consistency      Consistency: Strong
  --formatted               formatted values (odata.include-annotations=\"*\")
  --annotations NAME        odata.include-annotations=\"NAME\"
  --request-id ID           x-ms-client-request-id of the call
  --max-retries N           retries after the first attempt (default 4; 0 never retries)
  --timeout-ms N            connect / first-byte / between-bytes timeout

exit codes: 0 ok, 1 host failure, 2 bad settings or usage, 3 authentication, 4 Dataverse error, 5 transport";

/// Exit codes, as documented in USAGE.
pub const EXIT_HOST: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_AUTH: u8 = 3;
pub const EXIT_DATAVERSE: u8 = 4;
pub const EXIT_TRANSPORT: u8 = 5;

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
            code: EXIT_USAGE,
            message: message.into(),
            detail: None,
            error: None,
        }
    }

    pub fn host(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: EXIT_HOST,
            message: format!("{error:#}"),
            detail: None,
            error: None,
        }
    }
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Failure {
        Failure::usage(e.0)
    }
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Failure {
        match &error {
            CallError::Dataverse(e) => {
                let mut detail = format!("{:?}", e.kind);
                if let Some(call) = &e.call {
                    detail.push_str(&format!(
                        "\nclient request id: {}, attempts: {}",
                        call.client_request_id, call.attempts
                    ));
                }
                Failure {
                    code: exit_code(&e.kind),
                    message: describe(e),
                    detail: Some(detail),
                    error: Some(Box::new(e.clone())),
                }
            }
            CallError::Trapped(trap) => Failure {
                code: EXIT_HOST,
                message: trap.to_string(),
                detail: None,
                error: None,
            },
            CallError::Host(e) => Failure {
                code: EXIT_HOST,
                message: format!("host error: {e}"),
                detail: Some(format!("{e:?}")),
                error: None,
            },
        }
    }
}

fn exit_code(kind: &ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidSettings(_) | ErrorKind::InvalidRequest(_) => EXIT_USAGE,
        ErrorKind::Authentication(_) | ErrorKind::Authority(_) => EXIT_AUTH,
        ErrorKind::AccessDenied(_)
        | ErrorKind::NotFound(_)
        | ErrorKind::PreconditionFailed(_)
        | ErrorKind::Throttled(_)
        | ErrorKind::Service(_)
        | ErrorKind::InvalidResponse(_) => EXIT_DATAVERSE,
        ErrorKind::Transport(_) => EXIT_TRANSPORT,
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            // The arguments did not parse, so look for --json by hand.
            let json = std::env::args().skip(1).any(|a| a == "--json");
            return report(e.into(), false, json);
        }
    };
    if args.switch("-h") || args.switch("--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let verbose = args.switch("-v") || args.switch("--verbose");
    let json = args.switch("--json");
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return report(Failure::host(e), verbose, json),
    };
    match runtime.block_on(commands::run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure, verbose, json),
    }
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
    if failure.code == EXIT_USAGE && failure.detail.is_none() {
        eprintln!("(host-test --help for usage)");
    }
    ExitCode::from(failure.code)
}

/// The per-call options given on the command line.
pub fn request_options(args: &Args) -> Result<Option<RequestOptions>, Failure> {
    let annotations = match (args.switch("--formatted"), args.value("--annotations")) {
        (true, _) => Some("*".to_string()),
        (false, name) => name.map(str::to_string),
    };
    let options = RequestOptions {
        caller_object_id: args.value("--impersonate").map(str::to_string),
        bypass_custom_plugins: args.switch("--bypass-plugins"),
        suppress_duplicate_detection: args.boolean("--suppress-duplicate-detection")?,
        solution_unique_name: args.value("--solution").map(str::to_string),
        strong_consistency: args.switch("--strong-consistency"),
        include_annotations: annotations,
        return_representation: args.switch("--return"),
        client_request_id: args.value("--request-id").map(str::to_string),
    };
    Ok(Some(options))
}

fn load_runtime(args: &Args) -> Result<Runtime, Failure> {
    let runtime = match args.value("--component") {
        Some(path) => Runtime::load(std::path::Path::new(path)),
        None => Runtime::from_wasm(dataverse_artifacts::CLIENT),
    }
    .map_err(Failure::host)?;
    // -v: one line per HTTP exchange. An `Exchange` holds no header and no
    // body, so no token or secret can reach the terminal this way.
    if args.switch("-v") || args.switch("--verbose") {
        Ok(runtime.with_exchange_log(Arc::new(|exchange| eprintln!("http: {exchange}"))))
    } else {
        Ok(runtime)
    }
}

/// The network upstream as `--connect-to` and `--cacert` describe it,
/// through the proxies the environment names (`HTTPS_PROXY`, `NO_PROXY`, …).
pub fn network(args: &Args) -> Result<Network, Failure> {
    let cacert = match args.value("--cacert") {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--cacert {path}: {e}")))?,
        ),
        None => None,
    };
    let connect_to = args
        .all("--connect-to")
        .into_iter()
        .map(|rule| rule.parse().map_err(|e| Failure::usage(format!("{e:#}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let proxy = dataverse_host::ProxyConfig::from_env(|name| std::env::var(name).ok())
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    Network::new(connect_to, cacert.as_deref())
        .map(|network| network.with_proxy(proxy))
        .map_err(|e| Failure::usage(format!("{e:#}")))
}

/// Connects to the org named by the connection string, over the network.
pub async fn connect(args: &Args) -> Result<Session, Failure> {
    let connection = match args.value("--connection") {
        Some(c) => c.to_string(),
        None => std::env::var("DATAVERSE_CONNECTION").map_err(|_| {
            Failure::usage(
                "no connection string: set DATAVERSE_CONNECTION or pass --connection (or try: host-test demo)",
            )
        })?,
    };
    let network = network(args)?;
    let runtime = load_runtime(args)?;
    let options = client_options(args)?;
    let store = args.value("--cert-store").map(std::path::Path::new);
    if let Some(dir) = store
        && !dir.is_dir()
    {
        return Err(Failure::usage(format!(
            "--cert-store {}: not a directory",
            dir.display()
        )));
    }
    Ok(runtime
        .connect_with(Arc::new(network), store, &connection, options)
        .await?)
}

pub fn client_options(args: &Args) -> Result<ClientOptions, Failure> {
    Ok(ClientOptions {
        max_response_bytes: None,
        timeout_ms: args.number("--timeout-ms")?,
        max_retries: args.number("--max-retries")?,
        max_total_wait_ms: None,
        assertion_algorithm: args.switch("--ps256").then_some(AssertionAlgorithm::Ps256),
        send_certificate_chain: Some(args.switch("--send-chain")),
    })
}

/// Runs the demo against the in-process fake.
pub async fn demo_session(
    args: &Args,
    fake: Arc<dataverse_fake::Fake>,
) -> Result<Session, Failure> {
    let runtime = load_runtime(args)?;
    let connection = dataverse_fake::demo_connection_string();
    Ok(runtime
        .connect(fake, &connection, client_options(args)?)
        .await?)
}
