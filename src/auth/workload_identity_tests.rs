//! Resolving a workload identity against the environment, the token file,
//! and GitHub's OIDC answer: typed errors, never a panic, no secret shown.

use super::*;
use crate::settings;

const GITHUB_URL: &str =
    "https://pipelines.actions.githubusercontent.com/abc/idtoken?api-version=2.0";
const REQUEST_TOKEN: &str = "ghs_requestTokenSecret123";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

fn parsed(extra: &str) -> (Settings, FederatedTokenSource) {
    let s = settings::parse(&format!(
        "AuthType=WorkloadIdentity;Url=https://contoso.crm.dynamics.com/{extra}"
    ))
    .unwrap();
    let settings::Credential::WorkloadIdentity(source) = s.credential.clone() else {
        panic!("{:?}", s.credential)
    };
    (s, source)
}

fn resolved(extra: &str, vars: &[(&str, &str)]) -> Result<(Settings, TokenSource), Error> {
    let (s, source) = parsed(extra);
    resolve(s, &source, lookup(vars))
}

fn invalid(result: Result<(Settings, TokenSource), Error>) -> String {
    match result {
        Err(Error::InvalidSettings(m)) => m,
        other => panic!("expected invalid settings, got {other:?}"),
    }
}

#[test]
fn aks_variables_fill_in_what_the_settings_leave_out() {
    let vars = [
        (AZURE_CLIENT_ID, "env-client"),
        (AZURE_TENANT_ID, "env-tenant"),
        (
            AZURE_FEDERATED_TOKEN_FILE,
            "/var/run/secrets/azure/tokens/azure-identity-token",
        ),
        (AZURE_AUTHORITY_HOST, "https://login.microsoftonline.com/"),
    ];
    let (s, source) = resolved("", &vars).unwrap();
    assert_eq!(s.client_id, "env-client");
    assert_eq!(s.tenant_id, None);
    assert_eq!(
        s.authority.as_deref(),
        Some("https://login.microsoftonline.com/env-tenant")
    );
    assert_eq!(
        source,
        TokenSource::File("/var/run/secrets/azure/tokens/azure-identity-token".into())
    );
    // The settings win over the environment.
    let (s, source) = resolved(
        ";ClientId=mine;TenantId=my-tenant;TokenFile=/tokens/mine",
        &vars,
    )
    .unwrap();
    assert_eq!(s.client_id, "mine");
    assert_eq!(
        s.authority.as_deref(),
        Some("https://login.microsoftonline.com/my-tenant")
    );
    assert_eq!(source, TokenSource::File("/tokens/mine".into()));
}

#[test]
fn without_a_tenant_it_is_discovered_and_the_platforms_login_host_is_trusted() {
    let vars = [
        (AZURE_CLIENT_ID, "c"),
        (AZURE_FEDERATED_TOKEN_FILE, "/t"),
        (AZURE_AUTHORITY_HOST, "https://login.microsoftonline.us"),
    ];
    let (s, _) = resolved("", &vars).unwrap();
    assert_eq!(
        (s.tenant_id.as_deref(), s.authority.as_deref()),
        (None, None)
    );
    assert_eq!(s.trusted_authority_hosts, ["login.microsoftonline.us"]);
    let (s, _) = resolved("", &vars[..2]).unwrap();
    assert!(s.trusted_authority_hosts.is_empty() && s.tenant_id.is_none());
}

#[test]
fn what_is_missing_is_named_by_setting_and_variable() {
    let m = invalid(resolved("", &[(AZURE_FEDERATED_TOKEN_FILE, "/t")]));
    assert!(m.contains("ClientId") && m.contains(AZURE_CLIENT_ID), "{m}");
    let m = invalid(resolved(";ClientId=c", &[]));
    assert!(
        m.contains("TokenFile") && m.contains(AZURE_FEDERATED_TOKEN_FILE),
        "{m}"
    );
    let m = invalid(resolved(";ClientId=c;FederatedToken=GitHubActions", &[]));
    assert!(
        m.contains(ACTIONS_ID_TOKEN_REQUEST_URL) && m.contains("id-token: write"),
        "{m}"
    );
    let m = invalid(resolved(
        ";ClientId=c;FederatedToken=GitHubActions",
        &[(ACTIONS_ID_TOKEN_REQUEST_URL, GITHUB_URL)],
    ));
    assert!(m.contains(ACTIONS_ID_TOKEN_REQUEST_TOKEN), "{m}");
    let m = invalid(resolved(
        "",
        &[
            (AZURE_CLIENT_ID, "c"),
            (AZURE_FEDERATED_TOKEN_FILE, "/t"),
            (AZURE_TENANT_ID, "bad/tenant"),
        ],
    ));
    assert!(m.contains("TenantId"), "{m}");
    let m = invalid(resolved(
        "",
        &[
            (AZURE_CLIENT_ID, "c"),
            (AZURE_FEDERATED_TOKEN_FILE, "/t"),
            (AZURE_AUTHORITY_HOST, "http://login.example"),
        ],
    ));
    assert!(
        m.contains(AZURE_AUTHORITY_HOST) && m.contains("https"),
        "{m}"
    );
}

