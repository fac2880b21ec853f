//! Single-row operations: retrieve, create, update, upsert, delete,
//! associate, disassociate; and reading a row or a created id back.

use serde_json::Value;

use super::entity_key::{entity_path, guid, key_segment};
use super::query::check_identifier;
use super::{api_url, body_text};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::percent::query_encode;

/// A row as JSON text, with its ETag for optimistic concurrency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub json: String,
    pub etag: Option<String>,
}

/// The result of a create: the new row's id, and the row itself when
/// `Prefer: return=representation` was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: Option<String>,
    pub json: Option<String>,
}

/// GET one row, optionally only some columns and with related rows.
pub fn retrieve(
    org_url: &str,
    entity_set: &str,
    key: &str,
    select: &[String],
    expand: Option<&str>,
) -> Result<Request, Error> {
    let mut url = api_url(org_url, &entity_path(entity_set, key)?);
    let mut options = Vec::new();
    if !select.is_empty() {
        for column in select {
            check_identifier("select", column)?;
        }
        options.push(format!("$select={}", select.join(",")));
    }
    if let Some(expand) = expand {
        let expand = expand.trim();
        if expand.is_empty() {
            return Err(Error::InvalidRequest("expand is empty".into()));
        }
        options.push(format!("$expand={}", query_encode(expand)));
    }
    if !options.is_empty() {
        url.push('?');
        url.push_str(&options.join("&"));
    }
    Ok(Request::new(Method::Get, url))
}

/// POST a new row. Dataverse answers 204 with `OData-EntityId`, or 201 with
/// the row when `Prefer: return=representation` was sent.
pub fn create(org_url: &str, entity_set: &str, body_json: &str) -> Result<Request, Error> {
    check_identifier("entity-set", entity_set)?;
    json_request(
        Method::Post,
        api_url(org_url, entity_set),
        "body",
        body_json,
    )
}

/// PATCH a row. Without `If-Match` a PATCH is an upsert; pass `*` to update
/// only an existing row, or an ETag to update only that version.
pub fn update(
    org_url: &str,
    entity_set: &str,
    key: &str,
    body_json: &str,
    if_match: Option<&str>,
) -> Result<Request, Error> {
    let url = api_url(org_url, &entity_path(entity_set, key)?);
    let request = json_request(Method::Patch, url, "body", body_json)?;
    with_if_match(request, if_match)
}

/// [`update`] that never creates: `If-Match: *` unless given an ETag, since
/// a PATCH without `If-Match` is an upsert in Dataverse.
pub fn update_existing(
    org_url: &str,
    entity_set: &str,
    key: &str,
    body_json: &str,
    etag: Option<&str>,
) -> Result<Request, Error> {
    update(
        org_url,
        entity_set,
        key,
        body_json,
        Some(etag.unwrap_or("*")),
    )
}

/// PATCH that creates or updates; with `If-None-Match: *` it only creates
/// (412 when the row exists).
pub fn upsert(
    org_url: &str,
    entity_set: &str,
    key: &str,
    body_json: &str,
    if_none_match_star: bool,
) -> Result<Request, Error> {
    let url = api_url(org_url, &entity_path(entity_set, key)?);
    let request = json_request(Method::Patch, url, "body", body_json)?;
    Ok(if if_none_match_star {
        request.header("If-None-Match", "*")
    } else {
        request
    })
}

/// DELETE a row, optionally only the version with this ETag.
pub fn delete(
    org_url: &str,
    entity_set: &str,
    key: &str,
    if_match: Option<&str>,
) -> Result<Request, Error> {
    let url = api_url(org_url, &entity_path(entity_set, key)?);
    with_if_match(Request::new(Method::Delete, url), if_match)
}

/// POST `{row}/{navigation_property}/$ref` with the target's `@odata.id`.
pub fn associate(
    org_url: &str,
    entity_set: &str,
    key: &str,
    navigation_property: &str,
    target_entity_set: &str,
    target_key: &str,
) -> Result<Request, Error> {
    let path = entity_path(entity_set, key)?;
    check_identifier("navigation-property", navigation_property)?;
    let target = api_url(org_url, &entity_path(target_entity_set, target_key)?);
    let body = serde_json::json!({ "@odata.id": target }).to_string();
    let url = api_url(org_url, &format!("{path}/{navigation_property}/$ref"));
    Ok(Request::new(Method::Post, url)
        .header("Content-Type", "application/json")
        .body(body.into_bytes()))
}

