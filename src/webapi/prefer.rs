//! The `Prefer` header (RFC 7240): the one place its value is built. Every
//! preference of a request goes into a single `Prefer` header, because
//! Dataverse reads them from one comma-separated list; the request builders
//! and the per-call options all add theirs through [`add`].

use crate::error::Error;
use crate::http::Request;

/// The header's name, as every builder writes it.
const HEADER: &str = "Prefer";

/// Dataverse's largest page.
pub const MAX_PAGE_SIZE: u32 = 5000;

/// `$batch`: run the remaining requests after one fails.
pub const CONTINUE_ON_ERROR: &str = "odata.continue-on-error";

/// A collection read that ends with a delta link (change tracking).
pub const TRACK_CHANGES: &str = "odata.track-changes";

/// Create/update answer with the row instead of 204 No Content.
pub const RETURN_REPRESENTATION: &str = "return=representation";

/// `odata.maxpagesize=N`: rows per page of a collection. Dataverse reads it
/// from every request, not from the next link, so each page sends it again.
pub fn max_page_size(rows: u32) -> Result<String, Error> {
    match rows {
        1..=MAX_PAGE_SIZE => Ok(format!("odata.maxpagesize={rows}")),
        _ => Err(Error::InvalidRequest(format!(
            "page-size must be between 1 and {MAX_PAGE_SIZE}, not {rows}"
        ))),
    }
}

/// `odata.include-annotations="<filter>"`. The filter is not checked here:
/// a caller's filter is checked where it is taken (`RequestOptions`), the
/// builders' own are constants.
pub fn include_annotations(filter: &str) -> String {
    format!("odata.include-annotations=\"{filter}\"")
}

/// Adds `preferences` to the request's one `Prefer` header, each replacing
/// any earlier preference of the same name; preferences already there (a
/// builder's, or a `send` caller's header) are kept. Adding nothing leaves
/// the request untouched.
pub fn add(mut request: Request, preferences: &[String]) -> Request {
    if preferences.is_empty() {
        return request;
    }
    let mut merged = existing_preferences(&request);
    for preference in preferences {
        let name = name_of(preference);
        merged.retain(|p| !name_of(p).eq_ignore_ascii_case(name));
        merged.push(preference.clone());
    }
    request
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case(HEADER));
    request.headers.push((HEADER.to_string(), merged.join(",")));
    request
}

/// The preferences of all `Prefer` headers, split at commas outside quotes.
fn existing_preferences(request: &Request) -> Vec<String> {
    let mut prefs = Vec::new();
    for (_, value) in request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(HEADER))
    {
        let mut quoted = false;
        let mut current = String::new();
        for c in value.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    current.push(c);
                }
                ',' if !quoted => prefs.push(std::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        prefs.push(current);
    }
    prefs
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A preference's name: `return` of `return=representation`.
fn name_of(preference: &str) -> &str {
    preference.split(['=', ';']).next().unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn get() -> Request {
        Request::new(Method::Get, "https://o/api/data/v9.2/accounts")
    }

    fn prefer_headers(request: &Request) -> Vec<(&str, &str)> {
        request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(HEADER))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn page_sizes_outside_dataverses_range_are_invalid_requests() {
        assert_eq!(max_page_size(3).unwrap(), "odata.maxpagesize=3");
        assert_eq!(max_page_size(5000).unwrap(), "odata.maxpagesize=5000");
        for rows in [0, 5001] {
            assert!(matches!(max_page_size(rows), Err(Error::InvalidRequest(_))));
        }
    }

    #[test]
    fn a_fresh_request_gets_one_header_with_the_preference() {
        let request = add(get(), &[CONTINUE_ON_ERROR.into()]);
        assert_eq!(
            prefer_headers(&request),
            [("Prefer", "odata.continue-on-error")]
        );
    }

    #[test]
    fn a_preference_of_the_same_name_is_replaced_and_others_kept() {
        let request = get().header("prefer", "odata.maxpagesize=10, return=minimal");
        let request = add(
            request,
            &[RETURN_REPRESENTATION.into(), include_annotations("*")],
        );
        assert_eq!(
            prefer_headers(&request),
            [(
                "Prefer",
                "odata.maxpagesize=10,return=representation,odata.include-annotations=\"*\""
            )]
        );
    }

    #[test]
    fn adding_nothing_leaves_the_callers_header_as_it_was() {
        let request = add(get().header("prefer", "a, b"), &[]);
        assert_eq!(prefer_headers(&request), [("prefer", "a, b")]);
    }
}