#[test]
fn the_github_request_url_must_be_https_and_its_token_stays_secret() {
    let vars = [
        (
            ACTIONS_ID_TOKEN_REQUEST_URL,
            "http://pipelines.example/idtoken?api-version=2.0",
        ),
        (ACTIONS_ID_TOKEN_REQUEST_TOKEN, REQUEST_TOKEN),
    ];
    let m = invalid(resolved(";ClientId=c;FederatedToken=GitHubActions", &vars));
    assert!(m.contains("https") && !m.contains(REQUEST_TOKEN), "{m}");
    let vars = [
        (ACTIONS_ID_TOKEN_REQUEST_URL, GITHUB_URL),
        (ACTIONS_ID_TOKEN_REQUEST_TOKEN, REQUEST_TOKEN),
    ];
    let (_, source) = resolved(";ClientId=c;FederatedToken=GitHubActions", &vars).unwrap();
    let shown = format!("{source:?}");
    assert!(
        shown.contains("GitHubActions") && !shown.contains(REQUEST_TOKEN),
        "{shown}"
    );
}

#[test]
fn the_github_request_appends_the_encoded_audience_and_the_bearer() {
    let r = github_request(
        GITHUB_URL,
        &Secret::new(REQUEST_TOKEN),
        TOKEN_EXCHANGE_AUDIENCE,
    );
    assert_eq!(r.method, Method::Get);
    assert_eq!(
        r.url,
        format!("{GITHUB_URL}&audience=api%3A%2F%2FAzureADTokenExchange")
    );
    assert_eq!(
        r.header_value("authorization"),
        Some(format!("bearer {REQUEST_TOKEN}").as_str())
    );
    assert!(!r.allow_plain_http && !format!("{r:?}").contains(REQUEST_TOKEN));
    let bare = github_request("https://h/idtoken", &Secret::new("t"), "aud");
    assert_eq!(bare.url, "https://h/idtoken?audience=aud");
}

#[test]
fn github_answers_give_the_jwt_or_an_authentication_error() {
    let answer = |status, body: &str| Response {
        status,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    };
    let token = Secret::new(REQUEST_TOKEN);
    let ok = parse_github_response(
        &answer(200, &format!(r#"{{"count":1749,"value":"{JWT}"}}"#)),
        &token,
    );
    assert_eq!(ok.unwrap().expose(), JWT);
    let cases = [
        (answer(200, r#"{"count":1}"#), "without a token"),
        (answer(200, r#"{"value":"not a jwt"}"#), "without a token"),
        (answer(200, r#"{"value":7}"#), "without a token"),
        (answer(200, "<html/>"), "without a token"),
        (answer(403, ""), "refused the OIDC token request (HTTP 403)"),
        (
            answer(
                401,
                &format!(r#"{{"message":"bad token {REQUEST_TOKEN}\nline"}}"#),
            ),
            "(HTTP 401): bad token ***",
        ),
        (answer(500, "\u{0}\u{ff}"), "(HTTP 500)"),
    ];
    for (response, says) in cases {
        let Err(Error::Authentication(f)) = parse_github_response(&response, &token) else {
            panic!("{says}")
        };
        assert_eq!(f.error, "federated_token_unavailable");
        assert!(f.description.contains(says), "{}", f.description);
        assert!(!f.description.contains(REQUEST_TOKEN));
        if matches!(response.status, 401 | 403) {
            assert!(f.hint.as_deref().unwrap().contains("id-token: write"));
        }
    }
}

#[test]
fn a_token_file_holds_one_jwt_and_errors_never_show_its_bytes() {
    assert_eq!(
        read_token("/t", format!("  {JWT}\n").as_bytes())
            .unwrap()
            .expose(),
        JWT
    );
    for bad in [
        "".as_bytes(),
        b"   \n",
        b"only.two",
        b"a.b.",
        b"a.b.c.d",
        b"a.b c.d",
        b"secret-looking-thing",
        &[0xff, 0xfe, b'.', b'a', b'.', b'b'],
    ] {
        let Err(Error::InvalidSettings(m)) = read_token("/var/run/token", bad) else {
            panic!("{bad:?}")
        };
        assert!(
            m.contains("/var/run/token") && m.contains("does not hold a JWT"),
            "{m}"
        );
        if let Ok(text) = std::str::from_utf8(bad)
            && !text.trim().is_empty()
        {
            assert!(!m.contains(text.trim()), "{m}");
        }
    }
}

#[test]
fn only_an_expired_federated_token_gets_another_hint() {
    let failure = |code| {
        Error::Authentication(Box::new(AuthFailure {
            code: Some(code),
            hint: Some("before".into()),
            ..AuthFailure::default()
        }))
    };
    let Error::Authentication(f) = refine(failure(700024)) else {
        panic!()
    };
    assert!(
        f.hint.as_deref().unwrap().contains("token file"),
        "{:?}",
        f.hint
    );
    assert_eq!(refine(failure(700213)), failure(700213));
    assert_eq!(
        refine(Error::Transport("x".into())),
        Error::Transport("x".into())
    );
}
