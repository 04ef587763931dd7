//! Group membership in the emulator: members/$ref, members@odata.bind,
//! the member list, memberOf, deleted users, $batch and throttling.

use crate::groups::{config_with, seed_group, seed_user, GROUP_ADMIN};
use crate::helpers::*;
use entra_daemon::emulator::ThrottleConfig;
use serde_json::{json, Value};

fn object(id: &str) -> String {
    format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")
}

fn member(id: &str) -> Value {
    json!({ "@odata.id": object(id) })
}

#[tokio::test]
async fn members_are_added_once_and_removed_once() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let (ann, bob) = (seed_user(&emu, "ann"), seed_user(&emu, "bob"));
    let group = seed_group(&emu, "Staff", Vec::new());
    let g = Graph::new(&emu, TENANT_A).await;
    let refs = format!("/groups/{group}/members/$ref");
    let (s, _, v) = g.post(&refs, &member(&ann)).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(v, Value::Null);
    // The users/{id} form of the reference works too.
    let by_users = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{bob}")});
    assert_eq!(g.post(&refs, &by_users).await.0, 204);

    let (s, _, v) = g.post(&refs, &member(&ann)).await;
    assert_eq!((s, error_code(&v)), (400, "Request_BadRequest"));
    assert_eq!(
        error_message(&v),
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let nobody = "0b1c2d3e-0000-4000-8000-000000000000";
    let (s, _, v) = g.post(&refs, &member(nobody)).await;
    assert_eq!((s, error_code(&v)), (404, "Request_ResourceNotFound"));
    assert!(error_message(&v).contains(nobody), "{v}");
    let (s, _, _) = g
        .post(&refs, &json!({"@odata.id": "not a reference"}))
        .await;
    assert_eq!(s, 400);
    let (s, _, _) = g
        .post(
            "/groups/0b1c2d3e-0000-4000-8000-00000000ffff/members/$ref",
            &member(&ann),
        )
        .await;
    assert_eq!(s, 404);
    let ctl = emu.control();
    assert_eq!(
        ctl.group_members(TENANT_A, &group).expect("g"),
        [ann.clone(), bob.clone()]
    );

    let one = format!("/groups/{group}/members/{ann}/$ref");
    assert_eq!(g.delete(&one).await.0, 204);
    let (s, _, v) = g.delete(&one).await;
    assert_eq!((s, error_code(&v)), (404, "Request_ResourceNotFound"));
    assert_eq!(ctl.group_members(TENANT_A, &group).expect("g"), [bob]);
}

#[tokio::test]
async fn a_bind_adds_up_to_twenty_members_all_or_nothing() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let users: Vec<String> = (0..22)
        .map(|i| seed_user(&emu, &format!("u{i:02}")))
        .collect();
    let ctl = emu.control();
    let g = Graph::new(&emu, TENANT_A).await;
    let bind = |ids: &[String]| json!({"members@odata.bind": ids.iter().map(|i| object(i)).collect::<Vec<_>>()});

    let group = seed_group(&emu, "Big", Vec::new());
    let path = format!("/groups/{group}");
    let (s, _, v) = g.patch(&path, &bind(&users[..21])).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        error_message(&v).contains("more than 20 link changes"),
        "{v}"
    );
    assert!(ctl.group_members(TENANT_A, &group).expect("g").is_empty());
    let (s, _, v) = g.patch(&path, &bind(&users[..20])).await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(ctl.group_members(TENANT_A, &group).expect("g"), users[..20]);

    // One already a member fails the whole request; so does one named twice.
    let (s, _, v) = g.patch(&path, &bind(&users[19..21])).await;
    assert_eq!((s, error_code(&v)), (400, "Request_BadRequest"), "{v}");
    let twice = [users[20].clone(), users[21].clone(), users[20].clone()];
    assert_eq!(g.patch(&path, &bind(&twice)).await.0, 400);
    let unknown = [
        users[20].clone(),
        "0b1c2d3e-0000-4000-8000-000000000000".to_string(),
    ];
    assert_eq!(g.patch(&path, &bind(&unknown)).await.0, 404);
    assert_eq!(ctl.group_members(TENANT_A, &group).expect("g").len(), 20);

    // Properties and members change together; the group's name included.
    let mut both = bind(&users[20..22]);
    both["description"] = json!("everyone");
    assert_eq!(g.patch(&path, &both).await.0, 204);
    let (_, _, v) = g.get(&format!("{path}?$select=description")).await;
    assert_eq!(v["description"], "everyone");
    assert_eq!(ctl.group_members(TENANT_A, &group).expect("g"), users);

    // A create binds members too, within the same limit.
    let mut create = bind(&users[..2]);
    for (k, val) in [
        ("displayName", json!("New")),
        ("mailNickname", json!("new")),
        ("mailEnabled", json!(false)),
        ("securityEnabled", json!(true)),
    ] {
        create[k] = val;
    }
    let (s, _, v) = g.post("/groups", &create).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id");
    assert_eq!(ctl.group_members(TENANT_A, id).expect("g"), users[..2]);
}

