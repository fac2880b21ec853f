//! dataverse-wasm: a server-to-server Microsoft Dataverse client.
//!
//! Module map. Pure (no I/O, no clocks, no randomness): `settings`, `auth`,
//! `webapi`, `http`, `percent`, `error`, `secret`. `client` sequences I/O over
//! the `transport::Transport` trait. `component` is the WIT adapter (wasm only,
//! default feature `component`).

pub mod auth;
pub mod client;
pub mod error;
pub mod http;
pub mod page_reader;
mod percent;
pub mod retry;
pub mod secret;
pub mod settings;
pub mod transport;
mod uuid;
pub mod webapi;

// The `client` world's exports. Behind the default `component` feature so
// that another component (the gateway) can link this crate as a library
// without also exporting `client`.
#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component;

#[cfg(test)]
mod hostile_input_tests;

pub use client::Client;
pub use error::{AuthFailure, Error, ServiceFailure};
pub use secret::Secret;
pub use transport::Transport;
