//! The native CLI's commands: the shared ones through the command layer
//! (`dataverse_cli::commands`, over the client component in wasmtime), and
//! the host-only ones.

use dataverse_fake::Fake;
use dataverse_host::session::Query;
use serde_json::{Value, json};

use crate::backend::{SessionBackend, failed};
use crate::cli::{Command, Global};
use crate::{Failure, demo_session, output};

pub async fn run(global: &Global, command: Command) -> Result<(), Failure> {
    match command {
        Command::Data(command) => {
            let mut backend = SessionBackend::new(global);
            dataverse_cli::commands::run(&global.options, command, &mut backend)
                .await
                .map(drop)
        }
        Command::Demo => demo(global).await,
        Command::Schedule {
            schedule,
            run_on_startup,
            max_ticks,
            command,
        } => crate::schedule::run(global, schedule, run_on_startup, max_ticks, command).await,
        Command::Doctor { table } => crate::doctor::run(global, table.as_deref()).await,
        Command::Completions { shell } => {
            let mut cli = <crate::cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cli, "host-test", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cli = <crate::cli::Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(cli)
                .render(&mut page)
                .map_err(Failure::host)?;
            output::line(String::from_utf8_lossy(&page).trim_end())
        }
        Command::FakeServer { seconds, http } => crate::fake_server::run(seconds, http).await,
        Command::Bench {
            iterations,
            runs,
            only,
            bulk_rows,
            out,
        } => {
            let sizes = crate::bench::Sizes {
                iterations: iterations as usize,
                runs: runs as usize,
                bulk_rows: bulk_rows as usize,
            };
            crate::bench::run(global, sizes, only, out).await
        }
        Command::BenchAuth { iterations } => crate::bench::auth(global, iterations as usize).await,
        Command::Serve { port, gateway } => crate::serve::serve(global, port, gateway).await,
    }
}

async fn demo(global: &Global) -> Result<(), Failure> {
    let fake = Fake::demo();
    let mut session = demo_session(global, fake.clone()).await?;
    let who = session.who_am_i(None).await.map_err(failed)?;
    let query = Query::new("accounts").select(["name"]).top(3);
    let page = session
        .retrieve_multiple(&query, None)
        .await
        .map_err(failed)?;
    let rows: Vec<Value> = serde_json::from_str(&page.rows).map_err(Failure::host)?;
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    if global.json() {
        return output::line(
            &json!({
                "UserId": who.user_id, "BusinessUnitId": who.business_unit_id,
                "OrganizationId": who.organization_id, "accounts": names,
            })
            .to_string(),
        );
    }
    let stats = fake.stats();
    let text = format!(
        "dataverse-wasm demo: the component in wasmtime, against the built-in fake Entra ID + Dataverse\n\
         WhoAmI\n  UserId:         {}\n  BusinessUnitId: {}\n  OrganizationId: {}\n\
         First {} accounts\n{}\n\
         ({} discovery request, {} token request, {} Web API requests)",
        who.user_id,
        who.business_unit_id,
        who.organization_id,
        names.len(),
        names
            .iter()
            .map(|n| format!("  {n}"))
            .collect::<Vec<_>>()
            .join("\n"),
        stats.discovery_requests,
        stats.token_requests,
        stats.api_requests
    );
    output::line(&text)
}
