//! Rehire restore (`on_delete = "delete"`): a person rehired within
//! Entra's 30 days gets their soft-deleted account back (same object id,
//! groups and mailbox), not a second one; after the 30 days, a new one.
use std::process::Stdio;
use std::time::Duration;

use entra_daemon::domain::PlummUserId;
use entra_daemon::emulator::FaultKind;

use crate::helpers::*;

async fn app() -> TestApp {
    let app = TestApp::spawn_with(Options {
        on_delete: "delete",
        // The restored account is patched right after: no lag under test.
        replication_delay_ms: 0,
        ..Options::default()
    })
    .await;
    app.connect(CONTOSO, T1).await;
    app
}

/// Hired, synced, then deleted in Plumm and soft-deleted in Entra: the
/// account's object id.
async fn hired_and_left(app: &TestApp) -> String {
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Engineer");
    app.run_once().await;
    let id = app.entra(T1, "ada@contoso.com").expect("created").id;
    app.plumm("DELETE FROM users WHERE email = 'ada@contoso.com'");
    app.run_once().await;
    let ada = app
        .entra(T1, "ada@contoso.com")
        .expect("in the deleted items");
    assert!(ada.deleted, "soft-deleted");
    assert_eq!(app.control.deleted_users(T1).unwrap().len(), 1);
    app.control.clear_requests();
    id
}

fn creates(app: &TestApp) -> usize {
    app.writes()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/v1.0/users")
        .count()
}

fn restores(app: &TestApp) -> usize {
    app.writes()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/restore") && r.status == 200)
        .count()
}

#[tokio::test]
async fn a_rehire_within_the_30_days_gets_the_old_account_back_not_a_second_one() {
    let app = app().await;
    let old = hired_and_left(&app).await;
    // Rehired: a new Plumm row, a new title.
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Principal");
    let report = app.run_once().await;
    assert_eq!(report.parked, 0, "{report:?}");

    let ada = app.entra(T1, "ada@contoso.com").expect("back");
    assert_eq!(ada.id, old, "the same account");
    assert!(ada.account_enabled);
    assert_eq!(
        ada.job_title.as_deref(),
        Some("Principal"),
        "converged after"
    );
    assert_eq!((creates(&app), restores(&app)), (0, 1));
    assert!(app.control.deleted_users(T1).unwrap().is_empty());
    let rows = app.audit_for("ada@contoso.com");
    let restored = rows
        .iter()
        .find(|r| r.action == "restore" && r.outcome == "ok")
        .expect("a restore row");
    let detail = restored.detail.clone().unwrap_or_default();
    assert!(detail.contains(&old), "{detail}");
    let link = app
        .state()
        .link(PlummUserId(app.plumm_id("ada@contoso.com")))
        .unwrap()
        .expect("linked");
    assert_eq!(link.entra_id.0, old);
}

#[tokio::test]
async fn after_the_30_days_the_rehire_gets_a_new_account() {
    let app = TestApp::spawn_with(Options {
        on_delete: "delete",
        replication_delay_ms: 0,
        extra_sync: "replication_timeout = \"300ms\"".into(),
        ..Options::default()
    })
    .await;
    app.connect(CONTOSO, T1).await;
    let old = hired_and_left(&app).await;
    let deleted = std::time::Instant::now();
    // The 30 days run out: Entra deletes the account for good.
    app.control.purge_deleted_user(T1, &old).expect("purged");
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Principal");
    // Deleted moments ago and not in the deleted items: replication, not
    // proof it is gone. No account is made on that guess.
    let first = app.run_once().await;
    assert_eq!((first.deferred, creates(&app)), (1, 0), "{first:?}");
    wait_for(
        "the replication window to pass",
        Duration::from_secs(5),
        || deleted.elapsed() > Duration::from_millis(400),
    )
    .await;
    app.run_once().await;
    let ada = app.entra(T1, "ada@contoso.com").expect("created");
    assert_ne!(ada.id, old);
    assert_eq!((creates(&app), restores(&app)), (1, 0));
    // The lookups that decided it: the account it deleted (twice), then by address.
    let looked: Vec<_> = app
        .graph_calls()
        .into_iter()
        .filter(|r| r.path.starts_with("/v1.0/directory/deletedItems"))
        .map(|r| r.status)
        .collect();
    assert_eq!(
        looked,
        [404, 404, 200, 200],
        "by id, by id, by mail, by UPN"
    );
}

