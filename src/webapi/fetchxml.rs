//! FetchXML queries over the Web API (`?fetchXml=`), paged with the
//! `page` and `paging-cookie` attributes of the root `<fetch>` element.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::api_url;
use super::options::RequestOptions;
use super::prefer;
use super::query::check_identifier;
use crate::error::Error;
use crate::http::{Method, Request, Response};
use crate::percent::query_encode;

/// One page of FetchXML results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchPage {
    /// The rows, as the JSON array the server sent.
    pub rows: String,
    pub row_count: u32,
    pub more_records: bool,
    /// The paging cookie XML, ready to pass back to [`request`] for the next page.
    pub paging_cookie: Option<String>,
    /// With `returntotalrecordcount="true"`; `None` when the server did not count (-1).
    pub total_record_count: Option<i64>,
}

/// GET `{entity_set}?fetchXml=…`. For page > 1, or with a cookie, the root
/// `<fetch>` gets `page="N"` and `paging-cookie="…"` (replacing any there).
pub fn request(
    org_url: &str,
    entity_set: &str,
    fetch_xml: &str,
    page: u32,
    paging_cookie: Option<&str>,
) -> Result<Request, Error> {
    check_identifier("entity-set", entity_set)?;
    if page == 0 {
        return Err(Error::InvalidRequest("page must be at least 1".into()));
    }
    let start = root_fetch(fetch_xml).ok_or_else(|| {
        Error::InvalidRequest("fetch-xml must start with a <fetch> element".into())
    })?;
    let tag = parse_start_tag(fetch_xml, start + "<fetch".len()).ok_or_else(|| {
        Error::InvalidRequest("fetch-xml: the <fetch> start tag is malformed".into())
    })?;
    let xml = if page > 1 || paging_cookie.is_some() {
        let mut out = String::with_capacity(fetch_xml.len() + 64);
        out.push_str(&fetch_xml[..start]);
        out.push_str("<fetch");
        for (name, raw) in &tag.attributes {
            let replaced = *name == "page" || (*name == "paging-cookie" && paging_cookie.is_some());
            if !replaced {
                out.push(' ');
                out.push_str(name);
                out.push('=');
                out.push_str(raw);
            }
        }
        out.push_str(&format!(" page=\"{page}\""));
        if let Some(cookie) = paging_cookie {
            out.push_str(&format!(" paging-cookie=\"{}\"", xml_escape(cookie)));
        }
        out.push_str(if tag.self_closing { "/>" } else { ">" });
        out.push_str(&fetch_xml[tag.end..]);
        out
    } else {
        fetch_xml.to_string()
    };
    let url = api_url(
        org_url,
        &format!("{entity_set}?fetchXml={}", query_encode(&xml)),
    );
    Ok(Request::new(Method::Get, url))
}

/// The annotations FetchXML paging reads: Dataverse returns the paging
/// cookie and `morerecords` only when they are asked for.
const PAGING_ANNOTATIONS: &str = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords,Microsoft.Dynamics.CRM.totalrecordcount";

/// [`request`] as one page of a paged read sends it, and the options to send
/// it with. The request asks for the paging annotations; a caller who asked
/// for annotations of their own has the filter widened to `*` instead (their
/// options then carry the one preference), since a narrower one would drop
/// the paging cookie and paging would stop.
pub fn page_request(
    org_url: &str,
    entity_set: &str,
    fetch_xml: &str,
    page: u32,
    paging_cookie: Option<&str>,
    options: &RequestOptions,
) -> Result<(Request, RequestOptions), Error> {
    let request = request(org_url, entity_set, fetch_xml, page, paging_cookie)?;
    let mut options = options.clone();
    let request = match &options.include_annotations {
        None => prefer::add(request, &[prefer::include_annotations(PAGING_ANNOTATIONS)]),
        Some(_) => {
            options.include_annotations = Some("*".into());
            request
        }
    };
    Ok((request, options))
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(rename = "@Microsoft.Dynamics.CRM.morerecords")]
    more_records: Option<bool>,
    #[serde(rename = "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie")]
    paging_cookie: Option<String>,
    #[serde(rename = "@Microsoft.Dynamics.CRM.totalrecordcount")]
    total_record_count: Option<i64>,
}

