//! Secrets (client secret, Store signing key, certificate key, tokens,
//! state values, link signatures) never reach logs, audit rows, pages or
//! `Debug` output.
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_audit_rows_or_debug_output() {
    let mut app = ConnectApp::spawn().await;
    let link = app.signed(CONTOSO, "store.admin@plumm.example");
    let sig = link.rsplit_once("&sig=").unwrap().1.to_string();
    let consent = app.start_connect(CONTOSO).await;
    let state: String = consent
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let callback = app.answer_consent(&consent, CONTOSO_ADMIN, true).await;
    assert_eq!(
        app.follow_callback(&callback).await.get("status"),
        "connected"
    );
    // A replay and a forged link produce log lines too.
    let _ = app.get(callback.as_str()).await;
    let _ = app
        .get(&format!(
            "{}/connect?{}",
            app.base,
            link.replace("company=1", "company=9")
        ))
        .await;
    app.converged().await;
    let disconnect = format!("{}/disconnect?{}", app.base, app.signed(CONTOSO, "a@b.com"));
    app.http.post(&disconnect).send().await.unwrap();
    app.stop().await;

    let audit = serde_json::to_string(&app.state().audit(&Default::default()).unwrap()).unwrap();
    let states_table = {
        let conn = rusqlite::Connection::open(&app.settings.state.database).unwrap();
        let rows: Vec<String> = conn
            .prepare("SELECT state_hash || company_id || admin_email FROM oauth_states")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.join("\n")
    };
    let debug = format!("{:?}\n{:?}", app.settings, app.key);
    let emulator_log = serde_json::to_string(&app.control.requests()).unwrap();
    let logs = captured_logs();
    assert!(
        logs.contains("company connected"),
        "logs were captured: {logs}"
    );
    for (name, haystack) in [
        ("logs", &logs),
        ("audit rows", &audit),
        ("oauth_states", &states_table),
        ("Debug output", &debug),
        ("emulator request log", &emulator_log),
    ] {
        for (what, secret) in [
            ("client secret", SECRET),
            ("store signing key", STORE_KEY),
            ("state", state.as_str()),
            ("link signature", sig.as_str()),
        ] {
            assert!(
                !haystack.contains(secret),
                "the {what} appears in the {name}"
            );
        }
    }
    assert!(!logs.contains("emu."), "no access token in the logs");
}