#[tokio::test]
async fn a_restore_whose_upn_another_account_took_is_parked_with_both_object_ids() {
    let app = app().await;
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Engineer");
    app.run_once().await;
    let old = app.entra(T1, "ada@contoso.com").expect("created").id;
    // She leaves for a company that is not connected: her account goes.
    app.plumm(&format!(
        "UPDATE users SET company_id = {UNCONNECTED} WHERE email = 'ada@contoso.com'"
    ));
    app.run_once().await;
    assert_eq!(app.control.deleted_users(T1).unwrap().len(), 1);
    // Someone takes her old address; she comes back under a new one.
    let taken = app.seed(T1, "ada@contoso.com", "Another Ada", None);
    app.plumm(&format!(
        "UPDATE users SET company_id = {CONTOSO}, email = 'ada.lovelace@contoso.com' \
         WHERE email = 'ada@contoso.com'"
    ));
    app.control.clear_requests();
    app.run_once().await;
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1, "{parked:#?}");
    let reason = &parked[0].reason;
    assert!(reason.contains(&old), "{reason}");
    assert!(reason.contains(&taken), "{reason}");
    assert!(reason.contains("userPrincipalName"), "{reason}");
    assert_eq!(creates(&app), 0, "no second account");
    assert_eq!(
        app.control.deleted_users(T1).unwrap().len(),
        1,
        "still restorable"
    );
}

#[tokio::test]
async fn without_the_restore_permission_the_rehire_is_parked_and_no_second_account_made() {
    let app = app().await;
    hired_and_left(&app).await;
    // Reading users (and deleted users) is granted, restoring them is not.
    app.control
        .set_permissions(T1, vec!["User.Read.All".into()])
        .unwrap();
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Principal");
    app.run_once().await;
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert!(
        parked[0].reason.contains("User.DeleteRestore.All"),
        "{}",
        parked[0].reason
    );
    assert_eq!(creates(&app), 0);
    assert_eq!(app.control.deleted_users(T1).unwrap().len(), 1);
}

#[tokio::test]
async fn kill_9_during_a_restore_leaves_one_account_that_converges_after_restart() {
    let mut app = app().await;
    let old = hired_and_left(&app).await;
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Principal");
    let person = PlummUserId(app.plumm_id("ada@contoso.com"));
    // The restore is in flight for a long while: the kill lands inside it.
    app.fail_next(
        Some(T1),
        "POST",
        "/restore",
        1,
        FaultKind::Delay { ms: 1500 },
    );
    let mut child = spawn_daemon_process(&app, Stdio::null());
    // The restore's intent is on disk just before the request leaves.
    let sent = || {
        app.state()
            .open_intents(person)
            .is_ok_and(|i| !i.is_empty())
    };
    wait_for("the restore to be under way", Duration::from_secs(10), sent).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("reaped");

    app.start_daemon();
    app.converged().await;
    app.stop_daemon().await;
    let same: Vec<_> = app
        .users(T1)
        .into_iter()
        .filter(|u| u.user_principal_name == "ada@contoso.com" && !u.deleted)
        .collect();
    assert_eq!(same.len(), 1, "one account: {same:#?}");
    assert_eq!(same[0].id, old);
    assert_eq!(same[0].job_title.as_deref(), Some("Principal"));
    assert!(same[0].account_enabled);
    assert_eq!(creates(&app), 0);
    assert!(app.state().parked(None).unwrap().is_empty());
    assert!(app.state().open_intents(person).unwrap().is_empty());
}

