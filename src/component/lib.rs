//! The `dataverse:client` component: the WIT adapter over the core
//! (`dataverse-wasm`). Each export calls the core and converts its arguments
//! and results (`convert`); no rule of Dataverse or Entra ID lives here.
//! Wasm only: built natively it is empty.
//!
//! Two components come from this source: by default the world `client`
//! (`dataverse_client.wasm`, WASI imports only); with the feature
//! `host-signer` the world `client-signing` (`dataverse_client_signing.wasm`,
//! built by the package in `src/component-signing`), whose `signing` module
//! adds the host's signer to the transport.

#![cfg(target_arch = "wasm32")]

mod convert;
#[cfg(feature = "host-signer")]
mod signing;

use std::cell::RefCell;
use std::rc::Rc;

use dataverse_wasm::auth::authority;
use dataverse_wasm::client::Client;
use dataverse_wasm::file_upload::FileUpload;
use dataverse_wasm::page_reader::{FetchReader, PageReader};
use dataverse_wasm::secret::Secret;
use dataverse_wasm::settings::{self, Settings};
use dataverse_wasm::webapi::bulk::Message;

use convert::{authority_info, call_options, row, transport_and_config};

pub mod bindings {
    #[cfg(not(feature = "host-signer"))]
    wit_bindgen::generate!({
        world: "client",
        path: "../../wit",
        generate_all,
    });
    #[cfg(feature = "host-signer")]
    wit_bindgen::generate!({
        world: "client-signing",
        path: "../../wit",
        generate_all,
    });
}

/// Whether settings may name a key the host holds: only the signing
/// component can use one (see `settings::parse_as`).
const HOST_KEYS: bool = cfg!(feature = "host-signer");

/// What the core runs on: `wasi:http`, clocks and randomness; in the signing
/// component also the host's signer. Without it the core refuses a key the
/// host holds (`Transport::host_signs`), before anything is sent.
#[cfg(not(feature = "host-signer"))]
type ComponentTransport = dataverse_wasm::transport::WasiTransport;
#[cfg(feature = "host-signer")]
type ComponentTransport = signing::HostTransport;

#[cfg(not(feature = "host-signer"))]
fn component_transport(wasi: dataverse_wasm::transport::WasiTransport) -> ComponentTransport {
    wasi
}
#[cfg(feature = "host-signer")]
fn component_transport(wasi: dataverse_wasm::transport::WasiTransport) -> ComponentTransport {
    signing::HostTransport(wasi)
}

use bindings::exports::dataverse::client::auth as wit_auth;
use bindings::exports::dataverse::client::connection as wit_conn;
use bindings::exports::dataverse::client::types as wit;
use bindings::exports::dataverse::client::web_api as api;

struct Component;

bindings::export!(Component with_types_in bindings);

impl wit_conn::Guest for Component {
    type Settings = SettingsResource;

    fn parse(connection_string: String) -> Result<wit_conn::Settings, wit::Error> {
        let settings = settings::parse_as::<HOST_KEYS>(&connection_string)?;
        Ok(wit_conn::Settings::new(SettingsResource(settings)))
    }

    fn from_fields(fields: wit_conn::SettingsFields) -> Result<wit_conn::Settings, wit::Error> {
        let settings = convert::settings(fields)?;
        Ok(wit_conn::Settings::new(SettingsResource(settings)))
    }
}

/// Validated settings held inside the component.
pub struct SettingsResource(Settings);

impl wit_conn::GuestSettings for SettingsResource {
    fn summary(&self) -> wit_conn::SettingsSummary {
        (&self.0).into()
    }
}

impl wit_auth::Guest for Component {
    fn discovery_request(settings: wit_auth::SettingsBorrow<'_>) -> wit_auth::HttpRequest {
        let settings = &settings.get::<SettingsResource>().0;
        authority::discovery_request(&settings.org_url).into()
    }

