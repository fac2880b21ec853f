//! Table rows over the Web API: retrieve (single and paged), create,
//! update/upsert with Dataverse's conditional semantics, delete, and single
//! property access. Rows are rendered here (columns, etag, annotations,
//! `$expand`) for every other module that returns rows.

use super::context::{Ctx, MAX_PAGE_SIZE};
use super::odata::{self, QueryOptions};
use super::path::{self, Key};
use super::render::{context_url, render};
use super::reply::{
    Body, DvError, Reply, bad_request, method_not_allowed, prefer, preference_applied,
};
use super::table::{ColumnType, Record, Table, Tables};
use crate::State;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Map, Value, json};

// ---- keys, errors and conditional headers ----------------------------------

pub(crate) fn not_found(table: &Table, key: &Key) -> DvError {
    match key {
        Key::Id(id) => DvError::new(
            StatusCode::NOT_FOUND,
            "0x80040217",
            format!("{} With Id = {id} Does Not Exist", table.logical_name),
        ),
        // Dataverse words an alternate-key miss differently, with its own code.
        Key::Alternate(_) => DvError::new(
            StatusCode::NOT_FOUND,
            "0x80060891",
            format!(
                "A record with the specified key values does not exist in {} entity",
                table.logical_name
            ),
        ),
    }
}

pub(crate) fn position(table: &Table, key: &Key) -> Option<usize> {
    match key {
        Key::Id(id) => table.position(id),
        Key::Alternate(pairs)
            if pairs.len() == table.alternate_key.len()
                && pairs
                    .iter()
                    .all(|(c, _)| table.alternate_key.contains(&c.as_str())) =>
        {
            let fields: Map<String, Value> = pairs.iter().cloned().collect();
            table.position_by_key(&fields)
        }
        Key::Alternate(pairs) => table.rows.iter().position(|r| {
            pairs
                .iter()
                .all(|(c, v)| odata::compare_values(r.get(c), v).is_eq())
        }),
    }
}

/// The index of the row `raw_key` names, or Dataverse's 404.
pub(crate) fn locate(table: &Table, raw_key: &str) -> Result<usize, DvError> {
    let key = path::parse_key(table, raw_key)?;
    position(table, &key).ok_or_else(|| not_found(table, &key))
}

fn header(req: &Request<Bytes>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

fn if_match(req: &Request<Bytes>) -> Option<String> {
    header(req, "if-match")
}

/// `If-None-Match`, ignoring the `null` Dataverse's own samples always send.
fn if_none_match(req: &Request<Bytes>) -> Option<String> {
    header(req, "if-none-match").filter(|v| !v.eq_ignore_ascii_case("null"))
}

/// `*`, or any listed etag equal to the row's (weak or strong form).
fn etag_matches(condition: &str, record: &Record) -> bool {
    let current = format!("\"{}\"", record.version);
    condition
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == current)
}

fn version_mismatch() -> DvError {
    DvError::new(
        StatusCode::PRECONDITION_FAILED,
        "0x80060882",
        "The version of the existing record doesn't match the RowVersion property provided.",
    )
}

fn already_exists() -> DvError {
    DvError::new(
        StatusCode::PRECONDITION_FAILED,
        "0x80040237",
        "A record with matching key values already exists.",
    )
}

fn with_context(mut row: Map<String, Value>, context: String) -> Value {
    row.insert("@odata.context".into(), Value::String(context));
    Value::Object(row)
}

// ---- retrieve ----------------------------------------------------------------

/// Restricts a collection to the rows related to one parent row (for
/// `GET accounts(id)/contact_customer_accounts`).
pub(crate) struct Scope {
    /// The path below the service root that `@odata.nextLink` repeats.
    pub(crate) path: String,
    pub(crate) column: &'static str,
    pub(crate) id: String,
}

