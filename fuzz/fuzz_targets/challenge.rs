//! `WWW-Authenticate` from whoever answers at `Url`: `parse_challenge`, and
//! `from_discovery`, which must never hand the credential to a login host
//! outside the org's cloud or the hosts the settings trust.

#![no_main]

use dataverse_fuzz::{response, text};
use dataverse_wasm::auth::authority::{from_discovery, parse_challenge};
use dataverse_wasm::settings::{self, Settings};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// Every Entra ID login host of every cloud.
const MICROSOFT: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

/// An org outside Microsoft's domains with `AuthorityHost` set.
const TRUSTED_OR_MICROSOFT: &[&str] = &[
    "login.contoso.example",
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
];

type LoginHosts = Option<&'static [&'static str]>;

/// (settings, login hosts a discovered authority may name; `None`: any
/// Microsoft host or, as the org is on loopback, a loopback host and port)
static ORGS: LazyLock<Vec<(Settings, LoginHosts)>> = LazyLock::new(|| {
    let parse = |s: &str| settings::parse(s).expect("fixed settings parse");
    vec![
        (
            parse("Url=https://contoso.crm.dynamics.com/;ClientId=app;ClientSecret=x"),
            Some(&["login.microsoftonline.com"][..]),
        ),
        (
            parse("Url=https://contoso.crm.microsoftdynamics.us/;ClientId=app;ClientSecret=x"),
            Some(&["login.microsoftonline.us"]),
        ),
        (
            parse(
                "Url=https://contoso.example/;ClientId=app;ClientSecret=x;\
                 AuthorityHost=login.contoso.example",
            ),
            Some(TRUSTED_OR_MICROSOFT),
        ),
        (
            parse("Url=http://127.0.0.1:8080/;ClientId=app;ClientSecret=x;AllowHttpLoopback=true"),
            None,
        ),
    ]
});

fuzz_target!(|data: &[u8]| {
    // The whole input is the header value; the same bytes as a response
    // (status, headers, body) also reach `from_discovery` without one.
    let header = text(data);
    if let Ok(challenge) = parse_challenge(&header) {
        assert!(!challenge.authorization_uri.contains(','));
    }
    let answers = [
        dataverse_wasm::http::Response {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), header)],
            body: Vec::new(),
        },
        response(data),
    ];
    for answer in &answers {
        for (settings, login_hosts) in ORGS.iter() {
            let Ok((authority, scope)) = from_discovery(answer, settings) else {
                continue;
            };
            let allowed = match login_hosts {
                Some(hosts) => hosts.contains(&authority.host.as_str()),
                None => {
                    MICROSOFT.contains(&authority.host.as_str()) || is_loopback(&authority.host)
                }
            };
            assert!(
                allowed,
                "credential would go to {:?} for {}",
                authority.host, settings.org_url
            );
            assert!(authority.https || !settings.org_url.starts_with("https://"));
            assert!(!authority.tenant.is_empty() && !authority.tenant.contains('/'));
            assert!(scope.ends_with("/.default"), "{scope:?}");
        }
    }
});

/// `localhost`, `127.0.0.1` or `[::1]`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    ["localhost", "127.0.0.1", "[::1]"].contains(&name)
}
