//! Converge one user: read what Plumm says now, decide with the pure
//! planner, call Graph, record the link and the audit rows.
mod brake;
mod forbidden;
mod group_queue;
mod groups;
mod intents;
mod lookup;
mod manager;
mod remove;
mod restore;
mod timing;
mod upsert;

pub use group_queue::GroupNameLocks;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::retry::CallFailed;
use super::UserCtx;
use crate::domain::PlummUser;
use crate::engine::{Policy, PolicyRx};
use crate::graph::response::named_property;
use crate::graph::{Failure, GraphClient, Sent};
use crate::mapping::{desired_user, DesiredUser, InvalidUser, UpnSource};
use crate::plan::Action;
use crate::store::{
    now_text, AuditRecord, Link, Outcome, Parked, PendingEntry, PendingKind, PlummDb, StateDb,
    StoreError,
};

/// How a user's pending change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converged {
    /// Entra matches Plumm (or nothing was to be done): the change is complete.
    Done,
    /// The user cannot be pushed as it is; complete until it changes again.
    Parked(String),
    /// Not now (retries spent on throttling or an outage): the change
    /// stays pending and is tried again later.
    Deferred(String),
    /// The tenant refuses the app (consent revoked, app deleted, permission
    /// removed): the change stays pending and the tenant is quarantined
    /// until it accepts the app again.
    Quarantine(String),
    /// A suspension or deletion the mass-deprovision brake holds: the change
    /// stays pending until an admin releases the company's brake.
    Held(String),
}

impl Converged {
    /// Of two parts of one person's convergence (the manager, then the
    /// memberships), the outcome that keeps the most work: a part still
    /// to be done keeps the change pending even if the other parked.
    fn or(self, other: Converged) -> Converged {
        let weight = |c: &Converged| match c {
            Converged::Done => 0,
            Converged::Parked(_) => 1,
            Converged::Deferred(_) => 2,
            Converged::Held(_) => 3,
            Converged::Quarantine(_) => 4,
        };
        if weight(&other) > weight(&self) {
            other
        } else {
            self
        }
    }
}

pub struct Converger {
    pub state: Arc<StateDb>,
    /// Plumm's database, read for the user's current row: a change is
    /// converged to what Plumm holds now, never to an older snapshot.
    pub plumm: Mutex<PlummDb>,
    pub graph: Arc<GraphClient>,
    /// The policy in force; read once per change.
    pub policy: PolicyRx,
    /// Held while a managed group's name is resolved against Entra, so
    /// two people never create the same group at once.
    pub group_names: GroupNameLocks,
    /// The membership batcher's wake-up, rung when bulk work queues an
    /// addition (see `engine::membership_batch`).
    pub batch_wake: Arc<tokio::sync::Notify>,
}

impl Converger {
    pub async fn converge(&self, entry: &PendingEntry) -> Result<Converged, StoreError> {
        let policy = self.policy.borrow().clone();
        let user = match entry.kind {
            PendingKind::Upsert => {
                let live = self
                    .plumm
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .user(entry.user)?;
                match live {
                    Some(u) => u,
                    // Deleted meanwhile: the deletion's own change follows.
                    None => {
                        return self.skip(
                            entry,
                            None,
                            "no longer in Plumm; its deletion is handled next",
                        )
                    }
                }
            }
            PendingKind::Remove => match PlummUser::from_snapshot(&entry.snapshot) {
                Ok(u) => u,
                Err(e) => {
                    let reason = format!(
                        "user {}: the outbox snapshot of its deletion is unreadable ({e}); \
                         check the outbox triggers with `entra-daemon migrate`",
                        entry.user
                    );
                    let mut r = AuditRecord::new(Action::Validate.as_str(), Outcome::Parked);
                    r.company = Some(entry.company);
                    r.user = Some(entry.user);
                    r.detail = Some(reason.clone());
                    self.state.append_audit(&r)?;
                    return Ok(Converged::Parked(reason));
                }
            },
        };
        // The person's account may be in the tenant of a company they left
        // (moved, then deleted or moved on before the move was carried
        // out): a removal follows the person, not the snapshot's company.
        let (conn, departed) = match self.state.connection(user.company_id)? {
            Some(c) => (c, false),
            None => match self.departed_from(entry.user)? {
                Some(c) => (c, true),
                None => {
                    let why = format!(
                        "company {} has no Entra connection; its users are synced when it connects",
                        user.company_id
                    );
                    return self.skip(entry, Some(&user.email), &why);
                }
            },
        };
        let ctx = UserCtx {
            // The company whose tenant is touched (the brake and the audit
            // rows are per company): a departed person's old company.
            company: conn.company,
            tenant: conn.tenant,
            user: entry.user,
            email: user.email.clone(),
            priority: entry.priority,
            state: &self.state,
        };
        let job = Job {
            s: &policy,
            graph: &self.graph,
            ctx: &ctx,
            user: &user,
            absent: entry.absent,
            queued_at: &entry.first_queued_at,
            names: &self.group_names,
            batch_wake: &self.batch_wake,
            plumm: &self.plumm,
            now: chrono::Utc::now(),
        };
        match (entry.kind, departed) {
            // Memberships follow the account: a new hire's use the id the
            // create returned.
            (PendingKind::Upsert, false) => match job.upsert().await? {
                Converged::Done => {
                    let manager = job.manager().await?;
                    Ok(manager.or(job.memberships(false).await?))
                }
                other => Ok(other),
            },
            _ => {
                // Leaving (or gone from this tenant): nothing of the dates is due any more.
                self.state.set_schedule(entry.user, conn.company, &[])?;
                job.remove().await
            }
        }
    }