    fn configured_authority(
        settings: wit_auth::SettingsBorrow<'_>,
    ) -> Option<Result<wit_auth::AuthorityInfo, wit::Error>> {
        let settings = &settings.get::<SettingsResource>().0;
        let scope = authority::default_scope(settings);
        authority::from_settings(settings)
            .map(|found| found.map(|a| authority_info(&a, scope)).map_err(Into::into))
    }

    fn parse_challenge(
        settings: wit_auth::SettingsBorrow<'_>,
        status: u16,
        www_authenticate: Option<String>,
    ) -> Result<wit_auth::AuthorityInfo, wit::Error> {
        let settings = &settings.get::<SettingsResource>().0;
        let headers = www_authenticate
            .map(|v| ("WWW-Authenticate".to_string(), v))
            .into_iter()
            .collect();
        let response = dataverse_wasm::http::Response {
            status,
            headers,
            body: Vec::new(),
        };
        let (found, scope) = authority::from_discovery(&response, settings)?;
        Ok(authority_info(&found, scope))
    }

    fn token_request(
        settings: wit_auth::SettingsBorrow<'_>,
        authority: wit_auth::AuthorityInfo,
        options: wit::ClientOptions,
    ) -> Result<wit_auth::HttpRequest, wit::Error> {
        let settings = &settings.get::<SettingsResource>().0;
        let checked = authority::checked(&authority.authority, settings)?;
        let (mut transport, config) = transport_and_config(&options);
        let request = dataverse_wasm::client::token_request(
            settings,
            &checked,
            &authority.scope,
            &mut transport,
            config.assertion,
        )?;
        Ok(request.into())
    }

    fn parse_token_response(
        status: u16,
        body: Vec<u8>,
        now: u64,
    ) -> Result<wit_auth::Token, wit::Error> {
        let response = dataverse_wasm::http::Response {
            status,
            headers: Vec::new(),
            body,
        };
        let token = dataverse_wasm::auth::token::parse_response(&response, now)?;
        Ok(wit_auth::Token {
            access_token: token.value.expose().to_string(),
            expires_at: token.expires_at,
            refresh_at: token.refresh_at,
        })
    }
}

impl api::Guest for Component {
    type Client = ClientResource;
    type PageReader = PageReaderResource;
    type FetchPageReader = FetchPageReaderResource;
    type FileUpload = FileUploadResource;
}

type Shared = Rc<RefCell<Client<ComponentTransport>>>;

/// A `Client` shared with its page readers: WIT methods take `&self`, and a
/// component instance is single-threaded.
pub struct ClientResource(Shared);

/// An all-pages read over its client.
pub struct PageReaderResource {
    client: Shared,
    reader: RefCell<PageReader>,
}

impl api::GuestPageReader for PageReaderResource {
    fn next(&self) -> Result<Option<api::Page>, wit::Error> {
        let mut client = self.client.borrow_mut();
        let page = self.reader.borrow_mut().next(&mut client).transpose()?;
        Ok(page.map(Into::into))
    }

    fn rows_read(&self) -> u64 {
        self.reader.borrow().rows_read()
    }
}

/// An all-pages FetchXML read over its client.
pub struct FetchPageReaderResource {
    client: Shared,
    reader: RefCell<FetchReader>,
}

impl api::GuestFetchPageReader for FetchPageReaderResource {
    fn next(&self) -> Result<Option<api::FetchPage>, wit::Error> {
        let mut client = self.client.borrow_mut();
        let page = self.reader.borrow_mut().next(&mut client).transpose()?;
        Ok(page.map(Into::into))
    }

    fn rows_read(&self) -> u64 {
        self.reader.borrow().rows_read()
    }
}

/// A chunked file upload over its client.
pub struct FileUploadResource {
    client: Shared,
    upload: RefCell<FileUpload>,
}

impl api::GuestFileUpload for FileUploadResource {
    fn chunk_size(&self) -> u32 {
        self.upload.borrow().chunk_bytes() as u32
    }

