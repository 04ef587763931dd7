//! HTTP to Graph for one tenant's request, alone or as a `$batch`: token,
//! `client-request-id`, `x-ms-throttle-priority`, timeout, and reading
//! the answer into a [`Reply`].
use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::client::{CallError, Sent};
use super::request::GraphRequest;
use super::response::{parse_retry_after, Reply};
use super::token::TokenProvider;
use crate::domain::TenantId;
use crate::pacing::Priority;

pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub base: String,
    pub tokens: TokenProvider,
    pub timeout: Duration,
}

/// A header of a reqwest response, or of a `$batch` item's `headers` object.
fn header_value(headers: &Map<String, Value>, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| f.to_string()))
        })
}

fn reply_from(
    status: u16,
    header: impl Fn(&str) -> Option<String>,
    body: Option<Value>,
    request_id: Option<String>,
) -> Reply {
    Reply {
        status,
        request_id,
        retry_after: header("retry-after").and_then(|v| parse_retry_after(&v, chrono::Utc::now())),
        throttle_scope: header("x-ms-throttle-scope"),
        limit_percentage: header("x-ms-throttle-limit-percentage").and_then(|v| v.parse().ok()),
        body,
    }
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
        let reply = reply_from(status, h, body, header_value(&headers, "request-id"));
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
        let mut crids = Vec::with_capacity(requests.len());
        let items: Vec<Value> = requests
            .iter()
            .enumerate()
            .map(|(i, (r, priority))| {
                let crid = crate::support::new_guid();
                let mut item = json!({
                    "id": (i + 1).to_string(),
                    "method": r.method.as_str(),
                    "url": r.relative_url(),
                    "headers": {
                        "client-request-id": crid,
                        "x-ms-throttle-priority": priority.header_value(),
                    },
                });
                if let Some(body) = r.wire_body() {
                    item["body"] = body;
                    item["headers"]["Content-Type"] = json!("application/json");
                }
                crids.push(crid);
                item
            })
            .collect();
        let urgent = requests.iter().any(|(_, p)| *p == Priority::Realtime);
        let builder = self
            .http
            .post(format!("{}/$batch", self.base))
            .bearer_auth(token.expose_secret())
            .header("client-request-id", &batch_crid)
            .header(
                "x-ms-throttle-priority",
                if urgent {
                    Priority::Realtime
                } else {
                    Priority::Bulk
                }
                .header_value(),
            )
            .timeout(self.timeout)
            .json(&json!({ "requests": items }));
        let started = Instant::now();
        let (status, headers, body) = self.exchange(builder).await?;
        let duration = started.elapsed();
        let batch_request_id = header_value(&headers, "request-id");
        // A batch refused as a whole for its envelope (400, 403, 413...) says
        // nothing about its items: send them one by one rather than blame
        // each user for it. 401, 429 and 5xx apply to every item alike.
        if status != 200 && !(status == 401 || status == 429 || status >= 500) {
            tracing::warn!(%tenant, status, "a $batch was refused as a whole; sending its items one by one");
            let mut out = Vec::with_capacity(requests.len());
            for (r, priority) in requests {
                out.push(self.send(tenant, r, *priority).await?);
            }
            return Ok(out);
        }
        if status != 200 {
            let h = |name: &str| header_value(&headers, name);
            let reply = reply_from(status, h, body, batch_request_id);
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
        // "Individual responses might appear in a different order than the requests."
        let mut by_id: HashMap<String, Value> = body
            .as_ref()
            .and_then(|b| b.get("responses"))
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(crids.len());
        for (i, crid) in crids.into_iter().enumerate() {
            let Some(item) = by_id.remove(&(i + 1).to_string()) else {
                return Err(CallError::Network {
                    message: format!("$batch answer has no response for item {}", i + 1),
                    timeout: false,
                });
            };
            let status = item.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
            let item_headers = item
                .get("headers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let item_body = item.get("body").cloned();
            // Item errors carry their own request-id in innerError.
            let request_id = item_body
                .as_ref()
                .and_then(|b| b.pointer("/error/innerError/request-id"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| batch_request_id.clone());
            let h = |name: &str| header_value(&item_headers, name);
            let reply = reply_from(status, h, item_body, request_id);
            self.drop_refused_token(tenant, &reply, &token).await;
            out.push(Sent {
                reply,
                client_request_id: crid,
                duration,
            });
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
