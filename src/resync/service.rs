//! Resyncs inside the daemon: at most one run per company at a time, and
//! requests that arrive during a run queue at most one more (a signal storm
//! runs at most two). Triggers: `SIGUSR1`, the cron schedule, and requests
//! the CLI leaves in the state database.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::report::{CompanyReport, Trigger};
use super::run::{Resync, RunOptions};
use crate::domain::CompanyId;
use crate::store::resync::ResyncRequest;
use crate::store::{StateDb, StoreError, TenantConnection};

/// How often the daemon looks for requests from `entra-daemon resync`.
const REQUEST_POLL: Duration = Duration::from_millis(100);
/// How often `entra-daemon resync` looks for the daemon's answer.
const ANSWER_POLL: Duration = Duration::from_millis(50);

/// What the daemon writes back for a CLI request.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    #[serde(default)]
    pub reports: Vec<CompanyReport>,
    #[serde(default)]
    pub error: Option<String>,
}

struct Queued {
    opts: RunOptions,
    waiters: Vec<oneshot::Sender<CompanyReport>>,
}

pub struct Service {
    resync: Resync,
    /// Companies with a run in progress, and the one run queued after it.
    running: Mutex<HashMap<CompanyId, Option<Queued>>>,
}

impl Service {
    pub fn new(resync: Resync) -> Arc<Self> {
        Arc::new(Self {
            resync,
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Asks for a run of one company; its report arrives on the receiver.
    /// A dry run changes nothing, so it never waits for another run.
    pub fn request(
        self: &Arc<Self>,
        conn: TenantConnection,
        opts: RunOptions,
    ) -> oneshot::Receiver<CompanyReport> {
        let (tx, rx) = oneshot::channel();
        if opts.dry_run {
            let me = self.clone();
            tokio::spawn(async move {
                let _ = tx.send(me.resync.company(&conn, opts).await);
            });
            return rx;
        }
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        match running.get_mut(&conn.company) {
            Some(slot) => match slot {
                // Already one queued: this request rides on it.
                Some(q) => {
                    q.opts.allow_mass_deprovision |= opts.allow_mass_deprovision;
                    q.waiters.push(tx);
                }
                None => {
                    *slot = Some(Queued {
                        opts,
                        waiters: vec![tx],
                    })
                }
            },
            None => {
                running.insert(conn.company, None);
                let me = self.clone();
                tokio::spawn(me.drive(
                    conn,
                    Queued {
                        opts,
                        waiters: vec![tx],
                    },
                ));
            }
        }
        rx
    }

    /// Every connected company.
    pub fn request_all(
        self: &Arc<Self>,
        opts: RunOptions,
    ) -> Result<Vec<oneshot::Receiver<CompanyReport>>, StoreError> {
        Ok(self
            .resync
            .state
            .connections()?
            .into_iter()
            .map(|c| self.request(c, opts))
            .collect())
    }

    async fn drive(self: Arc<Self>, conn: TenantConnection, mut next: Queued) {
        let company = conn.company;
        loop {
            // Read again: the company may have disconnected while queued.
            let report = match self.resync.state.connection(company) {
                Ok(Some(c)) => self.resync.company(&c, next.opts).await,
                Ok(None) => not_connected(company, next.opts),
                Err(e) => {
                    let mut r = not_connected(company, next.opts);
                    r.error = Some(e.to_string());
                    r
                }
            };
            for w in next.waiters.drain(..) {
                let _ = w.send(report.clone());
            }
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            match running.get_mut(&company).and_then(Option::take) {
                Some(q) => next = q,
                None => {
                    running.remove(&company);
                    return;
                }
            }
        }
    }

    /// Answers the CLI's requests, each in its own task.
    fn answer_requests(self: &Arc<Self>) {
        let claimed = match self.resync.state.claim_resync_requests() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("reading resync requests: {e}");
                return;
            }
        };
        for req in claimed {
            let me = self.clone();
            tokio::spawn(async move { me.answer(req).await });
        }
    }

    async fn answer(self: Arc<Self>, req: ResyncRequest) {
        let trigger = match req.trigger.as_str() {
            "handover" => Trigger::Handover,
            _ => Trigger::Cli,
        };
        let opts = RunOptions {
            trigger,
            dry_run: req.dry_run,
            allow_mass_deprovision: req.allow_mass_deprovision,
        };
        let state = &self.resync.state;
        let receivers = match req.company {
            Some(c) => match state.connection(c) {
                Ok(Some(conn)) => Ok(vec![self.request(conn, opts)]),
                Ok(None) => Err(format!("company {c} is not connected")),
                Err(e) => Err(e.to_string()),
            },
            None => self.request_all(opts).map_err(|e| e.to_string()),
        };
        let answer = match receivers {
            Ok(rs) => {
                let mut reports = Vec::new();
                for r in rs {
                    if let Ok(report) = r.await {
                        reports.push(report);
                    }
                }
                Answer {
                    reports,
                    error: None,
                }
            }
            Err(e) => Answer {
                reports: Vec::new(),
                error: Some(e),
            },
        };
        let ok = answer.error.is_none();
        let text = serde_json::to_string(&answer).unwrap_or_default();
        if let Err(e) = state.finish_resync_request(req.id, ok, &text) {
            tracing::error!("answering resync request {}: {e}", req.id);
        }
    }
}

fn not_connected(company: CompanyId, opts: RunOptions) -> CompanyReport {
    let mut r = CompanyReport::new(company.0, "", opts.trigger, opts.dry_run);
    r.outcome = "failed".into();
    r.error = Some(format!("company {company} is no longer connected"));
    r
}

/// The daemon's resync loop: `signal` (SIGUSR1) and the schedule resync
/// every connected company; the CLI's requests are answered. Runs until
/// `shutdown` turns true.
pub async fn serve(
    service: Arc<Service>,
    signal: Arc<Notify>,
    schedule: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (tick_tx, mut ticks) = mpsc::channel(1);
    let mut scheduler = match &schedule {
        Some(expr) => match super::schedule::start(expr, tick_tx.clone()).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("{e}; scheduled resyncs are off");
                None
            }
        },
        None => None,
    };
    let mut poll = tokio::time::interval(REQUEST_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let all = |trigger| {
        let opts = RunOptions {
            trigger,
            dry_run: false,
            allow_mass_deprovision: false,
        };
        if let Err(e) = service.request_all(opts) {
            tracing::error!("resync ({}): {e}", trigger.as_str());
        }
    };
    // A reload that changes who belongs in which group is carried out by
    // a resync: its membership pass batches the additions and the brake
    // counts the removals (a rule typo must not empty "All staff").
    let mut policy = service.resync.policy.clone();
    let mut rules = group_rules(&policy);
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            Ok(()) = policy.changed() => {
                let now = group_rules(&policy);
                if now != rules {
                    tracing::info!("the [[groups]] rules changed: resyncing every connected company");
                    rules = now;
                    all(Trigger::Rules);
                }
            }
            _ = signal.notified() => {
                tracing::info!("SIGUSR1: resyncing every connected company");
                all(Trigger::Signal);
            }
            Some(()) = ticks.recv() => all(Trigger::Schedule),
            _ = poll.tick() => service.answer_requests(),
        }
    }
    drop(tick_tx);
    if let Some(s) = scheduler.as_mut() {
        let _ = s.shutdown().await;
    }
}

