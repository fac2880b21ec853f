//! The `dataverse:client` component: the WIT adapter over the core
//! (`dataverse-wasm`). It converts between WIT types and core types, nothing
//! else. Wasm only: built natively it is empty.

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use dataverse_wasm::auth::assertion::{Algorithm, AssertionOptions};
use dataverse_wasm::client::{CallInfo, CallOptions, Client, ClientConfig, Failure, Reply};
use dataverse_wasm::error::{AuthFailure, Error, ServiceFailure};
use dataverse_wasm::http::Method;
use dataverse_wasm::page_reader::{FetchReader, PageReader};
use dataverse_wasm::retry::RetryPolicy;
use dataverse_wasm::secret::Secret;
use dataverse_wasm::settings::{self, Credential, Settings};
use dataverse_wasm::transport::{DEFAULT_MAX_RESPONSE_BYTES, WasiTransport};
use dataverse_wasm::webapi::Query;
use dataverse_wasm::webapi::batch::BatchPart;
use dataverse_wasm::webapi::execute::OperationKind;
use dataverse_wasm::webapi::options::RequestOptions;

pub mod bindings {
    wit_bindgen::generate!({
        world: "client",
        path: "../../wit",
        generate_all,
    });
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
        let settings = settings::parse(&connection_string).map_err(error)?;
        Ok(wit_conn::Settings::new(SettingsResource(settings)))
    }

    fn from_fields(fields: wit_conn::SettingsFields) -> Result<wit_conn::Settings, wit::Error> {
        let credential = match fields.credential {
            wit_conn::Credential::ClientSecret(secret) => {
                Credential::ClientSecret(Secret::new(secret))
            }
            wit_conn::Credential::Certificate(c) => Credential::Certificate {
                thumbprint: c.thumbprint,
                store_name: c.store_name,
                password: c.password.map(Secret::new),
            },
            wit_conn::Credential::CertificatePem(pem) => {
                Credential::CertificatePem(Secret::new(pem))
            }
        };
        let settings = Settings {
            org_url: fields.url,
            client_id: fields.client_id,
            credential,
            tenant_id: fields.tenant_id,
            authority: fields.authority,
            trusted_authority_hosts: fields.trusted_authority_hosts,
            require_new_instance: false,
            allow_http_loopback: fields.allow_http_loopback,
        }
        .validate()
        .map_err(error)?;
        Ok(wit_conn::Settings::new(SettingsResource(settings)))
    }
}

/// Validated settings held inside the component.
pub struct SettingsResource(Settings);

impl wit_conn::GuestSettings for SettingsResource {
    fn summary(&self) -> wit_conn::SettingsSummary {
        let s = &self.0;
        let (auth_type, thumbprint) = match &s.credential {
            Credential::ClientSecret(_) => (wit_conn::AuthType::ClientSecret, None),
            Credential::Certificate { thumbprint, .. } => {
                (wit_conn::AuthType::Certificate, Some(thumbprint.clone()))
            }
            Credential::CertificatePem(_) => (wit_conn::AuthType::Certificate, None),
            Credential::ExternalToken => (wit_conn::AuthType::ExternalToken, None),
        };
        wit_conn::SettingsSummary {
            url: s.org_url.clone(),
            client_id: s.client_id.clone(),
            auth_type,
            thumbprint,
            tenant_id: s.tenant_id.clone(),
            authority: s.authority.clone(),
            trusted_authority_hosts: s.trusted_authority_hosts.clone(),
            allow_http_loopback: s.allow_http_loopback,
        }
    }
}

impl wit_auth::Guest for Component {
    fn discovery_request(settings: wit_auth::SettingsBorrow<'_>) -> wit_auth::HttpRequest {
        let settings = &settings.get::<SettingsResource>().0;
        http_request(dataverse_wasm::auth::authority::discovery_request(
            &settings.org_url,
        ))
    }

