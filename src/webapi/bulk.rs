//! The bulk operation messages: `CreateMultiple`, `UpdateMultiple` and
//! `UpsertMultiple`, bound to a table's entity set —
//! `POST {set}/Microsoft.Dynamics.CRM.{Message}` with
//! `{"Targets":[…]}`, every target carrying
//! `"@odata.type":"Microsoft.Dynamics.CRM.{logicalname}"` (Dataverse
//! refuses a target without it). `CreateMultiple` answers 200 with
//! `{"Ids":[…]}` in the order of the targets; the other two answer 204.
//! Upsert targets name their row by alternate key in `@odata.id`
//! (`accounts(accountnumber='A-1')`) or by primary key. Pure: requests,
//! answers and the split into batches.

use std::ops::Range;

use serde_json::{Map, Value};

use super::api_url;
use super::batch::BatchPart;
use super::entity_key::guid;
use super::metadata::TableInfo;
use super::query::check_identifier;
use crate::error::Error;
use crate::http::{Method, Request, Response};

/// Microsoft's guidance: start around 100 rows per request (fewer for
/// wide rows or plug-ins), at most 1,000.
pub const DEFAULT_BATCH_ROWS: usize = 100;
pub const MAX_BATCH_ROWS: usize = 1_000;

/// Most requests in flight at once: Dataverse's limit of concurrent
/// requests per user (more are refused with `0x80072326`).
pub const MAX_PARALLEL: u32 = 52;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    Create,
    Update,
    Upsert,
}

impl Message {
    pub fn name(self) -> &'static str {
        match self {
            Message::Create => "CreateMultiple",
            Message::Update => "UpdateMultiple",
            Message::Upsert => "UpsertMultiple",
        }
    }
}

/// The row ranges of `rows` rows in batches of `batch_rows`
/// (1..=[`MAX_BATCH_ROWS`]; anything else is refused, not clamped).
pub fn batches(rows: usize, batch_rows: usize) -> Result<Vec<Range<usize>>, Error> {
    if !(1..=MAX_BATCH_ROWS).contains(&batch_rows) {
        return Err(Error::InvalidRequest(format!(
            "batch size {batch_rows} is outside 1..={MAX_BATCH_ROWS}"
        )));
    }
    Ok((0..rows)
        .step_by(batch_rows)
        .map(|start| start..(start + batch_rows).min(rows))
        .collect())
}

/// The request for one batch, whose first row is row `first_row` of the
/// call (for the messages). Each row must be a JSON object; its
/// `@odata.type` is set to the table's, and one that names another type is
/// refused (a target of another table would fail the whole batch), as is
/// an update without the primary key or an upsert that names its row
/// neither by primary key nor by `@odata.id`.
pub fn request(
    org_url: &str,
    table: &TableInfo,
    message: Message,
    rows: &[Value],
    first_row: usize,
) -> Result<Request, Error> {
    check_identifier("entity-set", &table.entity_set)?;
    check_identifier("logical-name", &table.logical_name)?;
    if rows.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "{} needs at least one row",
            message.name()
        )));
    }
    let odata_type = format!("Microsoft.Dynamics.CRM.{}", table.logical_name);
    let mut targets = Vec::with_capacity(rows.len());
    for (index, row) in (first_row..).zip(rows) {
        let Value::Object(fields) = row else {
            return Err(Error::InvalidRequest(format!(
                "row {index} is not a JSON object"
            )));
        };
        let has_key = fields.get(&table.primary_id).is_some_and(|v| !v.is_null());
        let named = has_key || fields.contains_key("@odata.id");
        match message {
            Message::Update if !has_key => {
                return Err(Error::InvalidRequest(format!(
                    "row {index} has no {}: UpdateMultiple needs every row's primary key",
                    table.primary_id
                )));
            }
            Message::Upsert if !named => {
                return Err(Error::InvalidRequest(format!(
                    "row {index} has neither {} nor @odata.id: UpsertMultiple needs every \
                     row's primary key or alternate key",
                    table.primary_id
                )));
            }
            _ => {}
        }
        let mut target = Map::with_capacity(fields.len() + 1);
        target.insert("@odata.type".into(), Value::String(odata_type.clone()));
        for (name, value) in fields {
            if name == "@odata.type" && value.as_str() != Some(odata_type.as_str()) {
                return Err(Error::InvalidRequest(format!(
                    "row {index} has @odata.type {value}, not {odata_type}"
                )));
            }
            target.insert(name.clone(), value.clone());
        }
        targets.push(Value::Object(target));
    }
    let body = serde_json::to_vec(&serde_json::json!({ "Targets": targets }))
        .map_err(|e| Error::InvalidRequest(format!("the rows cannot be written as JSON: {e}")))?;
    Ok(Request::new(
        Method::Post,
        api_url(
            org_url,
            &format!(
                "{}/Microsoft.Dynamics.CRM.{}",
                table.entity_set,
                message.name()
            ),
        ),
    )
    .header("Content-Type", "application/json; charset=utf-8")
    .body(body))
}

