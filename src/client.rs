//! Orchestration: the only place that sequences I/O. `Client` owns the
//! settings, the authority, the token cache, the retry policy and a
//! `Transport`; each call gets a token (cached or fresh), sends with retries,
//! and maps the answer. Every call reports its `CallInfo`.

// A `Failure` carries the whole diagnosis (error + call record); failures are
// rare next to the network round trip, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use crate::auth::assertion::{self, AssertionOptions, CachedAssertion};
use crate::auth::certificate::{self, CertificateCredential};
use crate::auth::{self, Authority, TokenCache, token};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::percent::escape_uri;
use crate::retry::{self, Decision, Outcome, RetryPolicy};
use crate::secret::Secret;
use crate::settings::{Credential, Settings};
use crate::transport::Transport;
use crate::webapi::batch::{self, BatchItem, BatchPart};
use crate::webapi::crud::{self, Row};
use crate::webapi::execute::{self, OperationKind};
use crate::webapi::fetchxml::{self, FetchPage};
use crate::webapi::options::RequestOptions;
use crate::webapi::{self, Page, Query, WhoAmI};

/// How the client proves the app's identity to Entra ID.
enum Proof {
    /// The host owns identity and supplies tokens (ServiceClient's
    /// ExternalTokenManagement): nothing is ever requested from Entra ID.
    External,
    Secret(Secret),
    Certificate {
        credential: Box<CertificateCredential>,
        options: AssertionOptions,
        /// The last assertion, reused until shortly before it expires.
        assertion: Option<CachedAssertion>,
    },
}

/// Client-wide behaviour: retries and how certificate assertions are signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientConfig {
    pub retry: RetryPolicy,
    pub assertion: AssertionOptions,
}

/// What a host may know about the current token (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub expires_at: u64,
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub scope: String,
    pub from_cache: bool,
    /// The token request that acquired the current token: Entra ID's
    /// `client-request-id` and its attempts; `None` for a host-supplied token.
    pub acquired_by: Option<CallInfo>,
}

/// What happened on the wire for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// The `x-ms-client-request-id` sent with every attempt (for a token
    /// request, Entra ID's `client-request-id`).
    pub client_request_id: String,
    /// Requests sent for this call.
    pub attempts: u32,
}

/// A successful call: its value and its wire record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply<T> {
    pub value: T,
    pub call: CallInfo,
}

/// A failed call: the error, and the wire record when anything was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub error: Error,
    pub call: Option<CallInfo>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { error, call: None }
    }
}

pub type CallResult<T> = Result<Reply<T>, Failure>;

/// Options of one call: Dataverse request headers and, optionally, the
/// `x-ms-client-request-id` to use (a fresh UUID otherwise).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    pub headers: RequestOptions,
    pub client_request_id: Option<String>,
}

/// The result of `create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: Option<String>,
    pub json: Option<String>,
}

/// What a function or action returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationResult {
    pub status: u16,
    pub json: Option<String>,
}

/// A connection to one environment as one application.
pub struct Client<T: Transport> {
    settings: Settings,
    transport: T,
    authority: Authority,
    scope: String,
    proof: Proof,
    cache: TokenCache,
    last_token_from_cache: bool,
    /// The call record of the token request that filled the cache.
    last_acquisition: Option<CallInfo>,
    policy: RetryPolicy,
}

impl<T: Transport> Client<T> {
    /// Finds the authority (from the settings, or by discovery) and acquires
    /// a first token, so wrong settings fail here. A failure that sent
    /// anything carries the call record of the step that failed (discovery
    /// or the token request), attempts included.
    pub fn connect(
        settings: Settings,
        mut transport: T,
        config: ClientConfig,
    ) -> Result<Self, Failure> {
        // The credential is checked before anything is sent: a missing or
        // expired certificate is a settings problem, not a network one.
        let proof = load_proof(&settings, &mut transport, config.assertion)?;
        let (authority, scope) = match auth::authority::from_settings(&settings) {
            Some(authority) => (authority?, auth::authority::default_scope(&settings)),
            None => {
                let id = crate::uuid::v4(transport.random(), transport.random());
                let request = auth::authority::discovery_request(&settings.org_url)
                    .header("x-ms-client-request-id", id.clone());
                let (answer, call) = send_repeatable(&mut transport, &config.retry, &request, id);
                answer
                    .and_then(|response| auth::authority::from_discovery(&response, &settings))
                    .map_err(|error| Failure {
                        error,
                        call: Some(call),
                    })?
            }
        };
        let mut client = Client {
            settings,
            transport,
            authority,
            scope,
            proof,
            cache: TokenCache::default(),
            last_token_from_cache: false,
            last_acquisition: None,
            policy: config.retry,
        };
        client.token()?;
        Ok(client)
    }

    pub fn org_url(&self) -> &str {
        &self.settings.org_url
    }

    /// A client for a host that owns identity: it supplies the access token
    /// (and later replaces it with `set_access_token`); no discovery, no
    /// credential, no token request ever leaves the component.
    pub fn with_token(
        org_url: &str,
        access_token: Secret,
        expires_at: u64,
        transport: T,
        config: ClientConfig,
    ) -> Result<Self, Error> {
        let org_url = crate::settings::normalize_org_url(org_url)?;
        if access_token.is_empty() {
            return Err(Error::InvalidRequest("access-token is empty".into()));
        }
        let scope = format!("{org_url}/.default");
        let mut client = Client {
            settings: Settings {
                org_url,
                client_id: String::new(),
                credential: Credential::ExternalToken,
                tenant_id: None,
                authority: None,
                trusted_authority_hosts: Vec::new(),
                require_new_instance: false,
                allow_http_loopback: false,
            },
            transport,
            authority: Authority {
                host: String::new(),
                tenant: String::new(),
                https: true,
            },
            scope,
            proof: Proof::External,
            cache: TokenCache::default(),
            last_token_from_cache: false,
            last_acquisition: None,
            policy: config.retry,
        };
        client.set_access_token(access_token, expires_at);
        Ok(client)
    }

    /// Replaces the host-supplied token (external-token clients).
    pub fn set_access_token(&mut self, access_token: Secret, expires_at: u64) {
        self.cache.store(auth::AccessToken {
            value: access_token,
            expires_at,
            refresh_at: None,
        });
    }

    pub fn who_am_i(&mut self, options: &CallOptions) -> CallResult<WhoAmI> {
        let request = webapi::get(&self.settings.org_url, webapi::who_am_i::PATH);
        let reply = self.call(request, options)?;
        map(reply, |r| webapi::who_am_i::parse(&r))
    }

    pub fn retrieve(
        &mut self,
        entity_set: &str,
        key: &str,
        select: &[String],
        expand: Option<&str>,
        options: &CallOptions,
    ) -> CallResult<Row> {
        let request = crud::retrieve(&self.settings.org_url, entity_set, key, select, expand)?;
        let reply = self.call(request, options)?;
        map(reply, |r| crud::parse_row(&r))
    }

