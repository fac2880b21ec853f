//! In-memory Dataverse tables: rows of JSON attributes plus a row version,
//! and the schema facts the Web API needs (keys, lookups, relationships).
//!
//! One `Table` per entity set. Query code only sees `Record`s and the column
//! list, so adding an entity set means adding a seed function here and
//! registering it in `seed`.

use crate::ids::stable_guid;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

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

    /// The primary key (or any GUID column), lower case.
    pub(crate) fn id(&self, primary_key: &str) -> String {
        self.get(primary_key)
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase()
    }
}

/// The attribute types the fake knows, named after their OData EDM types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnType {
    /// Primary keys and lookup (`_x_value`) columns.
    Guid,
    String,
    /// A currency column: an `Edm.Decimal` with a `$1,000.00` formatted value.
    Money,
}

impl ColumnType {
    pub(crate) fn edm_name(self) -> &'static str {
        match self {
            ColumnType::Guid => "Edm.Guid",
            ColumnType::String => "Edm.String",
            ColumnType::Money => "Edm.Decimal",
        }
    }
}

/// A many-to-one lookup: the `_x_value` column and its single-valued
/// navigation property (set with `x@odata.bind`, expanded with `$expand=x`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lookup {
    pub(crate) column: &'static str,
    pub(crate) navigation: &'static str,
    pub(crate) target_set: &'static str,
}

/// A one-to-many relationship seen from the "one" side: a collection-valued
/// navigation property listing the rows of `related_set` whose
/// `referencing_column` holds this row's id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OneToMany {
    pub(crate) navigation: &'static str,
    pub(crate) related_set: &'static str,
    pub(crate) referencing_column: &'static str,
}

#[derive(Clone, Debug)]
pub(crate) struct Table {
    /// Entity logical name, e.g. `account` (used in error messages and types).
    pub(crate) logical_name: &'static str,
    /// Primary key column, e.g. `accountid`; always returned, even with `$select`.
    pub(crate) primary_key: &'static str,
    /// Primary name column: the formatted value of a lookup to this table.
    pub(crate) primary_name: &'static str,
    /// Every column a query may name, with its type (queries are type-checked).
    pub(crate) columns: &'static [(&'static str, ColumnType)],
    /// The columns of the table's one alternate key (empty: none).
    pub(crate) alternate_key: &'static [&'static str],
    pub(crate) lookups: &'static [Lookup],
    pub(crate) collections: &'static [OneToMany],
    /// Rows in creation order, which is the default result order. Change
    /// them through `push`, `replace` and `remove`, which keep the indexes.
    pub(crate) rows: Vec<Record>,
    /// Row positions by lower-case primary key.
    by_id: HashMap<String, usize>,
    /// Row positions by alternate key value (see `alternate_key_of`).
    by_key: HashMap<String, usize>,
    /// While a transaction runs (`begin`): how to undo each change since.
    journal: Option<Vec<Undo>>,
}

/// One change to undo.
#[derive(Clone, Debug)]
enum Undo {
    Pushed,
    Replaced(usize, Record),
}

