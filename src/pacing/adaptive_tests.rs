//! The live ceiling, learnt on a virtual clock against a stand-in for
//! Graph's buckets: one app+tenant write bucket (3,000 per 150 s) and the
//! tenant's (18,000 per 5 minutes) shared with another app whose load the
//! test sets. Answers come back 50 ms after the grant.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::*;
use crate::pacing::limits::{AppLimits, Cost, TenantLimits, TenantSize};

const WRITE: Cost = Cost {
    resource_units: 1.0,
    writes: 1.0,
};
const LATENCY: Duration = Duration::from_millis(50);

/// Graph as the test sees it: two buckets, another app on the tenant's.
struct Graph {
    app_tenant: f64,
    tenant: f64,
    last: Instant,
    /// (from, writes per second) of the other app, in order.
    foreign: Vec<(Instant, f64)>,
    /// (when, writes) the other app spends at once, in order.
    bursts: VecDeque<(Instant, f64)>,
    /// How finely the limit percentage is reported (10: one decimal).
    precision: f64,
    /// From a grant to its answer.
    latency: Duration,
    /// Bulk requests kept waiting, as a busy dispatcher keeps them.
    backlog: usize,
    /// Retry-After in whole seconds, at least this many: a service that
    /// suggests a wait rather than computing it.
    padded_to: Option<f64>,
}

impl Graph {
    fn new(t0: Instant) -> Self {
        Self {
            app_tenant: 3_000.0,
            tenant: 18_000.0,
            last: t0,
            foreign: Vec::new(),
            bursts: VecDeque::new(),
            precision: 10.0,
            latency: LATENCY,
            backlog: 20,
            padded_to: None,
        }
    }

    fn foreign_at(&self, at: Instant) -> f64 {
        self.foreign
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .map_or(0.0, |f| f.1)
    }

