//! `import TABLE FILE`: the rows of an NDJSON or CSV file into a table
//! through the bulk messages — `CreateMultiple`, or `UpsertMultiple` by an
//! alternate key (`--upsert-key`) — a bulk call of `--batch-size` ×
//! `--parallel` rows at a time, with a checkpoint after each call.
//!
//! Exactly once, across kills: every created row carries a primary key
//! derived from the import's seed and its row number
//! (`bulk::row_id`), and a resumed import sends the first call after its
//! checkpoint (the one that may have been in flight) as `UpsertMultiple`
//! by those keys. A row written before the kill is then updated with the
//! same values, never created twice; with `--upsert-key` every call is an
//! upsert anyway. A checkpoint marked done refuses to run again.
//!
//! CSV cells are text; each is typed by its column's `AttributeType`
//! (numbers, option sets, booleans), read from the table's definition.
//!
//! A batch Dataverse refuses (4xx: a row's own problem; the message is
//! one transaction, so none of it was written) is sent again row by row,
//! so that only the rows at fault go to the rejects file (NDJSON: the row
//! number, the error, the row). A failure every later batch would share
//! (authentication, access, throttling past the retry budget, a lost
//! connection, a server error) stops the import at the first row not
//! known to be written, with the checkpoint there.

pub mod checkpoint;
pub mod source;

use std::io::{BufReader, Write};
use std::time::Instant;

use dataverse_wasm::client::{BatchOutcome, BulkReport, CallOptions};
use dataverse_wasm::error::Error;
use dataverse_wasm::webapi::bulk::{self, Message};
use dataverse_wasm::webapi::metadata::{self, TableInfo};
use serde_json::{Map, Value, json};

use crate::backend::Backend;
use crate::commands::Done;
use crate::options::{ImportArgs, Options};
use crate::output::{self, Progress};
use crate::{Failure, exit};
use checkpoint::Checkpoint;
use source::{Format, Rows};

/// Bulk calls of `--parallel auto` carry this many batches: the component
/// runs them in waves as wide as the org's `x-ms-dop-hint`.
const AUTO_BATCHES_PER_CALL: usize = 16;

