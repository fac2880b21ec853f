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

fn run(
    answers: Vec<Result<Response, Error>>,
    message: Message,
    rows: &[Value],
    batch: usize,
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
            "accounts",
            "account",
            rows,
            batch,
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
