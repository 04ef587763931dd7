//! `entra-daemon bench`: the daemon against the emulator with Microsoft's
//! documented limits on a time scale, each figure beside a naive baseline
//! measured in the same run. Prints figures; asserts nothing (timing goals
//! live here, never in tests).
mod adaptive;
mod baselines;
mod groups;
mod handover;
pub mod naive;
mod person;
mod rig;
mod scenarios;

use std::time::Duration;

pub use scenarios::run;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Users of the one-tenant initial sync.
    pub users: usize,
    /// Tenants of the app-wide run, and users per tenant there.
    pub tenants: usize,
    pub users_per_tenant: usize,
    /// The emulator and the pacer run Microsoft's windows this much faster.
    pub time_scale: f64,
    /// Graph latency the emulator adds to every request, uniformly drawn.
    pub latency_ms: (u64, u64),
    /// How long the naive baseline may run before its rate is projected.
    pub naive_seconds: f64,
    /// Users of each run against a ceiling lower than documented.
    pub adaptive_users: usize,
    /// Only one section: `adaptive`, `groups` or `app-wide`.
    pub only: Option<String>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            users: 10_000,
            tenants: 10,
            users_per_tenant: 10_000,
            time_scale: 10.0,
            latency_ms: (20, 60),
            naive_seconds: 20.0,
            adaptive_users: 6_000,
            only: None,
        }
    }
}

/// p50 and p99 of a sample (None when empty).
pub fn percentiles(mut xs: Vec<Duration>) -> Option<(Duration, Duration)> {
    if xs.is_empty() {
        return None;
    }
    xs.sort();
    let at = |q: f64| xs[((xs.len() as f64 - 1.0) * q).round() as usize];
    Some((at(0.50), at(0.99)))
}

/// The least time Graph's documented limits allow for `writes` writes
/// spread over `tenants` tenants, at `time_scale` (token buckets start full:
/// 3,000 writes per 150 s per tenant, 35,000 per 5 minutes per app).
pub fn minimum_seconds(writes_per_tenant: f64, tenants: f64, time_scale: f64) -> f64 {
    let tenant = (writes_per_tenant - 3_000.0).max(0.0) / (3_000.0 / 150.0 * time_scale);
    let app = (writes_per_tenant * tenants - 35_000.0).max(0.0) / (35_000.0 / 300.0 * time_scale);
    tenant.max(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_follows_the_binding_limit() {
        // One tenant, 10,000 writes: 7,000 beyond the bucket at 20/s.
        assert_eq!(minimum_seconds(10_000.0, 1.0, 1.0), 350.0);
        assert_eq!(minimum_seconds(10_000.0, 1.0, 10.0), 35.0);
        // Ten such tenants: the app-wide 35,000 per 5 minutes binds.
        let app = minimum_seconds(10_000.0, 10.0, 10.0);
        assert!((app - 65_000.0 / (35_000.0 / 300.0 * 10.0)).abs() < 1e-9);
        assert_eq!(minimum_seconds(100.0, 1.0, 1.0), 0.0);
    }

    #[test]
    fn percentiles_of_a_sample() {
        let xs: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let (p50, p99) = percentiles(xs).unwrap();
        assert_eq!(p50, Duration::from_millis(51));
        assert_eq!(p99, Duration::from_millis(99));
        assert!(percentiles(Vec::new()).is_none());
    }
}
