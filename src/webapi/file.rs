//! File and image columns, in chunks, per Microsoft's Web API protocol.
//!
//! Upload: `PATCH {set}({key})/{column}?x-ms-file-name={name}` with
//! `x-ms-transfer-mode: chunked` and no body opens a session — 200 with
//! `Location` (the same URL with a `sessiontoken`) and `x-ms-chunk-size`;
//! then each chunk is a `PATCH` of that `Location` with `x-ms-file-name`,
//! `Content-Type: application/octet-stream` and `Content-Range: bytes
//! {first}-{last}/{size}`, answered 206 until the last one, 204.
//!
//! Download: `GET {set}({key})/{column}/$value` with `Range:
//! bytes={first}-{last}`, answered 206 (or 200 with the whole file) and
//! `x-ms-file-size` / `x-ms-file-name`. Pure.

use super::entity_key::entity_path;
use super::query::check_identifier;
use super::{api_url, is_org_url};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::percent::query_encode;

/// The largest chunk sent or asked for: Dataverse's own (4 MiB). Smaller
/// when the server says so.
pub const MAX_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// An open upload: where its chunks go, and how large they may be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSession {
    pub location: String,
    pub chunk_bytes: u64,
}

/// One piece of a downloaded file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChunk {
    pub data: Vec<u8>,
    /// The whole file's size.
    pub file_size: u64,
    pub file_name: Option<String>,
}

fn column_url(org_url: &str, entity_set: &str, key: &str, column: &str) -> Result<String, Error> {
    check_identifier("column", column)?;
    Ok(api_url(
        org_url,
        &format!("{}/{column}", entity_path(entity_set, key)?),
    ))
}

