//! Orchestration: the only place that sequences I/O. `Client` owns the
//! settings, the authority, the token cache, the retry policy and a
//! `Transport`; each call gets a token (cached or fresh), sends with retries,
//! and maps the answer. Every call reports its `CallInfo`.

// A `Failure` carries the whole diagnosis (error + call record); failures are
// rare next to the network round trip, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use crate::auth::assertion::{self, AssertionOptions, CachedAssertion};
use crate::auth::certificate::{self, CertificateCredential, HostCertificate};
use crate::auth::managed_identity::{self, Endpoint};
use crate::auth::shared::{self, SharedStore};
use crate::auth::workload_identity::{self, TokenSource};
use crate::auth::{self, AccessToken, Authority, TokenCache, token};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::retry::{self, Decision, Outcome, RetryPolicy};
use crate::secret::Secret;
use crate::settings::{Credential, ManagedIdentityId, Settings};
use crate::transport::Transport;
use crate::webapi::batch::{self, BatchItem, BatchPart};
use crate::webapi::bulk;
use crate::webapi::changes::{self, ChangePage};
use crate::webapi::crud::{self, Created, Row};
use crate::webapi::execute::{self, OperationKind, OperationResult};
use crate::webapi::fetchxml::{self, FetchPage};
use crate::webapi::file::{self, FileChunk, UploadSession};
use crate::webapi::metadata::{self, Attribute, TableInfo};
use crate::webapi::options::RequestOptions;
use crate::webapi::{self, Page, Query, WhoAmI, body_text};

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
    /// A certificate whose key the host holds: the host signs each new
    /// assertion's digest.
    HostCertificate {
        certificate: Box<HostCertificate>,
        options: AssertionOptions,
        assertion: Option<CachedAssertion>,
    },
    /// A managed identity: the platform's identity endpoint issues the
    /// token; Entra ID is never asked directly.
    ManagedIdentity {
        endpoint: Endpoint,
        id: ManagedIdentityId,
    },
    /// A workload identity: every token request carries a federated token,
    /// fetched (or read from its file) again each time.
    Federated(TokenSource),
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
    /// The client id a managed identity's endpoint said the token is for.
    issued_to: Option<String>,
    policy: RetryPolicy,
    /// Table definitions looked up so far, by lower-case entity set and
    /// logical name (a definition changes only with a solution import).
    tables: Vec<TableInfo>,
    /// Column types looked up so far, by table logical name.
    attributes: Vec<(String, Vec<Attribute>)>,
    /// The last `x-ms-dop-hint` Dataverse answered with (ServiceClient's
    /// RecommendedDegreesOfParallelism).
    dop_hint: Option<u32>,
}

