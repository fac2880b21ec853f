//! The floor the benchmark measures the component against: the same core
//! crate (`dataverse-wasm`), compiled natively, with a native `Transport`
//! that reaches the same fake (in-process, or over the same keep-alive TLS
//! pool). Whatever the component costs beyond this is the price of wasm.

use std::sync::Arc;

use bytes::Bytes;
use dataverse_fake::Fake;
use dataverse_host::Network;
use dataverse_wasm::Error;
use dataverse_wasm::http::{Request, Response};
use dataverse_wasm::transport::Transport;
use http_body_util::BodyExt;

/// Where native requests go.
#[derive(Clone)]
pub enum NativeUpstream {
    Fake(Arc<Fake>),
    /// Blocking calls on `handle` (use from a `spawn_blocking` thread).
    Network(Arc<Network>, tokio::runtime::Handle),
}

pub struct NativeTransport {
    upstream: NativeUpstream,
    random_state: u64,
}

impl NativeTransport {
    pub fn new(upstream: NativeUpstream) -> NativeTransport {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        NativeTransport {
            upstream,
            random_state: seed,
        }
    }
}

impl Transport for NativeTransport {
    fn send(&mut self, request: &Request) -> Result<Response, Error> {
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(Bytes::from(request.body.clone()))
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let response = match &self.upstream {
            NativeUpstream::Fake(fake) => fake.handle(request),
            NativeUpstream::Network(network, handle) => handle
                .block_on(async {
                    let (parts, body) = network
                        .send(request, Default::default())
                        .await?
                        .into_parts();
                    let body = body.collect().await?.to_bytes();
                    Ok::<_, dataverse_host::upstream::HttpError>(http::Response::from_parts(
                        parts, body,
                    ))
                })
                .map_err(|e| Error::Transport(e.to_string()))?,
        };
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(Response {
            status: response.status().as_u16(),
            headers,
            body: response.into_body().to_vec(),
        })
    }

    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn sleep(&mut self, millis: u64) {
        std::thread::sleep(std::time::Duration::from_millis(millis));
    }

    /// xorshift64: request ids and jitter only need to differ, not to be secret.
    fn random(&mut self) -> u64 {
        let mut x = self.random_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random_state = x;
        x
    }
}
