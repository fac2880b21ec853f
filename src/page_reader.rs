//! Reading every page of a query, one page per step, with a bound on the
//! rows handed out: the host pulls, the component never accumulates.
//!
//! Two readers: [`PageReader`] follows OData `@odata.nextLink`s,
//! [`FetchReader`] FetchXML paging cookies. Both refuse to loop: a server
//! that points the read back at a page it already served (a link that
//! repeats itself or alternates between pages, a paging cookie that does not
//! advance) would otherwise serve the same rows forever, so the read hands
//! out the page it has, then ends with an invalid-response error. The readers
//! live here, not in each host, so every host (CLI, embedding, Node) gets it.

// A `Failure` carries the whole diagnosis (error + call record); failures are
// rare next to the network round trip, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::client::{CallOptions, CallResult, Client, Failure};
use crate::error::Error;
use crate::transport::Transport;
use crate::webapi::fetchxml::{self, FetchPage};
use crate::webapi::is_org_url;
use crate::webapi::page::{Page, truncate, truncate_rows};
use crate::webapi::query::Query;

/// The state of an all-pages read: what to ask next and how much is left.
pub struct PageReader {
    query: Query,
    options: CallOptions,
    max_rows: u64,
    rows_read: u64,
    pages: u64,
    next: Next,
    /// Every URL this read has asked for.
    asked: Seen,
}

enum Next {
    FirstPage,
    Link(String),
    /// The server sent something that must not be followed: the next step
    /// reports it, after the page that carried it was handed out.
    Refused(Failure),
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
            pages: 0,
            next,
            asked: Seen::default(),
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
            Next::Refused(failure) => return Some(Err(failure)),
            Next::FirstPage => {
                if let Ok(url) = self.query.url(client.org_url()) {
                    self.asked.insert(&url);
                }
                client.retrieve_multiple(&self.query, &self.options)
            }
            Next::Link(link) => client.next_page(&link, self.query.page_size, &self.options),
        };
        Some(result.map(|mut reply| {
            self.pages += 1;
            let left = self.max_rows - self.rows_read;
            if u64::from(reply.value.row_count) >= left {
                reply.value = truncate(reply.value, u32::try_from(left).unwrap_or(u32::MAX));
            }
            self.rows_read += u64::from(reply.value.row_count);
            if self.rows_read >= self.max_rows {
                reply.value.next_link = None;
            }
            if let Some(link) = reply.value.next_link.take() {
                match self.check_link(client.org_url(), &link) {
                    Ok(()) => {
                        self.asked.insert(&link);
                        reply.value.next_link = Some(link.clone());
                        self.next = Next::Link(link);
                    }
                    Err(error) => {
                        self.next = Next::Refused(Failure {
                            error,
                            call: Some(reply.call.clone()),
                        });
                    }
                }
            }
            reply
        }))
    }

    /// Whether a link the server sent may be followed. A foreign origin is
    /// the server's fault here (the caller chose no URL), hence
    /// invalid-response rather than `next_page`'s invalid-request.
    fn check_link(&self, org_url: &str, link: &str) -> Result<(), Error> {
        if !is_org_url(org_url, link) {
            return Err(Error::InvalidResponse(format!(
                "page {} of the read has an @odata.nextLink that is not on the organization's \
                 origin {org_url}; the access token is sent nowhere else, so the read stops after \
                 {} rows",
                self.pages, self.rows_read
            )));
        }
        if self.asked.contains(link) {
            return Err(repeated(&format!(
                "page {} of the read has an @odata.nextLink this read has already followed",
                self.pages
            )));
        }
        Ok(())
    }
}

/// The state of an all-pages FetchXML read: the next page number and cookie.
pub struct FetchReader {
    entity_set: String,
    fetch_xml: String,
    options: CallOptions,
    max_rows: u64,
    rows_read: u64,
    next: FetchNext,
    /// Every paging cookie this read has sent.
    sent: Seen,
}

enum FetchNext {
    Page { number: u32, cookie: Option<String> },
    Refused(Failure),
    Done,
}

impl FetchReader {
    pub fn new(
        entity_set: String,
        fetch_xml: String,
        max_rows: u64,
        options: CallOptions,
    ) -> FetchReader {
        let next = if max_rows == 0 {
            FetchNext::Done
        } else {
            FetchNext::Page {
                number: 1,
                cookie: None,
            }
        };
        FetchReader {
            entity_set,
            fetch_xml,
            options,
            max_rows,
            rows_read: 0,
            next,
            sent: Seen::default(),
        }
    }

