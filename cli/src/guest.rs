//! The command component's backend: the core's client over `wasi:http`,
//! in this guest. Connects on the first call, with the settings the
//! connection string gives and the flags' client options.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use dataverse_wasm::auth::assertion::{Algorithm, AssertionOptions};
use dataverse_wasm::client::{
    BulkReport, CallOptions, Client, ClientConfig, Failure as CallFailure, TokenInfo,
};
use dataverse_wasm::file_upload::FileUpload;
use dataverse_wasm::http::{Method, Response};
use dataverse_wasm::page_reader::{FetchReader, PageReader};
use dataverse_wasm::retry::RetryPolicy;
use dataverse_wasm::settings;
use dataverse_wasm::transport::{DEFAULT_MAX_RESPONSE_BYTES, WasiTransport};
use dataverse_wasm::webapi::batch::{BatchItem, BatchPart};
use dataverse_wasm::webapi::bulk::Message;
use dataverse_wasm::webapi::changes::ChangePage;
use dataverse_wasm::webapi::crud::{Created, Row};
use dataverse_wasm::webapi::execute::OperationResult;
use dataverse_wasm::webapi::fetchxml::FetchPage;
use dataverse_wasm::webapi::file::MAX_CHUNK_BYTES;
use dataverse_wasm::webapi::metadata::{Attribute, TableInfo};
use dataverse_wasm::webapi::who_am_i::WhoAmI;
use dataverse_wasm::webapi::{Page, Query};
use serde_json::Value;

use dataverse_cli::backend::{Called, OnPage};
use dataverse_cli::commands::resolved_connection;
use dataverse_cli::{Backend, Failure, Operation, Options, RowRef};

pub struct GuestBackend<'a> {
    options: &'a Options,
    client: Option<Client<WasiTransport>>,
}

impl<'a> GuestBackend<'a> {
    pub fn new(options: &'a Options) -> Self {
        GuestBackend {
            options,
            client: None,
        }
    }

    fn client(&mut self) -> Result<&mut Client<WasiTransport>, Failure> {
        if self.client.is_none() {
            let connection = resolved_connection(self.options)?.connection;
            // The command component imports no signer (settings::parse_as).
            let settings = settings::parse_as::<false>(&connection).map_err(CallFailure::from)?;
            let transport = WasiTransport {
                max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
                timeout_ms: self.options.timeout_ms,
            };
            let defaults = RetryPolicy::default();
            let config = ClientConfig {
                retry: RetryPolicy {
                    max_retries: self.options.max_retries.unwrap_or(defaults.max_retries),
                    ..defaults
                },
                assertion: AssertionOptions {
                    algorithm: if self.options.ps256 {
                        Algorithm::Ps256
                    } else {
                        Algorithm::Rs256
                    },
                    send_chain: self.options.send_chain,
                },
            };
            self.client = Some(Client::connect(settings, transport, config)?);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }
}

/// Runs one of the command layer's futures. Every call in this backend is
/// synchronous (its I/O blocks on `wasi:io` pollables), so the future is
/// ready on its first poll; the loop only guards the type.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}

fn ok<T>(result: Result<dataverse_wasm::client::Reply<T>, CallFailure>) -> Called<T> {
    result.map_err(Failure::from)
}

impl Backend for GuestBackend<'_> {
    async fn who_am_i(&mut self, options: &CallOptions) -> Called<WhoAmI> {
        ok(self.client()?.who_am_i(options))
    }

    async fn retrieve(
        &mut self,
        row: &RowRef,
        select: &[String],
        expand: Option<&str>,
        options: &CallOptions,
    ) -> Called<Row> {
        ok(self
            .client()?
            .retrieve(&row.entity_set, &row.key, select, expand, options))
    }

    async fn retrieve_multiple(&mut self, query: &Query, options: &CallOptions) -> Called<Page> {
        ok(self.client()?.retrieve_multiple(query, options))
    }

    async fn read_all(
        &mut self,
        query: &Query,
        max_rows: u64,
        options: &CallOptions,
        on_page: OnPage<'_, Page>,
    ) -> Result<(), Failure> {
        let client = self.client()?;
        let mut reader = PageReader::new(query.clone(), max_rows, options.clone());
        while let Some(page) = reader.next(client) {
            let page = page?;
            if on_page(&page.value, &page.call) == ControlFlow::Break(()) {
                break;
            }
        }
        Ok(())
    }

