//! [`Dataverse`]: the handle a Rust service embeds. Cheap to clone, called
//! concurrently from async code, one token for all of it.
//!
//! How the token is shared: one *owner* instance holds the credential
//! (connection string, certificate store) and is the only one that ever talks
//! to Entra ID. Calls run on *worker* instances made with the component's
//! external-token mode (`connect-with-token`): the host hands each worker the
//! owner's current token and replaces it (`set-access-token`) when the owner
//! renews. Workers are kept in an idle pool and reused; a worker whose call
//! trapped is dropped, so the next call runs on a fresh instance. Nothing here
//! needs more than standard WASI from the component: a host without this
//! module can still use `connect` alone.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use crate::instance_pool::{InstancePool, Lease};
use crate::runtime::Runtime;
use crate::session::{
    CallError, ClientOptions, DEFAULT_CLIENT_OPTIONS, ErrorKind, RequestOptions, Session, TokenInfo,
};
use crate::trace;
use crate::upstream::Upstream;

/// The component renews a token when fewer than this many seconds remain;
/// the host asks the owner for a new one at the same moment, so workers
/// never hold a token the component would refuse as expired.
use dataverse_wasm::auth::cache::RENEW_BEFORE_EXPIRY_SECS;

/// The body of [`Dataverse::with`], for calls written in place: `$call`
/// (an expression of `$session: &mut Session`) runs on a worker holding a
/// valid token, once more after a refused token, and the worker goes back
/// to the pool unless its instance trapped. A macro rather than a closure:
/// a future made from an async closure that borrows its arguments is not
/// provably `Send` for rustc, and the handle's calls must be spawnable.
macro_rules! on_worker {
    ($dataverse:expr, |$session:ident| $call:expr) => {{
        let dataverse: &$crate::pool::Dataverse = $dataverse;
        async move {
            let mut checkout = dataverse.checkout().await?;
            let mut answer = {
                let $session = checkout.session();
                $call.await
            };
            if $crate::pool::token_refused(&answer) {
                dataverse.renew_refused(&mut checkout).await?;
                let $session = checkout.session();
                answer = $call.await;
            }
            checkout.finish(&answer);
            answer
        }
    }};
}
pub(crate) use on_worker;

/// How a [`Dataverse`] handle is set up.
#[derive(Clone)]
pub struct DataverseConfig {
    /// Mapped read-only into the owner for `AuthType=Certificate`.
    pub certificate_store: Option<PathBuf>,
    /// Options of every instance (timeouts, retries, response cap).
    pub options: ClientOptions,
    /// Worker instances alive at once; further calls wait for one. Keep the
    /// sum over all handles of a runtime (plus one owner each) within
    /// [`crate::Limits::max_instances`].
    pub max_workers: usize,
}

impl Default for DataverseConfig {
    fn default() -> Self {
        DataverseConfig {
            certificate_store: None,
            options: DEFAULT_CLIENT_OPTIONS,
            max_workers: 32,
        }
    }
}

/// Counters of a handle, for tests and dashboards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker instances created so far (a trap costs one more).
    pub workers_created: u64,
    /// Tokens the owner handed out (1 until the first renewal).
    pub tokens_shared: u64,
    /// Workers waiting in the idle pool now.
    pub idle_workers: usize,
}

/// A connected Dataverse client for concurrent async code. Clone it freely:
/// clones share the owner, the token and the worker pool.
///
/// Its calls (in `calls`) take and return serde values; [`Dataverse::with`]
/// runs any [`Session`] call on a pooled worker.
#[derive(Clone)]
pub struct Dataverse {
    inner: Arc<Inner>,
    /// Dataverse headers for every call made through this clone
    /// ([`Dataverse::with_request_options`]).
    options: Option<Arc<RequestOptions>>,
}

struct Inner {
    runtime: Arc<Runtime>,
    upstream: Arc<dyn Upstream>,
    config: DataverseConfig,
    /// Kept to reconnect the owner if its instance traps. Never printed.
    connection_string: String,
    org_url: String,
    /// `None` after the owner trapped: reconnected on the next renewal.
    owner: tokio::sync::Mutex<Option<Session>>,
    token: Mutex<SharedToken>,
    workers: Arc<InstancePool<Worker>>,
    /// Owned permits: a `Checkout` (a row stream's, say) holds its slot
    /// without borrowing the handle.
    slots: Arc<Semaphore>,
}

