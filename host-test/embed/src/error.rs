//! [`HostError`]: why the host could not set something up (load the
//! component, build the TLS client, bind a port). Failures of a call are
//! [`crate::CallError`].

use std::path::PathBuf;

/// A set-up failure of the host, before any call runs.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component file could not be read.
    #[error("reading the component {path}: {source}")]
    ReadComponent {
        path: PathBuf,
        source: std::io::Error,
    },
    /// wasmtime refused the engine configuration, the component or its
    /// imports (e.g. not a `dataverse:client` component).
    #[error("{context}: {source:#}")]
    Wasmtime {
        context: &'static str,
        source: wasmtime::Error,
    },
    /// A thread or socket the host needs could not be had.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// A `--connect-to` rule is malformed.
    #[error("--connect-to expects HOST1:PORT1:HOST2:PORT2, got '{0}'")]
    ConnectTo(String),
    /// A required environment variable is missing (named, never its value).
    #[error("{0}")]
    Environment(String),
    /// Extra trusted roots (`--cacert`) could not be used.
    #[error("{0}")]
    Roots(String),
}

impl HostError {
    pub(crate) fn wasmtime(context: &'static str) -> impl FnOnce(wasmtime::Error) -> HostError {
        move |source| HostError::Wasmtime { context, source }
    }
}
