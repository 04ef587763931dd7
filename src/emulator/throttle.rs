//! Identity and access throttling, modelled on
//! https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits
//!
//! "Throttling is based on a token bucket algorithm, which works by adding
//! individual costs of requests": every limit is a bucket that refills
//! continuously (capacity per window). A request is refused when any bucket
//! lacks tokens for its cost; the first limit reached decides the scope.
//! The clock is passed in so the limiter can be tested without sleeping.

use std::collections::HashMap;
use std::time::Instant;

use super::config::{TenantSize, ThrottleConfig};

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
        Self {
            cfg,
            time_scale,
            buckets: HashMap::new(),
        }
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
            let rate = ch.capacity / ch.window * scale;
            let b = self.buckets.entry(ch.key.clone()).or_insert(Bucket {
                tokens: ch.capacity,
                last: now,
            });
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + elapsed * rate).min(ch.capacity);
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
                let wait = (owed - b.tokens) / rate;
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
            None => Decision::Allowed {
                limit_percentage: (max_share > 0.8).then(|| max_share.min(1.8)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tiny() -> ThrottleConfig {
        ThrottleConfig {
            app_tenant_ru_small: 4,
            app_tenant_ru_window_secs: 10.0,
            app_tenant_writes: 2,
            app_tenant_writes_window_secs: 100.0,
            ..ThrottleConfig::default()
        }
    }

    const READ: Cost = Cost {
        resource_units: 1,
        writes: 0,
    };
    const WRITE: Cost = Cost {
        resource_units: 1,
        writes: 1,
    };

    #[test]
    fn costs_follow_the_table() {
        assert_eq!(
            request_cost("GET", true, false, false, None).resource_units,
            2
        );
        assert_eq!(
            request_cost("GET", true, true, false, None).resource_units,
            1
        );
        assert_eq!(
            request_cost("GET", true, true, false, Some(5)).resource_units,
            1
        );
        assert_eq!(
            request_cost("GET", true, false, true, None).resource_units,
            3
        );
        assert_eq!(
            request_cost("GET", false, true, false, None).resource_units,
            1
        );
        assert_eq!(request_cost("PATCH", false, false, false, None), WRITE);
        assert_eq!(request_cost("GET", true, false, false, Some(999)).writes, 0);
    }

    #[test]
    fn ru_bucket_refuses_then_refills() {
        let t0 = Instant::now();
        let mut l = Limiter::new(tiny(), 1.0);
        for _ in 0..4 {
            assert!(matches!(
                l.check(t0, "app", "t", TenantSize::Small, READ),
                Decision::Allowed { .. }
            ));
        }
        let Decision::Throttled(th) = l.check(t0, "app", "t", TenantSize::Small, READ) else {
            panic!("expected throttling");
        };
        assert_eq!(th.scope, "Tenant_Application/ReadWrite/app/t");
        // The refused request is charged too, and the wait covers it.
        assert!(
            (th.retry_after_secs - 5.0).abs() < 1e-9,
            "{}",
            th.retry_after_secs
        );
        let early = t0 + Duration::from_millis(2500);
        assert!(matches!(
            l.check(early, "app", "t", TenantSize::Small, READ),
            Decision::Throttled(_)
        ));
        // Retrying early was charged as well: obeying its Retry-After fits.
        let Decision::Throttled(th) = l.check(early, "app", "t", TenantSize::Small, READ) else {
            panic!("expected throttling");
        };
        let later = early + Duration::from_secs_f64(th.retry_after_secs);
        assert!(matches!(
            l.check(later, "app", "t", TenantSize::Small, READ),
            Decision::Allowed { .. }
        ));
        // Another tenant has its own app+tenant bucket.
        assert!(matches!(
            l.check(t0, "app", "u", TenantSize::Small, READ),
            Decision::Allowed { .. }
        ));
    }

    #[test]
    fn write_bucket_and_percentage() {
        let t0 = Instant::now();
        let mut l = Limiter::new(tiny(), 1.0);
        let first = l.check(t0, "app", "t", TenantSize::Small, WRITE);
        assert_eq!(
            first,
            Decision::Allowed {
                limit_percentage: None
            }
        );
        let second = l.check(t0, "app", "t", TenantSize::Small, WRITE);
        assert_eq!(
            second,
            Decision::Allowed {
                limit_percentage: Some(1.0)
            }
        );
        let Decision::Throttled(th) = l.check(t0, "app", "t", TenantSize::Small, WRITE) else {
            panic!("expected throttling");
        };
        assert_eq!(th.scope, "Tenant_Application/Write/app/t");
        assert_eq!(th.information, "WriteLimitExceeded");
        // Two writes' worth: the refused one is charged as well.
        assert!((th.retry_after_secs - 100.0).abs() < 1e-9);
        // Reads still pass while writes are throttled.
        assert!(matches!(
            l.check(t0, "app", "t", TenantSize::Small, READ),
            Decision::Allowed { .. }
        ));
    }

    #[test]
    fn time_scale_shortens_waits() {
        let t0 = Instant::now();
        let mut l = Limiter::new(tiny(), 10.0);
        for _ in 0..4 {
            l.check(t0, "a", "t", TenantSize::Small, READ);
        }
        let Decision::Throttled(th) = l.check(t0, "a", "t", TenantSize::Small, READ) else {
            panic!("expected throttling");
        };
        assert!((th.retry_after_secs - 0.5).abs() < 1e-9);
    }

    #[test]
    fn tenant_and_app_scopes() {
        let cfg = ThrottleConfig {
            tenant_writes: 1,
            app_writes: 100,
            ..ThrottleConfig::default()
        };
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg, 1.0);
        assert!(matches!(
            l.check(t0, "a", "t", TenantSize::Large, WRITE),
            Decision::Allowed { .. }
        ));
        let Decision::Throttled(th) = l.check(t0, "b", "t", TenantSize::Large, WRITE) else {
            panic!("expected tenant-wide throttling across apps");
        };
        assert_eq!(th.scope, "Tenant/Write/b/t");
        let cfg = ThrottleConfig {
            app_writes: 1,
            ..ThrottleConfig::default()
        };
        let mut l = Limiter::new(cfg, 1.0);
        l.check(t0, "a", "t", TenantSize::Large, WRITE);
        let Decision::Throttled(th) = l.check(t0, "a", "u", TenantSize::Large, WRITE) else {
            panic!("expected app-wide throttling across tenants");
        };
        assert_eq!(th.scope, "Application/Write/a/u");
    }

    #[test]
    fn disabled_never_throttles() {
        let mut cfg = tiny();
        cfg.enabled = false;
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg, 1.0);
        for _ in 0..100 {
            assert!(matches!(
                l.check(t0, "a", "t", TenantSize::Small, WRITE),
                Decision::Allowed { .. }
            ));
        }
    }
}
