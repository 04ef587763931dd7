//! The connect server: Plumm's Store -> Microsoft admin consent -> OAuth
//! callback, and the Store's Disconnect button.
//!
//! - `GET /connect?company&admin&exp&sig`: checks the signed link, creates a
//!   single-use `state` and sends the browser to Microsoft's admin consent
//!   endpoint.
//! - `GET /oauth/callback`: checks the state, proves the consent with a
//!   token and a Graph read, records the connection, queues the initial sync
//!   and sends the browser back to the Store with `status=...`.
//! - `POST /disconnect?company&admin&exp&sig`: stops syncing the company.
pub mod api;
mod error;
pub mod health;
mod outcome;
mod prove;
mod routes;
pub mod signed;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::HttpError;

use crate::configuration::{ConfigError, HttpSettings, Settings, StoreKey};
use crate::domain::{CompanyId, TenantId};
use crate::graph::GraphClient;
use crate::startup::StartupError;
use crate::store::StateDb;
use outcome::Failure;

/// What the routes share. The state database is a connection of its own,
/// so the daemon's watcher sees every connect and disconnect at once.
pub struct App {
    http: HttpSettings,
    key: StoreKey,
    public_base: String,
    settings: Arc<Settings>,
    state: Arc<StateDb>,
    graph: Arc<GraphClient>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("public_base", &self.public_base)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl App {
    /// `public_base` is `{public_url}` as browsers see it (see
    /// [`HttpSettings::public_base`]).
    pub fn new(settings: Arc<Settings>, public_base: String) -> Result<Arc<Self>, StartupError> {
        let graph = crate::startup::graph_client(&settings)?;
        Self::with_graph(settings, public_base, graph)
    }

    /// With the daemon's own Graph client: the connect flow's token checks
    /// and listings then share the daemon's token cache and budget.
    pub fn with_graph(
        settings: Arc<Settings>,
        public_base: String,
        graph: Arc<GraphClient>,
    ) -> Result<Arc<Self>, StartupError> {
        let http = settings.http.clone().ok_or(ConfigError::Invalid {
            key: "http",
            reason: "the [http] section is missing".into(),
        })?;
        let key = http.signing_key()?;
        let state = crate::startup::open_state(&settings)?;
        Ok(Arc::new(Self {
            http,
            key,
            public_base,
            settings,
            state,
            graph,
        }))
    }

    /// The redirect URI to register on the app: `{public_url}/oauth/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_base)
    }

    fn store_url(&self, company: CompanyId, pairs: &[(&str, &str)]) -> String {
        let mut url = self.http.store_return_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("company", &company.to_string());
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        url.into()
    }

    fn return_url(&self, company: CompanyId, result: Result<&TenantId, &Failure>) -> String {
        match result {
            Ok(tenant) => self.store_url(
                company,
                &[("status", "connected"), ("tenant", tenant.as_str())],
            ),
            Err(f) => self.store_url(
                company,
                &[
                    ("status", "error"),
                    ("reason", f.reason()),
                    ("message", &f.message()),
                ],
            ),
        }
    }

    fn disconnected_url(&self, company: CompanyId, was_connected: bool) -> String {
        if was_connected {
            self.store_url(company, &[("status", "disconnected")])
        } else {
            self.store_url(
                company,
                &[
                    ("status", "error"),
                    ("reason", "not_connected"),
                    (
                        "message",
                        "This company is not connected to Microsoft Entra ID.",
                    ),
                ],
            )
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/connect", get(routes::connect))
        .route("/oauth/callback", get(routes::callback))
        .route("/disconnect", post(routes::disconnect))
        .route("/api/companies/{id}/status", get(api::status))
        .route("/api/companies/{id}/audit", get(api::audit))
        .with_state(app)
}

/// The running connect server.
pub struct HttpServer {
    pub addr: SocketAddr,
    /// `{public_url}`; the redirect URI is this plus `/oauth/callback`.
    pub public_base: String,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Waits briefly for requests in flight, then stops.
    pub async fn stop(self) {
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Binds `[http].listen` and serves until `shutdown` turns true; `None`
/// when `[http]` is not configured.
pub async fn start(
    settings: Arc<Settings>,
    mut shutdown: watch::Receiver<bool>,
    graph: Arc<GraphClient>,
) -> Result<Option<HttpServer>, StartupError> {
    let Some(http) = settings.http.clone() else {
        return Ok(None);
    };
    let listener = TcpListener::bind(http.listen)
        .await
        .map_err(|e| ConfigError::Invalid {
            key: "http.listen",
            reason: format!("cannot listen on {}: {e}", http.listen),
        })?;
    let addr = listener.local_addr().map_err(StartupError::BoundAddress)?;
    let public_base = http.public_base(addr);
    let ops = health::Ops::new(
        crate::startup::open_state(&settings)?,
        &settings.plumm.database,
        shutdown.clone(),
    )?;
    let app = App::with_graph(settings, public_base.clone(), graph)?;
    tracing::info!(%addr, redirect_uri = %app.redirect_uri(), "connect server listening");
    let routes = router(app).merge(health::router(ops));
    let server = axum::serve(listener, routes).with_graceful_shutdown(async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    });
    let task = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!("connect server stopped: {e}");
        }
    });
    Ok(Some(HttpServer {
        addr,
        public_base,
        task,
    }))
}
