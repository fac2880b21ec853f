//! Relationships: `$expand` of navigation properties, reading related rows,
//! and associating/disassociating rows through `…/$ref`.
//!
//! The fake models one-to-many relationships only: a single-valued navigation
//! property is a lookup column on the row itself (`primarycontactid` ↔
//! `_primarycontactid_value`); a collection-valued one lists the rows of the
//! related table whose lookup points back (`contact_customer_accounts` ↔
//! contacts' `_parentcustomerid_value`). Associating writes that lookup.

use super::context::Ctx;
use super::path::Segment;
use super::records::{self, Scope, json_body, locate, query_options, resolve_reference};
use super::render::{context_url, render};
use super::reply::{
    DvError, ODATA_ERROR, Reply, bad_request, method_not_allowed, prefer, segment_not_found,
};
use super::table::Record;
use crate::State;
use crate::percent;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

/// Writes a lookup column of one row (bumping its version).
fn set_lookup(state: &mut State, set: &str, index: usize, column: &str, value: Value) {
    let version = state.next_version();
    let row = &mut state.tables.get_mut(set).expect("known set").rows[index];
    row.fields.insert(column.into(), value);
    row.version = version;
}

/// The entity reference in a `$ref` body: `{"@odata.id":"…"}`.
fn odata_id(req: &Request<Bytes>) -> Result<String, DvError> {
    json_body(req)?
        .get("@odata.id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad_request("The request body must contain an '@odata.id' property."))
}

/// `set(key)/nav[(key)][/$ref]`.
pub(crate) fn navigate(
    ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
    raw_key: &str,
    nav: &Segment,
    rest: &[Segment],
) -> Result<Reply, DvError> {
    let reference = match rest {
        [] => false,
        [r] if r.name == "$ref" && r.args.is_none() => true,
        [other, ..] => return Err(segment_not_found(&other.name)),
    };
    let table = &state.tables[set];
    let index = locate(table, raw_key)?;
    let id = table.rows[index].id(table.primary_key);
    if let Some(lookup) = table.lookup_by_navigation(&nav.name) {
        if nav.args.is_some() {
            return Err(segment_not_found(&nav.name));
        }
        let target = &state.tables[lookup.target_set];
        let current = table.rows[index]
            .get(lookup.column)
            .as_str()
            .and_then(|id| target.find(id));
        return match (reference, req.method()) {
            (_, &Method::GET) => match current {
                None => Ok(Reply::no_content()),
                Some(r) if reference => Ok(Reply::json(json!({
                    "@odata.context": format!("{}/$metadata#$ref", ctx.base),
                    "@odata.id": ctx.entity_url(lookup.target_set, &r.id(target.primary_key)),
                }))),
                Some(r) => {
                    let query = query_options(req, target)?;
                    let mut row = render(
                        &state.tables,
                        target,
                        r,
                        query.select.as_deref(),
                        &query.expand,
                        &prefer(req),
                    )?;
                    let context = context_url(
                        &ctx.base,
                        lookup.target_set,
                        target,
                        query.select.as_deref(),
                        &query.expand,
                    );
                    row.insert(
                        "@odata.context".into(),
                        Value::String(format!("{context}/$entity")),
                    );
                    Ok(Reply::json(Value::Object(row)))
                }
            },
            (true, &Method::PUT) => {
                let target_id =
                    resolve_reference(ctx, &state.tables, lookup.target_set, &odata_id(req)?)?;
                set_lookup(state, set, index, lookup.column, Value::String(target_id));
                Ok(Reply::no_content())
            }
            (true, &Method::DELETE) => {
                set_lookup(state, set, index, lookup.column, Value::Null);
                Ok(Reply::no_content())
            }
            _ => Err(method_not_allowed(req)),
        };
    }
    let Some(collection) = table.collection(&nav.name) else {
        return Err(segment_not_found(&nav.name));
    };
    let related_set = collection.related_set;
    let column = collection.referencing_column;
    let related = &state.tables[related_set];
    let is_member = |r: &Record| r.get(column).as_str() == Some(id.as_str());
    match (&nav.args, reference, req.method()) {
        (None, false, &Method::GET) => {
            let scope = Scope {
                path: format!("{set}({raw_key})/{}", nav.name),
                column,
                id: id.clone(),
            };
            records::retrieve_multiple(ctx, state, req, related_set, Some(scope))
        }
        (None, true, &Method::GET) => {
            let refs: Vec<Value> = related
                .rows
                .iter()
                .filter(|r| is_member(r))
                .map(|r| json!({"@odata.id": ctx.entity_url(related_set, &r.id(related.primary_key))}))
                .collect();
            Ok(Reply::json(json!({
                "@odata.context": format!("{}/$metadata#Collection($ref)", ctx.base),
                "value": refs,
            })))
        }
        (None, true, &Method::POST) => {
            let member = resolve_reference(ctx, &state.tables, related_set, &odata_id(req)?)?;
            let i = related.position(&member).expect("just resolved");
            set_lookup(state, related_set, i, column, Value::String(id));
            Ok(Reply::no_content())
        }
        (Some(member_key), true, &Method::DELETE) => {
            let i = locate(related, member_key)?;
            disassociate(state, related_set, i, column, &id)
        }
        (None, true, &Method::DELETE) => {
            // The alternative form: `…/nav/$ref?$id=<entity URL>`.
            let target = percent::parse_pairs(req.uri().query().unwrap_or(""))
                .into_iter()
                .find(|(k, _)| k == "$id")
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    DvError::new(
                        StatusCode::BAD_REQUEST,
                        ODATA_ERROR,
                        "A DELETE on a collection $ref needs the member's key or an $id query option.",
                    )
                })?;
            let member = resolve_reference(ctx, &state.tables, related_set, &target)?;
            let i = related.position(&member).expect("just resolved");
            disassociate(state, related_set, i, column, &id)
        }
        (Some(member_key), false, &Method::GET) => {
            let record = &related.rows[locate(related, member_key)?];
            if !is_member(record) {
                return Err(records::not_found(
                    related,
                    &super::path::parse_key(related, member_key)?,
                ));
            }
            let query = query_options(req, related)?;
            let mut row = render(
                &state.tables,
                related,
                record,
                query.select.as_deref(),
                &query.expand,
                &prefer(req),
            )?;
            let context = context_url(
                &ctx.base,
                related_set,
                related,
                query.select.as_deref(),
                &query.expand,
            );
            row.insert(
                "@odata.context".into(),
                Value::String(format!("{context}/$entity")),
            );
            Ok(Reply::json(Value::Object(row)))
        }
        _ => Err(method_not_allowed(req)),
    }
}

