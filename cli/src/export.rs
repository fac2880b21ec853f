//! `export SET [--delta STATE]`: a table's rows as NDJSON, read with change
//! tracking. With `--delta`, the delta link the read ends with is kept in
//! STATE, and the next run reads from it: only the rows created or updated
//! since, and the rows deleted since as Dataverse's `$deletedEntity`
//! entries (`{"@odata.context": "…/$deletedEntity", "id": "…", "reason":
//! "deleted"}`), one per line — an incremental sync from one command.
//!
//! STATE is replaced (a temporary file renamed over it) only after the last
//! page is printed: a run that fails or is killed part-way leaves the old
//! link, and the next run prints those changes again (at least once, never
//! lost).

use std::collections::HashSet;
use std::io::Write;

use dataverse_wasm::client::CallOptions;
use dataverse_wasm::webapi::Query;
use dataverse_wasm::webapi::changes::ChangePage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::Backend;
use crate::commands::Done;
use crate::options::{ExportArgs, Options};
use crate::output::Progress;
use crate::{Failure, exit};

/// What STATE holds: the read it continues, and where.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    table: String,
    select: Vec<String>,
    delta_link: String,
}

pub async fn export<B: Backend>(
    options: &Options,
    args: ExportArgs,
    backend: &mut B,
    call: &CallOptions,
) -> Result<Done, Failure> {
    let query = Query {
        entity_set: args.entity_set.clone(),
        select: args.select.clone(),
        page_size: args.page_size,
        ..Query::default()
    };
    crate::checks::query(&query)?;
    let stored = match &args.delta {
        Some(path) => load(path, &args)?,
        None => None,
    };
    let mut progress = Progress::on_stderr(options.output(), options.quiet);
    let mut out = std::io::stdout().lock();
    let (mut changed, mut deleted) = (0u64, 0u64);
    let mut seen = HashSet::new();
    let mut page = match &stored {
        Some(state) => backend
            .changes(&state.delta_link, args.page_size, call)
            .await
            .map_err(|f| expired_hint(f, args.delta.as_deref()))?,
        None => backend.track_changes(&query, call).await?,
    }
    .value;
    let delta_link = loop {
        print(&mut out, &page)?;
        changed += u64::from(page.changed);
        deleted += u64::from(page.deleted);
        progress.line(&format!("{changed} rows changed, {deleted} deleted…"));
        let Some(next) = page.next_link.take() else {
            break page.delta_link;
        };
        // A server that sends the read back to a page it already gave
        // would never end it.
        if !seen.insert(next.clone()) {
            return Err(Failure::from(dataverse_wasm::client::Failure::from(
                dataverse_wasm::error::Error::InvalidResponse(
                    "the change read's next link repeats a page already read".into(),
                ),
            )));
        }
        page = backend.changes(&next, args.page_size, call).await?.value;
    };
    progress.finish(&format!("{changed} rows changed, {deleted} deleted"));
    if let Some(path) = &args.delta {
        let Some(delta_link) = delta_link else {
            return Err(Failure {
                code: exit::DATAVERSE,
                message: format!(
                    "Dataverse returned no delta link for {}: is change tracking enabled for the \
                     table? ({path} was left as it was)",
                    args.entity_set
                ),
                detail: None,
                error: None,
            });
        };
        save(
            path,
            &State {
                table: args.entity_set.clone(),
                select: args.select.clone(),
                delta_link,
            },
        )?;
    }
    Ok(Done {
        rows: Some(changed + deleted),
    })
}

/// Each change on its own line, as Dataverse sent it.
fn print(out: &mut impl Write, page: &ChangePage) -> Result<(), Failure> {
    let items: Vec<Value> = serde_json::from_str(&page.changes)
        .map_err(|e| Failure::host(format!("a change page is not JSON: {e}")))?;
    for item in items {
        writeln!(out, "{item}").map_err(Failure::host)?;
    }
    out.flush().map_err(Failure::host)
}

fn load(path: &str, args: &ExportArgs) -> Result<Option<State>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::usage(format!("{path} cannot be read: {e}"))),
    };
    let state: State = serde_json::from_str(&text).map_err(|_| {
        Failure::usage(format!(
            "{path} is not a delta state this version wrote; delete it to export every row again"
        ))
    })?;
    if state.table != args.entity_set || state.select != args.select {
        return Err(Failure::usage(format!(
            "{path} continues the export of {} (select: {}), not this one; give another --delta file",
            state.table,
            if state.select.is_empty() {
                "all columns".to_string()
            } else {
                state.select.join(",")
            }
        )));
    }
    Ok(Some(state))
}

fn save(path: &str, state: &State) -> Result<(), Failure> {
    let temporary = format!("{path}.tmp");
    let text = serde_json::to_string_pretty(state).expect("the state is JSON");
    std::fs::write(&temporary, text + "\n")
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| Failure::host(format!("{path} cannot be written: {e}")))
}

/// A stored delta link Dataverse refuses (it expires when the org's change
/// tracking data is cleaned up): say how to start over.
fn expired_hint(mut failure: Failure, path: Option<&str>) -> Failure {
    if failure.code == exit::DATAVERSE
        && let Some(path) = path
    {
        failure.message = format!(
            "{} (the delta link in {path} was refused; if it expired, delete {path} to export \
             every row again)",
            failure.message
        );
    }
    failure
}