    pub fn retrieve_multiple(&mut self, query: &Query, options: &CallOptions) -> CallResult<Page> {
        let mut request = Request::new(Method::Get, query.url(&self.settings.org_url)?);
        if let Some(prefer) = query.prefer()? {
            request = request.header("Prefer", prefer);
        }
        let reply = self.call(request, options)?;
        map(reply, |r| webapi::page::parse(&r))
    }

    /// Follows a page's `@odata.nextLink`, only on the organization's origin.
    pub fn next_page(
        &mut self,
        next_link: &str,
        page_size: Option<u32>,
        options: &CallOptions,
    ) -> CallResult<Page> {
        if !webapi::is_org_url(&self.settings.org_url, next_link) {
            return Err(Error::InvalidRequest(format!(
                "next-link is not on the organization's origin {}; the access token is sent nowhere else",
                self.settings.org_url
            ))
            .into());
        }
        let mut request = Request::new(Method::Get, escape_uri(next_link));
        let prefer = Query {
            page_size,
            ..Query::default()
        }
        .prefer()?;
        if let Some(prefer) = prefer {
            request = request.header("Prefer", prefer);
        }
        let reply = self.call(request, options)?;
        map(reply, |r| webapi::page::parse(&r))
    }

    pub fn fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        page: u32,
        paging_cookie: Option<&str>,
        options: &CallOptions,
    ) -> CallResult<FetchPage> {
        let request = fetchxml::request(
            &self.settings.org_url,
            entity_set,
            fetch_xml,
            page,
            paging_cookie,
        )?;
        // Dataverse returns the paging cookie and morerecords only when asked.
        // A narrower annotation filter of the caller's is widened to "*" so
        // paging keeps working.
        let mut options = options.clone();
        let request = match options.headers.include_annotations.take() {
            None => request.header("Prefer", FETCH_PAGING_ANNOTATIONS),
            Some(_) => {
                options.headers.include_annotations = Some("*".into());
                request
            }
        };
        let reply = self.call(request, &options)?;
        map(reply, |r| fetchxml::parse_page(&r))
    }

    pub fn create(
        &mut self,
        entity_set: &str,
        json: &str,
        options: &CallOptions,
    ) -> CallResult<Created> {
        let request = crud::create(&self.settings.org_url, entity_set, json)?;
        let reply = self.call(request, options)?;
        map(reply, |r| {
            Ok(Created {
                id: crud::created_id(&r),
                json: body_text(&r),
            })
        })
    }

    /// Updates an existing row; never creates one (`If-Match: *` without an ETag).
    pub fn update(
        &mut self,
        entity_set: &str,
        key: &str,
        json: &str,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> CallResult<Option<String>> {
        let if_match = Some(if_match.unwrap_or("*"));
        let request = crud::update(&self.settings.org_url, entity_set, key, json, if_match)?;
        let reply = self.call(request, options)?;
        map(reply, |r| Ok(body_text(&r)))
    }

    pub fn upsert(
        &mut self,
        entity_set: &str,
        key: &str,
        json: &str,
        prevent_update: bool,
        options: &CallOptions,
    ) -> CallResult<Option<String>> {
        let request = crud::upsert(
            &self.settings.org_url,
            entity_set,
            key,
            json,
            prevent_update,
        )?;
        let reply = self.call(request, options)?;
        map(reply, |r| Ok(body_text(&r)))
    }

    pub fn delete(
        &mut self,
        entity_set: &str,
        key: &str,
        if_match: Option<&str>,
        options: &CallOptions,
    ) -> CallResult<()> {
        let request = crud::delete(&self.settings.org_url, entity_set, key, if_match)?;
        let reply = self.call(request, options)?;
        map(reply, |_| Ok(()))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn associate(
        &mut self,
        entity_set: &str,
        key: &str,
        navigation_property: &str,
        target_entity_set: &str,
        target_key: &str,
        options: &CallOptions,
    ) -> CallResult<()> {
        let request = crud::associate(
            &self.settings.org_url,
            entity_set,
            key,
            navigation_property,
            target_entity_set,
            target_key,
        )?;
        let reply = self.call(request, options)?;
        map(reply, |_| Ok(()))
    }

    pub fn disassociate(
        &mut self,
        entity_set: &str,
        key: &str,
        navigation_property: &str,
        target: Option<(&str, &str)>,
        options: &CallOptions,
    ) -> CallResult<()> {
        let request = crud::disassociate(
            &self.settings.org_url,
            entity_set,
            key,
            navigation_property,
            target,
        )?;
        let reply = self.call(request, options)?;
        map(reply, |_| Ok(()))
    }

    pub fn execute(
        &mut self,
        name: &str,
        kind: OperationKind,
        bound: Option<(&str, &str)>,
        parameters: Option<&str>,
        options: &CallOptions,
    ) -> CallResult<OperationResult> {
        let request = execute::request(&self.settings.org_url, name, kind, bound, parameters)?;
        let reply = self.call(request, options)?;
        map(reply, |r| {
            Ok(OperationResult {
                status: r.status,
                json: body_text(&r),
            })
        })
    }

    pub fn batch(
        &mut self,
        parts: &[BatchPart],
        change_set: bool,
        continue_on_error: bool,
        options: &CallOptions,
    ) -> CallResult<Vec<BatchItem>> {
        let seed =
            (u128::from(self.transport.random()) << 64) | u128::from(self.transport.random());
        let request = batch::request(
            &self.settings.org_url,
            parts,
            change_set,
            continue_on_error,
            seed,
        )?;
        // Dataverse answers a batch whose request failed with that request's
        // status on the whole response; the multipart body still holds the
        // per-request results, which is what the caller asked for.
        let reply = self.call_accepting(request, options, is_multipart)?;
        map(reply, |r| batch::parse_response(&r))
    }

    /// Any Web API request, with authentication, retries and typed errors.
    pub fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        options: &CallOptions,
    ) -> CallResult<Response> {
        let request = self.web_request(method, path, headers, body)?;
        self.call(request, options)
    }

    /// [`Client::send`] for proxies: a final non-2xx answer of Dataverse
    /// (after the same re-authentication and retries) is returned as the
    /// reply instead of an error, so its status, headers and body can be
    /// passed on unchanged. Errors are only what never got an answer: bad
    /// arguments, authentication, transport.
    pub fn relay(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        options: &CallOptions,
    ) -> CallResult<Response> {
        let request = self.web_request(method, path, headers, body)?;
        self.call_answering(request, options, Answers::Any)
    }

    /// A Web API request by path with the caller's headers (never `Authorization`).
    fn web_request(
        &self,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Request, Error> {
        let url = webapi::send::url(&self.settings.org_url, path)?;
        let mut request = Request::new(method, url).body(body);
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("authorization") {
                return Err(Error::InvalidRequest(
                    "send sets Authorization itself; do not pass one".into(),
                ));
            }
            request = request.header(name, value.clone());
        }
        Ok(request)
    }

    /// Metadata of the current token, acquiring one if the cache has none usable.
    pub fn token_info(&mut self) -> Result<TokenInfo, Failure> {
        self.token()?;
        let expires_at = self.cache.current().map_or(0, |t| t.expires_at);
        Ok(TokenInfo {
            expires_at,
            authority: self.authority.url(),
            tenant_id: self.authority.tenant.clone(),
            client_id: self.settings.client_id.clone(),
            scope: self.scope.clone(),
            from_cache: self.last_token_from_cache,
            acquired_by: self.last_acquisition.clone(),
        })
    }

    /// The access token itself, for hosts that must forward it.
    pub fn access_token(&mut self) -> Result<Secret, Failure> {
        self.token()
    }

    /// Sends `request` (built without auth) until it succeeds, the retry
    /// policy gives up, or it fails for good. A 401 on a cached token means
    /// it was revoked or the clock is off: drop it, acquire once, resend once.
    fn call(&mut self, request: Request, options: &CallOptions) -> CallResult<Response> {
        self.call_answering(request, options, Answers::Success)
    }

    /// `call`, also taking a non-2xx response that `accept` approves of as the answer.
    fn call_accepting(
        &mut self,
        request: Request,
        options: &CallOptions,
        accept: fn(&Response) -> bool,
    ) -> CallResult<Response> {
        self.call_answering(request, options, Answers::Also(accept))
    }

    /// `call`, with `answers` saying which responses are results.
    fn call_answering(
        &mut self,
        request: Request,
        options: &CallOptions,
        answers: Answers,
    ) -> CallResult<Response> {
        let accept = |response: &Response| match answers {
            Answers::Success | Answers::Any => false,
            Answers::Also(accept) => accept(response),
        };
        let request = options.headers.apply(request)?;
        let client_request_id = match &options.client_request_id {
            Some(id) => check_request_id(id)?,
            None => crate::uuid::v4(self.transport.random(), self.transport.random()),
        };
        let request = request.header("x-ms-client-request-id", client_request_id.clone());
        let idempotent = retry::is_idempotent(request.method);
        let mut call = CallInfo {
            client_request_id,
            attempts: 0,
        };
        let mut waited_ms = 0u64;
        let mut reauthenticated = false;
        loop {
            let token = match self.token() {
                Ok(token) => token,
                // A failed token request reports its own wire record (Entra
                // ID's request id and attempts): that is where it failed.
                Err(failure) => {
                    return Err(Failure {
                        error: failure.error,
                        call: failure.call.or(Some(call)),
                    });
                }
            };
            let from_cache = self.last_token_from_cache;
            call.attempts += 1;
            let answer = match self
                .transport
                .send(&webapi::authorize(request.clone(), &token))
            {
                Ok(response) if (200..300).contains(&response.status) || accept(&response) => {
                    return Ok(Reply {
                        value: response,
                        call,
                    });
                }
                Ok(response) if response.status == 401 && from_cache && !reauthenticated => {
                    self.cache.clear();
                    reauthenticated = true;
                    continue;
                }
                Ok(response) => Ok(response),
                Err(error @ (Error::Transport(_) | Error::Unsent { .. })) => Err(error),
                // Not a network failure (an oversized body, a rejected header): final.
                Err(error) => {
                    return Err(Failure {
                        error,
                        call: Some(call),
                    });
                }
            };
            let outcome = match &answer {
                Ok(response) => Outcome::Status {
                    status: response.status,
                    retry_after_secs: retry::retry_after_secs(response.header("retry-after")),
                    throttling_code: retry::throttling_code(&response.body),
                },
                Err(error) => transport_outcome(error),
            };
            let random = self.transport.random();
            match retry::decide(
                &self.policy,
                idempotent,
                call.attempts,
                waited_ms,
                outcome,
                random,
            ) {
                Decision::RetryAfterMs(ms) => {
                    self.transport.sleep(ms);
                    waited_ms = waited_ms.saturating_add(ms);
                }
                Decision::GiveUp => {
                    if let (Answers::Any, Ok(response)) = (answers, &answer) {
                        return Ok(Reply {
                            value: response.clone(),
                            call,
                        });
                    }
                    let error = match answer {
                        // A 401 on a cached token was re-acquired above, so
                        // this one came right after a fresh token.
                        Ok(response) if response.status == 401 => {
                            webapi::error::refused_fresh_token(&response)
                        }
                        Ok(response) => webapi::parse_error(&response),
                        Err(Error::Transport(message)) => {
                            Error::Transport(transport_message(message, &call, idempotent))
                        }
                        // Nothing was sent: no caution about a write.
                        Err(Error::Unsent { message, permanent }) => Error::Unsent {
                            message: with_attempts(message, &call),
                            permanent,
                        },
                        Err(error) => error,
                    };
                    return Err(Failure {
                        error,
                        call: Some(call),
                    });
                }
            }
        }
    }

    /// A usable token: the cached one while more than 5 minutes remain,
    /// otherwise a fresh one from Entra ID. After Entra ID's `refresh_in` a
    /// new one is fetched early; if that fails the cached one is kept while
    /// it is still usable.
    fn token(&mut self) -> Result<Secret, Failure> {
        let now = self.transport.now();
        if let Proof::External = self.proof {
            // The host decides when its token is too old; use it to the end.
            return match self.cache.current() {
                Some(token) if now < token.expires_at => {
                    self.last_token_from_cache = true;
                    Ok(token.value.clone())
                }
                _ => Err(external_token_needed().into()),
            };
        }
        if let Some(cached) = self.cache.usable(now) {
            let cached = cached.clone();
            if cached.refresh_at.is_none_or(|at| now < at) {
                self.last_token_from_cache = true;
                return Ok(cached.value);
            }
            return match self.acquire(now) {
                Ok(fresh) => Ok(fresh),
                Err(_) => {
                    self.last_token_from_cache = true;
                    Ok(cached.value)
                }
            };
        }
        self.acquire(now)
    }

    /// Asks Entra ID for a token and caches it. A token request changes
    /// nothing at Entra ID, so it is repeated under the same policy as an
    /// idempotent Web API call (429 after `Retry-After`; 502/503/504 and
    /// dropped connections with backoff); its refusals (400/401) are final.
    fn acquire(&mut self, now: u64) -> Result<Secret, Failure> {
        let request = match &mut self.proof {
            Proof::External => return Err(external_token_needed().into()),
            Proof::Secret(secret) => token::client_secret_request(
                &self.authority,
                &self.settings.client_id,
                secret,
                &self.scope,
            ),
            Proof::Certificate {
                credential,
                options,
                assertion,
            } => {
                let reusable = assertion.as_ref().filter(|a| a.is_reusable(now));
                let jwt = match reusable {
                    Some(cached) => cached.jwt.clone(),
                    None => {
                        let jti = crate::uuid::v4(self.transport.random(), self.transport.random());
                        let jwt = assertion::sign(
                            credential,
                            &self.settings.client_id,
                            &self.authority.token_endpoint(),
                            &jti,
                            now,
                            *options,
                        )?;
                        *assertion = Some(CachedAssertion::new(jwt.clone(), now));
                        jwt
                    }
                };
                token::client_assertion_request(
                    &self.authority,
                    &self.settings.client_id,
                    &jwt,
                    &self.scope,
                )
            }
        };
        let id = crate::uuid::v4(self.transport.random(), self.transport.random());
        let request = request.header(token::CLIENT_REQUEST_ID, id.clone());
        let (answer, call) = send_repeatable(&mut self.transport, &self.policy, &request, id);
        let token = match answer.and_then(|response| token::parse_response(&response, now)) {
            Ok(token) => token,
            Err(error) => {
                return Err(Failure {
                    error,
                    call: Some(call),
                });
            }
        };
        let value = token.value.clone();
        self.cache.store(token);
        self.last_token_from_cache = false;
        self.last_acquisition = Some(call);
        Ok(value)
    }
}