    /// One write: the percentage header, or the 429's scope and
    /// Retry-After (until the refused write, charged too, is paid for).
    fn write(&mut self, now: Instant) -> Result<Option<LimitShare>, (&'static str, Duration)> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.app_tenant = (self.app_tenant + 20.0 * dt).min(3_000.0);
        let net = 60.0 - self.foreign_at(now);
        self.tenant = (self.tenant + net * dt).clamp(self.tenant.min(0.0), 18_000.0);
        while self.bursts.front().is_some_and(|b| b.0 <= now) {
            let spent = self.bursts.pop_front().map_or(0.0, |b| b.1);
            self.tenant = (self.tenant - spent).max(self.tenant.min(0.0));
        }
        let scope = if self.app_tenant < 1.0 {
            Some((
                "Tenant_Application/Write/app/t",
                (2.0 - self.app_tenant) / 20.0,
            ))
        } else if self.tenant < 1.0 {
            Some(("Tenant/Write/app/t", (2.0 - self.tenant) / net.max(0.1)))
        } else {
            None
        };
        // Refused requests are charged as well, as Graph does.
        self.app_tenant -= 1.0;
        self.tenant -= 1.0;
        let share = (1.0 - self.app_tenant / 3_000.0).max(1.0 - self.tenant / 18_000.0);
        match scope {
            Some((s, wait)) => {
                let wait = match self.padded_to {
                    Some(at_least) => wait.ceil().max(at_least),
                    None => wait,
                };
                Err((s, Duration::from_secs_f64(wait.min(300.0))))
            }
            // As the client reads the header: its value, cut to one
            // decimal (the coarsest a client should expect) or two (as
            // the emulator sends it), plus that precision.
            None => Ok((share > 0.8).then(|| {
                let reported = (share.min(1.8) * self.precision).floor() / self.precision;
                LimitShare {
                    reported,
                    at_most: reported + 1.0 / self.precision,
                }
            })),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    /// Successful writes per whole second of the run.
    per_second: Vec<u32>,
    throttled: u32,
    /// When each 429 was answered, in seconds into the run.
    throttled_at: Vec<f64>,
    requests: u32,
}

impl Tally {
    fn rate(&self, from: usize, to: usize) -> f64 {
        let n: u32 = self.per_second[from..to].iter().sum();
        f64::from(n) / (to - from) as f64
    }
}

/// The scheduler with Microsoft's documented limits for a large tenant.
fn documented(t0: Instant) -> Core<&'static str> {
    Core::new(
        AppLimits::documented(),
        Box::new(|_| TenantLimits::documented(TenantSize::Large)),
        t0,
    )
}

/// A bulk backlog that never runs dry, for `secs`; a 429 is tried again
/// (the scheduler holds it for its Retry-After).
fn run(graph: &mut Graph, t0: Instant, secs: u64) -> (Core<&'static str>, Tally) {
    let mut c = documented(t0);
    let end = t0 + Duration::from_secs(secs);
    let mut tally = Tally {
        per_second: vec![0; secs as usize],
        ..Tally::default()
    };
    let mut next_ticket = 0;
    let (latency, backlog) = (graph.latency, graph.backlog);
    let mut top_up = |c: &mut Core<&'static str>, now| {
        while c.waiting() < backlog {
            next_ticket += 1;
            c.submit(next_ticket, &"t", Priority::Bulk, WRITE, now);
        }
    };
    type Answer = Result<Option<LimitShare>, (&'static str, Duration)>;
    let mut answers: VecDeque<(Instant, Instant, Answer)> = VecDeque::new();
    let mut now = t0;
    while now < end {
        while answers.front().is_some_and(|a| a.0 <= now) {
            let Some((_, granted, answer)) = answers.pop_front() else {
                break;
            };
            match answer {
                Ok(share) => c.answered(&"t", true, share, granted, now),
                Err((scope, retry_after)) => {
                    let t = Throttle::from_header(Some(scope), true);
                    c.throttled(&"t", t, retry_after, granted, now);
                }
            }
            c.finished(&"t", WRITE, granted, now);
        }
        top_up(&mut c, now);
        let p = c.poll(now);
        for _ in &p.granted {
            tally.requests += 1;
            let answer = graph.write(now);
            match answer {
                Ok(_) => tally.per_second[(now - t0).as_secs() as usize] += 1,
                Err(_) => {
                    tally.throttled += 1;
                    tally.throttled_at.push((now - t0).as_secs_f64());
                }
            }
            answers.push_back((now + latency, now, answer));
        }
        let wake = p.next.unwrap_or(end);
        let next = answers.front().map_or(wake, |a| a.0.min(wake));
        now = next.max(now + Duration::from_micros(100));
    }
    (c, tally)
}

#[test]
fn at_the_documented_limits_the_ceiling_stays_documented_without_a_429() {
    let t0 = Instant::now();
    let (c, tally) = run(&mut Graph::new(t0), t0, 300);
    assert_eq!(tally.throttled, 0);
    let steady = tally.rate(60, 300);
    assert!(steady >= 0.97 * 20.0, "{steady} writes/s");
    assert_eq!(c.shares(&"t"), Some([1.0, 1.0, 1.0]));
}

#[test]
fn another_apps_load_lowers_the_tenant_ceiling_fast_and_only_that_one() {
    let t0 = Instant::now();
    let mut g = Graph::new(t0);
    // The other app spent the tenant's burst and writes 50 of its 60 a second.
    g.tenant = 0.0;
    g.foreign.push((t0, 50.0));
    let (c, tally) = run(&mut g, t0, 600);
    let steady = tally.rate(60, 600);
    assert!(steady >= 0.95 * 10.0, "{steady} writes/s of the 10 left");
    // The first batch went before anything was known; then about one
    // 429 a minute, probing.
    assert!(tally.throttled <= 20 + 10, "{} 429s", tally.throttled);
    let [ru, writes, tenant] = c.shares(&"t").expect("tenant");
    assert_eq!(
        (ru, writes),
        (1.0, 1.0),
        "the app's own limits are not blamed"
    );
    assert!(
        (0.15..0.2).contains(&tenant),
        "{tenant}: the tenant-wide ceiling learnt, 10 of 60 a second"
    );
}

#[test]
fn the_ceiling_drops_with_the_other_apps_load_and_comes_back_when_it_ends() {
    let t0 = Instant::now();
    let mut g = Graph::new(t0);
    // 100%, then another app leaves 30% (6 of 20 a second), then 100% again.
    g.foreign.push((t0 + Duration::from_secs(200), 54.0));
    g.foreign.push((t0 + Duration::from_secs(500), 0.0));
    let (_, tally) = run(&mut g, t0, 800);
    // The tenant bucket (18,000) carries the drop for a while; then 6 a second.
    let low = tally.rate(400, 500);
    assert!(low >= 0.95 * 6.0, "{low} writes/s of the 6 left");
    // Within a minute of the end, the documented 20 a second again.
    let back = tally.rate(560, 800);
    assert!(
        back >= 0.95 * 20.0,
        "{back} writes/s once the other app stops"
    );
    let share = f64::from(tally.throttled) / f64::from(tally.requests);
    assert!(
        share <= 0.005,
        "{} of {} answered 429",
        tally.throttled,
        tally.requests
    );
}

#[test]
fn evidence_of_headroom_never_lifts_a_ceiling_above_the_documented_one() {
    let t0 = Instant::now();
    let mut c = documented(t0);
    let mut now = t0;
    for i in 0..1_000 {
        c.submit(i, &"t", Priority::Bulk, WRITE, now);
        c.poll(now);
        c.answered(&"t", true, None, now, now);
        now += Duration::from_millis(10);
    }
    assert_eq!(c.shares(&"t"), Some([1.0, 1.0, 1.0]));
    // 3,000 per 150 s, less the reserve, and 20 a second: never more.
    for i in 0..5_000 {
        c.submit(10_000 + i, &"t", Priority::Bulk, WRITE, now);
    }
    c.answered(&"t", true, None, now, now);
    let at_once = c.poll(now).granted.len();
    assert!(at_once <= 2_940, "{at_once}");
}

#[test]
fn a_429_without_a_named_scope_pauses_but_teaches_nothing() {
    let t0 = Instant::now();
    let mut c = documented(t0);
    let unnamed = Throttle::from_header(None, true);
    c.throttled(&"t", unnamed, Duration::from_millis(200), t0, t0);
    assert_eq!(c.shares(&"t"), Some([1.0, 1.0, 1.0]));
    let named = Throttle::from_header(Some("Tenant/Write/app/t"), true);
    // Room again in 10 ms: more than the halving, which caps it.
    c.throttled(&"t", named, Duration::from_millis(10), t0, t0);
    assert_eq!(c.shares(&"t"), Some([1.0, 1.0, 0.5]), "a first 429 halves");
    // More 429s for requests sent before that one: the same episode.
    let earlier = t0 - Duration::from_millis(10);
    c.throttled(&"t", named, Duration::from_millis(10), earlier, t0);
    assert_eq!(c.shares(&"t"), Some([1.0, 1.0, 0.5]));
}

#[test]
fn a_first_429s_retry_after_says_how_little_the_bucket_gives() {
    let t0 = Instant::now();
    let mut c = documented(t0);
    let named = Throttle::from_header(Some("Tenant/Write/app/t"), true);
    // Room for the refused write (charged) and the next in 200 ms: 10 a
    // second of the documented 60.
    c.throttled(&"t", named, Duration::from_millis(200), t0, t0);
    let tenant = c.shares(&"t").map(|s| s[2]);
    assert!(
        tenant.is_some_and(|s| (s - 1.0 / 6.0).abs() < 1e-9),
        "{tenant:?}"
    );
    // Two more sent with it (the same episode), room for all four in
    // 400 ms: the same.
    let later = t0 + Duration::from_millis(1);
    c.throttled(&"t", named, Duration::from_millis(300), t0, later);
    c.throttled(&"t", named, Duration::from_millis(400), t0, later);
    let tenant = c.shares(&"t").map(|s| s[2]);
    assert!(
        tenant.is_some_and(|s| (s - 1.0 / 6.0).abs() < 1e-9),
        "{tenant:?}"
    );
}

#[test]
fn after_a_short_drop_the_pacer_spends_what_the_ceiling_saved_as_soon_as_the_other_app_stops() {
    let t0 = Instant::now();
    let mut g = Graph::new(t0);
    g.precision = 100.0;
    let at = |s: u64| t0 + Duration::from_secs(s);
    // The bench's drop: another app spends the tenant's burst and leaves
    // 6 of 20 a second for 75 s; the app+tenant bucket saves what this app
    // could not send (14 a second), spendable at the tenant's 60 a second.
    g.bursts.push_back((at(10), 18_000.0));
    g.foreign.push((at(10), 54.0));
    g.foreign.push((at(85), 0.0));
    let (c, tally) = run(&mut g, t0, 160);
    assert!(tally.rate(30, 85) >= 0.95 * 6.0, "{:?}", tally.per_second);
    // The limit percentage falls as soon as the other app stops: within
    // a dozen seconds the pacer is at the tenant's 60 a second (the old
    // slow probe still sent 6 a second half a minute later).
    let back = tally.rate(97, 111);
    assert!(
        back >= 0.95 * 60.0,
        "{back} writes/s: {:?}",
        tally.per_second
    );
    assert!(tally.rate(85, 111) >= 0.6 * 60.0, "{:?}", tally.per_second);
    // The 429s are those of the other app's burst, nothing more.
    assert!(tally.throttled <= 10, "{} 429s", tally.throttled);
    assert_eq!(c.shares(&"t"), Some([1.0, 1.0, 1.0]));
}

#[test]
fn another_app_emptying_the_tenant_costs_the_requests_in_flight_and_no_second_round() {
    let t0 = Instant::now();
    let mut g = Graph::new(t0);
    g.precision = 100.0;
    // The bench at ten times Microsoft's pace: 40 ms round trips are 400 ms
    // of Microsoft time, with 40 bulk requests in flight.
    g.latency = Duration::from_millis(400);
    g.backlog = 40;
    let at = |s: u64| t0 + Duration::from_secs(s);
    // While this app still spends its own burst, another app spends the
    // tenant's and leaves 6 of 20 a second.
    g.bursts.push_back((at(20), 18_000.0));
    g.foreign.push((at(20), 54.0));
    g.foreign.push((at(80), 0.0));
    let (_, tally) = run(&mut g, t0, 120);
    assert!(tally.rate(5, 20) > 60.0, "{:?}", tally.per_second);
    assert!(tally.rate(30, 80) >= 0.9 * 6.0, "{:?}", tally.per_second);
    // What was on the wire when the bucket emptied (40), and no second
    // round once the pause is over: resuming at half the documented rate
    // against the tenth left cost 20 more.
    let first: Vec<&f64> = tally.throttled_at.iter().filter(|t| **t < 21.0).collect();
    assert!(first.len() <= 40, "{:?}", tally.throttled_at);
    assert!(
        tally.throttled_at.len() - first.len() <= 5,
        "{:?}",
        tally.throttled_at
    );
}

#[test]
fn a_padded_retry_after_understates_the_ceiling_only_for_a_while() {
    let t0 = Instant::now();
    let mut g = Graph::new(t0);
    g.precision = 100.0;
    // "Retry-After: 5" whatever the bucket holds.
    g.padded_to = Some(5.0);
    let at = |s: u64| t0 + Duration::from_secs(s);
    g.bursts.push_back((at(10), 18_000.0));
    g.foreign.push((at(10), 54.0));
    let (_, tally) = run(&mut g, t0, 200);
    // It believes in far less than the 6 a second left at first, until the
    // limit percentage falls: within 40 s it is back at the rate left.
    assert!(tally.rate(50, 200) >= 0.95 * 6.0, "{:?}", tally.per_second);
    // What it did not send, the tenant's bucket kept: spent since.
    assert!(tally.rate(10, 200) >= 0.9 * 6.0, "{:?}", tally.per_second);
    assert_eq!(tally.throttled, 1, "{:?}", tally.throttled_at);
}

#[test]
fn into_a_tenant_another_app_has_emptied_the_first_wave_is_one_batch() {
    let t0 = Instant::now();
    let mut g = Graph::new(t0);
    g.precision = 100.0;
    g.latency = Duration::from_millis(400);
    // Eighty workers' worth waiting, and another app that has spent the
    // tenant's burst and leaves 10 of 20 a second, before this app starts.
    g.backlog = 80;
    g.bursts.push_back((t0, 18_000.0));
    g.foreign.push((t0, 50.0));
    let (_, tally) = run(&mut g, t0, 60);
    // One batch meets the wall, not every worker at once; its answers (a
    // 429, a limit percentage) set the mirror before more go. (Without the
    // slow start, all 80 did.)
    let first = tally.throttled_at.iter().filter(|t| **t < 1.0).count();
    assert_eq!(first, 20, "{:?}", tally.throttled_at);
    assert!(tally.throttled <= 30, "{:?}", tally.throttled_at);
    assert!(tally.rate(10, 60) >= 0.9 * 10.0, "{:?}", tally.per_second);
}
