//! JSON batching and throttling of the emulator.

use crate::helpers::*;
use entra_daemon::emulator::{Fault, FaultKind, SeedUser, ThrottleConfig};
use serde_json::{json, Value};

fn by_id<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["responses"]
        .as_array()
        .and_then(|r| r.iter().find(|i| i["id"] == id))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn batch_with_mixed_results_and_dependencies() {
    let emu = start(config()).await;
    let id = emu
        .control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: "rita@contoso.com".into(),
                ..Default::default()
            },
        )
        .expect("seed");
    let g = Graph::new(&emu, TENANT_A).await;
    let batch = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": new_user("sam", "contoso.com")},
        {"id": "2", "method": "GET", "url": format!("/users/{id}?$select=id,accountEnabled")},
        {"id": "3", "method": "GET", "url": "/users/nobody@contoso.com"},
        {"id": "4", "method": "PATCH", "url": "/users/nobody@contoso.com", "dependsOn": ["3"], "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "x"}},
        {"id": "5", "method": "PATCH", "url": format!("/users/{id}"), "dependsOn": ["2"], "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "Chef"}},
        {"id": "6", "method": "POST", "url": "users", "headers": {"Content-Type": "application/json"}, "body": new_user("sam", "contoso.com")}
    ]});
    let (s, _, v) = g.post("/$batch", &batch).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["responses"].as_array().map(Vec::len), Some(6));
    assert_eq!(by_id(&v, "1")["status"], 201);
    assert_eq!(
        by_id(&v, "1")["body"]["userPrincipalName"],
        "sam@contoso.com"
    );
    assert_eq!(by_id(&v, "2")["status"], 200);
    assert_eq!(by_id(&v, "2")["body"]["accountEnabled"], true);
    assert_eq!(by_id(&v, "3")["status"], 404);
    assert_eq!(by_id(&v, "4")["status"], 424);
    assert_eq!(by_id(&v, "5")["status"], 204);
    assert_eq!(by_id(&v, "6")["status"], 400);
    assert!(by_id(&v, "6")["body"]["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("already exists"));
    assert!(by_id(&v, "2")["headers"]["x-ms-resource-unit"].is_string());
    let u = emu
        .control()
        .users(TENANT_A)
        .into_iter()
        .find(|u| u.id == id)
        .expect("user");
    assert_eq!(u.job_title.as_deref(), Some("Chef"));

    // Items are logged individually, pointing at their batch.
    let log = emu.control().requests();
    let outer = log
        .iter()
        .find(|r| r.path == "/v1.0/$batch")
        .expect("outer");
    let items: Vec<_> = log
        .iter()
        .filter(|r| r.batch_seq == Some(outer.seq))
        .collect();
    assert_eq!(items.len(), 6);
    let create = items
        .iter()
        .find(|r| r.batch_item_id.as_deref() == Some("1"))
        .expect("item 1");
    assert_eq!(
        create
            .body
            .as_ref()
            .map(|b| b["passwordProfile"]["password"].clone()),
        Some(json!("***"))
    );
}

#[tokio::test]
async fn malformed_batches_are_rejected_whole() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let (s, _, v) = g.post("/$batch", &json!({ "requests": many })).await;
    assert_eq!(s, 400, "{v}");
    let (s, _, _) = g
        .post("/$batch", &json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]}))
        .await;
    assert_eq!(s, 400);
    let (s, _, v) = g
        .post("/$batch", &json!({"requests": [{"id": "1", "method": "POST", "url": "/users", "body": new_user("tom", "contoso.com")}]}))
        .await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("Content-Type"), "{v}");
    let (s, _, _) = g.post("/$batch", &json!({"nope": []})).await;
    assert_eq!(s, 400);
    assert!(emu.control().users(TENANT_A).is_empty());
}

fn tiny_limits(ru: u32, writes: u32) -> ThrottleConfig {
    ThrottleConfig {
        app_tenant_ru_small: ru,
        app_tenant_writes: writes,
        app_tenant_writes_window_secs: 10.0,
        ..ThrottleConfig::default()
    }
}

