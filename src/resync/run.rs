//! One company's full resync: list the tenant once, plan every user, check
//! the brake, and hand what needs doing to the engine as bulk work.
//!
//! The plan is applied through the engine: each user that needs a write is
//! queued as a bulk pending change (which never replaces a pending
//! real-time one), and its worker converges it to Plumm's row as it is
//! then, so a change made in Plumm during the resync is never overwritten by
//! the plan's older view. Before queueing, the link's `pushed` properties
//! are set to what the listing read, so the worker's diff is against
//! Entra's actual state and corrects drift made in Entra. Users already in
//! sync are not queued: a resync of an in-sync tenant writes nothing.
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::Notify;

use super::plan::{plan_unlisted, Item, Rules, Unlisted, Verdict};
use super::report::{BrakeNote, CompanyReport, ItemOut, Trigger};
use crate::domain::{CompanyId, EntraObjectId, PlummStatus, PlummUser, PlummUserId};
use crate::engine::brake::{self, BrakeSettings};
use crate::engine::matching::{select_list, MatchError, Matcher};
use crate::engine::{Policy, PolicyRx};
use crate::graph::GraphClient;
use crate::pacing::Priority;
use crate::plan::Props;
use crate::store::resync::for_each_company_user;
use crate::store::state::Enqueue;
use crate::store::{
    now_text, since, AuditRecord, Link, Outcome, PendingKind, PlummDb, StateDb, StoreError,
    TenantConnection,
};

/// How a run was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    pub trigger: Trigger,
    pub dry_run: bool,
    pub allow_mass_deprovision: bool,
}

/// What a resync needs; cheap to share between runs.
pub struct Resync {
    pub plumm_database: PathBuf,
    /// The policy in force; each company's run reads it once, at its start.
    pub policy: PolicyRx,
    pub state: Arc<StateDb>,
    pub graph: Arc<GraphClient>,
    /// The dispatcher's wake-up, when a daemon runs one.
    pub wake: Option<Arc<Notify>>,
}

/// What planning the Plumm users the listing did not show needs.
struct UnlistedCtx<'a> {
    plumm: &'a Mutex<PlummDb>,
    rules: &'a Rules<'a>,
    /// An account this daemon created less recently than this may just not
    /// be replicated yet.
    young: std::time::Duration,
    listing_started: &'a str,
}

/// A plan line that needs applying, with what applying needs.
pub(super) struct Action {
    pub(super) item: Item,
    /// What the listing read (for refreshing the link).
    pub(super) listed: Option<Props>,
    /// The Plumm row as JSON, for the pending entry.
    pub(super) snapshot: String,
    /// Linked to a Plumm user that no longer exists.
    pub(super) orphan: bool,
    /// Made by a create of this daemon whose answer was lost (the intent's id).
    pub(super) intent: Option<i64>,
}

/// Everything the plan found, kept only for lines other than "nothing":
/// memory grows with the work to do, not with the company.
#[derive(Default)]
pub(super) struct Planned {
    pub(super) actions: Vec<Action>,
    pub(super) seen: HashSet<PlummUserId>,
}

