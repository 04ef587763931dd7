//! The recycle bin in the emulator: deleted users listed (the cast, $filter,
//! $select, paging), read, restored (id, properties, groups; UPN conflicts
//! and newUserPrincipalName), deleted for good by Graph, by the control API
//! and by the retention running out, and the permissions of each call.

use crate::groups::{config_with, seed_group, seed_user, GROUP_ADMIN};
use crate::helpers::*;
use entra_daemon::emulator::{EmulatorConfig, SeedUser};
use serde_json::{json, Value};

const BIN: &str = "/directory/deletedItems/microsoft.graph.user";

fn seed_mail(emu: &entra_daemon::emulator::RunningEmulator, alias: &str) -> String {
    emu.control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: format!("{alias}@contoso.com"),
                mail: Some(format!("{alias}@contoso.com")),
                display_name: Some(format!("User {alias}")),
                employee_id: Some(format!("E-{alias}")),
                ..Default::default()
            },
        )
        .expect("seed user")
}

fn ids(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn deleted_users_are_listed_filtered_selected_and_paged() {
    let emu = start(config()).await;
    let users: Vec<String> = ["ann", "bob", "bea", "cat"]
        .iter()
        .map(|a| seed_mail(&emu, a))
        .collect();
    let g = Graph::new(&emu, TENANT_A).await;
    for id in &users[..3] {
        assert_eq!(g.delete(&format!("/users/{id}")).await.0, 204);
    }
    let (s, _, v) = g.get("/directory/deletedItems").await;
    assert_eq!((s, error_code(&v)), (400, "Request_BadRequest"), "{v}");
    let (s, _, v) = g.get(BIN).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(ids(&v), users[..3]);
    assert!(v["value"][0]["deletedDateTime"].is_string(), "{v}");
    assert_eq!(v["value"][0]["userPrincipalName"], "ann@contoso.com");

    let (_, _, v) = g
        .get(&format!("{BIN}?$filter=startswith(userPrincipalName,'b')"))
        .await;
    assert_eq!(ids(&v), users[1..3]);
    let (_, _, v) = g
        .get(&format!("{BIN}?$filter=mail eq 'BEA@contoso.com'"))
        .await;
    assert_eq!(ids(&v), [users[2].clone()]);
    let (s, _, _) = g.get(&format!("{BIN}?$filter=jobTitle eq 'x'")).await;
    assert_eq!(s, 400);
    let (_, _, v) = g.get(&format!("{BIN}?$select=id,employeeId")).await;
    assert_eq!(
        v["value"][0],
        json!({"id": users[0], "employeeId": "E-ann"})
    );
    let context = v["@odata.context"].as_str().expect("context");
    assert!(
        context.ends_with("$metadata#directory/deletedItems/microsoft.graph.user(id,employeeId)"),
        "{context}"
    );

    let (_, _, v) = g.get(&format!("{BIN}?$top=2")).await;
    assert_eq!(ids(&v), users[..2]);
    let next = v["@odata.nextLink"].as_str().expect("nextLink");
    let rel = next.strip_prefix(&g.base).expect("same base");
    let (_, _, v) = g.get(rel).await;
    assert_eq!(ids(&v), [users[2].clone()]);
    assert!(v.get("@odata.nextLink").is_none());
    // Sorting needs the advanced query parameters.
    let sorted = format!("{BIN}?$orderby=userPrincipalName desc");
    assert_eq!(g.get(&sorted).await.0, 400);
    let (s, _, v) = done(
        g.req(reqwest::Method::GET, &format!("{sorted}&$count=true"))
            .header("ConsistencyLevel", "eventual")
            .send()
            .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["@odata.count"], 3);
    assert_eq!(
        ids(&v),
        [users[1].clone(), users[2].clone(), users[0].clone()]
    );
}

#[tokio::test]
async fn a_deleted_user_is_read_and_restored_with_its_id_properties_and_groups() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let ann = seed_mail(&emu, "ann");
    let bob = seed_user(&emu, "bob");
    let staff = seed_group(&emu, "Staff", vec![ann.clone(), bob.clone()]);
    let ctl = emu.control();
    ctl.set_manager(TENANT_A, &ann, &bob).expect("manager");
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.delete(&format!("/users/{ann}")).await.0, 204);
    assert_eq!(
        ctl.group_members(TENANT_A, &staff).expect("g"),
        std::slice::from_ref(&bob)
    );
    assert_eq!(g.get(&format!("/users/{ann}")).await.0, 404);

    let (s, _, v) = g.get(&format!("/directory/deletedItems/{ann}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["@odata.type"], "#microsoft.graph.user");
    assert_eq!(v["mail"], "ann@contoso.com");
    let (_, _, v) = g
        .get(&format!("/directory/deletedItems/{ann}?$select=id"))
        .await;
    assert_eq!(v.as_object().map(|o| o.len()), Some(3), "{v}");
    assert_eq!(
        g.get(&format!("/directory/deletedItems/{bob}")).await.0,
        404
    );

    // "Do not supply a request body for this method."
    let restore = format!("/directory/deletedItems/{ann}/restore");
    let (s, _, v) = done(g.req(reqwest::Method::POST, &restore).send().await).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], ann);
    assert_eq!(v["userPrincipalName"], "ann@contoso.com");
    let (s, _, v) = g
        .get(&format!("/users/{ann}?$select=employeeId,mail"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["employeeId"].clone(), v["mail"].clone()),
        (json!("E-ann"), json!("ann@contoso.com"))
    );
    assert_eq!(
        ctl.group_members(TENANT_A, &staff).expect("g"),
        [bob.clone(), ann.clone()]
    );
    assert_eq!(ctl.manager_of(TENANT_A, &ann).expect("ann"), Some(bob));
    let (_, _, v) = g.get(BIN).await;
    assert_eq!(ids(&v), Vec::<String>::new());
    // Restoring twice: it is no longer in the deleted items.
    let again = g
        .post(
            &format!("/directory/deletedItems/{ann}/restore"),
            &json!({}),
        )
        .await;
    assert_eq!(again.0, 404);
}

