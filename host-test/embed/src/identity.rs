//! [`IdentityEnvironment`]: what a managed or workload identity needs from
//! the host, and nothing more — exactly the platform variables the core
//! reads (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`, `AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`,
//! `ACTIONS_ID_TOKEN_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN`), and the
//! directory of the federated token file, mapped read-only at the same path
//! so that the platform's path works inside the component.
//!
//! A library reads no environment unless told to (as with proxies): build
//! one with [`IdentityEnvironment::from_env`] (the process's variables, only
//! these) or [`IdentityEnvironment::with`], and hand it to
//! [`crate::Runtime::with_identity`]. Only the instances that hold the
//! credential get it (not the pool's workers).
//!
//! ```
//! use dataverse_host::IdentityEnvironment;
//!
//! let identity = IdentityEnvironment::default()
//!     .with("AZURE_CLIENT_ID", "3c9d2e71-4b8a-4f6e-9d15-7a0b2c4e6f81")?
//!     .with("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token")?;
//! assert_eq!(
//!     identity.token_directories(),
//!     [std::path::Path::new("/var/run/secrets/azure/tokens")]
//! );
//! // Values never show: IDENTITY_HEADER and the GitHub request token are secrets.
//! let shown = format!("{identity:?}");
//! assert!(shown.contains("AZURE_CLIENT_ID") && !shown.contains("3c9d2e71"));
//! # Ok::<(), dataverse_host::HostError>(())
//! ```

use std::path::{Path, PathBuf};

use dataverse_wasm::auth::{managed_identity, workload_identity};

use crate::error::HostError;

/// Every variable the component may be given, in one list (the core's).
pub const VARIABLES: [&str; 8] = [
    managed_identity::ENVIRONMENT_VARIABLES[0],
    managed_identity::ENVIRONMENT_VARIABLES[1],
    workload_identity::ENVIRONMENT_VARIABLES[0],
    workload_identity::ENVIRONMENT_VARIABLES[1],
    workload_identity::ENVIRONMENT_VARIABLES[2],
    workload_identity::ENVIRONMENT_VARIABLES[3],
    workload_identity::ENVIRONMENT_VARIABLES[4],
    workload_identity::ENVIRONMENT_VARIABLES[5],
];

/// The platform's identity variables for the component, and the
/// directories it may read (read-only) for federated token files.
#[derive(Clone, Default)]
pub struct IdentityEnvironment {
    vars: Vec<(&'static str, String)>,
    directories: Vec<PathBuf>,
}

impl std::fmt::Debug for IdentityEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.vars.iter().map(|(name, _)| *name).collect();
        f.debug_struct("IdentityEnvironment")
            .field("variables", &names)
            .field("directories", &self.directories)
            .finish()
    }
}

impl IdentityEnvironment {
    /// The identity variables of this process (only [`VARIABLES`]; empty
    /// ones are left out), and the token file's directory.
    pub fn from_env() -> IdentityEnvironment {
        IdentityEnvironment::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`IdentityEnvironment::from_env`] over any lookup (for tests, or a
    /// host's own configuration).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> IdentityEnvironment {
        let mut identity = IdentityEnvironment::default();
        for name in VARIABLES {
            if let Some(value) = lookup(name).filter(|v| !v.is_empty()) {
                identity.set(name, value);
            }
        }
        identity
    }

    /// One more variable; only [`VARIABLES`] are taken (the component gets
    /// nothing else of the host's environment). Setting
    /// `AZURE_FEDERATED_TOKEN_FILE` maps the file's directory.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Result<Self, HostError> {
        let known = VARIABLES
            .into_iter()
            .find(|v| *v == name)
            .ok_or_else(|| HostError::IdentityVariable(name.to_string()))?;
        self.set(known, value.into());
        Ok(self)
    }

    /// Lets the component read the files of `directory` (read-only, at the
    /// same path inside): for a `TokenFile=` of the connection string
    /// outside the directory of `AZURE_FEDERATED_TOKEN_FILE`.
    pub fn read_only_directory(mut self, directory: impl Into<PathBuf>) -> Self {
        let directory = directory.into();
        if !self.directories.contains(&directory) {
            self.directories.push(directory);
        }
        self
    }

    fn set(&mut self, name: &'static str, value: String) {
        if name == workload_identity::AZURE_FEDERATED_TOKEN_FILE
            && let Some(directory) = Path::new(&value).parent().filter(|d| d.is_absolute())
        {
            let directory = directory.to_path_buf();
            if !self.directories.contains(&directory) {
                self.directories.push(directory);
            }
        }
        self.vars.retain(|(n, _)| *n != name);
        self.vars.push((name, value));
    }

    /// The variables, as the component's environment.
    pub(crate) fn pairs(&self) -> Vec<(&str, &str)> {
        self.vars.iter().map(|(n, v)| (*n, v.as_str())).collect()
    }

    /// The directories mapped read-only into the component.
    pub fn token_directories(&self) -> Vec<&Path> {
        self.directories.iter().map(PathBuf::as_path).collect()
    }

    /// The value of one variable (for a host's own checks; a secret's too,
    /// so never print it).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The App Service identity endpoint when it is plain http: what a
    /// [`crate::Network`] must be told to allow
    /// ([`crate::Network::with_plain_http_endpoint`]).
    pub fn plain_http_endpoint(&self) -> Option<&str> {
        self.get(managed_identity::IDENTITY_ENDPOINT)
            .filter(|url| url.starts_with("http://"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_platform_variables_are_taken_and_none_is_shown() {
        let identity = IdentityEnvironment::from_lookup(|name| match name {
            "IDENTITY_ENDPOINT" => Some("http://10.0.0.4:8081/msi/token".into()),
            "IDENTITY_HEADER" => Some("header-secret".into()),
            "AZURE_CLIENT_ID" => Some(String::new()),
            "PATH" | "HOME" => Some("/usr/bin".into()),
            _ => None,
        });
        let names: Vec<&str> = identity.pairs().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["IDENTITY_ENDPOINT", "IDENTITY_HEADER"]);
        assert_eq!(
            identity.plain_http_endpoint(),
            Some("http://10.0.0.4:8081/msi/token")
        );
        let shown = format!("{identity:?}");
        assert!(
            !shown.contains("header-secret") && !shown.contains("10.0.0.4"),
            "{shown}"
        );
        assert!(matches!(
            IdentityEnvironment::default().with("PATH", "/bin"),
            Err(HostError::IdentityVariable(name)) if name == "PATH"
        ));
    }

    #[test]
    fn the_token_files_directory_is_mapped_once_and_relative_paths_are_not() {
        let identity = IdentityEnvironment::default()
            .with("AZURE_FEDERATED_TOKEN_FILE", "/var/run/tokens/a")
            .unwrap()
            .with("AZURE_FEDERATED_TOKEN_FILE", "/var/run/tokens/b")
            .unwrap()
            .read_only_directory("/var/run/tokens");
        assert_eq!(identity.token_directories(), [Path::new("/var/run/tokens")]);
        assert_eq!(
            identity.get("AZURE_FEDERATED_TOKEN_FILE"),
            Some("/var/run/tokens/b")
        );
        let relative = IdentityEnvironment::default()
            .with("AZURE_FEDERATED_TOKEN_FILE", "token")
            .unwrap();
        assert!(relative.token_directories().is_empty());
    }
}
