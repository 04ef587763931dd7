//! The I/O edge toward Graph: one HTTP request per call, with a token for
//! the tenant, a fresh `client-request-id`, the tenant's pacing, and a
//! timeout. Retrying is the caller's policy (see `engine::retry`).
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::time::Instant;

use super::request::GraphRequest;
use super::response::{parse_retry_after, Reply};
use super::token::{TokenError, TokenProvider};
use crate::domain::TenantId;
use crate::pacing::limits::Cost;
use crate::pacing::{Pacer, Priority};

/// The request reached no usable HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("network error talking to Graph: {message}")]
    Network { message: String, timeout: bool },
}

/// A call that got an answer (any status).
#[derive(Debug, Clone)]
pub struct Sent {
    pub reply: Reply,
    pub client_request_id: String,
    pub duration: Duration,
}

pub struct GraphClient {
    http: reqwest::Client,
    base: String,
    tokens: TokenProvider,
    timeout: Duration,
    pacer: Pacer,
}

impl GraphClient {
    pub fn new(
        http: reqwest::Client,
        base: &url::Url,
        tokens: TokenProvider,
        timeout: Duration,
        pacer: Pacer,
    ) -> Self {
        Self {
            http,
            base: base.as_str().trim_end_matches('/').to_string(),
            tokens,
            timeout,
            pacer,
        }
    }

    /// A reqwest client fit for Microsoft's endpoints: no redirects (a token
    /// request must never be replayed elsewhere), bounded connect time.
    pub fn http_client() -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            // Graph calls set their own timeout; this bounds token requests,
            // so a login endpoint that never answers cannot hang a tenant.
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("entra-daemon/", env!("CARGO_PKG_VERSION")))
            .build()
    }

    pub fn tokens(&self) -> &TokenProvider {
        &self.tokens
    }

    /// Sends one request for `tenant`. A 401 makes the tenant's token be
    /// fetched anew for the next call (tokens can be revoked before they
    /// expire); whether to retry is the caller's policy.
    pub async fn send(
        &self,
        tenant: &TenantId,
        request: &GraphRequest,
        priority: Priority,
    ) -> Result<Sent, CallError> {
        let cost = Cost::of(&request.method, &request.path, &request.query);
        self.pacer.admit(tenant, priority, cost).await;
        let token = self.tokens.token(tenant).await?;
        let sent = self.transmit(tenant, request, priority, &token).await?;
        if sent.reply.status == 401 {
            self.tokens.invalidate(tenant, &token).await;
        }
        Ok(sent)
    }

    async fn transmit(
        &self,
        tenant: &TenantId,
        request: &GraphRequest,
        priority: Priority,
        token: &secrecy::SecretString,
    ) -> Result<Sent, CallError> {
        let client_request_id = crate::new_guid();
        let url = format!("{}{}", self.base, request.relative_url());
        let mut builder = self
            .http
            .request(request.method.clone(), &url)
            .bearer_auth(token.expose_secret())
            .header("client-request-id", &client_request_id)
            .header("return-client-request-id", "true")
            .header("x-ms-throttle-priority", priority.header_value())
            .timeout(self.timeout);
        if let Some(body) = request.wire_body() {
            builder = builder.json(&body);
        }
        let started = Instant::now();
        let response = builder.send().await.map_err(network)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("request-id");
        let retry_after =
            header("retry-after").and_then(|v| parse_retry_after(&v, chrono::Utc::now()));
        let throttle_scope = header("x-ms-throttle-scope");
        let limit_percentage =
            header("x-ms-throttle-limit-percentage").and_then(|v| v.parse().ok());
        let bytes = response.bytes().await.map_err(network)?;
        let body = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice::<Value>(&bytes).ok()
        };
        let reply = Reply {
            status,
            request_id,
            retry_after,
            throttle_scope,
            limit_percentage,
            body,
        };
        self.observe(tenant, request, &reply);
        Ok(Sent {
            reply,
            client_request_id,
            duration: started.elapsed(),
        })
    }
}

impl GraphClient {
    /// Tells the scheduler what Graph said about its limits.
    fn observe(&self, tenant: &TenantId, request: &GraphRequest, reply: &Reply) {
        if reply.failure() == Some(super::Failure::Throttled) {
            // The whole scope waits, not just this request.
            self.pacer.throttled(
                tenant,
                reply.throttle_scope.as_deref(),
                request.is_write(),
                reply.retry_after.unwrap_or(Duration::from_secs(1)),
            );
        } else if let Some(share) = reply.limit_percentage {
            self.pacer.limit_percentage(tenant, share);
        }
    }
}

fn network(e: reqwest::Error) -> CallError {
    // reqwest's Display names the URL, never headers: no token leaks here.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    CallError::Network {
        message,
        timeout: e.is_timeout(),
    }
}
