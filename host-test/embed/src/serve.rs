//! `host-test serve`: serves the gateway component (`wasi:http/incoming-handler`)
//! on a loopback port, like `wasmtime serve`, but keeps instances alive
//! between requests — a small pool of long-lived stores — so the guest's
//! connected client, and its token, serve many requests; and all instances
//! share one `wasi:keyvalue` store, so even a burst of concurrent first
//! requests (one new instance each) asks Entra ID once. A trapped instance
//! is dropped, never reused.
//!
//! Independent of `runtime`/`session` (which load the `client` world): its
//! own engine, linker and `ProxyPre`. Outgoing HTTP goes through an
//! [`Upstream`] (the in-process fake, or the network with `--connect-to` /
//! `--cacert`); plain `http://` to a loopback host (a guest that opted in
//! with `AllowHttpLoopback`) goes straight to that loopback port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::HostError;
use crate::identity::IdentityEnvironment;
use crate::instance_pool::InstancePool;
use crate::keyvalue::SharedBuckets;
use crate::state::HostState;
use crate::upstream::{OutgoingHooks, Upstream};

/// The gateway component built by this crate's build script.
/// Idle instances kept for reuse; more concurrent requests get fresh ones.
const IDLE_INSTANCES: usize = 4;

/// How long a request waits for a busy instance to come back before it
/// makes a new one. An instance returns a moment after its response has gone
/// out, so without this a client that sends its next request at once would
/// always meet a busy pool; a new instance costs a token request.
const WAIT_FOR_INSTANCE: Duration = Duration::from_millis(25);

/// Memory per instance and wall-clock time per request (the client
/// runtime's defaults: 256 MiB, 300 s).
const LIMITS: crate::Limits = crate::Limits::DEFAULT;

/// What the guest finds in its environment. `Debug` shows no values.
#[derive(Clone)]
pub struct GatewayEnv {
    /// `DATAVERSE_CONNECTION`.
    pub connection: String,
    /// `GATEWAY_API_KEY`.
    pub api_key: String,
    /// `GATEWAY_ALLOW`, if set.
    pub allow: Option<String>,
    /// The platform's identity variables and token directories, for
    /// `AuthType=ManagedIdentity` / `WorkloadIdentity` (empty otherwise).
    pub identity: IdentityEnvironment,
}

impl std::fmt::Debug for GatewayEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayEnv")
            .field("connection", &"***")
            .field("api_key", &"***")
            .field("allow", &self.allow)
            .field("identity", &self.identity)
            .finish()
    }
}

impl GatewayEnv {
    /// Reads `DATAVERSE_CONNECTION`, `GATEWAY_API_KEY`, `GATEWAY_ALLOW` and
    /// the identity variables ([`IdentityEnvironment::from_lookup`]) through
    /// `var`; fails naming each missing (or blank) required variable.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<GatewayEnv, HostError> {
        let present = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let connection = present("DATAVERSE_CONNECTION");
        let api_key = present("GATEWAY_API_KEY");
        match (connection, api_key) {
            (Some(connection), Some(api_key)) => Ok(GatewayEnv {
                connection,
                api_key,
                allow: present("GATEWAY_ALLOW"),
                identity: IdentityEnvironment::from_lookup(&var),
            }),
            (connection, api_key) => {
                let missing: Vec<&str> = [
                    ("GATEWAY_API_KEY", api_key.is_none()),
                    ("DATAVERSE_CONNECTION", connection.is_none()),
                ]
                .iter()
                .filter(|(_, missing)| *missing)
                .map(|(name, _)| *name)
                .collect();
                Err(HostError::Environment(format!(
                    "the gateway needs {} in the environment",
                    missing.join(" and ")
                )))
            }
        }
    }

    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("DATAVERSE_CONNECTION", self.connection.as_str()),
            ("GATEWAY_API_KEY", self.api_key.as_str()),
        ];
        if let Some(allow) = &self.allow {
            pairs.push(("GATEWAY_ALLOW", allow));
        }
        pairs
    }
}

/// A running gateway. Dropping it stops the server; instances die with it.
pub struct GatewayServer {
    /// `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for GatewayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GatewayServer {
    /// Instances created so far (one per request under `wasmtime serve`;
    /// here only as many as requests ever ran at the same time).
    pub fn instances_created(&self) -> usize {
        self.shared.pool.created() as usize
    }
}

/// Everything the connection tasks share.
struct Shared {
    pre: ProxyPre<HostState>,
    env: GatewayEnv,
    upstream: Arc<dyn Upstream>,
    pool: Arc<InstancePool<Warm>>,
    /// `wasi:keyvalue` for every instance: one token for the process.
    buckets: SharedBuckets,
}

/// A live instance and its store.
struct Warm {
    store: Store<HostState>,
    proxy: Proxy,
}

