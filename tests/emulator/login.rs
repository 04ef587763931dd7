//! Token endpoint of the emulator.

use crate::helpers::*;
use serde_json::{json, Value};

const SCOPE: &str = "https://graph.microsoft.com/.default";

fn form<'a>(id: &'a str, secret: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (s, r.json().await.expect("json error"))
}

fn assert_aad_error(v: &Value, error: &str, code: u64) {
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"][0], code, "{v}");
    let d = v["error_description"].as_str().expect("description");
    assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
    assert!(
        d.contains("\r\nTrace ID: ")
            && d.contains("\r\nCorrelation ID: ")
            && d.contains("\r\nTimestamp: "),
        "{d}"
    );
    for k in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(v[k].is_string(), "missing {k}: {v}");
    }
}

#[tokio::test]
async fn token_success_shape_and_domain_tenant() {
    let emu = start(config()).await;
    let r = token_response(&emu, TENANT_A, &form(CLIENT_ID, SECRET, SCOPE)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert!(v["ext_expires_in"].is_number());
    assert!(v["access_token"].as_str().is_some_and(|t| t.len() > 20));
    assert!(v.get("refresh_token").is_none());
    // Tenant by verified domain name works too.
    let r = token_response(&emu, "contoso.com", &form(CLIENT_ID, SECRET, SCOPE)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn basic_auth_client_secret_is_accepted() {
    let emu = start(config()).await;
    let r = http()
        .post(format!(
            "{}/{TENANT_A}/oauth2/v2.0/token",
            emu.authority_host()
        ))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let bad = http()
        .post(format!(
            "{}/{TENANT_A}/oauth2/v2.0/token",
            emu.authority_host()
        ))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
        .send()
        .await
        .expect("send");
    let (s, v) = error_of(bad).await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 7000215);
}

#[tokio::test]
async fn token_errors() {
    let emu = start(config()).await;
    let (s, v) =
        error_of(token_response(&emu, TENANT_A, &form(CLIENT_ID, "nope", SCOPE)).await).await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 7000215);

    let unknown = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
    let (s, v) =
        error_of(token_response(&emu, TENANT_A, &form(unknown, SECRET, SCOPE)).await).await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "unauthorized_client", 700016);

    let (s, v) = error_of(
        token_response(
            &emu,
            "33333333-3333-4333-8333-333333333333",
            &form(CLIENT_ID, SECRET, SCOPE),
        )
        .await,
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "invalid_request", 90002);

    let (s, v) = error_of(
        token_response(
            &emu,
            TENANT_A,
            &form(CLIENT_ID, SECRET, "https://foo.example.com/.default"),
        )
        .await,
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "invalid_scope", 70011);

    let (s, v) =
        error_of(token_response(&emu, TENANT_A, &form(CLIENT_ID, SECRET, "User.Read.All")).await)
            .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "invalid_scope", 1002012);

    let (s, v) = error_of(
        token_response(
            &emu,
            TENANT_A,
            &[
                ("grant_type", "password"),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
                ("scope", SCOPE),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "unsupported_grant_type", 70003);

    let (s, v) = error_of(token_response(&emu, TENANT_A, &[("client_id", CLIENT_ID)]).await).await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "invalid_request", 900144);

    let (s, v) = error_of(
        token_response(
            &emu,
            TENANT_A,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("scope", SCOPE),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(s, 401);
    assert_aad_error(&v, "invalid_client", 7000218);

    for t in ["common", "organizations"] {
        let (s, v) = error_of(token_response(&emu, t, &form(CLIENT_ID, SECRET, SCOPE)).await).await;
        assert_eq!(s, 400, "{t}");
        assert_eq!(v["error"], "invalid_request");
    }
}

#[tokio::test]
async fn a_withdrawn_consent_refuses_new_tokens_while_issued_ones_live_on() {
    let emu = start(config()).await;
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.get("/users").await.0, 200);
    emu.control().set_consent(TENANT_A, false).expect("consent");
    let (s, v) =
        error_of(token_response(&emu, TENANT_A, &form(CLIENT_ID, SECRET, SCOPE)).await).await;
    assert_eq!(s, 400);
    assert_aad_error(&v, "unauthorized_client", 700016);
    // As in Entra, the token already issued works until it expires...
    assert_eq!(g.get("/users").await.0, 200);
    emu.control().expire_tokens(TENANT_A);
    // ...and then there is no new one.
    let (s, _, v) = g.get("/users").await;
    assert_eq!(s, 401);
    assert_eq!(error_code(&v), "InvalidAuthenticationToken");
    // Tenant B is unaffected.
    let gb = Graph::new(&emu, TENANT_B).await;
    assert_eq!(gb.get("/users").await.0, 200);
    emu.control().set_consent(TENANT_A, true).expect("consent");
    assert_eq!(Graph::new(&emu, TENANT_A).await.get("/users").await.0, 200);
}

#[tokio::test]
async fn the_stricter_knob_kills_issued_tokens_with_the_consent() {
    let mut cfg = config();
    cfg.revoke_tokens_with_consent = true;
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.get("/users").await.0, 200);
    emu.control().set_consent(TENANT_A, false).expect("consent");
    assert_eq!(g.get("/users").await.0, 401);
    emu.control().set_consent(TENANT_A, true).expect("consent");
    assert_eq!(g.get("/users").await.0, 200);
}

