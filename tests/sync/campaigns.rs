//! The reliability campaigns of `entra-daemon soak`, short: each prints its
//! figures and must end clean (`entra-daemon soak` runs the full size).
use std::time::Duration;

use entra_daemon::tools::soak::bad_rows::{self, BadRowOptions};
use entra_daemon::tools::soak::faults::{self, FaultOptions};
use entra_daemon::tools::soak::writers::{self, WriterOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_drain_through_5xx_resets_a_429_storm_and_replication_lag_converges_exactly() {
    let report = faults::run(&FaultOptions {
        changes: 150,
        rate: 300.0,
        storm_after: Duration::from_millis(200),
        storm_for: Duration::from_secs(1),
        storm_retry_after_secs: 0.2,
        replication_delay: Duration::from_secs(1),
        timeout: Duration::from_secs(60),
        ..FaultOptions::default()
    })
    .await
    .expect("the faults campaign");
    println!("{report}");
    assert!(report.verdict.is_clean(), "{:#?}", report.verdict);
    let c = &report.counts;
    assert!(
        c.server_errors > 0 && c.resets > 0 && c.storm_429 > 0,
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_parked_naming_their_field_and_never_hold_back_the_good_ones() {
    let report = bad_rows::run(&BadRowOptions {
        plain: 20,
        timeout: Duration::from_secs(30),
        ..BadRowOptions::default()
    })
    .await
    .expect("the bad rows campaign");
    println!("{report}");
    assert!(report.is_clean(), "{report}");
    assert!(report.bad >= 19 && report.good >= 34, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plumms_writer_with_a_busy_timeout_never_fails_beside_the_daemon() {
    let report = writers::run(&WriterOptions {
        people: 100,
        rate: 500.0,
        duration: Duration::from_millis(800),
        timeout: Duration::from_secs(60),
    })
    .await
    .expect("the writers campaign");
    println!("{report}");
    assert_eq!(report.runs.len(), 4, "{report}");
    let (running, stopped) = report.pair(Duration::from_secs(5)).expect("both runs");
    assert_eq!(
        (running.busy_errors, stopped.busy_errors),
        (0, 0),
        "{report}"
    );
    assert_eq!(running.commits, 400, "{report}");
}
