//! SIGHUP: a valid configuration applies to the next change; an invalid
//! one (or one naming a secret that cannot be read) is refused with the
//! reason and the old one stays in force.
use std::time::Duration;

use crate::helpers::*;

fn enabled(app: &OpsApp, upn: &str) -> bool {
    app.entra(T1, upn)
        .first()
        .map(|u| u.account_enabled)
        .expect("in Entra")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_valid_config_and_refuses_an_invalid_one() {
    let app = OpsApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    for p in ["one@contoso.com", "two@contoso.com", "three@contoso.com"] {
        app.hire(CONTOSO, p);
    }
    let daemon = app.start();
    app.converged().await;
    let original = app.config_text();

    // Valid: deletions in Plumm are now ignored instead of suspending.
    app.write_config(&original.replace("[sync]\n", "[sync]\non_delete = \"ignore\"\n"));
    daemon.signal("HUP");
    daemon.wait_output("configuration reloaded").await;
    app.plumm("DELETE FROM users WHERE email = 'one@contoso.com'");
    app.converged().await;
    assert!(
        enabled(&app, "one@contoso.com"),
        "on_delete = ignore applies"
    );

    // Invalid: refused with the key and the reason; `ignore` stays.
    app.write_config(&original.replace("[sync]\n", "[sync]\non_delete = \"purge\"\n"));
    daemon.signal("HUP");
    daemon.wait_output("NOT reloaded").await;
    let out = daemon.output();
    assert!(out.contains("on_delete") && out.contains("purge"), "{out}");

    // Valid TOML, but the secret it names cannot be read: refused too.
    app.write_config(
        &original
            .replace("[sync]\n", "[sync]\non_delete = \"suspend\"\n")
            .replace("\"client-secret\"", "\"missing-secret\""),
    );
    daemon.signal("HUP");
    wait_for("a second refusal", Duration::from_secs(15), || {
        daemon.output().matches("NOT reloaded").count() == 2
    })
    .await;
    assert!(daemon.output().contains("missing-secret"));

    app.plumm("DELETE FROM users WHERE email = 'two@contoso.com'");
    app.converged().await;
    assert!(
        enabled(&app, "two@contoso.com"),
        "the old config stays in force"
    );

    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");
}

/// The reload contract (`engine::Policy`): one `SIGHUP` reaches every
/// consumer of the policy, not only the workers: the resync the running
/// daemon plans (asked by `entra-daemon resync --dry-run`, or by `SIGUSR1`)
/// and the mass-deprovision brake use the new `on_delete`, `[mapping]` and
/// thresholds at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sighup_reaches_the_workers_the_resync_and_the_brake() {
    let app = OpsApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    for p in ["one@contoso.com", "two@contoso.com", "three@contoso.com"] {
        app.hire(CONTOSO, p);
    }
    let daemon = app.start();
    app.converged().await;
    let job = |upn: &str| app.entra(T1, upn)[0].job_title.clone();
    assert_eq!(job("two@contoso.com").as_deref(), Some("Engineer"));

    // New policy: deletions delete, the job title comes from the
    // department, and a single deprovision trips the brake (the default,
    // 10 people and 20 %, would let one through).
    let mapping = "[mapping]\ndisplayName = \"{first_name} {last_name}\"\n\
                   jobTitle = \"{department}\"\ndepartment = \"{department}\"\n\
                   officeLocation = \"{location}\"\nusageLocation = \"{country}\"\n";
    let sync = "[sync]\non_delete = \"delete\"\nmax_deprovision_count = 1\n\
                max_deprovision_percent = 0\n";
    let config = app.config_text().replace("[sync]\n", sync);
    app.write_config(&format!("{config}{mapping}"));
    daemon.signal("HUP");
    daemon.wait_output("configuration reloaded").await;

    // The workers' brake holds a deletion the old thresholds let through.
    app.plumm("DELETE FROM users WHERE email = 'one@contoso.com'");
    wait_for("the brake to hold", Duration::from_secs(15), || {
        app.state()
            .brake(entra_daemon::domain::CompanyId(CONTOSO))
            .expect("brake")
            .is_some_and(|b| b.is_held())
    })
    .await;
    assert!(enabled(&app, "one@contoso.com"), "held, not applied");

    // The daemon's resync plans with the new mapping and on_delete, from
    // a listing that shows the three accounts: created moments ago, they
    // are listed once Entra has replicated them.
    wait_for("the accounts to replicate", Duration::from_secs(15), || {
        app.control.visible_users(T1).len() == 3
    })
    .await;
    let out = app
        .cli(&["resync", "--dry-run", "--json", "--company", "1"])
        .await;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let plan: serde_json::Value = serde_json::from_str(&text).expect("json plan");
    let items = plan[0]["items"].as_array().expect("items").clone();
    let action = |email: &str| {
        items
            .iter()
            .find(|i| i["email"] == email)
            .map(|i| i["action"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(
        action("one@contoso.com").as_deref(),
        Some("delete"),
        "{text}"
    );
    for p in ["two@contoso.com", "three@contoso.com"] {
        assert_eq!(action(p).as_deref(), Some("update"), "{text}");
    }
    let change = &items
        .iter()
        .find(|i| i["email"] == "two@contoso.com")
        .expect("two")["changes"];
    assert_eq!(change[0]["property"], "jobTitle", "{text}");
    assert_eq!(change[0]["new"], "Engineering", "{text}");
    assert_eq!(
        plan[0]["outcome"], "held",
        "the brake holds the plan's deletion: {text}"
    );

    // SIGUSR1: the same policy, applied. The updates land; the deletion
    // stays held until an admin releases the brake.
    daemon.signal("USR1");
    wait_for("the new job titles", Duration::from_secs(15), || {
        job("two@contoso.com").as_deref() == Some("Engineering")
            && job("three@contoso.com").as_deref() == Some("Engineering")
    })
    .await;
    assert!(enabled(&app, "one@contoso.com"), "still held");
    assert!(!app.entra(T1, "one@contoso.com")[0].deleted);

    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert!(status.code().is_some(), "{out}");
}

/// `[[groups]]` rules are policy: a `SIGHUP` adds a rule for the next
/// change, and a bad rule is refused with its position, the old rules kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_group_rules_to_the_next_change_and_refuses_a_bad_one() {
    let app = OpsApp::spawn().await;
    let roles = ["User.ReadWrite.All", "GroupMember.ReadWrite.All"];
    app.control
        .set_permissions(T1, roles.map(String::from).to_vec())
        .unwrap();
    let seed = entra_daemon::emulator::SeedGroup {
        display_name: "Engineering".into(),
        ..Default::default()
    };
    let group = app.control.seed_group(T1, seed).unwrap();
    app.connect(CONTOSO, T1).await;
    app.hire(CONTOSO, "one@contoso.com");
    let daemon = app.start();
    app.converged().await;
    let members = || app.control.group_members(T1, &group).unwrap();
    assert!(members().is_empty(), "no rules, no memberships");

    let original = app.config_text();
    let rule = format!(
        "\n[[groups]]\ncompany = {CONTOSO}\ngroup_id = \"{group}\"\nwhen = {{ department = \"Engineering\" }}\n"
    );
    app.write_config(&format!(
        "{original}{rule}\n[[groups]]\ngroup_id = \"{group}\"\n"
    ));
    daemon.signal("HUP");
    daemon.wait_output("NOT reloaded").await;
    assert!(
        daemon.output().contains("[[groups]] rule 2"),
        "{}",
        daemon.output()
    );

    app.write_config(&format!("{original}{rule}"));
    daemon.signal("HUP");
    daemon.wait_output("configuration reloaded").await;
    app.plumm("UPDATE users SET role = 'Lead' WHERE email = 'one@contoso.com'");
    let id = app.entra(T1, "one@contoso.com")[0].id.clone();
    wait_for(
        "the reloaded rule to apply",
        Duration::from_secs(15),
        || members() == [id.clone()],
    )
    .await;

    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");
}
