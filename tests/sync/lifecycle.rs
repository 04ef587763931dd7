//! A person's life in Plumm, mirrored in Entra.
use entra_daemon::store::AuditFilter;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_new_hire_is_created_with_every_mapped_property_in_one_post() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(
        CONTOSO,
        "Ada.Lovelace@contoso.com",
        "Ada",
        "Lovelace",
        "Engineer",
    );
    app.converged().await;

    let ada = app
        .entra(T1, "ada.lovelace@contoso.com")
        .expect("created in Entra");
    assert_eq!(ada.user_principal_name, "Ada.Lovelace@contoso.com");
    assert_eq!(ada.mail.as_deref(), Some("Ada.Lovelace@contoso.com"));
    assert_eq!(ada.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.job_title.as_deref(), Some("Engineer"));
    assert_eq!(ada.department.as_deref(), Some("Engineering"));
    assert_eq!(ada.office_location.as_deref(), Some("London"));
    assert_eq!(ada.usage_location.as_deref(), Some("GB"));
    assert!(ada.account_enabled);

    let writes = app.writes();
    assert_eq!(writes.len(), 1, "one POST, no follow-up PATCH: {writes:#?}");
    let post = &writes[0];
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/v1.0/users")
    );
    assert_eq!(post.tenant.as_deref(), Some(T1));
    let b = body(post);
    assert_eq!(
        b["passwordProfile"]["forceChangePasswordNextSignIn"],
        json!(true)
    );
    assert_eq!(
        b["passwordProfile"]["password"],
        json!("***"),
        "the log redacts, the daemon sent one"
    );
    assert_eq!(b["mailNickname"], json!("Ada.Lovelace"));
    assert_eq!(b["accountEnabled"], json!(true));
    assert!(post
        .client_request_id
        .as_deref()
        .is_some_and(|id| id.len() == 36));
    assert_eq!(post.throttle_priority.as_deref(), Some("high"));

    let rows = app.audit_for("ada.lovelace@contoso.com");
    let create = rows
        .iter()
        .find(|r| r.action == "create")
        .expect("audit row");
    assert_eq!(create.outcome, "ok");
    assert_eq!(create.http_status, Some(201));
    assert_eq!(create.request_id.as_deref(), Some(post.request_id.as_str()));
    assert_eq!(create.client_request_id, post.client_request_id);
    assert_eq!(create.company_id, Some(CONTOSO));
    assert_eq!(create.tenant_id.as_deref(), Some(T1));
    app.stop_daemon().await;
}