    fn sent(&self) -> u64 {
        self.upload.borrow().sent()
    }

    fn send(&self, chunk: Vec<u8>) -> Result<wit::CallInfo, wit::Error> {
        let mut client = self.client.borrow_mut();
        let reply = self.upload.borrow_mut().send(&mut client, chunk)?;
        Ok(reply.call.into())
    }
}

type Options = Option<api::RequestOptions>;

impl api::GuestClient for ClientResource {
    fn connect(
        settings: api::SettingsBorrow<'_>,
        options: wit::ClientOptions,
    ) -> Result<api::Client, wit::Error> {
        let settings = settings.get::<SettingsResource>().0.clone();
        let (transport, config) = transport_and_config(&options);
        let client = Client::connect(settings, transport, config)?;
        Ok(api::Client::new(ClientResource(Rc::new(RefCell::new(
            client,
        )))))
    }

    fn connect_with_token(
        url: String,
        access_token: String,
        expires_at: u64,
        options: wit::ClientOptions,
    ) -> Result<api::Client, wit::Error> {
        let (transport, config) = transport_and_config(&options);
        let token = Secret::new(access_token);
        let client = Client::with_token(&url, token, expires_at, transport, config)?;
        Ok(api::Client::new(ClientResource(Rc::new(RefCell::new(
            client,
        )))))
    }

    fn set_access_token(&self, access_token: String, expires_at: u64) {
        self.client()
            .set_access_token(Secret::new(access_token), expires_at);
    }

    fn who_am_i(&self, options: Options) -> Result<api::WhoAmIResponse, wit::Error> {
        Ok(self.client().who_am_i(&call_options(options))?.into())
    }

    fn retrieve(
        &self,
        target: api::EntityRef,
        select: Vec<String>,
        expand: Option<String>,
        options: Options,
    ) -> Result<api::Row, wit::Error> {
        let (set, key) = row(&target);
        let options = call_options(options);
        Ok(self
            .client()
            .retrieve(set, key, &select, expand.as_deref(), &options)?
            .into())
    }

    fn retrieve_multiple(
        &self,
        query: api::Query,
        options: Options,
    ) -> Result<api::Page, wit::Error> {
        let query = query.into();
        Ok(self
            .client()
            .retrieve_multiple(&query, &call_options(options))?
            .into())
    }

    fn next_page(
        &self,
        next_link: String,
        page_size: Option<u32>,
        options: Options,
    ) -> Result<api::Page, wit::Error> {
        let options = call_options(options);
        Ok(self
            .client()
            .next_page(&next_link, page_size, &options)?
            .into())
    }

    fn read_all(&self, query: api::Query, max_rows: u64, options: Options) -> api::PageReader {
        let reader = PageReader::new(query.into(), max_rows, call_options(options));
        api::PageReader::new(PageReaderResource {
            client: self.0.clone(),
            reader: RefCell::new(reader),
        })
    }

    fn fetch_xml(
        &self,
        entity_set: String,
        fetch_xml: String,
        page: u32,
        paging_cookie: Option<String>,
        options: Options,
    ) -> Result<api::FetchPage, wit::Error> {
        let cookie = paging_cookie.as_deref();
        let options = call_options(options);
        Ok(self
            .client()
            .fetch_xml(&entity_set, &fetch_xml, page, cookie, &options)?
            .into())
    }

    fn read_all_fetch_xml(
        &self,
        entity_set: String,
        fetch_xml: String,
        max_rows: u64,
        options: Options,
    ) -> api::FetchPageReader {
        let reader = FetchReader::new(entity_set, fetch_xml, max_rows, call_options(options));
        api::FetchPageReader::new(FetchPageReaderResource {
            client: self.0.clone(),
            reader: RefCell::new(reader),
        })
    }

    fn create(
        &self,
        entity_set: String,
        json: String,
        options: Options,
    ) -> Result<api::Created, wit::Error> {
        let options = call_options(options);
        Ok(self.client().create(&entity_set, &json, &options)?.into())
    }

