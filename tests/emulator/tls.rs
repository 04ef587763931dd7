//! The TLS mode Microsoft's SDKs need: https URLs everywhere the emulator
//! names itself, a certificate only its own CA vouches for, and the faults
//! working as over plain http.

use std::time::Duration;

use crate::helpers::*;
use entra_daemon::emulator::{Fault, FaultKind, RunningEmulator};
use entra_daemon::tools::world;
use serde_json::Value;

async fn start_tls() -> RunningEmulator {
    world::serve_tls(config())
        .await
        .expect("spawn emulator over https")
}

/// A client that trusts the emulator's CA and nothing else of ours.
fn trusting(emu: &RunningEmulator) -> reqwest::Client {
    let pem = emu.ca_pem().expect("a TLS emulator hands out its CA");
    let ca = reqwest::Certificate::from_pem(pem.as_bytes()).expect("CA PEM");
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .add_root_certificate(ca)
        .build()
        .expect("client")
}

async fn tls_token(emu: &RunningEmulator, c: &reqwest::Client) -> String {
    let r = c
        .post(format!(
            "{}/{TENANT_A}/oauth2/v2.0/token",
            emu.authority_host()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn plain_http_is_the_default_and_has_no_ca() {
    let emu = start(config()).await;
    assert!(emu.authority_host().starts_with("http://127.0.0.1:"));
    assert!(emu.ca_pem().is_none());
}

#[tokio::test]
async fn tls_mode_serves_https_urls_under_its_own_ca() {
    let emu = start_tls().await;
    let base = emu.authority_host();
    assert_eq!(base, format!("https://127.0.0.1:{}", emu.addr.port()));
    assert_eq!(emu.graph_base_url(), format!("{base}/v1.0"));

    // A client with only the public roots refuses the certificate.
    let untrusting = http().get(format!("{base}/v1.0/users")).send().await;
    let e = untrusting.expect_err("the emulator's certificate is not publicly trusted");
    assert!(e.is_connect(), "{e:?}");
    // Plain http to the TLS port gets no answer.
    let plain = http()
        .get(format!("http://127.0.0.1:{}/v1.0/users", emu.addr.port()))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    let c = trusting(&emu);
    let doc: Value = c
        .get(format!(
            "{base}/{TENANT_A}/v2.0/.well-known/openid-configuration"
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    let token_endpoint = format!("{base}/{TENANT_A}/oauth2/v2.0/token");
    assert_eq!(doc["token_endpoint"], token_endpoint.as_str());
    assert_eq!(doc["issuer"], format!("{base}/{TENANT_A}/v2.0").as_str());

    let token = tls_token(&emu, &c).await;
    let r = c
        .get(format!("{base}/v1.0/users?$top=1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert!(v["@odata.context"]
        .as_str()
        .is_some_and(|c| c.starts_with(&format!("{base}/v1.0/$metadata"))));
}

#[tokio::test]
async fn a_drop_fault_closes_a_tls_connection_without_an_answer() {
    let emu = start_tls().await;
    let c = trusting(&emu);
    let token = tls_token(&emu, &c).await;
    emu.control().inject(Fault {
        tenant: None,
        method: None,
        path_contains: Some("/users".into()),
        count: 1,
        kind: FaultKind::Drop,
    });
    let url = format!("{}/users", emu.graph_base_url());
    let e = c
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect_err("the connection must be dropped");
    assert!(!e.is_timeout(), "{e:?}");
    let r = c.get(&url).bearer_auth(&token).send().await.expect("next");
    assert_eq!(r.status(), 200);
    let log = emu.control().requests();
    assert!(log
        .iter()
        .any(|r| r.status == 0 && r.fault.as_deref() == Some("drop")));
}
