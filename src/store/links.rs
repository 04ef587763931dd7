//! Links (Plumm user -> Entra object) and parked users.
use super::Cached as _;
use rusqlite::{params, OptionalExtension};

use super::audit::AuditRecord;
use super::state::{tenant, Link, Parked};
use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};

impl StateDb {
    pub fn link(&self, user: PlummUserId) -> Result<Option<Link>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT plumm_user_id, company_id, tenant_id, entra_id, pushed, upn_fallback,
                        created_by_us, linked_at, verify_first, revoke_owed
                 FROM links WHERE plumm_user_id = ?1",
                [user.0],
                |r| {
                    let pushed: String = r.get(4)?;
                    Ok(Link {
                        user: PlummUserId(r.get(0)?),
                        company: CompanyId(r.get(1)?),
                        tenant: tenant(r.get(2)?)?,
                        entra_id: EntraObjectId(r.get(3)?),
                        pushed: serde_json::from_str(&pushed).unwrap_or_default(),
                        upn_fallback: r.get(5)?,
                        created_by_us: r.get(6)?,
                        linked_at: r.get(7)?,
                        verify_first: r.get(8)?,
                        revoke_owed: r.get(9)?,
                    })
                },
            )
            .optional()
            .ctx("reading a link")
    }

    /// The Plumm user already linked to this Entra object, if any.
    pub fn linked_user(
        &self,
        tenant: &TenantId,
        entra_id: &EntraObjectId,
    ) -> Result<Option<PlummUserId>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT plumm_user_id FROM links WHERE tenant_id = ?1 AND entra_id = ?2",
                params![tenant.as_str(), entra_id.0],
                |r| Ok(PlummUserId(r.get(0)?)),
            )
            .optional()
            .ctx("reading a link")
    }

    pub fn save_link(&self, link: &Link) -> Result<(), StoreError> {
        save_link_in(&self.lock(), link)
    }

    /// Saves the link of an account a create made (or a lookup found) and
    /// settles the person's open create intents in that tenant as that
    /// account, in one transaction: a crash leaves both or neither.
    pub fn save_created_link(&self, link: &Link, audit: &AuditRecord) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("saving a link")?;
        save_link_in(&tx, link)?;
        // Its audit row in the same commit: one WAL append of the pages
        // both touch, not two.
        super::audit::insert_audit(&tx, audit)?;
        // Linked: a create that carried this account's UPN or mail made it
        // (or was refused because it exists). Creates under other
        // identifiers stay open: their account, if any, is another one.
        let text = |p: &str| {
            link.pushed
                .get(p)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        tx.execute_cached(
            "DELETE FROM create_intents
             WHERE plumm_user_id = ?1 AND tenant_id = ?2 AND outcome IS NULL
               AND (upn = ?3 COLLATE NOCASE OR mail = ?4 COLLATE NOCASE)",
            params![
                link.user.0,
                link.tenant.as_str(),
                text("userPrincipalName"),
                text("mail")
            ],
        )
        .ctx("settling create intents")?;
        tx.commit().ctx("saving a link")?;
        super::audit::counted(audit);
        Ok(())
    }

    /// Forgets the link and the memberships and manager the daemon set for it: the
    /// Plumm id may be reused by a new person, who must not inherit them.
    pub fn remove_link(&self, user: PlummUserId) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("removing a link")?;
        tx.execute_cached("DELETE FROM links WHERE plumm_user_id = ?1", [user.0])
            .ctx("removing a link")?;
        tx.execute_cached(
            "DELETE FROM managed_memberships WHERE plumm_user_id = ?1",
            [user.0],
        )
        .ctx("forgetting managed memberships")?;
        tx.execute_cached(
            "DELETE FROM membership_queue WHERE plumm_user_id = ?1",
            [user.0],
        )
        .ctx("forgetting queued memberships")?;
        tx.execute_cached("DELETE FROM managers WHERE plumm_user_id = ?1", [user.0])
            .ctx("forgetting the manager set")?;
        tx.execute_cached(
            "DELETE FROM manager_waits WHERE plumm_user_id = ?1",
            [user.0],
        )
        .ctx("forgetting a wait for a manager")?;
        tx.execute(
            "DELETE FROM licence_errors WHERE plumm_user_id = ?1",
            [user.0],
        )
        .ctx("forgetting licence errors")?;
        tx.commit().ctx("removing a link")
    }

    /// Up to `n` accounts of the company the daemon manages and may change
    /// (not parked), other than `except`'s, with when they were linked:
    /// a write that changes nothing to one of them tells whether a 403 was
    /// about an account or about the app. Accounts the daemon created
    /// first (never administrators when made), then the oldest links:
    /// long replicated.
    pub fn write_witnesses(
        &self,
        company: CompanyId,
        except: Option<PlummUserId>,
        n: usize,
    ) -> Result<Vec<(EntraObjectId, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT entra_id, linked_at FROM links
                 WHERE company_id = ?1 AND (?2 IS NULL OR plumm_user_id <> ?2)
                   AND plumm_user_id NOT IN (SELECT plumm_user_id FROM parked)
                 ORDER BY created_by_us DESC, linked_at, plumm_user_id LIMIT ?3",
            )
            .ctx("choosing accounts to check write access with")?;
        let rows = stmt
            .query_map(params![company.0, except.map(|u| u.0), n as i64], |r| {
                Ok((EntraObjectId(r.get(0)?), r.get(1)?))
            })
            .ctx("choosing accounts to check write access with")?;
        rows.collect::<Result<_, _>>()
            .ctx("choosing accounts to check write access with")
    }

    pub fn links_count(&self, company: CompanyId) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT COUNT(*) FROM links WHERE company_id = ?1",
                [company.0],
                |r| r.get(0),
            )
            .ctx("counting links")
    }

    pub fn park(&self, p: &Parked) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "INSERT INTO parked (plumm_user_id, company_id, email, reason, parked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (plumm_user_id) DO UPDATE SET company_id = excluded.company_id,
                   email = excluded.email, reason = excluded.reason, parked_at = excluded.parked_at",
                params![p.user.0, p.company.0, p.email, p.reason, p.parked_at],
            )
            .ctx("parking a user")?;
        Ok(())
    }

    pub fn parked(&self, company: Option<CompanyId>) -> Result<Vec<Parked>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT plumm_user_id, company_id, email, reason, parked_at FROM parked
                 WHERE ?1 IS NULL OR company_id = ?1 ORDER BY plumm_user_id",
            )
            .ctx("reading parked users")?;
        let rows = stmt
            .query_map([company.map(|c| c.0)], |r| {
                Ok(Parked {
                    user: PlummUserId(r.get(0)?),
                    company: CompanyId(r.get(1)?),
                    email: r.get(2)?,
                    reason: r.get(3)?,
                    parked_at: r.get(4)?,
                })
            })
            .ctx("reading parked users")?;
        rows.collect::<Result<_, _>>().ctx("reading parked users")
    }
}

fn save_link_in(conn: &rusqlite::Connection, link: &Link) -> Result<(), StoreError> {
    let pushed = serde_json::to_string(&link.pushed).unwrap_or_else(|_| "{}".into());
    conn.execute_cached(
        "INSERT INTO links (plumm_user_id, company_id, tenant_id, entra_id, pushed,
                            upn_fallback, created_by_us, linked_at, updated_at,
                            verify_first, revoke_owed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (plumm_user_id) DO UPDATE SET company_id = excluded.company_id,
           tenant_id = excluded.tenant_id, entra_id = excluded.entra_id,
           pushed = excluded.pushed, upn_fallback = excluded.upn_fallback,
           created_by_us = excluded.created_by_us, linked_at = excluded.linked_at,
           updated_at = excluded.updated_at, verify_first = excluded.verify_first,
           revoke_owed = excluded.revoke_owed",
        params![
            link.user.0,
            link.company.0,
            link.tenant.as_str(),
            link.entra_id.0,
            pushed,
            link.upn_fallback,
            link.created_by_us,
            link.linked_at,
            now_text(),
            link.verify_first,
            link.revoke_owed,
        ],
    )
    .ctx("saving a link")?;
    Ok(())
}
