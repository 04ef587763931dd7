//! Offboarding never fails open: when Graph's answer is lost, late or never
//! came, the daemon reads Entra before deciding. Each test is one window in
//! which the daemon used to trust its own records over Entra, and each runs
//! with requests sent alone and inside `$batch`.
use std::process::Stdio;
use std::time::Duration;

use entra_daemon::domain::PlummUserId;
use entra_daemon::emulator::FaultKind;

use crate::helpers::*;

fn options(batch: bool, on_delete: &'static str, replication_delay_ms: u64) -> Options {
    Options {
        on_delete,
        replication_delay_ms,
        extra_sync: format!("batch = {batch}"),
        ..Options::default()
    }
}

/// Waits until the account with this UPN is in the state the test expects.
async fn wait_entra(app: &TestApp, what: &str, upn: &str, ok: impl Fn(Option<bool>) -> bool) {
    wait_for(what, Duration::from_secs(20), || {
        ok(app
            .entra(T1, upn)
            .filter(|u| !u.deleted)
            .map(|u| u.account_enabled))
    })
    .await;
}

/// Waits until the audit log shows the daemon gave `action` up for now (its
/// retries spent): the change stays pending.
async fn gave_up(app: &TestApp, what: &str, email: &str, action: &str) {
    wait_for(what, Duration::from_secs(10), || {
        app.audit_for(email)
            .iter()
            .any(|r| r.action == action && r.outcome == "failed")
    })
    .await;
}

// ---- 1. a removal inside the replication window -------------------------

async fn suspended_right_after_create(batch: bool) {
    let mut app = TestApp::spawn_with(options(batch, "suspend", 1500)).await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "young@contoso.com", "Young", "Hire", "Starter");
    wait_entra(&app, "the create", "young@contoso.com", |u| u.is_some()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Deleted in Plumm with on_delete = suspend: the removal path, which
    // used to take the young object's 404 for "already gone".
    app.plumm("DELETE FROM users WHERE email = 'young@contoso.com'");
    app.converged().await;
    let u = app.entra(T1, "young@contoso.com").expect("account");
    assert!(!u.account_enabled, "suspended although it was young");
    assert_eq!(u.revoke_sign_in_sessions_count, 1, "and signed out");
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_deletion_200ms_after_the_create_suspends_the_account_once_replicated() {
    suspended_right_after_create(false).await;
}

#[tokio::test]
async fn a_deletion_200ms_after_the_create_suspends_the_account_once_replicated_in_batch() {
    suspended_right_after_create(true).await;
}

async fn deleted_right_after_create(batch: bool) {
    let mut app = TestApp::spawn_with(options(batch, "delete", 1500)).await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "brief@contoso.com", "Brief", "Stay", "Temp");
    wait_entra(&app, "the create", "brief@contoso.com", |u| u.is_some()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.plumm("DELETE FROM users WHERE email = 'brief@contoso.com'");
    app.converged().await;
    let u = app.entra(T1, "brief@contoso.com").expect("account");
    assert!(u.deleted, "on_delete = delete deletes even a young account");
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_deletion_200ms_after_the_create_deletes_the_account() {
    deleted_right_after_create(false).await;
}

#[tokio::test]
async fn a_deletion_200ms_after_the_create_deletes_the_account_in_batch() {
    deleted_right_after_create(true).await;
}

// ---- 2. moved, then deleted before the move was carried out -------------

#[tokio::test]
async fn moved_then_deleted_while_stopped_suspends_the_old_tenants_account() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "mover@contoso.com", "Mo", "Ver", "Analyst");
    app.converged().await;
    app.stop_daemon().await;

    app.plumm(&format!(
        "UPDATE users SET company_id = {FABRIKAM}, email = 'mover@fabrikam.com' WHERE email = 'mover@contoso.com'"
    ));
    app.plumm("DELETE FROM users WHERE email = 'mover@fabrikam.com'");
    app.start_daemon();
    app.converged().await;
    app.stop_daemon().await;

    let old = app.entra(T1, "mover@contoso.com").expect("old account");
    assert!(
        !old.account_enabled,
        "the old tenant's account is suspended"
    );
    assert!(app.entra(T2, "mover@fabrikam.com").is_none());
}