/// DELETE the reference: `…/{nav}({target key})/$ref` for a collection-valued
/// property, `…/{nav}/$ref` for a single-valued one (`target` = None). A
/// target named by an alternate key is passed as `$id` instead, which
/// works for any key.
pub fn disassociate(
    org_url: &str,
    entity_set: &str,
    key: &str,
    navigation_property: &str,
    target: Option<(&str, &str)>,
) -> Result<Request, Error> {
    let path = entity_path(entity_set, key)?;
    check_identifier("navigation-property", navigation_property)?;
    let relative = match target {
        None => format!("{path}/{navigation_property}/$ref"),
        Some((target_set, target_key)) => {
            let target_path = entity_path(target_set, target_key)?;
            let segment = key_segment(target_key)?;
            if guid(&segment).is_some() {
                format!("{path}/{navigation_property}({segment})/$ref")
            } else {
                let id = api_url(org_url, &target_path);
                format!(
                    "{path}/{navigation_property}/$ref?$id={}",
                    query_encode(&id)
                )
            }
        }
    };
    Ok(Request::new(Method::Delete, api_url(org_url, &relative)))
}

/// Reads a single-row response: the row as the server sent it, and its ETag
/// (`@odata.etag`, else the `ETag` header).
pub fn parse_row(response: &Response) -> Result<Row, Error> {
    let Ok(Value::Object(row)) = serde_json::from_slice::<Value>(&response.body) else {
        return Err(Error::InvalidResponse(
            "row response: the body is not a JSON object".into(),
        ));
    };
    let json = std::str::from_utf8(&response.body)
        .map_err(|_| Error::InvalidResponse("row response: the body is not UTF-8".into()))?
        .trim()
        .to_string();
    let etag = row
        .get("@odata.etag")
        .and_then(Value::as_str)
        .or_else(|| response.header("ETag"))
        .map(str::to_string);
    Ok(Row { json, etag })
}

/// The id (lower-case GUID) of a created row: from the `OData-EntityId`
/// header (`…/accounts(<guid>)`), else from the `@odata.id` of a returned
/// row. `None` when the row is named by an alternate key or not at all.
pub fn created_id(response: &Response) -> Option<String> {
    if let Some(id) = response.header("OData-EntityId").and_then(id_in_entity_url) {
        return Some(id);
    }
    match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(row)) => row
            .get("@odata.id")
            .and_then(Value::as_str)
            .and_then(id_in_entity_url),
        _ => None,
    }
}

/// Reads a create's answer: the id (see [`created_id`]) and the body, if any.
pub fn parse_created(response: &Response) -> Created {
    Created {
        id: created_id(response),
        json: body_text(response),
    }
}

/// The GUID in the last `(...)` of `…/accounts(<guid>)`.
fn id_in_entity_url(url: &str) -> Option<String> {
    let inner = url.trim().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    guid(&inner[open + 1..])
}

/// A request with a JSON-object body. The body is sent exactly as given.
pub(crate) fn json_request(
    method: Method,
    url: String,
    what: &str,
    json: &str,
) -> Result<Request, Error> {
    check_json_object(what, json)?;
    Ok(Request::new(method, url)
        .header("Content-Type", "application/json")
        .body(json.as_bytes().to_vec()))
}