/// GET on an entity set: filter, order, then serve one page. Paging resumes
/// after the skiptoken's last primary key, and `$top` bounds the total across
/// pages (a row's position in the ordered result is how many came before it).
pub(crate) fn retrieve_multiple(
    ctx: &Ctx,
    state: &State,
    req: &Request<Bytes>,
    set: &str,
    scope: Option<Scope>,
) -> Result<Reply, DvError> {
    let table = &state.tables[set];
    let query = odata::parse(req.uri().query(), table).map_err(bad_request)?;
    let prefer = prefer(req);
    let mut rows: Vec<&Record> = table
        .rows
        .iter()
        .filter(|r| {
            scope.as_ref().is_none_or(|s| {
                r.get(s.column)
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(&s.id))
            })
        })
        .filter(|r| query.filter.as_ref().is_none_or(|f| f.matches(r)))
        // A delta link's read: the rows written after its token.
        .filter(|r| query.deltatoken.is_none_or(|since| r.version > since))
        .collect();
    odata::sort(&mut rows, &query.orderby);
    let tracking = prefer.track_changes || query.deltatoken.is_some();
    let id_of = |r: &Record| r.id(table.primary_key);

    let (start, page_number) = match &query.skiptoken {
        // A vanished row would end the paging early; the fake's data is static
        // between pages, so this only happens with a forged token.
        Some(token) => (
            rows.iter()
                .position(|r| id_of(r) == token.last_id)
                .map_or(rows.len(), |p| p + 1),
            token.page_number,
        ),
        None => (0, 1),
    };
    let end = query.top.map_or(rows.len(), |top| top.min(rows.len()));
    let available = end.saturating_sub(start);
    let requested = prefer.max_page_size.map(|n| n.min(MAX_PAGE_SIZE));
    let page = &rows[start..start + available.min(requested.unwrap_or(MAX_PAGE_SIZE))];

    let mut body = Map::new();
    let select = query.select.as_deref();
    let context = context_url(&ctx.base, set, table, select, &query.expand);
    body.insert(
        "@odata.context".into(),
        Value::String(if tracking {
            format!("{context}/$delta")
        } else {
            context
        }),
    );
    if query.count {
        body.insert("@odata.count".into(), json!(rows.len().min(MAX_PAGE_SIZE)));
    }
    let values = page
        .iter()
        .map(|r| render(&state.tables, table, r, select, &query.expand, &prefer).map(Value::Object))
        .collect::<Result<Vec<_>, _>>()?;
    let mut values = values;
    let last_page = available <= page.len();
    if last_page && let Some(since) = query.deltatoken {
        // Rows deleted since the token, as Dataverse reports them.
        values.extend(
            state
                .tombstones
                .iter()
                .filter(|(s, _, version)| *s == set && *version > since)
                .map(|(_, id, _)| {
                    json!({
                        "@odata.context": format!("{}/$metadata#{set}/$deletedEntity", ctx.base),
                        "id": id,
                        "reason": "deleted",
                    })
                }),
        );
    }
    body.insert("value".into(), Value::Array(values));
    if last_page && tracking {
        let mut options: Vec<String> = query
            .passthrough
            .iter()
            .filter(|o| !o.starts_with("$deltatoken="))
            .cloned()
            .collect();
        options.push(format!("$deltatoken={}", odata::deltatoken(state.version)));
        let path = scope.as_ref().map_or(set, |s| s.path.as_str());
        body.insert(
            "@odata.deltaLink".into(),
            Value::String(format!("{}/{path}?{}", ctx.base, options.join("&"))),
        );
    }
    if available > page.len() {
        let (first, last) = (id_of(page[0]), id_of(page[page.len() - 1]));
        let mut options = query.passthrough.clone();
        options.push(format!(
            "$skiptoken={}",
            odata::skiptoken(page_number, table.primary_key, &first, &last)
        ));
        let path = scope.as_ref().map_or(set, |s| s.path.as_str());
        body.insert(
            "@odata.nextLink".into(),
            Value::String(format!("{}/{path}?{}", ctx.base, options.join("&"))),
        );
    }
    let mut applied: Vec<String> = prefer.applied_annotations().into_iter().collect();
    if let Some(n) = requested {
        applied.push(format!("odata.maxpagesize={n}"));
    }
    if prefer.track_changes {
        applied.push("odata.track-changes".into());
    }
    Ok(preference_applied(
        Reply::json(Value::Object(body)),
        &applied,
    ))
}