    fn update(
        &self,
        target: api::EntityRef,
        json: String,
        if_match: Option<String>,
        options: Options,
    ) -> Result<api::Written, wit::Error> {
        let (set, key) = row(&target);
        let options = call_options(options);
        Ok(self
            .client()
            .update(set, key, &json, if_match.as_deref(), &options)?
            .into())
    }

    fn upsert(
        &self,
        target: api::EntityRef,
        json: String,
        prevent_update: bool,
        options: Options,
    ) -> Result<api::Written, wit::Error> {
        let (set, key) = row(&target);
        let options = call_options(options);
        Ok(self
            .client()
            .upsert(set, key, &json, prevent_update, &options)?
            .into())
    }

    fn delete(
        &self,
        target: api::EntityRef,
        if_match: Option<String>,
        options: Options,
    ) -> Result<wit::CallInfo, wit::Error> {
        let (set, key) = row(&target);
        let options = call_options(options);
        Ok(self
            .client()
            .delete(set, key, if_match.as_deref(), &options)?
            .into())
    }

    fn associate(
        &self,
        source: api::EntityRef,
        navigation_property: String,
        target: api::EntityRef,
        options: Options,
    ) -> Result<wit::CallInfo, wit::Error> {
        let ((set, key), (target_set, target_key)) = (row(&source), row(&target));
        let options = call_options(options);
        Ok(self
            .client()
            .associate(
                set,
                key,
                &navigation_property,
                target_set,
                target_key,
                &options,
            )?
            .into())
    }

    fn disassociate(
        &self,
        source: api::EntityRef,
        navigation_property: String,
        target: Option<api::EntityRef>,
        options: Options,
    ) -> Result<wit::CallInfo, wit::Error> {
        let (set, key) = row(&source);
        let target = target.as_ref().map(row);
        let options = call_options(options);
        Ok(self
            .client()
            .disassociate(set, key, &navigation_property, target, &options)?
            .into())
    }

    fn execute(
        &self,
        operation: api::Operation,
        options: Options,
    ) -> Result<api::OperationResult, wit::Error> {
        let bound = operation.bound.as_ref().map(row);
        let parameters = operation.parameters.as_deref();
        let kind = operation.kind.into();
        let options = call_options(options);
        Ok(self
            .client()
            .execute(&operation.name, kind, bound, parameters, &options)?
            .into())
    }

    fn batch(
        &self,
        requests: Vec<api::BatchRequest>,
        batch: api::BatchOptions,
        options: Options,
    ) -> Result<api::BatchResult, wit::Error> {
        let parts: Vec<_> = requests.into_iter().map(Into::into).collect();
        let (change_set, continue_on_error) = (batch.change_set, batch.continue_on_error);
        let options = call_options(options);
        Ok(self
            .client()
            .batch(&parts, change_set, continue_on_error, &options)?
            .into())
    }

    fn start_upload(
        &self,
        target: api::EntityRef,
        column: String,
        file_name: String,
        size: u64,
        options: Options,
    ) -> Result<api::FileUpload, wit::Error> {
        let (set, key) = row(&target);
        let upload = FileUpload::start(
            &mut self.client(),
            set,
            key,
            &column,
            &file_name,
            size,
            call_options(options),
        )?;
        Ok(api::FileUpload::new(FileUploadResource {
            client: self.0.clone(),
            upload: RefCell::new(upload.value),
        }))
    }

    fn download(
        &self,
        target: api::EntityRef,
        column: String,
        offset: u64,
        length: u32,
        options: Options,
    ) -> Result<api::FileChunk, wit::Error> {
        let (set, key) = row(&target);
        let options = call_options(options);
        Ok(self
            .client()
            .download_chunk(set, key, &column, offset, u64::from(length), &options)?
            .into())
    }

    fn track_changes(
        &self,
        query: api::Query,
        options: Options,
    ) -> Result<api::ChangePage, wit::Error> {
        let options = call_options(options);
        Ok(self.client().track_changes(&query.into(), &options)?.into())
    }