fn group_rules(
    policy: &crate::engine::PolicyRx,
) -> (
    crate::mapping::groups::GroupRules,
    crate::mapping::groups::OnSuspendGroups,
) {
    let p = policy.borrow();
    (p.groups.clone(), p.on_suspend_groups)
}

/// Asks the running daemon for a resync (through the state database) and
/// waits for its answer. `daemon_running` says whether a daemon still holds
/// the lock: one that stops before it answers is reported, not waited for.
pub async fn ask(
    state: &StateDb,
    company: Option<CompanyId>,
    opts: RunOptions,
    daemon_running: impl Fn() -> anyhow::Result<bool>,
) -> anyhow::Result<Vec<CompanyReport>> {
    let id = state.request_resync(company, opts.dry_run, opts.allow_mass_deprovision)?;
    loop {
        if let Some((status, result)) = state.resync_request(id)? {
            if status == "done" || status == "failed" {
                let answer: Answer = serde_json::from_str(result.as_deref().unwrap_or("{}"))?;
                if let Some(e) = answer.error {
                    anyhow::bail!("{e}");
                }
                return Ok(answer.reports);
            }
        }
        if !daemon_running()? {
            // It may have answered just before it stopped.
            if let Some((_, Some(result))) = state.resync_request(id)? {
                let answer: Answer = serde_json::from_str(&result)?;
                return Ok(answer.reports);
            }
            anyhow::bail!("the daemon stopped before it answered (request {id})");
        }
        tokio::time::sleep(ANSWER_POLL).await;
    }
}
