//! `host-test`: the command-line host for the dataverse-wasm component.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use host_test::fake::{self, Fake};
use host_test::session::{DataverseError, describe};
use host_test::{CallError, ClientOptions, ConnectTo, Network, Query, Runtime, Session, Upstream};

const USAGE: &str = "\
usage: host-test [OPTIONS] <COMMAND>

commands:
  demo                      run WhoAmI and a query against the built-in fake (no setup, no network)
  whoami                    print the application user's ids
  query ENTITYSET [--select a,b] [--filter EXPR] [--orderby EXPR] [--top N]
                  [--page-size N] [--count] [--all]
                            print rows, one JSON object per line (--all follows every page)
  token                     print the token's metadata (never the token)
  fake-server [--seconds N] serve the fake Entra ID + Dataverse on loopback TLS, for trying the CLI

options:
  --connection STR          connection string (default: $DATAVERSE_CONNECTION)
  --connect-to H1:P1:H2:P2  connect to H2:P2 for requests to H1:P1 (repeatable; like curl)
  --cacert FILE             trust these PEM certificates in addition to the public roots
  --component PATH          the component to run (default: the one built with this host)
  --json                    machine-readable output
  -v, --verbose             error details
  -h, --help                this text

exit codes: 0 ok, 1 host failure, 2 bad settings or usage, 3 authentication, 4 Dataverse error, 5 transport";

/// The component's defaults: 64 MiB responses, the host's timeouts.
const DEFAULT_OPTIONS: ClientOptions = ClientOptions {
    max_response_bytes: None,
    timeout_ms: None,
};

/// Exit codes, as documented in USAGE.
const EXIT_HOST: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_AUTH: u8 = 3;
const EXIT_DATAVERSE: u8 = 4;
const EXIT_TRANSPORT: u8 = 5;

struct Cli {
    connection: Option<String>,
    connect_to: Vec<ConnectTo>,
    cacert: Option<PathBuf>,
    component: Option<PathBuf>,
    json: bool,
    verbose: bool,
    command: Vec<String>,
}

/// A failure with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
    detail: Option<String>,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
            detail: None,
        }
    }

    fn host(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: EXIT_HOST,
            message: format!("{error:#}"),
            detail: None,
        }
    }
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Failure {
        match &error {
            CallError::Dataverse(e) => Failure {
                code: exit_code(e),
                message: describe(e),
                detail: Some(format!("{e:?}")),
            },
            CallError::Host(e) => Failure {
                code: EXIT_HOST,
                message: format!("host error: {e}"),
                detail: Some(format!("{e:?}")),
            },
        }
    }
}

fn exit_code(error: &DataverseError) -> u8 {
    match error {
        DataverseError::InvalidSettings(_) | DataverseError::InvalidRequest(_) => EXIT_USAGE,
        DataverseError::Authentication(_) | DataverseError::Authority(_) => EXIT_AUTH,
        DataverseError::AccessDenied(_)
        | DataverseError::NotFound(_)
        | DataverseError::PreconditionFailed(_)
        | DataverseError::Throttled(_)
        | DataverseError::Service(_)
        | DataverseError::InvalidResponse(_) => EXIT_DATAVERSE,
        DataverseError::Transport(_) => EXIT_TRANSPORT,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cli = match parse_cli(args) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(failure) => return report(failure, false),
    };
    let verbose = cli.verbose;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return report(Failure::host(e), verbose),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure, verbose),
    }
}

fn report(failure: Failure, verbose: bool) -> ExitCode {
    eprintln!("error: {}", failure.message);
    if verbose && let Some(detail) = &failure.detail {
        eprintln!("details: {detail}");
    }
    if failure.code == EXIT_USAGE && failure.detail.is_none() {
        eprintln!("(host-test --help for usage)");
    }
    ExitCode::from(failure.code)
}

