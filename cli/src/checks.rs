//! Argument checks that need no network, made with the same core functions
//! the component runs (compiled natively here), so a malformed key, an empty
//! filter or a bad entity set name is reported before tenant discovery and a
//! token request — with the message and the exit code the component would
//! have given.

use dataverse_wasm::client::Failure as CallFailure;
use dataverse_wasm::error::Error;
use dataverse_wasm::webapi::{entity_key, query};

use crate::Failure;

/// Any origin will do: only the arguments are checked.
const PLACEHOLDER_ORG: &str = "https://localhost";

fn invalid(error: Error) -> Failure {
    let message = match error {
        Error::InvalidRequest(message) => message,
        other => other.to_string(),
    };
    Failure::from(CallFailure::from(Error::InvalidRequest(message)))
}

pub fn entity_path(entity_set: &str, key: &str) -> Result<(), Failure> {
    entity_key::entity_path(entity_set, key)
        .map(drop)
        .map_err(invalid)
}

pub fn identifier(what: &str, name: &str) -> Result<(), Failure> {
    query::check_identifier(what, name).map_err(invalid)
}

pub fn query(q: &query::Query) -> Result<(), Failure> {
    q.request(PLACEHOLDER_ORG).map(drop).map_err(invalid)
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
            query(&query::Query {
                filter: Some("  ".into()),
                ..accounts()
            })
            .unwrap_err(),
        ] {
            assert_eq!(failure.code, crate::exit::USAGE, "{}", failure.message);
            let error = &failure.error.as_ref().unwrap().error;
            assert!(matches!(error, Error::InvalidRequest(_)), "{error:?}");
        }
        assert!(entity_path("accounts", "accountnumber='A-1'").is_ok());
        assert!(query(&accounts()).is_ok());
    }

    fn accounts() -> query::Query {
        query::Query {
            entity_set: "accounts".into(),
            ..Default::default()
        }
    }
}
