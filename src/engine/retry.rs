//! One Graph call with the daemon's retry policy (backon): transient
//! failures back off exponentially with jitter; a `Retry-After` from Graph is
//! obeyed exactly instead. Each retried attempt leaves an audit row.
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::UserCtx;
use crate::domain::TenantId;
use crate::graph::{CallError, Failure, GraphClient, GraphRequest, Sent};
use crate::pacing::Priority;
use crate::plan::Action;
use crate::store::{AuditRecord, Outcome};

/// How patient the daemon is with Graph (`[sync] retry_*`, `requeue_max`).
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub initial: Duration,
    pub max: Duration,
    /// Attempts for one Graph call before the user goes back to the queue.
    pub max_attempts: usize,
    /// Longest wait before a user whose push failed is tried again.
    pub requeue_max: Duration,
}

/// What a call that did not succeed ended with.
#[derive(Debug, Clone)]
pub enum CallFailed {
    /// Graph answered with an error status.
    Graph { sent: Sent, failure: Failure },
    /// No answer: token refused or unavailable, network, timeout.
    NoAnswer(CallError),
}

impl CallFailed {
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            CallFailed::Graph { failure, .. } => Some(failure),
            CallFailed::NoAnswer(_) => None,
        }
    }

    /// Whether Graph may have carried the request out although the call
    /// failed: no answer arrived (timeout, reset) or a 5xx came back. What
    /// the request touches is then unknown until Entra is read again. A 429
    /// and every 4xx are refusals: nothing was applied. A refused token
    /// means nothing was sent.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            CallFailed::NoAnswer(CallError::Network { .. }) => true,
            CallFailed::NoAnswer(CallError::Token(_)) => false,
            CallFailed::Graph { sent, .. } => sent.reply.status >= 500,
        }
    }

    fn retryable(&self, retry_not_found: bool) -> bool {
        match self {
            // A 401 already made the client drop the token, so a retry
            // uses a fresh one (tokens can be revoked early); a tenant that
            // keeps answering 401 ends up quarantined when retries run out.
            CallFailed::Graph { failure, .. } => {
                failure.is_retryable()
                    || *failure == Failure::Unauthorized
                    || (retry_not_found && *failure == Failure::NotFound)
            }
            // A refused login will be refused again; anything else may pass.
            CallFailed::NoAnswer(CallError::Token(crate::graph::TokenError::Refused {
                ..
            })) => false,
            CallFailed::NoAnswer(_) => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            CallFailed::Graph { sent, failure } if *failure == Failure::Throttled => {
                sent.reply.retry_after
            }
            _ => None,
        }
    }

    /// Fills the audit row's HTTP and Graph error fields.
    pub fn describe(&self, mut r: AuditRecord) -> AuditRecord {
        match self {
            CallFailed::Graph { sent, .. } => {
                let err = sent.reply.error().unwrap_or_default();
                r.http_status = Some(sent.reply.status);
                r.error_code = Some(err.code).filter(|c| !c.is_empty());
                r.error_message = Some(err.message).filter(|m| !m.is_empty());
                r.request_id = sent.reply.request_id.clone();
                r.client_request_id = Some(sent.client_request_id.clone());
                r.duration_ms = Some(sent.duration.as_millis() as u64);
            }
            CallFailed::NoAnswer(e) => {
                r.error_code = Some(
                    match e {
                        CallError::Token(_) => "token",
                        CallError::Network { timeout: true, .. } => "timeout",
                        CallError::Network { .. } => "network",
                    }
                    .into(),
                );
                r.error_message = Some(e.to_string());
            }
        }
        r
    }

    /// One line for logs and `last_error`.
    pub fn summary(&self) -> String {
        match self {
            CallFailed::Graph { sent, .. } => {
                let err = sent.reply.error().unwrap_or_default();
                format!("HTTP {} {}: {}", sent.reply.status, err.code, err.message)
            }
            CallFailed::NoAnswer(e) => e.to_string(),
        }
    }
}

/// Sends `request` for the user, retrying as the policy allows. Returns the
/// attempt number the call ended on, for the audit row, and whether Graph
/// may have carried the request out on any attempt although the call
/// failed (see [`CallFailed::outcome_unknown`]): a create whose first
/// attempt timed out and whose retries were throttled may still exist.
/// `retry_not_found` is for reads and writes right after a create, when a
/// 404 only means Graph has not replicated the new user yet.
pub async fn call(
    graph: &GraphClient,
    policy: &RetrySettings,
    ctx: &UserCtx<'_>,
    action: Action,
    request: &GraphRequest,
    retry_not_found: bool,
) -> (Result<(Sent, u32), (CallFailed, u32)>, bool) {
    let target = Target {
        tenant: &ctx.tenant,
        priority: ctx.priority,
        retry_not_found,
    };
    let mut unsure = false;
    let result = send_with_retry(graph, policy, target, request, |e, wait, retried| {
        unsure |= e.outcome_unknown();
        let mut r = ctx.record(action, Outcome::Retry);
        r.attempt = Some(retried);
        r.detail = Some(format!("retrying in {} ms", wait.as_millis()));
        let r = e.describe(r);
        tracing::info!(
            company = %ctx.company, tenant = %ctx.tenant, user = %ctx.user,
            action = %action, request_id = r.request_id.as_deref().unwrap_or(""),
            "{}; retrying in {:?}", e.summary(), wait
        );
        ctx.audit(&r);
    })
    .await;
    let unsure = unsure || matches!(&result, Err((e, _)) if e.outcome_unknown());
    (result, unsure)
}

/// Where a call goes and how patient it is.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub tenant: &'a TenantId,
    pub priority: Priority,
    pub retry_not_found: bool,
}

/// The one retry loop of the daemon: exponential backoff with jitter, a
/// `Retry-After` from Graph obeyed instead, only retryable failures
/// retried. `on_retry` hears of each retry (failure, wait, retries so far).
/// Returns the attempt number the call ended on.
pub async fn send_with_retry(
    graph: &GraphClient,
    policy: &RetrySettings,
    target: Target<'_>,
    request: &GraphRequest,
    mut on_retry: impl FnMut(&CallFailed, Duration, u32),
) -> Result<(Sent, u32), (CallFailed, u32)> {
    let mut attempt = 0u32;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.initial)
        .with_max_delay(policy.max)
        .with_max_times(policy.max_attempts.saturating_sub(1))
        .with_jitter();
    let op = || {
        attempt += 1;
        let n = attempt;
        async move {
            let sent = graph
                .send(target.tenant, request, target.priority)
                .await
                .map_err(CallFailed::NoAnswer)?;
            match sent.reply.failure() {
                None => Ok((sent, n)),
                Some(failure) => Err(CallFailed::Graph { sent, failure }),
            }
        }
    };
    let mut retried = 0u32;
    let result = op
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e| e.retryable(target.retry_not_found))
        // Graph's Retry-After wins over our own schedule; `None` means the
        // attempts are spent and must stay `None`.
        .adjust(|e, planned| planned.map(|d| e.retry_after().unwrap_or(d)))
        .notify(|e, wait| {
            retried += 1;
            on_retry(e, wait, retried);
        })
        .await;
    result.map_err(|e| (e, retried + 1))
}
