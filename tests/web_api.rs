//! The whole everyday Web API, end to end through the real component in
//! wasmtime against the fake: reads, writes, operations, $batch, request
//! options, `send`, and the retry policy under injected faults.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use common::*;
use dataverse_fake::{self as fake, Fake, Fault};
use dataverse_host::session::{
    BatchOptions, BatchRequest, ClientOptions, EntityRef, Operation, OperationKind, RequestOptions,
    WebRequest,
};
use dataverse_host::{ErrorKind, Session};
use serde_json::Value;

async fn demo(fake: &Arc<Fake>) -> Session {
    connect(fake, &demo_connection()).await.unwrap()
}

async fn demo_with(fake: &Arc<Fake>, options: ClientOptions) -> Session {
    runtime()
        .connect(fake.clone(), &demo_connection(), options)
        .await
        .unwrap()
}

/// The `name` of every row of a page, in order.
fn row_names(rows: &str) -> Vec<String> {
    let rows = json(rows);
    let rows = rows.as_array().expect("rows are a JSON array");
    rows.iter()
        .map(|row| row["name"].as_str().expect("a name").to_string())
        .collect()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The id of the account with this account number, read through the component.
async fn account_id(session: &mut Session, number: &str) -> String {
    let row = session
        .retrieve(
            &EntityRef::new("accounts", format!("accountnumber='{number}'")),
            &["accountid".into()],
            None,
            None,
        )
        .await
        .unwrap();
    json(&row.json)["accountid"].as_str().unwrap().to_string()
}

fn options() -> RequestOptions {
    RequestOptions::default()
}

#[tokio::test]
async fn retrieve_by_id_and_by_alternate_key_with_select_and_expand() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let id = account_id(&mut session, "A-0001").await;
    let row = session
        .retrieve(
            &EntityRef::new("accounts", &id),
            &["name".into()],
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(json(&row.json)["name"], "Contoso Ltd");
    assert!(row.etag.as_deref().unwrap().starts_with("W/\""));
    assert_eq!(row.call.attempts, 1);

    let by_key = session
        .retrieve(
            &EntityRef::new("accounts", "accountnumber='A-0002'"),
            &["name".into()],
            Some("primarycontactid($select=fullname)"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(json(&by_key.json)["name"], "Fabrikam Inc");

    let missing = session
        .retrieve(
            &EntityRef::new("accounts", "accountnumber='NOPE'"),
            &[],
            None,
            None,
        )
        .await;
    let ErrorKind::NotFound(f) = dataverse_error(missing) else {
        panic!("expected not-found")
    };
    assert_eq!(f.status, 404);
}

#[tokio::test]
async fn formatted_values_come_back_when_asked() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let formatted = RequestOptions {
        include_annotations: Some("*".into()),
        ..options()
    };
    let row = session
        .retrieve(
            &EntityRef::new("accounts", "accountnumber='A-0001'"),
            &["revenue".into()],
            None,
            Some(&formatted),
        )
        .await
        .unwrap();
    let value = json(&row.json);
    assert!(
        value
            .get("revenue@OData.Community.Display.V1.FormattedValue")
            .is_some(),
        "{value}"
    );
    let sent = fake.requests().last().unwrap().headers.clone();
    assert!(
        sent.iter().any(|(n, v)| n.eq_ignore_ascii_case("prefer")
            && v.contains("odata.include-annotations=\"*\""))
    );
}

#[tokio::test]
async fn create_update_upsert_and_delete_round_trip() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;

    let created = session
        .create(
            "accounts",
            r#"{"name":"Northwind","accountnumber":"N-1"}"#,
            None,
        )
        .await
        .unwrap();
    let id = created.id.clone().expect("the new id from OData-EntityId");
    assert_eq!(id.len(), 36);

    let with_row = RequestOptions {
        return_representation: true,
        ..options()
    };
    let represented = session
        .create("accounts", r#"{"name":"Tailspin"}"#, Some(&with_row))
        .await
        .unwrap();
    assert_eq!(
        json(represented.json.as_deref().unwrap())["name"],
        "Tailspin"
    );

    let row = session
        .retrieve(
            &EntityRef::new("accounts", &id),
            &["name".into()],
            None,
            None,
        )
        .await
        .unwrap();
    let etag = row.etag.unwrap();
    session
        .update(
            &EntityRef::new("accounts", &id),
            r#"{"name":"Northwind Traders"}"#,
            Some(&etag),
            None,
        )
        .await
        .unwrap();
    let stale = session
        .update(
            &EntityRef::new("accounts", &id),
            r#"{"name":"Again"}"#,
            Some(&etag),
            None,
        )
        .await;
    assert!(matches!(
        dataverse_error(stale),
        ErrorKind::PreconditionFailed(_)
    ));

    // update never creates: If-Match: * on a missing row is not-found.
    let ghost = "00000000-0000-0000-0000-0000000000aa";
    let missing = session
        .update(
            &EntityRef::new("accounts", ghost),
            r#"{"name":"Ghost"}"#,
            None,
            None,
        )
        .await;
    assert!(matches!(dataverse_error(missing), ErrorKind::NotFound(_)));

    // upsert creates, then updates; prevent-update refuses an existing row.
    session
        .upsert(
            &EntityRef::new("accounts", "accountnumber='U-1'"),
            r#"{"name":"Upserted"}"#,
            false,
            None,
        )
        .await
        .unwrap();
    session
        .upsert(
            &EntityRef::new("accounts", "accountnumber='U-1'"),
            r#"{"name":"Upserted 2"}"#,
            false,
            None,
        )
        .await
        .unwrap();
    let row = session
        .retrieve(
            &EntityRef::new("accounts", "accountnumber='U-1'"),
            &["name".into()],
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(json(&row.json)["name"], "Upserted 2");
    let create_only = session
        .upsert(
            &EntityRef::new("accounts", "accountnumber='U-1'"),
            r#"{"name":"No"}"#,
            true,
            None,
        )
        .await;
    assert!(matches!(
        dataverse_error(create_only),
        ErrorKind::PreconditionFailed(_)
    ));

    session
        .delete(&EntityRef::new("accounts", &id), None, None)
        .await
        .unwrap();
    let gone = session
        .retrieve(&EntityRef::new("accounts", &id), &[], None, None)
        .await;
    assert!(matches!(dataverse_error(gone), ErrorKind::NotFound(_)));
}

#[tokio::test]
async fn associate_and_disassociate_through_ref() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let account = account_id(&mut session, "A-0003").await;
    let contact = session
        .create(
            "contacts",
            r#"{"firstname":"Ada","lastname":"Lovelace"}"#,
            None,
        )
        .await
        .unwrap()
        .id
        .unwrap();

    let related_ids = async |session: &mut Session| -> Vec<String> {
        let row = session
            .retrieve(
                &EntityRef::new("accounts", &account),
                &["name".into()],
                Some("contact_customer_accounts($select=contactid)"),
                None,
            )
            .await
            .unwrap();
        json(&row.json)["contact_customer_accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contactid"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!related_ids(&mut session).await.contains(&contact));
    session
        .associate(
            &EntityRef::new("accounts", &account),
            "contact_customer_accounts",
            &EntityRef::new("contacts", &contact),
            None,
        )
        .await
        .unwrap();
    assert!(related_ids(&mut session).await.contains(&contact));
    let target = EntityRef {
        entity_set: "contacts".into(),
        key: contact.clone(),
    };
    session
        .disassociate(
            &EntityRef::new("accounts", &account),
            "contact_customer_accounts",
            Some(&target),
            None,
        )
        .await
        .unwrap();
    assert!(!related_ids(&mut session).await.contains(&contact));
}

#[tokio::test]
async fn query_with_expand_count_and_apply_passthrough() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let query = dataverse_host::Query {
        expand: Some("primarycontactid($select=fullname)".into()),
        count: true,
        top: Some(5),
        ..accounts_query(None)
    };
    let page = session.retrieve_multiple(&query, None).await.unwrap();
    assert_eq!(page.row_count, 5);
    assert_eq!(page.total_count, Some(25));

    let apply = dataverse_host::Query {
        apply: Some("groupby((name))".into()),
        ..accounts_query(None)
    };
    let _ = session.retrieve_multiple(&apply, None).await;
    let last = fake.requests().last().unwrap().path_and_query.clone();
    assert!(last.contains("$apply=groupby((name))"), "{last}");
}

#[tokio::test]
async fn read_all_hands_out_pages_and_stops_at_max_rows() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let mut names = Vec::new();
    let mut pages = 0;
    let read = session
        .read_all(&accounts_query(Some(10)), u64::MAX, None, |page| {
            pages += 1;
            names.extend(row_names(&page.rows));
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!((read, pages), (25, 3));
    assert_eq!(names, fake.account_names());

    let before = fake.stats().api_requests;
    let mut seen = 0;
    let read = session
        .read_all(&accounts_query(Some(10)), 12, None, |page| {
            seen += page.row_count;
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!((read, seen), (12, 12));
    assert_eq!(
        fake.stats().api_requests - before,
        2,
        "stops asking once max-rows were read"
    );
}

/// Reads every page through the component's reader: the names handed out,
/// the pages, and how the read ended.
async fn read_names(
    session: &mut Session,
    page_size: u32,
) -> (Vec<String>, usize, Result<u64, dataverse_host::CallError>) {
    let (mut names, mut pages) = (Vec::new(), 0);
    let read = session
        .read_all(&accounts_query(Some(page_size)), u64::MAX, None, |page| {
            pages += 1;
            names.extend(row_names(&page.rows));
            ControlFlow::Continue(())
        })
        .await;
    (names, pages, read)
}

fn account_page_requests(fake: &Fake) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.path_and_query.contains("/accounts?"))
        .count()
}

#[tokio::test]
async fn read_all_ends_with_invalid_response_when_the_next_link_repeats_itself() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.set_paging_bug(Some(fake::PagingBug::RepeatNextLink));
    let (names, pages, read) = read_names(&mut session, 5).await;
    let error = full_error(read);
    let ErrorKind::InvalidResponse(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("already followed"), "{message}");
    assert!(error.call.is_some(), "the call that sent the link is named");
    assert_eq!(pages, 2);
    assert_eq!(names, fake.account_names()[..10], "every row once");
    assert_eq!(
        account_page_requests(&fake),
        2,
        "the repeated link is not requested"
    );
}

#[tokio::test]
async fn read_all_ends_with_invalid_response_when_the_next_link_alternates() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.set_paging_bug(Some(fake::PagingBug::AlternateNextLink));
    let (names, pages, read) = read_names(&mut session, 5).await;
    assert!(
        matches!(dataverse_error(read), ErrorKind::InvalidResponse(_)),
        "alternating links end the read"
    );
    assert_eq!(pages, 3);
    assert_eq!(names, fake.account_names()[..15]);
    assert_eq!(account_page_requests(&fake), 3);
}

#[tokio::test]
async fn a_foreign_next_link_sent_by_the_server_ends_read_all_with_invalid_response() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(
        Fault::ForeignNextLink {
            host: "evil.example".into(),
        },
        1,
    );
    let (names, _, read) = read_names(&mut session, 5).await;
    let ErrorKind::InvalidResponse(message) = dataverse_error(read) else {
        panic!("the server's link is the server's fault, not the caller's")
    };
    assert!(
        message.contains("not on the organization's origin"),
        "{message}"
    );
    assert_eq!(names, fake.account_names()[..5]);
    assert!(fake.requests().iter().all(|r| r.host != "evil.example"));
}

