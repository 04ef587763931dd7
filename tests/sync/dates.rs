//! Start and leave dates: `employeeHireDate` and `employeeLeaveDateTime`
//! from Plumm's date columns, a bare date read as midnight in `[sync]
//! time_zone`, and the leave date parked alone without its permission.
use crate::helpers::*;

#[tokio::test]
async fn dates_reach_entra_in_utc_and_the_leave_date_waits_for_its_permission() {
    let app = TestApp::spawn_with(Options {
        replication_delay_ms: 0,
        extra_sync: "time_zone = \"Europe/London\"".into(),
        extra_toml: "[mapping]\ndisplayName = \"{first_name} {last_name}\"\n\
                     employeeHireDate = \"{start_date}\"\nemployeeLeaveDateTime = \"{end_date}\"\n"
            .into(),
        ..Options::default()
    })
    .await;
    app.plumm(
        "ALTER TABLE users ADD COLUMN start_date TEXT; ALTER TABLE users ADD COLUMN end_date TEXT;",
    );
    app.connect(CONTOSO, T1).await;
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, start_date, end_date)
         VALUES ({CONTOSO}, 'ada@contoso.com', 'Ada', 'L', '2025-07-01', '2026-01-31T17:00:00Z')"
    ));
    let report = app.run_once().await;
    assert_eq!(report.parked, 0, "{report:?}");
    let ada = app
        .entra(T1, "ada@contoso.com")
        .expect("created without the leave date");
    // London midnight on 1 July is 23:00 UTC the day before (summer time).
    assert_eq!(
        ada.other_properties["employeeHireDate"],
        "2025-06-30T23:00:00Z"
    );
    assert!(ada
        .other_properties
        .get("employeeLeaveDateTime")
        .is_none_or(|v| v.is_null()));
    let posts: Vec<u16> = app
        .writes()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        posts,
        [403, 201],
        "refused with the leave date, created without"
    );
    let rows = app.audit_for("ada@contoso.com");
    let parked = rows
        .iter()
        .find(|r| r.outcome == "parked")
        .expect("the leave date parked");
    let detail = parked.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("User-LifeCycleInfo.ReadWrite.All"),
        "{detail}"
    );
    assert!(
        detail.contains("end_date (Entra employeeLeaveDateTime)"),
        "{detail}"
    );

    // Granted: the next change writes the leave date.
    app.control
        .set_permissions(
            T1,
            vec![
                "User.ReadWrite.All".into(),
                "User-LifeCycleInfo.ReadWrite.All".into(),
            ],
        )
        .unwrap();
    // Connecting again hands the new permission over (until then the
    // leave date stays out of Ada's changes, see scheduled.rs).
    app.connect(CONTOSO, T1).await;
    let before = app.writes().len();
    app.plumm("UPDATE users SET end_date = '2026-02-28' WHERE email = 'ada@contoso.com'");
    app.run_once().await;
    let patch = app.writes()[before..].to_vec();
    assert_eq!(patch.len(), 1, "{patch:#?}");
    assert_eq!(
        body(&patch[0])["employeeLeaveDateTime"],
        "2026-02-28T00:00:00Z"
    );
    let ada = app.entra(T1, "ada@contoso.com").unwrap();
    assert_eq!(
        ada.other_properties["employeeLeaveDateTime"],
        "2026-02-28T00:00:00Z"
    );
}

#[tokio::test]
async fn a_date_entra_cannot_hold_parks_the_person_naming_the_column() {
    let app = TestApp::spawn_with(Options {
        extra_toml:
            "[mapping]\ndisplayName = \"{first_name}\"\nemployeeHireDate = \"{start_date}\"\n"
                .into(),
        ..Options::default()
    })
    .await;
    app.plumm("ALTER TABLE users ADD COLUMN start_date TEXT");
    app.connect(CONTOSO, T1).await;
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, start_date)
         VALUES ({CONTOSO}, 'bo@contoso.com', 'Bo', 'P', '31/12/2025')"
    ));
    let report = app.run_once().await;
    assert_eq!(report.parked, 1);
    let reason = app.state().parked(None).unwrap()[0].reason.clone();
    assert!(
        reason.contains("start_date (Entra employeeHireDate) '31/12/2025'"),
        "{reason}"
    );
    assert!(app.writes().is_empty());
}
