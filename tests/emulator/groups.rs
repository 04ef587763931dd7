//! Graph /groups of the emulator: create and its validation, get, list,
//! delete, replication lag, permissions, and the control API's groups.

use crate::helpers::*;
use entra_daemon::emulator::{EmulatorConfig, RunningEmulator, SeedGroup, SeedUser};
use serde_json::{json, Value};

/// What a consent to manage groups and users grants.
pub const GROUP_ADMIN: &[&str] = &["User.ReadWrite.All", "Group.ReadWrite.All"];

/// [`config`] with these application permissions in every tenant.
pub fn config_with(permissions: &[&str]) -> EmulatorConfig {
    let mut cfg = config();
    for t in &mut cfg.tenants {
        t.permissions = permissions.iter().map(|p| p.to_string()).collect();
    }
    cfg
}

pub fn security_group(name: &str, nickname: &str) -> Value {
    json!({
        "displayName": name,
        "mailEnabled": false,
        "mailNickname": nickname,
        "securityEnabled": true
    })
}

pub fn seed_user(emu: &RunningEmulator, alias: &str) -> String {
    emu.control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: format!("{alias}@contoso.com"),
                ..Default::default()
            },
        )
        .expect("seed user")
}

pub fn seed_group(emu: &RunningEmulator, name: &str, members: Vec<String>) -> String {
    emu.control()
        .seed_group(
            TENANT_A,
            SeedGroup {
                display_name: name.into(),
                members,
                ..Default::default()
            },
        )
        .expect("seed group")
}

fn count(v: &Value) -> usize {
    v["value"].as_array().map_or(usize::MAX, Vec::len)
}

#[tokio::test]
async fn a_security_group_is_created_read_and_found_by_name_and_nickname() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, h, v) = g.post("/groups", &security_group("Sales", "sales")).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(h["x-ms-resource-unit"], "1");
    let id = v["id"].as_str().expect("id").to_string();
    assert!(v["@odata.context"]
        .as_str()
        .expect("ctx")
        .ends_with("/$metadata#groups/$entity"));
    assert_eq!(v["mailEnabled"], false);
    assert_eq!(v["securityEnabled"], true);
    assert_eq!(v["groupTypes"], json!([]));
    assert_eq!(v["mail"], Value::Null);
    assert!(v["securityIdentifier"]
        .as_str()
        .expect("sid")
        .starts_with("S-1-12-1-"));

    let (s, _, v) = g.get(&format!("/groups/{id}?$select=id,displayName")).await;
    assert_eq!(s, 200, "{v}");
    let keys: Vec<&str> = v
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 3, "{v}");
    assert_eq!(v["displayName"], "Sales");

    // Neither displayName nor a security group's mailNickname is unique.
    let (s, _, v) = g.post("/groups", &security_group("Sales", "sales")).await;
    assert_eq!(s, 201, "{v}");
    let (_, _, v) = g.get("/groups?$filter=displayName eq 'SALES'").await;
    assert_eq!(count(&v), 2, "{v}");
    let (_, _, v) = g
        .get("/groups?$filter=mailNickname eq 'sales'&$select=id")
        .await;
    assert_eq!(count(&v), 2, "{v}");
    assert_eq!(v["value"][0]["id"], id);
    let (_, _, v) = g.get("/groups?$filter=mailNickname eq 'other'").await;
    assert_eq!(count(&v), 0, "{v}");
    let (s, _, v) = g.get("/groups?$filter=jobTitle eq 'x'").await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("resource 'Group'"), "{v}");
    let (s, _, v) = g.get("/groups?$select=userPrincipalName").await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("microsoft.graph.group"), "{v}");

    // Its kind was chosen at creation.
    for change in [
        json!({"groupTypes": ["Unified"], "mailEnabled": true}),
        json!({"visibility": "HiddenMembership"}),
    ] {
        let (s, _, v) = g.patch(&format!("/groups/{id}"), &change).await;
        assert_eq!(s, 400, "{change}: {v}");
    }
    let (s, _, v) = g
        .patch(
            &format!("/groups/{id}"),
            &json!({"description": "Sales team"}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
}

#[tokio::test]
async fn creation_is_validated_as_graph_does() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let refused = |body: Value, needle: &'static str| {
        let g = &g;
        async move {
            let (s, _, v) = g.post("/groups", &body).await;
            assert_eq!(s, 400, "{body} -> {v}");
            assert!(error_message(&v).contains(needle), "{body} -> {v}");
        }
    };
    let mut no_nickname = security_group("A", "a");
    no_nickname
        .as_object_mut()
        .expect("obj")
        .remove("mailNickname");
    refused(no_nickname, "mailNickname value is required").await;
    for bad in [
        "with space",
        "a@b",
        "a(b)",
        "semi;colon",
        "quote\"",
        "é",
        &"x".repeat(65),
    ] {
        refused(
            security_group("A", bad),
            "'mailNickname' of resource 'Group'",
        )
        .await;
    }
    refused(security_group(&"n".repeat(257), "n"), "'displayName'").await;
    let mut mail_enabled = security_group("A", "a");
    mail_enabled["mailEnabled"] = json!(true);
    refused(
        mail_enabled,
        "does not currently support writes of mail-enabled groups",
    )
    .await;
    let mut extra = security_group("A", "a");
    extra["colour"] = json!("red");
    refused(extra, "'colour' does not exist").await;
    // 64 characters and the punctuation the rule allows are fine.
    let (s, _, v) = g
        .post(
            "/groups",
            &security_group("A", &format!("{}.-_", "x".repeat(61))),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    // A Microsoft 365 group gets an address from its alias, which is unique.
    let unified = json!({"displayName": "Team", "mailEnabled": true, "mailNickname": "team",
        "securityEnabled": false, "groupTypes": ["Unified"]});
    let (s, _, v) = g.post("/groups", &unified).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["mail"], "team@contoso.com");
    refused(unified, "proxyAddresses already exists").await;
    assert_eq!(emu.control().groups(TENANT_A).len(), 2);
}

