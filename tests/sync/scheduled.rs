//! Scheduled changes: a pre-hire created disabled `[sync] prehire_lead`
//! ahead of the start date and enabled on it, a leaver suspended on the
//! leave date (`suspend_after_leave`), durable across a restart, shown in
//! `status` and the resync dry run.
use std::time::Duration;

use chrono::{DateTime, Utc};
use entra_daemon::domain::CompanyId;
use entra_daemon::store::AuditFilter;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(15);

async fn app_with(sync: &str) -> TestApp {
    let app = TestApp::spawn_with(Options {
        replication_delay_ms: 0,
        extra_sync: format!("schedule_check_interval = \"100ms\"\n{sync}"),
        ..Options::default()
    })
    .await;
    app.plumm(
        "ALTER TABLE users ADD COLUMN start_date TEXT; ALTER TABLE users ADD COLUMN end_date TEXT;",
    );
    app.connect(CONTOSO, T1).await;
    app
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A whole second ahead, so the date Plumm holds is exactly the due time.
fn ahead(secs: i64) -> DateTime<Utc> {
    let t = Utc::now() + chrono::Duration::seconds(secs + 1);
    DateTime::from_timestamp(t.timestamp(), 0).expect("a time")
}

fn hire_dated(app: &TestApp, email: &str, column: &str, at: DateTime<Utc>) {
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, {column})
         VALUES ({CONTOSO}, '{email}', 'New', 'Person', '{}')",
        rfc3339(at)
    ));
}

fn enabled(app: &TestApp, email: &str) -> Option<bool> {
    app.entra(T1, email).map(|u| u.account_enabled)
}

fn actions(app: &TestApp, email: &str) -> Vec<String> {
    app.audit_for(email)
        .iter()
        .filter(|r| r.outcome == "ok")
        .map(|r| r.action.clone())
        .collect()
}

/// A daemon with a one-hour pre-hire lead and a hire starting in two
/// seconds, once their account exists; and the start date.
async fn prehire_created(email: &str) -> (TestApp, DateTime<Utc>) {
    let mut app = app_with("prehire_lead = \"1h\"").await;
    let start = ahead(2);
    hire_dated(&app, email, "start_date", start);
    app.start_daemon();
    wait_for("the pre-hire's account", WAIT, || {
        enabled(&app, email).is_some()
    })
    .await;
    (app, start)
}

