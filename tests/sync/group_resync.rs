//! Membership drift and rule changes: a resync lists each managed group
//! once and puts hand-made drift right (a dry run only reports it, old and
//! new); a reload that changes the rules is carried out by a resync; and
//! the mass-deprovision brake holds a burst of removals a rule typo makes.
use std::collections::BTreeSet;
use std::sync::Arc;

use entra_daemon::configuration::Settings;
use entra_daemon::daemon;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::group_helpers::*;
use crate::helpers::*;

fn hire(app: &TestApp, i: usize, department: &str) {
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
         VALUES ({CONTOSO}, 'p{i}@contoso.com', 'Person', 'N{i}', 'Nurse', '{department}', 'Leeds', 'GB')"
    ));
}

fn account(app: &TestApp, i: usize) -> String {
    app.entra(T1, &format!("p{i}@contoso.com"))
        .expect("account")
        .id
}

fn group_named(app: &TestApp, name: &str) -> String {
    let g = app.control.groups(T1);
    g.iter()
        .find(|g| g.display_name == name)
        .expect(name)
        .id
        .clone()
}

fn all_staff_rule(all_staff: &str, when: &str) -> String {
    format!("[[groups]]\ncompany = {CONTOSO}\ngroup_id = \"{all_staff}\"\n{when}\n")
}

/// Three people synced into "All staff" and their department's group.
async fn synced(app: &mut TestApp) -> String {
    grant_groups(app);
    let all_staff = seed_group(app, "All staff", vec![]);
    app.connect(CONTOSO, T1).await;
    let rules = format!(
        "{}\n[[groups]]\nname = \"Dept {{department}}\"\n",
        all_staff_rule(&all_staff, "")
    );
    let text = format!("{}\n{rules}\n", app.config_text());
    app.write_config(&text);
    for (i, dept) in ["Clinical", "Clinical", "Finance"].iter().enumerate() {
        hire(app, i, dept);
    }
    app.start_daemon_with("");
    app.converged().await;
    app.stop_daemon().await;
    app.control.replicate_now();
    all_staff
}

#[tokio::test]
async fn a_resync_puts_hand_made_drift_right_and_a_dry_run_reports_it_old_and_new() {
    let mut app = TestApp::spawn().await;
    let all_staff = synced(&mut app).await;
    let (p0, p1) = (account(&app, 0), account(&app, 1));
    let finance = group_named(&app, "Dept Finance");
    // By hand in Entra: p0 taken out of All staff, p1 put in Finance, and a
    // guest Plumm does not hold put in All staff.
    app.control
        .remove_group_member(T1, &all_staff, &p0)
        .unwrap();
    app.control.add_group_member(T1, &finance, &p1).unwrap();
    let guest = app.seed(T1, "frontdesk@contoso.com", "Front Desk", None);
    app.control
        .add_group_member(T1, &all_staff, &guest)
        .unwrap();
    app.control.replicate_now();
    app.control.clear_requests();

    let out = cli(&app, &["resync", "--dry-run", "--json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(app.writes().is_empty(), "{:#?}", app.writes());
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &reports[0];
    assert_eq!(
        (
            r["membership_adds"].clone(),
            r["membership_removals"].clone()
        ),
        (json!(1), json!(1))
    );
    let line = |email: &str| {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["action"] == "groups" && i["email"] == email)
            .cloned()
            .unwrap_or_else(|| panic!("no groups line for {email}: {r:#}"))
    };
    // Names sorted; a group named by id shows its id.
    let mut both = vec![all_staff.clone(), "Dept Clinical".to_string()];
    both.sort();
    assert_eq!(
        line("p0@contoso.com")["changes"],
        json!([{"property": "groups", "old": ["Dept Clinical"], "new": both}])
    );
    assert_eq!(line("p1@contoso.com")["changes"][0]["new"], json!(both));
    let lists: Vec<_> = app
        .graph_calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/members"))
        .collect();
    assert_eq!(lists.len(), 3, "each managed group listed once: {lists:#?}");
    assert!(lists
        .iter()
        .all(|c| c.query.as_deref().unwrap_or("").contains("$select=id")));

    let out = cli(&app, &["resync"]).await;
    assert_eq!(out.status.code(), Some(0));
    app.start_daemon_with("");
    app.converged().await;
    app.stop_daemon().await;
    let all: BTreeSet<String> = [p0.clone(), p1.clone(), account(&app, 2), guest.clone()].into();
    assert_eq!(
        member_set(&app, &all_staff),
        all,
        "p0 is back, the guest stays"
    );
    assert_eq!(
        member_set(&app, &finance),
        [account(&app, 2)].into(),
        "p1 is out of Finance"
    );
}

#[tokio::test]
async fn a_rule_typo_on_reload_trips_the_brake_and_an_admin_releases_it() {
    let app = TestApp::spawn().await;
    grant_groups(&app);
    let all_staff = seed_group(&app, "All staff", vec![]);
    app.connect(CONTOSO, T1).await;
    let good = format!(
        "{}\n{}\n",
        app.config_text(),
        all_staff_rule(&all_staff, "")
    );
    app.write_config(&good);
    for i in 0..12 {
        hire(&app, i, "Clinical");
    }
    let settings = Settings::load(&app.config_path).unwrap();
    let (policy_tx, policy_rx) = watch::channel(Arc::new(settings.policy.clone()));
    let (stop, stop_rx) = watch::channel(false);
    let mut run = daemon::Run::new(settings.clone(), stop_rx);
    run.policy = Some(policy_rx);
    let running = tokio::spawn(daemon::run(run));
    app.converged().await;
    assert_eq!(member_set(&app, &all_staff).len(), 12);

    // A typo: nobody's department is "Clinicl", so everyone would leave.
    let typo = format!(
        "{}\n{}\n",
        app.config_text()
            .replace(&all_staff_rule(&all_staff, ""), ""),
        all_staff_rule(&all_staff, "when = { department = \"Clinicl\" }")
    );
    app.write_config(&typo);
    let (policy, _) = daemon::service::reload(&app.config_path, &settings).expect("reload");
    policy_tx.send_replace(Arc::new(policy));
    let held = || {
        app.state().resync_runs(None, 100).unwrap().iter().any(|r| {
            r.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("trigger rules") && d.contains("brake held 12"))
        })
    };
    wait_for(
        "the reload's resync to hold the removals",
        std::time::Duration::from_secs(20),
        held,
    )
    .await;
    assert_eq!(
        member_set(&app, &all_staff).len(),
        12,
        "no one was taken out"
    );
    // The hold is the company's: a person's own change waits for the release too.
    app.plumm("UPDATE users SET role = 'Ward Lead' WHERE email = 'p0@contoso.com'");
    let waits = || {
        app.audit_for("p0@contoso.com")
            .iter()
            .any(|r| r.action == "group_remove" && r.outcome == "skipped")
    };
    wait_for(
        "p0's removal to wait for the brake",
        std::time::Duration::from_secs(20),
        waits,
    )
    .await;
    assert_eq!(
        member_set(&app, &all_staff).len(),
        12,
        "no one was taken out"
    );
    assert!(app.writes().iter().all(|w| w.method != "DELETE"));
    let out = cli(&app, &["status", "--json"]).await;
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        status["needs_attention"]
            .to_string()
            .contains("group membership removals"),
        "{status:#}"
    );

    let out = cli(
        &app,
        &["resync", "--company", "1", "--allow-mass-deprovision"],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the released removals",
        std::time::Duration::from_secs(20),
        || member_set(&app, &all_staff).is_empty(),
    )
    .await;
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}
