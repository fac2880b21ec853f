//! Reading every page of a query, one page per step, with a bound on the
//! rows handed out: the host pulls, the component never accumulates.

// A `Failure` carries the whole diagnosis (error + call record); failures are
// rare next to the network round trip, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use crate::client::{CallOptions, CallResult, Client};
use crate::transport::Transport;
use crate::webapi::page::{Page, truncate};
use crate::webapi::query::Query;

/// The state of an all-pages read: what to ask next and how much is left.
pub struct PageReader {
    query: Query,
    options: CallOptions,
    max_rows: u64,
    rows_read: u64,
    next: Next,
}

enum Next {
    FirstPage,
    Link(String),
    Done,
}

impl PageReader {
    pub fn new(query: Query, max_rows: u64, options: CallOptions) -> PageReader {
        let next = if max_rows == 0 {
            Next::Done
        } else {
            Next::FirstPage
        };
        PageReader {
            query,
            options,
            max_rows,
            rows_read: 0,
            next,
        }
    }

    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// The next page, `None` once the query is exhausted or `max_rows` rows
    /// were handed out. After an error the reader stops.
    pub fn next<T: Transport>(&mut self, client: &mut Client<T>) -> Option<CallResult<Page>> {
        let result = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Done => return None,
            Next::FirstPage => client.retrieve_multiple(&self.query, &self.options),
            Next::Link(link) => client.next_page(&link, self.query.page_size, &self.options),
        };
        Some(result.map(|mut reply| {
            let left = self.max_rows - self.rows_read;
            if u64::from(reply.value.row_count) >= left {
                reply.value = truncate(reply.value, u32::try_from(left).unwrap_or(u32::MAX));
            }
            self.rows_read += u64::from(reply.value.row_count);
            if self.rows_read >= self.max_rows {
                reply.value.next_link = None;
            }
            if let Some(link) = &reply.value.next_link {
                self.next = Next::Link(link.clone());
            }
            reply
        }))
    }
}