    fn configured_authority(
        settings: wit_auth::SettingsBorrow<'_>,
    ) -> Option<Result<wit_auth::AuthorityInfo, wit::Error>> {
        let settings = &settings.get::<SettingsResource>().0;
        let scope = dataverse_wasm::auth::authority::default_scope(settings);
        dataverse_wasm::auth::authority::from_settings(settings)
            .map(|found| found.map(|a| authority_info(&a, scope)).map_err(error))
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
        let (authority, scope) =
            dataverse_wasm::auth::authority::from_discovery(&response, settings).map_err(error)?;
        Ok(authority_info(&authority, scope))
    }

    fn token_request(
        settings: wit_auth::SettingsBorrow<'_>,
        authority: wit_auth::AuthorityInfo,
        options: api::ClientOptions,
    ) -> Result<wit_auth::HttpRequest, wit::Error> {
        let settings = &settings.get::<SettingsResource>().0;
        let checked = dataverse_wasm::auth::authority::checked(&authority.authority, settings)
            .map_err(error)?;
        let (mut transport, config) = transport_and_config(&options);
        dataverse_wasm::client::token_request(
            settings,
            &checked,
            &authority.scope,
            &mut transport,
            config.assertion,
        )
        .map(http_request)
        .map_err(error)
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
        let token = dataverse_wasm::auth::token::parse_response(&response, now).map_err(error)?;
        Ok(wit_auth::Token {
            access_token: token.value.expose().to_string(),
            expires_at: token.expires_at,
            refresh_at: token.refresh_at,
        })
    }
}

fn http_request(r: dataverse_wasm::http::Request) -> wit_auth::HttpRequest {
    wit_auth::HttpRequest {
        method: r.method.as_str().to_string(),
        url: r.url.clone(),
        headers: r.headers.clone(),
        body: r.body.clone(),
    }
}

fn authority_info(a: &dataverse_wasm::auth::Authority, scope: String) -> wit_auth::AuthorityInfo {
    wit_auth::AuthorityInfo {
        authority: a.url(),
        tenant_id: a.tenant.clone(),
        scope,
    }
}

impl api::Guest for Component {
    type Client = ClientResource;
    type PageReader = PageReaderResource;
    type FetchPageReader = FetchPageReaderResource;
}

type Shared = Rc<RefCell<Client<WasiTransport>>>;

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
        match self.reader.borrow_mut().next(&mut client) {
            None => Ok(None),
            Some(result) => result.map(page).map(Some).map_err(failure),
        }
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
        match self.reader.borrow_mut().next(&mut client) {
            None => Ok(None),
            Some(result) => result.map(fetch_page).map(Some).map_err(failure),
        }
    }

    fn rows_read(&self) -> u64 {
        self.reader.borrow().rows_read()
    }
}

impl api::GuestClient for ClientResource {
    fn connect(
        settings: api::SettingsBorrow<'_>,
        options: api::ClientOptions,
    ) -> Result<api::Client, wit::Error> {
        let settings = settings.get::<SettingsResource>().0.clone();
        let (transport, config) = transport_and_config(&options);
        let client = Client::connect(settings, transport, config).map_err(failure)?;
        Ok(api::Client::new(ClientResource(Rc::new(RefCell::new(
            client,
        )))))
    }

    fn connect_with_token(
        url: String,
        access_token: String,
        expires_at: u64,
        options: api::ClientOptions,
    ) -> Result<api::Client, wit::Error> {
        let (transport, config) = transport_and_config(&options);
        let client = Client::with_token(
            &url,
            Secret::new(access_token),
            expires_at,
            transport,
            config,
        )
        .map_err(error)?;
        Ok(api::Client::new(ClientResource(Rc::new(RefCell::new(
            client,
        )))))
    }

    fn set_access_token(&self, access_token: String, expires_at: u64) {
        self.client()
            .set_access_token(Secret::new(access_token), expires_at);
    }

    fn who_am_i(
        &self,
        options: Option<api::RequestOptions>,
    ) -> Result<api::WhoAmIResponse, wit::Error> {
        let reply = self
            .client()
            .who_am_i(&call_options(options))
            .map_err(failure)?;
        Ok(api::WhoAmIResponse {
            user_id: reply.value.user_id,
            business_unit_id: reply.value.business_unit_id,
            organization_id: reply.value.organization_id,
            call: call(reply.call),
        })
    }

