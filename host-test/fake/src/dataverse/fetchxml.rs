//! FetchXML over the Web API: `GET accounts?fetchXml=<urlencoded>`.
//!
//! A tiny tolerant XML reader plus the subset of FetchXML clients page with:
//! `<fetch count page paging-cookie returntotalrecordcount top>`, one
//! `<entity>` with `<attribute>`, `<all-attributes>`, `<order>` and
//! `<filter type="and|or">` of `<condition operator="eq|ne|neq|like|not-like|null|not-null">`.
//! Anything else is rejected with a 400, never silently ignored.
//!
//! Paging follows the documented Web API contract: when asked for the
//! annotations, a page that is not the last carries
//! `@Microsoft.Dynamics.CRM.morerecords: true` and
//! `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`, a `<cookie pagenumber="P+1"
//! pagingcookie="…" istracking="False" />` element whose `pagingcookie` is the
//! inner cookie percent-encoded twice. The client decodes it twice, XML-escapes
//! it into the next request's `paging-cookie` attribute and sends `page=P+1`.

use super::annotations::{
    MORE_RECORDS, PAGING_COOKIE, TOTAL_RECORD_COUNT, TOTAL_RECORD_COUNT_LIMIT_EXCEEDED,
};
use super::context::{Ctx, MAX_PAGE_SIZE};
use super::odata;
use super::render::{context_url, render};
use super::reply::{DvError, Reply, prefer, preference_applied};
use super::table::{ColumnType, Record, Table};
use crate::State;
use crate::percent;
use bytes::Bytes;
use http::{Request, StatusCode};
use serde_json::{Map, Value, json};

/// Dataverse's code for FetchXML it cannot use.
const FETCH_ERROR: &str = "0x80041103";

fn fetch_error(message: impl Into<String>) -> DvError {
    DvError::new(StatusCode::BAD_REQUEST, FETCH_ERROR, message)
}

/// Whether a collection GET is a FetchXML query.
pub(crate) fn requested(req: &Request<Bytes>) -> bool {
    fetch_parameter(req).is_some()
}

fn fetch_parameter(req: &Request<Bytes>) -> Option<String> {
    percent::parse_pairs(req.uri().query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "fetchXml")
        .map(|(_, v)| v)
}

// ---- XML ---------------------------------------------------------------------

