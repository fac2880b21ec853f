//! Fake Dataverse Web API (`https://{org}/api/data/v9.2/…`).
//!
//! `handle` authenticates (401 challenge / 403 for apps without an
//! Application User), then `route` dispatches on the path. Each operation is a
//! function returning `Result<Reply, DvError>`; `finish` adds the headers every
//! Dataverse response carries. New operations (create, update, delete, $batch,
//! fault injection) slot into `route` without touching the rest.

use super::entra::find_app;
use super::odata::{self, QueryOptions};
use super::table::{Record, Table};
use super::{DEMO_BUSINESS_UNIT_ID, DEMO_ORGANIZATION_ID, FakeApp, FakeConfig, State, percent};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Map, Value, json};
use std::time::Instant;

const API_PREFIX: &str = "/api/data/v9.2";
/// Dataverse's largest page, and the cap on `@odata.count`.
const MAX_PAGE_SIZE: usize = 5000;

/// A successful answer before the common headers are added.
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(body: Value) -> Reply {
        Reply {
            status: StatusCode::OK,
            body: Some(body),
            headers: Vec::new(),
        }
    }
}

/// A Dataverse error: `{"error":{"code":"0x…","message":"…"}}`.
struct DvError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The generic OData error code Dataverse uses for bad paths and queries.
const ODATA_ERROR: &str = "0x80060888";

fn bad_request(message: String) -> DvError {
    DvError {
        status: StatusCode::BAD_REQUEST,
        code: ODATA_ERROR,
        message,
    }
}

fn segment_not_found(segment: &str) -> DvError {
    DvError {
        status: StatusCode::NOT_FOUND,
        code: ODATA_ERROR,
        message: format!("Resource not found for the segment '{segment}'."),
    }
}

fn require_get(req: &Request<Bytes>) -> Result<(), DvError> {
    if req.method() == Method::GET {
        return Ok(());
    }
    Err(DvError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: ODATA_ERROR,
        message: format!(
            "The requested resource does not support http method '{}'.",
            req.method()
        ),
    })
}

pub(crate) fn handle(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Response<Bytes> {
    let request_id = state.ids.guid();
    let Some(app) = authenticate(config, state, req) else {
        return challenge(config, &request_id);
    };
    state.stats.api_requests += 1;
    let result = if app.application_user {
        route(config, state, req, app)
    } else {
        // What Dataverse says to an app registration with no Application User.
        Err(DvError {
            status: StatusCode::FORBIDDEN,
            code: "0x80072560",
            message: "The user is not a member of the organization.".into(),
        })
    };
    let reply = result.unwrap_or_else(|e| Reply {
        status: e.status,
        body: Some(json!({"error": {"code": e.code, "message": e.message}})),
        headers: Vec::new(),
    });
    finish(reply, &request_id)
}

/// The app behind a valid, unexpired bearer token for this org, if any.
/// Requests with no `Authorization` header at all are discovery probes.
fn authenticate<'c>(
    config: &'c FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Option<&'c FakeApp> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        state.stats.discovery_requests += 1;
        return None;
    };
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let issued = state.tokens.get(token.trim())?;
    let audience = format!("https://{}", config.org_host.to_ascii_lowercase());
    if issued.expires <= Instant::now() || issued.resource != audience {
        return None;
    }
    find_app(config, &issued.client_id)
}

/// The 401 that tells a client where to get a token (authority + resource).
fn challenge(config: &FakeConfig, request_id: &str) -> Response<Bytes> {
    let www_authenticate = format!(
        "Bearer authorization_uri=https://{}/{}/oauth2/authorize, resource_id=https://{}/",
        config.login_host, config.tenant_id, config.org_host
    );
    let reply = Reply {
        status: StatusCode::UNAUTHORIZED,
        body: None,
        headers: vec![("www-authenticate", www_authenticate)],
    };
    finish(reply, request_id)
}