/// The error names the position only: serde messages may quote the input,
/// and a body may hold secrets.
pub(crate) fn check_json_object(what: &str, json: &str) -> Result<(), Error> {
    match serde_json::from_slice::<serde_json::Map<String, Value>>(json.as_bytes()) {
        Ok(_) => Ok(()),
        Err(e) if e.is_data() => Err(Error::InvalidRequest(format!(
            "{what} must be a JSON object"
        ))),
        Err(e) => Err(Error::InvalidRequest(format!(
            "{what} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

fn with_if_match(request: Request, if_match: Option<&str>) -> Result<Request, Error> {
    match if_match {
        None => Ok(request),
        Some(etag) => {
            let etag = etag.trim();
            if etag.is_empty() || etag.chars().any(char::is_control) {
                return Err(Error::InvalidRequest(
                    "if-match must be an ETag such as W/\"123456\" or *".into(),
                ));
            }
            Ok(request.header("If-Match", etag))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://contoso.crm.dynamics.com";
    const BASE: &str = "https://contoso.crm.dynamics.com/api/data/v9.2/";
    const ID: &str = "00000000-0000-0000-0000-000000000001";
    const ID2: &str = "00000000-0000-0000-0000-000000000002";

    fn text(r: &Request) -> (Method, String, Vec<(String, String)>, String) {
        (
            r.method,
            r.url.clone(),
            r.headers.clone(),
            String::from_utf8(r.body.clone()).unwrap(),
        )
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn builders_produce_the_web_api_requests() {
        let json = "application/json";
        let cases = [
            (
                retrieve(ORG, "accounts", ID, &[], None).unwrap(),
                (Method::Get, format!("{BASE}accounts({ID})"), h(&[]), ""),
            ),
            (
                retrieve(
                    ORG,
                    "accounts",
                    "accountnumber='A 1'",
                    &["name".into(), "revenue".into()],
                    Some("primarycontactid($select=fullname)"),
                )
                .unwrap(),
                (
                    Method::Get,
                    format!(
                        "{BASE}accounts(accountnumber='A%201')?$select=name,revenue&$expand=primarycontactid($select%3Dfullname)"
                    ),
                    h(&[]),
                    "",
                ),
            ),
            (
                create(ORG, "accounts", r#"{"name":"A"}"#).unwrap(),
                (
                    Method::Post,
                    format!("{BASE}accounts"),
                    h(&[("Content-Type", json)]),
                    r#"{"name":"A"}"#,
                ),
            ),
            (
                update(ORG, "accounts", ID, r#"{"name":"B"}"#, None).unwrap(),
                (
                    Method::Patch,
                    format!("{BASE}accounts({ID})"),
                    h(&[("Content-Type", json)]),
                    r#"{"name":"B"}"#,
                ),
            ),
            (
                update(ORG, "accounts", ID, "{}", Some("*")).unwrap(),
                (
                    Method::Patch,
                    format!("{BASE}accounts({ID})"),
                    h(&[("Content-Type", json), ("If-Match", "*")]),
                    "{}",
                ),
            ),
            (
                upsert(ORG, "accounts", "accountnumber='A-1'", "{}", true).unwrap(),
                (
                    Method::Patch,
                    format!("{BASE}accounts(accountnumber='A-1')"),
                    h(&[("Content-Type", json), ("If-None-Match", "*")]),
                    "{}",
                ),
            ),
            (
                upsert(ORG, "accounts", ID, "{}", false).unwrap(),
                (
                    Method::Patch,
                    format!("{BASE}accounts({ID})"),
                    h(&[("Content-Type", json)]),
                    "{}",
                ),
            ),
            (
                delete(ORG, "accounts", ID, None).unwrap(),
                (Method::Delete, format!("{BASE}accounts({ID})"), h(&[]), ""),
            ),
            (
                delete(ORG, "accounts", ID, Some("W/\"123\"")).unwrap(),
                (
                    Method::Delete,
                    format!("{BASE}accounts({ID})"),
                    h(&[("If-Match", "W/\"123\"")]),
                    "",
                ),
            ),
            (
                associate(
                    ORG,
                    "accounts",
                    ID,
                    "contact_customer_accounts",
                    "contacts",
                    ID2,
                )
                .unwrap(),
                (
                    Method::Post,
                    format!("{BASE}accounts({ID})/contact_customer_accounts/$ref"),
                    h(&[("Content-Type", json)]),
                    &format!(r#"{{"@odata.id":"{BASE}contacts({ID2})"}}"#),
                ),
            ),
            (
                disassociate(
                    ORG,
                    "accounts",
                    ID,
                    "contact_customer_accounts",
                    Some(("contacts", ID2)),
                )
                .unwrap(),
                (
                    Method::Delete,
                    format!("{BASE}accounts({ID})/contact_customer_accounts({ID2})/$ref"),
                    h(&[]),
                    "",
                ),
            ),
            (
                disassociate(
                    ORG,
                    "accounts",
                    ID,
                    "contact_customer_accounts",
                    Some(("contacts", "emailaddress1='a@b.c'")),
                )
                .unwrap(),
                (
                    Method::Delete,
                    format!(
                        "{BASE}accounts({ID})/contact_customer_accounts/$ref?$id={BASE}contacts(emailaddress1%3D'a%2540b.c')"
                    ),
                    h(&[]),
                    "",
                ),
            ),
            (
                disassociate(ORG, "accounts", ID, "primarycontactid", None).unwrap(),
                (
                    Method::Delete,
                    format!("{BASE}accounts({ID})/primarycontactid/$ref"),
                    h(&[]),
                    "",
                ),
            ),
        ];
        for (request, (method, url, headers, body)) in cases {
            assert_eq!(
                text(&request),
                (method, url, headers, body.to_string()),
                "{request:?}"
            );
        }
    }

    #[test]
    fn bad_arguments_are_invalid_requests_naming_the_argument() {
        let secret_body = r#"{"password":"hunter2""#;
        let cases: Vec<(Result<Request, Error>, &str)> = vec![
            (retrieve(ORG, "acc/ounts", ID, &[], None), "entity-set"),
            (retrieve(ORG, "accounts", "x", &[], None), "key"),
            (
                retrieve(ORG, "accounts", ID, &["a,b".into()], None),
                "select",
            ),
            (retrieve(ORG, "accounts", ID, &[], Some(" ")), "expand"),
            (create(ORG, "accounts", "[1]"), "body"),
            (create(ORG, "accounts", "\"text\""), "body"),
            (create(ORG, "accounts", ""), "body"),
            (create(ORG, "accounts", secret_body), "body"),
            (create(ORG, "", "{}"), "entity-set"),
            (update(ORG, "accounts", ID, "null", None), "body"),
            (update(ORG, "accounts", ID, "{}", Some("")), "if-match"),
            (
                update(ORG, "accounts", ID, "{}", Some("*\r\nX: y")),
                "if-match",
            ),
            (upsert(ORG, "accounts", "", "{}", true), "key"),
            (delete(ORG, "accounts", ID, Some(" ")), "if-match"),
            (
                associate(ORG, "accounts", ID, "nav/x", "contacts", ID2),
                "navigation-property",
            ),
            (
                associate(ORG, "accounts", ID, "nav", "contacts", "?"),
                "key",
            ),
            (
                associate(ORG, "accounts", ID, "nav", "con tacts", ID2),
                "entity-set",
            ),
            (
                disassociate(ORG, "accounts", ID, "", None),
                "navigation-property",
            ),
            (
                disassociate(ORG, "accounts", ID, "nav", Some(("contacts", "x"))),
                "key",
            ),
        ];
        for (result, name) in cases {
            match result {
                Err(Error::InvalidRequest(m)) => {
                    assert!(m.starts_with(name), "{m} should name {name}");
                    assert!(!m.contains("hunter2"), "{m}");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: h(headers),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rows_keep_the_server_json_and_find_the_etag() {
        let body = r#"{"@odata.etag":"W/\"1\"","name":"A"}"#;
        let cases = [
            (response(200, &[], body), body, Some("W/\"1\"")),
            (
                response(200, &[("ETag", "W/\"2\"")], " {\"name\":\"A\"} \n"),
                "{\"name\":\"A\"}",
                Some("W/\"2\""),
            ),
            (
                response(200, &[("ETag", "W/\"2\"")], body),
                body,
                Some("W/\"1\""),
            ),
            (response(200, &[], "{}"), "{}", None),
        ];
        for (resp, json, etag) in cases {
            assert_eq!(
                parse_row(&resp).unwrap(),
                Row {
                    json: json.into(),
                    etag: etag.map(str::to_string)
                }
            );
        }
    }

    #[test]
    fn non_object_rows_are_invalid_responses() {
        for body in [
            "",
            "[]",
            "[{}]",
            "null",
            "\"x\"",
            "{",
            "{\"a\":1}x",
            "\u{feff}{}",
        ] {
            assert!(
                matches!(
                    parse_row(&response(200, &[], body)),
                    Err(Error::InvalidResponse(_))
                ),
                "{body}"
            );
        }
        let invalid_utf8 = Response {
            status: 200,
            headers: vec![],
            body: vec![b'{', 0xff, b'}'],
        };
        assert!(parse_row(&invalid_utf8).is_err());
    }

    #[test]
    fn created_ids_come_from_the_entity_id_header_or_the_returned_row() {
        let upper = "00000000-0000-0000-0000-00000000000A";
        let lower = "00000000-0000-0000-0000-00000000000a";
        let cases = [
            (
                response(
                    204,
                    &[("OData-EntityId", &format!("{BASE}accounts({upper})"))],
                    "",
                ),
                Some(lower),
            ),
            (
                response(
                    204,
                    &[("odata-entityid", &format!("{BASE}accounts({ID})"))],
                    "",
                ),
                Some(ID),
            ),
            (
                response(
                    201,
                    &[],
                    &format!(r#"{{"@odata.id":"{BASE}accounts({ID})","name":"A"}}"#),
                ),
                Some(ID),
            ),
            (
                response(
                    201,
                    &[],
                    &format!(r#"{{"@odata.id":"accounts({{{upper}}})"}}"#),
                ),
                Some(lower),
            ),
            (
                response(
                    204,
                    &[(
                        "OData-EntityId",
                        &format!("{BASE}accounts(accountnumber='A-1')"),
                    )],
                    "",
                ),
                None,
            ),
            (response(201, &[], r#"{"accountid":"x","name":"A"}"#), None),
            (response(204, &[("OData-EntityId", "garbage")], ""), None),
            (response(204, &[("OData-EntityId", "(é)")], "[]"), None),
            (response(204, &[], ""), None),
        ];
        for (resp, id) in cases {
            assert_eq!(created_id(&resp).as_deref(), id, "{resp:?}");
        }
    }

    #[test]
    fn garbage_responses_never_panic() {
        let pieces = [
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            "@odata.id",
            "@odata.etag",
            "(",
            ")",
            "é",
            "😀",
            "accounts",
            "00000000-0000-0000-0000-000000000001",
            "\\",
            "null",
            "1",
        ];
        for text in super::super::entity_key::garbage_strings(&pieces, 20_000) {
            let resp = response(201, &[("OData-EntityId", &text), ("ETag", &text)], &text);
            let _ = parse_row(&resp);
            let _ = created_id(&resp);
        }
    }
}
