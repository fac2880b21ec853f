//! The one error type the core returns; it maps 1:1 onto the WIT `error` variant.

use std::fmt;

/// Why a call failed, typed so a host can branch on it.
/// Messages never contain a secret value or an access token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The connection settings are wrong; the message names the key.
    InvalidSettings(String),
    /// The arguments of a call are wrong; the message names the argument.
    InvalidRequest(String),
    /// The token endpoint failed: Entra ID refused to issue a token, answered
    /// something unreadable, or issued a token that is not a Bearer token.
    Authentication(Box<AuthFailure>),
    /// The authority (tenant / login host) is unknown, untrusted or unusable.
    Authority(String),
    /// Dataverse answered 403 (no Application User, missing privilege).
    AccessDenied(ServiceFailure),
    /// Dataverse answered 404.
    NotFound(ServiceFailure),
    /// Dataverse answered 412 (ETag mismatch, or an upsert guard).
    PreconditionFailed(ServiceFailure),
    /// Dataverse throttled the call (429) and retries were exhausted.
    Throttled {
        retry_after_seconds: Option<u64>,
        failure: ServiceFailure,
    },
    /// Any other Dataverse error.
    Service(ServiceFailure),
    /// The connection failed after the request may have left: it may have
    /// reached the server, so only an idempotent request is sent again.
    Transport(String),
    /// No connection could be made (DNS, refused, connect timeout, TLS):
    /// not one byte of the request left, so resending it is safe for any
    /// method, and useless when `permanent` (an unknown host name, an
    /// untrusted certificate). Shown to callers as a transport error.
    Unsent { message: String, permanent: bool },
    /// The server answered something this client cannot understand.
    InvalidResponse(String),
}

/// A token endpoint error, as Entra ID reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthFailure {
    /// HTTP status of the token response.
    pub status: u16,
    /// The AADSTS number (7000215 for `AADSTS7000215`), when present.
    pub code: Option<u32>,
    /// The OAuth `error` field, e.g. `invalid_client`.
    pub error: String,
    /// The `error_description`, first line only (without trace/correlation lines).
    pub description: String,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    /// What the user should do, for the codes we know.
    pub hint: Option<String>,
}

/// A Dataverse Web API error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceFailure {
    pub status: u16,
    /// The Dataverse error code, e.g. `0x80072560`.
    pub code: Option<String>,
    pub message: String,
    /// `x-ms-service-request-id` of the failed response.
    pub request_id: Option<String>,
    /// What the user should do, for the codes we know.
    pub hint: Option<String>,
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) if !self.description.starts_with("AADSTS") => {
                write!(f, "AADSTS{code}: {}", self.description)?
            }
            _ => write!(f, "{}", self.description)?,
        }
        if self.description.is_empty() {
            write!(f, "{} (HTTP {})", self.error, self.status)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ServiceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidSettings(m) => write!(f, "invalid settings: {m}"),
            Error::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            Error::Authentication(a) => write!(f, "authentication failed: {a}"),
            Error::Authority(m) => write!(f, "authority: {m}"),
            Error::AccessDenied(s) => write!(f, "access denied: {s}"),
            Error::NotFound(s) => write!(f, "not found: {s}"),
            Error::PreconditionFailed(s) => write!(f, "precondition failed: {s}"),
            Error::Throttled {
                retry_after_seconds,
                failure,
            } => {
                write!(f, "throttled: {failure}")?;
                if let Some(s) = retry_after_seconds {
                    write!(f, " (retry after {s} s)")?;
                }
                Ok(())
            }
            Error::Service(s) => write!(f, "Dataverse error: {s}"),
            Error::Transport(m) | Error::Unsent { message: m, .. } => write!(f, "transport: {m}"),
            Error::InvalidResponse(m) => write!(f, "invalid response: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// One line a person can act on, as every front end prints it (the CLI,
/// the command component, `dataverse_host::session::describe`): the
/// kind, the wire facts people read (status, Dataverse code, AADSTS
/// number) and the hint; with the attempts when there was more than one.
/// Never a secret: errors carry none.
pub fn describe(error: &Error, attempts: Option<u32>) -> String {
    let mut line = match error {
        Error::Authentication(a) => {
            let mut line = format!(
                "authentication failed (HTTP {}, {}): {}",
                a.status, a.error, a.description
            );
            if let Some(code) = a.code.filter(|_| !a.description.starts_with("AADSTS")) {
                line.push_str(&format!(" [AADSTS{code}]"));
            }
            if let Some(hint) = &a.hint {
                line.push_str(&format!(" — {hint}"));
            }
            line
        }
        other => other.to_string(),
    };
    if let Some(attempts) = attempts.filter(|&n| n > 1)
        && !line.contains("attempts")
    {
        line.push_str(&format!(" ({attempts} attempts)"));
    }
    line
}

/// The WIT `error-kind` case of an error (`not-found`, `transport`, …):
/// the name scripts branch on (`--json`'s `kind`, the exit-code table).
pub fn kind_name(error: &Error) -> &'static str {
    match error {
        Error::InvalidSettings(_) => "invalid-settings",
        Error::InvalidRequest(_) => "invalid-request",
        Error::Authentication(_) => "authentication",
        Error::Authority(_) => "authority",
        Error::AccessDenied(_) => "access-denied",
        Error::NotFound(_) => "not-found",
        Error::PreconditionFailed(_) => "precondition-failed",
        Error::Throttled { .. } => "throttled",
        Error::Service(_) => "service",
        Error::Transport(_) | Error::Unsent { .. } => "transport",
        Error::InvalidResponse(_) => "invalid-response",
    }
}
