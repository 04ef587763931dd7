//! A person who left: deleted in Plumm, or moved away from a tenant. Their
//! account is deprovisioned as `on_delete` says, and never on a guess: a
//! removal completes only when Entra confirms it or shows the account gone.
use serde_json::Value;

use super::lookup::ReadBack;
use super::{age, Converged, Job};
use crate::engine::UserCtx;
use crate::graph::{request, Failure};
use crate::plan::{plan_removal, Action, OnDelete};
use crate::store::{IntentOutcome, Link, Outcome, StoreError};

/// How a retirement's write went, when it did not simply succeed.
enum Missing {
    /// Entra answered 404 for the linked object.
    NotFound,
}

impl Job<'_> {
    /// A removal that cannot be carried out now stays pending, even when
    /// the reason needs a person (it is parked too, so `status` shows it):
    /// completing it would leave the account enabled, and would free the
    /// Plumm id for a new hire while the old account is still linked to it.
    pub(super) async fn remove(&self) -> Result<Converged, StoreError> {
        let c = match self.remove_all().await? {
            Converged::Parked(why) => Converged::Deferred(why),
            other => other,
        };
        if c == Converged::Done {
            // Creates in tenants that could not be looked up (disconnected):
            // no later person with this id may inherit what they made.
            self.state()
                .settle_open_intents(self.ctx.user, IntentOutcome::Left)?;
        }
        Ok(c)
    }

    async fn remove_all(&self) -> Result<Converged, StoreError> {
        // Every account of the person: the linked one (in whichever tenant),
        // then any that a create whose answer never arrived made.
        let mut retired = false;
        for _ in 0..4 {
            if let Some(link) = self.state().link(self.ctx.user)? {
                let c = if link.tenant != self.ctx.tenant {
                    // Moved, then deleted before the move was carried out:
                    // the account is in the old company's tenant.
                    self.leave_old_tenant(link)
                        .await?
                        .unwrap_or(Converged::Done)
                } else {
                    self.retire(link).await?
                };
                if c != Converged::Done {
                    return Ok(c);
                }
                retired = true;
            }
            if let Some(c) = self.settle_intents(None).await? {
                return Ok(c);
            }
            if self.state().link(self.ctx.user)?.is_none() {
                if !retired {
                    // Never linked and no create in doubt: the daemon made or
                    // adopted no account for this person, so it touches none.
                    return Ok(self.skipped("left; no linked Entra user, Entra left as it is"));
                }
                return Ok(Converged::Done);
            }
        }
        Ok(Converged::Deferred(
            "the person's accounts did not settle in four rounds; will try again".into(),
        ))
    }

    /// Applies `on_delete` to a linked account, then forgets the link: the
    /// Plumm id may be reused by a new person, who must never inherit it. A
    /// later Plumm user with the same email finds the account by lookup.
    pub(super) async fn retire(&self, link: Link) -> Result<Converged, StoreError> {
        let mut link = link;
        // At most one hop: the linked object is gone but another account
        // carries the person's identifiers (restored, or re-created by hand).
        for _ in 0..2 {
            match self.retire_one(link, false).await? {
                Ok(done) => return Ok(done),
                Err(Missing::NotFound) => {}
            }
            match self.gone_or_found().await? {
                Ok(Some(found)) => link = found,
                Ok(None) => return Ok(Converged::Done),
                Err(c) => return Ok(c),
            }
        }
        Ok(Converged::Deferred(
            "the person's identifiers keep naming Entra users that answer 404; will try again"
                .into(),
        ))
    }

    /// Suspends a linked account and keeps the link: a leaver whose Plumm
    /// row cannot be synced as it is (a field Entra would refuse) is still
    /// blocked from signing in. `None` once the account is suspended (or
    /// gone); otherwise how the suspension ended (deferred, held...).
    pub(super) async fn suspend_keeping_link(
        &self,
        link: Link,
    ) -> Result<Option<Converged>, StoreError> {
        Ok(match self.retire_one(link, true).await? {
            Ok(Converged::Done) | Err(Missing::NotFound) => None,
            Ok(other) => Some(other),
        })
    }

    /// One linked object: `Err(NotFound)` when Entra has no such object
    /// although it is old enough to be visible. With `keep`, the account is
    /// suspended whatever `on_delete` says and the link stays.
    async fn retire_one(
        &self,
        mut link: Link,
        keep: bool,
    ) -> Result<Result<Converged, Missing>, StoreError> {
        // Right after a create Graph may answer 404 until the object has
        // replicated: retried like an update, never taken as "already gone"
        // (devblogs.microsoft.com/identity/designing-for-eventual-consistency-for-microsoft-entra).
        let young = link.created_by_us && age(&link.linked_at) < self.s.replication_timeout;
        if link.verify_first {
            match self.read_back(&mut link, young).await? {
                ReadBack::Read => {}
                ReadBack::NotFound => return Ok(Err(Missing::NotFound)),
                ReadBack::Stop(c) => return Ok(Ok(c)),
            }
        }
        let on_delete = if keep {
            OnDelete::Suspend
        } else {
            self.s.on_delete
        };
        let revoke = self.s.revoke_sessions_on_suspend;
        let plan = plan_removal(on_delete, &link.pushed, revoke);
        // Suspended earlier, but the sign-out did not go through yet.
        let owed = link.revoke_owed && on_delete != OnDelete::Ignore;
        let req = match plan.action {
            Action::Nothing if owed => None,
            Action::Nothing if keep => return Ok(Ok(Converged::Done)),
            Action::Nothing => {
                if let Some(c) = self.leave_groups().await? {
                    return Ok(Ok(c));
                }
                self.state().remove_link(link.user)?;
                return Ok(Ok(self.skipped(match on_delete {
                    OnDelete::Ignore => "left; [sync] on_delete = \"ignore\" leaves Entra as it is",
                    _ => "left; the Entra user is already disabled",
                })));
            }
            Action::Delete => Some(request::delete_user(&link.entra_id)),
            _ => Some(request::update_user(&link.entra_id, &plan.changes)),
        };
        if let Some(req) = req {
            if let Some(held) = self.brake(plan.action)? {
                return Ok(Ok(held));
            }
            // Until Graph answers, the account's state is unknown: a crash or
            // a lost answer leaves this mark, and the next attempt reads Entra.
            // A suspension in doubt owes its sign-out too.
            link.verify_first = true;
            link.revoke_owed |= plan.revoke;
            self.state().save_link(&link)?;
            match self.call(plan.action, &req, young).await {
                Ok((sent, n)) => {
                    let detail = match plan.action {
                        Action::Delete => {
                            "left; on_delete = delete (restorable in Entra for 30 days)"
                        }
                        _ if keep => "inactive in Plumm: suspended (account kept, sign-in blocked)",
                        _ => "left; on_delete = suspend (account kept, sign-in blocked)",
                    };
                    self.done(plan.action, &sent, n, Some(detail.into()));
                    if plan.action == Action::Delete {
                        // A rehire within Entra's 30 days gets this account back.
                        let text = |p: &str| {
                            link.pushed
                                .get(p)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        self.state().record_deleted(
                            &link.tenant,
                            &link.entra_id,
                            link.user,
                            &text("userPrincipalName"),
                            &text("mail"),
                        )?;
                        self.state().remove_link(link.user)?;
                        return Ok(Ok(Converged::Done));
                    }
                    link.pushed
                        .insert("accountEnabled".into(), Value::Bool(false));
                    link.verify_first = false;
                    link.revoke_owed = plan.revoke;
                    self.state().save_link(&link)?;
                }
                Err((f, _)) if f.failure() == Some(&Failure::NotFound) && !young => {
                    return Ok(Err(Missing::NotFound))
                }
                Err((f, n)) if f.failure() == Some(&Failure::NotFound) => {
                    return Ok(Ok(self.not_replicated(plan.action, &f, n, &link)))
                }
                Err((f, n)) => return self.failed(plan.action, f, n).await.map(Ok),
            }
        }
        if plan.revoke || owed {
            // Suspended but not signed out: the link keeps `revoke_owed`, so
            // the retry only revokes again.
            if let Some(c) = self.revoke(&link.entra_id).await? {
                return Ok(Ok(c));
            }
        }
        // Kept (a leaver whose profile is parked): the memberships wait with
        // the profile for the row to be corrected.
        if keep {
            return Ok(Ok(Converged::Done));
        }
        // The account is suspended: its memberships go as on_suspend_groups
        // says, while the link still names the memberships the daemon made.
        if let Some(c) = self.leave_groups().await? {
            return Ok(Ok(c));
        }
        self.state().remove_link(link.user)?;
        Ok(Ok(Converged::Done))
    }

    /// The linked object answered 404 and is old enough to be visible: look
    /// the person up by every identifier known (what was last pushed, the
    /// email in Plumm) before calling it gone. `Some`: another account has
    /// them, and is retired in its place.
    async fn gone_or_found(&self) -> Result<Result<Option<Link>, Converged>, StoreError> {
        let Some(link) = self.state().link(self.ctx.user)? else {
            return Ok(Ok(None));
        };
        let text = |p: &str| {
            link.pushed
                .get(p)
                .and_then(Value::as_str)
                .unwrap_or(&self.user.email)
                .to_string()
        };
        let mut pairs = vec![(text("userPrincipalName"), text("mail"))];
        if !pairs[0].0.eq_ignore_ascii_case(&self.user.email) {
            pairs.push((self.user.email.clone(), self.user.email.clone()));
        }
        for (upn, mail) in &pairs {
            match self.lookup(upn, mail).await? {
                Err(c) => return Ok(Err(c)),
                Ok(Some(found)) if found.id == link.entra_id => {
                    return Ok(Err(Converged::Deferred(format!(
                        "Entra lists user {} but answers 404 to it; will try again",
                        link.entra_id
                    ))))
                }
                Ok(Some(found))
                    if self
                        .state()
                        .linked_user(&self.ctx.tenant, &found.id)?
                        .is_some_and(|u| u != self.ctx.user) =>
                {
                    // Someone else's account now (the address was reused).
                    continue;
                }
                Ok(Some(found)) => {
                    let mut r = self.ctx.record(Action::Link, Outcome::Ok);
                    r.detail = Some(format!(
                        "linked Entra user {} no longer exists; Entra user {} has the person's \
                         identifier {} (matched by {}) and is deprovisioned instead",
                        link.entra_id, found.id, upn, found.matched_by
                    ));
                    self.ctx.audit(&r);
                    let next = Link {
                        entra_id: found.id,
                        pushed: found.props,
                        created_by_us: false,
                        verify_first: false,
                        revoke_owed: false,
                        ..link.clone()
                    };
                    self.state().save_link(&next)?;
                    return Ok(Ok(Some(next)));
                }
                Ok(None) => {}
            }
        }
        let mut r = self.ctx.record(Action::Skip, Outcome::Skipped);
        r.detail = Some(format!(
            "Entra user {} is already gone, and no Entra user has the person's identifiers",
            link.entra_id
        ));
        self.ctx.audit(&r);
        self.state().remove_link(link.user)?;
        Ok(Ok(None))
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
