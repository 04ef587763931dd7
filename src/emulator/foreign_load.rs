//! Other apps in a tenant. Graph's per-tenant write limit (18,000 writes
//! per 5 minutes) counts "all requests for the current tenant, regardless
//! of the application" (x-ms-throttle-scope `Tenant`,
//! https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits),
//! so a customer whose other tools write heavily leaves this app less than
//! its own app+tenant limit. The emulator models that other app as a load
//! on the tenant's write bucket: a burst it spends at once when it starts
//! (a bulk job) and a steady rate, changing on a schedule. Pure: the clock
//! is passed in.
use std::time::Instant;

use serde::Deserialize;

/// One step of another app's load on a tenant, in Microsoft time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignLoad {
    pub tenant: String,
    /// When the step starts, in seconds of Microsoft time after the
    /// emulator started (divided by `time_scale` at run time).
    #[serde(default)]
    pub at_secs: f64,
    /// Writes per second the other app sends from then on (Microsoft time).
    pub writes_per_sec: f64,
    /// Writes the other app spends at once when the step starts, as far as
    /// the tenant's bucket holds them.
    #[serde(default)]
    pub burst: f64,
}

impl ForeignLoad {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if ok(self.at_secs) && ok(self.writes_per_sec) && ok(self.burst) {
            Ok(())
        } else {
            Err(format!(
                "throttling.foreign_load for {}: at_secs, writes_per_sec and burst must be >= 0",
                self.tenant
            ))
        }
    }
}

/// A step as the limiter keeps it: rates already on the emulator's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Step {
    pub from: Instant,
    /// Writes per second of emulator time.
    pub rate: f64,
    pub burst: f64,
}

/// One tenant's schedule, steps sorted by start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schedule {
    steps: Vec<Step>,
}

impl Schedule {
    pub(crate) fn push(&mut self, step: Step) {
        let at = self.steps.partition_point(|s| s.from <= step.from);
        self.steps.insert(at, step);
    }

    /// The other app's rate at `at` (0 before its first step).
    pub(crate) fn rate_at(&self, at: Instant) -> f64 {
        let n = self.steps.partition_point(|s| s.from <= at);
        n.checked_sub(1).map_or(0.0, |i| self.steps[i].rate)
    }

    /// The tenant bucket from `last` to `now`: it refills at `refill` per
    /// second up to `capacity` while the other app takes its share. The
    /// other app is throttled too: it never takes the bucket below empty
    /// (a debt this app ran up stays this app's). Each burst is spent once.
    pub(crate) fn advance(
        &mut self,
        tokens: f64,
        last: Instant,
        now: Instant,
        refill: f64,
        capacity: f64,
    ) -> f64 {
        let mut tokens = tokens;
        let mut at = last;
        let mut rate = self.rate_at(last);
        let inside = self
            .steps
            .iter_mut()
            .filter(|s| s.from >= last && s.from <= now);
        for s in inside {
            tokens = flow(tokens, refill - rate, s.from - at, capacity);
            tokens = (tokens - s.burst).max(tokens.min(0.0));
            s.burst = 0.0;
            (at, rate) = (s.from, s.rate);
        }
        flow(
            tokens,
            refill - rate,
            now.saturating_duration_since(at),
            capacity,
        )
    }
}

fn flow(tokens: f64, net: f64, dt: std::time::Duration, capacity: f64) -> f64 {
    let after = tokens + net * dt.as_secs_f64();
    if net >= 0.0 {
        after.min(capacity.max(tokens))
    } else {
        after.max(tokens.min(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn a_steady_load_leaves_the_rest_of_the_refill() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.push(Step {
            from: t0,
            rate: 50.0,
            burst: 0.0,
        });
        // Refill 60/s, the other app takes 50: 10/s left, from empty.
        let after = s.advance(0.0, t0, secs(t0, 2.0), 60.0, 18_000.0);
        assert!((after - 20.0).abs() < 1e-9, "{after}");
        // A full bucket stays full when the other app takes less than the refill.
        assert_eq!(
            s.advance(18_000.0, t0, secs(t0, 5.0), 60.0, 18_000.0),
            18_000.0
        );
    }

    #[test]
    fn a_burst_empties_the_bucket_and_a_heavier_load_never_takes_it_below_empty() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.push(Step {
            from: secs(t0, 1.0),
            rate: 80.0,
            burst: 20_000.0,
        });
        assert_eq!(s.rate_at(t0), 0.0);
        assert_eq!(s.rate_at(secs(t0, 1.0)), 80.0);
        let after = s.advance(18_000.0, t0, secs(t0, 3.0), 60.0, 18_000.0);
        assert_eq!(after, 0.0);
        assert_eq!(
            s.advance(100.0, secs(t0, 1.0), secs(t0, 1.0), 60.0, 18_000.0),
            100.0,
            "the burst is spent once"
        );
        // A debt this app ran up is not the other app's to deepen or repay.
        let after = s.advance(-5.0, secs(t0, 3.0), secs(t0, 3.0), 60.0, 18_000.0);
        assert_eq!(after, -5.0);
    }

    #[test]
    fn steps_change_the_load_mid_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.push(Step {
            from: secs(t0, 2.0),
            rate: 0.0,
            burst: 0.0,
        });
        s.push(Step {
            from: t0,
            rate: 54.0,
            burst: 0.0,
        });
        // 2 s at 6/s net, then 1 s at 60/s.
        let after = s.advance(0.0, t0, secs(t0, 3.0), 60.0, 18_000.0);
        assert!((after - 72.0).abs() < 1e-9, "{after}");
    }
}
