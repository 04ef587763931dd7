//! `/metrics` of a running daemon after a known workload.
use entra_daemon::emulator::FaultKind;

use crate::helpers::*;

fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map(|l| l[series.len() + 1..].trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_pushes_throttling_and_retries_of_a_known_workload() {
    let app = OpsApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    app.connect(FABRIKAM, T2).await;
    app.fault(
        T2,
        "POST",
        "/users",
        FaultKind::Status {
            status: 429,
            retry_after: Some(0.05),
        },
    );
    let daemon = app.start();
    let base = daemon.metrics_base().await;
    app.hire(CONTOSO, "ada@contoso.com");
    app.hire(CONTOSO, "grace@contoso.com");
    app.hire(FABRIKAM, "lidia@fabrikam.com");
    app.converged().await;

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let text = get("/metrics").await.unwrap().text().await.unwrap();
    let expect = [
        ("entra_pushes_total{action=\"create\",outcome=\"ok\"}", "3"),
        (
            "entra_pushes_total{action=\"create\",outcome=\"retry\"}",
            "1",
        ),
        ("entra_graph_retries_total{action=\"create\"}", "1"),
        ("entra_graph_throttled_total{method=\"POST\"}", "1"),
        // Three creates and the one refused with 429.
        (
            "entra_graph_request_duration_seconds_count{method=\"POST\"}",
            "4",
        ),
        ("entra_pending_changes{company=\"1\"}", "0"),
        ("entra_pending_changes{company=\"2\"}", "0"),
        ("entra_oldest_pending_age_seconds{company=\"1\"}", "0.0"),
        ("entra_parked_users{company=\"1\"}", "0"),
        ("entra_tenants{state=\"connected\"}", "2"),
        ("entra_tenants{state=\"quarantined\"}", "0"),
        ("entra_outbox_rows", "0"),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    let last = sample(&text, "entra_last_success_timestamp_seconds{company=\"2\"}")
        .and_then(|v| v.parse::<f64>().ok())
        .expect("last success of company 2");
    assert!((last - chrono::Utc::now().timestamp() as f64).abs() < 600.0);

    daemon.signal("TERM");
    let (status, out) = daemon.exit().await;
    assert_eq!(status.code(), Some(0), "{out}");
}

/// Health and metrics are private: on their own listener, with or without
/// the connect server, and never on the public one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics_are_on_the_private_listener_only() {
    let app = OpsApp::spawn().await;
    app.connect(CONTOSO, T1).await;
    let daemon = app.start();
    let public = daemon.base().await;
    let private = daemon.metrics_base().await;
    assert_ne!(public, private);
    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = http.get(format!("{public}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "the public server does not serve {path}");
        let r = http.get(format!("{private}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "the private listener serves {path}");
    }
    daemon.signal("TERM");
    assert_eq!(daemon.exit().await.0.code(), Some(0));

    // Without [http]: no connect server, the probes still answer.
    let app = OpsApp::spawn_with(Options {
        connect_server: false,
        ..Options::default()
    })
    .await;
    let daemon = app.start();
    let private = daemon.metrics_base().await;
    let r = http.get(format!("{private}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = http.get(format!("{private}/metrics")).send().await.unwrap();
    assert!(text.text().await.unwrap().contains("entra_tenants"));
    assert!(!daemon.output().contains("connect server listening"));
    daemon.signal("TERM");
    assert_eq!(daemon.exit().await.0.code(), Some(0));
}