#[tokio::test]
async fn a_restore_onto_a_reused_upn_conflicts_unless_given_a_new_one() {
    let emu = start(config()).await;
    let ann = seed_mail(&emu, "ann");
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.delete(&format!("/users/{ann}")).await.0, 204);
    // A rehire got a new account with the old UPN (and mail) meanwhile.
    let new_ann = seed_mail(&emu, "ann");
    let restore = format!("/directory/deletedItems/{ann}/restore");
    let (s, _, v) = g.post(&restore, &json!({})).await;
    assert_eq!((s, error_code(&v)), (400, "Request_BadRequest"), "{v}");
    assert!(error_message(&v).contains("userPrincipalName"), "{v}");
    assert_eq!(v["error"]["details"][0]["code"], "ObjectConflict");

    let (s, _, v) = g
        .post(
            &restore,
            &json!({"newUserPrincipalName": "bad@fabrikam.com"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(error_message(&v).contains("verified domain"), "{v}");
    // The new UPN alone still collides on mail (proxyAddresses).
    let moved = json!({"newUserPrincipalName": "ann.old@contoso.com"});
    let (s, _, v) = g.post(&restore, &moved).await;
    assert_eq!(s, 400, "{v}");
    assert!(error_message(&v).contains("proxyAddresses"), "{v}");
    let (s, _, v) = g.post(&restore, &json!({"colour": "red"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(error_message(&v).contains("'colour'"), "{v}");
    let (s, _, v) = g
        .post(&restore, &json!({"newUserPrincipalName": "ann.old@contoso.com", "autoReconcileProxyConflict": true}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], ann);
    assert_eq!(v["userPrincipalName"], "ann.old@contoso.com");
    assert_eq!(v["mail"], Value::Null);
    let ctl = emu.control();
    assert_eq!(
        ctl.find_user(TENANT_A, "ann@contoso.com").expect("new").id,
        new_ann
    );
    assert_eq!(ctl.user_count(TENANT_A), 2);
}

#[tokio::test]
async fn deleted_users_expire_after_the_retention_or_when_purged() {
    let emu = start(EmulatorConfig {
        deleted_items_retention_ms: 150,
        ..config()
    })
    .await;
    let ann = seed_user(&emu, "ann");
    let ctl = emu.control();
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.delete(&format!("/users/{ann}")).await.0, 204);
    assert_eq!(ids(&g.get(BIN).await.2), std::slice::from_ref(&ann));
    wait_until(|| async { ids(&g.get(BIN).await.2).is_empty() }).await;
    assert_eq!(
        g.get(&format!("/directory/deletedItems/{ann}")).await.0,
        404
    );
    assert!(ctl.users(TENANT_A).iter().all(|u| u.id != ann));

    // For good at once: through Graph, and through the control API over HTTP.
    let emu = start(config()).await;
    let ctl = emu.control();
    let g = Graph::new(&emu, TENANT_A).await;
    let (bob, cat) = (seed_user(&emu, "bob"), seed_user(&emu, "cat"));
    for id in [&bob, &cat] {
        assert_eq!(g.delete(&format!("/users/{id}")).await.0, 204);
    }
    assert_eq!(
        g.delete(&format!("/directory/deletedItems/{bob}")).await.0,
        204
    );
    assert_eq!(
        g.delete(&format!("/directory/deletedItems/{bob}")).await.0,
        404
    );
    let host = emu.authority_host();
    let listed: Vec<Value> = http()
        .get(format!("{host}/_emulator/tenants/{TENANT_A}/deleted-users"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], cat);
    assert_eq!(listed[0]["deleted"], true);
    let purge = format!("{host}/_emulator/tenants/{TENANT_A}/deleted-users/{cat}");
    assert_eq!(
        http().delete(&purge).send().await.expect("purge").status(),
        204
    );
    assert_eq!(
        http().delete(&purge).send().await.expect("again").status(),
        404
    );
    assert!(ctl.deleted_users(TENANT_A).expect("bin").is_empty());
    assert_eq!(ctl.users(TENANT_A).len(), 0);
}

#[tokio::test]
async fn the_recycle_bin_needs_its_permissions() {
    let emu = start(config_with(&["User.Read.All"])).await;
    let ann = seed_user(&emu, "ann");
    emu.control()
        .soft_delete_user(TENANT_A, &ann)
        .expect("delete");
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.get(BIN).await.0, 200);
    let restore = format!("/directory/deletedItems/{ann}/restore");
    let (s, _, v) = g.post(&restore, &json!({})).await;
    assert_eq!(
        (s, error_code(&v)),
        (403, "Authorization_RequestDenied"),
        "{v}"
    );
    assert_eq!(
        g.delete(&format!("/directory/deletedItems/{ann}")).await.0,
        403
    );

    let emu = start(config_with(&["Group.Read.All"])).await;
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.get(BIN).await.0, 403);

    // User.DeleteRestore.All restores (and lists) without any other role.
    let emu = start(config_with(&["User.DeleteRestore.All"])).await;
    let ann = seed_user(&emu, "ann");
    emu.control()
        .soft_delete_user(TENANT_A, &ann)
        .expect("delete");
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(ids(&g.get(BIN).await.2), std::slice::from_ref(&ann));
    let restore = format!("/directory/deletedItems/{ann}/restore");
    assert_eq!(g.post(&restore, &json!({})).await.0, 200);
    assert_eq!(emu.control().user_count(TENANT_A), 1);
}
