//! Fake Dataverse Web API (`https://{org}/api/data/v9.2/…`): authentication,
//! impersonation, the common response headers and the path router.
//!
//! `handle` authenticates (401 challenge / 403 for apps without an
//! Application User), applies an injected fault if one is due, then `respond`
//! routes the request. `$batch` feeds each of its parts back through
//! `respond`, so a request behaves the same inside and outside a batch. The
//! operations themselves live in `records`, `relations`, `fetchxml`,
//! `operations` and `batch`; each returns `Result<Reply, DvError>`.

use super::context::{API_PREFIX, Ctx};
use super::path::{self, Segment};
use super::reply::{Body, DvError, Reply, finish, method_not_allowed, require, segment_not_found};
use super::{
    batch, bulk, faults, fetchxml, files, metadata, operations, paging_bugs, records, relations,
};
use crate::entra::auth_faults;
use crate::entra::token::find_app;
use crate::{FakeApp, FakeConfig, State};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Instant;

/// What Dataverse says to a caller with no `systemuser` in the organization.
fn not_a_member() -> DvError {
    DvError::new(
        StatusCode::FORBIDDEN,
        "0x80072560",
        "The user is not a member of the organization.",
    )
}

/// What Dataverse says when the caller's roles lack Read on a table: the
/// message names the principal, the privilege and the table.
fn missing_read_privilege(ctx: &Ctx, logical_name: &str) -> DvError {
    let (type_code, display) = match logical_name {
        "account" => (1, "Account"),
        "contact" => (2, "Contact"),
        _ => (10000, logical_name),
    };
    let mut schema = logical_name.to_string();
    schema[..1].make_ascii_uppercase();
    DvError::new(
        StatusCode::FORBIDDEN,
        "0x80040220",
        format!(
            "Principal user (Id={user}, type=8, roleCount=1, privilegeCount=12, accessMode='0 Read-Write', \
             AADObjectId='{object}', businessUnitId={unit}), is missing prvRead{schema} privilege \
             (Id={privilege}) on OTC={type_code} for entity '{logical_name}' (LocalizedName='{display}'). \
             context.Caller={user}. Consider adding missed privilege to one of the principal (user/team) roles.",
            user = ctx.user_id,
            object = crate::ids::stable_guid(&format!("object-{}", ctx.app.client_id)),
            unit = crate::DEMO_BUSINESS_UNIT_ID,
            privilege = crate::ids::stable_guid(&format!("prvRead{schema}")),
        ),
    )
}

