//! The command layer of dataverse-wasm, written once for two front ends:
//! the native CLI (`host-test`, which runs the client component in
//! wasmtime) and the WASI command component (`dataverse-cli.wasm`, this
//! crate's binary, which runs the core in the same guest).
//!
//! Module map. `options`: the flags and commands every front end shares
//! (clap definitions). `commands`: one function per command — check the
//! arguments, make the calls, print — over a [`Backend`], the calls a front
//! end offers. `output`: the three output formats. `failure`, `exit`,
//! `json_error`: what a failure prints and the exit code it ends with.
//! `export`: the change-tracking export. `import`: the bulk import, its file reader and checkpoint.
//! `connection`: where the connection string comes from. `checks`: the
//! core's validators, run before anything is sent.

pub mod backend;
pub mod checks;
pub mod commands;
pub mod connection;
pub mod exit;
pub mod export;
pub mod failure;
pub mod import;
pub mod json_error;
pub mod options;
pub mod output;

pub use backend::{Backend, Operation, RowRef};
pub use failure::{Failure, parse_words, parse_words_with, report};
pub use options::{DataCommand, Options, Output};
