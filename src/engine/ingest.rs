//! Outbox -> pending. The watcher samples `PRAGMA data_version` of both
//! databases every few milliseconds on its own thread (SQLite calls block),
//! ingests what Plumm committed, and wakes the dispatcher.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use std::collections::HashSet;

use crate::domain::{CompanyId, PlummUserId};
use crate::pacing::Priority;
use crate::store::state::Enqueue;
use crate::store::{OutboxRow, PendingKind, PlummDb, StateDb, StoreError};

/// Outbox rows moved per state commit, and the most recorded rows left in
/// Plumm's file before they are deleted.
pub const BATCH: usize = 500;

/// How long recorded rows may wait in Plumm's outbox before the delete.
/// Each delete takes Plumm's write lock, which a Plumm writer without a
/// busy timeout meets as `SQLITE_BUSY`: deleting once per [`BATCH`] rows or
/// per this interval, not after every ingest, keeps those moments to a few
/// a second however fast Plumm writes. Rows past the cursor are never read
/// again, so a recorded row left a while longer changes nothing else.
pub const CONSUME_AFTER: Duration = Duration::from_secs(1);

pub struct Ingestor {
    plumm: PlummDb,
    state: Arc<StateDb>,
    /// Recorded rows still in Plumm's file: how many, since when.
    unconsumed: Option<(usize, Instant)>,
}

impl Ingestor {
    pub fn new(plumm: PlummDb, state: Arc<StateDb>) -> Self {
        Self {
            plumm,
            state,
            unconsumed: None,
        }
    }

    /// Removes outbox rows the state database already holds (a crash can
    /// leave them between the two steps of an ingest; the watcher leaves
    /// them until [`Self::consume_due`]).
    pub fn consume_recorded(&mut self) -> Result<usize, StoreError> {
        let cursor = self.state.outbox_cursor()?;
        let n = self.plumm.consume_outbox(cursor)?;
        self.state.note_consumed(cursor)?;
        self.unconsumed = None;
        Ok(n)
    }

