//! The `Prefer` request header and the instance annotations it turns on:
//! formatted values (`col@OData.Community.Display.V1.FormattedValue`), lookup
//! annotations, and FetchXML's paging annotations. Dataverse returns these
//! only when `odata.include-annotations` asks for them, so clients that forget
//! to ask see what they would see in production: nothing.

use super::table::{ColumnType, Table};
use http::HeaderMap;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub(crate) const FORMATTED_VALUE: &str = "OData.Community.Display.V1.FormattedValue";
pub(crate) const NAVIGATION_PROPERTY: &str = "Microsoft.Dynamics.CRM.associatednavigationproperty";
pub(crate) const LOOKUP_LOGICAL_NAME: &str = "Microsoft.Dynamics.CRM.lookuplogicalname";
pub(crate) const PAGING_COOKIE: &str = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
pub(crate) const MORE_RECORDS: &str = "Microsoft.Dynamics.CRM.morerecords";
pub(crate) const TOTAL_RECORD_COUNT: &str = "Microsoft.Dynamics.CRM.totalrecordcount";
pub(crate) const TOTAL_RECORD_COUNT_LIMIT_EXCEEDED: &str =
    "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded";

/// The preferences a request expressed (all `Prefer` headers combined).
#[derive(Debug, Default)]
pub(crate) struct Prefer {
    pub(crate) return_representation: bool,
    pub(crate) max_page_size: Option<usize>,
    pub(crate) continue_on_error: bool,
    /// The `odata.include-annotations` value, unquoted (e.g. `*`).
    pub(crate) include_annotations: Option<String>,
    /// `odata.track-changes`: the last page carries a delta link.
    pub(crate) track_changes: bool,
}

impl Prefer {
    pub(crate) fn parse(headers: &HeaderMap) -> Prefer {
        let mut prefer = Prefer::default();
        for value in headers.get_all("prefer") {
            let value = String::from_utf8_lossy(value.as_bytes());
            for item in split_outside_quotes(&value) {
                let (name, arg) = match item.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim())),
                    None => (item.trim(), None),
                };
                match (name.to_ascii_lowercase().as_str(), arg) {
                    ("return", Some("representation")) => prefer.return_representation = true,
                    ("odata.maxpagesize", Some(n)) => {
                        prefer.max_page_size = n.parse().ok().filter(|&n: &usize| n > 0);
                    }
                    ("odata.track-changes", None) => prefer.track_changes = true,
                    ("odata.continue-on-error", None | Some("true")) => {
                        prefer.continue_on_error = true;
                    }
                    ("odata.include-annotations", Some(a)) => {
                        prefer.include_annotations = Some(a.trim_matches('"').to_string());
                    }
                    _ => {}
                }
            }
        }
        prefer
    }

    /// Whether `annotation` (e.g. `OData.Community.Display.V1.FormattedValue`)
    /// was asked for: `*`, the exact term, or a `Namespace.*` prefix; a
    /// `-`-prefixed pattern excludes.
    pub(crate) fn wants(&self, annotation: &str) -> bool {
        let Some(list) = &self.include_annotations else {
            return false;
        };
        let matches = |pattern: &str| {
            pattern == "*"
                || pattern.eq_ignore_ascii_case(annotation)
                || pattern.strip_suffix('*').is_some_and(|prefix| {
                    annotation
                        .to_ascii_lowercase()
                        .starts_with(&prefix.to_ascii_lowercase())
                })
        };
        let patterns: Vec<&str> = list.split(',').map(str::trim).collect();
        !patterns
            .iter()
            .any(|p| p.strip_prefix('-').is_some_and(matches))
            && patterns.iter().any(|p| !p.starts_with('-') && matches(p))
    }

    /// `odata.include-annotations="…"` for `Preference-Applied`.
    pub(crate) fn applied_annotations(&self) -> Option<String> {
        self.include_annotations
            .as_ref()
            .map(|a| format!("odata.include-annotations=\"{a}\""))
    }
}

