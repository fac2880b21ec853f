//! dataverse-wasm: a server-to-server Microsoft Dataverse client.
//!
//! Module map. Pure (no I/O, no clocks, no randomness): `settings`, `auth`
//! (save the assertion signature's salt and blinding, drawn from
//! `transport::SystemRng`), `webapi`, `http`, `percent`, `error`, `secret`. `client` sequences I/O over
//! the `transport::Transport` trait; `scripted` is its test double (for
//! this crate and those built on it). The WIT adapter that makes it
//! the `dataverse:client` component is its own crate, `src/component`, so the
//! gateway can link this core without exporting the `client` world.

pub mod auth;
pub mod client;
pub mod error;
pub mod file_upload;
pub mod http;
pub mod page_reader;
mod percent;
pub mod retry;
pub mod scripted;
pub mod secret;
pub mod settings;
pub mod transport;
mod uuid;
pub mod webapi;

#[cfg(test)]
mod hostile_input_tests;

pub use client::Client;
pub use error::{AuthFailure, Error, ServiceFailure};
pub use secret::Secret;
pub use transport::Transport;
