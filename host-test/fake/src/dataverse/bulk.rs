//! The bulk operation messages bound to an entity set:
//! `POST {set}/Microsoft.Dynamics.CRM.CreateMultiple` (200 with
//! `{"Ids":[…]}` in the targets' order), `UpdateMultiple` and
//! `UpsertMultiple` (204). Every target must carry the table's
//! `@odata.type`; an update names its row by primary key, an upsert by
//! primary key or by `@odata.id` (`accounts(accountnumber='A-1')`). On a
//! standard table the message is one transaction: the first target that
//! fails fails the request and nothing of it is kept.

use super::context::Ctx;
use super::path::{self, Key};
use super::records::{create_row, json_body, upsert_row};
use super::reply::{DvError, Reply, bad_request, require};
use super::table::Table;
use crate::State;
use bytes::Bytes;
use http::{Method, Request};
use serde_json::{Map, Value, json};

/// The bulk messages the fake knows, by their action name.
pub(crate) fn is_bulk(name: &str) -> bool {
    matches!(name, "CreateMultiple" | "UpdateMultiple" | "UpsertMultiple")
}

pub(crate) fn handle(
    ctx: &Ctx,
    state: &mut State,
    req: &Request<Bytes>,
    set: &str,
    message: &str,
) -> Result<Reply, DvError> {
    require(req, Method::POST)?;
    let body = json_body(req)?;
    let Some(Value::Array(targets)) = body.get("Targets") else {
        return Err(bad_request(format!(
            "The parameter 'Targets' of {message} must be a collection of entities."
        )));
    };
    let table = &state.tables[set];
    let odata_type = format!("Microsoft.Dynamics.CRM.{}", table.logical_name);
    let primary_key = table.primary_key;
    // One transaction: every change journaled, undone on a failure.
    let version = state.version;
    state.tables.get_mut(set).expect("a known set").begin();
    let mut ids = Vec::with_capacity(targets.len());
    let mut apply = || -> Result<(), DvError> {
        for (index, target) in targets.iter().enumerate() {
            let Value::Object(fields) = target else {
                return Err(bad_request(format!(
                    "Targets[{index}] of {message} is not an entity."
                )));
            };
            match fields.get("@odata.type").and_then(Value::as_str) {
                Some(t) if t == odata_type => {}
                Some(t) => {
                    return Err(bad_request(format!(
                        "Targets[{index}] is of type '{t}'; {message} on {set} takes '{odata_type}' only."
                    )));
                }
                None => {
                    return Err(bad_request(format!(
                        "Targets[{index}] has no '@odata.type' annotation: {message} needs one on every target."
                    )));
                }
            }
            let key = target_key(ctx, &state.tables[set], set, fields)?;
            match (message, key) {
                ("CreateMultiple", _) => ids.push(create_row(ctx, state, set, fields)?),
                ("UpdateMultiple", Some(key @ Key::Id(_))) => {
                    upsert_row(ctx, state, set, &key, fields, Some("*"), None)?;
                }
                ("UpsertMultiple", Some(key)) => {
                    upsert_row(ctx, state, set, &key, fields, None, None)?;
                }
                _ => {
                    return Err(bad_request(format!(
                        "Targets[{index}] of {message} names no row: give its {primary_key}{}.",
                        if message == "UpsertMultiple" {
                            " or an @odata.id"
                        } else {
                            ""
                        }
                    )));
                }
            }
        }
        Ok(())
    };
    let applied = apply();
    let table = state.tables.get_mut(set).expect("a known set");
    if let Err(error) = applied {
        table.rollback();
        state.version = version;
        return Err(error);
    }
    table.commit();
    if message == "CreateMultiple" {
        Ok(Reply::json(json!({
            "@odata.context": format!("{}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse", ctx.base),
            "Ids": ids,
        })))
    } else {
        Ok(Reply::no_content())
    }
}

