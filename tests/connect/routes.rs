//! The connect server's routes without a socket (`tower::ServiceExt::oneshot`).
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use entra_daemon::http::{router, App};
use tower::ServiceExt;

use crate::helpers::*;

const BASE: &str = "https://entra-sync.plumm.example";

async fn call(app: &Arc<App>, method: &str, uri: &str) -> axum::response::Response {
    router(app.clone())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_redirects_to_admin_consent_with_a_fresh_state_and_hardened_headers() {
    let mut test = ConnectApp::spawn().await;
    let app = entra_daemon::daemon::connect_app(&test.settings, BASE.into()).unwrap();
    assert_eq!(app.redirect_uri(), format!("{BASE}/oauth/callback"));
    let uri = format!("/connect?{}", test.signed(CONTOSO, "ada@plumm.example"));
    let r = call(&app, "GET", &uri).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        to.as_str().split('?').next().unwrap(),
        format!(
            "{}/organizations/v2.0/adminconsent",
            test.emu.authority_host()
        )
    );
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], test.client_id);
    assert_eq!(q["scope"], "https://graph.microsoft.com/.default");
    assert_eq!(q["redirect_uri"], format!("{BASE}/oauth/callback"));
    let again = call(&app, "GET", &uri).await;
    let to2 = again.headers()["location"].to_str().unwrap().to_string();
    assert!(!to2.contains(&q["state"]), "every click gets its own state");
    assert_eq!(test.sql_count("SELECT COUNT(*) FROM oauth_states WHERE admin_email = 'ada@plumm.example' AND company_id = 1"), 2);

    assert_eq!(
        call(&app, "GET", "/oauth/callback").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, "GET", "/oauth/callback?state=").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, "GET", &uri.replace("/connect", "/disconnect"))
            .await
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        call(&app, "POST", "/disconnect?company=1").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, "GET", "/nothing").await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(!format!("{app:?}").contains(STORE_KEY));
    test.stop().await;
}
