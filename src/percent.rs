//! Percent-encoding for form bodies and URL query values (RFC 3986 unreserved set kept).

/// Encodes for `application/x-www-form-urlencoded`: space becomes `+`.
pub fn form_encode(value: &str) -> String {
    encode(value, "+", b"")
}

/// Encodes a URL query value. OData punctuation stays readable in logs.
pub fn query_encode(value: &str) -> String {
    encode(value, "%20", b"'(),:$/*@")
}

fn encode(value: &str, space: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push_str(space);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes the bytes that may not appear in a URI (spaces, `<`, `"`,
/// non-ASCII…) and leaves everything else, including existing `%XX`, alone.
/// Servers are supposed to send encoded links; this keeps a sloppy one usable.
pub fn escape_uri(uri: &str) -> String {
    encode(uri, "%20", b":/?#[]@!$&'()*+,;=%")
}

/// Builds a form body from pairs.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect();
    encoded.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        assert_eq!(form_encode("a b+c/=&~"), "a+b%2Bc%2F%3D%26~");
        assert_eq!(form_encode("é"), "%C3%A9");
    }

    #[test]
    fn query_encoding_keeps_odata_punctuation() {
        assert_eq!(query_encode("name eq 'A&B'"), "name%20eq%20'A%26B'");
    }

    #[test]
    fn uri_escaping_touches_only_characters_a_uri_cannot_hold() {
        let link = "https://o/api/data/v9.2/accounts?$skiptoken=<cookie page=\"2\"/>&a=%3C";
        assert_eq!(
            escape_uri(link),
            "https://o/api/data/v9.2/accounts?$skiptoken=%3Ccookie%20page=%222%22/%3E&a=%3C"
        );
        assert_eq!(escape_uri("https://o/a?b=é"), "https://o/a?b=%C3%A9");
    }

    #[test]
    fn form_body_joins_pairs() {
        assert_eq!(form_body(&[("a", "1 2"), ("b", "x=y")]), "a=1+2&b=x%3Dy");
    }
}
