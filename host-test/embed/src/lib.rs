//! dataverse-host: embed the `dataverse:client` component in a wasmtime host.
//!
//! - `engine`: the wasmtime engine (pooling allocator, epoch deadlines) and
//!   the on-disk cache of precompiled components.
//! - `runtime`: [`Runtime`], the compiled component and the [`Limits`] every
//!   instance runs under; it makes instances (`connect`, `auth_protocol`).
//! - `session`: [`Session`], one instance with a connected client, and typed
//!   calls; [`CallError`] for what can go wrong.
//! - `pool`: [`Dataverse`], the clonable handle for concurrent async code
//!   (pooled instances sharing one token).
//! - `calls`: the handle's typed calls (`query`, `get`, `create`, …), rows
//!   as `serde_json::Value` or any `T: DeserializeOwned`.
//! - `rows`: what those calls return ([`RowPage`], [`CreatedRow`], …).
//! - `stream`: [`Dataverse::rows`], every row of a query as a `Stream` that
//!   asks for a page only when the previous one is consumed.
//! - `decode`: JSON to and from serde types; [`Error`] and [`JsonError`],
//!   which never carry row text.
//! - `trace`: the `tracing` spans and events (one `dataverse.call` span per
//!   call, one `dataverse.http` event per HTTP exchange; never a header, a
//!   body or a secret).
//! - `upstream`: where the guest's HTTP goes: the [`Upstream`] trait, the
//!   exchange log, the `wasi:http` hooks.
//! - `network`: [`Network`], the real upstream (keep-alive TLS pool).
//! - `proxy`: [`ProxyConfig`], the proxies the environment names
//!   (`HTTPS_PROXY`, `NO_PROXY`, …), and the `CONNECT` handshake.
//! - `identity`: [`IdentityEnvironment`], the platform variables a managed
//!   or workload identity reads, and the token file's directory, passed
//!   to the instances that hold the credential.
//! - `signer`: [`Signer`], the `signer` import (a certificate whose key
//!   stays in Key Vault), and [`KeyVaultSigner`].
//! - `serve`: serves the gateway component over HTTP, reusing instances.
//! - `error`: [`HostError`], why the host could not set something up.
//! - `builders`: defaults and builders for the WIT records
//!   (`Query::new("accounts").select(["name"]).top(3)`).
//!
//! The component's bytes come from the embedder: a file
//! ([`Runtime::load`]) or bytes it carries ([`Runtime::from_wasm`], e.g.
//! `dataverse_artifacts::CLIENT`).
//!
//! ```
//! use std::sync::Arc;
//! use dataverse_host::{Dataverse, Query, Runtime};
//! use futures_util::TryStreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Once per process: the component, compiled or loaded precompiled.
//! let runtime = Arc::new(Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
//! // Once per connection string: discovery and one token. Against the
//! // in-process fake here; `Arc::new(Network::new(vec![], None)?)` reaches
//! // the real services.
//! let upstream = dataverse_fake::Fake::demo();
//! let connection = dataverse_fake::demo_connection_string();
//! let dataverse = Dataverse::connect(runtime, upstream, &connection).await?;
//!
//! // Clone the handle into any task; rows are `serde_json::Value`s.
//! let page = dataverse.query(&Query::new("accounts").select(["name"]).top(3)).await?;
//! assert_eq!(page.rows[1]["name"], "Fabrikam Inc");
//! // Every row, a page at a time, as a `Stream`.
//! let all: Vec<serde_json::Value> = dataverse
//!     .rows(Query::new("accounts").select(["name"]).page_size(10))
//!     .try_collect()
//!     .await?;
//! assert_eq!(all.len(), 25);
//! # Ok(()) }
//! ```

pub mod authority_cache;
mod bindings;
mod builders;
mod calls;
pub mod core_types;
pub mod decode;
pub mod engine;
pub mod error;
pub mod identity;
mod instance_pool;
pub mod keyvalue;
pub mod limits;
pub mod network;
pub mod pool;
pub mod proxy;
pub mod rows;
pub mod runtime;
pub mod serve;
pub mod session;
pub mod signer;
mod state;
mod stream;
mod trace;
pub mod upstream;

pub use decode::{Error, JsonError};
pub use error::HostError;
pub use identity::IdentityEnvironment;
pub use limits::{Allocation, Limits};
pub use network::{ConnectTo, Network};
pub use pool::{Dataverse, DataverseConfig, PoolStats};
pub use proxy::{Proxy, ProxyConfig};
pub use rows::{CreatedRow, FetchRowPage, NextPage, RowPage, WrittenRow};
pub use runtime::Runtime;
pub use session::{
    BatchOptions, BatchOutcome, BatchRequest, BulkBatch, BulkMessage, BulkOptions, BulkResult,
    CallError, CallInfo, ChangePage, ClientOptions, DataverseError, EntityRef, ErrorKind,
    GuestTrap, Method, Operation, OperationKind, Page, Query, RequestOptions, Session, TableInfo,
    TokenInfo, WebRequest, WrittenBatch,
};
pub use signer::{KeyVaultSigner, Signer};
pub use upstream::{Exchange, ExchangeLog, Unreachable, Upstream};
