//! Table rows as the Web API returns them: `@odata.etag`, the selected
//! columns, the annotations `Prefer` asks for and `$expand`ed related rows,
//! plus the `@odata.context` URL that describes them.

use super::annotations::{self, Prefer};
use super::odata::Expand;
use super::reply::{DvError, bad_request};
use super::table::{Record, Table, Tables};
use serde_json::{Map, Value};

/// `$select` columns plus the primary key, which Dataverse always returns.
pub(crate) fn selected_columns<'a>(table: &'a Table, select: &'a [String]) -> Vec<&'a str> {
    let mut columns: Vec<&str> = select.iter().map(String::as_str).collect();
    if !columns.contains(&table.primary_key) {
        columns.push(table.primary_key);
    }
    columns
}

/// `@odata.context` for a set, listing selected columns and expansions.
pub(crate) fn context_url(
    base: &str,
    set: &str,
    table: &Table,
    select: Option<&[String]>,
    expand: &[Expand],
) -> String {
    let mut items: Vec<String> = select
        .map(|s| {
            selected_columns(table, s)
                .iter()
                .map(|c| c.to_string())
                .collect()
        })
        .unwrap_or_default();
    for e in expand {
        items.push(match &e.select {
            Some(columns) => format!("{}({})", e.navigation, columns.join(",")),
            None => format!("{}()", e.navigation),
        });
    }
    if items.is_empty() {
        format!("{base}/$metadata#{set}")
    } else {
        format!("{base}/$metadata#{set}({})", items.join(","))
    }
}

/// One row as JSON: `@odata.etag`, the selected (or all) columns, the
/// annotations `prefer` asks for, and `$expand`ed related rows.
pub(crate) fn render(
    tables: &Tables,
    table: &Table,
    record: &Record,
    select: Option<&[String]>,
    expand: &[Expand],
    prefer: &Prefer,
) -> Result<Map<String, Value>, DvError> {
    let mut row = Map::new();
    row.insert("@odata.etag".into(), Value::String(record.etag()));
    match select {
        None => row.extend(record.fields.clone()),
        Some(columns) => {
            for column in selected_columns(table, columns) {
                row.insert(column.into(), record.get(column).clone());
            }
        }
    }
    annotations::annotate(&mut row, table, tables, prefer);
    expand_into(&mut row, tables, table, record, expand, prefer)?;
    Ok(row)
}

/// Adds each `$expand`ed navigation property to a rendered row: an object
/// (or null) for single-valued, an array for collection-valued ones.
pub(crate) fn expand_into(
    row: &mut Map<String, Value>,
    tables: &Tables,
    table: &Table,
    record: &Record,
    expand: &[Expand],
    prefer: &Prefer,
) -> Result<(), DvError> {
    for e in expand {
        let (related_set, related) = if let Some(lookup) = table.lookup_by_navigation(&e.navigation)
        {
            (lookup.target_set, None)
        } else if let Some(collection) = table.collection(&e.navigation) {
            (collection.related_set, Some(collection.referencing_column))
        } else {
            return Err(bad_request(format!(
                "Could not find a property named '{}' on type 'Microsoft.Dynamics.CRM.{}'.",
                e.navigation, table.logical_name
            )));
        };
        let target = &tables[related_set];
        if let Some(unknown) = e
            .select
            .iter()
            .flatten()
            .find(|c| target.column_type(c).is_none())
        {
            return Err(bad_request(format!(
                "Could not find a property named '{unknown}' on type 'Microsoft.Dynamics.CRM.{}'.",
                target.logical_name
            )));
        }
        let select = e.select.as_deref();
        let value = match related {
            None => match table
                .lookup_by_navigation(&e.navigation)
                .and_then(|l| record.get(l.column).as_str())
                .and_then(|id| target.find(id))
            {
                Some(r) => Value::Object(render(tables, target, r, select, &[], prefer)?),
                None => Value::Null,
            },
            Some(column) => {
                let id = record.id(table.primary_key);
                let rows = target
                    .rows
                    .iter()
                    .filter(|r| r.get(column).as_str() == Some(id.as_str()))
                    .map(|r| render(tables, target, r, select, &[], prefer).map(Value::Object))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Array(rows)
            }
        };
        row.insert(e.navigation.clone(), value);
    }
    Ok(())
}
