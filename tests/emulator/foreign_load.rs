//! Throttling headers and other apps' load, as Graph's identity limits
//! document them (learn.microsoft.com/graph/throttling-limits, identity and
//! access service limits): `x-ms-throttle-limit-percentage` above 0.8 of a
//! limit, `x-ms-throttle-scope` naming the limit that tripped, the tenant's
//! write budget shared with every other app, refusals that keep counting.
use crate::helpers::*;
use entra_daemon::emulator::{EmulatorConfig, ThrottleConfig};
use serde_json::json;

fn percentage(h: &reqwest::header::HeaderMap) -> Option<f64> {
    h.get("x-ms-throttle-limit-percentage")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn retry_after(h: &reqwest::header::HeaderMap) -> f64 {
    h["retry-after"]
        .to_str()
        .expect("retry-after")
        .parse()
        .expect("seconds")
}

#[tokio::test]
async fn the_limit_percentage_is_sent_only_above_four_fifths_of_a_limit() {
    let mut cfg = config();
    cfg.throttling = ThrottleConfig {
        app_tenant_writes: 10,
        app_tenant_writes_window_secs: 3_600.0,
        ..ThrottleConfig::default()
    };
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let mut seen = Vec::new();
    for i in 0..10 {
        let (s, h, v) = g
            .post("/users", &new_user(&format!("p{i}"), "contoso.com"))
            .await;
        assert_eq!(s, 201, "{v}");
        seen.push(percentage(&h));
    }
    // Eight of ten used is 0.8, not above it.
    assert!(seen[..8].iter().all(Option::is_none), "{seen:?}");
    assert_eq!(seen[8], Some(0.9));
    assert_eq!(seen[9], Some(1.0));
    let (s, h, _) = g.post("/users", &new_user("p10", "contoso.com")).await;
    assert_eq!(s, 429);
    assert_eq!(
        h["x-ms-throttle-scope"].to_str().expect("scope"),
        format!("Tenant_Application/Write/{CLIENT_ID}/{TENANT_A}")
    );
    assert_eq!(h["x-ms-throttle-information"], "WriteLimitExceeded");
}

fn shared_tenant() -> EmulatorConfig {
    let mut cfg = config();
    // The tenant's 18,000 writes per 5 minutes refill at 600 a second.
    cfg.time_scale = 10.0;
    cfg
}

#[tokio::test]
async fn another_apps_load_takes_the_tenants_budget_and_the_429_names_the_tenant() {
    let emu = start(shared_tenant()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    // Another app has just spent the tenant's burst and keeps writing 50 of
    // its 60 writes per second (Microsoft time).
    emu.control().set_foreign_load(TENANT_A, 50.0, 18_000.0);
    let (s, h, v) = g.post("/users", &new_user("ann", "contoso.com")).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(
        h["x-ms-throttle-scope"].to_str().expect("scope"),
        format!("Tenant/Write/{CLIENT_ID}/{TENANT_A}")
    );
    // What is left is 10 writes per Microsoft second, 100 a real second
    // here; the refused write is owed too: two writes, 20 ms.
    let ra = retry_after(&h);
    assert!(ra > 0.0 && ra <= 0.02, "{ra}");
    // Reads have their own budget, and the other tenant its own.
    assert_eq!(g.get("/users?$top=1").await.0, 200);
    let other = Graph::new(&emu, TENANT_B).await;
    let (s, h, _) = other.post("/users", &new_user("bob", "fabrikam.com")).await;
    assert_eq!(s, 201);
    assert_eq!(percentage(&h), None);
    // Obeying Retry-After gets through, near the limit, and says so.
    tokio::time::sleep(std::time::Duration::from_secs_f64(ra)).await;
    let (s, h, v) = g.post("/users", &new_user("ann", "contoso.com")).await;
    assert_eq!(s, 201, "{v}");
    assert!(percentage(&h).is_some_and(|p| p >= 0.8), "{h:?}");
}

#[tokio::test]
async fn a_foreign_load_can_be_set_over_http_and_on_a_schedule() {
    let mut cfg = shared_tenant();
    let toml = format!(
        "[[throttling.foreign_load]]\ntenant = \"{TENANT_B}\"\nwrites_per_sec = 60.0\nburst = 18000.0\n"
    );
    cfg.throttling = EmulatorConfig::from_toml_str(&toml)
        .expect("a foreign load in the config")
        .throttling;
    let emu = start(cfg).await;
    let b = Graph::new(&emu, TENANT_B).await;
    let (s, h, _) = b.post("/users", &new_user("cat", "fabrikam.com")).await;
    assert_eq!(s, 429, "the configured load took everything");
    assert!(h["x-ms-throttle-scope"]
        .to_str()
        .expect("scope")
        .starts_with("Tenant/Write/"));

    let put = http()
        .put(format!(
            "{}/_emulator/tenants/{TENANT_A}/foreign-load",
            emu.authority_host()
        ))
        .json(&json!({"writes_per_sec": 60.0, "burst": 18000.0}))
        .send()
        .await
        .expect("control");
    assert_eq!(put.status(), 204);
    let a = Graph::new(&emu, TENANT_A).await;
    assert_eq!(
        a.post("/users", &new_user("dan", "contoso.com")).await.0,
        429
    );

    let bad = "[[throttling.foreign_load]]\ntenant = \"x\"\nwrites_per_sec = -1.0\n";
    assert!(EmulatorConfig::from_toml_str(bad).is_err());
}

#[tokio::test]
async fn a_client_ignoring_retry_after_stays_throttled_longer() {
    let mut cfg = config();
    cfg.throttling = ThrottleConfig {
        app_tenant_writes: 2,
        app_tenant_writes_window_secs: 20.0,
        ..ThrottleConfig::default()
    };
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    for i in 0..2 {
        assert_eq!(
            g.post("/users", &new_user(&format!("e{i}"), "contoso.com"))
                .await
                .0,
            201
        );
    }
    let mut waits = Vec::new();
    // A debt of at most one window's worth: three refusals to see it grow.
    for i in 0..3 {
        let (s, h, _) = g
            .post("/users", &new_user(&format!("f{i}"), "contoso.com"))
            .await;
        assert_eq!(s, 429);
        waits.push(retry_after(&h));
    }
    // Every refusal was charged: each Retry-After is longer than the last.
    assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
    assert_eq!(emu.control().users(TENANT_A).len(), 2);
}
