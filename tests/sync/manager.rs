//! Managers: `[mapping] manager = "{manager_id}"` names another Plumm
//! person; the daemon sets it with one `PUT manager/$ref`, removes it with
//! one `DELETE` when Plumm clears it, sets it as soon as a manager without
//! an account gets one, and refuses what Entra cannot hold with a reason.
use std::time::Duration;

use entra_daemon::store::AuditFilter;

use crate::helpers::*;

const MAPPING: &str =
    "[mapping]\ndisplayName = \"{first_name} {last_name}\"\nmanager = \"{manager_id}\"\n";

async fn app() -> TestApp {
    let app = TestApp::spawn_with(Options {
        extra_toml: MAPPING.into(),
        ..Options::default()
    })
    .await;
    app.plumm("ALTER TABLE users ADD COLUMN manager_id INTEGER");
    app.connect(CONTOSO, T1).await;
    app
}

/// Plumm rows `(id, email, manager_id)` of one company, in one transaction.
fn hire_all(app: &TestApp, company: i64, people: &[(i64, &str, Option<i64>)]) {
    let rows: Vec<String> = people
        .iter()
        .map(|(id, email, m)| {
            let m = m.map_or("NULL".to_string(), |m| m.to_string());
            format!("({id}, {company}, '{email}', 'P', '{id}', {m})")
        })
        .collect();
    app.plumm(&format!(
        "INSERT INTO users (id, company_id, email, first_name, last_name, manager_id) VALUES {}",
        rows.join(", ")
    ));
}

fn id_of(app: &TestApp, tenant: &str, upn: &str) -> String {
    app.entra(tenant, upn).expect(upn).id
}

fn manager_in_entra(app: &TestApp, upn: &str) -> Option<String> {
    let user = app.entra(T1, upn)?;
    app.control.manager_of(T1, &user.id).expect("manager")
}

/// The writes Graph accepted for one account: its create and the requests
/// on its path. (A reference to an account too new to be visible is
/// answered 404 and retried, as Graph's replication has it: not a write.)
fn writes_for(app: &TestApp, upn: &str) -> Vec<(String, String)> {
    let id = app.entra(T1, upn).map(|u| u.id).unwrap_or_default();
    app.writes()
        .into_iter()
        .filter(|r| r.status < 300)
        .filter(|r| body(r)["userPrincipalName"] == upn || r.path.contains(&id))
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect()
}

#[tokio::test]
async fn a_manager_and_their_report_hired_together_are_linked_in_either_order() {
    let mut app = app().await;
    app.start_daemon();
    // Team one: the report's row comes first; team two: the manager's.
    hire_all(
        &app,
        CONTOSO,
        &[
            (11, "rep1@contoso.com", Some(10)),
            (10, "boss1@contoso.com", None),
            (20, "boss2@contoso.com", None),
            (21, "rep2@contoso.com", Some(20)),
        ],
    );
    let set = || {
        manager_in_entra(&app, "rep1@contoso.com").is_some()
            && manager_in_entra(&app, "rep2@contoso.com").is_some()
    };
    wait_for("both reports' managers set", Duration::from_secs(15), set).await;
    app.stop_daemon().await;
    for (report, boss) in [
        ("rep1@contoso.com", "boss1@contoso.com"),
        ("rep2@contoso.com", "boss2@contoso.com"),
    ] {
        assert_eq!(
            manager_in_entra(&app, report),
            Some(id_of(&app, T1, boss)),
            "{report}"
        );
        // A create with a manager is two writes: the POST and the PUT.
        let writes = writes_for(&app, report);
        let puts = writes.iter().filter(|(m, _)| m == "PUT").count();
        assert_eq!((writes.len(), puts), (2, 1), "{report}: {writes:#?}");
        let ok = app
            .audit_for(report)
            .into_iter()
            .filter(|r| r.action == "manager" && r.outcome == "ok")
            .count();
        assert_eq!(ok, 1, "{report}");
    }
    let put = app
        .writes()
        .into_iter()
        .find(|r| r.method == "PUT" && r.status == 204)
        .expect("a PUT");
    assert!(put.path.ends_with("/manager/$ref"), "{}", put.path);
    assert!(body(&put)["@odata.id"]
        .as_str()
        .is_some_and(|s| s.starts_with("https://graph.microsoft.com/v1.0/users/")));
}

#[tokio::test]
async fn a_manager_who_was_parked_is_set_on_the_report_as_soon_as_they_converge() {
    let mut app = app().await;
    app.start_daemon();
    // The manager's email is one Entra refuses: parked.
    hire_all(
        &app,
        CONTOSO,
        &[
            (30, "bad boss@contoso.com", None),
            (31, "rep@contoso.com", Some(30)),
        ],
    );
    let created = || app.entra(T1, "rep@contoso.com").is_some();
    wait_for("the report created", Duration::from_secs(10), created).await;
    let waited = || {
        app.audit_for("rep@contoso.com")
            .iter()
            .any(|r| r.action == "manager" && r.outcome == "skipped")
    };
    wait_for(
        "the report waits for its manager",
        Duration::from_secs(10),
        waited,
    )
    .await;
    let waiting = app.audit_for("rep@contoso.com");
    let row = waiting.iter().find(|r| r.action == "manager").expect("row");
    let detail = row.detail.clone().unwrap_or_default();
    assert!(detail.contains("no Entra account yet"), "{detail}");

    app.plumm("UPDATE users SET email = 'boss@contoso.com' WHERE id = 30");
    let set = || manager_in_entra(&app, "rep@contoso.com").is_some();
    wait_for(
        "the manager set once they converged",
        Duration::from_secs(10),
        set,
    )
    .await;
    app.stop_daemon().await;
    assert_eq!(
        manager_in_entra(&app, "rep@contoso.com"),
        Some(id_of(&app, T1, "boss@contoso.com"))
    );
}

