//! `POST /api/data/v9.2/$batch`: OData multipart batches as Dataverse runs them.
//!
//! Each `application/http` part is turned back into an `http::Request` (with
//! the batch's `Authorization` and impersonation headers) and answered by the
//! same router as a standalone request. Change sets are atomic: the tables are
//! snapshotted before one and restored if any of its requests fails, and the
//! change set is then answered with only the failing response, like Dataverse
//! does. Without `Prefer: odata.continue-on-error` the batch stops at the first
//! failure and the batch itself takes that failure's status (the documented
//! `HTTP/1.1 400 BadRequest` with a multipart body); with it, the batch goes
//! on and answers 200 with `Preference-Applied: odata.continue-on-error`.

use super::context::Ctx;
use super::reply::{self, Body, DvError, EntityLocation, ODATA_ERROR, Reply, bad_request, prefer};
use crate::State;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use std::collections::HashMap;

/// Dataverse's limit on requests in one batch (change set members included).
pub(crate) const MAX_BATCH_REQUESTS: usize = 1000;

/// One request of the batch, as written in its `application/http` part.
#[derive(Debug)]
struct Part {
    content_id: Option<String>,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

#[derive(Debug)]
enum Item {
    Single(Part),
    ChangeSet(Vec<Part>),
}

enum Answer {
    Single(Option<String>, Response<Bytes>),
    ChangeSet(Vec<(Option<String>, Response<Bytes>)>),
}

fn malformed(message: impl Into<String>) -> DvError {
    bad_request(format!("Malformed $batch request: {}", message.into()))
}

pub(crate) fn handle(ctx: &Ctx, state: &mut State, req: &Request<Bytes>) -> Result<Reply, DvError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multipart_boundary(content_type)
        .ok_or_else(|| malformed("the Content-Type must be multipart/mixed with a boundary."))?;
    let body = std::str::from_utf8(req.body()).map_err(|_| malformed("the body is not UTF-8."))?;
    let items = parse_items(body, &boundary).map_err(malformed)?;
    let count: usize = items
        .iter()
        .map(|i| match i {
            Item::Single(_) => 1,
            Item::ChangeSet(parts) => parts.len(),
        })
        .sum();
    if count > MAX_BATCH_REQUESTS {
        return Err(DvError::new(
            StatusCode::BAD_REQUEST,
            ODATA_ERROR,
            format!(
                "The number of requests in the batch ({count}) exceeds the limit of {MAX_BATCH_REQUESTS}."
            ),
        ));
    }

    let continue_on_error = prefer(req).continue_on_error;
    let mut answers = Vec::new();
    let mut stopped_with = None;
    for item in items {
        match item {
            Item::Single(part) => {
                let response = run(ctx, state, req, &part, &HashMap::new());
                let failed = response.status().as_u16() >= 400;
                let status = response.status();
                answers.push(Answer::Single(part.content_id, response));
                if failed && !continue_on_error {
                    stopped_with = Some(status);
                    break;
                }
            }
            Item::ChangeSet(parts) => {
                let snapshot = state.tables.clone();
                let mut ids = HashMap::new();
                let mut done = Vec::new();
                let mut failure = None;
                for part in parts {
                    let response = run(ctx, state, req, &part, &ids);
                    if response.status().as_u16() >= 400 {
                        failure = Some((part.content_id, response));
                        break;
                    }
                    if let (Some(id), Some(EntityLocation(url))) = (
                        &part.content_id,
                        response.extensions().get::<EntityLocation>(),
                    ) {
                        ids.insert(id.clone(), url.clone());
                    }
                    done.push((part.content_id, response));
                }
                match failure {
                    Some((content_id, response)) => {
                        state.tables = snapshot;
                        let status = response.status();
                        answers.push(Answer::Single(content_id, response));
                        if !continue_on_error {
                            stopped_with = Some(status);
                            break;
                        }
                    }
                    None => answers.push(Answer::ChangeSet(done)),
                }
            }
        }
    }

