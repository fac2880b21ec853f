//! `serve`: the gateway component on a loopback port, reusing instances so
//! one token serves many requests (see `dataverse_host::gateway`).

use std::sync::Arc;

use dataverse_host::serve::{self as gateway, GatewayEnv};

use crate::Failure;
use crate::cli::Global;

pub async fn serve(
    global: &Global,
    port: u16,
    gateway: Option<std::path::PathBuf>,
) -> Result<(), Failure> {
    // The connection from wherever the user keeps it, as for every command;
    // the gateway's other settings come from its environment.
    let connection = match (&global.options.connection, &global.options.profile) {
        (None, None) if std::env::var_os("DATAVERSE_CONNECTION").is_some() => None,
        _ => crate::connection_string(global).ok(),
    };
    let env = GatewayEnv::from_vars(|name| match (name, &connection) {
        ("DATAVERSE_CONNECTION", Some(given)) => Some(given.clone()),
        _ => std::env::var(name).ok(),
    })
    .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let network = crate::network(global)?;
    // The gateway built into this binary, or one the user names.
    let wasm =
        match gateway {
            Some(path) => std::borrow::Cow::Owned(std::fs::read(&path).map_err(|e| {
                Failure::usage(format!("reading the gateway {}: {e}", path.display()))
            })?),
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
