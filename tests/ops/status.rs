//! `entra-daemon status`: one line per company, and an exit code scripts
//! and monitoring can use.
use entra_daemon::domain::CompanyId;
use entra_daemon::store::after;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_zero_when_all_is_well_and_two_when_something_needs_attention() {
    let app = OpsApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    app.connect(FABRIKAM, T2).await;
    app.hire(CONTOSO, "fine@contoso.com");
    assert_eq!(app.cli(&["run", "--once"]).await.status.code(), Some(0));

    let out = app.cli(&["status"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(
        lines.contains(&format!("company 1  tenant {T1}  connected  pending 0")),
        "{lines}"
    );
    assert!(lines.contains("last success 20"), "{lines}");

    // A parked user needs attention.
    app.hire(CONTOSO, "bad+one@contoso.com");
    assert_eq!(app.cli(&["run", "--once"]).await.status.code(), Some(2));
    let out = app.cli(&["status"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let lines = text(&out.stdout);
    assert!(lines.contains("parked 1"), "{lines}");
    assert!(
        lines.contains("needs attention: company 1 parked_users"),
        "{lines}"
    );
    assert!(lines.contains("last error 20"), "{lines}");

    // So does a quarantined tenant, with its reason.
    app.state()
        .quarantine(
            CompanyId(FABRIKAM),
            "consent revoked",
            &after(std::time::Duration::from_secs(60)),
        )
        .unwrap();
    let out = app.cli(&["status", "--json"]).await;
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fabrikam = &json["companies"][1];
    assert_eq!(fabrikam["company"], FABRIKAM);
    assert_eq!(fabrikam["state"], "quarantined");
    assert_eq!(fabrikam["reason"], "consent revoked");
    let kinds: Vec<&str> = json["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["parked_users", "quarantined"]);
    let out = app.cli(&["status"]).await;
    assert!(
        text(&out.stdout).contains("quarantined (needs re-consent: consent revoked)"),
        "{}",
        text(&out.stdout)
    );
}

/// A state database that is not a database: the error names the file and
/// says SQLite's reason once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_state_database_is_reported_once_with_its_path() {
    let app = OpsApp::spawn().await;
    let path = app.settings.state.database.clone();
    std::fs::write(&path, vec![0x5a; 4096]).unwrap();
    let out = app.cli(&["status"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(line.contains(&path.display().to_string()), "{err}");
    assert_eq!(line.matches("not a database").count(), 1, "{err}");
}