#[tokio::test]
async fn members_are_listed_in_pages_and_a_user_knows_its_groups() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let users: Vec<String> = (0..25)
        .map(|i| seed_user(&emu, &format!("m{i:02}")))
        .collect();
    let group = seed_group(&emu, "Crew", users.clone());
    let other = seed_group(&emu, "Other", vec![users[3].clone()]);
    let g = Graph::new(&emu, TENANT_A).await;
    let mut seen: Vec<String> = Vec::new();
    let mut next = Some(format!("/groups/{group}/members?$select=id&$top=10"));
    let mut pages = 0;
    while let Some(url) = next {
        let (s, h, v) = g.get(url.trim_start_matches(&g.base)).await;
        assert_eq!(s, 200, "{v}");
        // groups/{id}/members costs 3; $select and a $top below 20 take one off each.
        assert_eq!(h["x-ms-resource-unit"], "1");
        for item in v["value"].as_array().expect("page") {
            assert_eq!(item["@odata.type"], "#microsoft.graph.user");
            assert_eq!(item.as_object().expect("obj").len(), 2, "{item}");
            seen.push(item["id"].as_str().expect("id").to_string());
        }
        next = v["@odata.nextLink"].as_str().map(str::to_string);
        pages += 1;
    }
    assert_eq!((pages, &seen), (3, &users));
    let (_, h, v) = g.get(&format!("/groups/{group}/members")).await;
    assert_eq!(h["x-ms-resource-unit"], "3");
    let (_, h, _) = g.get(&format!("/groups/{group}/members?$select=id")).await;
    assert_eq!(h["x-ms-resource-unit"], "2");
    assert_eq!(v["value"][0]["userPrincipalName"], "m00@contoso.com");
    assert_eq!(
        g.get(&format!("/groups/{group}/members?$top=1000")).await.0,
        400
    );

    let (s, _, v) = g
        .get(&format!(
            "/users/{}/memberOf?$select=id,displayName",
            users[3]
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    let ids: Vec<&str> = v["value"]
        .as_array()
        .expect("v")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [group.as_str(), other.as_str()]);
    assert_eq!(v["value"][0]["@odata.type"], "#microsoft.graph.group");
}