fn parse_cli(args: Vec<String>) -> Result<Option<Cli>, Failure> {
    let mut cli = Cli {
        connection: None,
        connect_to: Vec::new(),
        cacert: None,
        component: None,
        json: false,
        verbose: false,
        command: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| Failure::usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--connection" => cli.connection = Some(value("--connection")?),
            "--connect-to" => cli.connect_to.push(
                value("--connect-to")?
                    .parse()
                    .map_err(|e| Failure::usage(format!("{e:#}")))?,
            ),
            "--cacert" => cli.cacert = Some(value("--cacert")?.into()),
            "--component" => cli.component = Some(value("--component")?.into()),
            "--json" => cli.json = true,
            "-v" | "--verbose" => cli.verbose = true,
            _ => cli.command.push(arg),
        }
    }
    if cli.command.is_empty() {
        return Err(Failure::usage("no command given"));
    }
    Ok(Some(cli))
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let command = cli.command[0].clone();
    let rest = &cli.command[1..];
    match command.as_str() {
        "demo" => demo(&cli).await,
        "whoami" => {
            no_extra_args(rest)?;
            let mut session = connect(&cli).await?;
            let who = session.who_am_i().await?;
            if cli.json {
                print_json(&serde_json::json!({
                    "UserId": who.user_id, "BusinessUnitId": who.business_unit_id, "OrganizationId": who.organization_id,
                }));
            } else {
                println!("UserId:         {}", who.user_id);
                println!("BusinessUnitId: {}", who.business_unit_id);
                println!("OrganizationId: {}", who.organization_id);
            }
            Ok(())
        }
        "query" => query(&cli, rest).await,
        "token" => {
            no_extra_args(rest)?;
            let mut session = connect(&cli).await?;
            let info = session.token_info().await?;
            let json = serde_json::json!({
                "expires_at": info.expires_at, "authority": info.authority, "tenant_id": info.tenant_id,
                "client_id": info.client_id, "scope": info.scope, "from_cache": info.from_cache,
            });
            if cli.json {
                print_json(&json);
            } else {
                for (key, value) in json.as_object().into_iter().flatten() {
                    match value.as_str() {
                        Some(text) => println!("{key:<11} {text}"),
                        None => println!("{key:<11} {value}"),
                    }
                }
            }
            Ok(())
        }
        "fake-server" => fake_server(rest).await,
        other => Err(Failure::usage(format!("unknown command '{other}'"))),
    }
}

fn no_extra_args(rest: &[String]) -> Result<(), Failure> {
    match rest.first() {
        Some(arg) => Err(Failure::usage(format!("unexpected argument '{arg}'"))),
        None => Ok(()),
    }
}

fn load_runtime(cli: &Cli) -> Result<Runtime, Failure> {
    match &cli.component {
        Some(path) => Runtime::load(path),
        None => Runtime::load_default(),
    }
    .map_err(Failure::host)
}

