//! Orchestration: the only place that sequences I/O. `Client` owns the
//! settings, the authority, the token cache and a `Transport`; each call
//! gets a token (cached or fresh), sends, and maps the answer.

use crate::auth::{self, Authority, TokenCache, token};
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::percent::escape_uri;
use crate::secret::Secret;
use crate::settings::{Credential, Settings};
use crate::transport::Transport;
use crate::webapi::{self, Page, Query, WhoAmI};

/// What a host may know about the current token (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub expires_at: u64,
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub scope: String,
    pub from_cache: bool,
}

/// A connection to one environment as one application.
pub struct Client<T: Transport> {
    settings: Settings,
    transport: T,
    authority: Authority,
    scope: String,
    cache: TokenCache,
    last_token_from_cache: bool,
}

impl<T: Transport> Client<T> {
    /// Finds the authority (from the settings, or by discovery) and acquires
    /// a first token, so wrong settings fail here.
    pub fn connect(settings: Settings, mut transport: T) -> Result<Self, Error> {
        if let Credential::Certificate { .. } = settings.credential {
            return Err(certificate_not_available());
        }
        let (authority, scope) = match auth::authority::from_settings(&settings) {
            Some(authority) => (authority?, auth::authority::default_scope(&settings)),
            None => {
                let response =
                    transport.send(&auth::authority::discovery_request(&settings.org_url))?;
                auth::authority::from_discovery(&response, &settings)?
            }
        };
        let mut client = Client {
            settings,
            transport,
            authority,
            scope,
            cache: TokenCache::default(),
            last_token_from_cache: false,
        };
        client.token()?;
        Ok(client)
    }

    pub fn who_am_i(&mut self) -> Result<WhoAmI, Error> {
        let url = webapi::api_url(&self.settings.org_url, webapi::who_am_i::PATH);
        let response = self.call(|token| webapi::request(Method::Get, url.clone(), token))?;
        webapi::who_am_i::parse(&response)
    }

    pub fn retrieve_multiple(&mut self, query: &Query) -> Result<Page, Error> {
        let url = query.url(&self.settings.org_url)?;
        let prefer = query.prefer()?;
        self.get_page(url, prefer)
    }

    /// Follows a page's `@odata.nextLink`, only on the organization's origin.
    pub fn next_page(&mut self, next_link: &str, page_size: Option<u32>) -> Result<Page, Error> {
        if !webapi::is_org_url(&self.settings.org_url, next_link) {
            return Err(Error::InvalidRequest(format!(
                "next-link is not on the organization's origin {}; the access token is sent nowhere else",
                self.settings.org_url
            )));
        }
        let prefer = Query {
            page_size,
            ..Query::default()
        }
        .prefer()?;
        self.get_page(escape_uri(next_link), prefer)
    }

    /// Metadata of the current token, acquiring one if the cache has none usable.
    pub fn token_info(&mut self) -> Result<TokenInfo, Error> {
        self.token()?;
        let expires_at = self.cache.current().map_or(0, |t| t.expires_at);
        Ok(TokenInfo {
            expires_at,
            authority: self.authority.url(),
            tenant_id: self.authority.tenant.clone(),
            client_id: self.settings.client_id.clone(),
            scope: self.scope.clone(),
            from_cache: self.last_token_from_cache,
        })
    }

    /// The access token itself, for hosts that must forward it.
    pub fn access_token(&mut self) -> Result<Secret, Error> {
        self.token()
    }

    fn get_page(&mut self, url: String, prefer: Option<String>) -> Result<Page, Error> {
        let response = self.call(|token| {
            let request = webapi::request(Method::Get, url.clone(), token);
            match &prefer {
                Some(prefer) => request.header("Prefer", prefer.clone()),
                None => request,
            }
        })?;
        webapi::page::parse(&response)
    }

    /// Sends an authenticated request. A 401 on a cached token means the
    /// token was revoked or the clock is off: drop it, acquire once, retry once.
    fn call(&mut self, build: impl Fn(&Secret) -> Request) -> Result<Response, Error> {
        let token = self.token()?;
        let response = self.transport.send(&build(&token))?;
        if response.status == 401 && self.last_token_from_cache {
            self.cache.clear();
            let token = self.token()?;
            return success(self.transport.send(&build(&token))?);
        }
        success(response)
    }

    /// A usable token: the cached one while more than 5 minutes remain,
    /// otherwise a fresh one from Entra ID.
    fn token(&mut self) -> Result<Secret, Error> {
        let now = self.transport.now();
        if let Some(token) = self.cache.usable(now) {
            self.last_token_from_cache = true;
            return Ok(token.value.clone());
        }
        let request = match &self.settings.credential {
            Credential::ClientSecret(secret) => token::client_secret_request(
                &self.authority,
                &self.settings.client_id,
                secret,
                &self.scope,
            ),
            Credential::Certificate { .. } => return Err(certificate_not_available()),
        };
        let response = self.transport.send(&request)?;
        let token = token::parse_response(&response, now)?;
        let value = token.value.clone();
        self.cache.store(token);
        self.last_token_from_cache = false;
        Ok(value)
    }
}

fn certificate_not_available() -> Error {
    Error::InvalidSettings(
        "AuthType=Certificate is recognised, but certificate credentials are not available in this version yet; use AuthType=ClientSecret".into(),
    )
}

