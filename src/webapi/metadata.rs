//! A table's definition (`EntityDefinitions`): what it is called in the
//! Web API (its entity set name), in messages (its logical name, which
//! bulk messages put in every target's `@odata.type`) and what its primary
//! key and primary name columns are. A caller may name a table either way,
//! so the lookup is by entity set name first
//! (`EntityDefinitions?$filter=EntitySetName eq '…'`, an empty list when
//! none) and then by logical name (`EntityDefinitions(LogicalName='…')`,
//! the definition's alternate key: 404 when none). Pure.

use serde_json::Value;

use super::get;
use super::query::check_identifier;
use crate::error::{Error, ServiceFailure};
use crate::http::{Request, Response};

/// The properties asked for: only these (a full definition is tens of KiB).
const SELECT: &str = "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,TableType";

/// What the client needs to know about a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// `account`.
    pub logical_name: String,
    /// `accounts`.
    pub entity_set: String,
    /// `accountid`.
    pub primary_id: String,
    /// `name`; none for tables without one (intersect tables).
    pub primary_name: Option<String>,
    /// `Standard`, `Elastic`, `Virtual` (Dataverse's `TableType`).
    pub table_type: String,
}

/// The query by entity set name (the first of the two lookups).
pub fn by_entity_set(org_url: &str, name: &str) -> Result<Request, Error> {
    check_identifier("table", name)?;
    Ok(get(
        org_url,
        &format!("EntityDefinitions?$select={SELECT}&$filter=EntitySetName%20eq%20'{name}'"),
    ))
}

/// The read by logical name (the second).
pub fn by_logical_name(org_url: &str, name: &str) -> Result<Request, Error> {
    check_identifier("table", name)?;
    Ok(get(
        org_url,
        &format!("EntityDefinitions(LogicalName='{name}')?$select={SELECT}"),
    ))
}

/// The definition in a `by_entity_set` answer, if it found one.
pub fn parse_list(response: &Response, name: &str) -> Result<Option<TableInfo>, Error> {
    let body = json(response)?;
    let Some(definitions) = body.get("value").and_then(Value::as_array) else {
        return Err(invalid(response, "without a value array"));
    };
    match definitions.as_slice() {
        [] => Ok(None),
        [definition] => definition_of(response, definition, name).map(Some),
        more => Err(invalid(
            response,
            &format!("with {} tables for the entity set {name}", more.len()),
        )),
    }
}

/// The definition a `by_logical_name` answer carries.
pub fn parse_one(response: &Response, name: &str) -> Result<TableInfo, Error> {
    definition_of(response, &json(response)?, name)
}

/// A column of a table and its type (`AttributeType`: `String`, `Integer`,
/// `Money`, `Boolean`, `Lookup`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribute {
    pub logical_name: String,
    pub attribute_type: String,
}

/// The read of a table's columns with their types.
pub fn attributes(org_url: &str, logical_name: &str) -> Result<Request, Error> {
    check_identifier("table", logical_name)?;
    Ok(get(
        org_url,
        &format!(
            "EntityDefinitions(LogicalName='{logical_name}')/Attributes?$select=LogicalName,AttributeType"
        ),
    ))
}

/// The columns an `attributes` answer lists; an entry without a valid name
/// or type is an invalid response.
pub fn parse_attributes(response: &Response) -> Result<Vec<Attribute>, Error> {
    let body = json(response)?;
    let Some(items) = body.get("value").and_then(Value::as_array) else {
        return Err(invalid(response, "without a value array"));
    };
    items
        .iter()
        .map(|item| {
            let text = |property: &str| {
                item.get(property)
                    .and_then(Value::as_str)
                    .filter(|v| check_identifier(property, v).is_ok())
                    .map(str::to_string)
            };
            match (text("LogicalName"), text("AttributeType")) {
                (Some(logical_name), Some(attribute_type)) => Ok(Attribute {
                    logical_name,
                    attribute_type,
                }),
                _ => Err(invalid(
                    response,
                    "with a column without a valid name and type",
                )),
            }
        })
        .collect()
}

