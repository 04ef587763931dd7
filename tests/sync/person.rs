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

#[tokio::test]
async fn an_employee_id_longer_than_entra_allows_parks_the_person_naming_the_field() {
    let app = TestApp::spawn_with(with_mapping(
        "displayName = \"{first_name} {last_name}\"\nemployeeId = \"{employee_number}\"",
    ))
    .await;
    app.plumm("ALTER TABLE users ADD COLUMN employee_number TEXT");
    app.connect(CONTOSO, T1).await;
    hire_numbered(&app, "long@contoso.com", "EMP-2024-000000017", "'GB'");
    let report = app.run_once().await;
    assert_eq!(report.parked, 1, "{report:?}");
    assert!(app.entra(T1, "long@contoso.com").is_none());
    assert!(app.writes().is_empty(), "nothing reached Graph");
    let parked = app.state().parked(None).expect("parked");
    assert_eq!(parked.len(), 1);
    let reason = &parked[0].reason;
    assert!(
        reason.contains("employee_number (Entra employeeId)"),
        "{reason}"
    );
    assert!(reason.contains("16 characters"), "{reason}");

    // Shortened in Plumm: it goes through.
    app.plumm("UPDATE users SET employee_number = 'E-17' WHERE email = 'long@contoso.com'");
    app.run_once().await;
    let u = app
        .entra(T1, "long@contoso.com")
        .expect("created once fixed");
    assert_eq!(u.employee_id.as_deref(), Some("E-17"));
}

#[tokio::test]
async fn employee_data_reaches_entra_and_a_malformed_phone_parks_naming_the_field() {
    // Graph's replication lag is not under test here: the PATCH right
    // after the create is answered at once.
    let app = TestApp::spawn_with(Options {
        replication_delay_ms: 0,
        ..with_mapping(
        "displayName = \"{first_name} {last_name}\"\nemployeeType = \"{contract|Employee}\"\n\
         companyName = \"Contoso Ltd\"\nmobilePhone = \"{phone}\"\nbusinessPhones = \"{desk_phone}\"",
        )
    })
    .await;
    app.plumm(
        "ALTER TABLE users ADD COLUMN contract TEXT; ALTER TABLE users ADD COLUMN phone TEXT;
         ALTER TABLE users ADD COLUMN desk_phone TEXT;",
    );
    app.connect(CONTOSO, T1).await;
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, phone, desk_phone) VALUES
         ({CONTOSO}, 'ada@contoso.com', 'Ada', 'Lovelace', '+44 7700 900123', '+44 20 7946 0958'),
         ({CONTOSO}, 'bo@contoso.com', 'Bo', 'Peep', 'n/a', NULL)"
    ));
    let report = app.run_once().await;
    assert_eq!(report.parked, 1, "{report:?}");
    let ada = app.entra(T1, "ada@contoso.com").expect("ada created");
    assert_eq!(ada.mobile_phone.as_deref(), Some("+44 7700 900123"));
    assert_eq!(ada.business_phones, ["+44 20 7946 0958"]);
    assert_eq!(ada.other_properties["employeeType"], "Employee");
    assert_eq!(ada.other_properties["companyName"], "Contoso Ltd");
    assert!(app.entra(T1, "bo@contoso.com").is_none());
    let parked = app.state().parked(None).expect("parked");
    assert!(
        parked[0].reason.contains("phone (Entra mobilePhone) 'n/a'"),
        "{}",
        parked[0].reason
    );

    // A new desk number is one PATCH carrying the one-number collection.
    let before = app.writes().len();
    app.plumm("UPDATE users SET desk_phone = '+44 20 7946 0000' WHERE email = 'ada@contoso.com'");
    app.run_once().await;
    let accepted = app.writes()[before..].to_vec();
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    assert_eq!(
        (accepted[0].method.as_str(), accepted[0].status),
        ("PATCH", 204)
    );
    assert_eq!(
        body(&accepted[0]),
        serde_json::json!({ "businessPhones": ["+44 20 7946 0000"] })
    );
    let ada = app.entra(T1, "ada@contoso.com").expect("ada");
    assert_eq!(ada.business_phones, ["+44 20 7946 0000"]);

    // A full resync reads the phones back as Graph lists them: no drift.
    app.control.clear_requests();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .args(["resync", "--company", &CONTOSO.to_string()])
        .output()
        .await
        .expect("resync");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(app.writes().is_empty(), "{:#?}", app.writes());
}

#[tokio::test]
async fn migrate_rebuilds_the_outbox_triggers_for_a_column_plumm_added() {
    let app = TestApp::spawn().await;
    app.plumm("ALTER TABLE users ADD COLUMN employee_number TEXT");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .arg("migrate")
        .output()
        .await
        .expect("migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    hire_numbered(&app, "ada@contoso.com", "E-1001", "'GB'");
    let conn = rusqlite::Connection::open(&app.settings.plumm.database).expect("plumm");
    let snapshot: String = conn
        .query_row(
            "SELECT snapshot FROM entra_outbox ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("an outbox row");
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot).expect("json");
    assert_eq!(snapshot["employee_number"], "E-1001", "{snapshot}");
    assert_eq!(snapshot["email"], "ada@contoso.com");
}
