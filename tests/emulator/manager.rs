//! A user's manager in the emulator: manager/$ref set and removed, the
//! manager read and expanded (and what that costs), replication lag,
//! deleted managers, permissions, and the control API's managers.

use crate::groups::{config_with, seed_user};
use crate::helpers::*;
use entra_daemon::emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{json, Value};

fn by_users(id: &str) -> Value {
    json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{id}") })
}

fn by_object(id: &str) -> Value {
    json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}") })
}

const NOBODY: &str = "0b1c2d3e-0000-4000-8000-000000000000";

#[tokio::test]
async fn a_manager_is_set_read_replaced_and_removed() {
    let emu = start(config()).await;
    let (ann, bob, cat) = (
        seed_user(&emu, "ann"),
        seed_user(&emu, "bob"),
        seed_user(&emu, "cat"),
    );
    let g = Graph::new(&emu, TENANT_A).await;
    let refs = format!("/users/{ann}/manager/$ref");
    let (s, _, v) = g.get(&format!("/users/{ann}/manager")).await;
    assert_eq!(
        (s, error_code(&v)),
        (404, "Request_ResourceNotFound"),
        "{v}"
    );
    assert!(error_message(&v).contains("'manager'"), "{v}");

    let (s, _, v) = g.send(Method::PUT, &refs, &by_users(&bob)).await;
    assert_eq!((s, v.clone()), (204, Value::Null), "{v}");
    let (s, _, v) = g.get(&format!("/users/{ann}/manager")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["@odata.type"], "#microsoft.graph.user");
    assert_eq!(v["id"], bob);
    assert_eq!(v["userPrincipalName"], "bob@contoso.com");
    assert!(v["@odata.context"]
        .as_str()
        .expect("ctx")
        .ends_with("$metadata#directoryObjects/$entity"));
    // By UPN, with $select, and replaced by the directoryObjects form.
    let (_, _, v) = g.get("/users/ann@contoso.com/manager?$select=id").await;
    assert_eq!(v["id"], bob);
    assert!(v.get("userPrincipalName").is_none(), "{v}");
    let (s, _, _) = g.send(Method::PUT, &refs, &by_object(&cat)).await;
    assert_eq!(s, 204);
    assert_eq!(
        emu.control().manager_of(TENANT_A, &ann).expect("ann"),
        Some(cat)
    );

    assert_eq!(g.delete(&refs).await.0, 204);
    let (s, _, v) = g.delete(&refs).await;
    assert_eq!(
        (s, error_code(&v)),
        (404, "Request_ResourceNotFound"),
        "{v}"
    );
    assert_eq!(emu.control().manager_of(TENANT_A, &ann).expect("ann"), None);
    assert_eq!(g.get(&format!("/users/{ann}/manager")).await.0, 404);
}

#[tokio::test]
async fn unknown_users_self_management_and_bad_references_are_refused() {
    let emu = start(config()).await;
    let ann = seed_user(&emu, "ann");
    let g = Graph::new(&emu, TENANT_A).await;
    let refs = format!("/users/{ann}/manager/$ref");
    let (s, _, v) = g.send(Method::PUT, &refs, &by_users(NOBODY)).await;
    assert_eq!(
        (s, error_code(&v)),
        (404, "Request_ResourceNotFound"),
        "{v}"
    );
    assert!(error_message(&v).contains(NOBODY), "{v}");
    let (s, _, v) = g
        .send(
            Method::PUT,
            &format!("/users/{NOBODY}/manager/$ref"),
            &by_users(&ann),
        )
        .await;
    assert_eq!(
        (s, error_code(&v)),
        (404, "Request_ResourceNotFound"),
        "{v}"
    );
    let (s, _, v) = g.send(Method::PUT, &refs, &by_users(&ann)).await;
    assert_eq!((s, error_code(&v)), (400, "Request_BadRequest"), "{v}");
    assert!(error_message(&v).contains("'manager'"), "{v}");
    let (s, _, _) = g
        .send(Method::PUT, &refs, &json!({"@odata.id": "not a reference"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(g.send(Method::PUT, &refs, &json!({})).await.0, 400);
    // POST is not how a manager is assigned.
    assert_eq!(g.post(&refs, &by_users(NOBODY)).await.0, 405);
    assert_eq!(emu.control().manager_of(TENANT_A, &ann).expect("ann"), None);
}

#[tokio::test]
async fn expand_manager_adds_it_one_level_deep_and_costs_one_unit_more() {
    let emu = start(config()).await;
    let (ann, bob, cat) = (
        seed_user(&emu, "ann"),
        seed_user(&emu, "bob"),
        seed_user(&emu, "cat"),
    );
    let ctl = emu.control();
    ctl.set_manager(TENANT_A, &ann, &bob).expect("ann -> bob");
    ctl.set_manager(TENANT_A, &bob, &cat).expect("bob -> cat");
    let g = Graph::new(&emu, TENANT_A).await;

    let (s, h, v) = g.get("/users?$expand=manager($select=id)").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["x-ms-resource-unit"], "3", "GET users 2, $expand +1");
    let rows = v["value"].as_array().expect("value");
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0]["manager"],
        json!({"@odata.type": "#microsoft.graph.user", "id": bob})
    );
    assert_eq!(rows[1]["manager"]["id"], cat);
    // One level only, and no manager property for a user without one.
    assert!(rows[1]["manager"].get("manager").is_none());
    assert!(rows[2].get("manager").is_none(), "{}", rows[2]);

    let path = format!("/users/{ann}?$select=id&$expand=manager($select=id,displayName)");
    let (s, h, v) = g.get(&path).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["x-ms-resource-unit"], "1", "1, $select -1, $expand +1");
    assert_eq!(v["manager"]["id"], bob);
    assert_eq!(v["manager"]["displayName"], Value::Null);
    assert!(v["manager"].get("userPrincipalName").is_none(), "{v}");
    let (_, h, v) = g.get(&format!("/users/{ann}?$expand=manager")).await;
    assert_eq!(h["x-ms-resource-unit"], "2");
    assert_eq!(v["manager"]["userPrincipalName"], "bob@contoso.com");

    for bad in ["memberOf", "manager($levels=max)", "manager($select=nope)"] {
        let (s, _, v) = g.get(&format!("/users/{ann}?$expand={bad}")).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
}

