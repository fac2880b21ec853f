//! Connection settings: the ServiceClient-compatible connection-string parser
//! and the validated `Settings` every other part of the client starts from.
//!
//! `parse` = tokenize (`connection_string`, DbConnectionStringBuilder rules)
//! → pick each setting by ServiceClient's key aliases → [`Settings::validate`].
//! Messages name keys and may echo the Url and AuthType, but never any other
//! value: any value may be a secret.

mod connection_string;
mod org_url;

pub use org_url::{check_org_url, is_loopback_host, normalize_org_url};
pub(crate) use org_url::{is_host_and_port, strip_port};

use crate::error::Error;
use crate::secret::Secret;
use connection_string::Pairs;

/// Validated connection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Origin of the organization: `https://` + lower-case host (+ `:port` when not 443),
    /// no trailing slash, no path. E.g. `https://contoso.crm.dynamics.com`.
    pub org_url: String,
    /// The application (client) id of the app registration. Empty for a
    /// managed identity not named by its client id, and for a workload
    /// identity that takes it from `AZURE_CLIENT_ID` when it connects.
    pub client_id: String,
    pub credential: Credential,
    /// Extension `TenantId`: skip discovery and use this tenant (GUID or domain).
    pub tenant_id: Option<String>,
    /// Extension `Authority`: full authority URL, e.g.
    /// `https://login.microsoftonline.com/{tenant}`; skips discovery. No trailing slash.
    pub authority: Option<String>,
    /// Extension `AuthorityHost`: login hosts trusted in addition to the known
    /// Entra hosts (lower-case host names, comma-separated in the string).
    pub trusted_authority_hosts: Vec<String>,
    /// ServiceClient's `RequireNewInstance` (accepted; every `connect` is a new client anyway).
    pub require_new_instance: bool,
    /// Extension `AllowHttpLoopback`: `Url` and the authority may be plain
    /// `http://` when their host is 127.0.0.1, localhost or [::1] — for tests
    /// against a local fake. Off by default; never widens anything else.
    pub allow_http_loopback: bool,
}

/// How the application proves its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    ClientSecret(Secret),
    Certificate {
        /// SHA-1 thumbprint, upper-case hex, separators removed (40 characters).
        thumbprint: String,
        /// `CertificateStoreName` / `StoreName`, when given.
        store_name: Option<String>,
        /// `CertificatePassword` for PFX files, when given.
        password: Option<Secret>,
    },
    /// A certificate and its private key as PEM text, given directly in
    /// structured settings (never from a connection string).
    CertificatePem(Secret),
    /// A certificate whose private key the host holds (Azure Key Vault, an
    /// HSM), by the key id the host's signer knows: `AuthType=Certificate`
    /// with `KeyVaultUrl` and `CertificateName` make
    /// `{vault}/certificates/{name}[/{version}]`. The component gets the
    /// certificate and signatures from the host, never the key.
    HostKey(String),
    /// No credential: the host supplies access tokens (`connect-with-token`).
    ExternalToken,
    /// `AuthType=ManagedIdentity`: the platform's identity endpoint (App
    /// Service's `IDENTITY_ENDPOINT`, else IMDS) issues the token; nothing
    /// secret is in the settings.
    ManagedIdentity(ManagedIdentityId),
    /// `AuthType=WorkloadIdentity`: a client assertion that another issuer
    /// signed (a Kubernetes service account token, a GitHub Actions OIDC
    /// token), matched by a federated credential of the app registration.
    WorkloadIdentity(FederatedTokenSource),
}

/// Which managed identity asks for the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagedIdentityId {
    /// The resource's system-assigned identity.
    SystemAssigned,
    /// A user-assigned identity by its client (application) id (`ClientId`).
    ClientId(String),
    /// A user-assigned identity by its object (principal) id (`ObjectId`).
    ObjectId(String),
    /// A user-assigned identity by its Azure resource id (`ResourceId`,
    /// `/subscriptions/…/userAssignedIdentities/…`).
    ResourceId(String),
}

