//! OData query options as Dataverse accepts them: `$select`, `$filter` (a
//! small subset), `$orderby`, `$top`, `$count` and the `$skiptoken` paging
//! cookie. Anything outside the subset is rejected with a message instead of
//! being silently ignored, so a client bug never looks like a passing test.

use super::table::{ColumnType, Record, Table};
use crate::percent;
use serde_json::Value;
use std::cmp::Ordering;

/// Parsed query options for one entity-set request.
#[derive(Debug, Default)]
pub(crate) struct QueryOptions {
    pub(crate) select: Option<Vec<String>>,
    pub(crate) filter: Option<Filter>,
    /// `(column, descending)` in priority order.
    pub(crate) orderby: Vec<(String, bool)>,
    pub(crate) top: Option<usize>,
    pub(crate) count: bool,
    pub(crate) skiptoken: Option<SkipToken>,
    /// `$deltatoken` (from a delta link): the row version changes are read after.
    pub(crate) deltatoken: Option<u64>,
    /// `$expand` items, checked against the table's navigation properties
    /// (their `$select` is checked by the caller, which knows the other table).
    pub(crate) expand: Vec<Expand>,
    /// The raw `name=value` segments except `$skiptoken`, exactly as received:
    /// `@odata.nextLink` repeats them like Dataverse does.
    pub(crate) passthrough: Vec<String>,
}

/// One `$expand` item: `nav` or `nav($select=a,b)`.
#[derive(Debug, PartialEq)]
pub(crate) struct Expand {
    pub(crate) navigation: String,
    pub(crate) select: Option<Vec<String>>,
}

/// Where the previous page ended.
#[derive(Debug, PartialEq)]
pub(crate) struct SkipToken {
    pub(crate) page_number: u32,
    pub(crate) last_id: String,
}

/// Parses the raw query string of a collection request against `table`.
/// Errors are Dataverse-style messages (the caller wraps them in a 400).
pub(crate) fn parse(raw_query: Option<&str>, table: &Table) -> Result<QueryOptions, String> {
    let mut q = QueryOptions::default();
    let mut seen: Vec<String> = Vec::new();
    for segment in raw_query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (raw_name, raw_value) = segment.split_once('=').unwrap_or((segment, ""));
        let name = percent::decode(raw_name, true);
        let value = percent::decode(raw_value, true);
        if name.starts_with('$') {
            if seen.contains(&name) {
                return Err(format!(
                    "Query option '{name}' was specified more than once, but it must be specified at most once."
                ));
            }
            seen.push(name.clone());
        }
        if name != "$skiptoken" {
            q.passthrough.push(segment.to_string());
        }
        match name.as_str() {
            "$select" => q.select = Some(parse_select(&value, table)?),
            "$filter" => q.filter = Some(parse_filter(&value, table)?),
            "$orderby" => q.orderby = parse_orderby(&value, table)?,
            "$top" => {
                q.top = Some(value.trim().parse().map_err(|_| {
                    format!(
                        "Invalid value '{value}' for $top query option found. The $top query option requires a non-negative integer value."
                    )
                })?)
            }
            "$count" => {
                q.count = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("'{value}' is not a valid count option.")),
                }
            }
            "$skiptoken" => q.skiptoken = Some(parse_skiptoken(&value)?),
            "$deltatoken" => q.deltatoken = Some(parse_deltatoken(&value)?),
            "$expand" => q.expand = parse_expand(&value, table)?,
            "$apply" | "$search" | "$compute" | "fetchXml" | "savedQuery"
            | "userQuery" => {
                return Err(format!("The fake Dataverse does not support the query option '{name}'."));
            }
            other if other.starts_with('$') => {
                return Err(format!("The query parameter {other} is not supported"));
            }
            // Parameter aliases (`@p1=…`) and unknown plain parameters are ignored.
            _ => {}
        }
    }
    Ok(q)
}

fn unknown_property(column: &str, table: &Table) -> String {
    format!(
        "Could not find a property named '{column}' on type 'Microsoft.Dynamics.CRM.{}'.",
        table.logical_name
    )
}

fn column_type(column: &str, table: &Table) -> Result<ColumnType, String> {
    table
        .column_type(column)
        .ok_or_else(|| unknown_property(column, table))
}

fn parse_select(value: &str, table: &Table) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(|c| {
            let c = c.trim();
            column_type(c, table).map(|_| c.to_string())
        })
        .collect()
}

