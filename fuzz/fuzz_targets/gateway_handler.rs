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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use dataverse_fuzz::{first_line, head, response, sections, text};
use dataverse_gateway::config::{ALLOW_VAR, API_KEY_VAR, CONNECTION_VAR, Config};
use dataverse_gateway::handler::{Gateway, Request};
use dataverse_gateway::reply::Reply;
use dataverse_gateway::route::{self, Route};
use dataverse_wasm::http::{Request as Sent, Response};
use dataverse_wasm::{Error, Transport};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "k3y-0123456789abcdef";
const SECRET: &str = "S3cr3t!Value-fuzz";
const ORG: &str = "https://o.crm.dynamics.com/";
const LOGIN: &str = "https://login.microsoftonline.com/";
const ALLOW: &str = "accounts,WhoAmI,$batch";

/// Answers from the script and records what was sent.
#[derive(Clone, Default)]
struct Scripted(Rc<RefCell<(VecDeque<Response>, Vec<Sent>)>>);

impl Transport for Scripted {
    fn send(&mut self, request: &Sent) -> Result<Response, Error> {
        let mut script = self.0.borrow_mut();
        script.1.push(request.clone());
        script
            .0
            .pop_front()
            .ok_or_else(|| Error::Transport("connection refused".into()))
    }
    fn now(&self) -> u64 {
        1_767_225_600
    }
    fn sleep(&mut self, _millis: u64) {}
    fn random(&mut self) -> u64 {
        0x5eed
    }
}

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

/// How often `needle` occurs in `haystack` (overlaps counted).
fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn printed(reply: &Reply) -> Vec<u8> {
    let mut all = format!("{} {:?}\n", reply.status, reply.headers).into_bytes();
    all.extend_from_slice(&reply.body);
    all
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
        let script = Scripted::default();
        script.0.borrow_mut().0 = answers.clone().into();
        let mut gateway = Gateway::new(config(allow));
        let mut replies = Vec::new();
        // Twice: the second request reuses the connected client and its token.
        for _ in 0..2 {
            let mut read = false;
            let reply = gateway.handle(
                &request,
                |_| {
                    read = true;
                    Ok(body.to_vec())
                },
                || script.clone(),
            );
            let authorised = route::key_matches(
                route::presented_key(&request.headers),
                &dataverse_wasm::Secret::new(KEY),
            );
            if !authorised {
                assert!(!read, "body read without the key");
                assert!(
                    [200, 401, 405].contains(&reply.status),
                    "HTTP {} without the key",
                    reply.status
                );
            }
            replies.push(reply);
        }
        let sent = script.0.borrow().1.clone();

        let routed = route::route(&request.path_and_query);
        let authorised = route::key_matches(
            route::presented_key(&request.headers),
            &dataverse_wasm::Secret::new(KEY),
        );
        if !authorised {
            assert!(sent.is_empty(), "sent without the key: {sent:?}");
        }
        if let (Some(_), Ok(Route::WebApi { resource, .. })) = (allow, &routed)
            && !ALLOW.split(',').any(|a| a.eq_ignore_ascii_case(resource))
        {
            assert!(
                sent.is_empty(),
                "{resource:?} is off the allow-list but was sent: {sent:?}"
            );
        }

        let mut tokens = Vec::new();
        for s in &sent {
            let carries_secret = contains(s.url.as_bytes(), SECRET.as_bytes())
                || contains(&s.body, SECRET.as_bytes())
                || s.headers.iter().any(|(_, v)| v.contains(SECRET));
            if carries_secret && !contains(data, SECRET.as_bytes()) {
                assert!(s.url.starts_with(LOGIN), "the secret went to {}", s.url);
            }
            for (name, value) in &s.headers {
                assert!(
                    !name.eq_ignore_ascii_case("x-api-key"),
                    "the caller's key was forwarded"
                );
                if name.eq_ignore_ascii_case("authorization") {
                    assert!(s.url.starts_with(ORG), "a token went to {}", s.url);
                    let token = value.strip_prefix("Bearer ").unwrap_or(value);
                    if !contains(&upstream, KEY.as_bytes()) {
                        assert_ne!(token, KEY, "the caller's key was sent as the token");
                    }
                    tokens.push(token.to_string());
                }
            }
        }

        for reply in &replies {
            let shown = printed(reply);
            if !contains(data, SECRET.as_bytes()) {
                assert!(
                    !contains(&shown, SECRET.as_bytes()),
                    "the secret is in a reply"
                );
            }
            if !contains(&upstream, KEY.as_bytes()) {
                assert!(
                    !contains(&shown, KEY.as_bytes()),
                    "the API key is in a reply"
                );
            }
            for token in &tokens {
                // A token the input holds only once, as a token response
                // writes it, can only reach a reply by a leak. (With JSON
                // escapes another answer could spell the same token.)
                if token.len() >= 8
                    && count(data, token.as_bytes()) == 1
                    && !contains(&upstream, b"\\")
                {
                    assert!(
                        !contains(&shown, token.as_bytes()),
                        "the access token is in a reply"
                    );
                }
            }
        }
    }
});