impl Table {
    pub(crate) fn column_type(&self, column: &str) -> Option<ColumnType> {
        self.columns
            .iter()
            .find(|(name, _)| *name == column)
            .map(|(_, t)| *t)
    }

    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(&id.to_ascii_lowercase()).copied()
    }

    /// The row whose alternate key has the values `fields` give it, if
    /// the key is whole in `fields` (the same equality as `$filter eq`:
    /// strings without case, numbers by value).
    pub(crate) fn position_by_key(&self, fields: &Map<String, Value>) -> Option<usize> {
        self.alternate_key_of(fields)
            .and_then(|key| self.by_key.get(&key).copied())
    }

    /// The index entry of a row's alternate key; `None` when the table has
    /// none or the row lacks a value for one of its columns.
    fn alternate_key_of(&self, fields: &Map<String, Value>) -> Option<String> {
        if self.alternate_key.is_empty() {
            return None;
        }
        let mut key = String::new();
        for column in self.alternate_key {
            match fields.get(*column)? {
                Value::Null => return None,
                Value::String(text) => key.push_str(&format!("s{}\u{0}", text.to_lowercase())),
                Value::Number(n) => key.push_str(&format!("n{}\u{0}", n.as_f64().unwrap_or(0.0))),
                other => key.push_str(&format!("o{other}\u{0}")),
            }
        }
        Some(key)
    }

    /// Starts a transaction: the changes until `commit` can be undone.
    pub(crate) fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    pub(crate) fn commit(&mut self) {
        self.journal = None;
    }

    /// Undoes every change since `begin`, last first.
    pub(crate) fn rollback(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        for undo in journal.into_iter().rev() {
            match undo {
                Undo::Pushed => {
                    if let Some(record) = self.rows.pop() {
                        self.by_id.remove(&record.id(self.primary_key));
                        if let Some(key) = self.alternate_key_of(&record.fields) {
                            self.by_key.remove(&key);
                        }
                    }
                }
                Undo::Replaced(i, old) => self.replace(i, old),
            }
        }
    }

    /// Adds a row at the end.
    pub(crate) fn push(&mut self, record: Record) {
        if let Some(journal) = &mut self.journal {
            journal.push(Undo::Pushed);
        }
        let position = self.rows.len();
        self.by_id.insert(record.id(self.primary_key), position);
        if let Some(key) = self.alternate_key_of(&record.fields) {
            self.by_key.insert(key, position);
        }
        self.rows.push(record);
    }

    /// Replaces row `i` (its primary key stays; its alternate key may change).
    pub(crate) fn replace(&mut self, i: usize, record: Record) {
        if let Some(journal) = &mut self.journal {
            journal.push(Undo::Replaced(i, self.rows[i].clone()));
        }
        if let Some(old) = self.alternate_key_of(&self.rows[i].fields) {
            self.by_key.remove(&old);
        }
        if let Some(key) = self.alternate_key_of(&record.fields) {
            self.by_key.insert(key, i);
        }
        self.rows[i] = record;
    }

    /// Removes row `i`; the rows after it move up.
    pub(crate) fn remove(&mut self, i: usize) -> Record {
        let record = self.rows.remove(i);
        self.reindex();
        record
    }

    fn indexed(mut self) -> Table {
        self.reindex();
        self
    }

    fn reindex(&mut self) {
        let rows = std::mem::take(&mut self.rows);
        self.by_id.clear();
        self.by_key.clear();
        for record in rows {
            self.push(record);
        }
    }

    pub(crate) fn find(&self, id: &str) -> Option<&Record> {
        self.position(id).map(|i| &self.rows[i])
    }

    pub(crate) fn lookup_by_navigation(&self, navigation: &str) -> Option<&'static Lookup> {
        self.lookups.iter().find(|l| l.navigation == navigation)
    }

    pub(crate) fn lookup_by_column(&self, column: &str) -> Option<&'static Lookup> {
        self.lookups.iter().find(|l| l.column == column)
    }

    pub(crate) fn collection(&self, navigation: &str) -> Option<&'static OneToMany> {
        self.collections.iter().find(|c| c.navigation == navigation)
    }

    /// Recomputes derived columns after a write (a contact's `fullname` is
    /// computed from its first and last name, as in Dataverse).
    pub(crate) fn derive(&self, record: &mut Record) {
        if self.logical_name == "contact" {
            let part = |c: &str| record.get(c).as_str().unwrap_or("").to_string();
            let full = format!("{} {}", part("firstname"), part("lastname"));
            let full = full.trim();
            record.fields.insert(
                "fullname".into(),
                if full.is_empty() {
                    Value::Null
                } else {
                    Value::String(full.to_string())
                },
            );
        }
    }
}

/// Every entity set of a fresh fake, keyed by entity set name.
pub(crate) fn seed(account_count: usize) -> BTreeMap<&'static str, Table> {
    let mut tables = BTreeMap::new();
    tables.insert("accounts", accounts(account_count));
    tables.insert("contacts", contacts(account_count));
    link_primary_contacts(&mut tables);
    tables
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("json! object literal"),
    }
}

fn account_id(i: usize) -> String {
    stable_guid(&format!("account/{i}"))
}