/// Splits a header value on commas that are not inside double quotes.
fn split_outside_quotes(value: &str) -> Vec<&str> {
    let (mut parts, mut quoted, mut start) = (Vec::new(), false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// US-English currency formatting, as an org with USD as base currency shows
/// it: `$1,000.00`, `-$12.50`.
pub(crate) fn format_money(amount: f64) -> String {
    let cents = (amount.abs() * 100.0).round() as u128;
    let (units, cents) = (cents / 100, cents % 100);
    let digits = units.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if amount < 0.0 { "-" } else { "" };
    format!("{sign}${grouped}.{cents:02}")
}

/// Adds the annotations `prefer` asks for to one rendered row: formatted
/// values for money and lookup columns (a lookup's is the target row's
/// primary name), and a lookup's navigation property and target entity.
pub(crate) fn annotate(
    row: &mut Map<String, Value>,
    table: &Table,
    tables: &BTreeMap<&'static str, Table>,
    prefer: &Prefer,
) {
    if prefer.include_annotations.is_none() {
        return;
    }
    let columns: Vec<String> = row.keys().filter(|k| !k.contains('@')).cloned().collect();
    for column in columns {
        let value = row[&column].clone();
        if value.is_null() {
            continue;
        }
        if table.column_type(&column) == Some(ColumnType::Money)
            && prefer.wants(FORMATTED_VALUE)
            && let Some(amount) = value.as_f64()
        {
            row.insert(
                format!("{column}@{FORMATTED_VALUE}"),
                Value::String(format_money(amount)),
            );
        }
        let Some(lookup) = table.lookup_by_column(&column) else {
            continue;
        };
        let target = &tables[lookup.target_set];
        if prefer.wants(FORMATTED_VALUE)
            && let Some(name) = value
                .as_str()
                .and_then(|id| target.find(id))
                .map(|r| r.get(target.primary_name).clone())
        {
            row.insert(format!("{column}@{FORMATTED_VALUE}"), name);
        }
        if prefer.wants(NAVIGATION_PROPERTY) {
            row.insert(
                format!("{column}@{NAVIGATION_PROPERTY}"),
                Value::String(lookup.navigation.into()),
            );
        }
        if prefer.wants(LOOKUP_LOGICAL_NAME) {
            row.insert(
                format!("{column}@{LOOKUP_LOGICAL_NAME}"),
                Value::String(target.logical_name.into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn prefer(values: &[&str]) -> Prefer {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("prefer", HeaderValue::from_str(v).unwrap());
        }
        Prefer::parse(&headers)
    }

    #[test]
    fn prefer_header_parses_quoted_lists_and_multiple_headers() {
        let p = prefer(&[
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.fetchxmlpagingcookie,Microsoft.Dynamics.CRM.morerecords\", odata.maxpagesize=10",
            "return=representation",
        ]);
        assert!(p.return_representation);
        assert_eq!(p.max_page_size, Some(10));
        assert!(p.wants(PAGING_COOKIE) && p.wants(MORE_RECORDS));
        assert!(!p.wants(FORMATTED_VALUE));
        assert!(prefer(&["odata.include-annotations=\"*\""]).wants(FORMATTED_VALUE));
        assert!(
            prefer(&["odata.include-annotations=\"Microsoft.Dynamics.CRM.*\""]).wants(MORE_RECORDS)
        );
        assert!(
            !prefer(&[
                "odata.include-annotations=\"*,-OData.Community.Display.V1.FormattedValue\""
            ])
            .wants(FORMATTED_VALUE)
        );
        assert!(prefer(&["odata.continue-on-error"]).continue_on_error);
        assert!(!prefer(&[]).wants(FORMATTED_VALUE));
    }

    #[test]
    fn money_is_formatted_like_a_usd_org() {
        assert_eq!(format_money(1000.0), "$1,000.00");
        assert_eq!(format_money(1234567.891), "$1,234,567.89");
        assert_eq!(format_money(500.0), "$500.00");
        assert_eq!(format_money(-12.5), "-$12.50");
    }
}
