//! Audit retention: rows older than `[audit] retention_days` are removed by
//! a job the daemon runs at start and then hourly. It is the only path that
//! may delete audit rows: the delete trigger refuses any DELETE unless the
//! `audit_pruning` guard is set, and only [`StateDb::prune_audit_chunk`]
//! sets it, inside the transaction that deletes (migration 0004).
use super::Cached as _;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::params;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{now_text, time_text, Context, StateDb, StoreError};

/// How often the job looks for rows past retention.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows deleted per transaction, so a first pruning of a large log never
/// holds the write lock long enough to stall the sync.
const CHUNK: i64 = 5_000;

impl StateDb {
    /// Deletes up to one chunk of audit rows older than `cutoff`; returns
    /// how many went. The guard is set and cleared in the same transaction.
    pub fn prune_audit_chunk(&self, cutoff: &str) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("pruning the audit log")?;
        let guard = tx
            .execute_cached("UPDATE audit_pruning SET active = 1 WHERE id = 1", [])
            .ctx("pruning the audit log")?;
        if guard != 1 {
            // Without the guard row the delete trigger refuses every
            // deletion: say so instead of pruning nothing in silence.
            return Err(StoreError::Schema(
                "audit retention cannot prune: the pruning guard (table audit_pruning, row id 1) \
                 is missing; run `entra-daemon migrate` to restore it"
                    .into(),
            ));
        }
        let n = tx
            .execute_cached(
                "DELETE FROM audit WHERE id IN
                   (SELECT id FROM audit WHERE at < ?1 ORDER BY id LIMIT ?2)",
                params![cutoff, CHUNK],
            )
            .ctx("pruning the audit log")?;
        tx.execute_cached("UPDATE audit_pruning SET active = 0 WHERE id = 1", [])
            .ctx("pruning the audit log")?;
        tx.commit().ctx("pruning the audit log")?;
        Ok(n)
    }

    /// Deletes every audit row older than `retention`, chunk by chunk, and
    /// records the pruning itself as an audit row.
    pub async fn prune_audit(&self, retention: Duration) -> Result<usize, StoreError> {
        let age = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = chrono::Utc::now()
            .checked_sub_signed(age)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
        let cutoff = time_text(cutoff);
        let mut total = 0;
        loop {
            let n = self.prune_audit_chunk(&cutoff)?;
            total += n;
            if n < CHUNK as usize {
                break;
            }
            // Let the sync's own state writes in between chunks.
            tokio::task::yield_now().await;
        }
        if total > 0 {
            let mut r = super::AuditRecord::new("audit_pruned", super::Outcome::Ok);
            r.detail = Some(format!(
                "removed {total} audit rows older than {cutoff} (retention {} days) at {}",
                retention.as_secs() / 86_400,
                now_text()
            ));
            self.append_audit(&r)?;
        }
        Ok(total)
    }
}

