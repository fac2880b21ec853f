//! `$batch`: many requests in one multipart/mixed POST, optionally inside
//! one change set (atomic), and the multipart response read back in order.

use super::{API_PATH, api_url, is_org_url};
use crate::error::Error;
use crate::http::{Method, Request, Response, split_url};
use crate::percent::escape_uri;

/// Dataverse accepts at most this many requests in one batch.
pub const MAX_BATCH_REQUESTS: usize = 1000;

/// Nested multiparts deeper than batch → change set are not OData.
const MAX_DEPTH: usize = 2;

/// One request inside a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPart {
    pub method: Method,
    /// Relative to the Web API base (`accounts`, `accounts(<guid>)`), an
    /// absolute URL on the organization, or — inside a change set — a
    /// Content-ID reference to an earlier part (`$1`, `$1/primarycontactid/$ref`).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// One response inside a batch response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchItem {
    /// The `Content-ID` of the request it answers (change-set parts).
    pub content_id: Option<String>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// POST `$batch`. In a change set every part gets `Content-ID: n` (1-based),
/// which later parts may reference as `$n`. `boundary_seed` should be random.
pub fn request(
    org_url: &str,
    parts: &[BatchPart],
    change_set: bool,
    continue_on_error: bool,
    boundary_seed: u128,
) -> Result<Request, Error> {
    if parts.is_empty() || parts.len() > MAX_BATCH_REQUESTS {
        return Err(Error::InvalidRequest(format!(
            "parts must hold between 1 and {MAX_BATCH_REQUESTS} requests (Dataverse's limit per batch), not {}",
            parts.len()
        )));
    }
    let batch = format!("batch_{boundary_seed:032x}");
    let changeset = format!("changeset_{boundary_seed:032x}");
    let mut encoded = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        encoded.push(encode_part(org_url, part, i + 1, change_set)?);
    }
    if encoded
        .iter()
        .any(|p| p.contains(&batch) || p.contains(&changeset))
    {
        return Err(Error::InvalidRequest(
            "parts contain the multipart boundary; use another boundary seed".into(),
        ));
    }
    let mut body = String::new();
    if change_set {
        body.push_str(&format!(
            "--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        ));
        for part in &encoded {
            body.push_str(&format!("--{changeset}\r\n{part}"));
        }
        body.push_str(&format!("--{changeset}--\r\n\r\n"));
    } else {
        for part in &encoded {
            body.push_str(&format!("--{batch}\r\n{part}"));
        }
    }
    body.push_str(&format!("--{batch}--\r\n"));
    let mut request = Request::new(Method::Post, api_url(org_url, "$batch"))
        .header("Content-Type", format!("multipart/mixed; boundary={batch}"));
    if continue_on_error {
        request = request.header("Prefer", "odata.continue-on-error");
    }
    Ok(request.body(body.into_bytes()))
}

/// One `application/http` part, ending with the CRLF that precedes the
/// next delimiter.
fn encode_part(
    org_url: &str,
    part: &BatchPart,
    content_id: usize,
    change_set: bool,
) -> Result<String, Error> {
    let which = format!("part {content_id}");
    if change_set && part.method == Method::Get {
        return Err(Error::InvalidRequest(format!(
            "parts: {which} is a GET, and a change set may only hold changes; send reads outside the change set"
        )));
    }
    let target = part_target(org_url, &part.url, content_id, change_set)
        .map_err(|why| Error::InvalidRequest(format!("parts: {which} url {why}")))?;
    let mut out =
        String::from("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if change_set {
        out.push_str(&format!("Content-ID: {content_id}\r\n"));
    }
    out.push_str(&format!(
        "\r\n{} {target} HTTP/1.1\r\n",
        part.method.as_str()
    ));
    for (name, value) in &part.headers {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !name_ok || value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Error::InvalidRequest(format!(
                "parts: {which} has a header that is not a valid HTTP header"
            )));
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let has_content_type = part
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if let Some(body) = &part.body {
        if !has_content_type {
            out.push_str("Content-Type: application/json; type=entry\r\n");
        }
        out.push_str(&format!("\r\n{body}\r\n"));
    } else {
        out.push_str("\r\n\r\n");
    }
    Ok(out)
}

/// The request-line target: `/api/data/v9.2/…`, or a `$n` reference as is.
fn part_target(
    org_url: &str,
    url: &str,
    content_id: usize,
    change_set: bool,
) -> Result<String, &'static str> {
    if let Some(reference) = url.strip_prefix('$') {
        let digits = reference.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            if !change_set {
                return Err("is a Content-ID reference, which only works inside a change set");
            }
            let n: usize = reference[..digits].parse().unwrap_or(usize::MAX);
            let rest = &reference[digits..];
            if n == 0 || n >= content_id || !(rest.is_empty() || rest.starts_with('/')) {
                return Err("must reference an earlier part of the change set ($1, $2…)");
            }
            return Ok(escape_uri(url));
        }
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        if !is_org_url(org_url, url) {
            return Err("is not on the organization's origin");
        }
        let path = split_url(url).map_or("/", |p| p.path_and_query);
        return Ok(escape_uri(path));
    }
    if url.contains("://") || url.starts_with("//") {
        return Err("is not a Web API path or an organization URL");
    }
    let path = if url.starts_with("/api/data/") {
        url.to_string()
    } else {
        format!("{API_PATH}{}", url.strip_prefix('/').unwrap_or(url))
    };
    Ok(escape_uri(&path))
}

