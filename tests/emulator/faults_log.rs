//! Injected faults, the request log and the HTTP control surface.

use std::time::Duration;

use crate::helpers::*;
use entra_daemon::emulator::{EmulatorConfig, Fault, FaultKind, LoggedRequest, SeedUser};
use serde_json::{json, Value};

fn fault(path: &str, kind: FaultKind) -> Fault {
    Fault {
        tenant: None,
        method: None,
        path_contains: Some(path.into()),
        count: 1,
        kind,
    }
}

#[tokio::test]
async fn status_faults_are_consumed_in_order() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let ctl = emu.control();
    ctl.inject(fault(
        "/users",
        FaultKind::Status {
            status: 429,
            retry_after: Some(0.2),
        },
    ));
    ctl.inject(Fault {
        count: 2,
        ..fault(
            "/users",
            FaultKind::Status {
                status: 503,
                retry_after: None,
            },
        )
    });
    let (s, h, v) = g.get("/users").await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "0.2");
    assert_eq!(error_code(&v), "TooManyRequests");
    for _ in 0..2 {
        let (s, h, v) = g.get("/users").await;
        assert_eq!(s, 503);
        assert!(!h.contains_key("retry-after"));
        assert!(v["error"]["innerError"]["request-id"].is_string());
    }
    assert_eq!(g.get("/users").await.0, 200);
    for st in [500u16, 502, 504] {
        ctl.inject(fault(
            "/users",
            FaultKind::Status {
                status: st,
                retry_after: None,
            },
        ));
        assert_eq!(g.get("/users").await.0, st);
    }
    // Tenant-scoped faults leave other tenants alone.
    ctl.inject(Fault {
        tenant: Some(TENANT_B.into()),
        ..fault(
            "/users",
            FaultKind::Status {
                status: 500,
                retry_after: None,
            },
        )
    });
    assert_eq!(g.get("/users").await.0, 200);
    let gb = Graph::new(&emu, TENANT_B).await;
    assert_eq!(gb.get("/users").await.0, 500);
    assert!(ctl.faults().is_empty());
}

#[tokio::test]
async fn delay_fault_trips_client_timeouts() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    emu.control()
        .inject(fault("/users", FaultKind::Delay { ms: 400 }));
    let r = g
        .req(reqwest::Method::GET, "/users")
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(r.as_ref().is_err_and(|e| e.is_timeout()), "{r:?}");
    assert_eq!(g.get("/users").await.0, 200);
}

#[tokio::test]
async fn drop_fault_closes_the_connection() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    emu.control().inject(fault("/users", FaultKind::Drop));
    let r = g.req(reqwest::Method::GET, "/users").send().await;
    let e = r.expect_err("connection must be dropped");
    assert!(!e.is_timeout(), "{e:?}");
    assert_eq!(g.get("/users").await.0, 200);
    let log = emu.control().requests();
    assert!(log
        .iter()
        .any(|r| r.status == 0 && r.fault.as_deref() == Some("drop")));
}

#[tokio::test]
async fn a_random_reset_closes_the_connection_before_the_request_is_carried_out() {
    let mut cfg = config();
    cfg.random_faults.reset_rate = 1.0;
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let r = g
        .req(reqwest::Method::POST, "/users")
        .json(&new_user("reset", "contoso.com"))
        .send()
        .await;
    assert!(r.is_err(), "the connection must be reset: {r:?}");
    assert!(
        emu.control().users(TENANT_A).is_empty(),
        "nothing was created"
    );
    let log = emu.control().requests();
    assert!(log
        .iter()
        .any(|r| r.status == 0 && r.fault.as_deref() == Some("random reset")));
    let bad = EmulatorConfig::from_toml_str("[random_faults]\nreset_rate = 1.5");
    assert!(bad.is_err(), "a rate above 1 is refused");
}

#[tokio::test]
async fn login_faults() {
    let emu = start(config()).await;
    emu.control().inject(fault(
        "/oauth2/v2.0/token",
        FaultKind::Status {
            status: 503,
            retry_after: None,
        },
    ));
    let r = token_response(
        &emu,
        TENANT_A,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_none());
    let v: Value = r.json().await.expect("json");
    assert!(v["error_codes"].is_array());
    let _ = token(&emu, TENANT_A).await;
}

#[tokio::test]
async fn a_login_fault_may_say_when_to_retry_or_lose_the_token_it_issued() {
    let emu = start(config()).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    emu.control().inject(fault(
        "/oauth2/v2.0/token",
        FaultKind::Status {
            status: 429,
            retry_after: Some(2.0),
        },
    ));
    let r = token_response(&emu, TENANT_A, &form).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    // Issued, and the answer lost: the client never sees the token.
    emu.control()
        .inject(fault("/oauth2/v2.0/token", FaultKind::DropAfter));
    let sent = http()
        .post(format!(
            "{}/{TENANT_A}/oauth2/v2.0/token",
            emu.authority_host()
        ))
        .form(&form)
        .send()
        .await;
    assert!(sent.is_err(), "the connection closes without an answer");
    let log = emu.control().requests();
    assert!(log
        .iter()
        .any(|r| r.status == 0 && r.fault.as_deref() == Some("answer lost")));
    let _ = token(&emu, TENANT_A).await;
}

