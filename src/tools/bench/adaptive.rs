//! Pacing against a ceiling lower than documented: another app in the
//! tenant takes part of its write budget (the emulator's foreign load),
//! constantly or for a stretch mid-run. Each run's efficiency is measured
//! against the least time the limits Graph actually enforced allow.
//! `BENCH_TRACE=1` prints the tenant's writes and 429s over time (stderr).
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::rig::{tenant_id, Rig, TenantPlan};
use super::BenchOptions;
use crate::emulator::TenantSize;

/// Another app's load on the tenant, from `at` seconds into the run (real
/// time): writes per second in Microsoft time, and the burst it spends
/// first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub at: f64,
    pub writes_per_sec: f64,
    pub burst: f64,
}

pub(super) struct Run {
    pub name: String,
    pub seconds: f64,
    pub floor: f64,
    pub operations: u64,
    pub throttled: u64,
    pub realtime: Vec<Duration>,
    pub missed: usize,
    /// The naive and SDK-like clients on the same run.
    pub baselines: Vec<super::baselines::Baseline>,
}

/// What another app's load leaves of the documented 20 writes a second
/// (60 tenant-wide): a share of 0.5 is 50 writes a second of its own.
fn leaving(share: f64) -> f64 {
    60.0 - 20.0 * share
}

/// The two scenarios of the issue: 50% throughout, and 100% -> 30% -> 100%.
pub(super) fn scenarios(o: &BenchOptions) -> Vec<(String, Vec<Step>)> {
    // The drop lasts the middle third of the documented floor: by then a
    // client has worked off the app+tenant burst (3,000 writes, a few
    // seconds of round trips, not an instant), so the run measures
    // finding the lower ceiling and climbing back, not how fast the burst
    // goes; a drop in the first second measured mostly the latter.
    let docs = (o.adaptive_users as f64 - 3_000.0).max(0.0) / (20.0 * o.time_scale);
    let drop_at = (docs / 3.0).max(1.0);
    let drop_for = (docs / 3.0).max(2.0);
    vec![
        (
            "one tenant, another app leaves 50%".into(),
            vec![Step {
                at: 0.0,
                writes_per_sec: leaving(0.5),
                burst: 18_000.0,
            }],
        ),
        (
            "one tenant, 100% -> 30% -> 100%".into(),
            vec![
                Step {
                    at: drop_at,
                    writes_per_sec: leaving(0.3),
                    burst: 18_000.0,
                },
                Step {
                    at: drop_at + drop_for,
                    writes_per_sec: 0.0,
                    burst: 0.0,
                },
            ],
        ),
    ]
}

/// The least time `writes` take against the enforced buckets: a greedy
/// writer (optimal for token buckets), simulated in 1 ms steps of real time.
pub(super) fn floor_seconds(writes: f64, time_scale: f64, steps: &[Step]) -> f64 {
    let dt = 0.001;
    let (mut app_tenant, mut tenant) = (3_000.0f64, 18_000.0f64);
    let mut done = 0.0;
    let mut t = 0.0;
    let mut applied = 0;
    while done < writes && t < 86_400.0 {
        while applied < steps.len() && steps[applied].at <= t {
            tenant = (tenant - steps[applied].burst).max(0.0);
            applied += 1;
        }
        let foreign = applied
            .checked_sub(1)
            .map_or(0.0, |i| steps[i].writes_per_sec);
        app_tenant = (app_tenant + 20.0 * time_scale * dt).min(3_000.0);
        tenant = (tenant + (60.0 - foreign).max(0.0) * time_scale * dt).min(18_000.0);
        let go = app_tenant.min(tenant).min(writes - done).max(0.0).floor();
        app_tenant -= go;
        tenant -= go;
        done += go;
        t += dt;
    }
    t
}

