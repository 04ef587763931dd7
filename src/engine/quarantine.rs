//! Tenants that refuse the app are quarantined: their work is held (not
//! lost), the tenant is probed at growing intervals, and a probe that gets
//! a token, a Graph read and a write, or a reconnect, releases everything
//! pending.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::write_check::{self, Witnesses, WriteAccess};
use crate::domain::CompanyId;
use crate::graph::{request, GraphClient};
use crate::pacing::Priority;
use crate::store::{after, AuditRecord, Outcome, Quarantine, StateDb, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct ProbeSettings {
    pub first: Duration,
    pub max: Duration,
}

impl ProbeSettings {
    /// Doubling from `first`, at most `max`.
    pub fn interval(&self, probes: i64) -> Duration {
        let exp = 2u32.saturating_pow(probes.clamp(0, 30) as u32);
        self.first.saturating_mul(exp).min(self.max)
    }
}

/// Puts the company in quarantine (once) and says so in the audit log.
pub fn enter(
    state: &StateDb,
    company: CompanyId,
    reason: &str,
    probes: ProbeSettings,
) -> Result<(), StoreError> {
    if state.quarantine(company, reason, &after(probes.first))? {
        let tenant = state.connection(company)?.map(|c| c.tenant);
        let mut r = AuditRecord::new("quarantine", Outcome::Failed);
        r.company = Some(company);
        r.tenant = tenant.clone();
        r.detail = Some(format!(
            "needs re-consent: {reason}; changes are held, not lost"
        ));
        state.append_audit(&r)?;
        tracing::warn!(company = %company, tenant = ?tenant, "tenant quarantined, needs re-consent: {reason}");
    }
    Ok(())
}

/// What a probe saw when the tenant does not accept the app yet.
enum Seen {
    Accepted,
    Refused(String),
}

/// A token, the cheapest Graph read, then a write that changes nothing (a
/// tenant quarantined for a removed write permission still lets the app
/// read).
async fn ask(graph: &GraphClient, state: &StateDb, q: &Quarantine) -> Result<Seen, StoreError> {
    let read = graph
        .send(&q.tenant, &request::probe(), Priority::Realtime)
        .await;
    match read {
        Ok(sent) if sent.reply.is_success() => {}
        Ok(sent) => {
            let e = sent.reply.error().unwrap_or_default();
            return Ok(Seen::Refused(format!(
                "HTTP {} {}",
                sent.reply.status, e.code
            )));
        }
        Err(e) => return Ok(Seen::Refused(e.to_string())),
    }
    // Any account will do, and one not yet replicated is only skipped.
    let who = Witnesses {
        company: q.company,
        tenant: &q.tenant,
        except: None,
        replication_timeout: Duration::ZERO,
    };
    Ok(match write_check::check(graph, state, who).await? {
        WriteAccess::Allowed | WriteAccess::NoWitness => Seen::Accepted,
        WriteAccess::Refused(seen) | WriteAccess::Unknown(seen) => {
            Seen::Refused(format!("write check: {seen}"))
        }
    })
}

/// One probe (see [`ask`]). Lifts the quarantine or schedules the next
/// probe, then wakes the dispatcher.
pub async fn probe(
    graph: Arc<GraphClient>,
    state: Arc<StateDb>,
    q: Quarantine,
    settings: ProbeSettings,
    wake: Arc<Notify>,
) {
    let result = match ask(&graph, &state, &q).await {
        Ok(Seen::Accepted) => {
            let mut r = AuditRecord::new("quarantine", Outcome::Ok);
            r.company = Some(q.company);
            r.tenant = Some(q.tenant.clone());
            r.detail = Some(
                "the tenant accepts the app again: quarantine lifted, held changes resume".into(),
            );
            tracing::info!(company = %q.company, tenant = %q.tenant, "quarantine lifted");
            state
                .lift_quarantine(q.company)
                .and_then(|_| state.append_audit(&r))
        }
        Ok(Seen::Refused(seen)) => {
            // The reason the tenant was quarantined, then what the last probe saw.
            let base = q.reason.split("; last probe").next().unwrap_or_default();
            let why = format!("{base}; last probe: {seen}");
            let next = settings.interval(q.probes + 1);
            state.reschedule_probe(q.company, &why, &after(next))
        }
        Err(e) => {
            // Not a verdict: ask again later rather than at once.
            let next = settings.interval(q.probes + 1);
            state
                .reschedule_probe(q.company, &q.reason, &after(next))
                .and(Err(e))
        }
    };
    if let Err(e) = result {
        tracing::error!(company = %q.company, "recording a probe: {e}");
    }
    wake.notify_one();
}
