//! A live instance of the component with one connected `client` resource,
//! and typed calls on it.

use std::fmt;
use std::ops::ControlFlow;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::state::{HostState, MemoryLimitExceeded};

pub use crate::bindings::exports::dataverse::client::auth::{AuthorityInfo, HttpRequest, Token};
pub use crate::bindings::exports::dataverse::client::connection::{AuthType, SettingsSummary};
pub use crate::bindings::exports::dataverse::client::types::{
    AssertionAlgorithm, AuthFailure, CallInfo, ClientOptions, Error as DataverseError, ErrorKind,
    Method, ServiceFailure, Throttling,
};
pub use crate::bindings::exports::dataverse::client::web_api::{
    Attribute, BatchOptions, BatchOutcome, BatchRequest, BatchResponseItem, BatchResult, BulkBatch,
    BulkOptions, BulkResult, ChangePage, Created, EntityRef, FetchPage, Operation, OperationKind,
    OperationResult, Page, Query, RequestOptions, Row, TableInfo, TokenInfo, WebRequest,
    WebResponse, WhoAmIResponse, Written, WrittenBatch,
};

/// What [`Session::upload_file`] sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileUploaded {
    pub bytes: u64,
    pub chunks: u32,
}

/// What [`Session::download_file`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDownloaded {
    pub bytes: u64,
    pub chunks: u32,
    pub file_name: Option<String>,
}

/// The bulk messages (`create-multiple`, `update-multiple`, `upsert-multiple`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkMessage {
    CreateMultiple,
    UpdateMultiple,
    UpsertMultiple,
}

impl BulkMessage {
    /// The call's name in traces (`create_multiple`, …).
    pub fn name(self) -> &'static str {
        match self {
            BulkMessage::CreateMultiple => "create_multiple",
            BulkMessage::UpdateMultiple => "update_multiple",
            BulkMessage::UpsertMultiple => "upsert_multiple",
        }
    }
}

/// A failed call: the component's typed error, the guest trapping, or a
/// host failure (instantiation, linking, I/O of the host itself).
#[derive(Debug)]
pub enum CallError {
    Dataverse(DataverseError),
    /// The instance trapped and must not be called again; a [`crate::Dataverse`]
    /// handle replaces it with a fresh one for the next call.
    Trapped(GuestTrap),
    Host(wasmtime::Error),
}

/// Why a guest instance stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestTrap {
    /// The call ran past [`crate::Limits::call_deadline`].
    DeadlineExceeded,
    /// The guest tried to grow its memory past
    /// [`crate::Limits::max_memory_bytes`].
    MemoryLimit { limit_bytes: usize },
    /// Any other trap (a bug in the guest): wasmtime's description.
    Guest(String),
}

impl fmt::Display for GuestTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestTrap::DeadlineExceeded => write!(f, "the call ran past its deadline"),
            GuestTrap::MemoryLimit { limit_bytes } => write!(
                f,
                "the instance needed more than its memory limit of {limit_bytes} bytes"
            ),
            GuestTrap::Guest(message) => write!(f, "the component trapped: {message}"),
        }
    }
}

impl CallError {
    /// The component's error kind, if this is one.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            CallError::Dataverse(e) => Some(&e.kind),
            CallError::Trapped(_) | CallError::Host(_) => None,
        }
    }

    /// True when the instance that made the call must be thrown away.
    pub fn kills_instance(&self) -> bool {
        !matches!(self, CallError::Dataverse(_))
    }
}

impl From<wasmtime::Error> for CallError {
    /// Traps become [`CallError::Trapped`] with their reason; the rest stays
    /// a host error.
    fn from(e: wasmtime::Error) -> Self {
        if let Some(exceeded) = e.downcast_ref::<MemoryLimitExceeded>() {
            return CallError::Trapped(GuestTrap::MemoryLimit {
                limit_bytes: exceeded.limit,
            });
        }
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => CallError::Trapped(GuestTrap::DeadlineExceeded),
            Some(trap) => CallError::Trapped(GuestTrap::Guest(trap.to_string())),
            None => CallError::Host(e),
        }
    }
}

impl From<DataverseError> for CallError {
    fn from(e: DataverseError) -> Self {
        CallError::Dataverse(e)
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Dataverse(e) => write!(f, "{}", describe(e)),
            CallError::Trapped(trap) => write!(f, "{trap}"),
            CallError::Host(e) => write!(f, "host error: {e:#}"),
        }
    }
}

