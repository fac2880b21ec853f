//! Bulk messages through the client: batches split and reported with their
//! rows, a refused batch that does not stop the others, a lost connection
//! that stops the call without sending the POST twice, bad rows refused
//! before anything is written.

use serde_json::{Value, json};

use super::tests::{challenge, token};
use super::*;
use crate::scripted::{Scripted, response};
use crate::webapi::bulk::Message;

fn settings() -> Settings {
    crate::settings::parse(
        "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=app;ClientSecret=s3cret",
    )
    .unwrap()
}

fn rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"name": format!("row {i}")}))
        .collect()
}

/// `n` GUIDs starting at `first`.
fn ids(first: usize, n: usize) -> Vec<String> {
    (first..first + n)
        .map(|i| format!("00000000-0000-0000-0000-{i:012x}"))
        .collect()
}

fn created(first: usize, n: usize) -> Response {
    response(200, &[], &json!({ "Ids": ids(first, n) }).to_string())
}

fn service_error(status: u16) -> Response {
    response(
        status,
        &[],
        r#"{"error":{"code":"0x80040237","message":"A record with matching key values already exists."}}"#,
    )
}

fn accounts() -> TableInfo {
    TableInfo {
        logical_name: "account".into(),
        entity_set: "accounts".into(),
        primary_id: "accountid".into(),
        primary_name: Some("name".into()),
        table_type: "Standard".into(),
    }
}

fn run(
    answers: Vec<Result<Response, Error>>,
    message: Message,
    rows: &[Value],
    batch: usize,
) -> (Result<BulkReport, Error>, Scripted) {
    run_parallel(answers, message, rows, batch, Some(1))
}

fn run_parallel(
    answers: Vec<Result<Response, Error>>,
    message: Message,
    rows: &[Value],
    batch: usize,
    parallel: Option<u32>,
) -> (Result<BulkReport, Error>, Scripted) {
    let mut all = vec![Ok(challenge()), Ok(token("t1"))];
    all.extend(answers);
    let mut t = Scripted {
        answers: all.into(),
        now: 1_000,
        random: 7,
        ..Scripted::default()
    };
    let report = {
        let mut client = Client::connect(settings(), &mut t, ClientConfig::default()).unwrap();
        client.bulk(
            message,
            &accounts(),
            rows,
            batch,
            parallel,
            &CallOptions::default(),
        )
    };
    (report, t)
}

fn targets(request: &Request) -> usize {
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    body["Targets"].as_array().unwrap().len()
}

