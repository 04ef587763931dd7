//! SIGTERM with Graph calls in flight: nothing is lost, the process exits 0,
//! and a restart converges without a duplicate.
use crate::helpers::*;

const PEOPLE: [&str; 3] = [
    "ada.one@contoso.com",
    "bob.two@contoso.com",
    "cy.three@contoso.com",
];

/// One worker per tenant and no batching, so exactly one create is in
/// flight when the signal comes; the create is held by the emulator for
/// `delay_ms`.
async fn in_flight(delay_ms: u64) -> (OpsApp, Daemon) {
    let app = OpsApp::spawn_with(Options {
        sync: "batch = false\nrealtime_workers_per_tenant = 1",
        ..Options::default()
    })
    .await;
    app.connect(CONTOSO, T1).await;
    for p in PEOPLE {
        app.hire(CONTOSO, p);
    }
    app.delay_next(T1, "POST", "/users", delay_ms);
    let daemon = app.start();
    // The delay fault is used up when the create reaches the emulator.
    wait_for(
        "a create to be in flight",
        std::time::Duration::from_secs(15),
        || app.control.faults().is_empty(),
    )
    .await;
    (app, daemon)
}

fn created(app: &OpsApp) -> usize {
    PEOPLE
        .iter()
        .filter(|p| !app.entra(T1, p).is_empty())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_call_in_flight_finish_and_keeps_the_rest_pending() {
    let (app, daemon) = in_flight(500).await;
    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("draining"), "{out}");
    // The call in flight finished and was recorded; the others wait.
    assert_eq!(created(&app), 1, "{out}");
    assert_eq!(app.not_done(), 2, "{out}");

    let out = app.cli(&["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for p in PEOPLE {
        assert_eq!(app.entra(T1, p).len(), 1, "{p} exactly once");
    }
    assert_eq!(app.not_done(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_slower_than_the_drain_timeout_stays_pending_and_a_restart_converges() {
    // drain_timeout is 2s: the create answers after 3s.
    let (app, daemon) = in_flight(3_000).await;
    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");
    assert!(out.contains("drain timeout"), "{out}");
    assert_eq!(
        app.not_done(),
        3,
        "the unfinished change stays pending: {out}"
    );

    // Whether or not Entra completed the abandoned create, the restart
    // converges with one Entra user per person (a create that did land is
    // found by email and linked).
    let out = app.cli(&["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for p in PEOPLE {
        assert_eq!(app.entra(T1, p).len(), 1, "{p} exactly once");
    }
    assert_eq!(app.not_done(), 0);
}

/// A service stop is not a failure: systemd marks a unit failed on any
/// non-zero exit, so `systemctl stop` or `restart` exits 0 even when some
/// user was parked during the daemon's life; `run --once` still says 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_exits_0_with_a_parked_user_and_run_once_still_says_2() {
    let app = OpsApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    app.hire(CONTOSO, "good@contoso.com");
    // Parked with its reason (the status test's invalid record).
    app.hire(CONTOSO, "bad+one@contoso.com");
    let daemon = app.start();
    app.converged().await;
    let parked = app.state().parked(None).expect("parked");
    assert_eq!(parked.len(), 1, "one user parked");
    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");

    app.plumm("UPDATE users SET first_name = 'Bad' WHERE email = 'bad+one@contoso.com'");
    let out = app.cli(&["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}
