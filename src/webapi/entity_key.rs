//! Entity paths: `accounts(<guid>)` or `accounts(accountnumber='A-1')`.
//!
//! A key is either the row's GUID or an alternate key (`name=value` pairs).
//! Everything a caller passes is checked, so a key can never add a path
//! segment or a query to the URL.

use super::query::check_identifier;
use crate::error::Error;

const KEY_HELP: &str = "key must be a GUID or an alternate key such as accountnumber='A-1' \
     or name='x',code=5 (values: 'quoted text' with '' for a quote, numbers, true, false, \
     null, GUIDs or dates)";

/// `{entity_set}({key})`, the path of one row relative to the Web API base.
pub fn entity_path(entity_set: &str, key: &str) -> Result<String, Error> {
    check_identifier("entity-set", entity_set)?;
    Ok(format!("{entity_set}({})", key_segment(key)?))
}

/// The text between the parentheses of an entity path.
pub(crate) fn key_segment(key: &str) -> Result<String, Error> {
    let key = key.trim();
    if let Some(guid) = guid(key) {
        return Ok(guid);
    }
    alternate_key(key).ok_or_else(|| Error::InvalidRequest(KEY_HELP.into()))
}

/// A GUID (any case, braces optional) in the lower-case, brace-less form.
pub fn guid(text: &str) -> Option<String> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let bytes = inner.as_bytes();
    let valid = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    valid.then(|| inner.to_ascii_lowercase())
}

/// Parses `name=value[,name=value…]` and re-emits it URL-safe. All the
/// structure is ASCII, so scanning bytes never splits a UTF-8 character.
fn alternate_key(key: &str) -> Option<String> {
    let bytes = key.as_bytes();
    let mut i = 0;
    let mut out = String::with_capacity(key.len());
    loop {
        skip_spaces(bytes, &mut i);
        let start = i;
        while bytes
            .get(i)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            i += 1;
        }
        let name = key.get(start..i)?;
        check_identifier("key", name).ok()?;
        skip_spaces(bytes, &mut i);
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        skip_spaces(bytes, &mut i);
        out.push_str(name);
        out.push('=');
        if bytes.get(i) == Some(&b'\'') {
            i += 1;
            out.push('\'');
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => {
                        out.push_str("''");
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(&b) => {
                        push_path_byte(&mut out, b);
                        i += 1;
                    }
                }
            }
            out.push('\'');
        } else {
            let start = i;
            while bytes
                .get(i)
                .is_some_and(|b| *b != b',' && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            out.push_str(&unquoted_literal(key.get(start..i)?)?);
        }
        skip_spaces(bytes, &mut i);
        match bytes.get(i) {
            None => return Some(out),
            Some(b',') => {
                out.push(',');
                i += 1;
            }
            Some(_) => return None,
        }
    }
}

fn skip_spaces(bytes: &[u8], i: &mut usize) {
    while bytes.get(*i).is_some_and(u8::is_ascii_whitespace) {
        *i += 1;
    }
}

/// Percent-encodes everything but the RFC 3986 unreserved characters: the
/// server decodes the path before it reads the literal, and nothing in a
/// value can then end the key, the segment or the path.
fn push_path_byte(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
        out.push(b as char);
    } else {
        out.push_str(&format!("%{b:02X}"));
    }
}

/// Numbers, `true`/`false`/`null`, GUIDs and dates (alternate keys may be on
/// date columns) — nothing else goes unquoted.
fn unquoted_literal(token: &str) -> Option<String> {
    if matches!(token, "true" | "false" | "null") || is_number(token) {
        return Some(token.to_string());
    }
    if let Some(guid) = guid(token) {
        return Some(guid);
    }
    if is_date(token) {
        // `+` stays a plus only when encoded; `:` is fine in a path.
        return Some(token.replace('+', "%2B"));
    }
    None
}

