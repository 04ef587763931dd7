//! Hands due users to workers: at most one worker per user (so one user's
//! changes are never applied out of order), and per company a pool of slots
//! for real-time changes and another for bulk work, so one slow, throttled
//! or failing tenant only ever occupies its own slots, and a bulk backlog
//! never takes the slots of a new hire. How fast the workers' Graph calls
//! go is the pacer's decision.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{watch, Notify};
use tokio::task::{Id, JoinSet};

use super::quarantine::ProbeSettings;
use super::{Converged, Converger};
use crate::domain::{CompanyId, PlummUserId};
use crate::pacing::Priority;
use crate::store::{after, now_text, until, PendingEntry, Quarantine, StateDb, StoreError};
use crate::support::progress::{Progress, Update};

/// What a dispatcher run did, for `run --once` and the demo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub done: u64,
    pub parked: u64,
    pub deferred: u64,
    /// Changes still pending when a `--once` run ended (deferred, or held
    /// by a quarantined tenant).
    pub left_pending: i64,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        self.parked > 0 || self.deferred > 0 || self.left_pending > 0
    }
}

pub struct Dispatcher {
    pub converger: Arc<Converger>,
    pub state: Arc<StateDb>,
    pub realtime_slots: usize,
    pub bulk_slots: usize,
    pub wake: Arc<Notify>,
    /// How long in-flight Graph calls may finish after a shutdown request.
    pub drain_timeout: Duration,
    pub probes: ProbeSettings,
    /// Where each finished change is counted (a `--once` drain a person
    /// waits for shows it).
    pub progress: Arc<dyn Progress>,
}

type Finished = (PendingEntry, Result<Converged, StoreError>);

#[derive(Default)]
struct InFlight {
    tasks: JoinSet<Finished>,
    by_task: HashMap<Id, (CompanyId, PlummUserId, Priority)>,
    /// Users being worked on (and, in a `--once` run, users already tried).
    /// One set for all companies: a user whose change moved it to another
    /// company while in flight must still have only one worker.
    busy: HashSet<PlummUserId>,
    slots_used: HashMap<(CompanyId, Priority), usize>,
    /// Companies with pending work, refreshed when woken (new changes) and
    /// on the idle tick, not on every completion: the query scans.
    companies: Vec<CompanyId>,
    /// Quarantined companies (their work waits) and the probes running.
    quarantined: HashMap<CompanyId, Quarantine>,
    probes: JoinSet<CompanyId>,
    probing: HashSet<CompanyId>,
    /// Changes pending when a `--once` run began (for its progress).
    total: Option<u64>,
}