pub(crate) fn handle(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Response<Bytes> {
    let request_id = state.ids.guid();
    let Some(app) = authenticate(config, state, req) else {
        let challenge = challenge(config, &request_id, req);
        let probe = !req.headers().contains_key(header::AUTHORIZATION);
        return match state.discovery_faults.take().filter(|_| probe) {
            Some(fault) => auth_faults::discovery(&fault, challenge, |status, retry_after| {
                let message = format!(
                    "{} (injected by the fake).",
                    status.canonical_reason().unwrap_or("Unexpected error")
                );
                let mut reply = DvError::new(status, "0x80040216", message).into_reply();
                if let Some(secs) = retry_after {
                    reply = reply.header("retry-after", secs.to_string());
                }
                finish(reply, &request_id, req)
            }),
            None => challenge,
        };
    };
    if let Some(description) = state.refused_tokens.clone() {
        let mut response = challenge(config, &request_id, req);
        let value = format!(
            "{}, error=\"invalid_token\", error_description=\"{description}\"",
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap_or("Bearer")
        );
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        return response;
    }
    state.stats.api_requests += 1;
    let mut response = match protection_limit(config, state, app) {
        Some(retry_after_secs) => {
            let limit = config.request_limit.unwrap_or_default();
            let message = format!(
                "Number of requests exceeded the limit of {} over time window of {} seconds.",
                limit.requests,
                limit.window_ms.div_ceil(1000)
            );
            faults::throttled(&message, retry_after_secs, &request_id, req)
        }
        None => match state.faults.take() {
            Some(fault) => faults::apply(&fault, config, state, req, app, &request_id, respond),
            None => {
                let response = respond(config, state, req, app, &request_id, &HashMap::new());
                paging_bugs::apply(&mut state.paging_bug, config, req, response)
            }
        },
    };
    // Dataverse's recommended degree of parallelism, on every answer.
    response
        .headers_mut()
        .insert("x-ms-dop-hint", config.dop_hint.into());
    response
}

/// The service protection limit on requests per app ([`FakeConfig::request_limit`]):
/// `Some(seconds until the window ends)` for a request over the limit, which
/// is then not executed (and not counted).
fn protection_limit(config: &FakeConfig, state: &mut State, app: &FakeApp) -> Option<u64> {
    let limit = config.request_limit?;
    let now = Instant::now();
    let window = std::time::Duration::from_millis(limit.window_ms);
    let (start, count) = state
        .protection
        .entry(app.client_id.clone())
        .or_insert((now, 0));
    if now.duration_since(*start) >= window {
        (*start, *count) = (now, 0);
    }
    if *count >= limit.requests {
        let left = window.saturating_sub(now.duration_since(*start));
        return Some(left.as_secs_f64().ceil().max(1.0) as u64);
    }
    *count += 1;
    None
}

/// Answers an authenticated request (also each part of a `$batch`).
pub(crate) fn respond(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
    app: &FakeApp,
    request_id: &str,
    content_ids: &HashMap<String, String>,
) -> Response<Bytes> {
    let result = identify(config, req, app).and_then(|user_id| {
        let ctx = Ctx {
            config,
            base: format!("{}{API_PREFIX}", config.org_origin()),
            app,
            user_id,
            content_ids,
            respond,
        };
        route(&ctx, state, req)
    });
    finish(result.unwrap_or_else(DvError::into_reply), request_id, req)
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
    let audience = config.org_origin().to_ascii_lowercase();
    if issued.expires <= Instant::now() || issued.resource != audience {
        return None;
    }
    find_app(config, &issued.client_id)
}

/// The `systemuserid` the request runs as. `CallerObjectId` (Entra object
/// id, preferred) or `MSCRMCallerID` (systemuserid, legacy) impersonate a
/// known user; a caller that maps to no user gets the same 403 as an app
/// without an Application User (the docs name no other error for it).
fn identify(config: &FakeConfig, req: &Request<Bytes>, app: &FakeApp) -> Result<String, DvError> {
    if !app.application_user {
        return Err(not_a_member());
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("").trim().trim_matches(['{', '}']))
    };
    if let Some(object_id) = header("callerobjectid") {
        return config
            .users
            .iter()
            .find(|u| u.object_id.eq_ignore_ascii_case(object_id))
            .map(|u| u.user_id.clone())
            .ok_or_else(not_a_member);
    }
    if let Some(user_id) = header("mscrmcallerid") {
        return config
            .users
            .iter()
            .find(|u| u.user_id.eq_ignore_ascii_case(user_id))
            .map(|u| u.user_id.clone())
            .ok_or_else(not_a_member);
    }
    Ok(app.user_id.clone())
}

/// The 401 that tells a client where to get a token (authority + resource).
fn challenge(config: &FakeConfig, request_id: &str, req: &Request<Bytes>) -> Response<Bytes> {
    let www_authenticate = format!(
        "Bearer authorization_uri={}/{}/oauth2/authorize, resource_id={}/",
        config.login_origin(),
        config.tenant_id,
        config.org_origin()
    );
    let reply = Reply::with_status(StatusCode::UNAUTHORIZED, Body::None)
        .header("www-authenticate", www_authenticate);
    finish(reply, request_id, req)
}

