//! Probes and metrics for the operator's monitoring, on a private listener
//! of their own (`[metrics] listen`), never on the public connect server:
//! company ids and database errors stay off the internet, and a daemon
//! without the connect server has them too.
//!
//! - `GET /healthz`: the process answers (liveness).
//! - `GET /readyz`: both databases answer and no shutdown has begun
//!   (readiness: a load balancer stops sending the Store's users here).
//! - `GET /metrics`: Prometheus exposition ([`crate::metrics`]).
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::store::{PlummDb, StateDb, StoreError};

/// `[metrics]`: where the private listener binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// e.g. `127.0.0.1:9464` (Prometheus' customary port); `127.0.0.1:0`
    /// picks a free port.
    pub listen: SocketAddr,
}

/// What the probes look at.
pub struct Ops {
    state: Arc<StateDb>,
    plumm: Mutex<PlummDb>,
    shutdown: watch::Receiver<bool>,
}

impl Ops {
    pub fn new(
        state: Arc<StateDb>,
        plumm_path: &Path,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, StoreError> {
        Ok(Arc::new(Self {
            state,
            plumm: Mutex::new(PlummDb::open(plumm_path)?),
            shutdown,
        }))
    }

    fn plumm(&self) -> std::sync::MutexGuard<'_, PlummDb> {
        self.plumm.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why the daemon is not ready, if it is not.
    fn not_ready(&self) -> Option<String> {
        if *self.shutdown.borrow() {
            return Some("shutting down".into());
        }
        if let Err(e) = self.state.pending_total() {
            return Some(format!("state database: {e}"));
        }
        if let Err(e) = self.plumm().outbox_depth() {
            return Some(format!("Plumm database: {e}"));
        }
        None
    }
}

pub fn router(ops: Arc<Ops>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ops)
}

fn plain(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn healthz() -> Response {
    plain(StatusCode::OK, "ok\n".into())
}

async fn readyz(State(ops): State<Arc<Ops>>) -> Response {
    match ops.not_ready() {
        None => plain(StatusCode::OK, "ready\n".into()),
        Some(why) => {
            tracing::debug!("not ready: {why}");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            )
        }
    }
}

async fn metrics(State(ops): State<Arc<Ops>>) -> Response {
    let refreshed = {
        let plumm = ops.plumm();
        crate::status::gauges::refresh(&ops.state, Some(&plumm))
    };
    if let Err(e) = refreshed {
        // Serve the event counters anyway: the database figures keep their
        // last values and the log says why.
        tracing::error!("metrics: cannot read the databases: {e}");
    }
    let mut r = plain(StatusCode::OK, crate::metrics::render());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    r
}

/// Binds `[metrics] listen` and serves the probes and `/metrics` until
/// `shutdown` turns true.
pub async fn start(
    settings: &MetricsSettings,
    ops: Arc<Ops>,
) -> Result<super::HttpServer, super::ServeError> {
    let shutdown = ops.shutdown.clone();
    let server = super::serve("metrics.listen", settings.listen, router(ops), shutdown).await?;
    tracing::info!(addr = %server.addr, "health and metrics listening");
    Ok(server)
}
