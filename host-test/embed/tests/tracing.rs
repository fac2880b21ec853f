//! What the handle reports to `tracing`: a `dataverse.call` span per call
//! with its fields, a `dataverse.http` event per exchange inside it, and no
//! secret anywhere. A test binary of its own, because the subscriber it
//! installs is the process-wide default (the exchanges run on tasks of
//! their own, on any thread of the runtime).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use dataverse_fake::{self as fake, Fake};
use dataverse_host::{Dataverse, EntityRef, Query, Runtime};
use futures_util::TryStreamExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;

/// A span as the subscriber saw it: its name, its parent and its fields.
#[derive(Clone, Debug)]
struct SpanRecord {
    name: String,
    target: String,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
    #[allow(dead_code)] // for `current_span`, not for assertions
    metadata: &'static Metadata<'static>,
}

#[derive(Clone, Debug)]
struct EventRecord {
    target: String,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
}

/// Records every span and event of every target and level, and keeps each
/// thread's stack of entered spans so `Span::current()` works.
#[derive(Default)]
struct Capture {
    next_id: AtomicU64,
    spans: Mutex<BTreeMap<u64, SpanRecord>>,
    events: Mutex<Vec<EventRecord>>,
}

thread_local! {
    static ENTERED: std::cell::RefCell<Vec<(Id, &'static Metadata<'static>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl Capture {
    fn current(&self) -> Option<u64> {
        ENTERED.with(|stack| stack.borrow().last().map(|(id, _)| id.into_u64()))
    }

    fn spans(&self) -> Vec<(u64, SpanRecord)> {
        let spans = self.spans.lock().unwrap();
        spans.iter().map(|(id, span)| (*id, span.clone())).collect()
    }

    fn events(&self) -> Vec<EventRecord> {
        self.events.lock().unwrap().clone()
    }

    /// Everything captured from targets that start with `target`, as one
    /// text to search.
    fn text(&self, target: &str) -> String {
        let spans: Vec<_> = self
            .spans()
            .into_iter()
            .filter(|(_, span)| span.target.starts_with(target))
            .map(|(id, span)| (id, span.name, span.parent, span.fields))
            .collect();
        let events: Vec<_> = self
            .events()
            .into_iter()
            .filter(|event| event.target.starts_with(target))
            .collect();
        format!("{spans:?}{events:?}")
    }
}

/// The subscriber: `Capture` behind an `Arc`, so the test keeps a handle.
struct Capturing(Arc<Capture>);

impl Subscriber for Capturing {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let capture = &self.0;
        let id = capture.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let parent = match attributes.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if attributes.is_contextual() => capture.current(),
            None => None,
        };
        let mut span = SpanRecord {
            name: attributes.metadata().name().to_string(),
            target: attributes.metadata().target().to_string(),
            parent,
            fields: BTreeMap::new(),
            metadata: attributes.metadata(),
        };
        attributes.record(&mut Fields(&mut span.fields));
        capture.spans.lock().unwrap().insert(id, span);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(span) = self.0.spans.lock().unwrap().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let parent = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => self.0.current(),
            None => None,
        };
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.events.lock().unwrap().push(EventRecord {
            target: event.metadata().target().to_string(),
            parent,
            fields,
        });
    }

    fn enter(&self, span: &Id) {
        let metadata = self.0.spans.lock().unwrap()[&span.into_u64()].metadata;
        ENTERED.with(|stack| stack.borrow_mut().push((span.clone(), metadata)));
    }

    fn exit(&self, span: &Id) {
        ENTERED.with(|stack| {
            let mut stack = stack.borrow_mut();
            if let Some(at) = stack.iter().rposition(|(id, _)| id == span) {
                stack.remove(at);
            }
        });
    }

    fn current_span(&self) -> Current {
        ENTERED.with(|stack| match stack.borrow().last() {
            Some((id, metadata)) => Current::new(id.clone(), metadata),
            None => Current::none(),
        })
    }
}

