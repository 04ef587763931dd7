//! The `tenant` a consent callback names authorizes nothing by itself (the
//! query string is the browser's to change). Consent is proven the only way
//! that counts: an app-only token for that tenant and one Graph read with it.
//!
//! Microsoft needs a little time to make a new consent effective ("it can
//! take some time for the permissions to be applied", see
//! https://learn.microsoft.com/entra/identity-platform/v2-admin-consent), so
//! answers that mean "not consented (yet)" are retried for a short while:
//! AADSTS700016 (app not found in the directory), AADSTS65001 (not
//! consented), and Graph's 401/403 while roles propagate.
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::TenantId;
use crate::graph::{request, CallError, GraphClient, TokenError};
use crate::pacing::Priority;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProofError {
    /// Still not effective when the time ran out; the last answer.
    Pending(String),
    /// Microsoft refused the app's own credentials: no wait will fix that.
    AppRefused(String),
}

enum Attempt {
    Proven,
    NotYet(String),
    Refused(String),
}

async fn attempt(graph: &GraphClient, tenant: &TenantId) -> Attempt {
    match graph
        .send(tenant, &request::probe(), Priority::Realtime)
        .await
    {
        Ok(sent) if sent.reply.is_success() => Attempt::Proven,
        Ok(sent) => {
            let err = sent.reply.error().unwrap_or_default();
            Attempt::NotYet(format!(
                "Graph answered {} {}: {}",
                sent.reply.status, err.code, err.message
            ))
        }
        // invalid_client: wrong or expired secret, unknown certificate, bad
        // assertion (reference-error-codes: AADSTS7000215, AADSTS700027...).
        Err(CallError::Token(TokenError::Refused {
            error, description, ..
        })) if error == "invalid_client" => Attempt::Refused(format!("{error}: {description}")),
        Err(e) => Attempt::NotYet(e.to_string()),
    }
}

/// Tries until the tenant answers, `timeout` passes, or the app itself is
/// refused. Returns how many attempts it took.
pub(crate) async fn prove_consent(
    graph: &GraphClient,
    tenant: &TenantId,
    timeout: Duration,
    interval: Duration,
) -> Result<u32, ProofError> {
    let deadline = Instant::now() + timeout;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(graph, tenant).await {
            Attempt::Proven => return Ok(tries),
            Attempt::Refused(why) => return Err(ProofError::AppRefused(why)),
            Attempt::NotYet(why) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(ProofError::Pending(why));
                }
                tracing::debug!(%tenant, tries, "consent not effective yet: {why}");
                tokio::time::sleep(interval.min(deadline - now)).await;
            }
        }
    }
}
