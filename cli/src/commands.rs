//! One function per command: check the arguments, make the call, print.
//! Every front end runs these, over its own [`Backend`].

use std::io::{Read, Write};
use std::ops::ControlFlow;

use dataverse_wasm::client::{CallInfo, CallOptions};
use dataverse_wasm::http::Method;
use dataverse_wasm::webapi::Query;
use dataverse_wasm::webapi::batch::BatchPart;
use dataverse_wasm::webapi::execute::OperationKind;
use dataverse_wasm::webapi::options::RequestOptions;
use serde_json::{Value, json};

use crate::backend::{Backend, Operation, RowRef};
use crate::options::{DataCommand, Options, Output, ProfileCommand, QueryArgs};
use crate::output::{self, Progress, RowSink, stopped};
use crate::{Failure, checks, exit};

/// What a command did, for whoever runs commands in a loop (the scheduled
/// worker logs it per tick).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Done {
    /// Rows printed, for the commands that print rows.
    pub rows: Option<u64>,
}

impl Done {
    const NOTHING: Done = Done { rows: None };

    fn rows(rows: u64) -> Done {
        Done { rows: Some(rows) }
    }
}

pub async fn run<B: Backend>(
    options: &Options,
    command: DataCommand,
    backend: &mut B,
) -> Result<Done, Failure> {
    let opts = call_options(options, false);
    match command {
        DataCommand::WhoAmI => {
            let who = backend.who_am_i(&opts).await?;
            trace(options, &who.call);
            output::fields(
                options.output(),
                &[
                    ("UserId", json!(who.value.user_id)),
                    ("BusinessUnitId", json!(who.value.business_unit_id)),
                    ("OrganizationId", json!(who.value.organization_id)),
                ],
            )?;
            Ok(Done::NOTHING)
        }
        DataCommand::Query(args) => query(options, args, backend).await,
        DataCommand::Get {
            entity_set,
            key,
            select,
            expand,
        } => {
            let target = row_ref(&entity_set, &key)?;
            let row = backend
                .retrieve(&target, &select, expand.as_deref(), &opts)
                .await?;
            trace(options, &row.call);
            output::document(options.output(), &row.value.json)?;
            Ok(Done::rows(1))
        }
        DataCommand::Create {
            entity_set,
            data,
            return_row,
        } => {
            let body = data_json(&data.data)?;
            checks::identifier("entity set", &entity_set)?;
            let created = backend
                .create(&entity_set, &body, &call_options(options, return_row))
                .await?;
            trace(options, &created.call);
            let created = created.value;
            match (options.output(), &created.id, &created.json) {
                (Output::Json, id, row) => {
                    let row = row
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<Value>(j).ok());
                    output::line(&json!({ "id": id, "row": row }).to_string())?
                }
                (format, _, Some(row)) if return_row => output::document(format, row)?,
                (_, Some(id), _) => output::line(id)?,
                (_, None, _) => output::line("created")?,
            }
            Ok(Done::NOTHING)
        }
        DataCommand::Update {
            entity_set,
            key,
            data,
            if_match,
            return_row,
        } => {
            let target = row_ref(&entity_set, &key)?;
            let body = data_json(&data.data)?;
            let written = backend
                .update(
                    &target,
                    &body,
                    if_match.as_deref(),
                    &call_options(options, return_row),
                )
                .await?;
            trace(options, &written.call);
            print_written(options, "updated", written.value)
        }
        DataCommand::Upsert {
            entity_set,
            key,
            data,
            create_only,
            return_row,
        } => {
            let target = row_ref(&entity_set, &key)?;
            let body = data_json(&data.data)?;
            let written = backend
                .upsert(
                    &target,
                    &body,
                    create_only,
                    &call_options(options, return_row),
                )
                .await?;
            trace(options, &written.call);
            print_written(options, "upserted", written.value)
        }
        DataCommand::Delete {
            entity_set,
            key,
            if_match,
        } => {
            let target = row_ref(&entity_set, &key)?;
            let done = backend.delete(&target, if_match.as_deref(), &opts).await?;
            trace(options, &done.call);
            print_written(options, "deleted", None)
        }
        DataCommand::Associate {
            entity_set,
            key,
            navigation_property,
            target_set,
            target_key,
        } => {
            let from = row_ref(&entity_set, &key)?;
            let to = row_ref(&target_set, &target_key)?;
            checks::identifier("navigation property", &navigation_property)?;
            let done = backend
                .associate(&from, &navigation_property, &to, &opts)
                .await?;
            trace(options, &done.call);
            print_written(options, "associated", None)
        }
        DataCommand::Disassociate {
            entity_set,
            key,
            navigation_property,
            target_set,
            target_key,
        } => {
            let from = row_ref(&entity_set, &key)?;
            let to = match (target_set, target_key) {
                (Some(set), Some(key)) => Some(row_ref(&set, &key)?),
                (None, None) => None,
                _ => {
                    return Err(Failure::usage(
                        "disassociate: give both TARGET_SET and TARGET_KEY, or neither",
                    ));
                }
            };
            checks::identifier("navigation property", &navigation_property)?;
            let done = backend
                .disassociate(&from, &navigation_property, to.as_ref(), &opts)
                .await?;
            trace(options, &done.call);
            print_written(options, "disassociated", None)
        }
        DataCommand::FetchXml {
            entity_set,
            file,
            all,
            max_rows,
        } => fetchxml(options, backend, &entity_set, &file, all, max_rows).await,
        DataCommand::Execute {
            name,
            bound,
            data,
            action,
            function,
        } => {
            let parameters = data.as_deref().map(data_json).transpose()?;
            let kind = match (action, function) {
                (true, _) => OperationKind::Action,
                (false, true) => OperationKind::Function,
                (false, false) if parameters.is_some() => OperationKind::Action,
                (false, false) => OperationKind::Function,
            };
            let bound = match bound.as_deref() {
                Some([set, key]) => Some(row_ref(set, key)?),
                _ => None,
            };
            let operation = Operation {
                name,
                kind,
                bound,
                parameters,
            };
            let result = backend.execute(&operation, &opts).await?;
            trace(options, &result.call);
            match result.value.json {
                Some(json) => output::document(options.output(), &json)?,
                None if options.json() => {
                    output::line(&json!({ "status": result.value.status }).to_string())?
                }
                None => output::line(&format!("done (HTTP {})", result.value.status))?,
            }
            Ok(Done::NOTHING)
        }
        DataCommand::DeleteMultiple {
            table,
            file,
            batch_size,
            parallel,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::usage(format!("{file} cannot be read: {e}")))?;
            let keys: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            for key in &keys {
                checks::entity_path("accounts", key)?;
            }
            let (table, report) = backend
                .delete_multiple(&table, &keys, batch_size, parallel.0, &opts)
                .await?;
            let mut failed = 0;
            for batch in &report.batches {
                let why = match &batch.outcome {
                    dataverse_wasm::client::BatchOutcome::Done { .. } => continue,
                    dataverse_wasm::client::BatchOutcome::Failed(f) => f.error.to_string(),
                    dataverse_wasm::client::BatchOutcome::NotSent => "not sent".into(),
                };
                failed += batch.rows.len();
                crate::failure::warn(
                    options,
                    &format!(
                        "keys {}..{} (lines of {file}, blank ones not counted) were not deleted: {why}",
                        batch.rows.start + 1,
                        batch.rows.end
                    ),
                );
            }
            output::fields(
                options.output(),
                &[
                    ("Table", json!(table.entity_set)),
                    ("Deleted", json!(keys.len() - failed)),
                    ("Failed", json!(failed)),
                ],
            )?;
            if failed > 0 {
                return Err(Failure {
                    code: exit::DATAVERSE,
                    message: format!("{failed} of {} rows were not deleted", keys.len()),
                    detail: None,
                    error: None,
                });
            }
            Ok(Done::rows(keys.len() as u64))
        }
        DataCommand::Upload {
            entity_set,
            key,
            column,
            file,
            file_name,
        } => {
            let target = row_ref(&entity_set, &key)?;
            checks::identifier("column", &column)?;
            let mut source = std::fs::File::open(&file)
                .map_err(|e| Failure::usage(format!("{file} cannot be read: {e}")))?;
            let size = source
                .metadata()
                .map_err(|e| Failure::usage(format!("{file} cannot be read: {e}")))?
                .len();
            let name = file_name.unwrap_or_else(|| {
                std::path::Path::new(&file)
                    .file_name()
                    .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned())
            });
            let sent = backend
                .upload(&target, &column, &name, size, &mut source, &opts)
                .await?;
            output::fields(
                options.output(),
                &[("Uploaded", json!(sent)), ("FileName", json!(name))],
            )?;
            Ok(Done::NOTHING)
        }
        DataCommand::Download {
            entity_set,
            key,
            column,
            out,
        } => {
            let target = row_ref(&entity_set, &key)?;
            checks::identifier("column", &column)?;
            if out == "-" {
                let mut sink = std::io::stdout();
                backend.download(&target, &column, &mut sink, &opts).await?;
                return Ok(Done::NOTHING);
            }
            // Into a temporary file renamed at the end: a failed download
            // leaves no half file under the name asked for.
            let temporary = format!("{out}.part");
            let mut sink = std::fs::File::create(&temporary)
                .map_err(|e| Failure::usage(format!("{out} cannot be written: {e}")))?;
            let (bytes, name) = match backend.download(&target, &column, &mut sink, &opts).await {
                Ok(done) => done,
                Err(failure) => {
                    let _ = std::fs::remove_file(&temporary);
                    return Err(failure);
                }
            };
            drop(sink);
            std::fs::rename(&temporary, &out)
                .map_err(|e| Failure::host(format!("{out} cannot be written: {e}")))?;
            output::fields(
                options.output(),
                &[("Downloaded", json!(bytes)), ("FileName", json!(name))],
            )?;
            Ok(Done::NOTHING)
        }
        DataCommand::Export(args) => crate::export::export(options, args, backend, &opts).await,
        DataCommand::Import(args) => crate::import::import(options, args, backend, &opts).await,
        DataCommand::Batch {
            file,
            changeset,
            continue_on_error,
        } => {
            let parts = batch_parts(&read_source(&file)?)?;
            batch(options, backend, &parts, changeset, continue_on_error).await
        }
        DataCommand::Send { method, path, data } => {
            send(options, backend, method, &path, data).await
        }
        DataCommand::Token { show_token } => token(options, backend, show_token).await,
        DataCommand::Profile(command) => profile(options, command),
    }
}

