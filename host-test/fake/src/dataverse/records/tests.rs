//! Tests of table rows over the Web API: retrieve, create, update/upsert, delete, properties.

use crate::test_support::*;
use serde_json::json;

#[test]
fn retrieve_by_alternate_key_with_select_and_expand() {
    let (fake, token) = demo();
    let resp = send(
        &fake,
        &token,
        "GET",
        "accounts(accountnumber='A-0001')?$select=name&$expand=primarycontactid($select=fullname)",
        &[],
        "",
    );
    assert_eq!(resp.status(), 200);
    let body = json(&resp);
    assert_eq!(body["name"], "Contoso Ltd");
    assert_eq!(body["accountid"], account_id(1));
    assert_eq!(body["primarycontactid"]["fullname"], "Yvonne McKay");
    assert_eq!(body["primarycontactid"]["contactid"], contact_id(1));
    assert!(body["primarycontactid"]["@odata.etag"].is_string());
    assert_eq!(
        body["@odata.context"],
        format!("{BASE}/$metadata#accounts(name,accountid,primarycontactid(fullname))/$entity")
    );
    let body = json(&send(
        &fake,
        &token,
        "GET",
        &format!(
            "accounts({})?$expand=contact_customer_accounts($select=fullname)",
            account_id(2)
        ),
        &[],
        "",
    ));
    let names: Vec<&str> = body["contact_customer_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fullname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Nancy Anderson", "Scott Konersmann"]);
    assert_eq!(body["accountnumber"], "A-0002");
}

#[test]
fn missing_rows_are_404_with_dataverse_wording_for_id_and_alternate_key() {
    let (fake, token) = demo();
    let id = "00000000-0000-0000-0000-000000000001";
    let resp = send(&fake, &token, "GET", &format!("accounts({id})"), &[], "");
    let message = assert_error(&resp, 404, "0x80040217");
    assert_eq!(message, format!("account With Id = {id} Does Not Exist"));
    let resp = send(
        &fake,
        &token,
        "GET",
        "accounts(accountnumber='NOPE')",
        &[],
        "",
    );
    let message = assert_error(&resp, 404, "0x80060891");
    assert_eq!(
        message,
        "A record with the specified key values does not exist in account entity"
    );
    let resp = send(
        &fake,
        &token,
        "GET",
        "accounts(name='Contoso Ltd')",
        &[],
        "",
    );
    assert_error(&resp, 400, "0x80060888");
}

#[test]
fn unsupported_expand_is_400() {
    let (fake, token) = demo();
    for query in [
        "$expand=primarycontactid($filter=fullname eq 'x')",
        "$expand=nosuch",
        "$expand=primarycontactid($select=nosuch)",
    ] {
        let path = format!("accounts({})?{query}", account_id(1));
        assert_error(
            &send(&fake, &token, "GET", &path, &[], ""),
            400,
            "0x80060888",
        );
    }
}

#[test]
fn formatted_values_come_only_with_include_annotations() {
    let (fake, token) = demo();
    let path = format!(
        "accounts({})?$select=name,revenue,_primarycontactid_value",
        account_id(1)
    );
    let plain = json(&send(&fake, &token, "GET", &path, &[], ""));
    assert!(
        plain
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.contains("FormattedValue"))
    );

    let prefer = [("Prefer", "odata.include-annotations=\"*\"")];
    let resp = send(&fake, &token, "GET", &path, &prefer, "");
    assert_eq!(
        resp.headers()["preference-applied"],
        "odata.include-annotations=\"*\""
    );
    let row = json(&resp);
    let revenue = row["revenue"].as_f64().unwrap();
    assert_eq!(
        row["revenue@OData.Community.Display.V1.FormattedValue"],
        crate::dataverse::annotations::format_money(revenue)
    );
    assert!(
        row["revenue@OData.Community.Display.V1.FormattedValue"]
            .as_str()
            .unwrap()
            .starts_with('$')
    );
    assert_eq!(
        row["_primarycontactid_value@OData.Community.Display.V1.FormattedValue"],
        "Yvonne McKay"
    );
    assert_eq!(
        row["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "contact"
    );
    assert_eq!(
        row["_primarycontactid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"],
        "primarycontactid"
    );

    let only_formatted = [(
        "Prefer",
        "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
    )];
    let row = json(&send(&fake, &token, "GET", &path, &only_formatted, ""));
    assert!(row["revenue@OData.Community.Display.V1.FormattedValue"].is_string());
    assert!(
        row.get("_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname")
            .is_none()
    );
}

