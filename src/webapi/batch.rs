//! `$batch`: many requests in one multipart/mixed POST, optionally inside
//! one change set (atomic), and the multipart response read back in order.

use super::{API_PATH, api_url, is_org_url, prefer};
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
        request = prefer::add(request, &[prefer::CONTINUE_ON_ERROR.into()]);
    }
    Ok(request.body(body.into_bytes()))
}

/// Whether a non-2xx answer to a `$batch` is still its result: Dataverse
/// puts the status of the request that failed on the whole batch, and the
/// multipart body still holds the per-request results the caller asked for.
/// A 429 is throttling of the batch itself, never a result.
pub fn is_result(response: &Response) -> bool {
    response.status != 429
        && response.header("content-type").is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/mixed")
        })
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
#[path = "batch_tests.rs"]
mod tests;
