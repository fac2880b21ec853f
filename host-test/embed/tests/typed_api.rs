//! The `Dataverse` handle's typed calls and its row stream, end to end:
//! the real component in wasmtime against the in-process fake.

use std::sync::Arc;

use dataverse_fake::{self as fake, Fake, FakeConfig, PagingBug};
use dataverse_host::{
    BatchOptions, BatchRequest, Dataverse, EntityRef, Error, ErrorKind, Method, Operation, Query,
    RequestOptions, WebRequest,
};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

mod common;
use common::runtime;

async fn connect(fake: &Arc<Fake>) -> Dataverse {
    Dataverse::connect(runtime(), fake.clone(), &fake::demo_connection_string())
        .await
        .expect("connects")
}

fn names(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["name"].as_str().expect("a name").to_string())
        .collect()
}

/// GETs of account pages the fake has answered (first pages and nextLinks).
fn account_page_requests(fake: &Fake) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path_and_query.contains("/accounts?"))
        .count()
}

fn names_query(page_size: u32) -> Query {
    Query::new("accounts").select(["name"]).page_size(page_size)
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct Account {
    name: String,
    accountnumber: String,
    revenue: f64,
}

#[tokio::test]
async fn query_and_next_page_return_the_rows_as_json_values_page_by_page() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let mut page = dataverse.query(&names_query(10).count()).await.unwrap();
    assert_eq!(page.total_count, Some(25));
    assert_eq!(page.call.attempts, 1);
    let mut rows = std::mem::take(&mut page.rows);
    while let Some(next) = &page.next {
        assert_eq!(
            next.page_size,
            Some(10),
            "the page size travels with the link"
        );
        page = dataverse.next_page(next).await.unwrap();
        rows.append(&mut page.rows);
    }
    assert_eq!(names(&rows), fake.account_names());
    assert_eq!(account_page_requests(&fake), 3);
}

#[tokio::test]
async fn query_as_decodes_each_row_into_the_callers_struct() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let query = Query::new("accounts")
        .select(["name", "accountnumber", "revenue"])
        .top(2);
    let page = dataverse.query_as::<Account>(&query).await.unwrap();
    assert_eq!(page.rows.len(), 2);
    assert_eq!(page.rows[0].name, "Contoso Ltd");
    assert_eq!(page.rows[1].accountnumber, "A-0002");
    assert!(page.rows[0].revenue > 0.0);
}

#[tokio::test]
async fn a_row_that_does_not_fit_the_type_is_a_typed_decode_error_without_the_row_text() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct NameIsANumber {
        name: u32,
    }
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let error = dataverse
        .query_as::<NameIsANumber>(&Query::new("accounts").select(["name"]).top(3))
        .await
        .expect_err("a name is not a number");
    let Error::Decode(decode) = &error else {
        panic!("expected a decode error, got {error:?}")
    };
    assert_eq!(decode.row(), Some(0));
    assert_eq!(decode.category(), serde_json::error::Category::Data);
    assert!(decode.line() >= 1 && decode.column() >= 1);
    assert!(decode.type_name().ends_with("NameIsANumber"));
    let shown = format!("{error} | {error:?}");
    assert!(shown.contains("NameIsANumber"), "{shown}");
    for row_text in ["Contoso", "accountid", "@odata.etag"] {
        assert!(!shown.contains(row_text), "{row_text} in {shown}");
    }

    // The same in a stream, and for a single row.
    let first = dataverse
        .rows_as::<NameIsANumber>(names_query(10))
        .next()
        .await
        .expect("an item");
    assert!(matches!(first, Err(Error::Decode(_))), "{first:?}");
    let contoso = EntityRef::new("accounts", "accountnumber='A-0001'");
    let single = dataverse
        .get_as::<NameIsANumber>(&contoso, &["name"], None)
        .await;
    assert!(
        matches!(single, Err(Error::Decode(ref e)) if e.row().is_none()),
        "{single:?}"
    );
    assert!(!format!("{single:?}").contains("Contoso"));
}