/// An element with its attributes (entity-decoded) and child elements; text
/// content is ignored (the supported FetchXML has none).
#[derive(Debug, PartialEq)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct XmlReader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> XmlReader<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("Invalid XML: {what} at offset {}.", self.pos))
    }

    /// Skips text, whitespace, comments, declarations and processing instructions.
    fn skip_misc(&mut self) -> Result<(), String> {
        loop {
            let rest = self.rest();
            if let Some(after) = rest.strip_prefix("<!--") {
                let end = after
                    .find("-->")
                    .map_or_else(|| self.fail("unterminated comment"), Ok)?;
                self.pos += 4 + end + 3;
            } else if rest.starts_with("<?") || rest.starts_with("<!") {
                let end = rest
                    .find('>')
                    .map_or_else(|| self.fail("unterminated declaration"), Ok)?;
                self.pos += end + 1;
            } else if rest.starts_with('<') || rest.is_empty() {
                return Ok(());
            } else {
                self.pos += rest.find('<').unwrap_or(rest.len());
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')))
            .unwrap_or(rest.len());
        if len == 0 {
            return self.fail("expected a name");
        }
        self.pos += len;
        Ok(rest[..len].to_string())
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn element(&mut self) -> Result<Element, String> {
        self.skip_misc()?;
        if !self.rest().starts_with('<') {
            return self.fail("expected an element");
        }
        self.pos += 1;
        let name = self.name()?;
        let mut attributes = Vec::new();
        loop {
            self.skip_space();
            let rest = self.rest();
            if rest.starts_with("/>") {
                self.pos += 2;
                return Ok(Element {
                    name,
                    attributes,
                    children: Vec::new(),
                });
            }
            if rest.starts_with('>') {
                self.pos += 1;
                break;
            }
            let attribute = self.name()?;
            self.skip_space();
            if !self.rest().starts_with('=') {
                return self.fail("expected '='");
            }
            self.pos += 1;
            self.skip_space();
            let Some(quote) = self
                .rest()
                .chars()
                .next()
                .filter(|c| *c == '"' || *c == '\'')
            else {
                return self.fail("expected a quoted attribute value");
            };
            self.pos += 1;
            let len = self
                .rest()
                .find(quote)
                .map_or_else(|| self.fail("unterminated attribute value"), Ok)?;
            let raw = &self.rest()[..len];
            attributes.push((attribute, unescape(raw)));
            self.pos += len + 1;
        }
        let mut children = Vec::new();
        loop {
            self.skip_misc()?;
            if let Some(after) = self.rest().strip_prefix("</") {
                let close = format!("{name}>");
                let trimmed = after.trim_start();
                if !trimmed.starts_with(&close) && !trimmed.starts_with(&format!("{name} ")) {
                    return self.fail(&format!("expected </{name}>"));
                }
                let end = after.find('>').expect("checked above");
                self.pos += 2 + end + 1;
                return Ok(Element {
                    name,
                    attributes,
                    children,
                });
            }
            if self.rest().is_empty() {
                return self.fail(&format!("unterminated <{name}>"));
            }
            children.push(self.element()?);
        }
    }
}

fn parse_xml(text: &str) -> Result<Element, String> {
    let mut reader = XmlReader { text, pos: 0 };
    let root = reader.element()?;
    reader.skip_misc()?;
    if !reader.rest().is_empty() {
        return reader.fail("content after the root element");
    }
    Ok(root)
}

/// Decodes the five predefined entities and character references.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| e.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for a double-quoted XML attribute.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

// ---- the query ---------------------------------------------------------------

#[derive(Debug)]
enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Eq(String, Value, bool),
    Like(String, String, bool),
    Null(String, bool),
}

impl Condition {
    fn matches(&self, record: &Record) -> bool {
        match self {
            Condition::All(items) => items.iter().all(|c| c.matches(record)),
            Condition::Any(items) => items.iter().any(|c| c.matches(record)),
            Condition::Eq(column, value, negate) => {
                let actual = record.get(column);
                !actual.is_null() && odata::compare_values(actual, value).is_eq() != *negate
            }
            Condition::Like(column, pattern, negate) => record
                .get(column)
                .as_str()
                .is_some_and(|v| like(&v.to_lowercase(), &pattern.to_lowercase()) != *negate),
            Condition::Null(column, negate) => record.get(column).is_null() != *negate,
        }
    }
}

/// SQL `LIKE`: `%` is any run of characters, `_` any one character.
fn like(text: &str, pattern: &str) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = (text.chars().collect(), pattern.chars().collect());
    // Classic two-pointer wildcard match with backtracking to the last `%`.
    let (mut ti, mut pi, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

struct Fetch {
    count: Option<usize>,
    page: usize,
    paging_cookie: Option<String>,
    total_count: bool,
    top: Option<usize>,
    /// `None`: all attributes.
    columns: Option<Vec<String>>,
    orders: Vec<(String, bool)>,
    filter: Option<Condition>,
}

fn no_attribute(table: &Table, name: &str) -> DvError {
    fetch_error(format!(
        "'{}' entity doesn't contain attribute with Name = '{name}' and NameMapping = 'Logical'.",
        table.logical_name
    ))
}

/// A FetchXML attribute name as a column: lookups are named by their
/// logical name (`primarycontactid`) but returned as `_primarycontactid_value`.
fn column(table: &Table, name: &str) -> Result<String, DvError> {
    if table.column_type(name).is_some() && !name.starts_with('_') {
        return Ok(name.to_string());
    }
    table
        .lookup_by_navigation(name)
        .map(|l| l.column.to_string())
        .ok_or_else(|| no_attribute(table, name))
}

fn number_attribute(element: &Element, name: &str) -> Result<Option<usize>, DvError> {
    element
        .attribute(name)
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| fetch_error(format!("Invalid '{name}' value '{v}' on <fetch>.")))
        })
        .transpose()
}

