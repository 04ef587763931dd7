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
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::{watch, Notify};

use super::retry::{send_with_retry, CallFailed, Target};
use super::PolicyRx;
use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};
use crate::graph::request::{add_group_members, MEMBERS_PER_WRITE};
use crate::graph::{Failure, GraphClient, Sent};
use crate::pacing::Priority;
use crate::plan::Action;
use crate::store::{
    after, now_text, since, state::Enqueue, AuditRecord, Outcome, PendingKind, QueuedAdd, StateDb,
    StoreError,
};

/// Batched writes in flight at once (the pacer still decides how fast).
const IN_FLIGHT: usize = 16;

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
    /// (throttled, an outage, a quarantined tenant) is handed back to the
    /// person's worker, whose change then stays pending as any other.
    /// Returns how many additions were handed back.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut handed = 0;
        loop {
            let (next, n) = self.flush(true).await?;
            handed += n;
            if self.state.queued_membership_count(None)? == 0 {
                return Ok(handed);
            }
            // Only batches waiting out replication are left; they are
            // handed back once their window has passed.
            tokio::time::sleep(next).await;
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
            match self.drain().await {
                Ok(0) => return report,
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
            let rows = self
                .state
                .take_memberships(&g.tenant, &g.group_id, &now, take)?;
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
        let result = send_with_retry(&self.graph, &policy.retry, target, &req, |e, wait, _| {
            tracing::info!(tenant = %tenant, group = %rows[0].group_id,
                "group additions: {}; retrying in {wait:?}", e.summary());
        })
        .await;
        let (f, _) = match result {
            Ok((sent, n)) => {
                self.settle(rows, &sent, n)?;
                return Ok(Batch::Added);
            }
            Err(e) => e,
        };
        let now = now_text();
        let replicating = rows.iter().any(|r| r.young_until > now);
        let personal = matches!(
            f.failure(),
            Some(Failure::AlreadyMember | Failure::NotFound | Failure::Forbidden)
                | Some(Failure::Rejected | Failure::Conflict { .. })
        );
        let lag = f.failure() == Some(&Failure::NotFound) && replicating;
        if !lag && (personal || all) {
            self.hand_back(rows, &f.summary())?;
            self.audit_handed_back(rows, &f);
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

    /// Records each addition Graph confirmed, with an audit row per person.
    fn settle(&self, rows: &[QueuedAdd], sent: &Sent, attempt: u32) -> Result<(), StoreError> {
        let mut withdrawn = Vec::new();
        for row in rows {
            if !self.state.settle_membership(row)? {
                withdrawn.push(row);
            }
            let mut r = record(row, Action::GroupAdd, Outcome::Ok);
            r.http_status = Some(sent.reply.status);
            r.request_id = sent.reply.request_id.clone();
            r.client_request_id = Some(sent.client_request_id.clone());
            r.duration_ms = Some(sent.duration.as_millis() as u64);
            r.attempt = Some(attempt);
            r.detail = Some(format!(
                "added to {} (one of {} members added in one write)",
                label(row),
                rows.len()
            ));
            self.audit(&r);
        }
        // Withdrawn while the write was on its way: the membership is made
        // and recorded, so the person's worker takes it out again.
        self.requeue(withdrawn.into_iter())
    }

    fn hand_back(&self, rows: &[QueuedAdd], why: &str) -> Result<(), StoreError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        self.state.hand_back_memberships(&ids, why)?;
        self.requeue(rows.iter())
    }

    /// Makes each person's worker run after this (`StateDb::nudge`): it
    /// reads Plumm and converges their memberships, the handed-back
    /// additions among them. A change of theirs already pending, even one
    /// under way, is kept and runs again.
    fn requeue<'a>(&self, rows: impl Iterator<Item = &'a QueuedAdd>) -> Result<(), StoreError> {
        let people: BTreeSet<(PlummUserId, CompanyId, &str)> = rows
            .map(|r| (r.user, r.company, r.email.as_str()))
            .collect();
        if people.is_empty() {
            return Ok(());
        }
        let items: Vec<Enqueue> = people
            .into_iter()
            .map(|(user, company, email)| Enqueue {
                user,
                company,
                kind: PendingKind::Upsert,
                snapshot:
                    serde_json::json!({"id": user.0, "company_id": company.0, "email": email})
                        .to_string(),
                priority: Priority::Bulk,
                absent: false,
            })
            .collect();
        self.state.nudge(&items)?;
        self.dispatch.notify_one();
        Ok(())
    }

    fn audit_handed_back(&self, rows: &[QueuedAdd], f: &CallFailed) {
        for row in rows {
            let mut r = f.describe(record(row, Action::GroupAdd, Outcome::Retry));
            r.detail = Some(format!(
                "the batched addition to {} was refused as a whole; the person is added alone next",
                label(row)
            ));
            self.audit(&r);
        }
    }

    fn audit(&self, r: &AuditRecord) {
        if let Err(e) = self.state.append_audit(r) {
            tracing::error!(user = ?r.user, "audit log write failed: {e}");
        }
    }
}

fn record(row: &QueuedAdd, action: Action, outcome: Outcome) -> AuditRecord {
    let mut r = AuditRecord::new(action.as_str(), outcome);
    r.company = Some(row.company);
    r.tenant = TenantId::parse(&row.tenant).ok();
    r.user = Some(row.user);
    r.email = Some(row.email.clone());
    r
}

fn label(row: &QueuedAdd) -> String {
    group_label(row.group_name.as_deref(), &row.group_id)
}

/// How an audit row names a group: its name and id, or its id.
pub(crate) fn group_label(name: Option<&str>, id: &str) -> String {
    match name {
        Some(name) => format!("group \"{name}\" ({id})"),
        None => format!("group {id}"),
    }
}
