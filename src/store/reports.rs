//! Read-only queries for `status`, `/metrics` and the admin API: per-company
//! summaries and a paged, newest-first view of the audit log.
use super::Cached as _;
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::audit::AuditRow;
use super::{Context, StateDb, StoreError};
use crate::domain::CompanyId;

/// The most recent failure recorded for a company.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastError {
    pub at: String,
    pub action: String,
    pub outcome: String,
    pub email: Option<String>,
    /// Graph's error code and message, or the reason, as the audit row has it.
    pub message: String,
}

/// One page of the audit log, newest first. `before` is the cursor: rows
/// with a smaller id (older) than it.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub company: Option<CompanyId>,
    pub failed_only: bool,
    pub since: Option<String>,
    pub email: Option<String>,
    pub before: Option<i64>,
    pub limit: usize,
}

impl StateDb {
    pub fn parked_count(&self, company: CompanyId) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT COUNT(*) FROM parked WHERE company_id = ?1",
                [company.0],
                |r| r.get(0),
            )
            .ctx("counting parked users")
    }

    /// When the company last had a write or decision carried out.
    pub fn last_success(&self, company: CompanyId) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT at FROM audit WHERE company_id = ?1 AND outcome = 'ok'
                 ORDER BY id DESC LIMIT 1",
                [company.0],
                |r| r.get(0),
            )
            .optional()
            .ctx("reading the last success")
    }

    pub fn last_error(&self, company: CompanyId) -> Result<Option<LastError>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT at, action, outcome, email, error_code, error_message, detail FROM audit
                 WHERE company_id = ?1 AND outcome IN ('retry', 'failed', 'parked')
                 ORDER BY id DESC LIMIT 1",
                [company.0],
                |r| {
                    let parts: Vec<String> = [4, 5, 6]
                        .map(|i| r.get::<_, Option<String>>(i))
                        .into_iter()
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .flatten()
                        .collect();
                    Ok(LastError {
                        at: r.get(0)?,
                        action: r.get(1)?,
                        outcome: r.get(2)?,
                        email: r.get(3)?,
                        message: parts.join(": "),
                    })
                },
            )
            .optional()
            .ctx("reading the last error")
    }

    /// Up to `limit + 1` rows, so the caller knows whether a next page exists.
    pub fn audit_page(&self, p: &AuditPage) -> Result<Vec<AuditRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, at, company_id, tenant_id, plumm_user_id, email, action, outcome,
                        http_status, error_code, error_message, request_id, client_request_id,
                        attempt, duration_ms, detail
                 FROM audit
                 WHERE (?1 IS NULL OR company_id = ?1)
                   AND (?2 = 0 OR outcome IN ('retry', 'failed', 'parked'))
                   AND (?3 IS NULL OR at >= ?3)
                   AND (?4 IS NULL OR email = ?4 COLLATE NOCASE)
                   AND (?5 IS NULL OR id < ?5)
                 ORDER BY id DESC LIMIT ?6",
            )
            .ctx("reading the audit log")?;
        let rows = stmt
            .query_map(
                params![
                    p.company.map(|c| c.0),
                    p.failed_only,
                    p.since,
                    p.email,
                    p.before,
                    p.limit as i64 + 1,
                ],
                super::audit::audit_row,
            )
            .ctx("reading the audit log")?;
        rows.collect::<Result<_, _>>().ctx("reading the audit log")
    }
}
