//! Pacing at Graph's ceiling and `$batch`: what reached the emulator.
use std::collections::HashMap;

use entra_daemon::emulator::{FaultKind, ThrottleConfig};

use crate::helpers::*;

fn hire_many(app: &TestApp, company: i64, domain: &str, n: usize) {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("({company}, 'u{i}@{domain}', 'User', 'N{i}', 'Staff')"))
        .collect();
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role) VALUES {}",
        rows.join(",")
    ));
}

/// Bulk requests wait up to a second for company: batches form even on a
/// busy test machine.
fn lingering() -> Options {
    Options {
        extra_sync: "batch_linger = \"1s\"".into(),
        ..Options::default()
    }
}

/// Contoso's people are in Plumm before it connects (the running daemon
/// skipped them), so connecting starts a bulk initial sync.
async fn already_in_plumm(app: &mut TestApp, n: usize) {
    app.start_daemon();
    hire_many(app, CONTOSO, "contoso.com", n);
    app.converged().await;
}

/// The initial sync of `n` people already in Plumm, whose first create is
/// refused with 429 and `retry_after` seconds; converged and stopped.
async fn sync_with_one_429(n: usize, retry_after: f64) -> TestApp {
    let mut app = TestApp::spawn_with(lingering()).await;
    already_in_plumm(&mut app, n).await;
    app.fail_next(
        Some(T1),
        "POST",
        "/users",
        1,
        FaultKind::Status {
            status: 429,
            retry_after: Some(retry_after),
        },
    );
    app.connect_both().await;
    app.converged().await;
    app.stop_daemon().await;
    app
}

#[tokio::test]
async fn an_initial_sync_travels_in_batches_of_at_most_twenty() {
    let mut app = TestApp::spawn_with(lingering()).await;
    already_in_plumm(&mut app, 45).await;
    app.control.clear_requests();
    app.connect_both().await;
    app.converged().await;
    app.stop_daemon().await;

    assert_eq!(app.users(T1).len(), 45);
    let mut per_batch: HashMap<u64, usize> = HashMap::new();
    for c in app.graph_calls() {
        if let Some(b) = c.batch_seq {
            *per_batch.entry(b).or_default() += 1;
        }
    }
    assert!(!per_batch.is_empty(), "bulk work used $batch");
    // Bulk work tells Graph to throttle it first (x-ms-throttle-priority,
    // learn.microsoft.com/graph/throttling-limits): every create says low.
    let creates: Vec<_> = app
        .graph_calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == "/v1.0/users")
        .collect();
    assert_eq!(creates.len(), 45);
    assert!(
        creates
            .iter()
            .all(|c| c.throttle_priority.as_deref() == Some("low")),
        "{:?}",
        creates
            .iter()
            .map(|c| &c.throttle_priority)
            .collect::<Vec<_>>()
    );
    assert!(per_batch.values().all(|n| *n <= 20), "{per_batch:?}");
    let round_trips = app.batches().len()
        + app
            .graph_calls()
            .iter()
            .filter(|c| c.batch_seq.is_none())
            .count();
    let operations = app.graph_calls().len();
    let lookups = app
        .graph_calls()
        .into_iter()
        .filter(|c| c.query.as_deref().unwrap_or("").contains("filter"))
        .count();
    assert_eq!(lookups, 0, "no lookup per user after the listing");
    assert!(
        round_trips * 4 <= operations,
        "{round_trips} round trips for {operations} operations"
    );
}

#[tokio::test]
async fn a_throttled_batch_item_is_retried_alone_after_its_own_retry_after() {
    // One create inside the first batch is refused with 429; the rest pass.
    let app = sync_with_one_429(10, 0.2).await;

    assert_eq!(app.users(T1).len(), 10);
    let posts: Vec<_> = app
        .graph_calls()
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    let refused: Vec<_> = posts.iter().filter(|p| p.status == 429).collect();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].batch_seq.is_some(),
        "the refused one was a batch item"
    );
    assert_eq!(
        posts.len(),
        11,
        "ten creates and one retry, never the whole batch again"
    );
}