#[tokio::test]
async fn a_removed_permission_is_403_with_new_tokens_and_old_ones_keep_theirs() {
    let emu = start(config()).await;
    let old = Graph::new(&emu, TENANT_A).await;
    let body = json!({
        "accountEnabled": true, "displayName": "Ann", "mailNickname": "ann",
        "userPrincipalName": "ann@contoso.com",
        "passwordProfile": {"password": GOOD_PASSWORD, "forceChangePasswordNextSignIn": true},
    });
    let (s, _, created) = old.post("/users", &body).await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    // The admin leaves the app read access only.
    emu.control()
        .set_permissions(TENANT_A, vec!["User.Read.All".into()])
        .expect("permissions");
    let new = Graph::new(&emu, TENANT_A).await;
    assert_eq!(new.get("/users").await.0, 200, "reads still pass");
    let (s, _, v) = new
        .patch(&format!("/users/{id}"), &json!({"accountEnabled": false}))
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(error_code(&v), "Authorization_RequestDenied");
    // The token issued before the change carries the old roles.
    let (s, _, _) = old
        .patch(&format!("/users/{id}"), &json!({"jobTitle": "Nurse"}))
        .await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn tokens_expire_with_scaled_lifetime() {
    let mut cfg = config();
    cfg.token_lifetime_secs = 1;
    cfg.time_scale = 10.0;
    let emu = start(cfg).await;
    let g = Graph::new(&emu, TENANT_A).await;
    assert_eq!(g.get("/users").await.0, 200);
    wait_until(|| async { g.get("/users").await.0 == 401 }).await;
    let (_, _, v) = g.get("/users").await;
    assert!(error_message(&v).contains("expired"), "{v}");
}

#[tokio::test]
async fn secrets_are_not_logged_or_debug_printed() {
    let emu = start(config()).await;
    let _ = token(&emu, TENANT_A).await;
    let log = emu.control().requests();
    let entry = log
        .iter()
        .find(|r| r.path.ends_with("/token"))
        .expect("token logged");
    assert_eq!(entry.tenant.as_deref(), Some(TENANT_A));
    assert_eq!(entry.status, 200);
    let text = serde_json::to_string(&log).expect("json");
    assert!(!text.contains(SECRET));
    let dbg = format!("{:?}", config().apps[0]);
    assert!(!dbg.contains(SECRET), "{dbg}");
}

/// MSAL-based clients read the OpenID configuration first, then post to the
/// `token_endpoint` it names.
#[tokio::test]
async fn the_openid_configuration_names_a_token_endpoint_that_answers() {
    let emu = start(config()).await;
    let doc = |seg: &str| {
        let url = format!(
            "{}/{seg}/v2.0/.well-known/openid-configuration",
            emu.authority_host()
        );
        async move { http().get(url).send().await.expect("GET") }
    };
    let r = doc(TENANT_A).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    let token_endpoint = v["token_endpoint"].as_str().expect("token_endpoint");
    assert!(
        v["issuer"]
            .as_str()
            .is_some_and(|i| i.ends_with(&format!("/{TENANT_A}/v2.0"))),
        "{v}"
    );
    assert!(v["token_endpoint_auth_methods_supported"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == "private_key_jwt")));
    let r = http()
        .post(token_endpoint)
        .form(&form(CLIENT_ID, SECRET, SCOPE))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200, "the advertised token endpoint works");

    let by_domain: Value = doc("contoso.com").await.json().await.expect("json");
    assert_eq!(
        by_domain["issuer"], v["issuer"],
        "a domain names the same tenant"
    );
    let common: Value = doc("organizations").await.json().await.expect("json");
    assert!(
        common["issuer"]
            .as_str()
            .is_some_and(|i| i.contains("{tenantid}")),
        "{common}"
    );
    let (status, err) = error_of(doc("nowhere.example").await).await;
    assert_eq!(status, 400);
    assert_eq!(err["error_codes"][0], 90002, "{err}");
}
