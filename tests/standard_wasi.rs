//! The plain `client` component in a host that offers nothing but standard
//! WASI: wasmtime with wasmtime-wasi and wasmtime-wasi-http, bindings from
//! the `client` world alone, no `dataverse:client/signer`, and none of
//! dataverse-host's linker or state; its `wasi:http` hooks hand each request
//! to the fake in process (wasmtime-wasi-http's own default sender is a
//! cargo feature this workspace does not build). Issue 14 keeps such hosts
//! working: only the signing component (world `client-signing`) imports
//! the signer.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use dataverse_fake::{self as fake, Fake};
use dataverse_host::Upstream;
use dataverse_host::signer::SIGNER_INTERFACE;
use http_body_util::{BodyExt, Full};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

mod bare {
    wasmtime::component::bindgen!({
        world: "client",
        path: "../wit",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
        },
    });
}

use bare::exports::dataverse::client::types::ClientOptions;

/// What a minimal host keeps per store: WASI, wasi:http, their table, and
/// where outgoing requests go.
struct Bare {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: ToFake,
}

/// Outgoing requests to the in-process fake, whole bodies both ways.
struct ToFake(Arc<Fake>);

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl WasiHttpHooks for ToFake {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_done: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        let fake = self.0.clone();
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body: Bytes = body.collect().await?.to_bytes();
            let response = fake
                .send(
                    http::Request::from_parts(parts, body),
                    options.unwrap_or_default(),
                )
                .await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            let body: WasiBody = Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync();
            let done: IoFuture = Box::new(async { Ok(()) });
            Ok((http::Response::from_parts(parts, body), done))
        })
    }
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Bare {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The standard linker: WASI p2 and wasi:http, nothing of this project.
fn standard_linker(engine: &Engine) -> Linker<Bare> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
    linker
}

fn imports(engine: &Engine, wasm: &[u8]) -> Vec<String> {
    let component = Component::new(engine, wasm).unwrap();
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn the_plain_component_imports_no_signer_and_the_signing_one_does() {
    let engine = Engine::default();
    let plain = imports(&engine, dataverse_artifacts::CLIENT);
    assert!(
        plain.iter().all(|name| name.starts_with("wasi:")),
        "{plain:?}"
    );
    assert!(
        !plain.iter().any(|name| name.starts_with(SIGNER_INTERFACE)),
        "{plain:?}"
    );
    let signing = imports(&engine, dataverse_artifacts::SIGNING_CLIENT);
    let beyond: Vec<&String> = signing.iter().filter(|n| !plain.contains(n)).collect();
    assert_eq!(beyond, [&format!("{SIGNER_INTERFACE}@0.2.0")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_component_runs_in_a_host_with_only_standard_wasi_and_calls_who_am_i() {
    let fake = Fake::demo();
    let engine = Engine::default();
    let component = Component::new(&engine, dataverse_artifacts::CLIENT).unwrap();
    let pre = standard_linker(&engine)
        .instantiate_pre(&component)
        .expect("a standard WASI linker satisfies every import");
    let pre = bare::ClientPre::new(pre).unwrap();
    let mut store = Store::new(
        &engine,
        Bare {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: ToFake(fake.clone()),
        },
    );
    let client = pre.instantiate_async(&mut store).await.unwrap();
    let settings = client
        .dataverse_client_connection()
        .call_parse(&mut store, &fake::demo_connection_string())
        .await
        .unwrap()
        .expect("the settings parse");
    let options = ClientOptions {
        max_response_bytes: None,
        timeout_ms: None,
        max_retries: None,
        max_total_wait_ms: None,
        assertion_algorithm: None,
        send_certificate_chain: None,
    };
    let api = client.dataverse_client_web_api().client();
    let connected = api
        .call_connect(&mut store, settings, options)
        .await
        .unwrap()
        .expect("discovery and the token request succeed");
    let who = api
        .call_who_am_i(&mut store, connected, None)
        .await
        .unwrap()
        .expect("WhoAmI succeeds");
    assert_eq!(who.user_id, fake::DEMO_USER_ID);
    let route: Vec<(String, String)> = fake
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.host.clone()))
        .collect();
    let expected = [
        ("GET", fake::ORG_HOST),
        ("POST", fake::LOGIN_HOST),
        ("GET", fake::ORG_HOST),
    ]
    .map(|(m, h)| (m.to_string(), h.to_string()));
    assert_eq!(route, expected, "discovery, the token request, WhoAmI");
}
