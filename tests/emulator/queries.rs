//! Graph /users queries of the emulator: $filter, paging, replication delay.

use crate::helpers::*;
use entra_daemon::emulator::{EmulatorConfig, SeedUser};
use serde_json::{json, Value};

#[tokio::test]
async fn filter_eq_is_case_insensitive_and_combines() {
    let emu = start(config()).await;
    let ctl = emu.control();
    for (upn, mail, emp) in [
        ("nina@contoso.com", "Nina.O'Hara@contoso.com", "E1"),
        ("omar@contoso.com", "omar@contoso.com", "E2"),
        ("pia@contoso.com", "pia@contoso.com", "E3"),
    ] {
        ctl.seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: upn.into(),
                mail: Some(mail.into()),
                employee_id: Some(emp.into()),
                ..Default::default()
            },
        )
        .expect("seed");
    }
    let g = Graph::new(&emu, TENANT_A).await;
    let count = |v: &Value| v["value"].as_array().map(Vec::len).unwrap_or(99);
    let (s, _, v) = g
        .get("/users?$filter=mail eq 'nina.o''hara@CONTOSO.com'")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(count(&v), 1);
    let (_, _, v) = g
        .get("/users?$filter=userPrincipalName eq 'OMAR@contoso.com' or employeeId eq 'E3'")
        .await;
    assert_eq!(count(&v), 2);
    let (_, _, v) = g
        .get("/users?$filter=mail eq 'omar@contoso.com' and employeeId eq 'E3'")
        .await;
    assert_eq!(count(&v), 0);
    let id = ctl.users(TENANT_A)[0].id.clone();
    let (_, _, v) = g
        .get(&format!("/users?$filter=id eq '{id}'&$select=id,mail"))
        .await;
    assert_eq!(count(&v), 1);
    assert!(v["value"][0].get("displayName").is_none());

    let (s, _, v) = g.get("/users?$filter=endsWith(mail,'@contoso.com')").await;
    assert_eq!(s, 400);
    assert_eq!(error_code(&v), "Request_UnsupportedQuery");
    let r = g
        .req(
            reqwest::Method::GET,
            "/users?$filter=endsWith(mail,'@contoso.com')&$count=true",
        )
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["@odata.count"], 3);
    let (s, _, _) = g.get("/users?$filter=mail eq").await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn paging_over_250_users() {
    let emu = start(config()).await;
    let ctl = emu.control();
    for i in 0..250 {
        ctl.seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: format!("u{i:03}@contoso.com"),
                ..Default::default()
            },
        )
        .expect("seed");
    }
    let g = Graph::new(&emu, TENANT_A).await;
    let mut seen = Vec::new();
    let mut url = format!("{}/users?$top=100&$select=id,userPrincipalName", g.base);
    let mut pages = 0;
    loop {
        let (s, _, v) = done(g.client.get(&url).bearer_auth(&g.token).send().await).await;
        assert_eq!(s, 200, "{v}");
        pages += 1;
        let items = v["value"].as_array().expect("value");
        assert!(items.len() <= 100);
        seen.extend(
            items
                .iter()
                .map(|u| u["userPrincipalName"].as_str().unwrap_or("").to_string()),
        );
        match v["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.starts_with(&g.base) && next.contains("$skiptoken="),
                    "{next}"
                );
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 250);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 250);
    // Default page size is 100.
    let (_, _, v) = g.get("/users").await;
    assert_eq!(v["value"].as_array().map(Vec::len), Some(100));
    for bad in ["0", "1000", "abc"] {
        let (s, _, v) = g.get(&format!("/users?$top={bad}")).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    assert_eq!(g.get("/users?$skip=10").await.0, 400);
}

#[tokio::test]
async fn replication_delay_hides_new_users_but_not_from_uniqueness() {
    // Microsoft's lag is the default: a few hundred ms.
    let lag = EmulatorConfig::default().replication_delay_ms;
    assert!((100..=1000).contains(&lag), "{lag}");
    let emu = start(EmulatorConfig {
        replication_delay_ms: lag,
        ..config()
    })
    .await;
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g.post("/users", &new_user("quinn", "contoso.com")).await;
    assert_eq!(s, 201);
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(g.get(&format!("/users/{id}")).await.0, 404);
    assert_eq!(g.get("/users/quinn@contoso.com").await.0, 404);
    assert_eq!(
        g.patch(&format!("/users/{id}"), &json!({"jobTitle": "x"}))
            .await
            .0,
        404
    );
    let (_, _, list) = g
        .get("/users?$filter=userPrincipalName eq 'quinn@contoso.com'")
        .await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(0));
    let (s, _, v) = g.post("/users", &new_user("quinn", "contoso.com")).await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("userPrincipalName already exists"));
    wait_until(|| async { g.get(&format!("/users/{id}")).await.0 == 200 }).await;
    assert_eq!(
        g.patch(&format!("/users/{id}"), &json!({"jobTitle": "x"}))
            .await
            .0,
        204
    );
}
