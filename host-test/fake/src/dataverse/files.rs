//! File columns (`accounts.sample_filecolumn`), per Microsoft's Web API:
//! a chunked upload (`PATCH …/{column}?x-ms-file-name=…` with
//! `x-ms-transfer-mode: chunked` → 200, `Location` with a `sessiontoken`,
//! `x-ms-chunk-size`; then `PATCH {Location}` chunks with `Content-Range`,
//! 206 until the last, 204), a single-request upload (`PATCH` with the
//! bytes and `x-ms-file-name`), a ranged download (`GET …/{column}/$value`
//! with `Range` → 206 with `x-ms-file-size`, `x-ms-file-name`,
//! `x-ms-chunk-size`, `mimetype`; without `Range` 200 and the whole file)
//! and `DELETE …/{column}`. Chunks must come in order.

use super::context::Ctx;
use super::records::locate;
use super::reply::{Body, DvError, Reply, bad_request, method_not_allowed};
use crate::State;
use crate::percent;
use bytes::Bytes;
use http::{Method, Request, StatusCode};

/// Dataverse's chunk size.
pub(crate) const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// The column's `MaxSizeInKB` (128 MiB, the largest a file column allows).
const MAX_FILE_BYTES: usize = 128 * 1024 * 1024;

/// The file columns the fake's tables have.
pub(crate) fn is_file_column(set: &str, column: &str) -> bool {
    (set, column) == ("accounts", "sample_filecolumn")
}

/// A stored file.
#[derive(Clone, Debug)]
pub(crate) struct StoredFile {
    name: String,
    bytes: Vec<u8>,
}

/// An upload in progress: where it goes and what came so far.
#[derive(Debug)]
pub(crate) struct Upload {
    target: (String, String, String),
    name: String,
    bytes: Vec<u8>,
}

