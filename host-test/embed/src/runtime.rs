//! [`Runtime`]: the component compiled once (see `engine`), linked with
//! WASI + wasi:http, and the calls that make instances of it: `connect`
//! (a [`Session`]), `auth_protocol`, `parse_settings`.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;
use wasmtime::{Engine, Store};

use crate::bindings::{ClientSigning as Client, ClientSigningPre as ClientPre};
use crate::engine::{cache_dir, load, new_engine};
use crate::error::HostError;
use crate::identity::IdentityEnvironment;
use crate::limits::Limits;
use crate::session::{AuthProtocol, CallError, ClientOptions, Session, SettingsSummary};
use crate::signer::Signer;
use crate::state::HostState;
use crate::upstream::{ExchangeLog, OutgoingHooks, Unreachable, Upstream};

/// A compiled component, ready to instantiate many times.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) pre: ClientPre<HostState>,
    pub(crate) limits: Limits,
    pub(crate) exchange_log: Option<ExchangeLog>,
    /// Given to the instances that hold a credential (`connect`,
    /// `auth_protocol`), never to token-fed workers.
    pub(crate) identity: Option<IdentityEnvironment>,
    /// Signs for certificates whose key the host holds; given to the
    /// instances that hold a credential.
    pub(crate) signer: Option<Arc<dyn Signer>>,
}

impl Runtime {
    /// Loads the component at `wasm` with default [`Limits`], compiling it
    /// only if no cached artifact for these exact bytes (and this wasmtime)
    /// exists.
    pub fn load(wasm: &Path) -> Result<Runtime, HostError> {
        Runtime::load_with(wasm, Limits::default())
    }

    /// [`Runtime::load`] with explicit limits.
    pub fn load_with(wasm: &Path, limits: Limits) -> Result<Runtime, HostError> {
        let bytes = std::fs::read(wasm).map_err(|source| HostError::ReadComponent {
            path: wasm.to_path_buf(),
            source,
        })?;
        Runtime::from_wasm_with(&bytes, limits)
    }

    /// The component from bytes the host carries (e.g.
    /// `dataverse_artifacts::CLIENT`), with default [`Limits`].
    pub fn from_wasm(wasm: &[u8]) -> Result<Runtime, HostError> {
        Runtime::from_wasm_with(wasm, Limits::default())
    }

    /// [`Runtime::from_wasm`] with explicit limits.
    pub fn from_wasm_with(wasm: &[u8], limits: Limits) -> Result<Runtime, HostError> {
        let engine = new_engine(&limits)?;
        let (component, _) = load(&engine, &cache_dir(), wasm, None, &[])?;
        Runtime::from_component(engine, &component, limits)
    }

    /// [`Runtime::from_wasm_with`] for bytes whose SHA-256 (hex) is known
    /// ahead, such as `dataverse_artifacts::{CLIENT, CLIENT_SHA256}`: the
    /// start-up then never hashes the whole component to find its
    /// precompiled artifact. `sha256` must be the digest of `wasm`.
    pub fn from_prehashed(wasm: &[u8], sha256: &str, limits: Limits) -> Result<Runtime, HostError> {
        let engine = new_engine(&limits)?;
        let (component, _) = load(&engine, &cache_dir(), wasm, Some(sha256), &[])?;
        Runtime::from_component(engine, &component, limits)
    }

    /// [`Runtime::from_prehashed`] with `precompiled`, the component as
    /// this wasmtime's machine code (such as
    /// `dataverse_artifacts::CLIENT_PRECOMPILED`, compiled when the crate was
    /// built): a first run with an empty cache writes it there instead of
    /// compiling. When this engine cannot use it (another CPU, another
    /// wasmtime, or empty) the wasm is compiled as by
    /// [`Runtime::from_prehashed`].
    ///
    /// `precompiled` must come from `Engine::precompile_component` of the
    /// bytes `wasm`; wasmtime checks that it fits this engine, not that it
    /// is the same component.
    pub fn from_precompiled(
        precompiled: &[u8],
        wasm: &[u8],
        sha256: &str,
        limits: Limits,
    ) -> Result<Runtime, HostError> {
        let engine = new_engine(&limits)?;
        let (component, _) = load(&engine, &cache_dir(), wasm, Some(sha256), precompiled)?;
        Runtime::from_component(engine, &component, limits)
    }

    /// Builds a runtime around an already compiled `component` of `engine`
    /// (an engine made by [`new_engine`] with the same `limits`).
    pub fn from_component(
        engine: Engine,
        component: &Component,
        limits: Limits,
    ) -> Result<Runtime, HostError> {
        let pre = crate::engine::linker(&engine)?
            .instantiate_pre(component)
            .and_then(ClientPre::new)
            .map_err(HostError::wasmtime("not a dataverse:client component"))?;
        Ok(Runtime {
            engine,
            pre,
            limits,
            exchange_log: None,
            identity: None,
            signer: None,
        })
    }

    /// Reports every HTTP exchange of every instance to `log` (the CLI's `-v`).
    pub fn with_exchange_log(mut self, log: ExchangeLog) -> Runtime {
        self.exchange_log = Some(log);
        self
    }

    /// Gives the instances that hold a credential the platform's identity
    /// variables and token directories (`AuthType=ManagedIdentity`,
    /// `AuthType=WorkloadIdentity`); see [`IdentityEnvironment`].
    pub fn with_identity(mut self, identity: IdentityEnvironment) -> Runtime {
        self.identity = Some(identity);
        self
    }

