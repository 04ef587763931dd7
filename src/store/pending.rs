//! Pending work: one row per user whose latest change is not yet in Entra.
use super::Cached as _;
use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Transaction};

use super::state::{Enqueue, PendingEntry, PendingKind};
use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, PlummUserId};
use crate::pacing::Priority;

/// Real-time changes replace what is pending (they are newer, and keep an
/// `absent` hint: it is about Entra, and a wrong one only costs a refused
/// create that is then linked); bulk work (an initial sync) never
/// overwrites a pending change.
pub(crate) fn enqueue_in(tx: &Transaction<'_>, items: &[Enqueue]) -> Result<(), StoreError> {
    let mut next_seq = tx
        .prepare_cached(
            "UPDATE daemon_meta SET next_seq = next_seq + 1 WHERE id = 1 RETURNING next_seq - 1",
        )
        .ctx("numbering changes")?;
    let mut replace = tx
        .prepare_cached(
            "INSERT INTO pending (plumm_user_id, company_id, kind, snapshot, seq, priority, first_queued_at, absent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (plumm_user_id) DO UPDATE SET
               company_id = excluded.company_id, kind = excluded.kind,
               snapshot = excluded.snapshot, seq = excluded.seq,
               priority = MIN(priority, excluded.priority),
               attempts = 0, next_attempt_at = NULL, last_error = NULL",
        )
        .ctx("recording changes")?;
    let mut keep = tx
        .prepare_cached(
            "INSERT INTO pending (plumm_user_id, company_id, kind, snapshot, seq, priority, first_queued_at, absent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (plumm_user_id) DO NOTHING",
        )
        .ctx("recording changes")?;
    let now = now_text();
    for it in items {
        let seq: i64 = next_seq
            .query_row([], |r| r.get(0))
            .ctx("numbering changes")?;
        let kind = match it.kind {
            PendingKind::Upsert => "upsert",
            PendingKind::Remove => "remove",
        };
        let stmt = match it.priority {
            Priority::Realtime => &mut replace,
            Priority::Bulk => &mut keep,
        };
        stmt.execute(params![
            it.user.0,
            it.company.0,
            kind,
            it.snapshot,
            seq,
            it.priority.as_i64(),
            now,
            it.absent
        ])
        .ctx("recording changes")?;
    }
    Ok(())
}

