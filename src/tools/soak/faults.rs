//! Faults during a drain: Plumm commits a mixed stream of changes (hires,
//! role changes, email changes, suspensions, reactivations, leavers) over
//! two tenants while Graph answers a share of requests with 5xx, resets a
//! share of connections before carrying the request out, throttles every
//! request for a while (a 429 storm with `Retry-After`), and shows new
//! users only after a replication delay. It must converge to Entra equal to
//! Plumm: nothing lost, no duplicate, no one parked.
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::verdict::{self, Verdict};
use crate::emulator::{Fault, FaultKind, LoggedRequest};
use crate::tools::world::{tenant, World};

const TENANTS: [(i64, &str, &str); 2] = [
    (1, "5a0c0001-0000-4000-8000-000000000001", "contoso.com"),
    (2, "5a0c0002-0000-4000-8000-000000000002", "fabrikam.com"),
];

#[derive(Debug, Clone)]
pub struct FaultOptions {
    /// Changes Plumm commits (the first tenth or so are mostly hires).
    pub changes: usize,
    /// Plumm's pace, changes per second.
    pub rate: f64,
    /// Shares of Graph requests answered 5xx, and reset before they are
    /// carried out.
    pub error_rate: f64,
    pub reset_rate: f64,
    /// The 429 storm: when it starts after the first change, how long
    /// every Graph request is throttled, and the `Retry-After` it names.
    pub storm_after: Duration,
    pub storm_for: Duration,
    pub storm_retry_after_secs: f64,
    /// How long a new user stays invisible to reads.
    pub replication_delay: Duration,
    pub seed: u64,
    /// How long convergence may take before the campaign fails.
    pub timeout: Duration,
}

impl Default for FaultOptions {
    fn default() -> Self {
        Self {
            changes: 2_000,
            rate: 200.0,
            error_rate: 0.2,
            reset_rate: 0.1,
            storm_after: Duration::from_secs(2),
            storm_for: Duration::from_secs(5),
            storm_retry_after_secs: 1.0,
            replication_delay: Duration::from_secs(5),
            seed: 1,
            timeout: Duration::from_secs(600),
        }
    }
}

/// What the campaign measured.
#[derive(Debug)]
pub struct FaultReport {
    pub changes: usize,
    pub kinds: Vec<(&'static str, u32)>,
    /// From the first change to Entra equal to Plumm.
    pub converged: Duration,
    /// Committing the changes took this long.
    pub drive: Duration,
    pub counts: RequestCounts,
    pub verdict: Verdict,
}

/// Graph traffic as the emulator logged it.
#[derive(Debug, Default)]
pub struct RequestCounts {
    /// HTTP requests to Graph (a `$batch` once).
    pub round_trips: u64,
    /// Single requests plus `$batch` items carried out, and of them writes.
    pub operations: u64,
    pub writes: u64,
    pub server_errors: u64,
    pub resets: u64,
    /// 429s of the storm, and of the emulator's own limits.
    pub storm_429: u64,
    pub throttled: u64,
    pub tokens: u64,
}

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "faults: {} changes {:?} committed in {}; converged {} after the first change",
            self.changes,
            self.kinds,
            super::secs(self.drive),
            super::secs(self.converged)
        )?;
        writeln!(
            f,
            "  Graph: {} round trips, {} operations ({} writes); {} answered 5xx, {} reset before \
             being carried out, {} throttled by the storm, {} by the limits; {} token requests",
            c.round_trips,
            c.operations,
            c.writes,
            c.server_errors,
            c.resets,
            c.storm_429,
            c.throttled,
            c.tokens
        )?;
        write!(f, "  verdict: {}", self.verdict.summary())
    }
}

/// Builds the world, connects both tenants, drives Plumm, and waits for
/// Entra to equal Plumm.
pub async fn run(o: &FaultOptions) -> anyhow::Result<FaultReport> {
    let world = build(o).await?;
    for (company, tenant, _) in TENANTS {
        connect(&world, company, tenant).await?;
    }
    let (stop, started) = world.start_daemon().await?;
    let first = Instant::now();
    let storm = tokio::spawn(storm(world.control.clone(), o.clone()));
    let (kinds, drive) = {
        let path = world.settings.plumm.database.clone();
        let o = o.clone();
        tokio::task::spawn_blocking(move || drive(&path, &o)).await??
    };
    storm.await?;
    let settled = world.converged(o.timeout, Duration::from_millis(20)).await;
    let converged = first.elapsed();
    stop.send_replace(true);
    started.wait().await?;
    settled?;
    let companies: Vec<(i64, String)> = TENANTS.iter().map(|t| (t.0, t.1.to_owned())).collect();
    let verdict = verdict::check(&world, &companies, &HashSet::new())?;
    Ok(FaultReport {
        changes: o.changes,
        kinds,
        converged,
        drive,
        counts: counts(&world),
        verdict,
    })
}

