//! The readers against a scripted server: every page once, the row bound,
//! and the server loops they refuse to follow.

use super::*;
use crate::client::ClientConfig;
use crate::http::Response;
use crate::scripted::{Scripted, response};

const ORG: &str = "https://contoso.crm.dynamics.com";

/// Discovery and a token, then `pages`.
fn script(pages: Vec<Response>) -> Scripted {
    let challenge = response(
        401,
        &[(
            "WWW-Authenticate",
            "Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize",
        )],
        "",
    );
    let token = response(
        200,
        &[],
        r#"{"token_type":"Bearer","expires_in":3600,"access_token":"t"}"#,
    );
    let mut answers = vec![challenge, token];
    answers.extend(pages);
    Scripted::new(1_000, answers)
}

fn connect(t: &mut Scripted) -> Client<&mut Scripted> {
    let settings = crate::settings::parse(&format!(
        "AuthType=ClientSecret;Url={ORG}/;ClientId=app;ClientSecret=s"
    ))
    .unwrap();
    Client::connect(settings, t, ClientConfig::default()).unwrap()
}

fn link(token: &str) -> String {
    format!("{ORG}/api/data/v9.2/accounts?$select=name&$skiptoken={token}")
}

/// A page of `names` whose nextLink is `next` (a full URL).
fn page(names: &[&str], next: Option<&str>) -> Response {
    let rows: Vec<String> = names
        .iter()
        .map(|n| format!(r#"{{"name":"{n}"}}"#))
        .collect();
    let next = next
        .map(|l| format!(r#","@odata.nextLink":"{l}""#))
        .unwrap_or_default();
    response(
        200,
        &[],
        &format!(r#"{{"value":[{}]{next}}}"#, rows.join(",")),
    )
}

fn query() -> Query {
    Query {
        entity_set: "accounts".into(),
        select: vec!["name".into()],
        page_size: Some(2),
        ..Query::default()
    }
}

/// Pulls until the reader ends: the names handed out, and the error if any.
fn read_all(
    reader: &mut PageReader,
    client: &mut Client<&mut Scripted>,
) -> (Vec<String>, Option<Failure>) {
    let mut names = Vec::new();
    while let Some(result) = reader.next(client) {
        match result {
            Ok(reply) => {
                let rows: Vec<serde_json::Value> = serde_json::from_str(&reply.value.rows).unwrap();
                names.extend(rows.iter().map(|r| r["name"].as_str().unwrap().to_string()));
            }
            Err(failure) => {
                assert!(
                    reader.next(client).is_none(),
                    "the reader stops after an error"
                );
                return (names, Some(failure));
            }
        }
    }
    (names, None)
}

fn invalid_response(failure: Option<Failure>) -> String {
    match failure {
        Some(Failure {
            error: Error::InvalidResponse(message),
            call: Some(_),
        }) => message,
        other => panic!("expected invalid-response with a call record, got {other:?}"),
    }
}

#[test]
fn every_page_is_read_once_in_order() {
    let (l2, l3) = (link("2"), link("3"));
    let mut t = script(vec![
        page(&["a", "b"], Some(&l2)),
        page(&["c", "d"], Some(&l3)),
        page(&["e"], None),
    ]);
    let mut client = connect(&mut t);
    let mut reader = PageReader::new(query(), u64::MAX, CallOptions::default());
    let (names, failure) = read_all(&mut reader, &mut client);
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(reader.rows_read(), 5);
    drop(client);
    assert_eq!(&t.sent_urls()[3..], [l2, l3]);
}

#[test]
fn a_self_looping_next_link_ends_the_read_after_its_rows_with_invalid_response() {
    let l2 = link("2");
    let mut t = script(vec![
        page(&["a", "b"], Some(&l2)),
        page(&["c", "d"], Some(&l2)),
        page(&["c", "d"], Some(&l2)),
    ]);
    let mut client = connect(&mut t);
    let mut reader = PageReader::new(query(), u64::MAX, CallOptions::default());
    let (names, failure) = read_all(&mut reader, &mut client);
    let message = invalid_response(failure);
    assert!(message.contains("already followed"), "{message}");
    assert!(message.contains("page 2"), "{message}");
    assert_eq!(names, ["a", "b", "c", "d"], "each row once, none lost");
    drop(client);
    assert_eq!(
        t.sent.len(),
        4,
        "the repeated link is never requested again"
    );
}

#[test]
fn a_next_link_alternating_between_two_pages_ends_the_read() {
    let (l2, l3) = (link("2"), link("3"));
    let mut t = script(vec![
        page(&["a"], Some(&l2)),
        page(&["b"], Some(&l3)),
        page(&["c"], Some(&l2)),
        page(&["b"], Some(&l3)),
    ]);
    let mut client = connect(&mut t);
    let mut reader = PageReader::new(query(), u64::MAX, CallOptions::default());
    let (names, failure) = read_all(&mut reader, &mut client);
    invalid_response(failure);
    assert_eq!(names, ["a", "b", "c"]);
    drop(client);
    assert_eq!(t.sent.len(), 5);
}

#[test]
fn a_next_link_back_to_the_first_page_ends_the_read() {
    let mut t = script(vec![page(&["a"], None)]);
    let first = {
        let client = connect(&mut t);
        query().url(client.org_url()).unwrap()
    };
    let mut t = script(vec![page(&["a"], Some(&first)), page(&["a"], None)]);
    let mut client = connect(&mut t);
    let mut reader = PageReader::new(query(), u64::MAX, CallOptions::default());
    let (names, failure) = read_all(&mut reader, &mut client);
    invalid_response(failure);
    assert_eq!(names, ["a"]);
}

#[test]
fn a_next_link_off_the_org_from_the_server_is_invalid_response_not_invalid_request() {
    let mut t = script(vec![page(
        &["a"],
        Some("https://evil.example/api/data/v9.2/accounts?$skiptoken=2"),
    )]);
    let mut client = connect(&mut t);
    let mut reader = PageReader::new(query(), u64::MAX, CallOptions::default());
    let (names, failure) = read_all(&mut reader, &mut client);
    let message = invalid_response(failure);
    assert!(
        message.contains("not on the organization's origin"),
        "{message}"
    );
    assert_eq!(names, ["a"]);
    drop(client);
    assert!(
        t.sent_urls().iter().all(|url| !url.contains("evil")),
        "{:?}",
        t.sent_urls()
    );
}

#[test]
fn max_rows_stops_before_a_loop_is_met() {
    let l2 = link("2");
    let mut t = script(vec![
        page(&["a", "b"], Some(&l2)),
        page(&["c", "d"], Some(&l2)),
    ]);
    let mut client = connect(&mut t);
    let mut reader = PageReader::new(query(), 3, CallOptions::default());
    let (names, failure) = read_all(&mut reader, &mut client);
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn seen_remembers_fingerprints_up_to_its_capacity() {
    let mut seen = Seen::default();
    for i in 0..Seen::CAPACITY + 10 {
        seen.insert(&format!("link {i}"));
    }
    assert_eq!(seen.0.len(), Seen::CAPACITY);
    assert!(seen.contains("link 0"));
    assert!(!seen.contains(&format!("link {}", Seen::CAPACITY + 5)));
}

// ---- FetchXML ----------------------------------------------------------------

const FETCH: &str =
    "<fetch count='2'><entity name='account'><attribute name='name'/></entity></fetch>";

/// A FetchXML page; `cookie` is the inner cookie XML, wrapped the way
/// Dataverse sends it (`pagingcookie` percent-encoded twice).
fn fetch_page(names: &[&str], more: bool, cookie: Option<&str>) -> Response {
    let rows: Vec<String> = names
        .iter()
        .map(|n| format!(r#"{{"name":"{n}"}}"#))
        .collect();
    let mut body = serde_json::json!({
        "value": serde_json::from_str::<serde_json::Value>(&format!("[{}]", rows.join(","))).unwrap(),
        "@Microsoft.Dynamics.CRM.morerecords": more,
    });
    if let Some(cookie) = cookie {
        let twice = encode(&encode(cookie));
        body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"] = serde_json::Value::String(format!(
            "<cookie pagenumber=\"2\" pagingcookie=\"{twice}\" istracking=\"False\" />"
        ));
    }
    response(200, &[], &body.to_string())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

/// Percent-decoding, enough for the FetchXML the client sends.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn cookie(page: u32, last: &str) -> String {
    format!(r#"<cookie page="{page}"><accountid last="{{{last}}}" first="{{F}}" /></cookie>"#)
}

fn fetch_all(
    reader: &mut FetchReader,
    client: &mut Client<&mut Scripted>,
) -> (Vec<String>, Option<Failure>) {
    let mut names = Vec::new();
    while let Some(result) = reader.next(client) {
        match result {
            Ok(reply) => {
                let rows: Vec<serde_json::Value> = serde_json::from_str(&reply.value.rows).unwrap();
                names.extend(rows.iter().map(|r| r["name"].as_str().unwrap().to_string()));
            }
            Err(failure) => {
                assert!(reader.next(client).is_none());
                return (names, Some(failure));
            }
        }
    }
    (names, None)
}

fn fetch_reader(max_rows: u64) -> FetchReader {
    FetchReader::new(
        "accounts".into(),
        FETCH.into(),
        max_rows,
        CallOptions::default(),
    )
}

/// The `page` attribute and the cookie of each FetchXML request sent.
fn fetch_requests(t: &Scripted) -> Vec<String> {
    t.sent_urls()[2..]
        .iter()
        .map(|url| {
            let xml = decode(url.split_once("fetchXml=").unwrap().1);
            let page = xml
                .split("page=\"")
                .nth(1)
                .map_or("1", |r| r.split('"').next().unwrap())
                .to_string();
            let has_cookie = xml.contains("paging-cookie=");
            format!("page {page}{}", if has_cookie { " + cookie" } else { "" })
        })
        .collect()
}

#[test]
fn fetch_paging_follows_cookies_to_the_last_page() {
    let mut t = script(vec![
        fetch_page(&["a", "b"], true, Some(&cookie(1, "B"))),
        fetch_page(&["c", "d"], true, Some(&cookie(2, "D"))),
        fetch_page(&["e"], false, None),
    ]);
    let mut client = connect(&mut t);
    let mut reader = fetch_reader(u64::MAX);
    let (names, failure) = fetch_all(&mut reader, &mut client);
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(reader.rows_read(), 5);
    drop(client);
    assert_eq!(
        fetch_requests(&t),
        ["page 1", "page 2 + cookie", "page 3 + cookie"]
    );
}

#[test]
fn fetch_paging_without_cookies_pages_by_number_and_stops_at_max_rows() {
    let mut t = script(vec![
        fetch_page(&["a", "b"], true, None),
        fetch_page(&["c", "d"], true, None),
    ]);
    let mut client = connect(&mut t);
    let mut reader = fetch_reader(3);
    let (names, failure) = fetch_all(&mut reader, &mut client);
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(names, ["a", "b", "c"]);
    drop(client);
    assert_eq!(fetch_requests(&t), ["page 1", "page 2"]);
}

#[test]
fn a_repeated_paging_cookie_ends_the_fetch_read_with_invalid_response() {
    let stuck = cookie(1, "B");
    let mut t = script(vec![
        fetch_page(&["a", "b"], true, Some(&stuck)),
        fetch_page(&["c", "d"], true, Some(&stuck)),
        fetch_page(&["c", "d"], true, Some(&stuck)),
    ]);
    let mut client = connect(&mut t);
    let mut reader = fetch_reader(u64::MAX);
    let (names, failure) = fetch_all(&mut reader, &mut client);
    let message = invalid_response(failure);
    assert!(message.contains("already sent"), "{message}");
    assert_eq!(names, ["a", "b", "c", "d"]);
    drop(client);
    assert_eq!(t.sent.len(), 4);
}

#[test]
fn a_paging_cookie_alternating_between_two_pages_ends_the_fetch_read() {
    let (c1, c2) = (cookie(1, "B"), cookie(2, "D"));
    let mut t = script(vec![
        fetch_page(&["a"], true, Some(&c1)),
        fetch_page(&["b"], true, Some(&c2)),
        fetch_page(&["c"], true, Some(&c1)),
    ]);
    let mut client = connect(&mut t);
    let mut reader = fetch_reader(u64::MAX);
    let (names, failure) = fetch_all(&mut reader, &mut client);
    invalid_response(failure);
    assert_eq!(names, ["a", "b", "c"]);
}

#[test]
fn a_paging_cookie_whose_page_number_does_not_advance_ends_the_fetch_read() {
    // A different cookie each time, but always describing page 1.
    let mut t = script(vec![
        fetch_page(&["a"], true, Some(&cookie(1, "A"))),
        fetch_page(&["b"], true, Some(&cookie(1, "B"))),
        fetch_page(&["c"], true, Some(&cookie(1, "C"))),
    ]);
    let mut client = connect(&mut t);
    let mut reader = fetch_reader(u64::MAX);
    let (names, failure) = fetch_all(&mut reader, &mut client);
    let message = invalid_response(failure);
    assert!(message.contains("does not advance"), "{message}");
    assert_eq!(names, ["a", "b"]);
}
