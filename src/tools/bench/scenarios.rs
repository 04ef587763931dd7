//! The benchmark's runs and its report.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::naive::NaiveStats;
use super::rig::{process_usage, tenant_id, Rig, TenantPlan};
use super::{minimum_seconds, percentiles, BenchOptions};
use crate::emulator::TenantSize;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn pct(xs: Vec<Duration>) -> String {
    match percentiles(xs) {
        Some((p50, p99)) => format!("p50 {:>9}  p99 {:>9}", ms(p50), ms(p99)),
        None => "no sample".into(),
    }
}

struct Bulk {
    seconds: f64,
    minimum: f64,
    operations: u64,
    round_trips: u64,
    writes: u64,
    throttled: u64,
    changes: u64,
    peak_rss_kib: u64,
    cpu_seconds: f64,
    idle_rss_kib: u64,
}

pub async fn run(o: BenchOptions) -> anyhow::Result<()> {
    println!(
        "entra-daemon bench: emulator with Microsoft's documented limits at time scale {}, \
         Graph latency {}-{} ms\n",
        o.time_scale, o.latency_ms.0, o.latency_ms.1
    );
    if o.only.as_deref() == Some("groups") {
        super::groups::report(&super::groups::run(&o).await?);
        return Ok(());
    }
    if o.only.as_deref() == Some("app-wide") {
        let app = app_wide(&o).await?;
        println!(
            "   app-wide, {} tenants x {}: daemon {} ({:.1} s for a minimum of {:.1} s), 429 {:.2}%, {:.3} writes and {:.3} ms of daemon CPU per change",
            o.tenants,
            o.users_per_tenant,
            efficiency(app.minimum, app.seconds),
            app.seconds,
            app.minimum,
            share(app.throttled, app.operations),
            app.writes as f64 / app.changes as f64,
            1000.0 * app.cpu_seconds / app.changes as f64,
        );
        return Ok(());
    }
    let mut adaptive = Vec::new();
    for (name, steps) in super::adaptive::scenarios(&o) {
        adaptive.push(super::adaptive::run(&o, &name, &steps).await?);
    }
    if o.only.as_deref() == Some("adaptive") {
        super::adaptive::report(&adaptive);
        return Ok(());
    }
    let idle = idle_latency(&o).await?;
    let (one, mut latency) = one_tenant(&o).await?;
    latency.idle_unloaded = idle;
    let naive = naive_one_tenant(&o).await?;
    println!("      SDK-like baseline on the same sync, to the end");
    let sdk = super::baselines::run(&o, o.users, &[], super::baselines::SDK_WORKERS).await?;
    let app = app_wide(&o).await?;
    let handover = super::handover::run(o.users)?;
    let groups = super::groups::run(&o).await?;
    let person = super::person::run(&o).await?;
    report(&o, &one, &latency, &naive, &app);
    println!(
        "   one tenant, {} users, beside it: {}",
        o.users,
        sdk.line()
    );
    super::handover::report(&handover);
    super::adaptive::report(&adaptive);
    super::groups::report(&groups);
    super::person::report(&person);
    Ok(())
}

struct Latency {
    /// Against an emulator that adds no latency: the daemon's own share.
    idle_unloaded: Vec<Duration>,
    idle: Vec<Duration>,
    other_tenant: Vec<Duration>,
    same_tenant: Vec<Duration>,
    /// Probes in the busy tenant that were changes of their own.
    probe_updates: u64,
    missed: usize,
}

fn plan(company: i64, tenant: &str, domain: &str, size: TenantSize) -> TenantPlan {
    TenantPlan {
        company,
        tenant: tenant.into(),
        domain: domain.into(),
        size,
    }
}

/// One change in the quiet tenant (40 people, taken in turn); its latency,
/// or `None` when Entra did not show it within 10 s.
async fn quiet_probe(rig: &Rig, quiet: &str, n: usize) -> anyhow::Result<Option<Duration>> {
    let email = format!("p{}@quiet.example", n % 40);
    rig.probe(quiet, &email, n, Duration::from_secs(10)).await
}

