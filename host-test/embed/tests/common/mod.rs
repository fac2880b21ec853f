//! What the embedding crate's end-to-end tests share.

use std::sync::{Arc, OnceLock};

use dataverse_host::Runtime;

/// The built component, compiled once per test binary.
pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Arc::new(Runtime::from_wasm(dataverse_artifacts::CLIENT).expect("the component loads"))
        })
        .clone()
}