/// Where a workload identity's federated token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FederatedTokenSource {
    /// A file the platform writes and rotates (`TokenFile`; `None`: the
    /// path in `AZURE_FEDERATED_TOKEN_FILE`). Read again for every token.
    File(Option<String>),
    /// The GitHub Actions OIDC endpoint (`FederatedToken=GitHubActions`:
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`).
    GitHubActions,
}

/// A setting and the connection-string keys that set it, in ServiceClient's
/// precedence order: the first key with a non-empty value wins.
struct Key {
    /// The name messages use.
    name: &'static str,
    keys: &'static [&'static str],
}

// Key lists and their order follow ServiceClient's `ConnectionStringConstants`.
const URL: Key = Key {
    name: "Url",
    keys: &["ServiceUri", "Service Uri", "Url", "Server"],
};
const AUTH_TYPE: Key = Key {
    name: "AuthType",
    keys: &["AuthType", "AuthenticationType"],
};
const CLIENT_ID: Key = Key {
    name: "ClientId",
    keys: &["ClientId", "AppId", "ApplicationId"],
};
const CLIENT_SECRET: Key = Key {
    name: "ClientSecret",
    keys: &["ClientSecret", "Secret"],
};
const THUMBPRINT: Key = Key {
    name: "CertificateThumbprint",
    keys: &["CertificateThumbprint", "Thumbprint"],
};
const STORE_NAME: Key = Key {
    name: "CertificateStoreName",
    keys: &["CertificateStoreName", "StoreName"],
};
const REQUIRE_NEW_INSTANCE: Key = Key {
    name: "RequireNewInstance",
    keys: &["RequireNewInstance"],
};
// Our extensions (ServiceClient discovers the tenant and has no such keys).
const TENANT_ID: Key = Key {
    name: "TenantId",
    keys: &["TenantId", "Tenant"],
};
const AUTHORITY: Key = Key {
    name: "Authority",
    keys: &["Authority"],
};
const AUTHORITY_HOST: Key = Key {
    name: "AuthorityHost",
    keys: &["AuthorityHost"],
};
const CERT_PASSWORD: Key = Key {
    name: "CertificatePassword",
    keys: &["CertificatePassword", "CertPassword"],
};
const ALLOW_HTTP_LOOPBACK: Key = Key {
    name: "AllowHttpLoopback",
    keys: &["AllowHttpLoopback"],
};
// Managed identity (azure-identity's ManagedIdentityId: client id, object id
// or resource id of a user-assigned identity; `ClientId` is shared).
const OBJECT_ID: Key = Key {
    name: "ObjectId",
    keys: &["ObjectId", "PrincipalId"],
};
const RESOURCE_ID: Key = Key {
    name: "ResourceId",
    keys: &["ResourceId"],
};
// Workload identity (azure-identity's WorkloadIdentityCredential calls it
// TokenFilePath; AZURE_FEDERATED_TOKEN_FILE).
const TOKEN_FILE: Key = Key {
    name: "TokenFile",
    keys: &["TokenFile", "TokenFilePath", "FederatedTokenFile"],
};
const FEDERATED_TOKEN: Key = Key {
    name: "FederatedToken",
    keys: &["FederatedToken"],
};

// A certificate in Azure Key Vault (the key never leaves it; the host signs).
const KEY_VAULT_URL: Key = Key {
    name: "KeyVaultUrl",
    keys: &["KeyVaultUrl", "KeyVaultUri", "VaultUrl", "VaultUri"],
};
const CERTIFICATE_NAME: Key = Key {
    name: "CertificateName",
    keys: &["CertificateName", "CertName"],
};
const CERTIFICATE_VERSION: Key = Key {
    name: "CertificateVersion",
    keys: &["CertificateVersion", "CertVersion"],
};

const KEYS: [&Key; 19] = [
    &URL,
    &AUTH_TYPE,
    &CLIENT_ID,
    &CLIENT_SECRET,
    &THUMBPRINT,
    &STORE_NAME,
    &REQUIRE_NEW_INSTANCE,
    &TENANT_ID,
    &AUTHORITY,
    &AUTHORITY_HOST,
    &CERT_PASSWORD,
    &ALLOW_HTTP_LOOPBACK,
    &OBJECT_ID,
    &RESOURCE_ID,
    &TOKEN_FILE,
    &FEDERATED_TOKEN,
    &KEY_VAULT_URL,
    &CERTIFICATE_NAME,
    &CERTIFICATE_VERSION,
];

/// ServiceClient keys that mean nothing to a server-to-server client (user
/// sign-in, interactive prompts, discovery, token cache files). Accepted and
/// ignored, so a string that works with ServiceClient works here.
const IGNORED_KEYS: &[&str] = &[
    "SkipDiscovery",
    "LoginPrompt",
    "RedirectUri",
    "ReplyUrl",
    "TokenCacheStorePath",
    "UserName",
    "User Name",
    "UserId",
    "User Id",
    "Password",
    "Domain",
    "HomeRealmUri",
    "Home Realm Uri",
    "Integrated Security",
];

impl Key {
    /// The value of the first of this setting's keys with a non-blank value.
    fn value<'a>(&self, pairs: &'a Pairs) -> Option<&'a str> {
        self.keys.iter().find_map(|k| {
            let value = pairs.get(&k.to_ascii_lowercase())?.value.expose();
            (!value.trim().is_empty()).then_some(value)
        })
    }

    /// "ClientSecret is required for AuthType=ClientSecret (aliases: Secret)".
    fn required(&self, context: &str) -> String {
        let aliases: Vec<&str> = self
            .keys
            .iter()
            .copied()
            .filter(|k| *k != self.name)
            .collect();
        if aliases.is_empty() {
            format!("{} is required{context}", self.name)
        } else {
            format!(
                "{} is required{context} (aliases: {})",
                self.name,
                aliases.join(", ")
            )
        }
    }
}

fn is_known_key(key: &str) -> bool {
    KEYS.iter()
        .flat_map(|k| k.keys.iter())
        .chain(IGNORED_KEYS)
        .any(|k| k.eq_ignore_ascii_case(key.trim()))
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidSettings(message.into())
}

/// The credential kinds a server-to-server client can use.
enum AuthKind {
    ClientSecret,
    Certificate,
    ManagedIdentity,
    WorkloadIdentity,
}

const SUPPORTED_AUTH_TYPES: &str =
    "use AuthType=ClientSecret, Certificate, ManagedIdentity or WorkloadIdentity";

/// Reads AuthType (case-insensitive). When it is missing, ServiceClient would
/// fail; we infer it from the one credential present, because a string with
/// only a secret or only a thumbprint is unambiguous.
fn auth_kind(
    auth_type: Option<&str>,
    has_secret: bool,
    has_thumbprint: bool,
) -> Result<AuthKind, Error> {
    let Some(value) = auth_type.map(str::trim) else {
        return match (has_secret, has_thumbprint) {
            (true, false) => Ok(AuthKind::ClientSecret),
            (false, true) => Ok(AuthKind::Certificate),
            (true, true) => Err(invalid(format!(
                "AuthType is missing and both ClientSecret and CertificateThumbprint are given; \
                 {SUPPORTED_AUTH_TYPES} to choose"
            ))),
            (false, false) => Err(invalid(
                "AuthType is required (ClientSecret, Certificate, ManagedIdentity or WorkloadIdentity)",
            )),
        };
    };
    let user_sign_in = ["OAuth", "AD", "Office365", "IFD", "Claims"];
    if value.eq_ignore_ascii_case("ClientSecret") {
        Ok(AuthKind::ClientSecret)
    } else if value.eq_ignore_ascii_case("Certificate") {
        Ok(AuthKind::Certificate)
    } else if value.eq_ignore_ascii_case("ManagedIdentity") {
        Ok(AuthKind::ManagedIdentity)
    } else if value.eq_ignore_ascii_case("WorkloadIdentity") {
        Ok(AuthKind::WorkloadIdentity)
    } else if let Some(name) = user_sign_in.iter().find(|n| n.eq_ignore_ascii_case(value)) {
        Err(invalid(format!(
            "AuthType={name} asks for user sign-in, which is not supported by a server-to-server \
             client; use AuthType=ClientSecret or AuthType=Certificate with an app registration"
        )))
    } else if value.eq_ignore_ascii_case("ExternalTokenManagement") {
        Err(invalid(format!(
            "AuthType=ExternalTokenManagement cannot come from a connection string: a host that \
             owns identity connects with client.connect-with-token and supplies the token itself; \
             otherwise {SUPPORTED_AUTH_TYPES}"
        )))
    } else {
        // AuthType may be echoed, but only a plain word: anything else is more
        // likely a value pasted into the wrong place than a typo.
        let plain_word = value.len() <= 40 && value.chars().all(|c| c.is_ascii_alphanumeric());
        let shown = if plain_word { value } else { "(not shown)" };
        Err(invalid(format!(
            "AuthType={shown} is not supported; {SUPPORTED_AUTH_TYPES}"
        )))
    }
}

/// Levenshtein distance, for the "misspelt key?" hint.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The message for a missing setting, plus a hint when an unknown key looks
/// like a misspelling of one of its keys. Only a key that is within two edits
/// of a known key name is shown, so a stray fragment of a value is not echoed.
fn missing(key: &Key, context: &str, pairs: &Pairs) -> Error {
    let mut message = key.required(context);
    let misspelt = pairs.values().map(|e| e.key.as_str()).find(|k| {
        !is_known_key(k)
            && k.chars().count() >= 3
            && key.keys.iter().any(|known| {
                edit_distance(&k.to_ascii_lowercase(), &known.to_ascii_lowercase()) <= 2
            })
    });
    if let Some(k) = misspelt {
        message.push_str(&format!(
            "; the connection string has an unknown key '{k}' — is it misspelt?"
        ));
    }
    invalid(message)
}

/// `KeyVaultUrl` + `CertificateName` (+ `CertificateVersion`): the key id
/// `{vault}/certificates/{name}[/{version}]` the host's signer is given.
fn key_vault_certificate(pairs: &Pairs, has_thumbprint: bool) -> Result<Credential, Error> {
    if has_thumbprint {
        return Err(invalid(
            "give either CertificateThumbprint (a certificate in the host's store) or \
             KeyVaultUrl with CertificateName (a certificate in Azure Key Vault), not both",
        ));
    }
    let vault = KEY_VAULT_URL.value(pairs).unwrap_or_default();
    let vault = normalize_vault_url(vault)?;
    let name = CERTIFICATE_NAME.value(pairs).ok_or_else(|| {
        missing(
            &CERTIFICATE_NAME,
            " with KeyVaultUrl: the name of the certificate in the vault",
            pairs,
        )
    })?;
    let name = key_vault_name(name.trim(), "CertificateName")?;
    let mut key_id = format!("{vault}/certificates/{name}");
    if let Some(version) = CERTIFICATE_VERSION.value(pairs) {
        key_id.push('/');
        key_id.push_str(key_vault_name(version.trim(), "CertificateVersion")?);
    }
    Ok(Credential::HostKey(key_id))
}

/// A host key id as given field by field: trimmed, not empty, no control
/// characters (it names the key to the host's signer, and may end up in a
/// URL or a log line).
fn host_key_id(key_id: &str) -> Result<String, Error> {
    let key_id = key_id.trim();
    if key_id.is_empty() || key_id.chars().any(char::is_control) {
        return Err(invalid(
            "the host key id is empty or has control characters; give the id the \
             host's signer knows, e.g. https://myvault.vault.azure.net/certificates/name",
        ));
    }
    Ok(key_id.to_string())
}

/// `https://{vault}.vault.azure.net/` → `https://{vault}.vault.azure.net`
/// (lower-case host, no path): any https host, since sovereign clouds and
/// Managed HSM have their own suffixes.
fn normalize_vault_url(url: &str) -> Result<String, Error> {
    let bad = || {
        invalid(
            "KeyVaultUrl must be the vault's URL, e.g. https://myvault.vault.azure.net/ \
             (https, no path)",
        )
    };
    let rest = url.trim();
    let rest = rest
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .map(|_| &rest[8..])
        .ok_or_else(bad)?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if !is_host_and_port(host) {
        return Err(bad());
    }
    Ok(format!("https://{}", host.to_ascii_lowercase()))
}