#[tokio::test]
async fn get_and_get_as_return_one_row_and_a_missing_one_is_not_found() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let fabrikam = EntityRef::new("accounts", "accountnumber='A-0002'");
    let row = dataverse.get(&fabrikam, &["name"], None).await.unwrap();
    assert_eq!(row["name"], "Fabrikam Inc");
    let typed: Account = dataverse
        .get_as(&fabrikam, &["name", "accountnumber", "revenue"], None)
        .await
        .unwrap();
    assert_eq!(typed.accountnumber, "A-0002");
    let with_contact = dataverse
        .get(
            &fabrikam,
            &["name"],
            Some("primarycontactid($select=fullname)"),
        )
        .await
        .unwrap();
    assert_eq!(
        with_contact["primarycontactid"]["fullname"],
        "Nancy Anderson"
    );

    let missing = EntityRef::new("accounts", "00000000-0000-0000-0000-0000000000aa");
    let error = dataverse.get(&missing, &[], None).await.unwrap_err();
    assert!(
        matches!(error.kind(), Some(ErrorKind::NotFound(_))),
        "{error}"
    );
}

#[tokio::test]
async fn create_update_upsert_and_delete_take_serde_bodies() {
    #[derive(serde::Serialize)]
    struct NewAccount<'a> {
        name: &'a str,
        accountnumber: &'a str,
    }
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let created = dataverse
        .create(
            "accounts",
            &NewAccount {
                name: "Northwind",
                accountnumber: "N-1",
            },
        )
        .await
        .unwrap();
    let id = created.id.expect("the new id");
    assert!(created.row.is_none(), "no representation unless asked");
    let row = EntityRef::new("accounts", &id);
    let etag = dataverse.get(&row, &["name"], None).await.unwrap()["@odata.etag"]
        .as_str()
        .unwrap()
        .to_string();

    let written = dataverse
        .update(&row, &json!({"name": "Northwind Traders"}), Some(&etag))
        .await
        .unwrap();
    assert_eq!(written.call.attempts, 1);
    let stale = dataverse
        .update(&row, &json!({"name": "Again"}), Some(&etag))
        .await
        .unwrap_err();
    assert!(matches!(
        stale.kind(),
        Some(ErrorKind::PreconditionFailed(_))
    ));
    assert_eq!(
        dataverse.get(&row, &["name"], None).await.unwrap()["name"],
        "Northwind Traders"
    );

    let by_key = EntityRef::new("accounts", "accountnumber='U-1'");
    dataverse
        .upsert(&by_key, &json!({"name": "Upserted"}), false)
        .await
        .unwrap();
    let create_only = dataverse
        .upsert(&by_key, &json!({"name": "No"}), true)
        .await
        .unwrap_err();
    assert!(matches!(
        create_only.kind(),
        Some(ErrorKind::PreconditionFailed(_))
    ));
    assert_eq!(
        dataverse.get(&by_key, &["name"], None).await.unwrap()["name"],
        "Upserted"
    );

    let deleted = dataverse.delete(&row, None).await.unwrap();
    assert_eq!(deleted.attempts, 1);
    let gone = dataverse.get(&row, &[], None).await.unwrap_err();
    assert!(matches!(gone.kind(), Some(ErrorKind::NotFound(_))));
}

#[tokio::test]
async fn request_options_on_a_clone_return_the_written_row() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let returning = dataverse.with_request_options(RequestOptions {
        return_representation: true,
        ..RequestOptions::default()
    });
    let created = returning
        .create("accounts", &json!({"name": "Tailspin"}))
        .await
        .unwrap();
    let created = created.row.expect("the row as created");
    assert_eq!(created["name"], "Tailspin");
    let row = EntityRef::new("accounts", created["accountid"].as_str().unwrap());
    let written = returning
        .update(&row, &json!({"name": "Tailspin Toys"}), None)
        .await
        .unwrap();
    assert_eq!(written.row.unwrap()["name"], "Tailspin Toys");
    let upserted = returning
        .upsert(
            &EntityRef::new("accounts", "accountnumber='R-1'"),
            &json!({"name": "Represented"}),
            false,
        )
        .await
        .unwrap();
    assert_eq!(upserted.row.unwrap()["name"], "Represented");
    // The original handle keeps its own (no) options.
    let plain = dataverse
        .create("accounts", &json!({"name": "Plain"}))
        .await
        .unwrap();
    assert!(plain.row.is_none());
}

