//! Graph + Microsoft login emulator (loopback only).
//!
//! A stand-in for `login.microsoftonline.com` (client credentials token
//! endpoint) and `graph.microsoft.com/v1.0` (users, groups and their
//! members, `$batch`), modelled on
//! Microsoft's documentation, for tests, demos and benchmarks. Every quirk it
//! models cites the page it comes from.

mod batch;
mod client_assertion;
mod config;
mod consent;
mod control;
mod control_groups;
mod control_licences;
mod control_person;
mod control_routes;
mod deleted_items;
mod discovery;
mod errors;
mod filter;
mod foreign_load;
mod graph;
mod group_members;
mod group_props;
mod groups;
mod licensing;
mod listener;
mod login;
mod login_request;
mod manager;
mod paging;
mod permissions;
mod state;
mod throttle;
mod tls;
mod types;
mod user_list;
mod user_props;
mod users;
mod util;
mod validate;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body as HttpBody;
use axum::extract::{ConnectInfo, Request};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::default_permissions;
pub use config::{
    AppCertificate, AppRegistration, ConfigSeedUser, EmulatorConfig, RandomFaultConfig,
    RedirectUri, TenantSize, TenantSpec, ThrottleConfig,
};
pub use control::EmulatorControl;
pub use foreign_load::ForeignLoad;
pub use throttle::{
    base_resource_units, cost_from_base, request_cost, Cost, Decision, Limiter, Throttled,
};
pub use types::{
    EmulatedGroup, EmulatedLicenceState, EmulatedUser, Fault, FaultKind, LoggedRequest, SeedGroup,
    SeedSku, SeedUser, Traffic,
};

use listener::{ConnHandle, KillableListener};
use state::Shared;

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("emulator configuration: {0}")]
    Config(String),
    #[error("emulator I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("unknown tenant {0}")]
    UnknownTenant(String),
    #[error("unknown user {0}")]
    UnknownUser(String),
    #[error("unknown group {0}")]
    UnknownGroup(String),
    #[error("unknown SKU {0}")]
    UnknownSku(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

/// A running emulator. Dropping it stops the server task.
pub struct RunningEmulator {
    pub addr: SocketAddr,
    control: EmulatorControl,
    /// The CA behind the server certificate, in TLS mode.
    ca_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT` (`https://` in TLS mode); the token endpoint
    /// is `{authority_host}/{tenant}/oauth2/v2.0/token`.
    pub fn authority_host(&self) -> String {
        self.control.shared.base_url.clone()
    }

    /// The PEM certificate a client must trust to reach an emulator started
    /// by [`spawn_tls`]; `None` for a plain-http one.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// `http://127.0.0.1:PORT/v1.0` (`https://` in TLS mode)
    pub fn graph_base_url(&self) -> String {
        self.control.shared.graph_base()
    }

    pub fn control(&self) -> EmulatorControl {
        self.control.clone()
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Largest request body accepted (a full batch of 20 creates fits easily).
const MAX_BODY: usize = 4 * 1024 * 1024;

async fn front(shared: Arc<Shared>, conn: ConnHandle, req: Request) -> Response<HttpBody> {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b.to_vec(),
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let method = parts.method.as_str().to_string();
    if path == "/v1.0" || path.starts_with("/v1.0/") {
        let raw = graph::RawReq {
            method,
            path,
            query,
            headers: parts.headers,
            body,
        };
        return graph::handle(shared, conn, raw).await;
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segs.len() == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token" {
        let tenant = util::percent_decode(segs[0]);
        return login::handle(shared, conn, &method, &tenant, &path, &parts.headers, &body).await;
    }
    if segs.len() == 4 && segs[1] == "v2.0" && segs[2..] == [".well-known", "openid-configuration"]
    {
        let tenant = util::percent_decode(segs[0]);
        return discovery::openid_configuration(&shared, &tenant);
    }
    if segs.len() == 3 && segs[1] == "v2.0" && segs[2] == "adminconsent" {
        let tenant = util::percent_decode(segs[0]);
        return consent::handle(shared, &method, &tenant, &path, query.as_deref(), &body).await;
    }
    StatusCode::NOT_FOUND.into_response()
}

/// Starts the emulator on `listener` (bind it to 127.0.0.1:0 in tests),
/// serving plain http.
pub async fn spawn(
    config: EmulatorConfig,
    listener: TcpListener,
) -> Result<RunningEmulator, EmulatorError> {
    start(config, listener, None).await
}

/// Starts the emulator serving https with a certificate made now for
/// `127.0.0.1`, `::1` and `localhost`, signed by a fresh CA that
/// [`RunningEmulator::ca_pem`] hands out: for clients that, like
/// Microsoft's SDKs, insist on https.
pub async fn spawn_tls(
    config: EmulatorConfig,
    listener: TcpListener,
) -> Result<RunningEmulator, EmulatorError> {
    start(config, listener, Some(tls::TlsIdentity::generate()?)).await
}

async fn start(
    config: EmulatorConfig,
    listener: TcpListener,
    tls: Option<tls::TlsIdentity>,
) -> Result<RunningEmulator, EmulatorError> {
    config.validate()?;
    let addr = listener.local_addr()?;
    let host = match addr.ip() {
        ip if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{host}:{}", addr.port());
    let shared = Arc::new(Shared::new(config.clone(), base));
    let control = EmulatorControl {
        shared: shared.clone(),
    };
    for app in config.apps {
        control.add_app(app);
    }
    for c in &config.app_certificates {
        control.add_app_certificate(&c.client_id, &c.certificate_pem)?;
    }
    for t in config.tenants {
        control.add_tenant(t)?;
    }
    for su in config.seed_users {
        control.seed_user(&su.tenant, su.user)?;
    }
    let fallback_shared = shared.clone();
    let app = control_routes::router(control.clone()).fallback(
        move |ConnectInfo(conn): ConnectInfo<ConnHandle>, req: Request| {
            let s = fallback_shared.clone();
            async move { front(s, conn, req).await }
        },
    );
    let (tx, rx) = oneshot::channel::<()>();
    let ca_pem = tls.as_ref().map(|t| t.ca_pem.clone());
    let listener = match &tls {
        None => KillableListener::Plain(listener),
        Some(identity) => KillableListener::Tls {
            incoming: tls::TlsIncoming::start(listener, identity),
            local_addr: addr,
        },
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<ConnHandle>(),
    )
    .with_graceful_shutdown(async move {
        let _ = rx.await;
    });
    let task = tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::warn!("emulator server stopped: {e}");
        }
    });
    Ok(RunningEmulator {
        addr,
        control,
        ca_pem,
        shutdown: Some(tx),
        task: Some(task),
    })
}
