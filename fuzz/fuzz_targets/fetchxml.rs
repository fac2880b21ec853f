//! FetchXML paging: `fetchxml::parse_page` reads the paging cookie out of
//! the server's annotation (XML attribute, percent-encoded twice), and
//! `fetchxml::request` puts it back into the next query's `<fetch>`.
//!
//! Sections: the response; then, optionally, the FetchXML query (default: a
//! simple one) and a page number line.

#![no_main]

use dataverse_fuzz::{first_line, response, sections, text};
use dataverse_wasm::webapi::fetchxml;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

const ORG: &str = "https://contoso.crm.dynamics.com";
const QUERY: &str =
    r#"<fetch count="2"><entity name="account"><attribute name="name"/></entity></fetch>"#;

fuzz_target!(|data: &[u8]| {
    let parts = sections(data);
    let answer = response(parts[0]);
    let query = parts
        .get(1)
        .map(|q| text(q))
        .unwrap_or_else(|| QUERY.to_string());
    let page = parts
        .get(2)
        .and_then(|p| text(first_line(p).0).trim().parse().ok())
        .unwrap_or(2);

    let cookie = match fetchxml::parse_page(&answer) {
        Ok(found) => {
            let rows: Vec<Box<RawValue>> =
                serde_json::from_str(&found.rows).expect("rows are a JSON array");
            assert_eq!(rows.len(), found.row_count as usize);
            found.paging_cookie
        }
        Err(_) => None,
    };
    // The query as given (the first page), and with the cookie (the next).
    let _ = fetchxml::request(ORG, "accounts", &query, 1, None);
    if let Ok(next) = fetchxml::request(ORG, "accounts", &query, page, cookie.as_deref()) {
        assert!(
            next.url
                .starts_with("https://contoso.crm.dynamics.com/api/data/v9.2/accounts?fetchXml=")
        );
        // Everything after `fetchXml=` is query-encoded: the cookie cannot
        // add a parameter or end the URL.
        let value = &next.url[next.url.find("fetchXml=").unwrap() + "fetchXml=".len()..];
        assert!(
            !value.contains(['&', '#', ' ', '"', '<', '>']),
            "unencoded character in {value:?}"
        );
    }
});
