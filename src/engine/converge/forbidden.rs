//! A write refused with 403: about this account, or about the app? Graph's
//! answer is the same for both, so ask the tenant before deciding (see
//! [`crate::engine::write_check`]). Parking every account of a tenant whose
//! admin removed the app's write permission would leave them parked after
//! the fix; quarantining a tenant for one administrator's account would
//! hold everyone else's changes.
use super::{Converged, Job};
use crate::engine::retry::CallFailed;
use crate::engine::write_check::{self, Witnesses, WriteAccess};
use crate::plan::Action;
use crate::store::{AuditRecord, Outcome, StoreError};

impl Job<'_> {
    pub(super) async fn forbidden(
        &self,
        action: Action,
        f: CallFailed,
        attempt: u32,
    ) -> Result<Converged, StoreError> {
        // A create names no existing account: its 403 can only be the app's.
        let access = if action == Action::Create {
            WriteAccess::Refused("403 on creating a user".into())
        } else {
            let who = Witnesses {
                company: self.ctx.company,
                tenant: &self.ctx.tenant,
                except: Some(self.ctx.user),
                replication_timeout: self.s.replication_timeout,
            };
            write_check::check(self.graph, self.state(), who).await?
        };
        let graph_message = f
            .describe(AuditRecord::default())
            .error_message
            .unwrap_or_default();
        let email = &self.user.email;
        let still = match action {
            Action::Suspend => ": the account is still enabled in Entra",
            Action::Delete => ": the account is still in Entra",
            _ => "",
        };
        let account = |checked: &str| {
            format!(
                "Entra refused to {action} {email} (403 {graph_message}){still}; it is probably an \
                 administrator, which the app may not change without a privileged role ({checked}): \
                 manage this account in Entra by hand"
            )
        };
        match access {
            WriteAccess::Allowed => self.park(
                action,
                Some(&f),
                account("a write to another account of the tenant went through just now"),
            ),
            WriteAccess::NoWitness => self.park(
                action,
                Some(&f),
                account("no other account of the tenant to check the app's write access with"),
            ),
            WriteAccess::Refused(seen) => {
                let why = format!(
                    "the app may not change users in the tenant ({seen}; 403 on the {action} of \
                     {email}): its write permission (User.ReadWrite.All) was removed; an Entra \
                     admin must grant consent again from Plumm's Store"
                );
                Ok(self.quarantined(action, &f, attempt, why))
            }
            WriteAccess::Unknown(seen) => {
                let mut r = f.describe(self.ctx.record(action, Outcome::Failed));
                r.attempt = Some(attempt);
                r.detail = Some(format!(
                    "403, and checking whether the app may still write in the tenant got no \
                     answer ({seen}); the change stays pending and will be tried again"
                ));
                self.ctx.audit(&r);
                Ok(Converged::Deferred(format!(
                    "403 on {action} of {email}; the write check got {seen}"
                )))
            }
        }
    }
}
