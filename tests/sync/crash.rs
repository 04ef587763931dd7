//! `kill -9` at any instant, then a restart: no change lost, no duplicate;
//! and a second daemon on the same state is refused.
use std::time::Duration;

use entra_daemon::domain::PlummUserId;

use crate::helpers::*;

#[tokio::test]
async fn kill_9_at_random_instants_loses_nothing_and_creates_no_duplicate() {
    // Replication lag makes the worst case likely: killed after Graph
    // created a user but before the link was stored, then the lookup on
    // restart does not see that user yet.
    let mut app = TestApp::spawn_with(Options {
        replication_delay_ms: 250,
        ..Options::default()
    })
    .await;
    app.connect_both().await;
    for i in 0..24 {
        let (company, domain) = if i % 2 == 0 {
            (CONTOSO, "contoso.com")
        } else {
            (FABRIKAM, "fabrikam.com")
        };
        app.hire(
            company,
            &format!("p{i}@{domain}"),
            "Person",
            &format!("N{i}"),
            "Starter",
        );
    }
    let log = std::fs::File::create(app.dir.path().join("crash-rounds.log")).unwrap();
    for round in 0..6u32 {
        let seen = app.writes().len();
        let mut child = spawn_daemon_process(&app, log.try_clone().unwrap());
        // Kill after a few more writes reached Graph: a different instant each round.
        let target = seen + 2 + round as usize;
        wait_for(
            "the daemon to make progress",
            Duration::from_secs(10),
            || app.writes().len() >= target || app.state().pending_total().unwrap_or(1) == 0,
        )
        .await;
        child.start_kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
        child.wait().await.expect("reaped");
        // Plumm keeps changing while the daemon is down.
        app.plumm(&format!(
            "UPDATE users SET role = 'Round {round}' WHERE id % 3 = {}",
            round % 3
        ));
    }
    app.start_daemon();
    app.converged().await;
    app.stop_daemon().await;

    let conn = rusqlite::Connection::open(&app.settings.plumm.database).unwrap();
    let mut stmt = conn.prepare("SELECT id, email, role FROM users").unwrap();
    let people: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let state = app.state();
    // Graph itself refuses a second account with the same UPN; what shows a
    // mishandled refusal is a parked user (or a missing link, below).
    assert!(
        state.parked(None).unwrap().is_empty(),
        "{:#?}",
        state.parked(None)
    );
    for (id, email, role) in &people {
        let tenant = if email.ends_with("contoso.com") {
            T1
        } else {
            T2
        };
        let same: Vec<_> = app
            .users(tenant)
            .into_iter()
            .filter(|u| u.user_principal_name == *email)
            .collect();
        assert_eq!(same.len(), 1, "{email} exists exactly once");
        assert_eq!(
            same[0].job_title.as_deref(),
            Some(role.as_str()),
            "{email} has the latest role"
        );
        let link = state.link(PlummUserId(*id)).unwrap().expect("linked");
        assert_eq!(link.entra_id.0, same[0].id);
    }
    assert_eq!(app.users(T1).len() + app.users(T2).len(), people.len());
}

#[tokio::test]
async fn a_second_daemon_on_the_same_state_is_refused() {
    let mut app = TestApp::spawn().await;
    app.start_daemon();
    // Held, not merely created: the file exists a moment before the lock.
    let lock = app.dir.path().join("state.db.lock");
    wait_for(
        "the first daemon to hold the lock",
        Duration::from_secs(5),
        || {
            std::fs::File::open(&lock)
                .is_ok_and(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
        },
    )
    .await;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let second =
        entra_daemon::daemon::run_once(entra_daemon::daemon::Run::new(app.settings.clone(), rx))
            .await;
    let err = second.expect_err("refused").to_string();
    assert!(err.contains("already running"), "{err}");
    app.stop_daemon().await;
}
