//! The audit log: one row per Graph write attempt and per decision.
//! Append-only (the schema refuses UPDATE and DELETE), and never a secret:
//! rows hold statuses, ids and Graph's error text, never bodies or tokens.
use rusqlite::params;
use serde::Serialize;

use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, PlummUserId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The write succeeded, or the decision was carried out.
    Ok,
    /// The attempt failed and will be retried.
    Retry,
    /// The attempt failed; the change stays pending for a later try.
    Failed,
    /// The user cannot be pushed until it changes in Plumm.
    Parked,
    /// Nothing to do, by design (unconnected company, on_delete = ignore...).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
            Outcome::Parked => "parked",
            Outcome::Skipped => "skipped",
        }
    }
}

/// A row to append. Build with `AuditRecord::new` and the setters.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord {
    pub company: Option<CompanyId>,
    pub tenant: Option<TenantId>,
    pub user: Option<PlummUserId>,
    pub email: Option<String>,
    pub action: String,
    pub outcome: Option<Outcome>,
    pub http_status: Option<u16>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub attempt: Option<u32>,
    pub duration_ms: Option<u64>,
    pub detail: Option<String>,
}

impl AuditRecord {
    pub fn new(action: &str, outcome: Outcome) -> Self {
        Self {
            action: action.to_string(),
            outcome: Some(outcome),
            ..Self::default()
        }
    }
}

/// A row as stored, for `audit` and the admin API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub company_id: Option<i64>,
    pub tenant_id: Option<String>,
    pub plumm_user_id: Option<i64>,
    pub email: Option<String>,
    pub action: String,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub attempt: Option<i64>,
    pub duration_ms: Option<i64>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub company: Option<CompanyId>,
    pub email: Option<String>,
    pub user: Option<PlummUserId>,
    pub failed_only: bool,
    /// Rows at or after this time ('%Y-%m-%dT%H:%M:%S.%3fZ').
    pub since: Option<String>,
    pub limit: Option<usize>,
}

pub(crate) fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        at: r.get(1)?,
        company_id: r.get(2)?,
        tenant_id: r.get(3)?,
        plumm_user_id: r.get(4)?,
        email: r.get(5)?,
        action: r.get(6)?,
        outcome: r.get(7)?,
        http_status: r.get(8)?,
        error_code: r.get(9)?,
        error_message: r.get(10)?,
        request_id: r.get(11)?,
        client_request_id: r.get(12)?,
        attempt: r.get(13)?,
        duration_ms: r.get(14)?,
        detail: r.get(15)?,
    })
}

/// Appends `r` on `conn` (a transaction, when the row goes with what it
/// records); the caller counts it ([`counted`]) once committed.
pub(super) fn insert_audit(conn: &rusqlite::Connection, r: &AuditRecord) -> Result<(), StoreError> {
    let outcome = r.outcome.unwrap_or(Outcome::Ok);
    conn.prepare_cached(
        "INSERT INTO audit (at, company_id, tenant_id, plumm_user_id, email, action, outcome,
                   http_status, error_code, error_message, request_id, client_request_id, attempt,
                   duration_ms, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )
    .and_then(|mut s| {
        s.execute(params![
            now_text(),
            r.company.map(|c| c.0),
            r.tenant.as_ref().map(|t| t.as_str().to_string()),
            r.user.map(|u| u.0),
            r.email,
            r.action,
            outcome.as_str(),
            r.http_status,
            r.error_code,
            r.error_message,
            r.request_id,
            r.client_request_id,
            r.attempt,
            r.duration_ms.map(|d| d as i64),
            r.detail,
        ])
    })
    .ctx("appending to the audit log")?;
    Ok(())
}

/// The audit row metric, for a row on disk.
pub(super) fn counted(r: &AuditRecord) {
    crate::metrics::audit_row(&r.action, r.outcome.unwrap_or(Outcome::Ok).as_str());
}

impl StateDb {
    pub fn append_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        insert_audit(&self.lock(), r)?;
        counted(r);
        Ok(())
    }

    /// Rows matching `f`, oldest first (the newest `limit` of them).
    pub fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT * FROM (
                   SELECT id, at, company_id, tenant_id, plumm_user_id, email, action, outcome,
                          http_status, error_code, error_message, request_id, client_request_id,
                          attempt, duration_ms, detail
                   FROM audit
                   WHERE (?1 IS NULL OR company_id = ?1)
                     AND (?2 IS NULL OR email = ?2 COLLATE NOCASE)
                     AND (?3 IS NULL OR plumm_user_id = ?3)
                     AND (?4 = 0 OR outcome IN ('retry', 'failed', 'parked'))
                     AND (?5 IS NULL OR at >= ?5)
                   ORDER BY id DESC LIMIT ?6)
                 ORDER BY id",
            )
            .ctx("reading the audit log")?;
        let rows = stmt
            .query_map(
                params![
                    f.company.map(|c| c.0),
                    f.email,
                    f.user.map(|u| u.0),
                    f.failed_only,
                    f.since,
                    f.limit.map(|l| l as i64).unwrap_or(-1),
                ],
                audit_row,
            )
            .ctx("reading the audit log")?;
        rows.collect::<Result<_, _>>().ctx("reading the audit log")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_log_refuses_updates_and_deletes() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate_state(&mut conn).unwrap();
        let db = StateDb::from_connection(conn);
        db.append_audit(&AuditRecord::new("create", Outcome::Ok))
            .unwrap();
        let conn = db.lock();
        let upd = conn.execute("UPDATE audit SET outcome = 'failed'", []);
        assert!(upd.unwrap_err().to_string().contains("append-only"));
        let del = conn.execute("DELETE FROM audit", []);
        assert!(del.unwrap_err().to_string().contains("append-only"));
    }
}
