//! One function per CLI command: read the arguments, make the call, print.

use std::io::{IsTerminal, Read, Write};
use std::ops::ControlFlow;

use dataverse_fake::{self as fake, Fake};
use dataverse_host::session::{
    BatchOptions, BatchRequest, CallInfo, EntityRef, Method, Operation, OperationKind, Query,
    Session, WebRequest,
};
use serde_json::Value;

use crate::args::Args;
use crate::{Failure, connect, demo_session, request_options};

pub async fn run(args: &Args) -> Result<(), Failure> {
    let Some(command) = args.positional.first() else {
        return Err(Failure::usage("no command given"));
    };
    match command.as_str() {
        "demo" => demo(args).await,
        "whoami" => whoami(args).await,
        "query" => query(args).await,
        "get" => get(args).await,
        "create" => create(args).await,
        "update" => update(args).await,
        "upsert" => upsert(args).await,
        "delete" => delete(args).await,
        "associate" => associate(args).await,
        "disassociate" => disassociate(args).await,
        "fetchxml" => fetchxml(args).await,
        "execute" => execute(args).await,
        "batch" => batch(args).await,
        "send" => send(args).await,
        "token" => token(args).await,
        "fake-server" => fake_server(args).await,
        "bench" => crate::bench::run(args).await,
        "bench-auth" => crate::bench::auth(args).await,
        "serve" => crate::serve::serve(args).await,
        other => Err(Failure::usage(format!("unknown command '{other}'"))),
    }
}

fn json_mode(args: &Args) -> bool {
    args.switch("--json")
}

/// With -v, says which request id and how many attempts a call took.
fn trace(args: &Args, call: &CallInfo) {
    if args.switch("-v") || args.switch("--verbose") {
        eprintln!(
            "(client request id {}, {} attempt{})",
            call.client_request_id,
            call.attempts,
            plural(call.attempts)
        );
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn print_json(value: &Value) {
    println!("{value}");
}

/// Pretty JSON for people, compact JSON with --json.
fn print_document(args: &Args, text: &str) {
    match serde_json::from_str::<Value>(text) {
        Ok(value) if !json_mode(args) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_string())
            )
        }
        _ => println!("{text}"),
    }
}

/// `--data`: inline JSON, `@FILE`, or `-` for standard input.
fn data(args: &Args, required: bool) -> Result<Option<String>, Failure> {
    let Some(value) = args.value("--data") else {
        return if required {
            Err(Failure::usage("--data JSON is required"))
        } else {
            Ok(None)
        };
    };
    let text = read_source(
        value.strip_prefix('@').unwrap_or(value),
        value.starts_with('@') || value == "-",
    )?;
    serde_json::from_str::<Value>(&text)
        .map_err(|e| Failure::usage(format!("--data is not valid JSON: {e}")))?;
    Ok(Some(text))
}

