//! The scheduler on a virtual clock: budgets, priorities, fairness, pauses.
use std::time::{Duration, Instant};

use super::*;
use crate::pacing::limits::{AppLimits, Cost, Rate, TenantLimits, TenantSize};
use crate::pacing::LimitShare;

const WRITE: Cost = Cost {
    resource_units: 1.0,
    writes: 1.0,
};

/// The mirror's own behaviour: no answers come back in these tests, so
/// the slow-start window (tested on its own below) is off.
fn core(now: Instant) -> Core<&'static str> {
    Core::new(
        AppLimits::documented(),
        Box::new(|_| TenantLimits::documented(TenantSize::Large)),
        now,
    )
    .slow_start(false)
}

/// Grants over `secs` of virtual time, polling as an actor would: at each
/// `next` the core asks for.
fn run(c: &mut Core<&'static str>, start: Instant, secs: f64) -> Vec<(Ticket, Duration)> {
    let end = start + Duration::from_secs_f64(secs);
    let mut now = start;
    let mut out = Vec::new();
    loop {
        let p = c.poll(now);
        out.extend(p.granted.into_iter().map(|t| (t, now - start)));
        match p.next {
            Some(n) if n <= end => now = n.max(now + Duration::from_micros(1)),
            _ => return out,
        }
    }
}

#[test]
fn writes_burst_to_the_bucket_then_pace_at_twenty_per_second() {
    let t0 = Instant::now();
    let mut c = core(t0);
    for i in 0..3_500 {
        c.submit(i, &"contoso", Priority::Bulk, WRITE, t0);
    }
    let grants = run(&mut c, t0, 30.0);
    let at_once = grants.iter().filter(|(_, at)| at.is_zero()).count();
    // 3,000 per 150 s, less the 2% reserve.
    assert_eq!(at_once, 2_940);
    // The rest at 20 per second: 560 more take 28 s.
    assert_eq!(grants.len(), 3_500);
    let last = grants.last().unwrap().1.as_secs_f64();
    assert!((27.9..28.1).contains(&last), "{last}");
}

#[test]
fn real_time_requests_overtake_a_bulk_backlog_in_the_same_tenant() {
    let t0 = Instant::now();
    let mut c = core(t0);
    for i in 0..3_000 {
        c.submit(i, &"contoso", Priority::Bulk, WRITE, t0);
    }
    c.poll(t0); // the bucket is now empty, 60 bulk requests wait
    c.submit(9_999, &"contoso", Priority::Realtime, WRITE, t0);
    let grants = run(&mut c, t0, 1.0);
    assert_eq!(
        grants.first().map(|g| g.0),
        Some(9_999),
        "next token goes to real time"
    );
    assert!(
        grants[0].1 <= Duration::from_millis(51),
        "{:?}",
        grants[0].1
    );
}

#[test]
fn one_tenants_backlog_never_delays_another_tenant() {
    let t0 = Instant::now();
    let mut c = core(t0);
    for i in 0..5_000 {
        c.submit(i, &"busy", Priority::Bulk, WRITE, t0);
    }
    c.poll(t0);
    c.submit(7, &"quiet", Priority::Realtime, WRITE, t0);
    let p = c.poll(t0);
    assert_eq!(p.granted, vec![7]);
}

#[test]
fn the_app_wide_budget_is_shared_fairly_between_tenants() {
    let t0 = Instant::now();
    let mut c = Core::new(
        AppLimits {
            resource_units: Rate::new(150_000.0, 20.0),
            writes: Rate::new(100.0, 10.0),
        },
        Box::new(|_| TenantLimits::documented(TenantSize::Large)),
        t0,
    )
    .slow_start(false);
    for i in 0..1_000 {
        c.submit(i, &"a", Priority::Bulk, WRITE, t0);
        c.submit(10_000 + i, &"b", Priority::Bulk, WRITE, t0);
        c.submit(20_000 + i, &"c", Priority::Bulk, WRITE, t0);
    }
    let grants = run(&mut c, t0, 10.0);
    let share = |lo: u64| {
        grants
            .iter()
            .filter(|(t, _)| (lo..lo + 1_000).contains(t))
            .count() as i64
    };
    let (a, b, d) = (share(0), share(10_000), share(20_000));
    assert!((a - b).abs() <= 1 && (b - d).abs() <= 1, "{a} {b} {d}");
    // 98 at once, then 10 per second for 10 s.
    assert!((196..=200).contains(&(a + b + d)), "{}", a + b + d);
}

#[test]
fn a_429_pauses_its_scope_for_retry_after_and_no_other() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let named = Throttle::from_header(Some("Tenant_Application/Write/app/contoso"), true);
    c.throttled(&"contoso", named, Duration::from_millis(300), t0, t0);
    c.submit(1, &"contoso", Priority::Realtime, WRITE, t0);
    c.submit(2, &"fabrikam", Priority::Realtime, WRITE, t0);
    let p = c.poll(t0);
    assert_eq!(p.granted, vec![2]);
    assert_eq!(p.next, Some(t0 + Duration::from_millis(300)));
    let p = c.poll(t0 + Duration::from_millis(300));
    assert_eq!(p.granted, vec![1]);

    let app = Throttle::from_header(Some("Application/Write/app/contoso"), true);
    c.throttled(&"contoso", app, Duration::from_secs(1), t0, t0);
    c.submit(3, &"fabrikam", Priority::Realtime, WRITE, t0);
    assert!(
        c.poll(t0 + Duration::from_millis(500)).granted.is_empty(),
        "app-wide pause holds everyone"
    );
}

