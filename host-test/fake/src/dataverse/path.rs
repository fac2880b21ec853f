//! Web API resource paths: `accounts(…)/contact_customer_accounts(…)/$ref`
//! split into segments, entity keys (`<guid>` or `accountnumber='A-0001'`),
//! and entity references (`@odata.id` / `@odata.bind` values, which may be
//! absolute, relative, or a `$batch` Content-ID such as `$1`).

use super::context::{API_PREFIX, Ctx};
use super::odata::split_top_level;
use super::reply::{DvError, bad_request, segment_not_found};
use super::table::Table;
use crate::percent;
use http::StatusCode;
use serde_json::Value;

/// One path segment: `name` or `name(args)` (args still raw, e.g. a key).
#[derive(Debug, PartialEq)]
pub(crate) struct Segment {
    pub(crate) name: String,
    pub(crate) args: Option<String>,
}

/// Splits the path below `/api/data/v9.2/` into segments; the service root
/// gives none. Segments are percent-decoded one at a time, so an encoded `/`
/// inside a key value stays part of the key.
pub(crate) fn segments(path: &str) -> Result<Vec<Segment>, DvError> {
    let Some(rest) = path
        .strip_prefix(API_PREFIX)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        return Err(segment_not_found(first));
    };
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|raw| {
            let s = percent::decode(raw, false);
            match s.find('(') {
                Some(open) if s.ends_with(')') => Ok(Segment {
                    name: s[..open].to_string(),
                    args: Some(s[open + 1..s.len() - 1].to_string()),
                }),
                Some(_) => Err(segment_not_found(&s)),
                None => Ok(Segment {
                    name: s,
                    args: None,
                }),
            }
        })
        .collect()
}

/// How a request names one row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Key {
    /// The primary key, lower case.
    Id(String),
    /// Alternate key columns and values.
    Alternate(Vec<(String, Value)>),
}

pub(crate) fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// A GUID with optional braces, lower-cased; `None` if it is not one.
pub(crate) fn guid(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    is_guid(s).then(|| s.to_ascii_lowercase())
}

/// Parses the inside of `set(…)` against the table's keys.
pub(crate) fn parse_key(table: &Table, raw: &str) -> Result<Key, DvError> {
    if let Some(id) = guid(raw) {
        return Ok(Key::Id(id));
    }
    let mut pairs = Vec::new();
    for part in split_top_level(raw, ',') {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| bad_request(format!("Invalid key '{raw}'.")))?;
        pairs.push((name.trim().to_string(), key_literal(value.trim(), raw)?));
    }
    if let [(name, Value::String(v))] = pairs.as_slice()
        && name == table.primary_key
        && let Some(id) = guid(v)
    {
        return Ok(Key::Id(id));
    }
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let mut expected = table.alternate_key.to_vec();
    expected.sort_unstable();
    if expected.is_empty() || names != expected {
        return Err(bad_request(format!(
            "The key '{raw}' does not match any key of entity '{}'.",
            table.logical_name
        )));
    }
    Ok(Key::Alternate(pairs))
}

/// A key value: `'text'` (`''` escapes a quote), a GUID or a number.
fn key_literal(value: &str, raw: &str) -> Result<Value, DvError> {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return Ok(Value::String(inner.replace("''", "'")));
    }
    if let Some(id) = guid(value) {
        return Ok(Value::String(id));
    }
    value
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| bad_request(format!("Invalid key '{raw}'.")))
}

/// Resolves an entity reference to `(entity set, key)`: an absolute URL on
/// the org host, `/api/data/v9.2/set(key)`, `/set(key)`, `set(key)`, or a
/// change set Content-ID `$n`.
pub(crate) fn entity_reference(ctx: &Ctx, value: &str) -> Result<(String, String), DvError> {
    let invalid = || {
        DvError::new(
            StatusCode::BAD_REQUEST,
            "0x80048d19",
            format!("The entity reference '{value}' is not a valid URI of an entity."),
        )
    };
    let mut url = value.trim().to_string();
    if let Some(id) = url.strip_prefix('$') {
        url = ctx.content_ids.get(id).cloned().ok_or_else(|| {
            bad_request(format!(
                "Content-ID Reference: '${id}' does not exist in the batch context."
            ))
        })?;
    }
    let path = match url.split_once("://") {
        Some((_, rest)) => {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            if crate::host_name(host) != crate::host_name(&ctx.config.org_host) {
                return Err(invalid());
            }
            format!("/{path}")
        }
        None => url,
    };
    let path = path
        .strip_prefix(API_PREFIX)
        .unwrap_or(&path)
        .trim_start_matches('/');
    let decoded = percent::decode(path, false);
    let (set, rest) = decoded.split_once('(').ok_or_else(invalid)?;
    let key = rest.strip_suffix(')').ok_or_else(invalid)?;
    if set.is_empty() || set.contains('/') || key.is_empty() {
        return Err(invalid());
    }
    Ok((set.to_string(), key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataverse::table::{accounts, contacts};

    #[test]
    fn segments_split_names_and_arguments() {
        assert_eq!(segments("/api/data/v9.2/").unwrap(), vec![]);
        let s = segments(
            "/api/data/v9.2/accounts(accountnumber='A%2F1')/contact_customer_accounts/$ref",
        )
        .unwrap();
        assert_eq!(s[0].args.as_deref(), Some("accountnumber='A/1'"));
        assert_eq!(s[1].name, "contact_customer_accounts");
        assert_eq!(s[2].name, "$ref");
        assert!(segments("/other").is_err());
    }

    #[test]
    fn keys_are_guids_primary_key_pairs_or_alternate_keys() {
        let table = accounts(1);
        let id = "3C9D2E71-4B8A-4F6E-9D15-7A0B2C4E6F81";
        let lower = id.to_ascii_lowercase();
        assert_eq!(parse_key(&table, id).unwrap(), Key::Id(lower.clone()));
        assert_eq!(
            parse_key(&table, &format!("{{{id}}}")).unwrap(),
            Key::Id(lower.clone())
        );
        assert_eq!(
            parse_key(&table, &format!("accountid={id}")).unwrap(),
            Key::Id(lower)
        );
        assert_eq!(
            parse_key(&table, "accountnumber='O''Neil'").unwrap(),
            Key::Alternate(vec![("accountnumber".into(), "O'Neil".into())])
        );
        assert!(parse_key(&table, "name='x'").is_err());
        assert!(parse_key(&contacts(0), "emailaddress1='x'").is_err());
    }
}
