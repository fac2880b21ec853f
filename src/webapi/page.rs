//! A page of query results, and the request that follows its next link.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{is_org_url, prefer};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::percent::escape_uri;

/// One page: the rows as JSON text (a JSON array), and how to go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub rows: String,
    pub row_count: u32,
    pub next_link: Option<String>,
    pub total_count: Option<i64>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.count")]
    count: Option<i64>,
}

/// Reads a collection response. The rows are passed on as the server sent
/// them, without re-serialising.
pub fn parse(response: &Response) -> Result<Page, Error> {
    let body: Body = serde_json::from_slice(&response.body)
        .map_err(|e| Error::InvalidResponse(format!("collection response: {e}")))?;
    let rows: Vec<&RawValue> = serde_json::from_slice(body.value.get().as_bytes())
        .map_err(|_| Error::InvalidResponse("collection response: value is not an array".into()))?;
    Ok(Page {
        rows: body.value.get().to_string(),
        row_count: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        next_link: body.next_link,
        total_count: body.count,
    })
}

/// The GET of a page's `@odata.nextLink`, only on the organization's
/// origin: the link came from the server, and the access token goes nowhere
/// else. The page size is asked for again because Dataverse reads it from
/// the request, not from the link.
pub fn next_page_request(
    org_url: &str,
    next_link: &str,
    page_size: Option<u32>,
) -> Result<Request, Error> {
    if !is_org_url(org_url, next_link) {
        return Err(Error::InvalidRequest(format!(
            "next-link is not on the organization's origin {org_url}; the access token is sent nowhere else"
        )));
    }
    let request = Request::new(Method::Get, escape_uri(next_link));
    let preferences = match page_size {
        Some(rows) => vec![prefer::max_page_size(rows)?],
        None => Vec::new(),
    };
    Ok(prefer::add(request, &preferences))
}

/// Keeps only the first `rows` rows of a page (and drops its next link):
/// the last page of a bounded read.
pub fn truncate(page: Page, rows: u32) -> Page {
    if rows >= page.row_count {
        return page;
    }
    let (rows, row_count) = truncate_rows(&page.rows, rows);
    Page {
        rows,
        row_count,
        next_link: None,
        total_count: page.total_count,
    }
}

/// The first `keep` rows of a JSON array of rows, and how many that is.
pub fn truncate_rows(rows: &str, keep: u32) -> (String, u32) {
    let kept: Vec<&RawValue> = serde_json::from_slice::<Vec<&RawValue>>(rows.as_bytes())
        .map(|all| all.into_iter().take(keep as usize).collect())
        .unwrap_or_default();
    let texts: Vec<&str> = kept.iter().map(|r| r.get()).collect();
    (format!("[{}]", texts.join(",")), texts.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rows_next_link_and_count_are_read() {
        let page = parse(&response(
            r#"{"@odata.context":"c","@odata.count":7,"value":[{"name":"A"},{"name":"B"}],"@odata.nextLink":"https://o/api/data/v9.2/accounts?$skiptoken=x"}"#,
        ))
        .unwrap();
        assert_eq!(page.rows, r#"[{"name":"A"},{"name":"B"}]"#);
        assert_eq!(page.row_count, 2);
        assert_eq!(
            page.next_link.as_deref(),
            Some("https://o/api/data/v9.2/accounts?$skiptoken=x")
        );
        assert_eq!(page.total_count, Some(7));
    }

    #[test]
    fn truncating_keeps_the_first_rows_and_ends_paging() {
        let page = parse(&response(
            r#"{"value":[{"a":1},{"a":2},{"a":3}],"@odata.nextLink":"https://o/x"}"#,
        ))
        .unwrap();
        let cut = truncate(page.clone(), 2);
        assert_eq!(cut.rows, r#"[{"a":1},{"a":2}]"#);
        assert_eq!((cut.row_count, cut.next_link), (2, None));
        assert_eq!(truncate(page.clone(), 3), page);
        assert_eq!(truncate(page, 0).rows, "[]");
    }

    #[test]
    fn a_next_link_is_followed_on_the_org_only_with_the_page_size_again() {
        let org = "https://o";
        let link = "https://o/api/data/v9.2/accounts?$skiptoken=a b";
        let request = next_page_request(org, link, Some(2)).unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.url, escape_uri(link));
        assert_eq!(request.header_value("prefer"), Some("odata.maxpagesize=2"));
        assert_eq!(
            next_page_request(org, link, None)
                .unwrap()
                .header_value("prefer"),
            None
        );
        for (link, size) in [("https://evil.example/x", Some(2)), (link, Some(0))] {
            assert!(matches!(
                next_page_request(org, link, size),
                Err(Error::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn a_last_page_has_no_next_link() {
        let page = parse(&response(r#"{"value":[]}"#)).unwrap();
        assert_eq!(
            (page.row_count, page.next_link, page.total_count),
            (0, None, None)
        );
    }

    #[test]
    fn malformed_collections_are_invalid_response_errors() {
        for body in [
            "",
            "{",
            r#"{"value":{}}"#,
            r#"{"rows":[]}"#,
            r#"{"value":[1,}"#,
        ] {
            assert!(
                matches!(parse(&response(body)), Err(Error::InvalidResponse(_))),
                "{body}"
            );
        }
    }
}