/// Reads a FetchXML response. The paging cookie arrives as
/// `<cookie pagenumber="2" pagingcookie="%253ccookie…" …/>`: its
/// `pagingcookie` attribute, percent-decoded twice, is the cookie XML.
pub fn parse_page(response: &Response) -> Result<FetchPage, Error> {
    let body: Body = serde_json::from_slice(&response.body).map_err(|_| {
        Error::InvalidResponse("FetchXML response: not a JSON object with a value array".into())
    })?;
    let rows: Vec<&RawValue> = serde_json::from_slice(body.value.get().as_bytes())
        .map_err(|_| Error::InvalidResponse("FetchXML response: value is not an array".into()))?;
    let paging_cookie = match body.paging_cookie.as_deref() {
        Some(annotation) => cookie_xml(annotation)?,
        None => None,
    };
    Ok(FetchPage {
        rows: body.value.get().to_string(),
        row_count: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        more_records: body.more_records.unwrap_or(false),
        paging_cookie,
        total_record_count: body.total_record_count.filter(|n| *n >= 0),
    })
}

/// The cookie XML inside the annotation, or `None` when the server gave no
/// cookie (some queries cannot use one: then simple paging still works).
fn cookie_xml(annotation: &str) -> Result<Option<String>, Error> {
    let Some(start) = annotation.find("<cookie") else {
        return Ok(None);
    };
    let Some(tag) = parse_start_tag(annotation, start + "<cookie".len()) else {
        return Err(Error::InvalidResponse(
            "FetchXML response: the paging cookie annotation is malformed".into(),
        ));
    };
    let Some((_, raw)) = tag.attributes.iter().find(|(n, _)| *n == "pagingcookie") else {
        return Ok(None);
    };
    let value = xml_unescape(&raw[1..raw.len() - 1]);
    if value.is_empty() {
        return Ok(None);
    }
    let decoded = percent_decode(&percent_decode(value.as_bytes()));
    String::from_utf8(decoded).map(Some).map_err(|_| {
        Error::InvalidResponse("FetchXML response: the paging cookie is not UTF-8 text".into())
    })
}

/// The page a paging cookie describes: Dataverse's cookie XML starts
/// `<cookie page="N">` with N the page it was returned with. `None` when the
/// cookie has no readable page number (it is then opaque to the client).
pub fn cookie_page(cookie_xml: &str) -> Option<u32> {
    let start = cookie_xml.find("<cookie")?;
    let tag = parse_start_tag(cookie_xml, start + "<cookie".len())?;
    let (_, raw) = tag.attributes.iter().find(|(n, _)| *n == "page")?;
    raw[1..raw.len() - 1].trim().parse().ok()
}

/// A start tag's attributes (name, quoted raw value) and where it ends.
struct StartTag<'a> {
    attributes: Vec<(&'a str, &'a str)>,
    self_closing: bool,
    /// Byte index just past the closing `>`.
    end: usize,
}

/// Parses attributes from `from` (just past the element name) to `>`.
/// Every index lands on an ASCII byte, so slicing is on char boundaries.
fn parse_start_tag(xml: &str, from: usize) -> Option<StartTag<'_>> {
    let b = xml.as_bytes();
    let mut i = from;
    // The name must end here: `<fetchx` is another element.
    if !matches!(b.get(i), Some(c) if c.is_ascii_whitespace() || *c == b'>' || *c == b'/') {
        return None;
    }
    let mut attributes = Vec::new();
    loop {
        while b.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        match b.get(i)? {
            b'>' => {
                return Some(StartTag {
                    attributes,
                    self_closing: false,
                    end: i + 1,
                });
            }
            b'/' if b.get(i + 1) == Some(&b'>') => {
                return Some(StartTag {
                    attributes,
                    self_closing: true,
                    end: i + 2,
                });
            }
            _ => {}
        }
        let name_start = i;
        while b
            .get(i)
            .is_some_and(|c| !c.is_ascii_whitespace() && !b"=>/<\"'".contains(c))
        {
            i += 1;
        }
        if i == name_start {
            return None;
        }
        let name = xml.get(name_start..i)?;
        while b.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        if *b.get(i)? != b'=' {
            return None;
        }
        i += 1;
        while b.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        let quote = *b.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let close = i + 1 + b.get(i + 1..)?.iter().position(|c| *c == quote)?;
        attributes.push((name, xml.get(i..=close)?));
        i = close + 1;
    }
}

