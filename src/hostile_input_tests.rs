//! Hostile input never panics: every parser that reads user or server data is
//! fed many pseudo-random strings built from the characters that matter to it.

use crate::auth::{authority, token};
use crate::http::{Response, split_url};
use crate::webapi::{self, page, who_am_i};
use crate::{percent, settings};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A string of up to `max` pieces drawn from `pieces`.
    fn string(&mut self, pieces: &[&str], max: u64) -> String {
        let len = self.next() % (max + 1);
        (0..len)
            .map(|_| pieces[(self.next() % pieces.len() as u64) as usize])
            .collect()
    }
}

const CONNECTION_PIECES: &[&str] = &[
    ";",
    "=",
    "==",
    "'",
    "\"",
    "''",
    " ",
    "\t",
    "é",
    "😀",
    "Url",
    "AuthType",
    "ClientSecret",
    "ClientId",
    "Thumbprint",
    "https://",
    "http://",
    "org.crm.dynamics.com",
    ":",
    "/",
    "443",
    "x",
    "Certificate",
    "TenantId",
    "Authority",
    "AuthorityHost",
    ",",
    "\0",
    "%",
    "@",
];

const SERVER_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "value",
    "@odata.nextLink",
    "@odata.count",
    "error",
    "code",
    "message",
    "access_token",
    "expires_in",
    "1",
    "-1",
    "1e400",
    "null",
    "true",
    " ",
    "\\u0000",
    "é",
    "Bearer",
    "authorization_uri",
    "=",
    "https://",
    "/",
    "oauth2/authorize",
    "resource_id",
    "error_codes",
    "AADSTS",
    "7000215",
    "\n",
    "UserId",
];

#[test]
fn connection_string_parsing_never_panics() {
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..20_000 {
        let input = rng.string(CONNECTION_PIECES, 24);
        let _ = settings::parse(&input);
    }
}

#[test]
fn server_response_parsing_never_panics() {
    let mut rng = Rng(0x5EED_0002);
    let settings = settings::parse(
        "AuthType=ClientSecret;Url=https://org.crm.dynamics.com/;ClientId=a;ClientSecret=b",
    )
    .unwrap();
    for _ in 0..20_000 {
        let body = rng.string(SERVER_PIECES, 30);
        let status = [200, 401, 403, 404, 429, 500][(rng.next() % 6) as usize];
        let response = Response {
            status,
            headers: vec![
                ("WWW-Authenticate".into(), body.clone()),
                ("Retry-After".into(), body.clone()),
            ],
            body: body.clone().into_bytes(),
        };
        let _ = authority::from_discovery(&response, &settings);
        let _ = token::parse_response(&response, u64::MAX - 1);
        let _ = page::parse(&response);
        let _ = who_am_i::parse(&response);
        let _ = webapi::parse_error(&response);
        let _ = split_url(&body);
        let _ = webapi::is_org_url("https://org.crm.dynamics.com", &body);
        let _ = percent::escape_uri(&body);
    }
}