/// GET on `set(key)`; `If-None-Match` with the current etag gives 304, unless
/// the answer depends on other rows (`$expand`, annotations), as documented.
pub(crate) fn retrieve(
    ctx: &Ctx,
    state: &State,
    req: &Request<Bytes>,
    set: &str,
    raw_key: &str,
) -> Result<Reply, DvError> {
    let table = &state.tables[set];
    let query = odata::parse(req.uri().query(), table).map_err(bad_request)?;
    let prefer = prefer(req);
    let record = &table.rows[locate(table, raw_key)?];
    if let Some(condition) = if_none_match(req)
        && condition != "*"
        && etag_matches(&condition, record)
        && query.expand.is_empty()
        && prefer.include_annotations.is_none()
    {
        return Ok(Reply::with_status(StatusCode::NOT_MODIFIED, Body::None));
    }
    let row = render(
        &state.tables,
        table,
        record,
        query.select.as_deref(),
        &query.expand,
        &prefer,
    )?;
    let context = context_url(
        &ctx.base,
        set,
        table,
        query.select.as_deref(),
        &query.expand,
    );
    let applied: Vec<String> = prefer.applied_annotations().into_iter().collect();
    Ok(preference_applied(
        Reply::json(with_context(row, format!("{context}/$entity"))),
        &applied,
    ))
}

// ---- writes ------------------------------------------------------------------

/// The request body as a JSON object, or Dataverse's payload error.
pub(crate) fn json_body(req: &Request<Bytes>) -> Result<Map<String, Value>, DvError> {
    match serde_json::from_slice(req.body()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DvError::new(
            StatusCode::BAD_REQUEST,
            "0x80048d19",
            "Error identified in Payload provided by the user for Entity :'', The request body must be a JSON object.",
        )),
    }
}

pub(crate) fn invalid_property(name: &str, table: &Table) -> DvError {
    DvError::new(
        StatusCode::BAD_REQUEST,
        "0x80048d19",
        format!(
            "Invalid property '{name}' was found in entity 'Microsoft.Dynamics.CRM.{}'.",
            table.logical_name
        ),
    )
}

/// A value for `column`, type-checked like Dataverse's OData layer does.
pub(crate) fn column_value(table: &Table, column: &str, value: &Value) -> Result<Value, DvError> {
    let Some(column_type) = table.column_type(column) else {
        return Err(invalid_property(column, table));
    };
    let converted = match (column_type, value) {
        (_, Value::Null) => Some(Value::Null),
        (ColumnType::String, Value::String(_)) => Some(value.clone()),
        (ColumnType::Guid, Value::String(s)) => path::guid(s).map(Value::String),
        (ColumnType::Money, Value::Number(n)) => n.as_f64().map(|f| json!(f)),
        _ => None,
    };
    converted.ok_or_else(|| conversion_error(value, column_type))
}

fn conversion_error(value: &Value, column_type: ColumnType) -> DvError {
    DvError::new(
        StatusCode::BAD_REQUEST,
        "0x80048d19",
        format!(
            "Cannot convert the literal '{value}' to the expected type '{}'.",
            column_type.edm_name()
        ),
    )
}

