//! A tenant that refuses the app is quarantined: its changes wait (never
//! lost), other tenants carry on, and re-consent releases everything.
use std::time::Duration;

use entra_daemon::domain::CompanyId;
use entra_daemon::store::AuditFilter;

use crate::helpers::*;

async fn revoked_tenant() -> TestApp {
    let mut app = TestApp::spawn_with(Options {
        extra_sync: "quarantine_probe_first = \"100ms\"\nquarantine_probe_max = \"400ms\"".into(),
        ..Options::default()
    })
    .await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "before@contoso.com", "Be", "Fore", "Staff");
    app.converged().await;
    // An Entra admin withdraws the consent. The token already issued works
    // until it expires (an hour in Entra; here at once), then none is issued.
    app.control.set_consent(T1, false).unwrap();
    app.control.expire_tokens(T1);
    app.hire(CONTOSO, "alice@contoso.com", "Alice", "Held", "Staff");
    app.hire(FABRIKAM, "bob@fabrikam.com", "Bob", "Free", "Staff");
    wait_for("Contoso to be quarantined", Duration::from_secs(10), || {
        !app.state().quarantined().unwrap().is_empty()
    })
    .await;
    wait_for("Fabrikam to carry on", Duration::from_secs(5), || {
        app.entra(T2, "bob@fabrikam.com").is_some()
    })
    .await;
    app
}

#[tokio::test]
async fn a_tenant_that_revokes_consent_is_quarantined_and_a_reconnect_releases_its_changes() {
    let mut app = revoked_tenant().await;
    let q = app.state().quarantined().unwrap();
    assert_eq!(q[0].company, CompanyId(CONTOSO));
    assert!(
        q[0].reason.contains("connect the company again"),
        "{}",
        q[0].reason
    );
    assert!(app.entra(T1, "alice@contoso.com").is_none());
    assert_eq!(
        app.state().pending_summary(CompanyId(CONTOSO)).unwrap().0,
        1,
        "held, not lost"
    );
    let rows = app.audit(AuditFilter {
        company: Some(CompanyId(CONTOSO)),
        failed_only: true,
        ..AuditFilter::default()
    });
    assert!(
        rows.iter().any(|r| r.action == "quarantine"
            && r.detail
                .as_deref()
                .unwrap_or("")
                .contains("needs re-consent")),
        "{rows:#?}"
    );

    // Probed at growing intervals meanwhile.
    let token_requests = || {
        app.control
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with(&format!("/{T1}/oauth2")))
            .count()
    };
    let before = token_requests();
    wait_for("two probes", Duration::from_secs(5), || {
        token_requests() >= before + 2
    })
    .await;

    // The admin consents again and reconnects: everything held converges.
    app.control.set_consent(T1, true).unwrap();
    app.connect(CONTOSO, T1).await;
    app.converged().await;
    assert!(app.entra(T1, "alice@contoso.com").is_some());
    assert!(app.state().quarantined().unwrap().is_empty());
    assert_eq!(app.users(T1).len(), 2);
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_probe_lifts_the_quarantine_once_the_tenant_accepts_the_app_again() {
    let mut app = revoked_tenant().await;
    app.control.set_consent(T1, true).unwrap();
    app.converged().await;
    assert!(app.entra(T1, "alice@contoso.com").is_some());
    assert!(app.state().quarantined().unwrap().is_empty());
    let lifted = app.audit(AuditFilter {
        company: Some(CompanyId(CONTOSO)),
        ..AuditFilter::default()
    });
    assert!(lifted
        .iter()
        .any(|r| r.action == "quarantine" && r.outcome == "ok"));
    app.stop_daemon().await;
}
