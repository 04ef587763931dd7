//! Disconnect, reconnect, and tenants kept apart.
use std::time::Duration;

use entra_daemon::domain::{CompanyId, TenantId};
use entra_daemon::emulator::{Fault, FaultKind};
use entra_daemon::graph::TokenProvider;
use secrecy::ExposeSecret;

use crate::helpers::*;

fn hire(app: &ConnectApp, company: i64, email: &str) {
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
         VALUES ({company}, '{email}', 'New', 'Hire', 'Analyst', 'Finance', 'Paris', 'FR')"
    ));
}

fn user_creates(app: &ConnectApp, tenant: &str) -> usize {
    app.control
        .requests_for(tenant)
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1.0/users")
        .count()
}

async fn disconnect(app: &ConnectApp, company: i64) -> Landing {
    let url = format!(
        "{}/disconnect?{}",
        app.base,
        app.signed(company, "store.admin@plumm.example")
    );
    let r = app.http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let url = location(&r);
    Landing {
        params: url.query_pairs().into_owned().collect(),
        url,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_from_the_store_stops_syncing_drops_pending_work_and_deletes_nothing() {
    let mut app = ConnectApp::spawn().await;
    app.connect_ok(CONTOSO, CONTOSO_ADMIN).await;
    app.converged().await;
    // Graph starts failing for Contoso, so a change stays pending.
    app.control.inject(Fault {
        tenant: Some(T1.into()),
        method: Some("PATCH".into()),
        path_contains: Some("/users/".into()),
        count: 1_000,
        kind: FaultKind::Status {
            status: 503,
            retry_after: None,
        },
    });
    app.plumm(
        "UPDATE users SET role = 'Principal Engineer' WHERE email = 'alex.wilber@contoso.com'",
    );
    let state = app.state();
    wait_for("the change to be pending", Duration::from_secs(5), || {
        state
            .pending_summary(CompanyId(CONTOSO))
            .map(|s| s.0 == 1)
            .unwrap_or(false)
    })
    .await;

    let forged = format!(
        "{}/disconnect?company=1&admin=x%40y.com&exp={}&sig={}",
        app.base,
        now() + 60,
        "a".repeat(64)
    );
    assert_eq!(app.http.post(&forged).send().await.unwrap().status(), 403);
    assert!(state.connection(CompanyId(CONTOSO)).unwrap().is_some());

    let landing = disconnect(&app, CONTOSO).await;
    assert_eq!(landing.get("status"), "disconnected", "{landing:?}");
    assert_eq!(landing.get("company"), "1");
    assert!(state.connection(CompanyId(CONTOSO)).unwrap().is_none());
    assert_eq!(state.pending_summary(CompanyId(CONTOSO)).unwrap().0, 0);
    let rows = app.audit("disconnect");
    assert_eq!(rows.len(), 1);
    let detail = rows[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("1 pending changes dropped")
            && detail.contains("store.admin@plumm.example"),
        "{detail}"
    );
    // Nothing in Entra deleted or disabled; history and links kept.
    let users = app.users(T1);
    assert_eq!(users.len(), 3);
    assert!(users.iter().all(|u| u.account_enabled));
    assert_eq!(state.links_count(CompanyId(CONTOSO)).unwrap(), 3);
    assert_eq!(app.audit("connect").len(), 1);

    // Syncing has stopped: a new hire is skipped, not pushed.
    app.control.clear_faults();
    hire(&app, CONTOSO, "late.hire@contoso.com");
    wait_for("the hire to be skipped", Duration::from_secs(5), || {
        app.audit("skip")
            .iter()
            .any(|r| r.email.as_deref() == Some("late.hire@contoso.com"))
    })
    .await;
    assert_eq!(app.users(T1).len(), 3);

    // Disconnecting twice says so.
    let again = disconnect(&app, CONTOSO).await;
    assert_eq!(again.get("reason"), "not_connected", "{again:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_disconnects_too() {
    let mut app = ConnectApp::spawn().await;
    app.connect_ok(FABRIKAM, FABRIKAM_ADMIN).await;
    app.converged().await;
    let run = |company: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
            .arg("--config")
            .arg(&app.config_path)
            .args(["disconnect", "--company", company])
            .output()
            .expect("run the binary")
    };
    let out = run("2");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("nothing was deleted in Entra"), "{stdout}");
    assert!(app
        .state()
        .connection(CompanyId(FABRIKAM))
        .unwrap()
        .is_none());
    assert_eq!(app.users(T2).len(), 2);
    assert_eq!(run("2").status.code(), Some(1), "not connected any more");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_the_same_tenant_reuses_the_links() {
    let mut app = ConnectApp::spawn().await;
    app.connect_ok(CONTOSO, CONTOSO_ADMIN).await;
    app.converged().await;
    let ids = |app: &ConnectApp| {
        let mut v: Vec<(String, String)> = app
            .users(T1)
            .into_iter()
            .map(|u| (u.user_principal_name, u.id))
            .collect();
        v.sort();
        v
    };
    let before = ids(&app);
    let creates = user_creates(&app, T1);
    assert_eq!(creates, 3);

    assert_eq!(
        disconnect(&app, CONTOSO).await.get("status"),
        "disconnected"
    );
    app.plumm(
        "UPDATE users SET role = 'Staff Engineer' WHERE email = 'diego.siciliani@contoso.com'",
    );
    hire(&app, CONTOSO, "joni.sherman@contoso.com");
    wait_for("the changes to be skipped", Duration::from_secs(5), || {
        app.audit("skip").len() >= 2
    })
    .await;

    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, true).await;
    assert_eq!(landing.get("status"), "connected", "{landing:?}");
    app.converged().await;
    wait_for("joni in Entra", Duration::from_secs(5), || {
        app.users(T1).len() == 4
    })
    .await;
    let after = ids(&app);
    for pair in &before {
        assert!(after.contains(pair), "{pair:?} kept its Entra object");
    }
    assert_eq!(
        user_creates(&app, T1),
        creates + 1,
        "only the new hire is created"
    );
    let diego = app
        .users(T1)
        .into_iter()
        .find(|u| u.user_principal_name == "diego.siciliani@contoso.com")
        .unwrap();
    assert_eq!(
        diego.job_title.as_deref(),
        Some("Staff Engineer"),
        "changes made meanwhile arrive"
    );
    assert_eq!(app.state().links_count(CompanyId(CONTOSO)).unwrap(), 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_tokens_users_and_failures() {
    let mut app = ConnectApp::spawn().await;
    app.connect_ok(CONTOSO, CONTOSO_ADMIN).await;
    app.connect_ok(FABRIKAM, FABRIKAM_ADMIN).await;
    app.converged().await;
    let domains = |t: &str| {
        app.users(t)
            .into_iter()
            .map(|u| {
                u.user_principal_name
                    .split('@')
                    .nth(1)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        domains(T1).into_iter().collect::<Vec<_>>(),
        vec!["contoso.com"]
    );
    assert_eq!(
        domains(T2).into_iter().collect::<Vec<_>>(),
        vec!["fabrikam.com"]
    );

    // One token per tenant; a tenant's token reads only that tenant.
    let tokens = TokenProvider::new(
        reqwest::Client::new(),
        url::Url::parse(&app.emu.authority_host()).unwrap(),
        app.client_id.clone(),
        SECRET.to_string().into(),
    );
    let t1 = tokens.token(&TenantId::parse(T1).unwrap()).await.unwrap();
    let t2 = tokens.token(&TenantId::parse(T2).unwrap()).await.unwrap();
    assert_ne!(t1.expose_secret(), t2.expose_secret());
    let read = |token: String| {
        let http = app.http.clone();
        let url = format!(
            "{}/users?$select=userPrincipalName",
            app.emu.graph_base_url()
        );
        async move {
            let v: serde_json::Value = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(read(t1.expose_secret().to_string())
        .await
        .iter()
        .all(|u| u.ends_with("@contoso.com")));
    assert!(read(t2.expose_secret().to_string())
        .await
        .iter()
        .all(|u| u.ends_with("@fabrikam.com")));

    // Fabrikam withdraws consent (and its issued tokens run out): its work
    // fails, Contoso's goes on.
    app.control.set_consent(T2, false).unwrap();
    app.control.expire_tokens(T2);
    hire(&app, CONTOSO, "new.contoso@contoso.com");
    hire(&app, FABRIKAM, "new.fabrikam@fabrikam.com");
    wait_for("the Contoso hire", Duration::from_secs(10), || {
        app.users(T1)
            .iter()
            .any(|u| u.user_principal_name == "new.contoso@contoso.com")
    })
    .await;
    assert!(!app
        .users(T2)
        .iter()
        .any(|u| u.user_principal_name == "new.fabrikam@fabrikam.com"));
    assert!(app
        .users(T1)
        .iter()
        .all(|u| u.user_principal_name.ends_with("@contoso.com")));
    app.stop().await;
}
