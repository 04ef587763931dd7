//! Full resync: drift made directly in Entra is corrected (or reported)
//! after `SIGUSR1`, `entra-daemon resync` and a scheduled run; dry runs
//! write nothing (the mass-deprovision brake: `resync_brake.rs`); signal
//! storms and real-time races behave.
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use entra_daemon::daemon;
use entra_daemon::domain::CompanyId;
use entra_daemon::emulator::{Fault, FaultKind};
use entra_daemon::engine::RunReport;
use entra_daemon::store::AuditRow;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::helpers::*;

pub(crate) const LONG: Duration = Duration::from_secs(20);

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The Entra users made to drift, and the one nobody in Plumm manages.
struct Drift {
    deleted_id: String,
    stranger_id: String,
}

/// Four Contoso people in sync, then drift made directly in Entra: one
/// renamed, one disabled, one deleted, and an extra unmanaged account.
/// `del@` existed in Entra before the connect (linked, not created), as a
/// deleted account that the daemon itself created moments ago could still
/// be replicating.
async fn drifted() -> (TestApp, Drift) {
    drifted_with(Options::default()).await
}

async fn drifted_with(o: Options) -> (TestApp, Drift) {
    let app = TestApp::spawn_with(o).await;
    let deleted_id = app.seed(T1, "del@contoso.com", "Del Eted", Some("Engineer"));
    for (email, first) in [
        ("ren@contoso.com", "Ren"),
        ("dis@contoso.com", "Dis"),
        ("del@contoso.com", "Del"),
        ("ok@contoso.com", "Ok"),
    ] {
        app.hire(CONTOSO, email, first, "Person", "Engineer");
    }
    app.hire(FABRIKAM, "ana@fabrikam.com", "Ana", "Silva", "Nurse");
    app.connect_both().await;
    assert!(!app.run_once().await.failed());
    // The drift, and the resync, come long after the creates: Entra has
    // replicated them.
    app.control.replicate_now();
    let id = |upn: &str| live(&app, T1, upn).expect("in Entra").id;
    app.control
        .edit_user(
            T1,
            &id("ren@contoso.com"),
            json!({"displayName": "Renamed In Entra"}),
        )
        .unwrap();
    app.control
        .edit_user(T1, &id("dis@contoso.com"), json!({"accountEnabled": false}))
        .unwrap();
    app.control.soft_delete_user(T1, &deleted_id).unwrap();
    let stranger_id = app.seed(T1, "breakglass@contoso.com", "Break Glass", None);
    app.control.clear_requests();
    (
        app,
        Drift {
            deleted_id,
            stranger_id,
        },
    )
}

pub(crate) fn live(
    app: &TestApp,
    tenant: &str,
    upn: &str,
) -> Option<entra_daemon::emulator::EmulatedUser> {
    app.users(tenant)
        .into_iter()
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
}

fn corrected(app: &TestApp, d: &Drift) -> bool {
    let ren = live(app, T1, "ren@contoso.com");
    let dis = live(app, T1, "dis@contoso.com");
    let del = live(app, T1, "del@contoso.com");
    ren.is_some_and(|u| u.display_name.as_deref() == Some("Ren Person"))
        && dis.is_some_and(|u| u.account_enabled)
        && del.is_some_and(|u| {
            u.id != d.deleted_id && u.display_name.as_deref() == Some("Del Person")
        })
}

/// The unmanaged account and the user already in sync were never written.
fn assert_untouched(app: &TestApp, d: &Drift) {
    let ok_id = live(app, T1, "ok@contoso.com").unwrap().id;
    for w in app.writes() {
        assert!(
            !w.path.contains(&d.stranger_id),
            "unmanaged user touched: {w:?}"
        );
        assert!(!w.path.contains(&ok_id), "in-sync user touched: {w:?}");
    }
    let glass = live(app, T1, "breakglass@contoso.com").expect("still there");
    assert_eq!(glass.display_name.as_deref(), Some("Break Glass"));
    assert!(glass.account_enabled);
}

fn runs(app: &TestApp) -> Vec<AuditRow> {
    app.state().resync_runs(None, 1000).unwrap()
}

pub(crate) fn runs_with(app: &TestApp, company: i64, trigger: &str) -> usize {
    runs(app)
        .iter()
        .filter(|r| {
            r.company_id == Some(company)
                && r.detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with(&format!("trigger {trigger}")))
        })
        .count()
}

pub(crate) type Daemon = (watch::Sender<bool>, Arc<Notify>, JoinHandle<RunReport>);