const PAGED_FETCH: &str = r#"<fetch count="10"><entity name="account"><attribute name="name"/><attribute name="accountid"/><order attribute="accountnumber"/></entity></fetch>"#;

#[tokio::test]
async fn read_all_fetch_xml_follows_paging_cookies_to_the_end() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let (mut names, mut pages) = (Vec::new(), 0);
    let read = session
        .read_all_fetch_xml("accounts", PAGED_FETCH, u64::MAX, None, |page| {
            pages += 1;
            names.extend(row_names(&page.rows));
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!((read, pages), (25, 3));
    assert_eq!(names, fake.account_names());
    let read = session
        .read_all_fetch_xml("accounts", PAGED_FETCH, 12, None, |_| {
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(read, 12);
}

#[tokio::test]
async fn read_all_fetch_xml_ends_with_invalid_response_when_the_paging_cookie_repeats() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.set_paging_bug(Some(fake::PagingBug::RepeatPagingCookie));
    let mut names = Vec::new();
    let read = session
        .read_all_fetch_xml("accounts", PAGED_FETCH, u64::MAX, None, |page| {
            names.extend(row_names(&page.rows));
            ControlFlow::Continue(())
        })
        .await;
    let ErrorKind::InvalidResponse(message) = dataverse_error(read) else {
        panic!("a cookie that does not advance ends the read")
    };
    assert!(message.contains("paging cookie"), "{message}");
    assert_eq!(names.len(), 20, "pages 1 and 2, each once");
    assert_eq!(account_page_requests(&fake), 2);
}

#[tokio::test]
async fn fetch_xml_pages_with_the_paging_cookie() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let fetch = r#"<fetch count="10" returntotalrecordcount="true"><entity name="account"><attribute name="name"/><attribute name="accountid"/><order attribute="accountnumber"/></entity></fetch>"#;
    let (mut page_number, mut cookie, mut names) = (1, None::<String>, Vec::new());
    loop {
        let page = session
            .fetch_xml("accounts", fetch, page_number, cookie.as_deref(), None)
            .await
            .unwrap();
        names.extend(row_names(&page.rows));
        if !page.more_records {
            break;
        }
        page_number += 1;
        cookie = page.paging_cookie;
        assert!(cookie.is_some());
    }
    assert_eq!(page_number, 3);
    assert_eq!(names, fake.account_names());
}

#[tokio::test]
async fn functions_and_actions_bound_and_unbound() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let call = |name: &str, kind, bound: Option<EntityRef>, parameters: Option<&str>| Operation {
        name: name.into(),
        kind,
        bound,
        parameters: parameters.map(str::to_string),
    };
    let version = session
        .execute(
            &call("RetrieveVersion", OperationKind::Function, None, None),
            None,
        )
        .await
        .unwrap();
    assert!(
        json(version.json.as_deref().unwrap())["Version"]
            .as_str()
            .unwrap()
            .starts_with("9.")
    );

    let who = session
        .execute(&call("WhoAmI", OperationKind::Function, None, None), None)
        .await
        .unwrap();
    assert_eq!(
        json(who.json.as_deref().unwrap())["UserId"],
        fake::DEMO_USER_ID
    );

    let sum = session
        .execute(
            &call(
                "sample_Add",
                OperationKind::Function,
                None,
                Some(r#"{"A":1,"B":2}"#),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(json(sum.json.as_deref().unwrap())["Sum"], 3);

    let echo = session
        .execute(
            &call(
                "sample_Echo",
                OperationKind::Action,
                None,
                Some(r#"{"Text":"hi"}"#),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(json(echo.json.as_deref().unwrap())["Echo"], "hi");

    let account = EntityRef {
        entity_set: "accounts".into(),
        key: "accountnumber='A-0001'".into(),
    };
    let touched = session
        .execute(
            &call(
                "sample_Touch",
                OperationKind::Action,
                Some(account.clone()),
                None,
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!((touched.status, touched.json), (204, None));
    let described = session
        .execute(
            &call(
                "sample_Describe",
                OperationKind::Function,
                Some(account),
                None,
            ),
            None,
        )
        .await
        .unwrap();
    assert!(
        json(described.json.as_deref().unwrap())["Description"]
            .as_str()
            .unwrap()
            .contains("Contoso")
    );
}

fn batch_request(method: &str, url: &str, body: Option<&str>) -> BatchRequest {
    BatchRequest {
        method: method.parse().unwrap(),
        url: url.into(),
        headers: vec![],
        body: body.map(str::to_string),
    }
}

#[tokio::test]
async fn a_batch_change_set_is_atomic_and_content_ids_link_requests() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let contact = session
        .create("contacts", r#"{"lastname":"Linked"}"#, None)
        .await
        .unwrap()
        .id
        .unwrap();
    let reference = format!(
        r#"{{"@odata.id":"https://{}/api/data/v9.2/contacts({contact})"}}"#,
        fake::ORG_HOST
    );
    let linked = [
        batch_request(
            "POST",
            "accounts",
            Some(r#"{"name":"Batch A","accountnumber":"B-1"}"#),
        ),
        batch_request(
            "POST",
            "$1/contact_customer_accounts/$ref",
            Some(&reference),
        ),
    ];
    let options = BatchOptions {
        change_set: true,
        continue_on_error: false,
    };
    let result = session.batch(&linked, options, None).await.unwrap();
    assert_eq!(result.responses.len(), 2);
    assert!(
        result
            .responses
            .iter()
            .all(|r| (200..300).contains(&r.status)),
        "{:?}",
        result.responses
    );
    assert_eq!(result.responses[0].content_id.as_deref(), Some("1"));
    let row = session
        .retrieve(
            &EntityRef::new("accounts", "accountnumber='B-1'"),
            &[],
            Some("contact_customer_accounts($select=fullname)"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        json(&row.json)["contact_customer_accounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let failing = [
        batch_request(
            "POST",
            "accounts",
            Some(r#"{"name":"Rolled back","accountnumber":"B-2"}"#),
        ),
        batch_request(
            "PATCH",
            "accounts(00000000-0000-0000-0000-0000000000ff)",
            Some(r#"{"name":"x"}"#),
        )
        .with_if_match(),
    ];
    let result = session.batch(&failing, options, None).await.unwrap();
    assert!(result.responses.iter().any(|r| r.status >= 400));
    let rolled_back = session
        .retrieve(
            &EntityRef::new("accounts", "accountnumber='B-2'"),
            &[],
            None,
            None,
        )
        .await;
    assert!(
        matches!(dataverse_error(rolled_back), ErrorKind::NotFound(_)),
        "the change set was rolled back"
    );
}

trait IfMatch {
    fn with_if_match(self) -> Self;
}

impl IfMatch for BatchRequest {
    fn with_if_match(mut self) -> Self {
        self.headers.push(("If-Match".into(), "*".into()));
        self
    }
}

#[tokio::test]
async fn continue_on_error_answers_every_request() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let requests = [
        batch_request(
            "GET",
            "accounts(00000000-0000-0000-0000-0000000000ee)",
            None,
        ),
        batch_request("GET", "WhoAmI", None),
    ];
    let stop = session
        .batch(
            &requests,
            BatchOptions {
                change_set: false,
                continue_on_error: false,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(stop.responses.len(), 1);
    let go_on = session
        .batch(
            &requests,
            BatchOptions {
                change_set: false,
                continue_on_error: true,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        go_on.responses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [404, 200]
    );
}

#[tokio::test]
async fn more_than_1000_batch_requests_are_refused_before_sending() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let before = fake.requests().len();
    let requests: Vec<_> = (0..1001)
        .map(|_| batch_request("GET", "WhoAmI", None))
        .collect();
    let error = full_error(
        session
            .batch(
                &requests,
                BatchOptions {
                    change_set: false,
                    continue_on_error: false,
                },
                None,
            )
            .await,
    );
    let ErrorKind::InvalidRequest(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("1000"), "{message}");
    assert!(error.call.is_none());
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn request_options_become_dataverse_headers() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let options = RequestOptions {
        bypass_custom_plugins: true,
        suppress_duplicate_detection: Some(false),
        solution_unique_name: Some("ContosoCore".into()),
        strong_consistency: true,
        client_request_id: Some("req-123".into()),
        ..options()
    };
    let created = session
        .create("accounts", r#"{"name":"With options"}"#, Some(&options))
        .await
        .unwrap();
    assert_eq!(created.call.client_request_id, "req-123");
    let sent = fake.requests().last().unwrap().headers.clone();
    let header = |name: &str| {
        sent.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("MSCRM.BypassCustomPluginExecution"), Some("true"));
    assert_eq!(header("MSCRM.SuppressDuplicateDetection"), Some("false"));
    assert_eq!(header("MSCRM.SolutionUniqueName"), Some("ContosoCore"));
    assert_eq!(header("Consistency"), Some("Strong"));
    assert_eq!(header("x-ms-client-request-id"), Some("req-123"));
}

#[tokio::test]
async fn impersonation_changes_who_the_call_runs_as() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let options = RequestOptions {
        caller_object_id: Some(fake::IMPERSONATED_OBJECT_ID.into()),
        ..options()
    };
    let who = session.who_am_i(Some(&options)).await.unwrap();
    assert_eq!(who.user_id, fake::IMPERSONATED_USER_ID);
}

#[tokio::test]
async fn errors_carry_the_client_request_id_and_attempts() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let error = full_error(
        session
            .retrieve(
                &EntityRef::new("accounts", "accountnumber='NOPE'"),
                &[],
                None,
                None,
            )
            .await,
    );
    let call = error.call.expect("the call was sent");
    assert_eq!(call.attempts, 1);
    let sent = fake.requests().last().unwrap().headers.clone();
    assert!(
        sent.iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("x-ms-client-request-id")
                && *v == call.client_request_id)
    );
}

#[tokio::test]
async fn send_reaches_any_web_api_path_but_only_on_the_org() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    let request = |path: &str| WebRequest {
        method: dataverse_host::Method::Get,
        path: path.into(),
        headers: vec![],
        body: None,
    };
    let response = session
        .send(&request("accounts?$select=name&$top=2"), None)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        json(&String::from_utf8(response.body).unwrap())["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let absolute = format!("https://{}/api/data/v9.2/WhoAmI", fake::ORG_HOST);
    assert_eq!(
        session
            .send(&request(&absolute), None)
            .await
            .unwrap()
            .status,
        200
    );

    let before = fake.requests().len();
    let foreign = session
        .send(&request("https://evil.example/api/data/v9.2/WhoAmI"), None)
        .await;
    assert!(matches!(
        dataverse_error(foreign),
        ErrorKind::InvalidRequest(_)
    ));
    assert_eq!(fake.requests().len(), before);

    let not_found = session.send(&request("nosuchset"), None).await;
    assert!(matches!(dataverse_error(not_found), ErrorKind::NotFound(_)));
}

// ---- retry policy under injected faults ----

#[tokio::test]
async fn throttling_is_retried_after_retry_after() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(
        Fault::Throttle {
            retry_after_secs: 2,
        },
        1,
    );
    let started = Instant::now();
    let who = session.who_am_i(None).await.unwrap();
    assert_eq!(who.call.attempts, 2);
    assert!(
        started.elapsed().as_secs_f64() >= 2.0,
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_post_hit_by_503_is_not_retried() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(Fault::Status(503), 1);
    let before = fake.stats().api_requests;
    let error = full_error(session.create("accounts", r#"{"name":"Once"}"#, None).await);
    assert!(
        matches!(&error.kind, ErrorKind::Service(f) if f.status == 503),
        "{error:?}"
    );
    assert_eq!(error.call.unwrap().attempts, 1);
    assert_eq!(fake.stats().api_requests - before, 1);
}

#[tokio::test]
async fn a_get_hit_by_503_is_retried() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(Fault::Status(503), 1);
    let who = session.who_am_i(None).await.unwrap();
    assert_eq!(who.call.attempts, 2);
}

#[tokio::test]
async fn repeated_dropped_connections_become_a_transport_error_naming_the_attempts() {
    let fake = Fake::demo();
    let options = ClientOptions {
        max_retries: Some(2),
        ..OPTIONS
    };
    let mut session = demo_with(&fake, options).await;
    fake.inject(Fault::DropMidBody, 10);
    let error = full_error(session.who_am_i(None).await);
    let ErrorKind::Transport(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(error.call.unwrap().attempts, 3);
}

#[tokio::test]
async fn malformed_json_is_an_invalid_response() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(Fault::MalformedJson, 1);
    let error = dataverse_error(session.retrieve_multiple(&accounts_query(None), None).await);
    assert!(matches!(error, ErrorKind::InvalidResponse(_)), "{error:?}");
}

#[tokio::test]
async fn a_foreign_next_link_is_refused_and_the_token_never_leaves() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(
        Fault::ForeignNextLink {
            host: "evil.example".into(),
        },
        1,
    );
    let page = session
        .retrieve_multiple(&accounts_query(Some(5)), None)
        .await
        .unwrap();
    let link = page.next_link.unwrap();
    assert!(link.starts_with("https://evil.example/"));
    let error = dataverse_error(session.next_page(&link, Some(5), None).await);
    assert!(matches!(error, ErrorKind::InvalidRequest(_)));
    assert!(
        fake.requests().iter().all(|r| r.host != "evil.example"),
        "nothing reached the foreign host"
    );
}

#[tokio::test]
async fn a_100_mib_body_is_refused_while_guest_memory_stays_bounded() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(
        Fault::Oversized {
            bytes: 100 * 1024 * 1024,
        },
        1,
    );
    let error = dataverse_error(session.retrieve_multiple(&accounts_query(None), None).await);
    let ErrorKind::InvalidResponse(message) = &error else {
        panic!("{error:?}")
    };
    assert!(message.contains("larger than the limit"), "{message}");
    let peak = session.peak_memory_bytes();
    assert!(peak < 80 * 1024 * 1024, "peak guest memory {peak} bytes");

    let small = ClientOptions {
        max_response_bytes: Some(1024 * 1024),
        ..OPTIONS
    };
    let mut bounded = demo_with(&fake, small).await;
    fake.inject(
        Fault::Oversized {
            bytes: 100 * 1024 * 1024,
        },
        1,
    );
    let error = dataverse_error(bounded.retrieve_multiple(&accounts_query(None), None).await);
    assert!(matches!(error, ErrorKind::InvalidResponse(_)));
    assert!(
        bounded.peak_memory_bytes() < 16 * 1024 * 1024,
        "peak {}",
        bounded.peak_memory_bytes()
    );
}

#[tokio::test]
async fn a_slow_answer_past_the_timeout_is_a_transport_error() {
    let fake = Fake::demo();
    let options = ClientOptions {
        timeout_ms: Some(200),
        max_retries: Some(0),
        ..OPTIONS
    };
    let mut session = demo_with(&fake, options).await;
    fake.inject(Fault::Slow { millis: 2_000 }, 1);
    let error = dataverse_error(session.who_am_i(None).await);
    assert!(matches!(error, ErrorKind::Transport(_)), "{error:?}");
}

#[tokio::test]
async fn a_create_that_lost_its_connection_after_the_write_says_it_may_have_happened() {
    let fake = Fake::demo();
    let mut session = demo(&fake).await;
    fake.inject(Fault::DropMidBody, 1);
    let options = RequestOptions {
        client_request_id: Some("create-after-drop".into()),
        ..RequestOptions::default()
    };
    let error = full_error(
        session
            .create("accounts", r#"{"name":"Maybe written"}"#, Some(&options))
            .await,
    );
    let ErrorKind::Transport(message) = &error.kind else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("the request may have reached Dataverse: check before repeating it"),
        "{message}"
    );
    assert!(
        message.contains("x-ms-client-request-id create-after-drop"),
        "{message}"
    );
    assert_eq!(error.call.unwrap().attempts, 1, "a POST is never repeated");
    assert_eq!(
        fake.account_names().last().map(String::as_str),
        Some("Maybe written"),
        "and indeed it was written"
    );
}
