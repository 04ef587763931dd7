//! Storage for full resyncs: requests from the CLI to a running daemon, the
//! mass-deprovision brake and its ledger, and the batched reads a resync
//! makes per page of the tenant's listing.
use super::Cached as _;
use std::collections::HashMap;

use rusqlite::{params, params_from_iter, OptionalExtension};
use serde::Serialize;

use super::plumm::{user_from_row, USER_COLUMNS};
use super::{now_text, Context, StateDb, StoreError};
use crate::domain::{CompanyId, PlummUser, PlummUserId, TenantId};

/// `pending.last_error` of a change the brake holds: how a release finds them.
pub const HELD_MARK: &str = "held by the mass-deprovision brake";
/// `next_attempt_at` of a held change: never due until released.
pub const HELD_UNTIL: &str = "9999-12-31T00:00:00.000Z";

/// A request from `entra-daemon resync` to the running daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResyncRequest {
    pub id: i64,
    pub company: Option<CompanyId>,
    pub dry_run: bool,
    pub allow_mass_deprovision: bool,
    /// "cli", or "handover" (queued by [`super::handover::reconcile`]).
    pub trigger: String,
}

/// A company's brake, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Brake {
    pub company: i64,
    /// "held" or "released".
    pub status: String,
    pub held_at: Option<String>,
    /// Suspensions and deletions counted when it tripped.
    pub held_count: Option<i64>,
    /// The company's linked users then.
    pub linked: Option<i64>,
    /// "resync" or "real-time".
    pub source: Option<String>,
    pub reason: Option<String>,
    pub released_at: Option<String>,
    pub released_by: Option<String>,
}

impl Brake {
    pub fn is_held(&self) -> bool {
        self.status == "held"
    }
}

/// What the state database knows about a listed Entra object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkBrief {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub upn_fallback: bool,
}

fn brake_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Brake> {
    Ok(Brake {
        company: r.get(0)?,
        status: r.get(1)?,
        held_at: r.get(2)?,
        held_count: r.get(3)?,
        linked: r.get(4)?,
        source: r.get(5)?,
        reason: r.get(6)?,
        released_at: r.get(7)?,
        released_by: r.get(8)?,
    })
}

const BRAKE_COLUMNS: &str =
    "company_id, status, held_at, held_count, linked, source, reason, released_at, released_by";

impl StateDb {
    // ---- requests from the CLI ---------------------------------------------

    pub fn request_resync(
        &self,
        company: Option<CompanyId>,
        dry_run: bool,
        allow_mass_deprovision: bool,
    ) -> Result<i64, StoreError> {
        let conn = self.lock();
        conn.execute_cached(
            "INSERT INTO resync_requests (requested_at, company_id, dry_run, allow_mass_deprovision)
             VALUES (?1, ?2, ?3, ?4)",
            params![now_text(), company.map(|c| c.0), dry_run, allow_mass_deprovision],
        )
        .ctx("recording a resync request")?;
        Ok(conn.last_insert_rowid())
    }

