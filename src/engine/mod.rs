//! The sync engine: outbox rows become pending changes ([`ingest`]), the
//! [`dispatch`]er hands each due user to one worker at a time, and
//! [`converge`] brings that user's Entra object to the state in Plumm,
//! through [`retry`] for every Graph call, under the reloadable
//! [`Policy`].
pub mod brake;
pub mod converge;
pub mod dispatch;
pub mod ingest;
pub mod matching;
pub mod membership_batch;
pub mod password;
pub mod policy;
pub mod quarantine;
pub mod retry;
pub mod scheduler;
pub mod write_check;

use crate::domain::{CompanyId, PlummUserId, TenantId};
use crate::pacing::Priority;
use crate::plan::Action;
use crate::store::{AuditRecord, Outcome, StateDb};

pub use converge::{Converged, Converger};
pub use dispatch::{Dispatcher, RunReport};
pub use ingest::Ingestor;
pub use membership_batch::MembershipBatcher;
pub use policy::{Policy, PolicyRx, SyncSettings};

/// Who a piece of work is for: every log line and audit row about a user
/// carries these.
pub struct UserCtx<'a> {
    pub company: CompanyId,
    pub tenant: TenantId,
    pub user: PlummUserId,
    pub email: String,
    pub priority: Priority,
    pub state: &'a StateDb,
}

impl UserCtx<'_> {
    pub fn record(&self, action: Action, outcome: Outcome) -> AuditRecord {
        let mut r = AuditRecord::new(action.as_str(), outcome);
        r.company = Some(self.company);
        r.tenant = Some(self.tenant.clone());
        r.user = Some(self.user);
        r.email = Some(self.email.clone());
        r
    }

    /// An audit row that cannot be written is logged, not fatal: the work
    /// it describes has already happened in Entra.
    pub fn audit(&self, r: &AuditRecord) {
        if let Err(e) = self.state.append_audit(r) {
            tracing::error!(company = %self.company, tenant = %self.tenant, user = %self.user,
                request_id = r.request_id.as_deref().unwrap_or(""), "audit log write failed: {e}");
        }
    }
}
