//! Graph /users behaviour of the emulator.

use crate::helpers::*;
use entra_daemon::emulator::SeedUser;
use serde_json::{json, Value};

#[tokio::test]
async fn graph_requires_a_valid_token_of_the_right_tenant() {
    let emu = start(config()).await;
    let client = http();
    let r = client
        .get(format!("{}/users", emu.graph_base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("request-id"));
    assert!(r.headers().contains_key("www-authenticate"));
    let v: Value = r.json().await.expect("json");
    assert_eq!(error_code(&v), "InvalidAuthenticationToken");
    assert_eq!(error_message(&v), "Access token is empty.");
    assert!(v["error"]["innerError"]["request-id"].is_string());
    assert!(v["error"]["innerError"]["date"].is_string());

    let r = client
        .get(format!("{}/users", emu.graph_base_url()))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);

    // A user of tenant A is invisible with a token for tenant B.
    let id = emu
        .control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: "alice@contoso.com".into(),
                ..Default::default()
            },
        )
        .expect("seed");
    let ga = Graph::new(&emu, TENANT_A).await;
    let gb = Graph::new(&emu, TENANT_B).await;
    assert_eq!(ga.get(&format!("/users/{id}")).await.0, 200);
    let (s, _, v) = gb.get(&format!("/users/{id}")).await;
    assert_eq!(s, 404);
    assert_eq!(error_code(&v), "Request_ResourceNotFound");
    let (_, _, list) = gb.get("/users").await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn create_user_success_and_headers() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let r = g
        .req(reqwest::Method::POST, "/users")
        .header("client-request-id", "8d0fbd5e-0bd4-4b5b-9d4c-3c1c8b7c2d11")
        .json(&new_user("adele", "contoso.com"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["client-request-id"],
        "8d0fbd5e-0bd4-4b5b-9d4c-3c1c8b7c2d11"
    );
    assert!(r.headers().contains_key("request-id"));
    assert!(r.headers().contains_key("date"));
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("application/json;odata.metadata=minimal"));
    assert_eq!(r.headers()["x-ms-resource-unit"], "1");
    let v: Value = r.json().await.expect("json");
    assert!(v["@odata.context"]
        .as_str()
        .expect("ctx")
        .ends_with("/$metadata#users/$entity"));
    assert_eq!(v["userPrincipalName"], "adele@contoso.com");
    assert!(v["id"].is_string());
    assert!(v.get("accountEnabled").is_none(), "not a default property");
    assert!(v.get("passwordProfile").is_none());
    let users = emu.control().users(TENANT_A);
    assert_eq!(users.len(), 1);
    assert!(users[0].created_via_graph);
    assert_eq!(users[0].password_set_count, 1);
}

#[tokio::test]
async fn create_user_validation() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;

    for missing in [
        "accountEnabled",
        "displayName",
        "mailNickname",
        "passwordProfile",
        "userPrincipalName",
    ] {
        let mut body = new_user("bob", "contoso.com");
        body.as_object_mut().expect("obj").remove(missing);
        let (s, _, v) = g.post("/users", &body).await;
        assert_eq!(s, 400, "{missing}");
        assert_eq!(error_code(&v), "Request_BadRequest", "{missing}");
        assert!(error_message(&v).contains(missing), "{missing}: {v}");
    }

    let (s, _, v) = g.post("/users", &new_user("bad.", "contoso.com")).await;
    assert_eq!(
        (s, error_message(&v)),
        (400, "Property userPrincipalName is invalid.")
    );
    let mut body = new_user("bad", "contoso.com");
    body["userPrincipalName"] = json!("b+d@contoso.com");
    assert_eq!(g.post("/users", &body).await.0, 400);

    let (s, _, v) = g.post("/users", &new_user("carol", "fabrikam.com")).await;
    assert_eq!(s, 400);
    assert!(
        error_message(&v)
            .starts_with("The domain portion of the userPrincipalName property is invalid."),
        "{v}"
    );

    let mut body = new_user("dave", "contoso.com");
    body["passwordProfile"]["password"] = json!("password");
    let (s, _, v) = g.post("/users", &body).await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("password complexity"), "{v}");

    let mut body = new_user("erin", "contoso.com");
    body["mailNickname"] = json!("erin smith");
    assert_eq!(g.post("/users", &body).await.0, 400);

    let mut body = new_user("frank", "contoso.com");
    body["usageLocation"] = json!("XX");
    let (s, _, v) = g.post("/users", &body).await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("usageLocation"), "{v}");

    let mut body = new_user("gina", "contoso.com");
    body["favouriteColour"] = json!("blue");
    assert_eq!(g.post("/users", &body).await.0, 400);

    assert!(emu.control().users(TENANT_A).is_empty());
}

