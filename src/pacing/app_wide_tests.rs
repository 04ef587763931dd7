//! Many tenants at once on a virtual clock, against a stand-in for Graph's
//! buckets: each tenant's app+tenant write bucket (3,000 per 150 s) and the
//! app's across tenants (35,000 per 5 minutes), which binds when ten
//! tenants sync at once. Answers come back 50 ms after the grant, with the
//! limit percentage of the most used bucket the request counted against.
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::*;
use crate::pacing::limits::{AppLimits, Cost, TenantLimits, TenantSize};

const WRITE: Cost = Cost {
    resource_units: 1.0,
    writes: 1.0,
};
const LATENCY: Duration = Duration::from_millis(50);
const TENANTS: usize = 10;

struct Graph {
    tenant_app: [f64; TENANTS],
    app: f64,
    last: Instant,
}

impl Graph {
    /// One write in tenant `t`: the percentage, or the 429's scope.
    fn write(&mut self, t: usize, now: Instant) -> Result<Option<LimitShare>, &'static str> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        for b in &mut self.tenant_app {
            *b = (*b + 20.0 * dt).min(3_000.0);
        }
        self.app = (self.app + 35_000.0 / 300.0 * dt).min(35_000.0);
        let refused = if self.tenant_app[t] < 1.0 {
            Some("Tenant_Application/Write/app/t")
        } else if self.app < 1.0 {
            Some("Application/Write/app/t")
        } else {
            None
        };
        self.tenant_app[t] -= 1.0;
        self.app -= 1.0;
        let used = (1.0 - self.tenant_app[t] / 3_000.0).max(1.0 - self.app / 35_000.0);
        match refused {
            Some(scope) => Err(scope),
            None => Ok((used > 0.8).then(|| {
                let reported = (used.min(1.8) * 100.0).floor() / 100.0;
                LimitShare {
                    reported,
                    at_most: reported + 0.01,
                }
            })),
        }
    }
}

/// Every tenant with a backlog that never runs dry, for `secs`: the
/// writes granted per second, and the 429s.
fn run(secs: u64) -> (Vec<u32>, u32) {
    let t0 = Instant::now();
    let mut graph = Graph {
        tenant_app: [3_000.0; TENANTS],
        app: 35_000.0,
        last: t0,
    };
    let mut c = Core::new(
        AppLimits::documented(),
        Box::new(|_| TenantLimits::documented(TenantSize::Large)),
        t0,
    );
    let end = t0 + Duration::from_secs(secs);
    let mut per_second = vec![0u32; secs as usize];
    let mut throttled = 0;
    let mut next_ticket = 0u64;
    let mut owner = std::collections::HashMap::new();
    type Answer = Result<Option<LimitShare>, &'static str>;
    let mut answers: VecDeque<(Instant, Instant, usize, Answer)> = VecDeque::new();
    let mut now = t0;
    while now < end {
        while answers.front().is_some_and(|a| a.0 <= now) {
            let Some((_, granted, t, answer)) = answers.pop_front() else {
                break;
            };
            match answer {
                Ok(share) => c.answered(&t, true, share, granted, now),
                Err(scope) => {
                    let th = Throttle::from_header(Some(scope), true);
                    c.throttled(&t, th, Duration::from_millis(100), granted, now);
                }
            }
            c.finished(&t, WRITE, granted, now);
        }
        // Each tenant keeps a batch's worth waiting.
        for t in 0..TENANTS {
            while owner.values().filter(|o| **o == t).count() < 20 {
                next_ticket += 1;
                owner.insert(next_ticket, t);
                c.submit(next_ticket, &t, Priority::Bulk, WRITE, now);
            }
        }
        let p = c.poll(now);
        for ticket in &p.granted {
            let Some(t) = owner.remove(ticket) else {
                continue;
            };
            let answer = graph.write(t, now);
            match answer {
                Ok(_) => per_second[(now - t0).as_secs() as usize] += 1,
                Err(_) => throttled += 1,
            }
            answers.push_back((now + LATENCY, now, t, answer));
        }
        let wake = p.next.unwrap_or(end);
        let next = answers.front().map_or(wake, |a| a.0.min(wake));
        now = next.max(now + Duration::from_micros(100));
    }
    (per_second, throttled)
}

#[test]
fn ten_tenants_at_once_run_at_the_app_wide_limit_without_a_429() {
    let (per_second, throttled) = run(600);
    let steady: u32 = per_second[300..600].iter().sum();
    let rate = f64::from(steady) / 300.0;
    let app = 35_000.0 / 300.0;
    assert!(
        rate >= 0.97 * app,
        "{rate} writes/s of {app}: {:?}",
        &per_second[..60]
    );
    assert_eq!(throttled, 0);
}
