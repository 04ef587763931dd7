//! The CLI's commands: each opens what it needs, does one thing, and says
//! what happened in words an operator can act on.
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::configuration::Settings;
use crate::daemon;
use crate::domain::{CompanyId, TenantId};
use crate::status::audit::audit_table;
use crate::store::{time_text, AuditFilter};

use super::opt::AuditArgs;
use super::EXIT_INCOMPLETE;

pub async fn run(
    settings: Settings,
    config_path: std::path::PathBuf,
    once: bool,
) -> anyhow::Result<ExitCode> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (policy_tx, policy_rx) = watch::channel(Arc::new(settings.policy.clone()));
    let resync = Arc::new(tokio::sync::Notify::new());
    let signals = tokio::spawn(handle_signals(
        shutdown_tx,
        policy_tx,
        (settings.clone(), config_path),
        resync.clone(),
    ));
    let run = daemon::Run {
        settings,
        shutdown: shutdown_rx,
        policy: Some(policy_rx),
        resync_signal: resync,
        progress: Arc::new(crate::support::progress::Silent),
    };
    let report = if once {
        daemon::run_once(run).await
    } else {
        match daemon::start(run).await {
            Ok(started) => started.wait().await,
            Err(e) => Err(e),
        }
    };
    signals.abort();
    let report = report?;
    tracing::info!(
        done = report.done,
        parked = report.parked,
        deferred = report.deferred,
        "entra-daemon stopped"
    );
    // `run --once` says whether everything converged; a service that was
    // asked to stop has done what it was asked (systemd would otherwise mark
    // every ordinary stop or restart as a failure): what is left stays
    // pending for the next start, and `status` shows it.
    Ok(if once && report.failed() {
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        ExitCode::SUCCESS
    })
}

/// SIGTERM/SIGINT drain and stop; SIGHUP re-reads the configuration: a
/// valid one's policy ([`crate::engine::Policy`], the reload contract) is
/// sent to every consumer; an invalid one is refused with the reason and
/// the old one stays. SIGUSR1 resyncs every connected company.
async fn handle_signals(
    shutdown: watch::Sender<bool>,
    policy: watch::Sender<Arc<crate::engine::Policy>>,
    (running, config_path): (Settings, std::path::PathBuf),
    resync: Arc<tokio::sync::Notify>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            // A storm of signals leaves one stored permit: the resync
            // service queues at most one more run per company anyway.
            _ = usr1.recv() => resync.notify_one(),
            _ = hup.recv() => match daemon::service::reload(&config_path, &running) {
                Ok((new, fixed)) if fixed.is_empty() => {
                    tracing::info!("configuration reloaded");
                    policy.send_replace(Arc::new(new));
                }
                Ok((new, fixed)) => {
                    tracing::warn!("configuration reloaded; {} changed and take(s) effect on restart", fixed.join(", "));
                    policy.send_replace(Arc::new(new));
                }
                Err(e) => tracing::error!("configuration NOT reloaded, the previous one stays in force: {e}"),
            },
        }
    }
    tracing::info!("stopping: no new work is taken; in-flight calls may finish");
    let _ = shutdown.send(true);
    Ok(())
}

pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let (plumm, state) = daemon::migrate(settings)?;
    let say = |what: &str, v: &[i64]| {
        if v.is_empty() {
            println!("{what}: up to date");
        } else {
            println!("{what}: applied migration(s) {v:?}");
        }
    };
    say(
        &format!("Plumm database {}", settings.plumm.database.display()),
        &plumm,
    );
    say(
        &format!("state database {}", settings.state.database.display()),
        &state,
    );
    Ok(())
}

pub async fn connect(
    settings: &Settings,
    company: i64,
    tenant: &str,
    verify: bool,
    progress_every: std::time::Duration,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant)?;
    let progress = super::progress::stderr(progress_every);
    let company_id = CompanyId(company);
    let queued = daemon::connect(settings, company_id, &tenant, verify, "cli", &*progress).await?;
    drop(progress);
    println!(
        "company {company} connected to tenant {tenant}; {queued} users queued for the initial sync"
    );
    if queued == 0 {
        println!("note: Plumm has no users with company_id {company}; check the company id if that is unexpected");
    }
    Ok(())
}

pub fn disconnect(settings: &Settings, company: i64) -> anyhow::Result<ExitCode> {
    match daemon::disconnect(settings, CompanyId(company), "cli")? {
        Some(n) => {
            println!("company {company} disconnected; {n} pending changes dropped; nothing was deleted in Entra");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("company {company} is not connected");
            Ok(ExitCode::from(1))
        }
    }
}

pub fn audit(settings: &Settings, a: AuditArgs) -> anyhow::Result<()> {
    let state = daemon::open_state(settings)?;
    if a.runs {
        // Full resyncs only: one summary row per run.
        let rows = state.resync_runs(a.company.map(CompanyId), a.limit)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            print!("{}", audit_table(&rows));
        }
        return Ok(());
    }
    let since = match a.since {
        Some(s) => {
            let d = humantime::parse_duration(&s).with_context(|| {
                format!("--since '{s}': expected a duration such as 30m, 24h or 7d")
            })?;
            let cutoff = chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
                .context("--since reaches back before any date this log can hold")?;
            Some(time_text(cutoff))
        }
        None => None,
    };
    let rows = state.audit(&AuditFilter {
        company: a.company.map(CompanyId),
        email: a.email,
        user: None,
        failed_only: a.failed,
        since,
        limit: Some(a.limit),
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", audit_table(&rows));
    }
    Ok(())
}