#[test]
fn rows_are_sent_in_batches_and_every_id_comes_back_in_order() {
    let (report, t) = run(
        vec![
            Ok(created(0, 100)),
            Ok(created(100, 100)),
            Ok(created(200, 50)),
        ],
        Message::Create,
        &rows(250),
        100,
    );
    let report = report.unwrap();
    assert!(report.complete());
    assert_eq!(report.unwritten_rows(), 0);
    let mut all = Vec::new();
    for (batch, range) in report.batches.iter().zip([0..100, 100..200, 200..250]) {
        assert_eq!(batch.rows, range);
        let BatchOutcome::Done { ids, call } = &batch.outcome else {
            panic!("{batch:?}")
        };
        assert_eq!(call.attempts, 1);
        all.extend(ids.clone());
    }
    assert_eq!(all, ids(0, 250));
    let posts: Vec<_> = t.sent.iter().skip(2).collect();
    assert_eq!(
        posts.iter().map(|r| targets(r)).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert!(posts.iter().all(|r| {
        r.url
            .ends_with("/accounts/Microsoft.Dynamics.CRM.CreateMultiple")
    }));
}

#[test]
fn a_refused_batch_is_reported_with_its_rows_and_the_others_go_on() {
    let (report, _) = run(
        vec![Ok(created(0, 2)), Ok(service_error(400)), Ok(created(4, 1))],
        Message::Create,
        &rows(5),
        2,
    );
    let report = report.unwrap();
    assert!(!report.complete());
    assert_eq!(report.unwritten_rows(), 2);
    assert!(matches!(
        report.batches[0].outcome,
        BatchOutcome::Done { .. }
    ));
    assert_eq!(report.batches[1].rows, 2..4);
    let BatchOutcome::Failed(failure) = &report.batches[1].outcome else {
        panic!("{:?}", report.batches[1])
    };
    assert!(
        failure.error.to_string().contains("0x80040237"),
        "{}",
        failure.error
    );
    assert!(matches!(
        report.batches[2].outcome,
        BatchOutcome::Done { .. }
    ));
}

#[test]
fn a_connection_lost_after_a_post_stops_the_call_and_nothing_is_sent_twice() {
    let (report, t) = run(
        vec![
            Ok(created(0, 2)),
            Err(Error::Transport("connection reset".into())),
            Ok(created(4, 2)),
        ],
        Message::Create,
        &rows(6),
        2,
    );
    let report = report.unwrap();
    let outcomes: Vec<_> = report.batches.iter().map(|b| &b.outcome).collect();
    assert!(matches!(outcomes[0], BatchOutcome::Done { .. }));
    assert!(
        matches!(outcomes[1], BatchOutcome::Failed(f) if matches!(f.error, Error::Transport(_)))
    );
    assert_eq!(outcomes[2], &BatchOutcome::NotSent);
    assert_eq!(report.unwritten_rows(), 4);
    // Discovery, token, batch 1, batch 2 once: the lost POST is not resent.
    assert_eq!(t.sent.len(), 4);
}

#[test]
fn a_throttled_batch_waits_and_is_sent_again() {
    // 429 means Dataverse did not run the request: resending is safe.
    let (report, t) = run(
        vec![
            Ok(response(
                429,
                &[("Retry-After", "2")],
                r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit"}}"#,
            )),
            Ok(created(0, 3)),
        ],
        Message::Create,
        &rows(3),
        100,
    );
    let report = report.unwrap();
    assert!(report.complete());
    let BatchOutcome::Done { call, .. } = &report.batches[0].outcome else {
        panic!()
    };
    assert_eq!(call.attempts, 2);
    assert_eq!(t.slept, vec![2_000]);
}

#[test]
fn a_wrong_id_count_fails_that_batch_only() {
    let (report, _) = run(
        vec![Ok(created(0, 1)), Ok(created(2, 2))],
        Message::Create,
        &rows(4),
        2,
    );
    let report = report.unwrap();
    assert!(
        matches!(&report.batches[0].outcome, BatchOutcome::Failed(f) if matches!(f.error, Error::InvalidResponse(_)))
    );
    assert!(matches!(
        report.batches[1].outcome,
        BatchOutcome::Done { .. }
    ));
}

#[test]
fn update_and_upsert_answer_204_without_ids() {
    for message in [Message::Update, Message::Upsert] {
        let (report, t) = run(
            vec![Ok(response(204, &[], ""))],
            message,
            &[json!({"accountid": "00000000-0000-0000-0000-000000000001", "name": "A"})],
            100,
        );
        let report = report.unwrap();
        assert!(report.complete());
        assert!(
            matches!(&report.batches[0].outcome, BatchOutcome::Done { ids, .. } if ids.is_empty())
        );
        assert!(t.sent[2].url.ends_with(message.name()));
    }
}

#[test]
fn a_bad_row_anywhere_fails_the_call_before_anything_is_written() {
    let mut all = rows(5);
    all[4] = json!("not an object");
    let (report, t) = run(vec![], Message::Create, &all, 2);
    let err = report.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m == "row 4 is not a JSON object"),
        "{err:?}"
    );
    assert_eq!(t.sent.len(), 2, "only discovery and the token");
    let (report, _) = run(vec![], Message::Create, &rows(3), 0);
    assert!(matches!(report, Err(Error::InvalidRequest(_))));
    let (report, _) = run(vec![], Message::Create, &[], 100);
    assert_eq!(report.unwrap().batches, vec![]);
}

fn throttled(retry_after: &str) -> Response {
    response(
        429,
        &[("Retry-After", retry_after)],
        r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}"#,
    )
}

