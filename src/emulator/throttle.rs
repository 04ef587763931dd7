//! Identity and access throttling, modelled on
//! https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits
//!
//! "Throttling is based on a token bucket algorithm, which works by adding
//! individual costs of requests": every limit is a bucket that refills
//! continuously (capacity per window). A request is refused when any bucket
//! lacks tokens for its cost; the first limit reached decides the scope.
//! The clock is passed in so the limiter can be tested without sleeping.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::config::{TenantSize, ThrottleConfig};
use super::foreign_load::{Schedule, Step};

/// Resource-unit and write cost of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub resource_units: u32,
    pub writes: u32,
}

/// Cost table of the identity limits: GET `users` (a collection) costs 2,
/// any other identity GET 1, POST/PATCH/PUT/DELETE 1 RU + 1 write;
/// `$select` -1, `$expand` +1, `$top` below 20 -1; never below 1.
pub fn request_cost(
    method: &str,
    is_user_collection: bool,
    has_select: bool,
    has_expand: bool,
    top: Option<u32>,
) -> Cost {
    let is_get = method.eq_ignore_ascii_case("GET");
    let base = if is_get && is_user_collection { 2 } else { 1 };
    cost_from_base(method, base, has_select, has_expand, top)
}

/// The base resource units of a request on `segments` (the path after
/// `/v1.0`), from the base cost table of
/// https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits:
/// GET `users` 2, GET `groups/{id}/members` 3, GET `users/{id}/memberOf` 2
/// (costs of `me/` paths "also apply to equivalent requests starting with
/// `users/{id}`"); any path not listed, `groups` included, 1.
pub fn base_resource_units(method: &str, segments: &[String]) -> u32 {
    if !method.eq_ignore_ascii_case("GET") {
        return 1;
    }
    let is = |i: usize, name: &str| {
        segments
            .get(i)
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
    };
    match segments.len() {
        1 if is(0, "users") => 2,
        3 if is(0, "groups") && is(2, "members") => 3,
        3 if is(0, "users") && is(2, "memberOf") => 2,
        _ => 1,
    }
}

