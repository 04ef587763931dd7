//! Bulk membership: an initial sync adds people to a group 20 to a write
//! (`members@odata.bind`), a refused batch falls back to one write per
//! person with each person's own answer, and a `kill -9` in the middle of
//! it loses no member and duplicates none.
use std::collections::BTreeSet;
use std::time::Duration;

use entra_daemon::domain::PlummUserId;
use entra_daemon::emulator::{FaultKind, LoggedRequest, SeedGroup};
use entra_daemon::mapping::groups::group_mail_nickname;

use crate::group_helpers::*;
use crate::helpers::*;

/// `n` people of Contoso, alternately in Clinical and Finance.
fn staff(app: &TestApp, n: usize) {
    for i in 0..n {
        let dept = if i % 2 == 0 { "Clinical" } else { "Finance" };
        app.plumm(&format!(
            "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
             VALUES ({CONTOSO}, 'p{i}@contoso.com', 'Person', 'N{i}', 'Nurse', '{dept}', 'Leeds', 'GB')"
        ));
    }
}

/// Everyone in "All staff" (an existing group, by id), and a managed group
/// per department; the batch waits long enough that only full batches and
/// the last one go.
fn rules(all_staff: &str) -> String {
    format!(
        "[[groups]]\ncompany = {CONTOSO}\ngroup_id = \"{all_staff}\"\n\n\
         [[groups]]\nname = \"Dept {{department}}\"\n"
    )
}

fn membership_writes(app: &TestApp) -> Vec<LoggedRequest> {
    app.writes()
        .into_iter()
        .filter(|r| r.path.contains("/groups/"))
        .collect()
}

fn group_id(app: &TestApp, name: &str) -> String {
    let found: Vec<_> = app
        .control
        .groups(T1)
        .into_iter()
        .filter(|g| g.display_name == name)
        .collect();
    assert_eq!(found.len(), 1, "{name} exists once");
    found[0].id.clone()
}

/// The accounts of the people whose email matches.
fn accounts(app: &TestApp, n: usize, which: impl Fn(usize) -> bool) -> BTreeSet<String> {
    (0..n)
        .filter(|i| which(*i))
        .map(|i| {
            app.entra(T1, &format!("p{i}@contoso.com"))
                .expect("account")
                .id
        })
        .collect()
}

/// The company connects while the daemon runs (Plumm's rows for it were
/// seen and skipped before): its people arrive as the initial sync, bulk work.
async fn connect_running(app: &TestApp) {
    app.converged().await;
    app.connect(CONTOSO, T1).await;
    app.converged().await;
}

#[tokio::test]
async fn an_initial_sync_adds_members_twenty_to_a_write() {
    let mut app = TestApp::spawn_with(Options {
        extra_sync: "membership_batch_wait = \"30s\"".into(),
        ..Options::default()
    })
    .await;
    grant_groups(&app);
    let all_staff = seed_group(&app, "All staff", vec![]);
    staff(&app, 45);
    app.start_daemon_with(&rules(&all_staff));
    connect_running(&app).await;

    let clinical = group_id(&app, "Dept Clinical");
    let finance = group_id(&app, "Dept Finance");
    assert_eq!(member_set(&app, &all_staff), accounts(&app, 45, |_| true));
    assert_eq!(
        member_set(&app, &clinical),
        accounts(&app, 45, |i| i % 2 == 0)
    );
    assert_eq!(
        member_set(&app, &finance),
        accounts(&app, 45, |i| i % 2 == 1)
    );

    let writes = membership_writes(&app);
    let adds = |g: &str| {
        writes
            .iter()
            .filter(|r| {
                r.method == "PATCH" && r.path == format!("/v1.0/groups/{g}") && r.status == 204
            })
            .map(|r| body(r)["members@odata.bind"].as_array().unwrap().len())
            .collect::<Vec<_>>()
    };
    assert_eq!(adds(&all_staff), [20, 20, 5], "45 people in three writes");
    assert_eq!(adds(&clinical).iter().sum::<usize>(), 23);
    assert_eq!(adds(&clinical).len(), 2);
    assert_eq!(adds(&finance).len(), 2);
    assert!(
        writes.iter().all(|r| !r.path.ends_with("/members/$ref")),
        "no one-member writes: {writes:#?}"
    );
    // Every person has their own audit row for each group they joined.
    let rows = app.audit_for("p7@contoso.com");
    let joined: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "group_add" && r.outcome == "ok")
        .filter_map(|r| r.detail.clone())
        .collect();
    assert_eq!(joined.len(), 2, "{joined:?}");
    assert!(joined
        .iter()
        .any(|d| d.contains("\"Dept Finance\"") && d.contains("in one write")));
    assert!(joined.iter().any(|d| d.contains(&all_staff)));
    app.stop_daemon().await;
}

