//! `$batch` requests (multipart encoding, change sets, limits) and the
//! multipart responses read back.

use super::*;

const ORG: &str = "https://contoso.crm.dynamics.com";
const ID: &str = "00000000-0000-0000-0000-000000000001";
const SEED: u128 = 0xabc;
const B: &str = "batch_00000000000000000000000000000abc";
const C: &str = "changeset_00000000000000000000000000000abc";

fn part(method: Method, url: &str, body: Option<&str>) -> BatchPart {
    BatchPart {
        method,
        url: url.into(),
        headers: vec![],
        body: body.map(str::to_string),
    }
}

fn body(r: &Request) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

#[test]
fn a_plain_batch_lists_each_request_as_an_http_part() {
    let mut get = part(Method::Get, "accounts?$select=name&$top=2", None);
    get.headers
        .push(("Prefer".into(), "odata.include-annotations=\"*\"".into()));
    let parts = [
        get,
        part(
            Method::Patch,
            &format!("{ORG}/api/data/v9.2/accounts({ID})"),
            Some(r#"{"name":"B"}"#),
        ),
        part(
            Method::Delete,
            &format!("/api/data/v9.2/accounts({ID})"),
            None,
        ),
        part(Method::Get, "/WhoAmI", None),
    ];
    let req = request(ORG, &parts, false, true, SEED).unwrap();
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url, format!("{ORG}/api/data/v9.2/$batch"));
    assert_eq!(
        req.headers,
        [
            (
                "Content-Type".to_string(),
                format!("multipart/mixed; boundary={B}")
            ),
            ("Prefer".to_string(), "odata.continue-on-error".to_string()),
        ]
    );
    let expected = format!(
        "--{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             GET /api/data/v9.2/accounts?$select=name&$top=2 HTTP/1.1\r\n\
             Prefer: odata.include-annotations=\"*\"\r\n\
             \r\n\
             \r\n\
             --{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             PATCH /api/data/v9.2/accounts({ID}) HTTP/1.1\r\n\
             Content-Type: application/json; type=entry\r\n\
             \r\n\
             {{\"name\":\"B\"}}\r\n\
             --{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             DELETE /api/data/v9.2/accounts({ID}) HTTP/1.1\r\n\
             \r\n\
             \r\n\
             --{B}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             \r\n\
             GET /api/data/v9.2/WhoAmI HTTP/1.1\r\n\
             \r\n\
             \r\n\
             --{B}--\r\n"
    );
    assert_eq!(body(&req), expected);
}

