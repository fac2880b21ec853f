//! `send`: any Web API request by path. The URL is resolved here so that the
//! access token only ever goes to the organization's own origin.

use super::{API_PATH, is_org_url};
use crate::error::Error;
use crate::http::{Method, Request};
use crate::percent::escape_uri;

/// The request `send` and `relay` make: [`url`] for `path_or_url`, with the
/// caller's headers and body. The caller never passes `Authorization`: the
/// client sets it, and a second one would be ambiguous.
pub fn request(
    org_url: &str,
    method: Method,
    path_or_url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Request, Error> {
    let mut request = Request::new(method, url(org_url, path_or_url)?).body(body);
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("authorization") {
            return Err(Error::InvalidRequest(
                "send sets Authorization itself; do not pass one".into(),
            ));
        }
        request = request.header(name, value.clone());
    }
    Ok(request)
}

/// The absolute URL for `path_or_url`: a path relative to the Web API
/// (`accounts?$top=1`, `/accounts`, `/api/data/v9.2/accounts`), or an
/// absolute URL on the organization's origin. Characters a URI cannot hold
/// are percent-encoded; existing `%XX` escapes are kept.
pub fn url(org_url: &str, path_or_url: &str) -> Result<String, Error> {
    let path_or_url = path_or_url.trim();
    if has_scheme(path_or_url) {
        if !is_org_url(org_url, path_or_url) {
            return Err(Error::InvalidRequest(format!(
                "path is a URL outside the organization's origin {org_url}; the access token is only sent to the organization's origin"
            )));
        }
        return Ok(escape_uri(path_or_url));
    }
    if path_or_url.starts_with("//") || path_or_url.starts_with("/\\") {
        return Err(Error::InvalidRequest(
            "path must be a Web API path such as accounts?$top=1, not a network-path reference"
                .into(),
        ));
    }
    let url = if path_or_url.starts_with("/api/data/") {
        format!("{org_url}{path_or_url}")
    } else {
        let relative = path_or_url.strip_prefix('/').unwrap_or(path_or_url);
        format!("{org_url}{API_PATH}{relative}")
    };
    Ok(escape_uri(&url))
}

/// `scheme:` at the start (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"),
/// followed by `//`: an absolute URL of any scheme.
fn has_scheme(text: &str) -> bool {
    let Some(colon) = text.find(':') else {
        return false;
    };
    let scheme = &text[..colon];
    let mut chars = scheme.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && text[colon + 1..].starts_with("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://contoso.crm.dynamics.com";
    const BASE: &str = "https://contoso.crm.dynamics.com/api/data/v9.2/";

    #[test]
    fn paths_and_org_urls_resolve_under_the_web_api() {
        let cases = [
            ("accounts?$top=1", format!("{BASE}accounts?$top=1")),
            ("/accounts?$top=1", format!("{BASE}accounts?$top=1")),
            ("/api/data/v9.2/accounts", format!("{BASE}accounts")),
            (
                "/api/data/v9.1/accounts",
                format!("{ORG}/api/data/v9.1/accounts"),
            ),
            ("", BASE.to_string()),
            (" WhoAmI ", format!("{BASE}WhoAmI")),
            (
                "accounts?$filter=name eq 'a b'&x=%3C",
                format!("{BASE}accounts?$filter=name%20eq%20'a%20b'&x=%3C"),
            ),
            (
                "accounts(name='a:b')",
                format!("{BASE}accounts(name='a:b')"),
            ),
            (
                "contacts?$filter=x eq 'mailto:a'",
                format!("{BASE}contacts?$filter=x%20eq%20'mailto:a'"),
            ),
            ("é", format!("{BASE}%C3%A9")),
            (
                "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=<x>",
                format!("{BASE}accounts?$skiptoken=%3Cx%3E"),
            ),
            (
                "HTTPS://CONTOSO.crm.dynamics.com/api/data/v9.2/x",
                "HTTPS://CONTOSO.crm.dynamics.com/api/data/v9.2/x".to_string(),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(url(ORG, input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn urls_off_the_org_origin_are_refused() {
        for bad in [
            "https://evil.example/api/data/v9.2/accounts",
            "https://contoso.crm.dynamics.com.evil.example/",
            "https://contoso.crm.dynamics.com@evil.example/",
            "https://contoso.crm.dynamics.com:8443/",
            "http://contoso.crm.dynamics.com/api/data/v9.2/accounts",
            "ftp://contoso.crm.dynamics.com/x",
            "//evil.example/x",
            "/\\evil.example/x",
        ] {
            assert!(
                matches!(url(ORG, bad), Err(Error::InvalidRequest(m)) if m.starts_with("path")),
                "{bad}"
            );
        }
        let Err(Error::InvalidRequest(m)) = url(ORG, "https://evil.example/") else {
            panic!()
        };
        assert!(m.contains("only sent to the organization's origin"), "{m}");
    }

    #[test]
    fn garbage_never_panics() {
        let pieces = [
            "/",
            ":",
            "//",
            "https",
            "http",
            "é",
            "😀",
            "%",
            "?",
            "@",
            "\\",
            " ",
            "api",
            "data",
            "contoso.crm.dynamics.com",
        ];
        for text in super::super::entity_key::garbage_strings(&pieces, 20_000) {
            if let Ok(u) = url(ORG, &text) {
                assert!(
                    is_org_url(ORG, &u) || u.starts_with("HTTPS://"),
                    "{text} -> {u}"
                );
            }
        }
    }
}
