//! The state database's write-ahead log is copied back into the database
//! file by a connection of its own, off the writers' path.
//!
//! SQLite's automatic checkpoint runs inside the commit that takes the WAL
//! past `wal_autocheckpoint` pages (1,000 by default): that commit syncs
//! the WAL, writes its pages back and syncs the database file
//! (sqlite.org/wal.html#ckpt). The daemon's one state connection is held
//! meanwhile, so every worker waits on the disk. A busy initial sync of
//! ten tenants crossed that mark about 35 times a second, and on a host
//! whose disk was busy with another process it ran at 0.40 of its pace.
//!
//! Here a second connection checkpoints `PASSIVE` ("as many frames as
//! possible without waiting for any database readers or writers to
//! finish", sqlite.org/pragma.html#pragma_wal_checkpoint) every
//! [`EVERY`]. The writers' own checkpoint stays, [`BACKSTOP_PAGES`] far: it
//! finds little left to copy, and it is what lets the WAL start over from
//! its beginning, since a checkpoint that runs beside a writer never
//! catches up with it.
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Context, StateDb, StoreError};

/// How often the checkpointer copies the WAL back.
pub const EVERY: Duration = Duration::from_millis(200);
/// The writers' own checkpoint, in pages (40 MiB at SQLite's 4 KiB pages).
pub const BACKSTOP_PAGES: i64 = 10_000;

/// One `PASSIVE` checkpoint on `conn`. SQLite answers with how many
/// frames the WAL holds and how many it copied; a checkpoint cut short by
/// a writer simply copies the rest next time, so neither is needed here.
pub fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .ctx("checkpointing the state database")
}

/// Moves `state`'s own checkpoint to the backstop and checkpoints from a
/// connection of its own until `shutdown` turns true.
pub fn spawn(
    path: &Path,
    state: &StateDb,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, StoreError> {
    let conn = Arc::new(Mutex::new(super::open(path)?));
    state
        .lock()
        .pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
        .ctx("moving the state database's checkpoint")?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            let conn = conn.clone();
            // The disk's syncs block: on a thread of their own, never on
            // one that runs the sync's tasks.
            let done = tokio::task::spawn_blocking(move || {
                checkpoint(&conn.lock().unwrap_or_else(PoisonError::into_inner))
            })
            .await;
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("{e}; the writers' own checkpoint covers it"),
                Err(e) => tracing::warn!("the state database's checkpointer stopped: {e}"),
            }
        }
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::{AuditRecord, Outcome};

    /// Writes well short of the writers' own checkpoint reach the database
    /// file anyway: the checkpointer copied them back.
    #[tokio::test]
    async fn the_checkpointer_copies_the_wal_back_before_the_writers_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut conn = crate::store::open(&path).unwrap();
        crate::store::migrate::migrate_state(&mut conn).unwrap();
        let state = StateDb::from_connection(conn);
        let (stop, shutdown) = watch::channel(false);
        let task = spawn(&path, &state, shutdown).unwrap();
        let backstop: i64 = state
            .lock()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(backstop, BACKSTOP_PAGES);

        let before = std::fs::metadata(&path).unwrap().len();
        for i in 0..500 {
            let mut r = AuditRecord::new("create", Outcome::Ok);
            r.detail = Some(format!("row {i} {}", "x".repeat(200)));
            state.append_audit(&r).unwrap();
        }
        let grown = || std::fs::metadata(&path).unwrap().len() > before + 100_000;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !grown() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(grown(), "the rows reached the database file");
        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