/// One tenant's initial sync of `o.users`, with real-time probes: idle,
/// in a quiet tenant while it runs, and in the busy tenant itself.
async fn one_tenant(o: &BenchOptions) -> anyhow::Result<(Bulk, Latency)> {
    let busy = tenant_id(0);
    let quiet = tenant_id(1);
    let plans = [
        plan(1, &busy, "busy.example", TenantSize::Large),
        plan(2, &quiet, "quiet.example", TenantSize::Small),
    ];
    let rig = Rig::new(&plans, o.time_scale, o.latency_ms).await?;
    let mut daemon = rig.spawn_daemon()?;
    let pid = daemon.id().context("daemon pid")?;
    rig.seed(1, "busy.example", o.users)?;
    rig.seed(2, "quiet.example", 40)?;
    rig.wait_idle(Duration::from_secs(60)).await?;
    rig.connect(2, &quiet).await?;
    rig.wait_idle(Duration::from_secs(60)).await?;
    let idle_rss_kib = process_usage(pid).map_or(0, |u| u.0);
    let mut lat = Latency {
        idle_unloaded: Vec::new(),
        idle: Vec::new(),
        other_tenant: Vec::new(),
        same_tenant: Vec::new(),
        probe_updates: 0,
        missed: 0,
    };
    println!("[1/3] idle latency: 100 single changes in a quiet tenant");
    for n in 0..100 {
        match quiet_probe(&rig, &quiet, n).await? {
            Some(d) => lat.idle.push(d),
            None => lat.missed += 1,
        }
    }
    println!(
        "[2/3] initial sync of {} users in one tenant, with real-time changes meanwhile",
        o.users
    );
    let cpu_before = process_usage(pid).map_or(0.0, |u| u.1);
    let before = rig.world.control.traffic(&busy);
    let start = Instant::now();
    rig.connect(1, &busy).await?;
    let stop = AtomicBool::new(false);
    let probes = probe_during_sync(&rig, o, (&busy, &quiet), &stop, &mut lat);
    let (seconds, after) = rig
        .sync_with_probes((&busy, o.users), start, &stop, probes)
        .await?;
    let (peak_rss_kib, cpu_after) = process_usage(pid).unwrap_or_default();
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    let writes = after.writes - before.writes;
    Ok((
        Bulk {
            seconds,
            minimum: minimum_seconds(writes as f64, 1.0, o.time_scale),
            operations: after.operations - before.operations,
            round_trips: after.round_trips - before.round_trips,
            writes,
            throttled: after.throttled - before.throttled,
            // The initial sync's users, and the probes that needed a write.
            changes: o.users as u64 + lat.probe_updates,
            peak_rss_kib,
            cpu_seconds: cpu_after - cpu_before,
            idle_rss_kib,
        },
        lat,
    ))
}

