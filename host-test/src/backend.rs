//! The native CLI's backend: the command layer's calls made through the
//! client component in wasmtime (a [`Session`]), converted between the
//! core's types and the component's (`dataverse_host::core_types`).
//! Connects on the first call and keeps the session for the next: one warm
//! client for `schedule`.

use dataverse_cli::backend::{Called, OnPage};
use dataverse_cli::{Backend, Failure, Operation, RowRef};
use dataverse_host::session::{
    self as wit, BatchOptions, EntityRef, OperationKind as WitOperationKind, WebRequest,
};
use dataverse_host::{CallError, Session};
use dataverse_wasm::client::{BatchOutcome, BulkReport, CallInfo, CallOptions, Reply, TokenInfo};
use dataverse_wasm::http::{Method, Response};
use dataverse_wasm::webapi::batch::{BatchItem, BatchPart};
use dataverse_wasm::webapi::bulk::Message;
use dataverse_wasm::webapi::changes::ChangePage;
use dataverse_wasm::webapi::crud::{Created, Row};
use dataverse_wasm::webapi::execute::{OperationKind, OperationResult};
use dataverse_wasm::webapi::fetchxml::FetchPage;
use dataverse_wasm::webapi::metadata::{Attribute, TableInfo};
use dataverse_wasm::webapi::who_am_i::WhoAmI;
use dataverse_wasm::webapi::{Page, Query};
use serde_json::Value;

use crate::cli::Global;

/// A failed call of the component, as the command layer reports it: the
/// typed error with its exit code, or a trap / host failure (exit 1).
pub fn failed(error: CallError) -> Failure {
    match error {
        CallError::Dataverse(e) => Failure::from(dataverse_wasm::client::Failure::from(&e)),
        CallError::Trapped(trap) => Failure::host(trap),
        CallError::Host(e) => Failure::host(format!("host error: {e}")),
    }
}

pub struct SessionBackend<'g> {
    global: &'g Global,
    session: Option<Session>,
    /// Requests sent by every call so far (from each call's record, on
    /// success and on failure): what a scheduled tick reports.
    pub attempts: u32,
}

impl<'g> SessionBackend<'g> {
    pub fn new(global: &'g Global) -> Self {
        SessionBackend {
            global,
            session: None,
            attempts: 0,
        }
    }

    async fn session(&mut self) -> Result<&mut Session, Failure> {
        if self.session.is_none() {
            self.session = Some(crate::connect(self.global).await?);
        }
        Ok(self.session.as_mut().expect("connected above"))
    }

    /// Counts a call's attempts (on success and on failure) and splits
    /// off its record.
    fn count<T>(
        &mut self,
        result: Result<T, CallError>,
        call_of: fn(&T) -> &wit::CallInfo,
    ) -> Result<(T, CallInfo), Failure> {
        match result {
            Ok(value) => {
                let call = CallInfo::from(call_of(&value));
                self.attempts += call.attempts;
                Ok((value, call))
            }
            Err(error) => self.failed(error),
        }
    }

    /// A bulk call's result in the core's types, its attempts counted.
    fn bulk_answer(
        &mut self,
        result: Result<wit::BulkResult, CallError>,
    ) -> Result<(TableInfo, BulkReport), Failure> {
        match result {
            Ok(result) => {
                let (table, report): (TableInfo, BulkReport) = result.into();
                self.attempts += report
                    .batches
                    .iter()
                    .map(|b| match &b.outcome {
                        BatchOutcome::Done { call, .. } => call.attempts,
                        BatchOutcome::Failed(f) => f.call.as_ref().map_or(0, |c| c.attempts),
                        BatchOutcome::NotSent => 0,
                    })
                    .sum::<u32>();
                Ok((table, report))
            }
            Err(error) => self.failed(error),
        }
    }

    /// A failed call: its attempts counted, the failure as the command
    /// layer reports it.
    fn failed<T>(&mut self, error: CallError) -> Result<T, Failure> {
        self.count_failed(&error);
        Err(failed(error))
    }

    fn count_failed(&mut self, error: &CallError) {
        if let CallError::Dataverse(e) = error
            && let Some(call) = &e.call
        {
            self.attempts += call.attempts;
        }
    }
}

fn entity(row: &RowRef) -> EntityRef {
    EntityRef::new(&row.entity_set, &row.key)
}

