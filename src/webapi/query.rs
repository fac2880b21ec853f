//! Typed OData queries → the GET request (URL and `Prefer` page size).

use super::prefer;
pub use super::prefer::MAX_PAGE_SIZE;
use crate::error::Error;
use crate::http::{Method, Request};
use crate::percent::query_encode;

/// An OData query over one entity set. `Default` asks for every column of
/// every row. (Hosts build queries with the WIT record's builder, in
/// dataverse-host; the core's own callers use struct-update syntax.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub entity_set: String,
    pub select: Vec<String>,
    pub filter: Option<String>,
    pub orderby: Option<String>,
    /// `$expand`, passed through (percent-encoded); related rows to include.
    pub expand: Option<String>,
    /// `$apply`, passed through (percent-encoded); aggregation and grouping.
    pub apply: Option<String>,
    pub top: Option<u32>,
    pub page_size: Option<u32>,
    pub count: bool,
}

impl Query {
    /// The GET of the first page: [`Query::url`], with the page size as a
    /// preference when one was asked for.
    pub fn request(&self, org_url: &str) -> Result<Request, Error> {
        let request = Request::new(Method::Get, self.url(org_url)?);
        let preferences = match self.page_size {
            Some(rows) => vec![prefer::max_page_size(rows)?],
            None => Vec::new(),
        };
        Ok(prefer::add(request, &preferences))
    }

    /// The request URL (`{org}/api/data/v9.2/{entity_set}?…`).
    pub fn url(&self, org_url: &str) -> Result<String, Error> {
        check_identifier("entity-set", &self.entity_set)?;
        let mut options = Vec::new();
        if !self.select.is_empty() {
            for column in &self.select {
                check_identifier("select", column)?;
            }
            options.push(format!("$select={}", self.select.join(",")));
        }
        if let Some(filter) = non_empty("filter", &self.filter)? {
            options.push(format!("$filter={}", query_encode(filter)));
        }
        if let Some(orderby) = non_empty("orderby", &self.orderby)? {
            options.push(format!("$orderby={}", query_encode(orderby)));
        }
        if let Some(expand) = non_empty("expand", &self.expand)? {
            options.push(format!("$expand={}", query_encode(expand)));
        }
        if let Some(apply) = non_empty("apply", &self.apply)? {
            options.push(format!("$apply={}", query_encode(apply)));
        }
        if let Some(top) = self.top {
            if top == 0 {
                return Err(Error::InvalidRequest("top must be at least 1".into()));
            }
            options.push(format!("$top={top}"));
        }
        if self.count {
            options.push("$count=true".into());
        }
        let mut url = super::api_url(org_url, &self.entity_set);
        if !options.is_empty() {
            url.push('?');
            url.push_str(&options.join("&"));
        }
        Ok(url)
    }
}

fn non_empty<'a>(name: &str, value: &'a Option<String>) -> Result<Option<&'a str>, Error> {
    match value.as_deref().map(str::trim) {
        Some("") => Err(Error::InvalidRequest(format!("{name} is empty"))),
        other => Ok(other),
    }
}

/// Entity set and column names are OData identifiers; checking them keeps a
/// caller's string from rewriting the path or the query.
pub fn check_identifier(what: &str, name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "{what} '{name}' is not a valid OData name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://contoso.crm.dynamics.com";

    fn accounts() -> Query {
        Query {
            entity_set: "accounts".into(),
            ..Query::default()
        }
    }

    #[test]
    fn a_full_query_builds_the_odata_url() {
        let q = Query {
            entity_set: "accounts".into(),
            select: vec!["name".into(), "accountid".into()],
            filter: Some("name eq 'A&B'".into()),
            orderby: Some("name desc".into()),
            expand: Some("primarycontactid($select=fullname)".into()),
            apply: Some("groupby((statecode))".into()),
            top: Some(10),
            page_size: Some(3),
            count: true,
        };
        let url = "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$select=name,accountid&$filter=name%20eq%20'A%26B'&$orderby=name%20desc&$expand=primarycontactid($select%3Dfullname)&$apply=groupby((statecode))&$top=10&$count=true";
        assert_eq!(q.url(ORG).unwrap(), url);
        let request = q.request(ORG).unwrap();
        assert_eq!((request.method, request.url.as_str()), (Method::Get, url));
        assert_eq!(request.header_value("prefer"), Some("odata.maxpagesize=3"));
    }

    #[test]
    fn a_bare_query_has_no_options() {
        let q = accounts();
        assert_eq!(q.url(ORG).unwrap(), format!("{ORG}/api/data/v9.2/accounts"));
        let request = q.request(ORG).unwrap();
        assert_eq!(request.header_value("prefer"), None);
        assert!(request.headers.is_empty());
    }

    #[test]
    fn bad_arguments_are_invalid_request_errors() {
        let base = accounts();
        let set = |entity_set: &str| Query {
            entity_set: entity_set.into(),
            ..accounts()
        };
        let cases = [
            set(""),
            set("accounts?$top=1"),
            set("../x"),
            Query {
                select: vec!["name,x".into()],
                ..accounts()
            },
            Query {
                filter: Some("  ".into()),
                ..accounts()
            },
            Query {
                expand: Some("".into()),
                ..accounts()
            },
            Query {
                apply: Some(" ".into()),
                ..accounts()
            },
            Query {
                top: Some(0),
                ..accounts()
            },
        ];
        for q in cases {
            assert!(matches!(q.url(ORG), Err(Error::InvalidRequest(_))), "{q:?}");
            assert!(
                matches!(q.request(ORG), Err(Error::InvalidRequest(_))),
                "{q:?}"
            );
        }
        for size in [0, 5001] {
            let q = Query {
                page_size: Some(size),
                ..base.clone()
            };
            assert!(matches!(q.request(ORG), Err(Error::InvalidRequest(_))));
        }
    }
}