    /// Signs the client assertions of certificates whose private key the
    /// host holds (`AuthType=Certificate` with `KeyVaultUrl`): e.g. a
    /// [`crate::KeyVaultSigner`]. Only the signing component
    /// (`dataverse_artifacts::SIGNING_CLIENT`, world `client-signing`)
    /// calls it; the plain one refuses such settings itself, naming the
    /// signing component, so load the plain one unless the settings need a
    /// signer (it is the only one a host with nothing but WASI can run,
    /// and the signing one costs a compile of its own). Without a signer,
    /// the signing component's `connect` fails with `invalid-settings`
    /// saying the host has none.
    pub fn with_signer(mut self, signer: Arc<dyn Signer>) -> Runtime {
        self.signer = Some(signer);
        self
    }

    /// The limits every instance of this runtime runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The epoch ticks a call may run for (see [`Limits::call_deadline`]).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        self.limits.deadline_ticks()
    }

    /// Whether the component imports the host's signer
    /// (`dataverse:client/signer`): the signing component does, the plain
    /// one does not.
    pub fn imports_signer(&self) -> bool {
        let (imports, _) = self.interface_names();
        imports.iter().any(|name| {
            name.strip_prefix(dataverse_wasm::transport::SIGNER_INTERFACE)
                .is_some_and(|version| version.is_empty() || version.starts_with('@'))
        })
    }

    /// The names of the component's imports and exports, e.g.
    /// `wasi:http/outgoing-handler@0.2.12` and `dataverse:client/web-api@0.2.0`.
    pub fn interface_names(&self) -> (Vec<String>, Vec<String>) {
        let ty = self.pre.instance_pre().component().component_type();
        let imports = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        (imports, exports)
    }

    /// A fresh instance in its own store: memory limit and call deadline
    /// armed; `credential`: it will hold one, so it gets the identity
    /// environment.
    async fn instantiate(
        &self,
        upstream: Arc<dyn Upstream>,
        certificate_store: Option<&Path>,
        credential: bool,
    ) -> Result<(Store<HostState>, Client), CallError> {
        let hooks = OutgoingHooks::new(upstream, self.exchange_log.clone());
        let identity = self.identity.as_ref().filter(|_| credential);
        let state = HostState::new(
            hooks,
            certificate_store,
            &[],
            identity,
            self.limits.max_memory_bytes,
        )?;
        let mut state = state;
        state.signer = self.signer.clone().filter(|_| credential);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(self.deadline_ticks());
        let bindings = self.pre.instantiate_async(&mut store).await?;
        Ok((store, bindings))
    }

    /// Instantiates the component, parses the connection string and connects
    /// (discovery + first token) through `upstream`.
    pub async fn connect(
        &self,
        upstream: Arc<dyn Upstream>,
        connection_string: &str,
        options: ClientOptions,
    ) -> Result<Session, CallError> {
        self.connect_with(upstream, None, connection_string, options)
            .await
    }

    /// [`Runtime::connect`], mapping `certificate_store` (a directory of PEM /
    /// PFX files) read-only into the guest for `AuthType=Certificate`.
    pub async fn connect_with(
        &self,
        upstream: Arc<dyn Upstream>,
        certificate_store: Option<&Path>,
        connection_string: &str,
        options: ClientOptions,
    ) -> Result<Session, CallError> {
        let (mut store, bindings) = self.instantiate(upstream, certificate_store, true).await?;
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
        Ok(Session::new(store, bindings, client, self.deadline_ticks()))
    }

    /// A client that uses an access token the host acquired itself
    /// (ExternalTokenManagement): no discovery, no credential.
    pub async fn connect_with_token(
        &self,
        upstream: Arc<dyn Upstream>,
        url: &str,
        access_token: &str,
        expires_at: u64,
        options: ClientOptions,
    ) -> Result<Session, CallError> {
        let (mut store, bindings) = self.instantiate(upstream, None, false).await?;
        let client = bindings
            .dataverse_client_web_api()
            .client()
            .call_connect_with_token(&mut store, url, access_token, expires_at, options)
            .await??;
        Ok(Session::new(store, bindings, client, self.deadline_ticks()))
    }

    /// Creates one instance and drops it: what every fresh instance costs
    /// the host (benchmarks, warm-up).
    pub async fn instantiate_and_drop(&self) -> Result<(), CallError> {
        self.instantiate(Arc::new(Unreachable), None, false).await?;
        Ok(())
    }

    /// Parses a connection string in a fresh instance and returns what the
    /// settings say (never the credential).
    pub async fn parse_settings(
        &self,
        connection_string: &str,
    ) -> Result<SettingsSummary, CallError> {
        let (mut store, bindings) = self.instantiate(Arc::new(Unreachable), None, false).await?;
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

    /// Parses `connection_string` in a fresh instance for the `auth`
    /// interface; `certificate_store` is mapped as for `connect_with`.
    pub async fn auth_protocol(
        &self,
        connection_string: &str,
        certificate_store: Option<&Path>,
    ) -> Result<AuthProtocol, CallError> {
        let (mut store, bindings) = self
            .instantiate(Arc::new(Unreachable), certificate_store, true)
            .await?;
        let settings = bindings
            .dataverse_client_connection()
            .call_parse(&mut store, connection_string)
            .await??;
        Ok(AuthProtocol::new(
            store,
            bindings,
            settings,
            self.deadline_ticks(),
        ))
    }
}
