//! Where the guest's outgoing HTTP goes: the in-process fake, or the network
//! (TLS, with curl-style `--connect-to` and extra trusted roots).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::fake::{Delivery, Fake};
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

/// `WasiHttpHooks` that send through an `Upstream`.
pub struct OutgoingHooks {
    pub(crate) upstream: Upstream,
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
        Box::new(async move {
            let options = options.unwrap_or_default();
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let request = http::Request::from_parts(parts, body);
            let response = match upstream {
                Upstream::Fake(fake) => deliver(fake.handle(request), options).await?,
                Upstream::Network(network) => network.send(request, options).await?.map(full),
                Upstream::Unreachable => return Err(HttpError::HttpRequestDenied),
            };
            let done: IoFuture = Box::new(async { Ok(()) });
            Ok((response, done))
        })
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
