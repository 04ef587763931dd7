//! Converge one user: read what Plumm says, decide with the pure planner,
//! call Graph, record the link and the audit rows.
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::retry::{call, CallFailed};
use super::UserCtx;
use crate::configuration::{OnDelete, Settings};
use crate::domain::{Email, EntraObjectId, PlummUser};
use crate::graph::{request, Failure, GraphClient};
use crate::mapping::{desired_user, DesiredUser, UpnSource};
use crate::plan::{plan_removal, plan_update, props, Action, Plan, Props};
use crate::store::{
    now_text, Link, Outcome, Parked, PendingEntry, PendingKind, StateDb, StoreError,
};

/// How a user's pending change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converged {
    /// Entra matches Plumm (or nothing was to be done): the change is complete.
    Done,
    /// The user cannot be pushed as it is; complete until it changes again.
    Parked(String),
    /// Not now (throttled too long, outage, token trouble): stays pending.
    Deferred(String),
}

pub struct Converger {
    pub state: Arc<StateDb>,
    pub graph: Arc<GraphClient>,
    pub settings: watch::Receiver<Arc<Settings>>,
}

/// What one round of the upsert loop decided.
enum Step {
    Finished(Converged),
    /// The user is now linked to this Entra object: update it.
    Linked(Link),
    /// The link points at an object Entra no longer has: find or create again.
    Relink,
    /// The tenant refused the email's domain: build the UPN on `upn_domain`.
    UseFallback(Option<Link>),
}

struct Found {
    id: EntraObjectId,
    props: Props,
    matched_by: &'static str,
}

impl Converger {
    pub async fn converge(&self, entry: &PendingEntry) -> Result<Converged, StoreError> {
        let settings = self.settings.borrow().clone();
        let user = match PlummUser::from_snapshot(&entry.snapshot) {
            Ok(u) => u,
            Err(e) => {
                // Only a changed trigger could do this; park rather than block the queue.
                let reason = format!("{e}; check the outbox triggers (entra-daemon migrate)");
                let mut r = crate::store::AuditRecord::new("map", Outcome::Parked);
                r.company = Some(entry.company);
                r.user = Some(entry.user);
                r.error_message = Some(reason.clone());
                self.state.append_audit(&r)?;
                return Ok(Converged::Parked(reason));
            }
        };
        let Some(conn) = self.state.connection(entry.company)? else {
            let mut r = crate::store::AuditRecord::new("skip", Outcome::Skipped);
            r.company = Some(entry.company);
            r.user = Some(entry.user);
            r.email = Some(user.email.clone());
            r.detail = Some(format!(
                "company {} has no Entra connection; the user will be synced when it connects",
                entry.company
            ));
            self.state.append_audit(&r)?;
            return Ok(Converged::Done);
        };
        let ctx = UserCtx {
            company: entry.company,
            tenant: conn.tenant,
            user: entry.user,
            email: user.email.clone(),
            priority: entry.priority,
            state: &self.state,
        };
        let job = Job {
            s: &settings,
            graph: &self.graph,
            ctx: &ctx,
            user: &user,
        };
        match entry.kind {
            PendingKind::Upsert => job.upsert().await,
            PendingKind::Remove => job.remove().await,
        }
    }
}

struct Job<'a> {
    s: &'a Settings,
    graph: &'a GraphClient,
    ctx: &'a UserCtx<'a>,
    user: &'a PlummUser,
}