    pub fn rows_read(&self) -> u64 {
        self.rows_read
    }

    /// The next page, `None` once Dataverse has no more records or
    /// `max_rows` rows were handed out. After an error the reader stops.
    pub fn next<T: Transport>(&mut self, client: &mut Client<T>) -> Option<CallResult<FetchPage>> {
        let (number, cookie) = match std::mem::replace(&mut self.next, FetchNext::Done) {
            FetchNext::Done => return None,
            FetchNext::Refused(failure) => return Some(Err(failure)),
            FetchNext::Page { number, cookie } => (number, cookie),
        };
        if let Some(cookie) = &cookie {
            self.sent.insert(cookie);
        }
        let result = client.fetch_xml(
            &self.entity_set,
            &self.fetch_xml,
            number,
            cookie.as_deref(),
            &self.options,
        );
        Some(result.map(|mut reply| {
            let left = self.max_rows - self.rows_read;
            if u64::from(reply.value.row_count) > left {
                let keep = u32::try_from(left).unwrap_or(u32::MAX);
                (reply.value.rows, reply.value.row_count) = truncate_rows(&reply.value.rows, keep);
            }
            self.rows_read += u64::from(reply.value.row_count);
            if self.rows_read >= self.max_rows {
                reply.value.more_records = false;
            }
            if reply.value.more_records {
                match self.following(number, reply.value.paging_cookie.clone()) {
                    Ok(next) => self.next = next,
                    Err(error) => {
                        reply.value.more_records = false;
                        self.next = FetchNext::Refused(Failure {
                            error,
                            call: Some(reply.call.clone()),
                        });
                    }
                }
            }
            reply
        }))
    }

    /// The request after page `number`, unless the cookie Dataverse sent
    /// back does not move the read forward. Without a cookie Dataverse pages
    /// by number alone, which advances by construction.
    fn following(&self, number: u32, cookie: Option<String>) -> Result<FetchNext, Error> {
        let next_number = number
            .checked_add(1)
            .ok_or_else(|| Error::InvalidResponse("FetchXML paging passed page 2^32".into()))?;
        if let Some(cookie) = &cookie {
            if self.sent.contains(cookie) {
                return Err(repeated(&format!(
                    "FetchXML page {number} has a paging cookie this read has already sent"
                )));
            }
            if let Some(described) = fetchxml::cookie_page(cookie).filter(|p| *p < number) {
                return Err(repeated(&format!(
                    "FetchXML page {number} has a paging cookie for page {described}: the page \
                     number does not advance"
                )));
            }
        }
        Ok(FetchNext::Page {
            number: next_number,
            cookie,
        })
    }
}

/// The error that ends a read the server sent back to a page it already served.
fn repeated(what: &str) -> Error {
    Error::InvalidResponse(format!(
        "{what}: following it would serve the same rows again without end, so the read stops here"
    ))
}

/// Fingerprints of the URLs or cookies a read has used: 64-bit hashes, so a
/// read remembers 8 bytes per page (plus the set's overhead) instead of each
/// link, which carries a whole paging cookie. Beyond [`Seen::CAPACITY`] pages
/// nothing new is remembered, so memory stays bounded however long the read;
/// a loop that only starts that late goes unnoticed. A hash collision
/// (about 1 in 10^9 for a read of 100,000 pages) would end a sound read
/// with an error, never loop one.
#[derive(Default)]
struct Seen(HashSet<u64>);

impl Seen {
    /// 100,000 pages are 500 million rows at Dataverse's largest page size;
    /// the set then holds about 1.6 MiB.
    const CAPACITY: usize = 100_000;

    fn fingerprint(text: &str) -> u64 {
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        hasher.finish()
    }

    fn insert(&mut self, text: &str) {
        if self.0.len() < Self::CAPACITY {
            self.0.insert(Self::fingerprint(text));
        }
    }

    fn contains(&self, text: &str) -> bool {
        self.0.contains(&Self::fingerprint(text))
    }
}

#[cfg(test)]
#[path = "page_reader_tests.rs"]
mod tests;
