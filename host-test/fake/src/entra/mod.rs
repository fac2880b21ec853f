//! The fake Microsoft Entra ID: the token endpoint and the certificate
//! credentials it checks.

pub(crate) mod assertion;
pub(crate) mod auth_faults;
pub mod certs;
pub(crate) mod federation;
pub(crate) mod token;
pub(crate) mod x509;