/// Adds the headers every Dataverse response carries.
fn finish(reply: Reply, request_id: &str) -> Response<Bytes> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("OData-Version", "4.0")
        .header("x-ms-service-request-id", request_id);
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    let body = match reply.body {
        Some(body) => {
            builder = builder.header(
                header::CONTENT_TYPE,
                "application/json; odata.metadata=minimal",
            );
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    builder.body(body).expect("response parts are valid")
}

/// Dispatches an authenticated request on its path below `/api/data/v9.2/`.
fn route(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
    app: &FakeApp,
) -> Result<Reply, DvError> {
    let path = req.uri().path();
    let Some(rest) = path
        .strip_prefix(API_PREFIX)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        return Err(segment_not_found(first));
    };
    let segments: Vec<String> = rest
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent::decode(s, false))
        .collect();
    let base = format!("https://{}{API_PREFIX}", config.org_host);
    match segments.as_slice() {
        [s] if s.is_empty() => {
            require_get(req)?;
            Ok(service_document(&base, state))
        }
        [s] if s == "WhoAmI" || s == "WhoAmI()" => {
            require_get(req)?;
            Ok(who_am_i(&base, app))
        }
        [s] => {
            let (set, key) = match s.split_once('(') {
                Some((set, key)) => (
                    set,
                    Some(key.strip_suffix(')').ok_or_else(|| segment_not_found(s))?),
                ),
                None => (s.as_str(), None),
            };
            let table = state
                .tables
                .get(set)
                .ok_or_else(|| segment_not_found(set))?;
            require_get(req)?;
            let query = odata::parse(req.uri().query(), table).map_err(bad_request)?;
            match key {
                None => Ok(retrieve_multiple(&base, set, table, &query, req)),
                Some(key) => retrieve(&base, set, table, key, &query),
            }
        }
        [_, second, ..] => Err(segment_not_found(second)),
        [] => Err(segment_not_found("")),
    }
}

fn service_document(base: &str, state: &State) -> Reply {
    let sets: Vec<Value> = state
        .tables
        .keys()
        .map(|name| json!({"name": name, "kind": "EntitySet", "url": name}))
        .collect();
    Reply::json(json!({"@odata.context": format!("{base}/$metadata"), "value": sets}))
}

fn who_am_i(base: &str, app: &FakeApp) -> Reply {
    Reply::json(json!({
        "@odata.context": format!("{base}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"),
        "BusinessUnitId": DEMO_BUSINESS_UNIT_ID,
        "UserId": app.user_id,
        "OrganizationId": DEMO_ORGANIZATION_ID,
    }))
}

/// `@odata.context` for a set, listing the selected columns like Dataverse.
fn context_url(base: &str, set: &str, table: &Table, query: &QueryOptions) -> String {
    match &query.select {
        None => format!("{base}/$metadata#{set}"),
        Some(columns) => format!(
            "{base}/$metadata#{set}({})",
            selected_columns(table, columns).join(",")
        ),
    }
}

/// `$select` columns plus the primary key, which Dataverse always returns.
fn selected_columns<'a>(table: &'a Table, select: &'a [String]) -> Vec<&'a str> {
    let mut columns: Vec<&str> = select.iter().map(String::as_str).collect();
    if !columns.contains(&table.primary_key) {
        columns.push(table.primary_key);
    }
    columns
}

/// One row as JSON: `@odata.etag` plus the selected (or all) columns.
fn project(record: &Record, table: &Table, select: Option<&[String]>) -> Value {
    let mut row = Map::new();
    row.insert("@odata.etag".into(), Value::String(record.etag()));
    match select {
        None => row.extend(record.fields.clone()),
        Some(columns) => {
            for column in selected_columns(table, columns) {
                row.insert(column.into(), record.get(column).clone());
            }
        }
    }
    Value::Object(row)
}

/// `odata.maxpagesize` from the `Prefer` header(s), clamped to Dataverse's limit.
fn requested_page_size(req: &Request<Bytes>) -> Option<usize> {
    req.headers()
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .find(|&n| n > 0)
        .map(|n| n.min(MAX_PAGE_SIZE))
}