/// A request's cost from its base resource units and query options
/// (`$select` -1, `$expand` +1, `$top` below 20 -1, never below 1); every
/// POST, PATCH, PUT and DELETE is one write.
pub fn cost_from_base(
    method: &str,
    base: u32,
    has_select: bool,
    has_expand: bool,
    top: Option<u32>,
) -> Cost {
    let is_get = method.eq_ignore_ascii_case("GET");
    let mut ru = i64::from(base);
    if has_select {
        ru -= 1;
    }
    if has_expand {
        ru += 1;
    }
    if matches!(top, Some(t) if t < 20) {
        ru -= 1;
    }
    Cost {
        resource_units: ru.max(1) as u32,
        writes: if is_get { 0 } else { 1 },
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    AppTenantRu(String, String),
    AppTenantWrites(String, String),
    AppRu(String),
    AppWrites(String),
    TenantWrites(String),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// What was refused and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttled {
    /// Seconds (already divided by the time scale) until the request fits.
    pub retry_after_secs: f64,
    /// `x-ms-throttle-scope`, `<Scope>/<Limit>/<ApplicationId>/<TenantId>`.
    pub scope: String,
    /// `x-ms-throttle-information`.
    pub information: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allowed {
        /// Highest share of any limit used, when above 0.8
        /// (`x-ms-throttle-limit-percentage`).
        limit_percentage: Option<f64>,
    },
    Throttled(Throttled),
}

#[derive(Debug)]
pub struct Limiter {
    cfg: ThrottleConfig,
    time_scale: f64,
    buckets: HashMap<Key, Bucket>,
    /// Other apps' load on each tenant's write bucket, by tenant.
    foreign: HashMap<String, Schedule>,
    /// Buckets start full at this instant: a foreign load scheduled from
    /// the start has been draining them since, used or not.
    started: Instant,
}

struct Check {
    key: Key,
    capacity: f64,
    window: f64,
    cost: f64,
    scope: String,
    information: &'static str,
}

impl Limiter {
    pub fn new(cfg: ThrottleConfig, time_scale: f64) -> Self {
        Self::starting(cfg, time_scale, Instant::now())
    }

    /// A limiter whose configured foreign load counts from `started`.
    pub fn starting(cfg: ThrottleConfig, time_scale: f64, started: Instant) -> Self {
        let mut l = Self {
            cfg,
            time_scale,
            buckets: HashMap::new(),
            foreign: HashMap::new(),
            started,
        };
        for f in l.cfg.foreign_load.clone() {
            let from = started + Duration::from_secs_f64(f.at_secs / time_scale);
            l.set_foreign_load(from, &f.tenant, f.writes_per_sec, f.burst);
        }
        l
    }

    /// From `from` on, another app writes `writes_per_sec` (Microsoft time)
    /// in `tenant`, after spending `burst` writes at once.
    pub fn set_foreign_load(
        &mut self,
        from: Instant,
        tenant: &str,
        writes_per_sec: f64,
        burst: f64,
    ) {
        self.foreign
            .entry(tenant.to_string())
            .or_default()
            .push(Step {
                from,
                rate: writes_per_sec.max(0.0) * self.time_scale,
                burst: burst.max(0.0),
            });
    }

    pub fn set_enabled(&mut self, enabled: bool) {
        self.cfg.enabled = enabled;
    }

    fn checks(&self, app: &str, tenant: &str, size: TenantSize, cost: Cost) -> Vec<Check> {
        let c = &self.cfg;
        let ru_cap = match size {
            TenantSize::Small => c.app_tenant_ru_small,
            TenantSize::Medium => c.app_tenant_ru_medium,
            TenantSize::Large => c.app_tenant_ru_large,
        };
        let ru = f64::from(cost.resource_units);
        let mut v = vec![Check {
            key: Key::AppTenantRu(app.into(), tenant.into()),
            capacity: f64::from(ru_cap),
            window: c.app_tenant_ru_window_secs,
            cost: ru,
            scope: format!("Tenant_Application/ReadWrite/{app}/{tenant}"),
            information: "ResourceUnitLimitExceeded",
        }];
        if cost.writes > 0 {
            let w = f64::from(cost.writes);
            v.push(Check {
                key: Key::AppTenantWrites(app.into(), tenant.into()),
                capacity: f64::from(c.app_tenant_writes),
                window: c.app_tenant_writes_window_secs,
                cost: w,
                scope: format!("Tenant_Application/Write/{app}/{tenant}"),
                information: "WriteLimitExceeded",
            });
            v.push(Check {
                key: Key::TenantWrites(tenant.into()),
                capacity: f64::from(c.tenant_writes),
                window: c.tenant_writes_window_secs,
                cost: w,
                scope: format!("Tenant/Write/{app}/{tenant}"),
                information: "WriteLimitExceeded",
            });
            v.push(Check {
                key: Key::AppWrites(app.into()),
                capacity: f64::from(c.app_writes),
                window: c.app_writes_window_secs,
                cost: w,
                scope: format!("Application/Write/{app}/{tenant}"),
                information: "WriteLimitExceeded",
            });
        }
        v.push(Check {
            key: Key::AppRu(app.into()),
            capacity: f64::from(c.app_ru),
            window: c.app_ru_window_secs,
            cost: ru,
            scope: format!("Application/ReadWrite/{app}/{tenant}"),
            information: "ResourceUnitLimitExceeded",
        });
        v
    }

    /// Evaluates (and, when allowed, charges) one request.
    pub fn check(
        &mut self,
        now: Instant,
        app: &str,
        tenant: &str,
        size: TenantSize,
        cost: Cost,
    ) -> Decision {
        if !self.cfg.enabled {
            return Decision::Allowed {
                limit_percentage: None,
            };
        }
        let checks = self.checks(app, tenant, size, cost);
        let scale = self.time_scale;
        let charge_refused = self.cfg.charge_throttled_requests;
        let mut refused: Option<Throttled> = None;
        for ch in &checks {
            let refill = ch.capacity / ch.window * scale;
            let b = self.buckets.entry(ch.key.clone()).or_insert(Bucket {
                tokens: ch.capacity,
                last: self.started.min(now),
            });
            // What this app gets back per second: the refill, less what
            // other apps in the tenant take of a tenant-wide bucket.
            let (tokens, rate) = match (&ch.key, self.foreign.get_mut(tenant)) {
                (Key::TenantWrites(_), Some(s)) => (
                    s.advance(b.tokens, b.last, now, refill, ch.capacity),
                    refill - s.rate_at(now),
                ),
                _ => {
                    let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
                    ((b.tokens + elapsed * refill).min(ch.capacity), refill)
                }
            };
            b.tokens = tokens;
            b.last = now.max(b.last);
            if b.tokens < ch.cost {
                // A refused request that is charged as well must be paid
                // for before the retry fits, so Retry-After covers both:
                // a client that obeys it gets through at once.
                let owed = if charge_refused {
                    2.0 * ch.cost
                } else {
                    ch.cost
                };
                // Another app taking (nearly) the whole refill leaves
                // nothing certain to wait for: at most two windows, as
                // long as a debt of one window's worth takes to repay.
                let longest = 2.0 * ch.window / scale;
                let wait = if rate > 0.0 {
                    ((owed - b.tokens) / rate).min(longest)
                } else {
                    longest
                };
                match &mut refused {
                    None => {
                        refused = Some(Throttled {
                            retry_after_secs: wait,
                            scope: ch.scope.clone(),
                            information: ch.information,
                        })
                    }
                    Some(t) => t.retry_after_secs = t.retry_after_secs.max(wait),
                }
            }
        }
        let charge = refused.is_none() || charge_refused;
        let mut max_share: f64 = 0.0;
        if charge {
            for ch in &checks {
                if let Some(b) = self.buckets.get_mut(&ch.key) {
                    // A client that ignores Retry-After digs itself deeper,
                    // at most one window's worth.
                    b.tokens = (b.tokens - ch.cost).max(-ch.capacity);
                    max_share = max_share.max((ch.capacity - b.tokens) / ch.capacity);
                }
            }
        }
        match refused {
            Some(t) => Decision::Throttled(t),
            // "x-ms-throttle-limit-percentage - Returned only when the
            // application consumed more than 0.8 of its limit. The value
            // ranges from 0.8 to 1.8" (throttling-limits, identity and
            // access, "Regular responses"): the most used limit the request
            // counted against, other apps' share of a tenant-wide one included.
            None => Decision::Allowed {
                limit_percentage: (max_share > 0.8).then(|| max_share.min(1.8)),
            },
        }
    }
}

#[cfg(test)]
#[path = "throttle_tests.rs"]
mod tests;
