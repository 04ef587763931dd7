//! The admin UI's read API: signed with the Store key, bound to one company.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use entra_daemon::http::api::authorization;
use entra_daemon::http::router;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::helpers::*;

struct Api {
    routes: axum::Router,
    app: OpsApp,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Api {
    async fn new() -> Self {
        let app = OpsApp::spawn().await;
        app.connect(CONTOSO, T1).await;
        app.connect(FABRIKAM, T2).await;
        app.hire(CONTOSO, "ada@contoso.com");
        app.hire(CONTOSO, "bad+one@contoso.com");
        app.hire(FABRIKAM, "lidia@fabrikam.com");
        assert_eq!(app.cli(&["run", "--once"]).await.status.code(), Some(2));
        let server = entra_daemon::daemon::connect_app(&app.settings, "http://127.0.0.1:1".into())
            .expect("app");
        Self {
            routes: router(server),
            app,
        }
    }

    async fn send(&self, uri: &str, auth: Option<String>) -> (StatusCode, Value) {
        let mut req = Request::get(uri);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = self
            .routes
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// A request signed the way Plumm signs it, valid for a minute.
    async fn signed(&self, path: &str, query: &str) -> (StatusCode, Value) {
        let auth = authorization(&self.app.key, "GET", path, query, now() + 60);
        let uri = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        self.send(&uri, Some(auth)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_requests_signed_for_that_company_and_path_are_answered() {
    let api = Api::new().await;
    let path = "/api/companies/1/status";
    let key = &api.app.key;
    let refused = |r: (StatusCode, Value)| {
        assert_eq!(r.0, StatusCode::UNAUTHORIZED, "{}", r.1);
        r.1["error"].as_str().unwrap_or_default().to_string()
    };
    refused(api.send(path, None).await);
    refused(api.send(path, Some("Bearer abc".into())).await);
    // Signed for company 1, sent for company 2.
    let for_one = authorization(key, "GET", path, "", now() + 60);
    refused(
        api.send("/api/companies/2/status", Some(for_one.clone()))
            .await,
    );
    // A query added after signing.
    refused(
        api.send(&format!("{path}?x=1"), Some(for_one.clone()))
            .await,
    );
    // Another key.
    let other = entra_daemon::http::StoreKey::new(&"0".repeat(32)).unwrap();
    refused(
        api.send(
            path,
            Some(authorization(&other, "GET", path, "", now() + 60)),
        )
        .await,
    );
    // Expired, or valid for longer than the server accepts (15 minutes).
    let why = refused(
        api.send(path, Some(authorization(key, "GET", path, "", now() - 1)))
            .await,
    );
    assert!(why.contains("expired"), "{why}");
    let why = refused(
        api.send(
            path,
            Some(authorization(key, "GET", path, "", now() + 3600)),
        )
        .await,
    );
    assert!(why.contains("further ahead"), "{why}");
    // A Store Connect link's signature is no API signature.
    let link = entra_daemon::http::signed::sign_query(key, 1, "a@b.com", now() + 60);
    let sig = link.rsplit_once("&sig=").unwrap().1;
    refused(
        api.send(
            path,
            Some(format!("Plumm-HMAC-SHA256 exp={},sig={sig}", now() + 60)),
        )
        .await,
    );

    let (status, body) = api.send(path, Some(for_one)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["company"], 1);
    assert_eq!(body["tenant"], T1);
    assert_eq!(body["state"], "connected");
    assert_eq!(body["parked"], 1);
    assert_eq!(body["needs_attention"][0]["kind"], "parked_users");
    assert!(body["last_error"]["message"].as_str().is_some(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_is_paged_filtered_and_never_shows_another_company() {
    let api = Api::new().await;
    let audit = "/api/companies/1/audit";
    let (status, all) = api.signed(audit, "").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let rows = all["rows"].as_array().unwrap();
    assert!(rows.len() >= 3, "{all}");
    assert!(rows.iter().all(|r| r["company_id"] == 1), "{all}");
    assert!(!all.to_string().contains("fabrikam"), "{all}");
    assert!(
        rows.windows(2)
            .all(|w| w[0]["id"].as_i64() > w[1]["id"].as_i64()),
        "newest first"
    );

    // "Failure" search.
    let (_, failed) = api.signed(audit, "failed=true").await;
    let failed = failed["rows"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["email"], "bad+one@contoso.com");
    assert_eq!(failed[0]["outcome"], "parked");
    let (_, by_email) = api.signed(audit, "email=ADA%40contoso.com&since=1h").await;
    let by_email = by_email["rows"].as_array().unwrap().clone();
    assert!(!by_email.is_empty());
    assert!(by_email.iter().all(|r| r["email"] == "ada@contoso.com"));

    // Pages of one row walk the same rows, newest first.
    let mut walked = Vec::new();
    let mut query = "limit=1".to_string();
    loop {
        let (status, page) = api.signed(audit, &query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        walked.extend(
            page["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].clone()),
        );
        match page["next_cursor"].as_i64() {
            Some(c) => query = format!("limit=1&cursor={c}"),
            None => break,
        }
    }
    let ids: Vec<Value> = rows.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(walked, ids);

    // Fabrikam's rows, asked for as Fabrikam: none of Contoso's.
    let (_, other) = api
        .signed("/api/companies/2/audit", "email=ada%40contoso.com")
        .await;
    assert_eq!(other["rows"].as_array().unwrap().len(), 0, "{other}");
    // A typo in a parameter is refused, not ignored.
    let (status, _) = api.signed(audit, "faild=true").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persons_managed_groups_are_answered_to_their_company_only() {
    let api = Api::new().await;
    let state = api.app.state();
    let plumm = rusqlite::Connection::open(&api.app.settings.plumm.database).unwrap();
    let ada: i64 = plumm
        .query_row(
            "SELECT id FROM users WHERE email = 'ada@contoso.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let link = state
        .link(entra_daemon::domain::PlummUserId(ada))
        .unwrap()
        .expect("ada is linked");
    let g = entra_daemon::store::ManagedMembership {
        group_id: "0b5c2d3e-0000-4000-8000-000000000001".into(),
        group_name: Some("All staff".into()),
    };
    state
        .record_membership(link.user, &link.tenant, &link.entra_id, &g)
        .unwrap();
    // As a resync records what Entra's listing showed.
    let e = entra_daemon::domain::LicenceError {
        sku_id: "6fd2c87f-b296-42f0-b197-1e91e994b900".into(),
        group_id: Some(g.group_id.clone()),
        state: "Error".into(),
        error: "CountViolation".into(),
        updated_at: None,
    };
    let listed = entra_daemon::store::licences::ListedLicences {
        user: link.user,
        errors: vec![(&e, Some("All staff"))],
    };
    state
        .replace_licence_errors(link.company, &link.tenant, &[listed])
        .unwrap();

    let path = format!("/api/companies/1/users/{ada}/groups");
    let (status, body) = api.signed(&path, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entra_id"], link.entra_id.0.as_str());
    assert_eq!(body["groups"][0]["name"], "All staff");
    assert_eq!(body["groups"][0]["state"], "member");
    let licence = &body["licence_errors"][0];
    assert_eq!(
        (licence["error"].as_str(), licence["group_name"].as_str()),
        (Some("CountViolation"), Some("All staff")),
        "{body}"
    );
    assert_eq!(licence["advice"], "buy more licences or free some");
    let (status, body) = api
        .signed(&format!("/api/companies/2/users/{ada}/groups"), "")
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "Fabrikam does not see Contoso's people: {body}"
    );
    let (status, _) = api.send(&path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
