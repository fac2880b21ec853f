//! Everything about getting an access token: the authority (discovered from
//! Dataverse's challenge or given in the settings), the token request and
//! response, and the token cache policy; a credential without a secret is a
//! module of its own (`managed_identity`, `workload_identity`). Pure: no
//! I/O, time is passed in, the environment is a lookup.

pub mod assertion;
pub mod authority;
pub mod cache;
pub mod certificate;
pub mod cloud;
mod jwt_crypto;
pub mod managed_identity;
pub mod shared;
pub mod token;
pub mod workload_identity;

pub use authority::{Authority, Challenge};
pub use cache::TokenCache;
pub use token::AccessToken;
