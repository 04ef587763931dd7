//! What the daemon remembers of managers: the manager it set on each
//! account, and the people waiting for their manager's account
//! (migrations/state/0011_manager.sql).
use super::Cached as _;
use rusqlite::{params, OptionalExtension};

use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};

impl StateDb {
    /// The manager the daemon last set on the person's account `member`:
    /// `None` if it never set one on this account, `Some(None)` if it
    /// removed it.
    pub fn manager_set(
        &self,
        user: PlummUserId,
        tenant: &TenantId,
        member: &EntraObjectId,
    ) -> Result<Option<Option<EntraObjectId>>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT manager_id FROM managers
                 WHERE plumm_user_id = ?1 AND tenant_id = ?2 AND member_id = ?3",
                params![user.0, tenant.as_str(), member.0],
                |r| Ok(r.get::<_, Option<String>>(0)?.map(EntraObjectId)),
            )
            .optional()
            .ctx("reading the manager set")
    }

    /// Records the manager now on the person's account (`None`: none), and
    /// that the person no longer waits for one.
    pub fn record_manager(
        &self,
        user: PlummUserId,
        tenant: &TenantId,
        member: &EntraObjectId,
        manager: Option<&EntraObjectId>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("recording a manager")?;
        tx.execute_cached(
            "INSERT INTO managers (plumm_user_id, tenant_id, member_id, manager_id, set_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (plumm_user_id) DO UPDATE SET tenant_id = excluded.tenant_id,
               member_id = excluded.member_id, manager_id = excluded.manager_id,
               set_at = excluded.set_at",
            params![
                user.0,
                tenant.as_str(),
                member.0,
                manager.map(|m| m.0.as_str()),
                now_text()
            ],
        )
        .ctx("recording a manager")?;
        tx.execute_cached(
            "DELETE FROM manager_waits WHERE plumm_user_id = ?1",
            [user.0],
        )
        .ctx("recording a manager")?;
        tx.commit().ctx("recording a manager")
    }

    /// The person waits for `manager`'s account before their manager can
    /// be set.
    pub fn wait_for_manager(
        &self,
        user: PlummUserId,
        company: CompanyId,
        manager: PlummUserId,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "INSERT INTO manager_waits (plumm_user_id, company_id, manager_plumm_id, since)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (plumm_user_id) DO UPDATE SET company_id = excluded.company_id,
                   manager_plumm_id = excluded.manager_plumm_id",
                params![user.0, company.0, manager.0, now_text()],
            )
            .ctx("recording a wait for a manager")?;
        Ok(())
    }

    /// The person no longer waits for a manager (none wanted, or refused).
    pub fn stop_waiting_for_manager(&self, user: PlummUserId) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "DELETE FROM manager_waits WHERE plumm_user_id = ?1",
                [user.0],
            )
            .ctx("forgetting a wait for a manager")?;
        Ok(())
    }

    /// The people of `company` waiting for `manager`'s account.
    pub fn waiting_for(
        &self,
        company: CompanyId,
        manager: PlummUserId,
    ) -> Result<Vec<PlummUserId>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT plumm_user_id FROM manager_waits
                 WHERE company_id = ?1 AND manager_plumm_id = ?2 ORDER BY plumm_user_id",
            )
            .ctx("reading waits for a manager")?;
        let rows = stmt
            .query_map(params![company.0, manager.0], |r| {
                Ok(PlummUserId(r.get(0)?))
            })
            .ctx("reading waits for a manager")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading waits for a manager")
    }
}
