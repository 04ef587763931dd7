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
