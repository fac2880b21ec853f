//! host-test: the reference wasmtime host for the dataverse-wasm component.
//!
//! - `runtime`: load the component (precompiled artifacts cached on disk).
//! - `session`: an instance with a connected client, and typed calls.
//! - `pool`: [`Dataverse`], the clonable handle for concurrent async code
//!   (pooled instances sharing one token).
//! - `outgoing` / `network`: where the guest's HTTP goes (fake or TLS).
//! - `fake`: a fake Entra ID + Dataverse for the demo and the tests.
//! - `gateway`: serves the gateway component over HTTP, reusing instances.

pub mod fake;
pub mod gateway;
pub mod network;
pub mod outgoing;
pub mod pool;
pub mod runtime;
pub mod session;
mod state;

pub use network::{ConnectTo, Network};
pub use outgoing::{Exchange, ExchangeLog, Upstream};
pub use pool::{Dataverse, DataverseConfig, PoolStats};
pub use runtime::{Limits, Runtime};
pub use session::{
    CallError, ClientOptions, DataverseError, ErrorKind, GuestTrap, Page, Query, RequestOptions,
    Session,
};
