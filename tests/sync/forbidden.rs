//! A 403 on a write is about the account (an administrator) or about the
//! app (an admin removed its write permission): Graph says the same for
//! both, and a token keeps its roles until it expires. The daemon asks the
//! tenant before deciding, and never records a refused suspension as done.
use std::time::Duration;

use entra_daemon::domain::CompanyId;
use entra_daemon::emulator::SeedUser;

use crate::helpers::*;

fn options() -> Options {
    Options {
        extra_sync: "quarantine_probe_first = \"100ms\"\nquarantine_probe_max = \"400ms\"".into(),
        ..Options::default()
    }
}

/// PATCHes with an empty body: the daemon's checks of its write access.
fn write_checks(app: &TestApp) -> usize {
    app.writes()
        .iter()
        .filter(|r| r.method == "PATCH" && body(r) == serde_json::json!({}))
        .count()
}

#[tokio::test]
async fn a_removed_write_permission_quarantines_the_tenant_instead_of_parking_its_people() {
    let mut app = TestApp::spawn_with(options()).await;
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "ann@contoso.com", "Ann", "Early", "Staff");
    app.hire(CONTOSO, "leaver@contoso.com", "Lee", "Ver", "Staff");
    app.converged().await;

    // The admin leaves the app read access only; once the daemon's token
    // runs out, the next one carries no write role.
    app.control
        .set_permissions(T1, vec!["User.Read.All".into()])
        .unwrap();
    app.control.expire_tokens(T1);
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'leaver@contoso.com'");
    wait_for("Contoso to be quarantined", Duration::from_secs(10), || {
        !app.state().quarantined().unwrap().is_empty()
    })
    .await;
    let q = app.state().quarantined().unwrap();
    assert!(q[0].reason.contains("write permission"), "{}", q[0].reason);
    assert!(
        app.state().parked(None).unwrap().is_empty(),
        "nobody parked"
    );
    assert!(
        app.entra(T1, "leaver@contoso.com").unwrap().account_enabled,
        "refused, and not recorded as done"
    );
    assert!(
        app.state().pending_summary(CompanyId(CONTOSO)).unwrap().0 >= 1,
        "held, not lost"
    );
    assert!(write_checks(&app) >= 1, "the tenant was asked first");
    // A hire meanwhile waits too (a create's 403 can only be the app's).
    app.hire(CONTOSO, "new@contoso.com", "New", "Hire", "Staff");
    wait_for("the hire to be held", Duration::from_secs(5), || {
        app.state().pending_summary(CompanyId(CONTOSO)).unwrap().0 >= 2
    })
    .await;

    // The probe lifts the quarantine only once a write passes again.
    app.control
        .set_permissions(T1, vec!["User.ReadWrite.All".into()])
        .unwrap();
    app.converged().await;
    assert!(app.state().quarantined().unwrap().is_empty());
    assert!(!app.entra(T1, "leaver@contoso.com").unwrap().account_enabled);
    assert!(app.entra(T1, "new@contoso.com").is_some());
    app.stop_daemon().await;
}

#[tokio::test]
async fn an_administrators_403_parks_that_account_only_after_the_tenant_says_writes_pass() {
    let mut app = TestApp::spawn_with(options()).await;
    app.control
        .seed_user(
            T1,
            SeedUser {
                user_principal_name: "boss@contoso.com".into(),
                mail: Some("boss@contoso.com".into()),
                display_name: Some("The Boss".into()),
                privileged: true,
                ..Default::default()
            },
        )
        .unwrap();
    app.connect_both().await;
    app.start_daemon();
    app.hire(CONTOSO, "ann@contoso.com", "Ann", "Early", "Staff");
    app.converged().await;
    app.hire(
        CONTOSO,
        "boss@contoso.com",
        "The",
        "Boss",
        "Chief Executive",
    );
    app.converged().await;

    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert_eq!(parked[0].email, "boss@contoso.com");
    assert!(
        parked[0].reason.contains("administrator")
            && parked[0].reason.contains("went through just now"),
        "{}",
        parked[0].reason
    );
    assert!(app.state().quarantined().unwrap().is_empty());
    // Asked again while Ann's new account was still replicating.
    assert!(write_checks(&app) >= 1, "a write to Ann's account");
    // Ann's account was asked, and is as it was.
    let ann = app.entra(T1, "ann@contoso.com").unwrap();
    assert!(ann.account_enabled);
    app.stop_daemon().await;
}
