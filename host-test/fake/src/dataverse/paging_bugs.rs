//! Paging that never ends: collection and FetchXML pages whose way to the
//! next page leads back to a page already served, as a faulty server or a
//! caching proxy in front of one does. A client that follows such links
//! blindly reads the same rows forever; [`Fake::set_paging_bug`] turns one on
//! so tests can prove the client stops.
//!
//! Kept apart from `faults` (which fault single requests): a paging bug is a
//! mode of the whole fake, because a loop only shows across many requests.
//!
//! [`Fake::set_paging_bug`]: crate::Fake::set_paging_bug

use bytes::Bytes;
use http::{Request, Response, header};
use serde_json::Value;

use crate::FakeConfig;

/// How the fake breaks paging while the mode is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingBug {
    /// A page requested through an `@odata.nextLink` links to itself: page 2
    /// says the next page is page 2, forever.
    RepeatNextLink,
    /// Page 2 links to page 3 as usual, page 3 links back to page 2: two
    /// pages, alternating forever.
    AlternateNextLink,
    /// Every FetchXML page carries the paging cookie of the first page, so
    /// page N+1 asks for the rows after page 1 again.
    RepeatPagingCookie,
}

/// What the mode remembers between requests.
#[derive(Debug, Default)]
pub(crate) struct PagingBugState {
    pub(crate) bug: Option<PagingBug>,
    /// `AlternateNextLink`: the first link a client followed (page 2).
    first_followed: Option<String>,
    /// `RepeatPagingCookie`: the first page's cookie annotation.
    first_cookie: Option<Value>,
}

impl PagingBugState {
    pub(crate) fn set(&mut self, bug: Option<PagingBug>) {
        *self = PagingBugState {
            bug,
            ..PagingBugState::default()
        };
    }
}

const NEXT_LINK: &str = "@odata.nextLink";
const PAGING_COOKIE: &str = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie";

/// Rewrites a successful page as the mode says; anything else passes untouched.
pub(crate) fn apply(
    state: &mut PagingBugState,
    config: &FakeConfig,
    req: &Request<Bytes>,
    mut response: Response<Bytes>,
) -> Response<Bytes> {
    let Some(bug) = state.bug else {
        return response;
    };
    if !response.status().is_success() {
        return response;
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(response.body()) else {
        return response;
    };
    if !body.get("value").is_some_and(Value::is_array) {
        return response;
    }
    let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let own_url = format!("{}{path_and_query}", config.org_origin());
    let followed = path_and_query.contains("$skiptoken=");
    let changed = match bug {
        PagingBug::RepeatNextLink if followed && body.contains_key(NEXT_LINK) => {
            body.insert(NEXT_LINK.into(), Value::String(own_url));
            true
        }
        PagingBug::AlternateNextLink if followed => match &state.first_followed {
            None => {
                state.first_followed = Some(own_url);
                false
            }
            Some(first) if *first != own_url => {
                body.insert(NEXT_LINK.into(), Value::String(first.clone()));
                true
            }
            Some(_) => false,
        },
        PagingBug::RepeatPagingCookie => match (&state.first_cookie, body.get(PAGING_COOKIE)) {
            (None, Some(cookie)) => {
                state.first_cookie = Some(cookie.clone());
                false
            }
            (Some(first), Some(_)) => {
                body.insert(PAGING_COOKIE.into(), first.clone());
                true
            }
            _ => false,
        },
        _ => false,
    };
    if changed {
        *response.body_mut() = Bytes::from(Value::Object(body).to_string());
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    fn page(fake: &crate::Fake, token: &str, url: &str) -> Value {
        let path = url.strip_prefix(BASE).unwrap().trim_start_matches('/');
        json(&send(
            fake,
            token,
            "GET",
            path,
            &[("Prefer", "odata.maxpagesize=5")],
            "",
        ))
    }

    fn next(body: &Value) -> String {
        body[NEXT_LINK].as_str().unwrap().to_string()
    }

    #[test]
    fn repeat_next_link_makes_a_followed_page_link_to_itself() {
        let (fake, token) = demo();
        fake.set_paging_bug(Some(PagingBug::RepeatNextLink));
        let first = page(&fake, &token, &format!("{BASE}/accounts?$select=name"));
        let page2 = next(&first);
        assert_eq!(next(&page(&fake, &token, &page2)), page2);
        assert_eq!(next(&page(&fake, &token, &page2)), page2);
        fake.set_paging_bug(None);
        assert_ne!(next(&page(&fake, &token, &page2)), page2);
    }

    #[test]
    fn alternate_next_link_bounces_between_pages_two_and_three() {
        let (fake, token) = demo();
        fake.set_paging_bug(Some(PagingBug::AlternateNextLink));
        let page2 = next(&page(
            &fake,
            &token,
            &format!("{BASE}/accounts?$select=name"),
        ));
        let page3 = next(&page(&fake, &token, &page2));
        assert_ne!(page3, page2);
        assert_eq!(next(&page(&fake, &token, &page3)), page2);
        assert_eq!(next(&page(&fake, &token, &page2)), page3);
    }
}