/// Reads a `$batch` response: every `application/http` part in order,
/// change-set responses flattened in place.
pub fn parse_response(response: &Response) -> Result<Vec<BatchItem>, Error> {
    let content_type = response
        .header("Content-Type")
        .ok_or_else(|| invalid("the batch response has no Content-Type"))?;
    let boundary = multipart_boundary(content_type)
        .ok_or_else(|| invalid("the batch response is not multipart/mixed with a boundary"))?;
    let text = std::str::from_utf8(&response.body)
        .map_err(|_| invalid("the batch response is not UTF-8 text"))?;
    let mut items = Vec::new();
    parse_multipart(text, boundary, 1, &mut items)?;
    Ok(items)
}

fn invalid(message: &str) -> Error {
    Error::InvalidResponse(format!("$batch: {message}"))
}

/// The `boundary` parameter of a `multipart/mixed` content type.
fn multipart_boundary(content_type: &str) -> Option<&str> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty()).then_some(value)
    })
}

/// Splits `text` at the delimiter lines of `boundary` and parses each part.
fn parse_multipart(
    text: &str,
    boundary: &str,
    depth: usize,
    items: &mut Vec<BatchItem>,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(invalid("multipart parts are nested too deeply"));
    }
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut part_start: Option<usize> = None;
    let mut closed = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let content = line.trim_end();
        if content == delimiter || content == close {
            if let Some(start) = part_start {
                parse_part(
                    strip_last_line_break(&text[start..line_start]),
                    depth,
                    items,
                )?;
            }
            if content == close {
                closed = true;
                break;
            }
            part_start = Some(offset);
        }
    }
    if !closed {
        return Err(invalid(
            "the multipart body ends without its closing delimiter",
        ));
    }
    Ok(())
}

/// The line break before a delimiter belongs to the delimiter.
fn strip_last_line_break(part: &str) -> &str {
    part.strip_suffix("\r\n")
        .or_else(|| part.strip_suffix('\n'))
        .unwrap_or(part)
}

/// A part: MIME headers, a blank line, then an HTTP response or a nested
/// (change-set) multipart.
fn parse_part(part: &str, depth: usize, items: &mut Vec<BatchItem>) -> Result<(), Error> {
    let (mime_headers, content) = split_head(part)?;
    let content_type = header(&mime_headers, "Content-Type").unwrap_or("");
    if let Some(boundary) = multipart_boundary(content_type) {
        return parse_multipart(content, boundary, depth + 1, items);
    }
    let content = content.trim_start_matches(['\r', '\n']);
    let (status_line, rest) = content.split_once('\n').unwrap_or((content, ""));
    let status = parse_status_line(status_line.trim_end())?;
    let (headers, body) = split_head(rest)?;
    let content_id = header(&mime_headers, "Content-ID")
        .or_else(|| header(&headers, "Content-ID"))
        .map(str::to_string);
    items.push(BatchItem {
        content_id,
        status,
        headers,
        body: body.trim_end().to_string(),
    });
    Ok(())
}

/// `HTTP/1.1 204 No Content` → 204.
fn parse_status_line(line: &str) -> Result<u16, Error> {
    let mut words = line.split_ascii_whitespace();
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(invalid("a part does not start with an HTTP status line"));
    }
    match code.parse::<u16>() {
        Ok(status @ 100..=599) => Ok(status),
        _ => Err(invalid("a part has an invalid HTTP status")),
    }
}