#[tokio::test]
async fn an_existing_entra_user_with_the_same_email_is_linked_not_duplicated() {
    let mut app = TestApp::spawn().await;
    let existing = app.seed(
        T1,
        "grace.hopper@contoso.com",
        "Grace Hopper",
        Some("Admiral"),
    );
    app.hire(
        CONTOSO,
        "GRACE.HOPPER@contoso.com",
        "Grace",
        "Hopper",
        "Admiral",
    );
    app.connect_both().await;
    app.start_daemon();
    app.converged().await;

    assert_eq!(app.users(T1).len(), 1, "no duplicate");
    assert!(
        app.writes().iter().all(|w| w.method != "POST"),
        "{:#?}",
        app.writes()
    );
    let link = app
        .state()
        .link(entra_daemon::domain::PlummUserId(
            app.plumm_id("GRACE.HOPPER@contoso.com"),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(link.entra_id.0, existing);
    // Only what differed was written: the UPN casing and the unset properties.
    let patch = app
        .writes()
        .into_iter()
        .find(|w| w.method == "PATCH")
        .expect("one PATCH");
    let b = body(&patch);
    assert!(
        b.get("displayName").is_none() && b.get("jobTitle").is_none(),
        "{b}"
    );
    assert_eq!(b["department"], json!("Engineering"));
    let rows = app.audit_for("GRACE.HOPPER@contoso.com");
    assert!(
        rows.iter().any(|r| r.action == "link" && r.outcome == "ok"),
        "{rows:#?}"
    );
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_promotion_patches_only_the_job_title_and_a_no_op_writes_nothing() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(FABRIKAM, "ana.silva@fabrikam.com", "Ana", "Silva", "Nurse");
    app.converged().await;
    // A promotion long after the hire: Entra has replicated the account.
    app.control.replicate_now();
    app.control.clear_requests();

    app.plumm("UPDATE users SET role = 'Clinical Lead' WHERE email = 'ana.silva@fabrikam.com'");
    app.converged().await;
    let writes = app.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(body(&writes[0]), json!({"jobTitle": "Clinical Lead"}));
    assert_eq!(
        app.entra(T2, "ana.silva@fabrikam.com")
            .unwrap()
            .job_title
            .as_deref(),
        Some("Clinical Lead")
    );

    app.control.clear_requests();
    app.plumm("UPDATE users SET updated_at = '2030-01-01T00:00:00.000Z' WHERE email = 'ana.silva@fabrikam.com'");
    app.converged().await;
    assert!(app.graph_calls().is_empty(), "{:#?}", app.graph_calls());
    app.stop_daemon().await;
}

#[tokio::test]
async fn many_changes_to_one_user_collapse_into_one_push() {
    let app = TestApp::spawn().await;
    app.connect_both().await;
    app.hire(CONTOSO, "lin@contoso.com", "Lin", "Chen", "Analyst");
    for title in ["Senior Analyst", "Lead Analyst", "Head of Analysis"] {
        app.plumm(&format!(
            "UPDATE users SET role = '{title}' WHERE email = 'lin@contoso.com'"
        ));
    }
    let report = app.run_once().await;
    assert_eq!(report.done, 1);
    let writes = app.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(body(&writes[0])["jobTitle"], json!("Head of Analysis"));
}

#[tokio::test]
async fn an_email_change_renames_the_same_entra_user() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(
        CONTOSO,
        "joni.sherman@contoso.com",
        "Joni",
        "Sherman",
        "Paralegal",
    );
    app.converged().await;
    let before = app.entra(T1, "joni.sherman@contoso.com").unwrap();

    app.plumm("UPDATE users SET email = 'joni.lopez@contoso.com', last_name = 'Lopez' WHERE email = 'joni.sherman@contoso.com'");
    app.converged().await;
    let after = app.entra(T1, "joni.lopez@contoso.com").expect("renamed");
    assert_eq!(after.id, before.id, "same object, carried by the link");
    assert_eq!(after.mail.as_deref(), Some("joni.lopez@contoso.com"));
    assert_eq!(after.mail_nickname, "joni.lopez");
    assert_eq!(after.display_name.as_deref(), Some("Joni Lopez"));
    assert_eq!(app.users(T1).len(), 1);
    app.stop_daemon().await;
}

#[tokio::test]
async fn offboarding_suspends_and_revokes_sessions_and_rehire_reactivates() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "grady@contoso.com", "Grady", "Archie", "Designer");
    app.converged().await;

    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'grady@contoso.com'");
    app.converged().await;
    let grady = app.entra(T1, "grady@contoso.com").unwrap();
    assert!(!grady.account_enabled, "suspended");
    assert_eq!(grady.revoke_sign_in_sessions_count, 1);
    assert_eq!(grady.job_title.as_deref(), Some("Designer"), "data kept");
    let rows = app.audit_for("grady@contoso.com");
    assert!(rows
        .iter()
        .any(|r| r.action == "suspend" && r.outcome == "ok"));
    assert!(rows
        .iter()
        .any(|r| r.action == "revoke" && r.outcome == "ok"));

    app.plumm("UPDATE users SET status = 'active' WHERE email = 'grady@contoso.com'");
    app.converged().await;
    assert!(
        app.entra(T1, "grady@contoso.com").unwrap().account_enabled,
        "reactivated"
    );
    assert!(app
        .audit_for("grady@contoso.com")
        .iter()
        .any(|r| r.action == "reactivate" && r.outcome == "ok"));
    app.stop_daemon().await;
}

#[tokio::test]
async fn suspension_without_revocation_when_configured() {
    let mut app = TestApp::spawn_with(Options {
        revoke: false,
        ..Options::default()
    })
    .await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "kim@contoso.com", "Kim", "Lee", "Designer");
    app.converged().await;
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'kim@contoso.com'");
    app.converged().await;
    let kim = app.entra(T1, "kim@contoso.com").unwrap();
    assert!(!kim.account_enabled);
    assert_eq!(kim.revoke_sign_in_sessions_count, 0);
    app.stop_daemon().await;
}

async fn delete_with(
    on_delete: &'static str,
) -> (TestApp, Option<entra_daemon::emulator::EmulatedUser>) {
    let mut app = TestApp::spawn_with(Options {
        on_delete,
        ..Options::default()
    })
    .await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(FABRIKAM, "liam@fabrikam.com", "Liam", "Murphy", "Coach");
    app.converged().await;
    // A departure long after the hire: Entra has replicated the account.
    app.control.replicate_now();
    app.plumm("DELETE FROM users WHERE email = 'liam@fabrikam.com'");
    app.converged().await;
    app.stop_daemon().await;
    let liam = app
        .control
        .users(T2)
        .into_iter()
        .find(|u| u.user_principal_name == "liam@fabrikam.com");
    (app, liam)
}

#[tokio::test]
async fn deleting_in_plumm_suspends_by_default() {
    let (app, liam) = delete_with("suspend").await;
    let liam = liam.expect("kept");
    assert!(!liam.deleted && !liam.account_enabled);
    assert_eq!(liam.revoke_sign_in_sessions_count, 1);
    assert!(app
        .audit_for("liam@fabrikam.com")
        .iter()
        .any(|r| r.action == "suspend" && r.outcome == "ok"));
}