#[tokio::test]
async fn associate_and_disassociate_change_a_collection() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let account = EntityRef::new("accounts", "accountnumber='A-0003'");
    let contact = dataverse
        .create(
            "contacts",
            &json!({"firstname": "Ada", "lastname": "Lovelace"}),
        )
        .await
        .unwrap()
        .id
        .unwrap();
    let related = async || -> Vec<String> {
        let row = dataverse
            .get(
                &account,
                &["name"],
                Some("contact_customer_accounts($select=contactid)"),
            )
            .await
            .unwrap();
        row["contact_customer_accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contactid"].as_str().unwrap().to_string())
            .collect()
    };
    let target = EntityRef::new("contacts", &contact);
    dataverse
        .associate(&account, "contact_customer_accounts", &target)
        .await
        .unwrap();
    assert!(related().await.contains(&contact));
    dataverse
        .disassociate(&account, "contact_customer_accounts", Some(&target))
        .await
        .unwrap();
    assert!(!related().await.contains(&contact));
}

const PAGED_FETCH: &str = r#"<fetch count="10"><entity name="account"><attribute name="name"/><attribute name="accountid"/><order attribute="accountnumber"/></entity></fetch>"#;

#[tokio::test]
async fn fetch_xml_pages_with_the_cookie_and_streams_every_row() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let mut rows = Vec::new();
    let (mut number, mut cookie) = (1, None::<String>);
    loop {
        let page = dataverse
            .fetch_xml("accounts", PAGED_FETCH, number, cookie.as_deref())
            .await
            .unwrap();
        rows.extend(page.rows);
        if !page.more_records {
            break;
        }
        (number, cookie) = (number + 1, page.paging_cookie);
    }
    assert_eq!(number, 3);
    assert_eq!(names(&rows), fake.account_names());

    let streamed: Vec<Value> = dataverse
        .fetch_xml_rows("accounts", PAGED_FETCH)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(names(&streamed), fake.account_names());
}

#[tokio::test]
async fn execute_returns_the_answer_or_null() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let version = dataverse
        .execute(&Operation::function("RetrieveVersion"))
        .await
        .unwrap();
    assert!(version["Version"].as_str().unwrap().starts_with("9."));
    let echo = dataverse
        .execute(&Operation::action("sample_Echo").parameters(&json!({"Text": "hi"})))
        .await
        .unwrap();
    assert_eq!(echo["Echo"], "hi");
    let touched = dataverse
        .execute(
            &Operation::action("sample_Touch")
                .bound_to(EntityRef::new("accounts", "accountnumber='A-0001'")),
        )
        .await
        .unwrap();
    assert_eq!(touched, Value::Null, "204: no answer");
}

#[tokio::test]
async fn batch_send_who_am_i_and_token_info_run_through_the_pool() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let create = BatchRequest {
        method: Method::Post,
        url: "accounts".into(),
        headers: vec![],
        body: Some(r#"{"name":"Batch A","accountnumber":"B-1"}"#.into()),
    };
    let result = dataverse
        .batch(&[create], BatchOptions::default())
        .await
        .unwrap();
    assert_eq!(result.responses.len(), 1);
    assert!((200..300).contains(&result.responses[0].status));

    let response = dataverse
        .send(&WebRequest {
            method: Method::Get,
            path: "accounts?$select=name&$top=2".into(),
            headers: vec![],
            body: None,
        })
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 2);

    assert_eq!(
        dataverse.who_am_i().await.unwrap().user_id,
        fake::DEMO_USER_ID
    );
    let info = dataverse.token_info().await.unwrap();
    assert_eq!(info.tenant_id, fake::DEMO_TENANT_ID);
    assert_eq!(info.client_id, fake::DEMO_CLIENT_ID);
    assert!(info.call.is_some(), "the owner's token request");
    assert_eq!(fake.stats().token_requests, 1, "still the one token");
}

#[tokio::test]
async fn the_row_stream_yields_every_row_of_three_pages_in_order() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let rows: Vec<Value> = dataverse.rows(names_query(10)).try_collect().await.unwrap();
    assert_eq!(rows.len(), 25);
    assert_eq!(names(&rows), fake.account_names());
    assert_eq!(account_page_requests(&fake), 3, "pages of 10, 10 and 5");
    let typed: Vec<Account> = dataverse
        .rows_as(
            Query::new("accounts")
                .select(["name", "accountnumber", "revenue"])
                .page_size(10),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(typed[24].accountnumber, "A-0025");
}