/// Reads a file, or standard input for `-`; `literal` false returns `source` itself.
fn read_source(source: &str, is_file: bool) -> Result<String, Failure> {
    if !is_file {
        return Ok(source.to_string());
    }
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("reading standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(source).map_err(|e| Failure::usage(format!("{source}: {e}")))
}

fn select(args: &Args) -> Vec<String> {
    args.value("--select")
        .map(|s| {
            s.split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

async fn demo(args: &Args) -> Result<(), Failure> {
    args.only("demo", &[])?;
    let fake = Fake::demo();
    let mut session = demo_session(args, fake.clone()).await?;
    let who = session.who_am_i(None).await?;
    let query = Query::new("accounts").select(["name"]).top(3);
    let page = session.retrieve_multiple(&query, None).await?;
    let rows: Vec<Value> = serde_json::from_str(&page.rows).map_err(Failure::host)?;
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    if json_mode(args) {
        print_json(&serde_json::json!({
            "UserId": who.user_id, "BusinessUnitId": who.business_unit_id,
            "OrganizationId": who.organization_id, "accounts": names,
        }));
        return Ok(());
    }
    println!(
        "dataverse-wasm demo: the component in wasmtime, against the built-in fake Entra ID + Dataverse"
    );
    println!("WhoAmI");
    println!("  UserId:         {}", who.user_id);
    println!("  BusinessUnitId: {}", who.business_unit_id);
    println!("  OrganizationId: {}", who.organization_id);
    println!("First {} accounts", names.len());
    for name in names {
        println!("  {name}");
    }
    let stats = fake.stats();
    println!(
        "({} discovery request, {} token request, {} Web API requests)",
        stats.discovery_requests, stats.token_requests, stats.api_requests
    );
    Ok(())
}

async fn whoami(args: &Args) -> Result<(), Failure> {
    args.only("whoami", &[])?;
    args.positionals::<0>("whoami")?;
    let mut session = connect(args).await?;
    let who = session.who_am_i(request_options(args)?.as_ref()).await?;
    trace(args, &who.call);
    if json_mode(args) {
        print_json(&serde_json::json!({
            "UserId": who.user_id, "BusinessUnitId": who.business_unit_id, "OrganizationId": who.organization_id,
        }));
    } else {
        println!("UserId:         {}", who.user_id);
        println!("BusinessUnitId: {}", who.business_unit_id);
        println!("OrganizationId: {}", who.organization_id);
    }
    Ok(())
}

async fn query(args: &Args) -> Result<(), Failure> {
    args.only(
        "query",
        &[
            "--select",
            "--filter",
            "--orderby",
            "--expand",
            "--apply",
            "--top",
            "--page-size",
            "--count",
            "--all",
            "--max-rows",
        ],
    )?;
    let [entity_set] = args.positionals::<1>("query ENTITYSET [OPTIONS]")?;
    let query = Query {
        entity_set: entity_set.to_string(),
        select: select(args),
        filter: args.value("--filter").map(str::to_string),
        orderby: args.value("--orderby").map(str::to_string),
        expand: args.value("--expand").map(str::to_string),
        apply: args.value("--apply").map(str::to_string),
        top: args.number("--top")?,
        page_size: args.number("--page-size")?,
        count: args.switch("--count"),
    };
    let options = request_options(args)?;
    let mut session = connect(args).await?;
    let json = json_mode(args);
    let mut out = std::io::stdout().lock();
    let mut written = 0u64;
    let mut write_rows = |rows: &str| -> Result<(), Stop> {
        let rows: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(rows).map_err(|e| Stop::Failed(Failure::host(e)))?;
        for row in rows {
            let separator = if json && written > 0 { "," } else { "" };
            let newline = if json { "" } else { "\n" };
            wrote(write!(out, "{separator}{}{newline}", row.get()))?;
            written += 1;
        }
        Ok(())
    };
    if json {
        print!("{{\"value\":[");
    }
    if args.switch("--all") {
        let max_rows = args.number("--max-rows")?.unwrap_or(u64::MAX);
        let progress = std::io::stderr().is_terminal() && !json;
        let mut total = None;
        let mut stop = None;
        let mut rows_so_far = 0u64;
        session
            .read_all(&query, max_rows, options.as_ref(), |page| {
                total = total.or(page.total_count);
                if let Err(why) = write_rows(&page.rows) {
                    // No further page is asked for.
                    stop = Some(why);
                    return ControlFlow::Break(());
                }
                rows_so_far += u64::from(page.row_count);
                if progress {
                    eprint!("\r{rows_so_far} rows");
                }
                ControlFlow::Continue(())
            })
            .await?;
        if let Some(stop) = stop {
            return stopped(stop);
        }
        if progress {
            eprintln!();
        }
        finish_rows(json, total, None, written);
    } else {
        let page = session.retrieve_multiple(&query, options.as_ref()).await?;
        trace(args, &page.call);
        if let Err(stop) = write_rows(&page.rows) {
            return stopped(stop);
        }
        finish_rows(json, page.total_count, page.next_link, written);
    }
    Ok(())
}

fn finish_rows(json: bool, total: Option<i64>, next_link: Option<String>, rows: u64) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = write!(out, "]");
        if let Some(count) = total {
            let _ = write!(out, ",\"@odata.count\":{count}");
        }
        if let Some(link) = next_link {
            let _ = write!(out, ",\"@odata.nextLink\":{}", Value::String(link));
        }
        let _ = writeln!(out, "}}");
    } else {
        if let Some(count) = total {
            eprintln!("total count: {count}");
        }
        if next_link.is_some() {
            eprintln!("(more rows: pass --all to follow every page)");
        }
        eprintln!("{rows} rows");
    }
    let _ = out.flush();
}

/// Why the rows stopped going out: whoever read them went away (`| head`),
/// or a row could not be written.
enum Stop {
    Closed,
    Failed(Failure),
}

/// A write to stdout: a closed pipe stops the command, it is not an error.
fn wrote(result: std::io::Result<()>) -> Result<(), Stop> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Stop::Closed),
        Err(e) => Err(Stop::Failed(Failure::host(format!(
            "writing the rows: {e}"
        )))),
    }
}