/// A fresh token request for `settings` — what `Client` sends (the same
/// builders), for hosts that do their own HTTP: the client secret, or a newly
/// signed assertion for a certificate from the host's store.
pub fn token_request<T: Transport>(
    settings: &Settings,
    authority: &Authority,
    scope: &str,
    transport: &mut T,
    options: AssertionOptions,
) -> Result<Request, Error> {
    let request = match load_proof(settings, transport, options)? {
        Proof::External => return Err(external_token_needed()),
        Proof::Secret(secret) => {
            token::client_secret_request(authority, &settings.client_id, &secret, scope)
        }
        Proof::Certificate {
            credential,
            options,
            ..
        } => {
            let now = transport.now();
            let jti = crate::uuid::v4(transport.random(), transport.random());
            let jwt = assertion::sign(
                &credential,
                &settings.client_id,
                &authority.token_endpoint(),
                &jti,
                now,
                options,
            )?;
            token::client_assertion_request(authority, &settings.client_id, &jwt, scope)
        }
    };
    let id = crate::uuid::v4(transport.random(), transport.random());
    Ok(request.header(token::CLIENT_REQUEST_ID, id))
}

/// Sends a request that carries no Dataverse token and changes nothing —
/// tenant discovery, a token request — until the retry policy gives up, the
/// same policy as an idempotent Web API call. Returns the last answer
/// whatever its status (the caller reads it), or the last transport error
/// (naming the attempts when there were several), and the call record.
fn send_repeatable<T: Transport>(
    transport: &mut T,
    policy: &RetryPolicy,
    request: &Request,
    client_request_id: String,
) -> (Result<Response, Error>, CallInfo) {
    let mut call = CallInfo {
        client_request_id,
        attempts: 0,
    };
    let mut waited_ms = 0u64;
    loop {
        call.attempts += 1;
        let answer = transport.send(request);
        let outcome = match &answer {
            Ok(response) => Outcome::Status {
                status: response.status,
                retry_after_secs: retry::retry_after_secs(response.header("retry-after")),
                throttling_code: false,
            },
            Err(error @ (Error::Transport(_) | Error::Unsent { .. })) => transport_outcome(error),
            // Not a network failure (an oversized body): final.
            Err(_) => return (answer, call),
        };
        let random = transport.random();
        match retry::decide(policy, true, call.attempts, waited_ms, outcome, random) {
            Decision::RetryAfterMs(ms) => {
                transport.sleep(ms);
                waited_ms = waited_ms.saturating_add(ms);
            }
            Decision::GiveUp => {
                let answer = match answer {
                    Err(Error::Transport(message)) => {
                        Err(Error::Transport(with_attempts(message, &call)))
                    }
                    Err(Error::Unsent { message, permanent }) => Err(Error::Unsent {
                        message: with_attempts(message, &call),
                        permanent,
                    }),
                    other => other,
                };
                return (answer, call);
            }
        }
    }
}

