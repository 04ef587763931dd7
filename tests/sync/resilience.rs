//! Throttling, outages, replication lag, bad records and noisy neighbours:
//! nothing is lost, nothing is duplicated, nobody waits for somebody else.
use std::time::Duration;

use entra_daemon::emulator::FaultKind;
use entra_daemon::store::AuditFilter;

use crate::helpers::*;

#[tokio::test]
async fn an_invalid_record_is_parked_with_its_reason_and_blocks_no_one() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.plumm(
        "INSERT INTO users (company_id, email, first_name, last_name, country)
         VALUES (1, 'sam+contractor@contoso.com', 'Sam', 'Taylor', 'UK'),
                (1, 'nina@contoso.com', 'Nina', 'Patel', 'GB')",
    );
    app.converged().await;
    assert!(
        app.entra(T1, "nina@contoso.com").is_some(),
        "the valid one went through"
    );
    assert_eq!(app.users(T1).len(), 1);

    let failed = app.audit(AuditFilter {
        failed_only: true,
        ..AuditFilter::default()
    });
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let why = failed[0].detail.clone().unwrap_or_default();
    assert_eq!(failed[0].outcome, "parked");
    assert!(
        why.contains("sam+contractor@contoso.com") && why.contains("'+'"),
        "{why}"
    );
    assert!(why.contains("'GB'"), "names the country fix too: {why}");
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1);

    // Fixed in Plumm: retried at once, pushed, and no longer parked.
    app.plumm("UPDATE users SET email = 'sam.contractor@contoso.com', country = 'GB' WHERE email = 'sam+contractor@contoso.com'");
    app.converged().await;
    assert!(app.entra(T1, "sam.contractor@contoso.com").is_some());
    assert!(app.state().parked(None).unwrap().is_empty());
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_429_is_retried_after_exactly_the_retry_after_graph_asked_for() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.fail_next(
        Some(T1),
        "POST",
        "/users",
        1,
        FaultKind::Status {
            status: 429,
            retry_after: Some(0.3),
        },
    );
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "L", "Engineer");
    app.converged().await;

    let posts: Vec<_> = app
        .writes()
        .into_iter()
        .filter(|w| w.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[0].status, 429);
    assert_eq!(posts[1].status, 201);
    let gap = (posts[1].time - posts[0].time).to_std().unwrap();
    assert!(
        gap >= Duration::from_millis(300),
        "waited {gap:?}, Graph asked for 300 ms"
    );
    let rows = app.audit_for("ada@contoso.com");
    let retry = rows
        .iter()
        .find(|r| r.outcome == "retry")
        .expect("retry row");
    assert_eq!(retry.http_status, Some(429));
    assert_eq!(
        retry.request_id.as_deref(),
        Some(posts[0].request_id.as_str())
    );
    assert_eq!(app.users(T1).len(), 1);
    app.stop_daemon().await;
}

#[tokio::test]
async fn server_errors_timeouts_and_dropped_connections_are_retried() {
    let mut app = TestApp::spawn_with(Options {
        request_timeout: "300ms",
        ..Options::default()
    })
    .await;
    app.connect_both().await;
    app.start_daemon();
    app.fail_next(
        Some(T1),
        "POST",
        "/users",
        1,
        FaultKind::Status {
            status: 503,
            retry_after: None,
        },
    );
    app.fail_next(Some(T1), "POST", "/users", 1, FaultKind::Delay { ms: 1500 });
    app.fail_next(Some(T1), "POST", "/users", 1, FaultKind::Drop);
    app.hire(CONTOSO, "bo@contoso.com", "Bo", "Ek", "Chef");
    app.converged().await;
    let bo = app.entra(T1, "bo@contoso.com").expect("created in the end");
    assert!(bo.account_enabled);
    let retries: Vec<_> = app
        .audit_for("bo@contoso.com")
        .into_iter()
        .filter(|r| r.outcome == "retry")
        .collect();
    let codes: Vec<_> = retries
        .iter()
        .map(|r| (r.http_status, r.error_code.clone()))
        .collect();
    assert_eq!(retries.len(), 3, "{codes:?}");
    assert!(
        codes.contains(&(Some(503), Some("serviceUnavailable".into())))
            || codes.iter().any(|c| c.0 == Some(503)),
        "{codes:?}"
    );
    assert!(
        codes.iter().any(|c| c.1.as_deref() == Some("timeout")),
        "{codes:?}"
    );
    app.stop_daemon().await;
    // A timed-out POST may still have created the user: never a duplicate.
    assert_eq!(app.users(T1).len(), 1, "{:#?}", app.users(T1));
}

