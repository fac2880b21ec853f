//! What the fuzz targets share: a readable input format (so the seed corpus
//! is text a person can write and review), and the secret-leak check.
//!
//! Input format. A target that needs several inputs splits its bytes into
//! sections at lines holding only `%%`. A section that stands for an HTTP
//! response reads like one: a status line, `Name: value` header lines, a
//! blank line, then the body (raw bytes). Every byte string is a valid input:
//! nothing here rejects, it only reads leniently, so the fuzzer never wastes
//! runs on inputs the harness throws away.

use std::fmt::{Debug, Display};
use std::ops::Range;

use dataverse_wasm::http::Response;

/// The line that separates sections.
const SECTION_BREAK: &[u8] = b"\n%%\n";

/// `data` split at every `\n%%\n`.
pub fn sections(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, SECTION_BREAK) {
        out.push(&rest[..at]);
        rest = &rest[at + SECTION_BREAK.len()..];
    }
    out.push(rest);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Text the way a transport would hand it over after a lossy decode.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The first line (without `\r\n`) and everything after it.
pub fn first_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|b| *b == b'\n') {
        Some(at) => (trim_cr(&bytes[..at]), &bytes[at + 1..]),
        None => (trim_cr(bytes), &[]),
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `Name: value` lines up to the first blank line, and what follows it.
/// Values stay bytes (the gateway receives them so); a line without a colon
/// is skipped.
pub fn head(mut bytes: &[u8]) -> (Vec<(String, Vec<u8>)>, &[u8]) {
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let (line, rest) = first_line(bytes);
        bytes = rest;
        if line.is_empty() {
            break;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            let value = line[colon + 1..].trim_ascii().to_vec();
            headers.push((text(line[..colon].trim_ascii()), value));
        }
    }
    (headers, bytes)
}

/// An HTTP response in the format above. A status line that is not a
/// number reads as 200, so a body-only input still reaches the parsers.
pub fn response(bytes: &[u8]) -> Response {
    let (status, rest) = first_line(bytes);
    let status = text(status).trim().parse().unwrap_or(200);
    let (headers, body) = head(rest);
    Response {
        status,
        headers: headers.into_iter().map(|(n, v)| (n, text(&v))).collect(),
        body: body.to_vec(),
    }
}

/// Everything a caller could print of a result: `Display` and `Debug` of an
/// error, `Debug` of a value.
pub fn printed<T: Debug, E: Display + Debug>(result: &Result<T, E>) -> String {
    match result {
        Ok(value) => format!("{value:?}"),
        Err(e) => format!("{e}\n{e:?}"),
    }
}

/// Secrets shorter than this are not checked: a short one turns up in
/// ordinary text by chance ("HTTP", "200").
pub const MIN_SECRET_CHARS: usize = 8;

/// `input` with the characters in each range replaced by a filler of the
/// same length in characters (so positions in messages stay the same), a
/// filler that differs from what it replaces.
pub fn redact(input: &str, ranges: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut at = 0;
    for range in ranges {
        out.push_str(&input[at..range.start]);
        let secret = &input[range.clone()];
        let filler = if secret.chars().all(|c| c == 'Z') {
            'Y'
        } else {
            'Z'
        };
        out.extend(std::iter::repeat_n(filler, secret.chars().count()));
        at = range.end;
    }
    out.push_str(&input[at..]);
    out
}

/// The leak check, differential so that it never cries wolf: `secret` was
/// given to the parser, `printed` is what the parser's result prints, and
/// `printed_redacted` what it prints when only the secret is replaced by
/// filler. A secret that shows in the first but not in the second came from
/// the secret itself — not from fixed message text or another value that
/// happens to hold the same characters.
pub fn assert_not_leaked(what: &str, secret: &str, printed: &str, printed_redacted: &str) {
    if secret.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    assert!(
        !printed.contains(secret) || printed_redacted.contains(secret),
        "{what} leaked: {secret:?} appears in {printed:?}"
    );
}

/// Keys of a connection string whose values are secrets, lower case as the
/// tokenizer compares them (`password` is ServiceClient's user password,
/// accepted and ignored, and no less secret for that).
const SECRET_KEYS: &[&str] = &[
    "clientsecret",
    "secret",
    "certificatepassword",
    "certpassword",
    "password",
];

