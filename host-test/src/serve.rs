//! `serve`: the gateway component on a loopback port, reusing instances so
//! one token serves many requests (see `dataverse_host::gateway`).

use std::sync::Arc;

use dataverse_host::serve::{self as gateway, GatewayEnv};

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
    // The gateway built into this binary, or one the user names.
    let wasm = match args.value("--gateway") {
        Some(path) => std::borrow::Cow::Owned(
            std::fs::read(path)
                .map_err(|e| Failure::usage(format!("reading the gateway {path}: {e}")))?,
        ),
        None => std::borrow::Cow::Borrowed(dataverse_artifacts::GATEWAY),
    };
    let server = gateway::serve(&wasm, env, Arc::new(network), port)
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
