//! What an incoming request asks for: the route, whether it carries the API
//! key, and whether its Web API resource is on the allow-list.

use dataverse_wasm::Secret;

/// The Web API prefix callers use; it is forwarded as is.
pub const API_PREFIX: &str = "/api/data/v9.2/";

/// The gateway's routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`: liveness and configuration; no key, no Dataverse call.
    Health,
    /// `/whoami`: the application user's ids.
    WhoAmI,
    /// `/api/data/v9.2/…`, forwarded to the organization.
    WebApi {
        /// Path and query exactly as the caller sent them.
        path_and_query: String,
        /// The first path segment, percent-decoded, without its key or
        /// parameters: `accounts` for `accounts(…)/name`, `WhoAmI` for
        /// `WhoAmI()`, empty for the service document.
        resource: String,
    },
    NotFound,
}

/// Maps a request target (`/path?query`) to a route. A Web API path that
/// could mean something else after decoding (dot segments, backslashes,
/// control characters, bad escapes) is refused with the reason.
pub fn route(path_and_query: &str) -> Result<Route, String> {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p);
    match path {
        "/healthz" => return Ok(Route::Health),
        "/whoami" => return Ok(Route::WhoAmI),
        _ => {}
    }
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return Ok(Route::NotFound);
    };
    let decoded =
        percent_decode(rest).ok_or_else(|| "the path has an invalid percent-escape".to_string())?;
    if decoded.chars().any(|c| c.is_control() || c == '\\') {
        return Err("the path holds a control character or a backslash".into());
    }
    if decoded.split('/').any(|s| s == "." || s == "..") {
        return Err("the path holds a '.' or '..' segment".into());
    }
    let first = decoded.split('/').next().unwrap_or("");
    let resource = first.split('(').next().unwrap_or("").to_string();
    Ok(Route::WebApi {
        path_and_query: path_and_query.to_string(),
        resource,
    })
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The Web API resources callers may reach (`GATEWAY_ALLOW`): entity sets,
/// function or action names, `$batch`. Compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowList(Vec<String>);

impl AllowList {
    /// `accounts, contacts,WhoAmI`. Blank entries are skipped; an entry must
    /// be a plain name (letters, digits, `_`, `.`, `$`), not a path.
    pub fn parse(list: &str) -> Result<AllowList, String> {
        let mut names = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let plain = entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c));
            if !plain {
                return Err(
                    "entries must be entity set, function or action names such as accounts, \
                     separated by commas"
                        .into(),
                );
            }
            names.push(entry.to_ascii_lowercase());
        }
        if names.is_empty() {
            return Err("it names no entity set".into());
        }
        Ok(AllowList(names))
    }

    /// Whether `resource` (a [`Route::WebApi`] resource) is on the list.
    pub fn allows(&self, resource: &str) -> bool {
        let resource = resource.to_ascii_lowercase();
        self.0.contains(&resource)
    }
}

/// The key a caller presented: `x-api-key: KEY`, or else
/// `Authorization: Bearer KEY`.
pub fn presented_key(headers: &[(String, Vec<u8>)]) -> Option<&[u8]> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    };
    if let Some(key) = header("x-api-key") {
        return Some(key);
    }
    let authorization = header("authorization")?;
    let scheme = authorization.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| &authorization[7..])
}