#[test]
fn create_answers_204_with_odata_entity_id_and_the_row_exists() {
    let (fake, token) = demo();
    let resp = send(
        &fake,
        &token,
        "POST",
        "accounts",
        &[("Content-Type", "application/json")],
        r#"{"name":"Northwind","revenue":1000,"accountnumber":"N-1"}"#,
    );
    assert_eq!(resp.status(), 204, "{:?}", resp.body());
    assert!(resp.body().is_empty());
    let url = resp.headers()["odata-entityid"]
        .to_str()
        .unwrap()
        .to_string();
    let id = url
        .strip_prefix(&format!("{BASE}/accounts("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap();
    assert_eq!(id.len(), 36);
    let row = json(&send(
        &fake,
        &token,
        "GET",
        &format!("accounts({id})"),
        &[],
        "",
    ));
    assert_eq!(
        (row["name"].as_str(), row["revenue"].as_f64()),
        (Some("Northwind"), Some(1000.0))
    );
    assert!(row["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    assert_eq!(fake.account_names().last().unwrap(), "Northwind");
    // Nothing is required: Dataverse creates an account without a name.
    let empty = send(&fake, &token, "POST", "accounts", &[], "{}");
    assert_eq!(empty.status(), 204);
}

#[test]
fn create_with_representation_answers_201_with_the_row() {
    let (fake, token) = demo();
    let resp = send(
        &fake,
        &token,
        "POST",
        "accounts?$select=name",
        &[("Prefer", "return=representation")],
        r#"{"name":"Litware"}"#,
    );
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["preference-applied"],
        "return=representation"
    );
    assert!(resp.headers().get("odata-entityid").is_none());
    let row = json(&resp);
    assert_eq!(row["name"], "Litware");
    assert_eq!(
        row["@odata.context"],
        format!("{BASE}/$metadata#accounts(name,accountid)/$entity")
    );
    assert!(row["@odata.etag"].is_string() && row["accountid"].is_string());
}

#[test]
fn create_binds_lookups_by_relative_or_absolute_url() {
    let (fake, token) = demo();
    for reference in [
        format!("/contacts({})", contact_id(2)),
        format!("contacts({})", contact_id(2)),
        format!("{BASE}/contacts({})", contact_id(2)),
    ] {
        let body = json!({"name": "Bound", "primarycontactid@odata.bind": reference});
        let resp = send(
            &fake,
            &token,
            "POST",
            "accounts?$expand=primarycontactid($select=fullname)",
            &[("Prefer", "return=representation")],
            &body.to_string(),
        );
        assert_eq!(resp.status(), 201, "{:?}", resp.body());
        let row = json(&resp);
        assert_eq!(row["_primarycontactid_value"], contact_id(2));
        assert_eq!(row["primarycontactid"]["fullname"], "Susanna Stubberod");
    }
}

#[test]
fn create_rejects_unknown_properties_bad_types_and_missing_bind_targets() {
    let (fake, token) = demo();
    let post = |body: &str| send(&fake, &token, "POST", "accounts", &[], body);
    let message = assert_error(&post(r#"{"name":"x","nosuch":1}"#), 400, "0x80048d19");
    assert_eq!(
        message,
        "Invalid property 'nosuch' was found in entity 'Microsoft.Dynamics.CRM.account'."
    );
    assert_error(
        &post(r#"{"_primarycontactid_value":"x"}"#),
        400,
        "0x80048d19",
    );
    assert_error(&post(r#"{"revenue":"lots"}"#), 400, "0x80048d19");
    assert_error(&post("not json"), 400, "0x80048d19");
    let missing =
        json!({"primarycontactid@odata.bind": "/contacts(00000000-0000-0000-0000-000000000009)"});
    assert_error(&post(&missing.to_string()), 404, "0x80040217");
    let wrong_set = json!({"primarycontactid@odata.bind": format!("/accounts({})", account_id(1))});
    assert_error(&post(&wrong_set.to_string()), 400, "0x80060888");
    let duplicate = json!({"accountnumber": "A-0001"});
    assert_error(&post(&duplicate.to_string()), 412, "0x80040237");
    assert_eq!(fake.account_names().len(), 25);
}

#[test]
fn patch_without_if_match_upserts_by_id_or_alternate_key() {
    let (fake, token) = demo();
    let id = "11111111-2222-4333-8444-555555555555";
    let resp = send(
        &fake,
        &token,
        "PATCH",
        &format!("accounts({id})"),
        &[],
        r#"{"name":"Upserted"}"#,
    );
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["odata-entityid"],
        format!("{BASE}/accounts({id})")
    );
    let row = json(&send(
        &fake,
        &token,
        "GET",
        &format!("accounts({id})"),
        &[],
        "",
    ));
    assert_eq!(row["name"], "Upserted");

    let resp = send(
        &fake,
        &token,
        "PATCH",
        "accounts(accountnumber='Z-9')",
        &[],
        r#"{"name":"By key"}"#,
    );
    assert_eq!(resp.status(), 204);
    let row = json(&send(
        &fake,
        &token,
        "GET",
        "accounts(accountnumber='Z-9')",
        &[],
        "",
    ));
    assert_eq!(
        (row["name"].as_str(), row["accountnumber"].as_str()),
        (Some("By key"), Some("Z-9"))
    );

    // The second identical upsert updates: still one row.
    send(
        &fake,
        &token,
        "PATCH",
        "accounts(accountnumber='Z-9')",
        &[],
        r#"{"name":"Again"}"#,
    );
    assert_eq!(
        fake.account_names()
            .iter()
            .filter(|n| *n == "Again")
            .count(),
        1
    );
    assert_eq!(fake.account_names().len(), 27);
}

#[test]
fn if_match_star_prevents_create_and_a_stale_etag_is_412() {
    let (fake, token) = demo();
    let missing = "accounts(00000000-0000-0000-0000-0000000000aa)";
    let resp = send(
        &fake,
        &token,
        "PATCH",
        missing,
        &[("If-Match", "*")],
        r#"{"name":"x"}"#,
    );
    let message = assert_error(&resp, 404, "0x80040217");
    assert!(message.ends_with("Does Not Exist"));
    assert_eq!(fake.account_names().len(), 25);

    let path = format!("accounts({})", account_id(1));
    let etag = json(&send(&fake, &token, "GET", &path, &[], ""))["@odata.etag"]
        .as_str()
        .unwrap()
        .to_string();
    let stale = send(
        &fake,
        &token,
        "PATCH",
        &path,
        &[("If-Match", "W/\"1\"")],
        r#"{"name":"x"}"#,
    );
    let message = assert_error(&stale, 412, "0x80060882");
    assert_eq!(
        message,
        "The version of the existing record doesn't match the RowVersion property provided."
    );
    let fresh = send(
        &fake,
        &token,
        "PATCH",
        &path,
        &[("If-Match", &etag)],
        r#"{"name":"Contoso 2"}"#,
    );
    assert_eq!(fresh.status(), 204);
    let row = json(&send(&fake, &token, "GET", &path, &[], ""));
    assert_eq!(row["name"], "Contoso 2");
    assert_ne!(
        row["@odata.etag"],
        etag.as_str(),
        "every update changes the etag"
    );
    // The old etag is stale now.
    let again = send(
        &fake,
        &token,
        "PATCH",
        &path,
        &[("If-Match", &etag)],
        r#"{"name":"x"}"#,
    );
    assert_error(&again, 412, "0x80060882");
}

#[test]
fn if_none_match_star_prevents_update_and_null_is_ignored() {
    let (fake, token) = demo();
    let path = format!("accounts({})", account_id(1));
    let resp = send(
        &fake,
        &token,
        "PATCH",
        &path,
        &[("If-None-Match", "*")],
        r#"{"name":"x"}"#,
    );
    let message = assert_error(&resp, 412, "0x80040237");
    assert_eq!(message, "A record with matching key values already exists.");
    let resp = send(
        &fake,
        &token,
        "PATCH",
        &path,
        &[("If-None-Match", "null")],
        r#"{"name":"y"}"#,
    );
    assert_eq!(resp.status(), 204);
    let new = send(
        &fake,
        &token,
        "PATCH",
        "accounts(accountnumber='NEW-1')",
        &[("If-None-Match", "*")],
        r#"{"name":"Created"}"#,
    );
    assert_eq!(new.status(), 204);
}

#[test]
fn patch_with_representation_answers_200_with_the_updated_row() {
    let (fake, token) = demo();
    let resp = send(
        &fake,
        &token,
        "PATCH",
        &format!("accounts({})?$select=name", account_id(3)),
        &[("Prefer", "return=representation")],
        r#"{"name":"Adventure Works Cycles","primarycontactid@odata.bind":null}"#,
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["preference-applied"],
        "return=representation"
    );
    assert_eq!(json(&resp)["name"], "Adventure Works Cycles");
    let row = json(&send(
        &fake,
        &token,
        "GET",
        &format!("accounts({})", account_id(3)),
        &[],
        "",
    ));
    assert!(row["_primarycontactid_value"].is_null());
}

#[test]
fn delete_removes_the_row_checks_the_etag_and_clears_lookups_to_it() {
    let (fake, token) = demo();
    let path = format!("accounts({})", account_id(1));
    let stale = send(
        &fake,
        &token,
        "DELETE",
        &path,
        &[("If-Match", "W/\"1\"")],
        "",
    );
    assert_error(&stale, 412, "0x80060882");
    assert_eq!(send(&fake, &token, "DELETE", &path, &[], "").status(), 204);
    assert_error(
        &send(&fake, &token, "GET", &path, &[], ""),
        404,
        "0x80040217",
    );
    assert_error(
        &send(&fake, &token, "DELETE", &path, &[], ""),
        404,
        "0x80040217",
    );
    let contact = json(&send(
        &fake,
        &token,
        "GET",
        &format!("contacts({})", contact_id(1)),
        &[],
        "",
    ));
    assert!(contact["_parentcustomerid_value"].is_null());
    assert_eq!(fake.account_names().len(), 24);
}

#[test]
fn conditional_get_with_the_current_etag_is_304() {
    let (fake, token) = demo();
    let path = format!("accounts({})", account_id(2));
    let etag = json(&send(&fake, &token, "GET", &path, &[], ""))["@odata.etag"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = send(&fake, &token, "GET", &path, &[("If-None-Match", &etag)], "");
    assert_eq!(resp.status(), 304);
    assert!(resp.body().is_empty());
    let annotated = [
        ("If-None-Match", etag.as_str()),
        ("Prefer", "odata.include-annotations=\"*\""),
    ];
    assert_eq!(
        send(&fake, &token, "GET", &path, &annotated, "").status(),
        200
    );
}

#[test]
fn single_properties_can_be_read_and_written() {
    let (fake, token) = demo();
    let path = format!("accounts({})/name", account_id(2));
    let body = json(&send(&fake, &token, "GET", &path, &[], ""));
    assert_eq!(body["value"], "Fabrikam Inc");
    assert_eq!(
        send(&fake, &token, "PUT", &path, &[], r#"{"value":"Fabrikam"}"#).status(),
        204
    );
    assert_eq!(
        json(&send(&fake, &token, "GET", &path, &[], ""))["value"],
        "Fabrikam"
    );
}

#[test]
fn contacts_are_an_entity_set_with_a_computed_fullname() {
    let (fake, token) = demo();
    let body = json(&send(
        &fake,
        &token,
        "GET",
        "contacts?$select=fullname,emailaddress1",
        &[],
        "",
    ));
    assert_eq!(body["value"].as_array().unwrap().len(), 6);
    assert_eq!(body["value"][0]["emailaddress1"], "someone_a@example.com");
    let resp = send(
            &fake,
            &token,
            "POST",
            "contacts",
            &[("Prefer", "return=representation")],
            &json!({"firstname": "Ada", "lastname": "Lovelace", "parentcustomerid_account@odata.bind": format!("/accounts({})", account_id(4))}).to_string(),
        );
    let row = json(&resp);
    assert_eq!(row["fullname"], "Ada Lovelace");
    assert_eq!(row["_parentcustomerid_value"], account_id(4));
}
