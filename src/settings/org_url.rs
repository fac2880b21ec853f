//! URL checks for the settings: the organization URL, the authority URL and
//! trusted login host names.
//!
//! Hand-written instead of the `url` crate: we accept only absolute `https`
//! URLs with a plain host, which takes a few dozen lines, and keeps the guest
//! small. Anything unusual (user info, spaces, odd characters) is rejected
//! rather than interpreted. Plain `http` is accepted only for a loopback host
//! and only when the settings opt in (`AllowHttpLoopback=true`), for tests
//! against a local fake behind hosts that trust only the public web PKI.

use crate::error::Error;

const URL_EXAMPLE: &str = "https://yourorg.crm.dynamics.com/";
const AUTHORITY_EXAMPLE: &str = "https://login.microsoftonline.com/{tenant-id}";

/// Normalises a Dataverse organization URL to its origin:
/// `https://` + lower-case host (+ `:port` when not 443), no trailing slash.
///
/// The path and query are dropped, because users paste the org root with or
/// without `/`, or a URL copied from the browser, and only the origin matters.
/// Rejects anything but an absolute `https://` URL with a host; the error names
/// the key `Url` and shows an example.
pub fn normalize_org_url(s: &str) -> Result<String, Error> {
    check_org_url(s, false)
}

/// [`normalize_org_url`], also accepting `http://` for a loopback host
/// (127.0.0.1, localhost, [::1]) when `allow_http_loopback` is set; the
/// origin then starts with `http://` and drops the default port 80.
pub fn check_org_url(s: &str, allow_http_loopback: bool) -> Result<String, Error> {
    // A Url is not secret, so echoing it helps the user spot the mistake.
    Ok(HttpsUrl::parse(s, "Url", URL_EXAMPLE, true, allow_http_loopback)?.origin())
}

/// True for the loopback host names the `AllowHttpLoopback` opt-in covers:
/// `127.0.0.1`, `localhost` and `[::1]` (lower-case, without a port).
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// `host[:port]` (an IPv6 literal keeps its brackets) → `host`.
pub(crate) fn strip_port(authority: &str) -> &str {
    match authority.strip_prefix('[') {
        Some(v6) => v6.find(']').map_or(authority, |end| &authority[..end + 2]),
        None => authority.split(':').next().unwrap_or(authority),
    }
}

/// `host` or `host:port`: a DNS name or bracketed IPv6 literal (see
/// [`is_host`]) and a port of 1-65535. What the authority of a URL from
/// outside must be before any check looks at its host: anything else (user
/// info such as `localhost:@evil.example`, a port that is not a number) can
/// name another server to an HTTP client than the one the check saw.
pub(crate) fn is_host_and_port(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        // A ':' before the ']' of an IPv6 literal is not a port separator.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n != 0)
    });
    port_ok && is_host(host)
}

/// Normalises an `Authority` extension value: `https://host[:port]/{tenant}`
/// (more path segments allowed, e.g. ADFS or B2C), no trailing slash, no query.
/// `http://` only for a loopback host with `allow_http_loopback`.
pub(crate) fn normalize_authority(s: &str, allow_http_loopback: bool) -> Result<String, Error> {
    let url = HttpsUrl::parse(
        s,
        "Authority",
        AUTHORITY_EXAMPLE,
        false,
        allow_http_loopback,
    )?;
    if url.rest.contains(['?', '#']) {
        return Err(invalid(format!(
            "Authority must not have a query or fragment, e.g. {AUTHORITY_EXAMPLE}"
        )));
    }
    let path = url.rest.trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if segments.is_empty() {
        return Err(invalid(format!(
            "Authority must include the tenant, e.g. {AUTHORITY_EXAMPLE}"
        )));
    }
    // The token endpoint is built as `{authority}/oauth2/v2.0/token`; a pasted
    // endpoint URL would double that part.
    if segments.iter().any(|s| s.eq_ignore_ascii_case("oauth2")) {
        return Err(invalid(format!(
            "Authority must end at the tenant, without /oauth2/..., e.g. {AUTHORITY_EXAMPLE}"
        )));
    }
    // Only unreserved characters: a tenant id, a domain, `adfs`, a B2C policy.
    let plain = |s: &&str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    };
    if !segments.iter().all(plain) {
        return Err(invalid(format!(
            "Authority has an empty or invalid path segment; expected e.g. {AUTHORITY_EXAMPLE}"
        )));
    }
    Ok(format!("{}{path}", url.origin()))
}

