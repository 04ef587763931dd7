//! Group membership, converged per person after their account: the rules
//! say which groups the person belongs in, the state database which
//! memberships the daemon made, and only the difference is written. A
//! membership the daemon did not make is never removed.
//!
//! A 403 here is the tenant's consent lacking a group permission: the
//! membership change is parked with what to grant, the account stays
//! synced, and the tenant is not put through the write check (a 403 on a
//! group says nothing about the app's user writes).
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{age, Converged, Job};
use crate::domain::PlummStatus;
use crate::engine::retry::{self, CallFailed, RetrySettings};
use crate::graph::{request, Failure};
use crate::mapping::groups::{group_mail_nickname, person_groups, GroupTarget, OnSuspendGroups};
use crate::pacing::Priority;
use crate::plan::membership::plan_memberships;
use crate::plan::{Action, OnDelete};
use crate::store::resync::HELD_MARK;
use crate::store::{Link, ManagedMembership, Outcome, StoreError};

const MEMBER_PERMISSION: &str = "the app may not change group membership in the tenant (403): \
     grant GroupMember.ReadWrite.All in Entra, then reconnect from Plumm's Store";
const CREATE_PERMISSION: &str = "the app may not create groups in the tenant (403): \
     grant Group.Create in Entra, then reconnect from Plumm's Store";

/// A group a rule resolved to: its id, name (managed groups) and whether it
/// was created so recently that a 404 for it is replication lag.
type Resolved = (ManagedMembership, bool);

