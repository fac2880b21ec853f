//! dataverse-gateway: an HTTP gateway component for edge hosts (`wasmtime
//! serve`): callers with the gateway's API key reach Dataverse as the
//! application, without ever holding its credential or token.
//!
//! Module map. Pure (compiled and tested natively): `config` (environment →
//! settings), `route` (what a request asks for, the API key, the allow-list),
//! `headers` (what crosses the gateway), `reply` (responses and JSON errors),
//! `handler` (one request, over any `Transport`). `incoming` is the
//! `wasi:http/incoming-handler` adapter and `shared_store` the
//! `wasi:keyvalue` one (wasm only).

pub mod config;
pub mod handler;
pub mod headers;
pub mod reply;
pub mod route;

#[cfg(target_arch = "wasm32")]
mod incoming;
#[cfg(target_arch = "wasm32")]
mod shared_store;
