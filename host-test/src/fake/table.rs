//! In-memory Dataverse tables: rows of JSON attributes plus a row version.
//!
//! One `Table` per entity set. Query code only sees `Record`s and the column
//! list, so adding an entity set means adding a seed function here and
//! registering it in `Tables::seed`.

use super::ids::stable_guid;
use serde_json::{Map, Value, json};

/// One row. `fields` holds every attribute including the primary key;
/// `version` is Dataverse's `versionnumber`, surfaced as `@odata.etag`.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) fields: Map<String, Value>,
    pub(crate) version: u64,
}

impl Record {
    pub(crate) fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }

    pub(crate) fn get(&self, column: &str) -> &Value {
        self.fields.get(column).unwrap_or(&Value::Null)
    }
}

/// The attribute types the fake knows, named after their OData EDM types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Guid,
    String,
    Decimal,
}

impl ColumnType {
    pub(crate) fn edm_name(self) -> &'static str {
        match self {
            ColumnType::Guid => "Edm.Guid",
            ColumnType::String => "Edm.String",
            ColumnType::Decimal => "Edm.Decimal",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Table {
    /// Entity logical name, e.g. `account` (used in error messages and types).
    pub(crate) logical_name: &'static str,
    /// Primary key column, e.g. `accountid`; always returned, even with `$select`.
    pub(crate) primary_key: &'static str,
    /// Every column a query may name, with its type (queries are type-checked).
    pub(crate) columns: &'static [(&'static str, ColumnType)],
    /// Rows in creation order, which is the default result order.
    pub(crate) rows: Vec<Record>,
}

impl Table {
    pub(crate) fn column_type(&self, column: &str) -> Option<ColumnType> {
        self.columns
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, t)| *t)
    }

    pub(crate) fn find(&self, id: &str) -> Option<&Record> {
        self.rows.iter().find(|r| {
            r.get(self.primary_key)
                .as_str()
                .is_some_and(|v| v.eq_ignore_ascii_case(id))
        })
    }
}

/// The demo accounts: the first three carry well-known sample names, the rest
/// are numbered. Everything is derived from the index, so runs are repeatable.
pub(crate) fn accounts(count: usize) -> Table {
    const NAMES: [&str; 3] = ["Contoso Ltd", "Fabrikam Inc", "Adventure Works"];
    let rows = (1..=count)
        .map(|i| {
            let name = NAMES
                .get(i - 1)
                .map(|n| n.to_string())
                .unwrap_or_else(|| format!("Account {i:04}"));
            // Revenue is scrambled so that ordering by it differs from creation order.
            let revenue = ((i * 37) % 101) as f64 * 1000.0 + 500.0;
            let Value::Object(fields) = json!({
                "accountid": stable_guid(&format!("account/{i}")),
                "name": name,
                "accountnumber": format!("A-{i:04}"),
                "revenue": revenue,
            }) else {
                unreachable!("json! object literal")
            };
            Record {
                fields,
                version: 1_000_000 + 17 * i as u64,
            }
        })
        .collect();
    Table {
        logical_name: "account",
        primary_key: "accountid",
        columns: &[
            ("accountid", ColumnType::Guid),
            ("name", ColumnType::String),
            ("accountnumber", ColumnType::String),
            ("revenue", ColumnType::Decimal),
        ],
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_accounts_are_deterministic_and_named() {
        let (a, b) = (accounts(25), accounts(25));
        assert_eq!(a.rows.len(), 25);
        assert_eq!(a.rows[0].get("name"), "Contoso Ltd");
        assert_eq!(a.rows[3].get("name"), "Account 0004");
        assert_eq!(a.rows[24].get("accountnumber"), "A-0025");
        assert_eq!(a.rows[7].get("accountid"), b.rows[7].get("accountid"));
        let id = a.rows[4].get("accountid").as_str().unwrap().to_uppercase();
        assert!(a.find(&id).is_some());
    }
}