#[tokio::test]
async fn groups_are_paged_sorted_and_deleted_as_documented() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let ids: Vec<String> = ["e", "c", "a", "d", "b"]
        .iter()
        .map(|n| seed_group(&emu, n, Vec::new()))
        .collect();
    let g = Graph::new(&emu, TENANT_A).await;
    let mut seen = Vec::new();
    let mut url = format!("{}/groups?$top=2&$select=id", g.base);
    loop {
        let (s, _, v) = g.get(url.trim_start_matches(&g.base)).await;
        assert_eq!(s, 200, "{v}");
        assert!(count(&v) <= 2);
        seen.extend(
            v["value"]
                .as_array()
                .expect("page")
                .iter()
                .map(|i| i["id"].clone()),
        );
        match v["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ids.iter().map(|i| json!(i)).collect::<Vec<_>>());
    let (_, _, v) = g
        .get("/groups?$orderby=displayName desc&$select=displayName")
        .await;
    let names: Vec<&str> = v["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(|i| i["displayName"].as_str())
        .collect();
    assert_eq!(names, ["e", "d", "c", "b", "a"]);
    assert_eq!(g.get("/groups?$top=1000").await.0, 400);

    // A security group is gone for good; a Microsoft 365 group is kept deleted.
    assert_eq!(g.delete(&format!("/groups/{}", ids[0])).await.0, 204);
    assert_eq!(g.get(&format!("/groups/{}", ids[0])).await.0, 404);
    assert_eq!(g.delete(&format!("/groups/{}", ids[0])).await.0, 404);
    assert!(emu
        .control()
        .groups(TENANT_A)
        .iter()
        .all(|x| x.id != ids[0]));
    let unified = json!({"displayName": "Team", "mailEnabled": true, "mailNickname": "team",
        "securityEnabled": false, "groupTypes": ["Unified"]});
    let (_, _, v) = g.post("/groups", &unified).await;
    let team = v["id"].as_str().expect("id").to_string();
    assert_eq!(g.delete(&format!("/groups/{team}")).await.0, 204);
    assert_eq!(g.get(&format!("/groups/{team}")).await.0, 404);
    let kept = emu
        .control()
        .groups(TENANT_A)
        .into_iter()
        .find(|x| x.id == team);
    assert!(kept.expect("soft-deleted").deleted);
}

#[tokio::test]
async fn a_new_group_and_a_new_user_cannot_be_linked_until_replicated() {
    let lag = EmulatorConfig::default().replication_delay_ms;
    let emu = start(EmulatorConfig {
        replication_delay_ms: lag,
        ..config_with(GROUP_ADMIN)
    })
    .await;
    let g = Graph::new(&emu, TENANT_A).await;
    let old_user = seed_user(&emu, "olga");
    let (s, _, v) = g.post("/groups", &security_group("Fresh", "fresh")).await;
    assert_eq!(s, 201);
    let group = v["id"].as_str().expect("id").to_string();
    let member = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    let refs = format!("/groups/{group}/members/$ref");
    assert_eq!(g.get(&format!("/groups/{group}")).await.0, 404);
    let (_, _, v) = g.get("/groups?$filter=displayName eq 'Fresh'").await;
    assert_eq!(count(&v), 0);
    let (s, _, v) = g.post(&refs, &member(&old_user)).await;
    assert_eq!(
        (s, error_code(&v)),
        (404, "Request_ResourceNotFound"),
        "{v}"
    );
    wait_until(|| async { g.get(&format!("/groups/{group}")).await.0 == 200 }).await;

    // A user created a moment ago is not there yet for the group either.
    let (_, _, v) = g.post("/users", &new_user("nora", "contoso.com")).await;
    let new_user_id = v["id"].as_str().expect("id").to_string();
    let (s, _, v) = g.post(&refs, &member(&new_user_id)).await;
    assert_eq!(
        (s, error_code(&v)),
        (404, "Request_ResourceNotFound"),
        "{v}"
    );
    assert!(emu
        .control()
        .group_members(TENANT_A, &group)
        .expect("group")
        .is_empty());
    emu.control().replicate_now();
    assert_eq!(g.post(&refs, &member(&new_user_id)).await.0, 204);
    assert_eq!(g.post(&refs, &member(&old_user)).await.0, 204);
    assert_eq!(
        emu.control()
            .group_members(TENANT_A, &group)
            .expect("group"),
        [new_user_id, old_user]
    );
}

#[tokio::test]
async fn group_calls_need_group_permissions() {
    let denied = |v: &Value| {
        error_code(v) == "Authorization_RequestDenied"
            && error_message(v) == "Insufficient privileges to complete the operation."
    };
    // The default consent (users only) reaches no group.
    let emu = start(config()).await;
    let user = seed_user(&emu, "ulla");
    let group = seed_group(&emu, "Ops", Vec::new());
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g.get("/groups").await;
    assert!(s == 403 && denied(&v), "{s} {v}");
    assert_eq!(g.post("/groups", &security_group("X", "x")).await.0, 403);
    assert_eq!(g.get(&format!("/groups/{group}/members")).await.0, 403);
    assert_eq!(g.get(&format!("/users/{user}/memberOf")).await.0, 403);
    let ctl = emu.control();
    let refs = format!("/groups/{group}/members/$ref");
    let member =
        json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}")});
    let bind = json!({"members@odata.bind": [format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}")]});

    let as_roles = |roles: &[&str]| {
        ctl.set_permissions(TENANT_A, roles.iter().map(|r| r.to_string()).collect())
            .expect("permissions");
        Graph::new(&emu, TENANT_A)
    };
    let g = as_roles(&["GroupMember.Read.All"]).await;
    assert_eq!(g.get("/groups").await.0, 200);
    assert_eq!(g.get(&format!("/groups/{group}/members")).await.0, 200);
    let (s, _, v) = g.post(&refs, &member).await;
    assert!(s == 403 && denied(&v), "{s} {v}");

    let g = as_roles(&["GroupMember.ReadWrite.All", "User.Read.All"]).await;
    assert_eq!(g.get(&format!("/users/{user}/memberOf")).await.0, 200);
    assert_eq!(g.post("/groups", &security_group("X", "x")).await.0, 403);
    let rename = json!({"displayName": "Renamed"});
    assert_eq!(g.patch(&format!("/groups/{group}"), &rename).await.0, 403);
    assert_eq!(g.delete(&format!("/groups/{group}")).await.0, 403);
    assert_eq!(g.patch(&format!("/groups/{group}"), &bind).await.0, 204);
    assert_eq!(
        g.delete(&format!("/groups/{group}/members/{user}/$ref"))
            .await
            .0,
        204
    );
    assert_eq!(g.post(&refs, &member).await.0, 204);
    let (_, _, full) = g.get(&format!("/groups/{group}/members")).await;
    assert!(full["value"][0]["userPrincipalName"].is_string(), "{full}");
    // Without a user-reading role a member shows only its type and id.
    let g = as_roles(&["GroupMember.Read.All"]).await;
    let (s, _, v) = g.get(&format!("/groups/{group}/members")).await;
    assert_eq!(s, 200);
    let keys: Vec<&str> = v["value"][0]
        .as_object()
        .expect("member")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["@odata.type", "id"], "{v}");

    let g = as_roles(&["Group.Create"]).await;
    assert_eq!(g.post("/groups", &security_group("X", "x")).await.0, 201);
    assert_eq!(g.get("/groups").await.0, 403);
    assert_eq!(ctl.group_members(TENANT_A, &group).expect("group"), [user]);
}

#[tokio::test]
async fn the_control_api_manages_groups_over_http() {
    let emu = start(config()).await;
    let user = seed_user(&emu, "hans");
    let (c, base) = (
        http(),
        format!("{}/_emulator/tenants/{TENANT_A}", emu.authority_host()),
    );
    let r = c
        .post(format!("{base}/groups"))
        .json(&json!({"displayName": "Finance (EU)", "members": [user]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let group = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let listed = emu.control().groups(TENANT_A);
    assert_eq!(listed[0].mail_nickname, "FinanceEU");
    let members = format!("{base}/groups/{group}/members");
    let got: Vec<String> = c
        .get(&members)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(got, std::slice::from_ref(&user));
    let again = c
        .post(&members)
        .json(&json!({"id": user}))
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), 400);
    let r = c
        .delete(format!("{members}/{user}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let r = c
        .delete(format!("{members}/{user}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let r = c
        .post(&members)
        .json(&json!({"id": user}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    assert_eq!(
        emu.control()
            .group_members(TENANT_A, &group)
            .expect("group"),
        [user]
    );
    let r = c
        .delete(format!("{base}/groups/{group}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    assert!(emu.control().groups(TENANT_A).is_empty());
    let r = c.get(&members).send().await.expect("send");
    assert_eq!(r.status(), 404);
}