#[tokio::test]
async fn a_manager_not_replicated_yet_cannot_be_referenced() {
    let lag = 60_000;
    let emu = start(EmulatorConfig {
        replication_delay_ms: lag,
        ..config()
    })
    .await;
    let ann = seed_user(&emu, "ann");
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g.post("/users", &new_user("newboss", "contoso.com")).await;
    assert_eq!(s, 201, "{v}");
    let boss = v["id"].as_str().expect("id").to_string();
    let refs = format!("/users/{ann}/manager/$ref");
    let (s, _, v) = g.send(Method::PUT, &refs, &by_users(&boss)).await;
    assert_eq!(
        (s, error_code(&v)),
        (404, "Request_ResourceNotFound"),
        "{v}"
    );
    // Nor can the new user be given a manager before it is readable.
    let (s, _, _) = g
        .send(
            Method::PUT,
            &format!("/users/{boss}/manager/$ref"),
            &by_users(&ann),
        )
        .await;
    assert_eq!(s, 404);
    emu.control().replicate_now();
    assert_eq!(g.send(Method::PUT, &refs, &by_users(&boss)).await.0, 204);
}

#[tokio::test]
async fn a_deleted_manager_is_no_ones_manager() {
    let emu = start(config()).await;
    let (ann, bob, cat) = (
        seed_user(&emu, "ann"),
        seed_user(&emu, "bob"),
        seed_user(&emu, "cat"),
    );
    let ctl = emu.control();
    ctl.set_manager(TENANT_A, &ann, &bob).expect("ann -> bob");
    ctl.set_manager(TENANT_A, &cat, &bob).expect("cat -> bob");
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.delete(&format!("/users/{bob}")).await.0, 204);
    for u in [&ann, &cat] {
        assert_eq!(g.get(&format!("/users/{u}/manager")).await.0, 404);
        assert_eq!(ctl.manager_of(TENANT_A, u).expect("user"), None);
    }
    let (_, _, v) = g.get("/users?$expand=manager").await;
    assert!(v["value"]
        .as_array()
        .expect("value")
        .iter()
        .all(|u| u.get("manager").is_none()));
    // The control API's hard delete clears the link the same way.
    let dan = seed_user(&emu, "dan");
    ctl.set_manager(TENANT_A, &ann, &dan).expect("ann -> dan");
    ctl.hard_delete_user(TENANT_A, &dan).expect("delete dan");
    assert_eq!(ctl.manager_of(TENANT_A, &ann).expect("ann"), None);
}

#[tokio::test]
async fn manager_writes_need_a_user_write_role() {
    let emu = start(config_with(&["User.Read.All"])).await;
    let (ann, bob) = (seed_user(&emu, "ann"), seed_user(&emu, "bob"));
    emu.control()
        .set_manager(TENANT_A, &ann, &bob)
        .expect("ann -> bob");
    let g = Graph::new(&emu, TENANT_A).await;
    let refs = format!("/users/{ann}/manager/$ref");
    assert_eq!(g.get(&format!("/users/{ann}/manager")).await.0, 200);
    for (s, _, v) in [
        g.send(Method::PUT, &refs, &by_users(&bob)).await,
        g.delete(&refs).await,
    ] {
        assert_eq!((s, error_code(&v)), (403, "Authorization_RequestDenied"));
    }
    assert_eq!(
        emu.control().manager_of(TENANT_A, &ann).expect("ann"),
        Some(bob.clone())
    );
    let emu = start(config_with(&["Directory.ReadWrite.All"])).await;
    let (ann, bob) = (seed_user(&emu, "ann"), seed_user(&emu, "bob"));
    let g = Graph::new(&emu, TENANT_A).await;
    let refs = format!("/users/{ann}/manager/$ref");
    assert_eq!(g.send(Method::PUT, &refs, &by_users(&bob)).await.0, 204);
}

#[tokio::test]
async fn the_control_api_sets_and_clears_managers_over_http() {
    let emu = start(config()).await;
    let (ann, bob) = (seed_user(&emu, "ann"), seed_user(&emu, "bob"));
    let base = format!(
        "{}/_emulator/tenants/{TENANT_A}/users/{ann}/manager",
        emu.authority_host()
    );
    let c = http();
    let put = c
        .put(&base)
        .json(&json!({"id": bob}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 204);
    let got: Value = c
        .get(&base)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got, json!({"id": bob}));
    let user = emu
        .control()
        .users(TENANT_A)
        .into_iter()
        .find(|u| u.id == ann);
    assert_eq!(user.expect("ann").manager, Some(bob.clone()));
    assert_eq!(c.delete(&base).send().await.expect("delete").status(), 204);
    assert_eq!(c.delete(&base).send().await.expect("again").status(), 400);
    let own = c
        .put(&base)
        .json(&json!({"id": ann}))
        .send()
        .await
        .expect("own");
    assert_eq!(own.status(), 400);
    let unknown = c
        .put(&base)
        .json(&json!({"id": NOBODY}))
        .send()
        .await
        .expect("x");
    assert_eq!(unknown.status(), 404);
}
