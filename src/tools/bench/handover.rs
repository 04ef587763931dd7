//! The hand-over from Plumm's outbox to the state database: what the
//! durable commit costs per change (against the same commit without the
//! fsync, in the same run), and how long the daemon holds Plumm's write
//! lock while a writer of Plumm's keeps writing beside it.
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::percentiles;
use crate::engine::ingest::{changes, BATCH};
use crate::store::migrate::{migrate_plumm, migrate_state, PLUMM_USERS_FIXTURE};
use crate::store::{PlummDb, StateDb};
use crate::support::scratch;

pub(super) struct Handover {
    pub changes: usize,
    /// Per batch of `BATCH` changes: the state commit, fsynced.
    pub durable: Vec<Duration>,
    /// The same commit without the fsync (the baseline).
    pub plain: Vec<Duration>,
    /// Per batch: the delete in Plumm's file (Plumm's write lock held).
    pub consume: Vec<Duration>,
    /// A Plumm writer's single-row updates while the hand-over runs.
    pub writer: Vec<Duration>,
}

fn databases(dir: &Path, name: &str, users: usize) -> anyhow::Result<(PlummDb, StateDb)> {
    let plumm_path = dir.join(format!("{name}-plumm.db"));
    let mut plumm = PlummDb::open(&plumm_path)?;
    plumm.connection().execute_batch(PLUMM_USERS_FIXTURE)?;
    migrate_plumm(plumm.connection())?;
    let tx = plumm.connection().transaction()?;
    for i in 0..users {
        tx.execute(
            "INSERT INTO users (company_id, email, first_name, last_name) VALUES (1, ?1, 'B', 'P')",
            [format!("p{i}@contoso.com")],
        )?;
    }
    tx.commit()?;
    let mut state = crate::store::open(&dir.join(format!("{name}-state.db")))?;
    migrate_state(&mut state)?;
    Ok((plumm, StateDb::from_connection(state)))
}

/// Moves `users` outbox rows across in batches, as the ingest does.
pub(super) fn run(users: usize) -> anyhow::Result<Handover> {
    let scratch = scratch("entra-daemon-bench-handover")?;
    let mut h = Handover {
        changes: users,
        durable: Vec::new(),
        plain: Vec::new(),
        consume: Vec::new(),
        writer: Vec::new(),
    };
    // Baseline first: the same rows, the commit without its fsync.
    let (mut plumm, state) = databases(scratch.path(), "plain", users)?;
    (h.plain, _) = drain(&mut plumm, &state, false)?;

    let (mut plumm, state) = databases(scratch.path(), "durable", users)?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = spawn_writer(&scratch.path().join("durable-plumm.db"), stop.clone())?;
    (h.durable, h.consume) = drain(&mut plumm, &state, true)?;
    stop.store(true, Ordering::Relaxed);
    h.writer = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the Plumm writer thread panicked"))??;
    Ok(h)
}

/// Moves the whole outbox across as the ingest does: each batch's state
/// commit (fsynced with `durable`, as the ingest's is), then the delete in
/// Plumm's file. Returns how long each of the two took per batch.
fn drain(
    plumm: &mut PlummDb,
    state: &StateDb,
    durable: bool,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut commits, mut consumes) = (Vec::new(), Vec::new());
    let mut cursor = 0;
    loop {
        let rows = plumm.read_outbox(cursor, BATCH)?;
        let Some(last) = rows.last().map(|r| r.id) else {
            return Ok((commits, consumes));
        };
        let t = Instant::now();
        state.enqueue(&changes(&rows), durable.then_some(last))?;
        commits.push(t.elapsed());
        let t = Instant::now();
        plumm.consume_outbox(last)?;
        consumes.push(t.elapsed());
        cursor = last;
    }
}

/// Plumm's app: one-row updates in their own transactions, each with the
/// busy timeout any concurrent SQLite writer needs; returns their latencies.
fn spawn_writer(
    path: &Path,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<Vec<Duration>>>> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut i = 0i64;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let t = Instant::now();
            conn.execute(
                "UPDATE users SET role = ?1 WHERE id = ?2",
                rusqlite::params![format!("r{i}"), 1 + i % 1000],
            )?;
            out.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(out)
    }))
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn spread(xs: &[Duration]) -> String {
    let max = xs.iter().max().copied().unwrap_or_default();
    match percentiles(xs.to_vec()) {
        Some((p50, p99)) => format!("p50 {}, p99 {}, max {}", us(p50), us(p99), us(max)),
        None => "no sample".into(),
    }
}

pub(super) fn report(h: &Handover) {
    let total = |xs: &[Duration]| xs.iter().sum::<Duration>().as_secs_f64();
    let per = |xs: &[Duration]| 1e6 * total(xs) / h.changes.max(1) as f64;
    println!(
        "\n== 5. Hand-over from Plumm's outbox ({} changes, batches of {BATCH})",
        h.changes
    );
    println!(
        "   state commit per change: durable (fsynced) {:.1} µs | without fsync {:.1} µs | ratio {:.2}",
        per(&h.durable),
        per(&h.plain),
        total(&h.durable) / total(&h.plain).max(1e-9)
    );
    println!("   durable commit per batch: {}", spread(&h.durable));
    println!(
        "   Plumm's write lock held by the daemon per batch (outbox delete): {}",
        spread(&h.consume)
    );
    println!(
        "   a Plumm writer beside it ({} one-row updates, busy timeout 5 s): {}",
        h.writer.len(),
        spread(&h.writer)
    );
}
