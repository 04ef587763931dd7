//! Licence errors Entra reports on the people a rule puts in a licensed
//! group: a resync reads them from its listing, `status` names them and
//! what to do, `status --user` shows the person's with the group, the
//! audit log marks when one appears and clears; the next resync after
//! licences were bought clears them.
use entra_daemon::emulator::SeedSku;
use serde_json::Value;

use crate::group_helpers::*;
use crate::helpers::*;

const E3: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";

fn hire(app: &TestApp, i: usize) {
    app.hire(
        CONTOSO,
        &format!("p{i}@contoso.com"),
        "Person",
        &format!("N{i}"),
        "Nurse",
    );
}

async fn json_of(app: &TestApp, args: &[&str]) -> (Option<i32>, Value) {
    let out = cli(app, args).await;
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

async fn resync(app: &TestApp) {
    let out = cli(app, &["resync", "--company", &CONTOSO.to_string()]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn licence_rows(app: &TestApp, email: &str) -> Vec<(String, String)> {
    app.audit_for(email)
        .into_iter()
        .filter(|r| r.action.starts_with("licence_error"))
        .map(|r| (r.action, r.outcome))
        .collect()
}

#[tokio::test]
async fn a_licence_beyond_the_units_shows_in_status_until_a_resync_after_more_are_bought() {
    let mut app = TestApp::spawn().await;
    grant_groups(&app);
    let sku = SeedSku {
        sku_id: E3.into(),
        sku_part_number: "ENTERPRISEPACK".into(),
        units: 2,
    };
    app.control.set_sku(T1, sku).unwrap();
    app.connect(CONTOSO, T1).await;
    app.start_daemon_with(&format!(
        "[[groups]]\ncompany = {CONTOSO}\nname = \"Licence E3\"\n"
    ));
    hire(&app, 0);
    hire(&app, 1);
    app.converged().await;
    // The admin licenses the group the daemon made; a third hire joins it.
    let group = app
        .control
        .groups(T1)
        .into_iter()
        .find(|g| g.display_name == "Licence E3")
        .expect("the managed group")
        .id;
    app.control.assign_group_licence(T1, &group, E3).unwrap();
    hire(&app, 2);
    app.converged().await;
    app.stop_daemon().await;
    app.control.replicate_now();
    let (code, _) = json_of(&app, &["status", "--json"]).await;
    assert_eq!(code, Some(0), "nothing is known before a resync reads it");

    app.control.clear_requests();
    resync(&app).await;
    assert!(
        listing_reads_licences(&app),
        "the listing selects licenseAssignmentStates"
    );
    let (code, status) = json_of(&app, &["status", "--json"]).await;
    assert_eq!(code, Some(2), "needs attention: {status:#}");
    assert_eq!(status["companies"][0]["licence_errors"], 1);
    let attention = status["needs_attention"].as_array().unwrap();
    let a = attention
        .iter()
        .find(|a| a["kind"] == "licence_errors")
        .unwrap_or_else(|| panic!("{status:#}"));
    let message = a["message"].as_str().unwrap();
    for part in [
        "1 person has licence errors in Entra",
        "CountViolation: buy more licences or free some",
        E3,
        "\"Licence E3\"",
        "status --user",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    let text = String::from_utf8_lossy(&cli(&app, &["status"]).await.stdout).to_string();
    assert!(text.contains("licence errors 1"), "{text}");

    let third = app.plumm_id("p2@contoso.com").to_string();
    let (_, person) = json_of(&app, &["status", "--user", &third, "--json"]).await;
    let errors = person["licence_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{person:#}");
    assert_eq!(errors[0]["error"], "CountViolation");
    assert_eq!(errors[0]["state"], "Error");
    assert_eq!(errors[0]["sku_id"], E3);
    assert_eq!(errors[0]["group_id"], group.as_str());
    assert_eq!(errors[0]["group_name"], "Licence E3");
    let first = app.plumm_id("p0@contoso.com").to_string();
    let (_, person) = json_of(&app, &["status", "--user", &first, "--json"]).await;
    assert_eq!(person["licence_errors"], serde_json::json!([]), "licensed");
    let text =
        String::from_utf8_lossy(&cli(&app, &["status", "--user", &third]).await.stdout).to_string();
    assert!(
        text.contains("licence error CountViolation: SKU") && text.contains("\"Licence E3\""),
        "{text}"
    );
    let audit = licence_rows(&app, "p2@contoso.com");
    assert_eq!(audit, [("licence_error".into(), "skipped".into())]);

    // Another resync with the error unchanged audits nothing new.
    resync(&app).await;
    assert_eq!(licence_rows(&app, "p2@contoso.com").len(), 1);

    // The admin buys a licence (and the group is reprocessed): the next
    // resync clears it.
    app.control.set_sku_units(T1, E3, 3).unwrap();
    resync(&app).await;
    let (code, status) = json_of(&app, &["status", "--json"]).await;
    assert_eq!(code, Some(0), "{status:#}");
    assert_eq!(status["companies"][0]["licence_errors"], 0);
    let (_, person) = json_of(&app, &["status", "--user", &third, "--json"]).await;
    assert_eq!(person["licence_errors"], serde_json::json!([]));
    let audit = licence_rows(&app, "p2@contoso.com");
    assert_eq!(audit[1], ("licence_error_cleared".into(), "ok".into()));
}

#[tokio::test]
async fn without_group_rules_the_listing_reads_no_licences() {
    let app = TestApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    hire(&app, 0);
    app.run_once().await;
    app.control.replicate_now();
    app.control.clear_requests();
    resync(&app).await;
    assert!(!listing_reads_licences(&app));
}

/// Whether the resync's user listing selected `licenseAssignmentStates`.
fn listing_reads_licences(app: &TestApp) -> bool {
    let listing = app
        .graph_calls()
        .into_iter()
        .find(|c| c.method == "GET" && c.path == "/v1.0/users")
        .expect("the listing");
    listing
        .query
        .as_deref()
        .unwrap_or("")
        .contains("licenseAssignmentStates")
}