type Headers = Vec<(String, String)>;

/// Splits header lines from what follows the first blank line.
fn split_head(text: &str) -> Result<(Headers, &str), Error> {
    let mut headers = Headers::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let content = line.trim_end_matches(['\r', '\n']);
        if content.trim().is_empty() {
            return Ok((headers, &text[offset..]));
        }
        if content.starts_with([' ', '\t']) {
            // An obsolete folded continuation line.
            let Some((_, value)) = headers.last_mut() else {
                return Err(invalid("a part starts with a continuation line"));
            };
            value.push(' ');
            value.push_str(content.trim());
            continue;
        }
        let (name, value) = content
            .split_once(':')
            .ok_or_else(|| invalid("a part has a header line without a colon"))?;
        if name.trim().is_empty() {
            return Err(invalid("a part has a header without a name"));
        }
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    // No blank line: headers only, nothing after them.
    Ok((headers, ""))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://contoso.crm.dynamics.com";
    const ID: &str = "00000000-0000-0000-0000-000000000001";
    const SEED: u128 = 0xabc;
    const B: &str = "batch_00000000000000000000000000000abc";
    const C: &str = "changeset_00000000000000000000000000000abc";

    fn part(method: Method, url: &str, body: Option<&str>) -> BatchPart {
        BatchPart {
            method,
            url: url.into(),
            headers: vec![],
            body: body.map(str::to_string),
        }
    }

    fn body(r: &Request) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn a_plain_batch_lists_each_request_as_an_http_part() {
        let mut get = part(Method::Get, "accounts?$select=name&$top=2", None);
        get.headers
            .push(("Prefer".into(), "odata.include-annotations=\"*\"".into()));
        let parts = [
            get,
            part(
                Method::Patch,
                &format!("{ORG}/api/data/v9.2/accounts({ID})"),
                Some(r#"{"name":"B"}"#),
            ),
            part(
                Method::Delete,
                &format!("/api/data/v9.2/accounts({ID})"),
                None,
            ),
            part(Method::Get, "/WhoAmI", None),
        ];
        let req = request(ORG, &parts, false, true, SEED).unwrap();
        assert_eq!(req.method, Method::Post);
        assert_eq!(req.url, format!("{ORG}/api/data/v9.2/$batch"));
        assert_eq!(
            req.headers,
            [
                (
                    "Content-Type".to_string(),
                    format!("multipart/mixed; boundary={B}")
                ),
                ("Prefer".to_string(), "odata.continue-on-error".to_string()),
            ]
        );
        let expected = format!(
            "--{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             GET /api/data/v9.2/accounts?$select=name&$top=2 HTTP/1.1\r\n\
             Prefer: odata.include-annotations=\"*\"\r\n\
             \r\n\
             \r\n\
             --{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             PATCH /api/data/v9.2/accounts({ID}) HTTP/1.1\r\n\
             Content-Type: application/json; type=entry\r\n\
             \r\n\
             {{\"name\":\"B\"}}\r\n\
             --{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             DELETE /api/data/v9.2/accounts({ID}) HTTP/1.1\r\n\
             \r\n\
             \r\n\
             --{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             GET /api/data/v9.2/WhoAmI HTTP/1.1\r\n\
             \r\n\
             \r\n\
             --{B}--\r\n"
        );
        assert_eq!(body(&req), expected);
    }

    #[test]
    fn a_change_set_wraps_all_parts_with_content_ids() {
        let mut with_type = part(Method::Post, "$1/primarycontactid/$ref", Some("{}"));
        with_type
            .headers
            .push(("Content-Type".into(), "application/json".into()));
        let parts = [
            part(Method::Post, "accounts", Some(r#"{"name":"A"}"#)),
            with_type,
        ];
        let req = request(ORG, &parts, true, false, SEED).unwrap();
        assert_eq!(req.header_value("prefer"), None);
        let expected = format!(
            "--{B}\r\n\
             Content-Type: multipart/mixed; boundary={C}\r\n\
             \r\n\
             --{C}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             Content-ID: 1\r\n\
             \r\n\
             POST /api/data/v9.2/accounts HTTP/1.1\r\n\
             Content-Type: application/json; type=entry\r\n\
             \r\n\
             {{\"name\":\"A\"}}\r\n\
             --{C}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             Content-ID: 2\r\n\
             \r\n\
             POST $1/primarycontactid/$ref HTTP/1.1\r\n\
             Content-Type: application/json\r\n\
             \r\n\
             {{}}\r\n\
             --{C}--\r\n\
             \r\n\
             --{B}--\r\n"
        );
        assert_eq!(body(&req), expected);
    }

    #[test]
    fn part_urls_are_escaped_so_they_cannot_break_the_request_line() {
        let parts = [part(
            Method::Get,
            "accounts?$filter=name eq 'a b'\r\nX: y",
            None,
        )];
        let text = body(&request(ORG, &parts, false, false, SEED).unwrap());
        assert!(
            text.contains(
                "GET /api/data/v9.2/accounts?$filter=name%20eq%20'a%20b'%0D%0AX:%20y HTTP/1.1\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn invalid_batches_are_invalid_requests() {
        let ok = part(Method::Post, "accounts", Some("{}"));
        let many = vec![ok.clone(); MAX_BATCH_REQUESTS + 1];
        let mut bad_header = ok.clone();
        bad_header
            .headers
            .push(("X".into(), "a\r\nInjected: 1".into()));
        let mut bad_name = ok.clone();
        bad_name.headers.push(("X Y".into(), "1".into()));
        let boundary_in_body = part(Method::Post, "accounts", Some(&format!("--{B}")));
        let cases: Vec<(Vec<BatchPart>, bool, &str)> = vec![
            (vec![], false, "1000"),
            (many, false, "1000"),
            (vec![part(Method::Get, "accounts", None)], true, "GET"),
            (
                vec![part(
                    Method::Post,
                    "https://evil.example/api/data/v9.2/accounts",
                    None,
                )],
                false,
                "origin",
            ),
            (
                vec![part(
                    Method::Post,
                    "https://contoso.crm.dynamics.com.evil.example/x",
                    None,
                )],
                false,
                "origin",
            ),
            (
                vec![part(Method::Post, "//evil.example/x", None)],
                false,
                "url",
            ),
            (
                vec![part(Method::Post, "ftp://contoso.crm.dynamics.com/x", None)],
                false,
                "url",
            ),
            (vec![part(Method::Post, "$1", None)], false, "change set"),
            (
                vec![ok.clone(), part(Method::Post, "$2", None)],
                true,
                "earlier",
            ),
            (
                vec![ok.clone(), part(Method::Post, "$0", None)],
                true,
                "earlier",
            ),
            (
                vec![ok.clone(), part(Method::Post, "$1x", None)],
                true,
                "earlier",
            ),
            (vec![bad_header], false, "header"),
            (vec![bad_name], false, "header"),
            (vec![boundary_in_body], false, "boundary"),
        ];
        for (parts, change_set, words) in cases {
            match request(ORG, &parts, change_set, false, SEED) {
                Err(Error::InvalidRequest(m)) => {
                    assert!(m.starts_with("parts"), "{m}");
                    assert!(m.contains(words), "{m} should say {words}");
                }
                other => panic!("{parts:?}: {other:?}"),
            }
        }
    }

    fn response(content_type: &str, body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn item(id: Option<&str>, status: u16, headers: &[(&str, &str)], body: &str) -> BatchItem {
        BatchItem {
            content_id: id.map(str::to_string),
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    #[test]
    fn a_batch_response_with_a_change_set_is_read_in_order() {
        let text = "--batchresponse_1\r\n\
            Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\
            \r\n\
            --changesetresponse_2\r\n\
            Content-Type: application/http\r\n\
            Content-Transfer-Encoding: binary\r\n\
            Content-ID: 1\r\n\
            \r\n\
            HTTP/1.1 204 No Content\r\n\
            OData-Version: 4.0\r\n\
            Location: https://o/api/data/v9.2/tasks(1)\r\n\
            OData-EntityId: https://o/api/data/v9.2/tasks(1)\r\n\
            \r\n\
            \r\n\
            --changesetresponse_2\r\n\
            Content-Type: application/http\r\n\
            Content-Transfer-Encoding: binary\r\n\
            Content-ID: 2\r\n\
            \r\n\
            HTTP/1.1 201 Created\r\n\
            Content-Type: application/json; odata.metadata=minimal\r\n\
            \r\n\
            {\"a\":\"--changesetresponse_2 is not a delimiter here\"}\r\n\
            --changesetresponse_2--\r\n\
            --batchresponse_1\r\n\
            Content-Type: application/http\r\n\
            Content-Transfer-Encoding: binary\r\n\
            \r\n\
            HTTP/1.1 200 OK\r\n\
            Content-Type: application/json\r\n\
            \r\n\
            {\"value\":[]}\r\n\
            --batchresponse_1--\r\n";
        let items =
            parse_response(&response("multipart/mixed; boundary=batchresponse_1", text)).unwrap();
        assert_eq!(
            items,
            [
                item(
                    Some("1"),
                    204,
                    &[
                        ("OData-Version", "4.0"),
                        ("Location", "https://o/api/data/v9.2/tasks(1)"),
                        ("OData-EntityId", "https://o/api/data/v9.2/tasks(1)"),
                    ],
                    ""
                ),
                item(
                    Some("2"),
                    201,
                    &[("Content-Type", "application/json; odata.metadata=minimal")],
                    "{\"a\":\"--changesetresponse_2 is not a delimiter here\"}"
                ),
                item(
                    None,
                    200,
                    &[("Content-Type", "application/json")],
                    "{\"value\":[]}"
                ),
            ]
        );
    }

    #[test]
    fn lf_line_endings_preambles_and_epilogues_are_tolerated() {
        let text = "preamble text\n\
            --b  \n\
            Content-Type: application/http\n\
            \n\
            HTTP/1.1 400 Bad Request\n\
            Content-Type: application/json\n\
            \n\
            {\"error\":{\"code\":\"0x80040237\",\"message\":\"dup\"}}\n\n\
            --b--   \n\
            epilogue";
        let items = parse_response(&response(
            "Multipart/Mixed; charset=utf-8; boundary=\"b\"",
            text,
        ))
        .unwrap();
        assert_eq!(
            items,
            [item(
                None,
                400,
                &[("Content-Type", "application/json")],
                "{\"error\":{\"code\":\"0x80040237\",\"message\":\"dup\"}}"
            )]
        );
        let empty = parse_response(&response("multipart/mixed; boundary=b", "--b--")).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn malformed_batch_responses_are_invalid_responses() {
        let http = "Content-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        let cases = [
            ("application/json", "{}".to_string()),
            ("multipart/mixed", "--b--".to_string()),
            ("multipart/mixed; boundary=", "--b--".to_string()),
            ("multipart/mixed; boundary=b", "".to_string()),
            ("multipart/mixed; boundary=b", format!("--b\r\n{http}")),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 2000 OK\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 abc OK\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nnot http\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\nbad header\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nno colon\r\n\r\nHTTP/1.1 200 OK\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d--\r\n--c--\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n".to_string() + http + "--b--"),
        ];
        for (content_type, text) in cases {
            let result = parse_response(&response(content_type, &text));
            assert!(
                matches!(result, Err(Error::InvalidResponse(_))),
                "{text:?}: {result:?}"
            );
        }
        let mut no_type = response("x", "--b--");
        no_type.headers.clear();
        assert!(parse_response(&no_type).is_err());
        let mut bad_utf8 = response("multipart/mixed; boundary=b", "");
        bad_utf8.body = b"--b\r\n\xff\r\n--b--".to_vec();
        assert!(parse_response(&bad_utf8).is_err());
    }

    #[test]
    fn a_built_batch_parses_back_as_requests_do_not_panic_the_parser() {
        // The request body is not a response, but feeding it in must not panic.
        let parts = [part(Method::Post, "accounts", Some("{}"))];
        let req = request(ORG, &parts, true, false, SEED).unwrap();
        let resp = response(&format!("multipart/mixed; boundary={B}"), &body(&req));
        assert!(parse_response(&resp).is_err());
    }

    #[test]
    fn garbage_batch_responses_never_panic() {
        let pieces = [
            "--b",
            "--b--",
            "--c",
            "--c--",
            "\r\n",
            "\n",
            "\r",
            " ",
            ":",
            "Content-Type",
            ": multipart/mixed; boundary=c",
            ": application/http",
            "HTTP/1.1 ",
            "204",
            "200 OK",
            "Content-ID: 1",
            "é",
            "😀",
            "{}",
            "\t",
        ];
        for text in super::super::entity_key::garbage_strings(&pieces, 30_000) {
            let _ = parse_response(&response("multipart/mixed; boundary=b", &text));
        }
    }
}
