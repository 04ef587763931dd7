//! What the batcher does with Graph's answer: records what was made,
//! hands back what belongs to a person, and takes a person out again when
//! an addition they no longer get was made (or may have been) while its
//! batch was out.
use std::collections::BTreeSet;

use super::MembershipBatcher;
use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};
use crate::engine::retry::{send_with_retry, CallFailed, Target};
use crate::graph::request::remove_group_member;
use crate::graph::{Failure, Sent};
use crate::pacing::Priority;
use crate::plan::Action;
use crate::store::{state::Enqueue, AuditRecord, Outcome, PendingKind, QueuedAdd, StoreError};

impl MembershipBatcher {
    /// Records each addition Graph confirmed, with an audit row per person.
    pub(super) async fn settle(
        &self,
        tenant: &TenantId,
        rows: &[QueuedAdd],
        sent: &Sent,
        attempt: u32,
    ) -> Result<(), StoreError> {
        for row in rows {
            let (queued, linked) = self.state.settle_membership(row)?;
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
            if !queued {
                self.taken_back(tenant, row, linked).await?;
            }
        }
        Ok(())
    }

    /// The rows of a failed batch still queued. Those taken back meanwhile
    /// are handled as made when Graph may have made them (`unsure`).
    pub(super) async fn still_out(
        &self,
        tenant: &TenantId,
        rows: &[QueuedAdd],
        unsure: bool,
    ) -> Result<Vec<QueuedAdd>, StoreError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let queued = self.state.still_queued(&ids)?;
        let mut out = Vec::new();
        for row in rows {
            if queued.contains(&row.id) {
                out.push(row.clone());
            } else if unsure {
                let (_, linked) = self.state.settle_membership(row)?;
                self.taken_back(tenant, row, linked).await?;
            }
        }
        Ok(out)
    }

    /// An addition its person's worker took back while it was being made:
    /// it is recorded (when the account is still the person's) and the
    /// worker runs again, which takes them out; an account no longer
    /// linked (the person left) is taken out here.
    async fn taken_back(
        &self,
        tenant: &TenantId,
        row: &QueuedAdd,
        linked: bool,
    ) -> Result<(), StoreError> {
        if linked {
            return self.requeue(std::iter::once(row));
        }
        let policy = self.policy.borrow().clone();
        let req = remove_group_member(&row.group_id, &EntraObjectId(row.member_id.clone()));
        let target = Target {
            tenant,
            priority: Priority::Bulk,
            retry_not_found: false,
        };
        let result = send_with_retry(&self.graph, &policy.retry, target, &req, |_, _, _| {}).await;
        let mut r = record(row, Action::GroupRemove, Outcome::Ok);
        match result {
            Ok((sent, n)) => {
                r.http_status = Some(sent.reply.status);
                r.attempt = Some(n);
                r.detail = Some(format!(
                    "taken out of {} again: the addition was withdrawn (the person left) while it was being made",
                    label(row)
                ));
            }
            Err((f, _)) if f.failure() == Some(&Failure::NotFound) => {
                r = f.describe(r);
                r.detail = Some(format!("not a member of {}; counted as done", label(row)));
            }
            Err((f, _)) => {
                r = f.describe(r);
                r.outcome = Some(Outcome::Failed);
                r.detail = Some(format!(
                    "{} may hold account {} of a person who left: remove it from the group in Entra",
                    label(row),
                    row.member_id
                ));
                tracing::error!(user = %row.user, group = %row.group_id, "{}", f.summary());
            }
        }
        self.audit(&r);
        Ok(())
    }

    /// Hands additions to their people's workers, and makes those workers
    /// run, in one commit (a crash leaves the rows queued and sent again).
    pub(super) fn hand_back(&self, rows: &[QueuedAdd], why: &str) -> Result<(), StoreError> {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let people = nudges(&people(rows.iter()));
        self.state.hand_back_memberships(&ids, why, &people)?;
        self.dispatch.notify_one();
        Ok(())
    }

    /// Makes each person's worker run after this (`StateDb::nudge`): it
    /// reads Plumm and converges their memberships, the handed-back
    /// additions among them. A change of theirs already pending, even one
    /// under way, is kept and runs again.
    pub(super) fn requeue<'a>(
        &self,
        rows: impl Iterator<Item = &'a QueuedAdd>,
    ) -> Result<(), StoreError> {
        self.nudge(&people(rows))
    }

    pub(super) fn nudge(
        &self,
        people: &[(PlummUserId, CompanyId, String)],
    ) -> Result<(), StoreError> {
        if people.is_empty() {
            return Ok(());
        }
        self.state.nudge(&nudges(people))?;
        self.dispatch.notify_one();
        Ok(())
    }

    pub(super) fn audit_handed_back(&self, rows: &[QueuedAdd], f: &CallFailed) {
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

/// The people of some queued additions, each once.
fn people<'a>(rows: impl Iterator<Item = &'a QueuedAdd>) -> Vec<(PlummUserId, CompanyId, String)> {
    rows.map(|r| (r.user, r.company, r.email.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Bulk changes that make each person's worker run (a change of theirs
/// already pending is kept): shared with the resync's membership pass.
pub fn nudges(people: &[(PlummUserId, CompanyId, String)]) -> Vec<Enqueue> {
    people
        .iter()
        .map(|(user, company, email)| Enqueue {
            user: *user,
            company: *company,
            kind: PendingKind::Upsert,
            snapshot: serde_json::json!({"id": user.0, "company_id": company.0, "email": email})
                .to_string(),
            priority: Priority::Bulk,
            absent: false,
        })
        .collect()
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
pub fn group_label(name: Option<&str>, id: &str) -> String {
    match name {
        Some(name) => format!("group \"{name}\" ({id})"),
        None => format!("group {id}"),
    }
}