fn check_file_name(file_name: &str) -> Result<(), Error> {
    if file_name.is_empty() || file_name.len() > 255 || file_name.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(
            "file-name must be 1 to 255 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// The request that opens an upload session.
pub fn upload_start(
    org_url: &str,
    entity_set: &str,
    key: &str,
    column: &str,
    file_name: &str,
) -> Result<Request, Error> {
    check_file_name(file_name)?;
    let url = column_url(org_url, entity_set, key, column)?;
    Ok(Request::new(
        Method::Patch,
        format!("{url}?x-ms-file-name={}", query_encode(file_name)),
    )
    .header("x-ms-transfer-mode", "chunked"))
}

/// The session the answer opened. Its `Location` must be on the
/// organization (the chunks carry the token); its chunk size is capped at
/// [`MAX_CHUNK_BYTES`] (and a missing or zero one taken as that).
pub fn parse_upload_session(org_url: &str, response: &Response) -> Result<UploadSession, Error> {
    let Some(location) = response.header("location") else {
        return Err(Error::InvalidResponse(
            "the upload answer has no Location for the chunks".into(),
        ));
    };
    if !is_org_url(org_url, location) {
        return Err(Error::InvalidResponse(format!(
            "the upload's Location is not on the organization's origin {org_url}; the access \
             token is sent nowhere else"
        )));
    }
    let chunk_bytes = response
        .header("x-ms-chunk-size")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .map_or(MAX_CHUNK_BYTES, |n| n.min(MAX_CHUNK_BYTES));
    Ok(UploadSession {
        location: location.to_string(),
        chunk_bytes,
    })
}

/// The request that sends `data`, the bytes of the file from `offset`, of
/// a file of `size` bytes. The name goes in a header: only printable ASCII
/// is allowed there (the session's URL carries the real name).
pub fn upload_chunk(
    session: &UploadSession,
    file_name: &str,
    data: Vec<u8>,
    offset: u64,
    size: u64,
) -> Result<Request, Error> {
    let len = data.len() as u64;
    if len == 0 || len > session.chunk_bytes || offset + len > size {
        return Err(Error::InvalidRequest(format!(
            "a chunk of {len} bytes at {offset} does not fit a file of {size} bytes in chunks of \
             at most {}",
            session.chunk_bytes
        )));
    }
    let header_name: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Request::new(Method::Patch, session.location.clone())
        .header("x-ms-file-name", header_name)
        .header("Content-Type", "application/octet-stream")
        .header(
            "Content-Range",
            format!("bytes {offset}-{}/{size}", offset + len - 1),
        )
        .body(data))
}

/// Whether an answer to a chunk is what the protocol says: 206 while bytes
/// remain, 204 (or 200) for the last.
pub fn check_chunk_answer(response: &Response, last: bool) -> Result<(), Error> {
    match (response.status, last) {
        (206, false) | (200 | 204, true) => Ok(()),
        (status, _) => Err(Error::InvalidResponse(format!(
            "the upload answered HTTP {status} to its {} chunk",
            if last { "last" } else { "a middle" }
        ))),
    }
}

/// The request for `length` bytes of the file from `offset`.
pub fn download(
    org_url: &str,
    entity_set: &str,
    key: &str,
    column: &str,
    offset: u64,
    length: u64,
) -> Result<Request, Error> {
    if length == 0 || length > MAX_CHUNK_BYTES {
        return Err(Error::InvalidRequest(format!(
            "a download chunk must be 1 to {MAX_CHUNK_BYTES} bytes"
        )));
    }
    let url = column_url(org_url, entity_set, key, column)?;
    Ok(Request::new(Method::Get, format!("{url}/$value"))
        .header("Range", format!("bytes={offset}-{}", offset + length - 1)))
}

/// The piece the answer carries (its body taken, not copied: a chunk is
/// in memory once). A 206 must be at most the length asked for; a 200 is
/// the whole file (a server that ignores `Range`), accepted only when the
/// read started at 0. The file's size comes from `x-ms-file-size`, else
/// from `Content-Range`, else (200) the body.
pub fn parse_download(response: Response, offset: u64, length: u64) -> Result<FileChunk, Error> {
    let invalid = |why: String| Error::InvalidResponse(format!("the file download {why}"));
    let ranged_size = response
        .header("content-range")
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, size)| size.trim().parse::<u64>().ok());
    let declared = response
        .header("x-ms-file-size")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(ranged_size);
    let got = response.body.len() as u64;
    let file_size = match response.status {
        206 if got > length => {
            return Err(invalid(format!("sent {got} bytes for {length} asked")));
        }
        206 => declared.ok_or_else(|| invalid("gave no file size".into()))?,
        200 if offset == 0 => declared.unwrap_or(got),
        200 => return Err(invalid(format!("ignored the range from {offset}"))),
        status => return Err(invalid(format!("answered HTTP {status}"))),
    };
    if offset + got > file_size {
        return Err(invalid(format!(
            "sent bytes past the end of a file of {file_size} bytes"
        )));
    }
    let file_name = response.header("x-ms-file-name").map(str::to_string);
    let mut data = response.body;
    data.truncate(got.min(length) as usize);
    Ok(FileChunk {
        data,
        file_size,
        file_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://o.crm.dynamics.com";
    const ID: &str = "8f4c3f92-312b-ee11-bdf4-000d3a993550";

    fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn an_upload_opens_a_session_on_the_org_and_sends_ranged_chunks() {
        let start = upload_start(ORG, "accounts", ID, "sample_filecolumn", "25 mb.pdf").unwrap();
        assert_eq!(start.method, Method::Patch);
        assert_eq!(
            start.url,
            format!(
                "{ORG}/api/data/v9.2/accounts({ID})/sample_filecolumn?x-ms-file-name=25%20mb.pdf"
            )
        );
        assert_eq!(start.header_value("x-ms-transfer-mode"), Some("chunked"));
        assert!(start.body.is_empty());
        let location =
            format!("{ORG}/api/data/v9.2/accounts({ID})/sample_filecolumn?sessiontoken=abc");
        let opened = answer(
            200,
            &[("Location", &location), ("x-ms-chunk-size", "4194304")],
            b"",
        );
        let session = parse_upload_session(ORG, &opened).unwrap();
        assert_eq!(
            session,
            UploadSession {
                location: location.clone(),
                chunk_bytes: 4_194_304
            }
        );
        let big = answer(
            200,
            &[("Location", &location), ("x-ms-chunk-size", "99999999")],
            b"",
        );
        assert_eq!(
            parse_upload_session(ORG, &big).unwrap().chunk_bytes,
            MAX_CHUNK_BYTES
        );
        let small = answer(
            200,
            &[("Location", &location), ("x-ms-chunk-size", "1000")],
            b"",
        );
        assert_eq!(parse_upload_session(ORG, &small).unwrap().chunk_bytes, 1000);
        for bad in [
            answer(200, &[], b""),
            answer(
                200,
                &[("Location", "https://evil.example/x?sessiontoken=abc")],
                b"",
            ),
        ] {
            assert!(matches!(
                parse_upload_session(ORG, &bad),
                Err(Error::InvalidResponse(_))
            ));
        }
        let chunk =
            upload_chunk(&session, "25 mb ü.pdf", vec![7; 10], 4_194_304, 4_194_314).unwrap();
        assert_eq!(chunk.url, location);
        assert_eq!(
            chunk.header_value("Content-Range"),
            Some("bytes 4194304-4194313/4194314")
        );
        assert_eq!(chunk.header_value("x-ms-file-name"), Some("25 mb _.pdf"));
        assert_eq!(
            chunk.header_value("Content-Type"),
            Some("application/octet-stream")
        );
        assert_eq!(chunk.body.len(), 10);
        for (len, offset, size) in [(0, 0, 10), (11, 0, 10), (5, 8, 10)] {
            assert!(upload_chunk(&session, "f", vec![0; len], offset, size).is_err());
        }
        let small_session = UploadSession {
            location,
            chunk_bytes: 4,
        };
        assert!(upload_chunk(&small_session, "f", vec![0; 5], 0, 10).is_err());
        for name in ["", "a\nb", &"x".repeat(256)] {
            assert!(upload_start(ORG, "accounts", ID, "c", name).is_err());
        }
        assert!(upload_start(ORG, "accounts", ID, "c/../d", "f").is_err());
        assert!(check_chunk_answer(&answer(206, &[], b""), false).is_ok());
        assert!(check_chunk_answer(&answer(204, &[], b""), true).is_ok());
        assert!(check_chunk_answer(&answer(204, &[], b""), false).is_err());
        assert!(check_chunk_answer(&answer(206, &[], b""), true).is_err());
    }

    #[test]
    fn a_download_asks_for_a_range_and_checks_what_comes_back() {
        let request = download(ORG, "accounts", ID, "sample_filecolumn", 4096, 1024).unwrap();
        assert_eq!(
            request.url,
            format!("{ORG}/api/data/v9.2/accounts({ID})/sample_filecolumn/$value")
        );
        assert_eq!(request.header_value("Range"), Some("bytes=4096-5119"));
        assert!(download(ORG, "accounts", ID, "c", 0, 0).is_err());
        assert!(download(ORG, "accounts", ID, "c", 0, MAX_CHUNK_BYTES + 1).is_err());

        let piece = answer(
            206,
            &[("x-ms-file-size", "5000"), ("x-ms-file-name", "a.bin")],
            &[1; 904],
        );
        let chunk = parse_download(piece, 4096, 1024).unwrap();
        assert_eq!((chunk.data.len(), chunk.file_size), (904, 5000));
        assert_eq!(chunk.file_name.as_deref(), Some("a.bin"));
        let by_range = answer(206, &[("Content-Range", "bytes 0-9/20")], &[1; 10]);
        assert_eq!(parse_download(by_range, 0, 10).unwrap().file_size, 20);
        let whole = answer(200, &[], &[2; 30]);
        let chunk = parse_download(whole, 0, 10).unwrap();
        assert_eq!((chunk.data.len(), chunk.file_size), (10, 30));
        for (response, offset, length, why) in [
            (
                answer(206, &[("x-ms-file-size", "100")], &[0; 11]),
                0,
                10,
                "11 bytes for 10",
            ),
            (answer(206, &[], &[0; 5]), 0, 10, "no file size"),
            (answer(200, &[], &[0; 5]), 10, 10, "ignored the range"),
            (
                answer(206, &[("x-ms-file-size", "12")], &[0; 10]),
                5,
                10,
                "past the end",
            ),
            (answer(416, &[], b""), 0, 10, "HTTP 416"),
        ] {
            let err = parse_download(response, offset, length).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidResponse(m) if m.contains(why)),
                "{err:?}"
            );
        }
    }
}