#[tokio::test]
async fn duplicates_are_refused_case_insensitively() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let mut first = new_user("henry", "contoso.com");
    first["mail"] = json!("henry@contoso.com");
    assert_eq!(g.post("/users", &first).await.0, 201);

    let mut dup = new_user("HENRY", "Contoso.com");
    dup["mailNickname"] = json!("henry2");
    let (s, _, v) = g.post("/users", &dup).await;
    assert_eq!(s, 400);
    assert_eq!(error_code(&v), "Request_BadRequest");
    assert_eq!(
        error_message(&v),
        "Another object with the same value for property userPrincipalName already exists."
    );
    assert_eq!(v["error"]["details"][0]["code"], "ObjectConflict");
    assert_eq!(v["error"]["details"][0]["target"], "userPrincipalName");

    let mut dup_mail = new_user("henry.other", "contoso.com");
    dup_mail["mail"] = json!("HENRY@contoso.com");
    let (s, _, v) = g.post("/users", &dup_mail).await;
    assert_eq!(s, 400);
    assert_eq!(
        error_message(&v),
        "Another object with the same value for property proxyAddresses already exists."
    );

    // The same UPN in another tenant is fine.
    let gb = Graph::new(&emu, TENANT_B).await;
    assert_eq!(
        gb.post("/users", &new_user("henry", "fabrikam.com"))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn a_renamed_users_old_name_is_free_and_its_new_one_taken() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g.post("/users", &new_user("ida", "contoso.com")).await;
    assert_eq!(s, 201);
    let id = v["id"].as_str().expect("id").to_string();
    let rename = json!({"userPrincipalName": "ida.new@contoso.com"});
    assert_eq!(g.patch(&format!("/users/{id}"), &rename).await.0, 204);
    // The old UPN belongs to nobody now; the new one is taken.
    let mut again = new_user("ida", "contoso.com");
    again["mailNickname"] = json!("ida2");
    assert_eq!(g.post("/users", &again).await.0, 201);
    let mut clash = new_user("IDA.NEW", "contoso.com");
    clash["mailNickname"] = json!("ida3");
    let (s, _, v) = g.post("/users", &clash).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["details"][0]["target"], "userPrincipalName");
}

#[tokio::test]
async fn get_default_properties_and_select() {
    let emu = start(config()).await;
    let id = emu
        .control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: "ivy@contoso.com".into(),
                mail: Some("ivy@contoso.com".into()),
                display_name: Some("Ivy".into()),
                department: Some("Sales".into()),
                usage_location: Some("NL".into()),
                ..Default::default()
            },
        )
        .expect("seed");
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g.get(&format!("/users/{id}")).await;
    assert_eq!(s, 200);
    for p in [
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
        "id",
    ] {
        assert!(v.get(p).is_some(), "default property {p} missing: {v}");
    }
    for p in [
        "accountEnabled",
        "department",
        "usageLocation",
        "mailNickname",
        "employeeId",
    ] {
        assert!(v.get(p).is_none(), "{p} is not a default property");
    }
    let (s, _, v) = g
        .get("/users/IVY@contoso.com?$select=accountEnabled,department,usageLocation,id")
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["accountEnabled"], true);
    assert_eq!(v["department"], "Sales");
    assert_eq!(v["usageLocation"], "NL");
    assert!(v.get("displayName").is_none());
    assert!(v["@odata.context"]
        .as_str()
        .expect("ctx")
        .contains("users(accountEnabled,department,usageLocation,id)/$entity"));
    let (s, _, v) = g.get(&format!("/users/{id}?$select=nonsense")).await;
    assert_eq!(s, 400, "{v}");
    let (s, _, v) = g.get("/users/nobody@contoso.com").await;
    assert_eq!(s, 404);
    assert_eq!(error_message(&v), "Resource 'nobody@contoso.com' does not exist or one of its queried reference-property objects are not present.");
}

