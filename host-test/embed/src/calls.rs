//! The typed calls of the [`Dataverse`] handle: one method per call of the
//! component's `client`, each on a pooled worker (with the pool's retry
//! after a refused token, see [`Dataverse::with`]) inside a
//! `dataverse.call` span (see `trace`).
//!
//! Each takes the WIT call's arguments except `options` (a clone of the
//! handle carries them: [`Dataverse::with_request_options`]); rows and
//! bodies are serde types instead of JSON text. Calls that decode or encode
//! JSON fail with [`Error`]; the others with [`CallError`].

use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::decode::{self, Error, JsonError};
use crate::pool::{Dataverse, on_worker};
use crate::rows::{CreatedRow, FetchRowPage, NextPage, RowPage, WrittenRow};
use crate::session::{
    BatchOptions, BatchRequest, BatchResult, BulkMessage, BulkOptions, BulkResult, CallError,
    CallInfo, ChangePage, EntityRef, Operation, Query, TableInfo, TokenInfo, WebRequest,
    WebResponse, WhoAmIResponse,
};
use crate::stream::{self, Source};
use crate::trace::{self, Called};

impl Dataverse {
    /// `WhoAmI`: the application user's ids.
    pub async fn who_am_i(&self) -> Result<WhoAmIResponse, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.who_am_i(options));
        traced("who_am_i", None, answer).await
    }

    /// The first page of `query`, its rows as JSON values. For every row
    /// of every page, see [`Dataverse::rows`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = std::sync::Arc::new(dataverse_host::Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// # let dataverse = dataverse_host::Dataverse::connect(runtime, dataverse_fake::Fake::demo(), &dataverse_fake::demo_connection_string()).await?;
    /// use dataverse_host::Query;
    /// let page = dataverse.query(&Query::new("accounts").select(["name"]).top(2)).await?;
    /// assert_eq!(page.rows.len(), 2);
    /// assert_eq!(page.rows[0]["name"], "Contoso Ltd");
    /// assert!(page.next.is_none(), "$top=2 is one page");
    /// # Ok(()) }
    /// ```
    pub async fn query(&self, query: &Query) -> Result<RowPage, Error> {
        self.query_as(query).await
    }

    /// [`Dataverse::query`], each row decoded into `T`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = std::sync::Arc::new(dataverse_host::Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// # let dataverse = dataverse_host::Dataverse::connect(runtime, dataverse_fake::Fake::demo(), &dataverse_fake::demo_connection_string()).await?;
    /// #[derive(serde::Deserialize)]
    /// struct Account {
    ///     name: String,
    ///     accountnumber: String,
    /// }
    /// let query = dataverse_host::Query::new("accounts").select(["name", "accountnumber"]).top(1);
    /// let page = dataverse.query_as::<Account>(&query).await?;
    /// assert_eq!(page.rows[0].name, "Contoso Ltd");
    /// assert_eq!(page.rows[0].accountnumber, "A-0001");
    /// # Ok(()) }
    /// ```
    pub async fn query_as<T: DeserializeOwned>(&self, query: &Query) -> Result<RowPage<T>, Error> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.retrieve_multiple(query, options));
        decoded(
            "retrieve_multiple",
            Some(&query.entity_set),
            answer,
            |page| RowPage::decode(page, query.page_size),
        )
        .await
    }

    /// The page at `next` (a [`RowPage::next`]).
    pub async fn next_page(&self, next: &NextPage) -> Result<RowPage, Error> {
        self.next_page_as(next).await
    }

    /// [`Dataverse::next_page`], each row decoded into `T`.
    pub async fn next_page_as<T: DeserializeOwned>(
        &self,
        next: &NextPage,
    ) -> Result<RowPage<T>, Error> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.next_page(&next.link, next.page_size, options)
        });
        decoded("next_page", None, answer, |page| {
            RowPage::decode(page, next.page_size)
        })
        .await
    }

    /// Every row of `query`, page after page, as a stream. The next page is
    /// asked for only once the consumer has taken every row of the current
    /// one: drop the stream and no further request goes out. The
    /// component's reader follows the pages, and ends the stream with
    /// `invalid-response` if Dataverse's links loop or leave the
    /// organization. The stream holds one pooled worker (of
    /// [`crate::DataverseConfig::max_workers`]) until it ends or is dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = std::sync::Arc::new(dataverse_host::Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// # let dataverse = dataverse_host::Dataverse::connect(runtime, dataverse_fake::Fake::demo(), &dataverse_fake::demo_connection_string()).await?;
    /// use dataverse_host::Query;
    /// use futures_util::TryStreamExt;
    ///
    /// // The fake's 25 accounts, 10 to a page: three requests.
    /// let rows = dataverse.rows(Query::new("accounts").select(["name"]).page_size(10));
    /// let rows: Vec<serde_json::Value> = rows.try_collect().await?;
    /// assert_eq!(rows.len(), 25);
    /// assert_eq!(rows[24]["name"], "Account 0025");
    /// # Ok(()) }
    /// ```
    pub fn rows(
        &self,
        query: Query,
    ) -> impl Stream<Item = Result<Value, Error>> + Send + Unpin + 'static {
        self.rows_as(query)
    }

    /// [`Dataverse::rows`], each row decoded into `T`.
    pub fn rows_as<T: DeserializeOwned + Send + 'static>(
        &self,
        query: Query,
    ) -> impl Stream<Item = Result<T, Error>> + Send + Unpin + 'static {
        stream::rows(self.clone(), Source::Query(query))
    }

    /// Every row of a FetchXML query as a stream, following paging cookies
    /// one page at a time, as [`Dataverse::rows`] does links.
    pub fn fetch_xml_rows(
        &self,
        entity_set: &str,
        fetch_xml: &str,
    ) -> impl Stream<Item = Result<Value, Error>> + Send + Unpin + 'static {
        self.fetch_xml_rows_as(entity_set, fetch_xml)
    }

    /// [`Dataverse::fetch_xml_rows`], each row decoded into `T`.
    pub fn fetch_xml_rows_as<T: DeserializeOwned + Send + 'static>(
        &self,
        entity_set: &str,
        fetch_xml: &str,
    ) -> impl Stream<Item = Result<T, Error>> + Send + Unpin + 'static {
        let source = Source::FetchXml {
            entity_set: entity_set.to_string(),
            fetch_xml: fetch_xml.to_string(),
        };
        stream::rows(self.clone(), source)
    }

    /// One row by id (a GUID) or alternate key (`accountnumber='A-1'`):
    /// the `select`ed columns (all when empty), with `expand`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = std::sync::Arc::new(dataverse_host::Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// # let dataverse = dataverse_host::Dataverse::connect(runtime, dataverse_fake::Fake::demo(), &dataverse_fake::demo_connection_string()).await?;
    /// use dataverse_host::EntityRef;
    /// let contoso = EntityRef::new("accounts", "accountnumber='A-0001'");
    /// let row = dataverse.get(&contoso, &["name"], None).await?;
    /// assert_eq!(row["name"], "Contoso Ltd");
    /// assert!(row["@odata.etag"].is_string(), "for update's if_match");
    /// # Ok(()) }
    /// ```
    pub async fn get(
        &self,
        row: &EntityRef,
        select: &[&str],
        expand: Option<&str>,
    ) -> Result<Value, Error> {
        self.get_as(row, select, expand).await
    }

    /// [`Dataverse::get`], the row decoded into `T`.
    pub async fn get_as<T: DeserializeOwned>(
        &self,
        row: &EntityRef,
        select: &[&str],
        expand: Option<&str>,
    ) -> Result<T, Error> {
        let select: Vec<String> = select.iter().map(|column| column.to_string()).collect();
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.retrieve(row, &select, expand, options)
        });
        decoded("retrieve", Some(&row.entity_set), answer, |found| {
            decode::value(&found.json)
        })
        .await
    }

    /// Creates a row of `entity_set` from `body` (any `Serialize`, e.g.
    /// `serde_json::json!({…})`). The new row itself comes back only when
    /// the handle's request options ask for `return_representation`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = std::sync::Arc::new(dataverse_host::Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// # let dataverse = dataverse_host::Dataverse::connect(runtime, dataverse_fake::Fake::demo(), &dataverse_fake::demo_connection_string()).await?;
    /// use dataverse_host::EntityRef;
    /// use serde_json::json;
    /// let created = dataverse.create("accounts", &json!({"name": "Northwind"})).await?;
    /// let id = created.id.expect("Dataverse names the new row");
    /// let row = dataverse.get(&EntityRef::new("accounts", &id), &["name"], None).await?;
    /// assert_eq!(row["name"], "Northwind");
    /// # Ok(()) }
    /// ```
    pub async fn create<B: Serialize + ?Sized>(
        &self,
        entity_set: &str,
        body: &B,
    ) -> Result<CreatedRow, Error> {
        let json = decode::body(body).map_err(Error::Encode)?;
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.create(entity_set, &json, options));
        decoded("create", Some(entity_set), answer, CreatedRow::decode).await
    }

    /// Updates an existing row, never creating one: `If-Match` is `if_match`
    /// (an `@odata.etag`), or `*`.
    pub async fn update<B: Serialize + ?Sized>(
        &self,
        row: &EntityRef,
        body: &B,
        if_match: Option<&str>,
    ) -> Result<WrittenRow, Error> {
        let json = decode::body(body).map_err(Error::Encode)?;
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.update(row, &json, if_match, options)
        });
        decoded("update", Some(&row.entity_set), answer, WrittenRow::decode).await
    }

    /// Creates or updates a row; `prevent_update` makes it create only
    /// (`If-None-Match: *`).
    pub async fn upsert<B: Serialize + ?Sized>(
        &self,
        row: &EntityRef,
        body: &B,
        prevent_update: bool,
    ) -> Result<WrittenRow, Error> {
        let json = decode::body(body).map_err(Error::Encode)?;
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.upsert(row, &json, prevent_update, options)
        });
        decoded("upsert", Some(&row.entity_set), answer, WrittenRow::decode).await
    }

    /// Deletes a row; with `if_match`, only if its `@odata.etag` still matches.
    pub async fn delete(
        &self,
        row: &EntityRef,
        if_match: Option<&str>,
    ) -> Result<CallInfo, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.delete(row, if_match, options));
        traced("delete", Some(&row.entity_set), answer).await
    }

    /// Adds `target` to the collection-valued `navigation_property` of `row`.
    pub async fn associate(
        &self,
        row: &EntityRef,
        navigation_property: &str,
        target: &EntityRef,
    ) -> Result<CallInfo, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.associate(row, navigation_property, target, options)
        });
        traced("associate", Some(&row.entity_set), answer).await
    }

    /// Removes `target` from a collection-valued navigation property, or
    /// clears a single-valued one when `target` is none.
    pub async fn disassociate(
        &self,
        row: &EntityRef,
        navigation_property: &str,
        target: Option<&EntityRef>,
    ) -> Result<CallInfo, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.disassociate(row, navigation_property, target, options)
        });
        traced("disassociate", Some(&row.entity_set), answer).await
    }

    /// Page `page` (from 1) of a FetchXML query; pass the previous page's
    /// `paging_cookie`. For every row of every page, see
    /// [`Dataverse::fetch_xml_rows`].
    pub async fn fetch_xml(
        &self,
        entity_set: &str,
        fetch_xml: &str,
        page: u32,
        paging_cookie: Option<&str>,
    ) -> Result<FetchRowPage, Error> {
        self.fetch_xml_as(entity_set, fetch_xml, page, paging_cookie)
            .await
    }

    /// [`Dataverse::fetch_xml`], each row decoded into `T`.
    pub async fn fetch_xml_as<T: DeserializeOwned>(
        &self,
        entity_set: &str,
        fetch_xml: &str,
        page: u32,
        paging_cookie: Option<&str>,
    ) -> Result<FetchRowPage<T>, Error> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.fetch_xml(entity_set, fetch_xml, page, paging_cookie, options)
        });
        decoded("fetch_xml", Some(entity_set), answer, FetchRowPage::decode).await
    }

    /// Calls a function or an action; its answer, or `Value::Null` when it
    /// returned none (HTTP 204).
    pub async fn execute(&self, operation: &Operation) -> Result<Value, Error> {
        let bound_to = operation.bound.as_ref().map(|row| row.entity_set.as_str());
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.execute(operation, options));
        decoded("execute", bound_to, answer, |result| {
            match result.json.as_deref() {
                Some(json) => decode::value(json),
                None => Ok(Value::Null),
            }
        })
        .await
    }

    /// Sends up to 1000 requests in one `$batch`.
    pub async fn batch(
        &self,
        requests: &[BatchRequest],
        batch_options: BatchOptions,
    ) -> Result<BatchResult, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.batch(requests, batch_options, options)
        });
        traced("batch", None, answer).await
    }

    /// The first page of `query` read with change tracking: every row now,
    /// and on the last page (follow `next_link` with [`Dataverse::changes`])
    /// the delta link to keep for later.
    pub async fn track_changes(&self, query: &Query) -> Result<ChangePage, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.track_changes(query, options));
        traced("track_changes", Some(&query.entity_set), answer).await
    }

    /// The page at a change read's next link or delta link: from a delta
    /// link, the rows written and deleted since.
    pub async fn changes(
        &self,
        link: &str,
        page_size: Option<u32>,
    ) -> Result<ChangePage, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.changes(link, page_size, options));
        traced("changes", None, answer).await
    }

    /// A table's definition by entity set name (`accounts`) or logical
    /// name (`account`), looked up once per worker.
    pub async fn table(&self, name: &str) -> Result<TableInfo, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.table(name, options));
        traced("table", Some(name), answer).await
    }

    /// `CreateMultiple`: new rows of `table` (entity set or logical name),
    /// `bulk.batch_size` per request, `bulk.parallel` requests at a time.
    /// Every batch is reported: see [`BulkResult`]; a call is complete only
    /// when every batch is `Written`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = std::sync::Arc::new(dataverse_host::Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// # let dataverse = dataverse_host::Dataverse::connect(runtime, dataverse_fake::Fake::demo(), &dataverse_fake::demo_connection_string()).await?;
    /// use dataverse_host::{BatchOutcome, BulkOptions};
    /// let rows: Vec<_> = (0..250).map(|i| serde_json::json!({"name": format!("Row {i}")})).collect();
    /// let bulk = BulkOptions { batch_size: 100, parallel: None };
    /// let result = dataverse.create_multiple("account", &rows, bulk).await?;
    /// assert_eq!(result.table.entity_set, "accounts");
    /// assert_eq!(result.batches.len(), 3);
    /// assert!(result.batches.iter().all(|b| matches!(b.outcome, BatchOutcome::Written(_))));
    /// # Ok(()) }
    /// ```
    pub async fn create_multiple<R: Serialize>(
        &self,
        table: &str,
        rows: &[R],
        bulk: BulkOptions,
    ) -> Result<BulkResult, Error> {
        self.bulk(BulkMessage::CreateMultiple, table, rows, bulk)
            .await
    }

    /// `UpdateMultiple`: existing rows, each with its primary key.
    pub async fn update_multiple<R: Serialize>(
        &self,
        table: &str,
        rows: &[R],
        bulk: BulkOptions,
    ) -> Result<BulkResult, Error> {
        self.bulk(BulkMessage::UpdateMultiple, table, rows, bulk)
            .await
    }

    /// `UpsertMultiple`: rows named by primary key or by `@odata.id`
    /// (`accounts(accountnumber='A-1')`), created or updated.
    pub async fn upsert_multiple<R: Serialize>(
        &self,
        table: &str,
        rows: &[R],
        bulk: BulkOptions,
    ) -> Result<BulkResult, Error> {
        self.bulk(BulkMessage::UpsertMultiple, table, rows, bulk)
            .await
    }

    /// Deletes rows of `table` by key (GUIDs or alternate keys), in
    /// batches: `DeleteMultiple` on an elastic table, a `$batch` of DELETEs
    /// on a standard one.
    pub async fn delete_multiple(
        &self,
        table: &str,
        keys: &[String],
        bulk: BulkOptions,
    ) -> Result<BulkResult, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.delete_multiple(table, keys, bulk, options)
        });
        traced("delete_multiple", Some(table), answer).await
    }

    /// Any of the three bulk messages.
    pub async fn bulk<R: Serialize>(
        &self,
        message: BulkMessage,
        table: &str,
        rows: &[R],
        bulk: BulkOptions,
    ) -> Result<BulkResult, Error> {
        let rows = rows
            .iter()
            .map(decode::body)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::Encode)?;
        let options = self.request_options();
        let answer = on_worker!(self, |session| {
            session.bulk(message, table, &rows, bulk, options)
        });
        Ok(traced(message.name(), Some(table), answer).await?)
    }

    /// Any Web API request, with authentication, retries and typed errors.
    pub async fn send(&self, request: &WebRequest) -> Result<WebResponse, CallError> {
        let options = self.request_options();
        let answer = on_worker!(self, |session| session.send(request, options));
        traced("send", None, answer).await
    }

    /// What the handle knows of the token its workers share: expiry,
    /// authority, tenant, and the token request that got it (never the
    /// token). Renews the token first if it is due.
    pub async fn token_info(&self) -> Result<TokenInfo, CallError> {
        let span = trace::call_span("token_info", None);
        let info = self.owner_token_info().instrument(span.clone()).await;
        trace::record(&span, trace::call_of(&info).as_ref(), &info);
        info
    }
}

/// Awaits `answer` (a call on a pooled worker) inside the span of
/// `operation`, and records in it the call and how it ended.
async fn traced<W: Called>(
    operation: &'static str,
    entity_set: Option<&str>,
    answer: impl Future<Output = Result<W, CallError>>,
) -> Result<W, CallError> {
    let span = trace::call_span(operation, entity_set);
    let answer = answer.instrument(span.clone()).await;
    trace::record(&span, trace::call_of(&answer).as_ref(), &answer);
    answer
}

/// [`traced`], then `decode` makes the caller's type of the answer; the
/// span's outcome covers the decoding too.
async fn decoded<W: Called, R>(
    operation: &'static str,
    entity_set: Option<&str>,
    answer: impl Future<Output = Result<W, CallError>>,
    decode: impl FnOnce(W) -> Result<R, JsonError>,
) -> Result<R, Error> {
    let span = trace::call_span(operation, entity_set);
    let answer = answer.instrument(span.clone()).await;
    let call = trace::call_of(&answer);
    let result = match answer {
        Ok(answer) => decode(answer).map_err(Error::Decode),
        Err(error) => Err(Error::Call(error)),
    };
    trace::record(&span, call.as_ref(), &result);
    result
}