/// The per-call options given on the command line.
pub fn call_options(options: &Options, return_row: bool) -> CallOptions {
    let r = &options.request;
    let annotations = match (r.formatted, &r.annotations) {
        (true, _) => Some("*".to_string()),
        (false, name) => name.clone(),
    };
    CallOptions {
        headers: RequestOptions {
            caller_object_id: r.impersonate.clone(),
            bypass_custom_plugins: r.bypass_plugins,
            suppress_duplicate_detection: r.suppress_duplicate_detection,
            solution_unique_name: r.solution.clone(),
            strong_consistency: r.strong_consistency,
            include_annotations: annotations,
            return_representation: return_row,
        },
        client_request_id: r.request_id.clone(),
    }
}

/// A note for people on stderr (a row count, a hint); none with --quiet.
fn note(options: &Options, text: &str) {
    if !options.quiet {
        eprintln!("{text}");
    }
}

/// With -v, says which request id and how many attempts a call took.
fn trace(options: &Options, call: &CallInfo) {
    if options.verbose {
        eprintln!(
            "(client request id {}, {} attempt{})",
            call.client_request_id,
            call.attempts,
            if call.attempts == 1 { "" } else { "s" }
        );
    }
}

/// A row reference, checked here so that a malformed key fails before any
/// request is sent.
fn row_ref(entity_set: &str, key: &str) -> Result<RowRef, Failure> {
    checks::entity_path(entity_set, key)?;
    Ok(RowRef {
        entity_set: entity_set.to_string(),
        key: key.to_string(),
    })
}