/// One scenario: an initial sync of `o.adaptive_users` while the other
/// app's load follows `steps`, with real-time changes in the same tenant.
pub(super) async fn run(o: &BenchOptions, name: &str, steps: &[Step]) -> anyhow::Result<Run> {
    let tenant = tenant_id(30);
    let plans = [TenantPlan {
        company: 1,
        tenant: tenant.clone(),
        domain: "shared.example".into(),
        size: TenantSize::Large,
    }];
    let rig = Rig::new(&plans, o.time_scale, o.latency_ms).await?;
    let mut daemon = rig.spawn_daemon()?;
    rig.seed(1, "shared.example", o.adaptive_users)?;
    rig.wait_idle(Duration::from_secs(120)).await?;
    println!("      {name}: {} users", o.adaptive_users);
    let control = rig.world.control.clone();
    let start = Instant::now();
    let schedule = super::baselines::schedule(&control, &tenant, steps, start);
    rig.connect(1, &tenant).await?;
    let (mut realtime, mut missed) = (Vec::new(), 0);
    let trace = std::env::var_os("BENCH_TRACE").is_some();
    let stop = AtomicBool::new(false);
    let probes = {
        let (rig, control, tenant, stop) = (&rig, &control, &tenant, &stop);
        let (realtime, missed) = (&mut realtime, &mut missed);
        async move {
            let mut n = 50_000;
            while !stop.load(Ordering::Relaxed) {
                if trace {
                    let t = control.traffic(tenant);
                    let at = start.elapsed().as_secs_f64();
                    eprintln!("{at:.2} {} {}", t.writes, t.throttled);
                }
                n += 1;
                let target = format!("p{}@shared.example", (n * 7919) % o.adaptive_users);
                match rig
                    .probe(tenant, &target, n, Duration::from_secs(30))
                    .await?
                {
                    Some(d) => realtime.push(d),
                    None => *missed += 1,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        }
    };
    let (seconds, traffic) = rig
        .sync_with_probes((&tenant, o.adaptive_users), start, &stop, probes)
        .await?;
    schedule.abort();
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    drop(rig);
    let baselines = super::baselines::both(o, o.adaptive_users, steps).await?;
    Ok(Run {
        name: name.into(),
        seconds,
        floor: floor_seconds(traffic.writes as f64, o.time_scale, steps),
        operations: traffic.operations,
        throttled: traffic.throttled,
        realtime,
        missed,
        baselines,
    })
}

/// Section 6: the runs against a ceiling lower than documented.
pub(super) fn report(runs: &[Run]) {
    println!("\n== 6. Pacing against the ceiling Graph enforces (another app in the tenant)");
    for r in runs {
        let eff = if r.floor > 0.0 {
            r.floor / r.seconds
        } else {
            f64::NAN
        };
        let share = if r.operations == 0 {
            0.0
        } else {
            100.0 * r.throttled as f64 / r.operations as f64
        };
        let p = match super::percentiles(r.realtime.clone()) {
            Some((p50, p99)) => format!(
                "p50 {:.1} ms, p99 {:.1} ms",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            ),
            None => "no sample".into(),
        };
        println!(
            "   {}: efficiency {:.3} ({:.1} s for an effective floor of {:.1} s), 429 {:.2}% ({} of {}), real-time in that tenant {} ({} missed)",
            r.name, eff, r.seconds, r.floor, share, r.throttled, r.operations, p, r.missed
        );
        for b in &r.baselines {
            println!("      beside it: {}", b.line());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_follows_what_the_other_app_leaves() {
        // Documented: 3,000 at once, then 20 a second.
        let docs = floor_seconds(5_000.0, 1.0, &[]);
        assert!((docs - 100.0).abs() < 0.01, "{docs}");
        // Half left, the tenant's burst spent by the other app: 10 a second.
        let half = [Step {
            at: 0.0,
            writes_per_sec: 50.0,
            burst: 18_000.0,
        }];
        let t = floor_seconds(1_000.0, 1.0, &half);
        assert!((t - 100.0).abs() < 0.01, "{t}");
    }
}