impl Job<'_> {
    fn state(&self) -> &StateDb {
        self.ctx.state
    }

    fn desired(&self, fallback: bool) -> Result<DesiredUser, crate::mapping::InvalidUser> {
        let upn = match (&self.s.sync.upn_domain, fallback) {
            (Some(d), true) => UpnSource::Fallback(d),
            _ => UpnSource::EmailDomain,
        };
        desired_user(self.user, &self.s.mapping, upn)
    }

    async fn upsert(&self) -> Result<Converged, StoreError> {
        let mut link = self.state().link(self.ctx.user)?;
        if let Some(l) = link.take_if(|l| l.tenant != self.ctx.tenant) {
            // The user moved to a company on another tenant: the old tenant's
            // account is not ours to keep in sync any more.
            self.state().remove_link(l.user)?;
            let mut r = self.ctx.record(Action::Link, Outcome::Ok);
            r.detail = Some(format!(
                "user moved from tenant {} to {}; the old account {} is no longer managed",
                l.tenant, self.ctx.tenant, l.entra_id
            ));
            self.ctx.audit(&r);
        }
        let mut fallback = link.as_ref().is_some_and(|l| l.upn_fallback);
        // A few rounds at most: link -> update, relink -> create, fallback -> retry.
        for _ in 0..4 {
            let desired = match self.desired(fallback) {
                Ok(d) => d,
                Err(invalid) => {
                    return self.park(
                        Action::Validate,
                        None,
                        format!(
                            "user {} ({}) cannot be synced: {invalid}",
                            self.user.id, self.user.email
                        ),
                    )
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
                Step::UseFallback(l) => {
                    fallback = true;
                    link = l;
                }
            }
        }
        Ok(Converged::Deferred(
            "the user did not settle; will try again".into(),
        ))
    }

    async fn update_linked(
        &self,
        mut link: Link,
        desired: &DesiredUser,
        fallback: bool,
    ) -> Result<Step, StoreError> {
        let plan = plan_update(
            &link.pushed,
            desired,
            self.s.sync.revoke_sessions_on_suspend,
        );
        if plan.action == Action::Nothing && link.upn_fallback == fallback {
            let mut r = self.ctx.record(Action::Nothing, Outcome::Skipped);
            r.detail = Some("Entra already matches Plumm".into());
            self.ctx.audit(&r);
            return Ok(Step::Finished(Converged::Done));
        }
        // Right after a create, Graph may answer 404 until the new user has
        // replicated: that is a reason to wait, not proof the user is gone
        // (devblogs.microsoft.com/identity/designing-for-eventual-consistency-for-microsoft-entra).
        let young = link.created_by_us && age(&link.linked_at) < self.s.sync.replication_timeout;
        if !plan.changes.is_empty() {
            let req = request::update_user(&link.entra_id, &plan.changes);
            match call(
                self.graph,
                &self.s.sync.retry,
                self.ctx,
                plan.action,
                &req,
                young,
            )
            .await
            {
                Ok((sent, n)) => {
                    let mut r = self.ctx.record(plan.action, Outcome::Ok);
                    r = ok_fields(r, &sent, n);
                    r.detail = serde_json::to_string(&plan.changes).ok();
                    self.ctx.audit(&r);
                }
                Err((f, n)) => match f.failure() {
                    Some(Failure::NotFound) if !young => {
                        self.state().remove_link(link.user)?;
                        let mut r = f.describe(self.ctx.record(Action::Link, Outcome::Ok));
                        r.detail = Some(format!(
                            "linked Entra user {} no longer exists; looking the user up again",
                            link.entra_id
                        ));
                        self.ctx.audit(&r);
                        return Ok(Step::Relink);
                    }
                    Some(Failure::UnverifiedDomain)
                        if !fallback && self.s.sync.upn_domain.is_some() =>
                    {
                        return Ok(Step::UseFallback(Some(link)))
                    }
                    _ => return self.failed(plan.action, f, n).map(Step::Finished),
                },
            }
        }
        if plan.revoke {
            if let Some(c) = self.revoke(&link.entra_id).await? {
                return Ok(Step::Finished(c));
            }
        }
        link.pushed = props(desired);
        link.upn_fallback = fallback;
        self.state().save_link(&link)?;
        Ok(Step::Finished(Converged::Done))
    }

    /// Revokes sign-in sessions; `Some` when that failed and ended the job.
    async fn revoke(&self, id: &EntraObjectId) -> Result<Option<Converged>, StoreError> {
        let req = request::revoke_sessions(id);
        match call(
            self.graph,
            &self.s.sync.retry,
            self.ctx,
            Action::Revoke,
            &req,
            false,
        )
        .await
        {
            Ok((sent, n)) => {
                self.ctx.audit(&ok_fields(
                    self.ctx.record(Action::Revoke, Outcome::Ok),
                    &sent,
                    n,
                ));
                Ok(None)
            }
            Err((f, n)) => self.failed(Action::Revoke, f, n).map(Some),
        }
    }

    async fn link_or_create(
        &self,
        desired: &DesiredUser,
        fallback: bool,
    ) -> Result<Step, StoreError> {
        match self
            .lookup(&desired.user_principal_name, &desired.mail)
            .await?
        {
            Err(c) => return Ok(Step::Finished(c)),
            Ok(Some(found)) => return self.adopt(found),
            Ok(None) => {}
        }
        let password = super::password::generate();
        let req = request::create_user(desired, &password);
        drop(password);
        match call(
            self.graph,
            &self.s.sync.retry,
            self.ctx,
            Action::Create,
            &req,
            false,
        )
        .await
        {
            Ok((sent, n)) => {
                let id = sent
                    .reply
                    .body
                    .as_ref()
                    .and_then(|b| b.get("id"))
                    .and_then(Value::as_str);
                let Some(id) = id else {
                    let mut r =
                        ok_fields(self.ctx.record(Action::Create, Outcome::Failed), &sent, n);
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
                };
                self.state().save_link(&link)?;
                let mut r = ok_fields(self.ctx.record(Action::Create, Outcome::Ok), &sent, n);
                r.detail = Some(format!(
                    "created Entra user {id} as {}",
                    desired.user_principal_name
                ));
                self.ctx.audit(&r);
                Ok(Step::Finished(Converged::Done))
            }
            Err((f, n)) => match f.failure() {
                Some(Failure::Conflict { property }) => {
                    // Uniqueness is immediate, visibility is not: the user may
                    // exist (created by us before a crash, or by someone else)
                    // and just not be readable yet. Look again until it shows.
                    let mut r = f.describe(self.ctx.record(Action::Create, Outcome::Retry));
                    r.attempt = Some(n);
                    r.detail = Some(format!("Entra already has this {property}; waiting for that user to become visible to link it"));
                    self.ctx.audit(&r);
                    self.await_visible(desired, property).await
                }
                Some(Failure::UnverifiedDomain)
                    if !fallback && self.s.sync.upn_domain.is_some() =>
                {
                    Ok(Step::UseFallback(None))
                }
                Some(Failure::UnverifiedDomain) => {
                    let domain = desired
                        .user_principal_name
                        .rsplit('@')
                        .next()
                        .unwrap_or_default();
                    let reason = format!(
                        "the domain '{domain}' of {} is not a verified domain of tenant {}: add and verify it in Entra \
                         (Settings > Domain names), or set [sync] upn_domain to a verified domain",
                        self.user.email, self.ctx.tenant
                    );
                    self.park(Action::Create, Some(&f), reason)
                        .map(Step::Finished)
                }
                _ => self.failed(Action::Create, f, n).map(Step::Finished),
            },
        }
    }

    async fn await_visible(
        &self,
        desired: &DesiredUser,
        property: &str,
    ) -> Result<Step, StoreError> {
        let deadline = tokio::time::Instant::now() + self.s.sync.replication_timeout;
        let mut wait = self.s.sync.retry.initial;
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
                     and no user with this email can be read: it may be a group, contact or a user \
                     with this address as an alias. Free the address in Entra, or change the email in Plumm",
                    self.user.email
                );
                return self.park(Action::Create, None, reason).map(Step::Finished);
            }
            tokio::time::sleep(wait.min(deadline - now)).await;
            wait = (wait * 2).min(self.s.sync.retry.max);
        }
    }

    /// Links the user to an Entra user that has its email, unless another
    /// Plumm user already holds that link.
    fn adopt(&self, found: Found) -> Result<Step, StoreError> {
        if let Some(other) = self.state().linked_user(&self.ctx.tenant, &found.id)? {
            if other != self.ctx.user {
                let reason = format!(
                    "Entra user {} with email {} is already linked to Plumm user {other}; \
                     two Plumm users seem to share this email: fix one of them in Plumm",
                    found.id, self.user.email
                );
                return self.park(Action::Link, None, reason).map(Step::Finished);
            }
        }
        let link = Link {
            user: self.ctx.user,
            company: self.ctx.company,
            tenant: self.ctx.tenant.clone(),
            entra_id: found.id.clone(),
            pushed: found.props,
            upn_fallback: false,
            created_by_us: false,
            linked_at: now_text(),
        };
        self.state().save_link(&link)?;
        let mut r = self.ctx.record(Action::Link, Outcome::Ok);
        r.detail = Some(format!(
            "linked to existing Entra user {} (matched by {})",
            found.id, found.matched_by
        ));
        self.ctx.audit(&r);
        Ok(Step::Linked(link))
    }

    /// Finds the Entra user by UPN, then by mail (case-insensitive on
    /// Graph's side; compared again here). `Err` ends the job.
    async fn lookup(
        &self,
        upn: &str,
        mail: &str,
    ) -> Result<Result<Option<Found>, Converged>, StoreError> {
        let select = self.select();
        let select: Vec<&str> = select.iter().map(String::as_str).collect();
        for (property, value) in [("userPrincipalName", upn), ("mail", mail)] {
            let req = request::find_users_by(property, value, &select);
            let sent = match call(
                self.graph,
                &self.s.sync.retry,
                self.ctx,
                Action::Lookup,
                &req,
                false,
            )
            .await
            {
                Ok((sent, _)) => sent,
                Err((f, n)) => return self.failed(Action::Lookup, f, n).map(Err),
            };
            let matches: Vec<&Value> = sent
                .reply
                .body
                .as_ref()
                .and_then(|b| b.get("value"))
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter(|u| {
                            u.get(property)
                                .and_then(Value::as_str)
                                .is_some_and(|s| s.eq_ignore_ascii_case(value))
                        })
                        .collect()
                })
                .unwrap_or_default();
            match matches.as_slice() {
                [] => continue,
                [one] => {
                    let Some(id) = one.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    let props = select
                        .iter()
                        .filter(|p| **p != "id")
                        .map(|p| (p.to_string(), one.get(*p).cloned().unwrap_or(Value::Null)))
                        .collect();
                    return Ok(Ok(Some(Found {
                        id: EntraObjectId(id.to_string()),
                        props,
                        matched_by: property,
                    })));
                }
                many => {
                    let reason = format!(
                        "{} Entra users have {property} {value}; link one by hand or remove the duplicates in Entra",
                        many.len()
                    );
                    return self.park(Action::Link, None, reason).map(Err);
                }
            }
        }
        Ok(Ok(None))
    }

    /// The properties read when looking a user up: the id and every managed one.
    fn select(&self) -> Vec<String> {
        let mut s: Vec<String> = [
            "id",
            "userPrincipalName",
            "mail",
            "mailNickname",
            "accountEnabled",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        s.extend(self.s.mapping.properties().map(String::from));
        s
    }

    async fn remove(&self) -> Result<Converged, StoreError> {
        if self.s.sync.on_delete == OnDelete::Ignore {
            let mut r = self.ctx.record(Action::Nothing, Outcome::Skipped);
            r.detail = Some(
                "deleted in Plumm; [sync] on_delete = \"ignore\" leaves Entra as it is".into(),
            );
            self.ctx.audit(&r);
            return Ok(Converged::Done);
        }
        let link = self
            .state()
            .link(self.ctx.user)?
            .filter(|l| l.tenant == self.ctx.tenant);
        let link = match link {
            Some(l) => l,
            None => {
                // Never linked (or the link was lost in a crash right after a
                // create): find the account by email so it is not left active.
                let found = match Email::parse(&self.user.email) {
                    Ok(e) => match self.lookup(e.as_str(), e.as_str()).await? {
                        Err(c) => return Ok(c),
                        Ok(f) => f,
                    },
                    Err(_) => None,
                };
                match found {
                    Some(found) => match self.adopt(found)? {
                        Step::Linked(l) => l,
                        Step::Finished(c) => return Ok(c),
                        _ => return Ok(Converged::Done),
                    },
                    None => {
                        let mut r = self.ctx.record(Action::Nothing, Outcome::Skipped);
                        r.detail = Some("deleted in Plumm; no Entra user has this email".into());
                        self.ctx.audit(&r);
                        return Ok(Converged::Done);
                    }
                }
            }
        };
        let plan = plan_removal(
            self.s.sync.on_delete,
            &link.pushed,
            self.s.sync.revoke_sessions_on_suspend,
        );
        self.apply_removal(link, plan).await
    }

    async fn apply_removal(&self, mut link: Link, plan: Plan) -> Result<Converged, StoreError> {
        let req = match plan.action {
            Action::Nothing => {
                let mut r = self.ctx.record(Action::Nothing, Outcome::Skipped);
                r.detail = Some("deleted in Plumm; the Entra user is already disabled".into());
                self.ctx.audit(&r);
                return Ok(Converged::Done);
            }
            Action::Delete => request::delete_user(&link.entra_id),
            _ => request::update_user(&link.entra_id, &plan.changes),
        };
        match call(
            self.graph,
            &self.s.sync.retry,
            self.ctx,
            plan.action,
            &req,
            false,
        )
        .await
        {
            Ok((sent, n)) => {
                let mut r = ok_fields(self.ctx.record(plan.action, Outcome::Ok), &sent, n);
                r.detail = Some(match plan.action {
                    Action::Delete => {
                        "deleted in Plumm; on_delete = delete (restorable in Entra for 30 days)"
                            .into()
                    }
                    _ => "deleted in Plumm; on_delete = suspend (account kept, sign-in blocked)"
                        .into(),
                });
                self.ctx.audit(&r);
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
        if plan.action == Action::Delete {
            self.state().remove_link(link.user)?;
            return Ok(Converged::Done);
        }
        if plan.revoke {
            if let Some(c) = self.revoke(&link.entra_id).await? {
                return Ok(c);
            }
        }
        link.pushed
            .insert("accountEnabled".into(), Value::Bool(false));
        self.state().save_link(&link)?;
        Ok(Converged::Done)
    }

    /// A call that failed for good: park what Graph will refuse again,
    /// defer what may pass later.
    fn failed(&self, action: Action, f: CallFailed, attempt: u32) -> Result<Converged, StoreError> {
        let graph_message = f
            .describe(Default::default())
            .error_message
            .unwrap_or_default();
        let reason = match f.failure() {
            Some(Failure::Forbidden) => format!(
                "Entra refused to {action} {} (403 {graph_message}); it is probably an administrator, which the app \
                 may not change without a privileged role: manage this account in Entra by hand",
                self.user.email
            ),
            Some(Failure::Conflict { property }) => format!(
                "another Entra object already has the {property} of {}; free it in Entra or change the email in Plumm",
                self.user.email
            ),
            Some(Failure::Rejected | Failure::UnverifiedDomain) => format!(
                "Entra rejected the {action} of {}: {graph_message}; correct the user in Plumm",
                self.user.email
            ),
            _ => {
                let mut r = f.describe(self.ctx.record(action, Outcome::Failed));
                r.attempt = Some(attempt);
                r.detail = Some("the change stays pending and will be tried again".into());
                self.ctx.audit(&r);
                tracing::warn!(company = %self.ctx.company, tenant = %self.ctx.tenant, user = %self.ctx.user,
                    action = %action, request_id = r.request_id.as_deref().unwrap_or(""),
                    "{}; will try again later", f.summary());
                return Ok(Converged::Deferred(f.summary()));
            }
        };
        self.park(action, Some(&f), reason)
    }

    fn park(
        &self,
        action: Action,
        f: Option<&CallFailed>,
        reason: String,
    ) -> Result<Converged, StoreError> {
        let mut r = self.ctx.record(action, Outcome::Parked);
        if let Some(f) = f {
            r = f.describe(r);
        }
        r.detail = Some(reason.clone());
        self.ctx.audit(&r);
        self.state().park(&Parked {
            user: self.ctx.user,
            company: self.ctx.company,
            email: self.user.email.clone(),
            reason: reason.clone(),
            parked_at: now_text(),
        })?;
        tracing::warn!(company = %self.ctx.company, tenant = %self.ctx.tenant, user = %self.ctx.user,
            request_id = r.request_id.as_deref().unwrap_or(""), "parked: {reason}");
        Ok(Converged::Parked(reason))
    }
}

fn ok_fields(
    mut r: crate::store::AuditRecord,
    sent: &crate::graph::Sent,
    attempt: u32,
) -> crate::store::AuditRecord {
    r.http_status = Some(sent.reply.status);
    r.request_id = sent.reply.request_id.clone();
    r.client_request_id = Some(sent.client_request_id.clone());
    r.duration_ms = Some(sent.duration.as_millis() as u64);
    r.attempt = Some(attempt);
    r
}

/// Time since a stored timestamp; unparseable counts as old.
fn age(stored: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(stored)
        .ok()
        .and_then(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .to_std()
                .ok()
        })
        .unwrap_or(Duration::MAX)
}
