//! Table definitions (`EntityDefinitions`, Dataverse's `EntityMetadata`):
//! by the `LogicalName` key (`EntityDefinitions(LogicalName='account')`,
//! 404 `0x80040217` when there is none) or as a collection filtered on
//! `LogicalName` / `EntitySetName` with `eq` (an empty `value` when none
//! match). `$select` is honoured; `MetadataId` always comes back, as in
//! Dataverse.

use super::context::Ctx;
use super::reply::{DvError, Reply, bad_request, require};
use super::table::Table;
use crate::State;
use crate::ids::stable_guid;
use crate::percent;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Map, Value, json};

pub(crate) const SET: &str = "EntityDefinitions";

pub(crate) fn handle(
    ctx: &Ctx,
    state: &State,
    req: &Request<Bytes>,
    key: Option<&str>,
) -> Result<Reply, DvError> {
    require(req, Method::GET)?;
    let options = percent::parse_pairs(req.uri().query().unwrap_or(""));
    let option = |name: &str| {
        options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let select: Option<Vec<&str>> = option("$select").map(|s| s.split(',').collect());
    let definitions = state.tables.iter().map(|(set, table)| (*set, table));
    match key {
        Some(key) => {
            let name = key
                .strip_prefix("LogicalName='")
                .and_then(|k| k.strip_suffix('\''))
                .ok_or_else(|| bad_request(format!("The key '{key}' is not LogicalName='…'.")))?;
            let (set, table) = definitions
                .into_iter()
                .find(|(_, t)| t.logical_name == name)
                .ok_or_else(|| {
                    DvError::new(
                        StatusCode::NOT_FOUND,
                        "0x80040217",
                        format!("Could not find entity with name '{name}'."),
                    )
                })?;
            let mut body = definition(set, table, select.as_deref());
            body.insert(
                "@odata.context".into(),
                json!(format!("{}/$metadata#{SET}/$entity", ctx.base)),
            );
            Ok(Reply::json(Value::Object(body)))
        }
        None => {
            let filter = match option("$filter") {
                None => None,
                Some(filter) => Some(parse_filter(filter)?),
            };
            let value: Vec<Value> = definitions
                .filter(|(set, table)| match &filter {
                    None => true,
                    Some((property, name)) => property_value(set, table, property)
                        .is_some_and(|v| v.eq_ignore_ascii_case(name)),
                })
                .map(|(set, table)| Value::Object(definition(set, table, select.as_deref())))
                .collect();
            Ok(Reply::json(json!({
                "@odata.context": format!("{}/$metadata#{SET}", ctx.base),
                "value": value,
            })))
        }
    }
}

/// `EntityDefinitions(LogicalName='…')/Attributes`: the table's columns
/// with `LogicalName` and `AttributeType` (and `MetadataId`), as
/// Dataverse's `AttributeMetadata`.
pub(crate) fn attributes(
    ctx: &Ctx,
    state: &State,
    req: &Request<Bytes>,
    key: Option<&str>,
    column_key: Option<&str>,
) -> Result<Reply, DvError> {
    require(req, Method::GET)?;
    if column_key.is_some() {
        return Err(bad_request(
            "The fake Dataverse lists a table's attributes only.",
        ));
    }
    let name = key
        .and_then(|k| k.strip_prefix("LogicalName='"))
        .and_then(|k| k.strip_suffix('\''))
        .ok_or_else(|| bad_request("Attributes need EntityDefinitions(LogicalName='…')."))?;
    let table = state
        .tables
        .values()
        .find(|t| t.logical_name == name)
        .ok_or_else(|| {
            DvError::new(
                StatusCode::NOT_FOUND,
                "0x80040217",
                format!("Could not find entity with name '{name}'."),
            )
        })?;
    let value: Vec<Value> = table
        .columns
        .iter()
        .map(|(column, column_type)| {
            let attribute_type = if *column == table.primary_key {
                "Uniqueidentifier"
            } else if table.lookup_by_column(column).is_some() {
                "Lookup"
            } else {
                match column_type {
                    super::table::ColumnType::Guid => "Uniqueidentifier",
                    super::table::ColumnType::String => "String",
                    super::table::ColumnType::Money => "Money",
                }
            };
            json!({
                "LogicalName": column,
                "AttributeType": attribute_type,
                "MetadataId": stable_guid(&format!("attribute/{name}/{column}")),
            })
        })
        .collect();
    Ok(Reply::json(json!({
        "@odata.context": format!("{}/$metadata#{SET}('{name}')/Attributes(LogicalName,AttributeType)", ctx.base),
        "value": value,
    })))
}

/// `LogicalName eq 'x'` or `EntitySetName eq 'x'`: the only filters the fake
/// knows (a real org knows more; a client needs no other).
fn parse_filter(filter: &str) -> Result<(String, String), DvError> {
    let unsupported = || {
        bad_request(format!(
            "The fake Dataverse filters EntityDefinitions on LogicalName or EntitySetName with eq only, not '{filter}'."
        ))
    };
    let (property, literal) = filter.trim().split_once(" eq ").ok_or_else(unsupported)?;
    let name = literal
        .trim()
        .strip_prefix('\'')
        .and_then(|l| l.strip_suffix('\''))
        .ok_or_else(unsupported)?;
    match property.trim() {
        p @ ("LogicalName" | "EntitySetName") => Ok((p.to_string(), name.to_string())),
        _ => Err(unsupported()),
    }
}

fn property_value(set: &str, table: &Table, property: &str) -> Option<String> {
    match property {
        "LogicalName" => Some(table.logical_name.to_string()),
        "EntitySetName" | "LogicalCollectionName" => Some(set.to_string()),
        "PrimaryIdAttribute" => Some(table.primary_key.to_string()),
        "PrimaryNameAttribute" => Some(table.primary_name.to_string()),
        "TableType" => Some("Standard".into()),
        "SchemaName" => {
            let mut schema = table.logical_name.to_string();
            schema[..1].make_ascii_uppercase();
            Some(schema)
        }
        _ => None,
    }
}

fn definition(set: &str, table: &Table, select: Option<&[&str]>) -> Map<String, Value> {
    const ALL: [&str; 7] = [
        "LogicalName",
        "SchemaName",
        "EntitySetName",
        "LogicalCollectionName",
        "PrimaryIdAttribute",
        "PrimaryNameAttribute",
        "TableType",
    ];
    let mut body = Map::new();
    body.insert(
        "MetadataId".into(),
        json!(stable_guid(&format!("metadata/{}", table.logical_name))),
    );
    for property in select.unwrap_or(&ALL) {
        if let Some(value) = property_value(set, table, property) {
            body.insert(property.to_string(), Value::String(value));
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;

    #[test]
    fn a_definition_by_logical_name_or_by_entity_set_filter() {
        let (fake, token) = demo();
        let select =
            "$select=LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,TableType";
        let one = api_get(
            &fake,
            &token,
            &format!("/api/data/v9.2/EntityDefinitions(LogicalName='contact')?{select}"),
        );
        assert_eq!(one.status(), 200);
        let body = json(&one);
        assert_eq!(body["LogicalName"], "contact");
        assert_eq!(body["EntitySetName"], "contacts");
        assert_eq!(body["PrimaryIdAttribute"], "contactid");
        assert_eq!(body["PrimaryNameAttribute"], "fullname");
        assert_eq!(body["TableType"], "Standard");
        assert_eq!(body["MetadataId"].as_str().unwrap().len(), 36);
        assert!(body.get("SchemaName").is_none(), "not selected");
        let list = api_get(
            &fake,
            &token,
            &format!(
                "/api/data/v9.2/EntityDefinitions?{select}&$filter=EntitySetName%20eq%20'accounts'"
            ),
        );
        let value = json(&list)["value"].as_array().unwrap().clone();
        assert_eq!(value.len(), 1);
        assert_eq!(value[0]["LogicalName"], "account");
        let none = api_get(
            &fake,
            &token,
            "/api/data/v9.2/EntityDefinitions?$filter=EntitySetName%20eq%20'account'",
        );
        assert_eq!(json(&none)["value"], serde_json::json!([]));
        let missing = api_get(
            &fake,
            &token,
            "/api/data/v9.2/EntityDefinitions(LogicalName='accounts')",
        );
        assert_error(&missing, 404, "0x80040217");
        let unsupported = api_get(
            &fake,
            &token,
            "/api/data/v9.2/EntityDefinitions?$filter=contains(LogicalName,'a')",
        );
        assert_eq!(unsupported.status(), 400);
        let columns = api_get(
            &fake,
            &token,
            "/api/data/v9.2/EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName,AttributeType",
        );
        let value = json(&columns)["value"].as_array().unwrap().clone();
        let type_of = |name: &str| {
            value
                .iter()
                .find(|c| c["LogicalName"] == name)
                .map(|c| c["AttributeType"].as_str().unwrap().to_string())
        };
        assert_eq!(type_of("revenue").as_deref(), Some("Money"));
        assert_eq!(type_of("accountid").as_deref(), Some("Uniqueidentifier"));
        assert_eq!(
            type_of("_primarycontactid_value").as_deref(),
            Some("Lookup")
        );
        assert_eq!(type_of("name").as_deref(), Some("String"));
    }
}