/// A Key Vault object name or version: 1-127 letters, digits and dashes
/// (what Key Vault allows), so it is a path segment as written.
fn key_vault_name<'a>(value: &'a str, key: &str) -> Result<&'a str, Error> {
    let ok = !value.is_empty()
        && value.len() <= 127
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(value)
    } else {
        Err(invalid(format!(
            "{key} must be 1 to 127 letters, digits and dashes, as Key Vault names are"
        )))
    }
}

/// `ClientId`, `ObjectId` or `ResourceId` of a user-assigned identity (at
/// most one), or none for the system-assigned identity.
fn managed_identity_id(pairs: &Pairs) -> Result<Credential, Error> {
    let given: Vec<ManagedIdentityId> = [
        CLIENT_ID
            .value(pairs)
            .map(|v| ManagedIdentityId::ClientId(v.to_string())),
        OBJECT_ID
            .value(pairs)
            .map(|v| ManagedIdentityId::ObjectId(v.to_string())),
        RESOURCE_ID
            .value(pairs)
            .map(|v| ManagedIdentityId::ResourceId(v.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    match <[ManagedIdentityId; 1]>::try_from(given) {
        Ok([id]) => Ok(Credential::ManagedIdentity(id)),
        Err(none) if none.is_empty() => Ok(Credential::ManagedIdentity(
            ManagedIdentityId::SystemAssigned,
        )),
        Err(_) => Err(invalid(
            "a user-assigned managed identity is named by one of ClientId, ObjectId or \
             ResourceId, not several; leave all out for the system-assigned identity",
        )),
    }
}

/// Parses a ServiceClient connection string, e.g.
/// `AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=…;ClientSecret=…`,
/// into validated [`Settings`].
///
/// Beyond ServiceClient: AuthType may be left out when only a client secret or
/// only a thumbprint is given; `TenantId`/`Tenant`, `Authority`,
/// `AuthorityHost`, `CertificatePassword`/`CertPassword` and
/// `AllowHttpLoopback` are extensions, and so are `AuthType=ManagedIdentity`
/// (optional `ClientId`, `ObjectId`/`PrincipalId` or `ResourceId` of a
/// user-assigned identity), `AuthType=Certificate` with `KeyVaultUrl`,
/// `CertificateName` and optional `CertificateVersion` (a certificate whose
/// key stays in Azure Key Vault: the host signs) and `AuthType=WorkloadIdentity` (`ClientId`,
/// `TenantId` and `TokenFile`, each defaulting to its azure-identity
/// environment variable when the client connects, or
/// `FederatedToken=GitHubActions`).
/// Unknown keys are ignored, like DbConnectionStringBuilder does.
pub fn parse(connection_string: &str) -> Result<Settings, Error> {
    parse_as::<true>(connection_string)
}

/// [`parse`] for a caller that says whether settings may name a key the
/// host holds (`KeyVaultUrl`, the `host-key` credential). `true`: native
/// hosts and the signing component. `false`: a component that cannot ask
/// its host to sign (the plain client, the gateway, the command component),
/// which refuses them with [`crate::transport::no_signer`]'s message. A
/// const parameter rather than a flag, so that the Key Vault code is not
/// even compiled into those components: they must not grow for a
/// credential they cannot use.
pub fn parse_as<const HOST_KEYS: bool>(connection_string: &str) -> Result<Settings, Error> {
    let pairs = connection_string::tokenize(connection_string).map_err(|e| {
        let shown_key = e.key.as_deref().filter(|k| is_known_key(k));
        invalid(e.message(shown_key))
    })?;

    let secret = CLIENT_SECRET.value(&pairs);
    let thumbprint = THUMBPRINT.value(&pairs);
    // AuthType first: a user sign-in string usually lacks ClientId too, and
    // "not supported" is the message that helps.
    let kind = auth_kind(
        AUTH_TYPE.value(&pairs),
        secret.is_some(),
        thumbprint.is_some(),
    )?;
    let org_url = URL
        .value(&pairs)
        .ok_or_else(|| missing(&URL, ", e.g. Url=https://yourorg.crm.dynamics.com/", &pairs))?;
    // A managed identity needs no app id (system-assigned), and a workload
    // identity may take it from AZURE_CLIENT_ID when the client connects.
    let client_id = match kind {
        AuthKind::ManagedIdentity | AuthKind::WorkloadIdentity => {
            CLIENT_ID.value(&pairs).unwrap_or_default()
        }
        AuthKind::ClientSecret | AuthKind::Certificate => {
            CLIENT_ID.value(&pairs).ok_or_else(|| {
                missing(
                    &CLIENT_ID,
                    ": the application (client) id of the app registration",
                    &pairs,
                )
            })?
        }
    };
    let credential = match kind {
        AuthKind::ClientSecret => {
            let secret = secret
                .ok_or_else(|| missing(&CLIENT_SECRET, " for AuthType=ClientSecret", &pairs))?;
            Credential::ClientSecret(Secret::new(secret))
        }
        AuthKind::Certificate if KEY_VAULT_URL.value(&pairs).is_some() => {
            if !HOST_KEYS {
                return Err(crate::transport::no_signer());
            }
            key_vault_certificate(&pairs, thumbprint.is_some())?
        }
        AuthKind::Certificate => {
            let thumbprint = thumbprint
                .ok_or_else(|| missing(&THUMBPRINT, " for AuthType=Certificate", &pairs))?;
            Credential::Certificate {
                thumbprint: thumbprint.to_string(),
                store_name: STORE_NAME.value(&pairs).map(str::to_string),
                password: CERT_PASSWORD.value(&pairs).map(Secret::new),
            }
        }
        AuthKind::ManagedIdentity => managed_identity_id(&pairs)?,
        AuthKind::WorkloadIdentity => {
            let file = TOKEN_FILE.value(&pairs).map(str::to_string);
            match FEDERATED_TOKEN.value(&pairs).map(str::trim) {
                None => Credential::WorkloadIdentity(FederatedTokenSource::File(file)),
                Some(v) if v.eq_ignore_ascii_case("File") => {
                    Credential::WorkloadIdentity(FederatedTokenSource::File(file))
                }
                Some(v) if v.eq_ignore_ascii_case("GitHubActions") => {
                    if file.is_some() {
                        return Err(invalid(
                            "give either TokenFile or FederatedToken=GitHubActions, not both",
                        ));
                    }
                    Credential::WorkloadIdentity(FederatedTokenSource::GitHubActions)
                }
                Some(_) => {
                    return Err(invalid(
                        "FederatedToken must be File (the default: TokenFile or \
                         AZURE_FEDERATED_TOKEN_FILE) or GitHubActions",
                    ));
                }
            }
        }
    };
    // ServiceClient defaults RequireNewInstance to true.
    let require_new_instance = match REQUIRE_NEW_INSTANCE.value(&pairs).map(str::trim) {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(invalid("RequireNewInstance must be true or false")),
    };
    let allow_http_loopback = match ALLOW_HTTP_LOOPBACK.value(&pairs).map(str::trim) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(invalid("AllowHttpLoopback must be true or false")),
    };
    let trusted_authority_hosts = AUTHORITY_HOST
        .value(&pairs)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    Settings {
        org_url: org_url.to_string(),
        client_id: client_id.to_string(),
        credential,
        tenant_id: TENANT_ID.value(&pairs).map(str::to_string),
        authority: AUTHORITY.value(&pairs).map(str::to_string),
        trusted_authority_hosts,
        require_new_instance,
        allow_http_loopback,
    }
    .validate_as::<HOST_KEYS>()
}

impl Settings {
    /// Normalises and checks settings built field by field (e.g. from the WIT
    /// record); [`parse`] ends here too. See the field docs for the normal forms.
    pub fn validate(self) -> Result<Settings, Error> {
        self.validate_as::<true>()
    }

    /// [`Settings::validate`] that refuses a key the host holds unless
    /// `HOST_KEYS` (see [`parse_as`]).
    pub fn validate_as<const HOST_KEYS: bool>(self) -> Result<Settings, Error> {
        self.checked(HOST_KEYS)
    }

    /// The checks, one copy for both `HOST_KEYS`: in a component that
    /// cannot sign every call passes `false`, and the optimiser drops the
    /// host-key check.
    fn checked(self, host_keys: bool) -> Result<Settings, Error> {
        let org_url = check_org_url(&self.org_url, self.allow_http_loopback)?;
        let client_id = self.client_id.trim();
        let identity = matches!(
            self.credential,
            Credential::ManagedIdentity(_) | Credential::WorkloadIdentity(_)
        );
        if client_id.is_empty() && !identity {
            return Err(invalid(
                CLIENT_ID.required(": the application (client) id of the app registration"),
            ));
        }
        if matches!(self.credential, Credential::ManagedIdentity(_))
            && (self.tenant_id.is_some()
                || self.authority.is_some()
                || !self.trusted_authority_hosts.is_empty())
        {
            return Err(invalid(
                "TenantId, Authority and AuthorityHost do not apply to AuthType=ManagedIdentity: \
                 the platform's identity endpoint knows the identity's tenant",
            ));
        }
        let credential = match self.credential {
            Credential::ClientSecret(secret) => {
                let trimmed = secret.expose().trim();
                if trimmed.is_empty() {
                    return Err(invalid(
                        CLIENT_SECRET.required(" for AuthType=ClientSecret"),
                    ));
                }
                // Entra secrets never contain whitespace; a newline read from a
                // file or variable would otherwise fail later as "wrong secret".
                if trimmed.len() == secret.expose().len() {
                    Credential::ClientSecret(secret)
                } else {
                    Credential::ClientSecret(Secret::new(trimmed))
                }
            }
            Credential::Certificate {
                thumbprint,
                store_name,
                password,
            } => Credential::Certificate {
                thumbprint: normalize_thumbprint(&thumbprint)?,
                store_name: store_name
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
                // An empty PFX password is the same as none.
                password: password.filter(|p| !p.is_empty()),
            },
            Credential::CertificatePem(pem) => {
                if !pem.expose().contains("-----BEGIN") {
                    return Err(invalid(
                        "the certificate PEM holds no PEM block (-----BEGIN CERTIFICATE----- and a private key)",
                    ));
                }
                Credential::CertificatePem(pem)
            }
            Credential::HostKey(key_id) if host_keys => Credential::HostKey(host_key_id(&key_id)?),
            Credential::HostKey(_) => return Err(crate::transport::no_signer()),
            Credential::ExternalToken => Credential::ExternalToken,
            Credential::ManagedIdentity(id) => Credential::ManagedIdentity(normalize_identity(id)?),
            Credential::WorkloadIdentity(FederatedTokenSource::File(Some(path))) => {
                let path = path.trim();
                if path.is_empty() {
                    return Err(invalid(
                        "TokenFile is empty; give the federated token file's path, or leave it \
                         out to use AZURE_FEDERATED_TOKEN_FILE",
                    ));
                }
                Credential::WorkloadIdentity(FederatedTokenSource::File(Some(path.to_string())))
            }
            Credential::WorkloadIdentity(source) => Credential::WorkloadIdentity(source),
        };
        let tenant_id = match self.tenant_id {
            None => None,
            Some(t) => Some(normalize_tenant(&t)?),
        };
        let authority = match self.authority {
            None => None,
            Some(a) => Some(org_url::normalize_authority(&a, self.allow_http_loopback)?),
        };
        if tenant_id.is_some() && authority.is_some() {
            return Err(invalid(
                "give either TenantId or Authority, not both (Authority already names the tenant)",
            ));
        }
        let trusted_authority_hosts = self
            .trusted_authority_hosts
            .iter()
            .map(|h| org_url::normalize_host(h))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Settings {
            org_url,
            client_id: client_id.to_string(),
            credential,
            tenant_id,
            authority,
            trusted_authority_hosts,
            require_new_instance: self.require_new_instance,
            allow_http_loopback: self.allow_http_loopback,
        })
    }
}

/// Upper-case 40 hex digits. Spaces, colons and the invisible U+200E that the
/// Windows certificate dialog puts in front of a copied thumbprint are ignored.
fn normalize_thumbprint(thumbprint: &str) -> Result<String, Error> {
    let digits: String = thumbprint
        .chars()
        .filter(|c| !(c.is_whitespace() || matches!(c, ':' | '\u{200E}' | '\u{200F}' | '\u{FEFF}')))
        .collect();
    if digits.is_empty() {
        return Err(invalid(THUMBPRINT.required(" for AuthType=Certificate")));
    }
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid(
            "CertificateThumbprint must be hex digits (spaces and colons are ignored); it \
             contains other characters",
        ));
    }
    if digits.len() != 40 {
        let sha256 = if digits.len() == 64 {
            " (that looks like a SHA-256 thumbprint)"
        } else {
            ""
        };
        return Err(invalid(format!(
            "CertificateThumbprint must be the certificate's SHA-1 thumbprint, 40 hex digits; \
             it has {}{sha256}",
            digits.len()
        )));
    }
    Ok(digits.to_ascii_uppercase())
}