/// `--data`: inline JSON, `@FILE`, or `-` for standard input; checked to be
/// JSON before anything is sent.
fn data_json(value: &str) -> Result<String, Failure> {
    let text = match value.strip_prefix('@') {
        Some(path) => read_source(path)?,
        None if value == "-" => read_source("-")?,
        None => value.to_string(),
    };
    serde_json::from_str::<Value>(&text)
        .map_err(|e| Failure::usage(format!("--data is not valid JSON: {e}")))?;
    Ok(text)
}

/// Reads a file, or standard input for `-`.
fn read_source(source: &str) -> Result<String, Failure> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("reading standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(source).map_err(|e| Failure::usage(format!("{source}: {e}")))
}

fn print_written(options: &Options, verb: &str, json: Option<String>) -> Result<Done, Failure> {
    match json {
        Some(json) => output::document(options.output(), &json)?,
        None if options.json() => output::line(&json!({ "ok": true }).to_string())?,
        None => output::line(verb)?,
    }
    Ok(Done::NOTHING)
}

async fn query<B: Backend>(
    options: &Options,
    args: QueryArgs,
    backend: &mut B,
) -> Result<Done, Failure> {
    let query = Query {
        entity_set: args.entity_set,
        select: args.select,
        filter: args.filter,
        orderby: args.orderby,
        expand: args.expand,
        apply: args.apply,
        top: args.top,
        page_size: args.page_size,
        count: args.count,
    };
    checks::query(&query)?;
    let opts = call_options(options, false);
    let format = options.output();
    let mut sink = RowSink::new(format, args.all);
    if args.all {
        let mut progress = Progress::on_stderr(format, options.quiet);
        let mut total = None;
        let mut stop = None;
        backend
            .read_all(
                &query,
                args.max_rows.unwrap_or(u64::MAX),
                &opts,
                &mut |page, _call| {
                    total = total.or(page.total_count);
                    if let Err(why) = sink.page(&page.rows) {
                        // No further page is asked for.
                        stop = Some(why);
                        return ControlFlow::Break(());
                    }
                    progress.rows(sink.written);
                    ControlFlow::Continue(())
                },
            )
            .await?;
        if let Some(stop) = stop {
            return stopped(stop).map(|()| Done::rows(sink.written));
        }
        let summary = summary(sink.written, total);
        progress.finish(&summary).or_else(|| {
            (format != Output::Json).then(|| note(options, &summary));
            None
        });
        return Ok(Done::rows(sink.written));
    }
    let page = backend.retrieve_multiple(&query, &opts).await?;
    trace(options, &page.call);
    let page = page.value;
    if let Err(stop) = sink.page(&page.rows) {
        return stopped(stop).map(|()| Done::rows(sink.written));
    }
    if format == Output::Json {
        let mut object = json!({ "value": sink.kept });
        if let Some(count) = page.total_count {
            object["@odata.count"] = json!(count);
        }
        if let Some(link) = page.next_link {
            object["@odata.nextLink"] = json!(link);
        }
        output::line(&object.to_string())?;
        return Ok(Done::rows(sink.written));
    }
    if page.next_link.is_some() {
        note(options, "(more rows: pass --all to follow every page)");
    }
    note(options, &summary(sink.written, page.total_count));
    Ok(Done::rows(sink.written))
}

