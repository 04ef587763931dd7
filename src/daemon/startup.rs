//! Builds the daemon from its settings and runs it: the lock, the
//! databases, the Graph client, the watcher, the dispatcher, the resync
//! service, the connect server and the background jobs.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::configuration::Settings;
use crate::connections::{verify_tenant, ConnectError, Connections, Proof};
use crate::domain::{CompanyId, TenantId};
use crate::engine::ingest::spawn_watcher;
use crate::engine::{Converger, Dispatcher, Ingestor, MembershipBatcher, PolicyRx, RunReport};
use crate::graph::{GraphClient, TokenProvider};
use crate::http::health::Ops;
use crate::pacing::Pacer;
use crate::store::migrate::{is_current, migrate_plumm, migrate_state};
use crate::store::plumm_schema::refresh_triggers;
use crate::store::{PlummDb, StateDb, StoreError};
use crate::support::progress::{Periodic, Progress};

/// How often the daemon logs how far a long resync got: often enough that
/// the journal shows it is moving, rarely enough not to drown it.
const RESYNC_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

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
    #[error(transparent)]
    Serve(#[from] crate::http::ServeError),
    #[error("the daemon task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Lock(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
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

/// Plumm's table as it is now: the outbox triggers rebuilt if Plumm added
/// or dropped a column, and `mapping` refused if it reads a column the
/// table does not have (the error lists those it has). At start and reload.
pub fn plumm_columns(
    plumm: &mut PlummDb,
    policy: &crate::engine::Policy,
) -> Result<Vec<String>, StartupError> {
    let columns = refresh_triggers(plumm.connection())?;
    policy
        .mapping
        .check_columns(&columns)
        .map_err(crate::configuration::ConfigError::from)?;
    policy
        .groups
        .check_columns(&columns)
        .map_err(crate::configuration::ConfigError::from)?;
    Ok(columns)
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
    let slow_start = pacing.slow_start;
    let pacer = Pacer::spawn(
        pacing.app_limits(),
        Box::new(move |t| pacing.limits_for(t)),
        slow_start,
    );
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

/// What running the daemon is given by its caller: the settings, when to
/// stop, where the policy in force comes from, and what asks for a resync.
pub struct Run {
    pub settings: Settings,
    /// Turns true to stop (a drain); the caller owns the sender.
    pub shutdown: watch::Receiver<bool>,
    /// The reloadable policy (`SIGHUP`); `None`: the settings' own, fixed.
    pub policy: Option<PolicyRx>,
    /// Each notification resyncs every connected company (`SIGUSR1`).
    pub resync_signal: Arc<Notify>,
    /// Where a `--once` drain counts the changes it finished.
    pub progress: Arc<dyn Progress>,
}

impl Run {
    pub fn new(settings: Settings, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            settings,
            shutdown,
            policy: None,
            resync_signal: Arc::new(Notify::new()),
            progress: Arc::new(crate::support::progress::Silent),
        }
    }

    fn policy(&self) -> PolicyRx {
        match &self.policy {
            Some(rx) => rx.clone(),
            None => self.settings.policy.clone().fixed(),
        }
    }
}

/// Drains what is pending, trying every change once (or until `shutdown`),
/// and returns what happened (`run --once`, a resync without a daemon).
pub async fn run_once(run: Run) -> Result<RunReport, StartupError> {
    run_with(run, true, None).await
}

/// Runs the daemon until `shutdown` turns true.
pub async fn run(run: Run) -> Result<RunReport, StartupError> {
    run_with(run, false, None).await
}

/// [`run`], or with `once` [`run_once`]; `graph` is the client to share
/// with the connect server (built here when `None`).
async fn run_with(
    run: Run,
    once: bool,
    graph: Option<Arc<GraphClient>>,
) -> Result<RunReport, StartupError> {
    let settings = &run.settings;
    let _lock = exclusive(settings)?;
    let state = open_state(settings)?;
    let mut plumm = open_plumm(settings)?;
    let policy = run.policy();
    let checked = policy.borrow().clone();
    plumm_columns(&mut plumm, &checked)?;
    let graph = match graph {
        Some(g) => g,
        None => graph_client(settings)?,
    };
    let (wake, batch_wake) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let converger = Arc::new(Converger {
        state: state.clone(),
        plumm: std::sync::Mutex::new(open_plumm(settings)?),
        graph: graph.clone(),
        policy: policy.clone(),
        group_names: Default::default(),
        batch_wake: batch_wake.clone(),
    });
    let batcher = Arc::new(MembershipBatcher {
        state: state.clone(),
        graph: graph.clone(),
        policy: policy.clone(),
        wake: batch_wake,
        dispatch: wake.clone(),
        wait: settings.sync.membership_batch_wait,
    });
    let dispatcher = Dispatcher {
        converger,
        state: state.clone(),
        realtime_slots: settings.sync.realtime_workers_per_tenant,
        bulk_slots: settings.sync.bulk_workers_per_tenant,
        wake: wake.clone(),
        drain_timeout: settings.sync.drain_timeout,
        probes: settings.sync.probes,
        progress: run.progress.clone(),
    };
    // Before any outbox row is read or removed: the cursor may move.
    let owed = super::handover::check(&mut plumm, &state, once)?;
    let mut ingestor = Ingestor::new(plumm, state.clone());
    // Outbox rows recorded before a crash but not yet removed from Plumm's file.
    ingestor.consume_recorded()?;
    let shutdown = run.shutdown.clone();
    if once {
        // A daemon run from cron must not leave the missed changes (a
        // suspension among them) to a `run` that may never come. The
        // request stays queued: a later daemon repeats it, harmlessly.
        if owed {
            handover_resync(&run, &state, &graph, &policy).await?;
        }
        ingestor.ingest_available()?;
        ingestor.consume_recorded()?;
        crate::engine::scheduler::queue_due(&state, &wake)?;
        return Ok(batcher.run_once(&dispatcher, shutdown).await);
    }
    let retention_policy = policy.clone();
    let _retention = crate::store::retention::spawn(
        state.clone(),
        move || retention_policy.borrow().audit_retention,
        shutdown.clone(),
    );
    let _supervision = super::service::supervise(state.clone(), shutdown.clone());
    let _checkpoints =
        crate::store::checkpoint::spawn(&settings.state.database, &state, shutdown.clone())?;
    let _scheduler = crate::engine::scheduler::spawn(
        state.clone(),
        wake.clone(),
        settings.sync.schedule_check_interval,
        shutdown.clone(),
    );
    let batches = tokio::spawn({
        let (b, stop) = (batcher.clone(), shutdown.clone());
        async move { b.run(stop).await }
    });
    let resyncs = crate::resync::Service::new(crate::resync::Resync {
        plumm_database: settings.plumm.database.clone(),
        policy,
        state: state.clone(),
        graph,
        wake: Some(wake.clone()),
        progress: Arc::new(Periodic::new(RESYNC_PROGRESS_EVERY, |line: &str| {
            tracing::info!("{line}")
        })),
    });
    let resync_loop = tokio::spawn(crate::resync::service::serve(
        resyncs,
        run.resync_signal.clone(),
        settings.resync.reconcile_schedule.clone(),
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
    // The databases are open and migrated, and `start` bound the HTTP ports
    // before spawning this task.
    super::service::ready();
    let report = dispatcher.run(shutdown, false).await;
    let _ = resync_loop.await;
    let _ = batches.await;
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || watcher.join()).await;
    Ok(report)
}

/// Resyncs every connected company after a hand-over check found a
/// database older than the other (`run --once`; the daemon's resync loop
/// does it otherwise).
async fn handover_resync(
    run: &Run,
    state: &Arc<StateDb>,
    graph: &Arc<GraphClient>,
    policy: &PolicyRx,
) -> Result<(), StartupError> {
    let resync = crate::resync::Resync {
        plumm_database: run.settings.plumm.database.clone(),
        policy: policy.clone(),
        state: state.clone(),
        graph: graph.clone(),
        wake: None,
        progress: run.progress.clone(),
    };
    let opts = crate::resync::RunOptions {
        trigger: crate::resync::Trigger::Handover,
        dry_run: false,
        allow_mass_deprovision: false,
    };
    for conn in state.connections()? {
        let report = resync.company(&conn, opts).await;
        tracing::info!(company = %conn.company, "hand-over resync: {}", report.summary());
    }
    Ok(())
}

/// The daemon as `entra-daemon run` starts it: [`run`], plus the connect
/// server when `[http]` is configured.
pub struct Started {
    /// Where the connect server listens (known even for port 0).
    pub http: Option<crate::http::HttpServer>,
    /// Where the private health and metrics listener listens.
    pub metrics: Option<crate::http::HttpServer>,
    pub daemon: tokio::task::JoinHandle<Result<RunReport, StartupError>>,
}

impl Started {
    /// Waits for the daemon to stop, then stops the connect server.
    pub async fn wait(self) -> Result<RunReport, StartupError> {
        let report = self.daemon.await;
        for server in [self.http, self.metrics].into_iter().flatten() {
            server.stop().await;
        }
        match report {
            Ok(r) => r,
            Err(e) => Err(StartupError::Task(e.to_string())),
        }
    }
}

/// Starts the private health and metrics listener and the connect server
/// (each if configured), then [`run`] in a task; all stop when `shutdown`
/// turns true.
pub async fn start(run: Run) -> Result<Started, StartupError> {
    // Refuse early, before binding anything, if the databases are not ready.
    let state = open_state(&run.settings)?;
    // One Graph client (one pacer, one token cache) for the daemon and
    // the connect server: their requests share the tenants' budgets.
    let graph = graph_client(&run.settings)?;
    let metrics = match &run.settings.metrics {
        Some(m) => {
            let ops = Ops::new(
                state.clone(),
                &run.settings.plumm.database,
                run.shutdown.clone(),
            )?;
            Some(crate::http::health::start(m, ops).await?)
        }
        None => None,
    };
    let http = match connect_server(&run.settings, state, graph.clone(), run.policy())? {
        Some(parts) => Some(crate::http::start(parts, run.shutdown.clone()).await?),
        None => None,
    };
    let daemon = tokio::spawn(run_with(run, false, Some(graph)));
    Ok(Started {
        http,
        metrics,
        daemon,
    })
}

/// The connect server's parts, when `[http]` is configured.
pub fn connect_server(
    settings: &Settings,
    state: Arc<StateDb>,
    graph: Arc<GraphClient>,
    policy: PolicyRx,
) -> Result<Option<crate::http::Parts>, StartupError> {
    let Some(http) = settings.http.clone() else {
        return Ok(None);
    };
    let key = http
        .signing_key()
        .map_err(crate::configuration::ConfigError::from)?;
    Ok(Some(crate::http::Parts {
        http,
        key,
        client_id: settings.entra.client_id.clone(),
        authority_host: settings.entra.authority_host.clone(),
        plumm_database: settings.plumm.database.clone(),
        state,
        graph,
        policy,
    }))
}

/// `entra-daemon connect`: records a connection (after proving the app can
/// act in the tenant, unless `verify` is false) and queues the company's
/// users for an initial sync.
pub async fn connect(
    settings: &Settings,
    company: CompanyId,
    tenant: &TenantId,
    verify: bool,
    by: &str,
    progress: &dyn Progress,
) -> Result<usize, StartupError> {
    let state = open_state(settings)?;
    let connections = Connections {
        state: &state,
        plumm_database: &settings.plumm.database,
        policy: &settings.policy,
        progress,
    };
    let graph = match verify {
        true => Some(graph_client(settings)?),
        false => None,
    };
    let proof = match &graph {
        Some(graph) => {
            verify_tenant(graph, &settings.policy.retry, tenant).await?;
            Proof::Verified {
                graph,
                how: "(token and Graph read verified)".into(),
            }
        }
        None => Proof::Unverified,
    };
    Ok(connections.connect(company, tenant, by, proof).await?)
}

/// `entra-daemon disconnect`: stops syncing a company; the pending changes
/// dropped, or `None` when it was not connected.
pub fn disconnect(
    settings: &Settings,
    company: CompanyId,
    by: &str,
) -> Result<Option<usize>, StartupError> {
    let state = open_state(settings)?;
    Ok(crate::connections::disconnect(&state, company, by)?)
}

/// The connect server's routes on their own (tests, the demo): its own
/// state connection and Graph client, the settings' policy.
pub fn connect_app(
    settings: &Settings,
    public_base: String,
) -> Result<Arc<crate::http::App>, StartupError> {
    let state = open_state(settings)?;
    let graph = graph_client(settings)?;
    let policy = settings.policy.clone().fixed();
    match connect_server(settings, state, graph, policy)? {
        Some(parts) => Ok(crate::http::App::new(parts, public_base)),
        None => Err(crate::configuration::ConfigError::Invalid {
            key: "http",
            reason: "the [http] section is missing".into(),
        }
        .into()),
    }
}