/// `nav($select=a,b),other`: commas inside parentheses belong to the item.
fn parse_expand(value: &str, table: &Table) -> Result<Vec<Expand>, String> {
    let mut items = Vec::new();
    for item in split_top_level(value, ',') {
        let item = item.trim();
        let (navigation, options) = match item.split_once('(') {
            Some((nav, rest)) => {
                let inner = rest.strip_suffix(')').ok_or_else(|| {
                    format!("Syntax error: unbalanced parentheses in $expand '{value}'.")
                })?;
                (nav.trim(), Some(inner))
            }
            None => (item, None),
        };
        if table.lookup_by_navigation(navigation).is_none()
            && table.collection(navigation).is_none()
        {
            return Err(unknown_property(navigation, table));
        }
        let mut select = None;
        for option in options.into_iter().flat_map(|o| split_top_level(o, ';')) {
            match option.trim().split_once('=') {
                Some(("$select", columns)) => {
                    select = Some(columns.split(',').map(|c| c.trim().to_string()).collect());
                }
                _ => {
                    return Err(format!(
                        "The fake Dataverse supports only $select inside $expand, not '{option}'."
                    ));
                }
            }
        }
        items.push(Expand {
            navigation: navigation.to_string(),
            select,
        });
    }
    Ok(items)
}

/// Splits on `separator` outside parentheses and single-quoted strings.
pub(crate) fn split_top_level(value: &str, separator: char) -> Vec<&str> {
    let (mut parts, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == separator && depth == 0 && !quoted => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

fn parse_orderby(value: &str, table: &Table) -> Result<Vec<(String, bool)>, String> {
    value
        .split(',')
        .map(|item| {
            let mut words = item.split_whitespace();
            let column = words.next().unwrap_or("");
            column_type(column, table)?;
            let descending = match words.next() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(format!(
                        "Syntax error at position {}: unexpected '{other}' in $orderby.",
                        item.len()
                    ));
                }
            };
            if words.next().is_some() {
                return Err(format!("Syntax error in $orderby '{value}'."));
            }
            Ok((column.to_string(), descending))
        })
        .collect()
}

/// Sorts records by `$orderby`; a stable sort keeps creation order for ties.
pub(crate) fn sort(rows: &mut [&Record], orderby: &[(String, bool)]) {
    rows.sort_by(|a, b| {
        orderby
            .iter()
            .map(|(column, descending)| {
                let ord = compare_values(a.get(column), b.get(column));
                if *descending { ord.reverse() } else { ord }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
}

/// Nulls first, strings without regard to case (Dataverse's default
/// collation), numbers numerically.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        // Case-insensitive without allocating: key checks compare every row.
        (Value::String(x), Value::String(y)) => x
            .chars()
            .flat_map(char::to_lowercase)
            .cmp(y.chars().flat_map(char::to_lowercase)),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

// ---- $filter -------------------------------------------------------------

/// The supported `$filter` subset.
#[derive(Debug, PartialEq)]
pub(crate) enum Filter {
    /// `column eq literal` (`negate` for `ne`).
    Compare {
        column: String,
        negate: bool,
        literal: Value,
    },
    /// `contains(column,'text')`.
    Contains {
        column: String,
        text: String,
    },
    And(Box<Filter>, Box<Filter>),
}

impl Filter {
    pub(crate) fn matches(&self, record: &Record) -> bool {
        match self {
            Filter::Compare {
                column,
                negate,
                literal,
            } => compare_values(record.get(column), literal).is_eq() != *negate,
            Filter::Contains { column, text } => record
                .get(column)
                .as_str()
                .is_some_and(|v| v.to_lowercase().contains(&text.to_lowercase())),
            Filter::And(a, b) => a.matches(record) && b.matches(record),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Number(f64, String),
    Guid(String),
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | ',' => {
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
                i += 1;
            }
            '\'' => {
                // OData string literal: a doubled quote is an escaped quote.
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "There is an unterminated string literal at position {i} in '{input}'."
                            ));
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(text));
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/') => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | '/'))
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(classify(word));
            }
            other => {
                return Err(format!(
                    "Syntax error: character '{other}' is not valid at position {i} in '{input}'."
                ));
            }
        }
    }
    Ok(tokens)
}

fn classify(word: String) -> Token {
    let is_guid = word.len() == 36
        && word.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if is_guid {
        return Token::Guid(word.to_lowercase());
    }
    let numeric_start = word.starts_with(|c: char| c.is_ascii_digit())
        || (word.starts_with('-') && word[1..].starts_with(|c: char| c.is_ascii_digit()));
    match word.parse::<f64>() {
        Ok(n) if numeric_start => Token::Number(n, word),
        _ => Token::Word(word),
    }
}

/// Recursive descent over: `expr := term ('and' term)*`,
/// `term := '(' expr ')' | contains '(' column ',' string ')' | column (eq|ne) literal`.
struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    table: &'a Table,
}

