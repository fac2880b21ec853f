//! The embedding library's guarantees: one token for many concurrent calls,
//! typed traps, a fresh instance after a trap, memory and time limits.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use dataverse_fake::{self as fake, Fake, FakeConfig, Fault};
use dataverse_host::session::DEFAULT_CLIENT_OPTIONS as OPTIONS;
use dataverse_host::{
    Allocation, CallError, Dataverse, DataverseConfig, GuestTrap, Limits, Query, Runtime, Session,
};

fn runtime_with(limits: Limits) -> Arc<Runtime> {
    Arc::new(
        Runtime::from_wasm_with(dataverse_artifacts::CLIENT, limits).expect("the component loads"),
    )
}

fn demo_connection() -> String {
    fake::demo_connection_string()
}

fn accounts_query(page_size: Option<u32>) -> Query {
    Query {
        page_size,
        ..Query::new("accounts").select(["name"])
    }
}

fn shared_runtime() -> Arc<Runtime> {
    static RUNTIME: std::sync::OnceLock<Arc<Runtime>> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| runtime_with(Limits::default()))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_calls_with_one_settings_need_one_token() {
    let fake = Fake::demo();
    let dataverse = Dataverse::connect(shared_runtime(), fake.clone(), &demo_connection())
        .await
        .expect("connects");
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let dataverse = dataverse.clone();
            tokio::spawn(async move { dataverse.who_am_i().await })
        })
        .collect();
    for call in calls {
        let me = call.await.expect("task").expect("WhoAmI");
        assert_eq!(me.user_id, fake::DEMO_USER_ID);
    }
    assert_eq!(fake.stats().token_requests, 1, "one token for all 32 calls");
    assert_eq!(fake.stats().discovery_requests, 1);
    let stats = dataverse.stats();
    assert!(
        (1..=32).contains(&stats.workers_created),
        "workers {}",
        stats.workers_created
    );
    assert_eq!(stats.idle_workers as u64, stats.workers_created);

    // Sequential calls reuse the idle workers: no new instance, no new token.
    for _ in 0..10 {
        dataverse.who_am_i().await.expect("WhoAmI");
    }
    assert_eq!(dataverse.stats().workers_created, stats.workers_created);
    assert_eq!(fake.stats().token_requests, 1);
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once_for_every_worker() {
    let fake = Fake::demo();
    let dataverse = Dataverse::connect(shared_runtime(), fake.clone(), &demo_connection())
        .await
        .expect("connects");
    dataverse.who_am_i().await.expect("WhoAmI");
    fake.revoke_tokens();
    dataverse
        .who_am_i()
        .await
        .expect("renewed after the refusal");
    dataverse.who_am_i().await.expect("the renewed token works");
    assert_eq!(fake.stats().token_requests, 2);
    assert_eq!(dataverse.stats().tokens_shared, 2);
}

/// Either allocator: the limit is the store's, so an instance mapped on
/// demand (the CLI's) is held to it as a pooled one is.
#[tokio::test]
async fn growing_past_the_memory_limit_is_a_typed_trap() {
    for allocation in [Allocation::Pooled, Allocation::OnDemand] {
        let fake = Fake::demo();
        let runtime = runtime_with(Limits {
            max_memory_bytes: 8 * 1024 * 1024,
            allocation,
            ..Limits::default()
        });
        let mut session = runtime
            .connect(fake.clone(), &demo_connection(), OPTIONS)
            .await
            .expect("connects within 8 MiB");
        fake.inject(
            Fault::Oversized {
                bytes: 32 * 1024 * 1024,
            },
            1,
        );
        let error = session
            .retrieve_multiple(&accounts_query(None), None)
            .await
            .expect_err("a 32 MiB answer does not fit in 8 MiB");
        assert!(
            matches!(
                error,
                CallError::Trapped(GuestTrap::MemoryLimit {
                    limit_bytes: 8388608
                })
            ),
            "{allocation:?}: {error:?}"
        );
        assert!(session.peak_memory_bytes() <= 8 * 1024 * 1024);
        assert!(error.to_string().contains("memory limit"), "{error}");
    }
}