/// A closed stdout ends the command quietly and successfully, as `head`
/// expects of what it reads from; anything else is the failure.
fn stopped(stop: Stop) -> Result<(), Failure> {
    match stop {
        Stop::Closed => Ok(()),
        Stop::Failed(failure) => Err(failure),
    }
}

async fn get(args: &Args) -> Result<(), Failure> {
    args.only("get", &["--select", "--expand"])?;
    let [entity_set, key] =
        args.positionals::<2>("get ENTITYSET KEY [--select a,b] [--expand EXPR]")?;
    let mut session = connect(args).await?;
    let row = session
        .retrieve(
            &EntityRef::new(entity_set, key),
            &select(args),
            args.value("--expand"),
            request_options(args)?.as_ref(),
        )
        .await?;
    trace(args, &row.call);
    print_document(args, &row.json);
    Ok(())
}

async fn create(args: &Args) -> Result<(), Failure> {
    args.only("create", &["--data", "--return"])?;
    let [entity_set] = args.positionals::<1>("create ENTITYSET --data JSON")?;
    let body = data(args, true)?.unwrap_or_default();
    let mut session = connect(args).await?;
    let created = session
        .create(entity_set, &body, request_options(args)?.as_ref())
        .await?;
    trace(args, &created.call);
    if json_mode(args) {
        let row = created
            .json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Value>(j).ok());
        print_json(&serde_json::json!({ "id": created.id, "row": row }));
    } else {
        match (&created.id, &created.json) {
            (_, Some(json)) if args.switch("--return") => print_document(args, json),
            (Some(id), _) => println!("{id}"),
            (None, _) => println!("created"),
        }
    }
    Ok(())
}

fn print_written(args: &Args, verb: &str, json: Option<String>) {
    match json {
        Some(json) => print_document(args, &json),
        None if json_mode(args) => print_json(&serde_json::json!({ "ok": true })),
        None => println!("{verb}"),
    }
}

async fn update(args: &Args) -> Result<(), Failure> {
    args.only("update", &["--data", "--if-match", "--return"])?;
    let [entity_set, key] =
        args.positionals::<2>("update ENTITYSET KEY --data JSON [--if-match ETAG]")?;
    let body = data(args, true)?.unwrap_or_default();
    let mut session = connect(args).await?;
    let written = session
        .update(
            &EntityRef::new(entity_set, key),
            &body,
            args.value("--if-match"),
            request_options(args)?.as_ref(),
        )
        .await?;
    trace(args, &written.call);
    print_written(args, "updated", written.json);
    Ok(())
}

async fn upsert(args: &Args) -> Result<(), Failure> {
    args.only("upsert", &["--data", "--create-only", "--return"])?;
    let [entity_set, key] =
        args.positionals::<2>("upsert ENTITYSET KEY --data JSON [--create-only]")?;
    let body = data(args, true)?.unwrap_or_default();
    let mut session = connect(args).await?;
    let written = session
        .upsert(
            &EntityRef::new(entity_set, key),
            &body,
            args.switch("--create-only"),
            request_options(args)?.as_ref(),
        )
        .await?;
    trace(args, &written.call);
    print_written(args, "upserted", written.json);
    Ok(())
}

async fn delete(args: &Args) -> Result<(), Failure> {
    args.only("delete", &["--if-match"])?;
    let [entity_set, key] = args.positionals::<2>("delete ENTITYSET KEY [--if-match ETAG]")?;
    let mut session = connect(args).await?;
    let call = session
        .delete(
            &EntityRef::new(entity_set, key),
            args.value("--if-match"),
            request_options(args)?.as_ref(),
        )
        .await?;
    trace(args, &call);
    print_written(args, "deleted", None);
    Ok(())
}

async fn associate(args: &Args) -> Result<(), Failure> {
    args.only("associate", &[])?;
    let [set, key, nav, target_set, target_key] =
        args.positionals::<5>("associate ENTITYSET KEY NAVPROP TARGETSET TARGETKEY")?;
    let mut session = connect(args).await?;
    let call = session
        .associate(
            &EntityRef::new(set, key),
            nav,
            &EntityRef::new(target_set, target_key),
            request_options(args)?.as_ref(),
        )
        .await?;
    trace(args, &call);
    print_written(args, "associated", None);
    Ok(())
}