/// Where the root `<fetch` starts, after whitespace, a BOM, an XML
/// declaration or other processing instructions, and comments.
fn root_fetch(xml: &str) -> Option<usize> {
    let mut i = if xml.starts_with('\u{feff}') { 3 } else { 0 };
    loop {
        let rest = xml.get(i..)?;
        let trimmed = rest.trim_start();
        i += rest.len() - trimmed.len();
        if trimmed.starts_with("<?") {
            i += trimmed.find("?>")? + 2;
        } else if trimmed.starts_with("<!--") {
            i += trimmed.find("-->")? + 3;
        } else if trimmed.starts_with("<fetch") {
            return Some(i);
        } else {
            return None;
        }
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// The five predefined entities; anything else is left as it is.
fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let entity = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&apos;", '\''),
        ]
        .into_iter()
        .find(|(e, _)| tail.starts_with(e));
        match entity {
            Some((e, c)) => {
                out.push(c);
                rest = &tail[e.len()..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// RFC 3986 percent-decoding; a `%` not followed by two hex digits stays.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let decoded = match (input[i], input.get(i + 1), input.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "https://contoso.crm.dynamics.com";
    const BASE: &str = "https://contoso.crm.dynamics.com/api/data/v9.2/";

    #[test]
    fn a_page_asks_for_the_paging_annotations_or_widens_the_callers_to_all() {
        let xml = r#"<fetch><entity name="account"/></fetch>"#;
        let plain = RequestOptions::default();
        let (request, options) = page_request(ORG, "accounts", xml, 1, None, &plain).unwrap();
        assert_eq!(
            request.header_value("prefer"),
            Some(
                "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,\
                 Microsoft.Dynamics.CRM.morerecords,Microsoft.Dynamics.CRM.totalrecordcount\""
            )
        );
        assert_eq!(options, plain);
        assert_eq!(request.url, request_url(xml));

        let narrow = RequestOptions {
            include_annotations: Some("OData.Community.Display.V1.FormattedValue".into()),
            return_representation: true,
            ..RequestOptions::default()
        };
        let (request, options) = page_request(ORG, "accounts", xml, 1, None, &narrow).unwrap();
        assert_eq!(request.header_value("prefer"), None);
        assert_eq!(
            options,
            RequestOptions {
                include_annotations: Some("*".into()),
                ..narrow.clone()
            }
        );
        let bad = page_request(ORG, "accounts", "<entity/>", 1, None, &narrow);
        assert!(matches!(bad, Err(Error::InvalidRequest(_))));
    }

    fn request_url(xml: &str) -> String {
        request(ORG, "accounts", xml, 1, None).unwrap().url
    }

    #[test]
    fn the_page_a_cookie_describes_is_read_from_its_root_element() {
        let cases = [
            (
                r#"<cookie page="1"><accountid last="{A}" first="{B}" /></cookie>"#,
                Some(1),
            ),
            (
                r#"<cookie page='12'><accountid last="{A}" /></cookie>"#,
                Some(12),
            ),
            (r#"<cookie  page = " 3 " />"#, Some(3)),
            (r#"<cookie><accountid last="{A}" /></cookie>"#, None),
            (r#"<cookie page="x" />"#, None),
            (r#"<cookie page="-1" />"#, None),
            (r#"<cookies page="1" />"#, None),
            ("", None),
            ("<cookie page=\"1", None),
        ];
        for (cookie, expected) in cases {
            assert_eq!(cookie_page(cookie), expected, "{cookie}");
        }
    }

    /// The fetchXml query value, decoded again, to compare readable XML.
    fn sent_xml(request: &Request) -> String {
        let value = request.url.split_once("?fetchXml=").unwrap().1;
        String::from_utf8(percent_decode(value.as_bytes())).unwrap()
    }

    #[test]
    fn the_first_page_sends_the_fetch_unchanged_and_encoded() {
        let xml =
            "<fetch count='3'><entity name='account'><attribute name='name'/></entity></fetch>";
        let req = request(ORG, "accounts", xml, 1, None).unwrap();
        assert_eq!(req.method, Method::Get);
        assert_eq!(
            req.url,
            format!(
                "{BASE}accounts?fetchXml=%3Cfetch%20count%3D'3'%3E%3Centity%20name%3D'account'%3E%3Cattribute%20name%3D'name'/%3E%3C/entity%3E%3C/fetch%3E"
            )
        );
        assert!(req.headers.is_empty() && req.body.is_empty());
        assert_eq!(sent_xml(&req), xml);
    }

    #[test]
    fn later_pages_set_page_and_paging_cookie_on_the_root_fetch() {
        let cookie = r#"<cookie page="1"><accountid last="{A}" first="{B}" /></cookie>"#;
        let escaped = "&lt;cookie page=&quot;1&quot;&gt;&lt;accountid last=&quot;{A}&quot; first=&quot;{B}&quot; /&gt;&lt;/cookie&gt;";
        let cases = [
            (
                "<fetch count='3'><entity name='account'/></fetch>",
                2,
                None,
                "<fetch count='3' page=\"2\"><entity name='account'/></fetch>".to_string(),
            ),
            (
                "<?xml version=\"1.0\"?>\n<!-- all --> <fetch page='1' count=\"3\" paging-cookie='old'\n><entity name='account'/></fetch>",
                2,
                Some(cookie),
                format!(
                    "<?xml version=\"1.0\"?>\n<!-- all --> <fetch count=\"3\" page=\"2\" paging-cookie=\"{escaped}\"><entity name='account'/></fetch>"
                ),
            ),
            (
                "<fetch paging-cookie='kept'><entity name='a'/></fetch>",
                3,
                None,
                "<fetch paging-cookie='kept' page=\"3\"><entity name='a'/></fetch>".to_string(),
            ),
            (
                "<fetch><entity name='a'/></fetch>",
                1,
                Some("a&b"),
                "<fetch page=\"1\" paging-cookie=\"a&amp;b\"><entity name='a'/></fetch>"
                    .to_string(),
            ),
            ("<fetch/>", 2, None, "<fetch page=\"2\"/>".to_string()),
            (
                "\u{feff}<fetch\tversion='1.0' mapping=\"logical\" >é</fetch>",
                9,
                None,
                "\u{feff}<fetch version='1.0' mapping=\"logical\" page=\"9\">é</fetch>".to_string(),
            ),
        ];
        for (xml, page, cookie, expected) in cases {
            let req = request(ORG, "accounts", xml, page, cookie).unwrap();
            assert_eq!(sent_xml(&req), expected, "{xml}");
        }
    }

    #[test]
    fn bad_arguments_are_invalid_requests() {
        let cases = [
            ("accounts", "<entity name='a'/>", 1, "fetch-xml"),
            ("accounts", "", 1, "fetch-xml"),
            ("accounts", "<fetchxml/>", 1, "fetch-xml"),
            ("accounts", "<!-- unterminated <fetch/>", 1, "fetch-xml"),
            (
                "accounts",
                "<fetch count=3><entity/></fetch>",
                2,
                "fetch-xml",
            ),
            (
                "accounts",
                "<fetch count='3><entity/></fetch>",
                2,
                "fetch-xml",
            ),
            ("accounts", "<fetch", 1, "fetch-xml"),
            ("accounts", "<fetch/>", 0, "page"),
            ("accounts?x=1", "<fetch/>", 1, "entity-set"),
        ];
        for (set, xml, page, name) in cases {
            let result = request(ORG, set, xml, page, None);
            assert!(
                matches!(&result, Err(Error::InvalidRequest(m)) if m.starts_with(name)),
                "{xml}: {result:?}"
            );
        }
    }

    fn response(body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn pages_carry_rows_more_records_cookie_and_count() {
        let annotation = r#"<cookie pagenumber=\"2\" pagingcookie=\"%253ccookie%2520page%253d%25221%2522%253e%253caccountid%2520last%253d%2522%257bA%257d%2522%2520first%253d%2522%257bB%257d%2522%2520%252f%253e%253c%252fcookie%253e\" istracking=\"False\" />"#;
        let body = format!(
            r#"{{"@odata.context":"c","@Microsoft.Dynamics.CRM.totalrecordcount":12,"@Microsoft.Dynamics.CRM.morerecords":true,"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":"{annotation}","value":[{{"name":"A"}},{{"name":"B"}}]}}"#
        );
        assert_eq!(
            parse_page(&response(&body)).unwrap(),
            FetchPage {
                rows: r#"[{"name":"A"},{"name":"B"}]"#.into(),
                row_count: 2,
                more_records: true,
                paging_cookie: Some(
                    r#"<cookie page="1"><accountid last="{A}" first="{B}" /></cookie>"#.into()
                ),
                total_record_count: Some(12),
            }
        );
    }

    #[test]
    fn absent_or_cookieless_annotations_mean_no_cookie() {
        let cases = [
            (r#"{"value":[]}"#, false, None, None),
            (
                r#"{"value":[],"@Microsoft.Dynamics.CRM.morerecords":true,"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":"<cookie pagenumber=\"2\" istracking=\"False\" />","@Microsoft.Dynamics.CRM.totalrecordcount":-1}"#,
                true,
                None,
                None,
            ),
            (
                r#"{"value":[],"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":"<cookie pagingcookie='' />"}"#,
                false,
                None,
                None,
            ),
            (
                r#"{"value":[],"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":"<cookie pagingcookie='%2525zz&amp;%25E2%2582%25AC' />"}"#,
                false,
                Some("%zz&€"),
                None,
            ),
        ];
        for (body, more, cookie, total) in cases {
            let page = parse_page(&response(body)).unwrap();
            assert_eq!(
                (
                    page.more_records,
                    page.paging_cookie.as_deref(),
                    page.total_record_count
                ),
                (more, cookie, total),
                "{body}"
            );
        }
    }

    #[test]
    fn malformed_pages_are_invalid_responses() {
        for body in [
            "",
            "{",
            "[]",
            r#"{"rows":[]}"#,
            r#"{"value":{}}"#,
            r#"{"value":[],"@Microsoft.Dynamics.CRM.morerecords":"yes"}"#,
            r#"{"value":[],"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":"<cookie pagingcookie=\"x"}"#,
            r#"{"value":[],"@Microsoft.Dynamics.CRM.fetchxmlpagingcookie":"<cookie pagingcookie=\"%25ff\" />"}"#,
        ] {
            assert!(
                matches!(parse_page(&response(body)), Err(Error::InvalidResponse(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        let pieces = [
            "<",
            ">",
            "/",
            "fetch",
            "cookie",
            " ",
            "=",
            "'",
            "\"",
            "page",
            "pagingcookie",
            "%",
            "%25",
            "2",
            "f",
            "&amp;",
            "&",
            "<?",
            "?>",
            "<!--",
            "-->",
            "é",
            "😀",
            "\u{feff}",
        ];
        for text in super::super::entity_key::garbage_strings(&pieces, 20_000) {
            let _ = request(ORG, "accounts", &text, 2, Some(&text));
            let _ = cookie_xml(&text);
            let json = serde_json::json!({
                "value": [],
                "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie": text,
            });
            let _ = parse_page(&response(&json.to_string()));
            let _ = parse_page(&response(&text));
        }
    }
}