fn summary(rows: u64, total: Option<i64>) -> String {
    match total {
        Some(total) => format!("{rows} rows (total count {total})"),
        None => format!("{rows} rows"),
    }
}

async fn fetchxml<B: Backend>(
    options: &Options,
    backend: &mut B,
    entity_set: &str,
    file: &str,
    all: bool,
    max_rows: Option<u64>,
) -> Result<Done, Failure> {
    checks::identifier("entity set", entity_set)?;
    let fetch = read_source(file)?;
    let opts = call_options(options, false);
    let format = options.output();
    let mut sink = RowSink::new(format, all);
    if all {
        // The core follows the paging cookies (and refuses a cookie that
        // does not advance), so this loop cannot spin; rows go out page by
        // page, so memory stays one page.
        let mut progress = Progress::on_stderr(format, options.quiet);
        let mut stop = None;
        let read = backend
            .read_all_fetch_xml(
                entity_set,
                &fetch,
                max_rows.unwrap_or(u64::MAX),
                &opts,
                &mut |page, call| {
                    trace(options, call);
                    match sink.page(&page.rows) {
                        Ok(()) => {
                            progress.rows(sink.written);
                            ControlFlow::Continue(())
                        }
                        Err(why) => {
                            stop = Some(why);
                            ControlFlow::Break(())
                        }
                    }
                },
            )
            .await;
        if let Some(stop) = stop {
            return stopped(stop).map(|()| Done::rows(sink.written));
        }
        read?;
        let summary = summary(sink.written, None);
        progress.finish(&summary).or_else(|| {
            (format != Output::Json).then(|| note(options, &summary));
            None
        });
        return Ok(Done::rows(sink.written));
    }
    let page = backend.fetch_xml(entity_set, &fetch, &opts).await?;
    trace(options, &page.call);
    let page = page.value;
    if let Err(stop) = sink.page(&page.rows) {
        return stopped(stop).map(|()| Done::rows(sink.written));
    }
    if format == Output::Json {
        // Everything a script needs to ask for page 2 itself.
        let mut object = json!({
            "value": sink.kept,
            "moreRecords": page.more_records,
            "pagingCookie": page.paging_cookie,
        });
        if let Some(count) = page.total_record_count {
            object["totalRecordCount"] = json!(count);
        }
        output::line(&object.to_string())?;
        return Ok(Done::rows(sink.written));
    }
    if page.more_records {
        note(options, "(more records: pass --all to read every page)");
    }
    note(options, &summary(sink.written, page.total_record_count));
    Ok(Done::rows(sink.written))
}