#[tokio::test]
async fn requests_waiting_for_a_batch_are_not_sent_while_their_tenant_waits_out_a_429() {
    // The first batch (20 creates) goes at once; one of its creates is
    // refused with a Retry-After longer than the others' wait for company.
    let app = sync_with_one_429(30, 3.0).await;

    assert_eq!(app.users(T1).len(), 30);
    let posts: Vec<_> = app
        .graph_calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path == "/v1.0/users")
        .collect();
    assert_eq!(posts.len(), 31, "thirty creates and one retry");
    let refused = posts.iter().find(|p| p.status == 429).expect("the 429");
    // The ten still waiting for company when it came back stayed home
    // until the Retry-After was over, rather than meet the same wall.
    let early: Vec<_> = posts
        .iter()
        .filter(|p| p.seq > refused.seq && p.batch_seq != refused.batch_seq)
        .filter(|p| (p.time - refused.time) < chrono::Duration::milliseconds(2_900))
        .map(|p| (p.seq, p.time))
        .collect();
    assert!(early.is_empty(), "sent during the pause: {early:?}");
}

#[tokio::test]
async fn the_pacer_keeps_a_bulk_sync_under_graphs_write_limit_without_429s() {
    // Graph's write limit, scaled: 30 writes per 150 s at time scale 100 is
    // a bucket of 30 refilled at 20 per second.
    let throttle = ThrottleConfig {
        app_tenant_writes: 30,
        ..ThrottleConfig::default()
    };
    let mut app = TestApp::spawn_with(Options {
        emulator_throttle: Some(throttle),
        time_scale: 100.0,
        extra_toml: format!(
            "[pacing]\ntime_scale = 100.0\n[pacing.tenants.\"{T1}\"]\nwrites_per_150s = 30\n"
        ),
        ..Options::default()
    })
    .await;
    already_in_plumm(&mut app, 70).await;
    let started = std::time::Instant::now();
    app.connect_both().await;
    app.converged().await;
    let took = started.elapsed();
    app.stop_daemon().await;

    assert_eq!(app.users(T1).len(), 70);
    let throttled = app.graph_calls().iter().filter(|c| c.status == 429).count();
    assert_eq!(throttled, 0, "paced below the limit, never against it");
    // 29 at once (the bucket less a 2% reserve), then 20 per second.
    assert!(
        took.as_secs_f64() >= 1.9,
        "{took:?}: not faster than the limit allows"
    );
}

#[tokio::test]
async fn against_another_apps_load_the_pacer_takes_what_is_left_with_few_429s() {
    // Graph's documented limits at time scale 20, and another app that has
    // spent the tenant's 18,000-write burst and writes 50 of its 60 a
    // second: this app has 10 of its 20 left, 200 writes a real second
    // here, and nothing in the bucket, while the pacer starts out
    // believing the documented 3,000 at once.
    let scale = 20.0;
    let mut app = TestApp::spawn_with(Options {
        emulator_throttle: Some(ThrottleConfig::default()),
        time_scale: scale,
        extra_toml: format!("[pacing]\ntime_scale = {scale:?}\n"),
        // Answers take a while, as Graph's do: the pacer sends on its
        // belief between them.
        latency_ms: (20, 60),
        ..lingering()
    })
    .await;
    already_in_plumm(&mut app, 400).await;
    app.control.clear_requests();
    app.control.set_foreign_load(T1, 50.0, 18_000.0);
    let started = std::time::Instant::now();
    app.connect_both().await;
    app.converged().await;
    let took = started.elapsed();
    app.stop_daemon().await;

    assert_eq!(app.users(T1).len(), 400);
    let traffic = app.control.traffic(T1);
    // The other app's load bound: 400 writes at 200 a second.
    assert!(
        took.as_secs_f64() >= 1.9,
        "{took:?}: faster than what was left"
    );
    // At most 0.5% of the requests answered 429.
    assert!(
        traffic.throttled * 200 <= traffic.operations,
        "{} of {} answered 429",
        traffic.throttled,
        traffic.operations
    );
}
