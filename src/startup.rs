//! Wires settings into a running daemon: databases, Graph client, watcher,
//! dispatcher. Also the one-shot operations the CLI offers.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::configuration::Settings;
use crate::domain::{CompanyId, TenantId};
use crate::engine::ingest::spawn_watcher;
use crate::engine::matching::Matcher;
use crate::engine::{Converger, Dispatcher, Ingestor, RunReport};
use crate::graph::{request, GraphClient, TokenProvider};
use crate::pacing::{Pacer, Priority};
use crate::store::migrate::{is_current, migrate_plumm, migrate_state};
use crate::store::{AuditRecord, Outcome, PlummDb, StateDb, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] crate::configuration::ConfigError),
    #[error("{0} database is not migrated to this version: run `entra-daemon migrate` first")]
    NotMigrated(&'static str),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("cannot start the outbox watcher: {0}")]
    Thread(std::io::Error),
    #[error("cannot read the address the connect server is bound to: {0}")]
    BoundAddress(std::io::Error),
    #[error("{0}")]
    Lock(String),
    #[error("tenant {tenant} could not be verified: {reason}")]
    Verify { tenant: TenantId, reason: String },
}

/// Applies missing migrations to both databases.
pub fn migrate(settings: &Settings) -> Result<(Vec<i64>, Vec<i64>), StartupError> {
    let mut plumm = PlummDb::open(&settings.plumm.database)?;
    let p = migrate_plumm(plumm.connection())?;
    let mut state = crate::store::open(&settings.state.database)?;
    let s = migrate_state(&mut state)?;
    Ok((p, s))
}

pub fn open_state(settings: &Settings) -> Result<Arc<StateDb>, StartupError> {
    let conn = crate::store::open(&settings.state.database)?;
    if !is_current(&conn, false)? {
        return Err(StartupError::NotMigrated("the state"));
    }
    Ok(Arc::new(StateDb::from_connection(conn)))
}

pub fn open_plumm(settings: &Settings) -> Result<PlummDb, StartupError> {
    let mut plumm = PlummDb::open(&settings.plumm.database)?;
    if !is_current(plumm.connection(), true)? {
        return Err(StartupError::NotMigrated("Plumm's"));
    }
    Ok(plumm)
}

pub fn graph_client(settings: &Settings) -> Result<Arc<GraphClient>, StartupError> {
    let credential = settings.credential()?;
    let http = GraphClient::http_client().map_err(|e| StartupError::Http(e.to_string()))?;
    let tokens = TokenProvider::with_credential(
        http.clone(),
        settings.entra.authority_host.clone(),
        settings.entra.client_id.clone(),
        credential,
    );
    let pacing = settings.pacing.clone();
    let pacer = Pacer::spawn(pacing.app_limits(), Box::new(move |t| pacing.limits_for(t)));
    Ok(Arc::new(GraphClient::new(
        http,
        &settings.entra.graph_base_url,
        tokens,
        settings.entra.request_timeout,
        pacer,
        settings.sync.batch,
    )))
}

/// Only one daemon (or `run --once`) may work on a state database at a
/// time: two would give one user two workers. The lock is released when
/// the process ends, however it ends.
fn exclusive(settings: &Settings) -> Result<std::fs::File, StartupError> {
    match try_exclusive(settings)? {
        Some(file) => Ok(file),
        None => Err(StartupError::Lock(format!(
            "another entra-daemon is already running on {} (lock {}.lock is held)",
            settings.state.database.display(),
            settings.state.database.display()
        ))),
    }
}

/// The daemon lock if it is free (`None` while a daemon holds it).
pub fn try_exclusive(settings: &Settings) -> Result<Option<std::fs::File>, StartupError> {
    let mut path = settings.state.database.clone().into_os_string();
    path.push(".lock");
    let lock_error = |e: std::io::Error| {
        StartupError::Lock(format!("{}: {e}", std::path::Path::new(&path).display()))
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_error)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(lock_error(e)),
    }
}

/// Runs the daemon until `shutdown` turns true; with `once`, until every
/// pending change has been tried once, then returns what happened.
pub async fn run(
    settings: Settings,
    once: bool,
    shutdown: watch::Receiver<bool>,
    settings_rx: Option<watch::Receiver<Arc<Settings>>>,
) -> Result<RunReport, StartupError> {
    run_with(
        settings,
        once,
        shutdown,
        settings_rx,
        Arc::new(Notify::new()),
        None,
    )
    .await
}