impl<T: Transport> Client<T> {
    /// Finds the authority (from the settings, or by discovery) and acquires
    /// a first token, so wrong settings fail here. A failure that sent
    /// anything carries the call record of the step that failed (discovery
    /// or the token request), attempts included.
    ///
    /// When the transport offers a store shared by the application's
    /// instances ([`Transport::shared_store`], the gateway's `wasi:keyvalue`
    /// bucket), the discovered authority and the token are looked up there
    /// first and kept there when acquired; while one instance acquires, the
    /// others wait for its token (a lease in the store, bounded by
    /// [`shared::LEASE_WAIT_MS`]).
    pub fn connect(
        settings: Settings,
        mut transport: T,
        config: ClientConfig,
    ) -> Result<Self, Failure> {
        // The credential is checked before anything is sent: a missing or
        // expired certificate is a settings problem, not a network one.
        let (settings, proof) = prepare(settings, &mut transport, config.assertion)?;
        let managed = matches!(proof, Proof::ManagedIdentity { .. });
        let now = transport.now();
        let stored = match transport.shared_store() {
            Some(store) if !managed => shared_authority(store, &settings, now),
            _ => None,
        };
        let from_store = stored.is_some();
        let (authority, scope) = match auth::authority::from_settings(&settings) {
            // The identity endpoint knows the tenant: no discovery, and the
            // token is asked for the org itself, its `resource`.
            _ if managed => (no_authority(), settings.org_url.clone()),
            Some(authority) => (authority?, auth::authority::default_scope(&settings)),
            None if let Some(found) = stored => found,
            None => {
                let id = crate::uuid::v4(transport.random(), transport.random());
                let request = auth::authority::discovery_request(&settings.org_url)
                    .header("x-ms-client-request-id", id.clone());
                let (answer, call) = send_repeatable(
                    &mut transport,
                    &config.retry,
                    &request,
                    id,
                    retry::decide_repeatable,
                );
                let found = answer
                    .and_then(|response| auth::authority::from_discovery(&response, &settings))
                    .map_err(|error| Failure {
                        error,
                        call: Some(call),
                    })?;
                let now = transport.now();
                if let Some(store) = transport.shared_store() {
                    let record = shared::encode_authority(&found.0.url(), &found.1, now);
                    let _ = store.set(&shared::authority_key(&settings.org_url), &record);
                }
                found
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
            issued_to: None,
            policy: config.retry,
            tables: Vec::new(),
            attributes: Vec::new(),
            dop_hint: None,
        };
        if let Err(failure) = client.token() {
            // An authority another instance found may be what the token
            // request refused (the tenant moved): the next one discovers anew.
            if from_store && let Some(store) = client.transport.shared_store() {
                let _ = store.delete(&shared::authority_key(&client.settings.org_url));
            }
            return Err(failure);
        }
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
            authority: no_authority(),
            scope,
            proof: Proof::External,
            cache: TokenCache::default(),
            last_token_from_cache: false,
            last_acquisition: None,
            issued_to: None,
            policy: config.retry,
            tables: Vec::new(),
            attributes: Vec::new(),
            dop_hint: None,
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
        let request = webapi::who_am_i::request(&self.settings.org_url);
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
        let request = query.request(&self.settings.org_url)?;
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
        let request =
            webapi::page::next_page_request(&self.settings.org_url, next_link, page_size)?;
        let reply = self.call(request, options)?;
        map(reply, |r| webapi::page::parse(&r))
    }

    /// The first page of `query`'s rows, read with change tracking: the last
    /// page carries the delta link that later reads start from.
    pub fn track_changes(
        &mut self,
        query: &Query,
        options: &CallOptions,
    ) -> CallResult<ChangePage> {
        let request = changes::first_request(&self.settings.org_url, query)?;
        let reply = self.call(request, options)?;
        map(reply, |r| changes::parse(&r))
    }

    /// The page at a change read's next link or delta link.
    pub fn changes(
        &mut self,
        link: &str,
        page_size: Option<u32>,
        options: &CallOptions,
    ) -> CallResult<ChangePage> {
        let request = changes::link_request(&self.settings.org_url, link, page_size)?;
        let reply = self.call(request, options)?;
        map(reply, |r| changes::parse(&r))
    }

    pub fn fetch_xml(
        &mut self,
        entity_set: &str,
        fetch_xml: &str,
        page: u32,
        paging_cookie: Option<&str>,
        options: &CallOptions,
    ) -> CallResult<FetchPage> {
        let (request, headers) = fetchxml::page_request(
            &self.settings.org_url,
            entity_set,
            fetch_xml,
            page,
            paging_cookie,
            &options.headers,
        )?;
        let options = CallOptions {
            headers,
            ..options.clone()
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
        map(reply, |r| Ok(crud::parse_created(&r)))
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
        let request =
            crud::update_existing(&self.settings.org_url, entity_set, key, json, if_match)?;
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
        map(reply, |r| Ok(execute::parse_result(&r)))
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
        let reply = self.call_accepting(request, options, batch::is_result)?;
        map(reply, |r| batch::parse_response(&r))
    }

    /// Opens a chunked upload of a file column (see [`crate::file_upload`]).
    pub fn start_upload(
        &mut self,
        entity_set: &str,
        key: &str,
        column: &str,
        file_name: &str,
        options: &CallOptions,
    ) -> CallResult<UploadSession> {
        let request =
            file::upload_start(&self.settings.org_url, entity_set, key, column, file_name)?;
        let reply = self.call(request, options)?;
        let org_url = self.settings.org_url.clone();
        map(reply, |r| file::parse_upload_session(&org_url, &r))
    }

    /// Sends one chunk of an upload; `last` when it reaches the file's size.
    pub fn upload_chunk(
        &mut self,
        request: Request,
        last: bool,
        options: &CallOptions,
    ) -> CallResult<()> {
        let reply = self.call(request, options)?;
        map(reply, |r| file::check_chunk_answer(&r, last))
    }

    /// `length` bytes of a file column's file from `offset`.
    pub fn download_chunk(
        &mut self,
        entity_set: &str,
        key: &str,
        column: &str,
        offset: u64,
        length: u64,
        options: &CallOptions,
    ) -> CallResult<FileChunk> {
        let request = file::download(
            &self.settings.org_url,
            entity_set,
            key,
            column,
            offset,
            length,
        )?;
        let reply = self.call(request, options)?;
        map(reply, |r| file::parse_download(r, offset, length))
    }

    /// A table's definition, by entity set name (`accounts`) or logical
    /// name (`account`), looked up once per client (`EntityDefinitions`).
    pub fn table(&mut self, name: &str, options: &CallOptions) -> CallResult<TableInfo> {
        if let Some(known) = self.tables.iter().find(|t| {
            t.entity_set.eq_ignore_ascii_case(name) || t.logical_name.eq_ignore_ascii_case(name)
        }) {
            return Ok(Reply {
                value: known.clone(),
                call: CallInfo {
                    client_request_id: String::new(),
                    attempts: 0,
                },
            });
        }
        let request = metadata::by_entity_set(&self.settings.org_url, name)?;
        let reply = self.call(request, options)?;
        let reply = match map(reply, |r| metadata::parse_list(&r, name))? {
            Reply {
                value: Some(table),
                call,
            } => Reply { value: table, call },
            Reply { value: None, .. } => {
                let request = metadata::by_logical_name(&self.settings.org_url, name)?;
                match self.call(request, options) {
                    Ok(reply) => map(reply, |r| metadata::parse_one(&r, name))?,
                    Err(Failure {
                        error: Error::NotFound(refused),
                        call,
                    }) => {
                        return Err(Failure {
                            error: metadata::no_such_table(name, refused),
                            call,
                        });
                    }
                    Err(failure) => return Err(failure),
                }
            }
        };
        self.tables.push(reply.value.clone());
        Ok(reply)
    }

    /// A table's columns and their types (by logical name), looked up once
    /// per client.
    pub fn attributes(
        &mut self,
        logical_name: &str,
        options: &CallOptions,
    ) -> CallResult<Vec<Attribute>> {
        if let Some((_, known)) = self.attributes.iter().find(|(t, _)| t == logical_name) {
            return Ok(Reply {
                value: known.clone(),
                call: CallInfo {
                    client_request_id: String::new(),
                    attempts: 0,
                },
            });
        }
        let request = metadata::attributes(&self.settings.org_url, logical_name)?;
        let reply = self.call(request, options)?;
        let reply = map(reply, |r| metadata::parse_attributes(&r))?;
        self.attributes
            .push((logical_name.to_string(), reply.value.clone()));
        Ok(reply)
    }

    /// The parallelism Dataverse last recommended (`x-ms-dop-hint`), if it
    /// has said.
    pub fn recommended_parallelism(&self) -> Option<u32> {
        self.dop_hint
    }

    /// `rows` of one table through a bulk message (`CreateMultiple`,
    /// `UpdateMultiple`, `UpsertMultiple`), `batch_rows` per request (at
    /// most [`bulk::MAX_BATCH_ROWS`]), `parallel` requests at a time
    /// (`None`: as many as Dataverse recommends, `x-ms-dop-hint`, read again
    /// after every wave; 1 until it has said; at most
    /// [`bulk::MAX_PARALLEL`]). Every batch is built before the first is
    /// sent, so a bad row fails the call with nothing written. Then the
    /// batches go in waves (see `call_many`: a throttled batch holds back
    /// the whole wave) and each is reported with the rows it carried: a
    /// batch Dataverse refuses (its rows' own problem) does not stop the
    /// others; a failure no later batch could escape (authentication,
    /// throttling past the retry budget, a connection lost after a POST may
    /// have arrived) stops the call, and the batches of later waves are
    /// reported as not sent. Never a silent partial success: see
    /// [`BulkReport::complete`].
    pub fn bulk(
        &mut self,
        message: bulk::Message,
        table: &TableInfo,
        rows: &[serde_json::Value],
        batch_rows: usize,
        parallel: Option<u32>,
        options: &CallOptions,
    ) -> Result<BulkReport, Error> {
        let ranges = bulk::batches(rows.len(), batch_rows)?;
        check_parallel(parallel)?;
        let requests = ranges
            .iter()
            .map(|range| {
                bulk::request(
                    &self.settings.org_url,
                    table,
                    message,
                    &rows[range.clone()],
                    range.start,
                )
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let created = |response: &Response, targets: usize| match message {
            bulk::Message::Create => bulk::parse_created_ids(response, targets),
            _ => Ok(Vec::new()),
        };
        Ok(self.in_waves(
            ranges,
            requests,
            parallel,
            options,
            Answers::Success,
            &created,
        ))
    }

    /// Deletes rows of one table by key (GUIDs, or alternate keys), in
    /// batches: an elastic table's `DeleteMultiple`, a standard table's
    /// `$batch` of DELETEs (Dataverse has no `DeleteMultiple` for those),
    /// each part's answer checked (a row already gone counts as deleted:
    /// deleting is idempotent). Waves and reports as [`Client::bulk`].
    pub fn delete_multiple(
        &mut self,
        table: &TableInfo,
        keys: &[String],
        batch_rows: usize,
        parallel: Option<u32>,
        options: &CallOptions,
    ) -> Result<BulkReport, Error> {
        let ranges = bulk::batches(keys.len(), batch_rows)?;
        check_parallel(parallel)?;
        let requests = ranges
            .iter()
            .map(|range| {
                let seed = (u128::from(self.transport.random()) << 64)
                    | u128::from(self.transport.random());
                bulk::delete_request(&self.settings.org_url, table, &keys[range.clone()], seed)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let elastic = bulk::is_elastic(table);
        let answers = if elastic {
            Answers::Success
        } else {
            Answers::Also(batch::is_result)
        };
        let deleted = |response: &Response, targets: usize| {
            bulk::parse_deleted(response, elastic, targets).map(|()| Vec::new())
        };
        Ok(self.in_waves(ranges, requests, parallel, options, answers, &deleted))
    }

    /// Sends one request per batch in waves (see [`Client::bulk`]) and
    /// reports each batch: `parse` reads a batch's answer into its ids.
    fn in_waves(
        &mut self,
        ranges: Vec<std::ops::Range<usize>>,
        requests: Vec<Request>,
        parallel: Option<u32>,
        options: &CallOptions,
        answers: Answers,
        parse: &BatchParser,
    ) -> BulkReport {
        let mut requests = requests.into_iter();
        let mut batches = Vec::with_capacity(ranges.len());
        let mut ranges = ranges.into_iter().peekable();
        while ranges.peek().is_some() {
            let width = parallel
                .or(self.dop_hint)
                .unwrap_or(1)
                .clamp(1, bulk::MAX_PARALLEL) as usize;
            let wave: Vec<_> = ranges.by_ref().take(width).collect();
            let sent: Vec<Request> = requests.by_ref().take(wave.len()).collect();
            let mut stopped = false;
            for (range, answer) in wave.into_iter().zip(self.call_many(sent, options, answers)) {
                let outcome = match answer {
                    Ok(reply) => match parse(&reply.value, range.len()) {
                        Ok(ids) => BatchOutcome::Done {
                            ids,
                            call: reply.call,
                        },
                        Err(error) => BatchOutcome::Failed(Failure {
                            error,
                            call: Some(reply.call),
                        }),
                    },
                    Err(failure) => {
                        stopped |= !matches!(
                            failure.error,
                            Error::Service(_)
                                | Error::AccessDenied(_)
                                | Error::NotFound(_)
                                | Error::PreconditionFailed(_)
                                | Error::InvalidRequest(_)
                                | Error::InvalidResponse(_)
                        );
                        BatchOutcome::Failed(failure)
                    }
                };
                batches.push(BulkBatch {
                    rows: range,
                    outcome,
                });
            }
            if stopped {
                batches.extend(ranges.by_ref().map(|rows| BulkBatch {
                    rows,
                    outcome: BatchOutcome::NotSent,
                }));
            }
        }
        BulkReport { batches }
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
        let request = webapi::send::request(&self.settings.org_url, method, path, headers, body)?;
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
        let request = webapi::send::request(&self.settings.org_url, method, path, headers, body)?;
        self.call_answering(request, options, Answers::Any)
    }

    /// Metadata of the current token, acquiring one if the cache has none usable.
    pub fn token_info(&mut self) -> Result<TokenInfo, Failure> {
        self.token()?;
        let current = self.cache.current();
        let expires_at = current.map_or(0, |t| t.expires_at);
        let (authority, tenant_id, client_id) = match &self.proof {
            // What the identity endpoint said; the tenant only if the token
            // names it (the endpoint does not).
            Proof::ManagedIdentity { endpoint, .. } => (
                endpoint.url().to_string(),
                current
                    .and_then(|t| managed_identity::token_tenant(&t.value))
                    .unwrap_or_default(),
                self.issued_to
                    .clone()
                    .unwrap_or_else(|| self.settings.client_id.clone()),
            ),
            _ => (
                self.authority.url(),
                self.authority.tenant.clone(),
                self.settings.client_id.clone(),
            ),
        };
        Ok(TokenInfo {
            expires_at,
            authority,
            tenant_id,
            client_id,
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
        let mut pending = self.prepare(request, options, options.client_request_id.as_deref())?;
        loop {
            let (token, from_cache) = match self.token() {
                Ok(token) => (token, self.last_token_from_cache),
                Err(failure) => return Err(token_failure(failure, &pending)),
            };
            pending.call.attempts += 1;
            webapi::authorize_in_place(&mut pending.request, &token);
            let sent = self.transport.send(&pending.request);
            match self.step(&mut pending, &token, from_cache, sent, answers) {
                Step::Answer(result) => return result,
                Step::Again(None) => {}
                Step::Again(Some(ms)) => {
                    self.transport.sleep(ms);
                    pending.waited_ms = pending.waited_ms.saturating_add(ms);
                }
            }
        }
    }

    /// Several calls at once: every attempt sends the calls still pending
    /// together (`Transport::send_all`), and the ones to retry wait
    /// together, as long as the longest wait any of them was told (one
    /// throttle gate: when Dataverse says "slow down" to one request of the
    /// wave, none of the others goes ahead of it). Each call keeps its own
    /// attempts, its own request id (the first takes `options`' id, if
    /// any) and its own retry budget. Answers in the requests' order.
    fn call_many(
        &mut self,
        requests: Vec<Request>,
        options: &CallOptions,
        answers: Answers,
    ) -> Vec<CallResult<Response>> {
        let mut results: Vec<Option<CallResult<Response>>> = Vec::with_capacity(requests.len());
        let mut pending = Vec::with_capacity(requests.len());
        for (index, request) in requests.into_iter().enumerate() {
            let id = options.client_request_id.as_deref().filter(|_| index == 0);
            match self.prepare(request, options, id) {
                Ok(p) => {
                    results.push(None);
                    pending.push((index, p));
                }
                Err(failure) => results.push(Some(Err(failure))),
            }
        }
        while !pending.is_empty() {
            let (token, from_cache) = match self.token() {
                Ok(token) => (token, self.last_token_from_cache),
                Err(failure) => {
                    for (index, p) in pending.drain(..) {
                        results[index] = Some(Err(token_failure(failure.clone(), &p)));
                    }
                    break;
                }
            };
            let wave: Vec<Request> = pending
                .iter_mut()
                .map(|(_, p)| {
                    p.call.attempts += 1;
                    webapi::authorize(p.request.clone(), &token)
                })
                .collect();
            let replies = self.transport.send_all(&wave);
            let mut again = Vec::new();
            let mut gate: Option<u64> = None;
            for ((index, mut p), sent) in pending.drain(..).zip(replies) {
                match self.step(&mut p, &token, from_cache, sent, answers) {
                    Step::Answer(result) => results[index] = Some(result),
                    Step::Again(wait) => {
                        if let Some(ms) = wait {
                            gate = Some(gate.unwrap_or(0).max(ms));
                        }
                        again.push((index, p, wait.is_some()));
                    }
                }
            }
            if let Some(ms) = gate {
                self.transport.sleep(ms);
            }
            pending = again
                .into_iter()
                .map(|(index, mut p, waited)| {
                    if waited {
                        p.waited_ms = p.waited_ms.saturating_add(gate.unwrap_or(0));
                    }
                    (index, p)
                })
                .collect();
        }
        results
            .into_iter()
            .map(|r| r.expect("every call answered"))
            .collect()
    }

    /// A call ready to send: the per-call headers applied and its request id.
    fn prepare(
        &mut self,
        request: Request,
        options: &CallOptions,
        client_request_id: Option<&str>,
    ) -> Result<Pending, Failure> {
        let request = options.headers.apply(request)?;
        let client_request_id = match client_request_id {
            Some(id) => check_request_id(id)?,
            None => crate::uuid::v4(self.transport.random(), self.transport.random()),
        };
        let request = request.header("x-ms-client-request-id", client_request_id.clone());
        Ok(Pending {
            idempotent: retry::is_idempotent(request.method),
            request,
            call: CallInfo {
                client_request_id,
                attempts: 0,
            },
            waited_ms: 0,
            reauthenticated: false,
        })
    }

    /// What one attempt's answer (`sent`, with the token it carried) means
    /// for its call: the result, or send again (after a wait, or at once
    /// with a new token after a 401 on a cached one: it was revoked or the
    /// clock is off).
    fn step(
        &mut self,
        pending: &mut Pending,
        token: &Secret,
        from_cache: bool,
        sent: Result<Response, Error>,
        answers: Answers,
    ) -> Step {
        if let Ok(response) = &sent
            && let Some(hint) = response.header("x-ms-dop-hint")
            && let Ok(hint) = hint.trim().parse::<u32>()
            && hint > 0
        {
            self.dop_hint = Some(hint);
        }
        let accept = |response: &Response| match answers {
            Answers::Success | Answers::Any => false,
            Answers::Also(accept) => accept(response),
        };
        let call = pending.call.clone();
        let answer = match sent {
            Ok(response) if (200..300).contains(&response.status) || accept(&response) => {
                return Step::Answer(Ok(Reply {
                    value: response,
                    call,
                }));
            }
            Ok(response) if response.status == 401 && from_cache && !pending.reauthenticated => {
                self.cache.clear();
                self.forget_shared(token);
                pending.reauthenticated = true;
                return Step::Again(None);
            }
            Ok(response) => Ok(response),
            Err(error @ (Error::Transport(_) | Error::Unsent { .. })) => Err(error),
            // Not a network failure (an oversized body, a rejected header): final.
            Err(error) => {
                return Step::Answer(Err(Failure {
                    error,
                    call: Some(call),
                }));
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
            pending.idempotent,
            call.attempts,
            pending.waited_ms,
            outcome,
            random,
        ) {
            Decision::RetryAfterMs(ms) => Step::Again(Some(ms)),
            Decision::GiveUp => {
                if let (Answers::Any, Ok(response)) = (answers, &answer) {
                    return Step::Answer(Ok(Reply {
                        value: response.clone(),
                        call,
                    }));
                }
                let error = match answer {
                    // A 401 on a cached token was re-acquired above, so
                    // this one came right after a fresh token.
                    Ok(response) if response.status == 401 => {
                        webapi::error::refused_fresh_token(&response)
                    }
                    Ok(response) => webapi::parse_error(&response),
                    Err(Error::Transport(message)) => {
                        Error::Transport(transport_message(message, &call, pending.idempotent))
                    }
                    // Nothing was sent: no caution about a write.
                    Err(Error::Unsent { message, permanent }) => Error::Unsent {
                        message: with_attempts(message, &call),
                        permanent,
                    },
                    Err(error) => error,
                };
                Step::Answer(Err(Failure {
                    error,
                    call: Some(call),
                }))
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
            return match self.acquire_shared(now, Wait::No) {
                Ok(Some(fresh)) => Ok(fresh),
                // Another instance is renewing, or the renewal failed: the
                // cached token is still good.
                Ok(None) | Err(_) => {
                    self.last_token_from_cache = true;
                    Ok(cached.value)
                }
            };
        }
        match self.acquire_shared(now, Wait::Bounded) {
            Ok(Some(token)) => Ok(token),
            Ok(None) => self.acquire(now),
            Err(failure) => Err(failure),
        }
    }

    /// A token through the shared store, if there is one: the stored token
    /// when it is usable (and, when renewing, newer than ours); otherwise
    /// the lease, then a token from Entra ID, kept in the store for the
    /// others. An instance that finds the lease taken waits for the
    /// holder's token (`Wait::Bounded`, at most [`shared::LEASE_WAIT_MS`];
    /// the lease going away without a token sends it back to the lease) or
    /// gives up at once (`Wait::No`: `Ok(None)`). Without a store it
    /// acquires directly.
    fn acquire_shared(&mut self, now: u64, wait: Wait) -> Result<Option<Secret>, Failure> {
        if self.transport.shared_store().is_none() {
            return self.acquire(now).map(Some);
        }
        let key = self.shared_key();
        let mut waited_ms = 0;
        loop {
            let now = self.transport.now();
            if let Some(token) = self.stored_token(&key, now, wait) {
                return Ok(Some(token));
            }
            let lease = shared::lease_key(&key, now);
            let held = match self
                .transport
                .shared_store()
                .map(|s| s.increment(&lease, 1))
            {
                Some(Ok(count)) => count == 1,
                // A store that cannot lease: acquire as if alone.
                _ => true,
            };
            if held || waited_ms >= shared::LEASE_WAIT_MS {
                let fresh = self.acquire(now);
                let record = match (&fresh, self.cache.current()) {
                    (Ok(_), Some(token)) => Some(shared::encode_token(token)),
                    _ => None,
                };
                if let Some(store) = self.transport.shared_store() {
                    if let Some(record) = record {
                        let _ = store.set(&key, &record);
                    }
                    if held {
                        let _ = store.delete(&lease);
                    }
                }
                return fresh.map(Some);
            }
            if wait == Wait::No {
                return Ok(None);
            }
            // Someone else holds the lease: wait for its token, or for the
            // lease to go (its holder failed) and contest it again.
            loop {
                self.transport.sleep(shared::LEASE_POLL_MS);
                waited_ms += shared::LEASE_POLL_MS;
                let now = self.transport.now();
                if let Some(token) = self.stored_token(&key, now, wait) {
                    return Ok(Some(token));
                }
                let lease_gone = self
                    .transport
                    .shared_store()
                    .is_none_or(|s| matches!(s.get(&lease), Ok(None)));
                if lease_gone || waited_ms >= shared::LEASE_WAIT_MS {
                    break;
                }
            }
        }
    }

    /// The store's token for `key` if usable at `now`, adopted into this
    /// instance's cache. When renewing (`Wait::No`), only a token newer
    /// than ours counts.
    fn stored_token(&mut self, key: &str, now: u64, wait: Wait) -> Option<Secret> {
        let bytes = self.transport.shared_store()?.get(key).ok()??;
        let token = shared::decode_token(&bytes, now)?;
        let ours = self.cache.current().map(|t| t.value.expose());
        if wait == Wait::No && ours == Some(token.value.expose()) {
            return None;
        }
        let value = token.value.clone();
        self.cache.store(token);
        // Found, not acquired: a 401 on it is answered by a fresh request.
        self.last_token_from_cache = true;
        Some(value)
    }

    /// Drops `refused` from the shared store (a 401 said it no longer
    /// works), unless another instance has already replaced it.
    fn forget_shared(&mut self, refused: &Secret) {
        let key = self.shared_key();
        let Some(store) = self.transport.shared_store() else {
            return;
        };
        let stored = store.get(&key).ok().flatten();
        let same = stored
            .and_then(|bytes| shared::decode_token(&bytes, 0))
            .is_some_and(|token| token.value.expose() == refused.expose());
        if same {
            let _ = store.delete(&key);
        }
    }

    /// Where this client's token lives in the shared store: the authority
    /// (for a managed identity, its endpoint), the client id and the scope.
    fn shared_key(&self) -> String {
        let issuer = match &self.proof {
            Proof::ManagedIdentity { endpoint, .. } => endpoint.url().to_string(),
            _ => self.authority.url(),
        };
        shared::token_key(&issuer, &self.settings.client_id, &self.scope)
    }

    /// Asks Entra ID for a token and caches it. A token request changes
    /// nothing at Entra ID, so it is repeated under the same policy as an
    /// idempotent Web API call (429 after `Retry-After`; 502/503/504 and
    /// dropped connections with backoff); its refusals (400/401) are final.
    fn acquire(&mut self, now: u64) -> Result<Secret, Failure> {
        if let Proof::ManagedIdentity { endpoint, id } = &self.proof {
            let request = managed_identity::request(endpoint, &self.settings.org_url, id);
            let request_id = crate::uuid::v4(self.transport.random(), self.transport.random());
            let request = request.header("x-ms-client-request-id", request_id.clone());
            let (answer, call) = send_repeatable(
                &mut self.transport,
                &self.policy,
                &request,
                request_id,
                endpoint.retry_rule(),
            );
            let issued = answer
                .map_err(|error| managed_identity::unreachable(endpoint, error))
                .and_then(|response| {
                    managed_identity::parse_response(endpoint, id, &response, now)
                });
            return match issued {
                Ok(issued) => {
                    self.issued_to = issued.client_id;
                    Ok(self.keep(issued.token, call))
                }
                Err(error) => Err(Failure {
                    error,
                    call: Some(call),
                }),
            };
        }
        let federated = matches!(self.proof, Proof::Federated(_));
        let request = match &mut self.proof {
            Proof::External | Proof::ManagedIdentity { .. } => {
                return Err(external_token_needed().into());
            }
            Proof::Federated(source) => {
                let jwt = federated_token(&mut self.transport, &self.policy, source)?;
                token::client_assertion_request(
                    &self.authority,
                    &self.settings.client_id,
                    &jwt,
                    &self.scope,
                )
            }
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
            // Only with a transport that signs (`load_proof`); the check
            // lets a component that cannot sign drop this arm's code.
            Proof::HostCertificate { .. } if !self.transport.host_signs() => {
                return Err(crate::transport::no_signer().into());
            }
            Proof::HostCertificate {
                certificate,
                options,
                assertion,
            } => {
                let reusable = assertion.as_ref().filter(|a| a.is_reusable(now));
                let jwt = match reusable {
                    Some(cached) => cached.jwt.clone(),
                    None => {
                        let jwt = host_signed_assertion(
                            &mut self.transport,
                            certificate,
                            &self.settings.client_id,
                            &self.authority.token_endpoint(),
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
        let (answer, call) = send_repeatable(
            &mut self.transport,
            &self.policy,
            &request,
            id,
            retry::decide_repeatable,
        );
        match answer.and_then(|response| token::parse_response(&response, now)) {
            Ok(token) => Ok(self.keep(token, call)),
            Err(error) => Err(Failure {
                error: if federated {
                    workload_identity::refine(error)
                } else {
                    error
                },
                call: Some(call),
            }),
        }
    }

    /// Caches a fresh token and the call that acquired it.
    fn keep(&mut self, token: AccessToken, call: CallInfo) -> Secret {
        let value = token.value.clone();
        self.cache.store(token);
        self.last_token_from_cache = false;
        self.last_acquisition = Some(call);
        value
    }
}

/// What a bulk call did, batch by batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkReport {
    pub batches: Vec<BulkBatch>,
}

impl BulkReport {
    /// Whether every row was written.
    pub fn complete(&self) -> bool {
        self.batches
            .iter()
            .all(|b| matches!(b.outcome, BatchOutcome::Done { .. }))
    }

    /// The rows of the batches that failed or were not sent.
    pub fn unwritten_rows(&self) -> usize {
        self.batches
            .iter()
            .filter(|b| !matches!(b.outcome, BatchOutcome::Done { .. }))
            .map(|b| b.rows.len())
            .sum()
    }
}

/// One batch: the rows it carried (indexes into the call's rows) and what
/// became of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkBatch {
    pub rows: std::ops::Range<usize>,
    pub outcome: BatchOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Written; for `CreateMultiple` the new ids, in the rows' order.
    Done { ids: Vec<String>, call: CallInfo },
    /// Refused or lost: the error says which (after a lost connection the
    /// rows may or may not have been written).
    Failed(Failure),
    /// Not sent: an earlier batch failed in a way every later one would.
    NotSent,
}

/// Whether an instance that finds another holding the lease waits for its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// A first token: wait (bounded) rather than ask Entra ID again.
    Bounded,
    /// A renewal while the cached token still works: never wait.
    No,
}

/// The authority another instance discovered for the org, checked against
/// the settings as a discovered one is (its host must be trusted; the
/// tenant is whatever the org's challenge named), with the org's scope.
fn shared_authority(
    store: &mut dyn SharedStore,
    settings: &Settings,
    now: u64,
) -> Option<(Authority, String)> {
    let bytes = store
        .get(&shared::authority_key(&settings.org_url))
        .ok()??;
    let (url, scope) = shared::decode_authority(&bytes, now)?;
    // Only the org's own scope: a record naming another resource would get
    // the org a token that is not for it.
    if scope != auth::authority::default_scope(settings) {
        return None;
    }
    let authority = auth::authority::checked(&url, settings).ok()?;
    Some((authority, scope))
}

/// The federated token for one token request: the token file read again
/// (the platform rotates it), or a fresh OIDC token from GitHub Actions.
fn federated_token<T: Transport>(
    transport: &mut T,
    policy: &RetryPolicy,
    source: &TokenSource,
) -> Result<Secret, Failure> {
    match source {
        TokenSource::File(path) => {
            let bytes = transport.read_file(path, workload_identity::MAX_TOKEN_FILE_BYTES)?;
            Ok(workload_identity::read_token(path, &bytes)?)
        }
        TokenSource::GitHubActions { url, token } => {
            let request = workload_identity::github_request(
                url,
                token,
                workload_identity::TOKEN_EXCHANGE_AUDIENCE,
            );
            let id = crate::uuid::v4(transport.random(), transport.random());
            let (answer, call) =
                send_repeatable(transport, policy, &request, id, retry::decide_repeatable);
            answer
                .and_then(|response| workload_identity::parse_github_response(&response, token))
                .map_err(|error| Failure {
                    error,
                    call: Some(call),
                })
        }
    }
}

/// The authority of a client that never asks Entra ID itself (host-supplied
/// tokens, a managed identity).
fn no_authority() -> Authority {
    Authority {
        host: String::new(),
        tenant: String::new(),
        https: true,
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
        Proof::External | Proof::ManagedIdentity { .. } | Proof::Federated(_) => {
            return Err(external_token_needed());
        }
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
        Proof::HostCertificate { .. } if !transport.host_signs() => {
            return Err(crate::transport::no_signer());
        }
        Proof::HostCertificate {
            certificate,
            options,
            ..
        } => {
            let now = transport.now();
            let jwt = host_signed_assertion(
                transport,
                &certificate,
                &settings.client_id,
                &authority.token_endpoint(),
                now,
                options,
            )?;
            token::client_assertion_request(authority, &settings.client_id, &jwt, scope)
        }
    };
    let id = crate::uuid::v4(transport.random(), transport.random());
    Ok(request.header(token::CLIENT_REQUEST_ID, id))
}

/// A new assertion for a certificate whose key the host holds: the header
/// and claims built here, only their SHA-256 handed to the host's signer.
fn host_signed_assertion<T: Transport>(
    transport: &mut T,
    certificate: &HostCertificate,
    client_id: &str,
    token_endpoint: &str,
    now: u64,
    options: AssertionOptions,
) -> Result<Secret, Error> {
    let jti = crate::uuid::v4(transport.random(), transport.random());
    let message = assertion::signing_input(
        certificate.der(),
        &certificate.chain,
        client_id,
        token_endpoint,
        &jti,
        now,
        options,
    )?;
    let digest = assertion::signing_digest(&message);
    let signature = transport.host_sign(&certificate.key_id, options.algorithm, &digest)?;
    // An RSA signature is as long as the key's modulus: anything else (an
    // empty answer, a truncated one, a key other than the certificate's)
    // would only come back from Entra ID as a refused assertion.
    if signature.len() != certificate.signature_len {
        return Err(Error::InvalidResponse(format!(
            "the host's signer returned a {}-byte signature for {}; the certificate's {}-bit \
             key signs {} bytes",
            signature.len(),
            certificate.key_id,
            certificate.signature_len * 8,
            certificate.signature_len
        )));
    }
    Ok(assertion::with_signature(&message, &signature))
}

/// When to send a request that changes nothing once more.
type Repeat = fn(&RetryPolicy, u32, u64, Outcome, u64) -> Decision;

/// Sends a request that carries no Dataverse token and changes nothing —
/// tenant discovery, a token request — until `decide` gives up (usually
/// `retry::decide_repeatable`, the policy of an idempotent Web API call).
/// Returns the last answer whatever its status (the caller reads it), or
/// the last transport error (naming the attempts when there were several),
/// and the call record.
fn send_repeatable<T: Transport>(
    transport: &mut T,
    policy: &RetryPolicy,
    request: &Request,
    client_request_id: String,
    decide: Repeat,
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
        match decide(policy, call.attempts, waited_ms, outcome, random) {
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

/// The settings as the client uses them and its proof of identity: a
/// managed identity's endpoint and a workload identity's token source come
/// from the environment the host passes (and may complete the settings:
/// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`); the other
/// credentials are loaded as for a standalone token request.
fn prepare<T: Transport>(
    settings: Settings,
    transport: &mut T,
    options: AssertionOptions,
) -> Result<(Settings, Proof), Error> {
    match &settings.credential {
        Credential::ManagedIdentity(id) => {
            let id = id.clone();
            let endpoint = Endpoint::from_environment(|name| transport.environment_variable(name))?;
            Ok((settings, Proof::ManagedIdentity { endpoint, id }))
        }
        Credential::WorkloadIdentity(source) => {
            let source = source.clone();
            let (settings, source) = workload_identity::resolve(settings, &source, |name| {
                transport.environment_variable(name)
            })?;
            Ok((settings, Proof::Federated(source)))
        }
        _ => {
            let proof = load_proof(&settings, transport, options)?;
            Ok((settings, proof))
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
        // The host holds the key: only its certificate comes in.
        Credential::HostKey(_) if !transport.host_signs() => {
            return Err(crate::transport::no_signer());
        }
        Credential::HostKey(key_id) => {
            let chain = transport.host_certificate(key_id)?;
            return Ok(Proof::HostCertificate {
                certificate: Box::new(certificate::from_host(key_id, chain, now)?),
                options,
                assertion: None,
            });
        }
        Credential::ExternalToken => return Ok(Proof::External),
        // Not an Entra ID token request the host could send itself.
        Credential::ManagedIdentity(_) | Credential::WorkloadIdentity(_) => {
            return Err(Error::InvalidSettings(
                "AuthType=ManagedIdentity and AuthType=WorkloadIdentity get their tokens in \
                 client.connect; the auth interface builds token requests for ClientSecret and \
                 Certificate only"
                    .into(),
            ));
        }
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

/// One call in progress: its request (with the per-call headers and its
/// request id) and what its attempts have cost so far.
struct Pending {
    request: Request,
    idempotent: bool,
    call: CallInfo,
    waited_ms: u64,
    reauthenticated: bool,
}

/// What an attempt's answer means for its call.
enum Step {
    Answer(CallResult<Response>),
    /// Send again: after this wait, or at once (`None`, a renewed token).
    Again(Option<u64>),
}

/// Reads one batch's answer (for its number of rows) into the ids written.
type BatchParser<'a> = dyn Fn(&Response, usize) -> Result<Vec<String>, Error> + 'a;

/// A bulk call's width, when the caller gives one: 1..=52.
fn check_parallel(parallel: Option<u32>) -> Result<(), Error> {
    if parallel.is_some_and(|n| !(1..=bulk::MAX_PARALLEL).contains(&n)) {
        return Err(Error::InvalidRequest(format!(
            "parallel requests must be 1..={}",
            bulk::MAX_PARALLEL
        )));
    }
    Ok(())
}

/// A failed token request reports its own wire record (Entra ID's request
/// id and attempts): that is where the call failed.
fn token_failure(failure: Failure, pending: &Pending) -> Failure {
    Failure {
        error: failure.error,
        call: failure.call.or(Some(pending.call.clone())),
    }
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
#[path = "client_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "identity_client_tests.rs"]
mod identity_tests;

#[cfg(test)]
#[path = "shared_client_tests.rs"]
mod shared_tests;

#[cfg(test)]
#[path = "bulk_client_tests.rs"]
mod bulk_tests;