/// Whether a table takes `DeleteMultiple` (elastic tables) rather than a
/// `$batch` of DELETEs (standard tables, which have no such message).
pub fn is_elastic(table: &TableInfo) -> bool {
    table.table_type.eq_ignore_ascii_case("elastic")
}

/// The request that deletes the rows `keys` name: `DeleteMultiple` with
/// typed targets (a GUID as the primary key, an alternate key as
/// `@odata.id`) for an elastic table, else a `$batch` of DELETEs that goes
/// on after a failed part (each part's answer is checked).
pub fn delete_request(
    org_url: &str,
    table: &TableInfo,
    keys: &[String],
    boundary_seed: u128,
) -> Result<Request, Error> {
    if keys.is_empty() {
        return Err(Error::InvalidRequest(
            "delete-multiple needs at least one key".into(),
        ));
    }
    let paths = keys
        .iter()
        .map(|key| super::entity_key::entity_path(&table.entity_set, key))
        .collect::<Result<Vec<_>, Error>>()?;
    if !is_elastic(table) {
        let parts: Vec<BatchPart> = paths
            .into_iter()
            .map(|url| BatchPart {
                method: Method::Delete,
                url,
                headers: Vec::new(),
                body: None,
            })
            .collect();
        return super::batch::request(org_url, &parts, false, true, boundary_seed);
    }
    check_identifier("logical-name", &table.logical_name)?;
    let odata_type = format!("Microsoft.Dynamics.CRM.{}", table.logical_name);
    let targets: Vec<Value> = keys
        .iter()
        .zip(paths)
        .map(|(key, path)| {
            let mut target = Map::new();
            target.insert("@odata.type".into(), Value::String(odata_type.clone()));
            match guid(key) {
                Some(id) => target.insert(table.primary_id.clone(), Value::String(id)),
                None => target.insert("@odata.id".into(), Value::String(path)),
            };
            Value::Object(target)
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "Targets": targets }))
        .map_err(|e| Error::InvalidRequest(format!("the keys cannot be written as JSON: {e}")))?;
    Ok(Request::new(
        Method::Post,
        api_url(
            org_url,
            &format!("{}/Microsoft.Dynamics.CRM.DeleteMultiple", table.entity_set),
        ),
    )
    .header("Content-Type", "application/json; charset=utf-8")
    .body(body))
}

/// Whether a delete batch's answer says every row is gone: `DeleteMultiple`
/// answers 2xx; a `$batch` answers one part per key, each 204 (deleted) or
/// 404 (already gone); the first other part is the batch's error.
pub fn parse_deleted(response: &Response, elastic: bool, keys: usize) -> Result<(), Error> {
    if elastic {
        return Ok(());
    }
    let items = super::batch::parse_response(response)?;
    if items.len() != keys {
        return Err(Error::InvalidResponse(format!(
            "the delete batch answered {} parts for {keys} rows",
            items.len()
        )));
    }
    match items
        .into_iter()
        .find(|item| !matches!(item.status, 200..=299 | 404))
    {
        None => Ok(()),
        Some(item) => Err(super::parse_error(&Response {
            status: item.status,
            headers: item.headers,
            body: item.body.into_bytes(),
        })),
    }
}