fn contact_id(i: usize) -> String {
    stable_guid(&format!("contact/{i}"))
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
            Record {
                fields: object(json!({
                    "accountid": account_id(i),
                    "name": name,
                    "accountnumber": format!("A-{i:04}"),
                    "revenue": revenue,
                    "_primarycontactid_value": null,
                })),
                version: 1_000_000 + 17 * i as u64,
            }
        })
        .collect();
    Table {
        logical_name: "account",
        primary_key: "accountid",
        primary_name: "name",
        columns: &[
            ("accountid", ColumnType::Guid),
            ("name", ColumnType::String),
            ("accountnumber", ColumnType::String),
            ("description", ColumnType::String),
            ("revenue", ColumnType::Money),
            ("_primarycontactid_value", ColumnType::Guid),
        ],
        alternate_key: &["accountnumber"],
        lookups: &[Lookup {
            column: "_primarycontactid_value",
            navigation: "primarycontactid",
            target_set: "contacts",
        }],
        collections: &[OneToMany {
            navigation: "contact_customer_accounts",
            related_set: "contacts",
            referencing_column: "_parentcustomerid_value",
        }],
        rows,
        by_id: HashMap::new(),
        by_key: HashMap::new(),
        journal: None,
    }
    .indexed()
}

/// Six contacts (names from Microsoft's sample data); most work for one of
/// the first three accounts, which exist whenever `account_count >= 3`.
pub(crate) fn contacts(account_count: usize) -> Table {
    const PEOPLE: [(&str, &str, usize); 6] = [
        ("Yvonne", "McKay", 1),
        ("Susanna", "Stubberod", 1),
        ("Nancy", "Anderson", 2),
        ("Maria", "Campbell", 3),
        ("Sidney", "Higa", 0),
        ("Scott", "Konersmann", 2),
    ];
    let rows = PEOPLE
        .iter()
        .enumerate()
        .map(|(n, &(first, last, account))| {
            let i = n + 1;
            let parent = (1..=account_count)
                .contains(&account)
                .then(|| account_id(account));
            Record {
                fields: object(json!({
                    "contactid": contact_id(i),
                    "fullname": format!("{first} {last}"),
                    "firstname": first,
                    "lastname": last,
                    "emailaddress1": format!("someone_{}@example.com", (b'a' + n as u8) as char),
                    "_parentcustomerid_value": parent,
                })),
                version: 1_100_000 + 13 * i as u64,
            }
        })
        .collect();
    Table {
        logical_name: "contact",
        primary_key: "contactid",
        primary_name: "fullname",
        columns: &[
            ("contactid", ColumnType::Guid),
            ("fullname", ColumnType::String),
            ("firstname", ColumnType::String),
            ("lastname", ColumnType::String),
            ("emailaddress1", ColumnType::String),
            ("_parentcustomerid_value", ColumnType::Guid),
        ],
        alternate_key: &[],
        lookups: &[Lookup {
            column: "_parentcustomerid_value",
            navigation: "parentcustomerid_account",
            target_set: "accounts",
        }],
        collections: &[],
        rows,
        by_id: HashMap::new(),
        by_key: HashMap::new(),
        journal: None,
    }
    .indexed()
}

/// Accounts 1–3 get a primary contact (contacts 1, 3 and 4).
fn link_primary_contacts(tables: &mut BTreeMap<&'static str, Table>) {
    let accounts = tables.get_mut("accounts").expect("seeded");
    for (row, contact) in [(0, 1), (1, 3), (2, 4)] {
        if let Some(record) = accounts.rows.get_mut(row) {
            record.fields.insert(
                "_primarycontactid_value".into(),
                Value::String(contact_id(contact)),
            );
        }
    }
}

/// Every table of the organization, by entity set name.
pub(crate) type Tables = BTreeMap<&'static str, Table>;

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

    #[test]
    fn contacts_belong_to_existing_accounts_and_accounts_have_primary_contacts() {
        let tables = seed(25);
        let (accounts, contacts) = (&tables["accounts"], &tables["contacts"]);
        assert_eq!(contacts.rows.len(), 6);
        assert_eq!(contacts.rows[0].get("fullname"), "Yvonne McKay");
        let contoso = accounts.rows[0].id("accountid");
        assert_eq!(contacts.rows[0].get("_parentcustomerid_value"), &*contoso);
        let primary = accounts.rows[0].get("_primarycontactid_value");
        assert_eq!(primary, &*contacts.rows[0].id("contactid"));
        assert!(accounts.rows[5].get("_primarycontactid_value").is_null());
        // With fewer accounts, no contact points at a missing one.
        let small = seed(1);
        assert!(
            small["contacts"].rows[2]
                .get("_parentcustomerid_value")
                .is_null()
        );
    }
}