async fn batch<B: Backend>(
    options: &Options,
    backend: &mut B,
    parts: &[BatchPart],
    change_set: bool,
    continue_on_error: bool,
) -> Result<Done, Failure> {
    let result = backend
        .batch(
            parts,
            change_set,
            continue_on_error,
            &call_options(options, false),
        )
        .await?;
    trace(options, &result.call);
    let responses = result.value;
    if options.json() {
        let items: Vec<Value> = responses
            .iter()
            .map(|r| {
                let body =
                    serde_json::from_str::<Value>(&r.body).unwrap_or(Value::String(r.body.clone()));
                json!({ "contentId": r.content_id, "status": r.status, "body": body })
            })
            .collect();
        output::line(&Value::Array(items).to_string())?;
    } else {
        let mut out = std::io::stdout().lock();
        for (i, r) in responses.iter().enumerate() {
            let id = r
                .content_id
                .as_deref()
                .map(|c| format!(" (Content-ID {c})"))
                .unwrap_or_default();
            let body = if r.body.is_empty() {
                String::new()
            } else {
                format!(" {}", r.body)
            };
            if let Err(stop) =
                output::wrote(writeln!(out, "{}: HTTP {}{id}{body}", i + 1, r.status))
            {
                return stopped(stop).map(|()| Done::NOTHING);
            }
        }
    }
    // Every answer is printed; a part that failed still fails the command,
    // so a script never takes a partial batch for a success.
    let failed = responses.iter().filter(|r| r.status >= 400).count();
    if failed > 0 {
        return Err(Failure {
            code: exit::DATAVERSE,
            message: format!(
                "{failed} of {} batch requests failed (their answers are above)",
                responses.len()
            ),
            detail: None,
            error: None,
        });
    }
    Ok(Done::NOTHING)
}

/// The batch file: a JSON array of {"method", "url", "headers"?, "body"?}.
fn batch_parts(text: &str) -> Result<Vec<BatchPart>, Failure> {
    let items: Vec<Value> = serde_json::from_str(text)
        .map_err(|e| Failure::usage(format!("the batch file is not a JSON array: {e}")))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_string);
            let method = field("method").ok_or_else(|| {
                Failure::usage(format!("batch request {}: \"method\" is required", i + 1))
            })?;
            let method = method
                .parse::<Method>()
                .map_err(|e| Failure::usage(format!("batch request {}: {e}", i + 1)))?;
            let url = field("url").ok_or_else(|| {
                Failure::usage(format!("batch request {}: \"url\" is required", i + 1))
            })?;
            let headers = match item.get("headers") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect(),
                Some(_) => {
                    return Err(Failure::usage(format!(
                        "batch request {}: \"headers\" must be an object",
                        i + 1
                    )));
                }
            };
            let body = match item.get("body") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            Ok(BatchPart {
                method,
                url,
                headers,
                body,
            })
        })
        .collect()
}