    /// Deletes the recorded rows once [`BATCH`] of them or
    /// [`CONSUME_AFTER`] have gone by since the first.
    pub fn consume_due(&mut self) -> Result<(), StoreError> {
        match self.unconsumed {
            Some((n, since)) if n >= BATCH || since.elapsed() >= CONSUME_AFTER => {
                self.consume_recorded().map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Moves committed outbox rows into the pending table, in order; returns
    /// how many were moved and whether a row had to wait (see `ingest_batch`).
    pub fn ingest_available(&mut self) -> Result<(usize, bool), StoreError> {
        let mut total = 0;
        loop {
            let (n, held) = self.ingest_batch()?;
            total += n;
            if held || n < BATCH {
                return Ok((total, held));
            }
        }
    }

    fn ingest_batch(&mut self) -> Result<(usize, bool), StoreError> {
        let cursor = self.state.outbox_cursor()?;
        let mut rows = self.plumm.read_outbox(cursor, BATCH)?;
        // SQLite reuses the highest rowid after a delete, so an insert can
        // carry the id of a person whose deletion is still pending. One
        // pending row per id would merge the two people; the insert waits
        // until the deletion has been carried out (ingest stays in order).
        let mut held = false;
        for i in 0..rows.len() {
            let r = &rows[i];
            if r.op == "insert"
                && (rows[..i]
                    .iter()
                    .any(|p| p.user_id == r.user_id && p.op == "delete")
                    || self.state.has_pending_remove(r.user_id)?)
            {
                rows.truncate(i);
                held = true;
                break;
            }
        }
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok((0, held));
        };
        // Recorded (with the cursor, durably) before the outbox rows are
        // removed: a crash or a power loss in between loses nothing.
        self.state.enqueue(&changes(&rows), Some(last))?;
        let (n, since) = self.unconsumed.unwrap_or((0, Instant::now()));
        self.unconsumed = Some((n + rows.len(), since));
        self.consume_due()?;
        Ok((rows.len(), held))
    }
}

/// Outbox rows as the real-time changes they record.
pub fn changes(rows: &[OutboxRow]) -> Vec<Enqueue> {
    rows.iter()
        .map(|r| Enqueue {
            user: r.user_id,
            company: r.company_id,
            kind: if r.op == "delete" {
                PendingKind::Remove
            } else {
                PendingKind::Upsert
            },
            snapshot: r.snapshot.clone(),
            priority: Priority::Realtime,
            absent: false,
        })
        .collect()
}

/// Every Plumm user of `company` as bulk work: the initial sync after a
/// connect (links existing Entra users, creates the rest). Workers read
/// each user's current row when they get to it. With `listed` (the users a
/// listing of the tenant linked), everyone else is known to be absent and
/// is created without a lookup each.
pub fn initial_sync(
    plumm: &PlummDb,
    company: CompanyId,
    listed: Option<&HashSet<PlummUserId>>,
) -> Result<Vec<Enqueue>, StoreError> {
    Ok(plumm
        .company_users(company)?
        .iter()
        .map(|u| Enqueue {
            user: u.id,
            company,
            kind: PendingKind::Upsert,
            snapshot: serde_json::to_string(u).unwrap_or_default(),
            priority: Priority::Bulk,
            absent: listed.is_some_and(|l| !l.contains(&u.id)),
        })
        .collect())
}

/// Runs the watcher until `stop` is set.
pub fn spawn_watcher(
    mut ingestor: Ingestor,
    poll: Duration,
    wake: Arc<Notify>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("outbox-watcher".into())
        .spawn(move || {
            let mut seen: Option<(i64, i64)> = None;
            // While an insert waits for a deletion (see `ingest_batch`), look
            // again now and then even if Plumm does not change.
            let mut retry_held: Option<std::time::Instant> = None;
            while !stop.load(Ordering::Relaxed) {
                if retry_held.is_some_and(|t| t <= std::time::Instant::now()) {
                    seen = None;
                    retry_held = None;
                }
                let watched = watch_once(&mut ingestor, &mut seen);
                // Rows just recorded are worked on even when their removal
                // from Plumm's file must wait (Plumm's write lock is busy):
                // it is tried again on the next round.
                if let Err(e) = ingestor.consume_due() {
                    tracing::warn!("outbox watcher, removing recorded rows: {e}");
                }
                match watched {
                    Ok((changed, held)) => {
                        if held {
                            retry_held = Some(std::time::Instant::now() + HELD_RETRY);
                        }
                        if changed {
                            wake.notify_one();
                        }
                    }
                    Err(e) => {
                        // Plumm's file may be locked or briefly missing during
                        // maintenance: say so, and keep watching.
                        tracing::warn!("outbox watcher: {e}");
                        seen = None;
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                std::thread::sleep(poll);
            }
            // Leave Plumm's outbox holding only what was not recorded.
            if let Err(e) = ingestor.consume_recorded() {
                tracing::warn!("outbox watcher: {e}");
            }
        })
}

const HELD_RETRY: Duration = Duration::from_millis(100);

/// (something changed worth waking the dispatcher for, an insert is held).
fn watch_once(
    ingestor: &mut Ingestor,
    seen: &mut Option<(i64, i64)>,
) -> Result<(bool, bool), StoreError> {
    let now = (
        ingestor.plumm.data_version()?,
        ingestor.state.data_version()?,
    );
    let before = seen.replace(now);
    let plumm_changed = before.is_none_or(|b| b.0 != now.0);
    // Another process (`connect`, `disconnect`, `resync`) changed the state database.
    let state_changed = before.is_some_and(|b| b.1 != now.1);
    let (moved, held) = if plumm_changed {
        ingestor.ingest_available()?
    } else {
        (0, false)
    };
    Ok((moved > 0 || state_changed || before.is_none(), held))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::handover::{reconcile, Handover};
    use crate::store::migrate::{migrate_plumm, migrate_state, PLUMM_USERS_FIXTURE};

    fn hire(plumm: &mut PlummDb, n: usize) {
        let tx = plumm.connection().transaction().unwrap();
        for i in 0..n {
            tx.execute(
                "INSERT INTO users (company_id, email, first_name, last_name) VALUES (1, ?1, 'A', 'B')",
                [format!("p{i}-{}@contoso.com", crate::support::new_guid())],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn recorded_rows_leave_plumms_file_in_batches_not_after_every_ingest() {
        let dir = crate::support::scratch("ingest-test").unwrap();
        let (plumm_path, state_path) = (dir.path().join("p.db"), dir.path().join("s.db"));
        let mut plumm = PlummDb::open(&plumm_path).unwrap();
        plumm
            .connection()
            .execute_batch(PLUMM_USERS_FIXTURE)
            .unwrap();
        migrate_plumm(plumm.connection()).unwrap();
        let mut conn = crate::store::open(&state_path).unwrap();
        migrate_state(&mut conn).unwrap();
        let state = Arc::new(StateDb::from_connection(conn));
        let mut ingestor = Ingestor::new(PlummDb::open(&plumm_path).unwrap(), state.clone());

        hire(&mut plumm, 3);
        assert_eq!(ingestor.ingest_available().unwrap(), (3, false));
        ingestor.consume_due().unwrap();
        let cursor = state.outbox_cursor().unwrap();
        assert_eq!(plumm.outbox_waiting(cursor).unwrap(), 0, "all recorded");
        assert_eq!(plumm.outbox_depth().unwrap().0, 3, "and not deleted yet");

        hire(&mut plumm, BATCH);
        assert_eq!(ingestor.ingest_available().unwrap().0, BATCH);
        assert_eq!(
            plumm.outbox_depth().unwrap().0,
            0,
            "a batch's worth is deleted at once"
        );

        hire(&mut plumm, 2);
        ingestor.ingest_available().unwrap();
        ingestor.consume_recorded().unwrap();
        assert_eq!(
            plumm.outbox_depth().unwrap().0,
            0,
            "a stop deletes what is recorded"
        );

        // A start (or a crash) with recorded rows still in Plumm's file is a
        // hand-over under way, not an older database: finished, no resync.
        for _ in 0..2 {
            hire(&mut plumm, 2);
            ingestor.ingest_available().unwrap();
        }
        assert_eq!(plumm.outbox_depth().unwrap().0, 4, "two ingests wait");
        assert_eq!(reconcile(&mut plumm, &state).unwrap(), Handover::InStep);
        assert_eq!(plumm.outbox_depth().unwrap().0, 0);
        assert!(state.claim_resync_requests().unwrap().is_empty());

        // Plumm removed more than this database recorded: it is older.
        let cursor = state.outbox_cursor().unwrap();
        plumm.set_handover_watermark(cursor + 5).unwrap();
        assert!(matches!(
            reconcile(&mut plumm, &state).unwrap(),
            Handover::StateBehind { .. }
        ));
        // Plumm's watermark behind what it was seen removing: Plumm is older.
        plumm.set_handover_watermark(cursor).unwrap();
        assert!(matches!(
            reconcile(&mut plumm, &state).unwrap(),
            Handover::PlummBehind { .. }
        ));
        assert_eq!(state.claim_resync_requests().unwrap().len(), 2);

        // Plumm's file restored from a backup taken while its watermark was
        // in step: its next outbox ids are ones this database already
        // passed. Found by the sequence, and the new rows are read.
        let cursor = state.outbox_cursor().unwrap();
        plumm
            .connection()
            .execute(
                "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'entra_outbox'",
                [cursor - 3],
            )
            .unwrap();
        plumm.set_handover_watermark(cursor - 3).unwrap();
        state.note_consumed(cursor - 3).unwrap();
        assert!(matches!(
            reconcile(&mut plumm, &state).unwrap(),
            Handover::PlummBehind { .. }
        ));
        hire(&mut plumm, 1);
        assert_eq!(ingestor.ingest_available().unwrap().0, 1, "not lost");
    }
}
