//! `entra-daemon resync`: asks the running daemon (through the state
//! database: one daemon holds `<state.db>.lock`), or, when none runs, does
//! the work itself and drains what it queued like `run --once`.
use std::io::Write as _;
use std::process::ExitCode;

use tokio::sync::watch;

use super::opt::ResyncArgs;
use crate::configuration::Settings;
use crate::daemon;
use crate::domain::CompanyId;
use crate::resync::report::{table, CompanyReport, Trigger};
use crate::resync::run::{Resync, RunOptions};
use crate::resync::service::ask;

/// Exit code when the brake held suspensions or deletions back.
pub const EXIT_HELD: u8 = 2;

pub async fn command(settings: Settings, a: ResyncArgs) -> anyhow::Result<ExitCode> {
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
    let (reports, applied) = match try_lock(&settings)? {
        Some(lock) => direct(settings, a.company, opts, lock).await?,
        None => (ask_daemon(&settings, a.company, opts).await?, None),
    };
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
) -> anyhow::Result<(Vec<CompanyReport>, Option<String>)> {
    let state = daemon::open_state(&settings)?;
    let resync = Resync {
        graph: daemon::graph_client(&settings)?,
        plumm_database: settings.plumm.database.clone(),
        policy: settings.policy.clone().fixed(),
        state: state.clone(),
        wake: None,
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
    let line = match daemon::run_once(daemon::Run::new(settings, rx)).await {
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
) -> anyhow::Result<Vec<CompanyReport>> {
    let state = daemon::open_state(settings)?;
    let running = || try_lock(settings).map(|l| l.is_none());
    let reports = ask(&state, company.map(CompanyId), opts, running).await?;
    Ok(reports)
}
