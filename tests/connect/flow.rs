//! Connect: every branch of Store -> admin consent -> callback.
use std::time::Duration;

use entra_daemon::domain::CompanyId;
use entra_daemon::http::signed::sign_query;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_connect_records_the_tenant_links_existing_users_and_pushes_the_rest() {
    let mut app = ConnectApp::spawn().await;
    let existing = app.seed(T1, "megan.bowen@contoso.com");

    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, true).await;

    assert!(
        landing
            .url
            .as_str()
            .starts_with("http://127.0.0.1:9/store/apps/entra?"),
        "{}",
        landing.url
    );
    assert_eq!(landing.get("status"), "connected", "{landing:?}");
    assert_eq!(landing.get("company"), "1");
    assert_eq!(landing.get("tenant"), T1);
    let conn = app
        .state()
        .connection(CompanyId(CONTOSO))
        .unwrap()
        .expect("connected");
    assert_eq!(conn.tenant.as_str(), T1);
    assert_eq!(
        conn.connected_by.as_deref(),
        Some("store.admin@plumm.example")
    );
    let audit = app.audit("connect");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].outcome, "ok");
    let detail = audit[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("store.admin@plumm.example") && detail.contains("3 users queued"),
        "{detail}"
    );

    // The initial sync starts at once: Megan linked, the others created.
    app.converged().await;
    let users = app.users(T1);
    assert_eq!(users.len(), 3, "{users:?}");
    let megan = users
        .iter()
        .find(|u| u.user_principal_name == "megan.bowen@contoso.com")
        .expect("megan");
    assert_eq!(megan.id, existing, "linked, not duplicated");
    assert!(app.users(T2).is_empty(), "nothing leaks into Fabrikam");
    assert_eq!(app.state().links_count(CompanyId(CONTOSO)).unwrap(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_tampered_link_is_refused_and_stores_nothing() {
    let mut app = ConnectApp::spawn().await;
    let good = app.signed(CONTOSO, "store.admin@plumm.example");
    let forged = [
        good.replace("company=1", "company=2"),
        format!("{}{}", &good[..good.len() - 64], "0".repeat(64)),
        sign_query(
            &entra_daemon::http::StoreKey::new("another-key-another-key-another-key").unwrap(),
            CONTOSO,
            "store.admin@plumm.example",
            now() + 300,
        ),
    ];
    for q in forged {
        let r = app.get(&format!("{}/connect?{q}", app.base)).await;
        assert_eq!(r.status(), 403, "{q}");
        let page = r.text().await.unwrap();
        assert!(page.contains("not valid"), "{page}");
        assert!(
            !page.contains(&q[q.len() - 64..]),
            "the page never echoes the signature"
        );
    }
    let r = app.get(&format!("{}/connect?company=1", app.base)).await;
    assert_eq!(r.status(), 400);
    let r = app.get(&format!("{}/connect", app.base)).await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM oauth_states"), 0);
    assert!(app.state().connections().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_or_one_valid_too_long_is_refused() {
    let mut app = ConnectApp::spawn().await;
    for exp in [now() - 1, now() + 24 * 3600] {
        let q = sign_query(&app.key, CONTOSO, "store.admin@plumm.example", exp);
        let r = app.get(&format!("{}/connect?{q}", app.base)).await;
        assert_eq!(r.status(), 403, "exp {exp}");
        assert!(r.text().await.unwrap().contains("expired"));
    }
    assert_eq!(app.sql_count("SELECT COUNT(*) FROM oauth_states"), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_replayed_states_get_a_400_and_change_nothing() {
    let mut app = ConnectApp::spawn().await;
    // The state is stored hashed, never as sent.
    let consent = app.start_connect(CONTOSO).await;
    let state = consent
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    assert!(state.len() >= 43, "at least 256 bits: {state}");
    assert_eq!(
        app.sql_count(&format!(
            "SELECT COUNT(*) FROM oauth_states WHERE state_hash = '{state}'"
        )),
        0
    );

    let unknown = format!(
        "{}/oauth/callback?admin_consent=True&tenant={T1}&state=not-a-state-we-issued",
        app.base
    );
    let r = app.get(&unknown).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("does not belong"));
    let r = app
        .get(&format!(
            "{}/oauth/callback?admin_consent=True&tenant={T1}",
            app.base
        ))
        .await;
    assert_eq!(r.status(), 400);

    let callback = app.answer_consent(&consent, CONTOSO_ADMIN, true).await;
    assert_eq!(
        app.follow_callback(&callback).await.get("status"),
        "connected"
    );
    // The same answer again (Back button, replay): refused, nothing recorded twice.
    let r = app.get(callback.as_str()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("already used"));
    // A replay for another tenant cannot move the company either.
    let moved = callback.as_str().replace(T1, T2);
    assert_eq!(app.get(&moved).await.status(), 400);
    assert_eq!(app.audit("connect").len(), 1);
    let conn = app.state().connection(CompanyId(CONTOSO)).unwrap().unwrap();
    assert_eq!(conn.tenant.as_str(), T1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_state_is_refused_even_after_a_real_consent() {
    let mut app = ConnectApp::spawn_with(Options {
        state_ttl: "1ms",
        ..Options::default()
    })
    .await;
    let consent = app.start_connect(CONTOSO).await;
    let callback = app.answer_consent(&consent, CONTOSO_ADMIN, true).await;
    let r = app.get(callback.as_str()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("few minutes"));
    assert!(app.state().connections().unwrap().is_empty());
    assert!(app.audit("connect").is_empty());
    app.stop().await;
}

/// Microsoft's error response, as v2-admin-consent shows it: `error`,
/// `error_description`, `admin_consent=True` and the `state`, no tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_consent_comes_back_as_microsoft_documents_it() {
    let mut app = ConnectApp::spawn().await;
    let consent = app.start_connect(CONTOSO).await;
    let callback = app.answer_consent(&consent, CONTOSO_ADMIN, false).await;
    let q: std::collections::HashMap<String, String> =
        callback.query_pairs().into_owned().collect();
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert!(q
        .get("error_description")
        .is_some_and(|d| d.starts_with("AADSTS65004")));
    assert_eq!(q.get("admin_consent").map(String::as_str), Some("True"));
    assert!(q.get("state").is_some_and(|s| !s.is_empty()));
    assert!(!q.contains_key("tenant"), "{callback}");
    let landing = app.follow_callback(&callback).await;
    assert_eq!(landing.get("reason"), "declined", "{landing:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_consent_returns_to_the_store_with_declined_and_connects_nothing() {
    let mut app = ConnectApp::spawn().await;
    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, false).await;
    assert_eq!(landing.get("status"), "error", "{landing:?}");
    assert_eq!(landing.get("reason"), "declined");
    assert!(landing.get("message").contains("Accept"), "{landing:?}");
    assert!(app.state().connections().unwrap().is_empty());
    let audit = app.audit("connect");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].outcome, "failed");
    assert_eq!(audit[0].error_code.as_deref(), Some("AADSTS65004"));
    assert!(!app.control.tenants()[0].consented);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admin_account_or_another_tenant_is_the_wrong_account() {
    let mut app = ConnectApp::spawn().await;
    let landing = app.connect_flow(CONTOSO, CONTOSO_USER, true).await;
    assert_eq!(landing.get("reason"), "wrong_account", "{landing:?}");
    assert!(landing.get("message").contains("Global Administrator"));
    assert!(app.state().connections().unwrap().is_empty());

    // Contoso connected to T1; its admin then consents with a Fabrikam account.
    app.connect_ok(CONTOSO, CONTOSO_ADMIN).await;
    let landing = app.connect_flow(CONTOSO, FABRIKAM_ADMIN, true).await;
    assert_eq!(landing.get("reason"), "wrong_account", "{landing:?}");
    assert!(landing.get("message").contains("different"), "{landing:?}");
    let conn = app.state().connection(CompanyId(CONTOSO)).unwrap().unwrap();
    assert_eq!(conn.tenant.as_str(), T1, "the company keeps its tenant");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_connected_to_another_company_is_refused_without_naming_it() {
    let mut app = ConnectApp::spawn().await;
    app.connect_ok(CONTOSO, CONTOSO_ADMIN).await;
    let landing = app.connect_flow(FABRIKAM, CONTOSO_ADMIN, true).await;
    assert_eq!(landing.get("status"), "error");
    assert_eq!(landing.get("reason"), "tenant_in_use", "{landing:?}");
    let message = landing.get("message");
    assert!(message.contains("another Plumm company"), "{message}");
    assert!(
        !message.contains("company 1") && !message.contains(T1),
        "{message}"
    );
    assert!(app
        .state()
        .connection(CompanyId(FABRIKAM))
        .unwrap()
        .is_none());
    let failed = app.audit("connect");
    assert!(failed
        .iter()
        .any(|r| r.outcome == "failed" && r.company_id == Some(FABRIKAM)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_that_takes_a_moment_to_propagate_is_waited_for() {
    let mut app = ConnectApp::spawn_with(Options {
        consent_propagation_ms: 800,
        ..Options::default()
    })
    .await;
    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, true).await;
    assert_eq!(landing.get("status"), "connected", "{landing:?}");
    let detail = app.audit("connect")[0].detail.clone().unwrap_or_default();
    assert!(
        !detail.contains("after 1 attempt"),
        "it had to retry: {detail}"
    );
    let refused = app
        .control
        .requests_for(T1)
        .iter()
        .filter(|r| r.path.ends_with("/token") && r.status == 400)
        .count();
    assert!(refused >= 1, "tokens were refused while consent propagated");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_not_yet_effective_says_so_then_connects_on_the_next_click() {
    let mut app = ConnectApp::spawn_with(Options {
        consent_propagation_ms: 2_500,
        consent_timeout: "100ms",
        ..Options::default()
    })
    .await;
    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, true).await;
    assert_eq!(landing.get("reason"), "consent_pending", "{landing:?}");
    assert!(landing.get("message").contains("Wait a minute"));
    assert!(app.state().connections().unwrap().is_empty());

    // Once Microsoft applies the consent, the next Connect goes through.
    let token_url = format!("{}/{T1}/oauth2/v2.0/token", app.emu.authority_host());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .http
            .post(&token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", app.client_id.as_str()),
                ("client_secret", SECRET),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "consent never took effect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, true).await;
    assert_eq!(landing.get("status"), "connected", "{landing:?}");
    app.stop().await;
}