pub async fn import<B: Backend>(
    options: &Options,
    args: ImportArgs,
    backend: &mut B,
    call: &CallOptions,
) -> Result<Done, Failure> {
    if !(1..=bulk::MAX_BATCH_ROWS).contains(&args.batch_size) {
        return Err(Failure::usage(format!(
            "--batch-size must be 1..={}",
            bulk::MAX_BATCH_ROWS
        )));
    }
    let format = Format::of(&args.file, args.format);
    let file_bytes = std::fs::metadata(&args.file)
        .map_err(|e| Failure::usage(format!("{} cannot be read: {e}", args.file)))?
        .len();
    let total = count_rows(&args.file, format)?;
    let checkpoint_path = args
        .checkpoint
        .clone()
        .unwrap_or_else(|| format!("{}.checkpoint", args.file));
    let rejects_path = args
        .rejects
        .clone()
        .unwrap_or_else(|| format!("{}.rejects.ndjson", args.file));

    let table = backend.table(&args.table, call).await?;
    let fresh = Checkpoint::new(
        &args.file,
        file_bytes,
        &table.entity_set,
        &args.upsert_key,
        random_seed(),
    );
    let loaded = Checkpoint::load(&checkpoint_path, &fresh)?;
    // A checkpoint on disk means an earlier run may have sent the call
    // after it: that one goes as an upsert.
    let mut uncertain = loaded.is_some();
    let mut state = loaded.unwrap_or(fresh);
    if state.done {
        summary(options, &table, &state, &rejects_path, None)?;
        return Err(Failure::usage(format!(
            "{} was already imported into {} (the checkpoint {checkpoint_path} says so); \
             delete the checkpoint to import it again",
            args.file, table.entity_set
        )));
    }
    state.save(&checkpoint_path)?;

    // CSV cells are text: each is typed by its column's type.
    let column_types = match format {
        Format::Csv => Some(
            backend
                .attributes(&table.entity_set, call)
                .await?
                .into_iter()
                .map(|a| (a.logical_name, a.attribute_type))
                .collect(),
        ),
        Format::Ndjson => None,
    };
    let mut importer = Importer {
        table: &table,
        column_types,
        upsert_key: &args.upsert_key,
        seed: state.seed(),
        batch_size: args.batch_size,
        parallel: args.parallel.0,
        call,
        rejects: Rejects::new(&rejects_path),
    };
    let mut progress = Progress::on_stderr(options.output(), options.quiet);
    let started = Instant::now();
    let first_row = state.next_row;
    let per_call = args.batch_size
        * args
            .parallel
            .0
            .map_or(AUTO_BATCHES_PER_CALL, |n| n as usize);
    let file = std::fs::File::open(&args.file)
        .map_err(|e| Failure::usage(format!("{} cannot be read: {e}", args.file)))?;
    let mut rows = Rows::new(BufReader::new(file), format)
        .map_err(Failure::usage)?
        .skip(usize::try_from(state.next_row).unwrap_or(usize::MAX));
    let mut stopped = None;
    loop {
        let chunk: Vec<source::Item> = rows
            .by_ref()
            .take(per_call)
            .collect::<Result<_, _>>()
            .map_err(Failure::host)?;
        let Some(end) = chunk.last().map(|(index, _)| index + 1) else {
            break;
        };
        let written = importer.send(&chunk, uncertain, backend).await?;
        uncertain = false;
        state.created += written.created;
        state.upserted += written.upserted;
        state.failed += written.failed;
        state.next_row = written.stopped.as_ref().map_or(end, |(row, _)| *row);
        state.save(&checkpoint_path)?;
        show(&mut progress, &state, first_row, total, started);
        if let Some(stop) = written.stopped {
            stopped = Some(stop);
            break;
        }
    }
    progress.finish("");
    if stopped.is_none() {
        state.done = true;
        state.save(&checkpoint_path)?;
    }
    summary(
        options,
        &table,
        &state,
        &rejects_path,
        Some(started.elapsed().as_secs_f64()),
    )?;
    if let Some((row, failure)) = stopped {
        return Err(Failure {
            message: format!(
                "the import stopped at row {row}: {}; run the same command again to resume \
                 (the checkpoint is {checkpoint_path})",
                failure.message
            ),
            ..failure
        });
    }
    if state.failed > 0 {
        return Err(Failure {
            code: exit::DATAVERSE,
            message: format!(
                "{} of {total} rows were rejected; they are in {rejects_path}",
                state.failed
            ),
            detail: None,
            error: None,
        });
    }
    Ok(Done {
        rows: Some(state.created + state.upserted),
    })
}

/// What one bulk call of the import did.
#[derive(Default)]
struct Written {
    created: u64,
    upserted: u64,
    failed: u64,
    /// The first row not known to be written, and why the import stops there.
    stopped: Option<(u64, Failure)>,
}

struct Importer<'a> {
    table: &'a TableInfo,
    /// For CSV: each column's type, to type its text cells.
    column_types: Option<std::collections::HashMap<String, String>>,
    upsert_key: &'a [String],
    seed: u64,
    batch_size: usize,
    parallel: Option<u32>,
    call: &'a CallOptions,
    rejects: Rejects,
}

