//! Bulk group additions, up to 20 members to a write. Bulk work (an initial
//! sync, a resync, a rule change) queues each person's additions in the
//! state database instead of sending them one by one; this task sends each
//! group's queue with `PATCH /groups/{id}` and `members@odata.bind`, paced
//! as bulk work, so 500 people joining a group cost 25 writes, not 500.
//! Real-time changes never wait here: their worker adds the person at once.
//!
//! A batch is all or nothing. Refused for a reason that belongs to one of
//! its people (already a member, no such user, no permission), it is handed
//! back: each person's worker adds them alone and gets their own answer,
//! with the handling every single addition has (a duplicate counts as done,
//! a missing permission parks with what to grant). A 404 while a member or
//! the group is younger than the replication window is lag: the batch
//! waits and goes again. An answer lost leaves the rows queued; sent again,
//! a membership already made comes back as a duplicate and is recognised.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::{watch, Notify};

use super::retry::{send_with_retry, Target};
use super::PolicyRx;
use crate::domain::{CompanyId, EntraObjectId, TenantId};
use crate::graph::request::{add_group_members, MEMBERS_PER_WRITE};
use crate::graph::{Failure, GraphClient};
use crate::pacing::Priority;
use crate::store::{after, now_text, since, QueuedAdd, StateDb, StoreError};

/// Batched writes in flight at once (the pacer still decides how fast).
const IN_FLIGHT: usize = 16;

mod outcome;

pub use outcome::{group_label, nudges};

pub struct MembershipBatcher {
    pub state: Arc<StateDb>,
    pub graph: Arc<GraphClient>,
    pub policy: PolicyRx,
    /// Rung by a worker that queued an addition.
    pub wake: Arc<Notify>,
    /// The dispatcher's wake-up, for additions handed back to workers.
    pub dispatch: Arc<Notify>,
    /// `[sync] membership_batch_wait`: how long a group's additions wait
    /// for a fuller batch while the company's bulk work is under way.
    pub wait: Duration,
}

/// What became of one batch.
enum Batch {
    Added,
    Waiting,
    HandedBack,
}

impl MembershipBatcher {
    /// Sends batches until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        // Additions handed back before a restart: their workers run again.
        if let Err(e) = self.state.handed_back_people().and_then(|p| self.nudge(&p)) {
            tracing::error!("group additions: {e}");
        }
        loop {
            if *shutdown.borrow() {
                break;
            }
            let next = match self.flush(false).await {
                Ok((next, _)) => next,
                Err(e) => {
                    tracing::error!("group additions: {e}; retrying in 1 s");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                r = shutdown.changed() => if r.is_err() { break },
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
    }

    /// Sends everything queued (`run --once`). What cannot go now
    /// (throttled, an outage, a quarantined tenant, delayed by an earlier
    /// run) is handed back to the person's worker, whose change then stays
    /// pending as any other; only batches waiting out replication are
    /// waited for. Returns how many additions were handed back.
    pub async fn drain(&self, mut shutdown: watch::Receiver<bool>) -> Result<usize, StoreError> {
        let mut handed = 0;
        loop {
            let (_, n) = self.flush(true).await?;
            handed += n;
            let now = now_text();
            let (young, old): (Vec<QueuedAdd>, Vec<QueuedAdd>) = self
                .state
                .delayed_memberships(&now)?
                .into_iter()
                .partition(|r| r.young_until > now);
            if !old.is_empty() {
                self.hand_back(&old, "not sent before `run --once` ended")?;
                handed += old.len();
            }
            let Some(at) = young.iter().map(|r| r.not_before.clone()).min() else {
                return Ok(handed);
            };
            let wait = crate::store::until(&at).unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = shutdown.changed() => return Ok(handed),
                _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
            }
        }
    }

    /// `run --once`: the dispatcher's pass, then the batches, then again
    /// for the people whose additions were handed back, until none are.
    pub async fn run_once(
        &self,
        dispatcher: &super::Dispatcher,
        shutdown: watch::Receiver<bool>,
    ) -> super::RunReport {
        let mut report = dispatcher.run(shutdown.clone(), true).await;
        loop {
            match self.drain(shutdown.clone()).await {
                Ok(0) => return report,
                Ok(_) if *shutdown.borrow() => return report,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("group additions: {e}");
                    report.left_pending += self.state.queued_membership_count(None).unwrap_or(1);
                    return report;
                }
            }
            let again = dispatcher.run(shutdown.clone(), true).await;
            report.done += again.done;
            report.parked += again.parked;
            report.deferred += again.deferred;
            report.left_pending = again.left_pending;
        }
    }

