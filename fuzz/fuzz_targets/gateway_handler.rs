//! The whole gateway on one request, natively: `Gateway::handle` over a
//! scripted `Transport` whose answers (discovery, token, Dataverse) are
//! fuzz input too. The checks are the gateway's promises:
//! - without the API key nothing is read or sent, whatever the request;
//! - a resource off the allow-list is never sent;
//! - the client secret goes only to the org's Entra login host, the access
//!   token only to the org, the caller's key to neither;
//! - no reply holds the client secret, the API key or an access token.
//!
//! Sections: the request (`METHOD /target` line, headers, blank line, body),
//! then the upstream answers in the order they are asked for.

#![no_main]

use dataverse_fuzz::{
    MIN_SECRET_CHARS, access_token_values, assert_not_leaked, first_line, head, redact_bytes,
    response, sections, text,
};
use dataverse_gateway::config::{ALLOW_VAR, API_KEY_VAR, CONNECTION_VAR, Config};
use dataverse_gateway::handler::{Gateway, Request};
use dataverse_gateway::reply::Reply;
use dataverse_gateway::route::{self, Route};
use dataverse_wasm::Secret;
use dataverse_wasm::http::{Request as Sent, Response};
use dataverse_wasm::scripted::{Scripted, Shared};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "k3y-0123456789abcdef";
const SECRET: &str = "S3cr3t!Value-fuzz";
const ORG: &str = "https://o.crm.dynamics.com/";
const LOGIN: &str = "https://login.microsoftonline.com/";
const ALLOW: &str = "accounts,WhoAmI,$batch";

fn config(allow: Option<&str>) -> Result<Config, dataverse_gateway::config::NotConfigured> {
    let connection = format!(
        "AuthType=ClientSecret;Url={ORG};ClientId=00000000-0000-0000-0000-0000000000a1;ClientSecret={SECRET}"
    );
    Config::from_env(|name| match name {
        API_KEY_VAR => Some(KEY.to_string()),
        CONNECTION_VAR => Some(connection.clone()),
        ALLOW_VAR => allow.map(str::to_string),
        _ => None,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `bytes` as text without control characters: how an error message quotes
/// a body it does not understand. A key the input spells with NULs inside
/// comes out whole, and was the input's, not the gateway's.
fn visible(bytes: &[u8]) -> String {
    text(bytes).chars().filter(|c| !c.is_control()).collect()
}

/// A reply as a caller sees it: status, headers, body.
fn printed(reply: &Reply) -> Vec<u8> {
    let mut all = format!("{} {:?}\n", reply.status, reply.headers).into_bytes();
    all.extend_from_slice(&reply.body);
    all
}

fn is_authorised(request: &Request) -> bool {
    route::key_matches(route::presented_key(&request.headers), &Secret::new(KEY))
}

/// One gateway (with or without the allow-list) answering `request` twice —
/// the second time on the connected client and its cached token — over a
/// script of `answers`: the replies, and every request sent upstream.
fn run(
    request: &Request,
    body: &[u8],
    answers: &[Response],
    allow: Option<&str>,
) -> (Vec<Reply>, Vec<Sent>) {
    let mut script = Scripted::new(1_767_225_600, answers.iter().cloned());
    script.random = 0x5eed;
    script.exhausted = Some("connection refused".into());
    let script = Shared::new(script);
    let mut gateway = Gateway::new(config(allow));
    let mut replies = Vec::new();
    for _ in 0..2 {
        let mut read = false;
        let reply = gateway.handle(
            request,
            |_| {
                read = true;
                Ok(body.to_vec())
            },
            || script.clone(),
        );
        if !is_authorised(request) {
            assert!(!read, "body read without the key");
            assert!(
                [200, 401, 405].contains(&reply.status),
                "HTTP {} without the key",
                reply.status
            );
        }
        replies.push(reply);
    }
    let sent = script.0.borrow().sent.clone();
    (replies, sent)
}

fuzz_target!(|data: &[u8]| {
    let parts = sections(data);
    let (line, rest) = first_line(parts[0]);
    let line = text(line);
    let (method, target) = line.split_once(' ').unwrap_or((&line, "/"));
    let (headers, body) = head(rest);
    let request = Request {
        method: method.to_string(),
        path_and_query: target.to_string(),
        headers,
    };
    let answers: Vec<Response> = parts[1..].iter().map(|p| response(p)).collect();
    let upstream: Vec<u8> = parts[1..].concat();
    for allow in [None, Some(ALLOW)] {
        let (replies, sent) = run(&request, body, &answers, allow);

        if !is_authorised(&request) {
            assert!(sent.is_empty(), "sent without the key: {sent:?}");
        }
        if let (Some(_), Ok(Route::WebApi { resource, .. })) =
            (allow, route::route(&request.path_and_query))
            && !ALLOW.split(',').any(|a| a.eq_ignore_ascii_case(&resource))
        {
            assert!(
                sent.is_empty(),
                "{resource:?} is off the allow-list but was sent: {sent:?}"
            );
        }

        for s in &sent {
            let carries_secret = contains(s.url.as_bytes(), SECRET.as_bytes())
                || contains(&s.body, SECRET.as_bytes())
                || s.headers.iter().any(|(_, v)| v.contains(SECRET));
            if carries_secret && !visible(data).contains(SECRET) {
                assert!(s.url.starts_with(LOGIN), "the secret went to {}", s.url);
            }
            for (name, value) in &s.headers {
                assert!(
                    !name.eq_ignore_ascii_case("x-api-key"),
                    "the caller's key was forwarded"
                );
                if name.eq_ignore_ascii_case("authorization") {
                    assert!(s.url.starts_with(ORG), "a token went to {}", s.url);
                    if !visible(&upstream).contains(KEY) {
                        assert!(!value.contains(KEY), "the caller's key was sent upstream");
                    }
                }
            }
        }

        let shown: Vec<u8> = replies.iter().flat_map(printed).collect();
        if !visible(data).contains(SECRET) {
            assert!(
                !contains(&shown, SECRET.as_bytes()),
                "the secret is in a reply: {}",
                text(&shown)
            );
        }
        if !visible(&upstream).contains(KEY) {
            assert!(
                !contains(&shown, KEY.as_bytes()),
                "the API key is in a reply: {}",
                text(&shown)
            );
        }
        // The access tokens: what the answers to token requests (the script
        // answers in the order requests are sent) hold. Run again with them
        // replaced by filler: what a reply prints only with the real tokens
        // came from the tokens, not from another answer that holds the same
        // characters.
        let mut redacted_answers = answers.clone();
        let mut tokens = Vec::new();
        for (answer, s) in redacted_answers.iter_mut().zip(&sent) {
            // A caller's path may end the same way: only Entra ID's is one.
            if s.url.starts_with(LOGIN) && s.url.ends_with("/oauth2/v2.0/token") {
                let found = access_token_values(&answer.body);
                tokens.extend(found.iter().map(|r| text(&answer.body[r.clone()])));
                answer.body = redact_bytes(&answer.body, &found);
            }
        }
        let shown_text = text(&shown);
        if tokens
            .iter()
            .any(|t| t.len() >= MIN_SECRET_CHARS && shown_text.contains(t.as_str()))
        {
            let (redacted, _) = run(&request, body, &redacted_answers, allow);
            let shown_redacted: Vec<u8> = redacted.iter().flat_map(printed).collect();
            for token in &tokens {
                assert_not_leaked(
                    "the access token",
                    token,
                    &shown_text,
                    &text(&shown_redacted),
                );
            }
        }
    }
});
