//! Host-side defaults and builders for the WIT records (WIT has no default
//! values), so no caller spells every `None`:
//! `Query::new("accounts").select(["name"]).top(3)`,
//! `EntityRef::new("accounts", id)`, `Operation::function("RetrieveVersion")`,
//! `RequestOptions::default()`.

use dataverse_wasm::http::Method as CoreMethod;

use crate::session::{
    BatchOptions, ClientOptions, EntityRef, Method, Operation, OperationKind, Query, RequestOptions,
};

impl Query {
    /// Every row of `entity_set`, all columns, Dataverse's default page size.
    pub fn new(entity_set: impl Into<String>) -> Query {
        Query {
            entity_set: entity_set.into(),
            select: Vec::new(),
            filter: None,
            orderby: None,
            expand: None,
            apply: None,
            top: None,
            page_size: None,
            count: false,
        }
    }

    /// `$select`: the columns to return.
    pub fn select<I, S>(mut self, columns: I) -> Query
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.select = columns.into_iter().map(Into::into).collect();
        self
    }

    /// `$filter`.
    pub fn filter(mut self, filter: impl Into<String>) -> Query {
        self.filter = Some(filter.into());
        self
    }

    /// `$orderby`.
    pub fn orderby(mut self, orderby: impl Into<String>) -> Query {
        self.orderby = Some(orderby.into());
        self
    }

    /// `$expand`.
    pub fn expand(mut self, expand: impl Into<String>) -> Query {
        self.expand = Some(expand.into());
        self
    }

    /// `$apply`.
    pub fn apply(mut self, apply: impl Into<String>) -> Query {
        self.apply = Some(apply.into());
        self
    }

    /// `$top`: at most this many rows in all.
    pub fn top(mut self, top: u32) -> Query {
        self.top = Some(top);
        self
    }

    /// `Prefer: odata.maxpagesize`: rows per page.
    pub fn page_size(mut self, page_size: u32) -> Query {
        self.page_size = Some(page_size);
        self
    }

    /// `$count=true`: the total number of matching rows on the first page.
    pub fn count(mut self) -> Query {
        self.count = true;
        self
    }
}

impl EntityRef {
    /// The row of `entity_set` with `key` (a GUID, or an alternate key such
    /// as `accountnumber='A-1'`).
    pub fn new(entity_set: impl Into<String>, key: impl Into<String>) -> EntityRef {
        EntityRef {
            entity_set: entity_set.into(),
            key: key.into(),
        }
    }
}

impl Operation {
    /// An unbound OData function (GET, no side effects), e.g. `RetrieveVersion`.
    pub fn function(name: impl Into<String>) -> Operation {
        Operation {
            name: name.into(),
            kind: OperationKind::Function,
            bound: None,
            parameters: None,
        }
    }

    /// An unbound OData action (POST), e.g. a custom API.
    pub fn action(name: impl Into<String>) -> Operation {
        Operation {
            kind: OperationKind::Action,
            ..Operation::function(name)
        }
    }

    /// Bound to `row` instead of unbound.
    pub fn bound_to(mut self, row: EntityRef) -> Operation {
        self.bound = Some(row);
        self
    }

    /// The parameters, a JSON object such as `json!({"Text": "hi"})`.
    pub fn parameters(mut self, parameters: &serde_json::Value) -> Operation {
        self.parameters = Some(parameters.to_string());
        self
    }
}

/// The host's `Method` is the WIT enum; the names and their parsing are the core's.
impl From<Method> for CoreMethod {
    fn from(method: Method) -> CoreMethod {
        match method {
            Method::Get => CoreMethod::Get,
            Method::Post => CoreMethod::Post,
            Method::Patch => CoreMethod::Patch,
            Method::Put => CoreMethod::Put,
            Method::Delete => CoreMethod::Delete,
        }
    }
}

impl Method {
    /// The method as it goes on the wire: `GET`, `POST`, …
    pub fn as_str(self) -> &'static str {
        CoreMethod::from(self).as_str()
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    /// `GET`, `post`, … (any case); anything else names the five it can be.
    fn from_str(name: &str) -> Result<Method, String> {
        let core: CoreMethod = name.parse()?;
        let all = [
            Method::Get,
            Method::Post,
            Method::Patch,
            Method::Put,
            Method::Delete,
        ];
        Ok(all
            .into_iter()
            .find(|m| CoreMethod::from(*m) == core)
            .expect("the same five"))
    }
}

impl Default for ClientOptions {
    /// The component's defaults for every option.
    fn default() -> Self {
        crate::session::DEFAULT_CLIENT_OPTIONS
    }
}

impl Default for RequestOptions {
    /// No Dataverse header beyond the defaults.
    fn default() -> Self {
        RequestOptions {
            caller_object_id: None,
            bypass_custom_plugins: false,
            suppress_duplicate_detection: None,
            solution_unique_name: None,
            strong_consistency: false,
            include_annotations: None,
            return_representation: false,
            client_request_id: None,
        }
    }
}

impl Default for BatchOptions {
    /// Independent requests, stopping at the first failure (Dataverse's default).
    fn default() -> Self {
        BatchOptions {
            change_set: false,
            continue_on_error: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_in_any_case_and_name_the_five_otherwise() {
        for method in [
            Method::Get,
            Method::Post,
            Method::Patch,
            Method::Put,
            Method::Delete,
        ] {
            assert_eq!(method.as_str().parse::<Method>(), Ok(method));
            assert_eq!(method.as_str().to_lowercase().parse::<Method>(), Ok(method));
        }
        assert_eq!(
            "HEAD".parse::<Method>(),
            Err("method 'HEAD' is not one of GET, POST, PATCH, PUT, DELETE".to_string())
        );
        assert!("".parse::<Method>().is_err());
    }

    #[test]
    fn the_query_builder_sets_exactly_what_it_is_given() {
        let query = Query::new("accounts").select(["name", "revenue"]).top(3);
        assert_eq!(query.entity_set, "accounts");
        assert_eq!(query.select, ["name", "revenue"]);
        assert_eq!(query.top, Some(3));
        assert_eq!(
            (query.filter, query.page_size, query.count),
            (None, None, false)
        );
        let query = Query::new("contacts")
            .filter("statecode eq 0")
            .orderby("fullname")
            .expand("parentcustomerid_account($select=name)")
            .apply("groupby((statecode))")
            .page_size(50)
            .count();
        assert_eq!(query.filter.as_deref(), Some("statecode eq 0"));
        assert_eq!(query.orderby.as_deref(), Some("fullname"));
        assert_eq!(query.page_size, Some(50));
        assert!(query.count && query.select.is_empty() && query.top.is_none());
    }

    #[test]
    fn operations_are_unbound_functions_unless_told_otherwise() {
        let version = Operation::function("RetrieveVersion");
        assert!(matches!(version.kind, OperationKind::Function));
        assert!(version.bound.is_none() && version.parameters.is_none());
        let touch = Operation::action("sample_Touch")
            .bound_to(EntityRef::new("accounts", "accountnumber='A-1'"))
            .parameters(&serde_json::json!({"Text": "hi"}));
        assert!(matches!(touch.kind, OperationKind::Action));
        assert_eq!(
            touch.bound.map(|row| row.key).as_deref(),
            Some("accountnumber='A-1'")
        );
        assert_eq!(touch.parameters.as_deref(), Some(r#"{"Text":"hi"}"#));
    }
}