#[tokio::test]
async fn a_move_to_an_unconnected_company_suspends_the_old_account() {
    let mut app = TestApp::spawn().await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "away@contoso.com", "Far", "Away", "Analyst");
    app.converged().await;
    app.plumm(&format!(
        "UPDATE users SET company_id = {UNCONNECTED} WHERE email = 'away@contoso.com'"
    ));
    app.converged().await;
    app.stop_daemon().await;
    let old = app.entra(T1, "away@contoso.com").expect("old account");
    assert!(!old.account_enabled, "no longer in the company: suspended");
}

// ---- 3. a create Graph applied whose answer never arrived ----------------

/// Runs the daemon binary until Graph has created `upn` (every answer to a
/// create is lost, so the link is never stored), then `kill -9`s it.
async fn kill_after_applied_create(app: &TestApp, upn: &str) {
    app.fail_next(Some(T1), "POST", "/users", 1000, FaultKind::DropAfter);
    let mut child = spawn_daemon_process(app, Stdio::null());
    wait_for("Graph to apply the create", Duration::from_secs(10), || {
        app.entra(T1, upn).is_some()
    })
    .await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");
    app.control.clear_faults();
    let id = PlummUserId(app.plumm_id(upn));
    assert!(
        app.state().link(id).unwrap().is_none(),
        "died before linking"
    );
}

#[tokio::test]
async fn killed_after_an_applied_create_then_renamed_keeps_one_account() {
    let mut app = TestApp::spawn_with(options(true, "suspend", 1000)).await;
    app.connect_both().await;
    app.hire(CONTOSO, "first@contoso.com", "Una", "Count", "Starter");
    kill_after_applied_create(&app, "first@contoso.com").await;
    app.plumm("UPDATE users SET email = 'second@contoso.com' WHERE email = 'first@contoso.com'");
    app.start_daemon();
    app.converged().await;
    app.stop_daemon().await;
    let all = app.users(T1);
    assert_eq!(all.len(), 1, "one account, not two: {all:#?}");
    assert_eq!(all[0].user_principal_name, "second@contoso.com");
    let link = app
        .state()
        .link(PlummUserId(app.plumm_id("second@contoso.com")))
        .unwrap()
        .expect("linked");
    assert_eq!(link.entra_id.0, all[0].id);
    let rows = app.audit_for("first@contoso.com");
    assert!(
        rows.iter().any(|r| r
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("its answer never arrived")),
        "the audit log says how the account was found: {rows:#?}"
    );
}

#[tokio::test]
async fn killed_after_an_applied_create_then_deleted_suspends_that_account() {
    let mut app = TestApp::spawn_with(options(true, "suspend", 1000)).await;
    app.connect_both().await;
    app.hire(CONTOSO, "ghost@contoso.com", "Gho", "St", "Starter");
    kill_after_applied_create(&app, "ghost@contoso.com").await;
    app.plumm("DELETE FROM users WHERE email = 'ghost@contoso.com'");
    app.start_daemon();
    app.converged().await;
    app.stop_daemon().await;
    let u = app
        .entra(T1, "ghost@contoso.com")
        .expect("the account Graph made");
    assert!(
        !u.account_enabled,
        "the person left: their account is suspended"
    );
}

