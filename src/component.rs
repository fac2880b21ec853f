//! The WIT adapter: converts between WIT types and core types, nothing else.

use std::cell::RefCell;

use crate::client::Client;
use crate::error::{AuthFailure, Error, ServiceFailure};
use crate::secret::Secret;
use crate::settings::{self, Credential, Settings};
use crate::transport::{DEFAULT_MAX_RESPONSE_BYTES, WasiTransport};
use crate::webapi::{Page, Query};

pub mod bindings {
    wit_bindgen::generate!({
        world: "client",
        path: "wit",
        generate_all,
    });
}

use bindings::exports::dataverse::client::connection as wit_conn;
use bindings::exports::dataverse::client::types as wit;
use bindings::exports::dataverse::client::web_api as wit_api;

struct Component;

bindings::export!(Component with_types_in bindings);

impl wit_conn::Guest for Component {
    type Settings = SettingsResource;

    fn parse(connection_string: String) -> Result<wit_conn::Settings, wit::Error> {
        let settings = settings::parse(&connection_string).map_err(to_wit)?;
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
        };
        let settings = Settings {
            org_url: fields.url,
            client_id: fields.client_id,
            credential,
            tenant_id: fields.tenant_id,
            authority: fields.authority,
            trusted_authority_hosts: fields.trusted_authority_hosts,
            require_new_instance: false,
        }
        .validate()
        .map_err(to_wit)?;
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
        };
        wit_conn::SettingsSummary {
            url: s.org_url.clone(),
            client_id: s.client_id.clone(),
            auth_type,
            thumbprint,
            tenant_id: s.tenant_id.clone(),
            authority: s.authority.clone(),
            trusted_authority_hosts: s.trusted_authority_hosts.clone(),
        }
    }
}

impl wit_api::Guest for Component {
    type Client = ClientResource;
}

/// A `Client` behind a `RefCell`: WIT methods take `&self`.
pub struct ClientResource(RefCell<Client<WasiTransport>>);

impl wit_api::GuestClient for ClientResource {
    fn connect(
        settings: wit_api::SettingsBorrow<'_>,
        options: wit_api::ClientOptions,
    ) -> Result<wit_api::Client, wit::Error> {
        let settings = settings.get::<SettingsResource>().0.clone();
        let transport = WasiTransport {
            max_response_bytes: options
                .max_response_bytes
                .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES),
            timeout_ms: options.timeout_ms,
        };
        let client = Client::connect(settings, transport).map_err(to_wit)?;
        Ok(wit_api::Client::new(ClientResource(RefCell::new(client))))
    }

    fn who_am_i(&self) -> Result<wit_api::WhoAmIResponse, wit::Error> {
        let w = self.0.borrow_mut().who_am_i().map_err(to_wit)?;
        Ok(wit_api::WhoAmIResponse {
            user_id: w.user_id,
            business_unit_id: w.business_unit_id,
            organization_id: w.organization_id,
        })
    }

    fn retrieve_multiple(&self, query: wit_api::Query) -> Result<wit_api::Page, wit::Error> {
        let query = Query {
            entity_set: query.entity_set,
            select: query.select,
            filter: query.filter,
            orderby: query.orderby,
            top: query.top,
            page_size: query.page_size,
            count: query.count,
        };
        self.0
            .borrow_mut()
            .retrieve_multiple(&query)
            .map(page)
            .map_err(to_wit)
    }

    fn next_page(
        &self,
        next_link: String,
        page_size: Option<u32>,
    ) -> Result<wit_api::Page, wit::Error> {
        self.0
            .borrow_mut()
            .next_page(&next_link, page_size)
            .map(page)
            .map_err(to_wit)
    }

    fn token_info(&self) -> Result<wit_api::TokenInfo, wit::Error> {
        let t = self.0.borrow_mut().token_info().map_err(to_wit)?;
        Ok(wit_api::TokenInfo {
            expires_at: t.expires_at,
            authority: t.authority,
            tenant_id: t.tenant_id,
            client_id: t.client_id,
            scope: t.scope,
            from_cache: t.from_cache,
        })
    }

    fn access_token(&self) -> Result<String, wit::Error> {
        let token = self.0.borrow_mut().access_token().map_err(to_wit)?;
        Ok(token.expose().to_string())
    }
}

fn page(p: Page) -> wit_api::Page {
    wit_api::Page {
        rows: p.rows,
        row_count: p.row_count,
        next_link: p.next_link,
        total_count: p.total_count,
    }
}

fn to_wit(error: Error) -> wit::Error {
    match error {
        Error::InvalidSettings(m) => wit::Error::InvalidSettings(m),
        Error::InvalidRequest(m) => wit::Error::InvalidRequest(m),
        Error::Authentication(a) => wit::Error::Authentication(auth_failure(*a)),
        Error::Authority(m) => wit::Error::Authority(m),
        Error::AccessDenied(s) => wit::Error::AccessDenied(service_failure(s)),
        Error::NotFound(s) => wit::Error::NotFound(service_failure(s)),
        Error::PreconditionFailed(s) => wit::Error::PreconditionFailed(service_failure(s)),
        Error::Throttled {
            retry_after_seconds,
            failure,
        } => wit::Error::Throttled(wit::Throttling {
            retry_after_seconds,
            failure: service_failure(failure),
        }),
        Error::Service(s) => wit::Error::Service(service_failure(s)),
        Error::Transport(m) => wit::Error::Transport(m),
        Error::InvalidResponse(m) => wit::Error::InvalidResponse(m),
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