fn is_number(token: &str) -> bool {
    let t = token.strip_prefix('-').unwrap_or(token);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(at) => (&t[..at], Some(&t[at + 1..])),
        None => (t, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(int)
        && frac.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// `2024-01-31`, or `2024-01-31T10:20:30.5Z` / `…+02:00`.
fn is_date(token: &str) -> bool {
    let b = token.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-';
    if !date || !digits(8..10) {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    if b[10] != b'T' || b.len() < 17 || !digits(11..13) || b[13] != b':' || !digits(14..16) {
        return false;
    }
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        if !digits(i + 1..i + 3) {
            return false;
        }
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return false;
            }
        }
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.len() == i + 6 && digits(i + 1..i + 3) && b[i + 3] == b':' && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// Deterministic pseudo-random strings built from `pieces` (xorshift64),
/// for the never-panic tests of this module's siblings.
#[cfg(test)]
pub(crate) fn garbage_strings(pieces: &[&str], count: usize) -> Vec<String> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = next() % 24;
            (0..len)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_normalised_to_lower_case_without_braces() {
        for key in [
            "00000000-0000-0000-0000-00000000000a",
            "00000000-0000-0000-0000-00000000000A",
            "{00000000-0000-0000-0000-00000000000A}",
            "  {00000000-0000-0000-0000-00000000000a} ",
        ] {
            assert_eq!(
                entity_path("accounts", key).unwrap(),
                "accounts(00000000-0000-0000-0000-00000000000a)",
                "{key}"
            );
        }
    }

    #[test]
    fn alternate_keys_are_emitted_url_safe() {
        let cases = [
            ("accountnumber='A-1'", "accountnumber='A-1'"),
            ("a='x',b=5", "a='x',b=5"),
            (" a = 'x' , b = -5.5e3 ", "a='x',b=-5.5e3"),
            ("name='O''Brien'", "name='O''Brien'"),
            ("name=''", "name=''"),
            (
                "name='a b/c?d#e%f&g+h'",
                "name='a%20b%2Fc%3Fd%23e%25f%26g%2Bh'",
            ),
            ("name='é'", "name='%C3%A9'"),
            ("name='a,b=c)'", "name='a%2Cb%3Dc%29'"),
            (
                "flag=true,other=null,no=false",
                "flag=true,other=null,no=false",
            ),
            (
                "_parentid_value={00000000-0000-0000-0000-00000000000A}",
                "_parentid_value=00000000-0000-0000-0000-00000000000a",
            ),
            ("day=2024-01-31", "day=2024-01-31"),
            (
                "at=2024-01-31T10:20:30.25+02:00",
                "at=2024-01-31T10:20:30.25%2B02:00",
            ),
            ("at=2024-01-31T10:20Z", "at=2024-01-31T10:20Z"),
        ];
        for (key, segment) in cases {
            assert_eq!(
                entity_path("accounts", key).unwrap(),
                format!("accounts({segment})"),
                "{key}"
            );
        }
    }

    #[test]
    fn anything_else_is_an_invalid_key() {
        for key in [
            "",
            "   ",
            "A-1",
            "'A-1'",
            "name",
            "name=",
            "name='unterminated",
            "name='a''",
            "name='a'b",
            "name=abc",
            "name=1x",
            "name=1.",
            "name=.5",
            "name=1e",
            "name='a',",
            ",name='a'",
            "name='a';drop=1",
            "na-me='a'",
            "1name='a'",
            "name=='a'",
            "name=True",
            "at=2024-01-31T10",
            "at=2024-01-31T10:20:30+0200",
            "at=2024-1-31",
            "00000000-0000-0000-0000-00000000000g",
            "{00000000-0000-0000-0000-00000000000a",
            "a='x')/contacts(b='y'",
            "a=1)?$top=1",
        ] {
            let err = entity_path("accounts", key).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidRequest(m) if m.starts_with("key ")),
                "{key}: {err:?}"
            );
        }
    }

    #[test]
    fn the_entity_set_must_be_an_odata_name() {
        for set in ["", "accounts/x", "accounts(", "acc ounts", "é"] {
            assert!(
                matches!(
                    entity_path(set, "00000000-0000-0000-0000-000000000001"),
                    Err(Error::InvalidRequest(m)) if m.contains("entity-set")
                ),
                "{set}"
            );
        }
    }

    #[test]
    fn garbage_keys_never_panic() {
        let pieces = [
            "'",
            "''",
            "=",
            ",",
            "a",
            "1",
            "-",
            "é",
            "😀",
            " ",
            "{",
            "}",
            "T",
            ":",
            "+",
            "e",
            ".",
            "Z",
            "2024-01-31",
        ];
        for key in garbage_strings(&pieces, 20_000) {
            let _ = entity_path("accounts", &key);
        }
    }
}