/// Connects through the faults, as an admin clicks Connect again when
/// Microsoft failed the first time.
async fn connect(world: &World, company: i64, tenant: &str) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match world.connect(company, tenant, "soak").await {
            Err(_) if tries < 20 => tries += 1,
            done => return done,
        }
    }
}

async fn build(o: &FaultOptions) -> anyhow::Result<World> {
    let mut b = World::builder()
        .scratch("entra-daemon-soak")
        .short_timings();
    for (_, id, domain) in TENANTS {
        b = b.tenant(tenant(id, domain));
    }
    let delay_ms = o.replication_delay.as_millis() as u64;
    let (errors, resets) = (o.error_rate, o.reset_rate);
    b.emulator(move |c| {
        c.replication_delay_ms = delay_ms;
        c.random_faults.error_rate = errors;
        c.random_faults.reset_rate = resets;
        // Counts come from the log: keep all of it.
        c.log_capacity = 1_000_000;
    })
    // A create's visibility is waited for well past the replication delay;
    // leavers come in bulk on purpose, so the brake must not hold them.
    .sync(&format!(
        "replication_timeout = \"{}ms\"\nmax_deprovision_count = 1000000",
        (delay_ms * 4).max(5_000)
    ))
    .log("level = \"error\"")
    .build()
    .await
}

/// Every Graph request is throttled for `storm_for`, `storm_after` in.
async fn storm(control: crate::emulator::EmulatorControl, o: FaultOptions) {
    tokio::time::sleep(o.storm_after).await;
    control.inject(Fault {
        tenant: None,
        method: None,
        path_contains: Some("/v1.0/".into()),
        count: u32::MAX,
        kind: FaultKind::Status {
            status: 429,
            retry_after: Some(o.storm_retry_after_secs),
        },
    });
    tokio::time::sleep(o.storm_for).await;
    control.clear_faults();
}

/// Plumm's side: `o.changes` changes at `o.rate` a second, one commit each.
fn drive(
    path: &std::path::Path,
    o: &FaultOptions,
) -> anyhow::Result<(Vec<(&'static str, u32)>, Duration)> {
    let conn = rusqlite::Connection::open(path).context("opening Plumm's database")?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut kinds: HashMap<&'static str, u32> = HashMap::new();
    let start = Instant::now();
    for n in 0..o.changes {
        let kind = change(&conn, &mut rng, n)?;
        *kinds.entry(kind).or_default() += 1;
        let due = start + Duration::from_secs_f64((n + 1) as f64 / o.rate);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    Ok((kinds, start.elapsed()))
}

/// One random change, as Plumm's app would commit it; its kind.
fn change(conn: &rusqlite::Connection, rng: &mut StdRng, n: usize) -> anyhow::Result<&'static str> {
    let people: Vec<(i64, String)> = conn
        .prepare_cached("SELECT id, email FROM users ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let roll = rng.gen_range(0..100);
    if people.len() < 20 || roll < 30 {
        let (company, _, domain) = TENANTS[rng.gen_range(0..TENANTS.len())];
        conn.execute(
            "INSERT INTO users (company_id, email, first_name, last_name, role, country)
             VALUES (?1, ?2, 'Soak', ?3, 'Starter', 'GB')",
            rusqlite::params![company, format!("p{n}@{domain}"), format!("N{n}")],
        )?;
        return Ok("hire");
    }
    let (id, email) = &people[rng.gen_range(0..people.len())];
    let (sql, kind): (String, _) = match roll {
        30..=59 => (
            format!("UPDATE users SET role = 'Role {n}' WHERE id = {id}"),
            "update",
        ),
        60..=69 => {
            let domain = email.split_once('@').map_or("contoso.com", |(_, d)| d);
            (
                format!("UPDATE users SET email = 'p{n}@{domain}' WHERE id = {id}"),
                "email",
            )
        }
        70..=81 => (
            format!("UPDATE users SET status = 'inactive' WHERE id = {id}"),
            "suspend",
        ),
        82..=91 => (
            format!("UPDATE users SET status = 'active' WHERE id = {id}"),
            "reactivate",
        ),
        _ => (format!("DELETE FROM users WHERE id = {id}"), "leave"),
    };
    conn.execute(&sql, [])?;
    Ok(kind)
}

fn counts(world: &World) -> RequestCounts {
    let mut c = RequestCounts::default();
    for (_, tenant, _) in TENANTS {
        let t = world.control.traffic(tenant);
        c.operations += t.operations;
        c.writes += t.writes;
        c.throttled += t.throttled;
        c.tokens += t.tokens;
    }
    let log = world.control.requests();
    let graph = |r: &&LoggedRequest| r.path.starts_with("/v1.0") && r.batch_seq.is_none();
    for r in log.iter().filter(graph) {
        c.round_trips += 1;
        match r.fault.as_deref() {
            Some("random reset") => c.resets += 1,
            Some("status 429") => c.storm_429 += 1,
            Some(f) if f.starts_with("random 5") => c.server_errors += 1,
            _ => {}
        }
    }
    // The limits' own 429s, not the storm's.
    c.throttled = c.throttled.saturating_sub(c.storm_429);
    c
}