async fn disassociate(args: &Args) -> Result<(), Failure> {
    args.only("disassociate", &[])?;
    let words: Vec<&str> = args.positional.iter().skip(1).map(String::as_str).collect();
    let (set, key, nav, target) = match words[..] {
        [set, key, nav] => (set, key, nav, None),
        [set, key, nav, target_set, target_key] => (
            set,
            key,
            nav,
            Some(EntityRef {
                entity_set: target_set.into(),
                key: target_key.into(),
            }),
        ),
        _ => {
            return Err(Failure::usage(
                "usage: host-test disassociate ENTITYSET KEY NAVPROP [TARGETSET TARGETKEY]",
            ));
        }
    };
    let mut session = connect(args).await?;
    let call = session
        .disassociate(
            &EntityRef::new(set, key),
            nav,
            target.as_ref(),
            request_options(args)?.as_ref(),
        )
        .await?;
    trace(args, &call);
    print_written(args, "disassociated", None);
    Ok(())
}

async fn fetchxml(args: &Args) -> Result<(), Failure> {
    args.only("fetchxml", &["--all", "--max-rows"])?;
    let [entity_set, source] = args.positionals::<2>("fetchxml ENTITYSET FILE|-")?;
    let fetch = read_source(source, true)?;
    let options = request_options(args)?;
    let mut session = connect(args).await?;
    let json = json_mode(args);
    let mut rows_out = Vec::<Value>::new();
    let mut out = std::io::stdout().lock();
    let mut emit = |rows: &str| -> Result<(), Stop> {
        let rows: Vec<Value> =
            serde_json::from_str(rows).map_err(|e| Stop::Failed(Failure::host(e)))?;
        for row in rows {
            if json {
                rows_out.push(row);
            } else {
                wrote(writeln!(out, "{row}"))?;
            }
        }
        Ok(())
    };
    if args.switch("--all") {
        // The component follows the paging cookies (and refuses a cookie
        // that does not advance), so this loop cannot spin.
        let max_rows = args.number("--max-rows")?.unwrap_or(u64::MAX);
        let mut stop = None;
        let read = session
            .read_all_fetch_xml(entity_set, &fetch, max_rows, options.as_ref(), |page| {
                trace(args, &page.call);
                match emit(&page.rows) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(why) => {
                        stop = Some(why);
                        ControlFlow::Break(())
                    }
                }
            })
            .await;
        if let Some(stop) = stop {
            return stopped(stop);
        }
        read?;
    } else {
        let page = session
            .fetch_xml(entity_set, &fetch, 1, None, options.as_ref())
            .await?;
        trace(args, &page.call);
        if let Err(stop) = emit(&page.rows) {
            return stopped(stop);
        }
        if page.more_records && !json {
            eprintln!("(more records: pass --all to read every page)");
        }
    }
    if json {
        print_json(&serde_json::json!({ "value": rows_out }));
    }
    Ok(())
}

async fn execute(args: &Args) -> Result<(), Failure> {
    args.only("execute", &["--bound", "--data", "--action", "--function"])?;
    let [name] = args.positionals::<1>(
        "execute NAME [--bound ENTITYSET KEY] [--data JSON] [--action|--function]",
    )?;
    let parameters = data(args, false)?;
    let kind = match (args.switch("--action"), args.switch("--function")) {
        (true, true) => return Err(Failure::usage("--action and --function exclude each other")),
        (true, false) => OperationKind::Action,
        (false, true) => OperationKind::Function,
        (false, false) if parameters.is_some() => OperationKind::Action,
        (false, false) => OperationKind::Function,
    };
    let bound = args.values_of("--bound").map(|v| EntityRef {
        entity_set: v[0].clone(),
        key: v[1].clone(),
    });
    let operation = Operation {
        name: name.to_string(),
        kind,
        bound,
        parameters,
    };
    let mut session = connect(args).await?;
    let result = session
        .execute(&operation, request_options(args)?.as_ref())
        .await?;
    trace(args, &result.call);
    match result.json {
        Some(json) => print_document(args, &json),
        None if json_mode(args) => print_json(&serde_json::json!({ "status": result.status })),
        None => println!("done (HTTP {})", result.status),
    }
    Ok(())
}