/// GET on an entity set: filter, order, then serve one page. Paging resumes
/// after the skiptoken's last primary key, and `$top` bounds the total across
/// pages (a row's position in the ordered result is how many came before it).
fn retrieve_multiple(
    base: &str,
    set: &str,
    table: &Table,
    query: &QueryOptions,
    req: &Request<Bytes>,
) -> Reply {
    let mut rows: Vec<&Record> = table
        .rows
        .iter()
        .filter(|r| query.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    odata::sort(&mut rows, &query.orderby);
    let id_of = |r: &Record| {
        r.get(table.primary_key)
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase()
    };

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
    let requested = requested_page_size(req);
    let page_size = requested.unwrap_or(MAX_PAGE_SIZE);
    let page = &rows[start..start + available.min(page_size)];

    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context_url(base, set, table, query)),
    );
    if query.count {
        body.insert("@odata.count".into(), json!(rows.len().min(MAX_PAGE_SIZE)));
    }
    let select = query.select.as_deref();
    body.insert(
        "value".into(),
        Value::Array(page.iter().map(|r| project(r, table, select)).collect()),
    );
    if available > page.len() {
        let (first, last) = (id_of(page[0]), id_of(page[page.len() - 1]));
        let mut options = query.passthrough.clone();
        options.push(format!(
            "$skiptoken={}",
            odata::skiptoken(page_number, table.primary_key, &first, &last)
        ));
        body.insert(
            "@odata.nextLink".into(),
            Value::String(format!("{base}/{set}?{}", options.join("&"))),
        );
    }
    let mut reply = Reply::json(Value::Object(body));
    if let Some(n) = requested {
        reply
            .headers
            .push(("preference-applied", format!("odata.maxpagesize={n}")));
    }
    reply
}