impl Dispatcher {
    /// Runs until `shutdown` turns true (then drains), or, with `once`,
    /// until every pending change has been tried once (those deferred by an
    /// earlier run included) and nothing is in flight.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>, once: bool) -> RunReport {
        let mut report = RunReport::default();
        let mut flight = InFlight::default();
        if once {
            flight.total = self.state.pending_total().ok().map(|n| n.max(0) as u64);
        }
        let mut refresh = true;
        // After a completion only that company can have gained a free slot:
        // refilling just it keeps the cost per change flat with many tenants.
        // Every company is looked at on a fixed tick all the same, however
        // busy one company keeps the loop (deferred retries, probes).
        let mut only: Option<CompanyId> = None;
        let mut next_refresh = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let started = match self.fill(&mut flight, refresh, only.take(), once) {
                Ok(n) => n,
                Err(e) => {
                    // The state database is unwell (locked, disk full): say
                    // so and keep going; pending work stays where it is.
                    tracing::error!("dispatcher: {e}; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    refresh = true;
                    continue;
                }
            };
            if once && started == 0 && flight.tasks.is_empty() {
                report.left_pending = self.state.pending_total().unwrap_or(0);
                return report;
            }
            let wait = self.until_next_deferred();
            if refresh {
                next_refresh = tokio::time::Instant::now() + wait;
            }
            refresh = false;
            tokio::select! {
                // A closed channel (the signal task ended) also means stop.
                r = shutdown.changed() => if r.is_err() { break },
                Some(res) = flight.tasks.join_next_with_id(), if !flight.tasks.is_empty() => {
                    only = self.finish(res, &mut flight, &mut report, once);
                }
                Some(done) = flight.probes.join_next(), if !flight.probes.is_empty() => {
                    if let Ok(company) = done {
                        flight.probing.remove(&company);
                    }
                    refresh = true;
                }
                _ = self.wake.notified() => refresh = true,
                _ = tokio::time::sleep_until(next_refresh) => refresh = true,
            }
        }
        self.drain(flight, &mut report).await;
        if once {
            report.left_pending = self.state.pending_total().unwrap_or(0);
        }
        report
    }

    /// Starts workers for due users wherever a company has free slots,
    /// real-time first.
    fn fill(
        &self,
        flight: &mut InFlight,
        refresh: bool,
        only: Option<CompanyId>,
        once: bool,
    ) -> Result<usize, StoreError> {
        if refresh {
            flight.companies = self.state.companies_with_pending()?;
            flight.quarantined = self
                .state
                .quarantined()?
                .into_iter()
                .map(|q| (q.company, q))
                .collect();
        }
        let wall = now_text();
        // A `--once` run also tries what an earlier run deferred.
        let now = if once {
            "9999".to_string()
        } else {
            wall.clone()
        };
        let mut started = 0;
        let companies = match only {
            Some(c) if !refresh => vec![c],
            _ => flight.companies.clone(),
        };
        for company in companies {
            if let Some(q) = flight.quarantined.get(&company) {
                // Held, not lost; a probe asks the tenant now and then.
                if q.next_probe_at <= wall && flight.probing.insert(company) {
                    let probe = super::quarantine::probe(
                        self.converger.graph.clone(),
                        self.state.clone(),
                        q.clone(),
                        self.probes,
                        self.wake.clone(),
                    );
                    flight.probes.spawn(async move {
                        probe.await;
                        company
                    });
                }
                continue;
            }
            for (priority, slots) in [
                (Priority::Realtime, self.realtime_slots),
                (Priority::Bulk, self.bulk_slots),
            ] {
                let used = flight.slots_used.entry((company, priority)).or_default();
                let free = slots.saturating_sub(*used);
                if free == 0 {
                    continue;
                }
                for entry in self
                    .state
                    .due(company, priority, &now, free, &flight.busy)?
                {
                    flight.busy.insert(entry.user);
                    *used += 1;
                    let converger = self.converger.clone();
                    let user = entry.user;
                    let handle = flight.tasks.spawn(async move {
                        let result = converger.converge(&entry).await;
                        (entry, result)
                    });
                    flight
                        .by_task
                        .insert(handle.id(), (company, user, priority));
                    started += 1;
                }
            }
        }
        Ok(started)
    }

    fn finish(
        &self,
        res: Result<(Id, Finished), tokio::task::JoinError>,
        flight: &mut InFlight,
        report: &mut RunReport,
        once: bool,
    ) -> Option<CompanyId> {
        let id = match &res {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let (company, user, priority) = flight.by_task.remove(&id)?;
        if !once {
            flight.busy.remove(&user);
        }
        if let Some(n) = flight.slots_used.get_mut(&(company, priority)) {
            *n = n.saturating_sub(1);
        }
        let mut newly = HashSet::new();
        let outcome = match res {
            Ok((_, (entry, result))) => self.record(&entry, result, report, &mut newly),
            Err(e) => {
                // A bug, not the data: log it, and try the user again later
                // rather than in a tight loop.
                tracing::error!(company = %company, user = %user, "a sync worker failed: {e}");
                report.deferred += 1;
                self.defer(user, None, 0, &format!("internal error: {e}"))
            }
        };
        if let Err(e) = outcome {
            tracing::error!(company = %company, user = %user, "state database error: {e}");
        }
        self.progress.update(&Update {
            task: "apply",
            stage: "applying changes",
            done: report.done + report.parked + report.deferred,
            total: flight.total,
            unit: "changes",
        });
        // Hold the company's other work at once, before the next refresh.
        for c in newly {
            if let Ok(Some(q)) = self
                .state
                .quarantined()
                .map(|qs| qs.into_iter().find(|q| q.company == c))
            {
                flight.quarantined.insert(c, q);
            }
        }
        Some(company)
    }

    fn record(
        &self,
        entry: &PendingEntry,
        result: Result<Converged, StoreError>,
        report: &mut RunReport,
        quarantined: &mut HashSet<CompanyId>,
    ) -> Result<(), StoreError> {
        match result {
            Ok(Converged::Done) => {
                report.done += 1;
                self.state.complete(entry.user, entry.seq, true)?;
            }
            Ok(Converged::Parked(_)) => {
                report.parked += 1;
                self.state.complete(entry.user, entry.seq, false)?;
            }
            Ok(Converged::Deferred(reason)) => {
                report.deferred += 1;
                self.defer(entry.user, Some(entry.seq), entry.attempts, &reason)?;
            }
            Ok(Converged::Quarantine(reason)) => {
                report.deferred += 1;
                super::quarantine::enter(&self.state, entry.company, &reason, self.probes)?;
                // Not a failure of this user: no growing delay for it.
                self.state
                    .defer(entry.user, Some(entry.seq), &now_text(), &reason)?;
                quarantined.insert(entry.company);
            }
            Ok(Converged::Held(reason)) => {
                // Not due again until the brake is released (see resync::brake).
                report.deferred += 1;
                self.state.defer(
                    entry.user,
                    Some(entry.seq),
                    crate::store::resync::HELD_UNTIL,
                    &reason,
                )?;
            }
            Err(e) => {
                report.deferred += 1;
                tracing::error!(company = %entry.company, user = %entry.user, "state database error: {e}");
                self.defer(entry.user, Some(entry.seq), entry.attempts, &e.to_string())?;
            }
        }
        Ok(())
    }

    /// Keeps the change pending, to be tried again after a growing delay.
    fn defer(
        &self,
        user: PlummUserId,
        seq: Option<i64>,
        attempts: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let exp = 2u32.saturating_pow(attempts.clamp(0, 20) as u32 + 1);
        // The policy in force now: a reload's retry timings apply here too.
        let retry = self.converger.policy.borrow().retry;
        let base = retry.initial.saturating_mul(exp).min(retry.requeue_max);
        let delay = base.mul_f64(rand::thread_rng().gen_range(0.8..1.2));
        self.state.defer(user, seq, &after(delay), reason)
    }

    /// Sleep at most this long: until the next deferred change is due, and
    /// no more than a second (a safety net under the watcher's wake-ups).
    fn until_next_deferred(&self) -> Duration {
        let idle = Duration::from_secs(1);
        match self.state.next_deferred(&now_text()) {
            Ok(Some(next)) => until(&next).unwrap_or(idle).min(idle),
            _ => idle,
        }
    }

    async fn drain(&self, mut flight: InFlight, report: &mut RunReport) {
        if flight.tasks.is_empty() {
            return;
        }
        tracing::info!(
            in_flight = flight.tasks.len(),
            "draining: letting in-flight Graph calls finish"
        );
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        while !flight.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, flight.tasks.join_next_with_id()).await {
                Ok(Some(res)) => {
                    self.finish(res, &mut flight, report, false);
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        unfinished = flight.tasks.len(),
                        "drain timeout: unfinished changes stay pending for the next start"
                    );
                    flight.tasks.abort_all();
                    break;
                }
            }
        }
    }
}
