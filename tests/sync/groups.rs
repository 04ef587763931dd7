//! Access follows Plumm: `[[groups]]` rules put people in Entra groups,
//! and only the memberships the daemon made are ever taken away.
use std::time::Duration;

use entra_daemon::domain::CompanyId;
use entra_daemon::emulator::{FaultKind, LoggedRequest};

use crate::group_helpers::*;
use crate::helpers::*;

fn hire(app: &TestApp, email: &str, department: &str, role: &str) {
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
         VALUES ({CONTOSO}, '{email}', 'Nia', 'Okafor', '{role}', '{department}', 'Leeds', 'GB')"
    ));
}

fn by_id(group: &str, department: &str) -> String {
    format!(
        "[[groups]]\ncompany = {CONTOSO}\ngroup_id = \"{group}\"\nwhen = {{ department = \"{department}\" }}\n"
    )
}

fn account(app: &TestApp, email: &str) -> String {
    app.entra(T1, email).expect("the account").id
}

fn members(app: &TestApp, group: &str) -> Vec<String> {
    app.control.group_members(T1, group).unwrap()
}

/// Membership writes (`members/$ref`) that Graph accepted or refused.
fn member_writes(app: &TestApp) -> Vec<LoggedRequest> {
    app.writes()
        .into_iter()
        .filter(|r| r.path.contains("/members/"))
        .collect()
}

/// The membership writes after a hire's: its add is retried while the new
/// account replicates (404s), so those attempts are left out.
fn writes_after_replication(app: &TestApp) -> Vec<LoggedRequest> {
    let all = member_writes(app);
    let first_ok = all
        .iter()
        .position(|r| r.status != 404)
        .unwrap_or(all.len());
    assert!(
        all[..first_ok].iter().all(|r| r.method == "POST"),
        "only the hire's add waits for replication"
    );
    all[first_ok..].to_vec()
}

fn audit_details(app: &TestApp, email: &str, action: &str) -> Vec<String> {
    app.audit_for(email)
        .into_iter()
        .filter(|r| r.action == action && r.outcome == "ok")
        .map(|r| r.detail.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_hire_lands_in_every_matching_group_and_a_managed_group_is_created_once() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    let clinical = seed_group(&app, "Clinical", vec![]);
    app.connect_both().await;
    let rules = format!(
        "{}\n[[groups]]\nname = \"All staff\"\n\n[[groups]]\nname = \"Dept {{department}}\"\n\n\
         [[groups]]\nname = \"Managers\"\nwhen = {{ role = \"*Lead*\" }}\n",
        by_id(&clinical, "clinical")
    );
    app.start_daemon_with(&rules);
    hire(&app, "nia@contoso.com", "Clinical", "Nurse");
    hire(&app, "ben@contoso.com", "Clinical", "Ward Lead");
    app.converged().await;

    let (nia, ben) = (
        account(&app, "nia@contoso.com"),
        account(&app, "ben@contoso.com"),
    );
    let groups = app.control.groups(T1);
    let named = |n: &str| {
        groups
            .iter()
            .filter(|g| g.display_name == n)
            .collect::<Vec<_>>()
    };
    for name in ["All staff", "Dept Clinical"] {
        let made = named(name);
        assert_eq!(made.len(), 1, "{name} is created once for both hires");
        assert!(made[0].security_enabled && !made[0].mail_enabled, "{name}");
        let mut got = made[0].members.clone();
        got.sort();
        let mut want = vec![nia.clone(), ben.clone()];
        want.sort();
        assert_eq!(got, want, "{name}");
    }
    assert_eq!(
        named("Managers")[0].members,
        std::slice::from_ref(&ben),
        "only the lead"
    );
    let mut in_clinical = members(&app, &clinical);
    in_clinical.sort();
    let mut both = vec![nia.clone(), ben.clone()];
    both.sort();
    assert_eq!(in_clinical, both, "the existing group, by id");
    let creates = app
        .writes()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1.0/groups");
    assert_eq!(
        creates.count(),
        3,
        "All staff, Dept Clinical, Managers: once each"
    );

    // The member is the account the create returned, named as Graph documents.
    let add = member_writes(&app)
        .into_iter()
        .find(|r| r.path == format!("/v1.0/groups/{clinical}/members/$ref") && r.status == 204)
        .expect("an accepted add");
    let odata_id = body(&add)["@odata.id"].as_str().unwrap().to_string();
    assert!(odata_id.starts_with("https://graph.microsoft.com/v1.0/directoryObjects/"));
    assert!([&nia, &ben]
        .iter()
        .any(|id| odata_id.ends_with(id.as_str())));
    let adds = audit_details(&app, "nia@contoso.com", "group_add");
    assert_eq!(adds.len(), 3, "{adds:?}");
    assert!(
        adds.iter()
            .any(|d| d == &format!("added to group {clinical}")),
        "{adds:?}"
    );
    assert!(
        adds.iter().any(|d| d.contains("\"All staff\" (")),
        "{adds:?}"
    );
}

#[tokio::test]
async fn a_group_create_whose_answer_was_lost_is_found_again_not_made_twice() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    app.connect_both().await;
    // Graph makes the group, and the answer never arrives.
    app.fail_next(Some(T1), "POST", "/v1.0/groups", 1, FaultKind::DropAfter);
    app.start_daemon_with("[[groups]]\nname = \"All staff\"\n");
    hire(&app, "nia@contoso.com", "Clinical", "Nurse");
    app.converged().await;
    let nia = account(&app, "nia@contoso.com");
    let all: Vec<_> = app
        .control
        .groups(T1)
        .into_iter()
        .filter(|g| g.display_name == "All staff")
        .collect();
    assert_eq!(all.len(), 1, "one group, found again by its mailNickname");
    assert_eq!(all[0].members, [nia]);
    let creates = app
        .writes()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1.0/groups");
    assert_eq!(creates.count(), 1, "the create is never resent blindly");
}