/// Byte ranges of the values of secret keys in a connection string, by a
/// reading deliberately simpler than the parser's, so the check does not
/// trust the code it checks: only pairs before the first quote character
/// (after one, a `;` may sit inside a quoted value and what looks like a
/// pair may be part of another value) and only unquoted values, trimmed as
/// DbConnectionStringBuilder trims them.
pub fn connection_string_secrets(input: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut offset = 0;
    for segment in input.split(';') {
        let start = offset;
        offset += segment.len() + 1;
        if segment.contains(['\'', '"']) {
            break;
        }
        let Some(eq) = segment.find('=') else {
            continue;
        };
        // `==` in a key is a literal `=`, so this key is none of ours.
        if segment[eq + 1..].starts_with('=') {
            continue;
        }
        let key = segment[..eq].trim().to_lowercase();
        if !SECRET_KEYS.contains(&key.as_str()) {
            continue;
        }
        let raw = &segment[eq + 1..];
        let leading = raw.len() - raw.trim_start().len();
        let value = raw.trim();
        if value.chars().count() >= MIN_SECRET_CHARS {
            let value_start = start + eq + 1 + leading;
            found.push(value_start..value_start + value.len());
        }
    }
    found
}

/// Byte ranges of the `"access_token"` string values in a JSON body, found
/// by scanning, without a JSON parser: any `"access_token"` followed by `:`
/// and a string without escapes (the raw bytes are then the value).
pub fn access_token_values(body: &[u8]) -> Vec<Range<usize>> {
    const KEY: &[u8] = b"\"access_token\"";
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&body[from..], KEY) {
        let mut i = from + at + KEY.len();
        from = i;
        let skip_space = |i: &mut usize| {
            while body.get(*i).is_some_and(|b| b" \t\r\n".contains(b)) {
                *i += 1;
            }
        };
        skip_space(&mut i);
        if body.get(i) != Some(&b':') {
            continue;
        }
        i += 1;
        skip_space(&mut i);
        if body.get(i) != Some(&b'"') {
            continue;
        }
        let start = i + 1;
        let Some(len) = body[start..].iter().position(|b| *b == b'"') else {
            continue;
        };
        let value = &body[start..start + len];
        if !value.contains(&b'\\') && std::str::from_utf8(value).is_ok() {
            found.push(start..start + len);
        }
    }
    found
}

/// `bytes` with each range overwritten by ASCII filler (same length, so a
/// JSON body stays valid JSON and every offset stays put).
pub fn redact_bytes(bytes: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for range in ranges {
        let filler = if bytes[range.clone()].iter().all(|b| *b == b'Z') {
            b'Y'
        } else {
            b'Z'
        };
        out[range.clone()].fill(filler);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_read_like_http() {
        let r = response(b"401\r\nWWW-Authenticate: Bearer x\nbad line\n\nbody\n%%");
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Bearer x"));
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.body, b"body\n%%");
        assert_eq!(response(b"{}").status, 200);
    }

    #[test]
    fn sections_split_at_percent_lines() {
        assert_eq!(sections(b"a\n%%\nb\n%%\n"), vec![&b"a"[..], b"b", b""]);
        assert_eq!(sections(b"a%%b"), vec![&b"a%%b"[..]]);
    }

    #[test]
    fn connection_string_secrets_are_found_before_any_quote() {
        let input = "Url=x; ClientSecret = abcdefgh ;Secret==x;Password=short;\
                     CertificatePassword=12345678;a='q';Secret=after-quote";
        let found: Vec<&str> = connection_string_secrets(input)
            .into_iter()
            .map(|r| &input[r])
            .collect();
        assert_eq!(found, ["abcdefgh", "12345678"]);
        assert_eq!(
            redact("a=abcdefgh;", &[2..10, 11..11]),
            "a=ZZZZZZZZ;",
            "same length"
        );
    }

    #[test]
    fn access_tokens_are_found_by_scanning() {
        let body = br#"{"access_token" : "eyJ0eXAi.x.y", "a":{"access_token":"e\"x"}}"#;
        let found: Vec<&[u8]> = access_token_values(body)
            .into_iter()
            .map(|r| &body[r])
            .collect();
        assert_eq!(found, [&b"eyJ0eXAi.x.y"[..]]);
    }

    #[test]
    fn a_leak_is_reported_only_when_it_comes_from_the_secret() {
        assert_not_leaked("s", "position", "at position 3", "at position 3");
        let caught = std::panic::catch_unwind(|| {
            assert_not_leaked("s", "abcdefgh", "bad abcdefgh", "bad ZZZZZZZZ")
        });
        assert!(caught.is_err());
    }
}