fn success(response: Response) -> Result<Response, Error> {
    if (200..300).contains(&response.status) {
        Ok(response)
    } else {
        Err(webapi::parse_error(&response))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::error::ServiceFailure;

    /// Answers from a script and records what was sent; the clock is settable.
    struct Scripted {
        answers: VecDeque<Response>,
        sent: Vec<Request>,
        now: u64,
    }

    impl Transport for &mut Scripted {
        fn send(&mut self, request: &Request) -> Result<Response, Error> {
            self.sent.push(request.clone());
            self.answers
                .pop_front()
                .ok_or_else(|| Error::Transport("script exhausted".into()))
        }

        fn now(&self) -> u64 {
            self.now
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn challenge() -> Response {
        response(
            401,
            &[(
                "WWW-Authenticate",
                "Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
            )],
            "",
        )
    }

    fn token(value: &str) -> Response {
        response(
            200,
            &[],
            &format!(r#"{{"token_type":"Bearer","expires_in":3600,"access_token":"{value}"}}"#),
        )
    }

    fn who_am_i() -> Response {
        response(
            200,
            &[],
            r#"{"UserId":"u","BusinessUnitId":"b","OrganizationId":"o"}"#,
        )
    }

    fn settings() -> Settings {
        crate::settings::parse(
            "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=app;ClientSecret=s3cret",
        )
        .unwrap()
    }

    fn script(answers: Vec<Response>) -> Scripted {
        Scripted {
            answers: answers.into(),
            sent: Vec::new(),
            now: 1_000,
        }
    }

    fn bearer(request: &Request) -> Option<&str> {
        request.header_value("authorization")
    }

    #[test]
    fn connect_discovers_then_acquires_and_calls_reuse_the_token() {
        let mut t = script(vec![challenge(), token("t1"), who_am_i(), who_am_i()]);
        let mut client = Client::connect(settings(), &mut t).unwrap();
        client.who_am_i().unwrap();
        client.who_am_i().unwrap();
        drop(client);
        let urls: Vec<&str> = t.sent.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://contoso.crm.dynamics.com/api/data/v9.2/",
                "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
                "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI",
                "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI",
            ]
        );
        assert_eq!(bearer(&t.sent[0]), None, "discovery is unauthenticated");
        assert_eq!(bearer(&t.sent[3]), Some("Bearer t1"));
    }

    #[test]
    fn a_token_with_less_than_five_minutes_left_is_renewed() {
        let mut t = script(vec![challenge(), token("t1"), token("t2"), who_am_i()]);
        let mut client = Client::connect(settings(), &mut t).unwrap();
        client.transport.now = 1_000 + 3600 - 300;
        client.who_am_i().unwrap();
        drop(client);
        assert_eq!(bearer(&t.sent[3]), Some("Bearer t2"));
    }

    #[test]
    fn a_401_on_a_cached_token_reacquires_once_and_retries_once() {
        let mut t = script(vec![
            challenge(),
            token("t1"),
            challenge(),
            token("t2"),
            who_am_i(),
        ]);
        let mut client = Client::connect(settings(), &mut t).unwrap();
        client.who_am_i().unwrap();
        drop(client);
        assert_eq!(t.sent.len(), 5);
        assert_eq!(bearer(&t.sent[4]), Some("Bearer t2"));
    }

    #[test]
    fn a_second_401_is_returned_not_looped() {
        let mut t = script(vec![
            challenge(),
            token("t1"),
            challenge(),
            token("t2"),
            challenge(),
        ]);
        let mut client = Client::connect(settings(), &mut t).unwrap();
        let err = client.who_am_i().unwrap_err();
        drop(client);
        assert!(
            matches!(err, Error::Service(ServiceFailure { status: 401, .. })),
            "{err:?}"
        );
        assert_eq!(t.sent.len(), 5);
    }

    #[test]
    fn a_next_link_off_the_org_is_refused_without_sending() {
        let mut t = script(vec![challenge(), token("t1")]);
        let mut client = Client::connect(settings(), &mut t).unwrap();
        let err = client
            .next_page("https://evil.example/api/data/v9.2/accounts", None)
            .unwrap_err();
        drop(client);
        assert!(matches!(err, Error::InvalidRequest(_)));
        assert_eq!(t.sent.len(), 2);
    }

    #[test]
    fn next_page_repeats_the_page_size_preference() {
        let page = response(200, &[], r#"{"value":[{"name":"a"}]}"#);
        let mut t = script(vec![challenge(), token("t1"), page]);
        let mut client = Client::connect(settings(), &mut t).unwrap();
        let link = "https://contoso.crm.dynamics.com/api/data/v9.2/accounts?$skiptoken=x";
        assert_eq!(client.next_page(link, Some(10)).unwrap().row_count, 1);
        drop(client);
        assert_eq!(t.sent[2].url, link);
        assert_eq!(
            t.sent[2].header_value("prefer"),
            Some("odata.maxpagesize=10")
        );
    }

    #[test]
    fn discovery_to_an_unknown_login_host_sends_no_credential() {
        let evil = response(
            401,
            &[(
                "WWW-Authenticate",
                "Bearer authorization_uri=https://login.evil.example/tid/oauth2/authorize",
            )],
            "",
        );
        let mut t = script(vec![evil]);
        let err = Client::connect(settings(), &mut t).err().unwrap();
        assert!(matches!(err, Error::Authority(_)));
        assert_eq!(t.sent.len(), 1);
    }

    #[test]
    fn certificate_settings_are_refused_clearly_for_now() {
        let settings = crate::settings::parse(&format!(
            "AuthType=Certificate;Url=https://contoso.crm.dynamics.com/;ClientId=app;Thumbprint={}",
            "AB".repeat(20)
        ))
        .unwrap();
        let mut t = script(vec![]);
        let err = Client::connect(settings, &mut t).err().unwrap();
        assert!(matches!(&err, Error::InvalidSettings(m) if m.contains("Certificate")));
        assert!(t.sent.is_empty());
    }
}
