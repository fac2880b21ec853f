//! Fake Entra ID v2.0 token endpoint: `POST /{tenant}/oauth2/v2.0/token`,
//! client credentials grant with a client secret or a certificate credential
//! (`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//! plus a signed `client_assertion`, verified by `assertion`).
//!
//! Checks run in the order Entra applies them (tenant, parameters, app,
//! credential, scope) and failures answer with Entra's JSON error shape:
//! `error`, `error_description` ("AADSTSnnn: …" plus trace/correlation/time
//! lines), `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
//!
//! Credential errors: no credential → 401 `invalid_client` AADSTS7000218;
//! both a secret and an assertion → 401 `invalid_client` AADSTS7000218 (the
//! fake's choice: Entra's answer is undocumented); wrong secret (or any secret
//! for an app without one) → 401 AADSTS7000215; right but expired secret →
//! 401 AADSTS7000222; an assertion without `client_assertion_type` → 400
//! `invalid_request` AADSTS900144; with another type → 400 `invalid_request`
//! AADSTS90011; assertion failures → see `assertion`, or `federation` for an
//! assertion another issuer signed (workload identity federation).

use super::assertion::{self, Expected};
use super::{auth_faults, federation};
use crate::ids::entra_timestamp;
use crate::{
    CredentialKind, DEMO_TENANT_DOMAIN, FakeApp, FakeConfig, State, TokenRequestRecord, percent,
};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};

/// A token the fake issued, so that Dataverse can check it.
pub(crate) struct IssuedToken {
    pub(crate) client_id: String,
    /// The resource the scope named, without a trailing slash.
    pub(crate) resource: String,
    pub(crate) expires: Instant,
}

/// The only client assertion type Entra accepts.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An Entra error before it is rendered.
struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

fn fail(status: StatusCode, error: &'static str, code: u32, message: String) -> EntraError {
    EntraError {
        status,
        error,
        code,
        message,
    }
}

fn bad_request(error: &'static str, code: u32, message: String) -> EntraError {
    fail(StatusCode::BAD_REQUEST, error, code, message)
}

pub(crate) fn handle(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Response<Bytes> {
    let segments: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let [tenant, "oauth2", "v2.0", "token"] = segments[..] else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Bytes::from_static(
                b"The fake Entra ID serves only POST /{tenant}/oauth2/v2.0/token",
            ))
            .expect("static response parts are valid");
    };
    state.stats.token_requests += 1;
    // Entra echoes the caller's `client-request-id` as the correlation id.
    let correlation_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.ids.guid());
    let mut record = TokenRequestRecord {
        client_id: None,
        credential: CredentialKind::None,
        status: 200,
        error_code: None,
    };
    let mut delivery = None;
    if let Some(fault) = state.entra_faults.take() {
        match auth_faults::entra(&fault, &correlation_id) {
            auth_faults::EntraOutcome::Answer(response) => {
                record.status = response.status().as_u16();
                state.token_log.push(record);
                return response;
            }
            auth_faults::EntraOutcome::Deliver(how) => delivery = Some(how),
            auth_faults::EntraOutcome::Normal => {}
        }
    }
    let response = answer(config, state, req, tenant, record, &correlation_id);
    match delivery {
        Some(how) => auth_faults::deliver(response, how),
        None => response,
    }
}

/// Issues a token or renders why not, and logs the request.
fn answer(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
    tenant: &str,
    mut record: TokenRequestRecord,
    correlation_id: &str,
) -> Response<Bytes> {
    let outcome = issue(config, state, req, tenant, &mut record);
    if let Err(e) = &outcome {
        record.status = e.status.as_u16();
        record.error_code = Some(e.code);
    }
    state.token_log.push(record);
    match outcome {
        Ok(body) => respond(StatusCode::OK, correlation_id, body.to_string()),
        Err(e) => {
            let trace_id = state.ids.guid();
            let timestamp = entra_timestamp(SystemTime::now());
            let body = json!({
                "error": e.error,
                "error_description": format!(
                    "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                    e.code, e.message
                ),
                "error_codes": [e.code],
                "timestamp": timestamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": format!("https://{}/error?code={}", config.login_host, e.code),
            });
            respond(e.status, correlation_id, body.to_string())
        }
    }
}

fn respond(status: StatusCode, correlation_id: &str, body: String) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store, no-cache")
        .header(header::PRAGMA, "no-cache")
        .header("client-request-id", correlation_id)
        .body(Bytes::from(body))
        .expect("response parts are valid")
}

