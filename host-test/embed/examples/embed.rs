//! Embedding the component in a Rust service: load once, connect once, call
//! from as many tasks as you like. Runs against the fake (crate
//! dataverse-fake); for a real org pass `Arc::new(Network::new(vec![], None)?)`
//! as the upstream, and your connection string.

use std::sync::Arc;

use dataverse_fake::{Fake, demo_connection_string};
use dataverse_host::{Dataverse, Query, Runtime};

pub async fn run() -> anyhow::Result<()> {
    // Once per process: compiled (or loaded precompiled) with the pooling
    // allocator, a memory limit and a deadline per call (`Limits`).
    // The component's bytes: embedded by dataverse-artifacts, or read from a
    // file with `Runtime::load(path)`.
    let runtime = Arc::new(Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    let upstream = Fake::demo();

    // Once per connection string: discovery + one token.
    let dataverse = Dataverse::connect(runtime, upstream, &demo_connection_string()).await?;

    // Clone the handle into any number of tasks; they share the token.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let dataverse = dataverse.clone();
            tokio::spawn(async move { dataverse.who_am_i().await })
        })
        .collect();
    for task in tasks {
        println!("WhoAmI: {}", task.await??.user_id);
    }

    // Typed calls on pooled instances: rows are serde_json::Value (or your
    // own type: `query_as::<Account>`); `rows(query)` streams every page.
    let query = Query::new("accounts").select(["name"]).top(3);
    for account in dataverse.query(&query).await?.rows {
        println!("account: {}", account["name"]);
    }
    Ok(())
}

// A current-thread runtime keeps each call and the connection I/O it
// starts on one thread: the lowest latency per call (the bench's warm
// WhoAmI). Calls from many tasks still overlap while they wait on the
// network; a multi-thread runtime works too.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    run().await
}
