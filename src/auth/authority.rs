//! The authority: which Entra ID host and tenant issue our tokens, and for
//! which scope. Found from Dataverse's `WWW-Authenticate` challenge, or from
//! the `TenantId` / `Authority` settings.

use super::cloud;
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::settings::{Settings, is_host_and_port, is_loopback_host, strip_port};

/// Tenants that need a user; client credentials require a real tenant.
const MULTI_TENANT_ALIASES: &[&str] = &["common", "organizations", "consumers"];

/// An Entra ID authority: `https://{host}/{tenant}` (`http://` only for an
/// opted-in loopback test authority).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// `host[:port]`, lower case.
    pub host: String,
    pub tenant: String,
    /// False only for a loopback `http://` authority (`AllowHttpLoopback`).
    pub https: bool,
}

impl Authority {
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/{}", self.host, self.tenant)
    }

    /// The v2.0 token endpoint; also the `aud` of a client assertion.
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.url())
    }

    /// Parses `https://host/tenant[/anything]`. Does not decide whether the
    /// host is trusted: see [`from_discovery`].
    pub fn parse(url: &str) -> Result<Authority, Error> {
        Authority::parse_allowing(url, false)
    }

    /// [`Authority::parse`], also taking `http://` for a loopback host
    /// (127.0.0.1, localhost, [::1]) when `allow_http_loopback` is set.
    pub fn parse_allowing(url: &str, allow_http_loopback: bool) -> Result<Authority, Error> {
        let not_https = || Error::Authority(format!("the authority '{url}' is not an https URL"));
        let (https, rest) = match strip_prefix_ignore_case(url, "https://") {
            Some(rest) => (true, rest),
            None if allow_http_loopback => (
                false,
                strip_prefix_ignore_case(url, "http://").ok_or_else(not_https)?,
            ),
            None => return Err(not_https()),
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = host.to_ascii_lowercase();
        // A discovered authority comes from whoever answered at Url. The
        // trust checks below look at the host (without its port, for
        // loopback), so it must be a plain host[:port]: `localhost:@evil.example`
        // would pass as loopback and send the credential to evil.example.
        if !is_host_and_port(&host) {
            return Err(Error::Authority(format!(
                "the authority '{url}' has an invalid host; expected https://login.microsoftonline.com/{{tenant}}"
            )));
        }
        if !https && !is_loopback_host(strip_port(&host)) {
            return Err(Error::Authority(format!(
                "the authority '{url}' is plain http on a host that is not loopback; only \
                 127.0.0.1, localhost and [::1] may be http (AllowHttpLoopback)"
            )));
        }
        let tenant = path.split('/').next().unwrap_or("").trim();
        if host.is_empty() || tenant.is_empty() {
            return Err(Error::Authority(format!(
                "the authority '{url}' has no tenant; expected https://login.microsoftonline.com/{{tenant}}"
            )));
        }
        let tenant = tenant.to_string();
        if MULTI_TENANT_ALIASES
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&tenant))
        {
            return Err(Error::Authority(format!(
                "the authority names the '{tenant}' tenant; client credentials need a specific tenant (its GUID or domain)"
            )));
        }
        Ok(Authority {
            host,
            tenant,
            https,
        })
    }
}

/// Where the authority comes from before any I/O: the settings name it, or
/// it has to be discovered. An `Authority` the user wrote is trusted as
/// written; a `TenantId` uses the login host of the org's cloud.
pub fn from_settings(settings: &Settings) -> Option<Result<Authority, Error>> {
    if let Some(authority) = &settings.authority {
        return Some(Authority::parse_allowing(
            authority,
            settings.allow_http_loopback,
        ));
    }
    let tenant = settings.tenant_id.as_ref()?;
    let url = format!(
        "https://{}/{}",
        default_login_host(&settings.org_url),
        tenant
    );
    Some(Authority::parse(&url))
}

