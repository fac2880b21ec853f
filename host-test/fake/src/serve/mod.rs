//! How the fake is reached: on loopback TLS, on loopback plain HTTP, or in
//! process as a `dataverse_host` upstream.

pub(crate) mod in_process;
pub(crate) mod plain;
pub(crate) mod tls;
