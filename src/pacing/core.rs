//! The scheduler's decisions, with the clock passed in (so it is tested
//! without sleeping): which waiting request may go now, and when the next
//! one can.
//!
//! Each tenant mirrors Graph's token buckets for this app, keeping a small
//! reserve so that network jitter between our grant and Graph's metering
//! does not turn into 429s. Within a tenant, real-time requests always go
//! before bulk ones; across tenants, grants rotate one at a time, so the
//! app-wide budget is shared fairly and one tenant's backlog never holds
//! another tenant's change.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::limits::{AppLimits, Cost, Rate, TenantLimits};
use super::Priority;

/// Share of each bucket kept in reserve against jitter.
const RESERVE: f64 = 0.02;

#[derive(Debug, Clone)]
struct Bucket {
    rate: Rate,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Self {
        let capacity = rate.capacity * (1.0 - RESERVE);
        Self {
            rate,
            capacity,
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate.per_sec()).min(self.capacity);
        self.last = self.last.max(now);
    }

    /// Time until `need` tokens are there (zero if they are).
    fn wait_for(&self, need: f64) -> Duration {
        if self.tokens >= need {
            return Duration::ZERO;
        }
        // A day at most: a wild value (from a header) must not panic or
        // park a tenant forever; the next poll recomputes anyway.
        let secs = ((need - self.tokens) / self.rate.per_sec()).min(86_400.0);
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(86_400))
    }

    fn used_share(&self) -> f64 {
        1.0 - self.tokens / self.rate.capacity
    }
}

pub type Ticket = u64;

#[derive(Debug)]
struct Waiting {
    ticket: Ticket,
    cost: Cost,
}

#[derive(Debug)]
struct TenantState {
    ru: Bucket,
    writes: Bucket,
    tenant_writes: Bucket,
    paused_until: Option<Instant>,
    /// Index 0: real-time, 1: bulk.
    queues: [VecDeque<Waiting>; 2],
}

impl TenantState {
    fn head(&self) -> Option<&Waiting> {
        self.queues[0].front().or_else(|| self.queues[1].front())
    }

    fn pop_head(&mut self) -> Option<Waiting> {
        self.queues[0]
            .pop_front()
            .or_else(|| self.queues[1].pop_front())
    }
}

/// Which limit a 429 named (`x-ms-throttle-scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This app in this tenant.
    TenantApp,
    /// All apps in this tenant.
    Tenant,
    /// This app in all tenants.
    App,
}

impl Scope {
    /// `x-ms-throttle-scope: <Scope>/<Limit>/<ApplicationId>/<TenantId>`
    /// (learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits).
    pub fn parse(header: &str) -> Option<Self> {
        match header.split('/').next()? {
            "Tenant_Application" => Some(Scope::TenantApp),
            "Tenant" => Some(Scope::Tenant),
            "Application" => Some(Scope::App),
            _ => None,
        }
    }
}

pub struct Core<K> {
    tenants: HashMap<K, TenantState>,
    /// Round-robin order of tenants; `next` is where the next pass starts.
    order: Vec<K>,
    next: usize,
    app_ru: Bucket,
    app_writes: Bucket,
    app_paused_until: Option<Instant>,
    limits_for: Box<dyn Fn(&K) -> TenantLimits + Send>,
    where_is: HashMap<Ticket, K>,
}

/// What `poll` decided.
#[derive(Debug, Default, PartialEq)]
pub struct Poll {
    pub granted: Vec<Ticket>,
    /// When something waiting could be granted next, if anything waits.
    pub next: Option<Instant>,
}

impl<K: Clone + Eq + std::hash::Hash> Core<K> {
    pub fn new(
        app: AppLimits,
        limits_for: Box<dyn Fn(&K) -> TenantLimits + Send>,
        now: Instant,
    ) -> Self {
        Self {
            tenants: HashMap::new(),
            order: Vec::new(),
            next: 0,
            app_ru: Bucket::new(app.resource_units, now),
            app_writes: Bucket::new(app.writes, now),
            app_paused_until: None,
            limits_for,
            where_is: HashMap::new(),
        }
    }

