//! Change tracking: a read of a table that ends with a delta link, and the
//! reads of that link later, which return only the rows written since and
//! the rows deleted since. The first read is the query with
//! `Prefer: odata.track-changes`; its pages follow `@odata.nextLink` and
//! the last one carries `@odata.deltaLink` (`…?$deltatoken=…`). A delta
//! link's read pages the same way and ends with the next delta link.
//! Deleted rows come as `{"@odata.context": "…/$metadata#accounts/$deletedEntity",
//! "id": "…", "reason": "deleted"}`. Pure.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::page::next_page_request;
use super::{Query, prefer};
use crate::error::Error;
use crate::http::{Request, Response};

/// One page of changes: the items as the server sent them (a JSON array:
/// rows, and `$deletedEntity` entries), counted, and how to go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangePage {
    pub changes: String,
    /// Rows created or updated (all of them on a first read).
    pub changed: u32,
    /// `$deletedEntity` entries.
    pub deleted: u32,
    /// The next page of this read.
    pub next_link: Option<String>,
    /// On the last page: where the next read of changes starts.
    pub delta_link: Option<String>,
}

/// The first read: `query` asking for a delta link.
pub fn first_request(org_url: &str, query: &Query) -> Result<Request, Error> {
    Ok(prefer::add(
        query.request(org_url)?,
        &[prefer::TRACK_CHANGES.to_string()],
    ))
}

/// The read of a next link or a delta link (only on the organization's
/// origin; the page size asked again, as for any next link).
pub fn link_request(org_url: &str, link: &str, page_size: Option<u32>) -> Result<Request, Error> {
    Ok(prefer::add(
        next_page_request(org_url, link, page_size)?,
        &[prefer::TRACK_CHANGES.to_string()],
    ))
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

pub fn parse(response: &Response) -> Result<ChangePage, Error> {
    let invalid = |why: &str| Error::InvalidResponse(format!("change tracking response: {why}"));
    let body: Body = serde_json::from_slice(&response.body).map_err(|_| invalid("not JSON"))?;
    let items: Vec<Value> =
        serde_json::from_str(body.value.get()).map_err(|_| invalid("value is not an array"))?;
    let mut page = ChangePage {
        changes: body.value.get().to_string(),
        changed: 0,
        deleted: 0,
        next_link: body.next_link,
        delta_link: body.delta_link,
    };
    for item in &items {
        let Value::Object(fields) = item else {
            return Err(invalid("an item is not an object"));
        };
        let deleted = fields
            .get("@odata.context")
            .and_then(Value::as_str)
            .is_some_and(|c| c.ends_with("$deletedEntity"));
        if deleted {
            if !fields.get("id").is_some_and(Value::is_string) {
                return Err(invalid("a $deletedEntity entry has no id"));
            }
            page.deleted += 1;
        } else {
            page.changed += 1;
        }
    }
    if page.next_link.is_some() && page.delta_link.is_some() {
        // OData: a page has one or the other. Following the next link is
        // safe; taking this delta link would skip the pages after it.
        page.delta_link = None;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    const ORG: &str = "https://o.crm.dynamics.com";

    fn answer(body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_reads_ask_for_a_delta_link_and_stay_on_the_org() {
        let query = Query {
            entity_set: "accounts".into(),
            select: vec!["name".into()],
            page_size: Some(10),
            ..Query::default()
        };
        let first = first_request(ORG, &query).unwrap();
        assert_eq!(first.method, Method::Get);
        assert_eq!(
            first.url,
            format!("{ORG}/api/data/v9.2/accounts?$select=name")
        );
        assert_eq!(
            first.header_value("Prefer"),
            Some("odata.maxpagesize=10,odata.track-changes")
        );
        let link = format!("{ORG}/api/data/v9.2/accounts?$select=name&$deltatoken=9%2101");
        let next = link_request(ORG, &link, None).unwrap();
        assert_eq!(next.url, link);
        assert_eq!(next.header_value("Prefer"), Some("odata.track-changes"));
        assert!(matches!(
            link_request(ORG, "https://evil.example/api/data/v9.2/accounts", None),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn changes_and_deletions_are_counted_and_passed_on_as_sent() {
        let body = r#"{"@odata.context":"x/$delta","@odata.deltaLink":"https://o.crm.dynamics.com/api/data/v9.2/accounts?$deltatoken=2","value":[{"name":"A","accountid":"1"},{"@odata.context":"https://o/api/data/v9.2/$metadata#accounts/$deletedEntity","id":"2","reason":"deleted"}]}"#;
        let page = parse(&answer(body)).unwrap();
        assert_eq!((page.changed, page.deleted), (1, 1));
        assert!(page.changes.starts_with(r#"[{"name":"A""#));
        assert_eq!(page.next_link, None);
        assert!(page.delta_link.unwrap().ends_with("$deltatoken=2"));
        let both = r#"{"@odata.nextLink":"n","@odata.deltaLink":"d","value":[]}"#;
        let page = parse(&answer(both)).unwrap();
        assert_eq!(
            (page.next_link.as_deref(), page.delta_link),
            (Some("n"), None)
        );
        for (body, why) in [
            ("<html>", "not JSON"),
            (r#"{"value":{}}"#, "not an array"),
            (r#"{"value":[1]}"#, "not an object"),
            (
                r#"{"value":[{"@odata.context":"x#accounts/$deletedEntity"}]}"#,
                "no id",
            ),
        ] {
            let err = parse(&answer(body)).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidResponse(m) if m.contains(why)),
                "{body}: {err:?}"
            );
        }
    }
}