fn unsupported(what: &str) -> String {
    format!("The fake Dataverse does not support {what} in $filter.")
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w == word)
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            _ => Err(format!("Syntax error: expected {what} in $filter.")),
        }
    }

    fn expr(&mut self) -> Result<Filter, String> {
        let mut left = self.term()?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.term()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        if self.peek_word("or") {
            return Err(unsupported("'or'"));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.expr()?;
                self.expect(Token::Close, "')'")?;
                Ok(inner)
            }
            Some(Token::Word(w)) if self.tokens.get(self.pos) == Some(&Token::Open) => {
                if w != "contains" {
                    return Err(unsupported(&format!("the function '{w}'")));
                }
                self.pos += 1;
                let column = self.column()?;
                if self.table.column_type(&column) != Some(ColumnType::String) {
                    return Err(
                        "No function signature for the function with name 'contains' matches the specified arguments. The function signatures considered are: contains(Edm.String Nullable=true, Edm.String Nullable=true)."
                        .into());
                }
                self.expect(Token::Comma, "','")?;
                let Some(Token::Str(text)) = self.next() else {
                    return Err(
                        "Syntax error: contains() expects a string literal as its second argument."
                            .into(),
                    );
                };
                self.expect(Token::Close, "')'")?;
                Ok(Filter::Contains { column, text })
            }
            Some(Token::Word(w)) if w == "not" => Err(unsupported("'not'")),
            Some(Token::Word(_)) => {
                self.pos -= 1;
                let column = self.column()?;
                let negate = match self.next() {
                    Some(Token::Word(op)) if op == "eq" => false,
                    Some(Token::Word(op)) if op == "ne" => true,
                    Some(Token::Word(op)) => {
                        return Err(unsupported(&format!("the operator '{op}'")));
                    }
                    _ => {
                        return Err(
                            "Syntax error: expected a comparison operator in $filter.".into()
                        );
                    }
                };
                let literal = self.literal(&column, negate)?;
                Ok(Filter::Compare {
                    column,
                    negate,
                    literal,
                })
            }
            _ => Err("Syntax error: expected an expression in $filter.".into()),
        }
    }

    fn column(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => column_type(&w, self.table).map(|_| w),
            _ => Err("Syntax error: expected a property name in $filter.".into()),
        }
    }

    /// Reads a literal and checks it against the column's type, as OData does
    /// (e.g. quoting a number is an error, not a silent mismatch).
    fn literal(&mut self, column: &str, negate: bool) -> Result<Value, String> {
        let column_type = column_type(column, self.table)?;
        let (value, literal_type) = match self.next() {
            Some(Token::Str(s)) => (Value::String(s), "Edm.String"),
            Some(Token::Guid(g)) => (Value::String(g), "Edm.Guid"),
            Some(Token::Number(n, text)) => (
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                if text.contains('.') {
                    "Edm.Decimal"
                } else {
                    "Edm.Int32"
                },
            ),
            Some(Token::Word(w)) if w == "null" => return Ok(Value::Null),
            Some(Token::Word(w)) if w == "true" || w == "false" => {
                (Value::Bool(w == "true"), "Edm.Boolean")
            }
            _ => return Err("Syntax error: expected a literal value in $filter.".into()),
        };
        let compatible = match column_type {
            ColumnType::String => literal_type == "Edm.String",
            ColumnType::Guid => literal_type == "Edm.Guid",
            ColumnType::Money => {
                matches!(literal_type, "Edm.Int32" | "Edm.Decimal")
            }
        };
        if !compatible {
            return Err(format!(
                "A binary operator with incompatible types was detected. Found operand types '{}' and '{literal_type}' for operator kind '{}'.",
                column_type.edm_name(),
                if negate { "NotEqual" } else { "Equal" }
            ));
        }
        Ok(value)
    }
}

fn parse_filter(value: &str, table: &Table) -> Result<Filter, String> {
    let mut parser = Parser {
        tokens: tokenize(value)?,
        pos: 0,
        table,
    };
    let filter = parser.expr()?;
    if parser.pos < parser.tokens.len() {
        return Err(format!(
            "Syntax error at position {} in '{value}'.",
            parser.pos
        ));
    }
    Ok(filter)
}

// ---- $deltatoken ----------------------------------------------------------

/// A delta token like Dataverse's (`919042!08/22/2017 08:10:44`: the row
/// version, then when): `{version}!{unix seconds}`, percent-encoded in links.
pub(crate) fn deltatoken(version: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{version}%21{now}")
}

fn parse_deltatoken(decoded: &str) -> Result<u64, String> {
    decoded
        .split_once('!')
        .and_then(|(version, _)| version.parse().ok())
        .ok_or_else(|| format!("The $deltatoken value '{decoded}' is not valid."))
}

// ---- $skiptoken -----------------------------------------------------------