impl std::error::Error for CallError {}

/// One line a person can act on. Never contains a secret: the component's
/// errors carry none. The same line every front end prints (the core's
/// `describe`).
pub fn describe(error: &DataverseError) -> String {
    crate::core_types::describe(error)
}

/// One instance of the component holding one connected client.
pub struct Session {
    store: Store<HostState>,
    bindings: crate::bindings::ClientSigning,
    client: ResourceAny,
    deadline_ticks: u64,
}

impl Session {
    pub(crate) fn new(
        store: Store<HostState>,
        bindings: crate::bindings::ClientSigning,
        client: ResourceAny,
        deadline_ticks: u64,
    ) -> Session {
        Session {
            store,
            bindings,
            client,
            deadline_ticks,
        }
    }

    /// The largest linear memory the guest has grown to, in bytes.
    pub fn peak_memory_bytes(&self) -> usize {
        self.store.data().memory.peak
    }

    pub async fn who_am_i(
        &mut self,
        options: Option<&RequestOptions>,
    ) -> Result<WhoAmIResponse, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_who_am_i(&mut self.store, self.client, options)
            .await??)
    }

    pub async fn retrieve(
        &mut self,
        row: &EntityRef,
        select: &[String],
        expand: Option<&str>,
        options: Option<&RequestOptions>,
    ) -> Result<Row, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_retrieve(&mut self.store, self.client, row, select, expand, options)
            .await??)
    }

    pub async fn retrieve_multiple(
        &mut self,
        query: &Query,
        options: Option<&RequestOptions>,
    ) -> Result<Page, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_retrieve_multiple(&mut self.store, self.client, query, options)
            .await??)
    }

    pub async fn next_page(
        &mut self,
        next_link: &str,
        page_size: Option<u32>,
        options: Option<&RequestOptions>,
    ) -> Result<Page, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_next_page(&mut self.store, self.client, next_link, page_size, options)
            .await??)
    }

    /// Reads every page of `query` (at most `max_rows` rows), handing each
    /// page to `on_page` as it arrives; the guest holds one page at a time.
    /// `on_page` returning `Break` stops the read there (no further request).
    /// Returns the rows read.
    pub async fn read_all(
        &mut self,
        query: &Query,
        max_rows: u64,
        options: Option<&RequestOptions>,
        mut on_page: impl FnMut(Page) -> ControlFlow<()>,
    ) -> Result<u64, CallError> {
        let reader = self.open_read(query, max_rows, options).await?;
        let mut rows = 0;
        let read = loop {
            match self.read_next(reader).await {
                Ok(Some(page)) => {
                    rows += u64::from(page.row_count);
                    if on_page(page).is_break() {
                        break Ok(rows);
                    }
                }
                Ok(None) => break Ok(rows),
                Err(error) => break Err(error),
            }
        };
        self.finish_read(reader, read).await
    }

    /// Reads every page of a FetchXML query (at most `max_rows` rows),
    /// following paging cookies, handing each page to `on_page` as it
    /// arrives; the guest holds one page at a time. `Break` stops the read.
    pub async fn read_all_fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        max_rows: u64,
        options: Option<&RequestOptions>,
        mut on_page: impl FnMut(FetchPage) -> ControlFlow<()>,
    ) -> Result<u64, CallError> {
        let reader = self
            .open_fetch_read(entity_set, fetch_xml, max_rows, options)
            .await?;
        let mut rows = 0;
        let read = loop {
            match self.read_next_fetch(reader).await {
                Ok(Some(page)) => {
                    rows += u64::from(page.row_count);
                    if on_page(page).is_break() {
                        break Ok(rows);
                    }
                }
                Ok(None) => break Ok(rows),
                Err(error) => break Err(error),
            }
        };
        self.finish_read(reader, read).await
    }

    /// Opens a `page-reader` over `query`, to pull with [`Session::read_next`]
    /// and end with [`Session::close_read`]: the pull form of `read_all`,
    /// for a caller that decides between pages (the row stream).
    pub(crate) async fn open_read(
        &mut self,
        query: &Query,
        max_rows: u64,
        options: Option<&RequestOptions>,
    ) -> Result<ResourceAny, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_read_all(&mut self.store, self.client, query, max_rows, options)
            .await?)
    }

    /// The next page of a reader from [`Session::open_read`]; none at the end.
    pub(crate) async fn read_next(
        &mut self,
        reader: ResourceAny,
    ) -> Result<Option<Page>, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let pages = self.bindings.dataverse_client_web_api().page_reader();
        Ok(pages.call_next(&mut self.store, reader).await??)
    }

    /// [`Session::open_read`] for a FetchXML query (`fetch-page-reader`).
    pub(crate) async fn open_fetch_read(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        max_rows: u64,
        options: Option<&RequestOptions>,
    ) -> Result<ResourceAny, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_read_all_fetch_xml(
                &mut self.store,
                self.client,
                entity_set,
                fetch_xml,
                max_rows,
                options,
            )
            .await?)
    }

    /// The next page of a reader from [`Session::open_fetch_read`].
    pub(crate) async fn read_next_fetch(
        &mut self,
        reader: ResourceAny,
    ) -> Result<Option<FetchPage>, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let pages = self.bindings.dataverse_client_web_api().fetch_page_reader();
        Ok(pages.call_next(&mut self.store, reader).await??)
    }

    /// Drops a reader of either kind, so the instance can serve further calls.
    pub(crate) async fn close_read(&mut self, reader: ResourceAny) -> Result<(), CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        Ok(reader.resource_drop_async(&mut self.store).await?)
    }

    /// Ends a `read_all`: the rows handed out (counted here: the same
    /// number as the reader's `rows-read`), or the read's error. A trapped
    /// instance cannot be entered again, so its reader is left to die with
    /// it and the trap is what the caller sees.
    async fn finish_read(
        &mut self,
        reader: ResourceAny,
        read: Result<u64, CallError>,
    ) -> Result<u64, CallError> {
        if matches!(&read, Err(error) if error.kills_instance()) {
            return read;
        }
        self.close_read(reader).await?;
        read
    }

    pub async fn fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        page: u32,
        paging_cookie: Option<&str>,
        options: Option<&RequestOptions>,
    ) -> Result<FetchPage, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_fetch_xml(
                &mut self.store,
                self.client,
                entity_set,
                fetch_xml,
                page,
                paging_cookie,
                options,
            )
            .await??)
    }

    pub async fn create(
        &mut self,
        entity_set: &str,
        json: &str,
        options: Option<&RequestOptions>,
    ) -> Result<Created, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_create(&mut self.store, self.client, entity_set, json, options)
            .await??)
    }

    pub async fn update(
        &mut self,
        row: &EntityRef,
        json: &str,
        if_match: Option<&str>,
        options: Option<&RequestOptions>,
    ) -> Result<Written, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_update(&mut self.store, self.client, row, json, if_match, options)
            .await??)
    }

    pub async fn upsert(
        &mut self,
        row: &EntityRef,
        json: &str,
        prevent_update: bool,
        options: Option<&RequestOptions>,
    ) -> Result<Written, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_upsert(
                &mut self.store,
                self.client,
                row,
                json,
                prevent_update,
                options,
            )
            .await??)
    }

    pub async fn delete(
        &mut self,
        row: &EntityRef,
        if_match: Option<&str>,
        options: Option<&RequestOptions>,
    ) -> Result<CallInfo, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_delete(&mut self.store, self.client, row, if_match, options)
            .await??)
    }

    pub async fn associate(
        &mut self,
        row: &EntityRef,
        navigation_property: &str,
        target: &EntityRef,
        options: Option<&RequestOptions>,
    ) -> Result<CallInfo, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_associate(
                &mut self.store,
                self.client,
                row,
                navigation_property,
                target,
                options,
            )
            .await??)
    }

    pub async fn disassociate(
        &mut self,
        row: &EntityRef,
        navigation_property: &str,
        target: Option<&EntityRef>,
        options: Option<&RequestOptions>,
    ) -> Result<CallInfo, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_disassociate(
                &mut self.store,
                self.client,
                row,
                navigation_property,
                target,
                options,
            )
            .await??)
    }

    pub async fn execute(
        &mut self,
        operation: &Operation,
        options: Option<&RequestOptions>,
    ) -> Result<OperationResult, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_execute(&mut self.store, self.client, operation, options)
            .await??)
    }

    pub async fn batch(
        &mut self,
        requests: &[BatchRequest],
        batch_options: BatchOptions,
        options: Option<&RequestOptions>,
    ) -> Result<BatchResult, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_batch(
                &mut self.store,
                self.client,
                requests,
                batch_options,
                options,
            )
            .await??)
    }

    /// Uploads `size` bytes from `source` to a file column, one chunk at a
    /// time (the component holds one chunk, at most 4 MiB): `start-upload`,
    /// then `send` until the size is reached. A source that ends early or
    /// fails is a host error, and the upload is left unfinished (Dataverse
    /// keeps the column's old file).
    pub async fn upload_file(
        &mut self,
        row: &EntityRef,
        column: &str,
        file_name: &str,
        size: u64,
        source: &mut (dyn std::io::Read + Send),
        options: Option<&RequestOptions>,
    ) -> Result<FileUploaded, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        let upload = api
            .call_start_upload(
                &mut self.store,
                self.client,
                row,
                column,
                file_name,
                size,
                options,
            )
            .await??;
        let uploads = self.bindings.dataverse_client_web_api().file_upload();
        let sent = async {
            let chunk_bytes = uploads.call_chunk_size(&mut self.store, upload).await?;
            let mut done = FileUploaded {
                bytes: 0,
                chunks: 0,
            };
            let mut chunk = vec![0u8; chunk_bytes as usize];
            while done.bytes < size {
                let want = (size - done.bytes).min(u64::from(chunk_bytes)) as usize;
                source.read_exact(&mut chunk[..want]).map_err(|e| {
                    CallError::Host(wasmtime::Error::msg(format!(
                        "the file to upload could not be read at byte {}: {e}",
                        done.bytes
                    )))
                })?;
                self.store.set_epoch_deadline(self.deadline_ticks);
                uploads
                    .call_send(&mut self.store, upload, &chunk[..want])
                    .await??;
                done.bytes += want as u64;
                done.chunks += 1;
            }
            Ok::<_, CallError>(done)
        }
        .await;
        if matches!(&sent, Err(error) if error.kills_instance()) {
            return sent;
        }
        upload.resource_drop_async(&mut self.store).await?;
        sent
    }

    /// Downloads a file column's file into `sink`, `chunk` bytes (1 to
    /// 4 MiB) per request, the component holding one chunk at a time.
    pub async fn download_file(
        &mut self,
        row: &EntityRef,
        column: &str,
        chunk: u32,
        sink: &mut (dyn std::io::Write + Send),
        options: Option<&RequestOptions>,
    ) -> Result<FileDownloaded, CallError> {
        let api = self.bindings.dataverse_client_web_api().client();
        let mut done = FileDownloaded {
            bytes: 0,
            chunks: 0,
            file_name: None,
        };
        let mut size: Option<u64> = None;
        loop {
            self.store.set_epoch_deadline(self.deadline_ticks);
            let piece = api
                .call_download(
                    &mut self.store,
                    self.client,
                    row,
                    column,
                    done.bytes,
                    chunk,
                    options,
                )
                .await??;
            sink.write_all(&piece.data).map_err(|e| {
                CallError::Host(wasmtime::Error::msg(format!(
                    "the downloaded file could not be written at byte {}: {e}",
                    done.bytes
                )))
            })?;
            // A size that changes between chunks is a file that changed
            // under the download (or a server that would keep it going).
            if *size.get_or_insert(piece.file_size) != piece.file_size {
                return Err(CallError::Host(wasmtime::Error::msg(format!(
                    "the file changed during the download: {} bytes, then {}",
                    size.unwrap_or(0),
                    piece.file_size
                ))));
            }
            done.bytes += piece.data.len() as u64;
            done.chunks += 1;
            done.file_name = piece.file_name.or(done.file_name);
            if done.bytes >= piece.file_size || piece.data.is_empty() {
                return Ok(done);
            }
        }
    }

    /// The first page of `query` read with change tracking.
    pub async fn track_changes(
        &mut self,
        query: &Query,
        options: Option<&RequestOptions>,
    ) -> Result<ChangePage, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_track_changes(&mut self.store, self.client, query, options)
            .await??)
    }

    /// The page at a change read's next link or delta link.
    pub async fn changes(
        &mut self,
        link: &str,
        page_size: Option<u32>,
        options: Option<&RequestOptions>,
    ) -> Result<ChangePage, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_changes(&mut self.store, self.client, link, page_size, options)
            .await??)
    }

    /// A table's definition by entity set or logical name (cached in the instance).
    pub async fn table(
        &mut self,
        name: &str,
        options: Option<&RequestOptions>,
    ) -> Result<TableInfo, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_table(&mut self.store, self.client, name, options)
            .await??)
    }

    /// A table's columns and their types.
    pub async fn attributes(
        &mut self,
        table: &str,
        options: Option<&RequestOptions>,
    ) -> Result<Vec<Attribute>, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_attributes(&mut self.store, self.client, table, options)
            .await??)
    }

    /// Deletes rows by key, in batches (see the WIT's `delete-multiple`).
    pub async fn delete_multiple(
        &mut self,
        table: &str,
        keys: &[String],
        bulk: BulkOptions,
        options: Option<&RequestOptions>,
    ) -> Result<BulkResult, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_delete_multiple(&mut self.store, self.client, table, keys, bulk, options)
            .await??)
    }

    /// One of the bulk messages, `rows` as JSON objects.
    pub async fn bulk(
        &mut self,
        message: BulkMessage,
        table: &str,
        rows: &[String],
        bulk: BulkOptions,
        options: Option<&RequestOptions>,
    ) -> Result<BulkResult, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        let (store, client) = (&mut self.store, self.client);
        Ok(match message {
            BulkMessage::CreateMultiple => {
                api.call_create_multiple(store, client, table, rows, bulk, options)
                    .await
            }
            BulkMessage::UpdateMultiple => {
                api.call_update_multiple(store, client, table, rows, bulk, options)
                    .await
            }
            BulkMessage::UpsertMultiple => {
                api.call_upsert_multiple(store, client, table, rows, bulk, options)
                    .await
            }
        }??)
    }

    pub async fn send(
        &mut self,
        request: &WebRequest,
        options: Option<&RequestOptions>,
    ) -> Result<WebResponse, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_send(&mut self.store, self.client, request, options)
            .await??)
    }

    /// Replaces the access token of a `connect_with_token` session.
    pub async fn set_access_token(
        &mut self,
        access_token: &str,
        expires_at: u64,
    ) -> Result<(), CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_set_access_token(&mut self.store, self.client, access_token, expires_at)
            .await?)
    }

    pub async fn token_info(&mut self) -> Result<TokenInfo, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api.call_token_info(&mut self.store, self.client).await??)
    }

    /// The access token. Treat it as a secret.
    pub async fn access_token(&mut self) -> Result<String, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_access_token(&mut self.store, self.client)
            .await??)
    }
}