/// Reads the credential the settings name: a secret as is; a certificate
/// from the host's store (or from PEM text), checked for validity now.
fn load_proof<T: Transport>(
    settings: &Settings,
    transport: &mut T,
    options: AssertionOptions,
) -> Result<Proof, Error> {
    let now = transport.now();
    let credential = match &settings.credential {
        Credential::ClientSecret(secret) => return Ok(Proof::Secret(secret.clone())),
        Credential::Certificate {
            thumbprint,
            store_name,
            password,
        } => {
            let files = transport.certificate_store(store_name.as_deref())?;
            certificate::find_in_store(&files, thumbprint, password.as_ref(), now)?
        }
        Credential::CertificatePem(pem) => certificate::from_pem(pem.expose(), now)?,
        Credential::ExternalToken => return Ok(Proof::External),
    };
    Ok(Proof::Certificate {
        credential: Box::new(credential),
        options,
        assertion: None,
    })
}

/// How the retry policy sees a failed send.
fn transport_outcome(error: &Error) -> Outcome {
    match error {
        Error::Unsent { permanent, .. } => Outcome::Unsent {
            permanent: *permanent,
        },
        _ => Outcome::TransportFailure,
    }
}

/// `message`, saying how many attempts failed when there was more than one.
fn with_attempts(mut message: String, call: &CallInfo) -> String {
    if call.attempts > 1 {
        message.push_str(&format!(" (after {} attempts)", call.attempts));
    }
    message
}

/// A call's final transport failure, saying how often it was tried and,
/// for a request that is not repeated on failure (a POST: create, action,
/// `$batch`), that it may have been carried out: the connection can fail
/// after Dataverse received the request, and only the request id can tell.
/// (A request that never connected is `Error::Unsent` and gets no caution.)
fn transport_message(message: String, call: &CallInfo, idempotent: bool) -> String {
    let mut message = with_attempts(message, call);
    if !idempotent {
        message.push_str(&format!(
            "; the request may have reached Dataverse: check before repeating it (the write may \
             have happened; x-ms-client-request-id {})",
            call.client_request_id
        ));
    }
    message
}

/// Which Dataverse responses a call takes as its result; the others become errors.
#[derive(Clone, Copy)]
enum Answers {
    /// 2xx only.
    Success,
    /// 2xx, and non-2xx responses this approves of (e.g. a `$batch`'s multipart).
    Also(fn(&Response) -> bool),
    /// Whatever Dataverse finally answered, after re-authentication and retries.
    Any,
}

/// An external-token client whose token expired, or was refused (401).
fn external_token_needed() -> Error {
    Error::Authentication(Box::new(crate::error::AuthFailure {
        status: 401,
        code: None,
        error: "external_token_expired".into(),
        description: "the access token supplied by the host has expired or was refused".into(),
        trace_id: None,
        correlation_id: None,
        hint: Some("acquire a fresh token and pass it with set-access-token".into()),
    }))
}

/// The annotations FetchXML paging needs.
const FETCH_PAGING_ANNOTATIONS: &str = "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords,Microsoft.Dynamics.CRM.totalrecordcount\"";

fn is_multipart(response: &Response) -> bool {
    response.status != 429
        && response.header("content-type").is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/mixed")
        })
}

