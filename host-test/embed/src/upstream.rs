//! Where the guest's outgoing HTTP goes: the [`Upstream`] trait (the
//! network, or anything an embedder plugs in, such as an in-process fake),
//! the exchange log, and the `wasi:http` hooks that join the two. Each
//! exchange is reported twice from the same [`Exchange`]: to the runtime's
//! exchange log (the CLI's `-v`), and to `tracing` (see `trace`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::WasiHttpHooks;

pub use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// What an [`Upstream`] answers: the response head at once, the body as it streams.
pub type UpstreamFuture =
    Pin<Box<dyn Future<Output = HttpResult<http::Response<WasiBody>>> + Send>>;

/// The destination of every outgoing request of an instance: the real
/// network ([`crate::Network`]), [`Unreachable`], or a host's own (the fake
/// Entra ID + Dataverse of the tests answers in process).
pub trait Upstream: Send + Sync + 'static {
    /// Sends one request (its body already read) and returns the response
    /// once its head is there. `options` holds the guest's timeouts.
    fn send(
        self: Arc<Self>,
        request: http::Request<Bytes>,
        options: RequestOptions,
    ) -> UpstreamFuture;
}

/// Refuses every request: for calls that must not reach any network.
pub struct Unreachable;

impl Upstream for Unreachable {
    fn send(self: Arc<Self>, _: http::Request<Bytes>, _: RequestOptions) -> UpstreamFuture {
        Box::pin(async { Err(HttpError::HttpRequestDenied) })
    }
}

/// One HTTP exchange of a guest, as `-v` shows it. It holds no header and
/// no body, so nothing in it is a secret (tokens and client secrets travel
/// only in headers and bodies).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub host: String,
    /// Path and query; a long query is cut short.
    pub path: String,
    /// The status, or why no response came.
    pub outcome: Result<u16, String>,
    pub elapsed: Duration,
    /// 1 for the first try of a call, 2 for its first retry, …
    pub attempt: u32,
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = self.elapsed.as_secs_f64() * 1000.0;
        write!(f, "{} {}{} → ", self.method, self.host, self.path)?;
        match &self.outcome {
            Ok(status) => write!(f, "{status}")?,
            Err(error) => write!(f, "failed ({error})")?,
        }
        write!(f, " in {millis:.1} ms, attempt {}", self.attempt)
    }
}

/// Where exchanges are reported.
pub type ExchangeLog = Arc<dyn Fn(&Exchange) + Send + Sync>;

/// Longest path + query an [`Exchange`] keeps.
const MAX_LOGGED_PATH: usize = 160;

/// `WasiHttpHooks` that send through an [`Upstream`].
pub(crate) struct OutgoingHooks {
    upstream: Arc<dyn Upstream>,
    log: Option<ExchangeLog>,
    /// The call key and attempt number of the previous exchange: retries of
    /// one call repeat its `x-ms-client-request-id`.
    previous: Option<(String, u32)>,
}

impl OutgoingHooks {
    pub(crate) fn new(upstream: Arc<dyn Upstream>, log: Option<ExchangeLog>) -> OutgoingHooks {
        OutgoingHooks {
            upstream,
            log,
            previous: None,
        }
    }

    /// Numbers the attempts of a call: same request id (or, for Entra ID
    /// requests, which carry none, same method and URL) as the previous
    /// exchange means one more attempt of the same call.
    fn attempt(&mut self, request: &http::Request<WasiBody>) -> u32 {
        let key = match request.headers().get("x-ms-client-request-id") {
            Some(id) => String::from_utf8_lossy(id.as_bytes()).into_owned(),
            None => format!("{} {}", request.method(), request.uri()),
        };
        let attempt = match &self.previous {
            Some((previous, n)) if *previous == key => n + 1,
            _ => 1,
        };
        self.previous = Some((key, attempt));
        attempt
    }
}

/// The loggable part of a request, taken before it is sent.
fn describe_request(request: &http::Request<WasiBody>, attempt: u32) -> Exchange {
    let uri = request.uri();
    let mut path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    if path.len() > MAX_LOGGED_PATH {
        let mut cut = MAX_LOGGED_PATH;
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        path.truncate(cut);
        path.push('…');
    }
    Exchange {
        method: request.method().to_string(),
        host: uri.authority().map_or("", |a| a.as_str()).to_string(),
        path,
        outcome: Ok(0),
        elapsed: Duration::ZERO,
        attempt,
    }
}

type HttpResult<T> = Result<T, HttpError>;
type IoFuture = Box<dyn Future<Output = HttpResult<()>> + Send>;

impl WasiHttpHooks for OutgoingHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: IoFuture,
    ) -> Box<dyn Future<Output = HttpResult<(http::Response<WasiBody>, IoFuture)>> + Send> {
        let upstream = self.upstream.clone();
        let log = self.log.clone();
        let mut exchange = describe_request(&request, self.attempt(&request));
        let uri = request.uri().clone();
        // wasmtime-wasi-http runs the returned future on a task of its own:
        // the call's span is current only now, while the guest sends.
        let span = tracing::Span::current();
        Box::new(async move {
            let started = Instant::now();
            let response = send(upstream, request, options.unwrap_or_default()).await;
            exchange.elapsed = started.elapsed();
            exchange.outcome = match &response {
                Ok(response) => Ok(response.status().as_u16()),
                Err(error) => Err(error.to_string()),
            };
            crate::trace::exchange(&span, &exchange, &uri);
            if let Some(log) = log {
                log(&exchange);
            }
            let done: IoFuture = Box::new(async { Ok(()) });
            Ok((response?, done))
        })
    }
}

async fn send(
    upstream: Arc<dyn Upstream>,
    request: http::Request<WasiBody>,
    options: RequestOptions,
) -> HttpResult<http::Response<WasiBody>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    upstream
        .send(http::Request::from_parts(parts, body), options)
        .await
}

/// Turns a whole body into the type wasi:http expects.
pub fn full(body: Bytes) -> WasiBody {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}
