//! The data-sync commands end to end — `import`, `export --delta`,
//! `upload` / `download` — through the real CLI, the client component in
//! wasmtime and the fake over loopback TLS. Row counts are checked on the
//! fake itself: every row once, none twice, across kills, rejects and
//! throttling.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{command_against, run_against};
use dataverse_fake::{self as fake, Fake, FakeConfig, Fault, RequestLimit};
use serde_json::{Value, json};

const SEEDED: usize = 25;

/// A folder of its own for each test's files, removed when it ends.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!("import-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Folder(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ndjson(path: &str, rows: impl Iterator<Item = Value>) {
    let text: String = rows.map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn numbered(n: usize) -> impl Iterator<Item = Value> {
    (0..n).map(
        |i| json!({"name": format!("Imported {i:05}"), "accountnumber": format!("IMP-{i:05}")}),
    )
}

/// How often each name is in the fake's accounts.
fn name_counts(fake: &Fake) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for name in fake.account_names() {
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

fn assert_each_imported_once(fake: &Fake, n: usize) {
    let counts = name_counts(fake);
    assert_eq!(fake.account_names().len(), SEEDED + n);
    for i in 0..n {
        assert_eq!(
            counts.get(&format!("Imported {i:05}")),
            Some(&1),
            "row {i} must be there exactly once"
        );
    }
}

fn bulk_posts(fake: &Fake, message: &str) -> Vec<u16> {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query.ends_with(message))
        .map(|r| r.status)
        .collect()
}

fn summary(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or(Value::Null)
}