async fn batch(args: &Args) -> Result<(), Failure> {
    args.only("batch", &["--changeset", "--continue-on-error"])?;
    let [source] = args.positionals::<1>("batch FILE|- [--changeset] [--continue-on-error]")?;
    let text = read_source(source, true)?;
    let requests = batch_requests(&text)?;
    let mut session = connect(args).await?;
    let options = BatchOptions {
        change_set: args.switch("--changeset"),
        continue_on_error: args.switch("--continue-on-error"),
    };
    let result = session
        .batch(&requests, options, request_options(args)?.as_ref())
        .await?;
    trace(args, &result.call);
    if json_mode(args) {
        let items: Vec<Value> = result
            .responses
            .iter()
            .map(|r| {
                let body =
                    serde_json::from_str::<Value>(&r.body).unwrap_or(Value::String(r.body.clone()));
                serde_json::json!({ "contentId": r.content_id, "status": r.status, "body": body })
            })
            .collect();
        print_json(&Value::Array(items));
    } else {
        for (i, r) in result.responses.iter().enumerate() {
            let id = r
                .content_id
                .as_deref()
                .map(|c| format!(" (Content-ID {c})"))
                .unwrap_or_default();
            println!(
                "{}: HTTP {}{id}{}",
                i + 1,
                r.status,
                if r.body.is_empty() {
                    String::new()
                } else {
                    format!(" {}", r.body)
                }
            );
        }
    }
    // Every answer is printed; a part that failed still fails the command,
    // so a script never takes a partial batch for a success.
    let failed = result.responses.iter().filter(|r| r.status >= 400).count();
    if failed > 0 {
        return Err(Failure {
            code: crate::EXIT_DATAVERSE,
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

async fn send(args: &Args) -> Result<(), Failure> {
    args.only("send", &["--data"])?;
    let [method, path] = args.positionals::<2>("send METHOD PATH [--data JSON]")?;
    let body = data(args, false)?;
    let headers = if body.is_some() {
        vec![("Content-Type".to_string(), "application/json".to_string())]
    } else {
        Vec::new()
    };
    let method = method.parse::<Method>().map_err(Failure::usage)?;
    let request = WebRequest {
        method,
        path: path.to_string(),
        headers,
        body: body.map(String::into_bytes),
    };
    let mut session = connect(args).await?;
    let response = session
        .send(&request, request_options(args)?.as_ref())
        .await?;
    trace(args, &response.call);
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if json_mode(args) {
        let body = serde_json::from_str::<Value>(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        print_json(&serde_json::json!({ "status": response.status, "body": body }));
    } else {
        println!("HTTP {}", response.status);
        if !text.is_empty() {
            print_document(args, &text);
        }
    }
    Ok(())
}

async fn token(args: &Args) -> Result<(), Failure> {
    args.only("token", &["--show-token"])?;
    args.positionals::<0>("token")?;
    let mut session: Session = connect(args).await?;
    let info = session.token_info().await?;
    let mut json = serde_json::json!({
        "expires_at": info.expires_at, "authority": info.authority, "tenant_id": info.tenant_id,
        "client_id": info.client_id, "scope": info.scope, "from_cache": info.from_cache,
    });
    if args.switch("--show-token") {
        json["access_token"] = Value::String(session.access_token().await?);
    }
    if json_mode(args) {
        print_json(&json);
    } else {
        for (key, value) in json.as_object().into_iter().flatten() {
            match value.as_str() {
                Some(text) => println!("{key:<11} {text}"),
                None => println!("{key:<11} {value}"),
            }
        }
    }
    Ok(())
}

/// Serves the fake on loopback TLS, writing its CA to a temporary file, and
/// prints the flags that point the CLI at it.
async fn fake_server(args: &Args) -> Result<(), Failure> {
    args.only("fake-server", &["--seconds"])?;
    let seconds = args.number("--seconds")?.unwrap_or(600u64);
    let server = fake::serve_tls(Fake::demo()).await.map_err(Failure::host)?;
    let port = server.addr.port();
    let ca_path = std::env::temp_dir().join(format!("dataverse-fake-ca-{port}.pem"));
    std::fs::write(&ca_path, &server.ca_pem).map_err(Failure::host)?;
    println!("fake Entra ID + Dataverse on https://127.0.0.1:{port} for {seconds} s");
    println!(
        "try: DATAVERSE_CONNECTION='{}' host-test --connect-to {}:443:127.0.0.1:{port} --connect-to {}:443:127.0.0.1:{port} --cacert {} whoami",
        fake::demo_connection_string(),
        fake::ORG_HOST,
        fake::LOGIN_HOST,
        ca_path.display()
    );
    let _ = std::io::stdout().flush();
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    drop(server);
    let _ = std::fs::remove_file(ca_path);
    Ok(())
}
