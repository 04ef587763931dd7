//! A person's access, as an admin reads it: `audit --email` is their
//! membership history, `status --user` their managed groups now.

use serde_json::Value;

use crate::group_helpers::*;
use crate::helpers::*;

#[tokio::test]
async fn audit_by_email_is_a_persons_membership_history_and_status_shows_their_groups() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    let all_staff = seed_group(&app, "All staff", vec![]);
    app.connect(CONTOSO, T1).await;
    app.start_daemon_with(&format!(
        "[[groups]]\ncompany = {CONTOSO}\ngroup_id = \"{all_staff}\"\n\n\
         [[groups]]\nname = \"Dept {{department}}\"\n"
    ));
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
         VALUES ({CONTOSO}, 'nia@contoso.com', 'Nia', 'Okafor', 'Nurse', 'Clinical', 'Leeds', 'GB')"
    ));
    app.converged().await;
    app.plumm("UPDATE users SET department = 'Finance' WHERE email = 'nia@contoso.com'");
    app.converged().await;
    app.stop_daemon().await;

    let out = cli(&app, &["audit", "--email", "nia@contoso.com", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let history: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "ok" && r["action"].as_str().unwrap().starts_with("group_"))
        .map(|r| r["detail"].as_str().unwrap().to_string())
        .collect();
    let said = |i: usize, what: &str| {
        assert!(
            history.get(i).is_some_and(|d| d.contains(what)),
            "{i}: {what} in {history:#?}"
        )
    };
    assert_eq!(history.len(), 6, "{history:#?}");
    said(0, "created group \"Dept Clinical\"");
    // The hire's two additions go in group id order.
    let hired = [&history[1], &history[2]];
    assert!(
        hired
            .iter()
            .any(|d| d.contains("added to group \"Dept Clinical\"")),
        "{history:#?}"
    );
    assert!(
        hired
            .iter()
            .any(|d| d.contains(&format!("added to group {all_staff}"))),
        "{history:#?}"
    );
    said(3, "created group \"Dept Finance\"");
    said(4, "removed from group \"Dept Clinical\"");
    said(5, "added to group \"Dept Finance\"");

    let id = app.plumm_id("nia@contoso.com").to_string();
    let out = cli(&app, &["status", "--user", &id, "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups: Vec<(String, String)> = p["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or("(by id)").to_string(),
                g["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("(by id)".into(), "member".into()),
            ("Dept Finance".into(), "member".into())
        ]
    );
    let out = cli(&app, &["status", "--user", "999"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("user 999 has no linked Entra account"));
}

#[tokio::test]
async fn a_rule_may_read_a_column_plumm_added() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    app.plumm("ALTER TABLE users ADD COLUMN employee_type TEXT");
    app.connect(CONTOSO, T1).await;
    app.start_daemon_with(
        "[[groups]]\nname = \"Contractors\"\nwhen = { employee_type = \"contract*\" }\n",
    );
    for (email, kind) in [
        ("ann@contoso.com", "Contractor"),
        ("bo@contoso.com", "Employee"),
    ] {
        app.plumm(&format!(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country, employee_type)
             VALUES ({CONTOSO}, '{email}', 'A', 'B', 'Nurse', 'Clinical', 'Leeds', 'GB', '{kind}')"
        ));
    }
    app.converged().await;
    app.stop_daemon().await;
    let groups = app.control.groups(T1);
    let g = groups
        .iter()
        .find(|g| g.display_name == "Contractors")
        .expect("created");
    let ann = app.entra(T1, "ann@contoso.com").unwrap().id;
    assert_eq!(g.members, [ann], "only the contractor");
}