    async fn fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        options: &CallOptions,
    ) -> Called<FetchPage> {
        ok(self
            .client()?
            .fetch_xml(entity_set, fetch_xml, 1, None, options))
    }

    async fn read_all_fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        max_rows: u64,
        options: &CallOptions,
        on_page: OnPage<'_, FetchPage>,
    ) -> Result<(), Failure> {
        let client = self.client()?;
        let mut reader = FetchReader::new(
            entity_set.to_string(),
            fetch_xml.to_string(),
            max_rows,
            options.clone(),
        );
        while let Some(page) = reader.next(client) {
            let page = page?;
            if on_page(&page.value, &page.call) == ControlFlow::Break(()) {
                break;
            }
        }
        Ok(())
    }

    async fn create(
        &mut self,
        entity_set: &str,
        json: &str,
        options: &CallOptions,
    ) -> Called<Created> {
        ok(self.client()?.create(entity_set, json, options))
    }

    async fn update(
        &mut self,
        row: &RowRef,
        json: &str,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> Called<Option<String>> {
        ok(self
            .client()?
            .update(&row.entity_set, &row.key, json, if_match, options))
    }

    async fn upsert(
        &mut self,
        row: &RowRef,
        json: &str,
        create_only: bool,
        options: &CallOptions,
    ) -> Called<Option<String>> {
        ok(self
            .client()?
            .upsert(&row.entity_set, &row.key, json, create_only, options))
    }

    async fn delete(
        &mut self,
        row: &RowRef,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> Called<()> {
        ok(self
            .client()?
            .delete(&row.entity_set, &row.key, if_match, options))
    }

    async fn associate(
        &mut self,
        row: &RowRef,
        navigation_property: &str,
        target: &RowRef,
        options: &CallOptions,
    ) -> Called<()> {
        ok(self.client()?.associate(
            &row.entity_set,
            &row.key,
            navigation_property,
            &target.entity_set,
            &target.key,
            options,
        ))
    }

    async fn disassociate(
        &mut self,
        row: &RowRef,
        navigation_property: &str,
        target: Option<&RowRef>,
        options: &CallOptions,
    ) -> Called<()> {
        let target = target.map(|t| (t.entity_set.as_str(), t.key.as_str()));
        ok(self.client()?.disassociate(
            &row.entity_set,
            &row.key,
            navigation_property,
            target,
            options,
        ))
    }

    async fn execute(
        &mut self,
        operation: &Operation,
        options: &CallOptions,
    ) -> Called<OperationResult> {
        let bound = operation
            .bound
            .as_ref()
            .map(|b| (b.entity_set.as_str(), b.key.as_str()));
        ok(self.client()?.execute(
            &operation.name,
            operation.kind,
            bound,
            operation.parameters.as_deref(),
            options,
        ))
    }

    async fn batch(
        &mut self,
        parts: &[BatchPart],
        change_set: bool,
        continue_on_error: bool,
        options: &CallOptions,
    ) -> Called<Vec<BatchItem>> {
        ok(self
            .client()?
            .batch(parts, change_set, continue_on_error, options))
    }

    async fn attributes(
        &mut self,
        table: &str,
        options: &CallOptions,
    ) -> Result<Vec<Attribute>, Failure> {
        let client = self.client()?;
        let table = client.table(table, options)?.value;
        Ok(client.attributes(&table.logical_name, options)?.value)
    }

    async fn delete_multiple(
        &mut self,
        table: &str,
        keys: &[String],
        batch_rows: usize,
        parallel: Option<u32>,
        options: &CallOptions,
    ) -> Result<(TableInfo, BulkReport), Failure> {
        let client = self.client()?;
        let table = client.table(table, options)?.value;
        let report = client
            .delete_multiple(&table, keys, batch_rows, parallel, options)
            .map_err(CallFailure::from)?;
        Ok((table, report))
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
        let client = self.client()?;
        let mut upload = FileUpload::start(
            client,
            &row.entity_set,
            &row.key,
            column,
            file_name,
            size,
            options.clone(),
        )?
        .value;
        let chunk_bytes = upload.chunk_bytes();
        while upload.sent() < size {
            let want = (size - upload.sent()).min(chunk_bytes) as usize;
            let mut chunk = vec![0u8; want];
            source.read_exact(&mut chunk).map_err(|e| {
                Failure::host(format!(
                    "the file could not be read at byte {}: {e}",
                    upload.sent()
                ))
            })?;
            upload.send(client, chunk)?;
        }
        Ok(upload.sent())
    }

    async fn download(
        &mut self,
        row: &RowRef,
        column: &str,
        sink: &mut (dyn std::io::Write + Send),
        options: &CallOptions,
    ) -> Result<(u64, Option<String>), Failure> {
        let client = self.client()?;
        let (mut written, mut name, mut size) = (0u64, None, None::<u64>);
        loop {
            let piece = client
                .download_chunk(
                    &row.entity_set,
                    &row.key,
                    column,
                    written,
                    MAX_CHUNK_BYTES,
                    options,
                )?
                .value;
            if *size.get_or_insert(piece.file_size) != piece.file_size {
                return Err(Failure::host(format!(
                    "the file changed during the download: {} bytes, then {}",
                    size.unwrap_or(0),
                    piece.file_size
                )));
            }
            sink.write_all(&piece.data)
                .map_err(|e| Failure::host(format!("the file could not be written: {e}")))?;
            written += piece.data.len() as u64;
            name = piece.file_name.or(name);
            if written >= piece.file_size || piece.data.is_empty() {
                return Ok((written, name));
            }
        }
    }

    async fn track_changes(&mut self, query: &Query, options: &CallOptions) -> Called<ChangePage> {
        ok(self.client()?.track_changes(query, options))
    }

    async fn changes(
        &mut self,
        link: &str,
        page_size: Option<u32>,
        options: &CallOptions,
    ) -> Called<ChangePage> {
        ok(self.client()?.changes(link, page_size, options))
    }

    async fn table(&mut self, name: &str, options: &CallOptions) -> Result<TableInfo, Failure> {
        Ok(self.client()?.table(name, options)?.value)
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
        let client = self.client()?;
        let table = client.table(table, options)?.value;
        let report = client
            .bulk(message, &table, rows, batch_rows, parallel, options)
            .map_err(CallFailure::from)?;
        Ok((table, report))
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        options: &CallOptions,
    ) -> Called<Response> {
        ok(self.client()?.send(method, path, headers, body, options))
    }

    async fn token_info(&mut self) -> Result<TokenInfo, Failure> {
        Ok(self.client()?.token_info()?)
    }

    async fn access_token(&mut self) -> Result<String, Failure> {
        Ok(self.client()?.access_token()?.expose().to_string())
    }
}
