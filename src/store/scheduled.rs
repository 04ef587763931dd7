//! Time-based changes and properties parked for want of a permission
//! (migrations/state/0013_scheduled.sql).
use super::Cached as _;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{now_text, time_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, PlummUserId};
use crate::pacing::Priority;
use crate::plan::lifecycle::{Scheduled, ScheduledChange};

impl StateDb {
    /// Replaces the person's scheduled changes with `changes` (what their
    /// dates say now; empty: none).
    pub fn set_schedule(
        &self,
        user: PlummUserId,
        company: CompanyId,
        changes: &[(Scheduled, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("scheduling changes")?;
        tx.execute_cached(
            "DELETE FROM scheduled_changes WHERE plumm_user_id = ?1",
            [user.0],
        )
        .ctx("scheduling changes")?;
        for (kind, due) in changes {
            tx.execute_cached(
                "INSERT INTO scheduled_changes (plumm_user_id, company_id, kind, due_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![user.0, company.0, kind.as_str(), time_text(*due)],
            )
            .ctx("scheduling changes")?;
        }
        tx.commit().ctx("scheduling changes")
    }

    /// Queues the change of every person with a scheduled change due at
    /// `now`, and removes those rows, in one transaction: a crash leaves
    /// either the reminder or the pending change. A change already pending
    /// keeps its kind (a deletion stays a deletion) but is numbered anew,
    /// so a worker busy with it decides once more after it. Returns how
    /// many people were queued.
    pub fn queue_due_scheduled(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("queueing scheduled changes")?;
        let due: Vec<(i64, i64, bool)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT plumm_user_id, company_id, MAX(kind = 'suspend')
                     FROM scheduled_changes WHERE due_at <= ?1 GROUP BY plumm_user_id",
                )
                .ctx("queueing scheduled changes")?;
            let rows = stmt
                .query_map([time_text(now)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .ctx("queueing scheduled changes")?;
            rows.collect::<Result<_, _>>()
                .ctx("queueing scheduled changes")?
        };
        let stamp = now_text();
        for (user, company, suspend) in &due {
            // The snapshot of an upsert is not read back (the worker reads
            // Plumm's row), but the brake counts pending changes to
            // inactive from it: a suspension on the leave date is one.
            let status = if *suspend { "inactive" } else { "active" };
            let snapshot =
                serde_json::json!({ "id": user, "company_id": company, "status": status });
            tx.execute_cached(
                "INSERT INTO pending (plumm_user_id, company_id, kind, snapshot, seq, priority, first_queued_at, absent)
                 VALUES (?1, ?2, 'upsert', ?3, (SELECT next_seq FROM daemon_meta WHERE id = 1), ?4, ?5, 0)
                 ON CONFLICT (plumm_user_id) DO UPDATE SET seq = excluded.seq,
                   priority = MIN(priority, excluded.priority), attempts = 0, next_attempt_at = NULL",
                params![user, company, snapshot.to_string(), Priority::Realtime.as_i64(), stamp],
            )
            .ctx("queueing scheduled changes")?;
            tx.execute_cached(
                "UPDATE daemon_meta SET next_seq = next_seq + 1 WHERE id = 1",
                [],
            )
            .ctx("queueing scheduled changes")?;
        }
        tx.execute_cached(
            "DELETE FROM scheduled_changes WHERE due_at <= ?1",
            [time_text(now)],
        )
        .ctx("queueing scheduled changes")?;
        tx.commit().ctx("queueing scheduled changes")?;
        Ok(due.len())
    }

    /// The company's scheduled changes, soonest first.
    pub fn scheduled_for(&self, company: CompanyId) -> Result<Vec<ScheduledChange>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT plumm_user_id, kind, due_at FROM scheduled_changes
                 WHERE company_id = ?1 ORDER BY due_at, plumm_user_id",
            )
            .ctx("reading scheduled changes")?;
        let rows = stmt
            .query_map([company.0], |r| {
                Ok(ScheduledChange {
                    user: r.get(0)?,
                    kind: r.get(1)?,
                    due_at: r.get(2)?,
                })
            })
            .ctx("reading scheduled changes")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading scheduled changes")
    }

    /// (scheduled changes, the soonest due time) for a company.
    pub fn scheduled_summary(
        &self,
        company: CompanyId,
    ) -> Result<(i64, Option<String>), StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT COUNT(*), MIN(due_at) FROM scheduled_changes WHERE company_id = ?1",
                [company.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx("summarising scheduled changes")
    }

    /// Whether Entra refused `property` of the person for want of a permission.
    pub fn property_parked(&self, user: PlummUserId, property: &str) -> Result<bool, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT COUNT(*) FROM parked_properties WHERE plumm_user_id = ?1 AND property = ?2",
                params![user.0, property],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .ctx("reading parked properties")
    }

    pub fn park_property(
        &self,
        user: PlummUserId,
        company: CompanyId,
        property: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "INSERT INTO parked_properties (plumm_user_id, company_id, property, reason, since)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (plumm_user_id, property) DO UPDATE SET reason = excluded.reason",
                params![user.0, company.0, property, reason, now_text()],
            )
            .ctx("parking a property")?;
        Ok(())
    }
}
