//! `$batch` as Graph enforces it, end to end: every write item the daemon
//! batches is one Graph accepts, so a batched offboarding is never refused
//! together with the other writes in its batch.
use std::time::Duration;

use entra_daemon::store::AuditFilter;

use crate::helpers::*;

#[tokio::test]
async fn suspensions_sign_people_out_inside_a_batch_graph_accepts() {
    // Bulk requests wait this long for company in a batch: long enough that
    // sign-outs share one even on a busy machine (a lone request is sent as
    // itself, without an envelope).
    let mut app = TestApp::spawn_with(Options {
        extra_sync: "batch_linger = \"2s\"".into(),
        ..Options::default()
    })
    .await;
    // People who left before the company connected: the initial sync (bulk,
    // so its requests share batches) suspends and signs them out.
    let people = ["ann@contoso.com", "bob@contoso.com", "cat@contoso.com"];
    for p in people {
        app.seed(T1, p, p, None);
        app.plumm(&format!(
            "INSERT INTO users (company_id, email, first_name, last_name, status)
             VALUES ({CONTOSO}, '{p}', 'Former', 'Colleague', 'inactive')"
        ));
    }
    // Their Plumm changes are passed over while the company is not
    // connected, so the connect's initial sync is all there is (real-time
    // changes are sent at once, outside batches).
    app.start_daemon();
    wait_for("the unconnected changes", Duration::from_secs(10), || {
        app.audit(AuditFilter::default())
            .iter()
            .filter(|r| r.action == "skip")
            .count()
            >= people.len()
    })
    .await;
    app.connect(CONTOSO, T1).await;
    app.converged().await;

    for p in people {
        let u = app.entra(T1, p).unwrap();
        assert!(!u.account_enabled, "{p} suspended");
        assert_eq!(u.revoke_sign_in_sessions_count, 1, "{p} signed out once");
    }
    let refused: Vec<_> = app
        .batches()
        .into_iter()
        .filter(|b| b.status != 200)
        .map(|b| (b.status, body(&b)))
        .collect();
    assert!(refused.is_empty(), "Graph refused a $batch: {refused:?}");
    let revokes: Vec<_> = app
        .graph_calls()
        .into_iter()
        .filter(|r| r.path.ends_with("/revokeSignInSessions"))
        .collect();
    assert_eq!(revokes.len(), 3);
    assert!(
        revokes.iter().filter(|r| r.batch_seq.is_some()).count() >= 2,
        "sign-outs shared a $batch: {revokes:?}"
    );
    assert!(revokes.iter().all(|r| r.status == 200), "{revokes:?}");
}
