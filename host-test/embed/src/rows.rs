//! What the [`crate::Dataverse`] handle's calls return when they carry
//! rows: the WIT records with their JSON text decoded into serde types
//! (`serde_json::Value` unless the caller names its own type).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::decode::{self, JsonError};
use crate::session::{CallInfo, Created, FetchPage, Page, Written};

/// One page of a query's rows.
#[derive(Debug, Clone)]
pub struct RowPage<T = Value> {
    /// The rows of this page, in the order Dataverse sent them.
    pub rows: Vec<T>,
    /// Where the next page is; none on the last page. Pass it to
    /// [`crate::Dataverse::next_page`].
    pub next: Option<NextPage>,
    /// Total matching rows, when the query asked for a count.
    pub total_count: Option<i64>,
    /// The call.
    pub call: CallInfo,
}

/// The page after a [`RowPage`]: its `@odata.nextLink`, and the page size
/// to ask for again (Dataverse reads it from every request, not from the
/// link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextPage {
    /// The absolute `@odata.nextLink` (on the organization's origin).
    pub link: String,
    /// The query's page size.
    pub page_size: Option<u32>,
}

impl<T: DeserializeOwned> RowPage<T> {
    pub(crate) fn decode(page: Page, page_size: Option<u32>) -> Result<RowPage<T>, JsonError> {
        Ok(RowPage {
            rows: decode::rows(&page.rows)?,
            next: page.next_link.map(|link| NextPage { link, page_size }),
            total_count: page.total_count,
            call: page.call,
        })
    }
}

/// One page of a FetchXML query's rows.
#[derive(Debug, Clone)]
pub struct FetchRowPage<T = Value> {
    /// The rows of this page.
    pub rows: Vec<T>,
    /// True when another page follows: ask for `page + 1` with
    /// `paging_cookie`.
    pub more_records: bool,
    /// The cookie to pass with the next page's number.
    pub paging_cookie: Option<String>,
    /// Total matching rows, when the fetch asked for `returntotalrecordcount`.
    pub total_count: Option<i64>,
    /// The call.
    pub call: CallInfo,
}

impl<T: DeserializeOwned> FetchRowPage<T> {
    pub(crate) fn decode(page: FetchPage) -> Result<FetchRowPage<T>, JsonError> {
        Ok(FetchRowPage {
            rows: decode::rows(&page.rows)?,
            more_records: page.more_records,
            paging_cookie: page.paging_cookie,
            total_count: page.total_count,
            call: page.call,
        })
    }
}

/// What `create` returns.
#[derive(Debug, Clone)]
pub struct CreatedRow {
    /// The new row's id, from `OData-EntityId`; Dataverse sends none with
    /// the representation (read the key from `row` then).
    pub id: Option<String>,
    /// The row as created, when the handle's request options ask for
    /// `return_representation`.
    pub row: Option<Value>,
    /// The call.
    pub call: CallInfo,
}

impl CreatedRow {
    pub(crate) fn decode(created: Created) -> Result<CreatedRow, JsonError> {
        Ok(CreatedRow {
            id: created.id,
            row: created.json.as_deref().map(decode::value).transpose()?,
            call: created.call,
        })
    }
}

/// What `update` and `upsert` return.
#[derive(Debug, Clone)]
pub struct WrittenRow {
    /// The row as written, when the handle's request options ask for
    /// `return_representation`.
    pub row: Option<Value>,
    /// The call.
    pub call: CallInfo,
}

impl WrittenRow {
    pub(crate) fn decode(written: Written) -> Result<WrittenRow, JsonError> {
        Ok(WrittenRow {
            row: written.json.as_deref().map(decode::value).transpose()?,
            call: written.call,
        })
    }
}
