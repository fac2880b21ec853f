//! The Dataverse Web API: request builders and response parsers, and the
//! result types they produce. Pure. Every protocol rule lives here (which
//! headers and preferences a request carries, which answers are results);
//! `client` only sequences the I/O.

pub mod batch;
pub mod bulk;
pub mod changes;
pub mod crud;
pub mod entity_key;
pub mod error;
pub mod execute;
pub mod fetchxml;
pub mod file;
pub mod metadata;
pub mod options;
pub mod page;
pub mod prefer;
pub mod query;
pub mod send;
pub mod who_am_i;

pub use error::parse_error;
pub use page::Page;
pub use query::Query;
pub use who_am_i::WhoAmI;

use crate::http::{Method, Request, Response};
use crate::secret::Secret;

/// Path of the Web API on an organization's origin.
pub const API_PATH: &str = "/api/data/v9.2/";

/// `{org}/api/data/v9.2/{relative}`.
pub fn api_url(org_url: &str, relative: &str) -> String {
    format!("{org_url}{API_PATH}{relative}")
}

/// Adds the headers every Web API call carries: the token, and the OData
/// ones unless the request already has them (a caller of `send` may ask for
/// another `Accept`, e.g. `odata.metadata=full`; two would be ambiguous).
pub fn authorize(mut request: Request, token: &Secret) -> Request {
    authorize_in_place(&mut request, token);
    request
}

/// [`authorize`] without taking the request: a retry re-authorizes the same
/// request (its `Authorization` replaced) instead of copying it, so a 4 MiB
/// file chunk is in memory once.
pub fn authorize_in_place(request: &mut Request, token: &Secret) {
    request
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("Authorization"));
    request
        .headers
        .push(("Authorization".into(), format!("Bearer {}", token.expose())));
    for (name, value) in [
        ("Accept", "application/json"),
        ("OData-MaxVersion", "4.0"),
        ("OData-Version", "4.0"),
    ] {
        if request.header_value(name).is_none() {
            request.headers.push((name.into(), value.into()));
        }
    }
}

/// A GET of `{org}/api/data/v9.2/{relative}`.
pub fn get(org_url: &str, relative: &str) -> Request {
    Request::new(Method::Get, api_url(org_url, relative))
}

/// The body as text, when there is one (204 has none).
pub fn body_text(response: &Response) -> Option<String> {
    if response.body.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&response.body).into_owned())
    }
}

/// True when `url` is on the organization's own origin; the access token is
/// only ever sent there.
pub fn is_org_url(org_url: &str, url: &str) -> bool {
    match url.strip_prefix(org_url) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => {
            // Hosts are case-insensitive; `org_url` is already lower-case.
            let lower = url.to_ascii_lowercase();
            lower.starts_with(org_url)
                && matches!(lower.as_bytes().get(org_url.len()), None | Some(b'/'))
                && !url[..org_url.len()].contains('@')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_orgs_own_origin_counts_as_the_org() {
        let org = "https://contoso.crm.dynamics.com";
        for ok in [
            "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x",
            "https://CONTOSO.crm.dynamics.com/api/data/v9.2/accounts",
            "https://contoso.crm.dynamics.com",
        ] {
            assert!(is_org_url(org, ok), "{ok}");
        }
        for bad in [
            "https://contoso.crm.dynamics.com.evil.example/api",
            "https://contoso.crm.dynamics.com:8443/api",
            "https://contoso.crm.dynamics.com@evil.example/api",
            "http://contoso.crm.dynamics.com/api",
            "https://evil.example/https://contoso.crm.dynamics.com/",
            "/api/data/v9.2/accounts",
        ] {
            assert!(!is_org_url(org, bad), "{bad}");
        }
    }

    #[test]
    fn requests_carry_the_odata_headers_and_the_token() {
        let req = authorize(get("https://o", "WhoAmI"), &Secret::new("tok"));
        assert_eq!(req.url, "https://o/api/data/v9.2/WhoAmI");
        assert_eq!(req.header_value("authorization"), Some("Bearer tok"));
        assert_eq!(req.header_value("odata-version"), Some("4.0"));
        assert_eq!(req.header_value("odata-maxversion"), Some("4.0"));
        assert!(!format!("{req:?}").contains("tok"));
    }

    #[test]
    fn odata_headers_the_caller_set_are_kept_and_not_doubled() {
        let req = get("https://o", "accounts")
            .header("accept", "application/json;odata.metadata=full")
            .header("OData-Version", "4.0");
        let req = authorize(req, &Secret::new("tok"));
        let count = |name: &str| {
            req.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .count()
        };
        assert_eq!(
            req.header_value("Accept"),
            Some("application/json;odata.metadata=full")
        );
        assert_eq!(
            (
                count("accept"),
                count("odata-version"),
                count("odata-maxversion")
            ),
            (1, 1, 1)
        );
    }
}
