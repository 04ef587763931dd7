//! A user deleted in Plumm (or moved away from a tenant): `on_delete`.
use serde_json::Value;

use super::{Converged, Job};
use crate::configuration::OnDelete;
use crate::engine::UserCtx;
use crate::graph::{request, Failure};
use crate::plan::{plan_removal, Action};
use crate::store::{Link, Outcome, StoreError};

impl Job<'_> {
    pub(super) async fn remove(&self) -> Result<Converged, StoreError> {
        let link = self
            .state()
            .link(self.ctx.user)?
            .filter(|l| l.tenant == self.ctx.tenant);
        let Some(link) = link else {
            // Never linked: the daemon did not create or adopt any account
            // for this person, so it touches none.
            return Ok(self.skipped("deleted in Plumm; no linked Entra user, Entra left as it is"));
        };
        self.retire(link).await
    }

    /// Applies `on_delete` to a linked account, then forgets the link: the
    /// Plumm id may be reused by a new person, who must never inherit it. A
    /// later Plumm user with the same email finds the account by lookup.
    async fn retire(&self, link: Link) -> Result<Converged, StoreError> {
        let on_delete = self.s.sync.on_delete;
        let plan = plan_removal(
            on_delete,
            &link.pushed,
            self.s.sync.revoke_sessions_on_suspend,
        );
        let req = match plan.action {
            Action::Nothing => {
                self.state().remove_link(link.user)?;
                return Ok(self.skipped(match on_delete {
                    OnDelete::Ignore => {
                        "deleted in Plumm; [sync] on_delete = \"ignore\" leaves Entra as it is"
                    }
                    _ => "deleted in Plumm; the Entra user is already disabled",
                }));
            }
            Action::Delete => request::delete_user(&link.entra_id),
            _ => request::update_user(&link.entra_id, &plan.changes),
        };
        if let Some(held) = self.brake(plan.action)? {
            return Ok(held);
        }
        match self.call(plan.action, &req, false).await {
            Ok((sent, n)) => {
                let detail = match plan.action {
                    Action::Delete => {
                        "deleted in Plumm; on_delete = delete (restorable in Entra for 30 days)"
                    }
                    _ => "deleted in Plumm; on_delete = suspend (account kept, sign-in blocked)",
                };
                self.done(plan.action, &sent, n, Some(detail.into()));
            }
            Err((f, _)) if f.failure() == Some(&Failure::NotFound) => {
                let mut r = f.describe(self.ctx.record(plan.action, Outcome::Skipped));
                r.detail = Some(format!("Entra user {} is already gone", link.entra_id));
                self.ctx.audit(&r);
                self.state().remove_link(link.user)?;
                return Ok(Converged::Done);
            }
            Err((f, n)) => return self.failed(plan.action, f, n),
        }
        if plan.revoke {
            if let Some(c) = self.revoke(&link.entra_id).await? {
                // Suspended but not signed out: keep the link with the
                // suspension recorded, so the retry only revokes again.
                let mut kept = link;
                kept.pushed
                    .insert("accountEnabled".into(), Value::Bool(false));
                self.state().save_link(&kept)?;
                return Ok(c);
            }
        }
        self.state().remove_link(link.user)?;
        Ok(Converged::Done)
    }

    /// The user's link is in another tenant (its company changed). If that
    /// tenant is still connected, its account is retired there first.
    /// `Some` ends the job (the retirement failed and will be retried).
    pub(super) async fn leave_old_tenant(
        &self,
        old: Link,
    ) -> Result<Option<Converged>, StoreError> {
        let still = self
            .state()
            .connection(old.company)?
            .is_some_and(|c| c.tenant == old.tenant);
        if !still {
            self.state().remove_link(old.user)?;
            return Ok(None);
        }
        let ctx = UserCtx {
            company: old.company,
            tenant: old.tenant.clone(),
            user: self.ctx.user,
            email: self.ctx.email.clone(),
            priority: self.ctx.priority,
            state: self.ctx.state,
        };
        let job = Job { ctx: &ctx, ..*self };
        match job.retire(old).await? {
            Converged::Done => Ok(None),
            other => Ok(Some(other)),
        }
    }
}
