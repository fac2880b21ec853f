//! The `wasi:http/incoming-handler` adapter: turns the host's request into a
//! [`Request`], runs the instance's one [`Gateway`], and writes the [`Reply`].
//! Nothing here decides anything.

use std::sync::Mutex;

use dataverse_wasm::transport::{DEFAULT_MAX_RESPONSE_BYTES, WasiTransport};

use crate::config::{Config, TOKEN_BUCKET_VAR};
use crate::handler::{BodyError, Gateway, Request};
use crate::reply::Reply;
use crate::shared_store::{GatewayTransport, KeyValueBucket};

pub(crate) mod bindings {
    wit_bindgen::generate!({
        world: "gateway",
        path: "../wit",
        generate_all,
    });
}

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::cli::environment;
use bindings::wasi::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use bindings::wasi::io::streams::StreamError;

/// The instance's gateway. A host that keeps an instance for many requests
/// (host-test serve) reuses its client and token; `wasmtime serve` makes a
/// new instance per request, so there every request connects anew.
static GATEWAY: Mutex<Option<Gateway<GatewayTransport>>> = Mutex::new(None);

struct Component;

bindings::export!(Component with_types_in bindings);

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let head = Request {
            method: method(&request.method()),
            path_and_query: request.path_with_query().unwrap_or_else(|| "/".into()),
            headers: request.headers().entries(),
        };
        let reply = {
            // A request that trapped while holding the lock cannot have left
            // the gateway half-changed in a way that matters: take it anyway.
            let mut gateway = GATEWAY.lock().unwrap_or_else(|e| e.into_inner());
            let gateway = gateway.get_or_insert_with(|| Gateway::new(Config::from_env(var)));
            gateway.handle(&head, |limit| read_body(request, limit), transport)
        };
        send(reply, response_out);
    }
}

/// One environment variable, from `wasi:cli/environment`.
fn var(name: &str) -> Option<String> {
    environment::get_environment()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A new client's transport, with the bucket its token is shared through.
fn transport() -> GatewayTransport {
    let bucket = var(TOKEN_BUCKET_VAR).unwrap_or_default();
    GatewayTransport {
        wasi: WasiTransport {
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            timeout_ms: None,
        },
        bucket: KeyValueBucket::open(bucket.trim()),
    }
}

fn method(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.to_ascii_uppercase(),
    }
}

/// Reads the whole body, refusing it as soon as it passes `limit` (a declared
/// `content-length` over the limit is refused before reading anything).
fn read_body(request: IncomingRequest, limit: u64) -> Result<Vec<u8>, BodyError> {
    let declared = request
        .headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge);
    }
    let body = request
        .consume()
        .map_err(|()| BodyError::Broken("the body was already taken".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| BodyError::Broken("the body stream was already taken".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if (bytes.len() + chunk.len()) as u64 > limit {
                        return Err(BodyError::TooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(BodyError::Broken(e.to_debug_string()));
                }
            }
        }
    }
    let _ = IncomingBody::finish(body);
    Ok(bytes)
}

/// Writes `reply`; if the host refuses a header or the stream, there is
/// nobody left to tell, so the rest is dropped rather than trapping.
fn send(reply: Reply, response_out: ResponseOutparam) {
    let headers = Fields::new();
    for (name, value) in &reply.headers {
        let _ = headers.append(name, value.as_bytes());
    }
    let _ = headers.set(
        "content-length",
        &[reply.body.len().to_string().into_bytes()],
    );
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(reply.status);
    let Ok(body) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    {
        let Ok(stream) = body.write() else {
            return;
        };
        // blocking-write-and-flush takes at most 4096 bytes per call.
        for chunk in reply.body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
