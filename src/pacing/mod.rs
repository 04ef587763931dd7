//! Proactive pacing at Graph's ceiling. Every Graph request asks the
//! scheduler for admission with its cost; a small actor task owns the pure
//! [`core::Core`] and grants requests as the budgets allow, so requests
//! rarely meet a 429. It also learns from what Graph says: `Retry-After`
//! and `x-ms-throttle-scope` on a 429, `x-ms-throttle-limit-percentage`
//! above 80%.
pub mod core;
pub mod limits;
mod settings;

pub use settings::{PacingSettings, TenantPacing};

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use self::core::{Core, Scope, Ticket};
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
        reply: oneshot::Sender<()>,
    },
    Throttled {
        tenant: TenantId,
        scope: Scope,
        write: bool,
        retry_after: Duration,
    },
    Percentage {
        tenant: TenantId,
        share: f64,
    },
}

/// Cheap to clone; all clones share one scheduler.
#[derive(Clone)]
pub struct Pacer {
    tx: mpsc::UnboundedSender<Msg>,
}

/// Limits per tenant: the documented ones by size, or the operator's override.
pub type LimitsFor = Box<dyn Fn(&TenantId) -> TenantLimits + Send>;

impl Pacer {
    /// Starts the scheduler task (on the current Tokio runtime).
    pub fn spawn(app: AppLimits, limits_for: LimitsFor) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(
            rx,
            Core::new(app, limits_for, Instant::now().into_std()),
        ));
        Self { tx }
    }

    /// Waits until the request may be sent. If the scheduler is gone (the
    /// runtime is shutting down), lets the request through: Graph's own
    /// 429s still protect it.
    pub async fn admit(&self, tenant: &TenantId, priority: Priority, cost: Cost) {
        let (reply, granted) = oneshot::channel();
        let msg = Msg::Admit {
            tenant: tenant.clone(),
            priority,
            cost,
            reply,
        };
        if self.tx.send(msg).is_ok() {
            let _ = granted.await;
        }
    }

    pub fn throttled(
        &self,
        tenant: &TenantId,
        scope: Option<&str>,
        write: bool,
        retry_after: Duration,
    ) {
        let scope = scope.and_then(Scope::parse).unwrap_or(Scope::TenantApp);
        let _ = self.tx.send(Msg::Throttled {
            tenant: tenant.clone(),
            scope,
            write,
            retry_after,
        });
    }

    pub fn limit_percentage(&self, tenant: &TenantId, share: f64) {
        let _ = self.tx.send(Msg::Percentage {
            tenant: tenant.clone(),
            share,
        });
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Msg>, mut core: Core<TenantId>) {
    let mut waiting: HashMap<Ticket, oneshot::Sender<()>> = HashMap::new();
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
                waiting.insert(next_ticket, reply);
            }
            Some(Msg::Throttled {
                tenant,
                scope,
                write,
                retry_after,
            }) => core.throttled(&tenant, scope, write, retry_after, now),
            Some(Msg::Percentage { tenant, share }) => core.limit_percentage(&tenant, share, now),
            None => {}
        }
        // Waiters whose request was abandoned are dropped uncharged.
        waiting.retain(|ticket, tx| {
            let alive = !tx.is_closed();
            if !alive {
                core.cancel(*ticket);
            }
            alive
        });
        let poll = core.poll(now);
        for ticket in poll.granted {
            if let Some(tx) = waiting.remove(&ticket) {
                let _ = tx.send(());
            }
        }
        wake = poll.next.map(Instant::from_std);
    }
}
