//! A live instance of the component with one connected `client` resource,
//! and typed calls on it.

use std::fmt;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::outgoing::{OutgoingHooks, Upstream};
use crate::runtime::Runtime;
use crate::state::HostState;

mod bindings {
    wasmtime::component::bindgen!({
        world: "client",
        path: "../wit",
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
        },
    });
}

pub use bindings::ClientPre;
pub use bindings::exports::dataverse::client::connection::SettingsSummary;
pub use bindings::exports::dataverse::client::types::{
    AuthFailure, Error as DataverseError, ServiceFailure, Throttling,
};
pub use bindings::exports::dataverse::client::web_api::{
    ClientOptions, Page, Query, TokenInfo, WhoAmIResponse,
};

/// A failed call: either the component's typed error, or a host failure
/// (trap, instantiation, resource limits).
#[derive(Debug)]
pub enum CallError {
    Dataverse(DataverseError),
    Host(wasmtime::Error),
}

impl From<wasmtime::Error> for CallError {
    fn from(e: wasmtime::Error) -> Self {
        CallError::Host(e)
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
            CallError::Host(e) => write!(f, "host error: {e:#}"),
        }
    }
}

impl std::error::Error for CallError {}

/// One line a person can act on. Never contains a secret: the component's
/// errors carry none.
pub fn describe(error: &DataverseError) -> String {
    match error {
        DataverseError::InvalidSettings(m) => format!("invalid settings: {m}"),
        DataverseError::InvalidRequest(m) => format!("invalid request: {m}"),
        DataverseError::Authentication(a) => {
            let mut line = format!(
                "authentication failed (HTTP {}, {}): {}",
                a.status, a.error, a.description
            );
            if let Some(code) = a.code.filter(|_| !a.description.starts_with("AADSTS")) {
                line.push_str(&format!(" [AADSTS{code}]"));
            }
            if let Some(hint) = &a.hint {
                line.push_str(&format!(" — {hint}"));
            }
            line
        }
        DataverseError::Authority(m) => format!("authority: {m}"),
        DataverseError::AccessDenied(s) => format!("access denied: {}", service(s)),
        DataverseError::NotFound(s) => format!("not found: {}", service(s)),
        DataverseError::PreconditionFailed(s) => format!("precondition failed: {}", service(s)),
        DataverseError::Throttled(t) => match t.retry_after_seconds {
            Some(s) => format!("throttled: {} (retry after {s} s)", service(&t.failure)),
            None => format!("throttled: {}", service(&t.failure)),
        },
        DataverseError::Service(s) => format!("Dataverse error: {}", service(s)),
        DataverseError::Transport(m) => format!("transport: {m}"),
        DataverseError::InvalidResponse(m) => format!("invalid response: {m}"),
    }
}

fn service(s: &ServiceFailure) -> String {
    let mut line = format!("HTTP {}", s.status);
    if let Some(code) = &s.code {
        line.push_str(&format!(" {code}"));
    }
    if !s.message.is_empty() {
        line.push_str(&format!(": {}", s.message));
    }
    if let Some(hint) = &s.hint {
        line.push_str(&format!(" — {hint}"));
    }
    line
}

/// One instance of the component holding one connected client.
pub struct Session {
    store: Store<HostState>,
    bindings: bindings::Client,
    client: ResourceAny,
}

impl Runtime {
    /// Instantiates the component, parses the connection string and connects
    /// (discovery + first token) through `upstream`.
    pub async fn connect(
        &self,
        upstream: Upstream,
        connection_string: &str,
        options: ClientOptions,
    ) -> Result<Session, CallError> {
        let mut store = Store::new(&self.engine, HostState::new(OutgoingHooks { upstream }));
        let bindings = self.pre.instantiate_async(&mut store).await?;
        let settings = bindings
            .dataverse_client_connection()
            .call_parse(&mut store, connection_string)
            .await??;
        let connected = bindings
            .dataverse_client_web_api()
            .client()
            .call_connect(&mut store, settings, options)
            .await;
        settings.resource_drop_async(&mut store).await?;
        let client = connected??;
        Ok(Session {
            store,
            bindings,
            client,
        })
    }

    /// Parses a connection string in a fresh instance and returns what the
    /// settings say (never the credential).
    pub async fn parse_settings(
        &self,
        connection_string: &str,
    ) -> Result<SettingsSummary, CallError> {
        let mut store = Store::new(
            &self.engine,
            HostState::new(OutgoingHooks {
                upstream: Upstream::Unreachable,
            }),
        );
        let bindings = self.pre.instantiate_async(&mut store).await?;
        let connection = bindings.dataverse_client_connection();
        let settings = connection
            .call_parse(&mut store, connection_string)
            .await??;
        let summary = connection
            .settings()
            .call_summary(&mut store, settings)
            .await?;
        settings.resource_drop_async(&mut store).await?;
        Ok(summary)
    }
}

impl Session {
    pub async fn who_am_i(&mut self) -> Result<WhoAmIResponse, CallError> {
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api.call_who_am_i(&mut self.store, self.client).await??)
    }

    pub async fn retrieve_multiple(&mut self, query: &Query) -> Result<Page, CallError> {
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_retrieve_multiple(&mut self.store, self.client, query)
            .await??)
    }

    pub async fn next_page(
        &mut self,
        next_link: &str,
        page_size: Option<u32>,
    ) -> Result<Page, CallError> {
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_next_page(&mut self.store, self.client, next_link, page_size)
            .await??)
    }

    pub async fn token_info(&mut self) -> Result<TokenInfo, CallError> {
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api.call_token_info(&mut self.store, self.client).await??)
    }

    /// The access token. Treat it as a secret.
    pub async fn access_token(&mut self) -> Result<String, CallError> {
        let api = self.bindings.dataverse_client_web_api().client();
        Ok(api
            .call_access_token(&mut self.store, self.client)
            .await??)
    }
}
