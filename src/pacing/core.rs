//! The scheduler's decisions, with the clock passed in (so it is tested
//! without sleeping): which waiting request may go now, and when the next
//! one can.
//!
//! Each tenant mirrors Graph's token buckets for this app, keeping a small
//! reserve so that network jitter between our grant and Graph's metering
//! does not turn into 429s, and learning each bucket's live ceiling from
//! what Graph answers (`bucket.rs`). Within a tenant, real-time requests always go
//! before bulk ones; across tenants, grants rotate one at a time, so the
//! app-wide budget is shared fairly and one tenant's backlog never holds
//! another tenant's change.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::bucket::Bucket;
use super::limits::{AppLimits, Cost, TenantLimits};
use super::window::Window;
use super::{LimitShare, Priority};

pub type Ticket = u64;

/// A bucket the mirror holds at least this used may be the one a limit
/// percentage describes (Graph reports from 0.8; the mirror may lag).
const NEAR_REPORTED: f64 = 0.6;

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
    /// The slow start, bounding the bulk writes on the wire.
    window: Window,
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

/// What a 429 says about which bucket is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    pub scope: Scope,
    /// The write budget (`Write`), or the resource units (`Read`, `ReadWrite`).
    pub write: bool,
    /// Whether Graph named the limit (`x-ms-throttle-scope`), or the scope
    /// is only assumed (an answer without the header: a pause, no lesson).
    pub named: bool,
}

