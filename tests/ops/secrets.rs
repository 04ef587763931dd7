//! A realistic run of the daemon binary at debug level (connect flow,
//! creates with passwords, a 429, a reload, a shutdown): no configured
//! secret, token, password, state or signature appears in anything it
//! prints, and its JSON lines about users say who and which request.
use std::collections::HashMap;

use entra_daemon::emulator::FaultKind;
use entra_daemon::http::signed::sign_query;
use url::Url;

use crate::helpers::*;

fn location(r: &reqwest::Response) -> Url {
    let raw = r.headers()["location"].to_str().unwrap();
    Url::parse(raw).unwrap()
}

/// The Store's Connect button, Microsoft's consent page (accepted by
/// `admin`), and the callback. Returns the state and the link's signature.
async fn connect_flow(app: &OpsApp, base: &str, company: i64, admin: &str) -> Vec<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let link = sign_query(
        &app.key,
        company,
        "store.admin@plumm.example",
        chrono::Utc::now().timestamp() + 300,
    );
    let sig = link.rsplit_once("&sig=").unwrap().1.to_string();
    let r = http
        .get(format!("{base}/connect?{link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let consent = location(&r);
    let q: HashMap<String, String> = consent.query_pairs().into_owned().collect();
    let mut form: Vec<(&str, &str)> = ["client_id", "redirect_uri", "scope", "state"]
        .iter()
        .map(|k| (*k, q.get(*k).map(String::as_str).unwrap_or_default()))
        .collect();
    form.push(("account", admin));
    form.push(("action", "accept"));
    let r = http
        .post(consent.as_str())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let r = http.get(location(&r).as_str()).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let landing = location(&r);
    assert!(
        landing
            .query()
            .unwrap_or_default()
            .contains("status=connected"),
        "{landing}"
    );
    vec![q["state"].clone(), sig]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_output_of_a_full_debug_run() {
    let app = OpsApp::spawn_with(Options {
        log_format: "json",
        fabrikam_consented: false,
        ..Options::default()
    })
    .await;
    app.connect(CONTOSO, T1).await;
    let daemon = app.start();
    let base = daemon.base().await;
    app.control
        .add_redirect_uri(&app.client_id, &format!("{base}/oauth/callback"));
    let mut secrets = connect_flow(&app, &base, FABRIKAM, FABRIKAM_ADMIN).await;

    app.fault(
        T1,
        "POST",
        "/users",
        FaultKind::Status {
            status: 429,
            retry_after: Some(0.05),
        },
    );
    app.hire(CONTOSO, "ada@contoso.com");
    app.hire(CONTOSO, "grace@contoso.com");
    app.hire(FABRIKAM, "lidia@fabrikam.com");
    app.converged().await;
    app.plumm("UPDATE users SET role = 'Lead' WHERE email = 'ada@contoso.com'");
    app.plumm("DELETE FROM users WHERE email = 'grace@contoso.com'");
    app.converged().await;
    daemon.signal("HUP");
    daemon.wait_output("configuration reloaded").await;
    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");

    secrets.extend([SECRET.to_string(), STORE_KEY.to_string()]);
    let seen = app.control.secrets_seen();
    assert!(
        seen.len() >= 3,
        "tokens and passwords were issued: {seen:?}"
    );
    secrets.extend(seen);
    for s in &secrets {
        assert!(s.len() >= 8, "a meaningful secret: {s}");
        assert!(
            !out.contains(s.as_str()),
            "a secret reached the output: {s}"
        );
    }

    // Every line is a JSON object; lines about a user's write say who,
    // where and which Graph request.
    let mut about_users = 0;
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v.get("user").is_some() && v.get("action").is_some() {
            about_users += 1;
            for field in ["company", "tenant", "request_id"] {
                assert!(v.get(field).is_some(), "{field} missing: {line}");
            }
        }
    }
    assert!(about_users >= 4, "{out}");
    assert!(
        out.contains("throttled") || out.contains("429"),
        "the 429 was logged: {out}"
    );
}