    let boundary = format!("batchresponse_{}", state.ids.guid());
    let mut out = String::new();
    for answer in &answers {
        out.push_str(&format!("--{boundary}\r\n"));
        match answer {
            Answer::Single(content_id, response) => {
                out.push_str(&http_part(content_id.as_deref(), response));
            }
            Answer::ChangeSet(responses) => {
                let inner = format!("changesetresponse_{}", state.ids.guid());
                out.push_str(&format!(
                    "Content-Type: multipart/mixed; boundary={inner}\r\n\r\n"
                ));
                for (content_id, response) in responses {
                    out.push_str(&format!("--{inner}\r\n"));
                    out.push_str(&http_part(content_id.as_deref(), response));
                }
                out.push_str(&format!("--{inner}--\r\n"));
            }
        }
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    let mut reply = Reply::with_status(
        stopped_with.unwrap_or(StatusCode::OK),
        Body::Raw {
            content_type: format!("multipart/mixed; boundary={boundary}"),
            bytes: Bytes::from(out),
        },
    );
    if continue_on_error {
        reply = reply.header("preference-applied", "odata.continue-on-error");
    }
    Ok(reply)
}

/// Answers one part through the normal router. Content-ID references
/// (`$1`, `$1/nav/$ref`) in the URL resolve against the change set's
/// created entities; references in bodies resolve in `path::entity_reference`.
fn run(
    ctx: &Ctx,
    state: &mut State,
    batch: &Request<Bytes>,
    part: &Part,
    ids: &HashMap<String, String>,
) -> Response<Bytes> {
    let request_id = state.ids.guid();
    let fail = |e: DvError| reply::finish(e.into_reply(), &request_id, batch);
    let url = match part.target.strip_prefix('$') {
        Some(reference) => {
            let (id, rest) = reference
                .find(['/', '?'])
                .map_or((reference, ""), |i| reference.split_at(i));
            match ids.get(id) {
                Some(url) => format!("{url}{rest}"),
                None => {
                    return fail(bad_request(format!(
                        "Content-ID Reference: '${id}' does not exist in the batch context."
                    )));
                }
            }
        }
        None if part.target.starts_with("https://") || part.target.starts_with("http://") => {
            part.target.clone()
        }
        None if part.target.starts_with('/') => {
            format!("{}{}", ctx.config.org_origin(), part.target)
        }
        None => format!("{}/{}", ctx.base, part.target),
    };
    let mut builder = Request::builder()
        .method(part.method.as_str())
        .uri(url.as_str());
    for (name, value) in &part.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    // The batch's identity applies to every request in it.
    for name in ["authorization", "callerobjectid", "mscrmcallerid"] {
        let inner_has = part
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name));
        if let Some(value) = batch.headers().get(name).filter(|_| !inner_has) {
            builder = builder.header(name, value);
        }
    }
    let inner = match builder.body(Bytes::from(part.body.clone())) {
        Ok(inner) => inner,
        Err(e) => return fail(bad_request(format!("Invalid request in batch: {e}."))),
    };
    let host_ok = inner
        .uri()
        .host()
        .is_some_and(|h| crate::host_name(h) == crate::host_name(&ctx.config.org_host));
    if !host_ok {
        return fail(bad_request(format!(
            "The request URL '{url}' in the batch does not belong to this organization."
        )));
    }
    if inner.uri().path().trim_end_matches('/').ends_with("$batch") {
        return fail(bad_request(
            "A batch request can't contain other batch requests.",
        ));
    }
    (ctx.respond)(ctx.config, state, &inner, ctx.app, &request_id, ids)
}

