//! The gateway's configuration, read from the environment once per instance:
//! `DATAVERSE_CONNECTION`, `GATEWAY_API_KEY` and the optional `GATEWAY_ALLOW`.

use dataverse_wasm::Secret;

use crate::route::AllowList;

/// The connection string (ServiceClient syntax) of the application.
pub const CONNECTION_VAR: &str = "DATAVERSE_CONNECTION";
/// The key every caller must present (`x-api-key` or `Authorization: Bearer`).
pub const API_KEY_VAR: &str = "GATEWAY_API_KEY";
/// Comma-separated entity sets (or function/action names) callers may reach.
pub const ALLOW_VAR: &str = "GATEWAY_ALLOW";
/// The `wasi:keyvalue` bucket the instances share their token through;
/// unset or empty: the host's default store (the empty identifier).
pub const TOKEN_BUCKET_VAR: &str = "GATEWAY_TOKEN_BUCKET";
/// Shorter keys are refused: a guessable key would open the application's
/// whole identity to anyone.
pub const MIN_API_KEY_CHARS: usize = 16;

/// A complete configuration. `Debug` never shows the secrets.
#[derive(Debug)]
pub struct Config {
    pub connection: Secret,
    pub api_key: Secret,
    /// `None`: every Web API path may be reached.
    pub allow: Option<AllowList>,
}

/// Why the gateway cannot serve; the message names variables, never values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotConfigured(pub String);

impl Config {
    /// Reads the configuration through `var` (the environment in the
    /// component, a map in tests). Blank values count as missing.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, NotConfigured> {
        let present = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let connection = present(CONNECTION_VAR);
        let api_key = present(API_KEY_VAR);
        let missing: Vec<&str> = [
            (API_KEY_VAR, api_key.is_none()),
            (CONNECTION_VAR, connection.is_none()),
        ]
        .iter()
        .filter(|(_, missing)| *missing)
        .map(|(name, _)| *name)
        .collect();
        if !missing.is_empty() {
            return Err(NotConfigured(format!(
                "the gateway is not configured: {} {} not set",
                missing.join(" and "),
                if missing.len() == 1 { "is" } else { "are" }
            )));
        }
        let (Some(connection), Some(api_key)) = (connection, api_key) else {
            return Err(NotConfigured("the gateway is not configured".into()));
        };
        // Keys are compared as given; surrounding whitespace from a shell or
        // a secrets file is not part of them.
        let api_key = api_key.trim().to_string();
        if api_key.chars().count() < MIN_API_KEY_CHARS {
            return Err(NotConfigured(format!(
                "{API_KEY_VAR} is too short: use at least {MIN_API_KEY_CHARS} random characters"
            )));
        }
        let allow = match present(ALLOW_VAR) {
            None => None,
            Some(list) => Some(
                AllowList::parse(&list)
                    .map_err(|e| NotConfigured(format!("{ALLOW_VAR} is invalid: {e}")))?,
            ),
        };
        Ok(Config {
            connection: Secret::new(connection),
            api_key: Secret::new(api_key),
            allow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "k3y-0123456789abcdef";
    const CONNECTION: &str =
        "AuthType=ClientSecret;Url=https://o.crm.dynamics.com;ClientId=a;Secret=S3cr3t!Value";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn missing_variables_are_named_and_no_value_is_shown() {
        // (environment, expected message)
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[],
                "the gateway is not configured: GATEWAY_API_KEY and DATAVERSE_CONNECTION are not set",
            ),
            (
                &[(CONNECTION_VAR, CONNECTION)],
                "the gateway is not configured: GATEWAY_API_KEY is not set",
            ),
            (
                &[(API_KEY_VAR, KEY)],
                "the gateway is not configured: DATAVERSE_CONNECTION is not set",
            ),
            (
                &[(API_KEY_VAR, KEY), (CONNECTION_VAR, "  ")],
                "the gateway is not configured: DATAVERSE_CONNECTION is not set",
            ),
            (
                &[(API_KEY_VAR, "short-key"), (CONNECTION_VAR, CONNECTION)],
                "GATEWAY_API_KEY is too short: use at least 16 random characters",
            ),
        ];
        for (vars, expected) in cases {
            let err = Config::from_env(env(vars)).unwrap_err();
            assert_eq!(err.0, expected);
            assert!(!err.0.contains("S3cr3t") && !err.0.contains("short-key"));
        }
    }

    #[test]
    fn a_complete_environment_is_read_and_debug_hides_the_secrets() {
        let config = Config::from_env(env(&[
            (API_KEY_VAR, &format!(" {KEY}\n")),
            (CONNECTION_VAR, CONNECTION),
            (ALLOW_VAR, "accounts, contacts"),
        ]))
        .unwrap();
        assert_eq!(config.api_key.expose(), KEY);
        assert_eq!(config.connection.expose(), CONNECTION);
        assert!(config.allow.as_ref().unwrap().allows("contacts"));
        let debug = format!("{config:?}");
        assert!(!debug.contains(KEY) && !debug.contains("S3cr3t"), "{debug}");
        let open = Config::from_env(env(&[(API_KEY_VAR, KEY), (CONNECTION_VAR, CONNECTION)]));
        assert!(open.unwrap().allow.is_none());
    }

    #[test]
    fn a_bad_allow_list_is_a_configuration_error() {
        let err = Config::from_env(env(&[
            (API_KEY_VAR, KEY),
            (CONNECTION_VAR, CONNECTION),
            (ALLOW_VAR, "accounts,a/b"),
        ]))
        .unwrap_err();
        assert!(err.0.starts_with("GATEWAY_ALLOW is invalid: "), "{}", err.0);
    }
}