/// Compiles the gateway at `wasm` and serves it on `127.0.0.1:port` (0 picks
/// a free port). Must be called inside a Tokio runtime.
pub async fn serve(
    wasm: &[u8],
    env: GatewayEnv,
    upstream: Arc<dyn Upstream>,
    port: u16,
) -> Result<GatewayServer, HostError> {
    // The same engine as the client's runtime: pooling allocator, and epoch
    // interruption so a request that runs away traps instead of holding a
    // thread (its instance is then dropped, never reused).
    let engine = crate::engine::new_engine(&LIMITS)?;
    let (component, _) =
        crate::engine::load(&engine, &crate::engine::cache_dir(), wasm, None, &[])?;
    let pre = crate::engine::linker(&engine)?
        .instantiate_pre(&component)
        .and_then(ProxyPre::new)
        .map_err(HostError::wasmtime("not a wasi:http/proxy component"))?;
    let io = |source| HostError::Io {
        context: format!("binding 127.0.0.1:{port}"),
        source,
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let shared = Arc::new(Shared {
        pre,
        env,
        upstream,
        pool: InstancePool::new(IDLE_INSTANCES, WAIT_FOR_INSTANCE),
        buckets: SharedBuckets::default(),
    });
    let serving = shared.clone();
    let task = tokio::spawn(accept_loop(listener, None, move |stream| {
        serve_connection(stream, serving.clone())
    }));
    Ok(GatewayServer { addr, shared, task })
}

/// Accepts connections until the task running it is dropped; each is served
/// by `serve` in a task of its own that dies with this one. `close`, when
/// notified, drops the connections open at that moment (a test closing idle
/// keep-alive connections). The fake's servers use it too.
pub async fn accept_loop<F, Fut>(listener: TcpListener, close: Option<Arc<Notify>>, mut serve: F)
where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let close = close.unwrap_or_default();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                connections.spawn(serve(stream));
            }
            () = close.notified() => connections.abort_all(),
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One HTTP/1.1 keep-alive connection to the gateway.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let req = with_host(req, local);
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// An HTTP/1.0 request may carry neither a `Host` header nor an absolute
/// URI, and wasi:http requires an authority: such a request is addressed to
/// this server, so it gets the address it arrived on.
fn with_host(
    mut req: hyper::Request<Incoming>,
    local: Option<std::net::SocketAddr>,
) -> hyper::Request<Incoming> {
    if req.uri().authority().is_none()
        && !req.headers().contains_key(http::header::HOST)
        && let Some(value) = local.and_then(|addr| addr.to_string().parse().ok())
    {
        req.headers_mut().insert(http::header::HOST, value);
    }
    req
}

/// Runs one request in a pooled (or new) instance; a host failure is a 500
/// that says no more than that.
async fn handle(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    match run(shared, req).await {
        Ok(response) => response,
        Err(_) => {
            let mut response = hyper::Response::new(
                Full::new(Bytes::from_static(
                    br#"{"error":{"code":"host_error","message":"the gateway instance failed"}}"#,
                ))
                .map_err(|never| match never {})
                .boxed_unsync(),
            );
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
    let mut warm = shared
        .pool
        .take(async || instantiate(&shared).await)
        .await?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let mut http = warm.store.data_mut().http();
    let request = http.new_incoming_request(Scheme::Http, req)?;
    let out = http.new_response_outparam(sender)?;
    // The guest runs in its own task so the response body can stream while
    // it writes; the instance goes back to the pool when it returns cleanly.
    let task = tokio::spawn(async move {
        let Warm { store, proxy } = &mut *warm;
        store.set_epoch_deadline(LIMITS.deadline_ticks());
        let result = proxy
            .wasi_http_incoming_handler()
            .call_handle(store, request, out)
            .await;
        // A trapped instance may be in any state: never reuse it (dropping
        // the lease discards it).
        if result.is_ok() {
            warm.keep();
        }
        result
    });
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => Err(wasmtime::Error::msg(format!(
            "the gateway answered with an error code: {code:?}"
        ))),
        Err(_) => match task.await {
            Ok(Ok(())) => Err(wasmtime::Error::msg("the gateway never set a response")),
            Ok(Err(trap)) => Err(trap.context("the gateway instance trapped")),
            Err(join) => Err(join.into()),
        },
    }
}

async fn instantiate(shared: &Shared) -> wasmtime::Result<Warm> {
    let hooks = OutgoingHooks::new(shared.upstream.clone(), None);
    let env = shared.env.pairs();
    let mut state = HostState::new(
        hooks,
        None,
        &env,
        Some(&shared.env.identity),
        LIMITS.max_memory_bytes,
    )?;
    state.keyvalue = shared.buckets.clone();
    let mut store = Store::new(shared.pre.engine(), state);
    store.limiter(|state| &mut state.memory);
    store.set_epoch_deadline(LIMITS.deadline_ticks());
    let proxy = shared.pre.instantiate_async(&mut store).await?;
    Ok(Warm { store, proxy })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variables_are_named_and_values_never_shown() {
        let err = GatewayEnv::from_vars(|_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the gateway needs GATEWAY_API_KEY and DATAVERSE_CONNECTION in the environment"
        );
        let err =
            GatewayEnv::from_vars(|n| (n == "GATEWAY_API_KEY").then(|| "k".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the gateway needs DATAVERSE_CONNECTION in the environment"
        );
        let env = GatewayEnv::from_vars(|n| match n {
            "GATEWAY_API_KEY" => Some("the-key-value".into()),
            "DATAVERSE_CONNECTION" => Some("Secret=S3cr3t".into()),
            _ => None,
        })
        .unwrap();
        let debug = format!("{env:?}");
        assert!(!debug.contains("the-key-value") && !debug.contains("S3cr3t"));
        assert_eq!(env.allow, None);
    }
}