impl Throttle {
    /// From `x-ms-throttle-scope`, `<Scope>/<Limit>/<ApplicationId>/<TenantId>`;
    /// without it (or unreadable), this app in this tenant, the request's
    /// own budget.
    pub fn from_header(header: Option<&str>, request_is_write: bool) -> Self {
        let parsed = header.and_then(|h| {
            let scope = Scope::parse(h)?;
            let write = match h.split('/').nth(1) {
                Some("Write") => true,
                Some("Read" | "ReadWrite") => false,
                _ => request_is_write,
            };
            Some(Self {
                scope,
                write,
                named: true,
            })
        });
        parsed.unwrap_or(Self {
            scope: Scope::TenantApp,
            write: request_is_write,
            named: false,
        })
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
    slow_start: bool,
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
            slow_start: true,
        }
    }

    /// With (the default) or without the slow-start window.
    pub fn slow_start(mut self, on: bool) -> Self {
        self.slow_start = on;
        self
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
                window: Window::new(l.writes.window_secs),
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
                let realtime = !t.queues[0].is_empty();
                if self.slow_start && !t.window.admits(cost.writes, realtime, now) {
                    // A finished write (a message) polls again.
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
                t.ru.charge(cost.resource_units, now);
                self.app_ru.charge(cost.resource_units, now);
                t.window.granted(cost.writes, now);
                if cost.writes > 0.0 {
                    t.writes.charge(cost.writes, now);
                    t.tenant_writes.charge(cost.writes, now);
                    self.app_writes.charge(cost.writes, now);
                }
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

    /// Graph answered 429 to a request granted at `granted_at`: stop
    /// sending in that scope for `retry_after`. When the answer named the
    /// limit, that bucket is empty and its live ceiling is re-measured.
    pub fn throttled(
        &mut self,
        key: &K,
        t: Throttle,
        retry_after: Duration,
        granted_at: Instant,
        now: Instant,
    ) {
        let until = now
            .checked_add(retry_after)
            .unwrap_or(now + Duration::from_secs(3_600));
        let (paused, bucket) = match t.scope {
            Scope::App => {
                let b = if t.write {
                    &mut self.app_writes
                } else {
                    &mut self.app_ru
                };
                (&mut self.app_paused_until, b)
            }
            Scope::TenantApp | Scope::Tenant => {
                let ts = self.tenant(key, now);
                let b = match (t.scope, t.write) {
                    (Scope::Tenant, _) => &mut ts.tenant_writes,
                    (_, true) => &mut ts.writes,
                    (_, false) => &mut ts.ru,
                };
                (&mut ts.paused_until, b)
            }
        };
        if t.named {
            bucket.throttled(granted_at, retry_after, now);
        } else {
            bucket.tokens = bucket.tokens.min(0.0);
        }
        *paused = Some(paused.map_or(until, |p| p.max(until)));
        if t.write {
            self.tenant(key, now).window.throttled(granted_at, now);
        }
    }

    /// A request granted at `granted_at` for `cost` is over, whatever
    /// became of it (an answer, an error, held back, abandoned): it is off
    /// the wire, unless it was counted off already as stale.
    pub fn finished(&mut self, key: &K, cost: Cost, granted_at: Instant, now: Instant) {
        if let Some(t) = self.tenants.get_mut(key) {
            t.window.finished(cost.writes, granted_at, now);
        }
    }

    /// A successful answer to a request granted at `granted_at`, with
    /// `x-ms-throttle-limit-percentage` when Graph sent it. Graph sends it
    /// only above 0.8, for the most used limit the request counted against
    /// (learn.microsoft.com/graph/throttling-limits, "Regular responses"):
    /// so every bucket the request touched holds at least what the most the
    /// value may mean leaves (0.2 without the header), and any of them may
    /// hold only what the value leaves.
    pub fn answered(
        &mut self,
        key: &K,
        write: bool,
        share: Option<LimitShare>,
        granted_at: Instant,
        now: Instant,
    ) {
        // Graph sends 0.8 to 1.8; anything else is not to be trusted whole.
        let (reported, at_most) = match share {
            Some(s) if s.reported.is_finite() && s.at_most.is_finite() => {
                (Some(s.reported.clamp(0.8, 1.8)), s.at_most.clamp(0.8, 1.9))
            }
            Some(_) => return,
            None => (None, 0.8),
        };
        self.tenant(key, now);
        let Some(t) = self.tenants.get_mut(key) else {
            return;
        };
        if write {
            t.window.answered();
        }
        let mut touched = vec![&mut t.ru, &mut self.app_ru];
        if write {
            touched.extend([&mut t.writes, &mut t.tenant_writes, &mut self.app_writes]);
        }
        for b in &mut touched {
            b.refill(now);
        }
        // The bucket the value most likely describes: the one the mirror
        // believes fullest in use. Only its level is bounded from above.
        let used_of = |b: &Bucket| 1.0 - b.tokens / b.capacity;
        let likeliest = touched
            .iter()
            .enumerate()
            .max_by(|a, b| used_of(a.1).total_cmp(&used_of(b.1)))
            .map(|(i, u)| (i, used_of(u) >= NEAR_REPORTED));
        for (i, b) in touched.into_iter().enumerate() {
            b.at_most_used(at_most, granted_at, now);
            b.measure_refill(b.rate.capacity * (1.0 - at_most), granted_at);
            let Some(used) = reported else { continue };
            // Which limit it was, Graph does not say. When the mirror
            // explains the value (its most used bucket is near the 0.8
            // Graph reports from), that one and any other near it hold at
            // most what the value leaves; one the mirror holds well below
            // is not it unless the mirror is wrong, which a 429 naming it
            // would teach. Capping it anyway would throw away what it
            // saved (an app+tenant bucket filled while another app held
            // the tenant's ceiling down). When the mirror does not explain
            // the value, each may be the one. Only tokens: whether a
            // ceiling is lower, the 429s tell.
            let near = used_of(b) >= NEAR_REPORTED;
            match likeliest {
                Some((l, _)) if l == i => {
                    b.may_be_used(used, granted_at, now);
                    b.anchor(b.rate.capacity * (1.0 - used), granted_at);
                }
                Some((_, true)) if !near => {}
                _ => b.may_be_used(used, granted_at, now),
            }
        }
    }

    /// A request admitted at `cost` never left (held back while its scope
    /// waited out a 429): it did not reach Graph, so it is no evidence of
    /// what a bucket gave. Its tokens stay spent: the 429 already set the
    /// mirror to what Graph holds, and the request pays again when it is
    /// admitted again, which at worst leaves a little unspent.
    pub fn unsent(&mut self, key: &K, cost: Cost, now: Instant) {
        let Some(t) = self.tenants.get_mut(key) else {
            return;
        };
        t.ru.not_sent(cost.resource_units, now);
        self.app_ru.not_sent(cost.resource_units, now);
        if cost.writes > 0.0 {
            for b in [&mut t.writes, &mut t.tenant_writes, &mut self.app_writes] {
                b.not_sent(cost.writes, now);
            }
        }
    }

    /// The live ceilings learnt for `key` as shares of the documented ones:
    /// resource units, writes, tenant-wide writes (for status and tests).
    pub fn shares(&self, key: &K) -> Option<[f64; 3]> {
        let t = self.tenants.get(key)?;
        Some([t.ru.share(), t.writes.share(), t.tenant_writes.share()])
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "adaptive_tests.rs"]
mod adaptive_tests;

#[cfg(test)]
#[path = "app_wide_tests.rs"]
mod app_wide_tests;