fn parse_fetch(xml: &str, table: &Table) -> Result<Fetch, DvError> {
    let root = parse_xml(xml).map_err(fetch_error)?;
    if root.name != "fetch" {
        return Err(fetch_error(
            "The root element of a FetchXML query must be <fetch>.",
        ));
    }
    let count = number_attribute(&root, "count")?;
    if count.is_some_and(|c| c > MAX_PAGE_SIZE) {
        return Err(fetch_error(format!(
            "The 'count' attribute cannot exceed {MAX_PAGE_SIZE}."
        )));
    }
    let top = number_attribute(&root, "top")?;
    if top.is_some() && (count.is_some() || root.attribute("page").is_some()) {
        return Err(fetch_error(
            "The 'top' attribute can't be specified with paging attributes 'page' and 'count'.",
        ));
    }
    let [entity] = root.children.as_slice() else {
        return Err(fetch_error("A <fetch> must contain exactly one <entity>."));
    };
    if entity.name != "entity" {
        return Err(fetch_error(format!(
            "Unexpected <{}> in <fetch>.",
            entity.name
        )));
    }
    if entity.attribute("name") != Some(table.logical_name) {
        return Err(fetch_error(format!(
            "The entity name '{}' does not match the entity set, whose entity is '{}'.",
            entity.attribute("name").unwrap_or(""),
            table.logical_name
        )));
    }
    let mut fetch = Fetch {
        count,
        page: number_attribute(&root, "page")?.unwrap_or(1),
        paging_cookie: root.attribute("paging-cookie").map(str::to_string),
        total_count: root.attribute("returntotalrecordcount") == Some("true"),
        top,
        columns: Some(Vec::new()),
        orders: Vec::new(),
        filter: None,
    };
    let mut all_attributes = false;
    let mut filters = Vec::new();
    for child in &entity.children {
        let name_of = |e: &Element, attr: &str| {
            e.attribute(attr)
                .map(str::to_string)
                .ok_or_else(|| fetch_error(format!("<{}> needs a '{attr}' attribute.", e.name)))
        };
        match child.name.as_str() {
            "attribute" => {
                let c = column(table, &name_of(child, "name")?)?;
                fetch.columns.get_or_insert_with(Vec::new).push(c);
            }
            "all-attributes" => all_attributes = true,
            "order" => {
                let c = column(table, &name_of(child, "attribute")?)?;
                fetch
                    .orders
                    .push((c, child.attribute("descending") == Some("true")));
            }
            "filter" => filters.push(parse_filter(child, table)?),
            other => {
                return Err(fetch_error(format!(
                    "The fake Dataverse does not support <{other}> in FetchXML."
                )));
            }
        }
    }
    if all_attributes || fetch.columns.as_ref().is_some_and(Vec::is_empty) {
        fetch.columns = None;
    }
    fetch.filter = (!filters.is_empty()).then_some(Condition::All(filters));
    Ok(fetch)
}

fn parse_filter(element: &Element, table: &Table) -> Result<Condition, DvError> {
    let mut items = Vec::new();
    for child in &element.children {
        items.push(match child.name.as_str() {
            "filter" => parse_filter(child, table)?,
            "condition" => parse_condition(child, table)?,
            other => {
                return Err(fetch_error(format!("Unexpected <{other}> in <filter>.")));
            }
        });
    }
    match element.attribute("type").unwrap_or("and") {
        "and" => Ok(Condition::All(items)),
        "or" => Ok(Condition::Any(items)),
        other => Err(fetch_error(format!("Invalid filter type '{other}'."))),
    }
}

fn parse_condition(element: &Element, table: &Table) -> Result<Condition, DvError> {
    let attribute = element
        .attribute("attribute")
        .ok_or_else(|| fetch_error("<condition> needs an 'attribute' attribute."))?;
    let column = column(table, attribute)?;
    let operator = element.attribute("operator").unwrap_or("");
    let value = || {
        element
            .attribute("value")
            .map(str::to_string)
            .ok_or_else(|| fetch_error(format!("The '{operator}' condition needs a 'value'.")))
    };
    Ok(match operator {
        "eq" | "ne" | "neq" => {
            let raw = value()?;
            let literal = match table.column_type(&column) {
                Some(ColumnType::Money) => raw
                    .trim()
                    .parse::<f64>()
                    .map(|n| json!(n))
                    .map_err(|_| fetch_error(format!("'{raw}' is not a valid number.")))?,
                Some(ColumnType::Guid) => {
                    Value::String(raw.trim().trim_matches(['{', '}']).to_ascii_lowercase())
                }
                _ => Value::String(raw),
            };
            Condition::Eq(column, literal, operator != "eq")
        }
        "like" | "not-like" => Condition::Like(column, value()?, operator == "not-like"),
        "null" | "not-null" => Condition::Null(column, operator == "not-null"),
        other => {
            return Err(fetch_error(format!(
                "The fake Dataverse does not support the condition operator '{other}'."
            )));
        }
    })
}

// ---- paging cookies ----------------------------------------------------------