/// Checks and lower-cases one host name of the `AuthorityHost` list.
pub(crate) fn normalize_host(s: &str) -> Result<String, Error> {
    let host = s.trim();
    if is_host(host) {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(invalid(
            "AuthorityHost must be host names such as login.example.com, separated by commas \
             (no https://, port or path)"
                .to_string(),
        ))
    }
}

/// The parts of an absolute `https` (or opted-in loopback `http`) URL we care about.
struct HttpsUrl<'a> {
    /// False only for an opted-in loopback `http://` URL.
    https: bool,
    /// Lower-case host; IPv6 literals keep their brackets.
    host: String,
    /// `None` for the scheme's default port (443, or 80 for http).
    port: Option<u16>,
    /// Everything after the host and port: path, query, fragment.
    rest: &'a str,
}

impl<'a> HttpsUrl<'a> {
    /// `key` and `example` go into error messages; `echo` says whether the
    /// value may be shown (never when it has user info, which may hold a password);
    /// `allow_http_loopback` admits `http://` for a loopback host.
    fn parse(
        input: &'a str,
        key: &str,
        example: &str,
        echo: bool,
        allow_http_loopback: bool,
    ) -> Result<Self, Error> {
        let s = input.trim();
        let got = if echo && !s.contains('@') {
            format!(" (got '{}')", s.chars().take(200).collect::<String>())
        } else {
            String::new()
        };
        if s.is_empty() {
            return Err(invalid(format!(
                "{key} is empty; expected an https URL such as {example}"
            )));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!(
                "{key} must not contain spaces; expected an https URL such as {example}{got}"
            )));
        }
        let scheme_ok = |sch: &str| {
            sch.starts_with(|c: char| c.is_ascii_alphabetic())
                && sch
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        };
        let (scheme, after) = match s.split_once("://") {
            Some((sch, after)) if scheme_ok(sch) => (sch, after),
            _ => {
                return Err(invalid(format!(
                    "{key} must be an absolute URL starting with https://, such as {example}{got}"
                )));
            }
        };
        let https = !scheme.eq_ignore_ascii_case("http");
        if !https && !allow_http_loopback {
            return Err(invalid(format!(
                "{key} must use https://, not http:// (only https is accepted), e.g. {example}{got}"
            )));
        }
        if https && !scheme.eq_ignore_ascii_case("https") {
            return Err(invalid(format!(
                "{key} must be an https:// URL such as {example}{got}"
            )));
        }

        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        if authority.contains('@') {
            return Err(invalid(format!(
                "{key} must not contain a user name or password (user@host); give only the \
                 https:// address, e.g. {example}"
            )));
        }
        // An IPv6 literal holds ':' inside its brackets.
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((inner, "")) => (format!("[{inner}]"), None),
                Some((inner, tail)) => match tail.strip_prefix(':') {
                    Some(port) => (format!("[{inner}]"), Some(port)),
                    None => (authority.to_string(), None), // fails `is_host` below
                },
                None => (authority.to_string(), None),
            },
            None => match authority.split_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (authority.to_string(), None),
            },
        };
        if host.is_empty() {
            return Err(invalid(format!(
                "{key} has no host name; expected e.g. {example}{got}"
            )));
        }
        if !is_host(&host) {
            return Err(invalid(format!(
                "{key} has an invalid host name; expected e.g. {example}{got}"
            )));
        }
        let host = host.to_ascii_lowercase();
        if !https && !is_loopback_host(&host) {
            return Err(invalid(format!(
                "{key} may use http:// only for a loopback host (127.0.0.1, localhost, [::1]) \
                 with AllowHttpLoopback=true; use https://, e.g. {example}{got}"
            )));
        }
        let default_port = if https { 443 } else { 80 };
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => {
                    (n != default_port).then_some(n)
                }
                _ => {
                    return Err(invalid(format!(
                        "{key} has an invalid port (expected 1-65535), e.g. {example}{got}"
                    )));
                }
            },
        };
        Ok(HttpsUrl {
            https,
            host,
            port,
            rest,
        })
    }

    fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(port) => format!("{scheme}://{}:{port}", self.host),
            None => format!("{scheme}://{}", self.host),
        }
    }
}