#[tokio::test]
async fn a_manager_change_is_one_write_and_clearing_it_in_plumm_removes_it_in_entra() {
    let app = app().await;
    hire_all(
        &app,
        CONTOSO,
        &[
            (40, "a@contoso.com", None),
            (41, "b@contoso.com", None),
            (42, "rep@contoso.com", Some(40)),
        ],
    );
    // Two runs: the report may have converged before its manager in the first.
    app.run_once().await;
    app.run_once().await;
    assert_eq!(
        manager_in_entra(&app, "rep@contoso.com"),
        Some(id_of(&app, T1, "a@contoso.com"))
    );

    let before = app.writes().len();
    app.plumm("UPDATE users SET manager_id = 41 WHERE id = 42");
    app.run_once().await;
    let changed = app.writes()[before..].to_vec();
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0].method, "PUT");
    assert_eq!(
        manager_in_entra(&app, "rep@contoso.com"),
        Some(id_of(&app, T1, "b@contoso.com"))
    );

    let before = app.writes().len();
    app.plumm("UPDATE users SET manager_id = NULL WHERE id = 42");
    app.run_once().await;
    let cleared = app.writes()[before..].to_vec();
    assert_eq!(cleared.len(), 1, "{cleared:#?}");
    assert_eq!(cleared[0].method, "DELETE");
    assert!(cleared[0].path.ends_with("/manager/$ref"));
    assert_eq!(manager_in_entra(&app, "rep@contoso.com"), None);

    // Nothing changed: nothing written.
    let before = app.writes().len();
    app.plumm("UPDATE users SET updated_at = 'later' WHERE id = 42");
    app.run_once().await;
    assert_eq!(app.writes().len(), before);
}

#[tokio::test]
async fn a_cycle_a_self_reference_and_another_companys_manager_are_refused_with_a_reason() {
    let app = app().await;
    app.connect(FABRIKAM, T2).await;
    hire_all(&app, FABRIKAM, &[(60, "far@fabrikam.com", None)]);
    hire_all(
        &app,
        CONTOSO,
        &[
            (50, "ann@contoso.com", Some(51)),
            (51, "bob@contoso.com", Some(50)),
            (52, "me@contoso.com", Some(52)),
            (53, "away@contoso.com", Some(60)),
            (54, "ghost@contoso.com", Some(99)),
        ],
    );
    app.run_once().await;
    let refused = [
        ("ann@contoso.com", "cycle of managers"),
        ("bob@contoso.com", "cycle of managers"),
        ("me@contoso.com", "their own manager"),
        ("away@contoso.com", "of company 2"),
        ("ghost@contoso.com", "does not exist"),
    ];
    for (email, why) in refused {
        // The account and its other properties converged all the same.
        assert!(app.entra(T1, email).is_some(), "{email} created");
        let rows = app.audit_for(email);
        let row = rows
            .iter()
            .find(|r| r.action == "manager" && r.outcome == "parked")
            .unwrap_or_else(|| panic!("{email}: {rows:#?}"));
        let detail = row.detail.clone().unwrap_or_default();
        assert!(detail.contains(why), "{email}: {detail}");
        assert!(detail.contains("manager_id (Entra manager)"), "{detail}");
        assert_eq!(manager_in_entra(&app, email), None);
    }
    assert!(
        app.writes().iter().all(|r| r.method != "PUT"),
        "no manager was written"
    );
    let manager_rows = app.audit(AuditFilter::default());
    let manager_rows: Vec<_> = manager_rows
        .iter()
        .filter(|r| r.action == "manager")
        .collect();
    assert_eq!(manager_rows.len(), 5, "one reason each: {manager_rows:#?}");
}

async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .args(args)
        .output()
        .await
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test]
async fn a_resync_sees_a_manager_changed_in_entra_in_its_one_listing_and_puts_it_back() {
    let app = app().await;
    hire_all(
        &app,
        CONTOSO,
        &[
            (70, "boss@contoso.com", None),
            (71, "other@contoso.com", None),
            (72, "rep@contoso.com", Some(70)),
        ],
    );
    app.run_once().await;
    app.run_once().await;
    let (boss, other) = (
        id_of(&app, T1, "boss@contoso.com"),
        id_of(&app, T1, "other@contoso.com"),
    );
    assert_eq!(
        manager_in_entra(&app, "rep@contoso.com"),
        Some(boss.clone())
    );
    let rep = id_of(&app, T1, "rep@contoso.com");
    app.control.set_manager(T1, &rep, &other).expect("by hand");
    // The drift, and the resync, come long after the creates: Entra has
    // replicated them.
    app.control.replicate_now();
    app.control.clear_requests();

    let out = cli(&app, &["resync", "--company", "1", "--dry-run"]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("manager: \"{other}\" -> \"{boss}\"")),
        "{table}"
    );
    let reads: Vec<_> = app.graph_calls();
    assert_eq!(reads.len(), 1, "one listing: {reads:#?}");
    let query = reads[0].query.clone().unwrap_or_default();
    assert!(query.contains("$expand=manager"), "{query}");
    assert!(app.writes().is_empty());

    cli(&app, &["resync", "--company", "1"]).await;
    app.run_once().await;
    assert_eq!(manager_in_entra(&app, "rep@contoso.com"), Some(boss));
    let writes = app.writes();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0].method, "PUT");
}