#[tokio::test]
async fn a_person_entered_again_as_inactive_is_not_restored_and_gets_no_second_account() {
    let app = app().await;
    hired_and_left(&app).await;
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role, status)
         VALUES ({CONTOSO}, 'ada@contoso.com', 'Ada', 'Lovelace', 'Engineer', 'inactive')"
    ));
    app.run_once().await;
    assert_eq!((creates(&app), restores(&app)), (0, 0));
    assert_eq!(
        app.control.deleted_users(T1).unwrap().len(),
        1,
        "still deleted"
    );
    let rows = app.audit_for("ada@contoso.com");
    assert!(
        rows.iter().any(|r| r.action == "skip"
            && r.detail
                .as_deref()
                .unwrap_or("")
                .contains("is not restored")),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn an_address_reused_for_someone_else_gets_a_new_account_not_the_former_ones() {
    let app = app().await;
    let old = hired_and_left(&app).await;
    // Within the 30 days, the address goes to another person.
    app.hire(CONTOSO, "ada@contoso.com", "Augusta", "Lovelace", "Analyst");
    let report = app.run_once().await;
    assert_eq!(report.parked, 0, "{report:?}");

    let live: Vec<_> = app
        .control
        .users(T1)
        .into_iter()
        .filter(|u| {
            u.user_principal_name
                .eq_ignore_ascii_case("ada@contoso.com")
                && !u.deleted
        })
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_ne!(live[0].id, old, "a new account, not the former person's");
    assert_eq!((creates(&app), restores(&app)), (1, 0));
    assert_eq!(
        app.control.deleted_users(T1).unwrap().len(),
        1,
        "the former one stays deleted, restorable by an administrator"
    );
    let rows = app.audit_for("ada@contoso.com");
    let kept: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "restore" && r.outcome == "skipped")
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "one row, however many lookups found it: {rows:#?}"
    );
    let detail = kept[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains(&old) && detail.contains("givenName 'Ada', not 'Augusta'"),
        "{detail}"
    );
}

#[tokio::test]
async fn the_same_name_with_another_employee_id_is_someone_else_too() {
    let app = TestApp::spawn_with(Options {
        on_delete: "delete",
        replication_delay_ms: 0,
        extra_toml: "[mapping]\ndisplayName = \"{first_name} {last_name}\"\n\
                     givenName = \"{first_name}\"\nemployeeId = \"{employee_number}\"\n"
            .into(),
        ..Options::default()
    })
    .await;
    app.plumm("ALTER TABLE users ADD COLUMN employee_number TEXT");
    app.connect(CONTOSO, T1).await;
    let hire = |number: &str| {
        app.plumm(&format!(
            "INSERT INTO users (company_id, email, first_name, last_name, role, employee_number)
             VALUES ({CONTOSO}, 'ada@contoso.com', 'Ada', 'Lovelace', 'Engineer', '{number}')"
        ))
    };
    hire("E-1");
    app.run_once().await;
    let old = app.entra(T1, "ada@contoso.com").expect("created").id;
    app.plumm("DELETE FROM users WHERE email = 'ada@contoso.com'");
    app.run_once().await;
    assert_eq!(app.control.deleted_users(T1).unwrap().len(), 1);
    app.control.clear_requests();

    // Another Ada Lovelace, with her own employee number.
    hire("E-2");
    app.run_once().await;
    assert_eq!((creates(&app), restores(&app)), (1, 0));
    assert_eq!(app.control.deleted_users(T1).unwrap().len(), 1);
    let rows = app.audit_for("ada@contoso.com");
    assert!(
        rows.iter().any(|r| r.action == "restore"
            && r.outcome == "skipped"
            && r.detail
                .as_deref()
                .is_some_and(|d| d.contains(&old) && d.contains("employeeId 'E-1', not 'E-2'"))),
        "{rows:#?}"
    );
}
