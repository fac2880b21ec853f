//! One function per CLI command: check the arguments, make the call, print.

use std::io::{Read, Write};
use std::ops::ControlFlow;

use dataverse_fake::Fake;
use dataverse_host::session::{
    BatchOptions, BatchRequest, CallInfo, EntityRef, Method, Operation, OperationKind, Query,
    WebRequest,
};
use serde_json::{Value, json};

use crate::cli::{Command, Global, Output, ProfileCommand, QueryArgs};
use crate::output::{self, Progress, RowSink, stopped};
use crate::{Failure, connect, demo_session, exit, request_options};

pub async fn run(global: &Global, command: Command) -> Result<(), Failure> {
    match command {
        Command::Demo => demo(global).await,
        Command::WhoAmI => whoami(global).await,
        Command::Query(args) => query(global, args).await,
        Command::Get {
            entity_set,
            key,
            select,
            expand,
        } => {
            let target = entity_ref(&entity_set, &key)?;
            let mut session = connect(global).await?;
            let row = session
                .retrieve(
                    &target,
                    &select,
                    expand.as_deref(),
                    request_options(global).as_ref(),
                )
                .await?;
            trace(global, &row.call);
            output::document(global.output(), &row.json)
        }
        Command::Create {
            entity_set,
            data,
            return_row,
        } => {
            let body = data_json(&data.data)?;
            crate::checks::identifier("entity set", &entity_set)?;
            let mut session = connect(global).await?;
            let created = session
                .create(
                    &entity_set,
                    &body,
                    request_options_with(global, return_row).as_ref(),
                )
                .await?;
            trace(global, &created.call);
            match (global.output(), &created.id, &created.json) {
                (Output::Json, id, row) => {
                    let row = row
                        .as_deref()
                        .and_then(|j| serde_json::from_str::<Value>(j).ok());
                    output::line(&json!({ "id": id, "row": row }).to_string())
                }
                (format, _, Some(row)) if return_row => output::document(format, row),
                (_, Some(id), _) => output::line(id),
                (_, None, _) => output::line("created"),
            }
        }
        Command::Update {
            entity_set,
            key,
            data,
            if_match,
            return_row,
        } => {
            let target = entity_ref(&entity_set, &key)?;
            let body = data_json(&data.data)?;
            let mut session = connect(global).await?;
            let written = session
                .update(
                    &target,
                    &body,
                    if_match.as_deref(),
                    request_options_with(global, return_row).as_ref(),
                )
                .await?;
            trace(global, &written.call);
            print_written(global, "updated", written.json)
        }
        Command::Upsert {
            entity_set,
            key,
            data,
            create_only,
            return_row,
        } => {
            let target = entity_ref(&entity_set, &key)?;
            let body = data_json(&data.data)?;
            let mut session = connect(global).await?;
            let written = session
                .upsert(
                    &target,
                    &body,
                    create_only,
                    request_options_with(global, return_row).as_ref(),
                )
                .await?;
            trace(global, &written.call);
            print_written(global, "upserted", written.json)
        }
        Command::Delete {
            entity_set,
            key,
            if_match,
        } => {
            let target = entity_ref(&entity_set, &key)?;
            let mut session = connect(global).await?;
            let call = session
                .delete(
                    &target,
                    if_match.as_deref(),
                    request_options(global).as_ref(),
                )
                .await?;
            trace(global, &call);
            print_written(global, "deleted", None)
        }
        Command::Associate {
            entity_set,
            key,
            navigation_property,
            target_set,
            target_key,
        } => {
            let from = entity_ref(&entity_set, &key)?;
            let to = entity_ref(&target_set, &target_key)?;
            crate::checks::identifier("navigation property", &navigation_property)?;
            let mut session = connect(global).await?;
            let call = session
                .associate(
                    &from,
                    &navigation_property,
                    &to,
                    request_options(global).as_ref(),
                )
                .await?;
            trace(global, &call);
            print_written(global, "associated", None)
        }
        Command::Disassociate {
            entity_set,
            key,
            navigation_property,
            target_set,
            target_key,
        } => {
            let from = entity_ref(&entity_set, &key)?;
            let to = match (target_set, target_key) {
                (Some(set), Some(key)) => Some(entity_ref(&set, &key)?),
                (None, None) => None,
                _ => {
                    return Err(Failure::usage(
                        "disassociate: give both TARGET_SET and TARGET_KEY, or neither",
                    ));
                }
            };
            crate::checks::identifier("navigation property", &navigation_property)?;
            let mut session = connect(global).await?;
            let call = session
                .disassociate(
                    &from,
                    &navigation_property,
                    to.as_ref(),
                    request_options(global).as_ref(),
                )
                .await?;
            trace(global, &call);
            print_written(global, "disassociated", None)
        }
        Command::FetchXml {
            entity_set,
            file,
            all,
            max_rows,
        } => fetchxml(global, &entity_set, &file, all, max_rows).await,
        Command::Execute {
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
                Some([set, key]) => Some(entity_ref(set, key)?),
                _ => None,
            };
            let operation = Operation {
                name,
                kind,
                bound,
                parameters,
            };
            let mut session = connect(global).await?;
            let result = session
                .execute(&operation, request_options(global).as_ref())
                .await?;
            trace(global, &result.call);
            match result.json {
                Some(json) => output::document(global.output(), &json),
                None if global.json() => {
                    output::line(&json!({ "status": result.status }).to_string())
                }
                None => output::line(&format!("done (HTTP {})", result.status)),
            }
        }
        Command::Batch {
            file,
            changeset,
            continue_on_error,
        } => {
            let requests = batch_requests(&read_source(&file)?)?;
            let options = BatchOptions {
                change_set: changeset,
                continue_on_error,
            };
            batch(global, &requests, options).await
        }
        Command::Send { method, path, data } => send(global, method, path, data).await,
        Command::Token { show_token } => token(global, show_token).await,
        Command::Doctor { table } => crate::doctor::run(global, table.as_deref()).await,
        Command::Profile(command) => profile(global, command),
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
        Command::FakeServer { seconds } => crate::fake_server::run(seconds).await,
        Command::Bench {
            iterations,
            runs,
            only,
            out,
        } => crate::bench::run(global, iterations as usize, runs as usize, only, out).await,
        Command::BenchAuth { iterations } => crate::bench::auth(global, iterations as usize).await,
        Command::Serve { port, gateway } => crate::serve::serve(global, port, gateway).await,
    }
}

