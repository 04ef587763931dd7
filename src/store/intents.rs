//! Create intents: what a create is about to bring into existence, recorded
//! before it is sent and settled once its outcome is known.
use super::Cached as _;
use rusqlite::{params, OptionalExtension};

use super::state::{tenant, Intent, IntentOutcome};
use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, PlummUserId, TenantId};

fn intent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Intent> {
    Ok(Intent {
        id: r.get(0)?,
        user: PlummUserId(r.get(1)?),
        company: CompanyId(r.get(2)?),
        tenant: tenant(r.get(3)?)?,
        upn: r.get(4)?,
        mail: r.get(5)?,
        created_at: r.get(6)?,
    })
}

const COLUMNS: &str = "id, plumm_user_id, company_id, tenant_id, upn, mail, created_at";

impl StateDb {
    /// Records that a create for `user` with these identifiers is about to
    /// be sent. Committed before it returns, so it survives the process
    /// dying the next moment (`kill -9`, a crash). It is not fsynced on its
    /// own: an fsync per create would hold the state database behind the
    /// disk for every worker (bench: app-wide pacing efficiency 0.85 ->
    /// 0.58). The next durable hand-over commit fsyncs it with the WAL.
    pub fn record_intent(
        &self,
        user: PlummUserId,
        company: CompanyId,
        tenant: &TenantId,
        upn: &str,
        mail: &str,
    ) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.execute_cached(
            "INSERT INTO create_intents (plumm_user_id, company_id, tenant_id, upn, mail, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user.0, company.0, tenant.as_str(), upn, mail, now_text()],
        )
        .ctx("recording a create intent")?;
        Ok(conn.last_insert_rowid())
    }

    /// The person's creates whose outcome is not known, in any tenant, oldest first.
    pub fn open_intents(&self, user: PlummUserId) -> Result<Vec<Intent>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM create_intents
                 WHERE plumm_user_id = ?1 AND outcome IS NULL ORDER BY id"
            ))
            .ctx("reading create intents")?;
        let rows = stmt
            .query_map([user.0], intent_row)
            .ctx("reading create intents")?;
        rows.collect::<Result<_, _>>().ctx("reading create intents")
    }

    /// Settles every open intent of the person (they left).
    pub fn settle_open_intents(
        &self,
        user: PlummUserId,
        outcome: IntentOutcome,
    ) -> Result<usize, StoreError> {
        self.lock()
            .execute_cached(
                "UPDATE create_intents SET outcome = ?2, settled_at = ?3
                 WHERE plumm_user_id = ?1 AND outcome IS NULL",
                params![user.0, outcome.as_str(), now_text()],
            )
            .ctx("settling create intents")
    }

    pub fn settle_intent(&self, id: i64, outcome: IntentOutcome) -> Result<(), StoreError> {
        let conn = self.lock();
        match outcome {
            // Nothing was made: nothing to remember.
            IntentOutcome::Linked | IntentOutcome::Refused => conn.execute_cached(
                "DELETE FROM create_intents WHERE id = ?1 AND outcome IS NULL",
                [id],
            ),
            _ => conn.execute_cached(
                "UPDATE create_intents SET outcome = ?2, settled_at = ?3
                 WHERE id = ?1 AND outcome IS NULL",
                params![id, outcome.as_str(), now_text()],
            ),
        }
        .ctx("settling a create intent")?;
        Ok(())
    }

    /// The newest create this daemon sent (or was about to) in `tenant` with
    /// this UPN or mail whose account nobody linked: open, given up as
    /// absent, or left behind by a person who left. A resync uses it to
    /// recognise an orphan.
    pub fn unlinked_intent(
        &self,
        tenant: &TenantId,
        upn: &str,
        mail: &str,
    ) -> Result<Option<Intent>, StoreError> {
        self.lock()
            .query_row_cached(
                &format!(
                    "SELECT {COLUMNS} FROM create_intents
                     WHERE tenant_id = ?1 AND (outcome IS NULL OR outcome IN ('absent', 'left'))
                       AND (upn = ?2 COLLATE NOCASE OR mail = ?3 COLLATE NOCASE)
                     ORDER BY id DESC LIMIT 1"
                ),
                params![tenant.as_str(), upn, mail],
                intent_row,
            )
            .optional()
            .ctx("reading create intents")
    }

    /// Opens a settled intent again: a resync found its account unlinked.
    pub fn reopen_intent(&self, id: i64) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "UPDATE create_intents SET outcome = NULL, settled_at = NULL WHERE id = ?1",
                [id],
            )
            .ctx("reopening a create intent")?;
        Ok(())
    }
}