/// The `@odata.id` that names a row by an alternate key of `columns`
/// (`accounts(accountnumber='A-1')`, the key values taken from the row), for
/// `UpsertMultiple`. A string value is quoted (a quote doubled, as OData
/// writes it) and percent-encoded; numbers and booleans stand bare. A row
/// without a value for a key column cannot name its row: the error says
/// which column.
pub fn key_reference(
    entity_set: &str,
    columns: &[String],
    row: &Map<String, Value>,
) -> Result<String, Error> {
    check_identifier("entity-set", entity_set)?;
    let mut parts = Vec::with_capacity(columns.len());
    for column in columns {
        check_identifier("key column", column)?;
        let literal = match row.get(column) {
            Some(Value::String(text)) => {
                format!(
                    "'{}'",
                    crate::percent::query_encode(&text.replace('\'', "''"))
                )
            }
            Some(value @ (Value::Number(_) | Value::Bool(_))) => value.to_string(),
            _ => {
                return Err(Error::InvalidRequest(format!(
                    "the row has no value for the key column {column}"
                )));
            }
        };
        parts.push(format!("{column}={literal}"));
    }
    if parts.is_empty() {
        return Err(Error::InvalidRequest(
            "an alternate key needs a column".into(),
        ));
    }
    Ok(format!("{entity_set}({})", parts.join(",")))
}

/// A row's primary key, derived from the import's `seed` and the row's
/// number: the same row of the same import always gets the same id, so a
/// batch sent again (after a lost connection, by a resumed import) names
/// the rows it may already have created instead of creating them twice.
/// Distinct rows of one seed get distinct ids (SplitMix64 is a bijection).
pub fn row_id(seed: u64, row: u64) -> String {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let high = mix(seed ^ row);
    crate::uuid::v4(high, mix(high ^ seed.rotate_left(17)))
}