    /// New requests, marked running in the same transaction so each is
    /// claimed once.
    pub fn claim_resync_requests(&self) -> Result<Vec<ResyncRequest>, StoreError> {
        let mut conn = self.lock();
        // Polled often: a plain read first, the write lock only when there is work.
        let any: bool = conn
            .query_row_cached(
                "SELECT EXISTS (SELECT 1 FROM resync_requests WHERE status = 'new')",
                [],
                |r| r.get(0),
            )
            .ctx("reading resync requests")?;
        if !any {
            return Ok(Vec::new());
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("claiming resync requests")?;
        let rows: Vec<ResyncRequest> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, company_id, dry_run, allow_mass_deprovision, trigger FROM resync_requests
                     WHERE status = 'new' ORDER BY id",
                )
                .ctx("reading resync requests")?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(ResyncRequest {
                        id: r.get(0)?,
                        company: r.get::<_, Option<i64>>(1)?.map(CompanyId),
                        dry_run: r.get(2)?,
                        allow_mass_deprovision: r.get(3)?,
                        trigger: r.get(4)?,
                    })
                })
                .ctx("reading resync requests")?;
            rows.collect::<Result<_, _>>()
                .ctx("reading resync requests")?
        };
        if !rows.is_empty() {
            tx.execute_cached(
                "UPDATE resync_requests SET status = 'running' WHERE status = 'new'",
                [],
            )
            .ctx("claiming resync requests")?;
        }
        tx.commit().ctx("claiming resync requests")?;
        Ok(rows)
    }

    pub fn finish_resync_request(&self, id: i64, ok: bool, result: &str) -> Result<(), StoreError> {
        self.lock()
            .execute_cached(
                "UPDATE resync_requests SET status = ?2, result = ?3, finished_at = ?4 WHERE id = ?1",
                params![id, if ok { "done" } else { "failed" }, result, now_text()],
            )
            .ctx("answering a resync request")?;
        Ok(())
    }

    /// (status, result) of a request.
    pub fn resync_request(&self, id: i64) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT status, result FROM resync_requests WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("reading a resync request")
    }

    // ---- the mass-deprovision brake ------------------------------------------

    pub fn brake(&self, company: CompanyId) -> Result<Option<Brake>, StoreError> {
        self.lock()
            .query_row_cached(
                &format!("SELECT {BRAKE_COLUMNS} FROM brakes WHERE company_id = ?1"),
                [company.0],
                brake_row,
            )
            .optional()
            .ctx("reading the brake")
    }

    /// Companies whose suspensions and deletions are held, for `status`.
    pub fn held_brakes(&self) -> Result<Vec<Brake>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {BRAKE_COLUMNS} FROM brakes WHERE status = 'held' ORDER BY company_id"
            ))
            .ctx("reading held brakes")?;
        let rows = stmt.query_map([], brake_row).ctx("reading held brakes")?;
        rows.collect::<Result<_, _>>().ctx("reading held brakes")
    }

    /// Holds the company's suspensions and deletions; false when already held.
    pub fn hold_brake(
        &self,
        company: CompanyId,
        count: i64,
        linked: i64,
        source: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute_cached(
                "INSERT INTO brakes (company_id, status, held_at, held_count, linked, source, reason)
                 VALUES (?1, 'held', ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (company_id) DO UPDATE SET status = 'held', held_at = excluded.held_at,
                   held_count = excluded.held_count, linked = excluded.linked,
                   source = excluded.source, reason = excluded.reason
                 WHERE brakes.status != 'held'",
                params![company.0, now_text(), count, linked, source, reason],
            )
            .ctx("holding the brake")?;
        Ok(n == 1)
    }

    /// Releases the brake: every suspension and deletion queued until now
    /// may go, held changes become due at once. Returns how many were held.
    pub fn release_brake(&self, company: CompanyId, by: &str) -> Result<usize, StoreError> {
        let now = now_text();
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("releasing the brake")?;
        tx.execute_cached(
            "INSERT INTO brakes (company_id, status, released_at, released_by)
             VALUES (?1, 'released', ?2, ?3)
             ON CONFLICT (company_id) DO UPDATE SET status = 'released',
               released_at = excluded.released_at, released_by = excluded.released_by",
            params![company.0, now, by],
        )
        .ctx("releasing the brake")?;
        let n = tx
            .execute_cached(
                "UPDATE pending SET next_attempt_at = NULL, attempts = 0, last_error = NULL
                 WHERE company_id = ?1 AND last_error LIKE ?2",
                params![company.0, format!("{HELD_MARK}%")],
            )
            .ctx("releasing held changes")?;
        tx.commit().ctx("releasing the brake")?;
        Ok(n)
    }

    /// Suspensions and deletions waiting in the company's backlog (queued
    /// after `after`, the last release): deletions of linked users, and
    /// changes to inactive of users whose account is enabled.
    pub fn deprovision_backlog(
        &self,
        company: CompanyId,
        after: Option<&str>,
        removes_deprovision: bool,
    ) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached(
                "SELECT COUNT(*) FROM pending p LEFT JOIN links l ON l.plumm_user_id = p.plumm_user_id
                 WHERE p.company_id = ?1 AND (?2 IS NULL OR p.first_queued_at > ?2)
                   AND ((p.kind = 'remove' AND ?3 AND l.plumm_user_id IS NOT NULL)
                     OR (p.kind = 'upsert' AND json_extract(p.snapshot, '$.status') = 'inactive'
                         AND COALESCE(json_extract(l.pushed, '$.accountEnabled'), 0) = 1))",
                params![company.0, after, removes_deprovision],
                |r| r.get(0),
            )
            .ctx("counting pending deprovisions")
    }

    /// Deprovisions let through since `since` that count toward the brake.
    pub fn deprovisions_since(&self, company: CompanyId, since: &str) -> Result<i64, StoreError> {
        self.lock()
            .query_row_cached(
                // Each person once, and not while still pending: the backlog
                // already counts them (a retried suspension is one).
                "SELECT COUNT(DISTINCT d.plumm_user_id) FROM deprovisions d
                 WHERE d.company_id = ?1 AND d.at >= ?2 AND d.exempt = 0
                   AND NOT EXISTS (SELECT 1 FROM pending p WHERE p.plumm_user_id = d.plumm_user_id)",
                params![company.0, since],
                |r| r.get(0),
            )
            .ctx("counting recent deprovisions")
    }

    /// Records a deprovision let through; forgets those older than `forget_before`.
    pub fn record_deprovision(
        &self,
        company: CompanyId,
        user: PlummUserId,
        exempt: bool,
        forget_before: &str,
    ) -> Result<(), StoreError> {
        let conn = self.lock();
        conn.execute_cached("DELETE FROM deprovisions WHERE at < ?1", [forget_before])
            .ctx("pruning the deprovision ledger")?;
        conn.execute_cached(
            "INSERT INTO deprovisions (company_id, plumm_user_id, at, exempt) VALUES (?1, ?2, ?3, ?4)",
            params![company.0, user.0, now_text(), exempt],
        )
        .ctx("recording a deprovision")?;
        Ok(())
    }

    // ---- reads for one page of a listing -------------------------------------

    /// The links of `tenant` to any of `ids`, by Entra id.
    pub fn links_by_entra_ids(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, LinkBrief>, StoreError> {
        let conn = self.lock();
        let mut out = HashMap::new();
        for chunk in ids.chunks(900) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT entra_id, plumm_user_id, company_id, upn_fallback FROM links
                     WHERE tenant_id = ? AND entra_id IN ({marks})"
                ))
                .ctx("reading links")?;
            let args = std::iter::once(tenant.as_str().to_string()).chain(chunk.iter().cloned());
            let rows = stmt
                .query_map(params_from_iter(args), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        LinkBrief {
                            user: PlummUserId(r.get(1)?),
                            company: CompanyId(r.get(2)?),
                            upn_fallback: r.get(3)?,
                        },
                    ))
                })
                .ctx("reading links")?;
            for row in rows {
                let (id, brief) = row.ctx("reading links")?;
                out.insert(id, brief);
            }
        }
        Ok(out)
    }

    /// Audit rows of full resyncs (the newest `limit`), oldest first.
    pub fn resync_runs(
        &self,
        company: Option<CompanyId>,
        limit: usize,
    ) -> Result<Vec<super::AuditRow>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT * FROM (
                   SELECT id, at, company_id, tenant_id, plumm_user_id, email, action, outcome,
                          http_status, error_code, error_message, request_id, client_request_id,
                          attempt, duration_ms, detail
                   FROM audit WHERE action = 'resync' AND (?1 IS NULL OR company_id = ?1)
                   ORDER BY id DESC LIMIT ?2)
                 ORDER BY id",
            )
            .ctx("reading resync runs")?;
        let rows = stmt
            .query_map(
                params![company.map(|c| c.0), limit as i64],
                super::audit::audit_row,
            )
            .ctx("reading resync runs")?;
        rows.collect::<Result<_, _>>().ctx("reading resync runs")
    }
}

