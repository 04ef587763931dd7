//! The hand-over watermark: Plumm's outbox rows are removed once the state
//! database has recorded them, so each database keeps the last row handed
//! over (Plumm's `entra_handover`, the state's outbox cursor). At start the
//! two must agree. When they do not, one database is older than the other,
//! and the changes handed over in between exist nowhere but in a state
//! database that is gone: without a check they would be missed until the
//! next scheduled resync (a suspension too). So the state database adopts
//! Plumm's watermark and queues a full resync of every connected company,
//! in one transaction, for the daemon to run.
use super::Cached as _;
use rusqlite::params;

use super::{now_text, Context, PlummDb, StateDb, StoreError};

/// What the comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// Both databases agree (or a hand-over interrupted by a crash was
    /// finished): nothing was missed.
    InStep,
    /// Plumm had no watermark yet (the first start after the migration):
    /// it now has the state database's.
    Started { cursor: i64 },
    /// The state database recorded the outbox up to `state`, but Plumm
    /// handed rows over up to `plumm`: restored from an older backup, or
    /// lost and created anew.
    StateBehind { state: i64, plumm: i64 },
    /// Plumm's watermark is behind the state's: Plumm's database was
    /// restored, and its new outbox rows may reuse ids the state already
    /// passed.
    PlummBehind { state: i64, plumm: i64 },
}

impl Handover {
    /// Whether a resync was queued.
    pub fn resyncs(self) -> bool {
        matches!(
            self,
            Handover::StateBehind { .. } | Handover::PlummBehind { .. }
        )
    }
}

/// Compares the two watermarks and, when they disagree, makes the state
/// database read Plumm's outbox from Plumm's watermark and queues a resync
/// (trigger `handover`). Runs before anything reads or removes outbox rows.
pub fn reconcile(plumm: &mut PlummDb, state: &StateDb) -> Result<Handover, StoreError> {
    let (cursor, consumed) = state.handover_cursors()?;
    // Plumm's outbox hands out ids above the highest it ever gave; below
    // the state's cursor, its next rows would be taken as read and lost:
    // Plumm's file is older than this database (restored from a backup).
    let sequence = plumm.outbox_sequence()?;
    if sequence < cursor {
        let mark = plumm.handover_watermark()?.unwrap_or(0).min(sequence);
        state.adopt_watermark(mark)?;
        plumm.set_handover_watermark(mark)?;
        return Ok(Handover::PlummBehind {
            state: cursor,
            plumm: mark,
        });
    }
    let Some(mark) = plumm.handover_watermark()? else {
        plumm.set_handover_watermark(cursor)?;
        state.note_consumed(cursor)?;
        return Ok(Handover::Started { cursor });
    };
    // In step: Plumm removed at least what this database last saw removed
    // and no more than it recorded. The rows between are recorded here and
    // wait for their removal (the daemon removes them in batches, and a
    // crash can fall between the two commits): finish it.
    if consumed.is_none_or(|c| c <= mark) && mark <= cursor {
        if mark < cursor {
            plumm.consume_outbox(cursor)?;
        }
        state.note_consumed(cursor)?;
        return Ok(Handover::InStep);
    }
    state.adopt_watermark(mark)?;
    Ok(if cursor < mark {
        Handover::StateBehind {
            state: cursor,
            plumm: mark,
        }
    } else {
        Handover::PlummBehind {
            state: cursor,
            plumm: mark,
        }
    })
}

impl StateDb {
    /// Plumm's outbox was emptied up to `cursor` (its watermark says so too).
    pub fn note_consumed(&self, cursor: i64) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "UPDATE daemon_meta SET handover_from = ?1 WHERE id = 1",
                [cursor],
            )
            .ctx("noting the outbox removal")?;
        Ok(())
    }

    /// (outbox cursor, Plumm's watermark as this database last saw it).
    fn handover_cursors(&self) -> Result<(i64, Option<i64>), StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT outbox_cursor, handover_from FROM daemon_meta WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx("reading the outbox cursor")
    }

    /// Reads Plumm's outbox from `mark` on, and queues a resync of every
    /// connected company: both or neither, so a crash cannot lose the
    /// resync once the cursor moved.
    fn adopt_watermark(&self, mark: i64) -> Result<(), StoreError> {
        let mut conn = self.lock();
        super::durably(&mut conn, "adopting Plumm's watermark", |tx| {
            tx.execute_cached(
                "UPDATE daemon_meta SET outbox_cursor = ?1, handover_from = ?1 WHERE id = 1",
                [mark],
            )
            .ctx("adopting Plumm's watermark")?;
            tx.execute_cached(
                "INSERT INTO resync_requests (requested_at, company_id, trigger)
                 VALUES (?1, NULL, 'handover')",
                params![now_text()],
            )
            .ctx("queueing a resync")?;
            Ok(())
        })
    }
}