async fn lost_create_answer_then_renamed(batch: bool) {
    let mut app = TestApp::spawn_with(options(batch, "suspend", 800)).await;
    app.connect_both().await;
    // Every create's answer is lost: the first applies, the retries are
    // refused as duplicates whose answers are lost too.
    app.fail_next(Some(T1), "POST", "/users", 1000, FaultKind::DropAfter);
    app.start_daemon();
    app.hire(CONTOSO, "reset@contoso.com", "Re", "Set", "Starter");
    wait_for("Graph to apply the create", Duration::from_secs(10), || {
        app.entra(T1, "reset@contoso.com").is_some()
    })
    .await;
    gave_up(
        &app,
        "the create to be given up for now",
        "reset@contoso.com",
        "create",
    )
    .await;
    app.plumm("UPDATE users SET email = 'renamed@contoso.com' WHERE email = 'reset@contoso.com'");
    app.control.clear_faults();
    app.converged().await;
    app.stop_daemon().await;
    let all = app.users(T1);
    assert_eq!(all.len(), 1, "one account: {all:#?}");
    assert_eq!(all[0].user_principal_name, "renamed@contoso.com");
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_renamed_not_duplicated() {
    lost_create_answer_then_renamed(false).await;
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_renamed_not_duplicated_in_batch() {
    lost_create_answer_then_renamed(true).await;
}

// ---- 4. a write Graph applied whose answer was lost ----------------------

async fn revoke_refused_then_reactivated(batch: bool) {
    let mut app = TestApp::spawn_with(options(batch, "suspend", 0)).await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "back@contoso.com", "Bo", "Omerang", "Nurse");
    app.converged().await;
    app.fail_next(
        Some(T1),
        "POST",
        "revokeSignInSessions",
        1000,
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
    );
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'back@contoso.com'");
    wait_entra(&app, "the suspension", "back@contoso.com", |u| {
        u == Some(false)
    })
    .await;
    gave_up(&app, "the revoke to fail", "back@contoso.com", "revoke").await;
    app.control.clear_faults();
    app.plumm("UPDATE users SET status = 'active' WHERE email = 'back@contoso.com'");
    app.converged().await;
    app.stop_daemon().await;
    let u = app.entra(T1, "back@contoso.com").expect("account");
    assert!(u.account_enabled, "the rehire can sign in again");
}

#[tokio::test]
async fn a_suspension_whose_revoke_failed_then_a_reactivation_enables_the_account() {
    revoke_refused_then_reactivated(false).await;
}

#[tokio::test]
async fn a_suspension_whose_revoke_failed_then_a_reactivation_enables_the_account_in_batch() {
    revoke_refused_then_reactivated(true).await;
}

#[tokio::test]
async fn a_revoke_that_failed_is_retried_after_the_suspension_went_through() {
    let mut app = TestApp::spawn_with(options(false, "suspend", 0)).await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "owed@contoso.com", "Ow", "Ed", "Nurse");
    app.converged().await;
    app.fail_next(
        Some(T1),
        "POST",
        "revokeSignInSessions",
        4,
        FaultKind::Status {
            status: 500,
            retry_after: None,
        },
    );
    app.plumm("DELETE FROM users WHERE email = 'owed@contoso.com'");
    app.converged().await;
    app.stop_daemon().await;
    let u = app.entra(T1, "owed@contoso.com").expect("account");
    assert!(!u.account_enabled);
    assert_eq!(u.revoke_sign_in_sessions_count, 1, "signed out in the end");
}

async fn reactivation_answer_lost_then_suspended(batch: bool) {
    let mut app = TestApp::spawn_with(options(batch, "suspend", 0)).await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "flip@contoso.com", "Fl", "Ip", "Porter");
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'flip@contoso.com'");
    app.converged().await;
    assert!(!app.entra(T1, "flip@contoso.com").unwrap().account_enabled);

    app.fail_next(Some(T1), "PATCH", "/users/", 1000, FaultKind::DropAfter);
    app.plumm("UPDATE users SET status = 'active' WHERE email = 'flip@contoso.com'");
    wait_entra(&app, "the reactivation", "flip@contoso.com", |u| {
        u == Some(true)
    })
    .await;
    gave_up(
        &app,
        "the reactivation to be given up for now",
        "flip@contoso.com",
        "reactivate",
    )
    .await;
    app.control.clear_faults();
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'flip@contoso.com'");
    app.converged().await;
    app.stop_daemon().await;
    let u = app.entra(T1, "flip@contoso.com").expect("account");
    assert!(!u.account_enabled, "suspended in Plumm: disabled in Entra");
}