/// Plumm users by id (any company), for the Entra users a page links to.
pub fn plumm_users_by_ids(
    conn: &rusqlite::Connection,
    ids: &[PlummUserId],
) -> Result<HashMap<PlummUserId, PlummUser>, StoreError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(900) {
        let marks = vec!["?"; chunk.len()].join(",");
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id IN ({marks})"
            ))
            .ctx("reading Plumm users")?;
        let rows = stmt
            .query_map(params_from_iter(chunk.iter().map(|u| u.0)), user_from_row)
            .ctx("reading Plumm users")?;
        for row in rows {
            let u = row.ctx("reading Plumm users")?;
            out.insert(u.id, u);
        }
    }
    Ok(out)
}

/// Calls `f` with each user of `company` in id order, one row at a time:
/// memory does not grow with the company.
pub fn for_each_company_user(
    conn: &rusqlite::Connection,
    company: CompanyId,
    mut f: impl FnMut(PlummUser) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE company_id = ?1 ORDER BY id"
        ))
        .ctx("reading Plumm's users")?;
    let rows = stmt
        .query_map([company.0], user_from_row)
        .ctx("reading Plumm's users")?;
    let mut n = 0;
    for row in rows {
        f(row.ctx("reading Plumm's users")?)?;
        n += 1;
    }
    Ok(n)
}
