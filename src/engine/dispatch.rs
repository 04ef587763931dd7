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

use super::{Converged, Converger};
use crate::configuration::RetrySettings;
use crate::domain::{CompanyId, PlummUserId};
use crate::pacing::Priority;
use crate::store::{now_text, time_text, PendingEntry, StateDb, StoreError};

/// What a dispatcher run did, for `run --once` and the demo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunReport {
    pub done: u64,
    pub parked: u64,
    pub deferred: u64,
}

impl RunReport {
    pub fn failed(&self) -> bool {
        self.parked > 0 || self.deferred > 0
    }
}

pub struct Dispatcher {
    pub converger: Arc<Converger>,
    pub state: Arc<StateDb>,
    pub realtime_slots: usize,
    pub bulk_slots: usize,
    pub retry: RetrySettings,
    pub wake: Arc<Notify>,
    /// How long in-flight Graph calls may finish after a shutdown request.
    pub drain_timeout: Duration,
}

type Finished = (PendingEntry, Result<Converged, StoreError>);

#[derive(Default)]
struct InFlight {
    tasks: JoinSet<Finished>,
    by_task: HashMap<Id, (CompanyId, PlummUserId, Priority)>,
    busy: HashMap<CompanyId, HashSet<PlummUserId>>,
    slots_used: HashMap<(CompanyId, Priority), usize>,
    /// Companies with pending work, refreshed when woken (new changes) and
    /// on the idle tick, not on every completion: the query scans.
    companies: Vec<CompanyId>,
}

impl Dispatcher {
    /// Runs until `shutdown` turns true (then drains), or, with `once`,
    /// until nothing pending is due and nothing is in flight.
    pub async fn run(
        &self,
        mut shutdown: watch::Receiver<bool>,
        once: bool,
    ) -> Result<RunReport, StoreError> {
        let mut report = RunReport::default();
        let mut flight = InFlight::default();
        let mut refresh = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if refresh {
                flight.companies = self.state.companies_with_pending()?;
            }
            let started = self.fill(&mut flight)?;
            if once && started == 0 && flight.tasks.is_empty() {
                return Ok(report);
            }
            let wait = self.until_next_deferred()?;
            refresh = false;
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(res) = flight.tasks.join_next_with_id(), if !flight.tasks.is_empty() => {
                    self.finish(res, &mut flight, &mut report)?;
                }
                _ = self.wake.notified() => refresh = true,
                _ = tokio::time::sleep(wait) => refresh = true,
            }
        }
        self.drain(flight, &mut report).await?;
        Ok(report)
    }

    /// Starts workers for due users wherever a company has free slots,
    /// real-time first.
    fn fill(&self, flight: &mut InFlight) -> Result<usize, StoreError> {
        let now = now_text();
        let mut started = 0;
        for company in flight.companies.clone() {
            for (priority, slots) in [
                (Priority::Realtime, self.realtime_slots),
                (Priority::Bulk, self.bulk_slots),
            ] {
                let used = flight.slots_used.entry((company, priority)).or_default();
                let free = slots.saturating_sub(*used);
                if free == 0 {
                    continue;
                }
                let busy = flight.busy.entry(company).or_default();
                for entry in self.state.due(company, priority, &now, free, busy)? {
                    busy.insert(entry.user);
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
    ) -> Result<(), StoreError> {
        let id = match &res {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        if let Some((company, user, priority)) = flight.by_task.remove(&id) {
            if let Some(b) = flight.busy.get_mut(&company) {
                b.remove(&user);
            }
            if let Some(n) = flight.slots_used.get_mut(&(company, priority)) {
                *n = n.saturating_sub(1);
            }
        }
        let (entry, result) = match res {
            Ok((_, finished)) => finished,
            Err(e) => {
                // A panicked worker leaves its change pending; it is retried
                // once its slot frees (nothing lost), and the bug is logged.
                tracing::error!("a sync worker failed: {e}");
                return Ok(());
            }
        };
        match result {
            Ok(Converged::Done) => {
                report.done += 1;
                self.state.complete(entry.user, entry.seq)?;
                self.state.unpark(entry.user)?;
            }
            Ok(Converged::Parked(_)) => {
                report.parked += 1;
                self.state.complete(entry.user, entry.seq)?;
            }
            Ok(Converged::Deferred(reason)) => {
                report.deferred += 1;
                self.defer(&entry, &reason)?;
            }
            Err(e) => {
                report.deferred += 1;
                tracing::error!(company = %entry.company, user = %entry.user, "state database error: {e}");
                self.defer(&entry, &e.to_string())?;
            }
        }
        Ok(())
    }

    /// Keeps the change pending, to be tried again after a growing delay.
    fn defer(&self, entry: &PendingEntry, reason: &str) -> Result<(), StoreError> {
        let exp = 2u32.saturating_pow(entry.attempts.clamp(0, 20) as u32 + 1);
        let base = self
            .retry
            .initial
            .saturating_mul(exp)
            .min(self.retry.requeue_max);
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        let delay = base.mul_f64(jitter);
        let at = chrono::Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        self.state
            .defer(entry.user, entry.seq, &time_text(at), reason)
    }

    fn until_next_deferred(&self) -> Result<Duration, StoreError> {
        // With nothing deferred, wake up now and then anyway: cheap, and a
        // safety net under the watcher's notifications.
        let idle = Duration::from_secs(1);
        let Some(next) = self.state.next_deferred()? else {
            return Ok(idle);
        };
        let wait = chrono::DateTime::parse_from_rfc3339(&next)
            .ok()
            .and_then(|t| {
                (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                    .to_std()
                    .ok()
            })
            .unwrap_or(Duration::ZERO);
        Ok(wait.min(idle))
    }

    async fn drain(&self, mut flight: InFlight, report: &mut RunReport) -> Result<(), StoreError> {
        if flight.tasks.is_empty() {
            return Ok(());
        }
        tracing::info!(
            in_flight = flight.tasks.len(),
            "draining: letting in-flight Graph calls finish"
        );
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        while !flight.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, flight.tasks.join_next_with_id()).await {
                Ok(Some(res)) => self.finish(res, &mut flight, report)?,
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
        Ok(())
    }
}