/// Builds the token for the page after `page_number`, shaped like Dataverse's:
/// an XML `cookie` element (percent-encoded, upper-case hex) whose
/// `pagingcookie` attribute is itself a percent-encoded (lower-case hex) XML
/// cookie naming the first and last primary keys of the page just served.
pub(crate) fn skiptoken(
    page_number: u32,
    primary_key: &str,
    first_id: &str,
    last_id: &str,
) -> String {
    let inner = format!(
        r#"<cookie page="{page_number}"><{primary_key} last="{{{}}}" first="{{{}}}" /></cookie>"#,
        last_id.to_uppercase(),
        first_id.to_uppercase()
    );
    let outer = format!(
        r#"<cookie pagenumber="{}" pagingcookie="{}" istracking="False" />"#,
        page_number + 1,
        percent::encode(&inner, b"-._", false)
    );
    percent::encode(&outer, b"=/-._", true)
}

/// Reads a (once-decoded) skip token back.
fn parse_skiptoken(decoded: &str) -> Result<SkipToken, String> {
    let invalid = || format!("The $skiptoken value '{decoded}' is not valid.");
    let page_number = xml_attribute(decoded, "pagenumber")
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let inner = percent::decode(
        xml_attribute(decoded, "pagingcookie").ok_or_else(invalid)?,
        false,
    );
    let last = xml_attribute(&inner, "last").ok_or_else(invalid)?;
    let last_id = last
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_lowercase();
    Ok(SkipToken {
        page_number,
        last_id,
    })
}

fn xml_attribute<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = xml[start..].find('"')?;
    Some(&xml[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::table::accounts;

    fn filter(s: &str) -> Result<Filter, String> {
        parse_filter(s, &accounts(1))
    }

    #[test]
    fn filter_parses_the_supported_subset() {
        assert_eq!(
            filter("name eq 'O''Neil' and (revenue ne 5 and contains(accountnumber,'A-'))")
                .unwrap(),
            Filter::And(
                Box::new(Filter::Compare {
                    column: "name".into(),
                    negate: false,
                    literal: "O'Neil".into()
                }),
                Box::new(Filter::And(
                    Box::new(Filter::Compare {
                        column: "revenue".into(),
                        negate: true,
                        literal: serde_json::json!(5.0)
                    }),
                    Box::new(Filter::Contains {
                        column: "accountnumber".into(),
                        text: "A-".into()
                    }),
                )),
            )
        );
        assert!(filter("accountid eq 3c9d2e71-4b8a-4f6e-9d15-7a0b2c4e6f81").is_ok());
        assert!(filter("name eq null").is_ok());
    }

    #[test]
    fn filter_rejects_what_it_does_not_support() {
        for (input, needle) in [
            ("name eq 'a' or name eq 'b'", "'or'"),
            ("revenue gt 5", "'gt'"),
            ("startswith(name,'C')", "'startswith'"),
            ("nosuch eq 1", "Could not find a property named 'nosuch'"),
            ("name eq 5", "incompatible types"),
            ("revenue eq '5'", "incompatible types"),
            ("name eq 'open", "unterminated"),
            ("name eq", "expected a literal"),
            ("contains(revenue,'1')", "No function signature"),
        ] {
            let err = filter(input).unwrap_err();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn skiptoken_round_trips_and_looks_like_dataverse() {
        let token = skiptoken(
            1,
            "accountid",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "bbbbbbbb-0000-4000-8000-000000000002",
        );
        assert!(token.starts_with("%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e%253caccountid%2520last%253d%2522%257bBBBBBBBB-0000"), "{token}");
        assert!(token.ends_with("%22%20istracking=%22False%22%20/%3E"));
        let parsed = parse_skiptoken(&percent::decode(&token, true)).unwrap();
        assert_eq!(
            parsed,
            SkipToken {
                page_number: 2,
                last_id: "bbbbbbbb-0000-4000-8000-000000000002".into()
            }
        );
        assert!(parse_skiptoken("garbage").is_err());
    }

    #[test]
    fn query_options_keep_raw_segments_for_next_links() {
        let q = parse(
            Some("$select=name,revenue&$top=3&$count=true&$orderby=revenue%20desc&$skiptoken=x"),
            &accounts(1),
        );
        // The bad skiptoken is rejected, everything before it parsed.
        assert!(q.is_err());
        let q = parse(
            Some("$select=name,revenue&$top=3&$count=true&$orderby=revenue%20desc"),
            &accounts(1),
        )
        .unwrap();
        assert_eq!(
            q.select,
            Some(vec!["name".to_string(), "revenue".to_string()])
        );
        assert_eq!(q.top, Some(3));
        assert!(q.count);
        assert_eq!(q.orderby, vec![("revenue".to_string(), true)]);
        assert_eq!(q.passthrough.len(), 4);
        assert!(
            parse(Some("$skip=2"), &accounts(1))
                .unwrap_err()
                .contains("$skip")
        );
        assert!(
            parse(Some("$top=1&$top=2"), &accounts(1))
                .unwrap_err()
                .contains("more than once")
        );
        assert!(parse(Some("$top=-1"), &accounts(1)).is_err());
    }
}
