//! The two baselines every pacing figure stands beside, measured in the
//! same run: today's naive client (one request at a time, projected from
//! `naive_seconds`) and the client an SDK user writes ([`SDK_WORKERS`]
//! loops at once obeying Retry-After, no pacing, run to the end). Each on
//! the same initial sync in a fresh world, with the same foreign load.
use std::time::{Duration, Instant};

use super::adaptive::{floor_seconds, Step};
use super::rig::{tenant_id, Rig, TenantPlan};
use super::BenchOptions;
use crate::emulator::TenantSize;

/// Concurrent workers of the SDK-like baseline: what `Task.WhenAll` or
/// `asyncio.gather` over a batch of eight gives an SDK user.
pub(super) const SDK_WORKERS: usize = 8;

/// The longest the SDK-like baseline may take before the bench gives up.
const SDK_LIMIT: Duration = Duration::from_secs(1_800);

pub(super) struct Baseline {
    pub workers: usize,
    pub seconds: f64,
    /// Whether `seconds` is projected from a shorter run.
    pub projected: bool,
    pub floor: f64,
    pub requests: u64,
    pub throttled: u64,
}

impl Baseline {
    pub(super) fn line(&self) -> String {
        let name = if self.workers > 1 {
            format!("SDK-like ({} workers)", self.workers)
        } else {
            "naive".into()
        };
        let eff = if self.floor > 0.0 {
            format!("{:.3}", self.floor / self.seconds.max(1e-9))
        } else {
            "n/a".into()
        };
        let how = if self.projected { "projected " } else { "" };
        format!(
            "{name} {eff} ({how}{:.1} s), 429 {:.2}% ({} of {}), real-time behind its backlog",
            self.seconds,
            share(self.throttled, self.requests),
            self.throttled,
            self.requests
        )
    }
}

fn share(t: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * t as f64 / n as f64
    }
}

/// Another app's load as `steps` says, from `start` on (real time).
pub(super) fn schedule(
    control: &crate::emulator::EmulatorControl,
    tenant: &str,
    steps: &[Step],
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    let (control, tenant, steps) = (control.clone(), tenant.to_string(), steps.to_vec());
    tokio::spawn(async move {
        for s in steps {
            tokio::time::sleep_until((start + Duration::from_secs_f64(s.at)).into()).await;
            control.set_foreign_load(&tenant, s.writes_per_sec, s.burst);
        }
    })
}

/// One baseline with `workers` on an initial sync of `users` in one
/// tenant while another app's load follows `steps` (none: the documented
/// limits alone).
pub(super) async fn run(
    o: &BenchOptions,
    users: usize,
    steps: &[Step],
    workers: usize,
) -> anyhow::Result<Baseline> {
    let tenant = tenant_id(40);
    let plans = [TenantPlan {
        company: 1,
        tenant: tenant.clone(),
        domain: "base.example".into(),
        size: TenantSize::Large,
    }];
    let rig = Rig::new(&plans, o.time_scale, o.latency_ms).await?;
    rig.seed(1, "base.example", users)?;
    let seconds = if workers > 1 {
        SDK_LIMIT.as_secs_f64()
    } else {
        o.naive_seconds
    };
    let start = Instant::now();
    let load = schedule(&rig.world.control, &tenant, steps, start);
    let stats = rig.baseline(1, &tenant, seconds, workers).await?;
    load.abort();
    // The naive client is always projected: after the sync it would
    // wait on the outbox until its time is up.
    let projected = workers == 1 || (stats.done as usize) < users;
    let (seconds, writes) = if projected {
        let rate = stats.done as f64 / stats.seconds.max(1e-9);
        (users as f64 / rate.max(1e-9), users as f64)
    } else {
        let writes = rig.world.control.traffic(&tenant).writes;
        (stats.seconds, writes as f64)
    };
    Ok(Baseline {
        workers,
        seconds,
        projected,
        floor: floor_seconds(writes, o.time_scale, steps),
        requests: stats.requests,
        throttled: stats.throttled,
    })
}

/// Both baselines on one run, naive first.
pub(super) async fn both(
    o: &BenchOptions,
    users: usize,
    steps: &[Step],
) -> anyhow::Result<Vec<Baseline>> {
    println!(
        "      baselines: naive for {} s, SDK-like to the end",
        o.naive_seconds
    );
    Ok(vec![
        run(o, users, steps, 1).await?,
        run(o, users, steps, SDK_WORKERS).await?,
    ])
}
