//! Where the guest's outgoing HTTP goes: the in-process fake, or the network
//! (TLS, with curl-style `--connect-to` and extra trusted roots).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use crate::fake::Fake;
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

type HttpResult<T> = Result<T, wasmtime_wasi_http::Error>;
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
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let request = http::Request::from_parts(parts, body);
            let response = match upstream {
                Upstream::Fake(fake) => fake.handle(request),
                Upstream::Network(network) => {
                    network.send(request, options.unwrap_or_default()).await?
                }
                Upstream::Unreachable => return Err(wasmtime_wasi_http::Error::HttpRequestDenied),
            };
            let response = response.map(full);
            let done: IoFuture = Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

/// Turns a body into the type wasi:http expects.
pub(crate) fn full(body: Bytes) -> WasiBody {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}
