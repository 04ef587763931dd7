//! SQLite at the edges: Plumm's database (read the outbox, consume it) and
//! the daemon's own state database (links, pending work, audit log).
pub mod audit;
pub mod backup;
pub mod checkpoint;
pub mod connect;
pub mod deleted;
pub mod groups;
pub mod handover;
mod intents;
pub mod licences;
mod links;
pub mod managers;
pub mod membership_queue;
pub mod migrate;
mod pending;
pub mod plumm;
pub mod plumm_schema;
pub mod reports;
pub mod resync;
pub mod retention;
pub mod scheduled;
pub mod state;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub use audit::{AuditFilter, AuditRecord, AuditRow, Outcome};
pub use connect::{ConnectStart, StateRejected};
pub use groups::{ManagedGroup, ManagedMembership};
pub use membership_queue::{DueGroup, NewQueuedAdd, QueuedAdd};
pub use plumm::{OutboxRow, PlummDb};
pub use state::{
    Connection as TenantConnection, Intent, IntentOutcome, Link, Parked, PendingEntry, PendingKind,
    Quarantine, StateDb,
};

/// `[plumm]`: Plumm's database.
#[derive(Debug, Clone)]
pub struct PlummSettings {
    pub database: std::path::PathBuf,
    /// How often `PRAGMA data_version` is sampled: a cheap read of shared
    /// memory, so a few milliseconds keeps the end-to-end latency low.
    pub poll_interval: Duration,
}

/// `[state]`: the daemon's own database.
#[derive(Debug, Clone)]
pub struct StateSettings {
    pub database: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The SQLite error is in the message, not the source chain, so a
    // report that prints the chain says SQLite's reason once.
    #[error("database {path}: {error}")]
    Open {
        path: String,
        error: rusqlite::Error,
    },
    #[error("{context}: {error}")]
    Sql {
        context: &'static str,
        error: rusqlite::Error,
    },
    #[error("{0}")]
    Schema(String),
    #[error("{0}")]
    Conflict(String),
}

pub(crate) trait Context<T> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn ctx(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|error| StoreError::Sql { context, error })
    }
}

/// Every statement the daemon runs more than once goes through the
/// connection's statement cache: parsing and planning SQL cost more CPU
/// than running it, and a busy sync runs the same few dozen statements
/// thousands of times a second.
pub(crate) trait Cached {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Room for every statement of the hot paths (rusqlite keeps 16 by
/// default, fewer than one sync pass runs, so they would be parsed again).
const STATEMENT_CACHE: usize = 256;

/// WAL so Plumm's writers and the daemon's readers never block each other;
/// a busy timeout so a brief lock is waited out, not reported.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let err = |error| StoreError::Open {
        path: path.display().to_string(),
        error,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner stability guarantee: a statement keeps the plan it
    // was prepared with. Without it SQLite (3.54) plans with the values
    // bound to a `WHERE` or `LIMIT` of a query that sorts, and so parses
    // and plans a cached statement again on every new binding
    // (sqlite.org/c3ref/c_dbconfig_defensive.html, ENABLE_QPSG).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    Ok(conn)
}

/// Runs `f` in one transaction that is on disk when this returns.
///
/// Both databases run WAL with `synchronous = NORMAL`: a commit survives a
/// crash of the process but may roll back on a power loss. A commit that
/// something outside this database relies on (Plumm's outbox rows are
/// removed after it; a create is sent after it) switches to `FULL` for
/// that one commit, which fsyncs the WAL (sqlite.org/pragma.html#pragma_synchronous).
pub(crate) fn durably<T>(
    conn: &mut Connection,
    what: &'static str,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_cached("PRAGMA synchronous = FULL", [])
        .ctx(what)?;
    let result = (|| {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx(what)?;
        let out = f(&tx)?;
        tx.commit().ctx(what)?;
        Ok(out)
    })();
    conn.execute_cached("PRAGMA synchronous = NORMAL", [])
        .ctx(what)?;
    result
}

/// Timestamps as stored everywhere: UTC with milliseconds, sortable as text.
pub fn now_text() -> String {
    time_text(chrono::Utc::now())
}

pub fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Time elapsed since a stored timestamp (`None` if unreadable or future).
pub fn since(stored: &str) -> Option<std::time::Duration> {
    let t = chrono::DateTime::parse_from_rfc3339(stored).ok()?;
    (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .to_std()
        .ok()
}

/// Time left until a stored timestamp (zero if past, `None` if unreadable).
pub fn until(stored: &str) -> Option<std::time::Duration> {
    let t = chrono::DateTime::parse_from_rfc3339(stored).ok()?;
    Some(
        (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

/// `now + d` as stored, saturating far in the future instead of overflowing.
pub fn after(d: std::time::Duration) -> String {
    let delta = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365));
    let at = chrono::Utc::now()
        .checked_add_signed(delta)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    time_text(at)
}

/// A migrated state database in memory, for the store's unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_state() -> StateDb {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    migrate::migrate_state(&mut conn).unwrap();
    StateDb::from_connection(conn)
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn a_cached_statement_that_sorts_is_not_planned_again_for_new_bindings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("s.db")).expect("open");
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT); CREATE INDEX ta ON t (a);")
            .expect("schema");
        let sql = "SELECT b FROM t WHERE a = ?1 ORDER BY b LIMIT ?2";
        for i in 0..5 {
            let mut s = conn.prepare_cached(sql).expect("prepare");
            let rows: Vec<String> = s
                .query_map(rusqlite::params![i, i + 1], |r| r.get(0))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert!(rows.is_empty());
        }
        let s = conn.prepare_cached(sql).expect("prepare");
        assert_eq!(s.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
