//! The person's manager, converged after their account: `[mapping]
//! manager` names another Plumm person, whose linked account is set with
//! `PUT manager/$ref` (one write), or removed with `DELETE manager/$ref`
//! when Plumm clears it. Only a change is written: the state database
//! remembers the manager the daemon set on each account.
//!
//! A manager without an Entra account yet (hired the same moment, or
//! parked) is waited for: the person is recorded as waiting, and when the
//! manager's account converges, the people waiting for it are queued again.
//! A manager that cannot be (another company, missing, the person, a
//! cycle) parks the manager only: the account has converged already.
use std::sync::PoisonError;

use super::{age, Converged, Job};
use crate::domain::{PlummUser, PlummUserId};
use crate::graph::{request, Failure};
use crate::mapping::manager::check_manager;
use crate::pacing::Priority;
use crate::plan::Action;
use crate::store::state::Enqueue;
use crate::store::{Link, Outcome, PendingKind, StoreError};

impl Job<'_> {
    /// Brings the person's manager to what Plumm says, once their account
    /// has converged; first queues again the people waiting for this
    /// person's account to be theirs.
    pub(super) async fn manager(&self) -> Result<Converged, StoreError> {
        if !self.s.mapping.manages_manager() {
            return Ok(Converged::Done);
        }
        let Some(link) = self
            .state()
            .link(self.ctx.user)?
            .filter(|l| l.tenant == self.ctx.tenant)
        else {
            return Ok(Converged::Done);
        };
        self.wake_reports()?;
        let wanted = match self.wanted_manager()? {
            Ok(w) => w,
            Err(reason) => {
                self.state().stop_waiting_for_manager(self.ctx.user)?;
                return self.park(Action::Manager, None, reason);
            }
        };
        let target = match wanted {
            None => None,
            Some(m) => match self.manager_account(m)? {
                Some(l) => Some(l),
                None => {
                    self.state()
                        .wait_for_manager(self.ctx.user, self.ctx.company, m)?;
                    // Looked at again after the wait is on record: a manager
                    // converging in between either sees the wait or is seen here.
                    match self.manager_account(m)? {
                        Some(l) => Some(l),
                        None => return Ok(self.waiting(m)),
                    }
                }
            },
        };
        let recorded = self
            .state()
            .manager_set(self.ctx.user, &self.ctx.tenant, &link.entra_id)?;
        let want = target.as_ref().map(|l| l.entra_id.clone());
        match (recorded, &target) {
            (Some(r), _) if r == want => {
                self.state().stop_waiting_for_manager(self.ctx.user)?;
                Ok(Converged::Done)
            }
            // Never set by the daemon, none wanted: Entra's is left alone.
            (None, None) => Ok(Converged::Done),
            (_, Some(m)) => self.put_manager(&link, m).await,
            (_, None) => self.remove_manager(&link).await,
        }
    }

    /// The manager Plumm names for the person, checked; `Err` is the reason
    /// it cannot be set.
    fn wanted_manager(&self) -> Result<Result<Option<PlummUserId>, String>, StoreError> {
        let mut failed = None;
        let checked = {
            let plumm = self.plumm.lock().unwrap_or_else(PoisonError::into_inner);
            check_manager(self.user, &self.s.mapping, |id| match plumm.user(id) {
                Ok(row) => row,
                Err(e) => {
                    failed.get_or_insert(e);
                    None
                }
            })
        };
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(checked.map_err(|p| {
            format!(
                "the manager of {} ({}) cannot be set: {p}; the rest of the account is synced",
                self.user.email, self.user.id
            )
        }))
    }

    /// The manager's account in this tenant, if it has one.
    fn manager_account(&self, manager: PlummUserId) -> Result<Option<Link>, StoreError> {
        Ok(self
            .state()
            .link(manager)?
            .filter(|l| l.tenant == self.ctx.tenant))
    }

    fn waiting(&self, manager: PlummUserId) -> Converged {
        let mut r = self.ctx.record(Action::Manager, Outcome::Skipped);
        r.detail = Some(format!(
            "manager (Plumm person {manager}) has no Entra account yet; it is set as soon as \
             theirs converges"
        ));
        self.ctx.audit(&r);
        Converged::Done
    }

    /// Queues again the people of the company waiting for this person's
    /// account to be their manager.
    fn wake_reports(&self) -> Result<(), StoreError> {
        let waiting = self.state().waiting_for(self.ctx.company, self.ctx.user)?;
        if waiting.is_empty() {
            return Ok(());
        }
        let rows: Vec<(PlummUserId, Option<PlummUser>)> = {
            let plumm = self.plumm.lock().unwrap_or_else(PoisonError::into_inner);
            let mut rows = Vec::with_capacity(waiting.len());
            for id in waiting {
                rows.push((id, plumm.user(id)?));
            }
            rows
        };
        let mut queue = Vec::new();
        for (id, row) in rows {
            match row {
                Some(u) => queue.push(Enqueue {
                    user: id,
                    company: u.company_id,
                    kind: PendingKind::Upsert,
                    snapshot: serde_json::to_string(&u).unwrap_or_default(),
                    priority: Priority::Realtime,
                    absent: false,
                }),
                None => self.state().stop_waiting_for_manager(id)?,
            }
        }
        tracing::debug!(company = %self.ctx.company, user = %self.ctx.user,
            "{} people waiting for this manager queued again", queue.len());
        self.state().enqueue(&queue, None)
    }

    async fn put_manager(&self, link: &Link, manager: &Link) -> Result<Converged, StoreError> {
        let req = request::set_manager(&link.entra_id, &manager.entra_id);
        // Either account may be too new to be referenced yet: replication.
        let young = |l: &Link| l.created_by_us && age(&l.linked_at) < self.s.replication_timeout;
        match self
            .call(Action::Manager, &req, young(link) || young(manager))
            .await
        {
            Ok((sent, n)) => {
                self.state().record_manager(
                    self.ctx.user,
                    &self.ctx.tenant,
                    &link.entra_id,
                    Some(&manager.entra_id),
                )?;
                let detail = format!(
                    "manager set to Entra user {} (Plumm person {})",
                    manager.entra_id, manager.user
                );
                self.done(Action::Manager, &sent, n, Some(detail));
                Ok(Converged::Done)
            }
            Err((f, n)) => self.failed(Action::Manager, f, n).await,
        }
    }

    async fn remove_manager(&self, link: &Link) -> Result<Converged, StoreError> {
        let req = request::remove_manager(&link.entra_id);
        let (detail, sent) = match self.call(Action::Manager, &req, false).await {
            Ok((sent, n)) => ("manager removed, as in Plumm", Some((sent, n))),
            // 404: the account has no manager (removed in Entra): as wanted.
            Err((f, _)) if f.failure() == Some(&Failure::NotFound) => (
                "manager removed, as in Plumm (Entra had none already)",
                None,
            ),
            Err((f, n)) => return self.failed(Action::Manager, f, n).await,
        };
        self.state()
            .record_manager(self.ctx.user, &self.ctx.tenant, &link.entra_id, None)?;
        match sent {
            Some((sent, n)) => self.done(Action::Manager, &sent, n, Some(detail.into())),
            None => {
                let mut r = self.ctx.record(Action::Manager, Outcome::Ok);
                r.detail = Some(detail.into());
                self.ctx.audit(&r);
            }
        }
        Ok(Converged::Done)
    }
}