#[tokio::test]
async fn deleting_in_plumm_can_soft_delete_in_entra() {
    let (app, liam) = delete_with("delete").await;
    assert!(liam.expect("soft-deleted users are kept 30 days").deleted);
    let del = app
        .writes()
        .into_iter()
        .filter(|w| w.method == "DELETE")
        .count();
    assert_eq!(del, 1);
}

#[tokio::test]
async fn deleting_in_plumm_can_leave_entra_alone() {
    let (app, liam) = delete_with("ignore").await;
    let liam = liam.expect("untouched");
    assert!(!liam.deleted && liam.account_enabled);
    assert_eq!(app.writes().len(), 1, "only the create");
    assert!(app
        .audit_for("liam@fabrikam.com")
        .iter()
        .any(|r| r.outcome == "skipped"));
}

#[tokio::test]
async fn users_of_an_unconnected_company_are_not_pushed_until_it_connects() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(UNCONNECTED, "pat@contoso.com", "Pat", "Kim", "Chef");
    app.converged().await;
    assert!(
        app.graph_calls().iter().all(|r| r.method == "GET"),
        "nothing written"
    );
    assert!(app.entra(T1, "pat@contoso.com").is_none());
    let rows = app.audit(AuditFilter {
        company: Some(entra_daemon::domain::CompanyId(UNCONNECTED)),
        ..AuditFilter::default()
    });
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].outcome, "skipped");

    // The later connect runs an initial sync for the company.
    app.control
        .add_tenant(entra_daemon::emulator::TenantSpec {
            id: "33333333-3333-4333-8333-333333333333".into(),
            domains: vec!["contoso.com".into()],
            size: entra_daemon::emulator::TenantSize::Small,
            consented: true,
            permissions: entra_daemon::emulator::default_permissions(),
        })
        .unwrap();
    app.connect(UNCONNECTED, "33333333-3333-4333-8333-333333333333")
        .await;
    app.converged().await;
    let pat = app
        .entra("33333333-3333-4333-8333-333333333333", "pat@contoso.com")
        .expect("pushed after connect");
    assert!(pat.account_enabled);
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_reused_plumm_id_never_inherits_the_previous_persons_account() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "first@contoso.com", "First", "Person", "Leaver");
    app.converged().await;
    let id = app.plumm_id("first@contoso.com");
    // SQLite hands the highest id out again after it is deleted.
    app.plumm(&format!(
        "DELETE FROM users WHERE id = {id};
         INSERT INTO users (id, company_id, email, first_name, last_name, role)
         VALUES ({id}, 1, 'second@contoso.com', 'Second', 'Person', 'Joiner')"
    ));
    app.converged().await;
    let first = app.entra(T1, "first@contoso.com").expect("kept");
    let second = app.entra(T1, "second@contoso.com").expect("a new account");
    assert_ne!(first.id, second.id);
    assert!(!first.account_enabled, "the leaver is suspended");
    assert_eq!(first.job_title.as_deref(), Some("Leaver"));
    assert!(second.account_enabled);
    app.stop_daemon().await;
}

#[tokio::test]
async fn deleting_a_user_that_was_never_linked_touches_nothing_in_entra() {
    let mut app = TestApp::spawn().await;
    // An account with the same email exists, but Plumm never managed it:
    // the user was parked (invalid country) before its deletion.
    app.seed(T1, "pat@contoso.com", "Pat Existing", None);
    app.connect_both().await;
    app.start_daemon();
    app.plumm("INSERT INTO users (company_id, email, first_name, last_name, country) VALUES (1, 'pat@contoso.com', 'Pat', 'Kim', 'Britain')");
    app.converged().await;
    assert_eq!(app.state().parked(None).unwrap().len(), 1);
    app.plumm("DELETE FROM users WHERE email = 'pat@contoso.com'");
    app.converged().await;
    assert!(app.entra(T1, "pat@contoso.com").unwrap().account_enabled);
    assert!(app.writes().is_empty(), "{:#?}", app.writes());
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_leaver_whose_row_entra_would_refuse_is_still_suspended_and_the_profile_parked() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "nia@contoso.com", "Nia", "Cole", "Nurse");
    app.converged().await;
    app.control.replicate_now();
    // She leaves, and the same edit puts a NUL into her department: the
    // profile cannot go to Entra, the suspension must.
    app.plumm(
        "UPDATE users SET status = 'inactive', department = 'Ward' || char(0) || '7'
         WHERE email = 'nia@contoso.com'",
    );
    app.converged().await;
    let nia = app.entra(T1, "nia@contoso.com").unwrap();
    assert!(!nia.account_enabled, "suspended despite the refused field");
    assert_eq!(nia.revoke_sign_in_sessions_count, 1, "and signed out");
    assert_eq!(
        nia.department.as_deref(),
        Some("Engineering"),
        "the refused value never reached Entra"
    );
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert!(
        parked[0].reason.contains("department"),
        "{}",
        parked[0].reason
    );
    app.stop_daemon().await;
}