/// The token every worker uses. `generation` changes with the token, so a
/// worker knows whether it must be given the new one.
#[derive(Clone)]
struct SharedToken {
    value: Arc<str>,
    expires_at: u64,
    generation: u64,
}

impl std::fmt::Debug for SharedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SharedToken(***, expires_at {}, generation {})",
            self.expires_at, self.generation
        )
    }
}

struct Worker {
    session: Session,
    generation: u64,
}

/// A worker taken for one call (or one row stream), with its slot. Dropped
/// without [`Checkout::finish`], the instance is discarded: the safe end
/// when a call was cut short in an unknown state.
pub(crate) struct Checkout {
    worker: Lease<Worker>,
    _slot: OwnedSemaphorePermit,
}

impl Checkout {
    pub(crate) fn session(&mut self) -> &mut Session {
        &mut self.worker.session
    }

    /// Returns the worker to the pool, unless `result` says its instance
    /// trapped (it may be in any state).
    pub(crate) fn finish<R>(self, result: &Result<R, CallError>) {
        if !matches!(result, Err(error) if error.kills_instance()) {
            self.worker.keep();
        }
    }
}

impl Dataverse {
    /// Connects (discovery + first token) with default settings. The
    /// upstream is where the guest's HTTP goes: `Arc::new(Network::new(…)?)`
    /// for the real services, or the in-process fake as here.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dataverse_fake::{Fake, demo_connection_string};
    /// use dataverse_host::{Dataverse, Runtime};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let runtime = Arc::new(Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// let fake = Fake::demo();
    /// let dataverse = Dataverse::connect(runtime, fake.clone(), &demo_connection_string()).await?;
    /// assert_eq!(dataverse.org_url(), "https://contoso.crm.dynamics.com");
    /// assert_eq!(fake.stats().token_requests, 1, "connecting got the token");
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        runtime: Arc<Runtime>,
        upstream: Arc<dyn Upstream>,
        connection_string: &str,
    ) -> Result<Dataverse, CallError> {
        Dataverse::connect_with(
            runtime,
            upstream,
            connection_string,
            DataverseConfig::default(),
        )
        .await
    }

    /// Connects the owner instance now, so wrong settings or credentials fail
    /// here and not on the first call.
    pub async fn connect_with(
        runtime: Arc<Runtime>,
        upstream: Arc<dyn Upstream>,
        connection_string: &str,
        config: DataverseConfig,
    ) -> Result<Dataverse, CallError> {
        let span = trace::call_span("connect", None);
        let connected = Dataverse::connect_owner(runtime, upstream, connection_string, config)
            .instrument(span.clone())
            .await;
        let call = connected.as_ref().err().and_then(trace::error_call);
        trace::record(&span, call, &connected);
        connected
    }

    async fn connect_owner(
        runtime: Arc<Runtime>,
        upstream: Arc<dyn Upstream>,
        connection_string: &str,
        config: DataverseConfig,
    ) -> Result<Dataverse, CallError> {
        let org_url = runtime.parse_settings(connection_string).await?.url;
        let mut owner = runtime
            .connect_with(
                upstream.clone(),
                config.certificate_store.as_deref(),
                connection_string,
                config.options,
            )
            .await?;
        let token = read_token(&mut owner, 1).await?;
        // Every worker may idle: `slots` bounds how many exist.
        let workers = InstancePool::new(config.max_workers.max(1), Duration::ZERO);
        Ok(Dataverse {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.max_workers.max(1))),
                runtime,
                upstream,
                config,
                connection_string: connection_string.to_string(),
                org_url,
                owner: tokio::sync::Mutex::new(Some(owner)),
                token: Mutex::new(token),
                workers,
            }),
            options: None,
        })
    }

    /// The organization's origin, e.g. `https://contoso.crm.dynamics.com`.
    pub fn org_url(&self) -> &str {
        &self.inner.org_url
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            workers_created: self.inner.workers.created(),
            tokens_shared: lock(&self.inner.token).generation,
            idle_workers: self.inner.workers.idle(),
        }
    }

    /// A clone of this handle whose calls send `options` (impersonation,
    /// `Prefer: return=representation`, annotations, …). The clone shares
    /// everything else; the original keeps its own options.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = std::sync::Arc::new(dataverse_host::Runtime::from_wasm(dataverse_artifacts::CLIENT)?);
    /// # let dataverse = dataverse_host::Dataverse::connect(runtime, dataverse_fake::Fake::demo(), &dataverse_fake::demo_connection_string()).await?;
    /// use dataverse_host::RequestOptions;
    /// let returning = dataverse.with_request_options(RequestOptions {
    ///     return_representation: true,
    ///     ..RequestOptions::default()
    /// });
    /// let created = returning.create("accounts", &serde_json::json!({"name": "Litware"})).await?;
    /// assert_eq!(created.row.unwrap()["name"], "Litware");
    /// # Ok(()) }
    /// ```
    pub fn with_request_options(&self, options: RequestOptions) -> Dataverse {
        Dataverse {
            inner: self.inner.clone(),
            options: Some(Arc::new(options)),
        }
    }

    /// The request options of this clone, for the component's calls.
    pub(crate) fn request_options(&self) -> Option<&RequestOptions> {
        self.options.as_deref()
    }

    /// Runs `call` on a worker holding a valid token. If Dataverse refuses
    /// the token (revoked), the owner renews it and `call` runs once more; a
    /// call that trapped is not repeated (it may have had effects) and its
    /// instance is replaced.
    pub async fn with<R>(
        &self,
        mut call: impl AsyncFnMut(&mut Session) -> Result<R, CallError>,
    ) -> Result<R, CallError> {
        on_worker!(self, |session| call(session)).await
    }

    /// A slot, the shared token (renewed if due) and a worker holding it.
    pub(crate) async fn checkout(&self) -> Result<Checkout, CallError> {
        let slot = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CallError::Host(wasmtime::Error::msg("the pool is closed")))?;
        let token = self.fresh_token().await?;
        let worker = self.worker(&token).await?;
        Ok(Checkout {
            worker,
            _slot: slot,
        })
    }

    /// Between the pages of a long read: hands the worker the shared token
    /// if it was renewed meanwhile (or is due), so a read that outlives a
    /// token does not meet `external_token_expired`.
    pub(crate) async fn refresh(&self, checkout: &mut Checkout) -> Result<(), CallError> {
        let token = self.fresh_token().await?;
        hand_over(&mut checkout.worker, &token).await
    }

    /// After Dataverse refused the worker's token: the owner renews it and
    /// the worker gets the new one.
    pub(crate) async fn renew_refused(&self, checkout: &mut Checkout) -> Result<(), CallError> {
        let worker = &mut checkout.worker;
        let renewed = self.renew_after_refusal(worker.generation).await?;
        // Always hand it over: the refusal emptied the worker's cache, even
        // if the owner came back with the same token.
        worker
            .session
            .set_access_token(&renewed.value, renewed.expires_at)
            .await?;
        worker.generation = renewed.generation;
        Ok(())
    }

    /// The owner's view of the shared token (authority, tenant, expiry and
    /// the token request that got it; never the token). It renews the token
    /// first if it is due, as a call would.
    pub(crate) async fn owner_token_info(&self) -> Result<TokenInfo, CallError> {
        self.fresh_token().await?;
        let mut owner = self.inner.owner.lock().await;
        if owner.is_none() {
            // A reconnected owner holds a new token: publish it first, as a
            // renewal does, so the answer describes the shared token.
            self.renew(&mut owner, false).await?;
        }
        let session = self.owner_session(&mut owner).await?;
        let info = session.token_info().await;
        if matches!(&info, Err(error) if error.kills_instance()) {
            *owner = None;
        }
        info
    }

    /// An idle worker (given the current token if it holds an older one), or
    /// a new one.
    async fn worker(&self, token: &SharedToken) -> Result<Lease<Worker>, CallError> {
        let inner = &self.inner;
        let mut worker = inner
            .workers
            .take(async || {
                let session = inner
                    .runtime
                    .connect_with_token(
                        inner.upstream.clone(),
                        &inner.org_url,
                        &token.value,
                        token.expires_at,
                        inner.config.options,
                    )
                    .await?;
                Ok::<_, CallError>(Worker {
                    session,
                    generation: token.generation,
                })
            })
            .await?;
        hand_over(&mut worker, token).await?;
        Ok(worker)
    }

    /// The shared token, renewed through the owner once it is within the
    /// renewal margin. Only one caller renews; the others wait and reuse it.
    async fn fresh_token(&self) -> Result<SharedToken, CallError> {
        if let Some(token) = self.usable_token() {
            return Ok(token);
        }
        let mut owner = self.inner.owner.lock().await;
        if let Some(token) = self.usable_token() {
            return Ok(token);
        }
        self.renew(&mut owner, false).await
    }

    /// After Dataverse refused the token of `generation`: unless someone
    /// renewed meanwhile, makes the owner drop its token and acquire anew.
    async fn renew_after_refusal(&self, generation: u64) -> Result<SharedToken, CallError> {
        let mut owner = self.inner.owner.lock().await;
        let current = lock(&self.inner.token).clone();
        if current.generation != generation {
            return Ok(current);
        }
        self.renew(&mut owner, true).await
    }

    fn usable_token(&self) -> Option<SharedToken> {
        let token = lock(&self.inner.token);
        (unix_now().saturating_add(RENEW_BEFORE_EXPIRY_SECS) < token.expires_at)
            .then(|| token.clone())
    }

    /// The owner, reconnected first if it trapped since the last renewal.
    async fn owner_session<'a>(
        &self,
        owner: &'a mut Option<Session>,
    ) -> Result<&'a mut Session, CallError> {
        let inner = &self.inner;
        if owner.is_none() {
            *owner = Some(
                inner
                    .runtime
                    .connect_with(
                        inner.upstream.clone(),
                        inner.config.certificate_store.as_deref(),
                        &inner.connection_string,
                        inner.config.options,
                    )
                    .await?,
            );
        }
        Ok(owner.as_mut().expect("set just above"))
    }

    /// Asks the owner for its token (the component renews it if due) and
    /// publishes it. `refused`: the current token was rejected by Dataverse;
    /// a WhoAmI on the owner meets the same 401, which makes the component
    /// drop the token and acquire a new one (its own revocation path).
    async fn renew(
        &self,
        owner: &mut Option<Session>,
        refused: bool,
    ) -> Result<SharedToken, CallError> {
        let inner = &self.inner;
        let session = self.owner_session(owner).await?;
        let previous = lock(&inner.token).clone();
        let renewed = async {
            if refused {
                session.who_am_i(None).await?;
            }
            read_token(session, previous.generation).await
        }
        .await;
        let mut token = match renewed {
            Ok(token) => token,
            Err(error) => {
                if error.kills_instance() {
                    *owner = None;
                }
                return Err(error);
            }
        };
        if *token.value != *previous.value {
            token.generation = previous.generation + 1;
        }
        *lock(&inner.token) = token.clone();
        Ok(token)
    }
}

/// The owner's current token, labelled `generation`.
async fn read_token(owner: &mut Session, generation: u64) -> Result<SharedToken, CallError> {
    let value = owner.access_token().await?;
    let expires_at = owner.token_info().await?.expires_at;
    Ok(SharedToken {
        value: value.into(),
        expires_at,
        generation,
    })
}

/// Gives `worker` the shared token unless it already holds it.
async fn hand_over(worker: &mut Worker, token: &SharedToken) -> Result<(), CallError> {
    if worker.generation != token.generation {
        worker
            .session
            .set_access_token(&token.value, token.expires_at)
            .await?;
        worker.generation = token.generation;
    }
    Ok(())
}

/// The component's answer when Dataverse refused a host-supplied token.
pub(crate) fn token_refused<R>(result: &Result<R, CallError>) -> bool {
    matches!(
        result,
        Err(CallError::Dataverse(e))
            if matches!(&e.kind, ErrorKind::Authentication(a) if a.error == "external_token_expired")
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (each
    // critical section is a single push, pop or assignment).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
