//! Managers and the recycle bin by hand, as an Entra administrator edits
//! them in the portal: no token, no throttling, no request log, no
//! replication delay.

use super::control::EmulatorControl;
use super::deleted_items::purge_expired;
use super::state::{Tenant, UserRecord};
use super::types::EmulatedUser;
use super::EmulatorError;

/// A user of the tenant that is not deleted.
fn live<'a>(t: &'a mut Tenant, id: &str) -> Result<&'a mut UserRecord, EmulatorError> {
    t.users
        .iter_mut()
        .find(|u| !u.is_deleted() && u.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| EmulatorError::UnknownUser(id.into()))
}

impl EmulatorControl {
    fn in_tenant<R>(
        &self,
        tenant: &str,
        f: impl FnOnce(&mut Tenant) -> Result<R, EmulatorError>,
    ) -> Result<R, EmulatorError> {
        let retention = self.shared.deleted_retention();
        let mut inner = self.shared.lock();
        let t = inner
            .tenant_by_id_mut(tenant)
            .ok_or_else(|| EmulatorError::UnknownTenant(tenant.into()))?;
        purge_expired(t, retention);
        f(t)
    }

    /// An administrator sets a user's manager (both users of the tenant,
    /// not deleted, and not the same person).
    pub fn set_manager(
        &self,
        tenant: &str,
        user: &str,
        manager: &str,
    ) -> Result<(), EmulatorError> {
        self.in_tenant(tenant, |t| {
            let manager_id = live(t, manager)?.id.clone();
            let u = live(t, user)?;
            if u.id == manager_id {
                return Err(EmulatorError::Invalid(format!(
                    "{user} cannot be their own manager"
                )));
            }
            u.manager = Some(manager_id);
            Ok(())
        })
    }

    /// An administrator removes a user's manager.
    pub fn clear_manager(&self, tenant: &str, user: &str) -> Result<(), EmulatorError> {
        self.in_tenant(tenant, |t| match live(t, user)?.manager.take() {
            Some(_) => Ok(()),
            None => Err(EmulatorError::Invalid(format!("{user} has no manager"))),
        })
    }

    /// The id of a user's manager, if any.
    pub fn manager_of(&self, tenant: &str, user: &str) -> Result<Option<String>, EmulatorError> {
        self.in_tenant(tenant, |t| Ok(live(t, user)?.manager.clone()))
    }

    /// The users in the tenant's deleted items, in the order they were
    /// deleted (those past the retention are gone).
    pub fn deleted_users(&self, tenant: &str) -> Result<Vec<EmulatedUser>, EmulatorError> {
        self.in_tenant(tenant, |t| {
            let mut users: Vec<&UserRecord> = t.users.iter().filter(|u| u.is_deleted()).collect();
            users.sort_by_key(|u| (u.deleted_at, u.seq));
            Ok(users.into_iter().map(UserRecord::to_public).collect())
        })
    }

    /// Deletes a user in the deleted items for good, as the 30 days
    /// running out would.
    pub fn purge_deleted_user(&self, tenant: &str, id: &str) -> Result<(), EmulatorError> {
        self.in_tenant(tenant, |t| {
            let before = t.users.len();
            t.users
                .retain(|u| !(u.is_deleted() && u.id.eq_ignore_ascii_case(id)));
            if t.users.len() == before {
                return Err(EmulatorError::UnknownUser(id.into()));
            }
            Ok(())
        })
    }
}
