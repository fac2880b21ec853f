//! host-test: the reference wasmtime host for the dataverse-wasm component.
//!
//! - `runtime`: load the component (precompiled artifacts cached on disk).
//! - `session`: an instance with a connected client, and typed calls.
//! - `outgoing` / `network`: where the guest's HTTP goes (fake or TLS).
//! - `fake`: a fake Entra ID + Dataverse for the demo and the tests.
//! - `gateway`: serves the gateway component over HTTP, reusing instances.

pub mod fake;
pub mod gateway;
pub mod network;
pub mod outgoing;
pub mod runtime;
pub mod session;
mod state;

pub use network::{ConnectTo, Network};
pub use outgoing::Upstream;
pub use runtime::Runtime;
pub use session::{
    CallError, ClientOptions, DataverseError, ErrorKind, Page, Query, RequestOptions, Session,
};