#[tokio::test]
async fn a_department_change_is_one_remove_and_one_add_and_hand_made_memberships_stay() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    let clinical = seed_group(&app, "Clinical", vec![]);
    let finance = seed_group(&app, "Finance", vec![]);
    let vip = seed_group(&app, "VIP", vec![]);
    app.connect_both().await;
    app.start_daemon_with(&(by_id(&clinical, "Clinical") + &by_id(&finance, "Finance")));
    hire(&app, "nia@contoso.com", "Clinical", "Nurse");
    app.converged().await;
    let nia = account(&app, "nia@contoso.com");
    assert_eq!(members(&app, &clinical), std::slice::from_ref(&nia));
    // An admin adds her by hand to a group no rule names.
    app.control.add_group_member(T1, &vip, &nia).unwrap();

    let before = member_writes(&app).len();
    app.plumm("UPDATE users SET department = 'Finance' WHERE email = 'nia@contoso.com'");
    wait_for(
        "the move to reach the groups",
        Duration::from_secs(10),
        || members(&app, &finance) == [nia.clone()],
    )
    .await;
    app.converged().await;
    let moved: Vec<String> = member_writes(&app)[before..]
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    assert_eq!(
        moved,
        [
            format!("DELETE /v1.0/groups/{clinical}/members/{nia}/$ref 204"),
            format!("POST /v1.0/groups/{finance}/members/$ref 204"),
        ]
    );
    assert!(members(&app, &clinical).is_empty());
    assert_eq!(members(&app, &vip), [nia], "not the daemon's to touch");
    let removed = audit_details(&app, "nia@contoso.com", "group_remove");
    assert_eq!(removed, [format!("removed from group {clinical}")]);
}

#[tokio::test]
async fn a_duplicate_add_and_a_missing_member_count_as_done() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    // Nia already has an account, and is in Clinical already.
    let nia = app.seed(T1, "nia@contoso.com", "Nia Okafor", None);
    let clinical = seed_group(&app, "Clinical", vec![nia.clone()]);
    app.connect_both().await;
    app.start_daemon_with(&by_id(&clinical, "Clinical"));
    hire(&app, "nia@contoso.com", "Clinical", "Nurse");
    app.converged().await;
    assert_eq!(members(&app, &clinical), std::slice::from_ref(&nia));
    let refused: Vec<u16> = member_writes(&app).iter().map(|r| r.status).collect();
    assert_eq!(refused, [400], "Graph said she is a member already");
    let adds = audit_details(&app, "nia@contoso.com", "group_add");
    assert_eq!(
        adds,
        [format!(
            "already a member of group {clinical}; counted as done"
        )]
    );

    // Someone takes her out by hand; her move then finds nothing to remove.
    app.control
        .remove_group_member(T1, &clinical, &nia)
        .unwrap();
    app.plumm("UPDATE users SET department = 'Finance' WHERE email = 'nia@contoso.com'");
    wait_for("the removal to be counted", Duration::from_secs(10), || {
        !audit_details(&app, "nia@contoso.com", "group_remove").is_empty()
    })
    .await;
    app.converged().await;
    let statuses: Vec<u16> = member_writes(&app).iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [400, 404],
        "one remove, answered 404, not retried"
    );
    let removed = audit_details(&app, "nia@contoso.com", "group_remove");
    assert_eq!(
        removed,
        [format!("not a member of group {clinical}; counted as done")]
    );
    assert!(app.state().parked(None).unwrap().is_empty());
}