    /// The connection of a tenant where the person has an account (a link,
    /// or a create whose outcome is unknown) although their company now has
    /// none: that account is deprovisioned there.
    fn departed_from(
        &self,
        user: crate::domain::PlummUserId,
    ) -> Result<Option<crate::store::TenantConnection>, StoreError> {
        let mut places: Vec<_> = self
            .state
            .link(user)?
            .map(|l| (l.company, l.tenant))
            .into_iter()
            .collect();
        places.extend(
            self.state
                .open_intents(user)?
                .into_iter()
                .map(|i| (i.company, i.tenant)),
        );
        for (company, tenant) in places {
            if let Some(c) = self
                .state
                .connection(company)?
                .filter(|c| c.tenant == tenant)
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn skip(
        &self,
        entry: &PendingEntry,
        email: Option<&str>,
        why: &str,
    ) -> Result<Converged, StoreError> {
        let mut r = AuditRecord::new(Action::Skip.as_str(), Outcome::Skipped);
        r.company = Some(entry.company);
        r.user = Some(entry.user);
        r.email = email.map(str::to_string);
        r.detail = Some(why.to_string());
        self.state.append_audit(&r)?;
        Ok(Converged::Done)
    }
}

/// One user's convergence: settings, Graph, who it is for, and Plumm's row.
struct Job<'a> {
    s: &'a Policy,
    graph: &'a GraphClient,
    ctx: &'a UserCtx<'a>,
    user: &'a PlummUser,
    /// A fresh listing of the tenant showed no Entra user with this email.
    absent: bool,
    /// When the change was first queued (the brake lets through what an
    /// admin released).
    queued_at: &'a str,
    /// See [`Converger::group_names`].
    names: &'a GroupNameLocks,
    /// See [`Converger::batch_wake`].
    batch_wake: &'a tokio::sync::Notify,
    /// See [`Converger::plumm`]: the people a manager chain names.
    plumm: &'a Mutex<PlummDb>,
    /// The instant the person's dates are read against: one per change,
    /// so every part of it decides the same way.
    now: chrono::DateTime<chrono::Utc>,
}

impl Job<'_> {
    fn state(&self) -> &StateDb {
        self.ctx.state
    }

    fn desired(&self, fallback: bool) -> Result<DesiredUser, InvalidUser> {
        let upn = match (&self.s.upn_domain, fallback) {
            (Some(d), true) => UpnSource::Fallback(d),
            _ => UpnSource::EmailDomain,
        };
        let mut d = desired_user(self.user, &self.s.mapping, upn)?;
        // Before the start date or after the leave date, never enabled.
        d.account_enabled &= !self.timing().disabled;
        Ok(d)
    }

    /// One Graph call for this user with the configured retry policy, and
    /// whether Graph may have applied it although the call failed (see
    /// `retry::call`).
    async fn call_noting(
        &self,
        action: Action,
        request: &crate::graph::GraphRequest,
        retry_not_found: bool,
    ) -> (Result<(Sent, u32), (CallFailed, u32)>, bool) {
        super::retry::call(
            self.graph,
            &self.s.retry,
            self.ctx,
            action,
            request,
            retry_not_found,
        )
        .await
    }

    /// One Graph call for this user with the configured retry policy.
    async fn call(
        &self,
        action: Action,
        request: &crate::graph::GraphRequest,
        retry_not_found: bool,
    ) -> Result<(Sent, u32), (CallFailed, u32)> {
        self.call_noting(action, request, retry_not_found).await.0
    }

    /// A 404 for an account this daemon created within
    /// `replication_timeout`: lag, not absence. The change stays pending.
    fn not_replicated(
        &self,
        action: Action,
        f: &CallFailed,
        attempt: u32,
        link: &Link,
    ) -> Converged {
        let mut r = f.describe(self.ctx.record(action, Outcome::Failed));
        r.attempt = Some(attempt);
        r.detail = Some(format!(
            "Entra user {} was created {} and is not visible yet (replication); \
             the change stays pending",
            link.entra_id, link.linked_at
        ));
        self.ctx.audit(&r);
        Converged::Deferred(format!(
            "Entra user {} has not replicated yet",
            link.entra_id
        ))
    }

    fn skipped(&self, detail: &str) -> Converged {
        let mut r = self.ctx.record(Action::Skip, Outcome::Skipped);
        r.detail = Some(detail.to_string());
        self.ctx.audit(&r);
        Converged::Done
    }

