//! The CLI's commands: each opens what it needs, does one thing, and says
//! what happened in words an operator can act on.
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::configuration::Settings;
use crate::domain::{CompanyId, TenantId};
use crate::startup;
use crate::store::{time_text, AuditFilter, AuditRow};

/// `run --once` exit code when some users were parked or must be retried.
pub const EXIT_INCOMPLETE: u8 = 2;

pub async fn run(
    settings: Settings,
    config_path: std::path::PathBuf,
    once: bool,
) -> anyhow::Result<ExitCode> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (settings_tx, settings_rx) = watch::channel(Arc::new(settings.clone()));
    let resync = Arc::new(tokio::sync::Notify::new());
    let signals = tokio::spawn(handle_signals(
        shutdown_tx,
        settings_tx,
        config_path,
        resync.clone(),
    ));
    let report = if once {
        startup::run(settings, once, shutdown_rx, Some(settings_rx)).await
    } else {
        match startup::start_with(settings, shutdown_rx, Some(settings_rx), resync).await {
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
    Ok(if report.failed() {
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        ExitCode::SUCCESS
    })
}

/// SIGTERM/SIGINT drain and stop; SIGHUP re-reads the configuration: a
/// valid one's [sync] policy and [mapping] apply to the next change
/// processed (paths, [entra], worker pools, retry timings and the secret on
/// restart); an invalid one is refused with the reason and the old one stays.
/// SIGUSR1 resyncs every connected company (see `resync`).
async fn handle_signals(
    shutdown: watch::Sender<bool>,
    settings: watch::Sender<Arc<Settings>>,
    config_path: std::path::PathBuf,
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
            _ = hup.recv() => match crate::service::reload(&config_path) {
                Ok(new) => {
                    let old = settings.borrow().clone();
                    if new.plumm.database != old.plumm.database
                        || new.state.database != old.state.database
                        || new.entra.client_id != old.entra.client_id
                        || new.entra.graph_base_url != old.entra.graph_base_url
                        || new.entra.authority_host != old.entra.authority_host
                    {
                        tracing::warn!("configuration reloaded; database paths and [entra] endpoints take effect on restart");
                    } else {
                        tracing::info!("configuration reloaded");
                    }
                    settings.send_replace(Arc::new(new));
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
    let (plumm, state) = startup::migrate(settings)?;
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
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant)?;
    let queued = startup::connect(settings, CompanyId(company), &tenant, verify, "cli").await?;
    println!(
        "company {company} connected to tenant {tenant}; {queued} users queued for the initial sync"
    );
    if queued == 0 {
        println!("note: Plumm has no users with company_id {company}; check the company id if that is unexpected");
    }
    Ok(())
}

pub fn disconnect(settings: &Settings, company: i64) -> anyhow::Result<ExitCode> {
    match startup::disconnect(settings, CompanyId(company), "cli")? {
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

pub struct AuditArgs {
    pub company: Option<i64>,
    pub email: Option<String>,
    pub failed: bool,
    pub since: Option<String>,
    pub limit: usize,
    pub json: bool,
    /// Only the summary rows of full resyncs.
    pub runs: bool,
}

pub fn audit(settings: &Settings, a: AuditArgs) -> anyhow::Result<()> {
    let state = startup::open_state(settings)?;
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

/// A plain-text table, one row per audit entry, widest-first columns last.
pub fn audit_table(rows: &[AuditRow]) -> String {
    if rows.is_empty() {
        return "no audit rows match\n".into();
    }
    let mut out = format!(
        "{:<24} {:>7} {:>6} {:<28} {:<10} {:<8} {:>4}  {}\n",
        "time", "company", "user", "email", "action", "outcome", "http", "details"
    );
    for r in rows {
        let mut details = Vec::new();
        if let Some(c) = &r.error_code {
            details.push(c.clone());
        }
        if let Some(m) = &r.error_message {
            details.push(m.clone());
        }
        if let Some(d) = &r.detail {
            details.push(d.clone());
        }
        if let Some(id) = &r.request_id {
            details.push(format!("request-id {id}"));
        }
        out.push_str(&format!(
            "{:<24} {:>7} {:>6} {:<28} {:<10} {:<8} {:>4}  {}\n",
            r.at,
            r.company_id.map(|c| c.to_string()).unwrap_or_default(),
            r.plumm_user_id.map(|c| c.to_string()).unwrap_or_default(),
            r.email.clone().unwrap_or_default(),
            r.action,
            r.outcome,
            r.http_status.map(|c| c.to_string()).unwrap_or_default(),
            details.join(" | ")
        ));
    }
    out
}