/// Parses a successful response, keeping the call record on failure too.
fn map<T>(
    reply: Reply<Response>,
    parse: impl FnOnce(Response) -> Result<T, Error>,
) -> CallResult<T> {
    let Reply { value, call } = reply;
    match parse(value) {
        Ok(value) => Ok(Reply { value, call }),
        Err(error) => Err(Failure {
            error,
            call: Some(call),
        }),
    }
}

/// The body as text, when there is one (204 has none).
fn body_text(response: &Response) -> Option<String> {
    if response.body.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(&response.body).into_owned())
    }
}

/// A caller's request id goes into a header: keep it printable and short.
fn check_request_id(id: &str) -> Result<String, Error> {
    let printable = id.chars().all(|c| c.is_ascii_graphic());
    if !id.is_empty() && id.len() <= 200 && printable {
        Ok(id.to_string())
    } else {
        Err(Error::InvalidRequest(
            "client-request-id must be 1 to 200 printable ASCII characters".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::error::ServiceFailure;

    /// Answers from a script and records what was sent and slept; the clock
    /// is settable.
    struct Scripted {
        answers: VecDeque<Result<Response, Error>>,
        sent: Vec<Request>,
        slept: Vec<u64>,
        now: u64,
    }

    impl Transport for &mut Scripted {
        fn send(&mut self, request: &Request) -> Result<Response, Error> {
            self.sent.push(request.clone());
            self.answers
                .pop_front()
                .unwrap_or_else(|| Err(Error::Transport("script exhausted".into())))
        }

        fn now(&self) -> u64 {
            self.now
        }

        fn sleep(&mut self, millis: u64) {
            self.slept.push(millis);
        }

        fn random(&mut self) -> u64 {
            0x1234_5678_9abc_def0
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn challenge() -> Response {
        response(
            401,
            &[(
                "WWW-Authenticate",
                "Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
            )],
            "",
        )
    }

    fn token(value: &str) -> Response {
        response(
            200,
            &[],
            &format!(r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{value}"}}"#),
        )
    }

    fn who_am_i() -> Response {
        response(
            200,
            &[],
            r#"{"UserId":"u","BusinessUnitId":"b","OrganizationId":"o"}"#,
        )
    }

    fn throttled(retry_after: &str) -> Response {
        response(
            429,
            &[("Retry-After", retry_after)],
            r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit"}}"#,
        )
    }

    fn unavailable() -> Response {
        response(
            503,
            &[],
            r#"{"error":{"code":"0x80040216","message":"Service unavailable"}}"#,
        )
    }

    fn settings() -> Settings {
        crate::settings::parse(
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=app;ClientSecret=s3cret",
        )
        .unwrap()
    }

    /// A script that starts with discovery and a token, then `answers`.
    fn script(answers: Vec<Response>) -> Scripted {
        let mut all = vec![Ok(challenge()), Ok(token("t1"))];
        all.extend(answers.into_iter().map(Ok));
        Scripted {
            answers: all.into(),
            sent: Vec::new(),
            slept: Vec::new(),
            now: 1_000,
        }
    }

    fn connect(t: &mut Scripted) -> Client<&mut Scripted> {
        Client::connect(settings(), t, ClientConfig::default()).unwrap()
    }

    fn bearer(request: &Request) -> Option<&str> {
        request.header_value("authorization")
    }

    fn none() -> CallOptions {
        CallOptions::default()
    }

    #[test]
    fn connect_discovers_then_acquires_and_calls_reuse_the_token() {
        let mut t = script(vec![who_am_i(), who_am_i()]);
        let mut client = connect(&mut t);
        client.who_am_i(&none()).unwrap();
        let reply = client.who_am_i(&none()).unwrap();
        assert_eq!(reply.call.attempts, 1);
        drop(client);
        let urls: Vec<&str> = t.sent.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://contoso.crm.dynamics.com/api/data/v9.2/",
                "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
                "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI",
                "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI",
            ]
        );
        assert_eq!(bearer(&t.sent[0]), None, "discovery is unauthenticated");
        assert_eq!(bearer(&t.sent[3]), Some("Bearer t1"));
    }

    #[test]
    fn the_standalone_token_request_is_byte_identical_to_the_clients() {
        let mut t = script(vec![]);
        let client = connect(&mut t);
        let (authority, scope) = (client.authority.clone(), client.scope.clone());
        drop(client);
        let sent = t.sent[1].clone();
        let mut other = script(vec![]);
        let built = token_request(
            &settings(),
            &authority,
            &scope,
            &mut &mut other,
            AssertionOptions::default(),
        )
        .unwrap();
        assert_eq!(built.url, sent.url);
        assert_eq!(built.headers, sent.headers);
        assert_eq!(built.body, sent.body);
    }

    #[test]
    fn every_call_carries_a_fresh_client_request_id_unless_one_is_given() {
        let mut t = script(vec![who_am_i(), who_am_i()]);
        let mut client = connect(&mut t);
        let first = client.who_am_i(&none()).unwrap().call.client_request_id;
        let given = CallOptions {
            client_request_id: Some("my-id-1".into()),
            ..none()
        };
        assert_eq!(
            client.who_am_i(&given).unwrap().call.client_request_id,
            "my-id-1"
        );
        drop(client);
        assert_eq!(first.len(), 36);
        assert_eq!(
            t.sent[2].header_value("x-ms-client-request-id"),
            Some(first.as_str())
        );
        assert_eq!(
            t.sent[3].header_value("x-ms-client-request-id"),
            Some("my-id-1")
        );
    }

    #[test]
    fn a_token_with_less_than_five_minutes_left_is_renewed() {
        let mut t = script(vec![token("t2"), who_am_i()]);
        let mut client = connect(&mut t);
        client.transport.now = 1_000 + 3600 - 300;
        client.who_am_i(&none()).unwrap();
        drop(client);
        assert_eq!(bearer(&t.sent[3]), Some("Bearer t2"));
    }

    #[test]
    fn after_refresh_in_a_failed_renewal_keeps_the_still_valid_token() {
        let with_refresh = response(
            200,
            &[],
            r#"{"token_type":"Bearer","expires_in":3600,"refresh_in":60,"access_token":"t1"}"#,
        );
        // Entra ID stays down through every retry of the renewal.
        let entra_down = || Ok(response(503, &[], ""));
        let mut answers = vec![Ok(challenge()), Ok(with_refresh)];
        answers.extend((0..5).map(|_| entra_down()));
        answers.extend([Ok(who_am_i()), Ok(token("t2")), Ok(who_am_i())]);
        let mut t = Scripted {
            answers: answers.into(),
            sent: vec![],
            slept: vec![],
            now: 1_000,
        };
        let mut client = Client::connect(settings(), &mut t, ClientConfig::default()).unwrap();
        client.transport.now = 1_000 + 61;
        client.who_am_i(&none()).unwrap();
        client.who_am_i(&none()).unwrap();
        drop(client);
        assert_eq!(
            bearer(&t.sent[7]),
            Some("Bearer t1"),
            "renewal failed: the old token is still used"
        );
        assert_eq!(
            bearer(&t.sent[9]),
            Some("Bearer t2"),
            "the next call renews"
        );
    }

    const TOKEN_URL: &str = "https://login.microsoftonline.com/tid/oauth2/v2.0/token";

    /// The token requests sent, in order.
    fn token_requests(t: &Scripted) -> Vec<&Request> {
        t.sent.iter().filter(|r| r.url == TOKEN_URL).collect()
    }

    fn scripted(answers: Vec<Result<Response, Error>>) -> Scripted {
        Scripted {
            answers: answers.into(),
            sent: vec![],
            slept: vec![],
            now: 1_000,
        }
    }

    fn policy(max_retries: u32) -> ClientConfig {
        ClientConfig {
            retry: RetryPolicy {
                max_retries,
                max_total_wait_ms: 60_000,
            },
            ..ClientConfig::default()
        }
    }

    #[test]
    fn a_token_request_that_meets_a_transient_failure_once_is_sent_again() {
        let dropped = Err(Error::Transport("the connection closed".into()));
        let cases = [
            (Ok(response(503, &[], "")), 500..=1_000),
            (
                Ok(response(429, &[("Retry-After", "2")], "")),
                2_000..=2_000,
            ),
            (
                Ok(response(502, &[], "<html>Bad Gateway</html>")),
                500..=1_000,
            ),
            (dropped, 500..=1_000),
        ];
        for (first, waits) in cases {
            let label = format!("{first:?}");
            let mut t = scripted(vec![Ok(challenge()), first, Ok(token("t1"))]);
            let mut client = Client::connect(settings(), &mut t, ClientConfig::default())
                .unwrap_or_else(|f| panic!("{label}: {f:?}"));
            let acquired = client.token_info().unwrap().acquired_by.unwrap();
            assert_eq!(acquired.attempts, 2, "{label}");
            drop(client);
            assert_eq!(t.slept.len(), 1, "{label}");
            assert!(waits.contains(&t.slept[0]), "{label}: {:?}", t.slept);
            let sent = token_requests(&t);
            assert_eq!(sent.len(), 2, "{label}");
            let ids: Vec<_> = sent
                .iter()
                .map(|r| r.header_value("client-request-id"))
                .collect();
            assert_eq!(ids[0], Some(acquired.client_request_id.as_str()), "{label}");
            assert_eq!(ids[0], ids[1], "{label}: one acquisition, one id");
            assert_eq!(sent[0].body, sent[1].body, "{label}");
        }
    }

    #[test]
    fn a_refused_token_request_is_not_repeated() {
        let refused = response(
            401,
            &[],
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#,
        );
        let bad_request = response(
            400,
            &[],
            r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found.","error_codes":[90002]}"#,
        );
        for answer in [refused, bad_request] {
            let mut t = scripted(vec![Ok(challenge()), Ok(answer), Ok(token("t1"))]);
            let failure = Client::connect(settings(), &mut t, ClientConfig::default())
                .err()
                .unwrap();
            assert!(
                matches!(failure.error, Error::Authentication(_)),
                "{failure:?}"
            );
            assert_eq!(failure.call.unwrap().attempts, 1);
            assert_eq!(token_requests(&t).len(), 1);
            assert!(t.slept.is_empty());
        }
    }

    #[test]
    fn entra_down_for_good_ends_connect_after_the_policys_attempts() {
        let down = |_| Ok(response(503, &[], ""));
        let mut answers = vec![Ok(challenge())];
        answers.extend((0..10).map(down));
        let mut t = scripted(answers);
        let failure = Client::connect(settings(), &mut t, policy(2))
            .err()
            .unwrap();
        let call = failure.call.unwrap();
        assert_eq!(call.attempts, 3);
        assert_eq!(token_requests(&t).len(), 3);
        assert_eq!(t.slept.len(), 2);

        let refused = |_| {
            Err(Error::Transport(
                "connection to login.microsoftonline.com refused".into(),
            ))
        };
        let mut answers = vec![Ok(challenge())];
        answers.extend((0..10).map(refused));
        let mut t = scripted(answers);
        let failure = Client::connect(settings(), &mut t, policy(2))
            .err()
            .unwrap();
        let Error::Transport(message) = &failure.error else {
            panic!("{failure:?}")
        };
        assert!(message.contains("after 3 attempts"), "{message}");
        assert_eq!(failure.call.unwrap().attempts, 3);
    }

    #[test]
    fn discovery_is_retried_under_the_same_policy() {
        let dropped = Err(Error::Transport("the connection closed".into()));
        let mut t = scripted(vec![
            Ok(response(503, &[], "")),
            dropped,
            Ok(challenge()),
            Ok(token("t1")),
        ]);
        Client::connect(settings(), &mut t, ClientConfig::default()).unwrap();
        let discovery: Vec<_> = t.sent[..3]
            .iter()
            .map(|r| r.header_value("x-ms-client-request-id"))
            .collect();
        assert!(discovery[0].is_some());
        assert!(
            discovery.iter().all(|id| *id == discovery[0]),
            "one call, one id"
        );
        assert!(t.sent[..3].iter().all(|r| bearer(r).is_none()));
        assert_eq!(t.slept.len(), 2);

        let not_dataverse = response(404, &[], "");
        let mut t = scripted(vec![Ok(not_dataverse)]);
        let failure = Client::connect(settings(), &mut t, ClientConfig::default())
            .err()
            .unwrap();
        assert!(matches!(failure.error, Error::Authority(_)));
        assert_eq!(
            failure.call.unwrap().attempts,
            1,
            "a 404 is an answer, not an outage"
        );
    }

    #[test]
    fn a_call_whose_token_request_fails_reports_the_token_requests_attempts() {
        let mut answers = vec![Ok(challenge()), Ok(token("t1"))];
        answers.extend((0..3).map(|_| Ok(response(503, &[], ""))));
        let mut t = scripted(answers);
        let mut client = Client::connect(settings(), &mut t, policy(2)).unwrap();
        client.transport.now = 1_000 + 3_600;
        let failure = client.who_am_i(&none()).unwrap_err();
        drop(client);
        let call = failure.call.unwrap();
        assert_eq!(call.attempts, 3);
        let last = token_requests(&t).pop().unwrap();
        assert_eq!(
            last.header_value("client-request-id"),
            Some(call.client_request_id.as_str())
        );
        assert!(
            t.sent.iter().all(|r| !r.url.ends_with("WhoAmI")),
            "no Web API request without a token"
        );
    }

    #[test]
    fn retry_after_zero_waits_a_second_each_time() {
        let mut t = script(vec![throttled("0"); 5]);
        let mut client = connect(&mut t);
        let failure = client.who_am_i(&none()).unwrap_err();
        drop(client);
        assert!(
            matches!(failure.error, Error::Throttled { .. }),
            "{failure:?}"
        );
        assert_eq!(failure.call.unwrap().attempts, 5);
        assert_eq!(t.slept, [1_000; 4]);
    }

    #[test]
    fn a_post_whose_connection_was_refused_is_sent_again_without_caution() {
        let refused = || {
            Err(Error::Unsent {
                message: "connection to contoso refused".into(),
                permanent: false,
            })
        };
        let created = response(
            204,
            &[(
                "OData-EntityId",
                "https://contoso.crm.dynamics.com/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)",
            )],
            "",
        );
        let mut t = script(vec![]);
        t.answers.extend([refused(), Ok(created)]);
        let mut client = connect(&mut t);
        let done = client
            .create("accounts", r#"{"name":"A"}"#, &none())
            .unwrap();
        assert_eq!(done.call.attempts, 2, "nothing was sent, so it was safe");

        let mut t = script(vec![]);
        t.answers.extend((0..5).map(|_| refused()));
        let mut client = connect(&mut t);
        let failure = client
            .create("accounts", r#"{"name":"A"}"#, &none())
            .unwrap_err();
        let Error::Unsent { message, .. } = &failure.error else {
            panic!("{failure:?}")
        };
        assert_eq!(failure.call.unwrap().attempts, 5);
        assert!(message.ends_with("refused (after 5 attempts)"), "{message}");
        assert!(!message.contains("may have"), "{message}");
    }

    #[test]
    fn an_untrusted_certificate_or_unknown_host_is_not_retried() {
        let mut t = script(vec![]);
        t.answers.push_back(Err(Error::Unsent {
            message: "TLS with contoso failed (certificate not trusted?)".into(),
            permanent: true,
        }));
        let mut client = connect(&mut t);
        let failure = client.who_am_i(&none()).unwrap_err();
        assert!(matches!(
            failure.error,
            Error::Unsent {
                permanent: true,
                ..
            }
        ));
        assert_eq!(failure.call.unwrap().attempts, 1);
    }

    #[test]
    fn a_post_that_lost_its_connection_says_the_write_may_have_happened() {
        let dropped = || Err(Error::Transport("the connection to contoso closed".into()));
        let mut t = script(vec![]);
        t.answers.extend([dropped(), dropped()]);
        let mut client = connect(&mut t);
        let given = CallOptions {
            client_request_id: Some("create-1".into()),
            ..none()
        };
        let failure = client
            .create("accounts", r#"{"name":"A"}"#, &given)
            .unwrap_err();
        let Error::Transport(message) = &failure.error else {
            panic!("{failure:?}")
        };
        assert_eq!(
            failure.call.as_ref().unwrap().attempts,
            1,
            "a POST is not repeated"
        );
        assert!(
            message.ends_with(
                "; the request may have reached Dataverse: check before repeating it (the write \
                 may have happened; x-ms-client-request-id create-1)"
            ),
            "{message}"
        );
        // A GET is repeated instead, and says nothing of the kind.
        let failure = client.who_am_i(&none()).unwrap_err();
        let Error::Transport(message) = &failure.error else {
            panic!("{failure:?}")
        };
        assert!(!message.contains("may have"), "{message}");
    }

    #[test]
    fn a_401_right_after_a_fresh_token_says_what_to_check() {
        let refused = || {
            response(
                401,
                &[(
                    "WWW-Authenticate",
                    r#"Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, error="invalid_token", error_description="The user is disabled.""#,
                )],
                "",
            )
        };
        // A fresh token, refused at once; and a cached one, refused again after renewal.
        for answers in [vec![refused()], vec![refused(), token("t2"), refused()]] {
            let cached = answers.len() > 1;
            let mut t = script(vec![]);
            let mut client = connect(&mut t);
            if !cached {
                client.cache.clear();
                t_reanswer(&mut client, token("t2"));
            }
            for answer in answers {
                client.transport.answers.push_back(Ok(answer));
            }
            let failure = client.who_am_i(&none()).unwrap_err();
            let Error::Service(f) = &failure.error else {
                panic!("{failure:?}")
            };
            assert_eq!(f.status, 401);
            assert!(f.message.contains("The user is disabled."), "{}", f.message);
            assert!(f.hint.as_deref().unwrap().contains("Application User"));
        }
    }

    /// Queues an answer for the client's transport.
    fn t_reanswer(client: &mut Client<&mut Scripted>, answer: Response) {
        client.transport.answers.push_back(Ok(answer));
    }

    #[test]
    fn a_401_on_a_cached_token_reacquires_once_and_retries_once() {
        let mut t = script(vec![challenge(), token("t2"), who_am_i()]);
        let mut client = connect(&mut t);
        let reply = client.who_am_i(&none()).unwrap();
        assert_eq!(reply.call.attempts, 2);
        drop(client);
        assert_eq!(t.sent.len(), 5);
        assert_eq!(bearer(&t.sent[4]), Some("Bearer t2"));
    }

    #[test]
    fn a_second_401_is_returned_not_looped() {
        let mut t = script(vec![challenge(), token("t2"), challenge()]);
        let mut client = connect(&mut t);
        let failure = client.who_am_i(&none()).unwrap_err();
        drop(client);
        assert!(
            matches!(
                failure.error,
                Error::Service(ServiceFailure { status: 401, .. })
            ),
            "{failure:?}"
        );
        assert_eq!(failure.call.unwrap().attempts, 2);
        assert_eq!(t.sent.len(), 5);
    }

    #[test]
    fn throttling_waits_for_retry_after_then_succeeds_on_attempt_two() {
        let mut t = script(vec![throttled("2"), who_am_i()]);
        let mut client = connect(&mut t);
        let reply = client.who_am_i(&none()).unwrap();
        assert_eq!(reply.call.attempts, 2);
        drop(client);
        assert_eq!(t.slept, [2000]);
        let ids: Vec<_> = t.sent[2..]
            .iter()
            .map(|r| r.header_value("x-ms-client-request-id"))
            .collect();
        assert_eq!(
            ids[0], ids[1],
            "one call keeps its request id across attempts"
        );
    }

    #[test]
    fn a_post_is_retried_on_429_but_never_on_503() {
        let created = response(
            204,
            &[(
                "OData-EntityId",
                "https://contoso.crm.dynamics.com/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)",
            )],
            "",
        );
        let mut t = script(vec![throttled("1"), created, unavailable()]);
        let mut client = connect(&mut t);
        let reply = client
            .create("accounts", r#"{"name":"A"}"#, &none())
            .unwrap();
        assert_eq!(reply.call.attempts, 2);
        assert_eq!(
            reply.value.id.as_deref(),
            Some("00000000-0000-0000-0000-000000000001")
        );
        let failure = client
            .create("accounts", r#"{"name":"B"}"#, &none())
            .unwrap_err();
        drop(client);
        assert!(matches!(
            failure.error,
            Error::Service(ServiceFailure { status: 503, .. })
        ));
        assert_eq!(failure.call.unwrap().attempts, 1);
        assert_eq!(t.slept, [1000]);
    }

    #[test]
    fn a_get_gives_up_after_max_retries_with_backoff() {
        let mut t = script(vec![unavailable(); 10]);
        let policy = RetryPolicy {
            max_retries: 2,
            max_total_wait_ms: 60_000,
        };
        let config = ClientConfig {
            retry: policy,
            ..ClientConfig::default()
        };
        let mut client = Client::connect(settings(), &mut t, config).unwrap();
        let failure = client.who_am_i(&none()).unwrap_err();
        drop(client);
        assert_eq!(failure.call.unwrap().attempts, 3);
        assert_eq!(t.slept.len(), 2);
        assert!(t.slept[1] >= t.slept[0] / 2, "backoff grows: {:?}", t.slept);
    }

    #[test]
    fn repeated_connection_failures_name_the_attempts() {
        let mut t = script(vec![]);
        t.answers
            .extend((0..5).map(|_| Err(Error::Transport("connection to x refused".into()))));
        let mut client = connect(&mut t);
        let failure = client.who_am_i(&none()).unwrap_err();
        let Error::Transport(message) = &failure.error else {
            panic!("{failure:?}")
        };
        assert!(message.contains("after 5 attempts"), "{message}");
    }

    #[test]
    fn throttling_longer_than_the_wait_budget_is_returned_as_throttled() {
        let mut t = script(vec![throttled("300")]);
        let mut client = connect(&mut t);
        let failure = client.who_am_i(&none()).unwrap_err();
        drop(client);
        assert!(matches!(
            failure.error,
            Error::Throttled {
                retry_after_seconds: Some(300),
                ..
            }
        ));
        assert!(t.slept.is_empty());
    }

    #[test]
    fn a_next_link_off_the_org_is_refused_without_sending() {
        let mut t = script(vec![]);
        let mut client = connect(&mut t);
        let failure = client
            .next_page("https://evil.example/api/data/v9.2/accounts", None, &none())
            .unwrap_err();
        drop(client);
        assert!(matches!(failure.error, Error::InvalidRequest(_)));
        assert!(failure.call.is_none());
        assert_eq!(t.sent.len(), 2);
    }

    #[test]
    fn next_page_repeats_the_page_size_preference() {
        let page = response(200, &[], r#"{"value":[{"name":"a"}]}"#);
        let mut t = script(vec![page]);
        let mut client = connect(&mut t);
        let link = "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x";
        assert_eq!(
            client
                .next_page(link, Some(10), &none())
                .unwrap()
                .value
                .row_count,
            1
        );
        drop(client);
        assert_eq!(t.sent[2].url, link);
        assert_eq!(
            t.sent[2].header_value("prefer"),
            Some("odata.maxpagesize=10")
        );
    }

    #[test]
    fn update_never_creates_unless_an_etag_is_given() {
        let mut t = script(vec![response(204, &[], ""), response(204, &[], "")]);
        let mut client = connect(&mut t);
        client
            .update("accounts", "accountnumber='A-1'", "{}", None, &none())
            .unwrap();
        client
            .update(
                "accounts",
                "accountnumber='A-1'",
                "{}",
                Some("W/\"7\""),
                &none(),
            )
            .unwrap();
        drop(client);
        assert_eq!(t.sent[2].header_value("if-match"), Some("*"));
        assert_eq!(t.sent[3].header_value("if-match"), Some("W/\"7\""));
    }

    #[test]
    fn send_refuses_foreign_urls_and_caller_authorization() {
        let mut t = script(vec![]);
        let mut client = connect(&mut t);
        let foreign = client.send(Method::Get, "https://evil.example/x", &[], vec![], &none());
        assert!(matches!(
            foreign.unwrap_err().error,
            Error::InvalidRequest(_)
        ));
        let auth = [("Authorization".to_string(), "Bearer other".to_string())];
        let own = client.send(Method::Get, "accounts", &auth, vec![], &none());
        assert!(matches!(own.unwrap_err().error, Error::InvalidRequest(_)));
        drop(client);
        assert_eq!(t.sent.len(), 2);
    }

    #[test]
    fn relay_passes_a_final_error_answer_through_after_retrying() {
        let not_found = response(
            404,
            &[("Content-Type", "application/json")],
            r#"{"error":{"code":"0x80040217","message":"missing"}}"#,
        );
        let mut t = script(vec![
            not_found,
            unavailable(),
            unavailable(),
            response(200, &[], "{}"),
        ]);
        let mut client = connect(&mut t);
        let reply = client
            .relay(
                Method::Get,
                "/api/data/v9.2/accounts(1)",
                &[],
                vec![],
                &none(),
            )
            .unwrap();
        assert_eq!((reply.value.status, reply.call.attempts), (404, 1));
        assert!(reply.value.body.starts_with(b"{\"error\""));
        // 503 is retried like any idempotent call; the final answer is the 200.
        let reply = client
            .relay(Method::Get, "accounts", &[], vec![], &none())
            .unwrap();
        assert_eq!((reply.value.status, reply.call.attempts), (200, 3));
        let own = [("authorization".to_string(), "Bearer x".to_string())];
        let refused = client.relay(Method::Get, "accounts", &own, vec![], &none());
        assert!(matches!(
            refused.unwrap_err().error,
            Error::InvalidRequest(_)
        ));
    }

    #[test]
    fn relay_reauthenticates_once_on_401_then_passes_the_401_through() {
        let unauthorized = || response(401, &[], "");
        let mut t = script(vec![unauthorized(), token("t2"), unauthorized()]);
        let mut client = connect(&mut t);
        let reply = client
            .relay(Method::Get, "WhoAmI", &[], vec![], &none())
            .unwrap();
        assert_eq!((reply.value.status, reply.call.attempts), (401, 2));
        drop(client);
        assert_eq!(
            t.sent[3].url,
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
        );
        assert_eq!(t.sent[4].header_value("authorization"), Some("Bearer t2"));
    }

    #[test]
    fn discovery_to_an_unknown_login_host_sends_no_credential() {
        let evil = response(
            401,
            &[(
                "WWW-Authenticate",
                "Bearer authorization_uri=https://login.evil.example/tid/oauth2/authorize",
            )],
            "",
        );
        let mut t = Scripted {
            answers: vec![Ok(evil)].into(),
            sent: vec![],
            slept: vec![],
            now: 0,
        };
        let err = Client::connect(settings(), &mut t, ClientConfig::default())
            .err()
            .unwrap()
            .error;
        assert!(matches!(err, Error::Authority(_)));
        assert_eq!(t.sent.len(), 1);
    }

    #[test]
    fn certificate_settings_without_a_store_fail_before_sending() {
        let settings = crate::settings::parse(&format!(
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com/;ClientId=app;Thumbprint={}",
            "AB".repeat(20)
        ))
        .unwrap();
        let mut t = Scripted {
            answers: VecDeque::new(),
            sent: vec![],
            slept: vec![],
            now: 0,
        };
        let failure = Client::connect(settings, &mut t, ClientConfig::default())
            .err()
            .unwrap();
        assert!(failure.call.is_none(), "nothing was sent");
        let err = failure.error;
        assert!(
            matches!(&err, Error::InvalidSettings(m) if m.contains("certificate store")),
            "{err:?}"
        );
        assert!(t.sent.is_empty());
    }
}