#[tokio::test]
async fn a_refused_batch_is_handed_back_and_each_person_gets_their_own_answer() {
    let mut app = TestApp::spawn_with(Options {
        extra_sync: "membership_batch_wait = \"30s\"".into(),
        ..Options::default()
    })
    .await;
    grant_groups(&app);
    staff(&app, 6);
    // p3 has an account already, and someone put it in All staff by hand.
    let p3 = app.seed(T1, "p3@contoso.com", "Person N3", None);
    let all_staff = seed_group(&app, "All staff", vec![p3.clone()]);
    app.control.replicate_now();
    app.start_daemon_with(&format!(
        "[[groups]]\ncompany = {CONTOSO}\ngroup_id = \"{all_staff}\"\n"
    ));
    connect_running(&app).await;

    assert_eq!(member_set(&app, &all_staff), accounts(&app, 6, |_| true));
    let writes = membership_writes(&app);
    let batch: Vec<_> = writes.iter().filter(|r| r.method == "PATCH").collect();
    // The new accounts replicate first (404s), then the batch is refused
    // whole: it names a member already there.
    let (last, before) = batch.split_last().expect("a batch was sent");
    assert_eq!(last.status, 400, "{writes:#?}");
    assert!(before.iter().all(|r| r.status == 404), "{writes:#?}");
    let alone: Vec<_> = writes
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/members/$ref"))
        .collect();
    assert_eq!(alone.len(), 6, "each person added alone after the refusal");
    let p3_rows = app.audit_for("p3@contoso.com");
    assert!(
        p3_rows.iter().any(|r| r.action == "group_add"
            && r.outcome == "ok"
            && r.detail
                .as_deref()
                .unwrap_or("")
                .contains("already a member")),
        "{p3_rows:#?}"
    );
    assert!(app.state().parked(None).unwrap().is_empty());
    app.stop_daemon().await;
}

#[tokio::test]
async fn kill_9_during_a_bulk_membership_change_loses_no_member_and_duplicates_none() {
    let mut app = TestApp::spawn_with(Options {
        extra_sync: "membership_batch_wait = \"50ms\"".into(),
        ..Options::default()
    })
    .await;
    grant_groups(&app);
    let all_staff = seed_group(&app, "All staff", vec![]);
    let n = 80;
    staff(&app, n);
    // Plumm's rows were seen before the company connected (skipped): the
    // initial sync is what puts them in Entra and in the groups.
    app.run_once().await;
    app.connect(CONTOSO, T1).await;
    let text = format!("{}\n{}\n", app.config_text(), rules(&all_staff));
    app.write_config(&text);
    let log = std::fs::File::create(app.dir.path().join("group-crash.log")).unwrap();
    for round in 0..4usize {
        let seen = membership_writes(&app).len();
        let mut child = spawn_daemon_process(&app, log.try_clone().unwrap());
        wait_for(
            "membership writes to reach Graph",
            Duration::from_secs(20),
            || membership_writes(&app).len() > seen + round,
        )
        .await;
        child.start_kill().expect("SIGKILL");
        child.wait().await.expect("reaped");
    }
    app.start_daemon_with("");
    app.converged().await;
    app.stop_daemon().await;

    assert_eq!(member_set(&app, &all_staff), accounts(&app, n, |_| true));
    let clinical = group_id(&app, "Dept Clinical");
    let finance = group_id(&app, "Dept Finance");
    assert_eq!(
        member_set(&app, &clinical),
        accounts(&app, n, |i| i % 2 == 0)
    );
    assert_eq!(
        member_set(&app, &finance),
        accounts(&app, n, |i| i % 2 == 1)
    );
    let state = app.state();
    assert!(
        state.parked(None).unwrap().is_empty(),
        "{:#?}",
        state.parked(None)
    );
    assert_eq!(state.queued_membership_count(None).unwrap(), 0);
    for i in 0..n {
        let id = PlummUserId(app.plumm_id(&format!("p{i}@contoso.com")));
        let link = state.link(id).unwrap().expect("linked");
        let recorded = state.memberships(id, &link.tenant, &link.entra_id).unwrap();
        assert_eq!(recorded.len(), 2, "p{i}: both memberships are recorded");
    }
}