#[test]
fn a_change_set_wraps_all_parts_with_content_ids() {
    let mut with_type = part(Method::Post, "$1/primarycontactid/$ref", Some("{}"));
    with_type
        .headers
        .push(("Content-Type".into(), "application/json".into()));
    let parts = [
        part(Method::Post, "accounts", Some(r#"{"name":"A"}"#)),
        with_type,
    ];
    let req = request(ORG, &parts, true, false, SEED).unwrap();
    assert_eq!(req.header_value("prefer"), None);
    let expected = format!(
        "--{B}\r\n\
             Content-Type: multipart/mixed; boundary={C}\r\n\
             \r\n\
             --{C}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             Content-ID: 1\r\n\
             \r\n\
             POST /api/data/v9.2/accounts HTTP/1.1\r\n\
             Content-Type: application/json; type=entry\r\n\
             \r\n\
             {{\"name\":\"A\"}}\r\n\
             --{C}\r\n\
             Content-Type: application/http\r\n\
             Content-Transfer-Encoding: binary\r\n\
             Content-ID: 2\r\n\
             \r\n\
             POST $1/primarycontactid/$ref HTTP/1.1\r\n\
             Content-Type: application/json\r\n\
             \r\n\
             {{}}\r\n\
             --{C}--\r\n\
             \r\n\
             --{B}--\r\n"
    );
    assert_eq!(body(&req), expected);
}

#[test]
fn part_urls_are_escaped_so_they_cannot_break_the_request_line() {
    let parts = [part(
        Method::Get,
        "accounts?$filter=name eq 'a b'\r\nX: y",
        None,
    )];
    let text = body(&request(ORG, &parts, false, false, SEED).unwrap());
    assert!(
        text.contains(
            "GET /api/data/v9.2/accounts?$filter=name%20eq%20'a%20b'%0D%0AX:%20y HTTP/1.1\r\n"
        ),
        "{text}"
    );
}

#[test]
fn invalid_batches_are_invalid_requests() {
    let ok = part(Method::Post, "accounts", Some("{}"));
    let many = vec![ok.clone(); MAX_BATCH_REQUESTS + 1];
    let mut bad_header = ok.clone();
    bad_header
        .headers
        .push(("X".into(), "a\r\nInjected: 1".into()));
    let mut bad_name = ok.clone();
    bad_name.headers.push(("X Y".into(), "1".into()));
    let boundary_in_body = part(Method::Post, "accounts", Some(&format!("--{B}")));
    let cases: Vec<(Vec<BatchPart>, bool, &str)> = vec![
        (vec![], false, "1000"),
        (many, false, "1000"),
        (vec![part(Method::Get, "accounts", None)], true, "GET"),
        (
            vec![part(
                Method::Post,
                "https://evil.example/api/data/v9.2/accounts",
                None,
            )],
            false,
            "origin",
        ),
        (
            vec![part(
                Method::Post,
                "https://contoso.crm.dynamics.com.evil.example/x",
                None,
            )],
            false,
            "origin",
        ),
        (
            vec![part(Method::Post, "//evil.example/x", None)],
            false,
            "url",
        ),
        (
            vec![part(Method::Post, "ftp://contoso.crm.dynamics.com/x", None)],
            false,
            "url",
        ),
        (vec![part(Method::Post, "$1", None)], false, "change set"),
        (
            vec![ok.clone(), part(Method::Post, "$2", None)],
            true,
            "earlier",
        ),
        (
            vec![ok.clone(), part(Method::Post, "$0", None)],
            true,
            "earlier",
        ),
        (
            vec![ok.clone(), part(Method::Post, "$1x", None)],
            true,
            "earlier",
        ),
        (vec![bad_header], false, "header"),
        (vec![bad_name], false, "header"),
        (vec![boundary_in_body], false, "boundary"),
    ];
    for (parts, change_set, words) in cases {
        match request(ORG, &parts, change_set, false, SEED) {
            Err(Error::InvalidRequest(m)) => {
                assert!(m.starts_with("parts"), "{m}");
                assert!(m.contains(words), "{m} should say {words}");
            }
            other => panic!("{parts:?}: {other:?}"),
        }
    }
}

fn response(content_type: &str, body: &str) -> Response {
    Response {
        status: 200,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: body.as_bytes().to_vec(),
    }
}

fn item(id: Option<&str>, status: u16, headers: &[(&str, &str)], body: &str) -> BatchItem {
    BatchItem {
        content_id: id.map(str::to_string),
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    }
}

#[test]
fn a_batch_response_with_a_change_set_is_read_in_order() {
    let text = "--batchresponse_1\r\n\
            Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\
            \r\n\
            --changesetresponse_2\r\n\
            Content-Type: application/http\r\n\
            Content-Transfer-Encoding: binary\r\n\
            Content-ID: 1\r\n\
            \r\n\
            HTTP/1.1 204 No Content\r\n\
            OData-Version: 4.0\r\n\
            Location: https://o/api/data/v9.2/tasks(1)\r\n\
            OData-EntityId: https://o/api/data/v9.2/tasks(1)\r\n\
            \r\n\
            \r\n\
            --changesetresponse_2\r\n\
            Content-Type: application/http\r\n\
            Content-Transfer-Encoding: binary\r\n\
            Content-ID: 2\r\n\
            \r\n\
            HTTP/1.1 201 Created\r\n\
            Content-Type: application/json; odata.metadata=minimal\r\n\
            \r\n\
            {\"a\":\"--changesetresponse_2 is not a delimiter here\"}\r\n\
            --changesetresponse_2--\r\n\
            --batchresponse_1\r\n\
            Content-Type: application/http\r\n\
            Content-Transfer-Encoding: binary\r\n\
            \r\n\
            HTTP/1.1 200 OK\r\n\
            Content-Type: application/json\r\n\
            \r\n\
            {\"value\":[]}\r\n\
            --batchresponse_1--\r\n";
    let items =
        parse_response(&response("multipart/mixed; boundary=batchresponse_1", text)).unwrap();
    assert_eq!(
        items,
        [
            item(
                Some("1"),
                204,
                &[
                    ("OData-Version", "4.0"),
                    ("Location", "https://o/api/data/v9.2/tasks(1)"),
                    ("OData-EntityId", "https://o/api/data/v9.2/tasks(1)"),
                ],
                ""
            ),
            item(
                Some("2"),
                201,
                &[("Content-Type", "application/json; odata.metadata=minimal")],
                "{\"a\":\"--changesetresponse_2 is not a delimiter here\"}"
            ),
            item(
                None,
                200,
                &[("Content-Type", "application/json")],
                "{\"value\":[]}"
            ),
        ]
    );
}

#[test]
fn lf_line_endings_preambles_and_epilogues_are_tolerated() {
    let text = "preamble text\n\
            --b  \n\
            Content-Type: application/http\n\
            \n\
            HTTP/1.1 400 Bad Request\n\
            Content-Type: application/json\n\
            \n\
            {\"error\":{\"code\":\"0x80040237\",\"message\":\"dup\"}}\n\n\
            --b--   \n\
            epilogue";
    let items = parse_response(&response(
        "Multipart/Mixed; charset=utf-8; boundary=\"b\"",
        text,
    ))
    .unwrap();
    assert_eq!(
        items,
        [item(
            None,
            400,
            &[("Content-Type", "application/json")],
            "{\"error\":{\"code\":\"0x80040237\",\"message\":\"dup\"}}"
        )]
    );
    let empty = parse_response(&response("multipart/mixed; boundary=b", "--b--")).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn malformed_batch_responses_are_invalid_responses() {
    let http = "Content-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    let cases = [
            ("application/json", "{}".to_string()),
            ("multipart/mixed", "--b--".to_string()),
            ("multipart/mixed; boundary=", "--b--".to_string()),
            ("multipart/mixed; boundary=b", "".to_string()),
            ("multipart/mixed; boundary=b", format!("--b\r\n{http}")),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 2000 OK\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 abc OK\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nnot http\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\nbad header\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nno colon\r\n\r\nHTTP/1.1 200 OK\r\n\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d--\r\n--c--\r\n--b--".to_string()),
            ("multipart/mixed; boundary=b", "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n".to_string() + http + "--b--"),
        ];
    for (content_type, text) in cases {
        let result = parse_response(&response(content_type, &text));
        assert!(
            matches!(result, Err(Error::InvalidResponse(_))),
            "{text:?}: {result:?}"
        );
    }
    let mut no_type = response("x", "--b--");
    no_type.headers.clear();
    assert!(parse_response(&no_type).is_err());
    let mut bad_utf8 = response("multipart/mixed; boundary=b", "");
    bad_utf8.body = b"--b\r\n\xff\r\n--b--".to_vec();
    assert!(parse_response(&bad_utf8).is_err());
}

#[test]
fn a_built_batch_parses_back_as_requests_do_not_panic_the_parser() {
    // The request body is not a response, but feeding it in must not panic.
    let parts = [part(Method::Post, "accounts", Some("{}"))];
    let req = request(ORG, &parts, true, false, SEED).unwrap();
    let resp = response(&format!("multipart/mixed; boundary={B}"), &body(&req));
    assert!(parse_response(&resp).is_err());
}

#[test]
fn garbage_batch_responses_never_panic() {
    let pieces = [
        "--b",
        "--b--",
        "--c",
        "--c--",
        "\r\n",
        "\n",
        "\r",
        " ",
        ":",
        "Content-Type",
        ": multipart/mixed; boundary=c",
        ": application/http",
        "HTTP/1.1 ",
        "204",
        "200 OK",
        "Content-ID: 1",
        "é",
        "😀",
        "{}",
        "\t",
    ];
    for text in super::super::entity_key::garbage_strings(&pieces, 30_000) {
        let _ = parse_response(&response("multipart/mixed; boundary=b", &text));
    }
}

#[test]
fn a_multipart_answer_is_the_batchs_result_whatever_its_status_unless_throttled() {
    let answer = |status: u16, content_type: &str| Response {
        status,
        headers: vec![("Content-Type".into(), content_type.into())],
        body: Vec::new(),
    };
    assert!(is_result(&answer(
        400,
        "multipart/mixed; boundary=batchresponse_1"
    )));
    assert!(is_result(&answer(500, " Multipart/Mixed;boundary=b")));
    assert!(!is_result(&answer(429, "multipart/mixed; boundary=b")));
    assert!(!is_result(&answer(400, "application/json")));
}