#[tokio::test]
async fn after_a_trap_the_next_call_runs_on_a_fresh_instance() {
    let fake = Fake::demo();
    let runtime = runtime_with(Limits {
        max_memory_bytes: 8 * 1024 * 1024,
        ..Limits::default()
    });
    let dataverse = Dataverse::connect_with(
        runtime,
        fake.clone(),
        &demo_connection(),
        DataverseConfig {
            max_workers: 1,
            ..DataverseConfig::default()
        },
    )
    .await
    .expect("connects");
    dataverse.who_am_i().await.expect("WhoAmI");
    assert_eq!(dataverse.stats().workers_created, 1);

    fake.inject(
        Fault::Oversized {
            bytes: 32 * 1024 * 1024,
        },
        1,
    );
    let query = accounts_query(None);
    let error = dataverse
        .with(async |session: &mut Session| session.retrieve_multiple(&query, None).await)
        .await
        .expect_err("traps");
    assert!(matches!(error, CallError::Trapped(_)), "{error:?}");
    assert_eq!(
        dataverse.stats().idle_workers,
        0,
        "the dead instance is gone"
    );

    let page = dataverse
        .with(async |session: &mut Session| session.retrieve_multiple(&query, None).await)
        .await
        .expect("the next call works");
    assert!(!page.rows.is_empty());
    assert_eq!(dataverse.stats().workers_created, 2, "a fresh instance");
    assert_eq!(
        fake.stats().token_requests,
        1,
        "the token survived the trap"
    );
}

#[tokio::test]
async fn a_call_past_its_deadline_is_a_typed_trap() {
    // The guest waits past the deadline on a slow server, then traps as soon
    // as it runs again instead of going on. (A guest spinning in a loop is
    // stopped the same way: see the runtime's unit tests.)
    let fake = Fake::demo();
    let mut session = runtime_with(Limits {
        call_deadline: Duration::from_millis(100),
        ..Limits::default()
    })
    .connect(fake.clone(), &demo_connection(), OPTIONS)
    .await
    .expect("connects within 100 ms");
    fake.inject(Fault::Slow { millis: 400 }, 1);
    let error = session.who_am_i(None).await.expect_err("deadline");
    assert!(
        matches!(error, CallError::Trapped(GuestTrap::DeadlineExceeded)),
        "{error:?}"
    );
    assert!(error.to_string().contains("deadline"), "{error}");
    // Each call gets the whole budget again: a quick call after it is fine
    // on a new instance.
    let mut again = runtime_with(Limits {
        call_deadline: Duration::from_millis(100),
        ..Limits::default()
    })
    .connect(fake, &demo_connection(), OPTIONS)
    .await
    .expect("connects");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        again.who_am_i(None).await.expect("within its own deadline");
    }
}

#[tokio::test]
async fn paging_ten_thousand_rows_stays_within_eight_mib_of_guest_memory() {
    let fake = Fake::new(FakeConfig {
        account_count: 10_000,
        ..FakeConfig::default()
    });
    let runtime = shared_runtime();
    let mut session = runtime
        .connect(fake.clone(), &demo_connection(), OPTIONS)
        .await
        .expect("connects");
    let mut query = accounts_query(Some(5000));
    query.select = vec!["name".into(), "accountnumber".into()];
    let mut rows = 0usize;
    let read = session
        .read_all(&query, u64::MAX, None, |page| {
            rows += page.row_count as usize;
            ControlFlow::Continue(())
        })
        .await
        .expect("reads every page");
    assert_eq!(read, 10_000);
    assert_eq!(rows, 10_000);
    let peak = session.peak_memory_bytes();
    assert!(peak <= 8 * 1024 * 1024, "peak guest memory {peak} bytes");
}
