//! A user that exists in Plumm: update its linked Entra user, or link the
//! Entra user that has its email, or create one.
use serde_json::Value;

use super::lookup::ReadBack;
use super::{age, Converged, Job};
use crate::domain::{EntraObjectId, PlummStatus};
use crate::engine::retry::CallFailed;
use crate::graph::{request, Failure, Sent};
use crate::mapping::DesiredUser;
use crate::plan::{plan_update, props, Action};
use crate::store::{now_text, IntentOutcome, Link, Outcome, StoreError};

/// What one round of the upsert loop decided.
pub(super) enum Step {
    Finished(Converged),
    /// The user is now linked to this Entra object: update it.
    Linked(Link),
    /// The link points at an object Entra no longer has: find or create again.
    Relink,
    /// The tenant refused the email's domain: build the UPN on `upn_domain`.
    UseFallback(Option<Link>),
    /// Graph refused a write carrying employeeLeaveDateTime with 403: the
    /// app lacks User-LifeCycleInfo.ReadWrite.All. The rest goes without it.
    DropLeaveDate(Option<Link>),
}

const LEAVE_DATE: &str = "employeeLeaveDateTime";

/// Whether a 403 may be the missing lifecycle permission: the write carried
/// the leave date (graph/api/resources/user, employeeLeaveDateTime).
fn leave_date_refused(f: &CallFailed, carried: bool) -> bool {
    carried && f.failure() == Some(&Failure::Forbidden)
}