/// Runs the retention job until `shutdown` turns true. `retention` is
/// asked before each pass, so a reloaded policy applies.
pub fn spawn(
    state: Arc<StateDb>,
    retention: impl Fn() -> Duration + Send + 'static,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let retention = retention();
            match state.prune_audit(retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "audit log pruned past retention"),
                Err(e) => tracing::error!("audit retention: {e}; trying again later"),
            }
            tokio::select! {
                _ = tokio::time::sleep(PRUNE_EVERY) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditFilter, AuditRecord, Outcome};

    use crate::store::test_state as db;

    fn insert_at(db: &StateDb, at: &str, action: &str) {
        db.lock()
            .execute_cached(
                "INSERT INTO audit (at, action, outcome) VALUES (?1, ?2, 'ok')",
                [at, action],
            )
            .unwrap();
    }

    #[tokio::test]
    async fn pruning_removes_only_rows_past_retention_and_says_so() {
        let db = db();
        let day = chrono::Duration::days(1);
        let old = time_text(chrono::Utc::now() - day * 401);
        let young = time_text(chrono::Utc::now() - day * 399);
        insert_at(&db, &old, "old-1");
        insert_at(&db, &old, "old-2");
        insert_at(&db, &young, "young");
        db.append_audit(&AuditRecord::new("fresh", Outcome::Ok))
            .unwrap();

        let removed = db
            .prune_audit(Duration::from_secs(400 * 86_400))
            .await
            .unwrap();
        assert_eq!(removed, 2);
        let actions: Vec<String> = db
            .audit(&AuditFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions, ["young", "fresh", "audit_pruned"]);
        // Nothing left to prune: no second record.
        assert_eq!(
            db.prune_audit(Duration::from_secs(400 * 86_400))
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn an_ordinary_delete_is_still_refused_after_a_pruning() {
        let db = db();
        insert_at(&db, "2000-01-01T00:00:00.000Z", "ancient");
        db.append_audit(&AuditRecord::new("fresh", Outcome::Ok))
            .unwrap();
        db.prune_audit(Duration::from_secs(86_400)).await.unwrap();
        let conn = db.lock();
        let active: i64 = conn
            .query_row_cached("SELECT active FROM audit_pruning", [], |r| r.get(0))
            .unwrap();
        assert_eq!(active, 0, "the guard is cleared when the pruning commits");
        let del = conn.execute_cached("DELETE FROM audit", []);
        assert!(del.unwrap_err().to_string().contains("append-only"));
        let upd = conn.execute_cached("UPDATE audit SET outcome = 'failed'", []);
        assert!(upd.unwrap_err().to_string().contains("append-only"));
    }

    #[test]
    fn the_pruning_guard_cannot_be_deleted_or_duplicated() {
        let db = db();
        let conn = db.lock();
        let del = conn.execute_cached("DELETE FROM audit_pruning", []);
        assert!(
            del.unwrap_err().to_string().contains("cannot be removed"),
            "deleting the guard is refused"
        );
        let dup = conn.execute_cached("INSERT INTO audit_pruning (id, active) VALUES (2, 0)", []);
        assert!(dup.is_err(), "a second guard row is refused");
        let n: i64 = conn
            .query_row_cached("SELECT COUNT(*) FROM audit_pruning", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn retention_refuses_loudly_when_the_guard_is_gone() {
        let db = db();
        insert_at(&db, "2000-01-01T00:00:00.000Z", "ancient");
        db.lock()
            .execute_batch("DROP TRIGGER audit_pruning_guard_stays; DELETE FROM audit_pruning;")
            .unwrap();
        let err = db
            .prune_audit(Duration::from_secs(86_400))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pruning guard") && err.contains("migrate"),
            "{err}"
        );
    }

    #[test]
    fn migrate_puts_a_missing_guard_back() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate_state(&mut conn).unwrap();
        conn.execute_batch(
            "DROP TRIGGER audit_pruning_guard_stays; DELETE FROM audit_pruning;
             DELETE FROM entra_daemon_migrations WHERE version = 7;",
        )
        .unwrap();
        crate::store::migrate::migrate_state(&mut conn).unwrap();
        let n: i64 = conn
            .query_row_cached(
                "SELECT COUNT(*) FROM audit_pruning WHERE active = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_failed_pruning_leaves_the_guard_cleared() {
        let db = db();
        {
            let conn = db.lock();
            // Make the DELETE fail half-way: a trigger that aborts.
            conn.execute_batch(
                "CREATE TRIGGER boom BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'boom'); END;",
            )
            .unwrap();
        }
        insert_at(&db, "2000-01-01T00:00:00.000Z", "ancient");
        assert!(db.prune_audit_chunk("2001-01-01").is_err());
        let active: i64 = db
            .lock()
            .query_row_cached("SELECT active FROM audit_pruning", [], |r| r.get(0))
            .unwrap();
        assert_eq!(active, 0);
    }
}