/// Hires Nia into a rule's group, suspends then reactivates her in Plumm;
/// returns the group, her account and whether she was a member while suspended.
async fn suspend_and_reactivate(on_suspend_groups: &str) -> (TestApp, String, String, bool) {
    let mut app = TestApp::spawn_with(Options {
        extra_sync: format!("on_suspend_groups = \"{on_suspend_groups}\""),
        ..Options::default()
    })
    .await;
    grant_groups(&app);
    let clinical = seed_group(&app, "Clinical", vec![]);
    app.connect_both().await;
    app.start_daemon_with(&by_id(&clinical, "Clinical"));
    hire(&app, "nia@contoso.com", "Clinical", "Nurse");
    app.converged().await;
    let nia = account(&app, "nia@contoso.com");
    assert_eq!(members(&app, &clinical), std::slice::from_ref(&nia));

    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'nia@contoso.com'");
    wait_for("the suspension", Duration::from_secs(10), || {
        !app.entra(T1, "nia@contoso.com").unwrap().account_enabled
    })
    .await;
    app.converged().await;
    let while_suspended = members(&app, &clinical).contains(&nia);
    app.plumm("UPDATE users SET status = 'active' WHERE email = 'nia@contoso.com'");
    wait_for("the reactivation", Duration::from_secs(10), || {
        app.entra(T1, "nia@contoso.com").unwrap().account_enabled
    })
    .await;
    app.converged().await;
    assert_eq!(
        members(&app, &clinical),
        std::slice::from_ref(&nia),
        "access as it was"
    );
    (app, clinical, nia, while_suspended)
}

#[tokio::test]
async fn a_suspension_keeps_managed_memberships_by_default() {
    let (app, _, _, kept) = suspend_and_reactivate("keep").await;
    assert!(kept, "kept while suspended");
    let writes: Vec<String> = writes_after_replication(&app)
        .iter()
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(writes, ["POST 204"], "only the hire's add");
}

#[tokio::test]
async fn a_suspension_removes_managed_memberships_when_configured() {
    let (app, clinical, nia, kept) = suspend_and_reactivate("remove").await;
    assert!(!kept, "removed while suspended");
    let writes: Vec<String> = writes_after_replication(&app)
        .iter()
        .map(|r| format!("{} {}", r.method, r.status))
        .collect();
    assert_eq!(writes, ["POST 204", "DELETE 204", "POST 204"]);
    let last = member_writes(&app).pop().unwrap();
    assert_eq!(last.path, format!("/v1.0/groups/{clinical}/members/$ref"));
    assert!(body(&last)["@odata.id"].as_str().unwrap().ends_with(&nia));
}

#[tokio::test]
async fn a_missing_group_permission_parks_the_membership_and_users_keep_syncing() {
    let mut app = TestApp::spawn().await;
    // Consent as the emulator gives it: users only, no GroupMember.ReadWrite.All.
    let clinical = seed_group(&app, "Clinical", vec![]);
    app.connect_both().await;
    app.start_daemon_with(&by_id(&clinical, "Clinical"));
    hire(&app, "nia@contoso.com", "Clinical", "Nurse");
    app.converged().await;
    assert!(
        app.entra(T1, "nia@contoso.com").is_some(),
        "the account is made"
    );
    assert!(members(&app, &clinical).is_empty());
    let parked = app.state().parked(None).unwrap();
    assert_eq!(parked.len(), 1);
    assert!(
        parked[0].reason.contains(
            "grant GroupMember.ReadWrite.All in Entra, then reconnect from Plumm's Store"
        ),
        "{}",
        parked[0].reason
    );
    assert!(
        app.state().quarantined().unwrap().is_empty(),
        "user sync goes on"
    );
    let checks = app
        .writes()
        .into_iter()
        .filter(|r| r.method == "PATCH" && body(r) == serde_json::json!({}));
    assert_eq!(
        checks.count(),
        0,
        "a group 403 is not a question about user writes"
    );

    // Users keep syncing: a property change and a new hire go through.
    app.plumm("UPDATE users SET role = 'Senior Nurse' WHERE email = 'nia@contoso.com'");
    hire(&app, "ben@contoso.com", "Finance", "Clerk");
    app.converged().await;
    let nia = app.entra(T1, "nia@contoso.com").unwrap();
    assert_eq!(nia.job_title.as_deref(), Some("Senior Nurse"));
    assert!(app.entra(T1, "ben@contoso.com").is_some());
    assert_eq!(
        app.state().pending_summary(CompanyId(CONTOSO)).unwrap().0,
        0
    );

    // What the reason says to do: grant, then reconnect; the reconnect's
    // sync carries the parked membership out.
    grant_groups(&app);
    app.control.expire_tokens(T1);
    app.connect(CONTOSO, T1).await;
    let nia = nia.id;
    wait_for(
        "the membership after the grant",
        Duration::from_secs(10),
        || members(&app, &clinical) == [nia.clone()],
    )
    .await;
    app.converged().await;
    assert!(app.state().parked(None).unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_group_rule_is_refused_at_start_with_its_position() {
    let app = TestApp::spawn().await;
    let bad = app.dir.path().join("bad.toml");
    let text = format!(
        "{}\n[[groups]]\nname = \"All staff\"\n\n[[groups]]\nname = \"Dept\"\nwhen = {{ team = \"x\" }}\n",
        app.config_text()
    );
    std::fs::write(&bad, text).unwrap();
    // Plumm's columns are known at start: that is where the rule is refused.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .args(["--config", bad.to_str().unwrap(), "run", "--once"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[[groups]] rule 2"), "{err}");
    assert!(
        err.contains("'team', which is not a Plumm users column; columns: id, company_id"),
        "{err}"
    );
    assert!(app.writes().is_empty());
}
