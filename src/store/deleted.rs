//! The accounts this daemon soft-deleted, for rehire restore
//! (migrations/state/0012_restore.sql).
use super::Cached as _;
use rusqlite::params;

use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{EntraObjectId, PlummUserId, TenantId};

impl StateDb {
    /// Remembers an account the daemon deleted (restorable for 30 days).
    pub fn record_deleted(
        &self,
        tenant: &TenantId,
        entra_id: &EntraObjectId,
        user: PlummUserId,
        upn: &str,
        mail: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "INSERT INTO deleted_accounts (tenant_id, entra_id, plumm_user_id, upn, mail, deleted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant_id, entra_id) DO UPDATE SET plumm_user_id = excluded.plumm_user_id,
                   upn = excluded.upn, mail = excluded.mail, deleted_at = excluded.deleted_at",
                params![tenant.as_str(), entra_id.0, user.0, upn, mail, now_text()],
            )
            .ctx("recording a deleted account")?;
        Ok(())
    }

    /// Accounts the daemon deleted in `tenant` for this person (by Plumm id)
    /// or this mail, newest first, each with when it was deleted.
    pub fn deleted_accounts(
        &self,
        tenant: &TenantId,
        user: PlummUserId,
        mail: &str,
    ) -> Result<Vec<(EntraObjectId, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT entra_id, deleted_at FROM deleted_accounts
                 WHERE tenant_id = ?1 AND (plumm_user_id = ?2 OR mail = ?3 COLLATE NOCASE)
                 ORDER BY deleted_at DESC",
            )
            .ctx("reading deleted accounts")?;
        let rows = stmt
            .query_map(params![tenant.as_str(), user.0, mail], |r| {
                Ok((EntraObjectId(r.get(0)?), r.get(1)?))
            })
            .ctx("reading deleted accounts")?;
        rows.collect::<Result<_, _>>()
            .ctx("reading deleted accounts")
    }

    /// The account is no longer in Entra's deleted items (restored, or
    /// purged).
    pub fn forget_deleted(
        &self,
        tenant: &TenantId,
        entra_id: &EntraObjectId,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "DELETE FROM deleted_accounts WHERE tenant_id = ?1 AND entra_id = ?2 COLLATE NOCASE",
                params![tenant.as_str(), entra_id.0],
            )
            .ctx("forgetting a deleted account")?;
        Ok(())
    }
}
