//! WIT ⇄ core conversions, all of them: the exports in lib.rs only call the
//! core and convert with `From`/`Into`. Conversions that can fail (or need
//! more than one value) are the few functions at the end.

use dataverse_wasm::auth::assertion::{Algorithm, AssertionOptions};
use dataverse_wasm::client::{
    BatchOutcome, BulkReport, CallInfo, CallOptions, ClientConfig, Failure, Reply, TokenInfo,
};
use dataverse_wasm::error::{AuthFailure, Error, ServiceFailure};
use dataverse_wasm::http::Method;
use dataverse_wasm::retry::RetryPolicy;
use dataverse_wasm::secret::Secret;
use dataverse_wasm::settings::{Credential, Settings};
use dataverse_wasm::transport::{DEFAULT_MAX_RESPONSE_BYTES, WasiTransport};
use dataverse_wasm::webapi::batch::{BatchItem, BatchPart};
use dataverse_wasm::webapi::changes::ChangePage;
use dataverse_wasm::webapi::crud::{Created, Row};
use dataverse_wasm::webapi::execute::{OperationKind, OperationResult};
use dataverse_wasm::webapi::fetchxml::FetchPage;
use dataverse_wasm::webapi::file::FileChunk;
use dataverse_wasm::webapi::metadata::TableInfo;
use dataverse_wasm::webapi::options::RequestOptions;
use dataverse_wasm::webapi::who_am_i::WhoAmI;
use dataverse_wasm::webapi::{Page, Query};

use crate::bindings::exports::dataverse::client::auth as wit_auth;
use crate::bindings::exports::dataverse::client::connection as wit_conn;
use crate::bindings::exports::dataverse::client::types as wit;
use crate::bindings::exports::dataverse::client::web_api as api;
use crate::{ComponentTransport, component_transport};

// Errors.

impl From<Error> for wit::ErrorKind {
    fn from(error: Error) -> Self {
        use wit::ErrorKind as K;
        match error {
            Error::InvalidSettings(m) => K::InvalidSettings(m),
            Error::InvalidRequest(m) => K::InvalidRequest(m),
            Error::Authentication(a) => K::Authentication((*a).into()),
            Error::Authority(m) => K::Authority(m),
            Error::AccessDenied(s) => K::AccessDenied(s.into()),
            Error::NotFound(s) => K::NotFound(s.into()),
            Error::PreconditionFailed(s) => K::PreconditionFailed(s.into()),
            Error::Throttled {
                retry_after_seconds,
                failure,
            } => K::Throttled(wit::Throttling {
                retry_after_seconds,
                failure: failure.into(),
            }),
            Error::Service(s) => K::Service(s.into()),
            // WIT has one case for both: the message says whether anything was sent.
            Error::Transport(m) | Error::Unsent { message: m, .. } => K::Transport(m),
            Error::InvalidResponse(m) => K::InvalidResponse(m),
        }
    }
}

/// An error before anything was sent (bad settings or arguments).
impl From<Error> for wit::Error {
    fn from(error: Error) -> Self {
        wit::Error {
            kind: error.into(),
            call: None,
        }
    }
}

/// A failed call, with what happened on the wire.
impl From<Failure> for wit::Error {
    fn from(failure: Failure) -> Self {
        wit::Error {
            kind: failure.error.into(),
            call: failure.call.map(Into::into),
        }
    }
}

impl From<AuthFailure> for wit::AuthFailure {
    fn from(a: AuthFailure) -> Self {
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
}

impl From<ServiceFailure> for wit::ServiceFailure {
    fn from(s: ServiceFailure) -> Self {
        wit::ServiceFailure {
            status: s.status,
            code: s.code,
            message: s.message,
            request_id: s.request_id,
            hint: s.hint,
        }
    }
}

impl From<CallInfo> for wit::CallInfo {
    fn from(c: CallInfo) -> Self {
        wit::CallInfo {
            client_request_id: c.client_request_id,
            attempts: c.attempts,
        }
    }
}

// Arguments, WIT → core.

impl From<wit::Method> for Method {
    fn from(method: wit::Method) -> Self {
        match method {
            wit::Method::Get => Method::Get,
            wit::Method::Post => Method::Post,
            wit::Method::Patch => Method::Patch,
            wit::Method::Put => Method::Put,
            wit::Method::Delete => Method::Delete,
        }
    }
}

impl From<Method> for wit::Method {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => wit::Method::Get,
            Method::Post => wit::Method::Post,
            Method::Patch => wit::Method::Patch,
            Method::Put => wit::Method::Put,
            Method::Delete => wit::Method::Delete,
        }
    }
}