#[tokio::test]
async fn resource_unit_limit_gives_429_with_retry_after_and_scope() {
    let mut cfg = config();
    cfg.throttling = tiny_limits(4, 1000);
    cfg.time_scale = 10.0; // 4 RU per 10 s becomes 4 RU per second.
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    // GET /users costs 2 RU.
    assert_eq!(g.get("/users").await.0, 200);
    let (s, h, _) = g.get("/users").await;
    assert_eq!(s, 200);
    assert!(
        h.contains_key("x-ms-throttle-limit-percentage"),
        "at 100% of the limit"
    );
    let (s, h, v) = g.get("/users").await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(error_code(&v), "TooManyRequests");
    let ra: f64 = h["retry-after"]
        .to_str()
        .expect("ra")
        .parse()
        .expect("number");
    assert!(ra > 0.0 && ra <= 1.0, "{ra}");
    assert_eq!(
        h["x-ms-throttle-scope"].to_str().expect("scope"),
        format!("Tenant_Application/ReadWrite/{CLIENT_ID}/{TENANT_A}")
    );
    // The refused request was charged, and Retry-After covers it: honouring
    // it is enough.
    tokio::time::sleep(std::time::Duration::from_secs_f64(ra)).await;
    assert_eq!(g.get("/users").await.0, 200);
}

#[tokio::test]
async fn write_limit_throttles_writes_but_not_reads() {
    let mut cfg = config();
    cfg.throttling = tiny_limits(1000, 2);
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(
        g.post("/users", &new_user("ursula", "contoso.com")).await.0,
        201
    );
    assert_eq!(
        g.post("/users", &new_user("victor", "contoso.com")).await.0,
        201
    );
    let (s, h, _) = g.post("/users", &new_user("wendy", "contoso.com")).await;
    assert_eq!(s, 429);
    assert_eq!(
        h["x-ms-throttle-scope"].to_str().expect("scope"),
        format!("Tenant_Application/Write/{CLIENT_ID}/{TENANT_A}")
    );
    assert!(h.contains_key("retry-after"));
    assert_eq!(g.get("/users").await.0, 200);
    assert_eq!(
        emu.control().users(TENANT_A).len(),
        2,
        "a throttled create creates nothing"
    );
}

#[tokio::test]
async fn batch_items_are_throttled_individually() {
    let mut cfg = config();
    cfg.throttling = tiny_limits(1000, 2);
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let reqs: Vec<Value> = ["xena", "yuri", "zoe"]
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"id": i.to_string(), "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": new_user(a, "contoso.com")}))
        .chain(std::iter::once(json!({"id": "r", "method": "GET", "url": "/users?$top=5"})))
        .collect();
    let (s, _, v) = g.post("/$batch", &json!({ "requests": reqs })).await;
    assert_eq!(s, 200);
    let statuses: Vec<u64> = ["0", "1", "2"]
        .iter()
        .map(|i| by_id(&v, i)["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{v}");
    let throttled = ["0", "1", "2"]
        .iter()
        .map(|i| by_id(&v, i))
        .find(|r| r["status"] == 429)
        .expect("one 429");
    assert!(
        throttled["headers"]["Retry-After"].is_string(),
        "{throttled}"
    );
    assert_eq!(throttled["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(by_id(&v, "r")["status"], 200);
}

#[tokio::test]
async fn injected_429_on_one_batch_item() {
    let emu = start(config()).await;
    emu.control().inject(Fault {
        tenant: Some(TENANT_A.into()),
        method: Some("PATCH".into()),
        path_contains: Some("/users/".into()),
        count: 1,
        kind: FaultKind::Status {
            status: 429,
            retry_after: Some(0.2),
        },
    });
    let id = emu
        .control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: "amy@contoso.com".into(),
                ..Default::default()
            },
        )
        .expect("seed");
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g
        .post(
            "/$batch",
            &json!({"requests": [
                {"id": "1", "method": "PATCH", "url": format!("/users/{id}"), "headers": {"Content-Type": "application/json"}, "body": {"jobTitle": "a"}},
                {"id": "2", "method": "GET", "url": format!("/users/{id}")}
            ]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(by_id(&v, "1")["status"], 429);
    assert_eq!(by_id(&v, "1")["headers"]["Retry-After"], "0.2");
    assert_eq!(by_id(&v, "2")["status"], 200);
}
