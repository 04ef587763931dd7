//! Plumm's writers: while the daemon drains, a writer commits single-row
//! changes to Plumm's `users` table at a steady rate, with `busy_timeout`
//! 0 and with 5 s; its busy errors and commit latency (p50, p99, worst)
//! beside the same writer with the daemon stopped. The daemon writes to
//! Plumm's file only to delete the outbox rows it has recorded; every such
//! delete holds Plumm's write lock for its moment, which a writer without a
//! busy timeout meets as `SQLITE_BUSY`.
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::tools::bench::percentiles;
use crate::tools::world::{tenant, World};

const COMPANY: i64 = 1;
const TENANT: &str = "5a0c0004-0000-4000-8000-000000000004";

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// People in Plumm (and Entra) the writer changes at random.
    pub people: usize,
    /// Commits a second, and for how long, per run.
    pub rate: f64,
    pub duration: Duration,
    pub timeout: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            people: 1_000,
            rate: 1_000.0,
            duration: Duration::from_secs(20),
            timeout: Duration::from_secs(300),
        }
    }
}

/// One writer run.
#[derive(Debug, Clone)]
pub struct WriterRun {
    pub daemon_running: bool,
    pub busy_timeout: Duration,
    pub commits: usize,
    pub busy_errors: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub worst: Duration,
    /// Commits achieved per second (behind the target rate if commits are slow).
    pub achieved_rate: f64,
}

#[derive(Debug)]
pub struct WriterReport {
    pub options: WriterOptions,
    pub runs: Vec<WriterRun>,
    /// The longest the daemon took, after a run, to catch up with what it committed.
    pub drained: Duration,
}

impl WriterReport {
    /// A run with the daemon running, and the baseline run with the same busy timeout.
    pub fn pair(&self, busy_timeout: Duration) -> Option<(&WriterRun, &WriterRun)> {
        let find = |running| {
            self.runs
                .iter()
                .find(|r| r.daemon_running == running && r.busy_timeout == busy_timeout)
        };
        Some((find(true)?, find(false)?))
    }
}

impl fmt::Display for WriterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "writers: {} single-row commits/s for {} per run, {} people",
            o.rate,
            super::secs(o.duration),
            o.people
        )?;
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        for r in &self.runs {
            writeln!(
                f,
                "  daemon {:7} busy_timeout {:>5}: {} commits ({:.0}/s), {} busy errors; p50 {} p99 {} worst {}",
                if r.daemon_running { "running" } else { "stopped" },
                format!("{}ms", r.busy_timeout.as_millis()),
                r.commits,
                r.achieved_rate,
                r.busy_errors,
                ms(r.p50),
                ms(r.p99),
                ms(r.worst)
            )?;
        }
        write!(
            f,
            "  the daemon caught up at most {} after a run",
            super::secs(self.drained)
        )
    }
}

const BUSY_TIMEOUTS: [Duration; 2] = [Duration::ZERO, Duration::from_secs(5)];

pub async fn run(o: &WriterOptions) -> anyhow::Result<WriterReport> {
    let people = o.people;
    let world = World::builder()
        .scratch("entra-daemon-soak")
        .tenant(tenant(TENANT, "contoso.com"))
        // Graph's windows ten times faster: the daemon catches up with the
        // writer's changes sooner; Plumm's side, which is measured, is as is.
        .emulator(|c| c.time_scale = 10.0)
        .pacing("time_scale = 10.0")
        .sync("max_deprovision_count = 1000000")
        .log("level = \"error\"")
        .plumm_seed(move |conn| seed(conn, people))
        .build()
        .await?;
    world.connect(COMPANY, TENANT, "soak").await?;
    // The initial sync first: the runs measure a daemon following changes.
    let (stop, started) = world.start_daemon().await?;
    world
        .converged(o.timeout, Duration::from_millis(20))
        .await?;
    stop.send_replace(true);
    started.wait().await?;

    // Each baseline right before its run beside the daemon, so that both
    // meet the same load from whatever else the machine runs.
    let (mut runs, mut drained) = (Vec::new(), Duration::ZERO);
    for busy in BUSY_TIMEOUTS {
        runs.push(writer(&world.settings.plumm.database, o, busy, false).await?);
        let (stop, started) = world.start_daemon().await?;
        // What the baseline committed is drained before the measured run.
        world
            .converged(o.timeout, Duration::from_millis(20))
            .await?;
        runs.push(writer(&world.settings.plumm.database, o, busy, true).await?);
        drained = drained.max(
            world
                .converged(o.timeout, Duration::from_millis(20))
                .await?,
        );
        stop.send_replace(true);
        started.wait().await?;
    }
    runs.sort_by_key(|r| (r.busy_timeout, r.daemon_running));
    Ok(WriterReport {
        options: o.clone(),
        runs,
        drained,
    })
}

fn seed(conn: &mut rusqlite::Connection, people: usize) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO users (company_id, email, first_name, last_name, role, country)
             VALUES (?1, ?2, 'Writer', ?3, 'Staff', 'GB')",
        )?;
        for i in 0..people {
            stmt.execute(rusqlite::params![
                COMPANY,
                format!("w{i}@contoso.com"),
                format!("N{i}")
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The writer on a thread of its own (SQLite blocks), as Plumm's app runs it.
async fn writer(
    path: &Path,
    o: &WriterOptions,
    busy_timeout: Duration,
    daemon_running: bool,
) -> anyhow::Result<WriterRun> {
    let (path, o): (PathBuf, WriterOptions) = (path.to_owned(), o.clone());
    let mut run =
        tokio::task::spawn_blocking(move || commit_loop(&path, &o, busy_timeout)).await??;
    run.daemon_running = daemon_running;
    Ok(run)
}

/// Commits one single-row change every 1/rate s for `duration`, each in
/// its own transaction; a commit that fails busy is counted and not retried.
fn commit_loop(
    path: &Path,
    o: &WriterOptions,
    busy_timeout: Duration,
) -> anyhow::Result<WriterRun> {
    let conn = rusqlite::Connection::open(path).context("opening Plumm's database")?;
    conn.busy_timeout(busy_timeout)?;
    let mut stmt = conn.prepare("UPDATE users SET role = ?1 WHERE id = ?2")?;
    let total = (o.rate * o.duration.as_secs_f64()).round() as usize;
    let mut rng = StdRng::seed_from_u64(busy_timeout.as_millis() as u64);
    let (mut latencies, mut busy_errors) = (Vec::with_capacity(total), 0);
    let start = Instant::now();
    for n in 0..total {
        let due = start + Duration::from_secs_f64(n as f64 / o.rate);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let id = rng.gen_range(1..=o.people as i64);
        let began = Instant::now();
        match stmt.execute(rusqlite::params![format!("Role {n}"), id]) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                busy_errors += 1;
            }
            Err(e) => return Err(e).context("a Plumm writer's commit"),
        }
        latencies.push(began.elapsed());
    }
    let elapsed = start.elapsed();
    let worst = latencies.iter().max().copied().unwrap_or_default();
    let (p50, p99) = percentiles(latencies).unwrap_or_default();
    Ok(WriterRun {
        daemon_running: false,
        busy_timeout,
        commits: total - busy_errors,
        busy_errors,
        p50,
        p99,
        worst,
        achieved_rate: total as f64 / elapsed.as_secs_f64(),
    })
}