    fn tenant(&mut self, key: &K, now: Instant) -> &mut TenantState {
        let (order, limits_for) = (&mut self.order, &self.limits_for);
        self.tenants.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            let l = limits_for(key);
            TenantState {
                ru: Bucket::new(l.resource_units, now),
                writes: Bucket::new(l.writes, now),
                tenant_writes: Bucket::new(l.tenant_writes, now),
                paused_until: None,
                queues: [VecDeque::new(), VecDeque::new()],
            }
        })
    }

    pub fn submit(
        &mut self,
        ticket: Ticket,
        key: &K,
        priority: Priority,
        cost: Cost,
        now: Instant,
    ) {
        let q = match priority {
            Priority::Realtime => 0,
            Priority::Bulk => 1,
        };
        self.tenant(key, now).queues[q].push_back(Waiting { ticket, cost });
        self.where_is.insert(ticket, key.clone());
    }

    /// The waiter went away (its task ended): forget it, charge nothing.
    pub fn cancel(&mut self, ticket: Ticket) {
        if let Some(key) = self.where_is.remove(&ticket) {
            if let Some(t) = self.tenants.get_mut(&key) {
                for q in &mut t.queues {
                    q.retain(|w| w.ticket != ticket);
                }
            }
        }
    }

    pub fn waiting(&self) -> usize {
        self.where_is.len()
    }

    /// Grants every request that fits now, one per tenant per round.
    pub fn poll(&mut self, now: Instant) -> Poll {
        self.app_ru.refill(now);
        self.app_writes.refill(now);
        let app_paused = self.app_paused_until.is_some_and(|t| t > now);
        let mut out = Poll::default();
        let n = self.order.len();
        let mut earliest: Option<Instant> = None;
        let mut note = |t: Instant| earliest = Some(earliest.map_or(t, |e: Instant| e.min(t)));
        loop {
            let mut progressed = false;
            let start = self.next;
            for i in 0..n {
                let idx = (start + i) % n;
                let key = self.order[idx].clone();
                let Some(t) = self.tenants.get_mut(&key) else {
                    continue;
                };
                t.ru.refill(now);
                t.writes.refill(now);
                t.tenant_writes.refill(now);
                let Some(head) = t.head() else { continue };
                let cost = head.cost;
                let paused = t
                    .paused_until
                    .filter(|p| *p > now)
                    .or(self.app_paused_until.filter(|_| app_paused));
                if let Some(p) = paused {
                    note(p);
                    continue;
                }
                let wait = [
                    t.ru.wait_for(cost.resource_units),
                    t.writes.wait_for(cost.writes),
                    t.tenant_writes.wait_for(cost.writes),
                    self.app_ru.wait_for(cost.resource_units),
                    self.app_writes.wait_for(cost.writes),
                ]
                .into_iter()
                .max()
                .unwrap_or_default();
                if wait > Duration::ZERO {
                    note(now + wait);
                    continue;
                }
                t.ru.tokens -= cost.resource_units;
                t.writes.tokens -= cost.writes;
                t.tenant_writes.tokens -= cost.writes;
                self.app_ru.tokens -= cost.resource_units;
                self.app_writes.tokens -= cost.writes;
                if let Some(w) = t.pop_head() {
                    self.where_is.remove(&w.ticket);
                    out.granted.push(w.ticket);
                }
                progressed = true;
                // The next pass starts after this tenant: fairness.
                self.next = (idx + 1) % n;
            }
            if !progressed {
                break;
            }
        }
        // Anyone still waiting behind a head that is ready gets a nudge too.
        if earliest.is_none() && self.where_is.is_empty() {
            out.next = None;
        } else {
            out.next = earliest.or(Some(now + Duration::from_millis(50)));
        }
        out
    }

    /// Graph answered 429: stop sending in that scope for `retry_after`,
    /// and assume the bucket it named is empty.
    pub fn throttled(
        &mut self,
        key: &K,
        scope: Scope,
        write: bool,
        retry_after: Duration,
        now: Instant,
    ) {
        let until = now
            .checked_add(retry_after)
            .unwrap_or(now + Duration::from_secs(3_600));
        match scope {
            Scope::App => {
                self.app_paused_until = Some(self.app_paused_until.map_or(until, |p| p.max(until)));
                let b = if write {
                    &mut self.app_writes
                } else {
                    &mut self.app_ru
                };
                b.tokens = b.tokens.min(0.0);
            }
            Scope::TenantApp | Scope::Tenant => {
                let t = self.tenant(key, now);
                t.paused_until = Some(t.paused_until.map_or(until, |p| p.max(until)));
                let b = match (scope, write) {
                    (Scope::Tenant, _) => &mut t.tenant_writes,
                    (_, true) => &mut t.writes,
                    (_, false) => &mut t.ru,
                };
                b.tokens = b.tokens.min(0.0);
            }
        }
    }

    /// Graph reported (`x-ms-throttle-limit-percentage`) that a limit is
    /// more used than our mirror thinks: other apps, or our own restart.
    /// Slow down before the wall by lowering our tokens to match.
    pub fn limit_percentage(&mut self, key: &K, share: f64, now: Instant) {
        // Graph sends 0.8 to 1.8; anything else is not to be trusted whole.
        if !share.is_finite() {
            return;
        }
        let share = share.clamp(0.0, 1.0);
        let t = self.tenant(key, now);
        for b in [&mut t.ru, &mut t.writes] {
            b.refill(now);
            if share > b.used_share() {
                b.tokens = b.tokens.min(b.rate.capacity * (1.0 - share));
            }
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
