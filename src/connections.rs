//! Connecting and disconnecting a company: one implementation each, called
//! by the CLI (`entra-daemon connect` / `disconnect`) and by the connect
//! server (the Store's admin consent and Disconnect button). Each writes
//! the one `connect` / `disconnect` audit row.
use std::path::Path;
use std::sync::Mutex;

use crate::domain::{CompanyId, TenantId};
use crate::engine::matching::Matcher;
use crate::engine::retry::{send_with_retry, CallFailed, Target};
use crate::engine::Policy;
use crate::graph::{request, GraphClient};
use crate::pacing::Priority;
use crate::store::{AuditRecord, Outcome, PlummDb, StateDb, StoreError};
use crate::support::progress::Progress;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tenant {tenant} could not be verified: {reason}")]
    Verify { tenant: TenantId, reason: String },
}

/// What connecting needs: the state database, Plumm's (for the company's
/// people) and the policy in force (the mapping that matches Entra users).
pub struct Connections<'a> {
    pub state: &'a StateDb,
    pub plumm_database: &'a Path,
    pub policy: &'a Policy,
    /// Where the listing of the tenant reports how far it got.
    pub progress: &'a dyn Progress,
}

/// How the app's access to the tenant was established.
pub enum Proof<'a> {
    /// Recorded without a Graph check (`connect --no-verify`): workers look
    /// each user up.
    Unverified,
    /// The app got a token and read the tenant; `how` ends the audit row's
    /// "connected by ..." (e.g. "through Microsoft admin consent (...)").
    Verified { graph: &'a GraphClient, how: String },
}

impl Connections<'_> {
    /// Records the connection and queues the initial sync, in one state
    /// transaction, then writes the audit row. With a verified Graph client,
    /// one listing of the tenant first links the users Entra already has and
    /// marks the rest absent, instead of a lookup per user.
    pub async fn connect(
        &self,
        company: CompanyId,
        tenant: &TenantId,
        by: &str,
        proof: Proof<'_>,
    ) -> Result<usize, ConnectError> {
        if let Some(other) = self.state.tenant_holder(tenant)?.filter(|c| *c != company) {
            return Err(StoreError::Conflict(format!(
                "tenant {tenant} is already connected to company {other}; disconnect it there first"
            ))
            .into());
        }
        let plumm = Mutex::new(PlummDb::open(self.plumm_database)?);
        let (listed, how) = match proof {
            Proof::Verified { graph, how } => {
                let m = Matcher {
                    graph,
                    state: self.state,
                    plumm: &plumm,
                    retry: &self.policy.retry,
                    mapping: &self.policy.mapping,
                }
                .run(company, tenant, self.progress)
                .await
                .map_err(|e| ConnectError::Verify {
                    tenant: tenant.clone(),
                    reason: e.to_string(),
                })?;
                (Some(m.linked), how)
            }
            Proof::Unverified => (None, String::new()),
        };
        let plumm = plumm.into_inner().unwrap_or_else(|e| e.into_inner());
        let initial = crate::engine::ingest::initial_sync(&plumm, company, listed.as_ref())?;
        self.state.connect(company, tenant, Some(by), &initial)?;
        let queued = initial.len();
        let mut r = AuditRecord::new("connect", Outcome::Ok);
        r.company = Some(company);
        r.tenant = Some(tenant.clone());
        let how = if how.is_empty() {
            how
        } else {
            format!(" {how}")
        };
        r.detail = Some(format!(
            "connected by {by}{how}; {queued} users queued for the initial sync"
        ));
        self.state.append_audit(&r)?;
        tracing::info!(%company, %tenant, queued, "company connected by {by}");
        Ok(queued)
    }
}

/// Stops syncing a company; returns the number of pending changes dropped,
/// or `None` when it was not connected. Nothing in Entra is deleted; links
/// and history are kept for a later reconnect.
pub fn disconnect(
    state: &StateDb,
    company: CompanyId,
    by: &str,
) -> Result<Option<usize>, StoreError> {
    let tenant = state.connection(company)?.map(|c| c.tenant);
    let dropped = state.disconnect(company)?;
    if let Some(n) = dropped {
        let mut r = AuditRecord::new("disconnect", Outcome::Ok);
        r.company = Some(company);
        r.tenant = tenant;
        r.detail = Some(format!(
            "disconnected by {by}; {n} pending changes dropped; nothing deleted in Entra"
        ));
        state.append_audit(&r)?;
        tracing::info!(%company, dropped = n, "company disconnected by {by}");
    }
    Ok(dropped)
}

/// Proves the app can act in `tenant`: a token, then one cheap Graph read.
/// A passing fault (5xx, 429, a dropped connection) is retried as every
/// Graph call is; a refusal is reported at once.
pub async fn verify_tenant(
    graph: &GraphClient,
    retry: &crate::engine::retry::RetrySettings,
    tenant: &TenantId,
) -> Result<(), ConnectError> {
    let verify = |reason: String| ConnectError::Verify {
        tenant: tenant.clone(),
        reason,
    };
    let target = Target {
        tenant,
        priority: Priority::Realtime,
        retry_not_found: false,
    };
    let sent = match send_with_retry(graph, retry, target, &request::probe(), |_, _, _| {}).await {
        Ok(_) => return Ok(()),
        Err((CallFailed::NoAnswer(e), _)) => return Err(verify(e.to_string())),
        Err((CallFailed::Graph { sent, .. }, _)) => sent,
    };
    let err = sent.reply.error().unwrap_or_default();
    Err(verify(format!(
        "Graph answered {} {}: {} (request-id {})",
        sent.reply.status,
        err.code,
        err.message,
        sent.reply.request_id.unwrap_or_default()
    )))
}