/// A user-assigned identity's id, trimmed; it becomes a query parameter of
/// the identity endpoint's URL (percent-encoded there).
fn normalize_identity(id: ManagedIdentityId) -> Result<ManagedIdentityId, Error> {
    let check = |value: String, name: &str| {
        let value = value.trim();
        if value.is_empty() {
            Err(invalid(format!(
                "{name} is empty; name the user-assigned identity, or leave {name} out for the \
                 system-assigned identity"
            )))
        } else {
            Ok(value.to_string())
        }
    };
    Ok(match id {
        ManagedIdentityId::SystemAssigned => ManagedIdentityId::SystemAssigned,
        ManagedIdentityId::ClientId(v) => ManagedIdentityId::ClientId(check(v, "ClientId")?),
        ManagedIdentityId::ObjectId(v) => ManagedIdentityId::ObjectId(check(v, "ObjectId")?),
        ManagedIdentityId::ResourceId(v) => {
            let v = check(v, "ResourceId")?;
            if !v.to_ascii_lowercase().starts_with("/subscriptions/") {
                return Err(invalid(
                    "ResourceId must be the identity's Azure resource id: \
                     /subscriptions/{subscription}/resourceGroups/{group}/providers/\
                     Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                ));
            }
            ManagedIdentityId::ResourceId(v)
        }
    })
}

/// A tenant id (GUID) or domain; it becomes a path segment of the authority,
/// so only characters that need no escaping are allowed.
fn normalize_tenant(tenant: &str) -> Result<String, Error> {
    let tenant = tenant.trim();
    if tenant.is_empty() {
        return Err(invalid(
            "TenantId is empty; give the tenant id (GUID) or a domain such as \
             contoso.onmicrosoft.com, or leave it out to discover it",
        ));
    }
    if !tenant
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(invalid(
            "TenantId must be a tenant id (GUID) or a domain such as contoso.onmicrosoft.com",
        ));
    }
    Ok(tenant.to_string())
}

#[cfg(test)]
mod tests;