#[test]
fn a_high_limit_percentage_slows_before_the_wall() {
    let t0 = Instant::now();
    let mut c = core(t0);
    // Graph says 90% of a limit is used (another app is busy in the tenant).
    let share = LimitShare {
        reported: 0.9,
        at_most: 0.9,
    };
    c.answered(&"contoso", true, Some(share), t0, t0);
    for i in 0..1_000 {
        c.submit(i, &"contoso", Priority::Bulk, WRITE, t0);
    }
    let at_once = c.poll(t0).granted.len();
    assert_eq!(at_once, 300, "only the 10% left of 3,000 writes");
}

#[test]
fn cancelled_waiters_are_never_granted_or_charged() {
    let t0 = Instant::now();
    let mut c = core(t0);
    c.submit(1, &"contoso", Priority::Bulk, WRITE, t0);
    c.cancel(1);
    assert_eq!(c.poll(t0), Poll::default());
    assert_eq!(c.waiting(), 0);
}

#[test]
fn throttle_scope_header_names_the_limit() {
    assert_eq!(
        Scope::parse("Tenant_Application/Write/app/tenant"),
        Some(Scope::TenantApp)
    );
    assert_eq!(
        Scope::parse("Application/ReadWrite/app/tenant"),
        Some(Scope::App)
    );
    assert_eq!(Scope::parse("Tenant/Write/app/tenant"), Some(Scope::Tenant));
    assert_eq!(Scope::parse("nonsense"), None);
}

/// Bulk writes waiting in contoso, tickets `tickets`.
fn bulk_backlog(c: &mut Core<&'static str>, tickets: std::ops::Range<u64>, now: Instant) {
    for i in tickets {
        c.submit(i, &"contoso", Priority::Bulk, WRITE, now);
    }
}

/// Answers every grant of `p`, made at `granted`, (clean, no limit
/// percentage) and takes it off the wire.
fn answer_all(c: &mut Core<&'static str>, p: &Poll, granted: Instant, now: Instant) {
    for _ in &p.granted {
        c.answered(&"contoso", true, None, granted, now);
        c.finished(&"contoso", WRITE, granted, now);
    }
}

#[test]
fn bulk_writes_start_at_one_batch_and_double_with_each_clean_round_trip() {
    let t0 = Instant::now();
    let mut c = core(t0).slow_start(true);
    bulk_backlog(&mut c, 0..1_000, t0);
    let mut waves = Vec::new();
    let mut now = t0;
    for _ in 0..4 {
        let p = c.poll(now);
        waves.push(p.granted.len());
        // Nothing more goes until answers come back.
        assert!(c.poll(now).granted.is_empty());
        let granted = now;
        now += Duration::from_millis(50);
        answer_all(&mut c, &p, granted, now);
    }
    assert_eq!(waves, vec![20, 40, 80, 160]);
}

#[test]
fn real_time_is_never_held_by_the_window_but_counts_in_it() {
    let t0 = Instant::now();
    let mut c = core(t0).slow_start(true);
    bulk_backlog(&mut c, 0..1_000, t0);
    let first = c.poll(t0);
    assert_eq!(first.granted.len(), 20);
    c.submit(5_000, &"contoso", Priority::Realtime, WRITE, t0);
    assert_eq!(c.poll(t0).granted, vec![5_000], "a new hire does not wait");
    // Twenty clean answers: a window of 40, one of them the new hire's.
    let t1 = t0 + Duration::from_millis(50);
    answer_all(&mut c, &first, t0, t1);
    assert_eq!(c.poll(t1).granted.len(), 39);
}

#[test]
fn a_tenant_idle_for_a_second_of_microsoft_time_starts_slow_again() {
    let t0 = Instant::now();
    let mut c = core(t0).slow_start(true);
    bulk_backlog(&mut c, 0..40, t0);
    let p = c.poll(t0);
    answer_all(&mut c, &p, t0, t0);
    let p = c.poll(t0);
    assert_eq!(p.granted.len(), 20, "the window grew to 40");
    answer_all(&mut c, &p, t0, t0);
    bulk_backlog(&mut c, 100..200, t0);
    let idle = t0 + Duration::from_secs(1);
    assert_eq!(
        c.poll(idle).granted.len(),
        20,
        "one batch after a quiet second"
    );
}

#[test]
fn a_round_trip_that_hangs_holds_the_window_only_until_it_is_stale() {
    let t0 = Instant::now();
    let mut c = core(t0).slow_start(true);
    bulk_backlog(&mut c, 0..100, t0);
    // The first batch never answers (a connection that hangs until its
    // timeout): the window is full of it.
    assert_eq!(c.poll(t0).granted.len(), 20);
    assert!(c.poll(t0 + Duration::from_secs(9)).granted.is_empty());
    // After 10 s of Microsoft time it no longer counts, and its late end
    // does not count anything else off.
    let later = t0 + Duration::from_secs(10);
    let p = c.poll(later);
    assert_eq!(p.granted.len(), 20);
    for _ in 0..20 {
        c.finished(&"contoso", WRITE, t0, later);
    }
    assert!(
        c.poll(later).granted.is_empty(),
        "the second batch is on the wire"
    );
}