async fn connect(cli: &Cli) -> Result<Session, Failure> {
    let connection = match &cli.connection {
        Some(c) => c.clone(),
        None => std::env::var("DATAVERSE_CONNECTION").map_err(|_| {
            Failure::usage("no connection string: set DATAVERSE_CONNECTION or pass --connection (or try: host-test demo)")
        })?,
    };
    let cacert = match &cli.cacert {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--cacert {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let network = Network::new(cli.connect_to.clone(), cacert.as_deref())
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let runtime = load_runtime(cli)?;
    Ok(runtime
        .connect(
            Upstream::Network(Arc::new(network)),
            &connection,
            DEFAULT_OPTIONS,
        )
        .await?)
}

async fn demo(cli: &Cli) -> Result<(), Failure> {
    let runtime = load_runtime(cli)?;
    let fake = Fake::demo();
    let mut session = runtime
        .connect(
            Upstream::Fake(fake.clone()),
            &fake::demo_connection_string(),
            DEFAULT_OPTIONS,
        )
        .await?;
    let who = session.who_am_i().await?;
    let query = Query {
        entity_set: "accounts".into(),
        select: vec!["name".into()],
        filter: None,
        orderby: None,
        top: Some(3),
        page_size: None,
        count: false,
    };
    let page = session.retrieve_multiple(&query).await?;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&page.rows).map_err(Failure::host)?;
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    if cli.json {
        print_json(&serde_json::json!({
            "UserId": who.user_id, "BusinessUnitId": who.business_unit_id,
            "OrganizationId": who.organization_id, "accounts": names,
        }));
        return Ok(());
    }
    println!(
        "dataverse-wasm demo: the component in wasmtime, against the built-in fake Entra ID + Dataverse"
    );
    println!("WhoAmI");
    println!("  UserId:         {}", who.user_id);
    println!("  BusinessUnitId: {}", who.business_unit_id);
    println!("  OrganizationId: {}", who.organization_id);
    println!("First {} accounts", names.len());
    for name in names {
        println!("  {name}");
    }
    let stats = fake.stats();
    println!(
        "({} discovery request, {} token request, {} Web API requests)",
        stats.discovery_requests, stats.token_requests, stats.api_requests
    );
    Ok(())
}

async fn query(cli: &Cli, args: &[String]) -> Result<(), Failure> {
    let mut query = Query {
        entity_set: String::new(),
        select: Vec::new(),
        filter: None,
        orderby: None,
        top: None,
        page_size: None,
        count: false,
    };
    let mut all = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| Failure::usage(format!("{name} needs a value")))
        };
        let number = |name: &str, v: String| {
            v.parse::<u32>()
                .map_err(|_| Failure::usage(format!("{name} expects a number, got '{v}'")))
        };
        match arg.as_str() {
            "--select" => {
                query.select = value("--select")?
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .collect()
            }
            "--filter" => query.filter = Some(value("--filter")?),
            "--orderby" => query.orderby = Some(value("--orderby")?),
            "--top" => query.top = Some(number("--top", value("--top")?)?),
            "--page-size" => query.page_size = Some(number("--page-size", value("--page-size")?)?),
            "--count" => query.count = true,
            "--all" => all = true,
            flag if flag.starts_with("--") => {
                return Err(Failure::usage(format!("unknown query option '{flag}'")));
            }
            set if query.entity_set.is_empty() => query.entity_set = set.to_string(),
            extra => return Err(Failure::usage(format!("unexpected argument '{extra}'"))),
        }
    }
    if query.entity_set.is_empty() {
        return Err(Failure::usage(
            "query needs an ENTITYSET, e.g. host-test query accounts --select name",
        ));
    }
    let mut session = connect(cli).await?;
    let mut page = session.retrieve_multiple(&query).await?;
    let mut out = std::io::stdout().lock();
    let mut total_rows = 0u64;
    if cli.json {
        let _ = write!(out, "{{\"value\":[");
    }
    loop {
        let rows: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(&page.rows).map_err(Failure::host)?;
        for row in rows {
            let separator = if cli.json && total_rows > 0 { "," } else { "" };
            let newline = if cli.json { "" } else { "\n" };
            let _ = write!(out, "{separator}{}{newline}", row.get());
            total_rows += 1;
        }
        match page.next_link.take() {
            Some(link) if all => page = session.next_page(&link, query.page_size).await?,
            rest => {
                if cli.json {
                    let _ = write!(out, "]");
                    if let Some(count) = page.total_count {
                        let _ = write!(out, ",\"@odata.count\":{count}");
                    }
                    if let Some(link) = rest {
                        let _ = write!(
                            out,
                            ",\"@odata.nextLink\":{}",
                            serde_json::Value::String(link)
                        );
                    }
                    let _ = writeln!(out, "}}");
                } else {
                    if let Some(count) = page.total_count {
                        eprintln!("total count: {count}");
                    }
                    if rest.is_some() {
                        eprintln!("(more rows: pass --all to follow every page)");
                    }
                }
                break;
            }
        }
    }
    let _ = out.flush();
    if !cli.json {
        eprintln!("{total_rows} rows");
    }
    Ok(())
}

/// Serves the fake on loopback TLS, writing its CA next to the build output,
/// and prints the flags that point the CLI at it.
async fn fake_server(args: &[String]) -> Result<(), Failure> {
    let seconds = match args {
        [] => 600,
        [flag, n] if flag == "--seconds" => n
            .parse()
            .map_err(|_| Failure::usage("--seconds expects a number"))?,
        _ => return Err(Failure::usage("fake-server takes only --seconds N")),
    };
    let server = fake::serve_tls(Fake::demo()).await.map_err(Failure::host)?;
    let ca_path =
        std::env::temp_dir().join(format!("dataverse-fake-ca-{}.pem", server.addr.port()));
    std::fs::write(&ca_path, &server.ca_pem).map_err(Failure::host)?;
    let port = server.addr.port();
    println!("fake Entra ID + Dataverse on https://127.0.0.1:{port} for {seconds} s");
    println!(
        "try: DATAVERSE_CONNECTION='{}' host-test --connect-to {}:443:127.0.0.1:{port} --connect-to {}:443:127.0.0.1:{port} --cacert {} whoami",
        fake::demo_connection_string(),
        fake::ORG_HOST,
        fake::LOGIN_HOST,
        ca_path.display()
    );
    let _ = std::io::stdout().flush();
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    drop(server);
    let _ = std::fs::remove_file(ca_path);
    Ok(())
}

fn print_json(value: &serde_json::Value) {
    println!("{value}");
}