/// What a text cell (CSV) becomes for a column of this type: a number for
/// the numeric types (option sets are numbers too), a boolean for
/// `Boolean`, else the text itself. A cell that is not of its column's
/// type is refused with the column's name, not the cell's text.
pub fn typed_cell(column: &str, attribute_type: Option<&str>, cell: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("column {column} needs {what}");
    match attribute_type {
        Some("Integer" | "BigInt" | "Picklist" | "State" | "Status") => cell
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| bad("a whole number")),
        Some("Decimal" | "Double" | "Money") => cell
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad("a number")),
        Some("Boolean") => match cell.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err(bad("true or false")),
        },
        _ => Ok(Value::String(cell.to_string())),
    }
}

/// The error for a name that is neither an entity set nor a logical name:
/// Dataverse's 404 to the second lookup (its code and request id), saying
/// that both names were tried.
pub fn no_such_table(name: &str, mut refused: ServiceFailure) -> Error {
    refused.message = format!(
        "no table has the entity set name or logical name '{name}' ({})",
        refused.message
    );
    Error::NotFound(refused)
}

fn json(response: &Response) -> Result<Value, Error> {
    serde_json::from_slice(&response.body)
        .map_err(|_| invalid(response, "with a body that is not JSON"))
}

fn definition_of(response: &Response, definition: &Value, name: &str) -> Result<TableInfo, Error> {
    let text = |property: &str| {
        definition
            .get(property)
            .and_then(Value::as_str)
            .filter(|v| check_identifier(property, v).is_ok())
            .map(str::to_string)
    };
    let (Some(logical_name), Some(entity_set), Some(primary_id)) = (
        text("LogicalName"),
        text("EntitySetName"),
        text("PrimaryIdAttribute"),
    ) else {
        return Err(invalid(
            response,
            "without a valid LogicalName, EntitySetName and PrimaryIdAttribute",
        ));
    };
    if !name.eq_ignore_ascii_case(&logical_name) && !name.eq_ignore_ascii_case(&entity_set) {
        return Err(invalid(
            response,
            &format!("with the table {logical_name} ({entity_set}) for {name}"),
        ));
    }
    Ok(TableInfo {
        logical_name,
        entity_set,
        primary_id,
        primary_name: text("PrimaryNameAttribute"),
        table_type: text("TableType").unwrap_or_else(|| "Standard".into()),
    })
}