/// Dispatches an authenticated request on its path below `/api/data/v9.2/`.
fn route(ctx: &Ctx, state: &mut State, req: &Request<Bytes>) -> Result<Reply, DvError> {
    let segments = path::segments(req.uri().path())?;
    let is_set = |s: &Segment| state.tables.contains_key(s.name.as_str());
    if req.method() == Method::GET
        && let Some(first) = segments.first()
        && is_set(first)
        && ctx.app.denied_reads.contains(&first.name)
    {
        return Err(missing_read_privilege(
            ctx,
            state.tables[first.name.as_str()].logical_name,
        ));
    }
    match segments.as_slice() {
        [] => {
            require(req, Method::GET)?;
            Ok(service_document(&ctx.base, state))
        }
        [s] if s.name == metadata::SET => metadata::handle(ctx, state, req, s.args.as_deref()),
        [s, columns] if s.name == metadata::SET && columns.name == "Attributes" => {
            metadata::attributes(ctx, state, req, s.args.as_deref(), columns.args.as_deref())
        }
        [s] if s.name == "$batch" && s.args.is_none() => {
            require(req, Method::POST)?;
            batch::handle(ctx, state, req)
        }
        [s] if is_set(s) => {
            let set = s.name.as_str();
            match (&s.args, req.method()) {
                (None, &Method::GET) if fetchxml::requested(req) => {
                    fetchxml::retrieve(ctx, state, req, set)
                }
                (None, &Method::GET) => records::retrieve_multiple(ctx, state, req, set, None),
                (None, &Method::POST) => records::create(ctx, state, req, set),
                (Some(key), &Method::GET) => records::retrieve(ctx, state, req, set, key),
                (Some(key), &Method::PATCH) => records::upsert(ctx, state, req, set, key),
                (Some(key), &Method::DELETE) => records::delete(ctx, state, req, set, key),
                _ => Err(method_not_allowed(req)),
            }
        }
        [s] => operations::unbound(ctx, state, req, s),
        [entity, action]
            if is_set(entity)
                && entity.args.is_none()
                && action.args.is_none()
                && action
                    .name
                    .strip_prefix("Microsoft.Dynamics.CRM.")
                    .is_some_and(bulk::is_bulk) =>
        {
            let message = action.name.trim_start_matches("Microsoft.Dynamics.CRM.");
            bulk::handle(ctx, state, req, &entity.name, message)
        }
        [entity, second, rest @ ..] if is_set(entity) && entity.args.is_some() => {
            let (set, key) = (entity.name.as_str(), entity.args.as_deref().unwrap_or(""));
            let table = &state.tables[set];
            if files::is_file_column(set, &second.name) && second.args.is_none() {
                let column = second.name.clone();
                files::handle(ctx, state, req, set, key, &column, rest)
            } else if second.name.starts_with("Microsoft.Dynamics.CRM.") && rest.is_empty() {
                operations::bound(ctx, state, req, set, key, second)
            } else if table.lookup_by_navigation(&second.name).is_some()
                || table.collection(&second.name).is_some()
            {
                relations::navigate(ctx, state, req, set, key, second, rest)
            } else if table.column_type(&second.name).is_some()
                && second.args.is_none()
                && rest.is_empty()
            {
                records::property(ctx, state, req, set, key, &second.name)
            } else {
                Err(segment_not_found(&second.name))
            }
        }
        [_, second, ..] => Err(segment_not_found(&second.name)),
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

#[cfg(test)]
mod tests {
    use crate::test_support::*;
    use crate::*;
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
    fn a_role_without_read_gets_403_missing_privilege_on_that_table_only() {
        let mut config = FakeConfig::default();
        config.apps[0].denied_reads = vec!["accounts".into()];
        let fake = Fake::new(config);
        let token = demo_token(&fake);
        let resp = api_get(&fake, &token, "/api/data/v9.2/accounts?$top=1");
        assert_eq!(resp.status(), 403);
        let error = &json(&resp)["error"];
        assert_eq!(error["code"], "0x80040220");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Principal user (Id={DEMO_USER_ID}, type=8,"))
                && message.contains("is missing prvReadAccount privilege")
                && message.contains("for entity 'account' (LocalizedName='Account')"),
            "{message}"
        );
        assert_eq!(
            api_get(&fake, &token, "/api/data/v9.2/contacts?$top=1").status(),
            200
        );
        assert_eq!(
            api_get(&fake, &token, "/api/data/v9.2/WhoAmI").status(),
            200
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
            assert_eq!(
                resp.headers()["preference-applied"],
                "odata.include-annotations=\"*\",odata.maxpagesize=10"
            );
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
