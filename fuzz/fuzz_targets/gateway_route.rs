//! The gateway's view of an incoming request before anything is sent:
//! `route` (path and query), `AllowList::parse` (`GATEWAY_ALLOW`),
//! `presented_key` / `key_matches` (the API key), and the header
//! allow-lists of both directions.
//!
//! Sections: the request target; the allow-list; request headers; response
//! headers (each `Name: value` per line).

#![no_main]

use dataverse_fuzz::{head, sections, text};
use dataverse_gateway::headers;
use dataverse_gateway::route::{self, API_PREFIX, AllowList, Route};
use dataverse_wasm::Secret;
use libfuzzer_sys::fuzz_target;

/// Request headers that must never reach Dataverse: the caller's
/// credentials, hop-by-hop headers, anything that frames the message.
const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "x-api-key",
    "host",
    "cookie",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "content-length",
    "x-ms-client-request-id",
];

/// Response headers that must never reach the caller.
const NEVER_RETURNED: &[&str] = &[
    "set-cookie",
    "www-authenticate",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "authorization",
];

const KEY: &str = "k3y-0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let parts = sections(data);
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let target = text(part(0));

    let routed = route::route(&target);
    let path = target.split_once('?').map_or(target.as_str(), |(p, _)| p);
    match &routed {
        Ok(Route::Health) => assert_eq!(path, "/healthz"),
        Ok(Route::WhoAmI) => assert_eq!(path, "/whoami"),
        Ok(Route::WebApi {
            path_and_query,
            resource,
        }) => {
            assert_eq!(path_and_query, &target, "the target is forwarded as sent");
            assert!(path.starts_with(API_PREFIX));
            // A decoded `?` or `#` may stay in the name: no allow-list entry
            // can match it, and Dataverse gets the path still encoded.
            assert!(
                !resource.contains(['/', '\\']) && !resource.chars().any(char::is_control),
                "resource {resource:?}"
            );
            let decoded = percent_decoded(&path[API_PREFIX.len()..]);
            assert!(
                !decoded.split('/').any(|s| s == "." || s == ".."),
                "dot segment in {decoded:?}"
            );
        }
        Ok(Route::NotFound) => assert!(!path.starts_with(API_PREFIX)),
        Err(_) => assert!(path.starts_with(API_PREFIX)),
    }

    // An allow-list only ever allows plain names, whatever it was given.
    let list = text(part(1));
    if let Ok(allow) = AllowList::parse(&list) {
        let resources = list.split(',').map(str::to_string).chain(match routed {
            Ok(Route::WebApi { resource, .. }) => Some(resource),
            _ => None,
        });
        for resource in resources {
            if allow.allows(&resource) {
                assert!(
                    !resource.is_empty()
                        && resource
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.$".contains(c)),
                    "{list:?} allows {resource:?}"
                );
            }
        }
    }

    let (incoming, _) = head(part(2));
    let presented = route::presented_key(&incoming);
    if let Some(key) = presented {
        let from_a_key_header = incoming.iter().any(|(name, value)| {
            (name.eq_ignore_ascii_case("x-api-key") || name.eq_ignore_ascii_case("authorization"))
                && value.ends_with(key)
        });
        assert!(from_a_key_header, "key {key:?} came from elsewhere");
    }
    for expected in [
        KEY.to_string(),
        text(presented.unwrap_or_default().trim_ascii()),
    ] {
        let plain = presented.is_some_and(|p| p.trim_ascii() == expected.as_bytes());
        assert_eq!(
            route::key_matches(presented, &Secret::new(expected.as_str())),
            plain,
            "key_matches disagrees with a plain comparison"
        );
    }
    if let Ok(forwarded) = headers::forwarded(&incoming) {
        for (name, _) in &forwarded.headers {
            assert_eq!(name, &name.to_ascii_lowercase());
            assert!(
                !NEVER_FORWARDED.contains(&name.as_str()) && !name.starts_with("proxy-"),
                "{name} was forwarded"
            );
        }
    }

    let (upstream, _) = head(part(3));
    let upstream: Vec<(String, String)> =
        upstream.into_iter().map(|(n, v)| (n, text(&v))).collect();
    for (name, _) in headers::returned(&upstream) {
        assert!(
            !NEVER_RETURNED.contains(&name.as_str()),
            "{name} was returned"
        );
    }
});

/// `%XX` decoded, by a reading of its own (lossy: only dot segments matter).
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(b) if bytes[i] == b'%' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