fn invalid(response: &Response, why: &str) -> Error {
    Error::InvalidResponse(format!(
        "EntityDefinitions answered HTTP {} {why}",
        response.status
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    const ORG: &str = "https://o.crm.dynamics.com";

    fn answer(body: &str) -> Response {
        Response {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    const ACCOUNT: &str = r#"{"@odata.context":"x","LogicalName":"account","EntitySetName":"accounts","PrimaryIdAttribute":"accountid","PrimaryNameAttribute":"name","TableType":"Standard","MetadataId":"70816501-edb9-4740-a16c-6a5efbc05d84"}"#;

    #[test]
    fn the_lookups_ask_for_five_properties_by_set_then_by_logical_name() {
        let request = by_entity_set(ORG, "accounts").unwrap();
        assert_eq!(request.method, Method::Get);
        assert_eq!(
            request.url,
            format!(
                "{ORG}/api/data/v9.2/EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,TableType&$filter=EntitySetName%20eq%20'accounts'"
            )
        );
        assert_eq!(
            by_logical_name(ORG, "account").unwrap().url,
            format!(
                "{ORG}/api/data/v9.2/EntityDefinitions(LogicalName='account')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,TableType"
            )
        );
        for bad in ["", "a'b", "accounts)", "a b", "x/../y"] {
            assert!(matches!(
                by_entity_set(ORG, bad),
                Err(Error::InvalidRequest(_))
            ));
            assert!(matches!(
                by_logical_name(ORG, bad),
                Err(Error::InvalidRequest(_))
            ));
        }
    }

    #[test]
    fn a_definition_names_the_table_both_ways_and_its_keys() {
        let account = TableInfo {
            logical_name: "account".into(),
            entity_set: "accounts".into(),
            primary_id: "accountid".into(),
            primary_name: Some("name".into()),
            table_type: "Standard".into(),
        };
        assert_eq!(parse_one(&answer(ACCOUNT), "account").unwrap(), account);
        let list = format!(r#"{{"value":[{ACCOUNT}]}}"#);
        assert_eq!(
            parse_list(&answer(&list), "accounts").unwrap(),
            Some(account)
        );
        assert_eq!(parse_list(&answer(r#"{"value":[]}"#), "x").unwrap(), None);
        let intersect = r#"{"LogicalName":"listmember","EntitySetName":"listmembers","PrimaryIdAttribute":"listmemberid","PrimaryNameAttribute":null}"#;
        let info = parse_one(&answer(intersect), "listmember").unwrap();
        assert_eq!(info.primary_name, None);
        assert_eq!(info.table_type, "Standard");
    }

    #[test]
    fn columns_and_their_types_type_the_cells_of_a_csv_row() {
        assert_eq!(
            attributes(ORG, "account").unwrap().url,
            format!(
                "{ORG}/api/data/v9.2/EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName,AttributeType"
            )
        );
        let listed = answer(
            r#"{"value":[{"LogicalName":"name","AttributeType":"String","MetadataId":"x"},{"LogicalName":"revenue","AttributeType":"Money"}]}"#,
        );
        let columns = parse_attributes(&listed).unwrap();
        assert_eq!(columns.len(), 2);
        assert_eq!(columns[1].attribute_type, "Money");
        assert!(parse_attributes(&answer(r#"{"value":[{"LogicalName":"x"}]}"#)).is_err());
        assert!(
            parse_attributes(&answer(
                r#"{"value":[{"LogicalName":"a b","AttributeType":"String"}]}"#
            ))
            .is_err()
        );
        for (kind, cell, expected) in [
            ("Integer", " 42 ", serde_json::json!(42)),
            ("Picklist", "100000001", serde_json::json!(100000001)),
            ("Money", "1250.5", serde_json::json!(1250.5)),
            ("Boolean", "Yes", serde_json::json!(true)),
            ("Boolean", "0", serde_json::json!(false)),
            ("String", "0012", serde_json::json!("0012")),
        ] {
            assert_eq!(
                typed_cell("c", Some(kind), cell).unwrap(),
                expected,
                "{kind} {cell}"
            );
        }
        assert_eq!(
            typed_cell("c", None, "007").unwrap(),
            serde_json::json!("007")
        );
        for (kind, cell) in [
            ("Integer", "4.5"),
            ("Money", "lots"),
            ("Money", "inf"),
            ("Boolean", "maybe"),
        ] {
            let err = typed_cell("revenue", Some(kind), cell).unwrap_err();
            assert!(err.starts_with("column revenue needs"), "{err}");
            assert!(!err.contains(cell), "{err}");
        }
    }

    #[test]
    fn hostile_definitions_are_invalid_responses() {
        for (body, name, why) in [
            ("<html>", "account", "not JSON"),
            (r#"{"value":{}}"#, "accounts", "without a value array"),
            (
                r#"{"LogicalName":"account","EntitySetName":"accounts/../x","PrimaryIdAttribute":"accountid"}"#,
                "account",
                "without a valid",
            ),
            (
                r#"{"LogicalName":"contact","EntitySetName":"contacts","PrimaryIdAttribute":"contactid"}"#,
                "account",
                "with the table contact (contacts) for account",
            ),
        ] {
            let err = if body.contains("value") {
                parse_list(&answer(body), name).unwrap_err()
            } else {
                parse_one(&answer(body), name).unwrap_err()
            };
            assert!(
                matches!(&err, Error::InvalidResponse(m) if m.contains(why)),
                "{body}: {err:?}"
            );
        }
        let two = format!(r#"{{"value":[{ACCOUNT},{ACCOUNT}]}}"#);
        assert!(matches!(
            parse_list(&answer(&two), "accounts"),
            Err(Error::InvalidResponse(m)) if m.contains("with 2 tables")
        ));
    }
}
