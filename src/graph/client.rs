//! The I/O edge toward Graph: every request is admitted by the pacer,
//! then sent alone or in a `$batch`, and what Graph says about its limits
//! goes back to the pacer. Retrying is the caller's policy (`engine::retry`).
use std::sync::Arc;
use std::time::Duration;

use super::batch::{BatchSettings, Batcher};
use super::request::GraphRequest;
use super::response::Reply;
use super::token::{TokenError, TokenProvider};
use super::transport::Transport;
use crate::domain::TenantId;
use crate::pacing::{Granted, Pacer, Priority};

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
    transport: Arc<Transport>,
    pacer: Pacer,
    batcher: Option<Batcher>,
}

impl GraphClient {
    /// `batch`: coalesce requests into `$batch` round trips, or send each alone.
    pub fn new(
        http: reqwest::Client,
        base: &url::Url,
        tokens: TokenProvider,
        timeout: Duration,
        pacer: Pacer,
        batch: Option<BatchSettings>,
    ) -> Self {
        let transport = Arc::new(Transport {
            http,
            base: base.as_str().trim_end_matches('/').to_string(),
            tokens,
            timeout,
        });
        let batcher = batch.map(|b| Batcher::spawn(transport.clone(), b, pacer.clone()));
        Self {
            transport,
            pacer,
            batcher,
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
        &self.transport.tokens
    }

    /// The request for a page's `@odata.nextLink` (`None` if it points
    /// anywhere but this Graph endpoint).
    pub fn next_page(&self, next_link: &str) -> Option<GraphRequest> {
        super::request::next_page(next_link, &self.transport.base)
    }

    /// Sends one request for `tenant` once the scheduler admits it, alone
    /// or inside a `$batch`. Retrying is the caller's policy.
    pub async fn send(
        &self,
        tenant: &TenantId,
        request: &GraphRequest,
        priority: Priority,
    ) -> Result<Sent, CallError> {
        let cost = request.cost();
        loop {
            // Off the wire (for the slow start) when dropped, however
            // this attempt ends.
            let admitted = self.pacer.admit(tenant, priority, cost).await;
            // A listing page would only wait out the batcher's linger for
            // company that cannot come (its next page waits for it).
            let sent = match &self.batcher {
                Some(b) if !request.is_listing_page() => b.send(tenant, request, priority).await?,
                _ => Some(self.transport.send(tenant, request, priority).await?),
            };
            // Held back unsent while the tenant waits out a 429: admitted
            // again, which waits out the pause.
            let Some(sent) = sent else {
                self.pacer.unsent(tenant, cost);
                continue;
            };
            self.observe(tenant, request, &sent.reply, admitted.granted());
            drop(admitted);
            crate::metrics::graph_answer(
                request.method.as_str(),
                sent.duration,
                sent.reply.failure() == Some(super::Failure::Throttled),
            );
            return Ok(sent);
        }
    }
}

impl GraphClient {
    /// Tells the scheduler what Graph said about its limits: a 429 (and
    /// the scope it named), or how close to a limit an answer came.
    fn observe(&self, tenant: &TenantId, request: &GraphRequest, reply: &Reply, granted: Granted) {
        if reply.failure() == Some(super::Failure::Throttled) {
            // The whole scope waits, not just this request.
            self.pacer.throttled(
                tenant,
                reply.throttle_scope.as_deref(),
                request.is_write(),
                reply.retry_after.unwrap_or(Duration::from_secs(1)),
                granted,
            );
        } else if reply.status < 500 {
            // A 5xx may never have reached the limits; anything else was metered.
            self.pacer
                .answered(tenant, request.is_write(), reply.limit_percentage, granted);
        }
    }
}
