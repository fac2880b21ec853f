//! Everything about getting an access token: the authority (discovered from
//! Dataverse's challenge or given in the settings), the token request and
//! response, and the token cache policy. Pure: no I/O, time is passed in.

pub mod assertion;
pub mod authority;
pub mod cache;
pub mod certificate;
pub mod cloud;
mod jwt_crypto;
pub mod token;

pub use authority::{Authority, Challenge};
pub use cache::TokenCache;
pub use token::AccessToken;
