//! The whole person: Plumm's table as it is (any column, discovered at
//! start and reload), template fallbacks, and the employee data.
use std::sync::Arc;
use std::time::Duration;

use entra_daemon::daemon;
use tokio::sync::watch;

use crate::helpers::*;

fn with_mapping(mapping: &str) -> Options {
    Options {
        extra_toml: format!("[mapping]\n{mapping}\n"),
        ..Options::default()
    }
}

fn hire_numbered(app: &TestApp, email: &str, number: &str, country: &str) {
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role, country, employee_number)
         VALUES ({CONTOSO}, '{email}', 'Ada', 'Lovelace', 'Engineer', {country}, '{number}')"
    ));
}

#[tokio::test]
async fn a_column_beyond_the_contract_reaches_entra_and_a_fallback_fills_a_blank() {
    let app = TestApp::spawn_with(with_mapping(
        "displayName = \"{first_name} {last_name}\"\nemployeeId = \"{employee_number}\"\n\
         usageLocation = \"{country|GB}\"",
    ))
    .await;
    app.plumm("ALTER TABLE users ADD COLUMN employee_number TEXT");
    app.connect(CONTOSO, T1).await;
    hire_numbered(&app, "ada@contoso.com", "E-1001", "NULL");
    hire_numbered(&app, "bo@contoso.com", "E-1002", "'fr'");
    app.run_once().await;

    let ada = app.entra(T1, "ada@contoso.com").expect("ada created");
    assert_eq!(ada.employee_id.as_deref(), Some("E-1001"));
    assert_eq!(ada.usage_location.as_deref(), Some("GB"), "the fallback");
    let bo = app.entra(T1, "bo@contoso.com").expect("bo created");
    assert_eq!(
        bo.usage_location.as_deref(),
        Some("FR"),
        "Plumm's own value"
    );
    let create = app
        .writes()
        .into_iter()
        .find(|r| r.method == "POST" && body(r)["mail"] == "ada@contoso.com")
        .expect("ada's create");
    assert_eq!(body(&create)["employeeId"], "E-1001");
}

#[tokio::test]
async fn a_mapping_over_a_column_plumm_lacks_is_refused_at_start_listing_those_it_has() {
    let app = TestApp::spawn_with(with_mapping(
        "displayName = \"{first_name}\"\nemployeeId = \"{employee_no}\"",
    ))
    .await;
    app.plumm("ALTER TABLE users ADD COLUMN employee_number TEXT");
    app.connect(CONTOSO, T1).await;
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Engineer");
    let (_tx, rx) = watch::channel(false);
    let err = daemon::run_once(daemon::Run::new(app.settings.clone(), rx))
        .await
        .expect_err("refused at start")
        .to_string();
    assert!(err.contains("{employee_no}"), "{err}");
    assert!(err.contains("first_name"), "{err}");
    assert!(err.contains("employee_number"), "{err}");
    assert!(app.writes().is_empty(), "nothing was written");
}

#[tokio::test]
async fn a_column_plumm_adds_while_the_daemon_runs_is_picked_up_on_reload() {
    let app = TestApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    let (policy_tx, policy_rx) = watch::channel(Arc::new(app.settings.policy.clone()));
    let (stop, stop_rx) = watch::channel(false);
    let mut run = daemon::Run::new(app.settings.clone(), stop_rx);
    run.policy = Some(policy_rx);
    let daemon = tokio::spawn(daemon::run(run));
    app.hire(CONTOSO, "ada@contoso.com", "Ada", "Lovelace", "Engineer");
    let created = || app.entra(T1, "ada@contoso.com").is_some();
    wait_for("ada created", Duration::from_secs(10), created).await;

    let config = format!(
        "{}\n[mapping]\ndisplayName = \"{{first_name}} {{last_name}}\"\nmobilePhone = \"{{phone}}\"\n",
        app.config_text()
    );
    app.write_config(&config);
    let err = daemon::service::reload(&app.config_path, &app.settings)
        .expect_err("no phone column yet")
        .to_string();
    assert!(err.contains("{phone}") && err.contains("country"), "{err}");

    app.plumm("ALTER TABLE users ADD COLUMN phone TEXT");
    let (policy, _) = daemon::service::reload(&app.config_path, &app.settings).expect("reload");
    policy_tx.send_replace(Arc::new(policy));
    app.plumm("UPDATE users SET phone = '+44 20 7946 0958' WHERE email = 'ada@contoso.com'");
    let phoned = || {
        app.entra(T1, "ada@contoso.com")
            .and_then(|u| u.mobile_phone)
            .as_deref()
            == Some("+44 20 7946 0958")
    };
    wait_for("ada's phone in Entra", Duration::from_secs(10), phoned).await;
    let conn = rusqlite::Connection::open(&app.settings.plumm.database).expect("plumm");
    let trigger: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'entra_outbox_users_delete'",
            [],
            |r| r.get(0),
        )
        .expect("trigger");
    assert!(
        trigger.contains("'phone'"),
        "the snapshot carries it: {trigger}"
    );
    stop.send(true).expect("stop");
    daemon.await.expect("join").expect("daemon");
}

#[tokio::test]
async fn the_default_mapping_sends_given_name_and_surname_on_create() {
    let app = TestApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    app.hire(CONTOSO, "grace@contoso.com", "Grace", "Hopper", "Admiral");
    app.run_once().await;
    let create = app
        .writes()
        .into_iter()
        .find(|r| r.method == "POST" && body(r)["mail"] == "grace@contoso.com")
        .expect("grace's create");
    assert_eq!(body(&create)["givenName"], "Grace");
    assert_eq!(body(&create)["surname"], "Hopper");
    let grace = app.entra(T1, "grace@contoso.com").expect("created");
    assert_eq!(grace.given_name.as_deref(), Some("Grace"));
    assert_eq!(grace.surname.as_deref(), Some("Hopper"));
}