#[tokio::test]
async fn request_log_records_everything_but_secrets() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    emu.control().clear_requests();
    let r = g
        .req(reqwest::Method::POST, "/users")
        .header("client-request-id", "0b7f3b49-6d4e-4d0e-a3a4-21a7f8f6a001")
        .header("x-ms-throttle-priority", "Low")
        .json(&new_user("beth", "contoso.com"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let request_id = r.headers()["request-id"].to_str().expect("rid").to_string();
    let (_, _, _) = g
        .get("/users?$filter=userPrincipalName eq 'beth@contoso.com'&$select=id")
        .await;
    let log: Vec<LoggedRequest> = emu.control().requests();
    assert_eq!(log.len(), 2);
    assert!(log[0].seq < log[1].seq);
    let create = &log[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, "/v1.0/users");
    assert_eq!(create.status, 201);
    assert_eq!(create.tenant.as_deref(), Some(TENANT_A));
    assert_eq!(create.client_id.as_deref(), Some(CLIENT_ID));
    assert_eq!(
        create.client_request_id.as_deref(),
        Some("0b7f3b49-6d4e-4d0e-a3a4-21a7f8f6a001")
    );
    assert_eq!(create.request_id, request_id);
    assert_eq!(create.throttle_priority.as_deref(), Some("Low"));
    assert_eq!(create.batch_seq, None);
    let body = create.body.clone().expect("body");
    assert_eq!(body["passwordProfile"]["password"], "***");
    assert_eq!(body["userPrincipalName"], "beth@contoso.com");
    assert!(log[1]
        .query
        .as_deref()
        .is_some_and(|q| q.contains("filter")));
    let text = serde_json::to_string(&log).expect("json");
    assert!(!text.contains(GOOD_PASSWORD));
    assert!(!text.contains(&g.token));
    assert_eq!(emu.control().requests_for(TENANT_B).len(), 0);
}

#[tokio::test]
async fn http_control_mirrors_the_in_process_api() {
    let emu = start(EmulatorConfig::default()).await;
    let c = http();
    let base = format!("{}/_emulator", emu.authority_host());
    let tenant = "44444444-4444-4444-8444-444444444444";
    let r = c
        .post(format!("{base}/apps"))
        .json(&json!({"client_id": CLIENT_ID, "client_secret": SECRET}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let r = c
        .post(format!("{base}/tenants"))
        .json(&json!({"id": tenant, "domains": ["woodgrove.com"], "size": "Medium", "consented": true}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let r = c
        .post(format!("{base}/tenants/{tenant}/users"))
        .json(&SeedUser {
            user_principal_name: "cleo@woodgrove.com".into(),
            usage_location: Some("FR".into()),
            ..Default::default()
        })
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = c
        .patch(format!("{base}/tenants/{tenant}/users/{id}"))
        .json(&json!({"jobTitle": "Pilot"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let r = c
        .patch(format!("{base}/tenants/{tenant}/users/{id}"))
        .json(&json!({"usageLocation": "Mars"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let g = Graph::new(&emu, tenant).await;
    let (s, _, v) = g.get(&format!("/users/{id}?$select=jobTitle")).await;
    assert_eq!((s, v["jobTitle"].clone()), (200, json!("Pilot")));
    let r = c
        .post(format!("{base}/faults"))
        .json(&json!({"path_contains": "/users", "kind": {"type": "status", "status": 503}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    assert_eq!(g.get("/users").await.0, 503);
    let r = c
        .put(format!("{base}/replication-delay"))
        .json(&json!({"ms": 0}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let log: Vec<LoggedRequest> = c
        .get(format!("{base}/requests?tenant={tenant}"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(log.iter().any(|r| r.status == 503));
    assert!(
        log.iter().all(|r| !r.path.starts_with("/_emulator")),
        "control calls are not logged"
    );
    let r = c
        .delete(format!("{base}/tenants/{tenant}/users/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let users: Value = c
        .get(format!("{base}/tenants/{tenant}/users"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(users[0]["deleted"], true);
    assert_eq!(g.get(&format!("/users/{id}")).await.0, 404);
    let r = c
        .delete(format!("{base}/tenants/{tenant}/users/{id}?hard=true"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let r = c
        .put(format!("{base}/tenants/{tenant}/consent"))
        .json(&json!({"consented": false}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    // The token issued before the withdrawal lives on until it expires.
    assert_eq!(g.get("/users").await.0, 200);
    let r = c
        .post(format!("{base}/tenants/{tenant}/tokens/expire"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    assert_eq!(g.get("/users").await.0, 401);
    let r = c
        .put(format!("{base}/tenants/{tenant}/permissions"))
        .json(&json!({"permissions": ["User.Read.All"]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let r = c
        .delete(format!("{base}/requests"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    assert!(emu.control().requests().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn config_from_toml() {
    let toml = format!(
        r#"
time_scale = 2.0
replication_delay_ms = 50

[throttling]
app_tenant_writes = 10

[[apps]]
client_id = "{CLIENT_ID}"
client_secret = "{SECRET}"

[[tenants]]
id = "{TENANT_A}"
domains = ["contoso.com"]
size = "Large"

[[seed_users]]
tenant = "{TENANT_A}"
user = {{ userPrincipalName = "dora@contoso.com", department = "Ops" }}
"#
    );
    let cfg = EmulatorConfig::from_toml_str(&toml).expect("config");
    assert_eq!(cfg.throttling.app_tenant_writes, 10);
    assert_eq!(cfg.throttling.app_tenant_ru_large, 8_000);
    let emu = start(cfg).await;
    assert_eq!(
        emu.control().users(TENANT_A)[0].department.as_deref(),
        Some("Ops")
    );
    assert!(EmulatorConfig::from_toml_str("unknown_key = 1").is_err());
    assert!(EmulatorConfig::from_toml_str("time_scale = 0").is_err());
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("emu.toml");
    std::fs::write(&p, "token_lifetime_secs = 60").expect("write");
    assert_eq!(
        EmulatorConfig::from_file(&p)
            .expect("file")
            .token_lifetime_secs,
        60
    );
}
