//! The state database lost, or restored from an older `entra-daemon backup`
//! taken while the daemon ran: after a restart the daemon finds what it
//! missed, with no duplicate account, every person as Plumm has them, and
//! every suspension and deletion since the backup carried out.
use std::collections::HashMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use entra_daemon::emulator::FaultKind;

use crate::helpers::*;

async fn cli(app: &TestApp, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .args(args)
        .env("ENTRA_DAEMON_PROGRESS_EVERY", "0s")
        .output()
        .await
        .expect("run the binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn hire_many(app: &TestApp, from: usize, to: usize, role: &str) {
    for i in from..to {
        app.hire(
            CONTOSO,
            &format!("p{i}@contoso.com"),
            "P",
            &format!("N{i}"),
            role,
        );
    }
}

/// What the tenant holds against what Plumm says; panics on any mismatch.
/// Returns (accounts checked, duplicates, enabled leavers).
fn assert_entra_equals_plumm(app: &TestApp, left: &[&str]) -> (usize, usize, usize) {
    let users = app.users(T1);
    let mut by_upn: HashMap<String, usize> = HashMap::new();
    for u in &users {
        *by_upn
            .entry(u.user_principal_name.to_lowercase())
            .or_default() += 1;
    }
    let duplicates = by_upn.values().filter(|n| **n > 1).count();
    let conn = rusqlite::Connection::open(&app.settings.plumm.database).unwrap();
    let people: Vec<(String, String, String)> = conn
        .prepare("SELECT email, role, status FROM users WHERE company_id = ?1")
        .unwrap()
        .query_map([CONTOSO], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (email, role, status) in &people {
        let u = app
            .entra(T1, email)
            .unwrap_or_else(|| panic!("{email} missing"));
        assert_eq!(u.account_enabled, status == "active", "{email}: {status}");
        assert_eq!(u.job_title.as_deref(), Some(role.as_str()), "{email}");
    }
    let enabled_leavers = left
        .iter()
        .filter(|e| app.entra(T1, e).is_some_and(|u| u.account_enabled))
        .count();
    assert_eq!(duplicates, 0, "duplicate accounts");
    assert_eq!(enabled_leavers, 0, "leavers still enabled");
    (people.len(), duplicates, enabled_leavers)
}

fn outbox_rows(app: &TestApp) -> i64 {
    let conn = rusqlite::Connection::open(&app.settings.plumm.database).unwrap();
    conn.query_row("SELECT COUNT(*) FROM entra_outbox", [], |r| r.get(0))
        .unwrap()
}

fn remove_state(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

#[tokio::test]
async fn a_state_database_restored_from_an_older_backup_catches_up_without_duplicates() {
    let mut app = TestApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    app.start_daemon();
    hire_many(&app, 0, 40, "Engineer");
    app.converged().await;

    // Online, while the daemon runs and Plumm keeps changing.
    let file = app.dir.path().join("state-backup.db");
    let file_arg = file.to_str().unwrap();
    hire_many(&app, 40, 45, "Engineer");
    let started = Instant::now();
    let out = cli(&app, &["backup", file_arg]).await;
    let backup_took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("backed up") && stdout.contains(file_arg),
        "{stdout}"
    );
    assert!(
        stderr.contains("backup: copying the state database: "),
        "{stderr}"
    );
    assert!(stderr.contains("pages (100%)"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the backup holds the audit log: {mode:o}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(app.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let again = cli(&app, &["backup", file_arg]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists; pass --force"));
    assert!(cli(&app, &["backup", "--force", file_arg])
        .await
        .status
        .success());
    app.converged().await;

    // After the backup: hires, changes, suspensions, deletions, handed
    // over from Plumm's outbox but not yet in Entra (Graph refuses writes)
    // when the state database is replaced: they exist nowhere else.
    for method in ["POST", "PATCH"] {
        app.fail_next(
            Some(T1),
            method,
            "/users",
            100_000,
            FaultKind::Status {
                status: 503,
                retry_after: None,
            },
        );
    }
    hire_many(&app, 45, 60, "Engineer");
    app.plumm("UPDATE users SET role = 'Lead' WHERE email IN ('p1@contoso.com', 'p2@contoso.com', 'p50@contoso.com')");
    app.plumm("UPDATE users SET status = 'inactive' WHERE email IN ('p3@contoso.com', 'p4@contoso.com', 'p55@contoso.com')");
    app.plumm("DELETE FROM users WHERE email IN ('p5@contoso.com', 'p56@contoso.com')");
    wait_for("the changes handed over", Duration::from_secs(15), || {
        outbox_rows(&app) == 0 && app.state().pending_total().unwrap() >= 20
    })
    .await;
    app.stop_daemon().await;
    app.control.clear_faults();
    assert!(
        app.entra(T1, "p3@contoso.com").unwrap().account_enabled,
        "not yet applied"
    );

    // The state database is replaced by the older backup.
    let state_path = app.settings.state.database.clone();
    remove_state(&state_path);
    std::fs::copy(&file, &state_path).unwrap();
    // One more suspension while the daemon is down.
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'p6@contoso.com'");
    let writes_before = app.writes().len();

    let once = cli(&app, &["run", "--once"]).await;
    let log = text(&once.stderr);
    assert!(
        log.contains("the state database is behind Plumm's hand-over")
            && log.contains("every connected company (1)"),
        "{log}"
    );
    // A `--once` run (from cron, say) resyncs itself: the suspensions
    // missed with the newer state database are carried out now.
    for leaver in ["p3@contoso.com", "p55@contoso.com", "p6@contoso.com"] {
        assert!(
            !app.entra(T1, leaver).unwrap().account_enabled,
            "{leaver} suspended by run --once: {log}"
        );
    }
    let restarted = Instant::now();
    app.start_daemon();
    wait_for("the hand-over resync", Duration::from_secs(15), || {
        app.state().resync_runs(None, 100).unwrap().iter().any(|r| {
            r.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("trigger handover"))
        })
    })
    .await;
    app.converged().await;
    let caught_up = restarted.elapsed();
    let left = [
        "p3@contoso.com",
        "p4@contoso.com",
        "p5@contoso.com",
        "p55@contoso.com",
        "p56@contoso.com",
        "p6@contoso.com",
    ];
    let (people, dups, enabled) = assert_entra_equals_plumm(&app, &left);
    let writes = app.writes().len() - writes_before;
    // A second start finds both databases in step: no second resync.
    app.stop_daemon().await;
    let calm = cli(&app, &["run", "--once"]).await;
    assert!(
        !text(&calm.stderr).contains("behind"),
        "{}",
        text(&calm.stderr)
    );
    println!(
        "restore campaign: backup {backup_took:?}; after restoring it ({} hires, 3 changes, \
         4 suspensions, 2 deletions since), caught up in {caught_up:?} with {writes} Graph writes: \
         {people} people checked, {dups} duplicates, {enabled} leavers enabled",
        15
    );
}

#[tokio::test]
async fn a_lost_state_database_is_detected_and_reconnecting_links_everyone_again() {
    let mut app = TestApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    app.start_daemon();
    hire_many(&app, 0, 20, "Engineer");
    app.converged().await;
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'p1@contoso.com'");
    app.converged().await;
    app.stop_daemon().await;

    remove_state(&app.settings.state.database);
    app.plumm("UPDATE users SET status = 'inactive' WHERE email = 'p2@contoso.com'");
    hire_many(&app, 20, 25, "Engineer");
    assert!(cli(&app, &["migrate"]).await.status.success());
    let once = cli(&app, &["run", "--once"]).await;
    let log = text(&once.stderr);
    assert!(
        log.contains("the state database is behind Plumm's hand-over")
            && log.contains("no company is connected in this state database: reconnect"),
        "{log}"
    );
    let started = Instant::now();
    app.connect(CONTOSO, T1).await;
    app.start_daemon();
    app.converged().await;
    let left = ["p1@contoso.com", "p2@contoso.com"];
    let (people, dups, enabled) = assert_entra_equals_plumm(&app, &left);
    app.stop_daemon().await;
    println!(
        "lost state database: reconnected and converged in {:?}: {people} people, \
         {dups} duplicates, {enabled} leavers enabled",
        started.elapsed()
    );
}