impl Importer<'_> {
    /// Sends the rows of `chunk` (the unreadable ones go to the rejects at
    /// once); `uncertain`: it may have been sent before, so upsert.
    async fn send<B: Backend>(
        &mut self,
        chunk: &[source::Item],
        uncertain: bool,
        backend: &mut B,
    ) -> Result<Written, Failure> {
        let message = if uncertain || !self.upsert_key.is_empty() {
            Message::Upsert
        } else {
            Message::Create
        };
        let mut written = Written::default();
        let mut rows: Vec<(u64, Value)> = Vec::with_capacity(chunk.len());
        let mut refused: Vec<(u64, String, Value)> = Vec::new();
        for (index, row) in chunk {
            match row
                .as_ref()
                .map_err(|why| why.clone())
                .and_then(|row| self.prepare(*index, row))
            {
                Ok(row) => rows.push((*index, row)),
                Err(why) => refused.push((*index, why, row_value(row))),
            }
        }
        let report = if rows.is_empty() {
            BulkReport { batches: vec![] }
        } else {
            let values: Vec<Value> = rows.iter().map(|(_, v)| v.clone()).collect();
            backend
                .bulk(
                    message,
                    &self.table.entity_set,
                    &values,
                    self.batch_size,
                    self.parallel,
                    self.call,
                )
                .await?
                .1
        };
        for batch in report.batches {
            let batch_rows = &rows[batch.rows.clone()];
            match batch.outcome {
                BatchOutcome::Done { .. } => written.count(message, batch_rows.len()),
                BatchOutcome::Failed(failure) if is_rows_fault(&failure.error) => {
                    // None of it was written: row by row, to find the rows at fault.
                    let singles = self.one_by_one(message, batch_rows, backend).await?;
                    written.created += singles.created;
                    written.upserted += singles.upserted;
                    written.failed += singles.failed;
                    if singles.stopped.is_some() {
                        written.stopped = singles.stopped;
                        break;
                    }
                }
                BatchOutcome::Failed(failure) => {
                    written.stopped = Some((batch_rows[0].0, Failure::from(failure)));
                    break;
                }
                BatchOutcome::NotSent => break,
            }
        }
        // Rows read but not known to be written are read again on resume;
        // their unreadable neighbours likewise.
        let stop = written.stopped.as_ref().map(|(row, _)| *row);
        for (index, why, row) in refused {
            if stop.is_none_or(|stop| index < stop) {
                self.rejects.add(index, &why, &row)?;
                written.failed += 1;
            }
        }
        Ok(written)
    }

    /// The rows of a refused batch, each alone.
    async fn one_by_one<B: Backend>(
        &mut self,
        message: Message,
        rows: &[(u64, Value)],
        backend: &mut B,
    ) -> Result<Written, Failure> {
        let values: Vec<Value> = rows.iter().map(|(_, v)| v.clone()).collect();
        let (_, report) = backend
            .bulk(
                message,
                &self.table.entity_set,
                &values,
                1,
                self.parallel,
                self.call,
            )
            .await?;
        let mut written = Written::default();
        for batch in report.batches {
            let (index, row) = &rows[batch.rows.start];
            match batch.outcome {
                BatchOutcome::Done { .. } => written.count(message, 1),
                BatchOutcome::Failed(failure) if is_rows_fault(&failure.error) => {
                    self.rejects.add(*index, &failure.error.to_string(), row)?;
                    written.failed += 1;
                }
                BatchOutcome::Failed(failure) => {
                    written.stopped = Some((*index, Failure::from(failure)));
                    break;
                }
                BatchOutcome::NotSent => break,
            }
        }
        Ok(written)
    }

    /// The row as sent: typed by the message's rules — a created row gets
    /// its derived primary key (unless it has one), an upserted row by key
    /// its `@odata.id`.
    fn prepare(&self, index: u64, row: &Map<String, Value>) -> Result<Value, String> {
        let mut row = row.clone();
        if let Some(types) = &self.column_types {
            for (column, cell) in row.iter_mut() {
                if let Value::String(text) = cell {
                    *cell =
                        metadata::typed_cell(column, types.get(column).map(String::as_str), text)?;
                }
            }
        }
        if let Some(odata_type) = row.get("@odata.type") {
            let expected = format!("Microsoft.Dynamics.CRM.{}", self.table.logical_name);
            if odata_type.as_str() != Some(expected.as_str()) {
                return Err(format!("its @odata.type is {odata_type}, not {expected}"));
            }
        }
        if self.upsert_key.is_empty() {
            let id = &self.table.primary_id;
            if row.get(id).is_none_or(Value::is_null) {
                row.insert(id.clone(), Value::String(bulk::row_id(self.seed, index)));
            }
        } else {
            let reference = bulk::key_reference(&self.table.entity_set, self.upsert_key, &row)
                .map_err(|e| e.to_string())?;
            row.insert("@odata.id".into(), Value::String(reference));
        }
        Ok(Value::Object(row))
    }
}