#[tokio::test]
async fn a_reactivation_whose_answer_was_lost_then_a_suspension_disables_the_account() {
    reactivation_answer_lost_then_suspended(false).await;
}

#[tokio::test]
async fn a_reactivation_whose_answer_was_lost_then_a_suspension_disables_the_account_in_batch() {
    reactivation_answer_lost_then_suspended(true).await;
}

// ---- resync finds what a lost answer left behind -------------------------

#[tokio::test]
async fn a_resync_deprovisions_an_account_a_lost_create_left_behind() {
    let mut app = TestApp::spawn_with(options(false, "suspend", 0)).await;
    app.connect_both().await;
    app.fail_next(Some(T1), "POST", "/users", 1000, FaultKind::DropAfter);
    app.start_daemon();
    app.hire(CONTOSO, "stray@contoso.com", "St", "Ray", "Temp");
    wait_for("Graph to apply the create", Duration::from_secs(10), || {
        app.entra(T1, "stray@contoso.com").is_some()
    })
    .await;
    app.stop_daemon().await;
    app.control.clear_faults();
    // The company disconnects (its pending work is dropped) and the person
    // leaves while nothing syncs; then the company connects again.
    entra_daemon::daemon::disconnect(
        &app.settings,
        entra_daemon::domain::CompanyId(CONTOSO),
        "test",
    )
    .expect("disconnect");
    app.start_daemon();
    app.plumm("DELETE FROM users WHERE email = 'stray@contoso.com'");
    app.converged().await;
    app.connect(CONTOSO, T1).await;
    app.converged().await;
    assert!(app.entra(T1, "stray@contoso.com").unwrap().account_enabled);

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .args(["resync", "--company", "1", "--json"])
        .output()
        .await
        .expect("run the binary");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let counts = &report[0]["counts"];
    assert_eq!(counts["unmanaged"], 0, "an account of ours: {report:#}");
    assert_eq!(
        counts["suspend"], 1,
        "the orphan is planned for suspension: {report:#}"
    );
    app.converged().await;
    app.stop_daemon().await;
    let u = app.entra(T1, "stray@contoso.com").expect("account");
    assert!(!u.account_enabled, "the orphan is suspended: {u:#?}");
}

async fn suspension_answer_lost_still_signs_out(delete_row: bool) {
    let mut app = TestApp::spawn_with(options(false, "suspend", 0)).await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "gone@contoso.com", "Go", "Ne", "Porter");
    app.converged().await;
    // Graph applies the suspension; every answer to it is lost.
    app.fail_next(Some(T1), "PATCH", "/users/", 1000, FaultKind::DropAfter);
    if delete_row {
        app.plumm("DELETE FROM users WHERE email = 'gone@contoso.com'");
    } else {
        app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'gone@contoso.com'");
    }
    wait_entra(&app, "the suspension", "gone@contoso.com", |u| {
        u == Some(false)
    })
    .await;
    gave_up(
        &app,
        "the suspension to be given up for now",
        "gone@contoso.com",
        "suspend",
    )
    .await;
    app.control.clear_faults();
    app.converged().await;
    app.stop_daemon().await;
    let u = app.entra(T1, "gone@contoso.com").expect("account");
    assert!(!u.account_enabled);
    assert_eq!(
        u.revoke_sign_in_sessions_count, 1,
        "the read-back shows it disabled, and the sign-out it owes still goes"
    );
}

#[tokio::test]
async fn a_suspension_whose_answer_was_lost_still_signs_the_person_out() {
    suspension_answer_lost_still_signs_out(false).await;
}

#[tokio::test]
async fn a_removal_whose_answer_was_lost_still_signs_the_person_out() {
    suspension_answer_lost_still_signs_out(true).await;
}