#[tokio::test]
async fn a_tenant_without_the_group_permission_syncs_its_people_and_parks_their_memberships() {
    let mut app = TestApp::spawn_with(Options {
        extra_sync: "membership_batch_wait = \"30s\"".into(),
        ..Options::default()
    })
    .await;
    // The default consent: User.ReadWrite.All alone.
    let all_staff = seed_group(&app, "All staff", vec![]);
    staff(&app, 25);
    app.start_daemon_with(&format!(
        "[[groups]]\ncompany = {CONTOSO}\ngroup_id = \"{all_staff}\"\n"
    ));
    connect_running(&app).await;
    app.stop_daemon().await;

    assert_eq!(app.users(T1).len(), 25, "every account is created");
    assert!(member_set(&app, &all_staff).is_empty());
    let state = app.state();
    assert!(
        state.quarantined().unwrap().is_empty(),
        "the tenant's user sync goes on"
    );
    let parked = state.parked(None).unwrap();
    assert_eq!(parked.len(), 25, "{parked:#?}");
    assert!(parked
        .iter()
        .all(|p| p.reason.contains("grant GroupMember.ReadWrite.All")));
    let batches = membership_writes(&app)
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(
        batches, 2,
        "one refused batch per 20, then each person alone"
    );
}

/// A person's worker that cannot resolve one of their groups (Graph is
/// down for the group lookup) still knows the others: an addition waiting
/// in the queue for a group the rules still give is kept, not taken back
/// and recorded as made on the strength of a batch that Graph refused.
#[tokio::test]
async fn a_group_that_cannot_be_resolved_does_not_cost_the_person_their_other_additions() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    // "Managers" exists already, under the nickname the daemon looks for.
    let managers = app
        .control
        .seed_group(
            T1,
            SeedGroup {
                display_name: "Managers".into(),
                mail_nickname: Some(group_mail_nickname("Managers")),
                ..SeedGroup::default()
            },
        )
        .unwrap();
    app.plumm(&format!(
        "INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
         VALUES ({CONTOSO}, 'p0@contoso.com', 'Person', 'N0', 'Clinical Lead', 'Clinical', 'Leeds', 'GB')"
    ));
    // Both by name; the department's group is resolved first.
    app.start_daemon_with(
        "[[groups]]\nname = \"Dept {department}\"\n\n\
         [[groups]]\nname = \"Managers\"\nwhen = { role = \"*Lead*\" }\n",
    );
    app.converged().await;
    let always = |app: &TestApp, method: &str, path: &str, status: u16| {
        let kind = FaultKind::Status {
            status,
            retry_after: None,
        };
        app.fail_next(Some(T1), method, path, 1_000, kind);
    };
    // Every batch to Managers is refused as not replicated yet (a 404 for
    // a new account): the addition waits, sent.
    always(&app, "PATCH", &format!("/groups/{managers}"), 404);
    app.connect(CONTOSO, T1).await;
    let waiting = || {
        let delayed = app.state().delayed_memberships("0").unwrap_or_default();
        delayed
            .iter()
            .any(|q| q.group_id == managers && q.sent_at.is_some())
    };
    wait_for(
        "the addition to Managers to wait",
        Duration::from_secs(10),
        waiting,
    )
    .await;
    // The lookup for the person's new department fails meanwhile.
    always(&app, "GET", "/groups", 503);
    app.plumm("UPDATE users SET department = 'Research' WHERE email = 'p0@contoso.com'");
    wait_for(
        "the worker to meet the failing lookup",
        Duration::from_secs(10),
        || {
            app.audit_for("p0@contoso.com")
                .iter()
                .any(|r| r.action == "lookup" && r.outcome == "failed")
        },
    )
    .await;
    app.control.clear_faults();
    app.converged().await;
    app.stop_daemon().await;

    let p0 = accounts(&app, 1, |_| true);
    assert_eq!(member_set(&app, &managers), p0, "still joins Managers");
    assert_eq!(member_set(&app, &group_id(&app, "Dept Research")), p0);
    assert!(member_set(&app, &group_id(&app, "Dept Clinical")).is_empty());
}