fn query_value(req: &Request<Bytes>, name: &str) -> Option<String> {
    percent::parse_pairs(req.uri().query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn header(req: &Request<Bytes>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
}

fn too_big() -> DvError {
    DvError::new(
        StatusCode::BAD_REQUEST,
        "0x80044a02",
        "Attachment file size is too big.",
    )
}

pub(crate) fn handle(
    ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
    raw_key: &str,
    column: &str,
    rest: &[super::path::Segment],
) -> Result<Reply, DvError> {
    let table = &state.tables[set];
    let index = locate(table, raw_key)?;
    let id = table.rows[index].id(table.primary_key);
    let target = (set.to_string(), id.clone(), column.to_string());
    match (req.method(), rest) {
        (&Method::PATCH, []) if query_value(req, "sessiontoken").is_some() => chunk(
            state,
            req,
            &target,
            &query_value(req, "sessiontoken").unwrap_or_default(),
        ),
        (&Method::PATCH, []) if header(req, "x-ms-transfer-mode").as_deref() == Some("chunked") => {
            let name = header(req, "x-ms-file-name")
                .or_else(|| query_value(req, "x-ms-file-name"))
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad_request("The file name (x-ms-file-name) is missing."))?;
            let token = state.ids.guid();
            state.uploads.insert(
                token.clone(),
                Upload {
                    target,
                    name,
                    bytes: Vec::new(),
                },
            );
            let location = format!("{}/{column}?sessiontoken={token}", ctx.entity_url(set, &id));
            Ok(Reply::with_status(StatusCode::OK, Body::None)
                .header("location", location)
                .header("x-ms-chunk-size", CHUNK_BYTES.to_string())
                .header("accept-ranges", "bytes")
                .header("access-control-expose-headers", "x-ms-chunk-size"))
        }
        (&Method::PATCH, []) => {
            let name = header(req, "x-ms-file-name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad_request("The file name (x-ms-file-name) is missing."))?;
            if req.body().len() > MAX_FILE_BYTES {
                return Err(too_big());
            }
            let bytes = req.body().to_vec();
            state.files.insert(target, StoredFile { name, bytes });
            Ok(Reply::no_content())
        }
        (&Method::DELETE, []) => {
            state.files.remove(&target);
            Ok(Reply::no_content())
        }
        (&Method::GET, [value]) if value.name == "$value" && value.args.is_none() => {
            download(state, req, &target)
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// `bytes {first}-{last}/{size}`.
fn content_range(req: &Request<Bytes>) -> Option<(usize, usize, usize)> {
    let value = header(req, "content-range")?;
    let (range, size) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?, size.parse().ok()?))
}

fn chunk(
    state: &mut State,
    req: &Request<Bytes>,
    target: &(String, String, String),
    token: &str,
) -> Result<Reply, DvError> {
    let Some(upload) = state.uploads.get_mut(token).filter(|u| &u.target == target) else {
        return Err(bad_request(format!(
            "The upload session '{token}' does not exist or has ended."
        )));
    };
    let Some((first, last, size)) = content_range(req) else {
        return Err(bad_request(
            "The Content-Range header is missing or malformed.",
        ));
    };
    let body = req.body();
    if first != upload.bytes.len() || last < first || last - first + 1 != body.len() || last >= size
    {
        return Err(bad_request(format!(
            "The chunk bytes {first}-{last}/{size} ({} bytes) does not continue the {} bytes received.",
            body.len(),
            upload.bytes.len()
        )));
    }
    if size > MAX_FILE_BYTES {
        state.uploads.remove(token);
        return Err(too_big());
    }
    upload.bytes.extend_from_slice(body);
    if upload.bytes.len() < size {
        return Ok(Reply::with_status(StatusCode::PARTIAL_CONTENT, Body::None));
    }
    let upload = state.uploads.remove(token).expect("found above");
    state.files.insert(
        upload.target,
        StoredFile {
            name: upload.name,
            bytes: upload.bytes,
        },
    );
    Ok(Reply::no_content())
}

fn download(
    state: &State,
    req: &Request<Bytes>,
    target: &(String, String, String),
) -> Result<Reply, DvError> {
    let Some(file) = state.files.get(target) else {
        return Err(DvError::new(
            StatusCode::NOT_FOUND,
            "0x80040217",
            format!(
                "No file attachment found for attribute: {} EntityId: {}.",
                target.2, target.1
            ),
        ));
    };
    let size = file.bytes.len();
    let range = header(req, "range").and_then(|r| {
        let (first, last) = r.strip_prefix("bytes=")?.split_once('-')?;
        Some((first.parse::<usize>().ok()?, last.parse::<usize>().ok()?))
    });
    let reply = match range {
        None => Reply::with_status(
            StatusCode::OK,
            Body::Raw {
                content_type: "application/octet-stream".into(),
                bytes: Bytes::from(file.bytes.clone()),
            },
        ),
        Some((first, last)) if first < size && first <= last => {
            let last = last.min(size - 1);
            Reply::with_status(
                StatusCode::PARTIAL_CONTENT,
                Body::Raw {
                    content_type: "application/octet-stream".into(),
                    bytes: Bytes::copy_from_slice(&file.bytes[first..=last]),
                },
            )
            .header("content-range", format!("bytes {first}-{last}/{size}"))
            .header("x-ms-chunk-size", CHUNK_BYTES.to_string())
        }
        Some(_) => {
            return Err(DvError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "0x80040216",
                format!("The range is outside the file of {size} bytes."),
            ));
        }
    };
    Ok(reply
        .header("x-ms-file-size", size.to_string())
        .header("x-ms-file-name", file.name.clone())
        .header("mimetype", "application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn a_file_goes_up_in_ordered_chunks_and_comes_down_by_range() {
        let (fake, token) = demo();
        let column = format!("accounts({})/sample_filecolumn", account_id(1));
        let start = send(
            &fake,
            &token,
            "PATCH",
            &format!("{column}?x-ms-file-name=big%20file.bin"),
            &[("x-ms-transfer-mode", "chunked")],
            "",
        );
        assert_eq!(start.status(), 200);
        assert_eq!(start.headers()["x-ms-chunk-size"], "4194304");
        let location = start.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.starts_with(&format!("{BASE}/{column}?sessiontoken=")),
            "{location}"
        );
        let path = location
            .strip_prefix(&format!("{BASE}/"))
            .unwrap()
            .to_string();
        let chunk = |range: &str, body: &str| {
            send(
                &fake,
                &token,
                "PATCH",
                &path,
                &[("content-range", range), ("x-ms-file-name", "big file.bin")],
                body,
            )
        };
        assert_eq!(chunk("bytes 0-4/10", "hello").status(), 206);
        // Out of order: refused, nothing kept of it.
        assert_eq!(chunk("bytes 7-9/10", "xyz").status(), 400);
        assert_eq!(chunk("bytes 5-9/10", "world").status(), 204);
        let get = |range: Option<&str>| {
            let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
            send(
                &fake,
                &token,
                "GET",
                &format!("{column}/$value"),
                &headers,
                "",
            )
        };
        let part = get(Some("bytes=3-6"));
        assert_eq!(part.status(), 206);
        assert_eq!(part.body().as_ref(), b"lowo");
        assert_eq!(part.headers()["x-ms-file-size"], "10");
        assert_eq!(part.headers()["x-ms-file-name"], "big file.bin");
        assert_eq!(part.headers()["content-range"], "bytes 3-6/10");
        let whole = get(None);
        assert_eq!(
            (whole.status().as_u16(), whole.body().as_ref()),
            (200, &b"helloworld"[..])
        );
        assert_eq!(get(Some("bytes=10-20")).status(), 416);
        // The session is over.
        assert_eq!(chunk("bytes 0-4/10", "hello").status(), 400);
        let none = send(
            &fake,
            &token,
            "GET",
            &format!("accounts({})/sample_filecolumn/$value", account_id(2)),
            &[],
            "",
        );
        assert_error(&none, 404, "0x80040217");
        assert_eq!(
            send(&fake, &token, "DELETE", &column, &[], "").status(),
            204
        );
        assert_eq!(get(None).status(), 404);
    }
}