    /// A call that failed for good: park what Graph will refuse again,
    /// defer what may pass later.
    async fn failed(
        &self,
        action: Action,
        f: CallFailed,
        attempt: u32,
    ) -> Result<Converged, StoreError> {
        if action != Action::Lookup && f.failure() == Some(&Failure::Forbidden) {
            return self.forbidden(action, f, attempt).await;
        }
        let graph_message = f
            .describe(AuditRecord::default())
            .error_message
            .unwrap_or_default();
        let email = &self.user.email;
        let reason = match f.failure() {
            // A 403 on a read is the app lacking permission in the tenant,
            // not something about this user: wait for the admin to fix it.
            Some(Failure::Forbidden) => None,
            Some(Failure::Conflict { property }) => Some(format!(
                "another Entra object already has the {property} of {email}; free it in Entra or change the email in Plumm"
            )),
            Some(Failure::Rejected | Failure::UnverifiedDomain) => {
                Some(match named_property(&graph_message) {
                    Some(p) => format!(
                        "{}: Entra rejected the {action} of {email}: {graph_message}; correct it in Plumm",
                        self.s.mapping.field_for(p)
                    ),
                    None => format!(
                        "Entra rejected the {action} of {email}: {graph_message}; correct the user in Plumm"
                    ),
                })
            }
            _ => None,
        };
        self.settle_failure(
            action,
            f,
            attempt,
            reason,
            "the change stays pending and will be tried again",
        )
    }

    /// How a failed call ends once its caller has said whether Graph will
    /// refuse it again (`park`, the reason): parked; else quarantined when
    /// the tenant refuses the app; else deferred, audited with `pending`.
    fn settle_failure(
        &self,
        action: Action,
        f: CallFailed,
        attempt: u32,
        park: Option<String>,
        pending: &str,
    ) -> Result<Converged, StoreError> {
        if let Some(reason) = park {
            return self.park(action, Some(&f), reason);
        }
        if let Some(why) = refusal(&f, action) {
            return Ok(self.quarantined(action, &f, attempt, why));
        }
        let mut r = f.describe(self.ctx.record(action, Outcome::Failed));
        r.attempt = Some(attempt);
        r.detail = Some(pending.to_string());
        self.ctx.audit(&r);
        tracing::warn!(company = %self.ctx.company, tenant = %self.ctx.tenant, user = %self.ctx.user,
            action = %action, request_id = r.request_id.as_deref().unwrap_or(""),
            "{}; will try again later", f.summary());
        Ok(Converged::Deferred(f.summary()))
    }

    /// The tenant refuses the app: the change stays pending under quarantine.
    fn quarantined(&self, action: Action, f: &CallFailed, attempt: u32, why: String) -> Converged {
        let mut r = f.describe(self.ctx.record(action, Outcome::Failed));
        r.attempt = Some(attempt);
        r.detail = Some(format!("needs re-consent: {why}; the change stays pending"));
        self.ctx.audit(&r);
        Converged::Quarantine(why)
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

    /// Audits a successful write.
    fn done(&self, action: Action, sent: &Sent, attempt: u32, detail: Option<String>) {
        let r = self.done_record(action, sent, attempt, detail);
        self.ctx.audit(&r);
        tracing::debug!(company = %self.ctx.company, tenant = %self.ctx.tenant, user = %self.ctx.user,
            action = %action, request_id = r.request_id.as_deref().unwrap_or(""), "done");
    }
}

impl Job<'_> {
    /// The audit row of a successful write.
    fn done_record(
        &self,
        action: Action,
        sent: &Sent,
        attempt: u32,
        detail: Option<String>,
    ) -> AuditRecord {
        let mut r = self.ctx.record(action, Outcome::Ok);
        r.http_status = Some(sent.reply.status);
        r.request_id = sent.reply.request_id.clone();
        r.client_request_id = Some(sent.client_request_id.clone());
        r.duration_ms = Some(sent.duration.as_millis() as u64);
        r.attempt = Some(attempt);
        r.detail = detail;
        r
    }
}

/// Whether a failure means the tenant as a whole refuses the app, and why
/// in words an admin can act on.
fn refusal(f: &CallFailed, action: Action) -> Option<String> {
    use crate::graph::{CallError, TokenError};
    match f {
        CallFailed::NoAnswer(CallError::Token(TokenError::Refused { error, description, .. })) => Some(format!(
            "Microsoft refused a token for the tenant ({error}: {description}); an Entra admin must \
             connect the company again from Plumm's Store"
        )),
        CallFailed::Graph { failure: Failure::Unauthorized, .. } => Some(
            "Graph refuses the app's tokens for the tenant (401); an Entra admin must connect the \
             company again from Plumm's Store"
                .into(),
        ),
        CallFailed::Graph { failure: Failure::Forbidden, .. } if action == Action::Lookup => Some(
            "the app may not read users in the tenant (403): its permissions were removed; an Entra \
             admin must grant consent again from Plumm's Store"
                .into(),
        ),
        _ => None,
    }
}

/// Time since a stored timestamp; unparseable counts as old.
fn age(stored: &str) -> Duration {
    crate::store::since(stored).unwrap_or(Duration::MAX)
}
