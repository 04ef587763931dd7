//! `/healthz`, `/readyz` and `/metrics`, through the router itself.
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use entra_daemon::http::health::{router, Ops};
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::helpers::*;

async fn get(app: axum::Router, path: &str) -> (StatusCode, String, String) {
    let r = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn ready_while_both_databases_answer_and_not_once_shutdown_begins() {
    let app = OpsApp::spawn().await;
    let (stop, shutdown) = watch::channel(false);
    let state = Arc::new(app.state());
    let ops = Ops::new(state, &app.settings.plumm.database, shutdown).unwrap();
    let routes = router(ops);

    assert_eq!(get(routes.clone(), "/healthz").await.0, StatusCode::OK);
    let (status, _, body) = get(routes.clone(), "/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Plumm's database no longer has the outbox: not ready, and why.
    app.plumm("ALTER TABLE entra_outbox RENAME TO gone");
    let (status, _, body) = get(routes.clone(), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("Plumm database"), "{body}");
    app.plumm("ALTER TABLE gone RENAME TO entra_outbox");
    assert_eq!(get(routes.clone(), "/readyz").await.0, StatusCode::OK);

    stop.send(true).unwrap();
    let (status, _, body) = get(routes.clone(), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("shutting down"), "{body}");
    // Still alive while it drains.
    assert_eq!(get(routes.clone(), "/healthz").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_state_database_that_does_not_answer_is_not_ready() {
    let app = OpsApp::spawn().await;
    let (_stop, shutdown) = watch::channel(false);
    let ops = Ops::new(
        Arc::new(app.state()),
        &app.settings.plumm.database,
        shutdown,
    )
    .unwrap();
    let conn = rusqlite::Connection::open(&app.settings.state.database).unwrap();
    conn.execute_batch("ALTER TABLE pending RENAME TO gone")
        .unwrap();
    let (status, _, body) = get(router(ops), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("state database"), "{body}");
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let app = OpsApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    let (_stop, shutdown) = watch::channel(false);
    let ops = Ops::new(
        Arc::new(app.state()),
        &app.settings.plumm.database,
        shutdown,
    )
    .unwrap();
    let (status, ctype, body) = get(router(ops), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(
        body.contains("# TYPE entra_pending_changes gauge"),
        "{body}"
    );
    assert!(
        body.contains("entra_tenants{state=\"connected\"}"),
        "{body}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
}