/// A DNS name (ASCII labels of letters, digits and `-`) or a bracketed IPv6
/// literal. No percent-encoding, no trailing dot, no underscores.
fn is_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.contains(':')
            && inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    !h.is_empty()
        && h.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn invalid(message: String) -> Error {
    Error::InvalidSettings(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<String, Error>) -> String {
        match r {
            Err(Error::InvalidSettings(m)) => m,
            other => panic!("expected InvalidSettings, got {other:?}"),
        }
    }

    #[test]
    fn org_url_is_normalised_to_its_origin() {
        let cases = [
            (
                "https://contoso.crm.dynamics.com",
                "https://contoso.crm.dynamics.com",
            ),
            (
                "https://contoso.crm.dynamics.com/",
                "https://contoso.crm.dynamics.com",
            ),
            (
                "  https://contoso.crm.dynamics.com/  ",
                "https://contoso.crm.dynamics.com",
            ),
            (
                "HTTPS://Contoso.CRM.Dynamics.com/",
                "https://contoso.crm.dynamics.com",
            ),
            (
                "https://contoso.crm4.dynamics.com/main.aspx?appid=1#x",
                "https://contoso.crm4.dynamics.com",
            ),
            (
                "https://contoso.api.crm.dynamics.com/api/data/v9.2/",
                "https://contoso.api.crm.dynamics.com",
            ),
            (
                "https://contoso.crm.dynamics.com?x=1",
                "https://contoso.crm.dynamics.com",
            ),
            ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
            ("https://[::1]:8443/", "https://[::1]:8443"),
            ("https://[::1]", "https://[::1]"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_org_url(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn port_443_is_dropped_and_other_ports_are_kept() {
        let cases = [
            (
                "https://org.crm.dynamics.com:443/",
                "https://org.crm.dynamics.com",
            ),
            (
                "https://org.crm.dynamics.com:0443",
                "https://org.crm.dynamics.com",
            ),
            ("https://localhost:8443", "https://localhost:8443"),
            ("https://localhost:65535/x", "https://localhost:65535"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_org_url(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn bad_org_urls_are_rejected_naming_url_with_an_example() {
        // (input, part of the message)
        let cases = [
            ("", "is empty"),
            ("   ", "is empty"),
            ("http://contoso.crm.dynamics.com/", "not http://"),
            ("HTTP://contoso.crm.dynamics.com/", "not http://"),
            ("ftp://contoso.crm.dynamics.com/", "must be an https:// URL"),
            ("contoso.crm.dynamics.com", "absolute URL"),
            ("/api/data/v9.2", "absolute URL"),
            ("//contoso.crm.dynamics.com", "absolute URL"),
            ("https:contoso.crm.dynamics.com", "absolute URL"),
            ("https://", "no host"),
            ("https:///path", "no host"),
            ("https://:443/", "no host"),
            ("https://contoso crm.dynamics.com", "spaces"),
            ("https://contoso.crm.dynamics.com:99999/", "invalid port"),
            ("https://contoso.crm.dynamics.com:0/", "invalid port"),
            ("https://contoso.crm.dynamics.com:/", "invalid port"),
            ("https://contoso.crm.dynamics.com:+1/", "invalid port"),
            ("https://contoso.crm.dynamics.com:abc/", "invalid port"),
            ("https://contoso..dynamics.com/", "invalid host"),
            ("https://contoso.crm.dynamics.com./", "invalid host"),
            ("https://con_toso.crm.dynamics.com/", "invalid host"),
            ("https://contoso%2ecrm.dynamics.com/", "invalid host"),
            ("https://cöntoso.crm.dynamics.com/", "invalid host"),
            ("https://contoso.crm.dynamics.com\\x", "invalid host"),
            ("https://[::1/", "invalid host"),
        ];
        for (input, part) in cases {
            let m = message(normalize_org_url(input));
            assert!(m.starts_with("Url "), "{input}: {m}");
            assert!(m.contains(part), "{input}: {m}");
            assert!(m.contains(URL_EXAMPLE), "{input}: {m}");
        }
    }

    #[test]
    fn url_with_user_info_is_rejected_and_not_echoed() {
        for input in [
            "https://user:S3cr3t!Value@contoso.crm.dynamics.com/",
            "http://user:S3cr3t!Value@contoso.crm.dynamics.com/",
            "https://contoso.crm dynamics.com/?p=S3cr3t!Value@x",
        ] {
            let m = message(normalize_org_url(input));
            assert!(!m.contains("S3cr3t!Value"), "{m}");
        }
        let m = message(normalize_org_url("https://u:p@contoso.crm.dynamics.com/"));
        assert!(m.contains("user name or password"), "{m}");
    }

    #[test]
    fn authority_is_normalised() {
        let cases = [
            (
                "https://login.microsoftonline.com/contoso.onmicrosoft.com",
                "https://login.microsoftonline.com/contoso.onmicrosoft.com",
            ),
            (
                "HTTPS://Login.MicrosoftOnline.com/00000000-0000-0000-0000-000000000001/",
                "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001",
            ),
            (
                "https://adfs.contoso.com:443/adfs//",
                "https://adfs.contoso.com/adfs",
            ),
            (
                "https://contoso.b2clogin.com/tfp/contoso.onmicrosoft.com/B2C_1_signin",
                "https://contoso.b2clogin.com/tfp/contoso.onmicrosoft.com/B2C_1_signin",
            ),
            (
                "https://127.0.0.1:9443/tenant",
                "https://127.0.0.1:9443/tenant",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_authority(input, false).as_deref(),
                Ok(expected),
                "{input}"
            );
        }
    }

    #[test]
    fn bad_authorities_are_rejected() {
        let cases = [
            ("http://login.microsoftonline.com/t", "https"),
            ("login.microsoftonline.com/t", "absolute URL"),
            ("https://login.microsoftonline.com", "include the tenant"),
            ("https://login.microsoftonline.com/", "include the tenant"),
            (
                "https://login.microsoftonline.com/t/oauth2/v2.0/token",
                "/oauth2/",
            ),
            ("https://login.microsoftonline.com/t?x=1", "query"),
            (
                "https://login.microsoftonline.com/a//b",
                "invalid path segment",
            ),
            (
                "https://login.microsoftonline.com/t%20x",
                "invalid path segment",
            ),
        ];
        for (input, part) in cases {
            let m = message(normalize_authority(input, false));
            assert!(m.starts_with("Authority "), "{input}: {m}");
            assert!(m.contains(part), "{input}: {m}");
        }
    }

    #[test]
    fn authority_host_names_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_host(" Login.Example.COM ").as_deref(),
            Ok("login.example.com")
        );
        assert_eq!(normalize_host("[::1]").as_deref(), Ok("[::1]"));
        for bad in [
            "",
            "https://login.example.com",
            "login.example.com:443",
            "login.example.com/t",
            "a b",
        ] {
            let m = message(normalize_host(bad));
            assert!(m.starts_with("AuthorityHost "), "{bad}: {m}");
        }
    }

    #[test]
    fn http_is_accepted_only_for_loopback_hosts_with_the_opt_in() {
        // (input, allowed, expected origin or part of the error)
        let cases = [
            ("http://127.0.0.1:8080/", true, Ok("http://127.0.0.1:8080")),
            ("HTTP://LocalHost:9/x?y", true, Ok("http://localhost:9")),
            ("http://[::1]:8080", true, Ok("http://[::1]:8080")),
            ("http://localhost:80/", true, Ok("http://localhost")),
            ("http://localhost:443/", true, Ok("http://localhost:443")),
            ("https://127.0.0.1:8443", true, Ok("https://127.0.0.1:8443")),
            (
                "https://contoso.crm.dynamics.com",
                true,
                Ok("https://contoso.crm.dynamics.com"),
            ),
            ("http://127.0.0.1:8080/", false, Err("not http://")),
            ("http://localhost/", false, Err("not http://")),
            (
                "http://contoso.crm.dynamics.com/",
                true,
                Err("only for a loopback host"),
            ),
            ("http://127.0.0.2/", true, Err("only for a loopback host")),
            (
                "http://localhost.evil.example/",
                true,
                Err("only for a loopback host"),
            ),
            ("http://[::2]/", true, Err("only for a loopback host")),
            ("http://0.0.0.0:80/", true, Err("only for a loopback host")),
            ("http://u:p@localhost/", true, Err("user name or password")),
            ("ftp://localhost/", true, Err("must be an https:// URL")),
        ];
        for (input, allowed, expected) in cases {
            match expected {
                Ok(origin) => {
                    assert_eq!(
                        check_org_url(input, allowed).as_deref(),
                        Ok(origin),
                        "{input}"
                    )
                }
                Err(part) => {
                    let m = message(check_org_url(input, allowed));
                    assert!(m.starts_with("Url ") && m.contains(part), "{input}: {m}");
                }
            }
        }
    }

    #[test]
    fn an_http_authority_needs_the_opt_in_and_a_loopback_host() {
        assert_eq!(
            normalize_authority("http://localhost:9000/tenant/", true).as_deref(),
            Ok("http://localhost:9000/tenant")
        );
        let m = message(normalize_authority("http://localhost:9000/tenant", false));
        assert!(m.contains("not http://"), "{m}");
        let m = message(normalize_authority(
            "http://login.microsoftonline.com/t",
            true,
        ));
        assert!(m.contains("only for a loopback host"), "{m}");
    }

    #[test]
    fn ports_are_stripped_from_authorities() {
        let cases = [
            ("localhost:80", "localhost"),
            ("localhost", "localhost"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:1", "127.0.0.1"),
        ];
        for (input, host) in cases {
            assert_eq!(strip_port(input), host, "{input}");
        }
    }
}
