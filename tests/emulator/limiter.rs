//! The throttling limiter with an injected clock (no sleeping).

use std::time::{Duration, Instant};

use entra_daemon::emulator::{request_cost, Decision, Limiter, TenantSize, ThrottleConfig};

fn cfg() -> ThrottleConfig {
    ThrottleConfig {
        app_tenant_ru_small: 10,
        app_tenant_ru_medium: 20,
        app_tenant_writes: 3,
        app_tenant_writes_window_secs: 30.0,
        ..ThrottleConfig::default()
    }
}

#[test]
fn default_limits_match_the_published_table() {
    let c = ThrottleConfig::default();
    assert_eq!(
        (
            c.app_tenant_ru_small,
            c.app_tenant_ru_medium,
            c.app_tenant_ru_large
        ),
        (3_500, 5_000, 8_000)
    );
    assert_eq!(
        (
            c.app_tenant_ru_window_secs,
            c.app_tenant_writes,
            c.app_tenant_writes_window_secs
        ),
        (10.0, 3_000, 150.0)
    );
    assert_eq!((c.app_writes, c.app_writes_window_secs), (35_000, 300.0));
    assert_eq!(
        (c.tenant_writes, c.tenant_writes_window_secs),
        (18_000, 300.0)
    );
    assert_eq!(TenantSize::for_user_count(49), TenantSize::Small);
    assert_eq!(TenantSize::for_user_count(50), TenantSize::Medium);
    assert_eq!(TenantSize::for_user_count(501), TenantSize::Large);
}

#[test]
fn list_costs_two_and_size_changes_the_budget() {
    let t0 = Instant::now();
    let list = request_cost("GET", true, false, false, None);
    let mut small = Limiter::new(cfg(), 1.0);
    let mut medium = Limiter::new(cfg(), 1.0);
    let allowed = |l: &mut Limiter, size| {
        (0..100)
            .take_while(|_| {
                matches!(
                    l.check(t0, "app", "t", size, list),
                    Decision::Allowed { .. }
                )
            })
            .count()
    };
    assert_eq!(allowed(&mut small, TenantSize::Small), 5);
    assert_eq!(allowed(&mut medium, TenantSize::Medium), 10);
}

#[test]
fn writes_refill_over_the_window() {
    let t0 = Instant::now();
    let write = request_cost("POST", false, false, false, None);
    // Refused requests free, to see the bare refill.
    let mut c = cfg();
    c.charge_throttled_requests = false;
    let mut l = Limiter::new(c, 1.0);
    for _ in 0..3 {
        assert!(matches!(
            l.check(t0, "app", "t", TenantSize::Small, write),
            Decision::Allowed { .. }
        ));
    }
    let Decision::Throttled(t) = l.check(t0, "app", "t", TenantSize::Small, write) else {
        panic!("fourth write must be throttled");
    };
    assert!((t.retry_after_secs - 10.0).abs() < 1e-6, "{t:?}");
    assert!(matches!(
        l.check(
            t0 + Duration::from_secs(9),
            "app",
            "t",
            TenantSize::Small,
            write
        ),
        Decision::Throttled(_)
    ));
    assert!(matches!(
        l.check(
            t0 + Duration::from_secs(10),
            "app",
            "t",
            TenantSize::Small,
            write
        ),
        Decision::Allowed { .. }
    ));
}

#[test]
fn refused_requests_are_charged_and_retry_after_covers_them() {
    let t0 = Instant::now();
    let write = request_cost("PATCH", false, false, false, None);
    let mut l = Limiter::new(cfg(), 1.0);
    for _ in 0..3 {
        l.check(t0, "app", "t", TenantSize::Small, write);
    }
    let Decision::Throttled(t) = l.check(t0, "app", "t", TenantSize::Small, write) else {
        panic!("fourth write must be throttled");
    };
    // One write refills in 10 s; the refused one is owed as well.
    assert!((t.retry_after_secs - 20.0).abs() < 1e-6, "{t:?}");
    // Retrying early, as a client ignoring Retry-After does, is refused and
    // charged again: the wait grows.
    let Decision::Throttled(again) = l.check(
        t0 + Duration::from_secs(10),
        "app",
        "t",
        TenantSize::Small,
        write,
    ) else {
        panic!("an early retry must be throttled");
    };
    assert!(again.retry_after_secs > 10.0, "{again:?}");
    // Obeying the last Retry-After is enough.
    let at = t0 + Duration::from_secs(10) + Duration::from_secs_f64(again.retry_after_secs);
    assert!(matches!(
        l.check(at, "app", "t", TenantSize::Small, write),
        Decision::Allowed { .. }
    ));
}