    /// One pass over the due groups; how long until the next may be due,
    /// and how many additions were handed back. The writes of a pass go
    /// out together (up to [`IN_FLIGHT`]), so the client packs them into
    /// `$batch` round trips instead of waiting out its linger for each.
    async fn flush(&self, all: bool) -> Result<(Duration, usize), StoreError> {
        let quarantined: HashSet<CompanyId> = self
            .state
            .quarantined()?
            .into_iter()
            .map(|q| q.company)
            .collect();
        let mut next = self.wait;
        let mut handed = 0;
        let mut chunks: Vec<Vec<QueuedAdd>> = Vec::new();
        let now = now_text();
        for g in self.state.due_memberships(&now)? {
            if quarantined.contains(&g.company) && !all {
                continue;
            }
            let waited = since(&g.oldest).unwrap_or(Duration::ZERO);
            let whole = all || waited >= self.wait || !self.state.has_bulk_pending(g.company)?;
            // While bulk work goes on, only full batches leave.
            let take = match whole {
                true => g.count as usize,
                false => (g.count as usize / MEMBERS_PER_WRITE) * MEMBERS_PER_WRITE,
            };
            if !whole {
                next = next.min(self.wait.saturating_sub(waited));
            }
            if take == 0 {
                continue;
            }
            let rows = self.state.take_memberships(&g, &now, take)?;
            if quarantined.contains(&g.company) {
                self.hand_back(&rows, "the tenant is quarantined")?;
                handed += rows.len();
                continue;
            }
            chunks.extend(rows.chunks(MEMBERS_PER_WRITE).map(<[QueuedAdd]>::to_vec));
        }
        let results: Vec<Result<(Batch, usize), StoreError>> = stream::iter(chunks)
            .map(|rows| async move { Ok((self.send(&rows, all).await?, rows.len())) })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for r in results {
            if let (Batch::HandedBack, n) = r? {
                handed += n;
            }
        }
        if let Some(at) = self.state.next_membership_due()? {
            next = next.min(crate::store::until(&at).unwrap_or(Duration::ZERO));
        }
        Ok((next.max(Duration::from_millis(5)), handed))
    }

    async fn send(&self, rows: &[QueuedAdd], all: bool) -> Result<Batch, StoreError> {
        let Ok(tenant) = TenantId::parse(&rows[0].tenant) else {
            self.hand_back(rows, "the queued tenant id is unreadable")?;
            return Ok(Batch::HandedBack);
        };
        let policy = self.policy.borrow().clone();
        let members: Vec<EntraObjectId> = rows
            .iter()
            .map(|r| EntraObjectId(r.member_id.clone()))
            .collect();
        let req = add_group_members(&rows[0].group_id, &members);
        let target = Target {
            tenant: &tenant,
            priority: Priority::Bulk,
            retry_not_found: false,
        };
        // From here the additions may be made: a worker taking one back
        // takes the person out instead of just forgetting the row.
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        self.state.mark_sent(&ids)?;
        let result = send_with_retry(&self.graph, &policy.retry, target, &req, |e, wait, _| {
            tracing::info!(tenant = %tenant, group = %rows[0].group_id,
                "group additions: {}; retrying in {wait:?}", e.summary());
        })
        .await;
        let (f, _) = match result {
            Ok((sent, n)) => {
                self.settle(&tenant, rows, &sent, n).await?;
                return Ok(Batch::Added);
            }
            Err(e) => e,
        };
        // Taken back while the batch was out: if it may have been made, the
        // person is taken out again; a refusal made nothing.
        let rows = self.still_out(&tenant, rows, f.outcome_unknown()).await?;
        if rows.is_empty() {
            return Ok(Batch::Added);
        }
        let now = now_text();
        let replicating = rows.iter().any(|r| r.young_until > now);
        let personal = matches!(
            f.failure(),
            Some(Failure::AlreadyMember | Failure::NotFound | Failure::Forbidden)
                | Some(Failure::Rejected | Failure::Conflict { .. })
        );
        let lag = f.failure() == Some(&Failure::NotFound) && replicating;
        if !lag && (personal || all) {
            self.hand_back(&rows, &f.summary())?;
            self.audit_handed_back(&rows, &f);
            return Ok(Batch::HandedBack);
        }
        // Replication lag; or throttled past the retries, an outage, no
        // answer: the same batch goes again after a growing wait.
        let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0);
        let exp = 2u32.saturating_pow(attempts.clamp(0, 16) as u32);
        let wait = policy
            .retry
            .initial
            .saturating_mul(exp)
            .min(policy.retry.requeue_max);
        let why = match lag {
            true => format!(
                "{} (a member or the group is not replicated yet)",
                f.summary()
            ),
            false => f.summary(),
        };
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        self.state.delay_memberships(&ids, &after(wait), &why)?;
        Ok(Batch::Waiting)
    }
}
