//! `dataverse-floor`: the native floor of the cold-process benchmark
//! (`host-test bench`, `src/bench/cold.rs`). The same core crate as the
//! component (`dataverse_wasm::Client`), compiled natively, over a blocking
//! keep-alive `ureq` transport: no wasmtime, no async runtime. What the CLI
//! costs beyond this binary is the price of the component and its host.
//!
//! ```text
//! DATAVERSE_CONNECTION='…' dataverse-floor [--connect-to HOST:PORT:ADDR:PORT]… [--cacert FILE] [COMMAND]
//!   whoami                           (the default) prints the UserId
//!   query SET COLUMN PAGE_SIZE       every page; prints "ROWS rows in PAGES pages"
//!   time WHOAMIS QUERIES SET COLUMN PAGE_SIZE
//!                                    after connecting, one line per call:
//!                                    "whoami_us µs", then "query_ms ms PAGES"
//! ```
//!
//! `--connect-to` and `--cacert` mean what they mean to the CLI (and curl):
//! the URL and the TLS name stay the real host's, the socket goes to ADDR;
//! `--cacert` replaces the Mozilla roots.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dataverse_wasm::client::{CallOptions, ClientConfig};
use dataverse_wasm::http::{Request, Response};
use dataverse_wasm::webapi::query::Query;
use dataverse_wasm::{Client, Error, Transport};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

const USAGE: &str = "usage: dataverse-floor [--connect-to HOST:PORT:ADDR:PORT]... [--cacert FILE] \
                     [whoami | query SET COLUMN PAGE_SIZE | time WHOAMIS QUERIES SET COLUMN PAGE_SIZE] \
                     (the connection string in DATAVERSE_CONNECTION)";

/// The component's default cap on a response body.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

fn main() -> ExitCode {
    match run(std::env::args().skip(1)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

enum Command {
    WhoAmI,
    Query(Query),
    Time {
        who_am_is: usize,
        queries: usize,
        query: Query,
    },
}

fn run(args: impl Iterator<Item = String>) -> Result<(), String> {
    let mut connect_to = Vec::new();
    let mut cacert = None;
    let mut words = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--connect-to" => connect_to.push(ConnectTo::parse(&args.next().ok_or(USAGE)?)?),
            "--cacert" => cacert = Some(args.next().ok_or(USAGE)?),
            _ => words.push(arg),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let command = match words.as_slice() {
        [] | ["whoami"] => Command::WhoAmI,
        ["query", set, column, page_size] => Command::Query(query(set, column, page_size)?),
        ["time", who_am_is, queries, set, column, page_size] => Command::Time {
            who_am_is: who_am_is.parse().map_err(|_| USAGE)?,
            queries: queries.parse().map_err(|_| USAGE)?,
            query: query(set, column, page_size)?,
        },
        _ => return Err(USAGE.into()),
    };

    let connection =
        std::env::var("DATAVERSE_CONNECTION").map_err(|_| "DATAVERSE_CONNECTION is not set")?;
    let settings = dataverse_wasm::settings::parse(&connection).map_err(|e| e.to_string())?;
    let transport = UreqTransport::new(connect_to, cacert.as_deref())?;
    let mut client = Client::connect(settings, transport, ClientConfig::default())
        .map_err(|f| f.error.to_string())?;
    match command {
        Command::WhoAmI => println!("{}", who_am_i(&mut client)?),
        Command::Query(query) => {
            let (rows, pages) = read_all(&mut client, &query)?;
            println!("{rows} rows in {pages} pages");
        }
        Command::Time {
            who_am_is,
            queries,
            query,
        } => {
            for _ in 0..who_am_is {
                let started = Instant::now();
                who_am_i(&mut client)?;
                println!("whoami_us {:.1}", started.elapsed().as_secs_f64() * 1e6);
            }
            for _ in 0..queries {
                let started = Instant::now();
                let (_, pages) = read_all(&mut client, &query)?;
                let ms = started.elapsed().as_secs_f64() * 1e3;
                println!("query_ms {ms:.3} {pages}");
            }
        }
    }
    Ok(())
}

fn query(set: &str, column: &str, page_size: &str) -> Result<Query, String> {
    Ok(Query {
        entity_set: set.to_string(),
        select: vec![column.to_string()],
        page_size: Some(page_size.parse().map_err(|_| USAGE)?),
        ..Query::default()
    })
}

fn who_am_i(client: &mut Client<UreqTransport>) -> Result<String, String> {
    let reply = client
        .who_am_i(&CallOptions::default())
        .map_err(|f| f.error.to_string())?;
    Ok(reply.value.user_id)
}

/// Every page of `query` (the first, then its next links): rows and pages.
fn read_all(client: &mut Client<UreqTransport>, query: &Query) -> Result<(u64, u32), String> {
    let options = CallOptions::default();
    let mut page = client
        .retrieve_multiple(query, &options)
        .map_err(|f| f.error.to_string())?
        .value;
    let (mut rows, mut pages) = (u64::from(page.row_count), 1);
    while let Some(link) = page.next_link.take() {
        page = client
            .next_page(&link, query.page_size, &options)
            .map_err(|f| f.error.to_string())?
            .value;
        rows += u64::from(page.row_count);
        pages += 1;
    }
    Ok((rows, pages))
}

/// The core's `Transport` on one `ureq` agent (its pool keeps one
/// connection per host alive, as the component's host does).
struct UreqTransport {
    agent: ureq::Agent,
    random: RandomState,
    counter: u64,
}

impl UreqTransport {
    fn new(connect_to: Vec<ConnectTo>, cacert: Option<&str>) -> Result<UreqTransport, String> {
        let roots = match cacert {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| format!("--cacert {path}: {e}"))?;
                let certs = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(cert)) => Some(Ok(cert)),
                        Ok(_) => None,
                        Err(e) => Some(Err(format!("--cacert {path}: {e}"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                RootCerts::new_with_certs(&certs)
            }
            None => RootCerts::WebPki,
        };
        let config = Config::builder()
            // Statuses and redirects are the core's to read.
            .http_status_as_error(false)
            .max_redirects(0)
            // Like the CLI in the bench: no proxy in the way.
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(UreqTransport {
            agent: ureq::Agent::with_parts(config, DefaultConnector::default(), Rules(connect_to)),
            random: RandomState::new(),
            counter: 0,
        })
    }
}

impl Transport for UreqTransport {
    fn send(&mut self, request: &Request) -> Result<Response, Error> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let invalid = |e: ureq::http::Error| Error::InvalidRequest(e.to_string());
        // No body at all (not an empty one) on a GET, as the component sends it.
        let sent = if request.body.is_empty() {
            self.agent.run(builder.body(()).map_err(invalid)?)
        } else {
            self.agent
                .run(builder.body(request.body.as_slice()).map_err(invalid)?)
        };
        let mut response = sent.map_err(transport_error)?;
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_string(), value)
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Response {
            status: response.status().as_u16(),
            headers,
            body,
        })
    }

    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn sleep(&mut self, millis: u64) {
        std::thread::sleep(Duration::from_millis(millis));
    }

    /// SipHash of a counter under the process's random keys: request ids
    /// and jitter only need to differ.
    fn random(&mut self) -> u64 {
        self.counter += 1;
        let mut hasher = self.random.build_hasher();
        hasher.write_u64(self.counter);
        hasher.finish()
    }
}