/// An authority URL handed back by a host (from `parse-challenge` or the
/// settings): the settings' own authority is trusted as written; any other
/// must pass the same check as a discovered one.
pub fn checked(url: &str, settings: &Settings) -> Result<Authority, Error> {
    let authority = Authority::parse_allowing(url, loopback_test(settings))?;
    let configured = from_settings(settings).and_then(Result::ok);
    if configured.as_ref() != Some(&authority) {
        check_trusted_host(&authority.host, settings)?;
    }
    Ok(authority)
}

/// The scope to ask for when the settings skip discovery.
pub fn default_scope(settings: &Settings) -> String {
    format!("{}/.default", settings.org_url)
}

/// The login host of the cloud the org lives in, from its domain suffix.
fn default_login_host(org_url: &str) -> &'static str {
    cloud::of_org_host(org_host(org_url)).map_or("login.microsoftonline.com", |c| c.login_hosts[0])
}

/// `https://host[:port]` → `host`.
fn org_host(org_url: &str) -> &str {
    let host = org_url
        .strip_prefix("https://")
        .or_else(|| org_url.strip_prefix("http://"))
        .unwrap_or(org_url);
    strip_port(host)
}

/// The settings opt in to loopback http and the org itself is on loopback:
/// a test against a local fake, where a loopback authority is expected.
fn loopback_test(settings: &Settings) -> bool {
    settings.allow_http_loopback && is_loopback_host(org_host(&settings.org_url))
}

/// A discovered authority host may receive our credential only if it is a
/// login host of the org's own cloud (any Microsoft login host when the org
/// is not on a Microsoft domain), or the settings trust it explicitly.
fn check_trusted_host(host: &str, settings: &Settings) -> Result<(), Error> {
    if settings.trusted_authority_hosts.iter().any(|h| h == host) {
        return Ok(());
    }
    if loopback_test(settings) && is_loopback_host(strip_port(host)) {
        return Ok(());
    }
    let refuse = |why: String| {
        Err(Error::Authority(format!(
            "{why}; no credential was sent. If you trust it, add AuthorityHost={host} to the settings"
        )))
    };
    match cloud::of_org_host(org_host(&settings.org_url)) {
        Some(cloud) if cloud.login_hosts.contains(&host) => Ok(()),
        Some(cloud) => refuse(format!(
            "the authority host '{host}' does not belong to the org's cloud ({}, whose login host is {})",
            cloud.name, cloud.login_hosts[0]
        )),
        None if cloud::all_login_hosts().any(|h| h == host) => Ok(()),
        None => refuse(format!(
            "the authority host '{host}' is not a known Microsoft Entra ID host"
        )),
    }
}

/// The parameters of a `WWW-Authenticate: Bearer …` challenge we use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub authorization_uri: String,
    pub resource_id: Option<String>,
}

/// The unauthenticated request whose 401 tells us the tenant.
pub fn discovery_request(org_url: &str) -> Request {
    Request::new(Method::Get, format!("{org_url}/api/data/v9.2/"))
        .header("Accept", "application/json")
}

/// Reads the authority and the scope from the discovery response.
pub fn from_discovery(
    response: &Response,
    settings: &Settings,
) -> Result<(Authority, String), Error> {
    let Some(header) = response.header("www-authenticate") else {
        return Err(Error::Authority(format!(
            "{} answered HTTP {} without a WWW-Authenticate challenge; is Url a Dataverse environment?",
            settings.org_url, response.status
        )));
    };
    let challenge = parse_challenge(header)?;
    let authority_url = challenge
        .authorization_uri
        .trim_end_matches('/')
        .trim_end_matches("/oauth2/authorize")
        .trim_end_matches("/oauth2/v2.0/authorize");
    let authority = Authority::parse_allowing(authority_url, loopback_test(settings))?;
    // The challenge comes from whoever answered at Url: only a known Entra
    // host (or one the settings trust) may receive our credential.
    check_trusted_host(&authority.host, settings)?;
    let scope = match challenge.resource_id {
        Some(resource) if resource.ends_with('/') => format!("{resource}.default"),
        Some(resource) => format!("{resource}/.default"),
        None => default_scope(settings),
    };
    Ok((authority, scope))
}