/// The `paging-cookie` a client sent back: the page it describes and the
/// last row of that page.
fn read_cookie(cookie: &str, table: &Table) -> Result<(usize, String), DvError> {
    let invalid = || fetch_error(format!("The paging cookie '{cookie}' is not valid."));
    let root = parse_xml(cookie).map_err(|_| invalid())?;
    let page = root
        .attribute("page")
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let last = root
        .children
        .iter()
        .find(|c| c.name == table.primary_key)
        .and_then(|c| c.attribute("last"))
        .ok_or_else(invalid)?;
    Ok((page, last.trim_matches(['{', '}']).to_ascii_lowercase()))
}

/// Dataverse's cookie for the page just served: the first and last values
/// of each order column, then of the primary key (braced, upper case).
fn write_cookie(page: usize, rows: &[&Record], table: &Table, orders: &[(String, bool)]) -> String {
    let (first, last) = (rows[0], rows[rows.len() - 1]);
    let mut inner = format!("<cookie page=\"{page}\">");
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    for (column, _) in orders.iter().filter(|(c, _)| c != table.primary_key) {
        inner.push_str(&format!(
            "<{column} last=\"{}\" first=\"{}\" />",
            escape(&text(last.get(column))),
            escape(&text(first.get(column)))
        ));
    }
    inner.push_str(&format!(
        "<{pk} last=\"{{{}}}\" first=\"{{{}}}\" /></cookie>",
        last.id(table.primary_key).to_uppercase(),
        first.id(table.primary_key).to_uppercase(),
        pk = table.primary_key
    ));
    let once = percent::encode(&inner, b"-._", false);
    let twice = percent::encode(&once, b"-._", false);
    format!(
        "<cookie pagenumber=\"{}\" pagingcookie=\"{twice}\" istracking=\"False\" />",
        page + 1
    )
}

// ---- execution ---------------------------------------------------------------