/// Applies a create/update payload to `fields`: columns (type-checked) and
/// `nav@odata.bind` lookups (the target must exist). Instance annotations
/// such as `@odata.type` are ignored; anything else is an invalid property.
pub(crate) fn apply_body(
    ctx: &Ctx,
    tables: &Tables,
    table: &Table,
    fields: &mut Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<(), DvError> {
    for (name, value) in body {
        if let Some(navigation) = name.strip_suffix("@odata.bind") {
            let lookup = table
                .lookup_by_navigation(navigation)
                .ok_or_else(|| invalid_property(navigation, table))?;
            let target = match value {
                Value::Null => Value::Null,
                Value::String(reference) => {
                    let id = resolve_reference(ctx, tables, lookup.target_set, reference)?;
                    Value::String(id)
                }
                _ => return Err(bad_request(format!("The value of '{name}' must be a URI."))),
            };
            fields.insert(lookup.column.into(), target);
        } else if name.contains('@') || name == table.primary_key {
            continue;
        } else if table.lookup_by_navigation(name).is_some() || table.collection(name).is_some() {
            return Err(bad_request(format!(
                "The fake Dataverse does not support deep insert ('{name}'); use '{name}@odata.bind'."
            )));
        } else if table.lookup_by_column(name).is_some() {
            // `_x_value` is read-only: lookups are set through the navigation property.
            return Err(invalid_property(name, table));
        } else {
            fields.insert(name.clone(), column_value(table, name, value)?);
        }
    }
    Ok(())
}

/// The id of the row an entity reference names, checking its entity set.
pub(crate) fn resolve_reference(
    ctx: &Ctx,
    tables: &Tables,
    expected_set: &str,
    reference: &str,
) -> Result<String, DvError> {
    let (set, key) = path::entity_reference(ctx, reference)?;
    if set != expected_set {
        return Err(bad_request(format!(
            "The entity reference '{reference}' does not point to the '{expected_set}' entity set."
        )));
    }
    let target = &tables[expected_set];
    let i = locate(target, &key)?;
    Ok(target.rows[i].id(target.primary_key))
}

/// Alternate keys are unique: a write that would duplicate one fails.
fn check_alternate_key(
    table: &Table,
    fields: &Map<String, Value>,
    skip: Option<usize>,
) -> Result<(), DvError> {
    let clash = table
        .position_by_key(fields)
        .is_some_and(|i| Some(i) != skip);
    if clash {
        return Err(DvError::new(
            StatusCode::PRECONDITION_FAILED,
            "0x80040237",
            format!(
                "A record that has the attribute values {} already exists. The entity key {}_key requires that this set of attributes contains unique values. Select unique values and try again.",
                table.alternate_key.join(", "),
                table.logical_name
            ),
        ));
    }
    Ok(())
}

/// Every column, null: the starting point of a new row.
fn empty_fields(table: &Table) -> Map<String, Value> {
    table
        .columns
        .iter()
        .map(|(c, _)| (c.to_string(), Value::Null))
        .collect()
}

/// Adds a new row; the caller has checked its key is free.
fn insert(state: &mut State, set: &str, fields: Map<String, Value>) {
    let version = state.next_version();
    let table = state.tables.get_mut(set).expect("routed to a known set");
    let mut record = Record { fields, version };
    table.derive(&mut record);
    table.push(record);
}

/// The answer to a successful write: 204 + `OData-EntityId`, or with
/// `return=representation` the row (201 when created, 200 when updated) and
/// no `OData-EntityId`, as Dataverse documents.
fn written(
    ctx: &Ctx,
    state: &State,
    req: &Request<Bytes>,
    set: &str,
    id: &str,
    created: bool,
) -> Result<Reply, DvError> {
    let table = &state.tables[set];
    let url = ctx.entity_url(set, id);
    let prefer = prefer(req);
    let mut reply = if prefer.return_representation {
        let query = odata::parse(req.uri().query(), table).map_err(bad_request)?;
        let record = table.find(id).expect("just written");
        let select = query.select.as_deref();
        let row = render(&state.tables, table, record, select, &query.expand, &prefer)?;
        let context = context_url(&ctx.base, set, table, select, &query.expand);
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut applied = vec!["return=representation".to_string()];
        applied.extend(prefer.applied_annotations());
        preference_applied(
            Reply::with_status(
                status,
                Body::Json(with_context(row, format!("{context}/$entity"))),
            ),
            &applied,
        )
    } else {
        Reply::no_content().header("odata-entityid", url.clone())
    };
    reply.entity = Some(url);
    Ok(reply)
}

/// POST on an entity set.
pub(crate) fn create(
    ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
) -> Result<Reply, DvError> {
    let body = json_body(req)?;
    let id = create_row(ctx, state, set, &body)?;
    written(ctx, state, req, set, &id, true)
}

/// Adds the row `body` describes (with the primary key it names, or a new
/// one); its id.
pub(crate) fn create_row(
    ctx: &Ctx,
    state: &mut State,
    set: &str,
    body: &Map<String, Value>,
) -> Result<String, DvError> {
    let table = &state.tables[set];
    let id = match body.get(table.primary_key) {
        None | Some(Value::Null) => state.ids.guid(),
        Some(v) => v
            .as_str()
            .and_then(path::guid)
            .ok_or_else(|| conversion_error(v, ColumnType::Guid))?,
    };
    let mut fields = empty_fields(table);
    apply_body(ctx, &state.tables, table, &mut fields, body)?;
    fields.insert(table.primary_key.into(), Value::String(id.clone()));
    if table.position(&id).is_some() {
        return Err(already_exists());
    }
    check_alternate_key(table, &fields, None)?;
    insert(state, set, fields);
    Ok(id)
}

/// PATCH on `set(key)`: an upsert. `If-Match` (`*` or an etag) forbids the
/// create and checks the version; `If-None-Match: *` forbids the update.
pub(crate) fn upsert(
    ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
    raw_key: &str,
) -> Result<Reply, DvError> {
    let key = path::parse_key(&state.tables[set], raw_key)?;
    let body = json_body(req)?;
    let (id, created) = upsert_row(
        ctx,
        state,
        set,
        &key,
        &body,
        if_match(req).as_deref(),
        if_none_match(req).as_deref(),
    )?;
    written(ctx, state, req, set, &id, created)
}

/// Writes `body` to the row `key` names, creating it when there is none
/// (unless `if_match` says it must exist); its id and whether it was created.
pub(crate) fn upsert_row(
    ctx: &Ctx,
    state: &mut State,
    set: &str,
    key: &Key,
    body: &Map<String, Value>,
    if_match: Option<&str>,
    if_none_match: Option<&str>,
) -> Result<(String, bool), DvError> {
    let table = &state.tables[set];
    match position(table, key) {
        Some(i) => {
            if if_none_match == Some("*") {
                return Err(already_exists());
            }
            if let Some(condition) = if_match
                && !etag_matches(condition, &table.rows[i])
            {
                return Err(version_mismatch());
            }
            let mut fields = table.rows[i].fields.clone();
            apply_body(ctx, &state.tables, table, &mut fields, body)?;
            check_alternate_key(table, &fields, Some(i))?;
            let id = table.rows[i].id(table.primary_key);
            let version = state.next_version();
            let table = state.tables.get_mut(set).expect("routed to a known set");
            let mut record = Record { fields, version };
            table.derive(&mut record);
            table.replace(i, record);
            Ok((id, false))
        }
        None if if_match.is_some() => Err(not_found(table, key)),
        None => {
            let mut fields = empty_fields(table);
            let id = match key {
                Key::Id(id) => id.clone(),
                Key::Alternate(pairs) => {
                    for (column, value) in pairs {
                        fields.insert(column.clone(), value.clone());
                    }
                    state.ids.guid()
                }
            };
            let table = &state.tables[set];
            apply_body(ctx, &state.tables, table, &mut fields, body)?;
            fields.insert(table.primary_key.into(), Value::String(id.clone()));
            check_alternate_key(table, &fields, None)?;
            insert(state, set, fields);
            Ok((id, true))
        }
    }
}

/// DELETE on `set(key)`. Lookups pointing at the deleted row are cleared
/// (the fake models every relationship as "remove link").
pub(crate) fn delete(
    _ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
    raw_key: &str,
) -> Result<Reply, DvError> {
    let table = &state.tables[set];
    let i = locate(table, raw_key)?;
    if let Some(condition) = if_match(req)
        && !etag_matches(&condition, &table.rows[i])
    {
        return Err(version_mismatch());
    }
    let table = state.tables.get_mut(set).expect("routed to a known set");
    let id = table.remove(i).id(table.primary_key);
    let set_name = state
        .tables
        .keys()
        .copied()
        .find(|k| *k == set)
        .expect("routed to a known set");
    let deleted_at = state.next_version();
    state.tombstones.push((set_name, id.clone(), deleted_at));
    let (tables, version) = (&mut state.tables, &mut state.version);
    for other in tables.values_mut() {
        for lookup in other.lookups.iter().filter(|l| l.target_set == set) {
            for row in &mut other.rows {
                if row.get(lookup.column).as_str() == Some(id.as_str()) {
                    row.fields.insert(lookup.column.into(), Value::Null);
                    *version += 1;
                    row.version = *version;
                }
            }
        }
    }
    Ok(Reply::no_content())
}

/// `set(key)/column`: GET gives `{"value":…}` (204 when null), PUT sets it
/// from `{"value":…}`, DELETE clears it.
pub(crate) fn property(
    ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
    raw_key: &str,
    column: &str,
) -> Result<Reply, DvError> {
    let table = &state.tables[set];
    let i = locate(table, raw_key)?;
    let id = table.rows[i].id(table.primary_key);
    let new_value = match *req.method() {
        Method::GET => {
            let value = table.rows[i].get(column).clone();
            if value.is_null() {
                return Ok(Reply::no_content());
            }
            return Ok(Reply::json(json!({
                "@odata.context": format!("{}/$metadata#{set}({id})/{column}", ctx.base),
                "value": value,
            })));
        }
        Method::PUT => {
            let body = json_body(req)?;
            let value = body
                .get("value")
                .ok_or_else(|| bad_request("The request body must contain a 'value' property."))?;
            if table.lookup_by_column(column).is_some() || column == table.primary_key {
                return Err(invalid_property(column, table));
            }
            column_value(table, column, value)?
        }
        Method::DELETE => Value::Null,
        _ => return Err(method_not_allowed(req)),
    };
    let version = state.next_version();
    let table = state.tables.get_mut(set).expect("routed to a known set");
    let mut record = table.rows[i].clone();
    record.fields.insert(column.into(), new_value);
    record.version = version;
    table.derive(&mut record);
    table.replace(i, record);
    let mut reply = Reply::no_content();
    reply.entity = Some(ctx.entity_url(set, &id));
    Ok(reply)
}

/// The query options of a request, for modules that render rows.
pub(crate) fn query_options(req: &Request<Bytes>, table: &Table) -> Result<QueryOptions, DvError> {
    odata::parse(req.uri().query(), table).map_err(bad_request)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod change_tracking_tests {
    use crate::test_support::*;
    use bytes::Bytes;
    use http::Request;

    fn get(fake: &crate::Fake, token: &str, url: &str, prefer: &str) -> serde_json::Value {
        let req = Request::get(url)
            .header("authorization", format!("Bearer {token}"))
            .header("prefer", prefer);
        let resp = fake.handle(req.body(Bytes::new()).unwrap());
        assert_eq!(resp.status(), 200, "{:?}", resp.body());
        json(&resp)
    }

    #[test]
    fn a_delta_link_returns_the_rows_written_and_deleted_since() {
        let (fake, token) = demo();
        // The first read, in pages of 10: the delta link comes with the last page.
        let mut url = format!("{BASE}/accounts?$select=name");
        let mut rows = 0;
        let delta = loop {
            let page = get(
                &fake,
                &token,
                &url,
                "odata.track-changes, odata.maxpagesize=10",
            );
            assert!(
                page["@odata.context"]
                    .as_str()
                    .unwrap()
                    .ends_with("/$delta")
            );
            rows += page["value"].as_array().unwrap().len();
            match page["@odata.nextLink"].as_str() {
                Some(next) => {
                    assert!(page.get("@odata.deltaLink").is_none());
                    url = next.to_string();
                }
                None => break page["@odata.deltaLink"].as_str().unwrap().to_string(),
            }
        };
        assert_eq!(rows, 25);
        assert!(
            delta.starts_with(&format!("{BASE}/accounts?$select=name&$deltatoken=")),
            "{delta}"
        );
        let patch = send(
            &fake,
            &token,
            "PATCH",
            &format!("accounts({})", account_id(1)),
            &[("if-match", "*")],
            r#"{"name":"Changed"}"#,
        );
        assert_eq!(patch.status(), 204);
        assert_eq!(
            send(
                &fake,
                &token,
                "POST",
                "accounts",
                &[],
                r#"{"name":"Added"}"#
            )
            .status(),
            204
        );
        assert_eq!(
            send(
                &fake,
                &token,
                "DELETE",
                &format!("accounts({})", account_id(2)),
                &[],
                ""
            )
            .status(),
            204
        );
        let changes = get(&fake, &token, &delta, "");
        let value = changes["value"].as_array().unwrap();
        assert_eq!(value.len(), 3, "{value:?}");
        assert_eq!(value[0]["name"], "Changed");
        assert_eq!(value[1]["name"], "Added");
        assert_eq!(value[2]["id"], account_id(2));
        assert_eq!(value[2]["reason"], "deleted");
        assert_eq!(
            value[2]["@odata.context"],
            format!("{BASE}/$metadata#accounts/$deletedEntity")
        );
        let next = changes["@odata.deltaLink"].as_str().unwrap();
        assert_ne!(next, delta);
        assert_eq!(get(&fake, &token, next, "")["value"], serde_json::json!([]));
        let bad = api_get(&fake, &token, "/api/data/v9.2/accounts?$deltatoken=garbage");
        assert_eq!(bad.status(), 400);
    }
}
