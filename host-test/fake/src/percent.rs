//! Percent-encoding for forms, query strings and Dataverse paging cookies.
//!
//! Both services decode `application/x-www-form-urlencoded` rules (`+` is a
//! space) for token request bodies and OData query strings alike.

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`); malformed
/// escapes are kept literally, invalid UTF-8 is replaced, like lenient servers do.
pub(crate) fn decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits `a=1&b=2` into decoded pairs, in order; empty segments are skipped.
pub(crate) fn parse_pairs(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| {
            let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// Encodes every byte except ASCII alphanumerics and the ones in `keep`.
/// `upper` picks the hex case: Dataverse's paging cookie uses upper case on
/// the outside and lower case inside, and clients must not care either way.
pub(crate) fn encode(s: &str, keep: &[u8], upper: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else if upper {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus_as_space() {
        assert_eq!(decode("a%20b+c", true), "a b c");
        assert_eq!(decode("a+b", false), "a+b");
        assert_eq!(decode("%3Ccookie%3e", false), "<cookie>");
        assert_eq!(decode("100%", true), "100%");
        assert_eq!(decode("%zz%4", true), "%zz%4");
    }

    #[test]
    fn parses_form_pairs_in_order() {
        let pairs =
            parse_pairs("grant_type=client_credentials&scope=https%3A%2F%2Fx%2F.default&&flag");
        assert_eq!(
            pairs,
            vec![
                ("grant_type".into(), "client_credentials".into()),
                ("scope".into(), "https://x/.default".into()),
                ("flag".into(), String::new()),
            ]
        );
    }

    #[test]
    fn encodes_reserved_bytes_in_chosen_case() {
        assert_eq!(encode("<a b=\"1\"/>", b"=/", true), "%3Ca%20b=%221%22/%3E");
        assert_eq!(encode("{A}", b"-", false), "%7bA%7d");
    }
}
