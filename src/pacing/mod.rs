//! Proactive pacing at Graph's ceiling. Every Graph request asks the
//! scheduler for admission with its cost; a small actor task owns the pure
//! [`core::Core`] and grants requests as the budgets allow, so requests
//! rarely meet a 429. It also learns each limit's live ceiling from what
//! Graph says: `Retry-After` and `x-ms-throttle-scope` on a 429,
//! `x-ms-throttle-limit-percentage` above 80%, and the absence of both.
mod bucket;
pub mod core;
pub mod limits;
mod settings;
mod window;

pub use settings::{PacingSettings, TenantPacing};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use self::core::{Core, Throttle, Ticket};
use self::limits::{AppLimits, Cost, TenantLimits};
use crate::domain::TenantId;

/// Real-time changes from the outbox come before bulk work (initial sync,
/// resync) in the same tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Realtime,
    Bulk,
}

impl Priority {
    /// `x-ms-throttle-priority` (learn.microsoft.com/graph/throttling#throttling-priority).
    pub fn header_value(self) -> &'static str {
        match self {
            Priority::Realtime => "high",
            Priority::Bulk => "low",
        }
    }

    pub fn as_i64(self) -> i64 {
        match self {
            Priority::Realtime => 0,
            Priority::Bulk => 1,
        }
    }

    pub fn from_i64(v: i64) -> Self {
        if v == 0 {
            Priority::Realtime
        } else {
            Priority::Bulk
        }
    }
}

enum Msg {
    Admit {
        tenant: TenantId,
        priority: Priority,
        cost: Cost,
        reply: oneshot::Sender<Admitted>,
    },
    Throttled {
        tenant: TenantId,
        throttle: Throttle,
        retry_after: Duration,
        granted_at: Granted,
    },
    Answered {
        tenant: TenantId,
        write: bool,
        share: Option<LimitShare>,
        granted_at: Granted,
    },
    Unsent {
        tenant: TenantId,
        cost: Cost,
    },
    Finished {
        tenant: TenantId,
        cost: Cost,
        granted_at: Granted,
    },
}

/// A request the scheduler let go. However it ends (an answer, an error,
/// held back, or its task abandoned), dropping this tells the scheduler it
/// is off the wire, which the slow-start window counts on.
pub struct Admitted {
    granted: Granted,
    tenant: TenantId,
    cost: Cost,
    tx: mpsc::WeakUnboundedSender<Msg>,
}

impl Admitted {
    pub fn granted(&self) -> Granted {
        self.granted
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.upgrade() {
            let _ = tx.send(Msg::Finished {
                tenant: self.tenant.clone(),
                cost: self.cost,
                granted_at: self.granted,
            });
        }
    }
}

/// `x-ms-throttle-limit-percentage` as read: the value, and the most it
/// may mean given the precision it came in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitShare {
    pub reported: f64,
    pub at_most: f64,
}

/// When the scheduler let a request go: what Graph later says about its
/// limits describes them as they were then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted(std::time::Instant);

/// Cheap to clone; all clones share one scheduler.
#[derive(Clone)]
pub struct Pacer {
    tx: mpsc::UnboundedSender<Msg>,
    pauses: Arc<Mutex<Pauses>>,
}

/// Until when each tenant (or the whole app) waits out a 429's
/// `Retry-After`, as the handle heard it, for [`Pacer::paused`]. The
/// scheduler pauses the same scope from the same 429, a moment later, so
/// its pause never ends before this one.
#[derive(Default)]
struct Pauses {
    tenants: HashMap<TenantId, Instant>,
    app: Option<Instant>,
}

/// Limits per tenant: the documented ones by size, or the operator's override.
pub type LimitsFor = Box<dyn Fn(&TenantId) -> TenantLimits + Send>;

