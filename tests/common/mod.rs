//! Pieces every integration test binary uses (included with `#[path]`).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use entra_daemon::configuration::Settings;
use entra_daemon::daemon;
use entra_daemon::store::migrate::PLUMM_USERS_FIXTURE;

/// Polls `cond` every few milliseconds; fails the test with `what` if it
/// does not hold within `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Plumm's `users` table in the configured Plumm database, then both
/// databases migrated, as an operator would before starting the daemon.
pub fn prepare_databases(settings: &Settings) {
    let conn = rusqlite::Connection::open(&settings.plumm.database).expect("plumm");
    conn.execute_batch(PLUMM_USERS_FIXTURE)
        .expect("users table");
    drop(conn);
    daemon::migrate(settings).expect("migrate");
}
