//! The command line as an operator uses it.
use std::process::Output;

use entra_daemon::emulator::FaultKind;

use crate::helpers::*;

async fn cli(app: &TestApp, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .await
        .expect("run the binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn migrate_is_idempotent_and_installs_the_outbox_triggers() {
    let app = TestApp::spawn().await; // already migrated once
    let out = cli(&app, &["migrate"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("up to date"),
        "{}",
        text(&out.stdout)
    );
    app.hire(CONTOSO, "x@contoso.com", "X", "Y", "Z");
    app.plumm("UPDATE users SET role = 'W'");
    app.plumm("DELETE FROM users");
    let conn = rusqlite::Connection::open(&app.settings.plumm.database).unwrap();
    let ops: Vec<String> = conn
        .prepare("SELECT op FROM entra_outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ops, ["insert", "update", "delete"]);
}

#[tokio::test]
async fn run_once_exits_zero_when_converged_and_two_when_a_user_is_parked() {
    let app = TestApp::spawn().await;
    app.connect_both().await;
    app.hire(CONTOSO, "ok@contoso.com", "O", "K", "Fine");
    let out = cli(&app, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(app.entra(T1, "ok@contoso.com").is_some());

    app.hire(CONTOSO, "bad+one@contoso.com", "B", "Ad", "Oops");
    let out = cli(&app, &["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let out = cli(&app, &["audit", "--failed", "--json"]).await;
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["email"], "bad+one@contoso.com");
    assert_eq!(rows[0]["outcome"], "parked");

    let out = cli(&app, &["audit", "--email", "OK@contoso.com"]).await;
    let table = text(&out.stdout);
    assert!(
        table.contains("create") && table.contains("ok@contoso.com"),
        "{table}"
    );
    assert!(!table.contains("bad+one"), "{table}");
}

#[tokio::test]
async fn a_bad_config_is_refused_with_the_key_and_the_reason() {
    let app = TestApp::spawn().await;
    let bad = app.dir.path().join("bad.toml");
    let original = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &bad,
        original.replace("on_delete = \"suspend\"", "on_delete = \"purge\""),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .args(["--config", bad.to_str().unwrap(), "check-config"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("purge") && err.contains("on_delete"), "{err}");

    let out = cli(&app, &["check-config"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn connect_refuses_a_tenant_that_has_not_consented_and_records_nothing() {
    let app = TestApp::spawn().await;
    app.control.set_consent(T2, false).unwrap();
    let out = cli(&app, &["connect", "--company", "2", "--tenant", T2]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(T2) && err.contains("could not be verified"),
        "{err}"
    );
    assert!(app
        .state()
        .connection(entra_daemon::domain::CompanyId(2))
        .unwrap()
        .is_none());

    let out = cli(&app, &["connect", "--company", "1", "--tenant", T1]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(
        &app,
        &["connect", "--company", "2", "--tenant", T1, "--no-verify"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "one tenant, one company");
    assert!(text(&out.stderr).contains("already connected to company 1"));
    let out = cli(&app, &["disconnect", "--company", "1"]).await;
    assert!(out.status.success());
    assert!(app
        .state()
        .connection(entra_daemon::domain::CompanyId(1))
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn no_secret_password_or_token_reaches_logs_or_the_audit_log() {
    let app = TestApp::spawn().await;
    app.connect_both().await;
    app.fail_next(
        Some(T1),
        "POST",
        "/users",
        1,
        FaultKind::Status {
            status: 429,
            retry_after: Some(0.05),
        },
    );
    app.hire(CONTOSO, "s@contoso.com", "S", "T", "U");
    app.hire(CONTOSO, "bad+s@contoso.com", "S", "T", "U");
    let out = cli(&app, &["run", "--once"]).await;
    let logs = text(&out.stderr) + &text(&out.stdout);
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "debug logs were produced: {logs}"
    );
    let audit = cli(&app, &["audit", "--json"]).await;
    let audit = text(&audit.stdout);
    for haystack in [&logs, &audit] {
        assert!(!haystack.contains(SECRET), "client secret leaked");
        assert!(
            !haystack.to_lowercase().contains("bearer "),
            "a token leaked"
        );
        assert!(
            !haystack.contains("access_token"),
            "a token response leaked"
        );
        assert!(!haystack.contains("password\":"), "a password leaked");
    }
    // The passwords the daemon generated never appear either: the emulator
    // saw them, the daemon kept none.
    assert!(app
        .writes()
        .iter()
        .any(|w| w.method == "POST" && w.status == 201));
    let debug = format!("{:?}", app.settings);
    assert!(!debug.contains(SECRET));
}