fn capture() -> Arc<Capture> {
    static CAPTURE: OnceLock<Arc<Capture>> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Arc::new(Capture::default());
            tracing::subscriber::set_global_default(Capturing(capture.clone()))
                .expect("the only subscriber of this test binary");
            capture
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_spans_with_their_fields_exchanges_are_events_inside_and_no_secret_shows() {
    let capture = capture();
    let fake = Fake::demo();
    let runtime = Arc::new(Runtime::from_wasm(dataverse_artifacts::CLIENT).unwrap());
    let dataverse = Dataverse::connect(runtime, fake.clone(), &fake::demo_connection_string())
        .await
        .unwrap();
    let query = Query::new("accounts")
        .select(["name"])
        .filter("name eq 'Contoso Ltd'");
    let page = dataverse.query(&query).await.unwrap();
    let contoso = EntityRef::new("accounts", "accountnumber='A-0001'");
    let missing = EntityRef::new("accounts", "00000000-0000-0000-0000-0000000000aa");
    dataverse.get(&contoso, &["name"], None).await.unwrap();
    dataverse.get(&missing, &[], None).await.unwrap_err();
    let rows: Vec<serde_json::Value> = dataverse
        .rows(Query::new("accounts").select(["name"]).page_size(10))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), 25);

    let spans = capture.spans();
    let calls: Vec<_> = spans
        .iter()
        .filter(|(_, span)| span.name == "dataverse.call")
        .collect();
    let field = |span: &SpanRecord, name: &str| span.fields.get(name).cloned().unwrap_or_default();

    // The query: every field, the request id the component reported.
    let (query_id, query_span) = calls
        .iter()
        .find(|(_, span)| field(span, "operation") == "retrieve_multiple")
        .expect("a span for the query");
    assert_eq!(field(query_span, "entity_set"), "accounts");
    assert_eq!(
        field(query_span, "client_request_id"),
        page.call.client_request_id
    );
    assert_eq!(field(query_span, "attempts"), "1");
    assert_eq!(field(query_span, "outcome"), "ok");

    // The failed get says how it ended, by kind only.
    let failed = calls
        .iter()
        .find(|(_, span)| field(span, "operation") == "retrieve" && field(span, "outcome") != "ok")
        .expect("a span for the missing row");
    assert_eq!(field(&failed.1, "outcome"), "not_found");
    assert!(!field(&failed.1, "client_request_id").is_empty());

    // The stream: one span per page pulled (three pages, then the end).
    let pages = calls
        .iter()
        .filter(|(_, span)| field(span, "operation") == "read_all")
        .count();
    assert_eq!(pages, 4);

    // Each exchange is an event inside the call that made it.
    let events = capture.events();
    let exchanges: Vec<_> = events
        .iter()
        .filter(|event| event.fields.get("message").map(String::as_str) == Some("dataverse.http"))
        .collect();
    // The event's parent may be a span of wasmtime's own (each host call of
    // the guest is one, at trace level); the call's span is above it.
    let call_of = |event: &EventRecord| {
        let mut at = event.parent;
        while let Some(id) = at {
            let span = &spans.iter().find(|(span_id, _)| *span_id == id)?.1;
            if span.name == "dataverse.call" {
                return Some(id);
            }
            at = span.parent;
        }
        None
    };
    assert!(
        exchanges.iter().all(|event| call_of(event).is_some()),
        "every exchange is inside a call: {exchanges:?}"
    );
    let of_query: Vec<_> = exchanges
        .iter()
        .filter(|event| call_of(event) == Some(*query_id))
        .collect();
    assert_eq!(of_query.len(), 1, "{exchanges:?}");
    let http = &of_query[0].fields;
    assert_eq!(http["method"], "GET");
    assert_eq!(http["host"], fake::ORG_HOST);
    assert_eq!(http["path"], "/api/data/v9.2/accounts", "no query string");
    assert_eq!(http["status"], "200");
    assert_eq!(http["attempt"], "1");
    assert!(http.contains_key("ms"));
    let get_paths: Vec<_> = exchanges
        .iter()
        .map(|event| event.fields["path"].as_str())
        .filter(|path| path.contains("accounts("))
        .collect();
    assert!(
        get_paths.contains(&"/api/data/v9.2/accounts(…)"),
        "{get_paths:?}"
    );
    assert!(get_paths.contains(&"/api/data/v9.2/accounts(00000000-0000-0000-0000-0000000000aa)"));

    // No secret anywhere, whichever crate traced it: wasmtime's bindings
    // trace each host call of the guest at trace level, but not list
    // arguments, and headers and bodies are lists.
    let tokens: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| {
            r.authorization
                .as_deref()?
                .strip_prefix("Bearer ")
                .map(str::to_string)
        })
        .collect();
    assert!(!tokens.is_empty(), "the fake saw the token");
    let everything = capture.text("");
    assert!(everything.contains("dataverse.http") && everything.contains("wasi"));
    assert!(
        !everything.contains(fake::DEMO_CLIENT_SECRET),
        "the client secret was traced"
    );
    for token in &tokens {
        assert!(
            !everything.contains(token.as_str()),
            "an access token was traced"
        );
    }
    // Nothing of a filter or a key from this crate (wasmtime's trace-level
    // host-call events do show `set-path-with-query`'s string: see
    // docs/design.md).
    let ours = capture.text("dataverse_host");
    assert!(!ours.contains("Contoso Ltd'"), "a filter value was traced");
    assert!(!ours.contains("A-0001"), "a key value was traced");
}