#[tokio::test]
async fn dropping_the_stream_after_its_first_row_sends_no_further_request() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let mut rows = dataverse.rows(names_query(10));
    assert_eq!(
        account_page_requests(&fake),
        0,
        "nothing before the first poll"
    );
    let first = rows.next().await.unwrap().unwrap();
    assert_eq!(first["name"], "Contoso Ltd");
    assert_eq!(account_page_requests(&fake), 1);
    drop(rows);
    // Give anything left behind a chance to run: there must be nothing.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    dataverse.who_am_i().await.unwrap();
    assert_eq!(account_page_requests(&fake), 1, "no second page");
}

#[tokio::test]
async fn a_stream_of_a_thousand_rows_holds_one_page_at_a_time() {
    let fake = Fake::new(FakeConfig {
        account_count: 1000,
        ..FakeConfig::default()
    });
    let dataverse = connect(&fake).await;
    let expected = fake.account_names();
    let mut rows = dataverse.rows(names_query(100));
    let mut seen = 0;
    while let Some(row) = rows.next().await {
        assert_eq!(row.unwrap()["name"], expected[seen]);
        // Row `seen` is on page `seen / 100`: that page and no later one
        // has been asked for, so the host holds one page of 100 rows.
        assert_eq!(account_page_requests(&fake), seen / 100 + 1, "row {seen}");
        seen += 1;
    }
    assert_eq!(seen, 1000);
    assert_eq!(account_page_requests(&fake), 10);
}

#[tokio::test]
async fn a_handle_streams_again_after_a_finished_and_a_dropped_stream() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let all: Vec<Value> = dataverse.rows(names_query(10)).try_collect().await.unwrap();
    assert_eq!(all.len(), 25);
    let workers = dataverse.stats().workers_created;
    let again: Vec<Value> = dataverse.rows(names_query(10)).try_collect().await.unwrap();
    assert_eq!(names(&again), names(&all));
    assert_eq!(
        dataverse.stats().workers_created,
        workers,
        "a finished stream returns its worker"
    );

    let mut dropped = dataverse.rows(names_query(10));
    dropped.next().await.unwrap().unwrap();
    drop(dropped);
    let after: Vec<Value> = dataverse.rows(names_query(25)).try_collect().await.unwrap();
    assert_eq!(names(&after), names(&all));
    assert_eq!(fake.stats().token_requests, 1);
}

#[tokio::test]
async fn a_looping_next_link_ends_the_stream_with_invalid_response_after_every_row_once() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    fake.set_paging_bug(Some(PagingBug::RepeatNextLink));
    let mut rows = dataverse.rows(names_query(5));
    let mut read = Vec::new();
    let error = loop {
        match rows.next().await.expect("ends with an error, not silently") {
            Ok(row) => read.push(row),
            Err(error) => break error,
        }
    };
    assert!(
        matches!(error.kind(), Some(ErrorKind::InvalidResponse(_))),
        "{error}"
    );
    assert_eq!(names(&read), fake.account_names()[..10]);
    assert!(
        rows.next().await.is_none(),
        "the stream ends after its error"
    );
    assert_eq!(
        account_page_requests(&fake),
        2,
        "the repeated link is not requested"
    );
}

#[tokio::test]
async fn a_stream_whose_token_is_refused_on_the_first_page_renews_it_and_reads_on() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    dataverse.who_am_i().await.unwrap();
    fake.revoke_tokens();
    let rows: Vec<Value> = dataverse.rows(names_query(10)).try_collect().await.unwrap();
    assert_eq!(names(&rows), fake.account_names());
    assert_eq!(fake.stats().token_requests, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_and_streams_run_in_spawned_tasks_on_one_token() {
    let fake = Fake::demo();
    let dataverse = connect(&fake).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let dataverse = dataverse.clone();
            tokio::spawn(async move {
                let top = dataverse
                    .query(&Query::new("accounts").select(["name"]).top(1))
                    .await?;
                let all: Vec<Value> = dataverse.rows(names_query(10)).try_collect().await?;
                Ok::<_, Error>((top.rows.len(), all.len()))
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), (1, 25));
    }
    assert_eq!(fake.stats().token_requests, 1);
}