#[tokio::test]
async fn a_deleted_user_is_no_longer_a_member() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let (kim, lee, max) = (
        seed_user(&emu, "kim"),
        seed_user(&emu, "lee"),
        seed_user(&emu, "max"),
    );
    let group = seed_group(&emu, "Desk", vec![kim.clone(), lee.clone(), max.clone()]);
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.delete(&format!("/users/{kim}")).await.0, 204);
    emu.control()
        .hard_delete_user(TENANT_A, &lee)
        .expect("hard delete");
    let (_, _, v) = g.get(&format!("/groups/{group}/members?$select=id")).await;
    assert_eq!(
        v["value"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": max}])
    );
    assert_eq!(
        emu.control().group_members(TENANT_A, &group).expect("g"),
        [max]
    );
    let (s, _, _) = g
        .delete(&format!("/groups/{group}/members/{kim}/$ref"))
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_batch_of_member_adds_runs_each_item_through_graph() {
    let emu = start(config_with(GROUP_ADMIN)).await;
    let users: Vec<String> = (0..3).map(|i| seed_user(&emu, &format!("b{i}"))).collect();
    let group = seed_group(&emu, "Batch", Vec::new());
    let g = Graph::new(&emu, TENANT_A).await;
    let url = format!("/groups/{group}/members/$ref");
    let mut requests: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            json!({"id": i.to_string(), "method": "POST", "url": url,
            "headers": {"Content-Type": "application/json"}, "body": member(u)})
        })
        .collect();
    requests.push(json!({"id": "dup", "method": "POST", "url": url,
        "headers": {"Content-Type": "application/json"}, "body": member(&users[0])}));
    requests.push(
        json!({"id": "list", "method": "GET", "url": format!("/groups/{group}/members?$select=id"),
        "dependsOn": ["dup"]}),
    );
    let (s, _, v) = g.post("/$batch", &json!({ "requests": requests })).await;
    assert_eq!(s, 200, "{v}");
    let status = |id: &str| {
        v["responses"]
            .as_array()
            .and_then(|r| r.iter().find(|i| i["id"] == id))
            .map(|i| i["status"].clone())
    };
    for id in ["0", "1", "2"] {
        assert_eq!(status(id), Some(json!(204)), "{v}");
    }
    assert_eq!(status("dup"), Some(json!(400)));
    assert_eq!(status("list"), Some(json!(424)));
    assert_eq!(
        emu.control().group_members(TENANT_A, &group).expect("g"),
        users
    );
    let logged = emu.control().requests();
    let items = logged
        .iter()
        .filter(|r| r.batch_seq.is_some() && r.path.ends_with("/members/$ref"));
    assert_eq!(items.count(), 4);
}

#[tokio::test]
async fn every_membership_write_spends_one_write_of_the_budget() {
    let mut cfg = config_with(GROUP_ADMIN);
    cfg.throttling = ThrottleConfig {
        app_tenant_writes: 3,
        app_tenant_writes_window_secs: 600.0,
        ..ThrottleConfig::default()
    };
    let emu = start(cfg).await;
    let users: Vec<String> = (0..3).map(|i| seed_user(&emu, &format!("t{i}"))).collect();
    let group = seed_group(&emu, "Budget", Vec::new());
    let g = Graph::new(&emu, TENANT_A).await;
    let refs = format!("/groups/{group}/members/$ref");
    assert_eq!(g.post(&refs, &member(&users[0])).await.0, 204);
    let one = json!({"members@odata.bind": [object(&users[1])]});
    assert_eq!(g.patch(&format!("/groups/{group}"), &one).await.0, 204);
    assert_eq!(
        g.delete(&format!("/groups/{group}/members/{}/$ref", users[0]))
            .await
            .0,
        204
    );
    let (s, h, v) = g.post(&refs, &member(&users[2])).await;
    assert_eq!((s, error_code(&v)), (429, "TooManyRequests"), "{v}");
    assert!(h["x-ms-throttle-scope"]
        .to_str()
        .expect("scope")
        .contains("Write"));
    assert_eq!(
        g.post("/groups", &crate::groups::security_group("G", "g"))
            .await
            .0,
        429
    );
    // Reads are not writes: the member list still answers.
    let (s, _, v) = g.get(&format!("/groups/{group}/members?$select=id")).await;
    assert_eq!(s, 200);
    assert_eq!(v["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        emu.control().group_members(TENANT_A, &group).expect("g"),
        [users[1].clone()]
    );
    assert_eq!(emu.control().traffic(TENANT_A).writes, 5);
}