impl Pacer {
    /// Starts the scheduler task (on the current Tokio runtime).
    pub fn spawn(app: AppLimits, limits_for: LimitsFor, slow_start: bool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(
            (rx, tx.downgrade()),
            Core::new(app, limits_for, Instant::now().into_std()).slow_start(slow_start),
        ));
        Self {
            tx,
            pauses: Arc::default(),
        }
    }

    /// Whether `tenant` is waiting out a 429 now. A request admitted before
    /// Graph's 429 came back, and not yet on the wire, would only meet the
    /// same wall (and be charged for it, as Graph charges refused
    /// requests): the batcher asks this before a round trip leaves.
    pub fn paused(&self, tenant: &TenantId) -> bool {
        self.pause_end(tenant).is_some()
    }

    /// When `tenant`'s pause (its own or the app's) ends, if it is paused.
    fn pause_end(&self, tenant: &TenantId) -> Option<Instant> {
        let now = Instant::now();
        let p = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
        [p.app, p.tenants.get(tenant).copied()]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .max()
    }

    /// A request admitted at a cost of `cost` was not sent after all (held
    /// back by [`Pacer::paused`]): what it was granted is not counted as
    /// having reached Graph. It asks for admission again.
    pub fn unsent(&self, tenant: &TenantId, cost: Cost) {
        let _ = self.tx.send(Msg::Unsent {
            tenant: tenant.clone(),
            cost,
        });
    }

    /// Waits until the request may be sent. If the scheduler is gone (the
    /// runtime is shutting down), lets the request through once the pause
    /// Graph asked for is over: Graph's own 429s still protect it, and a
    /// request held back by [`Pacer::paused`] does not come straight back.
    pub async fn admit(&self, tenant: &TenantId, priority: Priority, cost: Cost) -> Admitted {
        let (reply, granted) = oneshot::channel();
        let msg = Msg::Admit {
            tenant: tenant.clone(),
            priority,
            cost,
            reply,
        };
        if self.tx.send(msg).is_ok() {
            if let Ok(admitted) = granted.await {
                return admitted;
            }
        }
        if let Some(end) = self.pause_end(tenant) {
            tokio::time::sleep_until(end).await;
        }
        Admitted {
            granted: Granted(Instant::now().into_std()),
            tenant: tenant.clone(),
            cost,
            tx: self.tx.downgrade(),
        }
    }

    /// Graph answered 429 (`scope`: its `x-ms-throttle-scope`).
    pub fn throttled(
        &self,
        tenant: &TenantId,
        scope: Option<&str>,
        write: bool,
        retry_after: Duration,
        granted_at: Granted,
    ) {
        let throttle = Throttle::from_header(scope, write);
        let now = Instant::now();
        // As the scheduler does: a wild value waits an hour, not forever.
        let until = now
            .checked_add(retry_after)
            .unwrap_or(now + Duration::from_secs(3_600));
        {
            let mut p = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
            if throttle.scope == core::Scope::App {
                p.app = Some(p.app.map_or(until, |t| t.max(until)));
            } else {
                p.tenants.retain(|_, t| *t > now);
                let t = p.tenants.entry(tenant.clone()).or_insert(until);
                *t = (*t).max(until);
            }
        }
        let _ = self.tx.send(Msg::Throttled {
            tenant: tenant.clone(),
            throttle,
            retry_after,
            granted_at,
        });
    }

    /// Graph answered anything but a 429, with its
    /// `x-ms-throttle-limit-percentage` if it sent one.
    pub fn answered(
        &self,
        tenant: &TenantId,
        write: bool,
        share: Option<LimitShare>,
        granted_at: Granted,
    ) {
        let _ = self.tx.send(Msg::Answered {
            tenant: tenant.clone(),
            write,
            share,
            granted_at,
        });
    }
}

async fn run(
    (mut rx, me): (mpsc::UnboundedReceiver<Msg>, mpsc::WeakUnboundedSender<Msg>),
    mut core: Core<TenantId>,
) {
    type Reply = (oneshot::Sender<Admitted>, TenantId, Cost);
    let mut waiting: HashMap<Ticket, Reply> = HashMap::new();
    let mut next_ticket: Ticket = 0;
    let mut wake: Option<Instant> = None;
    loop {
        let msg = match wake {
            Some(at) => tokio::select! {
                m = rx.recv() => match m { Some(m) => Some(m), None => return },
                _ = tokio::time::sleep_until(at) => None,
            },
            None => match rx.recv().await {
                Some(m) => Some(m),
                None => return,
            },
        };
        let now = Instant::now().into_std();
        match msg {
            Some(Msg::Admit {
                tenant,
                priority,
                cost,
                reply,
            }) => {
                next_ticket += 1;
                core.submit(next_ticket, &tenant, priority, cost, now);
                waiting.insert(next_ticket, (reply, tenant, cost));
            }
            Some(Msg::Throttled {
                tenant,
                throttle,
                retry_after,
                granted_at,
            }) => core.throttled(&tenant, throttle, retry_after, granted_at.0, now),
            Some(Msg::Answered {
                tenant,
                write,
                share,
                granted_at,
            }) => core.answered(&tenant, write, share, granted_at.0, now),
            Some(Msg::Unsent { tenant, cost }) => core.unsent(&tenant, cost, now),
            Some(Msg::Finished {
                tenant,
                cost,
                granted_at,
            }) => core.finished(&tenant, cost, granted_at.0, now),
            None => {}
        }
        // Waiters whose request was abandoned are dropped uncharged.
        waiting.retain(|ticket, (tx, _, _)| {
            let alive = !tx.is_closed();
            if !alive {
                core.cancel(*ticket);
            }
            alive
        });
        let poll = core.poll(now);
        for ticket in poll.granted {
            if let Some((tx, tenant, cost)) = waiting.remove(&ticket) {
                // Refused, it is dropped here: finished at once.
                let _ = tx.send(Admitted {
                    granted: Granted(now),
                    tenant,
                    cost,
                    tx: me.clone(),
                });
            }
        }
        wake = poll.next.map(Instant::from_std);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pacing::limits::TenantSize;

    /// With its scheduler gone (a runtime shutting down), the pacer still
    /// waits out the pause Graph asked for before it lets a request by: a
    /// request held back by `paused` would otherwise loop without rest.
    #[test]
    fn without_its_scheduler_the_pacer_still_waits_out_a_429() {
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let pacer = first.block_on(async {
            let limits: LimitsFor = Box::new(|_| TenantLimits::documented(TenantSize::Small));
            Pacer::spawn(AppLimits::documented(), limits, true)
        });
        drop(first);
        let then = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        then.block_on(async {
            let tenant = TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap();
            let cost = Cost {
                resource_units: 1.0,
                writes: 1.0,
            };
            let granted = pacer.admit(&tenant, Priority::Bulk, cost).await.granted();
            pacer.throttled(&tenant, None, true, Duration::from_secs(5), granted);
            assert!(pacer.paused(&tenant));
            let t0 = Instant::now();
            let _again = pacer.admit(&tenant, Priority::Bulk, cost).await;
            assert!(t0.elapsed() >= Duration::from_secs(5), "{:?}", t0.elapsed());
            assert!(!pacer.paused(&tenant));
        });
    }
}