async fn send<B: Backend>(
    options: &Options,
    backend: &mut B,
    method: Method,
    path: &str,
    data: Option<String>,
) -> Result<Done, Failure> {
    let body = data.as_deref().map(data_json).transpose()?;
    let headers = if body.is_some() {
        vec![("Content-Type".to_string(), "application/json".to_string())]
    } else {
        Vec::new()
    };
    let response = backend
        .send(
            method,
            path,
            &headers,
            body.map(String::into_bytes).unwrap_or_default(),
            &call_options(options, false),
        )
        .await?;
    trace(options, &response.call);
    let response = response.value;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if options.json() {
        let body = serde_json::from_str::<Value>(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        output::line(&json!({ "status": response.status, "body": body }).to_string())?;
        return Ok(Done::NOTHING);
    }
    output::line(&format!("HTTP {}", response.status))?;
    if !text.is_empty() {
        output::document(options.output(), &text)?;
    }
    Ok(Done::NOTHING)
}

async fn token<B: Backend>(
    options: &Options,
    backend: &mut B,
    show_token: bool,
) -> Result<Done, Failure> {
    let info = backend.token_info().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut fields = vec![
        ("expires_at", json!(output::date(info.expires_at))),
        (
            "expires_in",
            json!(output::duration(info.expires_at.saturating_sub(now))),
        ),
        ("authority", json!(info.authority)),
        ("tenant_id", json!(info.tenant_id)),
        ("client_id", json!(info.client_id)),
        ("scope", json!(info.scope)),
    ];
    if options.json() {
        // Scripts get the number too; a fresh process has no token cache,
        // so "from cache" would always read true and say nothing.
        fields.push(("expires_at_unix", json!(info.expires_at)));
    }
    if show_token {
        fields.push(("access_token", json!(backend.access_token().await?)));
    }
    output::fields(options.output(), &fields)?;
    Ok(Done::NOTHING)
}

fn profile(options: &Options, command: ProfileCommand) -> Result<Done, Failure> {
    use crate::connection::{Process, load_config, masked, url_of};
    let (path, config) = load_config(&Process).map_err(Failure::usage)?;
    match command {
        ProfileCommand::List => {
            let rows: Vec<(String, Value)> = config
                .profiles
                .iter()
                .map(|(name, profile)| {
                    let default = config.default.as_deref() == Some(name.as_str());
                    let url = url_of(&profile.connection);
                    (name.clone(), json!({ "default": default, "url": url }))
                })
                .collect();
            if options.json() {
                let object: serde_json::Map<String, Value> = rows.into_iter().collect();
                output::line(&json!({ "config": path, "profiles": object }).to_string())?;
                return Ok(Done::NOTHING);
            }
            if rows.is_empty() {
                eprintln!(
                    "no profiles ({})",
                    path.map_or("no config file".into(), |p| p.display().to_string())
                );
                return Ok(Done::NOTHING);
            }
            let text: Vec<String> = rows
                .iter()
                .map(|(name, v)| {
                    let mark = if v["default"] == json!(true) {
                        "*"
                    } else {
                        " "
                    };
                    format!("{mark} {name:<16} {}", output::plain(&v["url"]))
                })
                .collect();
            output::line(&text.join("\n"))?;
        }
        ProfileCommand::Show { name } => {
            let profile = config.profiles.get(&name).ok_or_else(|| {
                Failure::usage(format!(
                    "no profile '{name}' (profiles: {})",
                    config
                        .profiles
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            output::fields(
                options.output(),
                &[
                    ("profile", json!(name)),
                    (
                        "default",
                        json!(config.default.as_deref() == Some(name.as_str())),
                    ),
                    ("connection", json!(masked(&profile.connection))),
                ],
            )?;
        }
    }
    Ok(Done::NOTHING)
}

/// The connection string from wherever the user keeps it (see
/// `connection`); its warnings are printed.
pub fn resolved_connection(options: &Options) -> Result<crate::connection::Resolved, Failure> {
    let resolved = crate::connection::resolve(
        &crate::connection::Process,
        options.connection.as_deref(),
        options.profile.as_deref(),
    )
    .map_err(Failure::usage)?;
    for warning in &resolved.warnings {
        crate::failure::warn(options, warning);
    }
    Ok(resolved)
}
