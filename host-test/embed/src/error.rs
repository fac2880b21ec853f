//! [`HostError`]: why the host could not set something up (load the
//! component, build the TLS client, bind a port, read the proxy settings)
//! or open a tunnel through a proxy. Failures of a call are
//! [`crate::CallError`].

use std::path::PathBuf;

/// A set-up failure of the host, before any call runs; or, for
/// `ProxyRefused` and `ProxyProtocol`, a proxy failing to open a tunnel,
/// which reaches the guest as the text of a transport error.
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
    /// Not one of the platform identity variables the component may be
    /// given (`identity::VARIABLES`); the name is shown, never a value.
    #[error("{0} is not a platform identity variable the component reads")]
    IdentityVariable(String),
    /// A plain-http endpoint the network was told to allow is no http URL.
    #[error("not a plain http URL with a host: {0}")]
    PlainHttpEndpoint(String),
    /// Extra trusted roots (`--cacert`) could not be used.
    #[error("{0}")]
    Roots(String),
    /// A proxy URL (`HTTPS_PROXY`, …) is malformed or names a kind of proxy
    /// this host does not speak. `setting` names where the URL came from;
    /// the URL itself is never shown, since it may hold a password.
    #[error("{setting}: {reason}")]
    ProxyUrl {
        setting: &'static str,
        reason: String,
    },
    /// The proxy answered `CONNECT` with a status other than 2xx (407: it
    /// wants credentials, or other ones; 403: its policy forbids the target;
    /// 502/503: it could not reach the target). `proxy` is
    /// `http://host:port`, without credentials.
    #[error("proxy {proxy} refused CONNECT to {target}: {status} {reason}")]
    ProxyRefused {
        proxy: String,
        target: String,
        status: u16,
        reason: String,
    },
    /// The proxy closed the connection, or answered `CONNECT` with something
    /// that is not a bounded HTTP/1.x response head.
    #[error("proxy {proxy}, CONNECT to {target}: {problem}")]
    ProxyProtocol {
        proxy: String,
        target: String,
        problem: String,
    },
}

impl HostError {
    pub(crate) fn wasmtime(context: &'static str) -> impl FnOnce(wasmtime::Error) -> HostError {
        move |source| HostError::Wasmtime { context, source }
    }
}
