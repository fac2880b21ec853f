//! The component's WIT types as the core's (`dataverse-wasm`), both ways,
//! for hosts that also link the core natively: the command layer
//! (`dataverse-cli`) is written against the core's types so that the same
//! code runs inside the command component, and the native CLI hands its
//! calls to the client component through these conversions. The component
//! does the mirror image (src/component/convert.rs).

use dataverse_wasm::client as core;
use dataverse_wasm::error::{self as core_error, Error};
use dataverse_wasm::http::Method as CoreMethod;
use dataverse_wasm::webapi::batch::{BatchItem, BatchPart};
use dataverse_wasm::webapi::options::RequestOptions as CoreRequestOptions;

use crate::session::{
    AuthFailure, BatchOutcome, BatchRequest, BatchResponseItem, BulkMessage, BulkResult, CallInfo,
    ChangePage, DataverseError, ErrorKind, Method, RequestOptions, ServiceFailure, TableInfo,
    Throttling, TokenInfo,
};
use dataverse_wasm::webapi::bulk::Message;
use dataverse_wasm::webapi::changes::ChangePage as CoreChangePage;
use dataverse_wasm::webapi::metadata::TableInfo as CoreTableInfo;

// From the component: results and errors.

impl From<ChangePage> for CoreChangePage {
    fn from(p: ChangePage) -> Self {
        CoreChangePage {
            changes: p.changes,
            changed: p.changed,
            deleted: p.deleted,
            next_link: p.next_link,
            delta_link: p.delta_link,
        }
    }
}

impl From<TableInfo> for CoreTableInfo {
    fn from(t: TableInfo) -> Self {
        CoreTableInfo {
            logical_name: t.logical_name,
            entity_set: t.entity_set,
            primary_id: t.primary_id,
            primary_name: t.primary_name,
            table_type: t.table_type,
        }
    }
}

/// A bulk call's result: the table it wrote to and the core's report.
impl From<BulkResult> for (CoreTableInfo, core::BulkReport) {
    fn from(result: BulkResult) -> Self {
        let batches = result
            .batches
            .into_iter()
            .map(|b| {
                let start = b.first_row as usize;
                core::BulkBatch {
                    rows: start..start + b.row_count as usize,
                    outcome: match b.outcome {
                        BatchOutcome::Written(w) => core::BatchOutcome::Done {
                            ids: w.ids,
                            call: (&w.call).into(),
                        },
                        BatchOutcome::Failed(e) => core::BatchOutcome::Failed((&e).into()),
                        BatchOutcome::NotSent => core::BatchOutcome::NotSent,
                    },
                }
            })
            .collect();
        (result.table.into(), core::BulkReport { batches })
    }
}

impl From<Message> for BulkMessage {
    fn from(m: Message) -> Self {
        match m {
            Message::Create => BulkMessage::CreateMultiple,
            Message::Update => BulkMessage::UpdateMultiple,
            Message::Upsert => BulkMessage::UpsertMultiple,
        }
    }
}

impl From<&CallInfo> for core::CallInfo {
    fn from(c: &CallInfo) -> Self {
        core::CallInfo {
            client_request_id: c.client_request_id.clone(),
            attempts: c.attempts,
        }
    }
}

impl From<&ServiceFailure> for core_error::ServiceFailure {
    fn from(s: &ServiceFailure) -> Self {
        core_error::ServiceFailure {
            status: s.status,
            code: s.code.clone(),
            message: s.message.clone(),
            request_id: s.request_id.clone(),
            hint: s.hint.clone(),
        }
    }
}

impl From<&AuthFailure> for core_error::AuthFailure {
    fn from(a: &AuthFailure) -> Self {
        core_error::AuthFailure {
            status: a.status,
            code: a.code,
            error: a.error.clone(),
            description: a.description.clone(),
            trace_id: a.trace_id.clone(),
            correlation_id: a.correlation_id.clone(),
            hint: a.hint.clone(),
        }
    }
}

impl From<&ErrorKind> for Error {
    fn from(kind: &ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidSettings(m) => Error::InvalidSettings(m.clone()),
            ErrorKind::InvalidRequest(m) => Error::InvalidRequest(m.clone()),
            ErrorKind::Authentication(a) => Error::Authentication(Box::new(a.into())),
            ErrorKind::Authority(m) => Error::Authority(m.clone()),
            ErrorKind::AccessDenied(s) => Error::AccessDenied(s.into()),
            ErrorKind::NotFound(s) => Error::NotFound(s.into()),
            ErrorKind::PreconditionFailed(s) => Error::PreconditionFailed(s.into()),
            ErrorKind::Throttled(Throttling {
                retry_after_seconds,
                failure,
            }) => Error::Throttled {
                retry_after_seconds: *retry_after_seconds,
                failure: failure.into(),
            },
            ErrorKind::Service(s) => Error::Service(s.into()),
            ErrorKind::Transport(m) => Error::Transport(m.clone()),
            ErrorKind::InvalidResponse(m) => Error::InvalidResponse(m.clone()),
        }
    }
}

impl From<&DataverseError> for core::Failure {
    fn from(e: &DataverseError) -> Self {
        core::Failure {
            error: (&e.kind).into(),
            call: e.call.as_ref().map(Into::into),
        }
    }
}

impl From<TokenInfo> for core::TokenInfo {
    fn from(t: TokenInfo) -> Self {
        core::TokenInfo {
            expires_at: t.expires_at,
            authority: t.authority,
            tenant_id: t.tenant_id,
            client_id: t.client_id,
            scope: t.scope,
            from_cache: t.from_cache,
            acquired_by: t.call.as_ref().map(Into::into),
        }
    }
}

impl From<BatchResponseItem> for BatchItem {
    fn from(r: BatchResponseItem) -> Self {
        BatchItem {
            content_id: r.content_id,
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

// To the component: arguments.

impl From<CoreMethod> for Method {
    fn from(m: CoreMethod) -> Self {
        match m {
            CoreMethod::Get => Method::Get,
            CoreMethod::Post => Method::Post,
            CoreMethod::Patch => Method::Patch,
            CoreMethod::Put => Method::Put,
            CoreMethod::Delete => Method::Delete,
        }
    }
}

impl From<&core::CallOptions> for RequestOptions {
    fn from(o: &core::CallOptions) -> Self {
        let CoreRequestOptions {
            caller_object_id,
            bypass_custom_plugins,
            suppress_duplicate_detection,
            solution_unique_name,
            strong_consistency,
            include_annotations,
            return_representation,
        } = o.headers.clone();
        RequestOptions {
            caller_object_id,
            bypass_custom_plugins,
            suppress_duplicate_detection,
            solution_unique_name,
            strong_consistency,
            include_annotations,
            return_representation,
            client_request_id: o.client_request_id.clone(),
        }
    }
}

impl From<&BatchPart> for BatchRequest {
    fn from(p: &BatchPart) -> Self {
        BatchRequest {
            method: p.method.into(),
            url: p.url.clone(),
            headers: p.headers.clone(),
            body: p.body.clone(),
        }
    }
}

/// [`crate::session::describe`]: the core's one line for the error.
pub(crate) fn describe(error: &DataverseError) -> String {
    core_error::describe(
        &(&error.kind).into(),
        error.call.as_ref().map(|c| c.attempts),
    )
}