/// Parses the Bearer challenge: `Bearer authorization_uri=…, resource_id=…`
/// (values may be quoted; other schemes in the same header are skipped).
pub fn parse_challenge(header: &str) -> Result<Challenge, Error> {
    let bearer = find_bearer(header).ok_or_else(|| {
        Error::InvalidResponse("the WWW-Authenticate header has no Bearer challenge".into())
    })?;
    let mut authorization_uri = None;
    let mut resource_id = None;
    for param in bearer.split(',') {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization_uri" | "authorization" => authorization_uri = Some(value),
            "resource_id" | "resource" => resource_id = Some(value),
            _ => {}
        }
    }
    let authorization_uri = authorization_uri.ok_or_else(|| {
        Error::InvalidResponse("the Bearer challenge has no authorization_uri".into())
    })?;
    Ok(Challenge {
        authorization_uri,
        resource_id,
    })
}

/// The parameters following the `Bearer` scheme token.
fn find_bearer(header: &str) -> Option<&str> {
    let lower = header.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("bearer") {
        let start = from + i;
        let end = start + "bearer".len();
        let at_word_start = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        let followed_by_space = header[end..].starts_with(' ');
        if at_word_start && followed_by_space {
            return Some(header[end..].trim());
        }
        from = end;
    }
    None
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::settings::Credential;

    fn settings() -> Settings {
        Settings {
            org_url: "https://contoso.crm.dynamics.com".into(),
            client_id: "app".into(),
            credential: Credential::ClientSecret(Secret::new("s")),
            tenant_id: None,
            authority: None,
            trusted_authority_hosts: vec![],
            require_new_instance: false,
            allow_http_loopback: false,
        }
    }

    fn challenge_response(header: &str) -> Response {
        Response {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), header.into())],
            body: vec![],
        }
    }

    #[test]
    fn discovery_reads_tenant_and_scope_from_the_dataverse_challenge() {
        let response = challenge_response(
            "Bearer authorization_uri=https://login.microsoftonline.com/tid-1/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
        );
        let (authority, scope) = from_discovery(&response, &settings()).unwrap();
        assert_eq!(authority.url(), "https://login.microsoftonline.com/tid-1");
        assert_eq!(
            authority.token_endpoint(),
            "https://login.microsoftonline.com/tid-1/oauth2/v2.0/token"
        );
        assert_eq!(scope, "https://contoso.crm.dynamics.com/.default");
    }

    #[test]
    fn challenge_values_may_be_quoted_and_resource_may_lack_the_slash() {
        let response = challenge_response(
            r#"Basic realm="x", Bearer authorization_uri="https://login.microsoftonline.us/t/oauth2/authorize", resource_id="https://org.crm.microsoftdynamics.us""#,
        );
        let mut gcc_high = settings();
        gcc_high.org_url = "https://org.crm.microsoftdynamics.us".into();
        let (authority, scope) = from_discovery(&response, &gcc_high).unwrap();
        assert_eq!(authority.host, "login.microsoftonline.us");
        assert_eq!(scope, "https://org.crm.microsoftdynamics.us/.default");
    }

    #[test]
    fn an_unknown_authority_host_is_refused_unless_trusted() {
        let response = challenge_response(
            "Bearer authorization_uri=https://login.evil.example/t/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
        );
        let err = from_discovery(&response, &settings()).unwrap_err();
        assert!(
            matches!(&err, Error::Authority(m) if m.contains("login.evil.example")),
            "{err}"
        );
        let mut trusting = settings();
        trusting.trusted_authority_hosts = vec!["login.evil.example".into()];
        assert!(from_discovery(&response, &trusting).is_ok());
    }

    #[test]
    fn a_missing_or_malformed_challenge_is_a_typed_error() {
        let no_header = Response {
            status: 200,
            headers: vec![],
            body: vec![],
        };
        assert!(matches!(
            from_discovery(&no_header, &settings()),
            Err(Error::Authority(_))
        ));
        for bad in [
            "Basic realm=x",
            "Bearer",
            "Bearer resource_id=x",
            "Bearerx a=b",
            "",
        ] {
            assert!(
                from_discovery(&challenge_response(bad), &settings()).is_err(),
                "{bad}"
            );
        }
        let no_tenant =
            challenge_response("Bearer authorization_uri=https://login.microsoftonline.com/");
        assert!(matches!(
            from_discovery(&no_tenant, &settings()),
            Err(Error::Authority(_))
        ));
    }

    #[test]
    fn a_discovered_authority_of_another_cloud_is_refused() {
        let us = challenge_response(
            "Bearer authorization_uri=https://login.microsoftonline.us/t/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
        );
        let err = from_discovery(&us, &settings()).unwrap_err();
        assert!(
            matches!(&err, Error::Authority(m) if m.contains("login.microsoftonline.us") && m.contains("commercial")),
            "{err}"
        );
        let mut custom = settings();
        custom.org_url = "https://crm.contoso.example".into();
        assert!(
            from_discovery(&us, &custom).is_ok(),
            "a non-Microsoft org domain accepts any Microsoft login host"
        );
    }

    #[test]
    fn multi_tenant_authorities_are_refused() {
        for tenant in ["common", "Organizations", "consumers"] {
            let url = format!("https://login.microsoftonline.com/{tenant}");
            let err = Authority::parse(&url).unwrap_err();
            assert!(err.to_string().contains("specific tenant"), "{err}");
        }
    }

    #[test]
    fn tenant_id_setting_skips_discovery_on_the_orgs_cloud() {
        let mut s = settings();
        s.tenant_id = Some("contoso.onmicrosoft.com".into());
        let a = from_settings(&s).unwrap().unwrap();
        assert_eq!(
            a.url(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com"
        );
        s.org_url = "https://x.crm.microsoftdynamics.us".into();
        assert_eq!(
            from_settings(&s).unwrap().unwrap().host,
            "login.microsoftonline.us"
        );
        s.org_url = "https://x.crm.dynamics.cn".into();
        assert_eq!(
            from_settings(&s).unwrap().unwrap().host,
            "login.chinacloudapi.cn"
        );
        assert!(from_settings(&settings()).is_none());
    }

    #[test]
    fn authority_setting_is_parsed_and_trusted_as_written() {
        let mut s = settings();
        s.authority = Some("https://login.microsoftonline.com/tid/".into());
        assert_eq!(from_settings(&s).unwrap().unwrap().tenant, "tid");
        s.authority = Some("https://login.contoso-proxy.example/tid".into());
        assert_eq!(
            from_settings(&s).unwrap().unwrap().host,
            "login.contoso-proxy.example"
        );
        s.authority = Some("http://login.microsoftonline.com/tid".into());
        assert!(from_settings(&s).unwrap().is_err());
    }

    fn loopback_settings(org_url: &str, allow: bool) -> Settings {
        Settings {
            org_url: org_url.into(),
            allow_http_loopback: allow,
            ..settings()
        }
    }

    #[test]
    fn a_loopback_authority_is_accepted_only_for_an_opted_in_loopback_org() {
        let local = "Bearer authorization_uri=http://localhost:9000/tid/oauth2/authorize, resource_id=http://127.0.0.1:9000/";
        let local_https = "Bearer authorization_uri=https://localhost:9000/tid/oauth2/authorize, resource_id=https://127.0.0.1:9000/";
        let microsoft = "Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, resource_id=http://127.0.0.1:9000/";
        let evil_http = "Bearer authorization_uri=http://login.evil.example/tid/oauth2/authorize, resource_id=http://127.0.0.1:9000/";
        // (org, opt-in, challenge, Ok(authority url) or Err)
        let cases = [
            (
                "http://127.0.0.1:9000",
                true,
                local,
                Some("http://localhost:9000/tid"),
            ),
            (
                "http://127.0.0.1:9000",
                true,
                local_https,
                Some("https://localhost:9000/tid"),
            ),
            (
                "https://127.0.0.1:9000",
                true,
                local,
                Some("http://localhost:9000/tid"),
            ),
            (
                "http://127.0.0.1:9000",
                true,
                microsoft,
                Some("https://login.microsoftonline.com/tid"),
            ),
            ("http://127.0.0.1:9000", true, evil_http, None),
            ("https://127.0.0.1:9000", false, local, None),
            ("https://127.0.0.1:9000", false, local_https, None),
            ("https://contoso.crm.dynamics.com", true, local, None),
            ("https://contoso.crm.dynamics.com", true, local_https, None),
        ];
        for (org, allow, header, expected) in cases {
            let s = loopback_settings(org, allow);
            let got = from_discovery(&challenge_response(header), &s);
            match expected {
                Some(url) => {
                    let (authority, scope) = got.unwrap_or_else(|e| panic!("{org} {header}: {e}"));
                    assert_eq!(authority.url(), url, "{org} {header}");
                    assert_eq!(
                        authority.token_endpoint(),
                        format!("{url}/oauth2/v2.0/token")
                    );
                    assert!(scope.ends_with("127.0.0.1:9000/.default"), "{scope}");
                }
                None => assert!(
                    matches!(got, Err(Error::Authority(_))),
                    "{org} {allow} {header}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn an_http_authority_is_parsed_only_with_the_opt_in_and_on_loopback() {
        let cases = [
            ("http://localhost:9/t", true, true),
            ("http://[::1]:9/t", true, true),
            ("http://127.0.0.1/t", true, true),
            ("http://localhost:9/t", false, false),
            ("http://login.microsoftonline.com/t", true, false),
            ("http://127.0.0.2/t", true, false),
            ("https://login.microsoftonline.com/t", false, true),
        ];
        for (url, allow, ok) in cases {
            let parsed = Authority::parse_allowing(url, allow);
            assert_eq!(parsed.is_ok(), ok, "{url} {allow}: {parsed:?}");
            if let Ok(a) = parsed {
                assert_eq!(a.url(), url);
            }
        }
        let mut s = loopback_settings("http://127.0.0.1:9", true);
        s.authority = Some("http://localhost:9/t".into());
        // Found by fuzzing (fuzz/corpus/challenge/regression_*): a host that is
        // loopback only up to its first ':' passed the loopback trust check.
        for bad in [
            "http://localhost:@evil.example/t",
            "http://[::1]@evil.example/t",
            "http://localhost:8authorityhostuth2/t",
            "http://localhost:/t",
            "http://localhost:0/t",
            "http://localhost:65536/t",
            "https://login.microsoftonline.com:x/t",
            "https://login microsoftonline.com/t",
            "https:///t",
        ] {
            let parsed = Authority::parse_allowing(bad, true);
            assert!(
                matches!(parsed, Err(Error::Authority(_))),
                "{bad}: {parsed:?}"
            );
            let header = format!("Bearer authorization_uri={bad}/oauth2/authorize");
            let found = from_discovery(&challenge_response(&header), &s);
            assert!(
                matches!(found, Err(Error::Authority(_))),
                "{bad}: {found:?}"
            );
        }
        assert_eq!(
            from_settings(&s).unwrap().unwrap().url(),
            "http://localhost:9/t"
        );
        assert_eq!(
            checked("http://localhost:9/t", &s).unwrap().url(),
            "http://localhost:9/t"
        );
        assert!(checked("http://localhost:9/t", &settings()).is_err());
    }
}
