//! The mass-deprovision brake on a full resync: a mass offboarding is held
//! whole, `status` names it, and a release applies it.
use crate::helpers::*;
use crate::resync::{live, start, stop, text, LONG};

#[tokio::test]
async fn the_brake_holds_a_mass_offboarding_whole_and_a_release_applies_it() {
    let app = TestApp::spawn().await;
    for i in 0..12 {
        app.hire(
            CONTOSO,
            &format!("p{i}@contoso.com"),
            "P",
            &format!("N{i}"),
            "Eng",
        );
    }
    for i in 0..5 {
        app.hire(
            FABRIKAM,
            &format!("f{i}@fabrikam.com"),
            "F",
            &format!("N{i}"),
            "Eng",
        );
    }
    app.connect_both().await;
    let daemon = start(&app);
    app.converged().await;
    // The offboarding, and the resync, come long after the creates: Entra
    // has replicated them.
    app.control.replicate_now();
    app.control.clear_requests();

    // An HR export gone wrong: ten of twelve at once.
    app.plumm("UPDATE users SET status = 'inactive' WHERE company_id = 1 AND id <= 10");
    // One offboarding in a five-person company is never held.
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'f0@fabrikam.com'");
    wait_for("the small offboarding", LONG, || {
        live(&app, T2, "f0@fabrikam.com").is_some_and(|u| !u.account_enabled)
    })
    .await;
    let state = app.state();
    wait_for("all ten suspensions to be held", LONG, || {
        app.audit(Default::default())
            .iter()
            .filter(|r| r.action == "suspend" && r.outcome == "skipped")
            .count()
            == 10
    })
    .await;
    assert!(
        app.users(T1).iter().all(|u| u.account_enabled),
        "none of the burst was applied"
    );
    let held = state.held_brakes().unwrap();
    assert_eq!(held.len(), 1, "{held:#?}");
    assert_eq!((held[0].company, held[0].held_count), (CONTOSO, Some(10)));
    assert!(held[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("max_deprovision_count"));

    // A resync without the flag keeps holding and says so (exit 2).
    let out = cli(&app, &["resync", "--company", "1", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("BRAKE"), "{}", text(&out.stdout));

    let out = cli(
        &app,
        &["resync", "--company", "1", "--allow-mass-deprovision"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_for("the released suspensions", LONG, || {
        app.users(T1).iter().filter(|u| !u.account_enabled).count() == 10
    })
    .await;
    assert!(state.held_brakes().unwrap().is_empty());
    let audit = app.audit(Default::default());
    assert!(audit
        .iter()
        .any(|r| r.action == "brake" && r.outcome == "ok"));
    stop(daemon).await;
}