/// With -v, says which request id and how many attempts a call took.
fn trace(global: &Global, call: &CallInfo) {
    if global.verbose {
        eprintln!(
            "(client request id {}, {} attempt{})",
            call.client_request_id,
            call.attempts,
            if call.attempts == 1 { "" } else { "s" }
        );
    }
}

fn request_options_with(
    global: &Global,
    return_row: bool,
) -> Option<dataverse_host::session::RequestOptions> {
    let mut options = request_options(global)?;
    options.return_representation = return_row;
    Some(options)
}

/// A row reference, checked here so that a malformed key fails before any
/// request is sent.
fn entity_ref(entity_set: &str, key: &str) -> Result<EntityRef, Failure> {
    crate::checks::entity_path(entity_set, key)?;
    Ok(EntityRef::new(entity_set, key))
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

fn print_written(global: &Global, verb: &str, json: Option<String>) -> Result<(), Failure> {
    match json {
        Some(json) => output::document(global.output(), &json),
        None if global.json() => output::line(&json!({ "ok": true }).to_string()),
        None => output::line(verb),
    }
}

async fn demo(global: &Global) -> Result<(), Failure> {
    let fake = Fake::demo();
    let mut session = demo_session(global, fake.clone()).await?;
    let who = session.who_am_i(None).await?;
    let query = Query::new("accounts").select(["name"]).top(3);
    let page = session.retrieve_multiple(&query, None).await?;
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

async fn whoami(global: &Global) -> Result<(), Failure> {
    let mut session = connect(global).await?;
    let who = session.who_am_i(request_options(global).as_ref()).await?;
    trace(global, &who.call);
    output::fields(
        global.output(),
        &[
            ("UserId", json!(who.user_id)),
            ("BusinessUnitId", json!(who.business_unit_id)),
            ("OrganizationId", json!(who.organization_id)),
        ],
    )
}

async fn query(global: &Global, args: QueryArgs) -> Result<(), Failure> {
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
    crate::checks::query(&query)?;
    let options = request_options(global);
    let mut session = connect(global).await?;
    let format = global.output();
    let mut sink = RowSink::new(format, args.all);
    if args.all {
        let mut progress = Progress::on_stderr(format);
        let mut total = None;
        let mut stop = None;
        session
            .read_all(
                &query,
                args.max_rows.unwrap_or(u64::MAX),
                options.as_ref(),
                |page| {
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
            return stopped(stop);
        }
        let summary = summary(sink.written, total);
        progress.finish(&summary).or_else(|| {
            (format != Output::Json).then(|| eprintln!("{summary}"));
            None
        });
        return Ok(());
    }
    let page = session.retrieve_multiple(&query, options.as_ref()).await?;
    trace(global, &page.call);
    if let Err(stop) = sink.page(&page.rows) {
        return stopped(stop);
    }
    if format == Output::Json {
        let mut object = json!({ "value": sink.kept });
        if let Some(count) = page.total_count {
            object["@odata.count"] = json!(count);
        }
        if let Some(link) = page.next_link {
            object["@odata.nextLink"] = json!(link);
        }
        return output::line(&object.to_string());
    }
    if page.next_link.is_some() {
        eprintln!("(more rows: pass --all to follow every page)");
    }
    eprintln!("{}", summary(sink.written, page.total_count));
    Ok(())
}

fn summary(rows: u64, total: Option<i64>) -> String {
    match total {
        Some(total) => format!("{rows} rows (total count {total})"),
        None => format!("{rows} rows"),
    }
}

async fn fetchxml(
    global: &Global,
    entity_set: &str,
    file: &str,
    all: bool,
    max_rows: Option<u64>,
) -> Result<(), Failure> {
    crate::checks::identifier("entity set", entity_set)?;
    let fetch = read_source(file)?;
    let options = request_options(global);
    let mut session = connect(global).await?;
    let format = global.output();
    let mut sink = RowSink::new(format, all);
    if all {
        // The component follows the paging cookies (and refuses a cookie
        // that does not advance), so this loop cannot spin; rows go out page
        // by page, so memory stays one page.
        let mut progress = Progress::on_stderr(format);
        let mut stop = None;
        let read = session
            .read_all_fetch_xml(
                entity_set,
                &fetch,
                max_rows.unwrap_or(u64::MAX),
                options.as_ref(),
                |page| {
                    trace(global, &page.call);
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
            return stopped(stop);
        }
        read?;
        let summary = summary(sink.written, None);
        progress.finish(&summary).or_else(|| {
            (format != Output::Json).then(|| eprintln!("{summary}"));
            None
        });
        return Ok(());
    }
    let page = session
        .fetch_xml(entity_set, &fetch, 1, None, options.as_ref())
        .await?;
    trace(global, &page.call);
    if let Err(stop) = sink.page(&page.rows) {
        return stopped(stop);
    }
    if format == Output::Json {
        // Everything a script needs to ask for page 2 itself.
        let mut object = json!({
            "value": sink.kept,
            "moreRecords": page.more_records,
            "pagingCookie": page.paging_cookie,
        });
        if let Some(count) = page.total_count {
            object["totalRecordCount"] = json!(count);
        }
        return output::line(&object.to_string());
    }
    if page.more_records {
        eprintln!("(more records: pass --all to read every page)");
    }
    eprintln!("{}", summary(sink.written, page.total_count));
    Ok(())
}

async fn batch(
    global: &Global,
    requests: &[BatchRequest],
    options: BatchOptions,
) -> Result<(), Failure> {
    let mut session = connect(global).await?;
    let result = session
        .batch(requests, options, request_options(global).as_ref())
        .await?;
    trace(global, &result.call);
    if global.json() {
        let items: Vec<Value> = result
            .responses
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
        for (i, r) in result.responses.iter().enumerate() {
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
                return stopped(stop);
            }
        }
    }
    // Every answer is printed; a part that failed still fails the command,
    // so a script never takes a partial batch for a success.
    let failed = result.responses.iter().filter(|r| r.status >= 400).count();
    if failed > 0 {
        return Err(Failure {
            code: exit::DATAVERSE,
            message: format!(
                "{failed} of {} batch requests failed (their answers are above)",
                result.responses.len()
            ),
            detail: None,
            error: None,
        });
    }
    Ok(())
}

/// The batch file: a JSON array of {"method", "url", "headers"?, "body"?}.
fn batch_requests(text: &str) -> Result<Vec<BatchRequest>, Failure> {
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
            Ok(BatchRequest {
                method,
                url,
                headers,
                body,
            })
        })
        .collect()
}

async fn send(
    global: &Global,
    method: Method,
    path: String,
    data: Option<String>,
) -> Result<(), Failure> {
    let body = data.as_deref().map(data_json).transpose()?;
    let headers = if body.is_some() {
        vec![("Content-Type".to_string(), "application/json".to_string())]
    } else {
        Vec::new()
    };
    let request = WebRequest {
        method,
        path,
        headers,
        body: body.map(String::into_bytes),
    };
    let mut session = connect(global).await?;
    let response = session
        .send(&request, request_options(global).as_ref())
        .await?;
    trace(global, &response.call);
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if global.json() {
        let body = serde_json::from_str::<Value>(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        return output::line(&json!({ "status": response.status, "body": body }).to_string());
    }
    output::line(&format!("HTTP {}", response.status))?;
    if text.is_empty() {
        return Ok(());
    }
    output::document(global.output(), &text)
}

async fn token(global: &Global, show_token: bool) -> Result<(), Failure> {
    let mut session = connect(global).await?;
    let info = session.token_info().await?;
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
    if global.json() {
        // Scripts get the number too; a fresh process has no token cache,
        // so "from cache" would always read true and say nothing.
        fields.push(("expires_at_unix", json!(info.expires_at)));
    }
    if show_token {
        fields.push(("access_token", json!(session.access_token().await?)));
    }
    output::fields(global.output(), &fields)
}

fn profile(global: &Global, command: ProfileCommand) -> Result<(), Failure> {
    use crate::connection::{Process, load_config, masked};
    let (path, config) = load_config(&Process).map_err(Failure::usage)?;
    match command {
        ProfileCommand::List => {
            let rows: Vec<(String, Value)> = config
                .profiles
                .iter()
                .map(|(name, profile)| {
                    let default = config.default.as_deref() == Some(name.as_str());
                    let url = crate::connection::url_of(&profile.connection);
                    (name.clone(), json!({ "default": default, "url": url }))
                })
                .collect();
            if global.json() {
                let object: serde_json::Map<String, Value> = rows.into_iter().collect();
                return output::line(&json!({ "config": path, "profiles": object }).to_string());
            }
            if rows.is_empty() {
                eprintln!(
                    "no profiles ({})",
                    path.map_or("no config file".into(), |p| p.display().to_string())
                );
                return Ok(());
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
            output::line(&text.join("\n"))
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
                global.output(),
                &[
                    ("profile", json!(name)),
                    (
                        "default",
                        json!(config.default.as_deref() == Some(name.as_str())),
                    ),
                    ("connection", json!(masked(&profile.connection))),
                ],
            )
        }
    }
}