fn page(p: wit::Page) -> Page {
    Page {
        rows: p.rows,
        row_count: p.row_count,
        next_link: p.next_link,
        total_count: p.total_count,
    }
}

fn fetch_page(p: wit::FetchPage) -> FetchPage {
    FetchPage {
        rows: p.rows,
        row_count: p.row_count,
        more_records: p.more_records,
        paging_cookie: p.paging_cookie,
        total_record_count: p.total_count,
    }
}

impl Backend for SessionBackend<'_> {
    async fn who_am_i(&mut self, options: &CallOptions) -> Called<WhoAmI> {
        let result = self.session().await?.who_am_i(Some(&options.into())).await;
        let (who, call) = self.count(result, |w| &w.call)?;
        let value = WhoAmI {
            user_id: who.user_id,
            business_unit_id: who.business_unit_id,
            organization_id: who.organization_id,
        };
        Ok(Reply { value, call })
    }

    async fn retrieve(
        &mut self,
        row: &RowRef,
        select: &[String],
        expand: Option<&str>,
        options: &CallOptions,
    ) -> Called<Row> {
        let result = self
            .session()
            .await?
            .retrieve(&entity(row), select, expand, Some(&options.into()))
            .await;
        let (row, call) = self.count(result, |r| &r.call)?;
        let value = Row {
            json: row.json,
            etag: row.etag,
        };
        Ok(Reply { value, call })
    }

    async fn retrieve_multiple(&mut self, query: &Query, options: &CallOptions) -> Called<Page> {
        let result = self
            .session()
            .await?
            .retrieve_multiple(&wit_query(query), Some(&options.into()))
            .await;
        let (p, call) = self.count(result, |p| &p.call)?;
        Ok(Reply {
            value: page(p),
            call,
        })
    }

    async fn read_all(
        &mut self,
        query: &Query,
        max_rows: u64,
        options: &CallOptions,
        on_page: OnPage<'_, Page>,
    ) -> Result<(), Failure> {
        let mut attempts = 0;
        let result = self
            .session()
            .await?
            .read_all(&wit_query(query), max_rows, Some(&options.into()), |p| {
                let call = CallInfo::from(&p.call);
                attempts += call.attempts;
                on_page(&page(p), &call)
            })
            .await;
        self.attempts += attempts;
        self.count(result.map(|_| ()), |_| &NO_CALL).map(drop)
    }

    async fn fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        options: &CallOptions,
    ) -> Called<FetchPage> {
        let result = self
            .session()
            .await?
            .fetch_xml(entity_set, fetch_xml, 1, None, Some(&options.into()))
            .await;
        let (p, call) = self.count(result, |p| &p.call)?;
        Ok(Reply {
            value: fetch_page(p),
            call,
        })
    }

    async fn read_all_fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        max_rows: u64,
        options: &CallOptions,
        on_page: OnPage<'_, FetchPage>,
    ) -> Result<(), Failure> {
        let mut attempts = 0;
        let result = self
            .session()
            .await?
            .read_all_fetch_xml(
                entity_set,
                fetch_xml,
                max_rows,
                Some(&options.into()),
                |p| {
                    let call = CallInfo::from(&p.call);
                    attempts += call.attempts;
                    on_page(&fetch_page(p), &call)
                },
            )
            .await;
        self.attempts += attempts;
        self.count(result.map(|_| ()), |_| &NO_CALL).map(drop)
    }

    async fn create(
        &mut self,
        entity_set: &str,
        json: &str,
        options: &CallOptions,
    ) -> Called<Created> {
        let result = self
            .session()
            .await?
            .create(entity_set, json, Some(&options.into()))
            .await;
        let (created, call) = self.count(result, |c| &c.call)?;
        let value = Created {
            id: created.id,
            json: created.json,
        };
        Ok(Reply { value, call })
    }

    async fn update(
        &mut self,
        row: &RowRef,
        json: &str,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> Called<Option<String>> {
        let result = self
            .session()
            .await?
            .update(&entity(row), json, if_match, Some(&options.into()))
            .await;
        let (written, call) = self.count(result, |w| &w.call)?;
        Ok(Reply {
            value: written.json,
            call,
        })
    }

    async fn upsert(
        &mut self,
        row: &RowRef,
        json: &str,
        create_only: bool,
        options: &CallOptions,
    ) -> Called<Option<String>> {
        let result = self
            .session()
            .await?
            .upsert(&entity(row), json, create_only, Some(&options.into()))
            .await;
        let (written, call) = self.count(result, |w| &w.call)?;
        Ok(Reply {
            value: written.json,
            call,
        })
    }

    async fn delete(
        &mut self,
        row: &RowRef,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> Called<()> {
        let result = self
            .session()
            .await?
            .delete(&entity(row), if_match, Some(&options.into()))
            .await;
        let (_, call) = self.count(result, |c| c)?;
        Ok(Reply { value: (), call })
    }

    async fn associate(
        &mut self,
        row: &RowRef,
        navigation_property: &str,
        target: &RowRef,
        options: &CallOptions,
    ) -> Called<()> {
        let result = self
            .session()
            .await?
            .associate(
                &entity(row),
                navigation_property,
                &entity(target),
                Some(&options.into()),
            )
            .await;
        let (_, call) = self.count(result, |c| c)?;
        Ok(Reply { value: (), call })
    }

    async fn disassociate(
        &mut self,
        row: &RowRef,
        navigation_property: &str,
        target: Option<&RowRef>,
        options: &CallOptions,
    ) -> Called<()> {
        let target = target.map(entity);
        let result = self
            .session()
            .await?
            .disassociate(
                &entity(row),
                navigation_property,
                target.as_ref(),
                Some(&options.into()),
            )
            .await;
        let (_, call) = self.count(result, |c| c)?;
        Ok(Reply { value: (), call })
    }

    async fn execute(
        &mut self,
        operation: &Operation,
        options: &CallOptions,
    ) -> Called<OperationResult> {
        let operation = wit::Operation {
            name: operation.name.clone(),
            kind: match operation.kind {
                OperationKind::Function => WitOperationKind::Function,
                OperationKind::Action => WitOperationKind::Action,
            },
            bound: operation.bound.as_ref().map(entity),
            parameters: operation.parameters.clone(),
        };
        let result = self
            .session()
            .await?
            .execute(&operation, Some(&options.into()))
            .await;
        let (done, call) = self.count(result, |r| &r.call)?;
        let value = OperationResult {
            status: done.status,
            json: done.json,
        };
        Ok(Reply { value, call })
    }

    async fn batch(
        &mut self,
        parts: &[BatchPart],
        change_set: bool,
        continue_on_error: bool,
        options: &CallOptions,
    ) -> Called<Vec<BatchItem>> {
        let requests: Vec<wit::BatchRequest> = parts.iter().map(Into::into).collect();
        let batch_options = BatchOptions {
            change_set,
            continue_on_error,
        };
        let result = self
            .session()
            .await?
            .batch(&requests, batch_options, Some(&options.into()))
            .await;
        let (done, call) = self.count(result, |r| &r.call)?;
        let value = done.responses.into_iter().map(Into::into).collect();
        Ok(Reply { value, call })
    }

    async fn attributes(
        &mut self,
        table: &str,
        options: &CallOptions,
    ) -> Result<Vec<Attribute>, Failure> {
        let result = self
            .session()
            .await?
            .attributes(table, Some(&options.into()))
            .await;
        match result {
            Ok(columns) => Ok(columns
                .into_iter()
                .map(|a| Attribute {
                    logical_name: a.logical_name,
                    attribute_type: a.attribute_type,
                })
                .collect()),
            Err(error) => self.failed(error),
        }
    }

    async fn delete_multiple(
        &mut self,
        table: &str,
        keys: &[String],
        batch_rows: usize,
        parallel: Option<u32>,
        options: &CallOptions,
    ) -> Result<(TableInfo, BulkReport), Failure> {
        let bulk = wit::BulkOptions {
            batch_size: u32::try_from(batch_rows).unwrap_or(u32::MAX),
            parallel,
        };
        let result = self
            .session()
            .await?
            .delete_multiple(table, keys, bulk, Some(&options.into()))
            .await;
        self.bulk_answer(result)
    }

    async fn upload(
        &mut self,
        row: &RowRef,
        column: &str,
        file_name: &str,
        size: u64,
        source: &mut (dyn std::io::Read + Send),
        options: &CallOptions,
    ) -> Result<u64, Failure> {
        let target = entity(row);
        let result = self
            .session()
            .await?
            .upload_file(
                &target,
                column,
                file_name,
                size,
                source,
                Some(&options.into()),
            )
            .await;
        match result {
            Ok(done) => {
                self.attempts += done.chunks + 1;
                Ok(done.bytes)
            }
            Err(error) => self.failed(error),
        }
    }

    async fn download(
        &mut self,
        row: &RowRef,
        column: &str,
        sink: &mut (dyn std::io::Write + Send),
        options: &CallOptions,
    ) -> Result<(u64, Option<String>), Failure> {
        let target = entity(row);
        let chunk = dataverse_wasm::webapi::file::MAX_CHUNK_BYTES as u32;
        let result = self
            .session()
            .await?
            .download_file(&target, column, chunk, sink, Some(&options.into()))
            .await;
        match result {
            Ok(done) => {
                self.attempts += done.chunks;
                Ok((done.bytes, done.file_name))
            }
            Err(error) => self.failed(error),
        }
    }

    async fn track_changes(&mut self, query: &Query, options: &CallOptions) -> Called<ChangePage> {
        let result = self
            .session()
            .await?
            .track_changes(&wit_query(query), Some(&options.into()))
            .await;
        let (p, call) = self.count(result, |p| &p.call)?;
        Ok(Reply {
            value: p.into(),
            call,
        })
    }

    async fn changes(
        &mut self,
        link: &str,
        page_size: Option<u32>,
        options: &CallOptions,
    ) -> Called<ChangePage> {
        let result = self
            .session()
            .await?
            .changes(link, page_size, Some(&options.into()))
            .await;
        let (p, call) = self.count(result, |p| &p.call)?;
        Ok(Reply {
            value: p.into(),
            call,
        })
    }

    async fn table(&mut self, name: &str, options: &CallOptions) -> Result<TableInfo, Failure> {
        let result = self
            .session()
            .await?
            .table(name, Some(&options.into()))
            .await;
        match result {
            Ok(table) => Ok(table.into()),
            Err(error) => self.failed(error),
        }
    }

    async fn bulk(
        &mut self,
        message: Message,
        table: &str,
        rows: &[Value],
        batch_rows: usize,
        parallel: Option<u32>,
        options: &CallOptions,
    ) -> Result<(TableInfo, BulkReport), Failure> {
        let rows: Vec<String> = rows.iter().map(Value::to_string).collect();
        let bulk = wit::BulkOptions {
            batch_size: u32::try_from(batch_rows).unwrap_or(u32::MAX),
            parallel,
        };
        let result = self
            .session()
            .await?
            .bulk(message.into(), table, &rows, bulk, Some(&options.into()))
            .await;
        self.bulk_answer(result)
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        options: &CallOptions,
    ) -> Called<Response> {
        let request = WebRequest {
            method: method.into(),
            path: path.to_string(),
            headers: headers.to_vec(),
            body: (!body.is_empty()).then_some(body),
        };
        let result = self
            .session()
            .await?
            .send(&request, Some(&options.into()))
            .await;
        let (response, call) = self.count(result, |r| &r.call)?;
        let value = Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        };
        Ok(Reply { value, call })
    }

    async fn token_info(&mut self) -> Result<TokenInfo, Failure> {
        let result = self.session().await?.token_info().await;
        let (info, _) = self.count(result, |_| &NO_CALL)?;
        Ok(info.into())
    }

    async fn access_token(&mut self) -> Result<String, Failure> {
        let result = self.session().await?.access_token().await;
        Ok(self.count(result, |_| &NO_CALL)?.0)
    }
}

/// The record of a result that carries none (a read's end, token metadata):
/// no request of its own to count.
static NO_CALL: wit::CallInfo = wit::CallInfo {
    client_request_id: String::new(),
    attempts: 0,
};

fn wit_query(q: &Query) -> wit::Query {
    wit::Query {
        entity_set: q.entity_set.clone(),
        select: q.select.clone(),
        filter: q.filter.clone(),
        orderby: q.orderby.clone(),
        expand: q.expand.clone(),
        apply: q.apply.clone(),
        top: q.top,
        page_size: q.page_size,
        count: q.count,
    }
}
