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
use crate::domain::{CompanyId, LicenceError, PlummUserId};
use crate::engine::brake::{self, BrakeSettings};
use crate::engine::matching::{select_list, MatchError, Matcher};
use crate::engine::{Policy, PolicyRx};
use crate::graph::licences::LICENCE_STATES;
use crate::graph::GraphClient;
use crate::plan::Props;
use crate::store::resync::for_each_company_user;
use crate::store::{
    now_text, since, AuditRecord, Outcome, PlummDb, StateDb, StoreError, TenantConnection,
};
use crate::support::progress::{Progress, Update};

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
    /// Where each run reports pages listed and people planned.
    pub progress: Arc<dyn Progress>,
}

/// What planning the Plumm users the listing did not show needs.
struct UnlistedCtx<'a> {
    plumm: &'a Mutex<PlummDb>,
    rules: &'a Rules<'a>,
    /// An account this daemon created less recently than this may just not
    /// be replicated yet.
    young: std::time::Duration,
    listing_started: &'a str,
    /// "resync company 42", for progress.
    task: &'a str,
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
    /// The manager the listing showed, when it differs from Plumm's: what
    /// the daemon records as set before queueing, so the worker corrects it.
    pub(super) listed_manager: Option<Option<String>>,
}

/// Everything the plan found, kept only for lines other than "nothing":
/// memory grows with the work to do, not with the company.
#[derive(Default)]
pub(super) struct Planned {
    pub(super) actions: Vec<Action>,
    pub(super) seen: HashSet<PlummUserId>,
    /// The current page's linked people with their licence errors (and
    /// email), recorded and emptied after each page.
    pub(super) licences: Vec<(PlummUserId, String, Vec<LicenceError>)>,
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
            lifecycle: s.lifecycle,
            now: chrono::Utc::now(),
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
        let dry = if opts.dry_run { " (dry run)" } else { "" };
        let task = format!("resync company {}{dry}", conn.company);
        let mut pages = 0;
        let licences = self.licence_watch(conn, &s, opts)?;
        let extra: &[&str] = match licences {
            Some(_) => &[LICENCE_STATES],
            None => &[],
        };
        matcher
            .for_each_page_with(&conn.tenant, extra, |page| {
                report.entra_users += page.len() as u64;
                pages += 1;
                self.progress.update(&Update {
                    task: &task,
                    stage: "listing the tenant",
                    done: pages,
                    total: None,
                    unit: "pages listed",
                });
                let ctx = super::page::PageCtx {
                    state: &self.state,
                    plumm: &plumm,
                    company: conn.company,
                    tenant: &conn.tenant,
                    policy: &policy,
                    select: &select,
                    licences: licences.is_some(),
                };
                ctx.plan_page(page, &mut planned, report)?;
                if let Some(names) = &licences {
                    self.record_licences(conn, names, &mut planned.licences)?;
                }
                Ok(())
            })
            .await?;
        if !opts.dry_run {
            // Whoever the listing did not refresh: not listed, or licences
            // are not read any more.
            self.state
                .sweep_licence_errors(conn.company, &listing_started)?;
        }
        let unlisted = UnlistedCtx {
            plumm: &plumm,
            rules: &policy,
            young: s.replication_timeout,
            listing_started: &listing_started,
            task: &task,
        };
        self.plan_unlisted(conn, unlisted, &mut planned, report)?;
        self.progress.finish(&format!(
            "{task}: listed {pages} pages ({} Entra users), planned {} people: {}",
            report.entra_users,
            report.plumm_users,
            report.counts_text()
        ));

        let held = self.brake_check(&s.brake, conn.company, opts, &planned, report)?;
        // Before any change is handed to the workers: a burst of removals
        // must hold the brake before a worker could carry one out.
        let groups = self.memberships(conn, &s, opts, &plumm, report).await?;
        if !opts.dry_run {
            report.queued = self.apply(conn, &planned, held)?;
            self.progress
                .finish(&format!("{task}: {} changes queued", report.queued));
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
            .chain(groups)
            .collect();
        report.scheduled = self.state.scheduled_for(conn.company)?;
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
        let (u_task, dry) = (u.task, report.dry_run);
        let mut guard = u.plumm.lock().unwrap_or_else(PoisonError::into_inner);
        let mut people = 0;
        report.plumm_users = for_each_company_user(guard.connection(), conn.company, |u| {
            people += 1;
            self.progress.update(&Update {
                task: u_task,
                stage: "planning",
                done: people,
                total: None,
                unit: "people planned",
            });
            // Every person's time-based changes, as their dates say now:
            // people synced before the lifecycle settings were on (or
            // before this version) get theirs here, not at their next change.
            if !dry {
                let t = policy.timing(&u);
                self.state.set_schedule(u.id, conn.company, &t.scheduled)?;
            }
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
                    listed_manager: None,
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
}