/// The row a target names: by `@odata.id` (a reference into this very
/// entity set, by primary or alternate key) or by its primary key.
fn target_key(
    ctx: &Ctx,
    table: &Table,
    set: &str,
    fields: &Map<String, Value>,
) -> Result<Option<Key>, DvError> {
    if let Some(reference) = fields.get("@odata.id").and_then(Value::as_str) {
        let (target_set, raw_key) = path::entity_reference(ctx, reference)?;
        if target_set != set {
            return Err(bad_request(format!(
                "The @odata.id '{reference}' does not point into the '{set}' entity set."
            )));
        }
        return path::parse_key(table, &raw_key).map(Some);
    }
    match fields.get(table.primary_key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_str().and_then(path::guid) {
            Some(id) => Ok(Some(Key::Id(id))),
            None => Err(bad_request(format!(
                "Cannot convert the literal '{value}' to the expected type 'Edm.Guid'."
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::*;
    use crate::*;
    use serde_json::{Value, json};

    fn post(fake: &Fake, token: &str, message: &str, targets: Value) -> http::Response<Bytes> {
        send(
            fake,
            token,
            "POST",
            &format!("accounts/Microsoft.Dynamics.CRM.{message}"),
            &[("content-type", "application/json")],
            &json!({ "Targets": targets }).to_string(),
        )
    }

    fn account(fields: Value) -> Value {
        let mut target = json!({"@odata.type": "Microsoft.Dynamics.CRM.account"});
        target
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        target
    }

    use bytes::Bytes;

    #[test]
    fn create_multiple_answers_the_ids_in_order_and_every_row_is_there() {
        let (fake, token) = demo();
        let given = "8f4c3f92-312b-ee11-bdf4-000d3a993550";
        let resp = post(
            &fake,
            &token,
            "CreateMultiple",
            json!([
                account(json!({"name": "Bulk 1"})),
                account(json!({"name": "Bulk 2", "accountid": given})),
            ]),
        );
        assert_eq!(resp.status(), 200, "{:?}", resp.body());
        let body = json(&resp);
        assert_eq!(
            body["@odata.context"],
            format!("{BASE}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
        );
        let ids = body["Ids"].as_array().unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[1], given);
        let names = fake.account_names();
        assert_eq!(names.len(), 27);
        assert_eq!(&names[25..], ["Bulk 1", "Bulk 2"]);
        assert_eq!(resp.headers()["x-ms-dop-hint"], "4");
    }

    #[test]
    fn one_bad_target_fails_the_request_and_nothing_of_it_is_kept() {
        let (fake, token) = demo();
        for (targets, why) in [
            (
                json!([account(json!({"name": "Kept?"})), {"name": "no type"}]),
                "Targets[1] has no '@odata.type'",
            ),
            (
                json!([account(json!({"name": "Kept?"})), {"@odata.type": "Microsoft.Dynamics.CRM.contact", "name": "x"}]),
                "Targets[1] is of type 'Microsoft.Dynamics.CRM.contact'",
            ),
            (
                json!([
                    account(json!({"name": "Kept?"})),
                    account(json!({"nosuchcolumn": 1}))
                ]),
                "nosuchcolumn",
            ),
            (
                // Its alternate key is taken by the seeded A-0001.
                json!([
                    account(json!({"name": "Kept?"})),
                    account(json!({"accountnumber": "A-0001"}))
                ]),
                "already exists",
            ),
        ] {
            let resp = post(&fake, &token, "CreateMultiple", targets);
            assert!(resp.status().is_client_error(), "{why}: {}", resp.status());
            let message = json(&resp)["error"]["message"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(message.contains(why), "{message}");
            assert_eq!(fake.account_names().len(), 25, "{why}");
        }
        let resp = post(&fake, &token, "CreateMultiple", json!("nope"));
        assert_eq!(resp.status(), 400);
    }

    #[test]
    fn update_multiple_needs_existing_rows_by_primary_key() {
        let (fake, token) = demo();
        let resp = post(
            &fake,
            &token,
            "UpdateMultiple",
            json!([
                account(json!({"accountid": account_id(1), "name": "First"})),
                account(json!({"accountid": account_id(2), "name": "Second"})),
            ]),
        );
        assert_eq!(resp.status(), 204, "{:?}", resp.body());
        assert_eq!(&fake.account_names()[..2], ["First", "Second"]);
        let missing = post(
            &fake,
            &token,
            "UpdateMultiple",
            json!([
                account(json!({"accountid": account_id(3), "name": "Third"})),
                account(json!({"accountid": "00000000-0000-0000-0000-000000000001", "name": "x"})),
            ]),
        );
        assert_eq!(missing.status(), 404);
        assert_eq!(fake.account_names()[2], "Adventure Works", "rolled back");
        let unnamed = post(
            &fake,
            &token,
            "UpdateMultiple",
            json!([account(json!({"name": "x"}))]),
        );
        assert_eq!(unnamed.status(), 400);
    }

    #[test]
    fn upsert_multiple_creates_or_updates_by_alternate_key_or_id() {
        let (fake, token) = demo();
        let resp = post(
            &fake,
            &token,
            "UpsertMultiple",
            json!([
                account(
                    json!({"@odata.id": "accounts(accountnumber='A-0001')", "name": "Renamed"})
                ),
                account(json!({"@odata.id": "accounts(accountnumber='NEW-1')", "name": "New one"})),
                account(
                    json!({"accountid": "8f4c3f92-312b-ee11-bdf4-000d3a993550", "name": "By id"})
                ),
            ]),
        );
        assert_eq!(resp.status(), 204, "{:?}", resp.body());
        let names = fake.account_names();
        assert_eq!(names.len(), 27);
        assert_eq!(names[0], "Renamed");
        assert_eq!(&names[25..], ["New one", "By id"]);
        // Again: the same rows, updated, none added.
        let again = post(
            &fake,
            &token,
            "UpsertMultiple",
            json!([account(
                json!({"@odata.id": "accounts(accountnumber='NEW-1')", "name": "New two"})
            )]),
        );
        assert_eq!(again.status(), 204);
        assert_eq!(fake.account_names().len(), 27);
        let elsewhere = post(
            &fake,
            &token,
            "UpsertMultiple",
            json!([account(json!({"@odata.id": "contacts(x='1')"}))]),
        );
        assert_eq!(elsewhere.status(), 400);
    }

    #[test]
    fn the_request_limit_throttles_an_app_until_its_window_ends() {
        let config = FakeConfig {
            request_limit: Some(RequestLimit {
                requests: 2,
                window_ms: 300,
            }),
            ..FakeConfig::default()
        };
        let fake = Fake::new(config);
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        let whoami = || api_get(&fake, &token, "/api/data/v9.2/WhoAmI");
        assert_eq!(whoami().status(), 200);
        assert_eq!(whoami().status(), 200);
        let throttled = whoami();
        assert_eq!(throttled.headers()["retry-after"], "1");
        let message = assert_error(&throttled, 429, "0x80072322");
        assert_eq!(
            message,
            "Number of requests exceeded the limit of 2 over time window of 1 seconds."
        );
        std::thread::sleep(std::time::Duration::from_millis(320));
        assert_eq!(whoami().status(), 200);
    }
}