fn checkpoint(path: &str) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_rows_go_in_bulk_batches_and_a_finished_import_is_not_run_twice() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("ten-thousand");
    let file = folder.file("accounts.ndjson");
    ndjson(&file, numbered(10_000));
    let connection = fake::demo_connection_string();
    let args = ["--json", "import", "account", &file, "--batch-size", "500"];
    let started = Instant::now();
    let run = run_against(&server, Some(&connection), &args).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let done = summary(&run.stdout);
    assert_eq!(done["Table"], "accounts");
    assert_eq!(done["Rows"], 10_000);
    assert_eq!(done["Created"], 10_000);
    assert_eq!(done["Failed"], 0);
    assert!(done.get("Rejects").is_none());
    assert_each_imported_once(&fake, 10_000);
    // 20 CreateMultiple requests of 500, nothing else writing.
    assert_eq!(bulk_posts(&fake, "CreateMultiple"), vec![200; 20]);
    assert!(bulk_posts(&fake, "UpsertMultiple").is_empty());
    assert_eq!(checkpoint(&format!("{file}.checkpoint"))["done"], true);
    eprintln!("10,000 rows in {seconds:.1} s");

    // The same command again: refused, nothing sent, nothing duplicated.
    let before = fake.requests().len();
    let again = run_against(&server, Some(&connection), &args).await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("was already imported"),
        "{}",
        again.stderr
    );
    assert_each_imported_once(&fake, 10_000);
    let writes = fake.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query.starts_with("/api/data/"))
        .count();
    assert_eq!(writes, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_import_resumes_with_no_row_lost_or_written_twice() {
    let fake = Fake::demo();
    // Every answer takes 150 ms after the request ran: the kill lands
    // while a bulk request is executed but not yet answered.
    fake.inject(Fault::Slow { millis: 150 }, 100_000);
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("killed");
    let file = folder.file("accounts.ndjson");
    let rows = 4_000;
    ndjson(&file, numbered(rows));
    let connection = fake::demo_connection_string();
    let args = [
        "--json",
        "import",
        "accounts",
        &file,
        "--batch-size",
        "100",
        "--parallel",
        "2",
    ];
    let (mut command, dir) = command_against(&server, Some(&connection), &args);
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint_path = format!("{file}.checkpoint");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let at = checkpoint(&checkpoint_path)["next_row"]
            .as_u64()
            .unwrap_or(0);
        if at >= 1_000 {
            break;
        }
        assert!(Instant::now() < deadline, "the import made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Into the next call's flight, then kill -9.
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
    let killed_at = checkpoint(&checkpoint_path)["next_row"].as_u64().unwrap();
    let written_before = fake.account_names().len() - SEEDED;
    assert!(
        killed_at < rows as u64 && written_before < rows,
        "killed half-way: checkpoint {killed_at}, {written_before} rows on the fake"
    );

    let run = run_against(&server, Some(&connection), &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_each_imported_once(&fake, rows);
    let done = summary(&run.stdout);
    assert_eq!(done["Rows"], rows);
    assert_eq!(done["Failed"], 0);
    // The call after the checkpoint went again as an upsert by the rows'
    // own ids; the others were created.
    assert_eq!(
        done["Created"].as_u64().unwrap() + done["Upserted"].as_u64().unwrap(),
        rows as u64
    );
    assert!(!bulk_posts(&fake, "UpsertMultiple").is_empty());
    eprintln!(
        "killed at checkpoint {killed_at} with {written_before} rows on the fake; resumed: {done}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_rows_go_to_the_rejects_file_and_every_other_row_is_written() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("rejects");
    let file = folder.file("accounts.ndjson");
    let mut lines: Vec<String> = numbered(250).map(|r| r.to_string()).collect();
    // Row 7: a column the table does not have (400). Row 120: the seeded
    // A-0001's alternate key (412). Row 50: not JSON.
    lines[7] = json!({"name": "Imported 00007", "nosuchcolumn": 1}).to_string();
    lines[120] = json!({"name": "Imported 00120", "accountnumber": "A-0001"}).to_string();
    lines[50] = "{\"name\": \"Imported 00050\"".into();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let rejects = folder.file("rejects.ndjson");
    let args = ["--json", "import", "accounts", &file, "--rejects", &rejects];
    let run = run_against(&server, Some(&fake::demo_connection_string()), &args).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("3 of 250 rows were rejected"),
        "{}",
        run.stderr
    );
    let done = summary(&run.stdout);
    assert_eq!(
        (done["Created"].as_u64(), done["Failed"].as_u64()),
        (Some(247), Some(3))
    );
    let counts = name_counts(&fake);
    for i in 0..250 {
        let expected = if [7, 50, 120].contains(&i) {
            None
        } else {
            Some(&1)
        };
        assert_eq!(counts.get(&format!("Imported {i:05}")), expected, "row {i}");
    }
    let rejected: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows: Vec<u64> = rejected
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    assert_eq!(
        rows,
        vec![7, 120, 50],
        "batch order, unreadable rows after their call"
    );
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap()
            .contains("nosuchcolumn")
    );
    assert_eq!(rejected[0]["data"]["nosuchcolumn"], 1);
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .contains("0x80040237")
    );
    assert!(
        rejected[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("not JSON")
    );
    // The two refused batches of 100 went again row by row: 3 batches + 200 singles.
    let posts = bulk_posts(&fake, "CreateMultiple");
    assert_eq!(posts.len(), 3 + 200);
    assert_eq!(posts.iter().filter(|s| **s >= 400).count(), 2 + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_import_waits_as_one_and_writes_every_row() {
    let config = FakeConfig {
        request_limit: Some(RequestLimit {
            requests: 6,
            window_ms: 1_000,
        }),
        ..FakeConfig::default()
    };
    let fake = Fake::new(config);
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("throttled");
    let file = folder.file("accounts.ndjson");
    ndjson(&file, numbered(3_000));
    let args = [
        "--json",
        "import",
        "accounts",
        &file,
        "--batch-size",
        "100",
        "--parallel",
        "4",
    ];
    let started = Instant::now();
    let run = run_against(&server, Some(&fake::demo_connection_string()), &args).await;
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_each_imported_once(&fake, 3_000);
    let posts = bulk_posts(&fake, "CreateMultiple");
    let throttled = posts.iter().filter(|s| **s == 429).count();
    assert_eq!(posts.len() - throttled, 30, "every batch written once");
    assert!(throttled > 0, "the limit was reached");
    // 30 batches and a table lookup at 6 per second: at least 5 windows.
    assert!(seconds >= 4.0, "{seconds:.1} s");
    eprintln!("3,000 rows throttled: {throttled} answers 429, {seconds:.1} s");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_file_upserts_by_alternate_key() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("csv");
    let file = folder.file("accounts.csv");
    std::fs::write(
        &file,
        "accountnumber,name,revenue\nA-0001,Contoso Renamed,1250.5\nA-0002,\"Fabrikam, Renamed\",\nNEW-1,New One,7\nNEW-2,Not a number,lots\n",
    )
    .unwrap();
    let args = [
        "--json",
        "import",
        "account",
        &file,
        "--upsert-key",
        "accountnumber",
    ];
    let run = run_against(&server, Some(&fake::demo_connection_string()), &args).await;
    // The fourth row's revenue is not a number: rejected, the others written.
    assert_eq!(run.code, 4, "{}", run.stderr);
    let done = summary(&run.stdout);
    assert_eq!(
        (
            done["Upserted"].as_u64(),
            done["Created"].as_u64(),
            done["Failed"].as_u64()
        ),
        (Some(3), Some(0), Some(1))
    );
    let rejects = std::fs::read_to_string(format!("{file}.rejects.ndjson")).unwrap();
    assert!(
        rejects.contains("column revenue needs a number"),
        "{rejects}"
    );
    let names = fake.account_names();
    assert_eq!(names.len(), SEEDED + 1);
    assert_eq!(&names[..2], ["Contoso Renamed", "Fabrikam, Renamed"]);
    assert_eq!(names[SEEDED], "New One");
    assert_eq!(bulk_posts(&fake, "UpsertMultiple"), vec![204]);
    let body: Value = serde_json::from_slice(
        &fake
            .requests()
            .iter()
            .find(|r| r.path_and_query.ends_with("UpsertMultiple"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        body["Targets"][0]["@odata.id"],
        "accounts(accountnumber='A-0001')"
    );
    assert_eq!(
        body["Targets"][0]["@odata.type"],
        "Microsoft.Dynamics.CRM.account"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_fail_before_anything_is_written() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("bad");
    let file = folder.file("accounts.ndjson");
    ndjson(&file, numbered(3));
    let connection = fake::demo_connection_string();
    for (args, code, why) in [
        (
            vec!["import", "accounts", &file, "--batch-size", "0"],
            2,
            "--batch-size must be 1..=1000",
        ),
        (
            vec!["import", "accounts", &file, "--batch-size", "1001"],
            2,
            "--batch-size must be 1..=1000",
        ),
        (
            vec!["import", "accounts", &file, "--parallel", "53"],
            2,
            "expected auto or 1..=52",
        ),
        (
            vec!["import", "accounts", "/nonexistent/rows.ndjson"],
            2,
            "cannot be read",
        ),
        (
            vec!["import", "nosuchtable", &file],
            4,
            "no table has the entity set name or logical name 'nosuchtable'",
        ),
    ] {
        let run = run_against(&server, Some(&connection), &args).await;
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(why), "{args:?}: {}", run.stderr);
    }
    assert_eq!(fake.account_names().len(), SEEDED);
    // A checkpoint of another import is not taken for this one.
    let checkpoint = format!("{file}.checkpoint");
    std::fs::write(&checkpoint, r#"{"format":1,"file":"x.ndjson","file_bytes":1,"table":"accounts","upsert_key":[],"seed":"01","next_row":0,"created":0,"upserted":0,"failed":0,"done":false}"#).unwrap();
    let run = run_against(&server, Some(&connection), &["import", "accounts", &file]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is of another import"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.account_names().len(), SEEDED);
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_rows_changed_then_exported_again_give_only_the_changes() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("delta");
    let file = folder.file("accounts.ndjson");
    ndjson(&file, numbered(10_000));
    let connection = fake::demo_connection_string();
    let run = run_against(
        &server,
        Some(&connection),
        &[
            "--json",
            "import",
            "accounts",
            &file,
            "--batch-size",
            "1000",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let state = folder.file("accounts.delta");
    let export = [
        "--json",
        "export",
        "accounts",
        "--select",
        "name,accountnumber",
        "--page-size",
        "5000",
        "--delta",
        &state,
    ];
    let first = run_against(&server, Some(&connection), &export).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let rows = lines(&first.stdout);
    assert_eq!(rows.len(), SEEDED + 10_000);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(
        saved["delta_link"]
            .as_str()
            .unwrap()
            .contains("$deltatoken=")
    );
    let id_of = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["accountid"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (changed_a, changed_b, gone) = (
        id_of("Imported 00010"),
        id_of("Imported 09999"),
        id_of("Imported 00030"),
    );
    for args in [
        vec![
            "update",
            "accounts",
            &changed_a,
            "--data",
            r#"{"name":"Changed 10"}"#,
        ],
        vec![
            "update",
            "accounts",
            &changed_b,
            "--data",
            r#"{"name":"Changed 9999"}"#,
        ],
        vec!["delete", "accounts", &gone],
        vec!["create", "accounts", "--data", r#"{"name":"Added later"}"#],
    ] {
        let run = run_against(&server, Some(&connection), &args).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }

    let second = run_against(&server, Some(&connection), &export).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    let changes = lines(&second.stdout);
    let names: Vec<&str> = changes.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["Changed 10", "Changed 9999", "Added later"]);
    let deleted: Vec<&Value> = changes
        .iter()
        .filter(|c| {
            c["@odata.context"]
                .as_str()
                .is_some_and(|ctx| ctx.ends_with("#accounts/$deletedEntity"))
        })
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["id"], gone.as_str());
    assert_eq!(deleted[0]["reason"], "deleted");
    assert_eq!(changes.len(), 4);

    // Nothing changed since: nothing printed, a new link kept.
    let third = run_against(&server, Some(&connection), &export).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(third.stdout, "");
    // Another read's state is not taken for this one.
    let other = run_against(
        &server,
        Some(&connection),
        &["export", "accounts", "--select", "name", "--delta", &state],
    )
    .await;
    assert_eq!(other.code, 2, "{}", other.stderr);
    assert!(
        other.stderr.contains("continues the export of accounts"),
        "{}",
        other.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_column_round_trips_through_upload_and_download() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("files");
    let file = folder.file("report.bin");
    let bytes: Vec<u8> = (0..9 * 1024 * 1024 + 3).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let connection = fake::demo_connection_string();
    let key = "accountnumber='A-0001'";
    let up = run_against(
        &server,
        Some(&connection),
        &[
            "--json",
            "upload",
            "accounts",
            key,
            "sample_filecolumn",
            &file,
        ],
    )
    .await;
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert_eq!(
        summary(&up.stdout),
        json!({"Uploaded": bytes.len(), "FileName": "report.bin"})
    );
    let out = folder.file("copy.bin");
    let down = run_against(
        &server,
        Some(&connection),
        &[
            "--json",
            "download",
            "accounts",
            key,
            "sample_filecolumn",
            "--out",
            &out,
        ],
    )
    .await;
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert_eq!(summary(&down.stdout)["Downloaded"], bytes.len());
    assert!(std::fs::read(&out).unwrap() == bytes, "the copy differs");
    assert!(!std::path::Path::new(&format!("{out}.part")).exists());
    // Three 4 MiB chunks each way.
    let ranged = fake
        .requests()
        .iter()
        .filter(|r| r.header("range").is_some() || r.header("content-range").is_some())
        .count();
    assert_eq!(ranged, 6);
    // Nothing there: exit 4, and no file left under the name asked for.
    let missing = folder.file("missing.bin");
    let none = run_against(
        &server,
        Some(&connection),
        &[
            "download",
            "accounts",
            "accountnumber='A-0002'",
            "sample_filecolumn",
            "--out",
            &missing,
        ],
    )
    .await;
    assert_eq!(none.code, 4, "{}", none.stderr);
    assert!(!std::path::Path::new(&missing).exists());
    assert!(!std::path::Path::new(&format!("{missing}.part")).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_multiple_removes_the_rows_a_file_lists_in_batches() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("delete-multiple");
    let connection = fake::demo_connection_string();
    let all = run_against(
        &server,
        Some(&connection),
        &["--json", "query", "accounts", "--select", "name", "--all"],
    )
    .await;
    let ids: Vec<String> = lines(&all.stdout)
        .iter()
        .map(|r| r["accountid"].as_str().unwrap().to_string())
        .collect();
    // Rows 4..=20 by id, two by alternate key, one that does not exist.
    let mut keys: Vec<String> = ids[3..20].to_vec();
    keys.push("accountnumber='A-0001'".into());
    keys.push("accountnumber='A-0002'".into());
    keys.push("00000000-0000-0000-0000-000000000001".into());
    let file = folder.file("keys.txt");
    std::fs::write(&file, keys.join("\n\n") + "\n").unwrap();
    let run = run_against(
        &server,
        Some(&connection),
        &[
            "--json",
            "delete-multiple",
            "account",
            &file,
            "--batch-size",
            "7",
            "--parallel",
            "2",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        summary(&run.stdout),
        json!({"Table": "accounts", "Deleted": 20, "Failed": 0})
    );
    let names = fake.account_names();
    assert_eq!(names.len(), 25 - 19);
    assert_eq!(names[0], "Adventure Works");
    // 20 keys in batches of 7: three $batch requests, no DeleteMultiple.
    let batches = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query == "/api/data/v9.2/$batch")
        .count();
    assert_eq!(batches, 3);
    // A malformed key: refused before anything is sent.
    std::fs::write(&file, "not a key\n").unwrap();
    let bad = run_against(
        &server,
        Some(&connection),
        &["delete-multiple", "accounts", &file],
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert_eq!(fake.account_names().len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_of_0_1_1000_and_1001_rows_at_the_largest_batch() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let folder = Folder::new("counts");
    let connection = fake::demo_connection_string();
    let mut total = 0;
    for (n, requests) in [(0usize, 0usize), (1, 1), (1_000, 1), (1_001, 2)] {
        let file = folder.file(&format!("rows-{n}.ndjson"));
        // Each file its own names, so the counts add up across runs.
        let text: String = (0..n)
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"name": format!("Imported {:05}", total + i)})
                )
            })
            .collect();
        std::fs::write(&file, text).unwrap();
        let before = bulk_posts(&fake, "CreateMultiple").len();
        let run = run_against(
            &server,
            Some(&connection),
            &[
                "--json",
                "import",
                "accounts",
                &file,
                "--batch-size",
                "1000",
            ],
        )
        .await;
        assert_eq!(run.code, 0, "{n}: {}", run.stderr);
        let done = summary(&run.stdout);
        assert_eq!(
            (done["Rows"].as_u64(), done["Created"].as_u64()),
            (Some(n as u64), Some(n as u64)),
            "{n}"
        );
        assert_eq!(
            bulk_posts(&fake, "CreateMultiple").len() - before,
            requests,
            "{n}"
        );
        total += n;
    }
    assert_each_imported_once(&fake, total);
}
