//! Shared helpers for the emulator integration tests.
#![allow(dead_code)]

use std::time::Duration;

use entra_daemon::emulator::{EmulatorConfig, RunningEmulator, TenantSpec};
use entra_daemon::tools::world::{self, tenant, World};
use serde_json::{json, Value};

pub const TENANT_A: &str = "11111111-1111-4111-8111-111111111111";
pub const TENANT_B: &str = "22222222-2222-4222-8222-222222222222";
pub const CLIENT_ID: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
pub const SECRET: &str = "s3cret~Value.1";
pub const GOOD_PASSWORD: &str = "xWwvJ]6NMw+bWH-d";

/// The world's emulator alone: the app, Contoso (with its
/// `.onmicrosoft.com` name) and Fabrikam (`fabrikam.com` only). Without the
/// default replication lag: these tests look at one rule at a time, and
/// `queries.rs` tests the lag itself.
pub fn config() -> EmulatorConfig {
    let mut cfg = World::builder()
        .client_id(CLIENT_ID)
        .client_secret(SECRET)
        .tenant(tenant(TENANT_A, "contoso.com"))
        .tenant(TenantSpec {
            domains: vec!["fabrikam.com".into()],
            ..tenant(TENANT_B, "fabrikam.com")
        })
        .emulator_config();
    cfg.replication_delay_ms = 0;
    cfg
}

pub async fn start(cfg: EmulatorConfig) -> RunningEmulator {
    world::serve(cfg).await.expect("spawn emulator")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub async fn token_response(
    emu: &RunningEmulator,
    tenant: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http()
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/token",
            emu.authority_host()
        ))
        .form(form)
        .send()
        .await
        .expect("token request")
}

pub async fn token(emu: &RunningEmulator, tenant: &str) -> String {
    let r = token_response(
        emu,
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// A Graph client bound to one tenant's token.
pub struct Graph {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Graph {
    pub async fn new(emu: &RunningEmulator, tenant: &str) -> Self {
        Graph {
            client: http(),
            base: emu.graph_base_url(),
            token: token(emu, tenant).await,
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        done(self.req(reqwest::Method::GET, path).send().await).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        done(self.req(method, path).json(body).send().await).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn patch(
        &self,
        path: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::PATCH, path, body).await
    }

    pub async fn delete(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        done(self.req(reqwest::Method::DELETE, path).send().await).await
    }
}

pub async fn done(
    r: reqwest::Result<reqwest::Response>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = r.expect("response");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, headers, v)
}

pub fn new_user(alias: &str, domain: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": format!("User {alias}"),
        "mailNickname": alias,
        "userPrincipalName": format!("{alias}@{domain}"),
        "passwordProfile": { "forceChangePasswordNextSignIn": true, "password": GOOD_PASSWORD }
    })
}

pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

pub fn error_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or("")
}

/// Polls until `f` is true (for replication and refill windows), failing after 5 s.
pub async fn wait_until<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