/// An `application/http` response part (headers, blank line, response).
fn http_part(content_id: Option<&str>, response: &Response<Bytes>) -> String {
    let mut out =
        String::from("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(id) = content_id {
        out.push_str(&format!("Content-ID: {id}\r\n"));
    }
    let status = response.status();
    out.push_str(&format!(
        "\r\nHTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    ));
    for (name, value) in response.headers() {
        out.push_str(&format!(
            "{}: {}\r\n",
            display_name(name.as_str()),
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    out.push_str("\r\n");
    out.push_str(&String::from_utf8_lossy(response.body()));
    out.push_str("\r\n");
    out
}

/// `odata-entityid` → `OData-EntityId`, as Dataverse writes header names.
fn display_name(name: &str) -> String {
    name.split('-')
        .map(|word| match word {
            "odata" => "OData".to_string(),
            "entityid" => "EntityId".to_string(),
            "id" => "ID".to_string(),
            w => {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

// ---- multipart parsing ---------------------------------------------------------

/// The boundary of a `multipart/mixed` content type (quoted or not).
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    if !params
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/mixed")
    {
        return None;
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// Finds `--boundary` at the start of a line, at or after `from`.
fn find_delimiter(body: &str, delimiter: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = body.get(at..)?.find(delimiter) {
        let pos = at + i;
        let line_start = pos == 0 || body.as_bytes()[pos - 1] == b'\n';
        let after = &body[pos + delimiter.len()..];
        let line_end = after.is_empty()
            || after.starts_with("--")
            || after.starts_with(['\r', '\n', ' ', '\t']);
        if line_start && line_end {
            return Some(pos);
        }
        at = pos + 1;
    }
    None
}

/// The parts between `--boundary` lines, without the line break that
/// belongs to the next delimiter.
fn split_parts<'a>(body: &'a str, boundary: &str) -> Result<Vec<&'a str>, String> {
    let delimiter = format!("--{boundary}");
    let mut pos = find_delimiter(body, &delimiter, 0)
        .ok_or_else(|| format!("the boundary '{boundary}' does not occur."))?;
    let mut parts = Vec::new();
    loop {
        let after = pos + delimiter.len();
        if body[after..].starts_with("--") {
            return Ok(parts);
        }
        let start = body[after..]
            .find('\n')
            .map(|i| after + i + 1)
            .ok_or("a part is missing its headers.")?;
        let next = find_delimiter(body, &delimiter, start)
            .ok_or_else(|| format!("the closing boundary '--{boundary}--' is missing."))?;
        let content = &body[start..next];
        let content = content
            .strip_suffix("\r\n")
            .or_else(|| content.strip_suffix('\n'))
            .unwrap_or(content);
        parts.push(content);
        pos = next;
    }
}

/// Splits a MIME part or HTTP message into header lines and body.
fn split_head(text: &str) -> (&str, &str) {
    let crlf = text.find("\r\n\r\n").map(|i| (i, 4));
    let lf = text.find("\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) if b.0 < a.0 => (&text[..b.0], &text[b.0 + b.1..]),
        (Some((i, n)), _) | (None, Some((i, n))) => (&text[..i], &text[i + n..]),
        (None, None) => (text, ""),
    }
}

fn header_lines(head: &str) -> Result<Vec<(String, String)>, String> {
    head.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.split_once(':')
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .ok_or_else(|| format!("invalid header line '{line}'."))
        })
        .collect()
}

fn parse_items(body: &str, boundary: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for part in split_parts(body, boundary)? {
        let (head, content) = split_head(part);
        let headers = header_lines(head)?;
        let content_type = find(&headers, "content-type").unwrap_or("");
        if let Some(inner) = multipart_boundary(content_type) {
            let requests = split_parts(content, &inner)?
                .into_iter()
                .map(|p| {
                    let request = http_request(p)?;
                    if request.method.eq_ignore_ascii_case("GET") {
                        return Err("GET requests are not allowed in a change set.".to_string());
                    }
                    Ok(request)
                })
                .collect::<Result<Vec<_>, String>>()?;
            items.push(Item::ChangeSet(requests));
        } else {
            items.push(Item::Single(http_request(part)?));
        }
    }
    Ok(items)
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// One `application/http` part: MIME headers, then the HTTP request.
fn http_request(part: &str) -> Result<Part, String> {
    let (head, message) = split_head(part);
    let mime = header_lines(head)?;
    let content_type = find(&mime, "content-type").unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/http")
    {
        return Err(format!(
            "a part has Content-Type '{content_type}' instead of application/http."
        ));
    }
    let message = message.trim_start_matches(['\r', '\n']);
    let (request_line, rest) = message.split_once('\n').unwrap_or((message, ""));
    let mut words = request_line.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(format!("invalid request line '{}'.", request_line.trim()));
    };
    if words.next().is_some_and(|v| !v.starts_with("HTTP/")) {
        return Err(format!("invalid request line '{}'.", request_line.trim()));
    }
    let (head, body) = if rest.trim().is_empty() {
        ("", "")
    } else if rest.starts_with("\r\n") || rest.starts_with('\n') {
        ("", rest.trim_start_matches(['\r', '\n']))
    } else {
        split_head(rest)
    };
    let headers = header_lines(head)?
        .into_iter()
        .filter(|(n, _)| n != "host" && n != "content-length")
        .collect();
    Ok(Part {
        content_id: find(&mime, "content-id").map(str::to_string),
        method: method.to_string(),
        target: target.to_string(),
        headers,
        body: body.trim_end().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{DEMO_USER_ID, Fake, IMPERSONATED_OBJECT_ID, IMPERSONATED_USER_ID};

    /// An `application/http` part (`content_id` only inside change sets).
    fn part(content_id: Option<u32>, method: &str, url: &str, body: &str) -> String {
        let id = content_id
            .map(|i| format!("Content-ID: {i}\r\n"))
            .unwrap_or_default();
        let body_headers = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/json; type=entry\r\n".to_string()
        };
        format!(
            "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n{id}\r\n{method} {url} HTTP/1.1\r\n{body_headers}\r\n{body}\r\n"
        )
    }

    fn change_set(name: &str, parts: &[String]) -> String {
        let mut out = format!("Content-Type: multipart/mixed; boundary={name}\r\n\r\n");
        for p in parts {
            out.push_str(&format!("--{name}\r\n{p}"));
        }
        out.push_str(&format!("--{name}--\r\n"));
        out
    }

    fn batch_body(items: &[String]) -> String {
        let mut out = String::new();
        for item in items {
            out.push_str(&format!("--batch_AAA123\r\n{item}"));
        }
        out.push_str("--batch_AAA123--\r\n");
        out
    }

    fn post_batch(
        fake: &Fake,
        token: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> http::Response<Bytes> {
        let mut headers = vec![("Content-Type", "multipart/mixed; boundary=\"batch_AAA123\"")];
        headers.extend_from_slice(extra);
        send(fake, token, "POST", "$batch", &headers, body)
    }

    /// The status of every `application/http` response, in order.
    fn statuses(resp: &http::Response<Bytes>) -> Vec<u16> {
        String::from_utf8_lossy(resp.body())
            .lines()
            .filter_map(|l| l.strip_prefix("HTTP/1.1 "))
            .map(|l| l[..3].parse().unwrap())
            .collect()
    }

    fn text(resp: &http::Response<Bytes>) -> String {
        String::from_utf8_lossy(resp.body()).into_owned()
    }

    #[test]
    fn batch_answers_each_request_in_a_multipart_response() {
        let (fake, token) = demo();
        let body = batch_body(&[
            part(
                None,
                "POST",
                "/api/data/v9.2/accounts",
                r#"{"name":"In batch"}"#,
            ),
            part(
                None,
                "GET",
                &format!("{BASE}/accounts?$select=name&$filter=name%20eq%20'In%20batch'"),
                "",
            ),
            part(None, "GET", "WhoAmI", ""),
        ]);
        let resp = post_batch(
            &fake,
            &token,
            &[("CallerObjectId", IMPERSONATED_OBJECT_ID)],
            &body,
        );
        assert_eq!(resp.status(), 200, "{}", text(&resp));
        let content_type = resp.headers()["content-type"].to_str().unwrap();
        let boundary = content_type
            .strip_prefix("multipart/mixed; boundary=")
            .unwrap();
        assert!(boundary.starts_with("batchresponse_"));
        let text = text(&resp);
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert_eq!(statuses(&resp), [204, 200, 200]);
        assert!(text.contains(&format!("OData-EntityId: {BASE}/accounts(")));
        assert!(text.contains("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n"));
        assert!(text.contains(r#""name":"In batch""#));
        // The batch's CallerObjectId applies to its requests.
        assert!(text.contains(IMPERSONATED_USER_ID) && !text.contains(DEMO_USER_ID));
        // The batch is one API request.
        assert_eq!(fake.stats().api_requests, 1);
    }

    #[test]
    fn change_set_content_id_references_link_rows_created_earlier_in_it() {
        let (fake, token) = demo();
        let changes = change_set(
            "changeset_1",
            &[
                part(
                    Some(1),
                    "POST",
                    &format!("{BASE}/accounts"),
                    r#"{"name":"Parent"}"#,
                ),
                part(
                    Some(2),
                    "POST",
                    &format!("{BASE}/contacts"),
                    r#"{"firstname":"Child","parentcustomerid_account@odata.bind":"$1"}"#,
                ),
                part(
                    Some(3),
                    "PUT",
                    "$1/primarycontactid/$ref",
                    r#"{"@odata.id":"$2"}"#,
                ),
                part(Some(4), "PATCH", "$1", r#"{"accountnumber":"P-1"}"#),
            ],
        );
        let resp = post_batch(&fake, &token, &[], &batch_body(&[changes]));
        assert_eq!(resp.status(), 200, "{}", text(&resp));
        assert_eq!(statuses(&resp), [204, 204, 204, 204]);
        let text = text(&resp);
        assert!(text.contains("Content-Type: multipart/mixed; boundary=changesetresponse_"));
        assert!(text.contains("Content-ID: 3\r\n"));
        let parent = json(&send(
            &fake,
            &token,
            "GET",
            "accounts(accountnumber='P-1')?$expand=primarycontactid($select=fullname),contact_customer_accounts($select=fullname)",
            &[],
            "",
        ));
        assert_eq!(parent["name"], "Parent");
        assert_eq!(parent["primarycontactid"]["fullname"], "Child");
        assert_eq!(parent["contact_customer_accounts"][0]["fullname"], "Child");
    }

    #[test]
    fn failed_change_set_is_rolled_back_and_answered_with_only_the_failure() {
        let (fake, token) = demo();
        let changes = change_set(
            "changeset_x",
            &[
                part(
                    Some(1),
                    "POST",
                    "/api/data/v9.2/accounts",
                    r#"{"name":"Doomed"}"#,
                ),
                part(
                    Some(2),
                    "PATCH",
                    &format!("/api/data/v9.2/accounts({})", account_id(1)),
                    r#"{"name":"Renamed"}"#,
                ),
                part(
                    Some(3),
                    "POST",
                    "/api/data/v9.2/accounts",
                    r#"{"nosuch":1}"#,
                ),
                part(
                    Some(4),
                    "POST",
                    "/api/data/v9.2/accounts",
                    r#"{"name":"Never run"}"#,
                ),
            ],
        );
        let after = part(None, "GET", "/api/data/v9.2/WhoAmI", "");
        let resp = post_batch(&fake, &token, &[], &batch_body(&[changes, after]));
        // Without continue-on-error the batch stops and takes the failure's status.
        assert_eq!(resp.status(), 400);
        assert_eq!(statuses(&resp), [400]);
        let text = text(&resp);
        assert!(text.contains("Content-ID: 3\r\n"));
        assert!(text.contains("0x80048d19"));
        assert!(!text.contains("changesetresponse_"));
        let names = fake.account_names();
        assert_eq!(names.len(), 25);
        assert_eq!(names[0], "Contoso Ltd");
    }

    #[test]
    fn continue_on_error_runs_every_request_and_says_so() {
        let (fake, token) = demo();
        let items = [
            part(None, "POST", "/api/data/v9.2/accounts", r#"{"nosuch":1}"#),
            change_set(
                "changeset_y",
                &[part(
                    Some(1),
                    "DELETE",
                    "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000000)",
                    "",
                )],
            ),
            part(
                None,
                "POST",
                "/api/data/v9.2/accounts",
                r#"{"name":"Still created"}"#,
            ),
        ];
        let body = batch_body(&items);
        let resp = post_batch(
            &fake,
            &token,
            &[("Prefer", "odata.continue-on-error")],
            &body,
        );
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["preference-applied"],
            "odata.continue-on-error"
        );
        assert_eq!(statuses(&resp), [400, 404, 204]);
        assert_eq!(fake.account_names().last().unwrap(), "Still created");

        // The same batch without the preference stops at the first failure.
        let resp = post_batch(&fake, &token, &[], &body);
        assert_eq!((resp.status().as_u16(), statuses(&resp)), (400, vec![400]));
        assert!(resp.headers().get("preference-applied").is_none());
    }

    #[test]
    fn unknown_content_id_reference_fails_the_change_set() {
        let (fake, token) = demo();
        let changes = change_set("cs", &[part(Some(1), "PATCH", "$9", r#"{"name":"x"}"#)]);
        let resp = post_batch(&fake, &token, &[], &batch_body(&[changes]));
        assert_eq!(statuses(&resp), [400]);
        assert!(
            text(&resp).contains("Content-ID Reference: '$9' does not exist in the batch context.")
        );
    }

    #[test]
    fn oversized_and_malformed_batches_are_400() {
        let (fake, token) = demo();
        let many: Vec<String> = (0..1001).map(|_| part(None, "GET", "WhoAmI", "")).collect();
        let resp = post_batch(&fake, &token, &[], &batch_body(&many));
        let message = assert_error(&resp, 400, "0x80060888");
        assert!(message.contains("1000"), "{message}");
        let resp = post_batch(
            &fake,
            &token,
            &[],
            "--batch_AAA123\r\nContent-Type: application/http\r\n\r\n",
        );
        assert_error(&resp, 400, "0x80060888");
        let resp = send(
            &fake,
            &token,
            "POST",
            "$batch",
            &[("Content-Type", "application/json")],
            "{}",
        );
        assert_error(&resp, 400, "0x80060888");
        let nested = batch_body(&[part(None, "POST", "$batch", "")]);
        assert_eq!(statuses(&post_batch(&fake, &token, &[], &nested)), [400]);
        let foreign = batch_body(&[part(
            None,
            "GET",
            "https://evil.example/api/data/v9.2/WhoAmI",
            "",
        )]);
        assert_eq!(statuses(&post_batch(&fake, &token, &[], &foreign)), [400]);
    }

    #[test]
    fn boundaries_come_from_the_content_type() {
        assert_eq!(
            multipart_boundary("multipart/mixed; boundary=\"batch_1\"").as_deref(),
            Some("batch_1")
        );
        assert_eq!(
            multipart_boundary("multipart/mixed;boundary=batch_AAA123").as_deref(),
            Some("batch_AAA123")
        );
        assert_eq!(multipart_boundary("application/json"), None);
        assert_eq!(multipart_boundary("multipart/mixed"), None);
    }

    #[test]
    fn parts_parse_with_crlf_or_lf_and_change_sets_nest() {
        let body = "--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\nPOST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{\"name\":\"x\"}\r\n--cs--\r\n--b\nContent-Type: application/http\n\nGET /api/data/v9.2/WhoAmI HTTP/1.1\n\n\n--b--\n";
        let items = parse_items(body, "b").unwrap();
        let Item::ChangeSet(parts) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(parts[0].content_id.as_deref(), Some("1"));
        assert_eq!(parts[0].target, "accounts");
        assert_eq!(parts[0].body, "{\"name\":\"x\"}");
        assert_eq!(
            parts[0].headers,
            [("content-type".to_string(), "application/json".to_string())]
        );
        let Item::Single(get) = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!((get.method.as_str(), get.body.as_str()), ("GET", ""));
    }

    #[test]
    fn malformed_multipart_is_refused() {
        assert!(parse_items("no boundary here", "b").is_err());
        assert!(
            parse_items(
                "--b\r\nContent-Type: application/http\r\n\r\nGET x HTTP/1.1\r\n",
                "b"
            )
            .is_err()
        );
        assert!(parse_items("--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--", "b").is_err());
        assert!(
            parse_items(
                "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nGET accounts HTTP/1.1\r\n\r\n--c--\r\n--b--",
                "b"
            )
            .unwrap_err()
            .contains("GET")
        );
    }

    #[test]
    fn header_names_are_written_like_dataverse() {
        assert_eq!(display_name("odata-entityid"), "OData-EntityId");
        assert_eq!(display_name("odata-version"), "OData-Version");
        assert_eq!(display_name("content-type"), "Content-Type");
    }
}
