//! Certificate credentials: the daemon signs client assertions; the
//! emulator checks them as the certificate-credentials page describes.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entra_daemon::configuration::Settings;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use x509_cert::der::{pem, DecodePem, Encode};

use crate::helpers::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_connects_and_syncs_and_no_secret_is_sent() {
    let mut app = ConnectApp::spawn_with(Options {
        certificate: Some(("app-cert.pem", "app-key.pem")),
        ..Options::default()
    })
    .await;
    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, true).await;
    assert_eq!(landing.get("status"), "connected", "{landing:?}");
    app.converged().await;
    assert_eq!(app.users(T1).len(), 3);
    let token_requests: Vec<Value> = app
        .control
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/oauth2/v2.0/token") && r.status == 200)
        .filter_map(|r| r.body)
        .collect();
    assert!(!token_requests.is_empty());
    for body in token_requests {
        assert_eq!(body["client_assertion_type"], JWT_BEARER, "{body}");
        assert_eq!(body["client_assertion"], "***", "the log redacts it");
        assert!(body.get("client_secret").is_none(), "{body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_registered_on_the_app_is_reported_as_app_refused() {
    let mut app = ConnectApp::spawn_with(Options {
        certificate: Some(("other-cert.pem", "other-key.pem")),
        ..Options::default()
    })
    .await;
    let landing = app.connect_flow(CONTOSO, CONTOSO_ADMIN, true).await;
    assert_eq!(landing.get("reason"), "app_refused", "{landing:?}");
    assert!(landing.get("message").contains("Plumm support"));
    let audit = app.audit("connect");
    assert!(
        audit[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("AADSTS700027"),
        "{audit:?}"
    );
    assert!(app.state().connections().unwrap().is_empty());
    app.stop().await;
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[plumm]\ndatabase = \"p.db\"\n[state]\ndatabase = \"s.db\"\n[entra]\nclient_id = \"11111111-2222-3333-4444-555555555555\"\n\
         client_certificate_file = \"{}\"\nclient_certificate_key_file = \"{}\"\n",
        fixture("app-cert.pem").display(),
        fixture("other-key.pem").display()
    );
    let settings = Settings::parse(&text, &dir.path().join("c.toml")).unwrap();
    let err = settings.credential().unwrap_err().to_string();
    assert!(err.contains("does not belong to the certificate"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    let debug = format!("{:?}", settings.credential());
    assert!(!debug.contains("MII"), "{debug}");
}

/// A client assertion built by hand (not with the daemon's code), so the
/// emulator's checks are exercised one by one.
fn assertion(key_file: &str, cert_file: &str, alg: &str, claims: Value) -> String {
    encoded_assertion(key_file, cert_file, alg, claims, &URL_SAFE_NO_PAD)
}

/// The assertion with its segments in `b64` (with or without `=` padding).
fn encoded_assertion(
    key_file: &str,
    cert_file: &str,
    alg: &str,
    claims: Value,
    b64: &base64::engine::GeneralPurpose,
) -> String {
    let cert_pem = std::fs::read_to_string(fixture(cert_file)).unwrap();
    let cert = x509_cert::Certificate::from_pem(cert_pem.as_bytes()).unwrap();
    let x5t = URL_SAFE_NO_PAD.encode(Sha256::digest(cert.to_der().unwrap()));
    let header = json!({ "alg": alg, "typ": "JWT", "x5t#S256": x5t });
    let input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let key_pem = std::fs::read_to_string(fixture(key_file)).unwrap();
    let (_, der) = pem::decode_vec(key_pem.as_bytes()).unwrap();
    let key = RsaKeyPair::from_pkcs8(&der).unwrap();
    let mut sig = vec![0; key.public().modulus_len()];
    let padding: &'static dyn ring::signature::RsaEncoding = match alg {
        "PS256" => &RSA_PSS_SHA256,
        _ => &RSA_PKCS1_SHA256,
    };
    key.sign(
        padding,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", b64.encode(sig))
}

async fn token_with(app: &ConnectApp, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}/{T1}/oauth2/v2.0/token", app.emu.authority_host());
    let r = app.http.post(url).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_checks_signature_audience_issuer_time_and_replay() {
    let mut app = ConnectApp::spawn().await;
    app.control.grant_consent(T1).unwrap();
    let aud = format!("{}/{T1}/oauth2/v2.0/token", app.emu.authority_host());
    let id = app.client_id.clone();
    let now = now();
    let claims = |aud: &str, iss: &str, nbf: i64, exp: i64, jti: &str| json!({ "aud": aud, "iss": iss, "sub": iss, "nbf": nbf, "exp": exp, "jti": jti });
    let send = |a: String| {
        let id = id.clone();
        let app = &app;
        async move {
            token_with(
                app,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("scope", "https://graph.microsoft.com/.default"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &a),
                ],
            )
            .await
        }
    };
    let code = |v: &Value| v["error_codes"][0].as_u64().unwrap_or(0);

    let good = assertion(
        "app-key.pem",
        "app-cert.pem",
        "PS256",
        claims(&aud, &id, now, now + 600, "j1"),
    );
    let (status, body) = send(good.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    let (status, body) = send(good).await;
    assert_eq!(
        (status, code(&body)),
        (401, 700027),
        "a replayed jti: {body}"
    );

    let rs256 = assertion(
        "app-key.pem",
        "app-cert.pem",
        "RS256",
        claims(&aud, &id, now, now + 600, "j2"),
    );
    assert_eq!(send(rs256).await.0, 200, "RS256 is still accepted");

    // What Microsoft's SDKs send: the audience Microsoft documents (its own
    // https token URL for the tenant), and base64url with `=` padding.
    let documented = format!("https://login.microsoftonline.com/{T1}/oauth2/v2.0/token");
    let sdk = assertion(
        "app-key.pem",
        "app-cert.pem",
        "PS256",
        claims(&documented, &id, now, now + 600, "j2a"),
    );
    let (status, body) = send(sdk).await;
    assert_eq!(status, 200, "the documented https audience: {body}");
    let padded = encoded_assertion(
        "app-key.pem",
        "app-cert.pem",
        "PS256",
        claims(&aud, &id, now, now + 600, "j2b"),
        &base64::engine::general_purpose::URL_SAFE,
    );
    assert!(padded.contains('='), "the fixture pads: {padded}");
    let (status, body) = send(padded).await;
    assert_eq!(status, 200, "padded base64url: {body}");

    let cases = [
        (
            "expired",
            assertion(
                "app-key.pem",
                "app-cert.pem",
                "PS256",
                claims(&aud, &id, now - 900, now - 300, "j3"),
            ),
            700024,
        ),
        (
            "not yet valid",
            assertion(
                "app-key.pem",
                "app-cert.pem",
                "PS256",
                claims(&aud, &id, now + 300, now + 900, "j4"),
            ),
            700024,
        ),
        (
            "wrong audience",
            assertion(
                "app-key.pem",
                "app-cert.pem",
                "PS256",
                claims(
                    "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                    &id,
                    now,
                    now + 600,
                    "j5",
                ),
            ),
            700212,
        ),
        (
            "wrong issuer",
            assertion(
                "app-key.pem",
                "app-cert.pem",
                "PS256",
                claims(
                    &aud,
                    "00000000-0000-0000-0000-000000000001",
                    now,
                    now + 600,
                    "j6",
                ),
            ),
            700021,
        ),
        (
            "signed by another key",
            assertion(
                "other-key.pem",
                "app-cert.pem",
                "PS256",
                claims(&aud, &id, now, now + 600, "j7"),
            ),
            700027,
        ),
        (
            "unregistered certificate",
            assertion(
                "other-key.pem",
                "other-cert.pem",
                "PS256",
                claims(&aud, &id, now, now + 600, "j8"),
            ),
            700027,
        ),
        ("not a JWT", "abc.def".to_string(), 50027),
    ];
    for (what, a, expected) in cases {
        let (status, body) = send(a).await;
        assert_eq!((status, code(&body)), (401, expected), "{what}: {body}");
    }

    let ok = assertion(
        "app-key.pem",
        "app-cert.pem",
        "PS256",
        claims(&aud, &id, now, now + 600, "j9"),
    );
    let (status, body) = token_with(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", SECRET),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &ok),
        ],
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (400, 90023),
        "two credentials at once: {body}"
    );
    let (status, _) = token_with(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_assertion_type", "urn:something:else"),
            ("client_assertion", &ok),
        ],
    )
    .await;
    assert_eq!(status, 400);
    app.stop().await;
}
