//! The daemon's state database: connections, links, pending work, parked
//! users. Each method is one short transaction.
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, OptionalExtension};

use super::{now_text, Context, StoreError};
use crate::domain::{CompanyId, EntraObjectId, PlummUserId, TenantId};
use crate::graph::Priority;
use crate::plan::Props;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub company: CompanyId,
    pub tenant: TenantId,
    pub connected_at: String,
    pub connected_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub tenant: TenantId,
    pub entra_id: EntraObjectId,
    /// What Entra holds for the properties we manage, as far as we know.
    pub pushed: Props,
    pub upn_fallback: bool,
    pub created_by_us: bool,
    pub linked_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Upsert,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub kind: PendingKind,
    pub snapshot: String,
    pub seq: i64,
    pub priority: Priority,
    pub attempts: i64,
    pub first_queued_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Parked {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub email: String,
    pub reason: String,
    pub parked_at: String,
}

/// One change to record as pending.
#[derive(Debug, Clone)]
pub struct Enqueue {
    pub user: PlummUserId,
    pub company: CompanyId,
    pub kind: PendingKind,
    pub snapshot: String,
    pub priority: Priority,
}

pub struct StateDb {
    conn: Mutex<rusqlite::Connection>,
}

fn tenant(raw: String) -> rusqlite::Result<TenantId> {
    TenantId::parse(&raw).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl StateDb {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::from_connection(super::open(path)?))
    }

    pub fn from_connection(conn: rusqlite::Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
        }
    }

    /// SQLite calls here are short (well under a millisecond in WAL mode),
    /// so async callers take the lock directly.
    pub(crate) fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().expect("state database lock poisoned")
    }

    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .ctx("reading the state data_version")
    }

    // ---- connections -------------------------------------------------------

    /// Records that `company` syncs to `tenant`. Refuses a tenant already
    /// connected to another company, and a company connected elsewhere.
    pub fn connect(
        &self,
        company: CompanyId,
        tenant: &TenantId,
        by: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.lock();
        // IMMEDIATE: this reads then writes while other connections (the
        // daemon, the connect server) write; a deferred transaction would
        // fail with SQLITE_BUSY instead of waiting when it upgrades.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("connecting")?;
        let holder: Option<i64> = tx
            .query_row(
                "SELECT company_id FROM connections WHERE tenant_id = ?1 AND status = 'connected'",
                [tenant.as_str()],
                |r| r.get(0),
            )
            .optional()
            .ctx("checking the tenant")?;
        if let Some(other) = holder.filter(|c| *c != company.0) {
            return Err(StoreError::Conflict(format!(
                "tenant {tenant} is already connected to company {other}; disconnect it there first"
            )));
        }
        let current: Option<(String, String)> = tx
            .query_row(
                "SELECT tenant_id, status FROM connections WHERE company_id = ?1",
                [company.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("checking the company")?;
        if let Some((t, status)) = &current {
            if status == "connected" && t != tenant.as_str() {
                return Err(StoreError::Conflict(format!(
                    "company {company} is already connected to tenant {t}; disconnect it first"
                )));
            }
        }
        let now = now_text();
        tx.execute(
            "INSERT INTO connections (company_id, tenant_id, status, connected_at, connected_by, updated_at)
             VALUES (?1, ?2, 'connected', ?3, ?4, ?3)
             ON CONFLICT (company_id) DO UPDATE SET tenant_id = excluded.tenant_id,
               status = 'connected', connected_at = excluded.connected_at,
               connected_by = excluded.connected_by, updated_at = excluded.updated_at",
            params![company.0, tenant.as_str(), now, by],
        )
        .ctx("recording the connection")?;
        tx.commit().ctx("recording the connection")
    }

    /// Stops syncing `company`: its pending work is dropped (returned, for
    /// the audit log); links and history stay for a later reconnect.
    pub fn disconnect(&self, company: CompanyId) -> Result<Option<usize>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .ctx("disconnecting")?;
        let n = tx
            .execute(
                "UPDATE connections SET status = 'disconnected', updated_at = ?2
                 WHERE company_id = ?1 AND status = 'connected'",
                params![company.0, now_text()],
            )
            .ctx("disconnecting")?;
        if n == 0 {
            return Ok(None);
        }
        let dropped = tx
            .execute("DELETE FROM pending WHERE company_id = ?1", [company.0])
            .ctx("dropping pending work")?;
        tx.commit().ctx("disconnecting")?;
        Ok(Some(dropped))
    }

    pub fn connection(&self, company: CompanyId) -> Result<Option<Connection>, StoreError> {
        self.lock()
            .query_row(
                "SELECT company_id, tenant_id, connected_at, connected_by FROM connections
                 WHERE company_id = ?1 AND status = 'connected'",
                [company.0],
                |r| {
                    Ok(Connection {
                        company: CompanyId(r.get(0)?),
                        tenant: tenant(r.get(1)?)?,
                        connected_at: r.get(2)?,
                        connected_by: r.get(3)?,
                    })
                },
            )
            .optional()
            .ctx("reading a connection")
    }

    pub fn connections(&self) -> Result<Vec<Connection>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT company_id, tenant_id, connected_at, connected_by FROM connections
                 WHERE status = 'connected' ORDER BY company_id",
            )
            .ctx("reading connections")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Connection {
                    company: CompanyId(r.get(0)?),
                    tenant: tenant(r.get(1)?)?,
                    connected_at: r.get(2)?,
                    connected_by: r.get(3)?,
                })
            })
            .ctx("reading connections")?;
        rows.collect::<Result<_, _>>().ctx("reading connections")
    }

    // ---- pending work --------------------------------------------------------

    pub fn outbox_cursor(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row(
                "SELECT outbox_cursor FROM daemon_meta WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .ctx("reading the outbox cursor")
    }

    /// Records changes as pending and, in the same transaction, advances the
    /// outbox cursor (when given): after a crash either both happened or
    /// neither did. A new change for a user replaces the older snapshot,
    /// takes a new `seq`, keeps the higher priority, and forgets past
    /// failures (the user changed: try at once).
    pub fn enqueue(&self, items: &[Enqueue], cursor: Option<i64>) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().ctx("recording changes")?;
        {
            let mut next_seq = tx
                .prepare_cached(
                    "UPDATE daemon_meta SET next_seq = next_seq + 1 WHERE id = 1 RETURNING next_seq - 1",
                )
                .ctx("numbering changes")?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO pending (plumm_user_id, company_id, kind, snapshot, seq, priority, first_queued_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (plumm_user_id) DO UPDATE SET
                       company_id = excluded.company_id, kind = excluded.kind,
                       snapshot = excluded.snapshot, seq = excluded.seq,
                       priority = MIN(priority, excluded.priority),
                       attempts = 0, next_attempt_at = NULL, last_error = NULL",
                )
                .ctx("recording changes")?;
            let now = now_text();
            for it in items {
                let seq: i64 = next_seq
                    .query_row([], |r| r.get(0))
                    .ctx("numbering changes")?;
                let kind = match it.kind {
                    PendingKind::Upsert => "upsert",
                    PendingKind::Remove => "remove",
                };
                upsert
                    .execute(params![
                        it.user.0,
                        it.company.0,
                        kind,
                        it.snapshot,
                        seq,
                        it.priority.as_i64(),
                        now
                    ])
                    .ctx("recording changes")?;
            }
            if let Some(c) = cursor {
                tx.execute(
                    "UPDATE daemon_meta SET outbox_cursor = ?1 WHERE id = 1",
                    [c],
                )
                .ctx("advancing the outbox cursor")?;
            }
        }
        tx.commit().ctx("recording changes")
    }

    /// Up to `limit` entries of `company` that are due, real-time first,
    /// then in arrival order; users in `busy` (being worked on) are skipped.
    pub fn due(
        &self,
        company: CompanyId,
        now: &str,
        limit: usize,
        busy: &HashSet<PlummUserId>,
    ) -> Result<Vec<PendingEntry>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT plumm_user_id, company_id, kind, snapshot, seq, priority, attempts, first_queued_at
                 FROM pending WHERE company_id = ?1 AND (next_attempt_at IS NULL OR next_attempt_at <= ?2)
                 ORDER BY priority, seq LIMIT ?3",
            )
            .ctx("reading pending work")?;
        let rows = stmt
            .query_map(params![company.0, now, (limit + busy.len()) as i64], |r| {
                let kind: String = r.get(2)?;
                Ok(PendingEntry {
                    user: PlummUserId(r.get(0)?),
                    company: CompanyId(r.get(1)?),
                    kind: if kind == "remove" {
                        PendingKind::Remove
                    } else {
                        PendingKind::Upsert
                    },
                    snapshot: r.get(3)?,
                    seq: r.get(4)?,
                    priority: Priority::from_i64(r.get(5)?),
                    attempts: r.get(6)?,
                    first_queued_at: r.get(7)?,
                })
            })
            .ctx("reading pending work")?;
        let mut out = Vec::with_capacity(limit);
        for row in rows {
            let e = row.ctx("reading pending work")?;
            if !busy.contains(&e.user) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Companies that have pending work (connected or not).
    pub fn companies_with_pending(&self) -> Result<Vec<CompanyId>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached("SELECT DISTINCT company_id FROM pending")
            .ctx("reading pending work")?;
        let rows = stmt
            .query_map([], |r| Ok(CompanyId(r.get(0)?)))
            .ctx("reading pending work")?;
        rows.collect::<Result<_, _>>().ctx("reading pending work")
    }

    /// The earliest time a deferred entry becomes due, if any.
    pub fn next_deferred(&self) -> Result<Option<String>, StoreError> {
        self.lock()
            .query_row(
                "SELECT MIN(next_attempt_at) FROM pending WHERE next_attempt_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .ctx("reading pending work")
    }

    /// The change `seq` of `user` is done; a newer one, if any, stays.
    pub fn complete(&self, user: PlummUserId, seq: i64) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute(
                "DELETE FROM pending WHERE plumm_user_id = ?1 AND seq = ?2",
                params![user.0, seq],
            )
            .ctx("completing a change")?;
        Ok(n == 1)
    }

    /// Keeps the change pending and tries again at `at`.
    pub fn defer(
        &self,
        user: PlummUserId,
        seq: i64,
        at: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "UPDATE pending SET attempts = attempts + 1, next_attempt_at = ?3, last_error = ?4
                 WHERE plumm_user_id = ?1 AND seq = ?2",
                params![user.0, seq, at, error],
            )
            .ctx("deferring a change")?;
        Ok(())
    }

    /// (pending users, oldest first_queued_at) for a company.
    pub fn pending_summary(&self, company: CompanyId) -> Result<(i64, Option<String>), StoreError> {
        self.lock()
            .query_row(
                "SELECT COUNT(*), MIN(first_queued_at) FROM pending WHERE company_id = ?1",
                [company.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ctx("summarising pending work")
    }

    pub fn pending_total(&self) -> Result<i64, StoreError> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM pending", [], |r| r.get(0))
            .ctx("counting pending work")
    }

    // ---- links ---------------------------------------------------------------

    pub fn link(&self, user: PlummUserId) -> Result<Option<Link>, StoreError> {
        self.lock()
            .query_row(
                "SELECT plumm_user_id, company_id, tenant_id, entra_id, pushed, upn_fallback,
                        created_by_us, linked_at FROM links WHERE plumm_user_id = ?1",
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
            .query_row(
                "SELECT plumm_user_id FROM links WHERE tenant_id = ?1 AND entra_id = ?2",
                params![tenant.as_str(), entra_id.0],
                |r| Ok(PlummUserId(r.get(0)?)),
            )
            .optional()
            .ctx("reading a link")
    }

    pub fn save_link(&self, link: &Link) -> Result<(), StoreError> {
        let pushed = serde_json::to_string(&link.pushed).unwrap_or_else(|_| "{}".into());
        self.lock()
            .execute(
                "INSERT INTO links (plumm_user_id, company_id, tenant_id, entra_id, pushed,
                                    upn_fallback, created_by_us, linked_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (plumm_user_id) DO UPDATE SET company_id = excluded.company_id,
                   tenant_id = excluded.tenant_id, entra_id = excluded.entra_id,
                   pushed = excluded.pushed, upn_fallback = excluded.upn_fallback,
                   created_by_us = excluded.created_by_us, linked_at = excluded.linked_at,
                   updated_at = excluded.updated_at",
                params![
                    link.user.0,
                    link.company.0,
                    link.tenant.as_str(),
                    link.entra_id.0,
                    pushed,
                    link.upn_fallback,
                    link.created_by_us,
                    link.linked_at,
                    now_text()
                ],
            )
            .ctx("saving a link")?;
        Ok(())
    }

    pub fn remove_link(&self, user: PlummUserId) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM links WHERE plumm_user_id = ?1", [user.0])
            .ctx("removing a link")?;
        Ok(())
    }

    pub fn links_count(&self, company: CompanyId) -> Result<i64, StoreError> {
        self.lock()
            .query_row(
                "SELECT COUNT(*) FROM links WHERE company_id = ?1",
                [company.0],
                |r| r.get(0),
            )
            .ctx("counting links")
    }

    // ---- parked users ---------------------------------------------------------

    pub fn park(&self, p: &Parked) -> Result<(), StoreError> {
        self.lock()
            .execute(
                "INSERT INTO parked (plumm_user_id, company_id, email, reason, parked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (plumm_user_id) DO UPDATE SET company_id = excluded.company_id,
                   email = excluded.email, reason = excluded.reason, parked_at = excluded.parked_at",
                params![p.user.0, p.company.0, p.email, p.reason, p.parked_at],
            )
            .ctx("parking a user")?;
        Ok(())
    }

    pub fn unpark(&self, user: PlummUserId) -> Result<(), StoreError> {
        self.lock()
            .execute("DELETE FROM parked WHERE plumm_user_id = ?1", [user.0])
            .ctx("unparking a user")?;
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