    fn retrieve(
        &self,
        entity_set: String,
        key: String,
        select: Vec<String>,
        expand: Option<String>,
        options: Option<api::RequestOptions>,
    ) -> Result<api::Row, wit::Error> {
        let reply = self
            .client()
            .retrieve(
                &entity_set,
                &key,
                &select,
                expand.as_deref(),
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(api::Row {
            json: reply.value.json,
            etag: reply.value.etag,
            call: call(reply.call),
        })
    }

    fn retrieve_multiple(
        &self,
        query: api::Query,
        options: Option<api::RequestOptions>,
    ) -> Result<api::Page, wit::Error> {
        self.client()
            .retrieve_multiple(&core_query(query), &call_options(options))
            .map(page)
            .map_err(failure)
    }

    fn next_page(
        &self,
        next_link: String,
        page_size: Option<u32>,
        options: Option<api::RequestOptions>,
    ) -> Result<api::Page, wit::Error> {
        self.client()
            .next_page(&next_link, page_size, &call_options(options))
            .map(page)
            .map_err(failure)
    }

    fn read_all(
        &self,
        query: api::Query,
        max_rows: u64,
        options: Option<api::RequestOptions>,
    ) -> api::PageReader {
        let reader = PageReader::new(core_query(query), max_rows, call_options(options));
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
        options: Option<api::RequestOptions>,
    ) -> Result<api::FetchPage, wit::Error> {
        let reply = self
            .client()
            .fetch_xml(
                &entity_set,
                &fetch_xml,
                page,
                paging_cookie.as_deref(),
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(fetch_page(reply))
    }

    fn read_all_fetch_xml(
        &self,
        entity_set: String,
        fetch_xml: String,
        max_rows: u64,
        options: Option<api::RequestOptions>,
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
        options: Option<api::RequestOptions>,
    ) -> Result<api::Created, wit::Error> {
        let reply = self
            .client()
            .create(&entity_set, &json, &call_options(options))
            .map_err(failure)?;
        Ok(api::Created {
            id: reply.value.id,
            json: reply.value.json,
            call: call(reply.call),
        })
    }

    fn update(
        &self,
        entity_set: String,
        key: String,
        json: String,
        if_match: Option<String>,
        options: Option<api::RequestOptions>,
    ) -> Result<api::Written, wit::Error> {
        let reply = self
            .client()
            .update(
                &entity_set,
                &key,
                &json,
                if_match.as_deref(),
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(written(reply))
    }

    fn upsert(
        &self,
        entity_set: String,
        key: String,
        json: String,
        prevent_update: bool,
        options: Option<api::RequestOptions>,
    ) -> Result<api::Written, wit::Error> {
        let reply = self
            .client()
            .upsert(
                &entity_set,
                &key,
                &json,
                prevent_update,
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(written(reply))
    }

    fn delete(
        &self,
        entity_set: String,
        key: String,
        if_match: Option<String>,
        options: Option<api::RequestOptions>,
    ) -> Result<wit::CallInfo, wit::Error> {
        let reply = self
            .client()
            .delete(
                &entity_set,
                &key,
                if_match.as_deref(),
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(call(reply.call))
    }

    fn associate(
        &self,
        entity_set: String,
        key: String,
        navigation_property: String,
        target_entity_set: String,
        target_key: String,
        options: Option<api::RequestOptions>,
    ) -> Result<wit::CallInfo, wit::Error> {
        let reply = self
            .client()
            .associate(
                &entity_set,
                &key,
                &navigation_property,
                &target_entity_set,
                &target_key,
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(call(reply.call))
    }

    fn disassociate(
        &self,
        entity_set: String,
        key: String,
        navigation_property: String,
        target: Option<api::EntityRef>,
        options: Option<api::RequestOptions>,
    ) -> Result<wit::CallInfo, wit::Error> {
        let target = target
            .as_ref()
            .map(|t| (t.entity_set.as_str(), t.key.as_str()));
        let reply = self
            .client()
            .disassociate(
                &entity_set,
                &key,
                &navigation_property,
                target,
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(call(reply.call))
    }

    fn execute(
        &self,
        operation: api::Operation,
        options: Option<api::RequestOptions>,
    ) -> Result<api::OperationResult, wit::Error> {
        let kind = match operation.kind {
            api::OperationKind::Function => OperationKind::Function,
            api::OperationKind::Action => OperationKind::Action,
        };
        let bound = operation
            .bound
            .as_ref()
            .map(|b| (b.entity_set.as_str(), b.key.as_str()));
        let reply = self
            .client()
            .execute(
                &operation.name,
                kind,
                bound,
                operation.parameters.as_deref(),
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(api::OperationResult {
            status: reply.value.status,
            json: reply.value.json,
            call: call(reply.call),
        })
    }

    fn batch(
        &self,
        requests: Vec<api::BatchRequest>,
        batch_options: api::BatchOptions,
        options: Option<api::RequestOptions>,
    ) -> Result<api::BatchResult, wit::Error> {
        let parts = requests
            .into_iter()
            .map(|r| {
                Ok(BatchPart {
                    method: method(&r.method)?,
                    url: r.url,
                    headers: r.headers,
                    body: r.body,
                })
            })
            .collect::<Result<Vec<_>, Error>>()
            .map_err(error)?;
        let reply = self
            .client()
            .batch(
                &parts,
                batch_options.change_set,
                batch_options.continue_on_error,
                &call_options(options),
            )
            .map_err(failure)?;
        let responses = reply
            .value
            .into_iter()
            .map(|item| api::BatchResponseItem {
                content_id: item.content_id,
                status: item.status,
                headers: item.headers,
                body: item.body,
            })
            .collect();
        Ok(api::BatchResult {
            responses,
            call: call(reply.call),
        })
    }

    fn send(
        &self,
        request: api::WebRequest,
        options: Option<api::RequestOptions>,
    ) -> Result<api::WebResponse, wit::Error> {
        let method = method(&request.method).map_err(error)?;
        let reply = self
            .client()
            .send(
                method,
                &request.path,
                &request.headers,
                request.body.unwrap_or_default(),
                &call_options(options),
            )
            .map_err(failure)?;
        Ok(api::WebResponse {
            status: reply.value.status,
            headers: reply.value.headers,
            body: reply.value.body,
            call: call(reply.call),
        })
    }

    fn token_info(&self) -> Result<api::TokenInfo, wit::Error> {
        let t = self.client().token_info().map_err(failure)?;
        Ok(api::TokenInfo {
            expires_at: t.expires_at,
            authority: t.authority,
            tenant_id: t.tenant_id,
            client_id: t.client_id,
            scope: t.scope,
            from_cache: t.from_cache,
            call: t.acquired_by.map(call),
        })
    }

    fn access_token(&self) -> Result<String, wit::Error> {
        let token = self.client().access_token().map_err(failure)?;
        Ok(token.expose().to_string())
    }
}

impl ClientResource {
    fn client(&self) -> std::cell::RefMut<'_, Client<WasiTransport>> {
        self.0.borrow_mut()
    }
}

/// The transport and client behaviour the client options ask for.
fn transport_and_config(options: &api::ClientOptions) -> (WasiTransport, ClientConfig) {
    let transport = WasiTransport {
        max_response_bytes: options
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        timeout_ms: options.timeout_ms,
    };
    let defaults = RetryPolicy::default();
    let config = ClientConfig {
        retry: RetryPolicy {
            max_retries: options.max_retries.unwrap_or(defaults.max_retries),
            max_total_wait_ms: options
                .max_total_wait_ms
                .unwrap_or(defaults.max_total_wait_ms),
        },
        assertion: AssertionOptions {
            algorithm: match options.assertion_algorithm {
                Some(api::AssertionAlgorithm::Ps256) => Algorithm::Ps256,
                Some(api::AssertionAlgorithm::Rs256) | None => Algorithm::Rs256,
            },
            send_chain: options.send_certificate_chain.unwrap_or(false),
        },
    };
    (transport, config)
}

fn core_query(q: api::Query) -> Query {
    Query {
        entity_set: q.entity_set,
        select: q.select,
        filter: q.filter,
        orderby: q.orderby,
        expand: q.expand,
        apply: q.apply,
        top: q.top,
        page_size: q.page_size,
        count: q.count,
    }
}

fn call_options(options: Option<api::RequestOptions>) -> CallOptions {
    let Some(o) = options else {
        return CallOptions::default();
    };
    CallOptions {
        headers: RequestOptions {
            caller_object_id: o.caller_object_id,
            bypass_custom_plugins: o.bypass_custom_plugins,
            suppress_duplicate_detection: o.suppress_duplicate_detection,
            solution_unique_name: o.solution_unique_name,
            strong_consistency: o.strong_consistency,
            include_annotations: o.include_annotations,
            return_representation: o.return_representation,
        },
        client_request_id: o.client_request_id,
    }
}

fn method(name: &str) -> Result<Method, Error> {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::Get),
        "POST" => Ok(Method::Post),
        "PATCH" => Ok(Method::Patch),
        "PUT" => Ok(Method::Put),
        "DELETE" => Ok(Method::Delete),
        _ => Err(Error::InvalidRequest(format!(
            "method '{name}' is not one of GET, POST, PATCH, PUT, DELETE"
        ))),
    }
}

fn page(reply: Reply<dataverse_wasm::webapi::Page>) -> api::Page {
    let p = reply.value;
    api::Page {
        rows: p.rows,
        row_count: p.row_count,
        next_link: p.next_link,
        total_count: p.total_count,
        call: call(reply.call),
    }
}

fn written(reply: Reply<Option<String>>) -> api::Written {
    api::Written {
        json: reply.value,
        call: call(reply.call),
    }
}

fn call(c: CallInfo) -> wit::CallInfo {
    wit::CallInfo {
        client_request_id: c.client_request_id,
        attempts: c.attempts,
    }
}

fn fetch_page(reply: Reply<dataverse_wasm::webapi::fetchxml::FetchPage>) -> api::FetchPage {
    let p = reply.value;
    api::FetchPage {
        rows: p.rows,
        row_count: p.row_count,
        more_records: p.more_records,
        paging_cookie: p.paging_cookie,
        total_count: p.total_record_count,
        call: call(reply.call),
    }
}

fn failure(f: Failure) -> wit::Error {
    wit::Error {
        kind: kind(f.error),
        call: f.call.map(call),
    }
}

fn error(e: Error) -> wit::Error {
    wit::Error {
        kind: kind(e),
        call: None,
    }
}

fn kind(error: Error) -> wit::ErrorKind {
    use wit::ErrorKind as K;
    match error {
        Error::InvalidSettings(m) => K::InvalidSettings(m),
        Error::InvalidRequest(m) => K::InvalidRequest(m),
        Error::Authentication(a) => K::Authentication(auth_failure(*a)),
        Error::Authority(m) => K::Authority(m),
        Error::AccessDenied(s) => K::AccessDenied(service_failure(s)),
        Error::NotFound(s) => K::NotFound(service_failure(s)),
        Error::PreconditionFailed(s) => K::PreconditionFailed(service_failure(s)),
        Error::Throttled {
            retry_after_seconds,
            failure,
        } => K::Throttled(wit::Throttling {
            retry_after_seconds,
            failure: service_failure(failure),
        }),
        Error::Service(s) => K::Service(service_failure(s)),
        Error::Transport(m) | Error::Unsent { message: m, .. } => K::Transport(m),
        Error::InvalidResponse(m) => K::InvalidResponse(m),
    }
}

fn auth_failure(a: AuthFailure) -> wit::AuthFailure {
    wit::AuthFailure {
        status: a.status,
        code: a.code,
        error: a.error,
        description: a.description,
        trace_id: a.trace_id,
        correlation_id: a.correlation_id,
        hint: a.hint,
    }
}

fn service_failure(s: ServiceFailure) -> wit::ServiceFailure {
    wit::ServiceFailure {
        status: s.status,
        code: s.code,
        message: s.message,
        request_id: s.request_id,
        hint: s.hint,
    }
}