/// [`StateDb::nudge`] inside a caller's transaction.
pub(crate) fn nudge_in(tx: &Transaction<'_>, items: &[Enqueue]) -> Result<(), StoreError> {
    let mut fresh = Vec::new();
    for it in items {
        let n = tx
            .execute_cached(
                "UPDATE pending SET seq = (SELECT next_seq FROM daemon_meta WHERE id = 1)
                 WHERE plumm_user_id = ?1",
                [it.user.0],
            )
            .ctx("recording changes")?;
        if n == 0 {
            fresh.push(it.clone());
            continue;
        }
        tx.execute_cached(
            "UPDATE daemon_meta SET next_seq = next_seq + 1 WHERE id = 1",
            [],
        )
        .ctx("numbering changes")?;
    }
    enqueue_in(tx, &fresh)
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingEntry> {
    let kind: String = r.get(2)?;
    Ok(PendingEntry {
        user: PlummUserId(r.get(0)?),
        company: CompanyId(r.get(1)?),
        kind: if kind == "remove" {
            PendingKind::Remove
        } else {
            PendingKind::Upsert
        },
        snapshot: r.get(3)?,
        seq: r.get(4)?,
        priority: Priority::from_i64(r.get(5)?),
        attempts: r.get(6)?,
        first_queued_at: r.get(7)?,
        absent: r.get(8)?,
    })
}

impl StateDb {
    pub fn outbox_cursor(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT outbox_cursor FROM daemon_meta WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .ctx("reading the outbox cursor")
    }

    /// Records changes as pending and, in the same transaction, advances the
    /// outbox cursor (when given): after a crash either both happened or
    /// neither did. A new real-time change for a user replaces the older
    /// one, takes a new `seq`, keeps the higher priority, and forgets past
    /// failures (the user changed: try at once).
    ///
    /// With a cursor the commit is durable (fsynced) before this returns,
    /// because Plumm's outbox rows up to it are removed next: a power loss
    /// must not roll back the only record of those changes.
    pub fn enqueue(&self, items: &[Enqueue], cursor: Option<i64>) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let Some(c) = cursor else {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .ctx("recording changes")?;
            enqueue_in(&tx, items)?;
            return tx.commit().ctx("recording changes");
        };
        super::durably(&mut conn, "recording changes", |tx| {
            enqueue_in(tx, items)?;
            tx.execute_cached(
                "UPDATE daemon_meta SET outbox_cursor = ?1 WHERE id = 1",
                [c],
            )
            .ctx("advancing the outbox cursor")?;
            Ok(())
        })
    }

    /// Makes sure each person's worker runs (again) after this: a change of
    /// theirs already pending, even one being worked on now, takes a new
    /// `seq` (so finishing the run under way does not complete it; its
    /// kind, snapshot, priority and any hold or delay stay); otherwise
    /// `items` are queued as bulk work.
    pub fn nudge(&self, items: &[Enqueue]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("recording changes")?;
        nudge_in(&tx, items)?;
        tx.commit().ctx("recording changes")
    }

    /// Whether bulk work (an initial sync, a resync) is still queued for
    /// the company: its group additions then wait for fuller batches.
    pub fn has_bulk_pending(&self, company: CompanyId) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row_cached(
                "SELECT 1 FROM pending WHERE company_id = ?1 AND priority = ?2 LIMIT 1",
                params![company.0, Priority::Bulk.as_i64()],
                |_| Ok(()),
            )
            .optional()
            .ctx("reading pending work")?
            .is_some())
    }

    /// Whether any change of `user` is waiting (or being worked on).
    pub fn has_pending(&self, user: PlummUserId) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row_cached(
                "SELECT 1 FROM pending WHERE plumm_user_id = ?1",
                [user.0],
                |_| Ok(()),
            )
            .optional()
            .ctx("reading pending work")?
            .is_some())
    }

    /// Whether a deletion of `user` is waiting to be carried out.
    pub fn has_pending_remove(&self, user: PlummUserId) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .query_row_cached(
                "SELECT 1 FROM pending WHERE plumm_user_id = ?1 AND kind = 'remove'",
                [user.0],
                |_| Ok(()),
            )
            .optional()
            .ctx("reading pending work")?
            .is_some())
    }

    /// Up to `limit` entries of `company` at `priority` that are due at
    /// `now`, in arrival order; users in `skip` (being worked on) are left out.
    pub fn due(
        &self,
        company: CompanyId,
        priority: Priority,
        now: &str,
        limit: usize,
        skip: &HashSet<PlummUserId>,
    ) -> Result<Vec<PendingEntry>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT plumm_user_id, company_id, kind, snapshot, seq, priority, attempts, first_queued_at, absent
                 FROM pending WHERE company_id = ?1 AND priority = ?2
                   AND (next_attempt_at IS NULL OR next_attempt_at <= ?3)
                 ORDER BY seq LIMIT ?4",
            )
            .ctx("reading pending work")?;
        let fetch = (limit + skip.len()) as i64;
        let rows = stmt
            .query_map(params![company.0, priority.as_i64(), now, fetch], entry)
            .ctx("reading pending work")?;
        let mut out = Vec::with_capacity(limit);
        for row in rows {
            let e = row.ctx("reading pending work")?;
            if !skip.contains(&e.user) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Companies that have pending work (connected or not).
    pub fn companies_with_pending(&self) -> Result<Vec<CompanyId>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT DISTINCT company_id FROM pending")
            .ctx("reading pending work")?;
        let rows = stmt
            .query_map([], |r| Ok(CompanyId(r.get(0)?)))
            .ctx("reading pending work")?;
        rows.collect::<Result<_, _>>().ctx("reading pending work")
    }

    /// The earliest time after `now` a deferred entry becomes due, if any.
    pub fn next_deferred(&self, now: &str) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT MIN(next_attempt_at) FROM pending WHERE next_attempt_at > ?1",
                [now],
                |r| r.get(0),
            )
            .ctx("reading pending work")
    }

    /// The change `seq` of `user` is done (a newer one, if any, stays), and
    /// with `unpark` the user is no longer parked: in one transaction.
    pub fn complete(&self, user: PlummUserId, seq: i64, unpark: bool) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("completing a change")?;
        let n = tx
            .execute_cached(
                "DELETE FROM pending WHERE plumm_user_id = ?1 AND seq = ?2",
                params![user.0, seq],
            )
            .ctx("completing a change")?;
        if unpark {
            tx.execute_cached("DELETE FROM parked WHERE plumm_user_id = ?1", [user.0])
                .ctx("unparking a user")?;
        }
        tx.commit().ctx("completing a change")?;
        Ok(n == 1)
    }

    /// Keeps the change pending and tries again at `at` (whatever its `seq`
    /// when `seq` is `None`).
    pub fn defer(
        &self,
        user: PlummUserId,
        seq: Option<i64>,
        at: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "UPDATE pending SET attempts = attempts + 1, next_attempt_at = ?3, last_error = ?4
                 WHERE plumm_user_id = ?1 AND (?2 IS NULL OR seq = ?2)",
                params![user.0, seq, at, error],
            )
            .ctx("deferring a change")?;
        Ok(())
    }

    /// (pending users, oldest first_queued_at) for a company.
    pub fn pending_summary(&self, company: CompanyId) -> Result<(i64, Option<String>), StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT COUNT(*), MIN(first_queued_at) FROM pending WHERE company_id = ?1",
                [company.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx("summarising pending work")
    }

    /// Whether anything is pending or queued for a group batch: a probe
    /// each, where the counts read every row.
    pub fn has_pending_work(&self) -> Result<bool, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM pending)
                     OR EXISTS (SELECT 1 FROM membership_queue WHERE direct = 0)",
                [],
                |r| r.get(0),
            )
            .ctx("reading pending work")
    }

    pub fn pending_total(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached("SELECT COUNT(*) FROM pending", [], |r| r.get(0))
            .ctx("counting pending work")
    }
}