impl From<api::Query> for Query {
    fn from(q: api::Query) -> Self {
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
}

impl From<api::RequestOptions> for CallOptions {
    fn from(o: api::RequestOptions) -> Self {
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
}

impl From<api::OperationKind> for OperationKind {
    fn from(kind: api::OperationKind) -> Self {
        match kind {
            api::OperationKind::Function => OperationKind::Function,
            api::OperationKind::Action => OperationKind::Action,
        }
    }
}

impl From<api::BatchRequest> for BatchPart {
    fn from(r: api::BatchRequest) -> Self {
        BatchPart {
            method: r.method.into(),
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<wit_conn::Credential> for Credential {
    fn from(credential: wit_conn::Credential) -> Self {
        match credential {
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
            wit_conn::Credential::HostKey(key_id) => Credential::HostKey(key_id),
        }
    }
}

// Results, core → WIT.

impl From<Reply<WhoAmI>> for api::WhoAmIResponse {
    fn from(reply: Reply<WhoAmI>) -> Self {
        api::WhoAmIResponse {
            user_id: reply.value.user_id,
            business_unit_id: reply.value.business_unit_id,
            organization_id: reply.value.organization_id,
            call: reply.call.into(),
        }
    }
}

impl From<Reply<Row>> for api::Row {
    fn from(reply: Reply<Row>) -> Self {
        api::Row {
            json: reply.value.json,
            etag: reply.value.etag,
            call: reply.call.into(),
        }
    }
}

impl From<Reply<Page>> for api::Page {
    fn from(reply: Reply<Page>) -> Self {
        let p = reply.value;
        api::Page {
            rows: p.rows,
            row_count: p.row_count,
            next_link: p.next_link,
            total_count: p.total_count,
            call: reply.call.into(),
        }
    }
}

impl From<Reply<FetchPage>> for api::FetchPage {
    fn from(reply: Reply<FetchPage>) -> Self {
        let p = reply.value;
        api::FetchPage {
            rows: p.rows,
            row_count: p.row_count,
            more_records: p.more_records,
            paging_cookie: p.paging_cookie,
            total_count: p.total_record_count,
            call: reply.call.into(),
        }
    }
}

impl From<Reply<Created>> for api::Created {
    fn from(reply: Reply<Created>) -> Self {
        api::Created {
            id: reply.value.id,
            json: reply.value.json,
            call: reply.call.into(),
        }
    }
}

/// Update and upsert: the representation, when asked for.
impl From<Reply<Option<String>>> for api::Written {
    fn from(reply: Reply<Option<String>>) -> Self {
        api::Written {
            json: reply.value,
            call: reply.call.into(),
        }
    }
}

/// Delete, associate, disassociate: only the call.
impl From<Reply<()>> for wit::CallInfo {
    fn from(reply: Reply<()>) -> Self {
        reply.call.into()
    }
}

impl From<Reply<OperationResult>> for api::OperationResult {
    fn from(reply: Reply<OperationResult>) -> Self {
        api::OperationResult {
            status: reply.value.status,
            json: reply.value.json,
            call: reply.call.into(),
        }
    }
}

impl From<BatchItem> for api::BatchResponseItem {
    fn from(item: BatchItem) -> Self {
        api::BatchResponseItem {
            content_id: item.content_id,
            status: item.status,
            headers: item.headers,
            body: item.body,
        }
    }
}

impl From<Reply<Vec<BatchItem>>> for api::BatchResult {
    fn from(reply: Reply<Vec<BatchItem>>) -> Self {
        api::BatchResult {
            responses: reply.value.into_iter().map(Into::into).collect(),
            call: reply.call.into(),
        }
    }
}

impl From<Reply<dataverse_wasm::http::Response>> for api::WebResponse {
    fn from(reply: Reply<dataverse_wasm::http::Response>) -> Self {
        api::WebResponse {
            status: reply.value.status,
            headers: reply.value.headers,
            body: reply.value.body,
            call: reply.call.into(),
        }
    }
}

impl From<TokenInfo> for api::TokenInfo {
    fn from(t: TokenInfo) -> Self {
        api::TokenInfo {
            expires_at: t.expires_at,
            authority: t.authority,
            tenant_id: t.tenant_id,
            client_id: t.client_id,
            scope: t.scope,
            from_cache: t.from_cache,
            call: t.acquired_by.map(Into::into),
        }
    }
}

impl From<dataverse_wasm::http::Request> for wit_auth::HttpRequest {
    fn from(r: dataverse_wasm::http::Request) -> Self {
        wit_auth::HttpRequest {
            method: r.method.into(),
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<&Settings> for wit_conn::SettingsSummary {
    fn from(s: &Settings) -> Self {
        let (auth_type, thumbprint) = match &s.credential {
            Credential::ClientSecret(_) => (wit_conn::AuthType::ClientSecret, None),
            Credential::Certificate { thumbprint, .. } => {
                (wit_conn::AuthType::Certificate, Some(thumbprint.clone()))
            }
            Credential::CertificatePem(_) | Credential::HostKey(_) => {
                (wit_conn::AuthType::Certificate, None)
            }
            Credential::ExternalToken => (wit_conn::AuthType::ExternalToken, None),
            Credential::ManagedIdentity(_) => (wit_conn::AuthType::ManagedIdentity, None),
            Credential::WorkloadIdentity(_) => (wit_conn::AuthType::WorkloadIdentity, None),
        };
        wit_conn::SettingsSummary {
            url: s.org_url.clone(),
            client_id: s.client_id.clone(),
            auth_type,
            thumbprint,
            key_id: match &s.credential {
                Credential::HostKey(key_id) => Some(key_id.clone()),
                _ => None,
            },
            tenant_id: s.tenant_id.clone(),
            authority: s.authority.clone(),
            trusted_authority_hosts: s.trusted_authority_hosts.clone(),
            allow_http_loopback: s.allow_http_loopback,
        }
    }
}

// The few that are functions.

/// Options are optional: none is the core's defaults.
// Not inlined: it would be copied into each of the twenty exports that take options.
#[inline(never)]
pub fn call_options(options: Option<api::RequestOptions>) -> CallOptions {
    options.map(Into::into).unwrap_or_default()
}

impl From<Reply<FileChunk>> for api::FileChunk {
    fn from(reply: Reply<FileChunk>) -> Self {
        api::FileChunk {
            data: reply.value.data,
            file_size: reply.value.file_size,
            file_name: reply.value.file_name,
            call: reply.call.into(),
        }
    }
}

impl From<Reply<ChangePage>> for api::ChangePage {
    fn from(reply: Reply<ChangePage>) -> Self {
        let page = reply.value;
        api::ChangePage {
            changes: page.changes,
            changed: page.changed,
            deleted: page.deleted,
            next_link: page.next_link,
            delta_link: page.delta_link,
            call: reply.call.into(),
        }
    }
}

impl From<TableInfo> for api::TableInfo {
    fn from(t: TableInfo) -> Self {
        api::TableInfo {
            logical_name: t.logical_name,
            entity_set: t.entity_set,
            primary_id: t.primary_id,
            primary_name: t.primary_name,
            table_type: t.table_type,
        }
    }
}

impl From<BatchOutcome> for api::BatchOutcome {
    fn from(outcome: BatchOutcome) -> Self {
        match outcome {
            BatchOutcome::Done { ids, call } => api::BatchOutcome::Written(api::WrittenBatch {
                ids,
                call: call.into(),
            }),
            BatchOutcome::Failed(failure) => api::BatchOutcome::Failed(failure.into()),
            BatchOutcome::NotSent => api::BatchOutcome::NotSent,
        }
    }
}

/// A bulk call's report, with the table it wrote to. Row indexes fit in a
/// `u32`: the rows came in one WIT list.
pub fn bulk_result(table: TableInfo, report: BulkReport) -> api::BulkResult {
    api::BulkResult {
        table: table.into(),
        batches: report
            .batches
            .into_iter()
            .map(|b| api::BulkBatch {
                first_row: b.rows.start as u32,
                row_count: b.rows.len() as u32,
                outcome: b.outcome.into(),
            })
            .collect(),
    }
}

/// One row as the core addresses it.
pub fn row(r: &api::EntityRef) -> (&str, &str) {
    (r.entity_set.as_str(), r.key.as_str())
}

/// The settings the fields describe, validated.
pub fn settings(fields: wit_conn::SettingsFields) -> Result<Settings, Error> {
    Settings {
        org_url: fields.url,
        client_id: fields.client_id,
        credential: fields.credential.into(),
        tenant_id: fields.tenant_id,
        authority: fields.authority,
        trusted_authority_hosts: fields.trusted_authority_hosts,
        require_new_instance: false,
        allow_http_loopback: fields.allow_http_loopback,
    }
    .validate_as::<{ crate::HOST_KEYS }>()
}

/// The authority as WIT shows it.
pub fn authority_info(
    a: &dataverse_wasm::auth::Authority,
    scope: String,
) -> wit_auth::AuthorityInfo {
    wit_auth::AuthorityInfo {
        authority: a.url(),
        tenant_id: a.tenant.clone(),
        scope,
    }
}

/// The transport and client behaviour the client options ask for.
pub fn transport_and_config(options: &wit::ClientOptions) -> (ComponentTransport, ClientConfig) {
    let transport = component_transport(WasiTransport {
        max_response_bytes: options
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
        timeout_ms: options.timeout_ms,
    });
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
                Some(wit::AssertionAlgorithm::Ps256) => Algorithm::Ps256,
                Some(wit::AssertionAlgorithm::Rs256) | None => Algorithm::Rs256,
            },
            send_chain: options.send_certificate_chain.unwrap_or(false),
        },
    };
    (transport, config)
}