/// Rows given as JSON texts (as the WIT interface passes them), parsed; a
/// row that is not JSON is refused with its index (not its content: rows
/// may hold personal data).
pub fn parse_rows(rows: &[String]) -> Result<Vec<Value>, Error> {
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            serde_json::from_str(row).map_err(|e| {
                Error::InvalidRequest(format!(
                    "row {index} is not JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })
        })
        .collect()
}

/// The ids `CreateMultiple` answered, one per target and in their order;
/// any other count is an invalid response (the caller cannot tell which
/// rows were created, so it must not guess).
pub fn parse_created_ids(response: &Response, targets: usize) -> Result<Vec<String>, Error> {
    let invalid = |why: &str| {
        Error::InvalidResponse(format!(
            "CreateMultiple answered HTTP {} {why}",
            response.status
        ))
    };
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|_| invalid("with a body that is not JSON"))?;
    let Some(ids) = body.get("Ids").and_then(Value::as_array) else {
        return Err(invalid("without an Ids array"));
    };
    let ids: Option<Vec<String>> = ids.iter().map(|id| id.as_str().and_then(guid)).collect();
    let Some(ids) = ids else {
        return Err(invalid("with an id that is not a GUID"));
    };
    if ids.len() != targets {
        return Err(invalid(&format!(
            "with {} ids for {targets} rows",
            ids.len()
        )));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ORG: &str = "https://o.crm.dynamics.com";

    #[test]
    fn batches_cover_every_row_once_at_the_size_given() {
        assert_eq!(batches(0, 100).unwrap(), Vec::<Range<usize>>::new());
        assert_eq!(batches(1, 100).unwrap(), vec![0..1]);
        assert_eq!(batches(100, 100).unwrap(), vec![0..100]);
        assert_eq!(batches(101, 100).unwrap(), vec![0..100, 100..101]);
        let all = batches(10_000, 1_000).unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all.iter().map(|r| r.len()).sum::<usize>(), 10_000);
        assert_eq!(batches(3, 1).unwrap(), vec![0..1, 1..2, 2..3]);
        for bad in [0, MAX_BATCH_ROWS + 1] {
            assert!(matches!(batches(5, bad), Err(Error::InvalidRequest(_))));
        }
        assert_eq!(batches(5, MAX_BATCH_ROWS).unwrap(), vec![0..5]);
    }

    fn table(entity_set: &str, logical_name: &str) -> TableInfo {
        TableInfo {
            logical_name: logical_name.into(),
            entity_set: entity_set.into(),
            primary_id: "accountid".into(),
            primary_name: Some("name".into()),
            table_type: "Standard".into(),
        }
    }

    #[test]
    fn the_request_is_the_bound_action_with_typed_targets() {
        let rows = [
            json!({"name": "A", "accountid": "8f4c3f92-312b-ee11-bdf4-000d3a993550"}),
            json!({"name": "B", "@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": "904c3f92-312b-ee11-bdf4-000d3a993550"}),
        ];
        for (message, path) in [
            (
                Message::Create,
                "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            ),
            (
                Message::Update,
                "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
            ),
            (
                Message::Upsert,
                "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
            ),
        ] {
            let request = request(ORG, &table("accounts", "account"), message, &rows, 0).unwrap();
            assert_eq!(request.method, Method::Post);
            assert_eq!(request.url, format!("{ORG}/api/data/v9.2/{path}"));
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(
                body,
                json!({"Targets": [
                    {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "A", "accountid": "8f4c3f92-312b-ee11-bdf4-000d3a993550"},
                    {"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "B", "accountid": "904c3f92-312b-ee11-bdf4-000d3a993550"},
                ]})
            );
        }
    }

    #[test]
    fn rows_that_would_fail_the_whole_batch_are_refused_before_sending() {
        let cases: [(&str, &str, Vec<Value>, &str); 5] = [
            ("accounts", "account", vec![], "needs at least one row"),
            (
                "accounts",
                "account",
                vec![json!([1])],
                "row 10 is not a JSON object",
            ),
            (
                "accounts",
                "account",
                vec![
                    json!({}),
                    json!({"@odata.type": "Microsoft.Dynamics.CRM.contact"}),
                ],
                "row 11 has @odata.type",
            ),
            (
                "accounts/../x",
                "account",
                vec![json!({})],
                "not a valid OData name",
            ),
            (
                "accounts",
                "account'",
                vec![json!({})],
                "not a valid OData name",
            ),
        ];
        for (set, logical, rows, expected) in cases {
            let err = request(ORG, &table(set, logical), Message::Create, &rows, 10).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidRequest(m) if m.contains(expected)),
                "{err:?}"
            );
        }
        let accounts = table("accounts", "account");
        let unnamed = [json!({"name": "A"})];
        let err = request(ORG, &accounts, Message::Update, &unnamed, 0).unwrap_err();
        assert!(matches!(&err, Error::InvalidRequest(m) if m.contains("row 0 has no accountid")));
        let err = request(ORG, &accounts, Message::Upsert, &unnamed, 3).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidRequest(m) if m.contains("row 3 has neither accountid nor @odata.id"))
        );
        let null_key = [json!({"accountid": null})];
        assert!(request(ORG, &accounts, Message::Update, &null_key, 0).is_err());
        let by_key = [json!({"name": "A", "@odata.id": "accounts(accountnumber='A-1')"})];
        assert!(request(ORG, &accounts, Message::Upsert, &by_key, 0).is_ok());
        assert!(request(ORG, &accounts, Message::Create, &unnamed, 0).is_ok());
    }

    fn batch_answer(statuses: &[(u16, &str)]) -> Response {
        let mut text = String::new();
        for (status, body) in statuses {
            text.push_str(&format!(
                "--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\r\n{body}\r\n"
            ));
        }
        text.push_str("--batchresponse_1--\r\n");
        Response {
            status: 200,
            headers: vec![(
                "Content-Type".into(),
                "multipart/mixed; boundary=batchresponse_1".into(),
            )],
            body: text.into_bytes(),
        }
    }

    #[test]
    fn deletes_are_a_batch_of_deletes_or_an_elastic_tables_delete_multiple() {
        let id = "8f4c3f92-312b-ee11-bdf4-000d3a993550".to_string();
        let keys = vec![id.clone(), "accountnumber='A-1'".to_string()];
        let standard = table("accounts", "account");
        let request = delete_request(ORG, &standard, &keys, 7).unwrap();
        assert_eq!(request.url, format!("{ORG}/api/data/v9.2/$batch"));
        let body = String::from_utf8(request.body.clone()).unwrap();
        assert!(
            body.contains(&format!("DELETE /api/data/v9.2/accounts({id}) HTTP/1.1")),
            "{body}"
        );
        assert!(body.contains("accounts(accountnumber='A-1')"), "{body}");
        assert!(
            request
                .header_value("Prefer")
                .unwrap()
                .contains("odata.continue-on-error")
        );

        let elastic = TableInfo {
            table_type: "Elastic".into(),
            ..table("sensordata", "sensor")
        };
        let request = delete_request(ORG, &elastic, &keys, 7).unwrap();
        assert_eq!(
            request.url,
            format!("{ORG}/api/data/v9.2/sensordata/Microsoft.Dynamics.CRM.DeleteMultiple")
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.sensor", "accountid": id},
                {"@odata.type": "Microsoft.Dynamics.CRM.sensor", "@odata.id": "sensordata(accountnumber='A-1')"},
            ]})
        );
        assert!(delete_request(ORG, &standard, &[], 7).is_err());
        assert!(delete_request(ORG, &standard, &["nope".into()], 7).is_err());

        // Deleted or already gone: done. Anything else: that part's error.
        assert!(parse_deleted(&batch_answer(&[(204, ""), (404, "{}")]), false, 2).is_ok());
        let refused = batch_answer(&[
            (204, ""),
            (
                403,
                r#"{"error":{"code":"0x80040220","message":"missing prvDeleteAccount"}}"#,
            ),
        ]);
        let err = parse_deleted(&refused, false, 2).unwrap_err();
        assert!(
            matches!(&err, Error::AccessDenied(f) if f.message.contains("prvDeleteAccount")),
            "{err:?}"
        );
        assert!(matches!(
            parse_deleted(&batch_answer(&[(204, "")]), false, 2),
            Err(Error::InvalidResponse(m)) if m.contains("1 parts for 2 rows")
        ));
        assert!(parse_deleted(&batch_answer(&[]), true, 2).is_ok());
    }

    #[test]
    fn a_key_reference_quotes_and_encodes_the_rows_values() {
        let row = json!({"accountnumber": "O'Brien & Co", "n": 7, "flag": true, "none": null});
        let row = row.as_object().unwrap();
        let key = |columns: &[&str]| {
            let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
            key_reference("accounts", &columns, row)
        };
        assert_eq!(
            key(&["accountnumber"]).unwrap(),
            "accounts(accountnumber='O''Brien%20%26%20Co')"
        );
        assert_eq!(key(&["n", "flag"]).unwrap(), "accounts(n=7,flag=true)");
        for (columns, why) in [
            (&["none"][..], "no value for the key column none"),
            (&["missing"][..], "no value for the key column missing"),
            (&[][..], "needs a column"),
            (&["a'b"][..], "not a valid OData name"),
        ] {
            let err = key(columns).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn row_ids_are_stable_per_seed_and_distinct_per_row() {
        assert_eq!(row_id(42, 7), row_id(42, 7));
        assert_ne!(row_id(42, 7), row_id(43, 7));
        let ids: std::collections::HashSet<String> = (0..10_000).map(|r| row_id(42, r)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(
            ids.iter()
                .all(|id| guid(id).as_deref() == Some(id.as_str()))
        );
    }

    #[test]
    fn rows_are_parsed_and_a_bad_one_is_named_by_index_not_content() {
        let rows = vec![r#"{"name":"A"}"#.to_string(), "{\"name\": \"secret".into()];
        assert_eq!(parse_rows(&rows[..1]).unwrap(), vec![json!({"name": "A"})]);
        let err = parse_rows(&rows).unwrap_err().to_string();
        assert!(
            err.contains("row 1 is not JSON (line 1, column 16)"),
            "{err}"
        );
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(parse_rows(&[]).unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn created_ids_must_match_the_targets_one_for_one() {
        let answer = |body: &str| Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        let ok = answer(
            r#"{"@odata.context":"x","Ids":["8F4C3F92-312B-EE11-BDF4-000D3A993550","904c3f92-312b-ee11-bdf4-000d3a993550"]}"#,
        );
        assert_eq!(
            parse_created_ids(&ok, 2).unwrap(),
            vec![
                "8f4c3f92-312b-ee11-bdf4-000d3a993550",
                "904c3f92-312b-ee11-bdf4-000d3a993550"
            ]
        );
        for (body, targets, why) in [
            (
                r#"{"Ids":["8f4c3f92-312b-ee11-bdf4-000d3a993550"]}"#,
                2,
                "1 ids for 2 rows",
            ),
            (r#"{"Ids":[]}"#, 1, "0 ids for 1 rows"),
            (r#"{"Ids":["nope"]}"#, 1, "not a GUID"),
            (r#"{"Ids":[7]}"#, 1, "not a GUID"),
            (r#"{}"#, 1, "without an Ids array"),
            ("<html>", 1, "not JSON"),
        ] {
            let err = parse_created_ids(&answer(body), targets).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidResponse(m) if m.contains(why)),
                "{body}: {err:?}"
            );
        }
    }
}