/// Clears the member's lookup if it points at the parent (else nothing to do).
fn disassociate(
    state: &mut State,
    related_set: &str,
    index: usize,
    column: &str,
    parent_id: &str,
) -> Result<Reply, DvError> {
    if state.tables[related_set].rows[index].get(column).as_str() == Some(parent_id) {
        set_lookup(state, related_set, index, column, Value::Null);
    }
    Ok(Reply::no_content())
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;
    use serde_json::json;

    fn contact_names(fake: &crate::Fake, token: &str, account: usize) -> Vec<String> {
        let body = json(&send(
            fake,
            token,
            "GET",
            &format!(
                "accounts({})/contact_customer_accounts?$select=fullname",
                account_id(account)
            ),
            &[],
            "",
        ));
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["fullname"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn collection_ref_associates_by_absolute_or_relative_url_and_disassociates() {
        let (fake, token) = demo();
        let refs = format!("accounts({})/contact_customer_accounts/$ref", account_id(4));
        let absolute = json!({"@odata.id": format!("{BASE}/contacts({})", contact_id(5))});
        assert_eq!(
            send(&fake, &token, "POST", &refs, &[], &absolute.to_string()).status(),
            204
        );
        let relative = json!({"@odata.id": format!("contacts({})", contact_id(1))});
        assert_eq!(
            send(&fake, &token, "POST", &refs, &[], &relative.to_string()).status(),
            204
        );
        assert_eq!(
            contact_names(&fake, &token, 4),
            ["Yvonne McKay", "Sidney Higa"]
        );
        // Re-parenting moved Yvonne away from Contoso.
        assert_eq!(contact_names(&fake, &token, 1), ["Susanna Stubberod"]);
        let listed = json(&send(&fake, &token, "GET", &refs, &[], ""));
        assert_eq!(
            listed["value"][0]["@odata.id"],
            format!("{BASE}/contacts({})", contact_id(1))
        );

        let one = format!(
            "accounts({})/contact_customer_accounts({})/$ref",
            account_id(4),
            contact_id(5)
        );
        assert_eq!(send(&fake, &token, "DELETE", &one, &[], "").status(), 204);
        let by_id = format!("{refs}?$id={BASE}/contacts({})", contact_id(1));
        assert_eq!(send(&fake, &token, "DELETE", &by_id, &[], "").status(), 204);
        assert!(contact_names(&fake, &token, 4).is_empty());
    }

    #[test]
    fn single_valued_ref_is_set_with_put_and_cleared_with_delete() {
        let (fake, token) = demo();
        let nav = format!("accounts({})/primarycontactid", account_id(5));
        assert_eq!(send(&fake, &token, "GET", &nav, &[], "").status(), 204);
        let body = json!({"@odata.id": format!("{BASE}/contacts({})", contact_id(6))});
        let put = send(
            &fake,
            &token,
            "PUT",
            &format!("{nav}/$ref"),
            &[],
            &body.to_string(),
        );
        assert_eq!(put.status(), 204);
        let contact = json(&send(
            &fake,
            &token,
            "GET",
            &format!("{nav}?$select=fullname"),
            &[],
            "",
        ));
        assert_eq!(contact["fullname"], "Scott Konersmann");
        let reference = json(&send(&fake, &token, "GET", &format!("{nav}/$ref"), &[], ""));
        assert_eq!(
            reference["@odata.id"],
            format!("{BASE}/contacts({})", contact_id(6))
        );
        assert_eq!(
            send(&fake, &token, "DELETE", &format!("{nav}/$ref"), &[], "").status(),
            204
        );
        assert_eq!(send(&fake, &token, "GET", &nav, &[], "").status(), 204);
    }

    #[test]
    fn refs_to_missing_rows_are_404() {
        let (fake, token) = demo();
        let missing = "00000000-0000-0000-0000-00000000000f";
        let body = json!({"@odata.id": format!("contacts({missing})")}).to_string();
        let resp = send(
            &fake,
            &token,
            "POST",
            &format!("accounts({})/contact_customer_accounts/$ref", account_id(1)),
            &[],
            &body,
        );
        let message = assert_error(&resp, 404, "0x80040217");
        assert_eq!(
            message,
            format!("contact With Id = {missing} Does Not Exist")
        );
        let resp = send(
            &fake,
            &token,
            "PUT",
            &format!("accounts({missing})/primarycontactid/$ref"),
            &[],
            &json!({"@odata.id": format!("contacts({})", contact_id(1))}).to_string(),
        );
        assert_error(&resp, 404, "0x80040217");
        let resp = send(
            &fake,
            &token,
            "DELETE",
            &format!(
                "accounts({})/contact_customer_accounts({missing})/$ref",
                account_id(1)
            ),
            &[],
            "",
        );
        assert_error(&resp, 404, "0x80040217");
    }
}