/// Validates the request and issues a token, or says why not.
fn issue(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
    tenant: &str,
    record: &mut TokenRequestRecord,
) -> Result<serde_json::Value, EntraError> {
    if !tenant.eq_ignore_ascii_case(&config.tenant_id)
        && !tenant.eq_ignore_ascii_case(DEMO_TENANT_DOMAIN)
    {
        return Err(bad_request(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    if req.method() != Method::POST {
        return Err(bad_request(
            "invalid_request",
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                req.method()
            ),
        ));
    }
    let form = percent::parse_pairs(&String::from_utf8_lossy(req.body()));
    let param = |name: &str| {
        form.iter()
            .rev() // last duplicate wins, like most form parsers
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let required = |name: &'static str| {
        param(name).ok_or_else(|| {
            bad_request(
                "invalid_request",
                900144,
                format!("The request body must contain the following parameter: '{name}'."),
            )
        })
    };

    record.client_id = param("client_id").map(str::to_string);
    let secret = param("client_secret");
    let client_assertion = param("client_assertion");
    record.credential = match (secret, client_assertion) {
        (None, None) => CredentialKind::None,
        (Some(_), None) => CredentialKind::Secret,
        (None, Some(_)) => CredentialKind::Certificate,
        (Some(_), Some(_)) => CredentialKind::SecretAndCertificate,
    };

    let grant_type = required("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(bad_request(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_id = required("client_id")?;
    let app = find_app(config, client_id).ok_or_else(|| {
        bad_request(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    })?;
    match (secret, client_assertion) {
        (Some(secret), None) => check_secret(app, secret)?,
        (None, Some(jwt)) => {
            match param("client_assertion_type") {
                None => {
                    return Err(bad_request(
                        "invalid_request",
                        900144,
                        "The request body must contain the following parameter: 'client_assertion_type'.".into(),
                    ));
                }
                Some(JWT_BEARER) => {}
                Some(_) => {
                    return Err(bad_request(
                        "invalid_request",
                        90011,
                        "Unexpected client assertion type.".into(),
                    ));
                }
            }
            if federation::is_federated(jwt, &app.client_id) {
                let verified =
                    federation::verify(jwt, app, &config.oidc_issuers, SystemTime::now()).map_err(
                        |r| EntraError {
                            status: r.status,
                            error: r.error,
                            code: r.code,
                            message: r.message,
                        },
                    )?;
                state.federations.push(verified);
                return finish(config, state, tenant, app, required("scope")?);
            }
            let audiences = [tenant, config.tenant_id.as_str()]
                .map(|t| format!("{}/{t}/oauth2/v2.0/token", config.login_origin()));
            let expected = Expected {
                client_id: &app.client_id,
                certificates: &app.certificates,
                audiences: &audiences,
                now: SystemTime::now(),
            };
            let verified = assertion::verify(jwt, &expected).map_err(|r| EntraError {
                status: r.status,
                error: r.error,
                code: r.code,
                message: r.message,
            })?;
            state.assertions.push(verified);
        }
        (Some(_), Some(_)) => {
            return Err(fail(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain only one of the following parameters: 'client_assertion' or 'client_secret'.".into(),
            ));
        }
        (None, None) => {
            return Err(fail(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
            ));
        }
    }

    finish(config, state, tenant, app, required("scope")?)
}

/// The scope check and the token, once the app has proved who it is.
fn finish(
    config: &FakeConfig,
    state: &mut State,
    tenant: &str,
    app: &FakeApp,
    scope: &str,
) -> Result<serde_json::Value, EntraError> {
    let Some(resource) = scope.strip_suffix("/.default") else {
        return Err(bad_request(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    // `https://org/` + `/.default` yields a double slash; Entra accepts both forms.
    let resource = resource.strip_suffix('/').unwrap_or(resource);
    if !resource.eq_ignore_ascii_case(&config.org_origin()) {
        return Err(bad_request(
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        ));
    }

    let access_token = state.ids.token();
    state.tokens.insert(
        access_token.clone(),
        IssuedToken {
            client_id: app.client_id.clone(),
            resource: resource.to_ascii_lowercase(),
            expires: Instant::now() + Duration::from_secs(config.token_lifetime_secs),
        },
    );
    let mut body = json!({
        "token_type": state.token_type.as_deref().unwrap_or("Bearer"),
        "expires_in": config.token_lifetime_secs,
        "ext_expires_in": config.token_lifetime_secs,
        "access_token": access_token,
    });
    if let Some(refresh_in) = state.refresh_in {
        body["refresh_in"] = json!(refresh_in);
    }
    Ok(body)
}

pub(crate) fn find_app<'a>(config: &'a FakeConfig, client_id: &str) -> Option<&'a FakeApp> {
    config
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
}

/// Checks a client secret: right and current, right but expired, or wrong.
/// An app without a secret (empty) refuses every secret.
fn check_secret(app: &FakeApp, secret: &str) -> Result<(), EntraError> {
    if app.secret.is_empty() || secret != app.secret {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.client_id
            ),
        ));
    }
    if app.secret_expired {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                app.client_id
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;
    use crate::*;

    fn form(client_id: &str, secret: &str, scope: &str) -> String {
        format!(
            "client_id={client_id}&grant_type=client_credentials&client_secret={}&scope={}",
            percent::encode(secret, b"", true),
            percent::encode(scope, b"", true)
        )
    }

    fn demo_form() -> String {
        form(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "https://contoso.crm.dynamics.com/.default",
        )
    }

    #[test]
    fn token_success_has_entra_shape() {
        let fake = Fake::demo();
        let resp = token_request(&fake, DEMO_TENANT_ID, &demo_form());
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "application/json; charset=utf-8"
        );
        let body = json(&resp);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3599);
        assert_eq!(body["ext_expires_in"], 3599);
        assert!(body["access_token"].as_str().unwrap().len() > 40);
        assert_eq!(fake.stats().token_requests, 1);
    }

    #[test]
    fn token_accepts_tenant_domain_and_double_slash_scope() {
        let fake = Fake::demo();
        let f = form(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "https://contoso.crm.dynamics.com//.default",
        );
        assert_eq!(
            token_request(&fake, "Contoso.OnMicrosoft.com", &f).status(),
            200
        );
        let upper = DEMO_TENANT_ID.to_uppercase();
        assert_eq!(token_request(&fake, &upper, &demo_form()).status(), 200);
    }

    #[test]
    fn token_lifetime_follows_config() {
        let fake = Fake::new(FakeConfig {
            token_lifetime_secs: 120,
            ..FakeConfig::default()
        });
        let body = json(&token_request(&fake, DEMO_TENANT_ID, &demo_form()));
        assert_eq!(body["expires_in"], 120);
    }

    #[test]
    fn unknown_tenant_is_aadsts90002() {
        let resp = token_request(&Fake::demo(), "fabrikam.onmicrosoft.com", &demo_form());
        let body = assert_entra_error(&resp, 400, "invalid_request", 90002);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("Tenant 'fabrikam.onmicrosoft.com' not found.")
        );
    }

    #[test]
    fn wrong_grant_type_is_aadsts70003() {
        let f = demo_form().replace("client_credentials", "password");
        assert_entra_error(
            &token_request(&Fake::demo(), DEMO_TENANT_ID, &f),
            400,
            "unsupported_grant_type",
            70003,
        );
    }

    #[test]
    fn missing_parameter_is_aadsts900144() {
        let resp = token_request(
            &Fake::demo(),
            DEMO_TENANT_ID,
            "grant_type=client_credentials",
        );
        let body = assert_entra_error(&resp, 400, "invalid_request", 900144);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("'client_id'")
        );
    }

    #[test]
    fn unknown_client_is_aadsts700016() {
        let f = form(
            "00000000-0000-0000-0000-000000000001",
            "x",
            "https://contoso.crm.dynamics.com/.default",
        );
        let resp = token_request(&Fake::demo(), DEMO_TENANT_ID, &f);
        let body = assert_entra_error(&resp, 400, "unauthorized_client", 700016);
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("Application with identifier '00000000-0000-0000-0000-000000000001' was not found in the directory"));
    }

    #[test]
    fn wrong_secret_is_aadsts7000215_and_never_echoed() {
        let f = form(
            DEMO_CLIENT_ID,
            "wrong~secret",
            "https://contoso.crm.dynamics.com/.default",
        );
        let resp = token_request(&Fake::demo(), DEMO_TENANT_ID, &f);
        let body = assert_entra_error(&resp, 401, "invalid_client", 7000215);
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("the client secret value, not the client secret ID"));
        assert!(description.contains(&format!("app '{DEMO_CLIENT_ID}'")));
        assert!(!String::from_utf8_lossy(resp.body()).contains("wrong~secret"));
    }

    #[test]
    fn missing_secret_is_aadsts7000218_and_malformed_assertion_is_aadsts50027() {
        let fake = Fake::demo();
        let scope = "scope=https%3A%2F%2Fcontoso.crm.dynamics.com%2F.default";
        let base = format!("grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&{scope}");
        assert_entra_error(
            &token_request(&fake, DEMO_TENANT_ID, &base),
            401,
            "invalid_client",
            7000218,
        );
        let assertion = format!(
            "{base}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=eyJ.x.y"
        );
        let body = assert_entra_error(
            &token_request(&fake, DEMO_TENANT_ID, &assertion),
            401,
            "invalid_client",
            50027,
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS50027: JWT token is invalid or malformed.\r\n")
        );
    }

    #[test]
    fn expired_secret_is_aadsts7000222_but_a_wrong_one_is_still_7000215() {
        let mut config = FakeConfig::default();
        config.apps[0].secret_expired = true;
        let fake = Fake::new(config);
        let resp = token_request(&fake, DEMO_TENANT_ID, &demo_form());
        let body = assert_entra_error(&resp, 401, "invalid_client", 7000222);
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!(
                "AADSTS7000222: The provided client secret keys for app '{DEMO_CLIENT_ID}' are expired. Visit the Azure portal to create new keys for your app"
            )),
            "{description}"
        );
        assert!(!String::from_utf8_lossy(resp.body()).contains(DEMO_CLIENT_SECRET));
        let wrong = form(
            DEMO_CLIENT_ID,
            "wrong~secret",
            "https://contoso.crm.dynamics.com/.default",
        );
        assert_entra_error(
            &token_request(&fake, DEMO_TENANT_ID, &wrong),
            401,
            "invalid_client",
            7000215,
        );
        // Other apps are unaffected.
        token_for(&fake, NO_USER_CLIENT_ID, NO_USER_CLIENT_SECRET);
    }

    #[test]
    fn refresh_in_is_sent_once_set() {
        let fake = Fake::demo();
        let body = json(&token_request(&fake, DEMO_TENANT_ID, &demo_form()));
        assert!(body.get("refresh_in").is_none());
        fake.set_refresh_in(Some(1800));
        let body = json(&token_request(&fake, DEMO_TENANT_ID, &demo_form()));
        assert_eq!(body["refresh_in"], 1800);
        assert_eq!(body["expires_in"], 3599);
        fake.set_refresh_in(None);
        let body = json(&token_request(&fake, DEMO_TENANT_ID, &demo_form()));
        assert!(body.get("refresh_in").is_none());
    }

    #[test]
    fn token_requests_are_counted_and_logged_per_app() {
        let fake = Fake::demo();
        token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        token_for(&fake, &DEMO_CLIENT_ID.to_uppercase(), DEMO_CLIENT_SECRET);
        token_for(&fake, NO_USER_CLIENT_ID, NO_USER_CLIENT_SECRET);
        token_request(
            &fake,
            DEMO_TENANT_ID,
            &form(
                DEMO_CLIENT_ID,
                "wrong",
                "https://contoso.crm.dynamics.com/.default",
            ),
        );
        token_request(&fake, DEMO_TENANT_ID, "grant_type=client_credentials");
        token_request(&fake, "fabrikam.onmicrosoft.com", &demo_form());
        assert_eq!(fake.token_requests_for(DEMO_CLIENT_ID), 3);
        assert_eq!(fake.token_requests_for(NO_USER_CLIENT_ID), 1);
        assert_eq!(fake.token_requests_for(CERT_CLIENT_ID), 0);
        assert_eq!(fake.stats().token_requests, 6);
        let log = fake.token_request_log();
        let summary: Vec<_> = log
            .iter()
            .map(|r| (r.credential, r.status, r.error_code))
            .collect();
        assert_eq!(
            summary,
            [
                (CredentialKind::Secret, 200, None),
                (CredentialKind::Secret, 200, None),
                (CredentialKind::Secret, 200, None),
                (CredentialKind::Secret, 401, Some(7000215)),
                (CredentialKind::None, 400, Some(900144)),
                (CredentialKind::None, 400, Some(90002)),
            ]
        );
        assert_eq!(log[4].client_id, None);
    }

    #[test]
    fn scope_without_default_is_aadsts1002012() {
        let f = form(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "https://contoso.crm.dynamics.com/user_impersonation",
        );
        assert_entra_error(
            &token_request(&Fake::demo(), DEMO_TENANT_ID, &f),
            400,
            "invalid_scope",
            1002012,
        );
    }

    #[test]
    fn foreign_resource_is_aadsts500011() {
        let f = form(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "https://fabrikam.crm.dynamics.com/.default",
        );
        let resp = token_request(&Fake::demo(), DEMO_TENANT_ID, &f);
        let body = assert_entra_error(&resp, 400, "invalid_resource", 500011);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("https://fabrikam.crm.dynamics.com")
        );
    }

    #[test]
    fn get_on_token_endpoint_is_rejected_and_correlation_id_is_echoed() {
        let fake = Fake::demo();
        let req = http::Request::get(format!(
            "https://{LOGIN_HOST}/{DEMO_TENANT_ID}/oauth2/v2.0/token"
        ))
        .header("client-request-id", "11111111-2222-4333-8444-555555555555")
        .body(Bytes::new())
        .unwrap();
        let resp = fake.handle(req);
        let body = assert_entra_error(&resp, 400, "invalid_request", 900561);
        assert_eq!(
            body["correlation_id"],
            "11111111-2222-4333-8444-555555555555"
        );
        assert_eq!(fake.stats().token_requests, 1);
        assert_eq!(
            fake.handle(get(&format!("https://{LOGIN_HOST}/common/discovery")))
                .status(),
            404
        );
        assert_eq!(fake.stats().token_requests, 1);
    }
}