/// The daemon in-process, with the notifier SIGUSR1 pokes.
pub(crate) fn start(app: &TestApp) -> Daemon {
    let (tx, rx) = watch::channel(false);
    let usr1 = Arc::new(Notify::new());
    let settings = app.settings.clone();
    let signal = usr1.clone();
    let handle = tokio::spawn(async move {
        let mut run = daemon::Run::new(settings, rx);
        run.resync_signal = signal;
        daemon::run(run).await.expect("daemon")
    });
    (tx, usr1, handle)
}

pub(crate) async fn stop((tx, _, handle): Daemon) {
    tx.send(true).unwrap();
    handle.await.unwrap();
}

#[tokio::test]
async fn resync_without_a_daemon_corrects_drift_reports_strangers_and_a_second_run_writes_nothing()
{
    let (app, d) = drifted().await;
    let out = cli(&app, &["resync", "--company", "1", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(corrected(&app, &d), "{:#?}", app.users(T1));
    assert_untouched(&app, &d);

    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &reports[0];
    assert_eq!(r["company"], 1);
    assert_eq!(r["counts"]["update"], 1, "{r:#}");
    assert_eq!(r["counts"]["reactivate"], 1);
    assert_eq!(r["counts"]["recreate"], 1);
    assert_eq!(r["counts"]["unmanaged"], 1);
    assert_eq!(r["counts"]["nothing"], 1);
    let rename = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "update")
        .unwrap();
    assert_eq!(
        rename["changes"],
        json!([{"property": "displayName", "old": "Renamed In Entra", "new": "Ren Person"}])
    );
    let stranger = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "unmanaged")
        .unwrap();
    assert_eq!(stranger["email"], "breakglass@contoso.com");

    // In sync now: the listing is the only request.
    app.control.clear_requests();
    let out = cli(&app, &["resync"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(app.writes().is_empty(), "{:#?}", app.writes());
    assert!(
        app.graph_calls().iter().all(|c| c.method == "GET"),
        "{:#?}",
        app.graph_calls()
    );

    let out = cli(&app, &["audit", "--runs", "--json"]).await;
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "one per company per run: {rows:#?}");
    assert!(rows
        .iter()
        .all(|r| r["action"] == "resync" && r["outcome"] == "ok"));
    // The deleted account is not listed: ren, dis, ok and the stranger are.
    let detail = rows[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("trigger cli; 4 Plumm users, 4 Entra users listed; recreate 1, update 1, reactivate 1, nothing 1, unmanaged 1; 3 changes queued"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let (app, d) = drifted().await;
    let out = cli(&app, &["resync", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("DRY RUN"), "{table}");
    assert!(
        table.contains("displayName: \"Renamed In Entra\" -> \"Ren Person\""),
        "{table}"
    );
    assert!(
        table.contains("unmanaged  breakglass@contoso.com"),
        "{table}"
    );
    assert!(table.contains("recreate   del@contoso.com"), "{table}");
    assert!(app.writes().is_empty(), "{:#?}", app.writes());
    assert!(!corrected(&app, &d));
    assert_eq!(app.state().pending_total().unwrap(), 0, "nothing queued");
}

#[tokio::test]
async fn resync_asks_the_running_daemon_which_corrects_the_drift() {
    let (app, d) = drifted().await;
    let daemon = start(&app);
    let out = cli(&app, &["resync", "--company", "1", "--dry-run", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reports: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["dry_run"], true);
    assert_eq!(reports[0]["counts"]["update"], 1);
    assert!(
        app.writes().is_empty(),
        "a dry run through the daemon writes nothing"
    );

    let out = cli(&app, &["resync", "--company", "1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    wait_for("the drift to be corrected", LONG, || corrected(&app, &d)).await;
    app.converged().await;
    assert_untouched(&app, &d);
    let out = cli(&app, &["resync", "--company", "9"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("company 9 is not connected"));
    stop(daemon).await;
}

#[tokio::test]
async fn sigusr1_makes_the_daemon_resync_every_connected_company() {
    let (app, d) = drifted().await;
    let fabrikam = live(&app, T2, "ana@fabrikam.com").unwrap().id;
    app.control
        .edit_user(T2, &fabrikam, json!({"jobTitle": "Surgeon"}))
        .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .arg("run")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("daemon");
    let pid = child.id().expect("pid").to_string();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The signal handlers are installed before the daemon says it runs.
    tokio::time::timeout(LONG, async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("entra-daemon running") {
                return;
            }
        }
        panic!("the daemon ended before it ran");
    })
    .await
    .expect("daemon start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let kill = |sig: &'static str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
    };
    assert!(kill("-USR1").unwrap().success());
    wait_for("the drift to be corrected", LONG, || {
        corrected(&app, &d)
            && live(&app, T2, "ana@fabrikam.com")
                .is_some_and(|u| u.job_title.as_deref() == Some("Nurse"))
    })
    .await;
    assert_untouched(&app, &d);
    assert_eq!(runs_with(&app, CONTOSO, "signal"), 1);
    assert_eq!(runs_with(&app, FABRIKAM, "signal"), 1);
    assert!(kill("-TERM").unwrap().success());
    let status = tokio::time::timeout(LONG, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn a_scheduled_resync_corrects_drift() {
    let (app, d) = drifted_with(Options {
        extra_sync: "reconcile_schedule = \"* * * * * *\"".into(),
        ..Options::default()
    })
    .await;
    let daemon = start(&app);
    wait_for("a scheduled run to correct the drift", LONG, || {
        corrected(&app, &d)
    })
    .await;
    assert!(runs_with(&app, CONTOSO, "schedule") >= 1);
    assert_untouched(&app, &d);
    stop(daemon).await;
}

#[tokio::test]
async fn a_signal_storm_runs_at_most_two_resyncs_per_company() {
    let (app, _) = drifted().await;
    let daemon = start(&app);
    // Each listing takes a while, so the storm arrives during the first run.
    app.control.inject(Fault {
        tenant: None,
        method: Some("GET".into()),
        path_contains: Some("/users".into()),
        count: 100,
        kind: FaultKind::Delay { ms: 300 },
    });
    for _ in 0..50 {
        daemon.1.notify_one();
        tokio::task::yield_now().await;
    }
    wait_for("the first signal run", LONG, || {
        runs_with(&app, CONTOSO, "signal") >= 1
    })
    .await;
    // A request queues behind whatever the storm left queued, so once it is
    // answered every run of the storm has been recorded.
    let state = app.state();
    let id = state
        .request_resync(Some(CompanyId(CONTOSO)), false, false)
        .unwrap();
    wait_for("the request to be answered", LONG, || {
        state
            .resync_request(id)
            .unwrap()
            .is_some_and(|(s, _)| s == "done")
    })
    .await;
    let n = runs_with(&app, CONTOSO, "signal");
    assert!((1..=2).contains(&n), "{n} signal runs: {:#?}", runs(&app));
    app.control.clear_faults();
    stop(daemon).await;
}

#[tokio::test]
async fn a_resync_racing_real_time_changes_ends_with_entra_equal_to_plumm() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        app.hire(
            CONTOSO,
            &format!("r{i}@contoso.com"),
            "R",
            &format!("N{i}"),
            "Eng",
        );
    }
    app.connect_both().await;
    let daemon = start(&app);
    app.converged().await;
    // The drift, and the resync, come long after the creates: Entra has
    // replicated them.
    app.control.replicate_now();
    let id = |upn: &str| live(&app, T1, upn).unwrap().id;
    app.control
        .edit_user(T1, &id("r0@contoso.com"), json!({"jobTitle": "Drifted"}))
        .unwrap();
    app.control.inject(Fault {
        tenant: Some(T1.into()),
        method: Some("GET".into()),
        path_contains: Some("/users".into()),
        count: 1,
        kind: FaultKind::Delay { ms: 200 },
    });
    daemon.1.notify_one();
    // Plumm changes while the resync lists the tenant and applies its plan.
    for i in 0..5 {
        app.plumm(&format!(
            "UPDATE users SET role = 'Lead {i}' WHERE email = 'r{i}@contoso.com'"
        ));
    }
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'r5@contoso.com'");
    app.hire(CONTOSO, "late@contoso.com", "Late", "Hire", "Eng");
    wait_for("the resync", LONG, || {
        runs_with(&app, CONTOSO, "signal") == 1
    })
    .await;
    app.converged().await;

    let conn = rusqlite::Connection::open(&app.settings.plumm.database).unwrap();
    let people: Vec<(String, String, String, String)> = conn
        .prepare("SELECT email, first_name || ' ' || last_name, role, status FROM users WHERE company_id = 1")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(people.len(), 21);
    for (email, name, role, status) in people {
        let u = live(&app, T1, &email).unwrap_or_else(|| panic!("{email} missing"));
        assert_eq!(u.display_name.as_deref(), Some(name.as_str()), "{email}");
        assert_eq!(u.job_title.as_deref(), Some(role.as_str()), "{email}");
        assert_eq!(u.account_enabled, status == "active", "{email}");
    }
    stop(daemon).await;
}