impl Job<'_> {
    pub(super) async fn upsert(&self) -> Result<Converged, StoreError> {
        // A create whose answer never arrived may have made an account under
        // identifiers the person no longer has (the email changed since):
        // found and linked first, it is renamed below instead of duplicated.
        let ids = self
            .desired(false)
            .ok()
            .map(|d| (d.user_principal_name, d.mail));
        let ids = ids.as_ref().map(|(u, m)| (u.as_str(), m.as_str()));
        if let Some(c) = self.settle_intents(ids).await? {
            return Ok(c);
        }
        let mut link = self.state().link(self.ctx.user)?;
        if let Some(old) = link.take_if(|l| l.tenant != self.ctx.tenant) {
            // The user moved to a company on another tenant: the old
            // account is deprovisioned there (on_delete) before the new one.
            if let Some(c) = self.leave_old_tenant(old).await? {
                return Ok(c);
            }
        }
        if let Some(c) = self.schedule(link.is_some())? {
            return Ok(c);
        }
        let mut fallback = link.as_ref().is_some_and(|l| l.upn_fallback);
        // Refused before for want of the lifecycle permission: left out
        // until the company connects again, rather than one refused write
        // ahead of each later change.
        let mut without_leave_date = self.state().property_parked(self.ctx.user, LEAVE_DATE)?;
        // A few rounds at most: link -> update, relink -> create, fallback -> retry.
        for _ in 0..4 {
            let desired = match self.desired(fallback) {
                Ok(mut d) if without_leave_date => {
                    d.profile.remove(LEAVE_DATE);
                    d
                }
                Ok(d) => d,
                Err(invalid) => {
                    let reason = format!(
                        "user {} ({}) cannot be synced: {invalid}",
                        self.user.id, self.user.email
                    );
                    // Fail closed: a field Entra would refuse never keeps a
                    // leaver's account enabled; the profile waits, parked.
                    if self.user.status == PlummStatus::Inactive || self.timing().disabled {
                        if let Some(l) = link.take() {
                            if let Some(c) = self.suspend_keeping_link(l).await? {
                                return Ok(c);
                            }
                        }
                    }
                    return self.park(Action::Validate, None, reason);
                }
            };
            let step = match link.take() {
                Some(l) => self.update_linked(l, &desired, fallback).await?,
                None => self.link_or_create(&desired, fallback).await?,
            };
            match step {
                Step::Finished(c) => return Ok(c),
                Step::Linked(l) => link = Some(l),
                Step::Relink => link = None,
                Step::DropLeaveDate(l) => {
                    without_leave_date = true;
                    link = l;
                    let mut r = self.ctx.record(Action::Update, Outcome::Parked);
                    let reason = format!(
                        "{}: Entra refused to write the leave date (403); grant \
                         User-LifeCycleInfo.ReadWrite.All in Entra, then reconnect from Plumm's \
                         Store; the rest of the account is synced",
                        self.s.mapping.field_for(LEAVE_DATE)
                    );
                    self.state().park_property(
                        self.ctx.user,
                        self.ctx.company,
                        LEAVE_DATE,
                        &reason,
                    )?;
                    r.detail = Some(reason);
                    self.ctx.audit(&r);
                }
                Step::UseFallback(l) => {
                    fallback = true;
                    link = l;
                }
            }
        }
        Ok(Converged::Deferred(
            "the user did not settle in four rounds; will try again".into(),
        ))
    }

    async fn update_linked(
        &self,
        mut link: Link,
        desired: &DesiredUser,
        fallback: bool,
    ) -> Result<Step, StoreError> {
        // Right after a create, Graph may answer 404 until the new user has
        // replicated: that is a reason to wait, not proof the user is gone
        // (devblogs.microsoft.com/identity/designing-for-eventual-consistency-for-microsoft-entra).
        let young = link.created_by_us && age(&link.linked_at) < self.s.replication_timeout;
        if link.verify_first {
            // An earlier write's outcome is unknown: `pushed` may be wrong
            // either way (accountEnabled above all), so Entra decides.
            match self.read_back(&mut link, young).await? {
                ReadBack::Read => {}
                ReadBack::NotFound => return self.vanished(link),
                ReadBack::Stop(c) => return Ok(Step::Finished(c)),
            }
        }
        let plan = plan_update(&link.pushed, desired, self.s.revoke_sessions_on_suspend);
        // Suspended earlier, signed out not yet; a rehire owes no sign-out.
        let owed = link.revoke_owed && !desired.account_enabled;
        if plan.action == Action::Nothing && link.upn_fallback == fallback && !owed {
            if link.revoke_owed {
                link.revoke_owed = false;
                self.state().save_link(&link)?;
            }
            return Ok(Step::Finished(self.skipped("Entra already matches Plumm")));
        }
        if plan.action == Action::Suspend {
            if let Some(held) = self.brake(plan.action)? {
                return Ok(Step::Finished(held));
            }
        }
        if !plan.changes.is_empty() {
            // Until Graph answers, what Entra holds is unknown: a crash or a
            // lost answer leaves this mark, and the next plan reads Entra.
            // A suspension in doubt owes its sign-out too: if Graph applied
            // it, the read-back shows it disabled and the revoke still goes.
            link.verify_first = true;
            link.revoke_owed |= plan.revoke;
            self.state().save_link(&link)?;
            let req = request::update_user(&link.entra_id, &plan.changes);
            match self.call(plan.action, &req, young).await {
                Ok((sent, n)) => {
                    self.done(
                        plan.action,
                        &sent,
                        n,
                        serde_json::to_string(&plan.changes).ok(),
                    );
                    link.pushed = props(desired);
                    link.upn_fallback = fallback;
                    link.verify_first = false;
                    link.revoke_owed = plan.revoke || owed;
                    self.state().save_link(&link)?;
                }
                Err((f, n)) => match f.failure() {
                    _ if leave_date_refused(&f, req_carries_leave_date(&plan.changes)) => {
                        return Ok(Step::DropLeaveDate(Some(link)))
                    }
                    Some(Failure::NotFound) if !young => return self.vanished(link),
                    Some(Failure::UnverifiedDomain) if !fallback && self.s.upn_domain.is_some() => {
                        return Ok(Step::UseFallback(Some(link)))
                    }
                    _ => return self.failed(plan.action, f, n).await.map(Step::Finished),
                },
            }
        }
        if plan.revoke || owed {
            // A failed revoke leaves `revoke_owed` set: the retry revokes
            // again even though the suspension is already in Entra.
            if let Some(c) = self.revoke(&link.entra_id).await? {
                return Ok(Step::Finished(c));
            }
            link.revoke_owed = false;
        }
        link.pushed = props(desired);
        link.upn_fallback = fallback;
        self.state().save_link(&link)?;
        Ok(Step::Finished(Converged::Done))
    }

    /// The linked object answers 404 although it is old enough to be
    /// visible: forget the link and look the person up again.
    fn vanished(&self, link: Link) -> Result<Step, StoreError> {
        self.state().remove_link(link.user)?;
        let mut r = self.ctx.record(Action::Link, Outcome::Ok);
        r.detail = Some(format!(
            "linked Entra user {} no longer exists; looking the user up again",
            link.entra_id
        ));
        self.ctx.audit(&r);
        Ok(Step::Relink)
    }

    /// Revokes sign-in sessions; `Some` when that failed and ended the job.
    pub(super) async fn revoke(&self, id: &EntraObjectId) -> Result<Option<Converged>, StoreError> {
        let req = request::revoke_sessions(id);
        match self.call(Action::Revoke, &req, false).await {
            Ok((sent, n)) => {
                self.done(Action::Revoke, &sent, n, None);
                Ok(None)
            }
            Err((f, n)) => self.failed(Action::Revoke, f, n).await.map(Some),
        }
    }

    async fn link_or_create(
        &self,
        desired: &DesiredUser,
        fallback: bool,
    ) -> Result<Step, StoreError> {
        // After a listing showed the email absent, the create goes first: if
        // the user appeared meanwhile, Graph refuses it as a duplicate and
        // the conflict path below links it.
        if !self.absent {
            match self
                .lookup(&desired.user_principal_name, &desired.mail)
                .await?
            {
                Err(c) => return Ok(Step::Finished(c)),
                Ok(Some(found)) => return self.adopt(found),
                Ok(None) => {}
            }
        }
        // A rehire's soft-deleted account comes back rather than a second one.
        if let Some(step) = self.restore_first(desired).await? {
            return Ok(step);
        }
        // Intent before action: what is about to exist is on disk before the
        // request leaves, so a lost answer or a crash cannot hide it.
        let intent = self.state().record_intent(
            self.ctx.user,
            self.ctx.company,
            &self.ctx.tenant,
            &desired.user_principal_name,
            &desired.mail,
        )?;
        let req = request::create_user(desired, super::super::password::generate());
        let (result, unsure) = self.call_noting(Action::Create, &req, false).await;
        if let Err((f, _)) = &result {
            // Graph answered every attempt with a refusal: this create made
            // nothing (a conflict is another object holding the identifiers,
            // which the wait below finds and links).
            if !unsure && f.failure().is_some() {
                self.state().settle_intent(intent, IntentOutcome::Refused)?;
            }
        }
        match result {
            Ok((sent, n)) => self.created(desired, fallback, &sent, n),
            Err((f, n)) => self.create_refused(desired, fallback, f, n).await,
        }
    }

    /// Graph created the user: keep the id the POST returned (lookups may
    /// not see the user for a while) and link it.
    fn created(
        &self,
        desired: &DesiredUser,
        fallback: bool,
        sent: &Sent,
        n: u32,
    ) -> Result<Step, StoreError> {
        let id = sent
            .reply
            .body
            .as_ref()
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str);
        let Some(id) = id else {
            let mut r = self.ctx.record(Action::Create, Outcome::Failed);
            r.http_status = Some(sent.reply.status);
            r.request_id = sent.reply.request_id.clone();
            r.error_message = Some("Graph's answer to the create carried no id".into());
            self.ctx.audit(&r);
            return Ok(Step::Finished(Converged::Deferred(
                "create answered without an id".into(),
            )));
        };
        // Keep the id the POST returned: lookups may not see the user for a while.
        let link = Link {
            user: self.ctx.user,
            company: self.ctx.company,
            tenant: self.ctx.tenant.clone(),
            entra_id: EntraObjectId(id.to_string()),
            pushed: props(desired),
            upn_fallback: fallback,
            created_by_us: true,
            linked_at: now_text(),
            verify_first: false,
            revoke_owed: false,
        };
        let mut detail = format!("created Entra user {id} as {}", desired.user_principal_name);
        if let Some(why) = self.timing().why.filter(|_| !desired.account_enabled) {
            detail.push_str(&format!(", disabled: {why}"));
        }
        let r = self.done_record(Action::Create, sent, n, Some(detail));
        self.state().save_created_link(&link, &r)?;
        Ok(Step::Finished(Converged::Done))
    }

    /// Graph refused the create: a conflict is waited for and linked, an
    /// unverified domain tries the fallback or parks the user.
    async fn create_refused(
        &self,
        desired: &DesiredUser,
        fallback: bool,
        f: CallFailed,
        n: u32,
    ) -> Result<Step, StoreError> {
        if leave_date_refused(
            &f,
            desired.profile.get(LEAVE_DATE).is_some_and(Option::is_some),
        ) {
            return Ok(Step::DropLeaveDate(None));
        }
        match f.failure() {
            Some(Failure::Conflict { property }) => {
                // Uniqueness is immediate, visibility is not: the user may
                // exist (created by us before a crash, or by someone else)
                // and just not be readable yet. Look again until it shows.
                let mut r = f.describe(self.ctx.record(Action::Create, Outcome::Retry));
                r.attempt = Some(n);
                r.detail = Some(format!(
                "Entra already has this {property}; waiting for that user to become visible to link it"
            ));
                self.ctx.audit(&r);
                self.await_visible(desired, property).await
            }
            Some(Failure::UnverifiedDomain) if !fallback && self.s.upn_domain.is_some() => {
                Ok(Step::UseFallback(None))
            }
            Some(Failure::UnverifiedDomain) => {
                let domain = desired
                    .user_principal_name
                    .rsplit('@')
                    .next()
                    .unwrap_or_default();
                let reason = format!(
                "email '{}': the domain '{domain}' is not a verified domain of tenant {}: add and verify it in Entra \
                 (Settings > Domain names), set [sync] upn_domain to a verified domain, or correct the email in Plumm",
                self.user.email, self.ctx.tenant
            );
                self.park(Action::Create, Some(&f), reason)
                    .map(Step::Finished)
            }
            _ => self.failed(Action::Create, f, n).await.map(Step::Finished),
        }
    }

    async fn await_visible(
        &self,
        desired: &DesiredUser,
        property: &str,
    ) -> Result<Step, StoreError> {
        let deadline = tokio::time::Instant::now() + self.s.replication_timeout;
        let mut wait = self.s.retry.initial;
        loop {
            match self
                .lookup(&desired.user_principal_name, &desired.mail)
                .await?
            {
                Err(c) => return Ok(Step::Finished(c)),
                Ok(Some(found)) => return self.adopt(found),
                Ok(None) => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let reason = format!(
                    "Entra refuses to create {} because another object already has this {property}, \
                     and no user with this email can be read: it may be a group, a contact or a user \
                     with this address as an alias. Free the address in Entra, or change the email in Plumm",
                    self.user.email
                );
                return self.park(Action::Create, None, reason).map(Step::Finished);
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = (wait * 2).min(self.s.retry.max);
        }
    }
}

fn req_carries_leave_date(changes: &[crate::plan::Change]) -> bool {
    changes.iter().any(|c| c.property == LEAVE_DATE)
}
