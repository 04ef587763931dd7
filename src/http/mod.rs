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
mod settings;
pub mod signed;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::HttpError;
pub use settings::{HttpSettings, KeyError, StoreKey};

use crate::connections::Connections;
use crate::domain::{CompanyId, TenantId};
use crate::engine::{Policy, PolicyRx};
use crate::graph::GraphClient;
use crate::store::StateDb;
use outcome::Failure;

/// What the connect server is built from; the daemon hands it its parts.
pub struct Parts {
    pub http: HttpSettings,
    pub key: StoreKey,
    /// The app registration's client id, for the consent URL.
    pub client_id: String,
    /// Microsoft's login host, for the consent URL.
    pub authority_host: url::Url,
    pub plumm_database: PathBuf,
    /// A connection of its own, so the daemon's watcher sees every connect
    /// and disconnect at once.
    pub state: Arc<StateDb>,
    /// The daemon's Graph client: the connect flow's token checks and
    /// listings share its token cache and budget.
    pub graph: Arc<GraphClient>,
    /// The policy in force (the mapping that matches Entra users).
    pub policy: PolicyRx,
}

/// Why an HTTP listener (the connect server, the private metrics one)
/// could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("config key {key}: cannot listen on {addr}: {source}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the address an HTTP listener is bound to: {0}")]
    BoundAddress(std::io::Error),
}

/// What the routes share.
pub struct App {
    parts: Parts,
    public_base: String,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("public_base", &self.public_base)
            .field("key", &self.parts.key)
            .finish_non_exhaustive()
    }
}

impl App {
    /// `public_base` is `{public_url}` as browsers see it (see
    /// [`HttpSettings::public_base`]).
    pub fn new(parts: Parts, public_base: String) -> Arc<Self> {
        Arc::new(Self { parts, public_base })
    }

    fn http(&self) -> &HttpSettings {
        &self.parts.http
    }

    fn state(&self) -> &StateDb {
        &self.parts.state
    }

    /// The policy in force now, for one request.
    fn policy(&self) -> Arc<Policy> {
        self.parts.policy.borrow().clone()
    }

    /// Connecting under `policy`.
    fn connections<'a>(&'a self, policy: &'a Policy) -> Connections<'a> {
        Connections {
            state: &self.parts.state,
            plumm_database: &self.parts.plumm_database,
            policy,
            progress: &crate::support::progress::Silent,
        }
    }

    /// The redirect URI to register on the app: `{public_url}/oauth/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/oauth/callback", self.public_base)
    }

    fn store_url(&self, company: CompanyId, pairs: &[(&str, &str)]) -> String {
        let mut url = self.http().store_return_url.clone();
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
        .route(
            "/api/companies/{id}/users/{user}/groups",
            get(api::person_groups),
        )
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

/// Binds `[http].listen` and serves the connect flow and the signed API
/// until `shutdown` turns true (probes and metrics are on [`health`]'s
/// private listener).
pub async fn start(
    parts: Parts,
    shutdown: watch::Receiver<bool>,
) -> Result<HttpServer, ServeError> {
    let listen = parts.http.listen;
    let bound = bind("http.listen", listen).await?;
    let addr = bound.local_addr().map_err(ServeError::BoundAddress)?;
    let public_base = parts.http.public_base(addr);
    let app = App::new(parts, public_base.clone());
    tracing::info!(%addr, redirect_uri = %app.redirect_uri(), "connect server listening");
    let mut server = run_server(bound, router(app), shutdown)?;
    server.public_base = public_base;
    Ok(server)
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { key, addr, source })
}

/// Binds `addr` and serves `routes` until `shutdown` turns true.
async fn serve(
    key: &'static str,
    addr: SocketAddr,
    routes: Router,
    shutdown: watch::Receiver<bool>,
) -> Result<HttpServer, ServeError> {
    run_server(bind(key, addr).await?, routes, shutdown)
}

fn run_server(
    listener: TcpListener,
    routes: Router,
    mut shutdown: watch::Receiver<bool>,
) -> Result<HttpServer, ServeError> {
    let addr = listener.local_addr().map_err(ServeError::BoundAddress)?;
    let server = axum::serve(listener, routes).with_graceful_shutdown(async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    });
    let task = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!("HTTP server on {addr} stopped: {e}");
        }
    });
    Ok(HttpServer {
        addr,
        public_base: format!("http://{addr}"),
        task,
    })
}
