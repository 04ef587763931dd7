//! The limiter on a virtual clock: costs, buckets, scopes, charged refusals.
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

#[test]
fn another_apps_load_leaves_this_app_the_rest_of_the_tenant_budget() {
    let t0 = Instant::now();
    let cfg = ThrottleConfig {
        tenant_writes: 60,
        tenant_writes_window_secs: 1.0,
        ..ThrottleConfig::default()
    };
    let mut l = Limiter::starting(cfg, 1.0, t0);
    // Another app spends the tenant's burst, then writes 50 of its 60 a second.
    l.set_foreign_load(t0, "t", 50.0, 1_000.0);
    let Decision::Throttled(th) = l.check(t0, "a", "t", TenantSize::Large, WRITE) else {
        panic!("the burst left nothing");
    };
    assert_eq!(th.scope, "Tenant/Write/a/t");
    // 10 a second are left: two writes owed (the refused one is charged).
    assert!((th.retry_after_secs - 0.2).abs() < 1e-9, "{th:?}");
    let later = t0 + Duration::from_secs_f64(th.retry_after_secs);
    let Decision::Allowed { limit_percentage } = l.check(later, "a", "t", TenantSize::Large, WRITE)
    else {
        panic!("obeying Retry-After fits");
    };
    assert!(
        limit_percentage.is_some_and(|p| p >= 0.99),
        "{limit_percentage:?}"
    );
    // Another tenant is untouched.
    assert_eq!(
        l.check(t0, "a", "u", TenantSize::Large, WRITE),
        Decision::Allowed {
            limit_percentage: None
        }
    );
}

#[test]
fn a_scheduled_foreign_load_counts_from_the_start() {
    let t0 = Instant::now();
    let cfg = ThrottleConfig {
        tenant_writes: 60,
        tenant_writes_window_secs: 1.0,
        foreign_load: vec![crate::emulator::ForeignLoad {
            tenant: "t".into(),
            at_secs: 20.0,
            writes_per_sec: 60.0,
            burst: 60.0,
        }],
        ..ThrottleConfig::default()
    };
    // Time scale 10: the step starts 2 s in, and takes the whole refill.
    let mut l = Limiter::starting(cfg, 10.0, t0);
    let before = t0 + Duration::from_secs(1);
    assert!(matches!(
        l.check(before, "a", "t", TenantSize::Large, WRITE),
        Decision::Allowed { .. }
    ));
    let after = t0 + Duration::from_secs(3);
    let Decision::Throttled(th) = l.check(after, "a", "t", TenantSize::Large, WRITE) else {
        panic!("nothing is left once the other app takes everything");
    };
    // Nothing frees up: two windows, on the time scale.
    assert!((th.retry_after_secs - 0.2).abs() < 1e-9, "{th:?}");
}