/// What could not have left is `Unsent` (the core may resend it whatever
/// the method); anything later may have reached the server.
fn transport_error(error: ureq::Error) -> Error {
    let message = error.to_string();
    match error {
        ureq::Error::HostNotFound | ureq::Error::Tls(_) | ureq::Error::Rustls(_) => Error::Unsent {
            message,
            permanent: true,
        },
        ureq::Error::ConnectionFailed => Error::Unsent {
            message,
            permanent: false,
        },
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Error::Unsent {
            message,
            permanent: false,
        },
        _ => Error::Transport(message),
    }
}

/// One `--connect-to HOST:PORT:ADDR:PORT` rule.
#[derive(Debug)]
struct ConnectTo {
    host: String,
    port: u16,
    to: SocketAddr,
}

impl ConnectTo {
    fn parse(rule: &str) -> Result<ConnectTo, String> {
        let bad = || format!("--connect-to {rule}: expected HOST:PORT:ADDR:PORT");
        let mut parts = rule.splitn(3, ':');
        let (Some(host), Some(port), Some(to)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        Ok(ConnectTo {
            host: host.to_ascii_lowercase(),
            port: port.parse().map_err(|_| bad())?,
            to: to.parse().map_err(|_| bad())?,
        })
    }
}

/// The resolver: a `--connect-to` rule's address for its host and port,
/// DNS for anything else. The URL (and so the TLS name) is left alone.
#[derive(Debug)]
struct Rules(Vec<ConnectTo>);

impl Resolver for Rules {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("http") {
                80
            } else {
                443
            });
        match self
            .0
            .iter()
            .find(|rule| rule.port == port && rule.host.eq_ignore_ascii_case(host))
        {
            Some(rule) => {
                let mut addresses = self.empty();
                addresses.push(rule.to);
                Ok(addresses)
            }
            None => DefaultResolver::default().resolve(uri, config, timeout),
        }
    }
}