/// Until `stop` (the busy tenant's sync is done): a change in the quiet
/// tenant, then one somewhere in the busy tenant's backlog, every 100 ms.
async fn probe_during_sync(
    rig: &Rig,
    o: &BenchOptions,
    (busy, quiet): (&str, &str),
    stop: &AtomicBool,
    lat: &mut Latency,
) -> anyhow::Result<()> {
    let mut n = 1_000;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        if let Some(d) = quiet_probe(rig, quiet, n).await? {
            lat.other_tenant.push(d);
        }
        // A user somewhere in the backlog: its change jumps the queue.
        let target = format!("p{}@busy.example", (n * 7919) % o.users);
        // A change to someone already in Entra is a change of its own (one
        // PATCH); one to someone still queued rides on their create.
        let own = rig.world.control.find_user(busy, &target).is_some();
        match rig.probe(busy, &target, n, Duration::from_secs(30)).await? {
            Some(d) => {
                lat.same_tenant.push(d);
                lat.probe_updates += u64::from(own);
            }
            None => lat.missed += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Single changes, one at a time, against an emulator that answers at once:
/// what the daemon itself adds between Plumm's commit and Graph's answer.
async fn idle_latency(o: &BenchOptions) -> anyhow::Result<Vec<Duration>> {
    let quiet = tenant_id(1);
    let plans = [plan(2, &quiet, "quiet.example", TenantSize::Small)];
    let rig = Rig::new(&plans, o.time_scale, (0, 0)).await?;
    let mut daemon = rig.spawn_daemon()?;
    rig.seed(2, "quiet.example", 40)?;
    rig.wait_idle(Duration::from_secs(60)).await?;
    rig.connect(2, &quiet).await?;
    rig.wait_idle(Duration::from_secs(60)).await?;
    println!("[0/3] idle latency without Graph latency: 200 single changes");
    let mut out = Vec::new();
    for n in 0..200 {
        if let Some(d) = quiet_probe(&rig, &quiet, n).await? {
            out.push(d);
        }
    }
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    Ok(out)
}

/// The baseline on the same initial sync, for `naive_seconds`, projected.
async fn naive_one_tenant(o: &BenchOptions) -> anyhow::Result<NaiveStats> {
    let busy = tenant_id(0);
    let plans = [plan(1, &busy, "busy.example", TenantSize::Large)];
    let rig = Rig::new(&plans, o.time_scale, o.latency_ms).await?;
    rig.seed(1, "busy.example", o.users)?;
    println!(
        "      naive baseline on the same sync for {} s",
        o.naive_seconds
    );
    rig.baseline(1, &busy, o.naive_seconds, 1).await
}

/// Every tenant's initial sync at once: the app-wide budget binds.
async fn app_wide(o: &BenchOptions) -> anyhow::Result<Bulk> {
    let plans: Vec<TenantPlan> = (0..o.tenants)
        .map(|i| {
            let domain = format!("t{i}.example");
            plan(i as i64 + 1, &tenant_id(10 + i), &domain, TenantSize::Large)
        })
        .collect();
    let rig = Rig::new(&plans, o.time_scale, o.latency_ms).await?;
    let mut daemon = rig.spawn_daemon()?;
    let pid = daemon.id().context("daemon pid")?;
    for p in &plans {
        rig.seed(p.company, &p.domain, o.users_per_tenant)?;
    }
    rig.wait_idle(Duration::from_secs(120)).await?;
    println!(
        "[3/3] app-wide: {} tenants x {} users at once",
        o.tenants, o.users_per_tenant
    );
    let idle_rss_kib = process_usage(pid).map_or(0, |u| u.0);
    let cpu_before = process_usage(pid).map_or(0.0, |u| u.1);
    let start = Instant::now();
    // Each connect lists its (empty) tenant and queues its users; the
    // daemon starts on a tenant as soon as it is connected.
    for p in &plans {
        rig.connect(p.company, &p.tenant).await?;
    }
    if std::env::var_os("BENCH_TRACE").is_some() {
        trace_app_wide(&rig, &plans, o.users_per_tenant, start).await;
    }
    rig.wait_idle(Duration::from_secs(7_200)).await?;
    let seconds = start.elapsed().as_secs_f64();
    let (peak_rss_kib, cpu_after) = process_usage(pid).unwrap_or_default();
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;
    let mut total = crate::emulator::Traffic::default();
    for p in &plans {
        let t = rig.world.control.traffic(&p.tenant);
        total.operations += t.operations;
        total.round_trips += t.round_trips;
        total.writes += t.writes;
        total.throttled += t.throttled;
    }
    Ok(Bulk {
        seconds,
        minimum: minimum_seconds(
            total.writes as f64 / o.tenants as f64,
            o.tenants as f64,
            o.time_scale,
        ),
        operations: total.operations,
        round_trips: total.round_trips,
        writes: total.writes,
        throttled: total.throttled,
        changes: (o.tenants * o.users_per_tenant) as u64,
        peak_rss_kib,
        cpu_seconds: cpu_after - cpu_before,
        idle_rss_kib,
    })
}

/// `BENCH_TRACE=1`: every tenant's writes together, each second (stderr).
async fn trace_app_wide(rig: &Rig, plans: &[TenantPlan], users: usize, start: Instant) {
    let writes = || -> u64 {
        plans
            .iter()
            .map(|p| rig.world.control.traffic(&p.tenant).writes)
            .sum()
    };
    while plans
        .iter()
        .any(|p| rig.world.control.user_count(&p.tenant) < users)
    {
        let each: Vec<String> = plans
            .iter()
            .map(|p| rig.world.control.user_count(&p.tenant).to_string())
            .collect();
        eprintln!(
            "{:.1} {} [{}]",
            start.elapsed().as_secs_f64(),
            writes(),
            each.join(" ")
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// min/actual, or a note when the run fits in Graph's buckets (no minimum).
fn efficiency(minimum: f64, actual: f64) -> String {
    if minimum <= 0.0 {
        "n/a (fits in the buckets)".into()
    } else {
        format!("{:.3}", minimum / actual)
    }
}

fn report(o: &BenchOptions, one: &Bulk, lat: &Latency, naive: &NaiveStats, app: &Bulk) {
    let naive_rate = naive.done as f64 / naive.seconds.max(1e-9);
    let naive_projected = o.users as f64 / naive_rate.max(1e-9);
    report_pacing(o, one, naive, naive_projected, app);
    report_latency(o, lat, naive_projected);
    report_costs(one, naive, app);
}

/// The share of `n` that `t` is, in percent (0 of nothing).
fn share(t: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        100.0 * t as f64 / n as f64
    }
}

/// Section 1: how close each run came to the least time Graph allows.
fn report_pacing(
    o: &BenchOptions,
    one: &Bulk,
    naive: &NaiveStats,
    naive_projected: f64,
    app: &Bulk,
) {
    println!("\n== 1. Pacing efficiency (theoretical minimum / actual) and 429 share");
    println!(
        "   one tenant, {} users:   daemon {} ({:.1} s for a minimum of {:.1} s), 429 {:.2}% | naive {} (projected {:.0} s from {} users in {:.0} s), 429 {:.2}%",
        o.users,
        efficiency(one.minimum, one.seconds),
        one.seconds,
        one.minimum,
        share(one.throttled, one.operations),
        efficiency(one.minimum, naive_projected),
        naive_projected,
        naive.done,
        naive.seconds,
        share(naive.throttled, naive.requests),
    );
    println!(
        "   app-wide, {} tenants x {}: daemon {} ({:.1} s for a minimum of {:.1} s), 429 {:.2}%",
        o.tenants,
        o.users_per_tenant,
        efficiency(app.minimum, app.seconds),
        app.seconds,
        app.minimum,
        share(app.throttled, app.operations)
    );
}

/// Section 2: from Plumm's commit to Entra, idle and under load.
fn report_latency(o: &BenchOptions, lat: &Latency, naive_projected: f64) {
    println!("\n== 2. Real-time change latency (Plumm commit -> visible in Entra)");
    println!(
        "   idle, Graph answering at once:     daemon {}",
        pct(lat.idle_unloaded.clone())
    );
    println!(
        "   idle, Graph latency {}-{} ms:       daemon {}",
        o.latency_ms.0,
        o.latency_ms.1,
        pct(lat.idle.clone())
    );
    println!(
        "   other tenant while one saturated:  daemon {}",
        pct(lat.other_tenant.clone())
    );
    println!(
        "   same tenant during its bulk sync:  daemon {}",
        pct(lat.same_tenant.clone())
    );
    println!(
        "   naive: one queue, one request at a time: a change waits behind the whole backlog \
         (about {naive_projected:.0} s here); idle it needs a lookup and a write (2 round trips)"
    );
    if lat.missed > 0 {
        println!(
            "   ({} probes not visible within their timeout)",
            lat.missed
        );
    }
}

/// Sections 3 and 4: what each converged change cost in requests, memory
/// and CPU.
fn report_costs(one: &Bulk, naive: &NaiveStats, app: &Bulk) {
    println!("\n== 3. Graph requests and writes per converged change (initial sync)");
    println!(
        "   daemon: {:.3} HTTP round trips, {:.3} Graph operations, {:.3} writes | naive: {:.3} round trips, {:.3} writes",
        one.round_trips as f64 / one.changes as f64,
        one.operations as f64 / one.changes as f64,
        one.writes as f64 / one.changes as f64,
        naive.requests as f64 / naive.done.max(1) as f64,
        1.0,
    );
    println!("\n== 4. Memory and CPU");
    println!(
        "   daemon: peak RSS {:.1} MiB (idle {:.1} MiB; app-wide run {:.1} MiB), CPU {:.3} ms per change ({:.3} ms app-wide) | naive: peak RSS {:.1} MiB, CPU {:.3} ms per change",
        one.peak_rss_kib as f64 / 1024.0,
        one.idle_rss_kib as f64 / 1024.0,
        app.peak_rss_kib as f64 / 1024.0,
        1000.0 * one.cpu_seconds / one.changes as f64,
        1000.0 * app.cpu_seconds / app.changes as f64,
        naive.peak_rss_kib as f64 / 1024.0,
        1000.0 * naive.cpu_seconds / naive.done.max(1) as f64,
    );
}