/// Client options that change nothing (the component's defaults).
pub const DEFAULT_CLIENT_OPTIONS: ClientOptions = ClientOptions {
    max_response_bytes: None,
    timeout_ms: None,
    max_retries: None,
    max_total_wait_ms: None,
    assertion_algorithm: None,
    send_certificate_chain: None,
};

/// The component's pure `auth` interface, for hosts that do their own HTTP:
/// one instance holding one parsed `settings`.
pub struct AuthProtocol {
    store: Store<HostState>,
    bindings: crate::bindings::ClientSigning,
    settings: ResourceAny,
    deadline_ticks: u64,
}

impl AuthProtocol {
    pub(crate) fn new(
        store: Store<HostState>,
        bindings: crate::bindings::ClientSigning,
        settings: ResourceAny,
        deadline_ticks: u64,
    ) -> AuthProtocol {
        AuthProtocol {
            store,
            bindings,
            settings,
            deadline_ticks,
        }
    }

    pub async fn discovery_request(&mut self) -> Result<HttpRequest, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let auth = self.bindings.dataverse_client_auth();
        Ok(auth
            .call_discovery_request(&mut self.store, self.settings)
            .await?)
    }

    pub async fn configured_authority(&mut self) -> Result<Option<AuthorityInfo>, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let auth = self.bindings.dataverse_client_auth();
        Ok(auth
            .call_configured_authority(&mut self.store, self.settings)
            .await?
            .transpose()?)
    }

    pub async fn parse_challenge(
        &mut self,
        status: u16,
        www_authenticate: Option<&str>,
    ) -> Result<AuthorityInfo, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let auth = self.bindings.dataverse_client_auth();
        Ok(auth
            .call_parse_challenge(&mut self.store, self.settings, status, www_authenticate)
            .await??)
    }

    pub async fn token_request(
        &mut self,
        authority: &AuthorityInfo,
        options: ClientOptions,
    ) -> Result<HttpRequest, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let auth = self.bindings.dataverse_client_auth();
        Ok(auth
            .call_token_request(&mut self.store, self.settings, authority, options)
            .await??)
    }

    pub async fn parse_token_response(
        &mut self,
        status: u16,
        body: &[u8],
        now: u64,
    ) -> Result<Token, CallError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let auth = self.bindings.dataverse_client_auth();
        Ok(auth
            .call_parse_token_response(&mut self.store, status, body, now)
            .await??)
    }
}