impl Resync {
    /// Plans (and unless dry, applies) one company; the outcome is in the
    /// report and in one summary audit row, never an error.
    pub async fn company(&self, conn: &TenantConnection, opts: RunOptions) -> CompanyReport {
        let started = Instant::now();
        let mut report = CompanyReport::new(
            conn.company.0,
            conn.tenant.as_str(),
            opts.trigger,
            opts.dry_run,
        );
        if let Err(e) = self.plan_and_apply(conn, opts, &mut report).await {
            report.outcome = "failed".into();
            report.error = Some(e.to_string());
            tracing::error!(company = %conn.company, tenant = %conn.tenant, "resync failed: {e}");
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        let outcome = match report.outcome.as_str() {
            "failed" => Outcome::Failed,
            "held" => Outcome::Skipped,
            _ => Outcome::Ok,
        };
        crate::metrics::resync_run(opts.trigger.as_str(), &report.outcome);
        let mut r = AuditRecord::new("resync", outcome);
        r.company = Some(conn.company);
        r.tenant = Some(conn.tenant.clone());
        r.duration_ms = Some(report.duration_ms);
        r.detail = Some(report.summary());
        if let Err(e) = self.state.append_audit(&r) {
            tracing::error!(company = %conn.company, "audit log write failed: {e}");
        }
        tracing::info!(company = %conn.company, tenant = %conn.tenant, trigger = opts.trigger.as_str(),
            dry_run = opts.dry_run, duration_ms = report.duration_ms, "resync: {}", report.counts_text());
        report
    }

    async fn plan_and_apply(
        &self,
        conn: &TenantConnection,
        opts: RunOptions,
        report: &mut CompanyReport,
    ) -> Result<(), MatchError> {
        let s: Arc<Policy> = self.policy.borrow().clone();
        let plumm = Mutex::new(PlummDb::open(&self.plumm_database)?);
        let policy = Rules {
            mapping: &s.mapping,
            upn_domain: s.upn_domain.as_deref(),
            on_delete: s.on_delete,
            revoke_on_suspend: s.revoke_sessions_on_suspend,
        };
        let listing_started = now_text();
        let mut planned = Planned::default();
        let matcher = Matcher {
            graph: &self.graph,
            state: &self.state,
            plumm: &plumm,
            retry: &s.retry,
            mapping: &s.mapping,
        };
        let select = select_list(&s.mapping);
        matcher
            .for_each_page(&conn.tenant, |page| {
                report.entra_users += page.len() as u64;
                let ctx = super::page::PageCtx {
                    state: &self.state,
                    plumm: &plumm,
                    company: conn.company,
                    tenant: &conn.tenant,
                    policy: &policy,
                    select: &select,
                };
                Ok(ctx.plan_page(page, &mut planned, report)?)
            })
            .await?;
        let unlisted = UnlistedCtx {
            plumm: &plumm,
            rules: &policy,
            young: s.replication_timeout,
            listing_started: &listing_started,
        };
        self.plan_unlisted(conn, unlisted, &mut planned, report)?;

        let held = self.brake_check(&s.brake, conn.company, opts, &planned, report)?;
        if !opts.dry_run {
            report.queued = self.apply(conn, &planned, held)?;
            if opts.allow_mass_deprovision {
                // After queueing: the release lets through what was queued until now.
                brake::release(&self.state, conn.company, "entra-daemon resync")?;
            }
            if let Some(w) = &self.wake {
                w.notify_one();
            }
        }
        // Consumed as converted: the plan and its report are not both held.
        report.items = planned
            .actions
            .into_iter()
            .map(|a| ItemOut::from_item(&a.item, held && a.item.deprovisions()))
            .collect();
        Ok(())
    }

    /// Plumm users the listing did not show: create, re-create or report.
    fn plan_unlisted(
        &self,
        conn: &TenantConnection,
        u: UnlistedCtx<'_>,
        planned: &mut Planned,
        report: &mut CompanyReport,
    ) -> Result<(), StoreError> {
        let (young, listing_started, policy) = (u.young, u.listing_started, u.rules);
        let mut guard = u.plumm.lock().unwrap_or_else(PoisonError::into_inner);
        report.plumm_users = for_each_company_user(guard.connection(), conn.company, |u| {
            if planned.seen.contains(&u.id) {
                return Ok(());
            }
            let link = self.state.link(u.id)?.filter(|l| l.tenant == conn.tenant);
            let how = match &link {
                None => Unlisted::NeverLinked,
                // Linked after the listing began, or created and maybe not
                // yet replicated: absent from the listing is no proof.
                Some(l)
                    if l.linked_at.as_str() >= listing_started
                        || (l.created_by_us
                            && since(&l.linked_at).is_none_or(|age| age < young)) =>
                {
                    Unlisted::JustLinked
                }
                Some(_) => Unlisted::DeletedInEntra,
            };
            let mut item = plan_unlisted(&u, how, policy);
            item.entra_id = link.map(|l| l.entra_id.0);
            report.count(item.verdict);
            if item.verdict != Verdict::Nothing {
                planned.actions.push(Action {
                    item,
                    listed: None,
                    snapshot: serde_json::to_string(&u).unwrap_or_default(),
                    orphan: false,
                    intent: None,
                });
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Holds the plan's suspensions and deletions when they trip the brake
    /// (or it is already held), unless the admin allowed them.
    fn brake_check(
        &self,
        b: &BrakeSettings,
        company: CompanyId,
        opts: RunOptions,
        planned: &Planned,
        report: &mut CompanyReport,
    ) -> Result<bool, StoreError> {
        let count = planned
            .actions
            .iter()
            .filter(|a| a.item.deprovisions())
            .count() as u64;
        if opts.allow_mass_deprovision {
            return Ok(false);
        }
        let reason = match self.state.brake(company)?.filter(|b| b.is_held()) {
            Some(existing) => existing.reason.unwrap_or_default(),
            None => {
                let linked = self.state.links_count(company)?.max(0) as u64;
                if !brake::trips(b, count, linked) {
                    return Ok(false);
                }
                if opts.dry_run {
                    brake::reason(b, count, linked, "resync plan")
                } else {
                    brake::hold(&self.state, b, company, count, linked, "resync plan")?
                }
            }
        };
        if count > 0 {
            report.outcome = "held".into();
            report.brake = Some(BrakeNote {
                held: count,
                reason,
            });
        }
        Ok(count > 0)
    }

    /// Queues the plan's writes; returns how many changes were queued.
    fn apply(
        &self,
        conn: &TenantConnection,
        planned: &Planned,
        held: bool,
    ) -> Result<u64, StoreError> {
        let mut queue = Vec::new();
        let mut queued = 0;
        for a in &planned.actions {
            let i = &a.item;
            if !i.verdict.writes() || (held && i.deprovisions()) {
                continue;
            }
            let Some(user) = i.user.map(PlummUserId) else {
                continue;
            };
            let Some(entry) = self.pending_change(conn, a, user)? else {
                continue;
            };
            queue.push(entry);
            queued += 1;
            if queue.len() >= 500 {
                self.state.enqueue(&queue, None)?;
                queue.clear();
            }
        }
        self.state.enqueue(&queue, None)?;
        Ok(queued)
    }

    /// The bulk change that carries out one plan line, or `None` when the
    /// real-time loop got there first (linked, relinked, already pending).
    fn pending_change(
        &self,
        conn: &TenantConnection,
        a: &Action,
        user: PlummUserId,
    ) -> Result<Option<Enqueue>, StoreError> {
        let (state, i) = (&self.state, &a.item);
        let mut entry = Enqueue {
            user,
            company: conn.company,
            kind: PendingKind::Upsert,
            snapshot: a.snapshot.clone(),
            priority: Priority::Bulk,
            absent: false,
        };
        let orphan = |e: &mut Enqueue| {
            if a.orphan {
                e.kind = PendingKind::Remove;
                e.snapshot = orphan_snapshot(user, conn.company, &i.email);
            }
        };
        if let Some(intent) = a.intent {
            // The engine finds the account by the intent's identifiers,
            // links it, and converges it (or deprovisions it).
            state.reopen_intent(intent)?;
            if state.has_pending(user)? {
                return Ok(None);
            }
            orphan(&mut entry);
            return Ok(Some(entry));
        }
        match i.verdict {
            Verdict::Create => {
                if state.link(user)?.is_some() {
                    return Ok(None); // created meanwhile by the real-time loop
                }
                entry.absent = true;
            }
            Verdict::Recreate => {
                if !self.forget_deleted(conn, i, user)? {
                    return Ok(None);
                }
                entry.absent = true;
            }
            Verdict::Link => {
                self.adopt(conn, a, user)?;
                if i.changes.is_empty() {
                    return Ok(None);
                }
            }
            _ => {
                if !self.refresh_link(a, user)? {
                    return Ok(None);
                }
                orphan(&mut entry);
            }
        }
        Ok(Some(entry))
    }

    /// The link to an Entra user deleted in Entra is dropped, so the worker
    /// creates the person again; false when it was relinked meanwhile.
    fn forget_deleted(
        &self,
        conn: &TenantConnection,
        i: &Item,
        user: PlummUserId,
    ) -> Result<bool, StoreError> {
        let Some(link) = self.state.link(user)? else {
            return Ok(false);
        };
        if Some(&link.entra_id.0) != i.entra_id.as_ref() {
            return Ok(false);
        }
        self.state.remove_link(user)?;
        let why = format!(
            "Entra user {} was deleted in Entra; creating it again (found by a resync)",
            link.entra_id
        );
        self.audit_user(conn, i, "link", why);
        Ok(true)
    }

    /// Update, suspend, reactivate, delete: the worker diffs against what
    /// Entra holds now, so the link's `pushed` becomes what the listing read.
    /// A user the engine is already working on keeps its link as the worker
    /// leaves it (false); the next resync sees what is left.
    fn refresh_link(&self, a: &Action, user: PlummUserId) -> Result<bool, StoreError> {
        if self.state.has_pending(user)? {
            return Ok(false);
        }
        let Some(mut link) = self.state.link(user)? else {
            return Ok(false);
        };
        if Some(&link.entra_id.0) != a.item.entra_id.as_ref() {
            return Ok(false);
        }
        if let Some(listed) = &a.listed {
            link.pushed = listed.clone();
            self.state.save_link(&link)?;
        }
        Ok(true)
    }

    /// Links the listed Entra user to the Plumm user (unless either got
    /// linked meanwhile); true when it did.
    fn adopt(
        &self,
        conn: &TenantConnection,
        a: &Action,
        user: PlummUserId,
    ) -> Result<bool, StoreError> {
        let (Some(id), Some(listed)) = (a.item.entra_id.as_ref(), a.listed.as_ref()) else {
            return Ok(false);
        };
        let entra_id = EntraObjectId(id.clone());
        if self.state.link(user)?.is_some()
            || self.state.linked_user(&conn.tenant, &entra_id)?.is_some()
        {
            return Ok(false);
        }
        self.state.save_link(&Link {
            user,
            company: conn.company,
            tenant: conn.tenant.clone(),
            entra_id,
            pushed: listed.clone(),
            upn_fallback: false,
            created_by_us: false,
            linked_at: now_text(),
            verify_first: false,
            revoke_owed: false,
        })?;
        self.audit_user(
            conn,
            &a.item,
            "link",
            format!("linked to existing Entra user {id} (same email; found by a resync)"),
        );
        Ok(true)
    }

    fn audit_user(&self, conn: &TenantConnection, i: &Item, action: &str, detail: String) {
        let mut r = AuditRecord::new(action, Outcome::Ok);
        r.company = Some(conn.company);
        r.tenant = Some(conn.tenant.clone());
        r.user = i.user.map(PlummUserId);
        r.email = Some(i.email.clone());
        r.detail = Some(detail);
        if let Err(e) = self.state.append_audit(&r) {
            tracing::error!(company = %conn.company, "audit log write failed: {e}");
        }
    }
}

/// A deletion's snapshot for a Plumm user that is gone without one (a
/// restored backup): the engine's removal path needs only who it was.
fn orphan_snapshot(user: PlummUserId, company: CompanyId, email: &str) -> String {
    serde_json::to_string(&PlummUser {
        id: user,
        company_id: company,
        email: email.to_string(),
        first_name: String::new(),
        last_name: String::new(),
        role: None,
        department: None,
        location: None,
        country: None,
        status: PlummStatus::Inactive,
        updated_at: None,
    })
    .unwrap_or_default()
}
