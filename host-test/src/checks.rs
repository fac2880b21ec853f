//! Argument checks that need no network, made with the same core functions
//! the component runs (compiled natively here), so a malformed key, an empty
//! filter or a bad entity set name is reported before tenant discovery and a
//! token request — with the message and the exit code the component would
//! have given.

use dataverse_host::session::{DataverseError, ErrorKind, Query};
use dataverse_wasm::webapi::{entity_key, query};

use crate::Failure;

/// Any origin will do: only the arguments are checked.
const PLACEHOLDER_ORG: &str = "https://localhost";

fn invalid(error: dataverse_wasm::Error) -> Failure {
    let message = match error {
        dataverse_wasm::Error::InvalidRequest(message) => message,
        other => other.to_string(),
    };
    Failure::from(dataverse_host::CallError::Dataverse(DataverseError {
        kind: ErrorKind::InvalidRequest(message),
        call: None,
    }))
}

pub fn entity_path(entity_set: &str, key: &str) -> Result<(), Failure> {
    entity_key::entity_path(entity_set, key)
        .map(drop)
        .map_err(invalid)
}

pub fn identifier(what: &str, name: &str) -> Result<(), Failure> {
    query::check_identifier(what, name).map_err(invalid)
}

pub fn query(q: &Query) -> Result<(), Failure> {
    let core = query::Query {
        entity_set: q.entity_set.clone(),
        select: q.select.clone(),
        filter: q.filter.clone(),
        orderby: q.orderby.clone(),
        expand: q.expand.clone(),
        apply: q.apply.clone(),
        top: q.top,
        page_size: q.page_size,
        count: q.count,
    };
    core.request(PLACEHOLDER_ORG).map(drop).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_invalid_requests_with_exit_2() {
        for failure in [
            entity_path("accounts", "not a key").unwrap_err(),
            entity_path("accounts)", "00000000-0000-0000-0000-000000000001").unwrap_err(),
            identifier("navigation property", "a/b").unwrap_err(),
            query(&Query {
                filter: Some("  ".into()),
                ..Query::new("accounts")
            })
            .unwrap_err(),
        ] {
            assert_eq!(failure.code, crate::exit::USAGE, "{}", failure.message);
            let kind = &failure.error.as_ref().unwrap().kind;
            assert!(matches!(kind, ErrorKind::InvalidRequest(_)), "{kind:?}");
        }
        assert!(entity_path("accounts", "accountnumber='A-1'").is_ok());
        assert!(query(&Query::new("accounts")).is_ok());
    }
}