pub(crate) fn retrieve(
    ctx: &Ctx,
    state: &State,
    req: &Request<Bytes>,
    set: &str,
) -> Result<Reply, DvError> {
    let table = &state.tables[set];
    let xml = fetch_parameter(req).unwrap_or_default();
    let fetch = parse_fetch(&xml, table)?;
    let prefer = prefer(req);
    let count_option = percent::parse_pairs(req.uri().query().unwrap_or(""))
        .iter()
        .any(|(k, v)| k == "$count" && v == "true");

    let mut rows: Vec<&Record> = table
        .rows
        .iter()
        .filter(|r| fetch.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    odata::sort(&mut rows, &fetch.orders);
    let total = rows.len();
    if let Some(top) = fetch.top {
        rows.truncate(top);
    }

    let size = fetch.count.unwrap_or(MAX_PAGE_SIZE);
    // A cookie is honoured only for the page right after the one it
    // describes; otherwise Dataverse falls back to simple paging.
    let cookie = fetch
        .paging_cookie
        .as_deref()
        .map(|c| read_cookie(c, table))
        .transpose()?
        .filter(|(page, _)| page + 1 == fetch.page);
    let start = match cookie {
        Some((_, last)) => rows
            .iter()
            .position(|r| r.id(table.primary_key) == last)
            .map_or(rows.len(), |p| p + 1),
        None => (fetch.page - 1).saturating_mul(size).min(rows.len()),
    };
    let end = start.saturating_add(size).min(rows.len());
    let page = &rows[start..end];
    let more = end < rows.len();

    let select = fetch.columns.as_deref();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context_url(&ctx.base, set, table, select, &[])),
    );
    if fetch.total_count || count_option {
        body.insert("@odata.count".into(), json!(total.min(MAX_PAGE_SIZE)));
        if prefer.wants(TOTAL_RECORD_COUNT) {
            body.insert(
                format!("@{TOTAL_RECORD_COUNT}"),
                json!(total.min(MAX_PAGE_SIZE)),
            );
        }
        if prefer.wants(TOTAL_RECORD_COUNT_LIMIT_EXCEEDED) {
            body.insert(
                format!("@{TOTAL_RECORD_COUNT_LIMIT_EXCEEDED}"),
                json!(total > MAX_PAGE_SIZE),
            );
        }
    }
    if more && !page.is_empty() {
        if prefer.wants(PAGING_COOKIE) {
            body.insert(
                format!("@{PAGING_COOKIE}"),
                Value::String(write_cookie(fetch.page, page, table, &fetch.orders)),
            );
        }
        if prefer.wants(MORE_RECORDS) {
            body.insert(format!("@{MORE_RECORDS}"), Value::Bool(true));
        }
    }
    let values = page
        .iter()
        .map(|r| render(&state.tables, table, r, select, &[], &prefer).map(Value::Object))
        .collect::<Result<Vec<_>, _>>()?;
    body.insert("value".into(), Value::Array(values));
    let applied: Vec<String> = prefer.applied_annotations().into_iter().collect();
    Ok(preference_applied(
        Reply::json(Value::Object(body)),
        &applied,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::table::accounts;
    use crate::test_support::*;
    use std::collections::HashSet;

    fn fetch_path(xml: &str) -> String {
        format!("accounts?fetchXml={}", percent::encode(xml, b"", true))
    }

    const ALL_ANNOTATIONS: (&str, &str) = ("Prefer", "odata.include-annotations=\"*\"");

    #[test]
    fn paging_cookie_followed_like_a_client_returns_every_row_once_over_three_pages() {
        let (fake, token) = demo();
        let (mut page, mut cookie, mut seen) = (1, None::<String>, Vec::new());
        loop {
            // What the client does: the decoded cookie goes into an XML
            // attribute (escaped), and the page number goes up by one.
            let cookie_attribute = cookie
                .as_deref()
                .map(|c| format!(" paging-cookie='{}'", escape(c)))
                .unwrap_or_default();
            let xml = format!(
                "<fetch count='10' page='{page}' returntotalrecordcount='true'{cookie_attribute}>\r\n<entity name='account'><attribute name='name'/><attribute name='primarycontactid'/><order attribute='name' descending='false'/></entity></fetch>"
            );
            let resp = send(
                &fake,
                &token,
                "GET",
                &fetch_path(&xml),
                &[ALL_ANNOTATIONS],
                "",
            );
            assert_eq!(resp.status(), 200, "{:?}", resp.body());
            assert_eq!(
                resp.headers()["preference-applied"],
                "odata.include-annotations=\"*\""
            );
            let body = json(&resp);
            assert_eq!(body["@odata.count"], 25);
            assert_eq!(body["@Microsoft.Dynamics.CRM.totalrecordcount"], 25);
            assert_eq!(
                body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"],
                false
            );
            assert_eq!(
                body["@odata.context"],
                format!("{BASE}/$metadata#accounts(name,_primarycontactid_value,accountid)")
            );
            for row in body["value"].as_array().unwrap() {
                seen.push(row["name"].as_str().unwrap().to_string());
                assert!(row.get("revenue").is_none());
            }
            if body.get("@Microsoft.Dynamics.CRM.morerecords").is_none() {
                assert!(
                    body.get("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie")
                        .is_none()
                );
                break;
            }
            assert_eq!(body["@Microsoft.Dynamics.CRM.morerecords"], true);
            let outer = body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
                .as_str()
                .unwrap();
            let prefix = format!("<cookie pagenumber=\"{}\" pagingcookie=\"", page + 1);
            assert!(outer.starts_with(&prefix), "{outer}");
            assert!(outer.ends_with("\" istracking=\"False\" />"), "{outer}");
            let encoded = &outer[prefix.len()..outer.len() - "\" istracking=\"False\" />".len()];
            assert!(
                encoded.starts_with("%253ccookie%2520page%253d%2522"),
                "{encoded}"
            );
            let decoded = percent::decode(&percent::decode(encoded, true), true);
            assert!(
                decoded.starts_with(&format!("<cookie page=\"{page}\"><name last=\"")),
                "{decoded}"
            );
            assert!(decoded.contains("<accountid last=\"{"), "{decoded}");
            cookie = Some(decoded);
            page += 1;
        }
        assert_eq!(page, 3);
        let mut expected = fake.account_names();
        expected.sort_by_key(|n| n.to_lowercase());
        assert_eq!(seen, expected);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 25);
    }

    #[test]
    fn paging_annotations_appear_only_when_asked_for() {
        let (fake, token) = demo();
        let xml =
            "<fetch count='5'><entity name='account'><attribute name='name'/></entity></fetch>";
        let body = json(&send(&fake, &token, "GET", &fetch_path(xml), &[], ""));
        assert_eq!(body["value"].as_array().unwrap().len(), 5);
        assert!(body.get("@Microsoft.Dynamics.CRM.morerecords").is_none());
        let prefer = (
            "Prefer",
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords\"",
        );
        let body = json(&send(&fake, &token, "GET", &fetch_path(xml), &[prefer], ""));
        assert_eq!(body["@Microsoft.Dynamics.CRM.morerecords"], true);
        assert!(body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"].is_string());
        // Simple paging (no cookie) reaches the same rows.
        let page_two = "<fetch count='5' page='2'><entity name='account'><attribute name='name'/></entity></fetch>";
        let body = json(&send(&fake, &token, "GET", &fetch_path(page_two), &[], ""));
        assert_eq!(body["value"][0]["name"], "Account 0006");
    }

    #[test]
    fn conditions_filter_with_eq_like_and_or() {
        let (fake, token) = demo();
        let names = |filter: &str| {
            let xml = format!(
                "<fetch><entity name='account'><attribute name='name'/><filter>{filter}</filter></entity></fetch>"
            );
            let body = json(&send(&fake, &token, "GET", &fetch_path(&xml), &[], ""));
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("<condition attribute='name' operator='like' value='%works%'/>"),
            ["Adventure Works"]
        );
        assert_eq!(
            names("<condition attribute='accountnumber' operator='eq' value='A-0002'/>"),
            ["Fabrikam Inc"]
        );
        assert_eq!(
            names(
                "<filter type='or'><condition attribute='accountnumber' operator='eq' value='A-0001'/><condition attribute='accountnumber' operator='eq' value='A-0003'/></filter>"
            ),
            ["Contoso Ltd", "Adventure Works"]
        );
        assert_eq!(
            names("<condition attribute='primarycontactid' operator='not-null'/>").len(),
            3
        );
    }

    #[test]
    fn invalid_fetchxml_is_a_400_with_code_0x80041103() {
        let (fake, token) = demo();
        let xml = "<fetch><entity name='account'><attribute name='nosuch'/></entity></fetch>";
        let resp = send(&fake, &token, "GET", &fetch_path(xml), &[], "");
        let message = assert_error(&resp, 400, "0x80041103");
        assert!(message.contains("'nosuch'"), "{message}");
        let resp = send(&fake, &token, "GET", &fetch_path("<fetch"), &[], "");
        assert_error(&resp, 400, "0x80041103");
        let cookie = "<fetch page='2' paging-cookie='garbage'><entity name='account'/></fetch>";
        let resp = send(&fake, &token, "GET", &fetch_path(cookie), &[], "");
        assert_error(&resp, 400, "0x80041103");
    }

    #[test]
    fn xml_reader_decodes_attributes_and_skips_comments() {
        let root = parse_xml(
            "<?xml version='1.0'?><!-- q --><fetch a='x &amp; &lt;y&gt;' b=\"&#65;&#x42;\">\n <entity name='account'/></fetch>",
        )
        .unwrap();
        assert_eq!(root.attribute("a"), Some("x & <y>"));
        assert_eq!(root.attribute("b"), Some("AB"));
        assert_eq!(root.children[0].name, "entity");
        assert!(parse_xml("<fetch><entity></fetch>").is_err());
        assert!(parse_xml("<fetch a=x/>").is_err());
        assert_eq!(
            escape("<a b=\"1\">&'"),
            "&lt;a b=&quot;1&quot;&gt;&amp;&apos;"
        );
    }

    #[test]
    fn like_matches_sql_wildcards() {
        assert!(like("contoso ltd", "%ltd"));
        assert!(like("contoso ltd", "c_ntoso%"));
        assert!(like("abc", "%"));
        assert!(!like("abc", "a_"));
        assert!(like("a%c", "a%c"));
    }

    #[test]
    fn unsupported_fetchxml_is_rejected_with_a_reason() {
        let table = accounts(1);
        let err = |xml: &str| parse_fetch(xml, &table).err().unwrap().message;
        assert!(
            err("<fetch><entity name='account'><link-entity name='contact'/></entity></fetch>")
                .contains("link-entity")
        );
        assert!(
            err("<fetch><entity name='account'><attribute name='nope'/></entity></fetch>")
                .contains("doesn't contain attribute with Name = 'nope'")
        );
        assert!(err("<fetch><entity name='contact'/></fetch>").contains("does not match"));
        assert!(err("<fetch top='5' count='2'><entity name='account'/></fetch>").contains("top"));
        assert!(
            err("<fetch><entity name='account'><filter><condition attribute='name' operator='in' value='x'/></filter></entity></fetch>")
                .contains("'in'")
        );
        assert!(err("<fetch><entity name='account'>").contains("Invalid XML"));
    }
}