impl Written {
    fn count(&mut self, message: Message, rows: usize) {
        match message {
            Message::Create => self.created += rows as u64,
            _ => self.upserted += rows as u64,
        }
    }
}

/// A refusal that concerns the rows sent, not the import: Dataverse
/// answered 4xx to the message (validation, a duplicate key, a missing
/// row). Access denied is not: every row would get it.
fn is_rows_fault(error: &Error) -> bool {
    match error {
        Error::Service(f) | Error::PreconditionFailed(f) | Error::NotFound(f) => {
            (400..500).contains(&f.status)
        }
        _ => false,
    }
}

/// What an unreadable row's rejects entry shows of it.
fn row_value(row: &Result<Map<String, Value>, String>) -> Value {
    match row {
        Ok(row) => Value::Object(row.clone()),
        Err(_) => Value::Null,
    }
}

/// The rejects file, opened (for appending: a resumed import adds to it)
/// on the first reject only.
struct Rejects {
    path: String,
    file: Option<std::fs::File>,
}

impl Rejects {
    fn new(path: &str) -> Rejects {
        Rejects {
            path: path.to_string(),
            file: None,
        }
    }

    fn add(&mut self, row: u64, error: &str, data: &Value) -> Result<(), Failure> {
        let cannot = |e: std::io::Error| {
            Failure::host(format!(
                "the rejects file {} cannot be written: {e}",
                self.path
            ))
        };
        if self.file.is_none() {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(cannot)?;
            self.file = Some(file);
        }
        let line = json!({"row": row, "error": error, "data": data}).to_string();
        let file = self.file.as_mut().expect("opened above");
        writeln!(file, "{line}").map_err(cannot)
    }
}

/// The rows in the file (for the progress line's ETA).
fn count_rows(path: &str, format: Format) -> Result<u64, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("{path} cannot be read: {e}")))?;
    let mut rows = 0;
    for row in Rows::new(BufReader::new(file), format).map_err(Failure::usage)? {
        let _row = row.map_err(Failure::usage)?;
        rows += 1;
    }
    Ok(rows)
}

/// 64 bits that differ from import to import (std's hasher keys are random).
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

fn show<W: Write>(
    progress: &mut Progress<W>,
    state: &Checkpoint,
    first_row: u64,
    total: u64,
    started: Instant,
) {
    let done = state.next_row;
    let seconds = started.elapsed().as_secs_f64().max(0.001);
    let rate = (done - first_row) as f64 / seconds;
    let eta = if rate > 0.0 {
        format!("{:.0} s", total.saturating_sub(done) as f64 / rate)
    } else {
        "?".into()
    };
    progress.line(&format!(
        "{done}/{total} rows  {rate:.0} rows/s  ETA {eta}  ({} failed)",
        state.failed
    ));
}

fn summary(
    options: &Options,
    table: &TableInfo,
    state: &Checkpoint,
    rejects: &str,
    seconds: Option<f64>,
) -> Result<(), Failure> {
    let mut fields = vec![
        ("Table", json!(table.entity_set)),
        ("Rows", json!(state.next_row)),
        ("Created", json!(state.created)),
        ("Upserted", json!(state.upserted)),
        ("Failed", json!(state.failed)),
    ];
    if state.failed > 0 {
        fields.push(("Rejects", json!(rejects)));
    }
    if let Some(seconds) = seconds {
        fields.push(("Seconds", json!((seconds * 10.0).round() / 10.0)));
    }
    output::fields(options.output(), &fields)
}