#[tokio::test]
async fn a_long_outage_keeps_the_change_pending_until_graph_answers_again() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.fail_next(
        Some(T1),
        "POST",
        "/users",
        6,
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
    );
    app.hire(CONTOSO, "eve@contoso.com", "Eve", "Ng", "Nurse");
    let report = app.run_once().await;
    assert_eq!(report.deferred, 1, "retries spent: deferred, not lost");
    assert_eq!(app.state().pending_total().unwrap(), 1);
    let failed = app.audit(AuditFilter {
        failed_only: true,
        ..AuditFilter::default()
    });
    assert!(
        failed
            .iter()
            .any(|r| r.outcome == "failed" && r.http_status == Some(500)),
        "{failed:#?}"
    );

    app.start_daemon();
    app.converged().await;
    assert!(app.entra(T1, "eve@contoso.com").is_some());
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_404_right_after_a_create_is_replication_lag_not_a_missing_user() {
    let mut app = TestApp::spawn_with(Options {
        replication_delay_ms: 600,
        ..Options::default()
    })
    .await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "ian@contoso.com", "Ian", "Wu", "Analyst");
    app.converged().await;
    app.plumm("UPDATE users SET role = 'Lead Analyst' WHERE email = 'ian@contoso.com'");
    app.converged().await;

    let ian = app.entra(T1, "ian@contoso.com").unwrap();
    assert_eq!(ian.job_title.as_deref(), Some("Lead Analyst"));
    assert_eq!(app.users(T1).len(), 1);
    let patches: Vec<_> = app
        .writes()
        .into_iter()
        .filter(|w| w.method == "PATCH")
        .collect();
    assert!(
        patches.iter().all(|p| p.path.ends_with(&ian.id)),
        "the POST's id is kept"
    );
    assert!(
        patches.first().is_some_and(|p| p.status == 404),
        "{patches:#?}"
    );
    assert_eq!(patches.last().unwrap().status, 204);
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_duplicate_refusal_for_an_invisible_user_waits_and_links_it() {
    // The crash case: Graph created the user, the link was never recorded,
    // and lookups do not see the user yet. The POST is refused as a
    // duplicate; the daemon looks again until the user shows, then links.
    let mut app = TestApp::spawn_with(Options {
        replication_delay_ms: 800,
        ..Options::default()
    })
    .await;
    app.connect_both().await;
    let ghost = create_through_graph(&app, T1, "zoe@contoso.com").await;
    app.hire(CONTOSO, "zoe@contoso.com", "Zoe", "Martin", "Nutritionist");
    app.start_daemon();
    app.converged().await;

    assert_eq!(app.users(T1).len(), 1, "no duplicate");
    let link = app
        .state()
        .link(entra_daemon::domain::PlummUserId(
            app.plumm_id("zoe@contoso.com"),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(link.entra_id.0, ghost);
    let rows = app.audit_for("zoe@contoso.com");
    assert!(
        rows.iter()
            .any(|r| r.action == "create" && r.http_status == Some(400) && r.outcome == "retry"),
        "{rows:#?}"
    );
    assert!(rows.iter().any(|r| r.action == "link" && r.outcome == "ok"));
    assert!(app.state().parked(None).unwrap().is_empty());
    assert_eq!(
        app.entra(T1, "zoe@contoso.com")
            .unwrap()
            .job_title
            .as_deref(),
        Some("Nutritionist")
    );
    app.stop_daemon().await;
}

/// Creates a user straight through Graph with the app's own credentials.
async fn create_through_graph(app: &TestApp, tenant: &str, upn: &str) -> String {
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/token",
            app.emu.authority_host()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created: serde_json::Value = http
        .post(format!("{}/users", app.emu.graph_base_url()))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&serde_json::json!({
            "accountEnabled": true, "displayName": "Zoe", "mailNickname": "zoe",
            "userPrincipalName": upn, "mail": upn,
            "passwordProfile": {"forceChangePasswordNextSignIn": true, "password": "xWwvJ]6NMw+bWH-d"}
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().expect("created").to_string()
}

#[tokio::test]
async fn a_throttled_tenant_does_not_delay_another_tenant() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    // Contoso is throttled hard: every write waits 3 s.
    app.fail_next(
        Some(T1),
        "POST",
        "/users",
        50,
        FaultKind::Status {
            status: 429,
            retry_after: Some(3.0),
        },
    );
    app.hire(CONTOSO, "slow@contoso.com", "Slow", "Lane", "Clerk");
    wait_for("Contoso's first 429", Duration::from_secs(5), || {
        app.writes().iter().any(|w| w.status == 429)
    })
    .await;

    // Fabrikam's hire lands while Contoso is still held by its 3 s
    // Retry-After (timing figures belong to the benchmark, not here).
    app.hire(FABRIKAM, "fast@fabrikam.com", "Fast", "Lane", "Coach");
    wait_for("Fabrikam's user", Duration::from_secs(10), || {
        app.entra(T2, "fast@fabrikam.com").is_some()
    })
    .await;
    assert!(
        app.entra(T1, "slow@contoso.com").is_none(),
        "Contoso still waits"
    );
    app.control.clear_faults();
    app.converged().await;
    assert!(app.entra(T1, "slow@contoso.com").is_some());
    app.stop_daemon().await;
}

#[tokio::test]
async fn every_graph_call_uses_a_token_of_its_own_tenant() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.control.clear_requests(); // `connect` verified each tenant with its own token
    app.start_daemon();
    app.hire(CONTOSO, "a@contoso.com", "A", "One", "x");
    app.hire(FABRIKAM, "b@fabrikam.com", "B", "Two", "y");
    app.converged().await;
    app.stop_daemon().await;
    let calls = app.graph_calls();
    assert!(!calls.is_empty());
    for c in &calls {
        assert!(c.status != 401, "{c:#?}");
        let body = body(c).to_string();
        let expected = if body.contains("contoso.com") {
            T1
        } else if body.contains("fabrikam.com") {
            T2
        } else {
            continue;
        };
        assert_eq!(c.tenant.as_deref(), Some(expected), "{c:#?}");
    }
    let tokens = app
        .control
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert_eq!(tokens, 2, "one token per tenant, cached");
}

#[tokio::test]
async fn graph_refusals_that_will_repeat_park_the_user_with_a_reason() {
    let mut app = TestApp::spawn().await;
    app.control
        .seed_user(
            T1,
            entra_daemon::emulator::SeedUser {
                user_principal_name: "boss@contoso.com".into(),
                mail: Some("boss@contoso.com".into()),
                display_name: Some("The Boss".into()),
                privileged: true,
                ..Default::default()
            },
        )
        .unwrap();
    app.plumm(
        "INSERT INTO users (company_id, email, first_name, last_name, role)
         VALUES (1, 'boss@contoso.com', 'The', 'Boss', 'CEO'),
                (1, 'someone@unverified.org', 'Some', 'One', 'Temp')",
    );
    app.connect_both().await;
    app.start_daemon();
    app.converged().await;
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 2, "{parked:#?}");
    let reason = |email: &str| {
        parked
            .iter()
            .find(|p| p.email == email)
            .unwrap()
            .reason
            .clone()
    };
    assert!(
        reason("boss@contoso.com").contains("403"),
        "{}",
        reason("boss@contoso.com")
    );
    assert!(
        reason("someone@unverified.org").contains("not a verified domain"),
        "{}",
        reason("someone@unverified.org")
    );
    assert!(reason("someone@unverified.org").contains("upn_domain"));
    app.stop_daemon().await;
}

#[tokio::test]
async fn with_upn_domain_an_unverified_email_domain_falls_back_for_the_upn() {
    let mut app = TestApp::spawn_with(Options {
        upn_domain: "contoso.onmicrosoft.com",
        ..Options::default()
    })
    .await;
    app.hire(CONTOSO, "temp@agency.org", "Temp", "Worker", "Temp");
    app.connect_both().await;
    app.start_daemon();
    app.converged().await;
    let u = app
        .entra(T1, "temp@contoso.onmicrosoft.com")
        .expect("created on the fallback domain");
    assert_eq!(u.mail.as_deref(), Some("temp@agency.org"));
    app.plumm("UPDATE users SET role = 'Permanent' WHERE email = 'temp@agency.org'");
    app.converged().await;
    let u = app.entra(T1, "temp@contoso.onmicrosoft.com").unwrap();
    assert_eq!(u.job_title.as_deref(), Some("Permanent"));
    assert!(app.state().parked(None).unwrap().is_empty());
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_change_that_arrives_while_its_user_is_in_flight_is_applied_after_it() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "max@contoso.com", "Max", "Power", "Junior");
    app.converged().await;
    // The first update is slow to be answered; a second one comes meanwhile.
    app.fail_next(
        Some(T1),
        "PATCH",
        "/users/",
        1,
        FaultKind::Delay { ms: 400 },
    );
    app.plumm("UPDATE users SET role = 'Mid' WHERE email = 'max@contoso.com'");
    wait_for(
        "the slow PATCH to be under way",
        Duration::from_secs(2),
        || app.control.faults().is_empty(),
    )
    .await;
    app.plumm("UPDATE users SET role = 'Senior' WHERE email = 'max@contoso.com'");
    app.converged().await;
    assert_eq!(
        app.entra(T1, "max@contoso.com")
            .unwrap()
            .job_title
            .as_deref(),
        Some("Senior")
    );
    let patches: Vec<_> = app
        .writes()
        .into_iter()
        .filter(|w| w.method == "PATCH")
        .collect();
    assert_eq!(
        patches.len(),
        2,
        "one per state seen, in order: {patches:#?}"
    );
    assert_eq!(body(&patches[1])["jobTitle"], "Senior");
    app.stop_daemon().await;
}
