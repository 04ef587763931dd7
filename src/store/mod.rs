//! SQLite at the edges: Plumm's database (read the outbox, consume it) and
//! the daemon's own state database (links, pending work, audit log).
pub mod audit;
pub mod connect;
pub mod migrate;
pub mod plumm;
pub mod state;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub use audit::{AuditFilter, AuditRecord, AuditRow, Outcome};
pub use connect::{ConnectStart, StateRejected};
pub use plumm::{OutboxRow, PlummDb};
pub use state::{Connection as TenantConnection, Link, Parked, PendingEntry, PendingKind, StateDb};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{context}: {source}")]
    Sql {
        context: &'static str,
        source: rusqlite::Error,
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
        self.map_err(|source| StoreError::Sql { context, source })
    }
}

/// WAL so Plumm's writers and the daemon's readers never block each other;
/// a busy timeout so a brief lock is waited out, not reported.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(err)?;
    Ok(conn)
}

/// Timestamps as stored everywhere: UTC with milliseconds, sortable as text.
pub fn now_text() -> String {
    time_text(chrono::Utc::now())
}

pub fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
