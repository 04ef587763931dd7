//! OAuth `state` values of the connect flow. Stored hashed, bound to a
//! company and the Plumm admin who clicked Connect, single-use, short-lived.
use super::Cached as _;
use rusqlite::{params, OptionalExtension};

use super::{now_text, time_text, Context, StateDb, StoreError};
use crate::domain::CompanyId;

/// Who started a connect, recovered from a valid `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectStart {
    pub company: CompanyId,
    pub admin: String,
}

/// Why a `state` from a callback cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRejected {
    /// Never issued here (forged, mistyped, or from another Plumm installation).
    Unknown,
    /// Already used by an earlier callback (a replay, or the Back button).
    Used,
    /// Older than its lifetime.
    Expired,
}

/// States this much past their expiry are deleted when a new one is made:
/// long enough to tell "expired" from "unknown" for a while, short enough
/// that the table stays small.
const KEEP_EXPIRED: chrono::Duration = chrono::Duration::days(1);

impl StateDb {
    /// Records a new state (by its hash) valid until `expires_at`.
    pub fn create_oauth_state(
        &self,
        state_hash: &str,
        start: &ConnectStart,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("recording a connect state")?;
        tx.execute_cached(
            "DELETE FROM oauth_states WHERE expires_at < ?1",
            [time_text(now - KEEP_EXPIRED)],
        )
        .ctx("pruning old connect states")?;
        tx.execute_cached(
            "INSERT INTO oauth_states (state_hash, company_id, admin_email, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                state_hash,
                start.company.0,
                start.admin,
                time_text(now),
                time_text(expires_at)
            ],
        )
        .ctx("recording a connect state")?;
        tx.commit().ctx("recording a connect state")
    }

    /// Marks the state used and returns who started the connect; in one
    /// transaction, so two callbacks racing with the same state cannot both
    /// succeed.
    pub fn take_oauth_state(
        &self,
        state_hash: &str,
    ) -> Result<Result<ConnectStart, StateRejected>, StoreError> {
        let now = now_text();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("reading a connect state")?;
        let row: Option<(i64, String, String, Option<String>)> = tx
            .query_row_cached(
                "SELECT company_id, admin_email, expires_at, used_at FROM oauth_states
                 WHERE state_hash = ?1",
                [state_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .ctx("reading a connect state")?;
        let Some((company, admin, expires_at, used_at)) = row else {
            return Ok(Err(StateRejected::Unknown));
        };
        if used_at.is_some() {
            return Ok(Err(StateRejected::Used));
        }
        // Even an expired state is spent: it can never be tried again.
        tx.execute_cached(
            "UPDATE oauth_states SET used_at = ?2 WHERE state_hash = ?1",
            params![state_hash, now],
        )
        .ctx("using a connect state")?;
        tx.commit().ctx("using a connect state")?;
        // Both are fixed-width UTC text, so text order is time order.
        if expires_at <= now {
            return Ok(Err(StateRejected::Expired));
        }
        Ok(Ok(ConnectStart {
            company: CompanyId(company),
            admin,
        }))
    }
}