impl Job<'_> {
    /// Brings the person's managed memberships to what the rules say, once
    /// their account has converged. `leaving`: a departure that suspends
    /// the account (`on_delete = "suspend"`), handled as a suspension.
    pub(super) async fn memberships(&self, leaving: bool) -> Result<Converged, StoreError> {
        let Some(link) = self.state().link(self.ctx.user)? else {
            return Ok(Converged::Done);
        };
        if link.tenant != self.ctx.tenant {
            return Ok(Converged::Done);
        }
        let (user, tenant, member) = (self.ctx.user, &link.tenant, &link.entra_id);
        let queued = self.state().queued_memberships(user, tenant, member)?;
        let recorded = self.state().memberships(user, tenant, member)?;
        if self.s.groups.is_empty() && recorded.is_empty() && queued.is_empty() {
            return Ok(Converged::Done);
        }
        let (wanted, blocked) = self.wanted(leaving).await?;
        let want: BTreeSet<String> = wanted.keys().cloned().collect();
        self.settle_queue(&link, &queued, &recorded, &want)?;
        let recorded = self.state().memberships(user, tenant, member)?;
        let queued = self.state().queued_memberships(user, tenant, member)?;
        // An addition waiting for its batch counts as made; one handed back
        // by the batcher does not: this worker makes it alone.
        let have: BTreeSet<String> = (recorded.iter().map(|m| m.group_id.clone()))
            .chain(
                queued
                    .iter()
                    .filter(|q| !q.direct)
                    .map(|q| q.group_id.clone()),
            )
            .collect();
        let plan = plan_memberships(&want, &have, blocked.is_none());
        let young = link.created_by_us && age(&link.linked_at) < self.s.replication_timeout;
        // While the company's mass-deprovision brake is held (a rule typo
        // caught by a resync), membership removals wait for its release.
        let held = match leaving || plan.remove.is_empty() {
            true => None,
            false => self
                .state()
                .brake(self.ctx.company)?
                .filter(|b| b.is_held()),
        };
        // Removals first: access is never wider than Plumm says, not even
        // for the moment between two writes.
        let removals = recorded
            .iter()
            .filter(|m| plan.remove.contains(&m.group_id));
        for m in removals.filter(|_| held.is_none()) {
            if let Some(c) = self.remove_member(&link, m).await? {
                return Ok(c);
            }
        }
        for (m, fresh) in plan.add.iter().filter_map(|id| wanted.get(id)) {
            let handed_back = queued.iter().find(|q| q.direct && q.group_id == m.group_id);
            if self.ctx.priority == Priority::Bulk && handed_back.is_none() {
                self.queue_add(&link, m, young || *fresh)?;
                continue;
            }
            if let Some(c) = self.add_member(&link, m, young || *fresh).await? {
                return Ok(c);
            }
            if let Some(q) = handed_back {
                self.state().unqueue_membership(q.id)?;
            }
        }
        if let Some(b) = held {
            let reason = format!(
                "{HELD_MARK}: group removals wait: {}",
                b.reason.unwrap_or_default()
            );
            let mut r = self.ctx.record(Action::GroupRemove, Outcome::Skipped);
            r.detail = Some(reason.clone());
            self.ctx.audit(&r);
            return Ok(Converged::Held(reason));
        }
        Ok(blocked.unwrap_or(Converged::Done))
    }

    /// The groups the rules give the person now, resolved to ids; and,
    /// when one could not be resolved, why. The set then still holds every
    /// other group whose id is known, so a queued addition to one of them
    /// is kept; but it is incomplete: nothing is removed, as the group not
    /// resolved may be one they are in already.
    async fn wanted(
        &self,
        leaving: bool,
    ) -> Result<(BTreeMap<String, Resolved>, Option<Converged>), StoreError> {
        // Suspended on the leave date too (suspend_after_leave); a pre-hire,
        // disabled until the start date, gets their groups ahead of it.
        let suspended = leaving || self.user.status == PlummStatus::Inactive || self.timing().left;
        let targets = person_groups(
            self.user,
            &self.s.groups,
            self.s.on_suspend_groups,
            suspended,
        );
        let mut wanted = BTreeMap::new();
        let mut blocked = None;
        for target in &targets {
            let found = match (&blocked, target) {
                // Past one that failed, Graph is not asked again.
                (Some(_), GroupTarget::Name(name)) => self.recorded_group(name)?.map(Ok),
                _ => Some(self.resolve(target).await?),
            };
            match found {
                Some(Ok((m, fresh))) => {
                    wanted.insert(m.group_id.clone(), (m, fresh));
                }
                Some(Err(c)) => blocked = blocked.or(Some(c)),
                None => {}
            }
        }
        Ok((wanted, blocked))
    }

    /// A departure that suspends the account takes the person out of the
    /// managed groups when `on_suspend_groups = "remove"`. Otherwise (kept;
    /// deleted: the memberships go with the account; ignored: Entra is left
    /// as it is) only the records go, with the link. `Some` when that did
    /// not finish.
    pub(super) async fn leave_groups(&self) -> Result<Option<Converged>, StoreError> {
        let suspends = self.s.on_delete == OnDelete::Suspend;
        if !suspends || self.s.on_suspend_groups == OnSuspendGroups::Keep {
            return Ok(None);
        }
        Ok(match self.memberships(true).await? {
            Converged::Done => None,
            other => Some(other),
        })
    }

    /// `None`: the person is a member now (added, or already one).
    async fn add_member(
        &self,
        link: &Link,
        m: &ManagedMembership,
        replicating: bool,
    ) -> Result<Option<Converged>, StoreError> {
        let req = request::add_group_member(&m.group_id, &link.entra_id);
        let label = label(m);
        let detail = match self.call(Action::GroupAdd, &req, replicating).await {
            Ok((sent, n)) => {
                self.done(
                    Action::GroupAdd,
                    &sent,
                    n,
                    Some(format!("added to {label}")),
                );
                None
            }
            Err((f, n)) => match f.failure() {
                Some(Failure::AlreadyMember) => Some((f, n)),
                Some(Failure::NotFound) if replicating => {
                    return Ok(Some(self.lagging(Action::GroupAdd, &f, n, &label)))
                }
                Some(Failure::NotFound) => {
                    let reason = format!(
                        "Entra has no {label}, or no longer the user {}: correct the [[groups]] \
                         rule, or the group in Entra",
                        link.entra_id
                    );
                    return self.park(Action::GroupAdd, Some(&f), reason).map(Some);
                }
                _ => {
                    return self
                        .group_failed(Action::GroupAdd, f, n, &label)
                        .await
                        .map(Some)
                }
            },
        };
        if let Some((f, n)) = detail {
            let mut r = f.describe(self.ctx.record(Action::GroupAdd, Outcome::Ok));
            r.attempt = Some(n);
            r.detail = Some(format!("already a member of {label}; counted as done"));
            self.ctx.audit(&r);
        }
        self.state()
            .record_membership(self.ctx.user, &link.tenant, &link.entra_id, m)?;
        Ok(None)
    }

    /// `None`: the person is no longer a member (removed, or was not one).
    async fn remove_member(
        &self,
        link: &Link,
        m: &ManagedMembership,
    ) -> Result<Option<Converged>, StoreError> {
        let req = request::remove_group_member(&m.group_id, &link.entra_id);
        let label = label(m);
        match self.call(Action::GroupRemove, &req, false).await {
            Ok((sent, n)) => {
                let detail = format!("removed from {label}");
                self.done(Action::GroupRemove, &sent, n, Some(detail));
            }
            // The recorded add succeeded, so the account was visible: a
            // 404 now is a member no longer there, not replication.
            Err((f, n)) if f.failure() == Some(&Failure::NotFound) => {
                let mut r = f.describe(self.ctx.record(Action::GroupRemove, Outcome::Ok));
                r.attempt = Some(n);
                r.detail = Some(format!("not a member of {label}; counted as done"));
                self.ctx.audit(&r);
            }
            Err((f, n)) => {
                return self
                    .group_failed(Action::GroupRemove, f, n, &label)
                    .await
                    .map(Some)
            }
        }
        self.state()
            .forget_membership(self.ctx.user, &link.tenant, &m.group_id)?;
        Ok(None)
    }

    /// The group a rule names: by id as it is; by name the group recorded
    /// for it, else the one Entra has under its nickname, else a new one.
    async fn resolve(
        &self,
        target: &GroupTarget,
    ) -> Result<Result<Resolved, Converged>, StoreError> {
        let name = match target {
            GroupTarget::Id(id) => {
                let m = ManagedMembership {
                    group_id: id.clone(),
                    group_name: None,
                };
                return Ok(Ok((m, false)));
            }
            GroupTarget::Name(n) => n,
        };
        if let Some(found) = self.recorded_group(name)? {
            return Ok(Ok(found));
        }
        // One resolution per name at a time: two hires into a new
        // department must not create its group twice.
        let _one = self.names.lock(self.ctx.tenant.as_str(), name).await;
        if let Some(found) = self.recorded_group(name)? {
            return Ok(Ok(found));
        }
        let intent = self.state().managed_group(&self.ctx.tenant, name)?;
        let nickname = group_mail_nickname(name);
        let named = |id: String, fresh: bool| {
            let m = ManagedMembership {
                group_id: id,
                group_name: Some(name.clone()),
            };
            (m, fresh)
        };
        match self.find_group(&nickname).await? {
            Err(c) => return Ok(Err(c)),
            Ok(Some(id)) => {
                let ours = intent.is_some();
                self.state().save_managed_group(
                    &self.ctx.tenant,
                    name,
                    &nickname,
                    Some(&id),
                    ours,
                )?;
                return Ok(Ok(named(id, false)));
            }
            Ok(None) => {}
        }
        // A create whose outcome is unknown (a crash, a lost answer) may have
        // made the group, still invisible: fail closed until the window passes.
        if let Some(i) = intent.filter(|i| age(&i.at) < self.s.replication_timeout) {
            return Ok(Err(Converged::Deferred(format!(
                "group \"{name}\" may have been created at {} and is not visible yet; \
                 it is looked for again before any create",
                i.at
            ))));
        }
        Ok(self
            .create_group(name, &nickname)
            .await?
            .map(|id| named(id, true)))
    }

    fn recorded_group(&self, name: &str) -> Result<Option<Resolved>, StoreError> {
        let Some(g) = self.state().managed_group(&self.ctx.tenant, name)? else {
            return Ok(None);
        };
        Ok(g.group_id.map(|id| {
            let fresh = g.created_by_us && age(&g.at) < self.s.replication_timeout;
            let m = ManagedMembership {
                group_id: id,
                group_name: Some(name.to_string()),
            };
            (m, fresh)
        }))
    }

    async fn find_group(
        &self,
        nickname: &str,
    ) -> Result<Result<Option<String>, Converged>, StoreError> {
        let req = request::find_group_by_nickname(nickname);
        match self.call(Action::Lookup, &req, false).await {
            Ok((sent, _)) => {
                let id = sent
                    .reply
                    .body
                    .as_ref()
                    .and_then(|b| b.get("value"))
                    .and_then(Value::as_array)
                    .and_then(|v| v.first())
                    .and_then(|g| g.get("id"))
                    .and_then(Value::as_str);
                Ok(Ok(id.map(str::to_ascii_lowercase)))
            }
            Err((f, n)) => {
                let label = format!("the groups with mailNickname {nickname}");
                self.group_failed(Action::Lookup, f, n, &label)
                    .await
                    .map(Err)
            }
        }
    }

    /// `POST /groups` once, the intent on disk before the request leaves.
    async fn create_group(
        &self,
        name: &str,
        nickname: &str,
    ) -> Result<Result<String, Converged>, StoreError> {
        let tenant = &self.ctx.tenant;
        self.state()
            .save_managed_group(tenant, name, nickname, None, true)?;
        let req = request::create_security_group(name, nickname);
        let label = format!("group \"{name}\"");
        // One attempt only: Graph does not hold a security group's
        // mailNickname unique, so a resent POST after a lost answer would
        // make a second group. An answer lost or refused leaves the change
        // pending; the intent makes the next round look the group up first.
        let once = RetrySettings {
            max_attempts: 1,
            ..self.s.retry
        };
        let (result, unsure) = retry::call(
            self.graph,
            &once,
            self.ctx,
            Action::GroupCreate,
            &req,
            false,
        )
        .await;
        let (sent, n) = match result {
            Ok(done) => done,
            Err((f, n)) => {
                if !unsure && f.failure().is_some() {
                    self.state().drop_group_intent(tenant, name)?;
                }
                return self
                    .group_failed(Action::GroupCreate, f, n, &label)
                    .await
                    .map(Err);
            }
        };
        let id = sent
            .reply
            .body
            .as_ref()
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str);
        let Some(id) = id.map(str::to_ascii_lowercase) else {
            // Left as an intent: the lookup finds the group if it exists.
            return Ok(Err(Converged::Deferred(
                "Graph's answer to the group create carried no id".into(),
            )));
        };
        self.state()
            .save_managed_group(tenant, name, nickname, Some(&id), true)?;
        let detail = format!("created {label} ({id}) as a security group, mailNickname {nickname}");
        self.done(Action::GroupCreate, &sent, n, Some(detail));
        Ok(Ok(id))
    }

    /// A 404 for a user or group created within the replication window:
    /// lag, not absence. The change stays pending.
    fn lagging(&self, action: Action, f: &CallFailed, attempt: u32, label: &str) -> Converged {
        let mut r = f.describe(self.ctx.record(action, Outcome::Failed));
        r.attempt = Some(attempt);
        r.detail = Some(format!(
            "{label} or the user is not visible yet (replication); the change stays pending"
        ));
        self.ctx.audit(&r);
        Converged::Deferred(format!("{label}: not replicated yet"))
    }

    /// A group call that failed for good. Never the user path's 403
    /// handling: the tenant's user writes are not in question.
    async fn group_failed(
        &self,
        action: Action,
        f: CallFailed,
        attempt: u32,
        label: &str,
    ) -> Result<Converged, StoreError> {
        let graph_message = f
            .describe(crate::store::AuditRecord::default())
            .error_message
            .unwrap_or_default();
        let reason = match f.failure() {
            Some(Failure::Forbidden) if action == Action::GroupCreate => {
                Some(format!("{label}: {CREATE_PERMISSION}"))
            }
            Some(Failure::Forbidden) => Some(format!("{label}: {MEMBER_PERMISSION}")),
            Some(Failure::Rejected | Failure::Conflict { .. } | Failure::UnverifiedDomain) => Some(
                format!("Entra refused the {action} for {label}: {graph_message}; check the [[groups]] rule"),
            ),
            _ => None,
        };
        let pending = format!("{label}: the change stays pending and will be tried again");
        self.settle_failure(action, f, attempt, reason, &pending)
    }
}

fn label(m: &ManagedMembership) -> String {
    crate::engine::membership_batch::group_label(m.group_name.as_deref(), &m.group_id)
}
