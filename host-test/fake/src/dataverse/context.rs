//! The context of one authenticated Web API request: the service root, who
//! the request runs as, and the router's entry point for requests nested in
//! it (the parts of a `$batch`).

use crate::{FakeApp, FakeConfig, State};
use bytes::Bytes;
use http::{Request, Response};
use std::collections::HashMap;

pub(crate) const API_PREFIX: &str = "/api/data/v9.2";
/// Dataverse's largest page, and the cap on `@odata.count`.
pub(crate) const MAX_PAGE_SIZE: usize = 5000;

/// The router's entry point: answers one authenticated request (see
/// `router::respond`). Operations that answer requests of their own (a
/// `$batch`'s parts, a fault that wraps the real answer) call it through
/// this, so that they need not know the router.
pub(crate) type Respond = fn(
    &FakeConfig,
    &mut State,
    &Request<Bytes>,
    &FakeApp,
    &str,
    &HashMap<String, String>,
) -> Response<Bytes>;

/// Everything an operation needs besides the state and the request.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a FakeConfig,
    /// `{scheme}://{org}/api/data/v9.2`.
    pub(crate) base: String,
    pub(crate) app: &'a FakeApp,
    /// The effective `systemuserid`: the app's user, or the impersonated one.
    pub(crate) user_id: String,
    /// `$batch` change set Content-IDs (without `$`) → created entity URL.
    pub(crate) content_ids: &'a HashMap<String, String>,
    /// Answers a request nested in this one.
    pub(crate) respond: Respond,
}

impl Ctx<'_> {
    pub(crate) fn entity_url(&self, set: &str, id: &str) -> String {
        format!("{}/{set}({id})", self.base)
    }
}