#[tokio::test]
async fn a_prehire_is_created_disabled_and_enabled_on_the_start_date() {
    let (mut app, start) = prehire_created("pre@contoso.com").await;
    assert_eq!(enabled(&app, "pre@contoso.com"), Some(false));
    let create = app
        .writes()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("the create");
    assert_eq!(body(&create)["accountEnabled"], false);
    assert!(Utc::now() < start, "the test machine was too slow to check");
    let scheduled = app.state().scheduled_for(CompanyId(CONTOSO)).unwrap();
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    assert_eq!(scheduled[0].kind, "enable");

    wait_for("the account enabled", WAIT, || {
        enabled(&app, "pre@contoso.com") == Some(true)
    })
    .await;
    assert!(Utc::now() >= start, "enabled before the start date");
    app.stop_daemon().await;
    let patches: Vec<_> = app
        .writes()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:#?}");
    assert_eq!(
        body(&patches[0]),
        serde_json::json!({"accountEnabled": true})
    );
    assert_eq!(actions(&app, "pre@contoso.com"), ["create", "reactivate"]);
    assert!(app
        .state()
        .scheduled_for(CompanyId(CONTOSO))
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_scheduled_enable_survives_a_restart() {
    let (mut app, start) = prehire_created("kept@contoso.com").await;
    app.stop_daemon().await;
    assert_eq!(enabled(&app, "kept@contoso.com"), Some(false));
    // Stopped across the start date: only the state database remembers.
    wait_for("the start date to pass", WAIT, || Utc::now() > start).await;
    assert_eq!(enabled(&app, "kept@contoso.com"), Some(false));
    app.start_daemon();
    wait_for("the account enabled after the restart", WAIT, || {
        enabled(&app, "kept@contoso.com") == Some(true)
    })
    .await;
    app.stop_daemon().await;
    assert_eq!(actions(&app, "kept@contoso.com"), ["create", "reactivate"]);
}

#[tokio::test]
async fn beyond_the_lead_nobody_is_created_and_status_and_the_dry_run_show_what_is_due() {
    let app = app_with("prehire_lead = \"2s\"").await;
    let start = ahead(3600);
    hire_dated(&app, "later@contoso.com", "start_date", start);
    let report = app.run_once().await;
    assert_eq!(report.parked, 0, "{report:?}");
    assert!(app.entra(T1, "later@contoso.com").is_none());
    assert!(app.writes().is_empty(), "{:#?}", app.writes());
    let skip = app
        .audit(AuditFilter::default())
        .into_iter()
        .find(|r| r.action == "skip" && r.email.as_deref() == Some("later@contoso.com"))
        .expect("the skip audited");
    let detail = skip.detail.unwrap_or_default();
    let create_at = rfc3339(start - chrono::Duration::seconds(2));
    assert!(
        detail.contains(&format!("created at {create_at}")),
        "{detail}"
    );

    let out = cli(&app, &["status", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let company = &status["companies"][0];
    assert_eq!(company["scheduled"], 2, "{status}");
    assert!(
        company["next_scheduled_at"]
            .as_str()
            .is_some_and(|t| t.starts_with(&create_at[..19])),
        "{status}"
    );
    let out = cli(&app, &["status"]).await;
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        table.contains(&format!(
            "2 scheduled changes, next at {}",
            &create_at[..19]
        )),
        "{table}"
    );

    let out = cli(&app, &["resync", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0));
    let plan = String::from_utf8_lossy(&out.stdout).to_string();
    let id = app.plumm_id("later@contoso.com");
    for (kind, at) in [("create", &create_at), ("enable", &rfc3339(start))] {
        let line = format!("scheduled  {kind:<8} user {id} at {}", &at[..19]);
        assert!(plan.contains(&line), "{line} in\n{plan}");
    }
    assert!(!plan.contains("create 1"), "{plan}");
    assert!(app.writes().is_empty());
}

#[tokio::test]
async fn suspend_after_leave_suspends_on_the_leave_date_while_plumm_says_active() {
    let mut app = app_with("suspend_after_leave = true").await;
    let leave = ahead(2);
    hire_dated(&app, "leaver@contoso.com", "end_date", leave);
    app.start_daemon();
    wait_for("the account", WAIT, || {
        enabled(&app, "leaver@contoso.com") == Some(true)
    })
    .await;
    wait_for("the suspension on the leave date", WAIT, || {
        enabled(&app, "leaver@contoso.com") == Some(false)
    })
    .await;
    assert!(Utc::now() >= leave, "suspended before the leave date");
    app.stop_daemon().await;
    assert_eq!(
        actions(&app, "leaver@contoso.com"),
        ["create", "suspend", "revoke"]
    );
    let revokes = app
        .writes()
        .into_iter()
        .filter(|r| r.path.ends_with("revokeSignInSessions"))
        .count();
    assert_eq!(revokes, 1);
}

#[tokio::test]
async fn a_refused_leave_date_is_left_out_of_later_changes_until_the_company_connects_again() {
    let app = TestApp::spawn_with(Options {
        replication_delay_ms: 0,
        extra_toml: "[mapping]\ndisplayName = \"{first_name} {last_name}\"\n\
                     jobTitle = \"{role}\"\nemployeeLeaveDateTime = \"{end_date}\"\n"
            .into(),
        ..Options::default()
    })
    .await;
    app.plumm("ALTER TABLE users ADD COLUMN end_date TEXT");
    app.connect(CONTOSO, T1).await;
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, end_date)
         VALUES ({CONTOSO}, 'ada@contoso.com', 'Ada', 'L', '2026-01-31')"
    ));
    app.run_once().await;
    assert_eq!(app.writes().len(), 2, "refused once, then created without");
    let before = app.writes().len();
    app.plumm("UPDATE users SET role = 'Engineer' WHERE email = 'ada@contoso.com'");
    app.run_once().await;
    let later = app.writes()[before..].to_vec();
    assert_eq!(later.len(), 1, "no refused write first: {later:#?}");
    assert_eq!(later[0].status, 204);
    assert_eq!(body(&later[0]), serde_json::json!({"jobTitle": "Engineer"}));
}

#[tokio::test]
async fn a_leaver_whose_row_entra_would_refuse_is_still_suspended_on_the_leave_date() {
    let mut app = app_with("suspend_after_leave = true").await;
    let leave = ahead(2);
    hire_dated(&app, "leaver@contoso.com", "end_date", leave);
    app.start_daemon();
    wait_for("the account", WAIT, || {
        enabled(&app, "leaver@contoso.com") == Some(true)
    })
    .await;
    // A value Entra would refuse arrives before the leave date.
    app.plumm("UPDATE users SET country = 'UK' WHERE email = 'leaver@contoso.com'");
    wait_for("the suspension on the leave date", WAIT, || {
        enabled(&app, "leaver@contoso.com") == Some(false)
    })
    .await;
    app.stop_daemon().await;
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1, "the profile waits, parked: {parked:#?}");
}

#[tokio::test]
async fn a_start_date_that_does_not_read_parks_the_person_and_creates_nothing() {
    let app = app_with("prehire_lead = \"14d\"").await;
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, start_date)
         VALUES ({CONTOSO}, 'newbie@contoso.com', 'New', 'Person', '01/03/2027')"
    ));
    app.run_once().await;
    assert!(
        app.entra(T1, "newbie@contoso.com").is_none(),
        "no account on a guess"
    );
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains("start_date '01/03/2027'"),
        "{}",
        parked[0].reason
    );
}

#[tokio::test]
async fn a_resync_schedules_the_leave_dates_of_people_synced_before_the_setting_was_on() {
    let app = app_with("suspend_after_leave = false").await;
    hire_dated(&app, "leaver@contoso.com", "end_date", ahead(3_600));
    app.run_once().await;
    let company = entra_daemon::domain::CompanyId(CONTOSO);
    assert!(app.state().scheduled_for(company).unwrap().is_empty());
    let text = app
        .config_text()
        .replace("suspend_after_leave = false", "suspend_after_leave = true");
    app.write_config(&text);
    let out = cli(&app, &["resync"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scheduled = app.state().scheduled_for(company).unwrap();
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    assert_eq!(scheduled[0].kind, "suspend");
}
