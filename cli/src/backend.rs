//! The calls a front end offers the commands, in the core's types: the
//! native CLI makes them through the client component in wasmtime, the
//! command component through the core in its own guest. Whoever
//! implements it connects on the first call (so a command's local checks
//! run before any request) and keeps the connection for the next (the
//! scheduled worker's one warm client).
//!
//! The futures are the native CLI's (wasmtime's async calls); the command
//! component's are ready at once, its I/O blocking on `wasi:io` pollables.

use std::ops::ControlFlow;

use dataverse_wasm::client::{BulkReport, CallInfo, CallOptions, Reply, TokenInfo};
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

use crate::Failure;

/// One row: its entity set and key (a GUID or an alternate key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowRef {
    pub entity_set: String,
    pub key: String,
}

/// A function or action call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub name: String,
    pub kind: OperationKind,
    pub bound: Option<RowRef>,
    /// The parameters as a JSON object.
    pub parameters: Option<String>,
}

/// A page handed to a reader's callback, with the call that fetched it.
pub type OnPage<'a, P> = &'a mut dyn FnMut(&P, &CallInfo) -> ControlFlow<()>;

pub type Called<T> = Result<Reply<T>, Failure>;

#[allow(async_fn_in_trait)] // Used by this workspace's front ends only, never sent across threads.
pub trait Backend {
    async fn who_am_i(&mut self, options: &CallOptions) -> Called<WhoAmI>;

    async fn retrieve(
        &mut self,
        row: &RowRef,
        select: &[String],
        expand: Option<&str>,
        options: &CallOptions,
    ) -> Called<Row>;

    async fn retrieve_multiple(&mut self, query: &Query, options: &CallOptions) -> Called<Page>;

    /// Every page of `query` (at most `max_rows` rows), each handed to
    /// `on_page` as it arrives; `Break` stops the read (no further request).
    async fn read_all(
        &mut self,
        query: &Query,
        max_rows: u64,
        options: &CallOptions,
        on_page: OnPage<'_, Page>,
    ) -> Result<(), Failure>;

    /// The first page of a FetchXML query.
    async fn fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        options: &CallOptions,
    ) -> Called<FetchPage>;

    /// Every page of a FetchXML query, following its paging cookies.
    async fn read_all_fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        max_rows: u64,
        options: &CallOptions,
        on_page: OnPage<'_, FetchPage>,
    ) -> Result<(), Failure>;

    async fn create(
        &mut self,
        entity_set: &str,
        json: &str,
        options: &CallOptions,
    ) -> Called<Created>;

    /// The row as written, when `return_representation` was asked.
    async fn update(
        &mut self,
        row: &RowRef,
        json: &str,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> Called<Option<String>>;

    async fn upsert(
        &mut self,
        row: &RowRef,
        json: &str,
        create_only: bool,
        options: &CallOptions,
    ) -> Called<Option<String>>;

    async fn delete(
        &mut self,
        row: &RowRef,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> Called<()>;

    async fn associate(
        &mut self,
        row: &RowRef,
        navigation_property: &str,
        target: &RowRef,
        options: &CallOptions,
    ) -> Called<()>;

    async fn disassociate(
        &mut self,
        row: &RowRef,
        navigation_property: &str,
        target: Option<&RowRef>,
        options: &CallOptions,
    ) -> Called<()>;

    async fn execute(
        &mut self,
        operation: &Operation,
        options: &CallOptions,
    ) -> Called<OperationResult>;

    async fn batch(
        &mut self,
        parts: &[BatchPart],
        change_set: bool,
        continue_on_error: bool,
        options: &CallOptions,
    ) -> Called<Vec<BatchItem>>;

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        options: &CallOptions,
    ) -> Called<Response>;

    /// A table's columns and their types.
    async fn attributes(
        &mut self,
        table: &str,
        options: &CallOptions,
    ) -> Result<Vec<Attribute>, Failure>;

    /// Deletes rows of `table` by key, in batches.
    async fn delete_multiple(
        &mut self,
        table: &str,
        keys: &[String],
        batch_rows: usize,
        parallel: Option<u32>,
        options: &CallOptions,
    ) -> Result<(TableInfo, BulkReport), Failure>;

    /// Uploads `size` bytes of `source` to a file column, in chunks; the
    /// bytes sent.
    async fn upload(
        &mut self,
        row: &RowRef,
        column: &str,
        file_name: &str,
        size: u64,
        source: &mut (dyn std::io::Read + Send),
        options: &CallOptions,
    ) -> Result<u64, Failure>;

    /// Downloads a file column's file into `sink`, in chunks: the bytes
    /// written and the file's name, when Dataverse says.
    async fn download(
        &mut self,
        row: &RowRef,
        column: &str,
        sink: &mut (dyn std::io::Write + Send),
        options: &CallOptions,
    ) -> Result<(u64, Option<String>), Failure>;

    /// The first page of `query` read with change tracking.
    async fn track_changes(&mut self, query: &Query, options: &CallOptions) -> Called<ChangePage>;

    /// The page at a change read's next link or delta link.
    async fn changes(
        &mut self,
        link: &str,
        page_size: Option<u32>,
        options: &CallOptions,
    ) -> Called<ChangePage>;

    /// A table's definition by entity set or logical name.
    async fn table(&mut self, name: &str, options: &CallOptions) -> Result<TableInfo, Failure>;

    /// One bulk call: `rows` of `table` (either name), `batch_rows` per
    /// request, `parallel` at a time (`None`: the org's hint). A call that
    /// sent anything answers with its report, even when batches failed.
    async fn bulk(
        &mut self,
        message: Message,
        table: &str,
        rows: &[Value],
        batch_rows: usize,
        parallel: Option<u32>,
        options: &CallOptions,
    ) -> Result<(TableInfo, BulkReport), Failure>;

    async fn token_info(&mut self) -> Result<TokenInfo, Failure>;

    /// The access token itself (`token --show-token`).
    async fn access_token(&mut self) -> Result<String, Failure>;
}
