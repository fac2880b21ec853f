//! Where the guest's outgoing HTTP goes: the in-process fake, or the network
//! (TLS, with curl-style `--connect-to` and extra trusted roots).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::fake::{Delivery, Fake, GeneratedBody};
use crate::network::Network;

/// The destination of every outgoing request of an instance.
#[derive(Clone)]
pub enum Upstream {
    /// Answer in-process from a fake Entra ID + Dataverse (no sockets).
    Fake(Arc<Fake>),
    /// Real TCP + TLS.
    Network(Arc<Network>),
    /// Refuse every request (for calls that must not reach the network).
    Unreachable,
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

/// `WasiHttpHooks` that send through an `Upstream`.
pub struct OutgoingHooks {
    upstream: Upstream,
    log: Option<ExchangeLog>,
    /// The call key and attempt number of the previous exchange: retries of
    /// one call repeat its `x-ms-client-request-id`.
    previous: Option<(String, u32)>,
}

impl OutgoingHooks {
    pub(crate) fn new(upstream: Upstream, log: Option<ExchangeLog>) -> OutgoingHooks {
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

type HttpError = wasmtime_wasi_http::Error;
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
        let exchange = log
            .as_ref()
            .map(|_| describe_request(&request, self.attempt(&request)));
        Box::new(async move {
            let started = Instant::now();
            let response = send(upstream, request, options.unwrap_or_default()).await;
            if let (Some(log), Some(mut exchange)) = (log, exchange) {
                exchange.elapsed = started.elapsed();
                exchange.outcome = match &response {
                    Ok(response) => Ok(response.status().as_u16()),
                    Err(error) => Err(error.to_string()),
                };
                log(&exchange);
            }
            let done: IoFuture = Box::new(async { Ok(()) });
            Ok((response?, done))
        })
    }
}

async fn send(
    upstream: Upstream,
    request: http::Request<WasiBody>,
    options: RequestOptions,
) -> HttpResult<http::Response<WasiBody>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let request = http::Request::from_parts(parts, body);
    match upstream {
        Upstream::Fake(fake) => deliver(fake.handle(request), options).await,
        Upstream::Network(network) => network.send(request, options).await,
        Upstream::Unreachable => Err(HttpError::HttpRequestDenied),
    }
}

/// Plays the fake's `Delivery` marker in-process the way its TLS server does
/// on a socket: a delay before the answer (bounded by the guest's first-byte
/// timeout), or a body cut short.
async fn deliver(
    response: http::Response<Bytes>,
    options: RequestOptions,
) -> HttpResult<http::Response<WasiBody>> {
    match response.extensions().get::<Delivery>().cloned() {
        Some(Delivery::Delay { millis }) => {
            let delay = tokio::time::sleep(std::time::Duration::from_millis(millis));
            match options.first_byte_timeout {
                Some(limit) => tokio::time::timeout(limit, delay)
                    .await
                    .map_err(|_| HttpError::ConnectionReadTimeout)?,
                None => delay.await,
            }
            Ok(response.map(full))
        }
        Some(Delivery::HangUp) => Err(HttpError::ConnectionTerminated),
        Some(Delivery::Generated { bytes }) => Ok(response.map(|head| {
            GeneratedBody::new(head, bytes)
                .map_err(|never| match never {})
                .boxed_unsync()
        })),
        Some(Delivery::DropAfter { bytes }) => Ok(response.map(|body| {
            let cut = body.slice(..bytes.min(body.len()));
            CutShort { prefix: Some(cut) }.boxed_unsync()
        })),
        None => Ok(response.map(full)),
    }
}

/// Turns a body into the type wasi:http expects.
pub(crate) fn full(body: Bytes) -> WasiBody {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body that yields its prefix and then fails, like a dropped connection.
struct CutShort {
    prefix: Option<Bytes>,
}

impl Body for CutShort {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match self.prefix.take() {
            Some(prefix) => Poll::Ready(Some(Ok(Frame::data(prefix)))),
            None => Poll::Ready(Some(Err(HttpError::ConnectionTerminated))),
        }
    }
}