/// [`run`], with `resync_signal` resyncing every connected company each
/// time it is notified (`SIGUSR1`).
pub async fn run_with(
    settings: Settings,
    once: bool,
    shutdown: watch::Receiver<bool>,
    settings_rx: Option<watch::Receiver<Arc<Settings>>>,
    resync_signal: Arc<Notify>,
    graph: Option<Arc<GraphClient>>,
) -> Result<RunReport, StartupError> {
    let _lock = exclusive(&settings)?;
    let state = open_state(&settings)?;
    let plumm = open_plumm(&settings)?;
    let graph = match graph {
        Some(g) => g,
        None => graph_client(&settings)?,
    };
    let settings = Arc::new(settings);
    let (_keep, rx) = watch::channel(settings.clone());
    let settings_rx = settings_rx.unwrap_or(rx);
    let converger = Arc::new(Converger {
        state: state.clone(),
        plumm: std::sync::Mutex::new(open_plumm(&settings)?),
        graph: graph.clone(),
        settings: settings_rx,
    });
    let wake = Arc::new(Notify::new());
    let dispatcher = Dispatcher {
        converger,
        state: state.clone(),
        realtime_slots: settings.sync.realtime_workers_per_tenant,
        bulk_slots: settings.sync.bulk_workers_per_tenant,
        retry: settings.sync.retry,
        wake: wake.clone(),
        drain_timeout: settings.sync.drain_timeout,
        probes: settings.sync.probes,
    };
    let mut ingestor = Ingestor::new(plumm, state.clone());
    // Outbox rows recorded before a crash but not yet removed from Plumm's file.
    ingestor.consume_recorded()?;
    if once {
        ingestor.ingest_available()?;
        return Ok(dispatcher.run(shutdown, true).await);
    }
    let _retention = crate::store::retention::spawn(
        state.clone(),
        dispatcher.converger.settings.clone(),
        shutdown.clone(),
    );
    let _supervision = crate::service::supervise(state.clone(), shutdown.clone());
    let resyncs = crate::resync::Service::new(crate::resync::Resync {
        settings: settings.clone(),
        state: state.clone(),
        graph,
        wake: Some(wake.clone()),
    });
    let resync_loop = tokio::spawn(crate::resync::service::serve(
        resyncs,
        resync_signal,
        settings.sync.reconcile_schedule.clone(),
        shutdown.clone(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = spawn_watcher(ingestor, settings.plumm.poll_interval, wake, stop.clone())
        .map_err(StartupError::Thread)?;
    tracing::info!(
        companies = state.connections()?.len(),
        pending = state.pending_total()?,
        "entra-daemon running"
    );
    // The databases are open and migrated, and `start` bound the HTTP port
    // before spawning this task.
    crate::service::ready();
    let report = dispatcher.run(shutdown, false).await;
    let _ = resync_loop.await;
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || watcher.join()).await;
    Ok(report)
}

/// The daemon as `entra-daemon run` starts it: [`run`], plus the connect
/// server when `[http]` is configured.
pub struct Started {
    /// Where the connect server listens (known even for port 0).
    pub http: Option<crate::http::HttpServer>,
    pub daemon: tokio::task::JoinHandle<Result<RunReport, StartupError>>,
}

impl Started {
    /// Waits for the daemon to stop, then stops the connect server.
    pub async fn wait(self) -> Result<RunReport, StartupError> {
        let report = self.daemon.await;
        if let Some(http) = self.http {
            http.stop().await;
        }
        match report {
            Ok(r) => r,
            Err(e) => Err(StartupError::Http(format!("the daemon task failed: {e}"))),
        }
    }
}

/// Starts the connect server (if configured), then [`run`] in a task; both
/// stop when `shutdown` turns true.
pub async fn start(
    settings: Settings,
    shutdown: watch::Receiver<bool>,
    settings_rx: Option<watch::Receiver<Arc<Settings>>>,
) -> Result<Started, StartupError> {
    start_with(settings, shutdown, settings_rx, Arc::new(Notify::new())).await
}

/// [`start`], with the `SIGUSR1` resync trigger (see [`run_with`]).
pub async fn start_with(
    settings: Settings,
    shutdown: watch::Receiver<bool>,
    settings_rx: Option<watch::Receiver<Arc<Settings>>>,
    resync_signal: Arc<Notify>,
) -> Result<Started, StartupError> {
    // Refuse early, before binding anything, if the databases are not ready.
    open_state(&settings)?;
    // One Graph client (one pacer, one token cache) for the daemon and
    // the connect server: their requests share the tenants' budgets.
    let graph = graph_client(&settings)?;
    let http =
        crate::http::start(Arc::new(settings.clone()), shutdown.clone(), graph.clone()).await?;
    let daemon = tokio::spawn(run_with(
        settings,
        false,
        shutdown,
        settings_rx,
        resync_signal,
        Some(graph),
    ));
    Ok(Started { http, daemon })
}

/// Proves the app can act in `tenant`: a token, then one cheap Graph read.
/// A passing fault (5xx, 429, a dropped connection) is retried as every
/// Graph call is; a refusal is reported at once.
pub async fn verify_tenant(
    graph: &GraphClient,
    retry: &crate::engine::retry::RetrySettings,
    tenant: &TenantId,
) -> Result<(), StartupError> {
    use crate::engine::retry::{send_with_retry, CallFailed, Target};
    let verify = |reason: String| StartupError::Verify {
        tenant: tenant.clone(),
        reason,
    };
    let target = Target {
        tenant,
        priority: Priority::Realtime,
        retry_not_found: false,
    };
    let sent = match send_with_retry(graph, retry, target, &request::probe(), |_, _, _| {}).await {
        Ok(_) => return Ok(()),
        Err((CallFailed::NoAnswer(e), _)) => return Err(verify(e.to_string())),
        Err((CallFailed::Graph { sent, .. }, _)) => sent,
    };
    let err = sent.reply.error().unwrap_or_default();
    Err(verify(format!(
        "Graph answered {} {}: {} (request-id {})",
        sent.reply.status,
        err.code,
        err.message,
        sent.reply.request_id.unwrap_or_default()
    )))
}

/// Records a connection and queues the company's users for an initial sync.
pub async fn connect(
    settings: &Settings,
    company: CompanyId,
    tenant: &TenantId,
    verify: bool,
    by: &str,
) -> Result<usize, StartupError> {
    let state = open_state(settings)?;
    let graph = match verify {
        true => {
            let graph = graph_client(settings)?;
            verify_tenant(&graph, &settings.sync.retry, tenant).await?;
            Some(graph)
        }
        false => None,
    };
    let queued = record_connection(settings, &state, graph.as_deref(), company, tenant, by).await?;
    let mut r = AuditRecord::new("connect", Outcome::Ok);
    r.company = Some(company);
    r.tenant = Some(tenant.clone());
    r.detail = Some(format!(
        "connected by {by}{}; {queued} users queued for the initial sync",
        if verify {
            " (token and Graph read verified)"
        } else {
            ""
        }
    ));
    state.append_audit(&r)?;
    Ok(queued)
}

/// Stops syncing a company; returns the number of pending changes dropped,
/// or `None` when it was not connected.
pub fn disconnect(
    settings: &Settings,
    company: CompanyId,
    by: &str,
) -> Result<Option<usize>, StartupError> {
    let state = open_state(settings)?;
    let tenant = state.connection(company)?.map(|c| c.tenant);
    let dropped = state.disconnect(company)?;
    if let Some(n) = dropped {
        let mut r = AuditRecord::new("disconnect", Outcome::Ok);
        r.company = Some(company);
        r.tenant = tenant;
        r.detail = Some(format!(
            "disconnected by {by}; {n} pending changes dropped; nothing deleted in Entra"
        ));
        state.append_audit(&r)?;
    }
    Ok(dropped)
}

/// Records the connection and queues the initial sync, in one state
/// transaction. With a Graph client, one listing of the tenant first links
/// the users Entra already has and marks the rest absent, instead of a
/// lookup per user; without one (`--no-verify`), workers look each user up.
pub async fn record_connection(
    settings: &Settings,
    state: &StateDb,
    graph: Option<&GraphClient>,
    company: CompanyId,
    tenant: &TenantId,
    by: &str,
) -> Result<usize, StartupError> {
    let plumm = std::sync::Mutex::new(open_plumm(settings)?);
    if let Some(other) = state.tenant_holder(tenant)?.filter(|c| *c != company) {
        return Err(StoreError::Conflict(format!(
            "tenant {tenant} is already connected to company {other}; disconnect it there first"
        ))
        .into());
    }
    let listed = match graph {
        Some(graph) => {
            let m = Matcher {
                graph,
                state,
                plumm: &plumm,
                retry: &settings.sync.retry,
                mapping: &settings.mapping,
            }
            .run(company, tenant)
            .await
            .map_err(|e| StartupError::Verify {
                tenant: tenant.clone(),
                reason: e.to_string(),
            })?;
            Some(m.linked)
        }
        None => None,
    };
    let plumm = plumm
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let initial = crate::engine::ingest::initial_sync(&plumm, company, listed.as_ref())?;
    state.connect(company, tenant, Some(by), &initial)?;
    Ok(initial.len())
}