/// GET on `set(guid)`.
fn retrieve(
    base: &str,
    set: &str,
    table: &Table,
    key: &str,
    query: &QueryOptions,
) -> Result<Reply, DvError> {
    let id = key.trim_start_matches('{').trim_end_matches('}');
    let is_guid = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !is_guid {
        return Err(bad_request(format!(
            "The fake Dataverse supports only primary key (GUID) lookups, not '{key}'."
        )));
    }
    let record = table.find(id).ok_or_else(|| DvError {
        status: StatusCode::NOT_FOUND,
        code: "0x80040217",
        message: format!(
            "{} With Id = {} Does Not Exist",
            table.logical_name,
            id.to_ascii_lowercase()
        ),
    })?;
    let mut row = project(record, table, query.select.as_deref());
    if let Value::Object(map) = &mut row {
        let context = format!("{}/$entity", context_url(base, set, table, query));
        map.insert("@odata.context".into(), Value::String(context));
    }
    Ok(Reply::json(row))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;
    use bytes::Bytes;
    use http::Request;
    use std::collections::HashSet;

    const BASE: &str = "https://contoso.crm.dynamics.com/api/data/v9.2";

    fn demo_token(fake: &Fake) -> String {
        token_for(fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    }

    fn get_with(
        fake: &Fake,
        token: &str,
        url: &str,
        prefer: Option<&str>,
    ) -> http::Response<Bytes> {
        let mut req = Request::get(url).header("authorization", format!("Bearer {token}"));
        if let Some(p) = prefer {
            req = req.header("prefer", p);
        }
        fake.handle(req.body(Bytes::new()).unwrap())
    }

    fn names(body: &serde_json::Value) -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn discovery_gets_bearer_challenge_with_authority_and_resource() {
        let fake = Fake::demo();
        let resp = fake.handle(get(&format!("{BASE}/")));
        assert_eq!(resp.status(), 401);
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer authorization_uri=https://login.microsoftonline.com/8f2c1f3e-5b7a-4c1d-9e3f-2a6b4c8d0e1f/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/"
        );
        assert_eq!(resp.headers()["odata-version"], "4.0");
        assert_eq!(resp.headers()["x-ms-service-request-id"].len(), 36);
        assert!(resp.body().is_empty());
        assert_eq!(fake.stats().discovery_requests, 1);
    }

    #[test]
    fn unknown_or_non_bearer_tokens_get_the_same_challenge() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        for auth in [
            "Bearer nope",
            "Basic abc",
            "Bearer",
            &format!("bearer {token}x"),
        ] {
            let req = Request::get(format!("{BASE}/WhoAmI")).header("authorization", auth);
            let resp = fake.handle(req.body(Bytes::new()).unwrap());
            assert_eq!(resp.status(), 401, "{auth}");
            assert!(resp.headers().contains_key("www-authenticate"));
        }
        assert_eq!(fake.stats().discovery_requests, 0);
        assert_eq!(fake.stats().api_requests, 0);
    }

    #[test]
    fn who_am_i_answers_with_the_apps_user() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        for path in ["WhoAmI", "WhoAmI()"] {
            let resp = api_get(&fake, &token, &format!("/api/data/v9.2/{path}"));
            assert_eq!(resp.status(), 200);
            assert_eq!(
                resp.headers()["content-type"],
                "application/json; odata.metadata=minimal"
            );
            assert_eq!(resp.headers()["odata-version"], "4.0");
            let body = json(&resp);
            assert_eq!(
                body["@odata.context"],
                format!("{BASE}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
            );
            assert_eq!(body["UserId"], DEMO_USER_ID);
            assert_eq!(body["BusinessUnitId"], DEMO_BUSINESS_UNIT_ID);
            assert_eq!(body["OrganizationId"], DEMO_ORGANIZATION_ID);
        }
        assert_eq!(fake.stats().api_requests, 2);
    }

    #[test]
    fn app_without_application_user_gets_403_not_a_member() {
        let fake = Fake::demo();
        let token = token_for(&fake, NO_USER_CLIENT_ID, NO_USER_CLIENT_SECRET);
        let resp = api_get(&fake, &token, "/api/data/v9.2/WhoAmI");
        assert_eq!(resp.status(), 403);
        assert_eq!(
            json(&resp),
            serde_json::json!({"error": {"code": "0x80072560", "message": "The user is not a member of the organization."}})
        );
    }

    #[test]
    fn paging_follows_next_links_over_all_accounts_once() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let mut url = format!("{BASE}/accounts?$select=name");
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let resp = get_with(
                &fake,
                &token,
                &url,
                Some("odata.include-annotations=\"*\", odata.maxpagesize=10"),
            );
            assert_eq!(resp.status(), 200, "{:?}", resp.body());
            assert_eq!(resp.headers()["preference-applied"], "odata.maxpagesize=10");
            let body = json(&resp);
            assert_eq!(
                body["@odata.context"],
                format!("{BASE}/$metadata#accounts(name,accountid)")
            );
            pages += 1;
            seen.extend(names(&body));
            match body["@odata.nextLink"].as_str() {
                Some(next) => {
                    assert!(next.starts_with(&format!("{BASE}/accounts?$select=name&$skiptoken=%3Ccookie%20pagenumber=%22{}%22", pages + 1)), "{next}");
                    url = next.to_string();
                }
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(seen, fake.account_names());
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);
    }

    #[test]
    fn select_returns_only_chosen_columns_etag_and_primary_key() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let body = json(&api_get(
            &fake,
            &token,
            "/api/data/v9.2/accounts?$select=name,revenue&$top=1",
        ));
        let row = body["value"][0].as_object().unwrap();
        let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["@odata.etag", "accountid", "name", "revenue"]);
        assert!(row["@odata.etag"].as_str().unwrap().starts_with("W/\""));
        let all = json(&api_get(&fake, &token, "/api/data/v9.2/accounts?$top=1"));
        assert_eq!(all["@odata.context"], format!("{BASE}/$metadata#accounts"));
        assert_eq!(all["value"][0]["accountnumber"], "A-0001");
    }

    #[test]
    fn filter_supports_eq_ne_contains_and() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let q = |filter: &str| {
            let url = format!(
                "/api/data/v9.2/accounts?$select=name&$filter={}",
                percent::encode(filter, b"", true)
            );
            names(&json(&api_get(&fake, &token, &url)))
        };
        assert_eq!(q("name eq 'contoso ltd'"), ["Contoso Ltd"]);
        assert_eq!(q("name ne 'Contoso Ltd'").len(), 24);
        assert_eq!(
            q("contains(name,'works') and accountnumber eq 'A-0003'"),
            ["Adventure Works"]
        );
        let revenue =
            json(&api_get(&fake, &token, "/api/data/v9.2/accounts?$top=1"))["value"][0]["revenue"]
                .clone();
        assert!(q(&format!("revenue eq {revenue}")).contains(&"Contoso Ltd".to_string()));
        // `+` in a query string is a space.
        let plus = names(&json(&api_get(
            &fake,
            &token,
            "/api/data/v9.2/accounts?$filter=name+eq+'Fabrikam+Inc'",
        )));
        assert_eq!(plus, ["Fabrikam Inc"]);
    }

    #[test]
    fn unsupported_filter_is_a_dataverse_400() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let resp = api_get(
            &fake,
            &token,
            "/api/data/v9.2/accounts?$filter=revenue%20gt%205",
        );
        assert_eq!(resp.status(), 400);
        let body = json(&resp);
        assert_eq!(body["error"]["code"], "0x80060888");
        assert!(body["error"]["message"].as_str().unwrap().contains("'gt'"));
        let resp = api_get(&fake, &token, "/api/data/v9.2/accounts?$select=nosuch");
        assert_eq!(resp.status(), 400);
    }

    #[test]
    fn orderby_top_and_count() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let body = json(&api_get(
            &fake,
            &token,
            "/api/data/v9.2/accounts?$select=name&$orderby=name%20desc&$top=3&$count=true",
        ));
        assert_eq!(
            names(&body),
            ["Fabrikam Inc", "Contoso Ltd", "Adventure Works"]
        );
        assert_eq!(body["@odata.count"], 25);
        assert!(body.get("@odata.nextLink").is_none());
        let by_revenue = json(&api_get(
            &fake,
            &token,
            "/api/data/v9.2/accounts?$select=revenue&$orderby=revenue",
        ));
        let revenues: Vec<f64> = by_revenue["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["revenue"].as_f64().unwrap())
            .collect();
        assert!(revenues.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            json(&api_get(&fake, &token, "/api/data/v9.2/accounts"))
                .get("@odata.count")
                .is_none()
        );
    }

    #[test]
    fn top_bounds_rows_across_pages() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let mut url = format!("{BASE}/accounts?$select=name&$top=12&$count=true");
        let mut seen = Vec::new();
        loop {
            let body = json(&get_with(&fake, &token, &url, Some("odata.maxpagesize=5")));
            assert_eq!(body["@odata.count"], 25);
            seen.extend(names(&body));
            match body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, fake.account_names()[..12]);
    }

    #[test]
    fn retrieve_by_id_and_missing_row() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let first = json(&api_get(&fake, &token, "/api/data/v9.2/accounts?$top=1"));
        let id = first["value"][0]["accountid"].as_str().unwrap();
        let body = json(&api_get(
            &fake,
            &token,
            &format!("/api/data/v9.2/accounts({id})?$select=name"),
        ));
        assert_eq!(body["name"], "Contoso Ltd");
        assert_eq!(
            body["@odata.context"],
            format!("{BASE}/$metadata#accounts(name,accountid)/$entity")
        );
        let missing = api_get(
            &fake,
            &token,
            "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000000)",
        );
        assert_eq!(missing.status(), 404);
        assert_eq!(json(&missing)["error"]["code"], "0x80040217");
    }

    #[test]
    fn unknown_segment_is_404_and_other_methods_are_405() {
        let fake = Fake::demo();
        let token = demo_token(&fake);
        let resp = api_get(&fake, &token, "/api/data/v9.2/xyz");
        assert_eq!(resp.status(), 404);
        assert_eq!(
            json(&resp),
            serde_json::json!({"error": {"code": "0x80060888", "message": "Resource not found for the segment 'xyz'."}})
        );
        assert_eq!(api_get(&fake, &token, "/nope").status(), 404);
        let post = Request::post(format!("{BASE}/WhoAmI"))
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .unwrap();
        let resp = fake.handle(post);
        assert_eq!(resp.status(), 405);
        assert_eq!(json(&resp)["error"]["code"], "0x80060888");
        let doc = json(&api_get(&fake, &token, "/api/data/v9.2/"));
        assert_eq!(doc["value"][0]["name"], "accounts");
    }
}
