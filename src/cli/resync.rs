//! `entra-daemon resync`: asks the running daemon (through the state
//! database: one daemon holds `<state.db>.lock`), or, when none runs, does
//! the work itself and drains what it queued like `run --once`.
use std::io::Write as _;
use std::process::ExitCode;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::opt::ResyncArgs;
use crate::configuration::Settings;
use crate::daemon;
use crate::domain::CompanyId;
use crate::resync::report::{table, CompanyReport, Trigger};
use crate::resync::run::{Resync, RunOptions};
use crate::resync::service::ask;
use crate::support::progress::Progress;

/// Exit code when the brake held suspensions or deletions back.
pub const EXIT_HELD: u8 = 2;

pub async fn command(
    settings: Settings,
    a: ResyncArgs,
    progress_every: Duration,
) -> anyhow::Result<ExitCode> {
    if a.allow_mass_deprovision && a.company.is_none() {
        anyhow::bail!("--allow-mass-deprovision releases one company's brake: add --company ID");
    }
    let opts = RunOptions {
        trigger: Trigger::Cli,
        dry_run: a.dry_run,
        allow_mass_deprovision: a.allow_mass_deprovision,
    };
    let state = daemon::open_state(&settings)?;
    if let Some(c) = a.company {
        if state.connection(CompanyId(c))?.is_none() {
            anyhow::bail!("company {c} is not connected");
        }
    }
    let progress = super::progress::stderr(progress_every);
    let (reports, applied) = match try_lock(&settings)? {
        Some(lock) => direct(settings, a.company, opts, lock, progress.clone()).await?,
        None => (
            ask_daemon(&settings, a.company, opts, &*progress).await?,
            None,
        ),
    };
    drop(progress);
    if a.json {
        // Straight to stdout: a big plan is not copied into one string first.
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
        out.flush()?;
    } else {
        print!("{}", table(&reports));
        if let Some(line) = applied {
            println!("{line}");
        }
    }
    Ok(if reports.iter().any(|r| r.outcome == "failed") {
        ExitCode::FAILURE
    } else if reports.iter().any(|r| r.outcome == "held") {
        ExitCode::from(EXIT_HELD)
    } else {
        ExitCode::SUCCESS
    })
}

/// The daemon's lock, or `None` when a daemon holds it.
fn try_lock(settings: &Settings) -> anyhow::Result<Option<std::fs::File>> {
    Ok(daemon::try_exclusive(settings)?)
}

/// No daemon: plan and queue under the lock, then drain the queue.
async fn direct(
    settings: Settings,
    company: Option<i64>,
    opts: RunOptions,
    lock: std::fs::File,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<(Vec<CompanyReport>, Option<String>)> {
    let state = daemon::open_state(&settings)?;
    let resync = Resync {
        graph: daemon::graph_client(&settings)?,
        plumm_database: settings.plumm.database.clone(),
        policy: settings.policy.clone().fixed(),
        state: state.clone(),
        wake: None,
        progress: progress.clone(),
    };
    let conns = match company {
        Some(c) => state.connection(CompanyId(c))?.into_iter().collect(),
        None => state.connections()?,
    };
    let mut reports = Vec::new();
    for c in conns {
        reports.push(resync.company(&c, opts).await);
    }
    // `run --once` takes the lock itself; a daemon that starts in between
    // simply applies the queued changes instead.
    drop(lock);
    if opts.dry_run || reports.iter().all(|r| r.queued == 0) {
        return Ok((reports, None));
    }
    let (_tx, rx) = watch::channel(false);
    let mut run = daemon::Run::new(settings, rx);
    run.progress = progress;
    let line = match daemon::run_once(run).await {
        Ok(r) => format!(
            "applied: {} done, {} parked, {} deferred, {} left pending",
            r.done, r.parked, r.deferred, r.left_pending
        ),
        Err(daemon::StartupError::Lock(_)) => {
            "queued; the daemon that just started applies the changes".into()
        }
        Err(e) => return Err(e.into()),
    };
    Ok((reports, Some(line)))
}

/// A daemon runs: leave a request for it and wait for the answer.
async fn ask_daemon(
    settings: &Settings,
    company: Option<i64>,
    opts: RunOptions,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<CompanyReport>> {
    let state = daemon::open_state(settings)?;
    let running = || try_lock(settings).map(|l| l.is_none());
    let which = company.map_or("every connected company".to_string(), |c| {
        format!("company {c}")
    });
    progress.finish(&format!(
        "resync of {which} handed to the running daemon; waiting for its answer \
         (the daemon's log shows its progress)"
    ));
    let reports = ask(&state, company.map(CompanyId), opts, running).await?;
    let queued: u64 = reports.iter().map(|r| r.queued).sum();
    let applies = if opts.dry_run {
        String::new()
    } else {
        format!("; {queued} changes queued, which the daemon applies now")
    };
    progress.finish(&format!(
        "the daemon answered: {} companies planned{applies}",
        reports.len()
    ));
    Ok(reports)
}