#[tokio::test]
async fn patch_updates_and_rules() {
    let emu = start(config()).await;
    let ctl = emu.control();
    let id = ctl
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: "jack@contoso.com".into(),
                ..Default::default()
            },
        )
        .expect("seed");
    ctl.seed_user(
        TENANT_A,
        SeedUser {
            user_principal_name: "kate@contoso.com".into(),
            ..Default::default()
        },
    )
    .expect("seed");
    let g = Graph::new(&emu, TENANT_A).await;
    let (s, _, v) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"accountEnabled": false, "jobTitle": "Engineer", "department": "R&D", "usageLocation": "DE", "givenName": "Jack", "surname": "Smith", "officeLocation": "B1"}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    assert_eq!(v, Value::Null);
    let u = ctl
        .users(TENANT_A)
        .into_iter()
        .find(|u| u.id == id)
        .expect("user");
    assert!(!u.account_enabled);
    assert_eq!(u.job_title.as_deref(), Some("Engineer"));
    assert_eq!(u.usage_location.as_deref(), Some("DE"));

    let (s, _, v) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"usageLocation": "Germany"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _, _) = g
        .patch(&format!("/users/{id}"), &json!({"shoeSize": 44}))
        .await;
    assert_eq!(s, 400);
    let (s, _, v) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"userPrincipalName": "KATE@contoso.com"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("userPrincipalName already exists"));
    let (s, _, _) = g
        .patch(
            &format!("/users/{id}"),
            &json!({"userPrincipalName": "jack.smith@contoso.onmicrosoft.com"}),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        g.get("/users/jack.smith@contoso.onmicrosoft.com").await.0,
        200
    );
    assert_eq!(
        g.patch("/users/ghost@contoso.com", &json!({"jobTitle": "x"}))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn privileged_users_cannot_be_modified() {
    let emu = start(config()).await;
    let id = emu
        .control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: "admin@contoso.com".into(),
                privileged: true,
                ..Default::default()
            },
        )
        .expect("seed");
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.get(&format!("/users/{id}")).await.0, 200);
    for (s, _, v) in [
        g.patch(&format!("/users/{id}"), &json!({"accountEnabled": false}))
            .await,
        g.delete(&format!("/users/{id}")).await,
        g.post(&format!("/users/{id}/revokeSignInSessions"), &json!({}))
            .await,
    ] {
        assert_eq!(s, 403);
        assert_eq!(error_code(&v), "Authorization_RequestDenied");
        assert_eq!(
            error_message(&v),
            "Insufficient privileges to complete the operation."
        );
    }
}

#[tokio::test]
async fn delete_is_soft_and_frees_the_upn() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    let (_, _, v) = g.post("/users", &new_user("liam", "contoso.com")).await;
    let id = v["id"].as_str().expect("id").to_string();
    let (s, _, body) = g.delete(&format!("/users/{id}")).await;
    assert_eq!((s, body), (204, Value::Null));
    assert_eq!(g.get(&format!("/users/{id}")).await.0, 404);
    assert_eq!(g.delete(&format!("/users/{id}")).await.0, 404);
    let all = emu.control().users(TENANT_A);
    assert!(all.iter().any(|u| u.id == id && u.deleted));
    assert_eq!(
        g.post("/users", &new_user("liam", "contoso.com")).await.0,
        201
    );
}

#[tokio::test]
async fn revoke_sign_in_sessions() {
    let emu = start(config()).await;
    let id = emu
        .control()
        .seed_user(
            TENANT_A,
            SeedUser {
                user_principal_name: "mia@contoso.com".into(),
                ..Default::default()
            },
        )
        .expect("seed");
    let g = Graph::new(&emu, TENANT_A).await;
    let r = g
        .req(
            reqwest::Method::POST,
            &format!("/users/{id}/revokeSignInSessions"),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["value"], true);
    assert!(v["@odata.context"]
        .as_str()
        .expect("ctx")
        .ends_with("$metadata#Edm.Boolean"));
    let (s, _, _) = g
        .post("/users/mia@contoso.com/revokeSignInSessions", &json!({}))
        .await;
    assert_eq!(s, 200);
    let u = &emu.control().users(TENANT_A)[0];
    assert_eq!(u.revoke_sign_in_sessions_count, 2);
}