    fn changes(
        &self,
        link: String,
        page_size: Option<u32>,
        options: Options,
    ) -> Result<api::ChangePage, wit::Error> {
        let options = call_options(options);
        Ok(self.client().changes(&link, page_size, &options)?.into())
    }

    fn table(&self, name: String, options: Options) -> Result<api::TableInfo, wit::Error> {
        let options = call_options(options);
        Ok(self.client().table(&name, &options)?.value.into())
    }

    fn attributes(
        &self,
        table: String,
        options: Options,
    ) -> Result<Vec<api::Attribute>, wit::Error> {
        let options = call_options(options);
        let mut client = self.client();
        let table = client.table(&table, &options)?.value;
        let columns = client.attributes(&table.logical_name, &options)?.value;
        Ok(columns
            .into_iter()
            .map(|a| api::Attribute {
                logical_name: a.logical_name,
                attribute_type: a.attribute_type,
            })
            .collect())
    }

    fn create_multiple(
        &self,
        table: String,
        rows: Vec<String>,
        bulk: api::BulkOptions,
        options: Options,
    ) -> Result<api::BulkResult, wit::Error> {
        self.bulk(Message::Create, &table, &rows, bulk, options)
    }

    fn update_multiple(
        &self,
        table: String,
        rows: Vec<String>,
        bulk: api::BulkOptions,
        options: Options,
    ) -> Result<api::BulkResult, wit::Error> {
        self.bulk(Message::Update, &table, &rows, bulk, options)
    }

    fn upsert_multiple(
        &self,
        table: String,
        rows: Vec<String>,
        bulk: api::BulkOptions,
        options: Options,
    ) -> Result<api::BulkResult, wit::Error> {
        self.bulk(Message::Upsert, &table, &rows, bulk, options)
    }

    fn delete_multiple(
        &self,
        table: String,
        keys: Vec<String>,
        bulk: api::BulkOptions,
        options: Options,
    ) -> Result<api::BulkResult, wit::Error> {
        let options = call_options(options);
        let mut client = self.client();
        let table = client.table(&table, &options)?.value;
        let report = client.delete_multiple(
            &table,
            &keys,
            bulk.batch_size as usize,
            bulk.parallel,
            &options,
        )?;
        Ok(convert::bulk_result(table, report))
    }

    fn send(
        &self,
        request: api::WebRequest,
        options: Options,
    ) -> Result<api::WebResponse, wit::Error> {
        let body = request.body.unwrap_or_default();
        let options = call_options(options);
        Ok(self
            .client()
            .send(
                request.method.into(),
                &request.path,
                &request.headers,
                body,
                &options,
            )?
            .into())
    }

    fn token_info(&self) -> Result<api::TokenInfo, wit::Error> {
        Ok(self.client().token_info()?.into())
    }

    fn access_token(&self) -> Result<String, wit::Error> {
        let token = self.client().access_token()?;
        Ok(token.expose().to_string())
    }
}

impl ClientResource {
    /// The three bulk messages: the table looked up (once per client), the
    /// rows parsed (all before anything is sent), then the core's waves.
    fn bulk(
        &self,
        message: Message,
        table: &str,
        rows: &[String],
        bulk: api::BulkOptions,
        options: Options,
    ) -> Result<api::BulkResult, wit::Error> {
        let options = call_options(options);
        let rows = dataverse_wasm::webapi::bulk::parse_rows(rows)?;
        let mut client = self.client();
        let table = client.table(table, &options)?.value;
        let report = client.bulk(
            message,
            &table,
            &rows,
            bulk.batch_size as usize,
            bulk.parallel,
            &options,
        )?;
        Ok(convert::bulk_result(table, report))
    }

    fn client(&self) -> std::cell::RefMut<'_, Client<ComponentTransport>> {
        self.0.borrow_mut()
    }
}