/// Whether the presented key is the configured one. The comparison takes the
/// same time wherever the first difference is, so response timing does not
/// reveal how much of a guess was right.
pub fn key_matches(presented: Option<&[u8]>, expected: &Secret) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    let expected = expected.expose().as_bytes();
    let presented = presented.trim_ascii();
    let mut difference = presented.len() ^ expected.len();
    for (i, e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(0);
        difference |= usize::from(p ^ e);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_api(path_and_query: &str, resource: &str) -> Result<Route, String> {
        Ok(Route::WebApi {
            path_and_query: path_and_query.into(),
            resource: resource.into(),
        })
    }

    #[test]
    fn requests_are_routed_by_path() {
        let cases = [
            ("/healthz", Ok(Route::Health)),
            ("/healthz?x=1", Ok(Route::Health)),
            ("/whoami", Ok(Route::WhoAmI)),
            ("/", Ok(Route::NotFound)),
            ("/whoami/x", Ok(Route::NotFound)),
            ("/api/data/v9.1/accounts", Ok(Route::NotFound)),
            ("/api/data/v9.2", Ok(Route::NotFound)),
            ("/api/data/v9.2/", web_api("/api/data/v9.2/", "")),
            (
                "/api/data/v9.2/accounts?$select=name&$top=2",
                web_api("/api/data/v9.2/accounts?$select=name&$top=2", "accounts"),
            ),
            (
                "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)/name",
                web_api(
                    "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)/name",
                    "accounts",
                ),
            ),
            (
                "/api/data/v9.2/WhoAmI()",
                web_api("/api/data/v9.2/WhoAmI()", "WhoAmI"),
            ),
            (
                "/api/data/v9.2/%61ccounts",
                web_api("/api/data/v9.2/%61ccounts", "accounts"),
            ),
            (
                "/api/data/v9.2/$batch",
                web_api("/api/data/v9.2/$batch", "$batch"),
            ),
        ];
        for (target, expected) in cases {
            assert_eq!(route(target), expected, "{target}");
        }
    }

    #[test]
    fn ambiguous_web_api_paths_are_refused() {
        for target in [
            "/api/data/v9.2/accounts/../contacts",
            "/api/data/v9.2/accounts/%2e%2e/contacts",
            "/api/data/v9.2/accounts%2F..%2Fcontacts",
            "/api/data/v9.2/./contacts",
            "/api/data/v9.2/accounts%5C..",
            "/api/data/v9.2/accounts%00",
            "/api/data/v9.2/accounts%",
            "/api/data/v9.2/accounts%zz",
            "/api/data/v9.2/accounts%ff",
        ] {
            assert!(route(target).is_err(), "{target}");
        }
    }

    #[test]
    fn the_allow_list_matches_whole_names_case_insensitively() {
        let allow = AllowList::parse(" accounts ,, Contacts,WhoAmI,$batch").unwrap();
        for yes in ["accounts", "ACCOUNTS", "contacts", "whoami", "$batch"] {
            assert!(allow.allows(yes), "{yes}");
        }
        for no in [
            "",
            "account",
            "accountsx",
            "systemusers",
            "accounts,contacts",
        ] {
            assert!(!allow.allows(no), "{no}");
        }
        for bad in ["", " , ", "accounts,/api/data/v9.2/contacts", "a b", "x(1)"] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_comes_from_x_api_key_or_a_bearer_authorization() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        type Headers<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Headers, Option<&str>); 6] = [
            (&[("X-Api-Key", "k1")], Some("k1")),
            (&[("authorization", "Bearer k2")], Some("k2")),
            (&[("Authorization", "bearer k3")], Some("k3")),
            (
                &[("x-api-key", "k1"), ("authorization", "Bearer k2")],
                Some("k1"),
            ),
            (&[("authorization", "Basic azE=")], None),
            (&[("authorization", "Bearer")], None),
        ];
        for (headers, expected) in cases {
            let headers = h(headers);
            assert_eq!(
                presented_key(&headers),
                expected.map(str::as_bytes),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn only_the_exact_key_matches() {
        let key = Secret::new("k3y-0123456789abcdef");
        let cases: [(Option<&str>, bool); 7] = [
            (Some("k3y-0123456789abcdef"), true),
            (Some(" k3y-0123456789abcdef "), true),
            (Some("k3y-0123456789abcdeF"), false),
            (Some("k3y-0123456789abcde"), false),
            (Some("k3y-0123456789abcdef0"), false),
            (Some(""), false),
            (None, false),
        ];
        for (presented, expected) in cases {
            assert_eq!(
                key_matches(presented.map(str::as_bytes), &key),
                expected,
                "{presented:?}"
            );
        }
    }

    /// Every combination of awkward pieces routes or is refused; none panics.
    #[test]
    fn hostile_targets_and_keys_never_panic() {
        let pieces = [
            "/", "%", "%2", "%2e", "%2f", "%ff", "..", ".", "?", "(", ")", "\\", "é", "\u{0}",
            "api", "data", "v9.2", "healthz", "whoami", "accounts", "$batch", " ",
        ];
        let mut count = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for target in [format!("{a}{b}{c}"), format!("{API_PREFIX}{a}{b}{c}")] {
                        if let Ok(Route::WebApi { resource, .. }) = route(&target) {
                            assert!(!resource.contains('/'), "{target}");
                        }
                        let headers =
                            vec![("authorization".to_string(), target.clone().into_bytes())];
                        let _ = key_matches(presented_key(&headers), &Secret::new("k"));
                        count += 1;
                    }
                }
            }
        }
        assert!(count > 10_000);
    }
}
