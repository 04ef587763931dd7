//! HTTP to Graph for one tenant's request, alone or as a `$batch`: token,
//! `client-request-id`, `x-ms-throttle-priority`, timeout, and reading
//! the answer into a [`Reply`].
use std::time::Duration;

use chrono::Utc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::client::{CallError, Sent};
use super::request::GraphRequest;
use super::response::Reply;
use super::token::TokenProvider;
use super::wire::{decode_batch, encode_batch, header_value, reply_from, BatchItem};
use crate::domain::TenantId;
use crate::pacing::Priority;

pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub base: String,
    pub tokens: TokenProvider,
    pub timeout: Duration,
}

impl Transport {
    /// One request: a token for the tenant, then the call. A 401 makes the
    /// tenant's token be fetched anew next time (tokens can be revoked
    /// before they expire); whether to retry is the caller's policy.
    pub(crate) async fn send(
        &self,
        tenant: &TenantId,
        request: &GraphRequest,
        priority: Priority,
    ) -> Result<Sent, CallError> {
        let token = self.tokens.token(tenant).await?;
        let client_request_id = crate::support::new_guid();
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
        let (status, headers, body) = self.exchange(builder).await?;
        let h = |name: &str| header_value(&headers, name);
        let reply = reply_from(
            status,
            h,
            body,
            header_value(&headers, "request-id"),
            Utc::now(),
        );
        self.drop_refused_token(tenant, &reply, &token).await;
        Ok(Sent {
            reply,
            client_request_id,
            duration: started.elapsed(),
        })
    }

    /// Up to 20 requests in one `POST /$batch` (learn.microsoft.com/graph/json-batching).
    /// Items are independent (no `dependsOn`); each gets its own answer,
    /// throttled or not, in `requests`' order. A batch refused as a whole
    /// gives every item that answer.
    pub(crate) async fn send_batch(
        &self,
        tenant: &TenantId,
        requests: &[(GraphRequest, Priority)],
    ) -> Result<Vec<Sent>, CallError> {
        let token = self.tokens.token(tenant).await?;
        let batch_crid = crate::support::new_guid();
        let crids: Vec<String> = requests
            .iter()
            .map(|_| crate::support::new_guid())
            .collect();
        let items: Vec<BatchItem<'_>> = requests
            .iter()
            .zip(&crids)
            .map(|((request, priority), crid)| BatchItem {
                request,
                priority: *priority,
                client_request_id: crid,
            })
            .collect();
        // The envelope is as urgent as its most urgent item.
        let urgent = requests.iter().any(|(_, p)| *p == Priority::Realtime);
        let priority = if urgent {
            Priority::Realtime
        } else {
            Priority::Bulk
        };
        let builder = self
            .http
            .post(format!("{}/$batch", self.base))
            .bearer_auth(token.expose_secret())
            .header("client-request-id", &batch_crid)
            .header("x-ms-throttle-priority", priority.header_value())
            .timeout(self.timeout)
            .json(&encode_batch(&items));
        let started = Instant::now();
        let (status, headers, body) = self.exchange(builder).await?;
        let duration = started.elapsed();
        let batch_request_id = header_value(&headers, "request-id");
        // A batch refused as a whole for its envelope (400, 403, 413...) says
        // nothing about its items: send them one by one rather than blame
        // each user for it. 401, 429 and 5xx apply to every item alike.
        if status != 200 && !(status == 401 || status == 429 || status >= 500) {
            tracing::warn!(%tenant, status, "a $batch was refused as a whole; sending its items one by one");
            return self.send_each(tenant, requests).await;
        }
        if status != 200 {
            let h = |name: &str| header_value(&headers, name);
            let reply = reply_from(status, h, body, batch_request_id, Utc::now());
            self.drop_refused_token(tenant, &reply, &token).await;
            return Ok(crids
                .into_iter()
                .map(|c| Sent {
                    reply: reply.clone(),
                    client_request_id: c,
                    duration,
                })
                .collect());
        }
        let replies = decode_batch(
            body.as_ref(),
            crids.len(),
            batch_request_id.as_deref(),
            Utc::now(),
        )
        .map_err(|message| CallError::Network {
            message,
            timeout: false,
        })?;
        let mut out = Vec::with_capacity(crids.len());
        for (reply, crid) in replies.into_iter().zip(crids) {
            self.drop_refused_token(tenant, &reply, &token).await;
            out.push(Sent {
                reply,
                client_request_id: crid,
                duration,
            });
        }
        Ok(out)
    }

    async fn send_each(
        &self,
        tenant: &TenantId,
        requests: &[(GraphRequest, Priority)],
    ) -> Result<Vec<Sent>, CallError> {
        let mut out = Vec::with_capacity(requests.len());
        for (r, priority) in requests {
            out.push(self.send(tenant, r, *priority).await?);
        }
        Ok(out)
    }

    async fn drop_refused_token(&self, tenant: &TenantId, reply: &Reply, token: &SecretString) {
        // 403 too: a token minted before a consent or role change carries
        // the old permissions until it expires; the next call gets a new one.
        if reply.status == 401 || reply.status == 403 {
            self.tokens.invalidate(tenant, token).await;
        }
    }

    async fn exchange(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<(u16, Map<String, Value>, Option<Value>), CallError> {
        let response = builder.send().await.map_err(network)?;
        let status = response.status().as_u16();
        let headers: Map<String, Value> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), json!(v.to_str().ok()?))))
            .collect();
        let bytes = response.bytes().await.map_err(network)?;
        let body = (!bytes.is_empty())
            .then(|| serde_json::from_slice::<Value>(&bytes).ok())
            .flatten();
        Ok((status, headers, body))
    }
}

fn network(e: reqwest::Error) -> CallError {
    // Without the URL: a lookup's query holds an email, and errors reach
    // logs and audit rows. reqwest never shows headers, so no token either.
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    CallError::Network { message, timeout }
}
