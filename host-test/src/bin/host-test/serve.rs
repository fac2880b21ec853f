//! `serve`: the gateway component on a loopback port, reusing instances so
//! one token serves many requests (see `host_test::gateway`).

use std::path::PathBuf;
use std::sync::Arc;

use host_test::Upstream;
use host_test::gateway::{self, GatewayEnv};

use crate::Failure;
use crate::args::Args;

/// Port when `--port` is not given (the one `wasmtime serve` uses).
const DEFAULT_PORT: u16 = 8080;

pub async fn serve(args: &Args) -> Result<(), Failure> {
    args.only("serve", &["--port", "--gateway"])?;
    let port = args.number("--port")?.unwrap_or(DEFAULT_PORT);
    let connection = args.value("--connection").map(str::to_string);
    let env = GatewayEnv::from_vars(|name| match (name, &connection) {
        ("DATAVERSE_CONNECTION", Some(given)) => Some(given.clone()),
        _ => std::env::var(name).ok(),
    })
    .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let network = crate::network(args)?;
    let wasm = args
        .value("--gateway")
        .map_or_else(|| PathBuf::from(gateway::DEFAULT_GATEWAY), PathBuf::from);
    let server = gateway::serve(&wasm, env, Upstream::Network(Arc::new(network)), port)
        .await
        .map_err(Failure::host)?;
    println!(
        "gateway on http://{} — send the key as x-api-key; stop with Ctrl-C",
        server.addr
    );
    std::future::pending::<()>().await;
    drop(server);
    Ok(())
}