#[test]
fn batches_go_in_waves_and_a_throttled_one_holds_back_the_whole_wave_once() {
    // 7 batches, 3 at a time: waves of 3, 3, 1. In the first wave two
    // batches are throttled (2 s and 5 s): one wait of 5 s, then both again.
    let (report, t) = run_parallel(
        vec![
            Ok(created(0, 1)),
            Ok(throttled("2")),
            Ok(throttled("5")),
            Ok(created(1, 1)),
            Ok(created(2, 1)),
            Ok(created(3, 1)),
            Ok(created(4, 1)),
            Ok(created(5, 1)),
            Ok(created(6, 1)),
        ],
        Message::Create,
        &rows(7),
        1,
        Some(3),
    );
    let report = report.unwrap();
    assert!(report.complete(), "{report:?}");
    assert_eq!(t.waves, vec![3, 2, 3, 1]);
    assert_eq!(t.slept, vec![5_000]);
    let attempts: Vec<u32> = report
        .batches
        .iter()
        .map(|b| match &b.outcome {
            BatchOutcome::Done { call, .. } => call.attempts,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(attempts, vec![1, 2, 2, 1, 1, 1, 1]);
    // Every row exactly once in the ids, in order of the rows.
    let ids_of = |b: &BulkBatch| match &b.outcome {
        BatchOutcome::Done { ids, .. } => ids.clone(),
        _ => vec![],
    };
    assert_eq!(ids_of(&report.batches[1]), ids(1, 1));
    assert_eq!(ids_of(&report.batches[2]), ids(2, 1));
    // Each batch its own request id, kept across its attempts.
    let request_ids: Vec<_> = t
        .sent
        .iter()
        .skip(2)
        .map(|r| {
            r.header_value("x-ms-client-request-id")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(request_ids[1], request_ids[3]);
    assert_eq!(request_ids[2], request_ids[4]);
}

#[test]
fn without_a_given_width_the_waves_follow_the_dop_hint() {
    let hinted = |first: usize, hint: &str| {
        response(
            200,
            &[("x-ms-dop-hint", hint)],
            &json!({ "Ids": ids(first, 1) }).to_string(),
        )
    };
    // No hint yet: one batch; it says 4, then waves of 4; a batch of the
    // second wave says 2, so the last waves are of 2.
    let (report, t) = run_parallel(
        vec![
            Ok(hinted(0, "4")),
            Ok(created(1, 1)),
            Ok(created(2, 1)),
            Ok(hinted(3, "2")),
            Ok(created(4, 1)),
            Ok(created(5, 1)),
            Ok(created(6, 1)),
            Ok(created(7, 1)),
        ],
        Message::Create,
        &rows(8),
        1,
        None,
    );
    assert!(report.unwrap().complete());
    assert_eq!(t.waves, vec![1, 4, 2, 1]);
}

#[test]
fn a_lost_connection_in_a_wave_stops_the_later_waves_only() {
    let (report, t) = run_parallel(
        vec![
            Ok(created(0, 1)),
            Err(Error::Transport("connection reset".into())),
            Ok(created(2, 1)),
        ],
        Message::Create,
        &rows(5),
        1,
        Some(3),
    );
    let report = report.unwrap();
    let outcomes: Vec<_> = report.batches.iter().map(|b| &b.outcome).collect();
    assert!(matches!(outcomes[0], BatchOutcome::Done { .. }));
    assert!(matches!(outcomes[1], BatchOutcome::Failed(_)));
    assert!(matches!(outcomes[2], BatchOutcome::Done { .. }));
    assert_eq!(outcomes[3], &BatchOutcome::NotSent);
    assert_eq!(outcomes[4], &BatchOutcome::NotSent);
    assert_eq!(t.waves, vec![3]);
    assert_eq!(report.unwritten_rows(), 3);
}

#[test]
fn a_width_outside_the_limit_is_refused_before_anything_is_sent() {
    for bad in [0, 53] {
        let (report, t) = run_parallel(vec![], Message::Create, &rows(3), 1, Some(bad));
        assert!(
            matches!(&report, Err(Error::InvalidRequest(m)) if m.contains("1..=52")),
            "{report:?}"
        );
        assert_eq!(t.sent.len(), 2, "only discovery and the token");
    }
}

#[test]
fn a_table_is_looked_up_by_set_then_by_logical_name_once_per_client() {
    let definition = r#"{"LogicalName":"account","EntitySetName":"accounts","PrimaryIdAttribute":"accountid","PrimaryNameAttribute":"name","TableType":"Standard"}"#;
    let mut t = Scripted {
        answers: vec![
            Ok(challenge()),
            Ok(token("t1")),
            Ok(response(200, &[], r#"{"value":[]}"#)),
            Ok(response(200, &[], definition)),
            Ok(response(
                200,
                &[],
                r#"{"value":[]}"#,
            )),
            Ok(response(
                404,
                &[],
                r#"{"error":{"code":"0x80040217","message":"Could not find entity with name 'nothing'"}}"#,
            )),
        ]
        .into(),
        now: 1_000,
        random: 7,
        ..Scripted::default()
    };
    {
        let mut client = Client::connect(settings(), &mut t, ClientConfig::default()).unwrap();
        let options = CallOptions::default();
        let first = client.table("account", &options).unwrap();
        assert_eq!(first.value, accounts());
        assert_eq!(first.call.attempts, 1);
        // Both names answer from the cache now, with nothing sent.
        for name in ["accounts", "ACCOUNT"] {
            let again = client.table(name, &options).unwrap();
            assert_eq!((again.value, again.call.attempts), (accounts(), 0));
        }
        let missing = client.table("nothing", &options).unwrap_err();
        assert!(
            matches!(&missing.error, Error::NotFound(m) if m.message.contains("no table has the entity set name or logical name 'nothing'")),
            "{missing:?}"
        );
        assert!(matches!(
            client.table("a'b", &options).unwrap_err().error,
            Error::InvalidRequest(_)
        ));
    }
    let urls = t.sent_urls();
    assert_eq!(urls.len(), 6);
    assert!(
        urls[2].contains("EntityDefinitions?$select=")
            && urls[2].ends_with("EntitySetName%20eq%20'account'")
    );
    assert!(urls[3].contains("EntityDefinitions(LogicalName='account')"));
}
