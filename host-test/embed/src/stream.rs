//! The row stream: every row of a query (or of a FetchXML query) as a
//! `futures_core::Stream`, pulled from the component's all-pages reader
//! (`read-all`, `read-all-fetch-xml`) one page at a time.
//!
//! Back-pressure is the point: the next page is asked for only when the
//! consumer has taken every row of the current one, so a consumer that
//! stops (drops the stream) stops the requests, and the host holds one page
//! at most. Paging itself stays the component's: its reader follows the
//! links, and refuses one that loops or leaves the organization.
//!
//! A stream holds one worker from its first poll to its end (the reader
//! lives in that instance). Ended by its last page or an error, it drops
//! the reader and returns the worker; dropped early, it discards the worker
//! (a drop cannot wait for the reader's async clean-up, and an instance
//! with a reader left open would leak it), so the next call makes a new one.
//! The stream ends after its first error.

use futures_core::Stream;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tracing::Instrument;
use wasmtime::component::ResourceAny;

use crate::decode::{self, Error};
use crate::pool::{Checkout, Dataverse, token_refused};
use crate::session::{CallError, CallInfo, Query};
use crate::trace::{self, Called};

/// What a stream reads.
pub(crate) enum Source {
    Query(Query),
    FetchXml {
        entity_set: String,
        fetch_xml: String,
    },
}

impl Source {
    fn operation(&self) -> &'static str {
        match self {
            Source::Query(_) => "read_all",
            Source::FetchXml { .. } => "read_all_fetch_xml",
        }
    }

    fn entity_set(&self) -> &str {
        match self {
            Source::Query(query) => &query.entity_set,
            Source::FetchXml { entity_set, .. } => entity_set,
        }
    }
}

/// The rows of `source`, decoded into `T` one at a time.
pub(crate) fn rows<T>(
    dataverse: Dataverse,
    source: Source,
) -> impl Stream<Item = Result<T, Error>> + Send + Unpin + 'static
where
    T: DeserializeOwned + Send + 'static,
{
    let reading = Reading {
        dataverse,
        source,
        open: None,
        started: false,
        rows: Vec::new().into_iter(),
        index: 0,
    };
    // Boxed so the stream is `Unpin`: `stream.next().await` works as is.
    Box::pin(futures_util::stream::unfold(
        reading,
        |mut reading| async move {
            let item = reading.next::<T>().await?;
            Some((item, reading))
        },
    ))
}

/// A stream's state between polls.
struct Reading {
    dataverse: Dataverse,
    source: Source,
    /// The worker and the reader in it, from the first page to the end.
    open: Option<Open>,
    /// Whether the read began: afterwards, no `open` means it ended.
    started: bool,
    /// The rest of the current page, each row's JSON text.
    rows: std::vec::IntoIter<Box<RawValue>>,
    /// The index in its page of the next row in `rows`.
    index: usize,
}

struct Open {
    checkout: Checkout,
    reader: ResourceAny,
}

/// One page as the stream keeps it: the rows' text and the call.
struct Pulled {
    rows: String,
    call: CallInfo,
}

impl Called for Pulled {
    fn call_info(&self) -> Option<&CallInfo> {
        Some(&self.call)
    }
}

impl Reading {
    /// The next row, pulling the next page when this one is drained.
    async fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        loop {
            if let Some(raw) = self.rows.next() {
                let row = decode::row(&raw, self.index).map_err(Error::Decode);
                self.index += 1;
                if row.is_err() {
                    self.end(false).await;
                }
                return Some(row);
            }
            if self.started && self.open.is_none() {
                return None;
            }
            let span = trace::call_span(self.source.operation(), Some(self.source.entity_set()));
            let pulled = self.pull().instrument(span.clone()).await;
            let call = trace::call_of(&pulled);
            let pulled = match pulled {
                Ok(Some(page)) => decode::split_rows(&page.rows)
                    .map(Some)
                    .map_err(Error::Decode),
                Ok(None) => Ok(None),
                Err(error) => Err(Error::Call(error)),
            };
            trace::record(&span, call.as_ref(), &pulled);
            match pulled {
                Ok(Some(rows)) => {
                    self.rows = rows.into_iter();
                    self.index = 0;
                }
                Ok(None) => {
                    self.end(false).await;
                    return None;
                }
                Err(error) => {
                    self.end(matches!(&error, Error::Call(e) if e.kills_instance()))
                        .await;
                    return Some(Err(error));
                }
            }
        }
    }

    /// The next page from the reader, opening it (and taking a worker) on
    /// the first call. The first page gets the pool's retry: if Dataverse
    /// refuses the token, the owner renews it and the read starts again
    /// (nothing was handed out yet). A reader stops at its first error, so
    /// a refusal on a later page ends the stream; to make that rare, the
    /// worker is given the renewed token between pages.
    async fn pull(&mut self) -> Result<Option<Pulled>, CallError> {
        if !self.started {
            self.started = true;
            let mut checkout = self.dataverse.checkout().await?;
            let mut reader = open(&mut checkout, &self.source, &self.dataverse).await?;
            let mut first = next_page(&mut checkout, &self.source, reader).await;
            if token_refused(&first) {
                checkout.session().close_read(reader).await?;
                self.dataverse.renew_refused(&mut checkout).await?;
                reader = open(&mut checkout, &self.source, &self.dataverse).await?;
                first = next_page(&mut checkout, &self.source, reader).await;
            }
            self.open = Some(Open { checkout, reader });
            return first;
        }
        let Some(open) = self.open.as_mut() else {
            return Ok(None);
        };
        self.dataverse.refresh(&mut open.checkout).await?;
        next_page(&mut open.checkout, &self.source, open.reader).await
    }

    /// Ends the read: the reader dropped and the worker returned, or the
    /// worker discarded if its instance `trapped`.
    async fn end(&mut self, trapped: bool) {
        self.rows = Vec::new().into_iter();
        let Some(Open {
            mut checkout,
            reader,
        }) = self.open.take()
        else {
            return;
        };
        if trapped {
            return;
        }
        let closed = checkout.session().close_read(reader).await;
        checkout.finish(&closed);
    }
}

async fn open(
    checkout: &mut Checkout,
    source: &Source,
    dataverse: &Dataverse,
) -> Result<ResourceAny, CallError> {
    let options = dataverse.request_options();
    let session = checkout.session();
    match source {
        Source::Query(query) => session.open_read(query, u64::MAX, options).await,
        Source::FetchXml {
            entity_set,
            fetch_xml,
        } => {
            session
                .open_fetch_read(entity_set, fetch_xml, u64::MAX, options)
                .await
        }
    }
}

async fn next_page(
    checkout: &mut Checkout,
    source: &Source,
    reader: ResourceAny,
) -> Result<Option<Pulled>, CallError> {
    let session = checkout.session();
    Ok(match source {
        Source::Query(_) => session.read_next(reader).await?.map(|page| Pulled {
            rows: page.rows,
            call: page.call,
        }),
        Source::FetchXml { .. } => session.read_next_fetch(reader).await?.map(|page| Pulled {
            rows: page.rows,
            call: page.call,
        }),
    })
}
